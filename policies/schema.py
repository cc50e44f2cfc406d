"""The policy-document schema (marshmallow) and loading documents from JSON.

A document::

    {
      "slug": "privacy",                        # lowercase words joined by hyphens
      "title": "Privacy and civil liberties",
      "summary": "What this policy protects, in a sentence or two.",
      "criteria": [                             # at least one
        {
          "id": "fixed-retention",              # unique in the document, lowercase-kebab
          "principle": "Retention",             # the principle it serves
          "question": "Is the data deleted after a fixed, short time?",
          "rule": {"field": "retention_days", "gt": 365},   # see policies.rules
          "outcome": "concern",                 # the finding when the rule holds: concern | fail
          "guidance": "Set a retention period of a year or less ...",
          "explanation_pass": "...",            # optional, shown to residents
          "explanation_trip": "...",            # optional, shown to residents
          "raises_tier_to": "high"              # optional: medium | high
        }
      ],
      "tiers": {...}                            # optional, see policies.document
    }

Unknown keys are refused, so a misspelt key is reported rather than ignored.
:class:`PolicyDocumentSchema` can serve directly as a request schema (its ``load`` returns a
:class:`~policies.document.PolicyDocument`); :func:`load_policy_document` wraps it and reports
mistakes as a flat map for a 422 response.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, cast

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from policies.document import (
    RISK_TIERS,
    Criterion,
    PolicyDocument,
    TierRule,
    TierRules,
    TierThresholds,
)
from policies.rules import Rule, RuleProblem, RuleSyntaxError, format_path, parse_rule

_KEBAB = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
_KEBAB_ERROR = "Must be lowercase letters and digits in words joined by hyphens, like 'my-policy'."


class PolicyDocumentError(ValueError):
    """A policy document is invalid.

    ``errors`` maps where each mistake is (``"criteria.3.rule"``; ``"_schema"`` for the document
    as a whole) to messages that name the exact place, such as
    ``"criteria[3].rule.any[1]: unknown field 'data_colected'"``.
    """

    def __init__(self, errors: dict[str, list[str]]) -> None:
        messages = [message for group in errors.values() for message in group]
        super().__init__("Invalid policy document: " + "; ".join(messages))
        self.errors = errors


def load_policy_document(data: Mapping[str, Any]) -> PolicyDocument:
    """Validate a policy document's JSON and build it, or raise :class:`PolicyDocumentError`."""
    try:
        document = PolicyDocumentSchema().load(data)
    except ValidationError as error:
        raise PolicyDocumentError(flatten_errors(error.messages)) from None
    return cast(PolicyDocument, document)


def dump_policy_document(document: PolicyDocument) -> dict[str, Any]:
    """The document as JSON that :func:`load_policy_document` accepts again."""
    return document.to_dict()


def flatten_errors(messages: Any) -> dict[str, list[str]]:
    """Flatten marshmallow's nested error messages into ``{"criteria.3.rule": [message]}``.

    Mistakes inside a rule are grouped under the rule's key; their messages carry the exact
    path inside the rule, which is what a policy author needs to find them.
    """
    flat: dict[str, list[str]] = {}

    def walk(node: Any, path: tuple[str | int, ...]) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                walk(value, path if key == "_schema" else (*path, key))
        elif isinstance(node, list):
            for item in node:
                walk(item, path)
        else:
            where = _readable_path(path)
            flat.setdefault(_error_key(path), []).append(f"{where}: {node}" if where else str(node))

    walk(messages, ())
    return flat


def _error_key(path: tuple[str | int, ...]) -> str:
    parts = list(path)
    if "rule" in parts:
        parts = parts[: parts.index("rule") + 1]
    return ".".join(str(part) for part in parts) or "_schema"


def _readable_path(path: tuple[str | int, ...]) -> str:
    if not path:
        return ""
    head, *rest = path
    return format_path(tuple(rest), root=str(head))


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("Must not be blank.")


def _text(max_length: int, **kwargs: Any) -> fields.String:
    return fields.String(validate=[validate.Length(max=max_length), _not_blank], **kwargs)


class StrictBoolean(fields.Field[bool]):
    """``true`` or ``false`` only (marshmallow's Boolean also takes "yes", 1, ...)."""

    default_error_messages = {"invalid": "Must be true or false."}

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class WholeNumber(fields.Integer):
    """An integer that is not a boolean (Python counts ``True`` as 1)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class RuleField(fields.Field[Rule]):
    """A criterion's rule, parsed by :func:`policies.rules.parse_rule`."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"type": "object", "description": "A rule; see the policies documentation."}
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> Rule:
        try:
            return parse_rule(value)
        except RuleSyntaxError as error:
            raise ValidationError(_nest(error.problems)) from None

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if value is None or isinstance(value, Mapping):
            return value
        return cast(Rule, value).to_dict()


def _nest(problems: list[RuleProblem]) -> dict[str | int, Any]:
    # Shape the problems like marshmallow's own nested errors, so the rule's path survives
    # into both the schema's messages and flatten_errors.
    tree: dict[str | int, Any] = {}
    for problem in problems:
        node = tree
        for part in problem.path:
            node = node.setdefault(part, {})
        node.setdefault("_schema", []).append(problem.message)
    return tree


class CriterionSchema(Schema):
    """One criterion of a policy document."""

    id = fields.String(
        required=True,
        validate=[validate.Length(max=64), validate.Regexp(_KEBAB, error=_KEBAB_ERROR)],
    )
    principle = _text(100, required=True)
    question = _text(500, required=True)
    rule = RuleField(required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(("concern", "fail")))
    guidance = _text(2000, required=True)
    explanation_pass = _text(1000, load_default=None, allow_none=True)
    explanation_trip = _text(1000, load_default=None, allow_none=True)
    raises_tier_to = fields.String(
        load_default=None, allow_none=True, validate=validate.OneOf(("medium", "high"))
    )

    @post_load
    def make_criterion(self, data: dict[str, Any], **kwargs: Any) -> Criterion:
        """Build the criterion."""
        return Criterion(**data)


class TierRuleSchema(Schema):
    """What a public review must offer at one tier."""

    min_comment_days = WholeNumber(required=True, validate=validate.Range(min=1, max=365))
    meeting_required = StrictBoolean(required=True)

    @post_load
    def make_tier_rule(self, data: dict[str, Any], **kwargs: Any) -> TierRule:
        """Build the tier rule."""
        return TierRule(**data)


class TierThresholdsSchema(Schema):
    """Counts of findings that reach a tier."""

    fails_at_least = WholeNumber(load_default=None, allow_none=True, validate=validate.Range(min=1))
    concerns_at_least = WholeNumber(
        load_default=None, allow_none=True, validate=validate.Range(min=1)
    )
    needs_information_at_least = WholeNumber(
        load_default=None, allow_none=True, validate=validate.Range(min=1)
    )

    @post_load
    def make_thresholds(self, data: dict[str, Any], **kwargs: Any) -> TierThresholds:
        """Build the thresholds."""
        return TierThresholds(**data)


class TiersSchema(Schema):
    """The tier rules; every part left out takes its default."""

    low = fields.Nested(TierRuleSchema)
    medium = fields.Nested(TierRuleSchema)
    high = fields.Nested(TierRuleSchema)
    high_if = fields.Nested(TierThresholdsSchema)
    medium_if = fields.Nested(TierThresholdsSchema)

    @validates_schema
    def check_stricter_tiers_ask_more(self, data: dict[str, Any], **kwargs: Any) -> None:
        """A higher tier must not give the public less time or drop a required meeting."""
        tiers = replace(TierRules(), **data)
        errors: dict[str, dict[str, list[str]]] = {}
        for lower, higher in zip(RISK_TIERS, RISK_TIERS[1:], strict=False):
            below, above = tiers.rule_for(lower), tiers.rule_for(higher)
            if above.min_comment_days < below.min_comment_days:
                errors.setdefault(higher, {})["min_comment_days"] = [
                    f"Must be at least the {lower} tier's {below.min_comment_days} days."
                ]
            if below.meeting_required and not above.meeting_required:
                errors.setdefault(higher, {})["meeting_required"] = [
                    f"Must be true, since the {lower} tier requires a meeting."
                ]
        if errors:
            raise ValidationError(cast(dict[str, Any], errors))

    @post_load
    def make_tier_rules(self, data: dict[str, Any], **kwargs: Any) -> TierRules:
        """Build the tier rules over the defaults."""
        return replace(TierRules(), **data)


class PolicyDocumentSchema(Schema):
    """A policy document; ``load`` returns a :class:`~policies.document.PolicyDocument`."""

    slug = fields.String(
        required=True,
        validate=[validate.Length(max=64), validate.Regexp(_KEBAB, error=_KEBAB_ERROR)],
    )
    title = _text(200, required=True)
    summary = _text(2000, required=True)
    criteria = fields.List(
        fields.Nested(CriterionSchema),
        required=True,
        validate=validate.Length(min=1, error="A policy needs at least one criterion."),
    )
    tiers = fields.Nested(TiersSchema, load_default=None, allow_none=True)

    @validates_schema(skip_on_field_errors=False, pass_original=True)
    def check_criterion_ids_are_unique(
        self, data: dict[str, Any], original_data: Any, **kwargs: Any
    ) -> None:
        """Criterion ids must be unique: assessments and pages refer to criteria by id."""
        # Read the raw input, so a duplicate is reported together with any other mistake.
        raw = original_data.get("criteria") if isinstance(original_data, Mapping) else None
        if not isinstance(raw, list):
            return
        first_use: dict[str, int] = {}
        errors: dict[int, dict[str, list[str]]] = {}
        for index, criterion in enumerate(raw):
            criterion_id = criterion.get("id") if isinstance(criterion, Mapping) else None
            if not isinstance(criterion_id, str):
                continue
            if criterion_id in first_use:
                errors[index] = {
                    "id": [
                        f"Duplicate id '{criterion_id}': criteria[{first_use[criterion_id]}] "
                        "already uses it."
                    ]
                }
            else:
                first_use[criterion_id] = index
        if errors:
            raise ValidationError(cast(dict[str, Any], {"criteria": errors}))

    @post_load
    def make_document(self, data: dict[str, Any], **kwargs: Any) -> PolicyDocument:
        """Build the document."""
        return PolicyDocument(
            slug=data["slug"],
            title=data["title"],
            summary=data["summary"],
            criteria=tuple(data["criteria"]),
            tiers=data["tiers"] or TierRules(),
        )
