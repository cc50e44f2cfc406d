"""an endpoint's newest failed attempt: webhook_endpoint.last_failed_at

An endpoint is disabled when it has only failed for 5 days. Its failure clock ran through
quiet spells: one delivery that used up its schedule, a week with no events, and then
one failed first try of the next event (a 503 that would have passed 5 s later) disabled
it at once. The newest failure tells a quiet spell from failures that go on; after a
spell longer than any wait between retries the clock starts afresh
(``webhooks.schedule.QUIET_SPELL``).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 22:30:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import webhooks.sqltypes

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: both databases add it without rewriting the table. An endpoint
    # failing at the upgrade keeps its clock (a NULL is no quiet spell).
    op.add_column('webhook_endpoint', sa.Column(
        'last_failed_at', webhooks.sqltypes.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('webhook_endpoint') as batch_op:  # SQLite rebuilds the table
        batch_op.drop_column('last_failed_at')
