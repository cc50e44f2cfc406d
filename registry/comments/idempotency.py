"""A comment post sent again is not stored twice: the ``Idempotency-Key`` of a post.

A post whose answer is lost (a dropped connection, a web process that died after the
COMMIT, "Outcome unknown") may well be stored; a resident or a partner's tool that posts
it again would store it twice. A post may carry a key, the same for every try of one post
and new for each new post:

- on the API, the ``Idempotency-Key`` header (IETF draft-ietf-httpapi-idempotency-key-header:
  a Structured Field string such as ``"8e03978e-…"``; the quotes may be left out);
- on the page, a one-time key in the form, made when the form is shown.

The comment keeps a hash of the key, unique per review. Sent again with the same fields, the
post gets the receipt of the comment it stored (201 again, with ``Idempotent-Replayed:
true``); with other fields under the same key it is refused with 422, as the draft asks,
because the key was reused by mistake and neither comment may be lost silently. The page's
key is hashed with the fields, so a resident who goes back and changes the text sends a new
comment rather than meeting that refusal.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlmodel import col

from registry.comments.models import Comment, CommenterContact
from registry.errors import Invalid

HEADER = "Idempotency-Key"
#: The WSGI environ's name for the header.
ENVIRON_KEY = "HTTP_IDEMPOTENCY_KEY"
#: The replayed receipt says so (as Stripe's and others' APIs do).
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY = 255
#: The page form's hidden field.
FORM_FIELD = "idempotency_key"

_PREFIX = b"daylight-idempotency-key:"


def parse_key(value: str) -> str:
    """The key a client sent, without the quotes of a Structured Field string; raises
    ``ValueError`` saying what is wrong with it."""
    key = value.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not key:
        raise ValueError("An Idempotency-Key needs at least one character; send a new random "
                         "one (a UUID, say) with each new comment.")
    if len(key) > MAX_KEY:
        raise ValueError(f"An Idempotency-Key can be at most {MAX_KEY} characters; this one "
                         f"has {len(key)}.")
    if not all(" " <= ch <= "~" for ch in key):
        raise ValueError("An Idempotency-Key may hold only printable ASCII characters.")
    return key


def key_hash(key: str) -> str:
    """What is stored of an API key: a hash (64 hex digits), whatever the client sent."""
    return hashlib.sha256(_PREFIX + key.encode()).hexdigest()


def new_form_key() -> str:
    """A one-time key for a comment form, made when the form is shown."""
    return secrets.token_urlsafe(18)


def form_key_hash(key: str, fields: Mapping[str, Any]) -> str:
    """What is stored of a form's key: hashed with what the resident sent, so the same form
    sent twice is one comment, and the form sent again with other words is another."""
    digest = hashlib.sha256(_PREFIX + b"form:" + key.encode())
    for value in stored_values(fields):
        digest.update(b"\x00" + (value or "").encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def stored_values(fields: Mapping[str, Any]) -> tuple[str | None, ...]:
    """A post's fields as a comment stores them (the text, name, neighbourhood, position
    and email), to tell whether a post sent again is the same post."""
    from registry.comments.services import ANONYMOUS

    return (fields["body"], (fields.get("display_name") or "").strip() or ANONYMOUS,
            (fields.get("neighborhood") or "").strip() or None, fields.get("position"),
            (fields.get("email") or "").strip() or None)


def reused_key() -> Invalid:
    """The draft's answer to a key sent again with a different post."""
    return Invalid(
        "This Idempotency-Key was already used for a different comment on this review, so "
        "this one was not stored. Send each new comment with a new key; send the same key "
        "only to repeat the very same post.",
        errors={HEADER: ["Already used for a different comment on this review."]})


@dataclass(frozen=True)
class StoredPost:
    """A comment found under a key: its row's receipt fields, and what it was posted with."""

    comment: dict[str, Any]
    values: tuple[str | None, ...]


# Built once; run only when a post carries a key.
_BY_KEY = (
    select(*Comment.__table__.columns, col(CommenterContact.email))  # type: ignore[attr-defined]
    .outerjoin(CommenterContact, col(CommenterContact.comment_id) == col(Comment.id))
    .where(col(Comment.review_id) == bindparam("review_id"),
           col(Comment.idempotency_key).in_(bindparam("keys", expanding=True))))


def stored_under(connection: Connection, review_id: str,
                 keys: Collection[str]) -> dict[str, StoredPost]:
    """The comments on ``review_id`` stored under ``keys`` (hashes), by key."""
    found: dict[str, StoredPost] = {}
    if not keys:
        return found
    for row in connection.execute(_BY_KEY, {"review_id": review_id,
                                            "keys": sorted(set(keys))}).mappings():
        found[row["idempotency_key"]] = StoredPost(dict(row), (
            row["body"], row["display_name"], row["neighborhood"], row["position"],
            row["email"]))
    return found
