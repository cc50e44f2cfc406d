"""When a failed delivery is tried again: Svix's schedule with jitter, and Retry-After."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

# The wait after the 1st, 2nd, … failed attempt; after the last one the delivery fails.
RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
JITTER = 0.2  # each wait is drawn from ±20% of the scheduled one…
# …except the last two (10 h each), which jitter only lengthens: with ±20% everywhere the
# whole schedule could shrink to 22 h, and a receiver down for a day would lose deliveries.
# This way every delivery keeps trying for at least 26 h.
NEVER_SHORTENED = 2
# A receiver may ask for a longer wait with Retry-After, but not for longer than this.
MAX_RETRY_AFTER = timedelta(hours=10)
# An endpoint that has only failed for this long is disabled.
DISABLE_AFTER = timedelta(days=5)
# Failures observed no more than this far apart, with no success between, count as one
# failing spell, so the failure clock runs on across them. A failure after a longer
# silence starts the clock afresh: nothing was sent meanwhile, so the silence tells us
# nothing about the endpoint, and one failure after a week unused must not disable it.
# It cannot be the longest wait between retries (about 13 h): one delivery's retries
# span about 27 h, so with an event every two or three days each event's first failure
# would come after such a gap and an endpoint that never once succeeded would never be
# disabled. Two days bridges that (and always exceeds any wait between retries).
QUIET_SPELL = timedelta(hours=48)


def retry_delay(
    attempt: int,
    random: Callable[[], float],
    retry_after: timedelta | None = None,
) -> timedelta | None:
    """How long to wait after failed attempt number ``attempt`` (1-based), or None to give up.

    ``random`` returns a float in [0, 1); 0.5 gives the schedule exactly (as does anything
    below 0.5 for the last two waits, which are never shortened). A Retry-After
    from the receiver lengthens the wait up to MAX_RETRY_AFTER; it never shortens it.
    """
    if attempt < 1 or attempt > len(RETRY_SCHEDULE):
        return None
    scheduled = RETRY_SCHEDULE[attempt - 1]
    spread = 2 * random() - 1
    if attempt > len(RETRY_SCHEDULE) - NEVER_SHORTENED:
        spread = max(spread, 0.0)
    delay = scheduled * (1 + JITTER * spread)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A Retry-After header (delay in seconds, or an HTTP date) as a wait from ``now``;
    None for anything else. It is a receiver's word: no value of it may raise, or the
    results recorded with it would fail the sender's pass for every endpoint."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # not "²", which isdigit() takes too
        return timedelta(seconds=int(value[:9]))  # nine digits are 31 years: plenty
    try:
        when = parsedate_to_datetime(value)
        wait = when - now
    except (TypeError, ValueError, IndexError, OverflowError):  # e.g. the year 99999999999
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        return None
    return wait if wait > timedelta(0) else None
