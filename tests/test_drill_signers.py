"""The signers path of the drill: a real 3-of-5 FROST(Ed25519) group, broken and repaired."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import nacl.exceptions
import nacl.signing
import pytest

from lifeboat.drill import signers
from lifeboat.drill.sandbox import Outcome, Sandbox
from lifeboat.drill.signers import FrostGroup, SignersPath
from lifeboat.drill.timeline import PathName, Phase, StepFailed, Timeline
from lifeboat.state.statement import Signer
from lifeboat.threshold import serialize, suites
from lifeboat.threshold.group import ThresholdError


def _run_until_catastrophe(
    tmp_path: Path, path: SignersPath, seed: int = 7
) -> tuple[Sandbox, Timeline, Outcome]:
    sandbox = Sandbox(tmp_path, seed=seed, accounts=100)
    timeline = Timeline()
    path.setup(sandbox, timeline)
    path.operate(sandbox, timeline)
    outcome = path.catastrophe(sandbox, timeline)
    return sandbox, timeline, outcome


def test_the_four_acts_lose_one_share_and_repair_it(tmp_path: Path) -> None:
    path = SignersPath()
    sandbox, timeline, outcome = _run_until_catastrophe(tmp_path, path)
    assert outcome.lost == {"signer shares": 1}
    group = sandbox.group
    assert isinstance(group, FrostGroup)
    (lost,) = sandbox.scratch[signers.LOST]
    assert not group.key_path(lost).exists()
    assert lost not in group.holders()

    path.recover(sandbox, timeline, outcome)
    assert outcome.recovered == outcome.lost

    steps = timeline.of(PathName.SIGNERS)
    assert [s.phase for s in steps] == [
        Phase.SETUP,
        Phase.SETUP,
        Phase.OPERATE,
        Phase.CATASTROPHE,
        Phase.RECOVER,
        Phase.RECOVER,
        Phase.RECOVER,
    ]
    assert all(s.ok for s in steps)
    assert all(s.facts for s in steps)
    operate = timeline.of(PathName.SIGNERS, Phase.OPERATE)[0]
    assert len(operate.facts["signers"]) == signers.QUORUM
    final = steps[-1]
    assert lost in final.facts["signers"] and len(final.facts["signers"]) == signers.QUORUM

    # The repaired key package is back in place, 0600, and holds the share setup recorded.
    key_path = group.key_path(lost)
    assert key_path.stat().st_mode & 0o777 == 0o600
    _, repaired = serialize.decode_key_package(key_path.read_bytes(), str(key_path))
    verifying = suites.by_name("ed25519").group.serialize_element(repaired.verifying_share)
    assert verifying.hex() == sandbox.scratch[signers.VERIFYING_SHARES][lost]
    # No nonce file is left behind: every one was consumed by round two.
    assert not list(group.directory.rglob("nonces-*.json"))


def test_the_group_signs_what_the_state_pillar_verifies(tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path, seed=1, accounts=100)
    SignersPath().setup(sandbox, Timeline())
    group = sandbox.group
    assert group is not None
    assert group.public_key.hex() == sandbox.scratch[signers.GROUP_KEY]
    Signer("frost-ed25519", group.public_key)  # the form a statement names its signer in
    message = b"a statement's canonical JSON"
    signature = group.sign(message)
    nacl.signing.VerifyKey(group.public_key).verify(message, signature)
    with pytest.raises(nacl.exceptions.BadSignatureError):
        nacl.signing.VerifyKey(group.public_key).verify(message + b"!", signature)


def test_every_member_keeps_only_its_own_key_package(tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path, seed=2, accounts=100)
    SignersPath().setup(sandbox, Timeline())
    root = tmp_path / "signers"
    for member in range(1, signers.MEMBERS + 1):
        files = sorted(p.name for p in (root / f"member-{member}").iterdir())
        assert files == [f"key-package-{member}.json"]
        assert (root / f"member-{member}").stat().st_mode & 0o777 == 0o700
    assert (root / signers.PUBLIC_KEY_PACKAGE).stat().st_mode & 0o777 == 0o644


def test_three_lost_shares_cannot_be_repaired(tmp_path: Path) -> None:
    path = SignersPath(lose=3)
    sandbox, timeline, outcome = _run_until_catastrophe(tmp_path, path)
    assert outcome.lost == {"signer shares": 3}
    with pytest.raises(StepFailed, match=r"only 2 of 5 members still hold a share.*needs 3 helpers"):
        path.recover(sandbox, timeline, outcome)
    failed = timeline.steps[-1]
    assert failed.ok is False
    assert failed.title == "gather helpers for the repair"
    assert "needs 3 helpers" in (failed.error or "")
    assert outcome.recovered == {}
    # Nor can the two survivors sign.
    assert sandbox.group is not None
    with pytest.raises(ThresholdError, match="only 2 of 5 members hold a key package"):
        sandbox.group.sign(b"anything")


def test_a_helper_with_a_damaged_share_is_named(tmp_path: Path) -> None:
    path = SignersPath()
    sandbox, timeline, outcome = _run_until_catastrophe(tmp_path, path)
    group = sandbox.group
    assert isinstance(group, FrostGroup)
    # A helper's key package holds another share, consistent in itself (it decodes) but not the group's.
    helper = group.holders()[0]
    kp = group.load(helper)
    suite = suites.by_name("ed25519")
    share = (kp.signing_share + 1) % suite.group.order
    damaged = replace(kp, signing_share=share, verifying_share=suite.group.scalar_base_mult(share))
    group.key_path(helper).write_bytes(serialize.encode_key_package(suite, damaged))
    with pytest.raises(ThresholdError, match=f"member {helper}'s verifying share") as caught:
        path.recover(sandbox, timeline, outcome)
    assert caught.value.culprits == (helper,)
    assert timeline.steps[-1].title == "gather helpers for the repair"
    assert timeline.steps[-1].ok is False
    assert outcome.recovered == {}


def test_a_repaired_share_that_differs_from_setup_fails(tmp_path: Path) -> None:
    path = SignersPath()
    sandbox, timeline, outcome = _run_until_catastrophe(tmp_path, path)
    (lost,) = sandbox.scratch[signers.LOST]
    sandbox.scratch[signers.VERIFYING_SHARES][lost] = "00" * 32
    with pytest.raises(StepFailed, match="does not match the verifying share recorded at setup"):
        path.recover(sandbox, timeline, outcome)
    assert "repair member" in timeline.steps[-1].title
    assert isinstance(sandbox.group, FrostGroup) and lost not in sandbox.group.holders()
    assert outcome.recovered == {}


def test_a_signature_under_another_key_is_refused() -> None:
    key = nacl.signing.SigningKey.generate()
    signature = key.sign(b"m").signature
    signers.verify_independently(bytes(key.verify_key), b"m", signature)
    with pytest.raises(ThresholdError, match="independent verifier"):
        signers.verify_independently(bytes(nacl.signing.SigningKey.generate().verify_key), b"m", signature)
