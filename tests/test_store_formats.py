"""Tests of the store's pure formats: key files, config, packs and indexes."""

from __future__ import annotations

import base64
import contextlib
import json
import struct
from collections.abc import Callable
from typing import Any

import blake3
import pyfastcdc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from lifeboat.errors import InputError
from lifeboat.store import config as config_module
from lifeboat.store import keyfile
from lifeboat.store.config import (
    CONFIG_KEY,
    CONTEXT_CHUNKER,
    CONTEXT_CONFIG_MAC,
    CONTEXT_SIGNING,
    MAX_CONFIG_BYTES,
    ChunkerParams,
    RepoConfig,
    chunker_seed,
    derive_key,
    encode_config,
    parse_config,
    signing_seed,
    verify_config,
)
from lifeboat.store.errors import FormatError, RepositoryError, RepositoryKeyError
from lifeboat.store.index import (
    INDEX_HEADER_BYTES,
    INDEX_MAGIC,
    INDEX_PACK_BYTES,
    BlobEntry,
    BlobLocation,
    Index,
    PackEntry,
    decode_index,
    decode_index_tables,
    encode_index,
    encode_index_tables,
    index_entry,
)
from lifeboat.store.keyfile import (
    DEFAULT_KDF,
    MAX_KEY_FILE_BYTES,
    TEST_KDF,
    KdfParams,
    parse_key_file,
    unwrap_master_key,
    wrap_master_key,
)
from lifeboat.store.packs import (
    BLOB_DATA,
    BLOB_TREE,
    BLOB_TYPES,
    PACK_ENTRY_BYTES,
    PACK_MAGIC,
    PACK_TRAILER_BYTES,
    PackBlob,
    blob_view,
    build_pack,
    parse_pack,
)

MASTER = bytes(range(32))
OTHER_MASTER = bytes(range(1, 33))
REPO = "0123456789abcdef0123456789abcdef"
CREATED = "2026-11-24T05:00:00Z"
PASSPHRASE = "correct horse battery staple"

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ids = st.binary(min_size=32, max_size=32)
blob_types = st.sampled_from([BLOB_DATA, BLOB_TREE])


# --- key files ------------------------------------------------------------------------------


def _wrap(passphrase: str = PASSPHRASE, kdf: KdfParams = TEST_KDF) -> bytes:
    return wrap_master_key(MASTER, passphrase, REPO, kdf=kdf, created=CREATED)[1]


def _edit(data: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    body = json.loads(data)
    change(body)
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode() + b"\n"


@pytest.fixture(scope="module")
def key_file() -> bytes:
    return _wrap()


def test_key_file_round_trip(key_file: bytes) -> None:
    assert unwrap_master_key(key_file, PASSPHRASE) == MASTER
    assert unwrap_master_key(key_file, PASSPHRASE, repository=REPO) == MASTER


def test_key_file_layout() -> None:
    name, data = wrap_master_key(MASTER, PASSPHRASE, REPO, kdf=TEST_KDF, created=CREATED)
    assert len(name) == 32 and int(name, 16) >= 0 and name == name.lower()
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    body = json.loads(data)
    assert data[:-1] == json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    assert set(body) == {"format", "version", "repository", "created", "kdf", "cipher", "nonce", "wrapped"}
    assert body["format"] == "lifeboat-repository-key" and body["version"] == 1
    assert body["kdf"] == {
        "name": "argon2id",
        "salt": body["kdf"]["salt"],
        "iterations": 1,
        "memory_kib": 64,
        "lanes": 1,
    }
    assert len(base64.b64decode(body["kdf"]["salt"])) == 16
    assert len(base64.b64decode(body["nonce"])) == 12
    assert len(base64.b64decode(body["wrapped"])) == 48
    assert MASTER.hex() not in data.decode() and PASSPHRASE not in data.decode()
    # Fresh salt, nonce and name every time.
    other_name, other = wrap_master_key(MASTER, PASSPHRASE, REPO, kdf=TEST_KDF, created=CREATED)
    assert other_name != name and other != data


def test_parse_key_file_needs_no_passphrase(key_file: bytes) -> None:
    info = parse_key_file(key_file)
    assert (info.repository, info.created, info.kdf) == (REPO, CREATED, TEST_KDF)
    assert (len(info.salt), len(info.nonce), len(info.wrapped)) == (16, 12, 48)


def test_wrong_passphrase(key_file: bytes) -> None:
    with pytest.raises(RepositoryKeyError, match=f"wrong passphrase for repository {REPO}"):
        unwrap_master_key(key_file, PASSPHRASE + "!")
    with pytest.raises(RepositoryKeyError, match="wrong passphrase"):
        unwrap_master_key(key_file, "")


def test_key_file_of_another_repository(key_file: bytes) -> None:
    with pytest.raises(RepositoryError, match=f"belongs to repository {REPO}") as caught:
        unwrap_master_key(key_file, PASSPHRASE, repository="f" * 32)
    assert not isinstance(caught.value, RepositoryKeyError)


def test_passphrase_is_nfc_normalised() -> None:
    composed, decomposed = "caf\u00e9 \u00c5ngstr\u00f6m", "cafe\u0301 A\u030angstro\u0308m"
    assert composed != decomposed
    assert unwrap_master_key(_wrap(composed), decomposed) == MASTER


def test_wrap_refuses_bad_input() -> None:
    with pytest.raises(InputError, match="master key must be 32 bytes"):
        wrap_master_key(MASTER[:31], PASSPHRASE, REPO, kdf=TEST_KDF, created=CREATED)
    with pytest.raises(InputError, match="must not be empty"):
        wrap_master_key(MASTER, "", REPO, kdf=TEST_KDF, created=CREATED)
    with pytest.raises(InputError, match="repository id"):
        wrap_master_key(MASTER, PASSPHRASE, REPO.upper(), kdf=TEST_KDF, created=CREATED)
    with pytest.raises(InputError, match="created"):
        wrap_master_key(MASTER, PASSPHRASE, REPO, kdf=TEST_KDF, created="")


def test_kdf_params_bounds() -> None:
    assert (DEFAULT_KDF.iterations, DEFAULT_KDF.memory_kib, DEFAULT_KDF.lanes) == (3, 65536, 4)
    KdfParams(iterations=100, memory_kib=4 * 1024 * 1024, lanes=64)
    KdfParams(iterations=1, memory_kib=8, lanes=1)
    for bad in (
        {"iterations": 0},
        {"iterations": 101},
        {"lanes": 0},
        {"lanes": 65},
        {"memory_kib": 31},  # 4 lanes need 32 KiB
        {"memory_kib": 4 * 1024 * 1024 + 1},
        {"iterations": True},
        {"memory_kib": 1024.0},
    ):
        with pytest.raises(InputError, match="KDF"):
            KdfParams(**bad)


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = body
        for part in parents:
            target = target[part]
        target[last] = value

    return change


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = body
        for part in parents:
            target = target[part]
        del target[last]

    return change


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# Fields outside the ciphertext's associated data (nonce, wrapped) or bound into it (everything
# else): a well-formed change to the latter shows up as a failed decryption.
TAMPERED_KEY_FILES: list[tuple[str, Callable[[dict[str, Any]], None], type[Exception], str]] = [
    ("format", _set("format", "lifeboat-home"), FormatError, "not a Lifeboat repository key file"),
    ("version 0", _set("version", 0), FormatError, "'version' is 0"),
    ("version text", _set("version", "1"), FormatError, "'version'"),
    ("newer version", _set("version", 2), FormatError, "version 2 is newer .* upgrade Lifeboat"),
    ("repository malformed", _set("repository", "XYZ"), FormatError, "'repository'"),
    ("repository swapped", _set("repository", "f" * 32), RepositoryKeyError, "wrong passphrase .* altered"),
    ("created type", _set("created", 5), FormatError, "'created'"),
    ("created changed", _set("created", "2030-01-01T00:00:00Z"), RepositoryKeyError, "altered"),
    ("cipher", _set("cipher", "chacha20-poly1305"), FormatError, "'cipher' names 'chacha20-poly1305'"),
    ("kdf name", _set("kdf.name", "scrypt"), FormatError, "'kdf.name' names 'scrypt'"),
    ("kdf type", _set("kdf", [1]), FormatError, "'kdf' is not an object"),
    ("kdf cheaper", _set("kdf.memory_kib", 32), RepositoryKeyError, "altered"),
    ("kdf iterations text", _set("kdf.iterations", "1"), FormatError, "'kdf.iterations' is not an integer"),
    ("salt short", _set("kdf.salt", _b64(bytes(15))), FormatError, "'kdf.salt' holds 15 bytes, expected 16"),
    ("salt changed", _set("kdf.salt", _b64(bytes(16))), RepositoryKeyError, "altered"),
    ("salt not base64", _set("kdf.salt", "!!!!"), FormatError, "'kdf.salt' is not valid base64"),
    ("nonce long", _set("nonce", _b64(bytes(13))), FormatError, "'nonce' holds 13 bytes, expected 12"),
    ("nonce changed", _set("nonce", _b64(bytes(12))), RepositoryKeyError, "wrong passphrase"),
    ("nonce urlsafe", _set("nonce", "____________----"), FormatError, "'nonce' is not valid base64"),
    ("nonce number", _set("nonce", 12), FormatError, "'nonce' is not a base64 string"),
    ("wrapped short", _set("wrapped", _b64(bytes(32))), FormatError, "'wrapped' holds 32 bytes, expected 48"),
    ("wrapped changed", _set("wrapped", _b64(bytes(48))), RepositoryKeyError, "wrong passphrase"),
    ("missing nonce", _drop("nonce"), FormatError, "key file lacks 'nonce'"),
    ("missing lanes", _drop("kdf.lanes"), FormatError, "'kdf' lacks 'lanes'"),
    ("unknown field", _set("comment", "hi"), FormatError, "unknown field 'comment'"),
    ("unknown kdf field", _set("kdf.pepper", "x"), FormatError, "unknown field 'pepper'"),
]


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [case[1:] for case in TAMPERED_KEY_FILES],
    ids=[case[0] for case in TAMPERED_KEY_FILES],
)
def test_tampered_key_file(
    key_file: bytes, change: Callable[[dict[str, Any]], None], error: type[Exception], message: str
) -> None:
    tampered = _edit(key_file, change)
    with pytest.raises(error, match=message):
        unwrap_master_key(tampered, PASSPHRASE)


def test_non_canonical_base64_is_refused(key_file: bytes) -> None:
    body = json.loads(key_file)
    nonce = body["nonce"]  # 12 bytes: 16 characters, no padding, no spare bits
    salt = body["kdf"]["salt"]  # 16 bytes: "==" padding, 4 spare bits in the last character
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet.index(salt[-3])
    variant = salt[:-3] + alphabet[last ^ 1] + "=="
    assert base64.b64decode(variant) == base64.b64decode(salt)
    with pytest.raises(FormatError, match="'kdf.salt' is not canonical base64"):
        parse_key_file(_edit(key_file, _set("kdf.salt", variant)))
    with pytest.raises(FormatError, match="'nonce' is not valid base64"):
        parse_key_file(_edit(key_file, _set("nonce", nonce + "\n")))


def test_key_file_not_json_or_oversized(key_file: bytes) -> None:
    for junk in (b"", b"\xff\xfe", b"[1, 2]", b"{" * 5000, b'{"format": 1e999999}', b"9" * 5000):
        with pytest.raises(FormatError):
            parse_key_file(junk)
    padded = key_file[:-2] + b" " * MAX_KEY_FILE_BYTES + key_file[-2:]
    with pytest.raises(FormatError, match="over the 65536-byte limit"):
        parse_key_file(padded)
    duplicated = key_file.replace(b'"cipher":', b'"cipher":"x","cipher":', 1)
    with pytest.raises(FormatError, match="repeats the field 'cipher'"):
        parse_key_file(duplicated)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("memory_kib", 4 * 1024 * 1024 + 1, "memory_kib 4194305 is outside"),
        ("memory_kib", 1 << 40, "memory_kib"),
        ("memory_kib", 7, "memory_kib 7 is outside 8"),
        ("iterations", 101, "iterations 101 is outside 1..100"),
        ("iterations", 10**9, "iterations"),
        ("iterations", 0, "iterations 0"),
        ("lanes", 65, "lanes 65 is outside 1..64"),
        ("lanes", -1, "lanes -1"),
    ],
)
def test_hostile_kdf_refused_before_argon2(
    key_file: bytes, monkeypatch: pytest.MonkeyPatch, field: str, value: int, message: str
) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("Argon2id ran on hostile parameters")

    monkeypatch.setattr(keyfile, "Argon2id", forbidden)
    hostile = _edit(key_file, _set(f"kdf.{field}", value))
    with pytest.raises(FormatError, match=message):
        unwrap_master_key(hostile, PASSPHRASE)


# --- config ---------------------------------------------------------------------------------


def _config(store: int = 0, **changes: Any) -> RepoConfig:
    fields: dict[str, Any] = {
        "repository": REPO,
        "k": 3,
        "n": 5,
        "store": store,
        "created": CREATED,
        "chunker": ChunkerParams(),
        "pack_size": 16 << 20,
        "signing_key": SigningKey(signing_seed(MASTER)).verify_key.encode(),
    }
    fields.update(changes)
    return RepoConfig(**fields)


def test_config_round_trip() -> None:
    config = _config(2)
    data = encode_config(config, MASTER)
    assert CONFIG_KEY == "config"
    assert data.endswith(b"\n") and len(data) < MAX_CONFIG_BYTES
    body = json.loads(data)
    assert data[:-1] == json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    assert body["chunker"] == {"algorithm": "fastcdc-2020", "min": 524288, "avg": 524288, "max": 8388608}
    assert (body["format"], body["version"], body["store"]) == ("lifeboat-repository", 1, 2)
    assert body["signing_key"] == config.signing_key.hex()
    assert parse_config(data) == config
    assert verify_config(data, MASTER) == config
    # The MAC is over canonical JSON of every other field, keyed by the derived MAC key.
    mac = body.pop("mac")
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    assert mac == blake3.blake3(canonical, key=derive_key(MASTER, CONTEXT_CONFIG_MAC)).hexdigest()


def test_config_per_store() -> None:
    config = _config(0)
    other = config.for_store(4)
    assert other.store == 4 and other.repository == config.repository
    first, second = encode_config(config, MASTER), encode_config(other, MASTER)
    assert json.loads(first)["mac"] != json.loads(second)["mac"]
    assert verify_config(second, MASTER).store == 4
    for bad in (5, -1, True):
        with pytest.raises(InputError, match="store number"):
            config.for_store(bad)


def test_config_from_another_key_is_refused() -> None:
    data = encode_config(_config(1), OTHER_MASTER)
    assert parse_config(data) == _config(1)  # readable before unlocking
    with pytest.raises(
        RepositoryKeyError, match="does not match this key: store from another repository or tampered"
    ):
        verify_config(data, MASTER)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("store", 1),
        ("k", 2),
        ("pack_size", 32 << 20),
        ("created", "2020-01-01T00:00:00Z"),
        ("chunker.max", 1 << 20),
    ],
)
def test_tampered_config_fails_mac(field: str, value: object) -> None:
    tampered = _edit(encode_config(_config(0), MASTER), _set(field, value))
    parse_config(tampered)
    with pytest.raises(RepositoryKeyError, match="does not match this key"):
        verify_config(tampered, MASTER)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set("format", "lifeboat-repository-key"), "not a Lifeboat repository config"),
        (_set("version", 2), "config version 2 is newer .* upgrade Lifeboat"),
        (_set("version", 0), "'version' is 0"),
        (_set("repository", REPO.upper()), "'repository'"),
        (_set("k", 6), r"'k' and 'n' \(6-of-5\)"),
        (_set("n", 33), "'k' and 'n'"),
        (_set("k", True), "'k' is not an integer"),
        (_set("store", 5), r"'store' \(5\) is outside 0..4"),
        (_set("store", "0"), "'store' is not an integer"),
        (_set("created", ""), "'created'"),
        (_set("pack_size", (1 << 20) - 1), "'pack_size'"),
        (_set("pack_size", (256 << 20) + 1), "'pack_size'"),
        (_set("signing_key", "ab" * 31), "'signing_key'"),
        (_set("mac", "00"), "'mac'"),
        (_drop("mac"), "config lacks 'mac'"),
        (_set("extra", 1), "unknown field 'extra'"),
        (_set("chunker", 7), "'chunker' is not an object"),
        (_set("chunker.algorithm", "rabin"), "'chunker.algorithm' names 'rabin'"),
        (_set("chunker.min", 32), "chunker min_size 32 is outside 64..1048576"),
        (_set("chunker.avg", 8 << 20), "chunker avg_size"),
        (_set("chunker.max", 32 << 20), "chunker max_size"),
        (_set("chunker.max", 4096), "min <= avg <= max"),
        (_set("chunker.avg", 1.5), "'chunker.avg' is not an integer"),
        (_drop("chunker.avg"), "'chunker' lacks 'avg'"),
    ],
)
def test_malformed_config(change: Callable[[dict[str, Any]], None], message: str) -> None:
    malformed = _edit(encode_config(_config(0), MASTER), change)
    with pytest.raises(FormatError, match=message):
        parse_config(malformed)


def test_config_not_json_or_oversized() -> None:
    for junk in (b"", b"null", b"\x00", b"[" * 10000):
        with pytest.raises(FormatError):
            parse_config(junk)
    with pytest.raises(FormatError, match="over the 65536-byte limit"):
        parse_config(b" " * (MAX_CONFIG_BYTES + 1))


def test_repo_config_validation() -> None:
    for changes, message in (
        ({"k": 0}, "1 <= k <= n"),
        ({"k": 6}, "1 <= k <= n"),
        ({"n": 33, "k": 1}, "1 <= k <= n <= 32"),
        ({"store": 5}, "store number 5"),
        ({"pack_size": 1000}, "pack_size"),
        ({"signing_key": bytes(31)}, "signing_key"),
        ({"repository": "abc"}, "repository id"),
        ({"created": ""}, "created"),
    ):
        with pytest.raises(InputError, match=message):
            _config(**changes)
    with pytest.raises(InputError, match="min <= avg <= max"):
        ChunkerParams(min_size=1 << 20, avg_size=1 << 19)
    with pytest.raises(InputError, match="max_size"):
        ChunkerParams(max_size=32 << 20)


def test_derived_keys() -> None:
    for context in (CONTEXT_CONFIG_MAC, CONTEXT_SIGNING, CONTEXT_CHUNKER):
        assert derive_key(MASTER, context) == blake3.blake3(MASTER, derive_key_context=context).digest()
    keys = {derive_key(MASTER, context) for context in (CONTEXT_CONFIG_MAC, CONTEXT_SIGNING, CONTEXT_CHUNKER)}
    assert len(keys) == 3 and all(len(key) == 32 for key in keys)
    assert signing_seed(MASTER) == derive_key(MASTER, CONTEXT_SIGNING)
    assert signing_seed(MASTER) != signing_seed(OTHER_MASTER)
    with pytest.raises(InputError, match="master key"):
        derive_key(MASTER[:16], CONTEXT_SIGNING)


def test_chunker_seed_fits_pyfastcdc() -> None:
    seed = chunker_seed(MASTER)
    assert seed == int.from_bytes(derive_key(MASTER, CONTEXT_CHUNKER)[:8], "big") & ((1 << 63) - 1)
    assert 0 < seed < 1 << 63 and seed != chunker_seed(OTHER_MASTER)
    params = ChunkerParams()
    data = bytes(range(256)) * 16384
    for key in (MASTER, OTHER_MASTER, bytes(32), b"\xff" * 32):
        cdc = pyfastcdc.FastCDC(
            params.avg_size, min_size=params.min_size, max_size=params.max_size, seed=chunker_seed(key)
        )
        assert sum(chunk.length for chunk in cdc.cut_buf(data)) == len(data)


def test_chunker_seed_zero_maps_to_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_module, "derive_key", lambda key, context: b"\x80" + bytes(31))
    assert chunker_seed(MASTER) == 1


# --- packs ----------------------------------------------------------------------------------

pack_contents = st.tuples(blob_types, st.lists(st.tuples(ids, st.binary(max_size=200)), max_size=12)).map(
    lambda pair: [(pair[0], blob_id, data) for blob_id, data in dict(pair[1]).items()]
)


@SETTINGS
@given(pack_contents)
def test_pack_round_trip(blobs: list[tuple[int, bytes, bytes]]) -> None:
    pack = build_pack(blobs)
    table_and_trailer = len(blobs) * PACK_ENTRY_BYTES + PACK_TRAILER_BYTES
    assert len(pack) == sum(len(data) for _, _, data in blobs) + table_and_trailer
    assert pack.endswith(PACK_MAGIC + b"\x01")
    parsed = parse_pack(pack)
    assert [(blob.type, blob.id) for blob in parsed] == [(t, i) for t, i, _ in blobs]
    assert [bytes(blob_view(pack, blob)) for blob in parsed] == [data for _, _, data in blobs]
    assert parse_pack(memoryview(pack)) == parsed


@SETTINGS
@given(pack_contents, st.data())
def test_damaged_pack_raises_only_format_error(
    blobs: list[tuple[int, bytes, bytes]], data: st.DataObject
) -> None:
    pack = bytearray(build_pack(blobs))
    if data.draw(st.booleans(), label="truncate"):
        damaged = bytes(pack[: data.draw(st.integers(0, len(pack) - 1), label="length")])
    else:
        for _ in range(data.draw(st.integers(1, 4), label="flips")):
            position = data.draw(st.integers(0, len(pack) - 1), label="position")
            pack[position] ^= 1 << data.draw(st.integers(0, 7), label="bit")
        damaged = bytes(pack)
    try:
        parsed = parse_pack(damaged)
    except FormatError:
        return
    area = sum(blob.length for blob in parsed)
    assert area == len(damaged) - len(parsed) * PACK_ENTRY_BYTES - PACK_TRAILER_BYTES
    for blob in parsed:
        assert len(blob_view(damaged, blob)) == blob.length


def test_pack_layout() -> None:
    first, second = bytes([1]) * 32, bytes([2]) * 32
    pack = build_pack([(BLOB_TREE, first, b"abc"), (BLOB_TREE, second, memoryview(b"de"))])
    assert pack == (
        b"abcde"
        + b"\x01\x00\x00\x00\x03"
        + first
        + b"\x01\x00\x00\x00\x02"
        + second
        + b"\x00\x00\x00\x02LBPACK\x01"
    )
    assert parse_pack(pack) == [PackBlob(BLOB_TREE, first, 0, 3), PackBlob(BLOB_TREE, second, 3, 2)]
    empty = build_pack([])
    assert empty == b"\x00\x00\x00\x00LBPACK\x01" and parse_pack(empty) == []


def test_malformed_packs() -> None:
    good = bytes(build_pack([(BLOB_DATA, bytes(32), b"x" * 10)]))
    cases = [
        (good[:10], "truncated pack: 10 bytes"),
        (good[:-7] + b"LBPACX\x01", "not a Lifeboat pack"),
        (good[:-1] + b"\x02", "newer Lifeboat .* upgrade Lifeboat"),
        (good[:-1] + b"\x00", "version 0 was never used"),
        (good[:-11] + struct.pack(">I", 2) + good[-7:], "claims 2 blobs, too many"),
        (good[:-11] + struct.pack(">I", 0xFFFFFFFF) + good[-7:], "too many"),
        (b"y" + good, "add up to 10 bytes, but its blob area is 11"),
        (good[1:], "add up to 10 bytes, but its blob area is 9"),
        (good[:10] + b"\x07" + good[11:], "entry 0 has unknown blob type 7"),
    ]
    for data, message in cases:
        with pytest.raises(FormatError, match=message):
            parse_pack(data)


def test_build_pack_refuses_bad_blobs() -> None:
    with pytest.raises(InputError, match="unknown blob type"):
        build_pack([(9, bytes(32), b"")])
    with pytest.raises(InputError, match="32 bytes"):
        build_pack([(BLOB_DATA, bytes(31), b"")])
    with pytest.raises(InputError, match="appears twice"):
        build_pack([(BLOB_DATA, bytes(32), b"a"), (BLOB_DATA, bytes(32), b"b")])
    with pytest.raises(InputError, match="one type"):
        build_pack([(BLOB_DATA, bytes(32), b"a"), (BLOB_TREE, bytes([1]) * 32, b"b")])


def test_blob_view_bounds() -> None:
    pack = build_pack([(BLOB_DATA, bytes(32), b"hello")])
    assert bytes(blob_view(pack, BlobLocation(bytes(32), BLOB_DATA, 1, 3))) == b"ell"
    for offset, length in ((0, 6), (5, 1), (-1, 2), (0, 5 + PACK_ENTRY_BYTES)):
        with pytest.raises(FormatError, match="lies outside"):
            blob_view(pack, PackBlob(BLOB_DATA, bytes(32), offset, length))


# --- indexes --------------------------------------------------------------------------------

u32 = st.integers(0, (1 << 32) - 1)
blob_entries = st.builds(BlobEntry, type=blob_types, id=ids, offset=u32, length=u32)
pack_entries = st.builds(
    PackEntry, pack=ids, missing=u32, blobs=st.lists(blob_entries, max_size=6).map(tuple)
)
index_contents = st.lists(pack_entries, max_size=6, unique_by=lambda entry: entry.pack)


@SETTINGS
@given(index_contents)
def test_index_round_trip(packs: list[PackEntry]) -> None:
    data = encode_index(packs)
    assert data.startswith(INDEX_MAGIC + b"\x01")
    assert len(data) == 12 + sum(40 + 41 * len(entry.blobs) for entry in packs)
    assert decode_index(data) == packs
    assert decode_index(memoryview(data)) == packs


@SETTINGS
@given(index_contents, st.data())
def test_damaged_index_raises_only_format_error(packs: list[PackEntry], data: st.DataObject) -> None:
    index = bytearray(encode_index(packs))
    if data.draw(st.booleans(), label="truncate"):
        damaged = bytes(index[: data.draw(st.integers(0, len(index) - 1), label="length")])
    else:
        for _ in range(data.draw(st.integers(1, 4), label="flips")):
            position = data.draw(st.integers(0, len(index) - 1), label="position")
            index[position] ^= 1 << data.draw(st.integers(0, 7), label="bit")
        damaged = bytes(index)
    try:
        decoded = decode_index(damaged)
    except FormatError:
        return
    assert encode_index(decoded) == damaged


@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes_never_crash_decoders(data: bytes) -> None:
    with contextlib.suppress(FormatError):
        parse_pack(data)
    with contextlib.suppress(FormatError):
        decode_index(data)
    with contextlib.suppress(FormatError):
        decode_index(INDEX_MAGIC + b"\x01" + data)


def test_index_layout() -> None:
    blob = BlobEntry(BLOB_TREE, b"b" * 32, 7, 9)
    data = encode_index([PackEntry(b"p" * 32, 0b101, (blob,))])
    assert data == (
        b"LBINDEX\x01\x00\x00\x00\x01"
        + b"p" * 32
        + b"\x00\x00\x00\x05\x00\x00\x00\x01"
        + b"\x01\x00\x00\x00\x07\x00\x00\x00\x09"
        + b"b" * 32
    )
    assert encode_index([]) == b"LBINDEX\x01\x00\x00\x00\x00" and decode_index(encode_index([])) == []


def test_malformed_indexes() -> None:
    good = encode_index([PackEntry(b"p" * 32, 0, (BlobEntry(BLOB_DATA, b"b" * 32, 0, 1),))])
    twice = encode_index([PackEntry(b"p" * 32, 0, ()), PackEntry(b"q" * 32, 0, ())]).replace(
        b"q" * 32, b"p" * 32
    )
    cases = [
        (b"", "not a Lifeboat index"),
        (b"LBPACK\x01", "not a Lifeboat index"),
        (b"LBINDEX\x02", "newer Lifeboat .* upgrade Lifeboat"),
        (b"LBINDEX\x00\x00\x00\x00\x00", "version 0 was never used"),
        (b"LBIN", "truncated index: 4 bytes"),
        (b"LBINDEX\x01\x00\x00", "truncated index"),
        (good[:8] + b"\xff\xff\xff\xff" + good[12:], "claims 4294967295 packs, too many"),
        (good[:48] + b"\x00\x01\x00\x00" + good[52:], "claims 65536 blobs"),
        (good[:-1], "pack 0 claims 1 blobs"),
        (good + b"\x00", "1 trailing bytes"),
        (good[:52] + b"\x09" + good[53:], "unknown blob type 9"),
        (twice, "lists pack 7070.* twice"),
    ]
    for data, message in cases:
        with pytest.raises(FormatError, match=message):
            decode_index(data)


def test_encode_index_refuses_bad_entries() -> None:
    blob = BlobEntry(BLOB_DATA, bytes(32), 0, 1)
    for packs, message in (
        ([PackEntry(bytes(31), 0, ())], "pack id must be 32 bytes"),
        ([PackEntry(bytes(32), 0, ()), PackEntry(bytes(32), 0, ())], "listed twice"),
        ([PackEntry(bytes(32), -1, ())], "missing-shard mask"),
        ([PackEntry(bytes(32), 0, (BlobEntry(5, bytes(32), 0, 1),))], "unknown blob type"),
        ([PackEntry(bytes(32), 0, (BlobEntry(BLOB_DATA, bytes(3), 0, 1),))], "blob id must be 32 bytes"),
        ([PackEntry(bytes(32), 0, (BlobEntry(BLOB_DATA, bytes(32), 1 << 32, 1),))], "blob offset"),
        ([PackEntry(bytes(32), 0, (blob, BlobEntry(BLOB_DATA, bytes(32), 0, -5)))], "blob length"),
    ):
        with pytest.raises(InputError, match=message):
            encode_index(packs)


def test_index_union() -> None:
    shared, only_a, only_b = b"s" * 32, b"a" * 32, b"b" * 32
    pack_a = PackEntry(b"A" * 32, 0, (BlobEntry(BLOB_DATA, shared, 0, 4), BlobEntry(BLOB_DATA, only_a, 4, 2)))
    pack_b = PackEntry(
        b"B" * 32, 0b10, (BlobEntry(BLOB_DATA, only_b, 0, 3), BlobEntry(BLOB_DATA, shared, 3, 4))
    )
    index = Index()
    assert len(index) == 0 and index.lookup(shared) is None and shared not in index
    index.add(b"1" * 32, [pack_a])
    index.add(b"2" * 32, iter([pack_b]))
    assert len(index) == 3
    assert index.lookup(shared) == BlobLocation(b"A" * 32, BLOB_DATA, 0, 4)  # first added wins
    assert index.lookup(only_b) == BlobLocation(b"B" * 32, BLOB_DATA, 0, 3)
    assert shared in index and only_a in index and b"x" * 32 not in index
    assert "not bytes" not in index and bytearray(shared) not in index
    assert dict(index.packs) == {pack_a.pack: pack_a, pack_b.pack: pack_b}
    assert pack_a.size == 6 and pack_b.size == 7
    assert index.index_ids == {b"1" * 32, b"2" * 32}
    assert index.packs_of_index(b"2" * 32) == [pack_b.pack]
    assert index.packs_of_index(b"9" * 32) == []
    assert [blob_id for blob_id, _ in index.blobs()] == [shared, only_a, only_b]
    with pytest.raises(TypeError):
        index.packs[b"C" * 32] = pack_a  # type: ignore[index]

    # A pack listed by a second index (as after prune) keeps its first entry; re-adding an index is a no-op.
    index.add(b"3" * 32, [PackEntry(pack_b.pack, 0, pack_b.blobs)])
    assert index.packs[pack_b.pack].missing == 0b10
    assert index.packs_of_index(b"3" * 32) == [pack_b.pack]
    index.add(b"1" * 32, [PackEntry(b"Z" * 32, 0, ())])
    assert b"Z" * 32 not in index.packs and index.packs_of_index(b"1" * 32) == [pack_a.pack]


def test_index_from_decoded_objects() -> None:
    pack = build_pack([(BLOB_DATA, bytes([i]) * 32, bytes([i]) * (i + 1)) for i in range(5)])
    entry = PackEntry(
        b"P" * 32,
        0,
        tuple(BlobEntry(blob.type, blob.id, blob.offset, blob.length) for blob in parse_pack(pack)),
    )
    index = Index()
    index.add(b"I" * 32, decode_index(encode_index([entry])))
    for i in range(5):
        location = index.lookup(bytes([i]) * 32)
        assert location is not None
        assert bytes(blob_view(pack, location)) == bytes([i]) * (i + 1)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.binary(min_size=32, max_size=32),
            st.integers(min_value=0, max_value=2**32 - 1),
            st.lists(
                st.tuples(
                    st.sampled_from(sorted(BLOB_TYPES)),
                    st.binary(min_size=32, max_size=32) | st.sampled_from([b"s" * 32, b"t" * 32]),
                    st.integers(min_value=0, max_value=2**32 - 1),
                    st.integers(min_value=0, max_value=2**32 - 1),
                ),
                max_size=6,
            ),
        ),
        max_size=5,
        unique_by=lambda pack: pack[0],
    )
)
def test_index_from_tables_is_the_index_from_entries(
    raw: list[tuple[bytes, int, list[tuple[int, bytes, int, int]]]],
) -> None:
    # The compact path (undecoded blob tables, as reload_index adds them) and the PackEntry path
    # (as a writer adds them) give the same lookups, packs and blob order, duplicates included.
    packs = [PackEntry(p, m, tuple(BlobEntry(*blob) for blob in blobs)) for p, m, blobs in raw]
    data = encode_index(packs)
    assert decode_index_tables(data) == [
        (p.pack, p.missing, encode_index([p])[INDEX_HEADER_BYTES + INDEX_PACK_BYTES :]) for p in packs
    ]
    assert encode_index_tables(decode_index_tables(data)) == data
    from_tables, from_entries = Index(), Index()
    from_tables.add_tables(b"i" * 32, decode_index_tables(data))
    from_entries.add(b"i" * 32, decode_index(data))
    assert list(from_tables.blobs()) == list(from_entries.blobs())
    assert dict(from_tables.packs) == dict(from_entries.packs) == {p.pack: p for p in packs}
    for pack in packs:
        for blob in pack.blobs:
            assert from_tables.lookup(blob.id) == from_entries.lookup(blob.id) is not None


def test_encode_index_tables_checks_its_packs() -> None:
    good = index_entry(BLOB_DATA, b"b" * 32, 0, 5)
    assert encode_index_tables([(b"p" * 32, 1, good)]) == encode_index(
        [PackEntry(b"p" * 32, 1, (BlobEntry(BLOB_DATA, b"b" * 32, 0, 5),))]
    )
    for packs, message in (
        ([(b"p" * 31, 0, good)], "a pack id must be 32 bytes"),
        ([(b"p" * 32, 0, good), (b"p" * 32, 0, good)], "listed twice"),
        ([(b"p" * 32, 0, good[:-1])], "is not a list of index entries"),
        ([(b"p" * 32, 0, b"\x09" + good[1:])], "is not a list of index entries"),
        ([(b"p" * 32, 2**32, good)], "missing-shard mask"),
    ):
        with pytest.raises(InputError, match=message):
            encode_index_tables(packs)
