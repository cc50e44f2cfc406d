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
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from registry.comments.models import Comment
from registry.comments.services import NewComment, post_comments, require_open
from registry.database import transaction
from registry.errors import NotFound
from registry.reviews.models import Review

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
    result: tuple[Comment, Review] | None = None
    error: BaseException | None = None

    def succeed(self, comment: Comment, review: Review) -> None:
        self.result = (comment, review)
        self.done.set()

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.done.set()


class CommentWriter:
    """One per app and process: takes posts from request threads, commits them in groups."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._queue: queue.SimpleQueue[_Post] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.groups = 0  # transactions committed or tried, for tests and benchmarks

    def post(self, review_id: str, fields: Mapping[str, Any], *, client: str | None,
             now: datetime) -> tuple[Comment, Review]:
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

    def _serve(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    # A post queued after the wait timed out still finds a thread: either
                    # this one (the queue is not empty) or the one its caller starts.
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            group = [first]
            while len(group) < MAX_GROUP:
                try:
                    group.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._write(group)
            except BaseException as exc:  # noqa: BLE001 — every waiting request must wake
                for post in group:
                    if not post.done.is_set():
                        post.fail(exc)

    def _write(self, group: list[_Post]) -> None:
        self.groups += 1
        accepted: list[tuple[_Post, Review]] = []
        try:
            with transaction(self.app) as session:
                reviews = {review.id: review for review in session.execute(
                    select(Review).where(col(Review.id).in_({post.review_id for post in group}))
                ).scalars()}
                for post in group:
                    review = reviews.get(post.review_id)
                    if review is None:
                        post.fail(NotFound(f"There is no review {post.review_id!r}."))
                        continue
                    try:
                        require_open(review, post.now)
                    except Exception as exc:  # noqa: BLE001 — the post's own answer
                        post.fail(exc)
                        continue
                    accepted.append((post, review))
                comments = post_comments(
                    session, [NewComment(review, post.fields, post.client, post.now)
                              for post, review in accepted],
                    moderation=self.app.config["COMMENT_MODERATION"])
        except IntegrityError:
            if len(accepted) <= 1:
                raise
            # One bad post must not take its neighbours down: each alone, with its own answer.
            for post, _review in accepted:
                try:
                    self._write([post])
                except Exception as exc:  # noqa: BLE001 — this post's own answer
                    post.fail(exc)
            return
        for (post, review), comment in zip(accepted, comments, strict=True):
            post.succeed(comment, review)


def comment_writer(app: Flask | None = None) -> CommentWriter:
    """The app's comment writer in this process."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    writer: CommentWriter | None = app.extensions.get("daylight.comment_writer")
    if writer is None:
        with _CREATE_LOCK:
            writer = app.extensions.setdefault("daylight.comment_writer", CommentWriter(app))
    return writer


_CREATE_LOCK = threading.Lock()
