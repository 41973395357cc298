"""Helpers for the recovery service's tests: a fresh PostgreSQL schema per test, and small steps."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from conftest_tools import in_ci

from lifeboat.recovery.db import Event, Step, Transition


def pg_base_url() -> str:
    """``$LIFEBOAT_TEST_DATABASE_URL``; skip without it (fail under CI=true)."""
    url = os.environ.get("LIFEBOAT_TEST_DATABASE_URL")
    if not url:
        reason = "LIFEBOAT_TEST_DATABASE_URL is not set (e.g. postgresql://postgres@127.0.0.1:5432/test)"
        if in_ci():
            pytest.fail(f"{reason}; CI=true, so a missing database is an error", pytrace=False)
        pytest.skip(reason)
    return url


@contextmanager
def fresh_pg_schema() -> Iterator[str]:
    """A database URL whose search_path is a new, empty schema, dropped afterwards."""
    base = pg_base_url()
    schema = f"lb_recovery_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def counter_step(actor: str = "tester") -> Step:
    """A step that adds one to the state's counter and logs it (what the policy's steps look like)."""

    def step(state: bytes | None, now: int) -> Transition:
        count = 0 if state is None else int(json.loads(state)["count"])
        new = json.dumps({"count": count + 1}).encode()
        return Transition(new, [Event(actor, "increment", b"", {"count": count + 1})])

    return step
