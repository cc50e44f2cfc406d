"""The worker's jobs, each one transaction, each safe to run in several processes at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import NamedTuple

from flask import Flask
from sqlalchemy import select
from sqlmodel import col

from registry.clock import Clock
from registry.database import transaction
from registry.events.models import FOLLOWERS, Event, LogCursor
from registry.events.services import public_data, withheld_comments
from registry.reviews.services import (
    close_due_comment_periods,
    open_due_comment_periods,
    send_closing_soon_notices,
)

WEBHOOK_CURSOR = FOLLOWERS[0]
#: Event types after which the worker re-reads upcoming open and close times.
TIMING_EVENTS = frozenset({
    "review.scheduled", "review.rescheduled", "review.cancelled", "comment_period.opened",
    "comment_period.extended", "comment_period.closing_soon", "comment_period.closed",
})


@dataclass
class Transitions:
    """What one pass of the timed transitions did."""

    opened: list[str] = field(default_factory=list)
    closing_soon: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.opened or self.closing_soon or self.closed)


def run_due_transitions(app: Flask, clock: Clock) -> Transitions:
    """Open, announce and close comment periods that are due (catches up on any missed)."""
    done = Transitions()
    # One transaction per step, in this order, so a period missed entirely while the worker
    # was down still opens before it closes, each with its own event.
    with app.app_context():
        with transaction(app) as session:
            done.opened = open_due_comment_periods(session, now=clock.now())
        with transaction(app) as session:
            done.closing_soon = send_closing_soon_notices(session, now=clock.now())
        with transaction(app) as session:
            done.closed = close_due_comment_periods(session, now=clock.now())
    return done


class FanOut(NamedTuple):
    """What one fan-out pass did."""

    handled: int  # events read past the cursor
    timing_changed: bool  # one of them changes review timing (``TIMING_EVENTS``)
    deliveries: int  # deliveries created
    contended: bool = False  # another worker held the cursor: it is following the log


def fan_out_new_events(app: Flask, clock: Clock, *, batch: int = 500) -> FanOut:
    """Hand events after the webhook cursor to ``webhooks``.

    The cursor row is locked for the pass (``SKIP LOCKED``: a second worker skips instead
    of waiting), so two workers never fan out the same events at once.
    """
    # Imported here: a restarting worker opens what it missed before loading the HTTP side.
    from webhooks import OutgoingEvent, enqueue_events, subscriptions

    with app.app_context(), transaction(app) as session:
        cursor = session.execute(
            select(LogCursor).where(col(LogCursor.name) == WEBHOOK_CURSOR)
            .with_for_update(skip_locked=True)
        ).scalar_one_or_none()
        if cursor is None:
            return FanOut(0, False, 0, contended=True)  # another worker holds the row
        # The events' order, types and times first; their bodies only for the events some
        # endpoint receives. Under a comment surge nearly every event is one nobody
        # subscribes to, and loading its JSON was most of the worker's CPU.
        heads = session.execute(
            select(col(Event.seq), col(Event.type), col(Event.timestamp))
            .where(col(Event.seq) > cursor.seq).order_by(col(Event.seq)).limit(batch)
        ).all()
        if not heads:
            return FanOut(0, False, 0)
        subscribed = subscriptions(session, until=max(timestamp for _, _, timestamp in heads))
        wanted = [seq for seq, type_, timestamp in heads
                  if subscribed.targets(type_, timestamp)]
        deliveries = 0
        if wanted:
            events = list(session.execute(
                select(Event).where(col(Event.seq).in_(wanted)).order_by(col(Event.seq))
            ).scalars())
            # A comment hidden before its event is handed over goes out as the log shows it.
            withheld = withheld_comments(session, events)
            deliveries = enqueue_events(
                session, [OutgoingEvent(event.id, event.type, event.timestamp,
                                        public_data(event, withheld))
                          for event in events], now=clock.now(), subscribed=subscribed)
        cursor.seq = heads[-1].seq
        session.add(cursor)
        return FanOut(len(heads), any(type_ in TIMING_EVENTS for _, type_, _ in heads),
                      deliveries)


def announce_due_reviews(app: Flask, clock: Clock) -> list[str]:
    """Announce the approved technologies whose yearly review falls due today (in the
    city's time zone); returns their ids."""
    from zoneinfo import ZoneInfo

    from registry.technologies.services import announce_due_reviews as announce

    now = clock.now()
    today = now.astimezone(ZoneInfo(str(app.config["TIMEZONE"]))).date()
    with app.app_context(), transaction(app) as session:
        return announce(session, today=today, now=now)


#: Deliveries deleted per transaction: SQLite's one writer is never held for long.
DELIVERY_PURGE_BATCH = 1000


def purge_delivery_log(app: Flask, clock: Clock, *, batch: int = DELIVERY_PURGE_BATCH) -> int:
    """Delete finished webhook deliveries (with their attempts and messages) older than the
    configured days; returns how many deliveries went.

    The log is for a partner to see what reached them and why something did not; the event
    log, kept for ever, is how they catch up on anything older.
    """
    from webhooks.models import WebhookEndpoint
    from webhooks.services import purge_finished_deliveries

    before = clock.now() - timedelta(days=app.config["WEBHOOK_LOG_RETENTION_DAYS"])
    with app.app_context(), transaction(app) as session:
        endpoints = session.execute(select(col(WebhookEndpoint.id))).scalars().all()
    purged = 0
    for endpoint_id in endpoints:
        while True:
            with app.app_context(), transaction(app) as session:
                done = purge_finished_deliveries(session, endpoint_id=endpoint_id,
                                                 before=before, limit=batch)
            purged += done
            if done < batch:
                break
    return purged


def purge_personal_data(app: Flask, clock: Clock) -> int:
    """Delete commenters' emails and address keys the configured days after the decision
    (or after the close, when no decision came)."""
    # Imported here, not above: a restarting worker opens what fell due before it loads
    # the comments' services (and their CSV export), which the opening does not need.
    from registry.comments.services import purge_commenter_contacts

    with app.app_context(), transaction(app) as session:
        return purge_commenter_contacts(
            session, now=clock.now(), retention_days=app.config["COMMENT_EMAIL_RETENTION_DAYS"],
            undecided_days=app.config["COMMENT_EMAIL_UNDECIDED_DAYS"])
