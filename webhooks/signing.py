"""Standard Webhooks signatures: ``v1,`` + base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}``."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # the standard asks for at least 24


def new_secret() -> str:
    """Return a new signing secret: ``whsec_`` followed by base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key a ``whsec_…`` secret stands for.

    Raises ``ValueError`` when the secret is not base64 after its prefix.
    """
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise ValueError("a webhook secret is whsec_ followed by base64") from exc
    if not key:
        raise ValueError("a webhook secret may not be empty")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """Sign one message: ``v1,<base64 HMAC-SHA256 of "msg_id.timestamp.body">``."""
    payload = body.encode("utf-8") if isinstance(body, str) else body
    signed = f"{msg_id}.{timestamp}.".encode() + payload
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_header(
    secrets_in_use: Iterable[str], msg_id: str, timestamp: int, body: bytes | str
) -> str:
    """The ``webhook-signature`` value: one signature per live secret, space-separated.

    During a rotation's grace period both the new and the old secret are live, so a
    receiver that has not yet switched keeps verifying.
    """
    return " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets_in_use)


def secrets_in_use(
    current: str, previous: str | None, previous_expires_at: datetime | None, now: datetime
) -> list[str]:
    """The secrets that sign at ``now``: the current one, and after a rotation the old one
    until its grace period ends."""
    live = [current]
    if previous and previous_expires_at is not None and now < previous_expires_at:
        live.append(previous)
    return live
