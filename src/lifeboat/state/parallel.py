"""Cutting a JSON Lines file's records into prolly leaves on worker processes.

A full record snapshot spends its time per record in Python (parsing the line, its sums, two
BLAKE3 calls and the leaf's Merkle tree), under one interpreter lock. Leaf boundaries depend
on keys alone (:func:`lifeboat.state.prolly.build.leaf_run`), so the file's blocks can be cut
into leaves by other processes, one block each, while this one joins the runs into the tree
(:func:`lifeboat.state.prolly.build.build_runs`) and stores the nodes. The tree is the one the
records give read one by one, node for node.

The workers take only the ordinary lines, exactly as the source's own fast path reads them: a
JSON object, a string key field, sums the fast reading takes. Anything else (a line that is not
an object, an integer key, a sum beyond 64 bits, keys out of order across blocks) makes the
whole run :class:`Unusual`; the caller then reads the file again one record at a time, which
either builds the same tree or raises the error that names the line.

A worker is ``python -c "...serve()"`` with pipes: a header (the record spec and the tree's
shape), then blocks, each answered by its :class:`~lifeboat.state.prolly.build.LeafRun`
(pickled; only this process's own children write to these pipes).
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
from collections import deque
from collections.abc import Generator, Iterable
from typing import IO, Final

import orjson

from lifeboat.errors import LifeboatError
from lifeboat.state.prolly import MAX_KEY_BYTES
from lifeboat.state.prolly.build import LeafRun, leaf_run
from lifeboat.state.prolly.node import Node
from lifeboat.state.record import RecordSpec

__all__ = ["MIN_PARALLEL_BYTES", "Unusual", "leaf_runs", "serve", "worker_count"]

#: Files smaller than this are read on the calling thread (two interpreters take ~0.1 s to start).
MIN_PARALLEL_BYTES: Final = 32 << 20
#: Worker processes at most (one per core; the calling process joins and stores).
MAX_WORKERS: Final = 4
_LENGTH: Final = struct.Struct(">Q")


class Unusual(Exception):
    """The records need the one-by-one reading (or a worker failed): read them again that way."""


def worker_count() -> int:
    """Worker processes to use: one per core, none on a single core."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return 0 if cores < 2 else min(cores, MAX_WORKERS)


# --- the worker side (pure but for the pipes) --------------------------------------------------


def parse_block(block: bytes, spec: RecordSpec) -> list[tuple[bytes, bytes, tuple[int, ...]]] | None:
    """A block's lines as (key, value, sums), read as the source's fast path reads them; None
    when any line needs the careful reading (or is an error, which that reading reports)."""
    key_field = spec.key_field
    fast_sums = spec._plan.fast
    no_sums = spec._plan.count == 0
    loads = orjson.loads
    previous: bytes | None = None
    out: list[tuple[bytes, bytes, tuple[int, ...]]] = []
    append = out.append
    try:
        for line in block.split(b"\n"):
            document = loads(line)
            if type(document) is not dict:
                return None
            raw_key = document.get(key_field)
            if type(raw_key) is not str or len(raw_key) > MAX_KEY_BYTES // 4:
                return None
            key = raw_key.encode()
            if previous is not None and key <= previous:
                return None
            sums = () if no_sums else fast_sums(document)
            if sums is None:
                return None
            previous = key
            append((key, line, sums))
    except (orjson.JSONDecodeError, UnicodeEncodeError):
        return None
    return out


def _read_exact(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError("the pipe closed")
    return data


def _send(stream: IO[bytes], data: bytes) -> None:
    stream.write(_LENGTH.pack(len(data)))
    stream.write(data)
    stream.flush()


def serve() -> None:
    """The worker: read the header, then answer each block with its leaf run (None: unusual)."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    (size,) = _LENGTH.unpack(_read_exact(stdin, _LENGTH.size))
    key_field, sum_fields, fanout, leaf_fanout = pickle.loads(_read_exact(stdin, size))  # noqa: S301 (our parent)
    spec = RecordSpec(key_field, sum_fields)
    while True:
        (size,) = _LENGTH.unpack(_read_exact(stdin, _LENGTH.size))
        if size == 0:
            return
        records = parse_block(_read_exact(stdin, size), spec)
        run: LeafRun | None = None
        if records is not None:
            try:
                run = leaf_run(records, fanout=fanout, leaf_fanout=leaf_fanout, sum_fields=len(sum_fields))
            except LifeboatError:  # the builder refuses (a value too long...): the caller says why
                run = None
        answer = None
        if records is not None and run is not None:
            # plain tuples: pickling a dataclass per leaf would cost more than the leaf's hashing
            leaves = [
                (leaf.node_id, leaf.data, leaf.count, leaf.sums, leaf.first_key, last)
                for leaf, last in run.leaves
            ]
            answer = (len(records), run.before, leaves, run.after)
        _send(stdout, pickle.dumps(answer, protocol=5))


# --- the calling side ----------------------------------------------------------------------------


class _Worker:
    def __init__(self, header: bytes) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(path for path in sys.path if path)
        if not sys.executable:
            raise Unusual("no Python interpreter to start a leaf worker with")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", "from lifeboat.state.parallel import serve; serve()"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
            )
        except OSError:
            raise Unusual("a leaf worker could not be started") from None
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin: IO[bytes] = self.process.stdin
        self.stdout: IO[bytes] = self.process.stdout
        self.send(header)

    def send(self, data: bytes) -> None:
        try:
            _send(self.stdin, data)
        except OSError:
            raise Unusual("a leaf worker stopped") from None

    def receive(self) -> tuple[int, LeafRun]:
        try:
            (size,) = _LENGTH.unpack(_read_exact(self.stdout, _LENGTH.size))
            answer = pickle.loads(_read_exact(self.stdout, size))  # noqa: S301 (our child)
        except (OSError, EOFError, pickle.UnpicklingError):
            raise Unusual("a leaf worker stopped") from None
        if answer is None:
            raise Unusual("a block needs the one-by-one reading")
        count, before, leaves, after = answer
        nodes = [
            (Node(node_id, data, 0, records, sums, first_key), last_key)
            for node_id, data, records, sums, first_key, last_key in leaves
        ]
        return count, LeafRun(before, nodes, after)

    def close(self) -> None:
        try:
            self.stdin.write(_LENGTH.pack(0))
            self.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.stdout.close()


def leaf_runs(
    blocks: Iterable[bytes],
    spec: RecordSpec,
    *,
    fanout: int,
    leaf_fanout: int,
    workers: int,
    counted: list[int],
) -> Generator[LeafRun, None, None]:
    """The leaf runs of ``blocks`` in order, cut by ``workers`` processes (one block each in flight).

    ``counted`` gets the number of records of each run as it is yielded. Raises :class:`Unusual`
    when a block (or the order between blocks) needs the one-by-one reading.
    """
    header = pickle.dumps((spec.key_field, spec.sum_fields, fanout, leaf_fanout), protocol=5)
    pool: list[_Worker] = []
    try:
        pool = [_Worker(header) for _ in range(max(1, workers))]
        idle = deque(pool)
        busy: deque[_Worker] = deque()
        last_key: list[bytes] = []

        def collect() -> LeafRun:
            worker = busy.popleft()
            count, run = worker.receive()
            idle.append(worker)
            first = _first_key(run)
            if first is not None:
                if last_key and first <= last_key[0]:
                    raise Unusual("keys out of order between blocks")
                last_key[:] = [_last_key(run)]
            counted.append(count)
            return run

        for block in blocks:
            if not idle:
                yield collect()
            worker = idle.popleft()
            worker.send(block)
            busy.append(worker)
        while busy:
            yield collect()
    finally:
        for worker in pool:
            worker.close()


def _first_key(run: LeafRun) -> bytes | None:
    if run.before:
        return run.before[0][0]
    if run.leaves:
        return run.leaves[0][0].first_key
    return run.after[0][0] if run.after else None


def _last_key(run: LeafRun) -> bytes:
    if run.after:
        return run.after[-1][0]
    if run.leaves:
        return run.leaves[-1][1]
    return run.before[-1][0]
