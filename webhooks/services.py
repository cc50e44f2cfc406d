"""Endpoints and fan-out: what the registry calls inside its own transactions.

Every function here flushes and never commits; the caller commits once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from webhooks.claims import park_deliveries, unpark_deliveries
from webhooks.ids import new_id
from webhooks.models import (
    FAILED,
    PENDING,
    SENDING,
    SUCCEEDED,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
    table_of,
)
from webhooks.safety import check_url
from webhooks.signing import new_secret, secrets_in_use

TEST_EVENT_TYPE = "webhook.test"
ROTATION_GRACE = timedelta(hours=24)  # the old secret still signs this long after a rotation


def create_endpoint(
    session: Session,
    *,
    url: str,
    event_types: Iterable[str] = (),
    description: str = "",
    owner_id: str | None = None,
    now: datetime,
    allow_private: bool = False,
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it and its signing secret, which is shown only once.

    Raises ``UnsafeURLError`` for a URL Daylight will not send to. An empty
    ``event_types`` subscribes to every event type (``webhook.test`` only ever goes to
    the endpoint that asks for it).
    """
    check_url(url, allow_private)
    secret = new_secret()
    endpoint = WebhookEndpoint(
        url=url,
        description=description,
        event_types=_normalise_types(event_types),
        owner_id=owner_id,
        secret=secret,
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    session.flush()
    return endpoint, secret


def update_endpoint(
    session: Session,
    endpoint: WebhookEndpoint,
    *,
    now: datetime,
    allow_private: bool = False,
    url: str | None = None,
    event_types: Iterable[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
    disabled_reason: str = "disabled by its owner",
) -> WebhookEndpoint:
    """Change the fields given (None leaves a field as it is).

    ``enabled=True`` re-enables a disabled endpoint and starts its failure clock afresh;
    its deliveries still pending are sent again. ``enabled=False`` disables it, saying
    ``disabled_reason`` in its record.
    """
    if url is not None and url != endpoint.url:
        check_url(url, allow_private)
        endpoint.url = url
        # The old address's failures say nothing of the new one's.
        endpoint.failing_since = None
    if event_types is not None:
        endpoint.event_types = _normalise_types(event_types)
    if description is not None:
        endpoint.description = description
    if enabled is True and endpoint.disabled_at is not None:
        endpoint.disabled_at = None
        endpoint.disabled_reason = None
        endpoint.failing_since = None
        unpark_deliveries(session.connection(), endpoint.id, now)
    elif enabled is False and endpoint.disabled_at is None:
        endpoint.disabled_at = now
        endpoint.disabled_reason = disabled_reason
        park_deliveries(session.connection(), col(WebhookDelivery.endpoint_id) == endpoint.id)
    endpoint.updated_at = now
    session.add(endpoint)
    session.flush()
    return endpoint


def rotation_pending(endpoint: WebhookEndpoint, now: datetime) -> datetime | None:
    """Until when the secret replaced at the last rotation still signs, if it still does.

    Another rotation meanwhile would drop it early (one old secret is kept), breaking the
    24 hours promised to a receiver still checking with it: it is refused until then.
    """
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret is not None and expires is not None and expires > now:
        return expires
    return None


def rotate_secret(session: Session, endpoint: WebhookEndpoint, *, now: datetime) -> str:
    """Give the endpoint a new secret and return it; the old one still signs for 24 hours.
    The caller checks ``rotation_pending`` first."""
    if rotation_pending(endpoint, now) is not None:
        raise ValueError("the secret replaced at the last rotation still signs")
    secret = new_secret()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + ROTATION_GRACE
    endpoint.secret = secret
    endpoint.updated_at = now
    session.add(endpoint)
    session.flush()
    return secret


def live_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The secrets that sign a message sent at ``now``: the current one, then any old one
    still in its grace period."""
    return secrets_in_use(
        endpoint.secret, endpoint.previous_secret, endpoint.previous_secret_expires_at, now
    )


def delete_endpoint(session: Session, endpoint: WebhookEndpoint) -> None:
    """Delete an endpoint with its deliveries and their attempts.

    A send in flight for it finishes without effect: its fencing token is gone.
    """
    deliveries = select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == endpoint.id)
    session.execute(delete(WebhookAttempt).where(col(WebhookAttempt.delivery_id).in_(deliveries)))
    session.execute(delete(WebhookDelivery).where(col(WebhookDelivery.endpoint_id) == endpoint.id))
    session.delete(endpoint)
    session.flush()


@dataclass(frozen=True)
class OutgoingEvent:
    """An event of the registry's log, as the fan-out needs it."""

    event_id: str
    type: str
    timestamp: datetime
    data: dict[str, Any]


def enqueue_event(
    session: Session,
    *,
    event_id: str,
    type: str,
    timestamp: datetime,
    data: dict[str, Any],
    now: datetime,
    only_endpoint_id: str | None = None,
) -> int:
    """Write one delivery of an event per enabled endpoint subscribed to its type; returns
    how many deliveries were created.

    With ``only_endpoint_id`` the event goes to that endpoint alone, whatever its
    subscriptions (``webhook.test``, which must never reach anyone else, requires it).
    Endpoints created after the event do not receive it. Idempotent: handing the same event
    over again creates no second delivery to any endpoint.
    """
    event = OutgoingEvent(event_id, type, timestamp, data)
    if only_endpoint_id is None:
        return enqueue_events(session, [event], now=now)
    targets = list(session.exec(select(WebhookEndpoint.id).where(
        col(WebhookEndpoint.disabled_at).is_(None), col(WebhookEndpoint.created_at) <= timestamp,
        WebhookEndpoint.id == only_endpoint_id)))
    return _enqueue(session, event, targets, now=now)


@dataclass(frozen=True)
class Subscriptions:
    """The enabled endpoints and the event types each takes, read once for a batch of
    events (``subscriptions``)."""

    endpoints: tuple[tuple[str, tuple[str, ...], datetime], ...]

    def targets(self, event_type: str, timestamp: datetime) -> list[str]:
        """The endpoints that receive an event of ``event_type`` at ``timestamp``: those
        subscribed to the type (or to every type) and created no later than the event."""
        return [endpoint_id for endpoint_id, types, created_at in self.endpoints
                if created_at <= timestamp and (not types or event_type in types)]


def subscriptions(session: Session, *, until: datetime) -> Subscriptions:
    """The enabled endpoints created no later than ``until`` and what they subscribe to.

    The worker reads this before it reads the events' bodies, so that the events nobody
    receives (under a comment surge, almost all of them) are never loaded.
    """
    rows = session.exec(select(
        WebhookEndpoint.id, WebhookEndpoint.event_types, WebhookEndpoint.created_at
    ).where(col(WebhookEndpoint.disabled_at).is_(None),
            col(WebhookEndpoint.created_at) <= until)).all()
    return Subscriptions(tuple((endpoint_id, tuple(types or ()), created_at)
                               for endpoint_id, types, created_at in rows))


def enqueue_events(session: Session, events: Sequence[OutgoingEvent], *, now: datetime,
                   subscribed: Subscriptions | None = None) -> int:
    """``enqueue_event`` for several events in order, with one query for the endpoints
    (a surge of comments hands the worker hundreds of events a second, most of them
    subscribed to by no one); returns how many deliveries were created.

    ``subscribed``, read by ``subscriptions`` in the same transaction up to the events'
    last timestamp, saves that query."""
    if any(event.type == TEST_EVENT_TYPE for event in events):
        raise ValueError("webhook.test goes only to the endpoint that asked for it")
    if not events:
        return 0
    if subscribed is None:
        subscribed = subscriptions(session, until=max(event.timestamp for event in events))
    created = 0
    for event in events:
        created += _enqueue(session, event, subscribed.targets(event.type, event.timestamp),
                            now=now)
    return created


def _enqueue(session: Session, event: OutgoingEvent, targets: list[str], *,
             now: datetime) -> int:
    """The message of ``event`` and one delivery to each of ``targets`` that has none."""
    if not targets:
        return 0  # no message row either: the event log already keeps every event
    _insert_ignoring_duplicates(
        session,
        table_of(WebhookMessage),
        [
            {
                "id": event.event_id,
                "type": event.type,
                "timestamp": event.timestamp,
                "body": message_body(event.type, event.timestamp, event.data),
                "created_at": now,
            }
        ],
    )
    already = set(
        session.exec(
            select(WebhookDelivery.endpoint_id).where(
                WebhookDelivery.message_id == event.event_id)
        )
    )
    rows = [
        {
            "id": new_id("whd"),
            "endpoint_id": endpoint_id,
            "message_id": event.event_id,
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for endpoint_id in targets
        if endpoint_id not in already
    ]
    created = _insert_ignoring_duplicates(session, table_of(WebhookDelivery), rows)
    session.flush()
    return created


def message_body(type: str, timestamp: datetime, data: dict[str, Any]) -> str:
    """The JSON body of a webhook, ``{"type", "timestamp", "data"}``, serialised once."""
    return json.dumps(
        {"type": type, "timestamp": rfc3339(timestamp), "data": data},
        ensure_ascii=False,
        separators=(",", ":"),
        default=_json_default,
    )


def rfc3339(moment: datetime) -> str:
    """``moment`` as RFC 3339 in UTC with a ``Z``."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: Daylight uses only timezone-aware times")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def retry_delivery(session: Session, delivery: WebhookDelivery, *, now: datetime) -> bool:
    """Make a delivery due now, even one that succeeded or failed; returns False (and
    changes nothing) while it is being sent. For a disabled endpoint it waits until the
    endpoint is enabled again.

    A manual retry is one more attempt: a delivery that had used its whole schedule is
    marked failed again if this attempt fails too.
    """
    lease_expires = delivery.lease_expires_at
    if delivery.status == SENDING and lease_expires is not None and lease_expires > now:
        return False
    endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
    delivery.status = PENDING
    # A disabled endpoint's delivery waits, parked, until the endpoint is enabled again.
    delivery.next_attempt_at = now if endpoint is not None and endpoint.enabled else None
    delivery.completed_at = None
    delivery.lease_token = None
    delivery.lease_expires_at = None
    session.add(delivery)
    session.flush()
    return True


def purge_finished_deliveries(session: Session, *, endpoint_id: str, before: datetime,
                              limit: int) -> int:
    """Delete up to ``limit`` of an endpoint's deliveries that finished (succeeded or
    failed) before ``before``, with their attempts, and the messages that no delivery
    needs any more; returns how many deliveries went.

    A delivery still pending (a parked one for a disabled endpoint, say) is kept whatever
    its age. The rows are locked first (skipping any a sender or a retry holds), so a retry
    made at the same moment either comes first and keeps its delivery, or finds it gone.
    """
    rows = session.execute(
        select(col(WebhookDelivery.id), col(WebhookDelivery.message_id))
        .where(col(WebhookDelivery.endpoint_id) == endpoint_id,
               # Finished before ``before`` (a delivery retried or parked long after it was
               # made is kept its full time from then); made before it too, which that
               # implies, so the endpoint's (endpoint_id, created_at) index finds them.
               col(WebhookDelivery.created_at) < before,
               col(WebhookDelivery.completed_at) < before,
               col(WebhookDelivery.status).in_([SUCCEEDED, FAILED]))
        .order_by(col(WebhookDelivery.created_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not rows:
        return 0
    ids = [delivery_id for delivery_id, _ in rows]
    session.execute(delete(WebhookAttempt).where(col(WebhookAttempt.delivery_id).in_(ids)))
    session.execute(delete(WebhookDelivery).where(col(WebhookDelivery.id).in_(ids)))
    still_needed = select(col(WebhookDelivery.id)).where(
        col(WebhookDelivery.message_id) == col(WebhookMessage.id))
    session.execute(delete(WebhookMessage).where(
        col(WebhookMessage.id).in_({message_id for _, message_id in rows}),
        ~still_needed.exists()))
    session.flush()
    return len(ids)


@dataclass(frozen=True)
class DeliveryRecord:
    """A delivery with its event type and every attempt, oldest first."""

    delivery: WebhookDelivery
    event_type: str
    attempts: list[WebhookAttempt]


@dataclass(frozen=True)
class DeliveryPage:
    """One page of an endpoint's deliveries, newest first; pass ``next_cursor`` back for
    the next page (None on the last)."""

    items: list[DeliveryRecord]
    next_cursor: str | None


def list_deliveries(
    session: Session,
    *,
    endpoint_id: str,
    limit: int = 50,
    cursor: str | None = None,
    status: str | None = None,
) -> DeliveryPage:
    """An endpoint's deliveries, newest first, with their attempts (two queries a page)."""
    delivery = table_of(WebhookDelivery)
    query = (
        select(WebhookDelivery, WebhookMessage.type)
        .join(WebhookMessage, col(WebhookMessage.id) == WebhookDelivery.message_id)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
        .order_by(col(WebhookDelivery.created_at).desc(), col(WebhookDelivery.id).desc())
        .limit(limit + 1)
    )
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if cursor is not None:
        anchor = session.get(WebhookDelivery, cursor)
        if anchor is None or anchor.endpoint_id != endpoint_id:
            raise ValueError("unknown cursor")
        query = query.where(
            (delivery.c.created_at < anchor.created_at)
            | ((delivery.c.created_at == anchor.created_at) & (delivery.c.id < anchor.id))
        )
    rows = list(session.exec(query))
    page, more = rows[:limit], len(rows) > limit
    attempts = attempts_of(session, [d.id for d, _ in page])
    items = [DeliveryRecord(d, event_type, attempts.get(d.id, [])) for d, event_type in page]
    return DeliveryPage(items=items, next_cursor=page[-1][0].id if more else None)


def attempts_of(session: Session, delivery_ids: Sequence[str]) -> dict[str, list[WebhookAttempt]]:
    """The attempts of each delivery in ``delivery_ids``, oldest first."""
    if not delivery_ids:
        return {}
    found: dict[str, list[WebhookAttempt]] = {}
    query = (
        select(WebhookAttempt)
        .where(col(WebhookAttempt.delivery_id).in_(delivery_ids))
        .order_by(col(WebhookAttempt.delivery_id), col(WebhookAttempt.number))
    )
    for attempt in session.exec(query):
        found.setdefault(attempt.delivery_id, []).append(attempt)
    return found


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _normalise_types(event_types: Iterable[str]) -> list[str]:
    if isinstance(event_types, str):
        raise TypeError("event_types is a list of event type names")
    return sorted({t.strip() for t in event_types if t.strip()})


def _insert_ignoring_duplicates(session: Session, table: Any, rows: list[dict[str, Any]]) -> int:
    """Insert ``rows``, skipping any whose key exists (a concurrent fan-out of the same
    event); returns how many were inserted.

    One statement with many parameter sets: SQLAlchemy sends it as batched multi-row
    INSERTs ("insertmanyvalues", RETURNING what went in) and compiles it once, where a
    ``values(rows)`` statement would be compiled afresh for every fan-out.
    """
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    stmt: Any
    if dialect == "postgresql":
        stmt = postgresql.insert(table).on_conflict_do_nothing()
    elif dialect == "sqlite":
        stmt = sqlite.insert(table).on_conflict_do_nothing()
    else:  # no upsert syntax known: a duplicate then surfaces as an IntegrityError
        stmt = insert(table)
    return len(session.execute(stmt.returning(table.c.id), rows).all())


__all__ = [
    "DeliveryPage",
    "DeliveryRecord",
    "OutgoingEvent",
    "ROTATION_GRACE",
    "Subscriptions",
    "TEST_EVENT_TYPE",
    "attempts_of",
    "create_endpoint",
    "delete_endpoint",
    "enqueue_event",
    "enqueue_events",
    "list_deliveries",
    "live_secrets",
    "message_body",
    "purge_finished_deliveries",
    "retry_delivery",
    "rotate_secret",
    "subscriptions",
    "update_endpoint",
]
