"""What the policy and assessment routes answer with (also nested in a technology's record)."""

from __future__ import annotations

from marshmallow import Schema, fields


class PolicyVersionOut(Schema):
    """One immutable version of a policy, with its criteria."""

    version = fields.Integer()
    id = fields.String()
    title = fields.String()
    summary = fields.String(allow_none=True)
    published_at = fields.DateTime()
    document = fields.Dict(metadata={"description": "The version's criteria, as published."})


class PolicyOut(Schema):
    """A policy with its immutable versions, newest first."""

    slug = fields.String()
    title = fields.String()
    url = fields.String()
    active_version = fields.Integer(allow_none=True)
    created_at = fields.DateTime()
    versions = fields.List(fields.Nested(PolicyVersionOut))


class AssessmentOut(Schema):
    """An assessment: findings per criterion, the risk tier and what it requires."""

    id = fields.String()
    technology_id = fields.String()
    trigger = fields.String()
    created_at = fields.DateTime()
    policy_versions = fields.List(fields.Dict())
    findings = fields.List(fields.Dict())
    risk_tier = fields.String()
    risk_tier_reasons = fields.List(fields.String())
    min_comment_days = fields.Integer()
    meeting_required = fields.Boolean()
    outdated = fields.Boolean()
    outdated_at = fields.DateTime(allow_none=True)
    outdated_reason = fields.String(allow_none=True)
