"""``/healthz``: 200 once the database answers."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from registry.database import db
from registry.errors import problem_response
from registry.events.head import HEAD_QUERY

blp = Blueprint("health", __name__)


@blp.get("/healthz")
def healthz() -> Response:
    """Report whether the database answers, and how far the event log has come."""
    try:
        last_seq = db().execute(HEAD_QUERY).scalar()
    except Exception as exc:  # any failure to reach the database means "not healthy"
        return problem_response(503, "Service unavailable", f"The database did not answer: {exc}")
    return jsonify({"status": "ok", "database": "ok", "last_event_seq": last_seq or 0})
