"""The drill's keys path against the real recovery service: an owner loses every key, three
guardians hand the vault and the secret to a new key after the (simulated) recovery period.

Also: two approvals are not enough (the service refuses to execute and the step names the
refusal); the service is gone once the sandbox is closed, and when the drill's process dies.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lifeboat.drill.keys import KeysPath, KeysWorld
from lifeboat.drill.run import FAILED, PASSED, run_drill
from lifeboat.drill.sandbox import Outcome, Sandbox
from lifeboat.drill.timeline import PathName, Phase, Timeline
from lifeboat.recovery.refusals import TooEarly

SEED = 1207
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    box = Sandbox(root=tmp_path / "sandbox", seed=SEED, accounts=10)
    box.root.mkdir(mode=0o700)
    try:
        yield box
    finally:
        box.close()


def owner_secret(seed: int) -> bytes:
    """What the path's set-up draws from the sandbox's generator first: the owner's secret."""
    return random.Random(seed).randbytes(32)


def world_of(sandbox: Sandbox) -> KeysWorld:
    world = sandbox.scratch["keys"]
    assert isinstance(world, KeysWorld)
    return world


def run_acts(path: KeysPath, sandbox: Sandbox, timeline: Timeline) -> Outcome:
    path.setup(sandbox, timeline)
    path.operate(sandbox, timeline)
    outcome = path.catastrophe(sandbox, timeline)
    path.recover(sandbox, timeline, outcome)
    return outcome


def facts(timeline: Timeline, title: str) -> dict[str, object]:
    (step,) = [s for s in timeline.steps if s.title == title]
    return step.facts


def test_three_guardians_hand_the_vault_and_the_secret_to_a_new_key(sandbox: Sandbox) -> None:
    timeline = Timeline()
    outcome = run_acts(KeysPath(), sandbox, timeline)

    assert [s.phase for s in timeline.steps].count(Phase.RECOVER) >= 5
    for step in timeline.steps:
        assert step.ok is True and step.error is None, step
        assert step.facts, f"step {step.title!r} measured nothing"
        assert step.path is PathName.KEYS
    assert outcome.lost == {"keys": 1, "secrets": 1}
    assert outcome.recovered == outcome.lost

    recorded = sandbox.scratch["keys.fingerprint"]
    approvals = facts(timeline, "guardians approve the new owner")
    assert approvals["approvals"] == 3 and approvals["status"] == "approved"
    assert approvals["kinds"] == ["bip340", "ed25519", "eip712"]
    skipped = facts(timeline, "the veto window passes (simulated clock)")
    assert skipped["period_skipped_seconds"] == 3 * 86400 and skipped["status"] == "executable"
    claim = facts(timeline, "claim the shares, rebuild the secret")
    assert claim == {"shares": 3, "fingerprint": recorded, "matches": True}

    # The rebuilt secret is the one set-up drew (recomputed here from the seed, not read back).
    world = world_of(sandbox)
    secret = owner_secret(SEED)
    rebuilt = world.directory / "new-owner" / "secret.hex"
    assert bytes.fromhex(rebuilt.read_text()) == secret
    assert not world.owner_key_file.exists() and not world.secret_file.exists()

    # Secrets stay in 0600 files and out of the timeline and the scratch space.
    secret_files = [rebuilt, *world.directory.glob("*/*.key"), *world.directory.glob("envelopes/*")]
    assert len(secret_files) >= 1 + 2 * 5 + 2 + 5
    for path in secret_files:
        assert path.stat().st_mode & 0o777 == 0o600, path
    shown = json.dumps([s.to_json() for s in timeline.steps]) + repr(sandbox.scratch)
    assert secret.hex() not in shown
    for path in world.directory.glob("*/*.key"):
        assert path.read_text().strip()[-40:] not in shown


def test_two_approvals_do_not_recover_the_service_refuses_to_execute(sandbox: Sandbox) -> None:
    timeline = Timeline()
    path = KeysPath(approving=2)
    path.setup(sandbox, timeline)
    path.operate(sandbox, timeline)
    outcome = path.catastrophe(sandbox, timeline)
    with pytest.raises(TooEarly, match=r"too_early.*pending"):
        path.recover(sandbox, timeline, outcome)

    failed = timeline.steps[-1]
    assert failed.title == "the new owner executes the request" and failed.ok is False
    assert failed.error is not None and "the service refused (too_early)" in failed.error
    assert all(s.ok for s in timeline.steps[:-1])
    assert facts(timeline, "guardians approve the new owner")["approvals"] == 2
    assert facts(timeline, "the veto window passes (simulated clock)")["status"] == "pending"
    assert outcome.recovered == {}
    assert not (world_of(sandbox).directory / "new-owner" / "secret.hex").exists()


def test_the_drill_gives_the_keys_path_its_verdict(tmp_path: Path) -> None:
    scenario = [PathName.KEYS]
    good = run_drill(
        seed=SEED, accounts=10, scenario=scenario, workdir=tmp_path, paths={PathName.KEYS: KeysPath()}
    )
    keys = good.path(PathName.KEYS)
    assert keys.verdict == PASSED, keys.error
    assert keys.rto_seconds is not None and 0 < keys.rto_seconds < 30

    short = run_drill(
        seed=SEED,
        accounts=10,
        scenario=scenario,
        workdir=tmp_path,
        paths={PathName.KEYS: KeysPath(approving=2)},
    )
    keys = short.path(PathName.KEYS)
    assert keys.verdict == FAILED and not short.passed
    assert keys.error is not None and "too_early" in keys.error
    assert list(tmp_path.iterdir()) == []  # both sandboxes removed, servers and all


def test_the_service_is_gone_once_the_sandbox_closes(tmp_path: Path) -> None:
    box = Sandbox(root=tmp_path / "sandbox", seed=SEED, accounts=10)
    box.root.mkdir(mode=0o700)
    try:
        KeysPath().setup(box, Timeline())
        service = world_of(box).service
        process = service.process
        assert process is not None and process.poll() is None
        assert httpx.get(f"{service.url}/healthz", timeout=5).status_code == 200
    finally:
        box.close()
    assert process.poll() is not None
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{service.url}/healthz", timeout=2)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead but not yet reaped by its parent (init, here): not serving anything.
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split(") ", 1)[-1].startswith("Z"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_the_service_dies_with_a_killed_drill(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from lifeboat.drill.keys import KeysPath
        from lifeboat.drill.sandbox import Sandbox
        from lifeboat.drill.timeline import Timeline

        box = Sandbox(root=Path({str(tmp_path)!r}), seed=1, accounts=10)
        KeysPath().setup(box, Timeline())
        print(box.scratch["keys"].service.process.pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup runs
        """
    )
    environment = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    drill = subprocess.run(
        [sys.executable, "-c", script],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert drill.returncode == -signal.SIGKILL, drill.stderr
    pid = int(drill.stdout.split()[-1])
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), "the recovery service outlived the drill that started it"
