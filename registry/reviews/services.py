"""Placeholder until the reviews work lands."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from registry.technologies.models import Technology


def cancel_reviews_of_withdrawn(session: Session, technology: Technology, *,
                                now: datetime) -> None:
    """Cancel any review of a withdrawn technology that has not closed."""


def reviews_for_technology(session: Session, technology: Technology) -> list[dict[str, Any]]:
    """The technology's reviews as the API shows them."""
    return []
