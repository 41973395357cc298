"""docs/formats.md, "Recovery messages, version 1": the worked example is the code's, and the
document's rules alone (Keccak-256, Ed25519, BIP-340, ECDSA recovery) re-derive its digest and
check its three signatures without Lifeboat's recovery code."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import coincurve
import nacl.signing
from eth_hash.auto import keccak

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "formats.md"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_recovery_message_examples", ROOT / "tools" / "make_recovery_message_examples.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCRIPT = _script()
TEXT = DOC.read_text(encoding="utf-8")
BLOCK = TEXT[TEXT.index(SCRIPT.BEGIN) : TEXT.index(SCRIPT.END) + len(SCRIPT.END)] + "\n"


def value(label: str) -> str:
    (found,) = re.findall(rf"^{re.escape(label)}: (.+)$", BLOCK, flags=re.MULTILINE)
    return str(found)


def test_the_example_is_what_the_code_makes() -> None:
    assert SCRIPT.generate() == BLOCK, "docs/formats.md is stale: run tools/make_recovery_message_examples.py"


def k(data: bytes) -> bytes:
    return bytes(keccak(data))


def word(n: int) -> bytes:
    return n.to_bytes(32, "big")


def test_the_digest_follows_from_the_documented_rules() -> None:
    domain = (
        k(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
        + k(b"Lifeboat Recovery")
        + k(b"1")
        + word(31337)
        + bytes(12)
        + bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")
    )
    separator = k(domain)
    assert separator.hex() == value("domainSeparator")
    fields = re.findall(r"^field (\w+) \((\w+)\) = (.+)$", BLOCK, flags=re.MULTILINE)
    encoded = b""
    for _name, kind, text in fields:
        if kind == "bytes32":
            encoded += bytes.fromhex(text[2:])
        elif kind == "string":
            encoded += k(text.encode())
        else:
            encoded += word(int(text))
    type_string = "Approve(" + ",".join(f"{kind} {name}" for name, kind, _ in fields) + ")"
    assert type_string == value("encodeType(Approve)")
    struct_hash = k(k(type_string.encode()) + encoded)
    assert struct_hash.hex() == value("hashStruct(message)")
    assert k(b"\x19\x01" + separator + struct_hash).hex() == value("digest")


def test_the_signatures_verify_by_the_documented_rules() -> None:
    digest = bytes.fromhex(value("digest"))
    ed = bytes.fromhex(value("signer ed25519").removeprefix("ed25519:"))
    nacl.signing.VerifyKey(ed).verify(digest, bytes.fromhex(value("signature ed25519")))
    x_only = bytes.fromhex(value("signer bip340").removeprefix("bip340:"))
    assert coincurve.PublicKeyXOnly(x_only).verify(bytes.fromhex(value("signature bip340")), digest)
    signature = bytes.fromhex(value("signature eip712"))
    assert signature[64] in (27, 28)
    recovered = coincurve.PublicKey.from_signature_and_message(
        signature[:64] + bytes([signature[64] - 27]), digest, hasher=None
    )
    address = k(recovered.format(compressed=False)[1:])[12:]
    assert "eip712:0x" + address.hex() == value("signer eip712")
