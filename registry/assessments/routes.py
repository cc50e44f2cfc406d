"""``/api/v1/policies`` and ``/api/v1/technologies/{id}/assessments``."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from registry.api import page_schema, whole_list
from registry.assessments.schemas import AssessmentOut, PolicyOut
from registry.assessments.services import (
    assess_technology,
    assessment_dict,
    assessments_of,
    get_policy,
    list_policies,
    policy_dict,
    publish_policy,
)
from registry.auth.context import current_principal, require
from registry.auth.models import Role
from registry.clock import now
from registry.database import db
from registry.errors import Problem
from registry.technologies.services import get_technology

blp = Blueprint("policies", __name__, url_prefix="/api/v1",
                description="The city's privacy and equity policies, and assessments.")


class BadRequest(Problem):
    """The body is not a JSON object."""




PolicyList = page_schema(PolicyOut, "PolicyList")
AssessmentList = page_schema(AssessmentOut, "AssessmentList")
PolicyDocumentBody = Schema.from_dict(
    {"slug": fields.String(), "title": fields.String(), "summary": fields.String(),
     "criteria": fields.List(fields.Dict()), "tiers": fields.Dict()},
    name="PolicyDocument")


def _json_object() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("Send the policy document as a JSON object.")
    return body


@blp.route("/policies", methods=["GET"])
@blp.response(200, PolicyList)
def policies() -> dict[str, Any]:
    """Every policy with its versions and criteria."""
    return whole_list([policy_dict(db(), p) for p in list_policies(db())])


@blp.route("/policies", methods=["POST"])
@blp.doc(requestBody={"content": {"application/json": {"schema": PolicyDocumentBody}}})
@blp.response(201, PolicyOut)
def publish_new_policy() -> dict[str, Any]:
    """Publish a new policy (admin). Invalid documents are a 422 naming the criterion."""
    principal = require(Role.ADMIN)
    version = publish_policy(db(), _json_object(), published_by=principal.token_id, now=now())
    return policy_dict(db(), get_policy(db(), version.document["slug"]))


@blp.route("/policies/<slug>", methods=["GET"])
@blp.response(200, PolicyOut)
def policy(slug: str) -> dict[str, Any]:
    """One policy with every version."""
    return policy_dict(db(), get_policy(db(), slug))


@blp.route("/policies/<slug>/versions", methods=["POST"])
@blp.doc(requestBody={"content": {"application/json": {"schema": PolicyDocumentBody}}})
@blp.response(201, PolicyOut)
def publish_version(slug: str) -> dict[str, Any]:
    """Publish a new version (admin); earlier assessments of open records go out of date."""
    principal = require(Role.ADMIN)
    get_policy(db(), slug)
    publish_policy(db(), _json_object(), published_by=principal.token_id, now=now(), slug=slug)
    return policy_dict(db(), get_policy(db(), slug))


@blp.route("/technologies/<technology_id>/assessments", methods=["GET"])
@blp.response(200, AssessmentList)
def assessments(technology_id: str) -> dict[str, Any]:
    """Every assessment of a technology, newest first."""
    technology = get_technology(db(), technology_id, current_principal())
    return whole_list([assessment_dict(a) for a in assessments_of(db(), technology)])


@blp.route("/technologies/<technology_id>/assessments", methods=["POST"])
@blp.response(201, AssessmentOut)
def assess(technology_id: str) -> dict[str, Any]:
    """Assess again against the active policies (reviewer), after a policy or record change."""
    principal = require(Role.REVIEWER, Role.ADMIN)
    technology = get_technology(db(), technology_id, principal, for_update=True)
    from registry.errors import Conflict

    if not technology.is_public:
        raise Conflict("A draft is assessed when it is submitted.",
                       current_status=technology.status)
    if technology.status == "withdrawn":
        # A closed record: a new tier on it would be news about something nobody proposes.
        raise Conflict("This technology was withdrawn; it is assessed again only if a "
                       "department submits it anew.", current_status=technology.status)
    return assessment_dict(assess_technology(db(), technology, trigger="reassessed",
                                             now=now(), assessed_by=principal.token_id))
