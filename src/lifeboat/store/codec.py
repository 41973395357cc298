"""The object codec: bytes in, ``n`` self-describing shards out, any ``k`` of which give them back.

This module is pure: no files, no network, no threads. The layout is described byte by byte
in ``docs/formats.md`` ("Store shard, version 1"). In short, an object (a pack of blobs, an
index, a manifest: any bytes up to :data:`MAX_OBJECT_BYTES`) goes through four steps:

1. compress with zstd, kept only if it makes the object smaller (a flag records which);
2. encrypt with AES-256-GCM under a key and nonce derived from the repository key, the object
   id and a fresh random 16-byte salt, with the 75-byte *object header* as associated data;
3. cut the ciphertext into ``k`` equal blocks (zero-padded) and add ``n - k`` parity blocks
   with ``zfec`` (Reed-Solomon over GF(2^8));
4. prefix block ``i`` with the object header, its index and a 32-byte keyed BLAKE3 checksum of
   everything else in the shard::

    object header (75)  magic "LBSHARD" | version 1 | flags | k | n | 32-byte object id
                        | 16-byte salt | plaintext length (u64) | ciphertext length (u64)
    shard index (1)
    checksum (32)       BLAKE3, keyed by the repository's shard key, of bytes 0..75 + body
    body                block i: ceil(ciphertext length / k) bytes

Decoding keeps only the shards whose header parses and whose checksum verifies under the
key, and that agree with one another about the object; if ``k`` distinct indices remain, it
decodes, decrypts and decompresses. Otherwise it raises :class:`ShardError` with one line that
names every shard and what is wrong with it. It never returns bytes it has not authenticated.

Only the caller knows what the object id means; :func:`content_id` is the keyed BLAKE3 id that
a content-addressed store uses. The codec encodes one object at a time; zstd, BLAKE3 and zfec
release the GIL (AES-GCM costs little beside them), so a caller encoding several objects on a
thread pool uses every core. Objects of a few MiB to a few tens of MiB are the sweet spot: far
larger ones spend much of their time faulting in fresh memory for each intermediate copy.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import blake3
import zfec
import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from lifeboat.errors import InputError, LifeboatError, exact_bytes

__all__ = [
    "CHECKSUM_BYTES",
    "FLAG_ZSTD",
    "FORMAT_VERSION",
    "HEADER_BYTES",
    "KEY_BYTES",
    "MAGIC",
    "MAX_OBJECT_BYTES",
    "MAX_SHARDS",
    "OBJECT_HEADER_BYTES",
    "OBJECT_ID_BYTES",
    "SALT_BYTES",
    "CodecParams",
    "ShardError",
    "ShardInfo",
    "content_id",
    "decode",
    "encode",
    "inspect_shard",
    "repair",
    "verify_shard",
]

MAGIC: Final = b"LBSHARD"
FORMAT_VERSION: Final = 1
#: Flag bit: the plaintext was compressed with zstd before encryption.
FLAG_ZSTD: Final = 0x01
_KNOWN_FLAGS: Final = FLAG_ZSTD

KEY_BYTES: Final = 32
OBJECT_ID_BYTES: Final = 32
SALT_BYTES: Final = 16
CHECKSUM_BYTES: Final = 32
TAG_BYTES: Final = 16
NONCE_BYTES: Final = 12
#: Objects this large are sampled before compression (see ``_incompressible``): how many samples, how long.
_SAMPLED_FROM: Final = 1 << 20
_SAMPLES: Final = 4
_SAMPLE_BYTES: Final = 64 << 10
#: AES works on 16-byte blocks: ``update_into`` wants that much room, less one, beyond its output.
_AES_BLOCK_BYTES: Final = 16
#: The largest object (plaintext) the codec encodes or accepts from a shard header: 1 GiB.
MAX_OBJECT_BYTES: Final = 1 << 30
#: The largest ``n`` (and so ``k``): shard indices fit easily in one byte.
MAX_SHARDS: Final = 32
DEFAULT_LEVEL: Final = 3

# Offsets in the shard header (all integers big-endian).
_OFF_VERSION: Final = len(MAGIC)  # 7
_OFF_FLAGS: Final = _OFF_VERSION + 1  # 8
_OFF_K: Final = _OFF_FLAGS + 1  # 9
_OFF_N: Final = _OFF_K + 1  # 10
_OFF_OBJECT_ID: Final = _OFF_N + 1  # 11
_OFF_SALT: Final = _OFF_OBJECT_ID + OBJECT_ID_BYTES  # 43
_OFF_PLAIN_LEN: Final = _OFF_SALT + SALT_BYTES  # 59
_OFF_CIPHER_LEN: Final = _OFF_PLAIN_LEN + 8  # 67
#: Bytes of the object header: identical in every shard of an object, and the AEAD's associated data.
OBJECT_HEADER_BYTES: Final = _OFF_CIPHER_LEN + 8  # 75
_OFF_INDEX: Final = OBJECT_HEADER_BYTES  # 75
_OFF_CHECKSUM: Final = _OFF_INDEX + 1  # 76
#: Bytes of the whole shard header; the body follows.
HEADER_BYTES: Final = _OFF_CHECKSUM + CHECKSUM_BYTES  # 108

_CONTEXT_CONTENT_ID: Final = "lifeboat store v1 content id"
_CONTEXT_SHARD_KEY: Final = "lifeboat store v1 shard checksum key"
_CONTEXT_OBJECT_KEY: Final = "lifeboat store v1 object key and nonce"

#: Inputs at least this long are hashed with BLAKE3's multithreaded mode.
_BLAKE3_THREADS_FROM: Final = 1 << 20


class ShardError(LifeboatError):
    """Shards that cannot give back their object: too few valid, damaged, or not of this repository."""


@dataclass(frozen=True)
class CodecParams:
    """How an object is spread: ``n`` shards, any ``k`` of which suffice (1 <= k <= n <= 32)."""

    k: int
    n: int

    def __post_init__(self) -> None:
        for name, value in (("k", self.k), ("n", self.n)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise InputError(f"codec parameter {name} must be an integer, not {type(value).__name__}")
        if not 1 <= self.k <= self.n <= MAX_SHARDS:
            raise InputError(
                f"codec parameters must satisfy 1 <= k <= n <= {MAX_SHARDS}, got {self.k}-of-{self.n}"
            )

    def __str__(self) -> str:
        return f"{self.k}-of-{self.n}"


@dataclass(frozen=True)
class ShardInfo:
    """The header of one shard, as read from its bytes (see :func:`inspect_shard`)."""

    version: int
    flags: int
    k: int
    n: int
    index: int
    object_id: bytes
    salt: bytes
    plaintext_length: int
    ciphertext_length: int
    checksum: bytes
    #: Length of the body that follows the header.
    body_length: int

    @property
    def params(self) -> CodecParams:
        """The shard's ``k`` and ``n``."""
        return CodecParams(self.k, self.n)

    @property
    def compressed(self) -> bool:
        """True if the object was compressed with zstd before encryption."""
        return bool(self.flags & FLAG_ZSTD)

    @property
    def object_header(self) -> bytes:
        """The 75-byte object header, the same in every shard of one encoding of an object."""
        return _object_header(
            self.flags,
            self.k,
            self.n,
            self.object_id,
            self.salt,
            self.plaintext_length,
            self.ciphertext_length,
        )


# --- public API -----------------------------------------------------------------------------


def content_id(key: bytes, data: bytes | bytearray | memoryview, *, parallel: bool = True) -> bytes:
    """Return the 32-byte content id of ``data`` in the repository whose key is ``key``.

    It is BLAKE3 in keyed mode, under a key derived from ``key``, so ids reveal nothing about
    the content to someone without the repository key (they cannot confirm a guess).
    ``parallel=False`` hashes on the calling thread only (see :func:`encode`); the id is the same.
    """
    return _blake3(_subkey(_check_key(key), _CONTEXT_CONTENT_ID), data, parallel=parallel)


def encode(
    key: bytes,
    object_id: bytes,
    data: bytes | bytearray | memoryview,
    params: CodecParams,
    *,
    level: int = DEFAULT_LEVEL,
    consume: bool = False,
    parallel: bool = True,
) -> list[bytes]:
    """Encode ``data`` into ``params.n`` shards, any ``params.k`` of which give it back.

    ``key`` is the 32-byte repository key, ``object_id`` the 32-byte id under which the caller
    stores the object (normally :func:`content_id`); both are bound into every shard. ``level``
    is the zstd level (1..22); the compressed form is kept only if it is smaller, and an object
    of a MiB or more whose samples do not compress at all is not compressed (stored with the
    flag clear, as any incompressible object is). Shard ``i`` of the returned list carries
    index ``i`` (the data shards are ``bytearray``s, written in place). A fresh random salt makes every call produce
    different shards, even for the same data. Raises :class:`InputError` for a key or id of
    the wrong length, an object over :data:`MAX_OBJECT_BYTES` or a bad ``level``.

    With ``consume=True`` and a ``bytearray``, ``data`` is emptied as soon as the codec no longer
    needs it (after compression, or after encryption when it is stored uncompressed), so that
    a caller encoding large objects on several threads does not hold every plaintext until its
    shards are assembled.

    ``parallel=False`` computes the shard checksums on the calling thread only, never with
    BLAKE3's own thread pool: a caller that already keeps every core busy with its own threads
    (the pack writer) would only pay for the hand-offs. The shards are the same either way.
    """
    key = _check_key(key)
    object_id = _check_object_id(object_id)
    if not isinstance(params, CodecParams):
        raise InputError(f"params must be CodecParams, not {type(params).__name__}")
    if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 22:
        raise InputError(f"zstd level must be an integer from 1 to 22, got {level!r}")
    view = memoryview(data).cast("B")
    if len(view) > MAX_OBJECT_BYTES:
        raise InputError(f"object is {len(view)} bytes; the largest the store takes is {MAX_OBJECT_BYTES}")

    plaintext_length = len(view)
    flags = 0
    payload: bytes | memoryview = view
    if plaintext_length and not _incompressible(view, level):
        packed = zstandard.ZstdCompressor(level=level, write_checksum=False).compress(view)
        if len(packed) < plaintext_length:
            payload, flags = packed, FLAG_ZSTD
            view = _consumed(view, data, consume)
        del packed

    salt = secrets.token_bytes(SALT_BYTES)
    ciphertext_length = len(payload) + TAG_BYTES
    header = _object_header(flags, params.k, params.n, object_id, salt, plaintext_length, ciphertext_length)
    aead_key, nonce = _object_key_and_nonce(key, object_id, salt)
    # The data shards are allocated whole and the ciphertext is written straight into their
    # bodies: no buffer of the whole ciphertext, and no copy of it into the shards.
    data_shards = _encrypt_into_shards(aead_key, nonce, payload, header, params.k)
    del payload
    view = _consumed(view, data, consume)

    bodies = [memoryview(shard)[HEADER_BYTES:] for shard in data_shards]
    parity: list[bytes | memoryview] = list(
        zfec.Encoder(params.k, params.n).encode(bodies, tuple(range(params.k, params.n)))
    )
    shard_key = _subkey(key, _CONTEXT_SHARD_KEY)
    for index, (shard, body) in enumerate(zip(data_shards, bodies, strict=True)):
        prefix = header + bytes((index,))
        shard[: len(prefix)] = prefix
        shard[len(prefix) : HEADER_BYTES] = _blake3(shard_key, prefix, body, parallel=parallel)
        body.release()
    # Each parity block is dropped once its shard holds a copy.
    shards: list[bytes] = [*data_shards, *([b""] * len(parity))]  # type: ignore[list-item]
    for number in reversed(range(len(parity))):
        block, parity[number] = parity[number], b""
        shards[params.k + number] = _assemble(shard_key, header, params.k + number, block, parallel)
        del block
    return shards


def _incompressible(view: memoryview, level: int) -> bool:
    """True if samples of a large object do not compress at all (random or already compressed data).

    Compressing such an object in full would cost as much as everything else the encoder does
    to it, for nothing. Only objects of :data:`_SAMPLED_FROM` bytes or more are sampled, at
    :data:`_SAMPLES` evenly spread places; any sample that shrinks by more than 1% means the
    whole object is compressed (and then kept compressed only if that made it smaller).
    """
    if len(view) < _SAMPLED_FROM:
        return False
    compressor = zstandard.ZstdCompressor(level=level, write_checksum=False)
    stride = (len(view) - _SAMPLE_BYTES) // (_SAMPLES - 1)
    for number in range(_SAMPLES):
        sample = view[number * stride : number * stride + _SAMPLE_BYTES]
        if len(compressor.compress(sample)) < len(sample) * 0.99:
            return False
    return True


def _consumed(view: memoryview, data: object, consume: bool) -> memoryview:
    """Release ``view`` and empty ``data`` when the caller gave it up (``consume``)."""
    if consume and isinstance(data, bytearray):
        view.release()
        del data[:]
        return memoryview(b"")
    return view


def decode(
    key: bytes,
    shards: Mapping[int, bytes] | Sequence[bytes | None],
    *,
    object_id: bytes | None = None,
    consume: bool = False,
    as_buffer: bool = False,
) -> bytes:
    """Return the object held by ``shards``, or raise :class:`ShardError`.

    ``shards`` maps the slot each shard was read from (normally its index) to its bytes; a
    sequence is read as slots 0, 1, ...; ``None`` marks a shard that could not be read. Only
    shards whose header parses and whose keyed checksum verifies are used, and only those of
    one encoding of one object: the one with ``object_id`` if given, otherwise the one for
    which the most distinct shard indices are present. Any ``k`` distinct indices suffice.

    The error, when fewer than ``k`` usable shards remain, is one line naming every shard that
    was left out and why (``"2 of 5 shards valid, need 3: shard 1: checksum mismatch ..."``).
    Raises :class:`InputError` for a key or object id of the wrong length.

    With ``consume=True`` and a ``dict`` or ``list`` of shards, the container is emptied once
    the object is decrypted, before it is decompressed, so a caller decoding large objects on
    several threads holds the shards, the ciphertext and the plaintext of each no longer than
    needed. (It is left as it was when decoding fails before that point.) ``as_buffer=True``
    may return a ``bytearray`` (an object stored uncompressed), saving a copy of it.
    """
    key = _check_key(key)
    if object_id is not None:
        object_id = _check_object_id(object_id)
    survey = _survey(key, _slots(shards), object_id)
    blocks = survey.require_k()
    survey.bodies.clear()
    release = _releaser(shards) if consume else None
    data = _open(key, survey.info, blocks, release)
    return data if as_buffer else bytes(data)  # type: ignore[return-value]


def decode_verified(key: bytes, shards: Mapping[int, tuple[ShardInfo, bytes]]) -> bytes | bytearray:
    """The object held by shards already checked by :func:`verify_shard`, as a new buffer.

    ``shards`` maps each shard's index to its header (as :func:`verify_shard` returned it)
    and its bytes; they must all be of one encoding (the same object header), and at least
    ``k`` of them. Checksums are not computed again (``check --read-data`` verifies every shard
    first); decryption still authenticates the whole object. Raises :class:`ShardError`.
    """
    key = _check_key(key)
    infos = [info for info, _ in shards.values()]
    if not infos:
        raise ShardError("no shards to decode")
    chosen = infos[0]
    if any(info.object_header != chosen.object_header for info in infos):
        raise ShardError("the shards are of different encodings; decode them with decode()")
    if any(info.index != index for index, (info, _) in shards.items()):
        raise ShardError("a shard is given under another index than its own")
    if len(shards) < chosen.k:
        raise ShardError(f"{len(shards)} shards given, need {chosen.k}")
    picked = sorted(shards)[: chosen.k]
    blocks = {index: memoryview(shards[index][1]).cast("B")[HEADER_BYTES:] for index in picked}
    return _open(key, chosen, blocks, None)


def inspect_shard(data: bytes) -> ShardInfo:
    """Parse the header of one shard without the key (for ``check`` and ``repair`` reports).

    Checks everything that can be checked without the key: the magic, the version, the
    flags, ``k``, ``n`` and the index, the lengths (against each other, against
    :data:`MAX_OBJECT_BYTES` and against the size of the body). It cannot tell a genuine shard
    from a forged one; :func:`verify_shard` can. Raises :class:`ShardError` naming the first
    thing that is wrong.
    """
    view = memoryview(data).cast("B")
    size = len(view)
    if not size:
        raise ShardError("not a Lifeboat shard: it is empty")
    head = bytes(view[: len(MAGIC)])
    if head != MAGIC[: len(head)]:
        raise ShardError("not a Lifeboat shard: its first bytes are not LBSHARD")
    if size > _OFF_VERSION:
        version = view[_OFF_VERSION]
        if version > FORMAT_VERSION:
            raise ShardError(
                f"shard written by a newer Lifeboat (format version {version}, this Lifeboat reads "
                f"version {FORMAT_VERSION}); upgrade Lifeboat to read it"
            )
        if version != FORMAT_VERSION:
            raise ShardError(f"shard header is damaged: format version {version} was never used")
    if size < HEADER_BYTES:
        raise ShardError(f"truncated shard: {size} bytes, shorter than the {HEADER_BYTES}-byte header")
    flags = view[_OFF_FLAGS]
    if flags & ~_KNOWN_FLAGS:
        raise ShardError(f"shard header names unknown flags {flags:#04x}; damaged or from a newer Lifeboat")
    k, n, index = view[_OFF_K], view[_OFF_N], view[_OFF_INDEX]
    if not 1 <= k <= n <= MAX_SHARDS:
        raise ShardError(f"shard header is damaged: {k}-of-{n} is outside 1 <= k <= n <= {MAX_SHARDS}")
    if index >= n:
        raise ShardError(f"shard header is damaged: index {index} is not below n = {n}")
    plaintext_length = int.from_bytes(view[_OFF_PLAIN_LEN:_OFF_CIPHER_LEN], "big")
    ciphertext_length = int.from_bytes(view[_OFF_CIPHER_LEN:OBJECT_HEADER_BYTES], "big")
    if plaintext_length > MAX_OBJECT_BYTES:
        raise ShardError(
            f"shard header claims a {plaintext_length}-byte object, over the {MAX_OBJECT_BYTES}-byte limit"
        )
    payload_length = ciphertext_length - TAG_BYTES
    if flags & FLAG_ZSTD:
        if not 0 <= payload_length < plaintext_length:
            raise ShardError(
                f"shard header is damaged: compressed payload of {payload_length} bytes for a "
                f"{plaintext_length}-byte object"
            )
    elif payload_length != plaintext_length:
        raise ShardError(
            f"shard header is damaged: ciphertext length {ciphertext_length} does not fit an "
            f"uncompressed {plaintext_length}-byte object"
        )
    body_length = size - HEADER_BYTES
    expected = _block_size(ciphertext_length, k)
    if body_length != expected:
        what = "truncated shard" if body_length < expected else "shard has trailing bytes"
        raise ShardError(f"{what}: body is {body_length} bytes, the header implies {expected}")
    return ShardInfo(
        version=FORMAT_VERSION,
        flags=flags,
        k=k,
        n=n,
        index=index,
        object_id=bytes(view[_OFF_OBJECT_ID:_OFF_SALT]),
        salt=bytes(view[_OFF_SALT:_OFF_PLAIN_LEN]),
        plaintext_length=plaintext_length,
        ciphertext_length=ciphertext_length,
        checksum=bytes(view[_OFF_CHECKSUM:HEADER_BYTES]),
        body_length=body_length,
    )


def verify_shard(key: bytes, data: bytes) -> ShardInfo:
    """Parse one shard's header and check its keyed checksum; return the header fields.

    A shard that verifies was written, exactly as it is, by someone holding the repository key
    (this does not say that its object is still decodable: that needs ``k`` of them). Raises
    :class:`ShardError` for a malformed header (see :func:`inspect_shard`) or a checksum
    mismatch (damaged bytes, or a shard of another repository).
    """
    return _verify(_subkey(_check_key(key), _CONTEXT_SHARD_KEY), data)


def repair(
    key: bytes,
    shards: Mapping[int, bytes],
    params: CodecParams,
    *,
    object_id: bytes | None = None,
) -> dict[int, bytes]:
    """Rebuild the shards of slots ``0 .. params.n - 1`` that are missing, damaged or misplaced.

    ``shards`` maps slot to the bytes read from it (absent slots are missing). At least
    ``params.k`` valid shards of one object encoded ``params`` must be present; they are
    decoded and the object is authenticated (decrypted) before anything is rebuilt. Returns
    ``{slot: shard}`` for every slot whose content is not the valid shard with that index;
    the rebuilt shards are byte-identical to the ones :func:`encode` produced. An empty dict
    means nothing needs repair. Raises :class:`ShardError` when fewer than ``k`` valid shards
    remain, as :func:`decode` does.
    """
    key = _check_key(key)
    if not isinstance(params, CodecParams):
        raise InputError(f"params must be CodecParams, not {type(params).__name__}")
    if object_id is not None:
        object_id = _check_object_id(object_id)
    if not isinstance(shards, Mapping):
        raise InputError(f"repair takes a mapping of slot to shard, not {type(shards).__name__}")
    survey = _survey(key, _slots(shards), object_id, params)
    blocks = survey.require_k()
    info = survey.info
    _open(key, info, dict(blocks), None)  # authenticate the object before writing anything derived from it

    broken = [slot for slot in range(params.n) if survey.good_slots.get(slot) != slot]
    if not broken:
        return {}
    data_blocks = _data_blocks(info, blocks)
    rebuilt: list[bytes | memoryview] = list(zfec.Encoder(info.k, info.n).encode(data_blocks, tuple(broken)))
    shard_key = _subkey(key, _CONTEXT_SHARD_KEY)
    header = info.object_header
    return {
        slot: _assemble(shard_key, header, slot, body) for slot, body in zip(broken, rebuilt, strict=True)
    }


# --- implementation -------------------------------------------------------------------------


def _check_key(key: bytes) -> bytes:
    return exact_bytes(key, KEY_BYTES, "a repository key")


def _check_object_id(object_id: bytes) -> bytes:
    return exact_bytes(object_id, OBJECT_ID_BYTES, "an object id")


def _blake3(key: bytes, *parts: bytes | bytearray | memoryview, parallel: bool = True) -> bytes:
    total = sum(len(part) for part in parts)
    threads = blake3.blake3.AUTO if parallel and total >= _BLAKE3_THREADS_FROM else 1
    hasher = blake3.blake3(key=key, max_threads=threads)
    for part in parts:
        hasher.update(part)
    return hasher.digest()


def _subkey(key: bytes, context: str) -> bytes:
    return blake3.blake3(key, derive_key_context=context).digest()


def _object_key_and_nonce(key: bytes, object_id: bytes, salt: bytes) -> tuple[bytes, bytes]:
    """The AES-256-GCM key and nonce of one encoding of one object."""
    material = blake3.blake3(key + object_id + salt, derive_key_context=_CONTEXT_OBJECT_KEY).digest(
        KEY_BYTES + NONCE_BYTES
    )
    return material[:KEY_BYTES], material[KEY_BYTES:]


def _object_header(
    flags: int, k: int, n: int, object_id: bytes, salt: bytes, plaintext_length: int, ciphertext_length: int
) -> bytes:
    return b"".join(
        (
            MAGIC,
            bytes((FORMAT_VERSION, flags, k, n)),
            object_id,
            salt,
            plaintext_length.to_bytes(8, "big"),
            ciphertext_length.to_bytes(8, "big"),
        )
    )


def _block_size(ciphertext_length: int, k: int) -> int:
    return -(-ciphertext_length // k)


def _encrypt_into_shards(
    aead_key: bytes, nonce: bytes, payload: bytes | memoryview, header: bytes, k: int
) -> list[bytearray]:
    """Encrypt ``payload`` straight into the bodies of ``k`` new data shards (headers left blank).

    The ciphertext (the encrypted payload, then the tag) is cut into ``k`` blocks of equal size,
    the last one zero-padded; block ``i`` is the body of shard ``i``, after
    :data:`HEADER_BYTES` bytes left for its header and checksum.
    """
    source = memoryview(payload).cast("B")
    size = _block_size(len(source) + TAG_BYTES, k)
    shards = [bytearray(HEADER_BYTES + size) for _ in range(k)]
    encryptor = Cipher(algorithms.AES(aead_key), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(header)
    slack = _AES_BLOCK_BYTES - 1
    for index, shard in enumerate(shards):
        start = index * size
        end = min(start + size, len(source))
        if start >= end:
            break
        body = memoryview(shard)[HEADER_BYTES:]
        # update_into wants room for one AES block less a byte beyond its output: the last few
        # bytes of each block go through update() and are copied in.
        cut = max(start, end - slack)
        written = encryptor.update_into(source[start:cut], body) if cut > start else 0
        tail = encryptor.update(source[cut:end])
        body[written : written + len(tail)] = tail
        body.release()
    encryptor.finalize()
    tag = encryptor.tag
    for offset in range(TAG_BYTES):  # the tag may straddle two blocks
        position = len(source) + offset
        shards[position // size][HEADER_BYTES + position % size] = tag[offset]
    return shards


def _assemble(
    shard_key: bytes, header: bytes, index: int, body: bytes | memoryview, parallel: bool = True
) -> bytes:
    prefix = header + bytes((index,))
    checksum = _blake3(shard_key, prefix, body, parallel=parallel)
    return b"".join((prefix, checksum, body))


def _verify(shard_key: bytes, data: bytes) -> ShardInfo:
    info = inspect_shard(data)
    view = memoryview(data).cast("B")
    expected = _blake3(shard_key, view[:_OFF_CHECKSUM], view[HEADER_BYTES:])
    if not hmac.compare_digest(expected, info.checksum):
        raise ShardError("checksum mismatch (damaged, or a shard of another repository)")
    return info


def _slots(shards: Mapping[int, bytes] | Sequence[bytes | None]) -> list[tuple[int, bytes | None]]:
    items: Iterable[tuple[int, bytes | None]]
    if isinstance(shards, Mapping):
        items = shards.items()
    elif isinstance(shards, Sequence) and not isinstance(shards, bytes | bytearray | str):
        items = enumerate(shards)
    else:
        raise InputError(f"shards must be a mapping or a sequence of shards, not {type(shards).__name__}")
    slots = list(items)
    for slot, data in slots:
        if isinstance(slot, bool) or not isinstance(slot, int) or slot < 0:
            raise InputError(f"shard slots must be non-negative integers, got {slot!r}")
        if data is not None and not isinstance(data, bytes | bytearray | memoryview):
            raise InputError(f"shard {slot} must be bytes or None, not {type(data).__name__}")
    return sorted(slots, key=lambda item: item[0])


@dataclass
class _Survey:
    """The verdict on every slot offered to :func:`decode` or :func:`repair`."""

    #: The header of the chosen encoding (None if no shard verified).
    chosen: ShardInfo | None
    #: slot -> shard index, for the slots holding a usable shard of the chosen encoding.
    good_slots: dict[int, int]
    #: shard index -> body, one per distinct index.
    bodies: dict[int, memoryview]
    #: slot -> reason, for every slot left out.
    problems: dict[int, str]
    offered: int
    need: int | None

    @property
    def info(self) -> ShardInfo:
        assert self.chosen is not None
        return self.chosen

    def require_k(self) -> dict[int, memoryview]:
        """Return ``k`` bodies by index, or raise :class:`ShardError` describing every slot."""
        chosen = self.chosen
        if chosen is not None and len(self.bodies) >= chosen.k:
            # Prefer the data blocks: zfec then has little or nothing to reconstruct.
            picked = sorted(self.bodies)[: chosen.k]
            return {index: self.bodies[index] for index in picked}
        need = chosen.k if chosen is not None else self.need
        need_text = f"need {need}" if need is not None else "need at least 1"
        details = "; ".join(f"shard {slot}: {reason}" for slot, reason in sorted(self.problems.items()))
        message = f"{len(self.bodies)} of {self.offered} shards valid, {need_text}"
        if details:
            message += f": {details}"
        raise ShardError(message)


def _survey(
    key: bytes,
    slots: list[tuple[int, bytes | None]],
    object_id: bytes | None,
    params: CodecParams | None = None,
) -> _Survey:
    shard_key = _subkey(key, _CONTEXT_SHARD_KEY)
    problems: dict[int, str] = {}
    verified: list[tuple[int, ShardInfo, memoryview]] = []
    for slot, data in slots:
        if data is None:
            problems[slot] = "missing"
            continue
        try:
            info = _verify(shard_key, data)
        except ShardError as exc:
            problems[slot] = str(exc)
            continue
        if object_id is not None and info.object_id != object_id:
            problems[slot] = f"different object id ({info.object_id[:4].hex()}...)"
            continue
        if params is not None and (info.k, info.n) != (params.k, params.n):
            problems[slot] = f"encoded {info.k}-of-{info.n}, expected {params}"
            continue
        verified.append((slot, info, memoryview(data).cast("B")[HEADER_BYTES:]))

    # Group by encoding (the object header) and keep the one with the most distinct indices.
    groups: dict[bytes, set[int]] = {}
    for _, info, _ in verified:
        groups.setdefault(info.object_header, set()).add(info.index)
    chosen: ShardInfo | None = None
    if groups:
        best = max(groups, key=lambda header: len(groups[header]))
        chosen = next(info for _, info, _ in verified if info.object_header == best)

    good_slots: dict[int, int] = {}
    bodies: dict[int, memoryview] = {}
    for slot, info, body in verified:
        assert chosen is not None
        if info.object_header != chosen.object_header:
            if info.object_id != chosen.object_id:
                problems[slot] = f"different object id ({info.object_id[:4].hex()}...)"
            else:
                problems[slot] = "from another encoding of the same object (different salt or parameters)"
            continue
        if info.index in bodies:
            problems[slot] = f"duplicate of shard index {info.index}"
            continue
        bodies[info.index] = body
        good_slots[slot] = info.index
    need = params.k if params is not None else None
    return _Survey(chosen, good_slots, bodies, problems, len(slots), need)


def _data_blocks(info: ShardInfo, blocks: dict[int, memoryview]) -> list[bytes | memoryview]:
    """The ``k`` data blocks (indices 0..k-1) from any ``k`` blocks."""
    indices = sorted(blocks)
    if indices == list(range(info.k)):
        return [blocks[i] for i in indices]
    decoded: list[bytes | memoryview] = list(
        zfec.Decoder(info.k, info.n).decode([blocks[i] for i in indices], indices)
    )
    return decoded


def _releaser(shards: object) -> Callable[[], None] | None:
    """A function that empties the caller's container of shards (``decode(consume=True)``)."""
    if isinstance(shards, dict):
        return shards.clear
    if isinstance(shards, list):
        return lambda: shards.__setitem__(slice(None), [None] * len(shards))
    return None


def _decrypt_blocks(key: bytes, info: ShardInfo, blocks: list[bytes | memoryview]) -> bytearray:
    """Decrypt the ciphertext held by the ``k`` data blocks straight into one new buffer.

    The blocks are fed to AES-256-GCM one after the other (no joined copy of the ciphertext);
    the tag, the last :data:`TAG_BYTES` of the ciphertext, may straddle two blocks. The
    plaintext is returned only if the tag verifies.
    """
    aead_key, nonce = _object_key_and_nonce(key, info.object_id, info.salt)
    payload_length = info.ciphertext_length - TAG_BYTES
    # update_into may need one cipher block of room beyond what it writes.
    buffer = bytearray(payload_length + _AES_BLOCK_BYTES - 1)
    out = memoryview(buffer)
    decryptor = Cipher(algorithms.AES(aead_key), modes.GCM(nonce)).decryptor()
    decryptor.authenticate_additional_data(info.object_header)
    tag = bytearray()
    written = 0
    remaining = payload_length
    for block in blocks:
        view = memoryview(block).cast("B")
        take = min(len(view), remaining)
        if take:
            written += decryptor.update_into(view[:take], out[written:])
            remaining -= take
        if remaining == 0 and len(tag) < TAG_BYTES:
            tag += view[take : take + TAG_BYTES - len(tag)]
    out.release()
    try:
        if remaining or len(tag) != TAG_BYTES:
            raise InvalidTag
        written += len(decryptor.finalize_with_tag(bytes(tag)))
    except InvalidTag:
        raise ShardError(
            f"object {info.object_id[:4].hex()}... fails authentication although its shards verify; "
            "the shards were written with a different key or by a faulty writer"
        ) from None
    del buffer[written:]
    return buffer


def _open(
    key: bytes, info: ShardInfo, blocks: dict[int, memoryview], release: Callable[[], None] | None
) -> bytes | bytearray:
    """Rebuild the ciphertext from ``k`` blocks, then decrypt and decompress it."""
    data_blocks = _data_blocks(info, blocks)
    blocks.clear()
    payload = _decrypt_blocks(key, info, data_blocks)
    del data_blocks
    if release is not None:
        release()  # the caller's shards are no longer needed
    if not info.compressed:
        return payload
    try:
        data = zstandard.ZstdDecompressor().decompress(payload, max_output_size=info.plaintext_length)
    except zstandard.ZstdError as exc:
        raise ShardError(f"object {info.object_id[:4].hex()}... does not decompress: {exc}") from None
    if len(data) != info.plaintext_length:
        raise ShardError(
            f"object {info.object_id[:4].hex()}... decompresses to {len(data)} bytes, "
            f"its header says {info.plaintext_length}"
        )
    return data
