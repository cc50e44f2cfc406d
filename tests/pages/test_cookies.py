"""The session cookie (it carries the comment form's CSRF token) is sent over HTTPS only on
a site served over HTTPS, never to scripts, and never with another site's POST."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(params=["https://daylight.example.gov", "http://127.0.0.1:5000"])
def app_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"PUBLIC_URL": request.param}


def test_the_session_cookie_of_the_comment_form(app, client, open_review):
    technology, _review = open_review()
    page = client.get(f"/technologies/{technology['id']}")
    assert page.status_code == 200 and 'name="csrf_token"' in page.get_data(as_text=True)
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    secure = app.config["PUBLIC_URL"].startswith("https://")
    assert ("; Secure" in cookie) is secure
