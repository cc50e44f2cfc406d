"""A real HTTP receiver for webhook tests: a threaded server on 127.0.0.1 that records every
request and answers as each test programs it.

    with Receiver() as receiver:
        receiver.respond("/hook", Reply(status=500), Reply(status=200))  # then the default
        url = receiver.url("/hook")
        ...
        [request] = receiver.wait_for(1)

Replies programmed for a path are used once each, in order; after them the path's default
(``respond_always``) or 200 answers. A reply can wait (``delay``), redirect (``status`` 3xx
with a ``Location`` header), ask for a later retry (``Retry-After``), send a long body, or
drop the connection without answering (``close``).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """How the receiver answers one request."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering
    until: threading.Event | None = None  # wait for this before answering
    close: bool = False  # drop the connection instead of answering
    drip: float = 0.0  # send a never-ending header one byte every ``drip`` seconds


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    at: float  # time.monotonic() when it arrived

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.body.decode("utf-8")


class Receiver:
    """A threaded HTTP server on an ephemeral loopback port; see the module docstring."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._lock = threading.Condition()
        self._received: list[Received] = []
        self._queued: dict[str, deque[Reply]] = defaultdict(deque)
        self._defaults: dict[str, Reply] = {}
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._scheme = "http"
        if ssl_context is not None:  # serve https with this context's certificate
            self._server.socket = ssl_context.wrap_socket(self._server.socket, server_side=True)
            self._scheme = "https"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self._server.server_address[1])

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        """A URL for ``path`` on this receiver (``host`` may be a name the test resolves)."""
        return f"{self._scheme}://{host}:{self.port}{path}"

    def start(self) -> Receiver:
        """Begin serving (the context manager does this)."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; delayed replies still waiting are cut short."""
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def respond(self, path: str, *replies: Reply) -> None:
        """Answer the next requests to ``path`` with ``replies``, one each, in order."""
        with self._lock:
            self._queued[path].extend(replies)

    def respond_always(self, path: str, reply: Reply) -> None:
        """Answer every request to ``path`` with ``reply`` once any queued replies are used."""
        with self._lock:
            self._defaults[path] = reply

    @property
    def received(self) -> list[Received]:
        """Every request so far, in order of arrival."""
        with self._lock:
            return list(self._received)

    def requests_to(self, path: str) -> list[Received]:
        """The requests made to ``path``."""
        return [r for r in self.received if r.path == path]

    def wait_for(
        self, count: int, path: str | None = None, timeout: float = 10.0
    ) -> list[Received]:
        """Wait until ``count`` requests (to ``path``, if given) have arrived; returns them.

        Raises ``AssertionError`` when they have not arrived within ``timeout`` seconds.
        """

        def matching() -> list[Received]:
            return [r for r in self._received if path is None or r.path == path]

        with self._lock:
            if not self._lock.wait_for(lambda: len(matching()) >= count, timeout):
                raise AssertionError(
                    f"expected {count} requests to {path or 'any path'}, got {len(matching())}"
                )
            return matching()

    def wait_until(
        self, condition: Callable[[list[Received]], bool], timeout: float = 10.0
    ) -> list[Received]:
        """Wait until ``condition(requests so far)`` holds; returns the requests.

        Raises ``AssertionError`` when it does not hold within ``timeout`` seconds.
        """
        with self._lock:
            if not self._lock.wait_for(lambda: condition(list(self._received)), timeout):
                raise AssertionError(f"condition not met; {len(self._received)} requests")
            return list(self._received)

    def _next_reply(self, path: str) -> Reply:
        with self._lock:
            queued = self._queued.get(path)
            if queued:
                return queued.popleft()
            return self._defaults.get(path, Reply())

    def _record(self, request: Received) -> None:
        with self._lock:
            self._received.append(request)
            self._lock.notify_all()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do

            def do_POST(self) -> None:
                self._handle()

            def do_GET(self) -> None:
                self._handle()

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {name.lower(): value for name, value in self.headers.items()}
                reply = receiver._next_reply(self.path)
                receiver._record(
                    Received(self.command, self.path, headers, body, time.monotonic())
                )
                if reply.delay:
                    receiver._stopping.wait(reply.delay)
                if reply.until is not None:
                    reply.until.wait(timeout=30)
                if reply.drip:
                    self._drip(reply.drip)
                    return
                if reply.close:
                    self.close_connection = True
                    self.connection.close()
                    return
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def _drip(self, interval: float) -> None:
                # Each byte arrives well within any per-read timeout; only a deadline on
                # the whole request ends this.
                self.close_connection = True
                try:
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                    self.wfile.flush()
                    while not receiver._stopping.wait(interval):
                        self.wfile.write(b"a")
                        self.wfile.flush()
                except OSError:
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output quiet

        return Handler


def unused_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
