"""What a state snapshot asserts, who signed it, how snapshots chain, and proof bundles (pure).

A *statement* says: the record set ``name`` had root ``root`` (a :mod:`prolly` tree with
``count`` records whose sum fields total ``totals``) at ``time``, after journal change
``sequence``, read from ``source``, with this invariant report. A signer signs its canonical
JSON (:meth:`Statement.message`) with Ed25519; a FROST group (``frost-ed25519``) produces the
same kind of signature, so both verify as plain RFC 8032 signatures.

Statements of one name form a hash chain: each names the :meth:`Statement.digest` of the one
before (``previous``), so a verifier holding the latest can check that no earlier statement was
dropped, reordered or rewritten (:func:`check_chain`).

A *proof bundle* is what a holder needs to convince anyone that a record is (or is not) in a
signed state, and that the state's totals are what the statement says: the statement, its
signature and a prolly proof, in one JSON document::

    {"format": "lifeboat-state-proof", "version": 1, "statement": {...},
     "signature": hex64, "proof": {prolly proof object}}

Statement JSON (version 1; bytes as lowercase hex, totals as decimal strings)::

    {"format": "lifeboat-state", "version": 1, "name": str, "root": hex32, "count": int,
     "sum_fields": [str], "totals": ["<decimal>"], "fanout": int, "leaf_fanout": int,
     "key_field": str, "source": {...}, "time": "YYYY-MM-DDTHH:MM:SS.ffffffZ",
     "sequence": int, "invariants": {...} | null, "previous": hex32 | null,
     "signer": {"scheme": "ed25519" | "frost-ed25519", "public_key": hex32},
     "parent": hex32 | null}

The signing key file (the CLI writes it with mode 0600) holds the 32-byte Ed25519 seed::

    {"format": "lifeboat-state-signing-key", "version": 1, "seed": hex32}
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import nacl.exceptions
import nacl.signing
import orjson
from blake3 import blake3

from lifeboat.documents import canonical_json, check_fields, json_kind, parse_strict_versioned
from lifeboat.errors import RecordError, StateError, UsageError, exact_bytes
from lifeboat.fs import read_bounded
from lifeboat.state import prolly
from lifeboat.state.record import RecordSpec

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_VERSION",
    "MAX_BUNDLE_BYTES",
    "SCHEMES",
    "SIGNATURE_BYTES",
    "SIGNING_KEY_FORMAT",
    "SIGNING_KEY_VERSION",
    "STATEMENT_FORMAT",
    "STATEMENT_VERSION",
    "Signer",
    "Statement",
    "VerifiedBundle",
    "check_chain",
    "check_name",
    "check_record",
    "decode_signing_key",
    "encode_bundle",
    "encode_signing_key",
    "frost_group_key",
    "new_signing_key",
    "parse_trust",
    "public_key_of",
    "record_spec",
    "sign",
    "utc_now",
    "verify_bundle",
    "verify_signature",
]

STATEMENT_FORMAT: Final = "lifeboat-state"
STATEMENT_VERSION: Final = 1
SCHEMES: Final = ("ed25519", "frost-ed25519")
SIGNING_KEY_FORMAT: Final = "lifeboat-state-signing-key"
SIGNING_KEY_VERSION: Final = 1
BUNDLE_FORMAT: Final = "lifeboat-state-proof"
BUNDLE_VERSION: Final = 1
SIGNATURE_BYTES: Final = 64
#: The largest bundle :func:`verify_bundle` reads: the largest proof plus room for the statement.
MAX_BUNDLE_BYTES: Final = prolly.MAX_PROOF_BYTES + (8 << 20)

_DIGEST_DOMAIN: Final = b"lifeboat-state-statement\x00"
_KEY_BYTES: Final = 32
_SEED_BYTES: Final = 32
_COUNT_LIMIT: Final = 1 << 64
_TOTAL_LIMIT: Final = 1 << 192
_SEQUENCE_LIMIT: Final = 1 << 63
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_TIME: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?Z")
_DECIMAL: Final = re.compile(r"0|[1-9][0-9]{0,79}")
_HEX: Final = re.compile(r"(?:[0-9a-f]{2})*")

_STATEMENT_FIELDS: Final = frozenset(
    {
        "format",
        "version",
        "name",
        "root",
        "count",
        "sum_fields",
        "totals",
        "fanout",
        "leaf_fanout",
        "key_field",
        "source",
        "time",
        "sequence",
        "invariants",
        "previous",
        "signer",
        "parent",
    }
)
_SIGNER_FIELDS: Final = frozenset({"scheme", "public_key"})
_KEY_FILE_FIELDS: Final = frozenset({"format", "version", "seed"})
_BUNDLE_FIELDS: Final = frozenset({"format", "version", "statement", "signature", "proof"})


def check_name(name: object) -> str:
    """``name`` if it is a dataset name: 1 to 128 of ``A-Z a-z 0-9 . _ -``, starting alphanumeric."""
    if type(name) is not str or _NAME.fullmatch(name) is None:
        raise UsageError(
            f"dataset name {name!r} must be 1 to 128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def utc_now() -> str:
    """The current UTC time as a statement writes it (``2026-11-24T10:00:00.123456Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(text: str) -> datetime:
    """The moment of a statement time; ValueError when it is not RFC 3339 UTC as written here."""
    if _TIME.fullmatch(text) is None:
        raise ValueError(text)
    layout = "%Y-%m-%dT%H:%M:%S.%fZ" if "." in text else "%Y-%m-%dT%H:%M:%SZ"
    return datetime.strptime(text, layout).replace(tzinfo=UTC)


# --- the statement ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Signer:
    """Who signs: the scheme (one of :data:`SCHEMES`) and the 32-byte Ed25519 public key."""

    scheme: str
    public_key: bytes

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise UsageError(f"signer scheme {self.scheme!r} is not one of {', '.join(SCHEMES)}")
        if type(self.public_key) is not bytes or len(self.public_key) != _KEY_BYTES:
            raise UsageError(f"a signer's public key must be {_KEY_BYTES} bytes")


@dataclass(frozen=True)
class Statement:
    """What one state snapshot asserts (see the module docstring for its JSON)."""

    name: str
    root: bytes
    count: int
    sum_fields: tuple[str, ...]
    totals: tuple[int, ...]
    fanout: int
    leaf_fanout: int
    key_field: str
    source: dict[str, Any]
    time: str
    sequence: int
    invariants: dict[str, Any] | None
    previous: bytes | None
    signer: Signer
    parent: bytes | None = None

    def __post_init__(self) -> None:
        check_name(self.name)
        for label, value in (("root", self.root), ("previous", self.previous), ("parent", self.parent)):
            if value is None and label != "root":
                continue
            if type(value) is not bytes or len(value) != prolly.ID_BYTES:
                raise UsageError(f"a statement's {label} must be {prolly.ID_BYTES} bytes")
        if type(self.count) is not int or not 0 <= self.count < _COUNT_LIMIT:
            raise UsageError(
                f"a statement's count must be an integer from 0 to 2**64 - 1, not {self.count!r}"
            )
        fields = self.sum_fields
        if (
            type(fields) is not tuple
            or len(fields) > prolly.MAX_SUM_FIELDS
            or not all(type(field) is str and field for field in fields)
            or len(set(fields)) != len(fields)
        ):
            raise UsageError(
                f"a statement's sum fields must be a tuple of at most {prolly.MAX_SUM_FIELDS} "
                "distinct non-empty names"
            )
        totals = self.totals
        if type(totals) is not tuple or len(totals) != len(fields):
            raise UsageError(f"a statement needs one total per sum field ({len(fields)})")
        for field, total in zip(fields, totals, strict=True):
            if type(total) is not int or not 0 <= total < _TOTAL_LIMIT:
                raise UsageError(f"the total of {field!r} must be an integer from 0 to 2**192 - 1")
        for label, width in (("fanout", self.fanout), ("leaf_fanout", self.leaf_fanout)):
            if type(width) is not int or not prolly.MIN_FANOUT <= width <= prolly.MAX_FANOUT:
                raise UsageError(
                    f"a statement's {label} must be an integer from {prolly.MIN_FANOUT} to "
                    f"{prolly.MAX_FANOUT}, not {width!r}"
                )
        if type(self.key_field) is not str or not self.key_field:
            raise UsageError("a statement's key field must be a non-empty string")
        if type(self.source) is not dict:
            raise UsageError("a statement's source must be a dict (the source's description)")
        try:
            _parse_time(self.time)
        except (TypeError, ValueError):
            raise UsageError(
                f"a statement's time {self.time!r} is not RFC 3339 UTC (YYYY-MM-DDTHH:MM:SS.ffffffZ)"
            ) from None
        if type(self.sequence) is not int or not 0 <= self.sequence < _SEQUENCE_LIMIT:
            raise UsageError(
                f"a statement's sequence must be an integer from 0 to 2**63 - 1, not {self.sequence!r}"
            )
        if self.invariants is not None and (
            type(self.invariants) is not dict or type(self.invariants.get("passed")) is not bool
        ):
            raise UsageError("a statement's invariants must be None or a report with a boolean 'passed'")
        if type(self.signer) is not Signer:
            raise UsageError("a statement's signer must be a Signer")

    @property
    def invariants_passed(self) -> bool | None:
        """Whether every invariant held; None when the snapshot was taken without invariants."""
        if self.invariants is None:
            return None
        return bool(self.invariants["passed"])

    def to_json(self) -> dict[str, Any]:
        """The statement as a JSON object (bytes as hex, totals as decimal strings)."""
        return {
            "format": STATEMENT_FORMAT,
            "version": STATEMENT_VERSION,
            "name": self.name,
            "root": self.root.hex(),
            "count": self.count,
            "sum_fields": list(self.sum_fields),
            "totals": [str(total) for total in self.totals],
            "fanout": self.fanout,
            "leaf_fanout": self.leaf_fanout,
            "key_field": self.key_field,
            "source": self.source,
            "time": self.time,
            "sequence": self.sequence,
            "invariants": self.invariants,
            "previous": None if self.previous is None else self.previous.hex(),
            "signer": {"scheme": self.signer.scheme, "public_key": self.signer.public_key.hex()},
            "parent": None if self.parent is None else self.parent.hex(),
        }

    @classmethod
    def from_json(cls, obj: object, *, what: str) -> Statement:
        """Read :meth:`to_json` output strictly; :class:`StateError` naming ``what`` otherwise."""
        if not isinstance(obj, dict) or obj.get("format") != STATEMENT_FORMAT:
            raise StateError(f"{what} is not a Lifeboat state statement")
        version = obj.get("version")
        if type(version) is not int or version < 1:
            raise StateError(f"{what} field 'version' is {version!r}, not a format version")
        if version > STATEMENT_VERSION:
            raise StateError(
                f"{what} is statement version {version}, newer than this Lifeboat reads "
                f"(version {STATEMENT_VERSION}); upgrade Lifeboat to read it"
            )
        check_fields(obj, _STATEMENT_FIELDS, what, StateError)
        signer = obj["signer"]
        if not isinstance(signer, dict):
            raise StateError(f"{what} field 'signer' is not a JSON object")
        check_fields(signer, _SIGNER_FIELDS, f"{what} signer", StateError)
        if signer["scheme"] not in SCHEMES:
            raise StateError(f"{what} signer scheme {signer['scheme']!r} is not one of {', '.join(SCHEMES)}")
        sum_fields = obj["sum_fields"]
        totals = obj["totals"]
        if not isinstance(sum_fields, list) or not all(type(field) is str for field in sum_fields):
            raise StateError(f"{what} field 'sum_fields' must be a list of strings")
        if not isinstance(totals, list) or not all(
            type(total) is str and _DECIMAL.fullmatch(total) for total in totals
        ):
            raise StateError(f"{what} field 'totals' must be a list of decimal strings without leading zeros")
        invariants = obj["invariants"]
        if invariants is not None and not isinstance(invariants, dict):
            raise StateError(f"{what} field 'invariants' must be a JSON object or null")
        for label in ("name", "key_field", "time"):
            if type(obj[label]) is not str:
                raise StateError(f"{what} field {label!r} must be a string")
        for label in ("count", "fanout", "leaf_fanout", "sequence"):
            if type(obj[label]) is not int:
                raise StateError(f"{what} field {label!r} must be an integer")
        if not isinstance(obj["source"], dict):
            raise StateError(f"{what} field 'source' must be a JSON object")
        try:
            return cls(
                name=obj["name"],
                root=_hex(obj["root"], f"{what} field 'root'"),
                count=obj["count"],
                sum_fields=tuple(sum_fields),
                totals=tuple(int(total) for total in totals),
                fanout=obj["fanout"],
                leaf_fanout=obj["leaf_fanout"],
                key_field=obj["key_field"],
                source=obj["source"],
                time=obj["time"],
                sequence=obj["sequence"],
                invariants=invariants,
                previous=_optional_hex(obj["previous"], f"{what} field 'previous'"),
                signer=Signer(signer["scheme"], _hex(signer["public_key"], f"{what} signer public key")),
                parent=_optional_hex(obj["parent"], f"{what} field 'parent'"),
            )
        except UsageError as exc:
            raise StateError(f"{what}: {exc}") from None

    def message(self) -> bytes:
        """The bytes that are signed: the canonical JSON of :meth:`to_json`."""
        return canonical_json(self.to_json())

    def digest(self) -> bytes:
        """The statement's identity in a chain (BLAKE3 of a domain tag and :meth:`message`)."""
        digest: bytes = blake3(_DIGEST_DOMAIN + self.message()).digest()
        return digest

    def short(self) -> str:
        """The first 12 hex digits of :meth:`digest`, for messages."""
        return self.digest().hex()[:12]


def _hex(value: object, what: str, length: int = prolly.ID_BYTES) -> bytes:
    if type(value) is not str or len(value) != 2 * length or _HEX.fullmatch(value) is None:
        raise StateError(f"{what} must be {2 * length} lowercase hex digits")
    return bytes.fromhex(value)


def _optional_hex(value: object, what: str) -> bytes | None:
    return None if value is None else _hex(value, what)


# --- signatures and chains --------------------------------------------------------------------


def sign(statement: Statement, seed: bytes) -> bytes:
    """The Ed25519 signature (64 bytes) of ``statement`` with the key whose seed is ``seed``.

    The seed's public key must be the statement's signer. A ``frost-ed25519`` statement is
    signed by a FROST ceremony over :meth:`Statement.message`, not here.
    """
    key = nacl.signing.SigningKey(exact_bytes(seed, _SEED_BYTES, "an Ed25519 signing seed"))
    if statement.signer.scheme != "ed25519":
        raise UsageError(
            f"a {statement.signer.scheme} statement is signed by its signing ceremony, not with one seed"
        )
    if bytes(key.verify_key) != statement.signer.public_key:
        raise UsageError(
            f"the signing key's public key {bytes(key.verify_key).hex()} is not the statement's signer "
            f"{statement.signer.public_key.hex()}"
        )
    signature: bytes = key.sign(statement.message()).signature
    return signature


def verify_signature(statement: Statement, signature: bytes) -> None:
    """Check ``signature`` on ``statement`` with its signer's key; :class:`StateError` if not valid."""
    key = statement.signer.public_key
    if not isinstance(signature, bytes | bytearray) or len(signature) != SIGNATURE_BYTES:
        raise StateError(f"the signature of statement {statement.short()} is not {SIGNATURE_BYTES} bytes")
    try:
        nacl.signing.VerifyKey(key).verify(statement.message(), bytes(signature))
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError):
        raise StateError(
            f"the signature of statement {statement.short()} ({statement.name!r}) does not verify with "
            f"its signer's {statement.signer.scheme} key {key.hex()}: the statement or the signature "
            "was altered, or another key signed it"
        ) from None


def check_chain(statements: Sequence[Statement]) -> list[str]:
    """What is wrong with a chain of statements of one name, oldest first (empty: nothing).

    The first has no ``previous``; each later one names the digest of the one before, has the
    same signer key, and neither its time nor its sequence goes back.
    """
    problems: list[str] = []
    if not statements:
        return problems
    digests = [statement.digest() for statement in statements]
    name = statements[0].name
    for index, statement in enumerate(statements):
        label = f"statement {index} ({digests[index].hex()[:12]})"
        if statement.name != name:
            problems.append(f"{label} is for {statement.name!r}, not {name!r}")
        if index == 0:
            if statement.previous is not None:
                problems.append(
                    f"{label} is the first but names a previous statement {statement.previous.hex()[:12]}"
                )
            continue
        before = statements[index - 1]
        before_label = f"statement {index - 1} ({digests[index - 1].hex()[:12]})"
        if statement.previous != digests[index - 1]:
            named = "none" if statement.previous is None else statement.previous.hex()[:12]
            problems.append(f"{label} names previous {named}, not {before_label}: the chain is broken")
        if statement.signer.public_key != before.signer.public_key:
            problems.append(
                f"{label} is signed by {statement.signer.public_key.hex()}, not "
                f"{before.signer.public_key.hex()} like {before_label}"
            )
        if _parse_time(statement.time) < _parse_time(before.time):
            problems.append(f"{label} has time {statement.time}, before {before.time} of {before_label}")
        if statement.sequence < before.sequence:
            problems.append(
                f"{label} has sequence {statement.sequence}, below {before.sequence} of {before_label}"
            )
    return problems


# --- signing keys -----------------------------------------------------------------------------


def frost_group_key(path: Path) -> bytes:
    """The group public key of a FROST(Ed25519) public key package file, as statements name it."""
    from lifeboat.threshold import serialize

    suite, package = serialize.decode_public_key_package(
        read_bounded(path, serialize.MAX_DOCUMENT_BYTES, what="public key package"), str(path)
    )
    if suite.name != "FROST-ED25519-SHA512-v1":
        raise UsageError(f"{path} is a {suite.name} group; record snapshots are signed with FROST(Ed25519)")
    return bytes(suite.group.serialize_element(package.group_public_key))


def parse_trust(value: str, *, what: str) -> bytes:
    """A signer to trust: 64 hex digits of an Ed25519 key, or a FROST public key package file."""
    text = value.strip().lower()
    if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
        return bytes.fromhex(text)
    path = Path(value)
    if not path.is_file():
        raise UsageError(f"{what} {value!r} is neither 64 hex digits nor a public key package file")
    return frost_group_key(path)


def new_signing_key() -> bytes:
    """A new random Ed25519 seed (32 bytes)."""
    return secrets.token_bytes(_SEED_BYTES)


def public_key_of(seed: bytes) -> bytes:
    """The Ed25519 public key (32 bytes) of a seed."""
    key = nacl.signing.SigningKey(exact_bytes(seed, _SEED_BYTES, "an Ed25519 signing seed"))
    return bytes(key.verify_key)


def encode_signing_key(seed: bytes) -> bytes:
    """The signing key file's bytes for ``seed`` (one line of canonical JSON)."""
    seed = exact_bytes(seed, _SEED_BYTES, "an Ed25519 signing seed")
    document = {"format": SIGNING_KEY_FORMAT, "version": SIGNING_KEY_VERSION, "seed": seed.hex()}
    return canonical_json(document) + b"\n"


def decode_signing_key(data: bytes, what: str) -> bytes:
    """The seed in a signing key file; :class:`StateError` naming ``what`` (never the seed)."""
    body = parse_strict_versioned(
        data,
        fmt=SIGNING_KEY_FORMAT,
        version=SIGNING_KEY_VERSION,
        limit=4096,
        what=what,
        kind="a Lifeboat state signing key",
        error=StateError,
    )
    check_fields(body, _KEY_FILE_FIELDS, what, StateError)
    return _hex(body["seed"], f"{what} field 'seed'", _SEED_BYTES)


# --- proof bundles ----------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle that verified: its signed statement and what its proof showed."""

    statement: Statement
    proof: prolly.VerifiedProof


def encode_bundle(statement: Statement, signature: bytes, proof: prolly.Proof) -> bytes:
    """The proof bundle: statement, signature and prolly proof as one canonical JSON line."""
    signature = exact_bytes(signature, SIGNATURE_BYTES, "a statement signature")
    if not isinstance(proof, prolly.Proof):
        raise UsageError(f"a bundle's proof must be a prolly.Proof, not {type(proof).__name__}")
    document = {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "statement": statement.to_json(),
        "signature": signature.hex(),
        "proof": json.loads(proof.to_json()),
    }
    return canonical_json(document) + b"\n"


def verify_bundle(data: bytes, *, root: bytes | None = None, trust: bytes | None = None) -> VerifiedBundle:
    """Check a proof bundle on its own; :class:`StateError` saying which check failed.

    The statement's signature must verify with its signer's key, which must be ``trust`` when
    given; the statement's root must be ``root`` when given; the proof must have the statement's
    shape and lead to its root, count and totals.
    """
    what = "the proof bundle"
    body = parse_strict_versioned(
        data,
        fmt=BUNDLE_FORMAT,
        version=BUNDLE_VERSION,
        limit=MAX_BUNDLE_BYTES,
        what=what,
        kind="a Lifeboat state proof bundle",
        error=StateError,
    )
    check_fields(body, _BUNDLE_FIELDS, what, StateError)
    statement = Statement.from_json(body["statement"], what=f"{what}'s statement")
    signature = _hex(body["signature"], f"{what}'s signature", SIGNATURE_BYTES)
    if not isinstance(body["proof"], dict):
        raise StateError(f"{what}'s proof is not a JSON object")
    try:
        proof = prolly.Proof.from_json(canonical_json(body["proof"]))
    except prolly.ProofError as exc:
        raise StateError(f"{what}'s proof is malformed: {exc}") from None
    verify_signature(statement, signature)
    signer = statement.signer.public_key
    if trust is not None and signer != exact_bytes(trust, _KEY_BYTES, "a trusted public key"):
        raise StateError(f"{what} is signed by {signer.hex()}, not by the trusted key {bytes(trust).hex()}")
    if root is not None and statement.root != exact_bytes(root, prolly.ID_BYTES, "an expected root"):
        raise StateError(f"{what}'s statement is for root {statement.root.hex()}, not {bytes(root).hex()}")
    shape = (proof.fanout, proof.leaf_fanout, proof.sum_fields)
    expected = (statement.fanout, statement.leaf_fanout, len(statement.sum_fields))
    if shape != expected:
        raise StateError(
            f"{what}'s proof is for a tree of fanout {shape[0]}, leaf fanout {shape[1]} and {shape[2]} "
            f"sum fields; the statement says {expected[0]}, {expected[1]} and {expected[2]}"
        )
    try:
        verified = prolly.verify(proof, statement.root, totals=statement.totals)
    except prolly.ProofError as exc:
        raise StateError(f"{what}'s proof does not verify against its statement's root: {exc}") from None
    if verified.count != statement.count:
        raise StateError(
            f"{what}'s proof shows {verified.count} records under the root; the statement says {statement.count}"
        )
    for record in (verified.record, verified.before, verified.after):
        if record is not None:
            check_record(statement, record, what=f"{what}'s record {_show(record.key)}")
    return VerifiedBundle(statement, verified)


def check_record(
    statement: Statement, record: prolly.Record, *, what: str = "the record", spec: RecordSpec | None = None
) -> None:
    """:class:`StateError` unless ``record``'s value is a record the statement's spec gives this
    key and these sums: a JSON object whose key field is the record's key and whose sum fields
    are the sums the tree commits (the rules of :mod:`lifeboat.state.records`).

    A tree commits a record's value, key and sums side by side; this is what ties them
    together, so a signer that committed a value saying 100 next to a sum of 0 is caught.
    ``spec`` is :func:`record_spec` of the statement (pass it when checking many records).
    """
    if spec is None:
        spec = record_spec(statement, what)
    value = record.value
    try:
        document = orjson.loads(value)  # the JSON the sources accept: RFC 8259, UTF-8, no NaN
    except orjson.JSONDecodeError:
        raise StateError(f"{what}: the value is not JSON, so it cannot hold its key and sums") from None
    if type(document) is not dict:
        raise StateError(f"{what}: the value is {json_kind(document)}, not a JSON object")
    try:
        key = spec.key_of(document, what)
        sums = spec.sums_of(document, what, record.key)
    except RecordError:
        # orjson reads integers beyond 64 bits as floats; read the same text again exactly
        # (as the JSON Lines source does), and let that reading's error stand.
        try:
            document = json.loads(value)
            key = spec.key_of(document, what)
            sums = spec.sums_of(document, what, record.key)
        except RecordError as exc:
            raise StateError(str(exc)) from None
        except (ValueError, RecursionError):
            raise StateError(f"{what}: the value is not JSON, so it cannot hold its key and sums") from None
    if key != record.key:
        raise StateError(
            f"{what}: the value's key field {statement.key_field!r} is {_show(key)}, "
            f"not the key the tree commits ({_show(record.key)})"
        )
    for field, found, committed in zip(statement.sum_fields, sums, record.sums, strict=True):
        if found != committed:
            raise StateError(f"{what}: the value's {field} is {found} but the tree commits {committed}")


def record_spec(statement: Statement, what: str = "the statement") -> RecordSpec:
    """The :class:`RecordSpec` a statement names (its key field and sum fields)."""
    try:
        return RecordSpec(statement.key_field, statement.sum_fields)
    except UsageError as exc:
        raise StateError(f"{what}: the statement's record spec is unusable: {exc}") from None


def _show(key: bytes) -> str:
    text = repr(key.decode("utf-8", "backslashreplace"))
    return text if len(text) <= 80 else text[:77] + "..."
