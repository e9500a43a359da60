"""Checks of precomputed annotation datasets (``neuroglancer_annotations_v1``), for ``validate()``.

The ``info`` document (dimensions, bounds, type, properties, relationships, indexes, spatial levels
that nest and tile the bounds, sharding specifications), then every index's entries: each by-id
entry must be one record plus its related-id lists, each relationship and spatial entry a whole
multiple-annotation list of known ids, spatial keys must be cells of their grid, and every
annotation must be in the spatial index.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..annotations import PROPERTY_DTYPES, PropertySpec
from ..errors import InvalidRequest
from .sharding import ShardError, ShardingSpec, decode_shard, morton_bits
from .storage import WORK_PREFIX, Store

__all__ = ["ANNOTATION_TYPE", "check_annotations"]

ANNOTATION_TYPE = "neuroglancer_annotations_v1"
_TYPES = {"POINT": 1, "LINE": 2, "AXIS_ALIGNED_BOUNDING_BOX": 2, "ELLIPSOID": 2, "POLYLINE": 0}
_ID = re.compile(r"^[a-z][a-zA-Z0-9_]*$")

Report = Callable[[str, str], None]


def _record_size(kind: str, rank: int, properties: list[dict[str, Any]]) -> int:
    size = 4 * rank * _TYPES[kind]
    for p in properties:
        spec = PropertySpec(p["id"], p["type"])
        size += PROPERTY_DTYPES[spec.type][1] if spec.components == 1 else spec.components
    return size + (-size) % 4


def _check_info(info: dict[str, Any], report: Report) -> tuple[int, int] | None:
    """(rank, record size), or None if the info is too broken to read entries with."""
    dims = info.get("dimensions")
    if not isinstance(dims, dict) or not dims:
        report("info", "dimensions must be a non-empty object of name: [scale, unit]")
        return None
    for name, value in dims.items():
        if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], (int, float))
                and value[0] > 0 and isinstance(value[1], str)):
            report("info", f"dimensions[{name!r}] must be [positive scale, unit], got {value!r}")
    rank = len(dims)
    lower, upper = info.get("lower_bound"), info.get("upper_bound")
    ok = all(isinstance(b, list) and len(b) == rank and all(isinstance(v, (int, float)) for v in b) for b in (lower, upper))
    if not ok:
        report("info", f"lower_bound and upper_bound must be {rank} numbers each")
        return None
    assert isinstance(lower, list) and isinstance(upper, list)
    if any(u < l for l, u in zip(lower, upper)):
        report("info", "upper_bound must not be below lower_bound")
    kind = info.get("annotation_type")
    if kind not in _TYPES:
        report("info", f"annotation_type is {kind!r}, expected one of {sorted(_TYPES)}")
        return None
    properties = info.get("properties", [])
    good_properties = isinstance(properties, list)
    seen: set[str] = set()
    for i, p in enumerate(properties if good_properties else []):
        if not isinstance(p, dict) or not _ID.match(str(p.get("id", ""))) or p.get("type") not in PROPERTY_DTYPES:
            report("info", f"properties[{i}] needs an id matching [a-z][a-zA-Z0-9_]* and a type of {sorted(PROPERTY_DTYPES)}")
            good_properties = False
            continue
        if p["id"] in seen:
            report("info", f"property id {p['id']!r} is used twice")
        seen.add(p["id"])
        if ("enum_values" in p) != ("enum_labels" in p):
            report("info", f"property {p['id']!r}: enum_values and enum_labels go together")
        elif "enum_values" in p:
            if p["type"] in ("rgb", "rgba"):
                report("info", f"property {p['id']!r}: {p['type']} properties take no enum")
            elif not (isinstance(p["enum_values"], list) and isinstance(p["enum_labels"], list)
                      and len(p["enum_values"]) == len(p["enum_labels"])):
                report("info", f"property {p['id']!r}: enum_values and enum_labels must be lists of one length")
    if not good_properties:
        report("info", "properties must be a list of property objects")
    order = [1 if p["type"] in ("rgb", "rgba") else PROPERTY_DTYPES[p["type"]][1] for p in properties] if good_properties else []
    if order != sorted(order, reverse=True):
        # The client reorders properties by alignment; readers that do not would disagree.
        report("info", "properties are not listed 4-byte, then 2-byte, then 1-byte types (encoding order)")
    for i, rel in enumerate(info.get("relationships", [])):
        if not isinstance(rel, dict) or not isinstance(rel.get("id"), str) or not isinstance(rel.get("key"), str):
            report("info", f"relationships[{i}] needs a string id and key")
    if not isinstance(info.get("by_id"), dict) or not isinstance(info["by_id"].get("key"), str):
        report("info", "by_id must be an object with a key")
    spatial = info.get("spatial")
    if not isinstance(spatial, list) or not spatial:
        report("info", "spatial must be a non-empty list of levels")
    else:
        previous: list[float] | None = None
        for i, level in enumerate(spatial):
            grid, size, limit = (level.get(k) if isinstance(level, dict) else None for k in ("grid_shape", "chunk_size", "limit"))
            if not (isinstance(grid, list) and len(grid) == rank and all(isinstance(g, int) and g > 0 for g in grid)
                    and isinstance(size, list) and len(size) == rank and all(isinstance(c, (int, float)) and c > 0 for c in size)
                    and isinstance(limit, int) and limit > 0 and isinstance(level.get("key"), str)):
                report("info", f"spatial[{i}] needs a key, {rank} positive grid_shape ints and chunk_size numbers, a positive limit")
                continue
            if any(not math.isclose(g * c, u - l, rel_tol=1e-6) for g, c, l, u in zip(grid, size, lower, upper)):
                report("info", f"spatial[{i}]: grid_shape x chunk_size does not equal upper_bound - lower_bound")
            if previous is not None and any(not math.isclose(p / c, round(p / c), rel_tol=1e-6) for p, c in zip(previous, size)):
                report("info", f"spatial[{i}]: chunk_size does not divide the previous level's")
            previous = size
    if good_properties and isinstance(properties, list):
        return rank, _record_size(str(kind), rank, properties)
    return None


def _sharding(entry: dict[str, Any], where: str, report: Report) -> tuple[bool, ShardingSpec | None]:
    if "sharding" not in entry:
        return True, None
    try:
        return True, ShardingSpec.from_json(entry["sharding"])
    except InvalidRequest as e:
        report("info", f"{where}: {e}")
        return False, None


def _entries(store: Store, folder: str, spec: ShardingSpec | None, report: Report) -> Iterator[tuple[int | str, bytes]]:
    """(key, data) of every entry of an index: shard keys, or unsharded file names."""
    files = store.list(folder)
    if spec is None:
        for name in sorted(files):
            data = store.get(f"{folder}/{name}")
            if data is not None:
                yield name, data
        return
    for name in sorted(files):
        if not name.endswith(".shard"):
            report(f"{folder}/{name}", "not a shard file")
            continue
        data = store.get(f"{folder}/{name}")
        if data is None:
            continue
        try:
            shard = decode_shard(data, spec, name=f"{folder}/{name}")
        except ShardError as e:
            report(f"{folder}/{name}", str(e))
            continue
        expected = spec.shard_name(spec.shard_and_minishard(next(iter(shard)))[0]) if shard else name
        if expected != name:
            report(f"{folder}/{name}", f"holds keys of shard {expected}")
        yield from shard.items()


def _many(data: bytes, record: int, where: str, report: Report) -> np.ndarray[Any, Any] | None:
    """The ids of a multiple-annotation list, or None (reported) if its size is wrong."""
    if len(data) < 8:
        report(where, "shorter than the 8-byte count")
        return None
    count = int(np.frombuffer(data[:8], "<u8")[0])
    if len(data) != 8 + count * (record + 8):
        report(where, f"{len(data)} bytes for {count} annotations of {record} bytes (expected {8 + count * (record + 8)})")
        return None
    return np.frombuffer(data, "<u8", count=count, offset=8 + count * record)


def _one(data: bytes, record: int, relationships: int) -> bool:
    offset = record
    for _ in range(relationships):
        if offset + 4 > len(data):
            return False
        offset += 4 + 8 * int(np.frombuffer(data, "<u4", count=1, offset=offset)[0])
    return offset == len(data)


def check_annotations(store: Store, info: dict[str, Any], report: Report) -> None:
    """Report every problem of the annotation dataset in ``store`` whose parsed info is ``info``."""
    facts = _check_info(info, report)
    if facts is None:
        return
    rank, record = facts
    if info.get("annotation_type") == "POLYLINE":
        report("info", "POLYLINE entries are not checked")
        return
    relationships = info.get("relationships", [])
    by_id = info["by_id"]
    ok, spec = _sharding(by_id, "by_id", report)
    ids: set[int] = set()
    if ok:
        for key, data in _entries(store, by_id["key"], spec, report):
            where = f"{by_id['key']}/{key}"
            try:
                ids.add(int(key))
            except ValueError:
                report(where, "unsharded by-id files are named by a decimal uint64")
                continue
            if not _one(data, record, len(relationships)):
                report(where, f"not one {record}-byte record followed by {len(relationships)} related-id lists")
        if not ids:
            report(by_id["key"], "the by-id index is empty")
    for rel in relationships:
        ok, spec = _sharding(rel, f"relationship {rel.get('id')!r}", report)
        if not ok:
            continue
        for key, data in _entries(store, rel["key"], spec, report):
            listed = _many(data, record, f"{rel['key']}/{key}", report)
            if listed is not None and ids and not set(listed.tolist()) <= ids:
                report(f"{rel['key']}/{key}", "lists annotation ids that the by-id index lacks")
    in_spatial: set[int] = set()
    for i, level in enumerate(info["spatial"]):
        ok, spec = _sharding(level, f"spatial[{i}]", report)
        if not ok or not isinstance(level, dict) or not isinstance(level.get("grid_shape"), list):
            continue
        grid = level["grid_shape"]
        valid_codes = 1 << len(morton_bits(grid)) if spec is not None and len(grid) == 3 else None
        for key, data in _entries(store, level["key"], spec, report):
            where = f"{level['key']}/{key}"
            if spec is None:
                cell = str(key).split("_")
                if len(cell) != rank or not all(c.isdigit() and int(c) < g for c, g in zip(cell, grid)):
                    report(where, f"not a cell of the {grid} grid")
            elif valid_codes is not None and int(key) >= valid_codes:
                report(where, f"Morton code {key} lies outside the {grid} grid")
            listed = _many(data, record, where, report)
            if listed is not None:
                in_spatial.update(listed.tolist())
    missing = ids - in_spatial
    if ids and missing:
        report("spatial", f"{len(missing)} annotations are in no spatial cell (e.g. id {min(missing)})")
    if store.exists(f"{WORK_PREFIX}/annotations/info"):
        report(WORK_PREFIX, "an unfinished annotation run left its work folder: rerun it")
