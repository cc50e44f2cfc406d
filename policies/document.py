"""Policy documents as typed, immutable values.

A policy document is a set of criteria, each a question with a rule over a technology's fields,
and the tier rules that turn the findings into a risk tier and a public-review requirement.
Documents are built by :func:`policies.schema.load_policy_document`, which validates them;
``to_dict`` gives back the JSON it accepts.

Tier rules (the ``tiers`` section, every part optional, defaults shown)::

    {
      "low":    {"min_comment_days": 14, "meeting_required": false},
      "medium": {"min_comment_days": 30, "meeting_required": false},
      "high":   {"min_comment_days": 45, "meeting_required": true},
      "high_if":   {"fails_at_least": 1, "concerns_at_least": 4},
      "medium_if": {"concerns_at_least": 1, "needs_information_at_least": 1}
    }

A document puts a technology at ``high`` when any ``high_if`` threshold is reached or a tripped
criterion has ``raises_tier_to: high``; otherwise at ``medium`` when any ``medium_if`` threshold
is reached or a tripped criterion raises it to ``medium``; otherwise at ``low``. Thresholds
count findings: ``fails_at_least`` counts fails, ``concerns_at_least`` counts concerns *and*
fails (a worse finding never lowers the tier), ``needs_information_at_least`` counts findings
that need information. A threshold left out (or null) never applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from policies.rules import Rule

RiskTier = Literal["low", "medium", "high"]
TripOutcome = Literal["concern", "fail"]

#: Tiers from least to most strict.
RISK_TIERS: tuple[RiskTier, ...] = ("low", "medium", "high")


@dataclass(frozen=True)
class TierRule:
    """What a public review must offer at one tier."""

    min_comment_days: int
    meeting_required: bool

    def to_dict(self) -> dict[str, Any]:
        """The rule as JSON."""
        return {
            "min_comment_days": self.min_comment_days,
            "meeting_required": self.meeting_required,
        }


@dataclass(frozen=True)
class TierThresholds:
    """Counts of findings that reach a tier; ``None`` means the count never does."""

    fails_at_least: int | None = None
    concerns_at_least: int | None = None
    needs_information_at_least: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The thresholds as JSON, leaving out those that never apply."""
        values = {
            "fails_at_least": self.fails_at_least,
            "concerns_at_least": self.concerns_at_least,
            "needs_information_at_least": self.needs_information_at_least,
        }
        return {key: value for key, value in values.items() if value is not None}


@dataclass(frozen=True)
class TierRules:
    """How a document turns findings into a risk tier, and what each tier requires."""

    low: TierRule = field(default_factory=lambda: TierRule(14, False))
    medium: TierRule = field(default_factory=lambda: TierRule(30, False))
    high: TierRule = field(default_factory=lambda: TierRule(45, True))
    high_if: TierThresholds = field(
        default_factory=lambda: TierThresholds(fails_at_least=1, concerns_at_least=4)
    )
    medium_if: TierThresholds = field(
        default_factory=lambda: TierThresholds(concerns_at_least=1, needs_information_at_least=1)
    )

    def rule_for(self, tier: RiskTier) -> TierRule:
        """The review requirement at ``tier``."""
        rule: TierRule = getattr(self, tier)
        return rule

    def to_dict(self) -> dict[str, Any]:
        """The tier rules as JSON."""
        return {
            "low": self.low.to_dict(),
            "medium": self.medium.to_dict(),
            "high": self.high.to_dict(),
            "high_if": self.high_if.to_dict(),
            "medium_if": self.medium_if.to_dict(),
        }


@dataclass(frozen=True)
class Criterion:
    """One question a policy asks of every technology."""

    id: str
    principle: str
    question: str
    rule: Rule
    #: The finding when the rule holds (the criterion *trips*).
    outcome: TripOutcome
    guidance: str
    explanation_pass: str | None = None
    explanation_trip: str | None = None
    #: Tripping this criterion puts the technology at least at this tier.
    raises_tier_to: Literal["medium", "high"] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The criterion as JSON, leaving out optional keys that are not set."""
        data: dict[str, Any] = {
            "id": self.id,
            "principle": self.principle,
            "question": self.question,
            "rule": self.rule.to_dict(),
            "outcome": self.outcome,
            "guidance": self.guidance,
        }
        optional = {
            "explanation_pass": self.explanation_pass,
            "explanation_trip": self.explanation_trip,
            "raises_tier_to": self.raises_tier_to,
        }
        data.update({key: value for key, value in optional.items() if value is not None})
        return data


@dataclass(frozen=True)
class PolicyDocument:
    """A validated policy document."""

    slug: str
    title: str
    summary: str
    criteria: tuple[Criterion, ...]
    tiers: TierRules = field(default_factory=TierRules)

    def to_dict(self) -> dict[str, Any]:
        """The document as JSON that :func:`policies.load_policy_document` accepts again."""
        return {
            "slug": self.slug,
            "title": self.title,
            "summary": self.summary,
            "criteria": [criterion.to_dict() for criterion in self.criteria],
            "tiers": self.tiers.to_dict(),
        }
