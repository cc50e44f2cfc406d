"""Core statements compiled once and run on the driver's cursor, for the hottest writes.

A comment surge writes a comment, its contact row and its event for every post, in groups
of one to a few. Through ``Connection.execute`` each statement costs about 0.1 ms of Python
(the compiled cache's key, the execution context, parameter and type processing, the result
object) before the driver runs it in a few microseconds: for a group of one, SQLAlchemy's
share was twice that of the database (``docs/performance.md``).

A ``DriverStatement`` keeps SQLAlchemy's part where it matters and skips the rest:

- the SQL is SQLAlchemy's own, compiled once per dialect (and per set of inserted columns);
- every value goes through the type's own bind processor, and every result value through its
  result processor, so rows are stored and read exactly as ``Connection.execute`` would;
- a driver error is raised as SQLAlchemy's (``IntegrityError``, ``OperationalError``…), with
  ``connection_invalidated`` set and the connection invalidated when the driver lost it, so
  callers handle it as any other;
- it runs inside the ``Connection``'s own transaction (begun and committed by SQLAlchemy, so
  the SQLite writer's turn and ``BEGIN IMMEDIATE`` still apply).

It takes only plain statements: no expanding ``IN``, and an insert must be given every column
(a Python-side column default is SQLAlchemy's to fill, so such a statement is refused).
SQLAlchemy's cursor events and ``echo`` do not see these statements.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement

_Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    positional: bool
    # (name, processor, literal): a parameter by name in the given values, else the
    # statement's own literal (``WHERE id = 1``).
    binds: tuple[tuple[str, _Processor, Any], ...]
    required: frozenset[str]
    results: tuple[_Processor, ...]


class DriverStatement:
    """A Core statement run on the DBAPI cursor of a ``Connection`` (see the module)."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, tuple[str, ...]], _Compiled] = {}
        self._lock = threading.Lock()

    def execute(self, connection: Connection, values: Mapping[str, Any] | None = None
                ) -> list[tuple[Any, ...]]:
        """Run once with ``values``; returns the rows (result values processed)."""
        compiled = self._for(connection.dialect, tuple(values or ()))
        parameters = _parameters(compiled, values or {})
        rows = _run(connection, compiled, parameters, many=False)
        if not compiled.results:
            return rows
        return [tuple(value if process is None else process(value)
                      for process, value in zip(compiled.results, row, strict=True))
                for row in rows]

    def executemany(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run for each of ``rows`` (all with the same keys), in one driver call."""
        if not rows:
            return
        compiled = self._for(connection.dialect, tuple(rows[0]))
        _run(connection, compiled, [_parameters(compiled, row) for row in rows], many=True)

    def _for(self, dialect: Dialect, keys: tuple[str, ...]) -> _Compiled:
        key = (dialect.name, keys)
        compiled = self._compiled.get(key)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(key) or _compile(self.statement, dialect, keys)
                self._compiled[key] = compiled
        return compiled


def _compile(statement: ClauseElement, dialect: Dialect, keys: tuple[str, ...]) -> _Compiled:
    compiled: Any = statement.compile(dialect=dialect, column_keys=list(keys) or None)
    if compiled.insert_prefetch or compiled.update_prefetch:
        names = [column.key for column in compiled.insert_prefetch + compiled.update_prefetch]
        raise ValueError(f"give every column: SQLAlchemy would fill in {names}")
    by_name = {name: bind for bind, name in compiled.bind_names.items()}
    if any(bind.expanding for bind in by_name.values()):
        raise ValueError("expanding IN parameters are not supported")
    order = compiled.positiontup if compiled.positional else list(by_name)
    binds = []
    for name in order:
        bind = by_name[name]
        binds.append((name, bind.type.dialect_impl(dialect).bind_processor(dialect),
                      None if bind.required else bind.value))
    results = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None)
                    for column in getattr(statement, "exported_columns", ()))
    return _Compiled(compiled.string, compiled.positional, tuple(binds),
                     frozenset(name for name, bind in by_name.items() if bind.required),
                     results if any(results) else ())


def _parameters(compiled: _Compiled, values: Mapping[str, Any]) -> Any:
    missing = compiled.required.difference(values)
    if missing:
        raise KeyError(f"no value for {sorted(missing)}")
    processed = []
    for name, process, literal in compiled.binds:
        value = values[name] if name in values else literal
        processed.append(value if process is None else process(value))
    if compiled.positional:
        return tuple(processed)
    return {name: value for (name, _process, _literal), value in zip(compiled.binds,
                                                                       processed, strict=True)}


def _run(connection: Connection, compiled: _Compiled, parameters: Any, *,
         many: bool) -> list[tuple[Any, ...]]:
    dialect = connection.dialect
    dbapi_connection = connection.connection.dbapi_connection
    assert dbapi_connection is not None
    cursor = dbapi_connection.cursor()
    try:
        if many and len(parameters) > 1:
            cursor.executemany(compiled.sql, parameters)
            return []
        if many:
            # One row: psycopg's executemany enters its pipeline mode, whose machinery cost
            # more than the insert (measured under a surge, where most groups are of one).
            parameters = parameters[0]
        cursor.execute(compiled.sql, parameters)
        return [tuple(row) for row in cursor.fetchall()] if cursor.description else []
    except dialect.loaded_dbapi.Error as exc:
        lost = dialect.is_disconnect(exc, dbapi_connection, cursor)
        if lost:
            connection.invalidate(exc)
        raise DBAPIError.instance(compiled.sql, parameters, exc, dialect.loaded_dbapi.Error,
                                  connection_invalidated=lost, dialect=dialect) from exc
    finally:
        # A cursor of a lost connection may fail to close; the error above is the one to see.
        with contextlib.suppress(dialect.loaded_dbapi.Error):
            cursor.close()
