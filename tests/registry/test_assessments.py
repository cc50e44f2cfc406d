"""Policies through the API, and the assessment of every submission."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from policies import default_documents
from tests.registry.helpers import public_events


@pytest.fixture
def admin(token) -> dict[str, str]:
    return token("admin")


def privacy() -> dict[str, Any]:
    return copy.deepcopy(next(d for d in default_documents() if d["slug"] == "privacy"))


def test_the_default_policies_are_published_on_first_run(client):
    body = client.get("/api/v1/policies").get_json()
    assert {p["slug"] for p in body["items"]} == {"privacy", "equity"}
    for policy in body["items"]:
        assert policy["active_version"] == 1
        assert policy["versions"][0]["document"]["criteria"]
    types = [e["type"] for e in client.get("/api/v1/events").get_json()["items"]]
    assert types.count("policy.published") == 2


def test_submitting_assesses_at_once_and_logs_it(client, make_technology):
    technology = make_technology(submit=True)
    body = client.get(f"/api/v1/technologies/{technology['id']}").get_json()
    assessment = body["assessment"]
    assert assessment["trigger"] == "submitted"
    assert {v["slug"] for v in assessment["policy_versions"]} == {"privacy", "equity"}
    assert assessment["risk_tier"] in ("low", "medium", "high")
    assert assessment["min_comment_days"] >= 14
    assert body["risk_tier"] == assessment["risk_tier"]
    criteria = {f["criterion"] for f in assessment["findings"]}
    assert {"purpose-stated", "retention-limited", "community-engagement"} <= criteria
    for finding in assessment["findings"]:
        assert finding["outcome"] in ("pass", "concern", "fail", "needs_information")
        assert finding["explanation"] and finding["principle"]
    event = public_events(client, type="assessment.completed")[0]
    assert event["data"]["assessment"]["id"] == assessment["id"]
    assert event["data"]["technology"]["risk_tier"] == assessment["risk_tier"]


def test_immigration_sharing_fails_and_blanks_need_information(client, make_technology):
    technology = make_technology(submit=True, data_sharing=["immigration_enforcement"],
                                 retention_days=None, purpose="")
    findings = {f["criterion"]: f for f in client.get(
        f"/api/v1/technologies/{technology['id']}").get_json()["assessment"]["findings"]}
    assert findings["no-immigration-sharing"]["outcome"] == "fail"
    assert findings["retention-limited"]["outcome"] == "needs_information"
    assert findings["purpose-stated"]["outcome"] in ("fail", "needs_information")


def test_face_recognition_is_high_risk_with_45_days_and_a_meeting(client, make_technology):
    technology = make_technology(submit=True, capabilities=["face_recognition"],
                                 data_collected=["face_images", "biometric"])
    assessment = client.get(f"/api/v1/technologies/{technology['id']}").get_json()["assessment"]
    assert (assessment["risk_tier"], assessment["min_comment_days"],
            assessment["meeting_required"]) == ("high", 45, True)


def test_a_new_version_flags_old_assessments_out_of_date_and_leaves_them_unchanged(
        client, admin, make_technology, token):
    technology = make_technology(submit=True)
    before = client.get(f"/api/v1/technologies/{technology['id']}/assessments").get_json()
    document = privacy()
    document["criteria"] = document["criteria"][:5]
    response = client.post("/api/v1/policies/privacy/versions", json=document, headers=admin)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["active_version"] == 2
    assert [v["version"] for v in response.get_json()["versions"]] == [2, 1]
    after = client.get(f"/api/v1/technologies/{technology['id']}/assessments").get_json()
    old, new = before["items"][0], after["items"][0]
    assert new["outdated"] is True
    assert "version 2" in new["outdated_reason"]
    assert new["findings"] == old["findings"]
    assert new["policy_versions"] == old["policy_versions"]
    event = client.get("/api/v1/events",
                       query_string={"type": "policy.published"}).get_json()["items"][-1]
    assert event["data"]["policy"]["version"] == 2
    assert event["data"]["outdated_assessments"] == 1
    # A reviewer assesses again against version 2.
    reassessed = client.post(f"/api/v1/technologies/{technology['id']}/assessments",
                             headers=token("reviewer"))
    assert reassessed.status_code == 201
    body = reassessed.get_json()
    assert {"slug": "privacy", "version": 2} in [
        {"slug": v["slug"], "version": v["version"]} for v in body["policy_versions"]]
    assert body["outdated"] is False
    history = client.get(f"/api/v1/technologies/{technology['id']}/assessments").get_json()
    assert [a["id"] for a in history["items"]] == [body["id"], old["id"]]


def test_a_record_change_flags_the_assessment_out_of_date(client, staff, make_technology):
    technology = make_technology(submit=True)
    client.patch(f"/api/v1/technologies/{technology['id']}", json={"retention_days": 900},
                 headers=staff)
    assessment = client.get(f"/api/v1/technologies/{technology['id']}").get_json()["assessment"]
    assert assessment["outdated"] is True
    assert "retention_days" in assessment["outdated_reason"]


@pytest.mark.parametrize("mutate, key", [
    (lambda d: d["criteria"][3]["rule"].update({"field": "data_colected"}), "criteria.3.rule"),
    (lambda d: d["criteria"][0].update({"outcome": "maybe"}), "criteria.0.outcome"),
    (lambda d: d.update({"criteria": []}), "criteria"),
])
def test_an_invalid_policy_document_is_a_422_naming_the_criterion(client, admin, mutate, key):
    document = privacy()
    document["slug"] = "privacy-2027"
    mutate(document)
    response = client.post("/api/v1/policies", json=document, headers=admin)
    assert response.status_code == 422, response.get_json()
    errors = response.get_json()["errors"]
    assert key in errors, errors
    assert client.get("/api/v1/policies/privacy-2027").status_code == 404


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_a_rule_with_nan_or_infinity_is_a_422_and_nothing_is_published(client, admin,
                                                                       constant):
    # Python's JSON parser reads them; NaN compares false with everything (the criterion
    # could never trip), and versions can never be changed or removed.
    document = privacy()
    document["slug"] = "privacy-2027"
    index, criterion = next((i, c) for i, c in enumerate(document["criteria"])
                            if set(c["rule"]) == {"field", "gt"})
    field = criterion["rule"]["field"]
    text = json.dumps(document).replace(
        json.dumps(criterion["rule"]), f'{{"field": "{field}", "gt": {constant}}}', 1)
    assert constant in text
    response = client.post("/api/v1/policies", data=text, content_type="application/json",
                           headers=admin)
    assert response.status_code == 422, response.get_json()
    assert f"criteria.{index}.rule" in response.get_json()["errors"]
    assert client.get("/api/v1/policies/privacy-2027").status_code == 404


def test_publishing_an_existing_slug_as_new_is_a_conflict(client, admin):
    response = client.post("/api/v1/policies", json=privacy(), headers=admin)
    assert response.status_code == 409
    assert "/versions" in response.get_json()["detail"]


def test_a_version_whose_slug_differs_is_refused(client, admin):
    document = privacy()
    document["slug"] = "equity"
    response = client.post("/api/v1/policies/privacy/versions", json=document, headers=admin)
    assert response.status_code == 422
    assert "slug" in response.get_json()["errors"]


def test_a_non_object_policy_body_is_a_400(client, admin):
    response = client.post("/api/v1/policies", json=[1], headers=admin)
    assert response.status_code == 400


def test_a_new_policy_is_used_by_the_next_assessment(client, admin, make_technology):
    document = privacy()
    document.update(slug="data-retention", title="Retention rules")
    assert client.post("/api/v1/policies", json=document, headers=admin).status_code == 201
    technology = make_technology(submit=True)
    assessment = client.get(f"/api/v1/technologies/{technology['id']}").get_json()["assessment"]
    assert "data-retention" in {v["slug"] for v in assessment["policy_versions"]}


def test_vocabularies_list_every_value_with_a_label(client):
    body = client.get("/api/v1/vocabularies").get_json()
    fields = {v["field"]: v["values"] for v in body["items"]}
    assert set(fields) == {"data_collected", "capabilities", "data_sharing"}
    assert {"value": "immigration_enforcement",
            "label": "Immigration enforcement agencies"} in fields["data_sharing"]
    assert all(v["label"] for values in fields.values() for v in values)


def test_a_draft_cannot_be_reassessed(client, make_technology, token):
    draft = make_technology()
    response = client.post(f"/api/v1/technologies/{draft['id']}/assessments",
                           headers=token("admin"))
    assert response.status_code == 409


def test_a_withdrawn_technology_cannot_be_reassessed(client, staff, make_technology, token):
    technology = make_technology(submit=True)
    assert client.post(f"/api/v1/technologies/{technology['id']}/withdraw",
                       headers=staff).status_code == 200
    before = client.get("/api/v1/events", query_string={"limit": 200}).get_json()["items"]
    response = client.post(f"/api/v1/technologies/{technology['id']}/assessments",
                           headers=token("reviewer"))
    assert response.status_code == 409
    assert "withdrawn" in response.get_json()["detail"]
    after = client.get("/api/v1/events", query_string={"limit": 200}).get_json()["items"]
    assert after == before
