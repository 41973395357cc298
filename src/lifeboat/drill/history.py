"""The history of drills of a real setup, kept in the Lifeboat home (``drill-history.json``).

One JSON document, format ``lifeboat-drill-history`` version 1 (docs/formats.md): the newest
:data:`MAX_RUNS` runs, oldest first, each with its time, configuration file, verdict and every
path's verdict, error and remedy. Never a secret. Each run is appended under the home's lock and
the file replaced atomically, so two drills at once (a timer and a hand) cannot lose a run and a
crash cannot leave half a file. :func:`summarize` answers "when did each path last pass?".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from lifeboat.documents import parse_versioned
from lifeboat.drill.run import DEGRADED, FAILED, PASSED, DrillReport
from lifeboat.errors import HomeError
from lifeboat.fs import SECRET_MODE, read_bounded, write_atomic
from lifeboat.home import Home

__all__ = [
    "HISTORY_FILE",
    "MAX_RUNS",
    "PathSummary",
    "last_audit_head",
    "read_history",
    "record_run",
    "summarize",
]

HISTORY_FORMAT: Final = "lifeboat-drill-history"
HISTORY_VERSION: Final = 1
HISTORY_FILE: Final = "drill-history.json"
#: Runs kept: at one drill a day, almost three years.
MAX_RUNS: Final = 1000
MAX_HISTORY_BYTES: Final = 32 * 1024 * 1024
#: Longest error or remedy kept per path.
MAX_TEXT: Final = 500


def history_file(home: Home) -> Path:
    return home.path / HISTORY_FILE


def _run_of(report: DrillReport) -> dict[str, Any]:
    return {
        "at": report.started_at,
        "config": report.config,
        "verdict": report.verdict,
        "seconds": round(report.seconds, 3),
        "paths": {
            p.name.value: {
                "verdict": p.verdict,
                "error": None if p.error is None else p.error[:MAX_TEXT],
                "remedy": None if p.remedy is None else p.remedy[:MAX_TEXT],
                **p.kept,
            }
            for p in report.paths
        },
    }


def last_audit_head(home: Home, url: str) -> tuple[str, int, bytes] | None:
    """The newest audit head a drill verified for the service at ``url``: (when, seq, hash)."""
    for run in reversed(read_history(home)):
        head = run["paths"].get("recovery", {}).get("audit_head")
        if isinstance(head, dict) and head.get("url") == url:
            try:
                return run["at"], int(head["seq"]), bytes.fromhex(str(head["hash"]))
            except (KeyError, TypeError, ValueError):
                raise HomeError(
                    f"{history_file(home)}: the audit head of the run at {run['at']} is malformed"
                ) from None
    return None


def read_history(home: Home) -> list[dict[str, Any]]:
    """The runs recorded in ``home``, oldest first (none when there is no history yet)."""
    path = history_file(home)
    if not path.exists():
        return []
    body = parse_versioned(
        read_bounded(path, MAX_HISTORY_BYTES, what="drill history"),
        fmt=HISTORY_FORMAT,
        version=HISTORY_VERSION,
        what=str(path),
        kind="a Lifeboat drill history",
        error=HomeError,
    )
    runs = body.get("runs")
    if not isinstance(runs, list) or not all(_valid_run(run) for run in runs):
        raise HomeError(f"{path} has a malformed run; move it aside and the next drill starts a new history")
    return runs


def _valid_run(run: object) -> bool:
    if (
        not isinstance(run, dict)
        or not isinstance(run.get("at"), str)
        or not isinstance(run.get("paths"), dict)
    ):
        return False
    return all(
        isinstance(entry, dict) and entry.get("verdict") in (PASSED, FAILED, DEGRADED)
        for entry in run["paths"].values()
    )


def record_run(home: Home, report: DrillReport) -> Path:
    """Append ``report`` to the history (keeping the newest :data:`MAX_RUNS`); the file's path."""
    path = history_file(home)
    with home.lock():
        runs = [*read_history(home), _run_of(report)][-MAX_RUNS:]
        document = {"format": HISTORY_FORMAT, "version": HISTORY_VERSION, "runs": runs}
        write_atomic(
            path, orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n", mode=SECRET_MODE, overwrite=True
        )
    return path


@dataclass(frozen=True)
class PathSummary:
    """One path across the history: when it last ran and last passed, and its last failure."""

    path: str
    runs: int
    last_ran: str
    last_verdict: str
    last_passed: str | None
    last_failed: str | None
    last_failure: str | None
    last_remedy: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def summarize(runs: list[dict[str, Any]]) -> list[PathSummary]:
    """Per path drilled in ``runs`` (in the order first seen): its last run, pass and failure.

    A ``degraded`` run is not a pass: it counts as the last failure (with its reason), since the
    path then works with less margin than it was built with.
    """
    seen: dict[str, dict[str, Any]] = {}
    for run in runs:
        for name, entry in run["paths"].items():
            summary = seen.setdefault(
                name, {"runs": 0, "passed": None, "failed": None, "error": None, "remedy": None}
            )
            summary["runs"] += 1
            summary["ran"], summary["verdict"] = run["at"], entry["verdict"]
            if entry["verdict"] == PASSED:
                summary["passed"] = run["at"]
            else:
                summary["failed"], summary["error"], summary["remedy"] = (
                    run["at"],
                    entry.get("error"),
                    entry.get("remedy"),
                )
    return [
        PathSummary(
            name, s["runs"], s["ran"], s["verdict"], s["passed"], s["failed"], s["error"], s["remedy"]
        )
        for name, s in seen.items()
    ]
