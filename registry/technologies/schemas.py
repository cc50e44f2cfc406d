"""Request and response schemas for technologies."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates

from policies.vocabulary import VOCABULARIES
from registry.api import ListArgs, page_schema
from registry.assessments.schemas import AssessmentOut
from registry.reviews.schemas import ReviewOut
from registry.technologies.models import TEXT_FIELDS, Status

_LONG_TEXT = validate.Length(max=20_000)


class NullableText(fields.String):
    """Free text where null means "not answered", stored as an empty string."""

    def deserialize(self, value: Any, attr: str | None = None, data: Any = None,
                    **kwargs: Any) -> Any:
        if value is None:
            return ""
        result = super().deserialize(value, attr, data, **kwargs)
        return result.strip() if isinstance(result, str) else result


def _vocabulary_list(field: str) -> fields.List[Any]:
    return fields.List(
        fields.String(validate=validate.OneOf(sorted(VOCABULARIES[field]),
                                              error="Not a value of the " + field +
                                              " vocabulary (see /api/v1/vocabularies).")),
        allow_none=True,
        metadata={"description": f"Values from the `{field}` vocabulary."},
    )


class DocumentSchema(Schema):
    """A document about the technology (impact report, policy, contract)."""

    title = fields.String(required=True, validate=validate.Length(min=1, max=300))
    url = fields.Url(required=True, schemes={"http", "https"})


class _TechnologyInBase(Schema):
    """The fields a department fills in."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    department = fields.String(required=True, validate=validate.Length(min=1, max=64),
                               metadata={"description": "The department's slug."})
    data_collected = _vocabulary_list("data_collected")
    capabilities = _vocabulary_list("capabilities")
    data_sharing = _vocabulary_list("data_sharing")
    # strict: 1.9 days is a mistake to name, not a value to cut down to 1.
    retention_days = fields.Integer(
        strict=True, allow_none=True, validate=validate.Range(min=0, max=36_500),
        metadata={"description": "Days data is kept; null when unknown."})
    deployment_areas = fields.List(fields.String(validate=validate.Length(min=1, max=200)),
                                   validate=validate.Length(max=200))
    annual_cost = fields.Float(
        allow_none=True, validate=validate.Range(min=0, max=1e11),
        metadata={"description": "Total yearly cost in the city's currency."})
    in_use = fields.Boolean(metadata={"description": "Already deployed before review."})
    documents = fields.List(fields.Nested(DocumentSchema), validate=validate.Length(max=50))

    @validates("name")
    def _name_not_blank(self, value: str, **_: Any) -> None:
        if not value.strip():
            raise ValidationError("The name cannot be blank.")

    @post_load
    def _normalise(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        for field in VOCABULARIES:
            if field in data:
                # null means "none given"; duplicates say nothing more.
                data[field] = list(dict.fromkeys(data[field] or []))
        if "name" in data:
            data["name"] = data["name"].strip()
        if data.get("annual_cost") is not None:
            data["annual_cost"] = Decimal(str(round(data["annual_cost"], 2)))
        return data


TechnologyIn = _TechnologyInBase.from_dict(
    {name: NullableText(validate=_LONG_TEXT, allow_none=True) for name in TEXT_FIELDS},
    name="TechnologyIn",
)


class TechnologyPatch(TechnologyIn):  # type: ignore[misc,valid-type]
    """Fields to change; any subset of the registration fields."""


class DepartmentRef(Schema):
    """A department, as shown inside a technology."""

    slug = fields.String()
    name = fields.String()


class _TechnologyOutBase(Schema):
    """A technology as the API shows it."""

    id = fields.String()
    url = fields.String(metadata={"description": "The resident page."})
    name = fields.String()
    department = fields.String(metadata={"description": "The department's slug."})
    department_name = fields.String()
    status = fields.String(validate=validate.OneOf([s.value for s in Status]))
    data_collected = fields.List(fields.String())
    capabilities = fields.List(fields.String())
    data_sharing = fields.List(fields.String())
    retention_days = fields.Integer(allow_none=True)
    deployment_areas = fields.List(fields.String())
    annual_cost = fields.Float(allow_none=True)
    in_use = fields.Boolean()
    documents = fields.List(fields.Nested(DocumentSchema))
    risk_tier = fields.String(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    submitted_at = fields.DateTime(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    next_review_due = fields.Date(allow_none=True)


TechnologyOut = _TechnologyOutBase.from_dict(
    {name: fields.String() for name in TEXT_FIELDS}, name="TechnologyOut"
)


class TechnologyDetail(TechnologyOut):  # type: ignore[misc,valid-type]
    """A technology with its latest assessment and its reviews."""

    # Nested schemas, not plain dicts: a dict's times would reach Flask's JSON encoder,
    # which writes HTTP dates, where the contract promises RFC 3339.
    assessment = fields.Nested(AssessmentOut, allow_none=True,
                               metadata={"description": "The latest assessment, or null."})
    reviews = fields.List(fields.Nested(ReviewOut),
                          metadata={"description": "Public reviews, newest first."})


class TechnologyListArgs(ListArgs):
    """Filters for the technology list (comma-separate several values)."""

    status = fields.String(metadata={"description": "e.g. `submitted,in_review`"})
    department = fields.String(metadata={"description": "A department slug."})
    risk_tier = fields.String(
        metadata={"description": "`low`, `medium` or `high` (comma-separated)."})
    data_collected = fields.String(metadata={"description": "Vocabulary values; all must match."})
    in_use = fields.Boolean()
    q = fields.String(validate=validate.Length(max=200), metadata={"description": "Text search."})


TechnologyPage = page_schema(TechnologyOut, "TechnologyPage")
