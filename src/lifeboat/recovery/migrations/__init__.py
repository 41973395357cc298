"""The recovery database's schema history, as Alembic migrations shipped inside the library.

:func:`upgrade` brings a database to the newest revision; the service calls it at start (and
``lifeboat serve --migrate-only`` calls nothing else). Several replicas may start at once: on
PostgreSQL an advisory lock held for the migration's transaction lets one migrate while the
others wait and then find nothing to do; on SQLite the transaction's write lock does the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

__all__ = ["VERSION_TABLE", "config", "current", "head", "upgrade"]

#: Alembic's bookkeeping table, named for this pillar so the database can be shared.
VERSION_TABLE: Final = "alembic_version_recovery"
#: pg_advisory_xact_lock key: "lbrecov" as an integer, unique enough within one database.
_LOCK_KEY: Final = int.from_bytes(b"lbrecov", "big")


def config() -> Config:
    """An Alembic configuration pointing at this package (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).resolve().parent))
    return cfg


def head() -> str:
    """The newest revision this Lifeboat knows."""
    revision = ScriptDirectory.from_config(config()).get_current_head()
    assert revision is not None
    return revision


def current(engine: sa.Engine) -> str | None:
    """The revision the database is at (None when it was never migrated)."""
    with engine.connect() as connection:
        return MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE}
        ).get_current_revision()


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Migrate the database to ``revision`` in one transaction, safe against concurrent callers."""
    cfg = config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)
