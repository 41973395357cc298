"""Benchmark the recovery service (``lifeboat serve``): signed approvals per second under load.

Usage::

    python bench/bench_recovery.py [--backend sqlite|postgres|both] [--vaults 10000]
                                   [--requests 1000] [--guardians 5] [--concurrency 16]
                                   [--workers 1] [--repeat 1] [--json FILE] [--workdir DIR]
                                   [--pg-url URL] [--lifeboat CMD] [--keep]

Run it from the project's environment (``pip install -e '.[test]'``); the PostgreSQL backend
needs a server (default ``postgresql://postgres@127.0.0.1:5432/test``). Nothing else is needed.

**The world.** ``--vaults`` vaults (10,000), each with an Ed25519 owner and ``--guardians``
guardians (5) whose key kinds rotate Ed25519, BIP-340, EIP-712 (so the mix is the one a real
service sees), and one policy ``family``: 3 of them, a 3-day recovery period, a 7-day window.
Keys, vault ids and request ids are derived from fixed seeds, so the load generator re-derives
the guardians' keys without being told them. The vaults are created by the library itself in
this process (``actions.apply_signed`` on a :class:`~lifeboat.recovery.db.Database`: a signed
``CreateVault`` verified and applied through ``Database.transact``, the very code the HTTP
endpoint runs, so the database holds exactly what the API would have made: states, audit chain,
used nonces). Each repeat then opens ``--requests`` requests (1,000) the same way, on vaults no
earlier repeat used (guardian 1 opens; that counts as its approval).

**The service.** SQLite: one ``lifeboat serve`` process (``--workers N``: N uvicorn workers on
the one database). PostgreSQL: two replica processes on one fresh database made for the run and
dropped after it (``CREATE DATABASE lb_bench_…``; other tests' tables are never touched), the load
split across both. Each serves 127.0.0.1 with the rate limits lifted out of the way
(``--rate``/``--burst`` very high: the limiter still runs and charges every request).

**The load.** A separate process (this script's ``_load`` worker) reads the service's domain and
clock, pre-signs every remaining guardian's ``Approve`` of every request (signing is the
guardians' cost, not the server's; round by round, so concurrent approvals mostly hit different
vaults), then fires them over ``--concurrency`` keep-alive HTTP/1.1 connections on loopback (a
small raw asyncio client, so the load generator's own CPU use stays small next to the
server's). The first approvals (100, at most a tenth) warm the servers up untimed; of the rest
it reports approvals per second (completed approvals / wall time from first send to last
answer), the latency of each (p50, p99, max), and every status that was not 2xx. Beside them:
the CPU milliseconds per approval of the server processes (from /proc, workers included), of
PostgreSQL's processes and of the load generator, and how many cores other processes kept busy
meanwhile. In the
same process, before the load, it times raw signature verification over the very same signed
approvals: ``PublicKey.verify`` of the precomputed digest (the crypto alone) and
``messages.verify`` (EIP-712 digest and checks too), both on one core.

**Checks.** Every approval must be answered 2xx; afterwards every request of the repeat must
be ``approved`` with all its guardians' approvals, read from the database; at the end the audit
export (``GET /v1/audit/export``) must verify against the service key (``audit.verify``) and
hold exactly one entry per expected event. The exit status is 1 when a check fails; a missed
target is reported, not failed.

The figures are medians over ``--repeat`` runs. Output: a table, and ``--json FILE``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness import BenchError, cpu_used_since, default_lifeboat_command, other_processes_cpu, output_of, tail
from lifeboat.recovery import audit, messages, migrations
from lifeboat.recovery.config import Guardian, Policy, VaultConfig
from lifeboat.recovery.db import Database
from lifeboat.recovery.keys import KeyKind, PrivateKey, PublicKey
from lifeboat.recovery.refusals import MalformedKey
from lifeboat.recovery.service import actions

DEFAULT_WORKDIR = Path(tempfile.gettempdir()) / "lifeboat-bench-recovery"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
CHAIN_ID = 31337
CONTRACT = hashlib.sha256(b"lifeboat bench recovery contract").digest()[:20]
SERVICE = messages.Service(CHAIN_ID, CONTRACT)
KINDS = (KeyKind.ED25519, KeyKind.BIP340, KeyKind.EIP712)
POLICY = "family"
THRESHOLD = 3
DAY = 86400
#: message lifetime: long enough for any run, far below the 30-day limit
LIFETIME = 6 * 3600
#: the targets of the issue (SQLite)
TARGET_RATE = 500.0
TARGET_P99_MS = 100.0
#: seconds the raw verification loops run at least
VERIFY_MIN_SECONDS = 1.0
#: approvals sent before the timed ones (at most a tenth of them)
WARMUP = 100
#: seconds between opening one load connection and the next
CONNECT_PAUSE = 0.01


# --------------------------------------------------------------------------------------------
# The deterministic world


def _seed(*parts: object) -> bytes:
    return hashlib.sha256("/".join(["lifeboat-bench-recovery", *map(str, parts)]).encode()).digest()


def _secret(kind: KeyKind, *parts: object) -> PrivateKey:
    counter = 0
    while True:  # a secp256k1 scalar must be below the group order (as good as always)
        seed = _seed(*parts, counter)
        try:
            return PrivateKey.from_seed(kind, seed)
        except MalformedKey:
            counter += 1


def vault_id(index: int) -> bytes:
    return _seed("vault", index)


def request_id(repeat: int, index: int) -> bytes:
    return _seed("request", repeat, index)


def owner_key(index: int) -> PrivateKey:
    return _secret(KeyKind.ED25519, "owner", index)


def new_owner_key(index: int) -> PublicKey:
    return _secret(KeyKind.ED25519, "new-owner", index).public_key


def guardian_key(index: int, number: int) -> PrivateKey:
    """Guardian ``number`` (0-based) of vault ``index``; kinds rotate through the vaults too."""
    return _secret(KINDS[(index + number) % len(KINDS)], "guardian", index, number)


def vault_config(index: int, guardians: int) -> VaultConfig:
    keys = [guardian_key(index, n).public_key for n in range(guardians)]
    return VaultConfig(
        guardians=tuple(Guardian(k, 1, f"G{n + 1}") for n, k in enumerate(keys)),
        policies=(
            Policy(
                POLICY, tuple(keys), min(THRESHOLD, guardians), recovery_period=3 * DAY, expiry_window=7 * DAY
            ),
        ),
        security_period=2 * DAY,
        lock_period=5 * DAY,
    )


def sign(key: PrivateKey, vault: bytes, action: messages.Action, now: int) -> messages.SignedMessage:
    message = messages.Message(vault, action, secrets.randbits(64), max(0, now - 60), now + LIFETIME)
    return messages.sign(SERVICE, message, key)


def repeat_vaults(repeat: int, requests: int, vaults: int) -> range:
    """The vaults whose requests repeat ``repeat`` opens (no vault is used twice)."""
    start = repeat * requests
    if start + requests > vaults:
        raise BenchError(f"{vaults} vaults do not give {requests} fresh requests to repeat {repeat + 1}")
    return range(start, start + requests)


# --------------------------------------------------------------------------------------------
# Seeding through the library (what POST /v1/actions runs, without HTTP)


def seed_vaults(database: Database, vaults: int, guardians: int) -> float:
    """Create the vaults; returns the seconds it took."""
    start = time.perf_counter()
    for index in range(vaults):
        now = database.now()
        action = messages.CreateVault(vault_config(index, guardians))
        actions.apply_signed(database, SERVICE, sign(owner_key(index), vault_id(index), action, now))
    return time.perf_counter() - start


def open_requests(database: Database, repeat: int, indices: range) -> float:
    start = time.perf_counter()
    for index in indices:
        now = database.now()
        action = messages.OpenRequest(request_id(repeat, index), new_owner_key(index), POLICY)
        actions.apply_signed(database, SERVICE, sign(guardian_key(index, 0), vault_id(index), action, now))
    return time.perf_counter() - start


def check_approved(database: Database, repeat: int, indices: range, guardians: int) -> list[str]:
    """Problems with the final state of one repeat's requests (empty: all approved, all approvals)."""
    problems: list[str] = []
    for index in indices:
        _, _, state = actions.view_vault(database, vault_id(index))
        found = state.request(request_id(repeat, index))
        expected = {guardian_key(index, n).public_key for n in range(guardians)}
        if found is None:
            problems.append(f"vault {index}: request missing")
        elif found.status.value != "approved" or set(found.approvals) != expected:
            problems.append(f"vault {index}: {found.status.value} with {len(found.approvals)} approvals")
        if len(problems) >= 10:
            break
    return problems


# --------------------------------------------------------------------------------------------
# Servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path


def start_server(
    lifeboat: list[str],
    home: Path,
    url: str,
    key: Path,
    log: Path,
    *,
    migrate: bool,
    workers: int,
    env: dict[str, str],
) -> Server:
    port = free_port()
    argv = [
        *lifeboat,
        "--home",
        str(home),
        "serve",
        "--database",
        url,
        "--service-key",
        str(key),
        "--port",
        str(port),
        "--chain-id",
        str(CHAIN_ID),
        "--verifying-contract",
        "0x" + CONTRACT.hex(),
        "--rate",
        "1000000000",
        "--burst",
        "1000000000",
    ]
    if workers > 1:
        argv += ["--workers", str(workers)]
    if not migrate:
        argv.append("--no-migrate")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as sink:
        process = subprocess.Popen(
            argv, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(process, port, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"lifeboat serve exited with {process.returncode}:\n{tail(str(log))}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer,
        ):
            if answer.status == 200:
                return server
        time.sleep(0.1)
    stop_server(server)
    raise BenchError(f"lifeboat serve did not answer /healthz within 60 s:\n{tail(str(log))}")


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()


def postgres_cpu() -> float:
    """CPU seconds used so far by the processes named ``postgres`` (the database server's)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    name, _, rest = Path(entry.path, "stat").read_text().partition(" (")[2].rpartition(")")
                    if name == "postgres":
                        fields = rest.split()
                        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def server_cpu(server: Server) -> float:
    """CPU seconds used so far by a server process and its children (workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [server.process.pid]
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
                    if int(fields[1]) == server.process.pid:
                        pids.append(int(entry.name))
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


# --------------------------------------------------------------------------------------------
# The load generator (a child process)


def _percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _http_get(port: int, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=120) as answer:
        return bytes(answer.read())


def _request_bytes(port: int, body: bytes) -> bytes:
    head = (
        f"POST /v1/actions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
        elif name.strip().lower() == "transfer-encoding":
            raise BenchError(
                "the service answered with a chunked body; the load client reads Content-Length only"
            )
    return status, await reader.readexactly(length)


Connection = tuple[int, asyncio.StreamReader, asyncio.StreamWriter]


async def _connect(ports: Sequence[int], concurrency: int) -> list[Connection]:
    """Open the keep-alive connections one by one, alternating between the ports.

    uvicorn's workers share one listening socket and each accepts whatever is queued when it
    wakes, so a burst of connections may all land on one worker; clients that arrive a few
    milliseconds apart, as real ones do, spread over them.
    """
    opened: list[Connection] = []
    for number in range(concurrency):
        port = ports[number % len(ports)]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        opened.append((port, reader, writer))
        await asyncio.sleep(CONNECT_PAUSE)
    return opened


async def _fire(
    connections: Sequence[Connection], bodies: Sequence[bytes]
) -> tuple[float, list[float], dict[str, int], list[str]]:
    next_item = 0
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors: list[str] = []

    async def run(port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal next_item
        while next_item < len(bodies):
            body = bodies[next_item]
            next_item += 1
            start = time.perf_counter()
            writer.write(_request_bytes(port, body))
            status, answer = await _read_answer(reader)
            latencies.append(time.perf_counter() - start)
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            if not 200 <= status < 300 and len(errors) < 10:
                errors.append(f"{status}: {answer[:300].decode(errors='replace')}")

    start = time.perf_counter()
    await asyncio.gather(*(run(*connection) for connection in connections))
    return time.perf_counter() - start, latencies, statuses, errors


async def _warm_then_fire(
    ports: Sequence[int], bodies: Sequence[bytes], concurrency: int, warm: int
) -> tuple[float, list[float], dict[str, int], list[str]]:
    """Open the connections, send the first ``warm`` bodies untimed, then time the rest."""
    connections = await _connect(ports, concurrency)
    try:
        _, _, statuses, errors = await _fire(connections, bodies[:warm])
        cpu_before = time.process_time()
        seconds, latencies, timed_statuses, timed_errors = await _fire(connections, bodies[warm:])
        _LOAD_CPU[0] = time.process_time() - cpu_before
    finally:
        for _, _, writer in connections:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    for status, count in timed_statuses.items():
        statuses[status] = statuses.get(status, 0) + count
    return seconds, latencies, statuses, errors + timed_errors


#: CPU seconds the load generator used while firing the timed approvals (set by _warm_then_fire)
_LOAD_CPU = [0.0]


def _verify_rates(signed: Sequence[messages.SignedMessage], now: int) -> dict[str, float]:
    """Raw verifications per second on one core: the key's verify of the digest, and messages.verify."""
    digests = [messages.digest(SERVICE, s.message) for s in signed]
    keys = [(s.signer, d, s.signature) for s, d in zip(signed, digests, strict=True)]
    rates: dict[str, float] = {}
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < VERIFY_MIN_SECONDS:
        for key, digest, signature in keys:
            if not key.verify(digest, signature):
                raise BenchError("a pre-signed approval does not verify")
        done += len(keys)
    rates["raw_verify_per_s"] = done / (time.perf_counter() - start)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < VERIFY_MIN_SECONDS:
        for item in signed:
            messages.verify(item, SERVICE, now)
        done += len(signed)
    rates["message_verify_per_s"] = done / (time.perf_counter() - start)
    return rates


def load_main(argv: Sequence[str]) -> int:
    """The ``_load`` worker: pre-sign, measure raw verification, fire, print one JSON document."""
    parser = argparse.ArgumentParser(prog="bench_recovery.py _load")
    parser.add_argument("--ports", required=True)
    parser.add_argument("--repeat-index", type=int, required=True)
    parser.add_argument("--first", type=int, required=True)
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--guardians", type=int, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    args = parser.parse_args(argv)
    ports = [int(p) for p in args.ports.split(",")]
    now = int(json.loads(_http_get(ports[0], "/v1/service"))["now"])
    signed: list[messages.SignedMessage] = []
    sign_start = time.perf_counter()
    for number in range(1, args.guardians):  # round by round: guardian 2 of every request, then 3...
        for index in range(args.first, args.first + args.requests):
            action = messages.Approve(request_id(args.repeat_index, index), new_owner_key(index), POLICY)
            signed.append(sign(guardian_key(index, number), vault_id(index), action, now))
    sign_seconds = time.perf_counter() - sign_start
    bodies = [
        json.dumps({"signed": messages.signed_to_json(s)}, separators=(",", ":")).encode() for s in signed
    ]
    rates = _verify_rates(signed, now)
    # a few approvals first, untimed (statuses still checked): the servers compile their
    # statements and fill their caches, as a server that has been up a while has
    warm = min(WARMUP, len(bodies) // 10)
    seconds, latencies, statuses, errors = asyncio.run(_warm_then_fire(ports, bodies, args.concurrency, warm))
    load_cpu = _LOAD_CPU[0]
    result = {
        "approvals": len(bodies),
        "timed": len(latencies),
        "seconds": seconds,
        "per_s": len(latencies) / seconds if seconds else 0.0,
        "p50_ms": 1000 * _percentile(latencies, 0.50),
        "p99_ms": 1000 * _percentile(latencies, 0.99),
        "max_ms": 1000 * max(latencies, default=0.0),
        "statuses": statuses,
        "errors": errors,
        "sign_seconds": sign_seconds,
        "load_cpu_ms_per_approval": 1000 * load_cpu / max(1, len(latencies)),
        **rates,
    }
    print(json.dumps(result))
    return 0


# --------------------------------------------------------------------------------------------
# One backend


@dataclass
class BackendResult:
    backend: str
    processes: int
    workers: int
    seed_seconds: float = 0.0
    runs: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    audit_entries: int = 0

    def median(self, name: str) -> float:
        values = [float(run[name]) for run in self.runs if name in run]
        return statistics.median(values) if values else 0.0


@contextlib.contextmanager
def pg_database(base: str) -> Iterator[str]:
    """A fresh database for this run on the server of ``base``, dropped afterwards."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    name = f"lb_bench_{uuid.uuid4().hex[:12]}"
    server = make_url(base).set(drivername="postgresql+psycopg")
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as error:
        admin.dispose()
        raise BenchError(f"PostgreSQL at {base} is not reachable: {error.orig}") from None
    try:
        yield server.set(database=name).render_as_string(hide_password=False).replace("+psycopg", "", 1)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()


def expected_entries(vaults: int, runs: int, requests: int, guardians: int) -> int:
    """Audit entries: one per vault created; per request: opened and the opener's approval, every
    other guardian's approval, and request_approved once the threshold is met."""
    return vaults + runs * requests * (2 + (guardians - 1) + 1)


def run_backend(
    backend: str, url: str, args: argparse.Namespace, workdir: Path, env: dict[str, str]
) -> BackendResult:
    processes = 2 if backend == "postgres" else 1
    result = BackendResult(backend, processes, args.workers if backend == "sqlite" else 1)
    database = Database(url)
    servers: list[Server] = []
    try:
        migrations.upgrade(database.engine)
        database.service_identity(CHAIN_ID, CONTRACT)
        print(f"[{backend}] seeding {args.vaults} vaults ...", file=sys.stderr, flush=True)
        result.seed_seconds = seed_vaults(database, args.vaults, args.guardians)
        key = workdir / "service-key.json"
        for number in range(processes):
            home = workdir / f"home-{backend}-{number}"
            home.mkdir(parents=True, exist_ok=True)
            servers.append(
                start_server(
                    args.lifeboat,
                    home,
                    url,
                    key,
                    workdir / "logs" / f"serve-{backend}-{number}.log",
                    migrate=number == 0,
                    workers=result.workers,
                    env=env,
                )
            )
        for repeat in range(args.repeat):
            indices = repeat_vaults(repeat, args.requests, args.vaults)
            opened = open_requests(database, repeat, indices)
            print(
                f"[{backend}] repeat {repeat + 1}: {args.requests} requests open; load",
                file=sys.stderr,
                flush=True,
            )
            cpu_before = sum(server_cpu(s) for s in servers)
            others, started, database_before = other_processes_cpu(), time.perf_counter(), postgres_cpu()
            done = subprocess.run(
                [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "_load",
                    "--ports",
                    ",".join(str(s.port) for s in servers),
                    "--repeat-index",
                    str(repeat),
                    "--first",
                    str(indices.start),
                    "--requests",
                    str(args.requests),
                    "--guardians",
                    str(args.guardians),
                    "--concurrency",
                    str(args.concurrency),
                ],
                env=env,
                capture_output=True,
                text=True,
                check=False,
                timeout=args.timeout,
            )
            if done.returncode != 0:
                raise BenchError(f"the load generator failed ({done.returncode}):\n{done.stderr[-3000:]}")
            run = json.loads(done.stdout)
            run["server_cpu_seconds"] = sum(server_cpu(s) for s in servers) - cpu_before
            # CPU seconds every other process used meanwhile (the servers and the load included):
            # what is left after those two is how busy the machine was with something else
            wall = time.perf_counter() - started
            # CPU that processes other than this benchmark's used meanwhile, in cores: near 0 on a
            # quiet machine (the load generator, a child that ended, is not counted in it)
            run["database_cpu_ms_per_approval"] = (
                1000 * (postgres_cpu() - database_before) / max(1, run["approvals"])
            )
            database_seconds = run["database_cpu_ms_per_approval"] * run["approvals"] / 1000
            run["other_cores"] = (
                max(0.0, cpu_used_since(others) - run["server_cpu_seconds"] - database_seconds) / wall
            )
            run["server_cpu_ms_per_approval"] = 1000 * run["server_cpu_seconds"] / max(1, run["approvals"])
            # (server CPU counts the warm-up approvals too: it is divided by all of them)
            run["open_seconds"] = opened
            result.runs.append(run)
            ok = sum(n for status, n in run["statuses"].items() if status.startswith("2"))
            if ok != run["approvals"]:
                result.problems.append(
                    f"repeat {repeat + 1}: {run['approvals'] - ok} approvals not accepted: {run['errors'][:3]}"
                )
            result.problems += [
                f"repeat {repeat + 1}: {p}" for p in check_approved(database, repeat, indices, args.guardians)
            ]
            print(
                f"[{backend}] repeat {repeat + 1}: {run['per_s']:.0f} approvals/s, p50 {run['p50_ms']:.1f} ms, "
                f"p99 {run['p99_ms']:.1f} ms",
                file=sys.stderr,
                flush=True,
            )
        export = _http_get(servers[0].port, "/v1/audit/export")
        from lifeboat.recovery.service.settings import load_or_create_key

        verified = audit.verify(export, load_or_create_key(key).public_key)
        result.audit_entries = len(verified.entries)
        expected = expected_entries(args.vaults, args.repeat, args.requests, args.guardians)
        if result.audit_entries != expected:
            result.problems.append(f"the audit log has {result.audit_entries} entries, {expected} expected")
    finally:
        for server in servers:
            stop_server(server)
        database.dispose()
    return result


# --------------------------------------------------------------------------------------------
# Report


def report(results: Sequence[BackendResult], args: argparse.Namespace) -> list[str]:
    lines = [
        f"recovery service: {args.vaults} vaults, {args.requests} requests x {args.guardians - 1} approvals, "
        f"concurrency {args.concurrency}, median of {args.repeat}",
        "",
        f"{'backend':<24} {'approvals/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'raw verify/s':>12} "
        f"{'ratio':>6} {'srv ms':>6} {'db ms':>5} {'load ms':>7} {'others':>6}",
    ]
    for result in results:
        label = (
            f"{result.backend} x{result.processes}"
            if result.processes > 1
            else f"{result.backend} ({result.workers} worker{'s' if result.workers > 1 else ''})"
        )
        rate, raw = result.median("per_s"), result.median("raw_verify_per_s")
        lines.append(
            f"{label:<24} {rate:>11.0f} {result.median('p50_ms'):>8.1f} {result.median('p99_ms'):>8.1f} "
            f"{result.median('max_ms'):>8.1f} {raw:>12.0f} {rate / raw if raw else 0:>6.3f} "
            f"{result.median('server_cpu_ms_per_approval'):>6.2f} {result.median('database_cpu_ms_per_approval'):>5.2f} "
            f"{result.median('load_cpu_ms_per_approval'):>7.2f} "
            f"{result.median('other_cores'):>6.2f}"
        )
    lines.append(
        "ratio: approvals/s over raw verifications/s (one core, same signatures); srv ms / db ms / load ms: "
        "CPU milliseconds per approval of the lifeboat serve processes / of PostgreSQL / of the load "
        "generator; others: cores that other processes kept busy meanwhile (0 on a quiet machine)"
    )
    for result in results:
        if result.backend == "sqlite":
            rate, p99 = result.median("per_s"), result.median("p99_ms")
            met = rate >= TARGET_RATE and p99 < TARGET_P99_MS
            lines.append(
                f"target (SQLite): >= {TARGET_RATE:.0f} approvals/s with p99 < {TARGET_P99_MS:.0f} ms: "
                f"{'met' if met else 'not met'} ({rate:.0f}/s, p99 {p99:.1f} ms)"
            )
        for problem in result.problems:
            lines.append(f"CHECK FAILED [{result.backend}]: {problem}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_load"]:
        return load_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="sqlite")
    parser.add_argument("--vaults", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=1_000, help="requests opened per repeat")
    parser.add_argument("--guardians", type=int, default=5, help="guardians per vault (all approve)")
    parser.add_argument("--concurrency", type=int, default=16, help="keep-alive connections")
    parser.add_argument("--workers", type=int, default=1, help="lifeboat serve --workers (SQLite)")
    parser.add_argument("--repeat", type=int, default=1, help="runs, median reported")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="write raw results here")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--pg-url", default=os.environ.get("LIFEBOAT_TEST_DATABASE_URL", DEFAULT_PG_URL))
    parser.add_argument(
        "--lifeboat", type=lambda text: text.split(), default=None, help="command that runs Lifeboat"
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds before a load run is killed")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (databases, logs)")
    args = parser.parse_args(argv)
    if args.guardians < 2 or args.requests < 1 or args.concurrency < 1 or args.repeat < 1:
        parser.error("--guardians >= 2, --requests, --concurrency and --repeat >= 1")
    repeat_vaults(args.repeat - 1, args.requests, args.vaults)
    args.lifeboat = args.lifeboat or default_lifeboat_command()
    env = dict(os.environ)
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    results: list[BackendResult] = []
    try:
        for backend in backends:
            if backend == "sqlite":
                url = f"sqlite:///{args.workdir / 'recovery.db'}"
                results.append(run_backend(backend, url, args, args.workdir, env))
            else:
                with pg_database(args.pg_url) as url:
                    results.append(run_backend(backend, url, args, args.workdir, env))
    finally:
        if not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)
    lines = report(results, args)
    print("\n".join(lines))
    if args.json is not None:
        document = {
            "machine": {
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "lifeboat": output_of([*args.lifeboat, "--version"], env),
            },
            "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "results": [asdict(r) for r in results],
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 1 if any(r.problems for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
