"""Sample technologies and small policy documents for the policies tests."""

from __future__ import annotations

from typing import Any

from policies import PolicyDocument, default_documents, load_policy_document

#: A well-documented, low-risk technology that meets every default criterion.
GOOD_TECHNOLOGY: dict[str, Any] = {
    "name": "Bicycle counters",
    "department": "transport",
    "vendor": "CountCo",
    "description": "Sensors in the pavement that count passing bicycles.",
    "purpose": (
        "Count bicycle trips so that the city can improve bike lanes where they are most used; "
        "success is measured by ridership each year."
    ),
    "data_collected": ["traffic_counts"],
    "capabilities": ["none"],
    "data_sharing": ["public"],
    "retention_days": 30,
    "access_controls": "Two named engineers can log in; every login is recorded and audited.",
    "deployment_areas": ["Citywide: all major bike routes"],
    "annual_cost": 12000,
    "in_use": False,
    "equity_impact": "Counts are anonymous; some routes may be left out of the counts.",
    "community_engagement": "Shown at four neighbourhood meetings; we publish a yearly report.",
    "mitigations": "Sensors record no images. Coverage is evaluated each year.",
    "documents": [{"title": "Data sheet", "url": "https://example.org/sheet.pdf"}],
    "authorized_uses": "Planning and evaluating bike lanes.",
    "prohibited_uses": "Any use to identify or follow people.",
    "alternatives_considered": "Manual counts twice a year, which miss seasonal change.",
    "funding_source": "Transport capital budget",
}


def technology(**overrides: Any) -> dict[str, Any]:
    """The good technology with some fields changed."""
    return {**GOOD_TECHNOLOGY, **overrides}


def defaults() -> list[PolicyDocument]:
    """The bundled policy documents, loaded."""
    return [load_policy_document(document) for document in default_documents()]


def document_with(
    rule: dict[str, Any],
    *,
    outcome: str = "concern",
    slug: str = "test-policy",
    tiers: dict[str, Any] | None = None,
    **criterion: Any,
) -> PolicyDocument:
    """A one-criterion document whose criterion has ``rule``."""
    data: dict[str, Any] = {
        "slug": slug,
        "title": "Test policy",
        "summary": "A policy for tests.",
        "criteria": [
            {
                "id": "the-criterion",
                "principle": "Testing",
                "question": "Does it hold?",
                "rule": rule,
                "outcome": outcome,
                "guidance": "Make it hold.",
                **criterion,
            }
        ],
    }
    if tiers is not None:
        data["tiers"] = tiers
    return load_policy_document(data)
