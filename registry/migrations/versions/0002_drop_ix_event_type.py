"""drop ix_event_type, which ix_event_type_seq covers

Every event append wrote both indexes; a query by type uses the composite one (its first
column), so the single-column index only cost a page write per append.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06 04:50:22.858688
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_event_type'))


def downgrade() -> None:
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_event_type'), ['type'], unique=False)
