"""A resident's comment post, answered in front of Flask.

A comment period that draws a crowd is the heaviest load Daylight takes, and under it
Flask's routing and hooks, flask-smorest's wrappers and flask-limiter's two checks cost
more CPU than storing the comment (see docs/performance.md). This WSGI middleware answers
the common case itself: an anonymous JSON post whose fields pass the same schema. It
spends the same rate-limit budget (the limiter's own counters, keys and headers), hands
the comment to the same writer and answers the same 201 receipt; a post refused by the
limit, an unknown review, a closed period or a busy database gets the same problem as the
route would give, rendered by the app's own error handlers. While the rate-limit store
fails, posts go to the route, where flask-limiter falls back to counting in memory.

Everything else goes on to Flask untouched, before anything is counted: another method or
path, a token, a body that is not JSON, too large or not valid. The Flask route stays the
documented endpoint (``registry.comments.routes.post``) and answers those.
``DAYLIGHT_COMMENT_FAST_PATH=0`` sends every post through it.
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable, Iterable
from typing import Any, cast

from flask import Flask, Response
from limits import RateLimitItem, parse_many
from marshmallow import ValidationError
from werkzeug.http import parse_options_header

from registry.comments.idempotency import ENVIRON_KEY, REPLAYED_HEADER, key_hash, parse_key
from registry.comments.routes import COMMENT_LIMIT_SCOPE, receipt
from registry.comments.schemas import CommentIn, CommentReceipt
from registry.comments.services import client_key
from registry.comments.writer import comment_writer
from registry.extensions import limiter
from registry.inputs import has_unstorable

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

# Ids are ASCII (registry.ids); anything else is left to Flask's URL decoding and routing.
_PATH = re.compile(r"/api/v1/reviews/([A-Za-z0-9_-]{1,100})/comments\Z")
_JSON = "application/json"


class CommentPosts:
    """WSGI middleware: take ``POST /api/v1/reviews/{id}/comments`` without Flask's
    routing, hooks and wrappers when it is an anonymous, valid JSON post."""

    def __init__(self, app: WSGIApp, flask_app: Flask) -> None:
        self.app = app
        self.flask_app = flask_app
        self.schema = CommentIn()
        self.receipt_schema = CommentReceipt()
        self._limits: tuple[str, list[RateLimitItem]] | None = None

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST" or "HTTP_AUTHORIZATION" in environ:
            return self.app(environ, start_response)
        match = _PATH.match(environ.get("PATH_INFO", ""))
        if match is None:
            return self.app(environ, start_response)
        mimetype, _options = parse_options_header(environ.get("CONTENT_TYPE", ""))
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:  # absent (chunked) or malformed: Flask reads it, or says why
            return self.app(environ, start_response)
        config = self.flask_app.config
        largest = config.get("MAX_CONTENT_LENGTH")
        if mimetype != _JSON or length <= 0 or (largest is not None and length > largest):
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(length)
        try:
            parsed = json.loads(body)
            if has_unstorable(parsed):  # e.g. a NUL: registry.inputs says why
                raise ValueError("unstorable text")
            fields = self.schema.load(parsed)
        except (ValueError, RecursionError, ValidationError):  # JSON errors are ValueErrors
            # Flask answers with its 400 or 422, from the same bytes.
            environ["wsgi.input"] = io.BytesIO(body)
            return self.app(environ, start_response)
        key: str | None = None
        sent_key = environ.get(ENVIRON_KEY)
        if sent_key is not None:
            try:
                key = key_hash(parse_key(sent_key))
            except ValueError:  # Flask answers with its 422, which says why
                environ["wsgi.input"] = io.BytesIO(body)
                return self.app(environ, start_response)
        client = client_key(config["SECRET_KEY"], environ.get("REMOTE_ADDR")) or "unknown"
        # A rate-limit store that failed is flask-limiter's to handle: it counts in memory
        # until the store answers again, and checks it now and then. The route does both.
        if limiter._storage_dead:
            environ["wsgi.input"] = io.BytesIO(body)
            return self.app(environ, start_response)
        try:
            refused, headers = self._spend(client)
        except Exception:  # noqa: BLE001 — the store failed: the route falls back, or says so
            environ["wsgi.input"] = io.BytesIO(body)
            return self.app(environ, start_response)
        response = self._answer(environ, match.group(1), fields, client, key, refused)
        for name, value in headers:
            response.headers[name] = value
        return response(environ, start_response)

    def _answer(self, environ: dict[str, Any], review_id: str, fields: dict[str, Any],
                client: str, key: str | None, refused: Exception | None) -> Response:
        """The receipt of the stored comment, or the problem the route would answer."""
        app = self.flask_app
        if refused is None:
            try:
                comment, review = comment_writer(app).post(
                    review_id, fields, client=client,
                    now=app.extensions["daylight.clock"].now(), idempotency_key=key)
            except Exception as exc:  # noqa: BLE001 — answered as the route would be
                refused = exc
            else:
                with app.app_context():  # links are built from the settings
                    response = cast(Response, app.json.response(
                        self.receipt_schema.dump(receipt(comment, review))))
                response.status_code = 201
                if comment.replayed:
                    response.headers[REPLAYED_HEADER] = "true"
                return response
        # The app's own error handlers, in a request context as under the route.
        with app.request_context(environ):
            return app.make_response(self._render(refused))

    def _render(self, exc: Exception) -> Any:
        """What the app's error handlers make of ``exc`` (a 500 for one they do not know)."""
        try:
            return self.flask_app.handle_user_exception(exc)
        except Exception as unhandled:  # noqa: BLE001 — Flask's own last resort
            return self.flask_app.handle_exception(unhandled)

    def _configured_limits(self) -> list[RateLimitItem]:
        # Parsed again only when the setting changes (tests change it on a live app).
        value = str(self.flask_app.config["COMMENT_RATE_LIMIT"])
        if self._limits is None or self._limits[0] != value:
            self._limits = (value, sorted(parse_many(value)))
        return self._limits[1]

    def _spend(self, client: str) -> tuple[Exception | None, list[tuple[str, str]]]:
        """Count this post against the client's comment limits as flask-limiter does for
        the route (same counters, same order, stopping at the first breach); the limit
        that was breached, if any, and the rate-limit headers to send."""
        if not limiter.enabled:
            return None, []
        from flask_limiter.errors import RateLimitExceeded

        prefix = self.flask_app.config.get("RATELIMIT_KEY_PREFIX") or ""
        keys = [prefix, client, COMMENT_LIMIT_SCOPE] if prefix else [
            client, COMMENT_LIMIT_SCOPE]
        strategy = limiter.limiter
        items = self._configured_limits()
        shown = items[0] if items else None
        breached: RateLimitItem | None = None
        for item in items:
            if not strategy.hit(item, *keys):
                breached = shown = item
                break
        if shown is None:
            return None, []
        window = strategy.get_window_stats(shown, *keys)
        reset_at = int(window.reset_time + 1)
        headers = [("X-RateLimit-Limit", str(shown.amount)),
                   ("X-RateLimit-Remaining", str(window.remaining)),
                   ("X-RateLimit-Reset", str(reset_at)),
                   ("Retry-After", str(int(reset_at - time.time())))]
        if breached is None:
            return None, headers
        return RateLimitExceeded(_Breached(breached)), headers  # type: ignore[arg-type]


class _Breached:
    """The parts of flask-limiter's limit that its ``RateLimitExceeded`` reads."""

    error_message = None

    def __init__(self, limit: RateLimitItem) -> None:
        self.limit = limit


def init_app(app: Flask) -> None:
    """Answer anonymous JSON comment posts in front of Flask (unless turned off)."""
    if app.config["COMMENT_FAST_PATH"]:
        app.wsgi_app = CommentPosts(app.wsgi_app, app)  # type: ignore[method-assign]
