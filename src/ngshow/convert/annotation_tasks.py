"""Tasks of the annotation writer: frozen, picklable, idempotent, each with ``run() -> TaskResult``.

The sort plan's tasks read a slice of the table's rows (:class:`SortRows`) and count each spatial
block's densest cells (:class:`SurveyBlock`) into a work folder; the index plan's tasks write the
by-id index, the relationship indexes and the spatial levels from it, per shard or bucket and per
block.  Each task checks a marker (or its output) first and writes it last, so reruns resume.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..annotations import PropertySpec, AnnotationTable, annotation_table
from ..errors import InvalidArray
from .annotation_format import (
    Level,
    cell_ids,
    cells_touched,
    encode_many,
    encode_records,
    runs,
    unit_random,
)
from .errors import ConvertError
from .sharding import ShardingSpec, compressed_morton_code, encode_shard, volume_sharding
from .storage import WORK_PREFIX, Store
from .tasks import TaskResult

__all__ = [
    "AnnotationLayout",
    "Columns",
    "SortRows",
    "SurveyBlock",
    "TableSlice",
    "WriteBlock",
    "WriteById",
    "WriteCoarse",
    "WriteRelated",
    "WriteSpatialShard",
    "block_name",
    "open_parquet",
    "table_of_rows",
]


WORK_DIR = f"{WORK_PREFIX}/annotations"


#: Spatial cells per shard (sharded, 3-D datasets).
CELLS_PER_SHARD = 1 << 12


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


def open_parquet(url: str) -> Any:
    import pyarrow.parquet as pq

    if "://" in url and not url.startswith("file://"):
        import fsspec

        return pq.ParquetFile(fsspec.open(url, "rb").open())
    return pq.ParquetFile(url.removeprefix("file://"))


@dataclass(frozen=True)
class TableSlice:
    """Row groups ``[start, stop)`` of a parquet file, whose first row is row ``first_row``."""

    url: str
    start: int
    stop: int
    first_row: int = 0

    def read(self, columns: Sequence[str]) -> Any:
        """The rows as a pandas DataFrame."""
        return open_parquet(self.url).read_row_groups(list(range(self.start, self.stop)), columns=list(columns)).to_pandas()


def table_of_rows(
    frame: Any, cols: Columns, layout: AnnotationLayout | None, enums: Mapping[str, Any], types: Mapping[str, str],
    first_row: int = 0,
) -> AnnotationTable:
    """Rows of the parquet file as an :class:`AnnotationTable` with the dataset's property types.

    Without an id column, annotation ids are row numbers counted from 1 over the whole table.
    """
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
        frame, kind=cols.kind,  # type: ignore[arg-type]
        ids=cols.ids if cols.ids is not None else np.arange(first_row + 1, first_row + 1 + len(frame), dtype=np.uint64),
        description=cols.description,
        properties=properties, property_types=types, enums={k: list(v) for k, v in enums.items()},
        relationships={name: col for name, col in cols.relationships},
        rank=layout.rank if layout is not None else None, **geometry,
    )


def _save(store: Store, key: str, **arrays: np.ndarray[Any, Any]) -> int:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    data = buffer.getvalue()
    store.put(key, data)
    return len(data)


def load_all(store: Store, folder: str) -> tuple[dict[str, np.ndarray[Any, Any]], int]:
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
        return identity_shards(ids, spec)

    def bucket_of_segments(self, name: str, segments: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        spec = self.sharding(name)
        if spec is None:
            return (segments % np.uint64(self.rel_buckets)).astype(np.int64)
        unique, inverse = np.unique(segments, return_inverse=True)
        shards = np.array([spec.shard_and_minishard(int(s))[0] for s in unique], dtype=np.int64)
        return shards[inverse.reshape(-1)] if len(unique) else np.zeros(0, np.int64)


def identity_shards(keys: np.ndarray[Any, Any], spec: ShardingSpec) -> np.ndarray[Any, Any]:
    shifted = keys.astype(np.uint64) >> np.uint64(spec.preshift_bits + spec.minishard_bits)
    return (shifted & np.uint64((1 << spec.shard_bits) - 1)).astype(np.int64)


def block_name(block: Sequence[int]) -> str:
    return "_".join(str(int(c)) for c in block)


def _done(layout: AnnotationLayout, name: str) -> bool:
    return layout.work.exists(f"done/{name}")


def _mark(layout: AnnotationLayout, name: str) -> None:
    layout.work.put(f"done/{name}", b"")


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
        table = table_of_rows(frame, lay.columns, lay, dict(lay.enums), dict(lay.property_types), self.rows.first_row)
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
        block_ids = cell_ids(cells, lay.levels[lay.block_level].grid_shape)
        for blk in np.unique(block_ids):
            pick = index[block_ids == blk]
            block = [int(c) for c in np.unravel_index(int(blk), lay.levels[lay.block_level].grid_shape)]
            nbytes += _save(
                lay.work, f"spatial/{block_name(block)}/{tag}",
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
        key = f"stats/{block_name(self.block)}"
        if lay.work.exists(key):
            return TaskResult(skipped_task=True)
        arrays, nbytes = load_all(lay.work, f"spatial/{block_name(self.block)}")
        counts: list[int] = []
        if arrays:
            lower = np.asarray(lay.lower)
            for level in range(lay.block_level, len(lay.levels)):
                _, cells = cells_touched(arrays["lo"], arrays["hi"], lower, lay.levels[level], lay.block_window(self.block, level))
                ids = cell_ids(cells, lay.levels[level].grid_shape)
                densest = int(np.unique(ids, return_counts=True)[1].max()) if len(ids) else 0
                counts.append(densest)
                if densest <= lay.limit:
                    break
        total = int(len(arrays["ids"])) if arrays else 0
        lay.work.put(key, json.dumps({"total": total, "densest": counts}).encode())
        return TaskResult(written=1, bytes_in=nbytes)


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
    """One by-id shard (or bucket of files): each annotation's record and related ids, by id."""

    layout: AnnotationLayout
    bucket: int

    def run(self) -> TaskResult:
        lay = self.layout
        name = f"byid/{self.bucket}"
        if _done(lay, name):
            return TaskResult(skipped_task=True)
        arrays, nbytes_in = load_all(lay.work, f"byid/{self.bucket}")
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


@dataclass(frozen=True)
class WriteRelated:
    """One shard (or bucket) of a relationship index: each segment's annotations."""

    layout: AnnotationLayout
    relationship: int
    bucket: int

    def run(self) -> TaskResult:
        lay = self.layout
        name = f"rel/{self.relationship}/{self.bucket}"
        if _done(lay, name):
            return TaskResult(skipped_task=True)
        arrays, nbytes_in = load_all(lay.work, name)
        rel = lay.relationships[self.relationship]
        folder = f"rel_{rel}"
        w = s = b = 0
        if arrays:
            order = np.lexsort((arrays["ids"], arrays["segments"]))
            segments, ids, records = arrays["segments"][order], arrays["ids"][order], arrays["records"][order]
            items = ((int(seg), encode_many(records[part], ids[part])) for seg, part in runs(segments))
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
    return np.searchsorted(np.asarray(layout.thresholds), unit_random(ids), side="right")


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
    keys = cell_ids(cells, layout.levels[level].grid_shape)
    order = np.lexsort((unit_random(arrays["ids"][which]), keys))
    keys, which = keys[order], which[order]
    for key, part in runs(keys):
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
    shards = identity_shards(codes, spec)
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
        name = f"block/{block_name(self.block)}"
        if _done(lay, name):
            return TaskResult(skipped_task=True)
        arrays, nbytes_in = load_all(lay.work, f"spatial/{block_name(self.block)}")
        w = s = b = 0
        if arrays:
            levels = _levels_of(lay, arrays["ids"])
            coarse = levels < lay.block_level
            if coarse.any():
                b += _save(lay.work, f"coarse/{block_name(self.block)}", **{k: v[coarse] for k, v in arrays.items()})
            for level in range(lay.block_level, len(lay.thresholds)):
                window = lay.block_window(self.block, level)
                dw, ds, db = _write_cells(lay, level, _cells_of_level(lay, arrays, level, window), block_name(self.block))
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
        arrays, nbytes_in = load_all(lay.work, "coarse")
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
