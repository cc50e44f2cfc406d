"""Small helpers shared by registry tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient


def iso(moment: datetime) -> str:
    """RFC 3339 with offset."""
    return moment.isoformat()


def public_events(client: FlaskClient, **params: Any) -> list[dict[str, Any]]:
    """The event log, without the bundled policies' own events."""
    items = client.get("/api/v1/events", query_string={"limit": 200, **params}).get_json()["items"]
    return [e for e in items if e["type"] != "policy.published"]


def types(client: FlaskClient) -> list[str]:
    """The types of the events in the log, oldest first."""
    return [e["type"] for e in public_events(client)]


def schedule(client: FlaskClient, headers: dict[str, str], technology_id: str, *,
             opens: datetime, days: float = 45, meetings: list[dict[str, Any]] | None = None,
             override_reason: str | None = None) -> Any:
    """POST a review of ``technology_id`` opening at ``opens`` for ``days``."""
    body: dict[str, Any] = {
        "comment_opens_at": iso(opens),
        "comment_closes_at": iso(opens + timedelta(days=days)),
        "meetings": meetings if meetings is not None else [{
            "starts_at": iso(opens + timedelta(days=3)),
            "place": "Central Library, Room 2",
            "languages": ["en", "es"],
        }],
    }
    if override_reason:
        body["override_reason"] = override_reason
    return client.post(f"/api/v1/technologies/{technology_id}/reviews", json=body,
                       headers=headers)


def open_period(app: Any, client: FlaskClient, reviewer: dict[str, str],
                make_technology: Callable[..., dict[str, Any]], clock: Any) -> tuple[str, str]:
    """A submitted technology with a review whose comment period the worker has opened:
    ``(technology id, review id)``. Moves ``clock`` a day on."""
    from registry.worker.jobs import run_due_transitions

    technology = make_technology(submit=True, name="Cameras")
    response = schedule(client, reviewer, technology["id"], opens=clock.now() + timedelta(days=1))
    assert response.status_code == 201
    clock.advance(days=1)
    review_id = response.get_json()["id"]
    assert run_due_transitions(app, clock).opened == [review_id]
    return technology["id"], review_id


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` (every 5 ms) until it holds, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


def end_session(app: Any, pid: int) -> None:
    """Terminate the PostgreSQL session ``pid`` and wait until it has ended."""
    from sqlalchemy import text

    from registry.database import engine

    with engine(app).connect() as admin:
        admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        admin.commit()

        def ended() -> bool:
            # One transaction a look: PostgreSQL reads pg_stat_activity once a transaction
            # and answers from that snapshot after, so a session still ending at the first
            # look would seem alive for the rest of the transaction.
            alive = admin.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
                                  {"pid": pid}).scalar()
            admin.rollback()
            return not alive

        wait_until(ended, 10, "the backend to end")


def lose_next_commit(app: Any, monkeypatch: pytest.MonkeyPatch, *, committed: bool,
                     only: Callable[[Any], bool] = lambda _connection: True) -> None:
    """The next COMMIT (PostgreSQL) on a connection that ``only`` accepts loses its
    connection, after the server committed it (``committed``: only the answer is lost, as
    when the database crashes just then) or before."""
    from registry.database import engine

    dialect = engine(app).dialect
    real = dialect.do_commit
    armed = {"yes": True}

    def do_commit(connection: Any) -> None:  # the pool's proxy of the driver's connection
        if not armed["yes"] or not only(connection):
            return real(connection)
        armed["yes"] = False
        if committed:
            real(connection)
        driver = connection.dbapi_connection
        end_session(app, driver.info.backend_pid)
        # The answer never comes: the driver finds its session gone.
        driver.execute("SELECT 1")
        raise AssertionError("the terminated session answered")

    monkeypatch.setattr(dialect, "do_commit", do_commit)
