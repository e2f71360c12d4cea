"""A small in-memory cache of what takes seconds to build (indexes, loaded models): at most `size` values, the least
recently used dropped first, safe across the app's threads."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class Recent(Generic[V]):
    """`get(key, build)` returns the kept value or builds it. `build` runs outside the lock (loading a model must not
    block other lookups), so two first requests for one key may both build it; pass ``once=True`` where building
    twice would cost too much (a BM25 index over a large corpus) to build one key at a time."""

    def __init__(self, size: int, *, once: bool = False):
        self.size = size
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()
        self._building = threading.Lock() if once else None

    def _kept(self, key: Hashable) -> tuple[bool, V | None]:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return True, self._items[key]
        return False, None

    def get(self, key: Hashable, build: Callable[[], V]) -> V:
        found, value = self._kept(key)
        if found:
            return value
        if self._building is None:
            return self._keep(key, build())
        with self._building:
            found, value = self._kept(key)
            return value if found else self._keep(key, build())

    def _keep(self, key: Hashable, value: V) -> V:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def discard(self, stale: Callable[[Hashable], bool]) -> None:
        """Drop every kept value whose key `stale` accepts (an older version of what is about to be built, so its
        memory is free before the new one takes as much)."""
        with self._lock:
            for key in [k for k in self._items if stale(k)]:
                del self._items[key]

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
