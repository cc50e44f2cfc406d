"""The crash drills, small enough for every run of the suite.

``bench.drills.kill_web`` kills gunicorn's web processes with SIGKILL while residents post
comments (each with an Idempotency-Key, sent again until answered), then checks every
answer against the database; here with three kills on each database.
``bench.drills.db_restart`` crash-restarts a PostgreSQL server of its own under the same
posts and also checks that every comment's webhook arrives; here twice. A receipt for a
comment that is not stored, a comment without its event, a gap in the log, a post stored
twice, a post left without an answer or a webhook that never comes fails the test.
``bench.drills.disk_full`` fills the disk under SQLite while residents post, then frees it.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from bench.common import workspace
from bench.drills import db_restart, disk_full
from bench.drills.db_restart import server_program
from bench.drills.kill_web import drill
from tests.conftest import postgres_only
from tests.db import postgres_url


def test_no_receipt_is_lost_when_web_processes_are_killed(backend: str, tmp_path: Path):
    postgres = None
    if backend == "postgresql":
        # A database of its own: the drill drops and creates it, and the suite's database
        # must stay as the other tests left it.
        server = make_url(postgres_url())
        postgres = server.set(database=f"{server.database}_drill").render_as_string(
            hide_password=False)
    result = drill(tmp_path, postgres, kills_wanted=3, clients=8)

    assert len(result["kills"]) == 3
    # The kills cut off posts in flight (the drill kills only a process holding clients'
    # connections; one may be a post just answered, so not every kill need cut one off).
    assert result["tries_cut_off"] >= 1, result["kills"]
    # Each post cut off was sent again with its Idempotency-Key until it had an answer:
    # none is left unanswered, and one whose first try was stored got that receipt.
    assert result["posts_sent_again"] >= 1
    assert result["unanswered"] == 0
    assert result["replayed"] <= result["posts_sent_again"]
    assert result["receipts"] >= 400
    assert result["receipts_not_stored_as_given"] == 0
    assert result["stored_twice"] == 0
    assert result["comments_without_one_event"] == 0
    assert result["events_without_comment"] == 0
    assert result["seq_gapless"]
    assert result["refused_but_stored"] == 0
    # A busy database may refuse a post (503, nothing saved); nothing else may fail.
    assert not [code for code in result["refused_by_status"]
                if int(code) >= 500 and code != "503"]
    # Every stored comment is one a resident holds a receipt for (or was told its outcome
    # was unknown): none is unaccounted for.
    assert result["stored"] == result["receipts"] + result["outcome_unknown_stored"]
    assert result["answers_after_last_kill"] >= 200
    assert result["sqlite_integrity"] in ("ok", "n/a (PostgreSQL)")
    assert result["pass"]


@postgres_only
def test_nothing_is_lost_and_webhooks_go_on_when_postgresql_crashes_and_restarts(backend):
    # A server of the drill's own, crash-restarted twice under posts: run where the suite
    # runs on PostgreSQL, as root (the server runs as ``postgres``) or as ``postgres``.
    postgres_url()
    if server_program("initdb") is None or (
            os.geteuid() != 0 and getpass.getuser() != "postgres"):
        pytest.skip("needs PostgreSQL's server programs, run as root or postgres")
    with workspace("test_db_restart") as folder:  # not tmp_path: postgres must reach it
        result = db_restart.drill(folder, restarts_wanted=2, clients=8)

    assert len(result["restarts"]) == 2
    assert result["receipts"] >= 900
    assert result["receipts_not_stored_as_given"] == 0
    assert result["refused_but_stored"] == 0  # a 503 "nothing was saved" means it
    assert result["stored_twice"] == 0
    assert result["comments_without_one_event"] == 0
    assert result["seq_gapless"]
    assert result["stored"] == (result["receipts"] + result["unanswered_stored"]
                                + result["outcome_unknown_stored"])
    # Every comment's event reached both endpoints, soon: no claim waited out its lease.
    assert result["webhooks_missing"] == 0
    assert result["webhooks_all_arrived_seconds_after_posting_stopped"] < 30
    assert result["healthz_after"]
    assert result["pass"]


def test_a_full_disk_refuses_posts_with_503_and_loses_nothing(tmp_path: Path):
    # SQLite on a tmpfs of 8 MB filled by posts of 2,000 characters, then grown: mounting
    # needs root (as CI runs here).
    if not disk_full.can_mount():
        pytest.skip("mounts a tmpfs: needs root")
    result = disk_full.drill(tmp_path, size_mb=8, clients=4)

    full = result["while_full"]
    assert result["receipts_before_full"] >= 50
    # Refused only with 503 "nothing was saved", and none of those stored; never a 500.
    assert full["refused_by_status"] == {"503": full["refused_by_status"]["503"]}
    assert full["outcome_unknown"] == 0 and full["unanswered"] == 0
    assert full["refused_but_stored"] == 0
    assert full["receipts_not_stored_as_given"] == 0
    assert full["stored"] == full["receipts"]
    assert full["stored_twice"] == 0 and full["comments_without_one_event"] == 0
    assert full["seq_gapless"] and full["sqlite_integrity"] == "ok"
    assert full["read_status"] == 200
    # Space freed: taken again without a restart, the file intact.
    freed = result["after_space_freed"]
    assert freed["receipts"] >= 100 and freed["healthz_status"] == 200
    assert freed["receipts_not_stored_as_given"] == 0
    assert freed["stored"] == full["stored"] + freed["receipts"]
    assert freed["sqlite_integrity"] == "ok"
    assert result["pass"]
