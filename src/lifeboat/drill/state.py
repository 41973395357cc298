"""The drill's state path: a ledger's FROST-signed snapshots outlive an exploit and two lost stores.

* setup: a seeded ledger in the shape of ``shared/bench/gen_ledger.py`` (accounts with balances per
  asset and positions in markets, one supply record per asset, one vault record per market) is
  written as JSON Lines, snapshotted with the ledger invariants, and its statement signed by the
  sandbox's FROST group;
* operate: the protocol runs. Transfers are journaled as upserts with sequence numbers; the first
  batch is applied into a second snapshot (FROST-signed), the second stays in the journal after
  it. The last healthy sequence number and the healthy ledger's root and record count are kept;
* catastrophe: an exploit mints a balance without touching its asset's supply and moves it on to
  accounts of its own. The live ledger holds the result, the journal the exploit's entries, and
  the protocol's snapshotter applies them into a snapshot the group never signs;
* recover, from the stores that survive: the invariants flag the live ledger, rollback picks the
  newest snapshot whose group signature, chain and invariants hold (it must be the one operate
  signed), restores it with the journal replayed up to the last healthy sequence number, and the
  result must have the healthy root and count.

Everything goes through the ``state`` and ``store`` libraries; nothing is mocked.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from lifeboat.drill.sandbox import Outcome, Sandbox
from lifeboat.drill.storage import open_repository
from lifeboat.drill.timeline import PathName, Phase, StepFailed, Timeline
from lifeboat.fs import PUBLIC_MODE, write_atomic
from lifeboat.state import snapshots as state
from lifeboat.state.invariants import InvariantChecker, InvariantReport, Invariants, load_invariants
from lifeboat.state.records import RecordSpec, open_source
from lifeboat.state.snapshots import Signing, StateSnapshot
from lifeboat.state.statement import Signer, verify_signature
from lifeboat.store.repository import Repository

__all__ = ["ASSETS", "INVARIANTS", "MARKETS", "StatePath", "generate_ledger"]

ASSETS: Final = ("USDC", "USDT", "DAI", "ETH", "WBTC", "SOL", "ARB", "OP", "LINK", "UNI")
MARKETS: Final = ("ETH-PERP", "BTC-PERP", "SOL-PERP", "ARB-PERP", "LINK-PERP", "OP-PERP")
#: The dataset's name in the repository, its key field and the balances its tree sums.
DATASET: Final = "ledger"
KEY_FIELD: Final = "key"
SUM_FIELDS: Final = ("balances.USDC", "balances.ETH")
#: Transfers applied into the second snapshot, and transfers journaled after it (two upserts each).
APPLIED_TRANSFERS: Final = 100
PENDING_TRANSFERS: Final = 50
#: What the exploit mints (base units), and how many accounts of its own it moves it to.
MINTED: Final = 10**30
EXPLOIT_ACCOUNTS: Final = 3

#: The ledger's invariants (those of ``examples/ledger-invariants.toml``), written into the sandbox.
INVARIANTS: Final = """\
# The invariants of the drill's ledger (the same as examples/ledger-invariants.toml).
version = 1
limit = 10

# Every asset's account balances add up to its supply record.
[[sum]]
name = "conservation"
where = { kind = "account" }
amount = "balances.*"
equals = { key = "supply:{group}", field = "amount" }

# Every market's vault covers the collateral of its positions.
[[sum]]
name = "solvency"
where = { kind = "account" }
amount = "positions[].collateral"
group = "positions[].market"
at_most = { key = "market:{group}", field = "vault" }

# No balance is negative.
[[bound]]
name = "no-negative-balance"
where = { kind = "account" }
field = "balances.*"
min = 0

# Nonces are sane, an account has at most three positions, each with collateral.
[[rule]]
name = "account-sane"
where = { kind = "account" }
expr = "nonce >= 0 and len(positions) <= 3 and all(int(p['collateral']) > 0 for p in positions)"
"""

_SPEC: Final = RecordSpec(KEY_FIELD, SUM_FIELDS)
_SCRATCH: Final = "state"


# --- the ledger --------------------------------------------------------------------------------


def _account_key(rng: random.Random) -> str:
    return f"acct:0x{rng.getrandbits(160):040x}"


def _account(rng: random.Random, number: int) -> dict[str, Any]:
    held = rng.sample(ASSETS, rng.randint(1, 5))
    positions = [
        {
            "market": rng.choice(MARKETS),
            "side": rng.choice(("long", "short")),
            "size": str(rng.randint(1, 10**21)),
            "entry_price": str(rng.randint(10**4, 7 * 10**10)),
            "collateral": str(rng.randint(10**18, 10**23)),
        }
        for _ in range(rng.randint(0, 3))
    ]
    return {
        "key": _account_key(rng),
        "kind": "account",
        "id": number,
        "nonce": rng.randint(0, 10_000),
        "balances": {asset: str(rng.randint(0, 10**24)) for asset in held},
        "positions": positions,
    }


def _line(record: dict[str, Any]) -> bytes:
    """The record's JSON, in an object of its own size (orjson's result keeps a 4 KiB buffer)."""
    return bytes(memoryview(orjson.dumps(record)))


def generate_ledger(rng: random.Random, accounts: int) -> list[tuple[str, bytes]]:
    """A ledger of ``accounts`` accounts, one supply record per asset (the sum of its balances) and
    one vault per market (its positions' collateral and a buffer): (key, JSON line) sorted by key.

    Each record is serialised as soon as it is made, so memory is one line per record (a million
    accounts of dicts would take gigabytes)."""
    supply = dict.fromkeys(ASSETS, 0)
    collateral = dict.fromkeys(MARKETS, 0)
    records: list[tuple[str, bytes]] = []
    for number in range(accounts):
        account = _account(rng, number)
        for asset, amount in account["balances"].items():
            supply[asset] += int(amount)
        for position in account["positions"]:
            collateral[position["market"]] += int(position["collateral"])
        records.append((account["key"], _line(account)))
    for asset, total in supply.items():
        record = {"key": f"supply:{asset}", "kind": "supply", "asset": asset, "amount": str(total)}
        records.append((record["key"], _line(record)))
    for market, total in collateral.items():
        record = {
            "key": f"market:{market}",
            "kind": "market",
            "market": market,
            "vault": str(total + rng.randint(0, 10**20)),
        }
        records.append((record["key"], _line(record)))
    records.sort(key=lambda record: record[0])
    return records


def _read_ledger(path: Path) -> dict[str, bytes]:
    """The live ledger: each record's key and its line (without the line break), in file order."""
    lines = path.read_bytes().splitlines()
    return {orjson.loads(line)["key"]: line for line in lines}


def _write_ledger(path: Path, ledger: dict[str, bytes]) -> int:
    data = b"".join(ledger[key] + b"\n" for key in sorted(ledger))
    write_atomic(path, data, overwrite=True)
    return len(data)


# --- journal changes ---------------------------------------------------------------------------


@dataclass
class _Changes:
    """Journal lines made from changes to the ledger (applied to it as they are made)."""

    ledger: dict[str, bytes]
    seq: int
    lines: list[bytes]

    def upsert(self, record: dict[str, Any]) -> None:
        line = _line(record)
        self.ledger[record["key"]] = line
        self.seq += 1
        self.lines.append(
            b'{"seq":%d,"op":"upsert","key":%s,"value":%s}' % (self.seq, orjson.dumps(record["key"]), line)
        )

    def load(self, key: str) -> dict[str, Any]:
        record: dict[str, Any] = orjson.loads(self.ledger[key])
        return record


def _transfers(rng: random.Random, changes: _Changes, accounts: Sequence[str], count: int) -> None:
    """``count`` transfers between accounts: conservation holds, each sender's nonce goes up."""
    done = 0
    while done < count:
        sender_key, receiver_key = rng.sample(accounts, 2)
        sender, receiver = changes.load(sender_key), changes.load(receiver_key)
        funded = [asset for asset, amount in sender["balances"].items() if int(amount) > 0]
        if not funded:  # nothing to send: another pair
            continue
        done += 1
        asset = rng.choice(funded)
        amount = rng.randint(1, int(sender["balances"][asset]))
        sender["balances"][asset] = str(int(sender["balances"][asset]) - amount)
        sender["nonce"] += 1
        receiver["balances"][asset] = str(int(receiver["balances"].get(asset, "0")) + amount)
        changes.upsert(sender)
        changes.upsert(receiver)


def _exploit(rng: random.Random, changes: _Changes, accounts: Sequence[str]) -> tuple[str, str]:
    """Mint :data:`MINTED` into one account's balance (its supply untouched) and move most of it
    to new accounts of the exploiter's; the victim's key and the asset."""
    victim_key = rng.choice(accounts)
    victim = changes.load(victim_key)
    asset = rng.choice(sorted(victim["balances"]))
    victim["balances"][asset] = str(int(victim["balances"][asset]) + MINTED)
    changes.upsert(victim)
    moved = MINTED // (EXPLOIT_ACCOUNTS + 1)
    for number in range(EXPLOIT_ACCOUNTS):
        victim["balances"][asset] = str(int(victim["balances"][asset]) - moved)
        victim["nonce"] += 1
        changes.upsert(victim)
        key = _account_key(rng)
        changes.upsert(
            {
                "key": key,
                "kind": "account",
                "id": len(accounts) + number,
                "nonce": 0,
                "balances": {asset: str(moved)},
                "positions": [],
            }
        )
    return victim_key, asset


# --- the repository, signing, measuring ----------------------------------------------------------


def group_signing(group_key: bytes) -> Signing:
    """Statements name the FROST group; they are stored unsigned until the group signs them."""
    return Signing(Signer("frost-ed25519", group_key), None)


def sign_snapshot(repo: Repository, sandbox: Sandbox, snap: StateSnapshot) -> StateSnapshot:
    """A signing ceremony of the sandbox's group over ``snap``'s statement, attached once it verifies."""
    group = sandbox.group
    if group is None:
        raise StepFailed(
            "the sandbox has no FROST group to sign record snapshots (the signers path sets it up)"
        )
    return state.attach_signature(repo, snap, group.sign(snap.statement.message()))


@dataclass(frozen=True)
class _Measure:
    """A ledger file's tree root and record count, and its invariant report."""

    root: bytes
    count: int
    report: InvariantReport


def _measure(path: Path, invariants: Invariants, *, fanout: int, leaf_fanout: int) -> _Measure:
    """Read the ledger once: check the invariants and build its tree in memory (nothing stored)."""
    checker = InvariantChecker(invariants)
    with open_source(str(path), _SPEC) as source:
        root, count = state.tree_of(
            source, fanout=fanout, leaf_fanout=leaf_fanout, sum_fields=len(SUM_FIELDS), checker=checker
        )
    return _Measure(root, count, checker.finish())


def _violated(report: InvariantReport) -> list[str]:
    return [result.name for result in report.results if not result.passed]


def _short(data: bytes) -> str:
    return data.hex()[:8]


@dataclass
class _Kept:
    """What the state path keeps between its acts (``sandbox.scratch["state"]``)."""

    ledger: Path
    invariants: Path
    group_key: bytes
    #: The snapshot operate signed: the one rollback must come back to.
    good: bytes = b""
    #: The healthy state: the last healthy journal sequence number, the ledger's root and count.
    healthy_seq: int = 0
    healthy_root: bytes = b""
    healthy_count: int = 0
    #: The exploit's journal entries (sequence numbers after ``healthy_seq``).
    exploit_entries: int = 0


def _kept(sandbox: Sandbox) -> _Kept:
    kept = sandbox.scratch.get(_SCRATCH)
    if not isinstance(kept, _Kept):
        raise StepFailed("the state path's setup did not run in this sandbox")
    return kept


# --- the path ----------------------------------------------------------------------------------


class StatePath:
    """Protocol state: snapshots, journal, an exploit, rollback and replay (see the module docstring)."""

    name = PathName.STATE

    def setup(self, sandbox: Sandbox, timeline: Timeline) -> None:
        home = sandbox.root / "state"
        home.mkdir(parents=True, exist_ok=True)
        with timeline.step(self.name, Phase.SETUP, "generate the ledger") as step:
            if sandbox.group is None:
                raise StepFailed(
                    "the sandbox has no FROST group to sign record snapshots (the signers path sets it up)"
                )
            kept = _Kept(home / "ledger.jsonl", home / "ledger-invariants.toml", sandbox.group.public_key)
            write_atomic(kept.invariants, INVARIANTS.encode(), mode=PUBLIC_MODE, overwrite=True)
            rng = random.Random(sandbox.rng.getrandbits(64))  # noqa: S311 - test data
            ledger = generate_ledger(rng, sandbox.accounts)
            records = len(ledger)
            data = b"".join(line + b"\n" for _, line in ledger)
            del ledger
            write_atomic(kept.ledger, data, overwrite=True)
            step.facts.update(accounts=sandbox.accounts, records=records, bytes=len(data))
            del data
        invariants = load_invariants(kept.invariants)
        with ExitStack() as stack:
            with timeline.step(self.name, Phase.SETUP, "snapshot the ledger with its invariants") as step:
                repo = stack.enter_context(open_repository(sandbox))
                with open_source(str(kept.ledger), _SPEC) as source:
                    result = state.snapshot_records(
                        repo,
                        source,
                        _SPEC,
                        name=DATASET,
                        signing=group_signing(kept.group_key),
                        invariants=invariants,
                    )
                snap = result.snapshot
                if not snap.statement.invariants_passed:
                    raise StepFailed(
                        f"the generated ledger fails its invariants: {snap.statement.invariants}"
                    )
                step.facts.update(
                    snapshot=snap.short_id,
                    records=snap.statement.count,
                    root=_short(snap.statement.root),
                    nodes=result.written.nodes_new,
                    bytes_stored=result.written.bytes_stored,
                    invariants="pass",
                )
            with timeline.step(self.name, Phase.SETUP, "the FROST group signs the snapshot") as step:
                signed = sign_snapshot(repo, sandbox, snap)
                step.facts.update(snapshot=signed.short_id, group=_short(kept.group_key))
        kept.good = signed.digest
        sandbox.scratch[_SCRATCH] = kept

    def operate(self, sandbox: Sandbox, timeline: Timeline) -> None:
        kept = _kept(sandbox)
        invariants = load_invariants(kept.invariants)
        rng = random.Random(sandbox.rng.getrandbits(64))  # noqa: S311 - test data
        with ExitStack() as stack:
            with timeline.step(self.name, Phase.OPERATE, "journal transfers and apply them") as step:
                repo = stack.enter_context(open_repository(sandbox))
                base = state.find_state(repo, "latest", DATASET)
                changes = _Changes(_read_ledger(kept.ledger), base.statement.sequence, [])
                accounts = sorted(key for key in changes.ledger if key.startswith("acct:"))
                _transfers(rng, changes, accounts, APPLIED_TRANSFERS)
                stored, applied = state.append_and_apply_journal(
                    repo,
                    DATASET,
                    changes.lines,
                    what="the drill's journal",
                    signing=group_signing(kept.group_key),
                    invariants=invariants,
                )
                if applied is None or not applied.snapshot.statement.invariants_passed:
                    raise StepFailed(
                        "the journal of healthy transfers did not make a snapshot that passes its invariants"
                    )
                step.facts.update(
                    entries=stored.stored,
                    seq=f"{stored.first}..{stored.last}",
                    snapshot=applied.snapshot.short_id,
                    nodes_new=applied.written.nodes_new,
                )
            with timeline.step(self.name, Phase.OPERATE, "the FROST group signs the new snapshot") as step:
                signed = sign_snapshot(repo, sandbox, applied.snapshot)
                step.facts.update(snapshot=signed.short_id, sequence=signed.statement.sequence)
            with timeline.step(self.name, Phase.OPERATE, "journal more transfers after it") as step:
                changes.lines = []
                _transfers(rng, changes, accounts, PENDING_TRANSFERS)
                pending = state.append_journal(repo, DATASET, changes.lines, what="the drill's journal")
                step.facts.update(entries=pending.stored, seq=f"{pending.first}..{pending.last}")
        with timeline.step(self.name, Phase.OPERATE, "record the healthy state") as step:
            _write_ledger(kept.ledger, changes.ledger)
            healthy = _measure(
                kept.ledger,
                invariants,
                fanout=signed.statement.fanout,
                leaf_fanout=signed.statement.leaf_fanout,
            )
            if not healthy.report.passed:
                raise StepFailed(f"the healthy ledger fails {', '.join(_violated(healthy.report))}")
            kept.good = signed.digest
            kept.healthy_seq, kept.healthy_root, kept.healthy_count = changes.seq, healthy.root, healthy.count
            step.facts.update(seq=changes.seq, root=_short(healthy.root), records=healthy.count)

    def catastrophe(self, sandbox: Sandbox, timeline: Timeline) -> Outcome:
        kept = _kept(sandbox)
        invariants = load_invariants(kept.invariants)
        rng = random.Random(sandbox.rng.getrandbits(64))  # noqa: S311 - test data
        # The other paths break things in the same act: write to the stores that still answer.
        with ExitStack() as stack:
            with timeline.step(
                self.name, Phase.CATASTROPHE, "an exploit mints a balance and moves it"
            ) as step:
                repo = stack.enter_context(open_repository(sandbox))
                changes = _Changes(_read_ledger(kept.ledger), kept.healthy_seq, [])
                accounts = sorted(key for key in changes.ledger if key.startswith("acct:"))
                before = dict(changes.ledger)
                victim, asset = _exploit(rng, changes, accounts)
                _write_ledger(kept.ledger, changes.ledger)
                stored = state.append_journal(repo, DATASET, changes.lines, what="the exploit's journal")
                touched = {key for key, line in changes.ledger.items() if before.get(key) != line}
                kept.exploit_entries = stored.stored
                step.facts.update(
                    victim=victim[:14],
                    asset=asset,
                    minted=str(MINTED),
                    entries=stored.stored,
                    seq=f"{stored.first}..{stored.last}",
                    records_changed=len(touched),
                )
            with timeline.step(self.name, Phase.CATASTROPHE, "the snapshotter applies the exploit") as step:
                applied = state.apply_journal(
                    repo, DATASET, signing=group_signing(kept.group_key), invariants=invariants
                )
                if applied is None:
                    raise StepFailed("the exploit's journal entries made no snapshot")
                report = InvariantReport.from_json(applied.snapshot.statement.invariants)
                step.facts.update(
                    snapshot=applied.snapshot.short_id,
                    signed=False,
                    invariants_failed=", ".join(_violated(report)),
                )
        return Outcome(
            lost={"records": len(touched)},
            notes=[
                f"the exploit wrote journal entries {stored.first}..{stored.last} after the last healthy one"
            ],
        )

    def recover(self, sandbox: Sandbox, timeline: Timeline, outcome: Outcome) -> None:
        kept = _kept(sandbox)
        invariants = load_invariants(kept.invariants)
        with ExitStack() as stack:
            with timeline.step(
                self.name, Phase.RECOVER, "open the repository from the surviving stores"
            ) as step:
                repo = stack.enter_context(open_repository(sandbox, writable=False))
                step.facts.update(stores=repo.n - len(repo.unavailable), of=repo.n, needed=repo.k)
            with timeline.step(
                self.name, Phase.RECOVER, "check the live ledger against its invariants"
            ) as step:
                with open_source(str(kept.ledger), RecordSpec(KEY_FIELD, ())) as source:
                    report = state.check_records(source, invariants)
                violated = _violated(report)
                step.facts.update(violated=", ".join(violated) or "none")
                if "conservation" not in violated:
                    raise StepFailed(
                        "the invariants do not flag the exploited ledger's broken conservation "
                        f"(violated: {', '.join(violated) or 'none'}); check {kept.invariants}"
                    )
            with timeline.step(self.name, Phase.RECOVER, "find the newest known-good snapshot") as step:
                good, rejected, _ = state.known_good(repo, DATASET, trust=kept.group_key)
                step.facts.update(rejected={snap.short_id: why for snap, why in rejected})
                if good is None or good.digest != kept.good:
                    found = (
                        "none" if good is None else f"{good.short_id} (sequence {good.statement.sequence})"
                    )
                    why = "; ".join(f"{snap.short_id}: {reason}" for snap, reason in rejected)
                    raise StepFailed(
                        f"the newest known-good snapshot is {found}, not {_short(kept.good)} that operate "
                        f"signed: {why or 'it is missing'}"
                    )
                assert good.signature is not None  # known_good checked it
                verify_signature(good.statement, good.signature)  # against the group key kept at setup
                step.facts.update(
                    snapshot=good.short_id, sequence=good.statement.sequence, group=_short(kept.group_key)
                )
            with timeline.step(self.name, Phase.RECOVER, "roll back and replay the journal") as step:
                rolled = state.roll_back(repo, good, str(kept.ledger), through=kept.healthy_seq)
                diff = rolled.diff
                if diff is None:
                    raise StepFailed(
                        f"the exploited ledger could not be compared with the snapshot: {rolled.unreadable}"
                    )
                undone = diff.added + diff.removed + diff.changed
                step.facts.update(
                    replayed=kept.healthy_seq - good.statement.sequence,
                    through=kept.healthy_seq,
                    discarded=kept.exploit_entries,
                    written=rolled.written,
                    added=diff.added,
                    removed=diff.removed,
                    changed=diff.changed,
                )
                if undone != outcome.lost.get("records"):
                    raise StepFailed(
                        f"the rollback undid {undone} records, the exploit changed {outcome.lost.get('records')}"
                    )
            with timeline.step(self.name, Phase.RECOVER, "check the restored ledger") as step:
                restored = _measure(
                    kept.ledger,
                    invariants,
                    fanout=good.statement.fanout,
                    leaf_fanout=good.statement.leaf_fanout,
                )
                step.facts.update(root=_short(restored.root), records=restored.count)
                if (restored.root, restored.count) != (kept.healthy_root, kept.healthy_count):
                    raise StepFailed(
                        f"the restored ledger has root {_short(restored.root)} and {restored.count} records, "
                        f"the healthy one had {_short(kept.healthy_root)} and {kept.healthy_count}"
                    )
                if not restored.report.passed:
                    raise StepFailed(f"the restored ledger fails {', '.join(_violated(restored.report))}")
        outcome.recovered = {"records": undone}
        outcome.rpo = kept.healthy_seq - (
            rolled.through if rolled.through is not None else good.statement.sequence
        )
