"""Error pages for residents."""

from __future__ import annotations

from flask import Response, current_app, render_template
from markupsafe import escape
from werkzeug.exceptions import HTTPException

#: What a resident can do next, for the errors they are likely to meet.
ADVICE = {
    400: "The form could not be read. Go back, reload the page, and send it again.",
    404: "Check the address, or search the registry.",
    429: "You have sent many comments in a short time. Wait a few minutes and try again.",
}


def render_error_page(exc: HTTPException) -> Response:
    """The site's error page, with the status, what went wrong and what to do next."""
    status = exc.code or 500
    description = exc.description or ""
    if exc.name == "Bad Request" and "CSRF" in description:
        # Flask-WTF's wording is for developers; say it for residents.
        description = ("This form had expired or did not come from this site, so it was not "
                       "sent. Nothing was saved.")
    try:
        html = render_template("error.html", status=status, title=exc.name,
                               description=description, advice=ADVICE.get(status))
    except Exception:  # an error page must never fail: fall back to plain HTML
        current_app.logger.exception("The error page could not be rendered")
        html = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>'
                f"{escape(exc.name)} · Daylight</title></head><body><main><h1>"
                f"{escape(exc.name)}</h1><p>{escape(description)}</p>"
                '<p><a href="/">Back to the registry</a></p></main></body></html>')
    response = Response(html, status=status, mimetype="text/html")
    if exc.response is not None and "Retry-After" in exc.response.headers:
        response.headers["Retry-After"] = exc.response.headers["Retry-After"]
    return response
