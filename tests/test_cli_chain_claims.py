"""``lifeboat chain settle|claims|proof`` on signed record snapshots, and the claims paid on chain.

The repository fixtures and helpers are those of tests/test_cli_state.py: a 3-of-5 repository of
local stores under the cheap test KDF.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import boa
import pytest

from conftest import CliRunner
from lifeboat.cli import chain_claims_cmds
from lifeboat.onchain.contracts import deployer
from lifeboat.onchain.errors import OrderError
from lifeboat.onchain.merkle import StandardMerkleTree
from lifeboat.onchain.settle import SettlementSpec, prove_claim, settle_snapshot, verify_claim
from lifeboat.state import snapshots as state
from lifeboat.store.backends import open_backend
from lifeboat.store.repository import Repository
from test_cli_state import PASSPHRASE, env, ok, one_line_error, repo
from test_onchain_merkle import run_node

__all__ = ["env", "repo"]  # fixtures, used by name

ACCOUNTS = 25
#: The ledger invariants of the examples (conservation, solvency, no negative balance, sane accounts).
INVARIANTS = Path(__file__).resolve().parents[1] / "examples" / "ledger-invariants.toml"


def eth_ledger(path: Path, *, seed: int = 5, count: int = ACCOUNTS, drain: bool = False) -> dict[str, int]:
    """A vault's ledger: accounts holding wei, and the supply record; the balances by address."""
    rng = random.Random(seed)
    balances = {f"0x{rng.getrandbits(160):040x}": rng.randint(1, 10**20) for _ in range(count)}
    lines: list[dict[str, Any]] = [
        {"key": f"acct:{a}", "kind": "account", "nonce": 0, "balances": {"ETH": str(wei)}, "positions": []}
        for a, wei in balances.items()
    ]
    if drain:  # a balance inflated without its supply: conservation breaks
        lines[0]["balances"] = {"ETH": str(balances[lines[0]["key"][5:]] + 10**24)}
    lines.append(
        {"key": "supply:ETH", "kind": "supply", "asset": "ETH", "amount": str(sum(balances.values()))}
    )
    lines.sort(key=lambda d: str(d["key"]))
    path.write_text("".join(json.dumps(d) + "\n" for d in lines))
    return balances


def snapshot(cli: CliRunner, ledger: Path, *extra: Any) -> dict[str, Any]:
    result = cli(
        "--json", "state", "snapshot", ledger, "--key", "key", "--no-progress", "--name", "vault", *extra
    )
    assert result.code in (0, 3), result.out + result.err
    return dict(result.json())


@pytest.fixture
def vault(cli: CliRunner, repo: dict[str, Path]) -> dict[str, Any]:
    """A good snapshot of a vault ledger (invariants checked and passed), then an exploited one."""
    root = repo["root"]
    invariants = INVARIANTS
    balances = eth_ledger(root / "vault.jsonl")
    good = snapshot(cli, root / "vault.jsonl", "--invariants", invariants)
    assert good["invariants_passed"] is True
    eth_ledger(root / "vault.jsonl", drain=True)
    bad = snapshot(cli, root / "vault.jsonl", "--invariants", invariants)
    assert bad["invariants_passed"] is False
    return {
        "root": root,
        "balances": balances,
        "good": good["id"],
        "bad": bad["id"],
        "invariants": invariants,
    }


def open_repo(env: dict[str, Path]) -> Repository:
    return Repository.open([open_backend(str(env[f"s{i}"])) for i in range(5)], PASSPHRASE)


def test_settle_the_known_good_snapshot_and_pay_every_claim_on_chain(
    cli: CliRunner, vault: dict[str, Any]
) -> None:
    root, balances = vault["root"], vault["balances"]
    out = root / "settlement.json"
    summary = ok(cli("--json", "chain", "settle", "known-good", "--asset", "ETH", "-o", out)).json()
    assert summary["snapshot"] == vault["good"]  # the exploited snapshot is passed over
    total = sum(balances.values())
    assert (summary["accounts"], summary["claims"], summary["owed"], summary["paid"], summary["remainder"]) == (
        ACCOUNTS, ACCOUNTS, str(total), str(total), "0",
    )  # fmt: skip
    document = json.loads(out.read_text())
    assert (document["format"], document["version"]) == ("lifeboat-settlement", 1)
    assert document["snapshot"]["id"] == vault["good"]
    assert {c["account"].lower(): int(c["amount"]) for c in document["claims"]} == balances
    assert all(
        c["records"] == [{"key": f"acct:{c['account'].lower()}", "owed": c["amount"]}]
        for c in document["claims"]
    )

    tree_file = root / "tree.json"
    made = ok(cli("--json", "chain", "claims", vault["good"][:10], "--asset", "ETH", "-o", tree_file)).json()
    tree = StandardMerkleTree.load(json.loads(tree_file.read_text()))
    assert made["tree_root"] == "0x" + tree.root.hex() and made["leaves"] == ACCOUNTS

    # The claims, paid by a fresh MerkleClaim funded with the total: each account its balance.
    contract = deployer("MerkleClaim").deploy(tree.root, total)
    boa.env.set_balance(boa.env.eoa, total)
    contract.fund(value=total)
    for address, wei in balances.items():
        proof = json.loads(ok(cli("chain", "proof", tree_file, address)).out)
        assert proof["amount"] == str(wei) and proof["root"] == "0x" + tree.root.hex()
        contract.claim(proof["account"], int(proof["amount"]), [bytes.fromhex(p[2:]) for p in proof["proof"]])
        assert boa.env.get_balance(address) == wei
    assert boa.env.get_balance(contract.address) == 0


def test_a_short_pot_scales_the_claims_and_the_tree(cli: CliRunner, vault: dict[str, Any]) -> None:
    root, balances = vault["root"], vault["balances"]
    total = sum(balances.values())
    pot = total * 2 // 3
    tree_file = root / "tree.json"
    out = root / "settlement.json"
    result = ok(
        cli(
            "chain",
            "claims",
            "known-good",
            "--asset",
            "ETH",
            "--pot",
            pot,
            "-o",
            tree_file,
            "--settlement",
            out,
        )
    )
    assert "pro rata, rounded down" in result.out
    document = json.loads(out.read_text())
    paid, remainder = int(document["paid"]), int(document["remainder"])
    assert paid + remainder == pot and 0 <= remainder < ACCOUNTS
    tree = StandardMerkleTree.load(json.loads(tree_file.read_text()))
    assert sorted((a.lower(), n) for a, n in tree.values) == sorted(
        (a, w * pot // total) for a, w in balances.items()
    )


def test_each_claim_traces_to_its_record_under_the_signed_root(
    cli: CliRunner, vault: dict[str, Any], env: dict[str, Path]
) -> None:
    with open_repo(env) as repository:
        snap = state.find_state(repository, vault["good"][:12])
        result = settle_snapshot(repository, snap, SettlementSpec(asset="ETH"))
        claim = result.claims[3]
        bundles = prove_claim(repository, snap, claim)
        assert verify_claim(result, claim.account, bundles) == claim
        assert verify_claim(result, claim.account, bundles, trust=snap.statement.signer.public_key) == claim
        # Another account's proof does not carry this claim; a claim without its proof fails.
        other = prove_claim(repository, snap, result.claims[4])
        with pytest.raises(OrderError, match="not an account record of"):
            verify_claim(result, claim.account, other)
        with pytest.raises(OrderError, match="no proof of record"):
            verify_claim(result, claim.account, [])
        with pytest.raises(OrderError, match="not by the trusted key"):
            verify_claim(result, claim.account, bundles, trust=b"\x01" * 32)
        # A settlement that says more than the record gives is caught by its proof.
        inflated = type(result)(
            **{
                **result.__dict__,
                "claims": (type(claim)(claim.account, claim.amount + 1, claim.owed + 1, claim.records),),
            }
        )
        with pytest.raises(OrderError, match="the records give"):
            verify_claim(inflated, claim.account, bundles)
        bad = state.find_state(repository, vault["bad"][:12])
        with pytest.raises(Exception, match="not known-good.*invariants failed: conservation"):
            settle_snapshot(repository, bad, SettlementSpec(asset="ETH"))


def test_snapshots_that_are_not_known_good_are_refused(cli: CliRunner, vault: dict[str, Any]) -> None:
    root = vault["root"]
    out = root / "s.json"
    one_line_error(
        cli("chain", "settle", vault["bad"][:10], "--asset", "ETH", "-o", out),
        f"record snapshot {vault['bad'][:8]} is not known-good", "invariants failed: conservation",
    )  # fmt: skip
    one_line_error(cli("chain", "settle", "latest", "--asset", "ETH", "-o", out), "is not known-good")
    one_line_error(
        cli("chain", "settle", "abcdef12", "--asset", "ETH", "-o", out), "no record snapshot with id"
    )
    one_line_error(cli("chain", "settle", "zz", "--asset", "ETH", "-o", out), "at least 4 hex digits")
    one_line_error(
        cli("chain", "settle", vault["good"][:10], "--asset", "ETH", "-o", out, "--trust", "11" * 32),
        "not by the trusted key",
    )
    # A snapshot whose invariants were never checked is not known-good either.
    eth_ledger(root / "other.jsonl", seed=9)
    unchecked = snapshot(cli, root / "other.jsonl", "--name", "other")
    one_line_error(
        cli("chain", "settle", unchecked["id"][:10], "--asset", "ETH", "-o", out),
        "its invariants were not checked",
    )
    assert not out.exists()


def test_a_snapshot_awaiting_its_frost_signature_is_refused(cli: CliRunner, repo: dict[str, Path]) -> None:
    root = repo["root"]
    keys = root / "keys"
    ok(cli("frost", "dealer", "-t", 2, "-n", 3, "-d", keys))
    eth_ledger(root / "vault.jsonl")
    made = snapshot(
        cli,
        root / "vault.jsonl",
        "--invariants",
        INVARIANTS,
        "--frost-group",
        keys / "public-key-package.json",
    )
    assert made["signed"] is False
    one_line_error(
        cli("chain", "claims", "latest", "--asset", "ETH", "-o", root / "t.json"), "not signed yet"
    )


def test_bad_options_and_specs_are_named(cli: CliRunner, vault: dict[str, Any]) -> None:
    root = vault["root"]
    out = root / "s.json"
    good = vault["good"][:10]
    one_line_error(cli("chain", "settle", good, "-o", out), "--asset", code=2)
    one_line_error(
        cli("chain", "settle", good, "--asset", "ETH", "--price", "USDC", "-o", out),
        "--price takes NAME=PRICE",
        code=2,
    )
    one_line_error(
        cli("chain", "settle", good, "--asset", "ETH", "--price", "USDC=abc", "-o", out),
        "prices.USDC",
        code=2,
    )
    one_line_error(
        cli("chain", "settle", good, "--asset", "ETH", "--pot", "-5", "-o", out),
        "pot must be",
        code=2,
    )
    one_line_error(
        cli("chain", "settle", good, "--asset", "USDC", "-o", out),
        "no frozen price for asset 'ETH'",
        "acct:0x",
    )
    spec = root / "spec.toml"
    spec.write_text('asset = "ETH"\nprices = 5\n')
    one_line_error(
        cli("chain", "settle", good, "--spec", spec, "-o", out),
        f"settlement spec {spec}",
        "prices must be",
    )
    spec.write_text('asset = "USDC"\n[prices]\nETH = "2"\n')
    summary = ok(cli("--json", "chain", "settle", good, "--spec", spec, "-o", out)).json()
    assert int(summary["owed"]) == 2 * sum(vault["balances"].values())
    # An option given beside the spec overrides it.
    summary = ok(cli("--json", "chain", "settle", good, "--spec", spec, "--price", "ETH=3", "-o", out)).json()
    assert int(summary["owed"]) == 3 * sum(vault["balances"].values())
    # Records whose address is not an address are named.
    one_line_error(
        cli("chain", "settle", good, "--asset", "ETH", "--key-prefix", "supply:", "-o", out),
        "record 'supply:ETH'", "not a 20-byte hex address",
    )  # fmt: skip


def test_proof_refuses_malformed_trees_and_unknown_accounts(
    cli: CliRunner, vault: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = vault["root"]
    tree_file = root / "tree.json"
    ok(cli("chain", "claims", "known-good", "--asset", "ETH", "-o", tree_file))
    dump = json.loads(tree_file.read_text())
    some = next(iter(vault["balances"]))
    one_line_error(cli("chain", "proof", tree_file, "0x" + "ab" * 20), "has no claim in")
    one_line_error(cli("chain", "proof", tree_file, "0x1234"), "not an address")
    one_line_error(cli("chain", "proof", root / "missing.json", some), "missing.json")
    bad = root / "bad.json"
    bad.write_text("{not json")
    one_line_error(cli("chain", "proof", bad, some), "is not JSON")
    tampered = json.loads(json.dumps(dump))
    tampered["values"][0]["value"][1] = str(int(tampered["values"][0]["value"][1]) + 1)
    bad.write_text(json.dumps(tampered))
    one_line_error(cli("chain", "proof", bad, some), "does not hash to its leaf")
    other = StandardMerkleTree.of([["0x" + "11" * 20, "5", True]], ["address", "uint256", "bool"]).dump()
    bad.write_text(json.dumps(other))
    one_line_error(cli("chain", "proof", bad, some), "not a claim tree")
    monkeypatch.setattr(chain_claims_cmds, "MAX_TREE_FILE", 1000)
    one_line_error(cli("chain", "proof", tree_file, some), "larger than 1000 bytes")


def test_verify_claim_traces_a_claim_of_the_settlement_file_to_the_signed_root(
    cli: CliRunner, vault: dict[str, Any]
) -> None:
    root = vault["root"]
    out = root / "settlement.json"
    ok(cli("chain", "settle", vault["good"][:10], "--asset", "ETH", "-o", out))
    document = json.loads(out.read_text())
    claim, other = document["claims"][0], document["claims"][1]
    bundle, other_bundle = root / "b.json", root / "other.json"
    ok(cli("state", "prove", claim["records"][0]["key"], "--snapshot", vault["good"][:10], "-o", bundle))
    ok(
        cli(
            "state", "prove", other["records"][0]["key"], "--snapshot", vault["good"][:10], "-o", other_bundle
        )
    )
    signer = document["snapshot"]["signer"]["public_key"]
    shown = ok(
        cli("--json", "chain", "verify-claim", out, claim["account"], bundle, "--trust", signer)
    ).json()
    assert (shown["valid"], shown["amount"], shown["root"]) == (
        True,
        claim["amount"],
        document["snapshot"]["root"],
    )
    assert "valid:" in ok(cli("chain", "verify-claim", out, claim["account"].lower(), bundle)).out
    one_line_error(
        cli("chain", "verify-claim", out, claim["account"], other_bundle), "not an account record of"
    )
    one_line_error(
        cli("chain", "verify-claim", out, claim["account"], bundle, "--trust", "22" * 32), "trusted key"
    )
    one_line_error(cli("chain", "verify-claim", out, "0x" + "ab" * 20, bundle), "no claim for")
    # A settlement edited after the fact does not read back.
    document["claims"][0]["amount"] = str(int(claim["amount"]) + 1)
    out.write_text(json.dumps(document))
    one_line_error(
        cli("chain", "verify-claim", out, claim["account"], bundle), "does not follow from its records"
    )
    out.write_text('{"format": "lifeboat-settlement", "version": 2}')
    one_line_error(
        cli("chain", "verify-claim", out, claim["account"], bundle), "newer than this Lifeboat reads"
    )


@pytest.mark.interop
def test_the_npm_package_loads_the_tree_file_and_checks_chain_proof_output(
    cli: CliRunner, vault: dict[str, Any]
) -> None:
    tree_file = vault["root"] / "tree.json"
    ok(cli("chain", "claims", "known-good", "--asset", "ETH", "-o", tree_file))
    dump = json.loads(tree_file.read_text())
    proofs = [json.loads(ok(cli("chain", "proof", tree_file, a)).out) for a in vault["balances"]]
    answer = run_node(
        {
            "op": "load",
            "dump": dump,
            "proofs": [{"value": [p["account"], p["amount"]], "proof": p["proof"]} for p in proofs],
        }
    )
    assert answer["root"] == proofs[0]["root"] == dump["tree"][0]
    assert answer["verified"] == [True] * len(proofs)
