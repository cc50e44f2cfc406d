"""Identifiers sort in the order they were made, even within one millisecond."""

from __future__ import annotations

import pytest

from webhooks import ids


def test_ids_made_in_the_same_millisecond_sort_in_the_order_they_were_made(monkeypatch):
    monkeypatch.setattr(ids, "_last", 0)
    monkeypatch.setattr(ids.time, "time", lambda: 1_800_000_000.123)
    made = [ids.new_id("cmt") for _ in range(500)]
    assert sorted(made) == made
    assert len(set(made)) == 500


def test_ids_of_later_milliseconds_sort_after(monkeypatch):
    monkeypatch.setattr(ids, "_last", 0)
    moments = iter([1_800_000_000.001, 1_800_000_000.002])
    monkeypatch.setattr(ids.time, "time", lambda: next(moments))
    first, second = ids.new_id("evt"), ids.new_id("evt")
    assert first < second
    assert first[:14] != second[:14]  # the time part moved on, not just the random part


@pytest.mark.parametrize("prefix", ["tech", "cmt", "whd"])
def test_an_id_is_its_prefix_and_26_characters(prefix):
    made = ids.new_id(prefix)
    assert made.startswith(f"{prefix}_") and len(made) == len(prefix) + 27
