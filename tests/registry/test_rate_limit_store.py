"""The comment budget counted in Redis (``DAYLIGHT_RATELIMIT_STORAGE_URI``): one count for
every web process, kept when a process starts again; and when Redis stops answering, posts
are still taken and still limited, each process counting on its own.

Each test starts its own ``redis-server`` on a free port and stops it after. Without the
binary these tests skip, except under ``DAYLIGHT_REQUIRE_REDIS=1`` (CI), where that fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from flask import Flask

from bench.comment_surge import open_review
from bench.common import Database, Deployment, free_port, make_app, migrate, seed_basics
from registry import create_app
from registry.config import ConfigError, load_settings
from tests.pages.conftest import csrf_token
from tests.registry.helpers import open_period

LIMIT = "3 per minute"


class RedisServer:
    """A private redis-server on 127.0.0.1 that keeps nothing on disk."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            reason = "redis-server is not installed (apt-get install redis-server)"
            if os.environ.get("DAYLIGHT_REQUIRE_REDIS") == "1":
                pytest.fail(f"{reason}; DAYLIGHT_REQUIRE_REDIS=1 requires these tests")
            pytest.skip(reason)
        self.binary, self.folder = binary, folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.client = redis.Redis(port=self.port, socket_timeout=2)
        self.start()

    def start(self) -> None:
        """Start the server (again, on the same port, empty) and wait until it answers."""
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while True:
            try:
                if self.client.ping():
                    break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
            time.sleep(0.02)

    def counts(self) -> dict[str, int]:
        """Every counter the rate limiter keeps, by key."""
        return {key.decode(): int(self.client.get(key) or 0)
                for key in self.client.keys("LIMITS:*")}

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def fast_path() -> bool:
    """Whether anonymous JSON posts are answered in front of Flask (the default)."""
    return True


@pytest.fixture
def limit() -> str:
    """The comment budget of the app under test."""
    return LIMIT


@pytest.fixture
def app_config(redis_server: RedisServer, fast_path: bool, limit: str) -> dict[str, Any]:
    return {"COMMENT_RATE_LIMIT": limit, "RATELIMIT_STORAGE_URI": redis_server.url,
            "COMMENT_FAST_PATH": fast_path, "PROPAGATE_EXCEPTIONS": False}


@pytest.fixture
def open_review_ids(app: Flask, client, token, make_technology, clock) -> tuple[str, str]:
    """(technology id, review id) of a review whose comment period is open."""
    return open_period(app, client, token("reviewer"), make_technology, clock)


def _form(client, technology_id: str, review_id: str, body: str) -> Any:
    page = client.get(f"/technologies/{technology_id}").get_data(as_text=True)
    return client.post(f"/technologies/{technology_id}/reviews/{review_id}/comments",
                       data={"csrf_token": csrf_token(page), "body": body})


def test_the_budget_is_counted_in_redis_and_outlives_the_process_that_counted(
        app, client, open_review_ids, redis_server, clock):
    technology_id, review_id = open_review_ids
    url = f"/api/v1/reviews/{review_id}/comments"
    answers = [client.post(url, json={"body": "First, by the API."}),
               _form(client, technology_id, review_id, "Second, by the page's form."),
               client.post(url, json={"body": "Third, by the API."}),
               client.post(url, json={"body": "Fourth: over the budget."})]
    assert [a.status_code for a in answers] == [201, 303, 201, 429]
    assert answers[3].mimetype == "application/problem+json"
    # One counter for the client's minute, in Redis: the three taken and the one refused.
    assert list(redis_server.counts().values()) == [4]

    # A new app (a restarted or another web process) counts on from Redis.
    again = create_app({**app.config, "CLOCK": clock})
    refused = again.test_client().post(url, json={"body": "From another process."})
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert list(redis_server.counts().values()) == [5]


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast", "route"])
def test_with_redis_down_posts_are_taken_and_limited_in_each_process(
        app, client, open_review_ids, redis_server, fast_path):
    _technology_id, review_id = open_review_ids
    url = f"/api/v1/reviews/{review_id}/comments"
    assert client.post(url, json={"body": "Counted in Redis."}).status_code == 201
    redis_server.stop()
    answers = [client.post(url, json={"body": f"While Redis is down, {i}."}) for i in range(4)]
    # Counted afresh in this process's memory: 3 a minute, then 429; never a 500.
    assert [a.status_code for a in answers] == [201, 201, 201, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers[:3]] == ["2", "1", "0"]


@pytest.mark.parametrize("limit", ["1000 per minute"])
def test_once_redis_is_back_the_budget_is_counted_there_again(
        app, client, open_review_ids, redis_server):
    from registry.extensions import limiter

    _technology_id, review_id = open_review_ids
    url = f"/api/v1/reviews/{review_id}/comments"
    redis_server.stop()
    assert client.post(url, json={"body": "While Redis is down."}).status_code == 201
    assert limiter._storage_dead  # counting in memory now
    redis_server.start()  # empty, on the same port
    # flask-limiter tries the store again after 1, 2, 4… seconds: post until one is counted
    # there (a condition with a deadline, not a guess at the delay).
    deadline = time.monotonic() + 90
    posted = 0
    while not redis_server.counts():
        assert time.monotonic() < deadline, "the budget never went back to Redis"
        answer = client.post(url, json={"body": f"Redis may be back ({posted})."})
        assert answer.status_code == 201
        posted += 1
        time.sleep(0.2)
    assert not limiter._storage_dead
    # The fast path takes posts again, counting in Redis.
    before = sum(redis_server.counts().values())
    assert client.post(url, json={"body": "Counted in Redis again."}).status_code == 201
    assert sum(redis_server.counts().values()) == before + 1


def test_healthz_says_whether_the_shared_store_answers(client, redis_server):
    assert client.get("/healthz").get_json()["rate_limit_store"] == "ok"
    redis_server.stop()
    answer = client.get("/healthz")
    # Comments are still taken (counted per process), so the service is up; it says so.
    assert answer.status_code == 200
    assert answer.get_json()["rate_limit_store"] == "unreachable"


def test_a_redis_that_hangs_does_not_hold_posts(app, client, open_review_ids, redis_server):
    _technology_id, review_id = open_review_ids
    url = f"/api/v1/reviews/{review_id}/comments"
    assert client.post(url, json={"body": "Counted in Redis."}).status_code == 201
    answers: list[int] = []

    def post() -> None:
        answers.append(client.post(url, json={"body": "While Redis hangs."}).status_code)

    redis_server.process.send_signal(signal.SIGSTOP)  # it keeps its socket but never answers
    try:
        poster = threading.Thread(target=post, daemon=True)
        poster.start()
        poster.join(timeout=30)  # a deadline, not a guess: answered after the store's timeout
        assert not poster.is_alive(), "the post waited on a Redis that does not answer"
    finally:
        redis_server.process.send_signal(signal.SIGCONT)
    assert answers == [201]


def test_two_deployments_share_one_budget_through_redis(tmp_path, redis_server):
    """Two gunicorn servers (each with the Procfile's web processes), one Redis: the
    client's budget is spent across both. With memory:// each would allow it whole."""
    database = Database.fresh("ratelimit", tmp_path, None)
    seeding = make_app(database.url)
    migrate(seeding)
    seed_basics(seeding)
    review_id = open_review(seeding)
    settings = {"DAYLIGHT_RATELIMIT_STORAGE_URI": redis_server.url,
                "DAYLIGHT_COMMENT_RATE_LIMIT": LIMIT}
    first = Deployment(database, tmp_path / "a", env_extra=settings, shape="gunicorn",
                       workers=0)
    second = Deployment(database, tmp_path / "b", env_extra=settings, shape="gunicorn",
                        workers=0)
    for deployment in (first, second):
        deployment.folder.mkdir()
    with first, second:
        first.start()
        second.start()
        statuses = []
        for deployment in (first, first, second, second):
            # A connection of its own each time, as separate residents' browsers would.
            answer = requests.post(f"{deployment.base}/api/v1/reviews/{review_id}/comments",
                                   json={"body": "The same resident, again."}, timeout=10,
                                   headers={"Connection": "close"})
            statuses.append(answer.status_code)
    assert statuses == [201, 201, 201, 429]
    assert list(redis_server.counts().values()) == [4]


def test_a_store_daylight_cannot_count_in_is_refused_at_start(monkeypatch, tmp_path):
    monkeypatch.setenv("DAYLIGHT_RATELIMIT_STORAGE_URI", "memcached://secret@10.0.0.1:11211")
    with pytest.raises(ConfigError) as refused:
        load_settings(str(tmp_path))
    assert "memcached://" in str(refused.value)
    assert "secret" not in str(refused.value)  # a URL may hold a password: never echoed
    monkeypatch.setenv("DAYLIGHT_RATELIMIT_STORAGE_URI", "redis://127.0.0.1:6379/2")
    assert load_settings(str(tmp_path))["RATELIMIT_STORAGE_URI"] == "redis://127.0.0.1:6379/2"
