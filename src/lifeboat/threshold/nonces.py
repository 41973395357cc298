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
import os
from pathlib import Path

from lifeboat.errors import StorageError
from lifeboat.threshold.group import ThresholdError

LEDGER_FILE = "frost-used-nonces"


class NonceLedger:
    """Append-only list of consumed nonce ids, one per line, in the Lifeboat home."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.path = self.home / LEDGER_FILE

    def consume(self, nonce_id: str, nonce_file: Path | None = None) -> None:
        """Record ``nonce_id`` as used (refusing one already used), then delete ``nonce_file``."""
        if not nonce_id or "\n" in nonce_id:
            raise ThresholdError("malformed nonce id")
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
                    f"nonce {nonce_id} was already used for a signature; reusing it would reveal the "
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
