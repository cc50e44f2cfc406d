"""Request and response schemas for comments."""

from __future__ import annotations

from typing import Any

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates,
)

from registry.api import ListArgs, page_schema
from registry.comments.idempotency import HEADER, parse_key

POSITIONS = ("support", "oppose", "neutral")
MAX_BODY = 10_000


class CommentIn(Schema):
    """A resident's comment. The email is private: only reviewers ever see it."""

    body = fields.String(required=True, validate=validate.Length(max=MAX_BODY + 1000),
                         metadata={"description": "1–10,000 characters."})
    display_name = fields.String(validate=validate.Length(max=100), load_default=None,
                                 allow_none=True,
                                 metadata={"description": 'Shown publicly; else "Anonymous '
                                           'resident".'})
    email = fields.Email(load_default=None, allow_none=True, validate=validate.Length(max=320),
                         metadata={"description": "Private: never shown publicly."})
    neighborhood = fields.String(validate=validate.Length(max=100), load_default=None,
                                 allow_none=True)
    position = fields.String(validate=validate.OneOf(POSITIONS), load_default=None,
                             allow_none=True)

    @validates("body")
    def _body_length(self, value: str, **_: Any) -> None:
        length = len(value.strip())
        if length == 0:
            raise ValidationError("Write a comment of at least one character.")
        if length > MAX_BODY:
            raise ValidationError(f"A comment can be at most {MAX_BODY:,} characters; "
                                  f"this one has {length:,}.")

    @post_load
    def _strip(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data["body"] = data["body"].strip()
        return data


def _checked_key(value: str) -> None:
    try:
        parse_key(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc


class CommentHeaders(Schema):
    """The comment post's optional ``Idempotency-Key`` header."""

    class Meta:
        unknown = EXCLUDE  # every other header is none of this schema's business

    idempotency_key = fields.String(
        data_key=HEADER, load_default=None, validate=_checked_key,
        metadata={"description": "A key of your choosing (a new UUID, say), the same for "
                  "every try of one post: sent again after an answer was lost, the post "
                  "gets the receipt of the comment it stored instead of storing it twice "
                  "(201 with `Idempotent-Replayed: true`). The same key with other fields "
                  "is refused with 422. 1–255 printable ASCII characters; a Structured "
                  "Field string's quotes may be left out."})


class CommentReceipt(Schema):
    """What the author gets back."""

    id = fields.String()
    tracking_number = fields.String()
    status = fields.String(metadata={"description": "`published`, `held` or `hidden`."})
    review_id = fields.String()
    url = fields.String()
    created_at = fields.DateTime()
    published_at = fields.DateTime(allow_none=True)
    hidden_reason = fields.String(allow_none=True)


class CommentOut(Schema):
    """A comment as the public sees it (a hidden one keeps only its reason)."""

    id = fields.String()
    review_id = fields.String()
    url = fields.String()
    status = fields.String()
    display_name = fields.String(allow_none=True)
    neighborhood = fields.String(allow_none=True)
    position = fields.String(allow_none=True)
    body = fields.String(allow_none=True)
    published_at = fields.DateTime(allow_none=True)
    hidden_reason = fields.String(allow_none=True)
    email = fields.String(allow_none=True, metadata={"description": "Reviewers only."})
    flag_count = fields.Integer(metadata={"description": "Reviewers only."})


class HideIn(Schema):
    """Why a comment is hidden (public)."""

    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))

    @validates("reason")
    def _not_blank(self, value: str, **_: Any) -> None:
        if not value.strip():
            raise ValidationError("Say why the comment is hidden; the reason is public.")


class FlagIn(Schema):
    """Why a comment should be looked at."""

    reason = fields.String(validate=validate.Length(max=2000), load_default=None,
                           allow_none=True)


CommentPage = page_schema(CommentOut, "CommentPage")


class SummaryOut(Schema):
    """Counts of published comments."""

    review_id = fields.String()
    total = fields.Integer()
    unique_texts = fields.Integer()
    by_position = fields.Dict(keys=fields.String(), values=fields.Integer())
    by_neighborhood = fields.List(fields.Dict())
    form_letters = fields.List(fields.Dict())
    counted_at = fields.DateTime(
        metadata={"description": "When these counts were made: on a review with very many "
                  "comments they are reused for a few seconds (at most a minute)."})


class CommentListArgs(ListArgs):
    """Page through comments."""
