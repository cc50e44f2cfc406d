"""Risk tiers: thresholds, raised tiers, custom tier rules and the strictest of several policies."""

from __future__ import annotations

import json
from typing import Any

import pytest

from policies import evaluate, load_policy_document
from tests.policies.samples import document_with, technology

CRITERION = {"principle": "Testing", "question": "Does it hold?", "guidance": "Make it hold."}


def document(
    outcomes: list[str], *, slug: str = "tiers-test", tiers: dict[str, Any] | None = None
) -> Any:
    """A document with one criterion per wanted outcome, against the good technology.

    ``concern``/``fail`` criteria trip (``in_use`` is false), ``pass`` ones do not, and
    ``needs_information`` ones ask for a blank field.
    """
    rules = {
        "pass": {"field": "in_use", "eq": True},
        "trip": {"field": "in_use", "eq": False},
        "needs_information": {"field": "vendor", "mentions_any": ["x"]},
    }
    criteria = []
    for index, outcome in enumerate(outcomes):
        if outcome in ("concern", "fail"):
            rule, trip_outcome = rules["trip"], outcome
        else:
            rule, trip_outcome = rules[outcome], "concern"
        criteria.append({**CRITERION, "id": f"c{index}", "rule": rule, "outcome": trip_outcome})
    data: dict[str, Any] = {"slug": slug, "title": slug, "summary": "Tiers.", "criteria": criteria}
    if tiers is not None:
        data["tiers"] = tiers
    return load_policy_document(data)


BLANK_VENDOR = technology(vendor=None)

# (outcomes of the criteria, expected tier, days, meeting) under the default tier rules.
DEFAULT_TIERS = [
    (["pass", "pass"], "low", 14, False),
    (["pass", "concern"], "medium", 30, False),
    (["pass", "needs_information"], "medium", 30, False),
    (["concern", "concern", "concern"], "medium", 30, False),
    (["concern", "concern", "concern", "concern"], "high", 45, True),
    (["concern", "concern", "fail", "concern"], "high", 45, True),
    (["pass", "fail"], "high", 45, True),
    (["needs_information"] * 5, "medium", 30, False),
]


@pytest.mark.parametrize(("outcomes", "tier", "days", "meeting"), DEFAULT_TIERS)
def test_default_tier_rules(outcomes: list[str], tier: str, days: int, meeting: bool) -> None:
    assessment = evaluate(BLANK_VENDOR, [document(outcomes)])

    assert [finding.outcome for finding in assessment.findings] == outcomes
    assert assessment.risk_tier == tier
    assert assessment.min_comment_days == days
    assert assessment.meeting_required is meeting


def test_raises_tier_to_puts_one_concern_at_high() -> None:
    raised = document_with({"field": "in_use", "eq": False}, raises_tier_to="high")

    assessment = evaluate(technology(), [raised])

    assert (assessment.risk_tier, assessment.min_comment_days, assessment.meeting_required) == (
        "high",
        45,
        True,
    )
    assert assessment.risk_tier_reasons == (
        "Under “Test policy”, the “Testing” finding puts the technology at high risk.",
    )


def test_raises_tier_to_medium_lifts_a_low_tier() -> None:
    tiers: dict[str, Any] = {"medium_if": {}}  # no count reaches medium on its own
    trips = {"field": "in_use", "eq": False}
    plain = document_with(trips, tiers=tiers)
    raised = document_with(trips, raises_tier_to="medium", tiers=tiers)

    assert evaluate(technology(), [plain]).risk_tier == "low"
    assert evaluate(technology(), [raised]).risk_tier == "medium"


def test_raises_tier_to_does_not_apply_when_information_is_missing() -> None:
    raised = document_with(
        {"field": "vendor", "mentions_any": ["x"]},
        raises_tier_to="high",
    )

    assessment = evaluate(BLANK_VENDOR, [raised])

    assert assessment.findings[0].outcome == "needs_information"
    assert assessment.risk_tier == "medium"


def test_custom_tier_rules_set_days_and_meetings() -> None:
    tiers = {
        "low": {"min_comment_days": 21, "meeting_required": False},
        "medium": {"min_comment_days": 40, "meeting_required": True},
        "high": {"min_comment_days": 60, "meeting_required": True},
        "high_if": {"concerns_at_least": 2},
        "medium_if": {"concerns_at_least": 1},
    }

    low = evaluate(BLANK_VENDOR, [document(["pass", "needs_information"], tiers=tiers)])
    medium = evaluate(BLANK_VENDOR, [document(["concern"], tiers=tiers)])
    high = evaluate(BLANK_VENDOR, [document(["concern", "concern"], tiers=tiers)])

    assert (low.risk_tier, low.min_comment_days, low.meeting_required) == ("low", 21, False)
    assert (medium.risk_tier, medium.min_comment_days, medium.meeting_required) == (
        "medium",
        40,
        True,
    )
    assert (high.risk_tier, high.min_comment_days, high.meeting_required) == ("high", 60, True)


def test_a_fail_counts_as_a_concern_so_it_never_lowers_the_tier() -> None:
    # No threshold for fails at all: the fail still reaches medium as a concern.
    tiers = {"high_if": {}, "medium_if": {"concerns_at_least": 1}}

    assessment = evaluate(BLANK_VENDOR, [document(["fail"], tiers=tiers)])

    assert assessment.risk_tier == "medium"


def test_the_strictest_document_sets_the_tier_and_every_document_its_requirement() -> None:
    lenient = document(
        ["pass"],
        slug="lenient",
        tiers={
            "low": {"min_comment_days": 20, "meeting_required": False},
            "medium": {"min_comment_days": 35, "meeting_required": False},
            "high": {"min_comment_days": 60, "meeting_required": False},
        },
    )
    strict = document(["fail"], slug="strict")

    assessment = evaluate(BLANK_VENDOR, [lenient, strict])

    assert assessment.risk_tier == "high"
    # 60 days from the lenient document's high tier; the meeting from the strict one's.
    assert assessment.min_comment_days == 60
    assert assessment.meeting_required is True
    assert assessment.policies == ("lenient", "strict")
    assert [finding.policy for finding in assessment.findings] == ["lenient", "strict"]
    assert assessment.risk_tier_reasons == (
        "1 criterion of “strict” failed; that policy puts 1 or more at high risk.",
    )


def test_no_documents_means_low_under_the_default_tier_rules() -> None:
    assessment = evaluate(technology(), [])

    assert assessment.findings == ()
    assert (assessment.risk_tier, assessment.min_comment_days, assessment.meeting_required) == (
        "low",
        14,
        False,
    )


def test_assessment_as_dict_is_json() -> None:
    assessment = evaluate(BLANK_VENDOR, [document(["concern", "needs_information"])])

    data = json.loads(json.dumps(assessment.as_dict()))

    assert data["risk_tier"] == "medium"
    assert data["min_comment_days"] == 30
    assert data["meeting_required"] is False
    assert data["policies"] == ["tiers-test"]
    assert data["findings"][0] == {
        "policy": "tiers-test",
        "criterion": "c0",
        "principle": "Testing",
        "question": "Does it hold?",
        "outcome": "concern",
        "explanation": "It is not yet in use.",
        "guidance": "Make it hold.",
    }
    assert data["findings"][1]["outcome"] == "needs_information"
    assert len(data["risk_tier_reasons"]) == 2
