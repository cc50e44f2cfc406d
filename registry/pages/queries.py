"""Read-only queries the resident pages need beyond the services (joins for listing pages)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from registry.assessments.models import Policy
from registry.departments.models import Department
from registry.reviews.models import Review, ReviewStatus
from registry.technologies.models import Status, Technology


@dataclass(frozen=True)
class ReviewRow:
    """A review with the technology and department it belongs to."""

    review: Review
    technology: Technology
    department: Department


def reviews_by_status(session: Session, status: ReviewStatus, *, order: Any,
                      limit: int) -> list[ReviewRow]:
    """Reviews in ``status`` (their technologies are public: a review needs a submission)."""
    rows = session.execute(
        select(Review, Technology, Department)
        .join(Technology, col(Technology.id) == col(Review.technology_id))
        .join(Department, col(Department.id) == col(Technology.department_id))
        .where(col(Review.status) == status.value)
        .order_by(order, col(Review.id)).limit(limit)
    ).all()
    return [ReviewRow(review, technology, department) for review, technology, department in rows]


def open_reviews(session: Session, limit: int = 50) -> list[ReviewRow]:
    """Comment periods open now, closing soonest first."""
    return reviews_by_status(session, ReviewStatus.OPEN, order=col(Review.comment_closes_at),
                             limit=limit)


def upcoming_reviews(session: Session, limit: int = 10) -> list[ReviewRow]:
    """Scheduled reviews, opening soonest first."""
    return reviews_by_status(session, ReviewStatus.SCHEDULED,
                             order=col(Review.comment_opens_at), limit=limit)


def recent_decisions(session: Session, limit: int = 5) -> list[ReviewRow]:
    """The latest decisions, newest first."""
    return reviews_by_status(session, ReviewStatus.DECIDED, order=col(Review.decided_at).desc(),
                             limit=limit)


#: Statuses under which a technology in use has an approved policy. Every other public one
#: in use has none: waiting for a decision, rejected, or withdrawn and still running.
_APPROVED = (Status.APPROVED.value, Status.APPROVED_WITH_CONDITIONS.value)


def _in_use_without_policy() -> tuple[Any, ...]:
    # Submitted once: a draft is private, even one withdrawn before it was submitted.
    return (col(Technology.submitted_at).is_not(None), col(Technology.in_use).is_(True),
            col(Technology.status).not_in(_APPROVED))


def in_use_without_policy(session: Session, limit: int = 50) -> list[tuple[Technology,
                                                                           Department]]:
    """Public technologies already deployed that have no approved policy, by name (the
    first ``limit``; ``count_in_use_without_policy`` counts them all)."""
    rows = session.execute(
        select(Technology, Department)
        .join(Department, col(Department.id) == col(Technology.department_id))
        .where(*_in_use_without_policy())
        .order_by(col(Technology.name), col(Technology.id)).limit(limit)
    ).all()
    return [(technology, department) for technology, department in rows]


def count_in_use_without_policy(session: Session) -> int:
    """How many public technologies are deployed without an approved policy."""
    return int(session.execute(
        select(func.count()).select_from(Technology).where(*_in_use_without_policy())
    ).scalar_one())


def departments(session: Session) -> list[Department]:
    """Every department, by name."""
    return list(session.execute(select(Department).order_by(col(Department.name))).scalars())


def departments_by_id(session: Session, ids: set[str]) -> dict[str, Department]:
    """The departments with these ids."""
    if not ids:
        return {}
    found = session.execute(select(Department).where(col(Department.id).in_(ids))).scalars()
    return {department.id: department for department in found}


def policy_titles(session: Session) -> dict[str, str]:
    """Policy slug → title, to name the policies findings come from."""
    return {slug: title for slug, title in
            session.execute(select(col(Policy.slug), col(Policy.title))).all()}
