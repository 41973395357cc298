"""Alembic's entry point: migrate the connection :func:`upgrade` hands over (online only)."""

from __future__ import annotations

from alembic import context

from lifeboat.recovery.db import Base
from lifeboat.recovery.migrations import VERSION_TABLE


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run the recovery migrations through lifeboat.recovery.migrations.upgrade()")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


try:
    context.config  # noqa: B018 - fails outside an Alembic run
except (AttributeError, NameError):  # imported by tooling (doctest collection): nothing to migrate
    pass
else:
    run()
