"""Round-one nonces are used at most once: a ledger of consumed nonces, and consumption itself.

A nonce file is the only copy of a participant's two round-one nonces. Signing twice with the
same nonces on different messages (or different commitment sets) reveals the signing share, so
round two consumes the file: it first records the nonce's id in the ledger (fsync'ed, under an
exclusive lock), then deletes the nonce file, and only then computes the signature share. A copy
of the file that is presented again is refused by the ledger.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from pathlib import Path

from lifeboat.errors import StorageError
from lifeboat.threshold.group import ThresholdError

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
    """Append-only list of consumed nonce ids, one per line, in the Lifeboat home."""

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
