"""Repairable threshold scheme: rebuild a lost signing share, or enrol a new participant.

This is the protocol of Laing and Stinson (https://eprint.iacr.org/2017/1155) in the shape of
the Zcash Foundation's ``frost-core`` (``keys::repairable``). At least ``min_signers`` helpers
take part. The share of the participant being repaired is ``s_p = sum_i zeta_i s_i`` over the
helpers ``i``, where ``zeta_i`` is helper ``i``'s Lagrange coefficient at ``x = p``; so:

1. :func:`repair_share_step_1`: each helper splits its term ``zeta_i s_i`` into one random
   *delta* per helper (itself included) that add up to it, and sends each delta to its helper.
2. :func:`repair_share_step_2`: each helper adds the deltas it received into a *sigma* and
   sends it to the participant being repaired.
3. :func:`repair_share_step_3`: the participant adds the sigmas, obtaining ``s_p``, and checks
   it against the public key package before building its key package.

A helper sees one random delta from each other helper and nothing that depends on fewer than
all of them, so no helper learns another's share or the repaired one; only the participant
being repaired learns ``s_p``. Every delta and sigma is secret: send them over confidential,
authenticated channels. The same steps produce a share for an identifier that never had one
(enrolment): the new share lies on the same polynomial, and :func:`enrol` extends the public
key package with its verifying share. Enrolment does not change the threshold.
"""

from __future__ import annotations

from collections.abc import Sequence

from lifeboat.threshold.frost import check_identifier
from lifeboat.threshold.group import (
    Ciphersuite,
    Element,
    KeyPackage,
    PublicKeyPackage,
    ThresholdError,
    sum_elements,
)
from lifeboat.threshold.keygen import random_scalar


def lagrange_coefficient(order: int, identifiers: Sequence[int], x_i: int, x: int) -> int:
    """The Lagrange basis polynomial of ``x_i`` over ``identifiers``, evaluated at ``x``."""
    if x_i not in identifiers:
        raise ThresholdError(f"participant {x_i} is not in the interpolation set")
    numerator, denominator = 1, 1
    for x_j in identifiers:
        if x_j == x_i:
            continue
        numerator = numerator * (x - x_j) % order
        denominator = denominator * (x_i - x_j) % order
    return numerator * pow(denominator, -1, order) % order


def _check_helpers(suite: Ciphersuite, helpers: Sequence[int], participant: int, min_signers: int) -> None:
    check_identifier(suite, participant)
    for helper in helpers:
        check_identifier(suite, helper)
    if len(set(helpers)) != len(helpers):
        raise ThresholdError("a helper appears twice in the helper list")
    if len(helpers) < min_signers:
        raise ThresholdError(
            f"a repair needs at least the threshold of {min_signers} helpers, not {len(helpers)}"
        )
    if participant in helpers:
        raise ThresholdError(f"participant {participant} cannot help repair its own share")


def repair_share_step_1(
    suite: Ciphersuite,
    helpers: Sequence[int],
    key_package: KeyPackage,
    participant: int,
    *,
    random_values: Sequence[int] | None = None,
) -> dict[int, int]:
    """Step 1, run by each helper: the deltas to send, one per helper (its own included).

    ``helpers`` lists every helper taking part (the same list for all of them) and
    ``key_package`` is this helper's. ``random_values`` (``len(helpers) - 1`` scalars, drawn
    at random unless given) become the deltas of the helpers in increasing identifier order;
    the last helper's delta makes the sum ``zeta_i s_i``.
    """
    _check_helpers(suite, helpers, participant, key_package.min_signers)
    if key_package.identifier not in helpers:
        raise ThresholdError(f"helper {key_package.identifier} is not in the helper list")
    order = suite.group.order
    ordered = sorted(helpers)
    if random_values is None:
        random_values = [random_scalar(suite) for _ in ordered[:-1]]
    if len(random_values) != len(ordered) - 1:
        raise ThresholdError(f"{len(ordered)} helpers need {len(ordered) - 1} random values")
    zeta = lagrange_coefficient(order, ordered, key_package.identifier, participant)
    deltas = {helper: value % order for helper, value in zip(ordered, random_values, strict=False)}
    deltas[ordered[-1]] = (zeta * key_package.signing_share - sum(random_values)) % order
    return deltas


def repair_share_step_2(suite: Ciphersuite, deltas: Sequence[int]) -> int:
    """Step 2, run by each helper: its sigma, the sum of the deltas it received and its own."""
    return sum(deltas) % suite.group.order


def recover_signing_share(suite: Ciphersuite, sigmas: Sequence[int]) -> int:
    """The repaired share: the sum of the helpers' sigmas (no check; see step 3)."""
    return sum(sigmas) % suite.group.order


def verifying_share_for(suite: Ciphersuite, public_key_package: PublicKeyPackage, identifier: int) -> Element:
    """The verifying share of ``identifier``: recorded, or interpolated for a new identifier.

    For a new identifier it is ``sum_j lambda_j(identifier) Y_j`` over the ``min_signers``
    smallest recorded identifiers; in a consistent package every choice gives the same point.
    """
    check_identifier(suite, identifier)
    recorded = public_key_package.verifying_shares.get(identifier)
    if recorded is not None:
        return recorded
    basis = sorted(public_key_package.verifying_shares)[: public_key_package.min_signers]
    if len(basis) < public_key_package.min_signers:
        raise ThresholdError("the public key package holds fewer verifying shares than its threshold")
    g = suite.group
    return sum_elements(
        g,
        [
            g.scalar_mult(
                lagrange_coefficient(g.order, basis, j, identifier), public_key_package.verifying_shares[j]
            )
            for j in basis
        ],
    )


def repair_share_step_3(
    suite: Ciphersuite,
    sigmas: Sequence[int],
    participant: int,
    public_key_package: PublicKeyPackage,
) -> KeyPackage:
    """Step 3, run by the participant being repaired: its key package, checked.

    The share must match the verifying share that ``public_key_package`` records for
    ``participant`` or, for a new participant, the one interpolated from the recorded ones;
    otherwise some helper sent a wrong delta or sigma (which one cannot be told from the
    sigmas alone) and :class:`~lifeboat.threshold.group.ThresholdError` is raised.
    """
    g = suite.group
    share = recover_signing_share(suite, sigmas)
    verifying_share = g.scalar_base_mult(share)
    expected = verifying_share_for(suite, public_key_package, participant)
    if not g.equal(verifying_share, expected):
        raise ThresholdError(
            f"the repaired share of participant {participant} does not match its verifying share; "
            "a helper sent a wrong delta or sigma, or the helpers hold shares of another key"
        )
    return KeyPackage(
        participant,
        share,
        verifying_share,
        public_key_package.group_public_key,
        public_key_package.min_signers,
    )


def enrol(suite: Ciphersuite, public_key_package: PublicKeyPackage, identifier: int) -> PublicKeyPackage:
    """The public key package with a verifying share for a newly enrolled ``identifier``."""
    if identifier in public_key_package.verifying_shares:
        raise ThresholdError(f"participant {identifier} is already in the public key package")
    shares = dict(public_key_package.verifying_shares)
    shares[identifier] = verifying_share_for(suite, public_key_package, identifier)
    return PublicKeyPackage(
        dict(sorted(shares.items())), public_key_package.group_public_key, public_key_package.min_signers
    )
