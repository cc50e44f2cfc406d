"""Engines and sessions: SQLite (WAL, foreign keys, busy timeout) or PostgreSQL."""

from __future__ import annotations

import contextvars
import fcntl
import logging
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, String, create_engine, event, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import sessionmaker
from sqlalchemy.sql.functions import GenericFunction
from sqlmodel import Session

# Whether the transaction about to begin will write. On SQLite a write transaction starts
# with BEGIN IMMEDIATE so that two writers queue on the busy timeout instead of one failing
# with "database is locked" when it upgrades a read lock; reads stay deferred and concurrent.
_write_intent: contextvars.ContextVar[bool] = contextvars.ContextVar("write_intent", default=True)


#: How long a writer waits for its turn on SQLite before giving up (then: 503).
BUSY_TIMEOUT_SECONDS = 30

#: Write transactions a process commits on a SQLite file between two checkpoints of its
#: write-ahead log (a comment group writes 20–30 pages, so about SQLite's own 1,000).
CHECKPOINT_EVERY = 32

#: Pages in the write-ahead log past which a checkpoint finishes inside the writers' turn,
#: so that the next writer starts the log again from its beginning (4,000 pages: 16 MB).
WAL_RESTART_FRAMES = 4000

logger = logging.getLogger(__name__)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` with Daylight's connection settings."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_SECONDS,
                          "factory": _SQLiteConnection},
            **kwargs,
        )
        database = parsed.database
        _configure_sqlite(engine, WriterQueue.for_file(database) if database
                          and database != ":memory:" and not database.startswith("file:")
                          else None)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


class WriterQueue:
    """Writers to one SQLite file, one at a time, waiting in line rather than polling.

    SQLite takes one writer at a time; the others wait in its busy handler, which sleeps
    1, 2, 5, 10 … 100 ms between tries and so leaves the database idle while they sleep
    (under a comment surge the CPU stood 40% idle and the slowest posts waited half a second).
    Here a write transaction first takes a lock shared by every connection of every process
    on the file: a thread lock within the process, then ``flock`` on ``FILE-lock`` across
    processes. Both wake the next writer the moment the lock is released. Readers never
    take it. A wait longer than the busy timeout fails the way SQLite's would (503).

    There is one queue per file and process, whatever the number of engines on it, so that
    writers of one process always meet at the thread lock, whose wait has that time limit.
    """

    _queues: weakref.WeakValueDictionary[str, WriterQueue] = weakref.WeakValueDictionary()
    _queues_lock = threading.Lock()

    def __init__(self, database: str) -> None:
        self.database = database
        self.path = f"{database}-lock"
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        self._commits = 0  # write transactions committed in this process (under the lock)

    @classmethod
    def for_file(cls, database: str) -> WriterQueue:
        """The process's queue for the SQLite file ``database``."""
        key = os.path.realpath(database)
        with cls._queues_lock:
            queue = cls._queues.get(key)
            if queue is None:
                queue = cls._queues[key] = cls(database)
            return queue

    def acquire(self) -> None:
        """Wait for the turn to write (raises ``OperationalError`` on time-out)."""
        if not self._thread_lock.acquire(timeout=BUSY_TIMEOUT_SECONDS):
            # The same error SQLite gives after its busy timeout, so it is answered alike
            # (503 with Retry-After).
            raise OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError(
                "database is locked (waited for another writer)"))
        try:
            # Opened for each turn and closed after it (closing releases the lock): no
            # descriptor outlives the transaction.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # releases the GIL while it waits
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd
        except BaseException:
            self._thread_lock.release()
            raise

    def release(self, committed: bool = False) -> None:
        """Let the next writer in; after every ``CHECKPOINT_EVERY``-th ``committed``
        transaction, ask for a checkpoint (which no writer waits for)."""
        checkpoint = False
        try:
            if committed:
                self._commits += 1
                checkpoint = self._commits % CHECKPOINT_EVERY == 0
            if self._fd is not None:
                fd, self._fd = self._fd, None
                os.close(fd)
        finally:
            self._thread_lock.release()
        if checkpoint:
            CHECKPOINTS.request(self.database)


class Checkpointer:
    """Copies what is committed in SQLite's write-ahead log into the database file, on a
    thread of its own, so that no writer waits for it.

    SQLite checkpoints by itself after the commit that takes the log past 1,000 pages, in
    the committing connection before its COMMIT returns: inside that writer's turn (the
    ``WriterQueue`` lock is released only then), so every writer of every process waited for
    the checkpoint's reads, writes and two fsyncs. On this machine's disk that cost 0.26 ms
    a transaction on average, more than the transaction itself, and the comment surge ran
    15% faster without it (docs/performance.md). Daylight's connections turn it off
    (``wal_autocheckpoint=0``) and ask this thread instead, once every ``CHECKPOINT_EVERY``
    write commits of the process. The checkpoint is PASSIVE: it copies what no reader still
    needs and never blocks a writer or a reader. When the last connection to the file
    closes, SQLite checkpoints what is left, as before.

    A writer starts the log again from its beginning only when a checkpoint has copied all
    of it, which one running beside the writers never finds: they append while it copies.
    Alone, the log would grow without end (955 MB after 15,000 transactions in an earlier
    trial). So once the log holds ``WAL_RESTART_FRAMES`` pages, the checkpoint copies the
    rest inside the writers' turn: only what came while it copied the bulk outside it.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._due: set[str] = set()
        self._thread: threading.Thread | None = None
        self.completed = 0  # checkpoints run in this process (for tests)
        self.restarts = 0  # of them, finished inside the writers' turn

    def request(self, database: str) -> None:
        """Checkpoint ``database`` (a file path) soon, on the checkpoint thread."""
        with self._lock:
            self._due.add(database)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="daylight-sqlite-checkpoint")
                self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                due, self._due = self._due, set()
            for database in due:
                self.checkpoint(database)

    def checkpoint(self, database: str) -> None:
        """A passive checkpoint of ``database`` now, on a connection of its own (one that
        never creates the file: a test's may be gone)."""
        try:
            connection = sqlite3.connect(f"{Path(database).resolve().as_uri()}?mode=rw",
                                         uri=True, timeout=BUSY_TIMEOUT_SECONDS,
                                         isolation_level=None)
            try:
                _busy, frames, _copied = connection.execute(
                    "PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                if frames >= WAL_RESTART_FRAMES:
                    writers = WriterQueue.for_file(database)
                    writers.acquire()
                    try:
                        connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    finally:
                        writers.release()
                    self.restarts += 1
            finally:
                connection.close()
        except Exception as exc:  # noqa: BLE001 — the thread must live on for the next one
            if os.path.exists(database):  # (a file removed since, a test's, needs none)
                # Nothing is lost: the pages stay in the log, which the next one copies.
                logger.warning("SQLite checkpoint of %s failed: %s", database, exc)
        self.completed += 1


#: The process's checkpoint thread (started by the first request; none after a fork).
CHECKPOINTS = Checkpointer()
os.register_at_fork(after_in_child=CHECKPOINTS._reset)


class _SQLiteConnection(sqlite3.Connection):
    """A sqlite3 connection that gives up its writer's turn when its transaction ends."""

    writers: WriterQueue | None = None
    holds_turn = False

    def take_turn(self) -> None:
        if self.writers is not None and not self.holds_turn:
            self.writers.acquire()
            self.holds_turn = True

    def end_turn(self, committed: bool = False) -> None:
        if self.holds_turn and self.writers is not None:
            self.holds_turn = False
            self.writers.release(committed)

    def commit(self) -> None:
        committed = False
        try:
            super().commit()
            committed = True
        finally:
            self.end_turn(committed)

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.end_turn()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.end_turn()


def update_each(session: Session, model: Any, conditions: Sequence[Any],
                values: Mapping[str, Any]) -> list[str]:
    """Apply ``values`` to every ``model`` row matching ``conditions``, each by its own
    conditional update that repeats the conditions; returns the ids this caller changed.

    When two workers race, the second's update finds the row changed and matches nothing:
    each change happens once, and only its winner goes on to announce it.
    """
    table_id = model.id
    changed = []
    for row_id in session.execute(select(table_id).where(*conditions)).scalars().all():
        claimed = session.execute(
            update(model).where(table_id == row_id, *conditions).values(**values))
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            changed.append(row_id)
    return changed


def _unicode_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


class unicode_lower(GenericFunction[str]):  # noqa: N801  (named as SQL functions are)
    """``lower()`` that knows more than ASCII on every database: SQLite's own lowers only
    A–Z, so a search for "Éclairage" found nothing there. Python's ``str.lower`` stands in
    on SQLite (about a microsecond a call, so use it where the text is not ASCII); the
    built-in elsewhere. Not for indexes: an index keeps the built-in's results."""

    type = String()
    inherit_cache = True


@compiles(unicode_lower)
def _lower_elsewhere(element: unicode_lower, compiler: Any, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(unicode_lower, "sqlite")
def _lower_on_sqlite(element: unicode_lower, compiler: Any, **kw: Any) -> str:
    return f"unicode_lower({compiler.process(element.clauses, **kw)})"


def _configure_sqlite(engine: Engine, writers: WriterQueue | None) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the sqlite3 module so BEGIN is ours to issue.
        dbapi_connection.isolation_level = None
        dbapi_connection.writers = writers
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        if writers is not None:
            # Checkpoints run on their own thread, outside any writer's turn (Checkpointer).
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()
        dbapi_connection.create_function("unicode_lower", 1, _unicode_lower, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # BEGIN goes straight to the driver: through ``exec_driver_sql`` SQLAlchemy's
        # execution machinery cost a tenth of a comment group's write (docs/performance.md).
        # Its errors are raised as SQLAlchemy's, as ``exec_driver_sql`` would raise them.
        dbapi_connection = connection.connection.dbapi_connection
        if not _write_intent.get():
            _begin(dbapi_connection, "BEGIN")
            return
        dbapi_connection.take_turn()
        try:
            _begin(dbapi_connection, "BEGIN IMMEDIATE")
        except BaseException:
            dbapi_connection.end_turn()
            raise


def _begin(dbapi_connection: sqlite3.Connection, statement: str) -> None:
    try:
        dbapi_connection.execute(statement)
    except sqlite3.Error as exc:
        raise DBAPIError.instance(statement, (), exc, sqlite3.Error) from exc


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A factory of SQLModel sessions bound to ``engine`` that keep objects usable after commit."""
    return sessionmaker(engine, class_=Session, expire_on_commit=False)


@contextmanager
def read_only() -> Iterator[None]:
    """Mark transactions begun inside this block as reads (deferred BEGIN on SQLite)."""
    token = _write_intent.set(False)
    try:
        yield
    finally:
        _write_intent.reset(token)


def set_write_intent(writes: bool) -> contextvars.Token[bool]:
    """Declare whether the coming transaction writes; returns a token for ``reset_write_intent``."""
    return _write_intent.set(writes)


def reset_write_intent(token: contextvars.Token[bool]) -> None:
    """Undo ``set_write_intent``."""
    _write_intent.reset(token)
