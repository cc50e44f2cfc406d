"""The review lifecycle: schedule, reschedule, extend, cancel, decide, and the timed transitions.

Timed transitions (open, closing soon, close) are conditional updates: the ``WHERE`` names the
state the review must still be in, so when two workers race only one update matches a row and
only that one writes the event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from registry.assessments.models import Assessment
from registry.auth.services import Principal
from registry.db import update_each
from registry.errors import Conflict, Invalid, NotFound
from registry.events.services import append_event
from registry.ids import new_id
from registry.reviews.models import ACTIVE, Review, ReviewStatus, takes_comments
from registry.technologies.models import Status, Technology
from registry.technologies.services import snapshot
from registry.urls import api_url, technology_page

CLOSING_SOON = timedelta(hours=24)
#: How far in the past a new opening time may be: a client that sends "now" sends a time
#: that has passed by the time it arrives.
OPENS_GRACE = timedelta(minutes=5)
REVIEW_INTERVAL_DAYS = 365
DECISION_STATUS = {
    "approved": Status.APPROVED,
    "approved_with_conditions": Status.APPROVED_WITH_CONDITIONS,
    "rejected": Status.REJECTED,
}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def review_snapshot(session: Session, review: Review) -> dict[str, Any]:
    """The public summary of a review carried in events and webhooks."""
    technology = session.get(Technology, review.technology_id)
    assert technology is not None
    summary = snapshot(session, technology)
    return {
        "id": review.id,
        "url": f"{technology_page(technology.id)}#review-{review.id}",
        "api_url": api_url(f"/reviews/{review.id}"),
        "status": review.status,
        "technology": {key: summary[key] for key in ("id", "name", "url", "department")},
        "comment_opens_at": _iso(review.comment_opens_at),
        "comment_closes_at": _iso(review.comment_closes_at),
        "meetings": review.meetings,
        "override_reason": review.override_reason,
        "comments_url": api_url(f"/reviews/{review.id}/comments"),
    }


def review_dict(session: Session, review: Review) -> dict[str, Any]:
    """A review as the API shows it."""
    return {
        **review_snapshot(session, review),
        "comment_opens_at": review.comment_opens_at,
        "comment_closes_at": review.comment_closes_at,
        "extensions": review.extensions,
        "assessment_id": review.assessment_id,
        "opened_at": review.opened_at,
        "closed_at": review.closed_at,
        "cancelled_at": review.cancelled_at,
        "cancel_reason": review.cancel_reason,
        "decision": _decision(review),
        "created_at": review.created_at,
        "updated_at": review.updated_at,
    }


def _decision(review: Review) -> dict[str, Any] | None:
    if review.outcome is None:
        return None
    return {"outcome": review.outcome, "rationale": review.rationale,
            "conditions": review.conditions, "decided_at": _iso(review.decided_at)}


def _append(session: Session, review: Review, type: str, now: datetime,
            **extra: Any) -> None:
    append_event(session, type=type, subject_type="review", subject_id=review.id,
                 technology_id=review.technology_id, now=now,
                 data={"review": review_snapshot(session, review), **extra})


def get_review(session: Session, review_id: str, *, for_update: bool = False) -> Review:
    """A review (every review is public), or 404."""
    query = select(Review).where(col(Review.id) == review_id)
    if for_update:
        query = query.with_for_update()
    review: Review | None = session.execute(query).scalar_one_or_none()
    if review is None:
        raise NotFound(f"There is no review {review_id!r}.")
    return review


def list_reviews(session: Session, *, statuses: Sequence[str], after: str | None,
                 limit: int, technology_id: str | None = None) -> list[Review]:
    """Reviews in order of scheduling, optionally by status."""
    query = select(Review).order_by(col(Review.id))
    if statuses:
        query = query.where(col(Review.status).in_(statuses))
    if technology_id:
        query = query.where(col(Review.technology_id) == technology_id)
    if after:
        query = query.where(col(Review.id) > after)
    return list(session.execute(query.limit(limit)).scalars())


def reviews_for_technology(session: Session, technology: Technology) -> list[dict[str, Any]]:
    """The technology's reviews as the API shows them, newest first."""
    reviews = session.execute(
        select(Review).where(col(Review.technology_id) == technology.id)
        .order_by(col(Review.id).desc())
    ).scalars()
    return [review_dict(session, review) for review in reviews]


def _latest_assessment(session: Session, technology: Technology) -> Assessment | None:
    assessment: Assessment | None = session.execute(
        select(Assessment).where(col(Assessment.technology_id) == technology.id)
        .order_by(col(Assessment.id).desc()).limit(1)
    ).scalar_one_or_none()
    return assessment


def _check_period(
    session: Session, technology: Technology, opens_at: datetime, closes_at: datetime,
    meetings: Sequence[Mapping[str, Any]], override_reason: str | None, now: datetime,
    *, opens_given: bool = True,
) -> Assessment | None:
    """The checks every schedule and reschedule passes: order, future, minimum, meeting,
    against an assessment that still describes the record (``opens_given``: the opening
    time was sent, so it must not be past)."""
    errors: dict[str, list[str]] = {}
    if opens_given and opens_at < now - OPENS_GRACE:
        # A period cannot have opened before it was scheduled: counted from a past time,
        # a one-day period "opened" 44 days ago would pass a 45-day minimum.
        errors["comment_opens_at"] = [
            "The comment period cannot open in the past; give the time it opens (now, or "
            "later)."]
    if closes_at <= opens_at:
        errors["comment_closes_at"] = ["The comment period must close after it opens."]
    elif closes_at <= now:
        errors["comment_closes_at"] = ["The comment period must close in the future."]
    for index, meeting in enumerate(meetings):
        if not (opens_at <= meeting["starts_at"] <= closes_at):
            errors[f"meetings.{index}.starts_at"] = [
                "A meeting must take place while the comment period is open."]
    assessment = _latest_assessment(session, technology)
    if assessment is not None and assessment.outdated_at is not None:
        # Its minimum and meeting no longer describe the record (it was edited, or a policy
        # has a new version): the new assessment may ask for more.
        raise Conflict(
            f"The latest assessment is out of date ({assessment.outdated_reason or 'changed'}); "
            f"assess the technology again (POST /api/v1/technologies/{technology.id}/"
            "assessments) before scheduling its review.",
            current_status=technology.status)
    if not errors and assessment is not None and not override_reason:
        # What residents get: from when it opens or, for a period whose opening time has
        # long passed unopened (a reschedule while the worker was down), from about now.
        days = (closes_at - max(opens_at, now - OPENS_GRACE)) / timedelta(days=1)
        if days < assessment.min_comment_days:
            errors["comment_closes_at"] = [
                f"The assessment rates this technology {assessment.risk_tier} risk, which needs "
                f"a comment period of at least {assessment.min_comment_days} days; this one is "
                f"{days:.1f}. Give an override_reason to schedule it shorter."]
        if assessment.meeting_required and not meetings:
            errors["meetings"] = [
                "The assessment requires a public meeting for this technology. Add one, or "
                "give an override_reason."]
    if errors:
        raise Invalid("The review cannot be scheduled as asked; see errors.", errors=errors)
    return assessment


def _meetings_json(meetings: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    # Every meeting gets a stable id, kept across reschedules when the client sends it back.
    return [{**meeting, "id": meeting.get("id") or new_id("mtg"),
             "starts_at": _iso(meeting["starts_at"]), "ends_at": _iso(meeting.get("ends_at"))}
            for meeting in meetings]


def schedule_review(
    session: Session, principal: Principal, technology: Technology, fields: Mapping[str, Any],
    *, now: datetime,
) -> Review:
    """Schedule the public review of a submitted technology (it becomes ``in_review``)."""
    if technology.status != Status.SUBMITTED.value:
        raise Conflict(
            f"This technology is {technology.status!r}; a review can be scheduled only while "
            "it is 'submitted' (and has no other review under way).",
            current_status=technology.status, allowed_statuses=[Status.SUBMITTED.value])
    meetings = fields.get("meetings") or []
    override = (fields.get("override_reason") or "").strip() or None
    assessment = _check_period(session, technology, fields["comment_opens_at"],
                               fields["comment_closes_at"], meetings, override, now)
    review = Review(
        id=new_id("rev"), technology_id=technology.id,
        comment_opens_at=fields["comment_opens_at"], comment_closes_at=fields["comment_closes_at"],
        meetings=_meetings_json(meetings), override_reason=override,
        assessment_id=assessment.id if assessment else None,
        created_by=principal.token_id, created_at=now, updated_at=now,
    )
    technology.status = Status.IN_REVIEW.value
    technology.updated_at = now
    session.add_all([review, technology])
    session.flush()
    _append(session, review, "review.scheduled", now)
    return review


def update_review(
    session: Session, review: Review, fields: Mapping[str, Any], *, now: datetime
) -> Review:
    """Move dates before opening, or extend the closing time while open (with a reason)."""
    technology = session.get(Technology, review.technology_id)
    assert technology is not None
    if review.status == ReviewStatus.SCHEDULED.value:
        if "reason" in fields:
            raise Invalid("The review is not open yet; see errors.", errors={"reason": [
                "A reason goes with extending an open comment period. Before it opens, "
                "move the dates (and give override_reason if the period is short)."]})
        previous = {"comment_opens_at": _iso(review.comment_opens_at),
                    "comment_closes_at": _iso(review.comment_closes_at)}
        opens_at = fields.get("comment_opens_at", review.comment_opens_at)
        closes_at = fields.get("comment_closes_at", review.comment_closes_at)
        meetings = fields["meetings"] if "meetings" in fields else _meetings_from_json(review)
        override = review.override_reason
        if "override_reason" in fields:
            override = (fields["override_reason"] or "").strip() or None
        stored_meetings = _same_meetings(review.meetings, meetings)
        if (opens_at, closes_at, override) == (
                review.comment_opens_at, review.comment_closes_at, review.override_reason
        ) and stored_meetings == review.meetings:
            return review  # nothing changes: no reschedule to announce
        _check_period(session, technology, opens_at, closes_at, meetings, override, now,
                      opens_given="comment_opens_at" in fields)
        review.comment_opens_at, review.comment_closes_at = opens_at, closes_at
        review.meetings = stored_meetings
        review.override_reason = override
        review.updated_at = now
        session.add(review)
        session.flush()
        _append(session, review, "review.rescheduled", now, previous=previous)
        return review
    if review.status == ReviewStatus.OPEN.value:
        if not takes_comments(review.status, review.comment_closes_at, now):
            raise _closing_passed(review)
        return _extend(session, review, fields, now=now)
    raise Conflict(
        f"This review is {review.status!r}; dates can be moved only while 'scheduled', and "
        "the closing time extended only while 'open'.",
        current_status=review.status, allowed_statuses=["scheduled", "open"])


def _same_meetings(stored: list[dict[str, Any]], meetings: Sequence[Mapping[str, Any]]
                   ) -> list[dict[str, Any]]:
    """The meetings to store: the stored ones themselves when ``meetings`` are the same
    (a meeting sent back without its id counts as the same), so that resending them is
    not a change and keeps their ids; otherwise ``meetings``, each with an id."""
    given = _meetings_json(meetings)

    def same(sent: Mapping[str, Any], new: dict[str, Any], old: dict[str, Any]) -> bool:
        return ((not sent.get("id") or sent["id"] == old.get("id"))
                and {k: v for k, v in new.items() if k != "id"}
                == {k: v for k, v in old.items() if k != "id"})

    if len(given) == len(stored) and all(
            same(*trio) for trio in zip(meetings, given, stored, strict=True)):
        return stored
    return given


def _closing_passed(review: Review) -> Conflict:
    """The answer to a change of an open period whose closing time has passed, before the
    worker closed it: comments are refused already, and its close is on its way."""
    return Conflict(
        f"This comment period ended at {_iso(review.comment_closes_at)}; it is being closed "
        "and can no longer be extended or cancelled.", current_status=review.status)


def _meetings_from_json(review: Review) -> list[dict[str, Any]]:
    return [{**m, "starts_at": datetime.fromisoformat(m["starts_at"]),
             "ends_at": datetime.fromisoformat(m["ends_at"]) if m.get("ends_at") else None}
            for m in review.meetings]


def _extend(session: Session, review: Review, fields: Mapping[str, Any], *,
            now: datetime) -> Review:
    errors: dict[str, list[str]] = {}
    not_allowed = sorted(set(fields) - {"comment_closes_at", "reason"})
    for name in not_allowed:
        errors[name] = ["While the comment period is open only comment_closes_at can change."]
    new_close = fields.get("comment_closes_at")
    reason = (fields.get("reason") or "").strip()
    if new_close is None:
        errors["comment_closes_at"] = ["Give the new, later closing time."]
    elif new_close <= review.comment_closes_at:
        errors["comment_closes_at"] = [
            "An open comment period can only be extended: the new closing time must be later "
            f"than {_iso(review.comment_closes_at)}."]
    if not reason:
        errors["reason"] = ["Say why the period is extended; the reason is public."]
    if errors:
        raise Invalid("The extension is not valid; see errors.", errors=errors)
    assert new_close is not None
    extension = {"previous_closes_at": _iso(review.comment_closes_at),
                 "new_closes_at": _iso(new_close), "reason": reason, "extended_at": _iso(now)}
    review.extensions = [*review.extensions, extension]
    review.comment_closes_at = new_close
    # The 24-hour notice belongs to a closing time; a new closing time earns a new notice.
    review.closing_soon_sent_at = None
    review.updated_at = now
    session.add(review)
    session.flush()
    _append(session, review, "comment_period.extended", now,
            extension={k: extension[k] for k in ("previous_closes_at", "new_closes_at", "reason")})
    return review


def cancel_review(session: Session, review: Review, *, reason: str | None,
                  now: datetime) -> Review:
    """Cancel before closing; the technology goes back to ``submitted``."""
    if review.status not in (ReviewStatus.SCHEDULED.value, ReviewStatus.OPEN.value):
        raise Conflict(
            f"This review is {review.status!r}; it can be cancelled only before its comment "
            "period closes ('scheduled' or 'open').",
            current_status=review.status, allowed_statuses=["scheduled", "open"])
    if (review.status == ReviewStatus.OPEN.value
            and not takes_comments(review.status, review.comment_closes_at, now)):
        raise _closing_passed(review)
    technology = session.get(Technology, review.technology_id)
    assert technology is not None
    _cancel(session, review, reason=reason, now=now)
    if technology.status == Status.IN_REVIEW.value:
        technology.status = Status.SUBMITTED.value
        technology.updated_at = now
        session.add(technology)
        session.flush()
    return review


def _cancel(session: Session, review: Review, *, reason: str | None, now: datetime) -> None:
    review.status = ReviewStatus.CANCELLED.value
    review.cancelled_at = now
    review.cancel_reason = reason
    review.updated_at = now
    session.add(review)
    session.flush()
    _append(session, review, "review.cancelled", now, reason=reason)


def cancel_reviews_of_withdrawn(session: Session, technology: Technology, *,
                                now: datetime) -> None:
    """Cancel any review of a withdrawn technology that has not been decided."""
    for review in session.execute(
        select(Review).where(col(Review.technology_id) == technology.id,
                             col(Review.status).in_([s.value for s in ACTIVE]))
    ).scalars():
        _cancel(session, review, reason="The department withdrew the technology.", now=now)


def decide_review(session: Session, review: Review, fields: Mapping[str, Any], *,
                  now: datetime) -> Review:
    """Record the decision after the period closed; the technology's status follows.

    A period whose closing time has passed but which the worker has not closed yet is closed
    here first, by the worker's own conditional update, so the log still reads opened,
    closed, decided, and a worker racing this request closes it (and announces it) once.
    """
    if (review.status == ReviewStatus.OPEN.value
            and not takes_comments(review.status, review.comment_closes_at, now)):
        _close_due(session, review, now=now)
    if review.status != ReviewStatus.CLOSED.value:
        when = ("its comment period has not closed yet" if review.status in ("scheduled", "open")
                else f"it is {review.status!r}")
        raise Conflict(f"This review cannot be decided: {when}. A decision comes after the "
                       "comment period closes.",
                       current_status=review.status, allowed_statuses=["closed"])
    outcome = fields["outcome"]
    conditions = (fields.get("conditions") or "").strip() or None
    if outcome == "approved_with_conditions" and not conditions:
        raise Invalid("Conditions are required.", errors={
            "conditions": ["An approval with conditions must state the conditions."]})
    technology = session.get(Technology, review.technology_id)
    assert technology is not None
    review.status = ReviewStatus.DECIDED.value
    review.outcome = outcome
    review.rationale = fields["rationale"].strip()
    review.conditions = conditions
    review.decided_at = now
    review.updated_at = now
    technology.status = DECISION_STATUS[outcome].value
    technology.decided_at = now
    technology.updated_at = now
    technology.next_review_due = (
        _a_year_after(now.date()) if outcome != "rejected" else None)
    session.add_all([review, technology])
    session.flush()
    _append(session, review, "review.decided", now, decision=_decision(review),
            technology=snapshot(session, technology))
    return review


def _a_year_after(day: date) -> date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)


# --- timed transitions (the worker) ---------------------------------------------------------


def _transition_due(session: Session, conditions: Sequence[Any], values: Mapping[str, Any],
                    event_type: str, now: datetime) -> list[str]:
    """Apply ``values`` to every review matching ``conditions`` (``update_each``: once,
    however many workers race) and append ``event_type`` for each review this caller won."""
    done = update_each(session, Review, conditions, values)
    for review_id in done:
        review = session.get(Review, review_id, populate_existing=True)
        assert review is not None
        _append(session, review, event_type, now)
    return done


def open_due_comment_periods(session: Session, *, now: datetime) -> list[str]:
    """Open every scheduled period whose time has come; returns the ids opened."""
    return _transition_due(
        session,
        (col(Review.status) == ReviewStatus.SCHEDULED.value, col(Review.comment_opens_at) <= now),
        {"status": ReviewStatus.OPEN.value, "opened_at": now, "updated_at": now},
        "comment_period.opened", now)


def send_closing_soon_notices(session: Session, *, now: datetime) -> list[str]:
    """Announce, once per closing time, the periods that close within 24 hours."""
    return _transition_due(
        session,
        (col(Review.status) == ReviewStatus.OPEN.value,
         col(Review.closing_soon_sent_at).is_(None),
         col(Review.comment_closes_at) <= now + CLOSING_SOON,
         col(Review.comment_closes_at) > now),
        {"closing_soon_sent_at": now},
        "comment_period.closing_soon", now)


def _closing_due(now: datetime) -> tuple[Any, ...]:
    return (col(Review.status) == ReviewStatus.OPEN.value, col(Review.comment_closes_at) <= now)


def _closed_values(now: datetime) -> dict[str, Any]:
    return {"status": ReviewStatus.CLOSED.value, "closed_at": now, "updated_at": now}


def close_due_comment_periods(session: Session, *, now: datetime) -> list[str]:
    """Close every open period whose closing time has passed; returns the ids closed."""
    return _transition_due(session, _closing_due(now), _closed_values(now),
                           "comment_period.closed", now)


def _close_due(session: Session, review: Review, *, now: datetime) -> None:
    """Close this one review if its closing time has passed. The caller holds the row (FOR
    UPDATE, or SQLite's one writer), so no worker closes it meanwhile; the update refreshes
    ``review`` itself (the same object in the session)."""
    _transition_due(session, (col(Review.id) == review.id, *_closing_due(now)),
                    _closed_values(now), "comment_period.closed", now)


def upcoming_transition_times(session: Session, *, now: datetime) -> list[datetime]:
    """When the next opens, closing notices and closes fall due (for precise wake-ups)."""
    times: list[datetime] = []
    for review in session.execute(
        select(Review).where(col(Review.status).in_(
            [ReviewStatus.SCHEDULED.value, ReviewStatus.OPEN.value]))
    ).scalars():
        if review.status == ReviewStatus.SCHEDULED.value:
            times.append(review.comment_opens_at)
        else:
            if review.closing_soon_sent_at is None:
                times.append(review.comment_closes_at - CLOSING_SOON)
            times.append(review.comment_closes_at)
    return sorted(t for t in times if t > now)
