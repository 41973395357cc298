"""Benchmark the store's object codec against the raw speed of each of its stages.

Usage::

    python bench/bench_store_codec.py [--size-mib 256] [--repeat 3] [--piece-mib 16] [--json]

For two objects of ``--size-mib`` MiB, one compressible (seeded JSON-lines ledger records) and
one random, measures ``--repeat`` times (after one unrecorded warm-up round) and reports the
median of:

* the codec, 3-of-5: ``encode``; ``decode`` from the three data shards (nothing to rebuild)
  and from shards 2, 3, 4 (two data blocks rebuilt from parity); ``repair`` of shards 3 and 4;
  ``content_id`` (which the caller computes, not ``encode``);
* each stage alone, on exactly the bytes the codec gives it: zstd-3 compression of the object,
  AES-256-GCM of the compressed (or raw) payload, zfec 3-of-5 encoding of the ciphertext,
  keyed BLAKE3 of the five shard bodies; and the reverse stages for decoding;
* a plain copy of the object into fresh memory (``data[1:]``): on this kind of machine a
  large fresh allocation costs page faults at a few GB/s, and the codec makes several;
* the caller's parallelism: the object cut into pieces of ``--piece-mib`` MiB (default 16, a
  pack-sized object), encoded one after the other and then on two threads.

Throughput is in MB/s (10^6 bytes of *object* per second, whatever a stage actually
processes), so the figures add up: "sum of stages" is the speed the codec would have if it
did nothing but call its stages one after the other, and "codec / stages" is the share of
that ideal the codec reaches. Stage figures per byte they process are also printed. The run
holds the object, its shards and a few intermediate copies in memory: about 6 x --size-mib.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import blake3
import zfec
import zstandard
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lifeboat.store.codec import CodecParams, content_id, decode, encode, inspect_shard, repair

MIB = 1 << 20
MB = 1_000_000
PARAMS = CodecParams(3, 5)


def make_ledger(size: int, seed: int = 1) -> bytes:
    """Return ``size`` bytes of JSON-lines ledger records (accounts, assets, amounts), seeded."""
    rng = random.Random(seed)
    assets = ["ETH", "USDC", "WBTC", "DAI", "stETH", "LINK"]
    accounts = [f"0x{rng.getrandbits(160):040x}" for _ in range(5000)]
    lines: list[bytes] = []
    total = 0
    seq = 0
    while total < size:
        line = (
            f'{{"seq":{seq},"block":{19_000_000 + seq // 40},"account":"{rng.choice(accounts)}",'
            f'"asset":"{rng.choice(assets)}","delta":"{rng.randint(-(10**12), 10**12) / 1e6:.6f}",'
            f'"balance":"{rng.randint(0, 10**15) / 1e6:.6f}","kind":"{rng.choice(("supply", "borrow", "repay"))}"}}\n'
        ).encode()
        lines.append(line)
        total += len(line)
        seq += 1
    return b"".join(lines)[:size]


def timed(action: Callable[[], object]) -> float:
    """Seconds taken by one call of ``action``."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def measure(actions: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median seconds of each action over ``repeat`` rounds, after one warm-up round."""
    samples: dict[str, list[float]] = {name: [] for name in actions}
    for round_number in range(repeat + 1):
        for name, action in actions.items():
            seconds = timed(action)
            if round_number:
                samples[name].append(seconds)
    return {name: statistics.median(values) for name, values in samples.items()}


def keyed_blake3(key: bytes, parts: list[bytes], threads: int) -> None:
    """Hash each part with keyed BLAKE3."""
    for part in parts:
        blake3.blake3(part, key=key, max_threads=threads).digest()


def run_one(name: str, data: bytes, repeat: int, piece_mib: int) -> dict[str, Any]:
    """Measure the codec and its stages on ``data``; return seconds and MB/s."""
    key = os.urandom(32)
    object_id = content_id(key, data)
    print(f"{name}: {len(data) / MIB:.0f} MiB, preparing ...", file=sys.stderr)

    shards = encode(key, object_id, data, PARAMS)
    info = inspect_shard(shards[0])
    # Rebuild the intermediate values exactly as the codec makes them, to time each stage alone.
    compressor = zstandard.ZstdCompressor(level=3, write_checksum=False)
    payload = compressor.compress(data) if info.compressed else data
    aead = AESGCM(os.urandom(32))
    nonce = os.urandom(12)
    ciphertext = aead.encrypt(nonce, payload, b"header")
    block_size = -(-len(ciphertext) // PARAMS.k)
    padded = ciphertext + bytes(block_size * PARAMS.k - len(ciphertext))
    blocks = [padded[i * block_size : (i + 1) * block_size] for i in range(PARAMS.k)]
    coded = zfec.Encoder(PARAMS.k, PARAMS.n).encode(blocks)
    bodies = [bytes(body) for body in coded]
    shard_key = os.urandom(32)
    decompressor = zstandard.ZstdDecompressor()
    parity_decoder = zfec.Decoder(PARAMS.k, PARAMS.n)
    data_slots = {i: shards[i] for i in range(3)}
    parity_slots = {i: shards[i] for i in (2, 3, 4)}
    piece = piece_mib * MIB
    pieces = [data[start : start + piece] for start in range(0, len(data), piece)]

    def stage_compress() -> object:  # the codec always tries, and keeps the result if smaller
        return compressor.compress(data)

    def stage_decompress() -> object:
        return decompressor.decompress(payload) if info.compressed else None

    def pieces_serial() -> object:
        return [encode(key, object_id, piece, PARAMS) for piece in pieces]

    def pieces_threaded() -> object:
        with ThreadPoolExecutor(2) as pool:
            return list(pool.map(lambda piece: encode(key, object_id, piece, PARAMS), pieces))

    actions: dict[str, Callable[[], object]] = {
        "encode": lambda: encode(key, object_id, data, PARAMS),
        "decode (data shards)": lambda: decode(key, data_slots),
        "decode (2 rebuilt)": lambda: decode(key, parity_slots),
        "repair (2 shards)": lambda: repair(key, data_slots, PARAMS),
        "content_id": lambda: content_id(key, data),
        "copy into fresh memory": lambda: data[1:],
        "zstd-3 compress": stage_compress,
        "AES-256-GCM encrypt": lambda: aead.encrypt(nonce, payload, b"header"),
        "zfec 3-of-5 encode": lambda: zfec.Encoder(PARAMS.k, PARAMS.n).encode(blocks),
        "BLAKE3 keyed, 5 shards": lambda: keyed_blake3(shard_key, bodies, blake3.blake3.AUTO),
        "BLAKE3 keyed, 5 shards, 1 thread": lambda: keyed_blake3(shard_key, bodies, 1),
        "BLAKE3 keyed, 3 shards": lambda: keyed_blake3(shard_key, bodies[2:], blake3.blake3.AUTO),
        "zfec 3-of-5 decode (2 rebuilt)": lambda: parity_decoder.decode(bodies[2:], [2, 3, 4]),
        "AES-256-GCM decrypt": lambda: aead.decrypt(nonce, ciphertext, b"header"),
        "zstd decompress": stage_decompress,
        f"encode {piece_mib} MiB pieces, 1 thread": pieces_serial,
        f"encode {piece_mib} MiB pieces, 2 threads": pieces_threaded,
    }
    print(f"{name}: measuring ({repeat} rounds + warm-up) ...", file=sys.stderr)
    seconds = measure(actions, repeat)
    size = len(data)
    mbps = {label: size / MB / max(value, 1e-9) for label, value in seconds.items()}
    encode_stages = ["zstd-3 compress", "AES-256-GCM encrypt", "zfec 3-of-5 encode", "BLAKE3 keyed, 5 shards"]
    decode_stages = [
        "BLAKE3 keyed, 3 shards",
        "zfec 3-of-5 decode (2 rebuilt)",
        "AES-256-GCM decrypt",
        "zstd decompress",
    ]
    encode_sum = sum(seconds[label] for label in encode_stages)
    decode_sum = sum(seconds[label] for label in decode_stages)
    processed = {
        "zstd-3 compress": size,
        "AES-256-GCM encrypt": len(payload),
        "zfec 3-of-5 encode": len(ciphertext),
        "BLAKE3 keyed, 5 shards": sum(len(body) for body in bodies),
    }
    return {
        "name": name,
        "bytes": size,
        "compressed": info.compressed,
        "ratio": size / info.ciphertext_length,
        "seconds": seconds,
        "mb_per_s": mbps,
        "stage_mb_per_s_of_own_input": {
            label: count / MB / max(seconds[label], 1e-9) for label, count in processed.items() if count
        },
        "encode_sum_of_stages_mb_per_s": size / MB / encode_sum,
        "decode_sum_of_stages_mb_per_s": size / MB / decode_sum,
        "encode_vs_stages": encode_sum / seconds["encode"],
        "decode_vs_stages": decode_sum / seconds["decode (2 rebuilt)"],
    }


def table(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """Format the results as a plain-text table."""
    labels = list(results[0]["mb_per_s"])
    width = max(len(label) for label in labels) + 2
    out = [
        f"store codec {PARAMS}, object {meta['size_mib']} MiB, median of {meta['repeat']}; "
        f"{meta['python']}, {meta['cpus']} cpus",
        "MB/s of object bytes".rjust(width + 30),
        "".ljust(width) + "".join(result["name"].rjust(16) for result in results),
    ]
    for label in labels:
        out.append(label.ljust(width) + "".join(f"{result['mb_per_s'][label]:16,.0f}" for result in results))
    out.append("")
    for key, text in (
        ("ratio", "object / ciphertext"),
        ("encode_sum_of_stages_mb_per_s", "encode: sum of stages MB/s"),
        ("encode_vs_stages", "encode: codec / sum of stages"),
        ("decode_sum_of_stages_mb_per_s", "decode: sum of stages MB/s"),
        ("decode_vs_stages", "decode (2 rebuilt) / stages"),
    ):
        out.append(text.ljust(width) + "".join(f"{result[key]:16,.2f}" for result in results))
    out.append("")
    out.append("stage speed on the bytes it processes (MB/s):")
    for result in results:
        parts = ", ".join(f"{k} {v:,.0f}" for k, v in result["stage_mb_per_s_of_own_input"].items())
        out.append(f"  {result['name']}: {parts}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the benchmark, print the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mib", type=int, default=256, help="object size (default 256)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (default 3)")
    parser.add_argument("--piece-mib", type=int, default=16, help="piece size for the threaded run")
    parser.add_argument("--json", action="store_true", help="print JSON on stdout")
    args = parser.parse_args(argv)
    if not 1 <= args.size_mib <= 1024 or args.repeat < 1 or not 1 <= args.piece_mib <= args.size_mib:
        parser.error("--size-mib must be 1..1024, --repeat at least 1, --piece-mib 1..--size-mib")
    size = args.size_mib * MIB
    print("generating data ...", file=sys.stderr)
    datasets = [("ledger", make_ledger(size)), ("random", os.urandom(size))]
    results = [run_one(name, data, args.repeat, args.piece_mib) for name, data in datasets]
    meta = {
        "size_mib": args.size_mib,
        "piece_mib": args.piece_mib,
        "repeat": args.repeat,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "versions": {
            "zstandard": zstandard.__version__,
            "blake3": blake3.__version__,
            "zfec": zfec.__version__,
        },
    }
    text = table(results, meta)
    if args.json:
        print(text, file=sys.stderr)
        print(json.dumps({"meta": meta, "results": results}, indent=2))
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
