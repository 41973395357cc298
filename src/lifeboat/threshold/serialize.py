"""Versioned JSON encodings of FROST objects (docs/formats.md, "FROST files").

Every document is a JSON object with ``format`` (``lifeboat-frost-<kind>``), ``version`` (1;
2 for a nonce file, whose nonces are sealed under a one-time key held in the signer state, and
for a DKG round-two secret that records the digest of the round-one packages part2 checked) and
``ciphersuite`` (the RFC 9591 context string). Scalars and elements are lower-case hex of
the suite's own serialization; identifiers are JSON integers. Decoding checks the format,
version and suite, validates every encoding (canonical, in range, not the identity), and
names the offending field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lifeboat.documents import canonical_json, parse_versioned
from lifeboat.threshold import dkg, keygen, refresh, suites
from lifeboat.threshold.frost import (
    SignatureShare,
    SigningCommitment,
    SigningNonces,
    check_identifier,
)
from lifeboat.threshold.group import (
    Ciphersuite,
    Element,
    EncodingError,
    KeyPackage,
    PublicKeyPackage,
    ThresholdError,
)

VERSION = 1
NONCES_VERSION = 2  # version 1 held the nonces in clear, so any copy of the file could sign
#: A DKG round-two secret of version 2 adds ``round1_digest``; version 1 (without it) is still
#: read, and part3 then checks the proofs of knowledge again.
ROUND2_SECRET_VERSION = 2
MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
ONE_TIME_KEY_BYTES = 32
IV_BYTES = 12


def _fmt(kind: str) -> str:
    return f"lifeboat-frost-{kind}"


class Codec:
    """Hex encoders and checked decoders for one suite."""

    def __init__(self, suite: Ciphersuite) -> None:
        self.suite = suite
        self.group = suite.group

    def element(self, value: Element) -> str:
        return self.group.serialize_element(value).hex()

    def scalar(self, value: int) -> str:
        return self.group.serialize_scalar(value).hex()

    def read_element(self, body: Mapping[str, Any], field: str) -> Element:
        return self._decode(body, field, self.group.deserialize_element)

    def read_scalar(self, body: Mapping[str, Any], field: str) -> int:
        return int(self._decode(body, field, self.group.deserialize_scalar))

    def read_elements(self, body: Mapping[str, Any], field: str) -> tuple[Element, ...]:
        values = body.get(field)
        if not isinstance(values, list) or not values:
            raise ThresholdError(f"field {field!r} must be a non-empty list")
        return tuple(self.read_element({f"{field}[{i}]": v}, f"{field}[{i}]") for i, v in enumerate(values))

    def _decode(self, body: Mapping[str, Any], field: str, decode: Callable[[bytes], Any]) -> Any:
        text = body.get(field)
        if not isinstance(text, str):
            raise ThresholdError(f"field {field!r} is missing or not a hex string")
        try:
            return decode(bytes.fromhex(text))
        except ValueError:
            raise ThresholdError(f"field {field!r} is not hex") from None
        except EncodingError as exc:
            raise ThresholdError(f"field {field!r}: {exc}") from None

    def read_identifier(self, body: Mapping[str, Any], field: str = "identifier") -> int:
        value = body.get(field)
        if type(value) is not int:
            raise ThresholdError(f"field {field!r} must be an integer identifier")
        return check_identifier(self.suite, value)


def _header(suite: Ciphersuite, kind: str, fields: Mapping[str, Any], version: int) -> dict[str, Any]:
    return {"format": _fmt(kind), "version": version, "ciphersuite": suite.name, **fields}


def _dump(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, indent=1).encode() + b"\n"


def document(suite: Ciphersuite, kind: str, fields: Mapping[str, Any], version: int = VERSION) -> bytes:
    return _dump(_header(suite, kind, fields, version))


def read_document(
    data: bytes,
    kind: str,
    what: str,
    expected: Ciphersuite | None = None,
    version: int | tuple[int, ...] = VERSION,
) -> tuple[Codec, dict[str, Any]]:
    """Parse a FROST document of ``kind``; return a codec for its suite and the body."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ThresholdError(f"{what} is larger than any FROST document ({len(data)} bytes)")
    body = parse_versioned(
        data, fmt=_fmt(kind), version=version, what=what, kind=f"a FROST {kind} file", error=ThresholdError
    )
    name = body.get("ciphersuite")
    suite = suites.by_name(name if isinstance(name, str) else "")
    if expected is not None and suite.name != expected.name:
        raise ThresholdError(f"{what} is for ciphersuite {suite.name}, not {expected.name}")
    return Codec(suite), body


# -- key material ---------------------------------------------------------------------------


def encode_key_package(suite: Ciphersuite, kp: KeyPackage) -> bytes:
    c = Codec(suite)
    return document(
        suite,
        "key-package",
        {
            "identifier": kp.identifier,
            "signing_share": c.scalar(kp.signing_share),
            "verifying_share": c.element(kp.verifying_share),
            "group_public_key": c.element(kp.group_public_key),
            "min_signers": kp.min_signers,
        },
    )


def _min_signers(body: Mapping[str, Any]) -> int:
    value = body.get("min_signers")
    if type(value) is not int or not 2 <= value <= keygen.MAX_PARTICIPANTS:
        raise ThresholdError(f"field 'min_signers' must be an integer from 2 to {keygen.MAX_PARTICIPANTS}")
    return value


def decode_key_package(data: bytes, what: str) -> tuple[Ciphersuite, KeyPackage]:
    c, body = read_document(data, "key-package", what)
    kp = KeyPackage(
        identifier=c.read_identifier(body),
        signing_share=c.read_scalar(body, "signing_share"),
        verifying_share=c.read_element(body, "verifying_share"),
        group_public_key=c.read_element(body, "group_public_key"),
        min_signers=_min_signers(body),
    )
    if not c.group.equal(c.group.scalar_base_mult(kp.signing_share), kp.verifying_share):
        raise ThresholdError(f"{what}: the signing share does not match the verifying share (damaged file)")
    return c.suite, kp


def encode_public_key_package(suite: Ciphersuite, pkp: PublicKeyPackage) -> bytes:
    c = Codec(suite)
    return document(
        suite,
        "public-key-package",
        {
            "group_public_key": c.element(pkp.group_public_key),
            "min_signers": pkp.min_signers,
            "verifying_shares": {str(i): c.element(e) for i, e in sorted(pkp.verifying_shares.items())},
        },
    )


def decode_public_key_package(data: bytes, what: str) -> tuple[Ciphersuite, PublicKeyPackage]:
    c, body = read_document(data, "public-key-package", what)
    shares = body.get("verifying_shares")
    if not isinstance(shares, dict) or not shares:
        raise ThresholdError(f"{what}: 'verifying_shares' must be a non-empty object")
    verifying: dict[int, Element] = {}
    for key, value in shares.items():
        if not key.isdigit() or str(int(key)) != key:
            raise ThresholdError(f"{what}: verifying share key {key!r} is not a decimal identifier")
        identifier = check_identifier(c.suite, int(key))
        field = f"verifying_shares[{key}]"
        verifying[identifier] = c.read_element({field: value}, field)
    pkp = PublicKeyPackage(verifying, c.read_element(body, "group_public_key"), _min_signers(body))
    if pkp.min_signers > len(verifying):
        raise ThresholdError(f"{what}: threshold {pkp.min_signers} exceeds its {len(verifying)} participants")
    return c.suite, pkp


# -- signing ----------------------------------------------------------------------------------


def _commitment_fields(c: Codec, commitment: SigningCommitment) -> dict[str, Any]:
    return {
        "identifier": commitment.identifier,
        "hiding": c.element(commitment.hiding),
        "binding": c.element(commitment.binding),
    }


def _read_commitment(c: Codec, body: Mapping[str, Any], where: str) -> SigningCommitment:
    try:
        return SigningCommitment(
            c.read_identifier(body), c.read_element(body, "hiding"), c.read_element(body, "binding")
        )
    except ThresholdError as exc:
        raise ThresholdError(f"{where}: {exc}") from None


def encode_commitment(suite: Ciphersuite, commitment: SigningCommitment) -> bytes:
    return document(suite, "commitment", _commitment_fields(Codec(suite), commitment))


def decode_commitment(
    data: bytes, what: str, expected: Ciphersuite | None = None
) -> tuple[Ciphersuite, SigningCommitment]:
    c, body = read_document(data, "commitment", what, expected)
    return c.suite, _read_commitment(c, body, what)


@dataclass(frozen=True)
class KeyFileIdentity:
    """Which file on which file system holds a one-time key: its inode number and change time.

    A copy or a file-level restore of the file gets another inode or another change time (no
    ordinary call can set it), so a nonce file names the one file that may open it.
    """

    inode: int
    ctime_ns: int


@dataclass(frozen=True)
class SealedNonces:
    """A nonce file as read: its public fields, and the nonces still sealed."""

    suite: Ciphersuite
    nonce_id: str
    commitment: SigningCommitment
    key_file: KeyFileIdentity
    sealed: bytes  # IV || AES-256-GCM ciphertext and tag
    associated_data: bytes

    @property
    def identifier(self) -> int:
        return self.commitment.identifier


def _check_nonce_id(nonce_id: object, what: str) -> str:
    if (
        not isinstance(nonce_id, str)
        or len(nonce_id) != 32
        or not all(ch in "0123456789abcdef" for ch in nonce_id)
    ):
        raise ThresholdError(f"{what}: 'nonce_id' must be 32 lower-case hex digits")
    return nonce_id


def _natural(body: Mapping[str, Any], field: str, what: str) -> int:
    value = body.get(field)
    if type(value) is not int or value < 0:
        raise ThresholdError(f"{what}: field {field!r} must be a non-negative integer")
    return value


def encode_nonces(
    suite: Ciphersuite,
    nonces: SigningNonces,
    nonce_id: str,
    one_time_key: bytes,
    key_file: KeyFileIdentity,
    iv: bytes,
) -> bytes:
    """A version-2 nonce file: the nonces sealed under ``one_time_key`` (docs/formats.md).

    The associated data is the canonical JSON of every other field of the file, so no field
    (the commitment, the id, the key file it names) can be edited without the file failing to open.
    """
    if len(one_time_key) != ONE_TIME_KEY_BYTES or len(iv) != IV_BYTES:
        raise ThresholdError("a one-time key is 32 bytes and its IV 12")
    c = Codec(suite)
    header = _header(
        suite,
        "nonces",
        {
            "nonce_id": nonce_id,
            "commitment": _commitment_fields(c, nonces.commitment),
            "one_time_key_file": {"inode": key_file.inode, "ctime_ns": key_file.ctime_ns},
        },
        NONCES_VERSION,
    )
    plaintext = c.group.serialize_scalar(nonces.hiding) + c.group.serialize_scalar(nonces.binding)
    sealed = iv + AESGCM(one_time_key).encrypt(iv, plaintext, canonical_json(header))
    return _dump({**header, "sealed_nonces": sealed.hex()})


def decode_nonces(data: bytes, what: str) -> SealedNonces:
    """Read a nonce file's public fields; :func:`open_nonces` unseals the nonces."""
    if len(data) <= MAX_DOCUMENT_BYTES:
        try:
            old = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError):
            old = None
        if isinstance(old, dict) and old.get("format") == _fmt("nonces") and old.get("version") == 1:
            raise ThresholdError(
                f"{what} is a version-1 nonce file, which any copy of it could use again; this "
                "Lifeboat signs only with nonce files sealed under their signer state. Delete it and "
                "run 'lifeboat frost commit' again"
            )
    c, body = read_document(data, "nonces", what, version=NONCES_VERSION)
    nonce_id = _check_nonce_id(body.get("nonce_id"), what)
    raw = body.get("commitment")
    if not isinstance(raw, dict):
        raise ThresholdError(f"{what}: 'commitment' must be an object")
    commitment = _read_commitment(c, raw, what)
    key_file = body.get("one_time_key_file")
    if not isinstance(key_file, dict):
        raise ThresholdError(f"{what}: 'one_time_key_file' must be an object with inode and ctime_ns")
    identity = KeyFileIdentity(_natural(key_file, "inode", what), _natural(key_file, "ctime_ns", what))
    sealed_hex = body.pop("sealed_nonces", None)
    size = IV_BYTES + 2 * len(c.group.serialize_scalar(0)) + 16
    try:
        sealed = bytes.fromhex(sealed_hex) if isinstance(sealed_hex, str) else b""
    except ValueError:
        sealed = b""
    if len(sealed) != size:
        raise ThresholdError(f"{what}: 'sealed_nonces' must be {size} bytes of hex")
    return SealedNonces(c.suite, nonce_id, commitment, identity, sealed, canonical_json(body))


def open_nonces(nonce_file: SealedNonces, one_time_key: bytes, what: str) -> SigningNonces:
    """Unseal the nonces with their one-time key and check them against their commitment."""
    suite, sealed = nonce_file.suite, nonce_file.sealed
    try:
        plaintext = AESGCM(one_time_key).decrypt(
            sealed[:IV_BYTES], sealed[IV_BYTES:], nonce_file.associated_data
        )
    except (InvalidTag, ValueError):
        raise ThresholdError(
            f"{what} does not open with its one-time key: the file was edited or damaged"
        ) from None
    g = suite.group
    half = len(plaintext) // 2
    try:
        hiding = g.deserialize_scalar(plaintext[:half])
        binding = g.deserialize_scalar(plaintext[half:])
    except EncodingError as exc:
        raise ThresholdError(f"{what}: sealed nonces: {exc}") from None
    commitment = nonce_file.commitment
    if not (
        g.equal(g.scalar_base_mult(hiding), commitment.hiding)
        and g.equal(g.scalar_base_mult(binding), commitment.binding)
    ):
        raise ThresholdError(f"{what}: the nonces do not match their commitment (damaged file)")
    return SigningNonces(commitment.identifier, hiding, binding, commitment)


def encode_one_time_key(suite: Ciphersuite, identifier: int, nonce_id: str, key: bytes) -> bytes:
    """The signer-state file that holds the one key that opens one nonce file."""
    return document(suite, "one-time-key", {"identifier": identifier, "nonce_id": nonce_id, "key": key.hex()})


def decode_one_time_key(data: bytes, what: str, expected: Ciphersuite) -> tuple[int, str, bytes]:
    c, body = read_document(data, "one-time-key", what, expected)
    identifier = c.read_identifier(body)
    nonce_id = _check_nonce_id(body.get("nonce_id"), what)
    text = body.get("key")
    try:
        key = bytes.fromhex(text) if isinstance(text, str) else b""
    except ValueError:
        key = b""
    if len(key) != ONE_TIME_KEY_BYTES:
        raise ThresholdError(f"{what}: 'key' must be {ONE_TIME_KEY_BYTES} bytes of hex")
    return identifier, nonce_id, key


def encode_signing_package(
    suite: Ciphersuite, message: bytes, commitments: Sequence[SigningCommitment]
) -> bytes:
    c = Codec(suite)
    return document(
        suite,
        "signing-package",
        {
            "message": message.hex(),
            "commitments": [
                _commitment_fields(c, x) for x in sorted(commitments, key=lambda x: x.identifier)
            ],
        },
    )


def decode_signing_package(data: bytes, what: str) -> tuple[Ciphersuite, bytes, list[SigningCommitment]]:
    c, body = read_document(data, "signing-package", what)
    message_hex = body.get("message")
    if not isinstance(message_hex, str):
        raise ThresholdError(f"{what}: 'message' must be hex")
    try:
        message = bytes.fromhex(message_hex)
    except ValueError:
        raise ThresholdError(f"{what}: 'message' is not hex") from None
    raw = body.get("commitments")
    if not isinstance(raw, list) or not raw:
        raise ThresholdError(f"{what}: 'commitments' must be a non-empty list")
    commitments = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ThresholdError(f"{what}: commitments[{i}] must be an object")
        commitments.append(_read_commitment(c, item, f"{what}: commitments[{i}]"))
    ids = [x.identifier for x in commitments]
    if len(set(ids)) != len(ids):
        raise ThresholdError(f"{what}: a participant appears twice among the commitments")
    return c.suite, message, commitments


def encode_signature_share(suite: Ciphersuite, share: SignatureShare) -> bytes:
    c = Codec(suite)
    return document(
        suite, "signature-share", {"identifier": share.identifier, "share": c.scalar(share.share)}
    )


def decode_signature_share(
    data: bytes, what: str, expected: Ciphersuite | None = None
) -> tuple[Ciphersuite, SignatureShare]:
    c, body = read_document(data, "signature-share", what, expected)
    return c.suite, SignatureShare(c.read_identifier(body), c.read_scalar(body, "share"))


def encode_signature(
    suite: Ciphersuite, message: bytes, signature: bytes, group_public_key: Element
) -> bytes:
    c = Codec(suite)
    return document(
        suite,
        "signature",
        {
            "message": message.hex(),
            "signature": signature.hex(),
            "group_public_key": c.element(group_public_key),
        },
    )


def decode_signature(data: bytes, what: str) -> tuple[Ciphersuite, bytes, bytes, Element]:
    c, body = read_document(data, "signature", what)
    message_hex, signature_hex = body.get("message"), body.get("signature")
    if not isinstance(message_hex, str) or not isinstance(signature_hex, str):
        raise ThresholdError(f"{what}: 'message' and 'signature' must be hex strings")
    try:
        message = bytes.fromhex(message_hex)
        signature = bytes.fromhex(signature_hex)
    except ValueError:
        raise ThresholdError(f"{what}: 'message' and 'signature' must be hex") from None
    return c.suite, message, signature, c.read_element(body, "group_public_key")


# -- DKG, repair, refresh messages ------------------------------------------------------------
# Element lists may hold the identity only as the constant term of a refresh commitment (a
# polynomial with constant term zero); it is written as JSON null there and nowhere else.


def _elements(c: Codec, values: Sequence[Element]) -> list[str | None]:
    return [None if c.group.is_identity(v) else c.element(v) for v in values]


def _read_element_list(
    c: Codec, body: Mapping[str, Any], field: str, *, identity_first: bool = False
) -> tuple[Element, ...]:
    values = body.get(field)
    if not isinstance(values, list) or not values:
        raise ThresholdError(f"field {field!r} must be a non-empty list")
    out: list[Element] = []
    for i, value in enumerate(values):
        name = f"{field}[{i}]"
        if value is None and identity_first and i == 0:
            out.append(c.group.identity())
        else:
            out.append(c.read_element({name: value}, name))
    return tuple(out)


def _read_scalar_list(c: Codec, body: Mapping[str, Any], field: str) -> tuple[int, ...]:
    values = body.get(field)
    if not isinstance(values, list) or not values:
        raise ThresholdError(f"field {field!r} must be a non-empty list")
    return tuple(c.read_scalar({f"{field}[{i}]": v}, f"{field}[{i}]") for i, v in enumerate(values))


def _count(body: Mapping[str, Any], field: str) -> int:
    value = body.get(field)
    if type(value) is not int or value < 1:
        raise ThresholdError(f"field {field!r} must be a positive integer")
    return value


def encode_round1_secret(
    suite: Ciphersuite, secret: dkg.Round1SecretPackage, kind: str = "dkg-round1-secret"
) -> bytes:
    c = Codec(suite)
    return document(
        suite,
        kind,
        {
            "identifier": secret.identifier,
            "coefficients": [c.scalar(x) for x in secret.coefficients],
            "min_signers": secret.min_signers,
            "max_signers": secret.max_signers,
        },
    )


def decode_round1_secret(
    data: bytes, what: str, kind: str = "dkg-round1-secret"
) -> tuple[Ciphersuite, dkg.Round1SecretPackage]:
    c, body = read_document(data, kind, what)
    coefficients = _read_scalar_list(c, body, "coefficients")
    commitment = tuple(c.group.scalar_base_mult(x) for x in coefficients)
    min_signers = _min_signers(body)
    if len(coefficients) != min_signers:
        raise ThresholdError(
            f"{what}: a t-of-n polynomial has t = {min_signers} coefficients, not {len(coefficients)}"
        )
    return c.suite, dkg.Round1SecretPackage(
        c.read_identifier(body), coefficients, commitment, min_signers, _count(body, "max_signers")
    )


def encode_round1_package(suite: Ciphersuite, package: dkg.Round1Package) -> bytes:
    c = Codec(suite)
    r, mu = package.proof_of_knowledge
    return document(
        suite,
        "dkg-round1-package",
        {
            "identifier": package.identifier,
            "commitment": _elements(c, package.commitment),
            "proof_of_knowledge": {"R": c.element(r), "mu": c.scalar(mu)},
        },
    )


def decode_round1_package(data: bytes, what: str, expected: Ciphersuite) -> dkg.Round1Package:
    c, body = read_document(data, "dkg-round1-package", what, expected)
    proof = body.get("proof_of_knowledge")
    if not isinstance(proof, dict):
        raise ThresholdError(f"{what}: 'proof_of_knowledge' must be an object with R and mu")
    return dkg.Round1Package(
        c.read_identifier(body),
        _read_element_list(c, body, "commitment"),
        (c.read_element(proof, "R"), c.read_scalar(proof, "mu")),
    )


def encode_round2_secret(
    suite: Ciphersuite, secret: dkg.Round2SecretPackage, kind: str = "dkg-round2-secret"
) -> bytes:
    """Version 2 with ``round1_digest`` when the package has one (a DKG's), else version 1."""
    c = Codec(suite)
    fields: dict[str, Any] = {
        "identifier": secret.identifier,
        "commitment": _elements(c, secret.commitment),
        "secret_share": c.scalar(secret.secret_share),
        "min_signers": secret.min_signers,
        "max_signers": secret.max_signers,
    }
    if secret.round1_digest is None:
        return document(suite, kind, fields)
    if kind != "dkg-round2-secret":
        raise ThresholdError(f"a {kind} file has no round-one digest")
    fields["round1_digest"] = secret.round1_digest.hex()
    return document(suite, kind, fields, ROUND2_SECRET_VERSION)


def decode_round2_secret(
    data: bytes, what: str, kind: str = "dkg-round2-secret"
) -> tuple[Ciphersuite, dkg.Round2SecretPackage]:
    versions = (VERSION, ROUND2_SECRET_VERSION) if kind == "dkg-round2-secret" else VERSION
    c, body = read_document(data, kind, what, version=versions)
    digest = None
    if body["version"] == ROUND2_SECRET_VERSION:
        digest = _read_digest(body, "round1_digest", what)
    return c.suite, dkg.Round2SecretPackage(
        c.read_identifier(body),
        _read_element_list(c, body, "commitment", identity_first=kind.startswith("refresh")),
        c.read_scalar(body, "secret_share"),
        _min_signers(body),
        _count(body, "max_signers"),
        digest,
    )


def _read_digest(body: Mapping[str, Any], field: str, what: str) -> bytes:
    text = body.get(field)
    length = dkg.ROUND1_DIGEST_BYTES
    if not isinstance(text, str) or len(text) != 2 * length or text.strip("0123456789abcdef"):
        raise ThresholdError(f"{what}: field {field!r} must be {2 * length} lower-case hex digits")
    return bytes.fromhex(text)


def encode_round2_package(
    suite: Ciphersuite, package: dkg.Round2Package, kind: str = "dkg-round2-package"
) -> bytes:
    c = Codec(suite)
    return document(
        suite,
        kind,
        {
            "sender": package.sender,
            "receiver": package.receiver,
            "signing_share": c.scalar(package.signing_share),
        },
    )


def decode_round2_package(
    data: bytes, what: str, expected: Ciphersuite, kind: str = "dkg-round2-package"
) -> dkg.Round2Package:
    c, body = read_document(data, kind, what, expected)
    return dkg.Round2Package(
        c.read_identifier(body, "sender"),
        c.read_identifier(body, "receiver"),
        c.read_scalar(body, "signing_share"),
    )


def encode_refresh_round1_package(suite: Ciphersuite, package: refresh.RefreshRound1Package) -> bytes:
    c = Codec(suite)
    return document(
        suite,
        "refresh-round1-package",
        {"identifier": package.identifier, "commitment": _elements(c, package.commitment)},
    )


def decode_refresh_round1_package(
    data: bytes, what: str, expected: Ciphersuite
) -> refresh.RefreshRound1Package:
    c, body = read_document(data, "refresh-round1-package", what, expected)
    return refresh.RefreshRound1Package(c.read_identifier(body), _read_element_list(c, body, "commitment"))


def encode_refreshing_share(suite: Ciphersuite, share: refresh.RefreshingShare) -> bytes:
    c = Codec(suite)
    return document(
        suite,
        "refreshing-share",
        {
            "identifier": share.identifier,
            "value": c.scalar(share.value),
            "commitment": _elements(c, share.commitment),
        },
    )


def decode_refreshing_share(data: bytes, what: str, expected: Ciphersuite) -> refresh.RefreshingShare:
    c, body = read_document(data, "refreshing-share", what, expected)
    return refresh.RefreshingShare(
        c.read_identifier(body),
        c.read_scalar(body, "value"),
        _read_element_list(c, body, "commitment", identity_first=True),
    )


def encode_repair_value(
    suite: Ciphersuite, kind: str, sender: int, receiver: int, participant: int, value: int
) -> bytes:
    """``repair-delta`` (helper to helper) or ``repair-sigma`` (helper to the participant)."""
    c = Codec(suite)
    return document(
        suite,
        kind,
        {"sender": sender, "receiver": receiver, "participant": participant, "value": c.scalar(value)},
    )


def decode_repair_value(
    data: bytes, what: str, kind: str, expected: Ciphersuite | None = None
) -> tuple[Ciphersuite, int, int, int, int]:
    c, body = read_document(data, kind, what, expected)
    return (
        c.suite,
        c.read_identifier(body, "sender"),
        c.read_identifier(body, "receiver"),
        c.read_identifier(body, "participant"),
        c.read_scalar(body, "value"),
    )
