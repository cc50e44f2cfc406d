"""Comment summaries that stay cheap when a review draws a million comments.

``services.tally`` counts every published comment of a review: 12–23 ms at 10,000
comments and 1.3–1.8 s at 1,000,000 (``bench.scale``, docs/performance.md). The technology
page shows the summary on every view, and the views come when a comment period draws a
crowd: each new comment then moves the event log's head, so the read cache
(``registry.cache``) misses and every view would count the million again. A few residents
reading the page would keep both cores busy.

So each web process keeps its last count of a review, and a later count starts from it:
``services.tally_since`` adds the comments published since, read from the log's events
(a new count from scratch only when one of the review's comments was hidden meanwhile).
Besides:

- a count made in less than ``FRESH_BELOW_SECONDS`` is never reused once the log moves:
  small reviews, nearly all of them, are always exact, and so is a large one while the
  comments since its last count are few;
- a count from scratch is not reused either, however long it took: the next count only
  adds what came after it;
- a count that added so much that it took ``T`` is reused for up to ``REUSE_FACTOR`` ×
  ``T`` (never more than ``MAX_AGE_SECONDS``) after the log moved: counting again then
  costs at most about a tenth of one thread's time, however many people look;
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
from typing import Any, NamedTuple

from flask import Flask, current_app, has_request_context
from sqlalchemy import select
from sqlmodel import Session, col

from registry.cache import keep_out, read_at
from registry.comments.services import Tally, summary_of, tally, tally_since
from registry.database import log_head, session_factory
from registry.db import read_only
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
    seq: int  # the log's head the count was made at: it includes exactly this much
    began: float  # monotonic seconds when counting began
    reuse_for: float  # seconds it may be reused after the log moved (0: never)
    tally: Tally | None = None  # what the next count may start from


class Made(NamedTuple):
    """What a count gives the cache."""

    seq: int  # the log's head the count is exact at
    summary: dict[str, Any]
    tally: Tally | None = None  # what the next count may start from
    afresh: bool = True  # counted from scratch, not from the earlier count


#: ``count(earlier)``: a count of the review, from ``earlier`` when it can.
Count = Callable[[Counted | None], Made]


class SummaryCache:
    """The counts of this process's slow reviews (see the module)."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._counts: OrderedDict[str, Counted] = OrderedDict()
        self._counting: dict[str, threading.Event] = {}
        self.counts = 0  # counts made, for tests and benchmarks

    def get(self, review_id: str, *, head: Callable[[], int], count: Count,
            invalidated_since: Callable[[int], bool]) -> Counted:
        """The count of ``review_id``: a reusable earlier one, or one made now.

        ``head()`` gives the log's last committed ``seq``; ``count(earlier)`` counts, from
        the earlier count when it can; ``invalidated_since(seq)`` says whether an event
        after ``seq`` makes older counts unfit to show (``INVALIDATING_EVENTS``).
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
                    return self._count(review_id, count, earlier)
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

    def _count(self, review_id: str, count: Count, earlier: Counted | None) -> Counted:
        began = self._monotonic()
        made = count(earlier)
        took = self._monotonic() - began
        # What the next count will cost decides how long this one may stand in for it: a
        # count from scratch that leaves a tally is followed by one that only adds the news.
        cost = 0.0 if made.afresh and made.tally is not None else took
        reuse_for = 0.0 if cost < FRESH_BELOW_SECONDS else min(REUSE_FACTOR * cost,
                                                                MAX_AGE_SECONDS)
        counted = Counted(made.summary, made.seq, began, reuse_for, made.tally)
        with self._lock:
            self.counts += 1
            self._counts[review_id] = counted
            self._counts.move_to_end(review_id)
            while len(self._counts) > MAX_REVIEWS:
                self._counts.popitem(last=False)
        return counted


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
    postgres = session.get_bind().dialect.name == "postgresql"

    def count(earlier: Counted | None) -> Made:
        # A session of its own, so that the head and the counts are read in one snapshot:
        # SQLite's transaction has one from its first read; PostgreSQL's default takes a
        # new one for every statement, so the count asks for repeatable read. The count
        # is then exact at the head it read, and the next count adds what came after it.
        with read_only(), session_factory(app)() as reading:
            if postgres:
                reading.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            seq = int(reading.execute(HEAD_QUERY).scalar() or 0)
            counted = None
            if earlier is not None and earlier.tally is not None and earlier.seq <= seq:
                counted = tally_since(reading, review, earlier.tally, earlier.seq, seq)
            afresh = counted is None
            if counted is None:
                counted = tally(reading, review.id)
            counted_at = clock.now()
        return Made(seq, {**summary_of(review.id, counted), "counted_at": counted_at},
                    counted, afresh)

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
