"""Daylight's policies: controlled vocabularies, policy documents and the evaluator.

A plain library: it imports neither Flask, nor the database, nor the other Daylight packages.
"""

from policies.defaults import default_documents
from policies.document import Criterion, PolicyDocument, RiskTier, TierRule, TierRules
from policies.evaluator import Assessment, Finding, Outcome, evaluate
from policies.schema import (
    PolicyDocumentError,
    PolicyDocumentSchema,
    dump_policy_document,
    load_policy_document,
)
from policies.technology import TECHNOLOGY_FIELDS
from policies.vocabulary import VOCABULARIES

__all__ = [
    "TECHNOLOGY_FIELDS",
    "VOCABULARIES",
    "Assessment",
    "Criterion",
    "Finding",
    "Outcome",
    "PolicyDocument",
    "PolicyDocumentError",
    "PolicyDocumentSchema",
    "RiskTier",
    "TierRule",
    "TierRules",
    "default_documents",
    "dump_policy_document",
    "evaluate",
    "load_policy_document",
]
