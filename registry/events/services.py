"""Appending to and reading the event log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from registry.events.catalog import EVENT_TYPES
from registry.events.head import APPENDED, next_seq_statement
from registry.events.models import Event
from registry.ids import new_id


def append_event(
    session: Session,
    *,
    type: str,
    subject_type: str,
    subject_id: str,
    data: dict[str, Any],
    now: datetime,
    technology_id: str | None = None,
) -> Event:
    """Append one event in the caller's transaction and return it (flushed, not committed)."""
    if type not in EVENT_TYPES or EVENT_TYPES[type].public is False:
        raise ValueError(f"not a public event type: {type}")
    # The row lock on the head orders writers (gap-free, committed in order); on PostgreSQL
    # the same statement announces the number at commit (``registry.events.head``). Core on
    # the session's connection: the ORM's bulk-update path costs more than the update.
    connection = session.connection()
    seq = connection.execute(next_seq_statement(connection.dialect.name)).scalar_one()
    session.info[APPENDED] = True
    event = Event(
        id=new_id("evt"),
        seq=seq,
        type=type,
        timestamp=now,
        subject_type=subject_type,
        subject_id=subject_id,
        technology_id=technology_id,
        data=data,
    )
    session.add(event)
    session.flush()
    return event


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


def event_message(event: Event) -> dict[str, Any]:
    """The public form of an event, as served by the API and feeds."""
    return {
        "id": event.id,
        "seq": event.seq,
        "type": event.type,
        "timestamp": event.timestamp,
        "data": event.data,
    }
