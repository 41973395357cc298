"""``lifeboat state ...`` end to end: snapshots of ledgers, invariants, rollback, proofs, journals.

Every command runs in-process through the ``cli`` fixture against a 3-of-5 repository of local
stores (created with the cheap test KDF), on small ledgers made by ``shared/bench/gen_ledger.py``.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import CliResult, CliRunner
from conftest_tools import in_ci, require_database_url
from lifeboat.state import prolly
from lifeboat.store.backends import open_backend
from lifeboat.store.keyfile import TEST_KDF
from lifeboat.store.repository import Repository

GEN_LEDGER = Path(__file__).resolve().parents[2] / "shared" / "bench" / "gen_ledger.py"
INVARIANTS = Path(__file__).resolve().parents[1] / "examples" / "ledger-invariants.toml"
PASSPHRASE = "state tests passphrase"
ACCOUNTS = 300
#: The sums of every ledger snapshot here: two fields, as a proof's size budget assumes.
LEDGER_SUMS = ("balances.USDC", "amount")


# --- fixtures and helpers ----------------------------------------------------------------------


def _need_generator() -> None:
    if not GEN_LEDGER.is_file():
        reason = f"gen_ledger.py not found at {GEN_LEDGER}"
        if in_ci():
            pytest.fail(f"{reason}; CI=true, so a missing generator is an error", pytrace=False)
        pytest.skip(reason)


def gen_ledger(out: Path, *args: str | int | Path) -> Path:
    _need_generator()
    subprocess.run([sys.executable, str(GEN_LEDGER), str(out), *map(str, args)], check=True)
    return out


@pytest.fixture(scope="module")
def ledgers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The issue's three ledgers: healthy, 1% changed, and the changed one exploited (read-only)."""
    root = tmp_path_factory.mktemp("ledgers")
    healthy = gen_ledger(root / "healthy.jsonl", "--accounts", ACCOUNTS)
    changed = gen_ledger(root / "changed.jsonl", "--from", healthy, "--change", "0.01")
    exploited = gen_ledger(root / "exploited.jsonl", "--from", changed, "--exploit")
    for path in (healthy, changed, exploited):
        path.chmod(0o444)
    return {"healthy": healthy, "changed": changed, "exploited": exploited}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    stores = [tmp_path / f"store{i}" for i in range(5)]
    monkeypatch.setenv("LIFEBOAT_STORES", " ".join(map(str, stores)))
    monkeypatch.setenv("LIFEBOAT_REPO_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return {"root": tmp_path, **{f"s{i}": s for i, s in enumerate(stores)}}


@pytest.fixture
def repo(cli: CliRunner, env: dict[str, Path]) -> dict[str, Path]:
    """An empty 3-of-5 repository (the test KDF keeps every command's key derivation cheap)."""
    stores = [open_backend(str(env[f"s{i}"]), create=True) for i in range(5)]
    Repository.init(stores, PASSPHRASE, k=3, kdf=TEST_KDF).close()
    return env


def ok(result: CliResult) -> CliResult:
    assert result.code == 0, result.out + result.err
    return result


def one_line_error(result: CliResult, *needles: str, code: int = 1, warnings: bool = False) -> str:
    """The command failed with ``code`` and one ``lifeboat: error:`` line naming ``needles``.

    With ``warnings``, other lines (warnings) may come before the error; else it is all there is.
    """
    assert result.code == code, result.out + result.err
    assert "Traceback" not in result.out + result.err
    lines = result.err.strip().splitlines()
    assert lines and lines[-1].startswith("lifeboat: error: "), result.err
    assert len(lines) == 1 or (warnings and not any(x.startswith("lifeboat: error") for x in lines[:-1])), (
        result.err
    )
    for needle in needles:
        assert needle in lines[-1], (needle, lines[-1])
    return lines[-1]


def snapshot(
    cli: CliRunner, source: Path | str, *extra: str | Path, sums: tuple[str, ...] = LEDGER_SUMS
) -> CliResult:
    sum_args = [arg for field in sums for arg in ("--sum", field)]
    return cli("--json", "state", "snapshot", source, "--key", "key", "--no-progress", *sum_args, *extra)


def read_jsonl(path: Path) -> dict[str, dict[str, Any]]:
    with path.open("rb") as handle:
        return {doc["key"]: doc for doc in map(json.loads, handle)}


def raw_lines(path: Path) -> dict[str, bytes]:
    return {json.loads(line)["key"]: line for line in path.read_bytes().splitlines()}


def sum_of(document: dict[str, Any], path: str) -> int:
    node: Any = document
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return 0
        node = node[part]
    return int(node)


def python_diff(
    before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]], sums: tuple[str, ...]
) -> dict[str, Any]:
    """What ``StateDiff.to_json`` should say from ``before`` to ``after`` (examples: all keys)."""
    added = sorted(after.keys() - before.keys())
    removed = sorted(before.keys() - after.keys())
    changed = sorted(k for k in before.keys() & after.keys() if before[k] != after[k])
    deltas = {
        field: str(
            sum(sum_of(doc, field) for doc in after.values())
            - sum(sum_of(doc, field) for doc in before.values())
        )
        for field in sums
    }
    examples = sorted(
        [("added", k) for k in added] + [("removed", k) for k in removed] + [("changed", k) for k in changed],
        key=lambda pair: pair[1].encode(),
    )
    return {
        "added": len(added),
        "removed": len(removed),
        "changed": len(changed),
        "sum_deltas": deltas,
        "examples": [{"change": kind, "key": key} for kind, key in examples],
    }


def victim_asset(changed: Path, exploited: Path) -> str:
    """The asset whose balance ``gen_ledger --exploit`` inflated."""
    before, after = read_jsonl(changed), read_jsonl(exploited)
    [asset] = {
        str(asset)
        for key, doc in after.items()
        if doc["kind"] == "account"
        for asset, amount in doc["balances"].items()
        if int(amount) - int(before[key]["balances"][asset]) == 10**30
    }
    return asset


def frost_sign(
    cli: CliRunner, keys: Path, message: Path, work: Path, signers: tuple[int, ...] = (1, 3)
) -> Path:
    """Run a FROST(Ed25519) signing ceremony over the bytes of ``message``; the signature file."""
    for i in signers:
        ok(cli("frost", "commit", "-k", keys / f"key-package-{i}.json", "-d", work / f"p{i}"))
    commitments = [work / f"p{i}" / f"commitment-{i}.json" for i in signers]
    ok(cli("frost", "package", *commitments, "-m", message, "-o", work / "pkg.json"))
    for i in signers:
        [nonces] = (work / f"p{i}").glob("nonces-*.json")
        ok(
            cli(
                "frost", "sign", "-k", keys / f"key-package-{i}.json", "--nonces", nonces,
                "-p", work / "pkg.json", "-o", work / f"share-{i}.json",
            )
        )  # fmt: skip
    shares = [work / f"share-{i}.json" for i in signers]
    signature = work / "sig.json"
    ok(
        cli(
            "frost", "aggregate", *shares, "-p", work / "pkg.json",
            "--public", keys / "public-key-package.json", "-o", signature,
        )
    )  # fmt: skip
    return signature


# --- 1. the scenario ------------------------------------------------------------------


def test_exploit_is_flagged_and_rollback_restores_the_changed_ledger(
    cli: CliRunner, repo: dict[str, Path], ledgers: dict[str, Path]
) -> None:
    asset = victim_asset(ledgers["changed"], ledgers["exploited"])
    sums = (f"balances.{asset}", "amount")
    ids = {}
    for label in ("healthy", "changed"):
        result = ok(snapshot(cli, ledgers[label], "--name", "ledger", "--invariants", INVARIANTS, sums=sums))
        assert result.json()["invariants_passed"] is True
        ids[label] = result.json()["id"]
    bad = snapshot(cli, ledgers["exploited"], "--name", "ledger", "--invariants", INVARIANTS, sums=sums)
    assert bad.code == 3, bad.out + bad.err
    assert bad.json()["invariants_passed"] is False and bad.json()["signed"] is True
    ids["exploited"] = bad.json()["id"]

    # The stored statement (the manifest) records which invariant failed, at the supply record.
    shown = ok(cli("--json", "state", "show", ids["exploited"][:12])).json()
    report = shown["statement"]["invariants"]
    assert report["passed"] is False
    results = {r["name"]: r for r in report["results"]}
    assert set(results) == {"conservation", "solvency", "no-negative-balance", "account-sane"}
    assert [name for name, r in results.items() if not r["passed"]] == ["conservation"]
    assert results["conservation"]["violations"] == 1
    [example] = results["conservation"]["examples"]
    assert example["key"] == f"supply:{asset}"
    assert "+1000000000000000000000000000000" in example["detail"]
    assert shown["signature_problem"] is None
    listed = ok(cli("--json", "state", "list")).json()["snapshots"]
    assert [s["id"] for s in listed] == [ids["healthy"], ids["changed"], ids["exploited"]]
    assert [s["invariants_passed"] for s in listed] == [True, True, False]

    live = repo["root"] / "live" / "live.jsonl"
    live.parent.mkdir()
    shutil.copyfile(ledgers["exploited"], live)
    expected_diff = python_diff(read_jsonl(ledgers["changed"]), read_jsonl(live), sums)
    assert expected_diff["changed"] >= 1 and expected_diff["sum_deltas"][f"balances.{asset}"] == str(10**30)

    dry = ok(cli("--json", "state", "rollback", "--target", live, "--dry-run"))
    assert dry.json()["snapshot"] == ids["changed"]
    assert dry.json()["dry_run"] is True and dry.json()["records_written"] == 0
    assert dry.json()["skipped"] == [{"id": ids["exploited"], "why": "invariants failed: conservation"}]
    assert live.read_bytes() == ledgers["exploited"].read_bytes()
    assert sorted(p.name for p in live.parent.iterdir()) == ["live.jsonl"]
    human = ok(cli("state", "rollback", "--target", live, "--dry-run"))
    assert f"would roll back {live} to {ids['changed'][:8]}" in human.out
    assert live.read_bytes() == ledgers["exploited"].read_bytes()

    done = ok(cli("--json", "state", "rollback", "--target", live))
    body = done.json()
    assert body["snapshot"] == ids["changed"] and body["dry_run"] is False
    assert body["records_written"] == len(read_jsonl(ledgers["changed"]))
    assert body["current_unreadable"] is None
    reported = body["current_vs_snapshot"]
    assert reported["added"] == expected_diff["added"] == 0
    assert reported["removed"] == expected_diff["removed"] == 0
    assert reported["changed"] == expected_diff["changed"]
    assert reported["sum_deltas"] == expected_diff["sum_deltas"]
    assert reported["examples"] == expected_diff["examples"][:20]
    assert f"skipping {ids['exploited'][:8]}" in done.err and "invariants failed: conservation" in done.err
    assert live.read_bytes() == ledgers["changed"].read_bytes()
    assert sorted(p.name for p in live.parent.iterdir()) == ["live.jsonl"]

    # Rolled back, the live ledger passes again.
    ok(cli("state", "check", live, "--key", "key", "--invariants", INVARIANTS, "--no-progress"))


# --- 2. check without a repository ------------------------------------------------------------


def test_check_needs_no_repository(
    cli: CliRunner, ledgers: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LIFEBOAT_STORES", raising=False)
    monkeypatch.delenv("LIFEBOAT_REPO_PASSPHRASE", raising=False)
    args = ("--key", "key", "--invariants", INVARIANTS, "--no-progress")
    healthy = ok(cli("--json", "state", "check", ledgers["healthy"], *args)).json()
    assert healthy["passed"] is True and len(healthy["results"]) == 4
    assert "all invariants hold" in ok(cli("state", "check", ledgers["healthy"], *args)).out

    asset = victim_asset(ledgers["changed"], ledgers["exploited"])
    bad = cli("--json", "state", "check", ledgers["exploited"], *args)
    assert bad.code == 1, bad.out + bad.err
    results = {r["name"]: r for r in bad.json()["results"]}
    assert bad.json()["passed"] is False
    assert not results["conservation"]["passed"] and results["solvency"]["passed"]
    assert [e["key"] for e in results["conservation"]["examples"]] == [f"supply:{asset}"]
    human = cli("state", "check", ledgers["exploited"], *args)
    assert human.code == 1
    assert "FAIL sum   conservation: 1 violation(s)" in human.out and "INVARIANTS VIOLATED" in human.out


@pytest.mark.parametrize("expr", ["x ** x ** x ** 99", "'a' * 10**10"])
def test_check_stops_a_rule_that_goes_over_the_sandbox_bounds(
    cli: CliRunner, tmp_path: Path, expr: str
) -> None:
    ledger = tmp_path / "tiny.jsonl"
    ledger.write_text('{"key":"a","x":2}\n{"key":"b","x":3}\n')
    rules = tmp_path / "rules.toml"
    rules.write_text(f'version = 1\n[[rule]]\nname = "bomb"\nexpr = "{expr}"\n')
    result = cli("state", "check", ledger, "--key", "key", "--invariants", rules, "--no-progress")
    one_line_error(result, "rule invariant 'bomb' went over a limit", "record 'a'")


def test_human_check_output_prints_keys_as_they_are(cli: CliRunner, tmp_path: Path) -> None:
    ledger = tmp_path / "tiny.jsonl"
    ledger.write_text(
        '{"key":"acct:1","kind":"account","nonce":0,"balances":{"LINK":"5"},"positions":[]}\n'
        '{"key":"supply:LINK","kind":"supply","asset":"LINK","amount":"4"}\n'
    )
    result = cli("state", "check", ledger, "--key", "key", "--invariants", INVARIANTS, "--no-progress")
    assert result.code == 1
    assert "supply:LINK: sum of balances.* for group LINK is 5" in result.out, result.out


# --- 3. round trips ---------------------------------------------------------------------------


def test_restore_latest_jsonl_is_byte_identical(
    cli: CliRunner, repo: dict[str, Path], ledgers: dict[str, Path]
) -> None:
    first = ok(snapshot(cli, ledgers["healthy"], "--name", "ledger")).json()
    ok(snapshot(cli, ledgers["changed"], "--name", "ledger"))
    out = repo["root"] / "out.jsonl"
    restored = ok(cli("--json", "state", "restore", "--target", out)).json()
    assert restored["records"] == len(read_jsonl(ledgers["changed"]))
    assert out.read_bytes() == ledgers["changed"].read_bytes()
    ok(cli("state", "restore", "--snapshot", first["short_id"], "--target", out))
    assert out.read_bytes() == ledgers["healthy"].read_bytes()
    key = next(iter(read_jsonl(ledgers["healthy"])))
    got = ok(cli("--json", "state", "get", key, "--snapshot", first["short_id"])).json()
    assert got["value"].encode() == raw_lines(ledgers["healthy"])[key]
    missing = cli("state", "get", "acct:nope")
    one_line_error(missing, "no record with key 'acct:nope'")


def test_csv_snapshot_restores_the_same_rows(cli: CliRunner, repo: dict[str, Path]) -> None:
    rows = [{"key": f"k{n:04}", "owner": f'owner {n}, "q"', "amount": str(n * 1000)} for n in range(250)]
    source = repo["root"] / "accounts.csv"
    with source.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["key", "owner", "amount"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    made = ok(snapshot(cli, source, sums=("amount",))).json()
    assert made["name"] == "accounts" and made["records"] == 250
    assert made["totals"] == {"amount": str(sum(n * 1000 for n in range(250)))}
    out = repo["root"] / "restored.csv"
    ok(cli("state", "restore", "--target", out))
    with out.open(newline="") as handle:
        assert list(csv.DictReader(handle)) == rows
    assert out.read_bytes() == source.read_bytes()


def _sqlite_rows(path: Path, table: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as connection:
        found = connection.execute(f'SELECT * FROM "{table}" ORDER BY id').fetchall()  # noqa: S608
    connection.close()
    return found


def test_sqlite_table_snapshot_restores_the_same_rows(cli: CliRunner, repo: dict[str, Path]) -> None:
    db = repo["root"] / "state.db"
    rows = [(n, f"owner {n}", n * 7, None if n % 5 else "flag") for n in range(1, 121)]
    with sqlite3.connect(db) as connection:
        connection.execute(
            "CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT, amount INTEGER, note TEXT)"
        )
        connection.executemany("INSERT INTO accounts VALUES (?, ?, ?, ?)", rows)
    connection.close()
    url = f"sqlite:///{db}"
    made = ok(
        cli("--json", "state", "snapshot", url, "--table", "accounts", "--key", "id", "--sum", "amount",
            "--no-progress")
    ).json()  # fmt: skip
    assert made["name"] == "accounts" and made["records"] == 120
    assert made["totals"] == {"amount": str(sum(n * 7 for n in range(1, 121)))}
    other = repo["root"] / "other.db"
    ok(cli("state", "restore", "--target", f"sqlite:///{other}", "--table", "accounts"))
    assert _sqlite_rows(other, "accounts") == rows
    # Into the source table itself, after damage.
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE accounts SET amount = 0 WHERE id < 10")
        connection.execute("DELETE FROM accounts WHERE id > 100")
    connection.close()
    ok(cli("state", "restore", "--target", url, "--table", "accounts"))
    assert _sqlite_rows(db, "accounts") == rows
    # A snapshot taken without invariants is never a rollback target.
    refused = cli("state", "rollback", "--target", url, "--table", "accounts")
    one_line_error(refused, "no record snapshot passes", warnings=True)
    assert "its invariants were not checked" in refused.err
    assert _sqlite_rows(db, "accounts") == rows


def test_jsonl_restored_into_sqlite_reads_back_the_same_records(
    cli: CliRunner, repo: dict[str, Path]
) -> None:
    source = repo["root"] / "nested.jsonl"
    source.write_text('{"key":"a","meta":{"x":1}}\n{"key":"b","meta":{"x":2}}\n')
    ok(snapshot(cli, source, "--name", "nested", sums=()))
    url = f"sqlite:///{repo['root'] / 'nested.db'}"
    ok(cli("state", "restore", "--name", "nested", "--target", url, "--table", "t"))
    again = ok(
        cli(
            "--json", "state", "snapshot", url, "--table", "t", "--key", "key", "--name", "t", "--no-progress"
        )
    ).json()
    assert (
        ok(cli("--json", "state", "get", "a", "--name", "t")).json()["value"] == '{"key":"a","meta":{"x":1}}'
    )
    first = ok(cli("--json", "state", "show", "--name", "nested")).json()
    assert again["root"] == first["root"]


@pytest.fixture
def pg_url() -> str:
    return require_database_url()


@pytest.fixture
def pg_table(pg_url: str) -> Iterator[str]:
    import sqlalchemy as sa

    name = f"lifeboat_state_cli_{uuid.uuid4().hex[:12]}"
    yield name
    engine = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as connection:
        connection.execute(sa.text(f'DROP TABLE IF EXISTS "{name}"'))
    engine.dispose()


def test_postgresql_table_snapshot_and_rollback_into_the_table(
    cli: CliRunner, repo: dict[str, Path], pg_url: str, pg_table: str
) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
    rows = [(n, f"ö{n}", 10**30 + n, n % 2 == 0) for n in range(1, 201)]

    def table_rows() -> list[tuple[Any, ...]]:
        with engine.connect() as connection:
            found = connection.execute(sa.text(f'SELECT * FROM "{pg_table}" ORDER BY id'))  # noqa: S608
            return [tuple(row) for row in found]

    with engine.begin() as connection:
        connection.execute(
            sa.text(f'CREATE TABLE "{pg_table}" (id integer PRIMARY KEY, owner text, amount numeric(40, 0), '
                    "active boolean)")
        )  # fmt: skip
        connection.execute(
            sa.text(f'INSERT INTO "{pg_table}" VALUES (:id, :owner, :amount, :active)'),  # noqa: S608
            [{"id": i, "owner": o, "amount": a, "active": b} for i, o, a, b in rows],
        )
    invariants = repo["root"] / "pg-invariants.toml"
    invariants.write_text(
        'version = 1\n[[bound]]\nname = "bounded"\nfield = "amount"\nmin = 0\nmax = 2000000000000000000000000000000\n'
    )
    try:
        made = ok(
            cli("--json", "state", "snapshot", pg_url, "--table", pg_table, "--key", "id", "--sum", "amount",
                "--invariants", invariants, "--no-progress")
        ).json()  # fmt: skip
        assert made["name"] == pg_table and made["records"] == 200 and made["invariants_passed"] is True
        assert made["source"]["url"] == pg_url and made["totals"] == {"amount": str(sum(r[2] for r in rows))}
        with engine.begin() as connection:
            connection.execute(sa.text(f'UPDATE "{pg_table}" SET amount = amount + 5 WHERE id <= 3'))  # noqa: S608
            connection.execute(sa.text(f'DELETE FROM "{pg_table}" WHERE id = 150'))  # noqa: S608
            connection.execute(sa.text(f"INSERT INTO \"{pg_table}\" VALUES (999, 'mallory', 1, true)"))  # noqa: S608
        back = ok(cli("--json", "state", "rollback", "--target", pg_url, "--table", pg_table)).json()
        assert back["snapshot"] == made["id"] and back["records_written"] == 200
        diff = back["current_vs_snapshot"]
        assert (diff["added"], diff["removed"], diff["changed"]) == (1, 1, 3)
        assert diff["sum_deltas"] == {"amount": str(3 * 5 - rows[149][2] + 1)}
        assert {e["key"] for e in diff["examples"]} == {"1", "2", "3", "150", "999"}
        assert table_rows() == rows
    finally:
        engine.dispose()


# --- 4. proofs --------------------------------------------------------------------------------


def test_proofs_verify_alone_and_tampering_is_caught(
    cli: CliRunner, repo: dict[str, Path], ledgers: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    ok(snapshot(cli, ledgers["healthy"], "--name", "ledger", "--invariants", INVARIANTS))
    shown = ok(cli("--json", "state", "show")).json()
    root, signer = shown["root"], shown["signer"]["public_key"]
    lines = raw_lines(ledgers["healthy"])
    key = sorted(lines)[len(lines) // 2]
    document = json.loads(lines[key])
    proof = repo["root"] / "proof.json"
    made = ok(cli("state", "prove", key, "-o", proof))
    assert f"inclusion proof for {key!r} written to {proof}" in made.err
    assert ok(cli("state", "prove", key)).out == proof.read_text()
    size = proof.stat().st_size
    print(f"proof bundle for one ledger record with 2 sum fields: {size} bytes")
    assert size < 4096, f"the proof bundle is {size} bytes"
    absent = repo["root"] / "absent.json"
    ok(cli("state", "prove", "acct:0xnot-there", "-o", absent))
    other_key = repo["root"] / "other.key"
    other = ok(cli("--json", "state", "keygen", "-o", other_key)).json()["public_key"]

    # From here on there is no repository at all.
    monkeypatch.delenv("LIFEBOAT_STORES")
    monkeypatch.delenv("LIFEBOAT_REPO_PASSPHRASE")
    checked = ok(cli("--json", "state", "verify-proof", proof, "--root", root)).json()
    assert checked["valid"] is True and checked["present"] is True and checked["key"] == key
    assert checked["value"].encode() == lines[key]
    assert checked["sums"] == {field: str(sum_of(document, field)) for field in LEDGER_SUMS}
    assert checked["root"] == root and checked["records"] == len(lines)
    assert checked["totals"] == shown["totals"] and checked["invariants_passed"] is True
    assert checked["trusted_key"] is False and checked["signer"]["public_key"] == signer
    human = ok(cli("state", "verify-proof", proof))
    assert f"valid: {key!r} is in the 'ledger' state" in human.out and "not pinned" in human.out

    missing = ok(cli("--json", "state", "verify-proof", absent, "--root", root)).json()
    assert missing["present"] is False and missing["value"] is None and missing["key"] == "acct:0xnot-there"
    assert "is NOT in" in ok(cli("state", "verify-proof", absent)).out

    wrong_root = "ab" * 32
    one_line_error(
        cli("state", "verify-proof", proof, "--root", wrong_root),
        f"the proof bundle's statement is for root {root}, not {wrong_root}",
    )
    one_line_error(
        cli("state", "verify-proof", proof, "--root", "xyz"), "--root must be 64 hex digits", code=2
    )
    assert ok(cli("--json", "state", "verify-proof", proof, "--trust", signer)).json()["trusted_key"] is True
    one_line_error(cli("state", "verify-proof", proof, "--trust", other), f"not by the trusted key {other}")

    bundle = json.loads(proof.read_text())

    def tampered(change: Any, name: str) -> Path:
        copy = json.loads(json.dumps(bundle))
        change(copy)
        path = repo["root"] / f"tampered-{name}.json"
        path.write_text(json.dumps(copy))
        return path

    def flip_value(b: dict[str, Any]) -> None:
        value = b["proof"]["records"][0]["value"]
        b["proof"]["records"][0]["value"] = value[:-2] + ("31" if value[-2:] != "31" else "32")

    def bump_sum(b: dict[str, Any]) -> None:
        sums = b["proof"]["records"][0]["sums"]
        sums[0] = str(int(sums[0]) + 1)

    def bump_sibling_sum(b: dict[str, Any]) -> None:
        # A step is [entries, index, (first_key,) siblings]; the first sibling is its hash, then
        # (length byte, big-endian bytes) for its count and each sum: change its first sum's last byte.
        step = b["proof"]["records"][0]["path"][0]
        blob = bytearray(base64.urlsafe_b64decode(step[-1] + "=" * (-len(step[-1]) % 4)))
        at = 32 + 1 + blob[32]
        if blob[at]:
            blob[at + blob[at]] ^= 1
        else:  # a zero sum (length 0) becomes 1
            blob[at : at + 1] = b"\x01\x01"
        step[-1] = base64.urlsafe_b64encode(bytes(blob)).rstrip(b"=").decode()

    def bump_total(b: dict[str, Any]) -> None:
        b["statement"]["totals"][0] = str(int(b["statement"]["totals"][0]) + 1)

    def rename(b: dict[str, Any]) -> None:
        b["statement"]["name"] = "ledger2"

    def flip_signature(b: dict[str, Any]) -> None:
        b["signature"] = ("0" if b["signature"][0] != "0" else "1") + b["signature"][1:]

    cases = {
        "value": (flip_value, "does not verify against its statement's root"),
        "sum": (bump_sum, "does not verify against its statement's root"),
        "sibling-sum": (bump_sibling_sum, "does not verify against its statement's root"),
        "total": (bump_total, "does not verify with its signer's ed25519 key"),
        "name": (rename, "does not verify with its signer's ed25519 key"),
        "signature": (flip_signature, "does not verify with its signer's ed25519 key"),
    }
    for name, (change, needle) in cases.items():
        bad = cli("state", "verify-proof", tampered(change, name))
        line = one_line_error(bad, needle)
        assert line, name
    absence = json.loads(absent.read_text())
    neighbour = absence["proof"]["records"][0]["key"]
    absence["proof"]["key"] = neighbour  # "absent": a key the proof itself holds
    lying = repo["root"] / "lying-absence.json"
    lying.write_text(json.dumps(absence))
    one_line_error(cli("state", "verify-proof", lying), "do not surround")
    inclusion = json.loads(json.dumps(bundle))
    inclusion["proof"]["kind"] = "absence"  # "absent": the key whose record it holds
    lying.write_text(json.dumps(inclusion))
    one_line_error(cli("state", "verify-proof", lying), "holds the record it says is absent")
    # The same changes are caught when the verifier pins the root and the key, too.
    one_line_error(
        cli("state", "verify-proof", tampered(flip_value, "v2"), "--root", root, "--trust", signer)
    )


def test_bad_proof_files_are_named(cli: CliRunner, repo: dict[str, Path]) -> None:
    tiny = repo["root"] / "tiny.jsonl"
    tiny.write_text('{"key":"a","amount":"1"}\n{"key":"b","amount":"2"}\n')
    ok(snapshot(cli, tiny, sums=("amount",)))
    proof = repo["root"] / "proof.json"
    ok(cli("state", "prove", "a", "-o", proof))
    bundle = json.loads(proof.read_text())
    garbage = repo["root"] / "garbage.json"
    garbage.write_text('{"format": "lifeboat-state-proof", "version": 1,')
    one_line_error(cli("state", "verify-proof", garbage), "the proof bundle is not valid JSON")
    newer = repo["root"] / "newer.json"
    newer.write_text(json.dumps(dict(bundle, version=2)))
    one_line_error(
        cli("state", "verify-proof", newer), "version 2 is newer than this Lifeboat reads", "upgrade Lifeboat"
    )
    statement_newer = repo["root"] / "statement-newer.json"
    statement_newer.write_text(json.dumps(dict(bundle, statement=dict(bundle["statement"], version=7))))
    one_line_error(cli("state", "verify-proof", statement_newer), "statement version 7", "upgrade Lifeboat")
    other = repo["root"] / "other.json"
    other.write_text(json.dumps({"format": "something-else", "version": 1}))
    one_line_error(cli("state", "verify-proof", other), "not a Lifeboat state proof bundle")
    extra = repo["root"] / "extra.json"
    extra.write_text(json.dumps(dict(bundle, extra=1)))
    one_line_error(cli("state", "verify-proof", extra), "extra")
    one_line_error(cli("state", "verify-proof", repo["root"] / "nope.json"), "nope.json")


# --- 5. incremental snapshots and diffs -------------------------------------------------------


def test_second_snapshot_writes_only_changed_paths_and_diff_matches(
    cli: CliRunner, repo: dict[str, Path]
) -> None:
    before_path = gen_ledger(repo["root"] / "big.jsonl", "--accounts", 2000)
    after_path = gen_ledger(repo["root"] / "big-changed.jsonl", "--from", before_path, "--change", "0.01")
    sums = ("balances.USDC", "balances.ETH", "amount")
    first = ok(snapshot(cli, before_path, "--name", "big", sums=sums)).json()
    second = ok(snapshot(cli, after_path, "--name", "big", sums=sums)).json()
    new1, new2 = first["written"]["nodes_new"], second["written"]["nodes_new"]
    assert first["written"]["nodes_known"] == 0
    assert new2 * 4 < new1, (new1, new2)
    assert second["written"]["bytes_new"] * 4 < first["written"]["bytes_new"]
    assert second["previous"] == first["id"]

    expected = python_diff(read_jsonl(before_path), read_jsonl(after_path), sums)
    assert expected["changed"] >= 20 and expected["added"] == expected["removed"] == 0
    reported = ok(cli("--json", "state", "diff", first["short_id"], second["short_id"])).json()
    assert (reported["from"], reported["to"]) == (first["id"], second["id"])
    assert {k: reported[k] for k in ("added", "removed", "changed", "sum_deltas")} == {
        k: expected[k] for k in ("added", "removed", "changed", "sum_deltas")
    }
    assert reported["examples"] == expected["examples"][:20]
    assert reported["sum_deltas"]["amount"] != "0"
    human = ok(cli("state", "diff", first["short_id"]))
    assert f"0 added, 0 removed, {expected['changed']} changed" in human.out
    for field, delta in expected["sum_deltas"].items():
        if delta != "0":
            assert f"{field}: {int(delta):+d}" in human.out
    reverse = ok(cli("--json", "state", "diff", second["short_id"], first["short_id"])).json()
    assert reverse["sum_deltas"] == {f: str(-int(d)) for f, d in expected["sum_deltas"].items()}
    same = ok(snapshot(cli, after_path, "--name", "big", sums=sums)).json()
    assert same["written"]["nodes_new"] == 0 and same["root"] == second["root"]
    nothing = ok(cli("--json", "state", "diff", second["short_id"], same["short_id"])).json()
    assert (nothing["added"], nothing["removed"], nothing["changed"], nothing["examples"]) == (0, 0, 0, [])


# --- 6. journals ------------------------------------------------------------------------------


def _as_written(value: dict[str, Any]) -> bytes:
    """A value as ``json.dumps`` writes it in a journal line: a journal keeps it byte for byte."""
    return json.dumps(value).encode()


def _expected_at(base: dict[str, bytes], changes: list[dict[str, Any]], seq: int) -> bytes:
    records = dict(base)
    for change in changes:
        if change["seq"] > seq:
            break
        if change["op"] == "delete":
            records.pop(change["key"], None)
        else:
            records[change["key"]] = _as_written(change["value"])
    return b"".join(records[key] + b"\n" for key in sorted(records, key=str.encode))


def test_journal_append_restore_at_seq_and_apply(
    cli: CliRunner, repo: dict[str, Path], ledgers: dict[str, Path]
) -> None:
    base_path = ledgers["healthy"]
    ok(snapshot(cli, base_path, "--name", "jr"))
    base = raw_lines(base_path)
    docs = read_jsonl(base_path)
    keys = sorted(k for k in docs if k.startswith("acct:"))
    a, b, c = keys[3], keys[10], keys[200]
    new = {
        "key": "acct:0xnew",
        "kind": "account",
        "id": 9,
        "nonce": 0,
        "balances": {"USDC": "5"},
        "positions": [],
    }
    changes: list[dict[str, Any]] = [
        {"seq": 1, "op": "upsert", "key": a, "value": dict(docs[a], nonce=docs[a]["nonce"] + 1)},
        {"seq": 2, "op": "delete", "key": b},
        {"seq": 3, "op": "upsert", "key": "acct:0xnew", "value": new},
        {"seq": 5, "op": "upsert", "key": a, "value": dict(docs[a], balances={"USDC": "77"})},
        {"seq": 8, "op": "upsert", "key": c, "value": dict(docs[c], nonce=0)},
        {"seq": 9, "op": "delete", "key": "acct:0xnew"},
    ]
    journal = repo["root"] / "journal.jsonl"
    journal.write_text("".join(json.dumps(change) + "\n" for change in changes))

    stored = ok(cli("--json", "state", "journal", "append", journal)).json()
    assert stored == {"stored": 6, "skipped": 0, "first": 1, "last": 9, "duplicate": False}
    again = ok(cli("--json", "state", "journal", "append", journal)).json()
    assert again["stored"] == 0 and again["duplicate"] is True
    assert (
        "already stored; nothing to do" in ok(cli("state", "journal", "append", journal, "--name", "jr")).out
    )
    segments = ok(cli("--json", "state", "journal", "list")).json()["segments"]
    assert [(s["first"], s["last"], s["count"]) for s in segments] == [(1, 9, 6)]

    for seq in (0, 1, 2, 4, 5, 9):
        out = repo["root"] / f"at-{seq}.jsonl"
        ok(cli("state", "restore", "--at-seq", seq, "--target", out))
        assert out.read_bytes() == _expected_at(base, changes, seq), f"--at-seq {seq}"
    beyond = repo["root"] / "at-50.jsonl"
    one_line_error(
        cli("state", "restore", "--at-seq", 50, "--target", beyond), "ends at sequence 9, before 50"
    )
    assert not beyond.exists()
    one_line_error(cli("state", "get", a, "--at-seq", 50), "ends at sequence 9, before 50")
    got = ok(cli("--json", "state", "get", a, "--at-seq", 5)).json()
    assert got["value"].encode() == _as_written(changes[3]["value"])
    one_line_error(cli("state", "get", b, "--at-seq", 2), f"no record with key {b!r}")

    applied = ok(cli("--json", "state", "journal", "apply")).json()
    assert applied["sequence"] == 9 and applied["records"] == len(base) - 1
    assert 0 < applied["written"]["nodes_new"] < 15
    expected_file = repo["root"] / "expected.jsonl"
    expected_file.write_bytes(_expected_at(base, changes, 9))
    full = ok(snapshot(cli, expected_file, "--name", "jr-full")).json()
    assert applied["root"] == full["root"] and applied["totals"] == full["totals"]
    out = repo["root"] / "applied.jsonl"
    ok(cli("state", "restore", "--name", "jr", "--target", out))
    assert out.read_bytes() == expected_file.read_bytes()
    # An older point in time still comes from the older snapshot and its journal.
    ok(cli("state", "restore", "--name", "jr", "--at-seq", 2, "--target", out))
    assert out.read_bytes() == _expected_at(base, changes, 2)
    # The same journal once more: everything is in the newest snapshot already.
    after = ok(cli("--json", "state", "journal", "append", journal, "--name", "jr")).json()
    assert after["stored"] == 0 and after["skipped"] == 6
    assert ok(cli("--json", "state", "journal", "apply", "--name", "jr")).json() == {"applied": False}
    assert ok(cli("--json", "state", "verify", "--read-data")).json()["ok"] is True


def _journal_of(
    docs: dict[str, dict[str, Any]], rng: random.Random, first_seq: int = 1
) -> list[dict[str, Any]]:
    """Value changes of many accounts (rewritten in place), an insert and a delete among them."""
    keys = sorted(k for k in docs if k.startswith("acct:"))
    changes: list[dict[str, Any]] = []
    for key in rng.sample(keys, 40):
        changes.append({"op": "upsert", "key": key, "value": dict(docs[key], nonce=rng.randrange(10**6))})
    new = {"key": "acct:0xfeed", "kind": "account", "id": 7, "nonce": 0, "balances": {"ETH": "9"}}
    changes.insert(10, {"op": "upsert", "key": "acct:0xfeed", "value": new})
    changes.insert(25, {"op": "delete", "key": keys[rng.randrange(len(keys))]})
    for seq, change in enumerate(changes, first_seq):
        change["seq"] = seq
    return changes


def test_journal_append_apply_in_one_run_equals_the_two_steps_and_a_full_snapshot(
    cli: CliRunner, repo: dict[str, Path], ledgers: dict[str, Path]
) -> None:
    base_path = ledgers["healthy"]
    ok(snapshot(cli, base_path, "--name", "one"))
    ok(snapshot(cli, base_path, "--name", "two"))
    docs = read_jsonl(base_path)
    changes = _journal_of(docs, random.Random(41))
    journal = repo["root"] / "journal.jsonl"
    journal.write_text("".join(json.dumps(change) + "\n" for change in changes))

    one = ok(cli("--json", "state", "journal", "append", journal, "--apply", "--name", "one")).json()
    assert (one["stored"], one["first"], one["last"], one["applied"]) == (len(changes), 1, len(changes), True)
    ok(cli("state", "journal", "append", journal, "--name", "two"))
    two = ok(cli("--json", "state", "journal", "apply", "--name", "two")).json()
    expected_file = repo["root"] / "expected.jsonl"
    expected_file.write_bytes(_expected_at(raw_lines(base_path), changes, len(changes)))
    full = ok(snapshot(cli, expected_file, "--name", "full")).json()
    made = one["snapshot"]
    assert made["root"] == two["root"] == full["root"]
    for field in ("records", "totals", "sequence"):
        assert made[field] == two[field], field
    # The same nodes: the second run finds every one stored already.
    assert made["written"]["nodes_new"] == two["written"]["nodes_known"] > 0 == two["written"]["nodes_new"]
    shown = {
        name: ok(cli("--json", "state", "show", "--name", name)).json()["statement"]
        for name in ("one", "two")
    }
    assert shown["one"]["source"] == shown["two"]["source"]
    # Appended before without --apply: --apply stores nothing more and applies what is stored.
    ok(snapshot(cli, base_path, "--name", "three"))
    ok(cli("state", "journal", "append", journal, "--name", "three"))
    three = ok(cli("--json", "state", "journal", "append", journal, "--apply", "--name", "three")).json()
    assert (three["stored"], three["duplicate"], three["applied"]) == (0, True, True)
    assert three["snapshot"]["root"] == made["root"]
    segments = ok(cli("--json", "state", "journal", "list", "--name", "one")).json()["segments"]
    assert [(s["first"], s["last"], s["count"]) for s in segments] == [(1, len(changes), len(changes))]
    out = repo["root"] / "restored.jsonl"
    ok(cli("state", "restore", "--name", "one", "--target", out))
    assert out.read_bytes() == expected_file.read_bytes()
    # Appending it again stores nothing and applies nothing; a longer journal applies the rest.
    again = ok(cli("--json", "state", "journal", "append", journal, "--apply", "--name", "one")).json()
    assert again["applied"] is False and again["stored"] == 0
    more = _journal_of(read_jsonl(expected_file), random.Random(42), first_seq=len(changes) + 1)
    journal.write_text("".join(json.dumps(change) + "\n" for change in [*changes, *more]))
    grown = ok(cli("--json", "state", "journal", "append", journal, "--apply", "--name", "one")).json()
    assert grown["stored"] == len(more) and grown["skipped"] == len(changes)
    expected_file.write_bytes(_expected_at(raw_lines(base_path), [*changes, *more], 10**6))
    again_full = ok(snapshot(cli, expected_file, "--name", "full2")).json()
    assert grown["snapshot"]["root"] == again_full["root"]
    assert ok(cli("--json", "state", "verify", "--read-data")).json()["ok"] is True
    human = ok(cli("state", "journal", "append", journal, "--apply", "--name", "one"))
    assert "nothing to apply" in human.out


def test_journal_append_apply_refuses_apply_options_without_apply_and_stores_nothing_on_error(
    cli: CliRunner, repo: dict[str, Path], ledgers: dict[str, Path]
) -> None:
    ok(snapshot(cli, ledgers["healthy"], "--name", "ja"))
    journal = repo["root"] / "journal.jsonl"
    journal.write_text(json.dumps({"seq": 1, "op": "delete", "key": "acct:0xnothere"}) + "\n")
    one_line_error(
        cli("state", "journal", "append", journal, "--invariants", INVARIANTS), "go with --apply", code=2
    )
    one_line_error(cli("state", "journal", "append", journal, "--apply"), "does not exist")
    assert ok(cli("--json", "state", "journal", "list")).json()["segments"] == []
    assert len(ok(cli("--json", "state", "list")).json()["snapshots"]) == 1


def test_journal_append_apply_checks_invariants(
    cli: CliRunner, repo: dict[str, Path], ledgers: dict[str, Path]
) -> None:
    good = ok(snapshot(cli, ledgers["healthy"], "--name", "ji", "--invariants", INVARIANTS)).json()
    docs = read_jsonl(ledgers["healthy"])
    victim = next(doc for doc in docs.values() if doc["kind"] == "account")
    asset = next(iter(victim["balances"]))
    inflated = dict(victim, balances=dict(victim["balances"], **{asset: str(10**30)}))
    journal = repo["root"] / "journal.jsonl"
    journal.write_text(json.dumps({"seq": 1, "op": "upsert", "key": victim["key"], "value": inflated}) + "\n")
    applied = cli("--json", "state", "journal", "append", journal, "--apply", "--invariants", INVARIANTS)
    assert applied.code == 3, applied.out + applied.err
    body = applied.json()
    assert body["stored"] == 1 and body["applied"] is True
    made = body["snapshot"]
    assert made["invariants_passed"] is False and made["sequence"] == 1 and made["previous"] == good["id"]


def test_a_node_that_does_not_match_its_id_is_carried_by_apply_and_caught_by_verify_read_data(
    cli: CliRunner, repo: dict[str, Path], ledgers: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Apply reads nodes from authenticated packs without recomputing their ids (see the threat
    model): a node written under the wrong id by the key holder (a buggy writer) is not refused
    there, and ``state verify --read-data``, which recomputes every id, names the snapshots."""
    from lifeboat.state import snapshots as state_mod

    honest = state_mod._TreeWriters.store
    damaged: list[bytes] = []

    def store_with_one_bad_leaf(writers: state_mod._TreeWriters, nodes: Iterable[prolly.Node]) -> None:
        def tampered() -> Iterator[prolly.Node]:
            for node in nodes:
                if node.level == 0 and not damaged:
                    damaged.append(node.first_key)
                    data = bytearray(node.data)
                    data[-20] ^= 1  # inside the last record's sums: still parses
                    node = dataclasses.replace(node, data=bytes(data))
                yield node

        honest(writers, tampered())

    monkeypatch.setattr(state_mod._TreeWriters, "store", store_with_one_bad_leaf)
    ok(snapshot(cli, ledgers["healthy"], "--name", "jb"))
    monkeypatch.setattr(state_mod._TreeWriters, "store", honest)
    docs = read_jsonl(ledgers["healthy"])
    far = sorted(k for k in docs if k.startswith("acct:"))[-1]  # not in the damaged first leaf
    journal = repo["root"] / "journal.jsonl"
    change = {"seq": 1, "op": "upsert", "key": far, "value": dict(docs[far], nonce=1)}
    journal.write_text(json.dumps(change) + "\n")
    ok(cli("state", "journal", "append", journal, "--apply"))
    report = cli("--json", "state", "verify", "--read-data")
    assert report.code == 1, report.out + report.err
    problems = report.json()["problems"]["jb"]
    assert len(problems) == 2 and all("does not match its id" in problem for problem in problems), problems


def test_journal_apply_checks_invariants_and_rollback_skips_a_bad_apply(
    cli: CliRunner, repo: dict[str, Path], ledgers: dict[str, Path]
) -> None:
    good = ok(snapshot(cli, ledgers["healthy"], "--name", "ji", "--invariants", INVARIANTS)).json()
    assert ok(cli("--json", "state", "journal", "apply")).json() == {"applied": False}
    docs = read_jsonl(ledgers["healthy"])
    victim = next(doc for doc in docs.values() if doc["kind"] == "account")
    asset = next(iter(victim["balances"]))
    inflated = dict(victim, balances=dict(victim["balances"], **{asset: str(10**30)}))
    journal = repo["root"] / "journal.jsonl"
    journal.write_text(json.dumps({"seq": 1, "op": "upsert", "key": victim["key"], "value": inflated}) + "\n")
    ok(cli("state", "journal", "append", journal))
    applied = cli("--json", "state", "journal", "apply", "--invariants", INVARIANTS)
    assert applied.code == 3, applied.out + applied.err
    body = applied.json()
    assert body["invariants_passed"] is False and body["sequence"] == 1 and body["previous"] == good["id"]
    report = ok(cli("--json", "state", "show")).json()["statement"]["invariants"]
    failed = [r for r in report["results"] if not r["passed"]]
    assert [r["name"] for r in failed] == ["conservation"]
    assert failed[0]["examples"][0]["key"] == f"supply:{asset}"
    live = repo["root"] / "live.jsonl"
    ok(cli("state", "restore", "--target", live))
    assert raw_lines(live)[victim["key"]] == _as_written(inflated)
    back = ok(cli("--json", "state", "rollback", "--target", live)).json()
    assert back["snapshot"] == good["id"] and back["skipped"][0]["id"] == body["id"]
    assert back["current_vs_snapshot"]["changed"] == 1
    assert live.read_bytes() == ledgers["healthy"].read_bytes()


@pytest.mark.parametrize(
    ("lines", "needle"),
    [
        (['{"seq":11,"op":"delete","key":"a"}', '{"seq":12,'], "line 2 is not valid JSON"),
        (['{"seq":11,"op":"delete","key":"a"}', '{"seq":11,"op":"delete","key":"b"}'],
         "line 2: seq 11 does not follow seq 11 of the line before"),
        (['{"seq":11,"op":"frob","key":"a"}'], "line 1 has unknown op 'frob'"),
        (['{"seq":11,"op":"delete","key":"a"}', '{"seq":12,"op":"upsert","key":"a","value":{"key":"b"}}'],
         "line 2: the value's key field 'key' is 'b', not the key 'a'"),
        (['{"seq":11,"op":"delete","key":"a"}', ""], "line 2 is blank"),
        (['{"seq":0,"op":"delete","key":"a"}'], "line 1: 'seq' must be a positive integer"),
    ],
)  # fmt: skip
def test_bad_journal_lines_are_named(
    cli: CliRunner, repo: dict[str, Path], lines: list[str], needle: str
) -> None:
    tiny = repo["root"] / "tiny.jsonl"
    tiny.write_text('{"key":"a","amount":"1"}\n')
    ok(snapshot(cli, tiny, sums=("amount",)))
    bad = repo["root"] / "bad.jsonl"
    bad.write_text("".join(line + "\n" for line in lines))
    one_line_error(cli("state", "journal", "append", bad), f"{bad} {needle}")
    assert ok(cli("--json", "state", "journal", "list")).json()["segments"] == []


def test_journal_from_standard_input(cli: CliRunner, repo: dict[str, Path]) -> None:
    tiny = repo["root"] / "tiny.jsonl"
    tiny.write_text('{"key":"a","amount":"1"}\n{"key":"c","amount":"3"}\n')
    ok(snapshot(cli, tiny, sums=("amount",)))
    text = '{"seq":1,"op":"upsert","key":"b","value":{"key":"b","amount":"2"}}\n'
    ok(cli("state", "journal", "append", "-", stdin=text))
    out = repo["root"] / "out.jsonl"
    ok(cli("state", "restore", "--at-seq", 1, "--target", out))
    assert out.read_text() == '{"key":"a","amount":"1"}\n{"key":"b","amount":"2"}\n{"key":"c","amount":"3"}\n'
    bad = cli("state", "journal", "append", "-", stdin="nonsense\n")
    one_line_error(bad, "standard input line 1 is not valid JSON")


def test_journal_values_restore_byte_for_byte_and_match_a_snapshot_of_the_same_lines(
    cli: CliRunner, repo: dict[str, Path]
) -> None:
    tiny = repo["root"] / "tiny.jsonl"
    tiny.write_bytes(b'{"key":"a","amount":"1"}\n{"key":"c", "amount":"3"}\n')
    ok(snapshot(cli, tiny, sums=("amount",)))
    # Odd spaces, \u escapes (of an ASCII letter too), a tab, an exponent: all kept as written.
    b_value = b'{ "key" : "b","name":"caf\\u00e9" ,\t"amount": "2" , "x": 1.0E2 }'
    a_value = b'{"key":"\\u0061",  "amount":"7","note":"\\u2603 \xe2\x98\x83"}'
    journal = repo["root"] / "journal.jsonl"
    journal.write_bytes(
        b'{"seq":1,"op":"upsert","key":"b","value":' + b_value + b"}\n"
        b'{ "value" : ' + a_value + b' , "seq":2,"op":"upsert","key":"a"}\r\n'
        b'{"seq":3,"op":"delete","key":"c"}\n'
    )
    ok(cli("state", "journal", "append", journal))
    expected = {
        1: b'{"key":"a","amount":"1"}\n' + b_value + b'\n{"key":"c", "amount":"3"}\n',
        2: a_value + b"\n" + b_value + b'\n{"key":"c", "amount":"3"}\n',
        3: a_value + b"\n" + b_value + b"\n",
    }
    for seq, content in expected.items():
        out = repo["root"] / f"at-{seq}.jsonl"
        ok(cli("state", "restore", "--at-seq", seq, "--target", out))
        assert out.read_bytes() == content, seq
    assert ok(cli("--json", "state", "get", "b", "--at-seq", 1)).json()["value"].encode() == b_value
    applied = ok(cli("--json", "state", "journal", "apply")).json()
    out = repo["root"] / "applied.jsonl"
    ok(cli("state", "restore", "--target", out))
    assert out.read_bytes() == expected[3]
    assert ok(cli("--json", "state", "get", "a")).json()["value"].encode("utf-8") == a_value
    # A snapshot of a file holding the same lines is the same tree: one root, one proof per key.
    same = repo["root"] / "same.jsonl"
    same.write_bytes(expected[3])
    full = ok(snapshot(cli, same, "--name", "same", sums=("amount",))).json()
    assert (full["root"], full["totals"]) == (applied["root"], applied["totals"])


def test_the_journal_is_append_only_and_deletes_need_an_existing_key(
    cli: CliRunner, repo: dict[str, Path]
) -> None:
    ok(snapshot(cli, _tiny(repo, '{"key":"a","amount":"1"}\n{"key":"b","amount":"2"}\n'), sums=("amount",)))
    first = [
        '{"seq":10,"op":"upsert","key":"c","value":{"key":"c","amount":"3"}}',
        '{"seq":12,"op":"delete","key":"a"}',
    ]
    ok(cli("state", "journal", "append", _tiny(repo, "\n".join(first) + "\n", "j1.jsonl")))

    def segments() -> list[tuple[int, int]]:
        listed = ok(cli("--json", "state", "journal", "list")).json()["segments"]
        return [(s["first"], s["last"]) for s in listed]

    # Below the last stored change: a gap filled in later would rewrite restores at 11 and 12.
    for late in (
        '{"seq":11,"op":"upsert","key":"d","value":{"key":"d","amount":"4"}}',
        '{"seq":5,"op":"delete","key":"b"}',
    ):
        seq = json.loads(late)["seq"]
        one_line_error(
            cli("state", "journal", "append", _tiny(repo, late + "\n", "late.jsonl")),
            f"change {seq} comes before the last stored change 12",
            "append-only",
        )
    assert segments() == [(10, 12)]
    out = repo["root"] / "out.jsonl"
    ok(cli("state", "restore", "--at-seq", 11, "--target", out))
    assert out.read_text() == '{"key":"a","amount":"1"}\n{"key":"b","amount":"2"}\n{"key":"c","amount":"3"}\n'
    # The same journal again changes nothing; a longer copy of it stores only what is new.
    again = ok(cli("--json", "state", "journal", "append", _tiny(repo, "\n".join(first) + "\n", "j1.jsonl")))
    assert again.json() == {"stored": 0, "skipped": 2, "first": 10, "last": 12, "duplicate": True}
    longer = [*first, '{"seq":13,"op":"delete","key":"c"}']
    grown = ok(cli("--json", "state", "journal", "append", _tiny(repo, "\n".join(longer) + "\n", "j2.jsonl")))
    assert grown.json() == {"stored": 1, "skipped": 2, "first": 13, "last": 13, "duplicate": False}
    assert segments() == [(10, 12), (13, 13)]
    # A delete must find its key at that point: never in the state, deleted by a stored
    # change, or deleted earlier in the same input.
    for lines, key, seq in (
        (['{"seq":20,"op":"delete","key":"zz"}'], "zz", 20),
        (['{"seq":20,"op":"delete","key":"a"}'], "a", 20),
        (['{"seq":20,"op":"delete","key":"b"}', '{"seq":21,"op":"delete","key":"b"}'], "b", 21),
    ):
        one_line_error(
            cli("state", "journal", "append", _tiny(repo, "\n".join(lines) + "\n", "bad.jsonl")),
            f"change {seq} deletes the key {key!r}, which does not exist",
        )
    assert segments() == [(10, 12), (13, 13)]
    # Re-created keys can be deleted again.
    ok(
        cli(
            "state",
            "journal",
            "append",
            _tiny(
                repo,
                '{"seq":20,"op":"upsert","key":"a","value":{"key":"a","amount":"5"}}\n'
                '{"seq":21,"op":"delete","key":"a"}\n{"seq":22,"op":"delete","key":"b"}\n',
                "ok.jsonl",
            ),
        )
    )
    ok(cli("state", "restore", "--at-seq", 22, "--target", out))
    assert out.read_text() == ""


# --- 7. signing keys and FROST ----------------------------------------------------------------


def test_signing_keys_pin_a_chain(cli: CliRunner, repo: dict[str, Path], ledgers: dict[str, Path]) -> None:
    key1, key2 = repo["root"] / "k1.json", repo["root"] / "k2.json"
    pub1 = ok(cli("--json", "state", "keygen", "-o", key1)).json()["public_key"]
    pub2 = ok(cli("--json", "state", "keygen", "-o", key2)).json()["public_key"]
    assert pub1 != pub2 and len(pub1) == 64
    assert key1.stat().st_mode & 0o777 == 0o600
    human = ok(cli("state", "keygen", "-o", repo["root"] / "k3.json")).out
    assert f"signing key written to {repo['root'] / 'k3.json'} (0600)" in human
    kept = key1.read_bytes()
    one_line_error(cli("state", "keygen", "-o", key1), str(key1))
    assert key1.read_bytes() == kept
    replaced = ok(cli("--json", "state", "keygen", "-o", key1, "--force")).json()["public_key"]
    assert replaced != pub1
    pub1 = replaced

    first = ok(snapshot(cli, ledgers["healthy"], "--name", "signed", "--signing-key", key1)).json()
    assert first["signer"] == {"scheme": "ed25519", "public_key": pub1}
    other = snapshot(cli, ledgers["changed"], "--name", "signed", "--signing-key", key2)
    one_line_error(other, "is signed by ed25519 key", pub1, "sign new snapshots with the same key", code=2)
    default = snapshot(cli, ledgers["changed"], "--name", "signed")
    one_line_error(default, "sign new snapshots with the same key", code=2)
    second = ok(snapshot(cli, ledgers["changed"], "--name", "signed", "--signing-key", key1)).json()
    assert second["previous"] == first["id"]
    # A new chain may use another key.
    ok(snapshot(cli, ledgers["changed"], "--name", "signed-2", "--signing-key", key2))

    assert ok(cli("--json", "state", "verify", "--name", "signed", "--trust", pub1)).json()["ok"] is True
    distrust = cli("--json", "state", "verify", "--name", "signed", "--trust", pub2)
    assert distrust.code == 1
    problems = distrust.json()["problems"]["signed"]
    assert len(problems) == 2 and all(f"not by the trusted key {pub2}" in p for p in problems)
    both = cli("--json", "state", "verify")
    assert both.code == 0 and set(both.json()["problems"]) == {"signed", "signed-2"}
    one_line_error(
        snapshot(cli, ledgers["healthy"], "--signing-key", key1, "--frost-group", key2), "at most one", code=2
    )


def test_frost_group_signs_a_pending_snapshot(
    cli: CliRunner, repo: dict[str, Path], ledgers: dict[str, Path]
) -> None:
    keys = repo["root"] / "keys"
    ok(cli("frost", "dealer", "-t", 2, "-n", 3, "-d", keys))
    group = keys / "public-key-package.json"
    message = repo["root"] / "msg.json"
    made = ok(
        snapshot(cli, ledgers["healthy"], "--name", "fr", "--invariants", INVARIANTS, "--frost-group", group,
                 "--message-out", message)
    ).json()  # fmt: skip
    short = made["short_id"]
    assert made["signed"] is False and made["signer"]["scheme"] == "frost-ed25519"
    group_key = made["signer"]["public_key"]
    assert message.is_file()
    again = repo["root"] / "msg-again.json"
    ok(cli("state", "message", short, "-o", again))
    assert again.read_bytes() == message.read_bytes()

    listed = ok(cli("--json", "state", "list")).json()["snapshots"]
    assert [(s["short_id"], s["signed"]) for s in listed] == [(short, False)]
    assert "pending" in ok(cli("state", "list")).out
    one_line_error(cli("state", "prove", "supply:USDC"), f"record snapshot {short} is not signed yet")
    rollback = cli("state", "rollback", "--target", repo["root"] / "live.jsonl", "--dry-run")
    one_line_error(rollback, "nothing to roll back to", warnings=True)
    assert f"skipping {short}" in rollback.err and "not signed yet" in rollback.err
    assert not (repo["root"] / "live.jsonl").exists()
    unverified = cli("--json", "state", "verify")
    assert unverified.code == 1 and "not signed yet" in unverified.json()["problems"]["fr"][0]

    # A signature over another message is refused, and changes nothing.
    stray = repo["root"] / "stray.txt"
    stray.write_bytes(b"not the statement")
    wrong = frost_sign(cli, keys, stray, repo["root"] / "ceremony-wrong")
    one_line_error(cli("state", "attest", short, "--signature", wrong), "signs another message")
    assert ok(cli("--json", "state", "list")).json()["snapshots"][0]["signed"] is False

    signature = frost_sign(cli, keys, message, repo["root"] / "ceremony")
    attested = ok(cli("--json", "state", "attest", short, "--signature", signature)).json()
    assert attested["signed"] is True and attested["snapshot"] == made["id"]
    one_line_error(cli("state", "attest", short, "--signature", signature), "already signed", code=2)
    listed = ok(cli("--json", "state", "list")).json()["snapshots"]
    assert [(s["id"], s["signed"]) for s in listed] == [(made["id"], True)]
    assert ok(cli("--json", "state", "verify", "--read-data", "--trust", group)).json()["ok"] is True
    proof = repo["root"] / "proof.json"
    ok(cli("state", "prove", "supply:USDC", "-o", proof))
    checked = ok(cli("--json", "state", "verify-proof", proof, "--trust", group_key)).json()
    assert checked["present"] is True and checked["signer"]["scheme"] == "frost-ed25519"
    assert ok(cli("--json", "state", "verify-proof", proof, "--trust", group)).json()["trusted_key"] is True
    picked = ok(
        cli("--json", "state", "rollback", "--target", repo["root"] / "live.jsonl", "--dry-run")
    ).json()
    assert picked["snapshot"] == made["id"] and picked["skipped"] == []
    fresh = ok(cli("--json", "state", "rollback", "--target", repo["root"] / "live.jsonl")).json()
    assert fresh["current_vs_snapshot"] is None and "does not exist" in fresh["current_unreadable"]
    assert (repo["root"] / "live.jsonl").read_bytes() == ledgers["healthy"].read_bytes()


# --- 8. verify, and lost stores ---------------------------------------------------------------


def test_verify_and_restore_survive_two_lost_stores_not_three(
    cli: CliRunner, repo: dict[str, Path], ledgers: dict[str, Path]
) -> None:
    ok(snapshot(cli, ledgers["healthy"], "--name", "ledger"))
    ok(snapshot(cli, ledgers["changed"], "--name", "ledger"))
    report = ok(cli("--json", "state", "verify", "--read-data")).json()
    assert report == {
        "ok": True,
        "snapshots": 2,
        "problems": {"ledger": []},
        "unreadable": [],
        "read_data": True,
    }
    assert "2 record snapshot(s) verified" in ok(cli("state", "verify")).out

    for number in (1, 3):
        shutil.rmtree(repo[f"s{number}"])
    assert ok(cli("--json", "state", "verify", "--read-data")).json()["ok"] is True
    verified = ok(cli("state", "verify", "--read-data"))
    assert (
        "store(s) 1, 3 of 5 unavailable" in verified.err and "2 record snapshot(s) verified" in verified.out
    )
    out = repo["root"] / "out.jsonl"
    ok(cli("state", "restore", "--target", out))
    assert out.read_bytes() == ledgers["changed"].read_bytes()

    shutil.rmtree(repo["s0"])
    needed = "only 2 of 5 stores answer and 3 are needed"
    one_line_error(cli("state", "verify", "--read-data"), needed, warnings=True)
    out.unlink()
    one_line_error(cli("state", "restore", "--target", out), needed, warnings=True)
    assert not out.exists()


# --- 9. the repository's own commands ---------------------------------------------------------


def test_forget_prune_keeps_record_snapshots_and_check_is_healthy(
    cli: CliRunner, repo: dict[str, Path], ledgers: dict[str, Path]
) -> None:
    src = repo["root"] / "src"
    src.mkdir()
    for round_ in range(3):
        (src / f"file-{round_}.bin").write_bytes(os.urandom(200_000))
        ok(cli("backup", src, "--no-progress"))
    first = ok(snapshot(cli, ledgers["healthy"], "--name", "ledger")).json()
    journal = repo["root"] / "journal.jsonl"
    journal.write_text('{"seq":1,"op":"delete","key":"supply:USDC"}\n')
    ok(cli("state", "journal", "append", journal))
    second = ok(snapshot(cli, ledgers["changed"], "--name", "ledger", "--sequence", "1")).json()
    (src / "file-0.bin").unlink()
    ok(cli("backup", src, "--no-progress"))

    forgot = ok(cli("--json", "forget", "--keep-last", "1", "--prune"))
    assert len(forgot.json()["forget"]) == 3
    assert len(ok(cli("--json", "snapshots")).json()["snapshots"]) == 1
    listed = ok(cli("--json", "state", "list")).json()["snapshots"]
    assert [s["id"] for s in listed] == [first["id"], second["id"]]
    check = ok(cli("--json", "check", "--read-data", "--no-progress"))
    assert check.json()["status"] == "healthy" and check.json()["snapshot_errors"] == []
    assert ok(cli("--json", "state", "verify", "--read-data")).json()["ok"] is True
    out = repo["root"] / "out.jsonl"
    for snap, ledger in ((first, ledgers["healthy"]), (second, ledgers["changed"])):
        ok(cli("state", "restore", "--snapshot", snap["short_id"], "--target", out))
        assert out.read_bytes() == ledger.read_bytes()
    ok(cli("state", "restore", "--snapshot", first["short_id"], "--at-seq", 1, "--target", out))
    assert b"supply:USDC" not in out.read_bytes()
    assert len(out.read_bytes().splitlines()) == len(raw_lines(ledgers["healthy"])) - 1
    ok(cli("restore", "latest", "--target", repo["root"] / "files", "--no-progress"))


# --- 10. bad inputs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "name", "needles", "code"),
    [
        ('{"key":"a"}\n{"key":"a"}\n', "dup.jsonl", ["line 2: duplicate key 'a'"], 1),
        ('{"key":"b"}\n{"key":"a"}\n', "order.jsonl", ["line 2: keys out of order: 'a' comes after 'b'"], 1),
        ('{"key":"a"}\n{"id":"b"}\n', "nokey.jsonl", ["line 2: the record has no key field 'key'"], 1),
        ('{"key":"a","amount":"lots"}\n', "nan.jsonl",
         ["line 1, key 'a': sum field 'amount' is not a decimal integer"], 1),
        ('{"key":"a"}\n', "records.txt", ["unknown record location", "records.txt"], 2),
        ("key,amount\nb,1\na,2\n", "order.csv", ["line 3: keys out of order: 'a' comes after 'b'"], 1),
        ('{"key":"a"}\n{"key":"b"\n', "broken.jsonl", ["line 2 is not valid JSON"], 1),
    ],
)  # fmt: skip
def test_bad_sources_are_named_and_store_nothing(
    cli: CliRunner, repo: dict[str, Path], content: str, name: str, needles: list[str], code: int
) -> None:
    path = repo["root"] / name
    path.write_text(content)
    result = snapshot(cli, path, sums=("amount",))
    line = one_line_error(result, *needles, code=code)
    if code == 1:
        assert str(path) in line
    assert json.loads(result.out)["ok"] is False
    assert ok(cli("--json", "state", "list")).json()["snapshots"] == []
    if "sum field" not in needles[0]:  # `state check` sums nothing
        check = cli("state", "check", path, "--key", "key", "--invariants", INVARIANTS, "--no-progress")
        one_line_error(check, *needles, code=code)


def test_bad_references_and_options_are_named(cli: CliRunner, repo: dict[str, Path], tmp_path: Path) -> None:
    one_line_error(cli("state", "show"), "the repository has no record snapshots yet")
    tiny = tmp_path / "tiny.jsonl"
    tiny.write_text('{"key":"a","amount":"1"}\n')
    ok(snapshot(cli, tiny, sums=("amount",)))
    ok(snapshot(cli, tiny, "--name", "other", sums=("amount",)))
    one_line_error(cli("state", "show", "dead"), "no record snapshot with id 'dead'")
    one_line_error(
        cli("state", "restore", "--snapshot", "beef00", "--target", tmp_path / "o.jsonl"), "'beef00'"
    )
    one_line_error(cli("state", "show", "xyz"), "give 'latest' or at least 4 hex digits")
    one_line_error(cli("state", "show"), "choose one with --name", code=2)
    one_line_error(cli("state", "show", "--name", "missing"), "no record snapshot named 'missing'")
    one_line_error(cli("state", "diff", "latest", "--name", "nothing"), "no record snapshot named 'nothing'")
    one_line_error(
        snapshot(cli, tiny, "--name", "x", "--message-out", tmp_path / "m", sums=("amount",)),
        "--message-out goes with --frost-group",
        code=2,
    )
    one_line_error(snapshot(cli, tiny, "--name", "bad name!", sums=("amount",)), "dataset name", code=2)
    one_line_error(snapshot(cli, tiny, sums=("amount", "amount")), "given twice", code=2)
    one_line_error(snapshot(cli, tiny, "--invariants", tmp_path / "none.toml", sums=("amount",)), "none.toml")
    one_line_error(
        cli("state", "verify-proof", tiny, "--trust", "not-a-key"), "neither 64 hex digits", code=2
    )


# --- regressions from review -------------------------------------------------------------------


def _tiny(repo: dict[str, Path], text: str, name: str = "tiny.jsonl") -> Path:
    path = repo["root"] / name
    path.write_text(text)
    return path


def test_a_journal_that_contradicts_or_breaks_the_rules_is_refused_and_nothing_stored(
    cli: CliRunner, repo: dict[str, Path]
) -> None:
    ok(snapshot(cli, _tiny(repo, '{"key":"a","amount":"1"}\n'), sums=("amount",)))
    first = _tiny(repo, '{"seq":3,"op":"upsert","key":"e","value":{"key":"e","amount":"5"}}\n', "j1.jsonl")
    ok(cli("state", "journal", "append", first))
    conflict = _tiny(repo, '{"seq":3,"op":"upsert","key":"f","value":{"key":"f","amount":"5"}}\n', "j2.jsonl")
    one_line_error(cli("state", "journal", "append", conflict), "seq 3", "keeps its changes")
    negative = _tiny(
        repo, '{"seq":4,"op":"upsert","key":"g","value":{"key":"g","amount":"-5"}}\n', "j3.jsonl"
    )
    one_line_error(cli("state", "journal", "append", negative), "change 4", "negative")
    keyless = _tiny(repo, '{"seq":5,"op":"upsert","key":"h","value":{"amount":"5"}}\n', "j4.jsonl")
    one_line_error(cli("state", "journal", "append", keyless), "change 5", "field 'key'")
    segments = ok(cli("--json", "state", "journal", "list")).json()["segments"]
    assert [(s["first"], s["last"]) for s in segments] == [(3, 3)]
    out = repo["root"] / "out.jsonl"
    ok(cli("state", "restore", "--at-seq", 3, "--target", out))
    assert out.read_text() == '{"key":"a","amount":"1"}\n{"key":"e","amount":"5"}\n'


def test_sequence_numbers_never_go_back_and_a_journal_needs_an_explicit_sequence(
    cli: CliRunner, repo: dict[str, Path]
) -> None:
    source = _tiny(repo, '{"key":"a","amount":"1"}\n')
    ok(snapshot(cli, source, "--sequence", "5", sums=("amount",)))
    one_line_error(snapshot(cli, source, "--sequence", "3", sums=("amount",)), "below the newest", code=2)
    journal = _tiny(repo, '{"seq":6,"op":"delete","key":"a"}\n', "j.jsonl")
    ok(cli("state", "journal", "append", journal))
    # The journal holds change 6 after the snapshot: the source must say whether it includes it.
    one_line_error(snapshot(cli, source, sums=("amount",)), "changes 6..6", "--sequence N", code=2)
    ok(snapshot(cli, _tiny(repo, "", "empty.jsonl"), "--sequence", "6", "--name", "tiny", sums=("amount",)))
    ok(cli("state", "verify"))
    assert [s["sequence"] for s in ok(cli("--json", "state", "list")).json()["snapshots"]] == [5, 6]


def test_an_interrupted_attest_leaves_one_snapshot_and_attest_finishes_it(
    cli: CliRunner, repo: dict[str, Path]
) -> None:
    from lifeboat.state import snapshots as state_mod
    from lifeboat.store.backends import open_backend as backend

    ok(snapshot(cli, _tiny(repo, '{"key":"a","amount":"1"}\n'), sums=("amount",)))
    stores = [backend(str(repo[f"s{i}"])) for i in range(5)]
    with Repository.open(stores, PASSPHRASE) as opened:
        snap = state_mod.find_state(opened, "latest")
        # What an attest cut off after its first write leaves: a second copy of the statement.
        state_mod._put_statement(opened, snap.statement, snap.signature)
    listed = ok(cli("--json", "state", "list")).json()["snapshots"]
    assert len(listed) == 1
    ok(cli("state", "show", listed[0]["short_id"]))
    ok(cli("state", "verify"))


def test_rollback_reports_how_an_exploited_state_differs_even_with_negative_balances(
    cli: CliRunner, repo: dict[str, Path]
) -> None:
    good = '{"key":"a","amount":"10"}\n{"key":"b","amount":"20"}\n'
    ok(snapshot(cli, _tiny(repo, good), "--invariants", _invariants_no_negative(repo), sums=("amount",)))
    live = _tiny(
        repo,
        '{"key":"a","amount":"-100"}\n{"key":"b","amount":"20"}\n{"key":"z","amount":"1"}\n',
        "live.jsonl",
    )
    report = ok(cli("--json", "state", "rollback", "--target", live, "--name", "tiny")).json()
    diff = report["current_vs_snapshot"]
    assert report["current_unreadable"] is None
    assert (diff["added"], diff["removed"], diff["changed"]) == (1, 0, 1)
    assert diff["sum_deltas"] == {"amount": str(-110 + 1)}
    assert live.read_text() == good


@pytest.mark.parametrize("damage", ["statement", "manifest"])
def test_rollback_stops_at_a_damaged_snapshot_unless_told_to_skip_it(
    cli: CliRunner, repo: dict[str, Path], damage: str
) -> None:
    from lifeboat.state import snapshots as state_mod

    invariants = _invariants_no_negative(repo)
    for amount in (1, 2, 3):
        source = _tiny(repo, f'{{"key":"a","amount":"{amount}"}}\n', f"v{amount}.jsonl")
        ok(snapshot(cli, source, "--name", "tiny", "--invariants", invariants, sums=("amount",)))
    first, middle, _ = ok(cli("--json", "state", "list")).json()["snapshots"]
    stores = [open_backend(str(repo[f"s{i}"])) for i in range(5)]
    with Repository.open(stores, PASSPHRASE) as opened:
        manifest = state_mod.find_state(opened, middle["short_id"]).manifest
        if damage == "statement":  # a readable manifest whose statement is not one
            payload = dict(manifest.payload)
            payload["statement"] = dict(payload["statement"], count="two")
            named = opened.put_manifest(payload).short_id
            opened.delete_manifest(manifest.id)
        else:  # a manifest that cannot be read at all (3 of its 5 shards flipped)
            named = f"snapshots/{manifest.id.hex()}"
            for i in (0, 2, 4):
                shard = repo[f"s{i}"] / named
                data = bytearray(shard.read_bytes())
                data[-7] ^= 0x5A
                shard.write_bytes(bytes(data))
    # The newest snapshot follows the damaged one, so its chain cannot be shown: going back to
    # the oldest would lose the newest good state without a word.
    live = _tiny(repo, '{"key":"a","amount":"-9"}\n', "live.jsonl")
    stopped = cli("state", "rollback", "--target", live)
    one_line_error(stopped, "damaged snapshot", named, "--skip-damaged")
    assert live.read_text() == '{"key":"a","amount":"-9"}\n'
    listed = cli("state", "list")
    assert listed.code == 1 and named in listed.err
    skipped = ok(cli("--json", "state", "rollback", "--target", live, "--skip-damaged")).json()
    assert skipped["snapshot"] == first["id"] and live.read_text() == '{"key":"a","amount":"1"}\n'
    assert len(skipped["damaged_skipped"]) == 1 and named in skipped["damaged_skipped"][0]
    assert len(skipped["skipped"]) == 1 and "not in the repository" in skipped["skipped"][0]["why"]
    human = cli("state", "rollback", "--target", live, "--skip-damaged", "--dry-run")
    assert human.code == 0 and "skipping a damaged snapshot (--skip-damaged): " in human.err
    assert named in human.err


def _invariants_no_negative(repo: dict[str, Path]) -> Path:
    path = repo["root"] / "inv.toml"
    path.write_text('version = 1\n[[bound]]\nname = "no-negative"\nfield = "amount"\nmin = 0\n')
    return path


def test_sqlite_keys_are_ordered_bytewise_whatever_the_column_collation(
    cli: CliRunner, repo: dict[str, Path]
) -> None:
    db = repo["root"] / "nocase.db"
    with sqlite3.connect(db) as connection:
        connection.execute("create table acc(id text collate nocase primary key, bal integer)")
        connection.executemany("insert into acc values (?, ?)", [("B", 1), ("a", 2), ("c", 3)])
    made = ok(
        cli(
            "--json", "state", "snapshot", f"sqlite:///{db}", "--table", "acc", "--key", "id", "--no-progress"
        )
    ).json()
    assert made["records"] == 3


def test_dataset_names_are_checked_before_anything_is_read(cli: CliRunner, repo: dict[str, Path]) -> None:
    odd = _tiny(repo, '{"key":"a","amount":"1"}\n', "_my ledger!.jsonl")
    made = ok(snapshot(cli, odd, sums=("amount",))).json()
    assert made["name"] == "my-ledger"
    one_line_error(snapshot(cli, odd, "--name", "-bad", sums=("amount",)), "--name", code=2)
    db = repo["root"] / "q.db"
    with sqlite3.connect(db) as connection:
        connection.execute("create table t(k text primary key)")
    one_line_error(
        cli("state", "snapshot", f"sqlite:///{db}", "--query", "select k from t", "--key", "k"),
        "name the dataset of a query with --name",
        code=2,
    )
    one_line_error(cli("state", "verify", "--name", "nosuch"), "no record snapshot named 'nosuch'")


def test_record_snapshots_are_written_under_an_exclusive_lock(cli: CliRunner, repo: dict[str, Path]) -> None:
    """Two writers reading the same newest statement would both link to it and fork the chain."""
    from lifeboat.store.backends import open_backend as backend

    stores = [backend(str(repo[f"s{i}"])) for i in range(5)]
    with (
        Repository.open(stores, PASSPHRASE, writable=True) as opened,
        opened.lock(exclusive=False, operation="t"),
    ):
        refused = snapshot(cli, _tiny(repo, '{"key":"a","amount":"1"}\n'), sums=("amount",))
        one_line_error(refused, "lock")
    assert ok(cli("--json", "state", "list")).json()["snapshots"] == []


def test_a_snapshot_after_an_earlier_one_equals_a_fresh_one_whatever_changed(
    cli: CliRunner, repo: dict[str, Path]
) -> None:
    """The second snapshot of a name is made by comparing lines with the first and updating."""
    lines = [f'{{"key":"k{i:04}","amount":"{i}"}}' for i in range(0, 400)]
    first = ok(
        snapshot(cli, _tiny(repo, "".join(x + "\n" for x in lines), "data.jsonl"), sums=("amount",))
    ).json()
    edited = list(lines)
    edited[5] = '{"key":"k0005","amount":"77"}'  # changed
    del edited[10:13]  # removed
    edited.insert(20, '{"key":"k0019a","amount":"1"}')  # added
    edited.append('{"key":"k9999","amount":"2"}')  # added at the end
    del edited[0]  # removed at the start
    edited.sort(key=lambda line: json.loads(line)["key"])
    text = "".join(x + "\n" for x in edited)
    second = ok(snapshot(cli, _tiny(repo, text, "data.jsonl"), sums=("amount",))).json()
    fresh = ok(snapshot(cli, _tiny(repo, text, "fresh.jsonl"), sums=("amount",))).json()
    assert second["root"] == fresh["root"] and second["records"] == len(edited)
    assert second["totals"] == fresh["totals"]
    assert 0 < second["written"]["nodes_new"] < first["written"]["nodes_new"] / 4
    assert fresh["written"]["nodes_new"] == 0  # the update stored every node a full build makes
    out = repo["root"] / "out.jsonl"
    ok(cli("state", "restore", "--name", "data", "--target", out))
    assert out.read_text() == text
    # The comparison still refuses bad input, in changed and unchanged lines alike.
    swapped = list(edited)
    swapped[100], swapped[101] = swapped[101], swapped[100]
    bad = _tiny(repo, "".join(x + "\n" for x in swapped), "data.jsonl")
    one_line_error(snapshot(cli, bad, sums=("amount",)), "line 102", "out of order")
    broken = list(edited)
    broken[50] = '{"key":"k0055","amount":"-1"}'
    bad = _tiny(repo, "".join(x + "\n" for x in broken), "data.jsonl")
    one_line_error(snapshot(cli, bad, sums=("amount",)), "line 51", "negative")


# --- a signer that commits values that do not match their sums or keys ------------------------


def test_a_dishonest_snapshot_is_caught_by_verify_proof_and_verify_read_data(
    cli: CliRunner, repo: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The repository's own signer snapshots records whose sums (and one key) are not what their
    values say: every hash and signature checks, yet each proof of such a record, and the walk of
    ``verify --read-data``, refuses it."""
    from lifeboat.state import records as records_mod
    from lifeboat.state import snapshots as state_mod
    from lifeboat.store.backends import open_backend as backend

    class Dishonest(records_mod.Source):
        """Yields ``a`` with a committed amount of 0 while its value says 100, ``b`` with a value
        whose key field says ``c``, and an honest ``d``."""

        def __init__(self) -> None:
            super().__init__("jsonl", records_mod.RecordSpec("key", ("amount",)), None)

        def _records(self) -> Iterator[records_mod.SourceRecord]:
            rows = [
                (b"a", b'{"key":"a","amount":"100"}', (0,)),
                (b"b", b'{"key":"c","amount":"2"}', (2,)),
                (b"d", b'{"key":"d","amount":"4"}', (4,)),
            ]
            for key, value, sums in rows:
                self.records += 1
                yield records_mod.SourceRecord(key, value, sums, json.loads(value))

        def describe(self) -> dict[str, Any]:
            return {"kind": "jsonl", "records": self.records}

    stores = [backend(str(repo[f"s{i}"])) for i in range(5)]
    with Repository.open(stores, PASSPHRASE, writable=True) as opened:
        state_mod.snapshot_records(
            opened,
            Dishonest(),
            records_mod.RecordSpec("key", ("amount",)),
            name="tiny",
            signing=state_mod.repository_signing(opened),
        )
    proofs = {key: repo["root"] / f"proof-{key}.json" for key in ("a", "b", "c", "d")}
    for key, path in proofs.items():
        ok(cli("state", "prove", key, "-o", path))
    monkeypatch.delenv("LIFEBOAT_STORES")
    one_line_error(
        cli("state", "verify-proof", proofs["a"]),
        "record 'a': the value's amount is 100 but the tree commits 0",
    )
    one_line_error(
        cli("state", "verify-proof", proofs["b"]),
        "record 'b': the value's key field 'key' is 'c', not the key the tree commits ('b')",
    )
    # "c" is absent; its neighbour below is the lying "b", so the absence proof is refused too.
    one_line_error(cli("state", "verify-proof", proofs["c"]), "record 'b': the value's key field")
    assert ok(cli("--json", "state", "verify-proof", proofs["d"])).json()["sums"] == {"amount": "4"}

    monkeypatch.setenv("LIFEBOAT_STORES", " ".join(str(repo[f"s{i}"]) for i in range(5)))
    assert ok(cli("--json", "state", "verify")).json()["ok"] is True  # statements alone are fine
    report = cli("--json", "state", "verify", "--read-data")
    assert report.code == 1, report.out + report.err
    problems = report.json()["problems"]["tiny"]
    assert len(problems) == 2, problems
    assert "record 'a': the value's amount is 100 but the tree commits 0" in problems[0]
    assert "record 'b': the value's key field 'key' is 'c'" in problems[1]
