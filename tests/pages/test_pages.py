"""The resident pages: what a resident sees on each, in plain language and the city's time."""

from __future__ import annotations

from datetime import timedelta

import pytest

from registry.worker.jobs import run_due_transitions


def text(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def test_home_lists_open_upcoming_decided_and_unapproved(app, client, clock, token,
                                                         make_technology, open_review,
                                                         schedule_review):
    opened, _ = open_review(name="Licence-plate readers")
    decided = make_technology(submit=True, name="Camera network", in_use=False)
    review = schedule_review(decided["id"], days=46)
    upcoming = make_technology(submit=True, name="Gunshot detectors", in_use=False)
    clock.advance(days=1)
    run_due_transitions(app, clock)
    schedule_review(upcoming["id"], opens_in=timedelta(days=60))
    clock.advance(days=47)
    run_due_transitions(app, clock)
    response = client.post(f"/api/v1/reviews/{review['id']}/decision", headers=token("reviewer"),
                           json={"outcome": "rejected", "rationale": "Too intrusive."})
    assert response.status_code == 200, response.get_json()
    waiting = make_technology(submit=True, name="Streetlight sensors", in_use=True)

    page = text(client.get("/"))
    open_part, rest = page.split('id="upcoming-h"')
    upcoming_part, rest = rest.split('id="decided-h"')
    decided_part, unapproved_part = rest.split('id="unapproved-h"')
    # The first review closed with the decided one; nothing is open now.
    assert "No comment period is open right now" in open_part
    assert "Gunshot detectors" in upcoming_part
    assert "Camera network" in decided_part and "Rejected" in decided_part
    assert "Streetlight sensors" in unapproved_part
    assert opened["name"] in unapproved_part  # in use, still no approved policy
    assert "Camera network" not in unapproved_part
    assert f'href="/technologies/{waiting["id"]}"' in unapproved_part


def test_open_comment_period_is_on_the_home_page_with_its_closing_time(client, open_review):
    technology, review = open_review()
    page = text(client.get("/"))
    open_part = page.split('id="upcoming-h"')[0]
    assert technology["name"] in open_part
    # 2026-03-02 10:00 UTC + 46 days = 17 April 2026 10:00 UTC = 3:00 am PDT.
    assert "Comments close" in open_part and "Friday 17 April 2026, 3:00 am PDT" in open_part


def test_technology_page_explains_the_record_in_plain_language(client, open_review):
    technology, review = open_review()
    page = text(client.get(f"/technologies/{technology['id']}"))
    assert "<h1>Automated licence-plate readers</h1>" in page
    # Vocabulary labels, never the machine values.
    assert "Vehicle licence plates" in page and "licence_plates" not in page
    assert "Other local or regional police agencies" in page
    assert "30 days" in page and "120,000" in page
    assert "Downtown, Eastside" in page
    # Findings, grouped by policy and principle.
    assert "How it measures up to the city's policies" in page
    assert "<h3>Privacy and civil liberties</h3>" in page
    assert "<dt>Retention</dt>" in page
    assert "Does the record say what the technology is for?" in page
    # The review, its meeting and the timeline, in the city's zone.
    assert f'id="review-{review["id"]}"' in page
    assert "Central Library, Room 2" in page and "English and Spanish" in page
    assert "Monday 2 March 2026, 2:00 am PST" in page  # opens 10:00 UTC
    assert "Police Department submitted Automated licence-plate readers" in page
    assert "The comment period on Automated licence-plate readers opened" in page
    assert 'id="comment-form"' in page


def test_technology_page_shows_extensions_and_decisions(app, client, clock, token, open_review):
    technology, review = open_review()
    reviewer = token("reviewer")
    response = client.patch(f"/api/v1/reviews/{review['id']}", headers=reviewer, json={
        "comment_closes_at": "2026-05-01T17:00:00Z", "reason": "Asked for by residents."})
    assert response.status_code == 200, response.get_json()
    page = text(client.get(f"/technologies/{technology['id']}"))
    assert "Extended" in page and "Asked for by residents." in page
    assert "Friday 1 May 2026, 10:00 am PDT" in page
    clock.advance(days=61)
    run_due_transitions(app, clock)
    client.post(f"/api/v1/reviews/{review['id']}/decision", headers=reviewer, json={
        "outcome": "approved_with_conditions", "rationale": "Useful for stolen cars.",
        "conditions": "Delete reads after 7 days."})
    page = text(client.get(f"/technologies/{technology['id']}"))
    assert "Approved with conditions" in page and "Delete reads after 7 days." in page
    assert 'id="comment-form"' not in page  # closed: no form


def test_search_and_filters_narrow_the_list(client, department, token, make_technology):
    make_technology(submit=True)
    make_technology(submit=True, name="Emergency drones", purpose="Search for missing people.",
                    data_collected=["video"], capabilities=["aerial_recording"], in_use=False,
                    vendor="SkyAid", description="Four camera drones.")
    department("transportation", "Department of Transportation")
    make_technology(submit=True, headers=token("staff", department="transportation"),
                    department="transportation", name="Traffic cameras", in_use=True,
                    data_collected=["video"], vendor="Signalwise",
                    description="Cameras at junctions.", purpose="Retime signals.")

    def names(**query: str) -> list[str]:
        page = text(client.get("/technologies", query_string=query))
        return [name for name in ("Automated licence-plate readers", "Emergency drones",
                                  "Traffic cameras") if f">{name}</a>" in page]

    assert len(names()) == 3
    assert names(q="missing people") == ["Emergency drones"]
    assert names(q="SKYAID") == ["Emergency drones"]
    assert names(department="transportation") == ["Traffic cameras"]
    assert names(data_collected="video") == ["Emergency drones", "Traffic cameras"]
    assert names(in_use="no") == ["Emergency drones"]
    assert names(in_use="yes", data_collected="video") == ["Traffic cameras"]
    assert names(status="in_review") == []
    assert names(status="submitted", q="plate") == ["Automated licence-plate readers"]
    assert names(q="nothing like this") == []
    # The form keeps what was asked, so the resident can refine it.
    page = text(client.get("/technologies", query_string={"q": "drones", "in_use": "no"}))
    assert 'value="drones"' in page and '<option value="no" selected>' in page


def test_the_list_is_paged(client, make_technology):
    for number in range(23):
        make_technology(submit=True, name=f"Camera {number:02}")
    first = text(client.get("/technologies"))
    assert first.count('<li>\n<h3><a href="/technologies/') == 20
    next_link = first.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    second = text(client.get(next_link.replace("&amp;", "&")))
    assert second.count('<li>\n<h3><a href="/technologies/') == 3
    assert "Camera 22" in second and "Camera 22" not in first
    assert client.get("/technologies?after=garbage").status_code == 400


def test_the_list_can_be_ordered_by_name_across_pages(client, make_technology):
    # Registered in an order that is not the alphabet's, some names alike but for case.
    names = [f"{letter} camera {number}" for number in range(4)
             for letter in ("delta", "Alpha", "charlie", "Bravo", "echo", "alpha")]
    for name in names[:23]:
        make_technology(submit=True, name=name)

    def listed(page: str) -> list[str]:
        return [item.split(">", 1)[1] for item in
                page.split('<li>\n<h3><a href="/technologies/')[1:]
                for item in [item.split("</a>", 1)[0]]]

    first = text(client.get("/technologies", query_string={"sort": "name"}))
    next_link = first.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    assert "sort=name" in next_link  # the order goes on to the next page
    second = text(client.get(next_link.replace("&amp;", "&")))
    shown = listed(first) + listed(second)
    assert len(listed(first)) == 20 and len(shown) == 23
    assert shown == sorted(names[:23], key=str.lower)  # case-blind, none twice or missed
    assert '<option value="name" selected>Name, A to Z</option>' in first
    assert "<p>23 technologies.</p>" in first and "<p>23 technologies.</p>" in second
    # The default stays the order of registration; an order the page does not offer is
    # ignored like an unknown filter value.
    assert listed(text(client.get("/technologies")))[:3] == names[:3]
    assert listed(text(client.get("/technologies?sort=price")))[:3] == names[:3]
    page = text(client.get("/technologies", query_string={"q": "echo camera 2"}))
    assert "<p>1 technology matches this search.</p>" in page


def test_a_drafts_id_as_the_name_order_cursor_places_nothing(client, make_technology):
    # A draft's id as the cursor would start the page after the draft's private name:
    # page by page, its name could be found between the public ones.
    from registry.api import encode_cursor

    for name in ("Alpha cameras", "Public cam", "Zzz public"):
        make_technology(submit=True, name=name)
    draft = make_technology(name="SECRETDRAFT Zeta")
    page = text(client.get("/technologies", query_string={
        "sort": "name", "after": encode_cursor(draft["id"])}))
    assert "Zzz public" not in page and "Public cam" not in page
    listed = client.get("/technologies", query_string={"sort": "name"})
    assert "Zzz public" in text(listed)


def test_drafts_never_appear_on_any_page(client, make_technology, open_review):
    open_review()
    draft = make_technology(name="Secret draft tool", vendor="Hush Inc.")
    for path in ("/", "/technologies", "/technologies?q=secret", "/feeds/events.atom",
                 "/feeds/reviews.ics", "/partners"):
        body = client.get(path).get_data(as_text=True)
        assert "Secret draft tool" not in body and draft["id"] not in body, path
    response = client.get(f"/technologies/{draft['id']}")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "Secret draft tool" not in response.get_data(as_text=True)


def test_pages_forbid_scripts_with_a_content_security_policy(client):
    policy = client.get("/").headers["Content-Security-Policy"]
    assert "script-src 'none'" in policy


@pytest.mark.parametrize("path", ["/nowhere", "/feeds/events.atom", "/api/v1/technologies",
                                  "/api/v1/nowhere", "/static/daylight.css"])
def test_every_answer_carries_the_security_headers(client, path):
    # Not only the pages: an unknown path's error page, the feeds, the API, static files.
    headers = client.get(path).headers
    assert "script-src 'none'" in headers["Content-Security-Policy"], path
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"


def test_the_api_docs_page_alone_may_run_its_scripts(client):
    headers = client.get("/api/v1/docs").headers
    assert "Content-Security-Policy" not in headers
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_unknown_pages_get_the_site_error_page(client):
    response = client.get("/technologies/tech_nope")
    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert '<html lang="en">' in body and "search the technologies" in body


def test_partners_page_lists_every_event_type_and_the_headers(client):
    from registry.events.catalog import EVENT_TYPES

    page = text(client.get("/partners"))
    for name in EVENT_TYPES:
        assert f"<code>{name}</code>" in page
    for header in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        assert header in page
    assert "from standardwebhooks.webhooks import Webhook" in page
    assert "kept in that log for 90 days" in " ".join(page.split())


def test_the_partners_example_verifies_a_real_daylight_delivery(monkeypatch):
    """Run the page's receiver against a body signed the way Daylight's sender signs."""
    import time

    from registry.pages.partners import VERIFY_EXAMPLE
    from webhooks.signing import new_secret, signature_header

    secret = new_secret()
    monkeypatch.setenv("DAYLIGHT_WEBHOOK_SECRET", secret)
    namespace: dict[str, object] = {"__name__": "partner_receiver"}
    exec(compile(VERIFY_EXAMPLE, "partners-example", "exec"), namespace)  # noqa: S102
    receiver = namespace["app"].test_client()  # type: ignore[attr-defined]
    body = ('{"type":"comment_period.opened","timestamp":"2026-03-02T17:00:00Z","data":'
            '{"review":{"technology":{"name":"Plate readers"},'
            '"comment_closes_at":"2026-04-16T17:00:00Z","url":"https://x.test/t#r"}}}')
    # The library refuses stale timestamps, so the signature must be of the real present.
    stamp = int(time.time())
    headers = {"webhook-id": "evt_1", "webhook-timestamp": str(stamp),
               "webhook-signature": signature_header([secret], "evt_1", stamp, body)}
    assert receiver.post("/daylight-webhook", data=body, headers=headers).status_code == 204
    assert receiver.post("/daylight-webhook", data=body, headers=headers).status_code == 204
    forged = {**headers, "webhook-signature": "v1,AAAA"}
    assert receiver.post("/daylight-webhook", data=body, headers=forged).status_code == 400

