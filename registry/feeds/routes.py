"""``/feeds/events.atom`` (every public event) and ``/feeds/reviews.ics`` (periods, meetings)."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from urllib.parse import quote, urlsplit

from feedgen.feed import FeedGenerator
from flask import Blueprint, Response, current_app, request
from icalendar import Calendar, Timezone
from icalendar import Event as CalendarEvent
from sqlalchemy import select
from sqlmodel import col

from registry.clock import now
from registry.database import db
from registry.events.services import list_events, public_data, withheld_comments
from registry.inputs import xml_safe
from registry.pages.present import (
    REVIEW_STATUS_LABELS,
    describe_event,
    event_link,
    format_datetime,
    languages,
    parse_time,
)
from registry.reviews.models import Review, ReviewStatus
from registry.technologies.models import Technology
from registry.urls import base_url, page_url, technology_page

blp = Blueprint("feeds", __name__, url_prefix="/feeds")

FEED_LENGTH = 100
CALENDAR_LENGTH = 500
#: Meetings are stored with a start time only; calendars need an end, so we assume two hours.
MEETING_LENGTH = timedelta(hours=2)


def _host() -> str:
    return urlsplit(base_url()).hostname or "daylight"


@blp.route("/events.atom")
def events() -> Response:
    """Public events, newest first, each linking to the page it is about.

    ``?technology=ID`` narrows the feed to one technology's events.
    """
    technology_id = request.args.get("technology") or None
    found = list_events(db(), technology_id=technology_id, newest_first=True,
                        limit=FEED_LENGTH)
    feed = FeedGenerator()
    self_url = page_url("/feeds/events.atom")
    if technology_id:
        self_url += f"?technology={quote(technology_id, safe='')}"
    feed.id(self_url)
    feed.title("Daylight: the city's surveillance technology registry")
    feed.subtitle("Every submission, assessment, review, comment period and decision.")
    feed.author({"name": "Daylight"})
    feed.link(href=self_url, rel="self", type="application/atom+xml")
    feed.link(href=page_url("/"), rel="alternate", type="text/html")
    feed.language("en")
    feed.updated(found[0].timestamp if found else now())
    withheld = withheld_comments(db(), found)
    # feedgen prepends by default; append keeps the log's newest-first order.
    for event in found:
        data = public_data(event, withheld)
        entry = feed.add_entry(order="append")
        entry.id(f"tag:{_host()},2026:{event.id}")
        # XML cannot hold a control character: one kept from a page's form, or stored
        # before JSON refused them, would fail the whole feed (registry.inputs).
        entry.title(xml_safe(describe_event(event.type, data)))
        entry.link(href=event_link(data) or page_url("/"), rel="alternate")
        entry.updated(event.timestamp)
        entry.published(event.timestamp)
        entry.category(term=event.type)
    return Response(feed.atom_str(pretty=False), mimetype="application/atom+xml")


@blp.route("/reviews.ics")
def reviews() -> Response:
    """Every comment period and public meeting as calendar events with stable UIDs.

    A cancelled review keeps its events, marked ``STATUS:CANCELLED``, so subscribed
    calendars drop them instead of keeping a stale copy.
    """
    rows = db().execute(
        select(Review, Technology).join(Technology, col(Technology.id) == col(Review.technology_id))
        .order_by(col(Review.comment_opens_at).desc()).limit(CALENDAR_LENGTH)
    ).all()
    calendar = Calendar()
    calendar.add("prodid", "-//Daylight//Public reviews//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", "Daylight: public reviews")
    zone = str(current_app.config["TIMEZONE"])
    calendar.add("x-wr-timezone", zone)
    # The city's zone, for clients that show it; and a calendar needs at least one
    # component (RFC 5545), which it then has with no review at all. Events are in UTC.
    calendar.add_component(_zone(zone))
    for review, technology in rows:
        for component in _review_events(review, technology):
            calendar.add_component(component)
    return Response(calendar.to_ical(), mimetype="text/calendar")


@cache
def _zone(name: str) -> Timezone:
    """The VTIMEZONE of the zone ``name`` (made once: it takes milliseconds)."""
    return Timezone.from_tzid(name)


def _review_events(review: Review, technology: Technology) -> list[CalendarEvent]:
    page = f"{technology_page(technology.id)}#review-{review.id}"
    cancelled = review.status == ReviewStatus.CANCELLED.value
    host = _host()
    period = _event(f"{review.id}-comment-period@{host}", review.updated_at, page, cancelled)
    period.add("summary", f"Public comment: {technology.name}")
    period.add("dtstart", review.comment_opens_at)
    period.add("dtend", review.comment_closes_at)
    period.add("description", (
        f"Comment on {technology.name} from {format_datetime(review.comment_opens_at)} to "
        f"{format_datetime(review.comment_closes_at)}. "
        f"Status: {REVIEW_STATUS_LABELS.get(review.status, review.status)}. {page}"))
    events = [period]
    uids = {str(period["uid"])}
    for index, meeting in enumerate(review.meetings):
        starts_at = parse_time(meeting["starts_at"])
        assert starts_at is not None
        ends_at = parse_time(meeting.get("ends_at")) or starts_at + MEETING_LENGTH
        # A meeting's id is the reviewer's free text, unique only within its review; one
        # stored before meetings had ids keeps its position as identity.
        identity = f"{review.id}-{meeting.get('id') or f'meeting-{index + 1}'}"
        uid, copies = f"{identity}@{host}", 1
        while uid in uids:  # a meeting named "comment-period", or older duplicate ids
            copies += 1
            uid = f"{identity}-{copies}@{host}"
        uids.add(uid)
        item = _event(uid, review.updated_at, meeting.get("online_url") or page, cancelled)
        item.add("summary", f"Public meeting: {technology.name}")
        item.add("dtstart", starts_at)
        item.add("dtend", ends_at)
        if meeting.get("place"):
            item.add("location", meeting["place"])
        details = [f"A public meeting on {technology.name}."]
        if meeting.get("online_url"):
            details.append(f"Join online: {meeting['online_url']}")
        if meeting.get("languages"):
            details.append(f"In {languages(meeting['languages'])}.")
        details.append(f"The record and how to comment: {page}")
        item.add("description", " ".join(details))
        events.append(item)
    return events


def _event(uid: str, stamp: datetime, url: str, cancelled: bool) -> CalendarEvent:
    event = CalendarEvent()
    event.add("uid", uid)
    event.add("dtstamp", stamp)
    event.add("last-modified", stamp)
    event.add("url", url)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    return event
