"""The baselines' web app: bare Flask, served by the same gunicorn settings as Daylight.

``GET /hello`` answers a small JSON object; ``POST /comments`` parses a JSON body, checks
that it has a ``body`` and answers 201 with an id: what any comment endpoint must do at
least, with no database.
"""

from __future__ import annotations

import itertools
from typing import Any

from flask import Flask, jsonify, request


def create_app() -> Flask:
    """The bare app (``gunicorn 'bench.baseline_app:create_app()'``)."""
    app = Flask(__name__)
    counter = itertools.count(1)

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

    @app.get("/healthz")
    def healthz() -> Any:
        """Ready."""
        return jsonify({"status": "ok"})

    return app
