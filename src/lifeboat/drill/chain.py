"""The drill's chain path: a vault on an in-process chain is drained, paused by its operators' FROST
group, and every account is paid back its pre-exploit balance from a fresh claim contract.

* setup: five operators run a 3-of-5 FROST(secp256k1) DKG; a ``LedgerVault`` guarded by the
  circuit breaker holding their group key is deployed on titanoboa's in-process chain; accounts
  deposit ether;
* operate: accounts transfer between themselves; the vault's live state is exported as records,
  snapshotted with the vault invariants into the sandbox repository, and the snapshot signed by
  the sandbox's FROST(Ed25519) group (the signers path's);
* catastrophe: an attacker exploits ``transfer`` (a self-transfer credits without debiting) to
  inflate a balance and withdraws everything the vault holds;
* recover: the watch checks the live state against the invariants and writes the pause order;
  the operators sign it; anyone submits it and the vault halts; the newest known-good snapshot
  is found and compared with the live state (``state rollback --dry-run``); the settlement of
  that snapshot becomes a claim tree; a fresh claim contract is deployed from its root and funded;
  every account claims exactly its pre-exploit balance, and the totals reconcile to the wei.

Everything runs through the ``onchain``, ``state`` and ``threshold`` libraries and real contracts.
"""

from __future__ import annotations

import contextlib
import random
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from lifeboat.drill.sandbox import Outcome, Sandbox
from lifeboat.drill.signers import FrostGroup, run_dkg
from lifeboat.drill.state import group_signing, sign_snapshot
from lifeboat.drill.storage import open_repository
from lifeboat.drill.timeline import PathName, Phase, StepFailed, Timeline
from lifeboat.fs import PUBLIC_MODE, write_atomic
from lifeboat.onchain import contracts, merkle, settle, watch
from lifeboat.onchain.chain import revert_reason
from lifeboat.onchain.orders import new_order
from lifeboat.state import snapshots as state
from lifeboat.state.invariants import InvariantReport, load_invariants
from lifeboat.state.records import RecordSpec, open_source
from lifeboat.threshold.secp256k1 import Secp256k1Sha256

#: At most this many accounts use the vault (the drill's ``--accounts`` caps it lower).
MAX_ACCOUNTS: Final = 100
OPERATORS: Final = 5
OPERATOR_QUORUM: Final = 3
DATASET: Final = "vault"
SPEC: Final = RecordSpec(watch.VAULT_KEY_FIELD, ("balances.ETH",))
ETHER: Final = 10**18
UNPAUSE_DELAY: Final = 2 * 86400
#: How long the pause order stays valid.
ORDER_LIFETIME: Final = 3600
_SCRATCH: Final = "chain"


@dataclass
class _Kept:
    """What the chain path keeps between its acts (``sandbox.scratch["chain"]``)."""

    env: Any
    directory: Path
    operators: FrostGroup
    vault: Any
    governance: str
    accounts: list[str]
    invariants: Path
    #: The healthy balances (wei per account) at the snapshot operate signed, and its digest.
    healthy: dict[str, int] = field(default_factory=dict)
    good: bytes = b""
    attacker: str = ""
    drained: int = 0


def _kept(sandbox: Sandbox) -> _Kept:
    kept = sandbox.scratch.get(_SCRATCH)
    if not isinstance(kept, _Kept):
        raise StepFailed("the chain path's setup did not run in this sandbox")
    return kept


@contextlib.contextmanager
def _on_chain(kept: _Kept) -> Iterator[Any]:
    import boa

    with boa.swap_env(kept.env):
        yield boa


def _violated(report: InvariantReport) -> list[str]:
    return [result.name for result in report.results if not result.passed]


def _check_live(kept: _Kept, scratch: Path) -> InvariantReport:
    live = scratch / "live.jsonl"
    watch.write_records(watch.vault_records(kept.vault), live)
    return watch.check_source(str(live), watch.VAULT_KEY_FIELD, load_invariants(kept.invariants))


class ChainPath:
    """A protocol's contracts: exploit, pause by FROST order, settle, claims (see the module docstring)."""

    name = PathName.CHAIN

    def setup(self, sandbox: Sandbox, timeline: Timeline) -> None:
        import boa

        directory = sandbox.root / "chain"
        directory.mkdir(parents=True, exist_ok=True)
        suite = Secp256k1Sha256()
        with timeline.step(
            self.name,
            Phase.SETUP,
            f"{OPERATORS} operators run a {OPERATOR_QUORUM}-of-{OPERATORS} secp256k1 DKG",
        ) as step:
            key_packages, public = run_dkg(suite, OPERATORS, OPERATOR_QUORUM)
            operators = FrostGroup(directory / "operators", public, sandbox.home, suite)
            for key_package in key_packages.values():
                operators.store(key_package)
            if int.from_bytes(operators.public_key[1:], "big") >= suite.group.order:
                raise StepFailed("the operators' group key has x >= n and cannot be verified on-chain")
            step.facts.update(
                members=OPERATORS, threshold=OPERATOR_QUORUM, group_key=operators.public_key.hex()[:10]
            )
        invariants = directory / "vault-invariants.toml"
        write_atomic(invariants, watch.VAULT_INVARIANTS.encode(), mode=PUBLIC_MODE, overwrite=True)
        env = boa.Env()
        env.evm.patch.chain_id = 31337
        with boa.swap_env(env):
            with timeline.step(self.name, Phase.SETUP, "deploy the guarded vault") as step:
                governance, guardian = (
                    str(env.generate_address(alias)) for alias in ("governance", "guardian")
                )
                vault = contracts.deployer("LedgerVault").deploy(
                    governance, guardian, UNPAUSE_DELAY, operators.public_key, sender=governance
                )
                step.facts.update(contract=str(vault.address)[:10], gas=vault._computation.get_gas_used())
            rng = random.Random(sandbox.rng.getrandbits(64))  # noqa: S311 - test data
            count = max(2, min(sandbox.accounts, MAX_ACCOUNTS))
            with timeline.step(self.name, Phase.SETUP, "accounts deposit ether") as step:
                accounts = []
                for number in range(count):
                    account = str(env.generate_address(f"account-{number}"))
                    amount = rng.randint(1, 100 * ETHER)
                    env.set_balance(account, amount)
                    vault.deposit(value=amount, sender=account)
                    accounts.append(account.lower())
                step.facts.update(accounts=count, deposited=str(vault.total_supply()))
        sandbox.scratch[_SCRATCH] = _Kept(env, directory, operators, vault, governance, accounts, invariants)

    def operate(self, sandbox: Sandbox, timeline: Timeline) -> None:
        kept = _kept(sandbox)
        rng = random.Random(sandbox.rng.getrandbits(64))  # noqa: S311 - test data
        with _on_chain(kept):
            with timeline.step(self.name, Phase.OPERATE, "accounts transfer between themselves") as step:
                done = 0
                for _ in range(2 * len(kept.accounts)):
                    sender, receiver = rng.sample(kept.accounts, 2)
                    balance = kept.vault.balance_of(sender)
                    if balance:
                        kept.vault.transfer(receiver, rng.randint(1, balance), sender=sender)
                        done += 1
                step.facts.update(transfers=done)
            export = kept.directory / "vault-healthy.jsonl"
            with timeline.step(self.name, Phase.OPERATE, "export the vault's state and check it") as step:
                records = watch.write_records(watch.vault_records(kept.vault), export)
                report = watch.check_source(
                    str(export), watch.VAULT_KEY_FIELD, load_invariants(kept.invariants)
                )
                if not report.passed:
                    raise StepFailed(f"the healthy vault fails {', '.join(_violated(report))}")
                kept.healthy = {a: int(kept.vault.balance_of(a)) for a in kept.accounts}
                step.facts.update(records=records, supply=str(kept.vault.total_supply()))
        with contextlib.ExitStack() as stack:
            with timeline.step(self.name, Phase.OPERATE, "snapshot the vault's state") as step:
                if sandbox.group is None:
                    raise StepFailed("the sandbox has no FROST group to sign record snapshots")
                repo = stack.enter_context(open_repository(sandbox))
                with open_source(str(export), SPEC) as source:
                    result = state.snapshot_records(
                        repo,
                        source,
                        SPEC,
                        name=DATASET,
                        signing=group_signing(sandbox.group.public_key),
                        invariants=load_invariants(kept.invariants),
                    )
                step.facts.update(snapshot=result.snapshot.short_id, records=result.snapshot.statement.count)
            with timeline.step(self.name, Phase.OPERATE, "the FROST group signs the vault snapshot") as step:
                signed = sign_snapshot(repo, sandbox, result.snapshot)
                kept.good = signed.digest
                step.facts.update(snapshot=signed.short_id)

    def catastrophe(self, sandbox: Sandbox, timeline: Timeline) -> Outcome:
        kept = _kept(sandbox)
        with (
            _on_chain(kept) as boa,
            timeline.step(self.name, Phase.CATASTROPHE, "an exploit drains the vault") as step,
        ):
            attacker = str(boa.env.generate_address("attacker"))
            boa.env.set_balance(attacker, ETHER)
            kept.vault.deposit(value=ETHER, sender=attacker)
            held = boa.env.get_balance(kept.vault.address)
            rounds = 0
            while kept.vault.balance_of(attacker) < held:
                kept.vault.transfer(attacker, kept.vault.balance_of(attacker), sender=attacker)
                rounds += 1
            kept.vault.withdraw(held, sender=attacker)
            left = boa.env.get_balance(kept.vault.address)
            if left != 0:
                raise StepFailed(f"the exploit left {left} wei in the vault")
            kept.attacker, kept.drained = attacker.lower(), held - ETHER
            step.facts.update(self_transfers=rounds, drained_wei=str(kept.drained))
        return Outcome(
            lost={"wei": kept.drained, "accounts": len(kept.accounts)},
            notes=[f"the attacker drained {kept.drained} wei deposited by {len(kept.accounts)} accounts"],
        )

    def recover(self, sandbox: Sandbox, timeline: Timeline, outcome: Outcome) -> None:
        kept = _kept(sandbox)
        with _on_chain(kept) as boa, tempfile.TemporaryDirectory(dir=kept.directory) as scratch_dir:
            scratch = Path(scratch_dir)
            with timeline.step(self.name, Phase.RECOVER, "the watch flags the live state") as step:
                report = _check_live(kept, scratch)
                violated = _violated(report)
                if "conservation" not in violated:
                    raise StepFailed(
                        f"the watch does not flag the drained vault (violated: {violated or 'none'})"
                    )
                order = new_order(
                    int(boa.env.evm.patch.chain_id),
                    bytes.fromhex(str(kept.vault.address)[2:]),
                    "pause",
                    (),
                    now=int(boa.env.evm.patch.timestamp),
                    lifetime=ORDER_LIFETIME,
                )
                step.facts.update(violated=", ".join(violated), order=order.digest.hex()[:10])
            with timeline.step(self.name, Phase.RECOVER, "the operators sign the pause order") as step:
                ceremony = kept.operators.ceremony(order.digest)
                step.facts.update(signers=list(ceremony.signers))
            with timeline.step(self.name, Phase.RECOVER, "the pause order halts the vault") as step:
                relayer = str(boa.env.generate_address("relayer"))
                kept.vault.execute_order(*order.call_arguments(ceremony.signature), sender=relayer)
                gas = kept.vault._computation.get_gas_used()
                try:
                    kept.vault.withdraw(1, sender=kept.accounts[0])
                except boa.BoaError as e:
                    if revert_reason(e) != "breaker: paused":
                        raise StepFailed(
                            f"a withdrawal after the pause failed otherwise: {revert_reason(e)}"
                        ) from None
                else:
                    raise StepFailed("a withdrawal still succeeds after the pause order")
                step.facts.update(paused=True, gas=gas)
            claims = settle_and_claim(self, sandbox, timeline, kept, scratch)
        outcome.recovered.update(claims)


def settle_and_claim(
    path: ChainPath, sandbox: Sandbox, timeline: Timeline, kept: _Kept, scratch: Path
) -> dict[str, int]:
    """From the newest known-good snapshot to every account paid back; what was recovered."""
    assert sandbox.group is not None
    with contextlib.ExitStack() as stack:
        with timeline.step(path.name, Phase.RECOVER, "find the newest known-good snapshot") as step:
            repo = stack.enter_context(open_repository(sandbox, writable=False))
            good, rejected, _ = state.known_good(repo, DATASET, trust=sandbox.group.public_key)
            if good is None or good.digest != kept.good:
                raise StepFailed(
                    f"the newest known-good vault snapshot is not the one operate signed: {rejected}"
                )
            live = scratch / "live.jsonl"  # exported by the watch's check; the pause moved no balance
            rolled = state.roll_back(repo, good, str(live), dry_run=True)
            if rolled.diff is None:
                raise StepFailed(
                    f"the live state could not be compared with the snapshot: {rolled.unreadable}"
                )
            step.facts.update(
                snapshot=good.short_id,
                added=rolled.diff.added,
                removed=rolled.diff.removed,
                changed=rolled.diff.changed,
            )
        with timeline.step(path.name, Phase.RECOVER, "settle the snapshot into a claim tree") as step:
            settlement = settle.settle_snapshot(
                repo, good, settle.SettlementSpec(asset="ETH"), trust=sandbox.group.public_key
            )
            tree = settlement.tree()
            owed = {c.account.lower(): c.amount for c in settlement.claims if c.amount}
            if owed != {a: b for a, b in kept.healthy.items() if b}:
                raise StepFailed(
                    "the settlement's claims are not the accounts' balances at the known-good snapshot"
                )
            step.facts.update(claims=len(tree), total=str(settlement.paid), root=tree.root.hex()[:10])
    with _on_chain(kept) as boa:
        with timeline.step(path.name, Phase.RECOVER, "deploy and fund the claim contract") as step:
            claims = contracts.deployer("MerkleClaim").deploy(
                tree.root, settlement.paid, sender=kept.governance
            )
            boa.env.set_balance(kept.governance, boa.env.get_balance(kept.governance) + settlement.paid)
            claims.fund(value=settlement.paid, sender=kept.governance)
            step.facts.update(contract=str(claims.address)[:10], funded=str(settlement.paid))
        with timeline.step(path.name, Phase.RECOVER, "every account claims its pre-exploit balance") as step:
            relayer = str(boa.env.generate_address("claims-relayer"))
            gas = 0
            for account, amount in owed.items():
                before = boa.env.get_balance(account)
                _, leaf_amount, proof = merkle.claim_of(tree, account)
                claims.claim(account, leaf_amount, proof, sender=relayer)
                gas = max(gas, claims._computation.get_gas_used())
                paid = boa.env.get_balance(account) - before
                if paid != amount:
                    raise StepFailed(f"{account} was paid {paid} wei, not {amount}")
            left = boa.env.get_balance(claims.address)
            if left != 0 or sum(owed.values()) != sum(kept.healthy.values()):
                raise StepFailed(f"the totals do not reconcile: {left} wei left in the claim contract")
            step.facts.update(accounts=len(owed), paid_wei=str(sum(owed.values())), max_claim_gas=gas)
    return {"wei": sum(owed.values()), "accounts": len(owed)}
