"""The drill's state path, its four acts on a small ledger in a real 3-of-5 repository.

The stand-ins for the other paths are real too: the repository is made with the store library
(the test KDF keeps key derivation cheap) and the group is a FROST(Ed25519) group from the
threshold library's trusted-dealer keygen, whose ``sign`` runs a full three-signer ceremony.
"""

from __future__ import annotations

import dataclasses
import random
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from lifeboat.drill.sandbox import Outcome, Sandbox
from lifeboat.drill.state import (
    APPLIED_TRANSFERS,
    EXPLOIT_ACCOUNTS,
    INVARIANTS,
    PENDING_TRANSFERS,
    StatePath,
    generate_ledger,
)
from lifeboat.drill.storage import open_repository
from lifeboat.drill.timeline import Phase, StepFailed, Timeline
from lifeboat.state import snapshots as state
from lifeboat.state.invariants import Invariant, InvariantChecker, load_invariants, parse_invariants
from lifeboat.store.backends import open_backend
from lifeboat.store.errors import StoreDown
from lifeboat.store.keyfile import TEST_KDF
from lifeboat.store.repository import Repository
from lifeboat.threshold import frost
from lifeboat.threshold.keygen import trusted_dealer_keygen
from lifeboat.threshold.suites import by_name

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ledger-invariants.toml"
ACCOUNTS = 300


class DealerGroup:
    """A 3-of-5 FROST(Ed25519) group; ``sign`` is a real ceremony of three members."""

    def __init__(self) -> None:
        self.suite = by_name("ed25519")
        self.packages, self.public, _ = trusted_dealer_keygen(self.suite, 3, 5)
        self.public_key = bytes(self.suite.group.serialize_element(self.public.group_public_key))

    def sign(self, message: bytes) -> bytes:
        signers = self.packages[:3]
        nonces = [frost.commit(self.suite, package) for package in signers]
        commitments = [n.commitment for n in nonces]
        shares = [
            frost.sign(self.suite, package, n, message, commitments)
            for package, n in zip(signers, nonces, strict=True)
        ]
        return frost.aggregate(self.suite, commitments, message, shares, self.public)


@pytest.fixture(scope="module")
def group() -> DealerGroup:
    return DealerGroup()


@pytest.fixture
def sandbox(tmp_path: Path, group: DealerGroup) -> Sandbox:
    """What the storage and signers paths hand over: five initialised stores and the group."""
    box = Sandbox(root=tmp_path / "drill", seed=20261205, accounts=ACCOUNTS)
    box.stores = [box.store(number) for number in range(1, 6)]
    backends = [open_backend(str(path), create=True) for path in box.stores]
    Repository.init(backends, box.repo_passphrase, k=3, kdf=TEST_KDF).close()
    box.group = group
    return box


def destroy(sandbox: Sandbox, *numbers: int) -> None:
    for number in numbers:
        shutil.rmtree(sandbox.stores[number - 1])


def run_until_recover(
    sandbox: Sandbox, timeline: Timeline, destroyed_first: tuple[int, ...] = ()
) -> tuple[StatePath, Outcome, bytes]:
    """Setup, operate (returning the healthy ledger's bytes) and catastrophe, the stores
    ``destroyed_first`` destroyed before it (the drill breaks the storage path first)."""
    path = StatePath()
    path.setup(sandbox, timeline)
    path.operate(sandbox, timeline)
    healthy = (sandbox.root / "state" / "ledger.jsonl").read_bytes()
    destroy(sandbox, *destroyed_first)
    outcome = path.catastrophe(sandbox, timeline)
    return path, outcome, healthy


def facts(timeline: Timeline, phase: Phase, title: str) -> dict[str, Any]:
    [step] = [s for s in timeline.steps if s.phase is phase and s.title == title]
    return step.facts


# --- the ledger ---------------------------------------------------------------------------------


def test_the_ledger_is_seeded_sorted_and_passes_the_invariants() -> None:
    first = generate_ledger(random.Random(5), 200)
    assert first == generate_ledger(random.Random(5), 200)
    assert first != generate_ledger(random.Random(6), 200)
    keys = [key for key, _ in first]
    assert keys == sorted(keys) and len(set(keys)) == len(keys) == 200 + 10 + 6
    checker = InvariantChecker(parse_invariants(INVARIANTS, where="drill"))
    for key, line in first:
        record = orjson.loads(line)
        assert record["key"] == key
        checker.feed(key, record)
    assert checker.finish().passed


def _comparable(definition: Invariant) -> dict[str, Any]:
    return {f.name: getattr(definition, f.name) for f in dataclasses.fields(definition) if f.name != "code"}


def test_the_drill_checks_the_example_ledger_invariants() -> None:
    if not EXAMPLE.is_file():
        pytest.skip(f"{EXAMPLE} is not in this checkout")
    ours = parse_invariants(INVARIANTS, where="drill")
    example = load_invariants(EXAMPLE)
    assert ours.limit == example.limit
    assert list(map(_comparable, ours.definitions)) == list(map(_comparable, example.definitions))


# --- the four acts ------------------------------------------------------------------------------


@pytest.mark.parametrize("destroyed_first", [(2, 4), ()], ids=["stores-lost-before-the-exploit", "after-it"])
def test_the_exploited_ledger_comes_back_from_three_stores(
    sandbox: Sandbox, destroyed_first: tuple[int, ...]
) -> None:
    timeline = Timeline()
    path, outcome, healthy = run_until_recover(sandbox, timeline, destroyed_first)
    ledger = sandbox.root / "state" / "ledger.jsonl"
    assert ledger.read_bytes() != healthy
    changed = 1 + EXPLOIT_ACCOUNTS  # the victim and the exploiter's new accounts
    assert outcome.lost == {"records": changed}
    if not destroyed_first:
        destroy(sandbox, 2, 4)

    path.recover(sandbox, timeline, outcome)

    assert [s.ok for s in timeline.steps] == [True] * len(timeline.steps)
    assert {s.phase for s in timeline.steps} == set(Phase) - {Phase.CHECK}  # CHECK: a real setup's
    assert outcome.recovered == outcome.lost and outcome.rpo == 0
    assert ledger.read_bytes() == healthy  # bit for bit, the journal's values as written
    # What each step measured.
    assert facts(timeline, Phase.SETUP, "generate the ledger")["records"] == ACCOUNTS + 16
    healthy_facts = facts(timeline, Phase.OPERATE, "record the healthy state")
    assert healthy_facts["records"] == ACCOUNTS + 16 and healthy_facts["seq"] == 2 * (
        APPLIED_TRANSFERS + PENDING_TRANSFERS
    )
    signed = facts(timeline, Phase.OPERATE, "the FROST group signs the new snapshot")["snapshot"]
    exploit = facts(timeline, Phase.CATASTROPHE, "an exploit mints a balance and moves it")
    assert exploit["records_changed"] == changed and exploit["entries"] == 1 + 2 * EXPLOIT_ACCOUNTS
    assert (
        "conservation"
        in facts(timeline, Phase.CATASTROPHE, "the snapshotter applies the exploit")["invariants_failed"]
    )
    assert facts(timeline, Phase.RECOVER, "open the repository from the surviving stores") == {
        "stores": 3,
        "of": 5,
        "needed": 3,
    }
    assert (
        "conservation"
        in facts(timeline, Phase.RECOVER, "check the live ledger against its invariants")["violated"]
    )
    found = facts(timeline, Phase.RECOVER, "find the newest known-good snapshot")
    assert found["snapshot"] == signed
    assert [why for why in found["rejected"].values()] == [
        "not signed yet (awaiting its FROST signature: `lifeboat state attest`)"
    ]
    rolled = facts(timeline, Phase.RECOVER, "roll back and replay the journal")
    assert rolled["replayed"] == 2 * PENDING_TRANSFERS and rolled["discarded"] == exploit["entries"]
    assert (rolled["changed"], rolled["added"], rolled["removed"]) == (1, EXPLOIT_ACCOUNTS, 0)
    assert facts(timeline, Phase.RECOVER, "check the restored ledger")["root"] == healthy_facts["root"]


# --- damage beyond what the path survives -------------------------------------------------------


def tamper_signature(sandbox: Sandbox, short_id: str) -> None:
    """Replace the snapshot's stored group signature with one that does not verify."""
    with open_repository(sandbox) as repo:
        snap = state.find_state(repo, short_id, "ledger")
        assert snap.signature is not None
        payload = dict(snap.manifest.payload)
        forged = bytearray(snap.signature)
        forged[40] ^= 1
        payload["attestation"] = {"signature": forged.hex()}
        repo.put_manifest(payload)
        repo.delete_manifest(snap.manifest.id)


def test_a_tampered_group_signature_fails_the_known_good_step(sandbox: Sandbox) -> None:
    timeline = Timeline()
    path, outcome, healthy = run_until_recover(sandbox, timeline)
    signed = facts(timeline, Phase.OPERATE, "the FROST group signs the new snapshot")["snapshot"]
    tamper_signature(sandbox, signed)
    destroy(sandbox, 1, 5)

    with pytest.raises(StepFailed, match=f"not {signed} that operate signed: .*{signed}: .*signature"):
        path.recover(sandbox, timeline, outcome)

    failed = timeline.steps[-1]
    assert (failed.phase, failed.title, failed.ok) == (
        Phase.RECOVER,
        "find the newest known-good snapshot",
        False,
    )
    assert failed.error is not None and "signature" in failed.error
    assert outcome.recovered == {} and outcome.rpo is None
    assert (sandbox.root / "state" / "ledger.jsonl").read_bytes() != healthy  # nothing was written


def test_three_lost_stores_fail_the_first_recovery_step(sandbox: Sandbox) -> None:
    timeline = Timeline()
    path, outcome, _ = run_until_recover(sandbox, timeline)
    destroy(sandbox, 1, 3, 5)

    with pytest.raises(StoreDown, match="only 2 of 5 stores answer and 3 are needed"):
        path.recover(sandbox, timeline, outcome)

    failed = timeline.steps[-1]
    assert (failed.title, failed.ok) == ("open the repository from the surviving stores", False)
    assert len(timeline.of(failed.path, Phase.RECOVER)) == 1
    assert outcome.recovered == {}


def test_setup_needs_the_group(sandbox: Sandbox) -> None:
    sandbox.group = None
    timeline = Timeline()
    with pytest.raises(StepFailed, match="no FROST group"):
        StatePath().setup(sandbox, timeline)
    assert timeline.steps[-1].ok is False
