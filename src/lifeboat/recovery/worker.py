"""A background thread that runs one pass of work, then waits ``interval`` seconds or a wake-up.

The service's two loops (webhook delivery, time-driven transitions) are this one loop with a
different pass. A database that is away for a moment fails one pass, not the thread: the error's
class name is kept in ``last_error`` and the next pass tries again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import sqlalchemy as sa


class PeriodicWorker:
    """Run ``work`` until stopped; ``work`` returns True when more is due at once (skip the wait)."""

    def __init__(self, work: Callable[[], bool], *, name: str, interval: float = 1.0) -> None:
        self.interval = interval
        self._work = work
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.last_error: str | None = None

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Run a pass now (after a commit that made work due)."""
        self._wake.set()

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                more = self._work()
                self.last_error = None
            except sa.exc.SQLAlchemyError as exc:  # the database is away for a moment: try again later
                self.last_error = type(exc).__name__
                more = False
            if not more:
                self._wake.wait(self.interval)
            self._wake.clear()
