"""A bounded in-memory cache of node results, keyed by content key."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any


class ResultCache:
    """LRU over whole node outputs (``{port: value}``), at most ``max_entries`` of them.

    >>> c = ResultCache(max_entries=1); c.put("a", {"x": 1}); c.put("b", {"x": 2})
    >>> c.get("a") is None, c.get("b"), c.hits, c.misses
    (True, {'x': 2}, 1, 1)
    """

    def __init__(self, max_entries: int = 256) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> dict[str, Any] | None:
        value = self._data.get(key)
        if value is None:
            self.misses += 1
            return None
        self._data.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: str, outputs: dict[str, Any]) -> None:
        self._data[key] = outputs
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data
