"""Lazy task lists: a stage's tasks made on demand from a tiling, so a plan of any size is small.

A :class:`TaskGrid` knows its length, makes task ``i`` when asked (``grid[i]``, iteration) and can
be sliced without making anything (``grid[a:b]`` is another lazy view).  Each task is a copy of a
*prototype* task with its block (``lo``, ``hi``), its input region or its part number filled in,
so the grid holds a few hundred bytes whatever the number of tasks: planning a petabyte is
arithmetic, and the driver of a run holds only the tasks in flight.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, overload

import numpy as np

from .inputs import region_of
from .precomputed import Triple

__all__ = ["InputRef", "TaskGrid", "Tiling"]


@dataclass(frozen=True)
class Tiling:
    """Blocks ``(lo, hi)`` of ``block`` voxels tiling ``size`` (x, y, z), x fastest."""

    size: Triple
    block: Triple

    @property
    def shape(self) -> Triple:
        """Blocks along x, y, z."""
        return tuple(-(-n // b) for n, b in zip(self.size, self.block))  # type: ignore[return-value]

    def __len__(self) -> int:
        return math.prod(self.shape)

    def box(self, index: int) -> tuple[Triple, Triple]:
        """The ``index``-th block."""
        gx, gy, _gz = self.shape
        x, rest = index % gx, index // gx
        y, z = rest % gy, rest // gy
        lo = (x * self.block[0], y * self.block[1], z * self.block[2])
        hi = tuple(min(a + b, n) for a, b, n in zip(lo, self.block, self.size))
        return lo, hi  # type: ignore[return-value]


@dataclass(frozen=True)
class InputRef:
    """The pipeline's input, and how a block ``(lo, hi)`` (x, y, z) of it becomes a region."""

    data: Any
    lead: int
    dtype: str
    channels: int

    def region(self, lo: Triple, hi: Triple) -> Any:
        box = [slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0])]
        if self.lead == 0:
            box.insert(0, slice(0, self.channels))
        ndim = len(self.data.shape)
        return region_of(self.data, tuple(box[len(box) - ndim :]), lead=self.lead, dtype=np.dtype(self.dtype))


@dataclass(frozen=True)
class TaskGrid(Sequence[Any]):
    """Tasks made from ``prototype``: one per block of ``tiling`` (its ``lo`` and ``hi`` set, and
    its ``region`` when ``source`` is given), or one per part ``0 .. parts-1`` (its ``part`` set).

    ``indices`` selects a sub-range (what slicing returns).
    """

    prototype: Any
    tiling: Tiling | None = None
    parts: int = 0
    source: InputRef | None = None
    indices: range | None = None

    def _range(self) -> range:
        if self.indices is not None:
            return self.indices
        return range(len(self.tiling) if self.tiling is not None else self.parts)

    def __len__(self) -> int:
        return len(self._range())

    def make(self, index: int) -> Any:
        """Task ``index`` of the whole grid (ignoring any slice)."""
        if self.tiling is None:
            return replace(self.prototype, part=index)
        lo, hi = self.tiling.box(index)
        if self.source is None:
            return replace(self.prototype, lo=lo, hi=hi)
        return replace(self.prototype, lo=lo, hi=hi, region=self.source.region(lo, hi))

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> TaskGrid: ...

    def __getitem__(self, index: int | slice) -> Any:
        r = self._range()
        if isinstance(index, slice):
            return replace(self, indices=r[index])
        return self.make(r[index])

    def __iter__(self) -> Iterator[Any]:
        for i in self._range():
            yield self.make(i)

    def __repr__(self) -> str:
        kind = type(self.prototype).__name__
        return f"TaskGrid({len(self)} x {kind})"


