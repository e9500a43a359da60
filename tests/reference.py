"""Slow, obviously-correct NumPy/Python versions of what ngshow computes fast, for comparisons."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import numpy as np


def downsample(array: np.ndarray[Any, Any], factors: tuple[int, ...], *, mode: bool) -> np.ndarray[Any, Any]:
    """Block mean (integers: rounded half away from zero) or most frequent value (ties: smallest)."""
    out_shape = tuple(-(-n // f) for n, f in zip(array.shape, factors))
    out = np.empty(out_shape, array.dtype)
    for index in itertools.product(*(range(n) for n in out_shape)):
        block = array[tuple(slice(i * f, (i + 1) * f) for i, f in zip(index, factors))].ravel()
        if mode:
            counts = Counter(block.tolist())
            best = max(counts.values())
            out[index] = min(v for v, c in counts.items() if c == best)
        elif array.dtype.kind == "f":
            out[index] = block.astype(np.float64).mean()
        else:
            total, n = sum(int(v) for v in block), len(block)
            q = (abs(total) + n // 2) // n
            out[index] = q if total >= 0 else -q
    return out
