"""Claims: taking due deliveries under a lease (with a fencing token), checking a claim
that waited again before it is sent, giving unsent claims back, and parking a disabled
endpoint's deliveries out of the queue.

The statements are built once at import and work in batches: a handful of round trips
per pass whatever its size, because the database work (not the HTTP) is what would slow a
large fan-out down.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, case, select, update

from webhooks.models import (
    PENDING,
    SENDING,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
    table_of,
)
from webhooks.signing import secrets_in_use

_delivery = table_of(WebhookDelivery)
_endpoint = table_of(WebhookEndpoint)
_message = table_of(WebhookMessage)

# Rows read per free slot, so that a batch can skip endpoints already at their limit.
_OVERFETCH = 3
TIME = _delivery.c.next_attempt_at.type  # UTCDateTime, for bind parameters

# The claim: due candidates from the delivery table alone, in next_attempt_at order (an
# index range scan however stale the planner's statistics), locked and skipped if
# another sender has them locked, then joined to what sending needs.
_due = (
    select(
        _delivery.c.id,
        _delivery.c.attempts,
        _delivery.c.endpoint_id,
        _delivery.c.message_id,
        _delivery.c.next_attempt_at,
    )
    .where(
        _delivery.c.next_attempt_at <= bindparam("now", type_=TIME),
        _delivery.c.status.in_((PENDING, SENDING)),
        _delivery.c.endpoint_id.not_in(bindparam("full", expanding=True)),
    )
    .order_by(_delivery.c.next_attempt_at)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
    .subquery()
)
# What a send needs of its endpoint and message, read at the claim and again by
# ``refresh_claim`` when the claim has waited.
_SENDING = (
    _endpoint.c.url,
    _endpoint.c.secret,
    _endpoint.c.previous_secret,
    _endpoint.c.previous_secret_expires_at,
    _endpoint.c.disabled_at,
    _message.c.body,
)
_CLAIM_CANDIDATES = (
    select(_due, *_SENDING)
    .join(_endpoint, _endpoint.c.id == _due.c.endpoint_id)
    .join(_message, _message.c.id == _due.c.message_id)
)
# next_attempt_at moves to the lease's end: if the sender dies, the row comes due again.
_CLAIM = (
    update(_delivery)
    .where(_delivery.c.id.in_(bindparam("ids", expanding=True)))
    .values(
        status=SENDING,
        lease_token=bindparam("token"),
        lease_expires_at=bindparam("lease_end", type_=TIME),
        next_attempt_at=bindparam("lease_end_", type_=TIME),
        attempts=_delivery.c.attempts + 1,
    )
)
# A claim given back unsent: due again at once, its attempt not counted; parked instead if
# its endpoint has been disabled since the claim (it would only be parked when next claimed).
_ENDPOINT_DISABLED_AT = (
    select(_endpoint.c.disabled_at)
    .where(_endpoint.c.id == _delivery.c.endpoint_id)
    .scalar_subquery()
)
_UNCLAIM = (
    update(_delivery)
    .where(_delivery.c.id == bindparam("b_id"), _delivery.c.lease_token == bindparam("b_token"))
    .values(
        status=PENDING,
        next_attempt_at=case(
            (_ENDPOINT_DISABLED_AT.is_(None), bindparam("b_now", type_=TIME)), else_=None
        ),
        attempts=_delivery.c.attempts - 1,
        lease_token=None,
        lease_expires_at=None,
    )
)


@dataclass(frozen=True)
class Job:
    """A claimed delivery and everything needed to send it without the database."""

    delivery_id: str
    lease_token: str
    lease_expires_at: datetime
    attempt: int  # this attempt's number, 1-based
    endpoint_id: str
    url: str
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None
    message_id: str
    body: bytes

    def secrets_at(self, now: datetime) -> list[str]:
        """The secrets that sign at ``now`` (the old one only within its grace period)."""
        return secrets_in_use(
            self.secret, self.previous_secret, self.previous_secret_expires_at, now
        )


def claim_due(
    conn: Connection,
    *,
    now: datetime,
    limit: int,
    lease: timedelta,
    busy: Mapping[str, int],
    per_endpoint: int,
) -> list[Job]:
    """Claim up to ``limit`` due deliveries of enabled endpoints and return them as jobs.

    A delivery is due when pending with ``next_attempt_at`` passed, or sending with its
    lease passed (its sender died). The candidates are locked with ``FOR UPDATE SKIP
    LOCKED`` on PostgreSQL, so concurrent senders claim disjoint sets (SQLite drops the
    clause; one sender runs there). They are chosen from the delivery table alone, in
    ``next_attempt_at`` order, so the plan stays an index range scan however stale the
    statistics. ``busy`` counts this sender's claims per endpoint: none gets more than
    ``per_endpoint`` at once, so one slow receiver cannot take every slot.
    """
    if limit <= 0:
        return []
    full = [endpoint_id for endpoint_id, count in busy.items() if count >= per_endpoint]
    found = conn.execute(
        _CLAIM_CANDIDATES, {"now": now, "full": full, "limit": limit * _OVERFETCH}
    )
    counts = dict(busy)
    rows: list[Any] = []
    parked: list[str] = []
    for row in sorted(found, key=lambda row: row.next_attempt_at):
        if row.disabled_at is not None:
            parked.append(row.id)  # disabled since it was queued
            continue
        if counts.get(row.endpoint_id, 0) >= per_endpoint or len(rows) == limit:
            continue
        counts[row.endpoint_id] = counts.get(row.endpoint_id, 0) + 1
        rows.append(row)
    if parked:
        park_deliveries(conn, _delivery.c.id.in_(parked), (PENDING, SENDING))
    if not rows:
        return []
    token = secrets.token_hex(16)
    lease_end = now + lease
    conn.execute(
        _CLAIM,
        {
            "ids": [row.id for row in rows],
            "token": token,
            "lease_end": lease_end,
            "lease_end_": lease_end,
        },
    )
    return [
        Job(
            delivery_id=row.id,
            lease_token=token,
            lease_expires_at=lease_end,
            attempt=row.attempts + 1,
            endpoint_id=row.endpoint_id,
            url=row.url,
            secret=row.secret,
            previous_secret=row.previous_secret,
            previous_secret_expires_at=row.previous_secret_expires_at,
            message_id=row.message_id,
            body=row.body.encode("utf-8"),
        )
        for row in rows
    ]


# What sending a claim depends on, as it stands now: whether the claim still holds, and
# the endpoint's address, secrets and state. No row once the endpoint (and with it the
# delivery) is deleted.
_CLAIM_NOW = (
    select(_delivery.c.lease_token, *_SENDING)
    .join_from(_delivery, _endpoint, _endpoint.c.id == _delivery.c.endpoint_id)
    .join(_message, _message.c.id == _delivery.c.message_id)
    .where(_delivery.c.id == bindparam("id"))
)


def refresh_claim(conn: Connection, job: Job) -> Job | None:
    """``job`` as it is to be sent now, or None when it is not to be sent at all.

    A job carries what its endpoint was when it was claimed; one that has waited since
    may be out of date. None when the delivery is gone (its endpoint was deleted), is
    no longer held with this job's token, or its endpoint is disabled: the caller gives
    the claim back (``return_claims``, which parks it if disabled, and does nothing where
    the claim no longer holds). A new URL, secret or body is taken up. One query.
    """
    row = conn.execute(_CLAIM_NOW, {"id": job.delivery_id}).first()
    if row is None or row.lease_token != job.lease_token or row.disabled_at is not None:
        return None
    body = row.body.encode("utf-8")
    current = (row.url, row.secret, row.previous_secret, row.previous_secret_expires_at, body)
    if current == (job.url, job.secret, job.previous_secret, job.previous_secret_expires_at,
                   job.body):
        return job
    return replace(
        job,
        url=row.url,
        secret=row.secret,
        previous_secret=row.previous_secret,
        previous_secret_expires_at=row.previous_secret_expires_at,
        body=body,  # rewritten meanwhile: a comment hidden since is sent as hidden
    )


def return_claims(conn: Connection, jobs: Sequence[Job], now: datetime) -> None:
    """Give back claims that were never sent (fenced like a result: only where held).

    Each is due again at ``now``, its attempt not counted, or parked if its endpoint has
    been disabled meanwhile.
    """
    if jobs:
        conn.execute(
            _UNCLAIM,
            [{"b_id": j.delivery_id, "b_token": j.lease_token, "b_now": now} for j in jobs],
        )


def park_deliveries(
    conn: Connection, where: Any, statuses: tuple[str, ...] = (PENDING,)
) -> None:
    """Take deliveries matching ``where`` out of the queue (their endpoint is disabled):
    pending with no ``next_attempt_at``, until ``unpark_deliveries``.

    Parked rows stay out of the claim query's index range, so a disabled endpoint's
    backlog never stands in front of other endpoints' work. Only pending rows by default:
    one being sent finishes first and is parked when it next comes due.
    """
    conn.execute(
        update(_delivery)
        .where(where, _delivery.c.status.in_(statuses))
        .values(status=PENDING, next_attempt_at=None, lease_token=None, lease_expires_at=None)
    )


def unpark_deliveries(conn: Connection, endpoint_id: str, now: datetime) -> None:
    """Queue a re-enabled endpoint's parked deliveries again, due at once."""
    conn.execute(
        update(_delivery)
        .where(
            _delivery.c.endpoint_id == endpoint_id,
            _delivery.c.status == PENDING,
            _delivery.c.next_attempt_at.is_(None),
        )
        .values(next_attempt_at=now)
    )
