"""Fresh, isolated databases for tests: a SQLite file per test, or PostgreSQL wiped per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from registry.db import make_engine

POSTGRES_ENV = "DAYLIGHT_TEST_POSTGRES_URL"
_prepared: set[str] = set()


def sqlite_url(folder: Path) -> str:
    """A SQLite URL for a new file in ``folder``."""
    return f"sqlite:///{folder / 'daylight.db'}"


def postgres_url() -> str:
    """The PostgreSQL URL under test, or skip when none is configured."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV}")
    return url


def _create_database_if_missing(url: str) -> None:
    parsed = make_url(url)
    admin = make_engine(parsed.set(database="postgres").render_as_string(hide_password=False),
                        isolation_level="AUTOCOMMIT", poolclass=None)
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": parsed.database}
            ).scalar()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    finally:
        admin.dispose()


def reset_postgres(url: str) -> None:
    """Leave the database at ``url`` with every table present and empty.

    The schema is rebuilt once per test process; after that each test truncates, which is
    far quicker than dropping and creating the tables again.
    """
    from registry.models import init_schema, seed

    if url not in _prepared:
        _create_database_if_missing(url)
        engine = make_engine(url, poolclass=None)
        try:
            with engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
            init_schema(engine)
        finally:
            engine.dispose()
        _prepared.add(url)
        return
    engine = make_engine(url, poolclass=None)
    try:
        names = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        seed(engine)
    finally:
        engine.dispose()


def fresh_engine(backend: str, folder: Path) -> Engine:
    """An engine on an empty database with the whole schema, for ``backend``."""
    from registry.models import init_schema

    if backend == "sqlite":
        engine = make_engine(sqlite_url(folder))
        init_schema(engine)
        return engine
    url = postgres_url()
    reset_postgres(url)
    return make_engine(url)
