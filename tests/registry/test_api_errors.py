"""Every error is RFC 9457 problem+json, and bad input is never a 500."""

from __future__ import annotations

import pytest

from tests.conftest import postgres_only
from tests.registry.helpers import lose_next_commit


def assert_problem(response, status):
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["type"]
    return body


def test_unknown_path_is_a_404_problem(client):
    assert_problem(client.get("/api/v1/nothing-here"), 404)


def test_unknown_technology_is_a_404_problem(client):
    body = assert_problem(client.get("/api/v1/technologies/tech_missing"), 404)
    assert "tech_missing" in body["detail"]


def test_wrong_method_is_a_405_problem_with_allow(client):
    response = client.delete("/api/v1/technologies")
    assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]


def test_malformed_json_is_a_400_problem(client, staff):
    response = client.post("/api/v1/technologies", data="{not json",
                           content_type="application/json", headers=staff)
    assert_problem(response, 400)


def test_a_json_array_instead_of_an_object_is_a_422(client, staff):
    response = client.post("/api/v1/technologies", json=[1, 2], headers=staff)
    assert_problem(response, 422)


def test_a_body_over_one_mebibyte_is_a_413_problem(client, staff):
    response = client.post("/api/v1/technologies", data=b'{"name": "' + b"x" * (1024 * 1024) +
                           b'"}', content_type="application/json", headers=staff)
    body = assert_problem(response, 413)
    assert "1 MiB" in body["detail"]


@pytest.mark.parametrize("header", ["Bearer", "Basic abc", "Bearer dlt_wrong", "Token x"])
def test_a_bad_token_is_a_401_problem(client, header):
    response = client.get("/api/v1/technologies", headers={"Authorization": header})
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_token_is_refused(app, client, runner):
    result = runner.invoke(args=["tokens", "create", "--role", "admin", "--name", "ops"])
    assert result.exit_code == 0, result.output
    secret = result.output.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/technologies", headers=headers).status_code == 200
    token_id = result.output.split()[2]
    assert runner.invoke(args=["tokens", "revoke", token_id]).exit_code == 0
    assert_problem(client.get("/api/v1/technologies", headers=headers), 401)


def test_healthz_answers_once_the_database_does(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"
    assert response.get_json()["rate_limit_store"] == "memory"  # counted in each process


def test_healthz_reports_how_far_the_event_log_has_come(client, make_technology):
    make_technology(submit=True)  # submitted and assessed, after the policies' own events
    items = client.get("/api/v1/events", query_string={"limit": 200}).get_json()["items"]
    assert items[-1]["type"] == "assessment.completed"
    assert client.get("/healthz").get_json()["last_event_seq"] == items[-1]["seq"]


def test_html_pages_get_an_html_404(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"


def test_a_write_that_loses_a_race_on_a_unique_key_is_a_409_and_saves_nothing(
        client, token, monkeypatch):
    from registry.departments import services

    admin = token("admin")
    assert client.post("/api/v1/departments", json={"slug": "parks", "name": "Parks"},
                       headers=admin).status_code == 201
    # Simulate the concurrent request that checked first: the existence check misses.
    monkeypatch.setattr(services, "get_department", lambda *_: None)
    response = client.post("/api/v1/departments", json={"slug": "parks", "name": "Parks 2"},
                           headers=admin)
    assert_problem(response, 409)
    names = [d["name"] for d in client.get("/api/v1/departments").get_json()["items"]]
    assert names == ["Parks"]


@postgres_only
def test_a_write_whose_commit_lost_its_connection_says_it_may_have_been_saved(
        app, client, token, monkeypatch):
    # The database committed, then the connection died before it could say so: "nothing
    # was saved" would be false. The answer says the outcome is unknown.
    admin = token("admin")
    lose_next_commit(app, monkeypatch, committed=True)
    response = client.post("/api/v1/departments", json={"slug": "parks", "name": "Parks"},
                           headers=admin)
    body = assert_problem(response, 503)
    assert body["title"] == "Outcome unknown"
    assert "may or may not have been saved" in body["detail"]
    assert "nothing was saved" not in body["detail"]
    assert response.headers["Retry-After"] == "60"
    # It was: the client that checks finds it.
    slugs = [d["slug"] for d in client.get("/api/v1/departments").get_json()["items"]]
    assert slugs == ["parks"]


@pytest.mark.parametrize("path", ["/api/v1/technologies", "/technologies"])
def test_a_read_while_the_database_is_down_is_a_503_that_speaks_of_no_saving(
        client, monkeypatch, caplog, path):
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import Session

    def down(*_args, **_kwargs):
        raise OperationalError("SELECT", None, Exception("could not connect to server"))

    monkeypatch.setattr(Session, "execute", down)
    monkeypatch.setattr(Session, "scalars", down)
    response = client.get(path)
    assert response.status_code == 503
    text = response.get_data(as_text=True)
    assert "not answering" in text
    assert "nothing was saved" not in text  # a read saves nothing: say what is true
    expected = "application/problem+json" if path.startswith("/api/") else "text/html"
    assert response.mimetype == expected
    # The operator sees it in the log, with the driver's reason.
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        f"database unavailable for GET {path}: could not connect to server"]


def test_healthz_says_when_the_database_does_not_answer_without_telling_how(
        client, monkeypatch, caplog):
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import Session

    def down(*_args, **_kwargs):
        raise OperationalError("SELECT last_seq FROM event_log_head", None,
                               Exception('connection to server at "10.1.2.3", port 5432 failed'))

    monkeypatch.setattr(Session, "execute", down)
    body = assert_problem(client.get("/healthz"), 503)
    assert body["detail"] == "The database did not answer."
    assert "10.1.2.3" not in str(body) and "SELECT" not in str(body)
    assert "10.1.2.3" in caplog.text  # the operator still learns why
