"""The Vyper sources under ``contracts/``, compiled on first use and cached per process.

Compilation needs ``vyper`` (and deploying in-process needs ``titanoboa``); both are imported
only here and only when a contract is first asked for, so the rest of Lifeboat starts without them.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

from lifeboat.onchain.errors import ChainError

SOURCES = Path(str(resources.files("lifeboat.onchain") / "contracts"))


def source_path(name: str) -> Path:
    """The path of contract ``name`` (``"EmergencyBrake"`` → ``contracts/EmergencyBrake.vy``)."""
    path = SOURCES / f"{name}.vy"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in SOURCES.glob("*.vy")))
        raise ChainError(f"no contract named {name!r}; the contracts are: {known}")
    return path


@functools.cache
def deployer(name: str) -> Any:
    """A titanoboa deployer for contract ``name`` (``.deploy(*args)`` on the current boa env)."""
    import boa

    return boa.load_partial(str(source_path(name)))


def names() -> list[str]:
    return sorted(p.stem for p in SOURCES.glob("*.vy"))
