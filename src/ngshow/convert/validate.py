"""``validate()``: check a precomputed dataset against the format, report every problem found.

Checks the ``info`` document, that every chunk of every (unsharded) scale exists with the right
size (and, with ``full=True``, decodes to the right shape), and the legacy mesh directory:
``mesh/info``, each ``<id>:0`` manifest and the fragments it lists; and, when ``info`` names one,
the ``segment_properties`` info (parseable, unique ids, one value per id in every property).
"""

from __future__ import annotations

import json
import math
import re
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidRequest
from .precomputed import DATA_TYPES, ENCODINGS, Scale, decode_chunk
from .properties import check_segment_properties
from .storage import WORK_PREFIX, Store
from .validate_annotations import ANNOTATION_TYPE, check_annotations

__all__ = ["Problem", "validate"]

_CHUNK = re.compile(r"^(\d+)-(\d+)_(\d+)-(\d+)_(\d+)-(\d+)$")
_MANIFEST = re.compile(r"^(\d+):0$")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset: the key it concerns and what is wrong."""

    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


def _ints(value: Any, n: int, *, positive: bool) -> list[int] | None:
    if not isinstance(value, list) or len(value) != n:
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return None
    if positive and any(v < 1 for v in value):
        return None
    return value


def _numbers(value: Any, n: int) -> list[float] | None:
    if not isinstance(value, list) or len(value) != n:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in value):
        return None
    return [float(v) for v in value]


def validate(url: str, *, full: bool = False, max_problems: int = 1000) -> list[Problem]:
    """Problems with the precomputed dataset at ``url`` (an empty list if there are none).

    Parameters
    ----------
    url
        Local path or fsspec URL of the dataset's root (where ``info`` is).
    full
        Also decode every chunk and parse every mesh fragment (reads the whole dataset); without
        it chunks are checked by name and, for ``raw``, byte size.
    max_problems
        Stop after this many.
    """
    store = Store(url)
    problems: list[Problem] = []

    def report(key: str, message: str) -> None:
        if len(problems) < max_problems:
            problems.append(Problem(key, message))

    raw = store.get("info")
    if raw is None:
        return [Problem("info", "missing: not a precomputed dataset")]
    try:
        info = json.loads(raw)
    except ValueError as e:
        return [Problem("info", f"not valid JSON: {e}")]
    if not isinstance(info, dict):
        return [Problem("info", "must be a JSON object")]
    if info.get("@type") == ANNOTATION_TYPE:
        check_annotations(store, info, report)
        return problems
    if info.get("@type", "neuroglancer_multiscale_volume") != "neuroglancer_multiscale_volume":
        report("info", f"@type is {info.get('@type')!r}, expected 'neuroglancer_multiscale_volume'")
    kind = info.get("type")
    if kind not in ("image", "segmentation"):
        report("info", f"type is {kind!r}, expected 'image' or 'segmentation'")
    data_type = info.get("data_type")
    if data_type not in DATA_TYPES:
        report("info", f"data_type is {data_type!r}, expected one of {sorted(DATA_TYPES)}")
        data_type = None
    channels = info.get("num_channels")
    if not isinstance(channels, int) or isinstance(channels, bool) or channels < 1:
        report("info", f"num_channels is {channels!r}, expected a positive integer")
        channels = None
    scales = info.get("scales")
    if not isinstance(scales, list) or not scales:
        report("info", "scales must be a non-empty list")
        scales = []
    keys: set[str] = set()
    for i, entry in enumerate(scales):
        scale = _check_scale_entry(entry, i, data_type, channels, report)
        if scale is None:
            continue
        if scale.key in keys:
            report("info", f"scales[{i}]: key {scale.key!r} is used twice")
            continue
        keys.add(scale.key)
        if isinstance(entry, dict) and "sharding" in entry:
            report(scale.key, "sharded scales are not checked")
            continue
        if data_type is not None and channels is not None:
            _check_chunks(store, scale, np.dtype(data_type), channels, full, report)
    mesh = info.get("mesh")
    if mesh is not None:
        if kind != "segmentation":
            report("info", "mesh is only allowed for segmentations")
        if not isinstance(mesh, str) or not mesh:
            report("info", f"mesh is {mesh!r}, expected a directory name")
        else:
            _check_meshes(store, mesh, full, report)
    properties = info.get("segment_properties")
    if properties is not None:
        if kind != "segmentation":
            report("info", "segment_properties is only allowed for segmentations")
        if not isinstance(properties, str) or not properties or properties.startswith("/"):
            report("info", f"segment_properties is {properties!r}, expected a directory name")
        else:
            _check_properties(store, properties.rstrip("/"), report)
    return problems


def _check_properties(store: Store, folder: str, report: Any) -> None:
    key = f"{folder}/info"
    raw = store.get(key)
    if raw is None:
        report(key, "missing")
        return
    try:
        doc = json.loads(raw)
    except ValueError as e:
        report(key, f"not valid JSON: {e}")
        return
    for message in check_segment_properties(doc):
        report(key, message)


def _check_scale_entry(
    entry: Any, i: int, data_type: str | None, channels: int | None, report: Any
) -> Scale | None:
    where = f"info scales[{i}]"
    if not isinstance(entry, dict):
        report(where, "must be an object")
        return None
    ok = True
    key = entry.get("key")
    if not isinstance(key, str) or not key or key.startswith("/"):
        report(where, f"key is {key!r}, expected a relative path")
        ok = False
    size = _ints(entry.get("size"), 3, positive=True)
    if size is None:
        report(where, f"size is {entry.get('size')!r}, expected 3 positive integers")
        ok = False
    resolution = _numbers(entry.get("resolution"), 3)
    if resolution is None:
        report(where, f"resolution is {entry.get('resolution')!r}, expected 3 positive numbers")
        ok = False
    offset = _ints(entry.get("voxel_offset", [0, 0, 0]), 3, positive=False)
    if offset is None:
        report(where, f"voxel_offset is {entry.get('voxel_offset')!r}, expected 3 integers")
        ok = False
    chunks = entry.get("chunk_sizes")
    chunk = _ints(chunks[0], 3, positive=True) if isinstance(chunks, list) and chunks else None
    if chunk is None:
        report(where, f"chunk_sizes is {chunks!r}, expected [[x, y, z], ...]")
        ok = False
    encoding = entry.get("encoding")
    block = [8, 8, 8]
    if encoding not in ENCODINGS:
        report(where, f"encoding {encoding!r} is not one ngshow checks ({', '.join(ENCODINGS)})")
        ok = False
    elif encoding == "compressed_segmentation":
        got = _ints(entry.get("compressed_segmentation_block_size"), 3, positive=True)
        if got is None:
            report(where, "compressed_segmentation needs compressed_segmentation_block_size [x, y, z]")
            ok = False
        else:
            block = got
        if data_type not in (None, "uint32", "uint64"):
            report(where, f"compressed_segmentation needs uint32 or uint64, not {data_type}")
            ok = False
    elif encoding == "jpeg":
        if data_type not in (None, "uint8") or channels not in (None, 1, 3):
            report(where, f"jpeg needs uint8 with 1 or 3 channels, not {data_type} x {channels}")
            ok = False
    if not ok:
        return None
    return Scale(
        key=key, size=tuple(size), resolution=tuple(resolution), voxel_offset=tuple(offset),  # type: ignore[arg-type]
        chunk_size=tuple(chunk), encoding=encoding, cseg_block_size=tuple(block),  # type: ignore[arg-type]
    )


def _check_chunks(
    store: Store, scale: Scale, dtype: np.dtype[Any], channels: int, full: bool, report: Any
) -> None:
    present = store.list(scale.key)
    expected: dict[str, tuple[int, ...]] = {}
    for lo, hi in scale.all_chunks():
        name = scale.chunk_key(lo, hi).rsplit("/", 1)[1]
        expected[name] = tuple(b - a for a, b in zip(lo, hi))
    for name in sorted(set(expected) - set(present)):
        report(f"{scale.key}/{name}", "missing chunk")
    for name in sorted(set(present) - set(expected)):
        why = "not a chunk of this scale's grid" if _CHUNK.match(name) else "unexpected file"
        report(f"{scale.key}/{name}", why)
    for name in sorted(set(present) & set(expected)):
        shape = expected[name]
        key = f"{scale.key}/{name}"
        if scale.encoding == "raw":
            want = math.prod(shape) * channels * dtype.itemsize
            if present[name] != want:
                report(key, f"{present[name]} bytes, expected {want} for a raw {shape} chunk")
                continue
        elif present[name] == 0:
            report(key, "empty chunk")
            continue
        if full:
            data = store.get(key)
            try:
                decode_chunk(data or b"", scale, shape, dtype, channels)
            except InvalidRequest as e:
                report(key, str(e))


def _check_meshes(store: Store, mesh: str, full: bool, report: Any) -> None:
    raw = store.get(f"{mesh}/info")
    if raw is None:
        report(f"{mesh}/info", "missing")
    else:
        try:
            mesh_info = json.loads(raw)
        except ValueError as e:
            report(f"{mesh}/info", f"not valid JSON: {e}")
            mesh_info = {}
        kind = mesh_info.get("@type") if isinstance(mesh_info, dict) else None
        if kind != "neuroglancer_legacy_mesh":
            report(f"{mesh}/info", f"@type is {kind!r}; only neuroglancer_legacy_mesh is checked")
            return
    files = store.list(mesh)
    listed: set[str] = set()
    for name in sorted(n for n in files if _MANIFEST.match(n)):
        key = f"{mesh}/{name}"
        try:
            manifest = json.loads(store.get(key) or b"")
            fragments = manifest["fragments"]
            if not isinstance(fragments, list) or not all(isinstance(f, str) for f in fragments):
                raise ValueError("fragments must be a list of names")
        except (ValueError, KeyError, TypeError) as e:
            report(key, f"broken manifest: {e}")
            continue
        for frag in fragments:
            listed.add(frag)
            if frag not in files:
                report(key, f"lists fragment {frag!r}, which is missing")
                continue
            size = files[frag]
            if size < 4 or size % 4:
                report(f"{mesh}/{frag}", f"{size} bytes is not a mesh fragment")
            elif full:
                problem = _fragment_problem(store.get(f"{mesh}/{frag}") or b"")
                if problem:
                    report(f"{mesh}/{frag}", problem)
    for name in sorted(files):
        if name in listed or name == "info" or _MANIFEST.match(name) or name.startswith(WORK_PREFIX):
            continue
        report(f"{mesh}/{name}", "not listed in any manifest")


def _fragment_problem(data: bytes) -> str | None:
    if len(data) < 4:
        return "shorter than its vertex count"
    (n,) = struct.unpack_from("<I", data)
    rest = len(data) - 4 - 12 * n
    if rest < 0 or rest % 12:
        return f"{len(data)} bytes do not hold {n} vertices and whole triangles"
    vertices = np.frombuffer(data, "<f4", 3 * n, 4)
    if not np.isfinite(vertices).all():
        return "non-finite vertex coordinates"
    faces = np.frombuffer(data, "<u4", rest // 4, 4 + 12 * n)
    if faces.size and int(faces.max()) >= n:
        return f"a triangle indexes vertex {int(faces.max())} of {n}"
    return None
