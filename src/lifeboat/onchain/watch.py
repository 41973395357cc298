"""Watch live protocol state and, on a violated invariant, produce the pause order.

The state comes from any record source the state pillar reads (JSON Lines, CSV, SQL) or straight
from a ``LedgerVault`` on a chain (:func:`vault_records`). The check is the state pillar's own
(``state check``); a violation yields an :class:`~lifeboat.onchain.orders.Order` for the FROST
group to sign, and, when the signers' commitments are at hand, the signing package itself, so the
way from detection to pause is one ``lifeboat frost sign`` per signer.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from lifeboat.fs import PUBLIC_MODE, write_atomic
from lifeboat.onchain.orders import Order, new_order
from lifeboat.state import snapshots as state
from lifeboat.state.invariants import InvariantReport, Invariants
from lifeboat.state.records import RecordSpec, open_source
from lifeboat.threshold import frost, serialize
from lifeboat.threshold.group import PublicKeyPackage
from lifeboat.threshold.secp256k1 import Secp256k1Sha256

#: The asset a LedgerVault holds, as its records name it.
VAULT_ASSET = "ETH"
#: The key field of the records :func:`vault_records` writes.
VAULT_KEY_FIELD = "key"
#: The invariants of a LedgerVault's records (also examples/vault-invariants.toml).
VAULT_INVARIANTS = """\
# Invariants of a LedgerVault's live state, as `lifeboat chain export` / `chain watch vault:0x…`
# write it (docs/onchain.md). The watch pauses the vault when one fails.
version = 1
limit = 10

# Conservation: the accounts' balances add up to what the vault owes (deposits less withdrawals).
[[sum]]
name = "conservation"
where = { kind = "account" }
amount = "balances.*"
equals = { key = "supply:{group}", field = "amount" }

# Reserves: what the vault owes is exactly the ether it holds.
[[sum]]
name = "reserves"
where = { kind = "supply" }
amount = "amount"
group = "asset"
equals = { key = "reserve:{group}", field = "amount" }
"""


def account_key(account: str) -> str:
    return f"acct:{account.lower()}"


def vault_records(vault: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """The live state of a LedgerVault as records, in key order.

    One ``account`` record per account that ever held a balance (its ``balances.ETH`` in wei, as
    a decimal string), the ``supply`` record (what the vault owes: deposits less withdrawals) and
    the ``reserve`` record (the ether the contract actually holds).
    """
    import boa

    records: list[tuple[str, dict[str, Any]]] = []
    for index in range(vault.account_count()):
        account = str(vault.account_at(index)).lower()
        records.append(
            (
                account_key(account),
                {"kind": "account", "balances": {VAULT_ASSET: str(vault.balance_of(account))}},
            )
        )
    records.append(
        (
            f"supply:{VAULT_ASSET}",
            {"kind": "supply", "asset": VAULT_ASSET, "amount": str(vault.total_supply())},
        )
    )
    reserve = boa.env.get_balance(vault.address)
    records.append(
        (f"reserve:{VAULT_ASSET}", {"kind": "reserve", "asset": VAULT_ASSET, "amount": str(reserve)})
    )
    for key, document in sorted(records, key=lambda item: item[0].encode()):
        yield key, {VAULT_KEY_FIELD: key, **document}


def write_records(records: Iterator[tuple[str, dict[str, Any]]], path: Path) -> int:
    """Write records as JSON Lines (one object per line, in the order given); the count."""
    lines = [orjson.dumps(document) for _, document in records]
    write_atomic(path, b"".join(line + b"\n" for line in lines), mode=PUBLIC_MODE, overwrite=True)
    return len(lines)


def check_source(
    location: str,
    key_field: str,
    invariants: Invariants,
    *,
    table: str | None = None,
    query: str | None = None,
) -> InvariantReport:
    """Check the live state at ``location`` (as ``state check`` does)."""
    with open_source(location, RecordSpec(key_field, ()), table=table, query=query) as records:
        return state.check_records(records, invariants)


@dataclass(frozen=True)
class Alarm:
    """What a watch produces on a violation: the report, the order, and the package if it could."""

    report: InvariantReport
    order: Order
    package: bytes | None


def alarm(
    report: InvariantReport,
    *,
    chain_id: int,
    contract: bytes,
    action: str,
    selectors: tuple[bytes, ...],
    now: int,
    lifetime: int,
    commitments: Sequence[bytes] = (),
    public: PublicKeyPackage | None = None,
) -> Alarm:
    """The order answering a failed ``report`` and, given commitments, its signing package."""
    order = new_order(chain_id, contract, action, selectors, now=now, lifetime=lifetime)
    package = None
    if commitments:
        package = signing_package(order, commitments, public)
    return Alarm(report, order, package)


def signing_package(order: Order, commitments: Sequence[bytes], public: PublicKeyPackage | None) -> bytes:
    """A ``frost sign`` package for the order's digest from the signers' commitment files."""
    suite = Secp256k1Sha256()
    decoded = [
        serialize.decode_commitment(data, f"commitment {i + 1}", suite)[1]
        for i, data in enumerate(commitments)
    ]
    package = serialize.encode_signing_package(suite, order.digest, decoded)
    serialize.decode_signing_package(package, "signing package")  # refuses duplicate signers
    if public is not None:
        frost.check_signers(public, [c.identifier for c in decoded], "the public key package")
    return package
