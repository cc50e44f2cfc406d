"""fanout: one event to 1,000 endpoints, in deliveries per second.

Daylight: an event is committed to the log (as any service would append it); the running
worker follows the log, writes 1,000 deliveries and sends them. The rate is 1,000 over the
time from the commit to the last arrival at the receiver, so it includes noticing the event
and fanning it out, not only the HTTP.

The baseline, to the same receiver in the same run: a bare ``requests.Session`` loop on a
thread pool with the same concurrency as Daylight's senders (``DAYLIGHT_WEBHOOK_CONCURRENCY``
threads in each worker process: as many processes as Daylight has workers), timed from a
common start to the last arrival. Rounds of the two alternate, after one warm-up round.

    python -m bench.fanout [--postgres [URL]] [--quick] [--rounds N] [--endpoints N]

Goal: Daylight ≥ 0.8× the baseline.
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ThreadPoolExecutor
from threading import BrokenBarrierError
from typing import Any

import requests

from bench.common import (
    Database,
    Deployment,
    add_endpoints,
    machine_info,
    make_app,
    median,
    migrate,
    parser,
    ratio,
    utcnow,
    workspace,
    write_result,
)
from bench.receiver import Receiver

GOAL_RATIO = 0.8


def publish_event(app: Any, index: int) -> tuple[str, float]:
    """Append one ``comment_period.opened`` event and commit; returns its id and the wall
    time just after the commit."""
    from registry.database import transaction
    from registry.events.services import append_event

    review = f"rev_fanout_{index}"
    data: dict[str, Any] = {"review": {"id": review, "url": f"http://127.0.0.1:5000/technologies/t#{review}",
                       "status": "open", "comment_opens_at": utcnow().isoformat(),
                       "technology": {"id": "tech_fanout", "name": "Fan-out cameras",
                                      "department": {"slug": "police", "name": "Police"}},
                       "meetings": [], "override_reason": None}}
    with app.app_context(), transaction(app) as session:
        event = append_event(session, type="comment_period.opened", subject_type="review",
                             subject_id=review, data=data, now=utcnow())
        event_id = event.id
    return event_id, time.time()


def daylight_round(app: Any, receiver: Receiver, endpoints: int, index: int) -> dict[str, Any]:
    """One event through the real worker; the rate from commit to the last arrival."""
    before = receiver.count()
    event_id, committed = publish_event(app, index)
    receiver.wait_for(before + endpoints, timeout=300)
    records = [r for r in receiver.records(since=before) if r[2] == event_id]
    times = [t for t, _, _ in records]
    last, first = max(times), min(times)
    return {
        "deliveries": len(records),
        "distinct_endpoints": len({p for _, p, _ in records}),
        "seconds": round(last - committed, 4),
        "rate": round(len(records) / (last - committed), 1),
        "pickup_ms": round((first - committed) * 1000, 1),
        "rate_after_first_arrival": round(len(records) / (last - first), 1)
        if last > first else None,
    }


def _baseline_process(urls: list[str], threads: int, body: bytes, control: str,
                      ready: Any) -> None:
    http = requests.Session()
    http.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=threads))
    headers = {"content-type": "application/json", "webhook-id": "evt_baseline",
               "webhook-timestamp": str(int(time.time())),
               "webhook-signature": "v1," + "A" * 44}
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda _: http.get(control, timeout=10), range(threads)))  # warm up
        try:
            ready.wait(timeout=60)
        except BrokenBarrierError:
            return
        list(pool.map(lambda url: http.post(url, data=body, headers=headers, timeout=15),
                      urls))
    http.close()


def baseline_round(receiver: Receiver, urls: list[str], processes: int, threads: int,
                   body: bytes) -> dict[str, Any]:
    """Bare sessions in ``processes`` processes of ``threads`` threads, from one start."""
    context = multiprocessing.get_context("fork")
    ready = context.Barrier(processes + 1)
    shares = [urls[i::processes] for i in range(processes)]
    children = [context.Process(target=_baseline_process,
                                args=(share, threads, body, receiver.url("/_count"), ready))
                for share in shares]
    for child in children:
        child.start()
    before = receiver.count()
    ready.wait(timeout=60)
    started = time.time()
    receiver.wait_for(before + len(urls), timeout=300)
    for child in children:
        child.join(timeout=60)
    times = [t for t, _, _ in receiver.records(since=before)]
    return {"deliveries": len(times), "seconds": round(max(times) - started, 4),
            "rate": round(len(times) / (max(times) - started), 1)}


def main() -> None:
    """Run the figure and write bench/results/fanout.json."""
    parse = parser(__doc__ or "")
    parse.add_argument("--rounds", type=int, default=None)
    parse.add_argument("--endpoints", type=int, default=1000)
    args = parse.parse_args()
    rounds = args.rounds or (1 if args.quick else 3)
    machine = machine_info()
    from registry.config import DEFAULTS

    threads = int(DEFAULTS["WEBHOOK_CONCURRENCY"])
    with workspace("fanout", args.keep) as folder, Receiver() as receiver:
        database = Database.fresh("fanout", folder, args.postgres)
        app = make_app(database.url)
        migrate(app)
        add_endpoints(app, [receiver.url(f"/endpoint/{i}") for i in range(args.endpoints)],
                      ["comment_period.opened"])
        urls = [receiver.url(f"/endpoint/{i}") for i in range(args.endpoints)]
        deployment = Deployment(database, folder)
        processes = deployment.worker_count()
        with deployment:
            deployment.start()
            warm = daylight_round(app, receiver, args.endpoints, 0)
            from sqlalchemy import text

            from registry.database import engine

            with engine(app).connect() as conn:
                body = conn.execute(text("SELECT body FROM webhook_message LIMIT 1")
                                    ).scalar_one().encode()
            daylight: list[dict[str, Any]] = []
            baseline: list[dict[str, Any]] = []
            for index in range(1, rounds + 1):
                baseline.append(baseline_round(receiver, urls, processes, threads, body))
                daylight.append(daylight_round(app, receiver, args.endpoints, index))
            engine(app).dispose()
    rate = median([r["rate"] for r in daylight])
    base = median([r["rate"] for r in baseline])
    complete = all(r["distinct_endpoints"] == args.endpoints for r in daylight)
    write_result("fanout", {
        "machine": machine,
        "parameters": {"endpoints": args.endpoints, "rounds": rounds,
                       "threads_per_process": threads, "processes": processes,
                       "deployment": deployment.describe(), "quick": args.quick},
        "daylight": {"deliveries_per_second_median": rate, "rounds": daylight,
                     "warm_up_round": warm},
        "baseline": {"what": "bare requests.Session on a thread pool, same concurrency, same "
                             "receiver", "deliveries_per_second_median": base,
                     "rounds": baseline},
        "ratio": ratio(rate, base),
        "failures": sum(args.endpoints - r["distinct_endpoints"] for r in daylight),
        "goal": f">= {GOAL_RATIO}x the baseline's deliveries per second, every endpoint reached",
        "pass": bool(ratio(rate, base) >= GOAL_RATIO and complete),
    })


if __name__ == "__main__":
    main()
