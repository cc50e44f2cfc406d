"""The delivery engine: claims due deliveries, sends them from a small thread pool, records
what happened.

Each database pass records the results that have come in and claims enough due work to
refill the engine, in one short transaction on one long-lived connection; HTTP happens
outside any transaction. The engine holds more claims than it has threads, the rest
queued, so threads never wait while a pass runs and each pass serves many deliveries; the
queue is kept short enough (from the measured send time) that a queued claim still starts
well inside its lease. A pass is started by ``pump()`` (the worker's ticker) and by
finished sends once a batch of results has gathered or the queue runs low, so a backlog
drains without waiting for the next tick.

A claim carries its endpoint's URL and secrets as they were when it was claimed. One that
waited in the queue for more than a moment is checked again before it is sent (one small
query), so that an endpoint deleted, disabled, moved or given a new secret meanwhile is not
sent to as it was; claims sent promptly, the fan-out's usual case, skip the query.
"""

from __future__ import annotations

import logging
import random as _random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timedelta
from types import TracebackType

from sqlalchemy import Connection, Engine
from sqlmodel import Session

from webhooks.claims import Job, claim_due, refresh_claim, return_claims
from webhooks.outcomes import Result, record_results
from webhooks.signing import signature_header
from webhooks.transport import Outcome, Transport

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]

_MAX_QUEUE_PER_THREAD = 7  # queued claims per thread when sends are fast
_RECHECK_SECONDS = 0.1  # run_until_idle's wait between passes while work is held
# A claim read from the database longer ago than this is checked again before it is sent:
# long enough that a prompt send never pays for the query, short next to the lease's wait
# budget (tens of seconds), in which an endpoint may be deleted, disabled or changed.
STALE_CLAIM_SECONDS = 1.0


class DeliveryEngine:
    """Sends webhooks with ``concurrency`` threads and one pooled HTTP session.

    ``session_factory`` (a ``sessionmaker``) gives the database the engine works on;
    ``clock`` returns the current time, timezone-aware, and is the one every lease and
    retry is measured against. ``allow_private`` lets sends go to loopback and private
    addresses (development and tests only). ``timeout`` bounds each request as a whole,
    connect to last byte; ``lease_seconds`` is how long a claim holds before another
    sender may take the delivery over, so it must exceed ``timeout``. At most
    ``per_endpoint`` claims are held for one endpoint at once, so a slow receiver never
    holds up the others. ``random`` draws the retry jitter. ``ca_bundle`` (a PEM file)
    replaces the system's trusted certificate authorities (tests, private PKI).
    ``reading`` marks a transaction that only reads (the registry's ``read_only``: on
    SQLite a transaction otherwise queues for the one writer's turn).
    """

    def __init__(
        self,
        session_factory: Callable[[], Session],
        clock: Clock,
        *,
        allow_private: bool = False,
        concurrency: int = 8,
        lease_seconds: float = 60.0,
        timeout: float = 15.0,
        per_endpoint: int = 2,
        random: Callable[[], float] = _random.random,
        ca_bundle: str | None = None,
        reading: Callable[[], AbstractContextManager[object]] = nullcontext,
    ) -> None:
        if concurrency < 1 or per_endpoint < 1:
            raise ValueError("concurrency and per_endpoint must be at least 1")
        if lease_seconds <= timeout:
            raise ValueError("lease_seconds must exceed timeout, or live sends get taken over")
        with session_factory() as session:
            bind = session.get_bind()
        self._engine: Engine = bind if isinstance(bind, Engine) else bind.engine
        # One connection for every pass, reopened after an error: a pool checkout (and its
        # liveness ping) per pass would cost as much as the pass's own statements.
        self._conn: Connection | None = None
        self._clock = clock
        self._reading = reading
        self._concurrency = concurrency
        self._per_endpoint = per_endpoint
        self._lease = timedelta(seconds=lease_seconds)
        self._timeout = timeout
        # A claim with less than this left is given back unsent: it could not finish.
        self._start_margin = timedelta(seconds=timeout + 1)
        self._random = random
        self._transport = Transport(
            allow_private=allow_private,
            timeout=timeout,
            pool_maxsize=concurrency,
            ca_bundle=ca_bundle,
        )
        self._executor = ThreadPoolExecutor(concurrency, thread_name_prefix="webhook-sender")
        self._state = threading.Condition()
        # Guarded by _state: claims held (queued, sending, or waiting to be recorded or
        # given back), in all and per endpoint; claims not yet picked up by a thread;
        # results and unsent claims waiting for a pass; passes under way; claims made;
        # the moving average of a send's duration in seconds.
        self._in_flight = 0
        self._busy: Counter[str] = Counter()
        self._queued = 0
        self._results: list[Result] = []
        self._returned: list[Job] = []
        self._passes = 0
        self._claimed = 0
        self._send_seconds = timeout / 2  # cautious until sends are measured
        # One pass at a time: on SQLite concurrent writers would only queue on the file
        # lock, and batching is what keeps the statements per delivery few.
        self._db_lock = threading.Lock()
        self._pass_wanted = False
        self._closed = False

    def pump(self) -> int:
        """Claim due deliveries up to the free capacity and queue them for the threads;
        never blocks on a send. Returns how many were claimed (0 too when another
        thread's pass is under way: that pass claims instead)."""
        return self._passes_until_settled(block=False)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no claim is held and every result is recorded; False on timeout."""
        with self._state:
            return self._state.wait_for(self._idle, timeout)

    def run_until_idle(self, timeout: float | None = 60.0) -> int:
        """Send everything due now (by the clock) until nothing due is left; returns how
        many deliveries were claimed. For tests and the command line. Raises
        ``TimeoutError`` when sends are still in flight after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._state:
            first = self._claimed
        while True:
            claimed = self._passes_until_settled(block=True)
            with self._state:
                if claimed == 0 and self._idle():
                    return self._claimed - first
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError("webhook sends still in flight")
            # Finished sends start passes of their own; results a failed pass held back
            # wait for the next pass, so one is made again soon.
            self.wait_idle(_RECHECK_SECONDS if remaining is None
                           else min(remaining, _RECHECK_SECONDS))

    def shutdown(self, wait: bool = True, timeout: float | None = 30.0) -> None:
        """Stop claiming; with ``wait``, let sends in flight finish and be recorded and
        give queued claims back. Without it, unfinished claims come due again when their
        lease ends."""
        self._closed = True
        if wait:
            self.wait_idle(timeout)
        self._executor.shutdown(wait=wait, cancel_futures=not wait)
        self._transport.close()
        with self._db_lock:
            self._close_connection()

    def __enter__(self) -> DeliveryEngine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()

    def _idle(self) -> bool:
        return self._in_flight == 0 and self._passes == 0

    def _capacity(self) -> int:
        """How many claims to hold: a thread each, and a queue as deep as lets its last
        claim start within half the lease, less a send's timeout."""
        wait_budget = self._lease.total_seconds() / 2 - self._timeout
        depth = int(self._concurrency * wait_budget / max(self._send_seconds, 0.001))
        queue = max(self._concurrency, min(depth, _MAX_QUEUE_PER_THREAD * self._concurrency))
        return self._concurrency + queue

    def _passes_until_settled(self, block: bool) -> int:
        claimed = 0
        self._pass_wanted = True
        # Whoever holds the lock loops while passes are wanted, so a request made while it
        # worked (a send finishing) is never lost.
        while self._pass_wanted:
            if not self._db_lock.acquire(blocking=block):
                return claimed
            try:
                self._pass_wanted = False
                claimed += self._record_and_claim()
            finally:
                self._db_lock.release()
        return claimed

    def _record_and_claim(self) -> int:
        """One database pass (the caller holds ``_db_lock``): record waiting results, give
        back unsent claims, then claim work for the free capacity, in one transaction."""
        with self._state:
            results, self._results = self._results, []
            returned, self._returned = self._returned, []
            self._passes += 1
            done = len(results) + len(returned)
            free = self._capacity() - (self._in_flight - done)
            busy = self._busy.copy()
        busy.subtract(r.job.endpoint_id for r in results)
        busy.subtract(job.endpoint_id for job in returned)
        claimed: list[Job] = []
        # Claims and results held back for the next pass when this one fails: nothing
        # recorded or given back yet, so they stay this sender's (in flight, endpoint busy).
        held: list[Job] = []
        read_at = time.monotonic()  # when the claims' endpoint data is read, or earlier
        try:
            if self._conn is None or self._conn.invalidated or self._conn.closed:
                self._conn = self._engine.connect()
            with self._conn.begin():
                now = self._clock()
                for r in record_results(self._conn, results, now=now, random=self._random):
                    logger.info(
                        "webhook delivery %s was taken over after its lease ended; this "
                        "sender's result is dropped",
                        r.job.delivery_id,
                    )
                return_claims(self._conn, returned, now)
                if not self._closed and free > 0:
                    claimed = claim_due(
                        self._conn,
                        now=now,
                        limit=free,
                        lease=self._lease,
                        busy=+busy,
                        per_endpoint=self._per_endpoint,
                    )
        except Exception:
            # Nothing is lost, and nothing waits for a lease to end (a minute) that need not:
            # the results are recorded and the unsent claims given back by the next pass, the
            # database being back. So are the claims this pass made: their COMMIT may have
            # been stored before the connection was lost (giving back is fenced by their
            # token, so it changes nothing if it was not).
            logger.exception("webhook sender: database pass failed")
            held = claimed
            claimed = []
            done = 0
            self._close_connection()
            with self._state:
                self._results[:0] = results
                self._returned[:0] = [*returned, *held]
        finally:
            with self._state:
                self._in_flight += len(claimed) + len(held) - done
                self._queued += len(claimed)
                if done:
                    self._busy.subtract(r.job.endpoint_id for r in results)
                    self._busy.subtract(job.endpoint_id for job in returned)
                self._busy.update(job.endpoint_id for job in [*claimed, *held])
                self._busy = +self._busy
                self._claimed += len(claimed)
                self._passes -= 1
                self._state.notify_all()
        for job in claimed:
            try:
                self._executor.submit(self._send, job, read_at)
            except RuntimeError:  # shut down meanwhile: the lease hands the job back
                with self._state:
                    self._queued -= 1
                    self._in_flight -= 1
                    self._busy.subtract([job.endpoint_id])
                    self._state.notify_all()
        return len(claimed)

    def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # already broken: nothing more to do with it
                logger.debug("closing the sender's connection failed", exc_info=True)

    def _send(self, job: Job, read_at: float) -> None:
        """Send one claimed job (``read_at``: the ``time.monotonic()`` at which the pass
        that claimed it began reading) and queue its result for recording."""
        with self._state:
            self._queued -= 1
        current: Job | None = job
        if not self._closed and time.monotonic() - read_at > STALE_CLAIM_SECONDS:
            # Queued a while: the endpoint may have been deleted, disabled or changed since.
            current = self._refresh(job)
        if (current is None or self._closed
                or self._clock() > job.lease_expires_at - self._start_margin):
            # Not to be sent now (see _refresh); or shutting down, or queued too long (the
            # check last, after any wait for the database): a send now could outlive the
            # lease and race whoever takes the delivery over. Give the claim back instead.
            self._give_back(job)
            return
        job = current
        started = time.monotonic()
        try:
            result = self._attempt(job)
        except Exception as exc:  # never lose a result, whatever broke
            logger.exception("webhook sender: unexpected error sending %s", job.delivery_id)
            outcome = Outcome(duration_ms=0, error_kind="error", error_detail=repr(exc)[:500])
            result = Result(job, self._clock(), 0, outcome)
        with self._state:
            self._send_seconds += 0.1 * (time.monotonic() - started - self._send_seconds)
            self._results.append(result)
            batch_ready = (
                len(self._results) >= 2 * self._concurrency or self._queued < self._concurrency
            )
        if batch_ready:
            self.pump()

    def _give_back(self, job: Job) -> None:
        """Hand an unsent claim to the next pass, which gives it back to the queue."""
        with self._state:
            self._returned.append(job)
        self.pump()

    def _refresh(self, job: Job) -> Job | None:
        """``job`` with its endpoint as it is now, or None if it is not to be sent: the
        endpoint is deleted or disabled, the claim has been taken over, or the database
        cannot say (the claim is given back and sent later rather than sent unchecked).

        On a pooled connection of its own: the engine's connection belongs to its passes.
        """
        try:
            with self._reading(), self._engine.connect() as conn:
                return refresh_claim(conn, job)
        except Exception:
            logger.warning("webhook sender: could not check claim %s again; giving it back",
                           job.delivery_id, exc_info=True)
            return None

    def _attempt(self, job: Job) -> Result:
        now = self._clock()
        timestamp = int(now.timestamp())
        headers = {
            "webhook-id": job.message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(
                job.secrets_at(now), job.message_id, timestamp, job.body
            ),
            "content-type": "application/json",
        }
        outcome = self._transport.post(job.url, job.body, headers)
        return Result(job=job, started_at=now, webhook_timestamp=timestamp, outcome=outcome)
