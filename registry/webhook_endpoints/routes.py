"""``/api/v1/webhook-endpoints`` and ``/api/v1/webhook-deliveries``."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select
from sqlmodel import col

from registry.api import ListArgs, decode_cursor, encode_cursor, paged
from registry.auth.context import require
from registry.auth.models import Role
from registry.auth.services import Principal
from registry.clock import now
from registry.database import db
from registry.errors import Conflict, Invalid, NotFound
from registry.ids import new_id
from registry.webhook_endpoints.schemas import (
    DeliveryListArgs,
    DeliveryOut,
    DeliveryPage,
    EndpointIn,
    EndpointOut,
    EndpointPage,
    EndpointPatch,
)
from webhooks import (
    TEST_EVENT_TYPE,
    UnsafeURLError,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
    attempts_of,
    create_endpoint,
    delete_endpoint,
    enqueue_event,
    list_deliveries,
    retry_delivery,
    rotate_secret,
    rotation_pending,
    update_endpoint,
)

blp = Blueprint("webhooks", __name__, url_prefix="/api/v1",
                description="Partners' webhook endpoints (Standard Webhooks) and delivery logs.")

OWNERS = (Role.PARTNER, Role.ADMIN)


def endpoint_dict(endpoint: WebhookEndpoint, secret: str | None = None) -> dict[str, Any]:
    """An endpoint as the API shows it (with its secret only when just made)."""
    body = {
        "id": endpoint.id, "url": endpoint.url, "description": endpoint.description,
        "event_types": endpoint.event_types, "enabled": endpoint.enabled,
        "disabled_at": endpoint.disabled_at, "disabled_reason": endpoint.disabled_reason,
        "failing_since": endpoint.failing_since,
        "previous_secret_expires_at": endpoint.previous_secret_expires_at,
        "created_at": endpoint.created_at, "updated_at": endpoint.updated_at,
    }
    if secret is not None:
        body["secret"] = secret
    return body


def delivery_dict(delivery: WebhookDelivery, event_type: str,
                  attempts: list[Any]) -> dict[str, Any]:
    """A delivery with its attempts."""
    return {
        "id": delivery.id, "endpoint_id": delivery.endpoint_id, "event_id": delivery.message_id,
        "event_type": event_type, "status": delivery.status, "attempt_count": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at if delivery.status == "pending" else None,
        "last_status_code": delivery.last_status_code, "last_error": delivery.last_error,
        "created_at": delivery.created_at, "completed_at": delivery.completed_at,
        "attempts": [{
            "number": a.number, "started_at": a.started_at, "duration_ms": a.duration_ms,
            "status_code": a.status_code, "error_kind": a.error_kind,
            "error_detail": a.error_detail, "response_body": a.response_body,
            "webhook_timestamp": a.webhook_timestamp,
        } for a in attempts],
    }


def _allow_private() -> bool:
    return bool(current_app.config["WEBHOOK_ALLOW_PRIVATE"])


def _unsafe(exc: UnsafeURLError) -> Invalid:
    return Invalid("Daylight will not send webhooks to this URL.", errors={"url": [str(exc)]})


def _owned(principal: Principal, endpoint_id: str, *, for_update: bool = False
           ) -> WebhookEndpoint:
    """The endpoint, if this principal owns it (admins own all); otherwise 404."""
    query = select(WebhookEndpoint).where(col(WebhookEndpoint.id) == endpoint_id)
    if for_update:
        query = query.with_for_update()
    endpoint: WebhookEndpoint | None = db().execute(query).scalar_one_or_none()
    if endpoint is None or (principal.role is not Role.ADMIN
                            and endpoint.owner_id != principal.token_id):
        raise NotFound(f"There is no webhook endpoint {endpoint_id!r} of yours.")
    return endpoint


@blp.route("/webhook-endpoints")
class Endpoints(MethodView):
    """A partner's endpoints."""

    @blp.arguments(ListArgs, location="query")
    @blp.response(200, EndpointPage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Your endpoints (admins see every endpoint)."""
        principal = require(*OWNERS)
        query = select(WebhookEndpoint).order_by(col(WebhookEndpoint.id))
        if principal.role is not Role.ADMIN:
            query = query.where(col(WebhookEndpoint.owner_id) == principal.token_id)
        after = decode_cursor(args["cursor"], str)
        if after:
            query = query.where(col(WebhookEndpoint.id) > after)
        items = list(db().execute(query.limit(args["limit"] + 1)).scalars())
        return paged(items, args["limit"], key=lambda e: e.id, dump=endpoint_dict)

    @blp.arguments(EndpointIn)
    @blp.response(201, EndpointOut)
    def post(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Subscribe a URL. The response carries the signing secret, shown this once."""
        principal = require(*OWNERS)
        try:
            endpoint, secret = create_endpoint(
                db(), url=fields["url"].strip(), event_types=fields["event_types"],
                description=fields["description"], owner_id=principal.token_id, now=now(),
                allow_private=_allow_private())
        except UnsafeURLError as exc:
            raise _unsafe(exc) from None
        return endpoint_dict(endpoint, secret)


@blp.route("/webhook-endpoints/<endpoint_id>")
class EndpointResource(MethodView):
    """One endpoint."""

    @blp.response(200, EndpointOut)
    def get(self, endpoint_id: str) -> dict[str, Any]:
        """An endpoint (never its secret)."""
        return endpoint_dict(_owned(require(*OWNERS), endpoint_id))

    @blp.arguments(EndpointPatch)
    @blp.response(200, EndpointOut)
    def patch(self, fields: dict[str, Any], endpoint_id: str) -> dict[str, Any]:
        """Change the URL, event types or description; ``enabled: true`` re-enables it."""
        endpoint = _owned(require(*OWNERS), endpoint_id, for_update=True)
        try:
            update_endpoint(db(), endpoint, now=now(), allow_private=_allow_private(),
                            url=fields["url"].strip() if "url" in fields else None,
                            event_types=fields.get("event_types"),
                            description=fields.get("description"),
                            enabled=fields.get("enabled"))
        except UnsafeURLError as exc:
            raise _unsafe(exc) from None
        return endpoint_dict(endpoint)

    @blp.response(204)
    def delete(self, endpoint_id: str) -> Response:
        """Delete an endpoint with its delivery log."""
        delete_endpoint(db(), _owned(require(*OWNERS), endpoint_id, for_update=True))
        return Response(status=204)


@blp.route("/webhook-endpoints/<endpoint_id>/rotate-secret", methods=["POST"])
@blp.response(200, EndpointOut)
def rotate(endpoint_id: str) -> dict[str, Any]:
    """A new secret (shown once); the old one still signs for 24 hours.

    409 while the secret the last rotation replaced still signs: one more rotation would
    cut its 24 hours short.
    """
    endpoint = _owned(require(*OWNERS), endpoint_id, for_update=True)
    until = rotation_pending(endpoint, now())
    if until is not None:
        raise Conflict(
            "The secret replaced at the last rotation still signs until "
            f"{until.isoformat().replace('+00:00', 'Z')}, as promised to receivers still "
            "checking with it; rotate again after that.", old_secret_signs_until=until.isoformat())
    secret = rotate_secret(db(), endpoint, now=now())
    return endpoint_dict(endpoint, secret)


@blp.route("/webhook-endpoints/<endpoint_id>/test", methods=["POST"])
@blp.response(202, DeliveryOut)
def test(endpoint_id: str) -> dict[str, Any]:
    """Send a ``webhook.test`` event to this endpoint now (it goes nowhere else)."""
    endpoint = _owned(require(*OWNERS), endpoint_id)
    if not endpoint.enabled:
        raise Conflict("This endpoint is disabled; re-enable it with PATCH enabled=true first.")
    event_id = new_id("evt")
    moment = now()
    enqueue_event(db(), event_id=event_id, type=TEST_EVENT_TYPE, timestamp=moment,
                  data={"message": "This is a test from Daylight.", "endpoint_id": endpoint.id},
                  now=moment, only_endpoint_id=endpoint.id)
    delivery = db().execute(select(WebhookDelivery).where(
        col(WebhookDelivery.message_id) == event_id)).scalar_one()
    return delivery_dict(delivery, TEST_EVENT_TYPE, [])


@blp.route("/webhook-endpoints/<endpoint_id>/deliveries")
@blp.arguments(DeliveryListArgs, location="query")
@blp.response(200, DeliveryPage)
def deliveries(args: dict[str, Any], endpoint_id: str) -> dict[str, Any]:
    """Every delivery to this endpoint, newest first, with each attempt."""
    endpoint = _owned(require(*OWNERS), endpoint_id)
    try:
        page = list_deliveries(db(), endpoint_id=endpoint.id, limit=args["limit"],
                               cursor=decode_cursor(args["cursor"], str),
                               status=args.get("status"))
    except ValueError:
        raise Invalid("The cursor is not one this list gave out.",
                      errors={"cursor": ["Not a valid cursor."]}) from None
    return {"items": [delivery_dict(r.delivery, r.event_type, r.attempts) for r in page.items],
            "next_cursor": encode_cursor(page.next_cursor) if page.next_cursor else None}


@blp.route("/webhook-deliveries/<delivery_id>/retry", methods=["POST"])
@blp.response(202, DeliveryOut)
def retry(delivery_id: str) -> dict[str, Any]:
    """Send a delivery again now (also one that failed or succeeded)."""
    principal = require(*OWNERS)
    query = select(WebhookDelivery).where(col(WebhookDelivery.id) == delivery_id)
    if principal.role is not Role.ADMIN:
        # Another partner's delivery is as absent as one that never was: the same answer,
        # naming neither its endpoint nor that it exists, and no lock taken on it.
        query = query.join(WebhookEndpoint,
                           col(WebhookEndpoint.id) == col(WebhookDelivery.endpoint_id)).where(
            col(WebhookEndpoint.owner_id) == principal.token_id)
    delivery = db().execute(
        query.with_for_update(of=WebhookDelivery)).scalar_one_or_none()
    if delivery is None:
        raise NotFound(f"There is no delivery {delivery_id!r} of yours.")
    if not retry_delivery(db(), delivery, now=now()):
        raise Conflict("This delivery is being sent right now; try again in a moment.")
    message = db().get(WebhookMessage, delivery.message_id)
    assert message is not None
    return delivery_dict(delivery, message.type,
                         attempts_of(db(), [delivery.id]).get(delivery.id, []))
