"""Drill 7: the disk fills up under a SQLite deployment while residents post comments.

On one machine with SQLite, a full disk is the outage most likely to happen. The drill puts
Daylight's SQLite file (with its WAL and lock file) on a small tmpfs of its own
(``mount -t tmpfs -o size=N``; needs root), runs Daylight as deployed (gunicorn with the
Procfile's settings beside its worker) with the comment limit lifted, and has client
threads post comments of 2,000 characters, each with a text of its own and never sent
again, until the disk is full and posts are refused. Then, with the disk still full:

- every answer is checked against the database as in ``kill_web``: every receipt stored as
  given, nothing stored twice, each comment with its one event, the log without a gap, no
  post refused but stored, no server error but 503, and ``PRAGMA integrity_check`` ok;
- the refusals are 503 "nothing was saved", never a 500, and reads still answer.

Then the tmpfs is grown (``mount -o remount,size=…``, as an operator frees space), posts are
taken again without a restart, and ``/healthz`` answers 200.

    python -m bench.drills.disk_full [--size-mb N] [--clients N]
"""

from __future__ import annotations

import json
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
    machine_info,
    make_app,
    migrate,
    parser,
    seed_basics,
    wait_until,
    workspace,
    write_result,
)
from bench.drills.kill_web import Outcomes, record_answer, send_post, verify

#: A comment's text is this long: the disk fills in a few seconds.
TEXT_LENGTH = 2_000
#: Refusals in a row, with no receipt among them, that say the disk is full.
FULL_AFTER = 50


def can_mount() -> bool:
    """Whether this process may mount a tmpfs (root, or the capability)."""
    probe = Path("/tmp") / f"daylight-mount-probe-{time.monotonic_ns()}"
    probe.mkdir()
    try:
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "daylight-probe",
                           str(probe)], capture_output=True).returncode != 0:
            return False
        subprocess.run(["umount", str(probe)], check=True)
        return True
    except OSError:
        return False
    finally:
        probe.rmdir()


def poster(port: int, path: str, name: str, stop: threading.Event, out: Outcomes,
           streak: list[int]) -> None:
    """Post long comments until ``stop``, each once (``kill_web``'s sending and recording);
    count refusals in a row (``streak[0]``, reset by a receipt)."""
    headers = {"Content-Type": "application/json", "Connection": "close"}
    number = 0
    while not stop.is_set():
        number += 1
        head = f"Disk drill {name}-{number}: "
        text = (head + "keep the footage no longer than 30 days. " * (
            (TEXT_LENGTH - len(head)) // 41)).strip()  # stored as the schema strips it
        answer = send_post(port, path, json.dumps({"body": text}), headers)
        with out.lock:
            if answer is None:
                out.unanswered.append(text)
                out.cut_off.append(text)
                continue
            record_answer(out, text, *answer)
            streak[0] = 0 if answer[0] == 201 else streak[0] + 1


def drill(folder: Path, *, size_mb: int, clients: int) -> dict[str, Any]:
    """Run the drill in ``folder`` (the database on a ``size_mb`` tmpfs mounted in it); its
    figures and verdict (``pass``)."""
    disk = folder / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "daylight-drill",
                    str(disk)], check=True)
    began = time.monotonic()
    try:
        database = Database(f"sqlite:///{disk / 'drill.db'}", "sqlite")
        app = make_app(database.url)
        migrate(app)
        seed_basics(app)
        review_id = open_review(app)
        path = f"/api/v1/reviews/{review_id}/comments"
        out = Outcomes()
        streak = [0]
        deployment = Deployment(database, folder, shape="gunicorn", env_extra={
            "DAYLIGHT_COMMENT_RATE_LIMIT": "1000000 per minute"})
        with deployment:
            deployment.start()
            stop = threading.Event()
            threads = [threading.Thread(target=poster, daemon=True, args=(
                deployment.port, path, f"c{i}", stop, out, streak)) for i in range(clients)]
            for thread in threads:
                thread.start()
            try:
                wait_until(lambda: streak[0] >= FULL_AFTER and len(out.receipts) > 0,
                           timeout=300, what="the disk to fill", interval=0.05)
            finally:
                stop.set()
                for thread in threads:
                    thread.join(timeout=90)
            full_at = round(time.monotonic() - began, 1)
            receipts_when_full = len(out.receipts)
            # Reads still answer while no write can be taken.
            read_while_full = requests.get(
                f"{deployment.base}/api/v1/reviews/{review_id}/comments?limit=5",
                timeout=30).status_code
            health_while_full = requests.get(f"{deployment.base}/healthz",
                                             timeout=30).status_code
            checked = verify(app, review_id, out)
            # The operator frees space: posts are taken again, without a restart.
            subprocess.run(["mount", "-o", f"remount,size={size_mb * 8}m", str(disk)],
                           check=True)
            after = Outcomes()
            streak_after = [0]
            stop_after = threading.Event()
            threads = [threading.Thread(target=poster, daemon=True, args=(
                deployment.port, path, f"d{i}", stop_after, after, streak_after))
                for i in range(clients)]
            for thread in threads:
                thread.start()
            try:
                wait_until(lambda: len(after.receipts) >= 100, timeout=60,
                           what="100 comments taken after space was freed", interval=0.05)
            finally:
                stop_after.set()
                for thread in threads:
                    thread.join(timeout=90)
            health_after = requests.get(f"{deployment.base}/healthz", timeout=30).status_code
            out.receipts.update(after.receipts)
            out.refused.update(after.refused)
            out.unanswered.extend(after.unanswered)
            final = verify(app, review_id, out)
        from registry.database import engine

        engine(app).dispose()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
    refused = checked["refused_by_status"]
    passed = (checked.pop("sound") and final.pop("sound") and set(refused) == {"503"}
              and checked["outcome_unknown"] == 0 and checked["unanswered"] == 0
              and read_while_full == 200 and health_after == 200
              and len(after.receipts) >= 100)
    return {
        "parameters": {"tmpfs_mb": size_mb, "clients": clients,
                       "comment_characters": TEXT_LENGTH,
                       "deployment": deployment.describe()},
        "seconds_until_full": full_at, "receipts_before_full": receipts_when_full,
        "while_full": {**checked, "read_status": read_while_full,
                       "healthz_status": health_while_full},
        "after_space_freed": {"receipts": len(after.receipts),
                              "refused": len(after.refused), "healthz_status": health_after,
                              "stored": final["stored"],
                              "receipts_not_stored_as_given": final[
                                  "receipts_not_stored_as_given"],
                              "stored_twice": final["stored_twice"],
                              "seq_gapless": final["seq_gapless"],
                              "sqlite_integrity": final["sqlite_integrity"]},
        "seconds": round(time.monotonic() - began, 1),
        "pass": passed,
    }


def main() -> None:
    """Run the drill, write its result; print its verdict line last."""
    parse = parser(__doc__ or "")
    parse.add_argument("--size-mb", type=int, default=8)
    parse.add_argument("--clients", type=int, default=4)
    args = parse.parse_args()
    if args.postgres:
        parse.error("this drill runs on SQLite only")
    if not can_mount():
        parse.error("this drill mounts a tmpfs: run it as root")
    machine = machine_info()
    with workspace("drill_disk_full", args.keep) as folder:
        figures = drill(folder, size_mb=args.size_mb, clients=args.clients)
    r = write_result("drill_disk_full", {"machine": machine, **figures})
    full, freed = r["while_full"], r["after_space_freed"]
    print(f"{'PASS' if r['pass'] else 'FAIL'} disk_full: the {r['parameters']['tmpfs_mb']} MB "
          f"disk full after {r['seconds_until_full']} s and {r['receipts_before_full']} "
          f"receipts; refused {full['refused_by_status']}, {full['refused_but_stored']} of "
          f"them stored; {full['receipts_not_stored_as_given']} receipts not stored as given; "
          f"{full['stored_twice']} stored twice; seq gapless: {full['seq_gapless']}; "
          f"integrity {full['sqlite_integrity']}; reads while full {full['read_status']}; "
          f"after space was freed {freed['receipts']} receipts, healthz "
          f"{freed['healthz_status']}, integrity {freed['sqlite_integrity']}")


if __name__ == "__main__":
    main()
