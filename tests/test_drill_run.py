"""The drill's orchestration and report, with stand-in paths: the order of acts, the verdicts, RTO,
what a failed path does to those that need it, the JSON and HTML forms, and the CLI's exit code.

The real paths are tested in test_drill_<path>.py and end to end in test_cli_drill.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifeboat.cli.main import main_entry
from lifeboat.drill import run as drill_run
from lifeboat.drill.report import render_html, step_line
from lifeboat.drill.run import (
    CONFIG,
    DEGRADED,
    RECOVERY_ORDER,
    DrillReport,
    PathReport,
    parse_scenario,
    run_drill,
)
from lifeboat.drill.sandbox import Outcome, Sandbox
from lifeboat.drill.timeline import PathName, Phase, StepFailed, Timeline
from lifeboat.errors import UsageError


class StandIn:
    """A path that records its acts and fails where told."""

    def __init__(self, name: PathName, log: list[str], fail_in: Phase | None = None, title: str = "") -> None:
        self.name = name
        self.log = log
        self.fail_in = fail_in
        self.title = title or f"{name.value} step"

    def _act(self, sandbox: Sandbox, timeline: Timeline, phase: Phase) -> None:
        self.log.append(f"{phase.value}:{self.name.value}")
        assert sandbox.root.is_dir()
        with timeline.step(self.name, phase, self.title) as step:
            step.facts["seed"] = sandbox.seed
            if phase is self.fail_in:
                raise StepFailed(f"{self.name.value} could not {phase.value}")

    def setup(self, sandbox: Sandbox, timeline: Timeline) -> None:
        self._act(sandbox, timeline, Phase.SETUP)

    def operate(self, sandbox: Sandbox, timeline: Timeline) -> None:
        self._act(sandbox, timeline, Phase.OPERATE)

    def catastrophe(self, sandbox: Sandbox, timeline: Timeline) -> Outcome:
        self._act(sandbox, timeline, Phase.CATASTROPHE)
        return Outcome(lost={"things": 2}, rpo=0 if self.name is PathName.STATE else None)

    def recover(self, sandbox: Sandbox, timeline: Timeline, outcome: Outcome) -> None:
        self._act(sandbox, timeline, Phase.RECOVER)
        outcome.recovered = dict(outcome.lost)


def stand_ins(log: list[str], **failures: Phase) -> dict[PathName, StandIn]:
    return {p: StandIn(p, log, failures.get(p.value)) for p in RECOVERY_ORDER}


def test_everything_breaks_before_anything_recovers(tmp_path: Path) -> None:
    log: list[str] = []
    report = run_drill(seed=7, accounts=10, workdir=tmp_path, paths=stand_ins(log))
    assert report.passed
    acts = [entry.split(":")[0] for entry in log]
    assert acts == ["setup"] * 5 + ["operate"] * 5 + ["catastrophe"] * 5 + ["recover"] * 5
    assert [e.split(":")[1] for e in log[:5]] == ["storage", "signers", "keys", "state", "chain"]
    assert [e.split(":")[1] for e in log[-5:]] == ["keys", "signers", "state", "chain", "storage"]
    for path in report.paths:
        assert path.verdict == "passed" and path.outcome.recovered == {"things": 2}
        assert path.rto_seconds is not None and path.rto_seconds >= 0
    assert report.rpo_entries == 0
    assert list(tmp_path.iterdir()) == []  # the sandbox is gone


def test_a_failed_recovery_fails_that_path_only(tmp_path: Path) -> None:
    report = run_drill(seed=1, workdir=tmp_path, paths=stand_ins([], signers=Phase.RECOVER))
    assert not report.passed
    verdicts = {p.name: p.verdict for p in report.paths}
    assert verdicts == {
        PathName.KEYS: "passed",
        PathName.SIGNERS: "failed",
        PathName.STATE: "passed",
        PathName.CHAIN: "passed",
        PathName.STORAGE: "passed",
    }
    assert "signers could not recover" in (report.path(PathName.SIGNERS).error or "")
    failed = [s for s in report.timeline.steps if s.ok is False]
    assert len(failed) == 1 and failed[0].error == "signers could not recover"


def test_a_path_needing_a_failed_one_fails_with_the_reason(tmp_path: Path) -> None:
    log: list[str] = []
    report = run_drill(seed=1, workdir=tmp_path, paths=stand_ins(log, storage=Phase.SETUP))
    state = report.path(PathName.STATE)
    assert state.verdict == "failed" and "needs storage" in (state.error or "")
    chain = report.path(PathName.CHAIN)
    assert chain.verdict == "failed" and "needs storage" in (chain.error or "")
    assert "setup:state" not in log and "setup:chain" not in log  # never started on a missing repository
    assert report.path(PathName.KEYS).verdict == "passed"
    assert report.path(PathName.SIGNERS).verdict == "passed"


def test_a_subset_sets_up_what_it_needs_and_drills_only_itself(tmp_path: Path) -> None:
    log: list[str] = []
    report = run_drill(seed=1, workdir=tmp_path, scenario=[PathName.STATE], paths=stand_ins(log))
    assert [p.name for p in report.paths] == [PathName.STATE]
    assert log == [
        "setup:storage",
        "setup:signers",
        "setup:state",
        "operate:storage",
        "operate:signers",
        "operate:state",
        "catastrophe:state",
        "recover:state",
    ]


def test_a_recovery_that_verifies_nothing_does_not_pass(tmp_path: Path) -> None:
    class Silent(StandIn):
        def recover(self, sandbox: Sandbox, timeline: Timeline, outcome: Outcome) -> None:
            outcome.recovered = dict(outcome.lost)

    paths = stand_ins([])
    paths[PathName.KEYS] = Silent(PathName.KEYS, [])
    report = run_drill(seed=1, workdir=tmp_path, scenario=[PathName.KEYS], paths=paths)
    assert not report.passed and "recorded no step" in (report.path(PathName.KEYS).error or "")


def test_keep_leaves_the_sandbox(tmp_path: Path) -> None:
    report = run_drill(seed=1, workdir=tmp_path, keep=True, paths=stand_ins([]))
    assert report.sandbox is not None and Path(report.sandbox).is_dir()
    assert Path(report.sandbox).stat().st_mode & 0o077 == 0


def test_the_json_report_carries_every_step(tmp_path: Path) -> None:
    report = run_drill(seed=3, accounts=5, workdir=tmp_path, paths=stand_ins([]))
    document = json.loads(json.dumps(report.to_json()))
    assert document["format"] == "lifeboat-drill-report" and document["version"] == 2
    assert document["verdict"] == "passed" and document["seed"] == 3 and document["accounts"] == 5
    assert len(document["steps"]) == 20  # five paths, four acts each
    assert {p["path"] for p in document["paths"]} == {p.value for p in RECOVERY_ORDER}
    assert document["kind"] == "sandbox" and document["config"] is None
    assert all(s["ok"] is True and s["facts"] == {"seed": 3} for s in document["steps"])


def test_the_html_report_is_self_contained_and_escaped(tmp_path: Path) -> None:
    log: list[str] = []
    paths = stand_ins(log, keys=Phase.RECOVER)
    paths[PathName.STATE] = StandIn(PathName.STATE, log, title="<script>alert(1)</script> & more")
    page = render_html(run_drill(seed=1, workdir=tmp_path, paths=paths))
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page
    assert "DRILL FAILED: keys did not recover" in page
    assert "<svg" in page and "</svg>" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing from the network
    assert "default-src 'none'" in page


def test_the_step_line_names_a_failure() -> None:
    timeline = Timeline()
    with pytest.raises(StepFailed), timeline.step(PathName.KEYS, Phase.RECOVER, "claim"):
        raise StepFailed("fingerprint differs")
    assert step_line(timeline.steps[0]).startswith("FAIL keys")
    assert step_line(timeline.steps[0]).endswith(": fingerprint differs")


@given(st.lists(st.sampled_from([p.value for p in RECOVERY_ORDER]), min_size=1))
def test_a_scenario_names_each_path_once_in_recovery_order(names: list[str]) -> None:
    chosen = parse_scenario(",".join(names))
    assert chosen == [p for p in RECOVERY_ORDER if p.value in names]


@pytest.mark.parametrize("text", ["", ",", "keys,wallets", "KEYS", "keys;state", "recovery"])
def test_a_bad_scenario_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="--scenario"):
        parse_scenario(text)


def test_the_cli_exits_1_when_a_path_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log: list[str] = []
    fakes = stand_ins(log, storage=Phase.RECOVER)
    monkeypatch.setattr(drill_run, "load_path", lambda name: fakes[name])
    report_file = tmp_path / "report.html"
    code = main_entry(
        ["--json", "drill", "--seed", "9", "--workdir", str(tmp_path), "--report", str(report_file)]
    )
    document = json.loads(capsys.readouterr().out)
    assert code == 1 and document["verdict"] == "failed"
    assert "DRILL FAILED: storage did not recover" in report_file.read_text()
    code = main_entry(["drill", "--scenario", "keys", "--workdir", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 0 and "DRILL PASSED" in captured.out and "ok   keys" in captured.err
    assert main_entry(["drill", "--scenario", "nope"]) == 2


def _documented_report() -> dict[str, Any]:
    text = (Path(__file__).resolve().parents[1] / "docs" / "formats.md").read_text()
    block = text.split("<!-- drill-report-keys:start -->")[1].split("<!-- drill-report-keys:end -->")[0]
    return dict(json.loads(block.split("```json")[1].split("```")[0]))


def _config_report() -> DrillReport:
    """A report of a drill of a real setup, as ``drill.real`` makes one (one degraded path)."""
    timeline = Timeline()
    with timeline.step(PathName.STORAGE, Phase.CHECK, "open the repository") as step:
        step.warning = "1 of 5 stores unreachable"
        step.facts.update(k=3, n=5)
    path = PathReport(PathName.STORAGE, verdict=DEGRADED, error=step.warning, remedy="run `lifeboat repair`")
    path.restore_estimate_seconds = 12.5
    return DrillReport(
        None,
        None,
        [PathName.STORAGE],
        "2026-12-05T18:00:00+00:00",
        timeline,
        [path],
        1.0,
        None,
        CONFIG,
        "/x.toml",
    )


def test_formats_md_documents_exactly_the_report_keys(tmp_path: Path) -> None:
    documented = _documented_report()
    sandbox = run_drill(seed=1, workdir=tmp_path, paths=stand_ins([])).to_json()
    config = _config_report().to_json()
    assert config["verdict"] == DEGRADED and config["kind"] == CONFIG and sandbox["kind"] == "sandbox"
    for actual in (sandbox, config):
        assert set(documented) == set(actual)
        assert set(documented["paths"][0]) == set(actual["paths"][0])
        assert set(documented["steps"][0]) == set(actual["steps"][0])
        assert documented["format"] == actual["format"] and documented["version"] == actual["version"]
        for key, value in documented.items():
            if actual[key] is not None and value is not None:
                assert type(value) is type(actual[key]) or {type(value), type(actual[key])} <= {int, float}, (
                    key
                )
