"""``lifeboat serve``: run the recovery service (FastAPI under uvicorn).

Binds 127.0.0.1 by default; put a TLS-terminating proxy in front to serve others. The database
is SQLite in the Lifeboat home unless ``--database`` names another (``postgresql://...`` for
several replicas behind one database). ``--migrate-only`` brings the schema up to date and exits.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lifeboat.cli.output import emit, info, settings, stdout

if TYPE_CHECKING:
    from lifeboat.recovery.service.settings import Settings


def serve_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8750,
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            help="sqlite:///PATH or postgresql://USER@HOST/DB (default: recovery.db in the Lifeboat home).",
            metavar="URL",
            envvar="LIFEBOAT_DATABASE_URL",
        ),
    ] = None,
    service_key: Annotated[
        Path | None,
        typer.Option(
            "--service-key",
            help="The Ed25519 key file that signs audit heads (created 0600 if missing; default: in the home).",
            metavar="FILE",
        ),
    ] = None,
    migrate_only: Annotated[
        bool, typer.Option("--migrate-only", help="Bring the database schema up to date, then exit.")
    ] = False,
    no_migrate: Annotated[
        bool, typer.Option("--no-migrate", help="Do not migrate at start (another replica does).")
    ] = False,
    no_webhooks: Annotated[
        bool, typer.Option("--no-webhooks", help="Do not deliver webhooks from this process.")
    ] = False,
    simulated_clock: Annotated[
        bool,
        typer.Option(
            "--simulated-clock",
            help="Enable POST /v1/clock/advance (tours, drills, tests); the offset is kept in the database.",
        ),
    ] = False,
    chain_id: Annotated[
        int | None,
        typer.Option("--chain-id", help="EIP-712 chainId of a new database (default 31337).", min=0),
    ] = None,
    verifying_contract: Annotated[
        str | None,
        typer.Option(
            "--verifying-contract",
            help="EIP-712 verifyingContract (0x + 40 hex) of a new database (default: random).",
            metavar="ADDRESS",
        ),
    ] = None,
    rate: Annotated[
        float, typer.Option("--rate", help="Requests per second per client key.", min=0.001)
    ] = 20.0,
    burst: Annotated[
        int, typer.Option("--burst", help="Requests a client key may make at once.", min=1)
    ] = 40,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            help="Worker processes on one port and one database (SQLite: writers take turns).",
            min=1,
            max=64,
        ),
    ] = 1,
) -> None:
    """Run the guardian-recovery service."""
    from lifeboat.errors import UsageError
    from lifeboat.recovery.service.settings import Settings

    contract = None
    if verifying_contract is not None:
        body = verifying_contract.removeprefix("0x")
        try:
            contract = bytes.fromhex(body)
        except ValueError:
            contract = b""
        if len(contract) != 20:
            raise UsageError("--verifying-contract is an address: 0x and 40 hex digits")
    config = Settings(
        database=database,
        home=settings.home,
        service_key=service_key,
        migrate=not no_migrate,
        deliver_webhooks=not no_webhooks,
        simulated_clock=simulated_clock,
        chain_id=chain_id,
        verifying_contract=contract,
        rate_per_second=rate,
        rate_burst=burst,
    )
    if migrate_only:
        revision, dialect = _migrate(config.database_url())
        emit(
            {"ok": True, "revision": revision, "dialect": dialect},
            lambda: stdout.print(f"recovery database at revision {revision} ({dialect})"),
        )
        return
    import uvicorn

    from lifeboat.recovery.service.app import SETTINGS_ENV, create_app, tune_garbage_collector

    backend = config.database_url().split(":", 1)[0]
    if workers == 1:
        info(f"lifeboat recovery service on http://{host}:{port} ({backend})")
        app = create_app(config)
        tune_garbage_collector()
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
        return
    _prepare_for_workers(config)
    os.environ[SETTINGS_ENV] = replace(config, migrate=False).to_environment()
    info(f"lifeboat recovery service on http://{host}:{port} ({backend}, {workers} workers)")
    uvicorn.run(
        "lifeboat.recovery.service.app:create_app_from_environment",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
    )


def _prepare_for_workers(config: Settings) -> None:
    """What one process does before N workers start: migrate, and make the service key, so the
    workers do not race to do either."""
    from lifeboat.recovery.service.settings import load_or_create_key

    if config.migrate:
        _migrate(config.database_url())
    load_or_create_key(config.key_path())


def _migrate(url: str) -> tuple[str | None, str]:
    """Bring the database at ``url`` up to date; its (revision, dialect) afterwards."""
    from lifeboat.recovery import migrations
    from lifeboat.recovery.db import Database

    db = Database(url)
    try:
        migrations.upgrade(db.engine)
        return migrations.current(db.engine), db.dialect
    finally:
        db.dispose()
