"""SQLite writers wait their turn in line (a lock across threads and processes), and a
transaction always gives its turn back, however it ends."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from registry.db import CHECKPOINTS, Checkpointer, make_engine, read_only

HOLD_LOCK = """
import fcntl, sys
fd = open(sys.argv[1], "a+")
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'writers.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE note (n INTEGER)"))
    yield engine
    engine.dispose()


def write_in_thread(engine: Engine, value: int) -> threading.Event:
    """Insert ``value`` in a write transaction on another thread; set when committed."""
    done = threading.Event()

    def run() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO note VALUES (:n)"), {"n": value})
        done.set()

    threading.Thread(target=run, daemon=True).start()
    return done


def notes(engine: Engine) -> list[int]:
    with read_only(), engine.connect() as conn:
        return [row[0] for row in conn.execute(text("SELECT n FROM note ORDER BY n"))]


def test_a_second_writer_waits_for_the_first_to_commit(sqlite_engine):
    with sqlite_engine.begin() as conn:
        conn.execute(text("INSERT INTO note VALUES (1)"))
        second = write_in_thread(sqlite_engine, 2)
        assert not second.wait(0.3)  # still waiting its turn
        assert notes(sqlite_engine) == []  # readers are never held up
    assert second.wait(10)
    assert notes(sqlite_engine) == [1, 2]


def test_a_rolled_back_or_failed_transaction_gives_its_turn_back(sqlite_engine):
    with pytest.raises(RuntimeError), sqlite_engine.begin() as conn:
        conn.execute(text("INSERT INTO note VALUES (1)"))
        raise RuntimeError("the request failed")
    with pytest.raises(OperationalError), sqlite_engine.begin() as conn:
        conn.execute(text("INSERT INTO missing_table VALUES (1)"))
    assert write_in_thread(sqlite_engine, 3).wait(10)
    assert notes(sqlite_engine) == [3]


def test_a_writer_in_another_process_holds_the_line(sqlite_engine, tmp_path):
    lock_file = f"{tmp_path / 'writers.db'}-lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, lock_file],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        waiting = write_in_thread(sqlite_engine, 4)
        assert not waiting.wait(0.3)  # SQLite alone would not know to wait
        assert holder.stdin is not None
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert waiting.wait(10)
    finally:
        holder.kill()
        holder.wait(timeout=10)
    assert notes(sqlite_engine) == [4]


def test_engines_on_one_file_share_the_line(sqlite_engine, tmp_path):
    other = make_engine(f"sqlite:///{tmp_path / 'writers.db'}")
    try:
        with sqlite_engine.begin() as conn:
            conn.execute(text("INSERT INTO note VALUES (5)"))
            waiting = write_in_thread(other, 6)
            assert not waiting.wait(0.3)
        assert waiting.wait(10)
    finally:
        other.dispose()
    assert notes(sqlite_engine) == [5, 6]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_writer_kept_waiting_too_long_gets_a_503_and_nothing_is_saved(
        app, client, staff, monkeypatch):
    from registry.database import engine
    from tests.conftest import technology_fields

    monkeypatch.setattr("registry.db.BUSY_TIMEOUT_SECONDS", 0.2)
    with engine(app).begin() as conn:  # another writer holds its turn throughout
        conn.execute(text("SELECT 1"))
        response = client.post("/api/v1/technologies", json=technology_fields(), headers=staff)
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"] == "1"
    assert client.get("/api/v1/technologies", headers=staff).get_json()["items"] == []


def test_a_writer_outside_the_line_fails_the_begin_with_sqlalchemys_error(
        sqlite_engine, tmp_path, monkeypatch):
    # Another program on the file (the sqlite3 shell, a backup) holds SQLite's own write
    # lock without Daylight's line: BEGIN IMMEDIATE fails after the busy timeout with the
    # error the app answers with a 503, and the turn in the line is given back.
    monkeypatch.setattr("registry.db.BUSY_TIMEOUT_SECONDS", 0.2)
    database = tmp_path / "writers.db"
    impatient = make_engine(f"sqlite:///{database}")  # its connections wait 0.2 s
    try:
        foreign = sqlite3.connect(database, isolation_level=None)
        foreign.execute("BEGIN IMMEDIATE")
        with pytest.raises(OperationalError, match="database is locked"), \
                impatient.begin() as conn:
            conn.execute(text("INSERT INTO note VALUES (7)"))
        foreign.execute("ROLLBACK")
        foreign.close()
        assert write_in_thread(sqlite_engine, 8).wait(10)  # the line was not left held
        assert notes(sqlite_engine) == [8]
    finally:
        impatient.dispose()


def wait_for(condition, timeout: float = 10.0) -> bool:
    """Poll ``condition`` until it holds or the deadline passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def notes_in_database_file(database: Path, folder: Path) -> list[int] | None:
    """The notes the database file itself holds, without its write-ahead log: what a
    checkpoint has copied there (None when not even the table has been)."""
    copy = folder / "file-only.db"
    shutil.copyfile(database, copy)
    connection = sqlite3.connect(copy)
    try:
        if connection.execute("SELECT count(*) FROM sqlite_master WHERE name = 'note'"
                              ).fetchone()[0] == 0:
            return None
        return [row[0] for row in connection.execute("SELECT n FROM note ORDER BY n")]
    except sqlite3.DatabaseError:
        return None  # copied halfway through a checkpoint's writes
    finally:
        connection.close()


def test_commits_are_checkpointed_by_the_checkpoint_thread_not_by_sqlite(
        tmp_path, monkeypatch):
    monkeypatch.setattr("registry.db.CHECKPOINT_EVERY", 4)
    database = tmp_path / "writers.db"
    engine = make_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as conn:
            # SQLite's own checkpoint, inside the committing writer's turn, is off.
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one() == 0
        with engine.begin() as conn:  # the process's first write commit on this file
            conn.execute(text("CREATE TABLE note (n INTEGER)"))
        for value in (1, 2):
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO note VALUES (:n)"), {"n": value})
        # Three commits: still only in the write-ahead log.
        assert notes_in_database_file(database, tmp_path) is None
        with engine.begin() as conn:  # the fourth asks for a checkpoint
            conn.execute(text("INSERT INTO note VALUES (3)"))
        # (Waiting on this file's rows, not on the process's count of checkpoints, which
        # another test's file may move.)
        assert wait_for(lambda: notes_in_database_file(database, tmp_path) == [1, 2, 3])
        assert notes(engine) == [1, 2, 3]
    finally:
        engine.dispose()


def test_a_checkpoint_under_way_holds_up_no_writer(sqlite_engine, tmp_path, monkeypatch):
    monkeypatch.setattr("registry.db.CHECKPOINT_EVERY", 2)
    started, finish = threading.Event(), threading.Event()
    checkpoint = Checkpointer.checkpoint

    def slow_checkpoint(self: Checkpointer, database: str) -> None:
        started.set()
        finish.wait(30)  # a checkpoint stuck on a slow disk
        checkpoint(self, database)

    monkeypatch.setattr(Checkpointer, "checkpoint", slow_checkpoint)
    try:
        # The second write commit (after the fixture's) asks for a checkpoint.
        assert write_in_thread(sqlite_engine, 1).wait(10)
        assert started.wait(10)
        # Writers go on while it is stuck (well before it could give up).
        assert write_in_thread(sqlite_engine, 2).wait(5)
        assert write_in_thread(sqlite_engine, 3).wait(5)
        assert notes(sqlite_engine) == [1, 2, 3]
    finally:
        finish.set()


def test_a_checkpoint_of_a_database_that_is_gone_creates_nothing(tmp_path, caplog):
    missing = tmp_path / "gone.db"
    checkpointer = Checkpointer()
    checkpointer.checkpoint(str(missing))
    assert not missing.exists()
    assert checkpointer.completed == 1
    assert "SQLite checkpoint" not in caplog.text  # nothing to say of a file that is gone


def test_a_failed_checkpoint_is_logged_and_the_next_one_still_runs(tmp_path, caplog):
    not_a_database = tmp_path / "notes.txt"
    not_a_database.write_text("not SQLite")
    checkpointer = Checkpointer()
    checkpointer.request(str(not_a_database))
    assert wait_for(lambda: checkpointer.completed == 1)
    assert "SQLite checkpoint of" in caplog.text
    database = tmp_path / "writers.db"
    connection = sqlite3.connect(database)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA wal_autocheckpoint=0")
        connection.execute("CREATE TABLE note (n INTEGER)")
        connection.execute("INSERT INTO note VALUES (7)")
        connection.commit()
        checkpointer.request(str(database))  # the same thread, still there
        assert wait_for(lambda: checkpointer.completed == 2)
        assert notes_in_database_file(database, tmp_path) == [7]
    finally:
        connection.close()


def test_under_steady_writes_the_log_is_started_again_and_stays_bounded(
        sqlite_engine, tmp_path, monkeypatch):
    # Every 4 commits a checkpoint; past 100 pages it finishes inside the writers' turn.
    monkeypatch.setattr("registry.db.CHECKPOINT_EVERY", 4)
    monkeypatch.setattr("registry.db.WAL_RESTART_FRAMES", 100)
    restarts = CHECKPOINTS.restarts
    for value in range(3000):  # no pause for a checkpoint beside them to catch up
        with sqlite_engine.begin() as conn:
            conn.execute(text("INSERT INTO note VALUES (:n)"), {"n": value})
    assert CHECKPOINTS.restarts > restarts
    # Without the restarts the log holds a page or more for each of the 3,000 commits
    # (12 MB or more); a log started again stays near the mark.
    wal = tmp_path / "writers.db-wal"
    assert wal.stat().st_size < 1000 * (4096 + 24)
    assert len(notes(sqlite_engine)) == 3000
