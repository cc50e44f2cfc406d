"""The webhook tables: endpoints, the messages to send, one delivery per (message, endpoint),
and every attempt at a delivery."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from webhooks.ids import new_id
from webhooks.sqltypes import UTCDateTime

# Delivery states. A delivery is due when it is pending (or sending with an expired lease)
# and its next_attempt_at has come; finished deliveries have no next_attempt_at.
PENDING = "pending"
SENDING = "sending"
SUCCEEDED = "succeeded"
FAILED = "failed"
DELIVERY_STATUSES = (PENDING, SENDING, SUCCEEDED, FAILED)

RESPONSE_BODY_LIMIT = 4096  # bytes of a receiver's response kept with each attempt


def _endpoint_id() -> str:
    return new_id("we")


def _delivery_id() -> str:
    return new_id("whd")


class WebhookEndpoint(SQLModel, table=True):
    """A partner's URL and the event types it wants (none listed means all of them)."""

    __tablename__ = "webhook_endpoint"

    id: str = Field(default_factory=_endpoint_id, primary_key=True, max_length=40)
    # Who may manage it: the registry passes the id of the API token that created it.
    owner_id: str | None = Field(default=None, index=True, max_length=64)
    url: str = Field(sa_column=Column(Text, nullable=False))
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    event_types: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, default=list)
    )
    secret: str = Field(max_length=100)
    # After a rotation the old secret still signs until previous_secret_expires_at.
    previous_secret: str | None = Field(default=None, max_length=100)
    previous_secret_expires_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    disabled_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    disabled_reason: str | None = Field(default=None, sa_column=Column(Text))
    # Set by the first failure after a success (or after a quiet spell, a change of URL or
    # a re-enabling); cleared by any success.
    failing_since: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    # The newest failed attempt: tells a quiet spell from failures that go on.
    last_failed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))

    @property
    def enabled(self) -> bool:
        """Whether deliveries are made to this endpoint."""
        return self.disabled_at is None

    def subscribes_to(self, event_type: str) -> bool:
        """Whether an event of ``event_type`` is for this endpoint."""
        return not self.event_types or event_type in self.event_types


class WebhookMessage(SQLModel, table=True):
    """One event to send, its body serialised once so every delivery signs the same bytes."""

    __tablename__ = "webhook_message"

    id: str = Field(primary_key=True, max_length=40)  # the event id, sent as webhook-id
    type: str = Field(max_length=64)
    timestamp: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class WebhookDelivery(SQLModel, table=True):
    """The sending of one message to one endpoint, retried until it succeeds or gives up."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("message_id", "endpoint_id", name="uq_webhook_delivery_message_endpoint"),
        Index("ix_webhook_delivery_endpoint_created", "endpoint_id", "created_at", "id"),
    )

    id: str = Field(default_factory=_delivery_id, primary_key=True, max_length=40)
    endpoint_id: str = Field(
        sa_column=Column(String(40), ForeignKey("webhook_endpoint.id"), nullable=False)
    )
    message_id: str = Field(
        sa_column=Column(String(40), ForeignKey("webhook_message.id"), nullable=False)
    )
    status: str = Field(default=PENDING, max_length=16)
    attempts: int = Field(default=0)  # attempts started, counted when claimed
    # When it is due: the next retry while pending, the lease's end while sending (so a
    # crashed sender's claim comes due again by itself), NULL once finished, or while
    # pending for a disabled endpoint ("parked"). The claim query is a range scan of
    # this index, which NULLs stay out of.
    next_attempt_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), index=True)
    )
    # The fencing token of the current claim: a sender may finish the row only while the
    # token it claimed with is still there.
    lease_token: str | None = Field(default=None, max_length=40)
    lease_expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    last_status_code: int | None = Field(default=None)
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    completed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class WebhookAttempt(SQLModel, table=True):
    """One HTTP request made for a delivery, and what came of it."""

    __tablename__ = "webhook_attempt"
    __table_args__ = (
        UniqueConstraint("delivery_id", "number", name="uq_webhook_attempt_delivery_number"),
    )

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: str = Field(
        sa_column=Column(String(40), ForeignKey("webhook_delivery.id"), nullable=False)
    )
    number: int  # 1 for the first attempt
    started_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    duration_ms: int
    # The webhook-timestamp header this attempt was signed with (Unix seconds).
    webhook_timestamp: int = Field(sa_column=Column(BigInteger, nullable=False))
    status_code: int | None = Field(default=None)
    # None on success; otherwise timeout, connection, tls, http_status, redirect,
    # unsafe_url or error.
    error_kind: str | None = Field(default=None, max_length=32)
    error_detail: str | None = Field(default=None, sa_column=Column(Text))
    response_body: str | None = Field(default=None, sa_column=Column(Text))


def table_of(model: type[SQLModel]) -> Any:
    """The Core table behind a table model (for bulk statements)."""
    return model.__table__  # type: ignore[attr-defined]
