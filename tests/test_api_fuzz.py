"""The API against its own OpenAPI document: schemathesis generates requests for every
operation, in process through the WSGI app, and checks that no answer is a 5xx and that
every answer conforms to the document (status code, content type, headers, body schema).

One registry serves the whole module on each database, SQLite and (when configured)
PostgreSQL, which refuses what SQLite takes (a NUL in text, a number past its integers):
fuzzing needs data to find (a department, a submitted technology, an open review with a
comment, a webhook endpoint), anonymously and with an admin token so that the write paths
are exercised too. Bounded by hypothesis'
``max_examples`` to run in well under two minutes; ``DAYLIGHT_FUZZ_EXAMPLES=N`` asks for N
examples an operation instead, for a deeper search than CI's.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from registry import create_app
from registry.clock import FakeClock
from tests.conftest import BACKENDS, technology_fields
from tests.db import postgres_url, reset_postgres, sqlite_url

MAX_EXAMPLES = int(os.environ.get("DAYLIGHT_FUZZ_EXAMPLES", "12"))
CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module", params=BACKENDS)
def fuzz_app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Flask]:
    """One app with a little of everything in it, shared by the module's cases on each
    database."""
    from registry.assessments.services import ensure_default_policies
    from registry.database import dispose, engine, transaction
    from registry.models import init_schema

    if request.param == "postgresql":
        url = postgres_url()
        reset_postgres(url)
    else:
        url = sqlite_url(tmp_path_factory.mktemp("fuzz"))
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    app = create_app({
        "TESTING": True,
        "DATABASE_URL": url,
        "CLOCK": clock,
        "SECRET_KEY": "fuzz-secret",
        "PUBLIC_URL": "http://daylight.test",
        "WEBHOOK_ALLOW_PRIVATE": True,
        "COMMENT_RATE_LIMIT": "1000000 per minute",
    })
    if request.param == "sqlite":
        init_schema(engine(app))
    with app.app_context(), transaction(app) as session:
        ensure_default_policies(session, now=clock.now())
    yield app
    dispose(app)


@pytest.fixture(scope="module")
def admin_headers(fuzz_app: Flask) -> dict[str, str]:
    """An admin token, and data for the fuzzer to find: a department, a submitted
    technology with an open review and a comment, a webhook endpoint."""
    from registry.auth.services import create_token
    from registry.database import transaction
    from registry.reviews.services import open_due_comment_periods

    clock: FakeClock = fuzz_app.extensions["daylight.clock"]
    with fuzz_app.app_context(), transaction(fuzz_app) as session:
        _, secret = create_token(session, role="admin", name="fuzz", now=clock.now())
    headers = {"Authorization": f"Bearer {secret}"}
    client = fuzz_app.test_client()
    assert client.post("/api/v1/departments", json={"slug": "police", "name": "Police"},
                       headers=headers).status_code == 201
    technology = client.post("/api/v1/technologies", json=technology_fields(),
                             headers=headers).get_json()
    assert client.post(f"/api/v1/technologies/{technology['id']}/submit",
                       headers=headers).status_code == 200
    opens = clock.now() + timedelta(minutes=1)
    review = client.post(f"/api/v1/technologies/{technology['id']}/reviews", headers=headers,
                         json={"comment_opens_at": opens.isoformat(),
                               "comment_closes_at": (opens + timedelta(days=60)).isoformat(),
                               "meetings": [{"starts_at": (opens + timedelta(days=7)).isoformat(),
                                             "place": "City Hall"}]})
    assert review.status_code == 201, review.get_json()
    clock.advance(minutes=1)
    with fuzz_app.app_context(), transaction(fuzz_app) as session:
        open_due_comment_periods(session, now=clock.now())
    assert client.post(f"/api/v1/reviews/{review.get_json()['id']}/comments",
                       json={"body": "Please limit retention."}).status_code == 201
    assert client.post("/api/v1/webhook-endpoints", headers=headers,
                       json={"url": "http://127.0.0.1:9/hook"}).status_code == 201
    return headers


# The document is read at import from an app that serves only it (its database is never
# opened); the cases are sent to ``fuzz_app``. (schemathesis' lazy ``from_fixture`` does not
# work under pytest 9: it sets ``Function._nodeid``, which pytest 9 no longer has.)
schema = schemathesis.openapi.from_wsgi(
    "/api/v1/openapi.json",
    create_app({"TESTING": True, "DATABASE_URL": "sqlite://", "SECRET_KEY": "fuzz-spec"}),
)


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_anonymous_requests_never_fail_and_match_the_document(
    case: Any, fuzz_app: Flask, admin_headers: dict[str, str]
) -> None:
    """Anyone's requests: readable answers, refusals, never a 5xx, always as documented."""
    case.call_and_validate(app=fuzz_app, checks=CHECKS)


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_admin_requests_never_fail_and_match_the_document(
    case: Any, fuzz_app: Flask, admin_headers: dict[str, str]
) -> None:
    """An admin's requests reach the write paths: still never a 5xx, always as documented."""
    case.call_and_validate(app=fuzz_app, headers=admin_headers, checks=CHECKS)
