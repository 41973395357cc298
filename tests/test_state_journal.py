"""Journals of record changes: strict line parsing, canonical segments, idempotent merging."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifeboat.errors import RecordError, StateError, UsageError
from lifeboat.state.journal import (
    Change,
    Segment,
    decode_segment,
    encode_segment,
    merge,
    parse_changes,
)

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BASE = bytes(range(32))


def parse(*lines: bytes, key_field: str = "key") -> list[Change]:
    return list(parse_changes(lines, key_field=key_field, what="journal.jsonl"))


# --- parsing ----------------------------------------------------------------------------------


def test_good_lines() -> None:
    changes = parse(
        b'{"seq": 1, "op": "upsert", "key": "acct:1", "value": {"z": 1, "key": "acct:1", "a": [1.5, null]}}\n',
        b'{"seq":2,"op":"delete","key":"acct:2"}\r\n',
        b'{"op":"upsert","key":17,"seq":9,"value":{"key":17,"b":"\xc3\xa9"}}',
        b'{"seq":10,"op":"upsert","key":"k","value":{}}\n',
        b'{"seq":11,"op":"upsert","key":"n","value":{"big":18446744073709551615,"neg":-9223372036854775808}}',
    )
    assert changes == [
        Change(1, "upsert", "acct:1", b'{"z": 1, "key": "acct:1", "a": [1.5, null]}'),
        Change(2, "delete", "acct:2", None),
        Change(9, "upsert", "17", '{"key":17,"b":"é"}'.encode()),
        Change(10, "upsert", "k", b"{}"),
        Change(11, "upsert", "n", b'{"big":18446744073709551615,"neg":-9223372036854775808}'),
    ]


def test_values_are_kept_byte_for_byte() -> None:
    # Spaces, \u escapes, field order and number spellings stay as written: the stored value is
    # the value's bytes from its "{" to its "}", as a JSON Lines snapshot keeps a line.
    value = b'{ "key" :"a",\t"name": "caf\\u00e9",  "n": 1.50E+2 , "x": [ ] }'
    (change,) = parse(b'  {"seq" : 1,"op":"upsert", "key":"a", "value":  ' + value + b"  }\r\n")
    assert change.value == value
    (last,) = parse(b'{"value":' + value + b',"seq":1,"op":"upsert","key":"a"}')
    assert last.value == value
    segment = encode_segment("ledger", BASE, [change])
    assert segment.split(b"\n")[1] == b'{"key":"a","op":"upsert","seq":1,"value":' + value + b"}"
    assert decode_segment(segment, "seg").changes == (change,)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b'{"seq":1,"op":"upsert","key":"a","value":{"x":1e400}}', "beyond the range of a double"),
        (b'{"seq":1,"op":"upsert","key":"a","value":{}} x', "is not valid JSON"),
        (b'{"seq":1,"op":"upsert","key":"a","value":{}', "is not valid JSON"),
        (b'{"seq":1,"op":"upsert","key":"a","value":{},}', "is not valid JSON"),
        (b'{"seq":1 "op":"upsert"}', "is not valid JSON"),
        (b"{seq:1}", "is not valid JSON"),
        (b'{"seq":1,"op":"upsert","key":"a","value":{},"value":{}}', "repeats the field 'value'"),
        (b"  [1] ", "is not a JSON object"),
        (b'"{}"', "is not a JSON object"),
    ],
)
def test_change_lines_read_strictly(line: bytes, message: str) -> None:
    with pytest.raises(RecordError, match="journal.jsonl line 1") as info:
        parse(line)
    assert message in str(info.value)


def test_key_field_is_the_snapshots() -> None:
    # With another key field, the value's "key" is just data.
    (change,) = parse(b'{"seq":1,"op":"upsert","key":"a","value":{"key":"b","id":"a"}}', key_field="id")
    assert change.key == "a"
    with pytest.raises(RecordError, match="line 1: the value's key field 'id' is 'b', not the key 'a'"):
        parse(b'{"seq":1,"op":"upsert","key":"a","value":{"key":"a","id":"b"}}', key_field="id")


GOOD = b'{"seq":1,"op":"delete","key":"a"}'


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"", "line 2 is blank"),
        (b"   \r", "line 2 is blank"),
        (b"{", "line 2 is not valid JSON"),
        (b"\xff", "line 2 is not valid JSON"),
        (b'{"seq":2,"op":"upsert","key":"b","value":{"x":NaN}}', "line 2 is not valid JSON"),
        (b'{"seq":2,"op":"upsert","key":"b","value":{"x":Infinity}}', "line 2 is not valid JSON"),
        (b"[1]", "line 2 is not a JSON object"),
        (b'{"seq":2,"op":"insert","key":"b"}', "line 2 has unknown op 'insert'"),
        (b'{"seq":2,"op":null,"key":"b"}', "line 2 has unknown op None"),
        (b'{"seq":2,"key":"b","value":{}}', "line 2 lacks 'op'"),
        (b'{"seq":2,"op":"upsert","key":"b"}', "line 2 lacks 'value'"),
        (b'{"op":"delete","key":"b"}', "line 2 lacks 'seq'"),
        (b'{"seq":2,"op":"delete","key":"b","value":{}}', "line 2 has unknown field 'value'"),
        (b'{"seq":2,"op":"delete","key":"b","why":1}', "line 2 has unknown field 'why'"),
        (b'{"seq":2,"seq":3,"op":"delete","key":"b"}', "line 2 repeats the field 'seq'"),
        (b'{"seq":"2","op":"delete","key":"b"}', "'seq' must be a positive integer"),
        (b'{"seq":2.0,"op":"delete","key":"b"}', "'seq' must be a positive integer"),
        (b'{"seq":true,"op":"delete","key":"b"}', "'seq' must be a positive integer"),
        (b'{"seq":0,"op":"delete","key":"b"}', "'seq' must be a positive integer"),
        (b'{"seq":-4,"op":"delete","key":"b"}', "'seq' must be a positive integer"),
        (b'{"seq":9223372036854775808,"op":"delete","key":"b"}', "'seq' must be a positive integer"),
        (b'{"seq":1,"op":"delete","key":"b"}', "seq 1 does not follow seq 1"),
        (b'{"seq":2,"op":"delete","key":null}', "'key' must be a string or an integer"),
        (b'{"seq":2,"op":"delete","key":true}', "'key' must be a string or an integer"),
        (b'{"seq":2,"op":"delete","key":"\\ud800"}', "'key' is not valid Unicode"),
        (b'{"seq":2,"op":"delete","key":"' + b"k" * 5000 + b'"}', "over the 4096-byte limit"),
        (b'{"seq":2,"op":"upsert","key":"b","value":[1]}', "'value' must be a JSON object"),
        (b'{"seq":2,"op":"upsert","key":"b","value":"{}"}', "'value' must be a JSON object"),
        (b'{"seq":2,"op":"upsert","key":"b","value":{"key":"c"}}', "key field 'key' is 'c', not the key 'b'"),
        (b'{"seq":2,"op":"upsert","key":"2","value":{"key":2.0}}', "key field 'key' is 2.0"),
        (b'{"seq":2,"op":"upsert","key":"1","value":{"key":true}}', "key field 'key' is True"),
        (b'{"seq":2,"op":"upsert","key":"b","value":{"x":18446744073709551616}}', "beyond 64 bits"),
        (b'{"seq":2,"op":"upsert","key":"b","value":{"x":"\\udc80"}}', "invalid Unicode"),
    ],
)
def test_bad_lines(line: bytes, message: str) -> None:
    with pytest.raises(RecordError, match="journal.jsonl line 2") as info:
        parse(GOOD, line)
    assert message in str(info.value)


def test_errors_are_lazy_and_name_the_line() -> None:
    changes = parse_changes(
        iter([GOOD, b'{"seq":5,"op":"delete","key":"b"}', b'{"seq":4,"op":"delete","key":"c"}']),
        key_field="key",
        what="wal",
    )
    assert next(changes).seq == 1
    assert next(changes).seq == 5
    with pytest.raises(RecordError, match="wal line 3: seq 4 does not follow seq 5"):
        next(changes)


# --- segments ---------------------------------------------------------------------------------


SAMPLE = [
    Change(3, "upsert", "acct:1", b'{"z":1,"key":"acct:1","a":[1.5,null]}'),
    Change(4, "delete", "acct:é", None),
    Change(7, "upsert", "k", '{"b":"é\\n","x":{}}'.encode()),
]


def test_segment_format() -> None:
    data = encode_segment("ledger", BASE, SAMPLE)
    lines = data.split(b"\n")
    assert lines[-1] == b"" and len(lines) == 5
    assert json.loads(lines[0]) == {
        "format": "lifeboat-state-journal",
        "version": 1,
        "name": "ledger",
        "base": BASE.hex(),
        "first": 3,
        "last": 7,
        "count": 3,
    }
    assert lines[0].startswith(b'{"base":')
    assert lines[1] == b'{"key":"acct:1","op":"upsert","seq":3,"value":{"z":1,"key":"acct:1","a":[1.5,null]}}'
    assert lines[2] == b'{"key":"acct:\\u00e9","op":"delete","seq":4}'
    assert lines[3] == b'{"key":"k","op":"upsert","seq":7,"value":' + '{"b":"é\\n","x":{}}'.encode() + b"}"
    assert decode_segment(data, "segment") == Segment("ledger", BASE, tuple(SAMPLE))
    segment = decode_segment(data, "segment")
    assert (segment.first, segment.last) == (3, 7)


def test_segment_lines_parse_as_journal_lines() -> None:
    data = encode_segment("ledger", BASE, SAMPLE)
    assert parse(*data.splitlines()[1:]) == SAMPLE


def _corrupt(data: bytes, line: int, new: bytes) -> bytes:
    lines = data.split(b"\n")
    lines[line] = new
    return b"\n".join(lines)


def _header(**changes: object) -> bytes:
    header: dict[str, object] = {
        "format": "lifeboat-state-journal",
        "version": 1,
        "name": "ledger",
        "base": BASE.hex(),
        "first": 3,
        "last": 7,
        "count": 3,
    }
    header.update(changes)
    return json.dumps({key: header[key] for key in sorted(header)}, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda data: data[:-1], "does not end with a line end"),
        (lambda data: data + b"\n", "header says 3 changes, but 4 lines follow"),
        (lambda data: data + GOOD + b"\n", "header says 3 changes, but 4 lines follow"),
        (lambda data: b"\n".join(data.split(b"\n")[:-2]) + b"\n", "header says 3 changes, but 2 lines"),
        (lambda data: _corrupt(data, 0, _header(version=2)), "upgrade Lifeboat"),
        (lambda data: _corrupt(data, 0, _header(format="x")), "not a Lifeboat state journal segment"),
        (lambda data: _corrupt(data, 0, _header(extra=1)), "unknown field 'extra'"),
        (lambda data: _corrupt(data, 0, _header(first=4)), "header says seq 4 to 7"),
        (lambda data: _corrupt(data, 0, _header(last=8)), "header says seq 3 to 8"),
        (lambda data: _corrupt(data, 0, _header(first=True)), "'first' must be an integer"),
        (lambda data: _corrupt(data, 0, _header(base="AB" * 32)), "'base' must be 64 lowercase hex"),
        (lambda data: _corrupt(data, 0, _header(base="ab " * 21 + "a")), "'base' must be 64 lowercase hex"),
        (lambda data: _corrupt(data, 0, _header(name="a/b")), "dataset name"),
        (lambda data: _corrupt(data, 0, _header(count=0)), "header says 0 changes"),
        (lambda data: _corrupt(data, 0, b" " + _header()), "header is not canonical JSON"),
        (lambda data: _corrupt(data, 0, b"x" * 5000), "over the 4096-byte limit"),
        (
            lambda data: _corrupt(data, 2, b'{"op":"delete","key":"acct:\\u00e9","seq":4}'),
            "line 3 is not canonical",
        ),
        (
            lambda data: _corrupt(data, 2, b'{"key":"acct:\xc3\xa9","op":"delete","seq":4}'),
            "line 3 is not canonical",
        ),
        (
            lambda data: _corrupt(data, 2, b'{"key":"acct:\\u00e9","op":"delete","seq":3}'),
            "seq 3 does not follow",
        ),
        (lambda data: _corrupt(data, 2, b'{"key":"a","op":"drop","seq":4}'), "line 3 has unknown op 'drop'"),
        (lambda data: _corrupt(data, 2, b'{"key":4,"op":"delete","seq":4}'), "line 3 is not canonical"),
        (lambda data: _corrupt(data, 2, b""), "line 3 is not valid JSON"),
        (
            lambda data: _corrupt(data, 1, b'{"key":"acct:1","op":"upsert","seq":3,"value": {"z":1}}'),
            "line 2 is not canonical",
        ),
        (
            lambda data: _corrupt(data, 1, b'{"key":"acct:1","op":"upsert","value":{"z":1},"seq":3}'),
            "line 2 is not canonical",
        ),
        (
            lambda data: _corrupt(data, 1, b'{"key":"acct:1","op":"upsert","seq":3,"value":{"z":1,"z":2}}'),
            "line 2 repeats the field 'z'",
        ),
    ],
)
def test_decode_segment_is_strict(edit: object, message: str) -> None:
    data = encode_segment("ledger", BASE, SAMPLE)
    assert callable(edit)
    with pytest.raises(StateError, match="seg") as info:
        decode_segment(edit(data), "seg")
    assert message in str(info.value)


def test_decode_segment_garbage() -> None:
    with pytest.raises(StateError, match="not valid JSON"):
        decode_segment(b"\xff\n", "seg")
    with pytest.raises(StateError, match="line end"):
        decode_segment(b"", "seg")
    with pytest.raises(UsageError, match="must be bytes"):
        decode_segment("text", "seg")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ([], "at least one change"),
        ([Change(0, "delete", "a", None)], "positive integer above 0"),
        ([Change(2, "delete", "a", None), Change(2, "delete", "b", None)], "above 2"),
        ([Change(1, "delete", "a", b"{}")], "a delete has no value"),
        ([Change(1, "upsert", "a", None)], "value must be bytes"),
        ([Change(1, "upsert", "a", b' {"a": 1}')], "JSON object on one line"),
        ([Change(1, "upsert", "a", b'{"a": 1}\n')], "JSON object on one line"),
        ([Change(1, "upsert", "a", b'{"a":\n1}')], "JSON object on one line"),
        ([Change(1, "upsert", "a", b'{"a":1,"a":2}')], "JSON object on one line"),
        ([Change(1, "upsert", "a", b'{"a":1e400}')], "JSON object on one line"),
        ([Change(1, "upsert", "a", b"\xff")], "JSON object on one line"),
        ([Change(1, "upsert", "a", b"[1]")], "JSON object on one line"),
        ([Change(1, "upsert", "a", b"{")], "JSON object on one line"),
        ([Change(1, "rename", "a", None)], "unknown op"),  # type: ignore[arg-type]
        ([Change(1, "delete", 5, None)], "key must be a string"),  # type: ignore[arg-type]
        ([(1, "delete", "a", None)], "Change tuples"),
    ],
)
def test_encode_segment_checks_changes(changes: list[Change], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        encode_segment("ledger", BASE, changes)


def test_encode_segment_checks_name_and_base() -> None:
    with pytest.raises(UsageError, match="dataset name"):
        encode_segment("", BASE, SAMPLE)
    with pytest.raises(Exception, match="32 bytes"):
        encode_segment("ledger", BASE[:31], SAMPLE)


# --- merge ------------------------------------------------------------------------------------


def test_merge_window_and_duplicates() -> None:
    one = [Change(1, "upsert", "a", b"{}"), Change(2, "delete", "a", None), Change(5, "delete", "b", None)]
    two = [Change(2, "delete", "a", None), Change(3, "upsert", "c", b'{"v":1}')]
    assert merge([one, two], after=0, through=None) == sorted({*one, *two})
    assert merge([two, one, one], after=1, through=3) == [one[1], two[1]]
    assert merge([one], after=5, through=None) == []
    assert merge([one], after=0, through=0) == []
    assert merge([], after=0, through=None) == []


def test_merge_conflict_names_the_seq() -> None:
    one = [Change(2, "upsert", "a", b'{"v":1}')]
    two = [Change(2, "upsert", "a", b'{"v":2}')]
    with pytest.raises(StateError, match="journal seq 2 appears twice with different changes"):
        merge([one, two], after=0, through=None)
    # Outside the window the disagreement does not matter.
    assert merge([one, two], after=2, through=None) == []


def test_merge_checks_the_window() -> None:
    with pytest.raises(UsageError, match="'after'"):
        merge([], after=-1, through=None)
    with pytest.raises(UsageError, match="'through'"):
        merge([], after=5, through=4)


# --- properties -------------------------------------------------------------------------------


_VALUES = st.dictionaries(
    st.text(max_size=4),
    st.integers(-(2**63), 2**64 - 1)
    | st.text(max_size=6)
    | st.booleans()
    | st.none()
    | st.floats(allow_nan=False, allow_infinity=False),
    max_size=4,
)


@st.composite
def journals(draw: st.DrawFn) -> list[Change]:
    seqs = sorted(draw(st.sets(st.integers(1, 200), min_size=1, max_size=30)))
    changes = []
    for seq in seqs:
        key = draw(st.text(min_size=1, max_size=6))
        if draw(st.booleans()):
            changes.append(Change(seq, "delete", key, None))
        else:
            value = draw(_VALUES)
            value.pop("key", None)
            line = json.dumps({"seq": seq, "op": "upsert", "key": key, "value": value}).encode()
            (change,) = parse_changes([line], key_field="key", what="j")
            changes.append(change)
    return changes


@PROPERTY
@given(journal=journals(), data=st.data())
def test_segment_round_trip_property(journal: list[Change], data: st.DataObject) -> None:
    base = data.draw(st.binary(min_size=32, max_size=32))
    encoded = encode_segment("ds", base, journal)
    assert decode_segment(encoded, "seg") == Segment("ds", base, tuple(journal))
    assert encode_segment("ds", base, decode_segment(encoded, "seg").changes) == encoded


@PROPERTY
@given(journal=journals(), data=st.data())
def test_merge_properties(journal: list[Change], data: st.DataObject) -> None:
    # Cut the journal into overlapping segments, as repeated or partial shipping would.
    segments: list[list[Change]] = []
    for _ in range(data.draw(st.integers(1, 4))):
        start = data.draw(st.integers(0, len(journal) - 1))
        end = data.draw(st.integers(start + 1, len(journal)))
        segments.append(journal[start:end])
    segments.append(journal)
    after = data.draw(st.integers(0, 200))
    through = data.draw(st.none() | st.integers(after, 220))
    once = merge(segments, after=after, through=through)
    assert once == [c for c in journal if c.seq > after and (through is None or c.seq <= through)]
    assert merge(segments + segments, after=after, through=through) == once
    shuffled = segments[:]
    random.Random(data.draw(st.integers(0, 2**32))).shuffle(shuffled)
    assert merge(shuffled, after=after, through=through) == once
    assert merge([segment[::-1] for segment in shuffled], after=after, through=through) == once
