"""Sealed files (``.lbx``): any file encrypted with a fresh 256-bit key, streamed in chunks.

The layout is described byte by byte in ``docs/formats.md`` ("Sealed files"). In short::

    header  (74 bytes)  magic "LBXSEAL" | version 1 | algorithm 1 | log2(chunk size)
                        | 32-byte salt | 16-byte key fingerprint | 16-byte header tag
    chunk 0, chunk 1, ..., final chunk
    chunk               4-byte prefix (bit 31: final flag, bits 0..30: plaintext length)
                        | ciphertext (same length as the plaintext) | 16-byte GCM tag

Two keys are derived from the file key with HKDF-SHA256 and the header's salt: a payload key
for AES-256-GCM and a header key for the header tag (HMAC-SHA256, truncated to 16 bytes).
Chunk ``i`` is encrypted under the nonce ``i`` (11 bytes, big-endian) followed by one byte
that is 1 for the final chunk and 0 otherwise (the STREAM construction), with the whole
header and the chunk's own prefix as associated data. Every byte of the file is therefore
authenticated, and a sealed file that was truncated, extended, reordered, spliced or edited
is refused with a message that says which of these it looks like.

The key fingerprint in the header is :func:`lifeboat.secrets.fingerprint.fingerprint` of the
file key, the same value recorded on the SLIP-39 shares made from that key, so a wrong key is
reported as a wrong key and not as tampering.

Memory use is flat: one plaintext chunk and one ciphertext chunk are held at a time, in
buffers allocated once per call, whatever the size of the file.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from lifeboat.errors import InputError, SealedFileError, StorageError, exact_bytes
from lifeboat.fs import SECRET_MODE, atomic_writer, open_for_reading
from lifeboat.secrets.fingerprint import FINGERPRINT_BYTES, fingerprint, format_fingerprint

__all__ = [
    "ALGORITHM_AES_256_GCM",
    "DEFAULT_CHUNK_LOG2",
    "FORMAT_VERSION",
    "HEADER_BYTES",
    "KEY_BYTES",
    "MAGIC",
    "MAX_CHUNK_LOG2",
    "MIN_CHUNK_LOG2",
    "SEALED_SUFFIX",
    "SealedHeader",
    "generate_key",
    "read_header",
    "seal_file",
    "seal_stream",
    "unseal_file",
    "unseal_stream",
]

SEALED_SUFFIX = ".lbx"
KEY_BYTES = 32
DEFAULT_CHUNK_LOG2 = 20
MIN_CHUNK_LOG2 = 12
MAX_CHUNK_LOG2 = 24

MAGIC = b"LBXSEAL"
FORMAT_VERSION = 1
ALGORITHM_AES_256_GCM = 1
SALT_BYTES = 32
HEADER_TAG_BYTES = 16
#: Bytes of the header covered by the header tag: everything before the tag.
HEADER_FIELDS_BYTES = len(MAGIC) + 3 + SALT_BYTES + FINGERPRINT_BYTES
#: Size of the whole header on disk (fields + header tag).
HEADER_BYTES = HEADER_FIELDS_BYTES + HEADER_TAG_BYTES

CHUNK_PREFIX_BYTES = 4
CHUNK_TAG_BYTES = 16
FINAL_FLAG = 0x8000_0000
LENGTH_MASK = 0x7FFF_FFFF
COUNTER_BYTES = 11
#: A file may hold at most this many chunks (counters 0 .. MAX_CHUNKS - 1).
MAX_CHUNKS = 1 << 40

PAYLOAD_INFO = b"lifeboat sealed v1 payload"
HEADER_INFO = b"lifeboat sealed v1 header"

#: On a chunk that fails authentication, counters this far either side are tried to tell a
#: chunk that is out of place (reordered, duplicated, a neighbour removed) from altered bytes.
_DIAGNOSE_WINDOW = 32
_OFFSET_VERSION = len(MAGIC)

Progress = Callable[[int], None]


@dataclass(frozen=True)
class SealedHeader:
    """The public fields of a sealed file's header.

    ``encode`` gives the 58 header-field bytes; on disk they are followed by a 16-byte header
    tag that only the key holder can compute (see :func:`seal_stream`).
    """

    version: int
    algorithm: int
    chunk_size: int
    salt: bytes
    key_fingerprint: bytes

    def __post_init__(self) -> None:
        if self.version != FORMAT_VERSION:
            raise InputError(f"sealed-file format version must be {FORMAT_VERSION}")
        if self.algorithm != ALGORITHM_AES_256_GCM:
            raise InputError(f"sealed-file algorithm must be {ALGORITHM_AES_256_GCM}")
        size = self.chunk_size
        if size <= 0 or size & (size - 1) or not MIN_CHUNK_LOG2 <= self.chunk_log2 <= MAX_CHUNK_LOG2:
            raise InputError(
                f"chunk size must be a power of two from 2^{MIN_CHUNK_LOG2} "
                f"to 2^{MAX_CHUNK_LOG2} bytes, got {self.chunk_size}"
            )
        if len(self.salt) != SALT_BYTES:
            raise InputError(f"salt must be {SALT_BYTES} bytes, got {len(self.salt)}")
        if len(self.key_fingerprint) != FINGERPRINT_BYTES:
            raise InputError(
                f"key fingerprint must be {FINGERPRINT_BYTES} bytes, got {len(self.key_fingerprint)}"
            )

    @property
    def chunk_log2(self) -> int:
        """The chunk size as a power of two (12..24)."""
        return self.chunk_size.bit_length() - 1

    def encode(self) -> bytes:
        """Return the 58 header-field bytes (everything in the header before its tag)."""
        return b"".join(
            (
                MAGIC,
                bytes((self.version, self.algorithm, self.chunk_log2)),
                self.salt,
                self.key_fingerprint,
            )
        )

    @classmethod
    def decode(cls, data: bytes) -> SealedHeader:
        """Parse header-field bytes as written by :meth:`encode`.

        The checks run in file order, so the message names the first thing that is wrong: not
        a sealed file at all, a newer format version, a truncated header, an unknown algorithm,
        a chunk size out of range. Raises :class:`SealedFileError`.
        """
        data = bytes(data)
        if not data:
            raise SealedFileError("not a Lifeboat sealed file: it is empty")
        head = data[: len(MAGIC)]
        if head != MAGIC[: len(head)]:
            raise SealedFileError("not a Lifeboat sealed file: its first bytes are not LBXSEAL")
        if len(data) > _OFFSET_VERSION:
            version = data[_OFFSET_VERSION]
            if version > FORMAT_VERSION:
                raise SealedFileError(
                    f"sealed with a newer Lifeboat (format version {version}, this Lifeboat "
                    f"reads version {FORMAT_VERSION}); upgrade Lifeboat to open it"
                )
            if version != FORMAT_VERSION:
                raise SealedFileError(f"header is damaged: format version {version} was never used")
        if len(data) < HEADER_FIELDS_BYTES:
            raise SealedFileError(
                f"truncated header: the file holds {len(data)} of its {HEADER_BYTES} header bytes"
            )
        if len(data) > HEADER_FIELDS_BYTES:
            raise InputError(f"header fields are {HEADER_FIELDS_BYTES} bytes, got {len(data)}")
        algorithm = data[_OFFSET_VERSION + 1]
        if algorithm != ALGORITHM_AES_256_GCM:
            raise SealedFileError(
                f"header names unknown algorithm {algorithm} (this Lifeboat knows only "
                f"{ALGORITHM_AES_256_GCM} = AES-256-GCM); the header is damaged or the file "
                "was made by a newer Lifeboat"
            )
        log2 = data[_OFFSET_VERSION + 2]
        if not MIN_CHUNK_LOG2 <= log2 <= MAX_CHUNK_LOG2:
            raise SealedFileError(
                f"header is damaged: chunk size 2^{log2} bytes is outside the allowed "
                f"2^{MIN_CHUNK_LOG2}..2^{MAX_CHUNK_LOG2}"
            )
        start = _OFFSET_VERSION + 3
        salt = data[start : start + SALT_BYTES]
        key_fingerprint = data[start + SALT_BYTES : start + SALT_BYTES + FINGERPRINT_BYTES]
        return cls(FORMAT_VERSION, algorithm, 1 << log2, salt, key_fingerprint)


def generate_key() -> bytes:
    """Return a fresh random 256-bit key for sealing one file."""
    return secrets.token_bytes(KEY_BYTES)


def read_header(src: BinaryIO) -> SealedHeader:
    """Read and parse the header at the current position of ``src``.

    Consumes the whole header (including its tag, which cannot be checked without the key), so
    ``src`` is left at the first chunk. Raises :class:`SealedFileError` if ``src`` is not a
    sealed file, was made by a newer Lifeboat, or its header is truncated or damaged.
    """
    header, _ = _read_header_bytes(src, "the input")
    return header


def seal_stream(
    src: BinaryIO,
    dst: BinaryIO,
    key: bytes,
    *,
    chunk_log2: int = DEFAULT_CHUNK_LOG2,
    progress: Progress | None = None,
) -> SealedHeader:
    """Encrypt everything readable from ``src`` with ``key`` and write the sealed file to ``dst``.

    ``key`` must be :data:`KEY_BYTES` long (use :func:`generate_key`); ``chunk_log2`` sets the
    chunk size (``2**chunk_log2`` bytes, 12..24). ``progress`` is called once per chunk with
    the number of plaintext bytes just sealed. Returns the header that was written.
    Raises :class:`InputError` for a bad key or chunk size and :class:`StorageError` if a
    stream cannot be read or written.
    """
    return _seal(src, dst, key, chunk_log2, progress, "the input", "the output")


def unseal_stream(
    src: BinaryIO,
    dst: BinaryIO,
    key: bytes,
    *,
    progress: Progress | None = None,
) -> SealedHeader:
    """Decrypt the sealed file readable from ``src`` with ``key`` and write the plaintext to ``dst``.

    ``progress`` is called once per chunk with the number of plaintext bytes just written.
    Every chunk is authenticated before its plaintext is written, but the plaintext of earlier
    chunks has been written to ``dst`` by the time a later chunk is found damaged, so write to
    a place that is discarded on error (:func:`unseal_file` does). Raises
    :class:`SealedFileError` for a wrong key or a damaged, truncated or extended file,
    :class:`InputError` for a key of the wrong length and :class:`StorageError` if a stream
    cannot be read or written. Returns the file's header.
    """
    key = _check_key(key)
    header, header_bytes, aead = _open_sealed(src, key, "the input")
    _unseal_chunks(src, dst, header, header_bytes, aead, progress, "the input", "the output")
    return header


def seal_file(
    src: Path,
    dst: Path,
    key: bytes,
    *,
    overwrite: bool = False,
    chunk_log2: int = DEFAULT_CHUNK_LOG2,
    progress: Progress | None = None,
) -> SealedHeader:
    """Seal the file ``src`` into ``dst`` (conventionally ``src`` + :data:`SEALED_SUFFIX`).

    ``dst`` is written atomically with mode 0600: it appears complete or not at all. An
    existing ``dst`` is replaced only with ``overwrite=True``. See :func:`seal_stream` for the
    other arguments. Raises :class:`StorageError` for a missing or unreadable ``src``, a
    directory, or an output that cannot be written.
    """
    src, dst = Path(src), Path(dst)
    key = _check_key(key)
    _check_chunk_log2(chunk_log2)
    _check_output(dst)
    with (
        open_for_reading(src, "file to seal") as source,
        atomic_writer(dst, mode=SECRET_MODE, overwrite=overwrite) as sink,
    ):
        return _seal(source, sink, key, chunk_log2, progress, str(src), str(dst))


def unseal_file(
    src: Path,
    dst: Path,
    key: bytes,
    *,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> SealedHeader:
    """Unseal the sealed file ``src`` into ``dst``, written atomically with mode 0600.

    The header and key are checked before anything is written; if any chunk turns out to be
    damaged, the partial output is deleted and ``dst`` never appears. An existing ``dst`` is
    replaced only with ``overwrite=True``. Errors are as for :func:`unseal_stream`, with the
    message prefixed by ``src``.
    """
    src, dst = Path(src), Path(dst)
    key = _check_key(key)
    _check_output(dst)
    try:
        with open_for_reading(src, "sealed file") as source:
            header, header_bytes, aead = _open_sealed(source, key, str(src))
            with atomic_writer(dst, mode=SECRET_MODE, overwrite=overwrite) as sink:
                _unseal_chunks(source, sink, header, header_bytes, aead, progress, str(src), str(dst))
    except SealedFileError as exc:
        raise SealedFileError(f"{src}: {exc}") from exc
    return header


# --- implementation -------------------------------------------------------------------------


def _check_key(key: bytes) -> bytes:
    return exact_bytes(key, KEY_BYTES, "a sealed-file key")


def _check_chunk_log2(chunk_log2: int) -> None:
    if (
        isinstance(chunk_log2, bool)
        or not isinstance(chunk_log2, int)
        or not MIN_CHUNK_LOG2 <= chunk_log2 <= MAX_CHUNK_LOG2
    ):
        raise InputError(
            f"chunk_log2 must be an integer from {MIN_CHUNK_LOG2} to {MAX_CHUNK_LOG2}, got {chunk_log2!r}"
        )


def _check_output(dst: Path) -> None:
    if dst.is_dir():
        raise StorageError(f"{dst} is a directory; give the path of a file to write")


def _derive_keys(key: bytes, salt: bytes) -> tuple[bytes, bytes]:
    """Return (payload key, header key) for ``key`` and the header's ``salt``."""
    payload = HKDF(hashes.SHA256(), KEY_BYTES, salt, PAYLOAD_INFO).derive(key)
    header = HKDF(hashes.SHA256(), KEY_BYTES, salt, HEADER_INFO).derive(key)
    return payload, header


def _header_tag(header_key: bytes, fields: bytes) -> bytes:
    return hmac.new(header_key, fields, "sha256").digest()[:HEADER_TAG_BYTES]


def _nonce(counter: int, final: bool) -> bytes:
    return counter.to_bytes(COUNTER_BYTES, "big") + (b"\x01" if final else b"\x00")


def _read_into(src: BinaryIO, view: memoryview, name: str) -> int:
    """Fill ``view`` from ``src``; return how many bytes were read (fewer only at end of file)."""
    readinto: Callable[[memoryview], int | None] | None = getattr(src, "readinto", None)
    total = 0
    size = len(view)
    try:
        while total < size:
            if readinto is not None:
                got = readinto(view[total:])
                if got is None:
                    raise StorageError(f"cannot read {name}: the stream has no data ready")
            else:
                data = src.read(size - total)
                got = len(data)
                view[total : total + got] = data
            if got == 0:
                break
            total += got
    except OSError as exc:
        raise StorageError(f"cannot read {name}: {exc.strerror or exc}") from exc
    return total


def _write_all(dst: BinaryIO, view: memoryview, name: str) -> None:
    try:
        while view:
            written: Any = dst.write(view)
            if written is None or written >= len(view):
                return
            view = view[written:]
    except OSError as exc:
        raise StorageError(f"cannot write {name}: {exc.strerror or exc}") from exc


def _seal(
    src: BinaryIO,
    dst: BinaryIO,
    key: bytes,
    chunk_log2: int,
    progress: Progress | None,
    src_name: str,
    dst_name: str,
) -> SealedHeader:
    key = _check_key(key)
    _check_chunk_log2(chunk_log2)
    chunk_size = 1 << chunk_log2
    salt = secrets.token_bytes(SALT_BYTES)
    header = SealedHeader(FORMAT_VERSION, ALGORITHM_AES_256_GCM, chunk_size, salt, fingerprint(key))
    payload_key, header_key = _derive_keys(key, salt)
    fields = header.encode()
    header_bytes = fields + _header_tag(header_key, fields)
    aead = AESGCM(payload_key)
    _write_all(dst, memoryview(header_bytes), dst_name)

    # One plaintext buffer and one output buffer (prefix | ciphertext | tag), reused for every
    # chunk. Whether a full chunk is the final one is learnt by reading one byte ahead, which
    # then becomes the first byte of the next chunk.
    plain = bytearray(chunk_size)
    plain_view = memoryview(plain)
    out_view = memoryview(bytearray(CHUNK_PREFIX_BYTES + chunk_size + CHUNK_TAG_BYTES))
    ahead = bytearray(1)
    ahead_view = memoryview(ahead)

    length = _read_into(src, plain_view, src_name)
    counter = 0
    while True:
        final = length < chunk_size or _read_into(src, ahead_view, src_name) == 0
        if counter >= MAX_CHUNKS:
            raise InputError(f"input is too large: more than {MAX_CHUNKS} chunks; use a larger chunk size")
        prefix = (length | (FINAL_FLAG if final else 0)).to_bytes(CHUNK_PREFIX_BYTES, "big")
        out_view[:CHUNK_PREFIX_BYTES] = prefix
        end = CHUNK_PREFIX_BYTES + length + CHUNK_TAG_BYTES
        aead.encrypt_into(
            _nonce(counter, final),
            plain_view[:length],
            header_bytes + prefix,
            out_view[CHUNK_PREFIX_BYTES:end],
        )
        _write_all(dst, out_view[:end], dst_name)
        if progress is not None:
            progress(length)
        if final:
            return header
        counter += 1
        plain[0] = ahead[0]
        length = 1 + _read_into(src, plain_view[1:], src_name)


def _read_header_bytes(src: BinaryIO, name: str) -> tuple[SealedHeader, bytes]:
    buffer = bytearray(HEADER_BYTES)
    got = _read_into(src, memoryview(buffer), name)
    data = bytes(buffer[:got])
    header = SealedHeader.decode(data[:HEADER_FIELDS_BYTES])
    if got < HEADER_BYTES:
        raise SealedFileError(f"truncated header: the file holds {got} of its {HEADER_BYTES} header bytes")
    return header, data


def _open_sealed(src: BinaryIO, key: bytes, name: str) -> tuple[SealedHeader, bytes, AESGCM]:
    """Read the header, check that ``key`` belongs to it and that it is intact."""
    header, header_bytes = _read_header_bytes(src, name)
    fields = header_bytes[:HEADER_FIELDS_BYTES]
    stored_tag = header_bytes[HEADER_FIELDS_BYTES:]
    payload_key, header_key = _derive_keys(key, header.salt)
    key_fingerprint = fingerprint(key)
    if not hmac.compare_digest(key_fingerprint, header.key_fingerprint):
        # Either the key is wrong, or the key is right and the fingerprint field was edited:
        # in the second case the tag matches the header with the key's own fingerprint.
        genuine = fields[:-FINGERPRINT_BYTES] + key_fingerprint
        if hmac.compare_digest(_header_tag(header_key, genuine), stored_tag):
            raise SealedFileError(
                "header was tampered with: its key fingerprint field was changed (the key is right)"
            )
        raise SealedFileError(
            f"wrong key: this key (fingerprint {format_fingerprint(key_fingerprint)}) does not "
            f"belong to this file (made with {format_fingerprint(header.key_fingerprint)})"
        )
    if not hmac.compare_digest(_header_tag(header_key, fields), stored_tag):
        raise SealedFileError("header was tampered with: its tag does not match its salt and chunk size")
    return header, header_bytes, AESGCM(payload_key)


def _unseal_chunks(
    src: BinaryIO,
    dst: BinaryIO,
    header: SealedHeader,
    header_bytes: bytes,
    aead: AESGCM,
    progress: Progress | None,
    src_name: str,
    dst_name: str,
) -> None:
    chunk_size = header.chunk_size
    # ``buffer`` holds one chunk as stored (prefix | ciphertext | tag), ``plain_view`` its
    # plaintext; both are reused for every chunk.
    buffer = bytearray(CHUNK_PREFIX_BYTES + chunk_size + CHUNK_TAG_BYTES)
    view = memoryview(buffer)
    plain_view = memoryview(bytearray(chunk_size))
    offset = HEADER_BYTES
    counter = 0
    while True:
        got = _read_into(src, view[:CHUNK_PREFIX_BYTES], src_name)
        if got == 0:
            if counter == 0:
                raise SealedFileError("truncated: the file ends right after its header")
            raise SealedFileError(
                f"truncated: the file ends after chunk {counter - 1}; its final chunk is missing"
            )
        if got < CHUNK_PREFIX_BYTES:
            raise SealedFileError(f"truncated: the file ends inside the prefix of chunk {counter}")
        prefix = bytes(buffer[:CHUNK_PREFIX_BYTES])
        word = int.from_bytes(prefix, "big")
        final = bool(word & FINAL_FLAG)
        length = word & LENGTH_MASK
        if length > chunk_size:
            raise SealedFileError(
                f"chunk {counter} is damaged: its prefix claims {length} bytes, more than "
                f"the chunk size {chunk_size}"
            )
        if not final and length != chunk_size:
            raise SealedFileError(
                f"chunk {counter} is damaged: its prefix claims {length} bytes, but a chunk "
                f"that is not the last holds exactly {chunk_size}"
            )
        if counter >= MAX_CHUNKS:
            raise SealedFileError(f"the file has more than {MAX_CHUNKS} chunks; it is damaged")
        body_end = CHUNK_PREFIX_BYTES + length + CHUNK_TAG_BYTES
        body = view[CHUNK_PREFIX_BYTES:body_end]
        got = _read_into(src, body, src_name)
        if got < len(body):
            raise SealedFileError(
                f"truncated: the file ends inside chunk {counter} ({got} of its "
                f"{len(body)} bytes are present)"
            )
        aad = header_bytes + prefix
        plain = plain_view[:length]
        try:
            aead.decrypt_into(_nonce(counter, final), body, aad, plain)
        except InvalidTag:
            raise _diagnose(aead, body, aad, plain, counter, final, offset) from None
        _write_all(dst, plain, dst_name)
        if progress is not None:
            progress(length)
        offset += body_end
        if final:
            break
        counter += 1
    trailing = 0
    while True:
        got = _read_into(src, view, src_name)
        trailing += got
        if got < len(view):
            break
    if trailing:
        raise SealedFileError(
            f"{trailing} unexpected bytes follow the final chunk (chunk {counter}); "
            "data was appended to the file"
        )


def _diagnose(
    aead: AESGCM,
    body: memoryview,
    aad: bytes,
    out: memoryview,
    counter: int,
    final: bool,
    offset: int,
) -> SealedFileError:
    """Explain why chunk ``counter`` failed: out of place (which chunk is it?) or altered."""
    low = max(0, counter - _DIAGNOSE_WINDOW)
    high = min(MAX_CHUNKS, counter + _DIAGNOSE_WINDOW + 1)
    for other in range(low, high):
        if other == counter:
            continue
        try:
            aead.decrypt_into(_nonce(other, final), body, aad, out)
        except InvalidTag:
            continue
        return SealedFileError(
            f"chunk {counter} is out of place: it is chunk {other} of this file, so chunks "
            "were reordered, duplicated or removed"
        )
    return SealedFileError(
        f"chunk {counter} (at byte {offset}) failed authentication: its bytes were altered "
        "or it comes from another file"
    )
