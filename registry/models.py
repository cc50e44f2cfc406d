"""Every table Daylight stores, gathered so that metadata, Alembic and tests see all of them."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session, SQLModel

import registry.assessments.models  # noqa: F401
import registry.auth.models  # noqa: F401
import registry.comments.models  # noqa: F401
import registry.departments.models  # noqa: F401
import registry.events.models  # noqa: F401
import registry.reviews.models  # noqa: F401
import registry.technologies.models  # noqa: F401
import webhooks.models  # noqa: F401  (registers the webhook tables on the shared metadata)


def init_schema(engine: Engine) -> None:
    """Create every table on an empty database and seed the rows the app expects (tests)."""
    SQLModel.metadata.create_all(engine)
    seed(engine)


def seed(engine: Engine) -> None:
    """Insert the rows every database needs (the event log's head)."""
    from registry.events.models import ensure_log_head

    with Session(engine) as session:
        ensure_log_head(session)
        session.commit()
