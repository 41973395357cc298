"""``lifeboat webhook add|list|remove``: the operator's subscriptions, refused when they would be
lost or leak, and a subscription made by the command reaching a real receiver from a real
``lifeboat serve``, signed with the secret the command wrote."""

from __future__ import annotations

import http.server
import json
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from conftest import CliRunner
from lifeboat.recovery import migrations, webhooks
from lifeboat.recovery.db import Database
from recovery_helpers import running_service

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


@pytest.fixture
def database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'recovery.db'}"
    db = Database(url)
    migrations.upgrade(db.engine)
    db.dispose()
    return url


def test_refusals_lose_nothing(cli: CliRunner, tmp_path: Path, database: str) -> None:
    missing = cli("webhook", "list", "--database", f"sqlite:///{tmp_path / 'none.db'}")
    assert missing.code == 2 and "no recovery database" in missing.err
    assert not (tmp_path / "none.db").exists()  # looking did not create one

    empty = tmp_path / "empty.db"
    Database(f"sqlite:///{empty}").dispose()
    empty.touch()
    unmigrated = cli("webhook", "list", "--database", f"sqlite:///{empty}")
    assert unmigrated.code == 2 and "--migrate-only" in unmigrated.err

    hidden = cli("webhook", "add", "https://owner.example/hook", "--database", database)
    assert hidden.code == 2 and "--secret-file" in hidden.err and "--reveal" in hidden.err
    scheme = cli("webhook", "add", "file:///etc/passwd", "--reveal", "--database", database)
    assert scheme.code == 2 and "http(s)://" in scheme.err
    vault = cli("webhook", "add", "https://x.example/", "--vault", "nope", "--reveal", "--database", database)
    assert vault.code == 2 and "no vault 'nope'" in vault.err
    gone = cli("webhook", "remove", "wh-0000", "--database", database)
    assert gone.code == 2 and "webhook list" in gone.err

    listed = cli("--json", "webhook", "list", "--database", database)
    assert listed.code == 0 and listed.json() == {"webhooks": []}

    existing = tmp_path / "taken.hex"
    existing.write_text("keep me\n")
    taken = cli("webhook", "add", "https://x.example/", "--secret-file", existing, "--database", database)
    assert taken.code != 0 and existing.read_text() == "keep me\n"
    assert cli("--json", "webhook", "list", "--database", database).json() == {"webhooks": []}


def test_add_list_remove(cli: CliRunner, tmp_path: Path, database: str) -> None:
    secret_file = tmp_path / "hook.hex"
    added = cli("--json", "webhook", "add", "https://ops.example/all", "--secret-file", secret_file,
                "--database", database)  # fmt: skip
    assert added.code == 0, added.err
    body = added.json()
    assert "secret" not in body and body["secret_file"] == str(secret_file)
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert len(bytes.fromhex(secret_file.read_text().strip())) == webhooks.SECRET_BYTES
    assert secret_file.read_text().strip() not in added.out + added.err

    revealed = cli("--json", "webhook", "add", "https://ops.example/two", "--reveal", "--database", database)
    assert len(bytes.fromhex(revealed.json()["secret"])) == webhooks.SECRET_BYTES

    listed = cli("--json", "webhook", "list", "--database", database)
    hooks = sorted(listed.json()["webhooks"], key=lambda h: h["url"])  # same second: any order
    assert [h["url"] for h in hooks] == ["https://ops.example/all", "https://ops.example/two"]
    assert hooks[0]["id"] == body["id"] and hooks[0]["deliveries"] == {
        "pending": 0,
        "delivered": 0,
        "dead": 0,
    }
    assert revealed.json()["secret"] not in listed.out

    removed = cli("webhook", "remove", body["id"], "--database", database)
    assert removed.code == 0 and body["id"] in removed.out
    left = cli("--json", "webhook", "list", "--database", database).json()["webhooks"]
    assert [h["url"] for h in left] == ["https://ops.example/two"]


class Receiver(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_a_subscription_reaches_its_receiver_signed(
    cli: CliRunner, tmp_path: Path, database: str, receiver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_file = tmp_path / "hook.hex"
    assert cli("webhook", "add", receiver, "--secret-file", secret_file, "--database", database).code == 0
    with running_service(tmp_path, "--database", database) as url:
        monkeypatch.setenv("LIFEBOAT_RECOVERY_URL", url)
        keys = {}
        for name in ("owner", "alice", "bob"):
            made = cli("--json", "recovery", "keygen", "--kind", "ed25519", "-o", tmp_path / f"{name}.key")
            keys[name] = made.json()["public_key"]
        created = cli("--json", "recovery", "vault", "create", "--key", tmp_path / "owner.key",
                      "--guardian", f"{keys['alice']}:alice", "--guardian", f"{keys['bob']}:bob",
                      "--policy", "family:2:3d:7d")  # fmt: skip
        assert created.code == 0, created.err
        vault = created.json()["vault"]
        # a second subscription, to this vault only, made while the service runs
        only = cli("--json", "webhook", "add", receiver + "?only", "--vault", vault, "--reveal",
                   "--database", database)  # fmt: skip
        assert only.code == 0, only.err
        locked = cli("--json", "recovery", "lock", vault, "--key", tmp_path / "alice.key")
        assert locked.code == 0, locked.err

        deadline = time.monotonic() + 30
        while len(Receiver.received) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
    secrets_by_path = {
        "/hook": bytes.fromhex(secret_file.read_text().strip()),
        "/hook?only": bytes.fromhex(only.json()["secret"]),
    }
    seen = []
    for headers, body in Receiver.received:
        event = json.loads(body)
        matched = []
        for path, secret in secrets_by_path.items():
            try:
                webhooks.verify_signature(secret, headers["Lifeboat-Signature"], body, int(time.time()))
                matched.append(path)
            except webhooks.WebhookError:
                pass
        assert len(matched) == 1, headers  # signed with exactly one endpoint's secret
        seen.append((matched[0], event["entry"]["action"]))
    assert sorted(seen) == sorted(
        [("/hook", "vault_created"), ("/hook", "vault_locked"), ("/hook?only", "vault_locked")]
    ), seen
