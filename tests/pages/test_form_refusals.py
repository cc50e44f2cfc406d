"""A refused comment form keeps what the resident typed, and the page's links still work.

Refusals from outside the view (an expired form, the rate limit, unstorable text, a
problem a service raised) and a period that closed while the resident wrote show the text
back; links on a page answered from the form's POST address lead somewhere; a comment's
``url`` finds it on whichever page of comments holds it.
"""

from __future__ import annotations

import html
import re
from datetime import timedelta
from urllib.parse import urljoin

import pytest
from sqlalchemy import select
from sqlmodel import col

from registry.comments.models import Comment
from registry.database import engine
from registry.worker.jobs import purge_personal_data, run_due_transitions
from tests.pages.conftest import csrf_token, form_key

TYPED = "An hour of careful thought about plate readers."


def form_url(technology_id: str, review_id: str) -> str:
    return f"/technologies/{technology_id}/reviews/{review_id}/comments"


def comment_form(page: str) -> str:
    """The comment form's section of a page (the form is shown again only while open)."""
    return page.split('id="comment-form"', 1)[1].split("</section>", 1)[0]


def summary(page: str) -> str:
    """The text of the form's error summary."""
    found = re.search(r'<div class="error-summary".*?</div>', page, re.S)
    assert found, "the page has no error summary"
    return re.sub(r"<[^>]+>", " ", found.group(0))


def published_total(client, review_id: str) -> int:
    return client.get(f"/api/v1/reviews/{review_id}/comments/summary").get_json()["total"]


# --- refused before the view: the form is shown again, as it was sent -----------------


def test_an_expired_form_is_shown_again_with_the_comment_and_a_fresh_token(
        app, client, open_review):
    technology, review = open_review()
    page = client.get(f"/technologies/{technology['id']}").get_data(as_text=True)
    data = {"csrf_token": csrf_token(page), "idempotency_key": form_key(page), "body": TYPED,
            "display_name": "Ana", "neighborhood": "Eastside", "position": "oppose"}
    # Another browser (or a lost session cookie): the token no longer matches. The browser
    # says the post came from this site's page (Sec-Fetch-Site), so the form comes back.
    stranger = app.test_client()
    refused = stranger.post(form_url(technology["id"], review["id"]), data=data,
                            headers={"Sec-Fetch-Site": "same-origin"})
    assert refused.status_code == 400
    assert refused.mimetype == "text/html"
    text = refused.get_data(as_text=True)
    form = comment_form(text)
    assert f">{TYPED}</textarea>" in form
    assert 'value="Ana"' in form and 'value="Eastside"' in form
    assert 'value="oppose" checked' in form
    assert "check your comment below and send it again" in summary(form).lower()
    assert published_total(client, review["id"]) == 0
    # The page's new token works: sent again from it, the comment is taken.
    again = stranger.post(form_url(technology["id"], review["id"]),
                          data={**data, "csrf_token": csrf_token(text)})
    assert again.status_code == 303
    assert published_total(client, review["id"]) == 1


@pytest.mark.parametrize("fetch_site", ["cross-site", None])
def test_a_post_from_another_site_is_not_made_a_one_click_comment(app, client, open_review,
                                                                  fetch_site):
    # Another site's page posts words of its choosing to this form from the resident's
    # browser (no token). Shown back in a filled form with a fresh token, one click would
    # send them in the resident's name; they are only shown, to copy.
    technology, review = open_review()
    forged = {"body": "I SUPPORT this surveillance.", "display_name": "Victim Name",
              "email": "attacker@evil.example", "position": "support",
              "idempotency_key": "attacker-chosen"}
    headers = {"Sec-Fetch-Site": fetch_site} if fetch_site else {}
    victim = app.test_client()
    refused = victim.post(form_url(technology["id"], review["id"]), data=forged,
                          headers=headers)
    assert refused.status_code == 400
    text = refused.get_data(as_text=True)
    form = comment_form(text)
    assert "did not come from this site&#39;s page" in summary(form)
    assert 'readonly>I SUPPORT this surveillance.</textarea>' in form
    assert "Victim Name" not in form and "attacker@evil.example" not in form
    assert 'value="support" checked' not in form
    body_field = form.split('<label for="body">')[1].split("</textarea>")[0]
    assert body_field.endswith(">")  # the form's own comment box is empty
    # Sending the page's form as it stands sends nothing.
    fields = {"csrf_token": csrf_token(text), "idempotency_key": form_key(text), "body": ""}
    sent = victim.post(form_url(technology["id"], review["id"]), data=fields)
    assert sent.status_code == 422
    assert published_total(client, review["id"]) == 0


def test_a_rate_limited_form_is_shown_again_saying_how_long_to_wait(app, client, open_review,
                                                                    post_form):
    app.config["COMMENT_RATE_LIMIT"] = "1 per minute"
    technology, review = open_review()
    assert post_form(technology["id"], review["id"], body="First.").status_code == 303
    refused = post_form(technology["id"], review["id"], body=TYPED, display_name="Ana")
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    form = comment_form(refused.get_data(as_text=True))
    assert f">{TYPED}</textarea>" in form and 'value="Ana"' in form
    assert "Wait 1 minute, then send it again" in summary(form)


def test_a_character_that_cannot_be_stored_is_named_and_taken_out(client, open_review,
                                                                  post_form):
    technology, review = open_review()
    refused = post_form(technology["id"], review["id"], body="Keep reads\x00 for days.",
                        display_name="Ana")
    assert refused.status_code == 400
    form = comment_form(refused.get_data(as_text=True))
    assert "“Your comment” held a character that cannot be stored" in summary(form)
    body_field = form.split('<label for="body">')[1].split("</textarea>")[0]
    assert 'id="body-error"' in body_field and ">Keep reads for days." in body_field
    assert 'value="Ana"' in form
    assert published_total(client, review["id"]) == 0


def test_a_refused_form_for_no_known_review_gets_the_error_page(app, client, open_review):
    technology, _ = open_review()
    refused = app.test_client().post(form_url(technology["id"], "rev_unknown"),
                                     data={"body": TYPED})
    assert refused.status_code == 400
    text = refused.get_data(as_text=True)
    assert "<h1>Bad Request</h1>" in text and 'id="comment-form"' not in text


# --- the period closed while the resident wrote ------------------------------------


def test_a_post_after_the_period_closed_says_so_and_shows_the_text_back(client, clock,
                                                                       open_review):
    technology, review = open_review()
    page = client.get(f"/technologies/{technology['id']}").get_data(as_text=True)
    clock.advance(days=60)
    # An invalid field too: the closed period is still the reason given.
    refused = client.post(form_url(technology["id"], review["id"]), data={
        "csrf_token": csrf_token(page), "idempotency_key": form_key(page), "body": TYPED,
        "email": "not an address"})
    assert refused.status_code == 409
    text = refused.get_data(as_text=True)
    assert "The comment period closed" in summary(text)
    assert "Enter an email address" not in text
    assert ('<label for="unsent-body">Your comment (not sent), so you can keep a copy</label>'
            in text)
    assert f'<textarea id="unsent-body" rows="8" readonly>{TYPED}</textarea>' in text


def test_a_post_to_a_cancelled_review_says_so_and_shows_the_text_back(client, token,
                                                                      open_review):
    technology, review = open_review()
    page = client.get(f"/technologies/{technology['id']}").get_data(as_text=True)
    response = client.post(f"/api/v1/reviews/{review['id']}/cancel", headers=token("reviewer"),
                           json={"reason": "The vendor went out of business."})
    assert response.status_code == 200, response.get_json()
    refused = client.post(form_url(technology["id"], review["id"]), data={
        "csrf_token": csrf_token(page), "idempotency_key": form_key(page), "body": TYPED})
    assert refused.status_code == 409
    text = refused.get_data(as_text=True)
    assert "This review was cancelled, so it takes no comments." in summary(text)
    assert f"readonly>{TYPED}</textarea>" in text


def test_a_form_sent_again_after_its_email_was_purged_gets_a_page_not_json(
        app, client, clock, token, open_review):
    # Stored, then the period closed, the city decided and the email was purged: the same
    # form sent again no longer matches what is stored under its key.
    technology, review = open_review()
    page = client.get(f"/technologies/{technology['id']}").get_data(as_text=True)
    data = {"csrf_token": csrf_token(page), "idempotency_key": form_key(page), "body": TYPED,
            "email": "ana@example.org"}
    assert client.post(form_url(technology["id"], review["id"]), data=data).status_code == 303
    clock.advance(days=47)
    run_due_transitions(app, clock)
    decided = client.post(f"/api/v1/reviews/{review['id']}/decision",
                          headers=token("reviewer"),
                          json={"outcome": "rejected", "rationale": "Too intrusive."})
    assert decided.status_code == 200, decided.get_json()
    clock.advance(days=400)
    assert purge_personal_data(app, clock)
    again = client.post(form_url(technology["id"], review["id"]), data=data)
    assert again.status_code == 409
    assert again.mimetype == "text/html"
    text = again.get_data(as_text=True)
    assert "The comment period closed" in summary(text)
    assert f"readonly>{TYPED}</textarea>" in text


# --- a problem raised during a page's request -------------------------------------


def test_a_problem_raised_during_a_page_request_is_an_error_page(app, client):
    from registry.errors import Unavailable

    def busy() -> str:
        raise Unavailable.nothing_saved()

    app.add_url_rule("/busy-page", view_func=busy)
    response = client.get("/busy-page")
    assert response.status_code == 503
    assert response.mimetype == "text/html"
    assert response.headers["Retry-After"] == "1"
    text = response.get_data(as_text=True)
    assert "<h1>Service unavailable</h1>" in text and "nothing was saved" in text


def test_a_problem_raised_while_posting_the_form_shows_the_form_again(
        client, open_review, post_form, monkeypatch):
    from registry.errors import Invalid
    from registry.pages import routes

    def refuse(*_args, **_kwargs):
        raise Invalid("This form was already used for another comment.")

    monkeypatch.setattr(routes, "post_comment", refuse)
    technology, review = open_review()
    refused = post_form(technology["id"], review["id"], body=TYPED)
    assert refused.status_code == 422
    assert refused.mimetype == "text/html"
    form = comment_form(refused.get_data(as_text=True))
    assert "This form was already used for another comment." in summary(form)
    assert f">{TYPED}</textarea>" in form


# --- links on a page answered from the form's POST address --------------------------


def test_links_on_a_refused_form_page_lead_to_pages_not_the_post_address(
        app, client, clock, token, open_review, schedule_review, add_comments, post_form):
    technology, review = open_review()
    add_comments(review["id"], [f"Comment number {n:02}." for n in range(25)])
    add_comments(review["id"], ["Same words from a campaign."] * 2)
    refused = post_form(technology["id"], review["id"], body="Hi", email="not an address")
    assert refused.status_code == 422
    base = "http://localhost" + form_url(technology["id"], review["id"])
    text = refused.get_data(as_text=True)
    links = [html.unescape(href) for href in re.findall(r'href="([^"#][^"]*)"', text)]
    comment_links = [link for link in links if "review=" in link or "/comments/" in link]
    assert any("comments_after=" in link for link in comment_links)
    assert any("/comments/cmt_" in link for link in comment_links)  # the form letter's
    for link in comment_links:
        if link.startswith("/api/"):
            continue
        followed = client.get(urljoin(base, link), follow_redirects=True)
        assert followed.status_code == 200, link


def test_the_open_reviews_comments_link_works_from_a_refused_form_page(
        app, client, clock, token, open_review, schedule_review):
    # The resident's review was cancelled and another opened while they wrote.
    technology, first = open_review()
    page = client.get(f"/technologies/{technology['id']}").get_data(as_text=True)
    cancelled = client.post(f"/api/v1/reviews/{first['id']}/cancel", headers=token("reviewer"),
                            json={"reason": "The wrong assessment was used."})
    assert cancelled.status_code == 200, cancelled.get_json()
    second = schedule_review(technology["id"])
    clock.advance(hours=2)
    run_due_transitions(app, clock)
    refused = client.post(form_url(technology["id"], first["id"]), data={
        "csrf_token": csrf_token(page), "idempotency_key": form_key(page), "body": TYPED})
    assert refused.status_code == 409
    text = refused.get_data(as_text=True)
    link = html.unescape(re.search(r'href="([^"]+)">Read this review', text).group(1))
    assert link == f"/technologies/{technology['id']}?review={second['id']}#comments"
    base = "http://localhost" + form_url(technology["id"], first["id"])
    assert client.get(urljoin(base, link)).status_code == 200
    # The open review's form holds the text, to send it there.
    assert f">{TYPED}</textarea>" in comment_form(text)


# --- a comment's url -------------------------------------------------------------


def test_a_comments_url_finds_it_on_the_page_that_holds_it(client, open_review, add_comments):
    technology, review = open_review()
    add_comments(review["id"], [f"Earlier comment {n}." for n in range(25)])
    add_comments(review["id"], ["The newest one."])
    items = client.get(f"/api/v1/reviews/{review['id']}/comments?limit=100").get_json()["items"]
    newest = items[-1]
    url = newest["url"]
    assert url == (f"http://daylight.test/technologies/{technology['id']}/comments/"
                   f"{newest['id']}")
    response = client.get(url.removeprefix("http://daylight.test"))
    assert response.status_code == 302
    location = response.headers["Location"]
    assert "comments_after=" in location and location.endswith(f"#comment-{newest['id']}")
    page = client.get(location).get_data(as_text=True)
    assert f'id="comment-{newest["id"]}"' in page and "The newest one." in page


def test_a_hidden_comments_url_leads_to_its_reason(client, token, open_review, add_comments):
    technology, review = open_review()
    add_comments(review["id"], [f"Earlier comment {n}." for n in range(25)])
    add_comments(review["id"], ["My neighbour at 12 Elm Street is a criminal."])
    comment = client.get(f"/api/v1/reviews/{review['id']}/comments?limit=100").get_json()[
        "items"][-1]
    response = client.post(f"/api/v1/comments/{comment['id']}/hide", headers=token("reviewer"),
                           json={"reason": "It named a resident's home address."})
    assert response.status_code == 200, response.get_json()
    followed = client.get(comment["url"].removeprefix("http://daylight.test"),
                          follow_redirects=True)
    assert followed.status_code == 200
    assert "A reviewer hid this comment. Reason:" in followed.get_data(as_text=True)


@pytest.mark.parametrize("case", ["held", "unknown", "other technology"])
def test_a_url_of_no_public_comment_is_not_found(app, client, token, make_technology,
                                                 open_review, post_form, case):
    technology, review = open_review()
    if case == "held":
        app.config["COMMENT_MODERATION"] = "pre"
    post_form(technology["id"], review["id"], body="Waiting, or not.")
    with engine(app).connect() as connection:
        comment_id = connection.execute(select(col(Comment.id))).scalar_one()
    technology_id = technology["id"]
    if case == "unknown":
        comment_id = "cmt_unknown"
    elif case == "other technology":
        technology_id = make_technology(submit=True, name="Drones")["id"]
    response = client.get(f"/technologies/{technology_id}/comments/{comment_id}")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    if case == "held":  # once published, the same address finds it
        published = client.post(f"/api/v1/comments/{comment_id}/publish",
                                headers=token("reviewer"))
        assert published.status_code == 200, published.get_json()
        response = client.get(f"/technologies/{technology_id}/comments/{comment_id}")
        assert response.status_code == 302


# --- the calendar and the home page --------------------------------------------


def test_meetings_of_two_reviews_with_one_id_have_their_own_uids(client, clock, open_review,
                                                                  make_technology,
                                                                  schedule_review):
    from icalendar import Calendar

    uids = []
    for name in ("Licence-plate readers", "Drones"):
        technology = make_technology(submit=True, name=name)
        starts = clock.now() + timedelta(days=3)
        review = schedule_review(technology["id"], meetings=[
            {"id": "town-hall", "starts_at": starts.isoformat(), "place": "City Hall"}])
        uids.append(f"{review['id']}-town-hall@daylight.test")
        uids.append(f"{review['id']}-comment-period@daylight.test")
    calendar = Calendar.from_ical(client.get("/feeds/reviews.ics").get_data())
    found = [str(event["UID"]) for event in calendar.walk("VEVENT")]
    assert sorted(found) == sorted(uids)


def test_a_calendar_with_no_review_still_has_a_component(client):
    from icalendar import Calendar

    response = client.get("/feeds/reviews.ics")
    assert response.status_code == 200
    calendar = Calendar.from_ical(response.get_data())
    assert not calendar.walk("VEVENT")
    assert [str(zone["TZID"]) for zone in calendar.walk("VTIMEZONE")] == ["America/Los_Angeles"]


def test_home_counts_every_technology_in_use_without_an_approved_policy(
        app, client, clock, token, staff, make_technology, open_review, monkeypatch):
    from registry.pages import routes

    reviewer = token("reviewer")
    rejected, review = open_review(name="Rejected but running")
    clock.advance(days=47)
    run_due_transitions(app, clock)
    decided = client.post(f"/api/v1/reviews/{review['id']}/decision", headers=reviewer,
                          json={"outcome": "rejected", "rationale": "Too intrusive."})
    assert decided.status_code == 200, decided.get_json()
    withdrawn = make_technology(submit=True, name="Withdrawn but running")
    response = client.post(f"/api/v1/technologies/{withdrawn['id']}/withdraw", headers=staff)
    assert response.status_code == 200, response.get_json()
    make_technology(name="A private draft")  # in use, but drafts are private
    page = client.get("/").get_data(as_text=True).split('id="unapproved-h"')[1]
    assert "2 technologies are already in use without an approved policy" in page
    assert "Rejected but running" in page and "Withdrawn but running" in page
    assert "A private draft" not in page
    assert "Every technology in use has an approved policy" not in page
    # Only the first are named; the count is of them all.
    monkeypatch.setattr(routes, "UNAPPROVED_SHOWN", 1)
    page = client.get("/").get_data(as_text=True).split('id="unapproved-h"')[1]
    assert "2 technologies are already in use without an approved policy" in page
    assert "here are the first 1 by name" in page
    assert page.count("<li>") == 1


def test_partners_page_says_what_a_re_enabled_endpoint_sends(client):
    page = client.get("/partners").get_data(as_text=True)
    assert "what waited is sent" not in page
    assert "events that happen while it is disabled make no deliveries for it" in page
    assert "GET /api/v1/events?after=SEQ</code> lists every public event" in page
    assert "Deliveries that have finished are kept in that log for 90 days" in page
