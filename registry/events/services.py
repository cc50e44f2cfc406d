"""Appending to and reading the event log."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlmodel import Session, col

from registry.events.catalog import EVENT_TYPES
from registry.events.head import APPENDED, next_seq_statement
from registry.events.models import Event
from registry.ids import new_id
from registry.statements import DriverStatement


@dataclass(frozen=True)
class NewEvent:
    """An event about to be appended."""

    type: str
    subject_type: str
    subject_id: str
    data: dict[str, Any]
    timestamp: datetime
    technology_id: str | None = None


@dataclass(frozen=True)
class AppendedEvent:
    """Where an appended event stands in the log."""

    id: str
    seq: int


def append_event(
    session: Session,
    *,
    type: str,
    subject_type: str,
    subject_id: str,
    data: dict[str, Any],
    now: datetime,
    technology_id: str | None = None,
) -> AppendedEvent:
    """Append one event in the caller's transaction (written, not committed)."""
    return append_events(session, [NewEvent(type, subject_type, subject_id, data, now,
                                            technology_id)])[0]


def append_events(session: Session, events: Sequence[NewEvent]) -> list[AppendedEvent]:
    """Append events in the caller's transaction, in order.

    The session is flushed first, so the events follow the changes they record.
    """
    if not events:
        return []
    session.flush()
    # Core on the session's connection: the ORM's unit of work costs more than the rows.
    appended = append_events_on(session.connection(), events)
    session.info[APPENDED] = True
    return appended


# Run on the driver's cursor (``registry.statements``): every write appends events, and a
# comment surge appends one per post.
_INSERT_EVENTS = DriverStatement(insert(Event))


@functools.cache
def _next_seq(dialect: str) -> DriverStatement:
    return DriverStatement(next_seq_statement(dialect))


def append_events_on(connection: Connection, events: Sequence[NewEvent]) -> list[AppendedEvent]:
    """Append events in ``connection``'s transaction, in order (Core, no session).

    The caller tells ``log_head(app).committed()`` once the transaction has committed, as
    a session's commit does by itself.
    """
    for event in events:
        if event.type not in EVENT_TYPES or EVENT_TYPES[event.type].public is False:
            raise ValueError(f"not a public event type: {event.type}")
    if not events:
        return []
    # The row lock on the head orders writers (gap-free, committed in order); on PostgreSQL
    # the same statement announces the number at commit (``registry.events.head``).
    last = int(_next_seq(connection.dialect.name).execute(
        connection, {"count": len(events)})[0][0])
    appended = [AppendedEvent(new_id("evt"), seq)
                for seq in range(last - len(events) + 1, last + 1)]
    _INSERT_EVENTS.executemany(connection, [
        {"id": where.id, "seq": where.seq, "type": event.type, "timestamp": event.timestamp,
         "subject_type": event.subject_type, "subject_id": event.subject_id,
         "technology_id": event.technology_id, "data": event.data}
        for where, event in zip(appended, events, strict=True)])
    return appended


def list_events(
    session: Session,
    *,
    after: int = 0,
    types: Sequence[str] = (),
    technology_id: str | None = None,
    limit: int = 50,
    newest_first: bool = False,
) -> list[Event]:
    """Events with ``seq`` greater than ``after``, oldest first unless asked otherwise."""
    query = select(Event)
    if after:
        query = query.where(Event.seq > after)  # type: ignore[arg-type]
    if types:
        query = query.where(Event.type.in_(types))  # type: ignore[attr-defined]
    if technology_id is not None:
        query = query.where(Event.technology_id == technology_id)  # type: ignore[arg-type]
    order = Event.seq.desc() if newest_first else Event.seq.asc()  # type: ignore[attr-defined]
    return list(session.execute(query.order_by(order).limit(limit)).scalars())


def subject_events(session: Session, subjects: Sequence[tuple[str, str]], *,
                   types: Sequence[str], limit: int) -> list[Event]:
    """The newest ``limit`` events of ``types`` about any of ``subjects`` (pairs of subject
    type and id), newest first.

    One read per subject along ``ix_event_subject``, merged here. A technology's timeline is
    its own, its reviews' and its assessments' events: filtered by technology and type
    instead, the database walked every event of the technology, a million comments' worth
    on a busy one (0.24–0.35 s), to find the few that are not comments.
    """
    found: list[Event] = []
    for subject_type, subject_id in dict.fromkeys(subjects):
        found.extend(session.execute(
            select(Event).where(col(Event.subject_type) == subject_type,
                                col(Event.subject_id) == subject_id,
                                col(Event.type).in_(types))
            .order_by(col(Event.seq).desc()).limit(limit)
        ).scalars())
    found.sort(key=lambda event: event.seq, reverse=True)
    return found[:limit]


#: What a ``comment.published`` event no longer shows once a reviewer has hidden the comment:
#: the fields its public record shows as null (``registry.comments.services.public_comment``).
WITHHELD_FIELDS = ("display_name", "neighborhood", "position", "body")


def withheld_comments(session: Session, events: Iterable[Event]) -> frozenset[str]:
    """The ids of the comments that ``events`` publish and that are hidden now.

    The log is append-only, so a ``comment.published`` event keeps the comment as it was
    published. Hidden, the comment "leaves public view" (a reviewer hides doxxing or abuse):
    the log, the feed, the webhooks not yet received and every other public reading of an
    event show it as its own record does, without its text, name, neighbourhood or
    position. Webhooks already received cannot be called back; partners receive
    ``comment.hidden`` and are asked to do the same.
    """
    ids = {str(comment["id"]) for event in events if event.type == "comment.published"
           and isinstance(comment := (event.data or {}).get("comment"), dict)
           and comment.get("id")}
    if not ids:
        return frozenset()
    from registry.comments.models import Comment, CommentStatus

    return frozenset(session.execute(
        select(col(Comment.id)).where(col(Comment.id).in_(sorted(ids)),
                                      col(Comment.status) == CommentStatus.HIDDEN.value)
    ).scalars())


def public_data(event: Event, withheld: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The event's ``data`` as the public may read it now (``withheld_comments``)."""
    data: dict[str, Any] = event.data
    comment = data.get("comment") if event.type == "comment.published" else None
    if isinstance(comment, dict) and comment.get("id") in withheld:
        # New dicts: the event row itself is never changed.
        return {**data, "comment": {**comment, **dict.fromkeys(WITHHELD_FIELDS)}}
    return data


def event_message(event: Event, withheld: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The public form of an event, as served by the API and feeds (the comments in
    ``withheld`` shown as hidden: ``withheld_comments``)."""
    return {
        "id": event.id,
        "seq": event.seq,
        "type": event.type,
        "timestamp": event.timestamp,
        "data": public_data(event, withheld),
    }
