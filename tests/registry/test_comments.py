"""Comments: only while open, receipts, privacy of emails, moderation, summaries, the CSV."""

from __future__ import annotations

import csv
import io
import logging
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.comments import services
from registry.comments.models import CommenterContact
from registry.database import engine
from registry.worker.jobs import purge_personal_data, run_due_transitions
from tests.registry.helpers import public_events, schedule

EMAIL = "resident.private@example.org"


@pytest.fixture
def review(client, reviewer, make_technology, clock) -> dict[str, Any]:
    technology = make_technology(submit=True)
    response = schedule(client, reviewer, technology["id"], opens=clock.now() + timedelta(days=1))
    assert response.status_code == 201
    return response.get_json()


@pytest.fixture
def open_review(app, review, clock) -> dict[str, Any]:
    clock.advance(days=1)
    assert run_due_transitions(app, clock).opened == [review["id"]]
    return review


def post(client, review, **fields: Any):
    body = {"body": "Please limit retention to 30 days.", **fields}
    return client.post(f"/api/v1/reviews/{review['id']}/comments", json=body)


def test_comments_are_refused_before_the_period_opens(client, review):
    response = post(client, review)
    assert response.status_code == 409
    assert "has not opened yet; it opens at" in response.get_json()["detail"]


def test_comments_are_accepted_while_open_with_a_receipt(client, open_review):
    response = post(client, open_review, display_name="Maya", neighborhood="Eastside",
                    position="oppose", email=EMAIL)
    assert response.status_code == 201
    receipt = response.get_json()
    assert receipt["status"] == "published"
    assert receipt["tracking_number"].startswith("DL-")
    status = client.get(f"/api/v1/comments/{receipt['tracking_number']}")
    assert status.status_code == 200 and status.get_json()["status"] == "published"
    listed = client.get(f"/api/v1/reviews/{open_review['id']}/comments").get_json()["items"]
    assert [(c["display_name"], c["position"]) for c in listed] == [("Maya", "oppose")]
    assert public_events(client, type="comment.published")[0]["data"]["comment"]["body"] == \
        "Please limit retention to 30 days."


def test_comments_are_refused_after_the_period_closes(app, client, open_review, clock):
    clock.advance(days=60)
    run_due_transitions(app, clock)
    response = post(client, open_review)
    assert response.status_code == 409
    assert "closed at" in response.get_json()["detail"]


def test_a_comment_after_the_closing_time_is_refused_even_before_the_worker_closes(
        client, open_review, clock):
    clock.advance(days=46)
    assert post(client, open_review).status_code == 409


def test_anonymous_by_default(client, open_review):
    post(client, open_review)
    listed = client.get(f"/api/v1/reviews/{open_review['id']}/comments").get_json()["items"]
    assert listed[0]["display_name"] == "Anonymous resident"


@pytest.mark.parametrize("fields, field", [
    ({"body": ""}, "body"),
    ({"body": "   "}, "body"),
    ({"body": "x" * 10_001}, "body"),
    ({"position": "maybe"}, "position"),
    ({"email": "not-an-email"}, "email"),
    ({"display_name": "x" * 101}, "display_name"),
    ({"secret": 1}, "secret"),
])
def test_bad_comments_name_the_field_and_store_nothing(client, open_review, fields, field):
    response = post(client, open_review, **fields)
    assert response.status_code == 422
    assert field in response.get_json()["errors"]
    assert client.get(f"/api/v1/reviews/{open_review['id']}/comments").get_json()["items"] == []


def test_a_comment_of_exactly_10000_characters_is_accepted(client, open_review):
    assert post(client, open_review, body="y" * 10_000).status_code == 201


def test_the_email_appears_in_no_public_response_csv_event_or_log(app, client, open_review,
                                                                   reviewer, caplog):
    caplog.set_level(logging.DEBUG)
    receipt = post(client, open_review, email=EMAIL, display_name="Maya").get_json()
    comment_id = receipt["id"]
    client.post(f"/api/v1/comments/{comment_id}/hide", json={"reason": "Off topic."},
                headers=reviewer)
    client.post(f"/api/v1/comments/{comment_id}/publish", headers=reviewer)
    rid = open_review["id"]
    public = [
        client.get(f"/api/v1/reviews/{rid}/comments"),
        client.get(f"/api/v1/reviews/{rid}/comments/summary"),
        client.get(f"/api/v1/reviews/{rid}/comments.csv"),
        client.get(f"/api/v1/comments/{receipt['tracking_number']}"),
        client.get("/api/v1/events", query_string={"limit": 200}),
        client.get(f"/api/v1/reviews/{rid}"),
    ]
    for response in public:
        assert response.status_code == 200
        assert EMAIL not in response.get_data(as_text=True)
    assert EMAIL not in caplog.text
    # Reviewers, and only they, see it.
    as_reviewer = client.get(f"/api/v1/reviews/{rid}/comments", headers=reviewer).get_json()
    assert as_reviewer["items"][0]["email"] == EMAIL


def test_the_client_address_is_stored_only_as_a_keyed_hash(app, client, open_review):
    client.post(f"/api/v1/reviews/{open_review['id']}/comments", json={"body": "Hello"},
                environ_base={"REMOTE_ADDR": "203.0.113.77"})
    from registry.database import transaction

    with app.app_context(), transaction(app) as session:
        contact = session.execute(select(CommenterContact)).scalar_one()
    assert contact.client_key and "203.0.113.77" not in contact.client_key
    assert len(contact.client_key) == 64


def test_form_letters_are_grouped_counted_and_never_rejected(client, open_review):
    letter = "I oppose licence-plate readers in our neighbourhood!"
    for variant in (letter, letter.upper(), "  i oppose licence plate readers in our "
                    "neighbourhood  ", letter):
        assert post(client, open_review, body=variant, position="oppose").status_code == 201
    post(client, open_review, body="I support it for Amber Alerts.", position="support",
         neighborhood="Downtown")
    summary = client.get(f"/api/v1/reviews/{open_review['id']}/comments/summary").get_json()
    assert summary["total"] == 5
    assert summary["unique_texts"] == 2
    assert summary["by_position"] == {"support": 1, "oppose": 4, "neutral": 0, "unspecified": 0}
    assert summary["form_letters"][0]["count"] == 4
    assert summary["form_letters"][0]["sample_body"] == letter
    assert {"neighborhood": "Downtown", "count": 1} in summary["by_neighborhood"]


def test_a_neighbourhood_typed_in_other_cases_is_counted_as_one(client, open_review):
    for name in ("Eastside", "eastside", "  EASTSIDE ", "Eastside", "East side", "East-side",
                 "West  side", "St. John's", "st johns", "—"):
        assert post(client, open_review, neighborhood=name).status_code == 201
    summary = client.get(f"/api/v1/reviews/{open_review['id']}/comments/summary").get_json()
    # Two spellings of St John's, one each: the first in order of spelling is shown.
    assert summary["by_neighborhood"] == [{"neighborhood": "Eastside", "count": 6},
                                          {"neighborhood": "St. John's", "count": 2},
                                          {"neighborhood": "West side", "count": 1},
                                          {"neighborhood": "—", "count": 1}]


def test_pre_moderation_holds_comments_until_a_reviewer_publishes(app, client, open_review,
                                                                 reviewer):
    app.config["COMMENT_MODERATION"] = "pre"
    receipt = post(client, open_review).get_json()
    assert receipt["status"] == "held"
    assert client.get(f"/api/v1/reviews/{open_review['id']}/comments").get_json()["items"] == []
    assert public_events(client, type="comment.published") == []
    held = client.get(f"/api/v1/reviews/{open_review['id']}/comments", headers=reviewer)
    assert [c["status"] for c in held.get_json()["items"]] == ["held"]
    response = client.post(f"/api/v1/comments/{receipt['id']}/publish", headers=reviewer)
    assert response.status_code == 200
    assert len(client.get(f"/api/v1/reviews/{open_review['id']}/comments").get_json()["items"]) \
        == 1
    assert len(public_events(client, type="comment.published")) == 1
    assert client.get(f"/api/v1/comments/{receipt['tracking_number']}").get_json()["status"] \
        == "published"


def test_a_held_comment_hidden_shows_hidden_on_its_receipt_at_once(app, client, open_review,
                                                                   reviewer):
    # Hiding a held comment appends no event (it was never public), so the log's head is
    # no version of its receipt: a cached "held" would be shown for as long as it stayed put.
    app.config["COMMENT_MODERATION"] = "pre"
    receipt = post(client, open_review).get_json()
    url = f"/api/v1/comments/{receipt['tracking_number']}"
    assert [client.get(url).get_json()["status"] for _ in range(2)] == ["held", "held"]
    assert client.post(f"/api/v1/comments/{receipt['id']}/hide", json={"reason": "Spam."},
                       headers=reviewer).status_code == 200
    assert client.get(url).get_json()["status"] == "hidden"


def test_hiding_keeps_the_reason_public(client, open_review, reviewer):
    receipt = post(client, open_review, body="My neighbour at 12 Elm St is a criminal").get_json()
    response = client.post(f"/api/v1/comments/{receipt['id']}/hide",
                           json={"reason": "Contained a home address."}, headers=reviewer)
    assert response.status_code == 200
    listed = client.get(f"/api/v1/reviews/{open_review['id']}/comments").get_json()["items"]
    assert listed[0]["status"] == "hidden"
    assert listed[0]["body"] is None
    assert listed[0]["hidden_reason"] == "Contained a home address."
    assert "12 Elm" not in client.get(
        f"/api/v1/reviews/{open_review['id']}/comments.csv").get_data(as_text=True)
    event = public_events(client, type="comment.hidden")[0]
    assert event["data"]["reason"] == "Contained a home address."
    again = client.post(f"/api/v1/comments/{receipt['id']}/hide", json={"reason": "x"},
                        headers=reviewer)
    assert again.status_code == 409
    blank = client.post(f"/api/v1/comments/{receipt['id']}/hide", json={"reason": " "},
                        headers=reviewer)
    assert blank.status_code == 422


def test_a_hidden_comment_leaves_the_event_log_and_the_feed_until_it_is_restored(
        client, open_review, reviewer):
    # The log keeps its comment.published event (append-only), but what the public reads of
    # it follows the comment: hidden, its words, name, neighbourhood and position are gone.
    receipt = post(client, open_review, body="My neighbour at 12 Elm St is a criminal",
                   display_name="Dana Q", neighborhood="Elm Park", position="oppose").get_json()
    kept = post(client, open_review, body="Please keep footage 30 days.",
                display_name="Sam").get_json()
    published = public_events(client, type="comment.published")
    assert published[0]["data"]["comment"]["body"] == "My neighbour at 12 Elm St is a criminal"
    assert "Dana Q" in client.get("/feeds/events.atom").get_data(as_text=True)
    assert client.post(f"/api/v1/comments/{receipt['id']}/hide",
                       json={"reason": "Contained a home address."},
                       headers=reviewer).status_code == 200

    withheld, other = public_events(client, type="comment.published")
    assert withheld["id"] == published[0]["id"] and withheld["seq"] == published[0]["seq"]
    assert withheld["data"]["comment"] == {
        **published[0]["data"]["comment"],
        "display_name": None, "neighborhood": None, "position": None, "body": None}
    assert other["data"]["comment"]["id"] == kept["id"]
    assert other["data"]["comment"]["body"] == "Please keep footage 30 days."
    whole = client.get("/api/v1/events?limit=200").get_data(as_text=True)
    for words in ("12 Elm", "Dana Q", "Elm Park"):
        assert words not in whole
    feed = client.get("/feeds/events.atom")
    assert feed.status_code == 200
    text = feed.get_data(as_text=True)
    assert "Dana Q" not in text and "A resident commented on a review." in text
    assert "Sam commented on a review." in text

    # Restored, it is public again, and so is what its event says.
    assert client.post(f"/api/v1/comments/{receipt['id']}/publish",
                       headers=reviewer).status_code == 200
    events = public_events(client, type="comment.published")
    assert [e["data"]["comment"]["body"] for e in events] == [
        "My neighbour at 12 Elm St is a criminal", "Please keep footage 30 days.",
        "My neighbour at 12 Elm St is a criminal"]


def test_anyone_can_flag_and_a_flag_counts_once_per_client(client, open_review, reviewer):
    receipt = post(client, open_review).get_json()
    for _ in range(3):
        response = client.post(f"/api/v1/comments/{receipt['id']}/flag",
                               json={"reason": "This was sent in my name."})
        assert response.status_code == 202
    listed = client.get(f"/api/v1/reviews/{open_review['id']}/comments",
                        headers=reviewer).get_json()["items"]
    assert listed[0]["flag_count"] == 1


def test_a_flag_must_be_json_so_another_sites_form_cannot_send_one(client, open_review,
                                                                   reviewer):
    receipt = post(client, open_review).get_json()
    url = f"/api/v1/comments/{receipt['id']}/flag"
    headers = {"Origin": "https://elsewhere.example"}
    for sent in ({"data": {"reason": "x"}},  # a form's urlencoded post
                 {"data": "reason=x", "content_type": "text/plain"},  # enctype=text/plain
                 {}):  # a form with no fields
        response = client.post(url, headers=headers, **sent)
        assert response.status_code == 400, sent
        assert response.mimetype == "application/problem+json"
        assert "as JSON" in response.get_json()["detail"]
    listed = client.get(f"/api/v1/reviews/{open_review['id']}/comments",
                        headers=reviewer).get_json()["items"]
    assert listed[0]["flag_count"] == 0
    assert client.post(url, json={}).status_code == 202


def test_a_comment_hidden_before_it_was_published_cannot_be_flagged(app, client, open_review,
                                                                    reviewer):
    app.config["COMMENT_MODERATION"] = "pre"
    receipt = post(client, open_review).get_json()
    hidden = client.post(f"/api/v1/comments/{receipt['id']}/hide", headers=reviewer,
                         json={"reason": "Private reason for the reviewer's log."})
    assert hidden.status_code == 200
    flagged = client.post(f"/api/v1/comments/{receipt['id']}/flag", json={})
    assert flagged.status_code == 404
    assert "Private reason" not in flagged.get_data(as_text=True)


def test_a_flag_counts_once_per_ipv6_network(client, open_review, reviewer):
    """Addresses of one /64 are one client's: flagging again from a new one adds nothing."""
    receipt = post(client, open_review).get_json()
    for address in ("2001:db8:9:1::1", "2001:db8:9:1:a:b:c:d", "2001:db8:9:2::1"):
        response = client.post(f"/api/v1/comments/{receipt['id']}/flag", json={},
                               environ_base={"REMOTE_ADDR": address})
        assert response.status_code == 202
    listed = client.get(f"/api/v1/reviews/{open_review['id']}/comments",
                        headers=reviewer).get_json()["items"]
    assert listed[0]["flag_count"] == 2


def test_flags_are_rate_limited_per_client(app, client, open_review, reviewer):
    app.config["FLAG_RATE_LIMIT"] = "2 per minute"
    receipt = post(client, open_review).get_json()
    url = f"/api/v1/comments/{receipt['id']}/flag"
    answers = [client.post(url, json={}, environ_base={"REMOTE_ADDR": f"2001:db8:7:{n}::1"})
               for n in (1, 1, 1)]
    assert [answer.status_code for answer in answers] == [202, 202, 429]
    assert answers[2].mimetype == "application/problem+json"
    assert int(answers[2].headers["Retry-After"]) > 0
    assert client.post(url, json={}, environ_base={"REMOTE_ADDR": "2001:db8:7:2::1"}
                       ).status_code == 202
    listed = client.get(f"/api/v1/reviews/{open_review['id']}/comments",
                        headers=reviewer).get_json()["items"]
    assert listed[0]["flag_count"] == 2  # the refused flag was not stored
    # Flags have a budget of their own: commenting is not spent by flagging.
    app.config["COMMENT_RATE_LIMIT"] = "1 per minute"
    assert client.post(f"/api/v1/reviews/{open_review['id']}/comments", json={"body": "Hi"},
                       environ_base={"REMOTE_ADDR": "2001:db8:7:1::1"}).status_code == 201


@pytest.mark.parametrize(("address", "network"), [
    ("192.0.2.1", "192.0.2.1"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
    ("2001:DB8:1:2::9", "2001:db8:1:2::/64"),
    ("::ffff:192.0.2.1", "192.0.2.1"),
    ("fe80::1%eth0", "fe80::/64"),
    ("not an address", "not an address"),
])
def test_the_client_an_address_stands_for(address, network):
    assert services.client_network(address) == network
    assert services.client_key("secret", address) == services.client_key("secret", network)


def test_the_csv_has_no_emails_and_defuses_formulas(client, open_review):
    post(client, open_review, body='=HYPERLINK("http://evil.example","click")', email=EMAIL)
    response = client.get(f"/api/v1/reviews/{open_review['id']}/comments.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert "email" not in rows[0]
    assert rows[1][rows[0].index("body")].startswith("'=")
    assert EMAIL not in response.get_data(as_text=True)


def test_the_csv_is_streamed_a_page_of_comments_at_a_time(app, client, open_review, reviewer,
                                                          monkeypatch):
    monkeypatch.setattr(services, "EXPORT_PAGE", 3)
    app.config["COMMENT_RATE_LIMIT"] = "100 per minute"
    ids = [post(client, open_review, body=f"Comment {i}, position {i % 3}.").get_json()["id"]
           for i in range(7)]
    hidden = client.post(f"/api/v1/comments/{ids[4]}/hide", json={"reason": "Spam."},
                         headers=reviewer)
    assert hidden.status_code == 200
    pages: list[str] = []
    real_execute = Session.execute

    def counting(self, statement, *args, **kwargs):  # type: ignore[no-untyped-def]
        pages.append(str(statement))
        return real_execute(self, statement, *args, **kwargs)

    monkeypatch.setattr(Session, "execute", counting)
    response = client.get(f"/api/v1/reviews/{open_review['id']}/comments.csv")
    assert response.status_code == 200
    assert response.is_streamed
    assert "ETag" not in response.headers  # sent as it is made, never kept whole
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][0] == "id" and [row[0] for row in rows[1:]] == ids[:4] + ids[5:]
    assert rows[1][rows[0].index("body")] == "Comment 0, position 0."
    # Six published comments, three a page: two full pages and an empty one ends it.
    assert sum("FROM comment" in sql and "LIMIT" in sql for sql in pages) == 3


def test_a_slow_csv_download_holds_no_connection_between_pages(app, client, open_review,
                                                               monkeypatch):
    monkeypatch.setattr(services, "EXPORT_PAGE", 2)
    app.config["COMMENT_RATE_LIMIT"] = "100 per minute"
    for i in range(5):
        post(client, open_review, body=f"Comment {i}.")
    # (The comment writer keeps a connection of its own between groups.)
    held_before = engine(app).pool.checkedout()
    response = client.get(f"/api/v1/reviews/{open_review['id']}/comments.csv", buffered=False)
    chunks = iter(response.response)
    first, second = next(chunks), next(chunks)
    assert b"Comment 0." in b"".join([first, second])
    # The download is paused mid-way (a slow client): no transaction, no connection held.
    assert engine(app).pool.checkedout() == held_before
    rest = b"".join(chunks)
    assert b"Comment 4." in rest
    response.close()


def test_posting_is_rate_limited_per_client(app, client, open_review):
    app.config["COMMENT_RATE_LIMIT"] = "3 per minute"
    codes = [post(client, open_review, body=f"Comment {i}").status_code for i in range(4)]
    assert codes == [201, 201, 201, 429]
    limited = post(client, open_review, body="again")
    assert limited.mimetype == "application/problem+json"
    assert int(limited.headers["Retry-After"]) > 0
    other = client.post(f"/api/v1/reviews/{open_review['id']}/comments", json={"body": "hi"},
                        environ_base={"REMOTE_ADDR": "198.51.100.9"})
    assert other.status_code == 201


def test_emails_are_purged_after_the_retention_period(app, client, open_review, reviewer, clock):
    receipt = post(client, open_review, email=EMAIL).get_json()
    assert client.post(f"/api/v1/comments/{receipt['id']}/flag",
                       json={"reason": "Off topic."}).status_code == 202
    clock.advance(days=60)
    run_due_transitions(app, clock)
    client.post(f"/api/v1/reviews/{open_review['id']}/decision",
                json={"outcome": "approved", "rationale": "ok"}, headers=reviewer)
    clock.advance(days=app.config["COMMENT_EMAIL_RETENTION_DAYS"] - 1)
    assert purge_personal_data(app, clock) == 0
    clock.advance(days=2)
    assert purge_personal_data(app, clock) == 2  # the contact row, and the flagger's key
    listed = client.get(f"/api/v1/reviews/{open_review['id']}/comments",
                        headers=reviewer).get_json()["items"]
    assert listed[0]["email"] is None
    assert listed[0]["body"]  # the comment itself stays
    assert listed[0]["flag_count"] == 1  # and so does its flag, without who sent it
    with Session(engine(app)) as session:
        flags = session.execute(select(services.CommentFlag)).scalars().all()
        assert [(f.reason, f.client_key) for f in flags] == [("Off topic.", None)]
    assert purge_personal_data(app, clock) == 0


def test_emails_of_a_review_never_decided_are_purged_a_year_after_the_close(
        app, client, open_review, reviewer, clock):
    receipt = post(client, open_review, email=EMAIL).get_json()
    clock.advance(days=60)
    assert run_due_transitions(app, clock).closed == [open_review["id"]]
    clock.advance(days=app.config["COMMENT_EMAIL_UNDECIDED_DAYS"] - 1)
    assert purge_personal_data(app, clock) == 0  # the city may still write to them
    listed = client.get(f"/api/v1/reviews/{open_review['id']}/comments", headers=reviewer)
    assert listed.get_json()["items"][0]["email"] == EMAIL
    clock.advance(days=2)
    assert purge_personal_data(app, clock) == 1
    listed = client.get(f"/api/v1/reviews/{open_review['id']}/comments", headers=reviewer)
    assert [(c["id"], c["email"]) for c in listed.get_json()["items"]] == [(receipt["id"], None)]
    # A decision that comes later still records; the emails are simply gone.
    decided = client.post(f"/api/v1/reviews/{open_review['id']}/decision", headers=reviewer,
                          json={"outcome": "approved", "rationale": "Late, after comment."})
    assert decided.status_code == 200


def test_the_comment_form_says_how_long_an_email_is_kept(app, client, open_review):
    app.config.update(COMMENT_EMAIL_RETENTION_DAYS=45, COMMENT_EMAIL_UNDECIDED_DAYS=200)
    page = client.get(f"/technologies/{open_review['technology']['id']}")
    text = " ".join(page.get_data(as_text=True).split())
    assert "It is deleted 45 days after the city's decision, or 200 days after comments close" \
        in text


def test_an_unknown_tracking_number_is_404(client):
    assert client.get("/api/v1/comments/DL-0000-0000").status_code == 404


def test_the_api_and_the_page_form_share_one_budget(app, client, open_review):
    app.config["COMMENT_RATE_LIMIT"] = "2 per minute"
    assert post(client, open_review, body="one").status_code == 201
    technology_id = open_review["technology"]["id"]
    page = client.get(f"/technologies/{technology_id}")
    import re

    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True))
    assert token, "the page has a comment form with a CSRF token"
    form = client.post(f"/technologies/{technology_id}/reviews/{open_review['id']}/comments",
                       data={"csrf_token": token.group(1), "body": "two"})
    assert form.status_code == 303
    assert post(client, open_review, body="three").status_code == 429


def test_the_form_over_https_needs_no_referer(app, client, open_review):
    # Flask-WTF's strict HTTPS check refused every browser that sends no Referer (a privacy
    # setting, some phones) with "The referrer header is missing.": they could never comment.
    import re

    technology_id = open_review["technology"]["id"]
    https = "https://daylight.test"
    page = client.get(f"/technologies/{technology_id}", base_url=https)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True))
    assert token
    sent = client.post(f"/technologies/{technology_id}/reviews/{open_review['id']}/comments",
                       base_url=https, data={"csrf_token": token.group(1), "body": "Hi."})
    assert sent.status_code == 303, sent.get_data(as_text=True)[:500]
    forged = client.post(f"/technologies/{technology_id}/reviews/{open_review['id']}/comments",
                         base_url=https, data={"body": "No token."})
    assert forged.status_code == 400  # the token itself is still required
