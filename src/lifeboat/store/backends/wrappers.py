"""Wrappers that add behaviour to any backend, and an in-memory backend for tests.

* :class:`RetryingBackend` retries calls that failed with :class:`BackendUnavailable`
  (exponential backoff with jitter), except :class:`StoreTimeout`; every other error passes
  straight through.
* :class:`LimitedBackend` caps how many calls run at once (a semaphore around each call).
* :class:`FaultyBackend` injects failures, corruption and vanished objects, deterministically
  from a seed, so tests of the layers above can exercise their error paths.
* :class:`MemoryBackend` keeps objects in a dict.

Wrappers compose: ``RetryingBackend(LimitedBackend(LocalBackend(root), 4))``. They keep the
inner backend's ``name`` so messages still say where the data lives.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection
from typing import TypeVar

from lifeboat.errors import UsageError
from lifeboat.store.backends.base import (
    Backend,
    BackendUnavailable,
    ObjectNotFound,
    StoreTimeout,
    sync_backend,
    validate_key,
    validate_prefix,
)

T = TypeVar("T")

#: How a :class:`FaultyBackend` chooses calls: a probability in [0, 1], or the call numbers
#: (1 = the first call of that kind) that misbehave.
FaultSpec = float | Collection[int]


class MemoryBackend:
    """Objects in a dict, guarded by a lock. For tests and for pure code above the store."""

    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self._objects: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryBackend({self.name!r})"

    def put(self, key: str, data: bytes) -> None:
        """Store a copy of ``data``."""
        validate_key(key)
        data = bytes(data)
        with self._lock:
            self._objects[key] = data

    def get(self, key: str) -> bytes:
        """Return the stored bytes or raise ObjectNotFound."""
        validate_key(key)
        with self._lock:
            data = self._objects.get(key)
        if data is None:
            raise ObjectNotFound(f"{self.name}: object {key!r} not found")
        return data

    def list(self, prefix: str = "") -> list[str]:
        """Sorted keys starting with ``prefix``."""
        validate_prefix(prefix)
        with self._lock:
            keys = [key for key in self._objects if key.startswith(prefix)]
        return sorted(keys)

    def delete(self, key: str) -> None:
        """Forget ``key`` if present."""
        validate_key(key)
        with self._lock:
            self._objects.pop(key, None)

    def stat(self, key: str) -> int | None:
        """Size of the object, or None."""
        validate_key(key)
        with self._lock:
            data = self._objects.get(key)
        return None if data is None else len(data)


class RetryingBackend:
    """Retry :class:`BackendUnavailable` up to ``attempts`` calls in all.

    The n-th retry waits a random time between half and all of
    ``min(max_delay, base_delay * 2**(n-1))`` ("equal jitter"), so clients that failed together
    do not retry together. When every attempt fails, the last error is raised (with a note
    saying how many attempts were made). ``sleep`` is injectable for tests.
    """

    def __init__(
        self,
        inner: Backend,
        attempts: int = 5,
        base_delay: float = 0.05,
        max_delay: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if attempts < 1:
            raise UsageError(f"retry attempts must be at least 1, not {attempts}")
        if base_delay < 0 or max_delay < 0:
            raise UsageError("retry delays must not be negative")
        self.inner = inner
        self.name = inner.name
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sleep = sleep
        self._rng: random.Random = rng if rng is not None else random.SystemRandom()

    def __repr__(self) -> str:
        return f"RetryingBackend({self.inner!r}, attempts={self.attempts})"

    def delay(self, retry: int) -> float:
        """The wait before retry number ``retry`` (1-based), jitter included."""
        ceiling = min(self.max_delay, self.base_delay * (1 << (retry - 1)))
        return ceiling / 2 + self._rng.random() * ceiling / 2

    def _call(self, operation: Callable[[], T]) -> T:
        for attempt in range(1, self.attempts + 1):
            try:
                return operation()
            except StoreTimeout:
                raise  # the whole timeout already passed once; the caller moves to other stores
            except BackendUnavailable as exc:
                if attempt == self.attempts:
                    exc.add_note(f"gave up after {self.attempts} attempts")
                    raise
                self._sleep(self.delay(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def sync(self) -> None:
        """Pass :func:`sync_backend` on to the wrapped backend."""
        sync_backend(self.inner)

    def put(self, key: str, data: bytes) -> None:
        """Put, retrying transient failures."""
        self._call(lambda: self.inner.put(key, data))

    def get(self, key: str) -> bytes:
        """Get, retrying transient failures."""
        return self._call(lambda: self.inner.get(key))

    def list(self, prefix: str = "") -> list[str]:
        """List, retrying transient failures."""
        return self._call(lambda: self.inner.list(prefix))

    def delete(self, key: str) -> None:
        """Delete, retrying transient failures."""
        self._call(lambda: self.inner.delete(key))

    def stat(self, key: str) -> int | None:
        """Stat, retrying transient failures."""
        return self._call(lambda: self.inner.stat(key))


class LimitedBackend:
    """At most ``max_concurrent`` calls into ``inner`` at any moment (others wait)."""

    def __init__(self, inner: Backend, max_concurrent: int) -> None:
        if max_concurrent < 1:
            raise UsageError(f"max_concurrent must be at least 1, not {max_concurrent}")
        self.inner = inner
        self.name = inner.name
        self.max_concurrent = max_concurrent
        self._slots = threading.BoundedSemaphore(max_concurrent)

    def __repr__(self) -> str:
        return f"LimitedBackend({self.inner!r}, {self.max_concurrent})"

    def sync(self) -> None:
        """Pass :func:`sync_backend` on to the wrapped backend."""
        sync_backend(self.inner)

    def put(self, key: str, data: bytes) -> None:
        """Put within the limit."""
        with self._slots:
            self.inner.put(key, data)

    def get(self, key: str) -> bytes:
        """Get within the limit."""
        with self._slots:
            return self.inner.get(key)

    def list(self, prefix: str = "") -> list[str]:
        """List within the limit."""
        with self._slots:
            return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        """Delete within the limit."""
        with self._slots:
            self.inner.delete(key)

    def stat(self, key: str) -> int | None:
        """Stat within the limit."""
        with self._slots:
            return self.inner.stat(key)


class FaultyBackend:
    """Deterministic fault injection around ``inner``, for tests.

    ``fail_puts`` / ``fail_gets``: which put / get calls raise :class:`BackendUnavailable`
    instead of reaching ``inner`` — a probability drawn from a ``seed``-ed RNG, or a collection
    of call numbers (1-based, counted per kind). With ``fail_after_write=True`` a failing put
    still writes the object first (a timeout after the server stored it).

    ``corrupt_gets``: which get calls return the object with one byte flipped (an empty object
    comes back as one byte).

    ``drop``: objects that have vanished — a probability (decided once per key from the seed,
    so a dropped key stays dropped) or a collection of keys. Dropped objects are absent from
    ``get`` (ObjectNotFound), ``stat`` (None) and ``list``; putting one again does not bring it
    back.

    The same seed and the same sequence of calls give the same faults. ``calls`` counts calls
    by kind and ``injected`` records ``(kind, key, fault)`` for each injected fault.
    """

    def __init__(
        self,
        inner: Backend,
        *,
        fail_puts: FaultSpec = 0.0,
        fail_gets: FaultSpec = 0.0,
        corrupt_gets: FaultSpec = 0.0,
        drop: float | Collection[str] = 0.0,
        fail_after_write: bool = False,
        seed: int = 0,
    ) -> None:
        for spec in (fail_puts, fail_gets, corrupt_gets, drop):
            if isinstance(spec, float | int) and not 0.0 <= spec <= 1.0:
                raise UsageError(f"fault probability {spec} is not between 0 and 1")
        self.inner = inner
        self.name = inner.name
        self.fail_puts = fail_puts
        self.fail_gets = fail_gets
        self.corrupt_gets = corrupt_gets
        self.drop = drop
        self.fail_after_write = fail_after_write
        self.seed = seed
        self.calls: Counter[str] = Counter()
        self.injected: list[tuple[str, str, str]] = []
        self._rng = random.Random(seed)  # noqa: S311 - reproducible test faults, not security
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FaultyBackend({self.inner!r}, seed={self.seed})"

    def _hit(self, spec: FaultSpec, number: int) -> bool:
        if isinstance(spec, float | int):
            return spec > 0 and self._rng.random() < spec
        return number in spec

    def _count(self, kind: str) -> int:
        self.calls[kind] += 1
        return self.calls[kind]

    def dropped(self, key: str) -> bool:
        """Whether ``key`` is one of the objects that have vanished."""
        if isinstance(self.drop, float | int):
            if self.drop <= 0:
                return False
            digest = hashlib.sha256(f"{self.seed}:{key}".encode()).digest()
            return int.from_bytes(digest[:8], "big") / 2**64 < self.drop
        return key in self.drop

    def _unavailable(self, kind: str, key: str) -> BackendUnavailable:
        self.injected.append((kind, key, "unavailable"))
        return BackendUnavailable(f"{self.name}: injected failure of {kind} {key!r}")

    def sync(self) -> None:
        """Pass :func:`sync_backend` on to the wrapped backend."""
        sync_backend(self.inner)

    def put(self, key: str, data: bytes) -> None:
        """Put, unless this call is chosen to fail."""
        validate_key(key)
        with self._lock:
            fail = self._hit(self.fail_puts, self._count("put"))
            error = self._unavailable("put", key) if fail else None
        if error is not None and not self.fail_after_write:
            raise error
        self.inner.put(key, data)
        if error is not None:
            raise error

    def get(self, key: str) -> bytes:
        """Get, possibly failing, corrupted, or not found if dropped."""
        validate_key(key)
        with self._lock:
            number = self._count("get")
            if self._hit(self.fail_gets, number):
                raise self._unavailable("get", key)
            corrupt = self._hit(self.corrupt_gets, number)
            position = self._rng.random()
        if self.dropped(key):
            raise ObjectNotFound(f"{self.name}: object {key!r} not found")
        data = self.inner.get(key)
        if not corrupt:
            return data
        with self._lock:
            self.injected.append(("get", key, "corrupt"))
        if not data:
            return b"\x00"
        buffer = bytearray(data)
        index = min(len(buffer) - 1, int(position * len(buffer)))
        buffer[index] ^= 0x01
        return bytes(buffer)

    def list(self, prefix: str = "") -> list[str]:
        """List without the dropped objects."""
        with self._lock:
            self._count("list")
        return [key for key in self.inner.list(prefix) if not self.dropped(key)]

    def delete(self, key: str) -> None:
        """Delete (always succeeds)."""
        with self._lock:
            self._count("delete")
        self.inner.delete(key)

    def stat(self, key: str) -> int | None:
        """Stat; dropped objects have no size."""
        validate_key(key)
        with self._lock:
            self._count("stat")
        if self.dropped(key):
            return None
        return self.inner.stat(key)
