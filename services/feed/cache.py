"""A byte-budgeted LRU of rendered feeds, one per API process."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar


class Sized(Protocol):
    @property
    def size(self) -> int: ...


V = TypeVar("V", bound=Sized)


class ByteLru(Generic[V]):
    """Least-recently-used entries are dropped once the entries' sizes add up past `budget`."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used = 0
        self._items: OrderedDict[Hashable, V] = OrderedDict()

    def get(self, key: Hashable) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def peek(self, key: Hashable) -> V | None:
        """The entry without making it recent."""
        return self._items.get(key)

    def put(self, key: Hashable, value: V) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self.used -= old.size
        self._items[key] = value
        self.used += value.size
        while self.used > self.budget and len(self._items) > 1:
            _, dropped = self._items.popitem(last=False)
            self.used -= dropped.size

    def pop(self, key: Hashable) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self.used -= old.size

    def clear(self) -> None:
        self._items.clear()
        self.used = 0

    def keys(self) -> list[Hashable]:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)
