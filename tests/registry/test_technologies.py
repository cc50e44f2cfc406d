"""The technology lifecycle through the API: every transition, and every refused one."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import technology_fields


def events(client: Any, **params: Any) -> list[dict[str, Any]]:
    """The log without the default policies' own events."""
    items = client.get("/api/v1/events", query_string={"limit": 200, **params}).get_json()["items"]
    return [e for e in items if e["type"] != "policy.published"]


def test_staff_registers_a_draft_that_only_they_and_admins_see(client, staff, token,
                                                                make_technology):
    body = make_technology()
    assert body["status"] == "draft"
    assert body["id"].startswith("tech_")
    assert body["url"] == f"http://daylight.test/technologies/{body['id']}"
    assert body["department"] == "police"
    assert body["retention_days"] == 30
    assert body["annual_cost"] == 120000.0

    assert client.get(f"/api/v1/technologies/{body['id']}").status_code == 404
    assert client.get("/api/v1/technologies").get_json()["items"] == []
    assert client.get(f"/api/v1/technologies/{body['id']}", headers=staff).status_code == 200
    assert client.get(f"/api/v1/technologies/{body['id']}",
                      headers=token("admin")).status_code == 200
    for role in ("reviewer", "partner"):
        assert client.get(f"/api/v1/technologies/{body['id']}",
                          headers=token(role)).status_code == 404
    # Drafts make no event.
    assert events(client) == []


def test_staff_of_another_department_cannot_see_or_edit_a_draft(client, token, department,
                                                               make_technology):
    body = make_technology()
    department("transport")
    other = token("staff", department="transport")
    assert client.get(f"/api/v1/technologies/{body['id']}", headers=other).status_code == 404
    assert client.get("/api/v1/technologies", headers=other).get_json()["items"] == []


def test_staff_cannot_register_for_another_department(client, token, department):
    department("police")
    department("transport")
    response = client.post("/api/v1/technologies", json=technology_fields(department="police"),
                           headers=token("staff", department="transport"))
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"


def test_submitting_makes_the_record_public_with_one_event(client, staff, make_technology):
    draft = make_technology()
    response = client.post(f"/api/v1/technologies/{draft['id']}/submit", headers=staff)
    assert response.status_code == 200
    assert response.get_json()["status"] == "submitted"
    assert client.get(f"/api/v1/technologies/{draft['id']}").status_code == 200
    submitted = [e for e in events(client) if e["type"] == "technology.submitted"]
    assert len(submitted) == 1
    data = submitted[0]["data"]["technology"]
    assert data["id"] == draft["id"]
    assert data["url"] == f"http://daylight.test/technologies/{draft['id']}"
    assert data["department"] == {"slug": "police", "name": "Police Department"}


def test_submitting_twice_is_a_conflict_that_names_the_state(client, staff, make_technology):
    body = make_technology(submit=True)
    response = client.post(f"/api/v1/technologies/{body['id']}/submit", headers=staff)
    assert response.status_code == 409
    problem = response.get_json()
    assert problem["status"] == 409
    assert "'submitted'" in problem["detail"]
    assert problem["current_status"] == "submitted"
    assert problem["allowed_statuses"] == ["draft"]


def test_editing_a_submitted_record_writes_technology_updated(client, staff, make_technology):
    body = make_technology(submit=True)
    response = client.patch(f"/api/v1/technologies/{body['id']}",
                            json={"retention_days": 90, "vendor": "Example Vision Inc."},
                            headers=staff)
    assert response.status_code == 200
    assert response.get_json()["retention_days"] == 90
    updated = [e for e in events(client) if e["type"] == "technology.updated"]
    assert len(updated) == 1
    assert updated[0]["data"]["changed_fields"] == ["retention_days"]


def test_an_edit_that_changes_nothing_writes_no_event(client, staff, make_technology):
    body = make_technology(submit=True)
    before = len(events(client))
    response = client.patch(f"/api/v1/technologies/{body['id']}", json={"retention_days": 30},
                            headers=staff)
    assert response.status_code == 200
    assert len(events(client)) == before


def test_the_same_terms_in_another_order_change_nothing(client, staff, make_technology):
    # A vocabulary list is a set of terms: reordered, the record and its assessment stand.
    body = make_technology(submit=True)
    before = len(events(client))
    reordered = {"data_collected": ["images", "licence_plates", "vehicle_location"],
                 "capabilities": ["historical_search", "licence_plate_recognition"]}
    response = client.patch(f"/api/v1/technologies/{body['id']}", json=reordered,
                            headers=staff)
    assert response.status_code == 200
    assert len(events(client)) == before
    record = client.get(f"/api/v1/technologies/{body['id']}").get_json()
    assert record["assessment"]["outdated"] is False
    # A term added is a change, reported once.
    response = client.patch(f"/api/v1/technologies/{body['id']}", headers=staff,
                            json={"data_collected": [*reordered["data_collected"], "video"]})
    assert response.status_code == 200
    updated = [e for e in events(client) if e["type"] == "technology.updated"]
    assert [e["data"]["changed_fields"] for e in updated] == [["data_collected"]]


def test_editing_a_draft_writes_no_event(client, staff, make_technology):
    body = make_technology()
    response = client.patch(f"/api/v1/technologies/{body['id']}", json={"name": "ALPR"},
                            headers=staff)
    assert response.status_code == 200
    assert response.get_json()["name"] == "ALPR"
    assert events(client) == []


@pytest.mark.parametrize("status", ["withdrawn"])
def test_editing_after_withdrawal_is_a_conflict(client, staff, make_technology, status):
    body = make_technology(submit=True)
    client.post(f"/api/v1/technologies/{body['id']}/withdraw", headers=staff)
    response = client.patch(f"/api/v1/technologies/{body['id']}", json={"name": "X"},
                            headers=staff)
    assert response.status_code == 409
    assert "'withdrawn'" in response.get_json()["detail"]


def test_withdrawing_a_submitted_record_writes_technology_withdrawn(client, staff,
                                                                    make_technology):
    body = make_technology(submit=True)
    response = client.post(f"/api/v1/technologies/{body['id']}/withdraw", headers=staff)
    assert response.status_code == 200
    assert response.get_json()["status"] == "withdrawn"
    assert [e["type"] for e in events(client)][-1] == "technology.withdrawn"
    again = client.post(f"/api/v1/technologies/{body['id']}/withdraw", headers=staff)
    assert again.status_code == 409
    resubmit = client.post(f"/api/v1/technologies/{body['id']}/submit", headers=staff)
    assert resubmit.status_code == 409


def test_withdrawing_a_draft_keeps_it_private(client, staff, make_technology):
    body = make_technology()
    response = client.post(f"/api/v1/technologies/{body['id']}/withdraw", headers=staff)
    assert response.status_code == 200
    assert client.get(f"/api/v1/technologies/{body['id']}").status_code == 404
    assert events(client) == []


def test_validation_errors_name_each_field(client, staff, department):
    response = client.post(
        "/api/v1/technologies",
        json={"name": "", "department": "police", "retention_days": -1,
              "data_collected": ["licence_plates", "mind_reading"], "colour": "red",
              "documents": [{"title": "x", "url": "not a url"}]},
        headers=staff,
    )
    assert response.status_code == 422
    problem = response.get_json()
    assert response.mimetype == "application/problem+json"
    errors = problem["errors"]
    assert set(errors) >= {"name", "retention_days", "data_collected.1", "colour",
                           "documents.0.url"}
    assert "vocabulary" in errors["data_collected.1"][0]


def test_unknown_department_is_a_field_error(client, staff):
    response = client.post("/api/v1/technologies",
                           json=technology_fields(department="nowhere"), headers=staff)
    assert response.status_code in (403, 422)
    response = client.post("/api/v1/technologies", json=technology_fields(department="nowhere"),
                           headers=_admin(client))
    assert response.status_code == 422
    assert "department" in response.get_json()["errors"]


def _admin(client: Any) -> dict[str, str]:
    from registry.auth.services import create_token
    from registry.database import transaction

    with client.application.app_context(), transaction() as session:
        _, secret = create_token(session, role="admin", name="a",
                                 now=client.application.extensions["daylight.clock"].now())
    return {"Authorization": f"Bearer {secret}"}


def test_nulls_mean_not_answered(client, staff, department):
    response = client.post("/api/v1/technologies",
                           json={"name": "Drones", "department": "police", "vendor": None,
                                 "retention_days": None, "data_sharing": None},
                           headers=staff)
    assert response.status_code == 201
    body = response.get_json()
    assert body["vendor"] == ""
    assert body["retention_days"] is None
    assert body["data_sharing"] == []


def test_list_filters(client, staff, make_technology, token, department):
    alpr = make_technology(submit=True)
    drones = make_technology(submit=True, name="Drones", in_use=False,
                             data_collected=["video", "images"],
                             description="Unmanned aircraft with cameras.")
    make_technology(name="Private draft")
    department("transport", "Transportation")
    transport = token("staff", department="transport")
    cams = make_technology(submit=True, headers=transport, department="transport",
                           name="Traffic cameras", data_collected=["video", "traffic_counts"])

    def ids(**params: Any) -> list[str]:
        response = client.get("/api/v1/technologies", query_string=params)
        assert response.status_code == 200, response.get_json()
        return [t["id"] for t in response.get_json()["items"]]

    assert ids() == [alpr["id"], drones["id"], cams["id"]]
    assert ids(department="transport") == [cams["id"]]
    assert ids(in_use="false") == [drones["id"]]
    assert ids(data_collected="video") == [drones["id"], cams["id"]]
    assert ids(data_collected="video,traffic_counts") == [cams["id"]]
    assert ids(q="AIRCRAFT") == [drones["id"]]
    assert ids(q="100%") == []
    assert ids(status="submitted") == [alpr["id"], drones["id"], cams["id"]]
    assert ids(status="draft") == []
    assert ids(data_collected="video,video,video") == [drones["id"], cams["id"]]


@pytest.mark.parametrize("params, field", [
    ({"data_collected": "%"}, "data_collected"),  # was a LIKE wildcard: matched everything
    ({"data_collected": "licence%"}, "data_collected"),
    ({"data_collected": ",".join(f"v{i}" for i in range(1500))}, "data_collected"),  # was 503
    ({"status": "pending"}, "status"),
    ({"risk_tier": "low,extreme"}, "risk_tier"),
])
def test_a_filter_value_no_record_can_hold_is_a_422(client, make_technology, params, field):
    make_technology(submit=True)
    response = client.get("/api/v1/technologies", query_string=params)
    assert response.status_code == 422, response.get_json()
    assert response.mimetype == "application/problem+json"
    assert list(response.get_json()["errors"]) == [field]
    assert "Unknown value" in response.get_json()["errors"][field][0]


def test_cursor_paging_visits_every_item_once(client, make_technology):
    created = [make_technology(submit=True, name=f"Tech {i}")["id"] for i in range(7)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        body = client.get("/api/v1/technologies", query_string=params).get_json()
        seen += [t["id"] for t in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == created
    assert pages == 3


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 201}, {"cursor": "!!"},
                                    {"cursor": "eyJ4IjoxfQ"}])
def test_bad_paging_parameters_are_422(client, params):
    response = client.get("/api/v1/technologies", query_string=params)
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) & {"limit", "cursor"}


def test_every_time_in_a_record_is_rfc_3339_however_deeply_nested(client, staff, token,
                                                                  make_technology, clock):
    # The latest assessment, the reviews and the policy versions are nested in other records;
    # their times once reached Flask's encoder as plain dicts and came out as HTTP dates.
    import re
    from datetime import datetime, timedelta

    from tests.registry.helpers import schedule

    technology = make_technology(submit=True)
    assert schedule(client, token("reviewer"), technology["id"],
                    opens=clock.now() + timedelta(days=1)).status_code == 201
    record = client.get(f"/api/v1/technologies/{technology['id']}").get_json()
    policies = client.get("/api/v1/policies").get_json()
    times = {
        "assessment.created_at": record["assessment"]["created_at"],
        "reviews.comment_opens_at": record["reviews"][0]["comment_opens_at"],
        "reviews.created_at": record["reviews"][0]["created_at"],
        "versions.published_at": policies["items"][0]["versions"][0]["published_at"],
    }
    for name, value in times.items():
        assert datetime.fromisoformat(value).tzinfo is not None, (name, value)
    for body in (record, policies):
        assert not re.search(r'"\w{3}, \d{2} \w{3} \d{4} [\d:]{8} GMT"', str(body).replace(
            "'", '"')), body
    # The nested review is the same as the review's own record.
    review = client.get(f"/api/v1/reviews/{record['reviews'][0]['id']}").get_json()
    assert record["reviews"][0] == review


def test_a_fraction_of_a_day_is_refused_not_cut_down(client, staff, department):
    response = client.post("/api/v1/technologies", headers=staff, json={
        "name": "Sensors", "department": "police", "retention_days": 1.9})
    assert response.status_code == 422
    assert "retention_days" in response.get_json()["errors"]


@pytest.mark.parametrize("q", ["Éclairage", "éclairage", "ÉCLAIRAGE PUBLIC", "Straße"])
def test_search_finds_letters_beyond_ascii_in_any_case(client, make_technology, q):
    # SQLite's lower() knows only A-Z: "É" stayed "É" and "éclairage" found nothing.
    wanted = make_technology(submit=True, name="Éclairage public intelligent",
                             description="Lampadaires, Straße und Sensoren.")
    make_technology(submit=True, name="Eclairage ancien")
    found = client.get("/api/v1/technologies", query_string={"q": q}).get_json()["items"]
    assert [t["id"] for t in found] == [wanted["id"]]
    page = client.get("/technologies", query_string={"q": q}).get_data(as_text=True)
    assert "Éclairage public intelligent" in page and "Eclairage ancien" not in page
