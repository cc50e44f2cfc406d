"""Fixtures for the resident pages: a technology with an open review, comments, form posts."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from registry.clock import FakeClock

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
FORM_KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')


def csrf_token(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = CSRF.search(html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def form_key(html: str) -> str:
    """The one-time key of the comment form on a page."""
    match = FORM_KEY.search(html)
    assert match, "the page has no comment form with a key"
    return match.group(1)


@pytest.fixture
def schedule_review(client: FlaskClient, token: Callable[..., dict[str, str]],
                    clock: FakeClock) -> Callable[..., dict[str, Any]]:
    """Schedule a review of a submitted technology through the API; returns its JSON."""
    reviewer = token("reviewer")

    def schedule(technology_id: str, *, opens_in: timedelta = timedelta(hours=1),
                 days: int = 46, meeting_in: timedelta = timedelta(days=5),
                 **extra: Any) -> dict[str, Any]:
        opens = clock.now() + opens_in
        body = {
            "comment_opens_at": opens.isoformat(),
            "comment_closes_at": (opens + timedelta(days=days)).isoformat(),
            "meetings": [{"starts_at": (opens + meeting_in).isoformat(),
                          "place": "Central Library, Room 2", "languages": ["en", "es"]}],
            **extra,
        }
        response = client.post(f"/api/v1/technologies/{technology_id}/reviews", json=body,
                               headers=reviewer)
        assert response.status_code == 201, response.get_json()
        result: dict[str, Any] = response.get_json()
        return result

    return schedule


@pytest.fixture
def open_review(app: Flask, clock: FakeClock, make_technology: Callable[..., dict[str, Any]],
                schedule_review: Callable[..., dict[str, Any]]
                ) -> Callable[..., tuple[dict[str, Any], dict[str, Any]]]:
    """A submitted technology whose comment period is open now: ``(technology, review)``."""
    from registry.worker.jobs import run_due_transitions

    def make(**overrides: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        technology = make_technology(submit=True, **overrides)
        review = schedule_review(technology["id"])
        clock.advance(hours=2)
        assert review["id"] in run_due_transitions(app, clock).opened
        return technology, review

    return make


@pytest.fixture
def add_comments(app: Flask, clock: FakeClock) -> Callable[..., list[str]]:
    """Publish comments on a review through the service (no rate limit); returns tracking
    numbers."""
    from registry.comments.services import post_comment
    from registry.database import transaction
    from registry.reviews.services import get_review

    def add(review_id: str, bodies: list[str], **fields: Any) -> list[str]:
        numbers = []
        with app.app_context(), transaction(app) as session:
            review = get_review(session, review_id)
            for body in bodies:
                comment = post_comment(session, review, {"body": body, **fields},
                                       moderation="post", client=None, now=clock.now())
                numbers.append(comment.tracking_number)
        return numbers

    return add


@pytest.fixture
def post_form(client: FlaskClient) -> Callable[..., Any]:
    """Post the comment form of a technology page as a browser would, CSRF token included."""

    def post(technology_id: str, review_id: str, **fields: str) -> Any:
        page = client.get(f"/technologies/{technology_id}").get_data(as_text=True)
        # Every hidden field, as a browser sends them.
        data = {"csrf_token": csrf_token(page), "idempotency_key": form_key(page), **fields}
        return client.post(f"/technologies/{technology_id}/reviews/{review_id}/comments",
                           data=data)

    return post


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Pages show times in the city's zone: use one that is not UTC, to see it is applied."""
    return {"TIMEZONE": "America/Los_Angeles"}
