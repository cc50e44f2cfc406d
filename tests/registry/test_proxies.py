"""Behind a proxy (``DAYLIGHT_TRUSTED_PROXIES``) each resident is known by the address the
proxy saw, so each has a comment budget of their own; with no proxy configured the header
is a client's own words and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from registry.comments.models import CommenterContact
from registry.config import ConfigError, load_settings
from registry.database import transaction
from tests.pages.conftest import csrf_token
from tests.registry.helpers import open_period


@pytest.fixture
def proxies() -> int:
    """How many proxies the app under test believes."""
    return 1


@pytest.fixture(params=[True, False], ids=["fast", "route"])
def app_config(request: pytest.FixtureRequest, proxies: int) -> dict[str, Any]:
    return {"COMMENT_RATE_LIMIT": "2 per minute", "TRUSTED_PROXIES": proxies,
            "COMMENT_FAST_PATH": request.param}


@pytest.fixture
def review(app: Flask, client, token, make_technology, clock) -> tuple[str, str]:
    """(technology id, review id) of a review whose comment period is open."""
    return open_period(app, client, token("reviewer"), make_technology, clock)


def _post(client, review_id: str, forwarded_for: str, body: str) -> int:
    answer = client.post(f"/api/v1/reviews/{review_id}/comments", json={"body": body},
                         headers={"X-Forwarded-For": forwarded_for})
    return int(answer.status_code)


def _keys(app: Flask) -> list[str | None]:
    with app.app_context(), transaction(app) as session:
        return [c.client_key for c in session.execute(
            select(CommenterContact).order_by(CommenterContact.created_at)).scalars()]


def test_behind_a_proxy_each_resident_has_a_budget_of_their_own(app, client, review):
    technology_id, review_id = review
    assert [_post(client, review_id, "203.0.113.5", f"Ana {i}") for i in range(3)] == [
        201, 201, 429]
    # A client cannot buy more by writing the header itself: the proxy appends the address
    # it saw, and that last one is believed.
    assert _post(client, review_id, "198.51.100.9, 203.0.113.5", "Ana again") == 429
    assert _post(client, review_id, "198.51.100.7", "Ben") == 201
    page = client.get(f"/technologies/{technology_id}").get_data(as_text=True)
    form = client.post(f"/technologies/{technology_id}/reviews/{review_id}/comments",
                       data={"csrf_token": csrf_token(page), "body": "Ben, on the page"},
                       headers={"X-Forwarded-For": "198.51.100.7"})
    assert form.status_code == 303  # the page's form spends the same budget as the API
    assert _post(client, review_id, "198.51.100.7", "Ben, one too many") == 429
    # Each comment's abuse key is its resident's (a keyed hash, never the address).
    keys = _keys(app)
    assert len(keys) == 4 and keys[0] == keys[1] != keys[2] == keys[3]
    assert not any("203.0.113.5" in (key or "") for key in keys)


@pytest.mark.parametrize("proxies", [0])
def test_without_a_proxy_the_header_changes_nothing(app, client, review):
    _technology_id, review_id = review
    # Every request comes from the test client's own address, whatever it writes.
    assert [_post(client, review_id, address, "Hi") for address in (
        "203.0.113.5", "198.51.100.7", "192.0.2.1")] == [201, 201, 429]
    keys = _keys(app)
    assert len(keys) == 2 and keys[0] == keys[1]


@pytest.mark.parametrize("value", ["-1", "6", "one"])
def test_a_proxy_count_that_cannot_be_is_refused_at_start(monkeypatch, tmp_path, value):
    monkeypatch.setenv("DAYLIGHT_TRUSTED_PROXIES", value)
    with pytest.raises(ConfigError, match="DAYLIGHT_TRUSTED_PROXIES"):
        load_settings(str(tmp_path))
