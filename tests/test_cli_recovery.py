"""``lifeboat recovery ...``: key files and parsing offline, then whole recoveries against a real
``lifeboat serve --simulated-clock`` subprocess on 127.0.0.1 with a temporary SQLite database, and
the README's guardian-recovery tour run exactly as written."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import CliResult, CliRunner
from conftest_tools import require_tool
from lifeboat.cli.recovery_cmds import (
    format_duration,
    parse_duration,
    parse_guardian,
    parse_policy,
)
from lifeboat.errors import InputError, UsageError
from lifeboat.recovery import audit
from lifeboat.recovery.config import Guardian
from lifeboat.recovery.keyfile import decode_key_file, encode_key_file
from lifeboat.recovery.keys import KeyKind, PrivateKey
from recovery_helpers import free_port, running_service

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


# --- pure parts --------------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=10**9))
def test_durations_round_trip(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds
    assert parse_duration(str(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "3x", "d", "1.5d", "-1h", "3d2w", "1h 2m", "١٢"])
def test_bad_durations_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="not a duration"):
        parse_duration(text)


def test_guardian_spec_weight_and_label() -> None:
    key = PrivateKey.from_seed(KeyKind.ED25519, bytes(32)).public_key
    assert parse_guardian(f"{key.text}=3:Aunt: Jo") == Guardian(key, 3, "Aunt: Jo")
    assert parse_guardian(key.text) == Guardian(key, 1, "")
    address = PrivateKey.from_seed(KeyKind.EIP712, bytes(31) + b"\1").public_key
    assert parse_guardian(f"{address.text}:wallet") == Guardian(address, 1, "wallet")
    for bad in ("ed25519", f"{key.text}=x", "rsa:00"):
        with pytest.raises(UsageError):
            parse_guardian(bad)


def test_policy_spec_maps_every_field() -> None:
    keys = [PrivateKey.from_seed(KeyKind.ED25519, bytes([i]) * 32).public_key for i in (1, 2, 3)]
    guardians = [Guardian(keys[0], 2, "a"), Guardian(keys[1], 1, "b"), Guardian(keys[2], 1, "")]
    policy = parse_policy("fam:3:1d12h:2w:veto=1:by-weight:guardians=a,2", guardians)
    assert (policy.name, policy.threshold, policy.by_weight) == ("fam", 3, True)
    assert (policy.recovery_period, policy.expiry_window, policy.veto_guardians) == (129600, 1209600, 1)
    assert policy.guardians == (keys[0], keys[1])
    assert parse_policy("all:1:0:1s", guardians).guardians == tuple(keys)
    for bad in ("x:1:1d", "x:one:1d:1d", "x:1:1d:1d:veto", "x:1:1d:1d:guardians=zed", "x:1:soon:1d"):
        with pytest.raises(UsageError):
            parse_policy(bad, guardians)


def test_key_file_round_trip_and_refusals() -> None:
    for kind in KeyKind:
        key = PrivateKey.generate(kind)
        data = encode_key_file(key)
        assert decode_key_file(data, "k") == key
        assert decode_key_file(key.text.encode(), "k") == key  # the bare form formats.md allows
    key = PrivateKey.generate(KeyKind.ED25519)
    newer = data.replace(b'"version":1', b'"version":2')
    for bad, match in [
        (newer, "version 2"),
        (b'{"format":"other"}', "not a recovery key file"),
        (b"\xff\xfe", "not UTF-8"),
        (key.text.encode()[:-2], "64 hex"),
    ]:
        with pytest.raises(InputError, match=match) as caught:
            decode_key_file(bad, "k")
        assert key.secret.hex()[:16] not in str(caught.value)


# --- the CLI without a service -------------------------------------------------------------------


def one_line_error(result: CliResult, code: int, pattern: str) -> None:
    assert result.code == code, (result.out, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and re.search(pattern, lines[0]), result.err


@pytest.mark.parametrize("kind", ["ed25519", "bip340", "eip712"])
def test_keygen_writes_0600_and_prints_only_the_public_key(cli: CliRunner, tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.key"
    result = cli("recovery", "keygen", "--kind", kind, "-o", path)
    assert result.code == 0, result.err
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = decode_key_file(path.read_bytes(), "k")
    assert result.out == key.public_key.text + "\n"
    assert key.secret.hex() not in result.out + result.err
    shown = cli("--json", "recovery", "key", "show", path)
    assert shown.json() == {"public_key": key.public_key.text, "kind": kind, "file": str(path)}
    assert key.secret.hex() not in shown.out + shown.err
    again = cli("recovery", "keygen", "--kind", kind, "-o", path)
    one_line_error(again, 1, "already exists")
    assert decode_key_file(path.read_bytes(), "k") == key


def test_bad_inputs_without_a_service(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LIFEBOAT_RECOVERY_URL", raising=False)
    one_line_error(cli("recovery", "keygen", "--kind", "rsa", "-o", tmp_path / "k"), 2, "choose ed25519")
    one_line_error(cli("recovery", "keygen"), 2, "pass -o KEYFILE")
    one_line_error(cli("recovery", "key", "show", tmp_path / "missing.key"), 1, "does not exist")
    (tmp_path / "junk.key").write_text("hello\n")
    one_line_error(cli("recovery", "key", "show", tmp_path / "junk.key"), 1, "junk.key")
    owner, guardian = tmp_path / "o.key", tmp_path / "g.key"
    cli("recovery", "keygen", "-o", owner)
    public = cli("recovery", "keygen", "-o", guardian).out.strip()
    vault = "ab" * 32
    one_line_error(cli("recovery", "lock", vault, "--key", owner), 2, "LIFEBOAT_RECOVERY_URL")
    create = ["recovery", "vault", "create", "--key", owner, "--guardian", public]
    one_line_error(cli(*create, "--policy", "p:1:3 days:7d"), 2, "not a duration")
    one_line_error(cli(*create, "--policy", "p:2:3d:7d"), 2, "threshold must be 1 to")
    one_line_error(cli("recovery", "lock", "xyz", "--key", owner, "--service", "http://x"), 2, "not an id")
    one_line_error(cli("recovery", "lock", vault, "--key", owner, "--service", "ftp://x"), 2, "http")
    # nothing listens on port 9 of 127.0.0.1 (discard, never served here)
    dead = ["--service", "http://127.0.0.1:9"]
    one_line_error(
        cli("recovery", "lock", vault, "--key", owner, *dead), 1, "cannot reach the recovery service"
    )
    result = cli("--json", "recovery", "status", vault, *dead)
    assert result.code == 1 and result.json()["kind"] == "ServiceUnavailable"
    one_line_error(
        cli("recovery", "lock", vault, "--key", owner, "--valid-for", "31d", *dead), 2, "valid-for"
    )


def write_export(path: Path, count: int) -> tuple[bytes, list[audit.AuditEntry], audit.SignedHead]:
    """An export of ``count`` entries signed by the seed 7*32 (through the audit module)."""
    entries: list[audit.AuditEntry] = []
    prev = audit.GENESIS
    for seq in range(1, count + 1):
        entry = audit.append(
            prev, seq, time=1000 + seq, vault="ab" * 32, actor="ed25519:" + "cd" * 32, action="Approve",
            message=b"msg", details={"n": seq},
        )  # fmt: skip
        entries.append(entry)
        prev = entry.hash
    head = audit.sign_head(bytes([7]) * 32, count, prev, 2000)
    data = b"".join(audit.export_lines(entries, head))
    path.write_bytes(data)
    return data, entries, head


def test_audit_verify_offline(cli: CliRunner, tmp_path: Path) -> None:
    export = tmp_path / "audit.jsonl"
    data, entries, head = write_export(export, 5)
    key = head.service_key.hex()
    ok = cli("--json", "recovery", "audit", "verify", export, "--service-key", key)
    assert ok.code == 0 and ok.json()["entries"] == 5
    kept = tmp_path / "head.json"
    early = audit.sign_head(bytes([7]) * 32, 3, entries[2].hash, 1500)
    kept.write_text(json.dumps(early.to_json()))
    assert cli("recovery", "audit", "verify", export, "--service-key", key, "--known-head", kept).code == 0
    lines = data.split(b"\n")
    lines[3] = lines[3].replace(b'"n":3', b'"n":4')  # entry 3's details edited
    (tmp_path / "edited.jsonl").write_bytes(b"\n".join(lines))
    one_line_error(
        cli("recovery", "audit", "verify", tmp_path / "edited.jsonl", "--service-key", key), 1, r"entry 3\b"
    )
    dropped = b"\n".join(data.split(b"\n")[:3] + data.split(b"\n")[4:])
    (tmp_path / "dropped.jsonl").write_bytes(dropped)
    one_line_error(
        cli("recovery", "audit", "verify", tmp_path / "dropped.jsonl", "--service-key", key), 1, "entry 4"
    )
    other = audit.sign_head(bytes([8]) * 32, 5, entries[4].hash, 2000).service_key.hex()
    one_line_error(
        cli("recovery", "audit", "verify", export, "--service-key", other), 1, "not by the service key"
    )
    forged = audit.sign_head(bytes([7]) * 32, 3, bytes(32), 1500)
    kept.write_text(json.dumps(forged.to_json()))
    one_line_error(
        cli("recovery", "audit", "verify", export, "--service-key", key, "--known-head", kept), 1, "rewritten"
    )
    one_line_error(cli("recovery", "audit", "verify", export, "--service-key", "12"), 2, "64 hex")


# --- against a real service ----------------------------------------------------------------------


class Server:
    def __init__(self, url: str, log: Path) -> None:
        self.url = url
        self.log = log


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``lifeboat serve --simulated-clock`` on a free port, SQLite in a temporary directory."""
    base = tmp_path_factory.mktemp("recovery-service")
    database = f"sqlite:///{base / 'recovery.db'}"
    key = str(base / "service-key.json")
    # Rate limits raised: the commands here come faster than a person's (throttling has its own tests).
    limits = ("--rate", "10000", "--burst", "10000")
    with running_service(
        base, "--simulated-clock", "--database", database, "--service-key", key, *limits
    ) as url:
        yield Server(url, base / "serve.log")


class Session:
    """Runs recovery commands with ``--json``, keeps every output to check for secrets afterwards."""

    def __init__(self, cli: CliRunner, url: str, directory: Path) -> None:
        self.cli, self.url, self.dir = cli, url, directory
        self.outputs: list[str] = []

    def run(self, *args: Any, code: int = 0) -> CliResult:
        result = self.cli("--json", "recovery", *args)  # the service from $LIFEBOAT_RECOVERY_URL
        self.outputs += [result.out, result.err]
        assert result.code == code, (args, result.out, result.err)
        return result

    def ok(self, *args: Any) -> Any:
        return self.run(*args).json()

    def key(self, name: str, kind: str = "ed25519") -> str:
        result = self.cli("--json", "recovery", "keygen", "--kind", kind, "-o", self.dir / f"{name}.key")
        self.outputs += [result.out, result.err]
        assert result.code == 0, result.err
        return str(result.json()["public_key"])

    def refused(self, code: str, *args: Any) -> str:
        result = self.run(*args, code=1)
        body = result.json()
        assert body["ok"] is False and f"({code})" in body["error"], body
        assert len(result.err.strip().splitlines()) == 1
        return str(body["error"])


@pytest.fixture
def session(cli: CliRunner, server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Session:
    monkeypatch.setenv("LIFEBOAT_RECOVERY_URL", server.url)
    return Session(cli, server.url, tmp_path)


def make_shares(cli: CliRunner, directory: Path) -> tuple[str, list[Path]]:
    secret = os.urandom(32).hex()
    (directory / "secret.hex").write_text(secret + "\n")
    result = cli(
        "shares",
        "create",
        "2of3",
        "--secret-hex-file",
        directory / "secret.hex",
        "--shares-dir",
        directory / "shares",
    )
    assert result.code == 0, result.err
    return secret, sorted((directory / "shares").glob("*.txt"))


def test_a_whole_recovery(session: Session, cli: CliRunner, tmp_path: Path, server: Server) -> None:
    import pyrage

    s = session
    owner, alice, bob = s.key("owner"), s.key("alice"), s.key("bob", "bip340")
    carol, lawyer, new = s.key("carol", "eip712"), s.key("lawyer"), s.key("new")
    identity = pyrage.x25519.Identity.generate()
    (tmp_path / "new.agekey").write_text(str(identity) + "\n")
    secret, share_files = make_shares(cli, tmp_path)

    created = s.ok(
        "vault", "create", "--key", tmp_path / "owner.key",
        "--guardian", f"{alice}:alice", "--guardian", f"{bob}=2:bob", "--guardian", f"{carol}:carol",
        "--guardian", f"{lawyer}:lawyer",
        "--policy", "family:2:3d:7d:veto=1:guardians=alice,bob,carol",
        "--policy", "lawyer:1:30d:60d:guardians=lawyer",
        "--security-period", "1d", "--lock-period", "2d",
    )  # fmt: skip
    vault = created["vault"]
    assert created["owner"] == owner and [e["kind"] for e in created["events"]] == ["vault_created"]
    shown = s.ok("vault", "show", vault)
    config = shown["state"]["config"]
    assert (config["securityPeriod"], config["lockPeriod"]) == (86400, 2 * 86400)
    assert config["guardians"][1] == {"key": bob, "weight": 2, "label": "bob"}
    assert (
        config["policies"][0]["vetoGuardians"] == 1 and config["policies"][1]["recoveryPeriod"] == 30 * 86400
    )

    opened = s.ok("request", vault, "--policy", "family", "--new-owner", new, "--key", tmp_path / "alice.key")
    request = opened["request"]
    s.refused("duplicate_approval", "approve", vault, request[:8], "--key", tmp_path / "alice.key")
    s.refused("not_authorized", "approve", vault, request[:8], "--key", tmp_path / "lawyer.key")
    wrong = s.run("approve", vault, request[:8], "--new-owner", owner, "--key", tmp_path / "bob.key", code=1)
    assert "do not approve" in wrong.json()["error"]
    approved = s.ok("approve", vault, request[:8], "--new-owner", new, "--key", tmp_path / "bob.key")
    assert "request_approved" in [e["kind"] for e in approved["events"]]
    for name, share in (("alice", share_files[0]), ("bob", share_files[1])):
        uploaded = s.ok(
            "escrow", "upload", vault, request[:8], "--share", share, "--to", str(identity.to_public()),
            "--key", tmp_path / f"{name}.key",
        )  # fmt: skip
        assert [e["kind"] for e in uploaded["events"]] == ["share_escrowed"]
    s.refused("too_early", "execute", vault, request[:8], "--key", tmp_path / "new.key")
    fetched = httpx.get(f"{server.url}/v1/vaults/{vault}/requests/{request}/escrow", timeout=10)
    assert fetched.status_code == 409  # nothing released before execution

    # a second request, vetoed by a guardian of its policy; a third, vetoed by the owner
    thief = s.key("thief")
    second = s.ok("request", vault, "--policy", "family", "--new-owner", thief, "--key", tmp_path / "bob.key")
    vetoed = s.ok("veto", vault, second["request"], "--key", tmp_path / "carol.key")
    assert "request_cancelled" in [e["kind"] for e in vetoed["events"]]
    third = s.ok(
        "request", vault, "--policy", "lawyer", "--new-owner", thief, "--key", tmp_path / "lawyer.key"
    )
    s.ok("veto", vault, third["request"], "--key", tmp_path / "owner.key")

    status = s.ok("status", vault)
    by_id = {r["request"]: r for r in status["requests"]}
    main = by_id[request]
    assert (main["status"], main["approved"], main["threshold"], main["escrowed_shares"]) == (
        "approved",
        2,
        2,
        2,
    )
    assert 3 * 86400 - 120 <= main["seconds_to_executable"] <= 3 * 86400
    assert main["seconds_to_expiry"] == main["seconds_to_executable"] + 7 * 86400
    assert (by_id[second["request"]]["status"], by_id[second["request"]]["reason"]) == (
        "cancelled",
        "guardian_veto",
    )
    assert by_id[third["request"]]["reason"] == "owner_veto"
    one = s.ok("status", vault, request[:6])
    assert [r["request"] for r in one["requests"]] == [request]
    human = s.cli("recovery", "status", vault, "--service", s.url)
    # At most a couple of minutes after the approval: "3d" when it was the same second, else 2d23h5x.
    assert human.code == 0 and "approvals 2/2" in human.out, human.out
    assert "executable in 3d," in human.out or "executable in 2d23h5" in human.out, human.out
    s.outputs += [human.out, human.err]

    advanced = s.ok("clock", "advance", "3d")
    assert advanced["advanced"] == 3 * 86400
    assert s.ok("status", vault, request)["requests"][0]["status"] == "executable"
    executed = s.ok("execute", vault, request, "--key", tmp_path / "new.key")
    assert {"request_executed", "owner_changed"} <= {e["kind"] for e in executed["events"]}
    assert s.ok("vault", "show", vault)["state"]["owner"] == new

    claimed = s.ok(
        "claim", vault, request[:8], "--identity", tmp_path / "new.agekey", "-o", tmp_path / "got.hex"
    )
    assert (tmp_path / "got.hex").read_text() == secret + "\n"
    assert stat.S_IMODE((tmp_path / "got.hex").stat().st_mode) == 0o600
    assert claimed["shares"] == 2 and "secret" not in claimed
    one_line_error(
        s.cli("recovery", "claim", vault, request, "-i", tmp_path / "new.agekey", "--service", s.url),
        2,
        "secret",
    )
    wrong_identity = tmp_path / "other.agekey"
    wrong_identity.write_text(str(pyrage.x25519.Identity.generate()) + "\n")
    assert (
        "does not decrypt"
        in s.run("claim", vault, request, "-i", wrong_identity, "-o", tmp_path / "x", code=1).json()["error"]
    )
    assert (
        s.run(
            "claim", vault, second["request"], "-i", tmp_path / "new.agekey", "-o", tmp_path / "y", code=1
        ).json()["ok"]
        is False
    )
    outputs_without_reveal = list(s.outputs)
    revealed = s.ok("claim", vault, request, "-i", tmp_path / "new.agekey", "--reveal")
    assert revealed["secret"] == secret

    # the audit log, offline
    head = s.ok("audit", "head", "-o", tmp_path / "head.json")
    exported = s.ok("audit", "export", "-o", tmp_path / "audit.jsonl")
    assert exported["entries"] >= head["head"]["seq"] >= 12
    verified = s.ok(
        "audit", "verify", tmp_path / "audit.jsonl", "--service-key", head["head"]["service_key"],
        "--known-head", tmp_path / "head.json",
    )  # fmt: skip
    assert verified["ok"] is True and verified["entries"] == exported["entries"]

    # no secret anywhere: key files, shares, the secret, the age identity; in outputs and the service log
    secrets_ = [str(identity), secret]
    for name in ("owner", "alice", "bob", "carol", "lawyer", "new", "thief"):
        secrets_.append(decode_key_file((tmp_path / f"{name}.key").read_bytes(), name).secret.hex())
    for share in share_files:
        words = [line for line in share.read_text().splitlines() if line and not line.startswith("#")]
        secrets_ += [" ".join(w.split()[4:9]) for w in words]
    seen = "\n".join(outputs_without_reveal) + server.log.read_text()
    for value in secrets_:
        assert value.lower() not in seen.lower()


def test_owner_changes_lock_and_cancel(session: Session, tmp_path: Path) -> None:
    s = session
    s.key("owner")
    guardians = [s.key(name) for name in ("g1", "g2")]
    vault = s.ok(
        "vault", "create", "--key", tmp_path / "owner.key", "--guardian", f"{guardians[0]}:g1",
        "--guardian", f"{guardians[1]}:g2", "--policy", "both:2:1d:2d", "--security-period", "2d",
    )["vault"]  # fmt: skip
    third = s.key("g3")
    added = s.ok(
        "guardian", "add", vault, f"{third}=2:g3", "--policy", "both", "--key", tmp_path / "owner.key"
    )
    assert "change_proposed" in [e["kind"] for e in added["events"]]
    pending = s.ok("vault", "show", vault)["state"]["pendingChange"]["config"]
    assert pending["guardians"][2] == {"key": third, "weight": 2, "label": "g3"}
    assert pending["policies"][0]["guardians"][-1] == third
    # a second change builds on the pending one
    s.ok("policy", "add", vault, "--policy", "solo:1:5d:5d:guardians=g3", "--key", tmp_path / "owner.key")
    pending = s.ok("vault", "show", vault)["state"]["pendingChange"]["config"]
    assert [p["name"] for p in pending["policies"]] == ["both", "solo"] and len(pending["guardians"]) == 3
    s.ok("guardian", "remove", vault, "g1", "--key", tmp_path / "owner.key")
    pending = s.ok("vault", "show", vault)["state"]["pendingChange"]["config"]
    assert guardians[0] not in json.dumps(pending)
    refused = s.run("guardian", "remove", vault, "g2", "--key", tmp_path / "owner.key", code=2)
    assert "threshold must be 1 to" in refused.json()["error"]  # policy 'both' would have only g3 left
    s.ok("change", "cancel", vault, "--key", tmp_path / "owner.key")
    assert s.ok("vault", "show", vault)["state"]["pendingChange"] is None
    s.refused("no_pending_change", "change", "cancel", vault, "--key", tmp_path / "owner.key")
    s.refused("not_authorized", "lock", vault, "--key", tmp_path / "owner.key")
    s.ok("lock", vault, "--key", tmp_path / "g1.key")
    assert s.ok("status", vault)["locked_until"] is not None
    s.refused(
        "vault_locked", "policy", "add", vault, "--policy", "x:1:1d:1d", "--key", tmp_path / "owner.key"
    )
    s.ok("unlock", vault, "--key", tmp_path / "g2.key")
    s.refused("not_locked", "unlock", vault, "--key", tmp_path / "g2.key")
    s.ok("policy", "add", vault, "--policy", "both:1:1d:2d", "--replace", "--key", tmp_path / "owner.key")
    s.ok("clock", "advance", "2d")
    state = s.ok("vault", "show", vault)["state"]
    assert state["pendingChange"] is None and state["config"]["policies"][0]["threshold"] == 1


def test_a_wallet_signs_the_typed_data(session: Session, tmp_path: Path) -> None:
    """--print-typed-data, signed by eth-account as a wallet would, then `recovery submit`."""
    from eth_account import Account
    from eth_account.messages import encode_typed_data

    s = session
    s.key("owner")
    wallet = Account.create()
    address = f"eip712:{wallet.address.lower()}"
    other = s.key("other")
    vault = s.ok(
        "vault", "create", "--key", tmp_path / "owner.key", "--guardian", f"{address}:wallet",
        "--guardian", f"{other}:other", "--policy", "p:2:1h:1d",
    )["vault"]  # fmt: skip
    new = s.key("new")
    request = s.ok("request", vault, "--policy", "p", "--new-owner", new, "--key", tmp_path / "other.key")[
        "request"
    ]
    printed = s.cli("recovery", "approve", vault, request[:8], "--print-typed-data", "--service", s.url)
    assert printed.code == 0, printed.err
    typed = json.loads(printed.out)
    assert typed["primaryType"] == "Approve" and typed["message"]["newOwner"] == new
    (tmp_path / "typed.json").write_text(printed.out)
    signature = wallet.sign_message(encode_typed_data(full_message=typed)).signature.hex()
    signature = signature if signature.startswith("0x") else "0x" + signature
    bad = "0x" + ("00" * 64) + "1b"
    one_line_error(
        s.cli(
            "recovery",
            "submit",
            "--signature",
            bad,
            "--signer",
            address,
            "--message",
            tmp_path / "typed.json",
            "--service",
            s.url,
        ),
        1,
        "does not verify",
    )
    sent = s.ok("submit", "--signature", signature, "--signer", address, "--message", tmp_path / "typed.json")
    assert "request_approved" in [e["kind"] for e in sent["events"]]
    s.refused(
        "replayed_nonce",
        "submit",
        "--signature",
        signature,
        "--signer",
        address,
        "--message",
        tmp_path / "typed.json",
    )


# --- the README tour ---------------------------------------------------------------------------


def readme_tour() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Tour: guardian recovery") :]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


@pytest.mark.slow
def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    for tool in ("age-keygen", "jq", "curl", "bash"):
        require_tool(tool)
    env = {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "TMPDIR": str(tmp_path),
        "PORT": str(free_port()),
    }
    env.pop("LIFEBOAT_RECOVERY_URL", None)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", readme_tour()],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the new owner holds the secret" in result.stdout
    assert "refused: the period is not over" in result.stdout
    assert "(too_early)" in result.stderr
    assert "audit log verified" in result.stdout
    (home,) = [p for p in tmp_path.iterdir() if p.is_dir() and (p / "recovery.db").exists()]
    assert (home / "recovered.hex").read_bytes() == (home / "secret.hex").read_bytes()
    key_secret = decode_key_file((home / "owner.key").read_bytes(), "owner").secret.hex()
    assert key_secret not in result.stdout + result.stderr


def test_the_key_file_format_is_as_documented() -> None:
    """formats.md, "Recovery key file, version 1": the line it shows is what keygen writes."""
    text = (ROOT / "docs" / "formats.md").read_text(encoding="utf-8")
    section = text[text.index("## Recovery key file, version 1") :]
    documented = re.search(r"`(\{\"format\":\"lifeboat-recovery-key\".*?\})`", section)
    assert documented is not None
    key = PrivateKey.from_seed(KeyKind.BIP340, bytes(31) + b"\x05")
    expected = documented.group(1).replace("<kind>-secret:<64 hex>", key.text)
    assert encode_key_file(key) == expected.encode() + b"\n"


def test_the_cli_imports_no_service_or_database_module() -> None:
    from test_layers import ROOT as PACKAGE
    from test_layers import import_graph

    reached = import_graph(PACKAGE)["lifeboat.cli.recovery_cmds"]
    assert not {m for m in reached if m.startswith(("lifeboat.recovery.service", "lifeboat.recovery.db"))}
