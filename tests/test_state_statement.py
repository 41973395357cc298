"""State statements: strict JSON, Ed25519 signatures, hash chains, signing keys, proof bundles."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import nacl.signing
import pytest
from blake3 import blake3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifeboat.documents import canonical_json
from lifeboat.errors import InputError, StateError, UsageError
from lifeboat.state import prolly
from lifeboat.state.statement import (
    MAX_BUNDLE_BYTES,
    Signer,
    Statement,
    check_chain,
    check_name,
    decode_signing_key,
    encode_bundle,
    encode_signing_key,
    new_signing_key,
    public_key_of,
    sign,
    utc_now,
    verify_bundle,
    verify_signature,
)

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SEED = bytes(range(32))
OTHER_SEED = bytes(range(1, 33))
ROOT = bytes(range(100, 132))
REPORT = {"passed": True, "digest": "ab" * 32, "results": []}


def make_statement(**changes: Any) -> Statement:
    fields: dict[str, Any] = {
        "name": "ledger",
        "root": ROOT,
        "count": 3,
        "sum_fields": ("balances.USDC", "balances.ETH"),
        "totals": (2**130 + 7, 12),
        "fanout": 64,
        "leaf_fanout": 16,
        "key_field": "key",
        "source": {"kind": "jsonl", "path": "/data/ledger.jsonl", "final_newline": True, "records": 3},
        "time": "2026-11-24T10:00:00.123456Z",
        "sequence": 0,
        "invariants": REPORT,
        "previous": None,
        "signer": Signer("ed25519", public_key_of(SEED)),
    }
    fields.update(changes)
    return Statement(**fields)


# --- JSON -------------------------------------------------------------------------------------


def test_json_round_trip_and_field_names() -> None:
    statement = make_statement(previous=b"\x01" * 32, parent=b"\x02" * 32)
    document = statement.to_json()
    assert document == {
        "format": "lifeboat-state",
        "version": 1,
        "name": "ledger",
        "root": ROOT.hex(),
        "count": 3,
        "sum_fields": ["balances.USDC", "balances.ETH"],
        "totals": [str(2**130 + 7), "12"],
        "fanout": 64,
        "leaf_fanout": 16,
        "key_field": "key",
        "source": statement.source,
        "time": "2026-11-24T10:00:00.123456Z",
        "sequence": 0,
        "invariants": REPORT,
        "previous": "01" * 32,
        "signer": {"scheme": "ed25519", "public_key": public_key_of(SEED).hex()},
        "parent": "02" * 32,
    }
    back = Statement.from_json(json.loads(json.dumps(document)), what="statement")
    assert back == statement
    assert back.message() == statement.message() == canonical_json(document)
    first = make_statement()
    assert first.to_json()["previous"] is None and first.to_json()["parent"] is None
    assert Statement.from_json(first.to_json(), what="statement") == first


def test_digest_is_domain_separated_and_stable() -> None:
    statement = make_statement()
    assert statement.digest() == blake3(b"lifeboat-state-statement\x00" + statement.message()).digest()
    assert statement.digest() != blake3(statement.message()).digest()
    assert statement.digest() == make_statement().digest()
    assert statement.digest() != make_statement(sequence=1).digest()
    assert statement.short() == statement.digest().hex()[:12]


def test_invariants_passed() -> None:
    assert make_statement().invariants_passed is True
    assert make_statement(invariants={"passed": False, "results": []}).invariants_passed is False
    assert make_statement(invariants=None).invariants_passed is None


def _with(document: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    changed = dict(document)
    if value is _MISSING:
        del changed[field]
    else:
        changed[field] = value
    return changed


_MISSING = object()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("extra", 1, "unknown field 'extra'"),
        ("count", _MISSING, "lacks 'count'"),
        ("parent", _MISSING, "lacks 'parent'"),
        ("format", "lifeboat-tree", "not a Lifeboat state statement"),
        ("version", 2, "upgrade Lifeboat"),
        ("version", 0, "not a format version"),
        ("version", True, "not a format version"),
        ("root", "AB" * 32, "'root' must be 64 lowercase hex digits"),
        ("root", "ab" * 31, "'root' must be 64 lowercase hex digits"),
        ("previous", "zz" * 32, "'previous' must be 64 lowercase hex digits"),
        ("count", True, "'count' must be an integer"),
        ("count", "3", "'count' must be an integer"),
        ("count", -1, "count must be an integer"),
        ("count", 2**64, "count must be an integer"),
        ("totals", ["1"], "one total per sum field"),
        ("totals", ["01", "2"], "decimal strings without leading zeros"),
        ("totals", [1, 2], "decimal strings"),
        ("totals", [str(2**192), "1"], "2**192"),
        ("sum_fields", ["a", "a"], "distinct"),
        ("sum_fields", "a", "list of strings"),
        ("fanout", 1, "fanout must be an integer from 2"),
        ("leaf_fanout", 5000, "leaf_fanout must be an integer"),
        ("time", "2026-11-24 10:00:00", "not RFC 3339 UTC"),
        ("time", "2026-11-24T10:00:00+01:00", "not RFC 3339 UTC"),
        ("time", "2026-13-24T10:00:00Z", "not RFC 3339 UTC"),
        ("sequence", -1, "sequence must be an integer"),
        ("invariants", [], "'invariants' must be a JSON object or null"),
        ("invariants", {"results": []}, "boolean 'passed'"),
        ("source", "file", "'source' must be a JSON object"),
        ("name", "", "dataset name"),
        ("name", "../x", "dataset name"),
        ("key_field", "", "key field"),
        ("signer", "ed25519", "'signer' is not a JSON object"),
        ("signer", {"scheme": "rsa", "public_key": "00" * 32}, "scheme 'rsa'"),
        ("signer", {"scheme": "ed25519"}, "lacks 'public_key'"),
        ("signer", {"scheme": "ed25519", "public_key": "00" * 33}, "64 lowercase hex"),
    ],
)
def test_from_json_is_strict(field: str, value: Any, message: str) -> None:
    document = _with(make_statement().to_json(), field, value)
    with pytest.raises(StateError, match="the statement") as info:
        Statement.from_json(document, what="the statement")
    assert message in str(info.value)


def test_from_json_refuses_non_objects() -> None:
    values: list[object] = [None, [], "x", 1]
    for value in values:
        with pytest.raises(StateError, match="not a Lifeboat state statement"):
            Statement.from_json(value, what="s")


def test_constructor_checks() -> None:
    with pytest.raises(UsageError, match="root"):
        make_statement(root=b"short")
    with pytest.raises(UsageError, match="one total per sum field"):
        make_statement(totals=(1,))
    with pytest.raises(UsageError, match="scheme"):
        Signer("ecdsa", bytes(32))
    with pytest.raises(UsageError, match="32 bytes"):
        Signer("ed25519", bytes(31))
    with pytest.raises(UsageError, match="dataset name"):
        check_name("a b")
    assert check_name("ledger-2026.v1_x") == "ledger-2026.v1_x"
    now = utc_now()
    assert make_statement(time=now).time == now
    assert make_statement(time="2026-11-24T10:00:00Z").time.endswith("Z")


# --- signatures -------------------------------------------------------------------------------


def test_sign_and_verify() -> None:
    statement = make_statement()
    signature = sign(statement, SEED)
    assert len(signature) == 64
    verify_signature(statement, signature)
    nacl.signing.VerifyKey(public_key_of(SEED)).verify(statement.message(), signature)
    with pytest.raises(StateError, match="does not verify"):
        verify_signature(statement, bytes(64))
    with pytest.raises(StateError, match="not 64 bytes"):
        verify_signature(statement, signature[:-1])
    with pytest.raises(UsageError, match="not the statement's signer"):
        sign(statement, OTHER_SEED)
    with pytest.raises(InputError, match="32 bytes"):
        sign(statement, SEED[:31])


def test_frost_scheme_verifies_as_plain_ed25519() -> None:
    # A FROST(Ed25519) group signature is an ordinary RFC 8032 signature under the group key.
    statement = make_statement(signer=Signer("frost-ed25519", public_key_of(SEED)))
    signature = nacl.signing.SigningKey(SEED).sign(statement.message()).signature
    verify_signature(statement, signature)
    with pytest.raises(UsageError, match="signing ceremony"):
        sign(statement, SEED)
    # The scheme is signed too: the same signature does not verify for the ed25519 statement.
    with pytest.raises(StateError):
        verify_signature(
            dataclasses.replace(statement, signer=Signer("ed25519", public_key_of(SEED))), signature
        )


_TAMPERS: dict[str, Any] = {
    "name": lambda value: "ledger2",
    "root": lambda value: bytes(32),
    "count": lambda value: value + 1,
    "sum_fields": lambda value: ("balances.USDC", "balances.BTC"),
    "totals": lambda value: (value[0], value[1] + 1),
    "fanout": lambda value: 32,
    "leaf_fanout": lambda value: 17,
    "key_field": lambda value: "id",
    "source": lambda value: {**value, "records": 4},
    "time": lambda value: "2026-11-24T10:00:00.123457Z",
    "sequence": lambda value: 1,
    "invariants": lambda value: {**value, "passed": False},
    "previous": lambda value: b"\x03" * 32,
    "signer": lambda value: Signer("frost-ed25519", value.public_key),
    "parent": lambda value: b"\x04" * 32,
}


@pytest.mark.parametrize("field", [field.name for field in dataclasses.fields(Statement)])
def test_every_field_tamper_breaks_the_signature(field: str) -> None:
    statement = make_statement()
    signature = sign(statement, SEED)
    changed = dataclasses.replace(statement, **{field: _TAMPERS[field](getattr(statement, field))})
    assert changed != statement
    with pytest.raises(StateError, match="does not verify"):
        verify_signature(changed, signature)


def test_signer_key_swap_breaks_the_signature() -> None:
    statement = make_statement()
    signature = sign(statement, SEED)
    swapped = dataclasses.replace(statement, signer=Signer("ed25519", public_key_of(OTHER_SEED)))
    with pytest.raises(StateError, match="does not verify"):
        verify_signature(swapped, signature)


@PROPERTY
@given(
    count=st.integers(0, 2**64 - 1),
    totals=st.lists(st.integers(0, 2**192 - 1), max_size=4),
    sequence=st.integers(0, 2**63 - 1),
    name=st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True),
    source=st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=4),
    passed=st.none() | st.booleans(),
)
def test_round_trip_and_signature_property(
    count: int, totals: list[int], sequence: int, name: str, source: dict[str, Any], passed: bool | None
) -> None:
    statement = make_statement(
        name=name,
        count=count,
        sum_fields=tuple(f"f{index}" for index in range(len(totals))),
        totals=tuple(totals),
        sequence=sequence,
        source=source,
        invariants=None if passed is None else {"passed": passed},
    )
    back = Statement.from_json(json.loads(statement.message()), what="statement")
    assert back == statement and back.digest() == statement.digest()
    verify_signature(back, sign(statement, SEED))


# --- chains -----------------------------------------------------------------------------------


def make_chain(length: int = 3) -> list[Statement]:
    chain: list[Statement] = []
    for index in range(length):
        chain.append(
            make_statement(
                sequence=index * 10,
                time=f"2026-11-2{index}T10:00:00.000000Z",
                previous=chain[-1].digest() if chain else None,
            )
        )
    return chain


def test_good_chain() -> None:
    assert check_chain(make_chain()) == []
    assert check_chain(make_chain(1)) == []
    assert check_chain([]) == []


def test_broken_previous() -> None:
    chain = make_chain()
    chain[2] = dataclasses.replace(chain[2], previous=chain[0].digest())
    (problem,) = check_chain(chain)
    assert problem.startswith(f"statement 2 ({chain[2].short()})") and "chain is broken" in problem
    assert chain[1].short() in problem
    # Rewriting an earlier statement breaks the link from the next one.
    chain = make_chain()
    chain[0] = dataclasses.replace(chain[0], count=99)
    assert "statement 1" in check_chain(chain)[0]
    chain = make_chain()
    del chain[1]
    assert "chain is broken" in check_chain(chain)[0]


def test_first_must_not_have_previous() -> None:
    chain = make_chain()
    (problem,) = check_chain(chain[1:])
    assert "is the first but names a previous statement" in problem


def test_signer_change() -> None:
    chain = make_chain(2)
    chain[1] = dataclasses.replace(chain[1], signer=Signer("ed25519", public_key_of(OTHER_SEED)))
    (problem,) = check_chain(chain)
    assert "statement 1" in problem and public_key_of(OTHER_SEED).hex() in problem


def test_time_and_sequence_going_back() -> None:
    chain = make_chain(2)
    chain[1] = dataclasses.replace(chain[1], time="2026-11-19T10:00:00Z")
    (problem,) = check_chain(chain)
    assert problem.startswith("statement 1 (") and "has time 2026-11-19T10:00:00Z, before" in problem
    chain = make_chain(2)
    chain[0] = dataclasses.replace(chain[0], sequence=50)
    chain[1] = dataclasses.replace(chain[1], previous=chain[0].digest())
    (problem,) = check_chain(chain)
    assert "sequence 10, below 50" in problem
    # Equal times and sequences are fine; fractional digits compare as times.
    chain = make_chain(2)
    chain[0] = dataclasses.replace(chain[0], time="2026-11-20T10:00:00.5Z", sequence=10)
    chain[1] = dataclasses.replace(chain[1], time="2026-11-20T10:00:00.500000Z", previous=chain[0].digest())
    assert check_chain(chain) == []


def test_name_change() -> None:
    chain = make_chain(2)
    chain[1] = dataclasses.replace(chain[1], name="other")
    (problem,) = check_chain(chain)
    assert "is for 'other', not 'ledger'" in problem


# --- signing keys -----------------------------------------------------------------------------


def test_signing_key_round_trip() -> None:
    seed = new_signing_key()
    assert len(seed) == 32 and seed != new_signing_key()
    data = encode_signing_key(seed)
    assert json.loads(data) == {"format": "lifeboat-state-signing-key", "version": 1, "seed": seed.hex()}
    assert data.endswith(b"\n")
    assert decode_signing_key(data, "key.json") == seed
    assert public_key_of(seed) == bytes(nacl.signing.SigningKey(seed).verify_key)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"format": "lifeboat-state-signing-key", "version": 1}, "lacks 'seed'"),
        ({"format": "lifeboat-state-signing-key", "version": 1, "seed": "SEED", "x": 1}, "unknown field 'x'"),
        ({"format": "lifeboat-state-signing-key", "version": 1, "seed": "0f" * 31}, "64 lowercase hex"),
        ({"format": "lifeboat-state-signing-key", "version": 1, "seed": "0F" * 32}, "64 lowercase hex"),
        ({"format": "lifeboat-state-signing-key", "version": 2, "seed": "0f" * 32}, "upgrade Lifeboat"),
        ({"format": "lifeboat-home", "version": 1, "seed": "0f" * 32}, "not a Lifeboat state signing key"),
    ],
)
def test_signing_key_is_strict(document: dict[str, Any], message: str) -> None:
    with pytest.raises(StateError, match="key") as info:
        decode_signing_key(json.dumps(document).encode(), "key.json")
    assert message in str(info.value)
    assert "0f" * 16 not in str(info.value).lower()


def test_signing_key_garbage() -> None:
    with pytest.raises(StateError, match="not valid JSON"):
        decode_signing_key(b"\xff", "key.json")
    with pytest.raises(StateError, match="limit"):
        decode_signing_key(b" " * 5000, "key.json")
    seed_hex = "0f" * 32
    repeated = (
        f'{{"format":"lifeboat-state-signing-key","version":1,"seed":"{seed_hex}","seed":"{seed_hex}"}}'
    )
    with pytest.raises(StateError, match="repeats the field 'seed'") as info:
        decode_signing_key(repeated.encode(), "key.json")
    assert seed_hex not in str(info.value)


# --- bundles ----------------------------------------------------------------------------------


def _value(index: int, usdc: object = None, eth: object = None, key: object = None) -> bytes:
    """A record whose key field and sum fields (balances.USDC, balances.ETH) say what the tree commits."""
    document = {
        "key": f"acct:{index:04d}" if key is None else key,
        "balances": {
            "USDC": str(index) if usdc is None else usdc,
            "ETH": 2 * index + 1 if eth is None else eth,
        },
        "n": index,
    }
    return json.dumps(document, separators=(",", ":")).encode()


def _records(count: int, salt: bytes = b"") -> list[prolly.Record]:
    return [
        prolly.Record(b"acct:%04d" % index, _value(index) + salt, (index, 2 * index + 1))
        for index in range(0, 2 * count, 2)
    ]


def make_tree(records: list[prolly.Record]) -> tuple[prolly.MemorySource, prolly.Tree]:
    source = prolly.MemorySource()
    nodes = prolly.build(records, fanout=4, leaf_fanout=3, sum_fields=2)
    for node in nodes:
        source.put(node)
    return source, nodes.tree


def statement_for(tree: prolly.Tree, **changes: Any) -> Statement:
    fields: dict[str, Any] = {
        "root": tree.root,
        "count": tree.count,
        "totals": tree.totals,
        "fanout": tree.fanout,
        "leaf_fanout": tree.leaf_fanout,
    }
    fields.update(changes)
    return make_statement(**fields)


@pytest.fixture(scope="module")
def ledger() -> tuple[prolly.MemorySource, prolly.Tree, Statement, bytes]:
    source, tree = make_tree(_records(60))
    statement = statement_for(tree)
    return source, tree, statement, sign(statement, SEED)


Ledger = tuple[prolly.MemorySource, prolly.Tree, Statement, bytes]


def test_bundle_good(ledger: Ledger) -> None:
    source, tree, statement, signature = ledger
    data = encode_bundle(statement, signature, prolly.prove(source, tree.root, b"acct:0010"))
    document = json.loads(data)
    assert set(document) == {"format", "version", "statement", "signature", "proof"}
    assert document["format"] == "lifeboat-state-proof" and document["version"] == 1
    assert isinstance(document["proof"], dict) and document["proof"]["format"] == "lifeboat-prolly-proof"
    assert document["signature"] == signature.hex()
    verified = verify_bundle(data, root=tree.root, trust=public_key_of(SEED))
    assert verified.statement == statement
    assert verified.proof.present and verified.proof.record is not None
    assert verified.proof.record.value == _value(10)
    assert verified.proof.count == 60 and verified.proof.totals == tree.totals
    assert verify_bundle(data).statement == statement


def test_bundle_absence(ledger: Ledger) -> None:
    source, tree, statement, signature = ledger
    data = encode_bundle(statement, signature, prolly.prove(source, tree.root, b"acct:0011"))
    verified = verify_bundle(data, root=tree.root)
    assert not verified.proof.present
    assert verified.proof.before is not None and verified.proof.before.key == b"acct:0010"


def test_bundle_empty_tree() -> None:
    source, tree = make_tree([])
    statement = statement_for(tree)
    data = encode_bundle(statement, sign(statement, SEED), prolly.prove(source, tree.root, b"x"))
    assert verify_bundle(data).proof.count == 0


def test_bundle_wrong_root(ledger: Ledger) -> None:
    source, tree, statement, signature = ledger
    data = encode_bundle(statement, signature, prolly.prove(source, tree.root, b"acct:0010"))
    with pytest.raises(StateError, match=f"statement is for root {tree.root.hex()}, not"):
        verify_bundle(data, root=bytes(32))


def test_bundle_wrong_trust(ledger: Ledger) -> None:
    source, tree, statement, signature = ledger
    data = encode_bundle(statement, signature, prolly.prove(source, tree.root, b"acct:0010"))
    with pytest.raises(StateError, match="not by the trusted key"):
        verify_bundle(data, trust=public_key_of(OTHER_SEED))


def _edit(data: bytes, change: Any) -> bytes:
    document = json.loads(data)
    change(document)
    return canonical_json(document)


def test_bundle_tampered_record(ledger: Ledger) -> None:
    source, tree, statement, signature = ledger
    data = encode_bundle(statement, signature, prolly.prove(source, tree.root, b"acct:0010"))

    def value(document: dict[str, Any]) -> None:
        document["proof"]["records"][0]["value"] = _value(11).decode()

    def sums(document: dict[str, Any]) -> None:
        document["proof"]["records"][0]["sums"][0] = "999"

    for change in (value, sums):
        with pytest.raises(StateError, match="proof does not verify against its statement's root"):
            verify_bundle(_edit(data, change))


def test_bundle_tampered_statement(ledger: Ledger) -> None:
    source, tree, statement, signature = ledger
    data = encode_bundle(statement, signature, prolly.prove(source, tree.root, b"acct:0010"))

    def count(document: dict[str, Any]) -> None:
        document["statement"]["count"] = 61

    def totals(document: dict[str, Any]) -> None:
        document["statement"]["totals"][1] = "0"

    def time(document: dict[str, Any]) -> None:
        document["statement"]["time"] = "2027-01-01T00:00:00.000000Z"

    def signature_bit(document: dict[str, Any]) -> None:
        document["signature"] = ("1" if document["signature"][0] == "0" else "0") + document["signature"][1:]

    for change in (count, totals, time, signature_bit):
        with pytest.raises(StateError, match="signature of statement .* does not verify"):
            verify_bundle(_edit(data, change))


def test_bundle_other_roots_proof(ledger: Ledger) -> None:
    _source, tree, statement, signature = ledger
    other_source, other_tree = make_tree(_records(60, salt=b" "))
    assert other_tree.root != tree.root and other_tree.totals == tree.totals
    proof = prolly.prove(other_source, other_tree.root, b"acct:0010")
    with pytest.raises(StateError, match="proof does not verify against its statement's root"):
        verify_bundle(encode_bundle(statement, signature, proof))


def test_bundle_statement_that_lies(ledger: Ledger) -> None:
    source, tree, _statement, _signature = ledger
    proof = prolly.prove(source, tree.root, b"acct:0010")
    for changes, message in (
        ({"count": 59}, "shows 60 records under the root; the statement says 59"),
        ({"totals": (tree.totals[0], tree.totals[1] + 1)}, "root's totals are"),
        ({"fanout": 8}, "fanout 4, leaf fanout 3 and 2 sum fields; the statement says 8, 3 and 2"),
        ({"sum_fields": ("a",), "totals": (1,)}, "2 sum fields; the statement says 4, 3 and 1"),
    ):
        lying = statement_for(tree, **changes)
        with pytest.raises(StateError, match=message):
            verify_bundle(encode_bundle(lying, sign(lying, SEED), proof))


def test_bundle_is_strict(ledger: Ledger) -> None:
    source, tree, statement, signature = ledger
    data = encode_bundle(statement, signature, prolly.prove(source, tree.root, b"acct:0010"))

    def extra(document: dict[str, Any]) -> None:
        document["note"] = "x"

    def newer(document: dict[str, Any]) -> None:
        document["version"] = 2

    def proof_as_text(document: dict[str, Any]) -> None:
        document["proof"] = json.dumps(document["proof"])

    def proof_field(document: dict[str, Any]) -> None:
        document["proof"]["extra"] = 1

    def short_signature(document: dict[str, Any]) -> None:
        document["signature"] = document["signature"][:-2]

    def statement_version(document: dict[str, Any]) -> None:
        document["statement"]["version"] = 2

    for change, message in (
        (extra, "unknown field 'note'"),
        (newer, "upgrade Lifeboat"),
        (proof_as_text, "proof is not a JSON object"),
        (proof_field, "proof is malformed"),
        (short_signature, "signature must be 128 lowercase hex digits"),
        (statement_version, "statement is statement version 2"),
    ):
        with pytest.raises(StateError, match=message):
            verify_bundle(_edit(data, change))
    with pytest.raises(StateError, match="not valid JSON"):
        verify_bundle(data[:-20])
    with pytest.raises(StateError, match="not a Lifeboat state proof bundle"):
        verify_bundle(prolly.prove(source, tree.root, b"acct:0010").to_json())
    with pytest.raises(StateError, match="over the"):
        verify_bundle(b" " * (MAX_BUNDLE_BYTES + 1))


def test_encode_bundle_checks_arguments(ledger: Ledger) -> None:
    source, tree, statement, signature = ledger
    proof = prolly.prove(source, tree.root, b"acct:0010")
    with pytest.raises(InputError, match="64 bytes"):
        encode_bundle(statement, signature[:10], proof)
    with pytest.raises(UsageError, match=r"prolly\.Proof"):
        encode_bundle(statement, signature, proof.to_json())  # type: ignore[arg-type]


# --- a dishonest signer: values that do not match what the tree commits ------------------------


def _dishonest(ledger: Ledger, key: bytes, value: bytes, *, sums: tuple[int, ...] | None = None) -> bytes:
    """A real proof with one record's value (and sums) rewritten, the whole path recomputed up to a
    new root, and a statement for that root signed with the signer's key: what a signer that
    committed inconsistent data hands out. Every hash in it checks; only the binding can fail."""
    from lifeboat.state.prolly.proof import _verify_path

    source, tree, _statement, _signature = ledger
    proof = prolly.prove(source, tree.root, key)
    path = proof.paths[0]
    record = path.record._replace(value=value, sums=path.record.sums if sums is None else sums)
    assert proof.present
    paths = (dataclasses.replace(path, record=record),)
    root, _position, packed = _verify_path(paths[0], proof.fanout, proof.leaf_fanout, proof.sum_fields)
    count, totals = prolly.node.unpack_sums(packed, proof.sum_fields)
    forged = dataclasses.replace(proof, paths=paths)
    lying = statement_for(tree, root=root, count=count, totals=totals)
    return encode_bundle(lying, sign(lying, SEED), forged)


@pytest.mark.parametrize(
    ("value", "sums", "message"),
    [
        (_value(10, usdc="100"), None, "the value's balances.USDC is 100 but the tree commits 10"),
        (_value(10, usdc=0), None, "the value's balances.USDC is 0 but the tree commits 10"),
        (_value(10, eth="7"), None, "the value's balances.ETH is 7 but the tree commits 21"),
        (_value(10), (10, 22), "the value's balances.ETH is 21 but the tree commits 22"),
        (b'{"key":"acct:0010","n":1}', None, "the value's balances.USDC is 0 but the tree commits 10"),
        (_value(10, key="acct:0012"), None, "key field 'key' is 'acct:0012', not the key the tree commits"),
        (_value(10, key=10), None, "key field 'key' is '10', not the key the tree commits"),
        (b'{"balances":{"USDC":"10","ETH":21}}', None, "has no key field 'key'"),
        (b"acct:0010 holds 10 USDC", None, "the value is not JSON"),
        (b'{"key":"acct:0010",', None, "the value is not JSON"),
        (b'{"key":"acct:0010","balances":{"USDC":NaN}}', None, "the value is not JSON"),
        (b'["acct:0010"]', None, "the value is a list, not a JSON object"),
        (_value(10, usdc=10.0), None, "sum field 'balances.USDC' is not an integer"),
        (_value(10, usdc="-10"), None, "sum field 'balances.USDC' is negative"),
        (b'{"key":"acct:0010","balances":7}', None, "runs through 'balances', which is an integer"),
    ],
)
def test_bundle_from_a_dishonest_signer_is_refused(
    ledger: Ledger, value: bytes, sums: tuple[int, ...] | None, message: str
) -> None:
    data = _dishonest(ledger, b"acct:0010", value, sums=sums)
    with pytest.raises(StateError, match=re.escape(message)):
        verify_bundle(data)


def test_dishonest_bundle_is_otherwise_sound(ledger: Ledger) -> None:
    """The forgery helper makes proofs that pass every other check: honest data re-signed verifies."""
    data = _dishonest(ledger, b"acct:0010", _value(10))
    assert verify_bundle(data).proof.record is not None
    # and an exact integer beyond 64 bits is read exactly, as the sources read it
    big = 2**100 + 1
    data = _dishonest(ledger, b"acct:0010", _value(10, usdc=big), sums=(big, 21))
    verified = verify_bundle(data)
    assert verified.proof.record is not None and verified.proof.record.sums == (big, 21)


def test_absence_neighbours_are_bound_too() -> None:
    """A dishonest signer builds a tree with one neighbour's value saying 5 while its sum is the
    real one: the absence proof of the key next to it is refused, whichever side the liar is."""
    for liar in (10, 12):
        records = [
            record._replace(value=_value(liar, usdc="5")) if record.key == b"acct:%04d" % liar else record
            for record in _records(60)
        ]
        source, tree = make_tree(records)
        statement = statement_for(tree)
        data = encode_bundle(statement, sign(statement, SEED), prolly.prove(source, tree.root, b"acct:0011"))
        with pytest.raises(
            StateError,
            match=f"record 'acct:00{liar}': the value's balances.USDC is 5 but the tree commits {liar}",
        ):
            verify_bundle(data)
    honest_source, honest = make_tree(_records(60))
    statement = statement_for(honest)
    data = encode_bundle(
        statement, sign(statement, SEED), prolly.prove(honest_source, honest.root, b"acct:0011")
    )
    assert not verify_bundle(data).proof.present


def test_a_bundle_with_a_version_1_proof_says_to_make_it_again(ledger: Ledger) -> None:
    source, tree, statement, signature = ledger
    document = json.loads(encode_bundle(statement, signature, prolly.prove(source, tree.root, b"acct:0010")))
    document["proof"]["version"] = 1
    with pytest.raises(StateError, match=r"proof version 1 is an older format .* `lifeboat state prove`"):
        verify_bundle(canonical_json(document))
