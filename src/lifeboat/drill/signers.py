"""The signers path: a FROST(Ed25519) group loses a member's share, helpers repair it, it signs again.

* setup: five members run the three rounds of a distributed key generation (3-of-5; nobody ever
  holds the group key); each keeps its key package in its own directory under
  ``sandbox.root / "signers"`` (0600), the public key package lies beside them, and the group's
  public key and every member's verifying share are recorded in ``sandbox.scratch``.
  ``sandbox.group`` becomes a :class:`FrostGroup`, which the state path uses to sign statements.
* operate: one signing ceremony on a test message, checked by an Ed25519 verifier that is not
  Lifeboat's (``cryptography``'s).
* catastrophe: one member's key package is deleted (chosen under the sandbox's seed).
* recover: the surviving members help repair the lost share (Laing and Stinson's repairable
  threshold scheme, :mod:`lifeboat.threshold.repair`); the repaired share must match the verifying
  share recorded at setup; then the group signs again with the repaired member in the quorum.

Each ceremony is the file-based one a user runs: round one seals single-use nonces into a nonce
file (0600) beside the member's key package, round two consumes them
(:func:`~lifeboat.threshold.nonces.commit_sealed`, :func:`~lifeboat.threshold.nonces.sign_sealed`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from lifeboat.drill.sandbox import Outcome, Sandbox
from lifeboat.drill.timeline import PathName, Phase, StepFailed, Timeline
from lifeboat.fs import PUBLIC_MODE, SECRET_MODE, read_bounded, write_atomic
from lifeboat.threshold import dkg, frost, repair, serialize, suites
from lifeboat.threshold.group import Ciphersuite, KeyPackage, PublicKeyPackage, ThresholdError
from lifeboat.threshold.nonces import SignerState, commit_sealed, remove_durably, sign_sealed

#: The sandbox's signing group: any QUORUM of MEMBERS sign.
MEMBERS = 5
QUORUM = 3
SUITE = suites.by_name("ed25519")
PUBLIC_KEY_PACKAGE = "public-key-package.json"
TEST_MESSAGE = b"lifeboat drill, signers path: "

#: What the path keeps in ``sandbox.scratch``.
GROUP_KEY = "signers.group_public_key"  # hex
VERIFYING_SHARES = "signers.verifying_shares"  # member -> hex
LOST = "signers.lost"  # members whose key package the catastrophe deleted


def _read(path: Path, what: str) -> bytes:
    return read_bounded(path, serialize.MAX_DOCUMENT_BYTES, what=what)


def _short(data: bytes) -> str:
    return data.hex()[:16]


def verify_independently(public_key: bytes, message: bytes, signature: bytes) -> None:
    """Check an Ed25519 signature with ``cryptography`` (not Lifeboat's FROST code); raise if invalid."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        raise ThresholdError(
            f"the group signature {_short(signature)}... does not verify as Ed25519 under the group key "
            f"{public_key.hex()} with an independent verifier: the ceremony produced an invalid signature"
        ) from None


@dataclass(frozen=True)
class Ceremony:
    """One signing ceremony's result: who signed and the (verified) group signature."""

    signers: tuple[int, ...]
    signature: bytes


def run_dkg(
    suite: Ciphersuite, members: int, threshold: int
) -> tuple[dict[int, KeyPackage], PublicKeyPackage]:
    """The three DKG rounds among ``members``, each message handed to exactly its receivers.

    Every member derives the public key package on its own; they must all agree (round one's
    broadcast was consistent), or :class:`ThresholdError` names who differs.
    """
    ids = range(1, members + 1)
    round1_secrets, round1 = {}, {}
    for i in ids:
        round1_secrets[i], round1[i] = dkg.part1(suite, i, members, threshold)
    round2_secrets, outgoing = {}, {}
    for i in ids:
        others = {j: p for j, p in round1.items() if j != i}
        round2_secrets[i], outgoing[i] = dkg.part2(suite, round1_secrets[i], others)
    key_packages: dict[int, KeyPackage] = {}
    publics: dict[int, bytes] = {}
    public: PublicKeyPackage | None = None
    for i in ids:
        others = {j: p for j, p in round1.items() if j != i}
        received = {j: outgoing[j][i] for j in ids if j != i}
        key_packages[i], public = dkg.part3(suite, round2_secrets[i], others, received)
        publics[i] = serialize.encode_public_key_package(suite, public)
    assert public is not None
    disagree = tuple(i for i in ids if publics[i] != publics[1])
    if disagree:
        raise ThresholdError(
            f"members {list(disagree)} derived another public key package than member 1", disagree
        )
    return key_packages, public


class FrostGroup:
    """A FROST group of the sandbox: the signers' Ed25519 group (a
    :class:`~lifeboat.drill.sandbox.GroupSigner`), or the chain path's secp256k1 operators.

    Member ``i`` keeps ``member-i/key-package-i.json`` under ``directory``; a member whose key
    package is gone cannot sign. ``public_key`` is the 32-byte group key, the form in which a
    ``frost-ed25519`` statement names its signer.
    """

    def __init__(self, directory: Path, public: PublicKeyPackage, home: Path, suite: Ciphersuite = SUITE):
        self.directory = directory
        self.public = public
        self.home = home
        self.suite = suite
        self.public_key = bytes(suite.group.serialize_element(public.group_public_key))

    @property
    def members(self) -> list[int]:
        return sorted(self.public.verifying_shares)

    def member_directory(self, identifier: int) -> Path:
        return self.directory / f"member-{identifier}"

    def key_path(self, identifier: int) -> Path:
        return self.member_directory(identifier) / f"key-package-{identifier}.json"

    def store(self, key_package: KeyPackage) -> Path:
        """Write a member's key package (0600) into its directory (0700); refuse to replace one."""
        directory = self.member_directory(key_package.identifier)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.key_path(key_package.identifier)
        write_atomic(path, serialize.encode_key_package(self.suite, key_package), mode=SECRET_MODE)
        return path

    def holders(self) -> list[int]:
        """The members whose key package is still in place."""
        return [i for i in self.members if self.key_path(i).is_file()]

    def load(self, identifier: int) -> KeyPackage:
        """Member ``identifier``'s key package, checked to be this group's and this member's."""
        path = self.key_path(identifier)
        if not path.is_file():
            raise ThresholdError(
                f"member {identifier} holds no key package ({path} is missing)", (identifier,)
            )
        suite, key_package = serialize.decode_key_package(_read(path, "key package"), str(path))
        g = self.suite.group
        if (
            suite.name != self.suite.name
            or key_package.identifier != identifier
            or not g.equal(key_package.group_public_key, self.public.group_public_key)
        ):
            raise ThresholdError(
                f"{path} is not member {identifier}'s key package of this group", (identifier,)
            )
        if not g.equal(key_package.verifying_share, self.public.verifying_shares[identifier]):
            raise ThresholdError(
                f"{path} holds a share that does not match member {identifier}'s verifying share in the "
                "group's public key package: the key package is damaged; repair it like a lost one",
                (identifier,),
            )
        return key_package

    def quorum(self, include: Sequence[int] = ()) -> list[int]:
        """``include`` and then the lowest other holders, up to the threshold."""
        holders = self.holders()
        missing = sorted(set(include) - set(holders))
        if missing:
            raise ThresholdError(f"members {missing} hold no key package and cannot sign", tuple(missing))
        chosen = sorted(set(include))
        for identifier in holders:
            if len(chosen) >= self.public.min_signers:
                break
            if identifier not in chosen:
                chosen.append(identifier)
        if len(chosen) < self.public.min_signers:
            raise ThresholdError(
                f"only {len(holders)} of {len(self.members)} members hold a key package ({holders}); a "
                f"signature needs {self.public.min_signers}: repair the lost shares first"
            )
        return sorted(chosen)

    def ceremony(self, message: bytes, include: Sequence[int] = ()) -> Ceremony:
        """Commit (sealed single-use nonces), sign, aggregate and verify, with a quorum holding shares."""
        signers = self.quorum(include)
        key_packages = {i: self.load(i) for i in signers}
        nonce_paths: dict[int, Path] = {}
        commitments = []
        for i in signers:
            round1 = commit_sealed(self.suite, key_packages[i], self.key_path(i))
            nonce_paths[i] = self.member_directory(i) / f"nonces-{i}-{round1.nonce_id[:8]}.json"
            try:
                write_atomic(nonce_paths[i], round1.nonce_file, mode=SECRET_MODE)
            except BaseException:
                SignerState(self.key_path(i)).discard(round1.nonce_id)
                raise
            commitments.append(round1.commitment)
        shares = []
        for i in signers:
            path = nonce_paths[i]
            sealed = serialize.decode_nonces(_read(path, "nonce file"), str(path))
            shares.append(
                sign_sealed(
                    self.suite,
                    key_packages[i],
                    self.key_path(i),
                    path,
                    sealed,
                    message,
                    commitments,
                    self.home,
                )
            )
        signature = frost.aggregate(self.suite, commitments, message, shares, self.public)
        if self.suite.name == SUITE.name:
            verify_independently(self.public_key, message, signature)
        elif not frost.verify(self.suite, self.public.group_public_key, message, signature):
            raise ThresholdError(
                f"the group signature {_short(signature)}... does not verify under the group key"
            )
        return Ceremony(tuple(signers), signature)

    def sign(self, message: bytes) -> bytes:
        """A full ceremony with the lowest members still holding shares; the verified signature."""
        return self.ceremony(message).signature


def repair_share(group: FrostGroup, helpers: Sequence[int], participant: int) -> KeyPackage:
    """The three repair steps, each delta and sigma handed only to its receiver; checked in step 3."""
    suite = group.suite
    deltas = {h: repair.repair_share_step_1(suite, helpers, group.load(h), participant) for h in helpers}
    sigmas = [repair.repair_share_step_2(suite, [deltas[sender][h] for sender in helpers]) for h in helpers]
    return repair.repair_share_step_3(suite, sigmas, participant, group.public)


class SignersPath:
    """Set up, break and repair the sandbox's FROST group; ``lose`` shares are lost (1 in a drill)."""

    name = PathName.SIGNERS

    def __init__(self, lose: int = 1) -> None:
        if not 1 <= lose <= MEMBERS:
            raise ValueError(f"lose must be between 1 and {MEMBERS}")
        self.lose = lose

    @staticmethod
    def _group(sandbox: Sandbox) -> FrostGroup:
        if not isinstance(sandbox.group, FrostGroup):
            raise StepFailed("the signers path's setup did not run: there is no FROST group in the sandbox")
        return sandbox.group

    def setup(self, sandbox: Sandbox, timeline: Timeline) -> None:
        with timeline.step(
            self.name, Phase.SETUP, f"{MEMBERS} members run a {QUORUM}-of-{MEMBERS} DKG"
        ) as step:
            key_packages, public = run_dkg(SUITE, MEMBERS, QUORUM)
            group = FrostGroup(sandbox.root / "signers", public, sandbox.home)
            step.facts.update(members=MEMBERS, threshold=QUORUM, group_key=_short(group.public_key))
        with timeline.step(self.name, Phase.SETUP, "members keep their key packages (0600)") as step:
            written = [group.store(kp) for kp in key_packages.values()]
            modes = {path.stat().st_mode & 0o777 for path in written}
            if modes != {SECRET_MODE}:
                raise StepFailed(
                    f"key packages were written with modes {sorted(oct(m) for m in modes)}, not 0600"
                )
            write_atomic(
                group.directory / PUBLIC_KEY_PACKAGE,
                serialize.encode_public_key_package(SUITE, public),
                mode=PUBLIC_MODE,
                overwrite=True,
            )
            sandbox.group = group
            g = SUITE.group
            sandbox.scratch[GROUP_KEY] = group.public_key.hex()
            sandbox.scratch[VERIFYING_SHARES] = {
                i: g.serialize_element(share).hex() for i, share in public.verifying_shares.items()
            }
            step.facts.update(key_packages=len(written), bytes=sum(path.stat().st_size for path in written))

    def operate(self, sandbox: Sandbox, timeline: Timeline) -> None:
        group = self._group(sandbox)
        with timeline.step(self.name, Phase.OPERATE, "the group signs a test message") as step:
            message = TEST_MESSAGE + sandbox.random_bytes(32)
            ceremony = group.ceremony(message)
            verify_independently(bytes.fromhex(sandbox.scratch[GROUP_KEY]), message, ceremony.signature)
            step.facts.update(signers=list(ceremony.signers), signature=_short(ceremony.signature))

    def catastrophe(self, sandbox: Sandbox, timeline: Timeline) -> Outcome:
        group = self._group(sandbox)
        lost = sorted(sandbox.rng.sample(group.members, self.lose))
        title = f"member {lost[0]} loses its share" if len(lost) == 1 else f"members {lost} lose their shares"
        with timeline.step(self.name, Phase.CATASTROPHE, title) as step:
            for identifier in lost:
                remove_durably(group.key_path(identifier))
            still = group.holders()
            if set(still) & set(lost):
                raise StepFailed(f"the key packages of members {lost} are still in place")
            sandbox.scratch[LOST] = lost
            step.facts.update(lost=lost, holders=still)
        return Outcome(lost={"signer shares": len(lost)})

    def recover(self, sandbox: Sandbox, timeline: Timeline, outcome: Outcome) -> None:
        group = self._group(sandbox)
        lost: list[int] = sandbox.scratch[LOST]
        recorded_key = bytes.fromhex(sandbox.scratch[GROUP_KEY])
        with timeline.step(self.name, Phase.RECOVER, "gather helpers for the repair") as step:
            _, public = serialize.decode_public_key_package(
                _read(group.directory / PUBLIC_KEY_PACKAGE, "public key package"),
                "the group's public key package",
            )
            if bytes(SUITE.group.serialize_element(public.group_public_key)) != recorded_key:
                raise StepFailed("the group's public key package names another group key than setup recorded")
            helpers = group.holders()
            for identifier in helpers:
                group.load(identifier)
            if len(helpers) < public.min_signers:
                raise StepFailed(
                    f"only {len(helpers)} of {MEMBERS} members still hold a share ({helpers}); repairing "
                    f"member(s) {lost} needs {public.min_signers} helpers. The group key cannot be recovered "
                    "from fewer: restore a member's key package from its backup"
                )
            helpers = helpers[: public.min_signers]
            step.facts.update(helpers=helpers, lost=lost)
        for participant in lost:
            title = f"helpers {helpers} repair member {participant}'s share"
            with timeline.step(self.name, Phase.RECOVER, title) as step:
                key_package = repair_share(group, helpers, participant)
                verifying = SUITE.group.serialize_element(key_package.verifying_share).hex()
                if verifying != sandbox.scratch[VERIFYING_SHARES][participant]:
                    raise StepFailed(
                        f"member {participant}'s repaired share does not match the verifying share "
                        "recorded at setup"
                    )
                path = group.store(key_package)
                if path.stat().st_mode & 0o777 != SECRET_MODE:
                    raise StepFailed(f"{path} was not written 0600")
                step.facts.update(member=participant, verifying_share=verifying[:16])
        with timeline.step(
            self.name, Phase.RECOVER, "the group signs again with the repaired member"
        ) as step:
            message = TEST_MESSAGE + sandbox.random_bytes(32)
            ceremony = group.ceremony(message, include=lost)
            if not set(lost) <= set(ceremony.signers):
                raise StepFailed(
                    f"the repaired members {lost} were not in the quorum {list(ceremony.signers)}"
                )
            verify_independently(recorded_key, message, ceremony.signature)
            step.facts.update(signers=list(ceremony.signers), signature=_short(ceremony.signature))
        outcome.recovered["signer shares"] = len(lost)
