"""``lifeboat drill``: the main job. Break keys, signers, stores and state at once in a sandbox,
recover every path with the real components, and report RTO, RPO and a verdict per path.

Exit status: 0 when every drilled path recovered, 1 when any did not (the report says which and
why), 2 on a usage error.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated

import typer
from rich.status import Status
from rich.table import Table

from lifeboat.cli.output import emit, info, settings, stderr, stdout
from lifeboat.drill.report import counts_text, render_html, seconds_text, step_line, verdict_text
from lifeboat.drill.run import PASSED, DrillReport, parse_scenario, run_drill
from lifeboat.drill.sandbox import DEFAULT_ACCOUNTS
from lifeboat.drill.timeline import Step
from lifeboat.fs import PUBLIC_MODE, check_writable, write_atomic

drill_app = typer.Typer(
    help="Disaster drills: break every path at once, recover each, report RTO/RPO.",
    invoke_without_command=True,
    no_args_is_help=False,
)

MAX_ACCOUNTS = 50_000_000


class _Progress:
    """One line per finished step; on a terminal, a spinner naming the step under way."""

    def __init__(self) -> None:
        self._status: Status | None = None

    def __enter__(self) -> _Progress:
        if stderr.is_terminal and not settings.json:
            self._status = stderr.status("setting up the sandbox", spinner="dots")
            self._status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.stop()

    def __call__(self, step: Step) -> None:
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
            help="Where to make the sandbox (default: the system's temporary directory).", metavar="DIR"
        ),
    ] = None,
) -> None:
    """Run a sandbox drill on embedded defaults: no configuration, nothing outside the sandbox touched."""
    if context.invoked_subcommand is not None:
        return
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
        raise typer.Exit(1)


def _print_summary(report: DrillReport) -> None:
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


def register(app: typer.Typer) -> None:
    app.add_typer(drill_app, name="drill")
