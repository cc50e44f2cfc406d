"""Role rules for every API route, as one table.

Each row names a route, who may call it, and a body. For every role (and no token at all) the
test checks the caller is let through, or refused with 401 (no token) or 403 (wrong role).
A final test fails when a route exists that the table does not cover.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import technology_fields

ANYONE = ("anonymous", "admin", "reviewer", "staff", "partner")
REVIEWERS = ("reviewer", "admin")
OWNERS = ("partner", "admin")


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    allowed: tuple[str, ...]
    body: dict[str, Any] | str | None = field(default=None)


ROUTES: list[Route] = [
    Route("GET", "/api/v1/departments", ANYONE),
    Route("POST", "/api/v1/departments", ("admin",), {"slug": "parks", "name": "Parks"}),
    Route("GET", "/api/v1/technologies", ANYONE),
    Route("POST", "/api/v1/technologies", ("staff", "admin"), technology_fields()),
    Route("GET", "/api/v1/technologies/{public}", ANYONE),
    Route("PATCH", "/api/v1/technologies/{public}", ("staff", "admin"), {"vendor": "V2"}),
    Route("POST", "/api/v1/technologies/{draft}/submit", ("staff", "admin")),
    Route("POST", "/api/v1/technologies/{public}/withdraw", ("staff", "admin")),
    Route("GET", "/api/v1/technologies/{public}/assessments", ANYONE),
    Route("POST", "/api/v1/technologies/{public}/assessments", REVIEWERS),
    Route("POST", "/api/v1/technologies/{public}/reviews", REVIEWERS, {
        "comment_opens_at": "2026-04-01T09:00:00Z", "comment_closes_at": "2026-06-01T09:00:00Z",
        "meetings": [{"starts_at": "2026-04-10T18:00:00Z", "place": "City Hall"}]}),
    Route("GET", "/api/v1/reviews", ANYONE),
    Route("GET", "/api/v1/reviews/{review}", ANYONE),
    Route("PATCH", "/api/v1/reviews/{review}", REVIEWERS,
          {"comment_closes_at": "2026-09-01T09:00:00Z"}),
    Route("POST", "/api/v1/reviews/{review}/cancel", REVIEWERS),
    Route("POST", "/api/v1/reviews/{review}/decision", REVIEWERS,
          {"outcome": "approved", "rationale": "ok"}),
    Route("POST", "/api/v1/reviews/{open_review}/comments", ANYONE, {"body": "Hello"}),
    Route("GET", "/api/v1/reviews/{open_review}/comments", ANYONE),
    Route("GET", "/api/v1/reviews/{open_review}/comments/summary", ANYONE),
    Route("GET", "/api/v1/reviews/{open_review}/comments.csv", ANYONE),
    Route("GET", "/api/v1/comments/{tracking_number}", ANYONE),
    Route("POST", "/api/v1/comments/{comment}/hide", REVIEWERS, {"reason": "Off topic."}),
    Route("POST", "/api/v1/comments/{comment}/publish", REVIEWERS),
    Route("POST", "/api/v1/comments/{comment}/flag", ANYONE, {"reason": "spam"}),
    Route("GET", "/api/v1/policies", ANYONE),
    Route("GET", "/api/v1/policies/{policy}", ANYONE),
    Route("POST", "/api/v1/policies", ("admin",), "new_policy"),
    Route("POST", "/api/v1/policies/{policy}/versions", ("admin",), "privacy_policy"),
    Route("GET", "/api/v1/webhook-endpoints", OWNERS),
    Route("POST", "/api/v1/webhook-endpoints", OWNERS, {"url": "http://127.0.0.1:9/hook"}),
    Route("GET", "/api/v1/webhook-endpoints/{endpoint}", OWNERS),
    Route("PATCH", "/api/v1/webhook-endpoints/{endpoint}", OWNERS, {"description": "x"}),
    Route("DELETE", "/api/v1/webhook-endpoints/{endpoint}", OWNERS),
    Route("POST", "/api/v1/webhook-endpoints/{endpoint}/rotate-secret", OWNERS),
    Route("POST", "/api/v1/webhook-endpoints/{endpoint}/test", OWNERS),
    Route("GET", "/api/v1/webhook-endpoints/{endpoint}/deliveries", OWNERS),
    Route("POST", "/api/v1/webhook-deliveries/{delivery}/retry", OWNERS),
    Route("GET", "/api/v1/events", ANYONE),
    Route("GET", "/api/v1/event-types", ANYONE),
    Route("GET", "/api/v1/vocabularies", ANYONE),
    Route("GET", "/api/v1/openapi.json", ANYONE),
]

ROLES = ("anonymous", "admin", "reviewer", "staff", "partner")


def _policy(slug: str) -> dict[str, Any]:
    from policies import default_documents

    document = next(d for d in default_documents() if d["slug"] == "privacy")
    return {**document, "slug": slug}


@pytest.fixture
def world(app, client, clock, token, department, make_technology) -> dict[str, Any]:
    from registry.worker.jobs import run_due_transitions

    department("police", "Police Department")
    headers = {role: token(role, department="police" if role == "staff" else None)
               for role in ROLES if role != "anonymous"}
    headers["anonymous"] = {}
    ids = {"public": make_technology(submit=True)["id"], "draft": make_technology()["id"]}
    scheduled = make_technology(submit=True, name="Drones")["id"]
    ids["review"] = client.post(f"/api/v1/technologies/{scheduled}/reviews", json={
        "comment_opens_at": (clock.now() + timedelta(days=5)).isoformat(),
        "comment_closes_at": (clock.now() + timedelta(days=90)).isoformat(),
        "override_reason": "test"}, headers=headers["reviewer"]).get_json()["id"]
    opened = make_technology(submit=True, name="Cameras")["id"]
    ids["open_review"] = client.post(f"/api/v1/technologies/{opened}/reviews", json={
        "comment_opens_at": clock.now().isoformat(),
        "comment_closes_at": (clock.now() + timedelta(days=90)).isoformat(),
        "override_reason": "test"}, headers=headers["reviewer"]).get_json()["id"]
    run_due_transitions(app, clock)
    receipt = client.post(f"/api/v1/reviews/{ids['open_review']}/comments",
                          json={"body": "A comment"}).get_json()
    ids["comment"], ids["tracking_number"] = receipt["id"], receipt["tracking_number"]
    endpoint = client.post("/api/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/h"},
                           headers=headers["partner"]).get_json()
    ids["endpoint"] = endpoint["id"]
    ids["delivery"] = client.post(f"/api/v1/webhook-endpoints/{endpoint['id']}/test",
                                  headers=headers["partner"]).get_json()["id"]
    ids["policy"] = "privacy"
    return {"headers": headers, "ids": ids}


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
@pytest.mark.parametrize("role", ROLES)
def test_role_rules(client, world, route: Route, role: str):
    path = route.path.format(**world["ids"])
    body = route.body
    if body == "new_policy":
        body = _policy("test-policy")
    elif body == "privacy_policy":
        body = _policy("privacy")
    response = client.open(path, method=route.method, json=body,
                           headers=world["headers"][role])
    if role in route.allowed:
        assert response.status_code not in (401, 403), response.get_json()
        assert response.status_code < 500
    elif role == "anonymous":
        assert response.status_code == 401, response.get_json()
    else:
        assert response.status_code == 403, response.get_json()


@pytest.mark.parametrize("route", [r for r in ROUTES if r.method != "GET"
                                   and "anonymous" not in r.allowed],
                         ids=lambda r: f"{r.method} {r.path}")
def test_a_change_without_a_token_is_a_401_whatever_its_body(client, world, route: Route):
    # Before its body is read: an empty one got a 422 listing the fields, as if the
    # caller could go on with them.
    path = route.path.format(**world["ids"])
    for body in ({}, None):
        response = client.open(path, method=route.method, json=body)
        assert response.status_code == 401, (route, body, response.get_json())
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_every_api_route_is_in_the_table(app):
    covered = {(r.method, _rule_shape(r.path)) for r in ROUTES}
    missing = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1") or rule.rule == "/api/v1/docs":
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if (method, _rule_shape(rule.rule)) not in covered:
                missing.append(f"{method} {rule.rule}")
    assert missing == []


def _rule_shape(path: str) -> str:
    import re

    return re.sub(r"\{[^}]+\}|<[^>]+>", "*", path)


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/v1/events"), ("GET", "/api/v1/policies"), ("GET", "/api/v1/departments"),
    ("GET", "/api/v1/reviews/{open_review}/comments/summary"),
    ("GET", "/api/v1/comments/{tracking_number}"),
    ("POST", "/api/v1/reviews/{open_review}/comments"),
    ("POST", "/api/v1/comments/{comment}/flag"),
])
def test_a_revoked_or_unknown_token_is_a_401_on_public_routes_too(app, client, world,
                                                                   method, path):
    body = {"reason": "Spam."} if path.endswith("/flag") else {"body": "Hello."}
    # Public routes need no token, but one that is sent is checked: a revoked partner is
    # told so, not served or stored as if anonymous.
    from sqlalchemy import func, select
    from sqlmodel import Session

    from registry.comments.models import Comment, CommentFlag
    from registry.database import engine

    revoked = world["headers"]["partner"]
    runner = app.test_cli_runner()
    with Session(engine(app)) as session:
        from registry.auth.models import ApiToken

        partner_id = session.execute(select(ApiToken.id).where(
            ApiToken.role == "partner")).scalar_one()
    assert runner.invoke(args=["tokens", "revoke", partner_id]).exit_code == 0

    def rows() -> tuple[int, int]:
        with Session(engine(app)) as session:
            return (session.execute(select(func.count()).select_from(Comment)).scalar_one(),
                    session.execute(select(func.count()).select_from(CommentFlag)).scalar_one())

    before = rows()
    url = path.format(**world["ids"])
    for headers in (revoked, {"Authorization": "Bearer not-a-token"}):
        response = client.open(url, method=method, json=body, headers=headers)
        assert response.status_code == 401, (response.status_code, response.get_json())
        assert response.mimetype == "application/problem+json"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert rows() == before
    assert client.open(url, method=method, json=body).status_code < 400  # anonymous: served


def test_a_partner_cannot_see_or_touch_another_partners_endpoint(client, world, token):
    other = token("partner", name="other partner")
    endpoint = world["ids"]["endpoint"]
    for method, path in [("GET", f"/api/v1/webhook-endpoints/{endpoint}"),
                         ("PATCH", f"/api/v1/webhook-endpoints/{endpoint}"),
                         ("DELETE", f"/api/v1/webhook-endpoints/{endpoint}"),
                         ("POST", f"/api/v1/webhook-endpoints/{endpoint}/test"),
                         ("GET", f"/api/v1/webhook-endpoints/{endpoint}/deliveries"),
                         ("POST", f"/api/v1/webhook-deliveries/{world['ids']['delivery']}/retry")]:
        response = client.open(path, method=method, json={}, headers=other)
        assert response.status_code == 404, (method, path)
        # Nothing in the answer says the thing exists, or names what it belongs to.
        if "webhook-deliveries" in path:
            assert endpoint not in response.get_data(as_text=True)
            absent = client.post("/api/v1/webhook-deliveries/whd_nosuchdelivery/retry",
                                 headers=other)
            assert response.get_json()["detail"] == absent.get_json()["detail"].replace(
                "whd_nosuchdelivery", world["ids"]["delivery"])
    assert client.get("/api/v1/webhook-endpoints", headers=other).get_json()["items"] == []
    # The owner still retries it.
    retried = client.post(f"/api/v1/webhook-deliveries/{world['ids']['delivery']}/retry",
                          headers=world["headers"]["partner"])
    assert retried.status_code == 202, retried.get_json()
    assert retried.get_json()["id"] == world["ids"]["delivery"]
