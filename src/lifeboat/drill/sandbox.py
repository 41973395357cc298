"""The throw-away world a sandbox drill runs in, and what each path leaves in it for the others.

A :class:`Sandbox` is a temporary directory with its own Lifeboat home, five local store
directories, and a seeded random generator so that ``--seed`` makes a drill reproducible. Paths
hand each other what they built through typed attributes: the storage path opens the repository
that the state path snapshots into; the signers path provides the FROST group that signs the
state path's statements.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from lifeboat.drill.timeline import PathName, Timeline

#: The sandbox's repository layout: any THRESHOLD of STORES give everything back.
STORES = 5
THRESHOLD = 3
DEFAULT_ACCOUNTS = 100_000


class GroupSigner(Protocol):
    """A threshold group that can sign (the signers path's FROST group, in the sandbox)."""

    #: The group's public key, as the state pillar's statements name their signer.
    public_key: bytes

    def sign(self, message: bytes) -> bytes:
        """Run a full signing ceremony with a quorum of the members still holding shares."""
        ...


@dataclass
class Outcome:
    """What a path lost in the catastrophe and what its recovery brought back.

    Counts are in the path's own units (``{"records": 100000, "bytes": ...}``, ``{"keys": 1}``).
    ``rpo`` is the number of journal entries that were not recovered (the state path), None where
    the path has no such notion.
    """

    lost: dict[str, int] = field(default_factory=dict)
    recovered: dict[str, int] = field(default_factory=dict)
    rpo: int | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Sandbox:
    root: Path
    seed: int
    accounts: int = DEFAULT_ACCOUNTS
    rng: random.Random = field(init=False)
    #: The repository's stores where they are now: the storage path creates stores 1..5 and,
    #: after rebuilding a destroyed one elsewhere, puts the new location in its place.
    stores: list[Path] = field(default_factory=list)
    #: The sandbox repository's passphrase (fresh per drill, never shown).
    repo_passphrase: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    #: Set by the signers path's setup.
    group: GroupSigner | None = None
    #: Anything else a path keeps between its own phases (its key files, its service, ...).
    scratch: dict[str, Any] = field(default_factory=dict)
    #: Called (last first) when the sandbox closes: stop a service, close a database.
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)  # noqa: S311 - test data, never key material

    @property
    def home(self) -> Path:
        return self.root / "home"

    def store(self, number: int) -> Path:
        """Store ``number`` (1-based) as first created; a rebuilt store lives elsewhere."""
        return self.root / "stores" / f"s{number}"

    def random_bytes(self, size: int) -> bytes:
        """Reproducible under ``--seed``: for test data only, never for a key a user keeps."""
        return self.rng.randbytes(size)

    def close(self) -> None:
        while self.cleanups:
            self.cleanups.pop()()


class DrillPath(Protocol):
    """One recovery path: its four acts, each recording its steps on the timeline."""

    name: PathName

    def setup(self, sandbox: Sandbox, timeline: Timeline) -> None: ...

    def operate(self, sandbox: Sandbox, timeline: Timeline) -> None: ...

    def catastrophe(self, sandbox: Sandbox, timeline: Timeline) -> Outcome:
        """Break this path; the outcome's ``lost`` says what is gone."""
        ...

    def recover(self, sandbox: Sandbox, timeline: Timeline, outcome: Outcome) -> None:
        """Bring it back, verifying as it goes; fill ``outcome.recovered`` (and ``rpo``)."""
        ...
