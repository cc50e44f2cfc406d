"""The sample city of ``daylight run --demo``."""

from __future__ import annotations

from collections import Counter

from registry.demo import load_demo


def test_the_demo_loads_once_with_a_realistic_city(app, client):
    assert load_demo(app) is True
    assert load_demo(app) is False

    technologies = client.get("/api/v1/technologies?limit=200").get_json()["items"]
    assert len(technologies) >= 8
    assert len({t["department"] for t in technologies}) >= 3
    assert all(t["risk_tier"] for t in technologies)  # every one was assessed
    names = " ".join(t["name"].lower() for t in technologies)
    for kind in ("licence-plate", "camera", "gunshot", "drone", "social-media",
                 "face-recognition", "traffic", "streetlight"):
        assert kind in names, kind

    reviews = client.get("/api/v1/reviews?limit=200").get_json()["items"]
    assert Counter(r["status"] for r in reviews) == {"open": 1, "scheduled": 1, "decided": 1}
    open_review = next(r for r in reviews if r["status"] == "open")
    summary = client.get(f"/api/v1/reviews/{open_review['id']}/comments/summary").get_json()
    assert summary["total"] >= 6
    assert summary["form_letters"] and summary["form_letters"][0]["count"] >= 2

    home = client.get("/").get_data(as_text=True)
    assert open_review["technology"]["name"] in home
    page = client.get(f"/technologies/{open_review['technology']['id']}").get_data(as_text=True)
    assert 'id="comment-form"' in page and "Extended" in page


def test_the_demo_timeline_reads_in_order(app, client):
    load_demo(app)
    events = client.get("/api/v1/events?limit=200").get_json()["items"]
    stamps = [e["timestamp"] for e in events if e["type"] != "policy.published"]
    assert stamps == sorted(stamps)
    types = {e["type"] for e in events}
    assert {"technology.submitted", "assessment.completed", "review.scheduled",
            "comment_period.opened", "comment_period.extended", "comment_period.closing_soon",
            "comment_period.closed", "comment.published", "review.decided"} <= types


def test_the_demo_does_not_mix_into_an_existing_registry(app, make_technology):
    make_technology()
    assert load_demo(app) is False
