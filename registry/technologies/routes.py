"""``/api/v1/technologies``: register, edit, submit, withdraw, read."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlmodel import Session

from policies.document import RISK_TIERS
from policies.vocabulary import DATA_COLLECTED
from registry.api import decode_cursor, known_values, paged
from registry.auth.context import current_principal, require
from registry.auth.models import Role
from registry.clock import now
from registry.database import db
from registry.departments.services import department_by_id
from registry.errors import Invalid
from registry.technologies.models import Status, Technology
from registry.technologies.schemas import (
    TechnologyDetail,
    TechnologyIn,
    TechnologyListArgs,
    TechnologyPage,
    TechnologyPatch,
)
from registry.technologies.services import (
    TechnologyFilters,
    create_technology,
    get_technology,
    list_technologies,
    submit_technology,
    update_technology,
    withdraw_technology,
)
from registry.urls import technology_page

blp = Blueprint("technologies", __name__, url_prefix="/api/v1/technologies",
                description="Technologies a department uses or wants, and their lifecycle.")


def technology_dict(session: Session, technology: Technology, *, detail: bool = False
                    ) -> dict[str, Any]:
    """A technology as the API shows it (with assessment and reviews when ``detail``)."""
    department = department_by_id(session, technology.department_id)
    body: dict[str, Any] = {
        "id": technology.id,
        "url": technology_page(technology.id),
        **technology.record(),
        "department": department.slug,
        "department_name": department.name,
        "status": technology.status,
        "risk_tier": technology.risk_tier,
        "created_at": technology.created_at,
        "updated_at": technology.updated_at,
        "submitted_at": technology.submitted_at,
        "decided_at": technology.decided_at,
        "next_review_due": technology.next_review_due,
    }
    if detail:
        from registry.assessments.services import latest_assessment_dict
        from registry.reviews.services import reviews_for_technology

        body["assessment"] = latest_assessment_dict(session, technology)
        body["reviews"] = reviews_for_technology(session, technology)
    return body


@blp.route("")
class Technologies(MethodView):
    """The registry's technologies."""

    @blp.arguments(TechnologyListArgs, location="query")
    @blp.response(200, TechnologyPage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List technologies. Drafts appear only to their department's staff and to admins."""
        session = db()
        errors: dict[str, list[str]] = {}
        filters = TechnologyFilters(
            status=known_values(args, "status", [s.value for s in Status], errors),
            department=args.get("department"),
            risk_tier=known_values(args, "risk_tier", list(RISK_TIERS), errors),
            data_collected=known_values(args, "data_collected", sorted(DATA_COLLECTED), errors),
            in_use=args.get("in_use"),
            q=args.get("q"),
        )
        if errors:
            raise Invalid("Unknown filter values; see errors.", errors=errors)
        items = list_technologies(session, current_principal(), filters,
                                  after=decode_cursor(args["cursor"], str),
                                  limit=args["limit"] + 1)
        return paged(items, args["limit"], key=lambda t: t.id,
                     dump=lambda t: technology_dict(session, t))

    @blp.arguments(TechnologyIn)
    @blp.response(201, TechnologyDetail)
    def post(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Register a draft (staff for their own department, or admin)."""
        principal = require(Role.STAFF, Role.ADMIN)
        technology = create_technology(db(), principal, fields, now=now())
        return technology_dict(db(), technology, detail=True)


@blp.route("/<technology_id>")
class TechnologyResource(MethodView):
    """One technology."""

    @blp.response(200, TechnologyDetail)
    def get(self, technology_id: str) -> dict[str, Any]:
        """The record, its latest assessment and its reviews."""
        technology = get_technology(db(), technology_id, current_principal())
        return technology_dict(db(), technology, detail=True)

    @blp.arguments(TechnologyPatch(partial=True))
    @blp.response(200, TechnologyDetail)
    def patch(self, fields: dict[str, Any], technology_id: str) -> dict[str, Any]:
        """Edit while ``draft`` or ``submitted`` (staff of its department, or admin)."""
        principal = require(Role.STAFF, Role.ADMIN)
        technology = get_technology(db(), technology_id, principal, for_update=True)
        update_technology(db(), principal, technology, fields, now=now())
        return technology_dict(db(), technology, detail=True)


@blp.route("/<technology_id>/submit", methods=["POST"])
@blp.response(200, TechnologyDetail)
def submit(technology_id: str) -> dict[str, Any]:
    """``draft`` → ``submitted``; assessed at once against the active policies."""
    principal = require(Role.STAFF, Role.ADMIN)
    technology = get_technology(db(), technology_id, principal, for_update=True)
    submit_technology(db(), principal, technology, now=now())
    return technology_dict(db(), technology, detail=True)


@blp.route("/<technology_id>/withdraw", methods=["POST"])
@blp.response(200, TechnologyDetail)
def withdraw(technology_id: str) -> dict[str, Any]:
    """Withdraw before a decision; a scheduled or open review is cancelled."""
    principal = require(Role.STAFF, Role.ADMIN)
    technology = get_technology(db(), technology_id, principal, for_update=True)
    withdraw_technology(db(), principal, technology, now=now())
    return technology_dict(db(), technology, detail=True)
