"""Repository config: what every store says about the repository, and the keys derived from the master key.

This module is pure: no files, no network, no threads. Store ``i`` of a repository holds, under
the key ``config``, a plaintext canonical JSON document (sorted keys, no spaces, then a newline)::

    {"format": "lifeboat-repository", "version": 1, "repository": "<32 hex>",
     "k": 3, "n": 5, "store": 2, "created": "2026-11-24T05:00:00Z",
     "chunker": {"algorithm": "fastcdc-2020", "min": 524288, "avg": 524288, "max": 8388608},
     "pack_size": 16777216, "signing_key": "<64 hex Ed25519 public key>", "mac": "<64 hex>"}

The configs of one repository differ only in ``store`` (and so in ``mac``). A config is readable
before the repository is unlocked (:func:`parse_config`: the repository id, ``k``, ``n`` and the
store number are checked across stores); once the master key is known, :func:`verify_config`
checks ``mac``, the keyed BLAKE3 of the canonical JSON of every other field under the key
:func:`derive_key` gives for :data:`CONTEXT_CONFIG_MAC`. A config whose MAC fails was written
for another repository, or altered.

Every repository key other than the master key ``M`` itself is derived from it with BLAKE3's
key-derivation mode, one context string per purpose (:data:`CONTEXT_CONFIG_MAC`,
:data:`CONTEXT_SIGNING`, :data:`CONTEXT_CHUNKER`).
"""

from __future__ import annotations

import dataclasses
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import blake3

from lifeboat.documents import canonical_json, check_fields, parse_strict_versioned
from lifeboat.errors import InputError, exact_bytes
from lifeboat.store.codec import MAX_SHARDS
from lifeboat.store.errors import FormatError, NewerVersionError, RepositoryKeyError

__all__ = [
    "CHUNKER_ALGORITHM",
    "CONFIG_FORMAT",
    "CONFIG_KEY",
    "CONFIG_VERSION",
    "CONTEXT_CHUNKER",
    "CONTEXT_CONFIG_MAC",
    "CONTEXT_SIGNING",
    "MAX_CONFIG_BYTES",
    "MAX_PACK_SIZE",
    "MIN_PACK_SIZE",
    "ChunkerParams",
    "RepoConfig",
    "chunker_seed",
    "derive_key",
    "encode_config",
    "parse_config",
    "signing_seed",
    "verify_config",
]

CONFIG_FORMAT: Final = "lifeboat-repository"
CONFIG_VERSION: Final = 1
#: The store key of the config object.
CONFIG_KEY: Final = "config"
MAX_CONFIG_BYTES: Final = 64 * 1024
CHUNKER_ALGORITHM: Final = "fastcdc-2020"

CONTEXT_CONFIG_MAC: Final = "lifeboat repository v1 config mac"
CONTEXT_SIGNING: Final = "lifeboat repository v1 manifest signing"
CONTEXT_CHUNKER: Final = "lifeboat repository v1 chunker seed"

MASTER_KEY_BYTES: Final = 32
SIGNING_KEY_BYTES: Final = 32
MIN_PACK_SIZE: Final = 1 << 20
MAX_PACK_SIZE: Final = 256 << 20

# pyfastcdc's accepted ranges (FastCDC.__init__ refuses anything outside them).
_CDC_MIN_SIZE: Final = (64, 1 << 20)
_CDC_AVG_SIZE: Final = (256, 4 << 20)
_CDC_MAX_SIZE: Final = (1024, 16 << 20)
#: pyfastcdc's compiled chunker shifts the seed left by one into a uint64: seeds must stay below 2**63.
_SEED_MASK: Final = (1 << 63) - 1

_HEX32: Final = re.compile(r"[0-9a-f]{32}")
_HEX64: Final = re.compile(r"[0-9a-f]{64}")
_FIELDS: Final = frozenset(
    {
        "format",
        "version",
        "repository",
        "k",
        "n",
        "store",
        "created",
        "chunker",
        "pack_size",
        "signing_key",
        "mac",
    }
)
_CHUNKER_FIELDS: Final = frozenset({"algorithm", "min", "avg", "max"})


def _chunker_problem(min_size: object, avg_size: object, max_size: object) -> str | None:
    """What is wrong with these chunk sizes, or None if pyfastcdc accepts them."""
    sizes = (("min_size", min_size, _CDC_MIN_SIZE), ("avg_size", avg_size, _CDC_AVG_SIZE))
    for name, value, (low, high) in (*sizes, ("max_size", max_size, _CDC_MAX_SIZE)):
        if type(value) is not int:
            return f"chunker {name} must be an integer, not {type(value).__name__}"
        if not low <= value <= high:
            return f"chunker {name} {value} is outside {low}..{high}"
    assert isinstance(min_size, int) and isinstance(avg_size, int) and isinstance(max_size, int)
    if not min_size <= avg_size <= max_size:
        return f"chunker sizes must satisfy min <= avg <= max, got {min_size}, {avg_size}, {max_size}"
    return None


@dataclass(frozen=True)
class ChunkerParams:
    """FastCDC (2020) sizes, as pyfastcdc takes them.

    ``avg_size`` is pyfastcdc's: the actual mean chunk is about ``avg_size + min_size`` (1 MiB
    with the defaults). Sizes outside pyfastcdc's ranges, or not ``min <= avg <= max``, raise
    :class:`InputError`.

    >>> ChunkerParams()
    ChunkerParams(min_size=524288, avg_size=524288, max_size=8388608)
    """

    min_size: int = 512 * 1024
    avg_size: int = 512 * 1024
    max_size: int = 8 * 1024 * 1024

    def __post_init__(self) -> None:
        problem = _chunker_problem(self.min_size, self.avg_size, self.max_size)
        if problem is not None:
            raise InputError(problem)


@dataclass(frozen=True)
class RepoConfig:
    """One store's config: the repository id, its ``k``-of-``n`` layout, this store's number and more.

    Every field is checked on construction (:class:`InputError` naming it): ``repository`` is 32
    lowercase hex, ``1 <= k <= n <= 32``, ``0 <= store < n``, ``pack_size`` from 1 MiB to
    256 MiB, ``signing_key`` a 32-byte Ed25519 public key.
    """

    repository: str
    k: int
    n: int
    store: int
    created: str
    chunker: ChunkerParams
    pack_size: int
    signing_key: bytes

    def __post_init__(self) -> None:
        problem = _config_problem(self)
        if problem is not None:
            raise InputError(problem)

    def for_store(self, store: int) -> RepoConfig:
        """The same config for store number ``store`` (``0 <= store < n``, else :class:`InputError`).

        >>> config = RepoConfig("ab" * 16, 2, 3, 0, "2026-01-01T00:00:00Z", ChunkerParams(), 1 << 24, bytes(32))
        >>> config.for_store(2).store
        2
        """
        if type(store) is not int or not 0 <= store < self.n:
            raise InputError(f"store number must be an integer from 0 to {self.n - 1}, got {store!r}")
        return dataclasses.replace(self, store=store)


def _config_problem(config: RepoConfig) -> str | None:
    if not isinstance(config.repository, str) or not _HEX32.fullmatch(config.repository):
        return f"repository id must be 32 lowercase hex characters, got {config.repository!r}"
    for name in ("k", "n", "store", "pack_size"):
        value = getattr(config, name)
        if type(value) is not int:
            return f"{name} must be an integer, not {type(value).__name__}"
    if not 1 <= config.k <= config.n <= MAX_SHARDS:
        return f"k and n must satisfy 1 <= k <= n <= {MAX_SHARDS}, got k={config.k}, n={config.n}"
    if not 0 <= config.store < config.n:
        return f"store number {config.store} is outside 0..{config.n - 1}"
    if not isinstance(config.created, str) or not config.created:
        return "created must be a non-empty string"
    if not isinstance(config.chunker, ChunkerParams):
        return f"chunker must be ChunkerParams, not {type(config.chunker).__name__}"
    if not MIN_PACK_SIZE <= config.pack_size <= MAX_PACK_SIZE:
        return f"pack_size {config.pack_size} is outside {MIN_PACK_SIZE}..{MAX_PACK_SIZE}"
    if not isinstance(config.signing_key, bytes) or len(config.signing_key) != SIGNING_KEY_BYTES:
        return f"signing_key must be {SIGNING_KEY_BYTES} bytes"
    return None


# --- keys -----------------------------------------------------------------------------------


def derive_key(master_key: bytes, context: str) -> bytes:
    """The 32-byte key for ``context``: BLAKE3 in key-derivation mode over the master key.

    >>> derive_key(bytes(32), CONTEXT_CONFIG_MAC) != derive_key(bytes(32), CONTEXT_SIGNING)
    True
    """
    master_key = exact_bytes(master_key, MASTER_KEY_BYTES, "a master key")
    hasher = blake3.blake3(derive_key_context=context)
    hasher.update(master_key)
    digest: bytes = hasher.digest()
    return digest


def chunker_seed(master_key: bytes) -> int:
    """The repository's FastCDC seed: first 8 bytes of the derived key, big-endian, masked to 63 bits.

    A secret seed changes pyfastcdc's gear table, so chunk boundaries (and so chunk sizes) reveal
    less about file contents. pyfastcdc takes seeds from 1 to 2**63 - 1 (0 means its unseeded
    table; the compiled version overflows at 2**63); the one-in-2**63 case of a zero is mapped to 1.

    >>> 0 < chunker_seed(bytes(32)) < 2**63
    True
    """
    seed = int.from_bytes(derive_key(master_key, CONTEXT_CHUNKER)[:8], "big") & _SEED_MASK
    return seed or 1


def signing_seed(master_key: bytes) -> bytes:
    """The 32-byte Ed25519 seed of the key that signs manifests."""
    return derive_key(master_key, CONTEXT_SIGNING)


# --- the document ---------------------------------------------------------------------------


def encode_config(config: RepoConfig, master_key: bytes) -> bytes:
    """The config document for ``config``, with its MAC under ``master_key``: canonical JSON and a newline.

    >>> config = RepoConfig("ab" * 16, 2, 3, 1, "2026-01-01T00:00:00Z", ChunkerParams(), 1 << 24, bytes(32))
    >>> verify_config(encode_config(config, bytes(32)), bytes(32)) == config
    True
    """
    if not isinstance(config, RepoConfig):
        raise InputError(f"config must be RepoConfig, not {type(config).__name__}")
    body = _body(config)
    return canonical_json({**body, "mac": _mac(master_key, body)}) + b"\n"


def parse_config(data: bytes) -> RepoConfig:
    """The config in ``data``, checked for structure and version only (no key needed, MAC not checked).

    Raises :class:`FormatError` naming the field at fault, and for a config written by a newer
    Lifeboat ("upgrade Lifeboat").
    """
    return _parse(data)[0]


def verify_config(data: bytes, master_key: bytes) -> RepoConfig:
    """The config in ``data`` after checking its MAC under ``master_key``.

    Raises :class:`FormatError` as :func:`parse_config` does, and :class:`RepositoryKeyError` if
    the MAC does not match: the store belongs to another repository, or its config was altered.
    """
    config, mac = _parse(data)
    expected = _mac(master_key, _body(config))
    if not hmac.compare_digest(expected.encode("ascii"), mac.encode("ascii")):
        raise RepositoryKeyError(
            f"config of store {config.store} (repository {config.repository}) does not match this key: "
            "store from another repository or tampered"
        )
    return config


# --- implementation -------------------------------------------------------------------------


def _body(config: RepoConfig) -> dict[str, Any]:
    """The config document without ``mac``."""
    return {
        "format": CONFIG_FORMAT,
        "version": CONFIG_VERSION,
        "repository": config.repository,
        "k": config.k,
        "n": config.n,
        "store": config.store,
        "created": config.created,
        "chunker": {
            "algorithm": CHUNKER_ALGORITHM,
            "min": config.chunker.min_size,
            "avg": config.chunker.avg_size,
            "max": config.chunker.max_size,
        },
        "pack_size": config.pack_size,
        "signing_key": config.signing_key.hex(),
    }


def _mac(master_key: bytes, body: Mapping[str, Any]) -> str:
    digest: str = blake3.blake3(
        canonical_json(body), key=derive_key(master_key, CONTEXT_CONFIG_MAC)
    ).hexdigest()
    return digest


def _int_field(body: Mapping[str, Any], name: str, label: str | None = None) -> int:
    value = body[name]
    if type(value) is not int:
        raise FormatError(f"config field {label or name!r} is not an integer")
    return value


def _parse(data: bytes) -> tuple[RepoConfig, str]:
    """The config and its MAC (64 hex), after every structural check."""
    body = parse_strict_versioned(
        data,
        fmt=CONFIG_FORMAT,
        version=CONFIG_VERSION,
        limit=MAX_CONFIG_BYTES,
        what="repository config",
        kind="a Lifeboat repository config",
        error=FormatError,
        newer=NewerVersionError,
    )
    check_fields(body, _FIELDS, "config", FormatError)

    repository = body["repository"]
    if not isinstance(repository, str) or not _HEX32.fullmatch(repository):
        raise FormatError("config field 'repository' is not 32 lowercase hex characters")
    k, n, store = _int_field(body, "k"), _int_field(body, "n"), _int_field(body, "store")
    if not 1 <= k <= n <= MAX_SHARDS:
        raise FormatError(f"config fields 'k' and 'n' ({k}-of-{n}) are outside 1 <= k <= n <= {MAX_SHARDS}")
    if not 0 <= store < n:
        raise FormatError(f"config field 'store' ({store}) is outside 0..{n - 1}")
    created = body["created"]
    if not isinstance(created, str) or not created:
        raise FormatError("config field 'created' is not a non-empty string")
    pack_size = _int_field(body, "pack_size")
    if not MIN_PACK_SIZE <= pack_size <= MAX_PACK_SIZE:
        raise FormatError(
            f"config field 'pack_size' ({pack_size}) is outside {MIN_PACK_SIZE}..{MAX_PACK_SIZE}"
        )
    signing_key = body["signing_key"]
    if not isinstance(signing_key, str) or not _HEX64.fullmatch(signing_key):
        raise FormatError("config field 'signing_key' is not 64 lowercase hex characters")
    mac = body["mac"]
    if not isinstance(mac, str) or not _HEX64.fullmatch(mac):
        raise FormatError("config field 'mac' is not 64 lowercase hex characters")

    chunker_body = body["chunker"]
    if not isinstance(chunker_body, dict):
        raise FormatError("config field 'chunker' is not an object")
    check_fields(chunker_body, _CHUNKER_FIELDS, "config field 'chunker'", FormatError)
    if chunker_body["algorithm"] != CHUNKER_ALGORITHM:
        raise FormatError(
            f"config field 'chunker.algorithm' names {chunker_body['algorithm']!r}; this Lifeboat knows "
            f"only {CHUNKER_ALGORITHM!r} (upgrade Lifeboat?)"
        )
    sizes = [_int_field(chunker_body, name, f"chunker.{name}") for name in ("min", "avg", "max")]
    problem = _chunker_problem(*sizes)
    if problem is not None:
        raise FormatError(f"config field 'chunker': {problem}")

    config = RepoConfig(
        repository=repository,
        k=k,
        n=n,
        store=store,
        created=created,
        chunker=ChunkerParams(*sizes),
        pack_size=pack_size,
        signing_key=bytes.fromhex(signing_key),
    )
    return config, mac
