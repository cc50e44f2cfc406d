"""``/api/v1/departments``."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates

from registry.api import ListArgs, decode_cursor, page_schema, paged
from registry.auth.context import require
from registry.auth.models import Role
from registry.clock import now
from registry.database import db
from registry.departments.models import Department
from registry.departments.services import SLUG_PATTERN, add_department, list_departments

blp = Blueprint("departments", __name__, url_prefix="/api/v1/departments",
                description="City departments that own technologies.")


class DepartmentSchema(Schema):
    """A department."""

    slug = fields.String(required=True, validate=[
        validate.Length(min=1, max=64),
        validate.Regexp(SLUG_PATTERN, error="Use lower-case letters, digits and single hyphens."),
    ])
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))

    @validates("name")
    def _name_not_blank(self, value: str, **_: Any) -> None:
        if not value.strip():
            raise ValidationError("The name cannot be blank.")


DepartmentPage = page_schema(DepartmentSchema, "DepartmentPage")


@blp.route("")
class Departments(MethodView):
    """The city's departments."""

    @blp.arguments(ListArgs, location="query")
    @blp.response(200, DepartmentPage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List departments."""
        items = list_departments(db(), after=decode_cursor(args["cursor"], str),
                                 limit=args["limit"] + 1)
        return paged(items, args["limit"], key=lambda d: d.id)

    @blp.arguments(DepartmentSchema)
    @blp.response(201, DepartmentSchema)
    def post(self, fields: dict[str, Any]) -> Department:
        """Add a department (admin)."""
        require(Role.ADMIN)
        return add_department(db(), slug=fields["slug"], name=fields["name"], now=now())
