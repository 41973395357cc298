"""The keys path: an owner loses every key, and guardians hand control and the secret to a new key.

What the README's "Tour: guardian recovery" does by command line, done here through the library
against the real recovery service (``lifeboat serve --simulated-clock`` on loopback, SQLite in
the sandbox):

* set-up: an owner secret (32 bytes of test data) split into SLIP-39 shares 3-of-5, each sealed to
  one guardian's age key as ``shares create -g`` does; recovery keys for the owner and the five
  guardians (Ed25519, BIP-340 and an Ethereum account among them); a vault whose one policy lets
  any 3 of the 5 guardians hand the vault to a new owner after a 3-day recovery period;
* operation: the vault's state as the service reports it matches what was configured;
* catastrophe: the owner's key file and the secret file are deleted;
* recovery: a new owner key and age identity; a guardian opens a request naming them, two more
  approve; each opens their envelope and escrows the share re-encrypted to the new owner; the
  simulated clock skips the recovery period (the veto window); the new owner executes, claims the
  escrowed shares, rebuilds the secret and checks it against the fingerprint recorded at set-up;
  the service's audit log, checked offline against its key, records it all.

Only the fingerprint of the secret is kept in ``sandbox.scratch``; keys and the secret live in
0600 files in the sandbox, as each person would keep their own.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final, TypeVar

import pyrage

import lifeboat
from lifeboat.drill.sandbox import Outcome, Sandbox
from lifeboat.drill.timeline import PathName, Phase, StepFailed, Timeline
from lifeboat.fs import SECRET_MODE, read_bounded, write_atomic
from lifeboat.home import Home
from lifeboat.recovery import audit, escrow, messages
from lifeboat.recovery.client import Client, ServiceUnavailable
from lifeboat.recovery.config import Guardian, Policy, VaultConfig
from lifeboat.recovery.keyfile import read_key_file, write_key_file
from lifeboat.recovery.keys import KeyKind, PrivateKey, PublicKey
from lifeboat.recovery.policy import Status
from lifeboat.recovery.service.settings import load_or_create_key
from lifeboat.secrets import envelope, slip39
from lifeboat.secrets.backup import KIND_RANDOM, MasterSecret, add_guardian, create_share_set
from lifeboat.secrets.fingerprint import fingerprint, format_fingerprint

#: The guardians' key kinds, in order: the first three (the quorum that approves) use one of
#: each kind, so a drill exercises Ed25519, BIP-340 and EIP-712 signatures.
GUARDIAN_KINDS: Final = (KeyKind.ED25519, KeyKind.BIP340, KeyKind.EIP712, KeyKind.ED25519, KeyKind.ED25519)
QUORUM: Final = 3
SECRET_BYTES: Final = 32
POLICY_NAME: Final = "guardians"
#: The policy's recovery period (the owner's veto window), skipped with the simulated clock.
RECOVERY_PERIOD: Final = 3 * 86400
EXPIRY_WINDOW: Final = 7 * 86400
#: How long the service may take to answer /healthz after it was started.
SERVICE_START_SECONDS: Final = 60.0
SERVICE_STOP_SECONDS: Final = 10.0
#: Starts tried when another process takes the chosen port first.
SERVICE_START_ATTEMPTS: Final = 3
#: The owner's secret as hex (0600), the file the catastrophe deletes.
HEX_FILE: Final = "secret.hex"

_PR_SET_PDEATHSIG: Final = 1
_T = TypeVar("_T")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _die_with_parent(parent: int) -> None:
    """In the service's process, before exec: be killed when the drill's process dies (Linux)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the drill died before the line above took effect
        os._exit(1)


class RecoveryService:
    """``lifeboat serve --simulated-clock`` as a child process on a free loopback port.

    Everything it keeps (its home, SQLite database, service key, log) is under ``directory``.
    :meth:`stop` ends it; on Linux it is also killed when the drill's process dies, so an
    interrupted drill leaves no server behind.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.database = directory / "recovery.db"
        self.key_file = directory / "service-key.json"
        self.log = directory / "serve.log"
        self.port = 0
        self.started = 0.0
        self.process: subprocess.Popen[bytes] | None = None
        self._sink: IO[bytes] | None = None
        self._attempts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the process (not waiting for it: see :meth:`wait_ready`)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._attempts += 1
        self.port = _free_port()
        source = str(Path(lifeboat.__file__).resolve().parent.parent)
        environment = {
            **os.environ,
            "LIFEBOAT_HOME": str(self.directory / "home"),
            "PYTHONPATH": os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH")) if p),
        }
        command = [
            sys.executable,
            "-m",
            "lifeboat",
            "serve",
            "--port",
            str(self.port),
            "--simulated-clock",
            "--database",
            f"sqlite:///{self.database}",
            "--service-key",
            str(self.key_file),
            # one client makes every request of the drill; the default limits are for the public
            "--rate",
            "1000",
            "--burst",
            "1000",
        ]
        parent = os.getpid()
        arm = (lambda: _die_with_parent(parent)) if sys.platform.startswith("linux") else None
        self._close_log()
        self._sink = self.log.open("ab")
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            command,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=self._sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the drill, which stops the service itself
            preexec_fn=arm,  # one prctl call, no locks taken
        )

    def wait_ready(self, client_timeout: float = 1.0) -> dict[str, object]:
        """Wait until ``/healthz`` answers; its answer. A service that exits or never answers fails."""
        deadline = time.perf_counter() + SERVICE_START_SECONDS
        while True:
            process = self._running()
            if process.poll() is not None:
                log = self._log_tail()
                if "address already in use" in log.lower() and self._attempts < SERVICE_START_ATTEMPTS:
                    self.start()  # another process took the port between choosing and binding it
                    continue
                raise StepFailed(
                    f"the recovery service exited with status {process.returncode} before it was ready: "
                    f"{log or 'no output'} (log: {self.log})"
                )
            with Client(self.url, timeout=client_timeout) as client:
                try:
                    return client.health()
                except ServiceUnavailable:
                    pass
            if time.perf_counter() > deadline:
                raise StepFailed(
                    f"the recovery service did not answer {self.url}/healthz within "
                    f"{SERVICE_START_SECONDS:.0f} s; see {self.log}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """End the process (SIGTERM, then SIGKILL after 10 s) and close its log."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=SERVICE_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._close_log()

    def _running(self) -> subprocess.Popen[bytes]:
        if self.process is None:
            raise StepFailed("the recovery service was stopped")
        return self.process

    def _close_log(self) -> None:
        if self._sink is not None:
            self._sink.close()
            self._sink = None

    def _log_tail(self, lines: int = 5) -> str:
        with contextlib.suppress(OSError):
            text = self.log.read_text(errors="replace")
            return " ".join(" | ".join(text.strip().splitlines()[-lines:]).split())[:400]
        return ""


@dataclass
class GuardianFiles:
    """What one guardian keeps: their recovery key, their age identity and their sealed share."""

    name: str
    key_file: Path
    identity_file: Path
    public_key: PublicKey
    envelope: Path | None = None


@dataclass
class KeysWorld:
    """What the keys path keeps between its acts (``sandbox.scratch["keys"]``): files and ids only."""

    directory: Path
    service: RecoveryService
    owner_key_file: Path
    secret_file: Path
    guardians: list[GuardianFiles] = field(default_factory=list)
    owner: PublicKey | None = None
    vault: bytes = b""
    new_owner: PublicKey | None = None
    new_owner_key_file: Path | None = None
    new_owner_identity_file: Path | None = None
    #: The new owner's age recipient (``age1...``), which guardians check with them out of band.
    new_owner_recipient: str = ""
    request: bytes = b""
    approvers: list[GuardianFiles] = field(default_factory=list)

    def client(self) -> Client:
        return Client(self.service.url)


SCRATCH_WORLD: Final = "keys"
#: The secret's fingerprint (public: it identifies the secret without revealing it).
SCRATCH_FINGERPRINT: Final = "keys.fingerprint"


def _short(value: bytes) -> str:
    return value.hex()[:12]


def _expect_events(outcome_kinds: list[str], wanted: str, what: str) -> None:
    if wanted not in outcome_kinds:
        raise StepFailed(f"{what}: the service answered {outcome_kinds or 'no events'}, not {wanted!r}")


class KeysPath:
    """The keys path of the drill (see the module's description).

    ``approving`` is how many guardians approve the recovery: the drill uses the quorum, 3; fewer
    shows the service refusing to execute (fault injection).
    """

    name = PathName.KEYS

    def __init__(self, *, approving: int = QUORUM) -> None:
        if not 1 <= approving <= len(GUARDIAN_KINDS):
            raise ValueError(f"approving must be 1 to {len(GUARDIAN_KINDS)} guardians, not {approving}")
        self.approving = approving

    # -- set-up -----------------------------------------------------------------------------------

    def setup(self, sandbox: Sandbox, timeline: Timeline) -> None:
        directory = sandbox.root / "keys"
        world = KeysWorld(
            directory=directory,
            service=RecoveryService(directory / "service"),
            owner_key_file=directory / "owner" / "owner.key",
            secret_file=directory / "owner" / HEX_FILE,
        )
        sandbox.scratch[SCRATCH_WORLD] = world
        with timeline.step(self.name, Phase.SETUP, "start the recovery service on loopback") as step:
            # registered before the start, so the service dies even if a later step fails
            sandbox.cleanups.append(world.service.stop)
            world.service.start()
            step.facts.update(port=world.service.port, database="sqlite", simulated_clock=True)
        with timeline.step(self.name, Phase.SETUP, "owner and guardian keys") as step:
            step.facts.update(self._make_keys(sandbox, world))
        with timeline.step(
            self.name, Phase.SETUP, "split the owner secret 3-of-5, sealed to 5 guardians"
        ) as step:
            step.facts.update(self._share_secret(sandbox, world))
        with timeline.step(self.name, Phase.SETUP, "recovery service ready") as step:
            health = world.service.wait_ready()
            step.facts.update(
                startup_seconds=round(time.perf_counter() - world.service.started, 3),
                database=health.get("database"),
                audit_entries=health.get("audit_seq"),
            )
        with timeline.step(
            self.name, Phase.SETUP, "vault with a 3-of-5 policy, 3-day recovery period"
        ) as step:
            step.facts.update(self._create_vault(sandbox, world))

    def _make_keys(self, sandbox: Sandbox, world: KeysWorld) -> dict[str, object]:
        """Each person's own keys, in their own directory: a recovery key, and for guardians an age
        identity (registered in the sandbox home, as ``lifeboat guardians add`` does)."""
        world.owner_key_file.parent.mkdir(mode=0o700, parents=True)
        owner = PrivateKey.generate(KeyKind.ED25519)
        write_key_file(world.owner_key_file, owner)
        world.owner = owner.public_key
        home = Home(sandbox.home)
        for number, kind in enumerate(GUARDIAN_KINDS, start=1):
            name = f"guardian-{number}"
            directory = world.directory / name
            directory.mkdir(mode=0o700)
            key = PrivateKey.generate(kind)
            write_key_file(directory / "recovery.key", key)
            identity = pyrage.x25519.Identity.generate()
            write_atomic(directory / "age.key", f"{identity}\n".encode(), mode=SECRET_MODE)
            recipient = str(identity.to_public())
            add_guardian(home, name, recipient, contact="drill")
            world.guardians.append(
                GuardianFiles(name, directory / "recovery.key", directory / "age.key", key.public_key)
            )
        kinds = Counter(kind.value for kind in (KeyKind.ED25519, *GUARDIAN_KINDS))
        return {
            "recovery_keys": 1 + len(world.guardians),
            "age_identities": len(world.guardians),
            **{f"{kind}_keys": count for kind, count in kinds.items()},
        }

    def _share_secret(self, sandbox: Sandbox, world: KeysWorld) -> dict[str, object]:
        secret = MasterSecret(sandbox.random_bytes(SECRET_BYTES), KIND_RANDOM)
        write_atomic(world.secret_file, (secret.value.hex() + "\n").encode(), mode=SECRET_MODE)
        created = create_share_set(
            Home(sandbox.home),
            secret,
            slip39.Scheme.parse(f"{QUORUM}of{len(GUARDIAN_KINDS)}"),
            label="drill owner secret",
            out_dir=world.directory / "envelopes",
            guardians=[g.name for g in world.guardians],
        )
        expected = format_fingerprint(fingerprint(secret.value))
        if created.record.fingerprint != expected:
            raise StepFailed(
                f"the share set records fingerprint {created.record.fingerprint}, the secret has {expected}"
            )
        by_guardian = {h.guardian: h.envelope for h in created.record.holders}
        for guardian in world.guardians:
            sealed = by_guardian.get(guardian.name)
            if sealed is None:
                raise StepFailed(f"no share was sealed to {guardian.name}")
            guardian.envelope = Path(sealed)
        sandbox.scratch[SCRATCH_FINGERPRINT] = created.record.fingerprint
        return {
            "shares": len(created.files),
            "threshold": QUORUM,
            "envelope_bytes": sum(p.stat().st_size for p in created.files),
            "share_set": created.record.id,
            "fingerprint": created.record.fingerprint,
        }

    def _create_vault(self, sandbox: Sandbox, world: KeysWorld) -> dict[str, object]:
        guardians = tuple(Guardian(g.public_key, 1, g.name) for g in world.guardians)
        config = VaultConfig(
            guardians,
            (
                Policy(
                    POLICY_NAME,
                    tuple(g.key for g in guardians),
                    QUORUM,
                    recovery_period=RECOVERY_PERIOD,
                    expiry_window=EXPIRY_WINDOW,
                ),
            ),
        )
        world.vault = sandbox.random_bytes(messages.ID_BYTES)
        with world.client() as client:
            answer = client.sign_and_act(
                read_key_file(world.owner_key_file), world.vault, messages.CreateVault(config)
            )
        _expect_events(answer.kinds, "vault_created", "creating the vault")
        return {"vault": _short(world.vault), "guardians": len(guardians), "threshold": QUORUM}

    # -- operation --------------------------------------------------------------------------------

    def operate(self, sandbox: Sandbox, timeline: Timeline) -> None:
        world = _world(sandbox)
        with timeline.step(self.name, Phase.OPERATE, "vault state through the API") as step:
            with world.client() as client:
                view = client.vault(world.vault)
            state = view.state
            policy = state.config.policy(POLICY_NAME)
            if state.owner != world.owner:
                raise StepFailed(
                    f"the service names owner {state.owner.text}, not the key that created the vault"
                )
            if [g.key for g in state.config.guardians] != [g.public_key for g in world.guardians]:
                raise StepFailed("the service's guardians are not the five the vault was created with")
            if policy is None or (policy.threshold, policy.recovery_period) != (QUORUM, RECOVERY_PERIOD):
                raise StepFailed(f"the service's policy {POLICY_NAME!r} is not {QUORUM}-of-5 after 3 days")
            step.facts.update(
                version=view.version,
                guardians=len(state.config.guardians),
                threshold=policy.threshold,
                recovery_period_seconds=policy.recovery_period,
                open_requests=sum(r.status.is_open for r in state.requests),
            )

    # -- catastrophe ------------------------------------------------------------------------------

    def catastrophe(self, sandbox: Sandbox, timeline: Timeline) -> Outcome:
        world = _world(sandbox)
        with timeline.step(self.name, Phase.CATASTROPHE, "the owner loses the key and the secret") as step:
            lost = 0
            for path in (world.owner_key_file, world.secret_file):
                path.unlink()
                if path.exists():
                    raise StepFailed(f"{path} is still there")
                lost += 1
            step.facts.update(files_deleted=lost)
        return Outcome(
            lost={"keys": 1, "secrets": 1},
            notes=["the owner's recovery key file and the secret file were deleted"],
        )

    # -- recovery ---------------------------------------------------------------------------------

    def recover(self, sandbox: Sandbox, timeline: Timeline, outcome: Outcome) -> None:
        world = _world(sandbox)
        world.approvers = world.guardians[: self.approving]
        with world.client() as client:
            with timeline.step(self.name, Phase.RECOVER, "new owner key and age identity") as step:
                step.facts.update(self._new_owner(world))
            with timeline.step(self.name, Phase.RECOVER, "guardians approve the new owner") as step:
                step.facts.update(self._approve(sandbox, world, client))
            with timeline.step(
                self.name, Phase.RECOVER, "guardians escrow their shares to the new owner"
            ) as step:
                step.facts.update(self._escrow(world, client))
            with timeline.step(self.name, Phase.RECOVER, "the veto window passes (simulated clock)") as step:
                step.facts.update(self._skip_period(world, client))
            with timeline.step(self.name, Phase.RECOVER, "the new owner executes the request") as step:
                step.facts.update(self._execute(world, client))
            with timeline.step(self.name, Phase.RECOVER, "claim the shares, rebuild the secret") as step:
                step.facts.update(self._claim(sandbox, world, client))
            outcome.recovered = {"keys": 1, "secrets": 1}
            with timeline.step(self.name, Phase.RECOVER, "the audit log verifies") as step:
                step.facts.update(self._audit(world, client))

    def _new_owner(self, world: KeysWorld) -> dict[str, object]:
        directory = world.directory / "new-owner"
        directory.mkdir(mode=0o700)
        world.new_owner_key_file = directory / "owner.key"
        world.new_owner_identity_file = directory / "age.key"
        key = PrivateKey.generate(KeyKind.ED25519)
        write_key_file(world.new_owner_key_file, key)
        identity = pyrage.x25519.Identity.generate()
        write_atomic(world.new_owner_identity_file, f"{identity}\n".encode(), mode=SECRET_MODE)
        world.new_owner = key.public_key
        world.new_owner_recipient = str(identity.to_public())
        return {"kind": key.kind.value, "public_key": key.public_key.text[:20]}

    def _approve(self, sandbox: Sandbox, world: KeysWorld, client: Client) -> dict[str, object]:
        new_owner = _need(world.new_owner)
        world.request = sandbox.random_bytes(messages.ID_BYTES)
        opener, *others = world.approvers
        answer = client.sign_and_act(
            read_key_file(opener.key_file),
            world.vault,
            messages.OpenRequest(world.request, new_owner, POLICY_NAME),
        )
        _expect_events(answer.kinds, "request_opened", f"{opener.name} opening the request")
        for guardian in others:
            answer = client.sign_and_act(
                read_key_file(guardian.key_file),
                world.vault,
                messages.Approve(world.request, new_owner, POLICY_NAME),
            )
            _expect_events(answer.kinds, "request_approval", f"{guardian.name} approving")
        request = client.vault(world.vault).state.request(world.request)
        if request is None:
            raise StepFailed(f"the service has no request {_short(world.request)} after it was opened")
        if request.new_owner != new_owner:
            raise StepFailed(f"request {_short(world.request)} names new owner {request.new_owner.text}")
        missing = [g.name for g in world.approvers if g.public_key not in request.approvals]
        if missing:
            raise StepFailed(f"the service did not record the approval of {', '.join(missing)}")
        return {
            "request": _short(world.request),
            "approvals": len(request.approvals),
            "threshold": QUORUM,
            "kinds": sorted({g.public_key.kind.value for g in world.approvers}),
            "status": request.status.value,
        }

    def _escrow(self, world: KeysWorld, client: Client) -> dict[str, object]:
        recipient = envelope.parse_recipient(world.new_owner_recipient)
        sizes = []
        for guardian in world.approvers:
            sealed = read_bounded(_need(guardian.envelope), envelope.MAX_ENVELOPE_BYTES, what="envelope")
            content = envelope.open_envelope(
                sealed, envelope.load_identities(guardian.identity_file), guardian.name
            )
            ciphertext = escrow.escrow_share(content.to_plaintext().decode(), recipient)
            answer = client.sign_and_act(
                read_key_file(guardian.key_file),
                world.vault,
                messages.UploadShare(world.request, escrow.ciphertext_digest(ciphertext)),
                ciphertext=ciphertext,
            )
            _expect_events(answer.kinds, "share_escrowed", f"{guardian.name} escrowing a share")
            sizes.append(len(ciphertext))
        return {"shares": len(sizes), "bytes": sum(sizes)}

    def _skip_period(self, world: KeysWorld, client: Client) -> dict[str, object]:
        before = client.service().now
        after = client.advance_clock(RECOVERY_PERIOD)
        if after - before < RECOVERY_PERIOD:
            raise StepFailed(
                f"the service clock moved {after - before} s, not the {RECOVERY_PERIOD} s recovery period"
            )
        request = client.vault(world.vault).state.request(world.request)
        return {
            "period_skipped_seconds": after - before,
            "period_days": RECOVERY_PERIOD / 86400,
            "status": None if request is None else request.status.value,
        }

    def _execute(self, world: KeysWorld, client: Client) -> dict[str, object]:
        new_owner = _need(world.new_owner)
        answer = client.sign_and_act(
            read_key_file(_need(world.new_owner_key_file)), world.vault, messages.Execute(world.request)
        )
        _expect_events(answer.kinds, "owner_changed", "executing the request")
        state = client.vault(world.vault).state
        request = state.request(world.request)
        if state.owner != new_owner:
            raise StepFailed(f"after execution the service names owner {state.owner.text}, not the new key")
        if request is None or request.status is not Status.EXECUTED:
            raise StepFailed(f"request {_short(world.request)} is not executed after execution")
        return {"owner": new_owner.text[:20], "status": request.status.value, "version": answer.version}

    def _claim(self, sandbox: Sandbox, world: KeysWorld, client: Client) -> dict[str, object]:
        recorded = sandbox.scratch.get(SCRATCH_FINGERPRINT)
        if not isinstance(recorded, str):
            raise StepFailed("set-up recorded no fingerprint of the secret: nothing to check against")
        bundle = client.escrow(world.vault, world.request)
        released = sorted(share.guardian.text for share in bundle)
        if released != sorted(g.public_key.text for g in world.approvers):
            raise StepFailed(
                f"the service released {len(bundle)} shares, from other guardians than the "
                f"{len(world.approvers)} who escrowed"
            )
        identities = envelope.load_identities(_need(world.new_owner_identity_file))
        secret = escrow.open_bundle(identities[0], [share.ciphertext for share in bundle], recorded)
        rebuilt = format_fingerprint(fingerprint(secret))
        if rebuilt != recorded:  # open_bundle checked it in constant time; say what differs
            raise StepFailed(f"the rebuilt secret has fingerprint {rebuilt}, set-up recorded {recorded}")
        recovered = world.directory / "new-owner" / HEX_FILE
        write_atomic(recovered, (secret.hex() + "\n").encode(), mode=SECRET_MODE)
        return {"shares": len(bundle), "fingerprint": rebuilt, "matches": True}

    def _audit(self, world: KeysWorld, client: Client) -> dict[str, object]:
        service_key = load_or_create_key(world.service.key_file).public_key
        verified = audit.verify(client.audit_export(), service_key)
        vault = world.vault.hex()
        actions = Counter(e.action for e in verified.entries if e.vault.removeprefix("0x") == vault)
        expected = {
            "request_approval": len(world.approvers),
            "share_escrowed": len(world.approvers),
            "owner_changed": 1,
        }
        if any(actions[kind] != count for kind, count in expected.items()):
            raise StepFailed(f"the audit log does not record the recovery: {dict(actions)}")
        return {"entries": len(verified.entries), "vault_entries": sum(actions.values())}


def _need(value: _T | None) -> _T:
    if value is None:
        raise StepFailed("an earlier step of the keys path did not record what this one needs")
    return value


def _world(sandbox: Sandbox) -> KeysWorld:
    world = sandbox.scratch.get(SCRATCH_WORLD)
    if not isinstance(world, KeysWorld):
        raise StepFailed("the keys path was not set up in this sandbox")
    return world


__all__ = ["KeysPath", "KeysWorld", "RecoveryService"]
