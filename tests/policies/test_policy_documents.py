"""Loading policy documents: every kind of mistake is named and placed; valid ones round-trip."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from policies import (
    PolicyDocument,
    PolicyDocumentError,
    PolicyDocumentSchema,
    default_documents,
    dump_policy_document,
    load_policy_document,
)
from policies.rules import AnyOf, Comparison, Membership

VALID: dict[str, Any] = {
    "slug": "test-policy",
    "title": "Test policy",
    "summary": "A policy for tests.",
    "criteria": [
        {
            "id": "retention",
            "principle": "Retention",
            "question": "Is data kept for a year at most?",
            "rule": {"field": "retention_days", "gt": 365},
            "outcome": "concern",
            "guidance": "Keep it shorter.",
        },
        {
            "id": "sharing",
            "principle": "Limits on sharing",
            "question": "Is the data kept from immigration enforcement?",
            "rule": {
                "any": [
                    {"field": "data_sharing", "includes": "immigration_enforcement"},
                    {"field": "data_sharing", "includes": "data_brokers"},
                ]
            },
            "outcome": "fail",
            "guidance": "Do not share it.",
            "raises_tier_to": "high",
        },
    ],
}


def invalid(change: Callable[[dict[str, Any]], None]) -> dict[str, list[str]]:
    data = copy.deepcopy(VALID)
    change(data)
    with pytest.raises(PolicyDocumentError) as caught:
        load_policy_document(data)
    return caught.value.errors


def set_rule(index: int, rule: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["criteria"][index]["rule"] = rule

    return change


def set_key(index: int, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["criteria"][index][key] = value

    return change


def drop_key(index: int, key: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        del data["criteria"][index][key]

    return change


def set_document(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data[key] = value

    return change


# (kind of mistake, the change, the error key, the exact message)
MISTAKES: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    (
        "unknown field, nested",
        set_rule(
            1,
            {
                "any": [
                    {"field": "data_sharing", "includes": "vendor"},
                    {"field": "data_colected", "includes": "biometric"},
                ]
            },
        ),
        "criteria.1.rule",
        "criteria[1].rule.any[1]: unknown field 'data_colected' (did you mean 'data_collected'?)",
    ),
    (
        "unknown field under not, deep",
        set_rule(0, {"all": [{"field": "in_use", "eq": True}, {"not": {"field": "colour"}}]}),
        "criteria.0.rule",
        "criteria[0].rule.all[1].not: unknown field 'colour'",
    ),
    (
        "unknown operator",
        set_rule(0, {"field": "retention_days", "greater": 365}),
        "criteria.0.rule",
        "criteria[0].rule: unknown operator 'greater'; for 'retention_days' use one of: "
        "missing, empty, gt, gte, lt, lte, eq, ne",
    ),
    (
        "operator that does not fit the field",
        set_rule(0, {"field": "data_collected", "gt": 3}),
        "criteria.0.rule",
        "criteria[0].rule: operator 'gt' does not apply to 'data_collected' (a list of "
        "vocabulary values); for 'data_collected' use one of: missing, empty, includes, "
        "excludes, any_of, count",
    ),
    (
        "number given as text",
        set_rule(0, {"field": "retention_days", "gt": "365"}),
        "criteria.0.rule",
        "criteria[0].rule: 'gt' needs a number, not the text '365'",
    ),
    (
        "NaN, which Python's JSON parser reads and no criterion can compare with",
        set_rule(0, {"field": "retention_days", "gt": float("nan")}),
        "criteria.0.rule",
        "criteria[0].rule: 'gt' needs a finite number, not nan",
    ),
    (
        "infinity",
        set_rule(0, {"field": "retention_days", "lte": float("-inf")}),
        "criteria.0.rule",
        "criteria[0].rule: 'lte' needs a finite number, not -inf",
    ),
    (
        "boolean where a number is needed",
        set_rule(0, {"field": "retention_days", "gt": True}),
        "criteria.0.rule",
        "criteria[0].rule: 'gt' needs a number, not true/false",
    ),
    (
        "number where true/false is needed",
        set_rule(0, {"field": "in_use", "eq": 1}),
        "criteria.0.rule",
        "criteria[0].rule: 'eq' needs true or false, not the number 1",
    ),
    (
        "any_of given one value",
        set_rule(0, {"field": "data_sharing", "any_of": "vendor"}),
        "criteria.0.rule",
        "criteria[0].rule: 'any_of' needs a non-empty list of vocabulary values, "
        "not the text 'vendor'",
    ),
    (
        "vocabulary value unknown",
        set_rule(1, {"any": [{"field": "data_collected", "includes": "biometrc"}]}),
        "criteria.1.rule",
        "criteria[1].rule.any[0]: 'biometrc' is not a value of 'data_collected' "
        "(did you mean 'biometric'?)",
    ),
    (
        "vocabulary value unknown in a list",
        set_rule(0, {"field": "data_sharing", "any_of": ["vendor", "ice"]}),
        "criteria.0.rule",
        "criteria[0].rule: 'ice' is not a value of 'data_sharing'",
    ),
    (
        "two operators in one condition",
        set_rule(0, {"field": "retention_days", "gt": 30, "lt": 90}),
        "criteria.0.rule",
        "criteria[0].rule: one operator per condition, found 'gt', 'lt'; join conditions "
        "with 'all' or 'any'; for 'retention_days' use one of: missing, empty, gt, gte, lt, "
        "lte, eq, ne",
    ),
    (
        "no operator",
        set_rule(0, {"field": "retention_days"}),
        "criteria.0.rule",
        "criteria[0].rule: no operator for field 'retention_days'; for 'retention_days' use "
        "one of: missing, empty, gt, gte, lt, lte, eq, ne",
    ),
    (
        "empty combinator",
        set_rule(0, {"all": []}),
        "criteria.0.rule",
        "criteria[0].rule: 'all' needs a non-empty list of rules, not an empty list",
    ),
    (
        "combinator mixed with a condition",
        set_rule(0, {"not": {"field": "in_use", "eq": True}, "field": "vendor"}),
        "criteria.0.rule",
        "criteria[0].rule: 'not' must be the only key of its rule; move 'field' into a rule "
        "of its own",
    ),
    (
        "rule that is not an object",
        set_rule(0, "retention_days > 365"),
        "criteria.0.rule",
        'criteria[0].rule: a rule must be an object such as {"field": "retention_days", '
        "\"gt\": 365}, not the text 'retention_days > 365'",
    ),
    (
        "count without a comparison",
        set_rule(0, {"field": "deployment_areas", "count": 2}),
        "criteria.0.rule",
        "criteria[0].rule: 'count' needs an object with one comparison and a whole number, "
        'such as {"lte": 2}, not the number 2',
    ),
    (
        "empty mentions_any",
        set_rule(0, {"field": "purpose", "mentions_any": []}),
        "criteria.0.rule",
        "criteria[0].rule: 'mentions_any' needs a non-empty list of words or phrases, "
        "not an empty list",
    ),
    (
        "missing rule",
        drop_key(0, "rule"),
        "criteria.0.rule",
        "criteria[0].rule: Missing data for required field.",
    ),
    (
        "duplicate criterion id",
        set_key(1, "id", "retention"),
        "criteria.1.id",
        "criteria[1].id: Duplicate id 'retention': criteria[0] already uses it.",
    ),
    (
        "missing required key",
        drop_key(1, "question"),
        "criteria.1.question",
        "criteria[1].question: Missing data for required field.",
    ),
    (
        "blank guidance",
        set_key(0, "guidance", "  "),
        "criteria.0.guidance",
        "criteria[0].guidance: Must not be blank.",
    ),
    (
        "bad outcome",
        set_key(0, "outcome", "warning"),
        "criteria.0.outcome",
        "criteria[0].outcome: Must be one of: concern, fail.",
    ),
    (
        "bad raises_tier_to",
        set_key(0, "raises_tier_to", "low"),
        "criteria.0.raises_tier_to",
        "criteria[0].raises_tier_to: Must be one of: medium, high.",
    ),
    (
        "criterion id not kebab",
        set_key(0, "id", "Retention Days"),
        "criteria.0.id",
        "criteria[0].id: Must be lowercase letters and digits in words joined by hyphens, "
        "like 'my-policy'.",
    ),
    (
        "misspelt criterion key",
        set_key(0, "guidence", "Typo."),
        "criteria.0.guidence",
        "criteria[0].guidence: Unknown field.",
    ),
    (
        "empty criteria",
        set_document("criteria", []),
        "criteria",
        "criteria: A policy needs at least one criterion.",
    ),
    (
        "slug not kebab",
        set_document("slug", "Privacy_Policy"),
        "slug",
        "slug: Must be lowercase letters and digits in words joined by hyphens, like 'my-policy'.",
    ),
    (
        "meeting_required not a boolean",
        set_document("tiers", {"high": {"min_comment_days": 45, "meeting_required": "yes"}}),
        "tiers.high.meeting_required",
        "tiers.high.meeting_required: Must be true or false.",
    ),
    (
        "min_comment_days below one",
        set_document("tiers", {"low": {"min_comment_days": 0, "meeting_required": False}}),
        "tiers.low.min_comment_days",
        "tiers.low.min_comment_days: Must be greater than or equal to 1 and less than or "
        "equal to 365.",
    ),
    (
        "a higher tier with fewer days",
        set_document("tiers", {"high": {"min_comment_days": 21, "meeting_required": True}}),
        "tiers.high.min_comment_days",
        "tiers.high.min_comment_days: Must be at least the medium tier's 30 days.",
    ),
    (
        "a higher tier dropping the meeting",
        set_document(
            "tiers",
            {
                "medium": {"min_comment_days": 30, "meeting_required": True},
                "high": {"min_comment_days": 45, "meeting_required": False},
            },
        ),
        "tiers.high.meeting_required",
        "tiers.high.meeting_required: Must be true, since the medium tier requires a meeting.",
    ),
    (
        "threshold that is not a whole number",
        set_document("tiers", {"high_if": {"concerns_at_least": 2.5}}),
        "tiers.high_if.concerns_at_least",
        "tiers.high_if.concerns_at_least: Not a valid integer.",
    ),
]


@pytest.mark.parametrize(
    ("change", "key", "message"),
    [pytest.param(change, key, message, id=kind) for kind, change, key, message in MISTAKES],
)
def test_a_mistake_is_named_where_it_is(
    change: Callable[[dict[str, Any]], None], key: str, message: str
) -> None:
    errors = invalid(change)

    assert errors == {key: [message]}


def test_every_mistake_is_reported_at_once() -> None:
    def change(data: dict[str, Any]) -> None:
        data["criteria"][0]["rule"] = {"field": "retention_days", "gt": "long"}
        data["criteria"][1]["id"] = "retention"
        data["criteria"][1]["outcome"] = "bad"

    errors = invalid(change)

    assert set(errors) == {"criteria.0.rule", "criteria.1.id", "criteria.1.outcome"}


def test_a_document_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(PolicyDocumentError) as caught:
        load_policy_document([])  # type: ignore[arg-type]

    assert caught.value.errors == {"_schema": ["Invalid input type."]}


def test_the_error_message_lists_the_mistakes() -> None:
    with pytest.raises(PolicyDocumentError, match=r"criteria\[0\]\.rule: unknown operator 'x'"):
        load_policy_document(
            {**VALID, "criteria": [{**VALID["criteria"][0], "rule": {"field": "vendor", "x": 1}}]}
        )


def test_a_valid_document_becomes_typed_frozen_values() -> None:
    document = load_policy_document(VALID)

    assert isinstance(document, PolicyDocument)
    assert [criterion.id for criterion in document.criteria] == ["retention", "sharing"]
    assert document.criteria[0].rule == Comparison("retention_days", "gt", 365)
    assert document.criteria[1].rule == AnyOf(
        (
            Membership("data_sharing", "includes", ("immigration_enforcement",)),
            Membership("data_sharing", "includes", ("data_brokers",)),
        )
    )
    assert document.criteria[1].raises_tier_to == "high"
    assert document.criteria[0].explanation_pass is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        document.slug = "other"  # type: ignore[misc]


def test_tiers_default_when_left_out() -> None:
    tiers = load_policy_document(VALID).tiers

    assert (tiers.low.min_comment_days, tiers.low.meeting_required) == (14, False)
    assert (tiers.medium.min_comment_days, tiers.medium.meeting_required) == (30, False)
    assert (tiers.high.min_comment_days, tiers.high.meeting_required) == (45, True)
    assert tiers.high_if.fails_at_least == 1
    assert tiers.medium_if.needs_information_at_least == 1


def test_a_partial_tiers_section_keeps_the_other_defaults() -> None:
    tiers = load_policy_document(
        {**VALID, "tiers": {"high": {"min_comment_days": 60, "meeting_required": True}}}
    ).tiers

    assert tiers.high.min_comment_days == 60
    assert tiers.medium.min_comment_days == 30
    assert tiers.high_if.concerns_at_least == 4


def test_dump_then_load_gives_the_same_document() -> None:
    document = load_policy_document(VALID)

    dumped = dump_policy_document(document)

    assert load_policy_document(dumped) == document
    assert dumped["criteria"] == VALID["criteria"]
    assert dumped["tiers"]["high"] == {"min_comment_days": 45, "meeting_required": True}


@pytest.mark.parametrize("raw", default_documents(), ids=lambda raw: raw["slug"])
def test_default_documents_round_trip_unchanged(raw: dict[str, Any]) -> None:
    document = load_policy_document(raw)

    assert document.to_dict() == raw
    assert load_policy_document(document.to_dict()) == document


def test_every_operator_round_trips() -> None:
    rule = {
        "all": [
            {"field": "purpose", "empty": True},
            {"field": "retention_days", "missing": False},
            {"field": "data_collected", "includes": "video"},
            {"field": "data_sharing", "excludes": "none"},
            {"field": "capabilities", "any_of": ["face_recognition", "covert_use"]},
            {"field": "annual_cost", "gte": 1000.5},
            {"field": "in_use", "ne": False},
            {"field": "mitigations", "mentions_any": ["audit"]},
            {"field": "documents", "count": {"eq": 0}},
            {"any": [{"not": {"field": "vendor", "missing": True}}]},
        ]
    }
    data = {**VALID, "criteria": [{**VALID["criteria"][0], "rule": rule}]}

    assert load_policy_document(data).to_dict()["criteria"][0]["rule"] == rule


def test_the_schema_loads_a_document_for_request_handling() -> None:
    document = PolicyDocumentSchema().load(VALID)

    assert isinstance(document, PolicyDocument)
    assert document == load_policy_document(VALID)
