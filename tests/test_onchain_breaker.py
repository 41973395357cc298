"""The circuit breaker and the on-chain FROST(secp256k1) verifier, in titanoboa's in-process EVM.

The verifier is held to the RFC 9591 test vector and to signatures made by Lifeboat's own FROST
code; order digests are held to eth_account's independent EIP-712 encoder and to the contract.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boa
import pytest
from eth_account.messages import encode_typed_data
from eth_hash.auto import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import load_vectors
from lifeboat.onchain import breaker, contracts
from lifeboat.onchain.errors import OrderError
from lifeboat.onchain.orders import Order, decode_order, new_order, selector
from lifeboat.threshold import serialize
from onchain_helpers import DAY, SUITE, Group, deploy_vault, funded, group_with_small_x

WITHDRAW = selector("withdraw(uint256)")
TRANSFER = selector("transfer(address,uint256)")
DEPOSIT = selector("deposit()")


@pytest.fixture(autouse=True)
def _fresh_chain() -> Iterator[None]:
    with boa.env.anchor():
        yield


@pytest.fixture(scope="module")
def group() -> Group:
    return group_with_small_x()


@pytest.fixture(scope="module")
def verifier_deployer() -> Any:
    return contracts.deployer("FrostVerifier")


@pytest.fixture
def roles() -> tuple[Any, Any]:
    return funded(), funded()


@pytest.fixture
def vault(group: Group, roles: tuple[Any, Any]) -> Any:
    governance, guardian = roles
    return deploy_vault(group, governance, guardian)


def _now() -> int:
    return int(boa.env.evm.patch.timestamp)


def _order(
    vault: Any, action: str = "pause", selectors: tuple[bytes, ...] = (), lifetime: int = 3600
) -> Order:
    return new_order(
        boa.env.evm.patch.chain_id,
        bytes.fromhex(vault.address[2:]),
        action,
        selectors,
        now=_now(),
        lifetime=lifetime,
    )


# -- the verifier --------------------------------------------------------------------------------


def test_rfc9591_vector_verifies_on_chain(verifier_deployer: Any) -> None:
    vector = load_vectors("rfc9591/frost-secp256k1-sha256.json")
    key = bytes.fromhex(vector["inputs"]["group_public_key"])
    message = bytes.fromhex(vector["inputs"]["message"])
    signature = bytes.fromhex(vector["final_output"]["sig"])
    verifier = verifier_deployer.deploy()
    assert verifier.verify(key, message, signature)
    assert not verifier.verify(key, message + b"!", signature)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=st.binary(min_size=0, max_size=200), flip=st.integers(min_value=0, max_value=64 * 8 - 1))
def test_lifeboat_signatures_verify_and_any_flipped_bit_fails(
    group: Group, verifier_deployer: Any, message: bytes, flip: int
) -> None:
    verifier = verifier_deployer.deploy()
    signature = group.sign(message)
    assert verifier.verify(group.key, message, signature)
    damaged = bytearray(signature)
    damaged[1 + flip // 8] ^= 1 << (flip % 8)  # any bit of x(R) or z (the prefix is covered below)
    try:
        assert not verifier.verify(group.key, message, bytes(damaged))
    except boa.BoaError as e:  # x(R) no longer on the curve: a revert that says so
        assert "frost: point" in str(e)


def test_verifier_refuses_other_keys_and_malformed_input(group: Group, verifier_deployer: Any) -> None:
    verifier = verifier_deployer.deploy()
    message = os.urandom(32)
    signature = group.sign(message)
    other = group_with_small_x()
    assert not verifier.verify(other.key, message, signature)
    assert not verifier.verify(group.key, message, signature[:64])  # wrong length
    too_big_z = signature[:33] + (SUITE.group.order).to_bytes(32, "big")
    assert not verifier.verify(group.key, message, too_big_z)
    with boa.reverts("frost: point prefix must be 02 or 03"):
        verifier.verify(group.key, message, b"\x04" + signature[1:])
    with boa.reverts("frost: point is not on secp256k1"):
        verifier.verify(group.key, message, b"\x02" + (5).to_bytes(32, "big") + signature[33:])
    with boa.reverts("frost: point x is not below p"):
        verifier.verify(group.key, message, b"\x02" + b"\xff" * 32 + signature[33:])
    negated = bytes([group.key[0] ^ 1]) + group.key[1:]  # -PK: the same x, the other y
    assert not verifier.verify(negated, message, signature)


def test_verification_gas(group: Group, verifier_deployer: Any) -> None:
    verifier = verifier_deployer.deploy()
    message = os.urandom(32)
    assert verifier.verify(group.key, message, group.sign(message))
    gas = verifier._computation.get_gas_used()
    assert 5_000 < gas < 40_000, gas  # ecrecover 3,000 + two modexps + hashing; a sanity bound


# -- orders --------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    action=st.sampled_from(["pause", "shutdown"]),
    chosen=st.lists(st.binary(min_size=4, max_size=4).filter(any), max_size=5, unique=True),
    nonce=st.integers(min_value=0, max_value=2**256 - 1),
    not_before=st.integers(min_value=0, max_value=2**63),
    length=st.integers(min_value=1, max_value=2**62),
    chain_id=st.integers(min_value=1, max_value=2**64),
)
def test_order_digest_matches_eth_account(
    action: str, chosen: list[bytes], nonce: int, not_before: int, length: int, chain_id: int
) -> None:
    selectors = tuple(chosen) if action == "pause" else ()
    order = Order(chain_id, os.urandom(20), action, selectors, nonce, not_before, not_before + length)
    encoded = encode_typed_data(full_message=order.typed_data())
    assert order.digest == bytes(keccak(b"\x19" + encoded.version + encoded.header + encoded.body))
    assert decode_order(order.encode()) == order


def test_order_digest_matches_contract(vault: Any) -> None:
    order = _order(vault, "pause", (WITHDRAW, TRANSFER))
    args = order.call_arguments(b"")[:-1]
    assert vault.order_digest(*args) == order.digest
    assert vault.domain_separator() == order.domain_separator


def test_order_file_refusals() -> None:
    order = Order(1, bytes(20), "pause", (WITHDRAW,), 5, 10, 20)
    text = order.encode().decode()
    with pytest.raises(OrderError, match="digest field does not match"):
        decode_order(text.replace('"nonce": "5"', '"nonce": "6"').encode())
    with pytest.raises(OrderError, match="not JSON"):
        decode_order(b"{")
    with pytest.raises(OrderError, match="unknown fields"):
        decode_order(text.replace('"action"', '"extra": 1, "action"').encode())
    with pytest.raises(OrderError, match="version"):
        decode_order(text.replace('"version": 1', '"version": 2').encode())
    with pytest.raises(OrderError, match="at most"):
        decode_order(b" " * 70_000)
    with pytest.raises(OrderError, match="names no selectors"):
        Order(1, bytes(20), "shutdown", (WITHDRAW,), 5, 10, 20)
    with pytest.raises(OrderError, match="unknown order action"):
        Order(1, bytes(20), "drain", (), 5, 10, 20)
    with pytest.raises(OrderError, match="not a function selector"):
        selector("withdraw")
    assert selector("0x2e1a7d4d") == WITHDRAW == bytes.fromhex("2e1a7d4d")


def test_order_signature_checks(group: Group, vault: Any, tmp_path: Any) -> None:
    order = _order(vault)
    signature = group.sign(order.digest)
    signature_file = serialize.encode_signature(SUITE, order.digest, signature, group.public.group_public_key)
    assert breaker.order_signature(order, signature_file, key=group.key) == signature
    other = _order(vault)
    with pytest.raises(OrderError, match="not this order's digest"):
        breaker.order_signature(other, signature_file)
    with pytest.raises(OrderError, match="but the contract holds"):
        breaker.order_signature(order, signature_file, key=group_with_small_x().key)


# -- the breaker ---------------------------------------------------------------------------------


def test_guardian_pauses_but_only_governance_unpauses_after_the_delay(
    vault: Any, roles: tuple[Any, Any]
) -> None:
    governance, guardian = roles
    user = funded()
    with boa.env.prank(user):
        vault.deposit(value=10**18)
        with boa.reverts("breaker: only the pause guardian or governance"):
            vault.pause([])
    with boa.env.prank(guardian):
        vault.pause([WITHDRAW])
        with boa.reverts("breaker: only governance"):
            vault.request_unpause([WITHDRAW])
    with boa.env.prank(user), boa.reverts("breaker: paused"):
        vault.withdraw(1)
    with boa.env.prank(user):
        vault.deposit(value=1)  # other functions still run
    with boa.env.prank(governance):
        with boa.reverts("breaker: unpause not requested"):
            vault.unpause([WITHDRAW])
        vault.request_unpause([WITHDRAW])
        boa.env.time_travel(seconds=2 * DAY - 10)
        with boa.reverts("breaker: unpause delay not over"):
            vault.unpause([WITHDRAW])
        boa.env.time_travel(seconds=10)
        vault.unpause([WITHDRAW])
    with boa.env.prank(user):
        vault.withdraw(1)


def test_pause_again_restarts_a_pending_unpause(vault: Any, roles: tuple[Any, Any]) -> None:
    governance, guardian = roles
    with boa.env.prank(guardian):
        vault.pause([])
    with boa.env.prank(governance):
        vault.request_unpause([])
    with boa.env.prank(guardian):
        vault.pause([])
    boa.env.time_travel(seconds=3 * DAY)
    with boa.env.prank(governance), boa.reverts("breaker: unpause not requested"):
        vault.unpause([])


def test_governance_replaces_a_compromised_guardian(vault: Any, roles: tuple[Any, Any]) -> None:
    governance, guardian = roles
    replacement = funded()
    with boa.env.prank(governance):
        vault.set_roles(governance, replacement, 2 * DAY)
        with boa.reverts("breaker: unpause delay out of range"):
            vault.set_roles(governance, replacement, 60)
    with boa.env.prank(guardian), boa.reverts("breaker: only the pause guardian or governance"):
        vault.pause([])
    assert vault.pause_guardian() == replacement


def test_group_order_pauses_once(group: Group, vault: Any) -> None:
    order = _order(vault, "pause", (WITHDRAW,))
    relayer = funded()
    with boa.env.prank(relayer):
        vault.execute_order(*order.call_arguments(group.sign(order.digest)))
        assert vault.paused(WITHDRAW)
        assert not vault.paused(DEPOSIT)
        with boa.reverts("order: nonce already used"):
            vault.execute_order(*order.call_arguments(group.sign(order.digest)))


def test_group_order_refusals(group: Group, vault: Any, roles: tuple[Any, Any]) -> None:
    governance, guardian = roles
    relayer = funded()
    other_vault = deploy_vault(group, governance, guardian)
    with boa.env.prank(relayer):
        foreign = _order(other_vault)  # same group, another contract
        with boa.reverts("order: bad group signature"):
            vault.execute_order(*foreign.call_arguments(group.sign(foreign.digest)))
        order = _order(vault)
        wrong_group = group_with_small_x()
        with boa.reverts("order: bad group signature"):
            vault.execute_order(*order.call_arguments(wrong_group.sign(order.digest)))
        with boa.reverts("order: bad group signature"):
            vault.execute_order(*order.call_arguments(group.sign(order.digest + b"x")))
        early = Order(order.chain_id, order.contract, "pause", (), 9, _now() + 100, _now() + 200)
        with boa.reverts("order: not yet valid"):
            vault.execute_order(*early.call_arguments(group.sign(early.digest)))
        long = Order(order.chain_id, order.contract, "pause", (), 10, _now(), _now() + 8 * DAY)
        with boa.reverts("order: lifetime too long"):
            vault.execute_order(*long.call_arguments(group.sign(long.digest)))
        boa.env.time_travel(seconds=3600)
        with boa.reverts("order: expired"):
            vault.execute_order(*order.call_arguments(group.sign(order.digest)))
        with boa.reverts("order: unknown action"):
            vault.execute_order("drain", [], 1, 0, _now() + 10, group.sign(b"x"))
        with boa.reverts("order: a shutdown names no selectors"):
            vault.execute_order("shutdown", [WITHDRAW], 1, 0, _now() + 10, group.sign(b"x"))
    assert not vault.paused_all()


def test_shutdown_by_order_is_permanent(group: Group, vault: Any, roles: tuple[Any, Any]) -> None:
    governance, _ = roles
    user = funded()
    with boa.env.prank(user):
        vault.deposit(value=10**18)
    order = _order(vault, "shutdown")
    vault.execute_order(*order.call_arguments(group.sign(order.digest)))
    assert vault.is_shut_down()
    with boa.env.prank(user):
        with boa.reverts("breaker: shut down"):
            vault.withdraw(1)
        with boa.reverts("breaker: shut down"):
            vault.deposit(value=1)
        with boa.reverts("breaker: shut down"):
            vault.transfer(user, 1)
    with boa.env.prank(governance), boa.reverts("breaker: shut down"):
        vault.request_unpause([])


def test_rotating_the_group_key(group: Group, vault: Any, roles: tuple[Any, Any]) -> None:
    governance, _ = roles
    new = group_with_small_x()
    with boa.env.prank(governance):
        vault.set_group_public_key(new.key)
    order = _order(vault)
    with boa.reverts("order: bad group signature"):
        vault.execute_order(*order.call_arguments(group.sign(order.digest)))
    vault.execute_order(*order.call_arguments(new.sign(order.digest)))
    assert vault.paused_all()


def test_group_key_must_be_secp256k1(tmp_path: Any) -> None:
    from lifeboat.threshold import keygen
    from lifeboat.threshold.ed25519 import Ed25519Sha512

    ed = Ed25519Sha512()
    _, public, _ = keygen.trusted_dealer_keygen(ed, 2, 3)
    with pytest.raises(OrderError, match="verifies FROST-secp256k1-SHA256-v1"):
        breaker.group_key(serialize.encode_public_key_package(ed, public))
