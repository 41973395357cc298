"""The recovery service as a FastAPI app: ``create_app(settings)``, run by ``lifeboat serve``.

The infrastructure every recovery endpoint stands on: the database (migrated at start), the
service key and the service's EIP-712 domain (kept in the database), the webhook outbox worker,
the sweep of time-driven transitions, problem-details errors, a body size cap, per-key rate limits,
``/healthz``, Prometheus ``/metrics``, the OpenAPI document, and the audit log's signed head and
export. The recovery endpoints themselves are in :mod:`.api`.
"""

from __future__ import annotations

import gc
import os
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lifeboat import __version__
from lifeboat.errors import RecoveryError
from lifeboat.recovery import audit, messages, migrations
from lifeboat.recovery.db import Database
from lifeboat.recovery.outbox import Outbox, OutboxWorker
from lifeboat.recovery.service import api, problems, web
from lifeboat.recovery.service.actions import Sweeper
from lifeboat.recovery.service.limits import BodyLimit, RateLimit, TokenBuckets, key_limit
from lifeboat.recovery.service.settings import ServiceKey, Settings, load_or_create_key
from lifeboat.recovery.service.witness import Witness, check_witness

__all__ = ["SETTINGS_ENV", "Service", "create_app", "create_app_from_environment", "tune_garbage_collector"]

EXPORT_MEDIA_TYPE = "application/jsonl"


@dataclass
class Service:
    """What the routes share: the database, the key, the outbox worker."""

    settings: Settings
    database: Database
    key: ServiceKey
    identity: messages.Service
    worker: OutboxWorker | None = None
    witness: Witness | None = None
    sweeper: Sweeper | None = None

    def signed_head(self) -> audit.SignedHead:
        seq, head_hash = self.database.audit_head()
        return audit.sign_head(self.key.seed, seq, head_hash, self.database.now())


class HeadBody(BaseModel):
    format: str
    version: int
    seq: int
    hash: str
    time: int
    service_key: str


class SignedHeadBody(BaseModel):
    head: HeadBody
    signature: str


class Health(BaseModel):
    status: str
    database: str
    audit_seq: int
    version: str


class _Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "lifeboat_http_requests",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "lifeboat_http_request_seconds",
            "Time to answer an HTTP request",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )


class _StateCollector(Collector):
    """Audit chain length and outbox backlog, read from the database at each scrape."""

    def __init__(self, service: Service, outbox: Outbox) -> None:
        self.service = service
        self.outbox = outbox

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            seq, _ = self.service.database.audit_head()
            counts = self.outbox.counts()
        except sa.exc.SQLAlchemyError:
            yield GaugeMetricFamily(
                "lifeboat_database_up", "Whether the database answered the scrape", value=0
            )
            return
        yield GaugeMetricFamily("lifeboat_database_up", "Whether the database answered the scrape", value=1)
        yield GaugeMetricFamily("lifeboat_audit_entries", "Entries in the audit chain", value=seq)
        family = GaugeMetricFamily("lifeboat_outbox_rows", "Webhook deliveries by status", labels=["status"])
        for status, count in sorted(counts.items()):
            family.add_metric([status], count)
        yield family


class _Instrument:
    """Count and time each request by its route template (never the raw path: bounded labels)."""

    def __init__(self, app: ASGIApp, metrics: _Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(scope["method"], route).observe(time.perf_counter() - start)


def _router() -> APIRouter:
    router = APIRouter(responses=problems.responses(413, 422, 429, 500))

    @router.get("/healthz", response_model=Health, responses=problems.responses(503), tags=["operations"])
    async def healthz(request: Request) -> Any:
        """Ready when the database answers."""
        service: Service = request.app.state.service
        try:
            await run_in_threadpool(service.database.check)
            seq, _ = await run_in_threadpool(service.database.audit_head)
        except Exception:
            raise problems.Problem(503, "the database does not answer", slug="unavailable") from None
        return Health(status="ok", database=service.database.dialect, audit_seq=seq, version=__version__)

    @router.get("/metrics", response_class=Response, tags=["operations"])
    async def metrics(request: Request) -> Response:
        """Prometheus metrics (text exposition format)."""
        registry = request.app.state.metrics.registry
        return Response(await run_in_threadpool(generate_latest, registry), media_type=CONTENT_TYPE_LATEST)

    @router.get("/v1/audit/head", response_model=SignedHeadBody, tags=["audit"])
    async def audit_head(request: Request) -> Any:
        """The audit chain's newest entry (seq, hash), signed now by the service key. Keep it:
        a later export must extend it."""
        service: Service = request.app.state.service
        head = await run_in_threadpool(service.signed_head)
        return JSONResponse(head.to_json())

    @router.get(
        "/v1/audit/export",
        response_class=StreamingResponse,
        responses={200: {"content": {EXPORT_MEDIA_TYPE: {}}, "description": "The export, JSON Lines"}},
        tags=["audit"],
    )
    async def audit_export(request: Request) -> StreamingResponse:
        """The whole audit log as JSON Lines ending in a signed head (docs/formats.md), for
        ``audit.verify``."""
        service: Service = request.app.state.service
        head = await run_in_threadpool(service.signed_head)
        lines = audit.export_lines(service.database.audit_entries(up_to=head.seq), head)
        return StreamingResponse(iter(lines), media_type=EXPORT_MEDIA_TYPE)

    return router


def tune_garbage_collector() -> None:
    """Keep the cyclic garbage collector off the long-lived objects of a service process.

    A running service allocates many short-lived objects per request; with Python's default
    settings the collector keeps passing over every object the process holds (the modules, the
    app, its models and schemas), which cost about a quarter of the CPU of a signed approval.
    What exists when this is called is frozen (``gc.freeze``: never scanned again, still freed by
    reference counting), and the youngest generation may grow larger before it is collected.
    ``lifeboat serve`` calls it once its app is built; a library user need not.
    """
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, oldest)


#: Allocations before the youngest generation is collected (Python's default is 700): a few
#: dozen requests' worth.
GC_YOUNG_THRESHOLD = 50_000


#: The chainId of a new database when none is given: the conventional local-development chain.
DEFAULT_CHAIN_ID = 31337


def _identity(database: Database, settings: Settings) -> messages.Service:
    """The database's EIP-712 domain (made at first start); a different one asked for is refused."""
    chain_id = settings.chain_id if settings.chain_id is not None else DEFAULT_CHAIN_ID
    contract = settings.verifying_contract or secrets.token_bytes(20)
    stored_chain, stored_contract = database.service_identity(chain_id, contract)
    if (settings.chain_id is not None and settings.chain_id != stored_chain) or (
        settings.verifying_contract is not None and settings.verifying_contract != stored_contract
    ):
        raise RecoveryError(
            f"this database serves chainId {stored_chain} and verifyingContract 0x{stored_contract.hex()}; "
            "its vaults are bound to that domain, so it cannot change"
        )
    return messages.Service(stored_chain, stored_contract)


#: The environment variable through which ``lifeboat serve --workers N`` hands its settings to
#: the worker processes uvicorn starts (:func:`create_app_from_environment`).
SETTINGS_ENV = "LIFEBOAT_SERVE_SETTINGS"


def create_app_from_environment() -> FastAPI:
    """The app of one ``lifeboat serve --workers N`` worker, its settings read from
    :data:`SETTINGS_ENV` (uvicorn's factory, imported by name in each worker process)."""
    text = os.environ.get(SETTINGS_ENV)
    if not text:
        raise RecoveryError(f"{SETTINGS_ENV} is not set: start workers with lifeboat serve --workers N")
    app = create_app(Settings.from_environment(text))
    tune_garbage_collector()
    return app


def create_app(settings: Settings, *, database: Database | None = None) -> FastAPI:
    """The service app. Start-up migrates (unless ``settings.migrate`` is False), loads or creates
    the service key, records its public key and starts the outbox worker."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = database or Database(settings.database_url())
        if settings.migrate:
            await run_in_threadpool(migrations.upgrade, db.engine)
        key = await run_in_threadpool(load_or_create_key, settings.key_path())
        await run_in_threadpool(db.register_service_key, key.public_key)
        await run_in_threadpool(check_witness, db, settings.witness_path(), key.public_key)
        identity = await run_in_threadpool(_identity, db, settings)
        await run_in_threadpool(db.load_clock_offset)
        db.live_offset = settings.simulated_clock
        keeper = Witness(db, key, settings.witness_path(), interval=settings.witness_interval)
        await run_in_threadpool(keeper.record)
        keeper.start()
        service = Service(settings, db, key, identity, witness=keeper)
        outbox = Outbox(db)
        if settings.deliver_webhooks:
            service.worker = OutboxWorker(outbox, interval=settings.outbox_interval)
            service.worker.start()
        sweeper = service.sweeper = Sweeper(db, interval=settings.sweep_interval)
        sweeper.start()
        app.state.service = service
        collector = _StateCollector(service, outbox)
        app.state.metrics.registry.register(collector)
        try:
            yield
        finally:
            await run_in_threadpool(sweeper.stop)
            if service.worker is not None:
                await run_in_threadpool(service.worker.stop)
            await run_in_threadpool(keeper.stop)
            app.state.metrics.registry.unregister(collector)
            outbox.close()
            if database is None:
                db.dispose()

    app = FastAPI(
        title="Lifeboat recovery service",
        version=__version__,
        description="Guardian recovery: time-locked quorum recovery with veto and a tamper-evident log. "
        "Every error is an RFC 9457 problem-details document.",
        lifespan=lifespan,
    )
    app.state.metrics = _Metrics()
    problems.install(app)
    app.include_router(_router())
    app.include_router(api.router)
    if settings.simulated_clock:
        app.include_router(api.clock_router)
    app.include_router(web.router)
    # outermost first: measure everything, then limit bodies and rates
    app.state.key_limit = key_limit(TokenBuckets(settings.rate_per_second, settings.rate_burst))
    app.add_middleware(RateLimit, buckets=TokenBuckets(settings.rate_per_second, settings.rate_burst))
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(_Instrument, metrics=app.state.metrics)
    return app
