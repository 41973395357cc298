"""ZF FROST signing vectors (Ed25519, secp256k1, secp256k1-tr) byte for byte, and protocol properties.

The Zcash Foundation ``frost`` crates ship ``vectors.json`` (the RFC 9591 keys with other nonce
randomness) and ``vectors-big-identifier.json`` (signers 129, 256 and 257 of 257) per suite; every
intermediate value is checked as in ``test_frost_rfc.py``. The ``secp256k1-tr`` files are the
Taproot suite; its two files are identical in the ZF repository. The Hypothesis properties run
all three suites through a dealer, signing, blame and encoding checks.
"""

from __future__ import annotations

import hashlib
from typing import Any

import nacl.bindings as sodium
import nacl.signing
import pytest
from coincurve import PublicKey, PublicKeyXOnly
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from conftest import load_vectors
from lifeboat.threshold import ed25519, frost, keygen, secp256k1, taproot
from lifeboat.threshold.ed25519 import Ed25519Sha512
from lifeboat.threshold.frost import SignatureShare
from lifeboat.threshold.group import Ciphersuite, EncodingError, KeyPackage, PublicKeyPackage, ThresholdError
from lifeboat.threshold.secp256k1 import Secp256k1Sha256
from lifeboat.threshold.taproot import Secp256k1TaprootSha256

SUITES: dict[str, Ciphersuite] = {
    "ed25519": Ed25519Sha512(),
    "secp256k1": Secp256k1Sha256(),
    "secp256k1-tr": Secp256k1TaprootSha256(),
}
TR = Secp256k1TaprootSha256()
FILES = ("vectors.json", "vectors-big-identifier.json")


def vector(suite: str, name: str) -> dict[str, Any]:
    data: dict[str, Any] = load_vectors(f"zf-frost/{suite}/{name}")
    return data


def prepare(
    suite: Ciphersuite, packages: list[KeyPackage], public: PublicKeyPackage
) -> tuple[list[KeyPackage], PublicKeyPackage]:
    """Key packages as a signer of ``suite`` uses them: even-y form for Taproot, unchanged otherwise."""
    if isinstance(suite, Secp256k1TaprootSha256):
        return [taproot.even_y_key_package(p) for p in packages], taproot.even_y_public_key_package(public)
    return packages, public


def check_final_signature(suite: Ciphersuite, public: PublicKeyPackage, message: bytes, sig: bytes) -> None:
    """The group signature verifies with the suite and with an ordinary single-key verifier."""
    g = suite.group
    assert frost.verify(suite, public.group_public_key, message, sig)
    if isinstance(suite, Ed25519Sha512):
        nacl.signing.VerifyKey(g.serialize_element(public.group_public_key)).verify(message, sig)
    elif isinstance(suite, Secp256k1TaprootSha256):
        assert PublicKeyXOnly(taproot.x_only(public.group_public_key)).verify(sig, message)


# --- the ZF vectors -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("suite_name", sorted(SUITES))
def test_zf_signing_vectors(suite_name: str, name: str) -> None:
    suite = SUITES[suite_name]
    g = suite.group
    v = vector(suite_name, name)
    config, inputs = v["config"], v["inputs"]
    min_signers, max_signers = int(config["MIN_PARTICIPANTS"]), int(config["MAX_PARTICIPANTS"])
    signers = list(inputs["participant_list"])
    assert int(config["NUM_PARTICIPANTS"]) == len(signers)
    secret = g.deserialize_scalar(bytes.fromhex(inputs["group_secret_key"]))
    coefficients = [g.deserialize_scalar(bytes.fromhex(c)) for c in inputs["share_polynomial_coefficients"]]
    assert len(coefficients) == min_signers - 1

    # Lifeboat's dealer stops at 255 participants; past that, deal to the signers only (the
    # shares are the same polynomial's values) and check every listed share against the VSS.
    if max_signers <= keygen.MAX_PARTICIPANTS:
        ids = None
    else:
        with pytest.raises(ThresholdError):
            keygen.trusted_dealer_keygen(suite, min_signers, max_signers, secret, coefficients)
        ids = signers
    packages, public, commitment = keygen.trusted_dealer_keygen(
        suite,
        min_signers,
        max_signers if ids is None else len(ids),
        secret_key=secret,
        coefficients=coefficients,
        identifiers=ids,
    )
    assert g.serialize_element(public.group_public_key).hex() == inputs["verifying_key_key"]
    assert len(inputs["participant_shares"]) == max_signers
    by_id = {p.identifier: p for p in packages}
    polynomial = [secret, *coefficients]
    for entry in inputs["participant_shares"]:
        identifier = entry["identifier"]
        value = keygen.polynomial_evaluate(identifier, polynomial, g.order)
        assert g.serialize_scalar(value).hex() == entry["participant_share"]
        assert keygen.vss_verify(suite, identifier, value, commitment)
        if identifier in by_id:
            assert by_id[identifier].signing_share == value

    if isinstance(suite, Secp256k1TaprootSha256):
        # The vectors' group key has even y, so the even-y form changes nothing here;
        # test_taproot_odd_group_key covers the negation.
        assert taproot.has_even_y(public.group_public_key)
    prepared, public = prepare(suite, packages, public)
    by_id = {p.identifier: p for p in prepared}

    message = bytes.fromhex(inputs["message"])
    nonces = {}
    for out in v["round_one_outputs"]["outputs"]:
        n = frost.commit(
            suite,
            by_id[out["identifier"]],
            bytes.fromhex(out["hiding_nonce_randomness"]),
            bytes.fromhex(out["binding_nonce_randomness"]),
        )
        assert g.serialize_scalar(n.hiding).hex() == out["hiding_nonce"]
        assert g.serialize_scalar(n.binding).hex() == out["binding_nonce"]
        assert g.serialize_element(n.commitment.hiding).hex() == out["hiding_nonce_commitment"]
        assert g.serialize_element(n.commitment.binding).hex() == out["binding_nonce_commitment"]
        nonces[n.identifier] = n
    assert sorted(nonces) == sorted(signers)
    commitments = [n.commitment for n in nonces.values()]
    rho_inputs = frost.binding_factor_inputs(suite, public.group_public_key, commitments, message)
    factors = frost.compute_binding_factors(suite, public.group_public_key, commitments, message)
    for out in v["round_one_outputs"]["outputs"]:
        assert rho_inputs[out["identifier"]].hex() == out["binding_factor_input"]
        assert g.serialize_scalar(factors[out["identifier"]]).hex() == out["binding_factor"]

    ours, theirs = [], []
    for out in v["round_two_outputs"]["outputs"]:
        identifier = out["identifier"]
        share = frost.sign(suite, by_id[identifier], nonces[identifier], message, commitments)
        assert g.serialize_scalar(share.share).hex() == out["sig_share"]
        assert frost.verify_signature_share(
            suite, share, public.verifying_shares[identifier], commitments, public.group_public_key, message
        )
        ours.append(share)
        theirs.append(SignatureShare(identifier, g.deserialize_scalar(bytes.fromhex(out["sig_share"]))))

    for shares in (ours, theirs):
        signature = frost.aggregate(suite, commitments, message, shares, public)
        assert signature.hex() == v["final_output"]["sig"]
        check_final_signature(suite, public, message, signature)


def test_taproot_big_identifier_file_is_the_plain_one() -> None:
    """ZF ships the same file twice for -tr; keep noticing if that ever changes."""
    assert vector("secp256k1-tr", "vectors.json") == vector("secp256k1-tr", "vectors-big-identifier.json")


# --- Taproot specifics against the vectors ----------------------------------------------------------


def tr_vector_setup() -> tuple[dict[str, Any], int, list[int]]:
    v = vector("secp256k1-tr", "vectors.json")
    g = TR.group
    secret = g.deserialize_scalar(bytes.fromhex(v["inputs"]["group_secret_key"]))
    coefficients = [
        g.deserialize_scalar(bytes.fromhex(c)) for c in v["inputs"]["share_polynomial_coefficients"]
    ]
    return v, secret, coefficients


def tr_sign(
    v: dict[str, Any], packages: list[KeyPackage], public: PublicKeyPackage, message: bytes
) -> tuple[bytes, dict[int, bytes]]:
    """Sign with the vector's nonce randomness; return the signature and the binding factor inputs."""
    by_id = {p.identifier: p for p in packages}
    nonces = [
        frost.commit(
            TR,
            by_id[out["identifier"]],
            bytes.fromhex(out["hiding_nonce_randomness"]),
            bytes.fromhex(out["binding_nonce_randomness"]),
        )
        for out in v["round_one_outputs"]["outputs"]
    ]
    commitments = [n.commitment for n in nonces]
    shares = [frost.sign(TR, by_id[n.identifier], n, message, commitments) for n in nonces]
    inputs = frost.binding_factor_inputs(TR, public.group_public_key, commitments, message)
    return frost.aggregate(TR, commitments, message, shares, public), inputs


def test_taproot_odd_group_key() -> None:
    """A dealer for -f(x) gives the group key -PK (odd y); its even-y form is the vectors' packages.

    ``frost-secp256k1-tr`` negates the key package before computing binding factors, so they hash
    ``02 || x(PK)``; with the same nonces the signature is the vectors' signature byte for byte.
    """
    v, secret, coefficients = tr_vector_setup()
    order = TR.group.order
    packages, public, _ = keygen.trusted_dealer_keygen(
        TR, 2, 3, secret_key=order - secret, coefficients=[order - c for c in coefficients]
    )
    assert not taproot.has_even_y(public.group_public_key)
    message = bytes.fromhex(v["inputs"]["message"])
    nonces = [frost.commit(TR, p) for p in packages[:2]]
    commitments = [n.commitment for n in nonces]
    # The suite takes the even-y form itself (frost-core's pre_sign / pre_aggregate): packages
    # with an odd-y group key sign as they are, and the signature is BIP-340 under x(PK).
    shares = [frost.sign(TR, p, n, message, commitments) for p, n in zip(packages[:2], nonces, strict=True)]
    direct = frost.aggregate(TR, commitments, message, shares, public)
    assert TR.verify_x_only(taproot.x_only(public.group_public_key), message, direct)

    prepared, public = prepare(TR, packages, public)
    assert TR.group.serialize_element(public.group_public_key).hex() == v["inputs"]["verifying_key_key"]
    signature, inputs = tr_sign(v, prepared, public, message)
    for out in v["round_one_outputs"]["outputs"]:
        assert inputs[out["identifier"]].hex() == out["binding_factor_input"]
    assert signature.hex() == v["final_output"]["sig"]


@pytest.mark.parametrize("merkle_root", [b"", hashlib.sha256(b"a script tree").digest()])
def test_taproot_tweak(merkle_root: bytes) -> None:
    """Tweaked packages sign for the BIP-341 output key Q = P + hashTapTweak(x(P) || root)·G."""
    v, secret, coefficients = tr_vector_setup()
    packages, public, _ = keygen.trusted_dealer_keygen(TR, 2, 3, secret_key=secret, coefficients=coefficients)
    internal = taproot.x_only(public.group_public_key)
    # BIP-341 taproot_tweak_pubkey, computed here with coincurve alone.
    tweak = hashlib.sha256(hashlib.sha256(b"TapTweak").digest() * 2 + internal + merkle_root).digest()
    expected = PublicKey(b"\x02" + internal).add(tweak).format()[1:]
    assert taproot.taproot_output_key(public.group_public_key, merkle_root) == expected

    tweaked = [taproot.tweak_key_package(p, merkle_root) for p in packages]
    tweaked_public = taproot.tweak_public_key_package(public, merkle_root)
    assert taproot.x_only(tweaked_public.group_public_key) == expected
    assert taproot.has_even_y(tweaked_public.group_public_key)
    for p in tweaked:
        assert TR.group.equal(p.group_public_key, tweaked_public.group_public_key)
        assert TR.group.equal(p.verifying_share, tweaked_public.verifying_shares[p.identifier])
        assert TR.group.equal(TR.group.scalar_base_mult(p.signing_share), p.verifying_share)
    message = bytes.fromhex(v["inputs"]["message"])
    signature, _ = tr_sign(v, tweaked, tweaked_public, message)
    assert PublicKeyXOnly(expected).verify(signature, message)
    assert not PublicKeyXOnly(internal).verify(signature, message)


def test_taproot_tweak_refuses_bad_merkle_root() -> None:
    with pytest.raises(ThresholdError, match="merkle root"):
        taproot.taptweak(TR.group.generator(), b"\x00" * 31)


# --- properties of all three suites -------------------------------------------------------------


@st.composite
def setups(draw: st.DrawFn, suite_name: str) -> tuple[int, int, int, list[int], list[int]]:
    """(t, n, secret, coefficients, signers) with signers a t-to-n subset of 1..n, n <= 5."""
    order = SUITES[suite_name].group.order
    n = draw(st.integers(2, 5))
    t = draw(st.integers(2, n))
    secret = draw(st.integers(1, order - 1))
    coefficients = draw(st.lists(st.integers(1, order - 1), min_size=t - 1, max_size=t - 1))
    signers = draw(st.lists(st.integers(1, n), min_size=t, max_size=n, unique=True))
    return t, n, secret, coefficients, signers


def deal(
    suite: Ciphersuite, t: int, n: int, secret: int, coefficients: list[int]
) -> tuple[dict[int, KeyPackage], PublicKeyPackage]:
    packages, public, _ = keygen.trusted_dealer_keygen(suite, t, n, secret, coefficients)
    prepared, public = prepare(suite, packages, public)
    return {p.identifier: p for p in prepared}, public


def round_one(
    suite: Ciphersuite, packages: dict[int, KeyPackage], signers: list[int], seed: bytes
) -> list[frost.SigningNonces]:
    return [
        frost.commit(
            suite,
            packages[i],
            hashlib.sha256(seed + bytes([i, 0])).digest(),
            hashlib.sha256(seed + bytes([i, 1])).digest(),
        )
        for i in signers
    ]


PROPERTY = settings(max_examples=20, deadline=None)


@pytest.mark.parametrize("suite_name", sorted(SUITES))
def test_any_threshold_subset_signs(suite_name: str) -> None:
    suite = SUITES[suite_name]

    @PROPERTY
    @given(setups(suite_name), st.binary(max_size=40), st.binary(min_size=8, max_size=8))
    def check(setup: tuple[int, int, int, list[int], list[int]], message: bytes, seed: bytes) -> None:
        t, n, secret, coefficients, signers = setup
        packages, public = deal(suite, t, n, secret, coefficients)
        nonces = round_one(suite, packages, signers, seed)
        commitments = [x.commitment for x in nonces]
        shares = [frost.sign(suite, packages[x.identifier], x, message, commitments) for x in nonces]
        signature = frost.aggregate(suite, commitments, message, shares, public)
        check_final_signature(suite, public, message, signature)
        # The group key is the dealer's secret times the generator (up to sign for Taproot).
        expected = suite.group.scalar_base_mult(secret)
        if isinstance(suite, Secp256k1TaprootSha256):
            expected = taproot.even_y(expected)
        assert suite.group.equal(public.group_public_key, expected)
        assert not frost.verify(suite, public.group_public_key, message + b"!", signature)

    check()


def test_taproot_tweaked_subsets_sign() -> None:
    @PROPERTY
    @given(setups("secp256k1-tr"), st.binary(max_size=40), st.binary(max_size=32))
    def check(setup: tuple[int, int, int, list[int], list[int]], message: bytes, root: bytes) -> None:
        t, n, secret, coefficients, signers = setup
        merkle_root = hashlib.sha256(root).digest() if root else b""
        packages, public, _ = keygen.trusted_dealer_keygen(TR, t, n, secret, coefficients)
        output_key = taproot.taproot_output_key(public.group_public_key, merkle_root)
        tweaked = {p.identifier: taproot.tweak_key_package(p, merkle_root) for p in packages}
        tweaked_public = taproot.tweak_public_key_package(public, merkle_root)
        nonces = round_one(TR, tweaked, signers, root)
        commitments = [x.commitment for x in nonces]
        shares = [frost.sign(TR, tweaked[x.identifier], x, message, commitments) for x in nonces]
        signature = frost.aggregate(TR, commitments, message, shares, tweaked_public)
        assert PublicKeyXOnly(output_key).verify(signature, message)
        assert TR.verify_x_only(output_key, message, signature)

    check()


@pytest.mark.parametrize("suite_name", sorted(SUITES))
def test_aggregate_names_every_cheater(suite_name: str) -> None:
    suite = SUITES[suite_name]
    order = suite.group.order

    @PROPERTY
    @given(setups(suite_name), st.data())
    def check(setup: tuple[int, int, int, list[int], list[int]], data: st.DataObject) -> None:
        t, n, secret, coefficients, signers = setup
        cheaters = data.draw(st.lists(st.sampled_from(signers), min_size=1, unique=True), label="cheaters")
        deltas = {i: data.draw(st.integers(1, order - 1), label=f"delta {i}") for i in sorted(cheaters)}
        assume(sum(deltas.values()) % order != 0)  # offsetting errors make a valid signature
        packages, public = deal(suite, t, n, secret, coefficients)
        message = b"blame"
        nonces = round_one(suite, packages, signers, b"seed")
        commitments = [x.commitment for x in nonces]
        shares = []
        for x in nonces:
            share = frost.sign(suite, packages[x.identifier], x, message, commitments)
            shares.append(
                SignatureShare(share.identifier, (share.share + deltas.get(x.identifier, 0)) % order)
            )
        with pytest.raises(ThresholdError) as caught:
            frost.aggregate(suite, commitments, message, shares, public)
        assert caught.value.culprits == tuple(sorted(cheaters))
        for share in shares:
            valid = frost.verify_signature_share(
                suite,
                share,
                public.verifying_shares[share.identifier],
                commitments,
                public.group_public_key,
                message,
            )
            assert valid == (share.identifier not in cheaters)

    check()


def test_aggregate_names_an_outsider_in_place_of_a_signer() -> None:
    """Issue 10 (6b): the outsider is the culprit, and the signer whose share is missing is named."""
    suite = SUITES["ed25519"]
    packages, public = deal(suite, 2, 4, 7, [11])
    nonces = round_one(suite, packages, [1, 3], b"outsider")
    commitments = [x.commitment for x in nonces]
    [own, _] = [frost.sign(suite, packages[x.identifier], x, b"m", commitments) for x in nonces]
    with pytest.raises(ThresholdError) as caught:
        frost.aggregate(suite, commitments, b"m", [own, SignatureShare(4, 1)], public)
    assert str(caught.value) == (
        "a signature share from participant 4, who is not a signer in this signing package; "
        "no signature share from participant(s) [3]"
    )
    assert caught.value.culprits == (4,)
    with pytest.raises(ThresholdError, match=r"participants \[2, 4\], who are not signers") as both:
        frost.aggregate(suite, commitments, b"m", [own, SignatureShare(2, 1), SignatureShare(4, 1)], public)
    assert both.value.culprits == (2, 4)


@pytest.mark.parametrize("suite_name", sorted(SUITES))
def test_fewer_than_threshold_is_refused(suite_name: str) -> None:
    suite = SUITES[suite_name]

    @PROPERTY
    @given(setups(suite_name), st.data())
    def check(setup: tuple[int, int, int, list[int], list[int]], data: st.DataObject) -> None:
        t, n, secret, coefficients, _ = setup
        signers = data.draw(st.lists(st.integers(1, n), min_size=1, max_size=t - 1, unique=True))
        packages, public = deal(suite, t, n, secret, coefficients)
        nonces = round_one(suite, packages, signers, b"few")
        commitments = [x.commitment for x in nonces]
        for x in nonces:
            with pytest.raises(ThresholdError, match="fewer than the threshold"):
                frost.sign(suite, packages[x.identifier], x, b"m", commitments)
        fake = [SignatureShare(i, 1) for i in signers]
        with pytest.raises(ThresholdError, match="fewer than the threshold"):
            frost.aggregate(suite, commitments, b"m", fake, public)

    check()


# --- encodings ----------------------------------------------------------------------------------

SECP = secp256k1.Secp256k1Group()
ED = ed25519.Ed25519Group()
X_G = bytes.fromhex("79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
# Ed25519 points of small order (1, 2, 4, 8), including a non-canonical encoding of the identity.
ED_SMALL_ORDER = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
]


@settings(max_examples=40, deadline=None)
@given(st.integers(secp256k1.FIELD, 2**256 - 1), st.sampled_from([2, 3]))
def test_secp256k1_refuses_x_not_below_p(x: int, prefix: int) -> None:
    with pytest.raises(EncodingError):
        SECP.deserialize_element(bytes([prefix]) + x.to_bytes(32, "big"))
    with pytest.raises(EncodingError):
        taproot.lift_x(x.to_bytes(32, "big"))
    assert not TR.verify_x_only(x.to_bytes(32, "big"), b"", bytes(64))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 255).filter(lambda b: b not in (2, 3)))
def test_secp256k1_refuses_bad_prefix(prefix: int) -> None:
    with pytest.raises(EncodingError):
        SECP.deserialize_element(bytes([prefix]) + X_G)


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=66).filter(lambda b: len(b) != 33))
def test_secp256k1_refuses_wrong_length(data: bytes) -> None:
    with pytest.raises(EncodingError):
        SECP.deserialize_element(data)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, secp256k1.FIELD - 1), st.sampled_from([2, 3]))
def test_secp256k1_decodes_exactly_the_curve_points(x: int, prefix: int) -> None:
    """Below p, an x decodes iff x^3 + 7 is a square mod p, and the encoding round-trips."""
    p = secp256k1.FIELD
    rhs = (x**3 + 7) % p
    on_curve = pow(rhs, (p - 1) // 2, p) in (0, 1)
    data = bytes([prefix]) + x.to_bytes(32, "big")
    if on_curve:
        assert SECP.serialize_element(SECP.deserialize_element(data)) == data
    else:
        with pytest.raises(EncodingError):
            SECP.deserialize_element(data)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**256 - 1))
def test_scalars_at_or_above_the_order_are_refused(value: int) -> None:
    for group, data in (
        (SECP, value.to_bytes(32, "big")),
        (ED, value.to_bytes(32, "little")),
    ):
        if value < group.order:
            assert group.deserialize_scalar(data) == value
        else:
            with pytest.raises(EncodingError):
                group.deserialize_scalar(data)


def test_identity_is_refused() -> None:
    for group in (SECP, ED):
        with pytest.raises(EncodingError):
            group.serialize_element(group.identity())
    for data in (bytes(33), b"\x02" + bytes(32), b"\x03" + bytes(32)):
        with pytest.raises(EncodingError):
            SECP.deserialize_element(data)
    with pytest.raises(EncodingError):
        ED.deserialize_element(ed25519.IDENTITY)


@pytest.mark.parametrize("hex_point", ED_SMALL_ORDER)
def test_ed25519_refuses_small_order_points(hex_point: str) -> None:
    with pytest.raises(EncodingError):
        ED.deserialize_element(bytes.fromhex(hex_point))


def test_ed25519_refuses_points_outside_the_prime_order_subgroup() -> None:
    for hex_point in ED_SMALL_ORDER[4:6]:
        mixed = bytes(sodium.crypto_core_ed25519_add(ed25519.GENERATOR, bytes.fromhex(hex_point)))
        with pytest.raises(EncodingError):
            ED.deserialize_element(mixed)


@settings(max_examples=40, deadline=None)
@given(st.integers(2**255 - 19, 2**255 - 1), st.booleans())
def test_ed25519_refuses_non_canonical_y(y: int, sign: bool) -> None:
    data = (y | (sign << 255)).to_bytes(32, "little")
    with pytest.raises(EncodingError):
        ED.deserialize_element(data)


@settings(max_examples=40, deadline=None)
@given(st.integers(secp256k1.FIELD, 2**256 - 1), st.integers(secp256k1.ORDER, 2**256 - 1))
def test_taproot_signature_encodings_are_refused(r: int, z: int) -> None:
    """A BIP-340 signature with r >= p or z >= n does not decode and does not verify."""
    key = taproot.x_only(TR.group.generator())
    good_r, good_z = X_G, (1).to_bytes(32, "big")
    for sig in (r.to_bytes(32, "big") + good_z, good_r + z.to_bytes(32, "big")):
        with pytest.raises(EncodingError):
            TR.decode_signature(sig)
        assert not TR.verify_x_only(key, b"", sig)
    for length in (0, 63, 65):
        with pytest.raises(EncodingError):
            TR.decode_signature(bytes(length))
