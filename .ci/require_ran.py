"""Fail unless the PostgreSQL, browser and Redis tests in a JUnit report ran and none skipped."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET


def main(path: str) -> int:
    cases = ET.parse(path).getroot().iter("testcase")
    counts = {"postgresql": [0, 0], "browser": [0, 0], "redis": [0, 0]}
    # Browser and Redis tests are known by their module, PostgreSQL ones by their id.
    modules = {"browser": "browser", "redis": "test_rate_limit_store"}
    for case in cases:
        name = f"{case.get('classname', '')}.{case.get('name', '')}"
        skipped = case.find("skipped") is not None
        for kind in counts:
            if f"[{kind}" in name or f"-{kind}" in name or (
                    kind in modules and modules[kind] in case.get("classname", "")):
                counts[kind][0] += 1
                counts[kind][1] += skipped
    failed = False
    for kind, (ran, skipped) in counts.items():
        print(f"{kind}: {ran} tests, {skipped} skipped")
        if kind in ("postgresql", "redis") and (ran == 0 or skipped):
            failed = True
        if kind == "browser" and skipped:
            failed = True
    if failed:
        print("required tests were skipped or absent", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
