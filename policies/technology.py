"""The technology fields that policy rules may refer to, and how to speak of them to residents.

A technology reaches the policies as a plain mapping of these fields. Text fields may be empty
strings or ``None``; ``retention_days`` and ``annual_cost`` are ``None`` when unknown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from policies.vocabulary import label

#: How a field's value is shaped, which decides the operators a rule may apply to it.
FieldKind = Literal["text", "text_list", "vocabulary_list", "object_list", "number", "boolean"]


@dataclass(frozen=True)
class TechnologyField:
    """One field of a technology record, as the rule language sees it."""

    name: str
    kind: FieldKind
    #: A noun phrase used inside sentences shown to residents, e.g. "the retention period".
    label: str
    #: For numbers, the unit written after the value ("days").
    unit: str = ""


TECHNOLOGY_FIELDS: Mapping[str, TechnologyField] = {
    field.name: field
    for field in (
        TechnologyField("name", "text", "the name"),
        TechnologyField("department", "text", "the department"),
        TechnologyField("vendor", "text", "the vendor"),
        TechnologyField("description", "text", "the description"),
        TechnologyField("purpose", "text", "the purpose"),
        TechnologyField("data_collected", "vocabulary_list", "the data collected"),
        TechnologyField("capabilities", "vocabulary_list", "the capabilities"),
        TechnologyField("data_sharing", "vocabulary_list", "who the data is shared with"),
        TechnologyField("retention_days", "number", "the retention period", unit="days"),
        TechnologyField("access_controls", "text", "the access controls and security measures"),
        TechnologyField("deployment_areas", "text_list", "the deployment areas"),
        TechnologyField("annual_cost", "number", "the annual cost"),
        TechnologyField("in_use", "boolean", "whether it is already in use"),
        TechnologyField("equity_impact", "text", "the equity impact"),
        TechnologyField("community_engagement", "text", "the community engagement"),
        TechnologyField("mitigations", "text", "the mitigations"),
        TechnologyField("documents", "object_list", "the supporting documents"),
        TechnologyField("authorized_uses", "text", "the authorized uses"),
        TechnologyField("prohibited_uses", "text", "the prohibited uses"),
        TechnologyField("alternatives_considered", "text", "the alternatives considered"),
        TechnologyField("funding_source", "text", "the funding source"),
    )
}

# Sentences stating what a controlled list holds: (opening words, sentence when only "none").
_LIST_SENTENCES: Mapping[str, tuple[str, str]] = {
    "data_collected": ("It collects", "It collects none of the listed kinds of data."),
    "capabilities": ("It can", "It has none of the listed capabilities."),
    "data_sharing": ("It shares data with", "It does not share data outside the department."),
}


def is_blank(value: Any) -> bool:
    """Whether a field value says nothing: absent, ``None``, whitespace or an empty list."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple | set | frozenset):
        return len(value) == 0
    return False


def as_number(value: Any) -> int | float | None:
    """The value as a number, or ``None`` when it is not one (booleans are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def as_items(value: Any) -> list[Any]:
    """The value as a list of items; a lone string counts as one item, not as its letters."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple | set | frozenset):
        return list(value)
    return []


def sentence(text: str) -> str:
    """Capitalise the first letter (only) and end with a full stop."""
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "?", "!")) else text + "."


def join_words(words: Iterable[str]) -> str:
    """Join words as a reader would: "a", "a and b", "a; b; and c" (labels may hold commas)."""
    items = list(words)
    if len(items) <= 2:
        return " and ".join(items)
    return "; ".join(items[:-1]) + "; and " + items[-1]


def format_number(field: str, number: int | float) -> str:
    """A number with thousands separators and the field's unit: "1,095 days"."""
    if isinstance(number, float) and number.is_integer():
        number = int(number)
    text = f"{number:,}" if isinstance(number, int) else f"{number:,.2f}"
    unit = TECHNOLOGY_FIELDS[field].unit
    if unit == "days" and number == 1:
        unit = "day"
    return f"{text} {unit}" if unit else text


def describe_list(field: str, values: Iterable[Any]) -> str:
    """A sentence stating a controlled list's values by their labels, for residents."""
    opening, only_none = _LIST_SENTENCES[field]
    stated = [str(value) for value in values if value != "none"]
    if not stated:
        return only_none
    labels = [_mid_sentence(label(field, value)) for value in stated]
    return sentence(f"{opening} {join_words(labels)}")


def _mid_sentence(text: str) -> str:
    # Labels are written to start a line ("Federal agencies"); inside a sentence they read
    # better in lower case, except where the second letter shows an acronym ("ID numbers").
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        return text[0].lower() + text[1:]
    return text
