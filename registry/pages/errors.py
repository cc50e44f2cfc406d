"""Error pages for residents."""

from __future__ import annotations

from flask import Response, current_app, render_template
from markupsafe import escape
from werkzeug.exceptions import HTTPException

from registry.errors import Problem

#: What a resident can do next, for the errors they are likely to meet.
ADVICE = {
    400: "The form could not be read. Go back, reload the page, and send it again.",
    404: "Check the address, or search the registry.",
    429: "You have sent many comments in a short time. Wait a few minutes and try again.",
}


class ProblemPage(HTTPException):
    """A ``Problem`` a service raised during a page's request, as the error page shows it:
    its status, title and detail (a resident gets a page, never problem+json)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.detail)
        self.code = problem.status
        self.title = problem.title

    @property
    def name(self) -> str:
        """The problem's title, where werkzeug would show the status's name."""
        return self.title


def render_problem_page(problem: Problem) -> Response:
    """The error page of a ``Problem`` raised during a page's request, with its headers
    (``Retry-After``, say)."""
    response = render_error_page(ProblemPage(problem))
    response.headers.update(problem.headers)
    return response


def render_error_page(exc: HTTPException) -> Response:
    """The site's error page, with the status, what went wrong and what to do next; a
    refused comment form is shown again instead, with what was typed
    (``registry.pages.refusals``)."""
    from registry.pages.refusals import refused_comment_page

    refused = refused_comment_page(exc)
    if refused is not None:
        return refused
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
