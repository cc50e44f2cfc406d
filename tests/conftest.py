"""Shared fixtures: a fresh database per test on SQLite, and on PostgreSQL when configured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from registry.db import make_session_factory
from tests.db import fresh_engine

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]

#: For tests of concurrency across connections, which only PostgreSQL has.
postgres_only = pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend under test: every database test runs on both."""
    return str(request.param)


@pytest.fixture
def engine(backend: str, tmp_path: Path) -> Iterator[Engine]:
    """An engine on an empty database that has the whole schema."""
    engine = fresh_engine(backend, tmp_path)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on the fresh database (the test commits when it wants rows to be seen)."""
    factory = make_session_factory(engine)
    with factory() as session:
        yield session


# --- the app -----------------------------------------------------------------------------

from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

from flask import Flask  # noqa: E402
from flask.testing import FlaskClient  # noqa: E402

from registry import create_app  # noqa: E402
from registry.clock import FakeClock  # noqa: E402

PUBLIC_URL = "http://daylight.test"


@pytest.fixture
def clock() -> FakeClock:
    """The app's clock, standing still until the test moves it."""
    return FakeClock()


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Extra settings for the app under test (override in a test module to change them)."""
    return {}


@pytest.fixture
def app(engine: Engine, clock: FakeClock, app_config: dict[str, Any]) -> Iterator[Flask]:
    """A fresh app on a fresh database."""
    config: dict[str, Any] = {
        "TESTING": True,
        "DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "CLOCK": clock,
        "PUBLIC_URL": PUBLIC_URL,
        "SECRET_KEY": "test-secret",
        "WEBHOOK_ALLOW_PRIVATE": True,
        # Tests post many comments from one address; the rate-limit test sets its own.
        "COMMENT_RATE_LIMIT": "10000 per minute",
        **app_config,
    }
    app = create_app(config)
    if app_config.get("DEFAULT_POLICIES", True):
        from registry.assessments.services import ensure_default_policies
        from registry.database import transaction

        with app.app_context(), transaction(app) as session:
            ensure_default_policies(session, now=clock.now())
    yield app
    from registry.database import dispose

    dispose(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client for the app."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> Any:
    """A CLI runner for the app's commands."""
    return app.test_cli_runner()


@pytest.fixture
def token(app: Flask, clock: FakeClock) -> Callable[..., dict[str, str]]:
    """Make a token and return the ``Authorization`` header for it: ``token("admin")``."""
    from registry.auth.services import create_token
    from registry.database import transaction

    def make(role: str, department: str | None = None, name: str = "test") -> dict[str, str]:
        with app.app_context(), transaction() as session:
            _, secret = create_token(session, role=role, name=name, now=clock.now(),
                                     department_slug=department)
        return {"Authorization": f"Bearer {secret}"}

    return make


@pytest.fixture
def department(app: Flask, clock: FakeClock) -> Callable[..., str]:
    """Add a department and return its slug: ``department("police", "Police")``."""
    from registry.database import transaction
    from registry.departments.services import add_department, get_department

    def make(slug: str = "police", name: str | None = None) -> str:
        with app.app_context(), transaction() as session:
            if get_department(session, slug) is None:
                add_department(session, slug=slug, name=name or slug.title(), now=clock.now())
        return slug

    return make


def technology_fields(**overrides: Any) -> dict[str, Any]:
    """A complete, well-answered technology registration."""
    fields: dict[str, Any] = {
        "name": "Automated licence-plate readers",
        "department": "police",
        "vendor": "Example Vision Inc.",
        "description": "Fixed cameras that read passing licence plates.",
        "purpose": "Find vehicles on a stolen-vehicle or Amber Alert list.",
        "data_collected": ["licence_plates", "vehicle_location", "images"],
        "capabilities": ["licence_plate_recognition", "historical_search"],
        "data_sharing": ["regional_law_enforcement"],
        "retention_days": 30,
        "access_controls": "Named officers only; every search is logged and audited monthly.",
        "deployment_areas": ["Downtown", "Eastside"],
        "annual_cost": 120000,
        "in_use": True,
        "equity_impact": "Cameras could concentrate in some neighbourhoods.",
        "community_engagement": "Two community meetings in 2025.",
        "mitigations": "Cameras placed on arterial roads citywide.",
        "documents": [{"title": "Impact report", "url": "https://example.gov/alpr.pdf"}],
        "authorized_uses": "Stolen vehicles, Amber Alerts.",
        "prohibited_uses": "Immigration enforcement; tracking people at protests.",
        "alternatives_considered": "Manual plate checks.",
        "funding_source": "General fund",
    }
    fields.update(overrides)
    return fields


@pytest.fixture
def staff(token: Callable[..., dict[str, str]], department: Callable[..., str]) -> dict[str, str]:
    """Headers of a police-department staff token."""
    department("police", "Police Department")
    return token("staff", department="police")


@pytest.fixture
def reviewer(token: Callable[..., dict[str, str]]) -> dict[str, str]:
    """Headers of a reviewer's token."""
    return token("reviewer")


@pytest.fixture
def make_technology(
    client: FlaskClient, staff: dict[str, str]
) -> Callable[..., dict[str, Any]]:
    """Register (and optionally submit) a technology through the API; returns its JSON."""

    def make(submit: bool = False, headers: dict[str, str] | None = None,
             **overrides: Any) -> dict[str, Any]:
        response = client.post("/api/v1/technologies", json=technology_fields(**overrides),
                               headers=headers or staff)
        assert response.status_code == 201, response.get_json()
        body: dict[str, Any] = response.get_json()
        if submit:
            response = client.post(f"/api/v1/technologies/{body['id']}/submit",
                                   headers=headers or staff)
            assert response.status_code == 200, response.get_json()
            body = response.get_json()
        return body

    return make
