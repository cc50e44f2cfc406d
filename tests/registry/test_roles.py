"""Role rules for every API route, as one table.

Each row names a route, who may call it, and a body. For every role (and no token at all) the
test checks the caller is let through, or refused with 401 (no token) or 403 (wrong role).
A final test fails when a route exists that the table does not cover.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import technology_fields

ANYONE = ("anonymous", "admin", "reviewer", "staff", "partner")


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    allowed: tuple[str, ...]
    body: dict[str, Any] | None = field(default=None)


ROUTES: list[Route] = [
    Route("GET", "/api/v1/departments", ANYONE),
    Route("POST", "/api/v1/departments", ("admin",), {"slug": "parks", "name": "Parks"}),
    Route("GET", "/api/v1/technologies", ANYONE),
    Route("POST", "/api/v1/technologies", ("staff", "admin"), technology_fields()),
    Route("GET", "/api/v1/technologies/{public}", ANYONE),
    Route("PATCH", "/api/v1/technologies/{public}", ("staff", "admin"), {"vendor": "V2"}),
    Route("POST", "/api/v1/technologies/{draft}/submit", ("staff", "admin")),
    Route("POST", "/api/v1/technologies/{public}/withdraw", ("staff", "admin")),
    Route("GET", "/api/v1/events", ANYONE),
    Route("GET", "/api/v1/event-types", ANYONE),
    Route("GET", "/api/v1/vocabularies", ANYONE),
    Route("GET", "/api/v1/openapi.json", ANYONE),
]

ROLES = ("anonymous", "admin", "reviewer", "staff", "partner")


@pytest.fixture
def world(client, token, department, make_technology) -> dict[str, Any]:
    department("police", "Police Department")
    headers = {role: token(role, department="police" if role == "staff" else None)
               for role in ROLES if role != "anonymous"}
    headers["anonymous"] = {}
    return {
        "headers": headers,
        "ids": {
            "public": make_technology(submit=True)["id"],
            "draft": make_technology()["id"],
        },
    }


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
@pytest.mark.parametrize("role", ROLES)
def test_role_rules(client, world, route: Route, role: str):
    path = route.path.format(**world["ids"])
    response = client.open(path, method=route.method, json=route.body,
                           headers=world["headers"][role])
    if role in route.allowed:
        assert response.status_code not in (401, 403), response.get_json()
        assert response.status_code < 500
    elif role == "anonymous":
        assert response.status_code == 401, response.get_json()
    else:
        assert response.status_code == 403, response.get_json()


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
