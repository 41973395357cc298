"""Run every benchmark once, one after the other, and keep what each printed: the run behind docs/benchmarks.md.

Usage::

    python bench/run_all.py [--out DIR] [--only NAME[,NAME...]] [--skip NAME[,NAME...]] [--list]

Each benchmark runs as its own child process with the arguments docs/benchmarks.md gives, its
standard output going to ``DIR/<name>.txt`` (and its JSON, where it writes one, to
``DIR/<name>.json``). Before and after each one the machine's load is recorded: the load
averages and the CPU time that other user-space processes used meanwhile (``harness.py``), so a
figure taken on a busy machine can be told from one taken on a quiet one. ``DIR/machine.json``
describes the machine (CPU model, cores, memory, kernel, Python, the tools' versions) and
``DIR/runs.json`` every benchmark's command, wall time, exit status and load. The exit status is 1
if any benchmark failed; the others still run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import cpu_used_since, other_processes_cpu

HERE = Path(__file__).resolve().parent

#: name -> (arguments, JSON file argument style): "flag" prints JSON on stdout with --json,
#: "file" writes JSON to the file given after --json, None has no JSON output.
BENCHMARKS: dict[str, tuple[list[str], str | None]] = {
    "startup": (["bench_startup.py", "--repeat", "20"], "flag"),
    "frost": (["bench_frost.py", "--repeat", "5"], "flag"),
    "sealed": (["bench_sealed.py", "--size-mib", "1024", "--repeat", "5"], "flag"),
    "store_codec": (["bench_store_codec.py", "--size-mib", "256", "--repeat", "3"], "flag"),
    "repo": (["bench_repo.py", "--repeat", "3"], "file"),
    "state": (["bench_state.py", "--repeat", "3"], "file"),
    "recovery": (["bench_recovery.py", "--backend", "both", "--repeat", "3", "--concurrency", "16"], "file"),
    "recovery_workers": (
        [
            "bench_recovery.py",
            "--backend",
            "sqlite",
            "--workers",
            "3",
            "--repeat",
            "3",
            "--concurrency",
            "16",
        ],
        "file",
    ),
    "drill": (["bench_drill.py", "--repeat", "1"], None),
    "onchain_gas": (["bench_onchain_gas.py"], None),
}


def version_of(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr) else "?"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory_kib = int(line.split()[1])
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "restic": version_of(["restic", "version"]),
        "borg": version_of(["borg", "--version"]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def run(name: str, out: Path) -> dict[str, Any]:
    args, json_style = BENCHMARKS[name]
    argv = [sys.executable, str(HERE / args[0]), *args[1:]]
    json_path = out / f"{name}.json"
    if json_style == "flag":
        argv.append("--json")
    elif json_style == "file":
        argv += ["--json", str(json_path)]
    load_before = os.getloadavg()
    others = other_processes_cpu()
    started = time.monotonic()
    with (out / f"{name}.txt").open("w") as log:
        print(f"$ {shlex.join(argv)}", file=log, flush=True)
        done = subprocess.run(
            argv, stdout=subprocess.PIPE, stderr=log, text=True, check=False, cwd=HERE.parent
        )
    seconds = time.monotonic() - started
    if json_style == "flag":
        json_path.write_text(done.stdout)
    else:
        with (out / f"{name}.txt").open("a") as log:
            log.write(done.stdout)
    return {
        "name": name,
        "command": shlex.join(["python", f"bench/{args[0]}", *args[1:]]),
        "seconds": round(seconds, 1),
        "returncode": done.returncode,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "other_cpu_seconds": round(cpu_used_since(others), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(tempfile.gettempdir()) / "lifeboat-bench-all",
        help="where results go",
    )
    parser.add_argument("--only", default="", help="comma-separated benchmarks to run (default: all)")
    parser.add_argument("--skip", default="", help="comma-separated benchmarks to leave out")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and their commands")
    options = parser.parse_args(argv)
    if options.list:
        for name, (args, _) in BENCHMARKS.items():
            print(f"{name:12} python bench/{shlex.join(args)}")
        return 0
    names = [name for name in options.only.split(",") if name] or list(BENCHMARKS)
    unknown = [name for name in names + options.skip.split(",") if name and name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; --list shows them")
    names = [name for name in names if name not in options.skip.split(",")]
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / "machine.json").write_text(json.dumps(machine(), indent=2) + "\n")
    runs = []
    for name in names:
        print(f"{name} ...", flush=True)
        result = run(name, options.out)
        runs.append(result)
        print(
            f"  {result['seconds']} s, exit {result['returncode']}, load {result['load_before'][0]:.2f} -> "
            f"{result['load_after'][0]:.2f}, other processes {result['other_cpu_seconds']} CPU-s",
            flush=True,
        )
        (options.out / "runs.json").write_text(json.dumps(runs, indent=2) + "\n")
    return 1 if any(result["returncode"] for result in runs) else 0


if __name__ == "__main__":
    raise SystemExit(main())
