"""Profile one request in process (cProfile, stdlib): where a read or a comment post spends
its time, without a server or a network in the way.

    python -m bench.profile_request list|detail|comment [--requests N] [--technologies N] [--top N]

Seeds a SQLite registry as ``read_api`` does (200 technologies) plus an open review, sends
``--requests`` requests through Flask's test client under cProfile, and prints the
functions with the most time (own and cumulative) and the mean time per request.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time
from collections.abc import Callable

from bench.comment_surge import comment_targets, open_review
from bench.common import make_app, migrate, seed_basics, workspace
from bench.read_api import seed_technologies


def main() -> None:
    """Profile the chosen request and print the report."""
    parse = argparse.ArgumentParser(description=__doc__)
    parse.add_argument("what", choices=["list", "detail", "comment"])
    parse.add_argument("--requests", type=int, default=300)
    parse.add_argument("--technologies", type=int, default=200)
    parse.add_argument("--top", type=int, default=35)
    args = parse.parse_args()
    with workspace("profile") as folder:
        app = make_app(f"sqlite:///{folder / 'profile.db'}",
                       COMMENT_RATE_LIMIT="1000000 per minute")
        migrate(app)
        seed_basics(app)
        ids = seed_technologies(app, args.technologies)
        review_id = open_review(app)
        client = app.test_client()
        targets = comment_targets(f"/api/v1/reviews/{review_id}/comments")
        requests: dict[str, Callable[[int], object]] = {
            "list": lambda i: client.get("/api/v1/technologies"),
            "detail": lambda i: client.get(f"/api/v1/technologies/{ids[i % len(ids)]}"),
            "comment": lambda i: client.post(
                targets[i % len(targets)].path, data=targets[i % len(targets)].body,
                content_type="application/json"),
        }
        send = requests[args.what]
        for i in range(20):  # warm up
            send(i)
        profiler = cProfile.Profile()
        began = time.perf_counter()
        profiler.enable()
        for i in range(args.requests):
            send(i)
        profiler.disable()
        elapsed = time.perf_counter() - began
        from registry.database import engine

        engine(app).dispose()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top)
    print(f"{args.what}: {args.requests} requests, {elapsed / args.requests * 1000:.2f} ms each "
          "under cProfile")
    print(out.getvalue())


if __name__ == "__main__":
    main()
