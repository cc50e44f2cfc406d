"""Group commit of comments: posts waiting together share a transaction, and fail alone.

To make a group form at a known moment, the writer's first transaction is held until the
other posts are queued behind it (a gate on a condition with a deadline, never a sleep).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, text

from registry.comments import services
from registry.comments.models import Comment, CommenterContact
from registry.comments.writer import comment_writer
from registry.database import dispose, engine, transaction
from registry.events.models import Event
from registry.worker.jobs import run_due_transitions
from tests.conftest import postgres_only
from tests.registry.helpers import lose_next_commit, schedule, wait_until


@pytest.fixture
def hold_first_group(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """``hold_first_group(n)``: the writer's first transaction waits until ``n`` more posts
    are queued, so that they are written together as the second group."""
    real = services.store_comments
    state = {"held": False, "behind": 0}

    def gated(*args: Any, **kwargs: Any) -> Any:
        if not state["held"]:
            state["held"] = True
            writer = comment_writer(app)
            wait_until(lambda: writer.waiting() >= state["behind"], 10,
                       "the other posts to queue")
        return real(*args, **kwargs)

    monkeypatch.setattr("registry.comments.writer.store_comments", gated)

    def arm(behind: int) -> None:
        state["behind"] = behind

    return arm


def post_all(app: Flask, posts: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """Post each ``(review_id, body)`` from its own thread (first one first); responses."""
    responses: list[Any] = [None] * len(posts)

    def send(index: int) -> None:
        review_id, body = posts[index]
        key = body.get("_key")  # sent as the Idempotency-Key header
        responses[index] = app.test_client().post(
            f"/api/v1/reviews/{review_id}/comments",
            json={name: value for name, value in body.items() if name != "_key"},
            headers={"Idempotency-Key": key} if key else {})

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(posts))]
    threads[0].start()
    writer = comment_writer(app)
    # The first post's group is taken (once its turn to write is had) before the others
    # start, so it is written alone.
    wait_until(lambda: writer.groups >= 1 and writer.waiting() == 0, 10,
               "the first post to be taken by the writer")
    for thread in threads[1:]:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert all(r is not None for r in responses), "a post never answered"
    return responses


def stored(app: Flask) -> dict[str, Any]:
    with app.app_context(), transaction(app) as session:
        comments = list(session.execute(select(Comment).order_by(Comment.id)).scalars())
        contacts = session.execute(select(func.count()).select_from(CommenterContact)
                                   ).scalar_one()
        events = list(session.execute(select(Event).where(Event.type == "comment.published")
                                      .order_by(Event.seq)).scalars())
    return {"comments": comments, "contacts": contacts, "events": events}


def scheduled_review(client, make_technology, token, clock, name: str) -> str:
    technology = make_technology(submit=True, name=name)
    response = schedule(client, token("reviewer"), technology["id"],
                        opens=clock.now() + timedelta(days=1))
    assert response.status_code == 201
    return str(response.get_json()["id"])


@pytest.fixture
def review_id(app, client, make_technology, token, clock) -> str:
    """A review whose comment period is open."""
    review = scheduled_review(client, make_technology, token, clock, "Cameras")
    clock.advance(days=1)
    assert run_due_transitions(app, clock).opened == [review]
    return review


def test_posts_waiting_together_are_stored_in_one_transaction(app, review_id,
                                                              hold_first_group):
    hold_first_group(5)
    responses = post_all(app, [(review_id, {"body": f"Comment {i}", "email": f"r{i}@x.org"})
                               for i in range(6)])
    assert [r.status_code for r in responses] == [201] * 6
    assert comment_writer(app).groups == 2  # the first alone, then the five together
    rows = stored(app)
    assert sorted(c.body for c in rows["comments"]) == [f"Comment {i}" for i in range(6)]
    assert rows["contacts"] == 6
    # One event per comment, numbered without gaps, each naming its comment.
    seqs = [e.seq for e in rows["events"]]
    assert seqs == list(range(seqs[0], seqs[0] + 6))
    assert {e.subject_id for e in rows["events"]} == {c.id for c in rows["comments"]}
    receipts = {r.get_json()["tracking_number"] for r in responses}
    assert receipts == {c.tracking_number for c in rows["comments"]}


def test_a_post_that_breaks_a_unique_key_fails_alone(app, review_id, hold_first_group,
                                                     monkeypatch):
    real_prepare = services.prepare_comments
    taken: list[str] = []

    def duplicate_tracking_number(*args: Any, **kwargs: Any) -> Any:
        prepared = real_prepare(*args, **kwargs)
        for item in prepared:
            if "DUPLICATE" in item.row["body"]:
                item.row["tracking_number"] = taken[0]
        return prepared

    first = app.test_client().post(f"/api/v1/reviews/{review_id}/comments",
                                   json={"body": "Already here"})
    taken.append(first.get_json()["tracking_number"])
    monkeypatch.setattr("registry.comments.writer.prepare_comments", duplicate_tracking_number)
    hold_first_group(3)
    responses = post_all(app, [(review_id, {"body": body}) for body in
                               ("Opening post", "Fine one", "DUPLICATE", "Fine two")])
    assert [r.status_code for r in responses] == [201, 201, 409, 201]
    assert responses[2].mimetype == "application/problem+json"
    rows = stored(app)
    assert sorted(c.body for c in rows["comments"]) == [
        "Already here", "Fine one", "Fine two", "Opening post"]
    assert rows["contacts"] == 4  # nothing half-written for the refused post
    assert len(rows["events"]) == 4


def test_a_post_to_a_closed_period_is_refused_while_its_group_is_stored(
        app, client, review_id, make_technology, token, clock, hold_first_group):
    scheduled = scheduled_review(client, make_technology, token, clock, "Drones")
    hold_first_group(2)
    responses = post_all(app, [(review_id, {"body": "First"}),
                               (scheduled, {"body": "Too early"}),
                               (review_id, {"body": "Second"})])
    assert [r.status_code for r in responses] == [201, 409, 201]
    assert "has not opened yet" in responses[1].get_json()["detail"]
    assert sorted(c.body for c in stored(app)["comments"]) == ["First", "Second"]


def test_an_unknown_review_is_a_404_and_the_writer_carries_on(app, review_id):
    client = app.test_client()
    missing = client.post("/api/v1/reviews/rev_missing/comments", json={"body": "Hello"})
    assert missing.status_code == 404
    assert client.post(f"/api/v1/reviews/{review_id}/comments",
                       json={"body": "Hello"}).status_code == 201



def test_a_cancelled_period_takes_no_more_comments(app, review_id, token):
    # The writer keeps its connection between groups; each group reads the period again.
    client = app.test_client()
    assert client.post(f"/api/v1/reviews/{review_id}/comments",
                       json={"body": "While open"}).status_code == 201
    cancelled = client.post(f"/api/v1/reviews/{review_id}/cancel",
                            json={"reason": "The department withdrew the request."},
                            headers=token("reviewer"))
    assert cancelled.status_code == 200, cancelled.get_json()
    refused = client.post(f"/api/v1/reviews/{review_id}/comments", json={"body": "Too late"})
    assert refused.status_code == 409
    assert "cancelled" in refused.get_json()["detail"]
    rows = stored(app)
    assert [c.body for c in rows["comments"]] == ["While open"]
    assert len(rows["events"]) == 1


@postgres_only
def test_a_post_after_the_writers_connection_died_is_still_stored(app, review_id):
    # The writer keeps one connection between groups; a database restart or an idle kill ends
    # it. The next group finds it dead before anything is written and goes again on a new one.
    client = app.test_client()
    assert client.post(f"/api/v1/reviews/{review_id}/comments",
                       json={"body": "Before"}).status_code == 201
    kept = comment_writer(app)._connection
    assert kept is not None
    pid = kept.connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
    with engine(app).connect() as admin:
        assert admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    response = client.post(f"/api/v1/reviews/{review_id}/comments", json={"body": "After"})
    assert response.status_code == 201, response.get_json()
    rows = stored(app)
    assert sorted(c.body for c in rows["comments"]) == ["After", "Before"]
    assert len(rows["events"]) == 2


def test_dispose_closes_the_writers_connection(app, review_id):
    assert app.test_client().post(f"/api/v1/reviews/{review_id}/comments",
                                  json={"body": "Hello"}).status_code == 201
    writer = comment_writer(app)
    assert writer._connection is not None
    dispose(app)
    assert writer._connection is None
    # A later post opens another.
    assert app.test_client().post(f"/api/v1/reviews/{review_id}/comments",
                                  json={"body": "Again"}).status_code == 201
    assert sorted(c.body for c in stored(app)["comments"]) == ["Again", "Hello"]


@pytest.fixture
def lose_commit(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Callable[[bool], None]:
    """``lose_commit(committed)``: the writer's next COMMIT loses its connection, after the
    database committed it (``True``: only the answer is lost) or before (``False``)."""

    def writers(connection: Any) -> bool:
        kept = comment_writer(app)._connection
        return kept is not None and connection is kept.connection

    def arm(committed: bool) -> None:
        lose_next_commit(app, monkeypatch, committed=committed, only=writers)

    return arm


@pytest.fixture
def never_settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer's old session seems never to end (a connection cut, not a restart), and
    it waits for that only 0.3 s: a lost COMMIT is answered "Outcome unknown"."""
    monkeypatch.setattr("registry.comments.writer.SETTLE_SECONDS", 0.3)
    monkeypatch.setattr("registry.comments.writer._SESSION_ALIVE", text("SELECT 1"))


@postgres_only
def test_a_group_whose_commit_was_lost_before_it_committed_is_written_once(
        app, review_id, lose_commit):
    # The connection died at the COMMIT and nothing was stored: once the old session has
    # ended the writer finds the comment absent, writes it again and gives its receipt.
    client = app.test_client()
    assert client.post(f"/api/v1/reviews/{review_id}/comments",
                       json={"body": "Before"}).status_code == 201
    lose_commit(False)
    response = client.post(f"/api/v1/reviews/{review_id}/comments", json={"body": "Lost"})
    assert response.status_code == 201, response.get_json()
    rows = stored(app)
    assert sorted(c.body for c in rows["comments"]) == ["Before", "Lost"]
    lost = next(c for c in rows["comments"] if c.body == "Lost")
    assert response.get_json()["tracking_number"] == lost.tracking_number
    assert len(rows["events"]) == 2


@postgres_only
def test_a_group_committed_before_its_answer_was_lost_gets_its_receipts(
        app, review_id, lose_commit, caplog):
    # Stored, but the driver saw the connection die: "nothing was saved" would be false
    # and the resident would post again. The writer finds it stored and gives the receipt.
    client = app.test_client()
    lose_commit(True)
    response = client.post(f"/api/v1/reviews/{review_id}/comments", json={"body": "Kept"})
    assert response.status_code == 201, response.get_json()
    receipt = response.get_json()
    rows = stored(app)
    assert [(c.id, c.tracking_number, c.body) for c in rows["comments"]] == [
        (receipt["id"], receipt["tracking_number"], "Kept")]
    assert len(rows["events"]) == 1
    assert client.get(f"/api/v1/comments/{receipt['tracking_number']}").status_code == 200
    assert "a comment group (posts: 1) lost its connection at COMMIT; found stored" in caplog.text
    # The writer goes on with a new connection.
    assert client.post(f"/api/v1/reviews/{review_id}/comments",
                       json={"body": "Next"}).status_code == 201
    assert len(stored(app)["comments"]) == 2


@postgres_only
def test_a_group_lost_before_committing_twice_is_refused_with_nothing_saved(
        app, review_id, lose_commit):
    # Lost at its COMMIT, found absent, written again, lost again and found absent again:
    # then the post is refused, and "nothing was saved" is true.
    client = app.test_client()
    assert client.post(f"/api/v1/reviews/{review_id}/comments",
                       json={"body": "Before"}).status_code == 201
    lose_commit(False)
    lose_commit(False)
    response = client.post(f"/api/v1/reviews/{review_id}/comments", json={"body": "Twice"})
    assert response.status_code == 503
    problem = response.get_json()
    assert problem["title"] == "Service unavailable"
    assert "nothing was saved" in problem["detail"]
    assert [c.body for c in stored(app)["comments"]] == ["Before"]


@postgres_only
def test_a_lost_commit_that_cannot_be_settled_says_so_with_the_tracking_number(
        app, review_id, lose_commit, never_settled):
    # The old session seems never to end (a connection cut, not a restart), so the writer
    # cannot tell in time: a 503 that says the outcome is unknown, never "nothing saved",
    # with the tracking number the resident can look up.
    client = app.test_client()
    lose_commit(True)
    response = client.post(f"/api/v1/reviews/{review_id}/comments", json={"body": "Unsure"})
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["title"] == "Outcome unknown"
    assert "nothing was saved" not in problem["detail"]
    assert problem["tracking_number"] in problem["detail"]
    assert response.headers["Retry-After"] == "60"
    # It was stored after all, and the resident finds it by that number.
    looked_up = client.get(f"/api/v1/comments/{problem['tracking_number']}")
    assert looked_up.status_code == 200
    assert [c.body for c in stored(app)["comments"]] == ["Unsure"]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_posts_arriving_while_the_writer_waits_for_its_turn_join_its_group(app, review_id):
    # Another connection holds SQLite's write turn: the first post's thread must wait for it.
    # The posts that queue meanwhile are taken once the turn is had, so all go in one group.
    with app.app_context():
        holder = engine(app).connect()
    holder.begin()
    writer = comment_writer(app)
    responses: list[Any] = [None] * 3

    def send(index: int) -> None:
        responses[index] = app.test_client().post(
            f"/api/v1/reviews/{review_id}/comments", json={"body": f"Comment {index}"})

    threads = [threading.Thread(target=send, args=(i,)) for i in range(3)]
    try:
        for thread in threads:
            thread.start()
        # The first post is still waiting (not yet taken) with the other two behind it.
        wait_until(lambda: writer.waiting() == 3, 10, "three posts waiting for the turn")
        assert writer.groups == 1
    finally:
        holder.rollback()
        holder.close()
    for thread in threads:
        thread.join(timeout=30)
    assert [r.status_code for r in responses] == [201] * 3
    assert writer.groups == 1
    assert sorted(c.body for c in stored(app)["comments"]) == [f"Comment {i}" for i in range(3)]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_post_that_never_gets_its_turn_is_a_503_and_the_next_is_stored(app, review_id,
                                                                         monkeypatch):
    monkeypatch.setattr("registry.db.BUSY_TIMEOUT_SECONDS", 0.2)
    with app.app_context():
        holder = engine(app).connect()
    holder.begin()
    try:
        refused = app.test_client().post(f"/api/v1/reviews/{review_id}/comments",
                                         json={"body": "Too late"})
    finally:
        holder.rollback()
        holder.close()
    assert refused.status_code == 503
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert comment_writer(app).waiting() == 0
    accepted = app.test_client().post(f"/api/v1/reviews/{review_id}/comments",
                                      json={"body": "In time"})
    assert accepted.status_code == 201
    assert [c.body for c in stored(app)["comments"]] == ["In time"]


@postgres_only
def test_a_post_whose_outcome_was_unknown_is_sent_again_with_its_key_and_stored_once(
        app, review_id, lose_commit, never_settled):
    # The case the key is for: the answer says the outcome is unknown (it was stored), and
    # the resident's app simply sends the post again with the same key.
    client = app.test_client()
    url = f"/api/v1/reviews/{review_id}/comments"
    headers = {"Idempotency-Key": "retry-me-1"}
    lose_commit(True)
    unsure = client.post(url, json={"body": "Sent twice"}, headers=headers)
    assert unsure.status_code == 503
    assert "Idempotency-Key" in unsure.get_json()["detail"]
    again = client.post(url, json={"body": "Sent twice"}, headers=headers)
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["tracking_number"] == unsure.get_json()["tracking_number"]
    rows = stored(app)
    assert [c.body for c in rows["comments"]] == ["Sent twice"]
    assert len(rows["events"]) == 1


def post_with_keys(app: Flask, review_id: str, posts: list[tuple[str, str | None]]) -> list[Any]:
    """Post each ``(text, key)`` from its own thread, the first alone (as ``post_all``)."""
    return post_all(app, [(review_id, {"body": body, "_key": key}) for body, key in posts])


def test_the_same_post_sent_twice_into_one_group_is_stored_once(app, review_id,
                                                                hold_first_group):
    hold_first_group(3)
    responses = post_with_keys(app, review_id, [("Opening post", None),
                                                ("Twice", "k-1"), ("Twice", "k-1"),
                                                ("Twice", "k-1")])
    assert [r.status_code for r in responses] == [201] * 4
    assert comment_writer(app).groups == 2
    keyed = responses[1:]
    assert len({r.get_json()["id"] for r in keyed}) == 1
    assert sorted(r.headers.get("Idempotent-Replayed", "") for r in keyed) == [
        "", "true", "true"]
    rows = stored(app)
    assert sorted(c.body for c in rows["comments"]) == ["Opening post", "Twice"]
    assert rows["contacts"] == 2 and len(rows["events"]) == 2


def test_one_key_on_two_different_posts_in_one_group_stores_one_of_them(app, review_id,
                                                                        hold_first_group):
    hold_first_group(2)
    responses = post_with_keys(app, review_id, [("Opening post", None),
                                                ("One text", "k-2"), ("Another text", "k-2")])
    assert responses[0].status_code == 201
    statuses = {r.status_code: r for r in responses[1:]}
    assert sorted(statuses) == [201, 422]  # whichever came first is stored
    assert list(statuses[422].get_json()["errors"]) == ["Idempotency-Key"]
    rows = stored(app)
    kept = next(c for c in rows["comments"] if c.body != "Opening post")
    assert kept.id == statuses[201].get_json()["id"]
    assert len(rows["comments"]) == 2 and rows["contacts"] == 2 and len(rows["events"]) == 2
