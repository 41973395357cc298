"""Share repair (and enrolment) and share refresh: ZF repair vectors and properties."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import load_vectors
from lifeboat.threshold import dkg, keygen, refresh, repair
from lifeboat.threshold.group import Ciphersuite, KeyPackage, PublicKeyPackage, ThresholdError
from test_frost_dkg import (
    PROPERTY_SETTINGS,
    SUITES,
    TAPROOT,
    is_taproot,
    others,
    run_dkg,
    same_key_package,
    sign_with,
    signable,
)


def start(
    suite: Ciphersuite, ids: Sequence[int], t: int, use_dkg: bool
) -> tuple[dict[int, KeyPackage], PublicKeyPackage]:
    """Key packages ready to sign, from a DKG or a trusted dealer."""
    if use_dkg:
        return signable(suite, *run_dkg(suite, ids, t))
    packages, public, _ = keygen.trusted_dealer_keygen(suite, t, len(ids), identifiers=ids)
    if is_taproot(suite):
        assert TAPROOT is not None
        packages = [TAPROOT.even_y_key_package(kp) for kp in packages]
        public = TAPROOT.even_y_public_key_package(public)
    return {kp.identifier: kp for kp in packages}, public


def run_repair(
    suite: Ciphersuite, helpers: Sequence[KeyPackage], participant: int, public: PublicKeyPackage
) -> KeyPackage:
    ids = [h.identifier for h in helpers]
    deltas = {h.identifier: repair.repair_share_step_1(suite, ids, h, participant) for h in helpers}
    sigmas = [repair.repair_share_step_2(suite, [deltas[i][j] for i in ids]) for j in ids]
    return repair.repair_share_step_3(suite, sigmas, participant, public)


# --- the Zcash Foundation repair vectors -------------------------------------------------------


@pytest.mark.parametrize("folder", sorted(SUITES))
def test_zf_repair_vectors(folder: str) -> None:
    suite = SUITES[folder]
    g = suite.group
    v: dict[str, Any] = load_vectors(f"zf-frost/{folder}/repair-share.json")
    randoms = v["scalar_generation"]
    values = [g.deserialize_scalar(bytes.fromhex(randoms[f"random_scalar_{n}"])) for n in (1, 2, 3)]
    assert g.serialize_scalar(repair.repair_share_step_2(suite, values)).hex() == randoms["random_scalar_sum"]
    sigmas = v["sigma_generation"]
    values = [g.deserialize_scalar(bytes.fromhex(sigmas[f"sigma_{n}"])) for n in (1, 2, 3, 4)]
    assert g.serialize_scalar(repair.recover_signing_share(suite, values)).hex() == sigmas["sigma_sum"]


@pytest.mark.parametrize("folder", sorted(SUITES))
def test_step_1_splits_the_weighted_share(folder: str) -> None:
    """As frost-core's check_repair_share_step_1: the deltas add up to zeta_i * s_i."""
    suite = SUITES[folder]
    order = suite.group.order
    packages, _ = start(suite, [1, 2, 3, 4, 5], 3, use_dkg=False)
    helpers = [5, 1, 4]
    deltas = repair.repair_share_step_1(suite, helpers, packages[4], 2, random_values=[11, 22])
    assert deltas[1] == 11 and deltas[4] == 22  # the given values, in identifier order
    zeta = repair.lagrange_coefficient(order, helpers, 4, 2)
    assert sum(deltas.values()) % order == zeta * packages[4].signing_share % order
    assert set(deltas) == set(helpers)


# --- repair properties -------------------------------------------------------------------------


@st.composite
def repair_shapes(draw: st.DrawFn) -> tuple[str, list[int], int, int, list[int], bool]:
    folder = draw(st.sampled_from(sorted(SUITES)))
    n = draw(st.integers(3, 5))
    t = draw(st.integers(2, n - 1))
    ids = draw(st.lists(st.integers(1, 500), min_size=n, max_size=n, unique=True))
    lost = draw(st.sampled_from(ids))
    rest = [i for i in ids if i != lost]
    helpers = draw(st.lists(st.sampled_from(rest), min_size=t, max_size=len(rest), unique=True))
    return folder, ids, t, lost, helpers, draw(st.booleans())


@PROPERTY_SETTINGS
@given(repair_shapes())
def test_repair_yields_exactly_the_lost_share(
    shape: tuple[str, list[int], int, int, list[int], bool],
) -> None:
    folder, ids, t, lost, helpers, use_dkg = shape
    suite = SUITES[folder]
    packages, public = start(suite, ids, t, use_dkg)
    repaired = run_repair(suite, [packages[h] for h in helpers], lost, public)
    assert repaired.signing_share == packages[lost].signing_share
    assert same_key_package(suite, repaired, packages[lost])
    cosigners = [packages[i] for i in ids if i != lost][: t - 1]
    sign_with(suite, [repaired, *cosigners], public)


@PROPERTY_SETTINGS
@given(st.sampled_from(sorted(SUITES)), st.integers(2, 4), st.data())
def test_repair_enrols_a_new_participant(folder: str, t: int, data: st.DataObject) -> None:
    suite = SUITES[folder]
    ids = list(range(1, t + 2))
    packages, public = start(suite, ids, t, use_dkg=data.draw(st.booleans()))
    newcomer = data.draw(st.integers(t + 2, 10_000))
    helpers = data.draw(st.lists(st.sampled_from(ids), min_size=t, max_size=len(ids), unique=True))
    enrolled = run_repair(suite, [packages[h] for h in helpers], newcomer, public)
    extended = repair.enrol(suite, public, newcomer)
    assert set(extended.verifying_shares) == {*ids, newcomer}
    assert suite.group.equal(extended.verifying_shares[newcomer], enrolled.verifying_share)
    assert suite.group.equal(extended.group_public_key, public.group_public_key)
    cosigners = data.draw(st.lists(st.sampled_from(ids), min_size=t - 1, max_size=t - 1, unique=True))
    sign_with(suite, [enrolled, *(packages[i] for i in cosigners)], extended)


def test_repair_refusals() -> None:
    suite = SUITES["ed25519"]
    packages, public = start(suite, [1, 2, 3, 4], 3, use_dkg=False)
    with pytest.raises(ThresholdError, match="at least the threshold"):
        repair.repair_share_step_1(suite, [1, 3], packages[1], 2)
    with pytest.raises(ThresholdError, match="its own share"):
        repair.repair_share_step_1(suite, [1, 2, 3], packages[1], 2)
    with pytest.raises(ThresholdError, match="not in the helper list"):
        repair.repair_share_step_1(suite, [3, 4, 5], packages[1], 2)
    with pytest.raises(ThresholdError, match="twice"):
        repair.repair_share_step_1(suite, [1, 3, 3], packages[1], 2)
    with pytest.raises(ThresholdError, match="identifier"):
        repair.repair_share_step_1(suite, [1, 3, 4], packages[1], 0)
    with pytest.raises(ThresholdError, match="random values"):
        repair.repair_share_step_1(suite, [1, 3, 4], packages[1], 2, random_values=[1])
    with pytest.raises(ThresholdError, match="already"):
        repair.enrol(suite, public, 2)


def test_a_wrong_delta_is_caught() -> None:
    suite = SUITES["secp256k1"]
    packages, public = start(suite, [1, 2, 3, 4], 2, use_dkg=True)
    helpers = [1, 3, 4]
    deltas = {h: repair.repair_share_step_1(suite, helpers, packages[h], 2) for h in helpers}
    deltas[3][4] += 1
    sigmas = [repair.repair_share_step_2(suite, [deltas[i][j] for i in helpers]) for j in helpers]
    with pytest.raises(ThresholdError, match="does not match its verifying share"):
        repair.repair_share_step_3(suite, sigmas, 2, public)


# --- refresh, trusted dealer -------------------------------------------------------------------


@st.composite
def refresh_shapes(draw: st.DrawFn) -> tuple[str, list[int], int, list[int], bool]:
    folder = draw(st.sampled_from(sorted(SUITES)))
    n = draw(st.integers(3, 5))
    t = draw(st.integers(2, n - 1))
    ids = list(range(1, n + 1))
    remaining = draw(st.lists(st.sampled_from(ids), min_size=t, max_size=n, unique=True))
    return folder, ids, t, sorted(remaining), draw(st.booleans())


def check_refreshed(
    suite: Ciphersuite,
    ids: Sequence[int],
    t: int,
    remaining: Sequence[int],
    old: dict[int, KeyPackage],
    old_public: PublicKeyPackage,
    new: dict[int, KeyPackage],
    new_public: PublicKeyPackage,
) -> None:
    g = suite.group
    # The same group key, shares for the remaining participants only.
    assert g.equal(new_public.group_public_key, old_public.group_public_key)
    assert set(new_public.verifying_shares) == set(new) == set(remaining)
    assert new_public.min_signers == t
    for i in remaining:
        assert g.equal(new[i].group_public_key, old_public.group_public_key)
        assert g.equal(new[i].verifying_share, new_public.verifying_shares[i])
        assert new[i].signing_share != old[i].signing_share
        assert not g.equal(new_public.verifying_shares[i], old_public.verifying_shares[i])
    # New shares sign.
    sign_with(suite, [new[i] for i in remaining[:t]], new_public)
    # An old share among new ones does not: the aggregate fails and names it.
    stale = remaining[0]
    mixed = [old[stale], *(new[i] for i in remaining[1:t])]
    with pytest.raises(ThresholdError, match="invalid") as raised:
        sign_with(suite, mixed, new_public)
    assert raised.value.culprits == (stale,)
    # A removed participant's old share is not in the new package, and useless with new shares
    # even when its old verifying share is put back.
    removed = [i for i in ids if i not in remaining]
    if removed:
        gone = removed[0]
        padded = PublicKeyPackage(
            {**new_public.verifying_shares, gone: old_public.verifying_shares[gone]},
            new_public.group_public_key,
            t,
        )
        with pytest.raises(ThresholdError, match="invalid"):
            sign_with(suite, [old[gone], *(new[i] for i in remaining[: t - 1])], padded)
    # What refresh does not do: a threshold of old shares still signs for the same key.
    sign_with(suite, [old[i] for i in ids[:t]], old_public)


@PROPERTY_SETTINGS
@given(refresh_shapes())
def test_dealer_refresh(shape: tuple[str, list[int], int, list[int], bool]) -> None:
    folder, ids, t, remaining, use_dkg = shape
    suite = SUITES[folder]
    old, old_public = start(suite, ids, t, use_dkg)
    shares, new_public = refresh.compute_refreshing_shares(suite, old_public, remaining)
    assert sorted(shares) == remaining
    new = {i: refresh.refresh_share(suite, shares[i], old[i], new_public) for i in remaining}
    check_refreshed(suite, ids, t, remaining, old, old_public, new, new_public)


def test_dealer_refresh_refusals() -> None:
    suite = SUITES["ed25519"]
    old, public = start(suite, [1, 2, 3, 4], 3, use_dkg=False)
    with pytest.raises(ThresholdError, match="not in the public key package") as raised:
        refresh.compute_refreshing_shares(suite, public, [1, 2, 9])
    assert raised.value.culprits == (9,)
    with pytest.raises(ThresholdError, match="threshold"):
        refresh.compute_refreshing_shares(suite, public, [1, 2])
    with pytest.raises(ThresholdError, match="twice"):
        refresh.compute_refreshing_shares(suite, public, [1, 2, 2])
    with pytest.raises(ThresholdError, match="non-zero"):
        refresh.compute_refreshing_shares(suite, public, coefficients=[5, 0])
    shares, _ = refresh.compute_refreshing_shares(suite, public)
    assert "<secret>" in repr(shares[1]) and str(shares[1].value) not in repr(shares[1])
    with pytest.raises(ThresholdError, match="given to"):
        refresh.refresh_share(suite, shares[2], old[1])
    tampered = replace(shares[1], value=(shares[1].value + 1) % suite.group.order)
    with pytest.raises(ThresholdError, match="does not match its commitment"):
        refresh.refresh_share(suite, tampered, old[1])
    with pytest.raises(ThresholdError, match="elements instead of"):
        refresh.refresh_share(suite, replace(shares[1], commitment=shares[1].commitment[:1]), old[1])
    with pytest.raises(ThresholdError, match="new public key package"):
        refresh.refresh_share(suite, shares[1], old[1], public)


# --- refresh, distributed ----------------------------------------------------------------------


def refresh_round_two(
    suite: Ciphersuite, remaining: Sequence[int], t: int
) -> tuple[
    dict[int, refresh.RefreshRound1Package],
    dict[int, tuple[dkg.Round2SecretPackage, dict[int, dkg.Round2Package]]],
]:
    firsts = {i: refresh.refresh_dkg_part1(suite, i, len(remaining), t) for i in remaining}
    broadcast = {i: p for i, (_, p) in firsts.items()}
    seconds = {i: refresh.refresh_dkg_part2(suite, firsts[i][0], others(broadcast, i)) for i in remaining}
    return broadcast, seconds


@PROPERTY_SETTINGS
@given(refresh_shapes())
def test_distributed_refresh(shape: tuple[str, list[int], int, list[int], bool]) -> None:
    folder, ids, t, remaining, use_dkg = shape
    suite = SUITES[folder]
    old, old_public = start(suite, ids, t, use_dkg)
    broadcast, seconds = refresh_round_two(suite, remaining, t)
    new: dict[int, KeyPackage] = {}
    publics = []
    for i in remaining:
        inbox = {j: seconds[j][1][i] for j in remaining if j != i}
        new[i], public = refresh.refresh_dkg_shares(
            suite, seconds[i][0], others(broadcast, i), inbox, old[i], old_public
        )
        publics.append(public)
    for public in publics:
        for j in remaining:
            assert suite.group.equal(public.verifying_shares[j], publics[0].verifying_shares[j])
    check_refreshed(suite, ids, t, remaining, old, old_public, new, publics[0])


@PROPERTY_SETTINGS
@given(st.sampled_from(sorted(SUITES)), st.integers(3, 5), st.data())
def test_distributed_refresh_names_every_bad_share(folder: str, n: int, data: st.DataObject) -> None:
    suite = SUITES[folder]
    ids = list(range(1, n + 1))
    t = data.draw(st.integers(2, n))
    old, old_public = start(suite, ids, t, use_dkg=False)
    broadcast, seconds = refresh_round_two(suite, ids, t)
    victim = data.draw(st.sampled_from(ids))
    senders = [j for j in ids if j != victim]
    cheats = data.draw(st.lists(st.sampled_from(senders), min_size=1, max_size=len(senders), unique=True))
    inbox = {j: seconds[j][1][victim] for j in senders}
    for j in cheats:
        inbox[j] = replace(inbox[j], signing_share=(inbox[j].signing_share + 1) % suite.group.order)
    with pytest.raises(ThresholdError, match="does not match its commitment") as raised:
        refresh.refresh_dkg_shares(
            suite, seconds[victim][0], others(broadcast, victim), inbox, old[victim], old_public
        )
    assert raised.value.culprits == tuple(sorted(cheats))


def test_distributed_refresh_refusals() -> None:
    suite = SUITES["secp256k1"]
    g = suite.group
    old, public = start(suite, [1, 2, 3, 4], 2, use_dkg=False)
    with pytest.raises(ThresholdError, match="non-zero"):
        refresh.refresh_dkg_part1(suite, 1, 3, 2, coefficients=[0])
    broadcast, seconds = refresh_round_two(suite, [1, 2, 3], 2)
    firsts = {i: refresh.refresh_dkg_part1(suite, i, 3, 2) for i in (1, 2, 3)}

    # An identity or over-long commitment is refused in part 2 and names its sender.
    bad = {
        2: replace(broadcast[2], commitment=(g.identity(),)),
        3: replace(broadcast[3], commitment=(*broadcast[3].commitment, *broadcast[3].commitment)),
    }
    with pytest.raises(ThresholdError) as raised:
        refresh.refresh_dkg_part2(suite, firsts[1][0], bad)
    assert raised.value.culprits == (2, 3)
    # A DKG secret package (non-zero constant term) is not a refresh package.
    dkg_secret, _ = dkg.part1(suite, 1, 3, 2)
    with pytest.raises(ThresholdError, match="zero constant term"):
        refresh.refresh_dkg_part2(suite, dkg_secret, others(broadcast, 1))

    inbox = {j: seconds[j][1][1] for j in (2, 3)}
    with pytest.raises(ThresholdError, match="not 1's"):
        refresh.refresh_dkg_shares(suite, seconds[1][0], others(broadcast, 1), inbox, old[2], public)
    with pytest.raises(ThresholdError, match="keeps the threshold"):
        refresh.refresh_dkg_shares(
            suite, seconds[1][0], others(broadcast, 1), inbox, replace(old[1], min_signers=3), public
        )
    # A participant outside the old group cannot take part.
    strangers = {2: broadcast[2], 9: replace(broadcast[3], identifier=9)}
    stranger_inbox = {2: inbox[2], 9: replace(inbox[3], sender=9)}
    with pytest.raises(ThresholdError, match="not in the public key package") as raised:
        refresh.refresh_dkg_shares(suite, seconds[1][0], strangers, stranger_inbox, old[1], public)
    assert raised.value.culprits == (9,)
    new, new_public = refresh.refresh_dkg_shares(
        suite, seconds[1][0], others(broadcast, 1), inbox, old[1], public
    )
    assert set(new_public.verifying_shares) == {1, 2, 3}
    assert g.equal(new_public.group_public_key, public.group_public_key)
    assert new.identifier == 1
