"""Placeholder until the policies work lands."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from registry.technologies.models import Technology


def assess_technology(session: Session, technology: Technology, *, trigger: str,
                      now: datetime) -> None:
    """Assess ``technology`` against the active policies."""


def mark_outdated_for_record_change(session: Session, technology: Technology,
                                    changed: list[str]) -> None:
    """Mark the technology's assessments out of date after its record changed."""


def latest_assessment_dict(session: Session, technology: Technology) -> dict[str, Any] | None:
    """The latest assessment as the API shows it."""
    return None
