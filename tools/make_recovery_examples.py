#!/usr/bin/env python3
"""Print the worked examples of docs/formats.md, "Recovery audit log" and "Recovery webhooks".

    PYTHONPATH=src python tools/make_recovery_examples.py

Every value comes from the library (``audit.append``, ``audit.sign_head``, ``audit.export_lines``,
``webhooks.payload``, ``webhooks.signature_header``); tests/test_recovery_formats_doc.py checks
that the document's block is this script's output and re-derives every hash, signature and MAC
from the hex in the document by the rules the document states.
"""

from __future__ import annotations

from lifeboat.documents import canonical_json
from lifeboat.recovery import audit, webhooks

#: A service key seed for the example only (bytes 0x00..0x1f); never use a published key.
EXAMPLE_SEED = bytes(range(32))
#: A webhook secret for the example only.
EXAMPLE_SECRET = bytes(range(0x20, 0x40))
TIME = 1_796_400_000
BEGIN = "<!-- recovery-examples:begin (tools/make_recovery_examples.py writes this block) -->"
END = "<!-- recovery-examples:end -->"

EVENTS = (
    ("vault-1", "owner", "request", bytes.fromhex("0badc0de"), {"request": "r1"}),
    ("vault-1", "guardian:alice", "approve", b"", {"request": "r1", "weight": 1}),
)


def generate() -> str:
    lines = [BEGIN, "```"]
    prev = audit.GENESIS
    entries = []
    for seq, (vault, actor, action, message, details) in enumerate(EVENTS, start=1):
        entry = audit.append(
            prev,
            seq,
            time=TIME + seq,
            vault=vault,
            actor=actor,
            action=action,
            message=message,
            details=details,
        )
        body = canonical_json(audit.entry_body(entry))
        lines.append(f"entry {seq} body: {body.decode()}")
        lines.append(f"entry {seq} hash input: {(audit.ENTRY_DOMAIN + prev + body).hex()}")
        lines.append(f"entry {seq} hash: {entry.hash.hex()}")
        entries.append(entry)
        prev = entry.hash
    head = audit.sign_head(EXAMPLE_SEED, len(entries), prev, TIME + 10)
    lines.append(f"service public key: {head.service_key.hex()}")
    lines.append(f"head message: {(audit.HEAD_DOMAIN + canonical_json(head.document())).hex()}")
    lines.append(f"head signature: {head.signature.hex()}")
    lines.append("export file:")
    lines.extend(line.decode().rstrip("\n") for line in audit.export_lines(entries, head))
    delivery = "5f1c0e2a9b7d4c3e8a6b1d2f3e4c5a6b"
    body = webhooks.payload(delivery, entries[0])
    lines.append(f"webhook secret: {EXAMPLE_SECRET.hex()}")
    lines.append(f"webhook body: {body.decode()}")
    lines.append(f"{webhooks.SIGNATURE_HEADER}: {webhooks.signature_header(EXAMPLE_SECRET, TIME + 20, body)}")
    lines.append(f"{webhooks.DELIVERY_HEADER}: {delivery}")
    lines += ["```", END]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(generate(), end="")
