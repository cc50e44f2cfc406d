"""The technology lifecycle: register, edit, submit, withdraw. Services flush; requests commit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Text, and_, cast, func, or_, select
from sqlmodel import Session, col

from registry.auth.models import Role
from registry.auth.services import Principal
from registry.db import unicode_lower, update_each
from registry.departments.models import Department
from registry.departments.services import department_by_id, get_department
from registry.errors import Conflict, Forbidden, Invalid, NotFound
from registry.events.services import append_event
from registry.ids import new_id
from registry.technologies.models import (
    EDITABLE,
    RECORD_FIELDS,
    UNDECIDED,
    VOCABULARY_FIELDS,
    Status,
    Technology,
)
from registry.urls import api_url, technology_page


def _department_of(session: Session, technology: Technology) -> Department:
    return department_by_id(session, technology.department_id)


def snapshot(session: Session, technology: Technology) -> dict[str, Any]:
    """The public summary of a technology carried in events and webhooks."""
    department = _department_of(session, technology)
    return {
        "id": technology.id,
        "url": technology_page(technology.id),
        "api_url": api_url(f"/technologies/{technology.id}"),
        "name": technology.name,
        "department": {"slug": department.slug, "name": department.name},
        "status": technology.status,
        "vendor": technology.vendor,
        "purpose": technology.purpose,
        "in_use": technology.in_use,
        "risk_tier": technology.risk_tier,
    }


def can_see(principal: Principal | None, technology: Technology) -> bool:
    """Public records are for everyone; a draft only for its department's staff and admins."""
    if technology.is_public:
        return True
    if principal is None:
        return False
    if principal.role is Role.ADMIN:
        return True
    return principal.role is Role.STAFF and principal.department_id == technology.department_id


def require_editor(principal: Principal, technology: Technology) -> None:
    """Staff may act only on their own department's records; admins on any."""
    if principal.role is Role.ADMIN:
        return
    if principal.role is Role.STAFF and principal.department_id == technology.department_id:
        return
    raise Forbidden("Only staff of the technology's own department, or an admin, may do this.")


def get_technology(
    session: Session, technology_id: str, principal: Principal | None, *, for_update: bool = False
) -> Technology:
    """The technology, if this principal may see it; otherwise 404 (drafts stay secret)."""
    query = select(Technology).where(Technology.id == technology_id)  # type: ignore[arg-type]
    if for_update:
        query = query.with_for_update()
    technology: Technology | None = session.execute(query).scalar_one_or_none()
    if technology is None or not can_see(principal, technology):
        raise NotFound(f"There is no technology {technology_id!r}.")
    return technology


def _department_for_new(session: Session, principal: Principal, slug: str) -> Department:
    department = get_department(session, slug)
    if department is None:
        raise Invalid("Some fields are not valid; see errors.",
                      errors={"department": [f"No department with the slug {slug!r}."]})
    if principal.role is Role.STAFF and principal.department_id != department.id:
        raise Forbidden("Staff may register technologies only for their own department.")
    return department


def create_technology(
    session: Session, principal: Principal, fields: Mapping[str, Any], *, now: datetime
) -> Technology:
    """Register a draft. Drafts are private and write no event."""
    department = _department_for_new(session, principal, fields["department"])
    values = {name: fields[name] for name in RECORD_FIELDS if name in fields}
    technology = Technology(
        id=new_id("tech"),
        department_id=department.id,
        created_by=principal.token_id,
        created_at=now,
        updated_at=now,
        **values,
    )
    session.add(technology)
    session.flush()
    return technology


def update_technology(
    session: Session,
    principal: Principal,
    technology: Technology,
    fields: Mapping[str, Any],
    *,
    now: datetime,
) -> list[str]:
    """Edit a draft or submitted record; returns the names of the fields that changed."""
    require_editor(principal, technology)
    _require_status(technology, EDITABLE, "edit")
    changed: list[str] = []
    if "department" in fields:
        department = _department_for_new(session, principal, fields["department"])
        if department.id != technology.department_id:
            technology.department_id = department.id
            changed.append("department")
    for name in RECORD_FIELDS:
        if name in fields and (_normalise(name, getattr(technology, name))
                               != _normalise(name, fields[name])):
            setattr(technology, name, fields[name])
            changed.append(name)
    if not changed:
        return changed
    technology.updated_at = now
    session.add(technology)
    session.flush()
    if technology.is_public:
        from registry.assessments.services import mark_outdated_for_record_change

        mark_outdated_for_record_change(session, technology, changed)
        append_event(
            session, type="technology.updated", subject_type="technology",
            subject_id=technology.id, technology_id=technology.id, now=now,
            data={"technology": snapshot(session, technology), "changed_fields": changed},
        )
    return changed


def _normalise(name: str, value: Any) -> Any:
    """``value`` as compared for a change: a vocabulary list is a set of terms (the same
    terms in another order change nothing, and must not mark the assessment out of date)."""
    if name in VOCABULARY_FIELDS and isinstance(value, list):
        return sorted(set(value))
    if value is not None and hasattr(value, "as_integer_ratio") and not isinstance(value, bool):
        return float(value)
    return value


def submit_technology(
    session: Session, principal: Principal, technology: Technology, *, now: datetime
) -> Technology:
    """``draft`` → ``submitted``: the record becomes public and is assessed at once."""
    from registry.assessments.services import assess_technology

    require_editor(principal, technology)
    _require_status(technology, (Status.DRAFT,), "submit")
    technology.status = Status.SUBMITTED.value
    technology.submitted_at = technology.submitted_at or now
    technology.updated_at = now
    session.add(technology)
    session.flush()
    append_event(
        session, type="technology.submitted", subject_type="technology",
        subject_id=technology.id, technology_id=technology.id, now=now,
        data={"technology": snapshot(session, technology)},
    )
    assess_technology(session, technology, trigger="submitted", now=now)
    return technology


def withdraw_technology(
    session: Session, principal: Principal, technology: Technology, *, now: datetime
) -> Technology:
    """Withdraw before a decision; a pending review is cancelled with it."""
    require_editor(principal, technology)
    _require_status(technology, UNDECIDED, "withdraw")
    was_public = technology.is_public
    technology.status = Status.WITHDRAWN.value
    technology.updated_at = now
    session.add(technology)
    session.flush()
    if was_public:
        from registry.reviews.services import cancel_reviews_of_withdrawn

        cancel_reviews_of_withdrawn(session, technology, now=now)
        append_event(
            session, type="technology.withdrawn", subject_type="technology",
            subject_id=technology.id, technology_id=technology.id, now=now,
            data={"technology": snapshot(session, technology)},
        )
    return technology


def _require_status(technology: Technology, allowed: Sequence[Status], action: str) -> None:
    if technology.status not in {s.value for s in allowed}:
        raise Conflict(
            f"This technology is {technology.status!r}; it can be {action}"
            f"{'ed' if not action.endswith('e') else 'd'} only while "
            f"{' or '.join(repr(s.value) for s in allowed)}.",
            current_status=technology.status,
            allowed_statuses=[s.value for s in allowed],
        )


@dataclass(frozen=True)
class TechnologyFilters:
    """The filters of ``GET /technologies``."""

    status: Sequence[str] = ()
    department: str | None = None
    risk_tier: Sequence[str] = ()
    data_collected: Sequence[str] = ()
    in_use: bool | None = None
    q: str | None = None


#: Orders of a technology list: as registered (the default), or by name from A to Z.
ORDERS = ("registered", "name")


def list_technologies(
    session: Session,
    principal: Principal | None,
    filters: TechnologyFilters,
    *,
    after: str | None,
    limit: int,
    order: str = "registered",
) -> list[Technology]:
    """Technologies this principal may see, matching ``filters``, in order of registration
    or by name (``order``, one of ``ORDERS``); ``after`` is the id of the last one of the
    previous page."""
    if order not in ORDERS:
        raise ValueError(f"not an order of technologies: {order!r}")
    query = _filtered(select(Technology).where(_visibility(principal)), filters)
    if order == "name":
        # Case-blind, then by id for names alike; a page goes on from its last row's place.
        key = func.lower(col(Technology.name))
        if after:
            # The page goes on from its anchor's name, so the anchor must be one this
            # principal may see: a draft's id as the cursor would place its private name
            # among the public ones, a page at a time.
            placed = session.get(Technology, after)
            if placed is None or not can_see(principal, placed):
                return []
            anchor = select(key).where(col(Technology.id) == after).scalar_subquery()
            query = query.where(or_(key > anchor,
                                    and_(key == anchor, col(Technology.id) > after)))
        query = query.order_by(key, col(Technology.id))
    else:
        if after:
            query = query.where(col(Technology.id) > after)
        query = query.order_by(col(Technology.id))
    return list(session.execute(query.limit(limit)).scalars())


def count_technologies(session: Session, principal: Principal | None,
                       filters: TechnologyFilters) -> int:
    """How many technologies this principal may see match ``filters``."""
    query = select(func.count()).select_from(Technology).where(_visibility(principal))
    return int(session.execute(_filtered(query, filters)).scalar_one())


def _filtered(query: Any, filters: TechnologyFilters) -> Any:
    if filters.status:
        query = query.where(Technology.status.in_(filters.status))  # type: ignore[attr-defined]
    if filters.department:
        query = query.join(Department, Department.id == Technology.department_id).where(  # type: ignore[arg-type]
            Department.slug == filters.department  # type: ignore[arg-type]
        )
    if filters.risk_tier:
        query = query.where(Technology.risk_tier.in_(filters.risk_tier))  # type: ignore[union-attr]
    for value in filters.data_collected:
        # Vocabulary values are [a-z_] tokens, so the quoted token matches one JSON element.
        query = query.where(
            cast(Technology.data_collected, Text).like(f'%"{value}"%')  # type: ignore[arg-type]
        )
    if filters.in_use is not None:
        query = query.where(Technology.in_use == filters.in_use)  # type: ignore[arg-type]
    if filters.q:
        needle = filters.q.strip().lower()
        # An ASCII needle can only match ASCII letters, which SQLite's lower() handles.
        lower = func.lower if needle.isascii() else unicode_lower
        query = query.where(
            or_(*(lower(getattr(Technology, name)).contains(needle, autoescape=True)
                  for name in ("name", "vendor", "description", "purpose")))
        )
    return query


def _visibility(principal: Principal | None) -> Any:
    public = Technology.submitted_at.is_not(None)  # type: ignore[union-attr]
    if principal is None:
        return public
    if principal.role is Role.ADMIN:
        return col(Technology.id).is_not(None)
    if principal.role is Role.STAFF:
        return or_(public, col(Technology.department_id) == principal.department_id)
    return public


def announce_due_reviews(session: Session, *, today: date, now: datetime) -> list[str]:
    """Announce (``technology.review_due``) every approved technology whose yearly review
    falls due by ``today`` and has not been announced for that due date; returns their ids.

    Each is a conditional update (``update_each``), so two workers announce a due date once.
    """
    approved = [Status.APPROVED.value, Status.APPROVED_WITH_CONDITIONS.value]
    conditions = (
        col(Technology.status).in_(approved),
        col(Technology.next_review_due) <= today,
        or_(col(Technology.review_due_announced_on).is_(None),
            col(Technology.review_due_announced_on) < col(Technology.next_review_due)),
    )
    announced = update_each(session, Technology, conditions,
                            {"review_due_announced_on": Technology.next_review_due})
    for technology_id in announced:
        technology = session.get(Technology, technology_id, populate_existing=True)
        assert technology is not None
        append_event(
            session, type="technology.review_due", subject_type="technology",
            subject_id=technology.id, technology_id=technology.id, now=now,
            data={"technology": snapshot(session, technology),
                  "next_review_due": technology.next_review_due.isoformat()
                  if technology.next_review_due else None,
                  "decided_at": technology.decided_at.isoformat().replace("+00:00", "Z")
                  if technology.decided_at else None})
    return announced
