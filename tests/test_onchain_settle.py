"""Settlement of record snapshots: frozen prices, positions closed, pro-rata claims, records traced.

These tests settle records in memory; tests/test_cli_chain_claims.py settles stored, signed
snapshots and traces claims to their signed root.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest_tools import in_ci
from lifeboat.onchain.errors import OrderError
from lifeboat.onchain.merkle import CLAIM_ENCODING
from lifeboat.onchain.settle import (
    Market,
    SettlementSpec,
    load_spec,
    read_settlement,
    settle,
    spec_from_json,
    value_record,
)

#: ``shared/bench/gen_ledger.py`` beside the checkout (or beside a folder of worktrees).
GEN_LEDGER = next(
    (
        p / "shared" / "bench" / "gen_ledger.py"
        for p in Path(__file__).resolve().parents[1:4]
        if (p / "shared").is_dir()
    ),
    Path(__file__).resolve().parents[2] / "shared" / "bench" / "gen_ledger.py",
)
ETH = SettlementSpec(asset="ETH")


def record(document: dict[str, Any]) -> tuple[bytes, bytes]:
    return document["key"].encode(), json.dumps(document).encode()


def eth_account(address: str, wei: int, **extra: Any) -> tuple[bytes, bytes]:
    return record({"key": f"acct:{address}", "kind": "account", "balances": {"ETH": str(wei)}, **extra})


def address(i: int) -> str:
    return f"0x{i:040x}"


# --- the simple case: one asset, claims are balances --------------------------------------------


def test_each_account_is_owed_its_balance_when_the_pot_is_whole() -> None:
    records = [eth_account(address(i), 10**18 * i) for i in range(1, 6)]
    records.append(record({"key": "supply:ETH", "kind": "supply", "amount": str(15 * 10**18)}))
    result = settle(records, ETH)
    assert result.accounts == 5
    assert [(c.account.lower(), c.amount) for c in result.claims] == [
        (address(i), 10**18 * i) for i in range(1, 6)
    ]
    assert result.owed == result.pot == result.paid == 15 * 10**18
    assert result.remainder == 0 and result.bad_debt == 0 and not result.closed
    assert [r.key for r in result.claims[0].records] == [f"acct:{address(1)}"]
    tree = result.tree()
    assert tree.leaf_encoding == CLAIM_ENCODING
    for i, claim in enumerate(c for c in result.claims):
        assert tree.verify([claim.account, claim.amount], tree.proof_of([claim.account, claim.amount]))
        assert tree.values[i] == (claim.account, claim.amount)


def test_a_short_pot_scales_claims_pro_rata_rounding_down_and_reports_the_remainder() -> None:
    records = [eth_account(address(1), 1), eth_account(address(2), 1), eth_account(address(3), 1)]
    result = settle(records, dataclasses.replace(ETH, pot=2))
    assert [c.amount for c in result.claims] == [0, 0, 0]  # 1 * 2 // 3
    assert result.remainder == 2
    with pytest.raises(OrderError, match="pays nothing"):
        result.tree()
    records = [eth_account(address(1), 300), eth_account(address(2), 200), eth_account(address(3), 500)]
    result = settle(records, dataclasses.replace(ETH, pot=999))
    assert [c.amount for c in result.claims] == [299, 199, 499]
    assert [c.owed for c in result.claims] == [300, 200, 500]
    assert (result.paid, result.remainder) == (997, 2)
    assert len(result.tree()) == 3


def test_a_pot_above_what_is_owed_pays_in_full_and_reports_the_surplus() -> None:
    result = settle([eth_account(address(1), 5)], dataclasses.replace(ETH, pot=8))
    assert (result.claims[0].amount, result.paid, result.remainder) == (5, 5, 3)


@settings(max_examples=80, deadline=None)
@given(
    balances=st.lists(st.integers(0, 10**30), min_size=1, max_size=30),
    share=st.fractions(min_value=0, max_value=1),
)
def test_pro_rata_claims_never_exceed_the_pot_and_lose_less_than_one_unit_each(
    balances: list[int], share: Fraction
) -> None:
    owed = sum(balances)
    pot = owed * share.numerator // share.denominator
    records = [eth_account(address(i + 1), b) for i, b in enumerate(balances)]
    result = settle(records, dataclasses.replace(ETH, pot=pot))
    assert result.owed == owed
    assert result.paid + result.remainder == pot
    assert 0 <= result.remainder <= max(len(result.claims), 0) or pot == owed
    for claim in result.claims:
        exact = Fraction(claim.owed * pot, owed)
        assert exact - 1 < claim.amount <= exact
    assert len(result.claims) == sum(1 for b in balances if b)


def test_addresses_come_from_the_key_or_a_field_and_bad_ones_name_the_record() -> None:
    with pytest.raises(OrderError, match=r"record 'acct:0x12'.*not a 20-byte hex address"):
        settle([record({"key": "acct:0x12", "balances": {"ETH": "1"}})], ETH)
    with pytest.raises(OrderError, match=r"record 'acct:xyz'.*its field 'owner'.*not a 20-byte"):
        settle(
            [record({"key": "acct:xyz", "owner": 5, "balances": {"ETH": "1"}})],
            dataclasses.replace(ETH, address_field="owner"),
        )
    with pytest.raises(OrderError, match="EIP-55"):
        settle([eth_account("0x52908400098527886E0F7030069857D2E4169Ee7", 1)], ETH)
    spec = dataclasses.replace(ETH, address_field="owner", key_prefix="user:")
    result = settle(
        [
            record({"key": "user:a", "owner": address(7), "balances": {"ETH": "1"}}),
            record(
                {"key": "user:b", "owner": address(7).upper().replace("0X", "0x"), "balances": {"ETH": "2"}}
            ),
            record({"key": "acct:ignored", "balances": {"ETH": "5"}}),
        ],
        spec,
    )
    # Two records of one address make one claim that names both.
    [claim] = result.claims
    assert (claim.amount, [r.key for r in claim.records], [r.owed for r in claim.records]) == (
        3,
        ["user:a", "user:b"],
        [1, 2],
    )


def test_a_csv_column_named_by_the_whole_path_is_read() -> None:
    spec = dataclasses.replace(ETH, balances="balances.ETH")
    result = settle([record({"key": f"acct:{address(1)}", "balances.ETH": "12"})], spec)
    assert [c.amount for c in result.claims] == [12]


def test_one_amount_field_instead_of_a_map_of_assets() -> None:
    spec = dataclasses.replace(ETH, balances="balance")
    result = settle(
        [
            record({"key": f"acct:{address(1)}", "balance": "12"}),
            record({"key": f"acct:{address(2)}", "balance": 3}),
        ],
        spec,
    )
    assert [c.amount for c in result.claims] == [12, 3]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"balances": {"ETH": "-1"}}, "balances.ETH must be a non-negative integer"),
        ({"balances": {"ETH": 1.5}}, "balances.ETH must be a non-negative integer"),
        ({"balances": {"ETH": True}}, "not a boolean"),
        ({"balances": {"ETH": str(2**256)}}, "between 0 and 2**256 - 1"),
        ({"balances": {"USDC": "5"}}, "no frozen price for asset 'USDC'"),
        ({"positions": "x"}, "positions must be a list"),
        ({"positions": [{"market": "ETH-PERP", "side": "up", "size": "1", "entry_price": "1", "collateral": "1"}]}, "side must be 'long' or 'short'"),
        ({"positions": [{"market": "XYZ", "side": "long", "size": "1", "entry_price": "1", "collateral": "1"}]}, "no frozen price for market 'XYZ'"),
        ({"positions": [{"market": "ETH-PERP", "side": "long", "entry_price": "1", "collateral": "1"}]}, "positions[0].size"),
    ],
)  # fmt: skip
def test_unusable_records_are_refused_naming_the_record_and_field(
    document: dict[str, Any], message: str
) -> None:
    spec = dataclasses.replace(ETH, markets={"ETH-PERP": Market(Fraction(2))})
    key = f"acct:{address(9)}"
    with pytest.raises(OrderError, match=rf"record '{key}'.*") as caught:
        settle([record({"key": key, **document})], spec)
    assert message in str(caught.value)


def test_a_value_that_is_not_a_json_object_is_refused() -> None:
    with pytest.raises(OrderError, match="not a JSON object"):
        value_record(b"acct:" + address(1).encode(), b"[1]", ETH)
    with pytest.raises(OrderError, match="not JSON"):
        value_record(b"acct:" + address(1).encode(), b"{", ETH)
    assert value_record(b"supply:ETH", b"not even json", ETH) is None


# --- prices and positions ----------------------------------------------------------------------


def test_balances_are_valued_at_frozen_prices_each_rounded_down() -> None:
    spec = SettlementSpec(asset="USDC", prices={"ETH": Fraction("2.5"), "DAI": Fraction(1, 3)})
    result = settle(
        [
            record(
                {"key": f"acct:{address(1)}", "balances": {"USDC": "10", "ETH": "3", "DAI": "5", "WBTC": "0"}}
            )
        ],
        spec,
    )
    assert result.claims[0].owed == 10 + 7 + 1  # 3 * 2.5 = 7.5 -> 7; 5 / 3 -> 1; no price needed for 0 WBTC


def test_positions_settle_at_the_mark_price_and_those_under_water_are_closed() -> None:
    # A mark of 150 (entry prices and marks in units of 1/100: price_scale 100).
    spec = SettlementSpec(asset="USDC", markets={"ETH-PERP": Market(Fraction(150), price_scale=100)})
    positions = [
        {"market": "ETH-PERP", "side": "long", "size": "10", "entry_price": "100", "collateral": "50"},  # +5 -> 55
        {"market": "ETH-PERP", "side": "short", "size": "10", "entry_price": "100", "collateral": "3"},  # -5 -> -2: closed
        {"market": "ETH-PERP", "side": "short", "size": "3", "entry_price": "151", "collateral": "0"},  # 3*1/100 -> 0.03 -> 0
        {"market": "ETH-PERP", "side": "long", "size": "3", "entry_price": "151", "collateral": "1"},  # -0.03 -> -1 -> 0
    ]  # fmt: skip
    key = f"acct:{address(4)}"
    result = settle([record({"key": key, "balances": {"USDC": "7"}, "positions": positions})], spec)
    [claim] = result.claims
    assert claim.owed == 7 + 55 + 0 + 0
    [closed] = result.closed
    assert (closed.key, closed.index, closed.equity, closed.bad_debt, closed.side) == (key, 1, -2, 2, "short")
    assert result.bad_debt == 2
    document = result.to_json()
    assert document["closed"][0]["position"] == 1 and document["closed"][0]["price"] == "150"
    assert document["bad_debt"] == "2"


def test_a_margin_price_values_collateral_in_the_settlement_asset() -> None:
    spec = SettlementSpec(asset="ETH", markets={"X": Market(Fraction(10), margin_price=Fraction("0.5"))})
    positions = [
        {"market": "X", "side": "long", "size": "1", "entry_price": "4", "collateral": "3"}
    ]  # 3 + 6 = 9 -> 4.5
    assert settle([record({"key": f"acct:{address(1)}", "positions": positions})], spec).claims[0].owed == 4


def test_a_generated_ledger_settles_every_account(tmp_path: Path) -> None:
    if not GEN_LEDGER.is_file():
        reason = f"gen_ledger.py not found at {GEN_LEDGER}"
        if in_ci():
            pytest.fail(f"{reason}; CI=true, so a missing generator is an error", pytrace=False)
        pytest.skip(reason)
    out = tmp_path / "ledger.jsonl"
    subprocess.run([sys.executable, str(GEN_LEDGER), str(out), "--accounts", "150"], check=True)
    records = [(json.loads(line)["key"].encode(), line) for line in out.read_bytes().splitlines()]
    assets = ["USDT", "DAI", "ETH", "WBTC", "SOL", "ARB", "OP", "LINK", "UNI"]
    markets = ["ETH-PERP", "BTC-PERP", "SOL-PERP", "ARB-PERP", "LINK-PERP", "OP-PERP"]
    spec = spec_from_json(
        {
            "asset": "USDC",
            "prices": dict.fromkeys(assets, "1"),
            "markets": {m: {"price": "35000000000", "price_scale": "100000000"} for m in markets},
        }
    )
    result = settle(records, spec)
    accounts = [json.loads(v) for k, v in records if k.startswith(b"acct:")]
    assert result.accounts == len(accounts) == 150
    # With every asset at 1, what balances are owed is the sum of all balances.
    balances = sum(int(a) for doc in accounts for a in doc["balances"].values())
    positions = result.owed - balances
    assert positions >= 0
    assert len(result.closed) > 0 and result.bad_debt > 0
    assert {p.key for p in result.closed} <= {doc["key"] for doc in accounts}
    half = settle(records, dataclasses.replace(spec, pot=result.owed // 2))
    assert half.paid <= half.pot and half.remainder < len(half.claims)


# --- the spec ------------------------------------------------------------------------------------


def test_a_spec_file_in_toml(tmp_path: Path) -> None:
    path = tmp_path / "spec.toml"
    path.write_text(
        'asset = "USDC"\npot = "1000"\n[prices]\nETH = "3000.5"\nDAI = 1\n'
        '[markets.ETH-PERP]\nprice = "300000000000"\nprice_scale = 100000000\n'
    )
    spec = load_spec(path)
    assert spec.prices == {"ETH": Fraction("3000.5"), "DAI": Fraction(1)}
    assert spec.markets["ETH-PERP"] == Market(Fraction(300000000000), 100000000, Fraction(1))
    assert spec.pot == 1000
    assert spec_from_json(spec.to_json()) == spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('asset = "USDC"\n[prices]\nETH = 3000.5\n', "a float is not exact"),
        ('asset = "USDC"\ncolour = "red"\n', "unknown setting(s) 'colour'"),
        ('pot = "1"\n', "asset must be"),
        ('asset = "USDC"\npot = "-1"\n', "pot must be a non-negative integer"),
        ('asset = "USDC"\n[markets.X]\nprice_scale = 1\n', "markets.X: the frozen price is missing"),
        ('asset = "USDC"\n[markets.X]\nprice = "1"\nprice_scale = 0\n', "price_scale must be at least 1"),
        ('asset = "USDC"\n[prices]\nETH = "1e5"\n', "non-negative decimal number"),
        ("asset = [", "not valid TOML"),
    ],
)
def test_bad_spec_files_are_refused_with_the_setting_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    with pytest.raises(OrderError) as caught:
        load_spec(path)
    assert message in str(caught.value)


def test_prices_without_a_finite_decimal_are_written_as_fractions() -> None:
    spec = SettlementSpec(asset="A", prices={"B": Fraction(1, 3), "C": Fraction("0.125")})
    assert spec.to_json()["prices"] == {"B": "1/3", "C": "0.125"}
    assert spec_from_json({"asset": "A", "prices": {"C": "0.125"}}).prices["C"] == Fraction(1, 8)


# --- the settlement file -------------------------------------------------------------------------


def _positions_settlement() -> Any:
    spec = SettlementSpec(
        asset="USDC", prices={"ETH": Fraction(1, 3)}, markets={"P": Market(Fraction(150), 100)}
    )
    positions = [
        {"market": "P", "side": "long", "size": "10", "entry_price": "100", "collateral": "50"},
        {"market": "P", "side": "short", "size": "10", "entry_price": "100", "collateral": "3"},
    ]
    records = [
        record(
            {"key": f"acct:{address(i)}", "balances": {"USDC": str(i), "ETH": "10"}, "positions": positions}
        )
        for i in range(1, 5)
    ]
    return settle(records, dataclasses.replace(spec, pot=100))


def test_a_settlement_file_reads_back_equal() -> None:
    result = _positions_settlement()
    assert result.pot < result.owed and result.closed
    data = json.dumps(result.to_json()).encode()
    assert read_settlement(data) == result


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["claims"][0].update(amount=str(int(d["claims"][0]["amount"]) + 1)), "does not follow from its records"),
        (lambda d: d["claims"][0]["records"][0].update(owed="1"), "does not follow from its records"),
        (lambda d: d.update(paid="1"), "paid and remainder"),
        (lambda d: d.update(pot="101"), "its pot is not its spec's pot"),
        (lambda d: d["closed"][0].update(bad_debt="9"), "do not add up"),
        (lambda d: d.update(extra=1), "unknown field 'extra'"),
        (lambda d: d.pop("claims"), "lacks 'claims'"),
        (lambda d: d["claims"][0].update(account="0x12"), "not an address"),
        (lambda d: d["spec"].update(asset=""), "asset must be"),
        (lambda d: d.update(version=2), "newer than this Lifeboat reads"),
    ],
)  # fmt: skip
def test_a_settlement_file_whose_figures_disagree_is_refused(change: Any, message: str) -> None:
    document = _positions_settlement().to_json()
    change(document)
    with pytest.raises(OrderError) as caught:
        read_settlement(json.dumps(document).encode())
    assert message in str(caught.value)
