"""The comment post answered in front of Flask (``registry.comments.fast_post``) gives what
the route gives: the same statuses, bodies, headers and rate-limit budget. Anything it does
not take goes on to the route with its body intact.

The same script runs with the fast path on and off and must see the same answers.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from registry.comments.models import Comment
from registry.database import transaction
from registry.events.models import Event
from registry.worker.jobs import run_due_transitions
from tests.registry.helpers import schedule

LIMIT = "5 per minute;50 per hour"
RECEIPT_KEYS = {"id", "tracking_number", "status", "review_id", "url", "created_at",
                "published_at", "hidden_reason"}


@pytest.fixture(params=[True, False], ids=["fast", "route"])
def app_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"COMMENT_FAST_PATH": request.param, "COMMENT_RATE_LIMIT": LIMIT}


@pytest.fixture
def route_calls(app: Flask, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths of the posts that reached the Flask route."""
    calls: list[str] = []
    view = app.view_functions["comments.post"]

    def counted(*args: Any, **kwargs: Any) -> Any:
        from flask import request

        calls.append(request.path)
        return view(*args, **kwargs)

    monkeypatch.setitem(app.view_functions, "comments.post", counted)
    return calls


@pytest.fixture
def reviews(client, token, make_technology, clock) -> dict[str, str]:
    """An open review and one whose period has not opened yet."""
    reviewer = token("reviewer")
    ids = {}
    for name, opens in (("open", 1), ("later", 30)):
        technology = make_technology(submit=True, name=f"Cameras {name}")
        response = schedule(client, reviewer, technology["id"],
                            opens=clock.now() + timedelta(days=opens))
        assert response.status_code == 201
        ids[name] = response.get_json()["id"]
    clock.advance(days=1)
    return ids


def stored(app: Flask) -> tuple[list[Comment], int]:
    with app.app_context(), transaction(app) as session:
        comments = list(session.execute(select(Comment)).scalars())
        events = session.execute(select(func.count()).select_from(Event).where(
            Event.type == "comment.published")).scalar_one()
    return comments, events


def test_both_paths_answer_alike_and_spend_one_budget(app, client, reviews, route_calls):
    assert run_due_transitions(app, app.extensions["daylight.clock"]).opened == [
        reviews["open"]]
    url = f"/api/v1/reviews/{reviews['open']}/comments"
    script: list[tuple[str, Any]] = [
        (url, {"body": "  Publish the audit logs.  ", "display_name": "Ana",
               "email": "ana@example.org", "position": "oppose"}),
        (url, {"body": "   "}),                                      # invalid: the route's 422
        ("/api/v1/reviews/rev_missing/comments", {"body": "Hello"}),  # unknown review
        (f"/api/v1/reviews/{reviews['later']}/comments", {"body": "Too early"}),
        (url, {"body": "Second"}),
        (url, {"body": "Over the limit"}),
    ]
    answers = [client.post(path, json=body) for path, body in script]
    assert [a.status_code for a in answers] == [201, 422, 404, 409, 201, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["4", "3", "2", "1", "0",
                                                                     "0"]
    now = time.time()
    for answer in answers:
        assert answer.headers["X-RateLimit-Limit"] == "5"
        assert now < int(answer.headers["X-RateLimit-Reset"]) <= now + 62
        assert 0 < int(answer.headers["Retry-After"]) <= 61
    first = answers[0]
    assert first.mimetype == "application/json"
    receipt = first.get_json()
    assert set(receipt) == RECEIPT_KEYS
    assert receipt["status"] == "published" and receipt["review_id"] == reviews["open"]
    assert receipt["url"].endswith(f"/comments/{receipt['id']}")
    assert receipt["tracking_number"].startswith("DL-")
    for answer in answers[1:4] + answers[5:]:
        assert answer.mimetype == "application/problem+json"
    assert answers[1].get_json()["errors"] == {
        "body": ["Write a comment of at least one character."]}
    assert answers[2].get_json()["detail"] == "There is no review 'rev_missing'."
    assert "has not opened yet" in answers[3].get_json()["detail"]
    assert answers[5].get_json() == {
        "type": "https://daylight.city/problems/too-many-requests",
        "title": "Too Many Requests", "status": 429, "detail": "5 per 1 minute"}
    comments, events = stored(app)
    assert sorted(c.body for c in comments) == ["Publish the audit logs.", "Second"]
    assert {c.tracking_number for c in comments} >= {receipt["tracking_number"]}
    assert events == 2
    if app.config["COMMENT_FAST_PATH"]:
        # Only the invalid post went on to the route (which counted it, once).
        assert route_calls == [url]
    else:
        assert len(route_calls) == len(script)


@pytest.mark.parametrize("app_config", [{"COMMENT_FAST_PATH": True}], indirect=False)
def test_posts_it_does_not_take_reach_the_route_with_their_body(app, client, reviews,
                                                                route_calls, token):
    run_due_transitions(app, app.extensions["daylight.clock"])
    url = f"/api/v1/reviews/{reviews['open']}/comments"
    broken = client.post(url, data=b'{"body": "unfinished', content_type="application/json")
    assert broken.status_code == 400
    unknown = client.post(url, json={"body": "Fine", "colour": "blue"})
    assert unknown.status_code == 422
    assert "colour" in unknown.get_json()["errors"]  # the route read the same bytes
    signed = client.post(url, json={"body": "From a reviewer's token"},
                         headers=token("reviewer"))
    assert signed.status_code == 201
    text = client.post(url, data=b'{"body": "As text"}', content_type="text/plain")
    assert text.status_code == 422
    assert route_calls == [url] * 4
    taken = client.post(url, json={"body": "Taken in front"})
    assert taken.status_code == 201
    assert route_calls == [url] * 4
    assert sorted(c.body for c in stored(app)[0]) == ["From a reviewer's token",
                                                      "Taken in front"]


@pytest.mark.parametrize("app_config", [{"COMMENT_FAST_PATH": True,
                                         "RATELIMIT_ENABLED": False}], indirect=False)
def test_with_the_limiter_off_no_budget_is_spent_or_shown(app, client, reviews):
    run_due_transitions(app, app.extensions["daylight.clock"])
    url = f"/api/v1/reviews/{reviews['open']}/comments"
    answers = [client.post(url, json={"body": f"Comment {i}"}) for i in range(7)]
    assert [a.status_code for a in answers] == [201] * 7
    assert all("X-RateLimit-Remaining" not in a.headers for a in answers)
    assert len(stored(app)[0]) == 7


def test_a_failing_rate_limit_store_falls_back_to_counting_in_memory(app, client, reviews,
                                                                    route_calls, monkeypatch):
    run_due_transitions(app, app.extensions["daylight.clock"])
    from registry.extensions import limiter

    def broken(*args: Any, **kwargs: Any) -> bool:
        raise ConnectionError("the rate-limit store is unreachable")

    monkeypatch.setattr(limiter.limiter, "hit", broken)  # the store's limiter, not the fallback
    app.config["PROPAGATE_EXCEPTIONS"] = False  # answer as in production, not raise
    url = f"/api/v1/reviews/{reviews['open']}/comments"
    answers = [client.post(url, json={"body": f"Comment {i}"}) for i in range(6)]
    # Still taken, and still limited: the budget (5 a minute) is counted in this process.
    assert [a.status_code for a in answers] == [201] * 5 + [429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers[:5]] == ["4", "3", "2", "1", "0"]
    assert int(answers[5].headers["Retry-After"]) > 0
    assert len(stored(app)[0]) == 5
    # The fast path hands every post to the route while the store is down: flask-limiter
    # falls back there, and checks now and then whether the store is back.
    assert route_calls == [url] * 6


@pytest.mark.parametrize("app_config", [{"COMMENT_FAST_PATH": True,
                                         "MAX_CONTENT_LENGTH": None}], indirect=False)
def test_without_a_body_size_limit_posts_are_still_taken(app, client, reviews):
    run_due_transitions(app, app.extensions["daylight.clock"])
    answer = client.post(f"/api/v1/reviews/{reviews['open']}/comments", json={"body": "Hi"})
    assert answer.status_code == 201


def test_an_ipv6_client_has_one_budget_for_its_whole_network(app, client, reviews,
                                                           route_calls):
    """One subscriber picks its IPv6 addresses at will inside its /64: a new address is not
    a new budget. Another /64 is another client; an IPv4 address written as IPv6 is the
    IPv4 client."""
    assert run_due_transitions(app, app.extensions["daylight.clock"]).opened == [
        reviews["open"]]
    url = f"/api/v1/reviews/{reviews['open']}/comments"

    def post_from(address: str, number: int) -> int:
        return client.post(url, json={"body": f"Comment {number}"},
                           environ_base={"REMOTE_ADDR": address}).status_code

    home = [f"2001:db8:5:7:{index:x}::{index + 1:x}" for index in range(6)]
    assert [post_from(address, n) for n, address in enumerate(home)] == [201] * 5 + [429]
    assert post_from("2001:db8:5:8::1", 6) == 201  # the next /64: another subscriber
    assert [post_from(address, 7 + n) for n, address in enumerate(
        ["198.51.100.7"] * 5 + ["::ffff:198.51.100.7"])] == [201] * 5 + [429]
    comments, events = stored(app)
    assert len(comments) == events == 11
    assert route_calls == ([] if app.config["COMMENT_FAST_PATH"] else [url] * 13)
