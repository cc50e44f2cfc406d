"""Alembic owns the schema: upgrading an empty database gives exactly the models' tables."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

import registry.models  # noqa: F401
from registry import create_app
from registry.db import make_engine
from registry.migrate import upgrade
from tests.conftest import postgres_only
from tests.db import postgres_url


def _upgrade_and_compare(url: str) -> list:
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "x"})
    upgrade(app)
    upgrade(app)  # a second run finds nothing to do
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                     SQLModel.metadata)
            head = conn.execute(text("SELECT last_seq FROM event_log_head")).scalar()
    finally:
        engine.dispose()
        from registry.database import engine as app_engine

        app_engine(app).dispose()
    # First run published the two bundled policies, and the second run did not again.
    assert head == 2
    return diffs


@pytest.mark.filterwarnings(
    "ignore:Skipped unsupported reflection of expression-based index ix_technology_name_order")
@pytest.mark.filterwarnings(
    "ignore:autogenerate skipping metadata-specified expression-based index "
    "'ix_technology_name_order'")
def test_sqlite_upgrade_matches_the_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'sub' / 'daylight.db'}"
    assert _upgrade_and_compare(url) == []
    # SQLAlchemy cannot reflect an index on an expression from SQLite (PostgreSQL's test
    # compares it): read its definition instead.
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            sql = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = "
                                    "'ix_technology_name_order'")).scalar()
    finally:
        engine.dispose()
    assert sql is not None and "lower(name), id" in sql


@postgres_only
def test_postgres_upgrade_matches_the_models(backend):
    base = make_url(postgres_url())
    name = f"{base.database}_migrations"
    admin = make_engine(base.set(database="postgres").render_as_string(hide_password=False),
                        isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = base.set(database=name).render_as_string(hide_password=False)
        assert _upgrade_and_compare(url) == []
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
