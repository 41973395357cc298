"""``lifeboat drill --config``: the read-only checks of a real setup, its config, its history.

The setup is real and small, built once per module with the library the sandbox drill uses: a
share set 3-of-5 sealed in age envelopes to five guardians (recorded in a home), a 3-of-5
repository in five local directories with a file backup and a FROST-signed record snapshot of a
200-account ledger, and the recovery service (``lifeboat serve`` on loopback, SQLite) with a
vault. The drill passes on it; then one thing at a time is damaged (and put back): each check
fails or degrades with a message that says what to do, the others still pass, and a hash of the
whole setup tree is the same before and after every drill.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyrage
import pytest

from lifeboat.cli.main import main_entry
from lifeboat.drill import history as drill_history
from lifeboat.drill.config import load_config
from lifeboat.drill.keys import KeysPath, KeysWorld
from lifeboat.drill.real import run_config_drill
from lifeboat.drill.run import DEGRADED, FAILED, PASSED, DrillReport
from lifeboat.drill.sandbox import Sandbox
from lifeboat.drill.signers import SignersPath
from lifeboat.drill.state import StatePath
from lifeboat.drill.storage import StoragePath
from lifeboat.drill.timeline import PathName, Timeline
from lifeboat.errors import ConfigError
from lifeboat.home import Home
from lifeboat.recovery.service.settings import load_or_create_key

ROOT = Path(__file__).resolve().parents[1]
#: Written by the drill (the history and the home's lock), or by the running service on its own
#: schedule: its log, its witness of the audit head (re-signed every few seconds) and SQLite's
#: shared-memory index. The service's database and its write-ahead log are compared.
NOT_SETUP = {
    "home/drill-history.json",
    "home/.lock",
    "keys/service/serve.log",
    "keys/service/home/recovery-audit-head.json",
    "keys/service/recovery.db-shm",
}


@dataclass
class Setup:
    root: Path
    service_url: str
    vault: str
    service_key: str

    @property
    def home(self) -> Home:
        return Home(self.root / "home")

    def config(self, name: str = "lifeboat.toml", **changes: str | None) -> Path:
        """The config file of this setup, with sections' lines replaced (None removes a key)."""
        keys = {
            "keys.shares": '["keys/envelopes/*.age"]',
            "keys.identities": "[" + ", ".join(f'"keys/guardian-{i}/age.key"' for i in range(1, 6)) + "]",
            "keys.share_set": None,
            "storage.stores": "[" + ", ".join(f'"stores/s{i}"' for i in range(1, 6)) + "]",
            "storage.passphrase_file": '"repo.pass"',
            "state.invariants": '"state/ledger-invariants.toml"',
            "state.trust": '"signers/public-key-package.json"',
            "recovery.url": f'"{self.service_url}"',
            "recovery.vault": f'"{self.vault}"',
            "recovery.service_key": f'"{self.service_key}"',
        }
        keys.update(changes)
        lines = ["version = 1"]
        for section in ("keys", "storage", "state", "recovery"):
            entries = {k.split(".", 1)[1]: v for k, v in keys.items() if k.startswith(section + ".")}
            if all(v is None for v in entries.values()):
                continue
            lines.append("[[keys]]" if section == "keys" else f"[{section}]")
            lines += [f"{key} = {value}" for key, value in entries.items() if value is not None]
        path = self.root / name
        path.write_text("\n".join(lines) + "\n")
        return path


def tree_listing(root: Path) -> dict[str, str]:
    """Every file and directory under ``root``: its mode and a hash of its contents, but for what
    the drill may write (its history) and the tests' own config files."""
    listing = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if relative in NOT_SETUP or (relative.endswith(".toml") and "/" not in relative):
            continue
        content = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        listing[relative] = f"{path.stat().st_mode:o} {content}"
    return listing


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("real-setup") / "setup"
    box = Sandbox(root=root, seed=11, accounts=200)
    root.mkdir(mode=0o700)
    timeline = Timeline()
    try:
        StoragePath(files=6, file_bytes=32 * 1024).setup(box, timeline)
        SignersPath().setup(box, timeline)
        StatePath().setup(box, timeline)
        KeysPath().setup(box, timeline)
        world = box.scratch["keys"]
        assert isinstance(world, KeysWorld)
        (root / "repo.pass").write_text(box.repo_passphrase + "\n")
        (root / "repo.pass").chmod(0o600)
        yield Setup(
            root,
            world.service.url,
            world.vault.hex(),
            load_or_create_key(world.service.key_file).public_key.hex(),
        )
    finally:
        box.close()


def drill(setup: Setup, config: Path) -> DrillReport:
    """A config drill; the setup tree must be the same afterwards."""
    before = tree_listing(setup.root)
    report = run_config_drill(load_config(config), home=setup.home)
    after = tree_listing(setup.root)
    assert after == before, "the drill changed the setup: " + str(set(after.items()) ^ set(before.items()))
    return report


def verdicts(report: DrillReport) -> dict[str, str]:
    return {p.name.value: p.verdict for p in report.paths}


def facts(report: DrillReport, title: str) -> dict[str, Any]:
    (step,) = [s for s in report.timeline.steps if s.title == title]
    return step.facts


# --- the healthy setup --------------------------------------------------------------------------


def test_the_real_setup_passes_every_check_and_is_not_modified(setup: Setup) -> None:
    report = drill(setup, setup.config())
    assert verdicts(report) == dict.fromkeys(("keys", "storage", "state", "recovery"), PASSED)
    assert all(s.ok and s.warning is None for s in report.timeline.steps)
    assert facts(report, "open the shares of set 1") == {"files": 5, "usable": 5, "threshold": 3, "margin": 2}
    assert facts(report, "rebuild set 1 and compare its fingerprint")["fingerprint_ok"] is True
    checked = facts(report, "check --read-data, redundancy per store")
    assert checked["status"] == "healthy" and checked["stores_that_may_still_be_lost"] == 2
    estimate = report.path(PathName.STORAGE).restore_estimate_seconds
    assert estimate is not None and estimate > 0
    timed = facts(report, "restore time of the newest file snapshot")
    assert (
        timed["restored"] is True and timed["files"] == 6 and timed["restore_seconds"] == round(estimate, 3)
    )
    assert facts(report, "find the record snapshot")["journal_entries_after"] == 0
    restored = facts(report, "restore it into scratch space and rebuild its tree")
    assert restored["records"] == 200 + 10 + 6  # accounts, supply records, markets
    assert facts(report, "the audit log verifies against the signed head")["pinned"] is True
    document = report.to_json()
    assert document["kind"] == "config" and document["config"] == str(setup.root / "lifeboat.toml")
    assert document["verdict"] == PASSED and document["seed"] is None


# --- one thing damaged at a time -------------------------------------------------------------------


def test_a_wrong_identity_fails_the_keys_check_only(setup: Setup) -> None:
    stranger = setup.root / "stranger.key"
    stranger.write_text(f"{pyrage.x25519.Identity.generate()}\n")
    (record,) = setup.home.load().share_sets.values()
    wrong = {"keys.identities": '["stranger.key"]', "keys.share_set": f'"{record.id}"'}
    try:
        report = drill(setup, setup.config("wrong.toml", **wrong))
    finally:
        stranger.unlink()
    assert verdicts(report) == {"keys": FAILED, "storage": PASSED, "state": PASSED, "recovery": PASSED}
    keys = report.path(PathName.KEYS)
    assert keys.error is not None and "0 of 5 share file(s) usable, 3 needed" in keys.error
    assert keys.remedy is not None and "identity" in keys.remedy


def test_a_share_that_no_longer_opens_degrades_the_keys_check(setup: Setup) -> None:
    identities = "[" + ", ".join(f'"keys/guardian-{i}/age.key"' for i in range(1, 5)) + "]"
    report = drill(setup, setup.config("four.toml", **{"keys.identities": identities}))
    assert verdicts(report)["keys"] == DEGRADED
    assert facts(report, "open the shares of set 1")["margin"] == 1
    keys = report.path(PathName.KEYS)
    assert "guardian-5" in (keys.error or "") and "1 more may be lost" in (keys.error or "")
    assert "reshare" in (keys.remedy or "")


def test_the_home_record_and_a_drill_count_name_the_set(setup: Setup) -> None:
    (record,) = setup.home.load().share_sets.values()
    config = setup.config("recorded.toml", **{"keys.share_set": f'"{record.id}"'})
    config.write_text(config.read_text().replace("[[keys]]\n", "[[keys]]\ndrill = 3\n"))
    report = drill(setup, config)
    assert verdicts(report)["keys"] == PASSED
    rebuilt = facts(report, f"rebuild {record.id} and compare its fingerprint")
    assert rebuilt == {"combined": 3, "share_set": record.id, "fingerprint_ok": True}


def test_drilling_fewer_shares_than_the_threshold_is_refused_with_the_fix(setup: Setup) -> None:
    config = setup.config("two.toml")
    config.write_text(config.read_text().replace("[[keys]]\n", "[[keys]]\ndrill = 2\n"))
    report = drill(setup, config)
    keys = report.path(PathName.KEYS)
    assert keys.verdict == FAILED and "drill = 2 combines fewer shares than the 3 needed" in (
        keys.error or ""
    )
    assert keys.remedy == "set drill to at least 3 in the config"


def test_a_fingerprint_of_another_secret_fails_the_keys_check(setup: Setup) -> None:
    other = "-".join(["0123"] * 8)
    report = drill(setup, setup.config("other.toml", **{"keys.fingerprint": f'"{other}"'}))
    assert verdicts(report) == {"keys": FAILED, "storage": PASSED, "state": PASSED, "recovery": PASSED}
    keys = report.path(PathName.KEYS)
    assert "not to the expected fingerprint" in (keys.error or "") and "passphrase" in (keys.remedy or "")


def test_violated_invariants_fail_the_state_check(setup: Setup) -> None:
    rules = setup.root / "strict.toml"
    rules.write_text(
        'version = 1\n[[bound]]\nname = "tiny-balances"\nwhere = { kind = "account" }\n'
        'field = "balances.*"\nmax = 1\n'
    )
    report = drill(setup, setup.config("strict-drill.toml", **{"state.invariants": '"strict.toml"'}))
    assert verdicts(report) == {"keys": PASSED, "storage": PASSED, "state": FAILED, "recovery": PASSED}
    state = report.path(PathName.STATE)
    assert "violates tiny-balances" in (state.error or "") and "state rollback" in (state.remedy or "")


def test_a_snapshot_over_the_restore_limit_is_estimated_from_the_check(setup: Setup) -> None:
    config = setup.config("estimate.toml")
    config.write_text(config.read_text().replace("[storage]\n", "[storage]\nrestore_limit_mib = 0\n"))
    report = drill(setup, config)
    assert verdicts(report)["storage"] == PASSED
    estimated = facts(report, "restore time of the newest file snapshot")
    assert estimated["restored"] is False and estimated["read_bytes_per_second"] > 0
    assert report.path(PathName.STORAGE).restore_estimate_seconds == pytest.approx(
        estimated["bytes"] / estimated["read_bytes_per_second"], rel=0.01
    )


def test_a_lost_store_within_tolerance_degrades_storage(setup: Setup) -> None:
    store = setup.root / "stores" / "s2"
    store.rename(store.with_name("s2.away"))
    try:
        report = drill(setup, setup.config())
    finally:
        store.with_name("s2.away").rename(store)
    assert verdicts(report) == {"keys": PASSED, "storage": DEGRADED, "state": PASSED, "recovery": PASSED}
    storage = report.path(PathName.STORAGE)
    assert "1 of 5 stores unreachable" in (storage.error or "") and "s2" in (storage.error or "")
    assert "1 more may be lost" in (storage.error or "")
    assert "replace-store" in (storage.remedy or "")
    assert report.exit_status == 3


def test_stores_lost_beyond_tolerance_fail_storage_and_state(setup: Setup) -> None:
    moved = [setup.root / "stores" / f"s{n}" for n in (1, 3, 5)]
    for store in moved:
        store.rename(store.with_name(store.name + ".away"))
    try:
        report = drill(setup, setup.config())
    finally:
        for store in moved:
            store.with_name(store.name + ".away").rename(store)
    assert verdicts(report) == {"keys": PASSED, "storage": FAILED, "state": FAILED, "recovery": PASSED}
    storage = report.path(PathName.STORAGE)
    assert "only 2 of 5 stores answer and 3 are needed" in (storage.error or "")
    assert "bring the missing stores back" in (storage.remedy or "")
    assert report.exit_status == 1


def test_a_corrupted_pack_byte_degrades_storage_and_names_repair(setup: Setup) -> None:
    pack = sorted((setup.root / "stores" / "s3" / "data").rglob("*"))[-1]
    original = pack.read_bytes()
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 0x01
    pack.write_bytes(bytes(damaged))
    try:
        report = run_config_drill(load_config(setup.config()), home=setup.home)
    finally:
        pack.write_bytes(original)
    assert verdicts(report) == {"keys": PASSED, "storage": DEGRADED, "state": PASSED, "recovery": PASSED}
    storage = report.path(PathName.STORAGE)
    assert pack.name in (storage.error or "") and "checksum mismatch" in (storage.error or "")
    assert storage.remedy == "run `lifeboat repair` to rebuild the damaged shards from the others"
    assert facts(report, "check --read-data, redundancy per store")["stores_that_may_still_be_lost"] == 1


def test_a_tampered_audit_row_fails_the_recovery_check(setup: Setup) -> None:
    database = setup.root / "keys" / "service" / "recovery.db"
    with sqlite3.connect(database) as connection:
        (details,) = connection.execute("SELECT details FROM audit_entries WHERE seq = 1").fetchone()
        connection.execute("UPDATE audit_entries SET details = ? WHERE seq = 1", ('{"forged": true}',))
    try:
        report = run_config_drill(load_config(setup.config()), home=setup.home)
    finally:
        with sqlite3.connect(database) as connection:
            connection.execute("UPDATE audit_entries SET details = ? WHERE seq = 1", (details,))
    assert verdicts(report) == {"keys": PASSED, "storage": PASSED, "state": PASSED, "recovery": FAILED}
    recovery = report.path(PathName.RECOVERY)
    assert "the audit log does not verify" in (recovery.error or "") and "edited" in (recovery.error or "")
    assert "stop trusting this service" in (recovery.remedy or "")


def test_a_service_that_is_down_fails_the_recovery_check(setup: Setup) -> None:
    report = drill(setup, setup.config("down.toml", **{"recovery.url": '"http://127.0.0.1:9"'}))
    assert verdicts(report)["recovery"] == FAILED
    recovery = report.path(PathName.RECOVERY)
    assert "does not answer" in (recovery.error or "") and "lifeboat serve" in (recovery.remedy or "")
    assert [s.ok for s in report.timeline.of(PathName.RECOVERY)] == [False]


def test_the_audit_log_must_extend_the_head_an_earlier_drill_verified(setup: Setup) -> None:
    history_file = setup.root / "home" / drill_history.HISTORY_FILE
    history_file.unlink(missing_ok=True)
    try:
        first = drill(setup, setup.config())
        drill_history.record_run(setup.home, first)
        head = first.path(PathName.RECOVERY).kept["audit_head"]
        assert head["url"] == setup.service_url and len(head["hash"]) == 64
        second = drill(setup, setup.config())
        assert (
            facts(second, "the audit log verifies against the signed head")["extends_earlier_drill"] is True
        )
        assert verdicts(second)["recovery"] == PASSED

        # a log that no longer holds what an earlier drill saw: rewritten, or restored from a backup
        forged = DrillReport(None, None, [PathName.RECOVERY], "2026-12-06T00:00:00+00:00", Timeline(), [])
        forged.paths = [drill_history_path(PathName.RECOVERY, PASSED)]
        forged.paths[0].kept["audit_head"] = {**head, "hash": "00" * 32}
        drill_history.record_run(setup.home, forged)
        third = drill(setup, setup.config())
        recovery = third.path(PathName.RECOVERY)
        assert verdicts(third)["recovery"] == FAILED
        assert "does not extend the head the drill of 2026-12-06T00:00:00+00:00 verified" in (
            recovery.error or ""
        )
        assert "older backup" in (recovery.remedy or "")
        assert verdicts(third)["keys"] == PASSED
    finally:
        history_file.unlink(missing_ok=True)


def test_a_snapshot_signed_by_another_key_fails_the_state_check(setup: Setup) -> None:
    report = drill(setup, setup.config("trust.toml", **{"state.trust": '"' + "ab" * 32 + '"'}))
    assert verdicts(report) == {"keys": PASSED, "storage": PASSED, "state": FAILED, "recovery": PASSED}
    state = report.path(PathName.STATE)
    assert "not by the trusted key" in (state.error or "") and "rollback" in (state.remedy or "")


def test_without_pinned_keys_the_checks_pass_with_a_note(setup: Setup) -> None:
    report = drill(
        setup, setup.config("unpinned.toml", **{"state.trust": None, "recovery.service_key": None})
    )
    assert set(verdicts(report).values()) == {PASSED}
    assert any("pins no signer" in n for n in report.path(PathName.STATE).outcome.notes)
    assert any("recovery.service_key" in n for n in report.path(PathName.RECOVERY).outcome.notes)


# --- the command line, history, --every -------------------------------------------------------------


def test_the_cli_exit_status_json_report_and_history(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    home = ["--home", str(setup.root / "home")]
    history_file = setup.root / "home" / drill_history.HISTORY_FILE
    history_file.unlink(missing_ok=True)
    html = setup.root / "report.html"
    try:
        assert main_entry([*home, "drill", "--config", str(setup.config()), "--report", str(html)]) == 0
        captured = capsys.readouterr()
        assert "DRILL PASSED: every path checked" in captured.out and "ok   storage  check" in captured.err
        page = html.read_text()
        assert "DRILL PASSED: every path checked" in page and "<th>what to do</th>" in page
        assert "Lifeboat drill of a real setup" in page and "<script" not in page

        store = setup.root / "stores" / "s4"
        store.rename(store.with_name("s4.away"))
        try:
            code = main_entry(["--json", *home, "drill", "--config", str(setup.config())])
        finally:
            store.with_name("s4.away").rename(store)
        document = json.loads(capsys.readouterr().out)
        assert code == 3 and document["verdict"] == DEGRADED and document["version"] == 2

        down = setup.config("down.toml", **{"recovery.url": '"http://127.0.0.1:9"'})
        assert main_entry([*home, "drill", "--config", str(down)]) == 1
        assert "what to do: start it" in capsys.readouterr().out

        assert main_entry(["--json", *home, "drill", "history"]) == 0
        summary = {p["path"]: p for p in json.loads(capsys.readouterr().out)["paths"]}
        assert summary["keys"]["runs"] == 3 and summary["keys"]["last_failure"] is None
        runs = drill_history.read_history(setup.home)
        assert summary["storage"]["last_passed"] == runs[2]["at"]  # the third run passed storage
        assert summary["storage"]["last_failed"] == runs[1]["at"]
        assert "unreachable" in summary["storage"]["last_failure"]
        assert (
            summary["recovery"]["last_verdict"] == FAILED
            and summary["recovery"]["last_passed"] == runs[1]["at"]
        )

        assert main_entry([*home, "drill", "history"]) == 0
        table = capsys.readouterr().out
        assert "3 drill(s) recorded" in table and "does not answer" in table
    finally:
        html.unlink(missing_ok=True)


def test_config_errors_exit_2_naming_the_key(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    bad = setup.root / "bad.toml"
    bad.write_text('version = 1\n[storage]\nstores = ["stores/s1"]\npassphrase = "hunter2"\n')
    assert main_entry(["drill", "--config", str(bad)]) == 2
    message = capsys.readouterr().err
    assert "storage.passphrase" in message and "passphrase_env" in message and "hunter2" not in message
    assert main_entry(["drill", "--config", str(setup.config()), "--seed", "3"]) == 2
    assert "--seed is for the sandbox drill" in capsys.readouterr().err
    assert main_entry(["drill", "--every", "24h"]) == 2


@pytest.mark.slow
def test_every_drills_until_interrupted_and_keeps_the_history(setup: Setup) -> None:
    home = setup.root / "home-every"
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p),
        "LIFEBOAT_DRILL_MIN_EVERY": "0",
    }
    command = [sys.executable, "-m", "lifeboat", "--home", str(home), "drill", "--config"]
    process = subprocess.Popen(
        [*command, str(setup.config()), "--every", "1s"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (home / drill_history.HISTORY_FILE).exists() and len(
                drill_history.read_history(Home(home))
            ) >= 2:
                break
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, errors
    assert b"next drill at" in errors and b"interrupted after" in errors
    runs = drill_history.read_history(Home(home))
    assert len(runs) >= 2 and all(run["verdict"] == PASSED for run in runs)
    assert not list(home.glob(".*.tmp"))
    shutil.rmtree(home)


# --- the config, strictly --------------------------------------------------------------------------------


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "share.txt").write_text("# not a real share\n")
    (tmp_path / "id.key").write_text("AGE-SECRET-KEY-1\n")
    (tmp_path / "pass").write_text("correct horse\n")
    path = tmp_path / "lifeboat.toml"
    path.write_text(text)
    return path


STORAGE = '[storage]\nstores = ["s1", "s2"]\npassphrase_file = "pass"\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version = 1\n", "configures no path"),
        ("version = 2\n" + STORAGE, "version = 1"),
        (STORAGE, "version is missing; write version = 1"),
        ('version = "1"\n' + STORAGE, "version must be an integer, not a string"),
        ("version = 1\n" + STORAGE + "colour = 3\n", "unknown key 'storage.colour'"),
        ("version = 1\nextra = 1\n" + STORAGE, "unknown key 'extra'"),
        (
            'version = 1\n[storage]\nstores = "s1"\npassphrase_file = "pass"\n',
            "storage.stores must be a list",
        ),
        ('version = 1\n[storage]\nstores = ["s1"]\n', "storage needs the passphrase"),
        ('version = 1\n[storage]\nstores = ["s1"]\npassphrase_file = "nope"\n', "storage.passphrase_file: "),
        (
            'version = 1\n[storage]\nstores = ["s1"]\npassphrase_env = "LB_TEST_UNSET_VARIABLE"\n',
            "is not set",
        ),
        ("version = 1\n" + STORAGE + "timeout = 0\n", "storage.timeout must be from 0.1"),
        ("version = 1\n" + STORAGE + "restore_limit_mib = -1\n", "storage.restore_limit_mib must be 0"),
        ('version = 1\n[state]\nsnapshot = "latest"\n', "add a [storage] section"),
        ("version = 1\n" + STORAGE + '[state]\ninvariants = "missing.toml"\n', "state.invariants: "),
        ("version = 1\n" + STORAGE + '[state]\ntrust = "zz"\n', "state.trust: "),
        ('version = 1\n[[keys]]\nidentities = ["id.key"]\n', "keys[0].shares is missing"),
        ('version = 1\n[[keys]]\nshares = ["*.age"]\n', "keys[0].shares: '*.age' matches no file"),
        ('version = 1\n[[keys]]\nshares = ["share.txt"]\ndrill = 0\n', "keys[0].drill must be at least 1"),
        ('version = 1\n[[keys]]\nshares = ["share.txt"]\nfingerprint = "12"\n', "keys[0].fingerprint"),
        ('version = 1\n[keys]\nshares = ["share.txt"]\n', "one or more [[keys]] tables"),
        ('version = 1\n[recovery]\nurl = "ftp://x"\n', "must start with http://"),
        ('version = 1\n[recovery]\nurl = "http://x"\nvault = "12"\n', "recovery.vault must be the vault id"),
        ('version = 1\n[recovery]\nurl = "http://x"\nservice_key = "12"\n', "recovery.service_key must be"),
        ('version = 1\n[recovery]\nurl = "http://x"\nknown_heads = ["pass"]\n', "needs recovery.service_key"),
        ("version = 1\n[recovery\n", "is not valid TOML"),
    ],
)
def test_a_bad_config_is_a_config_error_naming_the_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, text))
    assert expected in str(caught.value)


def test_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, 'version = 1\n[[keys]]\nshares = ["share.txt"]\n' + STORAGE))
    assert config.order == ("keys", "storage")
    assert config.keys[0].shares == (tmp_path / "share.txt",)
    assert config.storage is not None and config.storage.stores == (
        str(tmp_path / "s1"),
        str(tmp_path / "s2"),
    )
    assert config.storage.passphrase.read() == "correct horse"
    assert "horse" not in repr(config.storage.passphrase)


def test_the_example_config_is_complete_and_valid(
    setup: Setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """examples/lifeboat.toml reads cleanly once the files it names exist: no unknown key."""
    example = tmp_path / "lifeboat.toml"
    shutil.copy(ROOT / "examples" / "lifeboat.toml", example)
    with pytest.raises(ConfigError, match="matches no file"):
        load_config(example)
    (tmp_path / "envelopes").mkdir()
    for envelope in (setup.root / "keys" / "envelopes").glob("*.age"):
        shutil.copy(envelope, tmp_path / "envelopes" / envelope.name)
    (tmp_path / "guardians").mkdir()
    for number, name in enumerate(("alice", "bob", "carol"), start=1):
        shutil.copy(
            setup.root / "keys" / f"guardian-{number}" / "age.key", tmp_path / "guardians" / f"{name}.key"
        )
    shutil.copy(ROOT / "examples" / "ledger-invariants.toml", tmp_path / "ledger-invariants.toml")
    (tmp_path / "group").mkdir()
    shutil.copy(
        setup.root / "signers" / "public-key-package.json", tmp_path / "group" / "public-key-package.json"
    )
    monkeypatch.setenv("LIFEBOAT_REPO_PASSPHRASE", "from the environment")
    config = load_config(example)
    assert config.order == ("keys", "storage", "state", "recovery")
    assert len(config.keys[0].shares) == 5 and config.keys[0].share_set == "s-5c1e9a02"
    assert config.storage is not None and len(config.storage.stores) == 5
    assert (
        config.storage.stores[3].startswith("s3://")
        and config.storage.passphrase.read() == "from the environment"
    )
    assert config.state is not None and config.state.trust is not None and config.state.name == "ledger"
    assert config.recovery is not None and config.recovery.service_key is not None


def test_every_takes_durations_and_refuses_less_than_a_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    from lifeboat.cli.drill_cmds import parse_every
    from lifeboat.errors import UsageError

    monkeypatch.delenv("LIFEBOAT_DRILL_MIN_EVERY", raising=False)
    assert parse_every("24h") == 86400 and parse_every("30m") == 1800 and parse_every("90s") == 90
    assert parse_every("1h30m") == 5400 and parse_every("7d") == 7 * 86400
    for text in ("59s", "1", "h", "1.5h", "-1m"):
        with pytest.raises(UsageError):
            parse_every(text)
    monkeypatch.setenv("LIFEBOAT_DRILL_MIN_EVERY", "0")
    assert parse_every("1s") == 1


def test_the_history_keeps_the_newest_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(drill_history, "MAX_RUNS", 3)
    home = Home(tmp_path / "home")
    for number in range(5):
        report = DrillReport(
            None, None, [PathName.KEYS], f"2026-12-0{number + 1}T00:00:00+00:00", Timeline(), []
        )
        report.paths = [drill_history_path(PathName.KEYS, FAILED if number == 3 else PASSED)]
        drill_history.record_run(home, report)
    runs = drill_history.read_history(home)
    assert [run["at"][:10] for run in runs] == ["2026-12-03", "2026-12-04", "2026-12-05"]
    (summary,) = drill_history.summarize(runs)
    assert summary.last_passed == runs[-1]["at"] and summary.last_failed == runs[1]["at"]
    assert (tmp_path / "home" / drill_history.HISTORY_FILE).stat().st_mode & 0o777 == 0o600


def drill_history_path(name: PathName, verdict: str) -> Any:
    from lifeboat.drill.run import PathReport

    return PathReport(name, verdict=verdict, error=None if verdict == PASSED else "broken", remedy="fix it")


def test_an_open_recovery_request_degrades_the_recovery_check(setup: Setup) -> None:
    """The request is vetoed by the owner afterwards, so the vault has none open again."""
    from lifeboat.drill.keys import POLICY_NAME
    from lifeboat.recovery import messages
    from lifeboat.recovery.client import Client
    from lifeboat.recovery.keyfile import read_key_file
    from lifeboat.recovery.keys import KeyKind, PrivateKey

    stranger = PrivateKey.generate(KeyKind.ED25519).public_key
    guardian = read_key_file(setup.root / "keys" / "guardian-1" / "recovery.key")
    request, vault = bytes(range(messages.ID_BYTES)), bytes.fromhex(setup.vault)
    with Client(setup.service_url) as client:
        answer = client.sign_and_act(guardian, vault, messages.OpenRequest(request, stranger, POLICY_NAME))
        assert "request_opened" in answer.kinds
        try:
            report = drill(setup, setup.config())
        finally:
            owner = read_key_file(setup.root / "keys" / "owner" / "owner.key")
            client.sign_and_act(owner, vault, messages.Veto(request))
    assert verdicts(report) == {"keys": PASSED, "storage": PASSED, "state": PASSED, "recovery": DEGRADED}
    recovery = report.path(PathName.RECOVERY)
    assert "1 open recovery request" in (recovery.error or "") and "veto" in (recovery.remedy or "")
    assert verdicts(drill(setup, setup.config()))["recovery"] == PASSED  # vetoed: none open
