"""The configuration of a drill of a real setup (``lifeboat drill --config lifeboat.toml``).

A TOML file, ``version = 1``, with one section per path, each optional but at least one:
``[[keys]]`` (share sets: share files or envelopes, identities, what they must rebuild),
``[storage]`` (the repository's stores and where its passphrase comes from), ``[state]`` (which
record snapshot to restore, its invariants and signer) and ``[recovery]`` (the recovery service).
docs/formats.md, "Drill configuration", lists every key; ``examples/lifeboat.toml`` shows them.

Reading is strict: an unknown key, a value of the wrong type, a missing file or a passphrase
written inline is a :class:`~lifeboat.errors.ConfigError` naming the key and what to write. Paths
are relative to the configuration file. Store locations are not checked here: a store that is
gone is what the storage check is for.
"""

from __future__ import annotations

import glob
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from lifeboat.errors import ConfigError, LifeboatError
from lifeboat.fs import read_bounded, read_passphrase_file
from lifeboat.secrets.fingerprint import parse_fingerprint
from lifeboat.state.statement import parse_trust

__all__ = [
    "CONFIG_VERSION",
    "DrillConfig",
    "KeysConfig",
    "RecoveryConfig",
    "Secret",
    "StateConfig",
    "StorageConfig",
    "load_config",
]

CONFIG_VERSION: Final = 1
MAX_CONFIG_BYTES: Final = 1 << 20
#: Seconds a store or the recovery service may take to answer one request, unless configured.
DEFAULT_TIMEOUT: Final = 30.0


@dataclass(frozen=True)
class Secret:
    """Where a passphrase comes from: an environment variable or a file, never the config itself."""

    env: str | None = None
    file: Path | None = None

    def read(self) -> str:
        """The passphrase ("" when none is configured); never shown in a message."""
        if self.file is not None:
            return read_passphrase_file(self.file, error=ConfigError)
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise ConfigError(f"${self.env} is not set; export it, or name a passphrase_file instead")
            return value
        return ""

    def __repr__(self) -> str:
        return f"Secret(env={self.env!r}, file={self.file!r})"


@dataclass(frozen=True)
class KeysConfig:
    """One share set to drill."""

    name: str
    shares: tuple[Path, ...]
    identities: tuple[Path, ...]
    share_set: str | None
    fingerprint: str | None
    drill: int | None
    passphrase: Secret


#: The newest file snapshot is restored (and timed) when it is no larger than this; else its
#: restore time is estimated from the throughput of the check.
DEFAULT_RESTORE_LIMIT_MIB: Final = 256


@dataclass(frozen=True)
class StorageConfig:
    stores: tuple[str, ...]
    passphrase: Secret
    timeout: float
    restore_limit_mib: int = DEFAULT_RESTORE_LIMIT_MIB


@dataclass(frozen=True)
class StateConfig:
    name: str | None
    snapshot: str
    invariants: Path | None
    #: The signer the statement must carry: a FROST(Ed25519) group key or an Ed25519 key.
    trust: bytes | None


@dataclass(frozen=True)
class RecoveryConfig:
    url: str
    vault: str | None
    service_key: bytes | None
    known_heads: tuple[Path, ...]
    timeout: float


@dataclass(frozen=True)
class DrillConfig:
    path: Path
    keys: tuple[KeysConfig, ...] = ()
    storage: StorageConfig | None = None
    state: StateConfig | None = None
    recovery: RecoveryConfig | None = None
    #: Paths in the order they are checked.
    order: tuple[str, ...] = field(default=())


# --- reading --------------------------------------------------------------------------------------

_TYPE_NAMES: Final = {str: "a string", int: "an integer", float: "a number", list: "a list of strings"}


class _Section:
    """One table of the file, read key by key; :meth:`done` refuses the keys nobody asked for."""

    def __init__(self, where: str, table: object, base: Path) -> None:
        if not isinstance(table, dict):
            raise ConfigError(f"{where} must be a table ([{where}]), not {_kind(table)}")
        self.where = where
        self.table: dict[str, Any] = dict(table)
        self.base = base
        self.used: set[str] = set()

    def _key(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def get(self, key: str, kind: type, *, required: bool = False, example: str = "") -> Any:
        self.used.add(key)
        if key not in self.table:
            if required:
                raise ConfigError(f"{self._key(key)} is missing; write {self._key(key)} = {example}")
            return None
        value = self.table[key]
        if kind is float and type(value) is int:
            value = float(value)
        if kind is list:
            ok = isinstance(value, list) and all(isinstance(item, str) for item in value)
        else:
            ok = type(value) is kind
        if not ok:
            raise ConfigError(
                f"{self._key(key)} must be {_TYPE_NAMES[kind]}, not {_kind(value)}"
                + (f"; write {self._key(key)} = {example}" if example else "")
            )
        return value

    def file(self, key: str, *, required: bool = False, example: str = "") -> Path | None:
        value = self.get(key, str, required=required, example=example)
        return None if value is None else _existing(self._key(key), value, self.base)

    def files(self, key: str, *, required: bool = False, example: str = "") -> tuple[Path, ...]:
        """A list of files or glob patterns, each of which must name at least one file."""
        values = self.get(key, list, required=required, example=example) or []
        if required and not values:
            raise ConfigError(f"{self._key(key)} is empty; write {self._key(key)} = {example}")
        found: list[Path] = []
        for value in values:
            if glob.has_magic(value):
                matches = sorted(glob.glob(str(self.base / value)))
                if not matches:
                    raise ConfigError(
                        f"{self._key(key)}: {value!r} matches no file (relative to {self.base})"
                    )
                found.extend(Path(m) for m in matches if Path(m).is_file())
            else:
                found.append(_existing(self._key(key), value, self.base))
        return tuple(found)

    def secret(self, *, required: bool) -> Secret:
        if "passphrase" in self.table:
            raise ConfigError(
                f"{self._key('passphrase')}: a passphrase is never written in the config; name an "
                f'environment variable (passphrase_env = "LIFEBOAT_REPO_PASSPHRASE") or a file '
                f'(passphrase_file = "repo.pass")'
            )
        env = self.get("passphrase_env", str)
        file = self.file("passphrase_file")
        if env is not None and file is not None:
            raise ConfigError(f"{self.where}: give passphrase_env or passphrase_file, not both")
        if env is not None and env not in os.environ:
            raise ConfigError(
                f"{self._key('passphrase_env')} names ${env}, which is not set; export it before the "
                "drill, or name a passphrase_file instead"
            )
        if required and env is None and file is None:
            raise ConfigError(
                f'{self.where} needs the passphrase: write passphrase_env = "LIFEBOAT_REPO_PASSPHRASE" '
                'or passphrase_file = "repo.pass"'
            )
        return Secret(env, file)

    def timeout(self) -> float:
        value = self.get("timeout", float, example="30")
        if value is None:
            return DEFAULT_TIMEOUT
        if not 0.1 <= value <= 3600:
            raise ConfigError(f"{self._key('timeout')} must be from 0.1 to 3600 seconds, not {value}")
        return float(value)

    def done(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            known = ", ".join(sorted(self.used))
            raise ConfigError(
                f"unknown key {self._key(unknown[0])!r}; {self.where or 'the top level'} takes {known}"
            )


def _kind(value: object) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "a boolean", list: "a list"}
    return names.get(type(value), "a table" if isinstance(value, dict) else type(value).__name__)


def _existing(key: str, value: str, base: Path) -> Path:
    path = Path(os.path.expanduser(value))
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise ConfigError(f"{key}: {path} {what}; write the path of a file (relative to {base})")
    return path


def _keys(index: int, table: object, base: Path) -> KeysConfig:
    section = _Section(f"keys[{index}]", table, base)
    shares = section.files("shares", required=True, example='["envelopes/*.age"]')
    identities = section.files("identities")
    share_set = section.get("share_set", str)
    fingerprint = section.get("fingerprint", str)
    if fingerprint is not None:
        try:
            parse_fingerprint(fingerprint)
        except (LifeboatError, ValueError) as exc:
            raise ConfigError(f"{section.where}.fingerprint: {exc}") from None
    drill = section.get("drill", int, example="3")
    if drill is not None and drill < 1:
        raise ConfigError(
            f"{section.where}.drill must be at least 1 (how many shares to combine), not {drill}"
        )
    name = section.get("name", str) or (share_set or f"set {index + 1}")
    passphrase = section.secret(required=False)
    section.done()
    return KeysConfig(name, shares, identities, share_set, fingerprint, drill, passphrase)


def _storage(table: object, base: Path) -> StorageConfig:
    section = _Section("storage", table, base)
    stores = section.get("stores", list, required=True, example='["/mnt/a/lb", "s3://bucket/lb"]')
    if not stores:
        raise ConfigError('storage.stores is empty; list every store: stores = ["/mnt/a/lb", ...]')
    located = tuple(_store_location(store, base) for store in stores)
    passphrase = section.secret(required=True)
    timeout = section.timeout()
    limit = section.get("restore_limit_mib", int, example="256")
    if limit is not None and limit < 0:
        raise ConfigError(f"storage.restore_limit_mib must be 0 (never restore) or more, not {limit}")
    section.done()
    return StorageConfig(located, passphrase, timeout, DEFAULT_RESTORE_LIMIT_MIB if limit is None else limit)


def _store_location(store: str, base: Path) -> str:
    """A local directory relative to the config file made absolute; URLs as written."""
    if "://" in store or not store:
        return store
    path = Path(os.path.expanduser(store))
    return str(path if path.is_absolute() else base / path)


def _state(table: object, base: Path) -> StateConfig:
    section = _Section("state", table, base)
    name = section.get("name", str)
    snapshot = section.get("snapshot", str) or "latest"
    invariants = section.file("invariants")
    trust_text = section.get("trust", str, example='"group/public-key-package.json"')
    trust: bytes | None = None
    if trust_text is not None:
        text = trust_text.strip().lower()
        if not (len(text) == 64 and all(c in "0123456789abcdef" for c in text)):
            trust_text = str(_existing("state.trust", trust_text, base))
        try:
            trust = parse_trust(trust_text, what="state.trust")
        except LifeboatError as exc:
            raise ConfigError(f"state.trust: {exc}") from None
    section.done()
    return StateConfig(name, snapshot, invariants, trust)


def _recovery(table: object, base: Path) -> RecoveryConfig:
    section = _Section("recovery", table, base)
    url = section.get("url", str, required=True, example='"https://recovery.example"')
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"recovery.url {url!r} must start with http:// or https://")
    vault = section.get("vault", str)
    if vault is not None:
        text = vault.lower().removeprefix("0x")
        if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
            raise ConfigError("recovery.vault must be the vault id: 64 hex digits")
        vault = text
    key_text = section.get("service_key", str)
    service_key: bytes | None = None
    if key_text is not None:
        text = key_text.strip().lower().removeprefix("0x")
        if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
            raise ConfigError(
                "recovery.service_key must be the service's Ed25519 public key, 64 hex digits "
                "(`lifeboat recovery audit head` shows it)"
            )
        service_key = bytes.fromhex(text)
    known_heads = section.files("known_heads")
    if known_heads and service_key is None:
        raise ConfigError("recovery.known_heads needs recovery.service_key, the key they are signed with")
    timeout = section.timeout()
    section.done()
    return RecoveryConfig(url.rstrip("/"), vault, service_key, known_heads, timeout)


_PATHS: Final[Mapping[str, str]] = {
    "keys": "[[keys]]",
    "storage": "[storage]",
    "state": "[state]",
    "recovery": "[recovery]",
}


def load_config(path: Path) -> DrillConfig:
    """Read and check ``path``; every problem is a :class:`ConfigError` naming the key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"drill configuration {path} does not exist; see examples/lifeboat.toml")
    data = read_bounded(path, MAX_CONFIG_BYTES, what="drill configuration")
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    base = path.resolve().parent
    top = _Section("", document, base)
    version = top.get("version", int, required=True, example=str(CONFIG_VERSION))
    if version != CONFIG_VERSION:
        raise ConfigError(
            f"{path}: configuration version {version} is not supported; this Lifeboat reads "
            f"version = {CONFIG_VERSION}"
        )
    keys_tables = document.get("keys")  # an array of tables, checked below
    top.used.add("keys")
    keys: tuple[KeysConfig, ...] = ()
    if keys_tables is not None:
        if not isinstance(keys_tables, list) or not keys_tables:
            raise ConfigError("keys must be one or more [[keys]] tables, one per share set")
        keys = tuple(_keys(i, table, base) for i, table in enumerate(keys_tables))
    top.used.update({"storage", "state", "recovery"})
    storage = _storage(document["storage"], base) if "storage" in document else None
    state = _state(document["state"], base) if "state" in document else None
    recovery = _recovery(document["recovery"], base) if "recovery" in document else None
    top.done()
    if state is not None and storage is None:
        raise ConfigError("[state] restores from the repository: add a [storage] section naming its stores")
    order = tuple(
        name
        for name, present in (
            ("keys", bool(keys)),
            ("storage", storage is not None),
            ("state", state is not None),
            ("recovery", recovery is not None),
        )
        if present
    )
    if not order:
        raise ConfigError(
            f"{path} configures no path; add at least one of {', '.join(_PATHS.values())} "
            "(see examples/lifeboat.toml)"
        )
    return DrillConfig(path.resolve(), keys, storage, state, recovery, order)
