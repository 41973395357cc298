"""Benchmark Lifeboat's record snapshots (``lifeboat state``), with restic side by side in one run.

Usage::

    python bench/bench_state.py [--workdir DIR] [--accounts 1000000] [--repeat 1]
                                [--flat-accounts 250000] [--proof-keys 2000] [--json FILE]
                                [--drop-caches | --no-drop-caches] [--lifeboat CMD] [--keep]

Run it from the project's environment (``pip install -e '.[test]'``), with ``restic`` on ``PATH``
(Debian: ``apt-get install restic``). The full run needs about 3 GiB free in the work dir and
takes several minutes per repeat (plus a few minutes, once, to build the datasets).

**The dataset.** ``../shared/bench/gen_ledger.py`` makes a seeded JSON Lines ledger:
``L0.jsonl`` with ``--accounts`` accounts (1,000,000: ~430 MB), then ``L1.jsonl`` from it with
1% of the accounts changed (``--change 0.01``: nonce and balances). From ``L1`` this script
draws, seeded, a journal ``J.jsonl`` of 10,000 changes (accounts of ``L1`` whose nonce is bumped
and balances redrawn as gen_ledger's ``change()`` does; lines ``{"seq": i, "op": "upsert",
"key": k, "value": record}``, ``seq`` 1..10,000) and the keys to prove (random account keys of
``L1``, and as many absent keys as a tenth of them). All of it lives in
``WORKDIR/dataset-N`` and is reused by later runs; a second, smaller ledger of
``--flat-accounts`` accounts (``L0`` only) serves the memory-flatness check.

**Steps**, each a child process timed with wall-clock seconds, whose peak resident memory
comes from ``os.wait4`` (``ru_maxrss`` of that child alone). Every repeat starts from fresh
repositories: ``lifeboat repo init`` over five local store directories with
``--data-shards 3`` (passphrase and stores from ``LIFEBOAT_REPO_PASSPHRASE`` /
``LIFEBOAT_STORES``, ``--cache-dir`` in the work dir), then:

1. ``lifeboat --json state snapshot L0.jsonl --key key --sum balances.<A> ... --name ledger
   --no-progress`` (the assets of ``--assets`` summed: USDC and ETH by default, ``all`` for ten): seconds, MB/s of input, ``written.bytes_new`` /
   ``bytes_stored`` from its JSON, and the growth of the five store directories;
2. the same for ``L1.jsonl`` (the tree shares every unchanged node with step 1's);
3. ``lifeboat state diff <first> <second>``: seconds, and that it reports ~1% changed;
4. proofs, in a child running this script's ``_proofs`` worker, which opens the repository
   with the library (``Repository.open`` over local backends, as the CLI does) and times, for
   the random keys against the second snapshot: proofs made per second
   (``prolly.Prover``, first pass reading nodes from the repository, then a second pass),
   proofs verified per second (``prolly.verify`` of parsed ``Proof`` objects; the same from
   JSON bytes with ``Proof.from_json``; and whole bundles with ``statement.verify_bundle``,
   which also checks the statement's Ed25519 signature), and the sizes of the bare proof JSON
   and of the bundle (median and max, inclusion proofs; absence proofs apart);
5. ``lifeboat state restore --snapshot <second> --target R.jsonl``: seconds; ``R.jsonl`` must
   equal ``L1.jsonl`` byte for byte, else the run fails;
6. ``lifeboat state journal append J.jsonl --apply``: the journal stored and applied in one
   run (one start-up, one lock, the changes applied as parsed), the figure the target uses;
   then, on a copy of the repository taken just before it (untimed), the two steps
   ``lifeboat state journal append J.jsonl`` and ``lifeboat state journal apply``, timed apart
   and added up. Both must make the same root, else the run fails;
7. restic (defaults, cache in the work dir): ``restic init``, then ``L0.jsonl`` copied to a
   fixed path ``live.jsonl`` and backed up, its content replaced by ``L1.jsonl`` and backed up
   again: seconds and the bytes added to the restic repository each time;
8. memory flatness: step 1 again on the ``--flat-accounts`` ledger, in its own fresh
   repository: the peak RSS of both full snapshots is compared.

The order of the three groups (Lifeboat steps 1-6, restic, flatness) rotates from one repeat to
the next. Beside each step's own CPU time, the table shows the CPU time that other user-space
processes used meanwhile (from ``/proc/PID/stat``): near zero on a quiet machine, large when
something else competed for the CPUs and the figure deserves care. Repository sizes are sums of
file sizes (all five store directories for Lifeboat). MB/s is 10^6 bytes of input per second.

``--drop-caches`` (default when running as root) syncs and drops the page cache before every
timed step; otherwise each step only follows a ``sync``. ``--repeat N`` reports the median of N
runs. ``--lifeboat`` is the command that runs Lifeboat (default: ``python -m lifeboat`` with this
interpreter). Command output goes to ``WORKDIR/logs``. The exit status is 1 when a step failed
or the restored file differs from ``L1.jsonl``; missed targets are reported, not failed.
"""

from __future__ import annotations

import argparse
import contextlib
import filecmp
import functools
import json
import os
import platform
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness import (
    BenchError,
    Sample,
    add_run_options,
    default_lifeboat_command,
    output_of,
    run_child,
    settle,
    tail,
)

MB = 1_000_000
#: one random passphrase per run, for both tools' repositories
PASSPHRASE = secrets.token_urlsafe(24)
DEFAULT_WORKDIR = Path(tempfile.gettempdir()) / "lifeboat-bench-state"
DEFAULT_GENERATOR = Path(__file__).resolve().parents[2] / "shared" / "bench" / "gen_ledger.py"
#: gen_ledger.py's assets: every one is summed
ASSETS = ("USDC", "USDT", "DAI", "ETH", "WBTC", "SOL", "ARB", "OP", "LINK", "UNI")
#: The assets whose balances are summed up the tree (``--assets``; default two of them).
SUMMED: tuple[str, ...] = ("USDC", "ETH")
DATASET_NAME = "ledger"
JOURNAL_CHANGES = 10_000
JOURNAL_SEED = 20261125
KEYS_SEED = 20261126
CHANGE_FRACTION = 0.01
#: seconds each verification loop runs at least (it repeats the proof list until then)
VERIFY_MIN_SECONDS = 1.0
#: the targets of issue 5
TARGET_INCR_BYTES = 0.15
TARGET_INCR_TIME = 0.50
TARGET_VERIFIED_PER_S = 20_000.0
TARGET_PROOF_BYTES = 4096
TARGET_JOURNAL_SPEEDUP = 10.0
TARGET_RSS_FLAT = 1.25

STEP_LABELS = {
    "init": "lifeboat repo init",
    "snapshot_full": "state snapshot L0 (full)",
    "snapshot_incr": "state snapshot L1 (1% changed)",
    "diff": "state diff L0..L1",
    "proofs": "proofs worker (in-process)",
    "restore": "state restore L1 --target",
    "journal_one_run": "state journal append --apply",
    "journal_append": "state journal append",
    "journal_apply": "state journal apply",
    "restic_init": "restic init",
    "restic_backup1": "restic backup live=L0",
    "restic_backup2": "restic backup live=L1",
    "flat_init": "lifeboat repo init (small)",
    "snapshot_flat": "state snapshot small L0",
}
TABLE_STEPS = (
    "snapshot_full",
    "snapshot_incr",
    "diff",
    "restore",
    "journal_one_run",
    "journal_append",
    "journal_apply",
    "snapshot_flat",
    "restic_backup1",
    "restic_backup2",
    "proofs",
)


# --------------------------------------------------------------------------------------------
# Child processes


def dir_bytes(directories: Sequence[Path]) -> int:
    """Sum of the sizes of the regular files under ``directories``."""
    total = 0
    for directory in directories:
        for parent, _, names in os.walk(directory):
            for name in names:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(parent, name)).st_size
    return total


def last_json(text: str | None) -> dict[str, Any] | None:
    """The JSON document a ``--json`` command printed (for restic: its last JSON line)."""
    if not text:
        return None
    with contextlib.suppress(ValueError):
        document = json.loads(text)
        return document if isinstance(document, dict) else None
    for line in reversed(text.splitlines()):
        with contextlib.suppress(ValueError):
            document = json.loads(line)
            if isinstance(document, dict):
                return document
    return None


# --------------------------------------------------------------------------------------------
# Datasets


def gen(generator: Path, args: list[str], cwd: Path) -> None:
    """Run gen_ledger.py with ``args`` in ``cwd``."""
    if not generator.is_file():
        raise BenchError(f"ledger generator {generator} not found; give --gen-ledger")
    subprocess.run([sys.executable, str(generator), *args], cwd=cwd, check=True)


def changed_record(record: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """``record`` changed as gen_ledger.py's ``change()`` changes an account."""
    record = dict(record)
    record["nonce"] += 1
    record["balances"] = {asset: str(rng.randint(0, 10**24)) for asset in record["balances"]}
    return record


def write_journal_and_keys(l1: Path, accounts: int, journal: Path, keys: Path, proof_keys: int) -> int:
    """The seeded journal of changes to ``l1``'s accounts, and the keys to prove; changes written.

    The account records are the first ``accounts`` lines of ``l1`` (their keys sort first).
    """
    changes = min(JOURNAL_CHANGES, accounts)
    rng = random.Random(JOURNAL_SEED)
    chosen = rng.sample(range(accounts), changes)
    key_rng = random.Random(KEYS_SEED)
    provable = set(key_rng.sample(range(accounts), min(proof_keys, accounts)))
    wanted = set(chosen) | provable
    lines: dict[int, bytes] = {}
    with l1.open("rb") as handle:
        for number, line in enumerate(handle):
            if number >= accounts:
                break
            if number in wanted:
                lines[number] = line
    if len(lines) != len(wanted):
        raise BenchError(f"{l1} has fewer than {accounts} account lines")
    with journal.open("w") as out:
        for seq, number in enumerate(chosen, 1):
            record = json.loads(lines[number])
            if record.get("kind") != "account":
                raise BenchError(f"{l1} line {number + 1} is not an account")
            value = changed_record(record, rng)
            change = {"seq": seq, "op": "upsert", "key": value["key"], "value": value}
            out.write(json.dumps(change, separators=(",", ":")) + "\n")
    present = [json.loads(lines[number])["key"] for number in sorted(provable)]
    key_rng.shuffle(present)
    absent = [f"acct:0x{key_rng.getrandbits(160):040x}" for _ in range(max(1, len(present) // 10))]
    keys.write_text(json.dumps({"present": present, "absent": absent}) + "\n")
    return changes


def ensure_dataset(
    workdir: Path, accounts: int, generator: Path, *, full: bool, proof_keys: int
) -> tuple[Path, dict[str, Any]]:
    """The dataset directory for ``accounts`` (built on first use, then reused) and its description.

    ``full``: L0, L1, the journal and the keys to prove; else L0 only.
    """
    base = workdir / f"dataset-{accounts}"
    marker = base / ("dataset.json" if full else "dataset-l0.json")
    if marker.is_file():
        info: dict[str, Any] = json.loads(marker.read_text())
        if info.get("proof_keys", proof_keys) == proof_keys:
            print(f"reusing dataset {base} ({info})", file=sys.stderr)
            return base, info
    base.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    l0 = base / "L0.jsonl"
    info = {"accounts": accounts, "generator": str(generator)}
    if not l0.is_file() or not (base / "dataset-l0.json").is_file():
        print(f"building {l0} with {generator} ({accounts:,} accounts) ...", file=sys.stderr)
        gen(generator, ["L0.jsonl.part", "--accounts", str(accounts)], base)
        (base / "L0.jsonl.part").rename(l0)
        (base / "dataset-l0.json").write_text(
            json.dumps({**info, "l0_bytes": l0.stat().st_size}, indent=2) + "\n"
        )
    info["l0_bytes"] = l0.stat().st_size
    with l0.open("rb") as handle:
        info["records"] = sum(1 for _ in handle)
    if full:
        l1 = base / "L1.jsonl"
        print(f"building {l1} (1% of the accounts changed) ...", file=sys.stderr)
        gen(generator, ["L1.jsonl.part", "--from", "L0.jsonl", "--change", str(CHANGE_FRACTION)], base)
        (base / "L1.jsonl.part").rename(l1)
        info["l1_bytes"] = l1.stat().st_size
        print("drawing the journal and the keys to prove ...", file=sys.stderr)
        info["journal_changes"] = write_journal_and_keys(
            l1, accounts, base / "J.jsonl", base / "keys.json", proof_keys
        )
        info["journal_bytes"] = (base / "J.jsonl").stat().st_size
        info["proof_keys"] = proof_keys
    info["build_seconds"] = time.perf_counter() - start
    marker.write_text(json.dumps(info, indent=2) + "\n")
    return base, info


# --------------------------------------------------------------------------------------------
# Repositories


class LifeboatRepo:
    """A Lifeboat repository over five local store directories, 3 data shards."""

    def __init__(self, root: Path, command: list[str]) -> None:
        self.root = root
        self.command = command
        self.stores = [root / f"store{number}" for number in range(5)]
        self.cache = root / "cache"
        self.home = root / "home"
        for directory in (*self.stores, self.cache, self.home):
            directory.mkdir(parents=True, exist_ok=True)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["LIFEBOAT_REPO_PASSPHRASE"] = PASSPHRASE
        env["LIFEBOAT_STORES"] = " ".join(str(store) for store in self.stores)
        env["LIFEBOAT_HOME"] = str(self.home)
        env["XDG_CACHE_HOME"] = str(self.cache / "xdg")
        return env

    def init_argv(self) -> list[str]:
        stores = [arg for store in self.stores for arg in ("--store", str(store))]
        return [*self.command, "repo", "init", *stores, "--data-shards", "3"]

    def state_argv(self, *words: str) -> list[str]:
        """``lifeboat --json state WORDS... --cache-dir ...``."""
        return [*self.command, "--json", "state", *words, "--cache-dir", str(self.cache / "lifeboat")]

    def snapshot_argv(self, source: Path) -> list[str]:
        sums = [arg for asset in SUMMED for arg in ("--sum", f"balances.{asset}")]
        return self.state_argv(
            "snapshot", str(source), "--key", "key", *sums, "--name", DATASET_NAME, "--no-progress"
        )

    def size(self) -> int:
        return dir_bytes(self.stores)


class ResticRepo:
    """restic with its defaults, cache and home in the work dir."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.repo = root / "repo"
        self.cache = root / "cache"
        self.home = root / "home"
        self.live = root / "live" / "live.jsonl"
        for directory in (self.cache, self.home, self.live.parent):
            directory.mkdir(parents=True, exist_ok=True)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["RESTIC_REPOSITORY"] = str(self.repo)
        env["RESTIC_PASSWORD"] = PASSPHRASE
        env["RESTIC_CACHE_DIR"] = str(self.cache)
        env["HOME"] = str(self.home)
        env["XDG_CACHE_HOME"] = str(self.cache / "xdg")
        return env

    def size(self) -> int:
        return dir_bytes([self.repo])


# --------------------------------------------------------------------------------------------
# The proof worker (a child process: ``bench_state.py _proofs ...``)


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def _timed_loop(items: Sequence[Any], action: Callable[[Any], object]) -> float:
    """Items handled per second: ``action`` over ``items``, repeated for at least VERIFY_MIN_SECONDS."""
    done = 0
    start = time.perf_counter()
    while True:
        for item in items:
            action(item)
        done += len(items)
        elapsed = time.perf_counter() - start
        if elapsed >= VERIFY_MIN_SECONDS:
            return _rate(done, elapsed)


def _sizes(values: Sequence[int]) -> dict[str, float]:
    if not values:
        return {"median": 0.0, "max": 0.0}
    return {"median": float(statistics.median(values)), "max": float(max(values))}


def proof_worker(argv: list[str]) -> int:
    """Open the repository with the library; make and verify proofs; print the figures as JSON."""
    from lifeboat.state import prolly
    from lifeboat.state import snapshots as state
    from lifeboat.state import statement as statements
    from lifeboat.store.backends import open_backend
    from lifeboat.store.repository import Repository

    parser = argparse.ArgumentParser(prog="bench_state.py _proofs")
    parser.add_argument("--snapshot", required=True)
    parser.add_argument("--keys", type=Path, required=True)
    parser.add_argument("--cache-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    keys = json.loads(args.keys.read_text())
    present = [key.encode() for key in keys["present"]]
    absent = [key.encode() for key in keys["absent"]]
    backends = [open_backend(url) for url in os.environ["LIFEBOAT_STORES"].split()]
    opened = time.perf_counter()
    repo = Repository.open(backends, os.environ["LIFEBOAT_REPO_PASSPHRASE"], cache_dir=args.cache_dir)
    try:
        open_seconds = time.perf_counter() - opened
        snap = state.find_state(repo, args.snapshot, DATASET_NAME)
        if snap.signature is None:
            raise BenchError(f"snapshot {snap.short_id} is not signed")
        signature = snap.signature
        root = snap.statement.root
        prover = prolly.Prover(state.RepositoryNodes(repo), root)
        start = time.perf_counter()
        proofs = [prover.prove(key) for key in present]
        cold = time.perf_counter() - start
        start = time.perf_counter()
        for key in present:
            prover.prove(key)
        warm = time.perf_counter() - start
        absent_proofs = [prover.prove(key) for key in absent]
    finally:
        repo.close()
    if not all(proof.present for proof in proofs) or any(proof.present for proof in absent_proofs):
        raise BenchError("a proof says the wrong thing about its key's presence")
    texts = [proof.to_json() for proof in proofs]
    bundles = [statements.encode_bundle(snap.statement, signature, proof) for proof in proofs]
    absent_texts = [proof.to_json() for proof in absent_proofs]
    absent_bundles = [statements.encode_bundle(snap.statement, signature, proof) for proof in absent_proofs]
    for proof, text in zip(proofs, texts, strict=True):
        checked = prolly.verify(prolly.Proof.from_json(text), root)
        if not checked.present or checked.record is None or checked.record.key != proof.key:
            raise BenchError(f"proof of {proof.key!r} does not verify to its record")
    for bundle in (*bundles, *absent_bundles):
        statements.verify_bundle(bundle)

    def from_json(text: bytes) -> object:
        return prolly.verify(prolly.Proof.from_json(text), root)

    result = {
        "keys": len(present),
        "absent_keys": len(absent),
        "repository_open_seconds": open_seconds,
        "generated_per_s": _rate(len(present), cold),
        "generated_per_s_warm": _rate(len(present), warm),
        "verified_per_s": _timed_loop(proofs, lambda proof: prolly.verify(proof, root)),
        "verified_from_json_per_s": _timed_loop(texts, from_json),
        "verified_bundle_per_s": _timed_loop(bundles, statements.verify_bundle),
        "proof_bytes": _sizes([len(text) for text in texts]),
        "bundle_bytes": _sizes([len(bundle) for bundle in bundles]),
        "absence_proof_bytes": _sizes([len(text) for text in absent_texts]),
        "absence_bundle_bytes": _sizes([len(bundle) for bundle in absent_bundles]),
        "path_levels": _sizes([len(proof.paths[0].steps) for proof in proofs]),
    }
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


# --------------------------------------------------------------------------------------------
# The run


class Repeat:
    """One repeat: every step's sample and the figures derived from them."""

    def __init__(self, number: int, logs: Path, timeout: float, drop_caches: bool) -> None:
        self.number = number
        self.logs = logs
        self.timeout = timeout
        self.drop_caches = drop_caches
        self.dropped = False
        self.steps: dict[str, dict[str, Any]] = {}
        self.metrics: dict[str, float | None] = {}
        self.failures: list[str] = []

    def run(
        self,
        step: str,
        argv: Sequence[str],
        env: dict[str, str],
        cwd: Path,
        *,
        keep_stdout: bool = False,
        settle_first: bool = True,
    ) -> Sample | None:
        """Run one step; record it; None (and a failure) if it exited non-zero."""
        if settle_first:
            self.dropped |= settle(self.drop_caches)
        print(f"  {STEP_LABELS.get(step, step)} ...", file=sys.stderr)
        sample = run_child(
            argv, env, cwd, self.logs / f"r{self.number}-{step}.log", self.timeout, keep_stdout=keep_stdout
        )
        self.steps[step] = asdict(sample)
        print(
            f"    {sample.seconds:.2f} s, peak RSS {sample.maxrss_kib / 1024:.0f} MiB, "
            f"CPU {sample.cpu_seconds:.1f} s, others {sample.other_cpu_seconds:.1f} s, exit {sample.returncode}",
            file=sys.stderr,
        )
        if sample.returncode != 0:
            self.failures.append(
                f"repeat {self.number} {step}: exit {sample.returncode} (log {sample.log})\n{tail(sample.log)}"
            )
            return None
        return sample

    def note(self, step: str, **values: Any) -> None:
        """Attach derived values to a recorded step."""
        self.steps.setdefault(step, {}).update(values)


def lifeboat_group(rep: Repeat, run_dir: Path, command: list[str], data: Path, info: dict[str, Any]) -> None:
    """Steps 1-6: snapshots, diff, proofs, restore, journal."""
    lb = LifeboatRepo(run_dir / "lifeboat", command)
    env = lb.env()
    if rep.run("init", lb.init_argv(), env, lb.root, settle_first=False) is None:
        return
    ids: list[str] = []
    for step, source in (("snapshot_full", data / "L0.jsonl"), ("snapshot_incr", data / "L1.jsonl")):
        before = lb.size()
        sample = rep.run(step, lb.snapshot_argv(source), env, lb.root, keep_stdout=True)
        if sample is None:
            return
        output = last_json(sample.stdout) or {}
        written = output.get("written", {})
        growth = lb.size() - before
        rep.note(step, output=output, store_growth=growth, input_bytes=source.stat().st_size)
        rep.metrics[f"{step}.bytes_new"] = written.get("bytes_new")
        rep.metrics[f"{step}.bytes_stored"] = written.get("bytes_stored")
        rep.metrics[f"{step}.nodes_new"] = written.get("nodes_new")
        rep.metrics[f"{step}.store_growth"] = growth
        rep.metrics[f"{step}.mb_per_s"] = source.stat().st_size / MB / sample.seconds
        ids.append(str(output.get("id", "")))
    if len(ids) != 2 or not all(ids):
        rep.failures.append(f"repeat {rep.number}: the snapshots printed no id")
        return

    sample = rep.run(
        "diff", lb.state_argv("diff", ids[0], ids[1], "--name", DATASET_NAME), env, lb.root, keep_stdout=True
    )
    if sample is not None:
        output = last_json(sample.stdout) or {}
        expected = int(info["accounts"] * CHANGE_FRACTION)
        changed = output.get("changed")
        # the supply and market records change too (their totals): a few more than 1%
        near = (
            isinstance(changed, int)
            and abs(changed - expected) <= max(32, expected // 200)
            and output.get("added") == 0
            and output.get("removed") == 0
        )
        rep.note(
            "diff", output={k: output.get(k) for k in ("added", "removed", "changed")}, expected=expected
        )
        rep.metrics["diff.changed"] = changed if isinstance(changed, int) else None
        rep.metrics["diff.ok"] = 1.0 if near else 0.0
        if not near:
            rep.failures.append(f"repeat {rep.number} diff: expected ~{expected} changed, got {output}")

    worker = [
        sys.executable,
        str(Path(__file__).resolve()),
        "_proofs",
        "--snapshot",
        ids[1],
        "--keys",
        str(data / "keys.json"),
        "--cache-dir",
        str(lb.cache / "lifeboat"),
    ]
    sample = rep.run("proofs", worker, env, lb.root, keep_stdout=True)
    if sample is not None:
        output = last_json(sample.stdout) or {}
        rep.note("proofs", output=output)
        for name in (
            "generated_per_s",
            "generated_per_s_warm",
            "verified_per_s",
            "verified_from_json_per_s",
            "verified_bundle_per_s",
        ):
            rep.metrics[f"proofs.{name}"] = output.get(name)
        for name in ("proof_bytes", "bundle_bytes", "absence_proof_bytes", "absence_bundle_bytes"):
            for stat in ("median", "max"):
                rep.metrics[f"proofs.{name}.{stat}"] = output.get(name, {}).get(stat)

    target = run_dir / "R.jsonl"
    argv = lb.state_argv("restore", "--snapshot", ids[1], "--target", str(target), "--name", DATASET_NAME)
    sample = rep.run("restore", argv, env, lb.root, keep_stdout=True)
    identical = (
        sample is not None and target.is_file() and filecmp.cmp(target, data / "L1.jsonl", shallow=False)
    )
    rep.note("restore", identical=identical)
    rep.metrics["restore.identical"] = 1.0 if identical else 0.0
    if sample is not None:
        rep.metrics["restore.mb_per_s"] = (data / "L1.jsonl").stat().st_size / MB / sample.seconds
    if not identical:
        rep.failures.append(f"repeat {rep.number}: the restored {target} differs from L1.jsonl")
    target.unlink(missing_ok=True)

    journal = data / "J.jsonl"
    two_step = LifeboatRepo(run_dir / "lifeboat-two-step", command)
    shutil.rmtree(two_step.root)
    shutil.copytree(lb.root, two_step.root, symlinks=True)  # the same repository, before the journal
    before = lb.size()
    one_run = rep.run(
        "journal_one_run",
        lb.state_argv("journal", "append", str(journal), "--apply", "--name", DATASET_NAME),
        env,
        lb.root,
        keep_stdout=True,
    )
    if one_run is None:
        return
    output = last_json(one_run.stdout) or {}
    snapshot = output.get("snapshot", {})
    written = snapshot.get("written", {})
    rep.note("journal_one_run", output=output, store_growth=lb.size() - before)
    rep.metrics["journal_one_run.bytes_new"] = written.get("bytes_new")
    rep.metrics["journal_one_run.bytes_stored"] = written.get("bytes_stored")
    rep.metrics["journal_one_run.store_growth"] = lb.size() - before
    rep.metrics["journal.seconds"] = one_run.seconds
    rep.metrics["journal.maxrss_kib"] = one_run.maxrss_kib

    env = two_step.env()
    appended = rep.run(
        "journal_append",
        two_step.state_argv("journal", "append", str(journal), "--name", DATASET_NAME),
        env,
        two_step.root,
        keep_stdout=True,
    )
    if appended is None:
        return
    rep.note("journal_append", output=last_json(appended.stdout))
    before = two_step.size()
    applied = rep.run(
        "journal_apply",
        two_step.state_argv("journal", "apply", "--name", DATASET_NAME),
        env,
        two_step.root,
        keep_stdout=True,
    )
    if applied is None:
        return
    output = last_json(applied.stdout) or {}
    written = output.get("written", {})
    rep.note("journal_apply", output=output, store_growth=two_step.size() - before)
    rep.metrics["journal_apply.bytes_new"] = written.get("bytes_new")
    rep.metrics["journal_apply.bytes_stored"] = written.get("bytes_stored")
    rep.metrics["journal_apply.store_growth"] = two_step.size() - before
    rep.metrics["journal_two_step.seconds"] = appended.seconds + applied.seconds
    rep.metrics["journal_two_step.maxrss_kib"] = max(appended.maxrss_kib, applied.maxrss_kib)
    if not snapshot.get("root") or snapshot.get("root") != output.get("root"):
        rep.failures.append(
            f"repeat {rep.number}: journal append --apply made root {snapshot.get('root')}, "
            f"append then apply {output.get('root')}"
        )
    shutil.rmtree(two_step.root, ignore_errors=True)


def restic_group(rep: Repeat, run_dir: Path, data: Path) -> None:
    """Step 7: restic backs up L0, then L1, at the same path."""
    restic = ResticRepo(run_dir / "restic")
    env = restic.env()
    if rep.run("restic_init", ["restic", "init"], env, restic.root, settle_first=False) is None:
        return
    for step, source in (("restic_backup1", data / "L0.jsonl"), ("restic_backup2", data / "L1.jsonl")):
        shutil.copyfile(source, restic.live)  # same path and inode; the content is replaced
        before = restic.size()
        argv = ["restic", "backup", "--json", str(restic.live)]
        sample = rep.run(step, argv, env, restic.root, keep_stdout=True)
        if sample is None:
            return
        summary = last_json(sample.stdout) or {}
        growth = restic.size() - before
        rep.note(step, data_added=summary.get("data_added"), repo_growth=growth)
        rep.metrics[f"{step}.repo_growth"] = growth
        rep.metrics[f"{step}.data_added"] = summary.get("data_added")
        rep.metrics[f"{step}.mb_per_s"] = source.stat().st_size / MB / sample.seconds


def flat_group(rep: Repeat, run_dir: Path, command: list[str], small: Path) -> None:
    """Step 8: a full snapshot of the smaller ledger, in its own repository."""
    lb = LifeboatRepo(run_dir / "flat", command)
    env = lb.env()
    if rep.run("flat_init", lb.init_argv(), env, lb.root, settle_first=False) is None:
        return
    source = small / "L0.jsonl"
    sample = rep.run("snapshot_flat", lb.snapshot_argv(source), env, lb.root, keep_stdout=True)
    if sample is not None:
        output = last_json(sample.stdout) or {}
        rep.note("snapshot_flat", output=output, input_bytes=source.stat().st_size)
        rep.metrics["snapshot_flat.mb_per_s"] = source.stat().st_size / MB / sample.seconds


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Every repeat; the raw results (JSON-ready)."""
    workdir: Path = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    if shutil.which("restic") is None:
        raise BenchError("restic is not on PATH (Debian: apt-get install restic)")
    data, info = ensure_dataset(
        workdir, args.accounts, args.gen_ledger, full=True, proof_keys=args.proof_keys
    )
    small, small_info = ensure_dataset(
        workdir, args.flat_accounts, args.gen_ledger, full=False, proof_keys=args.proof_keys
    )
    logs = workdir / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir()
    run_dir = workdir / "run"
    repeats: list[Repeat] = []
    for number in range(1, args.repeat + 1):
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        rep = Repeat(number, logs, args.timeout, args.drop_caches)
        groups: list[tuple[str, Callable[[], None]]] = [
            ("lifeboat", functools.partial(lifeboat_group, rep, run_dir, args.lifeboat, data, info)),
            ("restic", functools.partial(restic_group, rep, run_dir, data)),
            ("flatness", functools.partial(flat_group, rep, run_dir, args.lifeboat, small)),
        ]
        shift = (number - 1) % len(groups)
        for name, group in groups[shift:] + groups[:shift]:
            print(f"repeat {number}/{args.repeat}: {name}", file=sys.stderr)
            group()
        for step, sample in rep.steps.items():
            if "seconds" in sample and sample.get("returncode") == 0:
                rep.metrics[f"{step}.seconds"] = sample["seconds"]
                rep.metrics[f"{step}.maxrss_kib"] = sample["maxrss_kib"]
                rep.metrics[f"{step}.cpu_seconds"] = sample["cpu_seconds"]
                rep.metrics[f"{step}.other_cpu_seconds"] = sample["other_cpu_seconds"]
        repeats.append(rep)
        if not args.keep or number < args.repeat:
            shutil.rmtree(run_dir, ignore_errors=True)
    return {
        "dataset": info,
        "flat_dataset": small_info,
        "summed_assets": list(SUMMED),
        "repeat": args.repeat,
        "drop_caches": args.drop_caches,
        "page_cache_dropped": any(rep.dropped for rep in repeats),
        "workdir": str(workdir),
        "lifeboat_command": args.lifeboat,
        "versions": {
            "lifeboat": output_of([*args.lifeboat, "--version"]),
            "restic": output_of(["restic", "version"]),
        },
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "runs": [{"steps": rep.steps, "metrics": rep.metrics, "failures": rep.failures} for rep in repeats],
    }


# --------------------------------------------------------------------------------------------
# Summaries


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """Medians of every figure over the repeats, and the targets; added under ``summary``."""
    names = sorted({name for run in result["runs"] for name in run["metrics"]})
    medians: dict[str, float | None] = {}
    for name in names:
        values = [run["metrics"].get(name) for run in result["runs"]]
        present = [float(value) for value in values if value is not None]
        medians[name] = statistics.median(present) if present else None

    def m(name: str) -> float | None:
        return medians.get(name)

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    full_s, incr_s = m("snapshot_full.seconds"), m("snapshot_incr.seconds")
    rss_full, rss_flat = m("snapshot_full.maxrss_kib"), m("snapshot_flat.maxrss_kib")
    targets = [
        ("L1 snapshot bytes_new / L0 snapshot bytes_new", "<=", TARGET_INCR_BYTES,
         ratio(m("snapshot_incr.bytes_new"), m("snapshot_full.bytes_new"))),
        ("L1 snapshot seconds / L0 snapshot seconds", "<=", TARGET_INCR_TIME, ratio(incr_s, full_s)),
        ("diff reports ~1% changed (1 = yes)", ">=", 1.0, m("diff.ok")),
        ("proofs verified per second (parsed Proof)", ">=", TARGET_VERIFIED_PER_S, m("proofs.verified_per_s")),
        ("max inclusion proof JSON bytes", "<", TARGET_PROOF_BYTES, m("proofs.proof_bytes.max")),
        ("restore identical to L1 (1 = yes)", ">=", 1.0, m("restore.identical")),
        ("L0 snapshot s / journal append --apply s", ">=", TARGET_JOURNAL_SPEEDUP,
         ratio(full_s, m("journal.seconds"))),
        (f"peak RSS: {result['dataset']['accounts']:,} / {result['flat_dataset']['accounts']:,} accounts",
         "<=", TARGET_RSS_FLAT, ratio(rss_full, rss_flat)),
    ]  # fmt: skip

    def met(op: str, bound: float, value: float | None) -> bool | None:
        if value is None:
            return None
        return {">=": value >= bound, "<=": value <= bound, "<": value < bound}[op]

    versus_restic = {
        "L0: lifeboat s / restic s": ratio(full_s, m("restic_backup1.seconds")),
        "L1: lifeboat s / restic s": ratio(incr_s, m("restic_backup2.seconds")),
        "L0: lifeboat store growth / restic repo growth": ratio(
            m("snapshot_full.store_growth"), m("restic_backup1.repo_growth")
        ),
        "L1: lifeboat store growth / restic repo growth": ratio(
            m("snapshot_incr.store_growth"), m("restic_backup2.repo_growth")
        ),
        "L1: lifeboat bytes_new / restic data_added": ratio(
            m("snapshot_incr.bytes_new"), m("restic_backup2.data_added")
        ),
        "L0: lifeboat peak RSS / restic peak RSS": ratio(rss_full, m("restic_backup1.maxrss_kib")),
    }
    return {
        "medians": medians,
        "targets": [
            {"target": text, "bound": f"{op} {bound:g}", "value": value, "met": met(op, bound, value)}
            for text, op, bound, value in targets
        ],
        "versus_restic": versus_restic,
    }


def _num(value: float | None, spec: str = ",.0f") -> str:
    return "n/a" if value is None else format(value, spec)


def table(result: dict[str, Any]) -> str:
    """The results as text: per step, then bytes written, proofs, targets and restic ratios."""
    summary = result["summary"]
    med: dict[str, float | None] = summary["medians"]
    data, flat = result["dataset"], result["flat_dataset"]
    lines = [
        f"dataset: L0 {data['l0_bytes']:,} bytes ({data['records']:,} records, {data['accounts']:,} accounts), "
        f"L1 {data['l1_bytes']:,} bytes; journal {data['journal_changes']:,} changes; "
        f"small L0 {flat['l0_bytes']:,} bytes ({flat['accounts']:,} accounts)",
        f"median of {result['repeat']}; page cache "
        + ("dropped before each step" if result["page_cache_dropped"] else "not dropped (sync only)")
        + f"; {result['cpus']} CPUs; python {result['python']}; {result['date']}",
        "versions: " + "; ".join(f"{k}: {v}" for k, v in result["versions"].items()),
        "other CPU s: CPU time other processes used during the step (near 0 on a quiet machine)",
        "",
        f"{'step':<32} {'median s':>9} {'MB/s':>7} {'peak RSS MiB':>12} {'CPU s':>7} {'other CPU s':>11}  all runs (s)",
    ]
    for step in (*TABLE_STEPS[:7], "journal_two_step", *TABLE_STEPS[7:]):
        label = "journal append + apply (2 runs)" if step == "journal_two_step" else STEP_LABELS[step]
        runs = " ".join(
            f"{run['steps'][step]['seconds']:.2f}"
            for run in result["runs"]
            if step in run["steps"] and "seconds" in run["steps"][step]
        )
        seconds = med.get(f"{step}.seconds")
        rss = med.get(f"{step}.maxrss_kib")
        lines.append(
            f"{label:<32} {_num(seconds, '.2f'):>9} {_num(med.get(f'{step}.mb_per_s'), '.1f'):>7} "
            f"{_num(None if rss is None else rss / 1024):>12} {_num(med.get(f'{step}.cpu_seconds'), '.1f'):>7} "
            f"{_num(med.get(f'{step}.other_cpu_seconds'), '.1f'):>11}  {runs}"
        )
    lines += [
        "",
        f"{'bytes written':<32} {'bytes_new':>14} {'bytes_stored':>14} {'store growth':>14}",
    ]
    for step in ("snapshot_full", "snapshot_incr", "journal_one_run", "journal_apply"):
        lines.append(
            f"{STEP_LABELS[step]:<32} {_num(med.get(f'{step}.bytes_new')):>14} "
            f"{_num(med.get(f'{step}.bytes_stored')):>14} {_num(med.get(f'{step}.store_growth')):>14}"
        )
    for step in ("restic_backup1", "restic_backup2"):
        lines.append(
            f"{STEP_LABELS[step]:<32} {_num(med.get(f'{step}.data_added')):>14} {'':>14} "
            f"{_num(med.get(f'{step}.repo_growth')):>14}"
        )
    lines += [
        "",
        f"diff: {_num(med.get('diff.changed'))} changed",
        "proofs ({} keys): made {}/s (first pass, nodes read from the repository), {}/s (second pass)".format(
            _num(data.get("proof_keys")),
            _num(med.get("proofs.generated_per_s")),
            _num(med.get("proofs.generated_per_s_warm")),
        ),
        "  verified/s: {} parsed Proof, {} from JSON bytes, {} whole bundles (with signature)".format(
            _num(med.get("proofs.verified_per_s")),
            _num(med.get("proofs.verified_from_json_per_s")),
            _num(med.get("proofs.verified_bundle_per_s")),
        ),
    ]
    for name, label in (
        ("proof_bytes", "inclusion proof JSON"),
        ("bundle_bytes", "inclusion bundle"),
        ("absence_proof_bytes", "absence proof JSON"),
        ("absence_bundle_bytes", "absence bundle"),
    ):
        lines.append(
            f"  {label:<22} bytes: median {_num(med.get(f'proofs.{name}.median'))}, "
            f"max {_num(med.get(f'proofs.{name}.max'))}"
        )
    lines += ["", "targets:"]
    for target in summary["targets"]:
        value = "n/a" if target["value"] is None else f"{target['value']:,.3f}"
        verdict = {True: "met", False: "NOT MET", None: "not measured"}[target["met"]]
        lines.append(f"  {target['target']:<50} {target['bound']:>8}  {value:>12}  {verdict}")
    lines += ["", "versus restic:"]
    for text, value in summary["versus_restic"].items():
        lines.append(f"  {text:<50} {_num(value, '.3f'):>12}")
    failures = [text for run in result["runs"] for text in run["failures"]]
    if failures:
        lines += ["", "failures:", *(f"  {text}" for text in failures)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the benchmark, print the table (and write the JSON)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_proofs"]:
        return proof_worker(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help=f"default {DEFAULT_WORKDIR}")
    parser.add_argument("--accounts", type=int, default=1_000_000, help="accounts in L0 (default 1000000)")
    parser.add_argument(
        "--flat-accounts", type=int, default=250_000, help="accounts of the memory-flatness ledger"
    )
    parser.add_argument("--proof-keys", type=int, default=2000, help="random keys to prove (default 2000)")
    parser.add_argument(
        "--assets",
        default="USDC,ETH",
        help="comma-separated assets whose balances are summed (--sum); 'all' for all ten (default USDC,ETH)",
    )
    parser.add_argument("--gen-ledger", type=Path, default=DEFAULT_GENERATOR, help="path of gen_ledger.py")
    add_run_options(parser)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.accounts < 100 or args.flat_accounts < 100:
        parser.error("--accounts and --flat-accounts must be at least 100")
    global SUMMED
    SUMMED = ASSETS if args.assets == "all" else tuple(a for a in args.assets.split(",") if a)
    if not set(SUMMED) <= set(ASSETS):
        parser.error(f"--assets: choose among {', '.join(ASSETS)} (or 'all')")
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
    return 1 if any(run["failures"] for run in result["runs"]) else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    sys.exit(130)
