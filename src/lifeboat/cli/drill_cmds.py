"""``lifeboat drill``: the main job. Break keys, signers, stores and state at once in a sandbox,
recover every path with the real components, and report RTO, RPO and a verdict per path.

``lifeboat drill --config lifeboat.toml`` runs the read-only checks of a real setup instead
(``--every 24h`` again and again), recording each run in the home's drill history, which
``lifeboat drill history`` shows.

Exit status: 0 when every drilled path recovered (passed), 1 when any did not (the report says
which and why), 3 when a real setup's path is degraded (works, with less margin than built), 2 on
a usage or configuration error, 130 when ``--every`` is interrupted.
"""

from __future__ import annotations

import functools
import os
import re
import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.status import Status
from rich.table import Table

from lifeboat.cli.output import emit, info, settings, stderr, stdout
from lifeboat.errors import UsageError
from lifeboat.fs import PUBLIC_MODE, check_writable, write_atomic

if TYPE_CHECKING:
    from lifeboat.drill.run import DrillReport
    from lifeboat.drill.timeline import Step

drill_app = typer.Typer(
    help="Disaster drills: break every path at once, recover each, report RTO/RPO.",
    invoke_without_command=True,
    no_args_is_help=False,
)

MAX_ACCOUNTS = 50_000_000
#: ``lifeboat.drill.sandbox.DEFAULT_ACCOUNTS``, written out so that building the commands does
#: not load the drill code (tests/test_cli_startup.py checks that the two agree).
DEFAULT_ACCOUNTS = 100_000
#: The shortest ``--every``; $LIFEBOAT_DRILL_MIN_EVERY (seconds) lowers it, for tests only.
MIN_EVERY_SECONDS = 60.0
ENV_MIN_EVERY = "LIFEBOAT_DRILL_MIN_EVERY"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(?:(\d+)([smhd]))+")


def parse_every(text: str) -> float:
    """``24h``, ``30m``, ``90s``, ``1h30m``, ``7d`` -> seconds; refused below the minimum."""
    compact = text.strip().lower()
    if not _DURATION.fullmatch(compact):
        raise UsageError(f"--every {text!r}: write a duration such as 24h, 30m, 90s or 1h30m")
    seconds = float(sum(int(n) * _UNITS[u] for n, u in re.findall(r"(\d+)([smhd])", compact)))
    minimum = MIN_EVERY_SECONDS
    override = os.environ.get(ENV_MIN_EVERY)
    if override is not None:
        try:
            minimum = float(override)
        except ValueError:
            raise UsageError(f"${ENV_MIN_EVERY} must be a number of seconds, not {override!r}") from None
    if seconds < minimum:
        raise UsageError(f"--every {text}: drill at most once a minute (60s); a drill reads every shard")
    return seconds


class _Progress:
    """One line per finished step; on a terminal, a spinner naming the step under way."""

    def __init__(self, first: str = "setting up the sandbox") -> None:
        self._status: Status | None = None
        self._first = first

    def __enter__(self) -> _Progress:
        if stderr.is_terminal and not settings.json:
            self._status = stderr.status(self._first, spinner="dots")
            self._status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.stop()

    def __call__(self, step: Step) -> None:
        from lifeboat.drill.report import step_line

        if step.ok is None:
            if self._status is not None:
                self._status.update(f"{step.path.value} {step.phase.value}: {step.title}")
            return
        stderr.print(step_line(step), markup=False, style=None if step.ok else "bold red")


@drill_app.callback()
def drill(
    context: typer.Context,
    seed: Annotated[
        int | None,
        typer.Option(help="Make the drill reproducible: the same ledger, files and choices of what breaks."),
    ] = None,
    accounts: Annotated[
        int,
        typer.Option(help="Ledger size of the state path.", min=1, max=MAX_ACCOUNTS),
    ] = DEFAULT_ACCOUNTS,
    scenario: Annotated[
        str | None,
        typer.Option(help="Paths to drill, comma-separated: keys, signers, storage, state (default: all)."),
    ] = None,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the sandbox directory for inspection (its path is printed).")
    ] = False,
    report_file: Annotated[
        Path | None,
        typer.Option("--report", help="Also write a self-contained HTML report here.", metavar="FILE.html"),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing report file.")] = False,
    workdir: Annotated[
        Path | None,
        typer.Option(
            help="Where to make the sandbox, or a --config drill's scratch space (default: the "
            "system's temporary directory).",
            metavar="DIR",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Drill a real setup, read-only, as this TOML file describes (examples/lifeboat.toml).",
            metavar="FILE",
        ),
    ] = None,
    every: Annotated[
        str | None,
        typer.Option(
            help="With --config: drill again this long after each drill ends (24h, 30m, 90s), until "
            "interrupted.",
            metavar="DURATION",
        ),
    ] = None,
) -> None:
    """Run a sandbox drill on embedded defaults (nothing outside the sandbox touched), or with
    --config the read-only checks of a real setup."""
    from lifeboat.drill.report import render_html
    from lifeboat.drill.run import parse_scenario, run_drill

    if context.invoked_subcommand is not None:
        return
    if config is not None:
        given = [
            name
            for name, value in (("--seed", seed), ("--scenario", scenario), ("--keep", keep or None))
            if value is not None
        ]
        if given or accounts != DEFAULT_ACCOUNTS:
            raise UsageError(f"{', '.join(given) or '--accounts'} is for the sandbox drill, not --config")
        _config_drills(config, every, report_file, force, workdir)
        return
    if every is not None:
        raise UsageError("--every repeats a drill of a real setup: give --config FILE too")
    chosen = parse_scenario(scenario)
    if report_file is not None:
        check_writable(report_file, overwrite=force)
    if seed is None:
        seed = secrets.randbelow(2**32)
    info(f"drilling {', '.join(p.value for p in chosen)} in a sandbox (seed {seed}, {accounts:,} accounts)")
    with _Progress() as progress:
        report = run_drill(
            seed=seed,
            accounts=accounts,
            scenario=chosen,
            keep=keep,
            workdir=workdir,
            listener=None if settings.json else progress,
        )
    if report_file is not None:
        write_atomic(report_file, render_html(report).encode(), mode=PUBLIC_MODE, overwrite=force)
        info(f"wrote {report_file}")
    emit(report.to_json(), lambda: _print_summary(report))
    if not report.passed:
        raise typer.Exit(report.exit_status)


def _print_summary(report: DrillReport) -> None:
    from lifeboat.drill.report import counts_text, seconds_text, verdict_text
    from lifeboat.drill.run import PASSED

    table = Table(title=None, show_edge=False, pad_edge=False)
    for column in ("path", "verdict", "RTO", "lost", "recovered"):
        table.add_column(column, justify="right" if column == "RTO" else "left")
    for path in report.paths:
        table.add_row(
            path.name.value,
            path.verdict,
            seconds_text(path.rto_seconds),
            counts_text(path.outcome.lost),
            counts_text(path.outcome.recovered),
            style=None if path.verdict == PASSED else "red",
        )
    stdout.print()
    stdout.print(table)
    rpo = report.rpo_entries
    if rpo is not None:
        stdout.print(f"RPO: {rpo} journal entries not recovered")
    for path in report.paths:
        if path.error:
            stdout.print(f"{path.name.value}: {path.error}", style="red")
    if report.sandbox:
        stdout.print(f"sandbox kept at {report.sandbox}")
    stdout.print(f"{verdict_text(report)} in {seconds_text(report.seconds)}", style="bold")


def _config_drills(
    config_file: Path, every: str | None, report_file: Path | None, force: bool, workdir: Path | None
) -> None:
    """One drill of the real setup, or (``every``) one after another until interrupted."""
    from lifeboat.drill.config import load_config
    from lifeboat.drill.history import record_run
    from lifeboat.drill.real import run_config_drill
    from lifeboat.drill.report import render_html
    from lifeboat.home import Home

    interval = None if every is None else parse_every(every)
    config = load_config(config_file)
    if report_file is not None:
        check_writable(report_file, overwrite=force)
    home = Home(settings.home)
    drills = 0
    try:
        while True:
            info(f"drilling {', '.join(config.order)} of the setup in {config_file} (read-only)")
            with _Progress("opening the setup") as progress:
                report = run_config_drill(
                    config, home=home, listener=None if settings.json else progress, workdir=workdir
                )
            record_run(home, report)
            drills += 1
            if report_file is not None:
                write_atomic(report_file, render_html(report).encode(), mode=PUBLIC_MODE, overwrite=True)
                info(f"wrote {report_file}")
            emit(report.to_json(), functools.partial(_print_config_summary, report))
            if interval is None:
                raise typer.Exit(report.exit_status)
            upcoming = datetime.now(UTC) + timedelta(seconds=interval)
            info(f"next drill at {upcoming.isoformat(timespec='seconds')} (Ctrl-C stops)")
            time.sleep(interval)
    except KeyboardInterrupt:
        # a drill under way leaves nothing behind (its scratch space is removed, the history is
        # written atomically or not at all)
        stderr.print(f"interrupted after {drills} drill(s); history in {home.path}", markup=False)
        raise typer.Exit(130) from None


def _print_config_summary(report: DrillReport) -> None:
    from lifeboat.drill.report import seconds_text, verdict_text
    from lifeboat.drill.run import FAILED, PASSED

    table = Table(title=None, show_edge=False, pad_edge=False)
    for column in ("path", "verdict", "restore estimate", "took"):
        table.add_column(column, justify="left" if column in ("path", "verdict") else "right")
    for path in report.paths:
        steps = report.timeline.of(path.name)
        took = sum(step.seconds for step in steps)
        table.add_row(
            path.name.value,
            path.verdict,
            seconds_text(path.restore_estimate_seconds),
            seconds_text(took if steps else None),
            style=None if path.verdict == PASSED else "red" if path.verdict == FAILED else "yellow",
        )
    stdout.print()
    stdout.print(table)
    for path in report.paths:
        if path.error:
            stdout.print(
                f"{path.name.value}: {path.error}", style="red" if path.verdict == FAILED else "yellow"
            )
            stdout.print(f"  what to do: {path.remedy}")
        for note in path.outcome.notes:
            stdout.print(f"{path.name.value}: note: {note}")
    stdout.print(f"{verdict_text(report)} in {seconds_text(report.seconds)}", style="bold")


def _when(iso: str) -> str:
    """``2026-12-05T21:22:46+00:00`` -> ``2026-12-05 21:22Z`` (the history keeps the seconds)."""
    return iso[:16].replace("T", " ") + "Z" if iso.endswith("+00:00") else iso


@drill_app.command("history")
def history_command() -> None:
    """When each path of a real setup last passed, last ran, and why it last failed."""
    from lifeboat.drill.history import read_history, summarize
    from lifeboat.drill.run import PASSED
    from lifeboat.home import Home

    home = Home(settings.home)
    runs = read_history(home)
    summaries = summarize(runs)
    data = {"runs": len(runs), "paths": [s.to_json() for s in summaries]}

    def human() -> None:
        if not summaries:
            stdout.print("no drill of a real setup recorded yet; run `lifeboat drill --config lifeboat.toml`")
            return
        table = Table(title=None, show_edge=False, pad_edge=False)
        for column in ("path", "last passed", "last ran", "verdict"):
            table.add_column(column, no_wrap=True)
        table.add_column("last failure", overflow="fold")
        for summary in summaries:
            failure = "-"
            if summary.last_failed is not None:
                failure = f"{_when(summary.last_failed)}: {summary.last_failure or summary.last_verdict}"
            table.add_row(
                summary.path,
                _when(summary.last_passed) if summary.last_passed else "never",
                _when(summary.last_ran),
                summary.last_verdict,
                failure,
                style=None if summary.last_verdict == PASSED else "red",
            )
        stdout.print(table)
        stdout.print(f"{len(runs)} drill(s) recorded in {home.path}")

    emit(data, human)
