"""DriverStatement: rows stored and read exactly as ``Connection.execute`` would, errors
raised as SQLAlchemy's, inside the connection's own transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from registry.events.head import next_seq_statement
from registry.events.models import Event, LogHead
from registry.statements import DriverStatement

INSERT_EVENT = DriverStatement(insert(Event))


def event_row(event_id: str, seq: int, **changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": event_id, "seq": seq, "type": "comment.published",
        # Not UTC on purpose: the type's bind processor must convert it.
        "timestamp": datetime(2026, 12, 6, 9, 30, 15, 123456,
                              tzinfo=timezone(timedelta(hours=-8))),
        "subject_type": "comment", "subject_id": "cmt_1", "technology_id": None,
        "data": {"comment": {"body": "Ünïcode ✓ and \"quotes\"", "n": 3}, "list": [1, None]},
    }
    row.update(changes)
    return row


def stored(engine: Engine, event_id: str) -> Event:
    with Session(engine) as session:
        event = session.get(Event, event_id)
        assert event is not None
        session.expunge(event)
        return event


def test_rows_are_stored_as_core_stores_them(engine: Engine) -> None:
    with engine.begin() as connection:
        INSERT_EVENT.executemany(connection, [event_row("evt_driver", 1),
                                              event_row("evt_driver2", 2, technology_id="t")])
        connection.execute(insert(Event), [event_row("evt_core", 3)])
    ours, core = stored(engine, "evt_driver"), stored(engine, "evt_core")
    assert ours.timestamp == core.timestamp == datetime(2026, 12, 6, 17, 30, 15, 123456,
                                                        tzinfo=UTC)
    assert ours.data == core.data == event_row("x", 0)["data"]
    assert (ours.type, ours.subject_id, ours.technology_id) == ("comment.published", "cmt_1",
                                                                None)
    assert stored(engine, "evt_driver2").technology_id == "t"


def test_results_go_through_the_types(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(insert(Event), [event_row("evt_a", 1)])
    read = DriverStatement(select(col(Event.id), col(Event.timestamp), col(Event.data))
                           .where(col(Event.id) == bindparam("id")))
    with engine.connect() as connection:
        rows = read.execute(connection, {"id": "evt_a"})
        assert read.execute(connection, {"id": "evt_missing"}) == []
    assert rows == [("evt_a", datetime(2026, 12, 6, 17, 30, 15, 123456, tzinfo=UTC),
                     event_row("x", 0)["data"])]


def test_the_log_head_statement_takes_numbers(engine: Engine) -> None:
    take = DriverStatement(next_seq_statement(engine.dialect.name))
    with engine.begin() as connection:
        before = connection.execute(select(col(LogHead.last_seq))).scalar_one()
        assert take.execute(connection, {"count": 3})[0][0] == before + 3
        assert take.execute(connection, {"count": 1})[0][0] == before + 4


def test_a_conflict_is_sqlalchemys_error_and_the_transaction_rolls_back(
        engine: Engine) -> None:
    with pytest.raises(IntegrityError), engine.begin() as connection:
        INSERT_EVENT.executemany(connection, [event_row("evt_new", 10)])
        INSERT_EVENT.executemany(connection, [event_row("evt_new", 11)])
    with engine.connect() as connection:
        assert connection.execute(select(col(Event.id))).all() == []
    with engine.begin() as connection:  # the pool's connections are usable again
        INSERT_EVENT.executemany(connection, [event_row("evt_new", 10)])
    assert stored(engine, "evt_new").seq == 10


def test_missing_values_and_column_defaults_are_refused(engine: Engine) -> None:
    # The first row names the columns; a later row without one of them is refused.
    row = event_row("evt_y", 2)
    del row["data"]
    with engine.begin() as connection, pytest.raises(KeyError, match="data"):
        INSERT_EVENT.executemany(connection, [event_row("evt_x", 1), row])
    # Comment.flag_count has a Python-side default: SQLAlchemy's to fill, so refused.
    from registry.comments.models import Comment

    with engine.begin() as connection, pytest.raises(ValueError, match="flag_count"):
        DriverStatement(insert(Comment)).executemany(connection, [{"id": "cmt_1"}])
