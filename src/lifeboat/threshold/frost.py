"""FROST signing, RFC 9591 sections 4 and 5, written once for every ciphersuite.

Function names follow the RFC: ``nonce_generate``, ``commit`` (round one), ``sign`` (round
two), ``compute_binding_factors``, ``compute_group_commitment``, ``compute_challenge``,
``derive_interpolating_value``, ``verify_signature_share`` and ``aggregate``. Everything here is
pure: values in, values out; files, nonce bookkeeping and I/O live in the layers above.
"""

from __future__ import annotations

import math
import secrets as _random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lifeboat.threshold.group import (
    Ciphersuite,
    Element,
    Group,
    KeyPackage,
    PublicKeyPackage,
    ThresholdError,
    has_multi_add,
    sum_elements,
)


@dataclass(frozen=True)
class SigningCommitment:
    """A participant's round-one output: the two nonce commitments (public)."""

    identifier: int
    hiding: Element
    binding: Element


@dataclass(frozen=True)
class SigningNonces:
    """A participant's round-one secret: the two nonces. Use once, then destroy."""

    identifier: int
    hiding: int
    binding: int
    commitment: SigningCommitment

    def __repr__(self) -> str:
        return f"SigningNonces(identifier={self.identifier}, <secret>)"


@dataclass(frozen=True)
class SignatureShare:
    identifier: int
    share: int


def check_signers(public_key_package: PublicKeyPackage, identifiers: Sequence[int], group: str) -> None:
    """Refuse signers outside the group (``group`` names it in the message) or fewer than t of them."""
    outsiders = sorted(set(identifiers) - set(public_key_package.verifying_shares))
    if outsiders:
        raise ThresholdError(
            f"commitment(s) from participant(s) {outsiders}, who are not in the group of {group} "
            f"(participants {sorted(public_key_package.verifying_shares)})",
            tuple(outsiders),
        )
    if len(identifiers) < public_key_package.min_signers:
        raise ThresholdError(
            f"{len(identifiers)} commitment(s) is fewer than the group's threshold {public_key_package.min_signers}: "
            f"a signing package needs at least {public_key_package.min_signers} signers"
        )


def check_identifier(suite: Ciphersuite, identifier: int) -> int:
    if not isinstance(identifier, int) or not 0 < identifier < suite.group.order:
        raise ThresholdError(f"identifier {identifier!r} must be a non-zero scalar below the group order")
    return identifier


def nonce_generate(suite: Ciphersuite, secret: int, random_bytes: bytes | None = None) -> int:
    """RFC 9591 4.1: a nonce from 32 fresh random bytes and the signer's secret."""
    if random_bytes is None:
        random_bytes = _random.token_bytes(32)
    return suite.H3(random_bytes + suite.group.serialize_scalar(secret))


def commit(
    suite: Ciphersuite,
    key_package: KeyPackage,
    hiding_randomness: bytes | None = None,
    binding_randomness: bytes | None = None,
) -> SigningNonces:
    """Round one (RFC 9591 5.1): fresh nonces and their commitments."""
    g = suite.group
    hiding = nonce_generate(suite, key_package.signing_share, hiding_randomness)
    binding = nonce_generate(suite, key_package.signing_share, binding_randomness)
    commitment = SigningCommitment(
        key_package.identifier, g.scalar_base_mult(hiding), g.scalar_base_mult(binding)
    )
    return SigningNonces(key_package.identifier, hiding, binding, commitment)


def _sorted_commitments(
    suite: Ciphersuite, commitments: Sequence[SigningCommitment]
) -> list[SigningCommitment]:
    ordered = sorted(commitments, key=lambda c: c.identifier)
    g = suite.group
    seen: set[int] = set()
    for c in ordered:
        check_identifier(suite, c.identifier)
        if c.identifier in seen:
            raise ThresholdError(
                f"participant {c.identifier} appears twice in the commitment list", (c.identifier,)
            )
        seen.add(c.identifier)
        if g.is_identity(c.hiding) or g.is_identity(c.binding):
            raise ThresholdError(f"participant {c.identifier} sent an identity commitment", (c.identifier,))
    return ordered


def _encode_sorted(group: Group, ordered: Sequence[SigningCommitment]) -> bytes:
    """RFC 9591 4.3 for a list already sorted and checked by :func:`_sorted_commitments`."""
    scalar, element = group.serialize_scalar, group.serialize_element
    return b"".join(scalar(c.identifier) + element(c.hiding) + element(c.binding) for c in ordered)


def encode_group_commitment_list(suite: Ciphersuite, commitments: Sequence[SigningCommitment]) -> bytes:
    """RFC 9591 4.3."""
    return _encode_sorted(suite.group, _sorted_commitments(suite, commitments))


def _binding_prefix(
    suite: Ciphersuite, group_public_key: Element, ordered: Sequence[SigningCommitment], message: bytes
) -> bytes:
    """What every ``rho_input`` starts with: ``PK || H4(msg) || H5(encoded commitment list)``."""
    return (
        suite.group.serialize_element(group_public_key)
        + suite.H4(message)
        + suite.H5(_encode_sorted(suite.group, ordered))
    )


def binding_factor_inputs(
    suite: Ciphersuite, group_public_key: Element, commitments: Sequence[SigningCommitment], message: bytes
) -> dict[int, bytes]:
    """The ``rho_input`` of each participant (RFC 9591 4.4), before hashing with H1."""
    g = suite.group
    prefix = _binding_prefix(suite, group_public_key, _sorted_commitments(suite, commitments), message)
    return {c.identifier: prefix + g.serialize_scalar(c.identifier) for c in commitments}


def compute_binding_factors(
    suite: Ciphersuite, group_public_key: Element, commitments: Sequence[SigningCommitment], message: bytes
) -> dict[int, int]:
    """RFC 9591 4.4."""
    inputs = binding_factor_inputs(suite, group_public_key, commitments, message)
    return {identifier: suite.H1(rho_input) for identifier, rho_input in inputs.items()}


def compute_group_commitment(
    suite: Ciphersuite, commitments: Sequence[SigningCommitment], binding_factors: Mapping[int, int]
) -> Element:
    """RFC 9591 4.5."""
    g = suite.group
    terms = [g.scalar_mult(binding_factors[c.identifier], c.binding) for c in commitments]
    if has_multi_add(g):
        return g.sum([c.hiding for c in commitments] + terms)
    total = g.identity()
    for c, term in zip(commitments, terms, strict=True):
        total = g.add(total, g.add(c.hiding, term))
    return total


def compute_challenge(
    suite: Ciphersuite, group_commitment: Element, group_public_key: Element, message: bytes
) -> int:
    """RFC 9591 4.6."""
    return suite.challenge(group_commitment, group_public_key, message)


def derive_interpolating_value(suite: Ciphersuite, identifiers: Sequence[int], x_i: int) -> int:
    """RFC 9591 4.2: the Lagrange coefficient of ``x_i`` at zero over ``identifiers``."""
    order = suite.group.order
    if x_i not in identifiers:
        raise ThresholdError(f"participant {x_i} is not among the signers")
    if len(set(identifiers)) != len(identifiers):
        raise ThresholdError("duplicate identifiers among the signers")
    # Identifiers are usually small integers: multiplying them out in full and reducing once
    # costs less than reducing at every step (and gives the same residues for any identifiers).
    numerator = math.prod(x_j for x_j in identifiers if x_j != x_i) % order
    denominator = math.prod(x_j - x_i for x_j in identifiers if x_j != x_i) % order
    return numerator * pow(denominator, -1, order) % order


def _interpolating_values(order: int, identifiers: Sequence[int]) -> dict[int, int]:
    """Every Lagrange coefficient at zero over ``identifiers`` (distinct), with one inversion."""
    count = len(identifiers)
    # Numerators: products of all the other identifiers, from prefix and suffix products.
    prefix = [1] * (count + 1)
    for k, x in enumerate(identifiers):
        prefix[k + 1] = prefix[k] * x % order
    suffix = 1
    numerators = [0] * count
    for k in range(count - 1, -1, -1):
        numerators[k] = prefix[k] * suffix % order
        suffix = suffix * identifiers[k] % order
    denominators = [math.prod(x_j - x_i for x_j in identifiers if x_j != x_i) % order for x_i in identifiers]
    # Montgomery's trick: invert the product once, then peel off one denominator at a time.
    running = [1] * (count + 1)
    for k, d in enumerate(denominators):
        running[k + 1] = running[k] * d % order
    inverse = pow(running[count], -1, order)
    values = {}
    for k in range(count - 1, -1, -1):
        values[identifiers[k]] = numerators[k] * running[k] % order * inverse % order
        inverse = inverse * denominators[k] % order
    return values


@dataclass(frozen=True)
class _Context:
    """Everything about one signing session that the commitments, key and message determine."""

    commitments: dict[int, SigningCommitment]  # by identifier, in increasing order
    binding_factors: dict[int, int]
    binding_terms: dict[int, Element]  # [rho_i] E_i
    commitment_shares: dict[int, Element] | None  # D_i + [rho_i] E_i, when computed on the way
    group_commitment: Element
    challenge: int
    nonce_sign: int
    key_sign: int

    @property
    def identifiers(self) -> list[int]:
        return list(self.commitments)


def _context(
    suite: Ciphersuite, group_public_key: Element, commitments: Sequence[SigningCommitment], message: bytes
) -> _Context:
    g = suite.group
    ordered = _sorted_commitments(suite, commitments)
    prefix = _binding_prefix(suite, group_public_key, ordered, message)
    factors = {c.identifier: suite.H1(prefix + g.serialize_scalar(c.identifier)) for c in ordered}
    terms = {c.identifier: g.scalar_mult(factors[c.identifier], c.binding) for c in ordered}
    shares: dict[int, Element] | None = None
    if has_multi_add(g):
        group_commitment = g.sum([c.hiding for c in ordered] + list(terms.values()))
    else:
        # Adding one participant at a time yields each commitment share for free.
        shares = {c.identifier: g.add(c.hiding, terms[c.identifier]) for c in ordered}
        group_commitment = sum_elements(g, list(shares.values()))
    challenge = compute_challenge(suite, group_commitment, group_public_key, message)
    nonce_sign, key_sign = suite.signs(group_commitment, group_public_key)
    return _Context(
        {c.identifier: c for c in ordered},
        factors,
        terms,
        shares,
        group_commitment,
        challenge,
        nonce_sign,
        key_sign,
    )


def sign(
    suite: Ciphersuite,
    key_package: KeyPackage,
    nonces: SigningNonces,
    message: bytes,
    commitments: Sequence[SigningCommitment],
) -> SignatureShare:
    """Round two (RFC 9591 5.2): this participant's signature share."""
    key_package = suite.prepare_key_package(key_package)
    own = [c for c in commitments if c.identifier == key_package.identifier]
    if not own:
        raise ThresholdError(
            f"the signing package has no commitment from participant {key_package.identifier}"
        )
    g = suite.group
    if not (
        g.equal(own[0].hiding, nonces.commitment.hiding)
        and g.equal(own[0].binding, nonces.commitment.binding)
    ):
        raise ThresholdError(
            "the signing package carries a different commitment for this participant than its nonces"
        )
    if len(commitments) < key_package.min_signers:
        raise ThresholdError(
            f"{len(commitments)} signers is fewer than the threshold {key_package.min_signers}"
        )
    ctx = _context(suite, key_package.group_public_key, commitments, message)
    lambda_i = derive_interpolating_value(suite, ctx.identifiers, key_package.identifier)
    rho = ctx.binding_factors[key_package.identifier]
    z = (
        ctx.nonce_sign * (nonces.hiding + nonces.binding * rho)
        + ctx.key_sign * lambda_i * key_package.signing_share * ctx.challenge
    ) % g.order
    return SignatureShare(key_package.identifier, z)


def verify_signature_share(
    suite: Ciphersuite,
    share: SignatureShare,
    verifying_share: Element,
    commitments: Sequence[SigningCommitment],
    group_public_key: Element,
    message: bytes,
) -> bool:
    """RFC 9591 5.4: check one participant's signature share on its own."""
    prepared = suite.prepare_public_key_package(
        PublicKeyPackage({share.identifier: verifying_share}, group_public_key, 1)
    )
    verifying_share, group_public_key = prepared.verifying_shares[share.identifier], prepared.group_public_key
    ctx = _context(suite, group_public_key, commitments, message)
    if share.identifier not in ctx.commitments:
        return False
    lambda_i = derive_interpolating_value(suite, ctx.identifiers, share.identifier)
    return _share_is_valid(suite, ctx, share, verifying_share, lambda_i)


def _share_is_valid(
    suite: Ciphersuite, ctx: _Context, share: SignatureShare, verifying_share: Element, lambda_i: int
) -> bool:
    """``[z_i]G == R_i + [c lambda_i]Y_i`` (with the suite's signs); ``share`` must be a signer's."""
    g = suite.group
    identifier = share.identifier
    if ctx.commitment_shares is not None:
        commitment_share = ctx.commitment_shares[identifier]
    else:
        commitment_share = g.add(ctx.commitments[identifier].hiding, ctx.binding_terms[identifier])
    if ctx.nonce_sign < 0:
        commitment_share = g.negate(commitment_share)
    left = g.scalar_base_mult(share.share)
    right = g.add(commitment_share, g.scalar_mult(ctx.key_sign * ctx.challenge * lambda_i, verifying_share))
    return g.equal(left, right)


def aggregate(
    suite: Ciphersuite,
    commitments: Sequence[SigningCommitment],
    message: bytes,
    shares: Sequence[SignatureShare],
    public_key_package: PublicKeyPackage,
) -> bytes:
    """RFC 9591 5.3: combine the shares into a signature; name every cheater if it is invalid.

    The signing context (binding factors, group commitment, challenge) is computed once; the
    shares are checked one by one only if the aggregate signature does not verify.
    """
    public_key_package = suite.prepare_public_key_package(public_key_package)
    committed = {c.identifier for c in commitments}
    given = [s.identifier for s in shares]
    if len(set(given)) != len(given):
        raise ThresholdError("a participant sent two signature shares")
    missing = sorted(committed - set(given))
    extra = sorted(set(given) - committed)
    if extra:
        # An outsider's share in place of a signer's is named as such, not only as a missing share.
        if len(extra) == 1:
            outsiders = f"a signature share from participant {extra[0]}, who is not a signer"
        else:
            outsiders = f"signature shares from participants {extra}, who are not signers"
        absent = f"; no signature share from participant(s) {missing}" if missing else ""
        raise ThresholdError(f"{outsiders} in this signing package{absent}", tuple(extra))
    if missing:
        raise ThresholdError(f"no signature share from participant(s) {missing}", tuple(missing))
    if len(commitments) < public_key_package.min_signers:
        raise ThresholdError(
            f"{len(commitments)} signers is fewer than the threshold {public_key_package.min_signers}"
        )
    unknown = sorted(committed - set(public_key_package.verifying_shares))
    if unknown:
        raise ThresholdError(f"participant(s) {unknown} are not in the public key package", tuple(unknown))
    ctx = _context(suite, public_key_package.group_public_key, commitments, message)
    z = sum(s.share for s in shares) % suite.group.order
    signature = suite.encode_signature(ctx.group_commitment, z)
    if suite.verify(public_key_package.group_public_key, message, signature):
        return signature
    lambdas = _interpolating_values(suite.group.order, ctx.identifiers)
    culprits = tuple(
        s.identifier
        for s in sorted(shares, key=lambda s: s.identifier)
        if not _share_is_valid(
            suite, ctx, s, public_key_package.verifying_shares[s.identifier], lambdas[s.identifier]
        )
    )
    if len(culprits) == len(shares) > 1:
        raise ThresholdError(
            f"no signature share verifies: the public key package is probably not this group's "
            f"(or all of participants {list(culprits)} cheated)",
            culprits,
        )
    raise ThresholdError(
        f"the aggregate signature is invalid; cheating participant(s): {list(culprits) or 'none identified'}",
        culprits,
    )


def verify(suite: Ciphersuite, group_public_key: Element, message: bytes, signature: bytes) -> bool:
    """Verify a group signature (an ordinary Schnorr signature under the group key)."""
    return suite.verify(group_public_key, message, signature)
