"""the technology list by name: ix_technology_name_order

The page's "Name, A to Z" order is lower(name), then id. Without an index every page sorted
all public technologies first: 7.5 ms more a page at 10,000 technologies on SQLite.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 14:50:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_technology_name_order', 'technology', [sa.text('lower(name)'), 'id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_technology_name_order', table_name='technology')
