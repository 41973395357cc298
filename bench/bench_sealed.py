"""Benchmark sealed files against raw AES-256-GCM and against a plain file copy.

Usage::

    python bench/bench_sealed.py [--size-mib 1024] [--repeat 3] [--dir DIR] [--chunk-log2 20]
                                 [--json]

Creates a random file of ``--size-mib`` MiB in a temporary directory (inside ``--dir`` if
given), then measures, ``--repeat`` times each (after one unrecorded warm-up round), and
reports the median:

* ``raw AES-256-GCM``: encrypting the same bytes, already in memory, in 1 MiB chunks into a
  preallocated buffer (the yardstick; no I/O at all);
* ``plain copy``: the same file read in 1 MiB chunks and written with ``atomic_writer``
  (temp file, fsync, rename), i.e. the I/O that sealing cannot avoid, without any crypto;
* ``seal_file`` and ``unseal_file``;
* ``seal_stream`` and ``unseal_stream`` from memory to a sink that discards what it is given:
  the format's own cost with the file system taken out.

The plaintext and the sealed file are also held in memory for the whole run (for the two
in-memory measurements), so the run needs about twice ``--size-mib`` of RAM.

Throughput is in MB/s (10^6 bytes of plaintext per second). Reads come from the page cache
(the files were just written); writes include the fsync. Between measurements the script
calls ``sync`` and pauses, outside the timings. The table goes to stdout, or to stderr when
``--json`` puts a JSON object on stdout.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cryptography
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lifeboat.fs import atomic_writer
from lifeboat.secrets.sealed import (
    DEFAULT_CHUNK_LOG2,
    generate_key,
    seal_file,
    seal_stream,
    unseal_file,
    unseal_stream,
)

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

MIB = 1 << 20
MB = 1_000_000


def make_random_file(path: Path, size: int) -> None:
    """Write ``size`` random bytes to ``path``, 1 MiB at a time."""
    with path.open("wb") as handle:
        left = size
        while left:
            piece = min(left, MIB)
            handle.write(os.urandom(piece))
            left -= piece


def raw_aes_gcm(data: bytes) -> float:
    """Seconds to AES-256-GCM-encrypt ``data`` (in memory) in 1 MiB chunks into one buffer."""
    view = memoryview(data)
    aead = AESGCM(AESGCM.generate_key(256))
    out = bytearray(MIB + 16)
    out_view = memoryview(out)
    start = time.perf_counter()
    for counter, offset in enumerate(range(0, len(data), MIB)):
        chunk = view[offset : offset + MIB]
        aead.encrypt_into(counter.to_bytes(12, "big"), chunk, None, out_view[: len(chunk) + 16])
    elapsed = time.perf_counter() - start
    view.release()
    return elapsed


def plain_copy(src: Path, dst: Path) -> float:
    """Seconds to copy ``src`` to ``dst`` in 1 MiB chunks through ``atomic_writer``."""
    buffer = bytearray(MIB)
    view = memoryview(buffer)
    start = time.perf_counter()
    with src.open("rb") as source, atomic_writer(dst) as sink:
        while got := source.readinto(buffer):
            sink.write(view[:got])
    return time.perf_counter() - start


class NullSink(io.RawIOBase):
    """A writable stream that discards everything."""

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer, /) -> int:
        return memoryview(data).nbytes


def stream_in_memory(plain: bytes, sealed: bytes, key: bytes, chunk_log2: int) -> tuple[float, float]:
    """Seconds for seal_stream and unseal_stream reading from memory, output discarded."""
    start = time.perf_counter()
    seal_stream(io.BytesIO(plain), NullSink(), key, chunk_log2=chunk_log2)  # type: ignore[arg-type]
    seal_seconds = time.perf_counter() - start
    start = time.perf_counter()
    unseal_stream(io.BytesIO(sealed), NullSink(), key)  # type: ignore[arg-type]
    return seal_seconds, time.perf_counter() - start


def timed(action: Callable[[], object]) -> float:
    """Seconds taken by ``action()``."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def same_contents(a: Path, b: Path) -> bool:
    """Compare two files chunk by chunk."""
    with a.open("rb") as first, b.open("rb") as second:
        while True:
            x, y = first.read(MIB), second.read(MIB)
            if x != y:
                return False
            if not x:
                return True


def remove(*paths: Path) -> None:
    """Delete files left by a previous run, then let the disk settle (outside the timed region).

    Freeing a 1 GiB file (a discard on some file systems) and the write-back of earlier runs
    would otherwise be charged to whichever measurement comes next.
    """
    for path in paths:
        path.unlink(missing_ok=True)
    os.sync()
    time.sleep(0.5)


def run(size_mib: int, repeat: int, directory: Path | None, chunk_log2: int) -> dict[str, Any]:
    """Run every measurement and return the results as a JSON-ready dict."""
    size = size_mib * MIB
    key = generate_key()
    times: dict[str, list[float]] = {
        "raw": [],
        "copy": [],
        "seal": [],
        "unseal": [],
        "seal_mem": [],
        "unseal_mem": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench-sealed-", dir=directory) as tmp:
        work = Path(tmp)
        plain = work / "plain.bin"
        copied = work / "copy.bin"
        sealed = work / "plain.bin.lbx"
        opened = work / "opened.bin"
        print(f"writing {size_mib} MiB of random data to {plain} ...", file=sys.stderr)
        make_random_file(plain, size)
        # The in-memory copies stay resident for the whole run: allocating and freeing 1 GiB
        # between measurements would make the page allocations of the next one slower.
        plain_bytes = plain.read_bytes()
        seal_file(plain, sealed, key, chunk_log2=chunk_log2)
        sealed_bytes = sealed.read_bytes()
        remove()
        # Round 0 is a warm-up that is not recorded: from then on, every file measurement
        # starts by deleting its own output of the round before, so each one writes into
        # memory that was just freed (on a VM, memory untouched for a while can be much slower
        # to allocate, which would otherwise favour whichever measurement follows a delete).
        for round_number in range(repeat + 1):
            print(f"round {round_number}/{repeat}{' (warm-up)' * (not round_number)}", file=sys.stderr)
            samples = {"raw": raw_aes_gcm(plain_bytes)}
            remove(copied)
            samples["copy"] = plain_copy(plain, copied)
            remove(sealed)
            samples["seal"] = timed(lambda: seal_file(plain, sealed, key, chunk_log2=chunk_log2))
            remove(opened)
            samples["unseal"] = timed(lambda: unseal_file(sealed, opened, key))
            samples["seal_mem"], samples["unseal_mem"] = stream_in_memory(
                plain_bytes, sealed_bytes, key, chunk_log2
            )
            if round_number:
                for name, seconds in samples.items():
                    times[name].append(seconds)
        if not same_contents(plain, opened):
            raise SystemExit("unsealed file differs from the original")
        sealed_size = sealed.stat().st_size

    medians = {name: statistics.median(values) for name, values in times.items()}
    rates = {name: size / MB / seconds for name, seconds in medians.items()}
    return {
        "size_bytes": size,
        "sealed_bytes": sealed_size,
        "repeat": repeat,
        "chunk_log2": chunk_log2,
        "python": platform.python_version(),
        "cryptography": cryptography.__version__,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "median_seconds": medians,
        "all_seconds": times,
        "mb_per_s": rates,
        "ratio_to_raw_aes_gcm": {name: rate / rates["raw"] for name, rate in rates.items()},
        "ratio_to_plain_copy": {name: rate / rates["copy"] for name, rate in rates.items()},
    }


def table(result: dict[str, Any]) -> str:
    """Render the results as a small text table."""
    labels = {
        "raw": "raw AES-256-GCM (memory)",
        "copy": "plain copy (read+write+fsync)",
        "seal": "seal_file",
        "unseal": "unseal_file",
        "seal_mem": "seal_stream (memory -> discard)",
        "unseal_mem": "unseal_stream (memory -> discard)",
    }
    lines = [
        f"{result['size_bytes'] // MIB} MiB, chunk 2^{result['chunk_log2']}, "
        f"median of {result['repeat']}, cryptography {result['cryptography']}, "
        f"{result['cpus']} CPUs",
        f"{'operation':<34} {'median s':>8} {'MB/s':>9} {'vs AES-GCM':>11} {'vs copy':>8}  {'all runs (s)'}",
    ]
    for name, label in labels.items():
        runs = " ".join(f"{seconds:.3f}" for seconds in result["all_seconds"][name])
        lines.append(
            f"{label:<34} {result['median_seconds'][name]:>8.3f} "
            f"{result['mb_per_s'][name]:>9.0f} "
            f"{result['ratio_to_raw_aes_gcm'][name]:>10.1%} "
            f"{result['ratio_to_plain_copy'][name]:>8.1%}  {runs}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the benchmark, print the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mib", type=int, default=1024, help="file size (default 1024)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the temp files")
    parser.add_argument("--chunk-log2", type=int, default=DEFAULT_CHUNK_LOG2)
    parser.add_argument("--json", action="store_true", help="print JSON on stdout")
    args = parser.parse_args(argv)
    if args.size_mib < 1 or args.repeat < 1:
        parser.error("--size-mib and --repeat must be at least 1")
    result = run(args.size_mib, args.repeat, args.dir, args.chunk_log2)
    if args.json:
        print(table(result), file=sys.stderr)
        print(json.dumps(result, indent=2))
    else:
        print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
