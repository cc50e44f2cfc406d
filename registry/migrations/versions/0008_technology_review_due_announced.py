"""the yearly review's reminder: technology.review_due_announced_on

An approved technology is due for review a year after its decision (``next_review_due``).
The worker announces it once, with a ``technology.review_due`` event, on that day; this
column holds the due date it announced, so a second worker or a restart does not announce
it again, and the next decision's new due date is announced in its turn.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08 00:10:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: added without rewriting the table on either database.
    op.add_column('technology', sa.Column('review_due_announced_on', sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('technology') as batch_op:  # SQLite rebuilds the table
        batch_op.drop_column('review_due_announced_on')
