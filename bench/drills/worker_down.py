"""Drill 4: the worker is down at ``comment_opens_at``; the period opens within 1 s of its
restart.

A review is scheduled (through the services) to open two seconds ahead while no worker
runs; ten endpoints subscribe to ``comment_period.opened``. Once the wall clock is three
seconds past the opening time and the review is confirmed still ``scheduled``, a
``daylight worker`` is started. Measured from the moment the process was spawned: when the
review's ``opened_at`` was written and when the webhooks arrived. The process's own start
(interpreter, imports, ``create_app``) is measured too, from spawn to the worker's first
line of output. Passes when the period opened within 1 s of the spawn and every endpoint
heard.

    python -m bench.drills.worker_down [--postgres [URL]] [--quick]
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta

from bench.common import (
    Database,
    Deployment,
    add_endpoints,
    machine_info,
    make_app,
    migrate,
    parser,
    query,
    sleep_until_wall,
    technology_body,
    workspace,
    write_result,
)
from bench.receiver import Receiver

GOAL_SECONDS = 1.0


def main() -> None:
    """Run the drill; print its verdict line last."""
    parse = parser(__doc__ or "")
    parse.add_argument("--endpoints", type=int, default=10)
    args = parse.parse_args()
    machine = machine_info()
    with workspace("drill_worker_down", args.keep) as folder, Receiver() as receiver:
        database = Database.fresh("drill_worker_down", folder, args.postgres)
        app = make_app(database.url)
        migrate(app)
        paths = [f"/endpoint/{i}" for i in range(args.endpoints)]
        add_endpoints(app, [receiver.url(p) for p in paths], ["comment_period.opened"])
        from registry.auth.models import Role
        from registry.auth.services import Principal
        from registry.database import transaction
        from registry.departments.services import add_department
        from registry.reviews.services import schedule_review
        from registry.technologies.services import create_technology, submit_technology

        admin = Principal(token_id="tok_bench", name="bench", role=Role.ADMIN,
                          department_id=None)
        opens = math.ceil(time.time() + 2)
        opens_at = datetime.fromtimestamp(opens, UTC)
        now = datetime.now(UTC)
        with app.app_context(), transaction(app) as session:
            add_department(session, slug="police", name="Police", now=now)
            technology = create_technology(session, admin, technology_body("Late worker"),
                                           now=now)
            submit_technology(session, admin, technology, now=now)
            review = schedule_review(session, admin, technology, {
                "comment_opens_at": opens_at, "comment_closes_at": opens_at + timedelta(days=60),
                "meetings": [{"starts_at": opens_at + timedelta(days=7), "place": "City Hall"}]},
                now=now)
            review_id = review.id
        sleep_until_wall(opens + 3)  # the worker stays down past the opening time
        [(status_before,)] = query(app, "SELECT status FROM review WHERE id = :r", r=review_id)
        deployment = Deployment(database, folder, shape="gunicorn", workers=1)
        with deployment:
            worker = deployment.start_worker()
            spawned = worker.started_at
            ready = time.time()  # start_worker returns once the worker said it started
            receiver.wait_for(args.endpoints, timeout=60)
            records = receiver.records()
        [(opened_at,)] = query(app, "SELECT opened_at FROM review WHERE id = :r", r=review_id)
        from registry.database import engine

        engine(app).dispose()
    if isinstance(opened_at, str):
        opened_at = datetime.fromisoformat(opened_at)
    if opened_at.tzinfo is None:
        opened_at = opened_at.replace(tzinfo=UTC)
    opened_after = opened_at.timestamp() - spawned
    arrivals = [t - spawned for t, _, _ in records]
    reached = len({p for _, p, _ in records})
    passed = (status_before == "scheduled" and opened_after <= GOAL_SECONDS
              and reached == args.endpoints)
    write_result("drill_worker_down", {
        "machine": machine,
        "parameters": {"endpoints": args.endpoints, "worker_down_past_opening_s": 3,
                       "backend": database.backend},
        "status_while_down": status_before,
        "opened_after_spawn_s": round(opened_after, 3),
        "last_arrival_after_spawn_s": round(max(arrivals), 3),
        "worker_ready_after_spawn_s": round(ready - spawned, 3),
        "opened_after_ready_s": round(opened_at.timestamp() - ready, 3),
        "endpoints_reached": reached,
        "goal": f"opened within {GOAL_SECONDS:g} s of the worker's restart (its spawn)",
        "pass": passed,
    })
    print(f"{'PASS' if passed else 'FAIL'} worker_down: {status_before} while down; opened "
          f"{opened_after:.3f} s after the worker was spawned (its start-up alone took about "
          f"{ready - spawned:.3f} s), last of {reached}/{args.endpoints} webhooks "
          f"{max(arrivals):.3f} s after spawn")


if __name__ == "__main__":
    main()
