"""The delivery engine: claims due deliveries, sends them from a small thread pool, records
what happened.

Each database pass records the results that have come in and claims enough due work to
refill the engine, in one short transaction; HTTP happens outside any transaction. The
engine holds up to four claims per thread, most of them queued, so threads never wait on
the database while a pass runs. A pass is started by ``pump()``
(the worker's ticker) and by finished sends, once a batch of results has gathered or the
queue has run dry, so a backlog drains without waiting for the next tick and each pass
serves many deliveries.
"""

from __future__ import annotations

import logging
import random as _random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from types import TracebackType

from sqlmodel import Session

from webhooks.claims import Job, Result, claim_due, record_results
from webhooks.signing import signature_header
from webhooks.transport import Outcome, Transport

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class DeliveryEngine:
    """Sends webhooks with ``concurrency`` threads and one pooled HTTP session.

    ``session_factory`` makes the engine's own sessions (a ``sessionmaker``); ``clock``
    returns the current time, timezone-aware, and is the one every lease and retry is
    measured against. ``allow_private`` lets sends go to loopback and private addresses
    (development and tests only). ``timeout`` bounds each request as a whole, connect
    to last byte; ``lease_seconds`` is how long a claim holds before another sender may
    take the delivery over, so it must exceed ``timeout``. At most ``per_endpoint`` sends
    go to one endpoint at once, so a slow receiver never holds up the others.
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
    ) -> None:
        if concurrency < 1 or per_endpoint < 1:
            raise ValueError("concurrency and per_endpoint must be at least 1")
        if lease_seconds <= timeout:
            raise ValueError("lease_seconds must exceed timeout, or live sends get taken over")
        self._session_factory = session_factory
        self._clock = clock
        self._concurrency = concurrency
        self._capacity = 4 * concurrency
        self._batch = 2 * concurrency
        self._per_endpoint = per_endpoint
        self._lease = timedelta(seconds=lease_seconds)
        # A claim with less than this left is not started: it could not finish in time.
        self._start_margin = timedelta(seconds=timeout + 1)
        self._random = random
        self._transport = Transport(
            allow_private=allow_private, timeout=timeout, pool_maxsize=concurrency
        )
        self._executor = ThreadPoolExecutor(concurrency, thread_name_prefix="webhook-sender")
        self._state = threading.Condition()
        # Guarded by _state: claims not yet recorded, per endpoint and in all; claims not
        # yet picked up by a thread; results waiting for a pass; passes under way; claims
        # made since creation.
        self._in_flight = 0
        self._queued = 0
        self._busy: Counter[str] = Counter()
        self._results: list[Result] = []
        self._passes = 0
        self._started = 0
        # One database pass at a time: on SQLite concurrent writers would only queue on
        # the file lock, and batching is what keeps the queries per delivery low.
        self._db_lock = threading.Lock()
        self._pass_wanted = False
        self._closed = False

    def pump(self) -> int:
        """Claim due deliveries up to the free capacity and queue them for the threads;
        never blocks on a send. Returns how many started (0 too when another thread's pass is under
        way: that pass claims instead)."""
        return self._passes_until_settled(block=False)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no send is in flight and every result is recorded; False on timeout."""
        with self._state:
            return self._state.wait_for(self._idle, timeout)

    def run_until_idle(self, timeout: float | None = 60.0) -> int:
        """Send everything due now (by the clock) until nothing due is left; returns how
        many sends were made. For tests and the command line. Raises ``TimeoutError``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._state:
            first = self._started
        while True:
            started = self._passes_until_settled(block=True)
            with self._state:
                if started == 0 and self._idle():
                    return self._started - first
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self.wait_idle(remaining):
                raise TimeoutError("webhook sends still in flight")

    def shutdown(self, wait: bool = True, timeout: float | None = 30.0) -> None:
        """Stop claiming; with ``wait``, let sends in flight finish and be recorded first.

        Deliveries claimed but never recorded come due again when their lease ends.
        """
        self._closed = True
        if wait:
            self.wait_idle(timeout)
        self._executor.shutdown(wait=wait)
        self._transport.close()

    def __enter__(self) -> DeliveryEngine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()

    def _passes_until_settled(self, block: bool) -> int:
        started = 0
        self._pass_wanted = True
        # Whoever holds the lock loops while passes are wanted, so a request made while it
        # worked (a send finishing) is never lost.
        while self._pass_wanted:
            if not self._db_lock.acquire(blocking=block):
                return started
            try:
                self._pass_wanted = False
                started += self._record_and_claim()
            finally:
                self._db_lock.release()
        return started

    def _idle(self) -> bool:
        return self._in_flight == 0 and not self._results and self._passes == 0

    def _record_and_claim(self) -> int:
        """One database pass (the caller holds ``_db_lock``): record waiting results, then
        claim work for the free slots, in one transaction."""
        with self._state:
            results, self._results = self._results, []
            self._passes += 1
            free = self._capacity - (self._in_flight - len(results))
            busy = self._busy.copy()
        busy.subtract(r.job.endpoint_id for r in results)
        claimed: list[Job] = []
        try:
            with self._session_factory() as session:
                conn = session.connection()
                if results:
                    fenced = record_results(conn, results, now=self._clock(), random=self._random)
                    for r in fenced:
                        logger.info(
                            "webhook delivery %s was taken over after its lease ended; "
                            "this sender's result is dropped",
                            r.job.delivery_id,
                        )
                if not self._closed and free > 0:
                    claimed = claim_due(
                        conn,
                        now=self._clock(),
                        limit=free,
                        lease=self._lease,
                        busy=+busy,
                        per_endpoint=self._per_endpoint,
                    )
                session.commit()
        except Exception:
            # Nothing is lost: unrecorded deliveries are still claimed and come due again
            # when their lease ends.
            logger.exception("webhook sender: database pass failed")
            claimed = []
        finally:
            with self._state:
                self._in_flight += len(claimed) - len(results)
                self._queued += len(claimed)
                self._busy.subtract(r.job.endpoint_id for r in results)
                self._busy.update(job.endpoint_id for job in claimed)
                self._busy = +self._busy
                self._started += len(claimed)
                self._passes -= 1
                self._state.notify_all()
        for job in claimed:
            try:
                self._executor.submit(self._send, job)
            except RuntimeError:  # shut down meanwhile: the lease will hand the job back
                with self._state:
                    self._queued -= 1
                self._release(job)
        return len(claimed)

    def _release(self, job: Job) -> None:
        """Give up a claim without a result; the delivery comes due when its lease ends."""
        with self._state:
            self._in_flight -= 1
            self._busy.subtract([job.endpoint_id])
            self._busy = +self._busy
            self._state.notify_all()

    def _send(self, job: Job) -> None:
        with self._state:
            self._queued -= 1
        if self._closed or self._clock() > job.lease_expires_at - self._start_margin:
            # Queued too long (or shutting down): sending now could outlive the lease and
            # race the sender that takes the delivery over.
            self._release(job)
            return
        try:
            result = self._attempt(job)
        except Exception as exc:  # never lose a result, whatever broke
            logger.exception("webhook sender: unexpected error sending %s", job.delivery_id)
            outcome = Outcome(duration_ms=0, error_kind="error", error_detail=repr(exc)[:500])
            result = Result(job, self._clock(), 0, outcome)
        self._finish(result)

    def _finish(self, result: Result) -> None:
        with self._state:
            self._results.append(result)
            batch_ready = len(self._results) >= self._batch or self._queued == 0
        if batch_ready:
            self.pump()

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
