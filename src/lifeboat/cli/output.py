"""Console output for the CLI: human text on stdout, one JSON document with ``--json``.

Errors go to stderr as one line. Nothing here decides what is secret: commands pass secrets
only when the user asked with ``--reveal``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console


@dataclass
class Settings:
    home: Path | None = None
    json: bool = False
    #: Seconds an object store may take to answer one request (``--store-timeout``).
    store_timeout: float = 30.0


settings = Settings()
# Markup is off by default: file names, labels and tags are user text and may contain "[...]".
# A line that colours something passes ``markup=True`` and escapes the user text in it.
stdout = Console(highlight=False, soft_wrap=True, markup=False, emoji=False)
stderr = Console(stderr=True, highlight=False, soft_wrap=True, markup=False, emoji=False)


def emit(data: dict[str, Any], human: Callable[[], None]) -> None:
    """Print ``data`` as JSON under ``--json``, else run the human renderer."""
    if settings.json:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    else:
        human()


def info(text: str) -> None:
    """A note for people (stderr, so stdout stays parseable); silent under ``--json``."""
    if not settings.json:
        stderr.print(text, markup=False)


def error(text: str) -> None:
    stderr.print(f"lifeboat: error: {text}", markup=False)
