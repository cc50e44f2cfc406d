"""API tokens: shown once, stored only as a hash."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from webhooks.sqltypes import UTCDateTime


class Role(StrEnum):
    """What a token may do."""

    ADMIN = "admin"
    REVIEWER = "reviewer"
    STAFF = "staff"
    PARTNER = "partner"


class ApiToken(SQLModel, table=True):
    """A bearer token. Only the SHA-256 of the secret is kept."""

    __tablename__ = "api_token"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    role: str = Field(max_length=16)
    department_id: str | None = Field(default=None, foreign_key="department.id", index=True)
    token_hash: str = Field(unique=True, max_length=64)
    # The first characters, so an admin can tell tokens apart without the secret.
    prefix: str = Field(max_length=16)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
