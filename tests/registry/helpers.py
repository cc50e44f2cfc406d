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
