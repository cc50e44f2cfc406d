"""A comment post sent again with its ``Idempotency-Key`` is not stored twice
(``registry.comments.idempotency``): it gets the receipt of the comment it stored, on the
path in front of Flask and on the route alike, and a key reused for another comment is
refused with nothing stored."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, text

from registry.comments.idempotency import key_hash
from registry.comments.models import Comment, CommenterContact
from registry.comments.services import (
    NewComment,
    prepare_comments,
    review_windows,
    store_comments,
)
from registry.database import engine, transaction
from registry.events.models import Event
from tests.conftest import postgres_only
from tests.registry.helpers import open_period, wait_until

KEY = "5f0c4d7e-9a61-4c1b-8e0a-2b7d3f6a9c10"


@pytest.fixture(params=[True, False], ids=["fast", "route"])
def app_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"COMMENT_FAST_PATH": request.param}


@pytest.fixture
def review_id(app, client, token, make_technology, clock) -> str:
    return open_period(app, client, token("reviewer"), make_technology, clock)[1]


def post(client, review_id: str, body: dict[str, Any], key: str | None = KEY) -> Any:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post(f"/api/v1/reviews/{review_id}/comments", json=body, headers=headers)


def stored(app: Flask) -> dict[str, Any]:
    with app.app_context(), transaction(app) as session:
        comments = list(session.execute(select(Comment).order_by(Comment.id)).scalars())
        contacts = session.execute(select(func.count()).select_from(CommenterContact)
                                   ).scalar_one()
        events = session.execute(select(func.count()).select_from(Event).where(
            Event.type == "comment.published")).scalar_one()
    return {"comments": comments, "contacts": contacts, "events": events}


def test_a_post_sent_again_with_its_key_gets_the_first_receipt_and_is_stored_once(
        app, client, review_id):
    body = {"body": "Delete plate reads after 24 hours.", "display_name": "Ana",
            "email": "ana@example.org", "neighborhood": "Eastside", "position": "oppose"}
    first = post(client, review_id, body)
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    again = post(client, review_id, body)
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()  # the same id, tracking number and times
    rows = stored(app)
    assert [c.id for c in rows["comments"]] == [first.get_json()["id"]]
    assert rows["contacts"] == 1 and rows["events"] == 1
    # What is stored of the key is its hash, never the key itself.
    assert rows["comments"][0].idempotency_key == key_hash(KEY)


def test_the_key_may_be_sent_as_a_structured_field_string(app, client, review_id):
    first = post(client, review_id, {"body": "Quoted or not, one key."}, key=f'"{KEY}"')
    again = post(client, review_id, {"body": "Quoted or not, one key."}, key=KEY)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.get_json()["id"] == first.get_json()["id"]
    assert len(stored(app)["comments"]) == 1


def test_a_key_reused_for_another_comment_is_refused_and_nothing_is_stored(
        app, client, review_id):
    first = post(client, review_id, {"body": "My first comment.", "email": "a@example.org"})
    assert first.status_code == 201
    for changed in ({"body": "A different comment."},
                    {"body": "My first comment.", "email": "b@example.org"},
                    {"body": "My first comment.", "email": "a@example.org",
                     "position": "support"}):
        refused = post(client, review_id, changed)
        assert refused.status_code == 422
        assert refused.mimetype == "application/problem+json"
        problem = refused.get_json()
        assert "already used for a different comment" in problem["detail"]
        assert list(problem["errors"]) == ["Idempotency-Key"]
    rows = stored(app)
    assert len(rows["comments"]) == 1 and rows["contacts"] == 1 and rows["events"] == 1


def test_a_key_belongs_to_one_review(app, client, token, make_technology, clock, review_id):
    other = open_period(app, client, token("reviewer"), make_technology, clock)[1]
    body = {"body": "The same words on two reviews."}
    here, there = post(client, review_id, body), post(client, other, body)
    assert (here.status_code, there.status_code) == (201, 201)
    assert here.get_json()["id"] != there.get_json()["id"]
    assert "Idempotent-Replayed" not in there.headers
    assert len(stored(app)["comments"]) == 2


def test_posts_without_a_key_are_each_stored(app, client, review_id):
    # A form letter sent by many residents is many comments: only a key makes a repeat.
    answers = [post(client, review_id, {"body": "Stop the drones."}, key=None)
               for _ in range(3)]
    assert [a.status_code for a in answers] == [201] * 3
    assert len({a.get_json()["id"] for a in answers}) == 3
    assert stored(app)["events"] == 3


@pytest.mark.parametrize("key, message", [
    ('""', "at least one character"),
    ("k" * 256, "at most 255 characters; this one has 256"),
    ("naïve", "only printable ASCII"),
])
def test_a_malformed_key_is_a_422_naming_the_header_and_nothing_is_stored(
        app, client, review_id, key, message):
    response = client.post(f"/api/v1/reviews/{review_id}/comments",
                           json={"body": "Hello"},
                           headers=[("Idempotency-Key", key.encode().decode("latin-1"))])
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    errors = response.get_json()["errors"]
    assert list(errors) == ["Idempotency-Key"]
    assert message in errors["Idempotency-Key"][0]
    assert stored(app)["comments"] == []


def test_the_replayed_receipt_shows_the_comment_as_it_stands_now(app, client, review_id,
                                                                 token):
    first = post(client, review_id, {"body": "Hide me later."}).get_json()
    hidden = client.post(f"/api/v1/comments/{first['id']}/hide", json={"reason": "Off topic"},
                         headers=token("reviewer"))
    assert hidden.status_code == 200
    again = post(client, review_id, {"body": "Hide me later."})
    assert again.status_code == 201
    assert again.get_json()["status"] == "hidden"
    assert again.get_json()["hidden_reason"] == "Off topic"
    assert again.get_json()["tracking_number"] == first["tracking_number"]


RACED = {"body": "Sent from two tabs at once.", "display_name": None, "email": None,
         "neighborhood": None, "position": None}


def race_another_process(app: Flask, review_id: str, clock: Any,
                         send: Callable[[], Any]) -> tuple[str, Any]:
    """Another process inserts ``RACED`` under ``KEY`` and holds its transaction open while
    ``send`` (in a thread) posts the same; once ``send`` waits on the key's index, the other
    commits. The other's comment id, and what ``send`` returned."""
    other = engine(app).connect()
    other.begin()
    window = review_windows(other, [review_id])[review_id]
    with app.app_context():  # the event's links are built from the settings
        prepared = prepare_comments(
            [NewComment(window, RACED, None, clock.now(), key_hash(KEY))], moderation="post")
    store_comments(other, prepared)
    answers: list[Any] = []
    sender = threading.Thread(target=lambda: answers.append(send()))
    sender.start()
    with engine(app).connect() as watcher:
        wait_until(lambda: watcher.execute(text(
            "SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar() > 0, 10,
            "the post to wait on the other process's key")
    other.commit()
    other.close()
    sender.join(timeout=30)
    assert answers, "the post never answered"
    return prepared[0].comment.id, answers[0]


@postgres_only
@pytest.mark.parametrize("app_config", [{"COMMENT_FAST_PATH": True}])
def test_a_post_stored_meanwhile_by_another_process_is_answered_with_its_comment(
        app, review_id, clock):
    """Another web process commits the same post while this one waits on the key's index:
    this one's insert fails on the unique key, and the post, written alone again, finds that
    comment."""
    theirs, answer = race_another_process(app, review_id, clock, lambda: post(
        app.test_client(), review_id, {"body": RACED["body"]}))
    assert answer.status_code == 201
    assert answer.headers["Idempotent-Replayed"] == "true"
    assert answer.get_json()["id"] == theirs
    rows = stored(app)
    assert len(rows["comments"]) == 1 and rows["events"] == 1


@postgres_only
@pytest.mark.parametrize("app_config", [{}])
def test_a_page_post_stored_meanwhile_by_another_process_is_answered_with_its_comment(
        app, review_id, clock):
    """The page's path (a session, not the writer): its insert waits on the other process's
    key, fails on it once that commits, and the savepoint lets it answer with that comment
    in the same transaction."""
    from registry.comments.services import post_comment
    from registry.reviews.services import get_review

    def post_from_page() -> Any:
        with app.app_context(), transaction(app) as session:
            return post_comment(session, get_review(session, review_id), RACED,
                                moderation="post", client=None, now=clock.now(),
                                idempotency_key=key_hash(KEY))

    theirs, posted = race_another_process(app, review_id, clock, post_from_page)
    assert posted.replayed
    assert posted.id == theirs
    rows = stored(app)
    assert len(rows["comments"]) == 1 and rows["events"] == 1


def test_a_post_sent_again_after_its_period_closed_still_gets_its_receipt(
        app, client, review_id, clock):
    # Stored in the period's last moments, its answer lost; sent again once it has closed.
    first = post(client, review_id, {"body": "Just in time."})
    assert first.status_code == 201
    clock.advance(days=60)
    again = post(client, review_id, {"body": "Just in time."})
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == first.get_json()["id"]
    # A new post (a new key) is refused: the period is closed.
    late = post(client, review_id, {"body": "Too late."}, key="another-key")
    assert late.status_code == 409
    assert len(stored(app)["comments"]) == 1
