"""The worker: APScheduler as a ticker, with jobs defined in code.

All state lives in our own tables, so any number of workers may tick at once; the job store is
in memory and never shared. Besides the steady ticks, the worker keeps a one-off date job at
each upcoming open, closing-soon and close time, re-read from the database on start and
whenever a review's timing changes, so a period opens at its second, not at the next tick.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask

from registry.clock import Clock
from registry.database import log_head, session_factory, transaction
from registry.db import read_only
from registry.reviews.services import upcoming_transition_times
from registry.worker.jobs import (
    FanOut,
    announce_due_reviews,
    fan_out_new_events,
    purge_delivery_log,
    purge_personal_data,
    run_due_transitions,
)
from webhooks import DeliveryEngine

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1
#: After following the log on a notice, wait this long before the next notice-driven pass.
NOTICE_GAP_SECONDS = 0.05
#: ... or this long in a surge of events nobody receives (``Worker.follow_on_notice``):
#: under a comment surge, where nobody subscribes to comments, passes that only move the
#: cursor cost every worker CPU the web processes need. An event someone receives then
#: waits at most this long behind them; outside a surge, no longer than before.
QUIET_GAP_SECONDS = 0.25
#: Events one pass must read, sending none, for it to count as such a surge.
QUIET_AFTER_EVENTS = 20
#: Events read from the log per fan-out transaction.
FAN_OUT_BATCH = 500
SWEEP_SECONDS = 2.0
#: How many upcoming transition times get their own date job (the sweep covers the rest).
TIMERS_AHEAD = 50


class Worker:
    """Runs the scheduler's jobs and the webhook delivery engine for one app."""

    def __init__(self, app: Flask, *, clock: Clock | None = None) -> None:
        self.app = app
        self.clock: Clock = clock or app.extensions["daylight.clock"]
        self.engine = DeliveryEngine(
            session_factory(app), self.clock.now,
            allow_private=app.config["WEBHOOK_ALLOW_PRIVATE"],
            concurrency=app.config["WEBHOOK_CONCURRENCY"],
            reading=read_only,
        )
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
        )
        self._timers: set[str] = set()
        self._timers_lock = threading.Lock()
        self._follow_lock = threading.Lock()
        # Set by the log's notices (PostgreSQL): follow now rather than at the next poll.
        self._log_moved = threading.Event()
        self._stopping = threading.Event()
        self._waker: threading.Thread | None = None
        self._last_pass = 0.0  # time.monotonic() when a pass of this process last ended
        self._surging = False  # this worker's last read of the log was a surge's
        self._quiet_until = 0.0  # time.monotonic() until which a surge's passes are spaced

    # --- the jobs ------------------------------------------------------------------------

    def transitions(self) -> None:
        """Open, announce and close what is due, then pass the new events on at once."""
        if run_due_transitions(self.app, self.clock):
            self.follow()

    def follow(self) -> tuple[FanOut, int]:
        """Fan new events out to webhook endpoints and start sending them; returns what the
        passes did, summed, and how many deliveries the pump then claimed to send."""
        # One follower per process; other processes are kept apart by the cursor row lock.
        with self._follow_lock:
            total = FanOut(0, False, 0)
            while True:
                done = fan_out_new_events(self.app, self.clock, batch=FAN_OUT_BATCH)
                total = FanOut(total.handled + done.handled,
                               total.timing_changed or done.timing_changed,
                               total.deliveries + done.deliveries,
                               total.contended or done.contended)
                if done.handled < FAN_OUT_BATCH:  # the log is read to its end (as of then)
                    break
            self._last_pass = time.monotonic()
            claimed = self.engine.pump()
        if total.timing_changed and self.scheduler.running:
            self.resync_timers()
        return total, claimed

    def poll(self) -> None:
        """The interval's pass, a safety net for a notice that never came. Skipped while
        notices arrive and a pass of this process ended less than a poll ago: under a surge
        the notices already bring a pass every ``NOTICE_GAP_SECONDS`` (``QUIET_GAP_SECONDS``
        in a surge of events nobody receives, ``follow_on_notice``), and a poll among them
        only repeats one (in every worker, taking CPU the web processes need)."""
        now = time.monotonic()
        if (self._waker is not None and log_head(self.app).live
                and (now - self._last_pass < POLL_SECONDS or now < self._quiet_until)):
            return
        self.follow()

    def at_transition_time(self, due: datetime) -> None:
        """A date job: the scheduler may wake a hair early, so wait for the clock to agree."""
        wait = (due - self.clock.now()).total_seconds()
        if 0 < wait < 1:
            time.sleep(wait)
        self.transitions()
        self.resync_timers()

    def resync_timers(self) -> None:
        """Keep one date job at each of the next upcoming transition times."""
        with self.app.app_context(), transaction(self.app) as session:
            upcoming = upcoming_transition_times(session, now=self.clock.now())[:TIMERS_AHEAD]
        wanted = {f"transition-{t.isoformat()}": t for t in upcoming}
        with self._timers_lock:
            for job_id in self._timers - set(wanted):
                try:
                    self.scheduler.remove_job(job_id)
                except Exception:  # already ran and went away
                    pass
            for job_id, due in wanted.items():
                if job_id not in self._timers or self.scheduler.get_job(job_id) is None:
                    self.scheduler.add_job(self.at_transition_time, "date", run_date=due,
                                           args=[due], id=job_id, replace_existing=True)
            self._timers = set(wanted)

    def purge(self) -> None:
        """Delete commenters' personal data, and webhook deliveries, past their time."""
        purged = purge_personal_data(self.app, self.clock)
        if purged:
            log.info("purged personal data of %d comments", purged)
        deliveries = purge_delivery_log(self.app, self.clock)
        if deliveries:
            log.info("purged %d finished webhook deliveries past their time", deliveries)

    def reminders(self) -> None:
        """Announce yearly reviews that fall due (a date: an hourly look is soon enough)."""
        due = announce_due_reviews(self.app, self.clock)
        if due:
            log.info("announced %d yearly reviews due", len(due))

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Catch up on anything missed, then start ticking."""
        self.transitions()
        self.follow()
        add = self.scheduler.add_job
        add(self.poll, "interval", seconds=POLL_SECONDS, id="follow-log",
            replace_existing=True)
        add(self.transitions, "interval", seconds=SWEEP_SECONDS, id="transitions",
            replace_existing=True)
        add(self.resync_timers, "interval", seconds=60, id="resync-timers",
            replace_existing=True)
        add(self.purge, "interval", hours=1, id="purge-personal-data", replace_existing=True,
            next_run_time=datetime.now(UTC) + timedelta(seconds=5))
        add(self.reminders, "interval", hours=1, id="review-reminders", replace_existing=True,
            next_run_time=datetime.now(UTC) + timedelta(seconds=10))
        self.scheduler.start()
        self.resync_timers()
        if log_head(self.app).listen(lambda _seq: self._log_moved.set()):
            self._waker = threading.Thread(target=self._follow_when_the_log_moves,
                                           name="daylight-follow-on-notice", daemon=True)
            self._waker.start()

    def _follow_when_the_log_moves(self) -> None:
        # Notices that arrive while a pass runs, or in the short gap after it, are folded into
        # the next pass: under a comment surge hundreds of notices a second would otherwise
        # cost a pass each, in every worker, taking the CPU the web processes need.
        while not self._stopping.is_set():
            if self._log_moved.wait(timeout=1.0) and not self._stopping.is_set():
                self._stopping.wait(self.follow_on_notice())

    def follow_on_notice(self) -> float:
        """One notice-driven pass; returns how long to wait before the next.

        ``QUIET_GAP_SECONDS`` when the pass found a surge of events nobody receives: it read
        at least ``QUIET_AFTER_EVENTS`` events, made no deliveries and claimed none to send,
        or, once this worker has seen such a surge, it found another worker following the
        log. Otherwise ``NOTICE_GAP_SECONDS``: outside a surge a worker that lost the race
        for the cursor comes back soon, to help send what the other one fans out.
        """
        self._log_moved.clear()
        try:
            done, claimed = self.follow()
        except Exception:  # noqa: BLE001 — the poll retries; keep listening
            log.exception("following the log on a notice failed")
            return NOTICE_GAP_SECONDS
        surge = done.handled >= QUIET_AFTER_EVENTS
        if done.handled or not done.contended:  # this worker read the log itself
            self._surging = surge
        if done.deliveries == 0 and claimed == 0 and (
                surge or (done.contended and not done.handled and self._surging)):
            self._quiet_until = time.monotonic() + QUIET_GAP_SECONDS
            return QUIET_GAP_SECONDS
        return NOTICE_GAP_SECONDS

    def stop(self) -> None:
        """Stop ticking and let sends in flight finish."""
        self._stopping.set()
        self._log_moved.set()
        if self._waker is not None:
            self._waker.join(timeout=30)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.engine.shutdown(wait=True)
