"""a technology's events in seq order: ix_event_technology_seq

The Atom feed of one technology lists its newest events. ix_event_technology_id
(technology_id) gave them in no useful order, so every read sorted all of the technology's
events: 1.2 s for a technology with a million comments. (technology_id, seq) reads the
newest directly (0.1 ms), and still one index is written per event.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 07:10:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_event_technology_seq', 'event', ['technology_id', 'seq'], unique=False)
    op.drop_index('ix_event_technology_id', table_name='event')


def downgrade() -> None:
    op.create_index('ix_event_technology_id', 'event', ['technology_id'], unique=False)
    op.drop_index('ix_event_technology_seq', table_name='event')
