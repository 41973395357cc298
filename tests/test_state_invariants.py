"""Tests of declarative invariants (lifeboat.state.invariants): the file, the checks, the report."""

from __future__ import annotations

import copy
import json
import signal
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import Any, NoReturn

import orjson
import pytest
from blake3 import blake3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest_tools import in_ci
from lifeboat.errors import RecordError, StateError, StorageError
from lifeboat.state.invariants import (
    MAX_FILE_BYTES,
    InvariantChecker,
    InvariantReport,
    InvariantResult,
    Invariants,
    Violation,
    load_invariants,
    parse_invariants,
    sandbox,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ledger-invariants.toml"
GEN_LEDGER = Path(__file__).resolve().parents[2] / "shared" / "bench" / "gen_ledger.py"
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CONSERVATION = """
version = 1
[[sum]]
name = "conservation"
where = { kind = "account" }
amount = "balances.*"
equals = { key = "supply:{group}", field = "amount" }
"""


def check(invariants: Invariants, records: Iterable[Mapping[str, Any]]) -> InvariantReport:
    checker = InvariantChecker(invariants)
    for record in records:
        checker.feed(record["key"], record)
    return checker.finish()


def parse(text: str) -> Invariants:
    return parse_invariants(text, where="test.toml")


def result(report: InvariantReport, name: str) -> InvariantResult:
    return next(r for r in report.results if r.name == name)


def read_ledger(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


# --- gen_ledger ledgers ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ledgers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not GEN_LEDGER.is_file():
        reason = f"gen_ledger not found at {GEN_LEDGER}"
        if in_ci():
            pytest.fail(f"{reason}; CI=true, so a missing benchmark generator is an error", pytrace=False)
        pytest.skip(reason)
    directory = tmp_path_factory.mktemp("ledgers")
    paths = {name: directory / f"{name}.jsonl" for name in ("built", "changed", "exploit")}
    runs = [
        [str(paths["built"]), "--accounts", "200"],
        [str(paths["changed"]), "--from", str(paths["built"]), "--change", "0.01"],
        [str(paths["exploit"]), "--from", str(paths["built"]), "--exploit"],
    ]
    for arguments in runs:
        subprocess.run([sys.executable, str(GEN_LEDGER), *arguments], check=True, capture_output=True)
    return paths


@pytest.mark.parametrize("name", ["built", "changed"])
def test_gen_ledger_ledgers_pass_the_example_invariants(ledgers: dict[str, Path], name: str) -> None:
    invariants = load_invariants(EXAMPLE)
    assert invariants.names == ("conservation", "solvency", "no-negative-balance", "account-sane")
    report = check(invariants, read_ledger(ledgers[name]))
    assert report.passed, report.to_json()
    assert [r.kind for r in report.results] == ["sum", "sum", "bound", "rule"]
    assert report.digest == blake3(EXAMPLE.read_bytes()).hexdigest()


def test_exploit_fails_conservation_naming_the_supply_key(ledgers: dict[str, Path]) -> None:
    records = read_ledger(ledgers["exploit"])
    victim = next(r for r in records if r["kind"] == "account")
    asset = next(iter(victim["balances"]))
    report = check(load_invariants(EXAMPLE), records)
    assert not report.passed
    conservation = result(report, "conservation")
    assert conservation.violations == 1
    (violation,) = conservation.examples
    assert violation.key == f"supply:{asset}"
    assert f"for group {asset}" in violation.detail
    assert violation.detail.endswith(f"(+{10**30})")
    assert all(r.passed for r in report.results if r.name != "conservation")


# --- sum --------------------------------------------------------------------------------------


def account(key: str, **balances: Any) -> dict[str, Any]:
    return {"key": key, "kind": "account", "balances": balances}


def supply(asset: str, amount: Any) -> dict[str, Any]:
    return {"key": f"supply:{asset}", "kind": "supply", "amount": amount}


def test_conservation_detail_has_both_sides_and_the_difference() -> None:
    records = [account("acct:1", USDC="100", DAI=5), account("acct:2", USDC="23"), supply("USDC", "100")]
    records.append(supply("DAI", 5))
    report = check(parse(CONSERVATION), records)
    (violation,) = result(report, "conservation").examples
    assert violation == Violation(
        "supply:USDC", "sum of balances.* for group USDC is 123, supply:USDC.amount is 100 (+23)"
    )


def test_group_without_target_and_target_without_field_are_violations() -> None:
    records = [account("acct:1", USDC="1", ETH="2"), {"key": "supply:ETH", "kind": "supply"}]
    records.append(supply("DAI", "0"))  # a target with no amounts sums to 0: fine
    records.append(supply("SOL", "7"))  # ... and 0 is not 7
    examples = result(check(parse(CONSERVATION), records), "conservation").examples
    assert [(v.key, v.detail) for v in examples] == [
        ("supply:ETH", "sum of balances.* for group ETH is 2, but supply:ETH has no field amount"),
        ("supply:SOL", "sum of balances.* for group SOL is 0, supply:SOL.amount is 7 (-7)"),
        ("supply:USDC", "sum of balances.* for group USDC is 1, but there is no record supply:USDC"),
    ]


def test_amounts_that_are_not_integers_are_violations_of_their_record() -> None:
    bad = ["1.5", " 1", "+1", "", "1_000", "١", "0x10", "1e3"]
    records = [account(f"acct:{i}", USDC=value) for i, value in enumerate(bad)]
    records += [account("acct:f", USDC=1.0), account("acct:b", USDC=True), account("acct:n", USDC=None)]
    records += [account("acct:list", USDC=[1]), account("acct:huge", USDC="9" * 1001)]
    records += [account("acct:neg", USDC="-4"), account("acct:int", USDC=4), supply("USDC", "0")]
    invariants = parse(CONSERVATION.replace("version = 1", "version = 1\nlimit = 100"))
    conservation = result(check(invariants, records), "conservation")
    assert conservation.violations == len(bad) + 5  # the sum itself (-4 + 4 = 0) is fine
    for example in conservation.examples:
        assert example.detail.startswith("balances.*: balances.USDC is ")
        assert example.detail.endswith(", not an integer")
    assert {v.key for v in conservation.examples} == {f"acct:{i}" for i in range(len(bad))} | {
        "acct:f",
        "acct:b",
        "acct:n",
        "acct:list",
        "acct:huge",
    }


def test_wrong_shapes_are_violations_and_absent_paths_are_nothing() -> None:
    records: list[dict[str, Any]] = [
        {"key": "acct:list", "kind": "account", "balances": ["1"]},
        {"key": "acct:null", "kind": "account", "balances": None},
        {"key": "acct:none", "kind": "account"},
        {"key": "other", "kind": "note", "balances": "ignored: not selected by where"},
    ]
    examples = result(check(parse(CONSERVATION), records), "conservation").examples
    assert [(v.key, v.detail) for v in examples] == [
        ("acct:list", "balances.*: balances is a list, not an object"),
        ("acct:null", "balances.*: balances is null, not an object"),
    ]


SOLVENCY = """
version = 1
[[sum]]
name = "solvency"
where = { kind = "account" }
amount = "positions[].collateral"
group = "positions[].market"
at_most = { key = "market:{group}", field = "vault" }
"""


def position(market: Any, collateral: Any) -> dict[str, Any]:
    return {"market": market, "collateral": collateral}


def test_at_most_with_a_group_per_list_element() -> None:
    records: list[dict[str, Any]] = [
        {"key": "a", "kind": "account", "positions": [position("ETH", "60"), position("BTC", "5")]},
        {"key": "b", "kind": "account", "positions": [position("ETH", "50"), {"market": "ETH"}]},
        {"key": "market:ETH", "kind": "market", "vault": "100"},
        {"key": "market:BTC", "kind": "market", "vault": "5"},
    ]
    (violation,) = result(check(parse(SOLVENCY), records), "solvency").examples
    assert violation == Violation(
        "market:ETH",
        "sum of positions[].collateral for group ETH is 110, more than market:ETH.vault = 100 (+10)",
    )
    records[2]["vault"] = "110"
    assert check(parse(SOLVENCY), records).passed


def test_list_element_problems_name_the_element() -> None:
    records: list[dict[str, Any]] = [
        {"key": "a", "kind": "account", "positions": [position("ETH", "1"), position(None, "2")]},
        {"key": "b", "kind": "account", "positions": ["x"]},
        {"key": "c", "kind": "account", "positions": {"0": position("ETH", "1")}},
        {"key": "d", "kind": "account", "positions": [position(7, "1")]},  # an integer group is its digits
        {"key": "market:ETH", "vault": "1"},
        {"key": "market:7", "vault": "1"},
    ]
    examples = result(check(parse(SOLVENCY), records), "solvency").examples
    assert [(v.key, v.detail) for v in examples] == [
        ("a", "positions[].collateral: group positions[1].market is null, not a string or integer"),
        ("b", "positions[].collateral: positions[0] is a string, not an object"),
        ("c", "positions[].collateral: positions is an object, not a list"),
    ]


def test_at_least_fixed_key_and_nested_paths() -> None:
    text = """
version = 1
[[sum]]
name = "reserve"
amount = "books.*.lots[].amount"
at_least = { key = "reserve", field = "state.floor" }
"""
    records: list[dict[str, Any]] = [
        {"key": "x", "books": {"a": {"lots": [{"amount": 3}, {"amount": "4"}]}, "b": {"lots": []}}},
        {"key": "y", "books": {"c": {"lots": [{"amount": "-2"}, {"other": 1}]}}},
        {"key": "reserve", "state": {"floor": "5"}},
    ]
    assert check(parse(text), records).passed
    records[2]["state"]["floor"] = 7
    (violation,) = result(check(parse(text), records), "reserve").examples
    assert violation == Violation(
        "reserve", "sum of books.*.lots[].amount is 5, less than reserve.state.floor = 7 (-2)"
    )
    records[1]["books"]["c"]["lots"][1]["amount"] = "z"
    examples = result(check(parse(text), records), "reserve").examples
    assert Violation("y", "books.*.lots[].amount: books.c.lots[1].amount is 'z', not an integer") in examples


def test_group_from_a_plain_field_and_a_target_that_is_not_an_integer() -> None:
    text = """
version = 1
[[sum]]
name = "per-asset"
amount = "amount"
group = "asset"
equals = { key = "total:{group}:v1", field = "total" }
"""
    records: list[dict[str, Any]] = [
        {"key": "t1", "asset": "USDC", "amount": "5"},
        {"key": "t2", "asset": "USDC", "amount": 6},
        {"key": "total:USDC:v1", "total": "11"},
        {"key": "total:DAI:v1", "total": "eleven"},
        {"key": "total:DAI:v2", "total": "unrelated: the suffix differs"},
    ]
    examples = result(check(parse(text), records), "per-asset").examples
    assert [(v.key, v.detail) for v in examples] == [
        ("total:DAI:v1", "total:DAI:v1.total is 'eleven', not an integer (sum of amount for group DAI is 0)")
    ]


# --- bound and rule ---------------------------------------------------------------------------

BOUNDS = """
version = 1
[[bound]]
name = "no-negative-balance"
where = { kind = "account" }
field = "balances.*"
min = 0

[[bound]]
name = "small-positions"
field = "positions[].size"
min = 1
max = 10

[[bound]]
name = "nonce"
field = "meta.nonce"
max = 100
"""


def test_bounds() -> None:
    records: list[dict[str, Any]] = [
        {"key": "a", "kind": "account", "balances": {"USDC": "-5", "DAI": "x", "ETH": 1}},
        {"key": "b", "kind": "account", "balances": {"USDC": "0"}, "positions": [{"size": "10"}, {}]},
        {"key": "c", "positions": [{"size": 11}], "meta": {"nonce": "101"}},
        {"key": "d", "positions": [{"size": "0"}], "meta": {"nonce": -7}},
        {"key": "e", "positions": "no", "meta": 5},
        {"key": "f", "kind": "supply", "balances": {"USDC": "-1"}},  # not selected
    ]
    report = check(parse(BOUNDS), records)
    assert [(v.key, v.detail) for v in result(report, "no-negative-balance").examples] == [
        ("a", "balances.USDC is -5, below the minimum 0 (and 1 more)")
    ]
    assert [(v.key, v.detail) for v in result(report, "small-positions").examples] == [
        ("c", "positions[0].size is 11, above the maximum 10"),
        ("d", "positions[0].size is 0, below the minimum 1"),
        ("e", "positions[].size: positions is a string, not a list"),
    ]
    assert [(v.key, v.detail) for v in result(report, "nonce").examples] == [
        ("c", "meta.nonce is 101, above the maximum 100"),
        ("e", "meta.nonce: meta is an integer, not an object"),
    ]


RULES = """
version = 1
[[rule]]
name = "sane"
where = { kind = "account", "meta.active" = true }
expr = "nonce >= 0 and len(positions) <= 2 and all(int(p['size']) <= cap for p in positions)"

[[rule]]
name = "names"
expr = "key == record['key'] and str(key)[:5] == 'acct:' and max([1, 2], default=0) == 2"
"""


def test_rules() -> None:
    def acct(n: int, **fields: Any) -> dict[str, Any]:
        return {"key": f"acct:{n}", "kind": "account", "meta": {"active": True}, **fields}

    records = [
        acct(1, nonce=1, positions=[{"size": "3"}], cap=3),
        acct(2, nonce=-1, positions=[], cap=0),
        acct(3, positions=[]),
        acct(4, nonce=1, positions=[{"size": "x"}], cap=3),
        acct(5, nonce=1, positions=[{"size": "4"}], cap=3, meta={"active": 1}),  # 1 is not true
        {"key": "acct:6", "record": "shadowed by the whole record", "key2": 1},
        {"key": "zzz"},
    ]
    report = check(parse(RULES), records)
    expr = "nonce >= 0 and len(positions) <= 2 and all(int(p['size']) <= cap for p in positions)"
    shown = expr[:57] + "..."
    assert [(v.key, v.detail) for v in result(report, "sane").examples] == [
        ("acct:2", f"{shown} is false"),
        ("acct:3", f"{shown}: the record has no field 'nonce'"),
        ("acct:4", f"{shown} raised ValueError: invalid literal for int() with base 10: 'x'"),
    ]
    assert [v.key for v in result(report, "names").examples] == ["zzz"]


def test_where_clauses_match_type_and_value() -> None:
    text = """
version = 1
[[bound]]
name = "b"
where = { flag = true, count = 1, meta = { kind = "x" } }
field = "v"
max = 0

[[bound]]
name = "one-field"
where = { flag = true }
field = "v"
max = 0
"""
    records = [
        {"key": "yes", "flag": True, "count": 1, "meta": {"kind": "x"}, "v": 1},
        {"key": "int-flag", "flag": 1, "count": 1, "meta": {"kind": "x"}, "v": 1},
        {"key": "bool-count", "flag": True, "count": True, "meta": {"kind": "x"}, "v": 1},
        {"key": "other-kind", "flag": True, "count": 1, "meta": {"kind": "y"}, "v": 1},
        {"key": "no-meta", "flag": True, "count": 1, "v": 1},
    ]
    report = check(parse(text), records)
    assert [v.key for v in result(report, "b").examples] == ["yes"]
    assert [v.key for v in result(report, "one-field").examples] == [
        "bool-count",
        "no-meta",
        "other-kind",
        "yes",
    ]


# --- reports ------------------------------------------------------------------------------------


def test_limit_keeps_the_smallest_keys_and_counts_all() -> None:
    text = CONSERVATION.replace("version = 1", "version = 1\nlimit = 3")
    records = [account(f"acct:{i:03}", USDC="x") for i in range(50)]
    conservation = result(check(parse(text), reversed(records)), "conservation")
    assert conservation.violations == 50
    assert [v.key for v in conservation.examples] == ["acct:000", "acct:001", "acct:002"]
    quiet = result(
        check(parse(CONSERVATION.replace("version = 1", "version = 1\nlimit = 0")), records), "conservation"
    )
    assert (quiet.violations, quiet.examples, quiet.passed) == (50, (), False)


def test_any_mapping_is_accepted_and_finish_is_once() -> None:
    checker = InvariantChecker(parse(CONSERVATION))
    checker.feed("acct:1", MappingProxyType({"kind": "account", "balances": {"USDC": "1"}}))
    checker.feed("supply:USDC", MappingProxyType({"amount": "1"}))
    assert checker.finish().passed
    with pytest.raises(RuntimeError):
        checker.finish()


def sample_report() -> InvariantReport:
    records = [account("acct:1", USDC="-1", DAI="2"), account("acct:2", USDC="x"), supply("DAI", "2")]
    return check(parse(CONSERVATION + BOUNDS.replace("version = 1", "")), records)


def test_report_json_round_trip() -> None:
    report = sample_report()
    assert not report.passed
    encoded = orjson.loads(orjson.dumps(report.to_json()))
    assert InvariantReport.from_json(encoded) == report


@pytest.mark.parametrize(
    "tamper",
    [
        lambda o: o.update(extra=1),
        lambda o: o.pop("digest"),
        lambda o: o.update(digest="AB" * 32),
        lambda o: o.update(passed=True),
        lambda o: o["results"][0].update(violations=0),
        lambda o: o["results"][0].update(kind="other"),
        lambda o: o["results"][0].update(violations=True),
        lambda o: o["results"][0].update(examples=[]) or o["results"][0].update(violations=-1),
        lambda o: o["results"][0]["examples"].reverse(),
        lambda o: o["results"][0]["examples"][0].update(note=""),
        lambda o: o["results"][0]["examples"][0].update(key=1),
        lambda o: o["results"].append(copy.deepcopy(o["results"][0])),
        lambda o: o.update(results={}),
    ],
)
def test_report_from_json_is_strict(tamper: Any) -> None:
    encoded = sample_report().to_json()
    tamper(encoded)
    with pytest.raises(StateError, match="invariant report"):
        InvariantReport.from_json(encoded)


def test_report_from_json_refuses_a_non_object() -> None:
    with pytest.raises(StateError, match="statement 1 invariants"):
        InvariantReport.from_json([], what="statement 1 invariants")


# --- the file -----------------------------------------------------------------------------------

SUM_HEAD = '[[sum]]\nname = "s"\namount = "balances.*"\n'
TARGET = 'equals = { key = "supply:{group}", field = "amount" }\n'


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (SUM_HEAD + TARGET + "colour = 1\n", "sum invariant 's' has unknown field 'colour'"),
        (
            SUM_HEAD + TARGET + 'at_most = { key = "m:{group}", field = "v" }\n',
            "sum invariant 's' needs exactly one of equals, at_most, at_least (it has equals and at_most)",
        ),
        (SUM_HEAD, "sum invariant 's' needs exactly one of equals, at_most, at_least (it has none)"),
        (
            SUM_HEAD + 'equals = { key = "supply:{group}", field = "amount", extra = 1 }\n',
            "sum invariant 's' field 'equals' has unknown field 'extra'",
        ),
        (
            SUM_HEAD + 'equals = { key = "supply:{group}" }\n',
            "sum invariant 's' field 'equals' lacks the field 'field'",
        ),
        (
            SUM_HEAD + 'equals = { key = "s:{group}", field = "a.*" }\n',
            "sum invariant 's' field 'equals' field 'field'",
        ),
        (
            SUM_HEAD + 'equals = { key = "s:{group}:{x}", field = "a" }\n',
            "sum invariant 's' field 'equals' key",
        ),
        (
            SUM_HEAD + 'equals = { key = "total", field = "a" }\ngroup = "g"\n',
            "sum invariant 's' has 'group'",
        ),
        (
            '[[sum]]\nname = "s"\namount = "a[].b"\n' + TARGET,
            "sum invariant 's': key 'supply:{group}' has {group}",
        ),
        (
            '[[sum]]\nname = "s"\namount = "a[].b"\ngroup = "c[].d"\n' + TARGET,
            "sum invariant 's' group 'c[].d' must be a plain path inside 'a[]'",
        ),
        (
            '[[sum]]\nname = "s"\namount = "a[].b"\ngroup = "a[]"\n' + TARGET,
            "sum invariant 's' group 'a[]' must name",
        ),
        (
            '[[sum]]\nname = "s"\namount = "a..b"\n' + TARGET,
            "sum invariant 's' field 'amount': 'a..b' is not a valid",
        ),
        (
            '[[sum]]\nname = "s"\namount = "a[0]"\n' + TARGET,
            "sum invariant 's' field 'amount': 'a[0]' is not a valid",
        ),
        (
            '[[sum]]\nname = "s"\namount = "*x"\n' + TARGET,
            "sum invariant 's' field 'amount': '*x' is not a valid",
        ),
        (
            '[[sum]]\nname = "s"\namount = ""\n' + TARGET,
            "sum invariant 's' field 'amount' must be a non-empty string",
        ),
        (
            '[[sum]]\nname = "s"\namount = 3\n' + TARGET,
            "sum invariant 's' field 'amount' must be a non-empty string",
        ),
        ('[[sum]]\nname = "s"\n' + TARGET, "sum invariant 's' lacks the field 'amount'"),
        (
            SUM_HEAD + TARGET + 'where = { "a.*" = 1 }\n',
            "sum invariant 's' 'where' field 'a.*' must be a plain",
        ),
        (
            SUM_HEAD + TARGET + "where = { a = 1.5 }\n",
            "sum invariant 's' 'where' value of 'a' must be a string",
        ),
        (
            SUM_HEAD + TARGET + "where = { a = [1] }\n",
            "sum invariant 's' 'where' value of 'a' must be a string",
        ),
        (SUM_HEAD + TARGET + 'where = "x"\n', "sum invariant 's' field 'where' must be a table"),
        ('[[bound]]\nname = "b"\nfield = "x"\n', "bound invariant 'b' needs 'min', 'max' or both"),
        (
            '[[bound]]\nname = "b"\nfield = "x"\nmin = 2\nmax = 1\n',
            "bound invariant 'b' has min 2 above max 1",
        ),
        (
            '[[bound]]\nname = "b"\nfield = "x"\nmin = 1.0\n',
            "bound invariant 'b' field 'min' must be an integer",
        ),
        (
            '[[bound]]\nname = "b"\nfield = "x"\nmin = true\n',
            "bound invariant 'b' field 'min' must be an integer",
        ),
        (
            '[[rule]]\nname = "r"\nexpr = "record.keys()"\n',
            "rule invariant 'r': expr 'record.keys()' uses attribute",
        ),
        (
            '[[rule]]\nname = "r"\nexpr = "(1).__class__"\n',
            "rule invariant 'r': expr '(1).__class__' uses attribute",
        ),
        (
            '[[rule]]\nname = "r"\nexpr = "__builtins__"\n',
            "rule invariant 'r': expr '__builtins__' uses the name",
        ),
        (
            '[[rule]]\nname = "r"\nexpr = "__import__(\'os\')"\n',
            "rule invariant 'r': expr \"__import__('os')\" uses",
        ),
        (
            '[[rule]]\nname = "r"\nexpr = "import os"\n',
            "rule invariant 'r': expr 'import os' is not a Python expression",
        ),
        (
            '[[rule]]\nname = "r"\nexpr = "(lambda: 1)()"\n',
            "rule invariant 'r': expr '(lambda: 1)()' uses lambda",
        ),
        (
            '[[rule]]\nname = "r"\nexpr = "open(\'x\')"\n',
            "rule invariant 'r': expr \"open('x')\" calls something other",
        ),
        ('[[rule]]\nname = "r"\nexpr = "len(*a)"\n', "rule invariant 'r': expr 'len(*a)' uses Starred"),
        (
            '[[rule]]\nname = "r"\nexpr = "max(**a)"\n',
            "rule invariant 'r': expr 'max(**a)' passes **arguments",
        ),
        ('[[rule]]\nname = "r"\nexpr = "(x := 1)"\n', "rule invariant 'r': expr '(x := 1)' uses NamedExpr"),
        ('[[rule]]\nname = "r"\nexpr = "f\'{a}\'"\n', "rule invariant 'r': expr \"f'{a}'\" uses JoinedStr"),
        ('[[rule]]\nname = "r"\nexpr = "{1: 2}"\n', "rule invariant 'r': expr '{1: 2}' uses Dict"),
        (
            '[[rule]]\nname = "r"\nexpr = "len(x, __y=1)"\n',
            "rule invariant 'r': expr 'len(x, __y=1)' uses the name",
        ),
        ('[[rule]]\nname = "r"\n', "rule invariant 'r' lacks the field 'expr'"),
        (
            '[[rule]]\nname = "r"\nexpr = "1"\n[[bound]]\nname = "r"\nfield = "x"\nmin = 0\n',
            "bound invariant 'r'",
        ),
        ('[[rule]]\nexpr = "1"\n', "[[rule]] number 1 needs a 'name'"),
        ('[rule]\nname = "r"\nexpr = "1"\n', "'rule' must be an array of tables, written [[rule]]"),
        ('[[check]]\nname = "c"\n', "the file has unknown field 'check'"),
        ("", "declares no invariant"),
    ],
)
def test_malformed_files_are_refused_naming_the_invariant(body: str, expected: str) -> None:
    with pytest.raises(RecordError) as caught:
        parse("version = 1\n" + body)
    message = str(caught.value)
    assert message.startswith("invariants file test.toml: ")
    assert expected in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[[rule]]\nname = "r"\nexpr = "1"\n', "lacks 'version = 1'"),
        ('version = 2\n[[rule]]\nname = "r"\nexpr = "1"\n', "version 2 is newer than this Lifeboat reads"),
        ('version = "1"\n', "'version' is '1', not a format version"),
        ('version = 1\nlimit = -1\n[[rule]]\nname = "r"\nexpr = "1"\n', "'limit' is -1"),
        ("version = 1\nversion = 1\n", "not valid TOML"),
    ],
)
def test_file_level_problems(text: str, expected: str) -> None:
    with pytest.raises(RecordError, match="test.toml") as caught:
        parse(text)
    assert expected in str(caught.value)


def test_load_invariants_bounds_the_read(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    big.write_text(CONSERVATION + "#" * MAX_FILE_BYTES)
    with pytest.raises(RecordError, match="big.toml is larger than"):
        load_invariants(big)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"version = 1\n\xff\n")
    with pytest.raises(RecordError, match="binary.toml is not UTF-8"):
        load_invariants(binary)
    with pytest.raises(StorageError, match="absent.toml"):
        load_invariants(tmp_path / "absent.toml")
    good = tmp_path / "good.toml"
    good.write_text(CONSERVATION)
    assert load_invariants(good) == parse_invariants(CONSERVATION, where=str(good))


# --- properties -----------------------------------------------------------------------------------

ASSETS = ["USDC", "DAI", "ETH", "WBTC"]
amounts = st.integers(min_value=0, max_value=10**30)
balances = st.dictionaries(st.sampled_from(ASSETS), amounts.map(str) | amounts, max_size=4)


@SETTINGS
@given(
    holdings=st.lists(balances, max_size=30),
    offsets=st.dictionaries(st.sampled_from(ASSETS), st.sampled_from([0, 0, 0, 1, -1, 10**40])),
)
def test_conservation_passes_iff_every_supply_equals_the_sum(
    holdings: list[dict[str, Any]], offsets: dict[str, int]
) -> None:
    records = [account(f"acct:{i:04}", **held) for i, held in enumerate(holdings)]
    totals = {asset: sum(int(held.get(asset, 0)) for held in holdings) for asset in ASSETS}
    held_assets = {asset for held in holdings for asset in held}
    records += [supply(asset, str(totals[asset] + offsets.get(asset, 0))) for asset in ASSETS]
    report = check(parse(CONSERVATION), records)
    assert report.passed == all(offset == 0 for offset in offsets.values())
    assert {v.key for v in report.results[0].examples} == {f"supply:{a}" for a, o in offsets.items() if o}
    del records[-len(ASSETS) :]  # without supply records every held asset lacks its target
    missing = check(parse(CONSERVATION), records).results[0]
    assert missing.violations == len(held_assets)


values: st.SearchStrategy[Any] = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**6),
    st.integers(min_value=-(10**6), max_value=10**6).map(str),
    st.sampled_from(["1.5", "", "x", " 1", None, True, 2.5, [], {}]),
)
records_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "kind": st.sampled_from(["account", "account", "supply", "market"]),
            "balances": st.one_of(st.dictionaries(st.sampled_from(ASSETS), values, max_size=3), values),
            "positions": st.one_of(
                st.lists(
                    st.one_of(
                        st.fixed_dictionaries(
                            {"market": st.sampled_from(["ETH", "BTC", 3, None]), "collateral": values}
                        ),
                        values,
                    ),
                    max_size=3,
                ),
                values,
            ),
            "amount": values,
            "vault": values,
            "nonce": values,
        }
    ),
    max_size=25,
)
EVERYTHING = CONSERVATION + (SOLVENCY + BOUNDS + RULES).replace("version = 1", "")


def keyed(generated: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = ["supply:USDC", "supply:DAI", "market:ETH", "market:BTC", "market:3"]
    return [{"key": keys[i] if i < len(keys) else f"acct:{i:03}", **r} for i, r in enumerate(generated)]


@SETTINGS
@given(
    generated=records_strategy, order=st.randoms(use_true_random=False), limit=st.sampled_from([0, 1, 2, 10])
)
def test_feed_order_does_not_change_the_report(
    generated: list[dict[str, Any]], order: Any, limit: int
) -> None:
    invariants = parse(EVERYTHING.replace("version = 1", f"version = 1\nlimit = {limit}", 1))
    records = keyed(generated)
    shuffled = list(records)
    order.shuffle(shuffled)
    report = check(invariants, records)
    assert check(invariants, shuffled) == report
    assert InvariantReport.from_json(orjson.loads(orjson.dumps(report.to_json()))) == report


def reference_conservation(records: list[dict[str, Any]]) -> tuple[bool, int]:
    """A slow, obvious model of CONSERVATION: (passed, violations)."""

    def integer(value: Any) -> int | None:
        if type(value) is int:
            return value
        if isinstance(value, str) and value.lstrip("-").isascii() and value.lstrip("-").isdigit():
            return int(value) if value.count("-") <= 1 and not value.startswith("--") else None
        return None

    sums: dict[str, int] = {}
    targets: dict[str, int | None] = {}
    bad_records = 0
    for record in records:
        if record["key"].startswith("supply:"):
            targets[record["key"][7:]] = integer(record["amount"]) if "amount" in record else None
        if record["kind"] != "account" or "balances" not in record:
            continue
        if not isinstance(record["balances"], dict):
            bad_records += 1
            continue
        parsed = {asset: integer(v) for asset, v in record["balances"].items()}
        bad_records += any(v is None for v in parsed.values())
        for asset, v in parsed.items():
            if v is not None:
                sums[asset] = sums.get(asset, 0) + v
    bad_groups = sum(
        1
        for group in sums.keys() | targets.keys()
        if targets.get(group) is None or targets[group] != sums.get(group, 0)
    )
    return bad_records + bad_groups == 0, bad_records + bad_groups


@SETTINGS
@given(generated=records_strategy)
def test_conservation_agrees_with_a_reference_model(generated: list[dict[str, Any]]) -> None:
    records = keyed(generated)
    conservation = check(parse(CONSERVATION), records).results[0]
    assert (conservation.passed, conservation.violations) == reference_conservation(records)


# --- bounds of the rule sandbox ------------------------------------------------------------------


@contextmanager
def _within(seconds: float) -> Iterator[None]:
    """Fail (rather than hang) when the body runs longer than ``seconds``."""

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"a rule ran over {seconds} s: the sandbox did not bound it")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _rule_file(expr: str) -> str:
    return f'version = 1\n[[rule]]\nname = "bomb"\nexpr = {json.dumps(expr)}\n'


BOMB_RECORD = {"key": "acct:1", "x": 2, "n": 10**10, "s": "ab" * 1500, "items": [1, 2, 3]}


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("x ** x ** x ** 99", "a power would pass 65536 bits"),  # the two examples
        ("'a' * 10**10", "a repetition would have 10000000000 items"),
        ("'a' * n", "a repetition would have 10000000000 items"),
        ("[0] * n", "a repetition would have"),
        ("n * [0]", "a repetition would have"),
        ("9 ** 9 ** 9", "a power would pass"),
        ("(x << n) > 0", "a shift would pass"),
        ("(10 ** 15000) * (10 ** 15000) > 0", "a product would pass"),
        ("len([[c for c in s] for d in s]) > 0", "more than 1048576 steps"),  # nested comprehensions
        ("any(a == 'z' for a in s for b in s for c in s)", "more than 1048576 steps"),
        ("len([[0] * 100000 for c in s]) > 0", "builds more than 8388608 items"),
        ("sum([[0] * 1000] * 10000, []) == []", "items"),
        ("str([[0] * 1000000] * 1000000) != ''", "str() would print more than 1048576 characters"),
        ("len({c for c in s} | {c for c in s}) > 0 and len(s * 300 + s * 300) > 0", "a concatenation"),
        ("len([(s * 300)[1:] for c in s]) > 0", "builds more than 8388608 items"),
        ("round(5, -n) == 0", "rounds to -10000000000 digits"),
        ("'%*d' % (n, 1) != ''", "formats a string with %"),
    ],
)
def test_a_rule_over_a_bound_is_an_error_naming_it(expr: str, reason: str) -> None:
    invariants = parse(_rule_file(expr))
    with _within(60), pytest.raises(RecordError) as caught:
        check(invariants, [BOMB_RECORD])
    message = str(caught.value)
    assert message.startswith(
        "rule invariant 'bomb' went over a limit of the rule sandbox on the record 'acct:1'"
    )
    assert reason in message


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("1 + " * 2100 + "1", "characters long, over the limit of 4096"),
        ("-" * 3000 + "1", "nest"),
        ("not " * 150 + "x", "deep, over the limit of 100"),
        ("[" + ", ".join(["x"] * 1200) + "]", "syntax nodes, over the limit of 1000"),
        ("[" * 150 + "]" * 150, "deep, over the limit of 100"),
        ("range(10**12)", "calls something other than the functions"),  # no range(): no huge ranges
    ],
)
def test_rule_expressions_are_bounded_when_parsed(expr: str, reason: str) -> None:
    with _within(60), pytest.raises(RecordError) as caught:
        parse(_rule_file(expr))
    assert "rule invariant 'bomb': " in str(caught.value) and reason in str(caught.value)


def test_a_deep_expression_is_named_as_deep_whatever_the_stack_allows() -> None:
    # With room on the stack the expression parses and is also over the node limit; the message
    # must still name its depth (it once depended on whether ast.parse ran out of stack).
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 50_000))
    try:
        with pytest.raises(RecordError, match="nests 3002 deep"):
            parse(_rule_file("-" * 3000 + "1"))
    finally:
        sys.setrecursionlimit(limit)


def test_rules_within_the_bounds_still_work() -> None:
    text = _rule_file(
        "x ** 1000 > 0 and len('ab' * 1000) == 2000 and sum(i for i in items) == 6 and "
        "str(items) == '[1, 2, 3]' and s[:2] == 'ab' and round(2.5) == 2 and 7 % 4 == 3 and "
        "len({c for c in s} | {c for c in 'z'}) == 3 and sum([[1], [2]], []) == [1, 2] and min(items) == 1"
    )
    report = check(parse(text), [BOMB_RECORD])
    assert report.passed, report.to_json()


_ATOMS = st.sampled_from(
    [
        "x",
        "n",
        "s",
        "items",
        "key",
        "record['x']",
        "0",
        "1",
        "2",
        "7",
        "99",
        "-3",
        "2.5",
        "'ab'",
        "[1, 2]",
        "True",
    ]
)


def _grow(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    operators = ["+", "-", "*", "**", "%", "//", "/", "<<", ">>", "|", "&", "^", "==", "<", "in", "and", "or"]
    functions = ["len", "int", "abs", "str", "float", "round", "min", "max", "sum", "any", "all"]
    return st.one_of(
        st.tuples(inner, st.sampled_from(operators), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        inner.map(lambda e: f"(-{e})") | inner.map(lambda e: f"(not {e})"),
        st.tuples(st.sampled_from(functions), inner).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(inner, inner).map(lambda t: f"round({t[0]}, {t[1]})"),
        st.tuples(inner, inner).map(lambda t: f"[{t[0]} for v in {t[1]}]"),
        st.tuples(inner, inner, inner).map(lambda t: f"sum({t[0]} for v in {t[1]} for w in {t[2]})"),
        st.tuples(inner, inner).map(lambda t: f"{t[0]}[{t[1]}:]"),
        st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
        st.lists(inner, max_size=3).map(lambda items: "[" + ", ".join(items) + "]"),
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=st.recursive(_ATOMS, _grow, max_leaves=20))
def test_random_rules_finish_within_the_bounds_or_raise_the_documented_error(expr: str) -> None:
    code = sandbox.compile_rule(expr, _refuse)
    record = {"key": "k", "x": 3, "n": 10**9, "s": "ab" * 100, "items": [1, 2, 3]}
    with _within(60):
        try:
            sandbox.evaluate_rule(code, "k", record)
        except sandbox.RuleLimit as exc:  # the documented error, saying which bound
            assert str(exc)
        except (MemoryError, RecursionError, TimeoutError):
            raise
        except Exception as exc:  # an ordinary error of the expression: a violation of the record
            assert type(exc).__module__ == "builtins", repr(exc)


def _refuse(reason: str) -> NoReturn:
    raise AssertionError(reason)
