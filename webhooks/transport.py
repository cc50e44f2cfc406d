"""Outbound HTTP for webhooks: one pooled ``requests.Session`` that checks every address it
connects to, never follows redirects, and gives up on a request as a whole after a deadline.

The address pinning follows requests-hardened's adapter (resolve in
``build_connection_pool_key_attributes``, connect to the checked address, keep the name for
the Host header, SNI and certificate checks) with Daylight's own address rules from
``webhooks.safety``, which also refuse ranges that package lets through (IPv4-compatible
and 6to4 IPv6, cloud metadata). requests' timeouts bound each socket operation; a receiver
trickling a byte every few seconds would never trip them, so a watchdog thread shuts the
socket down when the whole request's deadline passes. (Name resolution and a TLS
handshake happen before the socket can be watched; they are bounded per operation only.)
"""

from __future__ import annotations

import heapq
import http.client
import http.cookiejar
import itertools
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.cookies import RequestsCookieJar
from requests.structures import CaseInsensitiveDict
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from webhooks.models import RESPONSE_BODY_LIMIT
from webhooks.safety import (
    HostNotFoundError,
    UnsafeURLError,
    check_resolved,
    parse_url,
    resolve,
)

USER_AGENT = "Daylight-Webhooks/1"
_DETAIL_LIMIT = 500


@dataclass
class Outcome:
    """What came of one HTTP request."""

    duration_ms: int
    status_code: int | None = None
    error_kind: str | None = None  # None when the receiver answered 2xx
    error_detail: str | None = None
    response_body: str | None = None
    retry_after: str | None = None  # the raw Retry-After header of a failed response

    def __post_init__(self) -> None:
        # What a receiver sends back is stored with the attempt, and PostgreSQL's text
        # cannot hold NUL: one such byte would fail the sender's every pass, for everyone.
        for name in ("error_detail", "response_body"):
            value = getattr(self, name)
            if value is not None and "\x00" in value:
                setattr(self, name, value.replace("\x00", "\ufffd"))

    @property
    def succeeded(self) -> bool:
        """Whether the receiver accepted the webhook."""
        return self.error_kind is None


@dataclass(order=True)
class Deadline:
    """The moment a request must be over; sockets attached to it are shut down then."""

    at: float
    seq: int
    expired: bool = field(default=False, compare=False)
    done: bool = field(default=False, compare=False)
    sockets: list[socket.socket] = field(default_factory=list, compare=False)
    lock: threading.Lock = field(default_factory=threading.Lock, compare=False)

    def attach(self, sock: socket.socket | None) -> None:
        """Watch ``sock`` for this request (at once cut off if the deadline has passed)."""
        if sock is None:
            return
        with self.lock:
            if self.done:
                return
            self.sockets.append(sock)
            if self.expired:
                _shutdown(sock)

    def expire(self) -> None:
        """Mark the deadline passed and cut off the request's sockets."""
        with self.lock:
            if self.done:
                return
            self.expired = True
            for sock in self.sockets:
                _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    # socket.socket.shutdown, not SSLSocket.shutdown: the TLS object is in use by the
    # blocked reader; shutting the descriptor down is what wakes it.
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


class Watchdog:
    """One thread that expires deadlines, shared by every request of a transport."""

    def __init__(self) -> None:
        self._heap: list[Deadline] = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def arm(self, seconds: float) -> Deadline:
        """A deadline ``seconds`` from now."""
        deadline = Deadline(at=time.monotonic() + seconds, seq=next(self._seq))
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="webhook-deadlines", daemon=True
                )
                self._thread.start()
            heapq.heappush(self._heap, deadline)
            if self._heap[0] is deadline:
                self._cond.notify()
        return deadline

    def disarm(self, deadline: Deadline) -> None:
        """The request is over: forget its sockets (the heap entry lapses by itself)."""
        with deadline.lock:
            deadline.done = True
            deadline.sockets.clear()

    def stop(self) -> None:
        """End the thread."""
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        with self._cond:
            while not self._stopped:
                now = time.monotonic()
                while self._heap and (self._heap[0].at <= now or self._heap[0].done):
                    heapq.heappop(self._heap).expire()
                timeout = self._heap[0].at - now if self._heap else None
                self._cond.wait(timeout)


_current = threading.local()


def _attach_current(sock: socket.socket | None) -> None:
    deadline: Deadline | None = getattr(_current, "deadline", None)
    if deadline is not None:
        deadline.attach(sock)


class _WatchedHTTPConnection(HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _attach_current(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach_current(self.sock)  # a kept-alive connection already has its socket
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _attach_current(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach_current(self.sock)
        super().request(*args, **kwargs)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """An adapter that resolves each request's host once, refuses unsafe addresses and
    connects to the address it checked."""

    def __init__(self, *, allow_private: bool, pool_connections: int, pool_maxsize: int) -> None:
        self._allow_private = allow_private
        super().__init__(pool_connections=pool_connections, pool_maxsize=pool_maxsize)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """Set up urllib3's pools with connections the deadline watchdog can cut off."""
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPPool,
            "https": _WatchedHTTPSPool,
        }

    def build_connection_pool_key_attributes(  # type: ignore[override]
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Pick the pool by the checked address, keeping the name for Host, SNI and TLS."""
        parent = super().build_connection_pool_key_attributes(request, verify, cert)
        host_params: dict[str, Any] = dict(parent[0])
        pool_kwargs: dict[str, Any] = dict(parent[1])
        target = parse_url(str(request.url), self._allow_private)
        addresses = resolve(target.host, target.port)
        # Refuse if any answer is unsafe: a name mixing public and private addresses is
        # what a rebinding attack looks like.
        check_resolved(target.host, addresses, self._allow_private)
        deadline: Deadline | None = getattr(_current, "deadline", None)
        if deadline is not None and deadline.expired:
            raise requests.exceptions.Timeout("the deadline passed while resolving the host")

        name = str(host_params["host"])
        host_header = f"[{name}]" if ":" in name else name
        if host_params["port"] is not None:
            host_header += f":{host_params['port']}"
        # Copy: the headers object may be shared with other requests.
        request.headers = CaseInsensitiveDict(request.headers)
        request.headers["Host"] = host_header
        if target.scheme == "https":
            pool_kwargs["assert_hostname"] = target.host
            pool_kwargs["server_hostname"] = target.host
        chosen = addresses[0]
        host_params["host"] = f"[{chosen}]" if chosen.version == 6 else str(chosen)
        return host_params, pool_kwargs


class Transport:
    """Sends webhook POSTs through one pooled, guarded session (thread-safe).

    Certificates are checked against the system's trust store, or ``ca_bundle`` (a PEM
    file) when given.
    """

    def __init__(
        self,
        *,
        allow_private: bool,
        timeout: float,
        pool_maxsize: int = 8,
        ca_bundle: str | None = None,
    ) -> None:
        self.timeout = timeout
        self._allow_private = allow_private
        self._watchdog = Watchdog()
        session = requests.Session()
        session.trust_env = False  # no proxies or .netrc from the environment
        session.verify = ca_bundle or True
        # Never carry one receiver's cookies to another.
        session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        session.headers = CaseInsensitiveDict(
            {"User-Agent": USER_AGENT, "Accept": "*/*", "Accept-Encoding": "identity"}
        )
        adapter = GuardedAdapter(
            allow_private=allow_private, pool_connections=64, pool_maxsize=pool_maxsize
        )
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self.session = session

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Outcome:
        """POST ``body`` to ``url``; never raises for anything the network or receiver does."""
        started = time.monotonic()
        deadline = self._watchdog.arm(self.timeout)
        _current.deadline = deadline
        response: requests.Response | None = None

        def outcome(**kwargs: Any) -> Outcome:
            elapsed = int((time.monotonic() - started) * 1000)
            return Outcome(duration_ms=elapsed, **kwargs)

        try:
            parse_url(url, self._allow_private)  # the form first: no request for a bad URL
            response = self.session.send(
                self._prepare(url, body, headers),
                timeout=(self.timeout, self.timeout),
                allow_redirects=False,
                stream=True,
            )
            status = response.status_code
            content = _read_capped(response)  # never raises: the status is what counts
            if deadline.expired:
                # Cut off mid-response, which can even parse as a complete one.
                return outcome(error_kind="timeout", error_detail=self._timeout_detail())
            text = content.decode("utf-8", errors="replace") if content else None
            if 200 <= status < 300:
                return outcome(status_code=status, response_body=text)
            if 300 <= status < 400:
                location = response.headers.get("Location", "")
                return outcome(
                    status_code=status,
                    error_kind="redirect",
                    error_detail=_clip(f"HTTP {status} redirect to {location}; not followed"),
                    response_body=text,
                    retry_after=response.headers.get("Retry-After"),
                )
            return outcome(
                status_code=status,
                error_kind="http_status",
                error_detail=f"HTTP {status}",
                response_body=text,
                retry_after=response.headers.get("Retry-After"),
            )
        except HostNotFoundError as exc:
            return outcome(error_kind="connection", error_detail=_clip(exc.reason))
        except UnsafeURLError as exc:
            return outcome(error_kind="unsafe_url", error_detail=_clip(exc.reason))
        except requests.exceptions.SSLError as exc:
            return outcome(error_kind="tls", error_detail=_clip(str(exc)))
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            if deadline.expired or isinstance(exc, requests.exceptions.Timeout):
                return outcome(error_kind="timeout", error_detail=self._timeout_detail())
            return outcome(error_kind="connection", error_detail=_clip(str(exc)))
        finally:
            _current.deadline = None
            self._watchdog.disarm(deadline)
            if response is not None:
                # After a full read the connection is already back in the pool and this
                # does nothing; after a partial read it drops the connection.
                response.close()

    def _timeout_detail(self) -> str:
        return f"no complete response within {self.timeout:g} seconds"

    def _prepare(self, url: str, body: bytes, headers: dict[str, str]) -> requests.PreparedRequest:
        # Built directly rather than by Session.request: it merges cookies, auth, proxies
        # and environment settings this session never has, and that merging costs more
        # than the rest of the client's work for a small POST on a kept-alive connection.
        prepared = requests.PreparedRequest()
        prepared.method = "POST"
        prepared.prepare_url(url, None)
        merged: CaseInsensitiveDict[str | bytes] = CaseInsensitiveDict(self.session.headers)
        merged.update(headers)
        merged["Content-Length"] = str(len(body))
        prepared.headers = merged  # type: ignore[assignment]
        prepared.body = body
        prepared.prepare_cookies(RequestsCookieJar())  # none: no receiver's cookies return
        prepared.hooks = {"response": []}
        return prepared

    def close(self) -> None:
        """Close pooled connections and stop the watchdog."""
        self.session.close()
        self._watchdog.stop()


def _read_capped(response: requests.Response) -> bytes:
    """Up to RESPONSE_BODY_LIMIT bytes of the body; a longer body is cut off, not drained.

    A body that breaks off (or runs past the deadline) is left out: the status decides.
    """
    try:
        content = response.raw.read(RESPONSE_BODY_LIMIT + 1, decode_content=False)
    except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError):
        return b""
    return bytes(content[:RESPONSE_BODY_LIMIT])


def _clip(text: str) -> str:
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 1] + "…"
