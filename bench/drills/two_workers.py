"""Drill 3: two workers on PostgreSQL open each period once and send each webhook once.

Two ``daylight worker`` processes run against one PostgreSQL database. Ten reviews are
scheduled (through the services) to open at the same second; 20 endpoints subscribe to
``comment_period.opened``. Both workers hold a timer at that second and race. Once every
delivery row is finished and the webhook cursor has reached the head of the log, the drill
counts: exactly one ``comment_period.opened`` event per review, one delivery per (event,
endpoint), each ``succeeded`` at its first attempt, and exactly one request per (event,
endpoint) at the receiver.

    python -m bench.drills.two_workers [--postgres [URL]] [--quick]

PostgreSQL only (SQLite runs one worker): without ``--postgres`` it uses
postgresql+psycopg://postgres@127.0.0.1:5432.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from bench.common import (
    DEFAULT_POSTGRES,
    Database,
    Deployment,
    add_endpoints,
    machine_info,
    make_app,
    migrate,
    parser,
    query,
    technology_body,
    wait_until,
    workspace,
    write_result,
)
from bench.receiver import Receiver


def main() -> None:
    """Run the drill; print its verdict line last."""
    parse = parser(__doc__ or "")
    parse.add_argument("--reviews", type=int, default=None)
    parse.add_argument("--endpoints", type=int, default=None)
    args = parse.parse_args()
    reviews = args.reviews or (5 if args.quick else 10)
    endpoints = args.endpoints or (10 if args.quick else 20)
    machine = machine_info()
    began = time.monotonic()
    with workspace("drill_two_workers", args.keep) as folder, Receiver() as receiver:
        database = Database.fresh("drill_two_workers", folder, args.postgres or DEFAULT_POSTGRES)
        app = make_app(database.url)
        migrate(app)
        paths = [f"/endpoint/{i}" for i in range(endpoints)]
        add_endpoints(app, [receiver.url(p) for p in paths], ["comment_period.opened"])
        deployment = Deployment(database, folder, shape="gunicorn", workers=2)
        with deployment:
            deployment.start(web=False)
            from registry.auth.models import Role
            from registry.auth.services import Principal
            from registry.database import transaction
            from registry.departments.services import add_department
            from registry.reviews.services import schedule_review
            from registry.technologies.services import create_technology, submit_technology

            admin = Principal(token_id="tok_bench", name="bench", role=Role.ADMIN,
                              department_id=None)
            opens_at = datetime.fromtimestamp(math.ceil(time.time() + 3), UTC)
            now = datetime.now(UTC)
            review_ids = []
            with app.app_context(), transaction(app) as session:
                add_department(session, slug="police", name="Police", now=now)
                for index in range(reviews):
                    technology = create_technology(
                        session, admin, technology_body(f"Race {index}"), now=now)
                    submit_technology(session, admin, technology, now=now)
                    review = schedule_review(session, admin, technology, {
                        "comment_opens_at": opens_at,
                        "comment_closes_at": opens_at + timedelta(days=60),
                        "meetings": [{"starts_at": opens_at + timedelta(days=7),
                                      "place": "City Hall"}]}, now=now)
                    review_ids.append(review.id)
            expected = reviews * endpoints
            receiver.wait_for(expected, timeout=60)

            def settled() -> bool:
                [(unfinished,)] = query(app, "SELECT count(*) FROM webhook_delivery WHERE "
                                             "status NOT IN ('succeeded', 'failed')")
                [(head,)] = query(app, "SELECT last_seq FROM event_log_head")
                [(cursor,)] = query(app, "SELECT seq FROM event_log_cursor")
                [(opened,)] = query(app, "SELECT count(*) FROM review WHERE status = 'open'")
                return bool(unfinished == 0 and head == cursor and opened == reviews)

            wait_until(settled, timeout=60, what="deliveries finished, cursor at the head",
                       interval=0.2)
            alive = [p.alive() for p in deployment.procs]
            records = receiver.records()
        opened_events = Counter(
            row[0] for row in query(app, "SELECT subject_id FROM event WHERE type = "
                                         "'comment_period.opened'"))
        deliveries = query(app, "SELECT d.message_id, d.endpoint_id, d.status, d.attempts "
                                "FROM webhook_delivery d")
        [(attempt_rows,)] = query(app, "SELECT count(*) FROM webhook_attempt")
        from registry.database import engine

        engine(app).dispose()
    per_pair = Counter((i, p) for _, p, i in records)
    one_event_each = sorted(opened_events) == sorted(review_ids) and all(
        n == 1 for n in opened_events.values())
    one_send_each = (len(deliveries) == expected and attempt_rows == expected
                     and all(d[2] == "succeeded" and d[3] == 1 for d in deliveries)
                     and len(records) == expected and len(per_pair) == expected)
    passed = one_event_each and one_send_each and all(alive)
    write_result("drill_two_workers", {
        "machine": machine,
        "parameters": {"reviews": reviews, "endpoints": endpoints, "workers": 2,
                       "backend": database.backend, "quick": args.quick},
        "opened_events_per_review": dict(Counter(opened_events.values())),
        "delivery_rows": len(deliveries), "attempt_rows": attempt_rows,
        "requests_received": len(records), "distinct_pairs": len(per_pair),
        "workers_alive_at_end": alive, "seconds": round(time.monotonic() - began, 1),
        "pass": passed,
    })
    print(f"{'PASS' if passed else 'FAIL'} two_workers: {len(opened_events)} reviews opened "
          f"with {sum(opened_events.values())} opened events; {len(deliveries)} deliveries, "
          f"{attempt_rows} attempts, {len(records)} requests for {expected} (event, endpoint) "
          f"pairs; workers alive {alive}")


if __name__ == "__main__":
    main()
