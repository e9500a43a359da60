"""Precomputed annotation datasets (``neuroglancer_annotations_v1``) from tables of any size.

The format (Neuroglancer's ``src/datasource/precomputed/annotations.md``) has three kinds of index,
each optionally sharded: annotations by id (with their related segment ids), the annotations of each
segment per relationship, and a multi-level spatial index whose cells hold a uniform subsample of
at most ``limit`` annotations each (more of them at coarser levels are left to finer ones).

Writing runs as two plans on any executor, through :func:`ngshow.convert.run`:

1. **sort** (work folder ``.ngshow/annotations`` of the destination): each task reads a slice of
   the table's rows, encodes them, and files them by by-id bucket, related segment and spatial
   block; one task per spatial block then counts its densest cell at every level.
2. **index** (the dataset): from those counts the driver fixes each level's sampling rate; tasks
   write the by-id index, the relationship indexes and the spatial cells, per bucket or block,
   and per shard.

Every annotation draws one pseudo-random number from its id, ``u`` in [0, 1); level ``L`` takes the
annotations with ``c[L-1] <= u < c[L]``, where the thresholds make the emitted fraction of what
remains ``min(1, limit / maxCount(L))`` as the spec asks, ``maxCount(L)`` being the expected count
in the level's densest cell.  So the output depends only on the input, tasks are idempotent, and a
killed run resumes.  Memory is bounded by a task's slice of rows, bucket or block, never the table.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import math
import os
import posixpath
import shutil
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..annotations import (
    GEOMETRY_ARGUMENTS,
    PROPERTY_DTYPES,
    TYPE_NAMES,
    AnnotationTable,
    PropertySpec,
    annotation_table,
    coordinate_dimensions,
)
from ..errors import InvalidArray
from .errors import ConvertError
from .plan import Plan, Stage
from .run import RunReport, run
from .sharding import ShardingSpec, compressed_morton_code, encode_shard, volume_sharding
from .storage import WORK_PREFIX, Store
from .tasks import TaskResult
from .validate_annotations import ANNOTATION_TYPE

__all__ = ["AnnotationPlans", "plan_annotations", "write_annotations", "ANNOTATION_TYPE"]

log = logging.getLogger(__name__)

WORK_DIR = f"{WORK_PREFIX}/annotations"
#: Rows read by one sort task.
ROWS_PER_TASK = 1 << 20
#: Aim for at most this many annotations in one by-id bucket, relationship bucket or spatial block.
BUCKET_TARGET = 1 << 19
#: Deepest spatial level (grid shapes stay below 2**MAX_LEVELS per axis).
MAX_LEVELS = 20
#: Spatial cells per shard (sharded, 3-D datasets).
CELLS_PER_SHARD = 1 << 12


# --- the table as columns of a parquet file ---------------------------------------------------


@dataclass(frozen=True)
class Columns:
    """Which column of the parquet file holds what (see :func:`ngshow.annotations.annotation_table`)."""

    kind: str
    geometry: tuple[tuple[str, tuple[str, ...]], ...]  # argument -> its column names
    ids: str | None = None
    description: str | None = None
    properties: tuple[tuple[str, str], ...] = ()  # property id -> column
    relationships: tuple[tuple[str, str], ...] = ()  # relationship -> column

    def names(self) -> list[str]:
        out = [c for _, cols in self.geometry for c in cols]
        out += [c for c in (self.ids, self.description) if c is not None]
        out += [c for _, c in self.properties] + [c for _, c in self.relationships]
        return list(dict.fromkeys(out))


def _parquet(url: str) -> Any:
    import pyarrow.parquet as pq

    if "://" in url and not url.startswith("file://"):
        import fsspec

        return pq.ParquetFile(fsspec.open(url, "rb").open())
    return pq.ParquetFile(url.removeprefix("file://"))


@dataclass(frozen=True)
class TableSlice:
    """Row groups ``[start, stop)`` of a parquet file."""

    url: str
    start: int
    stop: int

    def read(self, columns: Sequence[str]) -> Any:
        """The rows as a pandas DataFrame."""
        return _parquet(self.url).read_row_groups(list(range(self.start, self.stop)), columns=list(columns)).to_pandas()


def _spill(data: Any, arrays: dict[str, Any], path: str, rows_per_group: int) -> None:
    """Write ``data`` (a DataFrame or None) plus extra array columns as a parquet file."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = data.copy() if data is not None else pd.DataFrame()
    for name, values in arrays.items():
        frame[name] = values
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".part"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp, row_group_size=rows_per_group)
    os.replace(tmp, path)


def _columns_of(
    data: Any, kind: str, arguments: Mapping[str, Any]
) -> tuple[Columns, dict[str, Any]]:
    """Column names for every argument; values given as arrays get a column of their own."""
    arrays: dict[str, Any] = {}

    def column(role: str, spec: Any, split: bool) -> tuple[str, ...]:
        if isinstance(spec, str):
            return (spec,)
        if isinstance(spec, (list, tuple)) and spec and all(isinstance(s, str) for s in spec):
            return tuple(spec)
        array = np.asarray(spec.to_numpy() if hasattr(spec, "to_numpy") else spec)
        if split and array.ndim == 2:
            names = tuple(f"__{role}_{k}" for k in range(array.shape[1]))
            for k, name in enumerate(names):
                arrays[name] = array[:, k]
            return names
        arrays[f"__{role}"] = list(array) if array.ndim > 1 else array
        return (f"__{role}",)

    geometry = []
    for arg in GEOMETRY_ARGUMENTS[kind]:
        if arguments.get(arg) is None:
            raise InvalidArray(f"{kind} annotations need {' and '.join(GEOMETRY_ARGUMENTS[kind])}; missing {arg}")
        geometry.append((arg, column(arg, arguments[arg], True)))
    single = {}
    for role in ("ids", "description"):
        if arguments.get(role) is not None:
            single[role] = column(role, arguments[role], False)[0]
    props = arguments.get("properties") or {}
    items = props.items() if isinstance(props, Mapping) else [(p, p) for p in props]
    properties = tuple((name, column(f"p_{name}", v, False)[0]) for name, v in items)
    relationships = tuple(
        (name, column(f"r_{name}", v, False)[0]) for name, v in (arguments.get("relationships") or {}).items()
    )
    return Columns(kind, tuple(geometry), single.get("ids"), single.get("description"), properties, relationships), arrays


def _table(frame: Any, cols: Columns, layout: AnnotationLayout | None, enums: Mapping[str, Any], types: Mapping[str, str]) -> AnnotationTable:
    """Rows of the parquet file as an :class:`AnnotationTable` with the dataset's property types."""
    geometry = {arg: list(names) if len(names) > 1 else names[0] for arg, names in cols.geometry}
    properties: dict[str, Any] = {}
    for name, col in cols.properties:
        values = frame[col]
        if str(values.dtype) == "category" and name in enums:
            # Codes of the whole table's categories, not this row group's.
            import pandas as pd

            codes = pd.Categorical(values.astype(str), categories=list(enums[name])).codes
            if (codes < 0).any():
                raise InvalidArray(f"property {name!r}: a category not seen in the first rows")
            values = codes.astype(np.uint8 if len(enums[name]) <= 256 else np.uint16)
        properties[name] = values
    return annotation_table(
        frame, kind=cols.kind, ids=cols.ids, description=cols.description,  # type: ignore[arg-type]
        properties=properties, property_types=types, enums={k: list(v) for k, v in enums.items()},
        relationships={name: col for name, col in cols.relationships},
        rank=layout.rank if layout is not None else None, **geometry,
    )


# --- encoding ---------------------------------------------------------------------------------


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


def _unit_random(ids: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """A uniform number in [0, 1) from each id (splitmix64), the same on every run and worker."""
    z = ids.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _save(store: Store, key: str, **arrays: np.ndarray[Any, Any]) -> int:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    data = buffer.getvalue()
    store.put(key, data)
    return len(data)


def _load_all(store: Store, folder: str) -> tuple[dict[str, np.ndarray[Any, Any]], int]:
    """Every ``.npz`` in ``folder`` concatenated per array name (in file-name order)."""
    parts: dict[str, list[np.ndarray[Any, Any]]] = {}
    nbytes = 0
    for name in sorted(store.list(folder)):
        data = store.get(f"{folder}/{name}")
        if data is None:  # pragma: no cover - listed a moment ago
            continue
        nbytes += len(data)
        with np.load(io.BytesIO(data)) as npz:
            for key in npz.files:
                parts.setdefault(key, []).append(npz[key])
    return {k: np.concatenate(v) for k, v in parts.items()}, nbytes


# --- the spatial grid -------------------------------------------------------------------------


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


def _cell_ids(cells: np.ndarray[Any, Any], grid: Sequence[int]) -> np.ndarray[Any, Any]:
    return np.ravel_multi_index(tuple(cells.T), tuple(int(g) for g in grid)) if len(cells) else np.zeros(0, np.int64)


# --- what every task needs --------------------------------------------------------------------


@dataclass(frozen=True)
class AnnotationLayout:
    """Facts about the dataset that every task needs (picklable, small)."""

    dest: Store
    work: Store
    kind: str
    rank: int
    columns: Columns
    property_types: tuple[tuple[str, str], ...]
    enums: tuple[tuple[str, tuple[str, ...]], ...]
    specs_json: str  # the info's properties, in encoding order
    relationships: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    levels: tuple[Level, ...]  # every candidate level (the info lists the used ones)
    block_level: int
    limit: int
    by_id_buckets: int
    rel_buckets: int
    sharding_json: str | None  # by id and relationships: {"by_id": ..., "<rel>": ...}
    thresholds: tuple[float, ...] = ()  # cumulative, per used level (index plan only)

    @property
    def specs(self) -> list[PropertySpec]:
        return [PropertySpec(**s) for s in json.loads(self.specs_json)]

    def sharding(self, name: str) -> ShardingSpec | None:
        if self.sharding_json is None:
            return None
        return ShardingSpec.from_json(json.loads(self.sharding_json)[name])

    def spatial_sharding(self, level: int) -> ShardingSpec | None:
        if self.sharding_json is None or self.rank != 3:
            return None
        return volume_sharding(self.levels[level].grid_shape, CELLS_PER_SHARD)

    def blocks(self) -> list[tuple[int, ...]]:
        return [tuple(int(c) for c in cell) for cell in np.ndindex(*self.levels[self.block_level].grid_shape)]

    def block_window(self, block: Sequence[int], level: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """First and last cell (inclusive) of ``level`` inside the block."""
        ratio = np.asarray(self.levels[level].grid_shape) // np.asarray(self.levels[self.block_level].grid_shape)
        first = np.asarray(block) * ratio
        return first, first + ratio - 1

    def bucket_of_ids(self, ids: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        spec = self.sharding("by_id")
        if spec is None:
            return (ids % np.uint64(self.by_id_buckets)).astype(np.int64)
        return _identity_shards(ids, spec)

    def bucket_of_segments(self, name: str, segments: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        spec = self.sharding(name)
        if spec is None:
            return (segments % np.uint64(self.rel_buckets)).astype(np.int64)
        unique, inverse = np.unique(segments, return_inverse=True)
        shards = np.array([spec.shard_and_minishard(int(s))[0] for s in unique], dtype=np.int64)
        return shards[inverse.reshape(-1)] if len(unique) else np.zeros(0, np.int64)


def _identity_shards(keys: np.ndarray[Any, Any], spec: ShardingSpec) -> np.ndarray[Any, Any]:
    shifted = keys.astype(np.uint64) >> np.uint64(spec.preshift_bits + spec.minishard_bits)
    return (shifted & np.uint64((1 << spec.shard_bits) - 1)).astype(np.int64)


def _block_name(block: Sequence[int]) -> str:
    return "_".join(str(int(c)) for c in block)


def _done(layout: AnnotationLayout, name: str) -> bool:
    return layout.work.exists(f"done/{name}")


def _mark(layout: AnnotationLayout, name: str) -> None:
    layout.work.put(f"done/{name}", b"")


# --- plan 1: sort -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SortRows:
    """Read a slice of rows, encode them, file them by bucket and block."""

    layout: AnnotationLayout
    rows: TableSlice
    index: int

    def run(self) -> TaskResult:
        lay = self.layout
        name = f"sort/{self.index}"
        if _done(lay, name):
            return TaskResult(skipped_task=True)
        frame = self.rows.read(lay.columns.names())
        table = _table(frame, lay.columns, lay, dict(lay.enums), dict(lay.property_types))
        del frame
        records = encode_records(table, lay.specs)
        ids = table.ids
        written = nbytes = 0
        tag = f"{self.index:06d}"

        buckets = lay.bucket_of_ids(ids)
        order = np.argsort(buckets, kind="stable")
        bounds = np.searchsorted(buckets[order], np.unique(buckets), side="left")
        for b, part in zip(np.unique(buckets), np.split(order, bounds[1:])):
            arrays = {"ids": ids[part], "records": records[part]}
            for r, rel in enumerate(lay.relationships):
                offsets, values = table.relationships[rel]
                counts = np.diff(offsets)[part]
                # Positions of the related ids of the picked annotations, in their order.
                within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
                take = np.repeat(offsets[part], counts) + within
                arrays[f"count{r}"] = counts.astype(np.uint32)
                arrays[f"related{r}"] = values[take]
            nbytes += _save(lay.work, f"byid/{int(b)}/{tag}", **arrays)
            written += 1

        for r, rel in enumerate(lay.relationships):
            offsets, values = table.relationships[rel]
            owner = np.repeat(np.arange(len(ids)), np.diff(offsets))
            buckets = lay.bucket_of_segments(rel, values)
            for b in np.unique(buckets):
                pick = buckets == b
                nbytes += _save(
                    lay.work, f"rel/{r}/{int(b)}/{tag}",
                    segments=values[pick], ids=ids[owner[pick]], records=records[owner[pick]],
                )
                written += 1

        lo, hi = table.bounds()
        lower = np.asarray(lay.lower)
        index, cells = cells_touched(lo, hi, lower, lay.levels[lay.block_level])
        block_ids = _cell_ids(cells, lay.levels[lay.block_level].grid_shape)
        for blk in np.unique(block_ids):
            pick = index[block_ids == blk]
            block = [int(c) for c in np.unravel_index(int(blk), lay.levels[lay.block_level].grid_shape)]
            nbytes += _save(
                lay.work, f"spatial/{_block_name(block)}/{tag}",
                ids=ids[pick], lo=lo[pick], hi=hi[pick], records=records[pick],
            )
            written += 1
        _mark(lay, name)
        return TaskResult(written=written, bytes_out=nbytes)


@dataclass(frozen=True)
class SurveyBlock:
    """Count one block's annotations and its densest cell at every level from the block's down."""

    layout: AnnotationLayout
    block: tuple[int, ...]

    def run(self) -> TaskResult:
        lay = self.layout
        key = f"stats/{_block_name(self.block)}"
        if lay.work.exists(key):
            return TaskResult(skipped_task=True)
        arrays, nbytes = _load_all(lay.work, f"spatial/{_block_name(self.block)}")
        counts: list[int] = []
        if arrays:
            lower = np.asarray(lay.lower)
            for level in range(lay.block_level, len(lay.levels)):
                _, cells = cells_touched(arrays["lo"], arrays["hi"], lower, lay.levels[level], lay.block_window(self.block, level))
                ids = _cell_ids(cells, lay.levels[level].grid_shape)
                densest = int(np.unique(ids, return_counts=True)[1].max()) if len(ids) else 0
                counts.append(densest)
                if densest <= lay.limit:
                    break
        total = int(len(arrays["ids"])) if arrays else 0
        lay.work.put(key, json.dumps({"total": total, "densest": counts}).encode())
        return TaskResult(written=1, bytes_in=nbytes)


# --- plan 2: index ----------------------------------------------------------------------------


def _by_id_bytes(records: np.ndarray[Any, Any], arrays: Mapping[str, np.ndarray[Any, Any]], order: np.ndarray[Any, Any], nrel: int) -> list[bytes]:
    """Each annotation's by-id encoding: record, then per relationship a count and the ids."""
    n = len(order)
    starts = [np.concatenate(([0], np.cumsum(arrays[f"count{r}"].astype(np.int64)))) for r in range(nrel)]
    uniform = all((arrays[f"count{r}"] == 1).all() for r in range(nrel))
    if uniform:  # one related id per relationship: fixed-size rows, built at once
        parts = [records[order]]
        for r in range(nrel):
            parts.append(np.ones((n, 1), "<u4").view(np.uint8))
            parts.append(arrays[f"related{r}"][order].astype("<u8").reshape(n, 1).view(np.uint8))
        rows = np.concatenate(parts, axis=1)
        return [row.tobytes() for row in rows]
    out = []
    for i in order:
        chunks = [records[i].tobytes()]
        for r in range(nrel):
            related = arrays[f"related{r}"][starts[r][i] : starts[r][i + 1]]
            chunks.append(np.uint32(len(related)).astype("<u4").tobytes() + related.astype("<u8").tobytes())
        out.append(b"".join(chunks))
    return out


def _put_files(store: Store, folder: str, items: Iterator[tuple[str, bytes]]) -> tuple[int, int, int]:
    written = skipped = nbytes = 0
    for name, data in items:
        if store.put_if_absent(f"{folder}/{name}", data):
            written += 1
            nbytes += len(data)
        else:
            skipped += 1
    return written, skipped, nbytes


@dataclass(frozen=True)
class WriteById:
    layout: AnnotationLayout
    bucket: int

    def run(self) -> TaskResult:
        lay = self.layout
        name = f"byid/{self.bucket}"
        if _done(lay, name):
            return TaskResult(skipped_task=True)
        arrays, nbytes_in = _load_all(lay.work, f"byid/{self.bucket}")
        if not arrays:
            _mark(lay, name)
            return TaskResult()
        ids = arrays["ids"]
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        repeated = sorted_ids[1:][sorted_ids[1:] == sorted_ids[:-1]]
        if len(repeated):
            raise ConvertError(f"annotation id {int(repeated[0])} occurs more than once; ids must be unique")
        encoded = _by_id_bytes(arrays["records"], arrays, order, len(lay.relationships))
        spec = lay.sharding("by_id")
        if spec is None:
            w, s, b = _put_files(lay.dest, "by_id", ((str(int(i)), e) for i, e in zip(sorted_ids, encoded)))
        else:
            data = encode_shard(dict(zip((int(i) for i in sorted_ids), encoded)), spec)
            lay.dest.put(f"by_id/{spec.shard_name(self.bucket)}", data)
            w, s, b = 1, 0, len(data)
        _mark(lay, name)
        return TaskResult(written=w, skipped=s, bytes_in=nbytes_in, bytes_out=b)


def _groups(keys: np.ndarray[Any, Any]) -> Iterator[tuple[Any, slice]]:
    """Runs of equal values in sorted ``keys``."""
    if not len(keys):
        return
    edges = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    starts = np.concatenate(([0], edges))
    stops = np.concatenate((edges, [len(keys)]))
    for a, b in zip(starts, stops):
        yield keys[a], slice(int(a), int(b))


@dataclass(frozen=True)
class WriteRelated:
    layout: AnnotationLayout
    relationship: int
    bucket: int

    def run(self) -> TaskResult:
        lay = self.layout
        name = f"rel/{self.relationship}/{self.bucket}"
        if _done(lay, name):
            return TaskResult(skipped_task=True)
        arrays, nbytes_in = _load_all(lay.work, name)
        rel = lay.relationships[self.relationship]
        folder = f"rel_{rel}"
        w = s = b = 0
        if arrays:
            order = np.lexsort((arrays["ids"], arrays["segments"]))
            segments, ids, records = arrays["segments"][order], arrays["ids"][order], arrays["records"][order]
            items = ((int(seg), encode_many(records[part], ids[part])) for seg, part in _groups(segments))
            spec = lay.sharding(rel)
            if spec is None:
                w, s, b = _put_files(lay.dest, folder, ((str(k), v) for k, v in items))
            else:
                data = encode_shard(dict(items), spec)
                lay.dest.put(f"{folder}/{spec.shard_name(self.bucket)}", data)
                w, b = 1, len(data)
        _mark(lay, name)
        return TaskResult(written=w, skipped=s, bytes_in=nbytes_in, bytes_out=b)


def _levels_of(layout: AnnotationLayout, ids: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The spatial level each annotation is emitted at."""
    return np.searchsorted(np.asarray(layout.thresholds), _unit_random(ids), side="right")


def _cells_of_level(
    layout: AnnotationLayout, arrays: Mapping[str, np.ndarray[Any, Any]], level: int,
    window: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]] | None,
) -> Iterator[tuple[tuple[int, ...], bytes]]:
    """Encoded cells of ``level``: the annotations emitted there, in pseudo-random order."""
    pick = np.flatnonzero(_levels_of(layout, arrays["ids"]) == level)
    if not len(pick):
        return
    index, cells = cells_touched(arrays["lo"][pick], arrays["hi"][pick], np.asarray(layout.lower), layout.levels[level], window)
    which = pick[index]
    keys = _cell_ids(cells, layout.levels[level].grid_shape)
    order = np.lexsort((_unit_random(arrays["ids"][which]), keys))
    keys, which = keys[order], which[order]
    for key, part in _groups(keys):
        cell = tuple(int(c) for c in np.unravel_index(int(key), layout.levels[level].grid_shape))
        rows = which[part]
        yield cell, encode_many(arrays["records"][rows], arrays["ids"][rows])


def _write_cells(
    layout: AnnotationLayout, level: int, cells: Iterator[tuple[tuple[int, ...], bytes]], shard_parts: str | None
) -> tuple[int, int, int]:
    """Unsharded: one file per cell.  Sharded: the cells go to a part file per shard (or, with
    ``shard_parts`` None, straight into complete shards)."""
    spec = layout.spatial_sharding(level)
    folder = f"spatial{level}"
    if spec is None:
        return _put_files(layout.dest, folder, (("_".join(map(str, c)), data) for c, data in cells))
    listed = list(cells)
    if not listed:
        return 0, 0, 0
    codes = compressed_morton_code(np.array([c for c, _ in listed], dtype=np.int64), layout.levels[level].grid_shape)
    shards = _identity_shards(codes, spec)
    by_shard: dict[int, dict[int, bytes]] = {}
    for code, shard, (_, data) in zip(codes, shards, listed):
        by_shard.setdefault(int(shard), {})[int(code)] = data
    written = nbytes = 0
    for shard, chunks in by_shard.items():
        if shard_parts is None:
            data = encode_shard(chunks, spec)
            layout.dest.put(f"{folder}/{spec.shard_name(shard)}", data)
        else:
            keys = np.fromiter(chunks, dtype=np.uint64, count=len(chunks))
            sizes = np.array([len(v) for v in chunks.values()], dtype=np.int64)
            data = _pack(keys, sizes, b"".join(chunks.values()))
            layout.work.put(f"cells/{level}/{shard}/{shard_parts}", data)
        written += 1
        nbytes += len(data)
    return written, 0, nbytes


def _pack(keys: np.ndarray[Any, Any], sizes: np.ndarray[Any, Any], blob: bytes) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, keys=keys, sizes=sizes, blob=np.frombuffer(blob, np.uint8))
    return buffer.getvalue()


@dataclass(frozen=True)
class WriteBlock:
    """The block's cells at its level and finer; its coarse-level annotations go to one file."""

    layout: AnnotationLayout
    block: tuple[int, ...]

    def run(self) -> TaskResult:
        lay = self.layout
        name = f"block/{_block_name(self.block)}"
        if _done(lay, name):
            return TaskResult(skipped_task=True)
        arrays, nbytes_in = _load_all(lay.work, f"spatial/{_block_name(self.block)}")
        w = s = b = 0
        if arrays:
            levels = _levels_of(lay, arrays["ids"])
            coarse = levels < lay.block_level
            if coarse.any():
                b += _save(lay.work, f"coarse/{_block_name(self.block)}", **{k: v[coarse] for k, v in arrays.items()})
            for level in range(lay.block_level, len(lay.thresholds)):
                window = lay.block_window(self.block, level)
                dw, ds, db = _write_cells(lay, level, _cells_of_level(lay, arrays, level, window), _block_name(self.block))
                w, s, b = w + dw, s + ds, b + db
        _mark(lay, name)
        return TaskResult(written=w, skipped=s, bytes_in=nbytes_in, bytes_out=b)


@dataclass(frozen=True)
class WriteCoarse:
    """The levels coarser than the blocks, from the annotations every block set aside for them."""

    layout: AnnotationLayout

    def run(self) -> TaskResult:
        lay = self.layout
        if _done(lay, "coarse"):
            return TaskResult(skipped_task=True)
        arrays, nbytes_in = _load_all(lay.work, "coarse")
        w = s = b = 0
        if arrays:
            _, first = np.unique(arrays["ids"], return_index=True)  # an annotation in several blocks
            arrays = {k: v[first] for k, v in arrays.items()}
            for level in range(min(lay.block_level, len(lay.thresholds))):
                dw, ds, db = _write_cells(lay, level, _cells_of_level(lay, arrays, level, None), None)
                w, s, b = w + dw, s + ds, b + db
        _mark(lay, "coarse")
        return TaskResult(written=w, skipped=s, bytes_in=nbytes_in, bytes_out=b)


@dataclass(frozen=True)
class WriteSpatialShard:
    """One shard of a fine spatial level, from the parts its blocks wrote."""

    layout: AnnotationLayout
    level: int
    shard: int

    def run(self) -> TaskResult:
        lay = self.layout
        spec = lay.spatial_sharding(self.level)
        assert spec is not None
        target = f"spatial{self.level}/{spec.shard_name(self.shard)}"
        if lay.dest.exists(target):
            return TaskResult(skipped_task=True)
        folder = f"cells/{self.level}/{self.shard}"
        chunks: dict[int, bytes] = {}
        nbytes_in = 0
        for part in sorted(lay.work.list(folder)):
            raw = lay.work.get(f"{folder}/{part}")
            assert raw is not None
            nbytes_in += len(raw)
            with np.load(io.BytesIO(raw)) as npz:
                blob = npz["blob"].tobytes()
                ends = np.cumsum(npz["sizes"])
                for key, start, end in zip(npz["keys"], ends - npz["sizes"], ends):
                    chunks[int(key)] = blob[start:end]
        if not chunks:
            return TaskResult()
        data = encode_shard(chunks, spec)
        lay.dest.put(target, data)
        return TaskResult(written=1, bytes_in=nbytes_in, bytes_out=len(data))


# --- planning ---------------------------------------------------------------------------------


@dataclass
class Survey:
    """What the driver learns from one pass over the geometry columns."""

    count: int = 0
    lower: np.ndarray[Any, Any] | None = None
    upper: np.ndarray[Any, Any] | None = None
    types: dict[str, str] = field(default_factory=dict)
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)
    specs: list[PropertySpec] = field(default_factory=list)


def _survey(url: str, cols: Columns, types: Mapping[str, str], enums: Mapping[str, Any]) -> Survey:
    """Bounds, row count and property types, reading the geometry and properties one row group at
    a time.  Types follow the first rows, except integers wider than 32 bits, which are narrowed to
    int32 or uint32 by the whole column's range (as :func:`annotation_table` does for one table)."""
    file = _parquet(url)
    out = Survey()
    light = Columns(cols.kind, cols.geometry, properties=cols.properties)
    ranges: dict[str, tuple[int, int]] = {}
    for group in range(file.num_row_groups):
        frame = file.read_row_groups([group], columns=light.names()).to_pandas()
        if group == 0:
            for name, col in cols.properties:
                if str(frame[col].dtype) == "category" and name not in enums:
                    out.enums[name] = tuple(str(c) for c in frame[col].cat.categories)
        table = _table(frame, light, None, {**{k: tuple(v) for k, v in enums.items()}, **out.enums}, types)
        if group == 0:
            out.specs = list(table.property_specs)
        for name, col in cols.properties:
            values = np.asarray(frame[col])
            if name not in types and values.dtype.kind in "iu" and values.dtype.name not in PROPERTY_DTYPES:
                a, b = int(values.min()), int(values.max())
                old = ranges.get(name, (a, b))
                ranges[name] = (min(old[0], a), max(old[1], b))
        lo, hi = table.bounds()
        if len(table):
            out.lower = lo.min(axis=0) if out.lower is None else np.minimum(out.lower, lo.min(axis=0))
            out.upper = hi.max(axis=0) if out.upper is None else np.maximum(out.upper, hi.max(axis=0))
        out.count += len(table)
    out.types = {s.id: s.type for s in out.specs}
    for name, (a, b) in ranges.items():
        chosen = "int32" if a < 0 else "uint32"
        info = np.iinfo(chosen)
        if a < info.min or b > info.max:
            raise InvalidArray(f"property {name!r}: values {a}..{b} do not fit {chosen}")
        out.types[name] = chosen
    out.specs = [PropertySpec(s.id, out.types[s.id], None, s.enum_values, s.enum_labels) for s in out.specs]
    return out


def _power_of_two_at_least(n: float) -> int:
    return 1 << max(0, math.ceil(math.log2(max(1.0, n))))


def _uint64_sharding(entries: int, per_shard: int, hash: str, data_encoding: str) -> ShardingSpec:
    """Sharding for ``entries`` keys: about ``per_shard`` a shard, minishards of ~1024 keys."""
    shards = _power_of_two_at_least(entries / per_shard)
    per = max(1, entries // shards)
    minishard_bits = max(0, math.ceil(math.log2(max(1, per / 1024))))
    return ShardingSpec(
        preshift_bits=0, minishard_bits=minishard_bits, shard_bits=int(math.log2(shards)),
        hash=hash, minishard_index_encoding="gzip", data_encoding=data_encoding,  # type: ignore[arg-type]
    )


@dataclass(frozen=True)
class AnnotationPlans:
    """The sort plan (into the work folder) and what the index plan needs once it has run."""

    sort: Plan
    layout: AnnotationLayout
    dimensions: dict[str, list[Any]]
    count: int


def plan_annotations(
    data: Any,
    dest: str | os.PathLike[str],
    *,
    kind: str = "point",
    position: Any = None,
    point_a: Any = None,
    point_b: Any = None,
    center: Any = None,
    radii: Any = None,
    points: Any = None,
    ids: Any = None,
    description: Any = None,
    properties: Mapping[str, Any] | Sequence[str] | None = None,
    property_types: Mapping[str, str] | None = None,
    enums: Mapping[str, Any] | None = None,
    relationships: Mapping[str, Any] | None = None,
    voxel_size: Sequence[float] | None = None,
    dimensions: Mapping[str, Any] | None = None,
    lower_bound: Sequence[float] | None = None,
    upper_bound: Sequence[float] | None = None,
    limit: int = 2000,
    sharded: bool = True,
    rows_per_task: int = ROWS_PER_TASK,
) -> AnnotationPlans:
    """Survey the table (one pass over its geometry) and plan the sort stage; see :func:`write_annotations`."""
    if kind not in TYPE_NAMES:
        raise InvalidArray(f"annotation kind must be one of {sorted(TYPE_NAMES)}, got {kind!r}")
    if kind == "polyline" or points is not None:
        raise InvalidArray("the precomputed writer does not take polylines yet; show them with add_annotations")
    if not isinstance(limit, int) or limit < 1:
        raise InvalidArray(f"limit must be a positive integer, got {limit!r}")
    dest_store = Store(dest)
    work = Store(dest_store.url + "/" + WORK_DIR)
    arguments = {
        "position": position, "point_a": point_a, "point_b": point_b, "center": center, "radii": radii,
        "ids": ids, "description": description, "properties": properties, "relationships": relationships,
    }
    unexpected = [a for a in ("position", "point_a", "point_b", "center", "radii") if arguments[a] is not None and a not in GEOMETRY_ARGUMENTS[kind]]
    if unexpected:
        raise InvalidArray(f"{kind} annotations take {' and '.join(GEOMETRY_ARGUMENTS[kind])}, not {', '.join(unexpected)}")
    if isinstance(data, (str, os.PathLike)):
        url = os.fspath(data)
        if not url.endswith(".parquet"):
            raise InvalidArray(f"annotation tables are read from .parquet files, got {url!r}")
        cols, arrays = _columns_of(None, kind, arguments)
        if arrays:
            raise InvalidArray("with a parquet file, give columns by name (position=['x', 'y', 'z'], ...)")
    else:
        if not work.is_local:
            raise InvalidArray("write a DataFrame to a local destination, or give a .parquet file for remote ones")
        cols, arrays = _columns_of(data, kind, arguments)
        url = work.path("input.parquet")
        _spill(data, arrays, url, rows_per_task)
    survey = _survey(url, cols, property_types or {}, enums or {})
    if survey.count == 0:
        raise InvalidArray("the annotation table is empty")
    assert survey.lower is not None and survey.upper is not None
    rank = len(survey.lower)
    dims = coordinate_dimensions(rank, voxel_size, dimensions)
    lower = np.floor(survey.lower) if lower_bound is None else np.asarray(lower_bound, dtype=np.float64)
    upper = np.maximum(np.floor(survey.upper) + 1, lower + 1) if upper_bound is None else np.asarray(upper_bound, dtype=np.float64)
    if lower.shape != (rank,) or upper.shape != (rank,) or (upper <= lower).any():
        raise InvalidArray(f"lower_bound/upper_bound must be {rank} numbers with lower < upper")
    if (survey.lower < lower).any() or (survey.upper > upper).any():
        raise InvalidArray(f"annotations reach {survey.lower.tolist()}..{survey.upper.tolist()}, outside the bounds given")
    levels = spatial_levels(lower.tolist(), upper.tolist(), [d[0] for d in dims.values()], MAX_LEVELS)
    # The block level: about BUCKET_TARGET annotations a block if they were spread evenly.
    wanted_blocks = survey.count / BUCKET_TARGET
    block_level = next((i for i, lv in enumerate(levels) if math.prod(lv.grid_shape) >= wanted_blocks), len(levels) - 1)
    buckets = _power_of_two_at_least(survey.count / BUCKET_TARGET)
    specs = sorted_properties(survey.specs)
    sharding_json = None
    if sharded:
        # Ids are usually dense, so the identity hash spreads them; segment ids need a real hash.
        # One annotation's record is too small to gain from gzip, a segment's list is not.
        sharding: dict[str, Any] = {"by_id": _uint64_sharding(survey.count, BUCKET_TARGET, "identity", "raw").to_json()}
        for name, _ in cols.relationships:
            spec = _uint64_sharding(survey.count, BUCKET_TARGET, "murmurhash3_x86_128", "gzip")
            sharding[name] = spec.to_json()
        sharding_json = json.dumps(sharding, sort_keys=True)
    layout = AnnotationLayout(
        dest=dest_store, work=work, kind=kind, rank=rank, columns=cols,
        property_types=tuple(sorted(survey.types.items())),
        enums=tuple(sorted({**{k: tuple(str(x) for x in (v.values() if isinstance(v, Mapping) else v)) for k, v in (enums or {}).items()}, **survey.enums}.items())),
        specs_json=json.dumps([_spec_fields(s) for s in specs]),
        relationships=tuple(name for name, _ in cols.relationships),
        lower=tuple(float(v) for v in lower), upper=tuple(float(v) for v in upper),
        levels=tuple(levels), block_level=block_level, limit=limit,
        by_id_buckets=buckets, rel_buckets=buckets, sharding_json=sharding_json,
    )
    groups = _parquet(url).num_row_groups
    per_task = max(1, rows_per_task // max(1, _parquet(url).metadata.row_group(0).num_rows))
    slices = [TableSlice(url, a, min(a + per_task, groups)) for a in range(0, groups, per_task)]
    sort_tasks: tuple[Any, ...] = tuple(SortRows(layout, s, i) for i, s in enumerate(slices))
    survey_tasks: tuple[Any, ...] = tuple(SurveyBlock(layout, b) for b in layout.blocks())
    parameters = {
        "@type": "ngshow_annotation_work", "input": url, "columns": repr(cols), "count": survey.count,
        "layout": repr((layout.lower, layout.upper, block_level, limit, sharding_json, specs)),
    }
    sort = Plan(
        dest=work.url, info_json=json.dumps(parameters, sort_keys=True),
        provenance_json=json.dumps({"stage": "annotation sort"}),
        stages=(Stage("annotations: sort rows", sort_tasks), Stage("annotations: count blocks", survey_tasks)),
    )
    return AnnotationPlans(sort, layout, dims, survey.count)


def _spec_fields(spec: PropertySpec) -> dict[str, Any]:
    return {
        "id": spec.id, "type": spec.type, "description": spec.description,
        "enum_values": list(spec.enum_values) if spec.enum_values is not None else None,
        "enum_labels": list(spec.enum_labels) if spec.enum_labels is not None else None,
    }


def sampling_thresholds(layout: AnnotationLayout, stats: Sequence[tuple[tuple[int, ...], dict[str, Any]]]) -> list[float]:
    """Cumulative thresholds ``c[L]``: level ``L`` takes the annotations with ``c[L-1] <= u < c[L]``.

    ``maxCount(L)`` is the level's densest cell's total times the fraction still remaining; the level
    keeps ``min(1, limit / maxCount(L))`` of what remains, and the last level keeps all of it.
    """
    densest: list[int] = []
    for level in range(layout.block_level):
        ratio = np.asarray(layout.levels[layout.block_level].grid_shape) // np.asarray(layout.levels[level].grid_shape)
        totals: dict[tuple[int, ...], int] = {}
        for block, s in stats:
            parent = tuple(int(c) for c in np.asarray(block) // ratio)
            totals[parent] = totals.get(parent, 0) + int(s["total"])
        densest.append(max(totals.values(), default=0))
    deepest = max((len(s["densest"]) for _, s in stats), default=0)
    for k in range(deepest):
        densest.append(max((s["densest"][k] for _, s in stats if k < len(s["densest"])), default=0))
    thresholds: list[float] = []
    remaining, used = 1.0, 0.0
    for level, count in enumerate(densest):
        last = count <= layout.limit or level == len(densest) - 1 or level == len(layout.levels) - 1
        fraction = 1.0 if last else min(1.0, layout.limit / (remaining * count))
        if fraction >= 1.0:
            last = True
        used = 1.0 if last else used + remaining * fraction
        thresholds.append(used)
        remaining *= 1.0 - fraction
        if last:
            break
    return thresholds


def index_plan(plans: AnnotationPlans) -> Plan:
    """The dataset's plan, from the sort plan's block counts (run the sort plan first)."""
    base = plans.layout
    stats = []
    for block in base.blocks():
        raw = base.work.get(f"stats/{_block_name(block)}")
        if raw is None:
            raise ConvertError("the annotation sort stage has not finished; run it first")
        stats.append((block, json.loads(raw)))
    thresholds = sampling_thresholds(base, stats)
    lay = dataclasses.replace(base, thresholds=tuple(thresholds))
    spatial = []
    for level in range(len(thresholds)):
        entry: dict[str, Any] = {
            "key": f"spatial{level}",
            "grid_shape": list(lay.levels[level].grid_shape),
            "chunk_size": list(lay.levels[level].chunk_size),
            "limit": lay.limit,
        }
        spec = lay.spatial_sharding(level)
        if spec is not None:
            entry["sharding"] = spec.to_json()
        spatial.append(entry)
    by_id: dict[str, Any] = {"key": "by_id"}
    by_id_spec = lay.sharding("by_id")
    if by_id_spec is not None:
        by_id["sharding"] = by_id_spec.to_json()
    relationships = []
    for rel in lay.relationships:
        entry = {"id": rel, "key": f"rel_{rel}"}
        spec = lay.sharding(rel)
        if spec is not None:
            entry["sharding"] = spec.to_json()
        relationships.append(entry)
    info = {
        "@type": ANNOTATION_TYPE,
        "dimensions": plans.dimensions,
        "lower_bound": list(lay.lower),
        "upper_bound": list(lay.upper),
        "annotation_type": TYPE_NAMES[lay.kind].upper(),
        "properties": [s.to_json() for s in lay.specs],
        "relationships": relationships,
        "by_id": by_id,
        "spatial": spatial,
    }
    by_id_tasks = [WriteById(lay, b) for b in range(by_id_spec.num_shards if by_id_spec else lay.by_id_buckets)]
    rel_tasks = []
    for r, rel in enumerate(lay.relationships):
        spec = lay.sharding(rel)
        rel_tasks += [WriteRelated(lay, r, b) for b in range(spec.num_shards if spec else lay.rel_buckets)]
    block_tasks = [WriteBlock(lay, b) for b in lay.blocks()]
    stages = [
        Stage("annotations: by id", tuple(by_id_tasks)),
        Stage("annotations: relationships", tuple(rel_tasks)),
        Stage("annotations: spatial blocks", (*block_tasks, WriteCoarse(lay))),
    ]
    shard_tasks = []
    for level in range(lay.block_level, len(thresholds)):
        spec = lay.spatial_sharding(level)
        if spec is not None:
            shard_tasks += [WriteSpatialShard(lay, level, s) for s in range(spec.num_shards)]
    if shard_tasks:
        stages.append(Stage("annotations: spatial shards", tuple(shard_tasks)))
    provenance = {"description": "annotations written by ngshow", "count": plans.count, "levels": len(thresholds)}
    return Plan(
        dest=lay.dest.url, info_json=json.dumps(info, indent=2), provenance_json=json.dumps(provenance, indent=2),
        stages=tuple(stages),
    )


def write_annotations(
    data: Any,
    dest: str | os.PathLike[str],
    *,
    executor: Executor | None = None,
    progress: bool = False,
    workers: int | None = None,
    keep_work: bool = False,
    **options: Any,
) -> RunReport:
    """Write a precomputed annotation dataset (``neuroglancer_annotations_v1``) at ``dest``.

    Parameters
    ----------
    data
        A pandas DataFrame, or the path of a ``.parquet`` file (read one row group at a time, so
        tables larger than memory work; give columns by name).  With a DataFrame, geometry may
        also be given as arrays.
    dest
        A local folder, ``file://``, ``s3://`` or ``gs://`` URL (parquet input for remote ones).
    executor
        Any :class:`concurrent.futures.Executor` (default: a local process pool).
    options
        ``kind``, ``position`` / ``point_a``, ``point_b`` / ``center``, ``radii``, ``ids``,
        ``description``, ``properties``, ``property_types``, ``enums``, ``relationships`` as for
        :func:`ngshow.annotations.annotation_table`; ``voxel_size`` (nm, x y z) or ``dimensions``;
        ``lower_bound``/``upper_bound`` (default: the data's, rounded out to whole units);
        ``limit``: most annotations in one spatial cell (default 2000); ``sharded`` (default True);
        ``rows_per_task``.

    A killed or failed run, rerun with the same arguments, resumes.  The work folder
    ``.ngshow/annotations`` is removed at the end unless ``keep_work``.

    Examples
    --------
    >>> convert.write_annotations("synapses.parquet", "out/synapses", kind="point",
    ...     position=["x", "y", "z"], relationships={"pre": "pre_id", "post": "post_id"},
    ...     voxel_size=(8, 8, 40))
    """
    plans = plan_annotations(data, dest, **options)
    first = run(plans.sort, executor, progress=progress, workers=workers, spill=False)
    second = run(index_plan(plans), executor, progress=progress, workers=workers, spill=False)
    first.stages.extend(second.stages)
    first.dest = second.dest
    if not keep_work:
        _remove_work(plans.layout.work)
    return first


def _remove_work(work: Store) -> None:
    if work.is_local:
        shutil.rmtree(work.path(""), ignore_errors=True)
        parent = posixpath.dirname(work.path(""))
        try:
            os.rmdir(parent)  # .ngshow, if nothing else is in it
        except OSError:
            pass
        return
    fs = work._open()
    try:
        fs.rm(work.path(""), recursive=True)
    except FileNotFoundError:  # pragma: no cover
        pass
