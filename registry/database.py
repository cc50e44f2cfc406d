"""One database session per request (or per job), committed once at the end."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, current_app, g, request
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from registry.db import make_engine, make_session_factory, reset_write_intent, set_write_intent

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def init_app(app: Flask) -> None:
    """Bind an engine to the app (connections open lazily, so this has no side effects)."""
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["daylight.engine"] = engine
    app.extensions["daylight.sessions"] = make_session_factory(engine)

    @app.before_request
    def _declare_intent() -> None:
        g._daylight_intent = set_write_intent(request.method not in _SAFE_METHODS)

    @app.after_request
    def _commit(response):  # type: ignore[no-untyped-def]
        session: Session | None = g.pop("_daylight_session", None)
        if session is not None:
            try:
                if response.status_code < 400:
                    session.commit()
                else:
                    session.rollback()
            finally:
                session.close()
        return response

    @app.teardown_request
    def _close(_exc: BaseException | None) -> None:
        # Reached with a session still open only when the view raised: nothing is kept.
        session: Session | None = g.pop("_daylight_session", None)
        if session is not None:
            session.rollback()
            session.close()
        token = g.pop("_daylight_intent", None)
        if token is not None:
            reset_write_intent(token)


def engine(app: Flask | None = None) -> Engine:
    """The app's engine."""
    return (app or current_app).extensions["daylight.engine"]  # type: ignore[no-any-return]


def session_factory(app: Flask | None = None) -> sessionmaker[Session]:
    """The app's session factory (for jobs that manage their own transactions)."""
    return (app or current_app).extensions["daylight.sessions"]  # type: ignore[no-any-return]


def db() -> Session:
    """The current request's session, opened on first use."""
    session: Session | None = g.get("_daylight_session")
    if session is None:
        session = session_factory()()
        g._daylight_session = session
    return session


@contextmanager
def transaction(app: Flask | None = None) -> Iterator[Session]:
    """A session for work outside a request: commits on success, rolls back on error."""
    session = session_factory(app)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
