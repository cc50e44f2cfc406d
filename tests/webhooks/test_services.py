"""Endpoints and fan-out: who gets a delivery of which event."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session, select

from registry.clock import FakeClock
from tests.webhooks.conftest import EngineFactory
from tests.webhooks.receiver import Receiver
from webhooks import (
    FAILED,
    PENDING,
    SUCCEEDED,
    DeliveryEngine,
    OutgoingEvent,
    UnsafeURLError,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
    create_endpoint,
    delete_endpoint,
    enqueue_event,
    enqueue_events,
    list_deliveries,
    purge_finished_deliveries,
    retry_delivery,
    rotate_secret,
    update_endpoint,
)
from webhooks.ids import new_id


def test_creating_an_endpoint_returns_its_secret_once_and_stores_the_subscription(
    session: Session, clock: FakeClock
) -> None:
    endpoint, secret = create_endpoint(
        session,
        url="http://127.0.0.1:9/hook",
        event_types=["review.decided", "comment_period.opened", "review.decided"],
        description="Neighbourhood association",
        owner_id="tok_partner",
        now=clock.now(),
        allow_private=True,
    )
    session.commit()

    stored = session.get(WebhookEndpoint, endpoint.id)
    assert stored is not None
    assert stored.id.startswith("we_")
    assert secret.startswith("whsec_") and stored.secret == secret
    assert stored.event_types == ["comment_period.opened", "review.decided"]
    assert stored.owner_id == "tok_partner"
    assert stored.description == "Neighbourhood association"
    assert stored.enabled and stored.failing_since is None
    assert stored.created_at == clock.now() == stored.updated_at


def test_an_event_fans_out_only_to_endpoints_subscribed_to_its_type(
    receiver: Receiver,
    sender: DeliveryEngine,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
) -> None:
    add_endpoint(receiver.url("/opened"), ["comment_period.opened"])
    add_endpoint(receiver.url("/everything"), [])
    add_endpoint(receiver.url("/decisions"), ["review.decided"])

    publish("comment_period.opened")
    sender.run_until_idle()

    assert sorted(r.path for r in receiver.received) == ["/everything", "/opened"]
    assert all(json.loads(r.body)["type"] == "comment_period.opened" for r in receiver.received)


def test_a_test_event_goes_only_to_the_endpoint_that_asked_for_it(
    receiver: Receiver,
    sender: DeliveryEngine,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
) -> None:
    asking, _ = add_endpoint(receiver.url("/asking"), ["review.decided"])
    add_endpoint(receiver.url("/other"), [])

    publish("webhook.test", {"message": "hello"}, only_endpoint_id=asking.id)
    sender.run_until_idle()

    [request] = receiver.received
    assert request.path == "/asking"
    assert json.loads(request.body)["type"] == "webhook.test"


def test_a_test_event_without_its_endpoint_is_refused(
    session: Session, clock: FakeClock
) -> None:
    with pytest.raises(ValueError):
        enqueue_event(
            session,
            event_id=new_id("evt"),
            type="webhook.test",
            timestamp=clock.now(),
            data={},
            now=clock.now(),
        )


def test_handing_over_the_same_event_twice_delivers_it_once(
    sessions: sessionmaker[Session], clock: FakeClock, add_endpoint: Callable[..., Any]
) -> None:
    add_endpoint("http://127.0.0.1:9/a")
    add_endpoint("http://127.0.0.1:9/b")
    counts = []
    for _ in range(2):
        with sessions() as session:
            counts.append(
                enqueue_event(
                    session,
                    event_id="evt_once",
                    type="technology.submitted",
                    timestamp=clock.now(),
                    data={"technology": {"id": "tech_1"}},
                    now=clock.now(),
                )
            )
            session.commit()

    assert counts == [2, 0]
    with sessions() as session:
        assert len(session.exec(select(WebhookDelivery)).all()) == 2
        [message] = session.exec(select(WebhookMessage)).all()
        assert json.loads(message.body) == {
            "type": "technology.submitted",
            "timestamp": clock.now().isoformat().replace("+00:00", "Z"),
            "data": {"technology": {"id": "tech_1"}},
        }


def test_an_endpoint_created_after_an_event_does_not_receive_it(
    sessions: sessionmaker[Session], clock: FakeClock, add_endpoint: Callable[..., Any]
) -> None:
    event_time = clock.now()
    clock.advance(seconds=1)
    add_endpoint("http://127.0.0.1:9/late")
    with sessions() as session:
        created = enqueue_event(
            session,
            event_id="evt_before",
            type="review.scheduled",
            timestamp=event_time,
            data={},
            now=clock.now(),
        )
    assert created == 0


def test_a_batch_of_events_reads_the_endpoints_once_and_routes_each_event_by_its_own_rules(
    sessions: sessionmaker[Session], clock: FakeClock, add_endpoint: Callable[..., Any],
    engine: Any,
) -> None:
    early = clock.now()
    opened, _ = add_endpoint("http://127.0.0.1:9/opened", ["comment_period.opened"])
    clock.advance(seconds=1)
    everything, _ = add_endpoint("http://127.0.0.1:9/everything")
    late = clock.now()
    events = [OutgoingEvent("evt_1", "comment_period.opened", early, {}),  # before /everything
              OutgoingEvent("evt_2", "comment.published", late, {}),
              OutgoingEvent("evt_3", "comment_period.opened", late, {})]
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        with sessions() as session:
            assert enqueue_events(session, events, now=clock.now()) == 4
            session.commit()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert sum("FROM webhook_endpoint" in s for s in statements) == 1
    with sessions() as session:
        pairs = {(d.message_id, d.endpoint_id) for d in session.exec(select(WebhookDelivery))}
    assert pairs == {("evt_1", opened.id), ("evt_2", everything.id), ("evt_3", opened.id),
                     ("evt_3", everything.id)}


def test_a_disabled_endpoint_gets_nothing_until_enabled_again(
    receiver: Receiver,
    sender: DeliveryEngine,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
    clock: FakeClock,
) -> None:
    endpoint, _ = add_endpoint(receiver.url("/paused"))
    publish("review.scheduled")  # queued while enabled
    with sessions() as session:
        stored = session.get_one(WebhookEndpoint, endpoint.id)
        update_endpoint(session, stored, enabled=False, now=clock.now())
        session.commit()
    publish("review.rescheduled")  # not queued at all

    sender.run_until_idle()
    assert receiver.received == []

    with sessions() as session:
        stored = session.get_one(WebhookEndpoint, endpoint.id)
        assert stored.disabled_reason == "disabled by its owner"
        update_endpoint(session, stored, enabled=True, now=clock.now())
        session.commit()
    sender.run_until_idle()

    [request] = receiver.wait_for(1)
    assert json.loads(request.body)["type"] == "review.scheduled"


def test_updating_an_endpoint_checks_its_new_url(session: Session, clock: FakeClock) -> None:
    endpoint, _ = create_endpoint(
        session, url="http://127.0.0.1:9/a", now=clock.now(), allow_private=True
    )
    clock.advance(minutes=1)
    update_endpoint(
        session,
        endpoint,
        url="http://127.0.0.1:9/b",
        event_types=["policy.published"],
        description="new",
        now=clock.now(),
        allow_private=True,
    )
    assert (endpoint.url, endpoint.event_types, endpoint.description) == (
        "http://127.0.0.1:9/b",
        ["policy.published"],
        "new",
    )
    assert endpoint.updated_at == clock.now()
    with pytest.raises(UnsafeURLError):
        update_endpoint(session, endpoint, url="http://127.0.0.1:9/c", now=clock.now())


def test_rotating_keeps_the_old_secret_for_a_day(session: Session, clock: FakeClock) -> None:
    endpoint, first = create_endpoint(
        session, url="http://127.0.0.1:9/a", now=clock.now(), allow_private=True
    )
    second = rotate_secret(session, endpoint, now=clock.now())

    assert second != first
    assert endpoint.secret == second
    assert endpoint.previous_secret == first
    assert endpoint.previous_secret_expires_at == clock.now() + timedelta(hours=24)


def test_deliveries_are_listed_newest_first_with_their_attempts_page_by_page(
    receiver: Receiver,
    sender: DeliveryEngine,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
    clock: FakeClock,
) -> None:
    endpoint, _ = add_endpoint(receiver.url("/hook"))
    event_ids = []
    for _ in range(5):
        event_ids.append(publish("comment.published"))
        clock.advance(seconds=1)
    sender.run_until_idle()

    seen: list[str] = []
    cursor = None
    with sessions() as session:
        while True:
            page = list_deliveries(session, endpoint_id=endpoint.id, limit=2, cursor=cursor)
            for record in page.items:
                assert record.event_type == "comment.published"
                assert [a.status_code for a in record.attempts] == [200]
                assert record.delivery.status == SUCCEEDED
                seen.append(record.delivery.message_id)
            cursor = page.next_cursor
            if cursor is None:
                break
    assert seen == list(reversed(event_ids))


def test_deleting_an_endpoint_removes_its_deliveries(
    receiver: Receiver,
    sender: DeliveryEngine,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
) -> None:
    endpoint, _ = add_endpoint(receiver.url("/gone"))
    publish()
    sender.run_until_idle()
    publish()
    with sessions() as session:
        delete_endpoint(session, session.get_one(WebhookEndpoint, endpoint.id))
        session.commit()
    sender.run_until_idle()

    assert len(receiver.received) == 1
    with sessions() as session:
        assert session.exec(select(WebhookDelivery)).all() == []


def test_a_manual_retry_of_a_delivery_to_a_disabled_endpoint_waits(
    sessions: sessionmaker[Session],
    clock: FakeClock,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    make_sender: EngineFactory,
    receiver: Receiver,
) -> None:
    endpoint, _ = add_endpoint(receiver.url("/hook"))
    publish()
    with sessions() as session:
        update_endpoint(
            session, session.get_one(WebhookEndpoint, endpoint.id), enabled=False, now=clock.now()
        )
        [delivery] = session.exec(select(WebhookDelivery)).all()
        assert retry_delivery(session, delivery, now=clock.now())
        session.commit()
        assert delivery.status == PENDING and delivery.next_attempt_at is None

    make_sender().run_until_idle()
    assert receiver.received == []


def test_finished_deliveries_past_their_time_are_purged_and_parked_ones_kept(
    receiver: Receiver,
    sender: DeliveryEngine,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
    clock: FakeClock,
) -> None:
    live, _ = add_endpoint(receiver.url("/live"))
    paused, _ = add_endpoint(receiver.url("/paused"))
    old_event = publish()
    with sessions() as session:  # the paused endpoint's delivery of the old event is parked
        update_endpoint(session, session.get_one(WebhookEndpoint, paused.id), enabled=False,
                        now=clock.now())
        session.commit()
    sender.run_until_idle()
    receiver.wait_for(1)
    clock.advance(days=91)
    new_event = publish()
    sender.run_until_idle()
    receiver.wait_for(2)

    before = clock.now() - timedelta(days=90)
    with sessions() as session:
        assert purge_finished_deliveries(session, endpoint_id=paused.id, before=before,
                                         limit=10) == 0
        assert purge_finished_deliveries(session, endpoint_id=live.id, before=before,
                                         limit=10) == 1
        session.commit()
    with sessions() as session:
        left = {(d.endpoint_id, d.message_id, d.status)
                for d in session.exec(select(WebhookDelivery)).all()}
        assert left == {(live.id, new_event, SUCCEEDED), (paused.id, old_event, PENDING)}
        page = list_deliveries(session, endpoint_id=live.id)
        assert [(r.delivery.message_id, len(r.attempts)) for r in page.items] == [(new_event, 1)]
        # The old message stays while the parked delivery still needs it.
        assert {m.id for m in session.exec(select(WebhookMessage)).all()} == {old_event,
                                                                             new_event}
        # That delivery, made 91 days ago, finishes only now (here: given up): it is kept
        # its full time from its finish, then goes, and its message with it.
        parked = session.exec(select(WebhookDelivery).where(
            WebhookDelivery.endpoint_id == paused.id)).one()
        parked.status, parked.completed_at = FAILED, clock.now()
        session.add(parked)
        session.commit()
    with sessions() as session:
        assert purge_finished_deliveries(session, endpoint_id=paused.id, before=before,
                                         limit=10) == 0
        assert purge_finished_deliveries(session, endpoint_id=paused.id,
                                         before=clock.now() + timedelta(days=1),
                                         limit=10) == 1
        session.commit()
        assert [m.id for m in session.exec(select(WebhookMessage)).all()] == [new_event]
