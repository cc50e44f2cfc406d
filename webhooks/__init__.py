"""Daylight's webhook delivery engine (Standard Webhooks). No Flask; takes a session and a clock.

Names are imported on first use (PEP 562), so that importing a light part such as
``webhooks.sqltypes`` or ``webhooks.models`` does not load the HTTP client: a restarting
worker catches up on missed comment periods sooner.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from webhooks.models import (
        DELIVERY_STATUSES,
        FAILED,
        PENDING,
        SENDING,
        SUCCEEDED,
        WebhookAttempt,
        WebhookDelivery,
        WebhookEndpoint,
        WebhookMessage,
    )
    from webhooks.safety import UnsafeURLError, check_url
    from webhooks.schedule import DISABLE_AFTER, MAX_ATTEMPTS, RETRY_SCHEDULE
    from webhooks.sender import DeliveryEngine
    from webhooks.services import (
        ROTATION_GRACE,
        TEST_EVENT_TYPE,
        DeliveryPage,
        DeliveryRecord,
        OutgoingEvent,
        Subscriptions,
        attempts_of,
        create_endpoint,
        delete_endpoint,
        enqueue_event,
        enqueue_events,
        list_deliveries,
        live_secrets,
        message_body,
        retry_delivery,
        rotate_secret,
        rotation_pending,
        subscriptions,
        update_endpoint,
    )
    from webhooks.signing import new_secret, sign, signature_header
    from webhooks.transport import USER_AGENT

_EXPORTS: dict[str, str] = {
    "DELIVERY_STATUSES": "webhooks.models",
    "FAILED": "webhooks.models",
    "PENDING": "webhooks.models",
    "SENDING": "webhooks.models",
    "SUCCEEDED": "webhooks.models",
    "WebhookAttempt": "webhooks.models",
    "WebhookDelivery": "webhooks.models",
    "WebhookEndpoint": "webhooks.models",
    "WebhookMessage": "webhooks.models",
    "UnsafeURLError": "webhooks.safety",
    "check_url": "webhooks.safety",
    "DISABLE_AFTER": "webhooks.schedule",
    "MAX_ATTEMPTS": "webhooks.schedule",
    "RETRY_SCHEDULE": "webhooks.schedule",
    "DeliveryEngine": "webhooks.sender",
    "ROTATION_GRACE": "webhooks.services",
    "TEST_EVENT_TYPE": "webhooks.services",
    "DeliveryPage": "webhooks.services",
    "DeliveryRecord": "webhooks.services",
    "attempts_of": "webhooks.services",
    "create_endpoint": "webhooks.services",
    "delete_endpoint": "webhooks.services",
    "enqueue_event": "webhooks.services",
    "enqueue_events": "webhooks.services",
    "OutgoingEvent": "webhooks.services",
    "list_deliveries": "webhooks.services",
    "live_secrets": "webhooks.services",
    "message_body": "webhooks.services",
    "purge_finished_deliveries": "webhooks.services",
    "retry_delivery": "webhooks.services",
    "rotate_secret": "webhooks.services",
    "rotation_pending": "webhooks.services",
    "Subscriptions": "webhooks.services",
    "subscriptions": "webhooks.services",
    "update_endpoint": "webhooks.services",
    "new_secret": "webhooks.signing",
    "sign": "webhooks.signing",
    "signature_header": "webhooks.signing",
    "USER_AGENT": "webhooks.transport",
}

__all__ = [
    "DELIVERY_STATUSES",
    "DISABLE_AFTER",
    "DeliveryEngine",
    "DeliveryPage",
    "DeliveryRecord",
    "FAILED",
    "MAX_ATTEMPTS",
    "OutgoingEvent",
    "PENDING",
    "RETRY_SCHEDULE",
    "ROTATION_GRACE",
    "SENDING",
    "SUCCEEDED",
    "Subscriptions",
    "TEST_EVENT_TYPE",
    "USER_AGENT",
    "UnsafeURLError",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookMessage",
    "attempts_of",
    "check_url",
    "create_endpoint",
    "delete_endpoint",
    "enqueue_event",
    "enqueue_events",
    "list_deliveries",
    "live_secrets",
    "message_body",
    "new_secret",
    "purge_finished_deliveries",
    "retry_delivery",
    "rotate_secret",
    "rotation_pending",
    "sign",
    "signature_header",
    "subscriptions",
    "update_endpoint",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'webhooks' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
