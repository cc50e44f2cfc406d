"""One database session per request (or per job), committed once at the end."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, Response, current_app, g, request
from sqlalchemy import Engine, event
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from registry.db import make_engine, make_session_factory, reset_write_intent, set_write_intent
from registry.events.head import APPENDED, LogHeadWatch

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Set in ``g`` by a view that posts a comment: its tracking number, should the commit's
#: outcome be unknown (``concurrency_problem``).
TRACKING_NUMBER = "_daylight_tracking_number"


def init_app(app: Flask) -> None:
    """Bind an engine to the app (connections open lazily, so this has no side effects)."""
    engine = make_engine(app.config["DATABASE_URL"])
    sessions = make_session_factory(engine)
    head = LogHeadWatch(engine)
    app.extensions["daylight.engine"] = engine
    app.extensions["daylight.sessions"] = sessions
    app.extensions["daylight.log_head"] = head
    # Stopped by ``dispose``: threads that hold connections of their own (``stop()``).
    app.extensions["daylight.on_dispose"] = []

    @event.listens_for(sessions, "after_commit")
    def _moved_head(session: Session) -> None:
        if session.info.pop(APPENDED, False):
            head.committed()

    @app.before_request
    def _declare_intent() -> None:
        g._daylight_intent = set_write_intent(request.method not in _SAFE_METHODS)

    @app.after_request
    def _commit(response):  # type: ignore[no-untyped-def]
        session: Session | None = g.pop("_daylight_session", None)
        if session is None:
            return response
        try:
            if response.status_code >= 400:
                session.rollback()
                return response
            try:
                session.commit()
            except (IntegrityError, OperationalError) as exc:
                # Lost a race with a concurrent request: nothing was written; say so plainly
                # instead of answering a success that did not happen. (Or the connection was
                # lost during the COMMIT: then say that it may have been saved.)
                session.rollback()
                return concurrency_problem(exc, tracking_number=g.pop(TRACKING_NUMBER, None))
            return response
        finally:
            session.close()

    @app.errorhandler(IntegrityError)
    @app.errorhandler(OperationalError)
    def _race(exc: Exception) -> Response:
        return concurrency_problem(exc)

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


def lost_at_commit(exc: Exception) -> bool:
    """Whether ``exc`` is the connection lost while its COMMIT was under way, so that the
    change may or may not have been stored (SQLAlchemy gives a failed COMMIT no statement)."""
    return (isinstance(exc, DBAPIError) and exc.connection_invalidated
            and exc.statement is None)


def concurrency_problem(exc: Exception, *, tracking_number: str | None = None) -> Response:
    """409 for a write that lost a race on a unique key, 503 for a busy database, 503
    "outcome unknown" for a connection lost during the COMMIT (with the tracking number of
    the comment being posted, if any, to look it up by). A page for pages, else a problem."""
    from registry.errors import (
        Conflict,
        OutcomeUnknown,
        Problem,
        Unavailable,
        render_problem,
        wants_html,
    )

    problem: Problem
    if isinstance(exc, IntegrityError):
        problem = Conflict("The change conflicts with another one made at the same moment; "
                           "nothing was saved. Reload and try again.")
    else:
        # The operator's only sign of an outage in the web processes: one line a request,
        # the driver's first line (never the statement's parameters: they may hold emails).
        reason = str(getattr(exc, "orig", exc) or type(exc).__name__).splitlines()[0][:200]
        current_app.logger.warning("database unavailable for %s %s: %s", request.method,
                                   request.path, reason)
        if lost_at_commit(exc):
            # Residents on the page are not told about API headers.
            problem = OutcomeUnknown.lost_commit(tracking_number, api=not wants_html())
        elif request.method in _SAFE_METHODS:  # a read: there was nothing to save
            problem = Unavailable.not_answering()
        else:
            problem = Unavailable.nothing_saved()
    if wants_html():
        from werkzeug.exceptions import Conflict as ConflictPage
        from werkzeug.exceptions import ServiceUnavailable

        from registry.pages.errors import render_error_page

        page = (ConflictPage if problem.status == 409 else ServiceUnavailable)(problem.detail)
        response = render_error_page(page)
        response.headers.update(problem.headers)
        return response
    return render_problem(problem)


def log_head(app: Flask | None = None) -> LogHeadWatch:
    """The app's view of the event log's last ``seq`` (``registry.events.head``)."""
    return (app or current_app).extensions["daylight.log_head"]  # type: ignore[no-any-return]


def dispose(app: Flask) -> None:
    """Stop the log-head listener and the app's other threads that hold connections (the
    comment writer), then close every pooled connection (tests, tools)."""
    for stop in app.extensions["daylight.on_dispose"]:
        stop()
    log_head(app).stop()
    engine(app).dispose()


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
