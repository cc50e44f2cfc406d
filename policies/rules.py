"""The rule language of policy criteria: a small, declarative predicate over technology fields.

A rule is plain JSON; when it *holds*, its criterion *trips*. A condition names one field and
applies one operator to it::

    {"field": "data_collected", "includes": "biometric"}
    {"field": "data_sharing", "any_of": ["federal_agencies", "immigration_enforcement"]}
    {"field": "data_sharing", "excludes": "none"}
    {"field": "retention_days", "gt": 365}
    {"field": "in_use", "eq": true}
    {"field": "purpose", "empty": true}
    {"field": "retention_days", "missing": true}
    {"field": "authorized_uses", "mentions_any": ["warrant", "court order"]}
    {"field": "deployment_areas", "count": {"lte": 2}}

and combinators join rules: ``{"all": [rule, ...]}``, ``{"any": [rule, ...]}``, ``{"not": rule}``.

Operators, by the kind of field they apply to:

- ``missing`` (the value is absent or null) and ``empty`` (absent, null, blank text or an empty
  list), each ``true`` or ``false``: any field. These are the only operators that look at
  missingness; every other operator cannot decide on a blank field (see :mod:`policies.checks`).
- ``includes`` / ``excludes`` (one value) and ``any_of`` (a non-empty list of values): the
  controlled lists ``data_collected``, ``capabilities``, ``data_sharing``; values must be in
  the field's vocabulary.
- ``gt``, ``gte``, ``lt``, ``lte`` (a number): ``retention_days``, ``annual_cost``;
  ``eq``, ``ne``: those numbers, and ``in_use`` with ``true``/``false``.
- ``mentions_any`` (a non-empty list of words or phrases, matched case-insensitively from the
  start of a word, so ``"evaluat"`` finds "evaluation"): text fields and ``deployment_areas``.
  It is a screening aid for free text, not proof; reviewers still read the record.
- ``count`` (an object with one comparison and a whole number, e.g. ``{"lte": 2}``): any list.

Parsing never evaluates anything: rules become the frozen dataclasses below, and problems are
reported with the path inside the rule where they are (``("any", 1)`` for ``any[1]``).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, cast

from policies.technology import TECHNOLOGY_FIELDS, FieldKind
from policies.vocabulary import VOCABULARIES

PresenceOperator = Literal["missing", "empty"]
MembershipOperator = Literal["includes", "excludes", "any_of"]
ComparisonOperator = Literal["gt", "gte", "lt", "lte", "eq", "ne"]

_ALL_KINDS: frozenset[FieldKind] = frozenset(
    ("text", "text_list", "vocabulary_list", "object_list", "number", "boolean")
)
_LISTS: frozenset[FieldKind] = frozenset(("text_list", "vocabulary_list", "object_list"))

#: Every operator and the kinds of field it applies to.
OPERATOR_KINDS: Mapping[str, frozenset[FieldKind]] = {
    "missing": _ALL_KINDS,
    "empty": _ALL_KINDS,
    "includes": frozenset(("vocabulary_list",)),
    "excludes": frozenset(("vocabulary_list",)),
    "any_of": frozenset(("vocabulary_list",)),
    "gt": frozenset(("number",)),
    "gte": frozenset(("number",)),
    "lt": frozenset(("number",)),
    "lte": frozenset(("number",)),
    "eq": frozenset(("number", "boolean")),
    "ne": frozenset(("number", "boolean")),
    "mentions_any": frozenset(("text", "text_list")),
    "count": _LISTS,
}

COMPARISON_OPERATORS: tuple[ComparisonOperator, ...] = ("gt", "gte", "lt", "lte", "eq", "ne")
COMBINATORS = ("all", "any", "not")

_KIND_NAMES: Mapping[FieldKind, str] = {
    "text": "text",
    "text_list": "a list of text",
    "vocabulary_list": "a list of vocabulary values",
    "object_list": "a list of documents",
    "number": "a number",
    "boolean": "true or false",
}


@dataclass(frozen=True)
class Presence:
    """Holds when the field is missing (``missing``) or says nothing (``empty``), or, with
    ``expected=False``, when it is not."""

    field: str
    operator: PresenceOperator
    expected: bool = True

    def to_dict(self) -> dict[str, Any]:
        """The rule as JSON."""
        return {"field": self.field, self.operator: self.expected}


@dataclass(frozen=True)
class Membership:
    """Holds when a controlled list includes the value, excludes it, or includes any of them."""

    field: str
    operator: MembershipOperator
    values: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The rule as JSON."""
        value: Any = list(self.values) if self.operator == "any_of" else self.values[0]
        return {"field": self.field, self.operator: value}


@dataclass(frozen=True)
class Comparison:
    """Holds when a number (or ``in_use``) compares as stated with the value."""

    field: str
    operator: ComparisonOperator
    value: int | float | bool

    def to_dict(self) -> dict[str, Any]:
        """The rule as JSON."""
        return {"field": self.field, self.operator: self.value}


@dataclass(frozen=True)
class Mentions:
    """Holds when the text mentions any of the phrases (case-insensitive)."""

    field: str
    phrases: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The rule as JSON."""
        return {"field": self.field, "mentions_any": list(self.phrases)}


@dataclass(frozen=True)
class Count:
    """Holds when the number of items in a list compares as stated with the value."""

    field: str
    operator: ComparisonOperator
    value: int

    def to_dict(self) -> dict[str, Any]:
        """The rule as JSON."""
        return {"field": self.field, "count": {self.operator: self.value}}


@dataclass(frozen=True)
class AllOf:
    """Holds when every rule holds."""

    rules: tuple[Rule, ...]

    def to_dict(self) -> dict[str, Any]:
        """The rule as JSON."""
        return {"all": [rule.to_dict() for rule in self.rules]}


@dataclass(frozen=True)
class AnyOf:
    """Holds when at least one rule holds."""

    rules: tuple[Rule, ...]

    def to_dict(self) -> dict[str, Any]:
        """The rule as JSON."""
        return {"any": [rule.to_dict() for rule in self.rules]}


@dataclass(frozen=True)
class Not:
    """Holds when the rule does not."""

    rule: Rule

    def to_dict(self) -> dict[str, Any]:
        """The rule as JSON."""
        return {"not": self.rule.to_dict()}


Rule: TypeAlias = Presence | Membership | Comparison | Mentions | Count | AllOf | AnyOf | Not

#: Where a problem is inside a rule: ``("any", 1, "not")`` is ``any[1].not``.
RulePath = tuple[str | int, ...]


@dataclass(frozen=True)
class RuleProblem:
    """One mistake in a rule and where it is."""

    path: RulePath
    message: str


class RuleSyntaxError(ValueError):
    """A rule could not be parsed; ``problems`` lists every mistake found."""

    def __init__(self, problems: list[RuleProblem]) -> None:
        super().__init__("; ".join(problem.message for problem in problems))
        self.problems = problems


def parse_rule(data: Any) -> Rule:
    """Parse a rule from JSON, or raise :class:`RuleSyntaxError` listing every mistake."""
    problems: list[RuleProblem] = []
    rule = _parse(data, (), problems)
    if problems or rule is None:
        raise RuleSyntaxError(problems)
    return rule


def format_path(path: RulePath, root: str = "rule") -> str:
    """Write a path the way people read it: ``rule.any[1].not``."""
    text = root
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _parse(data: Any, path: RulePath, problems: list[RuleProblem]) -> Rule | None:
    if not isinstance(data, Mapping):
        problems.append(
            RuleProblem(
                path,
                "a rule must be an object such as "
                f'{{"field": "retention_days", "gt": 365}}, not {_type_name(data)}',
            )
        )
        return None
    combinators = [key for key in COMBINATORS if key in data]
    if combinators:
        return _parse_combinator(data, combinators, path, problems)
    if "field" not in data:
        problems.append(
            RuleProblem(
                path,
                "a rule needs a 'field' and an operator, or one of 'all', 'any', 'not'"
                + _found(data.keys()),
            )
        )
        return None
    return _parse_condition(data, path, problems)


def _parse_combinator(
    data: Mapping[str, Any], combinators: list[str], path: RulePath, problems: list[RuleProblem]
) -> Rule | None:
    if len(data) != 1:
        others = ", ".join(f"'{key}'" for key in data if key != combinators[0])
        problems.append(
            RuleProblem(
                path,
                f"'{combinators[0]}' must be the only key of its rule; move {others} "
                "into a rule of its own",
            )
        )
        return None
    key = combinators[0]
    value = data[key]
    if key == "not":
        inner = _parse(value, (*path, "not"), problems)
        return Not(inner) if inner is not None else None
    if not isinstance(value, list) or not value:
        problems.append(
            RuleProblem(path, f"'{key}' needs a non-empty list of rules, not {_type_name(value)}")
        )
        return None
    parsed = [_parse(item, (*path, key, index), problems) for index, item in enumerate(value)]
    rules = tuple(rule for rule in parsed if rule is not None)
    if len(rules) != len(parsed):
        return None
    return AllOf(rules) if key == "all" else AnyOf(rules)


def _parse_condition(
    data: Mapping[str, Any], path: RulePath, problems: list[RuleProblem]
) -> Rule | None:
    field_name = data["field"]
    operators = [key for key in data if key != "field"]
    spec = TECHNOLOGY_FIELDS.get(field_name) if isinstance(field_name, str) else None
    if not isinstance(field_name, str):
        problems.append(
            RuleProblem(path, f"'field' must be a field name, not {_type_name(field_name)}")
        )
    elif spec is None:
        problems.append(
            RuleProblem(
                path, f"unknown field '{field_name}'{_did_you_mean(field_name, TECHNOLOGY_FIELDS)}"
            )
        )
    # Offer the operators that fit this field when it is known, so the fix is in the message.
    allowed = [name for name, kinds in OPERATOR_KINDS.items() if spec is None or spec.kind in kinds]
    hint = f"for '{field_name}' use one of" if spec is not None else "operators are"
    unknown_operators = [key for key in operators if key not in OPERATOR_KINDS]
    for operator in unknown_operators:
        problems.append(
            RuleProblem(
                path,
                f"unknown operator '{operator}'{_did_you_mean(operator, OPERATOR_KINDS)}; "
                f"{hint}: {', '.join(allowed)}",
            )
        )
    if spec is None or unknown_operators:
        return None
    if len(operators) != 1:
        message = (
            f"no operator for field '{field_name}'"
            if not operators
            else f"one operator per condition, found {', '.join(map(repr, operators))}; "
            "join conditions with 'all' or 'any'"
        )
        problems.append(RuleProblem(path, f"{message}; {hint}: {', '.join(allowed)}"))
        return None
    operator = operators[0]
    if operator not in allowed:
        problems.append(
            RuleProblem(
                path,
                f"operator '{operator}' does not apply to '{field_name}' "
                f"({_KIND_NAMES[spec.kind]}); {hint}: {', '.join(allowed)}",
            )
        )
        return None
    return _parse_value(field_name, spec.kind, operator, data[operator], path, problems)


def _parse_value(
    field_name: str,
    kind: FieldKind,
    operator: str,
    value: Any,
    path: RulePath,
    problems: list[RuleProblem],
) -> Rule | None:
    def wrong(expected: str) -> Rule | None:
        problems.append(
            RuleProblem(path, f"'{operator}' needs {expected}, not {_type_name(value)}")
        )
        return None

    if operator in ("missing", "empty"):
        if not isinstance(value, bool):
            return wrong("true or false")
        return Presence(field_name, cast(PresenceOperator, operator), value)

    if operator in ("includes", "excludes", "any_of"):
        if operator == "any_of":
            if (
                not isinstance(value, list)
                or not value
                or not all(isinstance(item, str) for item in value)
            ):
                return wrong("a non-empty list of vocabulary values")
            values = tuple(value)
        elif not isinstance(value, str):
            return wrong("one vocabulary value (a string)")
        else:
            values = (value,)
        vocabulary = VOCABULARIES[field_name]
        unknown = [item for item in values if item not in vocabulary]
        for item in unknown:
            problems.append(
                RuleProblem(
                    path,
                    f"'{item}' is not a value of '{field_name}'{_did_you_mean(item, vocabulary)}",
                )
            )
        if unknown:
            return None
        return Membership(field_name, cast(MembershipOperator, operator), values)

    if operator == "mentions_any":
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(item, str) and item.strip() for item in value)
        ):
            return wrong("a non-empty list of words or phrases")
        return Mentions(field_name, tuple(item.strip() for item in value))

    if operator == "count":
        return _parse_count(field_name, value, path, problems)

    # What is left are the comparisons; booleans compare only with booleans, numbers with
    # numbers (a bool is an int to Python, so it is refused explicitly).
    comparison = cast(ComparisonOperator, operator)
    if kind == "boolean":
        if not isinstance(value, bool):
            return wrong("true or false")
    elif isinstance(value, bool) or not isinstance(value, int | float):
        return wrong("a number")
    elif isinstance(value, float) and not math.isfinite(value):
        # JSON has no NaN or infinity, but Python's parser reads them: NaN compares false
        # with everything (the criterion could never trip) and cannot be written back.
        problems.append(RuleProblem(path, f"'{operator}' needs a finite number, not {value!r}"))
        return None
    return Comparison(field_name, comparison, value)


def _parse_count(
    field_name: str, value: Any, path: RulePath, problems: list[RuleProblem]
) -> Rule | None:
    example = 'an object with one comparison and a whole number, such as {"lte": 2}'
    if not isinstance(value, Mapping) or len(value) != 1:
        problems.append(RuleProblem(path, f"'count' needs {example}, not {_type_name(value)}"))
        return None
    ((operator, number),) = value.items()
    if operator not in COMPARISON_OPERATORS:
        problems.append(
            RuleProblem(
                path,
                f"unknown comparison '{operator}' in 'count'; use one of: "
                f"{', '.join(COMPARISON_OPERATORS)}",
            )
        )
        return None
    if isinstance(number, bool) or not isinstance(number, int) or number < 0:
        problems.append(
            RuleProblem(path, f"'count' compares with a whole number of 0 or more, not {number!r}")
        )
        return None
    return Count(field_name, cast(ComparisonOperator, operator), number)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _did_you_mean(word: str, options: Iterable[str]) -> str:
    matches = difflib.get_close_matches(word, list(options), n=1, cutoff=0.75)
    return f" (did you mean '{matches[0]}'?)" if matches else ""


def _found(keys: Iterable[Any]) -> str:
    names = ", ".join(f"'{key}'" for key in keys)
    return f"; found {names}" if names else "; found an empty object"
