"""The byte-bounded LRU cache and its compute-once guarantee."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ngshow.lru import ByteLRU


def test_evicts_least_recently_used_by_bytes() -> None:
    cache: ByteLRU[bytes] = ByteLRU(10)
    cache.put("a", b"1234")
    cache.put("b", b"1234")
    assert cache.get("a") == b"1234"  # a is now the most recent
    cache.put("c", b"1234")  # 12 bytes > 10: b goes
    assert cache.get("b") is None and cache.get("a") and cache.get("c")
    assert cache.bytes == 8
    cache.put("huge", b"x" * 11)  # bigger than the budget: not stored, nothing evicted
    assert cache.get("huge") is None and len(cache) == 2


def test_concurrent_misses_compute_once() -> None:
    cache: ByteLRU[bytes] = ByteLRU(1 << 20)
    calls = 0
    lock = threading.Lock()

    def compute() -> bytes:
        nonlocal calls
        with lock:
            calls += 1
        time.sleep(0.05)
        return b"value"

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: cache.get_or_compute("k", compute), range(8)))
    assert results == [b"value"] * 8 and calls == 1


def test_a_failed_computation_is_not_cached() -> None:
    cache: ByteLRU[bytes] = ByteLRU(100)
    attempts = iter([RuntimeError("boom"), b"ok"])

    def compute() -> bytes:
        value = next(attempts)
        if isinstance(value, Exception):
            raise value
        return value

    try:
        cache.get_or_compute("k", compute)
    except RuntimeError:
        pass
    assert cache.get_or_compute("k", compute) == b"ok"
