"""Checking a rule against a technology, in three-valued logic, with reasons residents can read.

A rule holds (``True``), does not hold (``False``) or cannot be decided (``None``) because a
field it needs is not stated. Only ``missing`` and ``empty`` are about missingness; every other
condition on a blank field is undecided, so a blank record never passes silently. Combinators
follow Kleene's logic: ``all`` is false as soon as one part is false, whatever the blanks;
``any`` is true as soon as one part is true; otherwise a blank part leaves them undecided.

Along the way each condition records plain-language *facts* (true statements about the values
involved, using vocabulary labels), *notes* (statements about what is or is not stated) and the
fields that were not stated, for the evaluator to build explanations from.
"""

from __future__ import annotations

import operator as op
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from policies.rules import (
    AllOf,
    AnyOf,
    Comparison,
    ComparisonOperator,
    Count,
    Membership,
    Mentions,
    Not,
    Presence,
    Rule,
)
from policies.technology import (
    TECHNOLOGY_FIELDS,
    as_items,
    as_number,
    describe_list,
    format_number,
    is_blank,
    join_words,
    sentence,
)

_COMPARE: Mapping[ComparisonOperator, Callable[[Any, Any], bool]] = {
    "gt": op.gt,
    "gte": op.ge,
    "lt": op.lt,
    "lte": op.le,
    "eq": op.eq,
    "ne": op.ne,
}
# How a comparison reads when it holds and when it does not.
_COMPARE_WORDS: Mapping[ComparisonOperator, tuple[str, str]] = {
    "gt": ("more than", "not more than"),
    "gte": ("at least", "less than"),
    "lt": ("less than", "not less than"),
    "lte": ("at most", "more than"),
    "eq": ("exactly", "not"),
    "ne": ("not", "exactly"),
}


@dataclass(frozen=True)
class Verdict:
    """The result of checking a rule: whether it holds, and the reasons."""

    #: ``True`` or ``False``; ``None`` when a field it needs is not stated.
    holds: bool | None
    #: Statements about the values the decision rests on.
    facts: tuple[str, ...] = ()
    #: Statements about which fields are or are not stated.
    notes: tuple[str, ...] = ()
    #: Fields whose absence left the rule undecided.
    unstated: tuple[str, ...] = ()


def check(rule: Rule, technology: Mapping[str, Any]) -> Verdict:
    """Check ``rule`` against a technology's fields."""
    if isinstance(rule, AllOf | AnyOf):
        return _combine(rule, [check(part, technology) for part in rule.rules])
    if isinstance(rule, Not):
        inner = check(rule.rule, technology)
        holds = None if inner.holds is None else not inner.holds
        # Facts are true statements about the record, so negation leaves them as they are.
        return Verdict(holds, inner.facts, inner.notes, inner.unstated)

    value = technology.get(rule.field)
    label = TECHNOLOGY_FIELDS[rule.field].label
    if isinstance(rule, Presence):
        absent = value is None if rule.operator == "missing" else is_blank(value)
        note = f"{label} is not stated" if absent else f"{label} is stated"
        return Verdict(absent == rule.expected, notes=(sentence(note),))
    if is_blank(value):
        return Verdict(None, unstated=(rule.field,))
    if isinstance(rule, Membership):
        return _check_membership(rule, as_items(value))
    if isinstance(rule, Comparison):
        return _check_comparison(rule, value)
    if isinstance(rule, Mentions):
        return _check_mentions(rule, value)
    return _check_count(rule, as_items(value))


def _combine(rule: AllOf | AnyOf, verdicts: list[Verdict]) -> Verdict:
    # The value that settles the combination on its own: one false part for "all", one true
    # part for "any".
    settling = isinstance(rule, AnyOf)
    deciding = [verdict for verdict in verdicts if verdict.holds is settling]
    if deciding:
        return _merge(settling, deciding)
    undecided = [verdict for verdict in verdicts if verdict.holds is None]
    if undecided:
        return _merge(None, undecided)
    return _merge(not settling, verdicts)


def _merge(holds: bool | None, verdicts: Iterable[Verdict]) -> Verdict:
    parts = list(verdicts)
    return Verdict(
        holds,
        _unique(fact for verdict in parts for fact in verdict.facts),
        _unique(note for verdict in parts for note in verdict.notes),
        _unique(field for verdict in parts for field in verdict.unstated),
    )


def _check_membership(rule: Membership, items: list[Any]) -> Verdict:
    present = set(items)
    if rule.operator == "excludes":
        holds = rule.values[0] not in present
    else:
        # "includes" is "any_of" with a single value.
        holds = any(value in present for value in rule.values)
    return Verdict(holds, facts=(describe_list(rule.field, items),))


def _check_comparison(rule: Comparison, value: Any) -> Verdict:
    spec = TECHNOLOGY_FIELDS[rule.field]
    if spec.kind == "boolean":
        if not isinstance(value, bool):
            return Verdict(None, unstated=(rule.field,))
        holds = _COMPARE[rule.operator](value, rule.value)
        fact = "It is already in use" if value else "It is not yet in use"
        return Verdict(holds, facts=(sentence(fact),))
    number = as_number(value)
    if number is None:
        # A value that is not a number cannot be compared; treat it as not stated rather
        # than guess (the registry validates types, so this only guards against bad data).
        return Verdict(None, unstated=(rule.field,))
    holds = _COMPARE[rule.operator](number, rule.value)
    words = _COMPARE_WORDS[rule.operator][0 if holds else 1]
    threshold = format_number(rule.field, rule.value)
    stated = format_number(rule.field, number)
    return Verdict(holds, facts=(sentence(f"{spec.label} is {stated}, {words} {threshold}"),))


def _check_mentions(rule: Mentions, value: Any) -> Verdict:
    label = TECHNOLOGY_FIELDS[rule.field].label
    text = " ".join(str(item) for item in as_items(value)).casefold()
    # Phrases match from the start of a word, so "evaluat" finds "evaluation" while "aim"
    # does not find "claim".
    found = [
        phrase
        for phrase in rule.phrases
        if re.search(r"(?<!\w)" + re.escape(phrase.casefold()), text)
    ]
    if found:
        verb = "appears" if len(found) == 1 else "appear"
        quoted = join_words(f"“{phrase}”" for phrase in found)
        return Verdict(True, facts=(sentence(f"{quoted} {verb} in {label}"),))
    quoted = ", ".join(f"“{phrase}”" for phrase in rule.phrases)
    return Verdict(False, facts=(sentence(f"none of {quoted} appears in {label}"),))


def _check_count(rule: Count, items: list[Any]) -> Verdict:
    holds = _COMPARE[rule.operator](len(items), rule.value)
    if TECHNOLOGY_FIELDS[rule.field].kind == "vocabulary_list":
        return Verdict(holds, facts=(describe_list(rule.field, items),))
    label = TECHNOLOGY_FIELDS[rule.field].label
    count = "is 1 entry" if len(items) == 1 else f"are {len(items)} entries"
    listed = [str(item) for item in items if isinstance(item, str)]
    detail = f": {join_words(listed)}" if listed else ""
    return Verdict(holds, facts=(sentence(f"there {count} in {label}{detail}"),))


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
