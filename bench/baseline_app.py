"""The baselines' web app: bare Flask, served by the same gunicorn settings as Daylight.

``GET /hello`` answers a small JSON object; ``POST /comments`` parses a JSON body, checks
that it has a ``body`` and answers 201 with an id: what any comment endpoint must do at
least, with no database. ``POST /comments/stored`` does the same and also inserts the
comment as one row and commits, in the database named by ``BASELINE_DATABASE_URL`` (the
run's SQLite file or PostgreSQL database, with Daylight's SQLite settings): the least a
durable comment endpoint must do.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

from flask import Flask, jsonify, request


def create_app() -> Flask:
    """The bare app (``gunicorn 'bench.baseline_app:create_app()'``)."""
    app = Flask(__name__)
    counter = itertools.count(1)
    store = _store(os.environ.get("BASELINE_DATABASE_URL", ""))

    @app.get("/hello")
    def hello() -> Any:
        """Hello, world."""
        return jsonify({"hello": "world"})

    @app.post("/comments")
    def comment() -> Any:
        """Accept a comment-shaped JSON body."""
        data = request.get_json(silent=True)
        if not isinstance(data, dict) or not data.get("body"):
            return jsonify({"title": "Invalid"}), 422
        return jsonify({"id": f"c{next(counter)}", "status": "published"}), 201

    @app.post("/comments/stored")
    def stored_comment() -> Any:
        """Accept a comment-shaped JSON body and store it durably (one row, one commit)."""
        data = request.get_json(silent=True)
        if not isinstance(data, dict) or not data.get("body"):
            return jsonify({"title": "Invalid"}), 422
        comment_id = f"c{next(counter)}-{os.getpid()}"
        store(comment_id, str(data["body"]))
        return jsonify({"id": comment_id, "status": "published"}), 201

    @app.get("/healthz")
    def healthz() -> Any:
        """Ready."""
        return jsonify({"status": "ok"})

    return app


BARE_TABLE = "bare_comment"
_local = threading.local()


def _store(url: str) -> Callable[[str, str], None]:
    """A function that inserts one comment row and commits, on a connection per thread."""

    def connect() -> Any:
        connection = getattr(_local, "connection", None)
        if connection is not None:
            return connection
        if url.startswith("sqlite:///"):
            connection = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30,
                                         check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
        elif url.startswith("postgresql"):
            import psycopg

            connection = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
        else:
            raise RuntimeError("POST /comments/stored needs BASELINE_DATABASE_URL")
        _local.connection = connection
        return connection

    placeholder = "?" if url.startswith("sqlite") else "%s"

    def store(comment_id: str, body: str) -> None:
        connection = connect()
        connection.execute(f"INSERT INTO {BARE_TABLE} (id, body) VALUES "
                           f"({placeholder}, {placeholder})", (comment_id, body))
        connection.commit()

    return store
