"""Placeholder worker (replaced by the scheduler work)."""

from __future__ import annotations

from flask import Flask


class Worker:
    """Runs Daylight's background jobs."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def start(self) -> None:
        """Start the jobs."""

    def stop(self) -> None:
        """Stop the jobs."""
