"""comment_surge: residents' comments posted as fast as the server takes them.

Daylight runs under gunicorn with the Procfile's settings beside its worker processes, with
the per-client comment limit lifted (``DAYLIGHT_COMMENT_RATE_LIMIT``: every request comes
from 127.0.0.1); every connection posts to one open review. The baseline is a bare Flask
``POST`` endpoint that parses the JSON body and answers 201, under the same gunicorn
settings and the same closed-loop generator; rounds alternate. A second reference, not the
goal, is the same bare endpoint storing each comment as one row with a commit, in the same
database (the least a durable endpoint must do). Afterwards the comments
stored (and their ``comment.published`` events) must equal the 201s received: a request
whose answer was lost is counted as an error and reported, never retried.

    python -m bench.comment_surge [--postgres [URL]] [--quick] [--seconds S] [--connections N]

Goals: ≥ 0.5× the baseline's posts per second; nothing accepted is lost.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import text

from bench.baseline_app import BARE_TABLE
from bench.common import (
    Database,
    Deployment,
    Proc,
    command_cpu,
    free_port,
    gunicorn_args,
    machine_info,
    machine_time,
    make_app,
    median,
    migrate,
    parser,
    percentile,
    process_env,
    ratio,
    seed_basics,
    session_cpu,
    technology_body,
    utcnow,
    wait_healthy,
    workspace,
    write_result,
)
from bench.loadgen import LoadResult, Target, run_load

GOAL_RATIO = 0.5
NEIGHBORHOODS = ("Eastside", "Downtown", "Riverside", "Hillcrest", None)


def open_review(app: Any) -> str:
    """A submitted technology with a review whose comment period is open now."""
    from registry.auth.models import Role
    from registry.auth.services import Principal
    from registry.database import transaction
    from registry.reviews.services import open_due_comment_periods, schedule_review
    from registry.technologies.services import create_technology, submit_technology

    admin = Principal(token_id="tok_bench", name="bench", role=Role.ADMIN, department_id=None)
    now = utcnow()
    with app.app_context(), transaction(app) as session:
        technology = create_technology(session, admin, technology_body("Surge cameras"),
                                       now=now)
        submit_technology(session, admin, technology, now=now)
        opens = now - timedelta(minutes=1)
        review = schedule_review(session, admin, technology, {
            "comment_opens_at": opens, "comment_closes_at": opens + timedelta(days=60),
            "meetings": [{"starts_at": now + timedelta(days=7), "place": "City Hall"}]},
            now=opens)
        review_id = review.id
    with app.app_context(), transaction(app) as session:
        assert review_id in open_due_comment_periods(session, now=utcnow())
    return review_id


def comment_targets(path: str, count: int = 20) -> list[Target]:
    """Comment bodies of several kinds (some a form letter), all valid."""
    targets = []
    for index in range(count):
        body: dict[str, Any] = {
            "body": ("I oppose these cameras: they record everyone, not suspects."
                     if index % 4 == 0 else
                     f"Comment {index}: please publish the audit logs and limit retention "
                     f"to {index + 7} days."),
            "display_name": f"Resident {index}",
            "neighborhood": NEIGHBORHOODS[index % len(NEIGHBORHOODS)],
            "position": ("support", "oppose", "neutral")[index % 3],
            "email": f"resident{index}@example.org",
        }
        targets.append(Target("POST", path, json.dumps(body).encode(),
                              (("Content-Type", "application/json"),)))
    return targets


#: What ``cpu_per_request`` reports for each server, per request (medians of the rounds).
CPU_FIGURES = ("cpu_ms", "context_switches", "database_cpu_ms", "machine_busy")


def cpu_summary(cpu: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    """Each server's median CPU and context switches per request, and what the CPU alone
    allows: the bare POST's CPU per request over Daylight's is the ratio Daylight would
    reach if both kept the machine equally busy (its throughput cannot pass it while the
    machine's cores are the limit). On a PostgreSQL server on this machine, whose CPU comes
    out of the same cores, the bound counts the database's CPU for each request too."""
    out: dict[str, Any] = {
        "what": "CPU (user + system) of the server's own processes per request, in ms, and "
                "their context switches; not the load generator's. database_cpu_ms: the "
                "local PostgreSQL server's processes per request (PostgreSQL runs only). "
                "machine_busy: the share of all cores busy during the load, whoever used "
                "them (load generator included)",
    }
    for side, rounds in cpu.items():
        if rounds:
            out[side] = {key: round(median([r[key] for r in rounds]), 3)
                         for key in CPU_FIGURES if all(key in r for r in rounds)}
    if "daylight" in out and "baseline" in out:
        ours, theirs = out["daylight"], out["baseline"]
        out["baseline_over_daylight"] = ratio(theirs["cpu_ms"], ours["cpu_ms"])
        if "database_cpu_ms" in ours:
            # The bare POST touches no database: its own CPU is all its requests cost.
            out["baseline_over_daylight_with_database"] = ratio(
                theirs["cpu_ms"], ours["cpu_ms"] + ours["database_cpu_ms"])
    return out


def main() -> None:
    """Run the figure and write bench/results/comment_surge.json."""
    parse = parser(__doc__ or "")
    parse.add_argument("--seconds", type=float, default=None)
    parse.add_argument("--rounds", type=int, default=None)
    parse.add_argument("--connections", type=int, default=8)
    parse.add_argument("--rate-limit-store", default=None, metavar="URL",
                       help="count the comment budget there (DAYLIGHT_RATELIMIT_STORAGE_URI, "
                            "e.g. redis://127.0.0.1:6379/15) instead of in each process")
    args = parse.parse_args()
    args.seconds = args.seconds or (2.0 if args.quick else 8.0)
    rounds = args.rounds or (1 if args.quick else 3)
    machine = machine_info()
    with workspace("comment_surge", args.keep) as folder:
        database = Database.fresh("comment_surge", folder, args.postgres)
        app = make_app(database.url)
        migrate(app)
        seed_basics(app)
        review_id = open_review(app)
        from registry.database import engine

        with engine(app).begin() as conn:
            conn.execute(text(f"CREATE TABLE {BARE_TABLE} (id VARCHAR(40) PRIMARY KEY, "
                              "body TEXT NOT NULL)"))
        engine(app).dispose()
        settings = {"DAYLIGHT_COMMENT_RATE_LIMIT": "1000000 per minute"}
        if args.rate_limit_store:
            settings["DAYLIGHT_RATELIMIT_STORAGE_URI"] = args.rate_limit_store
        deployment = Deployment(database, folder, shape="gunicorn", env_extra=settings)
        base_port = free_port()
        bare = Proc("bare-post", gunicorn_args("bench.baseline_app:create_app()", base_port),
                    process_env(database.url, BASELINE_DATABASE_URL=database.url),
                    folder / "bare-post.log")
        daylight: list[LoadResult] = []
        baseline: list[LoadResult] = []
        durable: list[LoadResult] = []
        # Per request, each round: the CPU of the server's own processes (Daylight's web and
        # worker processes; the bare app's), not the load generator's or the database's.
        cpu: dict[str, list[dict[str, float]]] = {"daylight": [], "baseline": [], "durable": []}
        with deployment:
            deployment.start()
            bare.start()
            try:
                wait_healthy(f"http://127.0.0.1:{base_port}")
                ours = comment_targets(f"/api/v1/reviews/{review_id}/comments")
                theirs = comment_targets("/comments")
                stored_theirs = comment_targets("/comments/stored")
                ours_sessions = [proc.pid for proc in deployment.procs]

                server = database.server_command

                def load(port: int, targets: list[Target], sessions: list[int],
                         into: list[dict[str, float]], *, stores: bool = True
                         ) -> LoadResult:
                    counted = server if stores else None  # the bare POST stores nothing
                    before, machine = session_cpu(sessions), machine_time()
                    store = command_cpu(counted) if counted else None
                    result = run_load(port, targets, connections=args.connections,
                                      duration=args.seconds)
                    after, machine_after = session_cpu(sessions), machine_time()
                    store_after = command_cpu(counted) if counted else None
                    if before is not None and after is not None:
                        figures = before.per(after, result.requests)
                        if store is not None and store_after is not None:
                            figures["database_cpu_ms"] = store.per(
                                store_after, result.requests)["cpu_ms"]
                        if machine is not None and machine_after is not None:
                            figures["machine_busy"] = machine.busy_share(machine_after)
                        into.append(figures)
                    return result

                for _ in range(rounds):
                    baseline.append(load(base_port, theirs, [bare.pid], cpu["baseline"],
                                         stores=False))
                    durable.append(load(base_port, stored_theirs, [bare.pid], cpu["durable"]))
                    daylight.append(load(deployment.port, ours, ours_sessions,
                                         cpu["daylight"]))
            finally:
                bare.stop()
        with engine(app).connect() as conn:
            stored = conn.execute(text("SELECT count(*) FROM comment WHERE review_id = :r"),
                                  {"r": review_id}).scalar_one()
            events = conn.execute(text("SELECT count(*) FROM event WHERE type = "
                                       "'comment.published'")).scalar_one()
            bare_stored = conn.execute(text(f"SELECT count(*) FROM {BARE_TABLE}")).scalar_one()
        engine(app).dispose()
    accepted = sum(r.statuses[201] for r in daylight)
    unanswered = sum(r.errors for r in daylight)
    refused = sum(r.requests - r.statuses[201] for r in daylight)
    rate = median([r.rps for r in daylight])
    base = median([r.rps for r in baseline])
    durable_rate = median([r.rps for r in durable])
    latencies = [x for r in daylight for x in r.latencies]
    nothing_lost = stored == accepted == events
    write_result("comment_surge", {
        "machine": machine,
        "parameters": {"seconds_per_run": args.seconds, "rounds": rounds,
                       "connections": args.connections, "deployment": deployment.describe(),
                       "load_generator": "bench.loadgen (python)", "quick": args.quick,
                       "rate_limit_store": "redis" if args.rate_limit_store else "memory"},
        "daylight": {"posts_per_second_median": round(rate, 1), "accepted_201": accepted,
                     "not_201": refused, "unanswered": unanswered, "stored": stored,
                     "comment_published_events": events,
                     "p50_ms": round(percentile(latencies, 50) * 1000, 2),
                     "p99_ms": round(percentile(latencies, 99) * 1000, 2),
                     "rounds": [r.summary() for r in daylight]},
        "baseline": {"what": "bare Flask POST that parses the JSON and answers 201, same "
                             "gunicorn settings", "posts_per_second_median": round(base, 1),
                     "rounds": [r.summary() for r in baseline]},
        "durable_baseline": {
            "what": "bare Flask POST that parses the JSON, inserts one row and commits, same "
                    "gunicorn settings and database (a reference, not the goal)",
            "posts_per_second_median": round(durable_rate, 1),
            "accepted_201": sum(r.statuses[201] for r in durable), "stored": bare_stored,
            "rounds": [r.summary() for r in durable]},
        "ratio": ratio(rate, base),
        "ratio_to_durable_baseline": ratio(rate, durable_rate),
        "cpu_per_request": cpu_summary(cpu),
        "goal": f">= {GOAL_RATIO}x the baseline's posts per second; stored == accepted",
        "nothing_lost": nothing_lost,
        "failures": refused + unanswered + (0 if nothing_lost else max(
            abs(accepted - stored), abs(accepted - events), 1)),
        "pass": bool(ratio(rate, base) >= GOAL_RATIO and nothing_lost and refused == 0),
    })


if __name__ == "__main__":
    main()
