"""Comment summaries: exact for ordinary reviews, reused for a bounded time when counting is
slow, never showing a hidden comment, and counted once at a time."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from registry.comments import summaries
from registry.comments.summaries import SummaryCache, summary_cache
from registry.worker.jobs import run_due_transitions
from tests.registry.helpers import schedule


class Moment:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Ticking(Moment):
    """A monotonic clock half a second later at every reading: each count takes that long."""

    def __call__(self) -> float:
        self.now += 0.5
        return self.now


class Counter:
    """A count that takes ``took`` seconds of the fake clock and returns ``summary``."""

    def __init__(self, moment: Moment, took: float, seq: int = 7) -> None:
        self.moment, self.took, self.seq = moment, took, seq
        self.calls = 0

    def __call__(self) -> tuple[int, dict[str, Any]]:
        self.calls += 1
        self.moment.now += self.took
        return self.seq, {"total": self.calls}


def never(_seq: int) -> bool:
    return False


def total(cache: SummaryCache, head: int, count: Counter) -> int:
    """The total of review "rev" as the cache gives it with the log's head at ``head``."""
    return int(cache.get("rev", head=lambda: head, count=count,
                         invalidated_since=never).summary["total"])


def test_a_quick_count_is_never_reused_once_the_log_moves() -> None:
    moment = Moment()
    cache = SummaryCache(moment)
    count = Counter(moment, took=0.01)
    asked: list[int] = []

    def hidden_since(seq: int) -> bool:
        asked.append(seq)
        return False

    def read(head: int) -> int:
        return int(cache.get("rev", head=lambda: head, count=count,
                             invalidated_since=hidden_since).summary["total"])

    assert read(7) == 1
    assert read(7) == 1  # the log has not moved: the same count is exact
    assert read(8) == 2  # it moved: counted again at once, however recent the first count
    assert count.calls == 2
    assert asked == []  # nothing to ask of the log for a count that is never reused


def test_a_slow_count_is_reused_for_ten_times_as_long_as_it_took() -> None:
    moment = Moment()
    cache = SummaryCache(moment)
    count = Counter(moment, took=2.0)  # 2 s: reused for 20 s from when it began
    assert total(cache, 7, count) == 1
    moment.now += 17.9  # 19.9 s after the count began
    assert total(cache, 9, count) == 1
    moment.now += 0.2  # 20.1 s
    assert total(cache, 9, count) == 2
    assert count.calls == 2


def test_a_very_slow_count_is_reused_for_a_minute_at_most() -> None:
    moment = Moment()
    cache = SummaryCache(moment)
    count = Counter(moment, took=30.0)
    cache.get("rev", head=lambda: 7, count=count, invalidated_since=never)
    moment.now += summaries.MAX_AGE_SECONDS - 30.0 + 0.1
    assert total(cache, 8, count) == 2


def test_a_count_is_reused_at_any_age_while_the_log_stays_put() -> None:
    moment = Moment()
    cache = SummaryCache(moment)
    count = Counter(moment, took=0.01)
    cache.get("rev", head=lambda: 7, count=count, invalidated_since=never)
    moment.now += 3600
    assert total(cache, 7, count) == 1
    assert count.calls == 1


def test_a_hidden_comment_after_the_count_makes_it_count_again() -> None:
    moment = Moment()
    cache = SummaryCache(moment)
    count = Counter(moment, took=2.0)
    cache.get("rev", head=lambda: 7, count=count, invalidated_since=never)
    asked: list[int] = []

    def hidden_since(seq: int) -> bool:
        asked.append(seq)
        return True

    assert cache.get("rev", head=lambda: 8, count=count,
                     invalidated_since=hidden_since).summary["total"] == 2
    assert asked == [7]  # asked from the seq the count included


def test_reviews_are_counted_apart_and_the_least_read_are_dropped(monkeypatch) -> None:
    monkeypatch.setattr(summaries, "MAX_REVIEWS", 2)
    moment = Moment()
    cache = SummaryCache(moment)
    counts = {name: Counter(moment, took=2.0) for name in ("a", "b", "c")}
    for name in ("a", "b", "a", "c"):  # "b" is now the least recently read
        cache.get(name, head=lambda: 7, count=counts[name], invalidated_since=never)
    cache.get("a", head=lambda: 7, count=counts["a"], invalidated_since=never)
    cache.get("b", head=lambda: 7, count=counts["b"], invalidated_since=never)
    assert (counts["a"].calls, counts["b"].calls, counts["c"].calls) == (1, 2, 1)


def test_one_thread_counts_while_the_others_wait_for_the_first_count() -> None:
    cache = SummaryCache()
    started, release = threading.Event(), threading.Event()
    calls = []

    def slow() -> tuple[int, dict[str, Any]]:
        calls.append(1)
        started.set()
        assert release.wait(10)
        return 7, {"total": 5}

    results: list[dict[str, Any]] = []
    first = threading.Thread(target=lambda: results.append(
        cache.get("rev", head=lambda: 7, count=slow, invalidated_since=never).summary))
    first.start()
    assert started.wait(10)
    second = threading.Thread(target=lambda: results.append(
        cache.get("rev", head=lambda: 7, count=slow, invalidated_since=never).summary))
    second.start()
    second.join(0.2)
    assert second.is_alive()  # waiting for the count under way, not counting itself
    release.set()
    first.join(10)
    second.join(10)
    assert results == [{"total": 5}, {"total": 5}]
    assert len(calls) == 1


def test_while_one_thread_counts_again_the_others_get_the_previous_count() -> None:
    moment = Moment()
    cache = SummaryCache(moment)
    cache.get("rev", head=lambda: 7, count=Counter(moment, took=2.0), invalidated_since=never)
    moment.now += 60  # too old to reuse once the log moved
    started, release = threading.Event(), threading.Event()

    def slow() -> tuple[int, dict[str, Any]]:
        started.set()
        assert release.wait(10)
        return 9, {"total": 2}

    results: list[dict[str, Any]] = []
    first = threading.Thread(target=lambda: results.append(
        cache.get("rev", head=lambda: 9, count=slow, invalidated_since=never).summary))
    first.start()
    assert started.wait(10)
    # Not blocked behind the count under way: the previous one, at once.
    assert cache.get("rev", head=lambda: 9, count=slow,
                     invalidated_since=never).summary == {"total": 1}
    release.set()
    first.join(10)
    assert results == [{"total": 2}]


# --- through the API and the page ----------------------------------------------------------


@pytest.fixture
def reviewer(token) -> dict[str, str]:
    return token("reviewer")


@pytest.fixture
def technology(make_technology) -> dict[str, Any]:
    return make_technology(submit=True)


@pytest.fixture
def open_review(app, client, reviewer, technology, clock) -> dict[str, Any]:
    response = schedule(client, reviewer, technology["id"], opens=clock.now() + timedelta(days=1))
    assert response.status_code == 201
    clock.advance(days=1)
    assert run_due_transitions(app, clock).opened == [response.get_json()["id"]]
    return response.get_json()


@pytest.fixture
def slow_counts(app, monkeypatch) -> Moment:
    """Every count is taken for a slow one (reused up to a minute), on a hand-moved clock."""
    monkeypatch.setattr(summaries, "FRESH_BELOW_SECONDS", 0.1)
    monkeypatch.setattr(summaries, "REUSE_FACTOR", 1e9)
    moment = Ticking()
    app.extensions["daylight.comment_summaries"] = SummaryCache(moment)
    return moment


def comment(client, review: dict[str, Any], body: str = "Keep plates 30 days at most."
            ) -> dict[str, Any]:
    response = client.post(f"/api/v1/reviews/{review['id']}/comments", json={"body": body})
    assert response.status_code == 201
    return response.get_json()


def read(client, review: dict[str, Any]) -> dict[str, Any]:
    response = client.get(f"/api/v1/reviews/{review['id']}/comments/summary")
    assert response.status_code == 200
    body: dict[str, Any] = response.get_json()
    # Tagged with the log's head (so a client may ask "changed since?") only when the
    # counts include everything up to that head.
    assert ("ETag" in response.headers) == (body["total"] == comments_stored(client, review))
    return body


def comments_stored(client, review: dict[str, Any]) -> int:
    listed = client.get(f"/api/v1/reviews/{review['id']}/comments?limit=100")
    assert listed.status_code == 200
    return sum(1 for item in listed.get_json()["items"] if item["status"] == "published")


def test_an_ordinary_review_is_counted_afresh_after_every_comment(app, client, open_review,
                                                                   clock) -> None:
    comment(client, open_review)
    first = read(client, open_review)
    assert first["total"] == 1
    assert first["counted_at"] == clock.now().isoformat()
    comment(client, open_review)
    assert read(client, open_review)["total"] == 2


def test_a_slow_review_shows_its_last_count_and_when_it_was_made(
        app, client, technology, open_review, clock, slow_counts) -> None:
    comment(client, open_review)
    counted = read(client, open_review)
    assert counted["total"] == 1
    clock.advance(seconds=30)
    comment(client, open_review)
    again = read(client, open_review)
    assert again == counted  # the same count, and the time it was made
    page = client.get(f"/technologies/{technology['id']}").get_data(as_text=True)
    assert ("open now: 1 published comment, 1 different text (counted at "
            f'<time datetime="{counted["counted_at"]}">') in page
    slow_counts.now += summaries.MAX_AGE_SECONDS + 1
    # The log has not moved since the last read: the read cache must not have kept the
    # older count for it.
    fresh = read(client, open_review)
    assert fresh["total"] == 2
    assert fresh["counted_at"] == clock.now().isoformat()
    assert summary_cache(app).counts == 2  # the page was served the first count too


def test_a_comment_hidden_after_a_slow_count_leaves_the_summary_at_once(
        app, client, open_review, reviewer, slow_counts) -> None:
    letter = "Stop the drones. Stop the drones now."
    first, _second = comment(client, open_review, letter), comment(client, open_review, letter)
    counted = read(client, open_review)
    assert counted["form_letters"][0]["sample_comment_id"] == first["id"]
    hidden = client.post(f"/api/v1/comments/{first['id']}/hide", json={"reason": "Spam."},
                         headers=reviewer)
    assert hidden.status_code == 200
    after = read(client, open_review)
    assert after["total"] == 1
    assert after["form_letters"] == []
