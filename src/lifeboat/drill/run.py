"""The sandbox drill's order of events, and the verdict it comes to.

All selected paths are set up, operated and broken before any recovers (the catastrophe is all
at once), then each recovers in turn: keys, signers, state (from the surviving stores), chain, storage
(rebuilding the destroyed stores). A path whose act fails is failed; the paths that depend on it
are failed with the reason, and the others go on, so one report shows every path.

RTO of a path: the wall time of its recovery steps, from the first step after the catastrophe to
its last verified step. RPO: journal entries (state changes) that were made before the catastrophe
and did not come back; the exploit's own entries are not counted, they are what the rollback
removes on purpose.
"""

from __future__ import annotations

import importlib
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from lifeboat.drill.sandbox import DEFAULT_ACCOUNTS, DrillPath, Outcome, Sandbox
from lifeboat.drill.timeline import Listener, PathName, Phase, Timeline, one_line
from lifeboat.errors import UsageError

FORMAT: Final = "lifeboat-drill-report"
#: Version 2 added ``kind``, ``config``, the ``degraded`` verdict, ``remedy``,
#: ``restore_estimate_seconds`` and the steps' ``warning`` (a drill of a real setup).
VERSION: Final = 2

#: The two kinds of drill: a throw-away sandbox, or the checks of a real setup (``--config``).
SANDBOX: Final = "sandbox"
CONFIG: Final = "config"

#: Set-up order (what a path needs exists before it), and the order of recovery.
SETUP_ORDER: Final = (PathName.STORAGE, PathName.SIGNERS, PathName.KEYS, PathName.STATE, PathName.CHAIN)
RECOVERY_ORDER: Final = (PathName.KEYS, PathName.SIGNERS, PathName.STATE, PathName.CHAIN, PathName.STORAGE)
#: A path is set up (not broken or recovered) when a selected path needs it.
NEEDS: Final[Mapping[PathName, frozenset[PathName]]] = {
    PathName.STATE: frozenset({PathName.STORAGE, PathName.SIGNERS}),
    PathName.CHAIN: frozenset({PathName.STORAGE, PathName.SIGNERS}),
}
#: Where each path's class lives; imported only when the path runs.
IMPLEMENTATIONS: Final[Mapping[PathName, str]] = {
    PathName.KEYS: "lifeboat.drill.keys:KeysPath",
    PathName.SIGNERS: "lifeboat.drill.signers:SignersPath",
    PathName.STORAGE: "lifeboat.drill.storage:StoragePath",
    PathName.STATE: "lifeboat.drill.state:StatePath",
    PathName.CHAIN: "lifeboat.drill.chain:ChainPath",
}

PASSED: Final = "passed"
#: Only a drill of a real setup: the path works, but with less margin than it was built with
#: (a store down within tolerance, a share that no longer opens while enough others do).
DEGRADED: Final = "degraded"
FAILED: Final = "failed"
#: Exit status per verdict (``3``: done, but look, as ``lifeboat check`` exits when degraded).
EXIT_STATUS: Final[Mapping[str, int]] = {PASSED: 0, DEGRADED: 3, FAILED: 1}


@dataclass
class PathReport:
    """One path's verdict, with what it lost and what came back."""

    name: PathName
    verdict: str = PASSED
    error: str | None = None
    rto_seconds: float | None = None
    outcome: Outcome = field(default_factory=Outcome)
    #: What to do about ``error`` (a drill of a real setup): one line, a command where there is one.
    remedy: str | None = None
    #: The storage path of a drill of a real setup: how long restoring the newest file snapshot
    #: would take at the read throughput measured by its check.
    restore_estimate_seconds: float | None = None
    #: What a later drill checks against, kept in the drill history (not in the report): the
    #: recovery path's verified audit head (``{"url", "seq", "hash"}``).
    kept: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        estimate = self.restore_estimate_seconds
        return {
            "path": self.name.value,
            "verdict": self.verdict,
            "error": self.error,
            "remedy": self.remedy,
            "rto_seconds": None if self.rto_seconds is None else round(self.rto_seconds, 6),
            "restore_estimate_seconds": None if estimate is None else round(estimate, 3),
            "lost": self.outcome.lost,
            "recovered": self.outcome.recovered,
            "rpo_entries": self.outcome.rpo,
            "notes": self.outcome.notes,
        }


@dataclass
class DrillReport:
    """A drill's result: a sandbox drill (``seed``, ``accounts``) or a real setup's (``config``)."""

    seed: int | None
    accounts: int | None
    scenario: list[PathName]
    started_at: str
    timeline: Timeline
    paths: list[PathReport]
    seconds: float = 0.0
    sandbox: str | None = None
    kind: str = SANDBOX
    #: The configuration file a drill of a real setup read.
    config: str | None = None

    @property
    def passed(self) -> bool:
        return all(p.verdict == PASSED for p in self.paths)

    @property
    def verdict(self) -> str:
        """``failed`` if any path failed, else ``degraded`` if any is, else ``passed``."""
        verdicts = {p.verdict for p in self.paths}
        return FAILED if FAILED in verdicts else DEGRADED if DEGRADED in verdicts else PASSED

    @property
    def exit_status(self) -> int:
        return EXIT_STATUS[self.verdict]

    @property
    def rpo_entries(self) -> int | None:
        """Journal entries not recovered, over the paths that keep a journal (None: none drilled)."""
        values = [p.outcome.rpo for p in self.paths if p.outcome.rpo is not None]
        return sum(values) if values else None

    def path(self, name: PathName) -> PathReport:
        return next(p for p in self.paths if p.name is name)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "kind": self.kind,
            "config": self.config,
            "verdict": self.verdict,
            "seed": self.seed,
            "accounts": self.accounts,
            "scenario": [p.value for p in self.scenario],
            "started_at": self.started_at,
            "seconds": round(self.seconds, 6),
            "rpo_entries": self.rpo_entries,
            "sandbox": self.sandbox,
            "paths": [p.to_json() for p in self.paths],
            "steps": [s.to_json() for s in self.timeline.steps],
        }


def parse_scenario(text: str | None) -> list[PathName]:
    """``keys,state`` -> those paths in recovery order; None or ``all`` -> every path."""
    if text is None or text.strip() == "all":
        return list(RECOVERY_ORDER)
    names = [part.strip() for part in text.split(",") if part.strip()]
    known = {p.value: p for p in RECOVERY_ORDER}
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise UsageError(
            f"--scenario {text[:40]!r}: name paths from {', '.join(known)} (comma-separated), or 'all'"
        )
    chosen = {known[n] for n in names}
    return [p for p in RECOVERY_ORDER if p in chosen]


def load_path(name: PathName) -> DrillPath:
    module, _, attribute = IMPLEMENTATIONS[name].partition(":")
    cls: Callable[[], DrillPath] = getattr(importlib.import_module(module), attribute)
    return cls()


def _needed(scenario: Sequence[PathName]) -> list[PathName]:
    wanted = set(scenario)
    for name in scenario:
        wanted |= NEEDS.get(name, frozenset())
    return [p for p in SETUP_ORDER if p in wanted]


def run_drill(
    *,
    seed: int,
    accounts: int = DEFAULT_ACCOUNTS,
    scenario: Sequence[PathName] = RECOVERY_ORDER,
    keep: bool = False,
    workdir: Path | None = None,
    listener: Listener | None = None,
    paths: Mapping[PathName, DrillPath] | None = None,
) -> DrillReport:
    """Build a sandbox, run every act, and say what held; the sandbox is removed unless ``keep``.

    ``paths`` replaces the real path implementations (for testing the orchestration itself).
    """
    if accounts < 1:
        raise UsageError(f"--accounts must be at least 1, not {accounts}")
    root = Path(tempfile.mkdtemp(prefix="lifeboat-drill-", dir=workdir))
    root.chmod(0o700)
    timeline = Timeline(listener=listener)
    started = time.perf_counter()
    report = DrillReport(
        seed=seed,
        accounts=accounts,
        scenario=list(scenario),
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        timeline=timeline,
        paths=[PathReport(name) for name in scenario],
        sandbox=str(root) if keep else None,
    )
    sandbox = Sandbox(root=root, seed=seed, accounts=accounts)
    try:
        _run_acts(sandbox, timeline, report, _needed(scenario), paths)
    finally:
        sandbox.close()
        report.seconds = time.perf_counter() - started
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    return report


def _run_acts(
    sandbox: Sandbox,
    timeline: Timeline,
    report: DrillReport,
    needed: list[PathName],
    paths: Mapping[PathName, DrillPath] | None,
) -> None:
    broken: dict[PathName, str] = {}  # a path that cannot go on -> why
    #: Paths whose set-up or operation failed: what they should have provided does not exist.
    #: (A failed recovery leaves the set-up in place: the signers path failing to repair a share
    #: still leaves a group that signs, so the state path goes on.)
    missing: set[PathName] = set()
    drilled = {p.name for p in report.paths}

    def fail(name: PathName, phase: Phase, why: str) -> None:
        broken.setdefault(name, why)
        if phase in (Phase.SETUP, Phase.OPERATE):
            missing.add(name)
        if name in drilled:
            entry = report.path(name)
            entry.verdict, entry.error = FAILED, entry.error or why

    def blocked(name: PathName) -> str | None:
        for need in sorted(NEEDS.get(name, frozenset())):
            if need in missing:
                return f"{name.value} needs {need.value}, which failed: {broken[need]}"
        return broken.get(name)

    def act(name: PathName, phase: Phase, body: Callable[[], None]) -> None:
        why = blocked(name)
        if why is not None:
            fail(name, phase, why)
            return
        try:
            body()
        except Exception as error:  # the step recorded it; the drill goes on with the other paths
            fail(name, phase, f"{phase.value}: {one_line(error, 300)}")

    implementations: dict[PathName, DrillPath] = {}
    for name in needed:

        def set_up(name: PathName = name) -> None:
            implementations[name] = paths[name] if paths is not None else load_path(name)
            implementations[name].setup(sandbox, timeline)

        act(name, Phase.SETUP, set_up)
    for name in needed:

        def operate(name: PathName = name) -> None:
            implementations[name].operate(sandbox, timeline)

        act(name, Phase.OPERATE, operate)
    for name in [p for p in SETUP_ORDER if p in drilled]:

        def break_(name: PathName = name) -> None:
            report.path(name).outcome = implementations[name].catastrophe(sandbox, timeline)

        act(name, Phase.CATASTROPHE, break_)
    for name in [p for p in RECOVERY_ORDER if p in drilled]:
        entry = report.path(name)

        def recover(name: PathName = name, entry: PathReport = entry) -> None:
            try:
                implementations[name].recover(sandbox, timeline, entry.outcome)
            finally:
                steps = timeline.of(name, Phase.RECOVER)
                if steps:
                    entry.rto_seconds = steps[-1].started + steps[-1].seconds - steps[0].started

        act(name, Phase.RECOVER, recover)
        if entry.verdict == PASSED and not timeline.of(name, Phase.RECOVER):
            fail(name, Phase.RECOVER, "recovery recorded no step, so nothing was verified")
