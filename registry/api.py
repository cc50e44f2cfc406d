"""The JSON API's shared parts: the flask-smorest Api, list paging, common schemas."""

from __future__ import annotations

import base64
import binascii
import http
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC
from typing import Any, TypeVar

from flask_smorest import Api
from flask_smorest.utils import prepare_response
from marshmallow import INCLUDE, Schema, ValidationError, fields, validate

from registry.errors import Invalid
from registry.events.models import MAX_SEQ
from registry.inputs import unstorable

T = TypeVar("T")


class Moment(fields.AwareDateTime):
    """A time with its UTC offset, as sent, whose UTC form falls between the years
    ``FIRST_YEAR`` and ``LAST_YEAR``.

    Python's datetime ends at the year 9999: "9999-12-31T23:00-05:00" is a valid ISO time
    that has no UTC form, and a time near the end leaves no room for the days a review adds
    to it (closing, retention). Either failed in the database or a job, a 500. No review
    or meeting is set so far out; the bounds say so plainly instead.
    """

    FIRST_YEAR = 1900
    LAST_YEAR = 2999

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            utc = moment.astimezone(UTC)
        except OverflowError:
            utc = None
        if utc is None or not self.FIRST_YEAR <= utc.year <= self.LAST_YEAR:
            raise ValidationError(f"Must be a time between the years {self.FIRST_YEAR} and "
                                  f"{self.LAST_YEAR}.")
        return moment


class ListArgs(Schema):
    """``?limit=`` and ``?cursor=`` on every list."""

    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(load_default=None)


class Problem(Schema):
    """RFC 9457 problem details (documented on every error response)."""

    class Meta:
        # RFC 9457 allows extension members (current_status, allowed_statuses, …).
        unknown = INCLUDE

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                         metadata={"description": "On 422: the messages for each field."})


PROBLEM_CONTENT_TYPE = "application/problem+json"


class DaylightApi(Api):
    """flask-smorest's Api, documenting errors as they are sent: RFC 9457 problem+json."""

    ERROR_SCHEMA = Problem

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_CONTENT_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        default: dict[str, Any] = {"description": "Default error response",
                                   "schema": self.ERROR_SCHEMA}
        prepare_response(default, self.spec, PROBLEM_CONTENT_TYPE)
        self.spec.components.response("DEFAULT_ERROR", default, lazy=True)


def page_schema(item: type[Schema], name: str) -> type[Schema]:
    """A ``{"items": [...], "next_cursor": …}`` schema for a list of ``item``."""
    return Schema.from_dict(
        {
            "items": fields.List(fields.Nested(item), required=True),
            "next_cursor": fields.String(allow_none=True, required=True),
        },
        name=name,
    )


def whole_list(items: list[Any]) -> dict[str, Any]:
    """A short catalog served in one page: the list shape, with no next page."""
    return {"items": items, "next_cursor": None}


#: The longest cursor read. Each encodes one id (ids are at most 100 ASCII characters) or
#: one ``seq``: about 140 characters at most.
MAX_CURSOR_LENGTH = 512


def encode_cursor(value: Any) -> str:
    """An opaque cursor for the last item of a page."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, kind: type[T]) -> T | None:
    """The value inside a cursor, or a 422 naming ``cursor`` when it is not one of ours."""
    if cursor is None:
        return None
    value: Any = None
    # Ours encode one id or seq, well under this; a longer one is made by hand, and could
    # nest JSON deep enough to exhaust the parser's recursion (a 500).
    if len(cursor) <= MAX_CURSOR_LENGTH:
        try:
            value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
            value = None
    # A cursor is only base64 of JSON: one made by hand could hold what no list gives out
    # and the database cannot take (text with a NUL, a number past the log's last seq).
    if (not isinstance(value, kind) or isinstance(value, bool)
            or (isinstance(value, str) and unstorable(value) is not None)
            or (isinstance(value, int) and not 0 <= value <= MAX_SEQ)):
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


def known_values(args: Mapping[str, Any], name: str, allowed: Sequence[str],
                 errors: dict[str, list[str]]) -> list[str]:
    """A comma-separated filter's values, each once; a value no record can hold is an error
    (it would match nothing, silently), named in ``errors``."""
    values = list(dict.fromkeys(csv_list(args.get(name))))
    unknown = [value for value in values if value not in allowed]
    if unknown:
        shown = ", ".join(repr(value[:40]) for value in unknown[:5])
        errors[name] = [f"Unknown value {shown}: use one of {', '.join(allowed)} "
                        "(comma-separated)."]
    return values


def csv_list(value: str | None) -> list[str]:
    """``a,b`` → ``["a", "b"]`` for filters that accept several values."""
    if not value:
        return []
    return [part.strip() for part in value.split(",") if part.strip()]
