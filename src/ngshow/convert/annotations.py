"""Precomputed annotation datasets (``neuroglancer_annotations_v1``) from tables of any size.

The format (Neuroglancer's ``src/datasource/precomputed/annotations.md``) has three kinds of index,
each optionally sharded: annotations by id (with their related segment ids), the annotations of each
segment per relationship, and a multi-level spatial index whose cells hold a uniform subsample of
about ``limit`` annotations each (the rest are left to finer levels).  The tasks are in
:mod:`.annotation_tasks`, the encodings and the grid in :mod:`.annotation_format`.

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
in the level's densest cell (so, as with the spec's random draw, the densest cell may hold a few
percent more than ``limit``).  The output depends only on the input, tasks are idempotent, and a
killed run resumes.  Memory is bounded by a task's slice of rows, bucket or block, never the table.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import posixpath
import shutil
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..annotations import GEOMETRY_ARGUMENTS, PROPERTY_DTYPES, TYPE_NAMES, PropertySpec, coordinate_dimensions
from ..errors import InvalidArray
from .annotation_format import sorted_properties, spatial_levels
from .annotation_tasks import (
    WORK_DIR,
    AnnotationLayout,
    Columns,
    SortRows,
    SurveyBlock,
    TableSlice,
    WriteBlock,
    WriteById,
    WriteCoarse,
    WriteRelated,
    WriteSpatialShard,
    block_name,
    open_parquet,
    table_of_rows,
)
from .errors import ConvertError
from .plan import Plan, Stage
from .run import RunReport, run
from .sharding import ShardingSpec
from .storage import Store
from .validate_annotations import ANNOTATION_TYPE

__all__ = ["AnnotationPlans", "index_plan", "plan_annotations", "sampling_thresholds", "write_annotations"]

log = logging.getLogger(__name__)

#: Rows read by one sort task.
ROWS_PER_TASK = 1 << 20


#: Aim for at most this many annotations in one by-id bucket, relationship bucket or spatial block.
BUCKET_TARGET = 1 << 19


#: Deepest spatial level (grid shapes stay below 2**MAX_LEVELS per axis).
MAX_LEVELS = 20


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
    file = open_parquet(url)
    out = Survey()
    light = Columns(cols.kind, cols.geometry, properties=cols.properties)
    ranges: dict[str, tuple[int, int]] = {}
    for group in range(file.num_row_groups):
        frame = file.read_row_groups([group], columns=light.names()).to_pandas()
        if group == 0:
            for name, col in cols.properties:
                if str(frame[col].dtype) == "category" and name not in enums:
                    out.enums[name] = tuple(str(c) for c in frame[col].cat.categories)
        table = table_of_rows(frame, light, None, {**{k: tuple(v) for k, v in enums.items()}, **out.enums}, types)
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
    metadata = open_parquet(url).metadata
    rows = [metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)]
    per_task = max(1, rows_per_task // max(1, rows[0]))
    starts = np.concatenate(([0], np.cumsum(rows))).astype(int).tolist()
    slices = [
        TableSlice(url, a, min(a + per_task, len(rows)), starts[a]) for a in range(0, len(rows), per_task)
    ]
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
        raw = base.work.get(f"stats/{block_name(block)}")
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
