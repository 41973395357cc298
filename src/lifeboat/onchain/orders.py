"""Emergency orders: what a FROST group of operators signs to pause or shut down a protocol.

An order is EIP-712 typed data (docs/formats.md, "Emergency orders, version 1")::

    EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)
        name = "Lifeboat Emergency", version = "1", the chain, the guarded contract
    Order(string action,bytes4[] selectors,uint256 nonce,uint64 notBefore,uint64 expiry)

The group signs the 32-byte digest ``keccak256(0x19 || 0x01 || domainSeparator ||
hashStruct(order))`` with FROST(secp256k1, SHA-256) (RFC 9591); the contract
(``contracts/circuit_breaker.vy``) recomputes the digest and checks the signature. The digest binds
the chain and the contract, so an order for one deployment is refused by every other; the nonce
is good once; ``expiry`` bounds how long a signed order stays usable.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any, Final

import orjson
from eth_hash.auto import keccak

from lifeboat.onchain.errors import OrderError

FORMAT: Final = "lifeboat-emergency-order"
VERSION: Final = 1
ACTIONS: Final = ("pause", "shutdown")
#: The most selectors one order names (the contract's bound).
MAX_SELECTORS: Final = 32
#: The longest an order may stay valid after it is submitted (the contract's bound), seconds.
MAX_LIFETIME: Final = 7 * 86400
#: Order files larger than this are refused unread.
MAX_FILE_BYTES: Final = 64 * 1024

DOMAIN_NAME: Final = "Lifeboat Emergency"
DOMAIN_VERSION: Final = "1"
DOMAIN_TYPE: Final = b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
ORDER_TYPE: Final = b"Order(string action,bytes4[] selectors,uint256 nonce,uint64 notBefore,uint64 expiry)"

_SIGNATURE = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*\([A-Za-z0-9_,\[\]() ]*\)")
_HEX_SELECTOR = re.compile(r"0x[0-9a-fA-F]{8}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_FIELDS: Final = frozenset(
    {
        "format",
        "version",
        "chainId",
        "contract",
        "action",
        "selectors",
        "nonce",
        "notBefore",
        "expiry",
        "digest",
    }
)


def selector(text: str) -> bytes:
    """A function selector from ``0x`` + 8 hex digits or a signature such as ``withdraw(uint256)``."""
    text = text.strip()
    if _HEX_SELECTOR.fullmatch(text):
        return bytes.fromhex(text[2:])
    if _SIGNATURE.fullmatch(text):
        return bytes(keccak(text.replace(" ", "").encode()))[:4]
    raise OrderError(
        f"{text!r} is not a function selector: give 0x and 8 hex digits or a signature like 'withdraw(uint256)'"
    )


def address(text: str, what: str = "contract address") -> bytes:
    """A 20-byte address from ``0x`` + 40 hex digits (any case; the checksum is not required)."""
    if not isinstance(text, str) or not _ADDRESS.fullmatch(text):
        raise OrderError(f"the {what} must be 0x and 40 hex digits, not {text!r}")
    return bytes.fromhex(text[2:])


@dataclass(frozen=True)
class Order:
    """One emergency order for one contract on one chain."""

    chain_id: int
    contract: bytes
    action: str
    selectors: tuple[bytes, ...]
    nonce: int
    not_before: int
    expiry: int

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise OrderError(f"unknown order action {self.action!r}; choose one of {', '.join(ACTIONS)}")
        if self.action == "shutdown" and self.selectors:
            raise OrderError("a shutdown order halts everything; it names no selectors")
        if len(self.selectors) > MAX_SELECTORS:
            raise OrderError(f"an order names at most {MAX_SELECTORS} selectors, not {len(self.selectors)}")
        if any(len(s) != 4 or s == bytes(4) for s in self.selectors):
            raise OrderError("a selector is 4 bytes and not 0x00000000 (reserved)")
        if len(set(self.selectors)) != len(self.selectors):
            raise OrderError("an order names each selector once")
        if len(self.contract) != 20:
            raise OrderError("the contract address is 20 bytes")
        if not 0 < self.chain_id < 2**256:
            raise OrderError(f"chain id {self.chain_id} is out of range")
        if not 0 <= self.nonce < 2**256:
            raise OrderError(f"nonce {self.nonce} is out of range")
        if not 0 <= self.not_before < self.expiry < 2**64:
            raise OrderError("an order's times must satisfy 0 <= notBefore < expiry < 2**64")

    @property
    def domain_separator(self) -> bytes:
        return bytes(
            keccak(
                bytes(keccak(DOMAIN_TYPE))
                + bytes(keccak(DOMAIN_NAME.encode()))
                + bytes(keccak(DOMAIN_VERSION.encode()))
                + self.chain_id.to_bytes(32, "big")
                + bytes(12)
                + self.contract
            )
        )

    @property
    def struct_hash(self) -> bytes:
        words = b"".join(s + bytes(28) for s in self.selectors)  # bytes4 is right-padded to a word
        return bytes(
            keccak(
                bytes(keccak(ORDER_TYPE))
                + bytes(keccak(self.action.encode()))
                + bytes(keccak(words))
                + self.nonce.to_bytes(32, "big")
                + self.not_before.to_bytes(32, "big")
                + self.expiry.to_bytes(32, "big")
            )
        )

    @property
    def digest(self) -> bytes:
        """The 32 bytes the FROST group signs."""
        return bytes(keccak(b"\x19\x01" + self.domain_separator + self.struct_hash))

    def call_arguments(self, signature: bytes) -> tuple[Any, ...]:
        """The arguments of the contract's ``execute_order``, in order."""
        return (self.action, list(self.selectors), self.nonce, self.not_before, self.expiry, signature)

    def typed_data(self) -> dict[str, Any]:
        """The ``eth_signTypedData_v4`` form, for wallets and other EIP-712 tools."""
        return {
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "Order": [
                    {"name": "action", "type": "string"},
                    {"name": "selectors", "type": "bytes4[]"},
                    {"name": "nonce", "type": "uint256"},
                    {"name": "notBefore", "type": "uint64"},
                    {"name": "expiry", "type": "uint64"},
                ],
            },
            "primaryType": "Order",
            "domain": {
                "name": DOMAIN_NAME,
                "version": DOMAIN_VERSION,
                "chainId": self.chain_id,
                "verifyingContract": "0x" + self.contract.hex(),
            },
            "message": {
                "action": self.action,
                "selectors": ["0x" + s.hex() for s in self.selectors],
                "nonce": self.nonce,
                "notBefore": self.not_before,
                "expiry": self.expiry,
            },
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "chainId": self.chain_id,
            "contract": "0x" + self.contract.hex(),
            "action": self.action,
            "selectors": ["0x" + s.hex() for s in self.selectors],
            "nonce": str(self.nonce),
            "notBefore": self.not_before,
            "expiry": self.expiry,
            "digest": "0x" + self.digest.hex(),
        }

    def encode(self) -> bytes:
        return orjson.dumps(self.to_json(), option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"


def new_order(
    chain_id: int, contract: bytes, action: str, selectors: tuple[bytes, ...], *, now: int, lifetime: int
) -> Order:
    """A fresh order valid from ``now`` for ``lifetime`` seconds, with a random 64-bit nonce."""
    if not 0 < lifetime <= MAX_LIFETIME:
        raise OrderError(f"an order's lifetime must be between 1 second and {MAX_LIFETIME // 86400} days")
    return Order(chain_id, contract, action, selectors, secrets.randbits(64), now, now + lifetime)


def _integer(body: dict[str, Any], name: str) -> int:
    value = body[name]
    if type(value) is not int:
        raise OrderError(f"order field {name!r} must be an integer, not {value!r}")
    return value


def decode_order(data: bytes, what: str = "order") -> Order:
    """Read an order file; refuse unknown fields, a wrong version and a digest that does not match."""
    if len(data) > MAX_FILE_BYTES:
        raise OrderError(f"{what} is {len(data)} bytes; an order file is at most {MAX_FILE_BYTES}")
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise OrderError(f"{what} is not JSON: {e}") from None
    if not isinstance(body, dict):
        raise OrderError(f"{what} must be a JSON object")
    if body.get("format") != FORMAT:
        raise OrderError(f"{what} is not an emergency order (format {body.get('format')!r})")
    if body.get("version") != VERSION:
        raise OrderError(f"{what} has version {body.get('version')!r}; this Lifeboat reads version {VERSION}")
    if set(body) != _FIELDS:
        missing, unknown = sorted(_FIELDS - set(body)), sorted(set(body) - _FIELDS)
        raise OrderError(f"{what}: missing fields {missing}, unknown fields {unknown}")
    selectors = body["selectors"]
    if not isinstance(selectors, list) or not all(isinstance(s, str) for s in selectors):
        raise OrderError(f"{what}: selectors must be a list of 0x-prefixed hex strings")
    nonce = body["nonce"]
    if not isinstance(nonce, str) or not nonce.isascii() or not nonce.isdigit() or len(nonce) > 78:
        raise OrderError(f"{what}: nonce must be decimal digits in a string, not {nonce!r}")
    if not isinstance(body["action"], str):
        raise OrderError(f"{what}: action must be a string")
    order = Order(
        chain_id=_integer(body, "chainId"),
        contract=address(body["contract"]),
        action=body["action"],
        selectors=tuple(_selector_hex(s, what) for s in selectors),
        nonce=int(nonce),
        not_before=_integer(body, "notBefore"),
        expiry=_integer(body, "expiry"),
    )
    if body["digest"] != "0x" + order.digest.hex():
        raise OrderError(f"{what}: the digest field does not match the order (edited after it was made?)")
    return order


def _selector_hex(text: str, what: str) -> bytes:
    if not _HEX_SELECTOR.fullmatch(text):
        raise OrderError(f"{what}: selector {text!r} is not 0x and 8 hex digits")
    return bytes.fromhex(text[2:])
