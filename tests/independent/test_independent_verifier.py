"""The independent verifier (written from docs/formats.md alone) against the doc's worked examples,
against real bundles from `lifeboat state prove`, and against `lifeboat state verify-proof` on
tampered and crafted bundles: both must reach the same verdict every time."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from encoder import (
    SEED,
    Tree,
    build,
    bundle_bytes,
    jsonl_records,
    make_proof,
    number,
    public_key_hex,
    sign,
    statement_for,
)
from verify_state_proof import (
    TAG_KEY,
    canonical_json,
    empty_root,
    h,
    parse_siblings,
    statement_digest,
    verify_bundle,
)

from lifeboat.cli.main import main_entry

HERE = Path(__file__).resolve().parent
VERIFIER = HERE / "verify_state_proof.py"
FORMATS = HERE.parents[1] / "docs" / "formats.md"
SUMS = ["balances.USDC", "fee"]
KEYS = {"present": "acct:00010", "middle": "acct:00010x", "below": "a", "above": "z", "other": "acct:00012"}


def independent(path: Path, *args: str) -> tuple[int, str]:
    run = subprocess.run(
        [sys.executable, str(VERIFIER), str(path), *args], capture_output=True, text=True, timeout=60
    )
    return run.returncode, run.stdout.strip()


def lifeboat_verdict(cli: Any, path: Path, *args: str) -> bool:
    result = cli("state", "verify-proof", str(path), *args)
    assert result.code in (0, 1), result.err
    return bool(result.code == 0)


def agree(cli: Any, path: Path, *args: str) -> bool:
    """Both verifiers' verdict on one file; they must agree."""
    code, out = independent(path, *args)
    assert (code, out.split(":")[0]) in ((0, "valid"), (1, "invalid")), out
    theirs = lifeboat_verdict(cli, path, *args)
    assert (code == 0) == theirs, (
        f"independent says {out!r}, lifeboat says {'valid' if theirs else 'invalid'}"
    )
    return code == 0


def write(path: Path, bundle: dict[str, Any]) -> Path:
    path.write_text(canonical_json(bundle) + "\n", encoding="ascii")
    return path


# ------------------------------------------------------------------------- the doc's examples


def example_block() -> str:
    text = FORMATS.read_text(encoding="utf-8")
    return text[text.index("<!-- format-examples:begin") : text.index("<!-- format-examples:end")]


def test_doc_worked_examples_bytes_and_hashes() -> None:
    block = example_block()
    lines = dict(
        (m.group(1), m.group(2)) for m in re.finditer(r"^([a-z][^:\n]*): ([0-9a-f]{64,})$", block, re.M)
    )
    records = jsonl_records(
        [
            b'{"key":"acct:alice","balance":"100"}',
            b'{"key":"acct:bob","balance":"250"}',
            b'{"key":"acct:carol","balance":42,"note":"integer form"}',
        ],
        "key",
        ["balance"],
    )
    for key, _value, _sums in records:
        assert h(TAG_KEY + key).hex() in block
    tree = build(records, 4, 2, 1)
    assert tree.root.hex() == lines["root"]
    assert [len(level) for level in tree.levels] == [2, 1]
    for node in (n for level in tree.levels for n in level):
        assert f"node id: {node.node_id.hex()}" in block
    assert empty_root(4, 2, 1).hex() == lines["empty root (fanout 4, leaf_fanout 2, k = 1)"]

    message = re.search(r"^message: (\{.*\})$", block, re.M)
    assert message is not None
    statement = json.loads(message.group(1))
    assert canonical_json(statement) == message.group(1)
    assert statement_digest(message.group(1).encode()).hex() == lines["digest"]
    signing = Ed25519PrivateKey.from_private_bytes(SEED)
    assert signing.public_key().public_bytes_raw().hex() == lines["public key"]
    assert signing.sign(message.group(1).encode()).hex() == lines["signature"]


def test_doc_worked_examples_bundles() -> None:
    block = example_block()
    bundles = re.findall(r"```json\n(.*?)\n```", block, re.S)
    expected = re.findall(r"Expected result: valid, `(\{.*?\})`", block)
    assert len(bundles) == len(expected) == 2
    tree = build(
        jsonl_records(
            [
                b'{"key":"acct:alice","balance":"100"}',
                b'{"key":"acct:bob","balance":"250"}',
                b'{"key":"acct:carol","balance":42,"note":"integer form"}',
            ],
            "key",
            ["balance"],
        ),
        4,
        2,
        1,
    )
    for text, summary in zip(bundles, expected, strict=True):
        result = verify_bundle(text.encode())
        assert result.summary() == json.loads(summary)
        proof = json.loads(text)["proof"]
        assert make_proof(tree, proof["key"].encode()) == proof  # the encoder gives the same proof


# ------------------------------------------------------------------- real snapshots, the CLI


def ledger_lines() -> list[bytes]:
    lines = []
    for i in range(2000):
        usdc = "0" if i % 5 == 0 else str((i * 7919 * 104729) % 10**12)
        fee = 0 if i % 3 == 0 or i < 40 else (i * 31) % 1000  # zero sums near acct:00010
        record = {"key": f"acct:{i:05d}", "balances": {"USDC": usdc}, "fee": fee}
        lines.append(json.dumps(record, separators=(",", ":")).encode())
    return lines


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """A 2,000-record snapshot over three local stores, and proofs of present and absent keys."""
    base = tmp_path_factory.mktemp("state")
    (base / "ledger.jsonl").write_bytes(b"\n".join(ledger_lines()) + b"\n")
    stores = " ".join(str(base / f"s{i}") for i in range(3))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIFEBOAT_HOME", str(base / "home"))
        mp.setenv("LIFEBOAT_REPO_PASSPHRASE", "independent")
        mp.setenv("LIFEBOAT_STORES", stores)
        cache = ["--cache-dir", str(base / "cache")]
        assert main_entry(["repo", "init"]) == 0
        snap = ["state", "snapshot", str(base / "ledger.jsonl"), "--key", "key", "--no-progress"]
        assert main_entry([*snap, "--sum", SUMS[0], "--sum", SUMS[1], *cache]) == 0
        proofs = {}
        for name, key in KEYS.items():
            proofs[name] = base / f"{name}.json"
            assert main_entry(["state", "prove", key, "-o", str(proofs[name]), *cache]) == 0
        # leaf fanout 2: nodes closed at 4 * leaf_fanout entries occur (the cap rule of "Tree shape")
        assert main_entry([*snap, "--sum", SUMS[1], "--leaf-fanout", "2", "--name", "small", *cache]) == 0
        proofs["small"] = base / "small.json"
        prove = ["state", "prove", KEYS["present"], "--name", "small", "-o", str(proofs["small"])]
        assert main_entry([*prove, *cache]) == 0
        yield proofs


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def test_independent_encoder_gives_the_cli_root_and_proofs(snapshot: dict[str, Path]) -> None:
    tree = build(jsonl_records(ledger_lines(), "key", SUMS), 64, 7, 2)
    assert len(tree.levels) >= 3  # several levels
    small = build(jsonl_records(ledger_lines(), "key", SUMS[1:]), 64, 2, 1)
    assert any(len(node.entries) == 8 for node in small.levels[0])
    assert load(snapshot["small"])["statement"]["root"] == small.root.hex()
    assert make_proof(small, KEYS["present"].encode()) == load(snapshot["small"])["proof"]
    for name, path in snapshot.items():
        if name == "small":
            continue
        bundle = load(path)
        assert bundle["statement"]["root"] == tree.root.hex()
        assert make_proof(tree, KEYS[name].encode()) == bundle["proof"], name


@pytest.mark.parametrize("name", [*KEYS, "small"])
def test_cli_bundles_are_valid(cli: Any, snapshot: dict[str, Path], name: str) -> None:
    path = snapshot[name]
    statement = load(path)["statement"]
    assert agree(cli, path)
    assert agree(cli, path, "--root", statement["root"], "--trust", statement["signer"]["public_key"])
    assert not agree(cli, path, "--root", "ab" * 32)
    assert not agree(cli, path, "--trust", public_key_hex())


def recode_siblings(step: list[Any], k: int, num: Callable[[int], bytes]) -> None:
    raw = base64.urlsafe_b64decode(step[-1] + "=" * (-len(step[-1]) % 4))
    sibs = parse_siblings(raw, k, "test")
    out = b"".join(d + num(c) + b"".join(num(s) for s in sums) for d, c, sums in sibs)
    step[-1] = base64.urlsafe_b64encode(out).rstrip(b"=").decode()


def flip_sibling_byte(step: list[Any]) -> None:
    raw = bytearray(base64.urlsafe_b64decode(step[-1] + "=" * (-len(step[-1]) % 4)))
    raw[5] ^= 1
    step[-1] = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def zero_as_01_00(value: int) -> bytes:
    return b"\x01\x00" if value == 0 else number(value)


def with_leading_zero(value: int) -> bytes:
    body = number(value)
    return bytes([body[0] + 1, 0]) + body[1:] if value else body


def _value_fee(record: dict[str, Any], fee: int) -> None:
    record["value"] = re.sub(r'"fee":\d+', f'"fee":{fee}', record["value"])


def _value_and_sum(record: dict[str, Any]) -> None:
    _value_fee(record, 999)
    record["sums"][1] = "999"


def _recode_path(path: list[list[Any]]) -> None:
    for step in path:
        recode_siblings(step, 2, zero_as_01_00)


def double_siblings(step: list[Any]) -> None:
    raw = base64.urlsafe_b64decode(step[-1] + "=" * (-len(step[-1]) % 4))
    step[-1] = base64.urlsafe_b64encode(raw * 2).rstrip(b"=").decode()


Tamper = Callable[[dict[str, Any], dict[str, dict[str, Any]]], object]

TAMPERS: dict[str, tuple[str, Tamper]] = {
    "value": ("present", lambda b, o: _value_fee(b["proof"]["records"][0], 999)),
    "value and its sum": ("present", lambda b, o: _value_and_sum(b["proof"]["records"][0])),
    "sum": ("present", lambda b, o: b["proof"]["records"][0]["sums"].__setitem__(0, "1")),
    "sibling byte": ("present", lambda b, o: flip_sibling_byte(b["proof"]["records"][0]["path"][1])),
    "sibling too many": ("present", lambda b, o: double_siblings(b["proof"]["records"][0]["path"][0])),
    "sibling zero as 01 00": ("present", lambda b, o: _recode_path(b["proof"]["records"][0]["path"])),
    "sibling count with a leading zero byte": (
        "present",
        lambda b, o: recode_siblings(b["proof"]["records"][0]["path"][0], 2, with_leading_zero),
    ),
    "signature": (
        "present",
        lambda b, o: b.update(signature=("0" if b["signature"][0] != "0" else "1") + b["signature"][1:]),
    ),
    "statement root": ("present", lambda b, o: b["statement"].update(root="ab" * 32)),
    "statement count": ("present", lambda b, o: b["statement"].update(count=2001)),
    "proof key": ("present", lambda b, o: b["proof"].update(key="acct:00011")),
    "record key": ("present", lambda b, o: b["proof"]["records"][0].update(key="acct:00011")),
    "kind": ("present", lambda b, o: b["proof"].update(kind="absence")),
    "index": ("present", lambda b, o: b["proof"]["records"][0]["path"][0].__setitem__(1, 1)),
    "first key": ("present", lambda b, o: b["proof"]["records"][0]["path"][1].__setitem__(2, "acct:0000")),
    "path without its root step": ("present", lambda b, o: b["proof"]["records"][0]["path"].pop()),
    "proof version 1": ("present", lambda b, o: b["proof"].update(version=1)),
    "neighbours swapped": ("middle", lambda b, o: b["proof"]["records"].reverse()),
    "one neighbour dropped": ("middle", lambda b, o: b["proof"]["records"].pop()),
    "neighbour not adjacent": (
        "middle",
        lambda b, o: b["proof"]["records"].__setitem__(1, o["other"]["proof"]["records"][0]),
    ),
    "absent key is present": ("middle", lambda b, o: b["proof"].update(key="acct:00011")),
    "low end, key above the first record": ("below", lambda b, o: b["proof"].update(key="acct:00000a")),
    "high end, key below the last record": ("above", lambda b, o: b["proof"].update(key="acct:01998")),
    "high end, count changed": ("above", lambda b, o: b["statement"].update(count=1999)),
}


@pytest.mark.parametrize("name", list(TAMPERS))
def test_tampered_bundles_are_invalid(cli: Any, snapshot: dict[str, Path], tmp_path: Path, name: str) -> None:
    source, tamper = TAMPERS[name]
    bundle = load(snapshot[source])
    others = {k: load(p) for k, p in snapshot.items()}
    before = canonical_json(bundle)
    tamper(bundle, others)
    assert canonical_json(bundle) != before, "the tamper changed nothing"
    assert not agree(cli, write(tmp_path / "tampered.json", bundle))


def test_spacing_does_not_matter_but_repeats_do(cli: Any, snapshot: dict[str, Path], tmp_path: Path) -> None:
    bundle = load(snapshot["middle"])
    indented = tmp_path / "indented.json"
    indented.write_text(json.dumps(bundle, indent=3), encoding="utf-8")
    assert agree(cli, indented)
    text = snapshot["middle"].read_text(encoding="utf-8")
    repeated = tmp_path / "repeated.json"
    repeated.write_text(text.replace('{"fanout":64,', '{"fanout":64,"fanout":64,', 1), encoding="utf-8")
    assert not agree(cli, repeated)
    padded = tmp_path / "padded.json"
    step = bundle["proof"]["records"][0]["path"][0]
    step[-1] = step[-1] + "=" * (-len(step[-1]) % 4)
    if step[-1].endswith("="):
        assert not agree(cli, write(padded, bundle))


# ------------------------------------------------------------- crafted bundles (a test key)


def crafted(
    records: list[tuple[bytes, bytes, tuple[int, ...]]],
    sum_fields: list[str],
    key: bytes | None = None,
    **statement: Any,
) -> bytes:
    tree: Tree = build(records, 4, 2, len(sum_fields))
    st = statement_for(tree, sum_fields, **statement)
    return bundle_bytes(st, make_proof(tree, key if key is not None else records[0][0]))


def rec(key: bytes, value: bytes, *sums: int) -> tuple[bytes, bytes, tuple[int, ...]]:
    return key, value, sums


ONE = [rec(b"a", b'{"key":"a","b":1}', 1)]

CRAFTED: dict[str, tuple[bool, bytes]] = {
    "plain": (True, crafted(ONE, ["b"])),
    "value says 100, tree commits 0": (False, crafted([rec(b"a", b'{"key":"a","b":"100"}', 0)], ["b"])),
    "whole-path member (CSV column)": (
        True,
        crafted([rec(b"a", b'{"key":"a","balances.USDC":"5"}', 5)], ["balances.USDC"]),
    ),
    "first step present: no whole-path fallback": (
        True,
        crafted([rec(b"a", b'{"key":"a","balances":{},"balances.USDC":"5"}', 0)], ["balances.USDC"]),
    ),
    "absent member is 0": (True, crafted([rec(b"a", b'{"key":"a","x":{}}', 0)], ["x.y.z"])),
    "not an object before the last step": (False, crafted([rec(b"a", b'{"key":"a","x":[1]}', 0)], ["x.y"])),
    "integer key": (True, crafted([rec(b"-17", b'{"key":-17,"b":1}', 1)], ["b"])),
    "-0 key is 0": (True, crafted([rec(b"0", b'{"key":-0}')], [])),
    "-0 key is not -0": (False, crafted([rec(b"-0", b'{"key":-0}')], [])),
    "fraction key": (False, crafted([rec(b"1.0", b'{"key":1.0}')], [])),
    "boolean key": (False, crafted([rec(b"true", b'{"key":true}')], [])),
    "empty key": (True, crafted([rec(b"", b'{"key":""}')], [])),
    "4,097-byte key": (False, crafted([rec(b"k" * 4097, b'{"key":"' + b"k" * 4097 + b'"}')], [])),
    "repeated name: the last counts": (True, crafted([rec(b"b", b'{"key":"a","key":"b"}')], [])),
    "sum -0 is 0": (True, crafted([rec(b"a", b'{"key":"a","b":-0}', 0)], ["b"])),
    "sum with leading zeros": (True, crafted([rec(b"a", b'{"key":"a","b":"007"}', 7)], ["b"])),
    "sum of non-ASCII digits": (False, crafted([rec(b"a", '{"key":"a","b":"\u0663"}'.encode(), 3)], ["b"])),
    "sum 2**128 - 1": (True, crafted([rec(b"a", b'{"key":"a","b":%d}' % (2**128 - 1), 2**128 - 1)], ["b"])),
    "sum 2**128": (False, crafted([rec(b"a", b'{"key":"a","b":%d}' % 2**128, 0)], ["b"])),
    "sum boolean": (False, crafted([rec(b"a", b'{"key":"a","b":true}', 1)], ["b"])),
    "NaN": (False, crafted([rec(b"a", b'{"key":"a","x":NaN}')], [])),
    "value ends in CR": (True, crafted([rec(b"a", b'{"key":"a"}\r')], [])),
    "value with a BOM": (False, crafted([rec(b"a", b'\xef\xbb\xbf{"key":"a"}')], [])),
    "308-digit number": (True, crafted([rec(b"a", b'{"key":"a","x":' + b"9" * 308 + b"}")], [])),
    "309-digit number": (False, crafted([rec(b"a", b'{"key":"a","x":' + b"9" * 309 + b"}")], [])),
    "2e308": (False, crafted([rec(b"a", b'{"key":"a","x":2e308}')], [])),
    "lone surrogate escape in a value": (False, crafted([rec(b"a", b'{"key":"a","x":"\\ud800"}')], [])),
    "surrogate pair escape in a key": (
        True,
        crafted([rec("\U0001f600".encode(), b'{"key":"\\ud83d\\ude00"}')], []),
    ),
    "lone surrogate in the statement's source": (True, crafted(ONE, ["b"], source={"path": "\ud800"})),
    "key field with a dot is a member name": (
        True,
        crafted([rec(b"a", b'{"x.y":"a"}')], [], key_field="x.y"),
    ),
    "sum digits: 4,300 characters": (
        True,
        crafted([rec(b"a", b'{"key":"a","b":"' + b"0" * 4299 + b'1"}', 1)], ["b"]),
    ),
    "sum digits: 4,301 characters": (
        False,
        crafted([rec(b"a", b'{"key":"a","b":"' + b"0" * 4300 + b'1"}', 1)], ["b"]),
    ),
    "empty tree": (True, crafted([], ["b"], key=b"x")),
    "absent key longer than 4,096 bytes": (True, crafted(ONE, ["b"], key=b"z" * 5000)),
    "absent key not UTF-8 (hex)": (True, crafted(ONE, ["b"], key=b"\xff")),
    "sum field with an empty step": (False, crafted([rec(b"a", b'{"key":"a"}', 0)], ["a..b"])),
    "time with one fraction digit": (True, crafted(ONE, ["b"], time="2026-12-01T00:00:00.1Z")),
    "time without fraction": (True, crafted(ONE, ["b"], time="2026-12-01T00:00:00Z")),
    "time 24:00": (False, crafted(ONE, ["b"], time="2026-12-01T24:00:00Z")),
    "time Feb 30": (False, crafted(ONE, ["b"], time="2026-02-30T00:00:00Z")),
    "invariants: passed must be a boolean": (False, crafted(ONE, ["b"], invariants={"passed": 1})),
    "invariants: any other members": (True, crafted(ONE, ["b"], invariants={"passed": False, "x": []})),
    "source: non-ASCII and fractions, canonically": (
        True,
        crafted(
            ONE,
            ["b"],
            source={"kind": "csv", "path": "d\u00e9j\u00e0 \U0001f600\x7f", "f": [0.1, 1e16, 2.0, 1e-7]},
        ),
    ),
    "frost-ed25519 scheme": (
        True,
        crafted(ONE, ["b"], signer={"scheme": "frost-ed25519", "public_key": public_key_hex()}),
    ),
}


@pytest.mark.parametrize("name", list(CRAFTED))
def test_crafted_bundles(cli: Any, tmp_path: Path, name: str) -> None:
    expected, data = CRAFTED[name]
    path = tmp_path / "crafted.json"
    path.write_bytes(data)
    assert agree(cli, path) is expected


def test_bundle_with_a_byte_order_mark(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + crafted(ONE, ["b"]))
    assert agree(cli, path)


def test_signature_by_another_key(cli: Any, tmp_path: Path) -> None:
    bundle = json.loads(crafted(ONE, ["b"]))
    bundle["signature"] = sign(bundle["statement"], bytes(32))
    assert not agree(cli, write(tmp_path / "other-key.json", bundle))


@pytest.mark.parametrize(
    ("written", "valid"),
    [("1e2", True), ("1E+2", True), ("100.0", True), ("100", False)],
)
def test_statement_numbers_are_rewritten_canonically(
    cli: Any, tmp_path: Path, written: str, valid: bool
) -> None:
    """The message is the canonical JSON of the parsed statement: 1e2 is the fraction 100.0, 100 is not."""
    tree = build(ONE, 4, 2, 1)
    data = bundle_bytes(statement_for(tree, ["b"], source={"kind": "x", "f": 100.0}), make_proof(tree, b"a"))
    assert b'"f":100.0' in data
    path = tmp_path / "numbers.json"
    path.write_bytes(data.replace(b'"f":100.0', f'"f":{written}'.encode()))
    assert agree(cli, path) is valid
