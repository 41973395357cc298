"""Record sources and sinks of state snapshots: JSON Lines, CSV, SQLite, PostgreSQL, bad input."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest_tools import in_ci, require_database_url
from lifeboat.errors import RecordError, StorageError, UsageError
from lifeboat.state import records
from lifeboat.state.records import (
    RecordSpec,
    Source,
    SourceRecord,
    document_of,
    open_sink,
    open_source,
)
from lifeboat.state.records_sql import SQL_BATCH

GEN_LEDGER = Path(__file__).resolve().parents[2] / "shared" / "bench" / "gen_ledger.py"
ASSETS = ["USDC", "USDT", "DAI", "ETH", "WBTC", "SOL", "ARB", "OP", "LINK", "UNI"]
LEDGER_SPEC = RecordSpec("key", tuple(f"balances.{asset}" for asset in ASSETS))
PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def read_all(source: Source) -> list[SourceRecord]:
    with source:
        return list(source)


def pairs(found: list[SourceRecord]) -> list[tuple[bytes, bytes]]:
    return [(record.key, record.value) for record in found]


def write_lines(path: Path, lines: list[str], *, end: str = "\n") -> Path:
    path.write_bytes("".join(line + end for line in lines).encode())
    return path


def error_of(path: Path, spec: RecordSpec, **options: Any) -> str:
    with pytest.raises(RecordError) as caught:
        read_all(open_source(str(path), spec, **options))
    return str(caught.value)


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    """A 200-account gen_ledger ledger (skipped when the shared generator is absent)."""
    if not GEN_LEDGER.is_file():
        reason = f"gen_ledger.py not found at {GEN_LEDGER}"
        if in_ci():
            pytest.fail(f"{reason}; CI=true, so a missing generator is an error", pytrace=False)
        pytest.skip(reason)
    path = tmp_path / "ledger.jsonl"
    subprocess.run([sys.executable, str(GEN_LEDGER), str(path), "--accounts", "200"], check=True)
    return path


@pytest.fixture
def pg_url() -> str:
    return require_database_url()


@pytest.fixture
def pg_tables(pg_url: str) -> Iterator[list[str]]:
    """Unique table names for one test, dropped afterwards."""
    names = [f"lifeboat_test_{uuid.uuid4().hex[:12]}_{n}" for n in range(3)]
    yield names
    engine = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as connection:
        for name in names:
            connection.execute(sa.text(f'DROP TABLE IF EXISTS "{name}"'))
    engine.dispose()


# --- JSON Lines -------------------------------------------------------------------------------


def test_ledger_round_trip_is_bit_exact(ledger: Path, tmp_path: Path) -> None:
    source = open_source(str(ledger), LEDGER_SPEC)
    assert source.kind == "jsonl" and source.total == ledger.stat().st_size
    found = read_all(source)
    assert len(found) == 200 + len(ASSETS) + 6
    lines = ledger.read_bytes().split(b"\n")[:-1]
    assert [record.value for record in found] == lines
    for record in found:
        document = json.loads(record.value)
        assert record.document == document
        assert record.key == document["key"].encode()
        balances = document.get("balances", {})
        assert record.sums == tuple(int(balances.get(asset, 0)) for asset in ASSETS)
    assert source.describe() == {
        "kind": "jsonl",
        "path": str(ledger),
        "final_newline": True,
        "records": len(found),
        "bytes": ledger.stat().st_size,
    }
    assert source.bytes_read == source.total
    out = tmp_path / "restored.jsonl"
    assert open_sink(str(out)).write(pairs(found), source.describe()) == len(found)
    assert out.read_bytes() == ledger.read_bytes()
    assert out.stat().st_mode & 0o777 == 0o600


def test_supply_records_sum_to_zero_and_accounts_to_supply(ledger: Path) -> None:
    found = read_all(open_source(str(ledger), RecordSpec("key", ("amount", "balances.USDC"))))
    supply = next(record for record in found if record.key == b"supply:USDC")
    accounts = sum(record.sums[1] for record in found)
    assert supply.sums == (int(supply.document["amount"]), 0)
    assert supply.sums[0] == accounts


@pytest.mark.parametrize("end", ["\n", "\r\n"])
@pytest.mark.parametrize("final_newline", [True, False])
def test_jsonl_round_trip_line_ends(tmp_path: Path, end: str, final_newline: bool) -> None:
    lines = ['{"key":"a","n":"1"}', '{ "key" : "b" , "n" : 2 }', '{"key":"c","x":{"y":[1,2.5,null]}}']
    data = end.join(lines) + (end if final_newline else "")
    path = tmp_path / "in.ndjson"
    path.write_bytes(data.encode())
    source = open_source(str(path), RecordSpec("key", ("n",)))
    found = read_all(source)
    expected = [(line + end).rstrip("\n").encode() for line in lines]
    if not final_newline:
        expected[-1] = lines[-1].encode()
    assert [record.value for record in found] == expected
    assert [record.sums for record in found] == [(1,), (2,), (0,)]
    assert source.describe()["final_newline"] is final_newline
    assert source.describe()["bytes"] == len(data)
    out = tmp_path / "out.jsonl"
    open_sink(f"jsonl:{out}").write(pairs(found), source.describe())
    assert out.read_bytes() == data.encode()


def test_empty_jsonl_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    source = open_source(str(path), LEDGER_SPEC)
    assert read_all(source) == []
    assert source.describe()["records"] == 0
    out = tmp_path / "out.jsonl"
    assert open_sink(str(out)).write([], source.describe()) == 0
    assert out.read_bytes() == b""


def test_jsonl_prefix_and_kind_override(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "records.txt", ['{"key":"a"}'])
    found = read_all(open_source(f"jsonl:{path}", RecordSpec("key")))
    assert found[0].key == b"a" and found[0].sums == ()
    out = tmp_path / "out.txt"
    open_sink(str(out), kind="jsonl").write(pairs(found), {"final_newline": True})
    assert out.read_bytes() == path.read_bytes()
    with pytest.raises(UsageError, match="jsonl file, not csv"):
        open_sink(str(tmp_path / "x.jsonl"), kind="csv")


def test_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(b"old\n")
    out.chmod(0o644)
    open_sink(str(out)).write([(b"a", b'{"key":"a"}')], {})
    assert out.read_bytes() == b'{"key":"a"}\n'
    assert out.stat().st_mode & 0o777 == 0o644


def test_integer_keys_and_big_integer_sums(tmp_path: Path) -> None:
    big = 2**128 - 1
    path = write_lines(
        tmp_path / "in.jsonl", ['{"id":10,"v":' + str(big) + "}", '{"id":9,"v":"007"}', '{"id":"9a","v":0}']
    )
    found = read_all(open_source(str(path), RecordSpec("id", ("v",))))
    assert [record.key for record in found] == [b"10", b"9", b"9a"]
    assert [record.sums for record in found] == [(big,), (7,), (0,)]
    assert found[0].document["v"] == big  # read again exactly, not as orjson's float


def test_dotted_paths(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "in.jsonl",
        [
            '{"key":"a","b":{"c":{"d":"5"}},"e":1}',
            '{"key":"b","e":2}',
            '{"key":"c","b.c.d":"7","b":{"x":1}}',
            '{"key":"d","b.c.d":"8"}',
        ],
    )
    found = read_all(open_source(str(path), RecordSpec("key", ("b.c.d", "e"))))
    # The dotted top-level name stands in only when the first step is absent.
    assert [record.sums for record in found] == [(5, 1), (0, 2), (0, 0), (8, 0)]


def test_many_sum_fields_take_the_general_path(tmp_path: Path) -> None:
    spec = RecordSpec("key", ("a.x", "a.y", "b", "c.d.e"))
    path = write_lines(
        tmp_path / "in.jsonl",
        ['{"key":"1","a":{"x":1,"y":"2","z":"no"},"b":3,"c":{"d":{"e":"4"}}}', '{"key":"2","c":{}}'],
    )
    assert [record.sums for record in read_all(open_source(str(path), spec))] == [(1, 2, 3, 4), (0, 0, 0, 0)]
    many = write_lines(tmp_path / "many.jsonl", ['{"key":"1","a":{"x":"1","q":1,"r":2,"s":3}}'])
    assert read_all(open_source(str(many), RecordSpec("key", ("a.x", "a.y"))))[0].sums == (1, 0)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@PROPERTY
@given(
    st.dictionaries(
        st.text(min_size=0, max_size=12), st.dictionaries(st.text(max_size=6), json_values), max_size=12
    ),
    st.booleans(),
)
def test_any_sorted_map_round_trips_through_jsonl(
    tmp_path: Path, mapping: dict[str, dict[str, Any]], final_newline: bool
) -> None:
    keys = sorted(mapping, key=lambda key: key.encode("utf-8", "surrogatepass"))
    try:
        lines = [orjson.dumps({**mapping[key], "id": key}) for key in keys]
    except orjson.JSONEncodeError:  # a lone surrogate has no UTF-8 form
        return
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    path = tmp_path / f"in-{uuid.uuid4().hex}.jsonl"
    path.write_bytes(data)
    source = open_source(str(path), RecordSpec("id"))
    found = read_all(source)
    assert [record.key for record in found] == [key.encode() for key in keys]
    assert [record.document for record in found] == [json.loads(line) for line in lines]
    out = tmp_path / f"out-{uuid.uuid4().hex}.jsonl"
    open_sink(str(out)).write(pairs(found), source.describe())
    assert out.read_bytes() == data


# --- bad JSON Lines input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (['{"key":"a"}', '{"key":"a"}'], r"line 2: duplicate key 'a'"),
        (['{"key":"b"}', '{"key":"a"}'], r"line 2: keys out of order: 'a' comes after 'b'"),
        (['{"key":"a"}', '{"key":"b"}', '{"key":"a"}'], r"line 3: keys out of order: 'a' comes after 'b'"),
        (['{"key":"a"}', '{"id":"b"}'], r"line 2: the record has no key field 'key'"),
        (['{"key":1.5}'], r"line 1: the key field 'key' is not an integer \(1.5\)"),
        (['{"key":true}'], r"line 1: the key field 'key' is a boolean"),
        (['{"key":null}'], r"line 1: the key field 'key' is null"),
        (['{"key":["a"]}'], r"line 1: the key field 'key' is a list"),
        (['{"key":"a"}', '{"key":"b",}'], r"line 2 is not valid JSON"),
        (['{"key":"a"}', '["key","b"]'], r"line 2 is a list, not a JSON object"),
        (['{"key":"a"}', "17"], r"line 2 is an integer, not a JSON object"),
        (['{"key":"a"}', "", '{"key":"b"}'], r"line 2 is blank"),
        (['{"key":"a"}', "   "], r"line 2 is blank"),
        (['{"key":"a","amount":"-5"}'], r"line 1, key 'a': sum field 'amount' is negative"),
        (['{"key":"a","amount":-5}'], r"line 1, key 'a': sum field 'amount' is negative \(-5\)"),
        (['{"key":"a","amount":1.5}'], r"line 1, key 'a': sum field 'amount' is not an integer \(1.5\)"),
        (['{"key":"a","amount":"1.5"}'], r"sum field 'amount' is not a decimal integer \('1.5'\)"),
        (['{"key":"a","amount":"12abc"}'], r"sum field 'amount' is not a decimal integer"),
        (['{"key":"a","amount":" 12"}'], r"sum field 'amount' is not a decimal integer"),
        (['{"key":"a","amount":"1_0"}'], r"sum field 'amount' is not a decimal integer"),
        (['{"key":"a","amount":"\u0663"}'], r"sum field 'amount' is not a decimal integer"),
        (['{"key":"a","amount":""}'], r"sum field 'amount' is not a decimal integer"),
        (['{"key":"a","amount":true}'], r"key 'a': sum field 'amount' is a boolean"),
        (['{"key":"a","amount":null}'], r"key 'a': sum field 'amount' is null"),
        (['{"key":"a","amount":{"x":1}}'], r"key 'a': sum field 'amount' is an object"),
        ([f'{{"key":"a","amount":{2**128}}}'], r"key 'a': sum field 'amount' is 2\*\*128 or more"),
        ([f'{{"key":"a","amount":"{2**128}"}}'], r"key 'a': sum field 'amount' is 2\*\*128 or more"),
        (['{"key":"a","amount":"' + "9" * 5000 + '"}'], r"key 'a': sum field 'amount' is 2\*\*128 or more"),
        (['{"key":"a","amount":1e3}'], r"key 'a': sum field 'amount' is not an integer"),
    ],
)
def test_bad_jsonl_input(tmp_path: Path, lines: list[str], expected: str) -> None:
    path = write_lines(tmp_path / "bad.jsonl", lines)
    message = error_of(path, RecordSpec("key", ("amount",)))
    assert message.startswith(str(path)), message
    assert re.search(expected, message), message


def test_bad_nested_sum_path(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "bad.jsonl", ['{"key":"k1","balances":"lots"}'])
    message = error_of(path, LEDGER_SPEC)
    assert "line 1, key 'k1': sum field 'balances.USDC' runs through 'balances', which is a string" in message
    path = write_lines(tmp_path / "bad2.jsonl", ['{"key":"k1","balances":{"USDC":"1","DAI":-1}}'])
    assert "line 1, key 'k1': sum field 'balances.DAI' is negative (-1)" in error_of(path, LEDGER_SPEC)


def test_invalid_utf8_and_final_line_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"key":"a"}\n{"key":"\xff"}\n')
    assert "line 2 is not valid JSON" in error_of(path, RecordSpec("key"))
    path.write_bytes(b'{"key":"b"}\n{"key":"a"}')  # the last line has no newline
    assert "line 2: keys out of order" in error_of(path, RecordSpec("key"))
    path.write_bytes(b'{"key":"b"}\n[1]')
    assert "line 2 is a list" in error_of(path, RecordSpec("key"))


def test_line_longer_than_a_value_may_be(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records, "MAX_VALUE_BYTES", 100)
    monkeypatch.setattr(records, "READ_CHUNK", 64)
    path = write_lines(tmp_path / "long.jsonl", ['{"key":"a"}', '{"key":"b","pad":"' + "x" * 300 + '"}'])
    assert "line 2 is longer than 100 bytes" in error_of(path, RecordSpec("key"))


def test_small_chunks_split_lines_correctly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ledger: Path
) -> None:
    whole = read_all(open_source(str(ledger), LEDGER_SPEC))
    monkeypatch.setattr(records, "READ_CHUNK", 7)
    assert read_all(open_source(str(ledger), LEDGER_SPEC)) == whole


def test_long_key_is_refused(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "bad.jsonl", ['{"key":"' + "é" * 3000 + '"}'])
    assert "line 1: the key 'ééé" in error_of(path, RecordSpec("key"))


def test_source_is_read_once_and_missing_file(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "in.jsonl", ['{"key":"a"}'])
    with open_source(str(path), RecordSpec("key")) as source:
        assert len(list(source)) == 1
        with pytest.raises(UsageError, match="read already"):
            iter(source)
    with pytest.raises(StorageError, match="does not exist"):
        open_source(str(tmp_path / "missing.jsonl"), RecordSpec("key"))


def test_sink_refuses_unsorted_records_and_line_breaks(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(b"old\n")
    with pytest.raises(RecordError, match="record 2 for .*: keys out of order: 'a' comes after 'b'"):
        open_sink(str(out)).write([(b"b", b"{}"), (b"a", b"{}")], {})
    with pytest.raises(RecordError, match="duplicate key 'b'"):
        open_sink(str(out)).write([(b"b", b"{}"), (b"b", b"{}")], {})
    with pytest.raises(RecordError, match="the value of key 'a' holds a line break"):
        open_sink(str(out)).write([(b"a", b"{\n}")], {})
    assert out.read_bytes() == b"old\n"  # every failed write left the old file
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out.jsonl"]


# --- specs, locations, documents --------------------------------------------------------------


def test_record_spec_validation() -> None:
    assert RecordSpec("key", ["a", "b.c"]).sum_fields == ("a", "b.c")  # type: ignore[arg-type]
    for bad in [("",), ("a..b",), (".a",), ("a", "a")]:
        with pytest.raises(UsageError):
            RecordSpec("key", bad)
    with pytest.raises(UsageError):
        RecordSpec("")
    with pytest.raises(UsageError, match="at most 64"):
        RecordSpec("key", tuple(f"f{n}" for n in range(65)))
    spec = RecordSpec("key", ("a.b",))
    assert spec.key_of({"key": 12}, "here") == b"12"
    assert spec.sums_of({"a": {"b": "3"}}, "here", b"k") == (3,)
    with pytest.raises(
        RecordError, match=r"^row 7, key 'k': sum field 'a.b' runs through 'a', which is a string"
    ):
        spec.sums_of({"a": "x"}, "row 7", b"k")
    with pytest.raises(RecordError, match=r"^row 7: the record has no key field 'key'"):
        spec.key_of({}, "row 7")


def test_unknown_locations() -> None:
    spec = RecordSpec("key")
    for location in ["data.txt", "data", "mysql://user:hunter2@db/x", "ftp://x/y.jsonl", "jsonl:"]:
        with pytest.raises(UsageError) as caught:
            open_source(location, spec)
        assert "hunter2" not in str(caught.value)
        assert ".jsonl" in str(caught.value) or "jsonl:" in str(caught.value)
    with pytest.raises(UsageError, match="psycopg"):
        open_source("postgresql+psycopg2://u@h/d", spec, table="t")
    with pytest.raises(UsageError, match="exactly one of a table and a query"):
        open_source("sqlite:///x.db", spec)
    with pytest.raises(UsageError, match="exactly one of a table and a query"):
        open_source("sqlite:///x.db", spec, table="t", query="select 1")
    with pytest.raises(UsageError, match="for databases"):
        open_source("x.jsonl", spec, table="t")
    with pytest.raises(UsageError, match="needs a table"):
        open_sink("sqlite:///x.db")
    with pytest.raises(UsageError, match="unknown record kind"):
        open_sink("x.jsonl", kind="xml")


def test_description_never_holds_credentials() -> None:
    url = "postgresql://alice:hunter2@127.0.0.1:1/ledger?sslmode=require&password=hunter3"
    source = open_source(url, RecordSpec("key"), table="accounts")
    described = source.describe()
    source.close()
    assert source.kind == "postgresql"
    assert "hunter" not in json.dumps(described)
    assert described["url"] == "postgresql://alice:***@127.0.0.1:1/ledger?sslmode=require"
    assert described["table"] == "accounts"


def test_document_of() -> None:
    assert document_of("csv", b'{"a":"1"}') == {"a": "1"}
    with pytest.raises(UsageError):
        document_of("xml", b"{}")
    with pytest.raises(RecordError, match="not a JSON object"):
        document_of("jsonl", b"[1]")
    with pytest.raises(RecordError, match="not valid JSON"):
        document_of("sqlite", b"{")


# --- CSV --------------------------------------------------------------------------------------


def test_csv_round_trip(tmp_path: Path) -> None:
    text = 'key,amount,note\n1,5,plain\n10,7,"with, comma"\n2,,"quoted ""word""\nand a line break"\n'
    path = tmp_path / "in.csv"
    path.write_bytes(text.encode())
    source = open_source(str(path), RecordSpec("key", ("amount",)))
    with pytest.raises(RecordError, match="line 5, key '2': sum field 'amount' is not a decimal integer"):
        read_all(source)
    path.write_bytes(text.replace("2,,", "2,0,").encode())
    source = open_source(str(path), RecordSpec("key", ("amount",)))
    found = read_all(source)
    assert [record.key for record in found] == [b"1", b"10", b"2"]
    assert [record.sums for record in found] == [(5,), (7,), (0,)]
    assert found[1].document == {"key": "10", "amount": "7", "note": "with, comma"}
    assert found[1].value == b'{"key":"10","amount":"7","note":"with, comma"}'
    described = source.describe()
    assert described == {
        "kind": "csv",
        "path": str(path),
        "columns": ["key", "amount", "note"],
        "records": 3,
        "bytes": len(path.read_bytes()),
    }
    out = tmp_path / "out.csv"
    assert open_sink(str(out)).write(pairs(found), described) == 3
    assert out.read_bytes() == path.read_bytes()
    again = read_all(open_source(f"csv:{out}", RecordSpec("key", ("amount",))))
    assert pairs(again) == pairs(found)


def test_csv_header_only_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b"\xef\xbb\xbfkey,balances.USDC\n")
    source = open_source(str(path), RecordSpec("key"))
    assert read_all(source) == []
    out = tmp_path / "out.csv"
    open_sink(str(out)).write([], source.describe())
    assert out.read_bytes() == b"key,balances.USDC\n"
    path.write_bytes(b"\xef\xbb\xbfkey,balances.USDC\na,12\n")
    found = read_all(open_source(str(path), LEDGER_SPEC))  # a dotted column name is a sum field
    assert found[0].sums == (12,) + (0,) * 9


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("key,amount\na,1\nb,2,3\n", "line 3 has 3 fields; the header has 2"),
        ("key,amount\na,1\nb\n", "line 3 has 1 fields; the header has 2"),
        ("key,amount\na,1\n\nb,2\n", "line 3 is blank"),
        ("id,amount\na,1\n", "line 1: there is no key column 'key' (columns: 'id', 'amount')"),
        ("key,key\na,1\n", "line 1: the column 'key' appears twice"),
        ("", "has no header row"),
        ("key,amount\na,1\na,2\n", "line 3: duplicate key 'a'"),
        ("key,amount\nb,1\na,2\n", "line 3: keys out of order: 'a' comes after 'b'"),
        ("key,amount\na,-1\n", "line 2, key 'a': sum field 'amount' is negative"),
        ('key,amount\na,"1\n', "line 2: unexpected end of data"),
    ],
)
def test_bad_csv_input(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(text.encode())
    message = error_of(path, RecordSpec("key", ("amount",)))
    assert message.startswith(str(path))
    assert expected in message, message


def test_csv_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"key,amount\na,1\nb\xe9,2\n")
    assert "is not UTF-8 text" in error_of(path, RecordSpec("key"))


def test_csv_sink_from_other_kinds(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    records_ = [(b"a", b'{"key":"a","n":1,"f":null,"b":true,"j":[1]}')]
    open_sink(str(out)).write(
        records_, {"kind": "sqlite", "columns": [{"name": "key", "type": "text"}, "n", "f", "b", "j"]}
    )
    assert out.read_bytes() == b"key,n,f,b,j\na,1,,true,[1]\n"
    with pytest.raises(RecordError, match="has the field 'j', which is not a column"):
        open_sink(str(out)).write(records_, {"columns": ["key", "n", "f", "b"]})


# --- SQLite -----------------------------------------------------------------------------------


def make_sqlite(path: Path, rows: list[tuple[Any, ...]]) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute(
            'CREATE TABLE "Ledger Accounts" (id INTEGER PRIMARY KEY, owner TEXT, amount NUMERIC, '
            "price REAL, blob BLOB, active BOOLEAN, seen DATETIME)"
        )
        connection.executemany('INSERT INTO "Ledger Accounts" VALUES (?, ?, ?, ?, ?, ?, ?)', rows)
    connection.close()


SQLITE_ROWS = [
    (n, f"owner {n}", n * 1000, n / 4, bytes([n, 0]), n % 2, f"2024-01-{n:02} 10:00:00") for n in range(1, 13)
] + [(13, None, 0, None, None, None, None)]


def test_sqlite_table_round_trip(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    make_sqlite(db, SQLITE_ROWS)
    source = open_source(f"sqlite:///{db}", RecordSpec("id", ("amount",)), table="Ledger Accounts")
    assert source.kind == "sqlite" and source.total is None
    found = read_all(source)
    keys = [record.key for record in found]
    assert keys == sorted(str(n).encode() for n in range(1, 14))  # bytewise: 1, 10, 11, 12, 13, 2, ...
    first = found[0]
    assert first.document == {
        "id": 1,
        "owner": "owner 1",
        "amount": 1000,
        "price": 0.25,
        "blob": {"$hex": "0100"},
        "active": 1,
        "seen": "2024-01-01 10:00:00",
    }
    assert first.value == orjson.dumps(first.document)
    assert first.sums == (1000,)
    described = source.describe()
    assert described == {
        "kind": "sqlite",
        "url": f"sqlite:///{db}",
        "table": "Ledger Accounts",
        "columns": [
            {"name": "id", "type": "integer"},
            {"name": "owner", "type": "text"},
            {"name": "amount", "type": "numeric"},
            {"name": "price", "type": "float"},
            {"name": "blob", "type": "bytes"},
            {"name": "active", "type": "boolean"},
            {"name": "seen", "type": "timestamp"},
        ],
        "records": 13,
    }
    assert source.bytes_read == 13
    # Into a new table of another database, and into the same table again.
    other = tmp_path / "other.db"
    assert (
        open_sink(f"sqlite:///{other}", table="restored").write(pairs(found), described, key_field="id") == 13
    )
    again = read_all(open_source(f"sqlite:///{other}", RecordSpec("id", ("amount",)), table="restored"))
    assert pairs(again) == pairs(found)
    assert open_sink(f"sqlite:///{db}", table="Ledger Accounts").write(pairs(found[:3]), described) == 3
    assert pairs(
        read_all(open_source(f"sqlite:///{db}", RecordSpec("id"), table="Ledger Accounts"))
    ) == pairs(found[:3])


def test_sqlite_query_source(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    make_sqlite(db, SQLITE_ROWS)
    query = "SELECT id, owner, amount * 2 AS twice FROM \"Ledger Accounts\" WHERE owner LIKE 'owner 1%:'  OR id < 3"
    source = open_source(f"sqlite:///{db}", RecordSpec("owner", ("twice",)), query=query)
    found = read_all(source)
    assert [record.key for record in found] == [b"owner 1", b"owner 2"]
    assert [record.sums for record in found] == [(2000,), (4000,)]
    assert source.describe() == {
        "kind": "sqlite",
        "url": f"sqlite:///{db}",
        "query": query,
        "columns": [
            {"name": "id", "type": "integer"},
            {"name": "owner", "type": "text"},
            {"name": "twice", "type": "integer"},
        ],
        "records": 2,
    }


def test_sqlite_errors(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    make_sqlite(db, SQLITE_ROWS)
    url = f"sqlite:///{db}"
    with pytest.raises(RecordError, match=f"{url} has no table 'missing'"):
        read_all(open_source(url, RecordSpec("id"), table="missing"))
    with pytest.raises(RecordError, match="table 'Ledger Accounts' on .* has no key column 'key'"):
        read_all(open_source(url, RecordSpec("key"), table="Ledger Accounts"))
    with pytest.raises(RecordError, match="the query on .* has no key column 'key'"):
        read_all(open_source(url, RecordSpec("key"), query='SELECT id FROM "Ledger Accounts"'))
    with pytest.raises(RecordError, match="reading the query on .* failed: no such table: nope"):
        read_all(open_source(url, RecordSpec("key"), query="SELECT * FROM nope"))
    with pytest.raises(
        RecordError,
        match=r"table 'Ledger Accounts' row 1, key '1': sum field 'price' is not an integer \(0.25\)",
    ):
        read_all(open_source(url, RecordSpec("id", ("price",)), table="Ledger Accounts"))
    with pytest.raises(
        RecordError, match="table 'Ledger Accounts' row 1: the key field 'price' is null; a key"
    ):
        read_all(open_source(url, RecordSpec("price"), table="Ledger Accounts"))  # NULL sorts first
    with pytest.raises(
        RecordError, match=r"the query row 1: the key field 'price' is not an integer \(0.25\)"
    ):
        read_all(
            open_source(url, RecordSpec("price"), query='SELECT price FROM "Ledger Accounts" WHERE id = 1')
        )
    with pytest.raises(RecordError, match=r"row 2 \(key 'a'\): duplicate key 'a'"):
        read_all(open_source(url, RecordSpec("k"), query="SELECT 'a' AS k UNION ALL SELECT 'a'"))
    with pytest.raises(RecordError, match=r"the query row 1, key 'a': sum field 'n' is null;"):
        read_all(open_source(url, RecordSpec("k", ("n",)), query="SELECT 'a' AS k, NULL AS n"))
    with pytest.raises(RecordError, match="column 'x' is inf"):
        read_all(open_source(url, RecordSpec("k"), query="SELECT 'a' AS k, 1e999 AS x"))


@pytest.mark.parametrize("failure", ["order", "database"])
def test_failed_sqlite_write_keeps_old_rows(tmp_path: Path, failure: str) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    description = {
        "kind": "sqlite",
        "columns": [{"name": "k", "type": "text"}, {"name": "n", "type": "integer"}],
    }
    old = [(b"a", b'{"k":"a","n":1}'), (b"b", b'{"k":"b","n":2}')]
    sink = open_sink(url, table="t")
    assert sink.write(old, description, key_field="k") == 2
    new = [(f"k{n:06}".encode(), orjson.dumps({"k": f"k{n:06}", "n": n})) for n in range(2 * SQL_BATCH + 10)]
    if failure == "order":
        new[-3], new[-2] = new[-2], new[-3]
        with pytest.raises(RecordError, match="keys out of order"):
            sink.write(new, description)
    else:
        new[-2] = (new[-2][0], orjson.dumps({"k": new[-2][0].decode(), "n": 1, "extra": 1}))
        with pytest.raises(RecordError, match="has the field 'extra', which is not a column"):
            sink.write(new, description)
    assert pairs(read_all(open_source(url, RecordSpec("k"), table="t"))) == old


def test_failed_sqlite_ddl_rolls_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    description = {"columns": [{"name": "k", "type": "text"}]}
    with pytest.raises(RecordError, match="not a column"):
        open_sink(url, table="fresh").write([(b"a", b'{"k":"a","z":1}')], description)
    with pytest.raises(RecordError, match="has no table 'fresh'"):
        read_all(open_source(url, RecordSpec("k"), table="fresh"))


def test_sqlite_sink_from_jsonl_infers_columns(tmp_path: Path, ledger: Path) -> None:
    source = open_source(str(ledger), LEDGER_SPEC)
    found = read_all(source)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    wide = [(key, value) for key, value in pairs(found) if key.startswith(b"acct:")]
    assert open_sink(url, table="accounts").write(wide, source.describe()) == 200
    again = read_all(open_source(url, RecordSpec("key"), table="accounts"))
    assert [record.key for record in again] == [key for key, _ in wide]
    assert again[0].document["key"] == found[0].document["key"]


# --- PostgreSQL -------------------------------------------------------------------------------

PG_INSERT = (
    'INSERT INTO "{name}" VALUES (:id, :owner, :amount, 1.50, :price, :data, :active, '
    "'2024-01-02T03:04:05', '2024-01-02T03:04:05+02:00', '2024-01-02', :meta, :big)"
)
PG_CREATE = """
CREATE TABLE "{name}" (
    id integer PRIMARY KEY, owner text, amount numeric(40, 0), fee numeric(10, 2), price double precision,
    data bytea, active boolean, seen timestamp, seen_tz timestamptz, day date, meta jsonb, big numeric
)
"""


def pg_engine(url: str) -> sa.Engine:
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


def test_postgresql_round_trip(pg_url: str, pg_tables: list[str]) -> None:
    table, restored, _ = pg_tables
    engine = pg_engine(pg_url)
    with engine.begin() as connection:
        connection.execute(sa.text(PG_CREATE.format(name=table)))
        insert = sa.text(PG_INSERT.format(name=table))
        for n in range(1, 13):
            connection.execute(
                insert,
                {
                    "id": n,
                    "owner": f"ö{n}",
                    "amount": 10**30 + n,
                    "price": n / 8,
                    "data": bytes([n]),
                    "active": n % 2 == 0,
                    "meta": json.dumps({"b": n, "a": [1, "x"]}),
                    "big": 2**70,
                },
            )
    engine.dispose()
    spec = RecordSpec("id", ("amount",))
    source = open_source(pg_url, spec, table=table)
    found = read_all(source)
    assert [record.key for record in found] == sorted(str(n).encode() for n in range(1, 13))
    document = found[0].document
    assert document["amount"] == str(10**30 + 1)  # beyond 64 bits: a decimal string
    assert document["fee"] == "1.50"
    assert document["data"] == {"$hex": "01"}
    assert document["seen"] == "2024-01-02T03:04:05"
    assert document["seen_tz"].startswith("2024-01-02T01:04:05")
    assert document["day"] == "2024-01-02"
    assert document["meta"] == {"a": [1, "x"], "b": 1}
    assert document["big"] == str(2**70)
    assert found[0].sums == (10**30 + 1,)
    described = source.describe()
    assert [column["type"] for column in described["columns"]] == [
        "integer", "text", "numeric", "numeric", "float", "bytes", "boolean",
        "timestamp", "timestamp", "timestamp", "json", "numeric",
    ]  # fmt: skip
    assert described["url"] == pg_url and described["table"] == table and described["records"] == 12
    sink = open_sink(pg_url, table=restored)
    assert sink.kind == "postgresql"
    assert sink.write(pairs(found), described, key_field="id") == 12
    assert pairs(read_all(open_source(pg_url, spec, table=restored))) == pairs(found)
    assert sink.write(pairs(found[:2]), described) == 2  # the table exists now: rows replaced
    assert pairs(read_all(open_source(pg_url, spec, table=restored))) == pairs(found[:2])


def test_postgresql_query_and_order(pg_url: str, pg_tables: list[str]) -> None:
    table = pg_tables[0]
    engine = pg_engine(pg_url)
    keys = ["b", "B", "a", "é", "z", "10", "9", "a:b%", "Z"]
    with engine.begin() as connection:
        connection.execute(sa.text(f'CREATE TABLE "{table}" (k text, n bigint)'))
        connection.execute(
            sa.text(f'INSERT INTO "{table}" VALUES (:k, :n)'),  # noqa: S608
            [{"k": k, "n": 1} for k in keys],
        )
    engine.dispose()
    query = f"SELECT k, n + 1 AS m, n::text AS t FROM \"{table}\" WHERE k NOT LIKE 'zz%' AND k <> 'x:y'"  # noqa: S608
    source = open_source(pg_url, RecordSpec("k", ("m",)), query=query)
    found = read_all(source)
    assert [record.key for record in found] == sorted(key.encode() for key in keys)
    assert all(record.sums == (2,) for record in found)
    assert source.describe()["columns"] == [
        {"name": "k", "type": "text"},
        {"name": "m", "type": "integer"},
        {"name": "t", "type": "text"},
    ]
    assert source.describe()["query"] == query


def test_postgresql_errors(pg_url: str, pg_tables: list[str]) -> None:
    with pytest.raises(RecordError, match=f"has no table '{pg_tables[0]}'"):
        read_all(open_source(pg_url, RecordSpec("k"), table=pg_tables[0]))
    with pytest.raises(RecordError, match="reading the query on .* failed"):
        missing = f'SELECT * FROM "{pg_tables[0]}"'  # noqa: S608
        read_all(open_source(pg_url, RecordSpec("k"), query=missing))
    with pytest.raises(RecordError, match=r"row 2 \(key 'a'\): duplicate key 'a'"):
        read_all(open_source(pg_url, RecordSpec("k"), query="SELECT 'a' AS k UNION ALL SELECT 'a'"))
    with pytest.raises(RecordError, match="the query on .* returns the column 'x' twice"):
        read_all(open_source(pg_url, RecordSpec("k"), query="SELECT 'a' AS k, 1 AS x, 2 AS x"))
    with pytest.raises(RecordError, match="holds a timedelta"):
        read_all(open_source(pg_url, RecordSpec("k"), query="SELECT 'a' AS k, interval '1 day' AS i"))
    with pytest.raises(StorageError, match="cannot connect to postgresql://nobody:\\*\\*\\*@127.0.0.1:1/x"):
        read_all(open_source("postgresql://nobody:hunter2@127.0.0.1:1/x", RecordSpec("k"), table="t"))


@pytest.mark.parametrize("failure", ["order", "database"])
def test_failed_postgresql_write_keeps_old_rows(pg_url: str, pg_tables: list[str], failure: str) -> None:
    table = pg_tables[0]
    description = {"columns": [{"name": "k", "type": "text"}, {"name": "n", "type": "integer"}]}
    old = [(b"a", b'{"k":"a","n":1}'), (b"b", b'{"k":"b","n":2}')]
    sink = open_sink(pg_url, table=table)
    assert sink.write(old, description, key_field="k") == 2
    new = [(f"k{n:06}".encode(), orjson.dumps({"k": f"k{n:06}", "n": n})) for n in range(2 * SQL_BATCH + 10)]
    if failure == "order":
        new[-3], new[-2] = new[-2], new[-3]
        with pytest.raises(RecordError, match="keys out of order"):
            sink.write(new, description)
    else:
        new[-2] = (new[-2][0], orjson.dumps({"k": new[-2][0].decode(), "n": "not a number"}))
        with pytest.raises(StorageError, match=f"cannot write table '{table}' on .*; it keeps its old rows"):
            sink.write(new, description)
    assert pairs(read_all(open_source(pg_url, RecordSpec("k"), table=table))) == old


def test_differences_reads_once_reports_progress_and_names_what_changed(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"key":"a","n":"1"}\n{"key":"b","n":"2"}\n{"key":"d","n":"4"}\n')
    old = [(b"a", b'{"key":"a","n":"1"}'), (b"b", b'{"key":"b","n":"9"}'), (b"c", b'{"key":"c","n":"3"}')]
    seen: list[int] = []
    with open_source(str(path), RecordSpec("key", ("n",))) as source:
        source.progress = seen.append
        found = list(source.differences(old))
        assert [item if isinstance(item, bytes) else (item.key, item.sums) for item in found] == [
            (b"b", (2,)),
            b"c",
            (b"d", (4,)),
        ]
        assert source.records == 3 and seen and seen[-1] == path.stat().st_size
        with pytest.raises(UsageError, match="read already"):
            list(source.differences(old))
        with pytest.raises(UsageError, match="read already"):
            list(source)
