"""The file backup's data path: chunking through one buffer, hashing, and writing packs.

These pin that the faster path gives the same chunks and content ids as the plain one
(pyfastcdc's ``cut_stream`` and the keyed BLAKE3 id of each chunk), so a backup of the same data
names the same blobs as before.
"""

from __future__ import annotations

import io
import os
import random
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blake3
import pytest
from pyfastcdc import FastCDC

from lifeboat.snapshot.chunking import StreamChunker
from lifeboat.snapshot.files import backup_paths
from lifeboat.snapshot.restore import ls
from lifeboat.store import codec
from lifeboat.store.backends import MemoryBackend
from lifeboat.store.config import ChunkerParams
from lifeboat.store.keyfile import TEST_KDF
from lifeboat.store.packs import BLOB_DATA, BLOB_TREE, PackBuilder, build_pack, parse_pack
from lifeboat.store.repository import Repository

MiB = 1 << 20
SMALL_CHUNKS = ChunkerParams(min_size=256, avg_size=1024, max_size=8192)


class Trickle(io.RawIOBase):
    """A stream that returns reads of erratic sizes (1 byte up to all that is asked)."""

    def __init__(self, data: bytes, rng: random.Random) -> None:
        self._data = data
        self._pos = 0
        self._rng = rng

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), len(self._data) - self._pos, self._rng.choice([1, 7, 100, 4096, 1 << 30]))
        buffer[:count] = self._data[self._pos : self._pos + count]
        self._pos += count
        return count


def _sample(rng: random.Random, size: int, kind: str) -> bytes:
    if kind == "zeros":
        return bytes(size)
    if kind == "two-letters":  # low entropy: many cuts forced at the largest size, or none
        return bytes(rng.choice(b"ab") for _ in range(size))
    return rng.randbytes(size)


@pytest.mark.parametrize(
    ("min_size", "avg_size", "max_size"),
    [(64, 256, 1024), (256, 256, 2048), (1024, 4096, 16384)],
)
@pytest.mark.parametrize("seed", [1, 987654321])
def test_stream_chunker_cuts_like_cut_stream(min_size: int, avg_size: int, max_size: int, seed: int) -> None:
    fastcdc = FastCDC(avg_size=avg_size, min_size=min_size, max_size=max_size, seed=seed)
    chunker = StreamChunker(fastcdc)  # one chunker, hence one buffer, for every stream below
    rng = random.Random(seed)
    sizes = [0, 1, min_size, avg_size, max_size, max_size + 1, 2 * max_size, 2 * max_size + 1]
    sizes += [rng.randrange(40 * max_size) for _ in range(12)]
    for size in sizes:
        for kind in ("random", "zeros", "two-letters"):
            data = _sample(rng, size, kind)
            expected = [bytes(chunk.data) for chunk in fastcdc.cut_stream(io.BytesIO(data))]
            got = [bytes(chunk) for chunk in chunker.chunks(Trickle(data, rng).readinto)]
            assert got == expected, (size, kind)


def test_stream_chunker_keeps_one_buffer_for_every_stream() -> None:
    fastcdc = FastCDC(avg_size=256, min_size=64, max_size=1024, seed=5)
    chunker = StreamChunker(fastcdc)
    owners = set()
    for data in (os.urandom(10_000), os.urandom(3_000), os.urandom(50_000)):
        for chunk in chunker.chunks(io.BytesIO(data).readinto):
            owners.add(id(chunk.obj))
    assert len(owners) == 1
    assert chunker.buffer_size < 2 * 1024  # pyfastcdc's cut_stream takes two largest chunks per stream
    default = ChunkerParams()
    big = FastCDC(avg_size=default.avg_size, min_size=default.min_size, max_size=default.max_size, seed=5)
    assert StreamChunker(big).buffer_size == 9 * MiB


def test_pack_builder_copies_each_blob_when_it_is_added() -> None:
    buffer = bytearray(b"first blob")
    builder = PackBuilder()
    assert builder.add(BLOB_DATA, bytes(32), memoryview(buffer)) == 0
    buffer[:] = b"overwritten"  # a chunker reuses its buffer as soon as add() returns
    assert builder.add(BLOB_DATA, bytes([1]) * 32, b"second") == 10
    assert (len(builder), builder.count) == (16, 2)
    pack = builder.finish()
    assert pack == build_pack(
        [(BLOB_DATA, bytes(32), b"first blob"), (BLOB_DATA, bytes([1]) * 32, b"second")]
    )
    assert [(blob.offset, blob.length) for blob in parse_pack(pack)] == [(0, 10), (10, 6)]


def test_pack_builder_refuses_what_build_pack_refuses() -> None:
    builder = PackBuilder()
    builder.add(BLOB_DATA, bytes(32), b"x")
    with pytest.raises(Exception, match="twice"):
        builder.add(BLOB_DATA, bytes(32), b"y")
    with pytest.raises(Exception, match="one type"):
        builder.add(BLOB_TREE, bytes([2]) * 32, b"y")
    with pytest.raises(Exception, match="32 bytes"):
        builder.add(BLOB_DATA, b"short", b"y")


@pytest.fixture
def repo() -> Iterator[Repository]:
    stores = [MemoryBackend(f"mem{i}") for i in range(5)]
    with Repository.init(stores, "pw", k=3, kdf=TEST_KDF, pack_size=MiB, chunker=SMALL_CHUNKS) as repository:
        yield repository


def _tree(root: Path, rng: random.Random) -> dict[str, bytes]:
    contents = {
        "empty": b"",
        "tiny": b"x",
        "largest-chunk": rng.randbytes(SMALL_CHUNKS.max_size),
        "zeros": bytes(5 * SMALL_CHUNKS.max_size + 3),
        "big": rng.randbytes(3 * MiB + 17),  # far more than the chunker's buffer
        "dir/a": rng.randbytes(20_000),
        "dir/b": b"ab" * 9000,
    }
    for name, data in contents.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return contents


def test_backup_names_the_chunks_and_ids_of_plain_chunking(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "src"
    contents = _tree(src, random.Random(7))
    result = backup_paths(repo, [src], hostname="h")
    fastcdc = FastCDC(
        avg_size=SMALL_CHUNKS.avg_size,
        min_size=SMALL_CHUNKS.min_size,
        max_size=SMALL_CHUNKS.max_size,
        seed=repo.chunker_seed,
    )
    nodes = dict(ls(repo, result.manifest))
    for name, data in contents.items():
        node = nodes[f"{src}/{name}"]
        expected = [
            codec.content_id(repo.master_key, bytes(chunk.data))
            for chunk in fastcdc.cut_stream(io.BytesIO(data))
        ]
        assert list(node.content) == expected, name
        assert b"".join(repo.load_blob(blob_id) for blob_id in node.content) == data
    # the same data backed up again without a parent: the same tree, blob for blob. Only the
    # subtree of src is compared: the snapshot also records src's ancestors (/tmp, pytest's
    # base directory), whose mtimes another process may change between the two backups.
    again = backup_paths(repo, [src], hostname="h", parent=None)
    first = {path: node for path, node in nodes.items() if path.startswith(str(src))}
    second = {path: node for path, node in ls(repo, again.manifest) if path.startswith(str(src))}
    assert second == first and len(first) == len(contents) + 2  # files, dir/ and src itself
    # nothing under src is stored again; only the trees of ancestors another process touched may be
    assert again.summary["blobs_new"] <= len(src.parents)


def test_pack_writer_hashes_on_its_own_threads(
    repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Content ids, pack ids and shard checksums of a backup never use BLAKE3's thread pool.

    The pack writer's threads already share the cores; BLAKE3's pool made every hash of a MiB
    or more wait for threads busy with other packs.
    """
    threads: list[int] = []
    real = blake3.blake3

    def recording(*args: Any, **kwargs: Any) -> Any:
        threads.append(kwargs.get("max_threads", 1))
        return real(*args, **kwargs)

    recording.AUTO = real.AUTO  # type: ignore[attr-defined]
    monkeypatch.setattr(blake3, "blake3", recording)
    src = tmp_path / "src"
    src.mkdir()
    (src / "big").write_bytes(os.urandom(3 * MiB))
    backup_paths(repo, [src], hostname="h")
    assert threads  # the recorder saw the hashes
    assert set(threads) == {1}


def test_pack_ids_are_the_content_ids_of_the_packs(repo: Repository, tmp_path: Path) -> None:
    """Packs written blob by blob into the open pack are well-formed and stored under their content id."""
    src = tmp_path / "src"
    _tree(src, random.Random(8))
    backup_paths(repo, [src], hostname="h")
    packs = repo.index.packs
    assert len(packs) >= 3  # several data packs (1 MiB each here) and a tree pack
    for pack_id in packs:
        plaintext = repo.get_object(f"data/{pack_id.hex()[:2]}/{pack_id.hex()}")
        assert codec.content_id(repo.master_key, plaintext) == pack_id
        assert parse_pack(plaintext)  # a well-formed pack, table and trailer included


def test_encoding_never_holds_ciphertext_parity_and_all_shards_at_once() -> None:
    """Parity shards are assembled first and each parity block dropped as it goes."""
    size = 6 * MiB
    original = os.urandom(size)  # incompressible: the ciphertext is as large as the object
    data = bytearray(original)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        shards = codec.encode(bytes(32), bytes(32), data, codec.CodecParams(3, 5), level=1, consume=True)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert codec.decode(bytes(32), [None, None, *shards[2:]], object_id=bytes(32)) == original
    # ciphertext (1) + parity (2/3) + five shards (5/3) = 10/3 of the size before; 8/3 now
    assert peak < 2.8 * size, peak / size
