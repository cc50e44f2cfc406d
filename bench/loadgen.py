"""A closed-loop HTTP load generator: keep-alive raw sockets, several processes of threads.

Each connection sends a request, reads the whole response, and sends the next, until the
run's deadline; the request in flight at the deadline is always finished, so every request
sent is answered and counted (``comment_surge`` relies on that to compare what was accepted
with what was stored). It is cheap per request (no HTTP library), so on a small machine it
leaves most of the CPU to the server; it still shares the cores, which is one more reason
every figure is a ratio against a baseline served and loaded the same way.

``run_wrk`` drives wrk instead, when it is installed, for GETs.
"""

from __future__ import annotations

import multiprocessing
import re
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.common import percentile


@dataclass(frozen=True)
class Target:
    """One kind of request to send over and over."""

    method: str
    path: str
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()

    def raw(self, host: str, port: int) -> bytes:
        """The request's bytes."""
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}:{port}",
                 "Accept: application/json", "Connection: keep-alive"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        if self.body or self.method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass
class LoadResult:
    """What a load run saw."""

    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, one per answered request
    elapsed: float = 0.0  # seconds from the start to the last answer
    tool: str = "python"

    @property
    def rps(self) -> float:
        """Answered requests per second."""
        return self.requests / self.elapsed if self.elapsed else 0.0

    def ok(self, codes: tuple[int, ...] = (200, 201)) -> int:
        """How many answers had one of ``codes``."""
        return sum(self.statuses[c] for c in codes)

    def summary(self) -> dict[str, Any]:
        """The figures, for a results file."""
        lat = self.latencies
        return {
            "tool": self.tool,
            "requests": self.requests,
            "seconds": round(self.elapsed, 3),
            "rps": round(self.rps, 1),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": self.errors,
            "p50_ms": round(percentile(lat, 50) * 1000, 2),
            "p90_ms": round(percentile(lat, 90) * 1000, 2),
            "p99_ms": round(percentile(lat, 99) * 1000, 2),
            "max_ms": round(max(lat) * 1000, 2) if lat else None,
        }


class _Connection:
    """One keep-alive connection that sends a request and reads its full response."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.sock: socket.socket | None = None
        self.buffer = b""

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=60)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        return sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None

    def request(self, raw: bytes) -> int:
        """Send ``raw`` and return the response's status. Never retried: a request whose
        answer was lost counts as an error, since it may or may not have been served."""
        if self.sock is None:
            self.sock = self._connect()
        self.sock.sendall(raw)
        return self._read()

    def _recv(self) -> None:
        assert self.sock is not None
        chunk = self.sock.recv(262144)
        if not chunk:
            raise _Closed()
        self.buffer += chunk

    def _read(self) -> int:
        while b"\r\n\r\n" not in self.buffer:
            self._recv()
        head, rest = self.buffer.split(b"\r\n\r\n", 1)
        status = int(head[9:12])
        lower = head.lower()
        match = re.search(rb"\r\ncontent-length:\s*(\d+)", lower)
        if match:
            length = int(match.group(1))
            self.buffer = rest
            while len(self.buffer) < length:
                self._recv()
            self.buffer = self.buffer[length:]
        elif b"transfer-encoding: chunked" in lower:
            self.buffer = rest
            while b"0\r\n\r\n" not in self.buffer:
                self._recv()
            self.buffer = self.buffer.split(b"0\r\n\r\n", 1)[1]
        else:  # body until close
            self.buffer = rest
            try:
                while True:
                    self._recv()
            except _Closed:
                pass
            self.buffer = b""
            self.close()
        if b"\r\nconnection: close" in lower:
            self.close()
        return status


class _Closed(Exception):
    """The server closed the connection."""


def _process(host: str, port: int, targets: list[Target], threads: int, start_at: float,
             duration: float) -> dict[str, Any]:
    raws = [t.raw(host, port) for t in targets]
    deadline = start_at + duration
    results: list[tuple[Counter[int], int, list[float], float]] = []
    lock = threading.Lock()

    def run(index: int) -> None:
        statuses: Counter[int] = Counter()
        errors = 0
        latencies: list[float] = []
        last = start_at
        conn = _Connection(host, port)
        n = index
        while time.time() < start_at:
            time.sleep(0.0005)
        while True:
            now = time.time()
            if now >= deadline:
                break
            raw = raws[n % len(raws)]
            n += 1
            began = time.perf_counter()
            try:
                status = conn.request(raw)
            except (OSError, _Closed, ValueError):
                errors += 1
                conn.close()
                continue
            latencies.append(time.perf_counter() - began)
            statuses[status] += 1
            last = time.time()
        conn.close()
        with lock:
            results.append((statuses, errors, latencies, last))

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=duration + 120)
    statuses: Counter[int] = Counter()
    errors = 0
    latencies: list[float] = []
    last = start_at
    for s, e, lat, end in results:
        statuses.update(s)
        errors += e
        latencies.extend(lat)
        last = max(last, end)
    return {"statuses": dict(statuses), "errors": errors, "latencies": latencies,
            "elapsed": last - start_at}


def run_load(port: int, targets: list[Target], *, connections: int, duration: float,
             processes: int = 2, host: str = "127.0.0.1") -> LoadResult:
    """Load ``host:port`` with ``connections`` closed-loop connections for ``duration``
    seconds (spread over ``processes`` processes), cycling through ``targets``."""
    processes = max(1, min(processes, connections))
    per = [connections // processes + (1 if i < connections % processes else 0)
           for i in range(processes)]
    start_at = time.time() + 0.3 + 0.1 * processes
    context = multiprocessing.get_context("fork")
    with context.Pool(processes) as pool:
        parts = pool.starmap(_process, [(host, port, targets, n, start_at, duration)
                                        for n in per])
    result = LoadResult()
    for part in parts:
        result.statuses.update({int(k): v for k, v in part["statuses"].items()})
        result.errors += part["errors"]
        result.latencies.extend(part["latencies"])
        result.elapsed = max(result.elapsed, part["elapsed"])
    result.requests = sum(result.statuses.values())
    return result


def have_wrk() -> bool:
    """Whether wrk is installed."""
    return shutil.which("wrk") is not None


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(url: str, *, connections: int, duration: float, threads: int = 2,
            headers: tuple[tuple[str, str], ...] = ()) -> LoadResult:
    """Load ``url`` with wrk (GET); latencies are wrk's percentiles, not every sample."""
    args = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration:g}s",
            "--latency", "--timeout", "30s"]
    for name, value in headers:
        args += ["-H", f"{name}: {value}"]
    output = subprocess.run(args + [url], capture_output=True, text=True,
                            timeout=duration + 60, check=True).stdout
    result = LoadResult(tool="wrk")
    match = re.search(r"(\d+) requests in ([\d.]+\w+)", output)
    if not match:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    result.requests = int(match.group(1))
    result.elapsed = _seconds(match.group(2))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    bad = int(non2xx.group(1)) if non2xx else 0
    result.statuses = Counter({200: result.requests - bad, 0: bad} if bad else
                              {200: result.requests})
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       output)
    result.errors = sum(int(x) for x in errors.groups()) if errors else 0
    # wrk reports percentiles only; keep them as a small synthetic sample set so the
    # summary's p50/p90/p99 read the same numbers wrk printed.
    points = dict(re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+\w+)", output, re.MULTILINE))
    if points:
        p50, p90, p99 = (_seconds(points[k]) for k in ("50", "90", "99"))
        result.latencies = [p50] * 50 + [p90] * 40 + [p99] * 9 + [p99]
    return result
