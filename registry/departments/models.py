"""The department table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from webhooks.sqltypes import UTCDateTime


class Department(SQLModel, table=True):
    """A city department (police, transport, utilities…)."""

    __tablename__ = "department"

    id: str = Field(primary_key=True, max_length=40)
    slug: str = Field(unique=True, max_length=64)
    name: str = Field(max_length=200)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
