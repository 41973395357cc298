"""docs/formats.md, "Record snapshots": the worked examples are the code's, and the rules the
document states are enough to check them.

The example block must be exactly what tools/make_format_examples.py prints (so it cannot drift
from the code); then the hex in the document is checked by a small verifier written from the
document's rules alone (struct, BLAKE3, base64 and Ed25519; no Lifeboat code): node ids, the
statement digest and signature, and every proof path up to the root.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import struct
from pathlib import Path
from types import ModuleType
from typing import Any

import nacl.signing
import pytest
from blake3 import blake3

from lifeboat.state.statement import verify_bundle

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "formats.md"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_format_examples", ROOT / "tools" / "make_format_examples.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCRIPT = _script()


def _block() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(SCRIPT.BEGIN)
    end = text.index(SCRIPT.END) + len(SCRIPT.END)
    return text[start:end] + "\n"


BLOCK = _block()


def _values(label: str) -> list[str]:
    """Every value written as ``label: value`` in the block, in order."""
    return re.findall(rf"^{re.escape(label)}: (\S+)$", BLOCK, flags=re.MULTILINE)


def test_the_examples_are_what_the_code_makes() -> None:
    assert SCRIPT.generate() == BLOCK, "docs/formats.md is stale: run tools/make_format_examples.py"


# --- a verifier written from the document ------------------------------------------------------


def s_bytes(count: int, sums: list[int]) -> bytes:
    return count.to_bytes(8, "big") + b"".join(value.to_bytes(24, "big") for value in sums)


def node_id_from_doc_rules(data: bytes) -> bytes:
    version, level, fanout, leaf_fanout, k, n = struct.unpack(">BBHHBH", data[:9])
    assert version == 1 and 2 <= fanout <= 4096 and 2 <= leaf_fanout <= 4096
    at = 9
    hashes: list[bytes] = []
    packs: list[tuple[int, list[int]]] = []
    for _ in range(n):
        start = at
        tag, key_length = struct.unpack(">BH", data[at : at + 3])
        at += 3 + key_length
        if level == 0:
            assert tag == 1
            (value_length,) = struct.unpack(">I", data[at : at + 4])
            at += 4 + value_length
            sums = [int.from_bytes(data[at + 16 * i : at + 16 * i + 16], "big") for i in range(k)]
            at += 16 * k
            packs.append((1, sums))
        else:
            assert tag == 2
            at += 32
            count = int.from_bytes(data[at : at + 8], "big")
            sums = [int.from_bytes(data[at + 8 + 24 * i : at + 32 + 24 * i], "big") for i in range(k)]
            at += 8 + 24 * k
            packs.append((count, sums))
        hashes.append(blake3(data[start:at]).digest())
    assert at == len(data)
    total = (sum(c for c, _ in packs), [sum(s[i] for _, s in packs) for i in range(k)])
    while len(hashes) > 1:
        upper, upper_packs = [], []
        for i in range(0, len(hashes) - 1, 2):
            (lc, ls), (rc, rs) = packs[i], packs[i + 1]
            upper.append(
                blake3(b"\x03" + hashes[i] + s_bytes(lc, ls) + hashes[i + 1] + s_bytes(rc, rs)).digest()
            )
            upper_packs.append((lc + rc, [a + b for a, b in zip(ls, rs, strict=True)]))
        if len(hashes) % 2:
            upper.append(hashes[-1])
            upper_packs.append(packs[-1])
        hashes, packs = upper, upper_packs
    merkle = hashes[0] if hashes else bytes(32)
    return blake3(b"\x04" + data[:9] + s_bytes(*total) + merkle).digest()


def test_node_ids_follow_from_the_documented_bytes() -> None:
    nodes, ids = _values("node bytes"), _values("node id")
    assert len(nodes) == len(ids) == 3
    for data, node_id in zip(nodes, ids, strict=True):
        assert node_id_from_doc_rules(bytes.fromhex(data)).hex() == node_id
    assert _values("root") == [ids[-1]]


def _bundles() -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in BLOCK.splitlines() if line.startswith('{"format":"lifeboat-state-proof"')
    ]


def canonical(document: object) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def test_statement_digest_and_signature_follow_from_the_document() -> None:
    (message,) = _values("message")
    bundles = _bundles()
    assert len(bundles) == 2
    for bundle in bundles:
        assert canonical(bundle["statement"]) == message.encode()
    assert blake3(b"lifeboat-state-statement\x00" + message.encode()).hexdigest() == _values("digest")[0]
    key = nacl.signing.VerifyKey(bytes.fromhex(_values("public key")[0]))
    key.verify(message.encode(), bytes.fromhex(_values("signature")[0]))


def walk_from_doc_rules(
    proof: dict[str, Any], record: dict[str, Any]
) -> tuple[bytes, int, tuple[int, list[int]]]:
    """Step 5 of "Verifying a bundle", from the document alone (text keys and values only)."""
    k, fanout, leaf_fanout = proof["sum_fields"], proof["fanout"], proof["leaf_fanout"]
    key, value = record["key"].encode(), record["value"].encode()
    sums = [int(x) for x in record["sums"]]
    entry = b"\x01" + struct.pack(">H", len(key)) + key + struct.pack(">I", len(value)) + value
    h = blake3(entry + b"".join(x.to_bytes(16, "big") for x in sums)).digest()
    count, p = 1, 0
    for level, step in enumerate(record["path"]):
        entries, index, encoded = step[0], step[1], step[-1]
        if level:
            first_key = step[2].encode()
            assert first_key == key if p == 0 else first_key < key
            h = blake3(
                b"\x02" + struct.pack(">H", len(first_key)) + first_key + h + s_bytes(count, sums)
            ).digest()
        blob = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        siblings = []
        at = 0
        while at < len(blob):
            digest, at = blob[at : at + 32], at + 32
            numbers = []
            for _ in range(k + 1):
                size = blob[at]
                numbers.append(int.from_bytes(blob[at + 1 : at + 1 + size], "big"))
                at += 1 + size
            siblings.append((digest, numbers[0], numbers[1:]))
        i, m, used = index, entries, 0
        while m > 1:
            if i % 2 == 1 or i + 1 < m:
                other, other_count, other_sums = siblings[used]
                used += 1
                mine, theirs = s_bytes(count, sums), s_bytes(other_count, other_sums)
                if i % 2 == 1:
                    p += other_count
                    h = blake3(b"\x03" + other + theirs + h + mine).digest()
                else:
                    h = blake3(b"\x03" + h + mine + other + theirs).digest()
                count += other_count
                sums = [a + b for a, b in zip(sums, other_sums, strict=True)]
            i, m = i >> 1, (m + 1) >> 1
        assert used == len(siblings)
        header = struct.pack(">BBHHBH", 1, level, fanout, leaf_fanout, k, entries)
        h = blake3(b"\x04" + header + s_bytes(count, sums) + h).digest()
    return h, p, (count, sums)


def test_proofs_walk_to_the_root_by_the_documented_rules() -> None:
    root = _values("root")[0]
    expected = re.findall(r"^Expected result: valid, `(.*)`$", BLOCK, flags=re.MULTILINE)
    for bundle, result_text in zip(_bundles(), expected, strict=True):
        result = json.loads(result_text)
        proof, statement = bundle["proof"], bundle["statement"]
        walked = [walk_from_doc_rules(proof, record) for record in proof["records"]]
        for h, _p, (count, sums) in walked:
            assert h.hex() == root == statement["root"]
            assert count == statement["count"] == result["count"]
            assert [str(x) for x in sums] == statement["totals"] == result["totals"]
        positions = [p for _h, p, _s in walked]
        if result["present"]:
            assert positions == [result["position"]]
        else:
            assert positions == [result["position"] - 1, result["position"]]
        verified = verify_bundle(canonical(bundle)).proof
        assert verified.present == result["present"] and verified.position == result["position"]


@pytest.mark.parametrize("label", ["key", "value"])
def test_the_example_records_are_listed(label: str) -> None:
    assert len(re.findall(rf"^{label} acct:\w+: ", BLOCK, flags=re.MULTILINE)) == 3
