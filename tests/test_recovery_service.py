"""The recovery service's HTTP shell (lifeboat.recovery.service): problem details for every error,
limits, health, metrics, OpenAPI (fuzzed with schemathesis), the audit endpoints, and two
``lifeboat serve`` replicas sharing one PostgreSQL database."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel
from schemathesis.checks import positive_data_acceptance
from schemathesis.core.result import Ok
from sqlalchemy.engine import make_url

from lifeboat.errors import RecoveryError
from lifeboat.recovery import audit, migrations, refusals
from lifeboat.recovery.db import AUDIT, Database, ReplayError
from lifeboat.recovery.keys import KeyKind
from lifeboat.recovery.messages import CreateVault, Lock, Unlock
from lifeboat.recovery.service.actions import apply_signed
from lifeboat.recovery.service.app import create_app
from lifeboat.recovery.service.limits import TokenBuckets, key_limit
from lifeboat.recovery.service.problems import MEDIA_TYPE, Problem
from lifeboat.recovery.service.settings import Settings, load_or_create_key
from lifeboat.recovery.service.witness import RolledBack
from recovery_helpers import (
    SERVICE,
    TcpProxy,
    counter_step,
    family_config,
    fresh_pg_schema,
    private_key,
    signed,
)

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"


class Probe(BaseModel):
    name: str
    count: int


def with_probe_routes(app: FastAPI) -> FastAPI:
    """Routes with a body and with Lifeboat errors, to drive the middleware and handlers; the
    recovery endpoints that will have them do not exist yet."""

    @app.post("/probe")
    async def probe(body: Probe) -> dict[str, Any]:
        return {"name": body.name}

    @app.post("/probe/raw")
    async def raw(request: Request) -> dict[str, Any]:
        return {"bytes": len(await request.body())}

    @app.get("/probe/refuse/{kind}")
    async def refuse(kind: str) -> None:
        if kind == "replay":
            raise ReplayError("nonce 7 was already used")
        if kind == "refused":
            raise RecoveryError("the recovery period has not ended")
        raise ZeroDivisionError("secret internals")

    return app


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", max_body_bytes=1024, rate_per_second=1000, rate_burst=1000)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(with_probe_routes(create_app(settings)), raise_server_exceptions=False) as test_client:
        yield test_client


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == MEDIA_TYPE
    body = response.json()
    assert body["status"] == status and isinstance(body["title"], str) and isinstance(body["type"], str)
    return body  # type: ignore[no-any-return]


def test_unknown_paths_and_methods_are_problems(client: TestClient) -> None:
    assert assert_problem(client.get("/nowhere"), 404) == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "instance": "/nowhere",
    }
    assert assert_problem(client.delete("/healthz"), 405)["title"] == "Method Not Allowed"


def test_validation_errors_are_problems_that_do_not_echo_input(client: TestClient) -> None:
    hostile = "<script>alert(1)</script>\u202e"
    body = assert_problem(client.post("/probe", json={"name": hostile, "count": hostile}), 422)
    assert body["type"] == "urn:lifeboat:problem:validation"
    assert body["errors"][0]["location"] == ["body", "count"]
    assert hostile not in json.dumps(body) and "script" not in json.dumps(body)
    assert_problem(
        client.post("/probe", content=b"{not json", headers={"Content-Type": "application/json"}), 422
    )


def test_lifeboat_errors_map_to_statuses_and_internal_errors_say_nothing(client: TestClient) -> None:
    assert assert_problem(client.get("/probe/refuse/replay"), 409)["type"] == "urn:lifeboat:problem:replayed"
    refused = assert_problem(client.get("/probe/refuse/refused"), 409)
    assert refused["detail"] == "the recovery period has not ended"
    internal = assert_problem(client.get("/probe/refuse/crash"), 500)
    assert "secret" not in json.dumps(internal)


def test_bodies_over_the_limit_are_refused_declared_or_streamed(client: TestClient) -> None:
    assert client.post("/probe/raw", content=b"x" * 1024).json() == {"bytes": 1024}
    assert_problem(client.post("/probe/raw", content=b"x" * 1025), 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(8):
            yield b"y" * 200

    assert_problem(client.post("/probe/raw", content=chunks()), 413)
    assert_problem(client.post("/probe/raw", content=b"x", headers={"Content-Length": "abc"}), 400)


def test_each_address_has_a_rate_limit_that_a_header_does_not_lift(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", rate_per_second=0.01, rate_burst=3)
    app = create_app(settings)
    with (
        TestClient(app, client=("192.0.2.1", 5000)) as alice,
        TestClient(app, client=("192.0.2.2", 5000)) as bob,
    ):
        assert [alice.get("/v1/audit/head").status_code for _ in range(3)] == [200] * 3
        limited = alice.get("/v1/audit/head")
        assert_problem(limited, 429)
        assert int(limited.headers["Retry-After"]) >= 1
        # a header of the client's choosing once chose the bucket: it no longer does
        assert_problem(alice.get("/v1/audit/head", headers={"Lifeboat-Key": "fresh"}), 429)
        assert bob.get("/v1/audit/head").status_code == 200
        assert alice.get("/healthz").status_code == 200  # probes are never limited


def test_a_signing_key_is_charged_only_once_its_signature_holds(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'recovery.db'}")
    try:
        migrations.upgrade(database.engine)
        owner = private_key(KeyKind.ED25519, "owner")
        config, family, _ = family_config(owner)
        guardian = family[0]
        admit = key_limit(TokenBuckets(0.001, 1))
        now = int(database.now())
        apply_signed(database, SERVICE, signed(owner, CreateVault(config), now), admit=admit)
        forged = dataclasses.replace(signed(guardian, Lock(), now), signature=bytes(64))
        for _ in range(3):  # a forger cannot spend the guardian's allowance
            with pytest.raises(refusals.BadSignature):
                apply_signed(database, SERVICE, forged, admit=admit)
        apply_signed(database, SERVICE, signed(guardian, Lock(), now), admit=admit)
        with pytest.raises(Problem) as caught:
            apply_signed(database, SERVICE, signed(guardian, Unlock(), now), admit=admit)
        assert caught.value.status_code == 429 and int((caught.value.headers or {})["Retry-After"]) >= 1
        other = private_key(KeyKind.ED25519, "another owner")
        second = signed(other, CreateVault(family_config(other)[0]), now, vault=bytes(31) + b"\x02")
        apply_signed(database, SERVICE, second, admit=admit)  # each key has its own bucket
    finally:
        database.dispose()


def test_token_buckets_refill_at_their_rate() -> None:
    now = [0.0]
    buckets = TokenBuckets(2.0, 2, clock=lambda: now[0], max_keys=2)
    assert [buckets.take("k") for _ in range(2)] == [0.0, 0.0]
    assert buckets.take("k") == pytest.approx(0.5)
    now[0] += 0.5
    assert buckets.take("k") == 0.0
    buckets.take("a")
    buckets.take("b")  # "k" is the least recently seen: dropped, so it starts full again
    assert buckets.take("k") == 0.0


def test_healthz_reports_the_database(client: TestClient, tmp_path: Path) -> None:
    assert client.get("/healthz").json() == {
        "status": "ok",
        "database": "sqlite",
        "audit_seq": 0,
        "version": "0.1.0",
    }


def test_healthz_fails_when_the_database_goes_away(tmp_path: Path) -> None:
    with fresh_pg_schema() as url:
        parsed = make_url(url)
        proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
        database = Database(parsed.set(port=proxy.port).render_as_string(hide_password=False))
        with TestClient(create_app(Settings(home=tmp_path / "home"), database=database)) as client:
            assert client.get("/healthz").json()["database"] == "postgresql"
            assert "lifeboat_database_up 1.0" in client.get("/metrics").text
            proxy.cut()
            assert assert_problem(client.get("/healthz"), 503)["type"] == "urn:lifeboat:problem:unavailable"
            metrics = client.get("/metrics")
            assert metrics.status_code == 200 and "lifeboat_database_up 0.0" in metrics.text
        database.dispose()


def test_metrics_count_requests_by_route_and_show_the_chain(client: TestClient) -> None:
    client.app.state.service.database.transact("v1", counter_step())  # type: ignore[attr-defined]
    client.get("/healthz")
    client.get("/no/such/thing/12345")
    text = client.get("/metrics").text
    assert 'lifeboat_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
    assert 'route="unmatched",status="404"' in text and "12345" not in text
    assert "lifeboat_audit_entries 1.0" in text
    assert 'lifeboat_outbox_rows{status="pending"} 0.0' in text


def test_the_audit_export_over_http_verifies_with_the_published_key(
    client: TestClient, settings: Settings
) -> None:
    database: Database = client.app.state.service.database  # type: ignore[attr-defined]
    for vault in ("a", "b"):
        database.transact(vault, counter_step())
    key = load_or_create_key(settings.key_path()).public_key
    assert database.service_keys() == [key]
    head = audit.verify_head(client.get("/v1/audit/head").json(), key)
    export = client.get("/v1/audit/export")
    assert export.headers["content-type"].startswith("application/jsonl")
    verified = audit.verify(export.content, key, known_heads=[(head.seq, head.hash)])
    assert verified.head.seq == 2 and [e.vault for e in verified.entries] == ["a", "b"]
    assert (settings.key_path().stat().st_mode & 0o777) == 0o600


def test_the_openapi_document_names_problem_responses(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert {"/healthz", "/metrics", "/v1/audit/head", "/v1/audit/export"} <= set(document["paths"])
    responses = document["paths"]["/v1/audit/head"]["get"]["responses"]
    assert {"413", "422", "429", "500"} <= set(responses)
    assert MEDIA_TYPE in responses["429"]["content"]


def _fuzzer(operation: Any, excluded: list[Any]) -> Any:
    @hypothesis.settings(max_examples=25, deadline=None, suppress_health_check=list(hypothesis.HealthCheck))
    @hypothesis.given(case=operation.as_strategy())
    def fuzz(case: Any) -> None:
        case.call_and_validate(excluded_checks=excluded)

    return fuzz


def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(tmp_path: Path) -> None:
    """Every operation of the OpenAPI document, fuzzed: each answer is documented and none is a 5xx.

    Driven through schemathesis's strategies with hypothesis directly (its pytest plugin does not
    yet run under pytest 9)."""
    app = create_app(
        Settings(home=tmp_path / "home", rate_per_second=10_000, rate_burst=10_000, simulated_clock=True)
    )
    with TestClient(app):
        api = schemathesis.openapi.from_asgi("/openapi.json", app)
        operations = [result.ok() for result in api.get_all_operations() if isinstance(result, Ok)]
        assert len(operations) == len(list(api.get_all_operations())), (
            "the OpenAPI document has an invalid operation"
        )
        assert {op.path for op in operations} >= {
            "/healthz",
            "/metrics",
            "/v1/audit/head",
            "/v1/audit/export",
            "/v1/service",
            "/v1/actions",
            "/v1/vaults/{vault}",
            "/v1/vaults/{vault}/requests/{request_id}/escrow",
            "/v1/clock/advance",
        }
        for operation in operations:
            # a signed action that fits the schema is still refused unless its signature verifies
            # (a 4xx refusal, never a 5xx): accepting schema-valid bodies is not expected there
            excluded = [positive_data_acceptance] if operation.path == "/v1/actions" else []
            fuzz = _fuzzer(operation, excluded)
            fuzz()


# --- two replicas ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_healthy(port: int, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"lifeboat serve exited with {process.returncode}: {process.stderr.read() if process.stderr else ''}"
            )
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"lifeboat serve on port {port} never became healthy")


HAMMER = """
import sys
sys.path.insert(0, sys.argv[3])
from recovery_helpers import counter_step
from lifeboat.recovery.db import Database
database = Database(sys.argv[1])
step = counter_step(sys.argv[4])
for _ in range(int(sys.argv[2])):
    database.transact("hot", step)
"""


@pytest.mark.slow
def test_two_serve_replicas_on_one_postgresql_migrate_once_and_agree(tmp_path: Path) -> None:
    with fresh_pg_schema() as url:
        key_file = tmp_path / "service-key.json"
        env = {**os.environ, "PYTHONPATH": str(SRC), "LIFEBOAT_HOME": str(tmp_path / "home")}
        ports = [free_port(), free_port()]
        replicas = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "lifeboat",
                    "serve",
                    "--port",
                    str(port),
                    "--database",
                    url,
                    "--service-key",
                    str(key_file),
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for port in ports
        ]
        try:
            for port, replica in zip(ports, replicas, strict=True):
                wait_healthy(port, replica)
            each = 100
            hammers = [
                subprocess.Popen(
                    [sys.executable, "-c", HAMMER, url, str(each), str(TESTS), f"via-{port}"], env=env
                )
                for port in ports
            ]
            heads_during = []
            while any(h.poll() is None for h in hammers):
                for port in ports:
                    heads_during.append(httpx.get(f"http://127.0.0.1:{port}/v1/audit/head", timeout=5).json())
            assert all(h.wait() == 0 for h in hammers)
            key = load_or_create_key(key_file).public_key
            exports = [
                httpx.get(f"http://127.0.0.1:{port}/v1/audit/export", timeout=30).content for port in ports
            ]
            verified = [
                audit.verify(
                    data,
                    key,
                    known_heads=[(h["head"]["seq"], bytes.fromhex(h["head"]["hash"])) for h in heads_during],
                )
                for data in exports
            ]
            assert verified[0].entries == verified[1].entries
            assert [e.details["count"] for e in verified[0].entries] == list(range(1, 2 * each + 1))
        finally:
            for replica in replicas:
                replica.send_signal(signal.SIGTERM)
            for replica in replicas:
                replica.wait(timeout=30)
        database = Database(url)
        assert database.load("hot")[0] == 2 * each
        database.dispose()


def test_serve_migrate_only(cli: Any, tmp_path: Path) -> None:
    result = cli("--json", "serve", "--migrate-only", "--database", f"sqlite:///{tmp_path / 'm.db'}")
    assert result.code == 0, result.err
    assert result.json() == {"ok": True, "revision": "0002", "dialect": "sqlite"}
    bad = cli("serve", "--migrate-only", "--database", "mysql://u:hunter2@h/d")
    assert bad.code == 2 and "hunter2" not in bad.err and "unsupported recovery database" in bad.err


# --- the witness: a database restored from an old backup -----------------------------------


def sqlite_backup(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as live, sqlite3.connect(target) as copy:
        live.backup(copy)


def test_a_database_restored_from_an_older_backup_is_refused_at_start(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", deliver_webhooks=False)
    db_file = tmp_path / "home" / "recovery.db"
    with TestClient(create_app(settings)) as client:
        database: Database = client.app.state.service.database  # type: ignore[attr-defined]
        database.transact("v1", counter_step())
        sqlite_backup(db_file, tmp_path / "old.db")  # the nightly backup, one entry long
        database.transact("v1", counter_step())
        database.transact("v1", counter_step())
    kept = json.loads(settings.witness_path().read_text())
    assert kept["head"]["seq"] == 3
    with TestClient(create_app(settings)) as client:  # a plain restart is fine
        assert client.get("/healthz").json()["audit_seq"] == 3
    for suffix in ("-wal", "-shm"):
        Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    (tmp_path / "old.db").replace(db_file)
    with (
        pytest.raises(RolledBack, match="ends at entry 1, but this service signed entry 3"),
        TestClient(create_app(settings)),
    ):
        pass


def test_a_rewritten_log_is_refused_at_start(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", deliver_webhooks=False)
    with TestClient(create_app(settings)) as client:
        client.app.state.service.database.transact("v1", counter_step())  # type: ignore[attr-defined]
    database = Database(settings.database_url())
    with database.engine.begin() as connection:
        connection.execute(AUDIT.update().where(AUDIT.c.seq == 1).values(hash=bytes(32)))
    database.dispose()
    with pytest.raises(RolledBack, match="entry 1 in the database differs"), TestClient(create_app(settings)):
        pass


def test_a_witness_signed_by_another_key_is_refused(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", deliver_webhooks=False)
    settings.home_path().mkdir(parents=True)
    forged = audit.sign_head(bytes(32), 0, audit.GENESIS, 1)
    settings.witness_path().write_text(json.dumps(forged.to_json()))
    with pytest.raises(audit.AuditError, match="not by the service key"), TestClient(create_app(settings)):
        pass
