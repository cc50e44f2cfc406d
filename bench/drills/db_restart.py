"""Drill 6: PostgreSQL crashes and restarts while residents post comments.

A PostgreSQL server of the drill's own (``initdb`` in the drill's folder, on a free port, as
the ``postgres`` user) serves Daylight as deployed on PostgreSQL: gunicorn with the
Procfile's settings and two ``daylight worker`` processes; two webhook endpoints on the
local receiver subscribe to ``comment.published``. Client threads post comments to one
open review, each with a text of its own and never retried (as in ``kill_web``), while the
server is stopped with ``pg_ctl restart -m immediate`` (no shutdown checkpoint: crash
recovery at the start) several times. After each restart the drill waits until posts are
taken again. Then the posting stops and:

- every answer is checked against the database as in ``kill_web``: every receipt stored
  as given, nothing stored twice, each comment with its one event, the log without a gap,
  no post refused but stored, no server error but 503 ("busy, nothing saved");
- every stored comment's ``comment.published`` event reaches both endpoints, under its
  event id: the workers came back too;
- ``/healthz`` answers 200 again.

With ``--keys`` each post carries an ``Idempotency-Key`` and is sent again after a lost
answer or a 503, as in ``kill_web``: then every post must also end with a receipt.

    python -m bench.drills.db_restart [--quick] [--restarts N] [--keys]

Needs PostgreSQL's server programs (``initdb``, ``pg_ctl``) and root (to run them as
``postgres``) or the ``postgres`` user itself.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import requests

from bench.comment_surge import open_review
from bench.common import (
    Database,
    Deployment,
    add_endpoints,
    free_port,
    machine_info,
    make_app,
    migrate,
    parser,
    query,
    seed_basics,
    wait_until,
    workspace,
    write_result,
)
from bench.drills.kill_web import Outcomes, poster, verify
from bench.receiver import Receiver


def server_program(name: str) -> str | None:
    """The path of PostgreSQL's server program ``name`` (the newest installed), if any."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


class PrivateServer:
    """A PostgreSQL server of the drill's own, in ``folder``, on ``port``."""

    def __init__(self, folder: Path, port: int) -> None:
        self.data = folder / "pgdata"
        self.sockets = folder / "pgsock"
        self.log = folder / "postgres.log"
        self.port = port
        self.initdb, self.pg_ctl = server_program("initdb"), server_program("pg_ctl")
        if self.initdb is None or self.pg_ctl is None:
            raise RuntimeError("PostgreSQL's server programs (initdb, pg_ctl) are not here")
        # PostgreSQL refuses to run as root: as root, run it as the postgres user.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the drill's database on this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/daylight_drill"

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, timeout=120)

    def create(self) -> None:
        """initdb and start."""
        for folder in (self.data, self.sockets):
            folder.mkdir()
        self.log.touch()
        if self.as_user:
            shutil.chown(self.data.parent, "postgres")
            for path in (self.data, self.sockets, self.log):
                shutil.chown(path, "postgres")
        assert self.initdb is not None
        self._run(self.initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust",
                  "--no-sync")
        self.start()

    def _options(self) -> str:
        return (f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 "
                "-c max_connections=100")

    def start(self) -> None:
        """Start the server and wait until it takes connections."""
        assert self.pg_ctl is not None
        self._run(self.pg_ctl, "-D", str(self.data), "-o", self._options(), "-l",
                  str(self.log), "-w", "-t", "60", "start")

    def crash_restart(self) -> None:
        """Stop at once, as a crash would (no checkpoint), then start: crash recovery."""
        assert self.pg_ctl is not None
        self._run(self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "-t", "60",
                  "stop")
        self.start()

    def stop(self) -> None:
        """Stop it (fast shutdown), if it runs."""
        assert self.pg_ctl is not None
        subprocess.run([*self.as_user, self.pg_ctl, "-D", str(self.data), "-m", "fast",
                        "-w", "-t", "60", "stop"], capture_output=True, timeout=120,
                       check=False)


def healthy(base: str) -> bool:
    """Whether ``/healthz`` answers 200."""
    try:
        return requests.get(f"{base}/healthz", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def drill(folder: Path, *, restarts_wanted: int, clients: int,
          keys: bool = False) -> dict[str, Any]:
    """Run the drill in ``folder``; its figures and verdict (``pass``)."""
    server = PrivateServer(folder, free_port())
    server.create()
    restarts: list[dict[str, Any]] = []
    out = Outcomes(keys=keys)
    try:
        with Receiver() as receiver:
            database = Database.fresh("drill_db_restart", folder, server.url)
            app = make_app(database.url)
            migrate(app)
            seed_basics(app)
            paths = ["/endpoint/a", "/endpoint/b"]
            add_endpoints(app, [receiver.url(p) for p in paths], ["comment.published"])
            review_id = open_review(app)
            from registry.database import engine

            engine(app).dispose()  # the drill's own connections must not outlive a restart
            deployment = Deployment(database, folder, shape="gunicorn", env_extra={
                "DAYLIGHT_COMMENT_RATE_LIMIT": "1000000 per minute"})
            began = time.monotonic()
            with deployment:
                deployment.start()
                stop = threading.Event()
                path = f"/api/v1/reviews/{review_id}/comments"
                threads = [threading.Thread(target=poster, daemon=True, args=(
                    deployment.port, path, f"c{i}", stop, out)) for i in range(clients)]
                for thread in threads:
                    thread.start()
                try:
                    for _ in range(restarts_wanted):
                        taken = len(out.receipts)
                        wait_until(lambda t=taken: len(out.receipts) >= t + 300,  # type: ignore[misc]
                                   timeout=120, what="300 comments taken", interval=0.05)
                        before = len(out.receipts), len(out.refused), len(out.unanswered)
                        started = time.monotonic()
                        server.crash_restart()
                        back = time.monotonic()
                        taken = len(out.receipts)
                        wait_until(lambda t=taken: len(out.receipts) > t,  # type: ignore[misc]
                                   timeout=120, what="a comment taken after the restart",
                                   interval=0.01)
                        restarts.append({
                            "after_seconds": round(started - began, 2),
                            "server_down_and_up_seconds": round(back - started, 2),
                            "first_receipt_after_up_seconds": round(
                                time.monotonic() - back, 2),
                            "receipts_before": before[0], "refused_before": before[1],
                            "unanswered_before": before[2]})
                    # Posts are taken again in earnest after the last restart.
                    taken = len(out.receipts)
                    wait_until(lambda: len(out.receipts) >= taken + 300, timeout=120,
                               what="300 comments after the last restart", interval=0.05)
                finally:
                    stop.set()
                    for thread in threads:
                        thread.join(timeout=90)
                checked = verify(app, review_id, out)
                events = {row[0] for row in query(
                    app, "SELECT id FROM event WHERE type = 'comment.published'")}
                expected = {(event, p) for event in events for p in paths}
                seen: set[tuple[str, str]] = set()

                def delivered() -> bool:
                    seen.update((i, p) for _, p, i in receiver.records(since=0))
                    return expected <= seen

                waited = time.monotonic()
                # Where the deliveries stand a few seconds in, should some be slow to come.
                try:
                    wait_until(delivered, timeout=5, what="most deliveries", interval=0.1)
                    stalled: list[Any] = []
                except TimeoutError:
                    stalled = [list(row) for row in query(
                        app, "SELECT status, attempts, lease_token IS NOT NULL, "
                        "count(*), min(next_attempt_at)::text, min(lease_expires_at)::text, "
                        "now()::text FROM webhook_delivery WHERE status <> 'succeeded' "
                        "GROUP BY 1, 2, 3")]
                try:
                    wait_until(delivered, timeout=300, what="every event at both endpoints",
                               interval=0.1)
                except TimeoutError:
                    pass
                delivery_wait = round(time.monotonic() - waited, 2)
                health = healthy(deployment.base)
                engine(app).dispose()
            missing = len(expected - seen)
    finally:
        server.stop()
    passed = (len(restarts) == restarts_wanted and checked.pop("sound") and missing == 0
              and health and not (keys and checked["unanswered"]))
    return {
        "parameters": {"restarts": restarts_wanted, "clients": clients,
                       "idempotency_keys": keys,
                       "deployment": deployment.describe()},
        "restarts": restarts, **checked,
        "webhooks_expected": len(expected), "webhooks_missing": missing,
        "webhooks_all_arrived_seconds_after_posting_stopped": delivery_wait,
        "deliveries_not_done_5_seconds_after_posting_stopped": stalled,
        "healthz_after": health, "seconds": round(time.monotonic() - began, 1),
        "pass": passed,
    }


def main() -> None:
    """Run the drill, write its result; print its verdict line last."""
    parse = parser(__doc__ or "")
    parse.add_argument("--restarts", type=int, default=None)
    parse.add_argument("--clients", type=int, default=8)
    parse.add_argument("--keys", action="store_true",
                       help="posts carry Idempotency-Keys and are sent again until answered")
    args = parse.parse_args()
    machine = machine_info()
    with workspace("drill_db_restart", args.keep) as folder:
        figures = drill(folder, restarts_wanted=args.restarts or (2 if args.quick else 4),
                        clients=args.clients, keys=args.keys)
    figures["parameters"]["quick"] = args.quick
    r = write_result("drill_db_restart", {"machine": machine, **figures})
    print(f"{'PASS' if r['pass'] else 'FAIL'} db_restart: {len(r['restarts'])} crash restarts "
          f"of PostgreSQL; {r['receipts']} receipts, {r['receipts_not_stored_as_given']} not "
          f"stored as given; refused {r['refused_by_status']}, {r['refused_but_stored']} of "
          f"them stored though told nothing was; {r['outcome_unknown']} told the outcome was "
          f"unknown ({r['outcome_unknown_stored']} stored); {r['unanswered']} unanswered "
          f"({r['unanswered_stored']} stored); {r['posts_sent_again']} posts sent again, "
          f"{r['replayed']} replayed; {r['stored_twice']} stored twice; "
          f"{r['comments_without_one_event']} comments without one event; "
          f"seq gapless: {r['seq_gapless']}; webhooks "
          f"{r['webhooks_expected'] - r['webhooks_missing']}/{r['webhooks_expected']}; "
          f"healthz after: {r['healthz_after']}")


if __name__ == "__main__":
    main()
