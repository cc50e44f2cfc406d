"""The retry schedule, Retry-After, giving up, manual retries and auto-disabling."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session, col, select

from registry.clock import FakeClock
from tests.webhooks.conftest import EngineFactory
from tests.webhooks.receiver import Receiver, Reply, unused_port
from webhooks import (
    FAILED,
    PENDING,
    RETRY_SCHEDULE,
    SUCCEEDED,
    DeliveryEngine,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    retry_delivery,
    update_endpoint,
)
from webhooks.schedule import parse_retry_after, retry_delay

MINUTE, HOUR = timedelta(minutes=1), timedelta(hours=1)


def delivery_of(sessions: sessionmaker[Session], event_id: str) -> WebhookDelivery:
    with sessions() as session:
        return session.exec(
            select(WebhookDelivery).where(WebhookDelivery.message_id == event_id)
        ).one()


def attempts_of(sessions: sessionmaker[Session], event_id: str) -> list[WebhookAttempt]:
    delivery = delivery_of(sessions, event_id)
    with sessions() as session:
        return list(
            session.exec(
                select(WebhookAttempt)
                .where(WebhookAttempt.delivery_id == delivery.id)
                .order_by(col(WebhookAttempt.number))
            )
        )


def endpoint_of(sessions: sessionmaker[Session], endpoint_id: str) -> WebhookEndpoint:
    with sessions() as session:
        return session.get_one(WebhookEndpoint, endpoint_id)


def waits_between(sessions: sessionmaker[Session], event_id: str) -> list[timedelta]:
    started = [a.started_at for a in attempts_of(sessions, event_id)]
    return [later - earlier for earlier, later in zip(started, started[1:], strict=False)]


def run_through_schedule(
    sender: DeliveryEngine, sessions: sessionmaker[Session], clock: FakeClock, event_id: str
) -> None:
    """Send, then move the clock to each retry as it comes due, until the delivery ends."""
    sender.run_until_idle()
    for _ in range(len(RETRY_SCHEDULE) + 2):
        delivery = delivery_of(sessions, event_id)
        if delivery.next_attempt_at is None:
            return
        clock.set(delivery.next_attempt_at)
        sender.run_until_idle()
    raise AssertionError("the delivery never finished")


@pytest.mark.parametrize(
    "failure",
    [Reply(status=500), Reply(status=429), Reply(close=True)],
    ids=["status-500", "status-429", "dropped-connection"],
)
def test_a_failing_delivery_follows_the_retry_schedule_then_fails(
    receiver: Receiver,
    sender: DeliveryEngine,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
    clock: FakeClock,
    failure: Reply,
) -> None:
    receiver.respond_always("/down", failure)
    add_endpoint(receiver.url("/down"))
    event_id = publish()

    run_through_schedule(sender, sessions, clock, event_id)

    # Jitter is fixed at zero in these tests, so the waits are the schedule's own.
    assert waits_between(sessions, event_id) == list(RETRY_SCHEDULE)
    assert len(receiver.received) == len(RETRY_SCHEDULE) + 1
    delivery = delivery_of(sessions, event_id)
    assert delivery.status == FAILED
    assert delivery.attempts == 8
    assert delivery.completed_at == clock.now()
    assert delivery.next_attempt_at is None


def test_a_timed_out_delivery_is_retried_on_schedule(
    receiver: Receiver,
    make_sender: EngineFactory,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
    clock: FakeClock,
) -> None:
    receiver.respond("/slow", Reply(delay=3), Reply(delay=3))
    add_endpoint(receiver.url("/slow"))
    event_id = publish()
    sender = make_sender(timeout=0.3)

    sender.run_until_idle()
    assert delivery_of(sessions, event_id).next_attempt_at == clock.now() + RETRY_SCHEDULE[0]
    clock.advance(RETRY_SCHEDULE[0])
    sender.run_until_idle()
    assert delivery_of(sessions, event_id).next_attempt_at == clock.now() + RETRY_SCHEDULE[1]
    clock.advance(RETRY_SCHEDULE[1])
    sender.run_until_idle()

    kinds = [a.error_kind for a in attempts_of(sessions, event_id)]
    assert kinds == ["timeout", "timeout", None]
    assert delivery_of(sessions, event_id).status == SUCCEEDED


def test_a_refused_connection_is_retried_on_schedule(
    make_sender: EngineFactory,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
    clock: FakeClock,
) -> None:
    add_endpoint(f"http://127.0.0.1:{unused_port()}/hook")
    event_id = publish()
    sender = make_sender()

    sender.run_until_idle()
    clock.advance(RETRY_SCHEDULE[0] - timedelta(seconds=1))
    sender.run_until_idle()  # not due yet
    assert len(attempts_of(sessions, event_id)) == 1
    clock.advance(seconds=1)
    sender.run_until_idle()

    kinds = [a.error_kind for a in attempts_of(sessions, event_id)]
    assert kinds == ["connection", "connection"]
    assert delivery_of(sessions, event_id).next_attempt_at == clock.now() + RETRY_SCHEDULE[1]


@pytest.mark.parametrize(
    ("retry_after", "expected_wait"),
    [
        ("120", timedelta(seconds=120)),  # longer than the schedule's 5 s: honoured
        ("1", timedelta(seconds=5)),  # shorter than the schedule: the schedule wins
        ("999999999", timedelta(hours=10)),  # capped
        ("soon", timedelta(seconds=5)),  # unreadable: ignored
    ],
)
def test_retry_after_in_seconds_lengthens_the_wait_within_bounds(
    receiver: Receiver,
    sender: DeliveryEngine,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
    clock: FakeClock,
    retry_after: str,
    expected_wait: timedelta,
) -> None:
    receiver.respond("/busy", Reply(status=503, headers={"Retry-After": retry_after}))
    add_endpoint(receiver.url("/busy"))
    event_id = publish()

    sender.run_until_idle()

    assert delivery_of(sessions, event_id).next_attempt_at == clock.now() + expected_wait


def test_retry_after_as_an_http_date_is_honoured(
    receiver: Receiver,
    sender: DeliveryEngine,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
    clock: FakeClock,
) -> None:
    later = clock.now() + timedelta(hours=1)
    receiver.respond(
        "/busy", Reply(status=429, headers={"Retry-After": format_datetime(later, usegmt=True)})
    )
    add_endpoint(receiver.url("/busy"))
    event_id = publish()

    sender.run_until_idle()

    assert delivery_of(sessions, event_id).next_attempt_at == later


def test_jitter_spreads_each_wait_by_up_to_a_fifth() -> None:
    last_two = len(RETRY_SCHEDULE) - 1
    for attempt, scheduled in enumerate(RETRY_SCHEDULE, start=1):
        shortest = scheduled if attempt >= last_two else scheduled * 0.8
        assert retry_delay(attempt, lambda: 0.0) == shortest
        assert retry_delay(attempt, lambda: 0.5) == scheduled
        wait = retry_delay(attempt, lambda: 0.999999)
        assert wait is not None and scheduled * 1.19 < wait < scheduled * 1.2
    assert retry_delay(len(RETRY_SCHEDULE) + 1, lambda: 0.5) is None


def test_parse_retry_after_reads_seconds_and_dates() -> None:
    now = datetime.fromisoformat("2026-03-02T09:00:00+00:00")
    assert parse_retry_after("30", now) == timedelta(seconds=30)
    assert parse_retry_after("Mon, 02 Mar 2026 10:00:00 GMT", now) == HOUR
    assert parse_retry_after("Mon, 02 Mar 2026 08:00:00 GMT", now) is None  # in the past
    assert parse_retry_after("", now) is None
    assert parse_retry_after(None, now) is None
    # A receiver's word: none of these may raise (each once stopped every delivery).
    assert parse_retry_after("²", now) is None  # a digit to str.isdigit, not to int()
    assert parse_retry_after("Mon, 01 Jan 99999999999 00:00:00 GMT", now) is None
    assert parse_retry_after("Mon, 01 Jan 2026 00:00:00", now) is None  # no zone


@pytest.mark.parametrize("retry_after", ["²", "Mon, 01 Jan 99999999999 00:00:00 GMT"])
def test_an_unreadable_retry_after_does_not_stop_other_deliveries(
    receiver: Receiver,
    sender: DeliveryEngine,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
    clock: FakeClock,
    retry_after: str,
) -> None:
    receiver.respond("/odd", Reply(status=503, headers={"Retry-After": retry_after}))
    add_endpoint(receiver.url("/odd"))
    add_endpoint(receiver.url("/fine"))
    event_id = publish()
    sender.run_until_idle()

    with sessions() as session:
        deliveries = session.exec(select(WebhookDelivery)).all()
        assert sorted(d.status for d in deliveries) == [PENDING, SUCCEEDED]
    odd = [d for d in deliveries if d.status == PENDING][0]
    assert odd.next_attempt_at == clock.now() + RETRY_SCHEDULE[0]  # the header is ignored
    assert odd.message_id == event_id and odd.attempts == 1
    with sessions() as session:
        [attempt] = session.exec(
            select(WebhookAttempt).where(WebhookAttempt.delivery_id == odd.id)).all()
        assert attempt.status_code == 503
    # The sender goes on: the retry and a later event reach both endpoints.
    clock.advance(RETRY_SCHEDULE[0])
    publish()
    sender.run_until_idle()
    assert len(receiver.requests_to("/fine")) == 2 and len(receiver.requests_to("/odd")) == 3


def test_an_endpoint_failing_for_five_days_is_disabled_and_says_so(
    receiver: Receiver,
    sender: DeliveryEngine,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
    clock: FakeClock,
) -> None:
    receiver.respond_always("/down", Reply(status=500))
    endpoint, _ = add_endpoint(receiver.url("/down"))
    first_failure = clock.now()
    publish()
    sender.run_until_idle()
    assert endpoint_of(sessions, endpoint.id).failing_since == first_failure

    # Down all along: an event every 10 hours, each failing (never a quiet spell).
    for _ in range(11):
        clock.advance(hours=10)
        publish()
        sender.run_until_idle()
    clock.advance(hours=9)  # 4 days 23 hours
    publish()
    sender.run_until_idle()
    assert endpoint_of(sessions, endpoint.id).enabled  # not yet five days
    assert endpoint_of(sessions, endpoint.id).failing_since == first_failure

    clock.advance(hours=1)
    pending = publish()
    sender.run_until_idle()

    stored = endpoint_of(sessions, endpoint.id)
    assert stored.disabled_at == clock.now()
    assert stored.disabled_reason is not None and "5 days" in stored.disabled_reason
    assert stored.failing_since == first_failure
    # Nothing more goes out: not its pending retries, and no new events.
    count = len(receiver.received)
    clock.advance(days=1)
    publish()
    sender.run_until_idle()
    assert len(receiver.received) == count
    assert delivery_of(sessions, pending).status == PENDING


def test_a_failure_after_a_quiet_spell_starts_the_clock_afresh(
    receiver: Receiver,
    sender: DeliveryEngine,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
    clock: FakeClock,
) -> None:
    # One delivery used up its whole schedule; then no event for a week. The next event's
    # first try fails once (the receiver would take its retry): the endpoint has not been
    # failing for 5 days, only unused, and must not be disabled.
    receiver.respond("/hook", *[Reply(status=500)] * (len(RETRY_SCHEDULE) + 2))
    endpoint, _ = add_endpoint(receiver.url("/hook"))
    first = publish()
    run_through_schedule(sender, sessions, clock, first)
    assert delivery_of(sessions, first).status == FAILED
    clock.advance(days=7)
    quiet_end = clock.now()
    later = publish()
    sender.run_until_idle()
    stored = endpoint_of(sessions, endpoint.id)
    assert stored.enabled, stored.disabled_reason
    assert stored.failing_since == quiet_end and stored.last_failed_at == quiet_end
    clock.advance(RETRY_SCHEDULE[0] * 2)
    sender.run_until_idle()
    assert delivery_of(sessions, later).status == SUCCEEDED
    assert endpoint_of(sessions, endpoint.id).failing_since is None


def all_attempt_times(sessions: sessionmaker[Session]) -> list[datetime]:
    with sessions() as session:
        return sorted(session.exec(select(WebhookAttempt.started_at)).all())


def test_an_endpoint_that_fails_every_sparse_event_is_disabled_after_five_days(
    receiver: Receiver,
    sender: DeliveryEngine,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
    clock: FakeClock,
) -> None:
    # An event every 3 days, each failing through its whole schedule (about 27 h): the
    # gaps between failures (about 44 h) are no quiet spell, so the clock runs on from
    # the very first failure although no attempt falls in the fifth day.
    receiver.respond_always("/down", Reply(status=500))
    endpoint, _ = add_endpoint(receiver.url("/down"))
    start = clock.now()
    for n in range(3):
        clock.set(start + timedelta(days=3 * n))
        run_through_schedule(sender, sessions, clock, publish())
    clock.set(start + timedelta(days=9))
    publish()
    sender.run_until_idle()

    stored = endpoint_of(sessions, endpoint.id)
    attempts = all_attempt_times(sessions)
    first_due = min(at for at in attempts if at >= start + timedelta(days=5))
    assert first_due == start + timedelta(days=6)  # the third event's first attempt
    assert stored.disabled_at == first_due
    assert stored.failing_since == start
    assert stored.disabled_reason is not None and "5 days" in stored.disabled_reason
    # Nothing went out after that: not its retries, and not the fourth event.
    assert attempts[-1] == first_due
    assert len(receiver.received) == 2 * len(RETRY_SCHEDULE) + 3


def test_an_endpoint_used_once_a_week_is_never_disabled_for_failing(
    receiver: Receiver,
    sender: DeliveryEngine,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
    clock: FakeClock,
) -> None:
    # Each weekly event fails through its schedule, but the silence between them (over
    # five days) says nothing of the endpoint: each starts the clock afresh.
    receiver.respond_always("/down", Reply(status=500))
    endpoint, _ = add_endpoint(receiver.url("/down"))
    start = clock.now()
    for n in range(4):
        clock.set(start + timedelta(days=7 * n))
        run_through_schedule(sender, sessions, clock, publish())
        stored = endpoint_of(sessions, endpoint.id)
        assert stored.enabled, stored.disabled_reason
        assert stored.failing_since == start + timedelta(days=7 * n)
    assert len(receiver.received) == 4 * (len(RETRY_SCHEDULE) + 1)


def test_a_new_url_starts_the_failure_clock_afresh(
    receiver: Receiver,
    sender: DeliveryEngine,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
    clock: FakeClock,
) -> None:
    receiver.respond_always("/old", Reply(status=500))
    endpoint, _ = add_endpoint(receiver.url("/old"))
    publish()
    sender.run_until_idle()
    assert endpoint_of(sessions, endpoint.id).failing_since is not None
    with sessions() as session:
        update_endpoint(session, session.get_one(WebhookEndpoint, endpoint.id),
                        now=clock.now(), allow_private=True, url=receiver.url("/new"))
        session.commit()
    assert endpoint_of(sessions, endpoint.id).failing_since is None


def test_a_success_resets_the_failure_clock(
    receiver: Receiver,
    sender: DeliveryEngine,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
    clock: FakeClock,
) -> None:
    receiver.respond("/flaky", Reply(status=500))
    endpoint, _ = add_endpoint(receiver.url("/flaky"))
    publish()
    sender.run_until_idle()
    assert endpoint_of(sessions, endpoint.id).failing_since is not None

    clock.advance(RETRY_SCHEDULE[0])
    sender.run_until_idle()

    assert endpoint_of(sessions, endpoint.id).failing_since is None


def test_a_manual_retry_sends_at_once_even_a_failed_delivery(
    receiver: Receiver,
    sender: DeliveryEngine,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
    clock: FakeClock,
) -> None:
    receiver.respond("/hook", *[Reply(status=500)] * (len(RETRY_SCHEDULE) + 1))
    add_endpoint(receiver.url("/hook"))
    event_id = publish()
    run_through_schedule(sender, sessions, clock, event_id)
    assert delivery_of(sessions, event_id).status == FAILED

    with sessions() as session:
        delivery = session.exec(select(WebhookDelivery)).one()
        assert retry_delivery(session, delivery, now=clock.now())
        session.commit()
    sender.run_until_idle()

    delivery = delivery_of(sessions, event_id)
    assert delivery.status == SUCCEEDED
    assert [a.status_code for a in attempts_of(sessions, event_id)][-2:] == [500, 200]


def test_a_manual_retry_brings_a_waiting_retry_forward(
    receiver: Receiver,
    sender: DeliveryEngine,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
    clock: FakeClock,
) -> None:
    receiver.respond("/hook", Reply(status=500), Reply(status=500))
    add_endpoint(receiver.url("/hook"))
    event_id = publish()
    sender.run_until_idle()
    clock.advance(RETRY_SCHEDULE[0])
    sender.run_until_idle()  # second failure: next try in 5 minutes

    with sessions() as session:
        retry_delivery(session, session.exec(select(WebhookDelivery)).one(), now=clock.now())
        session.commit()
    sender.run_until_idle()

    assert delivery_of(sessions, event_id).status == SUCCEEDED
    assert len(receiver.received) == 3


def test_the_whole_schedule_outlasts_a_day_whatever_the_jitter() -> None:
    shortest = sum((retry_delay(n, lambda: 0.0) or timedelta(0)
                    for n in range(1, len(RETRY_SCHEDULE) + 1)), timedelta(0))
    assert shortest > timedelta(hours=26)
