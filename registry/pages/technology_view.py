"""Everything the technology page shows: record, findings, reviews, comments, timeline."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from registry.api import decode_cursor, encode_cursor
from registry.assessments.models import Assessment
from registry.assessments.services import latest_assessment_dict
from registry.comments.services import list_comments
from registry.comments.summaries import review_summary
from registry.departments.models import Department
from registry.errors import Invalid
from registry.events.catalog import EVENT_TYPES
from registry.events.services import subject_events
from registry.pages import present
from registry.pages.comment_form import CommentForm
from registry.pages.queries import policy_titles
from registry.reviews.models import Review, ReviewStatus
from registry.reviews.services import reviews_for_technology
from registry.technologies.models import Technology

COMMENTS_PER_PAGE = 20
#: A summary counted longer ago than this says when (``registry.comments.summaries``).
COUNTED_EARLIER = timedelta(seconds=2)
TIMELINE_LENGTH = 50
#: The timeline tells the record's story; single comments would drown it (they are listed
#: in full under the review instead).
TIMELINE_TYPES = tuple(name for name, kind in EVENT_TYPES.items()
                       if kind.public and not name.startswith("comment."))
#: Reviews whose comments can exist (a scheduled one has none yet).
_HAS_COMMENTS = {ReviewStatus.OPEN.value, ReviewStatus.CLOSED.value, ReviewStatus.DECIDED.value,
                 ReviewStatus.CANCELLED.value}


def technology_context(session: Session, technology: Technology, *, now: datetime,
                       review_id: str | None = None, comments_cursor: str | None = None,
                       form: CommentForm | None = None) -> dict[str, Any]:
    """The template context of ``/technologies/<id>``."""
    department = session.get(Department, technology.department_id)
    assessment = latest_assessment_dict(session, technology)
    reviews = reviews_for_technology(session, technology)
    open_review = next((r for r in reviews if r["status"] == ReviewStatus.OPEN.value
                        and now < r["comment_closes_at"]), None)
    context: dict[str, Any] = {
        "technology": technology,
        "department": department,
        "assessment": assessment,
        "findings": (present.group_findings(assessment["findings"], policy_titles(session))
                     if assessment else []),
        "finding_counts": present.outcome_counts(assessment["findings"]) if assessment else {},
        "reviews": reviews,
        "open_review": open_review,
        "form": form or CommentForm(),
        "timeline": [
            (event, present.describe_event(event.type, event.data))
            for event in subject_events(session, _subjects(session, technology, reviews),
                                        types=TIMELINE_TYPES, limit=TIMELINE_LENGTH)
        ],
    }
    context.update(_comments(session, reviews, review_id, comments_cursor, now=now))
    return context


def _subjects(session: Session, technology: Technology, reviews: list[dict[str, Any]]
              ) -> list[tuple[str, str]]:
    """What a technology's timeline tells of: itself, its reviews and its assessments (the
    subjects of every timeline event with its ``technology_id``)."""
    assessments = session.execute(
        select(col(Assessment.id)).where(col(Assessment.technology_id) == technology.id)
    ).scalars()
    return [("technology", technology.id), *(("review", review["id"]) for review in reviews),
            *(("assessment", assessment_id) for assessment_id in assessments)]


def _comments(session: Session, reviews: list[dict[str, Any]], review_id: str | None,
              cursor: str | None, *, now: datetime) -> dict[str, Any]:
    """The published comments of one review (the newest with comments unless one is asked
    for), 20 to a page, with its summary."""
    candidates = [r for r in reviews if r["status"] in _HAS_COMMENTS]
    chosen = next((r for r in candidates if r["id"] == review_id), None)
    if chosen is None and candidates:
        chosen = next((r for r in candidates if r["status"] != ReviewStatus.CANCELLED.value),
                      candidates[0])
    if chosen is None:
        return {"comment_review": None, "comments": [], "next_comments": None,
                "comment_summary": None, "first_comments_page": True}
    review = session.get(Review, chosen["id"])
    assert review is not None
    try:
        after = decode_cursor(cursor, str)
    except Invalid:
        after = None  # a mangled link shows the first page rather than an error
    items = list_comments(session, review, after=after, limit=COMMENTS_PER_PAGE + 1)
    shown = items[:COMMENTS_PER_PAGE]
    more = len(items) > COMMENTS_PER_PAGE
    return {
        "comment_review": chosen,
        "comments": shown,
        "next_comments": encode_cursor(shown[-1].id) if more and shown else None,
        "comment_summary": _chart(review_summary(session, review), now=now),
        "first_comments_page": after is None,
    }


def _chart(counts: dict[str, Any], *, now: datetime) -> dict[str, Any]:
    """The summary with bar geometry for the inline SVG (so the template does no maths),
    and when it was counted if that was not just now (a review with very many comments)."""
    positions = counts["by_position"]
    top = max(positions.values(), default=0) or 1
    bars = [
        {"key": key, "label": present.POSITION_LABELS[key], "count": positions.get(key, 0),
         "width": round(180 * positions.get(key, 0) / top), "y": index * 28}
        for index, key in enumerate(("support", "oppose", "neutral", "unspecified"))
    ]
    counted_at = counts["counted_at"]
    earlier = counted_at if now - counted_at >= COUNTED_EARLIER else None
    return {**counts, "bars": bars, "height": len(bars) * 28, "counted_earlier": earlier}
