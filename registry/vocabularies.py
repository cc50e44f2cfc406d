"""``/api/v1/vocabularies``: the allowed values of every controlled field."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from policies.vocabulary import VOCABULARIES

blp = Blueprint("vocabularies", __name__, url_prefix="/api/v1",
                description="Controlled values and their plain-language labels.")


class TermSchema(Schema):
    """One allowed value."""

    value = fields.String()
    label = fields.String()


VocabularyList = Schema.from_dict(
    {"items": fields.List(fields.Nested(Schema.from_dict(
        {"field": fields.String(), "values": fields.List(fields.Nested(TermSchema))},
        name="Vocabulary")))},
    name="VocabularyList",
)


@blp.route("/vocabularies")
@blp.response(200, VocabularyList)
def vocabularies() -> dict[str, Any]:
    """Every controlled field with its values and labels."""
    return {"items": [
        {"field": field, "values": [{"value": v, "label": label} for v, label in terms.items()]}
        for field, terms in VOCABULARIES.items()
    ]}
