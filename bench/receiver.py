"""A fast webhook receiver for the benchmarks: an asyncio HTTP/1.1 server with keep-alive,
in its own process, that records the arrival of every request and answers at once.

The same receiver serves Daylight and every baseline, so a ratio compares senders only.
Run as ``python -m bench.receiver --port P``; it prints ``listening P`` when ready.
Control paths (never recorded): ``GET /_count``, ``GET /_dump?since=N`` (records from the
N-th on, as ``[unix_time, path, webhook_id]``), ``POST /_status/CODE`` (answer every later
request with CODE: 503 simulates a receiver that is up but failing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from bench.common import ROOT, wait_until

_REASONS = {200: "OK", 204: "No Content", 404: "Not Found", 500: "Internal Server Error",
            503: "Service Unavailable"}


class _Server:
    """The server's state: the records and the status it answers with."""

    def __init__(self, status: int) -> None:
        self.records: list[tuple[float, str, str]] = []
        self.status = status

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                        ConnectionError):
                    return
                arrived = time.time()
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = (lines[0].split(" ") + ["", ""])[:3]
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length") or 0)
                if length:
                    await reader.readexactly(length)
                if target.startswith("/_"):
                    status, body = self.control(method, target)
                else:
                    self.records.append((arrived, target, headers.get("webhook-id", "")))
                    status, body = self.status, b""
                close = headers.get("connection", "").lower() == "close"
                writer.write(
                    f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n"
                    f"Content-Length: {len(body)}\r\n"
                    f"Content-Type: application/json\r\n"
                    f"{'Connection: close' if close else 'Connection: keep-alive'}\r\n\r\n"
                    .encode() + body
                )
                await writer.drain()
                if close:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    def control(self, method: str, target: str) -> tuple[int, bytes]:
        path, _, query = target.partition("?")
        if path == "/_count":
            return 200, json.dumps({"count": len(self.records)}).encode()
        if path == "/_dump":
            since = int(query.split("since=", 1)[1]) if "since=" in query else 0
            return 200, json.dumps(self.records[since:]).encode()
        if path.startswith("/_status/") and method == "POST":
            self.status = int(path.rsplit("/", 1)[1])
            return 200, b"{}"
        return 404, b"{}"


async def _serve(port: int, status: int) -> None:
    state = _Server(status)
    server = await asyncio.start_server(state.handle, "127.0.0.1", port, reuse_address=True,
                                        backlog=2048)
    bound = server.sockets[0].getsockname()[1]
    print(f"listening {bound}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    """Serve until terminated."""
    parse = argparse.ArgumentParser(description=__doc__)
    parse.add_argument("--port", type=int, default=0)
    parse.add_argument("--status", type=int, default=200)
    args = parse.parse_args()
    try:
        asyncio.run(_serve(args.port, args.status))
    except KeyboardInterrupt:
        pass


@dataclass
class Receiver:
    """The receiver process, seen from the bench: start, count, read records, stop."""

    port: int = 0
    log: Path | None = None
    _proc: subprocess.Popen[str] | None = field(default=None, repr=False)
    _session: requests.Session = field(default_factory=requests.Session, repr=False)

    def start(self, timeout: float = 30) -> Receiver:
        """Start serving (on ``port``, or a free one chosen by the system)."""
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.receiver", "--port", str(self.port)],
            cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )
        assert self._proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self._proc.stdout.readline()
            if line.startswith("listening "):
                self.port = int(line.split()[1])
                return self
            if not line and self._proc.poll() is not None:
                break
        raise RuntimeError("the receiver did not start")

    def url(self, path: str) -> str:
        """An http URL on the receiver."""
        return f"http://127.0.0.1:{self.port}{path}"

    def count(self) -> int:
        """How many requests have been recorded."""
        response = self._session.get(self.url("/_count"), timeout=10)
        return int(response.json()["count"])

    def records(self, since: int = 0) -> list[tuple[float, str, str]]:
        """``(unix_time, path, webhook_id)`` of every request from the ``since``-th on."""
        response = self._session.get(self.url(f"/_dump?since={since}"), timeout=60)
        return [(float(t), str(p), str(i)) for t, p, i in response.json()]

    def set_status(self, status: int) -> None:
        """Answer every later request with ``status``."""
        self._session.post(self.url(f"/_status/{status}"), timeout=10)

    def wait_for(self, count: int, timeout: float, interval: float = 0.05) -> int:
        """Wait until at least ``count`` requests are recorded; returns the count."""
        seen = [0]

        def enough() -> bool:
            seen[0] = self.count()
            return seen[0] >= count

        wait_until(enough, timeout, f"{count} requests at the receiver (had {seen[0]})",
                   interval=interval)
        return seen[0]

    def stop(self) -> None:
        """Stop the process (its records go with it)."""
        self._session.close()
        self._session = requests.Session()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        if self._proc is not None and self._proc.stdout is not None:
            self._proc.stdout.close()
        self._proc = None

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


if __name__ == "__main__":
    main()
