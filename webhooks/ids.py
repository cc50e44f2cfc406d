"""Opaque, time-ordered identifiers (ULID layout: 48 bits of milliseconds, 80 random bits).

Ordering by id is ordering by creation, which lets lists page with a plain ``id > cursor``.
Within one process that holds even for ids made in the same millisecond: as in ULID's
monotonic mode, such an id is the previous one plus one (a group of comments is written in
well under a millisecond, and must still list in the order it arrived). Across processes,
ids of the same millisecond are ordered at random.
It lives here because ``webhooks`` may not import ``registry``; the registry uses it too.
"""

from __future__ import annotations

import secrets
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base32, lower case
_lock = threading.Lock()
_last = 0


def new_id(prefix: str) -> str:
    """Return a new id such as ``tech_01hx…``: sortable by creation time, never reused."""
    global _last
    with _lock:
        value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
        if value <= _last:  # the same millisecond (or the clock stepped back)
            value = _last + 1
        _last = value
    chars = []
    for _ in range(26):
        value, index = divmod(value, 32)
        chars.append(_ALPHABET[index])
    return f"{prefix}_{''.join(reversed(chars))}"
