"""The Atom feed of public events and the iCalendar of comment periods and meetings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import feedparser
from icalendar import Calendar


def test_the_atom_feed_lists_public_events_newest_first_with_links(client, open_review,
                                                                   post_form):
    technology, review = open_review()
    post_form(technology["id"], review["id"], body="A comment", email="feed@example.org")
    response = client.get("/feeds/events.atom")
    assert response.status_code == 200
    assert response.mimetype == "application/atom+xml"
    assert "feed@example.org" not in response.get_data(as_text=True)
    feed = feedparser.parse(response.get_data())
    assert not feed.bozo, feed.bozo_exception
    assert feed.feed.title.startswith("Daylight")
    types = [entry.tags[0].term for entry in feed.entries]
    assert types[:3] == ["comment.published", "comment_period.opened", "review.scheduled"]
    assert "technology.submitted" in types and "policy.published" in types
    page = f"http://daylight.test/technologies/{technology['id']}"
    opened = feed.entries[1]
    assert opened.link == f"{page}#review-{review['id']}"
    assert "The comment period on Automated licence-plate readers opened" in opened.title
    assert feed.entries[0].link.startswith(f"{page}/comments/cmt_")
    assert len({entry.id for entry in feed.entries}) == len(feed.entries)
    stamps = [entry.updated_parsed for entry in feed.entries]
    assert stamps == sorted(stamps, reverse=True)


def test_a_control_character_kept_from_the_form_leaves_the_feed_readable(
        app, client, open_review, post_form):
    # A resident's pasted text keeps an invisible control character on the page's form
    # (the API refuses it); XML cannot hold one, and it made the feed a 500 for everyone.
    from sqlalchemy import select
    from sqlmodel import Session

    from registry.comments.models import Comment
    from registry.database import engine

    technology, review = open_review()
    response = post_form(technology["id"], review["id"], body="Point one.\x0cPoint two.",
                         display_name="Bob\x01 Lee")
    assert response.status_code in (200, 303), response.get_data(as_text=True)[:300]
    with Session(engine(app)) as session:
        stored = session.execute(select(Comment)).scalars().one()
    assert (stored.display_name, stored.body) == ("Bob\x01 Lee", "Point one.\x0cPoint two.")
    response = client.get("/feeds/events.atom")
    assert response.status_code == 200
    feed = feedparser.parse(response.get_data())
    assert not feed.bozo, feed.bozo_exception
    assert feed.entries[0].title == "Bob Lee commented on a review."


def test_the_atom_feed_can_follow_one_technology(client, make_technology, open_review):
    technology, _ = open_review()
    other = make_technology(submit=True, name="Drones")
    feed = feedparser.parse(client.get(f"/feeds/events.atom?technology={technology['id']}")
                            .get_data())
    assert feed.entries and all(technology["id"] in entry.link for entry in feed.entries)
    assert not any(other["id"] in entry.link for entry in feed.entries)


def events_of(response) -> dict[str, dict]:
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    calendar = Calendar.from_ical(response.get_data())
    assert calendar["X-WR-TIMEZONE"] == "America/Los_Angeles"
    return {str(event["UID"]): event for event in calendar.walk("VEVENT")}


def test_the_calendar_has_each_comment_period_and_meeting_at_the_right_times(
        client, clock, token, open_review, make_technology, schedule_review):
    technology, review = open_review()
    later = make_technology(submit=True, name="Gunshot detectors")
    upcoming = schedule_review(later["id"], opens_in=timedelta(days=10), days=50,
                               meeting_in=timedelta(days=20, hours=8))
    events = events_of(client.get("/feeds/reviews.ics"))
    assert len(events) == 4
    period = events[f"{review['id']}-comment-period@daylight.test"]
    assert period["SUMMARY"] == "Public comment: Automated licence-plate readers"
    assert period.decoded("DTSTART") == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    assert period.decoded("DTEND") == datetime(2026, 4, 17, 10, 0, tzinfo=UTC)
    assert str(period["URL"]).endswith(f"/technologies/{technology['id']}#review-{review['id']}")
    assert period["STATUS"] == "CONFIRMED"
    meeting_id = upcoming["meetings"][0]["id"]
    meeting = events[f"{upcoming['id']}-{meeting_id}@daylight.test"]
    assert meeting["SUMMARY"] == "Public meeting: Gunshot detectors"
    # Scheduled at 11:00 UTC (the clock moved 2 hours while the first review opened).
    assert meeting.decoded("DTSTART") == datetime(2026, 4, 1, 19, 0, tzinfo=UTC)
    assert meeting.decoded("DTEND") == datetime(2026, 4, 1, 21, 0, tzinfo=UTC)
    assert meeting["LOCATION"] == "Central Library, Room 2"
    assert "English and Spanish" in str(meeting["DESCRIPTION"])
    upcoming_period = events[f"{upcoming['id']}-comment-period@daylight.test"]
    assert upcoming_period.decoded("DTSTART") == datetime(2026, 3, 12, 11, 0, tzinfo=UTC)


def test_calendar_uids_are_stable_and_a_cancelled_review_is_marked(client, token, open_review):
    _, review = open_review()
    first = events_of(client.get("/feeds/reviews.ics"))
    response = client.post(f"/api/v1/reviews/{review['id']}/cancel", headers=token("reviewer"),
                           json={"reason": "The vendor went out of business."})
    assert response.status_code == 200, response.get_json()
    second = events_of(client.get("/feeds/reviews.ics"))
    assert set(first) == set(second)
    assert all(event["STATUS"] == "CANCELLED" for event in second.values())
