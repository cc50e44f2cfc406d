"""Public reviews: scheduling rules, the timed transitions (fake clock), and decisions."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from registry.worker.jobs import run_due_transitions
from tests.registry.helpers import iso, public_events, schedule, types


@pytest.fixture
def submitted(make_technology) -> dict[str, Any]:
    return make_technology(submit=True)


@pytest.fixture
def review(client, reviewer, submitted, clock) -> dict[str, Any]:
    response = schedule(client, reviewer, submitted["id"], opens=clock.now() + timedelta(days=1))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_scheduling_puts_the_technology_in_review(client, review, submitted):
    assert review["status"] == "scheduled"
    assert review["technology"]["id"] == submitted["id"]
    technology = client.get(f"/api/v1/technologies/{submitted['id']}").get_json()
    assert technology["status"] == "in_review"
    assert technology["reviews"][0]["id"] == review["id"]
    assert types(client)[-1] == "review.scheduled"


def test_a_period_shorter_than_the_assessment_minimum_is_refused(client, reviewer, submitted,
                                                                 clock):
    minimum = client.get(f"/api/v1/technologies/{submitted['id']}").get_json()[
        "assessment"]["min_comment_days"]
    response = schedule(client, reviewer, submitted["id"], opens=clock.now(), days=minimum - 1)
    assert response.status_code == 422
    assert "comment_closes_at" in response.get_json()["errors"]
    assert f"at least {minimum} days" in response.get_json()["errors"]["comment_closes_at"][0]


def test_an_override_reason_allows_a_shorter_period_and_is_public(client, reviewer, submitted,
                                                                 clock):
    response = schedule(client, reviewer, submitted["id"], opens=clock.now(), days=7,
                        override_reason="Council deadline set by ordinance.")
    assert response.status_code == 201
    assert response.get_json()["override_reason"] == "Council deadline set by ordinance."
    event = public_events(client, type="review.scheduled")[0]
    assert event["data"]["review"]["override_reason"] == "Council deadline set by ordinance."


def test_a_required_meeting_must_be_given(client, reviewer, make_technology, clock):
    high = make_technology(submit=True, capabilities=["face_recognition"],
                           data_collected=["face_images", "biometric"])
    assessment = client.get(f"/api/v1/technologies/{high['id']}").get_json()["assessment"]
    assert assessment["risk_tier"] == "high" and assessment["meeting_required"]
    response = schedule(client, reviewer, high["id"], opens=clock.now(), days=60, meetings=[])
    assert response.status_code == 422
    assert "meetings" in response.get_json()["errors"]


@pytest.mark.parametrize("body, field", [
    ({"comment_opens_at": "2026-03-10T09:00:00", "comment_closes_at": "2026-05-10T09:00:00Z"},
     "comment_opens_at"),
    ({"comment_opens_at": "2026-05-10T09:00:00Z", "comment_closes_at": "2026-03-10T09:00:00Z"},
     "comment_closes_at"),
    ({"comment_opens_at": "2026-03-10T09:00:00Z"}, "comment_closes_at"),
    ({"comment_opens_at": "2026-03-10T09:00:00Z", "comment_closes_at": "2026-06-10T09:00:00Z",
      "meetings": [{"starts_at": "2026-03-12T18:00:00Z"}]}, "meetings.0.place"),
    ({"comment_opens_at": "2026-03-10T09:00:00Z", "comment_closes_at": "2026-06-10T09:00:00Z",
      "meetings": [{"starts_at": "2026-08-12T18:00:00Z", "place": "Hall"}]},
     "meetings.0.starts_at"),
])
def test_bad_schedules_name_the_field(client, reviewer, submitted, body, field):
    response = client.post(f"/api/v1/technologies/{submitted['id']}/reviews", json=body,
                           headers=reviewer)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]
    assert client.get(f"/api/v1/technologies/{submitted['id']}").get_json()["status"] == \
        "submitted"


def test_only_a_submitted_technology_can_be_scheduled(client, reviewer, review, submitted,
                                                      clock):
    again = schedule(client, reviewer, submitted["id"], opens=clock.now() + timedelta(days=2))
    assert again.status_code == 409
    assert "'in_review'" in again.get_json()["detail"]


def test_a_period_opens_at_its_time_and_not_before(app, client, review, clock):
    opens = clock.now() + timedelta(days=1)
    clock.set(opens - timedelta(seconds=1))
    assert not run_due_transitions(app, clock)
    assert client.get(f"/api/v1/reviews/{review['id']}").get_json()["status"] == "scheduled"
    clock.set(opens)
    assert run_due_transitions(app, clock).opened == [review["id"]]
    body = client.get(f"/api/v1/reviews/{review['id']}").get_json()
    assert body["status"] == "open"
    assert body["opened_at"] == iso(opens)
    assert types(client).count("comment_period.opened") == 1


def test_closing_soon_fires_once_24_hours_before_and_then_it_closes(app, client, review, clock):
    closes = clock.now() + timedelta(days=1 + 45)
    clock.set(clock.now() + timedelta(days=1))
    run_due_transitions(app, clock)
    clock.set(closes - timedelta(hours=24, seconds=1))
    assert not run_due_transitions(app, clock)
    clock.set(closes - timedelta(hours=24))
    assert run_due_transitions(app, clock).closing_soon == [review["id"]]
    clock.advance(hours=1)
    assert not run_due_transitions(app, clock)
    clock.set(closes - timedelta(seconds=1))
    assert not run_due_transitions(app, clock)
    clock.set(closes)
    assert run_due_transitions(app, clock).closed == [review["id"]]
    assert client.get(f"/api/v1/reviews/{review['id']}").get_json()["status"] == "closed"
    assert types(client).count("comment_period.closing_soon") == 1
    assert types(client).count("comment_period.closed") == 1


def test_a_worker_that_missed_everything_catches_up_in_order(app, client, review, clock):
    clock.advance(days=100)
    done = run_due_transitions(app, clock)
    assert done.opened == [review["id"]] and done.closed == [review["id"]]
    assert done.closing_soon == []
    assert [t for t in types(client) if t.startswith("comment_period")] == [
        "comment_period.opened", "comment_period.closed"]


def test_rescheduling_before_opening_moves_the_dates(app, client, reviewer, review, clock):
    later = clock.now() + timedelta(days=10)
    response = client.patch(f"/api/v1/reviews/{review['id']}", json={
        "comment_opens_at": iso(later), "comment_closes_at": iso(later + timedelta(days=50)),
        "meetings": [{"starts_at": iso(later + timedelta(days=5)), "place": "City Hall"}]},
        headers=reviewer)
    assert response.status_code == 200, response.get_json()
    event = public_events(client, type="review.rescheduled")[0]
    assert event["data"]["previous"]["comment_opens_at"] == review["comment_opens_at"].replace(
        "+00:00", "Z")
    clock.set(clock.now() + timedelta(days=1))
    assert not run_due_transitions(app, clock)  # the old time no longer opens it
    clock.set(later)
    assert run_due_transitions(app, clock).opened == [review["id"]]


def test_extending_an_open_period_is_logged_publicly(app, client, reviewer, review, clock):
    clock.advance(days=1)
    run_due_transitions(app, clock)
    old_close = client.get(f"/api/v1/reviews/{review['id']}").get_json()["comment_closes_at"]
    from datetime import datetime

    new_close = datetime.fromisoformat(old_close) + timedelta(days=14)
    response = client.patch(f"/api/v1/reviews/{review['id']}", json={
        "comment_closes_at": iso(new_close), "reason": "Requested by the working group."},
        headers=reviewer)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["extensions"][0]["reason"] == "Requested by the working group."
    assert body["extensions"][0]["previous_closes_at"] == old_close.replace("+00:00", "Z")
    assert types(client)[-1] == "comment_period.extended"
    # The old closing time passes and the period stays open.
    clock.set(datetime.fromisoformat(old_close))
    assert run_due_transitions(app, clock).closed == []
    clock.set(new_close)
    assert run_due_transitions(app, clock).closed == [review["id"]]


@pytest.mark.parametrize("body, field", [
    ({"comment_closes_at": "2020-01-01T00:00:00Z", "reason": "x"}, "comment_closes_at"),
    ({"comment_closes_at": "2036-01-01T00:00:00Z"}, "reason"),
    ({"comment_opens_at": "2036-01-01T00:00:00Z", "reason": "x"}, "comment_opens_at"),
])
def test_an_open_period_can_only_be_extended_with_a_reason(app, client, reviewer, review, clock,
                                                           body, field):
    clock.advance(days=1)
    run_due_transitions(app, clock)
    response = client.patch(f"/api/v1/reviews/{review['id']}", json=body, headers=reviewer)
    assert response.status_code == 422
    assert field in response.get_json()["errors"]


def test_cancelling_returns_the_technology_to_submitted(client, reviewer, review, submitted):
    response = client.post(f"/api/v1/reviews/{review['id']}/cancel",
                           json={"reason": "Vendor contract ended."}, headers=reviewer)
    assert response.status_code == 200
    assert response.get_json()["status"] == "cancelled"
    assert client.get(f"/api/v1/technologies/{submitted['id']}").get_json()["status"] == \
        "submitted"
    assert types(client)[-1] == "review.cancelled"
    again = client.post(f"/api/v1/reviews/{review['id']}/cancel", headers=reviewer)
    assert again.status_code == 409


def test_cancelling_after_closing_is_refused(app, client, reviewer, review, clock):
    clock.advance(days=100)
    run_due_transitions(app, clock)
    response = client.post(f"/api/v1/reviews/{review['id']}/cancel", headers=reviewer)
    assert response.status_code == 409
    assert "'closed'" in response.get_json()["detail"]


def test_deciding_before_closing_is_refused(client, reviewer, review):
    response = client.post(f"/api/v1/reviews/{review['id']}/decision",
                           json={"outcome": "approved", "rationale": "Fine."}, headers=reviewer)
    assert response.status_code == 409
    assert "has not closed" in response.get_json()["detail"]


@pytest.mark.parametrize("outcome", ["approved", "approved_with_conditions", "rejected"])
def test_the_decision_sets_the_technology_status(app, client, reviewer, review, submitted, clock,
                                                 outcome):
    clock.advance(days=100)
    run_due_transitions(app, clock)
    conditions = ("Delete unmatched reads after 30 days."
                  if outcome == "approved_with_conditions" else None)
    response = client.post(f"/api/v1/reviews/{review['id']}/decision", json={
        "outcome": outcome, "rationale": "After public comment.",
        "conditions": conditions}, headers=reviewer)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["decision"]["outcome"] == outcome
    assert response.get_json()["decision"]["conditions"] == conditions
    technology = client.get(f"/api/v1/technologies/{submitted['id']}").get_json()
    assert technology["status"] == outcome
    expected_due = (clock.now() + timedelta(days=365)).date().isoformat()
    assert technology["next_review_due"] == (None if outcome == "rejected" else expected_due)
    event = public_events(client, type="review.decided")[0]
    assert event["data"]["technology"]["status"] == outcome
    again = client.post(f"/api/v1/reviews/{review['id']}/decision",
                        json={"outcome": "approved", "rationale": "x"}, headers=reviewer)
    assert again.status_code == 409


def test_conditions_are_required_for_a_conditional_approval(app, client, reviewer, review,
                                                            clock):
    clock.advance(days=100)
    run_due_transitions(app, clock)
    response = client.post(f"/api/v1/reviews/{review['id']}/decision", json={
        "outcome": "approved_with_conditions", "rationale": "ok"}, headers=reviewer)
    assert response.status_code == 422
    assert "conditions" in response.get_json()["errors"]


def test_withdrawing_cancels_the_pending_review(client, staff, review, submitted):
    response = client.post(f"/api/v1/technologies/{submitted['id']}/withdraw", headers=staff)
    assert response.status_code == 200
    assert client.get(f"/api/v1/reviews/{review['id']}").get_json()["status"] == "cancelled"
    assert types(client)[-2:] == ["review.cancelled", "technology.withdrawn"]


def test_reviews_filter_by_status(app, client, reviewer, review, make_technology, clock):
    other = make_technology(submit=True, name="Drones")
    schedule(client, reviewer, other["id"], opens=clock.now() + timedelta(days=30))
    clock.advance(days=1)
    run_due_transitions(app, clock)
    open_ = client.get("/api/v1/reviews", query_string={"status": "open"}).get_json()["items"]
    assert [r["id"] for r in open_] == [review["id"]]
    both = client.get("/api/v1/reviews", query_string={"status": "open,scheduled"}).get_json()
    assert len(both["items"]) == 2
    bad = client.get("/api/v1/reviews", query_string={"status": "pending"})
    assert bad.status_code == 422


def test_meetings_keep_their_id_when_rescheduled_and_must_end_after_they_start(
        client, reviewer, submitted, clock):
    opens = clock.now() + timedelta(days=2)
    meeting = {"starts_at": iso(opens + timedelta(days=3)),
               "ends_at": iso(opens + timedelta(days=3, hours=2)), "place": "City Hall"}
    review = schedule(client, reviewer, submitted["id"], opens=opens,
                      meetings=[meeting]).get_json()
    [stored] = review["meetings"]
    assert stored["id"].startswith("mtg_")
    moved = {**meeting, "id": stored["id"], "starts_at": iso(opens + timedelta(days=4)),
             "ends_at": iso(opens + timedelta(days=4, hours=1))}
    response = client.patch(f"/api/v1/reviews/{review['id']}", json={"meetings": [moved]},
                            headers=reviewer)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["meetings"][0]["id"] == stored["id"]
    backwards = {**moved, "ends_at": moved["starts_at"]}
    response = client.patch(f"/api/v1/reviews/{review['id']}", json={"meetings": [backwards]},
                            headers=reviewer)
    assert response.status_code == 422
    assert "meetings.0.ends_at" in response.get_json()["errors"]


@pytest.fixture
def high(client, make_technology) -> dict[str, Any]:
    """A submitted technology the assessment rates high risk (45 days and a meeting)."""
    technology = make_technology(submit=True, capabilities=["face_recognition"],
                                 data_collected=["face_images", "biometric"])
    assessment = client.get(f"/api/v1/technologies/{technology['id']}").get_json()["assessment"]
    assert (assessment["min_comment_days"], assessment["meeting_required"]) == (45, True)
    return technology


def test_a_period_cannot_open_in_the_past_to_pass_the_minimum(client, reviewer, high, clock):
    # Opened "44 days ago" and closing tomorrow, it measured 45 days: residents would have
    # had one, with no override given or made public.
    now = clock.now()
    response = schedule(client, reviewer, high["id"], opens=now - timedelta(days=44), days=45,
                        meetings=[{"starts_at": iso(now + timedelta(hours=2)), "place": "Hall"}])
    assert response.status_code == 422
    assert list(response.get_json()["errors"]) == ["comment_opens_at"]
    assert "cannot open in the past" in response.get_json()["errors"]["comment_opens_at"][0]
    technology = client.get(f"/api/v1/technologies/{high['id']}").get_json()
    assert technology["status"] == "submitted" and technology["reviews"] == []
    assert "review.scheduled" not in types(client)
    # A client that sends "now" sends a time just past by the time it arrives: that is kept.
    response = schedule(client, reviewer, high["id"], opens=now - timedelta(minutes=2), days=45)
    assert response.status_code == 201, response.get_json()


def test_a_reschedule_cannot_move_the_opening_into_the_past(client, reviewer, high, clock):
    review = schedule(client, reviewer, high["id"], opens=clock.now() + timedelta(days=2),
                      days=45).get_json()
    now = clock.now()
    response = client.patch(f"/api/v1/reviews/{review['id']}", headers=reviewer, json={
        "comment_opens_at": iso(now - timedelta(days=44)),
        "comment_closes_at": iso(now + timedelta(days=1)),
        "meetings": [{"starts_at": iso(now + timedelta(hours=2)), "place": "Hall"}]})
    assert response.status_code == 422
    assert list(response.get_json()["errors"]) == ["comment_opens_at"]
    assert client.get(f"/api/v1/reviews/{review['id']}").get_json()[
        "comment_opens_at"] == review["comment_opens_at"]
    assert "review.rescheduled" not in types(client)


def test_a_review_is_scheduled_against_an_assessment_that_describes_the_record(
        client, reviewer, staff, make_technology, clock):
    # Edited after its assessment (traffic counts: not high risk), it now recognises faces.
    from registry.demo import TECHNOLOGIES

    counters = {name: value for name, value in TECHNOLOGIES["counters"].items()
                if name not in ("submitted_days", "department")}
    technology = make_technology(submit=True, **counters)
    assessment = client.get(f"/api/v1/technologies/{technology['id']}").get_json()["assessment"]
    assert assessment["min_comment_days"] < 45 and not assessment["meeting_required"]
    edited = client.patch(f"/api/v1/technologies/{technology['id']}", headers=staff,
                          json={"capabilities": ["face_recognition"],
                                "data_collected": ["face_images", "biometric"]})
    assert edited.status_code == 200, edited.get_json()
    shortest = assessment["min_comment_days"]
    response = schedule(client, reviewer, technology["id"], opens=clock.now(), days=shortest,
                        meetings=[])
    assert response.status_code == 409
    detail = response.get_json()["detail"]
    assert "out of date" in detail and f"/technologies/{technology['id']}/assessments" in detail
    assert "review.scheduled" not in types(client)
    again = client.post(f"/api/v1/technologies/{technology['id']}/assessments", headers=reviewer)
    assert again.status_code == 201, again.get_json()
    assert again.get_json()["min_comment_days"] == 45
    short = schedule(client, reviewer, technology["id"], opens=clock.now(), days=shortest,
                     meetings=[])
    assert short.status_code == 422
    assert set(short.get_json()["errors"]) == {"comment_closes_at", "meetings"}
    assert schedule(client, reviewer, technology["id"], opens=clock.now(),
                    days=45).status_code == 201


def test_a_period_past_its_closing_time_is_not_extended_or_cancelled_before_it_closes(
        app, client, reviewer, review, clock):
    # The closing time has passed but the worker has not closed the period yet: comments are
    # refused already, so it must not be reopened by an extension, nor cancelled.
    clock.advance(days=1)
    assert run_due_transitions(app, clock).opened == [review["id"]]
    from datetime import datetime

    closes = datetime.fromisoformat(
        client.get(f"/api/v1/reviews/{review['id']}").get_json()["comment_closes_at"])
    clock.set(closes + timedelta(minutes=1))
    extended = client.patch(f"/api/v1/reviews/{review['id']}", headers=reviewer, json={
        "comment_closes_at": iso(closes + timedelta(days=7)), "reason": "More time."})
    assert extended.status_code == 409
    assert "can no longer be extended or cancelled" in extended.get_json()["detail"]
    cancelled = client.post(f"/api/v1/reviews/{review['id']}/cancel", headers=reviewer,
                            json={"reason": "Too late."})
    assert cancelled.status_code == 409
    assert client.get(f"/api/v1/reviews/{review['id']}").get_json()["status"] == "open"
    assert run_due_transitions(app, clock).closed == [review["id"]]
    assert types(client)[-1] == "comment_period.closed"
    assert "comment_period.extended" not in types(client)
    assert "review.cancelled" not in types(client)


def test_a_decision_after_the_closing_time_closes_the_period_first(app, client, reviewer,
                                                                   review, submitted, clock):
    # The worker is down (or has not yet woken) at the closing time: the reviewer's decision
    # does not wait for it. The period is closed by the request, announced once, then decided.
    from datetime import datetime

    clock.advance(days=1)
    assert run_due_transitions(app, clock).opened == [review["id"]]
    closes = datetime.fromisoformat(
        client.get(f"/api/v1/reviews/{review['id']}").get_json()["comment_closes_at"])
    clock.set(closes - timedelta(seconds=1))
    early = client.post(f"/api/v1/reviews/{review['id']}/decision", headers=reviewer,
                        json={"outcome": "approved", "rationale": "Too soon."})
    assert early.status_code == 409
    assert client.get(f"/api/v1/reviews/{review['id']}").get_json()["status"] == "open"

    clock.set(closes + timedelta(minutes=1))
    decided = client.post(f"/api/v1/reviews/{review['id']}/decision", headers=reviewer,
                          json={"outcome": "rejected", "rationale": "After public comment."})
    assert decided.status_code == 200, decided.get_json()
    body = decided.get_json()
    assert body["status"] == "decided"
    assert body["closed_at"] == iso(clock.now())
    assert types(client)[-2:] == ["comment_period.closed", "review.decided"]
    assert client.get(f"/api/v1/technologies/{submitted['id']}").get_json()["status"] == \
        "rejected"
    # The worker, waking late, finds nothing left to close and announces nothing more.
    assert run_due_transitions(app, clock).closed == []
    assert types(client).count("comment_period.closed") == 1


def test_a_patch_that_changes_nothing_announces_no_reschedule(client, reviewer, review):
    before = client.get(f"/api/v1/reviews/{review['id']}").get_json()
    same = {"comment_opens_at": review["comment_opens_at"],
            "comment_closes_at": review["comment_closes_at"],
            # The meeting sent back as it was shown, even without its id, is the same one.
            "meetings": [{k: v for k, v in m.items() if k != "id"} for m in review["meetings"]]}
    for body in ({}, same):
        response = client.patch(f"/api/v1/reviews/{review['id']}", json=body, headers=reviewer)
        assert response.status_code == 200, response.get_json()
        assert response.get_json() == before
    assert "review.rescheduled" not in types(client)
    moved = client.patch(f"/api/v1/reviews/{review['id']}", headers=reviewer, json={
        "comment_closes_at": iso(datetime.fromisoformat(review["comment_closes_at"])
                                 + timedelta(days=1))})
    assert moved.status_code == 200
    assert moved.get_json()["meetings"] == before["meetings"]  # ids kept
    assert types(client).count("review.rescheduled") == 1


def test_a_reason_is_refused_before_the_period_opens(client, reviewer, review):
    response = client.patch(f"/api/v1/reviews/{review['id']}", headers=reviewer,
                            json={"reason": "More time for the library branch."})
    assert response.status_code == 422
    assert "reason" in response.get_json()["errors"]
    assert "review.rescheduled" not in types(client)


def test_two_meetings_with_one_id_are_refused(client, reviewer, submitted, clock):
    opens = clock.now() + timedelta(days=1)
    meeting = {"id": "town-hall", "starts_at": iso(opens + timedelta(days=3)), "place": "Hall"}
    response = schedule(client, reviewer, submitted["id"], opens=opens,
                        meetings=[meeting, {**meeting, "place": "Library"}])
    assert response.status_code == 422
    assert "meetings" in response.get_json()["errors"]


@pytest.mark.parametrize("outcome", ["approved", "rejected"])
def test_conditions_go_only_with_a_conditional_approval(app, client, reviewer, review, clock,
                                                        outcome):
    clock.advance(days=100)
    run_due_transitions(app, clock)
    response = client.post(f"/api/v1/reviews/{review['id']}/decision", headers=reviewer, json={
        "outcome": outcome, "rationale": "ok", "conditions": "Delete reads after 7 days."})
    assert response.status_code == 422
    assert "approved_with_conditions" in response.get_json()["errors"]["conditions"][0]
    assert client.get(f"/api/v1/reviews/{review['id']}").get_json()["status"] == "closed"


@pytest.mark.parametrize("outcome", ["approved", "rejected"])
def test_a_yearly_review_falling_due_is_announced_once(app, client, reviewer, review, submitted,
                                                       clock, outcome):
    from registry.worker.jobs import announce_due_reviews

    clock.advance(days=100)
    run_due_transitions(app, clock)
    decided = client.post(f"/api/v1/reviews/{review['id']}/decision", headers=reviewer,
                          json={"outcome": outcome, "rationale": "After public comment."})
    assert decided.status_code == 200
    due = client.get(f"/api/v1/technologies/{submitted['id']}").get_json()["next_review_due"]
    clock.advance(days=364)
    assert announce_due_reviews(app, clock) == []
    clock.advance(days=1)
    if outcome == "rejected":  # nothing is due for review: it was never approved
        assert due is None and announce_due_reviews(app, clock) == []
        return
    assert clock.now().date().isoformat() == due
    assert announce_due_reviews(app, clock) == [submitted["id"]]
    assert announce_due_reviews(app, clock) == []  # once per due date
    [event] = public_events(client, type="technology.review_due")
    assert event["data"]["next_review_due"] == due
    assert event["data"]["technology"]["id"] == submitted["id"]
    assert event["data"]["technology"]["status"] == "approved"
    page = client.get(f"/technologies/{submitted['id']}").get_data(as_text=True)
    assert "is due for its yearly review." in page  # in the record's timeline
