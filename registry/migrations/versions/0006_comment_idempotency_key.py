"""a comment's idempotency key: comment.idempotency_key, uq_comment_review_idempotency_key

A post cut off after its COMMIT is stored, but its author never gets the receipt; posting
again stored the comment twice (bench/drills/kill_web.py). A post may now carry a key (the
API's Idempotency-Key header, a one-time key in the page's form): the comment keeps a hash
of it, unique per review, and the same post sent again gets the receipt of the comment it
stored. The index is partial, so the posts without a key write nothing more.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 17:17:13.524424
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WITH_KEY = sa.text('idempotency_key IS NOT NULL')


def upgrade() -> None:
    # A nullable column: both databases add it without rewriting the table.
    op.add_column('comment', sa.Column('idempotency_key', sa.String(length=64), nullable=True))
    op.create_index('uq_comment_review_idempotency_key', 'comment',
                    ['review_id', 'idempotency_key'], unique=True,
                    sqlite_where=_WITH_KEY, postgresql_where=_WITH_KEY)


def downgrade() -> None:
    op.drop_index('uq_comment_review_idempotency_key', table_name='comment')
    with op.batch_alter_table('comment') as batch_op:  # SQLite rebuilds the table to drop it
        batch_op.drop_column('idempotency_key')
