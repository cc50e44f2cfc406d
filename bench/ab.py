"""ab: one figure for two versions of the code, in alternating runs on the same machine.

On a shared machine a single run of a figure moves by more than most changes do (the bare
baselines themselves vary by up to 2× from run to run). To tell whether a change helped,
run the figure for both versions, alternating, several times, and compare the medians:

    python -m bench.ab comment_surge a6a9d43 HEAD --runs 3 -- --rounds 2 --seconds 6
    python -m bench.ab read_api HEAD . -- --quick          # "." is this checkout, as it is

Each version other than "." is checked out with ``git worktree`` into a temporary folder and
runs with that folder first on ``PYTHONPATH`` (the figure's processes inherit it), with this
checkout's interpreter and installed dependencies. Prints one JSON line and writes
``bench/results/ab_FIGURE.json``: every run's ratio (and the figure's own rate and its
server's CPU per request where it has them), each version's medians, and B's median over
A's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import ROOT, machine_info, median, write_result

FIGURES = ("open_latency", "fanout", "read_api", "comment_surge", "scale")
#: Numbers a figure reports besides its ratio, compared too: name -> path in its result
#: (comment_surge: Daylight's posts/s, and the CPU per post of Daylight's processes).
EXTRAS: dict[str, dict[str, tuple[str, ...]]] = {
    "comment_surge": {"rate": ("daylight", "posts_per_second_median"),
                      "cpu_ms": ("cpu_per_request", "daylight", "cpu_ms")},
    # The goal is an absolute p99: the ratio alone hides a run whose baseline was slow too.
    "open_latency": {"p99_ms": ("daylight", "p99_ms"), "p50_ms": ("daylight", "p50_ms"),
                     "baseline_p99_ms": ("baseline", "p99_ms")},
    "fanout": {"rate": ("daylight", "deliveries_per_second_median")},
}
EXTRA_NAMES = sorted({name for extras in EXTRAS.values() for name in extras})
#: A run that takes longer than this is stopped (the longest full figure takes minutes).
RUN_TIMEOUT_SECONDS = 3600


def main() -> None:
    """Run the figure for both versions and write bench/results/ab_FIGURE.json."""
    parse = argparse.ArgumentParser(description=__doc__)
    parse.add_argument("figure", choices=FIGURES)
    parse.add_argument("a", help="the version to compare against (a git revision, or '.')")
    parse.add_argument("b", help="the version under test (a git revision, or '.')")
    parse.add_argument("--runs", type=int, default=3, help="runs of each version (default 3)")
    parse.epilog = "After '--': arguments for the figure (e.g. --postgres, --quick)."
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args = parse.parse_args(argv[:cut])
    figure_args = argv[cut + 1:]
    if args.runs < 1:
        parse.error("--runs must be at least 1")
    with checkout(args.a) as tree_a, checkout(args.b) as tree_b:
        runs: dict[str, list[dict[str, Any]]] = {"a": [], "b": []}
        for index in range(args.runs):
            for side, tree in (("a", tree_a), ("b", tree_b)):
                result = run_figure(args.figure, tree, figure_args)
                problem = broken(result)
                if problem:
                    raise SystemExit(f"bench.ab: run {index + 1} of {side} ({tree}) {problem}; "
                                     "its figures are not comparable, so nothing was compared")
                runs[side].append(summary(args.figure, result))
                print(f"run {index + 1}/{args.runs} {side}: {runs[side][-1]}", file=sys.stderr,
                      flush=True)
    sides = {side: {"revision": rev, "runs": runs[side], **medians(runs[side])}
             for side, rev in (("a", args.a), ("b", args.b))}
    write_result(f"ab_{args.figure}", {
        "machine": machine_info(),
        "parameters": {"figure": args.figure, "runs": args.runs, "figure_args": figure_args},
        "a": sides["a"], "b": sides["b"],
        "b_over_a": compare(sides["a"], sides["b"]),
    })


@contextmanager
def checkout(revision: str) -> Iterator[Path]:
    """A folder holding ``revision`` ('.' is this checkout, uncommitted changes and all)."""
    if revision == ".":
        yield ROOT
        return
    folder = Path(tempfile.mkdtemp(prefix="daylight-ab-")) / "tree"
    added = subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet",
                            str(folder), revision], capture_output=True, text=True, check=False)
    if added.returncode != 0:
        shutil.rmtree(folder.parent, ignore_errors=True)
        raise SystemExit(f"cannot check out {revision!r}: {added.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(folder)],
                       capture_output=True, check=False)
        shutil.rmtree(folder.parent, ignore_errors=True)
        subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], check=False)


def run_figure(figure: str, tree: Path, figure_args: list[str]) -> dict[str, Any]:
    """Run ``python -m bench.FIGURE`` from ``tree``; the JSON line it printed."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(tree), *filter(None, [os.environ.get("PYTHONPATH")])])}
    try:
        done = subprocess.run([sys.executable, "-m", f"bench.{figure}", *figure_args],
                              cwd=tree, env=env, capture_output=True, text=True,
                              timeout=RUN_TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"bench.{figure} in {tree} took over {RUN_TIMEOUT_SECONDS} s") from None
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"bench.{figure} failed in {tree} (exit {done.returncode}):\n"
                         f"{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def broken(result: dict[str, Any]) -> str | None:
    """Why a run's figures cannot be compared, if they cannot: requests or deliveries that
    failed or went missing (the figure's ``failures``; its rates count every answer)."""
    failures = result.get("failures")
    if failures:
        return f"had {failures} failed or missing requests or deliveries"
    return None


def summary(figure: str, result: dict[str, Any]) -> dict[str, Any]:
    """What is compared from one run: its ratio (a number, or one per endpoint), its
    ``EXTRAS`` where it has them, and whether it passed."""
    row: dict[str, Any] = {"ratio": result.get("ratio"), "pass": result.get("pass"),
                           "git": result.get("machine", {}).get("git_commit")}
    for name, path in EXTRAS.get(figure, {}).items():
        value: Any = result
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        row[name] = value
    return row


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each compared number's median over a version's runs."""
    out: dict[str, Any] = {}
    ratios = [run["ratio"] for run in runs if run["ratio"] is not None]
    if ratios and all(isinstance(r, int | float) for r in ratios):
        out["ratio_median"] = round(median([float(r) for r in ratios]), 3)
    elif ratios and all(isinstance(r, dict) for r in ratios):
        keys = [k for k, v in ratios[0].items() if isinstance(v, int | float)]
        out["ratio_median"] = {k: round(median([float(r[k]) for r in ratios]), 3)
                               for k in keys}
    for name in EXTRA_NAMES:
        values = [float(run[name]) for run in runs if run.get(name) is not None]
        if values:
            out[f"{name}_median"] = round(median(values), 3)
    return out


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """B's medians over A's."""
    out: dict[str, Any] = {}
    ra, rb = a.get("ratio_median"), b.get("ratio_median")
    if isinstance(ra, float) and isinstance(rb, float) and ra:
        out["ratio"] = round(rb / ra, 3)
    elif isinstance(ra, dict) and isinstance(rb, dict):
        out["ratio"] = {k: round(rb[k] / ra[k], 3) for k in ra if k in rb and ra[k]}
    # (For cpu_ms, below 1 means B spends less CPU per request than A.)
    for name in EXTRA_NAMES:
        if a.get(f"{name}_median") and b.get(f"{name}_median"):
            out[name] = round(b[f"{name}_median"] / a[f"{name}_median"], 3)
    return out


if __name__ == "__main__":
    main()
