"""``/api/v1/vocabularies``: the allowed values of every controlled field."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from policies.vocabulary import VOCABULARIES
from registry.api import page_schema, whole_list

blp = Blueprint("vocabularies", __name__, url_prefix="/api/v1",
                description="Controlled values and their plain-language labels.")


class TermSchema(Schema):
    """One allowed value."""

    value = fields.String()
    label = fields.String()


VocabularyList = page_schema(Schema.from_dict(
    {"field": fields.String(), "values": fields.List(fields.Nested(TermSchema))},
    name="Vocabulary"), "VocabularyList")


@blp.route("/vocabularies")
@blp.response(200, VocabularyList)
def vocabularies() -> dict[str, Any]:
    """Every controlled field with its values and labels."""
    return whole_list([
        {"field": field, "values": [{"value": v, "label": label} for v, label in terms.items()]}
        for field, terms in VOCABULARIES.items()
    ])
