"""Stored policies (immutable versions) and assessments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from webhooks.sqltypes import UTCDateTime


class Policy(SQLModel, table=True):
    """A policy, e.g. the city's privacy policy; its content lives in versions."""

    __tablename__ = "policy"

    id: str = Field(primary_key=True, max_length=40)
    slug: str = Field(unique=True, max_length=64)
    title: str = Field(max_length=300)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class PolicyVersion(SQLModel, table=True):
    """One published version of a policy. Never changed once written; the newest is active."""

    __tablename__ = "policy_version"
    __table_args__ = (UniqueConstraint("policy_id", "version"),)

    id: str = Field(primary_key=True, max_length=40)
    policy_id: str = Field(foreign_key="policy.id", index=True)
    version: int
    title: str = Field(max_length=300)
    summary: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    document: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    published_by: str | None = Field(default=None, max_length=40)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Assessment(SQLModel, table=True):
    """A technology's record checked against the exact policy versions named in it."""

    __tablename__ = "assessment"

    id: str = Field(primary_key=True, max_length=40)
    technology_id: str = Field(foreign_key="technology.id", index=True)
    trigger: str = Field(max_length=32)
    policy_versions: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    findings: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    risk_tier: str = Field(max_length=8)
    risk_tier_reasons: list[str] = Field(default_factory=list,
                                         sa_column=Column(JSON, nullable=False))
    min_comment_days: int
    meeting_required: bool
    # Set when a newer policy version or a record change makes this assessment stale.
    outdated_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    outdated_reason: str | None = Field(default=None, sa_column=Column(Text))
    created_by: str | None = Field(default=None, max_length=40)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
