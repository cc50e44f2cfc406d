"""Anonymous API reads are cached until the event log moves, and never leak private data."""

from __future__ import annotations


def cache(app):
    return app.extensions["daylight.read_cache"]


def test_a_repeated_anonymous_read_is_served_from_the_cache(app, client, make_technology):
    make_technology(submit=True)
    first = client.get("/api/v1/technologies")
    hits = cache(app).hits
    second = client.get("/api/v1/technologies")
    assert cache(app).hits == hits + 1
    assert second.get_data() == first.get_data()
    assert second.mimetype == "application/json"
    assert second.headers["ETag"] == first.headers["ETag"]


def test_a_change_shows_at_once(app, client, make_technology):
    make_technology(submit=True, name="First")
    before = client.get("/api/v1/technologies").get_json()["items"]
    make_technology(submit=True, name="Second")
    after = client.get("/api/v1/technologies").get_json()["items"]
    assert [t["name"] for t in before] == ["First"]
    assert [t["name"] for t in after] == ["First", "Second"]


def test_the_etag_answers_304_until_something_changes(client, make_technology):
    make_technology(submit=True)
    etag = client.get("/api/v1/technologies").headers["ETag"]
    again = client.get("/api/v1/technologies", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.get_data() == b""
    make_technology(submit=True, name="Drones")
    changed = client.get("/api/v1/technologies", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag


def test_a_department_added_shows_at_once_though_it_appends_no_event(client, token):
    # Departments are not in the contract's events, so adding one leaves the log's head put:
    # their list is never cached, nor tagged with the head.
    admin = token("admin")
    assert client.post("/api/v1/departments", json={"slug": "parks", "name": "Parks"},
                       headers=admin).status_code == 201
    first = client.get("/api/v1/departments")
    assert "ETag" not in first.headers
    assert client.post("/api/v1/departments", json={"slug": "fire", "name": "Fire"},
                       headers=admin).status_code == 201
    assert [d["slug"] for d in client.get("/api/v1/departments").get_json()["items"]] == [
        "parks", "fire"]


def test_a_staff_read_is_never_cached_for_the_public(client, staff, make_technology):
    make_technology(name="A private draft")
    as_staff = client.get("/api/v1/technologies", headers=staff).get_json()["items"]
    assert [t["name"] for t in as_staff] == ["A private draft"]
    assert "ETag" not in client.get("/api/v1/technologies", headers=staff).headers
    assert client.get("/api/v1/technologies").get_json()["items"] == []


def test_queries_are_cached_apart(client, make_technology):
    make_technology(submit=True, name="Drones", in_use=False)
    make_technology(submit=True, name="Cameras", in_use=True)
    names = {q: [t["name"] for t in client.get(f"/api/v1/technologies?in_use={q}")
                 .get_json()["items"]] for q in ("true", "false")}
    assert names == {"true": ["Cameras"], "false": ["Drones"]}


def test_a_read_is_answered_by_the_app_when_the_head_cannot_be_read(app, client, monkeypatch,
                                                                     make_technology):
    from sqlalchemy.exc import OperationalError

    from registry.database import log_head

    make_technology(submit=True, name="Drones")

    def unreachable() -> int:
        raise OperationalError("SELECT last_seq", {}, Exception("server closed the connection"))

    monkeypatch.setattr(log_head(app), "current", unreachable)
    response = client.get("/api/v1/technologies")
    assert response.status_code == 200
    assert [t["name"] for t in response.get_json()["items"]] == ["Drones"]
    assert "ETag" not in response.headers  # built by the app, not stored under any seq
