"""Text no database can store (NUL, lone surrogates) or no feed can carry (other control
characters), numbers past the log, and JSON Python's parsers give up on are refused with a
4xx that names the field, on both databases, and nothing is written.

Before, each of these was a 500: PostgreSQL refuses a NUL in text, neither driver encodes
a lone surrogate, and neither database takes an ``after`` past its integers.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta, timezone
from typing import Any, NamedTuple

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlmodel import Session

from registry.api import MAX_CURSOR_LENGTH
from registry.comments.models import Comment
from registry.database import engine
from registry.events.models import MAX_SEQ, Event
from registry.inputs import CONTROL_MESSAGE, MAX_JSON_DEPTH, NUL_MESSAGE, SURROGATE_MESSAGE
from registry.technologies.models import Technology
from registry.worker.jobs import run_due_transitions
from tests.conftest import technology_fields
from tests.registry.helpers import schedule

PROBLEM = "application/problem+json"


class Opened(NamedTuple):
    technology_id: str
    review_id: str


@pytest.fixture
def opened(app: Flask, client: FlaskClient, reviewer: dict[str, str],
           make_technology: Any, clock: Any) -> Opened:
    """A submitted technology whose review takes comments now."""
    technology = make_technology(submit=True)
    response = schedule(client, reviewer, technology["id"], opens=clock.now() + timedelta(hours=1))
    assert response.status_code == 201
    clock.advance(hours=1)
    review_id: str = response.get_json()["id"]
    assert run_due_transitions(app, clock).opened == [review_id]
    return Opened(technology["id"], review_id)


def rows(app: Flask, model: Any) -> int:
    with Session(engine(app)) as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def post_raw(client: FlaskClient, url: str, text: str, **kwargs: Any) -> Any:
    """POST a JSON document written by hand (json.dumps cannot write a lone surrogate's
    escape as a client might)."""
    return client.post(url, data=text.encode(), content_type="application/json", **kwargs)


def invalid(response: Any, field: str, message: str) -> None:
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["type"].endswith("/invalid-fields")
    assert body["errors"] == {field: [message]}


@pytest.mark.parametrize("field", ["body", "display_name", "neighborhood"])
@pytest.mark.parametrize(("escape", "message"), [("\\u0000", NUL_MESSAGE),
                                                  ("\\ud800", SURROGATE_MESSAGE),
                                                  ("\\uDFFF", SURROGATE_MESSAGE),
                                                  ("\\u0001", CONTROL_MESSAGE),
                                                  ("\\u001f", CONTROL_MESSAGE),
                                                  ("\\uFFFE", CONTROL_MESSAGE)])
def test_a_comment_with_unstorable_text_is_refused_and_not_stored(
        app: Flask, client: FlaskClient, opened: Opened, field: str, escape: str,
        message: str) -> None:
    fields = {"body": "Please limit retention.", field: f"Eastside{escape}x"}
    text = "{" + ", ".join(f'"{k}": "{v}"' for k, v in fields.items()) + "}"
    comments, events = rows(app, Comment), rows(app, Event)
    # Anonymous: the comment post's fast path, which hands it to Flask.
    invalid(post_raw(client, f"/api/v1/reviews/{opened.review_id}/comments", text), field,
            message)
    assert (rows(app, Comment), rows(app, Event)) == (comments, events)


def test_nested_and_named_fields_are_named_by_their_path(
        app: Flask, client: FlaskClient, staff: dict[str, str]) -> None:
    fields = technology_fields()
    text = json.dumps(fields)[:-1] + ', "deployment_areas": ["Downtown", "East\\u0000side"]}'
    technologies = rows(app, Technology)
    invalid(post_raw(client, "/api/v1/technologies", text, headers=staff),
            "deployment_areas.1", NUL_MESSAGE)
    # A name with the character in it is shown with U+FFFD in its place.
    text = json.dumps(fields)[:-1] + ', "na\\u0000me": "x"}'
    invalid(post_raw(client, "/api/v1/technologies", text, headers=staff), "na\ufffdme",
            NUL_MESSAGE)
    assert rows(app, Technology) == technologies


def test_tab_line_feed_and_carriage_return_are_text_and_kept(
        client: FlaskClient, opened: Opened) -> None:
    body = "First point:\tretention.\r\nSecond point:\n\tsharing."
    response = client.post(f"/api/v1/reviews/{opened.review_id}/comments", json={"body": body})
    assert response.status_code == 201, response.get_json()
    listed = client.get(f"/api/v1/reviews/{opened.review_id}/comments").get_json()["items"]
    assert [c["body"] for c in listed] == [body]


def test_a_query_with_a_control_character_is_refused_and_a_line_feed_is_not(
        client: FlaskClient) -> None:
    invalid(client.get("/api/v1/technologies?q=cam%01era"), "q", CONTROL_MESSAGE)
    invalid(client.get("/api/v1/technologies?q=cam%1Fera"), "q", CONTROL_MESSAGE)
    invalid(client.get("/api/v1/technologies?q=cam%EF%BF%BEera"), "q", CONTROL_MESSAGE)
    assert client.get("/api/v1/technologies?q=cam%0Aera").status_code == 200
    # The feed's own parameter too: it was a 500 (XML cannot hold the character).
    feed = client.get("/feeds/events.atom?technology=tec_%01")
    assert feed.status_code == 400  # as for a page: a feed reader is no API client
    assert "cannot be stored" in feed.get_data(as_text=True)


def test_an_escaped_backslash_before_u0000_is_plain_text_and_kept(
        client: FlaskClient, staff: dict[str, str]) -> None:
    # "\\u0000" in JSON is a backslash and the letters u0000: someone quoting code.
    text = json.dumps(technology_fields(purpose="Strings end in \\u0000 in C."))
    assert "\\\\u0000" in text
    created = post_raw(client, "/api/v1/technologies", text, headers=staff)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["purpose"] == "Strings end in \\u0000 in C."


def test_non_ascii_text_sent_as_escapes_is_kept(client: FlaskClient, opened: Opened
                                                 ) -> None:
    # json.dumps escapes every non-ASCII character: these are ordinary letters.
    text = json.dumps({"body": "Très bien — 監視 🙂", "neighborhood": "Café"})
    assert "\\u" in text
    response = post_raw(client, f"/api/v1/reviews/{opened.review_id}/comments", text)
    assert response.status_code == 201, response.get_json()
    listed = client.get(f"/api/v1/reviews/{opened.review_id}/comments").get_json()["items"]
    assert [c["body"] for c in listed] == ["Très bien — 監視 🙂"]


@pytest.mark.parametrize("url", ["/api/v1/technologies?q=cam%00era",
                                 "/api/v1/technologies?status=draft%00",
                                 "/api/v1/reviews?status=open&status=%00"])
def test_a_query_with_a_nul_is_refused_with_the_parameter_named(
        client: FlaskClient, url: str) -> None:
    name = url.split("?")[1].split("&")[-1].split("=")[0]
    invalid(client.get(url), name, NUL_MESSAGE)


def test_a_path_with_a_nul_is_not_found(client: FlaskClient) -> None:
    response = client.get("/api/v1/technologies/tec_%00x")
    assert response.status_code == 404
    assert response.mimetype == PROBLEM
    page = client.get("/technologies/tec_%00x")
    assert page.status_code == 404
    assert page.mimetype == "text/html"


def test_a_page_with_a_nul_in_its_query_says_so_in_html(client: FlaskClient) -> None:
    page = client.get("/technologies?q=cam%00era")
    assert page.status_code == 400
    assert page.mimetype == "text/html"
    assert "cannot be stored" in page.get_data(as_text=True)


def test_a_form_with_a_nul_is_refused_and_not_stored(
        app: Flask, client: FlaskClient, opened: Opened) -> None:
    comments = rows(app, Comment)
    # No CSRF token: the check runs before every other hook, so its answer is the one seen.
    # From this site's page (as the browser says), the page names the character's field;
    # from anywhere else it only says nothing was sent (registry.pages.refusals).
    url = f"/technologies/{opened.technology_id}/reviews/{opened.review_id}/comments"
    page = client.post(url, data={"body": "Keep it\x00 short"},
                       headers={"Sec-Fetch-Site": "same-origin"})
    assert page.status_code == 400
    assert page.mimetype == "text/html"
    assert "cannot be stored" in page.get_data(as_text=True)
    foreign = client.post(url, data={"body": "Keep it\x00 short"})
    assert foreign.status_code == 400 and foreign.mimetype == "text/html"
    assert "nothing was sent" in foreign.get_data(as_text=True)
    assert rows(app, Comment) == comments


def test_events_after_the_largest_seq_is_refused_not_a_server_error(
        client: FlaskClient) -> None:
    assert client.get(f"/api/v1/events?after={MAX_SEQ}").status_code == 200
    response = client.get(f"/api/v1/events?after={MAX_SEQ + 1}")
    assert response.status_code == 422
    assert list(response.get_json()["errors"]) == ["after"]
    assert client.get("/api/v1/events?after=99999999999999999999").status_code == 422


@pytest.mark.parametrize("value", [10**30, -1, True, "a\u0000b", "\ud800"])
def test_a_hand_made_cursor_the_database_cannot_take_is_refused(
        client: FlaskClient, value: Any) -> None:
    cursor = base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")
    url = "/api/v1/events" if isinstance(value, int) else "/api/v1/technologies"
    response = client.get(f"{url}?cursor={cursor}")
    assert response.status_code == 422
    assert response.get_json()["errors"] == {
        "cursor": ["Not a valid cursor; use next_cursor from a page."]}


@pytest.mark.parametrize("url", ["/api/v1/departments", "/api/v1/technologies",
                                 "/api/v1/reviews", "/api/v1/events"])
@pytest.mark.parametrize("made", ["nested", "long"])
def test_a_cursor_too_deep_or_too_long_to_be_ours_is_refused_not_a_server_error(
        client: FlaskClient, url: str, made: str) -> None:
    # Base64 of 1,100 opening brackets: 1,467 characters, in a normal request line. Python's
    # parser gave up on it with a RecursionError, a 500 on every list.
    # "long": a value the list would take (an id, a seq) padded with JSON's own whitespace,
    # refused for its length alone.
    value = "5" if url.endswith("/events") else '"x"'
    inside = "[" * 1100 if made == "nested" else " " * MAX_CURSOR_LENGTH + value
    cursor = base64.urlsafe_b64encode(inside.encode()).decode().rstrip("=")
    assert len(cursor) > MAX_CURSOR_LENGTH
    response = client.get(f"{url}?cursor={cursor}")
    assert response.status_code == 422, response.get_data(as_text=True)[:200]
    assert response.mimetype == PROBLEM
    assert list(response.get_json()["errors"]) == ["cursor"]


def test_a_page_link_with_a_cursor_too_deep_says_so_or_starts_over(
        client: FlaskClient, opened: Opened) -> None:
    cursor = base64.urlsafe_b64encode(b"[" * 1100).decode().rstrip("=")
    page = client.get(f"/technologies?after={cursor}")
    assert page.status_code == 400
    assert page.mimetype == "text/html"
    assert "not one this site made" in page.get_data(as_text=True)
    # The technology page shows the first page of comments for a link it did not make.
    page = client.get(f"/technologies/{opened.technology_id}?comments_after={cursor}")
    assert page.status_code == 200


def test_a_json_number_past_pythons_digit_limit_is_a_400_not_a_server_error(
        app: Flask, client: FlaskClient, opened: Opened, staff: dict[str, str]) -> None:
    huge = "9" * 5000
    technologies, comments = rows(app, Technology), rows(app, Comment)
    text = json.dumps(technology_fields())[:-1] + f', "retention_days": {huge}}}'
    for response in (post_raw(client, "/api/v1/technologies", text, headers=staff),
                     # the comment post's fast path hands it to Flask
                     post_raw(client, f"/api/v1/reviews/{opened.review_id}/comments",
                              f'{{"body": "x", "position": {huge}}}')):
        assert response.status_code == 400, response.get_data(as_text=True)[:200]
        assert response.mimetype == PROBLEM
        assert "a number of more than 4300 digits" in response.get_json()["detail"]
    assert (rows(app, Technology), rows(app, Comment)) == (technologies, comments)
    # A long body without such a number is read as any other (the check parses it once).
    long = client.post(f"/api/v1/reviews/{opened.review_id}/comments",
                       json={"body": "Retention. " * 900})
    assert long.status_code == 201, long.get_json()
    wrong = post_raw(client, "/api/v1/technologies", '{"name": "' + "x" * 5000 + '"',
                     headers=staff)
    assert wrong.status_code == 400


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 990, 100_000])
def test_json_nested_past_the_limit_is_a_400_not_a_recursion_error(
        app: Flask, client: FlaskClient, opened: Opened, staff: dict[str, str],
        depth: int) -> None:
    nested = "[" * depth + '"x"' + "]" * depth
    comments = rows(app, Comment)
    for response in (post_raw(client, "/api/v1/technologies", nested, headers=staff),
                     # the comment post's fast path hands it to Flask
                     post_raw(client, f"/api/v1/reviews/{opened.review_id}/comments",
                              '{"body": ' + nested + "}")):
        assert response.status_code == 400, response.get_data(as_text=True)[:200]
        assert response.mimetype == PROBLEM
        assert "nests arrays and objects more than 100 levels" in response.get_json()["detail"]
    assert rows(app, Comment) == comments


def test_json_nested_within_the_limit_gets_the_routes_own_answer(
        client: FlaskClient, opened: Opened) -> None:
    # The object and 99 arrays inside it: 100 levels.
    nested = "[" * (MAX_JSON_DEPTH - 1) + '"x"' + "]" * (MAX_JSON_DEPTH - 1)
    response = post_raw(client, f"/api/v1/reviews/{opened.review_id}/comments",
                        '{"body": ' + nested + "}")
    assert response.status_code == 422
    assert list(response.get_json()["errors"]) == ["body"]


@pytest.mark.parametrize(("opens", "closes"), [
    # No UTC form: Python's datetime ends at the year 9999 (a 500 before).
    ("2026-03-10T09:00:00+00:00", "9999-12-31T23:59:59-12:00"),
    ("0001-01-01T00:00:00+05:00", "2026-06-01T00:00:00+00:00"),
    # Representable, but no review is set so far out.
    ("2026-03-10T09:00:00+00:00", "3000-01-01T00:00:00+00:00"),
])
def test_times_outside_the_years_a_review_can_use_are_refused(
        app: Flask, client: FlaskClient, reviewer: dict[str, str], make_technology: Any,
        opens: str, closes: str) -> None:
    technology = make_technology(submit=True)
    events = rows(app, Event)
    response = client.post(f"/api/v1/technologies/{technology['id']}/reviews", headers=reviewer,
                           json={"comment_opens_at": opens, "comment_closes_at": closes})
    assert response.status_code == 422, response.get_json()
    errors = response.get_json()["errors"]
    assert list(errors) == (["comment_opens_at"] if opens.startswith("0001")
                            else ["comment_closes_at"])
    assert list(errors.values()) == [["Must be a time between the years 1900 and 2999."]]
    assert rows(app, Event) == events  # nothing appended


def test_a_time_with_an_offset_is_kept_as_sent(client: FlaskClient, reviewer: dict[str, str],
                                               make_technology: Any, clock: Any) -> None:
    technology = make_technology(submit=True)
    opens = (clock.now() + timedelta(days=1)).replace(microsecond=0)
    starts = (opens + timedelta(days=40)).astimezone(timezone(timedelta(hours=-8)))
    response = client.post(f"/api/v1/technologies/{technology['id']}/reviews", headers=reviewer,
                           json={"comment_opens_at": opens.isoformat(),
                                 "comment_closes_at": (opens + timedelta(days=60)).isoformat(),
                                 "meetings": [{"starts_at": starts.isoformat(),
                                               "place": "City Hall"}]})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["meetings"][0]["starts_at"] == starts.isoformat()
