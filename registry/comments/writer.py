"""Group commit for comments: the posts waiting at one moment share one transaction.

A comment period that draws a crowd is the heaviest write Daylight takes: every post stores a
comment, its private contact row and its event, and takes the next ``seq`` on the log head's
row (which orders all writers). One transaction per post makes every post wait its turn
for that row and, on SQLite, for the single write lock. Here, in each web process, the
first post to find no group being written writes itself at once; the posts that arrive
meanwhile wait together, and when the group is committed the first of them writes them all
as the next group (leader and followers: no thread of its own, so no hand-off between
threads for the post that writes). A request still answers only after its comment,
contact row and event are committed; nothing is acknowledged that is not stored.

If a group fails to commit on a conflict (a unique key), each of its posts is written again
alone, so one bad post cannot take its neighbours down with it; a busy database fails the
group with 503 and nothing saved.

A connection lost during the COMMIT itself (the database crashed or restarted, or the
connection was cut) leaves the group's fate unknown: it may have been committed before the
answer was lost. Telling its residents "nothing was saved" could be false, and they would
post again. So the writer waits (at most ``SETTLE_SECONDS``) until the database answers
again and the old session has ended, then looks for the group's comments by their ids:
found, the posts get their receipts; absent, the group is written again once. If it
cannot tell in time, each post gets a 503 that says so, with its tracking number to check.

A post with an idempotency key (``registry.comments.idempotency``) is stored like any
other: a try of a post already stored (by an earlier try, or by another process at the same
moment) makes the group's insert fail on the key's unique index, and then, as for any
unique-key failure, its posts are written one by one, each keyed post first looked up under
its key: found, it gets that comment's receipt. A second try in the same group as the first
gets the first's answer, and a keyed post refused by its closed period is looked up too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from flask import Flask, current_app
from sqlalchemy import Connection, bindparam, func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import col

from registry.comments.idempotency import reused_key, stored_under, stored_values
from registry.comments.models import Comment
from registry.comments.services import (
    NewComment,
    PostedComment,
    PreparedComment,
    ReviewWindow,
    prepare_comments,
    replayed_comment,
    require_open,
    review_windows,
    store_comments,
)
from registry.database import engine, log_head
from registry.errors import NotFound, OutcomeUnknown, Unavailable

log = logging.getLogger(__name__)

#: The most posts one transaction takes (bounds its time holding the write lock).
MAX_GROUP = 64
#: How long a group whose COMMIT lost its connection waits to learn whether it was stored.
SETTLE_SECONDS = 15.0

_FOUND = select(func.count()).select_from(Comment).where(
    col(Comment.id).in_(bindparam("ids", expanding=True)))
_SESSION_ALIVE = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")


@dataclass
class _Post:
    """A post waiting to be written, and what became of it."""

    review_id: str
    fields: Mapping[str, Any]
    client: str | None
    now: datetime
    key: str | None = None  # the hash of its idempotency key (registry.comments.idempotency)
    # Set when the post is answered, or when its thread is to write the next group.
    wake: threading.Event = field(default_factory=threading.Event)
    leads: bool = False
    result: tuple[PostedComment, ReviewWindow] | None = None
    error: BaseException | None = None

    @property
    def answered(self) -> bool:
        return self.result is not None or self.error is not None

    def succeed(self, comment: PostedComment, review: ReviewWindow) -> None:
        self.result = (comment, review)
        self.wake.set()

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.wake.set()


class CommentWriter:
    """One per app and process: posts that arrive while a group is being written wait
    together and are written as the next group, by one of their own request threads."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._waiting: list[_Post] = []
        self._writing = False  # a request thread is writing a group, or about to
        self._idle = threading.Condition(self._lock)  # notified when _writing ends
        # One connection kept between groups rather than one from the pool for each: a
        # checkout costs a round trip on PostgreSQL (the pre-ping). Used by one writing
        # thread at a time; closed by ``stop`` (``registry.database.dispose``).
        self._connection: Connection | None = None
        # Its server process on PostgreSQL: a group whose COMMIT lost the connection is
        # settled only once that process has ended (it may still be committing).
        self._backend_pid: int | None = None
        self.groups = 0  # transactions committed or tried, for tests and benchmarks

    def waiting(self) -> int:
        """Posts queued behind the group being written (for tests)."""
        with self._lock:
            return len(self._waiting)

    def post(self, review_id: str, fields: Mapping[str, Any], *, client: str | None,
             now: datetime, idempotency_key: str | None = None
             ) -> tuple[PostedComment, ReviewWindow]:
        """Store a comment on ``review_id`` (validated ``fields``); returns it once committed.

        With an ``idempotency_key`` (its hash), a post sent before under that key gets the
        comment it stored (``replayed``), or ``Invalid`` if its fields differ.
        Raises ``NotFound`` for an unknown review, ``Conflict`` when its period is not open,
        and the database's error when the group could not be committed. The caller must not
        hold a write transaction of its own (on SQLite the writer would wait for it).
        """
        pending = _Post(review_id, fields, client, now, idempotency_key)
        with self._lock:
            self._waiting.append(pending)
            leads = pending.leads = not self._writing
            self._writing = True
        if not leads:
            # Woken with an answer, or to write the next group (this post among it).
            pending.wake.wait()
        if pending.leads:
            self._lead()
        if pending.error is not None:
            raise pending.error
        assert pending.result is not None
        return pending.result

    def _lead(self) -> None:
        """Write the posts waiting now as one group, then pass the turn to the first post
        that arrived meanwhile (its thread writes the next group) or end it."""
        group: list[_Post] = []

        def take() -> list[_Post]:
            with self._lock:
                group.extend(self._waiting[:MAX_GROUP])
                del self._waiting[:MAX_GROUP]
            return group

        try:
            # Links in events and receipts are built from the app's settings.
            with self.app.app_context():
                self._write(take)
        except BaseException as exc:  # noqa: BLE001 — every waiting request must wake
            if not group:
                take()  # failed before its turn to write: the posts waiting now fail alike
            for post in group:
                if not post.answered:
                    post.fail(exc)
        finally:
            with self._lock:
                following = self._waiting[0] if self._waiting else None
                if following is None:
                    self._writing = False
                    self._idle.notify_all()
            if following is not None:
                following.leads = True
                following.wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Close the kept connection once no group is being written
        (``registry.database.dispose``); a later post opens another."""
        with self._idle:
            if self._idle.wait_for(lambda: not self._writing, timeout):
                self._close()

    def _connect(self) -> Connection:
        if self._connection is None:
            self._connection = engine(self.app).connect()
            info = getattr(self._connection.connection.dbapi_connection, "info", None)
            self._backend_pid = getattr(info, "backend_pid", None)  # psycopg's, no query
        return self._connection

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _write(self, take: Callable[[], list[_Post]], *, retried: bool = False,
               alone: bool = False) -> None:
        """Write the group ``take()`` gives, called once the turn to write is ours (on
        SQLite, after waiting for the other processes' writers): the posts that arrived
        during that wait join this group instead of waiting for the next."""
        echoes: list[tuple[_Post, _Post]] = []
        try:
            self._write_group(take, echoes, retried=retried, alone=alone)
        finally:
            # A post sent twice into one group gets the answer of its first try.
            for post, first in echoes:
                if not post.answered and first.answered:
                    _echo(post, first)

    def _write_group(self, take: Callable[[], list[_Post]],
                     echoes: list[tuple[_Post, _Post]], *, retried: bool,
                     alone: bool) -> None:
        """``_write``'s work; posts sent twice into this group are added to ``echoes``."""
        self.groups += 1
        accepted: list[tuple[_Post, ReviewWindow]] = []
        group: list[_Post] = []
        connection = self._connect()
        committing = False
        try:
            # Core, not a session: for a group of one, the ORM cost twice the writes.
            with connection.begin():
                group = take()
                windows = review_windows(connection, {post.review_id for post in group})
                found: list[tuple[_Post, ReviewWindow]] = []
                for post in group:
                    window = windows.get(post.review_id)
                    if window is None:
                        post.fail(NotFound(f"There is no review {post.review_id!r}."))
                        continue
                    found.append((post, window))
                # A keyed post sent again is found by the key's unique index as the group
                # is stored: the group fails, and its posts are written again one by one
                # (``alone``), where a keyed post is looked up first. (Looking every keyed
                # post up here cost each first try a query: a keyed post took 1.27× the
                # time of one without a key, against 1.07× now; bench/idempotency_cost.py.)
                if any(post.key is not None for post, _window in found):
                    found = _set_aside_repeats(connection, found, echoes, look_up=alone)
                closed: list[tuple[_Post, ReviewWindow, Exception]] = []
                for post, window in found:
                    try:
                        require_open(window, post.now)
                    except Exception as exc:  # noqa: BLE001 — the post's own answer
                        if post.key is not None and not alone:
                            closed.append((post, window, exc))
                        else:
                            post.fail(exc)
                        continue
                    accepted.append((post, window))
                if closed:
                    # One stored just before its period closed, sent again just after,
                    # gets its receipt.
                    _answer_closed(connection, closed, echoes)
                prepared = prepare_comments(
                    [NewComment(window, post.fields, post.client, post.now, post.key)
                     for post, window in accepted],
                    moderation=self.app.config["COMMENT_MODERATION"])
                appended = store_comments(connection, prepared)
                committing = True
        except DBAPIError as exc:
            if exc.connection_invalidated and committing:
                # Lost during the COMMIT: stored or not, the residents must be told which.
                backend_pid = self._backend_pid
                self._close()
                self._settle_lost_commit(accepted, prepared, backend_pid, retried=retried)
                return
            if exc.connection_invalidated and not committing and not retried:
                # The kept connection had died (a database restart) before the commit, so
                # nothing was written: the group goes again on a fresh one before anyone is
                # told. (One lost during the COMMIT is settled above: it may have committed.)
                self._close()
                # (Dead at BEGIN, the group was never taken: it is taken on the fresh one.)
                remaining = [post for post in group if not post.answered]
                self._write((lambda: remaining) if group else take, retried=True)
                return
            if not isinstance(exc, IntegrityError) or alone:
                raise
            # One bad post must not take its neighbours down: each alone, with its own answer.
            # (A post whose key another process stored meanwhile finds that comment alone.)
            for post, _window in accepted:
                try:
                    self._write(lambda: [post], alone=True)  # noqa: B023 — called at once
                except Exception as error:  # noqa: BLE001 — this post's own answer
                    post.fail(error)
            return
        self._answer(accepted, prepared, appended)

    def _answer(self, accepted: list[tuple[_Post, ReviewWindow]],
                prepared: list[PreparedComment], appended: bool) -> None:
        """The group is committed: each post gets its receipt."""
        if appended:
            log_head(self.app).committed()
        for (post, window), item in zip(accepted, prepared, strict=True):
            post.succeed(item.comment, window)

    def _settle_lost_commit(self, accepted: list[tuple[_Post, ReviewWindow]],
                            prepared: list[PreparedComment], backend_pid: int | None, *,
                            retried: bool) -> None:
        """Answer the posts of a group whose COMMIT lost its connection: receipts if it was
        stored; if it was not, the group written again (once; the second time, a 503 that
        says nothing was saved); else a 503 that says the outcome is unknown, with each
        post's tracking number."""
        stored = self._stored(
            [item.comment.id for item in prepared], backend_pid) if prepared else False
        log.warning("a comment group (posts: %d) lost its connection at COMMIT; %s", len(prepared),
                    {True: "found stored: receipts given", None: "could not be looked up in "
                     "time: answered 'Outcome unknown'"}.get(
                        stored, "found absent: " + ("refused" if retried else "written again")))
        if stored:
            self._answer(accepted, prepared,
                         appended=any(item.event is not None for item in prepared))
            return
        if stored is False:
            if retried:
                raise Unavailable.nothing_saved()
            remaining = [post for post, _window in accepted]
            self._write(lambda: remaining, retried=True)
            return
        for (post, _window), item in zip(accepted, prepared, strict=True):
            post.fail(OutcomeUnknown.lost_commit(item.comment.tracking_number))

    def _stored(self, ids: list[str], backend_pid: int | None) -> bool | None:
        """Whether the comments ``ids`` (one group: all or none) are stored; None when the
        database cannot tell within ``SETTLE_SECONDS``."""
        deadline = time.monotonic() + SETTLE_SECONDS
        pause = 0.05
        while True:
            try:
                with engine(self.app).connect() as connection:
                    # A session cut off from us may still be finishing its COMMIT; once it
                    # has ended (as after a restart), the outcome is final.
                    ended = backend_pid is None or not connection.execute(
                        _SESSION_ALIVE, {"pid": backend_pid}).scalar()
                    if ended:
                        found = connection.execute(_FOUND, {"ids": ids}).scalar()
                        connection.rollback()
                        # A transaction is all or nothing: anything else cannot be told.
                        return {0: False, len(ids): True}.get(int(found or 0))
                    connection.rollback()
            except DBAPIError:
                pass  # not answering yet: the database is still down or starting
            if time.monotonic() + pause > deadline:
                return None
            time.sleep(pause)
            pause = min(pause * 2, 1.0)


def _set_aside_repeats(connection: Connection, posts: list[tuple[_Post, ReviewWindow]],
                       echoes: list[tuple[_Post, _Post]], *,
                       look_up: bool) -> list[tuple[_Post, ReviewWindow]]:
    """The ``posts`` still to store. A post whose key an earlier post of this group carries
    goes to ``echoes``, to get that post's answer; with ``look_up``, a post whose key
    already stored a comment gets that comment (or ``Invalid`` if its fields differ) now."""
    keys: dict[str, set[str]] = {}
    for post, _window in posts:
        if post.key is not None and look_up:
            keys.setdefault(post.review_id, set()).add(post.key)
    stored = {(review_id, key): earlier for review_id, review_keys in keys.items()
              for key, earlier in stored_under(connection, review_id, review_keys).items()}
    kept: list[tuple[_Post, ReviewWindow]] = []
    firsts: dict[tuple[str, str], _Post] = {}
    for post, window in posts:
        if post.key is None:
            kept.append((post, window))
            continue
        earlier = stored.get((post.review_id, post.key))
        if earlier is not None:
            if earlier.values == stored_values(post.fields):
                post.succeed(replayed_comment(earlier.comment), window)
            else:
                post.fail(reused_key())
        elif (first := firsts.get((post.review_id, post.key))) is not None:
            echoes.append((post, first))
        else:
            firsts[(post.review_id, post.key)] = post
            kept.append((post, window))
    return kept


def _answer_closed(connection: Connection,
                   closed: list[tuple[_Post, ReviewWindow, Exception]],
                   echoes: list[tuple[_Post, _Post]]) -> None:
    """Answer keyed posts refused by their period: the comment an earlier try stored, if
    there is one; else the refusal."""
    refusals = {id(post): exc for post, _window, exc in closed}
    for post, _window in _set_aside_repeats(
            connection, [(post, window) for post, window, _exc in closed], echoes,
            look_up=True):
        post.fail(refusals[id(post)])


def _echo(post: _Post, first: _Post) -> None:
    """Answer ``post`` as its first try ``first`` was answered, if it is the same post."""
    if first.result is None:
        assert first.error is not None
        post.fail(first.error)
    elif stored_values(post.fields) != stored_values(first.fields):
        post.fail(reused_key())
    else:
        comment, window = first.result
        post.succeed(replace(comment, replayed=True), window)


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
