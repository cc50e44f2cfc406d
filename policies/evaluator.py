"""Assessing a technology against policy documents: findings, risk tier and review needs.

Each criterion gives one finding: ``pass`` when its rule does not hold, the criterion's
``outcome`` (``concern`` or ``fail``) when it does, and ``needs_information`` when the rule
cannot be decided because a field it needs is not stated (see :mod:`policies.checks`).

Each document then sets a tier from its own findings and tier rules (see
:mod:`policies.document`). The assessment's tier is the strictest of them, and at that tier
every document's requirement applies: the longest ``min_comment_days`` and a meeting if any
document requires one. With no documents at all the technology is ``low`` under the default
tier rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from policies.checks import Verdict, check
from policies.document import (
    RISK_TIERS,
    Criterion,
    PolicyDocument,
    RiskTier,
    TierRules,
    TierThresholds,
)
from policies.rules import AllOf, AnyOf, Not, Rule
from policies.technology import TECHNOLOGY_FIELDS, join_words, sentence

Outcome = Literal["pass", "concern", "fail", "needs_information"]


@dataclass(frozen=True)
class Finding:
    """What one criterion found about a technology, in words a resident can read."""

    policy: str
    criterion: str
    principle: str
    outcome: Outcome
    explanation: str
    question: str = ""
    #: Advice to the department on meeting the criterion.
    guidance: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The finding as JSON."""
        return {
            "policy": self.policy,
            "criterion": self.criterion,
            "principle": self.principle,
            "question": self.question,
            "outcome": self.outcome,
            "explanation": self.explanation,
            "guidance": self.guidance,
        }


@dataclass(frozen=True)
class Assessment:
    """The result of assessing a technology against a set of policy documents."""

    findings: tuple[Finding, ...]
    risk_tier: RiskTier
    min_comment_days: int
    meeting_required: bool
    #: Why the technology is at this tier, in plain language (empty at ``low``).
    risk_tier_reasons: tuple[str, ...] = ()
    #: The slugs of the documents assessed against, in order.
    policies: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The assessment as JSON."""
        return {
            "policies": list(self.policies),
            "findings": [finding.as_dict() for finding in self.findings],
            "risk_tier": self.risk_tier,
            "risk_tier_reasons": list(self.risk_tier_reasons),
            "min_comment_days": self.min_comment_days,
            "meeting_required": self.meeting_required,
        }


def evaluate(technology: Mapping[str, Any], documents: Sequence[PolicyDocument]) -> Assessment:
    """Assess a technology (a mapping of its fields) against every criterion of ``documents``."""
    findings: list[Finding] = []
    tiers: list[tuple[RiskTier, list[str]]] = []
    for document in documents:
        assessed = [
            (criterion, _assess(document, criterion, technology)) for criterion in document.criteria
        ]
        findings.extend(finding for _, finding in assessed)
        tiers.append(_tier_for(document, assessed))

    tier: RiskTier = max((tier for tier, _ in tiers), key=RISK_TIERS.index, default="low")
    reasons = [reason for each, found in tiers if each == tier for reason in found]
    requirements = [document.tiers.rule_for(tier) for document in documents]
    if not requirements:
        requirements = [TierRules().rule_for(tier)]
    return Assessment(
        findings=tuple(findings),
        risk_tier=tier,
        min_comment_days=max(rule.min_comment_days for rule in requirements),
        meeting_required=any(rule.meeting_required for rule in requirements),
        risk_tier_reasons=tuple(reasons),
        policies=tuple(document.slug for document in documents),
    )


def _assess(
    document: PolicyDocument, criterion: Criterion, technology: Mapping[str, Any]
) -> Finding:
    verdict = check(criterion.rule, technology)
    outcome: Outcome
    if verdict.holds is None:
        outcome = "needs_information"
    elif verdict.holds:
        outcome = criterion.outcome
    else:
        outcome = "pass"
    return Finding(
        policy=document.slug,
        criterion=criterion.id,
        principle=criterion.principle,
        outcome=outcome,
        explanation=_explain(criterion, verdict),
        question=criterion.question,
        guidance=criterion.guidance,
    )


def _explain(criterion: Criterion, verdict: Verdict) -> str:
    if verdict.holds is None:
        labels = [TECHNOLOGY_FIELDS[name].label for name in verdict.unstated]
        verb = "is" if len(labels) == 1 else "are"
        unstated = f"{join_words(labels)} {verb} not stated"
        return sentence(f"this cannot be answered yet because {unstated}")
    written = criterion.explanation_trip if verdict.holds else criterion.explanation_pass
    if not written:
        return " ".join([*verdict.notes, *verdict.facts])
    # A written explanation says what the finding means; the facts add the values behind it.
    # Notes ("the purpose is not stated") would only repeat it for a single condition, but
    # for a combination they tell the reader which part decided.
    notes = verdict.notes if isinstance(_unwrap(criterion.rule), AllOf | AnyOf) else ()
    return " ".join([written, *notes, *verdict.facts])


def _unwrap(rule: Rule) -> Rule:
    while isinstance(rule, Not):
        rule = rule.rule
    return rule


def _tier_for(
    document: PolicyDocument, assessed: list[tuple[Criterion, Finding]]
) -> tuple[RiskTier, list[str]]:
    outcomes = [finding.outcome for _, finding in assessed]
    counts = {
        "fails": outcomes.count("fail"),
        # A fail counts as a concern too, so that a worse finding never lowers the tier.
        "concerns": outcomes.count("fail") + outcomes.count("concern"),
        "needs_information": outcomes.count("needs_information"),
    }
    levels: tuple[tuple[RiskTier, TierThresholds], ...] = (
        ("high", document.tiers.high_if),
        ("medium", document.tiers.medium_if),
    )
    for tier, thresholds in levels:
        reasons = [
            _count_reason(document, tier, kind, counts[kind], threshold)
            for kind, threshold in (
                ("fails", thresholds.fails_at_least),
                ("concerns", thresholds.concerns_at_least),
                ("needs_information", thresholds.needs_information_at_least),
            )
            if threshold is not None and counts[kind] >= threshold
        ]
        reasons += [
            f"Under “{document.title}”, the “{criterion.principle}” finding puts the "
            f"technology at {tier} risk."
            for criterion, finding in assessed
            if finding.outcome in ("concern", "fail") and criterion.raises_tier_to == tier
        ]
        if reasons:
            return tier, reasons
    return "low", []


def _count_reason(
    document: PolicyDocument, tier: str, kind: str, count: int, threshold: int
) -> str:
    what = {
        "fails": "failed",
        "concerns": "raised a concern or failed",
        "needs_information": "needs more information" if count == 1 else "need more information",
    }[kind]
    criteria = "1 criterion" if count == 1 else f"{count} criteria"
    return (
        f"{criteria} of “{document.title}” {what}; that policy puts {threshold} or more "
        f"at {tier} risk."
    )
