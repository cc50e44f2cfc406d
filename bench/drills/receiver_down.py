"""Drill 2: a receiver down for 24 hours (simulated), then every delivery through.

The delivery engine runs in this process on a fake clock, against the real database and a
real receiver process. The receiver is down (its port closed: connection refused) while the
clock jumps from one due retry to the next across 24 hours; then it comes back on the same
port and the clock keeps jumping to each next retry until nothing is left. Passes when every
(event, endpoint) has arrived, every delivery row is ``succeeded``, no endpoint was
disabled, and the attempts made while down follow the retry schedule.

    python -m bench.drills.receiver_down [--postgres [URL]] [--quick]
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import (
    Database,
    free_port,
    machine_info,
    make_app,
    migrate,
    parser,
    query,
    workspace,
    write_result,
)
from bench.receiver import Receiver

DOWN_FOR = timedelta(hours=24)


def next_due(app: Any) -> datetime | None:
    """The earliest time a delivery is due again, if any is unfinished."""
    [(value,)] = query(app, "SELECT min(next_attempt_at) FROM webhook_delivery WHERE status "
                            "IN ('pending', 'sending')")
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    moment: datetime = value if value.tzinfo else value.replace(tzinfo=UTC)
    return moment


def main() -> None:
    """Run the drill; print its verdict line last."""
    parse = parser(__doc__ or "")
    parse.add_argument("--events", type=int, default=None)
    parse.add_argument("--endpoints", type=int, default=None)
    args = parse.parse_args()
    events = args.events or (5 if args.quick else 20)
    endpoints = args.endpoints or (5 if args.quick else 20)
    machine = machine_info()
    from registry.clock import FakeClock

    began = time.monotonic()
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    start = clock.now()
    port = free_port()
    receiver = Receiver(port=port)
    timeline: list[dict[str, Any]] = []
    with workspace("drill_receiver_down", args.keep) as folder:
        database = Database.fresh("drill_receiver_down", folder, args.postgres)
        app = make_app(database.url, CLOCK=clock)
        migrate(app)
        from registry.database import engine, session_factory, transaction
        from webhooks import DeliveryEngine, create_endpoint, enqueue_event
        from webhooks.ids import new_id

        with app.app_context(), transaction(app) as session:
            for index in range(endpoints):
                create_endpoint(session, url=f"http://127.0.0.1:{port}/endpoint/{index}",
                                now=clock.now(), allow_private=True)
        event_ids = []
        with app.app_context(), transaction(app) as session:
            for index in range(events):
                event_id = new_id("evt")
                enqueue_event(session, event_id=event_id, type="comment_period.opened",
                              timestamp=clock.now(), data={"review": {"id": f"rev_{index}"}},
                              now=clock.now())
                event_ids.append(event_id)
        sender = DeliveryEngine(session_factory(app), clock.now, allow_private=True,
                                timeout=5.0)
        received: list[tuple[float, str, str]] = []
        try:
            # Down: try everything due, then jump to the next retry, for 24 hours.
            while True:
                claimed = sender.run_until_idle(timeout=120)
                due = next_due(app)
                timeline.append({"at": str(clock.now() - start), "claimed": claimed,
                                 "receiver": "down"})
                if due is None or due >= start + DOWN_FOR:
                    break
                clock.set(max(due, clock.now()))
            clock.set(start + DOWN_FOR)
            receiver.start()
            for _ in range(10 * events * endpoints + 100):  # bounded: 8 attempts at most
                claimed = sender.run_until_idle(timeout=120)
                timeline.append({"at": str(clock.now() - start), "claimed": claimed,
                                 "receiver": "up"})
                due = next_due(app)
                if due is None:
                    break
                clock.set(max(due, clock.now()))
            by_status = dict(query(
                app, "SELECT status, count(*) FROM webhook_delivery GROUP BY status"))
            attempts = Counter(int(n) for (n,) in query(
                app, "SELECT attempts FROM webhook_delivery"))
            [(disabled,)] = query(app, "SELECT count(*) FROM webhook_endpoint WHERE "
                                       "disabled_at IS NOT NULL")
            last_attempts = [row[0] for row in query(
                app, "SELECT max(a.started_at) FROM webhook_attempt a JOIN webhook_delivery d "
                     "ON d.id = a.delivery_id WHERE d.status = 'failed' GROUP BY d.id")]
            [(failed_attempts_while_down,)] = query(
                app, "SELECT count(*) FROM webhook_attempt WHERE error_kind IS NOT NULL")
            received = receiver.records()
        finally:
            sender.shutdown(wait=True, timeout=30)
            receiver.stop()
            engine(app).dispose()
    expected = {(e, f"/endpoint/{i}") for e in event_ids for i in range(endpoints)}
    got = {(i, p) for _, p, i in received}
    missing = expected - got
    passed = (not missing and by_status.get("succeeded", 0) == len(expected)
              and disabled == 0)
    recovered_at = timeline[-2]["at"] if len(timeline) >= 2 else None
    write_result("drill_receiver_down", {
        "machine": machine,
        "parameters": {"events": events, "endpoints": endpoints, "down_for": str(DOWN_FOR),
                       "backend": database.backend, "quick": args.quick},
        "passes": len(timeline),
        "timeline_first_and_last": timeline[:10] + timeline[-10:],
        "failed_deliveries_last_attempt_after": sorted(
            str((v if isinstance(v, datetime) else datetime.fromisoformat(str(v))).replace(
                tzinfo=UTC) - start) for v in last_attempts),
        "deliveries": len(expected), "received_distinct": len(got & expected),
        "missing": len(missing), "delivery_rows_by_status": by_status,
        "attempts_per_delivery": dict(sorted(attempts.items())),
        "failed_attempts_while_down": failed_attempts_while_down,
        "endpoints_disabled": disabled, "simulated_time_of_last_pass": recovered_at,
        "seconds": round(time.monotonic() - began, 1),
        "pass": passed,
    })
    print(f"{'PASS' if passed else 'FAIL'} receiver_down: {len(got & expected)}/{len(expected)}"
          f" delivered after {DOWN_FOR} down, rows {by_status} ({len(last_attempts)} used "
          f"every attempt before the receiver came back), attempts per delivery "
          f"{dict(sorted(attempts.items()))}, {failed_attempts_while_down} failed attempts "
          f"while down, {disabled} endpoints disabled")


if __name__ == "__main__":
    main()
