"""Sending: headers, body, signatures, success, and what the receiver's answers lead to."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import sessionmaker
from sqlmodel import Session, col, select
from standardwebhooks import Webhook

from registry.clock import FakeClock
from tests.webhooks.conftest import EngineFactory
from tests.webhooks.receiver import Receiver, Reply, unused_port
from webhooks import (
    PENDING,
    SUCCEEDED,
    USER_AGENT,
    DeliveryEngine,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    rotate_secret,
)


def deliveries(sessions: sessionmaker[Session]) -> list[WebhookDelivery]:
    with sessions() as session:
        return list(session.exec(select(WebhookDelivery)))


def attempts(sessions: sessionmaker[Session]) -> list[WebhookAttempt]:
    with sessions() as session:
        return list(session.exec(select(WebhookAttempt).order_by(col(WebhookAttempt.number))))


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


def only_delivery(sessions: sessionmaker[Session]) -> WebhookDelivery:
    [delivery] = deliveries(sessions)
    return delivery


def test_a_2xx_answer_ends_the_delivery(
    receiver: Receiver,
    sender: DeliveryEngine,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
    clock: FakeClock,
) -> None:
    receiver.respond("/hook", Reply(status=204))
    add_endpoint(receiver.url("/hook"))
    publish()

    sender.run_until_idle()
    clock.advance(days=2)
    sender.run_until_idle()

    assert len(receiver.received) == 1
    delivery = only_delivery(sessions)
    assert (delivery.status, delivery.last_status_code) == (SUCCEEDED, 204)


def test_a_redirect_is_not_followed_and_counts_as_a_failure(
    receiver: Receiver,
    sender: DeliveryEngine,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
) -> None:
    receiver.respond("/moved", Reply(status=302, headers={"Location": receiver.url("/target")}))
    add_endpoint(receiver.url("/moved"))
    publish()

    sender.run_until_idle()

    assert receiver.requests_to("/target") == []
    [attempt] = attempts(sessions)
    assert (attempt.status_code, attempt.error_kind) == (302, "redirect")
    assert "/target" in (attempt.error_detail or "")
    delivery = only_delivery(sessions)
    assert delivery.status == PENDING
    assert delivery.last_error is not None and delivery.last_error.startswith("redirect")


def test_an_error_status_is_recorded_with_the_body_capped_at_4_kib(
    receiver: Receiver,
    sender: DeliveryEngine,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
) -> None:
    receiver.respond("/hook", Reply(status=500, body=b"x" * 10_000))
    add_endpoint(receiver.url("/hook"))
    publish()

    sender.run_until_idle()

    [attempt] = attempts(sessions)
    assert (attempt.status_code, attempt.error_kind) == (500, "http_status")
    assert attempt.response_body == "x" * 4096
    assert attempt.duration_ms >= 0
    assert only_delivery(sessions).last_status_code == 500


def test_a_receiver_slower_than_the_timeout_is_a_timeout(
    receiver: Receiver,
    make_sender: EngineFactory,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
) -> None:
    receiver.respond("/slow", Reply(delay=5))
    add_endpoint(receiver.url("/slow"))
    publish()

    make_sender(timeout=0.3).run_until_idle()

    [attempt] = attempts(sessions)
    assert attempt.error_kind == "timeout"
    assert attempt.status_code is None
    assert 250 <= attempt.duration_ms < 2000


def test_the_timeout_bounds_the_whole_request_not_each_read(
    receiver: Receiver,
    make_sender: EngineFactory,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
) -> None:
    # A byte every 0.1 s never trips a per-read timeout of 0.5 s; the deadline must.
    receiver.respond("/trickle", Reply(drip=0.1))
    add_endpoint(receiver.url("/trickle"))
    publish()

    make_sender(timeout=0.5).run_until_idle()

    [attempt] = attempts(sessions)
    assert attempt.error_kind == "timeout"
    assert 450 <= attempt.duration_ms < 2500


def test_a_refused_connection_is_a_connection_failure(
    make_sender: EngineFactory,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
) -> None:
    add_endpoint(f"http://127.0.0.1:{unused_port()}/hook")
    publish()

    make_sender().run_until_idle()

    [attempt] = attempts(sessions)
    assert attempt.error_kind == "connection"
    assert attempt.status_code is None


def test_a_connection_dropped_without_an_answer_is_a_connection_failure(
    receiver: Receiver,
    sender: DeliveryEngine,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
) -> None:
    receiver.respond("/drop", Reply(close=True))
    add_endpoint(receiver.url("/drop"))
    publish()

    sender.run_until_idle()

    [attempt] = attempts(sessions)
    assert attempt.error_kind == "connection"


def test_after_a_rotation_both_secrets_verify_for_a_day_then_only_the_new_one(
    receiver: Receiver,
    sender: DeliveryEngine,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
    clock: FakeClock,
) -> None:
    endpoint, old = add_endpoint(receiver.url("/hook"))
    with sessions() as session:
        new = rotate_secret(session, session.get_one(WebhookEndpoint, endpoint.id), now=clock.now())
        session.commit()

    publish()
    sender.run_until_idle()
    [during] = receiver.wait_for(1)
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(during.body, during.headers)
    Webhook(new).verify(during.body, during.headers)

    clock.advance(hours=24)
    publish()
    sender.run_until_idle()
    after = receiver.wait_for(2)[1]
    # The fake clock is a day ahead of the real one, so compare signatures rather than
    # call verify(), which also checks the timestamp against the real time.
    sent_at = datetime.fromtimestamp(int(after.headers["webhook-timestamp"]), tz=UTC)
    signatures = after.headers["webhook-signature"].split(" ")
    assert signatures == [Webhook(new).sign(after.headers["webhook-id"], sent_at, after.text)]
    assert Webhook(old).sign(after.headers["webhook-id"], sent_at, after.text) not in signatures


def test_every_retry_carries_the_same_webhook_id_and_a_fresh_timestamp(
    receiver: Receiver,
    sender: DeliveryEngine,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    clock: FakeClock,
) -> None:
    receiver.respond("/hook", Reply(status=503))
    _, secret = add_endpoint(receiver.url("/hook"))
    event_id = publish()

    sender.run_until_idle()
    clock.advance(seconds=5)
    sender.run_until_idle()

    first, second = receiver.wait_for(2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == event_id
    assert int(second.headers["webhook-timestamp"]) == int(first.headers["webhook-timestamp"]) + 5
    assert first.body == second.body
    Webhook(secret).verify(second.body, second.headers)


def test_a_slow_endpoint_does_not_hold_up_the_others(
    receiver: Receiver,
    make_sender: EngineFactory,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
) -> None:
    gate = threading.Event()
    receiver.respond_always("/slow", Reply(until=gate))
    add_endpoint(receiver.url("/slow"))
    for i in range(4):
        add_endpoint(receiver.url(f"/fast/{i}"))
    sender = make_sender(concurrency=4)
    for _ in range(6):
        publish()

    try:
        assert sender.pump() > 0
        # Every fast delivery arrives while the slow receiver still holds its requests.
        receiver.wait_until(lambda got: sum(r.path.startswith("/fast/") for r in got) == 24)
        assert len(receiver.requests_to("/slow")) == 2  # no more than per_endpoint at once
    finally:
        gate.set()
    sender.run_until_idle()
    assert len(receiver.requests_to("/slow")) == 6


def test_a_response_body_with_nul_bytes_is_recorded_and_delivery_goes_on(
    receiver: Receiver,
    sender: DeliveryEngine,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
) -> None:
    # PostgreSQL's text cannot hold NUL: stored as it came, it failed the sender's every pass.
    receiver.respond("/hook", Reply(status=500, body=b"bad\x00gateway"))
    add_endpoint(receiver.url("/hook"))
    publish()

    sender.run_until_idle()

    [attempt] = attempts(sessions)
    assert (attempt.status_code, attempt.response_body) == (500, "bad\ufffdgateway")
    assert only_delivery(sessions).status == PENDING
