"""Sealed files: round trips, the documented layout, and every kind of damage refused clearly."""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import stat
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from lifeboat.errors import InputError, SealedFileError, StorageError
from lifeboat.secrets import sealed
from lifeboat.secrets.fingerprint import fingerprint

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

from lifeboat.secrets.sealed import (
    HEADER_BYTES,
    KEY_BYTES,
    SealedHeader,
    generate_key,
    read_header,
    seal_file,
    seal_stream,
    unseal_file,
    unseal_stream,
)

LOG2 = 12
CHUNK = 1 << LOG2
PREFIX = 4
TAG = 16
STORED_CHUNK = PREFIX + CHUNK + TAG

KEY = bytes(range(KEY_BYTES))
OTHER_KEY = bytes(range(1, KEY_BYTES + 1))
#: Three full chunks and a short final one.
PLAIN = hashlib.shake_256(b"lifeboat sealed test data").digest(3 * CHUNK + 1000)


def seal_bytes(data: bytes, key: bytes = KEY, chunk_log2: int = LOG2) -> bytes:
    out = io.BytesIO()
    seal_stream(io.BytesIO(data), out, key, chunk_log2=chunk_log2)
    return out.getvalue()


def unseal_bytes(blob: bytes, key: bytes = KEY) -> bytes:
    out = io.BytesIO()
    unseal_stream(io.BytesIO(blob), out, key)
    return out.getvalue()


def refused(blob: bytes, key: bytes = KEY) -> str:
    """Unseal ``blob``, expect a SealedFileError, return its (single-line) message."""
    with pytest.raises(SealedFileError) as info:
        unseal_bytes(blob, key)
    message = str(info.value)
    assert message
    assert "\n" not in message
    return message


def chunk_at(blob: bytes, index: int) -> bytes:
    start = HEADER_BYTES + index * STORED_CHUNK
    return blob[start : start + STORED_CHUNK]


def chunks_of(blob: bytes) -> list[bytes]:
    """Split a sealed file with full chunks of CHUNK bytes into its stored chunks."""
    body = blob[HEADER_BYTES:]
    return [body[i : i + STORED_CHUNK] for i in range(0, len(body), STORED_CHUNK)]


SEALED = seal_bytes(PLAIN)


# --- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 5 * CHUNK + 7])
def test_round_trip_sizes(size: int) -> None:
    data = os.urandom(size)
    blob = seal_bytes(data)
    chunks = max(1, -(-size // CHUNK))
    assert len(blob) == HEADER_BYTES + chunks * (PREFIX + TAG) + size
    assert unseal_bytes(blob) == data


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=5 * CHUNK), chunk_log2=st.integers(12, 14))
def test_round_trip_property(data: bytes, chunk_log2: int) -> None:
    blob = seal_bytes(data, chunk_log2=chunk_log2)
    assert unseal_bytes(blob) == data
    assert read_header(io.BytesIO(blob)).chunk_size == 1 << chunk_log2


class Trickle(io.RawIOBase):
    """A stream that returns at most ``step`` bytes per read, like a pipe."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = io.BytesIO(data)
        self._step = step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        piece = self._data.read(min(len(buffer), self._step))
        buffer[: len(piece)] = piece
        return len(piece)


class ReadOnly:
    """A minimal reader with ``read`` but no ``readinto``."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, size: int) -> bytes:
        return self._data.read(min(size, 777))


@settings(max_examples=20, deadline=None)
@given(data=st.binary(max_size=3 * CHUNK), step=st.integers(1, 5000))
def test_short_reads(data: bytes, step: int) -> None:
    out = io.BytesIO()
    seal_stream(Trickle(data, step), out, KEY, chunk_log2=LOG2)  # type: ignore[arg-type]
    plain = io.BytesIO()
    unseal_stream(Trickle(out.getvalue(), step), plain, KEY)  # type: ignore[arg-type]
    assert plain.getvalue() == data


def test_reader_without_readinto() -> None:
    out = io.BytesIO()
    seal_stream(ReadOnly(PLAIN), out, KEY, chunk_log2=LOG2)  # type: ignore[arg-type]
    plain = io.BytesIO()
    unseal_stream(ReadOnly(out.getvalue()), plain, KEY)  # type: ignore[arg-type]
    assert plain.getvalue() == PLAIN


def test_default_chunk_size_round_trip() -> None:
    data = os.urandom((1 << 20) + 5)
    out = io.BytesIO()
    header = seal_stream(io.BytesIO(data), out, KEY)
    assert header.chunk_size == 1 << sealed.DEFAULT_CHUNK_LOG2
    assert unseal_bytes(out.getvalue()) == data


def test_each_seal_is_fresh() -> None:
    first, second = seal_bytes(PLAIN), seal_bytes(PLAIN)
    assert first != second
    assert read_header(io.BytesIO(first)).salt != read_header(io.BytesIO(second)).salt


def test_progress_reports_plaintext_bytes() -> None:
    sealed_calls: list[int] = []
    out = io.BytesIO()
    seal_stream(io.BytesIO(PLAIN), out, KEY, chunk_log2=LOG2, progress=sealed_calls.append)
    assert sealed_calls == [CHUNK, CHUNK, CHUNK, 1000]
    unsealed_calls: list[int] = []
    unseal_stream(io.BytesIO(out.getvalue()), io.BytesIO(), KEY, progress=unsealed_calls.append)
    assert unsealed_calls == sealed_calls


def test_generate_key() -> None:
    keys = {generate_key() for _ in range(8)}
    assert len(keys) == 8
    assert all(len(key) == KEY_BYTES for key in keys)


# --- header and layout ------------------------------------------------------------------------


def test_header_fields_and_read_header() -> None:
    source = io.BytesIO(SEALED)
    header = read_header(source)
    assert source.tell() == HEADER_BYTES
    assert header.version == 1
    assert header.algorithm == 1
    assert header.chunk_size == CHUNK
    assert header.chunk_log2 == LOG2
    assert len(header.salt) == 32
    assert header.key_fingerprint == fingerprint(KEY)
    assert SealedHeader.decode(header.encode()) == header
    assert SEALED[: HEADER_BYTES - 16] == header.encode()


def test_seal_returns_the_header_it_wrote() -> None:
    out = io.BytesIO()
    header = seal_stream(io.BytesIO(b"x"), out, KEY, chunk_log2=13)
    assert read_header(io.BytesIO(out.getvalue())) == header
    assert unseal_stream(io.BytesIO(out.getvalue()), io.BytesIO(), KEY) == header


def test_layout_matches_documentation() -> None:
    """Decrypt with an independent reading of docs/formats.md ("Sealed files")."""
    blob = SEALED
    assert blob[:7] == b"LBXSEAL"
    assert blob[7:10] == bytes([1, 1, LOG2])
    salt, key_fingerprint, header_tag = blob[10:42], blob[42:58], blob[58:74]
    assert key_fingerprint == fingerprint(KEY)
    header_key = HKDF(hashes.SHA256(), 32, salt, b"lifeboat sealed v1 header").derive(KEY)
    assert header_tag == hmac.new(header_key, blob[:58], "sha256").digest()[:16]
    payload_key = HKDF(hashes.SHA256(), 32, salt, b"lifeboat sealed v1 payload").derive(KEY)
    aead = AESGCM(payload_key)
    position, counter, plain = 74, 0, b""
    while True:
        word = int.from_bytes(blob[position : position + 4], "big")
        final, length = bool(word >> 31), word & 0x7FFF_FFFF
        body = blob[position + 4 : position + 4 + length + 16]
        nonce = counter.to_bytes(11, "big") + bytes([final])
        plain += aead.decrypt(nonce, body, blob[:74] + blob[position : position + 4])
        position += 4 + length + 16
        counter += 1
        if final:
            break
    assert position == len(blob)
    assert counter == 4
    assert plain == PLAIN


def test_header_rejects_bad_fields() -> None:
    good = read_header(io.BytesIO(SEALED))
    for size in (0, -4096, 3000, 1 << 11):
        with pytest.raises(InputError):
            SealedHeader(1, 1, size, good.salt, good.key_fingerprint)
    with pytest.raises(InputError):
        SealedHeader(1, 1, 1 << 25, good.salt, good.key_fingerprint)
    with pytest.raises(InputError):
        SealedHeader(1, 1, CHUNK, b"short", good.key_fingerprint)
    with pytest.raises(InputError):
        SealedHeader(2, 1, CHUNK, good.salt, good.key_fingerprint)


# --- damage and tampering ---------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(bit=st.integers(0, len(SEALED) * 8 - 1))
def test_any_bit_flip_is_detected(bit: int) -> None:
    damaged = bytearray(SEALED)
    damaged[bit // 8] ^= 1 << (bit % 8)
    refused(bytes(damaged))


def test_every_bit_flip_and_truncation_of_a_small_file() -> None:
    blob = seal_bytes(b"a short secret, one chunk")
    for bit in range(len(blob) * 8):
        damaged = bytearray(blob)
        damaged[bit // 8] ^= 1 << (bit % 8)
        refused(bytes(damaged))
    for length in range(len(blob)):
        refused(blob[:length])


@settings(max_examples=300, deadline=None)
@given(length=st.integers(0, len(SEALED) - 1))
def test_any_truncation_is_detected(length: int) -> None:
    refused(SEALED[:length])


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        (0, "it is empty"),
        (3, "truncated header"),
        (HEADER_BYTES - 1, "truncated header"),
        (HEADER_BYTES, "ends right after its header"),
        (HEADER_BYTES + 2, "inside the prefix of chunk 0"),
        (HEADER_BYTES + 100, "inside chunk 0"),
        (HEADER_BYTES + 3 * STORED_CHUNK, "after chunk 2; its final chunk is missing"),
        (len(SEALED) - 1, "inside chunk 3"),
    ],
)
def test_truncation_messages(length: int, expected: str) -> None:
    assert expected in refused(SEALED[:length])


def test_dropped_final_chunk() -> None:
    blob = SEALED[: HEADER_BYTES + 3 * STORED_CHUNK]
    assert "final chunk is missing" in refused(blob)


def test_dropped_final_chunk_of_exact_multiple() -> None:
    blob = seal_bytes(PLAIN[: 3 * CHUNK])
    assert "final chunk is missing" in refused(blob[: HEADER_BYTES + 2 * STORED_CHUNK])


def test_dropped_middle_chunk() -> None:
    parts = chunks_of(SEALED)
    blob = SEALED[:HEADER_BYTES] + b"".join(parts[:1] + parts[2:])
    assert "chunk 1 is out of place: it is chunk 2" in refused(blob)


def test_swapped_chunks() -> None:
    parts = chunks_of(SEALED)
    parts[0], parts[1] = parts[1], parts[0]
    message = refused(SEALED[:HEADER_BYTES] + b"".join(parts))
    assert "chunk 0 is out of place: it is chunk 1" in message
    assert "reordered" in message


def test_final_chunk_moved_forward() -> None:
    parts = chunks_of(SEALED)
    parts[2], parts[3] = parts[3], parts[2]
    assert "chunk 2 is out of place: it is chunk 3" in refused(SEALED[:HEADER_BYTES] + b"".join(parts))


def test_duplicated_chunk() -> None:
    parts = chunks_of(SEALED)
    blob = SEALED[:HEADER_BYTES] + b"".join([*parts[:2], parts[1], *parts[2:]])
    assert "chunk 2 is out of place: it is chunk 1" in refused(blob)


def test_chunk_from_another_file_with_the_same_key() -> None:
    other = seal_bytes(PLAIN)
    blob = (
        SEALED[: HEADER_BYTES + STORED_CHUNK] + chunk_at(other, 1) + SEALED[HEADER_BYTES + 2 * STORED_CHUNK :]
    )
    assert "chunk 1 (at byte" in refused(blob)
    assert "failed authentication" in refused(blob)


@settings(max_examples=50, deadline=None)
@given(garbage=st.binary(min_size=1, max_size=2 * STORED_CHUNK + 10))
def test_trailing_garbage(garbage: bytes) -> None:
    message = refused(SEALED + garbage)
    assert f"{len(garbage)} unexpected bytes follow the final chunk" in message


def test_trailing_garbage_after_full_final_chunk() -> None:
    blob = seal_bytes(PLAIN[: 2 * CHUNK])
    assert "1 unexpected bytes follow the final chunk (chunk 1)" in refused(blob + b"\x00")


def test_non_final_chunk_with_wrong_length() -> None:
    damaged = bytearray(SEALED)
    damaged[HEADER_BYTES : HEADER_BYTES + 4] = (CHUNK - 1).to_bytes(4, "big")
    assert "chunk 0 is damaged" in refused(bytes(damaged))


def edit(offset: int, value: bytes) -> bytes:
    return SEALED[:offset] + value + SEALED[offset + len(value) :]


@pytest.mark.parametrize(
    ("offset", "value", "expected"),
    [
        (0, b"LBXSEAX", "not a Lifeboat sealed file"),
        (0, b"PK\x03\x04", "not a Lifeboat sealed file"),
        (7, b"\x02", "newer Lifeboat (format version 2"),
        (7, b"\x00", "format version 0 was never used"),
        (8, b"\x02", "unknown algorithm 2"),
        (9, b"\x1e", "chunk size 2^30 bytes is outside"),
        (9, b"\x0b", "chunk size 2^11 bytes is outside"),
        (9, b"\x0d", "header was tampered with"),
        (10, b"\x00" * 32, "header was tampered with"),
        (42, b"\x00" * 16, "key fingerprint field was changed (the key is right)"),
        (58, b"\x00" * 16, "header was tampered with"),
    ],
)
def test_header_edits(offset: int, value: bytes, expected: str) -> None:
    assert expected in refused(edit(offset, value))


def test_not_a_sealed_file() -> None:
    assert "not a Lifeboat sealed file" in refused(b"just some text, not sealed at all " * 10)


def test_wrong_key() -> None:
    message = refused(SEALED, OTHER_KEY)
    assert message.startswith("wrong key")
    assert "does not belong to this file" in message
    assert OTHER_KEY.hex() not in message
    assert KEY.hex() not in message


def test_newer_version_refused_before_anything_else() -> None:
    future = b"LBXSEAL\x07" + b"\xff" * 10
    assert "newer Lifeboat (format version 7" in refused(future)


def test_read_header_reports_damage() -> None:
    with pytest.raises(SealedFileError, match="not a Lifeboat sealed file"):
        read_header(io.BytesIO(b"hello"))
    with pytest.raises(SealedFileError, match="truncated header"):
        read_header(io.BytesIO(SEALED[:60]))


def test_too_many_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sealed, "MAX_CHUNKS", 3)
    with pytest.raises(InputError, match="too large"):
        seal_bytes(PLAIN)
    assert "more than 3 chunks" in refused(SEALED)


# --- argument checks --------------------------------------------------------------------------


@pytest.mark.parametrize("key", [b"", b"\x00" * 16, b"\x00" * 31, b"\x00" * 33])
def test_key_length(key: bytes) -> None:
    with pytest.raises(InputError, match="32 bytes"):
        seal_bytes(b"data", key)
    with pytest.raises(InputError, match="32 bytes"):
        unseal_bytes(SEALED, key)


def test_key_type() -> None:
    with pytest.raises(InputError, match="must be bytes"):
        seal_bytes(b"data", "k" * 32)  # type: ignore[arg-type]


def test_bytearray_key_accepted() -> None:
    assert unseal_bytes(seal_bytes(b"abc", bytearray(KEY)), bytearray(KEY)) == b"abc"  # type: ignore[arg-type]


@pytest.mark.parametrize("chunk_log2", [11, 25, 0, -1])
def test_chunk_log2_range(chunk_log2: int) -> None:
    with pytest.raises(InputError, match="chunk_log2"):
        seal_bytes(b"data", chunk_log2=chunk_log2)


# --- files ------------------------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("size", [0, 1, CHUNK, 3 * CHUNK + 5])
def test_file_round_trip(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    plain = tmp_path / "secret.bin"
    plain.write_bytes(data)
    box = tmp_path / ("secret.bin" + sealed.SEALED_SUFFIX)
    header = seal_file(plain, box, KEY, chunk_log2=LOG2)
    assert header.key_fingerprint == fingerprint(KEY)
    assert mode(box) == 0o600
    opened = tmp_path / "opened.bin"
    assert unseal_file(box, opened, KEY) == header
    assert opened.read_bytes() == data
    assert mode(opened) == 0o600


def test_file_overwrite(tmp_path: Path) -> None:
    plain = tmp_path / "a"
    plain.write_bytes(b"first")
    box = tmp_path / "a.lbx"
    seal_file(plain, box, KEY)
    with pytest.raises(StorageError, match="already exists"):
        seal_file(plain, box, KEY)
    seal_file(plain, box, KEY, overwrite=True)
    out = tmp_path / "b"
    out.write_bytes(b"old")
    with pytest.raises(StorageError, match="already exists"):
        unseal_file(box, out, KEY)
    unseal_file(box, out, KEY, overwrite=True)
    assert out.read_bytes() == b"first"


def test_failed_unseal_leaves_no_output(tmp_path: Path) -> None:
    box = tmp_path / "x.lbx"
    damaged = bytearray(SEALED)
    damaged[-5] ^= 0x40  # the final chunk: earlier chunks are written before this fails
    box.write_bytes(bytes(damaged))
    out = tmp_path / "out.bin"
    with pytest.raises(SealedFileError) as info:
        unseal_file(box, out, KEY)
    assert str(info.value).startswith(f"{box}: chunk 3")
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.lbx"]


def test_failed_unseal_keeps_existing_output(tmp_path: Path) -> None:
    box = tmp_path / "x.lbx"
    box.write_bytes(SEALED[:-1])
    out = tmp_path / "out.bin"
    out.write_bytes(b"keep me")
    with pytest.raises(SealedFileError, match="truncated"):
        unseal_file(box, out, KEY, overwrite=True)
    assert out.read_bytes() == b"keep me"


def test_wrong_key_file_names_the_file(tmp_path: Path) -> None:
    box = tmp_path / "x.lbx"
    box.write_bytes(SEALED)
    with pytest.raises(SealedFileError, match=r"x\.lbx: wrong key"):
        unseal_file(box, tmp_path / "out", OTHER_KEY)
    assert not (tmp_path / "out").exists()


def test_missing_input(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        seal_file(tmp_path / "nope", tmp_path / "nope.lbx", KEY)
    with pytest.raises(StorageError, match="does not exist"):
        unseal_file(tmp_path / "nope.lbx", tmp_path / "nope", KEY)


def test_directory_as_input(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="is a directory"):
        seal_file(tmp_path, tmp_path / "dir.lbx", KEY)
    with pytest.raises(StorageError, match="is a directory"):
        unseal_file(tmp_path, tmp_path / "dir", KEY)


def test_directory_as_output(tmp_path: Path) -> None:
    plain = tmp_path / "a"
    plain.write_bytes(b"x")
    with pytest.raises(StorageError, match="is a directory"):
        seal_file(plain, tmp_path, KEY, overwrite=True)


def test_missing_output_directory(tmp_path: Path) -> None:
    plain = tmp_path / "a"
    plain.write_bytes(b"x")
    with pytest.raises(StorageError, match="does not exist"):
        seal_file(plain, tmp_path / "missing" / "a.lbx", KEY)


def test_unwritable_output_directory_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = tmp_path / "a"
    plain.write_bytes(b"x")

    def refuse(*args: object, **kwargs: object) -> tuple[int, str]:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(StorageError, match="cannot write in .*Permission denied"):
        seal_file(plain, tmp_path / "a.lbx", KEY)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_unwritable_output_directory(tmp_path: Path) -> None:
    """A directory nobody may create files in; as root, chmod does not stop us, so use /sys."""
    plain = tmp_path / "a"
    plain.write_bytes(b"x")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    target = Path("/sys") if os.geteuid() == 0 else locked
    try:
        with pytest.raises(StorageError, match="cannot write"):
            seal_file(plain, target / "a.lbx", KEY)
    finally:
        locked.chmod(0o700)
    assert not (target / "a.lbx").exists()


class FailingWriter(io.BytesIO):
    def __init__(self, fail_after: int) -> None:
        super().__init__()
        self._left = fail_after

    def write(self, data: ReadableBuffer, /) -> int:
        self._left -= 1
        if self._left < 0:
            raise OSError(28, "No space left on device")
        return super().write(data)


def test_write_error_is_a_storage_error() -> None:
    with pytest.raises(StorageError, match="No space left"):
        seal_stream(io.BytesIO(PLAIN), FailingWriter(2), KEY, chunk_log2=LOG2)
    with pytest.raises(StorageError, match="No space left"):
        unseal_stream(io.BytesIO(SEALED), FailingWriter(1), KEY)


# --- memory -----------------------------------------------------------------------------------


def test_memory_stays_flat(tmp_path: Path) -> None:
    """Seal and unseal 64 MiB with the default 1 MiB chunks: peak traced memory stays ~2 MiB."""
    size = 64 << 20
    plain = tmp_path / "big.bin"
    with plain.open("wb") as handle:
        for _ in range(size >> 20):
            handle.write(os.urandom(1 << 20))
    box, opened = tmp_path / "big.lbx", tmp_path / "big.out"
    started = time.perf_counter()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        seal_file(plain, box, KEY)
        _, seal_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        unseal_file(box, opened, KEY)
        _, unseal_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.perf_counter() - started
    limit = 3 << 20
    assert seal_peak < limit, f"seal peaked at {seal_peak} bytes"
    assert unseal_peak < limit, f"unseal peaked at {unseal_peak} bytes"
    assert opened.stat().st_size == size
    with plain.open("rb") as a, opened.open("rb") as b:
        while block := a.read(1 << 20):
            assert block == b.read(1 << 20)
    assert elapsed < 30
