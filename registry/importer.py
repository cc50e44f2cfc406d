"""Loading an existing inventory from CSV (``daylight import technologies FILE.csv``).

The format, one technology per row after a header row naming the columns:

- Columns are technology fields (``name`` and ``department`` are required; any other may be
  left out). Unknown columns are an error, so a misspelt header cannot drop a column quietly.
- ``department`` is a department's slug, and the department must exist already (add it
  with ``daylight departments add``): an unknown slug is an error for that row, because a
  typo must not invent a department.
- ``data_collected``, ``capabilities``, ``data_sharing`` and ``deployment_areas`` hold
  several values separated by ``;``.
- ``documents`` holds ``Title URL`` pairs separated by ``;`` (the URL is the last word).
- ``retention_days`` and ``annual_cost`` may be blank for "not known"; ``annual_cost`` may
  use thousands separators. ``in_use`` is ``yes``/``no`` (or ``true``/``false``, ``1``/``0``).
- A row whose name already exists in the same department (in the registry or earlier in the
  file) is an error, so importing a file twice does not double the inventory.

Every row is checked with the API's own schema before anything is written. If any row is
bad, every problem is reported with its line number and field and nothing is written; the
rows are then created in one transaction, as drafts, or submitted (and assessed) if asked.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from marshmallow import ValidationError
from sqlalchemy import select
from sqlmodel import Session, col

from registry.auth.models import Role
from registry.auth.services import Principal
from registry.departments.models import Department
from registry.errors import flatten_messages
from registry.inputs import unstorable_fields
from registry.technologies.models import RECORD_FIELDS, Technology
from registry.technologies.schemas import TechnologyIn
from registry.technologies.services import create_technology, submit_technology

IMPORTER = Principal("system", "CSV import", Role.ADMIN, None)
COLUMNS = ("name", "department", *(f for f in RECORD_FIELDS if f != "name"))
LIST_COLUMNS = ("data_collected", "capabilities", "data_sharing", "deployment_areas")


@dataclass(frozen=True)
class RowError:
    """One problem: where it is (line 1 is the header) and in which column."""

    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, {self.field}: {self.message}"


class ImportFailed(Exception):
    """The file has problems; nothing was written."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__(f"{len(errors)} problem(s) in the file")
        self.errors = errors


@dataclass(frozen=True)
class Row:
    """A validated row, ready to become a technology."""

    line: int
    fields: dict[str, Any]


#: What a file that is not UTF-8 is told (a spreadsheet's plain "CSV" is often Windows-1252).
NOT_UTF8 = ("The file is not UTF-8 text; save it as \"CSV UTF-8\" (or any UTF-8 CSV) and "
            "import it again.")


def read_rows(stream: TextIO) -> Iterator[tuple[int, dict[str, str] | RowError]]:
    """``(line number, {column: text})`` for each non-blank row after the header, or
    ``(line number, RowError)`` for a row that cannot be read as one (the rows after it
    are still read, so every problem is reported at once).

    The line number is where the row starts, so a quoted value spanning lines still points
    at the right place. A problem that stops the reading (the header, bytes that are not
    UTF-8, broken CSV) raises ``ImportFailed``.
    """
    reader = csv.reader(stream)
    try:
        header = next(reader, None)
    except UnicodeDecodeError:
        raise ImportFailed([RowError(1, "file", NOT_UTF8)]) from None
    if header is None:
        raise ImportFailed([RowError(1, "header", "The file is empty.")])
    names = [column.strip().lower() for column in header]
    unknown = [name for name in names if name not in COLUMNS]
    missing = [name for name in ("name", "department") if name not in names]
    # A column named twice would lose one of its values without a word.
    twice = sorted({name for name in names if name in COLUMNS and names.count(name) > 1})
    problems = [RowError(1, name or "(blank)", f"Unknown column. Columns are: "
                         f"{', '.join(COLUMNS)}.") for name in unknown]
    problems += [RowError(1, name, "This column is required.") for name in missing]
    problems += [RowError(1, name, "This column appears more than once.") for name in twice]
    if problems:
        raise ImportFailed(problems)
    while True:
        start = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ImportFailed([RowError(start, "file", f"Not valid CSV: {exc}.")]) from None
        except UnicodeDecodeError:
            raise ImportFailed([RowError(start, "file", NOT_UTF8)]) from None
        if not any(value.strip() for value in values):
            continue
        if len(values) > len(names):
            yield start, RowError(start, "row", f"{len(values)} values for "
                                                f"{len(names)} columns.")
            continue
        yield start, dict(zip(names, values, strict=False))


def _to_input(values: dict[str, str]) -> dict[str, Any]:
    """Text cells → the JSON-like values ``TechnologyIn`` loads; blanks are left out."""
    data: dict[str, Any] = {}
    for name, raw in values.items():
        text = raw.strip()
        if name in LIST_COLUMNS:
            data[name] = [part.strip() for part in text.split(";") if part.strip()]
        elif name == "documents":
            data[name] = [_document(part) for part in text.split(";") if part.strip()]
        elif not text:
            if name in ("retention_days", "annual_cost"):
                data[name] = None
            elif name in ("name", "department"):
                data[name] = ""
        elif name == "annual_cost":
            data[name] = text.replace(",", "")
        elif name == "retention_days" and text.isascii() and text.lstrip("-").isdigit():
            data[name] = int(text)  # a whole number of days; anything else the schema names
        else:
            data[name] = text
    return data


def _document(text: str) -> dict[str, str]:
    title, _, url = text.strip().rpartition(" ")
    return {"title": title.strip(), "url": url}


def validate_rows(session: Session,
                  rows: Iterable[tuple[int, dict[str, str] | RowError]]) -> list[Row]:
    """Check every row; raises ``ImportFailed`` with all the problems, or returns the rows."""
    departments = {d.slug: d for d in session.execute(select(Department)).scalars()}
    # Lowercased here, not by the database: SQLite's lower() folds only ASCII letters.
    existing = {(department_id, name.lower()) for department_id, name in session.execute(
        select(col(Technology.department_id), col(Technology.name)))}
    errors: list[RowError] = []
    valid: list[Row] = []
    read = iter(rows)
    while True:
        try:
            line, values = next(read)
        except StopIteration:
            break
        except ImportFailed as exc:  # the reading stopped: report it with the rest
            errors += exc.errors
            break
        if isinstance(values, RowError):
            errors.append(values)
            continue
        # A NUL passes the schema and PostgreSQL then refuses it (registry.inputs).
        unstorable = unstorable_fields(values)
        if unstorable:
            errors += [RowError(line, name, message) for name, messages
                       in unstorable.items() for message in messages]
            continue
        try:
            fields: dict[str, Any] = TechnologyIn().load(_to_input(values))
        except ValidationError as exc:
            errors += [RowError(line, name, message) for name, messages
                       in flatten_messages(exc.messages).items() for message in messages]
            continue
        department = departments.get(fields["department"])
        if department is None:
            errors.append(RowError(line, "department", f"No department with the slug "
                                   f"{fields['department']!r}; add it first with "
                                   "'daylight departments add'."))
            continue
        key = (department.id, fields["name"].lower())
        if key in existing:
            errors.append(RowError(line, "name", f"{department.name} already has a technology "
                                   f"named {fields['name']!r}."))
            continue
        existing.add(key)
        valid.append(Row(line, fields))
    if errors:
        raise ImportFailed(errors)
    return valid


def create_rows(session: Session, rows: Iterable[Row], *, submit: bool, now: datetime,
                each: Callable[[Technology], None] | None = None) -> list[Technology]:
    """Create the technologies in the caller's transaction (drafts, or submitted)."""
    created = []
    for row in rows:
        technology = create_technology(session, IMPORTER, row.fields, now=now)
        if submit:
            submit_technology(session, IMPORTER, technology, now=now)
        created.append(technology)
        if each is not None:
            each(technology)
    return created
