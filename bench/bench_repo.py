"""Benchmark Lifeboat's repository against restic and borg, side by side in one run.

Usage::

    python bench/bench_repo.py [--workdir DIR] [--small] [--repeat 1]
                               [--tools lifeboat,restic,borg] [--json FILE]
                               [--drop-caches | --no-drop-caches] [--lifeboat CMD] [--keep]

Run it from the project's environment (``pip install -e '.[test]'``), with ``restic`` and
``borg`` on ``PATH`` (Debian: ``apt-get install restic borgbackup``). The full run needs about
6 GiB free in the work dir and takes a few minutes per repeat (plus a few minutes, once, to
build the dataset).

The data is the seeded ~1 GiB file tree of ``../shared/bench/gen_dataset.py`` (half random
blobs, half JSON-lines ledger shards), or with ``--small`` a ~64 MiB tree built the same way
by this script (random files of 4 KiB .. 4 MiB, ledger shards of 1 .. 4 MiB) for quick runs.

**The dataset and its mutation.** The pristine tree is generated once into
``WORKDIR/dataset-full/pristine`` (or ``dataset-small``) and reused by later runs; it is never
modified. ``gen_dataset.py --mutate`` changes ~5% of the files *in place* (seeded, so it makes
the same change every time), so each repeat copies the pristine tree to ``WORKDIR/run/live``
(modification times preserved), runs every tool's first backup of ``live``, mutates ``live``
in place, then runs every tool's second backup of the *same* path. Each tool therefore sees
the same tree, at the same path, with unchanged files keeping their inode and times: the
second backup exercises each tool's own change detection (restic's parent snapshot, borg's
files cache, Lifeboat's parent reuse) as in real use.

**Steps**, per tool, each one a child process timed with wall-clock seconds, whose peak
resident memory comes from ``os.wait4`` (``ru_maxrss`` of that child alone):

1. first backup of the dataset;
2. second backup, after the mutation;
3. restore of the second snapshot into an empty directory (restic ``restore``, borg
   ``extract``, ``lifeboat restore``); afterwards, outside the timing, a hash walk of the
   restored tree is compared with the mutated source (every path, type, size and SHA-256;
   permission bits and file modification times are compared too, and reported apart);
4. check with data verification (``restic check --read-data``, ``borg check --verify-data``,
   ``lifeboat check --read-data``).

Beside each step's own CPU time, the table shows the CPU time that other user-space processes
used meanwhile (from ``/proc/PID/stat``, kernel threads left out): near zero on a quiet
machine, large when something else competed for the two CPUs and the figure deserves care.

The repository size is the sum of the file sizes under the repository directories (all five
store directories for Lifeboat), after each backup. MB/s is always dataset bytes (10^6 bytes
of the files backed up, restored or checked; the mutated size from step 2 on) per second.

**Configurations.** restic: defaults (repository format "stable", its default compression),
cache in the work dir (``RESTIC_CACHE_DIR``). borg: ``--encryption repokey-blake2``,
``--compression lz4`` for every step; a second borg repository with ``--compression zstd,3``
runs the two backups only, for the repository-size target (and its timings are shown).
Lifeboat: ``repo init`` over five local store directories with ``--data-shards 3``,
``backup --no-progress``, ``restore latest --target``, ``check --read-data`` (the last two with
``--no-progress`` too when they have it); passphrase and stores from
``LIFEBOAT_REPO_PASSPHRASE`` / ``LIFEBOAT_STORES``, ``--cache-dir`` in the work dir.
Every tool's home, cache and config live under the work dir, and nothing prompts.

``--drop-caches`` (default when running as root) syncs and drops the page cache before every
timed step, so that every tool reads its input from disk; otherwise each step only follows a
``sync``. ``--repeat N`` reports the median of N runs, with fresh repositories each time; the
order of the tools rotates from one repeat to the next. ``--tools`` picks among ``lifeboat``,
``restic`` and ``borg``. ``--lifeboat`` is the command that runs Lifeboat (default:
``python -m lifeboat`` with this interpreter if it can import ``lifeboat``, else the
``lifeboat`` script on ``PATH``). Command output goes to ``WORKDIR/logs``. The exit status is 1
when a step failed or a restored tree differs from its source.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import platform
import random
import secrets
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness import (
    BenchError,
    add_run_options,
    default_lifeboat_command,
    output_of,
    run_child,
    settle,
    tail,
)

MIB = 1 << 20
MB = 1_000_000
#: one random passphrase per run, for every tool's repository
PASSPHRASE = secrets.token_urlsafe(24)
DEFAULT_WORKDIR = Path(tempfile.gettempdir()) / "lifeboat-bench-repo"
DEFAULT_GENERATOR = Path(__file__).resolve().parents[2] / "shared" / "bench" / "gen_dataset.py"
SMALL_SEED = 20240502
STEPS = ("backup1", "backup2", "restore", "check")
STEP_LABELS = {
    "backup1": "first backup",
    "backup2": "second backup (5% mutated)",
    "restore": "restore / extract",
    "check": "check, reading all data",
}
TOOL_CHOICES = ("lifeboat", "restic", "borg")


# --------------------------------------------------------------------------------------------
# Child processes


# --------------------------------------------------------------------------------------------
# Tools


class Tool:
    """One tool in one configuration: how to init its repository and run each step."""

    name = ""
    steps: tuple[str, ...] = STEPS
    #: exit statuses that mean success (borg exits 1 on warnings, e.g. a file changed while read)
    ok_codes: frozenset[int] = frozenset({0})

    def __init__(self, root: Path) -> None:
        """``root`` is this tool's private directory for the current repeat."""
        self.root = root
        self.repo = root / "repo"
        self.home = root / "home"
        self.cache = root / "cache"

    def env(self) -> dict[str, str]:
        """Environment for every command of this tool."""
        return dict(os.environ)

    def repo_dirs(self) -> list[Path]:
        """Directories whose file sizes add up to the repository size."""
        return [self.repo]

    def init_argv(self) -> list[str]:
        """Command that creates an empty repository."""
        raise NotImplementedError

    def step_argv(
        self, step: str, source: Path, target: Path, snapshot_number: int
    ) -> tuple[list[str], Path]:
        """Command (and working directory) for ``step``."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Create the private directories (the repository itself is made by ``init_argv``)."""
        for directory in (self.home, self.cache):
            directory.mkdir(parents=True, exist_ok=True)


class Lifeboat(Tool):
    """Lifeboat over five local store directories, 3 data shards."""

    name = "lifeboat"

    def __init__(self, root: Path, command: list[str], quiet: set[str]) -> None:
        super().__init__(root)
        self.command = command
        self.quiet = quiet
        self.stores = [root / f"store{number}" for number in range(5)]

    def env(self) -> dict[str, str]:
        env = super().env()
        env["LIFEBOAT_REPO_PASSPHRASE"] = PASSPHRASE
        env["LIFEBOAT_STORES"] = " ".join(str(store) for store in self.stores)
        env["LIFEBOAT_HOME"] = str(self.home)
        env["XDG_CACHE_HOME"] = str(self.cache / "xdg")
        return env

    def repo_dirs(self) -> list[Path]:
        return list(self.stores)

    def prepare(self) -> None:
        super().prepare()
        for store in self.stores:
            store.mkdir(parents=True, exist_ok=True)

    def init_argv(self) -> list[str]:
        stores = [arg for store in self.stores for arg in ("--store", str(store))]
        return [*self.command, "repo", "init", *stores, "--data-shards", "3"]

    def step_argv(
        self, step: str, source: Path, target: Path, snapshot_number: int
    ) -> tuple[list[str], Path]:
        cache = ["--cache-dir", str(self.cache / "lifeboat")]
        if step in ("backup1", "backup2"):
            return [*self.command, "backup", str(source), "--no-progress", *cache], self.root
        if step == "restore":
            quiet = ["--no-progress"] if "restore" in self.quiet else []
            return [*self.command, "restore", "latest", "--target", str(target), *quiet, *cache], self.root
        quiet = ["--no-progress"] if "check" in self.quiet else []
        return [*self.command, "check", "--read-data", *quiet, *cache], self.root


class Restic(Tool):
    """restic with its defaults (repository format "stable", compression auto)."""

    name = "restic"

    def env(self) -> dict[str, str]:
        env = super().env()
        env["RESTIC_REPOSITORY"] = str(self.repo)
        env["RESTIC_PASSWORD"] = PASSPHRASE
        env["RESTIC_CACHE_DIR"] = str(self.cache)
        env["HOME"] = str(self.home)
        env["XDG_CACHE_HOME"] = str(self.cache / "xdg")
        return env

    def init_argv(self) -> list[str]:
        return ["restic", "init"]

    def step_argv(
        self, step: str, source: Path, target: Path, snapshot_number: int
    ) -> tuple[list[str], Path]:
        if step in ("backup1", "backup2"):
            return ["restic", "backup", str(source)], self.root
        if step == "restore":
            return ["restic", "restore", "latest", "--target", str(target)], self.root
        return ["restic", "check", "--read-data"], self.root


class Borg(Tool):
    """borg with repokey-blake2 encryption and one compression setting."""

    def __init__(self, root: Path, compression: str, encryption: str, steps: tuple[str, ...]) -> None:
        super().__init__(root)
        self.compression = compression
        self.encryption = encryption
        self.steps = steps
        self.name = "borg-" + compression.replace(",", "")
        self.ok_codes = frozenset({0, 1})

    def env(self) -> dict[str, str]:
        env = super().env()
        env.update(
            BORG_PASSPHRASE=PASSPHRASE,
            BORG_BASE_DIR=str(self.home),
            BORG_CACHE_DIR=str(self.cache),
            BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK="yes",
            BORG_RELOCATED_REPO_ACCESS_IS_OK="yes",
        )
        return env

    def init_argv(self) -> list[str]:
        return ["borg", "init", "--encryption", self.encryption, str(self.repo)]

    def step_argv(
        self, step: str, source: Path, target: Path, snapshot_number: int
    ) -> tuple[list[str], Path]:
        if step in ("backup1", "backup2"):
            archive = f"{self.repo}::snapshot{snapshot_number}"
            return ["borg", "create", "--compression", self.compression, archive, str(source)], self.root
        if step == "restore":
            return ["borg", "extract", f"{self.repo}::snapshot2"], target
        return ["borg", "check", "--verify-data", str(self.repo)], self.root


def borg_encryption() -> str:
    """``repokey-blake2`` if this borg knows it, else ``repokey``."""
    help_text = subprocess.run(
        ["borg", "init", "--help"], capture_output=True, text=True, timeout=60, check=False
    ).stdout
    return "repokey-blake2" if "repokey-blake2" in help_text else "repokey"


def check_lifeboat(command: list[str]) -> set[str]:
    """Refuse to start when the Lifeboat CLI lacks a repository command the benchmark needs.

    Returns the commands whose help mentions ``--no-progress`` (the spec promises it for
    ``backup``; ``restore`` and ``check`` get it too where they have it).
    """
    quiet: set[str] = set()
    for sub in (["repo", "init"], ["backup"], ["restore"], ["check"]):
        done = subprocess.run(
            [*command, *sub, "--help"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "COLUMNS": "200"},
        )
        if done.returncode != 0:
            raise BenchError(
                f"`{shlex.join([*command, *sub])} --help` failed (exit {done.returncode}): this Lifeboat "
                f"has no such command yet; leave lifeboat out with --tools restic,borg\n"
                f"{(done.stderr or done.stdout).strip()[-800:]}"
            )
        if "--no-progress" in done.stdout:
            quiet.add(sub[-1])
    return quiet


# --------------------------------------------------------------------------------------------
# Dataset


def _small_record(rng: random.Random, index: int) -> dict[str, Any]:
    """One account of the small ledger: balances per asset, a few open positions."""
    assets = ("USDC", "USDT", "DAI", "ETH", "WBTC", "LINK", "UNI", "AAVE")
    markets = ("ETH-PERP", "BTC-PERP", "SOL-PERP", "LINK-PERP")
    return {
        "account": f"0x{rng.getrandbits(160):040x}",
        "id": index,
        "nonce": rng.randint(0, 50_000),
        "balances": {asset: str(rng.randint(0, 10**24)) for asset in rng.sample(assets, rng.randint(1, 4))},
        "positions": [
            {
                "market": rng.choice(markets),
                "side": rng.choice(("long", "short")),
                "size": str(rng.randint(1, 10**21)),
                "entry_price": f"{rng.uniform(0.01, 70_000):.6f}",
                "opened_block": rng.randint(17_000_000, 21_000_000),
            }
            for _ in range(rng.randint(0, 3))
        ],
        "health_factor": f"{rng.uniform(1.0, 5.0):.4f}",
        "updated_block": rng.randint(17_000_000, 21_000_000),
    }


def build_small(out: Path, random_total: int = 32 * MIB, ledger_total: int = 32 * MIB) -> None:
    """A seeded ~64 MiB tree in the spirit of gen_dataset.py, scaled down.

    ``blobs/dNN/blob_NNNNN.bin``: random files of log-uniform sizes, 4 KiB .. 4 MiB;
    ``ledger/accounts_NNNN.jsonl``: JSON-lines account records in shards of 1 .. 4 MiB. The
    names keep gen_dataset.py's suffixes, so its ``--mutate`` treats them the same way.
    """
    rng = random.Random(SMALL_SEED)
    low, high = math.log(4096), math.log(4 * MIB)
    total = number = 0
    while total < random_total:
        size = min(int(math.exp(rng.uniform(low, high))), random_total - total)
        directory = out / "blobs" / f"d{number % 8:02d}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"blob_{number:05d}.bin").write_bytes(rng.randbytes(size))
        total += size
        number += 1
    (out / "ledger").mkdir(parents=True, exist_ok=True)
    total = shard = index = 0
    while total < ledger_total:
        target = rng.randint(MIB, 4 * MIB)
        written = 0
        with (out / "ledger" / f"accounts_{shard:04d}.jsonl").open("w") as handle:
            while written < target and total + written < ledger_total:
                line = json.dumps(_small_record(rng, index), separators=(",", ":")) + "\n"
                handle.write(line)
                written += len(line)
                index += 1
        total += written
        shard += 1


def tree_stats(root: Path) -> tuple[int, int]:
    """(bytes, files) of the regular files under ``root``."""
    size = count = 0
    for directory, _, names in os.walk(root):
        for name in names:
            info = os.lstat(os.path.join(directory, name))
            size += info.st_size
            count += 1
    return size, count


def ensure_dataset(workdir: Path, small: bool, generator: Path) -> tuple[Path, dict[str, Any]]:
    """The pristine dataset (built on first use, then reused) and a description of it."""
    base = workdir / ("dataset-small" if small else "dataset-full")
    pristine = base / "pristine"
    marker = base / "pristine.json"
    if pristine.is_dir() and marker.is_file():
        info: dict[str, Any] = json.loads(marker.read_text())
        print(f"reusing dataset {pristine} ({info['bytes']:,} bytes, {info['files']} files)", file=sys.stderr)
        return pristine, info
    building = base / "pristine.building"
    shutil.rmtree(building, ignore_errors=True)
    shutil.rmtree(pristine, ignore_errors=True)
    building.mkdir(parents=True)
    start = time.perf_counter()
    if small:
        print(f"building the small dataset in {building} ...", file=sys.stderr)
        build_small(building)
        source = "bench_repo.py --small (seeded)"
    else:
        if not generator.is_file():
            raise BenchError(f"dataset generator {generator} not found; give --gen-dataset")
        print(f"building the 1 GiB dataset with {generator} (a few minutes) ...", file=sys.stderr)
        subprocess.run([sys.executable, str(generator), str(building)], check=True)
        source = str(generator)
    size, files = tree_stats(building)
    building.rename(pristine)
    info = {"bytes": size, "files": files, "generator": source, "build_seconds": time.perf_counter() - start}
    marker.write_text(json.dumps(info, indent=2) + "\n")
    return pristine, info


def mutate(live: Path, generator: Path, log: Path) -> None:
    """Apply gen_dataset.py's seeded 5% mutation to ``live``, in place."""
    if not generator.is_file():
        raise BenchError(f"dataset generator {generator} not found; give --gen-dataset")
    with log.open("wb") as sink:
        subprocess.run(
            [sys.executable, str(generator), str(live), "--mutate"], check=True, stdout=sink, stderr=sink
        )


# --------------------------------------------------------------------------------------------
# Verification and sizes


#: what the hash walk records per path: type, size, SHA-256 (or link target), permission bits,
#: modification time in ns (files only; 0 for directories and symlinks)
Entry = tuple[str, int, str, int, int]


def hash_tree(root: Path) -> dict[str, Entry]:
    """relative path -> :data:`Entry`, for everything under ``root`` (``root`` itself left out)."""
    entries: dict[str, Entry] = {}
    for directory, dirs, names in os.walk(root):
        for name in [*dirs, *names]:
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, root)
            info = os.lstat(path)
            mode = info.st_mode & 0o7777
            if os.path.islink(path):
                entries[relative] = ("symlink", 0, os.readlink(path), mode, 0)
            elif os.path.isdir(path):
                entries[relative] = ("dir", 0, "", mode, 0)
            else:
                with open(path, "rb") as handle:
                    digest = hashlib.file_digest(handle, "sha256").hexdigest()
                entries[relative] = ("file", info.st_size, digest, mode, info.st_mtime_ns)
    return entries


def locate_restored(target: Path, source: Path) -> Path:
    """Where the restored copy of ``source`` landed under ``target`` (tools nest absolute paths)."""
    for candidate in (target / source.relative_to(source.anchor), target / source.name):
        if candidate.is_dir():
            return candidate
    return target


def compare_trees(expected: dict[str, Entry], actual: dict[str, Entry]) -> dict[str, Any]:
    """Content differences (missing, extra, changed paths), then metadata-only differences.

    ``identical`` is about content: the set of paths, their types, sizes and bytes. Permission
    bits and file modification times are counted apart (a tool may round times).
    """
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    common = set(expected) & set(actual)
    changed = sorted(path for path in common if expected[path][:3] != actual[path][:3])
    modes = sorted(path for path in common if expected[path][3] != actual[path][3])
    mtimes = sorted(path for path in common if expected[path][4] != actual[path][4])
    return {
        "identical": not (missing or extra or changed),
        "entries": len(expected),
        "missing": missing[:10],
        "missing_count": len(missing),
        "extra": extra[:10],
        "extra_count": len(extra),
        "changed": changed[:10],
        "changed_count": len(changed),
        "mode_differences": modes[:10],
        "mode_difference_count": len(modes),
        "mtime_differences": mtimes[:10],
        "mtime_difference_count": len(mtimes),
    }


def dir_bytes(directories: Sequence[Path]) -> int:
    """Sum of the sizes of the regular files under ``directories``."""
    return sum(tree_stats(directory)[0] for directory in directories if directory.exists())


# --------------------------------------------------------------------------------------------
# The run


@dataclass
class ToolResult:
    """Everything measured for one tool across repeats."""

    samples: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {step: [] for step in STEPS})
    init: list[dict[str, Any]] = field(default_factory=list)
    repo_bytes_after_backup1: list[int] = field(default_factory=list)
    repo_bytes_after_backup2: list[int] = field(default_factory=list)
    verification: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def make_tools(
    names: Sequence[str], run_dir: Path, lifeboat_command: list[str], quiet: set[str], encryption: str
) -> list[Tool]:
    """The tool configurations selected by ``--tools``, with directories under ``run_dir``."""
    tools: list[Tool] = []
    for name in names:
        if name == "lifeboat":
            tools.append(Lifeboat(run_dir / "lifeboat", lifeboat_command, quiet))
        elif name == "restic":
            tools.append(Restic(run_dir / "restic"))
        elif name == "borg":
            tools.append(Borg(run_dir / "borg-lz4", "lz4", encryption, STEPS))
            tools.append(Borg(run_dir / "borg-zstd3", "zstd,3", encryption, ("backup1", "backup2")))
    return tools


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Run every repeat and return the raw results (JSON-ready)."""
    workdir: Path = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    generator: Path = args.gen_dataset
    names: list[str] = args.tools
    lifeboat_command: list[str] = args.lifeboat
    quiet = check_lifeboat(lifeboat_command) if "lifeboat" in names else set()
    encryption = borg_encryption() if "borg" in names else ""
    pristine, dataset = ensure_dataset(workdir, args.small, generator)
    logs = workdir / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir()
    run_dir = workdir / "run"
    results: dict[str, ToolResult] = {}
    mutated_bytes: list[int] = []
    dropped_any = False
    for repeat in range(1, args.repeat + 1):
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        live = run_dir / "live"
        print(f"repeat {repeat}/{args.repeat}: copying the dataset to {live} ...", file=sys.stderr)
        shutil.copytree(pristine, live, symlinks=True)
        tools = make_tools(names, run_dir, lifeboat_command, quiet, encryption)
        shift = (repeat - 1) % len(tools)
        tools = tools[shift:] + tools[:shift]
        for tool in tools:
            results.setdefault(tool.name, ToolResult())
        failed: set[str] = set()

        for tool in tools:
            tool.prepare()
            sample = run_child(
                tool.init_argv(),
                tool.env(),
                tool.root,
                logs / f"r{repeat}-{tool.name}-init.log",
                args.timeout,
            )
            results[tool.name].init.append(asdict(sample))
            if sample.returncode not in tool.ok_codes:
                failed.add(tool.name)
                results[tool.name].failures.append(
                    f"repeat {repeat} init: exit {sample.returncode}\n{tail(sample.log)}"
                )

        reference: dict[str, Entry] = {}
        for step in STEPS:
            if step == "backup2":
                print("  mutating the dataset ...", file=sys.stderr)
                mutate(live, generator, logs / f"r{repeat}-mutate.log")
            if step == "restore":
                reference = hash_tree(live)
                mutated_bytes.append(tree_stats(live)[0])
            for tool in tools:
                if step not in tool.steps or tool.name in failed:
                    continue
                target = run_dir / "restore" / tool.name
                if step == "restore":
                    target.mkdir(parents=True)
                argv, cwd = tool.step_argv(step, live, target, 1 if step == "backup1" else 2)
                dropped_any |= settle(args.drop_caches)
                print(f"  {STEP_LABELS[step]}: {tool.name} ...", file=sys.stderr)
                sample = run_child(
                    argv, tool.env(), cwd, logs / f"r{repeat}-{tool.name}-{step}.log", args.timeout
                )
                record = results[tool.name]
                record.samples[step].append({**asdict(sample), "ok": sample.returncode in tool.ok_codes})
                print(
                    f"    {sample.seconds:.2f} s, peak RSS {sample.maxrss_kib / 1024:.0f} MiB, "
                    f"exit {sample.returncode}",
                    file=sys.stderr,
                )
                succeeded = sample.returncode in tool.ok_codes
                if not succeeded:
                    record.failures.append(
                        f"repeat {repeat} {step}: exit {sample.returncode} (log {sample.log})\n"
                        f"{tail(sample.log)}"
                    )
                    # A failed backup leaves nothing sound to restore or check; a failed
                    # restore does not stop the check.
                    if step != "restore":
                        failed.add(tool.name)
                        continue
                if step == "backup1":
                    record.repo_bytes_after_backup1.append(dir_bytes(tool.repo_dirs()))
                elif step == "backup2":
                    record.repo_bytes_after_backup2.append(dir_bytes(tool.repo_dirs()))
                elif step == "restore":
                    # Verified even after a failed restore: what it left behind is a clue.
                    outcome = compare_trees(reference, hash_tree(locate_restored(target, live)))
                    outcome["exit_status"] = sample.returncode
                    record.verification.append(outcome)
                    if not outcome["identical"]:
                        record.failures.append(
                            f"repeat {repeat} restored tree differs from the source (exit "
                            f"{sample.returncode}): {json.dumps(outcome)}"
                        )
                    shutil.rmtree(target, ignore_errors=True)
        if not args.keep or repeat < args.repeat:
            shutil.rmtree(run_dir, ignore_errors=True)

    versions = {
        "restic": output_of(["restic", "version"]) if "restic" in names else None,
        "borg": output_of(["borg", "--version"]) if "borg" in names else None,
        "lifeboat": output_of([*lifeboat_command, "--version"]) if "lifeboat" in names else None,
    }
    return {
        "dataset": {**dataset, "mutated_bytes": statistics.median(mutated_bytes) if mutated_bytes else None},
        "small": args.small,
        "repeat": args.repeat,
        "drop_caches": args.drop_caches,
        "page_cache_dropped": dropped_any,
        "workdir": str(workdir),
        "borg_encryption": encryption or None,
        "lifeboat_command": lifeboat_command,
        "versions": versions,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d"),
        "tools": {name: asdict(result) for name, result in results.items()},
    }


# --------------------------------------------------------------------------------------------
# Summaries


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """Medians per tool and step, and the targets; added to ``result`` under ``summary``."""
    size1 = result["dataset"]["bytes"]
    size2 = result["dataset"]["mutated_bytes"] or size1
    medians: dict[str, dict[str, dict[str, float] | None]] = {}
    for name, tool in result["tools"].items():
        per_step: dict[str, dict[str, float] | None] = {}
        for step in STEPS:
            good = [sample for sample in tool["samples"][step] if sample["ok"]]
            if not good or len(good) < len(tool["samples"][step]):
                per_step[step] = None
                continue
            seconds = statistics.median(sample["seconds"] for sample in good)
            per_step[step] = {
                "seconds": seconds,
                "mb_per_s": (size1 if step == "backup1" else size2) / MB / seconds,
                "peak_rss_mib": statistics.median(sample["maxrss_kib"] for sample in good) / 1024,
                "cpu_seconds": statistics.median(sample["cpu_seconds"] for sample in good),
                "other_cpu_seconds": statistics.median(sample["other_cpu_seconds"] for sample in good),
            }
        medians[name] = per_step
    repo_bytes = {
        name: {
            "after_backup1": statistics.median(tool["repo_bytes_after_backup1"])
            if tool["repo_bytes_after_backup1"]
            else None,
            "after_backup2": statistics.median(tool["repo_bytes_after_backup2"])
            if tool["repo_bytes_after_backup2"]
            else None,
        }
        for name, tool in result["tools"].items()
    }
    peaks = {
        name: max((values["peak_rss_mib"] for values in steps.values() if values), default=None)
        for name, steps in medians.items()
    }

    def rate(name: str, step: str) -> float | None:
        values = medians.get(name, {}).get(step)
        return values["mb_per_s"] if values else None

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    borg_zstd = repo_bytes.get("borg-zstd3", {}).get("after_backup2")

    def rss(name: str, step: str) -> float | None:
        values = medians.get(name, {}).get(step)
        return values["peak_rss_mib"] if values else None

    # Issue 14's targets (the repository-size one is issue 4's).
    targets = [
        ("first backup MB/s: lifeboat / borg-lz4", ">=", 2.0, ratio(rate("lifeboat", "backup1"), rate("borg-lz4", "backup1"))),
        ("first backup MB/s: lifeboat / restic", ">=", 2.5, ratio(rate("lifeboat", "backup1"), rate("restic", "backup1"))),
        ("restore MB/s: lifeboat / restic", ">=", 1.5, ratio(rate("lifeboat", "restore"), rate("restic", "restore"))),
        ("check --read-data MB/s: lifeboat / restic", ">=", 2.0, ratio(rate("lifeboat", "check"), rate("restic", "check"))),
        *(
            (f"peak RSS, {step}: lifeboat / restic", "<=", 1.5, ratio(rss("lifeboat", step), rss("restic", step)))
            for step in STEPS
        ),
        (
            "repository bytes: lifeboat / (borg zstd,3 x 5/3)",
            "<=",
            1.0,
            ratio(repo_bytes.get("lifeboat", {}).get("after_backup2"), borg_zstd * 5 / 3 if borg_zstd else None),
        ),
    ]  # fmt: skip
    return {
        "medians": medians,
        "repo_bytes": repo_bytes,
        "peak_rss_mib": peaks,
        "targets": [
            {
                "target": text,
                "bound": f"{op} {bound:g}",
                "value": value,
                "met": None if value is None else (value >= bound if op == ">=" else value <= bound),
            }
            for text, op, bound, value in targets
        ],
    }


def table(result: dict[str, Any]) -> str:
    """The results as text: per step and tool, then repository sizes, then the targets."""
    summary = result["summary"]
    dataset = result["dataset"]
    mutated = dataset["mutated_bytes"]
    lines = [
        f"dataset: {dataset['bytes']:,} bytes in {dataset['files']} files"
        + (f" ({mutated:,} after the mutation)" if mutated else "")
        + f"; median of {result['repeat']}; page cache "
        + ("dropped before each step" if result["page_cache_dropped"] else "not dropped (sync only)")
        + f"; {result['cpus']} CPUs; {result['date']}",
        "versions: " + "; ".join(f"{k}: {v}" for k, v in result["versions"].items() if v),
        "other CPU s: CPU time other processes used during the step (near 0 on a quiet machine)",
        "",
        f"{'step':<28} {'tool':<11} {'median s':>9} {'MB/s':>8} {'peak RSS MiB':>13} {'CPU s':>7} {'other CPU s':>11}  all runs (s)",
    ]
    for step in STEPS:
        label = STEP_LABELS[step]
        for name, tool in result["tools"].items():
            if not tool["samples"][step] and name == "borg-zstd3":
                continue
            runs = " ".join(f"{s['seconds']:.2f}" for s in tool["samples"][step])
            values = summary["medians"][name][step]
            note = ""
            if step == "restore" and tool["verification"]:
                same = all(v["identical"] for v in tool["verification"])
                note = "  restored tree identical" if same else "  RESTORED TREE DIFFERS"
                if any(v["mode_difference_count"] for v in tool["verification"]):
                    note += "; permission bits differ"
                if any(v["mtime_difference_count"] for v in tool["verification"]):
                    note += "; file mtimes differ"
            if values is None:
                verdict = "FAILED" if tool["samples"][step] else "n/a"
                lines.append(
                    f"{label:<28} {name:<11} {verdict:>9} {'':>8} {'':>13} {'':>7} {'':>11}  {runs}{note}"
                )
            else:
                lines.append(
                    f"{label:<28} {name:<11} {values['seconds']:>9.2f} {values['mb_per_s']:>8.1f} "
                    f"{values['peak_rss_mib']:>13.0f} {values['cpu_seconds']:>7.1f} "
                    f"{values['other_cpu_seconds']:>11.1f}  {runs}{note}"
                )
            label = ""
    lines += [
        "",
        f"{'repository bytes':<28} {'tool':<11} {'after 1st':>15} {'after 2nd':>15} {'/ dataset':>9}",
    ]
    for name, sizes in summary["repo_bytes"].items():
        first, second = sizes["after_backup1"], sizes["after_backup2"]
        share = f"{second / (mutated or dataset['bytes']):>9.3f}" if second else ""
        lines.append(
            f"{'':<28} {name:<11} {first or 0:>15,.0f} {second or 0:>15,.0f} {share}"
            if first
            else f"{'':<28} {name:<11} {'n/a':>15}"
        )
    lines += ["", "targets:"]
    for target in summary["targets"]:
        value = "n/a" if target["value"] is None else f"{target['value']:.3f}"
        verdict = {True: "met", False: "NOT MET", None: "not measured"}[target["met"]]
        lines.append(f"  {target['target']:<50} {target['bound']:>6}  {value:>6}  {verdict}")
    failures = [(name, text) for name, tool in result["tools"].items() for text in tool["failures"]]
    if failures:
        lines += ["", "failures:"]
        lines += [f"  {name}: {text}" for name, text in failures]
    return "\n".join(lines)


def parse_tools(text: str) -> list[str]:
    """``lifeboat,restic,borg`` -> the tool names, checked and deduplicated, in the given order."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in TOOL_CHOICES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"tools must be among {', '.join(TOOL_CHOICES)}; got {text!r}")
    return list(dict.fromkeys(names))


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the benchmark, print the table (and write the JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help=f"default {DEFAULT_WORKDIR}")
    parser.add_argument("--small", action="store_true", help="a ~64 MiB dataset instead of 1 GiB")
    parser.add_argument("--tools", type=parse_tools, default=list(TOOL_CHOICES), help="lifeboat,restic,borg")
    parser.add_argument("--gen-dataset", type=Path, default=DEFAULT_GENERATOR, help="path of gen_dataset.py")
    add_run_options(parser)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.drop_caches is None:
        args.drop_caches = os.geteuid() == 0
    if args.lifeboat is None:
        args.lifeboat = default_lifeboat_command()
    try:
        result = run_benchmark(args)
    except (BenchError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    result["summary"] = summarize(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    ok = not any(tool["failures"] for tool in result["tools"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    sys.exit(130)
