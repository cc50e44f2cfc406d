"""``/api/v1/events`` and ``/api/v1/event-types``."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from registry.api import ListArgs, csv_list, decode_cursor, page_schema, paged, whole_list
from registry.database import db
from registry.errors import Invalid
from registry.events.catalog import EVENT_TYPES
from registry.events.models import MAX_SEQ
from registry.events.services import event_message, list_events, withheld_comments

blp = Blueprint("events", __name__, url_prefix="/api/v1",
                description="The append-only log of every change of state.")


class EventSchema(Schema):
    """One event."""

    id = fields.String(metadata={"description": "`evt_…`; the `webhook-id` of its deliveries."})
    seq = fields.Integer(metadata={"description": "Gap-free, increasing position in the log."})
    type = fields.String()
    timestamp = fields.DateTime()
    data = fields.Dict()


class EventArgs(ListArgs):
    """Follow the log from a position, optionally by type."""

    # The largest seq a column of the log holds (PostgreSQL's integer): a larger number
    # would fail in the database, not name a position.
    after = fields.Integer(load_default=0, validate=validate.Range(min=0, max=MAX_SEQ),
                           metadata={"description": "Only events with a greater `seq`."})
    type = fields.String(metadata={"description": "Event types, comma-separated."})


class EventTypeSchema(Schema):
    """One event type."""

    type = fields.String()
    description = fields.String()
    example = fields.Dict()


EventPage = page_schema(EventSchema, "EventPage")
EventTypeList = page_schema(EventTypeSchema, "EventTypeList")


@blp.route("/events")
@blp.arguments(EventArgs, location="query")
@blp.response(200, EventPage)
def events(args: dict[str, Any]) -> dict[str, Any]:
    """The event log, oldest first. Resume with `after` (a `seq`) or the `next_cursor`."""
    types = csv_list(args.get("type"))
    unknown = [t for t in types if t not in EVENT_TYPES or not EVENT_TYPES[t].public]
    if unknown:
        raise Invalid("Unknown event type.", errors={"type": [
            f"{t!r} is not a public event type (see /api/v1/event-types)." for t in unknown]})
    after = decode_cursor(args["cursor"], int)
    start = max(args["after"], after or 0)
    items = list_events(db(), after=start, types=types, limit=args["limit"] + 1)
    withheld = withheld_comments(db(), items)
    return paged(items, args["limit"], key=lambda e: e.seq,
                 dump=lambda event: event_message(event, withheld))


@blp.route("/event-types")
@blp.response(200, EventTypeList)
def event_types() -> dict[str, Any]:
    """Every event type with a description and an example `data` payload."""
    return whole_list([{"type": name, "description": t.description, "example": t.example}
                       for name, t in EVENT_TYPES.items()])
