"""One error shape everywhere: RFC 9457 problem details, made in one place."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, json, request
from werkzeug.exceptions import HTTPException

PROBLEM_JSON = "application/problem+json"
_TYPE_BASE = "https://daylight.city/problems/"


class Problem(Exception):
    """An error a client can act on. Services raise these; the handler renders them."""

    status = 400
    title = "Bad request"
    slug = "bad-request"

    def __init__(
        self,
        detail: str,
        *,
        errors: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra


class Unauthorized(Problem):
    """No token, or a token we do not know."""

    status, title, slug = 401, "Unauthorized", "unauthorized"


class Forbidden(Problem):
    """The token's role may not do this."""

    status, title, slug = 403, "Forbidden", "forbidden"


class NotFound(Problem):
    """No such record (or not one this caller may see)."""

    status, title, slug = 404, "Not found", "not-found"


class Conflict(Problem):
    """The action does not fit the record's current state."""

    status, title, slug = 409, "Conflict", "conflict"


class Unavailable(Problem):
    """The database could not take the change (nothing was saved) or answer a read."""

    status, title, slug = 503, "Service unavailable", "service-unavailable"

    @classmethod
    def nothing_saved(cls) -> Unavailable:
        """A change the database did not take."""
        return cls("The database is busy; nothing was saved. Try again shortly.",
                   headers={"Retry-After": "1"})

    @classmethod
    def not_answering(cls) -> Unavailable:
        """A read the database did not answer (there was nothing to save)."""
        return cls("The database is not answering just now. Try again shortly.",
                   headers={"Retry-After": "1"})


class OutcomeUnknown(Problem):
    """The connection to the database was lost during a change's COMMIT: it may or may not
    be stored."""

    status, title, slug = 503, "Outcome unknown", "outcome-unknown"

    @classmethod
    def lost_commit(cls, tracking_number: str | None = None, *,
                    api: bool = True) -> OutcomeUnknown:
        """The problem, naming the comment's tracking number if a comment was posted (and,
        to an ``api`` client, that a post with an Idempotency-Key may be sent again)."""
        detail = ("The connection to the database was lost while the change was being saved, "
                  "so it may or may not have been saved. Check before making it again.")
        if tracking_number is None:
            return cls(detail, headers={"Retry-After": "60"})
        again = (" (a post sent with an Idempotency-Key may simply be sent again with the "
                 "same key: it is never stored twice)") if api else ""
        return cls(f"{detail} Your comment's tracking number is {tracking_number}: look it "
                   f"up in a minute before posting it again{again}.",
                   tracking_number=tracking_number, headers={"Retry-After": "60"})


class Invalid(Problem):
    """Fields that fail validation; ``errors`` names each field."""

    status, title, slug = 422, "Invalid fields", "invalid-fields"


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    slug: str | None = None,
    errors: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    """A problem+json response."""
    body: dict[str, Any] = {
        "type": _TYPE_BASE + (slug or title.lower().replace(" ", "-")),
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    if extra:
        body.update(extra)
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def render_problem(problem: Problem) -> Response:
    """``problem`` as problem+json."""
    return problem_response(problem.status, problem.title, problem.detail, slug=problem.slug,
                            errors=problem.errors, headers=problem.headers, extra=problem.extra)


def flatten_messages(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn marshmallow's nested messages into ``{"field.sub": [message]}``."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict | list) and not _is_message_list(value):
                flat.update(flatten_messages(value, name))
            else:
                flat[name] = [str(m) for m in (value if isinstance(value, list) else [value])]
    elif isinstance(messages, list):
        flat[prefix or "_schema"] = [str(m) for m in messages]
    return flat


def _is_message_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _webargs_errors(exc: HTTPException) -> dict[str, list[str]] | None:
    data = getattr(exc, "data", None) or {}
    messages = data.get("messages")
    if not messages:
        return None
    merged: dict[str, Any] = {}
    # webargs keys errors by location ("json", "query"); clients care about field names.
    for location_messages in messages.values():
        if isinstance(location_messages, dict):
            merged.update(location_messages)
    return flatten_messages(merged)


def wants_html() -> bool:
    """Whether the request is for a page (an HTML error) rather than the API or /healthz."""
    return not request.path.startswith("/api/") and request.path != "/healthz"


def register_error_handlers(app: Flask) -> None:
    """Render every error as problem+json for the API (and plain pages elsewhere)."""

    @app.errorhandler(Problem)
    def _problem(exc: Problem) -> Response:
        if wants_html():
            # A resident gets a page, not problem+json (a refused comment form is shown
            # again, with what they typed).
            from registry.pages.errors import render_problem_page

            return render_problem_page(exc)
        return render_problem(exc)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        if wants_html():
            from registry.pages.errors import render_error_page

            return render_error_page(exc)
        errors = _webargs_errors(exc)
        if status == 422:
            detail = "Some fields are not valid; see errors."
            if errors is not None and "_schema" not in errors and all(
                k.startswith("_") for k in errors
            ):
                detail = "; ".join(m for ms in errors.values() for m in ms)
            return problem_response(
                422, "Invalid fields", detail, slug="invalid-fields", errors=errors or {}
            )
        detail = exc.description or exc.name
        if status == 400 and errors:
            detail = "; ".join(m for ms in errors.values() for m in ms)
        if status == 413:
            detail = "The request body is larger than the 1 MiB limit."
        response = problem_response(status, exc.name, detail)
        if exc.response is not None:
            for name in ("Allow", "Retry-After", "WWW-Authenticate"):
                if name in exc.response.headers:
                    response.headers[name] = exc.response.headers[name]
        if status == 405 and "Allow" not in response.headers:
            allowed = getattr(exc, "valid_methods", None)
            if allowed:
                response.headers["Allow"] = ", ".join(allowed)
        return response
