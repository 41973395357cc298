"""What a drill did, step by step: when each step started, how long it took, whether it held.

Pure bookkeeping over an injectable clock; rendering lives in ``report``. A step is opened with
:meth:`Timeline.step` (a context manager): an exception inside marks it failed with the message
and is swallowed only when the step was opened with ``tolerate=True``; otherwise it propagates after
being recorded, so a path stops at its first broken step and the drill moves on to the next path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Phase(StrEnum):
    """The sandbox drill's acts, in order; a drill of a real setup only checks (``CHECK``)."""

    SETUP = "setup"
    OPERATE = "operate"
    CATASTROPHE = "catastrophe"
    RECOVER = "recover"
    CHECK = "check"


class PathName(StrEnum):
    """The recovery paths a drill exercises (``--scenario`` picks a subset of the sandbox's five;
    ``recovery``, the guardian-recovery service, is a path of a drill of a real setup)."""

    KEYS = "keys"
    SIGNERS = "signers"
    STORAGE = "storage"
    STATE = "state"
    CHAIN = "chain"
    RECOVERY = "recovery"


@dataclass
class Step:
    """One step: ``path`` and ``phase`` say where it belongs, ``facts`` what it measured."""

    path: PathName
    phase: Phase
    title: str
    started: float
    seconds: float = 0.0
    ok: bool | None = None  # None while running
    error: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    #: A step that held but found something to act on (a store down within tolerance, a share
    #: that no longer opens while enough others do): the path is then ``degraded``.
    warning: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path.value,
            "phase": self.phase.value,
            "title": self.title,
            "started": round(self.started, 6),
            "seconds": round(self.seconds, 6),
            "ok": self.ok,
            "error": self.error,
            "warning": self.warning,
            "facts": self.facts,
        }


#: Called when a step starts (ok is None) and again when it ends.
Listener = Callable[[Step], None]


def one_line(error: BaseException, limit: int) -> str:
    """An error's message on one line, at most ``limit`` characters (its type when it says nothing)."""
    return " ".join(str(error).split())[:limit] or type(error).__name__


class StepFailed(Exception):
    """A step's check did not hold: raised by a path to fail the step with this message."""


class Timeline:
    """The steps of one drill, with times relative to the drill's start."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter, listener: Listener | None = None):
        self._clock = clock
        self._origin = clock()
        self._listener = listener
        self.steps: list[Step] = []

    def now(self) -> float:
        """Seconds since the drill started."""
        return self._clock() - self._origin

    @contextmanager
    def step(self, path: PathName, phase: Phase, title: str, *, tolerate: bool = False) -> Iterator[Step]:
        """Time one step; record success, or failure with the exception's message."""
        record = Step(path, phase, title, started=self.now())
        self.steps.append(record)
        if self._listener is not None:
            self._listener(record)
        try:
            yield record
        except Exception as error:
            record.ok = False
            record.error = " ".join(f"{error}".split())[:500] or type(error).__name__
            record.seconds = self.now() - record.started
            if self._listener is not None:
                self._listener(record)
            if not tolerate:
                raise
        else:
            record.ok = True
            record.seconds = self.now() - record.started
            if self._listener is not None:
                self._listener(record)

    def of(self, path: PathName, phase: Phase | None = None) -> list[Step]:
        return [s for s in self.steps if s.path is path and (phase is None or s.phase is phase)]
