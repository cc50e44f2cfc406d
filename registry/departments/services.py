"""Adding and finding departments."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session

from registry.departments.models import Department
from registry.errors import Conflict
from registry.ids import new_id

SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def add_department(session: Session, *, slug: str, name: str, now: datetime) -> Department:
    """Add a department; a slug already taken is a conflict."""
    if get_department(session, slug) is not None:
        raise Conflict(f"A department with the slug {slug!r} already exists.")
    department = Department(id=new_id("dep"), slug=slug, name=name.strip(), created_at=now)
    session.add(department)
    session.flush()
    return department


def get_department(session: Session, slug: str) -> Department | None:
    """The department with ``slug``, if any."""
    return session.execute(
        select(Department).where(Department.slug == slug)  # type: ignore[arg-type]
    ).scalar_one_or_none()


def list_departments(session: Session, *, after: str | None, limit: int) -> list[Department]:
    """Departments in order of creation, after the cursor id."""
    query = select(Department).order_by(Department.id)  # type: ignore[arg-type]
    if after:
        query = query.where(Department.id > after)  # type: ignore[arg-type]
    return list(session.execute(query.limit(limit)).scalars())


def department_by_id(session: Session, department_id: str) -> Department:
    """The department with this id, remembered for the session's lifetime.

    Listing fifty technologies asks for their departments fifty times; the session's
    identity map holds objects only weakly, so without this each would be a query.
    """
    cache: dict[str, Department] = session.info.setdefault("departments_by_id", {})
    department = cache.get(department_id)
    if department is None:
        found = session.get(Department, department_id)
        assert found is not None, "a foreign key guarantees the department"
        cache[department_id] = department = found
    return department
