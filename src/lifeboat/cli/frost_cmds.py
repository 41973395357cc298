"""``lifeboat frost``: file-based FROST ceremonies, one step per participant per command.

Each participant runs its own step and exchanges files (public ones freely, secret ones only
with their owner or the one receiver named in the file name). Secret files are written 0600.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated, Any

import typer

from lifeboat.cli.output import emit, info, settings, stdout
from lifeboat.errors import StorageError, UsageError
from lifeboat.fs import PUBLIC_MODE, SECRET_MODE, read_bounded, write_atomic
from lifeboat.home import default_home
from lifeboat.threshold import frost, keygen, serialize, suites
from lifeboat.threshold.group import Ciphersuite, ThresholdError
from lifeboat.threshold.nonces import NonceLedger

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
    return read_bounded(path, serialize.MAX_DOCUMENT_BYTES, what=what)


def _write(path: Path, data: bytes, *, secret: bool, force: bool) -> str:
    write_atomic(path, data, mode=SECRET_MODE if secret else PUBLIC_MODE, overwrite=force)
    return str(path)


def _out_dir(directory: Path) -> Path:
    if not directory.is_dir():
        try:
            directory.mkdir(mode=0o700, parents=True)
        except OSError as exc:
            raise StorageError(f"cannot create {directory}: {exc.strerror}") from None
    return directory


def _same_suite(expected: Ciphersuite, got: Ciphersuite, what: str) -> None:
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
    suite = suites.by_name(suite_name)
    directory = _out_dir(out_dir)
    packages, public, _ = keygen.trusted_dealer_keygen(suite, threshold, participants)
    written = [
        _write(
            directory / f"key-package-{kp.identifier}.json",
            serialize.encode_key_package(suite, kp),
            secret=True,
            force=force,
        )
        for kp in packages
    ]
    written.append(
        _write(
            directory / "public-key-package.json",
            serialize.encode_public_key_package(suite, public),
            secret=False,
            force=force,
        )
    )
    key = suite.group.serialize_element(public.group_public_key).hex()
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
    """Round 1: fresh nonces (kept secret, used once) and their public commitment."""
    suite, kp = serialize.decode_key_package(_read(key, "key package"), str(key))
    directory = _out_dir(out_dir)
    nonces = frost.commit(suite, kp)
    nonce_id = secrets.token_hex(16)
    nonce_path = directory / f"nonces-{kp.identifier}-{nonce_id[:8]}.json"
    commitment_path = directory / f"commitment-{kp.identifier}.json"
    _write(nonce_path, serialize.encode_nonces(suite, nonces, nonce_id), secret=True, force=False)
    _write(commitment_path, serialize.encode_commitment(suite, nonces.commitment), secret=False, force=force)
    emit(
        {"identifier": kp.identifier, "nonces": str(nonce_path), "commitment": str(commitment_path)},
        lambda: stdout.print(
            f"participant {kp.identifier}: send {commitment_path} to the coordinator; keep {nonce_path} "
            "secret (it is consumed by 'frost sign')"
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
    force: Force = False,
) -> None:
    """Coordinator: bundle the message and the signers' commitments into a signing package."""
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
    _write(output, data, secret=False, force=force)
    ids = sorted(c.identifier for c in parsed)
    emit(
        {"signing_package": str(output), "signers": ids},
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
    """Round 2: your signature share. Consumes the nonce file; a nonce is never used twice."""
    suite, kp = serialize.decode_key_package(_read(key, "key package"), str(key))
    nonce_suite, nonces, nonce_id = serialize.decode_nonces(
        _read(nonces_file, "nonce file"), str(nonces_file)
    )
    package_suite, message, commitments = serialize.decode_signing_package(
        _read(package, "signing package"), str(package)
    )
    _same_suite(suite, nonce_suite, str(nonces_file))
    _same_suite(suite, package_suite, str(package))
    if nonces.identifier != kp.identifier:
        raise ThresholdError(f"{nonces_file} belongs to participant {nonces.identifier}, not {kp.identifier}")
    if output.exists() and not force:
        raise UsageError(f"{output} already exists; choose another --output")
    # Check everything that can fail before the nonce is consumed, so a bad package wastes nothing.
    share = frost.sign(suite, kp, nonces, message, commitments)
    NonceLedger(settings.home or default_home()).consume(nonce_id, nonces_file)
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
