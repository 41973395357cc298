"""Print the worked example of docs/formats.md, "Recovery messages, version 1".

Run it after changing the message format and paste its output between the markers; the test
tests/test_recovery_messages_doc.py fails while the document and this output differ.
"""

from __future__ import annotations

import hashlib
import json

from lifeboat.recovery import messages
from lifeboat.recovery.keys import KeyKind, PrivateKey
from lifeboat.recovery.messages import Approve, Message, Service

BEGIN = "<!-- recovery-message-examples:begin (tools/make_recovery_message_examples.py writes this block) -->"
END = "<!-- recovery-message-examples:end -->"


def key(kind: KeyKind, name: str) -> PrivateKey:
    return PrivateKey.from_seed(kind, hashlib.sha256(name.encode()).digest())


def generate() -> str:
    service = Service(31337, bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"))
    new_owner = key(KeyKind.BIP340, "example new owner")
    message = Message(
        vault=hashlib.sha256(b"example vault").digest(),
        action=Approve(hashlib.sha256(b"example request").digest(), new_owner.public_key, "family"),
        nonce=7,
        not_before=1_800_000_000,
        expiry=1_800_003_600,
    )
    body = messages.message_to_json(message)
    lines = [
        "# service: chainId 31337, verifyingContract 0x5fbdb2315678afecb367f032d93f642f64180aa3",
        f"encodeType(EIP712Domain): {messages.encode_type('EIP712Domain')}",
        f"typeHash(EIP712Domain): {messages.type_hash('EIP712Domain').hex()}",
        f"domainSeparator: {service.separator().hex()}",
        f"encodeType(Approve): {messages.encode_type('Approve')}",
        f"typeHash(Approve): {messages.type_hash('Approve').hex()}",
    ]
    for field, kind in messages.TYPES["Approve"]:
        lines.append(f"field {field} ({kind}) = {body[field]}")
        lines.append(f"encodeData {field}: {messages.encode_value(kind, body[field]).hex()}")
    struct_hash = messages.hash_struct("Approve", body)
    lines.append(f"hashStruct(message): {struct_hash.hex()}")
    lines.append(f"digest: {messages.digest(service, message).hex()}")
    for kind, name in (
        (KeyKind.ED25519, "example alice"),
        (KeyKind.BIP340, "example bob"),
        (KeyKind.EIP712, "example carol"),
    ):
        signer = key(kind, name)
        signed = messages.sign(service, message, signer)
        lines.append(f"signer {kind.value} secret: {signer.secret.hex()}")
        lines.append(f"signer {kind.value}: {signer.public_key.text}")
        lines.append(f"signature {kind.value}: {signed.signature.hex()}")
    wire = messages.encode_signed(messages.sign(service, message, key(KeyKind.ED25519, "example alice")))
    lines.append("wire (ed25519, canonical JSON, wrapped here for reading):")
    lines.append(json.dumps(json.loads(wire), indent=1, sort_keys=True))
    return f"{BEGIN}\n\n```text\n" + "\n".join(lines) + f"\n```\n\n{END}\n"


if __name__ == "__main__":
    print(generate(), end="")
