"""The review table: a public review of one technology, with its comment period."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, Text
from sqlmodel import Field, SQLModel

from webhooks.sqltypes import UTCDateTime


class ReviewStatus(StrEnum):
    """Where a review stands."""

    SCHEDULED = "scheduled"
    OPEN = "open"
    CLOSED = "closed"
    DECIDED = "decided"
    CANCELLED = "cancelled"


#: A technology has at most one review in these states at a time.
ACTIVE = (ReviewStatus.SCHEDULED, ReviewStatus.OPEN, ReviewStatus.CLOSED)


def takes_comments(status: str, comment_closes_at: datetime, now: datetime) -> bool:
    """Whether a review in ``status`` closing at ``comment_closes_at`` takes comments at
    ``now``: open, and its closing time not yet passed (the worker may not have closed it
    yet). The one rule for posting, and for what may still change an open period."""
    return status == ReviewStatus.OPEN.value and now < comment_closes_at


class Review(SQLModel, table=True):
    """A public review: a comment period, optional meetings, and at the end a decision."""

    __tablename__ = "review"
    __table_args__ = (
        Index("ix_review_status_opens", "status", "comment_opens_at"),
        Index("ix_review_status_closes", "status", "comment_closes_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    technology_id: str = Field(foreign_key="technology.id", index=True)
    status: str = Field(default=ReviewStatus.SCHEDULED.value, max_length=16)
    comment_opens_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    comment_closes_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    meetings: list[dict[str, Any]] = Field(default_factory=list,
                                           sa_column=Column(JSON, nullable=False))
    extensions: list[dict[str, Any]] = Field(default_factory=list,
                                             sa_column=Column(JSON, nullable=False))
    override_reason: str | None = Field(default=None, sa_column=Column(Text))
    # The assessment whose minimum period and meeting rule this review was checked against.
    assessment_id: str | None = Field(default=None, max_length=40)
    opened_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    closing_soon_sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    closed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    cancelled_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    cancel_reason: str | None = Field(default=None, sa_column=Column(Text))
    outcome: str | None = Field(default=None, max_length=32)
    rationale: str | None = Field(default=None, sa_column=Column(Text))
    conditions: str | None = Field(default=None, sa_column=Column(Text))
    decided_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    created_by: str | None = Field(default=None, max_length=40)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
