"""The technology page's timeline: the technology's own events, its reviews' and its
assessments', newest first, with no comments and nothing of another technology."""

from __future__ import annotations

from typing import Any

from registry.database import transaction
from registry.events.services import list_events
from registry.pages.technology_view import TIMELINE_LENGTH, TIMELINE_TYPES, technology_context
from registry.technologies.models import Technology


def timeline(app, clock, technology_id: str) -> list[tuple[int, str]]:
    with app.app_context(), transaction(app) as session:
        technology = session.get(Technology, technology_id)
        assert technology is not None
        context = technology_context(session, technology, now=clock.now())
        return [(event.seq, event.type) for event, _text in context["timeline"]]


def by_technology(app, technology_id: str) -> list[tuple[int, str]]:
    """What the timeline held when it was read by technology and type (the oracle)."""
    with app.app_context(), transaction(app) as session:
        return [(event.seq, event.type) for event in list_events(
            session, technology_id=technology_id, types=TIMELINE_TYPES, newest_first=True,
            limit=TIMELINE_LENGTH)]


def test_the_timeline_gathers_every_subject_of_the_technology_newest_first(
        app, client, clock, token, open_review, schedule_review, add_comments) -> None:
    technology, review = open_review()
    other, _other_review = open_review(name="Gunshot detection")
    reviewer = token("reviewer")
    add_comments(review["id"], ["Keep plates 30 days.", "No sharing with ICE."])
    # A second assessment, and a second review after the first is cancelled.
    assert client.post(f"/api/v1/technologies/{technology['id']}/assessments",
                       headers=reviewer).status_code == 201
    cancelled = client.post(f"/api/v1/reviews/{review['id']}/cancel", headers=reviewer,
                            json={"reason": "The vendor changed the contract."})
    assert cancelled.status_code == 200, cancelled.get_json()
    second = schedule_review(technology["id"])
    assert second["status"] == "scheduled"
    shown = timeline(app, clock, technology["id"])
    assert shown == by_technology(app, technology["id"])
    assert [seq for seq, _type in shown] == sorted((seq for seq, _type in shown), reverse=True)
    types = [event_type for _seq, event_type in shown]
    assert types[0] == "review.scheduled" and types.count("review.scheduled") == 2
    assert types.count("assessment.completed") == 2
    assert {"technology.submitted", "comment_period.opened", "review.cancelled"} <= set(types)
    assert not any(event_type.startswith("comment.") for event_type in types)
    # Nothing of the other technology.
    assert set(shown).isdisjoint(timeline(app, clock, other["id"]))


def test_the_timeline_keeps_the_newest_events_when_there_are_more(app, client, clock, token,
                                                                   open_review, monkeypatch
                                                                   ) -> None:
    monkeypatch.setattr("registry.pages.technology_view.TIMELINE_LENGTH", 3)
    technology, _review = open_review()
    reviewer = token("reviewer")
    for _ in range(2):
        assert client.post(f"/api/v1/technologies/{technology['id']}/assessments",
                           headers=reviewer).status_code == 201
    shown = timeline(app, clock, technology["id"])
    everything: list[Any] = []
    with app.app_context(), transaction(app) as session:
        everything = [(event.seq, event.type) for event in list_events(
            session, technology_id=technology["id"], types=TIMELINE_TYPES, newest_first=True,
            limit=50)]
    assert len(everything) > 3
    assert shown == everything[:3]
