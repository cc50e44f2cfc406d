"""The technology table and its status machine."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Date, Index, Numeric, Text, func, text
from sqlmodel import Field, SQLModel

from webhooks.sqltypes import UTCDateTime


class Status(StrEnum):
    """Where a technology stands."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    APPROVED_WITH_CONDITIONS = "approved_with_conditions"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


#: States in which a decision has not been made, so the record may still be withdrawn.
UNDECIDED = (Status.DRAFT, Status.SUBMITTED, Status.IN_REVIEW)
#: States in which the department may still edit the record.
EDITABLE = (Status.DRAFT, Status.SUBMITTED)
DECIDED = (Status.APPROVED, Status.APPROVED_WITH_CONDITIONS, Status.REJECTED)

#: Free-text fields (stored as text, empty string when not answered).
TEXT_FIELDS = (
    "vendor", "description", "purpose", "access_controls", "equity_impact",
    "community_engagement", "mitigations", "authorized_uses", "prohibited_uses",
    "alternatives_considered", "funding_source",
)
#: Fields holding lists of vocabulary values.
VOCABULARY_FIELDS = ("data_collected", "capabilities", "data_sharing")
#: Every field a department fills in (the policy evaluator reads these).
RECORD_FIELDS = (
    "name", *TEXT_FIELDS, *VOCABULARY_FIELDS, "retention_days", "deployment_areas",
    "annual_cost", "in_use", "documents",
)


def _text() -> Any:
    return Field(default="", sa_column=Column(Text, nullable=False, default=""))


def _json_list() -> Any:
    return Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class Technology(SQLModel, table=True):
    """A surveillance technology a department uses or wants to use."""

    __tablename__ = "technology"
    # Lists filter by status and page by id.
    __table_args__ = (
        Index("ix_technology_status_id", "status", "id"),
        # The page's "Name, A to Z": read in order, not every public technology sorted.
        Index("ix_technology_name_order", func.lower(text("name")), "id"),
    )

    id: str = Field(primary_key=True, max_length=40)
    department_id: str = Field(foreign_key="department.id", index=True)
    name: str = Field(max_length=200)
    status: str = Field(default=Status.DRAFT.value, index=True, max_length=32)

    vendor: str = _text()
    description: str = _text()
    purpose: str = _text()
    access_controls: str = _text()
    equity_impact: str = _text()
    community_engagement: str = _text()
    mitigations: str = _text()
    authorized_uses: str = _text()
    prohibited_uses: str = _text()
    alternatives_considered: str = _text()
    funding_source: str = _text()

    data_collected: list[str] = _json_list()
    capabilities: list[str] = _json_list()
    data_sharing: list[str] = _json_list()
    deployment_areas: list[str] = _json_list()
    documents: list[dict[str, str]] = _json_list()

    retention_days: int | None = Field(default=None)
    annual_cost: Decimal | None = Field(default=None, sa_column=Column(Numeric(14, 2)))
    in_use: bool = Field(default=False, index=True)
    risk_tier: str | None = Field(default=None, index=True, max_length=8)

    created_by: str | None = Field(default=None, max_length=40)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # Set once, at the first submission: the record is public from then on.
    submitted_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    decided_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    next_review_due: date | None = Field(default=None, sa_column=Column(Date()))
    # The due date the worker announced (technology.review_due), once per due date.
    review_due_announced_on: date | None = Field(default=None, sa_column=Column(Date()))

    @property
    def is_public(self) -> bool:
        """Drafts are private until their first submission."""
        return self.submitted_at is not None

    def record(self) -> dict[str, Any]:
        """The department's answers, as plain values (what policies evaluate)."""
        values = {name: getattr(self, name) for name in RECORD_FIELDS}
        if values["annual_cost"] is not None:
            values["annual_cost"] = float(values["annual_cost"])
        return values
