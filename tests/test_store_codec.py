"""Tests of the object codec (lifeboat.store.codec): round trips, k-of-n recovery, damage, repair."""

from __future__ import annotations

import itertools
import os
import random

import blake3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifeboat.errors import InputError, LifeboatError
from lifeboat.store import codec
from lifeboat.store.codec import (
    FORMAT_VERSION,
    HEADER_BYTES,
    MAGIC,
    CodecParams,
    ShardError,
    content_id,
    decode,
    encode,
    inspect_shard,
    repair,
    verify_shard,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))

PARAMS = [(1, 1), (1, 2), (1, 3), (2, 2), (2, 3), (3, 5), (4, 6), (5, 8), (10, 14), (32, 32)]

COMPRESSIBLE = b"".join(
    b'{"account": "0x%040x", "balance": %d, "market": "ETH-USD"}\n' % (i * 7919, i * 1000) for i in range(500)
)
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _encode(data: bytes, k: int, n: int, key: bytes = KEY) -> list[bytes]:
    return encode(key, content_id(key, data), data, CodecParams(k, n))


def _flip(shard: bytes, position: int, mask: int = 0x01) -> bytes:
    damaged = bytearray(shard)
    damaged[position % len(damaged)] ^= mask
    return bytes(damaged)


params_strategy = st.integers(1, 8).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n)))
data_strategy = st.one_of(
    st.binary(max_size=3000),
    st.binary(max_size=40).map(lambda b: b * 50),  # compressible
)


# --- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize(("k", "n"), PARAMS)
@pytest.mark.parametrize(
    "data",
    [b"", b"\x00", b"x", COMPRESSIBLE, os.urandom(10_000), bytes(65_537)],
    ids=["empty", "zero-byte", "one-byte", "compressible", "random", "zeros"],
)
def test_round_trip(k: int, n: int, data: bytes) -> None:
    shards = _encode(data, k, n)
    assert len(shards) == n
    assert decode(KEY, shards) == data
    assert decode(KEY, dict(enumerate(shards))) == data
    # The last k alone (parity first where there is any) are enough.
    assert decode(KEY, {i: shards[i] for i in range(n - k, n)}) == data
    lengths = {len(shard) for shard in shards}
    assert len(lengths) == 1
    for index, shard in enumerate(shards):
        info = verify_shard(KEY, shard)
        assert (info.k, info.n, info.index) == (k, n, index)
        assert info.plaintext_length == len(data)
        assert info == inspect_shard(shard)


def test_compression_flag() -> None:
    compressed = inspect_shard(_encode(COMPRESSIBLE, 3, 5)[0])
    assert compressed.compressed
    assert compressed.ciphertext_length < len(COMPRESSIBLE) // 4
    raw = inspect_shard(_encode(os.urandom(5000), 3, 5)[0])
    assert not raw.compressed
    assert raw.ciphertext_length == 5000 + 16
    assert not inspect_shard(_encode(b"", 1, 1)[0]).compressed


def test_level_changes_nothing_but_size() -> None:
    for level in (1, 3, 19):
        shards = encode(KEY, bytes(32), COMPRESSIBLE, CodecParams(2, 3), level=level)
        assert decode(KEY, shards[1:]) == COMPRESSIBLE


def test_fresh_salt_every_time() -> None:
    first, second = _encode(b"same bytes", 2, 3), _encode(b"same bytes", 2, 3)
    assert inspect_shard(first[0]).salt != inspect_shard(second[0]).salt
    assert first[0][HEADER_BYTES:] != second[0][HEADER_BYTES:]


def test_content_id_is_keyed() -> None:
    assert len(content_id(KEY, b"abc")) == 32
    assert content_id(KEY, b"abc") == content_id(KEY, b"abc")
    assert content_id(KEY, b"abc") != content_id(OTHER_KEY, b"abc")
    assert content_id(KEY, b"abc") != blake3.blake3(b"abc").digest()
    big = os.urandom(3 << 20)  # multithreaded hashing gives the same id
    hasher = blake3.blake3(key=codec._subkey(KEY, codec._CONTEXT_CONTENT_ID))
    hasher.update(big)
    assert content_id(KEY, big) == hasher.digest()


# --- properties -----------------------------------------------------------------------------


@SETTINGS
@given(data=data_strategy, kn=params_strategy, choice=st.data())
def test_any_k_subset_decodes_and_fewer_fail(data: bytes, kn: tuple[int, int], choice: st.DataObject) -> None:
    k, n = kn
    shards = _encode(data, k, n)
    subset = choice.draw(st.lists(st.integers(0, n - 1), min_size=k, max_size=n, unique=True))
    assert decode(KEY, {i: shards[i] for i in subset}) == data
    as_list: list[bytes | None] = [shards[i] if i in subset else None for i in range(n)]
    assert decode(KEY, as_list) == data
    fewer = subset[: choice.draw(st.integers(0, k - 1))]
    with pytest.raises(
        ShardError, match=rf"^{len(fewer)} of {len(fewer)} shards valid, need ({k}|at least 1)$"
    ):
        decode(KEY, {i: shards[i] for i in fewer})


@pytest.mark.parametrize(("k", "n"), [(1, 3), (2, 4), (3, 5), (4, 6)])
def test_every_k_subset_decodes(k: int, n: int) -> None:
    data = os.urandom(1234)
    shards = _encode(data, k, n)
    for subset in itertools.combinations(range(n), k):
        assert decode(KEY, {i: shards[i] for i in subset}) == data


@SETTINGS
@given(data=data_strategy, kn=params_strategy, choice=st.data())
def test_damage_to_at_most_n_minus_k_shards_is_survived(
    data: bytes, kn: tuple[int, int], choice: st.DataObject
) -> None:
    k, n = kn
    shards = _encode(data, k, n)
    victims = choice.draw(st.lists(st.integers(0, n - 1), max_size=n - k, unique=True))
    damaged = list(shards)
    for victim in victims:
        position = choice.draw(st.integers(0, len(shards[victim]) - 1))
        mask = choice.draw(st.integers(1, 255))
        damaged[victim] = _flip(shards[victim], position, mask)
    assert decode(KEY, damaged) == data
    for index, shard in enumerate(damaged):
        if index in victims:
            with pytest.raises(ShardError):
                verify_shard(KEY, shard)
        else:
            verify_shard(KEY, shard)
    rebuilt = repair(KEY, dict(enumerate(damaged)), CodecParams(k, n))
    assert sorted(rebuilt) == sorted(victims)
    for index, shard in rebuilt.items():
        assert shard == shards[index]


@SETTINGS
@given(data=data_strategy, kn=params_strategy, choice=st.data())
def test_damage_to_more_than_n_minus_k_shards_fails_loudly(
    data: bytes, kn: tuple[int, int], choice: st.DataObject
) -> None:
    k, n = kn
    shards = _encode(data, k, n)
    victims = choice.draw(st.lists(st.integers(0, n - 1), min_size=n - k + 1, max_size=n, unique=True))
    damaged = list(shards)
    for victim in victims:
        damaged[victim] = _flip(shards[victim], choice.draw(st.integers(0, len(shards[victim]) - 1)))
    with pytest.raises(ShardError) as caught:
        decode(KEY, damaged)
    message = str(caught.value)
    need = f"need {k}" if len(victims) < n else "need at least 1"
    assert message.startswith(f"{n - len(victims)} of {n} shards valid, {need}: ")
    for victim in victims:
        assert f"shard {victim}: " in message
    with pytest.raises(ShardError):
        repair(KEY, dict(enumerate(damaged)), CodecParams(k, n))


@SETTINGS
@given(data=data_strategy, kn=params_strategy, choice=st.data())
def test_repair_rebuilds_missing_shards_byte_identical(
    data: bytes, kn: tuple[int, int], choice: st.DataObject
) -> None:
    k, n = kn
    shards = _encode(data, k, n)
    kept = choice.draw(st.lists(st.integers(0, n - 1), min_size=k, max_size=n, unique=True))
    rebuilt = repair(KEY, {i: shards[i] for i in kept}, CodecParams(k, n))
    assert sorted(rebuilt) == sorted(set(range(n)) - set(kept))
    for index, shard in rebuilt.items():
        assert shard == shards[index]


# --- refusals -------------------------------------------------------------------------------


def test_shards_of_another_key_are_refused() -> None:
    data = os.urandom(300)
    ours = _encode(data, 3, 5)
    theirs = _encode(data, 3, 5, key=OTHER_KEY)
    with pytest.raises(
        ShardError, match=r"^0 of 5 shards valid, need at least 1: shard 0: checksum mismatch"
    ):
        decode(KEY, theirs)
    mixed = [ours[0], ours[1], theirs[2], theirs[3], theirs[4]]
    with pytest.raises(ShardError, match=r"^2 of 5 shards valid, need 3: .*shard 2: checksum mismatch"):
        decode(KEY, mixed)
    with pytest.raises(ShardError, match="checksum mismatch"):
        verify_shard(KEY, theirs[0])


def test_shards_of_another_object_are_refused() -> None:
    first, second = _encode(b"first object" * 10, 3, 5), _encode(b"second object" * 10, 3, 5)
    mixed = [first[0], first[1], second[2], second[3], first[4]]
    assert decode(KEY, mixed) == b"first object" * 10
    with_gap: list[bytes | None] = [first[0], first[1], second[2], second[3], None]
    with pytest.raises(ShardError, match=r"shard 2: different object id .*shard 4: missing"):
        decode(KEY, with_gap)
    # With the id given, the other object's shards are named even when they are the majority.
    wanted = content_id(KEY, b"first object" * 10)
    with pytest.raises(ShardError, match=r"^2 of 5 shards valid, need 3: .*shard 2: different object id"):
        decode(KEY, [first[0], first[1], second[2], second[3], second[4]], object_id=wanted)
    with pytest.raises(ShardError, match="different object id"):
        decode(KEY, first, object_id=bytes(32))


def test_two_encodings_of_one_object_do_not_mix() -> None:
    data = os.urandom(500)
    first, second = _encode(data, 3, 5), _encode(data, 3, 5)
    with pytest.raises(ShardError, match="another encoding of the same object"):
        decode(KEY, [first[0], first[1], second[2], None, None])
    assert decode(KEY, [first[0], first[1], second[2], second[3], second[4]]) == data


def test_misplaced_and_duplicate_shards() -> None:
    data = os.urandom(700)
    shards = _encode(data, 3, 5)
    swapped = {0: shards[1], 1: shards[0], 2: shards[2]}
    assert decode(KEY, swapped) == data
    rebuilt = repair(KEY, swapped, CodecParams(3, 5))
    assert sorted(rebuilt) == [0, 1, 3, 4]
    assert all(rebuilt[i] == shards[i] for i in rebuilt)
    with pytest.raises(
        ShardError, match=r"^2 of 3 shards valid, need 3: shard 2: duplicate of shard index 0"
    ):
        decode(KEY, [shards[0], shards[1], shards[0]])


@pytest.mark.parametrize("cut", [0, 1, 5, 50, HEADER_BYTES - 1, HEADER_BYTES, -1])
def test_truncated_shards_are_refused(cut: int) -> None:
    shards = _encode(os.urandom(1000), 2, 3)
    short = shards[0][:cut]
    with pytest.raises(ShardError, match=r"empty|truncated"):
        inspect_shard(short)
    assert repair(KEY, {0: short, 1: shards[1], 2: shards[2]}, CodecParams(2, 3)) == {0: shards[0]}
    assert decode(KEY, [short, shards[1], shards[2]]) == decode(KEY, shards)
    with pytest.raises(
        ShardError,
        match=r"^1 of 2 shards valid, need 2: shard 0: (not a Lifeboat shard: it is empty|truncated)",
    ):
        decode(KEY, [short, shards[1]])


def test_extended_shard_is_refused() -> None:
    shard = _encode(b"abc", 1, 2)[0]
    with pytest.raises(ShardError, match="trailing bytes"):
        inspect_shard(shard + b"\x00")


def test_header_checks_without_the_key() -> None:
    shard = _encode(os.urandom(100), 2, 4)[1]
    with pytest.raises(ShardError, match="not a Lifeboat shard"):
        inspect_shard(b"PK\x03\x04" + shard[4:])
    newer = shard[:7] + bytes([FORMAT_VERSION + 1]) + shard[8:]
    with pytest.raises(ShardError, match="newer Lifeboat .* upgrade"):
        inspect_shard(newer)
    with pytest.raises(ShardError, match="version 0 was never used"):
        inspect_shard(shard[:7] + b"\x00" + shard[8:])
    with pytest.raises(ShardError, match="unknown flags"):
        inspect_shard(shard[:8] + b"\x80" + shard[9:])
    with pytest.raises(ShardError, match="2-of-1"):
        inspect_shard(shard[:10] + b"\x01" + shard[11:])
    with pytest.raises(ShardError, match="index 7 is not below n = 4"):
        inspect_shard(shard[:75] + b"\x07" + shard[76:])
    huge = (codec.MAX_OBJECT_BYTES + 1).to_bytes(8, "big")
    with pytest.raises(ShardError, match="over the 1073741824-byte limit"):
        inspect_shard(shard[:59] + huge + shard[67:])
    with pytest.raises(ShardError, match="does not fit an uncompressed"):
        inspect_shard(shard[:67] + (2**63).to_bytes(8, "big") + shard[75:])
    assert shard.startswith(MAGIC)


def test_header_edits_cannot_be_fixed_up_without_the_key() -> None:
    data = os.urandom(200)
    shards = _encode(data, 2, 3)
    edited = bytearray(shards[0])
    edited[_offset_of_salt()] ^= 1
    # An attacker recomputing an unkeyed checksum does not get a valid shard.
    edited[76:108] = blake3.blake3(bytes(edited[:76]) + bytes(edited[108:])).digest()
    with pytest.raises(ShardError, match="checksum mismatch"):
        verify_shard(KEY, bytes(edited))


def test_forged_checksums_still_fail_authentication() -> None:
    """Even a writer holding the shard key cannot change the object header past the AEAD."""
    data = os.urandom(200)
    shards = _encode(data, 2, 2)
    shard_key = codec._subkey(KEY, codec._CONTEXT_SHARD_KEY)
    forged = []
    for shard in shards:
        edited = bytearray(shard)
        edited[_offset_of_salt()] ^= 1
        edited[76:108] = blake3.blake3(bytes(edited[:76]) + bytes(edited[108:]), key=shard_key).digest()
        forged.append(bytes(edited))
    with pytest.raises(ShardError, match="fails authentication although its shards verify"):
        decode(KEY, forged)


def test_random_garbage_never_decodes() -> None:
    rng = random.Random(7)
    for _ in range(200):
        garbage = [rng.randbytes(rng.randrange(0, 300)) for _ in range(3)]
        with pytest.raises(ShardError):
            decode(KEY, garbage)


def _offset_of_salt() -> int:
    return len(MAGIC) + 4 + 32


# --- argument checks ------------------------------------------------------------------------


@pytest.mark.parametrize(("k", "n"), [(0, 1), (2, 1), (1, 33), (33, 33), (-1, 3)])
def test_params_are_validated(k: int, n: int) -> None:
    with pytest.raises(InputError, match="1 <= k <= n <= 32"):
        CodecParams(k, n)


def test_params_must_be_integers() -> None:
    with pytest.raises(InputError, match="integer"):
        CodecParams(True, 3)
    assert str(CodecParams(3, 5)) == "3-of-5"


def test_bad_arguments() -> None:
    params = CodecParams(2, 3)
    with pytest.raises(InputError, match="32 bytes, got 31"):
        encode(KEY[:31], bytes(32), b"x", params)
    with pytest.raises(InputError, match="object id must be 32 bytes"):
        encode(KEY, bytes(31), b"x", params)
    with pytest.raises(InputError, match="zstd level"):
        encode(KEY, bytes(32), b"x", params, level=0)
    with pytest.raises(InputError, match="CodecParams"):
        encode(KEY, bytes(32), b"x", (2, 3))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="repository key must be bytes"):
        decode("k" * 32, [])  # type: ignore[arg-type]
    with pytest.raises(InputError, match="slots must be non-negative"):
        decode(KEY, {-1: b"x"})
    with pytest.raises(InputError, match="slots must be non-negative"):
        decode(KEY, {"a": b"x", 0: b"y"})  # type: ignore[dict-item]
    with pytest.raises(InputError, match="shard 1 must be bytes or None, not str"):
        decode(KEY, [b"x", "y"])  # type: ignore[list-item]
    with pytest.raises(InputError, match="mapping"):
        repair(KEY, [b"x"], params)  # type: ignore[arg-type]
    assert issubclass(ShardError, LifeboatError)


def test_hostile_object_size_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codec, "MAX_OBJECT_BYTES", 1000)
    with pytest.raises(InputError, match="1001 bytes; the largest the store takes is 1000"):
        encode(KEY, bytes(32), bytes(1001), CodecParams(1, 1))


def test_empty_input() -> None:
    with pytest.raises(ShardError, match=r"^0 of 0 shards valid, need at least 1$"):
        decode(KEY, [])
    with pytest.raises(
        ShardError, match=r"^0 of 2 shards valid, need at least 1: shard 0: missing; shard 1: missing$"
    ):
        decode(KEY, [None, None])
    assert repair(KEY, dict(enumerate(_encode(b"ok", 2, 3))), CodecParams(2, 3)) == {}


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(min_size=0, max_size=3000),
    picked=st.sets(st.integers(min_value=0, max_value=4), min_size=3, max_size=5),
    compressible=st.booleans(),
)
def test_decode_verified_gives_back_the_object_from_any_k(
    data: bytes, picked: set[int], compressible: bool
) -> None:
    if compressible:
        data = data[:50] * 40
    object_id = codec.content_id(KEY, data)
    shards = codec.encode(KEY, object_id, data, codec.CodecParams(3, 5))
    verified = {index: (codec.verify_shard(KEY, shards[index]), shards[index]) for index in picked}
    assert bytes(codec.decode_verified(KEY, verified)) == data


def test_decode_verified_refuses_mixed_misplaced_or_too_few_shards() -> None:
    data = os.urandom(5000)
    object_id = codec.content_id(KEY, data)
    params = codec.CodecParams(3, 5)
    one, other = codec.encode(KEY, object_id, data, params), codec.encode(KEY, object_id, data, params)
    info = {index: codec.verify_shard(KEY, one[index]) for index in range(5)}
    with pytest.raises(ShardError, match="different encodings"):
        codec.decode_verified(
            KEY,
            {0: (info[0], one[0]), 1: (info[1], one[1]), 2: (codec.verify_shard(KEY, other[2]), other[2])},
        )
    with pytest.raises(ShardError, match="another index"):
        codec.decode_verified(KEY, {0: (info[0], one[0]), 1: (info[1], one[1]), 3: (info[2], one[2])})
    with pytest.raises(ShardError, match="need 3"):
        codec.decode_verified(KEY, {0: (info[0], one[0]), 1: (info[1], one[1])})
    # A body changed after its checksum was verified still fails: decryption authenticates it.
    damaged = bytearray(one[1])
    damaged[-1] ^= 1
    with pytest.raises(ShardError, match="fails authentication"):
        codec.decode_verified(KEY, {0: (info[0], one[0]), 1: (info[1], bytes(damaged)), 2: (info[2], one[2])})


@pytest.mark.parametrize("length", [0, 1, 15, 16, 17, 47, 48, 49, 4096, 4097])
def test_the_tag_may_straddle_blocks(length: int) -> None:
    # 3 blocks of ceil((length + 16) / 3) bytes: for these lengths the 16-byte tag starts in
    # every position relative to the block boundaries, padding included.
    data = os.urandom(length)
    object_id = codec.content_id(KEY, data)
    shards = codec.encode(KEY, object_id, data, codec.CodecParams(3, 5), level=1)
    assert codec.decode(KEY, [*shards[:3], None, None]) == data
    assert codec.decode(KEY, [None, None, *shards[2:]]) == data


def test_consume_empties_the_shards_only_once_decrypted() -> None:
    data = os.urandom(3000)
    object_id = codec.content_id(KEY, data)
    shards = codec.encode(KEY, object_id, data, codec.CodecParams(3, 5))
    given_shards = dict(enumerate(shards))
    assert codec.decode(KEY, given_shards, consume=True) == data
    assert given_shards == {}
    as_list: list[bytes | None] = list(shards)
    assert codec.decode(KEY, as_list, consume=True, as_buffer=True) == data
    assert as_list == [None] * 5
    too_few: dict[int, bytes] = {0: shards[0], 1: shards[1]}
    with pytest.raises(ShardError):
        codec.decode(KEY, too_few, consume=True)
    assert set(too_few) == {0, 1}  # a failed decode leaves them to the caller


def test_large_incompressible_objects_skip_compression_but_mixed_ones_do_not() -> None:
    params = codec.CodecParams(3, 5)
    random_data = os.urandom(2 << 20)
    shards = codec.encode(KEY, codec.content_id(KEY, random_data), random_data, params)
    assert not codec.inspect_shard(shards[0]).compressed
    # Compressible bytes only in one sampled place (the end): still compressed.
    mixed = random_data[: -(200 << 10)] + bytes(200 << 10)
    shards = codec.encode(KEY, codec.content_id(KEY, mixed), mixed, params)
    assert codec.inspect_shard(shards[0]).compressed
    assert codec.decode(KEY, shards) == mixed
