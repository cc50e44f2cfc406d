"""Alembic migrations (applied by ``daylight db upgrade``)."""
