"""Comment summaries that stay cheap when a review draws a million comments.

``services.summary`` counts every published comment of a review: 12–23 ms at 10,000
comments and 1.3–1.8 s at 1,000,000 (``bench.scale``, docs/performance.md). The technology
page shows the summary on every view, and the views come when a comment period draws a
crowd: each new comment then moves the event log's head, so the read cache
(``registry.cache``) misses and every view would count the million again. A few residents
reading the page would keep both cores busy.

So, in each web process, a summary that was slow to count is reused for a while:

- one counted in less than ``FRESH_BELOW_SECONDS`` is never reused once the log moves:
  small reviews, nearly all of them, are always exact;
- one that took ``T`` to count is reused for up to ``REUSE_FACTOR`` × ``T`` (never more than
  ``MAX_AGE_SECONDS``) after the log moved: counting again then costs at most about a tenth
  of one thread's time, however many people look;
- while the log has not moved since the count, nothing has changed and it is reused at any
  age;
- a hidden comment never lingers in an older count: once a ``comment.hidden`` event follows
  the count, the next read counts again (the hidden comment may be a form letter's sample);
- one thread counts a review at a time; the others wait for it, or are given the previous
  count when only its age is against it.

Every summary carries ``counted_at``, the moment it was counted, which the page shows.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, has_request_context
from sqlalchemy import select
from sqlmodel import Session, col

from registry.cache import keep_out, read_at
from registry.comments.services import summary
from registry.database import log_head
from registry.events.head import HEAD_QUERY
from registry.events.models import Event
from registry.reviews.models import Review

#: A count faster than this is never reused (seconds).
FRESH_BELOW_SECONDS = 0.05
#: A slow count is reused for this many times as long as it took ...
REUSE_FACTOR = 10.0
#: ... but never longer than this (seconds).
MAX_AGE_SECONDS = 60.0
#: Reviews whose counts a process keeps (the least recently read go first).
MAX_REVIEWS = 256

#: Events after which an older count may show what the public must no longer see.
INVALIDATING_EVENTS = ("comment.hidden",)


@dataclass(frozen=True)
class Counted:
    """One count of a review's comments, and how long it may be reused."""

    summary: dict[str, Any]
    seq: int  # the log's head read before counting: the count includes at least this much
    began: float  # monotonic seconds when counting began
    reuse_for: float  # seconds it may be reused after the log moved (0: never)


class SummaryCache:
    """The counts of this process's slow reviews (see the module)."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._counts: OrderedDict[str, Counted] = OrderedDict()
        self._counting: dict[str, threading.Event] = {}
        self.counts = 0  # counts made, for tests and benchmarks

    def get(self, review_id: str, *, head: Callable[[], int],
            count: Callable[[], tuple[int, dict[str, Any]]],
            invalidated_since: Callable[[int], bool]) -> Counted:
        """The count of ``review_id``: a reusable earlier one, or one made now.

        ``head()`` gives the log's last committed ``seq``; ``count()`` gives a ``seq`` its
        count includes at least (the head read in the counting transaction, before the
        count) and the summary; ``invalidated_since(seq)`` says whether an event after
        ``seq`` makes older counts unfit to show (``INVALIDATING_EVENTS``).
        """
        while True:
            seq = head()
            with self._lock:
                earlier = self._counts.get(review_id)
                if earlier is not None:
                    self._counts.move_to_end(review_id)
            fit = "unfit" if earlier is None else self._fit(earlier, seq, invalidated_since)
            if earlier is not None and fit == "current":
                return earlier
            with self._lock:
                flight = self._counting.get(review_id)
                mine = flight is None
                if mine:
                    flight = self._counting[review_id] = threading.Event()
            assert flight is not None
            if mine:
                try:
                    return self._count(review_id, count)
                finally:
                    with self._lock:
                        del self._counting[review_id]
                    flight.set()
            if earlier is not None and fit == "old":
                return earlier  # only older than allowed by the count now running
            flight.wait()  # the first count, a quick one, or one after a hidden comment

    def _fit(self, earlier: Counted, seq: int,
             invalidated_since: Callable[[int], bool]) -> str:
        """"current" if ``earlier`` may be shown now; "old" if only its age is against it
        (it may still be shown while another thread counts again); "unfit" if it may not be
        shown at all."""
        # Nothing was committed since the count (on PostgreSQL the head kept by notices may
        # even lag behind the count's own read of it).
        if earlier.seq >= seq:
            return "current"
        if earlier.reuse_for <= 0:
            return "unfit"  # a quick count is never reused once the log moved
        if invalidated_since(earlier.seq):
            return "unfit"
        if self._monotonic() - earlier.began < earlier.reuse_for:
            return "current"
        return "old"

    def _count(self, review_id: str, count: Callable[[], tuple[int, dict[str, Any]]]
               ) -> Counted:
        began = self._monotonic()
        seq, counted = count()
        took = self._monotonic() - began
        reuse_for = 0.0 if took < FRESH_BELOW_SECONDS else min(REUSE_FACTOR * took,
                                                                MAX_AGE_SECONDS)
        made = Counted(counted, seq, began, reuse_for)
        with self._lock:
            self.counts += 1
            self._counts[review_id] = made
            self._counts.move_to_end(review_id)
            while len(self._counts) > MAX_REVIEWS:
                self._counts.popitem(last=False)
        return made


def init_app(app: Flask) -> None:
    """Give the app its summary cache for this process."""
    app.extensions["daylight.comment_summaries"] = SummaryCache()


def summary_cache(app: Flask | None = None) -> SummaryCache:
    """The app's summary cache in this process."""
    cache: SummaryCache = (app or current_app).extensions["daylight.comment_summaries"]
    return cache


def review_summary(session: Session, review: Review) -> dict[str, Any]:
    """``services.summary`` of ``review`` with ``counted_at``, reused while that is right
    (see the module); for the API and the technology page."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    clock = app.extensions["daylight.clock"]

    def count() -> tuple[int, dict[str, Any]]:
        # The head first, in the counting transaction: on SQLite the count reads the same
        # snapshot, on PostgreSQL a later one, so either way it includes this much.
        seq = int(session.execute(HEAD_QUERY).scalar() or 0)
        counted_at = clock.now()
        return seq, {**summary(session, review), "counted_at": counted_at}

    def invalidated_since(seq: int) -> bool:
        return session.execute(
            select(col(Event.seq)).where(col(Event.type).in_(INVALIDATING_EVENTS),
                                         col(Event.seq) > seq).limit(1)
        ).first() is not None

    counted = summary_cache(app).get(review.id, head=log_head(app).current, count=count,
                                     invalidated_since=invalidated_since)
    if has_request_context():
        seen = read_at()
        if seen is not None and counted.seq < seen:
            # Counted before the head this request was read at: the read cache must not
            # serve it again while the head stays put (it would outlive its time).
            keep_out()
    return counted.summary
