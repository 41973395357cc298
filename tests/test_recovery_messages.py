"""Recovery keys and signed messages: three key kinds, EIP-712 digests checked against eth-account,
BIP-340 signatures against the project's own verifier, and every verification refusal."""

from __future__ import annotations

import contextlib
import json
from dataclasses import replace
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import given, settings
from hypothesis import strategies as st

from lifeboat.recovery import messages, refusals
from lifeboat.recovery.config import Guardian, Policy, VaultConfig
from lifeboat.recovery.keys import SECP256K1_ORDER, KeyKind, PrivateKey, PublicKey, recover_address
from lifeboat.recovery.messages import (
    Approve,
    CancelChange,
    CreateVault,
    Execute,
    Lock,
    Message,
    OpenRequest,
    ProposeChange,
    Service,
    Unlock,
    UploadShare,
    Veto,
)
from lifeboat.threshold.taproot import SUITE as TAPROOT
from recovery_helpers import SERVICE, VAULT, family_config, private_key, request_id

NOW = 1_800_000_000
OWNER = private_key(KeyKind.ED25519, "owner")
CONFIG, (ALICE, BOB, CAROL), LAWYER = family_config(OWNER)

# --- keys -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KeyKind))
def test_each_kind_signs_and_verifies_only_its_digest(kind: KeyKind) -> None:
    key = private_key(kind, "k")
    digest = bytes(range(32))
    signature = key.sign(digest)
    assert key.public_key.verify(digest, signature)
    assert not key.public_key.verify(bytes(32), signature)
    assert not private_key(kind, "other").public_key.verify(digest, signature)
    flipped = bytearray(signature)
    flipped[5] ^= 1
    assert not key.public_key.verify(digest, bytes(flipped))
    assert not key.public_key.verify(digest, signature[:-1])


@pytest.mark.parametrize("kind", list(KeyKind))
def test_key_texts_round_trip_and_hide_secrets(kind: KeyKind) -> None:
    key = private_key(kind, "k")
    assert PublicKey.parse(key.public_key.text) == key.public_key
    assert (
        PublicKey.parse(key.public_key.text.upper().replace(kind.value.upper(), kind.value)) == key.public_key
    )
    assert PrivateKey.parse(key.text) == key
    assert key.secret.hex() not in repr(key) and key.public_key.text in repr(key)


def test_the_eip712_key_is_the_ethereum_address() -> None:
    key = private_key(KeyKind.EIP712, "k")
    assert key.public_key.text == "eip712:0x" + Account.from_key(key.secret).address[2:].lower()
    checksummed = "eip712:" + Account.from_key(key.secret).address
    assert PublicKey.parse(checksummed) == key.public_key


def test_bip340_signatures_pass_the_projects_own_verifier() -> None:
    key = private_key(KeyKind.BIP340, "k")
    for n in range(8):
        digest = bytes([n]) * 32
        assert TAPROOT.verify_x_only(key.public_key.data, digest, key.sign(digest, aux=bytes([n]) * 32))


@pytest.mark.parametrize(
    "text",
    [
        "ed25519",
        "rsa:00",
        "ed25519:" + "0" * 63,
        "ed25519:" + "g" * 64,
        "bip340:" + "ff" * 32,  # not an x coordinate on the curve
        "eip712:" + "11" * 20,  # no 0x
        "eip712:0x" + "11" * 19,
    ],
)
def test_malformed_public_keys_are_refused(text: str) -> None:
    with pytest.raises(refusals.MalformedKey):
        PublicKey.parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "ed25519:" + "00" * 32,
        "bip340-key:" + "01" * 32,
        "eip712-secret:" + "00" * 32,
        "eip712-secret:" + "ff" * 32,
    ],
)
def test_malformed_private_keys_are_refused_without_echoing(text: str) -> None:
    with pytest.raises(refusals.MalformedKey) as caught:
        PrivateKey.parse(text)
    assert text.split(":")[-1] not in str(caught.value)


def test_high_s_and_bad_v_ethereum_signatures_are_refused() -> None:
    key = private_key(KeyKind.EIP712, "k")
    digest = bytes(range(32))
    signature = key.sign(digest)
    assert recover_address(digest, signature) == key.public_key.data
    s = int.from_bytes(signature[32:64], "big")
    high = signature[:32] + (SECP256K1_ORDER - s).to_bytes(32, "big") + bytes([55 - signature[64]])
    assert recover_address(digest, high) is None
    assert recover_address(digest, signature[:64] + bytes([signature[64] - 27])) is None
    assert recover_address(digest, bytes(65)) is None


def test_generated_keys_differ_and_work() -> None:
    for kind in KeyKind:
        a, b = PrivateKey.generate(kind), PrivateKey.generate(kind)
        assert a != b and a.public_key.verify(bytes(32), a.sign(bytes(32)))


# --- EIP-712 ----------------------------------------------------------------------------------

ids = st.binary(min_size=32, max_size=32)
keys = st.sampled_from([k.public_key for k in (OWNER, ALICE, BOB, CAROL, LAWYER)])
names = st.text(max_size=20)


@st.composite
def configs(draw: st.DrawFn) -> VaultConfig:
    guardians = draw(st.lists(keys, min_size=1, max_size=4, unique=True))
    return VaultConfig(
        tuple(Guardian(k, draw(st.integers(1, 9)), draw(names)) for k in guardians),
        tuple(
            Policy(
                draw(names),
                tuple(draw(st.lists(st.sampled_from(guardians), min_size=1, unique=True))),
                draw(st.integers(1, 9)),
                draw(st.booleans()),
                draw(st.integers(0, 2**53 - 1)),
                draw(st.integers(1, 2**40)),
                draw(st.integers(0, 3)),
            )
            for _ in range(draw(st.integers(1, 3)))
        ),
        draw(st.integers(0, 10**9)),
        draw(st.integers(1, 10**9)),
    )


actions = st.one_of(
    st.builds(CreateVault, configs()),
    st.builds(OpenRequest, ids, keys, names),
    st.builds(Approve, ids, keys, names),
    st.builds(Veto, ids),
    st.builds(Execute, ids),
    st.builds(UploadShare, ids, ids),
    st.just(Lock()),
    st.just(Unlock()),
    st.builds(ProposeChange, configs()),
    st.just(CancelChange()),
)
message_strategy = st.builds(
    Message, ids, actions, st.integers(0, 2**64 - 1), st.integers(0, 2**53 - 1), st.integers(0, 2**53 - 1)
)
services = st.builds(Service, st.integers(0, 2**256 - 1), st.binary(min_size=20, max_size=20))


@settings(max_examples=150, deadline=None)
@given(services, message_strategy)
def test_the_digest_is_eth_accounts_eip712_digest(service: Service, message: Message) -> None:
    signable = encode_typed_data(full_message=messages.typed_data(service, message))
    assert signable.header == service.separator()
    assert b"\x19" + signable.version + signable.header + signable.body == b"\x19\x01" + (
        service.separator() + messages.hash_struct(message.kind, messages.message_to_json(message))
    )
    json.dumps(messages.typed_data(service, message))  # plain JSON, as a wallet receives it


@settings(max_examples=60, deadline=None)
@given(services, message_strategy)
def test_the_wire_form_round_trips(service: Service, message: Message) -> None:
    signed = messages.sign(service, message, BOB)
    wire = messages.encode_signed(signed)
    assert messages.decode_signed(wire) == signed
    assert messages.encode_signed(messages.decode_signed(wire)) == wire


def test_a_wallet_signature_verifies_and_ours_recovers_in_eth_account() -> None:
    message = Message(VAULT, Approve(request_id(1), OWNER.public_key, "family"), 9, NOW - 10, NOW + 600)
    signable = encode_typed_data(full_message=messages.typed_data(SERVICE, message))
    wallet = Account.sign_message(signable, CAROL.secret).signature
    signed = messages.SignedMessage(SERVICE, message, CAROL.public_key, bytes(wallet))
    assert messages.verify(signed, SERVICE, NOW).signer == CAROL.public_key
    ours = messages.sign(SERVICE, message, CAROL)
    assert (
        Account.recover_message(signable, signature=ours.signature).lower()
        == "0x" + CAROL.public_key.data.hex()
    )


def test_the_type_strings_are_pinned() -> None:
    """A change here changes every digest: it needs a new format version."""
    assert messages.encode_type("Approve") == (
        "Approve(bytes32 vault,bytes32 request,string newOwner,string policy,uint256 nonce,uint64 notBefore,uint64 expiry)"
    )
    assert messages.encode_type("CreateVault") == (
        "CreateVault(bytes32 vault,VaultConfig config,uint256 nonce,uint64 notBefore,uint64 expiry)"
        "Guardian(string key,uint256 weight,string label)"
        "Policy(string name,string[] guardians,uint256 threshold,bool byWeight,uint64 recoveryPeriod,"
        "uint64 expiryWindow,uint256 vetoGuardians)"
        "VaultConfig(Guardian[] guardians,Policy[] policies,uint64 securityPeriod,uint64 lockPeriod)"
    )


# --- verification refusals --------------------------------------------------------------------


def sample(key: PrivateKey = BOB, **changes: Any) -> messages.SignedMessage:
    message = Message(VAULT, Veto(request_id(1)), 5, NOW - 100, NOW + 100)
    return messages.sign(SERVICE, replace(message, **changes), key)


def test_a_new_message_is_valid_from_just_before_now_for_its_lifetime() -> None:
    first = messages.new_message(VAULT, Lock(), now=NOW, lifetime=3600)
    second = messages.new_message(VAULT, Lock(), now=NOW, lifetime=3600)
    assert (first.not_before, first.expiry) == (NOW - messages.NOT_BEFORE_SLACK, NOW + 3600)
    assert first.nonce != second.nonce and 0 <= first.nonce <= messages.MAX_NONCE
    assert messages.new_message(VAULT, Lock(), now=5, lifetime=1).not_before == 0
    signed = messages.sign(SERVICE, first, OWNER)
    assert messages.verify(signed, SERVICE, now=NOW - messages.NOT_BEFORE_SLACK).signer == OWNER.public_key
    for lifetime in (0, messages.MAX_LIFETIME + 1):
        with pytest.raises(refusals.LifetimeTooLong):
            messages.new_message(VAULT, Lock(), now=NOW, lifetime=lifetime)


def test_a_good_message_verifies_at_its_edges() -> None:
    signed = sample()
    assert messages.verify(signed, SERVICE, NOW - 100, VAULT).message == signed.message
    assert messages.verify(signed, SERVICE, NOW + 99, VAULT).digest == messages.digest(
        SERVICE, signed.message
    )


@pytest.mark.parametrize("kind", list(KeyKind))
def test_a_changed_field_breaks_the_signature(kind: KeyKind) -> None:
    signed = sample(private_key(kind, "k"))
    for changed in (
        replace(signed.message, nonce=6),
        replace(signed.message, expiry=NOW + 101),
        replace(signed.message, not_before=NOW - 101),
        replace(signed.message, action=Veto(request_id(2))),
        replace(signed.message, action=Execute(request_id(1))),  # same fields, another action
    ):
        with pytest.raises(refusals.BadSignature):
            messages.verify(replace(signed, message=changed), SERVICE, NOW)
    with pytest.raises(refusals.BadSignature):
        messages.verify(replace(signed, signer=private_key(kind, "thief").public_key), SERVICE, NOW)


def test_the_other_refusals_name_their_reason() -> None:
    signed = sample()
    other = replace(SERVICE, chain_id=1)
    with pytest.raises(refusals.WrongService):
        messages.verify(signed, other, NOW)
    with pytest.raises(refusals.BadSignature):  # relabelled for another service: the digest differs
        messages.verify(replace(signed, service=other), other, NOW)
    with pytest.raises(refusals.WrongService):
        messages.verify(signed, replace(SERVICE, verifying_contract=bytes(20)), NOW)
    with pytest.raises(refusals.WrongVault):
        messages.verify(signed, SERVICE, NOW, vault=bytes(32))
    with pytest.raises(refusals.NotYetValid):
        messages.verify(signed, SERVICE, NOW - 101)
    with pytest.raises(refusals.Expired):
        messages.verify(signed, SERVICE, NOW + 100)
    with pytest.raises(refusals.LifetimeTooLong):
        messages.verify(sample(expiry=NOW + messages.MAX_LIFETIME + 1), SERVICE, NOW)
    messages.verify(sample(expiry=NOW + messages.MAX_LIFETIME), SERVICE, NOW)


def wire(**changes: Any) -> bytes:
    body = messages.signed_to_json(sample())
    for dotted, value in changes.items():
        target = body
        *path, last = dotted.split("__")
        for part in path:
            target = target[part]
        if value is None:
            del target[last]
        else:
            target[last] = value
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"version": 2}, refusals.UnknownVersion),
        ({"version": None}, refusals.UnknownVersion),
        ({"version": True}, refusals.UnknownVersion),
        ({"action": "Steal"}, refusals.MalformedMessage),
        ({"action": "Lock"}, refusals.MalformedMessage),  # Lock has no request field
        ({"extra": 1}, refusals.MalformedMessage),
        ({"message__nonce": 5}, refusals.MalformedMessage),
        ({"message__nonce": "05"}, refusals.MalformedMessage),
        ({"message__nonce": "-5"}, refusals.MalformedMessage),
        ({"message__nonce": str(2**64)}, refusals.MalformedMessage),
        ({"message__expiry": -1}, refusals.MalformedMessage),
        ({"message__expiry": 2**53}, refusals.MalformedMessage),
        ({"message__expiry": True}, refusals.MalformedMessage),
        ({"message__vault": "0x" + "AA" * 32}, refusals.MalformedMessage),
        ({"message__vault": "0x" + "aa" * 31}, refusals.MalformedMessage),
        ({"message__request": None}, refusals.MalformedMessage),
        ({"signer": "ED25519:" + "00" * 32}, refusals.MalformedMessage),
        ({"signer": "eip712:0x5FbDB2315678afecb367f032d93F642f64180aa3"}, refusals.MalformedMessage),
        ({"signature": "0x" + "00" * 63}, refusals.MalformedMessage),
        ({"service__chainId": "1"}, refusals.MalformedMessage),
    ],
)
def test_malformed_wire_messages_are_refused(changes: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        messages.decode_signed(wire(**changes))


def test_hostile_wire_input_is_refused_not_crashed() -> None:
    for data in (
        b"",
        b"[]",
        b"nul",
        b"[" * 100_000,
        b"{" + b" " * 70_000 + b"}",
        "\ud800".encode("utf-8", "surrogatepass"),
    ):
        with pytest.raises(refusals.MalformedMessage):
            messages.decode_signed(data)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
    )
)
def test_any_json_is_parsed_or_refused_with_a_recovery_error(value: object) -> None:
    with contextlib.suppress(refusals.Refusal):
        messages.decode_signed(json.dumps(value).encode())
