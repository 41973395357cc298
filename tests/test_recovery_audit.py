"""The recovery audit log (lifeboat.recovery.audit): a chain every single mutation of which is caught."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

import nacl.signing
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifeboat.documents import canonical_json
from lifeboat.errors import RecoveryError
from lifeboat.recovery import audit
from lifeboat.recovery.audit import AuditEntry, AuditError

SEED = bytes(range(32))
PUBLIC = bytes(nacl.signing.SigningKey(SEED).verify_key)

texts = st.text(min_size=1, max_size=12)
events = st.tuples(
    texts,
    texts,
    texts,
    st.binary(max_size=24),
    st.dictionaries(
        st.text(max_size=6),
        st.one_of(st.integers(-(2**40), 2**40), st.text(max_size=8), st.none()),
        max_size=3,
    ),
)


def chain(items: Sequence[tuple[str, str, str, bytes, Mapping[str, object]]]) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    prev = audit.GENESIS
    for seq, (vault, actor, action, message, details) in enumerate(items, start=1):
        entry = audit.append(
            prev,
            seq,
            time=1_700_000_000 + seq,
            vault=vault,
            actor=actor,
            action=action,
            message=message,
            details=details,
        )
        entries.append(entry)
        prev = entry.hash
    return entries


def export(entries: list[AuditEntry]) -> bytes:
    head_hash = entries[-1].hash if entries else audit.GENESIS
    head = audit.sign_head(SEED, len(entries), head_hash, 1_800_000_000)
    return b"".join(audit.export_lines(entries, head))


def test_an_export_verifies_and_round_trips() -> None:
    entries = chain([("v1", "owner", "create", b"signed", {"policy": 1}), ("v1", "g1", "approve", b"", {})])
    verified = audit.verify(export(entries), PUBLIC)
    assert verified.entries == tuple(entries)
    assert (verified.head.seq, verified.head.hash) == (2, entries[-1].hash)


def test_the_entry_hash_is_the_documented_sha256() -> None:
    (entry,) = chain([("v1", "owner", "create", b"\x01\x02", {"k": "v"})])
    body = canonical_json(
        {
            "seq": 1,
            "time": 1_700_000_001,
            "vault": "v1",
            "actor": "owner",
            "action": "create",
            "message": "0102",
            "details": {"k": "v"},
        }
    )
    assert entry.hash == hashlib.sha256(b"lifeboat-recovery-audit-entry-v1\x00" + bytes(32) + body).digest()


def test_an_empty_log_verifies() -> None:
    assert audit.verify(export([]), PUBLIC).entries == ()


def mutations(data: bytes) -> st.SearchStrategy[bytes]:
    lines = data.split(b"\n")[:-1]

    def flip(position: int, value: int) -> bytes:
        changed = bytearray(data)
        changed[position] = value if value != data[position] else (value + 1) % 256
        return bytes(changed)

    def delete_line(i: int) -> bytes:
        return b"".join(line + b"\n" for j, line in enumerate(lines) if j != i)

    def duplicate_line(i: int, at: int) -> bytes:
        copy = [*lines]
        copy.insert(at, lines[i])
        return b"".join(line + b"\n" for line in copy)

    def swap_lines(i: int, j: int) -> bytes:
        copy = [*lines]
        copy[i], copy[j] = copy[j], copy[i]
        return b"".join(line + b"\n" for line in copy)

    index = st.integers(0, len(lines) - 1)
    swaps = st.tuples(index, index).filter(lambda ij: lines[ij[0]] != lines[ij[1]])
    return st.one_of(
        st.builds(flip, st.integers(0, len(data) - 1), st.integers(0, 255)),
        st.builds(lambda p: data[:p] + data[p + 1 :], st.integers(0, len(data) - 1)),
        st.builds(
            lambda p, b: data[:p] + bytes([b]) + data[p:], st.integers(0, len(data)), st.integers(0, 255)
        ),
        st.builds(delete_line, index),
        st.builds(duplicate_line, index, st.integers(0, len(lines))),
        swaps.map(lambda ij: swap_lines(*ij)),
        st.integers(1, len(data) - 1).map(lambda n: data[:n]),
    )


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(events, min_size=1, max_size=6).flatmap(
        lambda items: st.tuples(st.just(items), mutations(export(chain(items))))
    )
)
def test_every_single_mutation_of_an_export_is_detected(
    case: tuple[list[tuple[str, str, str, bytes, dict[str, object]]], bytes],
) -> None:
    items, mutated = case
    assert mutated != export(chain(items))
    with pytest.raises(AuditError):
        audit.verify(mutated, PUBLIC)


def _rewrite(data: bytes, line: int, change: dict[str, object]) -> bytes:
    lines = data.split(b"\n")[:-1]
    value = json.loads(lines[line])
    value.update(change)
    lines[line] = canonical_json(value)
    return b"".join(x + b"\n" for x in lines)


def test_the_first_bad_entry_is_named() -> None:
    data = export(chain([("v", "a", "x", b"", {})] * 4))
    with pytest.raises(AuditError, match=r"line 4 \(entry 3\): its hash does not match its contents"):
        audit.verify(_rewrite(data, 3, {"actor": "mallory"}), PUBLIC)
    lines = data.split(b"\n")[:-1]
    del lines[2]
    with pytest.raises(AuditError, match="line 3: entry 3 where entry 2 belongs"):
        audit.verify(b"".join(x + b"\n" for x in lines), PUBLIC)


def test_a_log_cut_short_and_re_signed_is_refused_by_its_signed_head_only_with_an_earlier_head() -> None:
    entries = chain([("v", "a", "x", b"", {})] * 5)
    shortened = export(entries[:3])  # whoever holds the service key can sign a shorter chain...
    assert audit.verify(shortened, PUBLIC).head.seq == 3
    with pytest.raises(AuditError, match="names entry 5, but this log ends at 3"):  # ...not past a kept head
        audit.verify(shortened, PUBLIC, known_heads=[(5, entries[4].hash)])
    other = chain([("v", "a", "x", b"", {})] * 2 + [("v", "a", "rewritten", b"", {})] * 3)
    with pytest.raises(AuditError, match="entry 3 differs from the head kept earlier"):
        audit.verify(export(other), PUBLIC, known_heads=[(3, entries[2].hash)])
    assert audit.verify(export(entries), PUBLIC, known_heads=[(3, entries[2].hash), (5, entries[4].hash)])


def test_another_key_or_a_bad_signature_is_refused() -> None:
    data = export(chain([("v", "a", "x", b"", {})]))
    other = bytes(nacl.signing.SigningKey(bytes(32)).verify_key)
    with pytest.raises(AuditError, match="not by the service key"):
        audit.verify(data, other)
    forged = audit.sign_head(bytes(32), 1, chain([("v", "a", "x", b"", {})])[0].hash, 1)
    lines = data.split(b"\n")[:-1]
    lines[-1] = canonical_json(forged.to_json())
    with pytest.raises(AuditError, match="not by the service key"):
        audit.verify(b"".join(x + b"\n" for x in lines), PUBLIC)


def test_uppercase_hex_is_not_a_second_spelling() -> None:
    data = export(chain([("v", "a", "x", b"", {})]))
    lines = data.split(b"\n")[:-1]
    head = json.loads(lines[-1])
    head["signature"] = head["signature"].upper()
    lines[-1] = canonical_json(head)
    with pytest.raises(AuditError, match="lowercase hex"):
        audit.verify(b"".join(x + b"\n" for x in lines), PUBLIC)


def test_entries_refuse_empty_or_oversized_names() -> None:
    with pytest.raises(RecoveryError):
        audit.append(audit.GENESIS, 1, time=0, vault="", actor="a", action="b", message=b"", details={})
    with pytest.raises(RecoveryError):
        audit.append(
            audit.GENESIS, 1, time=0, vault="v", actor="a" * 257, action="b", message=b"", details={}
        )
