"""Round-one nonces are used at most once, wherever their file is copied.

A nonce file holds a participant's two round-one nonces sealed (AES-256-GCM) under a one-time
key. That key lives in the *signer state*, a directory beside the key package
(``key-package-1.json`` → ``key-package-1.signer/``), one 0600 file per outstanding nonce file.
Round two reads the key, unseals the nonces and computes the share in memory, then deletes the
key and fsyncs the directory, and only then writes the share. Deleting the key is what consumes
the nonces: a copy of the nonce file, presented under any home or on any machine, no longer
opens. A nonce file also names the one key file that may open it (inode number and change
time), so a copy of the whole signer directory, or a file-level restore of it, does not open it
either.

A ledger of consumed nonces in the Lifeboat home remains as a second layer: it refuses nonces
this home has seen signing even if their one-time key came back (a block-level snapshot of the
signer directory, which keeps inode numbers and change times).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lifeboat.errors import StorageError
from lifeboat.fs import SECRET_MODE, write_atomic
from lifeboat.threshold import frost, serialize
from lifeboat.threshold.frost import SignatureShare, SigningCommitment
from lifeboat.threshold.group import Ciphersuite, KeyPackage, ThresholdError
from lifeboat.threshold.serialize import KeyFileIdentity, SealedNonces

STATE_SUFFIX = ".signer"


def sync_directory(directory: Path) -> None:
    """fsync ``directory`` so that names created or removed in it survive a crash; raise if it fails."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise StorageError(f"cannot sync {directory}: {exc.strerror}") from None


def remove_durably(path: Path) -> None:
    """Delete ``path`` and fsync its directory (FileNotFoundError if it is already gone)."""
    try:
        path.unlink()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise StorageError(f"cannot delete {path}: {exc.strerror}") from None
    sync_directory(path.parent)


def state_directory(key_package: Path) -> Path:
    """The signer state beside ``key_package``: its name with ``.json`` replaced by ``.signer``."""
    key_package = Path(key_package)
    stem = key_package.stem if key_package.suffix == ".json" else key_package.name
    return key_package.with_name(stem + STATE_SUFFIX)


class SignerState:
    """The one-time keys of one key package's outstanding nonce files."""

    def __init__(self, key_package: Path) -> None:
        self.directory = state_directory(key_package)

    def key_path(self, nonce_id: str) -> Path:
        return self.directory / f"one-time-key-{nonce_id}.json"

    def create(self, suite: Ciphersuite, identifier: int, nonce_id: str) -> tuple[bytes, KeyFileIdentity]:
        """A fresh one-time key, written 0600 atomically and durably; the key and its file's identity."""
        if not self.directory.is_dir():
            try:
                self.directory.mkdir(mode=0o700)
            except FileExistsError:
                if not self.directory.is_dir():
                    raise StorageError(
                        f"{self.directory} exists and is not a directory; it is where the signer state "
                        "of this key package belongs"
                    ) from None
            except OSError as exc:
                raise StorageError(
                    f"cannot create the signer state {self.directory} beside the key package: "
                    f"{exc.strerror}; 'frost commit' needs its key package in a writable directory"
                ) from None
            sync_directory(self.directory.parent)
        key = secrets.token_bytes(serialize.ONE_TIME_KEY_BYTES)
        path = self.key_path(nonce_id)
        write_atomic(path, serialize.encode_one_time_key(suite, identifier, nonce_id, key), mode=SECRET_MODE)
        status = path.stat()
        return key, KeyFileIdentity(status.st_ino, status.st_ctime_ns)

    def discard(self, nonce_id: str) -> None:
        """Remove a one-time key whose nonce file was never written."""
        with contextlib.suppress(OSError):
            self.key_path(nonce_id).unlink()

    def load(self, nonce_file: SealedNonces, what: str) -> bytes:
        """The one-time key of ``nonce_file``, refusing a used one, a copy and a foreign one."""
        path = self.key_path(nonce_file.nonce_id)
        try:
            # One open: the file whose identity is checked is the file that is read.
            with path.open("rb") as handle:
                status = os.fstat(handle.fileno())
                data = handle.read(serialize.MAX_DOCUMENT_BYTES + 1)
        except FileNotFoundError:
            raise ThresholdError(
                f"{what} was already used for a signature (its one-time key {path.name} is gone from "
                f"{self.directory}), or its signer state is missing or belongs to another key package; "
                "reusing nonces would reveal the signing share. Run 'lifeboat frost commit' again"
            ) from None
        except OSError as exc:
            raise StorageError(f"cannot read the signer state {path}: {exc.strerror}") from None
        if KeyFileIdentity(status.st_ino, status.st_ctime_ns) != nonce_file.key_file:
            raise ThresholdError(
                f"{path} is a copy or a restore of the one-time key that {what} was sealed under, not "
                "the file 'frost commit' wrote (or its owner or permissions were changed since): another "
                "copy may already have been used, so these nonces are refused. Run 'lifeboat frost "
                "commit' again"
            )
        identifier, nonce_id, key = serialize.decode_one_time_key(data, str(path), nonce_file.suite)
        if (identifier, nonce_id) != (nonce_file.identifier, nonce_file.nonce_id):
            raise ThresholdError(f"{path} is not the one-time key of {what}")
        return key

    def destroy(self, nonce_id: str, what: str) -> None:
        """Consume the nonces: delete their one-time key and make the deletion durable.

        Of two processes signing with the same nonces at once, only the one whose delete
        succeeds goes on.
        """
        path = self.key_path(nonce_id)
        try:
            remove_durably(path)
        except FileNotFoundError:
            raise ThresholdError(
                f"{what} was already used for a signature (by another 'frost sign' at the same time); "
                "run 'lifeboat frost commit' again"
            ) from None


LEDGER_FILE = "frost-used-nonces"


def ledger_key(suite_name: str, hiding_commitment: bytes, binding_commitment: bytes) -> str:
    """The ledger's name for a pair of nonces: a hash of their commitments.

    It is derived from the nonces themselves (a nonce file is refused unless its nonces match
    its commitment), so editing any free-text field of a copied file cannot get it past the
    ledger.
    """
    digest = hashlib.sha256()
    for part in (suite_name.encode(), hiding_commitment, binding_commitment):
        digest.update(len(part).to_bytes(2, "big") + part)
    return digest.hexdigest()


class NonceLedger:
    """Append-only list of consumed nonce ids, one per line, in the Lifeboat home (a second layer)."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.path = self.home / LEDGER_FILE

    def consume(self, nonce_id: str, nonce_file: Path | None = None) -> None:
        """Record ``nonce_id`` (a :func:`ledger_key`) as used, refusing a used one; delete ``nonce_file``."""
        if len(nonce_id) != 64 or not all(c in "0123456789abcdef" for c in nonce_id):
            raise ThresholdError("malformed nonce ledger key")
        try:
            self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            raise StorageError(f"cannot open the nonce ledger {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with os.fdopen(os.dup(fd), "r", encoding="ascii") as reader:
                reader.seek(0)
                used = {line.strip() for line in reader}
            if nonce_id in used:
                raise ThresholdError(
                    "these nonces were already used for a signature; reusing them would reveal the "
                    "signing share. Run 'lifeboat frost commit' again for fresh nonces"
                )
            os.write(fd, (nonce_id + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        if nonce_file is not None:
            with contextlib.suppress(FileNotFoundError):
                nonce_file.unlink()

    def is_used(self, nonce_id: str) -> bool:
        try:
            return nonce_id in {line.strip() for line in self.path.read_text(encoding="ascii").splitlines()}
        except FileNotFoundError:
            return False


@dataclass(frozen=True)
class SealedRound1:
    """Round one with single-use nonces: the nonce file to keep (secret) and the commitment to send."""

    nonce_id: str
    commitment: SigningCommitment
    nonce_file: bytes = field(repr=False)  # sealed: nothing opens it without the one-time key


def commit_sealed(suite: Ciphersuite, key_package: KeyPackage, key_path: Path) -> SealedRound1:
    """Round one (RFC 9591 5.1) whose nonces can be used only once.

    Fresh nonces are sealed under a new one-time key that is written into the signer state beside
    ``key_path`` (the file ``key_package`` was read from). The caller writes ``nonce_file`` with
    mode 0600; if it cannot, it calls ``SignerState(key_path).discard(nonce_id)``.
    """
    nonces = frost.commit(suite, key_package)
    nonce_id = secrets.token_hex(16)
    state = SignerState(key_path)
    one_time_key, key_file = state.create(suite, key_package.identifier, nonce_id)
    try:
        sealed = serialize.encode_nonces(
            suite, nonces, nonce_id, one_time_key, key_file, secrets.token_bytes(serialize.IV_BYTES)
        )
    except BaseException:
        state.discard(nonce_id)
        raise
    return SealedRound1(nonce_id, nonces.commitment, sealed)


def sign_sealed(
    suite: Ciphersuite,
    key_package: KeyPackage,
    key_path: Path,
    nonce_path: Path,
    sealed: SealedNonces,
    message: bytes,
    commitments: Sequence[SigningCommitment],
    home: Path,
) -> SignatureShare:
    """Round two (RFC 9591 5.2) with the nonces of :func:`commit_sealed`, consuming them.

    ``sealed`` is the decoded nonce file at ``nonce_path``. The share is computed in memory first,
    so a bad signing package wastes nothing; then the one-time key beside ``key_path`` is destroyed,
    the nonces are entered in the ledger of ``home`` and the nonce file is deleted. A second call
    with the same (or a copied) nonce file is refused.
    """
    what = str(nonce_path)
    nonces = serialize.open_nonces(sealed, SignerState(key_path).load(sealed, what), what)
    share = frost.sign(suite, key_package, nonces, message, commitments)
    SignerState(key_path).destroy(sealed.nonce_id, what)
    g = suite.group
    entry = ledger_key(
        suite.name,
        g.serialize_element(nonces.commitment.hiding),
        g.serialize_element(nonces.commitment.binding),
    )
    NonceLedger(home).consume(entry, nonce_path)
    return share
