"""The byte-budgeted LRU of rendered feeds."""

from __future__ import annotations

from dataclasses import dataclass

from services.feed.cache import ByteLru


@dataclass
class Blob:
    size: int


def test_the_least_recently_used_entries_go_once_the_budget_is_spent() -> None:
    cache: ByteLru[Blob] = ByteLru(100)
    cache.put("a", Blob(40))
    cache.put("b", Blob(40))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", Blob(40))
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None
    assert cache.used == 80


def test_replacing_an_entry_counts_only_its_new_size_and_peek_does_not_refresh() -> None:
    cache: ByteLru[Blob] = ByteLru(100)
    cache.put("a", Blob(60))
    cache.put("a", Blob(30))
    assert cache.used == 30 and len(cache) == 1
    cache.put("b", Blob(30))
    assert cache.peek("a") is not None
    cache.put("c", Blob(50))
    assert cache.peek("a") is None and cache.used == 80
