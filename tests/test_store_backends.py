"""The store backends: one conformance suite over every backend, then the wrappers.

The S3 cases run against a real SeaweedFS started once per session (``conftest_seaweedfs``);
each test gets its own key prefix in a shared bucket, so tests do not see each other's objects.
"""

from __future__ import annotations

import errno
import http.server
import os
import random
import socket
import stat
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest_seaweedfs import SECRET_KEY, SeaweedS3, _free_ports, seaweedfs
from lifeboat.errors import StorageError, UsageError
from lifeboat.store.backends import (
    MAX_KEY_LENGTH,
    MAX_SEGMENT_LENGTH,
    Backend,
    BackendUnavailable,
    FaultyBackend,
    InvalidKey,
    LimitedBackend,
    LocalBackend,
    MemoryBackend,
    ObjectNotFound,
    ObjectStoreBackend,
    RetryingBackend,
    StoreError,
    StoreTimeout,
    open_backend,
)

__all__ = ["seaweedfs"]  # the imported fixture is used by name

KINDS = ["memory", "local", "s3"]


@pytest.fixture(params=KINDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A fresh, empty backend of each kind."""
    if request.param == "memory":
        yield MemoryBackend()
    elif request.param == "local":
        yield LocalBackend(tmp_path / "repo", create=True)
    else:
        s3: SeaweedS3 = request.getfixturevalue("seaweedfs")
        yield open_backend(s3.url(s3.buckets[0], f"t-{uuid.uuid4().hex}"))


# -- conformance ---------------------------------------------------------------------------------


def test_is_a_backend(backend: Backend) -> None:
    assert isinstance(backend, Backend)
    assert backend.name


def test_put_get_binary(backend: Backend) -> None:
    data = bytes(range(256)) * 3
    backend.put("data/00/binary", data)
    assert backend.get("data/00/binary") == data
    assert backend.stat("data/00/binary") == len(data)


def test_empty_object(backend: Backend) -> None:
    backend.put("empty", b"")
    assert backend.get("empty") == b""
    assert backend.stat("empty") == 0
    assert backend.list() == ["empty"]


def test_large_object(backend: Backend) -> None:
    data = random.Random(5).randbytes(5 * 1024 * 1024)
    backend.put("big/object", data)
    assert backend.stat("big/object") == len(data)
    assert backend.get("big/object") == data


def test_overwrite(backend: Backend) -> None:
    backend.put("k", b"first version")
    backend.put("k", b"second")
    assert backend.get("k") == b"second"
    assert backend.stat("k") == 6
    assert backend.list() == ["k"]


def test_missing_key(backend: Backend) -> None:
    with pytest.raises(ObjectNotFound) as info:
        backend.get("no/such-key")
    assert "no/such-key" in str(info.value)
    assert backend.name in str(info.value)
    assert isinstance(info.value, StorageError)
    assert backend.stat("no/such-key") is None


def test_delete(backend: Backend) -> None:
    backend.put("a/x", b"1")
    backend.put("a/y", b"2")
    backend.delete("a/x")
    assert backend.stat("a/x") is None
    with pytest.raises(ObjectNotFound):
        backend.get("a/x")
    assert backend.list() == ["a/y"]
    backend.delete("a/x")  # missing is not an error
    backend.delete("never/existed")


def test_list_prefix_and_order(backend: Backend) -> None:
    keys = ["b/x/y", "a/c", "ab", "a-1", "a/b", "A", "_z", "a/b.0"]
    for key in keys:
        backend.put(key, key.encode())
    assert backend.list() == sorted(keys)
    assert backend.list("a") == ["a-1", "a/b", "a/b.0", "a/c", "ab"]
    assert backend.list("a/") == ["a/b", "a/b.0", "a/c"]
    assert backend.list("a/b") == ["a/b", "a/b.0"]
    assert backend.list("b/") == ["b/x/y"]
    assert backend.list("b/x/y") == ["b/x/y"]
    assert backend.list("zz") == []
    assert backend.list("zz/") == []


INVALID_KEYS = [
    "",
    "/abs",
    "a//b",
    "a/",
    "a/../b",
    "..",
    ".",
    ".hidden",
    "a/.tmp",
    "sp ace",
    "caf\u00e9",
    "a\\b",
    "a\x00b",
    "q?x",
    "x" * (MAX_KEY_LENGTH + 1),
    "a/" + "x" * (MAX_SEGMENT_LENGTH + 1),
]


@pytest.mark.parametrize("key", INVALID_KEYS, ids=range(len(INVALID_KEYS)))
def test_invalid_keys(backend: Backend, key: str) -> None:
    with pytest.raises(InvalidKey):
        backend.put(key, b"x")
    with pytest.raises(InvalidKey):
        backend.get(key)
    with pytest.raises(InvalidKey):
        backend.stat(key)
    with pytest.raises(InvalidKey):
        backend.delete(key)
    assert backend.list() == []


def test_invalid_prefix(backend: Backend) -> None:
    for prefix in ["/", "../", "a//", "/a", ".x"]:
        with pytest.raises(InvalidKey):
            backend.list(prefix)


def test_longest_key(backend: Backend) -> None:
    segment = "x" * MAX_SEGMENT_LENGTH
    key = f"{segment}/{segment}/" + "y" * (MAX_KEY_LENGTH - 2 * MAX_SEGMENT_LENGTH - 2)
    assert len(key) == MAX_KEY_LENGTH
    backend.put(key, b"long")
    assert backend.get(key) == b"long"


def test_concurrent_puts(backend: Backend) -> None:
    keys = [f"c/{i:03d}" for i in range(40)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: backend.put(key, key.encode()), keys))
    assert backend.list("c/") == keys
    assert all(backend.get(key) == key.encode() for key in keys)


# -- local ---------------------------------------------------------------------------------------


def test_local_modes(tmp_path: Path) -> None:
    local = LocalBackend(tmp_path / "repo", create=True)
    local.put("data/ab/abcdef", b"secret-ish")
    assert stat.S_IMODE((tmp_path / "repo").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "repo/data").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "repo/data/ab").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "repo/data/ab/abcdef").stat().st_mode) == 0o600


def test_local_failed_put_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = LocalBackend(tmp_path, create=False)
    local.put("dir/obj", b"old")

    def broken_replace(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("lifeboat.fs.os.replace", broken_replace)
    with pytest.raises(StoreError) as info:
        local.put("dir/obj", b"new contents")
    assert "dir/obj" in str(info.value) and local.name in str(info.value)
    assert not isinstance(info.value, BackendUnavailable)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path / "dir")) == ["obj"]
    assert local.get("dir/obj") == b"old"


def test_local_missing_root(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable, match="does not exist"):
        LocalBackend(tmp_path / "absent")
    LocalBackend(tmp_path / "absent", create=True)
    assert (tmp_path / "absent").is_dir()
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(StoreError, match="not a directory"):
        LocalBackend(tmp_path / "file")


def test_local_root_goes_away(tmp_path: Path) -> None:
    local = LocalBackend(tmp_path / "mnt", create=True)
    (tmp_path / "mnt").rmdir()
    with pytest.raises(BackendUnavailable, match="gone away"):
        local.get("x")
    with pytest.raises(BackendUnavailable):
        local.list()
    with pytest.raises(BackendUnavailable):
        local.put("x/y", b"1")


def test_local_ignores_temp_files_and_directories(tmp_path: Path) -> None:
    local = LocalBackend(tmp_path)
    local.put("a/b", b"1")
    (tmp_path / "a" / ".b.xyz.tmp").write_bytes(b"partial")
    (tmp_path / "empty-dir").mkdir()
    assert local.list() == ["a/b"]
    assert local.stat("a") is None
    with pytest.raises(ObjectNotFound):
        local.get("a")
    local.delete("a")  # a directory is not an object; nothing happens
    assert local.list() == ["a/b"]


def test_local_object_is_not_a_directory(tmp_path: Path) -> None:
    local = LocalBackend(tmp_path)
    local.put("a", b"1")
    with pytest.raises(StoreError, match="is an object"):
        local.put("a/b", b"2")
    assert local.stat("a/b") is None
    with pytest.raises(ObjectNotFound):
        local.get("a/b")
    local.put("d/e", b"1")
    with pytest.raises(StoreError, match="directory"):
        local.put("d", b"2")


# -- open_backend and S3 specifics ---------------------------------------------------------------


def test_open_backend_local(tmp_path: Path) -> None:
    assert isinstance(open_backend(str(tmp_path)), LocalBackend)
    by_url = open_backend(f"file://{tmp_path}")
    assert isinstance(by_url, LocalBackend) and by_url.root == tmp_path
    with pytest.raises(BackendUnavailable):
        open_backend(f"file://{tmp_path}/nope")
    assert isinstance(open_backend(f"file://{tmp_path}/nope", create=True), LocalBackend)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://host/x", "supported: .*s3://"),
        ("s3://bucket/p?colour=blue", "unknown s3:// URL option"),
        ("s3://bucket/p?endpoint=http://example.com:9000", "allow_http"),
        ("s3://user:pw@bucket/p", "credentials"),
        ("s3://bucket/p?timeout=soon", "seconds"),
        ("s3:///p", "no bucket"),
        ("", "empty"),
    ],
)
def test_open_backend_errors(url: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as info:
        open_backend(url)
    assert "pw" not in str(info.value)


def test_open_backend_gs_and_az_construct_offline() -> None:
    """Only construction is checked: GCS and Azure I/O is untested (no emulator here)."""
    gs = open_backend("gs://bucket/some/prefix")
    assert isinstance(gs, ObjectStoreBackend) and gs.name == "gs://bucket/some/prefix"
    az = open_backend("az://container/p?account_name=acct&account_key=c2VjcmV0")
    assert az.name == "az://container/p" and "c2VjcmV0" not in repr(az)
    with pytest.raises(StoreError, match="not valid"):
        open_backend("gs://bucket?no_such_option=1")


def test_s3_name_has_no_secret(seaweedfs: SeaweedS3) -> None:
    backend = open_backend(seaweedfs.url(seaweedfs.buckets[0], "named"))
    assert isinstance(backend, ObjectStoreBackend)
    assert backend.name == f"s3://{seaweedfs.buckets[0]}/named at {seaweedfs.endpoint}"
    assert SECRET_KEY not in backend.name and SECRET_KEY not in repr(backend)


def test_s3_prefixes_and_buckets_are_separate(seaweedfs: SeaweedS3) -> None:
    tag = uuid.uuid4().hex
    one = open_backend(seaweedfs.url(seaweedfs.buckets[0], f"{tag}/one"))
    two = open_backend(seaweedfs.url(seaweedfs.buckets[0], f"{tag}/two"))
    other = open_backend(seaweedfs.url(seaweedfs.buckets[1], f"{tag}/one"))
    one.put("k", b"1")
    assert two.list() == [] and other.list() == []
    assert open_backend(seaweedfs.url(seaweedfs.buckets[0], tag)).list() == ["one/k"]


def test_s3_unreachable_is_unavailable() -> None:
    (port,) = _free_ports(1)
    backend = ObjectStoreBackend.s3(
        "b", endpoint=f"http://127.0.0.1:{port}", access_key_id="k", secret_access_key="s3cr3t-value"
    )
    for call in (lambda: backend.get("x"), lambda: backend.put("x", b"1"), backend.list):
        with pytest.raises(BackendUnavailable) as info:
            call()
        assert backend.name in str(info.value)
        assert "s3cr3t-value" not in str(info.value)


class _FixedStatus(http.server.BaseHTTPRequestHandler):
    """Answers every request with ``status`` (or never answers when ``status`` is 0)."""

    status = 503

    def _answer(self) -> None:
        if self.status == 0:
            time.sleep(2)
            return
        self.send_response(self.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_PUT = do_HEAD = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.parametrize(
    ("status", "unavailable"), [(503, True), (500, True), (429, True), (400, False), (0, True)]
)
def test_s3_http_failures_are_classified(status: int, unavailable: bool) -> None:
    handler = type("Handler", (_FixedStatus,), {"status": status})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        backend = ObjectStoreBackend.s3(
            "b",
            endpoint=f"http://127.0.0.1:{server.server_address[1]}",
            access_key_id="k",
            secret_access_key="s3cr3t-value",
            timeout=0.5,
        )
        with pytest.raises(StoreError) as info:
            backend.put("x", b"1")
        assert isinstance(info.value, BackendUnavailable) is unavailable, str(info.value)
        assert "'x'" in str(info.value) and "s3cr3t-value" not in str(info.value)
    finally:
        server.shutdown()
        server.server_close()


class _SilentServer:
    """A TCP server on 127.0.0.1 that accepts every connection and never answers (a hung S3)."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(connection)

    def close(self) -> None:
        self.listener.close()
        for connection in self.accepted:
            connection.close()


@pytest.fixture
def silent_server() -> Iterator[_SilentServer]:
    server = _SilentServer()
    yield server
    server.close()


def test_s3_hung_server_times_out_once_naming_the_limit(silent_server: _SilentServer) -> None:
    inner = ObjectStoreBackend.s3(
        "b",
        endpoint=f"http://127.0.0.1:{silent_server.port}",
        access_key_id="k",
        secret_access_key="s3cr3t-value",
        timeout=0.5,
    )
    backend = RetryingBackend(inner, attempts=4, sleep=lambda _: None)
    with pytest.raises(StoreTimeout, match=r"no answer within 0\.5 s .*timeout=SECONDS") as info:
        backend.get("config")
    assert inner.name in str(info.value)
    # one request, not four: each retry would wait the whole timeout again
    assert len(silent_server.accepted) == 1


def test_s3_without_credentials_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        monkeypatch.delenv(variable, raising=False)
    (port,) = _free_ports(1)
    # obstore then asks the instance-metadata service; point it at a closed local port
    monkeypatch.setenv("AWS_METADATA_ENDPOINT", f"http://127.0.0.1:{port}")
    backend = open_backend(f"s3://b/p?endpoint=http://127.0.0.1:{port}")
    with pytest.raises(StoreError) as info:
        backend.get("config")
    assert str(info.value) == (
        f"{backend.name}: no S3 credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the "
        "URL's access_key_id/secret_access_key options"
    )
    assert not isinstance(info.value, BackendUnavailable)  # not retried: waiting will not help


def test_s3_wrong_secret_and_missing_bucket(seaweedfs: SeaweedS3) -> None:
    wrong = ObjectStoreBackend.s3(
        seaweedfs.buckets[0],
        endpoint=seaweedfs.endpoint,
        access_key_id=seaweedfs.access_key,
        secret_access_key="definitely-wrong-secret",
    )
    with pytest.raises(StoreError) as info:
        wrong.get("x")
    assert not isinstance(info.value, BackendUnavailable | ObjectNotFound)
    assert "definitely-wrong-secret" not in str(info.value)
    missing = open_backend(seaweedfs.url("no-such-bucket-here"))
    with pytest.raises(StoreError, match="bucket does not exist") as info:
        missing.get("x")
    assert not isinstance(info.value, ObjectNotFound)


# -- wrappers ------------------------------------------------------------------------------------


def test_retry_recovers_from_transient_failures() -> None:
    sleeps: list[float] = []
    faulty = FaultyBackend(MemoryBackend(), fail_gets={1, 2}, fail_puts={1})
    retrying = RetryingBackend(faulty, attempts=5, base_delay=0.1, max_delay=1.0, sleep=sleeps.append)
    retrying.put("k", b"v")
    assert retrying.get("k") == b"v"
    assert faulty.calls["get"] == 3 and faulty.calls["put"] == 2
    assert len(sleeps) == 3
    assert 0.05 <= sleeps[1] <= 0.1 and 0.1 <= sleeps[2] <= 0.2  # put: 1 retry; get: 2 retries


def test_retry_gives_up_with_last_error() -> None:
    sleeps: list[float] = []
    faulty = FaultyBackend(MemoryBackend(), fail_gets=1.0)
    retrying = RetryingBackend(faulty, attempts=4, sleep=sleeps.append)
    with pytest.raises(BackendUnavailable) as info:
        retrying.get("k")
    assert faulty.calls["get"] == 4 and len(sleeps) == 3
    assert len(faulty.injected) == 4
    assert "gave up after 4 attempts" in (info.value.__notes__ or [])


def test_retry_does_not_retry_other_errors() -> None:
    sleeps: list[float] = []
    faulty = FaultyBackend(MemoryBackend())
    retrying = RetryingBackend(faulty, sleep=sleeps.append)
    with pytest.raises(ObjectNotFound):
        retrying.get("k")
    with pytest.raises(InvalidKey):
        retrying.put("../k", b"")
    assert faulty.calls["get"] == 1 and sleeps == []


def test_retry_delays_grow_and_are_capped() -> None:
    retrying = RetryingBackend(MemoryBackend(), base_delay=0.05, max_delay=0.3, rng=random.Random(3))
    for n, ceiling in [(1, 0.05), (2, 0.1), (3, 0.2), (4, 0.3), (10, 0.3)]:
        assert ceiling / 2 <= retrying.delay(n) <= ceiling
    with pytest.raises(UsageError):
        RetryingBackend(MemoryBackend(), attempts=0)


class _SlowCounting(MemoryBackend):
    """Counts how many calls are inside at once."""

    def __init__(self) -> None:
        super().__init__()
        self.active = 0
        self.peak = 0
        self._count_lock = threading.Lock()

    def stat(self, key: str) -> int | None:
        with self._count_lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(0.02)
        with self._count_lock:
            self.active -= 1
        return super().stat(key)


def test_limiter_caps_concurrency() -> None:
    inner = _SlowCounting()
    limited = LimitedBackend(inner, 3)
    with ThreadPoolExecutor(12) as pool:
        list(pool.map(lambda i: limited.stat(f"k{i}"), range(36)))
    assert inner.peak == 3
    unlimited = _SlowCounting()
    with ThreadPoolExecutor(12) as pool:
        list(pool.map(lambda i: unlimited.stat(f"k{i}"), range(36)))
    assert unlimited.peak > 3
    with pytest.raises(UsageError):
        LimitedBackend(inner, 0)


def _outcomes(faulty: FaultyBackend, calls: int) -> list[str]:
    seen = []
    for i in range(calls):
        try:
            faulty.put(f"k{i}", b"payload")
            seen.append(faulty.get(f"k{i}").hex())
        except BackendUnavailable:
            seen.append("unavailable")
    return seen


def test_faulty_is_deterministic() -> None:
    def make(seed: int) -> FaultyBackend:
        return FaultyBackend(MemoryBackend(), fail_puts=0.2, fail_gets=0.2, corrupt_gets=0.3, seed=seed)

    first, second, other = make(7), make(7), make(8)
    assert _outcomes(first, 60) == _outcomes(second, 60)
    assert first.injected == second.injected
    assert {fault for _, _, fault in first.injected} == {"unavailable", "corrupt"}
    assert _outcomes(other, 60) != _outcomes(make(7), 60)


def test_faulty_chosen_calls_and_corruption() -> None:
    faulty = FaultyBackend(MemoryBackend(), fail_puts=[2], corrupt_gets=[2, 3])
    faulty.put("a", b"\x00" * 16)
    with pytest.raises(BackendUnavailable, match="injected"):
        faulty.put("b", b"x")
    assert faulty.stat("b") is None  # the failed put did not land
    assert faulty.get("a") == b"\x00" * 16
    corrupted = faulty.get("a")
    assert len(corrupted) == 16 and sum(bin(byte).count("1") for byte in corrupted) == 1
    faulty.put("empty", b"")
    assert faulty.get("empty") == b"\x00"
    assert faulty.get("a") == b"\x00" * 16


def test_faulty_fail_after_write() -> None:
    faulty = FaultyBackend(MemoryBackend(), fail_puts=1.0, fail_after_write=True)
    with pytest.raises(BackendUnavailable):
        faulty.put("k", b"landed")
    assert faulty.get("k") == b"landed"


def test_faulty_drop() -> None:
    inner = MemoryBackend()
    for key in ["a", "b", "c"]:
        inner.put(key, key.encode())
    faulty = FaultyBackend(inner, drop={"b"})
    assert faulty.list() == ["a", "c"]
    assert faulty.stat("b") is None
    with pytest.raises(ObjectNotFound):
        faulty.get("b")
    keys = [f"k{i}" for i in range(200)]
    for key in keys:
        inner.put(key, b"")
    by_chance = FaultyBackend(inner, drop=0.25, seed=1)
    again = FaultyBackend(inner, drop=0.25, seed=1)
    dropped = [key for key in keys if by_chance.dropped(key)]
    assert dropped == [key for key in keys if again.dropped(key)]
    assert 20 < len(dropped) < 80
    assert by_chance.list("k") == sorted(set(keys) - set(dropped))
    with pytest.raises(UsageError):
        FaultyBackend(inner, fail_gets=1.5)


def test_wrappers_compose_and_keep_the_name(tmp_path: Path) -> None:
    local = LocalBackend(tmp_path)
    stack = RetryingBackend(LimitedBackend(FaultyBackend(local, fail_puts=[1]), 2), sleep=lambda _: None)
    assert stack.name == local.name
    assert isinstance(stack, Backend)
    stack.put("x/y", b"ok")
    assert stack.get("x/y") == b"ok" and stack.list() == ["x/y"] and stack.stat("x/y") == 2
    stack.delete("x/y")
    assert stack.list() == []


def test_local_pack_shards_batch_their_directory_syncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lifeboat.store.backends import local

    synced: list[str] = []
    monkeypatch.setattr(local, "fsync_directory", lambda directory: synced.append(str(directory)))
    store = LocalBackend(tmp_path / "store", create=True)
    store.put("data/ab/ab01", b"one")
    store.put("data/ab/ab02", b"two")
    store.put("data/cd/cd01", b"three")
    assert synced == []  # deferred: nothing names these shards yet
    store.put("index/ef/ef01", b"names the shards")
    root = str(tmp_path / "store")
    # Each directory the shards changed, once, deepest first, before the index is written (the
    # index's own new directories are synced at once after that).
    assert synced[:2] in ([f"{root}/data/ab", f"{root}/data/cd"], [f"{root}/data/cd", f"{root}/data/ab"])
    assert synced[2:4] == [f"{root}/data", root]
    assert synced[4:] == [root, f"{root}/index"]
    synced.clear()
    store.put("data/ab/ab03", b"four")
    store.sync()
    assert synced == [f"{root}/data/ab"]
    store.sync()
    assert synced == [f"{root}/data/ab"]  # nothing left to sync
    assert store.get("data/ab/ab03") == b"four"
