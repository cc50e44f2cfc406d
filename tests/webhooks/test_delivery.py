"""Sending: headers, body, signatures, success, and what the receiver's answers lead to."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import sessionmaker
from sqlmodel import Session, select
from standardwebhooks import Webhook

from registry.clock import FakeClock
from tests.webhooks.receiver import Receiver
from webhooks import (
    SUCCEEDED,
    USER_AGENT,
    DeliveryEngine,
    WebhookAttempt,
    WebhookDelivery,
)


def deliveries(sessions: sessionmaker[Session]) -> list[WebhookDelivery]:
    with sessions() as session:
        return list(session.exec(select(WebhookDelivery)))


def attempts(sessions: sessionmaker[Session]) -> list[WebhookAttempt]:
    with sessions() as session:
        return list(session.exec(select(WebhookAttempt).order_by(WebhookAttempt.number)))


def test_delivery_carries_standard_webhook_headers_and_a_verifiable_signature(
    receiver: Receiver,
    sender: DeliveryEngine,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
    clock: FakeClock,
) -> None:
    endpoint, secret = add_endpoint(receiver.url("/hook"))
    event_id = publish("comment_period.opened", {"review": {"id": "rev_1", "title": "Drones"}})

    assert sender.run_until_idle() == 1

    [request] = receiver.wait_for(1)
    assert request.method == "POST"
    assert request.headers["webhook-id"] == event_id
    assert request.headers["webhook-timestamp"] == str(int(clock.now().timestamp()))
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == USER_AGENT
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload == {
        "type": "comment_period.opened",
        "timestamp": clock.now().isoformat().replace("+00:00", "Z"),
        "data": {"review": {"id": "rev_1", "title": "Drones"}},
    }
    [delivery] = deliveries(sessions)
    assert delivery.status == SUCCEEDED
    assert delivery.attempts == 1
    assert delivery.completed_at == clock.now()
    assert delivery.next_attempt_at is None and delivery.lease_token is None
    [attempt] = attempts(sessions)
    assert (attempt.number, attempt.status_code, attempt.error_kind) == (1, 200, None)
    assert attempt.webhook_timestamp == int(clock.now().timestamp())
