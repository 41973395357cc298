"""What a service process needs to know, and the service's Ed25519 key file.

The key signs audit chain heads. Its seed lives in a 0600 file (default: ``recovery-service-key.json``
in the Lifeboat home), never in the database, so a dump of the database cannot sign a head.
Replicas behind one database share the same file; the database records each public key used.

Key file (one line of canonical JSON)::

    {"format": "lifeboat-recovery-service-key", "version": 1, "seed": hex32}
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Final

import nacl.signing

from lifeboat.documents import canonical_json, check_fields, parse_strict_versioned
from lifeboat.errors import RecoveryError, StorageError
from lifeboat.fs import SECRET_MODE, read_bounded, write_atomic
from lifeboat.home import default_home
from lifeboat.recovery.db import default_url

__all__ = ["KEY_FILE", "ServiceKey", "Settings", "load_or_create_key"]

KEY_FILE: Final = "recovery-service-key.json"
WITNESS_FILE: Final = "recovery-audit-head.json"
KEY_FORMAT: Final = "lifeboat-recovery-service-key"
KEY_VERSION: Final = 1
_KEY_FIELDS: Final = frozenset({"format", "version", "seed"})


@dataclass(frozen=True)
class ServiceKey:
    seed: bytes

    @property
    def public_key(self) -> bytes:
        return bytes(nacl.signing.SigningKey(self.seed).verify_key)

    def __repr__(self) -> str:  # never show the seed
        return f"ServiceKey(public_key={self.public_key.hex()})"


def load_or_create_key(path: Path) -> ServiceKey:
    """The key in ``path``, or a new one written there (0600) when the file does not exist."""
    path = Path(path)
    if not path.exists():
        seed = bytes(nacl.signing.SigningKey.generate())
        document = {"format": KEY_FORMAT, "version": KEY_VERSION, "seed": seed.hex()}
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            write_atomic(path, canonical_json(document) + b"\n", mode=SECRET_MODE)
        except StorageError:
            if not path.exists():  # not another replica that wrote it first
                raise
    body = parse_strict_versioned(
        read_bounded(path, 4096, what="service key file"),
        fmt=KEY_FORMAT,
        version=KEY_VERSION,
        limit=4096,
        what=str(path),
        kind="a Lifeboat recovery service key",
        error=RecoveryError,
    )
    check_fields(body, _KEY_FIELDS, str(path), RecoveryError)
    seed = body["seed"]
    if not isinstance(seed, str) or len(seed) != 64 or bytes.fromhex(seed).hex() != seed:
        raise RecoveryError(f"{path}: 'seed' must be 32 bytes in lowercase hex")
    return ServiceKey(bytes.fromhex(seed))


_PATH_FIELDS: Final = frozenset({"home", "service_key", "witness"})
_BYTES_FIELDS: Final = frozenset({"verifying_contract"})


@dataclass(frozen=True)
class Settings:
    """A service process's configuration; every field has a safe default."""

    #: Database URL; None means SQLite in the Lifeboat home.
    database: str | None = None
    home: Path | None = None
    #: The Ed25519 key file that signs chain heads; None means the home's.
    service_key: Path | None = None
    #: Largest request body accepted (bytes).
    max_body_bytes: int = 64 * 1024
    #: Requests per second each client key may make, and how many it may make at once.
    rate_per_second: float = 20.0
    rate_burst: int = 40
    #: Run migrations at start (a replica that should not migrate sets this False).
    migrate: bool = True
    #: Deliver webhooks from this process.
    deliver_webhooks: bool = True
    #: Seconds between outbox passes when idle.
    outbox_interval: float = 1.0
    #: Where this replica keeps the newest head it signed (None: in the home), and how often.
    witness: Path | None = None
    witness_interval: float = 5.0
    #: Enable ``POST /v1/clock/advance`` (tours, drills, tests): service time = wall clock +
    #: an offset kept in the database.
    simulated_clock: bool = False
    #: Seconds between sweeps for time-driven transitions (executable, expired, change applied).
    sweep_interval: float = 1.0
    #: The EIP-712 domain of a new database (chainId, verifyingContract); a database keeps the
    #: pair it was created with. None: 31337 and a random address chosen at first start.
    chain_id: int | None = None
    verifying_contract: bytes | None = None

    def to_environment(self) -> str:
        """These settings as one line of JSON, for :meth:`from_environment` in a worker process."""
        document: dict[str, object] = {}
        for name, value in asdict(self).items():
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, bytes):
                value = value.hex()
            document[name] = value
        return json.dumps(document, sort_keys=True)

    @classmethod
    def from_environment(cls, text: str) -> Settings:
        """The settings :meth:`to_environment` wrote."""
        values: dict[str, Any] = {}
        try:
            document = json.loads(text)
            for name in (f.name for f in fields(cls)):
                value = document[name]
                if value is not None and name in _PATH_FIELDS:
                    value = Path(value)
                elif value is not None and name in _BYTES_FIELDS:
                    value = bytes.fromhex(value)
                values[name] = value
        except (ValueError, KeyError, TypeError):
            raise RecoveryError("the service settings handed to a worker process are damaged") from None
        return cls(**values)

    def home_path(self) -> Path:
        return Path(self.home) if self.home is not None else default_home()

    def database_url(self) -> str:
        return self.database or default_url(self.home_path())

    def witness_path(self) -> Path:
        return Path(self.witness) if self.witness is not None else self.home_path() / WITNESS_FILE

    def key_path(self) -> Path:
        return Path(self.service_key) if self.service_key is not None else self.home_path() / KEY_FILE
