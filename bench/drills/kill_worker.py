"""Drill 1: kill -9 the worker again and again during a 10,000-delivery fan-out.

100 events are appended to the log for 100 endpoints on the local receiver; a
``daylight worker`` fans them out and sends, and is killed with SIGKILL at random moments
and restarted at once, several times. Claims held by a killed worker come due again when
their lease (60 s) ends. Passes when every (event, endpoint) arrived at least once, every
arrival carries the webhook-id of an event sent to that endpoint (so any duplicate is a
redelivery under the same webhook-id), and every delivery row ends ``succeeded``.

    python -m bench.drills.kill_worker [--postgres [URL]] [--quick] [--kills N]
"""

from __future__ import annotations

import random
import time
from collections import Counter
from typing import Any

from sqlalchemy import text

from bench.common import (
    Database,
    Deployment,
    add_endpoints,
    machine_info,
    make_app,
    migrate,
    parser,
    wait_until,
    workspace,
    write_result,
)
from bench.fanout import publish_event
from bench.receiver import Receiver


def main() -> None:
    """Run the drill; print its verdict line last."""
    parse = parser(__doc__ or "")
    parse.add_argument("--events", type=int, default=None)
    parse.add_argument("--endpoints", type=int, default=None)
    parse.add_argument("--kills", type=int, default=None)
    args = parse.parse_args()
    events = args.events or (20 if args.quick else 100)
    endpoints = args.endpoints or (50 if args.quick else 100)
    kills_wanted = args.kills or (2 if args.quick else 6)
    machine = machine_info()
    rng = random.Random(7)
    kills: list[dict[str, Any]] = []
    with workspace("drill_kill_worker", args.keep) as folder, Receiver() as receiver:
        database = Database.fresh("drill_kill_worker", folder, args.postgres)
        app = make_app(database.url)
        migrate(app)
        paths = [f"/endpoint/{i}" for i in range(endpoints)]
        add_endpoints(app, [receiver.url(p) for p in paths], ["comment_period.opened"])
        event_ids = [publish_event(app, i)[0] for i in range(events)]
        expected = {(e, p) for e in event_ids for p in paths}
        deployment = Deployment(database, folder, shape="gunicorn", workers=1)
        began = time.monotonic()
        with deployment:
            deployment.start(web=False)
            while len(kills) < kills_wanted:
                victim = next(p for p in reversed(deployment.procs) if p.alive())
                pause = rng.uniform(0.3, 1.5)
                time.sleep(pause)  # a random moment, by design: not a wait for a condition
                arrived = receiver.count()
                victim.kill()
                kills.append({"after_seconds": round(time.monotonic() - began, 2),
                              "arrivals_so_far": arrived})
                deployment.start_worker()
            total = len(expected)
            distinct: set[tuple[str, str]] = set()

            def all_arrived() -> bool:
                distinct.update((i, p) for _, p, i in receiver.records(since=0))
                return expected <= distinct

            try:
                wait_until(all_arrived, timeout=300, what=f"{total} distinct deliveries",
                           interval=1.0)
            except TimeoutError:
                pass

            def settled() -> bool:
                with app.app_context():
                    from registry.database import engine

                    with engine(app).connect() as conn:
                        open_rows = conn.execute(text(
                            "SELECT count(*) FROM webhook_delivery WHERE status NOT IN "
                            "('succeeded', 'failed')")).scalar_one()
                return int(open_rows) == 0

            try:
                wait_until(settled, timeout=120, what="every delivery row to finish",
                           interval=0.5)
            except TimeoutError:
                pass
            records = receiver.records(since=0)
        from registry.database import engine

        with engine(app).connect() as conn:
            by_status: dict[str, int] = dict(conn.execute(text(
                "SELECT status, count(*) FROM webhook_delivery GROUP BY status")).all())
            attempts = conn.execute(text("SELECT count(*) FROM webhook_attempt")).scalar_one()
        engine(app).dispose()
    got = Counter((i, p) for _, p, i in records)
    missing = expected - set(got)
    unexpected = set(got) - expected
    duplicates = sum(n - 1 for n in got.values() if n > 1)
    passed = (not missing and not unexpected and by_status.get("succeeded", 0) == len(expected)
              and len(kills) == kills_wanted)
    result = write_result("drill_kill_worker", {
        "machine": machine,
        "parameters": {"events": events, "endpoints": endpoints, "kills": kills_wanted,
                       "backend": database.backend, "quick": args.quick},
        "kills": kills,
        "expected_pairs": len(expected), "received_requests": len(records),
        "distinct_pairs_received": len(got), "missing": len(missing),
        "unexpected_webhook_ids": len(unexpected), "duplicates_same_webhook_id": duplicates,
        "delivery_rows_by_status": by_status, "attempt_rows": attempts,
        "seconds": round(time.monotonic() - began, 1),
        "pass": passed,
    })
    print(f"{'PASS' if passed else 'FAIL'} kill_worker: {result['distinct_pairs_received']}/"
          f"{len(expected)} (event, endpoint) pairs delivered, {len(missing)} missing, "
          f"{duplicates} duplicates (same webhook-id), {len(unexpected)} foreign ids, "
          f"{len(kills)} kill -9, rows {by_status}")


if __name__ == "__main__":
    main()
