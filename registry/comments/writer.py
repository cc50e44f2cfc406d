"""Group commit for comments: the posts waiting at one moment share one transaction.

A comment period that draws a crowd is the heaviest write Daylight takes: every post stores a
comment, its private contact row and its event, and takes the next ``seq`` on the log head's
row (which orders all writers). One transaction per post makes every post wait its turn
for that row and, on SQLite, for the single write lock. Here each web process hands its posts
to one writer thread, which writes everything that is waiting in a single transaction and
then wakes each request with its comment. A request still answers only after its comment,
contact row and event are committed; nothing is acknowledged that is not stored.

If a group fails to commit on a conflict (a unique key), each of its posts is written again
alone, so one bad post cannot take its neighbours down with it; a busy database fails the
group with 503 and nothing saved.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Flask, current_app
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError

from registry.comments.services import (
    NewComment,
    PostedComment,
    ReviewWindow,
    prepare_comments,
    require_open,
    review_windows,
    store_comments,
)
from registry.database import engine, log_head
from registry.errors import NotFound

#: The most posts one transaction takes (bounds its time holding the write lock).
MAX_GROUP = 64
#: An idle writer thread ends after this many seconds; the next post starts another.
IDLE_SECONDS = 5.0


@dataclass
class _Post:
    """A post waiting for the writer, and what became of it."""

    review_id: str
    fields: Mapping[str, Any]
    client: str | None
    now: datetime
    done: threading.Event = field(default_factory=threading.Event)
    result: tuple[PostedComment, ReviewWindow] | None = None
    error: BaseException | None = None

    def succeed(self, comment: PostedComment, review: ReviewWindow) -> None:
        self.result = (comment, review)
        self.done.set()

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.done.set()


class CommentWriter:
    """One per app and process: takes posts from request threads, commits them in groups."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._queue: queue.SimpleQueue[_Post | None] = queue.SimpleQueue()  # None: stop
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        # The writer keeps one connection while it has work, rather than taking one from the
        # pool for each group: a checkout costs a round trip on PostgreSQL (the pre-ping).
        self._connection: Connection | None = None
        self.groups = 0  # transactions committed or tried, for tests and benchmarks

    def post(self, review_id: str, fields: Mapping[str, Any], *, client: str | None,
             now: datetime) -> tuple[PostedComment, ReviewWindow]:
        """Store a comment on ``review_id`` (validated ``fields``); returns it once committed.

        Raises ``NotFound`` for an unknown review, ``Conflict`` when its period is not open,
        and the database's error when the group could not be committed. The caller must not
        hold a write transaction of its own (on SQLite the writer would wait for it).
        """
        pending = _Post(review_id, fields, client, now)
        self._queue.put(pending)
        self._ensure_thread()
        pending.done.wait()
        if pending.error is not None:
            raise pending.error
        assert pending.result is not None
        return pending.result

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="daylight-comments",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        # Links in events and receipts are built from the app's settings.
        with self.app.app_context():
            self._serve()

    def stop(self, timeout: float = 10.0) -> None:
        """End the thread once the posts already queued are written, and close its
        connection (``registry.database.dispose``)."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    def _serve(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                first = None
            if first is None:  # idle, or asked to stop
                with self._lock:
                    # A post queued after the wait still finds a thread: either this one
                    # (the queue is not empty) or the one its caller starts.
                    if self._queue.empty():
                        # Closed under the lock: the next thread must not find it half-closed.
                        self._close()
                        self._thread = None
                        return
                continue
            group = [first]
            while len(group) < MAX_GROUP:
                try:
                    post = self._queue.get_nowait()
                except queue.Empty:
                    break
                if post is None:
                    self._queue.put(None)  # stop once this group is written
                    break
                group.append(post)
            try:
                self._write(group)
            except BaseException as exc:  # noqa: BLE001 — every waiting request must wake
                for post in group:
                    if not post.done.is_set():
                        post.fail(exc)

    def _connect(self) -> Connection:
        if self._connection is None:
            self._connection = engine(self.app).connect()
        return self._connection

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _write(self, group: list[_Post], *, retried: bool = False) -> None:
        self.groups += 1
        accepted: list[tuple[_Post, ReviewWindow]] = []
        connection = self._connect()
        committing = False
        try:
            # Core, not a session: for a group of one, the ORM cost twice the writes.
            with connection.begin():
                windows = review_windows(connection, {post.review_id for post in group})
                for post in group:
                    window = windows.get(post.review_id)
                    if window is None:
                        post.fail(NotFound(f"There is no review {post.review_id!r}."))
                        continue
                    try:
                        require_open(window, post.now)
                    except Exception as exc:  # noqa: BLE001 — the post's own answer
                        post.fail(exc)
                        continue
                    accepted.append((post, window))
                prepared = prepare_comments(
                    [NewComment(window, post.fields, post.client, post.now)
                     for post, window in accepted],
                    moderation=self.app.config["COMMENT_MODERATION"])
                appended = store_comments(connection, prepared)
                committing = True
        except DBAPIError as exc:
            if exc.connection_invalidated and not committing and not retried:
                # The kept connection had died (a database restart) before the commit, so
                # nothing was written: the group goes again on a fresh one before anyone is
                # told. A connection lost during the commit may have committed; that group
                # fails (503) rather than risk storing a comment twice.
                self._close()
                self._write([post for post in group if not post.done.is_set()], retried=True)
                return
            if not isinstance(exc, IntegrityError) or len(accepted) <= 1:
                raise
            # One bad post must not take its neighbours down: each alone, with its own answer.
            for post, _window in accepted:
                try:
                    self._write([post])
                except Exception as error:  # noqa: BLE001 — this post's own answer
                    post.fail(error)
            return
        if appended:
            log_head(self.app).committed()
        for (post, window), item in zip(accepted, prepared, strict=True):
            post.succeed(item.comment, window)


def comment_writer(app: Flask | None = None) -> CommentWriter:
    """The app's comment writer in this process."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    writer: CommentWriter | None = app.extensions.get("daylight.comment_writer")
    if writer is None:
        with _CREATE_LOCK:
            writer = app.extensions.get("daylight.comment_writer")
            if writer is None:
                writer = app.extensions["daylight.comment_writer"] = CommentWriter(app)
                app.extensions["daylight.on_dispose"].append(writer.stop)
    return writer


_CREATE_LOCK = threading.Lock()
