"""The crash drill for the web processes, small enough for every run of the suite.

``bench.drills.kill_web`` kills gunicorn's web processes with SIGKILL while residents post
comments, then checks every answer against the database. Here it runs with three kills on
each database: a receipt for a comment that is not stored, a comment without its event, a
gap in the log or a post stored twice fails the test.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

from bench.drills.kill_web import drill
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
    # Posts were in flight when processes died, and some were answered around the kills.
    assert result["unanswered"] >= 1, result["kills"]
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
    # Every post has an answer or was cut off: none is unaccounted for.
    assert result["stored"] == (result["receipts"] + result["unanswered_stored"]
                                + result["outcome_unknown_stored"])
    assert result["answers_after_last_kill"] >= 200
    assert result["sqlite_integrity"] in ("ok", "n/a (PostgreSQL)")
    assert result["pass"]

