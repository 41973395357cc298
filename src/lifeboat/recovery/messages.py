"""Signed recovery messages, version 1: every action on a vault is one EIP-712 typed message.

All three key kinds (:mod:`lifeboat.recovery.keys`) sign the same 32 bytes, the EIP-712 digest

    keccak256(0x19 || 0x01 || domainSeparator || hashStruct(message))

under the domain ``{name: "Lifeboat Recovery", version: "1", chainId, verifyingContract}``. The
pair (chainId, verifyingContract) is the :class:`Service`: the identity of one service instance
(off-chain, any agreed number and address; on-chain, the chain and the recovery contract), so a
message signed for one instance never verifies on another, and a contract can later check the very
same approvals with ``ecrecover`` (or a Schnorr/Ed25519 verifier) over the same digest. The name and
version strings are the fixed domain tag that keeps these signatures apart from any other protocol's.

Every message type carries ``vault`` (bytes32), ``nonce`` (uint256, Lifeboat uses < 2**64),
``notBefore`` and ``expiry`` (uint64 Unix seconds; valid while notBefore <= now < expiry); the
action is the EIP-712 primary type; actions on a request add ``request`` (bytes32). The exact
types, the JSON wire form and a worked example are in docs/formats.md, "Recovery messages,
version 1".

How a caller (the service) uses this module, with time passed in:

>>> from lifeboat.recovery.keys import KeyKind, PrivateKey
>>> service = Service(chain_id=1, verifying_contract=bytes(20))
>>> guardian = PrivateKey.from_seed(KeyKind.ED25519, bytes(32))
>>> message = Message(vault=bytes(32), action=Lock(), nonce=7, not_before=0, expiry=1000)
>>> wire = encode_signed(sign(service, message, guardian))      # what a client sends
>>> verified = verify(decode_signed(wire), service, now=500, vault=bytes(32))
>>> verified.signer == guardian.public_key and verified.message.action == Lock()
True

then ``lifeboat.recovery.policy.apply(state, verified, now)`` decides what the action does.
"""

from __future__ import annotations

import functools
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from lifeboat.recovery.config import (
    VaultConfig,
    config_from_json,
    config_to_json,
    json_int,
    json_key,
    json_str,
)
from lifeboat.recovery.keys import PrivateKey, PublicKey, keccak256
from lifeboat.recovery.refusals import (
    BadSignature,
    Expired,
    LifetimeTooLong,
    MalformedMessage,
    NotYetValid,
    UnknownVersion,
    WrongService,
    WrongVault,
)

FORMAT_VERSION: Final = 1
DOMAIN_NAME: Final = "Lifeboat Recovery"
DOMAIN_VERSION: Final = "1"
#: A message may stay valid at most this long after ``now`` (30 days): used nonces are kept only
#: until their message expires, so the bound keeps a vault's nonce record small.
MAX_LIFETIME: Final = 30 * 86400
#: Nonces are uint256 in the types; Lifeboat accepts 0 <= nonce < 2**64 (random 64-bit values).
MAX_NONCE: Final = 2**64 - 1
MAX_TIME: Final = 2**53 - 1
#: :func:`new_message` makes a message valid from this long before the service's clock, so a
#: signed message survives a small clock skew between signer and service.
NOT_BEFORE_SLACK: Final = 60
#: The largest JSON text of a signed message that :func:`decode_signed` reads.
MAX_WIRE_BYTES: Final = 64 * 1024

ID_BYTES: Final = 32


# --- the service (the EIP-712 domain) --------------------------------------------------------


@dataclass(frozen=True)
class Service:
    """The service instance a message is for: the EIP-712 chainId and verifyingContract."""

    chain_id: int
    verifying_contract: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.chain_id < 2**256 or isinstance(self.chain_id, bool):
            raise MalformedMessage("a service's chain id is a uint256")
        if len(self.verifying_contract) != 20:
            raise MalformedMessage("a service's verifying contract is a 20-byte address")

    def to_json(self) -> dict[str, Any]:
        return {"chainId": self.chain_id, "verifyingContract": "0x" + self.verifying_contract.hex()}

    @classmethod
    def from_json(cls, value: object) -> Service:
        body = _object(value, {"chainId", "verifyingContract"}, "service")
        return cls(
            json_int(body["chainId"], "service chainId", 2**256 - 1), _hex(body["verifyingContract"], 20)
        )

    def domain(self) -> dict[str, Any]:
        """The EIP-712 domain, as JSON values."""
        return {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": self.chain_id,
            "verifyingContract": "0x" + self.verifying_contract.hex(),
        }

    def separator(self) -> bytes:
        """The EIP-712 domainSeparator: hashStruct(EIP712Domain) (computed once per service)."""
        return _separator(self.chain_id, self.verifying_contract)


# --- the actions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateVault:
    """Owner: create the vault with this configuration; the signer becomes the owner."""

    config: VaultConfig


@dataclass(frozen=True)
class OpenRequest:
    """Guardian of ``policy``: ask that ``new_owner`` become the owner; counts as their approval."""

    request: bytes
    new_owner: PublicKey
    policy: str


@dataclass(frozen=True)
class Approve:
    """Guardian of the request's policy: approve it (new owner and policy repeated, so a wallet shows them)."""

    request: bytes
    new_owner: PublicKey
    policy: str


@dataclass(frozen=True)
class Veto:
    """Owner (or a guardian of the policy, if it allows guardian vetoes): veto the request."""

    request: bytes


@dataclass(frozen=True)
class Execute:
    """The request's new owner, or a guardian of its policy: execute an executable request."""

    request: bytes


@dataclass(frozen=True)
class UploadShare:
    """Guardian who approved: record the digest of their escrowed, re-encrypted share."""

    request: bytes
    ciphertext: bytes


@dataclass(frozen=True)
class Lock:
    """Any guardian: freeze owner-initiated changes for the vault's lock period."""


@dataclass(frozen=True)
class Unlock:
    """Any guardian: lift the lock."""


@dataclass(frozen=True)
class ProposeChange:
    """Owner: replace the configuration after the security period (cancels pending requests)."""

    config: VaultConfig


@dataclass(frozen=True)
class CancelChange:
    """Owner: withdraw the pending configuration change."""


Action = (
    CreateVault
    | OpenRequest
    | Approve
    | Veto
    | Execute
    | UploadShare
    | Lock
    | Unlock
    | ProposeChange
    | CancelChange
)


@dataclass(frozen=True)
class Message:
    """One action on one vault, with its replay and lifetime fields."""

    vault: bytes
    action: Action
    nonce: int
    not_before: int
    expiry: int

    @property
    def kind(self) -> str:
        """The action's EIP-712 primary type name (``Approve``)."""
        return type(self.action).__name__

    @property
    def request(self) -> bytes | None:
        return getattr(self.action, "request", None)


def new_message(vault: bytes, action: Action, *, now: int, lifetime: int) -> Message:
    """A message to sign: a random 64-bit nonce, valid from :data:`NOT_BEFORE_SLACK` seconds before
    the service's clock ``now`` until ``now + lifetime`` (at most :data:`MAX_LIFETIME`)."""
    if not 1 <= lifetime <= MAX_LIFETIME:
        raise LifetimeTooLong(f"a message may stay valid 1 s to {MAX_LIFETIME} s, not {lifetime} s")
    return Message(
        vault=vault,
        action=action,
        nonce=secrets.randbits(64),
        not_before=max(0, now - NOT_BEFORE_SLACK),
        expiry=now + lifetime,
    )


@dataclass(frozen=True)
class SignedMessage:
    """A message as sent: for which service, by which key, with which signature."""

    service: Service
    message: Message
    signer: PublicKey
    signature: bytes


@dataclass(frozen=True)
class VerifiedAction:
    """A message whose signature, service, vault and lifetime :func:`verify` has checked.

    Only :func:`verify` should make one; :func:`lifeboat.recovery.policy.apply` trusts it.
    ``digest`` is the EIP-712 digest that was signed (the audit log can key on it).
    """

    service: Service
    message: Message
    signer: PublicKey
    digest: bytes


# --- EIP-712 types and encoding ---------------------------------------------------------------

_TAIL: Final = [("nonce", "uint256"), ("notBefore", "uint64"), ("expiry", "uint64")]
_ON_REQUEST: Final = [("vault", "bytes32"), ("request", "bytes32")]
_NAMING_OWNER: Final = [*_ON_REQUEST, ("newOwner", "string"), ("policy", "string")]

#: Every EIP-712 struct type of version 1, field order as signed.
TYPES: Final[Mapping[str, list[tuple[str, str]]]] = {
    "EIP712Domain": [
        ("name", "string"),
        ("version", "string"),
        ("chainId", "uint256"),
        ("verifyingContract", "address"),
    ],
    "Guardian": [("key", "string"), ("weight", "uint256"), ("label", "string")],
    "Policy": [
        ("name", "string"),
        ("guardians", "string[]"),
        ("threshold", "uint256"),
        ("byWeight", "bool"),
        ("recoveryPeriod", "uint64"),
        ("expiryWindow", "uint64"),
        ("vetoGuardians", "uint256"),
    ],
    "VaultConfig": [
        ("guardians", "Guardian[]"),
        ("policies", "Policy[]"),
        ("securityPeriod", "uint64"),
        ("lockPeriod", "uint64"),
    ],
    "CreateVault": [("vault", "bytes32"), ("config", "VaultConfig"), *_TAIL],
    "OpenRequest": [*_NAMING_OWNER, *_TAIL],
    "Approve": [*_NAMING_OWNER, *_TAIL],
    "Veto": [*_ON_REQUEST, *_TAIL],
    "Execute": [*_ON_REQUEST, *_TAIL],
    "UploadShare": [*_ON_REQUEST, ("ciphertext", "bytes32"), *_TAIL],
    "Lock": [("vault", "bytes32"), *_TAIL],
    "Unlock": [("vault", "bytes32"), *_TAIL],
    "ProposeChange": [("vault", "bytes32"), ("config", "VaultConfig"), *_TAIL],
    "CancelChange": [("vault", "bytes32"), *_TAIL],
}

ACTIONS: Final[dict[str, type[Action]]] = {
    cls.__name__: cls
    for cls in (
        CreateVault,
        OpenRequest,
        Approve,
        Veto,
        Execute,
        UploadShare,
        Lock,
        Unlock,
        ProposeChange,
        CancelChange,
    )
}


def _dependencies(name: str, found: set[str]) -> set[str]:
    for _field, kind in TYPES[name]:
        base = kind.removesuffix("[]")
        if base in TYPES and base not in found:
            found.add(base)
            _dependencies(base, found)
    return found


def encode_type(name: str) -> str:
    """EIP-712 encodeType: the primary type, then the types it references sorted by name."""

    def one(type_name: str) -> str:
        return f"{type_name}({','.join(f'{kind} {field}' for field, kind in TYPES[type_name])})"

    return one(name) + "".join(one(dep) for dep in sorted(_dependencies(name, set()) - {name}))


@functools.cache
def type_hash(name: str) -> bytes:
    """keccak256 of :func:`encode_type` (the types are fixed: computed once per type)."""
    return keccak256(encode_type(name).encode())


@functools.lru_cache(maxsize=64)
def _separator(chain_id: int, verifying_contract: bytes) -> bytes:
    return hash_struct("EIP712Domain", Service(chain_id, verifying_contract).domain())


def encode_value(kind: str, value: Any) -> bytes:
    if kind.endswith("[]"):
        return keccak256(b"".join(encode_value(kind[:-2], item) for item in value))
    if kind in TYPES:
        return hash_struct(kind, value)
    if kind == "string":
        return keccak256(value.encode())
    if kind in ("uint256", "uint64"):
        return int(value).to_bytes(32, "big")
    if kind == "bool":
        return (1 if value else 0).to_bytes(32, "big")
    if kind == "bytes32":
        return bytes.fromhex(value[2:])
    if kind == "address":
        return bytes(12) + bytes.fromhex(value[2:])
    raise AssertionError(f"no encoding for EIP-712 type {kind}")


def hash_struct(name: str, value: Mapping[str, Any]) -> bytes:
    """EIP-712 hashStruct over JSON values (bytes as 0x-hex, integers as numbers or decimal text)."""
    return keccak256(
        type_hash(name) + b"".join(encode_value(kind, value[field]) for field, kind in TYPES[name])
    )


def message_to_json(message: Message) -> dict[str, Any]:
    """The message's EIP-712 ``message`` object as JSON values (nonce as decimal text)."""
    action = message.action
    body: dict[str, Any] = {"vault": "0x" + message.vault.hex()}
    if isinstance(action, CreateVault | ProposeChange):
        body["config"] = config_to_json(action.config)
    if isinstance(action, OpenRequest | Approve | Veto | Execute | UploadShare):
        body["request"] = "0x" + action.request.hex()
    if isinstance(action, OpenRequest | Approve):
        body["newOwner"] = action.new_owner.text
        body["policy"] = action.policy
    if isinstance(action, UploadShare):
        body["ciphertext"] = "0x" + action.ciphertext.hex()
    body["nonce"] = str(message.nonce)
    body["notBefore"] = message.not_before
    body["expiry"] = message.expiry
    return body


def digest(service: Service, message: Message) -> bytes:
    """The 32 bytes every key kind signs: ``keccak256(0x1901 || domainSeparator || hashStruct)``."""
    return keccak256(b"\x19\x01" + service.separator() + hash_struct(message.kind, message_to_json(message)))


def typed_data(service: Service, message: Message) -> dict[str, Any]:
    """The full EIP-712 typed data (``eth_signTypedData_v4`` JSON) a wallet signs for ``message``."""
    needed = ["EIP712Domain", message.kind, *sorted(_dependencies(message.kind, set()))]
    return {
        "types": {name: [{"name": f, "type": t} for f, t in TYPES[name]] for name in needed},
        "primaryType": message.kind,
        "domain": service.domain(),
        "message": message_to_json(message),
    }


# --- parsing ----------------------------------------------------------------------------------


def _object(value: object, fields: set[str], what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedMessage(f"{what} must be a JSON object")
    if set(value) != fields:
        missing, extra = sorted(fields - set(value)), sorted(str(e)[:40] for e in set(value) - fields)
        raise MalformedMessage(f"{what}: missing fields {missing}, unknown fields {extra}")
    return value


def _hex(value: object, length: int) -> bytes:
    text = json_str(value, "a hex field")
    if len(text) != 2 + 2 * length or not text.startswith("0x"):
        raise MalformedMessage(f"a {length}-byte field is written 0x and {2 * length} lowercase hex digits")
    body = text[2:]
    if body != body.lower():
        raise MalformedMessage("hex fields are written in lowercase")
    try:
        return bytes.fromhex(body)
    except ValueError:
        raise MalformedMessage("a hex field is not hex") from None


def message_from_json(kind: str, value: object) -> Message:
    """Parse the ``message`` object of an action of type ``kind``; :class:`MalformedMessage` if off."""
    if kind not in ACTIONS:
        raise MalformedMessage(f"unknown action {kind[:40]!r}; expected one of {sorted(ACTIONS)}")
    body = _object(value, {field for field, _ in TYPES[kind]}, f"a {kind} message")
    nonce_text = json_str(body["nonce"], "nonce")
    if not nonce_text.isascii() or not nonce_text.isdigit() or (len(nonce_text) > 1 and nonce_text[0] == "0"):
        raise MalformedMessage("nonce is written as decimal digits without leading zeros")
    nonce = int(nonce_text)
    if nonce > MAX_NONCE:
        raise MalformedMessage(f"nonce must be below 2**64, not {nonce_text[:30]}")
    action: Action
    cls = ACTIONS[kind]
    if cls is CreateVault or cls is ProposeChange:
        action = cls(config_from_json(body["config"]))
    elif cls is OpenRequest or cls is Approve:
        policy = json_str(body["policy"], "policy")
        action = cls(_hex(body["request"], ID_BYTES), json_key(body["newOwner"], "newOwner"), policy)
    elif cls is UploadShare:
        action = UploadShare(_hex(body["request"], ID_BYTES), _hex(body["ciphertext"], 32))
    elif cls is Veto or cls is Execute:
        action = cls(_hex(body["request"], ID_BYTES))
    else:
        action = cls()  # type: ignore[call-arg]
    return Message(
        vault=_hex(body["vault"], ID_BYTES),
        action=action,
        nonce=nonce,
        not_before=json_int(body["notBefore"], "notBefore", MAX_TIME),
        expiry=json_int(body["expiry"], "expiry", MAX_TIME),
    )


def signed_to_json(signed: SignedMessage) -> dict[str, Any]:
    return {
        "version": FORMAT_VERSION,
        "service": signed.service.to_json(),
        "action": signed.message.kind,
        "message": message_to_json(signed.message),
        "signer": signed.signer.text,
        "signature": "0x" + signed.signature.hex(),
    }


def encode_signed(signed: SignedMessage) -> bytes:
    """The wire form: canonical JSON (sorted keys, no spaces, UTF-8)."""
    return json.dumps(
        signed_to_json(signed), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def signed_from_json(value: object) -> SignedMessage:
    """Parse a signed message's JSON value; the version is checked first."""
    if not isinstance(value, dict):
        raise MalformedMessage("a signed message must be a JSON object")
    version = value.get("version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise UnknownVersion(
            f"unknown recovery message version {str(version)[:20]}; this Lifeboat reads version 1"
        )
    body = _object(
        value, {"version", "service", "action", "message", "signer", "signature"}, "a signed message"
    )
    signature_text = json_str(body["signature"], "signature")
    length = (len(signature_text) - 2) // 2
    if length not in (64, 65):
        raise MalformedMessage("a signature is 64 (Ed25519, BIP-340) or 65 (EIP-712) bytes")
    return SignedMessage(
        service=Service.from_json(body["service"]),
        message=message_from_json(json_str(body["action"], "action"), body["message"]),
        signer=json_key(body["signer"], "signer"),
        signature=_hex(signature_text, length),
    )


def decode_signed(data: bytes) -> SignedMessage:
    """Parse the wire form (any JSON spelling; at most 64 KiB)."""
    if len(data) > MAX_WIRE_BYTES:
        raise MalformedMessage(f"a signed message is at most {MAX_WIRE_BYTES} bytes")
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        raise MalformedMessage("a signed message is not JSON") from None
    return signed_from_json(value)


# --- signing and verifying --------------------------------------------------------------------


def sign(service: Service, message: Message, key: PrivateKey, aux: bytes = bytes(32)) -> SignedMessage:
    """Sign ``message`` for ``service`` with ``key`` (pure: BIP-340's ``aux`` defaults to zeros)."""
    return SignedMessage(service, message, key.public_key, key.sign(digest(service, message), aux))


def verify(signed: SignedMessage, service: Service, now: int, vault: bytes | None = None) -> VerifiedAction:
    """Check a signed message for this service, at time ``now``, and (if given) for this vault.

    Refusals, in the order they are checked: :class:`WrongService`, :class:`WrongVault`,
    :class:`NotYetValid`, :class:`Expired`, :class:`LifetimeTooLong` (expiry more than 30 days after
    ``now``), :class:`BadSignature`. The nonce is the policy's to check, against the vault's state.
    """
    message = signed.message
    if signed.service != service:
        raise WrongService(
            f"the message is for service {signed.service.chain_id}/0x{signed.service.verifying_contract.hex()}, "
            f"this is {service.chain_id}/0x{service.verifying_contract.hex()}"
        )
    if vault is not None and message.vault != vault:
        raise WrongVault(f"the message is for vault 0x{message.vault.hex()}, not 0x{vault.hex()}")
    if now < message.not_before:
        raise NotYetValid(f"the message is valid from {message.not_before}; it is now {now}")
    if now >= message.expiry:
        raise Expired(f"the message expired at {message.expiry}; it is now {now}")
    if message.expiry - now > MAX_LIFETIME:
        raise LifetimeTooLong(f"a message may stay valid at most {MAX_LIFETIME} s; ask for a nearer expiry")
    signed_digest = digest(service, message)
    if not signed.signer.verify(signed_digest, signed.signature):
        raise BadSignature(
            f"the signature does not verify under {signed.signer.text} for this {message.kind}"
        )
    return VerifiedAction(service, message, signed.signer, signed_digest)
