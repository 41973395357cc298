"""The Lifeboat home: a local record of share sets, guardians and drills.

It holds public data only: ids, fingerprints, schemes, which guardian holds which share, drill
history. Never a secret, a share or a passphrase. It lives in one JSON document
(``home.json``, format ``lifeboat-home`` version 1) in a directory chosen by ``--home``,
``LIFEBOAT_HOME`` or the platform's user data directory. Every change is a read-modify-write
under an exclusive ``flock`` and lands by atomic rename, so concurrent commands cannot lose an
update and a crash cannot leave half a file.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import secrets as _random
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import platformdirs

from lifeboat.documents import parse_versioned
from lifeboat.errors import HomeError
from lifeboat.fs import SECRET_MODE, read_bounded, write_atomic
from lifeboat.secrets.fingerprint import parse_fingerprint

HOME_FORMAT = "lifeboat-home"
HOME_VERSION = 1
HOME_FILE = "home.json"
LOCK_FILE = ".lock"
MAX_HOME_BYTES = 64 * 1024 * 1024
ENV_HOME = "LIFEBOAT_HOME"

# Share-set lifecycle: a reshared set is pending until verified, then the old one is retired.
ACTIVE, PENDING, RETIRED = "active", "pending", "retired"


def now() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def default_home() -> Path:
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env)
    return Path(platformdirs.user_data_dir("lifeboat", appauthor=False))


@dataclass
class Guardian:
    name: str
    recipient: str
    added: str
    contact: str | None = None


@dataclass
class Holder:
    """Who holds one share of a set, and in what form."""

    group_index: int
    member_index: int
    guardian: str | None = None
    envelope: str | None = None  # path of the sealed envelope, when one was written


@dataclass
class Drill:
    at: str
    ok: bool
    summary: str
    valid_shares: int = 0
    groups_satisfied: int = 0


@dataclass
class ShareSetRecord:
    id: str
    created: str
    label: str | None
    identifier: int
    extendable: bool
    iteration_exponent: int
    scheme: str
    group_threshold: int
    groups: list[tuple[int, int]]
    secret_kind: str  # random | hex | bip39-seed | bip39-entropy | sealed-file-key | repository-key
    secret_bytes: int
    fingerprint: str
    passphrase: bool
    status: str = ACTIVE
    bip39_language: str | None = None
    replaces: str | None = None
    replaced_by: str | None = None
    sealed_file: str | None = None
    holders: list[Holder] = field(default_factory=list)
    drills: list[Drill] = field(default_factory=list)

    def holder(self, group_index: int, member_index: int) -> Holder | None:
        for h in self.holders:
            if (h.group_index, h.member_index) == (group_index, member_index):
                return h
        return None


@dataclass
class HomeState:
    guardians: dict[str, Guardian] = field(default_factory=dict)
    share_sets: dict[str, ShareSetRecord] = field(default_factory=dict)

    def to_json(self) -> bytes:
        body = {
            "format": HOME_FORMAT,
            "version": HOME_VERSION,
            "guardians": {k: asdict(v) for k, v in sorted(self.guardians.items())},
            "share_sets": {k: asdict(v) for k, v in sorted(self.share_sets.items())},
        }
        return json.dumps(body, indent=2).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes, where: Path) -> HomeState:
        body = parse_versioned(
            data,
            fmt=HOME_FORMAT,
            version=HOME_VERSION,
            what=str(where),
            kind="a Lifeboat home file",
            error=HomeError,
        )
        try:
            guardians = {k: Guardian(**v) for k, v in body.get("guardians", {}).items()}
            sets = {}
            for key, raw in body.get("share_sets", {}).items():
                raw = dict(raw)
                raw["groups"] = [tuple(g) for g in raw["groups"]]
                raw["holders"] = [Holder(**h) for h in raw.get("holders", [])]
                raw["drills"] = [Drill(**d) for d in raw.get("drills", [])]
                sets[key] = ShareSetRecord(**raw)
            for key, guardian in guardians.items():
                _check_types(guardian, key == guardian.name)
            for key, record in sets.items():
                _check_types(record, key == record.id)
                for item in (*record.holders, *record.drills):
                    _check_types(item, True)
                parse_fingerprint(record.fingerprint)
        except (TypeError, KeyError, AttributeError, ValueError) as exc:
            raise HomeError(f"{where} has a malformed record ({exc}); restore it from a backup") from None
        return cls(guardians=guardians, share_sets=sets)

    # -- look-ups -------------------------------------------------------------------------

    def share_set(self, set_id: str) -> ShareSetRecord:
        matches = [k for k in self.share_sets if k == set_id or k.startswith(set_id)]
        if len(matches) == 1:
            return self.share_sets[matches[0]]
        if not matches:
            raise HomeError(f"no share set {set_id!r} in this home; see 'lifeboat shares list'")
        raise HomeError(f"{set_id!r} matches several share sets; give more of the id")

    def sets_with_identifier(self, identifier: int) -> list[ShareSetRecord]:
        return [s for s in self.share_sets.values() if s.identifier == identifier]

    def guardian(self, name: str) -> Guardian:
        if name not in self.guardians:
            raise HomeError(f"no guardian named {name!r}; add one with 'lifeboat guardians add'")
        return self.guardians[name]


_SIMPLE_TYPES = {"str": str, "int": int, "bool": bool}


def _check_types(item: object, key_matches: bool) -> None:
    """Every field of a record has the type its dataclass declares (str, int, bool, optional)."""
    if not key_matches:
        raise ValueError(f"{type(item).__name__} stored under a key that is not its own name or id")
    for name, spec in type(item).__dataclass_fields__.items():  # type: ignore[attr-defined]
        declared = str(spec.type)
        optional = declared.endswith(" | None")
        kind = _SIMPLE_TYPES.get(declared.removesuffix(" | None"))
        value = getattr(item, name)
        if kind is None or (optional and value is None):
            continue
        if type(value) is not kind:
            raise ValueError(f"field {name!r} of {type(item).__name__} must be {kind.__name__}")


def new_set_id() -> str:
    return "s-" + _random.token_hex(4)


class Home:
    """A Lifeboat home directory."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_home()

    @property
    def file(self) -> Path:
        return self.path / HOME_FILE

    def load(self) -> HomeState:
        """The current state (empty when the home does not exist yet)."""
        if not self.file.exists():
            return HomeState()
        return HomeState.from_json(read_bounded(self.file, MAX_HOME_BYTES, what="home file"), self.file)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the home's exclusive lock (``.lock``, ``flock``): every writer of the home takes it."""
        try:
            self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise HomeError(f"cannot create Lifeboat home {self.path}: {exc.strerror}") from None
        try:
            lock = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise HomeError(f"cannot lock Lifeboat home {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield
        finally:
            os.close(lock)

    @contextlib.contextmanager
    def update(self) -> Iterator[HomeState]:
        """Read, let the caller change, and write back the state under an exclusive lock."""
        with self.lock():
            state = self.load()
            yield state
            write_atomic(self.file, state.to_json(), mode=SECRET_MODE, overwrite=True)
