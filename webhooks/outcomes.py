"""Outcomes: recording what came of each send, where the claim still holds (fencing),
and what it means for the delivery (done, retried later, failed) and its endpoint's
failure clock."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    Connection,
    Integer,
    String,
    Text,
    bindparam,
    case,
    insert,
    or_,
    select,
    text,
    update,
)

from webhooks.claims import TIME, Job, park_deliveries
from webhooks.models import (
    FAILED,
    PENDING,
    SUCCEEDED,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    table_of,
)
from webhooks.schedule import DISABLE_AFTER, QUIET_SPELL, parse_retry_after, retry_delay
from webhooks.transport import Outcome

_delivery = table_of(WebhookDelivery)
_endpoint = table_of(WebhookEndpoint)
_attempt = table_of(WebhookAttempt)

# Only where the claim's token is still there (fencing).
_FINISH = (
    update(_delivery)
    .where(_delivery.c.id == bindparam("b_id"), _delivery.c.lease_token == bindparam("b_token"))
    .values(
        status=bindparam("b_status"),
        next_attempt_at=bindparam("b_next", type_=TIME),
        completed_at=bindparam("b_completed", type_=TIME),
        last_status_code=bindparam("b_code"),
        last_error=bindparam("b_error"),
        lease_token=None,
        lease_expires_at=None,
    )
)
# PostgreSQL: the same as one statement over arrays, one round trip whatever the batch.
_FINISH_PG = text(
    "UPDATE webhook_delivery AS d SET status = v.status, next_attempt_at = v.next_at,"
    " completed_at = v.completed_at, last_status_code = v.code, last_error = v.error,"
    " lease_token = NULL, lease_expires_at = NULL"
    " FROM unnest(:ids, :tokens, :statuses, :next_ats, :completed_ats, :codes, :errors)"
    " AS v(id, token, status, next_at, completed_at, code, error)"
    " WHERE d.id = v.id AND d.lease_token = v.token"
).bindparams(
    bindparam("ids", type_=ARRAY(String)),
    bindparam("tokens", type_=ARRAY(String)),
    bindparam("statuses", type_=ARRAY(String)),
    bindparam("next_ats", type_=ARRAY(TIME)),
    bindparam("completed_ats", type_=ARRAY(TIME)),
    bindparam("codes", type_=ARRAY(Integer)),
    bindparam("errors", type_=ARRAY(Text)),
)
_ATTEMPT_COUNTS = select(_delivery.c.id, _delivery.c.attempts).where(
    _delivery.c.id.in_(bindparam("ids", expanding=True))
)
_RECORDED = select(_attempt.c.delivery_id, _attempt.c.number).where(
    _attempt.c.delivery_id.in_(bindparam("ids", expanding=True))
)
# RETURNING makes SQLAlchemy send the rows as one multi-row INSERT ("insertmanyvalues")
# rather than one statement per row.
_RECORD_ATTEMPTS = insert(_attempt).returning(_attempt.c.id)
_CLEAR_FAILING = (
    update(_endpoint)
    .where(
        _endpoint.c.id.in_(bindparam("ids", expanding=True)),
        _endpoint.c.failing_since.is_not(None),
    )
    .values(failing_since=None)
)



@dataclass(frozen=True)
class Result:
    """One attempt at a job, ready to record."""

    job: Job
    started_at: datetime
    webhook_timestamp: int
    outcome: Outcome


def record_results(
    conn: Connection,
    results: Sequence[Result],
    *,
    now: datetime,
    random: Callable[[], float],
) -> list[Result]:
    """Record attempts and move their deliveries on: succeeded, failed, or pending until
    the next retry. Returns the results that were fenced out and so not recorded. A result
    recorded already is left as it is (recording is idempotent).

    A result counts only while its delivery still carries the lease token it was claimed
    with: a sender that outlived its lease has had the row claimed again by another, and
    its late answer must not overwrite that one's.
    """
    if not results:
        return []
    updates: list[dict[str, Any]] = []
    for r in results:
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
    if conn.dialect.name == "postgresql":
        columns = ("b_id", "b_token", "b_status", "b_next", "b_completed", "b_code", "b_error")
        names = ("ids", "tokens", "statuses", "next_ats", "completed_ats", "codes", "errors")
        arrays = {name: [u[key] for u in updates] for name, key in zip(names, columns, strict=True)}
        finished = conn.execute(_FINISH_PG, arrays).rowcount
    else:
        finished = conn.execute(_FINISH, updates).rowcount
    held, fenced = list(results), []
    if finished != len(results):
        # Some claims were taken over. Every claim counts an attempt, so a delivery whose
        # count has moved past this result's attempt was claimed again since.
        ids = [r.job.delivery_id for r in results]
        counts = {row.id: row.attempts for row in conn.execute(_ATTEMPT_COUNTS, {"ids": ids})}
        # A result recorded already: the sender's pass committed it, but the answer to its
        # COMMIT was lost, so the sender records it again. Nothing more to do for it.
        recorded = {(row.delivery_id, row.number) for row in conn.execute(_RECORDED, {"ids": ids})}
        results = [r for r in results if (r.job.delivery_id, r.job.attempt) not in recorded]
        held = [r for r in results if counts.get(r.job.delivery_id) == r.job.attempt]
        fenced = [r for r in results if counts.get(r.job.delivery_id) != r.job.attempt]
    if not held:
        return fenced
    conn.execute(
        _RECORD_ATTEMPTS,
        [
            {
                "delivery_id": r.job.delivery_id,
                "number": r.job.attempt,
                "started_at": r.started_at,
                "duration_ms": r.outcome.duration_ms,
                "webhook_timestamp": r.webhook_timestamp,
                "status_code": r.outcome.status_code,
                "error_kind": r.outcome.error_kind,
                "error_detail": r.outcome.error_detail,
                "response_body": r.outcome.response_body,
            }
            for r in held
        ],
    )
    _update_endpoint_health(conn, held, now)
    return fenced


def _update_endpoint_health(conn: Connection, held: Sequence[Result], now: datetime) -> None:
    """Start, clear or act on each endpoint's failure clock.

    Any success clears it. An endpoint with only failures in this batch starts the clock
    if it is not running, or afresh when its last failure is more than ``QUIET_SPELL``
    (two days) old: nothing was sent to it meanwhile, so it was unused rather than
    failing. Failures closer together run the clock on, however sparse the events, and
    the endpoint is disabled once it has run for DISABLE_AFTER.
    """
    succeeded = {r.job.endpoint_id for r in held if r.outcome.succeeded}
    failing = {r.job.endpoint_id for r in held if not r.outcome.succeeded} - succeeded
    if succeeded:
        conn.execute(_CLEAR_FAILING, {"ids": sorted(succeeded)})
    if failing:
        ids = sorted(failing)
        # (SET reads the row as it was, so the quiet spell is measured to the failure before.)
        restart = or_(_endpoint.c.failing_since.is_(None),
                      _endpoint.c.last_failed_at < now - QUIET_SPELL)
        conn.execute(
            update(_endpoint)
            .where(_endpoint.c.id.in_(ids))
            .values(failing_since=case((restart, now), else_=_endpoint.c.failing_since),
                    last_failed_at=now)
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
