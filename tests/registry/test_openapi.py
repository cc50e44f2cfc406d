"""The OpenAPI document is valid OpenAPI 3 and describes the contract's paths."""

from __future__ import annotations

from openapi_spec_validator import validate


def test_openapi_document_validates(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    validate(document)
    assert document["openapi"].startswith("3.")
    for path in ("/api/v1/technologies", "/api/v1/technologies/{technology_id}",
                 "/api/v1/events", "/api/v1/event-types", "/api/v1/vocabularies",
                 "/api/v1/departments"):
        assert path in document["paths"], path


def test_docs_page_is_served(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    assert b"swagger" in response.data.lower()
