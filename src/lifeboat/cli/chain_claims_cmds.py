"""``lifeboat chain settle|claims|proof``: settle a known-good record snapshot, build its claim tree,
and give an account the proof its claim needs.

SNAPSHOT is ``latest``, ``known-good`` (the snapshot ``state rollback`` would pick) or 4+ hex
digits of a record snapshot's id; the repository options are those of ``lifeboat state``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lifeboat.cli.output import emit, info
from lifeboat.cli.repo_cmds import CacheOpt, NoCacheOpt, PassFileOpt, StoreOpt, _open, _say, _warn
from lifeboat.cli.state_cmds import NameOpt, TrustOpt, _trust, max_bundle_file
from lifeboat.errors import StateError, UsageError
from lifeboat.fs import PUBLIC_MODE, read_bounded, write_atomic

if TYPE_CHECKING:
    from lifeboat.onchain import settle as settlement
    from lifeboat.onchain.merkle import StandardMerkleTree
    from lifeboat.state.snapshots import StateSnapshot
    from lifeboat.store.repository import Repository

#: The largest claim tree file read: a tree of 2**20 claims (the most a tree holds) is about 300 MB.
MAX_TREE_FILE = 384 << 20

SnapshotArg = Annotated[
    str,
    typer.Argument(
        help="'latest', 'known-good', or 4+ hex digits of a record snapshot's id.", metavar="SNAPSHOT"
    ),
]
SpecOpt = Annotated[
    Path | None,
    typer.Option(
        "--spec", help="A settlement spec (TOML): asset, prices, markets, pot, fields.", metavar="FILE"
    ),
]
AssetOpt = Annotated[
    str | None, typer.Option("--asset", help="The settlement asset: claims are paid in its base units.")
]
PriceOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--price",
        help="ASSET=PRICE: settlement base units per base unit of ASSET (repeatable).",
        metavar="A=P",
    ),
]
MarkOpt = Annotated[
    list[str] | None,
    typer.Option("--mark", help="MARKET=PRICE: a market's frozen mark price (repeatable).", metavar="M=P"),
]
PotOpt = Annotated[
    str | None,
    typer.Option(
        "--pot", help="What there is to pay out, in base units (default: everything owed).", metavar="AMOUNT"
    ),
]
KeyPrefixOpt = Annotated[
    str | None, typer.Option("--key-prefix", help="Account records' keys start with this (default 'acct:').")
]
AddressFieldOpt = Annotated[
    str | None,
    typer.Option(
        "--address-field", help="Take the address from this field (default: the key after its prefix)."
    ),
]
BalancesOpt = Annotated[
    str | None,
    typer.Option(
        "--balances",
        help="The field of balances: an object of asset amounts, or one amount in the settlement asset (default 'balances').",
    ),
]


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in values or []:
        name, sep, price = item.partition("=")
        if not sep or not name or not price:
            raise UsageError(f"{option} takes NAME=PRICE, not {item!r}")
        if name in pairs:
            raise UsageError(f"{option} gives {name!r} twice")
        pairs[name] = price
    return pairs


def _spec(
    spec_file: Path | None,
    asset: str | None,
    prices: list[str] | None,
    marks: list[str] | None,
    pot: str | None,
    key_prefix: str | None,
    address_field: str | None,
    balances: str | None,
) -> settlement.SettlementSpec:
    """The spec file's settings, overridden by the options given."""
    from lifeboat.onchain import settle as settlement
    from lifeboat.onchain.errors import OrderError

    base: dict[str, Any] = {}
    if spec_file is not None:
        base = settlement.load_spec(spec_file).to_json()
    elif asset is None:
        raise UsageError("give the settlement asset with --asset (or a --spec file)")
    if asset is not None:
        base["asset"] = asset
    base.setdefault("prices", {}).update(_pairs(prices, "--price"))
    for market, price in _pairs(marks, "--mark").items():
        base.setdefault("markets", {}).setdefault(market, {})["price"] = price
    for name, value in (
        ("pot", pot),
        ("key_prefix", key_prefix),
        ("address_field", address_field),
        ("balances", balances),
    ):
        if value is not None:
            base[name] = value
    try:
        return settlement.spec_from_json(
            base, what="the settlement spec" if spec_file is None else f"settlement spec {spec_file}"
        )
    except OrderError as exc:
        raise UsageError(str(exc)) from None


def _resolve(repo: Repository, ref: str, name: str | None, trust: bytes | None) -> StateSnapshot:
    from lifeboat.state import snapshots as state

    if ref == "known-good":
        good, rejected, _ = state.known_good(repo, name, trust=trust)
        for snap, why in rejected:
            _warn(f"skipping {snap.short_id} ({snap.statement.time}): {why}")
        if good is None:
            raise StateError(
                "no record snapshot passes its signature, chain and invariant checks; nothing to settle"
            )
        return good
    return state.find_state(repo, ref, name)


def _settle(
    snapshot: str,
    spec: settlement.SettlementSpec,
    name: str | None,
    trust: str | None,
    store: list[str] | None,
    passphrase_file: Path | None,
    cache_dir: Path | None,
    no_cache: bool,
) -> settlement.Settlement:
    from lifeboat.onchain import settle as settlement

    pinned = _trust(trust)
    with _open(store, passphrase_file, cache_dir=cache_dir, no_cache=no_cache) as repo:
        snap = _resolve(repo, snapshot, name, pinned)
        return settlement.settle_snapshot(repo, snap, spec, trust=pinned)


def _summary(result: settlement.Settlement) -> dict[str, Any]:
    ref = result.snapshot
    return {
        "snapshot": None if ref is None else ref.id,
        "root": None if ref is None else ref.root,
        "asset": result.spec.asset,
        "accounts": result.accounts,
        "claims": len(result.claims),
        "owed": str(result.owed),
        "pot": str(result.pot),
        "paid": str(result.paid),
        "remainder": str(result.remainder),
        "closed_positions": len(result.closed),
        "bad_debt": str(result.bad_debt),
    }


def _say_summary(result: settlement.Settlement) -> None:
    ref = result.snapshot
    if ref is not None:
        _say(f"settled record snapshot {ref.id[:8]} ({ref.name}, {ref.time}, sequence {ref.sequence})")
    _say(f"  {result.accounts} accounts, {len(result.claims)} claims, {len(result.closed)} positions closed")
    _say(f"  owed {result.owed} {result.spec.asset} base units; pot {result.pot}")
    short = result.pot < result.owed
    _say(
        f"  paid {result.paid} ({'pro rata, rounded down' if short else 'in full'}); remainder {result.remainder}"
    )
    if result.bad_debt:
        _say(f"  bad debt of closed positions: {result.bad_debt}")


def _write_settlement(result: settlement.Settlement, path: Path) -> None:
    """The settlement file (JSON, sorted keys), written atomically."""
    document = json.dumps(result.to_json(), indent=1, sort_keys=True) + "\n"
    write_atomic(path, document.encode(), mode=PUBLIC_MODE, overwrite=True)


def settle_command(
    snapshot: SnapshotArg,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Write the settlement (JSON) here.", metavar="FILE")
    ],
    spec_file: SpecOpt = None,
    asset: AssetOpt = None,
    price: PriceOpt = None,
    mark: MarkOpt = None,
    pot: PotOpt = None,
    key_prefix: KeyPrefixOpt = None,
    address_field: AddressFieldOpt = None,
    balances: BalancesOpt = None,
    name: NameOpt = None,
    trust: TrustOpt = None,
    store: StoreOpt = None,
    passphrase_file: PassFileOpt = None,
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Settle a known-good record snapshot: frozen prices, under-collateralised positions closed, pro-rata claims."""
    spec = _spec(spec_file, asset, price, mark, pot, key_prefix, address_field, balances)
    result = _settle(snapshot, spec, name, trust, store, passphrase_file, cache_dir, no_cache)
    _write_settlement(result, output)
    info(f"settlement written to {output}")
    emit({**_summary(result), "file": str(output)}, lambda: _say_summary(result))


def claims_command(
    snapshot: SnapshotArg,
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Write the claim tree (OpenZeppelin standard-v1) here.", metavar="FILE"
        ),
    ],
    settlement_out: Annotated[
        Path | None,
        typer.Option("--settlement", help="Also write the settlement (JSON) here.", metavar="FILE"),
    ] = None,
    spec_file: SpecOpt = None,
    asset: AssetOpt = None,
    price: PriceOpt = None,
    mark: MarkOpt = None,
    pot: PotOpt = None,
    key_prefix: KeyPrefixOpt = None,
    address_field: AddressFieldOpt = None,
    balances: BalancesOpt = None,
    name: NameOpt = None,
    trust: TrustOpt = None,
    store: StoreOpt = None,
    passphrase_file: PassFileOpt = None,
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """The claim tree of a settlement: one leaf (address, amount in wei or base units) per claim."""
    spec = _spec(spec_file, asset, price, mark, pot, key_prefix, address_field, balances)
    result = _settle(snapshot, spec, name, trust, store, passphrase_file, cache_dir, no_cache)
    tree = result.tree()
    write_atomic(
        output, (json.dumps(tree.dump(), indent=1) + "\n").encode(), mode=PUBLIC_MODE, overwrite=True
    )
    if settlement_out is not None:
        _write_settlement(result, settlement_out)
    data = {**_summary(result), "tree": str(output), "tree_root": "0x" + tree.root.hex(), "leaves": len(tree)}

    def human() -> None:
        _say_summary(result)
        _say(f"claim tree of {len(tree)} leaves written to {output}")
        _say(f"  root 0x{tree.root.hex()}  (deploy MerkleClaim with it and total {result.paid})")

    emit(data, human)


def load_tree(path: Path) -> StandardMerkleTree:
    """A claim tree file, bounded in size and checked hash by hash."""
    from lifeboat.documents import strict_json
    from lifeboat.onchain.errors import OrderError
    from lifeboat.onchain.merkle import StandardMerkleTree

    data = read_bounded(path, MAX_TREE_FILE, what="claim tree")
    obj = strict_json(data, f"claim tree {path}", OrderError, invalid=f"claim tree {path} is not JSON")
    try:
        return StandardMerkleTree.load(obj)
    except OrderError as exc:
        raise OrderError(f"{path}: {exc}") from None


def proof_command(
    tree_file: Annotated[
        Path, typer.Argument(help="A claim tree (`lifeboat chain claims -o`).", metavar="TREE")
    ],
    account: Annotated[str, typer.Argument(help="The account (0x and 40 hex digits).")],
) -> None:
    """Print an account's amount and proof as JSON: the arguments of MerkleClaim.claim."""
    from lifeboat.onchain.errors import OrderError
    from lifeboat.onchain.merkle import checked_address, claim_of, hex_proof

    checked_address(account, "ACCOUNT")  # a mistyped account is named before the tree is read
    tree = load_tree(tree_file)
    try:
        wanted, amount, proof = claim_of(tree, account)
    except OrderError as exc:
        raise OrderError(f"{tree_file}: {exc}") from None
    data = {
        "account": wanted,
        "amount": str(amount),
        "proof": hex_proof(proof),
        "root": "0x" + tree.root.hex(),
    }
    typer.echo(json.dumps(data, indent=2))


def verify_claim_command(
    settlement_file: Annotated[
        Path, typer.Argument(help="A settlement (`lifeboat chain settle -o`).", metavar="SETTLEMENT")
    ],
    account: Annotated[str, typer.Argument(help="The account whose claim to check.")],
    bundles: Annotated[
        list[Path],
        typer.Argument(
            help="A `lifeboat state prove` bundle for each record of the claim.", metavar="PROOF..."
        ),
    ],
    trust: TrustOpt = None,
) -> None:
    """Check that an account's claim follows from records under the settled snapshot's signed root."""
    from lifeboat.onchain import settle as settlement

    result = settlement.read_settlement(
        read_bounded(settlement_file, settlement.MAX_SETTLEMENT_FILE, what="settlement"),
        what=f"settlement {settlement_file}",
    )
    proofs = [read_bounded(p, max_bundle_file(), what="proof") for p in bundles]
    claim = settlement.verify_claim(result, account, proofs, trust=_trust(trust))
    ref = result.snapshot
    assert ref is not None  # verify_claim refuses a settlement without a snapshot
    data = {
        "valid": True,
        "account": claim.account,
        "amount": str(claim.amount),
        "owed": str(claim.owed),
        "records": [r.key for r in claim.records],
        "snapshot": ref.id,
        "root": ref.root,
        "trusted_key": trust is not None,
    }
    emit(
        data,
        lambda: _say(
            f"valid: {claim.account} is owed {claim.owed} and claims {claim.amount} {result.spec.asset} base units, "
            f"from {len(claim.records)} record(s) under root {ref.root} of snapshot {ref.id[:8]}"
            + ("" if trust is not None else " (signer not pinned: pass --trust KEY)")
        ),
    )


def register(chain_app: typer.Typer) -> None:
    chain_app.command("settle")(settle_command)
    chain_app.command("claims")(claims_command)
    chain_app.command("proof")(proof_command)
    chain_app.command("verify-claim")(verify_claim_command)
