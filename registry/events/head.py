"""The event log's head as this process knows it, without asking the database each time.

Every change to public data appends an event, so the last ``seq`` versions everything the
public can read (``registry.cache`` keys its entries by it). Reading it must be cheap:

- On PostgreSQL one listener thread per process holds a connection that ``LISTEN``s on
  ``daylight_log``; every ``seq`` handed out is announced with ``pg_notify`` in the same
  transaction (``NOTIFY_SQL``), which PostgreSQL delivers at commit, in commit order. The
  head is then a number in memory. Commits made by this process advance it at once (so a
  client reads its own writes here even before the notice arrives); other processes' commits
  arrive as notices, within a millisecond or so. Every few seconds the listener reads the head
  again, which also proves its connection alive. While the listener is not connected (at start,
  after an error) the head is read from the database on each call, as before.
- On SQLite (one machine, one file, no notifications) the head is read from the file on each
  call, over a plain ``sqlite3`` connection of the calling thread: a few microseconds.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, Integer, String, bindparam, cast, func, select, update
from sqlalchemy.engine import make_url
from sqlmodel import col

from registry.events.models import LogHead

log = logging.getLogger(__name__)

CHANNEL = "daylight_log"
LISTENER_NAME = "daylight-log-listener"
#: Set in ``session.info`` by ``append_event``: the session's commit moves the head.
APPENDED = "daylight.appended_event"
#: Seconds between the listener's reads of the head (each also checks its connection).
RESYNC_SECONDS = 5.0
#: How long one wait for notices lasts, so that ``stop`` is noticed promptly.
WAIT_SECONDS = 0.5
RECONNECT_MAX_SECONDS = 30.0

_HEAD_SQL = "SELECT last_seq FROM event_log_head WHERE id = 1"
#: The last ``seq`` handed out, read in whatever transaction runs it.
HEAD_QUERY = select(col(LogHead.last_seq)).where(col(LogHead.id) == 1)


@functools.cache
def next_seq_statement(dialect: str) -> Any:
    """The statement that takes the next ``:count`` numbers and returns the last of them
    (``UPDATE … RETURNING`` on the head row).

    On PostgreSQL the same statement announces the number on ``daylight_log``: a notice sent
    inside a transaction is delivered only if and when it commits, so no extra round trip and
    no announcement of a number that was rolled back.
    """
    take = (update(LogHead).where(col(LogHead.id) == 1)
            .values(last_seq=LogHead.last_seq + bindparam("count", type_=Integer))
            .returning(col(LogHead.last_seq)))
    if dialect != "postgresql":
        return take
    head = take.cte("head")
    return select(head.c.last_seq, func.pg_notify(CHANNEL, cast(head.c.last_seq, String)))


class LogHeadWatch:
    """The last committed ``seq``: from memory where notices keep it right, else queried."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._url = make_url(engine.url)
        self._backend = self._url.get_backend_name()
        self._lock = threading.Lock()
        self._seq = 0
        # Commits by this process that moved the head, and how many of them a read of the
        # head is known to include: while they differ, the head is read from the database.
        self._commits = 0
        self._synced = 0
        self._live = False  # the listener is connected and has read the head
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._local = threading.local()
        self._on_notice: Callable[[int], None] | None = None

    @property
    def live(self) -> bool:
        """Whether the head is being kept in memory by notices (PostgreSQL's listener)."""
        return self._live

    def current(self) -> int:
        """The last committed ``seq``."""
        if self._backend == "postgresql":
            commits = self._commits
            if self._live and commits == self._synced:
                return self._seq
            # Not listening yet (or any more), or this process committed an event whose
            # notice may not have come back yet (a client reads its own writes at once).
            self._ensure_listener()
            seq = self._query()
            with self._lock:
                self._synced = max(self._synced, commits)
            return seq
        if self._backend == "sqlite" and self._url.database not in (None, "", ":memory:"):
            return self._sqlite_head()
        return self._query()

    def listen(self, on_notice: Callable[[int], None]) -> bool:
        """Call ``on_notice(seq)`` on the listener thread for each ``seq`` announced from
        now on (PostgreSQL); False where the database announces nothing (SQLite)."""
        if self._backend != "postgresql":
            return False
        self._on_notice = on_notice
        self._ensure_listener()
        return True

    def committed(self) -> None:
        """A transaction of this process that appended an event has committed."""
        with self._lock:
            self._commits += 1

    def advance(self, seq: int) -> None:
        """``seq`` is known to be committed: never report less from now on."""
        with self._lock:
            if seq > self._seq:
                self._seq = seq

    def stop(self) -> None:
        """Stop the listener (it closes its connection within ``WAIT_SECONDS``)."""
        self._stop.set()
        self._live = False

    # --- reading the head --------------------------------------------------------------

    def _query(self) -> int:
        with self._engine.connect() as connection:
            seq = int(connection.execute(HEAD_QUERY).scalar() or 0)
        self.advance(seq)
        return max(seq, self._seq)

    def _sqlite_head(self) -> int:
        # One plain connection per thread: no pool, no ORM. Outside a transaction, a read in
        # WAL mode sees the last committed state.
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(str(self._url.database), timeout=30,
                                         check_same_thread=False)
            connection.isolation_level = None
            self._local.connection = connection
        row = connection.execute(_HEAD_SQL).fetchone()
        return int(row[0]) if row else 0

    # --- the PostgreSQL listener -------------------------------------------------------

    def _ensure_listener(self) -> None:
        if self._thread is not None or self._stop.is_set():
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._listen_forever,
                                                name="daylight-log-listener", daemon=True)
                self._thread.start()

    def _listen_forever(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception:  # noqa: BLE001 — any failure: fall back to queries, reconnect
                log.warning("log head listener lost its connection; reconnecting",
                            exc_info=True)
                if self._live:
                    delay = 0.5  # it was working until now: try again soon
            self._live = False
            self._stop.wait(delay)
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)

    def _listen(self) -> None:
        import psycopg

        conninfo = self._url.set(drivername="postgresql").render_as_string(
            hide_password=False)
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5,
                             application_name=LISTENER_NAME) as connection:
            # LISTEN before reading the head: a commit in between is then both read and
            # announced, never missed.
            connection.execute(f"LISTEN {CHANNEL}")
            self._resync(connection)
            self._live = True
            resync_at = time.monotonic() + RESYNC_SECONDS
            while not self._stop.is_set():
                for notice in connection.notifies(timeout=WAIT_SECONDS):
                    seq = int(notice.payload)
                    self.advance(seq)
                    if self._on_notice is not None:
                        self._on_notice(seq)
                if time.monotonic() >= resync_at:
                    self._resync(connection)
                    resync_at = time.monotonic() + RESYNC_SECONDS

    def _resync(self, connection: Any) -> None:
        row = connection.execute(_HEAD_SQL).fetchone()
        self.advance(int(row[0]) if row else 0)
