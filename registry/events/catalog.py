"""The catalog of event types: what each means and what its ``data`` looks like.

The examples are the shape partners code against; ``tests/registry/test_event_catalog.py``
checks that every event the app really writes has the same top-level keys as its example.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_BASE = "https://daylight.example.gov"

_TECHNOLOGY: dict[str, Any] = {
    "id": "tech_01jd3k4m5n6p7q8r9s0t1v2w3x",
    "url": f"{_BASE}/technologies/tech_01jd3k4m5n6p7q8r9s0t1v2w3x",
    "api_url": f"{_BASE}/api/v1/technologies/tech_01jd3k4m5n6p7q8r9s0t1v2w3x",
    "name": "Automated licence-plate readers",
    "department": {"slug": "police", "name": "Police Department"},
    "status": "submitted",
    "vendor": "Example Vision Inc.",
    "purpose": "Find vehicles on a stolen-vehicle or Amber Alert list.",
    "in_use": True,
    "risk_tier": "high",
}

_REVIEW: dict[str, Any] = {
    "id": "rev_01jd3k4m5n6p7q8r9s0t1v2w3x",
    "url": f"{_BASE}/technologies/tech_01jd3k4m5n6p7q8r9s0t1v2w3x"
    "#review-rev_01jd3k4m5n6p7q8r9s0t1v2w3x",
    "api_url": f"{_BASE}/api/v1/reviews/rev_01jd3k4m5n6p7q8r9s0t1v2w3x",
    "status": "open",
    "technology": {
        "id": _TECHNOLOGY["id"], "name": _TECHNOLOGY["name"], "url": _TECHNOLOGY["url"],
        "department": _TECHNOLOGY["department"],
    },
    "comment_opens_at": "2026-03-02T17:00:00Z",
    "comment_closes_at": "2026-04-16T17:00:00Z",
    "meetings": [
        {
            "id": "mtg_01jd3k4m5n6p7q8r9s0t1v2w3x",
            "starts_at": "2026-03-20T01:00:00Z",
            "ends_at": "2026-03-20T03:00:00Z",
            "place": "Central Library, Room 2",
            "online_url": "https://meet.example.gov/daylight-alpr",
            "languages": ["en", "es"],
        }
    ],
    "override_reason": None,
    "comments_url": f"{_BASE}/api/v1/reviews/rev_01jd3k4m5n6p7q8r9s0t1v2w3x/comments",
}

_COMMENT: dict[str, Any] = {
    "id": "cmt_01jd3k4m5n6p7q8r9s0t1v2w3x",
    "review_id": _REVIEW["id"],
    "url": f"{_BASE}/technologies/tech_01jd3k4m5n6p7q8r9s0t1v2w3x"
    "/comments/cmt_01jd3k4m5n6p7q8r9s0t1v2w3x",
    "display_name": "Anonymous resident",
    "neighborhood": "Eastside",
    "position": "oppose",
    "body": "Please keep plate reads for days, not years.",
    "published_at": "2026-03-03T15:04:05Z",
}


@dataclass(frozen=True)
class EventType:
    """One kind of event."""

    description: str
    example: dict[str, Any]
    #: Whether the event enters the public log (``webhook.test`` goes only to one endpoint).
    public: bool = True
    subject: str = field(default="technology")


EVENT_TYPES: dict[str, EventType] = {
    "technology.submitted": EventType(
        "A department submitted a technology for review; its record is now public. It is "
        "assessed in the same moment: `risk_tier` is null here (on a first submission) and "
        "comes with the `assessment.completed` event that follows.",
        {"technology": {**_TECHNOLOGY, "status": "submitted", "risk_tier": None}},
    ),
    "technology.updated": EventType(
        "A submitted technology's record was edited; `changed_fields` names what changed.",
        {"technology": _TECHNOLOGY, "changed_fields": ["retention_days", "data_sharing"]},
    ),
    "technology.withdrawn": EventType(
        "The department withdrew the technology before a decision; any pending review ends.",
        {"technology": {**_TECHNOLOGY, "status": "withdrawn"}},
    ),
    "assessment.completed": EventType(
        "The technology was assessed against the city's active policies.",
        {
            "technology": _TECHNOLOGY,
            "assessment": {
                "id": "asm_01jd3k4m5n6p7q8r9s0t1v2w3x",
                "risk_tier": "high",
                "min_comment_days": 45,
                "meeting_required": True,
                "policy_versions": [
                    {"slug": "privacy", "version": 1},
                    {"slug": "equity", "version": 1},
                ],
                "outcome_counts": {"pass": 9, "concern": 4, "fail": 2, "needs_information": 3},
                "trigger": "submitted",
            },
        },
        subject="assessment",
    ),
    "review.scheduled": EventType(
        "A public review was scheduled, with its comment period and any meetings.",
        {"review": {**_REVIEW, "status": "scheduled"}},
        subject="review",
    ),
    "review.rescheduled": EventType(
        "The dates of a review that has not opened yet were moved.",
        {
            "review": {**_REVIEW, "status": "scheduled"},
            "previous": {
                "comment_opens_at": "2026-02-23T17:00:00Z",
                "comment_closes_at": "2026-04-09T17:00:00Z",
            },
        },
        subject="review",
    ),
    "review.cancelled": EventType(
        "A review was cancelled before its comment period closed.",
        {"review": {**_REVIEW, "status": "cancelled"}, "reason": "The department withdrew it."},
        subject="review",
    ),
    "comment_period.opened": EventType(
        "A comment period opened: residents can comment now.",
        {"review": _REVIEW},
        subject="review",
    ),
    "comment_period.extended": EventType(
        "An open comment period was extended to a later closing time.",
        {
            "review": _REVIEW,
            "extension": {
                "previous_closes_at": "2026-04-02T17:00:00Z",
                "new_closes_at": "2026-04-16T17:00:00Z",
                "reason": "Requested by the Community Surveillance Working Group.",
            },
        },
        subject="review",
    ),
    "comment_period.closing_soon": EventType(
        "A comment period closes in 24 hours.",
        {"review": _REVIEW},
        subject="review",
    ),
    "comment_period.closed": EventType(
        "A comment period closed; no more comments are accepted.",
        {"review": {**_REVIEW, "status": "closed"}},
        subject="review",
    ),
    "comment.published": EventType(
        "A resident's comment was published (never with its author's email). Once a "
        "reviewer hides it, the event log, the feed, retries and resends show this event "
        "without the comment's words, name, neighbourhood and position.",
        {"comment": _COMMENT, "review": {"id": _REVIEW["id"], "url": _REVIEW["url"]}},
        subject="comment",
    ),
    "comment.hidden": EventType(
        "A reviewer hid a published comment; the reason stays public. Please take the "
        "comment out of anything you show, as Daylight does.",
        {
            "comment": {"id": _COMMENT["id"], "review_id": _REVIEW["id"], "url": _COMMENT["url"]},
            "reason": "Contained a resident's home address.",
            "review": {"id": _REVIEW["id"], "url": _REVIEW["url"]},
        },
        subject="comment",
    ),
    "review.decided": EventType(
        "The decision on a review was recorded; the technology's status follows it.",
        {
            "review": {**_REVIEW, "status": "decided"},
            "decision": {
                "outcome": "approved_with_conditions",
                "rationale": "Approved for stolen-vehicle alerts only.",
                "conditions": "Delete plate reads that match no list after 30 days.",
                "decided_at": "2026-05-06T02:00:00Z",
            },
            "technology": {**_TECHNOLOGY, "status": "approved_with_conditions"},
        },
        subject="review",
    ),
    "technology.review_due": EventType(
        "An approved technology is due for its yearly review today (a year after its "
        "decision): the department reports on its use and the city reviews it again. "
        "Announced once per due date.",
        {"technology": {**_TECHNOLOGY, "status": "approved_with_conditions"},
         "next_review_due": "2027-05-06", "decided_at": "2026-05-06T02:00:00Z"},
    ),
    "policy.published": EventType(
        "A policy, or a new version of one, was published; earlier assessments may be out of date.",
        {
            "policy": {
                "slug": "privacy",
                "title": "Privacy policy for surveillance technology",
                "version": 2,
                "url": f"{_BASE}/api/v1/policies/privacy",
                "criteria_count": 11,
            },
            "outdated_assessments": 3,
        },
        subject="policy",
    ),
    "webhook.test": EventType(
        "Sent only to the endpoint that asked for it, to check it receives and verifies; "
        "never in the public log.",
        {"message": "This is a test from Daylight.",
         "endpoint_id": "we_01jd3k4m5n6p7q8r9s0t1v2w3x"},
        public=False,
        subject="webhook_endpoint",
    ),
}
