"""Request and response schemas for webhook endpoints and deliveries."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates

from registry.api import ListArgs, page_schema
from registry.events.catalog import EVENT_TYPES

PUBLIC_TYPES = sorted(name for name, t in EVENT_TYPES.items() if t.public)


# For the OpenAPI description: not blank (``_url_given`` checks it, with a message).
_URL_SPEC: dict[str, Any] = {"minLength": 1, "pattern": r"\S"}


def _url_given(value: str, message: str) -> None:
    # The routes strip the URL: one of only spaces would reach them as "", which PATCH
    # would take for "no change" and POST refuse as an unsafe URL.
    if not value.strip():
        raise ValidationError(message)


def _known_types(value: list[str]) -> None:
    unknown = [t for t in value if t not in PUBLIC_TYPES]
    if unknown:
        raise ValidationError(
            f"Unknown event types: {', '.join(unknown)} (see /api/v1/event-types).")


class EndpointIn(Schema):
    """Subscribe a URL to events."""

    url = fields.String(required=True, validate=validate.Length(max=2000),
                        metadata={"description": "https URL that receives the POSTs.",
                                  **_URL_SPEC})
    event_types = fields.List(fields.String(), load_default=list,
                              metadata={"description": "Empty means every event type."})
    description = fields.String(load_default="", validate=validate.Length(max=500))

    @validates("url")
    def _url(self, value: str, **_: Any) -> None:
        _url_given(value, "Give the receiver's URL.")

    @validates("event_types")
    def _types(self, value: list[str], **_: Any) -> None:
        _known_types(value)


class EndpointPatch(Schema):
    """Change an endpoint; ``enabled: true`` re-enables a disabled one."""

    url = fields.String(validate=validate.Length(max=2000), metadata=_URL_SPEC)
    event_types = fields.List(fields.String())
    description = fields.String(validate=validate.Length(max=500))
    enabled = fields.Boolean()

    @validates("url")
    def _url(self, value: str, **_: Any) -> None:
        _url_given(value, "Give the receiver's URL, or leave the field out.")

    @validates("event_types")
    def _types(self, value: list[str], **_: Any) -> None:
        _known_types(value)


class EndpointOut(Schema):
    """A webhook endpoint. ``secret`` appears only when created or rotated."""

    id = fields.String()
    url = fields.String()
    description = fields.String()
    event_types = fields.List(fields.String())
    enabled = fields.Boolean()
    disabled_at = fields.DateTime(allow_none=True)
    disabled_reason = fields.String(allow_none=True)
    failing_since = fields.DateTime(allow_none=True)
    previous_secret_expires_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    secret = fields.String(metadata={"description": "Shown only once: store it now."})


class AttemptOut(Schema):
    """One HTTP request made for a delivery."""

    number = fields.Integer()
    started_at = fields.DateTime()
    duration_ms = fields.Integer()
    status_code = fields.Integer(allow_none=True)
    error_kind = fields.String(allow_none=True)
    error_detail = fields.String(allow_none=True)
    response_body = fields.String(allow_none=True)
    webhook_timestamp = fields.Integer()


class DeliveryOut(Schema):
    """A delivery of one event to one endpoint, with every attempt."""

    id = fields.String()
    endpoint_id = fields.String()
    event_id = fields.String(metadata={"description": "The `webhook-id` header."})
    event_type = fields.String()
    status = fields.String(metadata={"description": "`pending`, `sending`, `succeeded`, "
                                     "`failed`."})
    attempt_count = fields.Integer()
    next_attempt_at = fields.DateTime(allow_none=True)
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    created_at = fields.DateTime()
    completed_at = fields.DateTime(allow_none=True)
    attempts = fields.List(fields.Nested(AttemptOut))


class DeliveryListArgs(ListArgs):
    """Page through an endpoint's deliveries, newest first."""

    status = fields.String(validate=validate.OneOf(["pending", "sending", "succeeded",
                                                    "failed"]))


EndpointPage = page_schema(EndpointOut, "WebhookEndpointPage")
DeliveryPage = page_schema(DeliveryOut, "WebhookDeliveryPage")
