"""The benchmark harness's own arithmetic: CPU readings from /proc and the A/B comparison."""

from __future__ import annotations

import math
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from bench.ab import compare, medians, summary
from bench.comment_surge import cpu_summary
from bench.common import (
    CpuUse,
    MachineTime,
    command_cpu,
    machine_time,
    session_cpu,
    session_peak_rss_mb,
)

# A child in its own session that holds 200 MB for a moment, lets it go, says so, then waits.
_GROW = """
import sys
block = bytearray(200 * 1024 * 1024)
del block
print("grew", flush=True)
sys.stdin.readline()
"""

# A child in its own session that spends 0.3 s of its own CPU, says so, then waits.
_BURN = """
import sys, time
while time.process_time() < 0.3:
    pass
print("spent", flush=True)
sys.stdin.readline()
"""


# The same, under a command name of its own (as ``ps`` and /proc/PID/stat show it).
_NAMED_BURN = """
with open("/proc/self/comm", "w") as comm:
    comm.write("dl-bench-burn")
""" + _BURN


@contextmanager
def _child(script: str, says: str, **popen: Any) -> Iterator[subprocess.Popen[str]]:
    """A Python child running ``script``, once it has printed ``says``; ended on leaving
    (its stdin closed, so a script waiting on it returns)."""
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, **popen)
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == says
        yield child
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(timeout=30)


def _state(pid: int) -> str:
    """The process's state letter from /proc (S: sleeping)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads Linux's /proc")
def test_session_peak_rss_is_the_high_water_mark_of_a_sessions_processes() -> None:
    with _child(_GROW, "grew", start_new_session=True) as child:
        peak = session_peak_rss_mb([child.pid])
        assert peak is not None and peak >= 200  # though the memory was given back
        assert session_peak_rss_mb([2**22 + 7]) == 0  # no such session


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads Linux's /proc")
def test_session_cpu_counts_a_sessions_processes_and_no_one_elses() -> None:
    with _child(_BURN, "spent", start_new_session=True) as child:
        # Read once it sleeps on its stdin: blocking there is a context switch of its own.
        deadline = time.monotonic() + 10
        while _state(child.pid) != "S":
            assert time.monotonic() < deadline, "the child never waited on its stdin"
            time.sleep(0.001)
        use = session_cpu([child.pid])
        assert use is not None
        # The kernel counts user and system time apart, each in clock ticks (10 ms): 0.3 s
        # may show a few ticks short.
        assert use.seconds >= 0.25
        assert use.switches >= 1
        nobody = session_cpu([2**22 + 7])  # above the kernel's largest pid: no such session
        assert nobody == CpuUse(0.0, 0)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads Linux's /proc")
def test_command_cpu_counts_the_processes_of_one_command() -> None:
    with _child(_NAMED_BURN, "spent"):
        use = command_cpu("dl-bench-burn")
        assert use is not None and use.seconds >= 0.25  # 0.3 s, counted in clock ticks
        assert command_cpu("dl-no-such-cmd") == CpuUse(0.0, 0)


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="reads Linux's /proc")
def test_machine_time_sees_a_core_kept_busy() -> None:
    before = machine_time()
    start = time.process_time()
    while time.process_time() - start < 0.5:
        pass
    after = machine_time()
    assert before is not None and after is not None
    # /proc/stat counts whole clock ticks, sampled, and a virtual machine may book a tick
    # elsewhere: 0.5 s spun must show as most of it (CI once saw 0.3 s booked as 0.2899…).
    assert after.busy - before.busy >= 0.4
    assert 0 < before.busy_share(after) <= 1


def test_busy_share_divides_busy_by_all_time() -> None:
    assert MachineTime(10.0, 40.0).busy_share(MachineTime(13.0, 44.0)) == 0.75
    assert math.isnan(MachineTime(1.0, 2.0).busy_share(MachineTime(1.0, 2.0)))


def test_per_request_figures_divide_the_difference() -> None:
    before, after = CpuUse(1.0, 100), CpuUse(1.5, 400)
    assert before.per(after, 250) == {"cpu_ms": 2.0, "context_switches": 1.2}
    empty = before.per(after, 0)
    assert math.isnan(empty["cpu_ms"]) and math.isnan(empty["context_switches"])


def test_cpu_summary_gives_the_ratio_the_cpu_allows() -> None:
    out = cpu_summary({
        "daylight": [{"cpu_ms": 1.6, "context_switches": 14.0},
                     {"cpu_ms": 1.4, "context_switches": 12.0},
                     {"cpu_ms": 2.0, "context_switches": 20.0}],
        "baseline": [{"cpu_ms": 0.6, "context_switches": 6.0}],
        "durable": [],
    })
    assert out["daylight"] == {"cpu_ms": 1.6, "context_switches": 14.0}
    assert out["baseline"] == {"cpu_ms": 0.6, "context_switches": 6.0}
    assert "durable" not in out  # no rounds, no figure
    assert out["baseline_over_daylight"] == 0.375
    assert "baseline_over_daylight_with_database" not in out  # SQLite: in the servers


def test_cpu_summary_counts_a_local_database_servers_cpu_in_the_bound() -> None:
    out = cpu_summary({
        "daylight": [{"cpu_ms": 1.0, "context_switches": 20.0, "database_cpu_ms": 0.3,
                      "machine_busy": 0.8},
                     {"cpu_ms": 1.2, "context_switches": 22.0, "database_cpu_ms": 0.4,
                      "machine_busy": 0.9}],
        "baseline": [{"cpu_ms": 0.44, "context_switches": 6.0, "machine_busy": 0.95}],
    })
    assert out["daylight"] == {"cpu_ms": 1.1, "context_switches": 21.0,
                               "database_cpu_ms": 0.35, "machine_busy": 0.85}
    assert out["baseline"] == {"cpu_ms": 0.44, "context_switches": 6.0, "machine_busy": 0.95}
    assert out["baseline_over_daylight"] == 0.4
    assert out["baseline_over_daylight_with_database"] == 0.303  # 0.44 / (1.1 + 0.35)


def test_ab_compares_the_cpu_per_request_of_two_versions() -> None:
    def run(rate: float, cpu_ms: float) -> dict[str, object]:
        return {"ratio": rate / 4000, "failures": 0, "machine": {"git_commit": "x"},
                "daylight": {"posts_per_second_median": rate},
                "cpu_per_request": {"daylight": {"cpu_ms": cpu_ms}}}

    a = medians([summary("comment_surge", run(r, c))
                 for r, c in ((1000, 1.6), (1100, 1.5), (900, 1.8))])
    b = medians([summary("comment_surge", run(r, c))
                 for r, c in ((1200, 1.2), (1300, 1.1), (1100, 1.3))])
    assert a["cpu_ms_median"] == 1.6 and b["cpu_ms_median"] == 1.2
    assert compare(a, b) == {"ratio": 1.2, "rate": 1.2, "cpu_ms": 0.75}
    # Figures that report no CPU are compared as before.
    assert "cpu_ms" not in summary("read_api", {"ratio": {"list": 1.0}})
