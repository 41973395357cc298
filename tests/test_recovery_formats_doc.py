"""docs/formats.md, "Recovery audit log" and "Recovery webhooks": the worked example is the code's,
and the document's rules alone (hashlib, hmac, json, Ed25519; no Lifeboat code) re-derive it."""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

import nacl.signing

from lifeboat.recovery import audit

ROOT = Path(__file__).resolve().parents[1]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_recovery_examples", ROOT / "tools" / "make_recovery_examples.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCRIPT = _script()
TEXT = (ROOT / "docs" / "formats.md").read_text(encoding="utf-8")
BLOCK = TEXT[TEXT.index(SCRIPT.BEGIN) : TEXT.index(SCRIPT.END) + len(SCRIPT.END)] + "\n"


def value(label: str) -> str:
    (found,) = re.findall(rf"^{re.escape(label)}: (.+)$", BLOCK, flags=re.MULTILINE)
    return str(found)


def canonical(document: object) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def test_the_example_is_what_the_code_makes() -> None:
    assert SCRIPT.generate() == BLOCK, "docs/formats.md is stale: run tools/make_recovery_examples.py"


def test_entry_hashes_follow_from_the_documented_rules() -> None:
    prev = bytes(32)
    for seq in (1, 2):
        body = value(f"entry {seq} body").encode()
        fields = json.loads(body)
        assert set(fields) == {"seq", "time", "vault", "actor", "action", "message", "details"}
        assert canonical(fields) == body and fields["seq"] == seq
        data = b"lifeboat-recovery-audit-entry-v1\x00" + prev + body
        assert value(f"entry {seq} hash input") == data.hex()
        prev = hashlib.sha256(data).digest()
        assert value(f"entry {seq} hash") == prev.hex()


def test_the_head_signature_and_export_follow_from_the_document() -> None:
    key = bytes.fromhex(value("service public key"))
    lines = BLOCK.split("export file:\n", 1)[1].split("\nwebhook secret:", 1)[0].split("\n")
    assert json.loads(lines[0]) == {"format": "lifeboat-recovery-audit", "version": 1}
    head = json.loads(lines[-1])
    message = b"lifeboat-recovery-audit-head-v1\x00" + canonical(head["head"])
    assert value("head message") == message.hex()
    nacl.signing.VerifyKey(key).verify(message, bytes.fromhex(head["signature"]))
    entries = [json.loads(line) for line in lines[1:-1]]
    assert [e["hash"] for e in entries] == [value("entry 1 hash"), value("entry 2 hash")]
    assert head["head"]["hash"] == entries[-1]["hash"] and head["head"]["seq"] == len(entries)
    export = "".join(line + "\n" for line in lines).encode()
    assert audit.verify(export, key).head.seq == 2


def test_the_webhook_signature_follows_from_the_document() -> None:
    secret = bytes.fromhex(value("webhook secret"))
    body = value("webhook body").encode()
    stamp, mac = re.fullmatch(r"t=(\d+),v1=([0-9a-f]{64})", value("Lifeboat-Signature")).groups()  # type: ignore[union-attr]
    assert hmac.new(secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest() == mac
    document = json.loads(body)
    assert canonical(document) == body
    assert (
        document["delivery"] == value("Lifeboat-Delivery") and document["type"] == "lifeboat.recovery.event"
    )
