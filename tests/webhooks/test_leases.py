"""Leases and fencing: a dead or late sender loses nothing and overwrites nothing, a claim
that waited is checked again before it is sent, and several senders on PostgreSQL send
each delivery once."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session, col, select
from standardwebhooks import Webhook

from registry.clock import FakeClock
from tests.conftest import postgres_only
from tests.webhooks.conftest import EngineFactory
from tests.webhooks.receiver import Receiver, Reply
from webhooks import (
    PENDING,
    SENDING,
    SUCCEEDED,
    DeliveryEngine,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
    delete_endpoint,
    rotate_secret,
    update_endpoint,
)
from webhooks import sender as sender_module
from webhooks.claims import claim_due, return_claims
from webhooks.outcomes import Result, record_results
from webhooks.transport import Outcome

LEASE = timedelta(seconds=60)


def all_deliveries(sessions: sessionmaker[Session]) -> list[WebhookDelivery]:
    with sessions() as session:
        return list(session.exec(select(WebhookDelivery)))


def all_attempts(sessions: sessionmaker[Session]) -> list[WebhookAttempt]:
    with sessions() as session:
        return list(session.exec(select(WebhookAttempt).order_by(col(WebhookAttempt.number))))


def test_a_sender_that_dies_after_claiming_loses_nothing_and_cannot_overwrite_later(
    engine: Engine,
    receiver: Receiver,
    make_sender: EngineFactory,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
    clock: FakeClock,
) -> None:
    add_endpoint(receiver.url("/hook"))
    publish()
    # The doomed sender claims the delivery, then dies before sending anything.
    with engine.connect() as conn, conn.begin():
        [doomed] = claim_due(conn, now=clock.now(), limit=8, lease=LEASE, busy={}, per_endpoint=2)
    survivor = make_sender()

    survivor.run_until_idle()
    assert receiver.received == []  # still leased to the dead sender
    assert all_deliveries(sessions)[0].status == SENDING

    clock.advance(LEASE + timedelta(seconds=1))
    survivor.run_until_idle()

    [request] = receiver.wait_for(1)
    [delivery] = all_deliveries(sessions)
    assert delivery.status == SUCCEEDED
    assert [(a.number, a.status_code) for a in all_attempts(sessions)] == [(2, 200)]

    # The dead sender comes back to life and reports a failure: the fence turns it away.
    late = Result(doomed, clock.now(), 0, Outcome(duration_ms=9, status_code=500,
                                                  error_kind="http_status"))
    with engine.connect() as conn, conn.begin():
        fenced = record_results(conn, [late], now=clock.now(), random=lambda: 0.5)
    assert fenced == [late]
    [after] = all_deliveries(sessions)
    assert (after.status, after.last_status_code, after.attempts) == (SUCCEEDED, 200, 2)
    assert len(all_attempts(sessions)) == 1


def test_a_sender_stuck_mid_send_is_taken_over_and_its_late_answer_dropped(
    receiver: Receiver,
    make_sender: EngineFactory,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
    clock: FakeClock,
) -> None:
    gate = threading.Event()
    receiver.respond("/hook", Reply(status=500, until=gate))  # the first request hangs
    add_endpoint(receiver.url("/hook"))
    event_id = publish()
    stuck, rescuer = make_sender(), make_sender()

    try:
        assert stuck.pump() == 1
        receiver.wait_for(1)
        clock.advance(LEASE + timedelta(seconds=1))
        rescuer.run_until_idle()
        receiver.wait_for(2)
    finally:
        gate.set()
    assert stuck.wait_idle(timeout=10)

    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == event_id
    [delivery] = all_deliveries(sessions)
    assert (delivery.status, delivery.last_status_code) == (SUCCEEDED, 200)
    assert [(a.number, a.status_code) for a in all_attempts(sessions)] == [(2, 200)]


def test_a_claim_given_back_unsent_is_due_again_without_using_an_attempt(
    engine: Engine,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
    clock: FakeClock,
) -> None:
    add_endpoint("http://127.0.0.1:9/hook")
    publish()
    with engine.connect() as conn, conn.begin():
        jobs = claim_due(conn, now=clock.now(), limit=8, lease=LEASE, busy={}, per_endpoint=2)
        return_claims(conn, jobs, clock.now())

    [delivery] = all_deliveries(sessions)
    assert (delivery.status, delivery.attempts, delivery.lease_token) == ("pending", 0, None)
    assert delivery.next_attempt_at == clock.now()


def queue_behind_a_held_request(
    receiver: Receiver,
    make_sender: EngineFactory,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    path: str,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[DeliveryEngine, threading.Event, WebhookEndpoint, str]:
    """Two deliveries to one endpoint claimed at once by a one-thread sender: the first
    is held open by the receiver until the returned event is set, the second waits in
    the sender's queue, and is checked again before it is sent (the threshold is made 0,
    rather than waiting a second of real time for it). Returns the sender, the event,
    the endpoint and its secret."""
    monkeypatch.setattr(sender_module, "STALE_CLAIM_SECONDS", 0.0)
    gate = threading.Event()
    receiver.respond(path, Reply(until=gate))
    endpoint, secret = add_endpoint(receiver.url(path))
    sender = make_sender(concurrency=1, per_endpoint=2)
    publish()
    publish()
    assert sender.pump() == 2
    receiver.wait_for(1, path)
    return sender, gate, endpoint, secret


def test_a_claim_waiting_in_the_queue_is_not_sent_once_its_endpoint_is_deleted(
    receiver: Receiver,
    make_sender: EngineFactory,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sender, gate, endpoint, _ = queue_behind_a_held_request(
        receiver, make_sender, add_endpoint, publish, "/hook", monkeypatch)
    try:
        with sessions() as session:
            delete_endpoint(session, session.get_one(WebhookEndpoint, endpoint.id))
            session.commit()
    finally:
        gate.set()
    sender.run_until_idle()

    assert len(receiver.received) == 1  # only the request already under way
    assert all_deliveries(sessions) == [] and all_attempts(sessions) == []


def test_a_claim_waiting_in_the_queue_is_parked_not_sent_once_its_endpoint_is_disabled(
    receiver: Receiver,
    make_sender: EngineFactory,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sender, gate, endpoint, _ = queue_behind_a_held_request(
        receiver, make_sender, add_endpoint, publish, "/hook", monkeypatch)
    try:
        with sessions() as session:
            update_endpoint(session, session.get_one(WebhookEndpoint, endpoint.id),
                            now=clock.now(), enabled=False)
            session.commit()
    finally:
        gate.set()
    sender.run_until_idle()

    assert len(receiver.received) == 1  # only the request already under way
    waiting = [d for d in all_deliveries(sessions) if d.status != SUCCEEDED]
    assert [(d.status, d.next_attempt_at, d.attempts, d.lease_token) for d in waiting] == [
        (PENDING, None, 0, None)  # parked, its attempt not counted
    ]
    # Enabled again, it is sent.
    with sessions() as session:
        update_endpoint(session, session.get_one(WebhookEndpoint, endpoint.id),
                        now=clock.now(), enabled=True)
        session.commit()
    sender.run_until_idle()
    assert len(receiver.wait_for(2)) == 2
    assert [(d.status, d.attempts) for d in all_deliveries(sessions)] == [(SUCCEEDED, 1)] * 2


def test_a_claim_waiting_in_the_queue_goes_to_the_endpoints_new_url_with_its_new_secret(
    receiver: Receiver,
    make_sender: EngineFactory,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sender, gate, endpoint, old = queue_behind_a_held_request(
        receiver, make_sender, add_endpoint, publish, "/old", monkeypatch)
    try:
        with sessions() as session:
            stored = session.get_one(WebhookEndpoint, endpoint.id)
            update_endpoint(session, stored, now=clock.now(), allow_private=True,
                            url=receiver.url("/new"))
            new = rotate_secret(session, stored, now=clock.now())
            session.commit()
    finally:
        gate.set()
    sender.run_until_idle()

    assert len(receiver.requests_to("/old")) == 1  # only the request already under way
    [moved] = receiver.wait_for(1, "/new")
    assert len(moved.headers["webhook-signature"].split(" ")) == 2  # both live secrets
    Webhook(new).verify(moved.body, moved.headers)
    Webhook(old).verify(moved.body, moved.headers)
    assert [(d.status, d.attempts) for d in all_deliveries(sessions)] == [(SUCCEEDED, 1)] * 2


def test_claims_sent_promptly_are_not_checked_again(
    receiver: Receiver,
    sender: DeliveryEngine,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The fan-out's usual case: no query per delivery beyond the pass's own.
    checked: list[str] = []
    real = sender_module.refresh_claim

    def refresh(conn: Any, job: Any) -> Any:
        checked.append(job.delivery_id)
        return real(conn, job)

    monkeypatch.setattr(sender_module, "refresh_claim", refresh)
    for n in range(5):
        add_endpoint(receiver.url(f"/hook{n}"))
    publish()
    publish()
    sender.run_until_idle()

    assert len(receiver.wait_for(10)) == 10
    assert checked == []


def test_a_claim_given_back_after_its_endpoint_was_disabled_is_parked(
    engine: Engine,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
    clock: FakeClock,
) -> None:
    endpoint, _ = add_endpoint("http://127.0.0.1:9/hook")
    publish()
    with engine.connect() as conn, conn.begin():
        jobs = claim_due(conn, now=clock.now(), limit=8, lease=LEASE, busy={}, per_endpoint=2)
    with sessions() as session:
        update_endpoint(session, session.get_one(WebhookEndpoint, endpoint.id),
                        now=clock.now(), enabled=False)
        session.commit()
    with engine.connect() as conn, conn.begin():
        return_claims(conn, jobs, clock.now())

    [delivery] = all_deliveries(sessions)
    assert (delivery.status, delivery.attempts, delivery.lease_token) == ("pending", 0, None)
    assert delivery.next_attempt_at is None  # parked: not due until enabled again


def _database_lost() -> OperationalError:
    return OperationalError("COMMIT", None, Exception("server closed the connection"))


def test_results_a_failed_pass_could_not_record_are_recorded_by_the_next_not_sent_again(
    receiver: Receiver,
    sender: DeliveryEngine,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The database is lost just as the send's result is to be recorded (a restart). The
    # result must wait for the next pass, not be dropped: dropped, the delivery would stay
    # claimed until its lease ended (a minute) and then be sent a second time.
    add_endpoint(receiver.url("/hook"))
    publish()
    real = sender_module.record_results
    failures = {"left": 1}

    def flaky(conn: Any, results: Any, **kwargs: Any) -> Any:
        if results and failures["left"]:
            failures["left"] -= 1
            raise _database_lost()
        return real(conn, results, **kwargs)

    monkeypatch.setattr(sender_module, "record_results", flaky)
    sender.run_until_idle()

    assert failures["left"] == 0  # the failure did happen
    [delivery] = all_deliveries(sessions)
    assert (delivery.status, delivery.attempts) == (SUCCEEDED, 1)
    assert [(a.number, a.status_code) for a in all_attempts(sessions)] == [(1, 200)]
    # Past the lease nothing is due again: it was sent once.
    clock.advance(LEASE + timedelta(seconds=1))
    sender.run_until_idle()
    assert len(receiver.received) == 1


def test_claims_whose_commit_answer_was_lost_are_given_back_at_once_not_after_the_lease(
    engine: Engine,
    receiver: Receiver,
    sender: DeliveryEngine,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The claiming pass's COMMIT is stored, but its answer is lost: the sender cannot know
    # it holds the claims. It gives them back (fenced by their token) in its next pass
    # instead of leaving them claimed by nobody until the lease ends.
    add_endpoint(receiver.url("/hook"))
    publish()
    real = engine.dialect.do_commit
    lost = {"left": 1}

    def commit_then_lose(connection: Any) -> None:
        real(connection)
        if lost["left"]:
            lost["left"] -= 1
            raise engine.dialect.loaded_dbapi.OperationalError("the connection was lost")

    monkeypatch.setattr(engine.dialect, "do_commit", commit_then_lose)
    sender.run_until_idle()

    assert lost["left"] == 0
    [request] = receiver.wait_for(1)  # without the clock moving past the lease
    [delivery] = all_deliveries(sessions)
    assert (delivery.status, delivery.attempts) == (SUCCEEDED, 1)
    assert [(a.number, a.status_code) for a in all_attempts(sessions)] == [(1, 200)]


def test_results_whose_commit_answer_was_lost_are_recorded_again_harmlessly(
    engine: Engine,
    receiver: Receiver,
    sender: DeliveryEngine,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The pass that records the results commits, but its answer is lost: the sender holds
    # the results for the next pass, which finds them recorded. That must not fail on the
    # attempt already stored (it did, every pass after, and the sender claimed nothing).
    add_endpoint(receiver.url("/hook"))
    publish()
    real_record, real_commit = sender_module.record_results, engine.dialect.do_commit
    state = {"recording": False, "lost": 0}

    def record(conn: Any, results: Any, **kwargs: Any) -> Any:
        state["recording"] = bool(results)
        return real_record(conn, results, **kwargs)

    def commit_then_lose(connection: Any) -> None:
        real_commit(connection)
        if state["recording"] and not state["lost"]:
            state["lost"] = 1
            raise engine.dialect.loaded_dbapi.OperationalError("the connection was lost")

    monkeypatch.setattr(sender_module, "record_results", record)
    monkeypatch.setattr(engine.dialect, "do_commit", commit_then_lose)
    sender.run_until_idle()
    assert state["lost"] == 1
    # The sender goes on: the next event is sent and recorded too.
    publish()
    sender.run_until_idle()
    assert len(receiver.wait_for(2)) == 2
    deliveries = all_deliveries(sessions)
    assert [(d.status, d.attempts) for d in deliveries] == [(SUCCEEDED, 1)] * 2
    assert [(a.number, a.status_code) for a in all_attempts(sessions)] == [(1, 200)] * 2


@postgres_only
def test_two_senders_on_postgresql_send_each_delivery_exactly_once(
    backend: str,
    receiver: Receiver,
    make_sender: EngineFactory,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
) -> None:
    assert backend == "postgresql"
    for i in range(20):
        add_endpoint(receiver.url(f"/partner/{i}"))
    for _ in range(10):
        publish()
    senders = [make_sender(concurrency=4), make_sender(concurrency=4)]
    start = threading.Barrier(len(senders))
    sent: list[int] = []

    def run(sender: Any) -> None:
        start.wait()
        sent.append(sender.run_until_idle(timeout=60))

    threads = [threading.Thread(target=run, args=(s,)) for s in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)

    assert sum(sent) == 200 and all(n > 0 for n in sent)  # both took part
    received = Counter((r.path, r.headers["webhook-id"]) for r in receiver.received)
    assert len(received) == 200 and set(received.values()) == {1}
    assert {(d.status, d.attempts) for d in all_deliveries(sessions)} == {(SUCCEEDED, 1)}


def test_a_claim_waiting_in_the_queue_sends_its_message_as_rewritten_since(
    receiver: Receiver,
    make_sender: EngineFactory,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A comment hidden while its delivery waited: the stored message is rewritten
    # (registry.events.services), and the waiting claim must send it so, not the text.
    sender, gate, _endpoint, _ = queue_behind_a_held_request(
        receiver, make_sender, add_endpoint, publish, "/hook", monkeypatch)
    try:
        with sessions() as session:
            waiting = sorted(session.exec(select(WebhookMessage)).all(), key=lambda m: m.id)[-1]
            waiting.body = waiting.body.replace("rev_1", "withheld")
            session.add(waiting)
            session.commit()
            rewritten = waiting.body
    finally:
        gate.set()
    sender.run_until_idle()
    sent = receiver.wait_for(2, "/hook")
    assert sent[1].body.decode() == rewritten
