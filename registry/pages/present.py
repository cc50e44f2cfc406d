"""Plain-language presentation shared by pages and feeds: labels, local times, event wording."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app

from policies.vocabulary import label

STATUS_LABELS: Mapping[str, str] = {
    "draft": "Draft",
    "submitted": "Submitted, waiting for a public review",
    "in_review": "In public review",
    "approved": "Approved",
    "approved_with_conditions": "Approved with conditions",
    "rejected": "Rejected",
    "withdrawn": "Withdrawn by the department",
}
REVIEW_STATUS_LABELS: Mapping[str, str] = {
    "scheduled": "Scheduled",
    "open": "Open for comments",
    "closed": "Closed, waiting for a decision",
    "decided": "Decided",
    "cancelled": "Cancelled",
}
DECISION_LABELS: Mapping[str, str] = {
    "approved": "Approved",
    "approved_with_conditions": "Approved with conditions",
    "rejected": "Rejected",
}
FINDING_LABELS: Mapping[str, str] = {
    "pass": "Meets the policy",
    "concern": "Concern",
    "fail": "Does not meet the policy",
    "needs_information": "Needs more information",
}
RISK_LABELS: Mapping[str, str] = {"low": "Low risk", "medium": "Medium risk", "high": "High risk"}
POSITION_LABELS: Mapping[str, str] = {
    "support": "Support", "oppose": "Oppose", "neutral": "Neutral",
    "unspecified": "Did not say",
}


def city_zone() -> ZoneInfo:
    """The city's time zone (``DAYLIGHT_TIMEZONE``)."""
    return ZoneInfo(str(current_app.config["TIMEZONE"]))


def parse_time(value: datetime | str | None) -> datetime | None:
    """A datetime from an event's RFC 3339 string (or a datetime, passed through)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def local(value: datetime | str | None) -> datetime | None:
    """``value`` in the city's zone."""
    moment = parse_time(value)
    return moment.astimezone(city_zone()) if moment is not None else None


def format_datetime(value: datetime | str | None) -> str:
    """``Monday 16 March 2026, 5:00 pm PDT`` in the city's zone."""
    moment = local(value)
    if moment is None:
        return "not set"
    hour = moment.strftime("%I").lstrip("0")
    return (f"{moment:%A} {moment.day} {moment:%B %Y}, {hour}:{moment:%M} "
            f"{moment.strftime('%p').lower()} {moment.tzname()}")


def format_date(value: datetime | str | None) -> str:
    """``16 March 2026`` in the city's zone."""
    moment = local(value)
    return f"{moment.day} {moment:%B %Y}" if moment is not None else "not set"


def iso(value: datetime | str | None) -> str:
    """RFC 3339 for ``<time datetime=…>``."""
    moment = parse_time(value)
    return moment.isoformat() if moment is not None else ""


def iso_date(value: datetime | str | None) -> str:
    """The city-local calendar date, for ``<time datetime=…>`` beside a date."""
    moment = local(value)
    return moment.date().isoformat() if moment is not None else ""


def money(value: Decimal | float | None) -> str:
    """A yearly cost with thousands separators, or "Not stated"."""
    if value is None:
        return "Not stated"
    amount = Decimal(str(value))
    text = f"{amount:,.2f}"
    return text[:-3] if text.endswith(".00") else text


def labels(field: str, values: Iterable[str]) -> list[str]:
    """Plain-language labels of vocabulary values."""
    return [label(field, value) for value in values]


def retention(days: int | None) -> str:
    """How long data is kept, in words."""
    if days is None:
        return "Not stated"
    if days == 0:
        return "Not kept"
    return "1 day" if days == 1 else f"{days:,} days"


_LANGUAGES: Mapping[str, str] = {
    "en": "English", "es": "Spanish", "zh": "Chinese", "vi": "Vietnamese", "tl": "Tagalog",
    "ko": "Korean", "ar": "Arabic", "so": "Somali", "ru": "Russian", "fr": "French",
    "pt": "Portuguese", "am": "Amharic", "asl": "American Sign Language",
}


def languages(codes: Iterable[str]) -> str:
    """``["en", "es"]`` → ``English and Spanish`` (unknown codes are shown as given)."""
    names = [_LANGUAGES.get(code.lower(), code) for code in codes]
    return " and ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else "".join(names)


# --- events in plain language ----------------------------------------------------------------


def _name(data: Mapping[str, Any]) -> str:
    for key in ("technology", "review"):
        subject = data.get(key) or {}
        if key == "review":
            subject = subject.get("technology") or {}
        if subject.get("name"):
            return str(subject["name"])
    return "a technology"


def describe_event(type: str, data: Mapping[str, Any]) -> str:
    """One sentence saying what happened, for timelines and feeds (never the email: events
    carry none)."""
    name = _name(data)
    review = data.get("review") or {}
    opens = format_datetime(review.get("comment_opens_at"))
    closes = format_datetime(review.get("comment_closes_at"))
    if type == "technology.submitted":
        department = (data.get("technology") or {}).get("department") or {}
        return f"{department.get('name', 'A department')} submitted {name} for review."
    if type == "technology.updated":
        changed = ", ".join(f.replace("_", " ") for f in data.get("changed_fields") or [])
        return f"The record of {name} was updated ({changed})."
    if type == "technology.withdrawn":
        return f"The department withdrew {name}."
    if type == "assessment.completed":
        tier = (data.get("assessment") or {}).get("risk_tier")
        return (f"{name} was assessed against the city's policies: "
                f"{RISK_LABELS.get(tier or '', 'unrated').lower()}.")
    if type == "review.scheduled":
        return f"A public review of {name} was scheduled: comments from {opens} to {closes}."
    if type == "review.rescheduled":
        return f"The review of {name} was moved: comments now from {opens} to {closes}."
    if type == "review.cancelled":
        reason = data.get("reason")
        return f"The review of {name} was cancelled." + (f" Reason: {reason}" if reason else "")
    if type == "comment_period.opened":
        return f"The comment period on {name} opened. It closes {closes}."
    if type == "comment_period.extended":
        extension = data.get("extension") or {}
        return (f"The comment period on {name} was extended to "
                f"{format_datetime(extension.get('new_closes_at'))}. "
                f"Reason: {extension.get('reason', '')}")
    if type == "comment_period.closing_soon":
        return f"The comment period on {name} closes within 24 hours ({closes})."
    if type == "comment_period.closed":
        return f"The comment period on {name} closed."
    if type == "comment.published":
        who = (data.get("comment") or {}).get("display_name") or "A resident"
        return f"{who} commented on a review."
    if type == "comment.hidden":
        return f"A reviewer hid a comment. Reason: {data.get('reason', '')}"
    if type == "review.decided":
        outcome = (data.get("decision") or {}).get("outcome") or ""
        return f"Decision on {name}: {DECISION_LABELS.get(outcome, outcome).lower()}."
    if type == "technology.review_due":
        return f"{name} is due for its yearly review."
    if type == "policy.published":
        policy = data.get("policy") or {}
        return f"Version {policy.get('version')} of “{policy.get('title')}” was published."
    return type


def event_link(data: Mapping[str, Any]) -> str | None:
    """The page an event is about (its subject's ``url``)."""
    for key in ("comment", "review", "technology", "policy"):
        url = (data.get(key) or {}).get("url")
        if url:
            return str(url)
    return None


def group_findings(findings: Iterable[Mapping[str, Any]],
                   titles: Mapping[str, str]) -> list[tuple[str, list[tuple[str, list[Any]]]]]:
    """Findings as ``[(policy title, [(principle, [finding, …]), …]), …]``, in policy order."""
    grouped: dict[str, dict[str, list[Any]]] = {}
    for finding in findings:
        policy = titles.get(finding["policy"], finding["policy"])
        grouped.setdefault(policy, {}).setdefault(finding["principle"], []).append(finding)
    return [(policy, list(principles.items())) for policy, principles in grouped.items()]


def outcome_counts(findings: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """How many findings have each outcome, in a fixed order."""
    counts = dict.fromkeys(FINDING_LABELS, 0)
    for finding in findings:
        counts[finding["outcome"]] = counts.get(finding["outcome"], 0) + 1
    return counts
