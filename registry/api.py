"""The JSON API's shared parts: the flask-smorest Api, list paging, common schemas."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from marshmallow import Schema, fields, validate

from registry.errors import Invalid

T = TypeVar("T")


class ListArgs(Schema):
    """``?limit=`` and ``?cursor=`` on every list."""

    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(load_default=None)


class Problem(Schema):
    """RFC 9457 problem details (documented on every error response)."""

    type = fields.String()
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))


def page_schema(item: type[Schema], name: str) -> type[Schema]:
    """A ``{"items": [...], "next_cursor": …}`` schema for a list of ``item``."""
    return Schema.from_dict(
        {
            "items": fields.List(fields.Nested(item), required=True),
            "next_cursor": fields.String(allow_none=True, required=True),
        },
        name=name,
    )


def encode_cursor(value: Any) -> str:
    """An opaque cursor for the last item of a page."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, kind: type[T]) -> T | None:
    """The value inside a cursor, or a 422 naming ``cursor`` when it is not one of ours."""
    if cursor is None:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        value = None
    if not isinstance(value, kind):
        raise Invalid("The cursor is not one this list gave out.",
                      errors={"cursor": ["Not a valid cursor; use next_cursor from a page."]})
    return value


def paged(items: Sequence[T], limit: int, key: Callable[[T], Any],
          dump: Callable[[T], Any] | None = None) -> dict[str, Any]:
    """A page from ``limit + 1`` fetched items: the extra one tells whether more follow."""
    shown = list(items[:limit])
    more = len(items) > limit
    return {
        "items": [dump(item) for item in shown] if dump else shown,
        "next_cursor": encode_cursor(key(shown[-1])) if more and shown else None,
    }


def csv_list(value: str | None) -> list[str]:
    """``a,b`` → ``["a", "b"]`` for filters that accept several values."""
    if not value:
        return []
    return [part.strip() for part in value.split(",") if part.strip()]
