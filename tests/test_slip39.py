"""SLIP-39: the 45 published vectors, precise errors, and split/combine properties."""

from __future__ import annotations

import hashlib
import hmac
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import load_vectors
from lifeboat.errors import LifeboatError, MnemonicError, ShareError, UsageError
from lifeboat.secrets import bip39, slip39


def slip39_vectors() -> list[tuple[str, list[str], str, str]]:
    return [tuple(v) for v in load_vectors("slip39/vectors.json")]


def test_vector_count() -> None:
    vectors = slip39_vectors()
    assert len(vectors) == 45
    assert sum(1 for v in vectors if v[2]) == 15


@pytest.mark.parametrize("index", range(45))
def test_published_vector(index: int) -> None:
    description, mnemonics, secret, xprv = slip39_vectors()[index]
    if secret:
        recovered = slip39.combine(mnemonics, "TREZOR")
        assert recovered.hex() == secret, description
        # The master secret is used directly as the BIP-32 seed.
        assert bip39.master_xprv(recovered) == xprv
    else:
        with pytest.raises(LifeboatError):
            slip39.combine(mnemonics, "TREZOR")


def test_vector_errors_name_the_reason() -> None:
    by_number = {v[0].split(".")[0]: v for v in slip39_vectors()}
    expectations = {
        "2": "invalid checksum",
        "3": "invalid padding",
        "6": "belongs to a different share set",
        "7": "iteration exponent",
        "8": "group threshold",
        "9": "group count",
        "10": "group threshold is greater than its group count",
        "11": "duplicate member",
        "12": "threshold mismatch",
        "13": "digest mismatch",
        "14": "need 1 more group",
        "16": "group 4 needs 1 more",
        "39": "invalid length",
    }
    for number, reason in expectations.items():
        _, mnemonics, _, _ = by_number[number]
        with pytest.raises(LifeboatError, match=reason):
            slip39.combine(mnemonics, "TREZOR")


def test_errors_never_contain_share_words() -> None:
    _, mnemonics, _, _ = next(v for v in slip39_vectors() if v[0].startswith("2."))
    with pytest.raises(MnemonicError) as caught:
        slip39.combine(mnemonics)
    words = set(mnemonics[0].split())
    assert not words & set(str(caught.value).replace(":", " ").split())


def test_scheme_parsing() -> None:
    assert slip39.Scheme.parse("2of3") == slip39.Scheme(1, (slip39.GroupSpec(2, 3),))
    assert slip39.Scheme.parse("single") == slip39.Scheme(1, (slip39.GroupSpec(1, 1),))
    parsed = slip39.Scheme.parse("2:2of3,3of5,1of1")
    assert parsed.group_threshold == 2 and len(parsed.groups) == 3 and parsed.share_count == 9
    assert str(parsed) == "2:2of3,3of5,1of1"
    for bad, reason in [
        ("2of1", "threshold 2 must be between 1"),
        ("1of3", "1-of-3 is not allowed"),
        ("3:2of3,2of3", "group threshold must be between 1"),
        ("two of three", "cannot read scheme"),
        ("2of17", "1 to 16 shares"),
    ]:
        with pytest.raises(UsageError, match=reason):
            slip39.Scheme.parse(bad)


def test_several_groups_need_a_group_threshold() -> None:
    # "2of3,3of5" once read silently as "1:2of3,3of5": either group alone recovered the secret.
    for bad in ("2of3,3of5", "2of3, 2of2, 1of1"):
        with pytest.raises(UsageError, match=r"2:2of3,3of5.*how many groups are needed"):
            slip39.Scheme.parse(bad)
    assert slip39.Scheme.parse("1:2of3,3of5").group_threshold == 1  # said explicitly: allowed


def test_duplicate_share_and_foreign_share() -> None:
    first = slip39.split(bytes(16), slip39.Scheme.parse("2of3"), iteration_exponent=0)
    other = slip39.split(bytes(16), slip39.Scheme.parse("2of3"), iteration_exponent=0)
    recovery = slip39.Recovery()
    recovery.add(first.shares()[0], "a.txt")
    with pytest.raises(ShareError, match="b.txt: duplicate of a.txt"):
        recovery.add(first.shares()[0], "b.txt")
    if other.identifier != first.identifier:
        with pytest.raises(ShareError, match="c.txt: belongs to a different share set"):
            recovery.add(other.shares()[1], "c.txt")
    assert recovery.missing() == "1 more group complete (group 1 needs 1 more)"
    recovery.add(first.shares()[2], "d.txt")
    assert recovery.is_complete()
    assert recovery.recover() == bytes(16)


def test_wrong_passphrase_gives_a_different_secret_not_an_error() -> None:
    made = slip39.split(b"\x11" * 16, slip39.Scheme.parse("2of3"), passphrase="right", iteration_exponent=0)
    assert slip39.combine(made.shares()[:2], "right") == b"\x11" * 16
    assert slip39.combine(made.shares()[:2], "wrong") != b"\x11" * 16


def test_secret_size_and_passphrase_rules() -> None:
    with pytest.raises(UsageError, match="even number of bytes"):
        slip39.split(bytes(15), slip39.Scheme.parse("2of3"))
    with pytest.raises(UsageError, match="printable ASCII"):
        slip39.split(bytes(16), slip39.Scheme.parse("2of3"), passphrase="caf\u00e9")


@st.composite
def schemes(draw: st.DrawFn) -> slip39.Scheme:
    group_count = draw(st.integers(1, 4))
    groups = []
    for _ in range(group_count):
        count = draw(st.integers(1, 5))
        threshold = 1 if count == 1 else draw(st.integers(2, count))
        groups.append(slip39.GroupSpec(threshold, count))
    return slip39.Scheme(draw(st.integers(1, group_count)), tuple(groups))


@settings(max_examples=40, deadline=None)
@given(
    scheme=schemes(),
    secret=st.sampled_from([16, 32, 64]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    passphrase=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=8),
    extendable=st.booleans(),
    data=st.data(),
)
def test_any_threshold_subset_recovers(
    scheme: slip39.Scheme, secret: bytes, passphrase: str, extendable: bool, data: st.DataObject
) -> None:
    made = slip39.split(secret, scheme, passphrase=passphrase, extendable=extendable, iteration_exponent=0)
    groups = data.draw(st.permutations(range(len(scheme.groups))))[: scheme.group_threshold]
    chosen: list[str] = []
    for index in groups:
        members = data.draw(st.permutations(made.groups[index]))
        chosen.extend(members[: scheme.groups[index].threshold])
    chosen = data.draw(st.permutations(chosen))
    assert slip39.combine(chosen, passphrase) == secret


@settings(max_examples=30, deadline=None)
@given(scheme=schemes(), data=st.data())
def test_below_threshold_never_recovers(scheme: slip39.Scheme, data: st.DataObject) -> None:
    made = slip39.split(bytes(range(16)), scheme, iteration_exponent=0)
    # Every group one share short of its threshold (groups with threshold 1 contribute nothing).
    chosen = [
        m for spec, group in zip(scheme.groups, made.groups, strict=True) for m in group[: spec.threshold - 1]
    ]
    if not chosen:
        return
    recovery = slip39.Recovery()
    for number, mnemonic in enumerate(chosen, start=1):
        recovery.add(mnemonic, f"share {number}")
    assert not recovery.is_complete()
    with pytest.raises(ShareError, match="not enough shares"):
        recovery.recover()


def test_every_two_of_three_pair_recovers() -> None:
    made = slip39.split(b"\x42" * 32, slip39.Scheme.parse("2of3"), iteration_exponent=0)
    for pair in itertools.combinations(made.shares(), 2):
        assert slip39.combine(pair) == b"\x42" * 32


def test_bip39_seed_split_gives_the_same_wallet() -> None:
    """Splitting the 64-byte BIP-39 seed: the recovered master secret is the same BIP-32 root."""
    phrase = bip39.from_entropy(bytes(range(32)))
    seed = bip39.to_seed(phrase, "")
    made = slip39.split(seed, slip39.Scheme.parse("2of3"), iteration_exponent=0)
    assert {len(m.split()) for m in made.shares()} == {59}
    recovered = slip39.combine(made.shares()[1:])
    assert bip39.master_xprv(recovered) == bip39.master_xprv(seed)
    expected = hmac.new(b"Bitcoin seed", seed, hashlib.sha512).digest()
    assert expected[:32] != bytes(32)  # sanity: a real BIP-32 root
