"""The bundled privacy and equity policies: every criterion trips, passes and asks for blanks."""

from __future__ import annotations

from typing import Any

import pytest

from policies import Assessment, Finding, default_documents, evaluate, load_policy_document
from tests.policies.samples import GOOD_TECHNOLOGY, defaults, technology


def finding(assessment: Assessment, criterion: str) -> Finding:
    matches = [each for each in assessment.findings if each.criterion == criterion]
    assert len(matches) == 1, f"expected one finding for {criterion}"
    return matches[0]


def assess(**overrides: Any) -> Assessment:
    return evaluate(technology(**overrides), defaults())


# (criterion id, fields changed from the good technology, expected outcome)
TRIPS: list[tuple[str, dict[str, Any], str]] = [
    ("purpose-stated", {"purpose": ""}, "fail"),
    ("purpose-stated", {"purpose": None}, "fail"),
    ("purpose-stated", {"purpose": "   "}, "fail"),
    ("prohibited-uses-stated", {"prohibited_uses": None}, "concern"),
    ("data-minimisation", {"data_collected": ["traffic_counts", "face_images"]}, "concern"),
    ("data-minimisation", {"data_collected": ["location"]}, "concern"),
    ("retention-limited", {"retention_days": 366}, "concern"),
    ("location-retention", {"data_collected": ["licence_plates"], "retention_days": 31}, "concern"),
    ("access-controls", {"access_controls": ""}, "concern"),
    ("no-immigration-sharing", {"data_sharing": ["immigration_enforcement"]}, "fail"),
    ("federal-sharing", {"data_sharing": ["public", "federal_agencies"]}, "concern"),
    ("no-commercial-sharing", {"data_sharing": ["vendor"]}, "fail"),
    ("no-commercial-sharing", {"data_sharing": ["data_brokers"]}, "fail"),
    (
        "legal-basis",
        {"capabilities": ["licence_plate_recognition"], "authorized_uses": "Finding stolen cars."},
        "concern",
    ),
    (
        "accuracy",
        {"capabilities": ["gunshot_detection"], "mitigations": "Sensors are serviced monthly."},
        "concern",
    ),
    ("cost-and-funding", {"annual_cost": None}, "concern"),
    ("cost-and-funding", {"funding_source": ""}, "concern"),
    ("intended-outcomes", {"purpose": "Count bicycles."}, "concern"),
    # Words are matched from the start of a word: "aim" must not be found in "claims".
    ("intended-outcomes", {"purpose": "Process parking claims."}, "concern"),
    ("community-engagement", {"community_engagement": None}, "concern"),
    ("deployment-concentration", {"deployment_areas": ["Eastside", "Riverside"]}, "concern"),
    ("burdens-identified", {"equity_impact": ""}, "concern"),
    ("burden-mitigations", {"mitigations": None}, "concern"),
    (
        "evaluation-metrics",
        {
            "purpose": "Count bicycle trips so that bike lanes improve.",
            "mitigations": "Sensors record no images.",
            "equity_impact": "Counts are anonymous.",
        },
        "concern",
    ),
    (
        "reporting-back",
        {"community_engagement": "Shown at meetings.", "mitigations": "Sensors record no images."},
        "concern",
    ),
    ("alternatives-considered", {"alternatives_considered": " "}, "concern"),
    ("automated-decisions", {"capabilities": ["predictive_analytics"]}, "concern"),
    ("biometric-identification", {"capabilities": ["face_recognition"]}, "concern"),
    ("biometric-identification", {"data_collected": ["biometric"]}, "concern"),
    ("covert-use", {"capabilities": ["covert_use"]}, "concern"),
    ("tracking-and-profiling", {"capabilities": ["data_fusion"]}, "concern"),
]

# Changes close to a criterion's line that must still pass it.
STILL_PASSES: list[tuple[str, dict[str, Any]]] = [
    ("retention-limited", {"retention_days": 365}),
    ("location-retention", {"data_collected": ["licence_plates"], "retention_days": 30}),
    # Not a location record, so a long retention is a matter for retention-limited alone.
    ("location-retention", {"data_collected": ["traffic_counts"], "retention_days": 400}),
    ("federal-sharing", {"data_sharing": ["state_agencies"]}),
    ("no-immigration-sharing", {"data_sharing": ["none"]}),
    (
        "legal-basis",
        {
            "capabilities": ["licence_plate_recognition"],
            "authorized_uses": "Searches of stored plates need a warrant.",
        },
    ),
    (
        "accuracy",
        {"capabilities": ["gunshot_detection"], "mitigations": "Each alert gets human review."},
    ),
    ("cost-and-funding", {"annual_cost": 0}),
    ("deployment-concentration", {"deployment_areas": ["Eastside", "Riverside", "Northgate"]}),
    ("deployment-concentration", {"deployment_areas": ["City-wide"]}),
    # Words are matched from the start of a word: "reduce" is found in "Reduces".
    ("intended-outcomes", {"purpose": "Reduces collisions at junctions."}),
    ("biometric-identification", {"capabilities": ["licence_plate_recognition"]}),
]

# Blank fields a criterion needs but is not about: the finding must ask for them.
NEEDS_INFORMATION: list[tuple[str, dict[str, Any], str]] = [
    ("retention-limited", {"retention_days": None}, "the retention period"),
    ("data-minimisation", {"data_collected": []}, "the data collected"),
    ("no-immigration-sharing", {"data_sharing": []}, "who the data is shared with"),
    ("no-immigration-sharing", {"data_sharing": None}, "who the data is shared with"),
    (
        "location-retention",
        {"data_collected": ["licence_plates"], "retention_days": None},
        "the retention period",
    ),
    (
        "legal-basis",
        {"capabilities": ["face_recognition"], "authorized_uses": ""},
        "the authorized uses",
    ),
    ("legal-basis", {"capabilities": []}, "the capabilities"),
    ("accuracy", {"capabilities": ["gunshot_detection"], "mitigations": None}, "the mitigations"),
    ("intended-outcomes", {"purpose": ""}, "the purpose"),
    ("deployment-concentration", {"deployment_areas": []}, "the deployment areas"),
    ("automated-decisions", {"capabilities": None}, "the capabilities"),
    ("biometric-identification", {"capabilities": []}, "the capabilities"),
    (
        "evaluation-metrics",
        {"purpose": "Count bicycles.", "mitigations": "", "equity_impact": None},
        "the mitigations and the equity impact",
    ),
]


def test_the_good_technology_passes_every_default_criterion() -> None:
    assessment = evaluate(GOOD_TECHNOLOGY, defaults())

    assert [each.criterion for each in assessment.findings if each.outcome != "pass"] == []
    assert assessment.risk_tier == "low"
    assert assessment.min_comment_days == 14
    assert assessment.meeting_required is False
    assert assessment.policies == ("privacy", "equity")


@pytest.mark.parametrize(("criterion", "overrides", "outcome"), TRIPS)
def test_default_criterion_trips(criterion: str, overrides: dict[str, Any], outcome: str) -> None:
    found = finding(assess(**overrides), criterion)

    assert found.outcome == outcome
    assert found.explanation


@pytest.mark.parametrize(("criterion", "overrides"), STILL_PASSES)
def test_default_criterion_still_passes_near_its_line(
    criterion: str, overrides: dict[str, Any]
) -> None:
    assert finding(assess(**overrides), criterion).outcome == "pass"


@pytest.mark.parametrize(("criterion", "overrides", "unstated"), NEEDS_INFORMATION)
def test_blank_field_needs_information(
    criterion: str, overrides: dict[str, Any], unstated: str
) -> None:
    found = finding(assess(**overrides), criterion)

    assert found.outcome == "needs_information"
    assert found.explanation == (
        f"This cannot be answered yet because {unstated} "
        f"{'are' if ' and ' in unstated else 'is'} not stated."
    )


def test_every_default_criterion_is_in_the_trip_table() -> None:
    ids = {
        criterion["id"] for document in default_documents() for criterion in document["criteria"]
    }

    assert ids == {criterion for criterion, _, _ in TRIPS}


def test_a_blank_record_never_passes_a_criterion() -> None:
    assessment = evaluate({}, defaults())

    assert {each.outcome for each in assessment.findings} <= {
        "needs_information",
        "concern",
        "fail",
    }
    assert finding(assessment, "purpose-stated").outcome == "fail"
    assert finding(assessment, "retention-limited").outcome == "needs_information"
    assert assessment.risk_tier == "high"


def test_a_decided_part_settles_a_combination_despite_a_blank() -> None:
    # Biometric data is stated, so the blank capabilities cannot change the answer.
    tripped = finding(
        assess(capabilities=[], data_collected=["biometric"]), "biometric-identification"
    )
    # Not a location record, so the unknown retention does not matter to this criterion.
    passed = finding(assess(retention_days=None), "location-retention")

    assert tripped.outcome == "concern"
    assert passed.outcome == "pass"


def test_explanations_name_the_values_with_vocabulary_labels() -> None:
    sharing = finding(assess(data_sharing=["immigration_enforcement"]), "no-immigration-sharing")
    retention = finding(assess(retention_days=730), "retention-limited")
    data = finding(assess(data_collected=["face_images", "video"]), "data-minimisation")
    legal = finding(
        assess(capabilities=["face_recognition"], authorized_uses="Any investigation."),
        "legal-basis",
    )

    assert sharing.explanation.startswith("The data is shared with immigration enforcement,")
    assert "It shares data with immigration enforcement agencies." in sharing.explanation
    assert "The retention period is 730 days, more than 365 days." in retention.explanation
    assert (
        "It collects images of people's faces and video of public places or people."
        in data.explanation
    )
    assert "It can identify or match people by their face." in legal.explanation
    assert "None of “warrant”, “court order”" in legal.explanation


def test_a_passing_finding_explains_with_the_values_too() -> None:
    retention = finding(assess(retention_days=90), "retention-limited")
    sharing = finding(assess(data_sharing=["none"]), "no-immigration-sharing")

    assert retention.explanation == (
        "The data is deleted after a fixed period of a year or less. "
        "The retention period is 90 days, not more than 365 days."
    )
    assert "It does not share data outside the department." in sharing.explanation


def test_a_combined_rule_says_which_part_decided() -> None:
    cost = finding(assess(funding_source=""), "cost-and-funding")

    assert cost.explanation == (
        "The record does not state both its yearly cost and how it is paid for. "
        "The funding source is not stated."
    )


def test_default_documents_are_valid_and_sized_sensibly() -> None:
    documents = default_documents()

    assert [document["slug"] for document in documents] == ["privacy", "equity"]
    for raw in documents:
        document = load_policy_document(raw)
        assert 8 <= len(document.criteria) <= 12
        assert all(criterion.guidance and criterion.question for criterion in document.criteria)
        assert all(
            criterion.explanation_pass and criterion.explanation_trip
            for criterion in document.criteria
        )


def test_default_documents_are_fresh_copies() -> None:
    first = default_documents()
    first[0]["criteria"].clear()

    assert default_documents()[0]["criteria"]


def test_face_recognition_raises_the_tier_to_high() -> None:
    assessment = assess(capabilities=["face_recognition"])

    assert assessment.risk_tier == "high"
    assert assessment.min_comment_days == 45
    assert assessment.meeting_required is True
    assert (
        "Under “Equity and community impact”, the “Biometrics” finding puts the technology "
        "at high risk." in assessment.risk_tier_reasons
    )


def test_immigration_sharing_makes_a_high_risk_review() -> None:
    assessment = assess(data_sharing=["immigration_enforcement"])

    assert assessment.risk_tier == "high"
    assert assessment.meeting_required is True
    assert assessment.risk_tier_reasons == (
        "1 criterion of “Privacy and civil liberties” failed; that policy puts 1 or more at "
        "high risk.",
    )


def test_one_concern_makes_a_medium_risk_review() -> None:
    assessment = assess(prohibited_uses="")

    assert (assessment.risk_tier, assessment.min_comment_days, assessment.meeting_required) == (
        "medium",
        30,
        False,
    )


def test_unknown_retention_alone_makes_a_medium_risk_review() -> None:
    assessment = assess(retention_days=None)

    assert assessment.risk_tier == "medium"
    assert assessment.risk_tier_reasons == (
        "1 criterion of “Privacy and civil liberties” needs more information; that policy puts "
        "1 or more at medium risk.",
    )
