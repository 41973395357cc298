"""Settlement: what each account of a known-good record snapshot is owed, MakerDAO End style.

The steps, in order (docs/onchain-claims.md has them precisely enough to reimplement):

1. **Freeze prices.** A :class:`SettlementSpec` fixes the settlement asset (claims are paid in its
   base units), the price of every other asset, and each market's mark price.
2. **Value every account** (a record whose key starts with ``key_prefix``): its balances at the
   frozen prices, plus the equity of each position (``collateral + PnL`` at the mark price).
3. **Close under-collateralised positions**: a position whose equity is below zero (its collateral
   does not cover its loss) is closed; it adds nothing to what its account is owed, and its
   deficit is reported as bad debt.
4. **Pro-rata claims on what remains**: when the pot (what the protocol holds to pay out) is less
   than the total owed, every claim is ``owed * pot // total`` (rounded down); the remainder,
   ``pot - sum(claims)``, is reported.

Each claim names the records it comes from, so it can be traced to the snapshot's signed root with
the state pillar's inclusion proofs (:func:`prove_claim`, :func:`verify_claim`).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

from lifeboat.documents import check_fields, parse_strict_versioned
from lifeboat.errors import LifeboatError, StateError
from lifeboat.fs import read_bounded
from lifeboat.onchain.errors import OrderError
from lifeboat.onchain.merkle import CLAIM_ENCODING, StandardMerkleTree, checked_address
from lifeboat.state import prolly
from lifeboat.state import snapshots as state
from lifeboat.state import statement as statements
from lifeboat.state.snapshots import StateSnapshot
from lifeboat.store.repository import Repository

FORMAT = "lifeboat-settlement"
VERSION = 1
SPEC_FORMAT = "lifeboat-settlement-spec"
MAX_SPEC_FILE = 1 << 20
#: Amounts are paid by a uint256 on chain: nothing owed or held may reach 2**256.
MAX_AMOUNT = (1 << 256) - 1
MAX_POSITIONS = 4096

_DECIMAL = re.compile(r"[0-9]{1,78}(?:\.[0-9]{1,78})?")
_RATIO = re.compile(r"[0-9]{1,78}/[1-9][0-9]{0,77}")
_DIGITS = re.compile(r"[0-9]{1,78}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


# --- the spec: frozen prices and where things are in a record --------------------------------


@dataclass(frozen=True)
class Market:
    """A market's frozen mark price, in the units of its positions' ``entry_price``.

    A position's PnL is ``size * (price - entry_price) // price_scale`` (long; short: the
    negation) in the units of its collateral, which ``margin_price`` turns into settlement units.
    """

    price: Fraction
    price_scale: int = 1
    margin_price: Fraction = Fraction(1)


@dataclass(frozen=True)
class SettlementSpec:
    """What a settlement needs besides the records: prices, the pot, and where each field is."""

    asset: str
    prices: Mapping[str, Fraction] = field(default_factory=dict)
    markets: Mapping[str, Market] = field(default_factory=dict)
    pot: int | None = None
    key_prefix: str = "acct:"
    address_field: str | None = None
    balances: str = "balances"
    positions: str = "positions"

    def price_of(self, asset: str) -> Fraction | None:
        return Fraction(1) if asset == self.asset else self.prices.get(asset)

    def to_json(self) -> dict[str, Any]:
        return {
            "asset": self.asset,
            "prices": {a: _fraction_text(p) for a, p in sorted(self.prices.items())},
            "markets": {
                name: {
                    "price": _fraction_text(m.price),
                    "price_scale": str(m.price_scale),
                    "margin_price": _fraction_text(m.margin_price),
                }
                for name, m in sorted(self.markets.items())
            },
            "pot": None if self.pot is None else str(self.pot),
            "key_prefix": self.key_prefix,
            "address_field": self.address_field,
            "balances": self.balances,
            "positions": self.positions,
        }


def spec_from_json(obj: object, *, what: str = "the settlement spec") -> SettlementSpec:
    """A spec from a JSON or TOML object (the members of :meth:`SettlementSpec.to_json`)."""
    if not isinstance(obj, Mapping):
        raise OrderError(f"{what} must be an object (a TOML table)")
    known = {
        "format",
        "asset",
        "prices",
        "markets",
        "pot",
        "key_prefix",
        "address_field",
        "balances",
        "positions",
    }
    unknown = sorted(set(obj) - known)
    if unknown:
        raise OrderError(
            f"{what}: unknown setting(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(known))}"
        )
    if "format" in obj and obj["format"] != SPEC_FORMAT:
        raise OrderError(f"{what}: format must be {SPEC_FORMAT!r}")
    asset = _name(obj.get("asset"), f"{what}: asset")
    prices_obj = obj.get("prices", {})
    if not isinstance(prices_obj, Mapping):
        raise OrderError(f"{what}: prices must be a table of asset = price")
    prices = {
        _name(a, f"{what}: a price's asset"): _price(p, f"{what}: prices.{a}") for a, p in prices_obj.items()
    }
    markets_obj = obj.get("markets", {})
    if not isinstance(markets_obj, Mapping):
        raise OrderError(f"{what}: markets must be a table of market tables")
    markets = {
        _name(m, f"{what}: a market"): _market(v, f"{what}: markets.{m}") for m, v in markets_obj.items()
    }
    pot = obj.get("pot")
    return SettlementSpec(
        asset=asset,
        prices=prices,
        markets=markets,
        pot=None if pot is None else _amount(pot, f"{what}: pot"),
        key_prefix=_text(obj.get("key_prefix", "acct:"), f"{what}: key_prefix", empty=True),
        address_field=None
        if obj.get("address_field") is None
        else _text(obj["address_field"], f"{what}: address_field"),
        balances=_text(obj.get("balances", "balances"), f"{what}: balances"),
        positions=_text(obj.get("positions", "positions"), f"{what}: positions"),
    )


def load_spec(path: Path) -> SettlementSpec:
    """A spec from a TOML file (or a JSON file, by its ``.json`` suffix)."""
    data = read_bounded(path, MAX_SPEC_FILE, what="settlement spec")
    try:
        text = data.decode("utf-8")
        obj = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise OrderError(
            f"settlement spec {path}: not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {exc}"
        ) from None
    return spec_from_json(obj, what=f"settlement spec {path}")


def parse_price(text: str, what: str) -> Fraction:
    """A price written as decimal digits with an optional fraction (``"0.0003"``), exactly."""
    return _price(text, what)


def _market(obj: object, what: str) -> Market:
    if not isinstance(obj, Mapping):
        raise OrderError(f"{what} must be a table with price (and optionally price_scale, margin_price)")
    unknown = sorted(set(obj) - {"price", "price_scale", "margin_price"})
    if unknown:
        raise OrderError(f"{what}: unknown setting(s) {', '.join(map(repr, unknown))}")
    if "price" not in obj:
        raise OrderError(f"{what}: the frozen price is missing")
    scale = _amount(obj.get("price_scale", 1), f"{what}.price_scale")
    if scale == 0:
        raise OrderError(f"{what}.price_scale must be at least 1")
    return Market(
        price=_price(obj["price"], f"{what}.price"),
        price_scale=scale,
        margin_price=_price(obj.get("margin_price", 1), f"{what}.margin_price"),
    )


def _name(value: object, what: str) -> str:
    return _text(value, what)


def _text(value: object, what: str, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not value and not empty) or len(value) > 256:
        raise OrderError(f"{what} must be a {'' if empty else 'non-empty '}string of at most 256 characters")
    return value


def _price(value: object, what: str) -> Fraction:
    if isinstance(value, bool | float):
        raise OrderError(f'{what}: write prices as strings ("0.25") or integers; a float is not exact')
    if isinstance(value, int) and value >= 0:
        return Fraction(value)
    if isinstance(value, str) and (_DECIMAL.fullmatch(value) or _RATIO.fullmatch(value)):
        return Fraction(value)
    raise OrderError(
        f"{what} must be a non-negative decimal number (digits, optionally a fraction, or p/q), not {value!r}"
    )


def _amount(value: object, what: str) -> int:
    """A non-negative integer below 2**256: a JSON/TOML integer or a string of decimal digits."""
    if isinstance(value, bool):
        raise OrderError(f"{what} must be an integer amount, not a boolean")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value):
        number = int(value)
    else:
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise OrderError(f"{what} must be a non-negative integer (a number or decimal digits), not {shown}")
    if not 0 <= number <= MAX_AMOUNT:
        raise OrderError(f"{what} must be between 0 and 2**256 - 1")
    return number


def _fraction_text(value: Fraction) -> str:
    """A price as decimal text when it has a finite decimal expansion, else ``p/q``."""
    if value.denominator == 1:
        return str(value.numerator)
    d = value.denominator
    twos = fives = 0
    while d % 2 == 0:
        d //= 2
        twos += 1
    while d % 5 == 0:
        d //= 5
        fives += 1
    if d != 1:
        return f"{value.numerator}/{value.denominator}"
    places = max(twos, fives)
    digits = str(value.numerator * 10**places // value.denominator).rjust(places + 1, "0")
    return f"{digits[:-places]}.{digits[-places:]}"


# --- valuing one account record --------------------------------------------------------------


@dataclass(frozen=True)
class ClosedPosition:
    """A position closed at the frozen price because its equity was below zero."""

    key: str
    account: str
    index: int
    market: str
    side: str
    size: int
    entry_price: int
    collateral: int
    price: Fraction
    equity: int
    bad_debt: int

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "account": self.account,
            "position": self.index,
            "market": self.market,
            "side": self.side,
            "size": str(self.size),
            "entry_price": str(self.entry_price),
            "collateral": str(self.collateral),
            "price": _fraction_text(self.price),
            "equity": str(self.equity),
            "bad_debt": str(self.bad_debt),
        }


@dataclass(frozen=True)
class AccountValue:
    """What one account record is owed at the frozen prices, and the positions it had closed."""

    key: str
    account: str
    owed: int
    closed: tuple[ClosedPosition, ...]


def value_record(key: bytes, value: bytes, spec: SettlementSpec) -> AccountValue | None:
    """The value of one record at the spec's prices (None: not an account record)."""
    prefix = spec.key_prefix.encode("utf-8")
    if not key.startswith(prefix):
        return None
    name = key.decode("utf-8", "backslashreplace")
    where = f"record {name!r}"
    try:
        document = json.loads(value)
    except (ValueError, RecursionError):
        raise OrderError(f"{where}: the value is not JSON") from None
    if not isinstance(document, dict):
        raise OrderError(f"{where}: the value is not a JSON object")
    account = _account_of(name, document, spec, where)
    owed = 0
    balances = _path(document, spec.balances)
    if isinstance(balances, dict):
        for asset, amount in balances.items():
            number = _amount(amount, f"{where}: {spec.balances}.{asset}")
            if number == 0:
                continue
            price = spec.price_of(asset)
            if price is None:
                raise OrderError(
                    f"{where}: no frozen price for asset {asset!r} (give prices.{asset} or --price {asset}=...)"
                )
            owed += number * price.numerator // price.denominator
    elif balances is not None:
        owed += _amount(balances, f"{where}: {spec.balances}")
    closed: list[ClosedPosition] = []
    positions = _path(document, spec.positions)
    if positions is not None:
        if not isinstance(positions, list) or len(positions) > MAX_POSITIONS:
            raise OrderError(f"{where}: {spec.positions} must be a list of at most {MAX_POSITIONS} positions")
        for index, item in enumerate(positions):
            position = _position(item, spec, f"{where}: {spec.positions}[{index}]")
            market = spec.markets[position.market]
            if position.equity < 0:
                debt = -position.equity * market.margin_price
                closed.append(
                    ClosedPosition(
                        name, account, index, position.market, position.side, position.size,
                        position.entry_price, position.collateral, market.price, position.equity,
                        -(-debt.numerator // debt.denominator),  # rounded up: the debt is not understated
                    )
                )  # fmt: skip
            else:
                worth = position.equity * market.margin_price
                owed += worth.numerator // worth.denominator
    if owed > MAX_AMOUNT:
        raise OrderError(f"{where}: owes more than 2**256 - 1 base units")
    return AccountValue(name, account, owed, tuple(closed))


def _account_of(name: str, document: dict[str, Any], spec: SettlementSpec, where: str) -> str:
    if spec.address_field is None:
        text: object = name[len(spec.key_prefix) :]
        source = "its key"
    else:
        text = _path(document, spec.address_field)
        source = f"its field {spec.address_field!r}"
    if not isinstance(text, str) or not _ADDRESS.fullmatch(text):
        shown = repr(text) if len(repr(text)) <= 60 else repr(text)[:57] + "..."
        raise OrderError(f"{where}: {source} gives {shown}, not a 20-byte hex address (0x and 40 hex digits)")
    return checked_address(text, where)


def _path(document: dict[str, Any], path: str) -> Any:
    """The member at a dotted path (None if absent); as for the state pillar's sum fields, a
    top-level member named by the whole path (a CSV column ``balances.ETH``) counts when the
    first step is absent."""
    parts = path.split(".")
    if len(parts) > 1 and parts[0] not in document and path in document:
        return document[path]
    node: Any = document
    for part in parts:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


class _Position(NamedTuple):
    market: str
    side: str
    size: int
    entry_price: int
    collateral: int
    equity: int


def _position(item: object, spec: SettlementSpec, where: str) -> _Position:
    """A position read from its record, with its equity at the frozen price (rounded down)."""
    if not isinstance(item, dict):
        raise OrderError(f"{where} is not an object")
    market, side = item.get("market"), item.get("side")
    if not isinstance(market, str):
        raise OrderError(f"{where}: market must be a string")
    if side not in ("long", "short"):
        raise OrderError(f"{where}: side must be 'long' or 'short', not {side!r}")
    size = _amount(item.get("size"), f"{where}.size")
    entry = _amount(item.get("entry_price"), f"{where}.entry_price")
    collateral = _amount(item.get("collateral"), f"{where}.collateral")
    frozen = spec.markets.get(market)
    if frozen is None:
        raise OrderError(
            f"{where}: no frozen price for market {market!r} (give markets.{market}.price or --mark {market}=...)"
        )
    move = frozen.price - entry if side == "long" else entry - frozen.price
    pnl = size * move / frozen.price_scale
    return _Position(market, side, size, entry, collateral, collateral + pnl.numerator // pnl.denominator)


# --- the settlement --------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimSource:
    """One record a claim comes from, and what that record alone is owed."""

    key: str
    owed: int


@dataclass(frozen=True)
class Claim:
    """What one address may claim: ``amount`` (``owed`` scaled to the pot) and its records."""

    account: str
    amount: int
    owed: int
    records: tuple[ClaimSource, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "amount": str(self.amount),
            "owed": str(self.owed),
            "records": [{"key": r.key, "owed": str(r.owed)} for r in self.records],
        }


@dataclass(frozen=True)
class SnapshotRef:
    """The record snapshot a settlement is computed from: its id, name, signed root and signer."""

    id: str
    name: str
    root: str
    sequence: int
    time: str
    signer: Mapping[str, str]

    @classmethod
    def of(cls, snap: StateSnapshot) -> SnapshotRef:
        s = snap.statement
        return cls(
            snap.digest.hex(), s.name, s.root.hex(), s.sequence, s.time,
            {"scheme": s.signer.scheme, "public_key": s.signer.public_key.hex()},
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "root": self.root,
            "sequence": self.sequence,
            "time": self.time,
            "signer": dict(self.signer),
        }


@dataclass(frozen=True)
class Settlement:
    """Every claim (by address), the totals, and the positions closed."""

    snapshot: SnapshotRef | None
    spec: SettlementSpec
    claims: tuple[Claim, ...]
    closed: tuple[ClosedPosition, ...]
    accounts: int
    owed: int
    pot: int
    bad_debt: int

    @property
    def paid(self) -> int:
        """The sum of the claims: what the claim tree pays out in full."""
        return sum(c.amount for c in self.claims)

    @property
    def remainder(self) -> int:
        """What the pot holds beyond the claims: rounding dust, or a surplus when it exceeds what is owed."""
        return self.pot - self.paid

    def claim_of(self, account: str) -> Claim:
        wanted = checked_address(account, "the account")
        for claim in self.claims:
            if claim.account == wanted:
                return claim
        raise OrderError(f"no claim for {wanted} in the settlement")

    def tree(self) -> StandardMerkleTree:
        """The claim tree: one leaf (address, amount) per claim above zero."""
        values = [[c.account, c.amount] for c in self.claims if c.amount > 0]
        if not values:
            raise OrderError(
                "the settlement pays nothing (no claim above zero): there is no claim tree to build"
            )
        return StandardMerkleTree.of(values, CLAIM_ENCODING)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "snapshot": None if self.snapshot is None else self.snapshot.to_json(),
            "spec": self.spec.to_json(),
            "accounts": self.accounts,
            "owed": str(self.owed),
            "pot": str(self.pot),
            "paid": str(self.paid),
            "remainder": str(self.remainder),
            "bad_debt": str(self.bad_debt),
            "claims": [c.to_json() for c in self.claims],
            "closed": [p.to_json() for p in self.closed],
        }


def settle(
    records: Iterable[tuple[bytes, bytes]], spec: SettlementSpec, *, snapshot: SnapshotRef | None = None
) -> Settlement:
    """The settlement of ``records`` (key, value pairs) at the spec's frozen prices."""
    by_account: dict[str, list[AccountValue]] = {}
    closed: list[ClosedPosition] = []
    accounts = 0
    for key, value in records:
        valued = value_record(key, value, spec)
        if valued is None:
            continue
        accounts += 1
        closed.extend(valued.closed)
        by_account.setdefault(valued.account, []).append(valued)
    owed = sum(v.owed for values in by_account.values() for v in values)
    pot = owed if spec.pot is None else spec.pot
    claims: list[Claim] = []
    for account in sorted(by_account, key=str.lower):
        values = by_account[account]
        total = sum(v.owed for v in values)
        if total == 0:
            continue
        amount = _scaled(total, pot, owed)
        claims.append(Claim(account, amount, total, tuple(ClaimSource(v.key, v.owed) for v in values)))
    if owed > MAX_AMOUNT:
        raise OrderError("the accounts are owed more than 2**256 - 1 base units in total")
    return Settlement(
        snapshot, spec, tuple(claims), tuple(closed), accounts, owed, pot, sum(p.bad_debt for p in closed)
    )


def settle_snapshot(
    repo: Repository, snap: StateSnapshot, spec: SettlementSpec, *, trust: bytes | None = None
) -> Settlement:
    """The settlement of a stored record snapshot, which must be known-good (signed, its chain
    intact, its invariants checked and passed: what ``state rollback`` would accept)."""
    problem = state.known_good_problem(repo, snap, trust=trust)
    if problem is not None:
        raise StateError(
            f"record snapshot {snap.short_id} is not known-good, so it is not settled: {problem}"
        )
    records = ((r.key, r.value) for r in state.records_at(repo, snap))
    return settle(records, spec, snapshot=SnapshotRef.of(snap))


# --- reading a settlement file back ------------------------------------------------------------

MAX_SETTLEMENT_FILE = 512 << 20
_SETTLEMENT_FIELDS = frozenset(
    {
        "format",
        "version",
        "snapshot",
        "spec",
        "accounts",
        "owed",
        "pot",
        "paid",
        "remainder",
        "bad_debt",
        "claims",
        "closed",
    }
)
_CLOSED_FIELDS = frozenset(
    {
        "key",
        "account",
        "position",
        "market",
        "side",
        "size",
        "entry_price",
        "collateral",
        "price",
        "equity",
        "bad_debt",
    }
)


def read_settlement(data: bytes, *, what: str = "the settlement") -> Settlement:
    """A settlement file (``lifeboat-settlement`` version 1), every figure checked against the others:
    each claim's owed is its records' sum and its amount step 7's, and the totals add up."""
    body = parse_strict_versioned(
        data, fmt=FORMAT, version=VERSION, limit=MAX_SETTLEMENT_FILE, what=what,
        kind="a Lifeboat settlement", error=OrderError,
    )  # fmt: skip
    check_fields(body, _SETTLEMENT_FIELDS, what, OrderError)
    spec = spec_from_json(body["spec"], what=f"{what}'s spec")
    snapshot = None if body["snapshot"] is None else _snapshot_ref(body["snapshot"], f"{what}'s snapshot")
    claims = tuple(
        _claim(c, f"{what}'s claims[{i}]") for i, c in enumerate(_list(body["claims"], f"{what}'s claims"))
    )
    closed = tuple(
        _closed(c, f"{what}'s closed[{i}]") for i, c in enumerate(_list(body["closed"], f"{what}'s closed"))
    )
    accounts = body["accounts"]
    if isinstance(accounts, bool) or not isinstance(accounts, int) or accounts < 0:
        raise OrderError(f"{what}'s accounts must be a count")
    owed, pot = _amount(body["owed"], f"{what}'s owed"), _amount(body["pot"], f"{what}'s pot")
    bad_debt = _amount(body["bad_debt"], f"{what}'s bad_debt")
    result = Settlement(snapshot, spec, claims, closed, accounts, owed, pot, bad_debt)
    if sum(c.owed for c in claims) != owed or sum(p.bad_debt for p in closed) != bad_debt:
        raise OrderError(f"{what}: the claims or closed positions do not add up to its owed and bad_debt")
    if (spec.pot if spec.pot is not None else owed) != pot:
        raise OrderError(f"{what}: its pot is not its spec's pot")
    for claim in claims:
        if claim.amount != _scaled(claim.owed, pot, owed) or sum(r.owed for r in claim.records) != claim.owed:
            raise OrderError(
                f"{what}: the claim of {claim.account} does not follow from its records and the pot"
            )
    if (
        _amount(body["paid"], f"{what}'s paid") != result.paid
        or _amount(body["remainder"], f"{what}'s remainder") != result.remainder
    ):
        raise OrderError(f"{what}: paid and remainder are not the sum of its claims and what the pot leaves")
    return result


def _scaled(owed: int, pot: int, total: int) -> int:
    """Step 7: what is paid on ``owed`` of ``total`` from ``pot`` (in full, or pro rata rounded down)."""
    return owed if pot >= total else owed * pot // total


def _list(value: object, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise OrderError(f"{what} must be a list")
    return value


def _object(value: object, fields: frozenset[str], what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise OrderError(f"{what} must be an object")
    check_fields(value, fields, what, OrderError)
    return value


def _snapshot_ref(value: object, what: str) -> SnapshotRef:
    obj = _object(value, frozenset({"id", "name", "root", "sequence", "time", "signer"}), what)
    for name in ("id", "root"):
        if not isinstance(obj[name], str) or not re.fullmatch(r"[0-9a-f]{64}", obj[name]):
            raise OrderError(f"{what}'s {name} must be 64 lowercase hex digits")
    signer = _object(obj["signer"], frozenset({"scheme", "public_key"}), f"{what}'s signer")
    if isinstance(obj["sequence"], bool) or not isinstance(obj["sequence"], int):
        raise OrderError(f"{what}'s sequence must be an integer")
    return SnapshotRef(
        obj["id"], _text(obj["name"], f"{what}'s name"), obj["root"], obj["sequence"],
        _text(obj["time"], f"{what}'s time"),
        {"scheme": _text(signer["scheme"], f"{what}'s signer scheme"), "public_key": _text(signer["public_key"], f"{what}'s signer key")},
    )  # fmt: skip


def _claim(value: object, what: str) -> Claim:
    obj = _object(value, frozenset({"account", "amount", "owed", "records"}), what)
    records = tuple(
        ClaimSource(
            _text(r["key"], f"{what}'s records[{i}].key", empty=True),
            _amount(r["owed"], f"{what}'s records[{i}].owed"),
        )
        for i, r in enumerate(
            _object(item, frozenset({"key", "owed"}), f"{what}'s records[{j}]")
            for j, item in enumerate(_list(obj["records"], f"{what}'s records"))
        )
    )
    return Claim(
        checked_address(obj["account"], f"{what}'s account"),
        _amount(obj["amount"], f"{what}'s amount"),
        _amount(obj["owed"], f"{what}'s owed"),
        records,
    )


def _closed(value: object, what: str) -> ClosedPosition:
    obj = _object(value, _CLOSED_FIELDS, what)
    index = obj["position"]
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise OrderError(f"{what}'s position must be an index")
    equity = obj["equity"]
    if not isinstance(equity, str) or not re.fullmatch(r"-?[0-9]{1,78}", equity):
        raise OrderError(f"{what}'s equity must be an integer in decimal")
    return ClosedPosition(
        _text(obj["key"], f"{what}'s key", empty=True), checked_address(obj["account"], f"{what}'s account"), index,
        _text(obj["market"], f"{what}'s market"), _text(obj["side"], f"{what}'s side"),
        _amount(obj["size"], f"{what}'s size"), _amount(obj["entry_price"], f"{what}'s entry_price"),
        _amount(obj["collateral"], f"{what}'s collateral"), _price(obj["price"], f"{what}'s price"), int(equity),
        _amount(obj["bad_debt"], f"{what}'s bad_debt"),
    )  # fmt: skip


# --- tracing a claim to the signed root --------------------------------------------------------


def prove_claim(repo: Repository, snap: StateSnapshot, claim: Claim) -> list[bytes]:
    """For each record of ``claim``, a state proof bundle (``state prove``'s) against ``snap``."""
    if snap.signature is None:
        raise StateError(f"record snapshot {snap.short_id} is not signed yet; `lifeboat state attest` first")
    nodes = state.RepositoryNodes(repo)
    bundles = []
    for source in claim.records:
        proof = prolly.prove(nodes, snap.statement.root, source.key.encode("utf-8", "surrogateescape"))
        if not proof.present:
            raise StateError(f"record {source.key!r} is not in record snapshot {snap.short_id}")
        bundles.append(statements.encode_bundle(snap.statement, snap.signature, proof))
    return bundles


def verify_claim(
    settlement: Settlement, account: str, bundles: Sequence[bytes], *, trust: bytes | None = None
) -> Claim:
    """Check a claim against the snapshot's signed root: each bundle verifies against the
    settlement's root (and ``trust``), proves one of the claim's records, and that record's value
    is owed what the settlement says at its frozen prices; every record of the claim is proven,
    and the amount is the owed sum scaled to the pot. Returns the claim; OrderError if not."""
    if settlement.snapshot is None:
        raise OrderError("the settlement names no snapshot: its claims cannot be traced to a signed root")
    claim = settlement.claim_of(account)
    root = bytes.fromhex(settlement.snapshot.root)
    proven: dict[str, int] = {}
    for i, bundle in enumerate(bundles):
        try:
            verified = statements.verify_bundle(bundle, root=root, trust=trust)
        except LifeboatError as exc:
            raise OrderError(f"proof {i} of the claim of {claim.account}: {exc}") from None
        record = verified.proof.record
        if not verified.proof.present or record is None:
            raise OrderError(f"proof {i} of the claim of {claim.account} is an absence proof")
        valued = value_record(record.key, record.value, settlement.spec)
        if valued is None or valued.account != claim.account:
            raise OrderError(
                f"proof {i} proves record {record.key!r}, which is not an account record of {claim.account}"
            )
        proven[valued.key] = valued.owed
    expected = {r.key: r.owed for r in claim.records}
    if proven != expected:
        missing = sorted(set(expected) - set(proven))
        raise OrderError(
            f"the claim of {claim.account}: "
            + (
                f"no proof of record(s) {', '.join(map(repr, missing))}"
                if missing
                else "a proven record is owed another amount than the settlement says"
            )
        )
    owed = sum(proven.values())
    amount = _scaled(owed, settlement.pot, settlement.owed)
    if (owed, amount) != (claim.owed, claim.amount):
        raise OrderError(
            f"the claim of {claim.account} says {claim.amount} of {claim.owed}; the records give {amount} of {owed}"
        )
    return claim
