"""A cache of anonymous API reads, valid for as long as the event log's head stays put.

Every change to public data appends an event in the same transaction, so the log's last
``seq`` is a version number for everything the public can read: a response built at seq N
stays right until seq moves. Each anonymous ``GET /api/v1/…`` costs one tiny query to read
the head; when it has not moved the stored bytes are sent again, and a client that sends
``If-None-Match`` with the ETag gets a 304. Requests with a token are never cached (they may
see drafts, held comments or emails).

The head is read before the response is built, so a stored body is never older than the
seq it is stored under (it can only be newer, which is harmless).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from flask import Flask, Response, g, request
from sqlalchemy import select
from sqlmodel import col

from registry.database import engine
from registry.events.models import LogHead

_HEAD = select(col(LogHead.last_seq)).where(col(LogHead.id) == 1)

MAX_ENTRIES = 2048
MAX_BODY_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class Entry:
    """One stored response."""

    seq: int
    body: bytes
    mimetype: str
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


def _cacheable_request() -> bool:
    return (request.method == "GET" and request.path.startswith("/api/v1/")
            and "Authorization" not in request.headers and request.path not in _STATIC)


def _etag(seq: int) -> str:
    return f'W/"log-{seq}"'


def init_app(app: Flask) -> None:
    """Serve anonymous API reads from the cache while the log head has not moved."""
    cache = PublicReadCache()
    app.extensions["daylight.read_cache"] = cache
    if not app.config["READ_CACHE"]:
        return  # DAYLIGHT_READ_CACHE=0: every read goes to the database (benchmarks of it)

    @app.before_request
    def _serve_cached() -> Response | None:
        if not _cacheable_request():
            return None
        # A bare connection, not an ORM session: this runs on every anonymous API read.
        with engine(app).connect() as connection:
            seq = int(connection.execute(_HEAD).scalar() or 0)
        g._daylight_cache_seq = seq
        if request.if_none_match.contains_weak(_etag(seq).removeprefix('W/"').rstrip('"')):
            return Response(status=304, headers={"ETag": _etag(seq)})
        entry = cache.get(request.full_path, seq)
        if entry is None:
            return None
        response = Response(entry.body, status=200, mimetype=entry.mimetype)
        response.headers.extend(entry.headers)
        return response

    @app.after_request
    def _store(response: Response) -> Response:
        seq = g.pop("_daylight_cache_seq", None)
        if seq is None or response.status_code != 200 or response.direct_passthrough:
            return response
        response.headers["ETag"] = _etag(seq)
        # Shared caches may keep it but must ask again each time: the log moves often.
        response.headers["Cache-Control"] = "public, no-cache"
        body = response.get_data()
        if len(body) <= MAX_BODY_BYTES:
            kept = tuple((name, value) for name, value in response.headers.items()
                         if name in ("ETag", "Cache-Control", "Content-Disposition"))
            cache.put(request.full_path, Entry(seq, body, response.mimetype or "", kept))
        return response
