"""The event log: one event per change, none for a rolled-back change, and following by seq."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from registry.events.catalog import EVENT_TYPES
from registry.events.models import Event


def event_count(app: Any) -> int:
    from registry.database import transaction

    with app.app_context(), transaction() as session:
        return int(session.execute(select(func.count()).select_from(Event)
                                   .where(Event.type != "policy.published")).scalar_one())


def test_seq_is_gap_free_and_increasing(client, staff, make_technology):
    for i in range(3):
        body = make_technology(submit=True, name=f"T{i}")
        client.patch(f"/api/v1/technologies/{body['id']}", json={"retention_days": 60 + i},
                     headers=staff)
    items = client.get("/api/v1/events", query_string={"limit": 200}).get_json()["items"]
    seqs = [e["seq"] for e in items]
    assert seqs == list(range(1, len(seqs) + 1))
    assert all(e["id"].startswith("evt_") for e in items)
    assert all(e["timestamp"].endswith("+00:00") for e in items)


def test_a_request_that_fails_after_writing_leaves_no_event_and_no_change(
        app, client, staff, make_technology, monkeypatch):
    from registry.errors import Conflict
    from registry.technologies import services

    draft = make_technology()

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise Conflict("simulated failure after the event was written")

    monkeypatch.setattr("registry.assessments.services.assess_technology", refuse)
    response = client.post(f"/api/v1/technologies/{draft['id']}/submit", headers=staff)
    assert response.status_code == 409
    assert event_count(app) == 0
    assert client.get(f"/api/v1/technologies/{draft['id']}",
                      headers=staff).get_json()["status"] == "draft"
    assert services  # the service module really was the one patched


def test_a_crash_after_writing_leaves_no_event(app, client, staff, make_technology, monkeypatch):
    draft = make_technology()

    def crash(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("simulated crash")

    monkeypatch.setattr("registry.assessments.services.assess_technology", crash)
    with pytest.raises(RuntimeError):
        client.post(f"/api/v1/technologies/{draft['id']}/submit", headers=staff)
    assert event_count(app) == 0


def test_after_and_type_filters(client, staff, make_technology):
    first = make_technology(submit=True, name="A")
    client.patch(f"/api/v1/technologies/{first['id']}", json={"retention_days": 99},
                 headers=staff)
    make_technology(submit=True, name="B")
    everything = client.get("/api/v1/events").get_json()["items"]
    after = everything[0]["seq"]
    later = client.get("/api/v1/events", query_string={"after": after}).get_json()["items"]
    assert [e["seq"] for e in later] == [e["seq"] for e in everything[1:]]
    updated = client.get("/api/v1/events",
                         query_string={"type": "technology.updated"}).get_json()["items"]
    assert [e["type"] for e in updated] == ["technology.updated"]
    both = client.get("/api/v1/events",
                      query_string={"type": "technology.updated,technology.submitted"})
    assert {e["type"] for e in both.get_json()["items"]} == {"technology.updated",
                                                             "technology.submitted"}


def test_unknown_event_type_filter_is_422(client):
    response = client.get("/api/v1/events", query_string={"type": "technology.exploded"})
    assert response.status_code == 422
    assert "type" in response.get_json()["errors"]
    response = client.get("/api/v1/events", query_string={"type": "webhook.test"})
    assert response.status_code == 422


def test_event_cursor_pages_through_the_log(client, make_technology):
    for i in range(5):
        make_technology(submit=True, name=f"T{i}")
    all_seqs = [e["seq"] for e in client.get("/api/v1/events",
                                             query_string={"limit": 200}).get_json()["items"]]
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        body = client.get("/api/v1/events", query_string=params).get_json()
        seen += [e["seq"] for e in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == all_seqs


def test_event_types_catalog_describes_every_type(client):
    body = client.get("/api/v1/event-types").get_json()
    names = [item["type"] for item in body["items"]]
    assert set(names) == set(EVENT_TYPES)
    for required in ("technology.submitted", "comment_period.opened", "review.decided",
                     "policy.published", "webhook.test"):
        assert required in names
    assert all(item["description"] and isinstance(item["example"], dict)
               for item in body["items"])


def test_real_events_have_the_shape_of_their_catalog_example(client, staff, make_technology):
    body = make_technology(submit=True)
    client.patch(f"/api/v1/technologies/{body['id']}", json={"retention_days": 1},
                 headers=staff)
    client.post(f"/api/v1/technologies/{body['id']}/withdraw", headers=staff)
    items = client.get("/api/v1/events", query_string={"limit": 200}).get_json()["items"]
    assert items
    for event in items:
        example = EVENT_TYPES[event["type"]].example
        assert set(event["data"]) == set(example), event["type"]
        for key, value in example.items():
            if isinstance(value, dict) and isinstance(event["data"][key], dict):
                assert set(event["data"][key]) == set(value), (event["type"], key)
    # A first submission is assessed after its event: the catalog says its tier is null.
    submitted = next(e for e in items if e["type"] == "technology.submitted")
    assert submitted["data"]["technology"]["risk_tier"] is None
    assert EVENT_TYPES["technology.submitted"].example["technology"]["risk_tier"] is None
    assert "assessment.completed" in EVENT_TYPES["technology.submitted"].description


def test_events_appended_together_keep_their_order_numbers_and_values(app):
    # Several events in one append (a group of comments): each gets the next number in
    # order, and every value reads back as given (a non-UTC time, text that is not ASCII,
    # no technology).
    from datetime import datetime, timedelta, timezone

    from registry.database import engine, log_head, transaction
    from registry.events.services import NewEvent, append_events_on

    zone = timezone(timedelta(hours=-8))
    given = [NewEvent(type="comment.published", subject_type="comment", subject_id=f"cmt_{i}",
                      data={"comment": {"body": f"Ñandú {i} — 監視"}, "n": i},
                      timestamp=datetime(2026, 12, 6, 1, 2, 3, 456789, tzinfo=zone)
                      + timedelta(seconds=i),
                      technology_id=None if i == 1 else "tech_x") for i in range(3)]
    with app.app_context():
        before = log_head(app).current()
        with engine(app).begin() as connection:
            appended = append_events_on(connection, given)
        with transaction(app) as session:
            rows = list(session.execute(select(Event).where(Event.seq > before)
                                        .order_by(Event.seq)).scalars())
    assert [a.seq for a in appended] == [before + 1, before + 2, before + 3]
    assert [(r.id, r.seq) for r in rows] == [(a.id, a.seq) for a in appended]
    for row, event in zip(rows, given, strict=True):
        assert (row.type, row.subject_type, row.subject_id, row.technology_id, row.data) == (
            event.type, event.subject_type, event.subject_id, event.technology_id, event.data)
        assert row.timestamp == event.timestamp and row.timestamp.utcoffset() == timedelta(0)
