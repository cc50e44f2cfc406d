"""The resident comment form: reading, validating (with the API's own rules) and the honeypot."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from marshmallow import ValidationError

from registry.comments.idempotency import FORM_FIELD, form_key_hash, new_form_key, parse_key
from registry.comments.schemas import POSITIONS, CommentIn
from registry.errors import flatten_messages

#: The inputs a resident fills in, in the order of the form.
FIELDS = ("body", "display_name", "email", "neighborhood", "position")
#: A field people never see (hidden by the stylesheet) but form-filling robots do. A filled
#: honeypot is refused with 400 and nothing is stored; a person whose browser autofilled it
#: is told why, and keeps what they wrote.
HONEYPOT = "website"

_FRIENDLIER = {
    "email": "Enter an email address such as name@example.org, or leave it empty.",
    "position": "Choose support, oppose, neutral, or leave it unanswered.",
}


@dataclass
class CommentForm:
    """What the resident typed (kept for redisplay) and the problems beside each field."""

    values: dict[str, str] = field(default_factory=lambda: dict.fromkeys(FIELDS, ""))
    errors: dict[str, list[str]] = field(default_factory=dict)
    honeypot_filled: bool = False
    # The form's one-time key (``registry.comments.idempotency``): made when the form is
    # shown, so that the same form sent twice (a double click, a resend after a lost answer)
    # stores one comment. Kept when the form is shown again with its errors.
    key: str = field(default_factory=new_form_key)
    key_sent: bool = False  # the post carried a key of the form's making

    @classmethod
    def from_request(cls, form: Mapping[str, str]) -> CommentForm:
        """Read the posted form. Line breaks are normalised so lengths count as people do."""
        values = {name: (form.get(name) or "").replace("\r\n", "\n") for name in FIELDS}
        posted = cls(values=values, honeypot_filled=bool((form.get(HONEYPOT) or "").strip()))
        try:
            posted.key, posted.key_sent = parse_key(form.get(FORM_FIELD) or ""), True
        except ValueError:
            pass  # a page from before keys, or a robot: posted without one, shown with a new one
        return posted

    def idempotency_key(self, fields: Mapping[str, Any]) -> str | None:
        """What the comment stores of the form's key, for these validated ``fields``."""
        return form_key_hash(self.key, fields) if self.key_sent else None

    def validate(self) -> dict[str, Any] | None:
        """The fields for ``post_comment``, or None with ``errors`` filled in."""
        if self.honeypot_filled:
            self.errors["_form"] = [
                "Your comment was not accepted because the field labelled “Leave this field "
                "empty” was filled in (browsers sometimes do this automatically). Empty it and "
                "send the comment again."]
            return None
        data: dict[str, Any] = {
            name: value.strip() or None for name, value in self.values.items() if name != "body"
        }
        data["body"] = self.values["body"]
        if data["position"] not in (None, *POSITIONS):
            data["position"] = "unknown"  # let the schema report it beside the field
        try:
            loaded: dict[str, Any] = CommentIn().load(data)
        except ValidationError as exc:
            for name, messages in flatten_messages(exc.messages).items():
                self.errors[name] = [_FRIENDLIER.get(name, message) for message in messages]
            if "body" in self.errors and not self.values["body"].strip():
                self.errors["body"] = ["Write your comment before sending it."]
            return None
        return loaded
