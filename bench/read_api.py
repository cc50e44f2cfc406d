"""read_api: ``GET /api/v1/technologies`` and ``GET /api/v1/technologies/{id}`` under load.

Daylight runs under gunicorn with the Procfile's settings (``--workers 2 --threads 8``) beside
its worker processes, on a registry of 200 submitted technologies (assessed, some with a
review). The baseline is a bare Flask hello-world under the same gunicorn settings, loaded
by the same closed-loop generator in the same run; rounds of the three alternate.

    python -m bench.read_api [--postgres [URL]] [--quick] [--wrk] [--seconds S]
        [--connections N] [--technologies N]

Goals: requests per second ≥ 0.5× the hello-world's, and p99 ≤ 50 ms.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bench.common import (
    Database,
    Deployment,
    Proc,
    free_port,
    gunicorn_args,
    machine_info,
    make_app,
    median,
    migrate,
    parser,
    percentile,
    process_env,
    ratio,
    seed_basics,
    technology_body,
    utcnow,
    wait_healthy,
    workspace,
    write_result,
)
from bench.loadgen import LoadResult, Target, have_wrk, run_load, run_wrk

GOAL_RATIO = 0.5
GOAL_P99_MS = 50.0


def seed_technologies(app: Any, count: int, reviewed_every: int = 10) -> list[str]:
    """Register and submit ``count`` technologies through the services (each assessed);
    every ``reviewed_every``-th gets a scheduled review. Returns their ids."""
    from registry.auth.models import Role
    from registry.auth.services import Principal
    from registry.database import transaction
    from registry.reviews.services import schedule_review
    from registry.technologies.services import create_technology, submit_technology

    admin = Principal(token_id="tok_bench", name="bench", role=Role.ADMIN, department_id=None)
    ids = []
    now = utcnow()
    with app.app_context(), transaction(app) as session:
        for index in range(count):
            technology = create_technology(session, admin,
                                           technology_body(f"Camera network {index}"), now=now)
            submit_technology(session, admin, technology, now=now)
            if index % reviewed_every == 0:
                opens = now + timedelta(days=10)
                schedule_review(session, admin, technology, {
                    "comment_opens_at": opens, "comment_closes_at": opens + timedelta(days=60),
                    "meetings": [{"starts_at": opens + timedelta(days=7),
                                  "place": "City Hall"}]}, now=now)
            ids.append(technology.id)
    return ids


def load(port: int, targets: list[Target], args: Any, wrk_url: str | None) -> LoadResult:
    """One load run with the chosen generator."""
    if wrk_url is not None:
        return run_wrk(wrk_url, connections=args.connections, duration=args.seconds)
    return run_load(port, targets, connections=args.connections, duration=args.seconds)


def main() -> None:
    """Run the figure and write bench/results/read_api.json."""
    parse = parser(__doc__ or "")
    parse.add_argument("--wrk", action="store_true", help="load with wrk (if installed)")
    parse.add_argument("--seconds", type=float, default=None)
    parse.add_argument("--rounds", type=int, default=None)
    parse.add_argument("--connections", type=int, default=8)
    parse.add_argument("--technologies", type=int, default=200)
    parse.add_argument("--app", default="registry:create_app()",
                       help="gunicorn app spec to serve (for trying a change side by side)")
    args = parse.parse_args()
    args.seconds = args.seconds or (2.0 if args.quick else 8.0)
    rounds = args.rounds or (1 if args.quick else 3)
    use_wrk = args.wrk and have_wrk()
    machine = machine_info()
    with workspace("read_api", args.keep) as folder:
        database = Database.fresh("read_api", folder, args.postgres)
        app = make_app(database.url)
        migrate(app)
        seed_basics(app)
        ids = seed_technologies(app, 20 if args.quick else args.technologies)
        from registry.database import engine

        engine(app).dispose()
        deployment = Deployment(database, folder, shape="gunicorn", app_spec=args.app)
        hello_port = free_port()
        hello = Proc("hello", gunicorn_args("bench.baseline_app:create_app()", hello_port),
                     process_env(database.url), folder / "hello.log")
        runs: dict[str, list[LoadResult]] = {"hello": [], "list": [], "detail": []}
        with deployment:
            deployment.start()
            hello.start()
            try:
                wait_healthy(f"http://127.0.0.1:{hello_port}")
                port = deployment.port
                plan = {
                    "hello": (hello_port, [Target("GET", "/hello")], "/hello"),
                    "list": (port, [Target("GET", "/api/v1/technologies")],
                             "/api/v1/technologies"),
                    "detail": (port, [Target("GET", f"/api/v1/technologies/{i}")
                                      for i in ids[:50]], f"/api/v1/technologies/{ids[0]}"),
                }
                for _ in range(rounds):
                    for name, (target_port, targets, path) in plan.items():
                        url = f"http://127.0.0.1:{target_port}{path}" if use_wrk else None
                        runs[name].append(load(target_port, targets, args, url))
            finally:
                hello.stop()

    def figures(name: str) -> dict[str, Any]:
        results = runs[name]
        latencies = [x for r in results for x in r.latencies]
        return {
            "rps_median": round(median([r.rps for r in results]), 1),
            "p50_ms": round(percentile(latencies, 50) * 1000, 2),
            "p99_ms": round(percentile(latencies, 99) * 1000, 2),
            "non_200": sum(r.requests - r.statuses[200] for r in results),
            "errors": sum(r.errors for r in results),
            "rounds": [r.summary() for r in results],
        }

    base, listing, detail = figures("hello"), figures("list"), figures("detail")
    ratios = {"list": ratio(listing["rps_median"], base["rps_median"]),
              "detail": ratio(detail["rps_median"], base["rps_median"])}
    passes = {
        name: bool(ratios[name] >= GOAL_RATIO and fig["p99_ms"] <= GOAL_P99_MS
                   and fig["non_200"] == 0 and fig["errors"] == 0)
        for name, fig in (("list", listing), ("detail", detail))
    }
    write_result("read_api", {
        "machine": machine,
        "parameters": {"seconds_per_run": args.seconds, "rounds": rounds,
                       "connections": args.connections, "technologies": len(ids),
                       "load_generator": "wrk" if use_wrk else "bench.loadgen (python)",
                       "app": args.app,
                       "deployment": deployment.describe(), "quick": args.quick},
        "daylight": {"GET /api/v1/technologies": listing,
                     "GET /api/v1/technologies/{id}": detail},
        "baseline": {"what": "bare Flask hello-world, same gunicorn settings", **base},
        "ratio": ratios,
        "goal": f"rps >= {GOAL_RATIO}x hello-world and p99 <= {GOAL_P99_MS:g} ms, each endpoint",
        "pass_by_endpoint": passes,
        "failures": sum(fig["non_200"] + fig["errors"] for fig in (base, listing, detail)),
        "pass": all(passes.values()),
    })


if __name__ == "__main__":
    main()
