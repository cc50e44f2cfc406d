"""Daylight's measurement harness: one command per figure, and failure drills.

Each figure is ``python -m bench.NAME [--postgres [URL]] [--quick]``; it prints one JSON
line and writes ``bench/results/NAME.json``. See docs/performance.md.
"""
