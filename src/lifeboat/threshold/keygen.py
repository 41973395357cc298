"""Trusted-dealer key generation with verifiable secret sharing (RFC 9591 appendix C)."""

from __future__ import annotations

import secrets as _random
from collections.abc import Sequence

from lifeboat.threshold.frost import check_identifier
from lifeboat.threshold.group import Ciphersuite, Element, KeyPackage, PublicKeyPackage, ThresholdError

MAX_PARTICIPANTS = 255


def random_scalar(suite: Ciphersuite) -> int:
    """A uniformly random non-zero scalar."""
    order = suite.group.order
    return 1 + _random.randbelow(order - 1)


def polynomial_evaluate(x: int, coefficients: Sequence[int], order: int) -> int:
    """RFC 9591 4.2.1 (Horner's rule): f(x) for coefficients constant-first."""
    value = 0
    if 0 <= x < 1 << 32:
        # Participant identifiers are small: each step then grows the value by at most 32 bits,
        # and one reduction at the end costs less than one at every step.
        for coefficient in reversed(coefficients):
            value = value * x + coefficient
        return value % order
    for coefficient in reversed(coefficients):
        value = (value * x + coefficient) % order
    return value


def vss_commit(suite: Ciphersuite, coefficients: Sequence[int]) -> list[Element]:
    return [suite.group.scalar_base_mult(c) for c in coefficients]


def evaluate_commitment(suite: Ciphersuite, commitment: Sequence[Element], identifier: int) -> Element:
    """sum_j commitment[j] * identifier^j: the public image of f(identifier)."""
    g = suite.group
    total = g.identity()
    for element in reversed(commitment):
        total = g.add(g.scalar_mult(identifier, total), element)
    return total


def vss_verify(suite: Ciphersuite, identifier: int, share: int, commitment: Sequence[Element]) -> bool:
    """RFC 9591 C.2: whether ``share`` is f(identifier) for the committed polynomial."""
    g = suite.group
    return g.equal(g.scalar_base_mult(share), evaluate_commitment(suite, commitment, identifier))


def check_parameters(min_signers: int, max_signers: int) -> None:
    if not 2 <= min_signers <= max_signers:
        raise ThresholdError(
            f"the threshold must be between 2 and the number of participants, not {min_signers}"
        )
    if max_signers > MAX_PARTICIPANTS:
        raise ThresholdError(f"at most {MAX_PARTICIPANTS} participants")


def trusted_dealer_keygen(
    suite: Ciphersuite,
    min_signers: int,
    max_signers: int,
    secret_key: int | None = None,
    coefficients: Sequence[int] | None = None,
    identifiers: Sequence[int] | None = None,
) -> tuple[list[KeyPackage], PublicKeyPackage, list[Element]]:
    """Split a (fresh or given) group secret; return key packages, the public package, the VSS commitment."""
    check_parameters(min_signers, max_signers)
    order = suite.group.order
    if secret_key is None:
        secret_key = random_scalar(suite)
    if coefficients is None:
        coefficients = [random_scalar(suite) for _ in range(min_signers - 1)]
    if len(coefficients) != min_signers - 1:
        raise ThresholdError("a t-of-n dealer needs t - 1 random coefficients")
    ids = list(identifiers) if identifiers is not None else list(range(1, max_signers + 1))
    if len(ids) != max_signers or len(set(ids)) != len(ids):
        raise ThresholdError("identifiers must be distinct, one per participant")
    for identifier in ids:
        check_identifier(suite, identifier)
    polynomial = [secret_key % order, *coefficients]
    commitment = vss_commit(suite, polynomial)
    group_public_key = commitment[0]
    packages = []
    verifying_shares: dict[int, Element] = {}
    for identifier in ids:
        share = polynomial_evaluate(identifier, polynomial, order)
        verifying = suite.group.scalar_base_mult(share)
        verifying_shares[identifier] = verifying
        packages.append(KeyPackage(identifier, share, verifying, group_public_key, min_signers))
    return packages, PublicKeyPackage(verifying_shares, group_public_key, min_signers), commitment
