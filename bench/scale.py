"""scale: do the list endpoints stay as fast at 1M comments as at 10k?

Two registries are seeded with SQLAlchemy Core bulk inserts (far faster than the API): a
small one (100 technologies, 10,000 comments) and a large one (10,000 technologies and
1,000,000 comments by default; ``--comments N``, ``--technologies N``). Nearly every comment
is on one open review (a surge on one hot topic), and every comment has its
``comment.published`` event, so the event log grows with it. Both are served at once, each
by gunicorn with the Procfile's settings (and its workers, idle: the webhook cursor starts
at the head of the log); requests alternate between the two from one keep-alive client
each, after a warm-up, and the figure is the median latency, large over small.

    python -m bench.scale [--postgres [URL]] [--quick] [--comments N] [--technologies N]
        [--requests N]

Goal: every list endpoint's latency large/small ≤ 1.5× (the API's lists and the Atom feed
of the hot technology). Measured too, for information: the comment summary's first count,
the hot technology's page (neither is a list), the hot review's CSV export once (its
time, and the web processes' peak memory before and after it), and last the summary while
comments arrive: after each of ``NEWS_ROUNDS`` batches of ``NEWS`` comments posted to the
hot review, one read of its summary, timed, and whether it counted them all.
"""

from __future__ import annotations

import hashlib
import http.client
import itertools
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import make_url

from bench.common import (
    Database,
    Deployment,
    machine_info,
    make_app,
    median,
    migrate,
    parser,
    percentile,
    ratio,
    seed_basics,
    session_peak_rss_mb,
    workspace,
    write_result,
)

GOAL_RATIO = 1.5
CHUNK = 20_000
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_TRACKING = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
FORM_LETTERS = [f"Form letter {n}: stop the cameras, protect our privacy." for n in range(10)]
NEIGHBORHOODS = ["Eastside", "Downtown", "Riverside", "Hillcrest", "Northgate", None]


def sortable_ids(prefix: str, start: datetime, count: int, per_ms: int = 10) -> Iterator[str]:
    """``count`` ids in the app's ULID layout, increasing (``per_ms`` to a millisecond)."""
    base = int(start.timestamp() * 1000)
    for index in range(count):
        value = ((base + index // per_ms) << 80) | (index % per_ms) << 40 | 0x5EED
        chars = []
        for _ in range(26):
            value, digit = divmod(value, 32)
            chars.append(_ALPHABET[digit])
        yield f"{prefix}_{''.join(reversed(chars))}"


def tracking_number(index: int) -> str:
    """A unique receipt number for the ``index``-th seeded comment."""
    chars = []
    for _ in range(8):
        index, digit = divmod(index, 32)
        chars.append(_TRACKING[digit])
    return f"DL-{''.join(chars[:4])}-{''.join(chars[4:])}"


def _insert(conn: Any, table: Any, rows: Iterator[dict[str, Any]]) -> int:
    total = 0
    while True:
        chunk = list(itertools.islice(rows, CHUNK))
        if not chunk:
            return total
        conn.execute(table.insert(), chunk)
        total += len(chunk)


def seed_registry(app: Any, *, technologies: int, comments: int) -> dict[str, Any]:
    """Bulk-load technologies, reviews, comments (with contacts) and their events; returns
    what the measurements need (the hot review, ids for cursors, the last seq)."""
    from sqlalchemy import update

    from registry.comments.models import Comment, CommenterContact
    from registry.database import engine, transaction
    from registry.departments.models import Department
    from registry.events.models import Event, LogCursor, LogHead
    from registry.reviews.models import Review
    from registry.technologies.models import Technology
    from webhooks.models import table_of

    with app.app_context(), transaction(app) as session:
        from sqlalchemy import select
        from sqlmodel import col

        department_id = session.execute(select(col(Department.id))).scalar_one()
        head = session.get(LogHead, 1)
        first_seq = (head.last_seq if head else 0) + 1
    start = datetime(2025, 1, 1, tzinfo=UTC)
    tech_ids = list(sortable_ids("tech", start, technologies))
    statuses = ["submitted"] * 6 + ["in_review", "approved", "rejected", "withdrawn"]
    tiers = ["low", "medium", "high"]
    reviewed = tech_ids[:: 10]  # every tenth technology has a review
    review_ids = list(sortable_ids("rev", start + timedelta(days=1), len(reviewed)))
    hot_review, hot_tech = review_ids[0], reviewed[0]
    seq = itertools.count(first_seq)
    events: list[dict[str, Any]] = []

    def technology_rows() -> Iterator[dict[str, Any]]:
        for index, tech_id in enumerate(tech_ids):
            status = "in_review" if tech_id in reviewed_set else statuses[index % len(statuses)]
            moment = start + timedelta(minutes=index)
            events.append(_event(next(seq), "technology.submitted", "technology", tech_id,
                                 tech_id, moment, {"technology": {"id": tech_id}}))
            yield {
                "id": tech_id, "department_id": department_id,
                "name": f"Camera network {index}", "status": status,
                "vendor": "Example Vision Inc.",
                "description": f"Fixed cameras ({index}) that read passing licence plates.",
                "purpose": "Find vehicles on a stolen-vehicle list.",
                "access_controls": "", "equity_impact": "", "community_engagement": "",
                "mitigations": "", "authorized_uses": "", "prohibited_uses": "",
                "alternatives_considered": "", "funding_source": "",
                "data_collected": ["licence_plates", "vehicle_location"],
                "capabilities": ["licence_plate_recognition"], "data_sharing": [],
                "deployment_areas": ["Downtown"], "documents": [], "retention_days": 30,
                "annual_cost": 1000 + index, "in_use": index % 2 == 0,
                "risk_tier": tiers[index % 3], "created_by": None, "created_at": moment,
                "updated_at": moment, "submitted_at": moment, "decided_at": None,
                "next_review_due": None,
            }

    reviewed_set = set(reviewed)
    now = datetime.now(UTC)

    def review_rows() -> Iterator[dict[str, Any]]:
        for review_id, tech_id in zip(review_ids, reviewed, strict=True):
            opens = now - timedelta(days=5)
            events.append(_event(next(seq), "review.scheduled", "review", review_id, tech_id,
                                 opens, {"review": {"id": review_id}}))
            events.append(_event(next(seq), "comment_period.opened", "review", review_id,
                                 tech_id, opens, {"review": {"id": review_id}}))
            yield {
                "id": review_id, "technology_id": tech_id, "status": "open",
                "comment_opens_at": opens, "comment_closes_at": now + timedelta(days=55),
                "meetings": [], "extensions": [], "override_reason": None,
                "assessment_id": None, "opened_at": opens, "closing_soon_sent_at": None,
                "closed_at": None, "cancelled_at": None, "cancel_reason": None,
                "outcome": None, "rationale": None, "conditions": None, "decided_at": None,
                "created_by": None, "created_at": opens, "updated_at": opens,
            }

    # 99% of comments on the hot review, the rest spread over the others.
    comment_ids = sortable_ids("cmt", now - timedelta(days=4), comments)
    cold = review_ids[1:] or review_ids
    placed: list[str] = []

    def comment_rows() -> Iterator[dict[str, Any]]:
        for index, comment_id in enumerate(comment_ids):
            review_id = hot_review if index % 100 else cold[index // 100 % len(cold)]
            body = (FORM_LETTERS[index % 10] if index % 20 == 0 else
                    f"Comment {index}: publish the audit logs and keep plates for "
                    f"{index % 90 + 1} days at most.")
            moment = now - timedelta(days=4) + timedelta(milliseconds=index * 10)
            hidden = index % 500 == 0
            placed.append(comment_id)
            yield {
                "id": comment_id, "review_id": review_id, "tracking_number": tracking_number(index),
                "status": "hidden" if hidden else "published", "body": body,
                "display_name": f"Resident {index % 5000}",
                "neighborhood": NEIGHBORHOODS[index % len(NEIGHBORHOODS)],
                "position": ("support", "oppose", "neutral", None)[index % 4],
                "fingerprint": hashlib.sha256(body.encode()).hexdigest(), "flag_count": 0,
                "hidden_reason": "Personal attack." if hidden else None,
                "hidden_at": moment if hidden else None, "published_at": moment,
                "created_at": moment,
            }

    def contact_rows() -> Iterator[dict[str, Any]]:
        for index, comment_id in enumerate(placed):
            yield {"comment_id": comment_id, "email": f"r{index}@example.org",
                   "client_key": None, "created_at": now}

    def comment_events() -> Iterator[dict[str, Any]]:
        ids = sortable_ids("evt", now - timedelta(days=4), len(placed))
        for index, (comment_id, event_id) in enumerate(zip(placed, ids, strict=True)):
            review_id = hot_review if index % 100 else cold[index // 100 % len(cold)]
            yield {"id": event_id, "seq": next(seq), "type": "comment.published",
                   "timestamp": now, "subject_type": "comment", "subject_id": comment_id,
                   "technology_id": hot_tech,
                   "data": {"comment": {"id": comment_id, "review_id": review_id,
                                        "body": "…", "position": "oppose"},
                            "review": {"id": review_id}}}

    began = time.monotonic()
    counts: dict[str, int] = {}
    with engine(app).begin() as conn:
        counts["technologies"] = _insert(conn, table_of(Technology), technology_rows())
        counts["reviews"] = _insert(conn, table_of(Review), review_rows())
        counts["comments"] = _insert(conn, table_of(Comment), comment_rows())
        counts["contacts"] = _insert(conn, table_of(CommenterContact), contact_rows())
        early_ids = sortable_ids("evt", start, len(events))
        for event, event_id in zip(events, early_ids, strict=True):
            event["id"] = event_id
        counts["events"] = _insert(conn, table_of(Event), iter(events))
        counts["events"] += _insert(conn, table_of(Event), comment_events())
        last_seq = next(seq) - 1
        conn.execute(update(table_of(LogHead)).values(last_seq=last_seq))
        conn.execute(update(table_of(LogCursor)).values(seq=last_seq))
    if app.config["DATABASE_URL"].startswith("postgresql"):
        from sqlalchemy import text

        # A bulk load is followed by autovacuum's ANALYZE in a real deployment.
        with engine(app).connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
    return {"hot_review": hot_review, "hot_tech": hot_tech, "tech_ids": tech_ids,
            "comment_ids": placed,
            "last_seq": last_seq, "seconds": round(time.monotonic() - began, 1), **counts}


def _event(seq: int, type: str, subject_type: str, subject_id: str, technology_id: str,
           moment: datetime, data: dict[str, Any]) -> dict[str, Any]:
    return {"id": "", "seq": seq, "type": type, "timestamp": moment,
            "subject_type": subject_type, "subject_id": subject_id,
            "technology_id": technology_id, "data": data}


def paths(seeded: dict[str, Any]) -> dict[str, str]:
    """The requests measured, by name, for one registry."""
    from registry.api import encode_cursor

    hot = seeded["hot_review"]
    hot_comments = [c for i, c in enumerate(seeded["comment_ids"]) if i % 100]
    deep_comment = hot_comments[int(len(hot_comments) * 0.9)]
    late_tech = seeded["tech_ids"][-60]
    return {
        "technologies": "/api/v1/technologies",
        # Filters and page sizes chosen so that both registries fill the page: the figure
        # compares the same work on more rows, not a longer page.
        "technologies?status=in_review": "/api/v1/technologies?status=in_review&limit=5",
        "technologies?q": "/api/v1/technologies?q=network",
        "technologies, last page": f"/api/v1/technologies?cursor={encode_cursor(late_tech)}",
        "reviews?status=open": "/api/v1/reviews?status=open&limit=5",
        "review comments": f"/api/v1/reviews/{hot}/comments",
        "review comments, 90% deep": f"/api/v1/reviews/{hot}/comments?cursor="
                                     f"{encode_cursor(deep_comment)}",
        "events": "/api/v1/events",
        "events?after (tail)": f"/api/v1/events?after={seeded['last_seq'] - 40}",
        "events?type (sparse)": "/api/v1/events?type=review.scheduled",
        # The Atom feed of the technology whose review draws the comments (newest first).
        "feed of one technology": f"/feeds/events.atom?technology={seeded['hot_tech']}",
    }


#: Measured for information, not under the goal: the summary's first count (two requests,
#: no warm-up: what the first reader of each web process waits for), and the hot review's
#: technology page, which shows that summary and is not in the read cache (after a warm-up:
#: what residents wait for while its counts are reused, ``registry.comments.summaries``).
INFORMATIONAL = {"review comments summary", "technology page (hot review)"}
#: Of those, the ones measured without a warm-up.
FIRST_READS = {"review comments summary"}


def timed_get(conn: http.client.HTTPConnection, path: str) -> tuple[float, int]:
    """One GET on a kept-alive connection: (seconds, status); status 0 when the server
    dropped the connection (gunicorn kills a worker whose request passes its 30 s timeout)."""
    for attempt in (1, 2):
        began = time.perf_counter()
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
        except (http.client.HTTPException, OSError):
            conn.close()  # reconnect: gunicorn closes a connection idle past its keep-alive
            if attempt == 2:
                return time.perf_counter() - began, 0
            continue
        return time.perf_counter() - began, response.status
    raise AssertionError("unreachable")


#: Comments posted to the hot review before each read of its summary, and how many times.
NEWS, NEWS_ROUNDS = 100, 5


def post_comments(conn: http.client.HTTPConnection, review_id: str, count: int,
                  mark: str) -> int:
    """Post ``count`` comments to the review (distinct texts, ``mark`` in each); the 201s."""
    created = 0
    for index in range(count):
        body = json.dumps({"body": f"News {mark}-{index}: who audits the cameras?",
                           "position": "oppose"})
        conn.request("POST", f"/api/v1/reviews/{review_id}/comments", body,
                     {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        created += response.status == 201
    return created


def summary_while_comments_arrive(conn: http.client.HTTPConnection, review_id: str
                                  ) -> dict[str, Any]:
    """``NEWS_ROUNDS`` times: post ``NEWS`` comments, then read the summary (timed); the
    reads' median time, how many counted every comment posted so far, and how many did not
    answer 200."""
    path = f"/api/v1/reviews/{review_id}/comments/summary"

    def total() -> int | None:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        return json.loads(body)["total"] if response.status == 200 else None

    # A new connection (gunicorn closes one idle past its keep-alive, as this one may have
    # been during the CSV export); its first read primes its process's count, untimed.
    conn.close()
    first = total()
    posted, exact, failed = 0, 0, int(first is None)
    seconds: list[float] = []
    for round_ in range(NEWS_ROUNDS):
        posted += post_comments(conn, review_id, NEWS, f"{round_}")
        began = time.perf_counter()
        counted = total()
        seconds.append(time.perf_counter() - began)
        failed += counted is None
        exact += first is not None and counted == first + posted
    return {"posted": posted, "reads": NEWS_ROUNDS, "p50_ms": round(median(seconds) * 1000, 2),
            "max_ms": round(max(seconds) * 1000, 2), "reads_counting_every_comment": exact,
            "reads_not_200": failed}


def timed_download(conn: http.client.HTTPConnection, path: str) -> tuple[float, int, int]:
    """One GET read to its end a chunk at a time: (seconds, status, bytes). On a connection
    of its own, as a resident's download would be (and ``conn``, kept alive, may have been
    closed by gunicorn while idle: its keep-alive is 2 s)."""
    began = time.perf_counter()
    own = http.client.HTTPConnection(conn.host, conn.port, timeout=conn.timeout)
    try:
        own.request("GET", path)
        response = own.getresponse()
        size = 0
        while chunk := response.read(1 << 20):
            size += len(chunk)
    finally:
        own.close()
    return time.perf_counter() - began, response.status, size


def main() -> None:
    """Run the figure and write bench/results/scale.json."""
    parse = parser(__doc__ or "")
    parse.add_argument("--comments", type=int, default=None, help="large registry's comments")
    parse.add_argument("--technologies", type=int, default=None,
                       help="large registry's technologies")
    parse.add_argument("--requests", type=int, default=None, help="requests per endpoint")
    args = parse.parse_args()
    large_comments = args.comments or (50_000 if args.quick else 1_000_000)
    large_techs = args.technologies or (1_000 if args.quick else 10_000)
    small_comments, small_techs = (2_000, 100) if args.quick else (10_000, 100)
    per_endpoint = args.requests or (8 if args.quick else 40)
    machine = machine_info()
    sizes = {"small": (small_techs, small_comments), "large": (large_techs, large_comments)}
    # Two registries, so two databases of their own on the server (named by the run, not by
    # the URL, which may name one).
    server = (make_url(args.postgres).set(database="").render_as_string(hide_password=False)
              if args.postgres else None)
    with workspace("scale", args.keep) as folder:
        seeded: dict[str, dict[str, Any]] = {}
        deployments: dict[str, Deployment] = {}
        for size, (techs, comments) in sizes.items():
            database = Database.fresh(f"scale_{size}", folder, server)
            app = make_app(database.url)
            migrate(app)
            seed_basics(app, roles=("admin",))
            seeded[size] = seed_registry(app, technologies=techs, comments=comments)
            from registry.database import engine

            engine(app).dispose()
            # The comment limit lifted for the posts of the last measurement (one client).
            deployments[size] = Deployment(
                database, folder / size, shape="gunicorn",
                env_extra={"DAYLIGHT_COMMENT_RATE_LIMIT": "1000000 per minute"})
            (folder / size).mkdir()
        latencies: dict[str, dict[str, list[float]]] = {"small": {}, "large": {}}
        bad: list[str] = []
        try:
            for deployment in deployments.values():
                deployment.start()
            conns = {size: http.client.HTTPConnection("127.0.0.1", d.port, timeout=300)
                     for size, d in deployments.items()}
            measured = {size: paths(seeded[size]) for size in sizes}
            for size in sizes:
                measured[size]["review comments summary"] = (
                    f"/api/v1/reviews/{seeded[size]['hot_review']}/comments/summary")
                measured[size]["technology page (hot review)"] = (
                    f"/technologies/{seeded[size]['hot_tech']}")
            for name in measured["small"]:
                count = 2 if name in FIRST_READS else per_endpoint
                for size in sizes:  # warm-up: caches, connections, the planner
                    if name not in FIRST_READS:
                        timed_get(conns[size], measured[size][name])
                for _ in range(count):
                    for size in sizes:
                        seconds, status = timed_get(conns[size], measured[size][name])
                        if status != 200:
                            bad.append(f"{size} {name}: {status}")
                        latencies[size].setdefault(name, []).append(seconds)
            # The CSV export of the hot review, once each, for information: its time and
            # whether it made a web process grow (the peak resident memory of the
            # deployment's processes before and after).
            exports: dict[str, dict[str, Any]] = {}
            for size, deployment in deployments.items():
                sessions = [proc.pid for proc in deployment.procs]
                before = session_peak_rss_mb(sessions)
                seconds, status, length = timed_download(
                    conns[size], f"/api/v1/reviews/{seeded[size]['hot_review']}/comments.csv")
                if status != 200:
                    bad.append(f"{size} comments.csv: {status}")
                exports[size] = {"seconds": round(seconds, 2), "megabytes": round(length / 1e6, 1),
                                 "peak_rss_mb_before": before,
                                 "peak_rss_mb_after": session_peak_rss_mb(sessions)}
            # Last, as it adds comments: the summary while they arrive (for information).
            news = {size: summary_while_comments_arrive(conns[size], seeded[size]["hot_review"])
                    for size in sizes}
            for size, arrived in news.items():
                if arrived["posted"] != NEWS * NEWS_ROUNDS:
                    bad.append(f"{size} comment posts: {arrived['posted']} created")
                if arrived["reads_not_200"]:
                    bad.append(f"{size} summary reads: {arrived['reads_not_200']} not 200")
            for conn in conns.values():
                conn.close()
        finally:
            for deployment in deployments.values():
                deployment.stop()
    endpoints: dict[str, Any] = {}
    for name in latencies["small"]:
        small, large = latencies["small"][name], latencies["large"][name]
        endpoints[name] = {
            "small_p50_ms": round(median(small) * 1000, 2),
            "large_p50_ms": round(median(large) * 1000, 2),
            "small_p95_ms": round(percentile(small, 95) * 1000, 2),
            "large_p95_ms": round(percentile(large, 95) * 1000, 2),
            "ratio": ratio(median(large), median(small)),
            "informational": name in INFORMATIONAL,
        }
    goals = {name: e["ratio"] <= GOAL_RATIO for name, e in endpoints.items()
             if not e["informational"]}
    worst = max((e["ratio"], n) for n, e in endpoints.items() if not e["informational"])
    write_result("scale", {
        "machine": machine,
        "parameters": {
            "small": {"technologies": small_techs, "comments": small_comments},
            "large": {"technologies": large_techs, "comments": large_comments},
            "requests_per_endpoint": per_endpoint,
            "deployment": deployments["small"].describe(), "quick": args.quick,
        },
        "seeding": {size: {k: v for k, v in s.items()
                           if k not in ("tech_ids", "comment_ids")} for size, s in seeded.items()},
        "daylight": endpoints,
        "comments_csv_export": {"what": "GET /api/v1/reviews/{hot}/comments.csv once, read to "
                                        "its end (information, not under the goal)",
                                **exports},
        "summary_while_comments_arrive": {
            "what": f"{NEWS_ROUNDS} times: {NEWS} comments posted to the hot review, then one "
                    "read of its summary (information, not under the goal)", **news},
        "baseline": {"what": "the same endpoints on the small registry, served at the same "
                             "time by the same settings"},
        "ratio": {"worst": worst[0], "worst_endpoint": worst[1]},
        "goal": f"each list endpoint's p50 latency large/small <= {GOAL_RATIO}x",
        "pass_by_endpoint": goals,
        "non_200": bad,
        "failures": len(bad),
        "pass": all(goals.values()) and not bad,
    })


if __name__ == "__main__":
    main()
