"""The service's own memory of how long its audit log was: a defence against old backups.

Each replica keeps the newest head it signed in a file (``recovery-audit-head.json`` in the
Lifeboat home), rewritten atomically every few seconds and at shutdown. At start the
database must still hold that entry with that hash. A database restored from an older backup
(or with entries deleted or rewritten) fails the check and the service refuses to start, naming
both positions, instead of carrying on from the old state and re-using its sequence numbers.
Receivers of webhooks and holders of published heads detect the same thing from outside
(``audit.verify(..., known_heads=...)``); this check catches it before any new entry is written.

The file holds a signed head (docs/formats.md, "Signed head"); it is public data.
"""

from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path

import sqlalchemy as sa

from lifeboat.errors import LifeboatError, RecoveryError
from lifeboat.fs import PUBLIC_MODE, read_bounded, write_atomic
from lifeboat.recovery import audit
from lifeboat.recovery.db import Database
from lifeboat.recovery.service.settings import ServiceKey

__all__ = ["RolledBack", "Witness", "check_witness"]


class RolledBack(RecoveryError):
    """The database's audit log is behind, or differs from, a head this service signed."""


def check_witness(database: Database, path: Path, public_key: bytes) -> audit.SignedHead | None:
    """Refuse a database whose log does not contain the head kept in ``path`` (None: no file yet)."""
    if not path.exists():
        return None
    try:
        document = json.loads(read_bounded(path, 4096, what="audit head witness"))
    except ValueError:
        raise RolledBack(f"{path} is not a signed audit head; move it aside only if you know why") from None
    kept = audit.verify_head(document, public_key, str(path))
    if kept.seq == 0:
        return kept
    found = database.audit_hash_at(kept.seq)
    head_seq, _ = database.audit_head()
    if found is None:
        raise RolledBack(
            f"the database's audit log ends at entry {head_seq}, but this service signed entry {kept.seq}: "
            "the database was restored from an older backup or entries were deleted; "
            "see docs/threat-model.md before moving the witness file aside"
        )
    if found != kept.hash:
        raise RolledBack(
            f"entry {kept.seq} in the database differs from the one this service signed: "
            "the audit log was rewritten; see docs/threat-model.md"
        )
    return kept


class Witness:
    """Writes the newest signed head to its file every ``interval`` seconds, and once at stop."""

    def __init__(self, database: Database, key: ServiceKey, path: Path, *, interval: float = 5.0) -> None:
        self.database = database
        self.key = key
        self.path = Path(path)
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lifeboat-audit-witness", daemon=True)
        self._last: int | None = None

    def record(self) -> None:
        """Write the current head if the chain grew since the last write."""
        seq, head_hash = self.database.audit_head()
        if seq == self._last:
            return
        head = audit.sign_head(self.key.seed, seq, head_hash, self.database.now())
        data = json.dumps(head.to_json(), sort_keys=True).encode() + b"\n"
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(self.path, data, mode=PUBLIC_MODE, overwrite=True)
        self._last = seq

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)
        with contextlib.suppress(sa.exc.SQLAlchemyError, LifeboatError):
            self.record()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.record()
            except (sa.exc.SQLAlchemyError, LifeboatError):  # away for a moment: the next round writes it
                continue
