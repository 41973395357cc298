"""The sandbox drill's recovery time (RTO) per path, at 100,000 and 1,000,000 accounts.

Runs ``lifeboat --json drill --seed S --accounts N`` as a child process, ``--repeat`` times per
size, and reports the median RTO of each path, the drill's wall time and peak memory, and the
CPU other processes used meanwhile (a disturbed run shows there). The yardstick is the restore
alone: the state path's RTO against the time restic takes to restore the same ledger file it
backed up, in the same run, so the report says what verification, rollback and journal replay
cost on top of getting bytes back.

    python bench/bench_drill.py --repeat 3                   # 100000 and 1000000 accounts
    python bench/bench_drill.py --sizes 20000 --repeat 1     # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness import BenchError, Sample, add_run_options, default_lifeboat_command, output_of, run_child

#: The sandbox's paths, as the drill report names them.
PATHS = ("keys", "signers", "state", "storage", "chain")
PASSPHRASE = secrets.token_urlsafe(24)


def _drill(
    lifeboat: list[str], accounts: int, seed: int, work: Path, timeout: float
) -> tuple[Sample, dict[str, Any]]:
    env = dict(os.environ)
    sample = run_child(
        [
            *lifeboat,
            "--json",
            "drill",
            "--seed",
            str(seed),
            "--accounts",
            str(accounts),
            "--workdir",
            str(work),
        ],
        env,
        work,
        work / f"drill-{accounts}-{seed}.log",
        timeout,
        keep_stdout=True,
    )
    try:
        document = json.loads(sample.stdout or "")
    except ValueError:
        raise BenchError(f"the drill printed no JSON; see {sample.log}") from None
    return sample, document


def _restic_restore(ledger: Path, work: Path, timeout: float) -> float | None:
    """Seconds restic takes to restore ``ledger`` after backing it up (None without restic)."""
    restic = shutil.which("restic")
    if restic is None:
        return None
    env = dict(os.environ, RESTIC_REPOSITORY=str(work / "restic"))
    env["RESTIC_PASSWORD"] = PASSPHRASE
    subprocess.run([restic, "init", "-q"], env=env, check=True, timeout=timeout)
    subprocess.run([restic, "backup", "-q", str(ledger)], env=env, check=True, timeout=timeout)
    sample = run_child(
        [restic, "restore", "latest", "--target", str(work / "restic-out")],
        env,
        work,
        work / "restic-restore.log",
        timeout,
    )
    return sample.seconds if sample.returncode == 0 else None


def _ledger(accounts: int, seed: int, work: Path) -> Path:
    """A ledger of the drill's kind and size (its generator, this seed) for restic to restore."""
    import random

    from lifeboat.drill.state import generate_ledger

    path = work / f"ledger-{accounts}.jsonl"
    with path.open("wb") as out:
        for _, line in generate_ledger(random.Random(seed), accounts):
            out.write(line + b"\n")
    return path


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    lifeboat = args.lifeboat or default_lifeboat_command()
    rows: list[dict[str, Any]] = []
    for accounts in args.sizes:
        samples: list[Sample] = []
        rto: dict[str, list[float]] = {p: [] for p in PATHS}
        recovery_steps: dict[str, list[float]] = {}  # "path: title" -> seconds per repeat
        verdicts: list[str] = []
        restic: list[float] = []
        for repeat in range(args.repeat):
            work = Path(tempfile.mkdtemp(prefix="bench-drill-", dir=args.workdir))
            try:
                sample, document = _drill(lifeboat, accounts, args.seed + repeat, work, args.timeout)
                samples.append(sample)
                verdicts.append(document["verdict"])
                for path in document["paths"]:
                    if path["rto_seconds"] is not None:
                        rto.setdefault(path["path"], []).append(path["rto_seconds"])
                for step in document["steps"]:
                    if step["phase"] == "recover":
                        name = f"{step['path']}: {step['title']}"
                        recovery_steps.setdefault(name, []).append(step["seconds"])
                if not args.no_restic:
                    seconds = _restic_restore(_ledger(accounts, args.seed + repeat, work), work, args.timeout)
                    if seconds is not None:
                        restic.append(seconds)
            finally:
                if not args.keep:
                    shutil.rmtree(work, ignore_errors=True)
        row: dict[str, Any] = {
            "accounts": accounts,
            "verdicts": verdicts,
            "wall_seconds": statistics.median(s.seconds for s in samples),
            "peak_rss_mib": max(s.maxrss_kib for s in samples) / 1024,
            "other_cpu_seconds": max(s.other_cpu_seconds for s in samples),
            "rto_seconds": {p: statistics.median(v) if v else None for p, v in rto.items()},
            "restic_restore_seconds": statistics.median(restic) if restic else None,
            "recovery_steps": {name: statistics.median(v) for name, v in recovery_steps.items()},
        }
        rows.append(row)
        print(_line(row), file=sys.stderr)
    return rows


def _line(row: dict[str, Any]) -> str:
    rto = ", ".join(f"{p} {v:.2f} s" if v is not None else f"{p} -" for p, v in row["rto_seconds"].items())
    return f"{row['accounts']:,} accounts: {'/'.join(row['verdicts'])}; drill {row['wall_seconds']:.1f} s; RTO {rto}"


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| accounts | verdicts | drill wall s | "
        + " | ".join(f"RTO {p} s" for p in PATHS)
        + " | restic restore of the ledger s | state RTO ÷ restic | peak RSS MiB | other CPU s |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for row in rows:
        rto = row["rto_seconds"]
        restic = row["restic_restore_seconds"]
        ratio = f"{rto['state'] / restic:.1f}×" if restic and rto["state"] is not None else "-"
        cells = [
            f"{row['accounts']:,}",
            "/".join(row["verdicts"]),
            f"{row['wall_seconds']:.1f}",
            *(f"{rto[p]:.2f}" if rto.get(p) is not None else "-" for p in PATHS),
            f"{restic:.2f}" if restic else "-",
            ratio,
            f"{row['peak_rss_mib']:.0f}",
            f"{row['other_cpu_seconds']:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def steps_table(rows: list[dict[str, Any]]) -> str:
    """Each recovery step's median seconds, a column per size: where each RTO goes."""
    names = list(dict.fromkeys(name for row in rows for name in row["recovery_steps"]))
    head = "| recovery step | " + " | ".join(f"{row['accounts']:,} accounts s" for row in rows) + " |"
    lines = [head, "|" + "---|" * (len(rows) + 1)]
    for name in names:
        cells = [
            f"{row['recovery_steps'][name]:.2f}" if name in row["recovery_steps"] else "-" for row in rows
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[100_000, 1_000_000], help="accounts per drill"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the first repeat (then +1 each)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the sandboxes go")
    parser.add_argument("--no-restic", action="store_true", help="skip the restic yardstick")
    add_run_options(parser)
    args = parser.parse_args(argv)
    lifeboat = args.lifeboat or default_lifeboat_command()
    print(f"lifeboat: {output_of([*lifeboat, '--version'])}; restic: {output_of(['restic', 'version'])}")
    rows = run(args)
    print(table(rows))
    print()
    print(steps_table(rows))
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0 if all(v == "passed" for row in rows for v in row["verdicts"]) else 1


if __name__ == "__main__":
    sys.exit(main())
