"""The precomputed annotation format's encodings and spatial grid (``annotations.md``).

Records (geometry, then properties largest first, padded to 4 bytes), the multiple-annotation
encoding, the grid of each spatial level, which cells an annotation's bounding box touches, and the
pseudo-random number each annotation draws from its id.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..annotations import GEOMETRY_ARGUMENTS, PROPERTY_DTYPES, AnnotationTable, PropertySpec

__all__ = [
    "Level",
    "cell_ids",
    "cells_touched",
    "encode_many",
    "encode_records",
    "geometry_count",
    "record_dtype",
    "runs",
    "sorted_properties",
    "spatial_levels",
    "unit_random",
]


def geometry_count(kind: str) -> int:
    """Vectors per annotation: 1 for points, 2 otherwise."""
    return len(GEOMETRY_ARGUMENTS[kind])


def sorted_properties(specs: Sequence[PropertySpec]) -> list[PropertySpec]:
    """Properties in the order they are encoded: 4-byte types, then 2-byte, then 1-byte ones.

    The ``info`` lists them in this order too, so readers that do not reorder agree.
    """
    return sorted(specs, key=lambda s: -_alignment(s))


def _alignment(spec: PropertySpec) -> int:
    return 1 if spec.type in ("rgb", "rgba") else PROPERTY_DTYPES[spec.type][1]


def record_dtype(kind: str, rank: int, specs: Sequence[PropertySpec]) -> np.dtype[Any]:
    """The little-endian record of one annotation: geometry, properties, padding to 4 bytes."""
    fields: list[tuple[str, Any, Any]] = [("geometry", "<f4", (geometry_count(kind) * rank,))]
    size = 4 * geometry_count(kind) * rank
    for i, spec in enumerate(specs):
        base, width = PROPERTY_DTYPES[spec.type]
        shape = (spec.components,) if spec.components > 1 else ()
        fields.append((f"p{i}", base, shape))
        size += width if spec.components == 1 else spec.components
    if size % 4:
        fields.append(("pad", "u1", (4 - size % 4,)))
    return np.dtype(fields)  # packed: sizes already keep every field aligned


def encode_records(table: AnnotationTable, specs: Sequence[PropertySpec]) -> np.ndarray[Any, Any]:
    """``(N, record size)`` uint8: each annotation's geometry and properties, as the spec encodes them."""
    dtype = record_dtype(table.kind, table.rank, specs)
    out = np.zeros(len(table), dtype=dtype)
    out["geometry"] = table.geometry.astype(np.float32)
    for i, spec in enumerate(specs):
        out[f"p{i}"] = table.properties[spec.id]
    return out.view(np.uint8).reshape(len(table), dtype.itemsize)


def encode_many(records: np.ndarray[Any, Any], ids: np.ndarray[Any, Any]) -> bytes:
    """The "multiple annotation encoding": count, records, ids."""
    count: bytes = np.array([len(ids)], dtype="<u8").tobytes()
    return count + records.tobytes() + ids.astype("<u8").tobytes()


def unit_random(ids: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """A uniform number in [0, 1) from each id (splitmix64), the same on every run and worker."""
    z = ids.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


@dataclass(frozen=True)
class Level:
    grid_shape: tuple[int, ...]
    chunk_size: tuple[float, ...]


def spatial_levels(lower: Sequence[float], upper: Sequence[float], scales: Sequence[float], depth: int) -> list[Level]:
    """Grids from one cell to ``depth`` levels: each level halves the axes whose cells are longest
    (in physical units), so cells get closer to isotropic, as the spec recommends."""
    extent = [float(u) - float(l) for l, u in zip(lower, upper)]
    grid = [1] * len(extent)
    out = []
    for _ in range(depth):
        out.append(Level(tuple(grid), tuple(e / g for e, g in zip(extent, grid))))
        physical = [e / g * s for e, g, s in zip(extent, grid, scales)]
        longest = max(physical)
        grid = [g * 2 if p * 2 > longest * 1.0001 else g for g, p in zip(grid, physical)]
    return out


def cells_touched(
    lo: np.ndarray[Any, Any],
    hi: np.ndarray[Any, Any],
    lower: np.ndarray[Any, Any],
    level: Level,
    window: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]] | None = None,
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Every (annotation, cell) pair whose bounding box and cell intersect: ``(index, cells)``.

    ``window`` = ``(first, last)`` cells (inclusive) limits the cells to a block.
    """
    size = np.asarray(level.chunk_size)
    last = np.asarray(level.grid_shape) - 1
    c0 = np.clip(np.floor((lo - lower) / size), 0, last).astype(np.int64)
    c1 = np.clip(np.floor((hi - lower) / size), 0, last).astype(np.int64)
    if window is not None:
        c0 = np.maximum(c0, window[0])
        c1 = np.minimum(c1, window[1])
    spans = c1 - c0 + 1
    inside = (spans > 0).all(axis=1)
    counts = np.where(inside, spans.prod(axis=1), 0)
    index = np.repeat(np.arange(len(lo)), counts)
    if len(index) == len(lo) and inside.all():  # each in one cell (points): the common case
        return index, c0
    # Position of each pair within its annotation's box of cells, in mixed radix.
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    k = np.arange(len(index)) - starts
    cells = np.empty((len(index), lo.shape[1]), np.int64)
    for d in range(lo.shape[1] - 1, -1, -1):
        span = spans[index, d]
        cells[:, d] = c0[index, d] + k % span
        k //= span
    return index, cells


def cell_ids(cells: np.ndarray[Any, Any], grid: Sequence[int]) -> np.ndarray[Any, Any]:
    return np.ravel_multi_index(tuple(cells.T), tuple(int(g) for g in grid)) if len(cells) else np.zeros(0, np.int64)


def runs(keys: np.ndarray[Any, Any]) -> Iterator[tuple[Any, slice]]:
    """Runs of equal values in sorted ``keys``."""
    if not len(keys):
        return
    edges = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    starts = np.concatenate(([0], edges))
    stops = np.concatenate((edges, [len(keys)]))
    for a, b in zip(starts, stops):
        yield keys[a], slice(int(a), int(b))
