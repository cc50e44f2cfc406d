"""Real time, real processes: ``daylight run`` opens a period on its second and partners
hear within one second. No fake clock here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.realtime
DAYLIGHT = str(Path(sys.executable).parent / "daylight")


def _cli(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([DAYLIGHT, *args], env=env, capture_output=True, text=True,
                            timeout=60, check=True)
    return result.stdout


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'daylight.db'}",
           "DAYLIGHT_WEBHOOK_ALLOW_PRIVATE": "1", "DAYLIGHT_SECRET_KEY": "realtime-test"}
    env.pop("DAYLIGHT_TEST_POSTGRES_URL", None)
    _cli(env, "db", "upgrade")
    _cli(env, "departments", "add", "police", "--name", "Police Department")
    tokens = {role: _cli(env, "tokens", "create", "--role", role, "--name", role,
                         *(["--department", "police"] if role == "staff" else [])
                         ).strip().splitlines()[-1]
              for role in ("staff", "reviewer", "partner")}
    process = subprocess.Popen([DAYLIGHT, "run", "--port", "0"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 30
        url = None
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            match = re.search(r"running at (http://\S+/)", line)
            if match:
                url = match.group(1)
        assert url, "daylight run did not print its URL"
        yield url.rstrip("/"), tokens
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_period_opens_on_time_and_partners_hear_within_a_second(server):
    base, tokens = server
    auth = {role: {"Authorization": f"Bearer {t}"} for role, t in tokens.items()}
    with Receiver() as receiver:
        endpoint = requests.post(f"{base}/api/v1/webhook-endpoints", json={
            "url": receiver.url("/opened"), "event_types": ["comment_period.opened"]},
            headers=auth["partner"], timeout=10)
        assert endpoint.status_code == 201, endpoint.text
        technology = requests.post(f"{base}/api/v1/technologies", json={
            "name": "Drones", "department": "police", "purpose": "Search and rescue."},
            headers=auth["staff"], timeout=10).json()
        submitted = requests.post(f"{base}/api/v1/technologies/{technology['id']}/submit",
                                  headers=auth["staff"], timeout=10)
        assert submitted.status_code == 200, submitted.text
        opens_at = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
        review = requests.post(f"{base}/api/v1/technologies/{technology['id']}/reviews", json={
            "comment_opens_at": opens_at.isoformat(),
            "comment_closes_at": (opens_at + timedelta(days=60)).isoformat(),
            "meetings": [{"starts_at": (opens_at + timedelta(days=7)).isoformat(),
                          "place": "City Hall"}]}, headers=auth["reviewer"], timeout=10)
        assert review.status_code == 201, review.text
        # Map the receiver's monotonic arrival times onto the wall clock.
        offset = time.time() - time.monotonic()
        [request] = receiver.wait_for(1, path="/opened", timeout=15)
        arrived = datetime.fromtimestamp(request.at + offset, UTC)
    lag = (arrived - opens_at).total_seconds()
    opened = requests.get(f"{base}/api/v1/reviews/{review.json()['id']}", timeout=10).json()
    opened_lag = (datetime.fromisoformat(opened["opened_at"]) - opens_at).total_seconds()
    print(f"opened {opened_lag * 1000:.0f} ms and delivered {lag * 1000:.0f} ms after "
          "comment_opens_at")
    assert opened["status"] == "open"
    assert 0 <= opened_lag < 1.0
    assert 0 <= lag < 1.0
