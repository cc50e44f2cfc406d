"""Daylight's webhook delivery engine (Standard Webhooks). No Flask; takes a session and a clock."""

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
    attempts_of,
    create_endpoint,
    delete_endpoint,
    enqueue_event,
    list_deliveries,
    live_secrets,
    message_body,
    retry_delivery,
    rotate_secret,
    update_endpoint,
)
from webhooks.signing import new_secret, sign, signature_header
from webhooks.transport import USER_AGENT

__all__ = [
    "DELIVERY_STATUSES",
    "DISABLE_AFTER",
    "FAILED",
    "MAX_ATTEMPTS",
    "PENDING",
    "RETRY_SCHEDULE",
    "ROTATION_GRACE",
    "SENDING",
    "SUCCEEDED",
    "TEST_EVENT_TYPE",
    "USER_AGENT",
    "DeliveryEngine",
    "DeliveryPage",
    "DeliveryRecord",
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
    "list_deliveries",
    "live_secrets",
    "message_body",
    "new_secret",
    "retry_delivery",
    "rotate_secret",
    "sign",
    "signature_header",
    "update_endpoint",
]
