"""The sender's two statements of work: claim due deliveries under a lease, and record what
came of sending them, only where the claim still holds (fencing).

Both work in batches with a handful of Core statements, whatever the batch size, built
once at import, because the database work (not the HTTP) is what would slow a large
fan-out down.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

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
from webhooks.schedule import DISABLE_AFTER, parse_retry_after, retry_delay
from webhooks.signing import secrets_in_use
from webhooks.transport import Outcome

_delivery = table_of(WebhookDelivery)
_endpoint = table_of(WebhookEndpoint)
_message = table_of(WebhookMessage)
_attempt = table_of(WebhookAttempt)

# Rows read per free slot, so that a batch can skip endpoints already at their limit.
_OVERFETCH = 3
_TIME = _delivery.c.next_attempt_at.type  # UTCDateTime, for bind parameters

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
        _delivery.c.next_attempt_at <= bindparam("now", type_=_TIME),
        _delivery.c.status.in_((PENDING, SENDING)),
        _delivery.c.endpoint_id.not_in(bindparam("full", expanding=True)),
    )
    .order_by(_delivery.c.next_attempt_at)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
    .subquery()
)
_CLAIM_CANDIDATES = (
    select(
        _due,
        _endpoint.c.url,
        _endpoint.c.secret,
        _endpoint.c.previous_secret,
        _endpoint.c.previous_secret_expires_at,
        _endpoint.c.disabled_at,
        _message.c.body,
    )
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
        lease_expires_at=bindparam("lease_end", type_=_TIME),
        next_attempt_at=bindparam("lease_end_", type_=_TIME),
        attempts=_delivery.c.attempts + 1,
    )
)
_LEASE_TOKENS = (
    select(_delivery.c.id, _delivery.c.lease_token)
    .where(_delivery.c.id.in_(bindparam("ids", expanding=True)))
    .with_for_update()
)
# Only where the claim's token is still there (fencing).
_FINISH = (
    update(_delivery)
    .where(_delivery.c.id == bindparam("b_id"), _delivery.c.lease_token == bindparam("b_token"))
    .values(
        status=bindparam("b_status"),
        next_attempt_at=bindparam("b_next", type_=_TIME),
        completed_at=bindparam("b_completed", type_=_TIME),
        last_status_code=bindparam("b_code"),
        last_error=bindparam("b_error"),
        lease_token=None,
        lease_expires_at=None,
    )
)
_RECORD_ATTEMPTS = insert(_attempt)
_CLEAR_FAILING = (
    update(_endpoint)
    .where(
        _endpoint.c.id.in_(bindparam("ids", expanding=True)),
        _endpoint.c.failing_since.is_not(None),
    )
    .values(failing_since=None)
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


@dataclass(frozen=True)
class Result:
    """One attempt at a job, ready to record."""

    job: Job
    started_at: datetime
    webhook_timestamp: int
    outcome: Outcome


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


def record_results(
    conn: Connection,
    results: Sequence[Result],
    *,
    now: datetime,
    random: Callable[[], float],
) -> list[Result]:
    """Record attempts and move their deliveries on: succeeded, failed, or pending until
    the next retry. Returns the results that were fenced out and so not recorded.

    A result counts only while its delivery still carries the lease token it was claimed
    with: a sender that outlived its lease has had the row claimed again by another, and
    its late answer must not overwrite that one's.
    """
    if not results:
        return []
    ids = [r.job.delivery_id for r in results]
    tokens: dict[str, str | None] = {
        row.id: row.lease_token for row in conn.execute(_LEASE_TOKENS, {"ids": ids})
    }
    held = [r for r in results if tokens.get(r.job.delivery_id) == r.job.lease_token]
    fenced = [r for r in results if tokens.get(r.job.delivery_id) != r.job.lease_token]
    if not held:
        return fenced

    updates: list[dict[str, Any]] = []
    attempts: list[dict[str, Any]] = []
    for r in held:
        outcome = r.outcome
        next_at: datetime | None
        completed: datetime | None
        if outcome.succeeded:
            status, next_at, completed = SUCCEEDED, None, now
        else:
            wait = retry_delay(r.job.attempt, random, parse_retry_after(outcome.retry_after, now))
            status, next_at, completed = (
                (PENDING, now + wait, None) if wait is not None else (FAILED, None, now)
            )
        updates.append(
            {
                "b_id": r.job.delivery_id,
                "b_token": r.job.lease_token,
                "b_status": status,
                "b_next": next_at,
                "b_completed": completed,
                "b_code": outcome.status_code,
                "b_error": _error_text(outcome),
            }
        )
        attempts.append(
            {
                "delivery_id": r.job.delivery_id,
                "number": r.job.attempt,
                "started_at": r.started_at,
                "duration_ms": outcome.duration_ms,
                "webhook_timestamp": r.webhook_timestamp,
                "status_code": outcome.status_code,
                "error_kind": outcome.error_kind,
                "error_detail": outcome.error_detail,
                "response_body": outcome.response_body,
            }
        )
    conn.execute(_FINISH, updates)
    conn.execute(_RECORD_ATTEMPTS, attempts)
    _update_endpoint_health(conn, held, now)
    return fenced


def _update_endpoint_health(conn: Connection, held: Sequence[Result], now: datetime) -> None:
    """Start, clear or act on each endpoint's failure clock.

    Any success clears it. An endpoint with only failures in this batch starts the clock
    if it is not running, and is disabled once it has run for DISABLE_AFTER.
    """
    succeeded = {r.job.endpoint_id for r in held if r.outcome.succeeded}
    failing = {r.job.endpoint_id for r in held if not r.outcome.succeeded} - succeeded
    if succeeded:
        conn.execute(_CLEAR_FAILING, {"ids": sorted(succeeded)})
    if failing:
        ids = sorted(failing)
        conn.execute(
            update(_endpoint)
            .where(_endpoint.c.id.in_(ids), _endpoint.c.failing_since.is_(None))
            .values(failing_since=now)
        )
        disabled = conn.execute(
            update(_endpoint)
            .where(
                _endpoint.c.id.in_(ids),
                _endpoint.c.disabled_at.is_(None),
                _endpoint.c.failing_since <= now - DISABLE_AFTER,
            )
            .values(
                disabled_at=now,
                updated_at=now,
                disabled_reason=(
                    f"disabled automatically: every delivery failed for "
                    f"{DISABLE_AFTER.days} days"
                ),
            )
            .returning(_endpoint.c.id)
        ).scalars().all()
        if disabled:
            park_deliveries(conn, _delivery.c.endpoint_id.in_(disabled))


def _error_text(outcome: Outcome) -> str | None:
    if outcome.error_kind is None:
        return None
    if outcome.error_detail:
        return f"{outcome.error_kind}: {outcome.error_detail}"
    return outcome.error_kind
