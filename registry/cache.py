"""A cache of anonymous API reads, valid for as long as the event log's head stays put.

Every change to public data appends an event in the same transaction, so the log's last
``seq`` is a version number for everything the public can read: a response built at seq N
stays right until seq moves. (The reads of the two kinds of change that append none are
never cached: ``_UNVERSIONED``.) Requests with a token are never cached (they may see drafts,
held comments or emails).

Hits are answered by a WSGI middleware in front of Flask (``CachedReads``): a hit costs a
look at the head (``registry.events.head``: a number in memory on PostgreSQL, a one-row read
on SQLite) and a dictionary lookup, with no routing, hooks or serialisation. A client that
sends ``If-None-Match`` with the ETag gets a 304. A miss goes on to Flask with the head it
was read at; the response is stored under that seq after it is built.

The head is read before the response is built, so a stored body is never older than the
seq it is stored under (it can only be newer, which is harmless).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, request
from werkzeug.http import parse_etags

from registry.database import log_head
from registry.events.head import LogHeadWatch

MAX_ENTRIES = 2048
MAX_BODY_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class Entry:
    """One stored response."""

    seq: int
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...]


class PublicReadCache:
    """A bounded LRU of anonymous API responses keyed by path and query."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries
        self.hits = 0
        self.misses = 0

    def get(self, key: str, seq: int) -> Entry | None:
        """The entry for ``key`` if it was stored at ``seq``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.seq != seq:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: str, entry: Entry) -> None:
        """Store ``entry``, dropping the least recently used beyond the bound."""
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)


#: Served from memory already; they do not depend on the database.
_STATIC = frozenset({"/api/v1/docs", "/api/v1/openapi.json"})
_PREFIX = "/api/v1/"
#: Reads of data that can change without an event, so the log's head is no version of them:
#: a department is added without one (departments are not in the contract's events), and
#: a held comment is hidden without one (it was never public), which changes the status
#: its author's receipt shows. Both are read rarely; they always go to the database.
_UNVERSIONED = ("/api/v1/departments", "/api/v1/comments/")
_SEQ_KEY = "daylight.cache_seq"

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _cacheable(environ: dict[str, Any]) -> bool:
    path = environ.get("PATH_INFO", "")
    return (environ.get("REQUEST_METHOD") == "GET" and path.startswith(_PREFIX)
            and "HTTP_AUTHORIZATION" not in environ and path not in _STATIC
            and not path.startswith(_UNVERSIONED))


def _key(environ: dict[str, Any]) -> str:
    return f"{environ.get('PATH_INFO', '')}?{environ.get('QUERY_STRING', '')}"


def _opaque(seq: int) -> str:
    return f"log-{seq}"


def _etag(seq: int) -> str:
    return f'W/"{_opaque(seq)}"'


class CachedReads:
    """WSGI middleware: answer anonymous API reads from the cache while the head stays put."""

    def __init__(self, app: WSGIApp, cache: PublicReadCache, head: LogHeadWatch) -> None:
        self.app = app
        self.cache = cache
        self.head = head

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        if not _cacheable(environ):
            return self.app(environ, start_response)
        try:
            seq = self.head.current()
        except Exception:  # noqa: BLE001 — the database is unwell: let Flask answer (503)
            return self.app(environ, start_response)
        if_none_match = environ.get("HTTP_IF_NONE_MATCH")
        if if_none_match and parse_etags(if_none_match).contains_weak(_opaque(seq)):
            start_response("304 Not Modified", [("ETag", _etag(seq))])
            return []
        entry = self.cache.get(_key(environ), seq)
        if entry is None:
            environ[_SEQ_KEY] = seq
            return self.app(environ, start_response)
        start_response("200 OK", [("Content-Type", entry.content_type),
                                  ("Content-Length", str(len(entry.body))),
                                  *entry.headers])
        return [entry.body]


def keep_out() -> None:
    """Keep the current request's response out of the read cache and untagged: it may show
    less than the log's head (a comment summary counted earlier,
    ``registry.comments.summaries``), so it must not be served again for as long as the head
    stays put."""
    request.environ.pop(_SEQ_KEY, None)


def read_at() -> int | None:
    """The log's head the read cache read before the current request, if it did."""
    seq = request.environ.get(_SEQ_KEY)
    return seq if isinstance(seq, int) else None


def init_app(app: Flask) -> None:
    """Serve anonymous API reads from the cache while the log head has not moved."""
    cache = PublicReadCache()
    app.extensions["daylight.read_cache"] = cache
    if not app.config["READ_CACHE"]:
        return  # DAYLIGHT_READ_CACHE=0: every read goes to the database (benchmarks of it)
    app.wsgi_app = CachedReads(app.wsgi_app, cache, log_head(app))  # type: ignore[method-assign]

    @app.after_request
    def _store(response: Response) -> Response:
        seq = request.environ.get(_SEQ_KEY)
        if (seq is None or response.status_code != 200 or response.direct_passthrough
                or response.is_streamed):
            # A streamed body (the comments' CSV) is sent as it is made, never held whole.
            return response
        response.headers["ETag"] = _etag(seq)
        # Shared caches may keep it but must ask again each time: the log moves often.
        response.headers["Cache-Control"] = "public, no-cache"
        body = response.get_data()
        if len(body) <= MAX_BODY_BYTES:
            kept = tuple((name, value) for name, value in response.headers.items()
                         if name in ("ETag", "Cache-Control", "Content-Disposition"))
            cache.put(_key(request.environ),
                      Entry(seq, body, response.content_type or "", kept))
        return response
