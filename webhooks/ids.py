"""Opaque, time-ordered identifiers (ULID layout: 48 bits of milliseconds, 80 random bits).

Ordering by id is ordering by creation, which lets lists page with a plain ``id > cursor``.
It lives here because ``webhooks`` may not import ``registry``; the registry uses it too.
"""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base32, lower case


def new_id(prefix: str) -> str:
    """Return a new id such as ``tech_01hx…``: sortable by creation time, never reused."""
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        value, index = divmod(value, 32)
        chars.append(_ALPHABET[index])
    return f"{prefix}_{''.join(reversed(chars))}"
