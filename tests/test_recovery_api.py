"""The recovery endpoints end to end: a whole recovery against a real ``lifeboat serve``, every bad
input of the issue refused with a problem and no state change, the sweep of due transitions (also
after a restart), exactly-once execution between two replicas on PostgreSQL, and a database dump
taken before execution that holds nothing usable."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets as pysecrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyrage
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from fastapi.testclient import TestClient

from lifeboat import secrets
from lifeboat.errors import RecoveryError, UsageError
from lifeboat.recovery import audit, escrow, messages, refusals
from lifeboat.recovery.client import Client, ServiceProblem, error_from_problem
from lifeboat.recovery.db import Database
from lifeboat.recovery.keys import KeyKind, PrivateKey
from lifeboat.recovery.messages import (
    Action,
    Approve,
    CreateVault,
    Execute,
    Lock,
    Message,
    OpenRequest,
    ProposeChange,
    Service,
    SignedMessage,
    UploadShare,
    Veto,
)
from lifeboat.recovery.service.app import create_app
from lifeboat.recovery.service.problems import MEDIA_TYPE
from lifeboat.recovery.service.settings import Settings, load_or_create_key
from lifeboat.secrets.fingerprint import fingerprint, format_fingerprint
from recovery_helpers import DAY, family_config, fresh_pg_schema, private_key, request_id

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"

SECRET = bytes(range(100, 132))
SHARES = secrets.split(SECRET, "2of3")
FINGERPRINT = format_fingerprint(fingerprint(SECRET))
OWNER = private_key(KeyKind.ED25519, "api-owner")
NEW_OWNER = private_key(KeyKind.BIP340, "api-new-owner")
STRANGER = private_key(KeyKind.ED25519, "api-stranger")
CONFIG, FAMILY, LAWYER = family_config()


def share_file(mnemonic: str) -> str:
    return f"# Lifeboat SLIP-39 share. Set s1, fingerprint {FINGERPRINT}\n# Group 1 of 1\n{mnemonic}\n"


def sign(service: Service, message: Message, key: PrivateKey) -> SignedMessage:
    """Sign as the key's owner would: an Ethereum guardian through eth-account's EIP-712 signer."""
    if key.kind is KeyKind.EIP712:
        signable = encode_typed_data(full_message=messages.typed_data(service, message))
        signature = bytes(Account.sign_message(signable, key.secret).signature)
        return SignedMessage(service, message, key.public_key, signature)
    return messages.sign(service, message, key)


@dataclass
class Actor:
    """Signs actions for one vault at the service's clock and posts them through the client."""

    client: Client
    vault: bytes

    def signed(self, key: PrivateKey, action: Action, *, lifetime: int = 3600) -> SignedMessage:
        info = self.client.service()
        message = Message(self.vault, action, pysecrets.randbits(63), info.now - 60, info.now + lifetime)
        return sign(info.service, message, key)

    def act(self, key: PrivateKey, action: Action, ciphertext: bytes | None = None) -> list[str]:
        return self.client.act(self.signed(key, action), ciphertext).kinds


# --- a real lifeboat serve ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_healthy(port: int, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"lifeboat serve exited with {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"lifeboat serve on port {port} never became healthy")


@contextmanager
def serving(
    home: Path, database: str, *, replicas: int = 1, key_file: Path | None = None
) -> Iterator[list[str]]:
    """``lifeboat serve --simulated-clock`` processes on 127.0.0.1; yields their base URLs."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "LIFEBOAT_HOME": str(home)}
    ports = [free_port() for _ in range(replicas)]
    command = [sys.executable, "-m", "lifeboat", "serve", "--simulated-clock", "--database", database]
    command += ["--rate", "10000", "--burst", "10000"]
    if key_file is not None:
        command += ["--service-key", str(key_file)]
    processes = [
        subprocess.Popen(
            [*command, "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for port in ports
    ]
    try:
        for port, process in zip(ports, processes, strict=True):
            wait_healthy(port, process)
        yield [f"http://127.0.0.1:{port}" for port in ports]
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)
            if process.stderr is not None:
                process.stderr.close()


def verified_log(client: Client, key: bytes) -> audit.VerifiedExport:
    head = audit.verify_head(client.audit_head(), key)
    return audit.verify(client.audit_export(), key, known_heads=[(head.seq, head.hash)])


# --- a whole recovery -----------------------------------------------------------------------------


@pytest.mark.slow
def test_a_whole_recovery_through_lifeboat_serve(tmp_path: Path) -> None:
    """Vault (Ed25519 owner; Ed25519, BIP-340 and EIP-712 guardians), a request, approvals (one
    signed by eth-account), escrow uploads, an owner veto of a second request, the simulated
    period, execution, and the claim: the new owner opens the bundle to the secret."""
    home, identity = tmp_path / "home", pyrage.x25519.Identity.generate()
    recipient = str(identity.to_public())
    key_file = tmp_path / "service-key.json"
    with (
        serving(home, f"sqlite:///{tmp_path / 'recovery.db'}", key_file=key_file) as (url,),
        Client(url) as client,
    ):
        vault = pysecrets.token_bytes(32)
        actor = Actor(client, vault)
        alice, bob, carol = FAMILY
        assert actor.act(OWNER, CreateVault(CONFIG)) == ["vault_created"]
        first, second = request_id(101), request_id(102)
        assert actor.act(alice, OpenRequest(first, NEW_OWNER.public_key, "family")) == [
            "request_opened",
            "request_approval",
        ]
        assert actor.act(carol, Approve(first, NEW_OWNER.public_key, "family")) == [
            "request_approval",
            "request_approved",
        ]
        uploads = {}
        for guardian, mnemonic in ((alice, SHARES[0]), (carol, SHARES[2])):
            ciphertext = escrow.escrow_share(share_file(mnemonic), recipient)
            uploads[guardian.public_key] = ciphertext
            digest = escrow.ciphertext_digest(ciphertext)
            assert actor.act(guardian, UploadShare(first, digest), ciphertext) == ["share_escrowed"]
        with pytest.raises(refusals.EscrowNotReleased):
            client.escrow(vault, first)

        # a second request (another new owner), escrowed and then vetoed by the owner
        thief = private_key(KeyKind.ED25519, "api-thief")
        actor.act(bob, OpenRequest(second, thief.public_key, "family"))
        decoy = escrow.escrow_share(share_file(SHARES[1]), recipient)
        actor.act(bob, UploadShare(second, escrow.ciphertext_digest(decoy)), decoy)
        assert actor.act(OWNER, Veto(second)) == [
            "owner_veto",
            "request_cancelled",
            "escrow_destroyed",
        ]
        with pytest.raises(refusals.EscrowDestroyed):
            client.escrow(vault, second)

        with pytest.raises(refusals.TooEarly):
            actor.act(NEW_OWNER, Execute(first))
        before = client.service().now
        assert client.advance_clock(3 * DAY) >= before + 3 * DAY
        assert client.vault(vault).state.request(first).status.value == "executable"  # type: ignore[union-attr]
        assert actor.act(NEW_OWNER, Execute(first))[:2] == ["request_executed", "escrow_releasable"]
        view = client.vault(vault)
        assert view.state.owner == NEW_OWNER.public_key and view.version >= 9

        released = client.escrow(vault, first)
        assert {s.guardian: s.ciphertext for s in released} == uploads
        assert escrow.open_bundle(identity, [s.ciphertext for s in released], FINGERPRINT) == SECRET

        log = verified_log(client, load_or_create_key(key_file).public_key)
        actions = [e.action for e in log.entries if e.vault == vault.hex()]
        assert actions.count("request_executable") == 1  # the sweep logged it when the clock moved
        assert actions.count("request_executed") == 1 and actions.count("owner_veto") == 1
        executed = next(e for e in log.entries if e.action == "request_executed")
        assert messages.decode_signed(executed.message).message.action == Execute(first)


# --- bad input: a problem each, and nothing changes --------------------------------------------


@pytest.fixture
def service_client(tmp_path: Path) -> Iterator[tuple[Client, Database]]:
    settings = Settings(
        home=tmp_path / "home",
        simulated_clock=True,
        rate_per_second=10_000,
        rate_burst=10_000,
        deliver_webhooks=False,
        max_body_bytes=64 * 1024,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        client = Client("http://testserver", transport=test_client._transport)
        yield client, test_client.app.state.service.database  # type: ignore[attr-defined]
        client.close()


@dataclass
class Fixture:
    client: Client
    database: Database
    actor: Actor
    vault: bytes
    request: bytes

    def snapshot(self) -> tuple[bytes, tuple[int, bytes], int]:
        state = self.database.load(self.vault.hex())[1]
        return (
            state,
            self.database.audit_head(),
            len(self.database.escrow_bundle(self.vault.hex(), self.request.hex())),
        )


@pytest.fixture
def opened(service_client: tuple[Client, Database]) -> Fixture:
    """A vault with one family request opened by Alice (not yet approved) and Alice's share escrowed."""
    client, database = service_client
    vault = pysecrets.token_bytes(32)
    actor = Actor(client, vault)
    actor.act(OWNER, CreateVault(CONFIG))
    request = request_id(7)
    actor.act(FAMILY[0], OpenRequest(request, NEW_OWNER.public_key, "family"))
    return Fixture(client, database, actor, vault, request)


def _post(fixture: Fixture, body: Any = None, *, content: bytes | None = None) -> httpx.Response:
    http = fixture.client._http
    if content is not None:
        return http.post("/v1/actions", content=content, headers={"Content-Type": "application/json"})
    return http.post("/v1/actions", json=body)


def _body(signed: SignedMessage, ciphertext: bytes | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"signed": messages.signed_to_json(signed)}
    if ciphertext is not None:
        body["ciphertext"] = base64.b64encode(ciphertext).decode()
    return body


HOSTILE = "<script>alert(1)</script>\u202e\x00' OR 1=1; --" + "\U0001f4a3" * 20


def forged(f: Fixture) -> httpx.Response:
    signed = f.actor.signed(FAMILY[2], Approve(f.request, NEW_OWNER.public_key, "family"))
    body = _body(signed)
    signature = bytearray(signed.signature)
    signature[5] ^= 1
    body["signed"]["signature"] = "0x" + signature.hex()
    return _post(f, body)


def signed_by_another_key(f: Fixture) -> httpx.Response:
    signed = f.actor.signed(STRANGER, Approve(f.request, NEW_OWNER.public_key, "family"))
    body = _body(signed)
    body["signed"]["signer"] = FAMILY[1].public_key.text  # claims to be Bob
    return _post(f, body)


def replayed(f: Fixture) -> httpx.Response:
    signed = f.actor.signed(LAWYER, Lock())
    assert _post(f, _body(signed)).status_code == 200
    f.snapshot_after_setup = f.snapshot()  # type: ignore[attr-defined]
    return _post(f, _body(signed))


def expired(f: Fixture) -> httpx.Response:
    now = f.client.service().now
    message = Message(f.vault, Approve(f.request, NEW_OWNER.public_key, "family"), 99, now - 600, now - 1)
    return _post(f, _body(sign(f.client.service().service, message, FAMILY[2])))


def not_yet_valid(f: Fixture) -> httpx.Response:
    now = f.client.service().now
    message = Message(f.vault, Approve(f.request, NEW_OWNER.public_key, "family"), 98, now + 600, now + 1200)
    return _post(f, _body(sign(f.client.service().service, message, FAMILY[2])))


def too_long(f: Fixture) -> httpx.Response:
    return _post(
        f,
        _body(
            f.actor.signed(FAMILY[2], Approve(f.request, NEW_OWNER.public_key, "family"), lifetime=40 * DAY)
        ),
    )


def other_service(f: Fixture) -> httpx.Response:
    now = f.client.service().now
    message = Message(f.vault, Approve(f.request, NEW_OWNER.public_key, "family"), 97, now - 60, now + 600)
    return _post(f, _body(sign(Service(1, bytes(20)), message, FAMILY[2])))


def non_guardian(f: Fixture) -> httpx.Response:
    return _post(f, _body(f.actor.signed(STRANGER, Approve(f.request, NEW_OWNER.public_key, "family"))))


def lawyer_on_family(f: Fixture) -> httpx.Response:
    return _post(f, _body(f.actor.signed(LAWYER, Approve(f.request, NEW_OWNER.public_key, "family"))))


def double_approval(f: Fixture) -> httpx.Response:
    return _post(f, _body(f.actor.signed(FAMILY[0], Approve(f.request, NEW_OWNER.public_key, "family"))))


def mismatched_approval(f: Fixture) -> httpx.Response:
    return _post(f, _body(f.actor.signed(FAMILY[2], Approve(f.request, STRANGER.public_key, "family"))))


def execute_before_time(f: Fixture) -> httpx.Response:
    return _post(f, _body(f.actor.signed(NEW_OWNER, Execute(f.request))))


def locked_vault(f: Fixture) -> httpx.Response:
    assert _post(f, _body(f.actor.signed(FAMILY[1], Lock()))).status_code == 200
    f.snapshot_after_setup = f.snapshot()  # type: ignore[attr-defined]
    return _post(f, _body(f.actor.signed(OWNER, ProposeChange(CONFIG))))


def unknown_vault(f: Fixture) -> httpx.Response:
    other = Actor(f.client, bytes(32))
    return _post(f, _body(other.signed(FAMILY[2], Approve(f.request, NEW_OWNER.public_key, "family"))))


def unknown_request(f: Fixture) -> httpx.Response:
    return _post(
        f, _body(f.actor.signed(FAMILY[2], Approve(request_id(999), NEW_OWNER.public_key, "family")))
    )


def vault_exists(f: Fixture) -> httpx.Response:
    return _post(f, _body(f.actor.signed(OWNER, CreateVault(CONFIG))))


def upload_without_approval(f: Fixture) -> httpx.Response:
    ciphertext = escrow.escrow_share(
        share_file(SHARES[1]), str(pyrage.x25519.Identity.generate().to_public())
    )
    upload = UploadShare(f.request, escrow.ciphertext_digest(ciphertext))
    return _post(f, _body(f.actor.signed(FAMILY[1], upload), ciphertext))


def upload_with_another_ciphertext(f: Fixture) -> httpx.Response:
    ciphertext = escrow.escrow_share(
        share_file(SHARES[0]), str(pyrage.x25519.Identity.generate().to_public())
    )
    upload = UploadShare(f.request, escrow.ciphertext_digest(ciphertext))
    return _post(f, _body(f.actor.signed(FAMILY[0], upload), ciphertext + b"\n"))


def upload_without_ciphertext(f: Fixture) -> httpx.Response:
    return _post(f, _body(f.actor.signed(FAMILY[0], UploadShare(f.request, bytes(32)))))


def ciphertext_not_base64(f: Fixture) -> httpx.Response:
    body = _body(f.actor.signed(FAMILY[0], UploadShare(f.request, bytes(32))))
    body["ciphertext"] = "%%%not base64%%%"
    return _post(f, body)


def ciphertext_on_an_approval(f: Fixture) -> httpx.Response:
    return _post(
        f, _body(f.actor.signed(FAMILY[2], Approve(f.request, NEW_OWNER.public_key, "family")), b"x")
    )


def oversized(f: Fixture) -> httpx.Response:
    return _post(f, content=b'{"signed": "' + b"A" * 70_000 + b'"}')


def not_json(f: Fixture) -> httpx.Response:
    return _post(f, content=b"{not json")


def signed_not_an_object(f: Fixture) -> httpx.Response:
    return _post(f, {"signed": "hello"})


def missing_fields(f: Fixture) -> httpx.Response:
    body = _body(f.actor.signed(FAMILY[2], Approve(f.request, NEW_OWNER.public_key, "family")))
    del body["signed"]["message"]["nonce"]
    return _post(f, body)


def extra_top_level_field(f: Fixture) -> httpx.Response:
    body = _body(f.actor.signed(FAMILY[2], Approve(f.request, NEW_OWNER.public_key, "family")))
    body["surprise"] = HOSTILE
    return _post(f, body)


def hostile_policy_name(f: Fixture) -> httpx.Response:
    return _post(
        f, _body(f.actor.signed(FAMILY[2], OpenRequest(request_id(8), STRANGER.public_key, HOSTILE)))
    )


def hostile_signer(f: Fixture) -> httpx.Response:
    body = _body(f.actor.signed(FAMILY[2], Approve(f.request, NEW_OWNER.public_key, "family")))
    body["signed"]["signer"] = HOSTILE
    return _post(f, body)


def hostile_action(f: Fixture) -> httpx.Response:
    body = _body(f.actor.signed(FAMILY[2], Approve(f.request, NEW_OWNER.public_key, "family")))
    body["signed"]["action"] = HOSTILE
    return _post(f, body)


def unknown_version(f: Fixture) -> httpx.Response:
    body = _body(f.actor.signed(FAMILY[2], Approve(f.request, NEW_OWNER.public_key, "family")))
    body["signed"]["version"] = 2
    return _post(f, body)


BAD_INPUTS = {
    forged: (403, "bad_signature"),
    signed_by_another_key: (403, "bad_signature"),
    replayed: (409, "replayed_nonce"),
    expired: (422, "expired"),
    not_yet_valid: (422, "not_yet_valid"),
    too_long: (422, "lifetime_too_long"),
    other_service: (403, "wrong_service"),
    non_guardian: (403, "not_authorized"),
    lawyer_on_family: (403, "not_authorized"),
    double_approval: (409, "duplicate_approval"),
    mismatched_approval: (422, "request_mismatch"),
    execute_before_time: (409, "too_early"),
    locked_vault: (409, "vault_locked"),
    unknown_vault: (404, "unknown_vault"),
    unknown_request: (404, "unknown_request"),
    vault_exists: (409, "vault_exists"),
    upload_without_approval: (403, "not_authorized"),
    upload_with_another_ciphertext: (409, "escrow_refused"),
    upload_without_ciphertext: (400, "malformed_message"),
    ciphertext_not_base64: (400, "malformed_message"),
    ciphertext_on_an_approval: (400, "malformed_message"),
    oversized: (413, None),
    not_json: (422, "validation"),
    signed_not_an_object: (422, "validation"),
    missing_fields: (400, "malformed_message"),
    extra_top_level_field: (422, "validation"),
    hostile_policy_name: (404, "unknown_policy"),
    hostile_signer: (400, "malformed_message"),
    hostile_action: (400, "malformed_message"),
    unknown_version: (400, "unknown_version"),
}


@pytest.mark.parametrize("attempt", list(BAD_INPUTS), ids=lambda f: f.__name__)
def test_bad_input_is_a_problem_and_changes_nothing(opened: Fixture, attempt: Any) -> None:
    before = opened.snapshot()
    response = attempt(opened)
    before = getattr(opened, "snapshot_after_setup", before)
    status, code = BAD_INPUTS[attempt]
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == MEDIA_TYPE
    problem = response.json()
    assert problem["status"] == status
    if code is not None:
        assert problem["type"].endswith(":" + code)
    text = json.dumps(problem)
    assert "<script" not in text and "\\u202e" not in text.lower() and "\\u0000" not in text
    assert opened.snapshot() == before
    assert isinstance(error_from_problem(status, problem), RecoveryError)


def test_the_client_raises_the_refusal_the_service_raised(opened: Fixture) -> None:
    with pytest.raises(refusals.TooEarly, match="becomes executable"):
        opened.actor.act(NEW_OWNER, Execute(opened.request))
    with pytest.raises(refusals.UnknownVault) as caught:  # a read's 404 is the same refusal as an action's
        opened.client.vault(bytes(32))
    assert caught.value.status == 404  # type: ignore[attr-defined]
    with pytest.raises(ServiceProblem):
        Client("http://127.0.0.1:9").service()  # nothing listens there


@pytest.mark.parametrize(
    ("status", "body", "call", "error", "match"),
    [
        (200, b"<html>a login page</html>", "service", "ServiceUnavailable", "not a JSON object"),
        (200, b"[1, 2]", "service", "ServiceUnavailable", "not a JSON object"),
        (200, b'{"now": 5}', "service", "ServiceUnavailable", "service description"),
        (200, b'{"service": {"name": "x"}, "now": "soon"}', "service", "ServiceUnavailable", "cannot read"),
        (
            200,
            b'{"vault": "00", "version": 1, "now": 1, "state": {}}',
            "vault",
            "ServiceUnavailable",
            "vault state",
        ),
        (
            200,
            b'{"shares": [{"guardian": "ed25519:zz", "ciphertext": "AA=="}]}',
            "escrow",
            "ServiceUnavailable",
            "escrow",
        ),
        (200, b'{"now": true}', "advance_clock", "ServiceUnavailable", "clock"),
        (502, b"bad gateway", "service", "ServiceProblem", r"HTTP 502"),
        (
            409,
            b'{"type": "urn:lifeboat:problem:too_early", "detail": "wait"}',
            "service",
            "TooEarly",
            r"\(too_early\): wait",
        ),
    ],
)
def test_the_client_names_answers_it_cannot_read(
    status: int, body: bytes, call: str, error: str, match: str
) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(status, content=body))
    with Client("http://lifeboat.invalid", transport=transport) as client:
        arguments: dict[str, tuple[object, ...]] = {
            "vault": (bytes(32),),
            "escrow": (bytes(32), bytes(32)),
            "advance_clock": (60,),
        }
        with pytest.raises(RecoveryError, match=match) as caught:
            getattr(client, call)(*arguments.get(call, ()))
    assert type(caught.value).__name__ == error


def test_the_client_wants_an_http_url() -> None:
    with pytest.raises(UsageError, match="http://"):
        Client("127.0.0.1:8750")


def test_reads_of_unknown_things_are_problems(opened: Fixture) -> None:
    http = opened.client._http
    assert http.get(f"/v1/vaults/{'00' * 32}").status_code == 404
    assert http.get("/v1/vaults/not-hex").status_code == 422
    assert (
        http.get(f"/v1/vaults/0x{opened.vault.hex()}/requests/{'11' * 32}/escrow")
        .json()["type"]
        .endswith("unknown_request")
    )
    view = opened.client.vault("0x" + opened.vault.hex())
    assert view.state.vault == opened.vault and view.document["requests"][0]["status"] == "pending"


def test_the_clock_endpoint_exists_only_with_the_flag(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(home=tmp_path / "home"))) as client:
        assert client.post("/v1/clock/advance", json={"seconds": 5}).status_code == 404
        assert "/v1/clock/advance" not in client.get("/openapi.json").json()["paths"]
        assert abs(client.get("/v1/service").json()["now"] - time.time()) < 5


# --- the sweep and the clock -------------------------------------------------------------------


def test_due_transitions_are_logged_on_time_also_after_a_restart(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path / "home", simulated_clock=True, deliver_webhooks=False, sweep_interval=0.05
    )
    vault, request = pysecrets.token_bytes(32), request_id(3)
    with TestClient(create_app(settings)) as test_client:
        client = Client("http://testserver", transport=test_client._transport)
        actor = Actor(client, vault)
        actor.act(OWNER, CreateVault(CONFIG))
        actor.act(FAMILY[0], OpenRequest(request, NEW_OWNER.public_key, "family"))
        actor.act(FAMILY[1], Approve(request, NEW_OWNER.public_key, "family"))
        start = client.service().now
        identity = client.service().service
    database = Database(settings.database_url())
    database.load_clock_offset()
    database.live_offset = True
    moved_to = database.advance_clock(3 * DAY + 5)  # while no service runs
    assert moved_to >= start + 3 * DAY + 5
    version = database.load(vault.hex())[0]
    with TestClient(create_app(settings)) as test_client:
        client = Client("http://testserver", transport=test_client._transport)
        assert client.service().service == identity  # the domain and clock survive a restart
        assert client.service().now >= moved_to
        deadline = time.monotonic() + 10
        while database.load(vault.hex())[0] == version and time.monotonic() < deadline:
            time.sleep(0.05)
        actions = [e.action for e in database.audit_entries()]
        assert actions[-1] == "request_executable"
        executable_at = next(e for e in database.audit_entries() if e.action == "request_approved")
        logged = next(e for e in database.audit_entries() if e.action == "request_executable")
        assert logged.details["at"] == int(executable_at.details["detail"]["executable_at"])
        client.advance_clock(11 * DAY)  # past the execution window: expires at once, logged by the call
        assert [e.action for e in database.audit_entries()][-1] == "request_expired"
    database.dispose()


def test_a_database_keeps_its_domain(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", chain_id=5, verifying_contract=bytes(range(20)))
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/service").json()["service"] == {
            "chainId": 5,
            "verifyingContract": "0x" + bytes(range(20)).hex(),
        }
    with (
        pytest.raises(RecoveryError, match="cannot change"),
        TestClient(create_app(Settings(home=tmp_path / "home", chain_id=6))),
    ):
        pass


# --- two replicas race on PostgreSQL --------------------------------------------------------------


@pytest.mark.slow
def test_two_replicas_execute_exactly_once(tmp_path: Path) -> None:
    with (
        fresh_pg_schema() as url,
        serving(tmp_path / "home", url, replicas=2, key_file=tmp_path / "k.json") as urls,
    ):
        clients = [Client(u) for u in urls]
        vault, request = pysecrets.token_bytes(32), request_id(55)
        actors = [Actor(c, vault) for c in clients]
        actors[0].act(OWNER, CreateVault(CONFIG))
        actors[1].act(FAMILY[0], OpenRequest(request, NEW_OWNER.public_key, "family"))

        def post(actor: Actor, signed: SignedMessage) -> int | str:
            try:
                actor.client.act(signed)
            except refusals.Refusal as refusal:
                return refusal.code
            return 200

        # the same approval to both replicas at once, and the other guardian's through either
        approvals = [
            actors[0].signed(g, Approve(request, NEW_OWNER.public_key, "family")) for g in FAMILY[1:]
        ]
        jobs = [(actors[i % 2], approvals[j]) for j in range(2) for i in range(4)]
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda job: post(*job), jobs))
        assert sorted(map(str, results)).count("200") == 2, results
        assert set(results) - {200} <= {"replayed_nonce"}
        clients[0].advance_clock(3 * DAY + 1)
        executions = [
            actors[i % 2].signed(key, Execute(request)) for i, key in enumerate([NEW_OWNER] * 10 + FAMILY * 2)
        ]
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(lambda job: post(actors[job[0] % 2], job[1]), enumerate(executions)))
        assert results.count(200) == 1, results
        assert set(results) - {200} == {"request_closed"}
        log = verified_log(clients[1], load_or_create_key(tmp_path / "k.json").public_key)
        actions = [e.action for e in log.entries]
        assert actions.count("request_executed") == 1 and actions.count("owner_changed") == 1
        assert actions.count("request_approval") == 3 and actions.count("request_approved") == 1
        for c in clients:
            assert c.vault(vault).state.owner == NEW_OWNER.public_key
            c.close()


# --- a database dump before execution ------------------------------------------------------------


def test_a_database_dump_before_execution_holds_nothing_usable(tmp_path: Path) -> None:
    """Every table of the service's database after approvals and uploads, as an attacker who copied
    it sees it: no share word sequence, and no blob that opens without the new owner's identity."""
    identity = pyrage.x25519.Identity.generate()
    settings = Settings(home=tmp_path / "home", simulated_clock=True, deliver_webhooks=False)
    vault, request = pysecrets.token_bytes(32), request_id(4)
    with TestClient(create_app(settings)) as test_client:
        client = Client("http://testserver", transport=test_client._transport)
        actor = Actor(client, vault)
        actor.act(OWNER, CreateVault(CONFIG))
        actor.act(FAMILY[0], OpenRequest(request, NEW_OWNER.public_key, "family"))
        actor.act(FAMILY[1], Approve(request, NEW_OWNER.public_key, "family"))
        ciphertexts = []
        for guardian, mnemonic in zip(FAMILY[:2], SHARES, strict=False):
            ciphertext = escrow.escrow_share(share_file(mnemonic), str(identity.to_public()))
            actor.act(guardian, UploadShare(request, escrow.ciphertext_digest(ciphertext)), ciphertext)
            ciphertexts.append(ciphertext)
        dump = tmp_path / "dump.db"
        with sqlite3.connect(tmp_path / "home" / "recovery.db") as live, sqlite3.connect(dump) as copy:
            live.backup(copy)
    cells: list[bytes] = []
    with sqlite3.connect(dump) as stolen:
        tables = [r[0] for r in stolen.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert {"vaults", "escrow", "audit_entries", "outbox", "used_nonces", "service_settings"} <= set(
            tables
        )
        for table in tables:
            for row in stolen.execute(f'SELECT * FROM "{table}"'):  # noqa: S608 - names from the file
                cells += [c if isinstance(c, bytes) else str(c).encode() for c in row]
    everything = b"\n".join(cells)
    for mnemonic in SHARES:
        words = mnemonic.split()
        for i in range(len(words) - 2):
            assert " ".join(words[i : i + 3]).encode() not in everything
    armored = re.findall(
        rb"-----BEGIN AGE ENCRYPTED FILE-----.*?-----END AGE ENCRYPTED FILE-----\n?", everything, re.S
    )
    assert len(armored) == 2 and {bytes(a) for a in armored} == set(ciphertexts)
    for blob in armored:
        with pytest.raises(pyrage.DecryptError):
            pyrage.decrypt(blob, [pyrage.x25519.Identity.generate()])
    with pytest.raises(refusals.EscrowUnreadable):
        escrow.open_bundle(pyrage.x25519.Identity.generate(), armored, FINGERPRINT)
    assert escrow.open_bundle(identity, armored, FINGERPRINT) == SECRET  # what only the new owner can do
