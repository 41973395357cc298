"""Helpers for the recovery tests: deterministic keys and signed actions (core); fresh PostgreSQL
schemas and small steps (service)."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa

from conftest_tools import require_database_url
from lifeboat.recovery import messages
from lifeboat.recovery.config import Guardian, Policy, VaultConfig
from lifeboat.recovery.db import Event, Step, Transition
from lifeboat.recovery.keys import KeyKind, PrivateKey
from lifeboat.recovery.messages import Action, Message, Service, VerifiedAction

pg_base_url = require_database_url
SRC = Path(__file__).resolve().parents[1] / "src"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_service(base: Path, *options: str) -> Iterator[str]:
    """``lifeboat serve OPTIONS`` as a child process on a free loopback port, home under ``base``;
    yields its URL once ``/healthz`` answers, stops it with SIGTERM afterwards."""
    import httpx

    port = free_port()
    log = base / "serve.log"
    env = {**os.environ, "PYTHONPATH": str(SRC), "LIFEBOAT_HOME": str(base / "home")}
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "lifeboat", "serve", "--port", str(port), *options],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(f"lifeboat serve exited: {log.read_text()}")
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("lifeboat serve never became healthy")
            time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def fresh_pg_schema() -> Iterator[str]:
    """A database URL whose search_path is a new, empty schema, dropped afterwards."""
    base = pg_base_url()
    schema = f"lb_recovery_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def counter_step(actor: str = "tester") -> Step:
    """A step that adds one to the state's counter and logs it (what the policy's steps look like)."""

    def step(state: bytes | None, now: int) -> Transition:
        count = 0 if state is None else int(json.loads(state)["count"])
        new = json.dumps({"count": count + 1}).encode()
        return Transition(new, [Event(actor, "increment", b"", {"count": count + 1})])

    return step


class TcpProxy:
    """A TCP forwarder on 127.0.0.1 that can be cut, to take a real database away mid-test."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            with self.lock:
                self.sockets += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Refuse new connections and break every open one."""
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() that close() alone would not
        self.listener.close()
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


SERVICE = Service(
    chain_id=31337, verifying_contract=bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")
)
VAULT = bytes.fromhex("aa" * 32)
HOUR = 3600
DAY = 86400

_nonces = itertools.count(1)


def private_key(kind: KeyKind, name: str) -> PrivateKey:
    """A fixed key per (kind, name): tests and their failures are reproducible."""
    return PrivateKey.from_seed(kind, hashlib.sha256(f"{kind.value}/{name}".encode()).digest())


def request_id(n: int) -> bytes:
    return hashlib.sha256(f"request {n}".encode()).digest()


def signed(
    key: PrivateKey,
    action: Action,
    now: int,
    *,
    nonce: int | None = None,
    vault: bytes = VAULT,
    lifetime: int = HOUR,
    service: Service = SERVICE,
) -> messages.SignedMessage:
    message = Message(
        vault, action, next(_nonces) if nonce is None else nonce, max(0, now - 60), now + lifetime
    )
    return messages.sign(service, message, key)


def act(key: PrivateKey, action: Action, now: int, **options: object) -> VerifiedAction:
    """Sign ``action`` with ``key`` and verify it at ``now``, as the service would."""
    return messages.verify(signed(key, action, now, **options), SERVICE, now)  # type: ignore[arg-type]


def family_config(
    owner: PrivateKey | None = None,
    *,
    security_period: int = 2 * DAY,
    lock_period: int = 5 * DAY,
) -> tuple[VaultConfig, list[PrivateKey], PrivateKey]:
    """Family 2-of-3 after 3 days (one guardian veto), a lawyer 1-of-1 after 30 days.

    Guardians use all three key kinds. Returns (config, family guardians, lawyer).
    """
    family = [
        private_key(KeyKind.ED25519, "alice"),
        private_key(KeyKind.BIP340, "bob"),
        private_key(KeyKind.EIP712, "carol"),
    ]
    lawyer = private_key(KeyKind.ED25519, "lawyer")
    guardians = tuple(
        Guardian(k.public_key, 1, label) for k, label in zip(family, ("Alice", "Bob", "Carol"), strict=True)
    )
    config = VaultConfig(
        guardians=(*guardians, Guardian(lawyer.public_key, 1, "Lawyer")),
        policies=(
            Policy(
                "family",
                tuple(k.public_key for k in family),
                2,
                recovery_period=3 * DAY,
                expiry_window=7 * DAY,
                veto_guardians=1,
            ),
            Policy("lawyer", (lawyer.public_key,), 1, recovery_period=30 * DAY, expiry_window=10 * DAY),
        ),
        security_period=security_period,
        lock_period=lock_period,
    )
    return config, family, lawyer
