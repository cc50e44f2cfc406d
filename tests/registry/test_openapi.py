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


def test_the_docs_page_loads_one_release_of_swagger_ui_checked_by_its_hashes(client):
    # The page runs on this origin, where tokens are typed into "Authorize": a floating
    # "@5" (or a tampered file) from the CDN must not run here.
    import re

    from registry import SWAGGER_UI

    page = client.get("/api/v1/docs").get_data(as_text=True)
    sources = re.findall(r'(?:src|href)="(https://[^"]+)"', page)
    assert len(sources) == 3
    assert all(f"swagger-ui-dist@{SWAGGER_UI}/" in url for url in sources)
    assert page.count('integrity="sha384-') == 3
    assert page.count('crossorigin="anonymous"') == 3
    assert '"/api/v1/openapi.json"' in page


def test_the_comment_post_documents_its_idempotency_key(client):
    operation = client.get("/api/v1/openapi.json").get_json()["paths"][
        "/api/v1/reviews/{review_id}/comments"]["post"]
    headers = [p for p in operation["parameters"] if p["in"] == "header"]
    assert [(p["name"], p["required"]) for p in headers] == [("Idempotency-Key", False)]
    assert "sent again" in headers[0]["description"]
    assert "Idempotent-Replayed" in operation["responses"]["201"]["headers"]
