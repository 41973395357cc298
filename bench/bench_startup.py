"""Benchmark CLI start-up: ``lifeboat --help`` and light commands, against ``restic version``.

Usage::

    python bench/bench_startup.py [--repeat N] [--quick] [--json] [--lifeboat CMD]

Each case is a whole process, started and waited for (output discarded): ``lifeboat --help``,
``--version``, the help of a few groups and commands, and for scale ``python -c pass`` (the
interpreter alone), ``python -c "import typer"`` (the CLI framework, which every ``lifeboat``
command pays), ``import typer, pydantic`` (typer parses option values with pydantic, so every
command but the top-level ``--help`` and ``--version`` pays for that too) and ``restic version`` (skipped with a note if restic is not on PATH). The cases
run round-robin, ``--repeat`` times (21; 7 with ``--quick``) after one warm-up round, so load
that comes and goes hits them alike; the table gives the median and the fastest run (wall
clock), the median CPU time (user + system, less sensitive to other load) and each wall median's
ratio to restic's. The target is a median under 0.2 s for the Lifeboat cases.

Lifeboat runs as this interpreter's ``python -m lifeboat`` (set PYTHONPATH to measure a
checkout), or as ``--lifeboat CMD``. The load average before and after is printed. The table
goes to stdout, or to stderr when ``--json`` puts a JSON object on stdout.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness import default_lifeboat_command, output_of

TARGET_S = 0.2

#: (label, arguments after ``lifeboat``): the commands whose start-up must stay light.
LIFEBOAT_CASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("lifeboat --help", ("--help",)),
    ("lifeboat --version", ("--version",)),
    ("lifeboat mnemonic --help", ("mnemonic", "--help")),
    ("lifeboat shares --help", ("shares", "--help")),
    ("lifeboat frost --help", ("frost", "--help")),
    ("lifeboat repo --help", ("repo", "--help")),
    ("lifeboat backup --help", ("backup", "--help")),
)


@dataclass
class Case:
    label: str
    argv: list[str]
    lifeboat: bool
    samples: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    failures: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")


def run_once(argv: Sequence[str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system) and exit status of one run of ``argv``."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return seconds, usage.ru_utime + usage.ru_stime, proc.returncode


def cases(lifeboat: list[str]) -> tuple[list[Case], list[str]]:
    found = [
        Case("python -c pass", [sys.executable, "-c", "pass"], lifeboat=False),
        Case("python -c 'import typer'", [sys.executable, "-c", "import typer"], lifeboat=False),
        Case(
            "python -c 'import typer, pydantic'",
            [sys.executable, "-c", "import typer, pydantic"],
            lifeboat=False,
        ),
    ]
    notes = []
    restic = shutil.which("restic")
    if restic:
        found.append(Case("restic version", [restic, "version"], lifeboat=False))
    else:
        notes.append("restic is not on PATH: no restic version row, no ratios")
    found += [Case(label, [*lifeboat, *args], lifeboat=True) for label, args in LIFEBOAT_CASES]
    return found, notes


def measure(found: list[Case], repeat: int) -> None:
    for case in found:  # warm-up: page cache, .pyc files
        run_once(case.argv)
    for _ in range(repeat):
        for case in found:
            seconds, cpu, code = run_once(case.argv)
            if code == 0:
                case.samples.append(seconds)
                case.cpu.append(cpu)
            else:
                case.failures += 1


def table(found: list[Case]) -> str:
    restic = next((c for c in found if c.label == "restic version" and c.samples), None)
    lines = [
        "| command | median s | fastest s | median CPU s | ratio to restic version | target < 0.2 s |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for case in found:
        ratio = f"{case.median / restic.median:.1f}" if restic else "n/a"
        verdict = ("met" if case.median < TARGET_S else "MISSED") if case.lifeboat else ""
        if case.failures:
            verdict += f" ({case.failures} runs failed)"
        fastest = f"{min(case.samples):.3f}" if case.samples else "n/a"
        cpu = f"{statistics.median(case.cpu):.3f}" if case.cpu else "n/a"
        lines.append(f"| `{case.label}` | {case.median:.3f} | {fastest} | {cpu} | {ratio} | {verdict} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=None, help="runs of each case (21; 7 with --quick)")
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    parser.add_argument("--json", action="store_true", help="print a JSON object on stdout")
    parser.add_argument(
        "--lifeboat",
        type=shlex.split,
        default=None,
        help="command that runs Lifeboat (default: python -m lifeboat)",
    )
    args = parser.parse_args(argv)
    repeat = args.repeat if args.repeat is not None else (7 if args.quick else 21)
    if repeat < 1:
        parser.error("--repeat must be at least 1")
    lifeboat = args.lifeboat or default_lifeboat_command()
    out = sys.stderr if args.json else sys.stdout

    found, notes = cases(lifeboat)
    load_before = os.getloadavg()
    started = time.perf_counter()
    measure(found, repeat)
    elapsed = time.perf_counter() - started
    load_after = os.getloadavg()

    print(table(found), file=out)
    missed = [c.label for c in found if c.lifeboat and not c.median < TARGET_S]
    verdict = f"missed by: {', '.join(missed)}" if missed else "every Lifeboat case is under 0.2 s"
    notes.append(f"target: median under {TARGET_S} s; {verdict}")
    for note in notes:
        print(f"note: {note}", file=out)
    print(
        f"({elapsed:.0f} s; {repeat} runs of each case, round-robin, after a warm-up; load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after; python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs; lifeboat = {shlex.join(lifeboat)})",
        file=out,
    )
    if args.json:
        document: dict[str, Any] = {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "command": " ".join(["python", "bench/bench_startup.py", *(argv or sys.argv[1:])]),
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
            "python": platform.python_version(),
            "lifeboat": lifeboat,
            "restic": output_of(["restic", "version"]) if shutil.which("restic") else None,
            "repeat": repeat,
            "load_average": {"before": load_before, "after": load_after},
            "target_s": TARGET_S,
            "results": [
                {
                    "command": c.label,
                    "argv": c.argv,
                    "lifeboat": c.lifeboat,
                    "median_s": c.median if c.samples else None,
                    "fastest_s": min(c.samples) if c.samples else None,
                    "samples_s": c.samples,
                    "median_cpu_s": statistics.median(c.cpu) if c.cpu else None,
                    "failures": c.failures,
                }
                for c in found
            ],
            "notes": notes,
            "elapsed_s": elapsed,
        }
        print(json.dumps(document, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
