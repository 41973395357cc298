"""Distributed key generation: Pedersen's DKG with proofs of knowledge (FROST paper, figure 1).

Every participant deals a random polynomial of degree ``min_signers - 1`` with Feldman
verifiable secret sharing; the group secret is the sum of the constant terms, which nobody
ever holds, and each participant's signing share is the sum of what the others dealt to it.
The three steps follow the Zcash Foundation's ``frost-core`` (``keys::dkg``), so the same
inputs give the same bytes:

* :func:`part1`: choose the polynomial, commit to its coefficients and prove knowledge of
  the constant term with a Schnorr proof. Broadcast the :class:`Round1Package`, keep the
  :class:`Round1SecretPackage`.
* :func:`part2`: check every other participant's round-one package and proof, then evaluate
  the polynomial at each of them. Send each :class:`Round2Package` to its receiver alone, over
  a confidential and authenticated channel; keep the :class:`Round2SecretPackage`, which
  records a digest of the round-one packages just checked (:func:`round1_digest`).
* :func:`part3`: check that it is given the round-one packages part2 checked (by that digest),
  check every received share against its sender's commitment and derive the
  :class:`~lifeboat.threshold.group.KeyPackage` and the
  :class:`~lifeboat.threshold.group.PublicKeyPackage`.

Round one needs a broadcast channel: every participant must see the same commitment from
each sender, or the participants end up with shares of different keys. Checks that fail
raise :class:`~lifeboat.threshold.group.ThresholdError` whose ``culprits`` names every
participant found at fault, not only the first.

Two optional suite hooks let a ciphersuite depart from the plain construction, as
``frost-core`` lets its ciphersuites do: ``HDKG(m) -> int`` (the challenge hash; by default
the suite's own hash-to-scalar with the label ``dkg``) and ``post_dkg(key_package,
public_key_package)`` (run on the output of :func:`part3`; the BIP-341 suite uses it to add
the unspendable script-path tweak). A suite whose signatures need a nonce commitment of a
particular form (BIP-340's even ``R``) gets it through the nonce half of the suite's ``signs``
hook, as ``frost-core``'s ``generate_nonce`` gives it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, cast, runtime_checkable

from lifeboat.threshold.frost import check_identifier
from lifeboat.threshold.group import (
    Ciphersuite,
    Element,
    KeyPackage,
    PublicKeyPackage,
    ThresholdError,
    serialize_elements,
    sum_elements,
)
from lifeboat.threshold.hash_to_field import hash_to_scalar
from lifeboat.threshold.keygen import (
    check_parameters,
    evaluate_commitment,
    polynomial_evaluate,
    random_scalar,
    vss_commit,
    vss_verify,
)

ProofOfKnowledge = tuple[Element, int]
"""A Schnorr proof ``(R, mu)`` of knowledge of a polynomial's constant term."""


@runtime_checkable
class DkgHash(Protocol):
    """A suite that defines its own DKG challenge hash."""

    def HDKG(self, m: bytes) -> int: ...


@runtime_checkable
class PostDkg(Protocol):
    """A suite that post-processes the output of a DKG."""

    def post_dkg(
        self, key_package: KeyPackage, public_key_package: PublicKeyPackage
    ) -> tuple[KeyPackage, PublicKeyPackage]: ...


@dataclass(frozen=True)
class Round1SecretPackage:
    """What a participant keeps between :func:`part1` and :func:`part2`. Never send it."""

    identifier: int
    coefficients: tuple[int, ...]
    commitment: tuple[Element, ...]
    min_signers: int
    max_signers: int

    def __repr__(self) -> str:
        return (
            f"Round1SecretPackage(identifier={self.identifier}, min_signers={self.min_signers}, "
            f"max_signers={self.max_signers}, <secret>)"
        )


@dataclass(frozen=True)
class Round1Package:
    """What a participant broadcasts to all the others after :func:`part1` (public)."""

    identifier: int
    commitment: tuple[Element, ...]
    proof_of_knowledge: ProofOfKnowledge


@dataclass(frozen=True)
class Round2SecretPackage:
    """What a participant keeps between :func:`part2` and :func:`part3`. Never send it.

    ``round1_digest`` is :func:`round1_digest` of the round-one packages :func:`part2` checked,
    proofs included; :func:`part3` then only compares it with the digest of what it is given.
    ``None`` (a refresh, or a package written before the digest existed) makes :func:`part3`
    check the proofs of knowledge again.
    """

    identifier: int
    commitment: tuple[Element, ...]
    secret_share: int
    min_signers: int
    max_signers: int
    round1_digest: bytes | None = None

    def __repr__(self) -> str:
        return (
            f"Round2SecretPackage(identifier={self.identifier}, min_signers={self.min_signers}, "
            f"max_signers={self.max_signers}, <secret>)"
        )


@dataclass(frozen=True)
class Round2Package:
    """The share ``f_sender(receiver)``: secret, for the receiver's eyes only."""

    sender: int
    receiver: int
    signing_share: int

    def __repr__(self) -> str:
        return f"Round2Package(sender={self.sender}, receiver={self.receiver}, <secret>)"


_HOOKS: dict[tuple[type, type], bool] = {}


def _has_hook(suite: Ciphersuite, hook: type) -> bool:
    """``isinstance(suite, hook)`` for a protocol, remembered per class (a protocol check costs
    microseconds, as much as a group operation)."""
    key = (type(suite), hook)
    known = _HOOKS.get(key)
    if known is None:
        known = _HOOKS[key] = isinstance(suite, hook)
    return known


def hdkg(suite: Ciphersuite, message: bytes) -> int:
    """The DKG challenge hash: the suite's ``HDKG`` if it has one, else its hash-to-scalar.

    The default matches ``frost-core``: SHA-512 of ``context || "dkg" || m`` read little-endian
    for Ed25519, and ``hash_to_field`` (expand_message_xmd, SHA-256) with the domain
    ``context || "dkg"`` for secp256k1; the labels of H1 and H3 follow the same pattern.
    """
    if _has_hook(suite, DkgHash):
        return cast(DkgHash, suite).HDKG(message)
    group = suite.group
    if group.name == "ed25519":
        digest = hashlib.sha512(suite.context + b"dkg" + message).digest()
        return int.from_bytes(digest, "little") % group.order
    if group.name == "secp256k1":
        return hash_to_scalar(message, suite.context + b"dkg", group.order)
    raise ThresholdError(f"the {suite.name} ciphersuite defines no DKG hash")


def challenge(suite: Ciphersuite, identifier: int, verifying_key: Element, nonce_commitment: Element) -> int:
    """``c = H_dkg(identifier || phi_0 || R)``, each part in the suite's encoding."""
    g = suite.group
    return hdkg(
        suite,
        g.serialize_scalar(identifier)
        + g.serialize_element(verifying_key)
        + g.serialize_element(nonce_commitment),
    )


def compute_proof_of_knowledge(
    suite: Ciphersuite,
    identifier: int,
    coefficients: Sequence[int],
    commitment: Sequence[Element],
    nonce: int | None = None,
) -> ProofOfKnowledge:
    """Prove knowledge of ``coefficients[0]``: ``R = kG``, ``mu = k + a_0 c``.

    If the suite's sign rule asks for the nonce commitment to be negated (BIP-340 wants an even
    ``R``), the nonce is negated first, as ``frost-core``'s ``generate_nonce`` does.
    """
    g = suite.group
    k = random_scalar(suite) if nonce is None else nonce % g.order
    if k == 0:
        raise ThresholdError("the proof-of-knowledge nonce must not be zero")
    r = g.scalar_base_mult(k)
    # Only the nonce half of the sign rule applies; the generator stands in for a key in the
    # suite's canonical form (a BIP-340 suite refuses to judge an odd-y key).
    if suite.signs(r, g.generator())[0] < 0:
        k, r = g.order - k, g.negate(r)
    c = challenge(suite, identifier, commitment[0], r)
    return r, (k + coefficients[0] * c) % g.order


def verify_proof_of_knowledge(
    suite: Ciphersuite, identifier: int, commitment: Sequence[Element], proof: ProofOfKnowledge
) -> bool:
    """Whether ``R == mu G - c phi_0`` with ``c = H_dkg(identifier || phi_0 || R)``."""
    g = suite.group
    r, mu = proof
    if not commitment or g.is_identity(commitment[0]) or g.is_identity(r):
        return False
    if not isinstance(mu, int) or not 0 <= mu < g.order:
        return False
    c = challenge(suite, identifier, commitment[0], r)
    # [-c]phi_0 rather than -([c]phi_0): the same multiplication, without a negation.
    expected = g.add(g.scalar_base_mult(mu), g.scalar_mult(-c % g.order, commitment[0]))
    return g.equal(r, expected)


ROUND1_DIGEST_LABEL = b"lifeboat-frost-dkg-round1-packages-v1"
ROUND1_DIGEST_BYTES = 32


def round1_digest(suite: Ciphersuite, round1_packages: Mapping[int, Round1Package]) -> bytes:
    """SHA-256 of a set of round-one packages, as docs/formats.md (``dkg-round2-secret``) lays out.

    The label and the suite's context string, each preceded by its length; the number of
    packages; then for each sender in increasing order its identifier (as the channel vouched
    for it), the package's own identifier, the number of commitment elements, each element, and
    the proof's ``R`` and ``mu``. Counts and lengths are 4 bytes big-endian; scalars and
    elements are in the suite's encoding, whose lengths the suite fixes. Raises
    :class:`ThresholdError` for a package that cannot be encoded (an identity element, a ``mu``
    that is not a scalar below the group order): no package that part2 accepts is like that.
    """
    g = suite.group

    def count(value: int) -> bytes:
        return value.to_bytes(4, "big")

    def scalar(value: object) -> bytes:
        if type(value) is not int or not 0 <= value < g.order:
            raise ThresholdError("a round-one package holds a value that is not a scalar")
        return g.serialize_scalar(value)

    parts = [count(len(ROUND1_DIGEST_LABEL)), ROUND1_DIGEST_LABEL, count(len(suite.context)), suite.context]
    parts.append(count(len(round1_packages)))
    for sender in sorted(round1_packages):
        package = round1_packages[sender]
        r, mu = package.proof_of_knowledge
        parts += (scalar(sender), scalar(package.identifier), count(len(package.commitment)))
        parts.append(serialize_elements(g, package.commitment))
        parts += (g.serialize_element(r), scalar(mu))
    return hashlib.sha256(b"".join(parts)).digest()


def part1(
    suite: Ciphersuite,
    identifier: int,
    max_signers: int,
    min_signers: int,
    *,
    secret: int | None = None,
    coefficients: Sequence[int] | None = None,
    nonce: int | None = None,
) -> tuple[Round1SecretPackage, Round1Package]:
    """Round one: a random polynomial, its commitment and a proof of knowledge of its secret.

    ``secret`` (the constant term), ``coefficients`` (the ``min_signers - 1`` others) and
    ``nonce`` (of the proof) are drawn at random unless given; give them only to reproduce
    test vectors.
    """
    check_parameters(min_signers, max_signers)
    check_identifier(suite, identifier)
    order = suite.group.order
    if secret is None:
        secret = random_scalar(suite)
    if not 0 < secret < order:
        raise ThresholdError("the DKG secret must be a non-zero scalar below the group order")
    if coefficients is None:
        coefficients = [random_scalar(suite) for _ in range(min_signers - 1)]
    if len(coefficients) != min_signers - 1:
        raise ThresholdError(f"a threshold of {min_signers} needs {min_signers - 1} random coefficients")
    if any(c % order == 0 for c in coefficients):
        raise ThresholdError("DKG coefficients must be non-zero (their commitments would be the identity)")
    polynomial = (secret, *(c % order for c in coefficients))
    commitment = tuple(vss_commit(suite, polynomial))
    proof = compute_proof_of_knowledge(suite, identifier, polynomial, commitment, nonce)
    return (
        Round1SecretPackage(identifier, polynomial, commitment, min_signers, max_signers),
        Round1Package(identifier, commitment, proof),
    )


def check_peer_identifiers(
    suite: Ciphersuite, own: int, max_signers: int, peers: Mapping[int, object], what: str
) -> None:
    """``peers`` must name exactly ``max_signers - 1`` valid identifiers other than ``own``."""
    if len(peers) != max_signers - 1:
        raise ThresholdError(
            f"expected {max_signers - 1} {what}, one from each other participant, got {len(peers)}"
        )
    for identifier in peers:
        check_identifier(suite, identifier)
    if own in peers:
        raise ThresholdError(f"the {what} include one from this participant ({own}) itself", (own,))


def commitment_faults(suite: Ciphersuite, commitment: Sequence[Element], length: int) -> str | None:
    """Why a VSS commitment is unusable (wrong length, an identity element), or ``None``."""
    if len(commitment) != length:
        return f"a commitment of {len(commitment)} elements instead of {length}"
    if any(suite.group.is_identity(element) for element in commitment):
        return "an identity element in its commitment"
    return None


def raise_faults(faults: Mapping[int, str], context: str) -> None:
    if faults:
        culprits = tuple(sorted(faults))
        detail = "; ".join(f"participant {i}: {faults[i]}" for i in culprits)
        raise ThresholdError(f"{context}: {detail}", culprits)


def _check_round1_packages(
    suite: Ciphersuite, packages: Mapping[int, Round1Package], min_signers: int, *, proofs: bool
) -> None:
    faults: dict[int, str] = {}
    for sender, package in packages.items():
        if package.identifier != sender:
            faults[sender] = f"a package labelled as coming from participant {package.identifier}"
            continue
        fault = commitment_faults(suite, package.commitment, min_signers)
        if fault is not None:
            faults[sender] = fault
        elif proofs and not verify_proof_of_knowledge(
            suite, sender, package.commitment, package.proof_of_knowledge
        ):
            faults[sender] = "an invalid proof of knowledge"
    raise_faults(faults, "invalid round-one package(s)")


def part2(
    suite: Ciphersuite,
    secret_package: Round1SecretPackage,
    round1_packages: Mapping[int, Round1Package],
) -> tuple[Round2SecretPackage, dict[int, Round2Package]]:
    """Round two: check the others' round-one packages, then deal them their shares.

    ``round1_packages`` maps each other participant's identifier (as the channel it came over
    vouches for it) to its package. Every package that is malformed or carries a false proof
    of knowledge is reported at once, in ``culprits``.
    """
    own = secret_package.identifier
    check_peer_identifiers(suite, own, secret_package.max_signers, round1_packages, "round-one packages")
    _check_round1_packages(suite, round1_packages, secret_package.min_signers, proofs=True)
    order = suite.group.order
    packages = {
        receiver: Round2Package(
            own, receiver, polynomial_evaluate(receiver, secret_package.coefficients, order)
        )
        for receiver in sorted(round1_packages)
    }
    own_share = polynomial_evaluate(own, secret_package.coefficients, order)
    return (
        Round2SecretPackage(
            own,
            secret_package.commitment,
            own_share,
            secret_package.min_signers,
            secret_package.max_signers,
            round1_digest(suite, round1_packages),
        ),
        packages,
    )


def public_key_package_from_commitments(
    suite: Ciphersuite, commitments: Mapping[int, Sequence[Element]], min_signers: int
) -> PublicKeyPackage:
    """The group key and every participant's verifying share, from all the dealt commitments.

    The group key is the sum of the constant-term commitments; participant ``j``'s verifying
    share is the sum over dealers of their commitment evaluated at ``j``. Evaluation is linear,
    so the commitments are summed coefficient by coefficient first and the sum is evaluated
    once per participant: about n·t group operations instead of n²·t.
    """
    g = suite.group
    lengths = {len(c) for c in commitments.values()}
    if len(lengths) != 1:
        raise ThresholdError("the dealt commitments have different lengths")
    summed = [sum_elements(g, [c[k] for c in commitments.values()]) for k in range(lengths.pop())]
    verifying_shares = {j: evaluate_commitment(suite, summed, j) for j in sorted(commitments)}
    return PublicKeyPackage(verifying_shares, summed[0], min_signers)


def check_received_shares(
    suite: Ciphersuite,
    own: int,
    commitments: Mapping[int, Sequence[Element]],
    round2_packages: Mapping[int, Round2Package],
) -> int:
    """Check each share against its sender's commitment; return their sum. Names all cheats."""
    if set(round2_packages) != set(commitments):
        missing = sorted(set(commitments) - set(round2_packages))
        extra = sorted(set(round2_packages) - set(commitments))
        raise ThresholdError(
            f"the round-two packages do not match the round-one senders (missing {missing}, unexpected {extra})",
            tuple(extra),
        )
    order = suite.group.order
    faults: dict[int, str] = {}
    total = 0
    for sender in sorted(round2_packages):
        package = round2_packages[sender]
        if package.sender != sender or package.receiver != own:
            faults[sender] = f"a share labelled {package.sender} -> {package.receiver}"
        elif not (
            isinstance(package.signing_share, int)
            and 0 <= package.signing_share < order
            and vss_verify(suite, own, package.signing_share, commitments[sender])
        ):
            faults[sender] = "a share that does not match its commitment"
        else:
            total += package.signing_share
    raise_faults(faults, "invalid round-two share(s)")
    return total % order


def part3(
    suite: Ciphersuite,
    round2_secret: Round2SecretPackage,
    round1_packages: Mapping[int, Round1Package],
    round2_packages: Mapping[int, Round2Package],
) -> tuple[KeyPackage, PublicKeyPackage]:
    """Round three: check the received shares and derive the long-lived key material.

    ``round1_packages`` must be the ones given to :func:`part2`: their digest must equal the
    one :func:`part2` recorded in ``round2_secret`` (compared in constant time), or part3 refuses
    them, since their proofs of knowledge were checked only there. A ``round2_secret`` without a
    digest has the proofs checked again here. ``round2_packages`` maps each sender to the share
    it sent this participant. Every sender of a share that does not match its commitment is
    named in ``culprits``.
    """
    own = round2_secret.identifier
    check_peer_identifiers(suite, own, round2_secret.max_signers, round1_packages, "round-one packages")
    expected = round2_secret.round1_digest
    _check_round1_packages(suite, round1_packages, round2_secret.min_signers, proofs=expected is None)
    if expected is not None:
        try:
            given = round1_digest(suite, round1_packages)
        except ThresholdError:
            given = b""
        if not hmac.compare_digest(given, expected):
            raise ThresholdError(
                "the round-one packages given to part3 are not the ones part2 checked; "
                "give part3 exactly the round-one packages given to part2"
            )
    commitments: dict[int, Sequence[Element]] = {i: p.commitment for i, p in round1_packages.items()}
    received = check_received_shares(suite, own, commitments, round2_packages)
    signing_share = (received + round2_secret.secret_share) % suite.group.order
    commitments[own] = round2_secret.commitment
    public = public_key_package_from_commitments(suite, commitments, round2_secret.min_signers)
    g = suite.group
    verifying_share = g.scalar_base_mult(signing_share)
    if not g.equal(verifying_share, public.verifying_shares[own]):
        raise ThresholdError("this participant's own round-two secret does not match its commitment")
    key_package = KeyPackage(
        own, signing_share, verifying_share, public.group_public_key, round2_secret.min_signers
    )
    if _has_hook(suite, PostDkg):
        return cast(PostDkg, suite).post_dkg(key_package, public)
    return key_package, public
