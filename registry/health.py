"""``/healthz``: 200 once the database answers; also whether the rate-limit store does."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from registry.database import db
from registry.errors import problem_response
from registry.events.head import HEAD_QUERY

blp = Blueprint("health", __name__)


@blp.get("/healthz")
def healthz() -> Response:
    """Report whether the database answers, and how far the event log has come."""
    try:
        last_seq = db().execute(HEAD_QUERY).scalar()
    except Exception:  # any failure to reach the database means "not healthy"
        # The reason goes to the log, not to the public: it names hosts, ports and the SQL.
        current_app.logger.exception("healthz: the database did not answer")
        return problem_response(503, "Service unavailable", "The database did not answer.")
    return jsonify({"status": "ok", "database": "ok", "last_event_seq": last_seq or 0,
                    "rate_limit_store": rate_limit_store()})


def rate_limit_store() -> str:
    """``memory`` (each process counts alone), ``ok`` (the shared store answers) or
    ``unreachable`` (each process counts in memory until it answers: comments are still
    taken, so the service stays healthy, but the budget is no longer shared)."""
    from registry.extensions import limiter

    if str(current_app.config["RATELIMIT_STORAGE_URI"]).startswith("memory:"):
        return "memory"
    return "ok" if limiter.storage.check() else "unreachable"
