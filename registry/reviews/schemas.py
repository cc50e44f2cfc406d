"""Request and response schemas for reviews."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from registry.api import ListArgs, Moment, page_schema
from registry.reviews.models import ReviewStatus

_TEXT = validate.Length(max=5000)


class MeetingSchema(Schema):
    """A public meeting during the comment period."""

    id = fields.String(validate=validate.Length(max=40), load_default=None,
                       metadata={"description": "Keep a meeting's id when rescheduling it, so "
                                 "calendars update the same event."})
    starts_at = Moment(required=True)
    ends_at = Moment(load_default=None, allow_none=True)
    place = fields.String(validate=validate.Length(max=300), load_default=None)
    online_url = fields.Url(schemes={"http", "https"}, load_default=None)
    languages = fields.List(fields.String(validate=validate.Length(min=2, max=35)),
                            load_default=list, metadata={"description": "e.g. `en`, `es`"})

    @validates_schema
    def _somewhere(self, data: dict[str, Any], **_: Any) -> None:
        if not data.get("place") and not data.get("online_url"):
            raise ValidationError("Give a place, an online link, or both.", "place")
        if data.get("ends_at") and data["ends_at"] <= data["starts_at"]:
            raise ValidationError("A meeting must end after it starts.", "ends_at")


def _distinct_ids(meetings: list[dict[str, Any]]) -> None:
    """Refuse two meetings with one id: the id names a meeting in calendars."""
    ids = [m["id"] for m in meetings if m.get("id")]
    if len(ids) != len(set(ids)):
        raise ValidationError("Two meetings have the same id; each meeting needs its own.")


_MEETINGS = validate.And(validate.Length(max=20), _distinct_ids)


class ReviewIn(Schema):
    """Schedule a public review."""

    comment_opens_at = Moment(required=True)
    comment_closes_at = Moment(required=True)
    meetings = fields.List(fields.Nested(MeetingSchema), load_default=list,
                           validate=_MEETINGS)
    override_reason = fields.String(validate=_TEXT, load_default=None, allow_none=True,
                                    metadata={"description": "Public reason for a period "
                                              "shorter than the assessment's minimum."})


class ReviewPatch(Schema):
    """Move dates before opening; while open, a later closing time with a reason."""

    comment_opens_at = Moment()
    comment_closes_at = Moment()
    meetings = fields.List(fields.Nested(MeetingSchema), validate=_MEETINGS)
    override_reason = fields.String(validate=_TEXT, allow_none=True)
    reason = fields.String(validate=_TEXT, metadata={"description": "Why an open period is "
                                                     "extended (public)."})


class CancelIn(Schema):
    """Cancel a review."""

    reason = fields.String(validate=_TEXT, load_default=None, allow_none=True)


class DecisionIn(Schema):
    """The decision after the comment period closed."""

    outcome = fields.String(required=True, validate=validate.OneOf(
        ["approved", "approved_with_conditions", "rejected"]))
    rationale = fields.String(required=True, validate=validate.Length(min=1, max=20000))
    conditions = fields.String(validate=validate.Length(max=20000), load_default=None,
                               allow_none=True)

    @validates_schema
    def _rationale_not_blank(self, data: dict[str, Any], **_: Any) -> None:
        if not data.get("rationale", "x").strip():
            raise ValidationError("The rationale cannot be blank.", "rationale")
        # Conditions published beside an outright approval or a rejection would read as
        # binding when they are not.
        if (data.get("conditions") or "").strip() and data.get("outcome") in (
                "approved", "rejected"):
            raise ValidationError(
                "Conditions go only with the outcome 'approved_with_conditions'; leave them "
                "out, or choose that outcome.", "conditions")


class ReviewOut(Schema):
    """A review."""

    id = fields.String()
    url = fields.String()
    api_url = fields.String()
    status = fields.String(validate=validate.OneOf([s.value for s in ReviewStatus]))
    technology = fields.Dict()
    comment_opens_at = fields.DateTime()
    comment_closes_at = fields.DateTime()
    meetings = fields.List(fields.Dict())
    extensions = fields.List(fields.Dict())
    override_reason = fields.String(allow_none=True)
    assessment_id = fields.String(allow_none=True)
    comments_url = fields.String()
    opened_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    cancelled_at = fields.DateTime(allow_none=True)
    cancel_reason = fields.String(allow_none=True)
    decision = fields.Dict(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class ReviewListArgs(ListArgs):
    """Filter reviews."""

    status = fields.String(metadata={"description": "`scheduled`, `open`, `closed`, "
                                     "`decided`, `cancelled` (comma-separated)."})
    technology = fields.String(metadata={"description": "A technology id."})


ReviewPage = page_schema(ReviewOut, "ReviewPage")
