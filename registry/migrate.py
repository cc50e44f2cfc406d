"""Schema migrations with Alembic (``daylight db upgrade``)."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from flask import Flask
from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from registry.database import engine, transaction
from registry.events.models import ensure_log_head

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at Daylight's migrations and ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(app: Flask) -> None:
    """Bring the database to the newest schema (creating a SQLite file's folder if needed)."""
    url = app.config["DATABASE_URL"]
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        os.makedirs(os.path.dirname(os.path.abspath(parsed.database)), exist_ok=True)
    config = alembic_config(url)
    with engine(app).connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        has_log = inspect(connection).has_table("event_log_head")
        connection.rollback()
    if has_log:
        from registry.assessments.services import ensure_default_policies
        from registry.clock import now

        with transaction(app) as session:
            ensure_log_head(session)
        # The bundled policies are published on first run, so the first submission is
        # assessed against something real.
        with app.app_context(), transaction(app) as session:
            ensure_default_policies(session, now=now())




def schema_gaps(app: Flask) -> list[str]:
    """What Daylight needs that the database lacks: tables (all of them before the first
    ``daylight db upgrade``), and columns a later migration adds (``table.column``)."""
    from sqlmodel import SQLModel

    import registry.models  # noqa: F401  (every table registered on the metadata)

    with engine(app).connect() as connection:
        inspector = inspect(connection)
        present = set(inspector.get_table_names())
        gaps = sorted(set(SQLModel.metadata.tables) - present)
        for name, table in sorted(SQLModel.metadata.tables.items()):
            if name in present:
                have = {column["name"] for column in inspector.get_columns(name)}
                gaps += [f"{name}.{column.name}" for column in table.columns
                         if column.name not in have]
    return gaps
