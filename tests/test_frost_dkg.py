"""Distributed key generation: the Zcash Foundation DKG vectors byte for byte, and properties."""

from __future__ import annotations

import hashlib
import importlib
import random
import struct
from collections.abc import Sequence
from dataclasses import replace
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import load_vectors
from lifeboat.threshold import dkg, frost
from lifeboat.threshold.ed25519 import Ed25519Sha512
from lifeboat.threshold.group import Ciphersuite, Element, KeyPackage, PublicKeyPackage, ThresholdError
from lifeboat.threshold.secp256k1 import Secp256k1Sha256


def _taproot() -> ModuleType | None:
    try:
        return importlib.import_module("lifeboat.threshold.taproot")
    except ImportError:  # pragma: no cover - written alongside this module
        return None


TAPROOT = _taproot()

SUITES: dict[str, Ciphersuite] = {"ed25519": Ed25519Sha512(), "secp256k1": Secp256k1Sha256()}
if TAPROOT is not None:
    SUITES["secp256k1-tr"] = TAPROOT.Secp256k1TaprootSha256()

PROPERTY_SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- helpers shared with test_frost_repair_refresh ---------------------------------------------


def is_taproot(suite: Ciphersuite) -> bool:
    return suite.name == "FROST-secp256k1-SHA256-TR-v1"


def run_dkg(
    suite: Ciphersuite, ids: Sequence[int], min_signers: int
) -> tuple[dict[int, KeyPackage], PublicKeyPackage]:
    """Run all three parts for every participant; every participant's public package must agree."""
    firsts = {i: dkg.part1(suite, i, len(ids), min_signers) for i in ids}
    broadcast = {i: package for i, (_, package) in firsts.items()}
    seconds = {i: dkg.part2(suite, firsts[i][0], others(broadcast, i)) for i in ids}
    key_packages: dict[int, KeyPackage] = {}
    publics: list[PublicKeyPackage] = []
    for i in ids:
        inbox = {j: seconds[j][1][i] for j in ids if j != i}
        key_packages[i], public = dkg.part3(suite, seconds[i][0], others(broadcast, i), inbox)
        publics.append(public)
    g = suite.group
    for public in publics[1:]:
        assert g.equal(public.group_public_key, publics[0].group_public_key)
        assert set(public.verifying_shares) == set(ids)
        for j in ids:
            assert g.equal(public.verifying_shares[j], publics[0].verifying_shares[j])
    return key_packages, publics[0]


def others(packages: dict[int, Any], me: int) -> dict[int, Any]:
    return {j: p for j, p in packages.items() if j != me}


def signable(
    suite: Ciphersuite, key_packages: dict[int, KeyPackage], public: PublicKeyPackage
) -> tuple[dict[int, KeyPackage], PublicKeyPackage]:
    """Taproot signs under the tweaked key (frost-secp256k1-tr's post_dkg), in even-y form."""
    if not is_taproot(suite):
        return key_packages, public
    assert TAPROOT is not None
    finished = {i: taproot_post_dkg(suite, kp, public)[0] for i, kp in key_packages.items()}
    finished_public = taproot_post_dkg(suite, next(iter(key_packages.values())), public)[1]
    return (
        {i: TAPROOT.even_y_key_package(kp) for i, kp in finished.items()},
        TAPROOT.even_y_public_key_package(finished_public),
    )


def same_key_package(suite: Ciphersuite, a: KeyPackage, b: KeyPackage) -> bool:
    g = suite.group
    return (
        a.identifier == b.identifier
        and a.signing_share == b.signing_share
        and a.min_signers == b.min_signers
        and g.equal(a.verifying_share, b.verifying_share)
        and g.equal(a.group_public_key, b.group_public_key)
    )


def sign_with(
    suite: Ciphersuite, signers: Sequence[KeyPackage], public: PublicKeyPackage, message: bytes = b"lifeboat"
) -> bytes:
    """A full FROST signing run; raises ThresholdError if the aggregate does not verify."""
    nonces = [frost.commit(suite, kp) for kp in signers]
    commitments = [n.commitment for n in nonces]
    shares = [frost.sign(suite, kp, n, message, commitments) for kp, n in zip(signers, nonces, strict=True)]
    signature = frost.aggregate(suite, commitments, message, shares, public)
    assert frost.verify(suite, public.group_public_key, message, signature)
    return signature


# --- the Zcash Foundation vectors --------------------------------------------------------------


def dkg_vectors(folder: str) -> dict[str, Any]:
    data: dict[str, Any] = load_vectors(f"zf-frost/{folder}/vectors_dkg.json")
    return data


def encode_proof(suite: Ciphersuite, proof: dkg.ProofOfKnowledge) -> bytes:
    g = suite.group
    if is_taproot(suite):
        assert TAPROOT is not None
        return bytes(TAPROOT.x_only(proof[0])) + g.serialize_scalar(proof[1])
    return g.serialize_element(proof[0]) + g.serialize_scalar(proof[1])


def decode_proof(suite: Ciphersuite, data: bytes) -> dkg.ProofOfKnowledge:
    g = suite.group
    if is_taproot(suite):
        assert TAPROOT is not None
        return TAPROOT.lift_x(data[:32]), g.deserialize_scalar(data[32:])
    length = g.element_length
    return g.deserialize_element(data[:length]), g.deserialize_scalar(data[length:])


def taproot_post_dkg(
    suite: Ciphersuite, kp: KeyPackage, public: PublicKeyPackage
) -> tuple[KeyPackage, PublicKeyPackage]:
    """frost-secp256k1-tr's post_dkg: even-y form, then + TapTweak (no final normalisation).

    Applied here unless the suite has its own ``post_dkg`` hook, which part3 has then run.
    """
    assert TAPROOT is not None
    if isinstance(suite, dkg.PostDkg):
        return kp, public
    g = Secp256k1Sha256().group
    base, base_public = TAPROOT.even_y_key_package(kp), TAPROOT.even_y_public_key_package(public)
    t = TAPROOT.taptweak(base.group_public_key)
    tp = g.scalar_base_mult(t)
    tweaked = replace(
        base,
        signing_share=(base.signing_share + t) % g.order,
        verifying_share=g.add(base.verifying_share, tp),
        group_public_key=g.add(base.group_public_key, tp),
    )
    tweaked_public = PublicKeyPackage(
        {i: g.add(y, tp) for i, y in base_public.verifying_shares.items()},
        g.add(base_public.group_public_key, tp),
        public.min_signers,
    )
    return tweaked, tweaked_public


@pytest.mark.parametrize("folder", sorted(SUITES))
def test_zf_dkg_vectors(folder: str) -> None:
    suite = SUITES[folder]
    g = suite.group
    v = dkg_vectors(folder)
    inputs = v["inputs"]
    max_signers, min_signers = v["config"]["MAX_PARTICIPANTS"], v["config"]["MIN_PARTICIPANTS"]
    ids = [inputs[str(n)]["identifier"] for n in range(1, max_signers + 1)]

    secrets, broadcast, published = {}, {}, {}
    for i in ids:
        p = inputs[str(i)]
        a0 = g.deserialize_scalar(bytes.fromhex(p["signing_key"]))
        a1 = g.deserialize_scalar(bytes.fromhex(p["coefficient"]))
        published[i] = dkg.Round1Package(
            i,
            tuple(g.deserialize_element(bytes.fromhex(c)) for c in p["vss_commitments"]),
            decode_proof(suite, bytes.fromhex(p["proof_of_knowledge"])),
        )
        # The vectors do not carry the proof nonce; recover it from the published proof and
        # check that part1 then rebuilds the commitment and the proof byte for byte.
        r, mu = published[i].proof_of_knowledge
        k = (mu - a0 * dkg.challenge(suite, i, g.scalar_base_mult(a0), r)) % g.order
        secrets[i], broadcast[i] = dkg.part1(
            suite, i, max_signers, min_signers, secret=a0, coefficients=[a1], nonce=k
        )
        assert [g.serialize_element(c).hex() for c in broadcast[i].commitment] == p["vss_commitments"]
        assert encode_proof(suite, broadcast[i].proof_of_knowledge).hex() == p["proof_of_knowledge"]
        assert dkg.verify_proof_of_knowledge(
            suite, i, published[i].commitment, published[i].proof_of_knowledge
        )

    seconds = {i: dkg.part2(suite, secrets[i], others(published, i)) for i in ids}
    for i in ids:
        for sender, share in inputs[str(i)]["signing_shares"].items():
            assert g.serialize_scalar(seconds[int(sender)][1][i].signing_share).hex() == share
    for i in ids:
        p = inputs[str(i)]
        inbox = {j: seconds[j][1][i] for j in ids if j != i}
        kp, public = dkg.part3(suite, seconds[i][0], others(published, i), inbox)
        if is_taproot(suite):
            raw_kp = kp
            kp, public = taproot_post_dkg(suite, kp, public)
            if not isinstance(suite, dkg.PostDkg):
                # Lifeboat's Taproot tweak helper signs for the same key.
                assert TAPROOT is not None
                assert same_key_package(
                    suite,
                    TAPROOT.even_y_key_package(TAPROOT.tweak_key_package(raw_kp)),
                    TAPROOT.even_y_key_package(kp),
                )
        assert g.serialize_scalar(kp.signing_share).hex() == p["signing_share"]
        assert g.serialize_element(kp.verifying_share).hex() == p["verifying_share"]
        assert g.serialize_element(kp.group_public_key).hex() == inputs["verifying_key"]
        assert g.serialize_element(public.group_public_key).hex() == inputs["verifying_key"]
        assert public.min_signers == kp.min_signers == min_signers
        for j in ids:
            assert g.serialize_element(public.verifying_shares[j]).hex() == inputs[str(j)]["verifying_share"]


def test_ed25519_challenge_hash_is_frost_core_hdkg() -> None:
    import hashlib

    suite = SUITES["ed25519"]
    digest = hashlib.sha512(b"FROST-ED25519-SHA512-v1dkg" + b"abc").digest()
    assert dkg.hdkg(suite, b"abc") == int.from_bytes(digest, "little") % suite.group.order


# --- properties --------------------------------------------------------------------------------


@st.composite
def dkg_shapes(draw: st.DrawFn) -> tuple[str, list[int], int, list[int]]:
    folder = draw(st.sampled_from(sorted(SUITES)))
    n = draw(st.integers(2, 5))
    t = draw(st.integers(2, n))
    ids = draw(st.lists(st.integers(1, 1000), min_size=n, max_size=n, unique=True))
    signers = draw(st.lists(st.sampled_from(ids), min_size=t, max_size=t, unique=True))
    return folder, ids, t, signers


@PROPERTY_SETTINGS
@given(dkg_shapes())
def test_any_threshold_subset_signs(shape: tuple[str, list[int], int, list[int]]) -> None:
    folder, ids, t, signers = shape
    suite = SUITES[folder]
    key_packages, public = signable(suite, *run_dkg(suite, ids, t))
    for i, kp in key_packages.items():
        assert suite.group.equal(kp.verifying_share, public.verifying_shares[i])
        assert kp.min_signers == t
    sign_with(suite, [key_packages[i] for i in signers], public)
    if t > 2:
        with pytest.raises(ThresholdError, match="fewer than the threshold"):
            sign_with(suite, [key_packages[i] for i in signers[:-1]], public)


def _round_one(
    suite: Ciphersuite, ids: Sequence[int], t: int
) -> tuple[dict[int, dkg.Round1SecretPackage], dict[int, dkg.Round1Package]]:
    firsts = {i: dkg.part1(suite, i, len(ids), t) for i in ids}
    return {i: s for i, (s, _) in firsts.items()}, {i: p for i, (_, p) in firsts.items()}


@PROPERTY_SETTINGS
@given(st.sampled_from(sorted(SUITES)), st.integers(3, 5), st.data())
def test_every_bad_proof_is_named(folder: str, n: int, data: st.DataObject) -> None:
    suite = SUITES[folder]
    ids = list(range(1, n + 1))
    secrets, broadcast = _round_one(suite, ids, 2)
    cheats = data.draw(st.lists(st.sampled_from(ids), min_size=1, max_size=n - 1, unique=True))
    for i in cheats:
        r, mu = broadcast[i].proof_of_knowledge
        broadcast[i] = replace(broadcast[i], proof_of_knowledge=(r, (mu + 1) % suite.group.order))
    for i in ids:
        expected = tuple(sorted(set(cheats) - {i}))
        if not expected:
            dkg.part2(suite, secrets[i], others(broadcast, i))
            continue
        with pytest.raises(ThresholdError, match="invalid proof of knowledge") as raised:
            dkg.part2(suite, secrets[i], others(broadcast, i))
        assert raised.value.culprits == expected


@PROPERTY_SETTINGS
@given(st.sampled_from(sorted(SUITES)), st.integers(3, 5), st.data())
def test_every_corrupted_share_is_named(folder: str, n: int, data: st.DataObject) -> None:
    suite = SUITES[folder]
    ids = list(range(1, n + 1))
    t = data.draw(st.integers(2, n))
    secrets, broadcast = _round_one(suite, ids, t)
    seconds = {i: dkg.part2(suite, secrets[i], others(broadcast, i)) for i in ids}
    victim = data.draw(st.sampled_from(ids))
    senders = [j for j in ids if j != victim]
    cheats = data.draw(st.lists(st.sampled_from(senders), min_size=1, max_size=len(senders), unique=True))
    inbox = {j: seconds[j][1][victim] for j in senders}
    for j in cheats:
        inbox[j] = replace(inbox[j], signing_share=(inbox[j].signing_share + 1) % suite.group.order)
    with pytest.raises(ThresholdError, match="does not match its commitment") as raised:
        dkg.part3(suite, seconds[victim][0], others(broadcast, victim), inbox)
    assert raised.value.culprits == tuple(sorted(cheats))


# --- refusals ----------------------------------------------------------------------------------


@pytest.fixture(params=sorted(SUITES))
def suite(request: pytest.FixtureRequest) -> Ciphersuite:
    chosen: Ciphersuite = SUITES[request.param]
    return chosen


def test_part1_refuses_bad_parameters(suite: Ciphersuite) -> None:
    for max_signers, min_signers in [(3, 1), (2, 3), (256, 2)]:
        with pytest.raises(ThresholdError):
            dkg.part1(suite, 1, max_signers, min_signers)
    for identifier in (0, -1, suite.group.order):
        with pytest.raises(ThresholdError, match="identifier"):
            dkg.part1(suite, identifier, 3, 2)
    with pytest.raises(ThresholdError, match="coefficients"):
        dkg.part1(suite, 1, 3, 2, coefficients=[1, 2])
    with pytest.raises(ThresholdError, match="secret"):
        dkg.part1(suite, 1, 3, 2, secret=0)
    with pytest.raises(ThresholdError, match="non-zero"):
        dkg.part1(suite, 1, 3, 3, coefficients=[5, suite.group.order])


def test_part2_refuses_malformed_round_one(suite: Ciphersuite) -> None:
    ids = [1, 2, 3, 4]
    secrets, broadcast = _round_one(suite, ids, 3)
    mine = secrets[1]
    inbox = others(broadcast, 1)
    g = suite.group

    with pytest.raises(ThresholdError, match="expected 3"):
        dkg.part2(suite, mine, {2: inbox[2], 3: inbox[3]})
    with pytest.raises(ThresholdError, match="this participant"):
        dkg.part2(suite, mine, {1: broadcast[1], 2: inbox[2], 3: inbox[3]})
    with pytest.raises(ThresholdError, match="identifier"):
        dkg.part2(suite, mine, {0: inbox[2], 3: inbox[3], 4: inbox[4]})

    short = replace(inbox[2], commitment=inbox[2].commitment[:2])
    identity_first = replace(inbox[3], commitment=(g.identity(), *inbox[3].commitment[1:]))
    identity_last = replace(inbox[4], commitment=(*inbox[4].commitment[:2], g.identity()))
    with pytest.raises(ThresholdError) as raised:
        dkg.part2(suite, mine, {2: short, 3: identity_first, 4: identity_last})
    assert raised.value.culprits == (2, 3, 4)
    assert "2 elements instead of 3" in str(raised.value)
    assert "identity" in str(raised.value)

    # A package relayed under another participant's name.
    with pytest.raises(ThresholdError, match="labelled") as raised:
        dkg.part2(suite, mine, {2: inbox[3], 3: inbox[2], 4: inbox[4]})
    assert raised.value.culprits == (2, 3)

    # A valid proof by participant 2 does not pass for participant 3 (the identifier is bound).
    stolen = replace(inbox[3], commitment=inbox[2].commitment, proof_of_knowledge=inbox[2].proof_of_knowledge)
    with pytest.raises(ThresholdError, match="proof of knowledge") as raised:
        dkg.part2(suite, mine, {2: inbox[2], 3: stolen, 4: inbox[4]})
    assert raised.value.culprits == (3,)


def _two_of_three_to_part3(
    suite: Ciphersuite,
) -> tuple[
    dict[int, Any], dkg.Round2SecretPackage, dict[int, dkg.Round1Package], dict[int, dkg.Round2Package]
]:
    """A 2-of-3 DKG through part2: every part2 result, and participant 1's inputs to part3."""
    ids = [1, 2, 3]
    secrets, broadcast = _round_one(suite, ids, 2)
    seconds = {i: dkg.part2(suite, secrets[i], others(broadcast, i)) for i in ids}
    return seconds, seconds[1][0], others(broadcast, 1), {j: seconds[j][1][1] for j in (2, 3)}


def test_part3_refuses_mismatched_round_two(suite: Ciphersuite) -> None:
    seconds, mine, r1, inbox = _two_of_three_to_part3(suite)

    with pytest.raises(ThresholdError, match="missing"):
        dkg.part3(suite, mine, r1, {2: inbox[2]})
    # Participant 3 forwards the share it was dealt for participant 2.
    misdirected = {2: inbox[2], 3: seconds[3][1][2]}
    with pytest.raises(ThresholdError, match="labelled") as raised:
        dkg.part3(suite, mine, r1, misdirected)
    assert raised.value.culprits == (3,)
    out_of_range = {2: inbox[2], 3: replace(inbox[3], signing_share=suite.group.order)}
    with pytest.raises(ThresholdError) as raised:
        dkg.part3(suite, mine, r1, out_of_range)
    assert raised.value.culprits == (3,)
    # Honest run for comparison.
    kp, public = dkg.part3(suite, mine, r1, inbox)
    assert kp.identifier == 1 and set(public.verifying_shares) == {1, 2, 3}


def test_part3_refuses_round_one_packages_part2_did_not_check(suite: Ciphersuite) -> None:
    """part3 trusts the proofs part2 checked only for the very packages part2 was given."""
    _, mine, r1, inbox = _two_of_three_to_part3(suite)
    assert mine.round1_digest == dkg.round1_digest(suite, r1)

    # Participant 3 runs part1 again: a valid package (good proof), but not the one part2 checked.
    _, other3 = dkg.part1(suite, 3, 3, 2)
    assert dkg.verify_proof_of_knowledge(suite, 3, other3.commitment, other3.proof_of_knowledge)
    r, mu = r1[2].proof_of_knowledge
    g = suite.group
    tampered = [
        {2: r1[2], 3: other3},
        {2: replace(r1[2], proof_of_knowledge=(r, (mu + 1) % g.order)), 3: r1[3]},
        {2: replace(r1[2], proof_of_knowledge=(r, mu + g.order)), 3: r1[3]},
        {
            2: replace(r1[2], commitment=(r1[2].commitment[0], g.add(r1[2].commitment[1], g.generator()))),
            3: r1[3],
        },
    ]
    for packages in tampered:
        with pytest.raises(ThresholdError, match="not the ones part2 checked"):
            dkg.part3(suite, mine, packages, inbox)
    # The digest depends on every sender's identifier: the same packages under swapped keys
    # are refused before the digest is even compared (they are labelled as someone else's).
    with pytest.raises(ThresholdError, match="labelled"):
        dkg.part3(suite, mine, {2: r1[3], 3: r1[2]}, inbox)
    # A digest from another run is refused too, even with this run's packages.
    with pytest.raises(ThresholdError, match="not the ones part2 checked"):
        dkg.part3(suite, replace(mine, round1_digest=bytes(32)), r1, inbox)
    kp, _ = dkg.part3(suite, mine, r1, inbox)
    assert kp.identifier == 1


def test_round1_digest_is_the_documented_one(suite: Ciphersuite) -> None:
    """docs/formats.md (``dkg-round2-secret``, version 2) is enough to recompute the digest."""
    _, broadcast = _round_one(suite, [1, 2, 4], 2)
    packages = others(broadcast, 1)
    g = suite.group
    label, context = b"lifeboat-frost-dkg-round1-packages-v1", suite.name.encode("ascii")
    data = struct.pack(">I", len(label)) + label + struct.pack(">I", len(context)) + context
    data += struct.pack(">I", len(packages))
    for sender in (2, 4):
        package = packages[sender]
        r, mu = package.proof_of_knowledge
        data += g.serialize_scalar(sender) + g.serialize_scalar(package.identifier)
        data += struct.pack(">I", len(package.commitment))
        data += b"".join(g.serialize_element(e) for e in package.commitment)
        data += g.serialize_element(r) + g.serialize_scalar(mu)
    assert dkg.round1_digest(suite, packages) == hashlib.sha256(data).digest()


def test_part3_without_a_digest_checks_the_proofs_again(suite: Ciphersuite) -> None:
    """A round-two secret from before the digest (or built without one) is still safe to use."""
    _, mine, r1, inbox = _two_of_three_to_part3(suite)
    mine = replace(mine, round1_digest=None)
    r, mu = r1[3].proof_of_knowledge
    bad = {2: r1[2], 3: replace(r1[3], proof_of_knowledge=(r, (mu + 1) % suite.group.order))}
    with pytest.raises(ThresholdError, match="invalid proof of knowledge") as raised:
        dkg.part3(suite, mine, bad, inbox)
    assert raised.value.culprits == (3,)
    kp, _ = dkg.part3(suite, mine, r1, inbox)
    assert kp.identifier == 1


def test_secret_packages_hide_their_secrets(suite: Ciphersuite) -> None:
    secret, package = dkg.part1(suite, 7, 3, 2, secret=123456789, coefficients=[987654321])
    assert "123456789" not in repr(secret) and "987654321" not in repr(secret)
    assert "<secret>" in repr(secret)
    _, broadcast = _round_one(suite, [1, 2], 2)
    secret1, _ = dkg.part1(suite, 3, 3, 2)
    second, shares = dkg.part2(suite, secret1, broadcast)
    assert "<secret>" in repr(second) and str(second.secret_share) not in repr(second)
    for share in shares.values():
        assert str(share.signing_share) not in repr(share) and "<secret>" in repr(share)
    assert package.identifier == 7


def test_nonce_is_normalised_for_bip340() -> None:
    if TAPROOT is None:  # pragma: no cover
        pytest.skip("no Taproot suite")
    suite = SUITES["secp256k1-tr"]
    rng = random.Random(1)
    for _ in range(8):
        _, package = dkg.part1(suite, 1, 2, 2, nonce=rng.randrange(1, suite.group.order))
        r: Element = package.proof_of_knowledge[0]
        assert TAPROOT.has_even_y(r)
        assert dkg.verify_proof_of_knowledge(suite, 1, package.commitment, package.proof_of_knowledge)
