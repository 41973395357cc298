"""MerkleClaim on titanoboa's in-process chain: every leaf pays its amount once, and nothing else pays.

The gas figure of a claim is measured here (``test_gas_per_claim``) and written in
docs/onchain-claims.md.
"""

from __future__ import annotations

import random
from typing import Any

import boa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifeboat.onchain.contracts import deployer
from lifeboat.onchain.merkle import CLAIM_ENCODING, StandardMerkleTree

pytestmark = pytest.mark.slow

#: Execution gas of one claim with a proof of 10 hashes (a tree of 1,024 claims), measured
#: below; the bound leaves room for compiler changes, the docs give the figure.
CLAIM_GAS_BOUND = 60_000


def make_claims(count: int, seed: int = 7) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    return [(f"0x{rng.getrandbits(160):040x}", rng.randint(1, 10**21)) for _ in range(count)]


def claim_tree(claims: list[tuple[str, int]]) -> StandardMerkleTree:
    return StandardMerkleTree.of([list(c) for c in claims], CLAIM_ENCODING)


def deploy(tree: StandardMerkleTree, total: int, funded: int | None = None) -> Any:
    contract = deployer("MerkleClaim").deploy(tree.root, total)
    if funded:
        boa.env.set_balance(boa.env.eoa, boa.env.get_balance(boa.env.eoa) + funded)
        contract.fund(value=funded)
    return contract


def test_every_account_claims_exactly_its_amount_and_the_pot_ends_at_zero() -> None:
    claims = make_claims(37)
    tree = claim_tree(claims)
    total = sum(n for _, n in claims)
    contract = deploy(tree, total, funded=total)
    assert contract.root() == tree.root and contract.total() == total and contract.outstanding() == total
    relayer = boa.env.generate_address("relayer")
    for i, (account, amount) in enumerate(claims):
        before = boa.env.get_balance(account)
        assert contract.verify(account, amount, tree.proof(i))
        contract.claim(account, amount, tree.proof(i), sender=relayer)  # anyone may send it
        [log] = contract.get_logs()
        assert (type(log).__name__, str(log.account).lower(), log.amount) == ("Claimed", account, amount)
        assert boa.env.get_balance(account) - before == amount
        assert contract.is_claimed(account, amount)
    assert boa.env.get_balance(contract.address) == 0
    assert contract.outstanding() == 0


def test_a_tree_of_one_claims_with_an_empty_proof() -> None:
    claims = make_claims(1)
    tree = claim_tree(claims)
    contract = deploy(tree, claims[0][1], funded=claims[0][1])
    contract.claim(claims[0][0], claims[0][1], [])
    assert boa.env.get_balance(contract.address) == 0


def test_double_claims_wrong_amounts_and_foreign_proofs_revert_with_reasons() -> None:
    claims = make_claims(8)
    tree = claim_tree(claims)
    total = sum(n for _, n in claims)
    contract = deploy(tree, total, funded=total)
    account, amount = claims[0]
    proof = tree.proof(0)
    with boa.reverts("invalid proof"):
        contract.claim(account, amount + 1, proof)
    with boa.reverts("invalid proof"):
        contract.claim(account, amount - 1, proof)
    with boa.reverts("invalid proof"):
        contract.claim(claims[1][0], amount, proof)  # another account, this account's proof
    with boa.reverts("invalid proof"):
        contract.claim(account, amount, tree.proof(1))  # this account, another's proof
    foreign = claim_tree(make_claims(8, seed=99))
    stranger, stranger_amount = make_claims(8, seed=99)[0]
    with boa.reverts("invalid proof"):
        contract.claim(stranger, stranger_amount, foreign.proof(0))  # a leaf of another tree
    with boa.reverts("invalid proof"):
        contract.claim(account, amount, proof[:-1])
    with boa.reverts("invalid proof"):
        contract.claim(account, amount, [*proof, proof[-1]])
    with boa.reverts("zero account"):
        contract.claim("0x" + "00" * 20, amount, proof)
    contract.claim(account, amount, proof)
    with boa.reverts("already claimed"):
        contract.claim(account, amount, proof)
    assert boa.env.get_balance(contract.address) == total - amount


def test_funding_is_bounded_by_what_is_still_to_be_paid() -> None:
    claims = make_claims(4)
    tree = claim_tree(claims)
    total = sum(n for _, n in claims)
    boa.env.set_balance(boa.env.eoa, 10 * total)
    contract = deploy(tree, total)
    with boa.reverts("not funded"):
        contract.claim(claims[0][0], claims[0][1], tree.proof(0))
    with boa.reverts("overfunded"):
        contract.fund(value=total + 1)
    with boa.reverts("no value"):
        contract.fund(value=0)
    # The plain transfer (the default function) funds too.
    boa.env.raw_call(contract.address, value=claims[0][1])
    contract.claim(claims[0][0], claims[0][1], tree.proof(0))
    contract.fund(value=total - claims[0][1])
    with boa.reverts("overfunded"):
        contract.fund(value=1)
    for i in range(1, 4):
        contract.claim(claims[i][0], claims[i][1], tree.proof(i))
    assert boa.env.get_balance(contract.address) == 0


def test_a_short_pot_pays_claims_in_order_until_it_runs_out() -> None:
    claims = make_claims(3)
    tree = claim_tree(claims)
    total = sum(n for _, n in claims)
    contract = deploy(tree, total, funded=claims[0][1] + claims[1][1])
    contract.claim(claims[0][0], claims[0][1], tree.proof(0))
    contract.claim(claims[1][0], claims[1][1], tree.proof(1))
    with boa.reverts("not funded"):
        contract.claim(claims[2][0], claims[2][1], tree.proof(2))


def test_a_tree_whose_claims_exceed_the_deployed_total_stops_at_the_total() -> None:
    claims = make_claims(2)
    tree = claim_tree(claims)
    contract = deploy(tree, claims[0][1], funded=claims[0][1])
    boa.env.set_balance(contract.address, claims[0][1] + claims[1][1])  # forced in, not funded
    contract.claim(claims[0][0], claims[0][1], tree.proof(0))
    with boa.reverts("claims exceed the total"):
        contract.claim(claims[1][0], claims[1][1], tree.proof(1))


def test_deployment_refuses_an_empty_root_or_a_zero_total() -> None:
    with boa.reverts("empty root"):
        deployer("MerkleClaim").deploy(b"\x00" * 32, 1)
    with boa.reverts("zero total"):
        deployer("MerkleClaim").deploy(b"\x01" * 32, 0)


REFUSER = """
# pragma version ~=0.4.3
@external
def nothing():
    pass
"""

REENTER = """
# pragma version ~=0.4.3
interface Claim:
    def claim(account: address, amount: uint256, proof: DynArray[bytes32, 32]): nonpayable

target: public(address)
proof: DynArray[bytes32, 32]

@external
def arm(target: address, proof: DynArray[bytes32, 32]):
    self.target = target
    self.proof = proof

@external
@payable
def __default__():
    extcall Claim(self.target).claim(self, msg.value, self.proof)
"""


def test_an_account_that_refuses_payment_or_reenters_gets_nothing() -> None:
    refuser = boa.loads(REFUSER)
    reenter = boa.loads(REENTER)
    claims = [(str(refuser.address), 5), (str(reenter.address), 7), *make_claims(2)]
    tree = claim_tree(claims)
    total = sum(n for _, n in claims)
    contract = deploy(tree, total, funded=total)
    with boa.reverts("payment refused"):
        contract.claim(refuser.address, 5, tree.proof(0))
    reenter.arm(contract.address, tree.proof(1))
    with boa.reverts("payment refused"):
        contract.claim(reenter.address, 7, tree.proof(1))
    assert not contract.is_claimed(reenter.address, 7)
    assert boa.env.get_balance(contract.address) == total


def calldata_gas(data: bytes) -> int:
    """EIP-2028: 16 gas per non-zero calldata byte, 4 per zero byte."""
    return sum(16 if b else 4 for b in data)


def test_gas_per_claim() -> None:
    """Gas of a claim in a tree of 1,024 accounts (a proof of 10 hashes), printed for the docs.

    Each claim is measured as a transaction of its own (cold storage and accounts): one to an
    account the chain has never seen (the value transfer creates it: +25,000) and one to an
    account that exists already (the common case). It runs on a chain of its own: resetting the
    warm/cold counters breaks the snapshots boa takes of the shared chain around each test.
    """
    with boa.swap_env(boa.Env()):
        measure_claims()


def measure_claims() -> None:
    claims = make_claims(1024)
    tree = claim_tree(claims)
    total = sum(n for _, n in claims)
    contract = deploy(tree, total, funded=total)
    existing = claims[511][0]
    boa.env.set_balance(existing, 1)
    used: dict[str, int] = {}
    for label, i in (("new account", 0), ("existing account", 511)):
        account, amount = claims[i]
        proof = tree.proof(i)
        assert len(proof) == 10
        boa.env.reset_gas_used()
        contract.claim(account, amount, proof)
        used[label] = boa.env.get_gas_used()
    data = contract.claim.prepare_calldata(claims[0][0], claims[0][1], tree.proof(0))
    intrinsic = 21_000 + calldata_gas(data)
    print(
        f"MerkleClaim.claim, proof of 10 hashes: execution gas {used}; intrinsic (21,000 + calldata) {intrinsic}"
    )
    assert 25_000 <= used["new account"] - used["existing account"] < 25_100
    assert used["existing account"] < CLAIM_GAS_BOUND


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), count=st.integers(1, 12))
def test_random_claim_attempts_pay_exactly_the_valid_first_ones(data: st.DataObject, count: int) -> None:
    """Random attempts (right, wrong amount, another's proof, repeated) in random order: the
    contract pays an attempt if and only if it is a leaf not yet paid, and ends at zero."""
    claims = make_claims(count, seed=data.draw(st.integers(0, 2**32)))
    tree = claim_tree(claims)
    total = sum(n for _, n in claims)
    with boa.env.anchor():
        contract = deploy(tree, total, funded=total)
        paid: set[int] = set()
        order = data.draw(st.lists(st.integers(0, count - 1), min_size=count, max_size=3 * count))
        for i in [*order, *range(count)]:
            account, amount = claims[i]
            kind = data.draw(st.sampled_from(["right", "amount", "proof"]))
            proof = tree.proof(i)
            if kind == "amount":
                amount += data.draw(st.integers(1, 10))
            elif kind == "proof" and count > 1:
                proof = tree.proof((i + 1) % count)
            valid = kind == "right" or (kind == "proof" and count == 1)
            if valid and i not in paid:
                contract.claim(account, amount, proof)
                paid.add(i)
            else:
                # The leaf is checked before the proof: a paid leaf is "already claimed" whatever the proof.
                reason = "already claimed" if kind != "amount" and i in paid else "invalid proof"
                with boa.reverts(reason):
                    contract.claim(account, amount, proof)
        for i in set(range(count)) - paid:
            contract.claim(claims[i][0], claims[i][1], tree.proof(i))
        assert boa.env.get_balance(contract.address) == 0 and contract.outstanding() == 0
