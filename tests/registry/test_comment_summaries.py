"""Comment summaries: exact for ordinary reviews, counted from the last count onwards, reused
for a bounded time when counting is slow, never showing a hidden comment, and counted once at
a time."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from registry.comments import summaries
from registry.comments.services import Tally
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
    """A count that takes ``took`` seconds of the fake clock; its total is its number."""

    def __init__(self, moment: Moment, took: float, seq: int = 7) -> None:
        self.moment, self.took, self.seq = moment, took, seq
        self.calls = 0
        self.given: list[summaries.Counted | None] = []  # the earlier count each call had

    def __call__(self, earlier: summaries.Counted | None) -> summaries.Made:
        self.calls += 1
        self.given.append(earlier)
        self.moment.now += self.took
        return summaries.Made(self.seq, {"total": self.calls})


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


def test_each_count_is_handed_the_last_to_start_from() -> None:
    moment = Moment()
    cache = SummaryCache(moment)
    count = Counter(moment, took=0.01)
    first = cache.get("rev", head=lambda: 7, count=count, invalidated_since=never)
    assert total(cache, 8, count) == 2
    assert count.given == [None, first]


def test_a_slow_count_from_scratch_that_leaves_a_tally_is_not_reused() -> None:
    moment = Moment()
    cache = SummaryCache(moment)
    tally = Tally({}, {}, {})
    calls: list[bool] = []

    def count(earlier: summaries.Counted | None) -> summaries.Made:
        moment.now += 2.0  # slow, either way
        calls.append(earlier is None)
        return summaries.Made(6 + len(calls), {"total": len(calls)}, tally,
                              afresh=earlier is None)

    assert cache.get("rev", head=lambda: 7, count=count, invalidated_since=never).reuse_for == 0
    # The next count starts from it, so it is made at once; that one's own time counts.
    assert cache.get("rev", head=lambda: 8, count=count, invalidated_since=never).reuse_for == 20
    assert cache.get("rev", head=lambda: 9, count=count,
                     invalidated_since=never).summary["total"] == 2
    assert calls == [True, False]


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

    def slow(_earlier: summaries.Counted | None) -> summaries.Made:
        calls.append(1)
        started.set()
        assert release.wait(10)
        return summaries.Made(7, {"total": 5})

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

    def slow(_earlier: summaries.Counted | None) -> summaries.Made:
        started.set()
        assert release.wait(10)
        return summaries.Made(9, {"total": 2})

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


@pytest.fixture
def quick_counts(app) -> None:
    """Every count is taken for a quick one (never reused once the log moves), however
    long a loaded machine makes it: the monotonic clock the cache reads stands still."""
    app.extensions["daylight.comment_summaries"] = SummaryCache(Moment())


def test_an_ordinary_review_is_counted_afresh_after_every_comment(app, client, open_review,
                                                                   clock, quick_counts) -> None:
    comment(client, open_review)
    first = read(client, open_review)
    assert first["total"] == 1
    assert first["counted_at"] == clock.now().isoformat()
    comment(client, open_review)
    assert read(client, open_review)["total"] == 2


def test_a_slow_review_shows_its_last_count_and_when_it_was_made(
        app, client, technology, open_review, clock, slow_counts) -> None:
    comment(client, open_review)
    assert read(client, open_review)["total"] == 1  # from scratch: the next adds to it
    comment(client, open_review)
    counted = read(client, open_review)  # slow (the clock says so): reused from now on
    assert counted["total"] == 2
    clock.advance(seconds=30)
    comment(client, open_review)
    again = read(client, open_review)
    assert again == counted  # the same count, and the time it was made
    page = client.get(f"/technologies/{technology['id']}").get_data(as_text=True)
    assert ("open now: 2 published comments, 1 different text (counted at "
            f'<time datetime="{counted["counted_at"]}">') in page
    slow_counts.now += summaries.MAX_AGE_SECONDS + 1
    # The log has not moved since the last read: the read cache must not have kept the
    # older count for it.
    fresh = read(client, open_review)
    assert fresh["total"] == 3
    assert fresh["counted_at"] == clock.now().isoformat()
    assert summary_cache(app).counts == 3  # the page was served the second count too


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


# --- counted from the last count ---------------------------------------------------------


@pytest.fixture
def counts(monkeypatch, quick_counts) -> dict[str, int]:
    """How many counts started afresh ("tally") and from the last ("since"); every count
    quick (``quick_counts``), so that each read after the log moved counts."""
    made = {"tally": 0, "since": 0}
    tally, since = summaries.tally, summaries.tally_since

    def counting_tally(*args: Any) -> Any:
        made["tally"] += 1
        return tally(*args)

    def counting_since(*args: Any) -> Any:
        made["since"] += 1
        return since(*args)

    monkeypatch.setattr(summaries, "tally", counting_tally)
    monkeypatch.setattr(summaries, "tally_since", counting_since)
    return made


def afresh(app, review: dict[str, Any]) -> dict[str, Any]:
    """The review's summary counted from scratch, as the API gives it but ``counted_at``."""
    from registry.comments.services import summary
    from registry.database import session_factory
    from registry.reviews.models import Review

    with app.app_context(), session_factory(app)() as session:
        stored = session.get(Review, review["id"])
        assert stored is not None
        return summary(session, stored)


def exact(app, client, review: dict[str, Any]) -> dict[str, Any]:
    """The API's summary, checked against a count from scratch."""
    body = read(client, review)
    assert {key: value for key, value in body.items() if key != "counted_at"} == afresh(
        app, review)
    return body


def post(client, review: dict[str, Any], body: str, **fields: Any) -> dict[str, Any]:
    response = client.post(f"/api/v1/reviews/{review['id']}/comments",
                           json={"body": body, **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


LETTER = "Ban face recognition in our parks. Ban it now."


def test_later_counts_add_what_was_published_since_the_last(app, client, open_review,
                                                             counts) -> None:
    post(client, open_review, "Keep plates 30 days.", position="oppose",
         neighborhood="Eastside")
    post(client, open_review, LETTER, position="oppose", neighborhood="Downtown")
    assert exact(app, client, open_review)["total"] == 2
    # The letter a second time (a new group), a new neighbourhood, a third and a fourth.
    post(client, open_review, LETTER.upper() + "!", position="oppose",
         neighborhood="Downtown")
    post(client, open_review, "Who audits the vendor?", neighborhood="Riverside")
    body = exact(app, client, open_review)
    assert body["form_letters"][0]["count"] == 2
    post(client, open_review, LETTER, position="support")
    post(client, open_review, "Keep plates 30 days.", position="neutral",
         neighborhood="Eastside")
    body = exact(app, client, open_review)
    assert body["total"] == 6 and body["unique_texts"] == 3
    assert [group["count"] for group in body["form_letters"]] == [3, 2]
    assert body["by_position"] == {"support": 1, "oppose": 3, "neutral": 1,
                                   "unspecified": 1}
    assert counts == {"tally": 1, "since": 2}  # one count from scratch, then only news


def test_a_comment_published_by_a_reviewer_joins_the_next_count(
        app, client, open_review, reviewer, counts) -> None:
    app.config["COMMENT_MODERATION"] = "pre"
    held = post(client, open_review, LETTER, neighborhood="Hillcrest")
    held_too = post(client, open_review, LETTER)
    app.config["COMMENT_MODERATION"] = "post"
    post(client, open_review, LETTER)
    assert exact(app, client, open_review)["form_letters"] == []
    published = client.post(f"/api/v1/comments/{held_too['id']}/publish", headers=reviewer)
    assert published.status_code == 200
    body = exact(app, client, open_review)  # a new group, its count read whole
    assert body["form_letters"][0]["sample_comment_id"] == held_too["id"]
    published = client.post(f"/api/v1/comments/{held['id']}/publish", headers=reviewer)
    assert published.status_code == 200
    body = exact(app, client, open_review)  # a group that grew
    # The oldest comment, published last, is now the group's first and its sample.
    assert body["form_letters"][0]["count"] == 3
    assert body["form_letters"][0]["sample_comment_id"] == held["id"]
    assert {"neighborhood": "Hillcrest", "count": 1} in body["by_neighborhood"]
    assert counts == {"tally": 1, "since": 2}


def test_a_hidden_comment_makes_the_next_count_start_afresh(
        app, client, open_review, reviewer, counts) -> None:
    first = post(client, open_review, LETTER)
    post(client, open_review, LETTER)
    assert exact(app, client, open_review)["form_letters"][0]["count"] == 2
    hidden = client.post(f"/api/v1/comments/{first['id']}/hide", json={"reason": "Spam."},
                         headers=reviewer)
    assert hidden.status_code == 200
    post(client, open_review, "Another view.")
    body = exact(app, client, open_review)
    assert body["total"] == 2 and body["form_letters"] == []
    assert counts["tally"] == 2  # the hidden comment cannot be taken away from a tally


def test_another_reviews_comments_neither_join_a_count_nor_restart_it(
        app, client, open_review, make_technology, reviewer, clock, counts) -> None:
    post(client, open_review, LETTER)
    exact(app, client, open_review)
    elsewhere = schedule(client, reviewer, make_technology(submit=True)["id"],
                         opens=clock.now() + timedelta(days=1))
    assert elsewhere.status_code == 201, elsewhere.get_json()
    clock.advance(days=1)
    assert run_due_transitions(app, clock).opened == [elsewhere.get_json()["id"]]
    other = elsewhere.get_json()
    spam = post(client, other, LETTER)
    post(client, other, LETTER)
    hidden = client.post(f"/api/v1/comments/{spam['id']}/hide", json={"reason": "Spam."},
                         headers=reviewer)
    assert hidden.status_code == 200
    post(client, open_review, LETTER)
    body = exact(app, client, open_review)
    assert body["total"] == 2 and body["form_letters"][0]["count"] == 2
    assert counts == {"tally": 1, "since": 1}


@pytest.mark.parametrize("counting", ["tally", "tally_since"])
def test_a_comment_committed_while_counting_is_counted_once(
        app, client, open_review, monkeypatch, counts, counting: str) -> None:
    if counting == "tally_since":
        post(client, open_review, LETTER)
        exact(app, client, open_review)  # the count that the next one starts from
    count = getattr(summaries, counting)

    def with_a_post_under_way(session, *args: Any) -> Any:
        # The count has read the head; a comment commits (from another thread, as from
        # another request) before the count reads the comments.
        posted: list[int] = []
        poster = threading.Thread(target=lambda: posted.append(app.test_client().post(
            f"/api/v1/reviews/{open_review['id']}/comments", json={"body": LETTER}
        ).status_code))
        poster.start()
        poster.join(10)
        assert posted == [201]
        return count(session, *args)

    monkeypatch.setattr(summaries, counting, with_a_post_under_way)
    post(client, open_review, LETTER)
    head = client.get("/healthz").get_json()["last_event_seq"]
    response = client.get(f"/api/v1/reviews/{open_review['id']}/comments/summary")
    assert response.status_code == 200
    # Exact at the head it read, and tagged with it: not the comment committed later, in
    # the total or in the form letter's count.
    counted = response.get_json()
    total = 2 if counting == "tally_since" else 1
    assert counted["total"] == total
    assert [group["count"] for group in counted["form_letters"]] == (
        [total] if total > 1 else [])
    assert response.headers["ETag"] == f'W/"log-{head}"'
    monkeypatch.setattr(summaries, counting, count)
    assert exact(app, client, open_review)["total"] == total + 1  # the next adds it once
