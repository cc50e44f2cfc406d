"""Error pages for residents."""

from __future__ import annotations

from flask import Response
from markupsafe import escape
from werkzeug.exceptions import HTTPException


def render_error_page(exc: HTTPException) -> Response:
    """A small, plain HTML page for an error outside the API."""
    status = exc.code or 500
    body = (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(exc.name)} · Daylight</title></head><body><main>"
        f"<h1>{escape(exc.name)}</h1><p>{escape(exc.description or '')}</p>"
        "<p><a href=\"/\">Back to the registry</a></p></main></body></html>"
    )
    return Response(body, status=status, mimetype="text/html")
