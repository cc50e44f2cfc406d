"""Changing and creating webhook endpoints through the API: a blank URL is refused, never
taken as "no change"."""

from __future__ import annotations

import pytest

WEBHOOK_ENDPOINTS = "/api/v1/webhook-endpoints"


def assert_url_refused(response) -> dict:
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == 422 and body["title"] and body["detail"] and body["type"]
    assert list(body["errors"]) == ["url"]
    return body


@pytest.mark.parametrize("blank", ["", "   ", "\t\n "])
def test_patching_a_blank_url_is_a_422_naming_url_and_changes_nothing(app, client, token, blank):
    partner = token("partner")
    created = client.post(WEBHOOK_ENDPOINTS, json={"url": "http://127.0.0.1:9/hook"},
                          headers=partner)
    assert created.status_code == 201, created.get_json()
    endpoint = created.get_json()

    response = client.patch(f"{WEBHOOK_ENDPOINTS}/{endpoint['id']}",
                            json={"url": blank, "description": "moved"}, headers=partner)

    body = assert_url_refused(response)
    assert "Give the receiver's URL, or leave the field out" in body["errors"]["url"][0]
    stored = client.get(f"{WEBHOOK_ENDPOINTS}/{endpoint['id']}", headers=partner).get_json()
    assert (stored["url"], stored["description"]) == (endpoint["url"], endpoint["description"])


def test_patching_a_url_with_spaces_around_it_stores_it_stripped(app, client, token):
    partner = token("partner")
    endpoint = client.post(WEBHOOK_ENDPOINTS, json={"url": "http://127.0.0.1:9/hook"},
                           headers=partner).get_json()

    response = client.patch(f"{WEBHOOK_ENDPOINTS}/{endpoint['id']}",
                            json={"url": "  http://127.0.0.1:9/new  "}, headers=partner)

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["url"] == "http://127.0.0.1:9/new"


@pytest.mark.parametrize("blank", ["", "   ", "\t\n "])
def test_creating_an_endpoint_with_a_blank_url_is_a_422_naming_url(app, client, token, blank):
    partner = token("partner")

    response = client.post(WEBHOOK_ENDPOINTS, json={"url": blank}, headers=partner)

    body = assert_url_refused(response)
    assert body["errors"]["url"] == ["Give the receiver's URL."]
    assert client.get(WEBHOOK_ENDPOINTS, headers=partner).get_json()["items"] == []
