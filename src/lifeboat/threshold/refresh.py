"""Share refresh: new signing shares of the same group key, optionally for fewer participants.

Everyone adds to its share the share of a fresh random polynomial ``g`` with ``g(0) = 0``.
The sum ``f + g`` still has the group secret as its constant term, so the group key does not
change, but the new shares lie on a different polynomial: a threshold of shares must now come
from the same side of the refresh to sign. Participants left out of a refresh receive nothing
and drop out of the new public key package. The threshold stays what it was.

Two ways to deal ``g``, as in the Zcash Foundation's ``frost-core`` (``keys::refresh``):

* A trusted dealer (:func:`compute_refreshing_shares`, then :func:`refresh_share` by each
  participant). The dealer learns ``g`` but nothing of the group secret or the old shares.
* Every remaining participant deals its own ``g_i`` with ``g_i(0) = 0`` through the steps of
  the DKG (:func:`refresh_dkg_part1`, :func:`refresh_dkg_part2`, :func:`refresh_dkg_shares`),
  and ``g`` is their sum. No proof of knowledge is needed: the constant term of every
  ``g_i`` is fixed to zero by construction (the identity is never sent; receivers put it
  back), so there is no rogue-key contribution to defend against.

Old and new shares stop combining only if, once the refresh is done, every participant erases
its old share and the refresh values it dealt and received. Anyone who knows ``g`` (the dealer,
or any ``t - 1`` participants who kept their received values, since ``g(0) = 0`` is the t-th
point) can turn an old share into the matching new one.

Commitments are sent without their constant term (always the identity, which has no
encoding); the coefficient commitments given here are those of ``x^1 ... x^(t-1)``.
Round-one packages need a broadcast channel and shares confidential, authenticated channels,
as in the DKG.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lifeboat.threshold import dkg
from lifeboat.threshold.frost import check_identifier
from lifeboat.threshold.group import Ciphersuite, Element, KeyPackage, PublicKeyPackage, ThresholdError
from lifeboat.threshold.keygen import (
    check_parameters,
    polynomial_evaluate,
    random_scalar,
    vss_commit,
    vss_verify,
)


@dataclass(frozen=True)
class RefreshingShare:
    """A dealer's refreshing share ``g(identifier)`` for one participant (secret)."""

    identifier: int
    value: int
    commitment: tuple[Element, ...]

    def __repr__(self) -> str:
        return f"RefreshingShare(identifier={self.identifier}, <secret>)"


@dataclass(frozen=True)
class RefreshRound1Package:
    """What a participant broadcasts after :func:`refresh_dkg_part1` (public)."""

    identifier: int
    commitment: tuple[Element, ...]


def _full(suite: Ciphersuite, commitment: Sequence[Element]) -> tuple[Element, ...]:
    """The commitment with its implicit zero constant term (the identity) put back."""
    return (suite.group.identity(), *commitment)


def _zero_polynomial(
    suite: Ciphersuite, min_signers: int, coefficients: Sequence[int] | None
) -> tuple[int, ...]:
    order = suite.group.order
    if coefficients is None:
        coefficients = [random_scalar(suite) for _ in range(min_signers - 1)]
    if len(coefficients) != min_signers - 1:
        raise ThresholdError(f"a threshold of {min_signers} needs {min_signers - 1} random coefficients")
    if any(c % order == 0 for c in coefficients):
        raise ThresholdError("refreshing coefficients must be non-zero")
    return (0, *(c % order for c in coefficients))


def _remaining(
    suite: Ciphersuite, public_key_package: PublicKeyPackage, identifiers: Sequence[int]
) -> list[int]:
    for identifier in identifiers:
        check_identifier(suite, identifier)
    if len(set(identifiers)) != len(identifiers):
        raise ThresholdError("an identifier appears twice among the participants of the refresh")
    unknown = sorted(set(identifiers) - set(public_key_package.verifying_shares))
    if unknown:
        raise ThresholdError(f"participant(s) {unknown} are not in the public key package", tuple(unknown))
    check_parameters(public_key_package.min_signers, len(identifiers))
    return sorted(identifiers)


def compute_refreshing_shares(
    suite: Ciphersuite,
    public_key_package: PublicKeyPackage,
    identifiers: Sequence[int] | None = None,
    *,
    coefficients: Sequence[int] | None = None,
) -> tuple[dict[int, RefreshingShare], PublicKeyPackage]:
    """Trusted dealer: a refreshing share for each remaining participant, and the new public package.

    ``identifiers`` (default: everyone in ``public_key_package``) are the participants that
    stay; there must be at least the threshold of them. ``coefficients`` (the ``t - 1``
    non-constant coefficients of ``g``) are random unless given.
    """
    ids = _remaining(
        suite,
        public_key_package,
        list(public_key_package.verifying_shares) if identifiers is None else identifiers,
    )
    g = suite.group
    polynomial = _zero_polynomial(suite, public_key_package.min_signers, coefficients)
    commitment = tuple(vss_commit(suite, polynomial[1:]))
    shares: dict[int, RefreshingShare] = {}
    verifying_shares: dict[int, Element] = {}
    for identifier in ids:
        value = polynomial_evaluate(identifier, polynomial, g.order)
        shares[identifier] = RefreshingShare(identifier, value, commitment)
        verifying_shares[identifier] = g.add(
            public_key_package.verifying_shares[identifier], g.scalar_base_mult(value)
        )
    return shares, PublicKeyPackage(
        verifying_shares, public_key_package.group_public_key, public_key_package.min_signers
    )


def refresh_share(
    suite: Ciphersuite,
    refreshing_share: RefreshingShare,
    key_package: KeyPackage,
    public_key_package: PublicKeyPackage | None = None,
) -> KeyPackage:
    """A participant's new key package: its old share plus the checked refreshing share.

    With the dealer's new ``public_key_package``, also check that the new verifying share is
    the one the package records.
    """
    g = suite.group
    if refreshing_share.identifier != key_package.identifier:
        raise ThresholdError(
            f"a refreshing share for participant {refreshing_share.identifier} given to {key_package.identifier}"
        )
    fault = dkg.commitment_faults(suite, refreshing_share.commitment, key_package.min_signers - 1)
    if fault is not None:
        raise ThresholdError(f"the refreshing share has {fault}")
    if not (
        isinstance(refreshing_share.value, int)
        and 0 <= refreshing_share.value < g.order
        and vss_verify(
            suite, key_package.identifier, refreshing_share.value, _full(suite, refreshing_share.commitment)
        )
    ):
        raise ThresholdError("the refreshing share does not match its commitment")
    share = (key_package.signing_share + refreshing_share.value) % g.order
    verifying_share = g.scalar_base_mult(share)
    if public_key_package is not None:
        recorded = public_key_package.verifying_shares.get(key_package.identifier)
        if (
            recorded is None
            or not g.equal(recorded, verifying_share)
            or not g.equal(public_key_package.group_public_key, key_package.group_public_key)
        ):
            raise ThresholdError("the refreshed share does not match the new public key package")
    return KeyPackage(
        key_package.identifier, share, verifying_share, key_package.group_public_key, key_package.min_signers
    )


def refresh_dkg_part1(
    suite: Ciphersuite,
    identifier: int,
    max_signers: int,
    min_signers: int,
    *,
    coefficients: Sequence[int] | None = None,
) -> tuple[dkg.Round1SecretPackage, RefreshRound1Package]:
    """Round one of a distributed refresh: a random polynomial with constant term zero.

    ``max_signers`` is the number of participants taking part in the refresh (those who stay);
    ``min_signers`` must be the existing threshold.
    """
    check_parameters(min_signers, max_signers)
    check_identifier(suite, identifier)
    polynomial = _zero_polynomial(suite, min_signers, coefficients)
    commitment = _full(suite, vss_commit(suite, polynomial[1:]))
    return (
        dkg.Round1SecretPackage(identifier, polynomial, commitment, min_signers, max_signers),
        RefreshRound1Package(identifier, commitment[1:]),
    )


def _check_round1(
    suite: Ciphersuite,
    own: int,
    max_signers: int,
    min_signers: int,
    round1_packages: Mapping[int, RefreshRound1Package],
) -> dict[int, tuple[Element, ...]]:
    dkg.check_peer_identifiers(suite, own, max_signers, round1_packages, "round-one packages")
    faults: dict[int, str] = {}
    for sender, package in round1_packages.items():
        if package.identifier != sender:
            faults[sender] = f"a package labelled as coming from participant {package.identifier}"
            continue
        fault = dkg.commitment_faults(suite, package.commitment, min_signers - 1)
        if fault is not None:
            faults[sender] = fault
    dkg.raise_faults(faults, "invalid refresh round-one package(s)")
    return {sender: _full(suite, package.commitment) for sender, package in round1_packages.items()}


def refresh_dkg_part2(
    suite: Ciphersuite,
    secret_package: dkg.Round1SecretPackage,
    round1_packages: Mapping[int, RefreshRound1Package],
) -> tuple[dkg.Round2SecretPackage, dict[int, dkg.Round2Package]]:
    """Round two of a distributed refresh: check the others' commitments, deal them their shares."""
    own = secret_package.identifier
    if secret_package.coefficients[0] != 0:
        raise ThresholdError("a refresh polynomial must have a zero constant term")
    _check_round1(suite, own, secret_package.max_signers, secret_package.min_signers, round1_packages)
    order = suite.group.order
    packages = {
        receiver: dkg.Round2Package(
            own, receiver, polynomial_evaluate(receiver, secret_package.coefficients, order)
        )
        for receiver in sorted(round1_packages)
    }
    return (
        dkg.Round2SecretPackage(
            own,
            secret_package.commitment,
            polynomial_evaluate(own, secret_package.coefficients, order),
            secret_package.min_signers,
            secret_package.max_signers,
        ),
        packages,
    )


def refresh_dkg_shares(
    suite: Ciphersuite,
    round2_secret: dkg.Round2SecretPackage,
    round1_packages: Mapping[int, RefreshRound1Package],
    round2_packages: Mapping[int, dkg.Round2Package],
    old_key_package: KeyPackage,
    old_public_key_package: PublicKeyPackage,
) -> tuple[KeyPackage, PublicKeyPackage]:
    """Round three of a distributed refresh: the new key package and public key package.

    Every sender of a share that does not match its commitment is named in ``culprits``. The
    new public key package holds the participants of this refresh only.
    """
    own = round2_secret.identifier
    g = suite.group
    if old_key_package.identifier != own:
        raise ThresholdError(
            f"the old key package is participant {old_key_package.identifier}'s, not {own}'s"
        )
    if not (
        round2_secret.min_signers == old_key_package.min_signers == old_public_key_package.min_signers
        and g.equal(old_key_package.group_public_key, old_public_key_package.group_public_key)
    ):
        raise ThresholdError("a refresh keeps the threshold and the group key of the old key packages")
    if not g.is_identity(round2_secret.commitment[0]):
        raise ThresholdError("a refresh polynomial must have a zero constant term")
    commitments: dict[int, Sequence[Element]] = dict(
        _check_round1(suite, own, round2_secret.max_signers, round2_secret.min_signers, round1_packages)
    )
    _remaining(suite, old_public_key_package, [own, *commitments])
    received = dkg.check_received_shares(suite, own, commitments, round2_packages)
    share = (old_key_package.signing_share + received + round2_secret.secret_share) % g.order
    commitments[own] = round2_secret.commitment
    deltas = dkg.public_key_package_from_commitments(suite, commitments, round2_secret.min_signers)
    verifying_shares = {
        j: g.add(old_public_key_package.verifying_shares[j], delta)
        for j, delta in deltas.verifying_shares.items()
    }
    verifying_share = g.scalar_base_mult(share)
    if not g.equal(verifying_share, verifying_shares[own]):
        raise ThresholdError("the old key package does not match the old public key package")
    public = PublicKeyPackage(
        verifying_shares, old_public_key_package.group_public_key, round2_secret.min_signers
    )
    return (
        KeyPackage(own, share, verifying_share, old_key_package.group_public_key, round2_secret.min_signers),
        public,
    )
