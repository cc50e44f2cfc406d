"""The rule language: what each operator and combinator decides, blanks included."""

from __future__ import annotations

from typing import Any

import pytest

from policies import evaluate
from tests.policies.samples import document_with, technology


def outcome_of(rule: dict[str, Any], **overrides: Any) -> str:
    [finding] = evaluate(technology(**overrides), [document_with(rule)]).findings
    return finding.outcome


# (rule, fields changed from the good technology, expected outcome of a "concern" criterion)
CASES: list[tuple[dict[str, Any], dict[str, Any], str]] = [
    (
        {"field": "data_collected", "includes": "biometric"},
        {"data_collected": ["biometric"]},
        "concern",
    ),
    ({"field": "data_collected", "includes": "biometric"}, {"data_collected": ["video"]}, "pass"),
    ({"field": "data_sharing", "excludes": "none"}, {"data_sharing": ["public"]}, "concern"),
    ({"field": "data_sharing", "excludes": "none"}, {"data_sharing": ["none"]}, "pass"),
    (
        {"field": "data_sharing", "any_of": ["federal_agencies", "immigration_enforcement"]},
        {"data_sharing": ["public", "immigration_enforcement"]},
        "concern",
    ),
    (
        {"field": "data_sharing", "any_of": ["federal_agencies", "immigration_enforcement"]},
        {"data_sharing": ["public"]},
        "pass",
    ),
    ({"field": "retention_days", "gt": 365}, {"retention_days": 366}, "concern"),
    ({"field": "retention_days", "gt": 365}, {"retention_days": 365}, "pass"),
    ({"field": "retention_days", "gte": 365}, {"retention_days": 365}, "concern"),
    ({"field": "retention_days", "lt": 7}, {"retention_days": 6}, "concern"),
    ({"field": "retention_days", "lte": 7}, {"retention_days": 8}, "pass"),
    ({"field": "retention_days", "eq": 0}, {"retention_days": 0}, "concern"),
    ({"field": "annual_cost", "ne": 0}, {"annual_cost": 99.5}, "concern"),
    ({"field": "annual_cost", "gt": 100000}, {"annual_cost": 100000.0}, "pass"),
    ({"field": "in_use", "eq": True}, {"in_use": True}, "concern"),
    ({"field": "in_use", "eq": True}, {"in_use": False}, "pass"),
    ({"field": "in_use", "ne": False}, {"in_use": True}, "concern"),
    # "missing" is about null or absent values; "empty" also covers blank text and lists.
    ({"field": "retention_days", "missing": True}, {"retention_days": None}, "concern"),
    ({"field": "retention_days", "missing": True}, {"retention_days": 0}, "pass"),
    ({"field": "vendor", "missing": True}, {"vendor": ""}, "pass"),
    ({"field": "vendor", "empty": True}, {"vendor": ""}, "concern"),
    ({"field": "vendor", "empty": True}, {"vendor": " \n"}, "concern"),
    ({"field": "documents", "empty": True}, {"documents": []}, "concern"),
    ({"field": "documents", "empty": False}, {"documents": []}, "pass"),
    (
        {"field": "mitigations", "mentions_any": ["Human Review"]},
        {"mitigations": "human review"},
        "concern",
    ),
    (
        {"field": "mitigations", "mentions_any": ["audit"]},
        {"mitigations": "Audited yearly."},
        "concern",
    ),
    ({"field": "mitigations", "mentions_any": ["dit"]}, {"mitigations": "Audited yearly."}, "pass"),
    (
        {"field": "deployment_areas", "count": {"gte": 2}},
        {"deployment_areas": ["A", "B"]},
        "concern",
    ),
    ({"field": "deployment_areas", "count": {"gte": 2}}, {"deployment_areas": ["A"]}, "pass"),
    ({"field": "documents", "count": {"lt": 2}}, {}, "concern"),
    (
        {"all": [{"field": "in_use", "eq": True}, {"field": "retention_days", "gt": 30}]},
        {"in_use": True, "retention_days": 31},
        "concern",
    ),
    (
        {"all": [{"field": "in_use", "eq": True}, {"field": "retention_days", "gt": 30}]},
        {"in_use": True, "retention_days": 30},
        "pass",
    ),
    (
        {"any": [{"field": "in_use", "eq": True}, {"field": "retention_days", "gt": 30}]},
        {"in_use": False, "retention_days": 31},
        "concern",
    ),
    ({"not": {"field": "in_use", "eq": True}}, {"in_use": False}, "concern"),
    # Three-valued logic: a blank decides nothing unless the other parts leave it open.
    (
        {"all": [{"field": "in_use", "eq": True}, {"field": "retention_days", "gt": 30}]},
        {"in_use": False, "retention_days": None},
        "pass",
    ),
    (
        {"all": [{"field": "in_use", "eq": True}, {"field": "retention_days", "gt": 30}]},
        {"in_use": True, "retention_days": None},
        "needs_information",
    ),
    (
        {"any": [{"field": "in_use", "eq": True}, {"field": "retention_days", "gt": 30}]},
        {"in_use": True, "retention_days": None},
        "concern",
    ),
    (
        {"any": [{"field": "in_use", "eq": True}, {"field": "retention_days", "gt": 30}]},
        {"in_use": False, "retention_days": None},
        "needs_information",
    ),
    ({"not": {"field": "retention_days", "gt": 30}}, {"retention_days": None}, "needs_information"),
    # Every operator but missing/empty needs a value to decide.
    ({"field": "data_collected", "excludes": "video"}, {"data_collected": []}, "needs_information"),
    ({"field": "purpose", "mentions_any": ["reduce"]}, {"purpose": None}, "needs_information"),
    ({"field": "purpose", "mentions_any": ["reduce"]}, {"purpose": "  "}, "needs_information"),
    (
        {"field": "deployment_areas", "count": {"lte": 2}},
        {"deployment_areas": []},
        "needs_information",
    ),
    ({"field": "in_use", "eq": False}, {"in_use": None}, "needs_information"),
    # A value of the wrong type is not guessed at.
    ({"field": "retention_days", "gt": 30}, {"retention_days": "400"}, "needs_information"),
    ({"field": "retention_days", "gt": 30}, {"retention_days": True}, "needs_information"),
]


@pytest.mark.parametrize(("rule", "overrides", "expected"), CASES)
def test_rule_decides(rule: dict[str, Any], overrides: dict[str, Any], expected: str) -> None:
    assert outcome_of(rule, **overrides) == expected


def test_a_field_absent_from_the_mapping_counts_as_not_stated() -> None:
    rule = {"field": "retention_days", "gt": 30}
    [finding] = evaluate({"name": "Only a name"}, [document_with(rule)]).findings

    assert finding.outcome == "needs_information"
    assert finding.explanation == (
        "This cannot be answered yet because the retention period is not stated."
    )


def test_the_criterion_outcome_is_used_when_the_rule_holds() -> None:
    document = document_with({"field": "in_use", "eq": True}, outcome="fail")

    [finding] = evaluate(technology(in_use=True), [document]).findings

    assert finding.outcome == "fail"
    assert finding.policy == "test-policy"
    assert finding.criterion == "the-criterion"
    assert finding.principle == "Testing"


def test_without_written_explanations_the_facts_explain() -> None:
    rule = {"field": "deployment_areas", "count": {"lte": 2}}

    [tripped] = evaluate(technology(deployment_areas=["Eastside"]), [document_with(rule)]).findings
    [presence] = evaluate(
        technology(vendor=""), [document_with({"field": "vendor", "empty": True})]
    ).findings
    [in_use] = evaluate(
        technology(in_use=True), [document_with({"field": "in_use", "eq": True})]
    ).findings
    [cost] = evaluate(
        technology(annual_cost=1250000), [document_with({"field": "annual_cost", "gte": 1000000})]
    ).findings

    assert tripped.explanation == "There is 1 entry in the deployment areas: Eastside."
    assert presence.explanation == "The vendor is not stated."
    assert in_use.explanation == "It is already in use."
    assert cost.explanation == "The annual cost is 1,250,000, at least 1,000,000."


def test_written_explanations_come_first_then_the_values() -> None:
    document = document_with(
        {"field": "capabilities", "includes": "covert_use"},
        explanation_pass="It is used openly.",
        explanation_trip="It can be used in secret.",
    )

    [tripped] = evaluate(technology(capabilities=["covert_use"]), [document]).findings
    [passed] = evaluate(technology(capabilities=["none"]), [document]).findings

    assert tripped.explanation == (
        "It can be used in secret. It can be used without the people affected knowing."
    )
    assert passed.explanation == "It is used openly. It has none of the listed capabilities."
