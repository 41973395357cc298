"""What the benchmarks share: child processes timed by wall clock, their peak memory and the CPU
time other processes used meanwhile, page-cache settling, and how to run Lifeboat.

``bench_repo.py`` and ``bench_state.py`` import it (run them from the project directory or
anywhere: Python puts ``bench/`` on the path of a script run from it).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class BenchError(Exception):
    """The benchmark cannot run (a Lifeboat command is missing, the dataset generator is not found).

    A tool that fails a step does not raise: the failure is recorded and shown in the results.
    """


@dataclass
class Sample:
    """One run of one command: wall seconds, peak RSS of the child (KiB), CPU seconds."""

    seconds: float
    maxrss_kib: int
    cpu_seconds: float
    returncode: int
    log: str
    #: CPU seconds other user-space processes used meanwhile: how much the run was disturbed
    other_cpu_seconds: float
    #: the command's standard output, when it was kept apart from the log
    stdout: str | None = None


def other_processes_cpu() -> dict[int, float]:
    """CPU seconds (own + reaped children) of every user-space process but this one, by pid.

    Read from ``/proc/PID/stat``; kernel threads are left out. Empty where there is no /proc.
    """
    tick = os.sysconf("SC_CLK_TCK")
    totals: dict[int, float] = {}
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                text = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            fields = text.rsplit(")", 1)[1].split()
            pid, parent = int(entry.name), int(fields[1])
            if pid == 2 or parent == 2:
                continue
            # utime, stime, cutime, cstime: fields 14..17 of proc(5), 11..14 after the name
            totals[pid] = sum(int(value) for value in fields[11:15]) / tick
    return totals


def cpu_used_since(before: dict[int, float]) -> float:
    """CPU seconds that other processes have used since ``before`` was taken (roughly).

    A process that ended meanwhile shows up again in its parent's reaped-children total, all
    of its life included: what it had used at ``before`` is taken off. A process that started
    and ended in between counts through its parent; one whose parent also started meanwhile
    is missed.
    """
    after = other_processes_cpu()
    grown = sum(after[pid] - used for pid, used in before.items() if pid in after)
    ended = sum(used for pid, used in before.items() if pid not in after)
    return max(0.0, grown - ended)


def run_child(
    argv: Sequence[str],
    env: dict[str, str],
    cwd: Path,
    log: Path,
    timeout: float,
    *,
    keep_stdout: bool = False,
) -> Sample:
    """Run ``argv`` as a child process, output to ``log``; measure it with ``os.wait4``.

    With ``keep_stdout`` the child's standard output goes to ``log`` + ``.out`` and comes back
    in the sample (for ``--json`` output); its standard error still goes to ``log``. A child
    still running after ``timeout`` seconds is killed.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    out_path = log.with_suffix(log.suffix + ".out")
    with log.open("wb") as sink, contextlib.ExitStack() as stack:
        out = stack.enter_context(out_path.open("wb")) if keep_stdout else sink
        sink.write(f"$ {shlex.join(argv)}\n".encode())
        sink.flush()
        others = other_processes_cpu()
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=sink if keep_stdout else subprocess.STDOUT,
        )
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        seconds = time.perf_counter() - start
        other_cpu = cpu_used_since(others)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Sample(
        seconds=seconds,
        maxrss_kib=usage.ru_maxrss,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        returncode=proc.returncode,
        log=str(log),
        other_cpu_seconds=other_cpu,
        stdout=out_path.read_text(errors="replace") if keep_stdout else None,
    )


def tail(path: str, lines: int = 15) -> str:
    """The last ``lines`` lines of a log file."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def settle(drop_caches: bool) -> bool:
    """Write back dirty pages and, if asked, drop the page cache; True if the drop worked."""
    os.sync()
    dropped = False
    if drop_caches:
        try:
            Path("/proc/sys/vm/drop_caches").write_text("3\n")
            dropped = True
        except OSError:
            dropped = False
    time.sleep(0.5)
    return dropped


def output_of(argv: Sequence[str], env: dict[str, str] | None = None) -> str:
    """First line of a command's output, or the error (for version strings)."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=60, env=env, check=False)
    except OSError as exc:
        return f"unavailable ({exc})"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else f"exit {done.returncode}"


def default_lifeboat_command() -> list[str]:
    """``python -m lifeboat`` with this interpreter if it can import lifeboat, else the script on PATH.

    The interpreter comes first because a ``lifeboat`` on PATH may be a shim (pyenv's is a
    shell script that runs more processes before Python starts), whose cost is not Lifeboat's.
    """
    if importlib.util.find_spec("lifeboat") is not None:
        return [sys.executable, "-m", "lifeboat"]
    script = shutil.which("lifeboat")
    return [script] if script else [sys.executable, "-m", "lifeboat"]


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options every benchmark takes: --repeat, --json, --drop-caches, --lifeboat, --timeout, --keep."""
    parser.add_argument("--repeat", type=int, default=1, help="runs per step, median reported (default 1)")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="write raw results here")
    parser.add_argument(
        "--drop-caches",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="drop the page cache before each step (default: on when root)",
    )
    parser.add_argument(
        "--lifeboat",
        type=shlex.split,
        default=None,
        help="command that runs Lifeboat (default: this python -m lifeboat, else `lifeboat` on PATH)",
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds before a step is killed")
    parser.add_argument("--keep", action="store_true", help="keep the last repeat's repositories")
