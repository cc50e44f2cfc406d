"""idempotency_cost: what an Idempotency-Key adds to a comment post.

In this process, through the app's whole WSGI stack (the comment post in front of Flask and
the comment writer) on a fresh database: rounds of posts without a key and posts each with a
new key, alternating, one at a time. Prints one JSON line and writes
``bench/results/idempotency_cost.json``: each round's milliseconds a post, the medians, and
keyed over plain (for information: no goal; a key should cost little).

    python -m bench.idempotency_cost [--postgres [URL]] [--quick] [--posts N] [--rounds N]
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from bench.comment_surge import open_review
from bench.common import (
    Database,
    machine_info,
    make_app,
    median,
    migrate,
    parser,
    seed_basics,
    workspace,
    write_result,
)


def post_round(client: Any, path: str, count: int, *, keyed: bool, tag: str) -> float:
    """Post ``count`` comments one after another; milliseconds a post."""
    began = time.perf_counter()
    for number in range(count):
        headers = {"Idempotency-Key": str(uuid.uuid4())} if keyed else {}
        answer = client.post(path, json={"body": f"Cost drill {tag}-{number}: keep it short."},
                             headers=headers)
        if answer.status_code != 201:
            raise RuntimeError(f"a post was answered {answer.status_code}: {answer.text}")
    return (time.perf_counter() - began) / count * 1000


def main() -> None:
    """Run the rounds, write the result."""
    parse = parser(__doc__ or "")
    parse.add_argument("--posts", type=int, default=None)
    parse.add_argument("--rounds", type=int, default=5)
    args = parse.parse_args()
    posts = args.posts or (200 if args.quick else 1000)
    machine = machine_info()
    with workspace("idempotency_cost", args.keep) as folder:
        database = Database.fresh("idempotency_cost", folder, args.postgres)
        app = make_app(database.url, COMMENT_RATE_LIMIT="1000000 per minute")
        migrate(app)
        seed_basics(app)
        path = f"/api/v1/reviews/{open_review(app)}/comments"
        client = app.test_client()
        post_round(client, path, posts // 5, keyed=True, tag="warm")  # connections, caches
        rounds: dict[str, list[float]] = {"plain": [], "keyed": []}
        for index in range(args.rounds):
            for kind in ("plain", "keyed"):
                rounds[kind].append(round(post_round(
                    client, path, posts, keyed=kind == "keyed", tag=f"{kind}{index}"), 3))
        from registry.database import engine

        engine(app).dispose()
    plain, keyed = median(rounds["plain"]), median(rounds["keyed"])
    write_result("idempotency_cost", {
        "machine": machine,
        "parameters": {"backend": database.backend, "posts_per_round": posts,
                       "rounds": args.rounds, "quick": args.quick},
        "ms_per_post": rounds, "plain_ms_median": plain, "keyed_ms_median": keyed,
        "keyed_over_plain": round(keyed / plain, 3),
    })


if __name__ == "__main__":
    main()
