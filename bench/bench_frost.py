"""Benchmark FROST (RFC 9591) step by step against the group operations each step needs.

Usage::

    python bench/bench_frost.py [--quick] [--json] [--repeat N] [--min-sample S] [--limit S]
                                [--no-dkg]

For 2-of-3, 5-of-7 and 67-of-100, on FROST(Ed25519, SHA-512) and FROST(secp256k1, SHA-256),
the script times: trusted-dealer key generation; DKG part 1, part 2 and part 3 (one
participant's call each); signing round one (``commit``, one signer) and round two (``sign``,
one signer, with ``t`` signers taking part); ``aggregate`` as the coordinator runs it (it
verifies the aggregate signature before returning it); ``aggregate`` given one bad share (it
then checks every share to name the cheater); and ``verify``.

Each time is the median of ``--repeat`` samples (7 by default, 3 with ``--quick``), after one
warm-up call; a sample runs the call enough times to last ``--min-sample`` seconds (0.1; 0.02
with ``--quick``) and reports the time per call. A call slower than a second is its own sample,
the warm-up included, and is repeated only while the step's total stays under 60 s (5 s with
``--quick``). ``--limit`` stops any single call after that many seconds and reports the limit
as a lower bound (marked ``>``); ``--quick`` sets it to 10 s. Garbage collection is off while
timing. Inputs are built once per configuration: the signing rows call ``sign`` and
``aggregate`` repeatedly on the same commitments, as objects already in memory (a coordinator
that decodes commitments from bytes pays for that decoding separately).

The floor
---------

Beside each time stands its FLOOR: the group operations the step cannot avoid, each priced at
the cost of one such operation measured in the same run with the same library:

====  ==================================  =============================================
op    Ed25519 (libsodium via PyNaCl)      secp256k1 (libsecp256k1 via coincurve)
====  ==================================  =============================================
B     crypto_scalarmult_ed25519_base_     PublicKey.from_valid_secret
      noclamp (base-point multiplication)
V     crypto_scalarmult_ed25519_noclamp   PublicKey.multiply
      (variable-base multiplication)
S     the same, by a scalar below 256     the same, by a scalar below 256
      (constant time: costs as much as V) (variable time: much cheaper than V)
A     crypto_core_ed25519_add             PublicKey.combine_keys of two keys
D     crypto_core_ed25519_is_valid_point  PublicKey(bytes)
      (decode and check an encoding)      (decode and check an encoding)
====  ==================================  =============================================

Hashing, scalar arithmetic and serialization are not in the floor: they are what the Python
layer adds. The counts, for ``t`` = min_signers, ``n`` = max_signers and ``t`` signers, follow
the algorithms of RFC 9591 and of the FROST paper's DKG (Komlo and Goldberg, figure 1), without
batching tricks (a step that batches can come in under its floor):

* dealer keygen: ``t`` B for the VSS commitment to the ``t`` coefficients (the first is the
  group public key) and ``n`` B for the verifying shares: ``(t + n) B``.
* DKG part 1: ``t`` B for the commitment and 1 B for the proof-of-knowledge nonce:
  ``(t + 1) B``.
* DKG part 2: check the ``n - 1`` other proofs of knowledge, each ``R == [mu]G - [c]phi_0``:
  ``(n - 1)(B + V + A)``. (The shares sent out are scalar work.)
* DKG part 3: check the ``n - 1`` received shares, each ``[s]G == sum_k [i^k]phi_k`` by
  Horner's rule, whose multiplications are by the identifier ``i``:
  ``(n - 1)(B + (t - 1)(S + A))``; add the ``n`` commitments coefficient by coefficient (the
  first sum is the group public key): ``t(n - 1) A``; evaluate that sum at each of the ``n``
  identifiers for the verifying shares: ``n (t - 1)(S + A)``.
* round one (commit): two nonce commitments: ``2 B``.
* round two (sign): the group commitment ``sum_i D_i + [rho_i]E_i``: ``t V + (2t - 1) A``.
* aggregate: the same group commitment, then verify the signature: ``t V + (2t - 1) A`` plus
  the verify floor.
* aggregate, one bad share: the above plus one check per share, ``[z_i]G == R_i +
  [c lambda_i]Y_i`` with ``R_i`` reused from the group commitment: ``t (B + V + A)`` more.
* verify: decode R, then ``[z]G == R + [c]PK``: ``D + B + V + A``. (RFC 9591 verifies Ed25519
  cofactored, ``[8][z]B == [8]R + [8][c]PK``; with R checked to lie in the prime-order
  subgroup this is the same equation, so the floor does not charge the multiplications by 8.)

Two things can put a step under its floor: Ed25519 ``verify`` hands the whole check to
libsodium's own verifier, whose variable-time double-scalar multiplication costs less than
``B + V + A`` priced one by one; and secp256k1 adds many points in one ``combine_keys`` call,
far cheaper per point than the two-key ``A`` of the floor.

The DKG rows need ``lifeboat.threshold.dkg`` (``part1``, ``part2``, ``part3``); when the module
is missing, or with ``--no-dkg``, they are skipped with a note.

The table goes to stdout, or to stderr when ``--json`` puts a JSON object on stdout.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib
import importlib.metadata
import itertools
import json
import os
import platform
import secrets
import signal
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import nacl.bindings as sodium
from coincurve import PublicKey

from lifeboat.threshold import frost, keygen
from lifeboat.threshold.ed25519 import Ed25519Sha512
from lifeboat.threshold.group import Ciphersuite, ThresholdError
from lifeboat.threshold.secp256k1 import Secp256k1Sha256

CONFIGS = ((2, 3), (5, 7), (67, 100))
MESSAGE = b"lifeboat FROST benchmark message"
OPS = ("B", "V", "S", "A", "D")
RATIO_TARGET = 2.0
AGGREGATE_TARGET_S = 0.100  # at 67-of-100

STEPS = {
    "keygen": "dealer keygen",
    "dkg1": "DKG part1 (per participant)",
    "dkg2": "DKG part2 (per participant)",
    "dkg3": "DKG part3 (per participant)",
    "round1": "round 1: commit (per signer)",
    "round2": "round 2: sign (per signer)",
    "aggregate": "aggregate (verifies the result)",
    "blame": "aggregate, 1 bad share (finds it)",
    "verify": "verify",
}

Ops = dict[str, int]


def floor_ops(step: str, t: int, n: int) -> Ops:
    """The group operations ``step`` needs for ``t``-of-``n`` (see the module docstring)."""
    verify: Ops = {"B": 1, "V": 1, "A": 1, "D": 1}
    group_commitment: Ops = {"V": t, "A": 2 * t - 1}
    if step == "keygen":
        return {"B": t + n}
    if step == "dkg1":
        return {"B": t + 1}
    if step == "dkg2":
        return {"B": n - 1, "V": n - 1, "A": n - 1}
    if step == "dkg3":
        return {
            "B": n - 1,
            "S": (n - 1) * (t - 1) + n * (t - 1),
            "A": (n - 1) * (t - 1) + t * (n - 1) + n * (t - 1),
        }
    if step == "round1":
        return {"B": 2}
    if step == "round2":
        return group_commitment
    if step == "aggregate":
        return add_ops(group_commitment, verify)
    if step == "blame":
        return add_ops(add_ops(group_commitment, verify), {"B": t, "V": t, "A": t})
    if step == "verify":
        return verify
    raise ValueError(step)


def add_ops(a: Ops, b: Ops) -> Ops:
    return {op: a.get(op, 0) + b.get(op, 0) for op in OPS if a.get(op, 0) + b.get(op, 0)}


def describe_ops(ops: Ops) -> str:
    return " + ".join(f"{ops[op]}{op}" for op in OPS if ops.get(op))


# --- timing -------------------------------------------------------------------------------


class TooSlow(Exception):
    """A call ran past the time limit."""


def timed_call(fn: Callable[[], object], limit: float | None) -> float | None:
    """Seconds one call of ``fn`` takes, or ``None`` if it was stopped at ``limit`` seconds."""
    if limit is None or not hasattr(signal, "setitimer"):
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    running = True

    def stop(signum: int, frame: object) -> None:
        if running:
            raise TooSlow

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        start = time.perf_counter()
        fn()
        running = False
        return time.perf_counter() - start
    except TooSlow:
        return None
    finally:
        running = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Timer:
    repeat: int
    min_sample: float
    limit: float | None
    slow_budget: float

    def measure(self, fn: Callable[[], object]) -> list[float]:
        """Seconds per call of ``fn``: ``repeat`` samples, each at least ``min_sample`` long.

        The first call warms up and calibrates. A call slower than a second counts that first
        call as a sample and takes more only while the total stays within ``slow_budget``
        seconds. A call stopped at ``limit`` seconds raises :class:`TooSlow`.
        """
        gc_was_enabled = gc.isenabled()
        gc.collect()
        gc.disable()
        try:
            once = timed_call(fn, self.limit)
            if once is None:
                raise TooSlow
            if once > 1.0:
                samples = [once]
                while len(samples) < self.repeat and sum(samples) + once <= self.slow_budget:
                    start = time.perf_counter()
                    fn()
                    samples.append(time.perf_counter() - start)
                return samples
            number = max(1, round(self.min_sample / max(once, 1e-9)))
            samples = []
            for _ in range(self.repeat):
                start = time.perf_counter()
                for _ in range(number):
                    fn()
                samples.append((time.perf_counter() - start) / number)
            return samples
        finally:
            if gc_was_enabled:
                gc.enable()


# --- the cost of one group operation --------------------------------------------------------


def op_costs_ed25519(timer: Timer) -> dict[str, float]:
    order = 2**252 + 27742317777372353535851937790883648493
    scalars = [(1 + secrets.randbelow(order - 1)).to_bytes(32, "little") for _ in range(64)]
    points = [bytes(sodium.crypto_scalarmult_ed25519_base_noclamp(k)) for k in scalars]
    pairs = list(zip(scalars, points[1:] + points[:1], strict=True))
    small = [(secrets.randbelow(254) + 2).to_bytes(32, "little") for _ in points]

    def base() -> None:
        for k in scalars:
            sodium.crypto_scalarmult_ed25519_base_noclamp(k)

    def variable() -> None:
        for k, p in pairs:
            sodium.crypto_scalarmult_ed25519_noclamp(k, p)

    def variable_small() -> None:
        for k, p in zip(small, points, strict=True):
            sodium.crypto_scalarmult_ed25519_noclamp(k, p)

    def add() -> None:
        for p, q in itertools.pairwise(points):
            sodium.crypto_core_ed25519_add(p, q)

    def decode() -> None:
        for p in points:
            sodium.crypto_core_ed25519_is_valid_point(p)

    return {
        "B": statistics.median(timer.measure(base)) / len(scalars),
        "V": statistics.median(timer.measure(variable)) / len(pairs),
        "S": statistics.median(timer.measure(variable_small)) / len(small),
        "A": statistics.median(timer.measure(add)) / (len(points) - 1),
        "D": statistics.median(timer.measure(decode)) / len(points),
    }


def op_costs_secp256k1(timer: Timer) -> dict[str, float]:
    order = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    scalars = [(1 + secrets.randbelow(order - 1)).to_bytes(32, "big") for _ in range(64)]
    points = [PublicKey.from_valid_secret(k) for k in scalars]
    encoded = [p.format() for p in points]
    pairs = list(zip(scalars, points[1:] + points[:1], strict=True))
    small = [(secrets.randbelow(254) + 2).to_bytes(32, "big") for _ in points]

    def base() -> None:
        for k in scalars:
            PublicKey.from_valid_secret(k)

    def variable() -> None:
        for k, p in pairs:
            p.multiply(k)

    def variable_small() -> None:
        for k, p in zip(small, points, strict=True):
            p.multiply(k)

    def add() -> None:
        for p, q in itertools.pairwise(points):
            PublicKey.combine_keys([p, q])

    def decode() -> None:
        for e in encoded:
            PublicKey(e)

    return {
        "B": statistics.median(timer.measure(base)) / len(scalars),
        "V": statistics.median(timer.measure(variable)) / len(pairs),
        "S": statistics.median(timer.measure(variable_small)) / len(small),
        "A": statistics.median(timer.measure(add)) / (len(points) - 1),
        "D": statistics.median(timer.measure(decode)) / len(encoded),
    }


# --- the protocol steps ---------------------------------------------------------------------


@dataclass
class Row:
    suite: str
    min_signers: int
    max_signers: int
    step: str
    samples: list[float]
    ops: Ops
    op_costs: dict[str, float]
    stopped: bool = False
    floor: float = field(init=False)
    median: float = field(init=False)

    def __post_init__(self) -> None:
        self.median = statistics.median(self.samples)
        self.floor = sum(count * self.op_costs[op] for op, count in self.ops.items())

    @property
    def ratio(self) -> float:
        return self.median / self.floor

    def as_json(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "min_signers": self.min_signers,
            "max_signers": self.max_signers,
            "step": self.step,
            "label": STEPS[self.step],
            "median_s": self.median,
            "samples_s": self.samples,
            "floor_ops": self.ops,
            "floor_s": self.floor,
            "ratio": self.ratio,
            "stopped_at_limit": self.stopped,
        }


Record = Callable[[str, Callable[[], object]], None]


def recorder(into: list[Row], suite: str, t: int, n: int, costs: dict[str, float], timer: Timer) -> Record:
    """Time a step and keep its row; a step stopped at the time limit keeps the limit as a lower bound."""

    def record(step: str, fn: Callable[[], object]) -> None:
        stopped = False
        try:
            samples = timer.measure(fn)
        except TooSlow:
            assert timer.limit is not None
            samples, stopped = [timer.limit], True
        into.append(Row(suite, t, n, step, samples, floor_ops(step, t, n), costs, stopped))

    return record


def load_dkg() -> ModuleType | None:
    try:
        return importlib.import_module("lifeboat.threshold.dkg")
    except ModuleNotFoundError:
        return None


def bench_signing(suite: Ciphersuite, t: int, n: int, record: Record) -> None:
    record("keygen", lambda: keygen.trusted_dealer_keygen(suite, t, n))
    packages, public, _ = keygen.trusted_dealer_keygen(suite, t, n)
    signers = packages[:t]
    me = signers[0]
    record("round1", lambda: frost.commit(suite, me))

    nonces = [frost.commit(suite, p) for p in signers]
    commitments = [x.commitment for x in nonces]
    record("round2", lambda: frost.sign(suite, me, nonces[0], MESSAGE, commitments))

    shares = [frost.sign(suite, p, x, MESSAGE, commitments) for p, x in zip(signers, nonces, strict=True)]
    signature = frost.aggregate(suite, commitments, MESSAGE, shares, public)
    if not frost.verify(suite, public.group_public_key, MESSAGE, signature):
        raise SystemExit(f"{suite.name} {t}-of-{n}: the aggregate signature does not verify")
    record("aggregate", lambda: frost.aggregate(suite, commitments, MESSAGE, shares, public))

    bad = shares[-1]
    bad_shares = [*shares[:-1], frost.SignatureShare(bad.identifier, (bad.share + 1) % suite.group.order)]

    def blame() -> None:
        try:
            frost.aggregate(suite, commitments, MESSAGE, bad_shares, public)
        except ThresholdError as error:
            if error.culprits != (bad.identifier,):
                raise SystemExit(f"blamed {error.culprits}, not {bad.identifier}") from None
        else:
            raise SystemExit("aggregate accepted a bad share")

    record("blame", blame)
    record("verify", lambda: frost.verify(suite, public.group_public_key, MESSAGE, signature))


def bench_dkg(dkg: ModuleType, suite: Ciphersuite, t: int, n: int, record: Record) -> None:
    ids = list(range(1, n + 1))
    record("dkg1", lambda: dkg.part1(suite, 1, n, t))
    round1 = {i: dkg.part1(suite, i, n, t) for i in ids}

    def others1(i: int) -> dict[int, Any]:
        return {j: round1[j][1] for j in ids if j != i}

    mine1 = others1(1)
    record("dkg2", lambda: dkg.part2(suite, round1[1][0], mine1))
    round2 = {i: dkg.part2(suite, round1[i][0], others1(i)) for i in ids}
    for_me = {j: round2[j][1][1] for j in ids if j != 1}
    record("dkg3", lambda: dkg.part3(suite, round2[1][0], mine1, for_me))

    if n > 10:
        return  # the check below runs part3 t times; the small configurations cover it
    # Not timed: the DKG output signs.
    results = {
        i: dkg.part3(suite, round2[i][0], others1(i), {j: round2[j][1][i] for j in ids if j != i})
        for i in ids[:t]
    }
    public = results[1][1]
    signers = [results[i][0] for i in ids[:t]]
    nonces = [frost.commit(suite, p) for p in signers]
    commitments = [x.commitment for x in nonces]
    shares = [frost.sign(suite, p, x, MESSAGE, commitments) for p, x in zip(signers, nonces, strict=True)]
    signature = frost.aggregate(suite, commitments, MESSAGE, shares, public)
    if not frost.verify(suite, public.group_public_key, MESSAGE, signature):
        raise SystemExit(f"{suite.name} {t}-of-{n}: the DKG keys do not sign")


# --- output ---------------------------------------------------------------------------------


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}"


def table(rows: list[Row]) -> str:
    header = ("suite", "t-of-n", "step", "median ms", "floor ms", "ratio", "floor ops")
    body = [
        (
            row.suite,
            f"{row.min_signers}-of-{row.max_signers}",
            STEPS[row.step],
            ("> " if row.stopped else "") + fmt_ms(row.median),
            fmt_ms(row.floor),
            ("> " if row.stopped else "") + f"{row.ratio:.2f}",
            describe_ops(row.ops),
        )
        for row in rows
    ]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---"] * 3 + ["---:"] * 3 + ["---"]) + " |"]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


def verdicts(rows: list[Row]) -> list[str]:
    notes = []
    over = [r for r in rows if r.ratio > RATIO_TARGET]
    if over:
        notes.append(f"Above {RATIO_TARGET:g}x the floor:")
        notes += [
            f"  {r.suite} {r.min_signers}-of-{r.max_signers} {STEPS[r.step]}: "
            f"{'more than ' if r.stopped else ''}{r.ratio:.2f}x"
            for r in over
        ]
    else:
        notes.append(f"Every step is within {RATIO_TARGET:g}x of its floor.")
    for r in rows:
        if r.step == "aggregate" and (r.min_signers, r.max_signers) == (67, 100):
            verdict = "meets" if r.median < AGGREGATE_TARGET_S else "MISSES"
            notes.append(
                f"aggregate 67-of-100 {r.suite}: {fmt_ms(r.median)} ms, {verdict} the "
                f"{AGGREGATE_TARGET_S * 1e3:g} ms target"
            )
    return notes


def versions() -> dict[str, str]:
    found = {}
    for dist in ("pynacl", "coincurve"):
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[dist] = "unknown"
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer and shorter samples (about a minute)")
    parser.add_argument("--json", action="store_true", help="print a JSON object on stdout")
    parser.add_argument("--repeat", type=int, default=None, help="samples per measurement (7; 3 if --quick)")
    parser.add_argument(
        "--min-sample", type=float, default=None, help="seconds per sample (0.1; 0.02 if --quick)"
    )
    parser.add_argument(
        "--limit",
        type=float,
        default=None,
        help="stop any single call after this many seconds and report the limit as a lower bound "
        "(none; 10 if --quick)",
    )
    parser.add_argument("--no-dkg", action="store_true", help="skip the DKG rows")
    args = parser.parse_args(argv)
    repeat = args.repeat if args.repeat is not None else (3 if args.quick else 7)
    min_sample = args.min_sample if args.min_sample is not None else (0.02 if args.quick else 0.1)
    if repeat < 1 or min_sample <= 0:
        parser.error("--repeat must be at least 1 and --min-sample positive")
    limit = args.limit if args.limit is not None else (10.0 if args.quick else None)
    timer = Timer(repeat, min_sample, limit, 5.0 if args.quick else 60.0)
    out = sys.stderr if args.json else sys.stdout

    dkg = None if args.no_dkg else load_dkg()
    if dkg is None:
        reason = "--no-dkg" if args.no_dkg else "lifeboat.threshold.dkg is not available"
        print(f"note: DKG rows skipped ({reason})", file=out)

    suites: list[tuple[Ciphersuite, Callable[[Timer], dict[str, float]]]] = [
        (Ed25519Sha512(), op_costs_ed25519),
        (Secp256k1Sha256(), op_costs_secp256k1),
    ]
    started = time.perf_counter()
    rows: list[Row] = []
    costs_by_suite: dict[str, dict[str, float]] = {}
    for suite, op_costs in suites:
        costs = op_costs(timer)
        short = suite.group.name
        costs_by_suite[short] = costs
        print(
            f"{short}: one op costs " + ", ".join(f"{op} {costs[op] * 1e6:.2f} us" for op in OPS),
            file=out,
            flush=True,
        )
        for t, n in CONFIGS:
            found: list[Row] = []
            record = recorder(found, short, t, n, costs, timer)
            bench_signing(suite, t, n, record)
            if dkg is not None:
                bench_dkg(dkg, suite, t, n, record)
            order = list(STEPS)
            rows += sorted(found, key=lambda r: order.index(r.step))

    elapsed = time.perf_counter() - started
    print(table(rows), file=out)
    for line in verdicts(rows):
        print(line, file=out)
    print(
        f"({elapsed:.0f} s; median of {repeat} samples of >= {min_sample:g} s; python "
        f"{platform.python_version()}, {', '.join(f'{k} {v}' for k, v in versions().items())}, "
        f"{os.cpu_count()} CPUs)",
        file=out,
    )
    if args.json:
        document = {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "command": " ".join(["python", "bench/bench_frost.py", *(argv or sys.argv[1:])]),
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
            "python": platform.python_version(),
            "libraries": versions(),
            "repeat": repeat,
            "min_sample_s": min_sample,
            "limit_s": limit,
            "dkg": dkg is not None,
            "op_costs_s": costs_by_suite,
            "results": [row.as_json() for row in rows],
            "notes": verdicts(rows),
            "elapsed_s": elapsed,
        }
        json.dump(document, sys.stdout, indent=2)
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
