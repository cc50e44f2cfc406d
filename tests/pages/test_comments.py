"""Commenting from the technology page: receipt, validation, honeypot, CSRF, paging, weight."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import registry
from tests.conftest import postgres_only
from tests.pages.conftest import csrf_token, form_key
from tests.registry.helpers import lose_next_commit

TRACKING = re.compile(r"DL-[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}")


def published_total(client, review_id: str) -> int:
    return client.get(f"/api/v1/reviews/{review_id}/comments/summary").get_json()["total"]


def test_a_comment_redirects_to_its_receipt_with_tracking_number_and_status(
        client, open_review, post_form):
    technology, review = open_review()
    response = post_form(technology["id"], review["id"], body="Keep plate reads for days.",
                         display_name="Ana", email="ana@example.org", neighborhood="Eastside",
                         position="oppose")
    assert response.status_code == 303
    location = response.headers["Location"]
    number = TRACKING.search(location).group(0)
    receipt = client.get(location)
    assert receipt.status_code == 200
    page = receipt.get_data(as_text=True)
    assert number in page and "Published" in page and "Thank you" in page
    assert "ana@example.org" not in page
    # The API agrees, and the comment is on the technology page.
    assert client.get(f"/api/v1/comments/{number}").get_json()["status"] == "published"
    technology_page = client.get(f"/technologies/{technology['id']}").get_data(as_text=True)
    assert "Keep plate reads for days." in technology_page and "Ana" in technology_page


def test_the_receipts_link_opens_the_page_that_holds_the_comment(
        app, client, open_review, add_comments, post_form):
    # With more than a page of comments (20, oldest first), a new one is not on the first.
    import html

    technology, review = open_review()
    add_comments(review["id"], [f"Earlier comment {n}." for n in range(25)])
    response = post_form(technology["id"], review["id"], body="The newest one.",
                         display_name="Ana")
    receipt = client.get(response.headers["Location"]).get_data(as_text=True)
    link = html.unescape(re.search(r'href="([^"]+)">see your comment', receipt).group(1))
    assert "comments_after=" in link
    page = client.get(link).get_data(as_text=True)
    assert "The newest one." in page
    anchor = link.split("#", 1)[1]
    assert f'id="{anchor}"' in page
    first = client.get(f"/technologies/{technology['id']}?review={review['id']}")
    assert "The newest one." not in first.get_data(as_text=True)


def test_under_pre_moderation_the_receipt_says_the_comment_waits(app, client, open_review,
                                                                 post_form):
    app.config["COMMENT_MODERATION"] = "pre"
    technology, review = open_review()
    response = post_form(technology["id"], review["id"], body="Please review me first.")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Waiting for a reviewer" in page
    assert "Please review me first." not in client.get(
        f"/technologies/{technology['id']}").get_data(as_text=True)


def test_the_email_never_appears_on_any_page(client, open_review, post_form):
    technology, review = open_review()
    email = "private.person@example.org"
    response = post_form(technology["id"], review["id"], body="Hello", email=email)
    receipt = response.headers["Location"]
    for path in ("/", "/technologies", f"/technologies/{technology['id']}", receipt,
                 "/feeds/events.atom", "/feeds/reviews.ics", "/partners",
                 f"/api/v1/reviews/{review['id']}/comments",
                 f"/api/v1/reviews/{review['id']}/comments.csv"):
        assert email not in client.get(path).get_data(as_text=True), path


def test_errors_are_shown_beside_each_field_and_the_input_is_kept(client, open_review,
                                                                  post_form):
    technology, review = open_review()
    response = post_form(technology["id"], review["id"], body="   ", email="not-an-email",
                         display_name="Bo <b>", neighborhood="Riverside")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Your comment was not sent" in page
    body_field = page.split('<label for="body">')[1].split("</textarea>")[0]
    assert 'id="body-error"' in body_field and "Write your comment" in body_field
    assert 'aria-describedby="body-hint body-error"' in body_field
    email_field = page.split('<label for="email">')[1].split("</div>")[0]
    assert 'id="email-error"' in email_field and 'value="not-an-email"' in email_field
    assert 'aria-invalid="true"' in email_field
    assert 'value="Bo &lt;b&gt;"' in page and 'value="Riverside"' in page
    assert published_total(client, review["id"]) == 0


def test_a_too_long_comment_is_refused_beside_the_field(client, open_review, post_form):
    technology, review = open_review()
    response = post_form(technology["id"], review["id"], body="x" * 10_001)
    assert response.status_code == 422
    assert "at most 10,000 characters" in response.get_data(as_text=True)


def test_a_filled_honeypot_is_refused_with_400_and_nothing_is_stored(client, open_review,
                                                                     post_form):
    technology, review = open_review()
    response = post_form(technology["id"], review["id"], body="Buy cheap watches",
                         website="http://spam.example")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Leave this field empty" in page and "Buy cheap watches" in page
    assert published_total(client, review["id"]) == 0


def test_a_post_without_the_csrf_token_is_refused(client, open_review):
    technology, review = open_review()
    response = client.post(f"/technologies/{technology['id']}/reviews/{review['id']}/comments",
                           data={"body": "Forged from another site"})
    assert response.status_code == 400
    assert "not sent" in response.get_data(as_text=True)
    assert published_total(client, review["id"]) == 0


def test_no_form_before_the_period_opens_and_a_post_then_says_when(client, make_technology,
                                                                   schedule_review,
                                                                   post_form, open_review):
    technology = make_technology(submit=True)
    review = schedule_review(technology["id"], opens_in=timedelta(days=3))
    page = client.get(f"/technologies/{technology['id']}").get_data(as_text=True)
    assert 'id="comment-form"' not in page and "Scheduled" in page
    # A stale form (from another open review's page) still carries a valid token.
    other, _ = open_review()
    token_page = client.get(f"/technologies/{other['id']}").get_data(as_text=True)

    response = client.post(f"/technologies/{technology['id']}/reviews/{review['id']}/comments",
                           data={"csrf_token": csrf_token(token_page), "body": "Early"})
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "has not opened yet. It opens Thursday 5 March 2026, 1:00 am PST." in page
    assert published_total(client, review["id"]) == 0


def test_the_comment_form_is_rate_limited_like_the_api(app, client, open_review, post_form):
    # The shared test config lifts the limit; set the setting the API reads as well.
    app.config["COMMENT_RATE_LIMIT"] = "3 per minute"
    technology, review = open_review()
    statuses = [post_form(technology["id"], review["id"], body=f"Comment {n}").status_code
                for n in range(4)]
    assert statuses == [303, 303, 303, 429]
    assert "Wait 1 minute, then send it again" in post_form(
        technology["id"], review["id"], body="again").get_data(as_text=True)


def test_comments_are_shown_20_at_a_time(client, open_review, add_comments):
    technology, review = open_review()
    add_comments(review["id"], [f"Comment number {n:02}." for n in range(45)])
    first = client.get(f"/technologies/{technology['id']}").get_data(as_text=True)
    assert first.count('<article class="comment"') == 20
    assert "Comment number 00." in first and "Comment number 20." not in first
    link = re.search(r'href="([^"]+comments_after=[^"#]+)#comments" rel="next"', first)
    second = client.get(link.group(1).replace('&amp;', '&'))
    page = second.get_data(as_text=True)
    assert page.count('<article class="comment"') == 20
    assert "Comment number 20." in page and "Comment number 00." not in page
    assert "45 published comments" in page


def test_the_summary_chart_has_a_text_equivalent(client, open_review, add_comments):
    technology, review = open_review()
    add_comments(review["id"], ["Yes please."] * 2, position="support")
    add_comments(review["id"], ["No thanks, this is a form letter."] * 3, position="oppose")
    page = client.get(f"/technologies/{technology['id']}").get_data(as_text=True)
    chart = page.split('<figure class="chart">')[1].split("</figure>")[0]
    assert '<svg role="img" aria-labelledby="chart-title"' in chart
    assert "Comments by position: Support 2, Oppose 3, Neutral 0, Did not say 0" in chart
    assert "<th scope=\"col\">Oppose</th>" in chart and "<td>3</td>" in chart
    assert "3 comments share the same text (a form letter)" in page


def test_a_hidden_comment_keeps_only_its_reason(client, token, open_review, add_comments):
    technology, review = open_review()
    add_comments(review["id"], ["My neighbour at 12 Elm Street is a criminal."])
    comment_id = client.get(f"/api/v1/reviews/{review['id']}/comments").get_json()[
        "items"][0]["id"]
    response = client.post(f"/api/v1/comments/{comment_id}/hide", headers=token("reviewer"),
                           json={"reason": "It named a resident's home address."})
    assert response.status_code == 200, response.get_json()
    page = client.get(f"/technologies/{technology['id']}").get_data(as_text=True)
    assert "12 Elm Street" not in page
    assert "A reviewer hid this comment. Reason: It named a resident&#39;s home address." in page


def test_resident_text_is_escaped(client, open_review, add_comments):
    technology, review = open_review()
    add_comments(review["id"], ['<script>alert(1)</script><img src=x onerror="alert(2)">'],
                 display_name="<b>Mallory</b>", neighborhood="<i>Hood</i>")
    page = client.get(f"/technologies/{technology['id']}").get_data(as_text=True)
    assert "<script>alert" not in page and "<img src=x" not in page and "<b>Mallory" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;Mallory&lt;/b&gt;" in page


def test_the_technology_page_with_20_comments_weighs_under_30_kb(client, open_review,
                                                                 add_comments, record_property):
    technology, review = open_review()
    # Realistic comments of about 300 characters, with names and neighbourhoods.
    body = ("I live two streets from one of these cameras. I understand why the police want "
            "to find stolen cars, but ninety days of records of everyone's movements is far "
            "too much. Please keep only the reads that match a hotlist, and publish a yearly "
            "audit of every search that was made. Thank you.")
    add_comments(review["id"], [f"{body} ({n})" for n in range(20)], display_name="A. Resident",
                 neighborhood="Eastside", position="oppose")
    html = client.get(f"/technologies/{technology['id']}").get_data()
    css = (Path(registry.__file__).parent / "static" / "daylight.css").read_bytes()
    assert html.count(b'<article class="comment"') == 20
    total = len(html) + len(css)
    record_property("technology_page_bytes", {"html": len(html), "css": len(css),
                                              "total": total})
    print(f"\ntechnology page with 20 comments: HTML {len(html):,} B + CSS {len(css):,} B = "
          f"{total:,} B")
    assert total < 30 * 1024


@postgres_only
def test_a_comment_whose_commit_lost_its_connection_gets_a_page_with_its_number(
        app, client, open_review, monkeypatch):
    # The form's comment was committed, but the connection died before the database said
    # so. The resident gets a page (not JSON) that says it may have been saved, with the
    # tracking number to look it up by, instead of "nothing was saved".
    technology, review = open_review()
    page = client.get(f"/technologies/{technology['id']}").get_data(as_text=True)
    lose_next_commit(app, monkeypatch, committed=True)
    response = client.post(
        f"/technologies/{technology['id']}/reviews/{review['id']}/comments",
        data={"csrf_token": csrf_token(page), "body": "Did this arrive?"})
    assert response.status_code == 503
    assert response.mimetype == "text/html"
    text = response.get_data(as_text=True)
    assert "may or may not have been saved" in text
    assert "Idempotency-Key" not in text  # the API's advice is not the resident's
    number = TRACKING.search(text).group(0)
    # It was saved: its receipt and the API both find it by that number.
    receipt = client.get(f"/comments/{number}")
    assert receipt.status_code == 200 and "Published" in receipt.get_data(as_text=True)
    assert client.get(f"/api/v1/comments/{number}").get_json()["status"] == "published"


def send_form(client, technology_id: str, review_id: str, data: dict[str, str]):
    return client.post(f"/technologies/{technology_id}/reviews/{review_id}/comments",
                       data=data)


def test_the_same_form_sent_twice_stores_one_comment_and_shows_one_receipt(
        app, client, open_review):
    # A double click, or "resend" after an answer that never came: the form's one-time key
    # makes the second send find the first comment.
    technology, review = open_review()
    page = client.get(f"/technologies/{technology['id']}").get_data(as_text=True)
    data = {"csrf_token": csrf_token(page), "idempotency_key": form_key(page),
            "body": "Sent with a double click.", "email": "ana@example.org"}
    first = send_form(client, technology["id"], review["id"], data)
    second = send_form(client, technology["id"], review["id"], data)
    assert (first.status_code, second.status_code) == (303, 303)
    assert second.headers["Location"] == first.headers["Location"]
    assert published_total(client, review["id"]) == 1
    # The page shows each visitor a form with a key of its own.
    again = client.get(f"/technologies/{technology['id']}").get_data(as_text=True)
    assert form_key(again) != data["idempotency_key"]


def test_the_same_form_sent_back_with_other_words_is_a_new_comment(client, open_review):
    # The resident went back and wrote something else in the same form: a second comment,
    # not a refusal.
    technology, review = open_review()
    page = client.get(f"/technologies/{technology['id']}").get_data(as_text=True)
    data = {"csrf_token": csrf_token(page), "idempotency_key": form_key(page)}
    first = send_form(client, technology["id"], review["id"], {**data, "body": "First words."})
    second = send_form(client, technology["id"], review["id"],
                       {**data, "body": "Second thoughts."})
    assert (first.status_code, second.status_code) == (303, 303)
    assert second.headers["Location"] != first.headers["Location"]
    assert published_total(client, review["id"]) == 2


def test_a_form_shown_again_with_its_errors_keeps_its_key(client, open_review):
    technology, review = open_review()
    page = client.get(f"/technologies/{technology['id']}").get_data(as_text=True)
    data = {"csrf_token": csrf_token(page), "idempotency_key": form_key(page)}
    refused = send_form(client, technology["id"], review["id"],
                        {**data, "body": "Hello", "email": "not an address"})
    assert refused.status_code == 422
    assert form_key(refused.get_data(as_text=True)) == data["idempotency_key"]
    fixed = {**data, "body": "Hello", "email": "ana@example.org"}
    first = send_form(client, technology["id"], review["id"], fixed)
    second = send_form(client, technology["id"], review["id"], fixed)
    assert second.headers["Location"] == first.headers["Location"]
    assert published_total(client, review["id"]) == 1


def test_a_form_from_before_keys_is_still_taken(client, open_review):
    # A page cached from before the key existed (or a robot's post): stored as ever, each
    # send a comment.
    technology, review = open_review()
    page = client.get(f"/technologies/{technology['id']}").get_data(as_text=True)
    for body in ("No key here.", "No key here."):
        response = send_form(client, technology["id"], review["id"],
                             {"csrf_token": csrf_token(page), "body": body})
        assert response.status_code == 303
    assert published_total(client, review["id"]) == 2


def test_a_form_sent_again_after_the_period_closed_still_leads_to_its_receipt(
        client, clock, open_review):
    technology, review = open_review()
    page = client.get(f"/technologies/{technology['id']}").get_data(as_text=True)
    data = {"csrf_token": csrf_token(page), "idempotency_key": form_key(page),
            "body": "Sent at the last minute."}
    first = send_form(client, technology["id"], review["id"], data)
    clock.advance(days=60)
    again = send_form(client, technology["id"], review["id"], data)
    assert (first.status_code, again.status_code) == (303, 303)
    assert again.headers["Location"] == first.headers["Location"]
    late = send_form(client, technology["id"], review["id"],
                     {**data, "body": "A new comment, too late."})
    assert late.status_code == 409
