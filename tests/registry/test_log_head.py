"""The log head each process keeps: cached reads follow changes made by other processes.

A second app on the same database stands for another web or worker process: it has its own
engine, pool and log-head watcher, and shares nothing in memory with the first.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text

from registry import create_app
from registry.database import dispose, log_head, transaction
from registry.events.head import CHANNEL, LISTENER_NAME, RESYNC_SECONDS, LogHeadWatch
from registry.events.services import append_event
from tests.conftest import postgres_only, technology_fields
from tests.registry.helpers import wait_until


@pytest.fixture
def other_process(app: Flask) -> Iterator[Flask]:
    """Another app on the same database: another process, as far as caching can tell."""
    other = create_app({"TESTING": True, "DATABASE_URL": app.config["DATABASE_URL"],
                        "SECRET_KEY": "test-secret", "PUBLIC_URL": "http://daylight.test",
                        "CLOCK": app.extensions["daylight.clock"]})
    yield other
    dispose(other)


def names(client: Any) -> list[str]:
    response = client.get("/api/v1/technologies")
    assert response.status_code == 200
    return [t["name"] for t in response.get_json()["items"]]


def database_head(app: Flask) -> int:
    with app.app_context(), transaction(app) as session:
        return int(session.execute(text("SELECT last_seq FROM event_log_head")).scalar_one())


def listening(app: Flask, client: Any, make_technology: Any) -> LogHeadWatch:
    """One public technology, read once (which starts the listener), with the listener up."""
    make_technology(submit=True, name="Cameras")
    assert names(client) == ["Cameras"]
    head = log_head(app)
    wait_until(lambda: head.live, 10, "the log-head listener to connect")
    return head


def submit_elsewhere(other: Flask, staff: dict[str, str], name: str) -> None:
    """Register and submit a technology through the other process's API."""
    client = other.test_client()
    created = client.post("/api/v1/technologies", json=technology_fields(name=name),
                          headers=staff)
    assert created.status_code == 201, created.get_json()
    submitted = client.post(f"/api/v1/technologies/{created.get_json()['id']}/submit",
                            headers=staff)
    assert submitted.status_code == 200, submitted.get_json()


def test_a_change_made_by_another_process_shows_in_cached_reads(
        app, client, staff, make_technology, other_process, backend):
    make_technology(submit=True, name="Cameras")
    assert names(client) == ["Cameras"]
    if backend == "postgresql":
        wait_until(lambda: log_head(app).live, 10, "the log-head listener to connect")
        assert names(client) == ["Cameras"]  # now served with the head in memory
    submit_elsewhere(other_process, staff, "Drones")
    # SQLite reads the head from the file on every read; PostgreSQL learns of the commit
    # from its notice, well before the listener's own re-read every RESYNC_SECONDS.
    wait_until(lambda: names(client) == ["Cameras", "Drones"], RESYNC_SECONDS / 2,
               "the other process's change to show")
    assert log_head(app).current() == database_head(app)


@postgres_only
def test_the_head_is_kept_in_memory_from_notices(app, client, staff, make_technology,
                                                 other_process):
    head = listening(app, client, make_technology)
    before = head.current()
    submit_elsewhere(other_process, staff, "Drones")
    after = database_head(app)
    assert after > before
    # Nothing in this process committed, so only a notice can move the number in memory.
    wait_until(lambda: head.current() == after, RESYNC_SECONDS / 2, "the notice")


@postgres_only
def test_a_notice_is_sent_at_commit_and_never_for_a_rollback(app, backend):
    import psycopg

    url = app.config["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        with app.app_context():
            session = app.extensions["daylight.sessions"]()
            append_event(session, type="policy.published", subject_type="policy",
                         subject_id="pol_x", data={}, now=app.extensions["daylight.clock"].now())
            session.rollback()
            session.close()
            assert list(listener.notifies(timeout=0.3)) == []
            with transaction(app) as session:
                seq = append_event(session, type="policy.published", subject_type="policy",
                                   subject_id="pol_y", data={},
                                   now=app.extensions["daylight.clock"].now()).seq
        notices = list(listener.notifies(timeout=2, stop_after=1))
    assert [(n.channel, n.payload) for n in notices] == [(CHANNEL, str(seq))]


@postgres_only
def test_reads_stay_right_while_the_listener_reconnects(app, client, staff, make_technology,
                                                        other_process, monkeypatch):
    head = listening(app, client, make_technology)
    # The listener stays down until the test lets it reconnect: on a slow machine it came
    # back (after 0.5 s) before the read below, which then raced the change's NOTIFY.
    reconnect = threading.Event()
    real_listen = head._listen

    def held_down() -> None:
        if not reconnect.is_set():
            raise ConnectionError("held down by the test")
        real_listen()

    monkeypatch.setattr(head, "_listen", held_down)
    with app.app_context(), transaction(app) as session:
        killed = session.execute(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = :name AND datname = current_database()"),
            {"name": LISTENER_NAME}).scalar_one()
    assert killed >= 1
    wait_until(lambda: not head.live, 5, "the listener to notice its connection is gone")
    # Without a listener every read asks the database: a change is seen at once.
    submit_elsewhere(other_process, staff, "Drones")
    assert names(client) == ["Cameras", "Drones"]
    assert not head.live
    reconnect.set()
    wait_until(lambda: head.live, 10, "the listener to reconnect")
    submit_elsewhere(other_process, staff, "Sensors")
    wait_until(lambda: names(client) == ["Cameras", "Drones", "Sensors"], RESYNC_SECONDS / 2,
               "a change after the reconnection to show")
