"""The worker end to end: timed transitions reach partners as signed webhooks, and the
transitions and posts stay exact under concurrency (two workers, 200 posts) on PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from standardwebhooks import Webhook

from registry.clock import FakeClock
from registry.comments.models import Comment
from registry.events.models import Event
from registry.worker.jobs import fan_out_new_events, run_due_transitions
from registry.worker.runner import Worker
from tests.conftest import postgres_only
from tests.registry.helpers import public_events, schedule
from tests.webhooks.receiver import Receiver


@pytest.fixture
def clock() -> FakeClock:
    # Standard Webhooks verifiers refuse timestamps far from the real time.
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def worker(app) -> Iterator[Worker]:
    worker = Worker(app)
    yield worker
    worker.stop()


def subscribe(client, headers, url, types=()) -> dict[str, Any]:
    response = client.post("/api/v1/webhook-endpoints",
                           json={"url": url, "event_types": list(types)}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_opening_a_period_sends_a_signed_webhook_to_subscribers_only(
        app, client, token, make_technology, clock, receiver, worker):
    partner = token("partner")
    wanted = subscribe(client, partner, receiver.url("/opened"), ["comment_period.opened"])
    subscribe(client, partner, receiver.url("/decisions"), ["review.decided"])
    technology = make_technology(submit=True)
    review = schedule(client, token("reviewer"), technology["id"],
                      opens=clock.now() + timedelta(minutes=1)).get_json()
    worker.follow()  # the scheduling event goes nowhere: nobody subscribed to it
    clock.advance(minutes=1)
    worker.transitions()
    assert worker.engine.wait_idle(10)
    [request] = receiver.wait_for(1, path="/opened")
    event = public_events(client, type="comment_period.opened")[0]
    headers = {k: v for k, v in request.headers.items()}
    payload = Webhook(wanted["secret"]).verify(request.body, headers)
    assert headers["webhook-id"] == event["id"]
    assert payload["type"] == "comment_period.opened"
    assert payload["data"]["review"]["id"] == review["id"]
    assert payload["data"]["review"]["url"].startswith("http://daylight.test/technologies/")
    assert receiver.requests_to("/decisions") == []
    deliveries = client.get(f"/api/v1/webhook-endpoints/{wanted['id']}/deliveries",
                            headers=partner).get_json()["items"]
    assert [d["status"] for d in deliveries] == ["succeeded"]
    assert deliveries[0]["attempts"][0]["status_code"] == 200
    assert deliveries[0]["event_id"] == event["id"]


def test_the_test_event_reaches_only_the_endpoint_that_asked(app, client, token, receiver,
                                                             worker, clock):
    partner = token("partner")
    clock.advance(seconds=1)  # after the bundled policies' events: those are not for it
    first = subscribe(client, partner, receiver.url("/a"))
    subscribe(client, partner, receiver.url("/b"))
    response = client.post(f"/api/v1/webhook-endpoints/{first['id']}/test", headers=partner)
    assert response.status_code == 202
    worker.follow()
    assert worker.engine.wait_idle(10)
    [request] = receiver.wait_for(1, path="/a")
    assert json.loads(request.body)["type"] == "webhook.test"
    Webhook(first["secret"]).verify(request.body, dict(request.headers))
    assert receiver.requests_to("/b") == []
    assert all(e["type"] != "webhook.test" for e in
               client.get("/api/v1/events", query_string={"limit": 200}).get_json()["items"])


def test_a_failed_delivery_is_retried_by_hand(app, client, token, receiver, worker, clock):
    from tests.webhooks.receiver import Reply

    partner = token("partner")
    clock.advance(seconds=1)
    endpoint = subscribe(client, partner, receiver.url("/flaky"))
    receiver.respond("/flaky", Reply(status=500))
    client.post(f"/api/v1/webhook-endpoints/{endpoint['id']}/test", headers=partner)
    worker.follow()
    assert worker.engine.wait_idle(10)
    [delivery] = client.get(f"/api/v1/webhook-endpoints/{endpoint['id']}/deliveries",
                            headers=partner).get_json()["items"]
    assert delivery["status"] == "pending" and delivery["attempts"][0]["status_code"] == 500
    retried = client.post(f"/api/v1/webhook-deliveries/{delivery['id']}/retry", headers=partner)
    assert retried.status_code == 202
    worker.follow()
    assert worker.engine.wait_idle(10)
    receiver.wait_for(2, path="/flaky")
    [delivery] = client.get(f"/api/v1/webhook-endpoints/{endpoint['id']}/deliveries",
                            headers=partner).get_json()["items"]
    assert delivery["status"] == "succeeded"
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 200]
    ids = {r.headers["webhook-id"] for r in receiver.requests_to("/flaky")}
    assert len(ids) == 1  # the same webhook-id on every attempt


def test_the_worker_purges_deliveries_past_the_log_retention(app, client, token, receiver,
                                                             worker, clock):
    partner = token("partner")
    clock.advance(seconds=1)
    endpoint = subscribe(client, partner, receiver.url("/log"))
    deliveries_url = f"/api/v1/webhook-endpoints/{endpoint['id']}/deliveries"

    def send_a_test() -> None:
        assert client.post(f"/api/v1/webhook-endpoints/{endpoint['id']}/test",
                           headers=partner).status_code == 202
        worker.follow()
        assert worker.engine.wait_idle(10)

    send_a_test()
    [old] = client.get(deliveries_url, headers=partner).get_json()["items"]
    days = app.config["WEBHOOK_LOG_RETENTION_DAYS"]
    assert days == 90
    clock.advance(days=days - 1)
    send_a_test()
    receiver.wait_for(2, path="/log")
    worker.purge()
    assert len(client.get(deliveries_url, headers=partner).get_json()["items"]) == 2

    clock.advance(days=1, seconds=1)
    worker.purge()
    [kept] = client.get(deliveries_url, headers=partner).get_json()["items"]
    assert kept["id"] != old["id"] and kept["status"] == "succeeded"
    retried = client.post(f"/api/v1/webhook-deliveries/{old['id']}/retry", headers=partner)
    assert retried.status_code == 404


def test_a_hidden_comment_goes_to_webhooks_as_hidden_on_retries_and_after(
        app, client, token, make_technology, receiver, worker, clock):
    # The first try of its comment.published fails; a reviewer hides the comment; the retry
    # and a resend by hand carry it without its words or name. A second comment, hidden
    # before the worker hands its event over, goes out hidden the first time.
    from tests.webhooks.receiver import Reply

    partner, reviewer = token("partner"), token("reviewer")
    endpoint = subscribe(client, partner, receiver.url("/c"), ["comment.published"])
    technology = make_technology(submit=True)
    review = schedule(client, reviewer, technology["id"], opens=clock.now()).get_json()
    worker.transitions()
    receiver.respond("/c", Reply(status=500))
    first = client.post(f"/api/v1/reviews/{review['id']}/comments", json={
        "body": "Jane Doe lives at 12 Elm St", "display_name": "Pat"}).get_json()
    worker.follow()
    assert worker.engine.wait_idle(10)
    [failed] = receiver.wait_for(1, path="/c")
    assert "12 Elm St" in failed.body.decode()  # sent before it was hidden
    assert client.post(f"/api/v1/comments/{first['id']}/hide", json={"reason": "An address."},
                       headers=reviewer).status_code == 200
    second = client.post(f"/api/v1/reviews/{review['id']}/comments", json={
        "body": "Call me at 555-0100", "display_name": "Lee"}).get_json()
    assert client.post(f"/api/v1/comments/{second['id']}/hide", json={"reason": "A phone."},
                       headers=reviewer).status_code == 200
    worker.follow()  # the second comment's event is handed over now
    clock.advance(seconds=10)  # the first one's retry is due
    worker.follow()
    assert worker.engine.wait_idle(10)
    deliveries = client.get(f"/api/v1/webhook-endpoints/{endpoint['id']}/deliveries",
                            headers=partner).get_json()["items"]
    for delivery in deliveries:
        retried = client.post(f"/api/v1/webhook-deliveries/{delivery['id']}/retry",
                              headers=partner)
        assert retried.status_code == 202
    worker.follow()
    assert worker.engine.wait_idle(10)
    later = receiver.wait_for(5, path="/c")[1:]
    assert len(later) == 4  # the retry, the second's first try, and a resend of each
    for request in later:
        payload = Webhook(endpoint["secret"]).verify(request.body, dict(request.headers))
        comment = payload["data"]["comment"]
        assert comment["id"] in (first["id"], second["id"])
        assert (comment["body"], comment["display_name"], comment["position"],
                comment["neighborhood"]) == (None, None, None, None)
        for words in ("12 Elm", "Pat", "555-0100", "Lee"):
            assert words not in request.body.decode()


def test_unsafe_endpoint_urls_are_refused_with_422(app, client, token):
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    partner = token("partner")
    for url in ("http://127.0.0.1/h", "https://10.1.2.3/h", "https://169.254.169.254/latest",
                "https://localhost/h", "https://[::1]/h", "http://example.org/h"):
        response = client.post("/api/v1/webhook-endpoints", json={"url": url}, headers=partner)
        assert response.status_code == 422, url
        assert "url" in response.get_json()["errors"]
    assert client.get("/api/v1/webhook-endpoints", headers=partner).get_json()["items"] == []


def test_the_secret_is_shown_only_on_creation_and_rotation(client, token, receiver):
    partner = token("partner")
    endpoint = subscribe(client, partner, receiver.url("/s"))
    assert endpoint["secret"].startswith("whsec_")
    shown = client.get(f"/api/v1/webhook-endpoints/{endpoint['id']}", headers=partner).get_json()
    assert "secret" not in shown
    rotated = client.post(f"/api/v1/webhook-endpoints/{endpoint['id']}/rotate-secret",
                          headers=partner).get_json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != endpoint["secret"]
    assert rotated["previous_secret_expires_at"]


def test_a_second_rotation_waits_until_the_first_old_secret_stops_signing(
        app, client, token, receiver, clock):
    # One old secret is kept: rotating again within 24 hours would drop the first one early,
    # though receivers were promised it signs for 24 hours.
    from sqlmodel import Session

    from registry.database import engine
    from webhooks import WebhookEndpoint, live_secrets

    partner = token("partner")
    endpoint = subscribe(client, partner, receiver.url("/s"))
    url = f"/api/v1/webhook-endpoints/{endpoint['id']}/rotate-secret"
    first = client.post(url, headers=partner).get_json()
    clock.advance(hours=1)
    again = client.post(url, headers=partner)
    assert again.status_code == 409
    assert again.mimetype == "application/problem+json"
    assert "still signs until" in again.get_json()["detail"]
    with Session(engine(app)) as session:
        stored = session.get_one(WebhookEndpoint, endpoint["id"])
        assert live_secrets(stored, clock.now()) == [first["secret"], endpoint["secret"]]
    clock.advance(hours=23)
    second = client.post(url, headers=partner)
    assert second.status_code == 200, second.get_json()
    with Session(engine(app)) as session:
        stored = session.get_one(WebhookEndpoint, endpoint["id"])
        assert live_secrets(stored, clock.now()) == [second.get_json()["secret"],
                                                     first["secret"]]


def test_unknown_event_types_are_refused(client, token, receiver):
    response = client.post("/api/v1/webhook-endpoints", json={
        "url": receiver.url("/x"), "event_types": ["comment_period.opened", "nope"]},
        headers=token("partner"))
    assert response.status_code == 422
    assert "event_types" in response.get_json()["errors"]


# --- concurrency on PostgreSQL ------------------------------------------------------------


@postgres_only
def test_two_workers_open_each_period_exactly_once(backend, app, client, token,
                                                   make_technology, clock):
    reviewer = token("reviewer")
    reviews = []
    for i in range(10):
        technology = make_technology(submit=True, name=f"Tech {i}")
        reviews.append(schedule(client, reviewer, technology["id"],
                                opens=clock.now() + timedelta(minutes=5)).get_json()["id"])
    clock.advance(minutes=5)
    barrier = threading.Barrier(2)

    def work() -> list[str]:
        barrier.wait()
        return run_due_transitions(app, clock).opened

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: work(), range(2)))
    assert sorted(results[0] + results[1]) == sorted(reviews)
    opened = public_events(client, type="comment_period.opened")
    assert sorted(e["data"]["review"]["id"] for e in opened) == sorted(reviews)


@postgres_only
def test_two_followers_fan_out_each_event_once(backend, app, client, token, make_technology,
                                               clock, receiver):
    subscribe(client, token("partner"), receiver.url("/all"))
    for i in range(20):
        make_technology(submit=True, name=f"Tech {i}")
    barrier = threading.Barrier(2)

    def follow() -> int:
        barrier.wait()
        total = 0
        while True:
            handled = fan_out_new_events(app, clock, batch=7).handled
            total += handled
            if handled == 0:
                return total
    with ThreadPoolExecutor(2) as pool:
        handled = sum(pool.map(lambda _: follow(), range(2)))
    from registry.database import transaction
    from webhooks import WebhookDelivery

    with app.app_context(), transaction(app) as session:
        deliveries = session.execute(select(func.count()).select_from(WebhookDelivery)
                                     ).scalar_one()
        events = session.execute(select(func.count()).select_from(Event)).scalar_one()
    assert deliveries == events  # one delivery per event, however the two followers raced
    assert handled >= events


def test_a_pass_loads_the_bodies_of_only_the_events_someone_receives(
        backend, app, client, token, make_technology, clock, receiver):
    from sqlalchemy import event as sa_event

    from registry.database import engine, transaction
    from registry.events.models import LogCursor
    from webhooks import WebhookDelivery, WebhookMessage

    clock.advance(seconds=1)  # after the bundled policies' events: those are for nobody
    subscribe(client, token("partner"), receiver.url("/submitted"), ["technology.submitted"])
    clock.advance(seconds=1)
    for i in range(3):
        make_technology(submit=True, name=f"Tech {i}")  # submitted, and assessed
    with app.app_context(), transaction(app) as session:
        events = list(session.execute(select(Event).order_by(Event.seq)).scalars())
    submitted = [e for e in events if e.type == "technology.submitted"]
    assert len(submitted) == 3 and len(events) > 3
    statements: list[tuple[str, Any]] = []

    def seen(_conn, _cursor, statement, parameters, _context, _many) -> None:
        statements.append((statement, parameters))

    sa_event.listen(engine(app), "before_cursor_execute", seen)
    try:
        handled = fan_out_new_events(app, clock).handled
    finally:
        sa_event.remove(engine(app), "before_cursor_execute", seen)
    assert handled == len(events)
    # One read of the events' bodies, for the three submitted ones only.
    [(_sql, parameters)] = [(sql, p) for sql, p in statements if "event.data" in sql]
    values = parameters.values() if isinstance(parameters, dict) else parameters
    assert sorted(values) == [e.seq for e in submitted]
    with app.app_context(), transaction(app) as session:
        cursor = session.get(LogCursor, "webhooks")
        messages = list(session.execute(select(WebhookMessage).order_by(WebhookMessage.id)
                                        ).scalars())
        deliveries = session.execute(select(func.count()).select_from(WebhookDelivery)
                                     ).scalar_one()
    assert cursor is not None and cursor.seq == events[-1].seq  # past every event
    assert sorted(m.id for m in messages) == sorted(e.id for e in submitted)
    assert deliveries == 3
    for message in messages:
        [source] = [e for e in submitted if e.id == message.id]
        body = json.loads(message.body)
        assert body["data"] == source.data
        assert body["type"] == "technology.submitted"


@postgres_only
def test_200_concurrent_comment_posts_all_land(backend, app, client, token, make_technology,
                                               clock):
    technology = make_technology(submit=True)
    review = schedule(client, token("reviewer"), technology["id"], opens=clock.now()).get_json()
    run_due_transitions(app, clock)

    def post(i: int) -> int:
        with app.test_client() as own:
            return own.post(f"/api/v1/reviews/{review['id']}/comments",
                            json={"body": f"Comment number {i}"}).status_code

    with ThreadPoolExecutor(40) as pool:
        codes = list(pool.map(post, range(200)))
    assert codes == [201] * 200
    from registry.database import transaction

    with app.app_context(), transaction(app) as session:
        stored = session.execute(select(func.count()).select_from(Comment)).scalar_one()
        seqs = list(session.execute(select(Event.seq).order_by(Event.seq)).scalars())
    assert stored == 200
    assert seqs == list(range(1, len(seqs) + 1))
    assert len(public_events(client, type="comment.published", limit=200)) == 200


def test_the_worker_keeps_a_date_job_at_each_transition_and_moves_it(
        app, client, token, make_technology, clock, worker):
    reviewer = token("reviewer")
    technology = make_technology(submit=True)
    opens = clock.now() + timedelta(days=2)
    review = schedule(client, reviewer, technology["id"], opens=opens, days=45).get_json()
    worker.resync_timers()

    def run_dates() -> list[datetime]:
        return sorted(job.args[0] for job in worker.scheduler.get_jobs()
                      if job.id.startswith("transition-"))

    assert run_dates() == [opens]
    later = opens + timedelta(days=3)
    response = client.patch(f"/api/v1/reviews/{review['id']}", json={
        "comment_opens_at": later.isoformat(),
        "comment_closes_at": (later + timedelta(days=45)).isoformat(),
        "meetings": [{"starts_at": (later + timedelta(days=1)).isoformat(),
                      "place": "City Hall"}]}, headers=reviewer)
    assert response.status_code == 200, response.get_json()
    worker.resync_timers()
    assert run_dates() == [later]
    clock.set(later)
    worker.transitions()
    worker.resync_timers()
    closes = later + timedelta(days=45)
    assert run_dates() == [closes - timedelta(hours=24), closes]
    extended = closes + timedelta(days=7)
    client.patch(f"/api/v1/reviews/{review['id']}", json={
        "comment_closes_at": extended.isoformat(), "reason": "More time asked for."},
        headers=reviewer)
    worker.resync_timers()
    assert run_dates() == [extended - timedelta(hours=24), extended]


def test_a_worker_started_after_the_opening_time_opens_at_once(app, client, token,
                                                               make_technology, clock):
    technology = make_technology(submit=True)
    review = schedule(client, token("reviewer"), technology["id"],
                      opens=clock.now() + timedelta(hours=1)).get_json()
    clock.advance(hours=3)
    late = Worker(app)
    try:
        late.start()
        assert client.get(f"/api/v1/reviews/{review['id']}").get_json()["status"] == "open"
        [event] = public_events(client, type="comment_period.opened")
        assert event["timestamp"] == clock.now().isoformat()
    finally:
        late.stop()


@postgres_only
def test_on_postgresql_the_worker_follows_the_log_on_its_notice_not_its_poll(
        backend, app, client, token, make_technology, receiver, monkeypatch):
    # With the poll an hour apart, only the log's notice can make the worker follow.
    monkeypatch.setattr("registry.worker.runner.POLL_SECONDS", 3600)
    subscribe(client, token("partner"), receiver.url("/submitted"), ["technology.submitted"])
    worker = Worker(app)
    worker.start()
    try:
        technology = make_technology(submit=True, name="Drones")
        [request] = receiver.wait_for(1, path="/submitted", timeout=10)
    finally:
        worker.stop()
    assert json.loads(request.body)["data"]["technology"]["id"] == technology["id"]


def test_after_a_pass_that_read_many_events_and_sent_nothing_the_next_waits_longer(
        app, client, token, make_technology, receiver, worker, clock, monkeypatch):
    # Under a comment surge nobody receives the events: passes that only move the cursor
    # come at most every QUIET_GAP_SECONDS, not every NOTICE_GAP_SECONDS. A pass that read
    # fewer than QUIET_AFTER_EVENTS events is no surge: the next waits the short gap.
    from registry.database import transaction
    from registry.events.models import LogCursor
    from registry.worker.runner import NOTICE_GAP_SECONDS, QUIET_GAP_SECONDS

    assert QUIET_GAP_SECONDS > NOTICE_GAP_SECONDS
    clock.advance(seconds=1)  # after the bundled policies' events
    subscribe(client, token("partner"), receiver.url("/submitted"), ["technology.submitted"])
    clock.advance(seconds=1)
    monkeypatch.setattr("registry.worker.runner.QUIET_AFTER_EVENTS", 2)
    technology = make_technology(submit=True, name="Drones")
    assert worker.follow_on_notice() == NOTICE_GAP_SECONDS  # one delivery made
    [request] = receiver.wait_for(1, path="/submitted", timeout=10)
    assert json.loads(request.body)["data"]["technology"]["id"] == technology["id"]

    schedule(client, token("reviewer"), technology["id"], opens=clock.now())
    assert worker.follow_on_notice() == NOTICE_GAP_SECONDS  # one event nobody takes: no surge
    run_due_transitions(app, clock)  # the period opens: another event nobody takes
    [last] = public_events(client, type="comment_period.opened")
    monkeypatch.setattr("registry.worker.runner.QUIET_AFTER_EVENTS", 1)
    assert worker.follow_on_notice() == QUIET_GAP_SECONDS  # a surge, as far as this goes
    with app.app_context(), transaction(app) as session:
        cursor = session.get(LogCursor, "webhooks")
        assert cursor is not None and cursor.seq == last["seq"]  # read, and sent to nobody
    assert worker.follow_on_notice() == NOTICE_GAP_SECONDS  # nothing new
    assert len(receiver.requests_to("/submitted")) == 1


@postgres_only
def test_a_worker_that_finds_another_following_the_log_waits_longer_only_in_a_surge(
        backend, app, worker, monkeypatch):
    from sqlalchemy import text

    from registry.database import engine
    from registry.worker.runner import NOTICE_GAP_SECONDS, QUIET_GAP_SECONDS

    def held_by_another_worker() -> Any:
        other = engine(app).connect()
        other.execute(text("SELECT seq FROM event_log_cursor WHERE name = 'webhooks' "
                           "FOR UPDATE"))
        return other

    other = held_by_another_worker()
    try:
        assert fan_out_new_events(app, worker.clock).contended
        # No surge seen: the other may be fanning out deliveries this one should help send.
        assert worker.follow_on_notice() == NOTICE_GAP_SECONDS
    finally:
        other.close()
    # The bundled policies' events, sent to nobody: a surge, with the threshold at 1.
    monkeypatch.setattr("registry.worker.runner.QUIET_AFTER_EVENTS", 1)
    assert worker.follow_on_notice() == QUIET_GAP_SECONDS
    other = held_by_another_worker()
    try:
        assert worker.follow_on_notice() == QUIET_GAP_SECONDS
    finally:
        other.close()
    assert not fan_out_new_events(app, worker.clock).contended


def test_the_poll_follows_the_log_unless_notices_just_did(backend, app, monkeypatch):
    # The poll is the safety net for a missed notice. Where notices keep the head live
    # (PostgreSQL), a poll right after a pass is skipped; on SQLite every poll follows.
    monkeypatch.setattr("registry.worker.runner.POLL_SECONDS", 3600)
    worker = Worker(app)
    worker.start()
    passes: list[int] = []
    real = fan_out_new_events

    def counted(*args: Any, **kwargs: Any) -> Any:
        passes.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr("registry.worker.runner.fan_out_new_events", counted)
    try:
        from registry.database import log_head
        from tests.registry.helpers import wait_until

        if backend == "postgresql":
            wait_until(lambda: log_head(app).live, 10, "the listener to read the head")
        worker.follow()
        assert len(passes) == 1
        worker.poll()  # right after a pass
        assert len(passes) == (1 if backend == "postgresql" else 2)
        worker._last_pass -= 3601  # a poll's interval later, with no pass in between
        before = len(passes)
        worker.poll()
        assert len(passes) == before + 1
        # In a surge's longer gap (follow_on_notice chose it), the poll waits it out too.
        worker._last_pass -= 3601
        worker._quiet_until = time.monotonic() + 3600
        before = len(passes)
        worker.poll()
        assert len(passes) == before + (0 if backend == "postgresql" else 1)
    finally:
        worker.stop()
