"""Request limits: a body size cap, and token-bucket rate limits per client address and per key.

Every request is charged to the client's address (as uvicorn reports it: behind a reverse proxy,
let uvicorn read the proxy's forwarding headers so the address is the client's). A signed action
is charged a second time, to the signing key, once its signature holds (:func:`key_limit`): one
noisy guardian cannot starve the others, spreading requests over addresses does not lift a
key's limit, and a forged request cannot use up somebody else's. Nothing a client merely claims
(a header, an unverified signer) chooses a bucket. Buckets live in this process: with several
replicas each enforces its own share, which bounds the total at ``replicas x rate``. The tables
of buckets are bounded (least recently seen entries are dropped).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lifeboat.recovery.keys import PublicKey
from lifeboat.recovery.service.problems import Problem, problem_response

__all__ = ["BodyLimit", "RateLimit", "TokenBuckets", "key_limit"]

#: Paths probes and scrapers use, never limited.
EXEMPT: Final = frozenset({"/healthz", "/metrics"})


class BodyTooLarge(Problem):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


class BodyLimit:
    """Refuse a body over ``limit`` bytes: at once from Content-Length, or while it streams in."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                status = 413 if value.isdigit() else 400
                detail = (
                    f"the request body is larger than {self.limit} bytes"
                    if status == 413
                    else "the Content-Length header is not a number"
                )
                await problem_response(None, status, detail=detail)(scope, receive, send)
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, counted, send)


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class TokenBuckets:
    """Token buckets by key: ``rate`` tokens a second, at most ``burst`` saved up."""

    def __init__(
        self, rate: float, burst: int, *, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 when the request may go ahead, else the seconds until a token is back."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.pop(key, None) or _Bucket(float(self.burst), now)
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
            self._buckets[key] = bucket
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / self.rate


class RateLimit:
    """Answer 429 (with Retry-After) to a key that has used up its bucket."""

    def __init__(self, app: ASGIApp, buckets: TokenBuckets) -> None:
        self.app = app
        self.buckets = buckets

    @staticmethod
    def key_of(scope: Scope) -> str:
        client = scope.get("client")
        return "addr:" + (str(client[0]) if client else "unknown")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT:
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(self.key_of(scope))
        if wait > 0:
            response = problem_response(
                None,
                429,
                detail="too many requests from this address; slow down",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def key_limit(buckets: TokenBuckets) -> Callable[[PublicKey], None]:
    """The ``admit`` hook of :func:`~lifeboat.recovery.service.actions.apply_signed`: a 429
    problem (with Retry-After) once a verified signing key has used up its bucket."""

    def admit(signer: PublicKey) -> None:
        wait = buckets.take("key:" + signer.text)
        if wait > 0:
            raise Problem(
                429,
                "too many actions signed by this key; slow down",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )

    return admit
