"""``lifeboat frost``: file-based FROST ceremonies, one step per participant per command.

Each participant runs its own step and exchanges files (public ones freely, secret ones only
with their owner or the one receiver named in the file name). Secret files are written 0600.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol, TypeVar

import typer

from lifeboat.cli.output import emit, info, settings, stdout
from lifeboat.errors import StorageError, UsageError
from lifeboat.fs import PUBLIC_MODE, SECRET_MODE, read_bounded, write_atomic

if TYPE_CHECKING:
    from lifeboat.threshold import dkg
    from lifeboat.threshold.group import Ciphersuite

frost_app = typer.Typer(
    help="FROST threshold signatures (RFC 9591): dealer or DKG key generation, signing, repair, refresh.",
    no_args_is_help=True,
)

SuiteOpt = Annotated[str, typer.Option("--suite", help="ed25519, secp256k1 or secp256k1-tr.")]
OutDir = Annotated[
    Path, typer.Option("--out-dir", "-d", help="Directory for the files written.", metavar="DIR")
]
Force = Annotated[bool, typer.Option("--force", help="Replace existing output files.")]


def _read(path: Path, what: str) -> bytes:
    from lifeboat.threshold import serialize

    return read_bounded(path, serialize.MAX_DOCUMENT_BYTES, what=what)


def _write(path: Path, data: bytes, *, secret: bool, force: bool) -> str:
    write_atomic(path, data, mode=SECRET_MODE if secret else PUBLIC_MODE, overwrite=force)
    return str(path)


class _Outputs:
    """The files one ceremony step writes: all checked before the first is written.

    Without ``--force`` an existing file refuses the whole step, so a step never leaves some of
    its files written and others not because of a name collision. A new file written before a
    later write fails (disk full) is removed again.
    """

    def __init__(self, force: bool) -> None:
        self.force = force
        self.pending: list[tuple[Path, bytes, bool]] = []

    def add(self, path: Path, data: bytes, *, secret: bool) -> None:
        self.pending.append((path, data, secret))

    def write(self) -> list[str]:
        taken = [str(path) for path, _, _ in self.pending if path.exists()]
        if taken and not self.force:
            raise StorageError(
                f"{', '.join(taken)} already exist(s); choose another --out-dir or pass --force"
            )
        written: list[Path] = []
        try:
            for path, data, secret in self.pending:
                _write(path, data, secret=secret, force=self.force)
                written.append(path)
        except BaseException:
            for path in written:
                if str(path) not in taken:  # never remove a file that was there before
                    path.unlink(missing_ok=True)
            raise
        return [str(path) for path in written]


def _out_dir(directory: Path) -> Path:
    if not directory.is_dir():
        try:
            directory.mkdir(mode=0o700, parents=True)
        except OSError as exc:
            raise StorageError(f"cannot create {directory}: {exc.strerror}") from None
    return directory


def _same_suite(expected: Ciphersuite, got: Ciphersuite, what: str) -> None:
    from lifeboat.threshold.group import ThresholdError

    if got.name != expected.name:
        raise ThresholdError(f"{what} is for {got.name}, but this ceremony uses {expected.name}")


def _message(message_file: Path | None, message_hex: str | None) -> bytes:
    if (message_file is None) == (message_hex is None):
        raise UsageError("give the message with exactly one of --message-file or --message-hex")
    if message_file is not None:
        return read_bounded(message_file, 64 * 1024 * 1024, what="message file")
    try:
        return bytes.fromhex(message_hex or "")
    except ValueError:
        raise UsageError("--message-hex is not hex") from None


@frost_app.command("dealer")
def frost_dealer(
    threshold: Annotated[int, typer.Option("--threshold", "-t", help="Signers needed (t).")],
    participants: Annotated[int, typer.Option("--participants", "-n", help="Participants (n).")],
    out_dir: OutDir,
    suite_name: SuiteOpt = "ed25519",
    force: Force = False,
) -> None:
    """Trusted dealer: make n key packages (0600) and the public key package, then forget the key."""
    from lifeboat.threshold import keygen, serialize, suites

    suite = suites.by_name(suite_name)
    directory = _out_dir(out_dir)
    packages, public, _ = keygen.trusted_dealer_keygen(suite, threshold, participants)
    outputs = _Outputs(force)
    for kp in packages:
        outputs.add(
            directory / f"key-package-{kp.identifier}.json",
            serialize.encode_key_package(suite, kp),
            secret=True,
        )
    outputs.add(
        directory / "public-key-package.json",
        serialize.encode_public_key_package(suite, public),
        secret=False,
    )
    key = suite.group.serialize_element(public.group_public_key).hex()
    written = outputs.write()
    emit(
        {"ciphersuite": suite.name, "group_public_key": key, "files": written},
        lambda: stdout.print(
            f"{threshold}-of-{participants} {suites.short_name(suite)} group key {key}\n"
            + "\n".join(f"  {w}" for w in written)
            + "\nGive each participant only their own key package; then delete the others."
        ),
    )


@frost_app.command("commit")
def frost_commit(
    key: Annotated[Path, typer.Option("--key", "-k", help="Your key package.", metavar="FILE")],
    out_dir: OutDir,
    force: Force = False,
) -> None:
    """Round 1: fresh nonces (sealed, used once) and their public commitment.

    The nonces are sealed under a one-time key kept in the signer state beside the key package
    (key-package-N.signer/); 'frost sign' destroys that key, so no copy of the nonce file signs twice.
    """
    from lifeboat.threshold import serialize
    from lifeboat.threshold.nonces import SignerState, commit_sealed

    suite, kp = serialize.decode_key_package(_read(key, "key package"), str(key))
    directory = _out_dir(out_dir)
    commitment_path = directory / f"commitment-{kp.identifier}.json"
    if commitment_path.exists() and not force:
        raise StorageError(f"{commitment_path} already exists; choose another --out-dir or pass --force")
    round1 = commit_sealed(suite, kp, key)
    nonce_path = directory / f"nonces-{kp.identifier}-{round1.nonce_id[:8]}.json"
    state = SignerState(key)
    outputs = _Outputs(force)
    outputs.add(nonce_path, round1.nonce_file, secret=True)
    outputs.add(commitment_path, serialize.encode_commitment(suite, round1.commitment), secret=False)
    try:
        outputs.write()
    except BaseException:
        state.discard(round1.nonce_id)
        raise
    emit(
        {
            "identifier": kp.identifier,
            "nonces": str(nonce_path),
            "commitment": str(commitment_path),
            "signer_state": str(state.directory),
        },
        lambda: stdout.print(
            f"participant {kp.identifier}: send {commitment_path} to the coordinator; keep {nonce_path} "
            f"secret (it is consumed by 'frost sign', which needs the signer state {state.directory})"
        ),
    )


@frost_app.command("package")
def frost_package(
    commitments: Annotated[
        list[Path], typer.Argument(help="Commitment files of the signers.", metavar="COMMITMENT...")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Signing package to write.", metavar="FILE")],
    message_file: Annotated[
        Path | None, typer.Option("--message-file", "-m", help="The message to sign.")
    ] = None,
    message_hex: Annotated[str | None, typer.Option("--message-hex", help="The message, as hex.")] = None,
    public: Annotated[
        Path | None,
        typer.Option(
            "--public",
            help="The group's public key package: refuse fewer than t signers or a non-member.",
            metavar="FILE",
        ),
    ] = None,
    force: Force = False,
) -> None:
    """Coordinator: bundle the message and the signers' commitments into a signing package."""
    from lifeboat.threshold import frost, serialize

    message = _message(message_file, message_hex)
    suite: Ciphersuite | None = None
    parsed = []
    for path in commitments:
        got, commitment = serialize.decode_commitment(_read(path, "commitment"), str(path), suite)
        suite = suite or got
        parsed.append(commitment)
    assert suite is not None
    data = serialize.encode_signing_package(suite, message, parsed)
    serialize.decode_signing_package(data, str(output))  # refuses duplicates before writing
    ids = sorted(c.identifier for c in parsed)
    if public is not None:
        public_suite, pkp = serialize.decode_public_key_package(
            _read(public, "public key package"), str(public)
        )
        _same_suite(suite, public_suite, str(public))
        frost.check_signers(pkp, ids, str(public))
    _write(output, data, secret=False, force=force)
    if public is None:
        info(
            "note: the signers were not checked against the group (no --public); each signer still "
            "refuses fewer than its threshold, but pass --public to catch that, and non-members, here"
        )
    emit(
        {"signing_package": str(output), "signers": ids, "checked_against_group": public is not None},
        lambda: stdout.print(f"signing package for participants {ids}: {output}"),
    )


@frost_app.command("sign")
def frost_sign(
    key: Annotated[Path, typer.Option("--key", "-k", help="Your key package.", metavar="FILE")],
    nonces_file: Annotated[
        Path, typer.Option("--nonces", help="Your nonce file from 'frost commit'.", metavar="FILE")
    ],
    package: Annotated[Path, typer.Option("--package", "-p", help="The signing package.", metavar="FILE")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Signature share to write.", metavar="FILE")],
    force: Force = False,
) -> None:
    """Round 2: your signature share. Consumes the nonces; a nonce is never used twice."""
    from lifeboat.home import default_home
    from lifeboat.threshold import serialize
    from lifeboat.threshold.group import ThresholdError
    from lifeboat.threshold.nonces import sign_sealed

    suite, kp = serialize.decode_key_package(_read(key, "key package"), str(key))
    sealed = serialize.decode_nonces(_read(nonces_file, "nonce file"), str(nonces_file))
    package_suite, message, commitments = serialize.decode_signing_package(
        _read(package, "signing package"), str(package)
    )
    _same_suite(suite, sealed.suite, str(nonces_file))
    _same_suite(suite, package_suite, str(package))
    if sealed.identifier != kp.identifier:
        raise ThresholdError(f"{nonces_file} belongs to participant {sealed.identifier}, not {kp.identifier}")
    if output.exists() and not force:
        raise StorageError(f"{output} already exists; choose another --output")
    if not output.absolute().parent.is_dir():
        raise StorageError(f"directory {output.parent} does not exist; create it first")
    # Everything that can fail is checked before the nonces are consumed, so a bad package wastes
    # nothing: the share exists only in memory until its one-time key is destroyed.
    share = sign_sealed(
        suite, kp, key, nonces_file, sealed, message, commitments, settings.home or default_home()
    )
    _write(output, serialize.encode_signature_share(suite, share), secret=False, force=force)
    emit(
        {"identifier": kp.identifier, "signature_share": str(output), "nonces_consumed": str(nonces_file)},
        lambda: stdout.print(
            f"participant {kp.identifier}: signature share {output} (nonce {nonces_file} consumed)"
        ),
    )


@frost_app.command("aggregate")
def frost_aggregate(
    shares: Annotated[list[Path], typer.Argument(help="Signature shares.", metavar="SHARE...")],
    package: Annotated[Path, typer.Option("--package", "-p", help="The signing package.", metavar="FILE")],
    public: Annotated[Path, typer.Option("--public", help="The public key package.", metavar="FILE")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Signature to write.", metavar="FILE")],
    force: Force = False,
) -> None:
    """Coordinator: combine the shares; every cheating signer is named if the result is invalid."""
    from lifeboat.threshold import frost, serialize

    suite, message, commitments = serialize.decode_signing_package(
        _read(package, "signing package"), str(package)
    )
    public_suite, pkp = serialize.decode_public_key_package(_read(public, "public key package"), str(public))
    _same_suite(suite, public_suite, str(public))
    parsed = [serialize.decode_signature_share(_read(p, "signature share"), str(p), suite)[1] for p in shares]
    signature = frost.aggregate(suite, commitments, message, parsed, pkp)
    _write(
        output,
        serialize.encode_signature(suite, message, signature, pkp.group_public_key),
        secret=False,
        force=force,
    )
    emit(
        {"signature": signature.hex(), "file": str(output)},
        lambda: stdout.print(f"signature {signature.hex()}\nwritten to {output}"),
    )


@frost_app.command("verify-share")
def frost_verify_share(
    share_file: Annotated[Path, typer.Argument(help="One signature share.", metavar="SHARE")],
    package: Annotated[Path, typer.Option("--package", "-p", help="The signing package.", metavar="FILE")],
    public: Annotated[Path, typer.Option("--public", help="The public key package.", metavar="FILE")],
) -> None:
    """Check one signer's share on its own, before (or instead of) aggregating."""
    from lifeboat.threshold import frost, serialize
    from lifeboat.threshold.group import ThresholdError

    suite, message, commitments = serialize.decode_signing_package(
        _read(package, "signing package"), str(package)
    )
    public_suite, pkp = serialize.decode_public_key_package(_read(public, "public key package"), str(public))
    _same_suite(suite, public_suite, str(public))
    share = serialize.decode_signature_share(_read(share_file, "signature share"), str(share_file), suite)[1]
    if share.identifier not in pkp.verifying_shares:
        raise ThresholdError(f"participant {share.identifier} is not in {public}", (share.identifier,))
    valid = frost.verify_signature_share(
        suite, share, pkp.verifying_shares[share.identifier], commitments, pkp.group_public_key, message
    )
    emit(
        {"identifier": share.identifier, "valid": valid},
        lambda: stdout.print(f"participant {share.identifier}: share {'valid' if valid else 'INVALID'}"),
    )
    if not valid:
        raise typer.Exit(1)


@frost_app.command("verify")
def frost_verify(
    signature_file: Annotated[
        Path, typer.Argument(help="A signature file from 'frost aggregate'.", metavar="SIGNATURE")
    ],
    public: Annotated[
        Path | None, typer.Option("--public", help="Check it is this group's key.", metavar="FILE")
    ] = None,
    message_file: Annotated[
        Path | None, typer.Option("--message-file", "-m", help="Check it signs this message.")
    ] = None,
) -> None:
    """Verify a group signature (an ordinary Ed25519 / Schnorr / BIP-340 signature)."""
    from lifeboat.threshold import frost, serialize

    suite, message, signature, key = serialize.decode_signature(
        _read(signature_file, "signature"), str(signature_file)
    )
    problems: list[str] = []
    if public is not None:
        public_suite, pkp = serialize.decode_public_key_package(
            _read(public, "public key package"), str(public)
        )
        if public_suite.name != suite.name or not suite.group.equal(pkp.group_public_key, key):
            problems.append(f"the signature is not under the group key of {public}")
    if (
        message_file is not None
        and read_bounded(message_file, 64 * 1024 * 1024, what="message file") != message
    ):
        problems.append(f"the signature is over a different message than {message_file}")
    if not frost.verify(suite, key, message, signature):
        problems.append("the signature does not verify")
    result: dict[str, Any] = {"valid": not problems, "ciphersuite": suite.name, "problems": problems}
    emit(result, lambda: stdout.print("valid" if not problems else "INVALID: " + "; ".join(problems)))
    if problems:
        raise typer.Exit(1)


__all__ = ["frost_app", "info"]


# -- DKG --------------------------------------------------------------------------------------

dkg_app = typer.Typer(
    help="Distributed key generation: no machine ever holds the group key.", no_args_is_help=True
)
frost_app.add_typer(dkg_app, name="dkg")

IdOpt = Annotated[int, typer.Option("--id", "-i", help="Your participant identifier (1, 2, ...).")]
ThresholdOpt = Annotated[int, typer.Option("--threshold", "-t", help="Signers needed (t).")]
ParticipantsOpt = Annotated[int, typer.Option("--participants", "-n", help="Participants (n).")]
SecretOpt = Annotated[
    Path, typer.Option("--secret", "-s", help="Your secret file from the previous part.", metavar="FILE")
]
Round1Files = Annotated[
    list[Path],
    typer.Option(
        "--round1", help="Every other participant's round-one package (repeatable).", metavar="FILE"
    ),
]


def _consume(path: Path) -> None:
    """Secret state of a finished ceremony step is deleted so it cannot be replayed."""
    path.unlink(missing_ok=True)


def _files(kind: str, ident: int, directory: Path, written: list[str]) -> None:
    emit(
        {"identifier": ident, "files": written},
        lambda: stdout.print(f"participant {ident}, {kind}:\n" + "\n".join(f"  {w}" for w in written)),
    )


class _FromParticipant(Protocol):
    @property
    def identifier(self) -> int: ...


P = TypeVar("P", bound=_FromParticipant)


def _round1_packages(
    files: list[Path], decode: Callable[[bytes, str, Ciphersuite], P], suite: Ciphersuite
) -> dict[int, P]:
    """Round-one packages by sender; two files from one participant are refused."""
    from lifeboat.threshold.group import ThresholdError

    packages: dict[int, P] = {}
    for path in files:
        package = decode(_read(path, "round-one package"), str(path), suite)
        if package.identifier in packages:
            raise ThresholdError(
                f"two round-one files come from participant {package.identifier}", (package.identifier,)
            )
        packages[package.identifier] = package
    return packages


def _round2_packages(
    files: list[Path], suite: Ciphersuite, kind: str, me: int
) -> dict[int, dkg.Round2Package]:
    """The round-two shares sent to ``me``, by sender; misdirected or duplicate shares are refused."""
    from lifeboat.threshold import serialize
    from lifeboat.threshold.group import ThresholdError

    packages: dict[int, dkg.Round2Package] = {}
    for path in files:
        package = serialize.decode_round2_package(_read(path, "round-two share"), str(path), suite, kind)
        if package.receiver != me:
            raise ThresholdError(f"{path} is a share for participant {package.receiver}, not for {me}")
        if package.sender in packages:
            raise ThresholdError(
                f"two round-two shares come from participant {package.sender}", (package.sender,)
            )
        packages[package.sender] = package
    return packages


def _write_round2(
    suite: Ciphersuite,
    prefix: str,
    round2_secret: dkg.Round2SecretPackage,
    outgoing: dict[int, dkg.Round2Package],
    directory: Path,
    force: bool,
) -> list[str]:
    """Part two's outputs: the sender's secret state and one private share per receiver."""
    from lifeboat.threshold import serialize

    ident = round2_secret.identifier
    outputs = _Outputs(force)
    outputs.add(
        directory / f"{prefix}-round2-secret-{ident}.json",
        serialize.encode_round2_secret(suite, round2_secret, f"{prefix}-round2-secret"),
        secret=True,
    )
    for receiver, package in sorted(outgoing.items()):
        outputs.add(
            directory / f"{prefix}-round2-{ident}-to-{receiver}.json",
            serialize.encode_round2_package(suite, package, f"{prefix}-round2-package"),
            secret=True,
        )
    return outputs.write()


@dkg_app.command("part1")
def dkg_part1(
    identifier: IdOpt,
    threshold: ThresholdOpt,
    participants: ParticipantsOpt,
    out_dir: OutDir,
    suite_name: SuiteOpt = "ed25519",
    force: Force = False,
) -> None:
    """Round one: your secret polynomial (kept, 0600) and its commitment with a proof (broadcast)."""
    from lifeboat.threshold import dkg, serialize, suites

    suite = suites.by_name(suite_name)
    directory = _out_dir(out_dir)
    secret, package = dkg.part1(suite, identifier, participants, threshold)
    outputs = _Outputs(force)
    outputs.add(
        directory / f"dkg-round1-secret-{identifier}.json",
        serialize.encode_round1_secret(suite, secret),
        secret=True,
    )
    outputs.add(
        directory / f"dkg-round1-{identifier}.json",
        serialize.encode_round1_package(suite, package),
        secret=False,
    )
    written = outputs.write()
    _files("DKG part 1: broadcast the dkg-round1 file, keep the secret one", identifier, directory, written)


@dkg_app.command("part2")
def dkg_part2(
    secret_file: SecretOpt,
    round1: Annotated[
        list[Path], typer.Argument(help="The other participants' round-one packages.", metavar="ROUND1...")
    ],
    out_dir: OutDir,
    force: Force = False,
) -> None:
    """Round two: check everyone's proofs, then one secret share per other participant (0600)."""
    from lifeboat.threshold import dkg, serialize

    suite, secret = serialize.decode_round1_secret(_read(secret_file, "DKG secret"), str(secret_file))
    packages = _round1_packages(round1, serialize.decode_round1_package, suite)
    round2_secret, outgoing = dkg.part2(suite, secret, packages)
    directory = _out_dir(out_dir)
    ident = secret.identifier
    written = _write_round2(suite, "dkg", round2_secret, outgoing, directory, force)
    _consume(secret_file)
    _files(
        "DKG part 2: send each dkg-round2-I-to-J file privately to participant J", ident, directory, written
    )


@dkg_app.command("part3")
def dkg_part3(
    secret_file: SecretOpt,
    round1: Round1Files,
    round2: Annotated[
        list[Path], typer.Argument(help="The round-two shares sent to you.", metavar="ROUND2...")
    ],
    out_dir: OutDir,
    force: Force = False,
) -> None:
    """Round three: check the shares sent to you; write your key package and the public key package."""
    from lifeboat.threshold import dkg, serialize

    suite, secret = serialize.decode_round2_secret(_read(secret_file, "DKG secret"), str(secret_file))
    packages = _round1_packages(round1, serialize.decode_round1_package, suite)
    received = _round2_packages(round2, suite, "dkg-round2-package", secret.identifier)
    key_package, public = dkg.part3(suite, secret, packages, received)
    directory = _out_dir(out_dir)
    ident = secret.identifier
    outputs = _Outputs(force)
    outputs.add(
        directory / f"key-package-{ident}.json", serialize.encode_key_package(suite, key_package), secret=True
    )
    outputs.add(
        directory / "public-key-package.json",
        serialize.encode_public_key_package(suite, public),
        secret=False,
    )
    written = outputs.write()
    _consume(secret_file)
    _files("DKG done", ident, directory, written)


# -- repair -----------------------------------------------------------------------------------

repair_app = typer.Typer(
    help="Repair a lost share (or enrol a new participant) with t helpers.", no_args_is_help=True
)
frost_app.add_typer(repair_app, name="repair")

ParticipantOpt = Annotated[int, typer.Option("--participant", help="The identifier whose share is repaired.")]


@repair_app.command("step1")
def repair_step1(
    key: Annotated[
        Path, typer.Option("--key", "-k", help="Your (the helper's) key package.", metavar="FILE")
    ],
    helpers: Annotated[
        str, typer.Option("--helpers", help="Comma-separated helper identifiers, yours included.")
    ],
    participant: ParticipantOpt,
    out_dir: OutDir,
    force: Force = False,
) -> None:
    """Helper step 1: split your contribution into one delta per helper (0600, send privately)."""
    from lifeboat.threshold import repair, serialize

    suite, kp = serialize.decode_key_package(_read(key, "key package"), str(key))
    try:
        helper_ids = [int(x) for x in helpers.split(",") if x.strip()]
    except ValueError:
        raise UsageError("--helpers takes identifiers separated by commas, e.g. 1,2,4") from None
    deltas = repair.repair_share_step_1(suite, helper_ids, kp, participant)
    directory = _out_dir(out_dir)
    outputs = _Outputs(force)
    for receiver, value in sorted(deltas.items()):
        outputs.add(
            directory / f"repair-delta-{kp.identifier}-to-{receiver}.json",
            serialize.encode_repair_value(suite, "repair-delta", kp.identifier, receiver, participant, value),
            secret=True,
        )
    written = outputs.write()
    _files(
        f"repair of {participant}, step 1: send each delta to its helper", kp.identifier, directory, written
    )


@repair_app.command("step2")
def repair_step2(
    deltas: Annotated[
        list[Path], typer.Argument(help="The deltas sent to you (one from each helper).", metavar="DELTA...")
    ],
    out_dir: OutDir,
    force: Force = False,
) -> None:
    """Helper step 2: sum the deltas you received into one sigma for the participant (0600)."""
    from lifeboat.threshold import repair, serialize
    from lifeboat.threshold.group import ThresholdError

    parsed = [serialize.decode_repair_value(_read(f, "repair delta"), str(f), "repair-delta") for f in deltas]
    suite = parsed[0][0]
    receivers = {p[2] for p in parsed}
    participants = {p[3] for p in parsed}
    if len(receivers) != 1 or len(participants) != 1 or any(p[0].name != suite.name for p in parsed):
        raise ThresholdError("the deltas are not all for the same helper, participant and ciphersuite")
    senders = [p[1] for p in parsed]
    if len(set(senders)) != len(senders):
        raise ThresholdError("two deltas come from the same helper")
    me, participant = receivers.pop(), participants.pop()
    sigma = repair.repair_share_step_2(suite, [p[4] for p in parsed])
    directory = _out_dir(out_dir)
    path = directory / f"repair-sigma-{me}-for-{participant}.json"
    written = [
        _write(
            path,
            serialize.encode_repair_value(suite, "repair-sigma", me, participant, participant, sigma),
            secret=True,
            force=force,
        )
    ]
    _files(
        f"repair of {participant}, step 2: send the sigma to participant {participant}",
        me,
        directory,
        written,
    )


@repair_app.command("step3")
def repair_step3(
    sigmas: Annotated[list[Path], typer.Argument(help="The sigmas from every helper.", metavar="SIGMA...")],
    public: Annotated[Path, typer.Option("--public", help="The public key package.", metavar="FILE")],
    out_dir: OutDir,
    force: Force = False,
) -> None:
    """Participant step 3: rebuild your key package from the helpers' sigmas."""
    from lifeboat.threshold import repair, serialize
    from lifeboat.threshold.group import ThresholdError

    suite, pkp = serialize.decode_public_key_package(_read(public, "public key package"), str(public))
    parsed = [
        serialize.decode_repair_value(_read(f, "repair sigma"), str(f), "repair-sigma", suite) for f in sigmas
    ]
    participants = {p[3] for p in parsed}
    if len(participants) != 1:
        raise ThresholdError("the sigmas are for different participants")
    senders = [p[1] for p in parsed]
    if len(set(senders)) != len(senders):
        raise ThresholdError("two sigmas come from the same helper")
    participant = participants.pop()
    key_package = repair.repair_share_step_3(suite, [p[4] for p in parsed], participant, pkp)
    directory = _out_dir(out_dir)
    outputs = _Outputs(force)
    outputs.add(
        directory / f"key-package-{participant}.json",
        serialize.encode_key_package(suite, key_package),
        secret=True,
    )
    if participant not in pkp.verifying_shares:
        enrolled = repair.enrol(suite, pkp, participant)
        outputs.add(
            directory / "public-key-package.json",
            serialize.encode_public_key_package(suite, enrolled),
            secret=False,
        )
    written = outputs.write()
    _files("repaired", participant, directory, written)


# -- refresh ----------------------------------------------------------------------------------

refresh_app = typer.Typer(
    help="Refresh every share, keeping the group key (optionally dropping participants).",
    no_args_is_help=True,
)
frost_app.add_typer(refresh_app, name="refresh")


def _id_list(text: str | None) -> list[int]:
    if not text:
        return []
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError("identifiers are separated by commas, e.g. 1,2,4") from None


@refresh_app.command("dealer")
def refresh_dealer(
    public: Annotated[Path, typer.Option("--public", help="The current public key package.", metavar="FILE")],
    out_dir: OutDir,
    remove: Annotated[
        str | None, typer.Option("--remove", help="Identifiers to drop, comma-separated.")
    ] = None,
    force: Force = False,
) -> None:
    """Trusted dealer: one refreshing share per remaining participant (0600) and the new public package."""
    from lifeboat.threshold import refresh, serialize

    suite, pkp = serialize.decode_public_key_package(_read(public, "public key package"), str(public))
    dropped = set(_id_list(remove))
    unknown = sorted(dropped - set(pkp.verifying_shares))
    if unknown:
        raise UsageError(f"--remove names participants not in the group: {unknown}")
    keep = sorted(set(pkp.verifying_shares) - dropped)
    shares, new_public = refresh.compute_refreshing_shares(suite, pkp, keep)
    directory = _out_dir(out_dir)
    outputs = _Outputs(force)
    for i, s in sorted(shares.items()):
        outputs.add(
            directory / f"refreshing-share-{i}.json", serialize.encode_refreshing_share(suite, s), secret=True
        )
    outputs.add(
        directory / "public-key-package.json",
        serialize.encode_public_key_package(suite, new_public),
        secret=False,
    )
    written = outputs.write()
    emit({"files": written, "participants": keep}, lambda: stdout.print("\n".join(written)))


@refresh_app.command("apply")
def refresh_apply(
    key: Annotated[Path, typer.Option("--key", "-k", help="Your current key package.", metavar="FILE")],
    share: Annotated[Path, typer.Option("--share", help="Your refreshing share.", metavar="FILE")],
    public: Annotated[Path, typer.Option("--public", help="The NEW public key package.", metavar="FILE")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Your new key package (0600).", metavar="FILE")
    ],
    force: Force = False,
) -> None:
    """Participant: apply a dealer's refreshing share; check it against the new public package."""
    from lifeboat.threshold import refresh, serialize

    suite, kp = serialize.decode_key_package(_read(key, "key package"), str(key))
    refreshing = serialize.decode_refreshing_share(_read(share, "refreshing share"), str(share), suite)
    public_suite, pkp = serialize.decode_public_key_package(_read(public, "public key package"), str(public))
    _same_suite(suite, public_suite, str(public))
    new_kp = refresh.refresh_share(suite, refreshing, kp, pkp)
    _write(output, serialize.encode_key_package(suite, new_kp), secret=True, force=force)
    emit(
        {"key_package": str(output)},
        lambda: stdout.print(f"new key package {output}; destroy {key} and {share}"),
    )


@refresh_app.command("part1")
def refresh_part1(
    key: Annotated[Path, typer.Option("--key", "-k", help="Your current key package.", metavar="FILE")],
    participants: Annotated[
        int, typer.Option("--participants", "-n", help="How many take part (those who stay).")
    ],
    out_dir: OutDir,
    force: Force = False,
) -> None:
    """Distributed refresh, round one: a zero-constant polynomial (kept) and its commitment (broadcast)."""
    from lifeboat.threshold import refresh, serialize

    suite, kp = serialize.decode_key_package(_read(key, "key package"), str(key))
    secret, package = refresh.refresh_dkg_part1(suite, kp.identifier, participants, kp.min_signers)
    directory = _out_dir(out_dir)
    ident = kp.identifier
    outputs = _Outputs(force)
    outputs.add(
        directory / f"refresh-round1-secret-{ident}.json",
        serialize.encode_round1_secret(suite, secret, "refresh-round1-secret"),
        secret=True,
    )
    outputs.add(
        directory / f"refresh-round1-{ident}.json",
        serialize.encode_refresh_round1_package(suite, package),
        secret=False,
    )
    written = outputs.write()
    _files("refresh part 1", ident, directory, written)


@refresh_app.command("part2")
def refresh_part2(
    secret_file: SecretOpt,
    round1: Annotated[
        list[Path], typer.Argument(help="The others' refresh round-one packages.", metavar="ROUND1...")
    ],
    out_dir: OutDir,
    force: Force = False,
) -> None:
    """Distributed refresh, round two: one secret share per other participant (0600)."""
    from lifeboat.threshold import refresh, serialize

    suite, secret = serialize.decode_round1_secret(
        _read(secret_file, "refresh secret"), str(secret_file), "refresh-round1-secret"
    )
    packages = _round1_packages(round1, serialize.decode_refresh_round1_package, suite)
    round2_secret, outgoing = refresh.refresh_dkg_part2(suite, secret, packages)
    directory = _out_dir(out_dir)
    ident = secret.identifier
    written = _write_round2(suite, "refresh", round2_secret, outgoing, directory, force)
    _consume(secret_file)
    _files("refresh part 2: send each refresh-round2-I-to-J file privately to J", ident, directory, written)


@refresh_app.command("part3")
def refresh_part3(
    secret_file: SecretOpt,
    key: Annotated[Path, typer.Option("--key", "-k", help="Your current key package.", metavar="FILE")],
    public: Annotated[Path, typer.Option("--public", help="The current public key package.", metavar="FILE")],
    round1: Round1Files,
    round2: Annotated[
        list[Path], typer.Argument(help="The refresh shares sent to you.", metavar="ROUND2...")
    ],
    out_dir: OutDir,
    force: Force = False,
) -> None:
    """Distributed refresh, round three: your new key package and the new public key package."""
    from lifeboat.threshold import refresh, serialize

    suite, secret = serialize.decode_round2_secret(
        _read(secret_file, "refresh secret"), str(secret_file), "refresh-round2-secret"
    )
    key_suite, kp = serialize.decode_key_package(_read(key, "key package"), str(key))
    public_suite, pkp = serialize.decode_public_key_package(_read(public, "public key package"), str(public))
    _same_suite(suite, key_suite, str(key))
    _same_suite(suite, public_suite, str(public))
    packages = _round1_packages(round1, serialize.decode_refresh_round1_package, suite)
    received = _round2_packages(round2, suite, "refresh-round2-package", secret.identifier)
    new_kp, new_public = refresh.refresh_dkg_shares(suite, secret, packages, received, kp, pkp)
    directory = _out_dir(out_dir)
    ident = kp.identifier
    outputs = _Outputs(force)
    outputs.add(
        directory / f"key-package-{ident}.json", serialize.encode_key_package(suite, new_kp), secret=True
    )
    outputs.add(
        directory / "public-key-package.json",
        serialize.encode_public_key_package(suite, new_public),
        secret=False,
    )
    written = outputs.write()
    _consume(secret_file)
    _files("refreshed: destroy your old key package", ident, directory, written)
