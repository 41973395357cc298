"""RFC 9591 appendix E: every intermediate value, byte for byte, for Ed25519 and secp256k1."""

from __future__ import annotations

from typing import Any

import nacl.signing
import pytest

from conftest import load_vectors
from lifeboat.threshold import frost, keygen
from lifeboat.threshold.ed25519 import Ed25519Sha512
from lifeboat.threshold.group import Ciphersuite
from lifeboat.threshold.secp256k1 import Secp256k1Sha256

SUITES: dict[str, Ciphersuite] = {
    "frost-ed25519-sha512.json": Ed25519Sha512(),
    "frost-secp256k1-sha256.json": Secp256k1Sha256(),
}


def vector(name: str) -> dict[str, Any]:
    data: dict[str, Any] = load_vectors(f"rfc9591/{name}")
    return data


@pytest.mark.parametrize("name", sorted(SUITES))
def test_appendix_e(name: str) -> None:
    suite = SUITES[name]
    g = suite.group
    v = vector(name)
    config, inputs = v["config"], v["inputs"]
    min_signers, max_signers = int(config["MIN_PARTICIPANTS"]), int(config["MAX_PARTICIPANTS"])
    secret = g.deserialize_scalar(bytes.fromhex(inputs["group_secret_key"]))
    coefficients = [g.deserialize_scalar(bytes.fromhex(c)) for c in inputs["share_polynomial_coefficients"]]
    packages, public, commitment = keygen.trusted_dealer_keygen(
        suite, min_signers, max_signers, secret_key=secret, coefficients=coefficients
    )
    assert g.serialize_element(public.group_public_key).hex() == inputs["group_public_key"]
    by_id = {p.identifier: p for p in packages}
    for entry in inputs["participant_shares"]:
        package = by_id[entry["identifier"]]
        assert g.serialize_scalar(package.signing_share).hex() == entry["participant_share"]
        assert keygen.vss_verify(suite, package.identifier, package.signing_share, commitment)

    message = bytes.fromhex(inputs["message"])
    nonces = {}
    for out in v["round_one_outputs"]["outputs"]:
        package = by_id[out["identifier"]]
        n = frost.commit(
            suite,
            package,
            bytes.fromhex(out["hiding_nonce_randomness"]),
            bytes.fromhex(out["binding_nonce_randomness"]),
        )
        assert g.serialize_scalar(n.hiding).hex() == out["hiding_nonce"]
        assert g.serialize_scalar(n.binding).hex() == out["binding_nonce"]
        assert g.serialize_element(n.commitment.hiding).hex() == out["hiding_nonce_commitment"]
        assert g.serialize_element(n.commitment.binding).hex() == out["binding_nonce_commitment"]
        nonces[package.identifier] = n
    commitments = [n.commitment for n in nonces.values()]
    rho_inputs = frost.binding_factor_inputs(suite, public.group_public_key, commitments, message)
    factors = frost.compute_binding_factors(suite, public.group_public_key, commitments, message)
    for out in v["round_one_outputs"]["outputs"]:
        assert rho_inputs[out["identifier"]].hex() == out["binding_factor_input"]
        assert g.serialize_scalar(factors[out["identifier"]]).hex() == out["binding_factor"]

    shares = []
    for out in v["round_two_outputs"]["outputs"]:
        share = frost.sign(suite, by_id[out["identifier"]], nonces[out["identifier"]], message, commitments)
        assert g.serialize_scalar(share.share).hex() == out["sig_share"]
        assert frost.verify_signature_share(
            suite,
            share,
            public.verifying_shares[share.identifier],
            commitments,
            public.group_public_key,
            message,
        )
        shares.append(share)

    signature = frost.aggregate(suite, commitments, message, shares, public)
    assert signature.hex() == v["final_output"]["sig"]
    assert frost.verify(suite, public.group_public_key, message, signature)
    if isinstance(suite, Ed25519Sha512):
        # An ordinary Ed25519 verifier (libsodium, RFC 8032) accepts it.
        nacl.signing.VerifyKey(g.serialize_element(public.group_public_key)).verify(message, signature)
