"""The drill's chain path, end to end on the in-process chain, and where it fails when broken."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifeboat.drill import chain as chain_path
from lifeboat.drill.run import run_drill
from lifeboat.drill.timeline import PathName
from lifeboat.onchain import watch


def _facts(report: object, title: str) -> dict[str, object]:
    steps = [s for s in report.timeline.steps if s.title == title]  # type: ignore[attr-defined]
    assert len(steps) == 1, title
    assert steps[0].ok, steps[0].error
    return dict(steps[0].facts)


def test_exploit_pause_settle_and_every_account_paid_back(tmp_path: Path) -> None:
    report = run_drill(seed=11, accounts=12, scenario=[PathName.CHAIN], workdir=tmp_path)
    entry = report.path(PathName.CHAIN)
    assert report.passed, entry.error
    assert _facts(report, "the watch flags the live state")["violated"] == "conservation"
    assert _facts(report, "the pause order halts the vault")["paused"] is True
    paid = _facts(report, "every account claims its pre-exploit balance")
    assert paid["accounts"] == 12
    # what the attacker drained is exactly what the claims paid back, to the wei
    assert entry.outcome.lost["wei"] == entry.outcome.recovered["wei"] == int(str(paid["paid_wei"]))


def test_invariants_that_miss_the_exploit_fail_the_watch_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lenient = 'version = 1\n[[bound]]\nname = "no-negative"\nwhere = { kind = "account" }\nfield = "balances.*"\nmin = 0\n'
    monkeypatch.setattr(watch, "VAULT_INVARIANTS", lenient)
    report = run_drill(seed=11, accounts=4, scenario=[PathName.CHAIN], workdir=tmp_path)
    entry = report.path(PathName.CHAIN)
    assert not report.passed and "does not flag the drained vault" in (entry.error or "")


def test_operators_short_of_a_quorum_cannot_pause(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_setup = chain_path.ChainPath.setup

    def lose_three_shares(self: chain_path.ChainPath, sandbox: object, timeline: object) -> None:
        real_setup(self, sandbox, timeline)  # type: ignore[arg-type]
        kept = sandbox.scratch["chain"]  # type: ignore[attr-defined]
        for identifier in (1, 2, 3):
            kept.operators.key_path(identifier).unlink()

    monkeypatch.setattr(chain_path.ChainPath, "setup", lose_three_shares)
    report = run_drill(seed=11, accounts=4, scenario=[PathName.CHAIN], workdir=tmp_path)
    entry = report.path(PathName.CHAIN)
    assert not report.passed and "a signature needs 3" in (entry.error or "")
    failed = [s for s in report.timeline.steps if s.ok is False]
    assert failed[0].title == "the operators sign the pause order"
