"""Engines and sessions: SQLite (WAL, foreign keys, busy timeout) or PostgreSQL."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

# Whether the transaction about to begin will write. On SQLite a write transaction starts
# with BEGIN IMMEDIATE so that two writers queue on the busy timeout instead of one failing
# with "database is locked" when it upgrades a read lock; reads stay deferred and concurrent.
_write_intent: contextvars.ContextVar[bool] = contextvars.ContextVar("write_intent", default=True)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` with Daylight's connection settings."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            **kwargs,
        )
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the sqlite3 module so BEGIN is ours to issue.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if _write_intent.get() else "BEGIN")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A factory of SQLModel sessions bound to ``engine`` that keep objects usable after commit."""
    return sessionmaker(engine, class_=Session, expire_on_commit=False)


@contextmanager
def read_only() -> Iterator[None]:
    """Mark transactions begun inside this block as reads (deferred BEGIN on SQLite)."""
    token = _write_intent.set(False)
    try:
        yield
    finally:
        _write_intent.reset(token)


def set_write_intent(writes: bool) -> contextvars.Token[bool]:
    """Declare whether the coming transaction writes; returns a token for ``reset_write_intent``."""
    return _write_intent.set(writes)


def reset_write_intent(token: contextvars.Token[bool]) -> None:
    """Undo ``set_write_intent``."""
    _write_intent.reset(token)
