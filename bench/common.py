"""What every figure and drill shares: arguments, the machine, databases, processes, results.

Each figure runs Daylight as it is deployed (``daylight run`` on SQLite; gunicorn with the
Procfile's settings and ``daylight worker`` processes on PostgreSQL), measures a baseline in
the same run, and writes ``bench/results/NAME.json`` besides printing one JSON line.
Every wait has a deadline; every process started here is stopped here, by its own id.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent
DAYLIGHT = str(BIN / "daylight")
GUNICORN = str(BIN / "gunicorn")
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432"
SECRET_KEY = "bench-" + "k" * 40


# --- arguments ---------------------------------------------------------------------------


def parser(description: str) -> argparse.ArgumentParser:
    """The arguments every figure takes: ``--postgres [URL]`` and ``--quick``."""
    parse = argparse.ArgumentParser(description=description)
    parse.add_argument(
        "--postgres", nargs="?", const=DEFAULT_POSTGRES, default=None, metavar="URL",
        help="run on PostgreSQL (server URL without a database name, or with one to use; "
             f"default {DEFAULT_POSTGRES}) with 2 web and 2 worker processes",
    )
    parse.add_argument("--quick", action="store_true", help="a smoke run (well under 30 s)")
    parse.add_argument("--keep", action="store_true",
                       help="keep the temporary folder (logs, SQLite file) for inspection")
    return parse


# --- numbers -----------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0–100) by the nearest-rank method; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


def median(values: Sequence[float]) -> float:
    """The median (NaN for no values)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[middle])
    return (ordered[middle - 1] + ordered[middle]) / 2


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99 and max of durations given in seconds, in milliseconds."""
    return {
        "count": len(seconds),
        "p50_ms": round(percentile(seconds, 50) * 1000, 2),
        "p90_ms": round(percentile(seconds, 90) * 1000, 2),
        "p99_ms": round(percentile(seconds, 99) * 1000, 2),
        "max_ms": round(max(seconds) * 1000, 2) if seconds else math.nan,
    }


def ratio(value: float, baseline: float) -> float:
    """``value / baseline`` rounded, NaN when the baseline is zero."""
    return round(value / baseline, 3) if baseline else math.nan


# --- the machine -------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    """What the run ran on: enough to tell two results' machines apart."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"],
                                    capture_output=True, text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", False
    return {
        "hostname": socket.gethostname(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": commit + ("+dirty" if dirty else ""),
        "wrk": shutil.which("wrk"),
    }


def write_result(name: str, result: dict[str, Any]) -> dict[str, Any]:
    """Write ``bench/results/NAME.json`` and print the result as one JSON line.

    A figure that sends requests or deliveries reports ``failures``: how many failed or
    went missing. Its rates count every answer, so a run with failures is not a measure of
    the code (``bench.ab`` refuses to compare it)."""
    result = {"name": name, "finished_at": datetime.now(UTC).isoformat(), **result}
    result.setdefault("machine", machine_info())
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, default=str, allow_nan=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, default=str, indent=2) + "\n")
    print(text, flush=True)
    return result


# --- CPU --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuUse:
    """CPU time and context switches of some processes, so far (from ``/proc``)."""

    seconds: float
    switches: int

    def per(self, later: CpuUse, count: int) -> dict[str, float]:
        """Milliseconds of CPU and context switches per item between this reading and
        ``later``, for ``count`` items (NaN for none)."""
        if count <= 0:
            return {"cpu_ms": math.nan, "context_switches": math.nan}
        return {"cpu_ms": round((later.seconds - self.seconds) / count * 1000, 3),
                "context_switches": round((later.switches - self.switches) / count, 2)}


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def session_cpu(sessions: Sequence[int]) -> CpuUse | None:
    """CPU time (user and system) and context switches of every live process, all its
    threads counted, in the given sessions (``Proc`` starts each in its own, its id the
    leader's pid); None where ``/proc`` is not there (not Linux). A process that ended
    between two readings takes its count with it, so compare readings of servers that run
    throughout."""
    wanted = set(sessions)
    return _processes_cpu(lambda _name, fields: int(fields[3]) in wanted)


def command_cpu(name: str) -> CpuUse | None:
    """CPU time and context switches of every live process whose command is ``name`` (the
    local PostgreSQL server's ``postgres`` processes, say), as ``session_cpu`` counts
    them; None where ``/proc`` is not there. A backend that ended between two readings
    takes its count with it, as in ``session_cpu``: pooled connections live throughout."""
    return _processes_cpu(lambda command, _fields: command == name)


def _processes_cpu(keep: Callable[[str, list[str]], bool]) -> CpuUse | None:
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    ticks = switches = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # "pid (command) state …": the command may hold spaces and parentheses. After
            # it, state is the 1st field, session the 4th, utime and stime the 12th and 13th.
            head, _, rest = (entry / "stat").read_text().rpartition(")")
            fields = rest.split()
            if not keep(head.partition("(")[2], fields):
                continue
            ticks += int(fields[11]) + int(fields[12])
            for task in (entry / "task").iterdir():
                for line in (task / "status").read_text().splitlines():
                    if "ctxt_switches:" in line:  # voluntary and nonvoluntary
                        switches += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            continue  # ended while being read
    return CpuUse(ticks / _TICKS, switches)


@dataclass(frozen=True)
class MachineTime:
    """The machine's CPU time so far, all cores together (from ``/proc/stat``)."""

    busy: float
    total: float

    def busy_share(self, later: MachineTime) -> float:
        """The share of all cores' time that was busy between this reading and ``later``
        (0 to 1; whoever was busy: servers, load generator, database, anyone else)."""
        spent = later.total - self.total
        return round((later.busy - self.busy) / spent, 3) if spent > 0 else math.nan


def machine_time() -> MachineTime | None:
    """All cores' busy and total time so far; None where ``/proc/stat`` is not there."""
    try:
        line = Path("/proc/stat").read_text().splitlines()[0]
    except OSError:
        return None
    # cpu  user nice system idle iowait irq softirq steal guest guest_nice (guest time is
    # already in user and nice).
    user, nice, system, idle, iowait, irq, softirq, steal = (
        int(value) for value in line.split()[1:9])
    busy = user + nice + system + irq + softirq + steal
    return MachineTime(busy / _TICKS, (busy + idle + iowait) / _TICKS)


def session_peak_rss_mb(sessions: Sequence[int]) -> float | None:
    """The largest peak resident memory (``VmHWM``) of any live process in the given
    sessions, in MB; None where ``/proc`` is not there. Read before and after a request, it
    shows whether the request made a process grow."""
    wanted = set(sessions)
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    peak = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[3]) not in wanted:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except (OSError, IndexError, ValueError):
            continue  # ended while being read
    return round(peak / 1024, 1)


# --- waiting -----------------------------------------------------------------------------


def wait_until(condition: Callable[[], bool], timeout: float, what: str,
               interval: float = 0.02) -> None:
    """Poll ``condition`` until it holds; raise ``TimeoutError`` naming ``what`` after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sleep_until_wall(moment: float) -> None:
    """Sleep until ``time.time()`` reaches ``moment``, spinning for the last millisecond."""
    while True:
        left = moment - time.time()
        if left <= 0:
            return
        time.sleep(left - 0.001 if left > 0.002 else 0)


# --- databases ---------------------------------------------------------------------------


@dataclass
class Database:
    """A fresh, empty database for one run: a SQLite file in a temporary folder, or a
    PostgreSQL database dropped and created anew."""

    url: str
    backend: str

    @classmethod
    def fresh(cls, name: str, folder: Path, postgres: str | None) -> Database:
        """A new database called ``name`` (PostgreSQL) or ``folder/name.db`` (SQLite)."""
        if postgres is None:
            return cls(f"sqlite:///{folder / (name + '.db')}", "sqlite")
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        server = make_url(postgres)
        database = server.database or f"daylight_bench_{name}"
        admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{database}"'))
        finally:
            admin.dispose()
        url = server.set(database=database).render_as_string(hide_password=False)
        return cls(url, "postgresql")

    @property
    def server_command(self) -> str | None:
        """The command name of the database server's processes when they run on this
        machine (so their CPU can be read: ``command_cpu``); None for SQLite, which runs in
        the servers' own processes, and for a server elsewhere."""
        from sqlalchemy.engine import make_url

        host = make_url(self.url).host or "localhost"  # no host: the local socket
        if self.backend == "postgresql" and host in ("localhost", "127.0.0.1", "::1"):
            return "postgres"
        return None


def make_app(url: str, **config: Any) -> Any:
    """A Daylight app on ``url`` for seeding in this process (never served from here)."""
    from registry import create_app

    return create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET_KEY,
                       "WEBHOOK_ALLOW_PRIVATE": True, **config})


def migrate(app: Any) -> None:
    """``daylight db upgrade``, in this process: the schema, the log head, the policies."""
    from registry import migrate as migrations

    with app.app_context():
        migrations.upgrade(app)


def utcnow() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


@dataclass
class Seeded:
    """Tokens and a department made for a run."""

    tokens: dict[str, str]
    department: str = "police"

    def auth(self, role: str) -> dict[str, str]:
        """The ``Authorization`` header of the token for ``role``."""
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def seed_basics(app: Any, roles: Sequence[str] = ("admin", "staff", "reviewer", "partner")
                ) -> Seeded:
    """A department and one token per role (made through the services, not HTTP)."""
    from registry.auth.services import create_token
    from registry.database import transaction
    from registry.departments.services import add_department, get_department

    tokens: dict[str, str] = {}
    with app.app_context(), transaction(app) as session:
        if get_department(session, "police") is None:
            add_department(session, slug="police", name="Police Department", now=utcnow())
        session.flush()
        for role in roles:
            _, secret = create_token(session, role=role, name=f"bench {role}", now=utcnow(),
                                     department_slug="police" if role == "staff" else None)
            tokens[role] = secret
    return Seeded(tokens)


def add_endpoints(app: Any, urls: Sequence[str], event_types: Sequence[str] = ()) -> list[str]:
    """Register webhook endpoints (one transaction); returns their ids."""
    from registry.database import transaction
    from webhooks import create_endpoint

    ids = []
    with app.app_context(), transaction(app) as session:
        for url in urls:
            endpoint, _ = create_endpoint(session, url=url, event_types=list(event_types),
                                          description="bench", now=utcnow(), allow_private=True)
            ids.append(endpoint.id)
    return ids


def technology_body(name: str) -> dict[str, Any]:
    """A plausible technology registration for the API."""
    return {
        "name": name, "department": "police", "vendor": "Example Vision Inc.",
        "description": "Fixed cameras that read passing licence plates.",
        "purpose": "Find vehicles on a stolen-vehicle list.",
        "data_collected": ["licence_plates", "vehicle_location"],
        "capabilities": ["licence_plate_recognition"], "retention_days": 30,
        "access_controls": "Named officers only; searches are audited.",
        "deployment_areas": ["Downtown"], "annual_cost": 120000, "in_use": True,
        "equity_impact": "Cameras could concentrate in some neighbourhoods.",
        "mitigations": "Placed on arterial roads citywide.",
    }


def review_body(opens_at: datetime, days: int = 60) -> dict[str, Any]:
    """A review opening at ``opens_at`` that satisfies any assessment (long, with a meeting)."""
    from datetime import timedelta

    return {
        "comment_opens_at": opens_at.isoformat(),
        "comment_closes_at": (opens_at + timedelta(days=days)).isoformat(),
        "meetings": [{"starts_at": (opens_at + timedelta(days=7)).isoformat(),
                      "place": "City Hall"}],
    }


# --- processes ---------------------------------------------------------------------------


@dataclass
class Proc:
    """A process started by the bench, its output in a log file, stopped by its own id."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0  # time.time() at spawn

    def start(self) -> Proc:
        """Spawn it (in its own session, so stopping it stops its children too)."""
        handle = self.log.open("ab")
        self.started_at = time.time()
        self.popen = subprocess.Popen(self.args, env=self.env, cwd=str(ROOT), stdout=handle,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        handle.close()
        return self

    @property
    def pid(self) -> int:
        """The process id."""
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        """Whether it is still running."""
        return self.popen is not None and self.popen.poll() is None

    def output(self) -> str:
        """Everything it printed so far."""
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def wait_for_output(self, pattern: str, timeout: float, after: int = 0) -> re.Match[str]:
        """Wait until its output (from character ``after``) matches ``pattern``."""
        found: list[re.Match[str]] = []

        def seen() -> bool:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited:\n{self.output()[-3000:]}")
            match = re.search(pattern, self.output()[after:])
            if match:
                found.append(match)
            return bool(match)

        wait_until(seen, timeout, f"{self.name} to print {pattern!r}")
        return found[0]

    def kill(self) -> None:
        """SIGKILL, at once (the crash drills)."""
        if self.alive():
            os.killpg(self.pid, signal.SIGKILL)
            assert self.popen is not None
            self.popen.wait(timeout=30)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM, then SIGKILL if it has not ended within ``timeout`` seconds."""
        if not self.alive():
            return
        assert self.popen is not None
        os.killpg(self.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()


def process_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of Daylight processes for a run."""
    # DAYLIGHT_READ_CACHE passes through, so a run can measure the uncached database path.
    env = {key: value for key, value in os.environ.items()
           if (not key.startswith("DAYLIGHT_") or key == "DAYLIGHT_READ_CACHE")
           and key != "DATABASE_URL"}
    env.update({
        "DATABASE_URL": database_url,
        "DAYLIGHT_SECRET_KEY": SECRET_KEY,
        "DAYLIGHT_WEBHOOK_ALLOW_PRIVATE": "1",
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


def procfile_web_settings() -> dict[str, int]:
    """Workers and threads from the Procfile's ``web:`` line, so the bench serves as
    deployed."""
    settings = {"workers": 2, "threads": 8}
    try:
        web = next(line for line in (ROOT / "Procfile").read_text().splitlines()
                   if line.startswith("web:"))
    except (OSError, StopIteration):
        return settings
    for key in settings:
        match = re.search(rf"--{key}[ =](\d+)", web)
        if match:
            settings[key] = int(match.group(1))
    return settings


def gunicorn_args(app_spec: str, port: int) -> list[str]:
    """gunicorn serving ``app_spec`` on 127.0.0.1:``port`` with the Procfile's settings."""
    web = procfile_web_settings()
    return [GUNICORN, "--workers", str(web["workers"]), "--threads", str(web["threads"]),
            "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "5", "--log-level", "warning",
            app_spec]


def wait_healthy(base: str, timeout: float = 60, path: str = "/healthz") -> None:
    """Wait until ``base + path`` answers 200."""

    def ok() -> bool:
        try:
            return requests.get(base + path, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    wait_until(ok, timeout, f"{base}{path} to answer 200", interval=0.05)


@dataclass
class Deployment:
    """Daylight running as deployed: on SQLite ``daylight run`` (web, scheduler and sender
    in one process) or gunicorn plus workers; on PostgreSQL gunicorn (Procfile settings,
    2 web processes) and 2 ``daylight worker`` processes."""

    database: Database
    folder: Path
    env_extra: dict[str, str] = field(default_factory=dict)
    shape: str = "auto"  # "run" (daylight run), "gunicorn" (web + workers), "auto"
    workers: int | None = None  # worker processes beside gunicorn (default 1 SQLite, 2 PG)
    app_spec: str = "registry:create_app()"  # what gunicorn serves
    port: int = 0
    procs: list[Proc] = field(default_factory=list)

    @property
    def base(self) -> str:
        """The web server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """The processes' environment."""
        return process_env(self.database.url, **self.env_extra)

    def resolved_shape(self) -> str:
        """The process layout this deployment uses."""
        if self.shape != "auto":
            return self.shape
        return "run" if self.database.backend == "sqlite" else "gunicorn"

    def worker_count(self) -> int:
        """Worker processes started (``daylight run`` counts as one)."""
        if self.resolved_shape() == "run":
            return 1
        if self.workers is not None:
            return self.workers
        return 1 if self.database.backend == "sqlite" else 2

    def describe(self) -> dict[str, Any]:
        """The layout, for the results file."""
        shape = self.resolved_shape()
        web = procfile_web_settings()
        return {
            "backend": self.database.backend,
            "shape": "daylight run (web + worker in one process)" if shape == "run" else
                     f"gunicorn --workers {web['workers']} --threads {web['threads']} + "
                     f"{self.worker_count()} daylight worker",
            "web_processes": 1 if shape == "run" else web["workers"],
            "worker_processes": self.worker_count(),
        }

    def start(self, web: bool = True, timeout: float = 90) -> Deployment:
        """Start the processes and wait until the web answers and the workers have
        started."""
        self.port = self.port or free_port()
        if self.resolved_shape() == "run":
            proc = self._proc("daylight-run", [DAYLIGHT, "run", "--port", str(self.port)])
            proc.start()
            proc.wait_for_output(r"Daylight is running at", timeout)
        else:
            if web:
                self._proc("gunicorn", gunicorn_args(self.app_spec, self.port)).start()
            for _ in range(self.worker_count()):
                self.start_worker(timeout)
        if web:
            wait_healthy(self.base, timeout)
        return self

    def start_worker(self, timeout: float = 90) -> Proc:
        """Start one more ``daylight worker`` and wait until it says it has started."""
        index = sum(1 for p in self.procs if p.name.startswith("worker"))
        proc = self._proc(f"worker-{index}", [DAYLIGHT, "worker"])
        proc.start()
        proc.wait_for_output(r"Daylight worker started", timeout)
        return proc

    def _proc(self, name: str, args: list[str]) -> Proc:
        proc = Proc(name, args, self.env, self.folder / f"{name}.log")
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        """Stop every process this deployment started."""
        for proc in reversed(self.procs):
            proc.stop()

    def __enter__(self) -> Deployment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def workspace(name: str, keep: bool = False) -> Iterator[Path]:
    """A temporary folder for one run's database and logs (removed unless ``keep``)."""
    folder = Path(tempfile.mkdtemp(prefix=f"daylight-bench-{name}-"))
    try:
        yield folder
    finally:
        if keep:
            print(f"kept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)


def token_hex() -> str:
    """A short random label."""
    return secrets.token_hex(4)


def query(app: Any, sql: str, **params: Any) -> list[Any]:
    """Rows of one read-only statement on the app's database, on a connection of its own
    (a read on SQLite begins deferred, so it never holds the write lock)."""
    from sqlalchemy import text

    from registry.database import engine
    from registry.db import read_only

    with read_only(), engine(app).connect() as conn:
        rows = list(conn.execute(text(sql), params).all())
        conn.rollback()
    return rows
