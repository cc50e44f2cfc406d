"""Comment tables. What is published and what is personal live in separate tables."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, ForeignKey, Index, String, Text, text
from sqlmodel import Field, SQLModel

from webhooks.sqltypes import UTCDateTime


class CommentStatus(StrEnum):
    """Where a comment stands."""

    PUBLISHED = "published"
    HELD = "held"
    HIDDEN = "hidden"


class Comment(SQLModel, table=True):
    """A resident's comment: only what may be shown to the public."""

    __tablename__ = "comment"
    __table_args__ = (
        Index("ix_comment_review_status", "review_id", "status", "id"),
        # The summary's form letters, counted from the index alone (migration 0003).
        Index("ix_comment_review_fingerprint_status", "review_id", "fingerprint", "status",
              "id"),
        # A post sent again with its Idempotency-Key finds the comment it stored, and two
        # posts under one key cannot both be stored (migration 0006). Partial: the posts
        # without a key, nearly all of a surge, add nothing to it.
        Index("uq_comment_review_idempotency_key", "review_id", "idempotency_key",
              unique=True, sqlite_where=text("idempotency_key IS NOT NULL"),
              postgresql_where=text("idempotency_key IS NOT NULL")),
    )

    id: str = Field(primary_key=True, max_length=40)
    review_id: str = Field(foreign_key="review.id")
    tracking_number: str = Field(unique=True, max_length=20)
    status: str = Field(max_length=16)
    body: str = Field(sa_column=Column(Text, nullable=False))
    display_name: str = Field(max_length=100)
    neighborhood: str | None = Field(default=None, max_length=100)
    position: str | None = Field(default=None, max_length=16)
    # A hash of the normalised text: identical form letters share it.
    fingerprint: str = Field(max_length=64)
    flag_count: int = Field(default=0)
    hidden_reason: str | None = Field(default=None, sa_column=Column(Text))
    hidden_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    published_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # A hash of the key its author sent it with (``registry.comments.idempotency``), so
    # that a post repeated after a lost answer is not stored twice. Never shown.
    idempotency_key: str | None = Field(default=None, max_length=64)


class CommenterContact(SQLModel, table=True):
    """Personal data about a comment's author, kept apart and purged after the decision.

    Never serialised into events, webhooks, feeds, exports or public responses.
    """

    __tablename__ = "commenter_contact"

    comment_id: str = Field(
        sa_column=Column(String(40), ForeignKey("comment.id", ondelete="CASCADE"),
                         primary_key=True))
    email: str | None = Field(default=None, max_length=320)
    # A keyed hash of the client's address (never the address itself), for abuse review.
    client_key: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class CommentFlag(SQLModel, table=True):
    """A report that a comment needs moderation."""

    __tablename__ = "comment_flag"

    id: str = Field(primary_key=True, max_length=40)
    comment_id: str = Field(foreign_key="comment.id", index=True)
    reason: str | None = Field(default=None, sa_column=Column(Text))
    client_key: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
