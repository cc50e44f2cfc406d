"""Drill 5: kill -9 a web process again and again while residents post comments.

Daylight runs as deployed (gunicorn with the Procfile's settings, beside its worker), with
the per-client comment limit lifted as in ``comment_surge``. Client threads post comments to
one open review, each post on a connection of its own and with a text of its own. Each post
carries an ``Idempotency-Key`` of its own, and a post whose answer never came (its process
died under it) or that got a 503 is sent again with the same key until it has an answer, as
a careful client does (``--no-keys``: posts without keys, never sent again). Meanwhile one of
gunicorn's web processes is killed with SIGKILL at a random moment, several times; gunicorn's
master starts another each time. Then the posting stops and every answer is checked against
the database:

- every post answered 201 is stored under the id and tracking number of its receipt, with
  its own text: nothing a resident was given a receipt for is lost;
- no text is stored twice: no post was written twice;
- every stored comment has exactly one ``comment.published`` event, and no such event names
  a comment that is not stored: the change and its event are one transaction;
- the log's ``seq`` runs from 1 without a gap or a repeat, up to the head's number;
- a post refused with a 4xx or 5xx is not stored (nothing half-written);
- with keys, every post ends with an answer, and one sent again after its first try was
  stored gets that comment's receipt (``Idempotent-Replayed``), so nothing is stored twice;
  without keys, a post whose process died under it got no answer: stored or not, either is
  right (its author has no receipt); they are counted;
- posts are taken again after the last kill, and, on SQLite, ``PRAGMA integrity_check``
  says ``ok``.

    python -m bench.drills.kill_web [--postgres [URL]] [--quick] [--kills N] [--no-keys]
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.comment_surge import open_review
from bench.common import (
    Database,
    Deployment,
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

#: How long a web process lives at least before it may be killed.
BOOT_SECONDS = 1.5

#: Answers that lose the connection: the process serving it died (or the master closed it).
_LOST = (ConnectionError, http.client.HTTPException, TimeoutError, OSError)
#: How often a post with a key is sent at most before its client gives up on it.
MAX_TRIES = 30


@dataclass
class Outcomes:
    """What every post got back, by its text (each text is posted once)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    receipts: dict[str, tuple[str, str]] = field(default_factory=dict)  # text -> (id, number)
    refused: dict[str, int] = field(default_factory=dict)  # text -> status
    # Refused with a 503 "Outcome unknown": the database was lost during the COMMIT and
    # could not say in time whether the comment was stored (either is right).
    unknown: set[str] = field(default_factory=set)
    unanswered: list[str] = field(default_factory=list)  # never answered, given up on
    cut_off: list[str] = field(default_factory=list)  # each try whose answer never came
    retried: set[str] = field(default_factory=set)  # posts sent again with their key
    replayed: set[str] = field(default_factory=set)  # answered "Idempotent-Replayed: true"
    keys: bool = False  # the posters send Idempotency-Keys and send posts again

    def answered(self) -> int:
        """Posts answered so far, with a receipt or a refusal."""
        with self.lock:
            return len(self.receipts) + len(self.refused)


def children(parent: int) -> set[int]:
    """The live child processes of ``parent`` (gunicorn's web processes), from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The command may hold spaces and parentheses; the fields after its last ")" don't.
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == parent and fields[0] != "Z":
            found.add(int(entry.name))
    return found


def posts_in_flight(pid: int, port: int) -> int:
    """How many clients' connections to ``port`` the process ``pid`` holds open now (each
    drill post has a connection of its own, so each is a post being read or answered)."""
    sockets = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = os.readlink(fd)
            if target.startswith("socket:["):
                sockets.add(target[8:-1])
    except OSError:
        return 0
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # local address "IP:PORT" in hex, state 01 = ESTABLISHED, inode
            if (int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01"
                    and fields[9] in sockets):
                count += 1
    return count


def replaced(master: int, victim: int, count: int, timeout: float = 60) -> None:
    """Wait until ``master`` again has ``count`` web processes, ``victim`` not among them."""
    wait_until(lambda: len(children(master) - {victim}) >= count, timeout=timeout,
               what="gunicorn to replace its web process", interval=0.02)


def poster(port: int, path: str, name: str, stop: threading.Event, out: Outcomes) -> None:
    """Post comments until ``stop`` is set, each on a connection of its own (as residents
    come, so that every web process has posts in flight); record what each one got. With
    ``out.keys``, a post whose answer was lost or was a 503 is sent again with its key."""
    number = 0
    while not stop.is_set():
        number += 1
        text = f"Drill comment {name}-{number}: keep the footage no longer than 30 days."
        body = json.dumps({"body": text, "email": f"{name}@example.org",
                           "position": ("support", "oppose", "neutral")[number % 3]})
        headers = {"Content-Type": "application/json", "Connection": "close"}
        if out.keys:
            headers["Idempotency-Key"] = str(uuid.uuid4())
        for tries in range(1, MAX_TRIES + 1):
            answer = send_post(port, path, body, headers)
            again = out.keys and tries < MAX_TRIES and (
                answer is None or answer[0] == 503)
            with out.lock:
                if again:
                    out.retried.add(text)
                if answer is None:
                    out.cut_off.append(text)
                    if not again:
                        out.unanswered.append(text)
                elif not again:
                    record_answer(out, text, *answer)
            if not again:
                break
            time.sleep(0.05 * tries)  # the client's backoff before sending it again


def send_post(port: int, path: str, body: str, headers: dict[str, str]
          ) -> tuple[int, bytes, bool] | None:
    """One try of a post: its status, body and whether it was replayed; None if the
    answer never came."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("POST", path, body=body, headers=headers)
        answer = connection.getresponse()
        return (answer.status, answer.read(),
                answer.getheader("Idempotent-Replayed") == "true")
    except _LOST:
        return None
    finally:
        connection.close()


def record_answer(out: Outcomes, text: str, status: int, content: bytes, replayed: bool) -> None:
    """A post's last answer (``out.lock`` held)."""
    if status == 201:
        receipt = json.loads(content)
        out.receipts[text] = (receipt["id"], receipt["tracking_number"])
        if replayed:
            out.replayed.add(text)
    else:
        out.refused[text] = status
        if status == 503 and b'"Outcome unknown"' in content:
            out.unknown.add(text)


def verify(app: Any, review_id: str, out: Outcomes) -> dict[str, Any]:
    """Every answer the posters got, checked against the database; ``sound`` is the verdict
    (no receipt lost, nothing stored twice, each comment with its one event, no gap in the
    log, nothing refused yet stored, no server error but 503, an intact SQLite file)."""
    backend = str(app.config["DATABASE_URL"]).split(":", 1)[0].split("+", 1)[0]
    stored = {row[0]: (row[1], row[2]) for row in query(
        app, "SELECT body, id, tracking_number FROM comment WHERE review_id = :r",
        r=review_id)}
    stored_count = query(app, "SELECT count(*) FROM comment WHERE review_id = :r",
                         r=review_id)[0][0]
    published = Counter(row[0] for row in query(
        app, "SELECT subject_id FROM event WHERE type = 'comment.published'"))
    seqs = [row[0] for row in query(app, "SELECT seq FROM event ORDER BY seq")]
    head = query(app, "SELECT last_seq FROM event_log_head")[0][0]
    integrity = (query(app, "PRAGMA integrity_check")[0][0] if backend == "sqlite"
                 else "n/a (PostgreSQL)")
    comment_ids = {ids[0] for ids in stored.values()}
    lost_receipts = [t for t, ids in out.receipts.items() if stored.get(t) != ids]
    duplicates = stored_count - len(stored)
    without_event = [i for i in comment_ids if published[i] != 1]
    orphan_events = [i for i in published if i not in comment_ids]
    gapless = seqs == list(range(1, len(seqs) + 1)) and head == len(seqs)
    # Any refusal but "outcome unknown" promises that nothing was saved.
    refused_but_stored = [t for t in out.refused if t in stored and t not in out.unknown]
    statuses = Counter(out.refused.values())
    sound = (not lost_receipts and duplicates == 0 and not without_event
             and not orphan_events and gapless and not refused_but_stored
             and not any(code >= 500 and code != 503 for code in statuses)
             and integrity in ("ok", "n/a (PostgreSQL)"))
    return {
        "receipts": len(out.receipts), "receipts_not_stored_as_given": len(lost_receipts),
        "refused_by_status": {str(k): v for k, v in sorted(statuses.items())},
        "refused_but_stored": len(refused_but_stored),
        "outcome_unknown": len(out.unknown),
        "outcome_unknown_stored": sum(1 for t in out.unknown if t in stored),
        "unanswered": len(out.unanswered),
        "unanswered_stored": sum(1 for t in out.unanswered if t in stored),
        "tries_cut_off": len(out.cut_off), "posts_sent_again": len(out.retried),
        "replayed": len(out.replayed),
        "stored": stored_count, "stored_twice": duplicates,
        "comments_without_one_event": len(without_event),
        "events_without_comment": len(orphan_events),
        "events": len(seqs), "head_seq": head, "seq_gapless": gapless,
        "sqlite_integrity": integrity, "sound": sound,
    }


def drill(folder: Path, postgres: str | None, *, kills_wanted: int, clients: int,
          database_name: str = "drill_kill_web", keys: bool = True) -> dict[str, Any]:
    """Run the drill in ``folder`` (SQLite there, or the PostgreSQL database at
    ``postgres``, dropped and created anew); its figures and verdict (``pass``). With
    ``keys``, posts carry Idempotency-Keys and are sent again until answered."""
    rng = random.Random(11)
    kills: list[dict[str, Any]] = []
    out = Outcomes(keys=keys)
    database = Database.fresh(database_name, folder, postgres)
    app = make_app(database.url)
    migrate(app)
    seed_basics(app)
    review_id = open_review(app)
    path = f"/api/v1/reviews/{review_id}/comments"
    deployment = Deployment(database, folder, shape="gunicorn", env_extra={
        "DAYLIGHT_COMMENT_RATE_LIMIT": "1000000 per minute"})
    began = time.monotonic()
    with deployment:
        deployment.start()
        master = next(p for p in deployment.procs if p.name == "gunicorn")
        stop = threading.Event()
        threads = [threading.Thread(target=poster, daemon=True,
                                    args=(deployment.port, path, f"c{i}", stop, out))
                   for i in range(clients)]
        for thread in threads:
            thread.start()
        try:
            wait_until(lambda: out.answered() >= 200, timeout=60,
                       what="the first 200 answers", interval=0.05)
            first_seen: dict[int, float] = {}
            give_up = time.monotonic() + 60 * kills_wanted
            while len(kills) < kills_wanted:
                time.sleep(rng.uniform(0.3, 1.2))  # a random moment, by design
                now = time.monotonic()
                for pid in children(master.pid):
                    first_seen.setdefault(pid, now)
                alive = sorted(first_seen.keys() & children(master.pid))
                # One that has had time to start and take posts (a fresh one boots for
                # about half a second); the others must wait for their turn.
                # ... and that is serving posts at this moment: a kill must cut some off.
                ready = [pid for pid in alive if now - first_seen[pid] >= BOOT_SECONDS
                         and posts_in_flight(pid, deployment.port)]
                if not ready:
                    if now > give_up:
                        raise TimeoutError("no web process was serving posts to kill")
                    continue
                victim = rng.choice(ready)
                answered, lost = out.answered(), len(out.cut_off)
                os.kill(victim, signal.SIGKILL)
                kills.append({"after_seconds": round(time.monotonic() - began, 2),
                              "pid": victim, "answered_before": answered,
                              "cut_off_before": lost})
                # gunicorn's master notices and starts another web process.
                replaced(master.pid, victim, len(alive))
            # After the last kill, residents' posts are still taken.
            after_last = out.answered()
            wait_until(lambda: out.answered() >= after_last + 200, timeout=60,
                       what="200 more answers after the last kill", interval=0.05)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=90)
        recovered = out.answered() - after_last
    # What each kill cost: the tries cut off between it and the next.
    marks = [k["cut_off_before"] for k in kills] + [len(out.cut_off)]
    for kill, later in zip(kills, marks[1:], strict=True):
        kill["cut_off_by_it"] = later - kill["cut_off_before"]
    checked = verify(app, review_id, out)
    from registry.database import engine

    engine(app).dispose()
    # With keys every post ends with an answer: none is left to guess about.
    passed = (len(kills) == kills_wanted and checked.pop("sound") and recovered >= 200
              and not (keys and checked["unanswered"]))
    return {
        "parameters": {"kills": kills_wanted, "clients": clients, "idempotency_keys": keys,
                       "deployment": deployment.describe()},
        "kills": kills, **checked, "answers_after_last_kill": recovered,
        "seconds": round(time.monotonic() - began, 1),
        "pass": passed,
    }


def main() -> None:
    """Run the drill, write its result; print its verdict line last."""
    parse = parser(__doc__ or "")
    parse.add_argument("--kills", type=int, default=None)
    parse.add_argument("--clients", type=int, default=8)
    parse.add_argument("--no-keys", dest="keys", action="store_false",
                       help="post without Idempotency-Keys and never send a post again")
    args = parse.parse_args()
    machine = machine_info()
    with workspace("drill_kill_web", args.keep) as folder:
        figures = drill(folder, args.postgres, kills_wanted=args.kills or (
            3 if args.quick else 8), clients=args.clients, keys=args.keys)
    figures["parameters"]["quick"] = args.quick
    r = write_result("drill_kill_web", {"machine": machine, **figures})
    print(f"{'PASS' if r['pass'] else 'FAIL'} kill_web: {len(r['kills'])} kill -9 of a web "
          f"process; {r['receipts']} receipts, {r['receipts_not_stored_as_given']} not stored "
          f"as given; {r['tries_cut_off']} tries cut off, {r['posts_sent_again']} posts sent "
          f"again, {r['replayed']} replayed; {r['unanswered']} unanswered "
          f"({r['unanswered_stored']} of them stored); "
          f"{r['stored_twice']} stored twice; {r['comments_without_one_event']} comments "
          f"without one event, {r['events_without_comment']} events without a comment; seq "
          f"gapless: {r['seq_gapless']}; refused {r['refused_by_status']}, "
          f"{r['refused_but_stored']} of them stored; {r['answers_after_last_kill']} answers "
          f"after the last kill; integrity {r['sqlite_integrity']}")


if __name__ == "__main__":
    main()
