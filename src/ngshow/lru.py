"""A thread-safe least-recently-used cache bounded by the bytes it holds."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["ByteLRU"]

V = TypeVar("V")


class ByteLRU(Generic[V]):
    """Maps keys to values, evicting the least recently used once ``max_bytes`` is exceeded.

    ``size`` tells how many bytes a value holds (default: ``len``).  A value larger than the whole
    budget is not stored.
    """

    def __init__(self, max_bytes: int, size: Callable[[V], int] = len) -> None:  # type: ignore[assignment]
        self.max_bytes = int(max_bytes)
        self._size = size
        self._items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._pending: dict[Hashable, threading.Event] = {}
        self._lock = threading.Lock()
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[0]

    def put(self, key: Hashable, value: V) -> None:
        nbytes = self._size(value)
        if nbytes > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.bytes -= old[1]
            self._items[key] = (value, nbytes)
            self.bytes += nbytes
            while self.bytes > self.max_bytes:
                _, (_, evicted) = self._items.popitem(last=False)
                self.bytes -= evicted

    def get_or_compute(self, key: Hashable, compute: Callable[[], V]) -> V:
        """The cached value, or ``compute()`` stored; concurrent callers of one key compute it once."""
        while True:
            with self._lock:
                item = self._items.get(key)
                if item is not None:
                    self._items.move_to_end(key)
                    self.hits += 1
                    return item[0]
                pending = self._pending.get(key)
                owner = pending is None
                if owner:
                    self.misses += 1
                    pending = self._pending[key] = threading.Event()
            assert pending is not None
            if not owner:
                pending.wait()
                continue  # normally a hit now; if the owner failed or the value was too big, try again
            try:
                value = compute()
                self.put(key, value)
                return value
            finally:
                with self._lock:
                    del self._pending[key]
                pending.set()

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.bytes = 0
