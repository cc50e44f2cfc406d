"""``/api/v1/reviews`` and ``POST /api/v1/technologies/{id}/reviews``."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from registry.api import decode_cursor, known_values, paged
from registry.auth.context import current_principal, require
from registry.auth.models import Role
from registry.clock import now
from registry.database import db
from registry.errors import Invalid
from registry.reviews.models import ReviewStatus
from registry.reviews.schemas import (
    CancelIn,
    DecisionIn,
    ReviewIn,
    ReviewListArgs,
    ReviewOut,
    ReviewPage,
    ReviewPatch,
)
from registry.reviews.services import (
    cancel_review,
    decide_review,
    get_review,
    list_reviews,
    review_dict,
    schedule_review,
    update_review,
)
from registry.technologies.services import get_technology

blp = Blueprint("reviews", __name__, url_prefix="/api/v1",
                description="Public reviews: comment periods, meetings and decisions.")

REVIEWERS = (Role.REVIEWER, Role.ADMIN)


@blp.route("/technologies/<technology_id>/reviews", methods=["POST"])
@blp.arguments(ReviewIn)
@blp.response(201, ReviewOut)
def schedule(fields: dict[str, Any], technology_id: str) -> dict[str, Any]:
    """Schedule a public review of a submitted technology (reviewer)."""
    principal = require(*REVIEWERS)
    technology = get_technology(db(), technology_id, principal, for_update=True)
    review = schedule_review(db(), principal, technology, fields, now=now())
    return review_dict(db(), review)


@blp.route("/reviews")
@blp.arguments(ReviewListArgs, location="query")
@blp.response(200, ReviewPage)
def reviews(args: dict[str, Any]) -> dict[str, Any]:
    """Reviews, in order of scheduling."""
    errors: dict[str, list[str]] = {}
    statuses = known_values(args, "status", [s.value for s in ReviewStatus], errors)
    if errors:
        raise Invalid("Unknown review status; see errors.", errors=errors)
    items = list_reviews(db(), statuses=statuses, after=decode_cursor(args["cursor"], str),
                         limit=args["limit"] + 1, technology_id=args.get("technology"))
    return paged(items, args["limit"], key=lambda r: r.id,
                 dump=lambda r: review_dict(db(), r))


@blp.route("/reviews/<review_id>")
class ReviewResource(MethodView):
    """One review."""

    @blp.response(200, ReviewOut)
    def get(self, review_id: str) -> dict[str, Any]:
        """A review with its meetings, extensions and decision."""
        current_principal()
        return review_dict(db(), get_review(db(), review_id))

    @blp.arguments(ReviewPatch)
    @blp.response(200, ReviewOut)
    def patch(self, fields: dict[str, Any], review_id: str) -> dict[str, Any]:
        """Before opening: move dates. While open: a later ``comment_closes_at`` with a
        ``reason`` (an extension)."""
        require(*REVIEWERS)
        review = get_review(db(), review_id, for_update=True)
        return review_dict(db(), update_review(db(), review, fields, now=now()))


@blp.route("/reviews/<review_id>/cancel", methods=["POST"])
@blp.arguments(CancelIn)
@blp.response(200, ReviewOut)
def cancel(fields: dict[str, Any], review_id: str) -> dict[str, Any]:
    """Cancel before the comment period closes."""
    require(*REVIEWERS)
    review = get_review(db(), review_id, for_update=True)
    reason = (fields.get("reason") or "").strip() or None
    return review_dict(db(), cancel_review(db(), review, reason=reason, now=now()))


@blp.route("/reviews/<review_id>/decision", methods=["POST"])
@blp.arguments(DecisionIn)
@blp.response(200, ReviewOut)
def decision(fields: dict[str, Any], review_id: str) -> dict[str, Any]:
    """Record the decision after the period closed; the technology's status follows."""
    require(*REVIEWERS)
    review = get_review(db(), review_id, for_update=True)
    return review_dict(db(), decide_review(db(), review, fields, now=now()))
