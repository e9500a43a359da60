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
from .multires import MULTIRES_TYPE, Manifest, fragment_problem, parse_manifest, zorder
from .sharding import ShardError, ShardingSpec, ShardReader, compressed_morton_code
from .storage import WORK_PREFIX, Store
from .validate_annotations import ANNOTATION_TYPE, check_annotations

__all__ = ["Problem", "validate"]

_CHUNK = re.compile(r"^(\d+)-(\d+)_(\d+)-(\d+)_(\d+)-(\d+)$")
_MANIFEST = re.compile(r"^(\d+):0$")
_MULTIRES_INDEX = re.compile(r"^(\d+)\.index$")
_MULTIRES_DATA = re.compile(r"^\d+$")
_SHARD = re.compile(r"^[0-9a-f]+\.shard$")


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
        if data_type is not None and channels is not None:
            if scale.sharding is not None:
                _check_shards(store, scale, np.dtype(data_type), channels, full, report)
            else:
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
    sharding: ShardingSpec | None = None
    if "sharding" in entry:
        try:
            sharding = ShardingSpec.from_json(entry["sharding"])
        except InvalidRequest as e:
            report(where, str(e))
            ok = False
        if isinstance(chunks, list) and len(chunks) != 1:
            report(where, f"a sharded scale must have one chunk size, got {len(chunks)}")
            ok = False
    if not ok:
        return None
    return Scale(
        key=key, size=tuple(size), resolution=tuple(resolution), voxel_offset=tuple(offset),  # type: ignore[arg-type]
        chunk_size=tuple(chunk), encoding=encoding, cseg_block_size=tuple(block),  # type: ignore[arg-type]
        sharding=sharding,
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


def _check_shards(
    store: Store, scale: Scale, dtype: np.dtype[Any], channels: int, full: bool, report: Any
) -> None:
    """Every shard of the scale's grid present, its indexes in bounds and consistent, every chunk
    of the grid listed once in the right shard and minishard, and (``full``) decodable."""
    spec = scale.sharding
    assert spec is not None
    positions = scale.grid_positions()
    try:
        ids = compressed_morton_code(positions, scale.grid)
    except InvalidRequest as e:
        report(scale.key, str(e))
        return
    shard_of, _minishard_of = spec.locations(ids)
    wanted: dict[str, dict[int, tuple[int, ...]]] = {}
    for pos, cid, shard in zip(positions.tolist(), ids.tolist(), shard_of.tolist()):
        lo, hi = scale.chunk_bounds(pos)
        shape = tuple(b - a for a, b in zip(lo, hi))
        wanted.setdefault(spec.shard_name(int(shard)), {})[int(cid)] = shape
    present = store.list(scale.key)
    for name in sorted(set(wanted) - set(present)):
        report(f"{scale.key}/{name}", f"missing shard ({len(wanted[name])} chunks)")
    for name in sorted(set(present) - set(wanted)):
        report(f"{scale.key}/{name}", "unexpected file (no chunk of this scale's grid is in it)")
    for name in sorted(set(present) & set(wanted)):
        key = f"{scale.key}/{name}"

        def read(a: int, b: int, key: str = key) -> bytes:
            return store.get_range(key, a, b) or b""

        reader = ShardReader(read, spec, size=present[name], name=key)
        expected = wanted[name]
        seen: set[int] = set()
        try:
            for m in range(spec.num_minishards):
                for entry in reader.minishard(m):
                    if entry.key not in expected:
                        report(key, f"minishard {m} lists chunk {entry.key}, which is not in this shard")
                        continue
                    if spec.shard_and_minishard(entry.key)[1] != m:
                        report(key, f"minishard {m} lists chunk {entry.key} of another minishard")
                    if entry.key in seen:
                        report(key, f"chunk {entry.key} is listed twice")
                    seen.add(entry.key)
                    if full or (scale.encoding == "raw" and spec.data_encoding == "raw"):
                        data = reader.decode(reader.read(entry.start, entry.end))
                        _check_chunk_data(key, f"chunk {entry.key}: ", data, scale, expected[entry.key],
                                          dtype, channels, full, report)
        except ShardError as err:
            report(key, str(err))
            continue
        missing = sorted(set(expected) - seen)
        if missing:
            report(key, f"{len(missing)} chunks missing, e.g. chunk {missing[0]}")


def _check_chunk_data(
    key: str, prefix: str, data: bytes, scale: Scale, shape: tuple[int, ...],
    dtype: np.dtype[Any], channels: int, full: bool, report: Any,
) -> None:
    if scale.encoding == "raw":
        want = math.prod(shape) * channels * dtype.itemsize
        if len(data) != want:
            report(key, f"{prefix}{len(data)} bytes, expected {want} for a raw {shape} chunk")
            return
    elif not data:
        report(key, f"{prefix}empty chunk")
        return
    if full:
        try:
            decode_chunk(data, scale, shape, dtype, channels)
        except InvalidRequest as e:
            report(key, f"{prefix}{e}")


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
        if kind == MULTIRES_TYPE:
            _check_multires(store, mesh, mesh_info, full, report)
            return
        if kind != "neuroglancer_legacy_mesh":
            report(f"{mesh}/info", f"@type is {kind!r}; expected neuroglancer_legacy_mesh or {MULTIRES_TYPE}")
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


def _check_multires(store: Store, mesh: str, info: dict[str, Any], full: bool, report: Any) -> None:
    """``neuroglancer_multilod_draco``: the info, every manifest (levels, Z-order, sizes adding
    up to its fragment data) and, with ``full``, every Draco fragment."""
    where = f"{mesh}/info"
    bits = info.get("vertex_quantization_bits")
    if bits not in (10, 16):
        report(where, f"vertex_quantization_bits is {bits!r}, expected 10 or 16")
        return
    transform = info.get("transform")
    if not (isinstance(transform, list) and len(transform) == 12
            and all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in transform)):
        report(where, f"transform is {transform!r}, expected 12 numbers")
    multiplier = info.get("lod_scale_multiplier")
    if not isinstance(multiplier, (int, float)) or isinstance(multiplier, bool) or multiplier <= 0:
        report(where, f"lod_scale_multiplier is {multiplier!r}, expected a positive number")
    files = store.list(mesh)
    objects: list[tuple[str, bytes | None, int, int, Any]] = []  # (key, manifest, start, end, read)
    if "sharding" in info:
        try:
            spec = ShardingSpec.from_json(info["sharding"])
        except InvalidRequest as e:
            report(where, str(e))
            return
        for name in sorted(files):
            if name == "info":
                continue
            key = f"{mesh}/{name}"
            if not _SHARD.match(name):
                report(key, "unexpected file in a sharded mesh directory")
                continue

            def read(a: int, b: int, key: str = key) -> bytes:
                return store.get_range(key, a, b) or b""

            reader = ShardReader(read, spec, size=files[name], name=key)
            try:
                for m in range(spec.num_minishards):
                    for entry in reader.minishard(m):
                        shard, minishard = spec.shard_and_minishard(entry.key)
                        if spec.shard_name(shard) != name or minishard != m:
                            report(key, f"segment {entry.key} is stored in the wrong shard or minishard")
                        raw = reader.decode(reader.read(entry.start, entry.end))
                        objects.append((f"{key} segment {entry.key}", raw, -1, entry.start, read))
            except ShardError as err:
                report(key, str(err))
    else:
        for name in sorted(files):
            key = f"{mesh}/{name}"
            if name == "info" or _MULTIRES_DATA.match(name):
                continue
            match = _MULTIRES_INDEX.match(name)
            if not match:
                report(key, "unexpected file in a multi-resolution mesh directory")
                continue
            data_name = match.group(1)
            if data_name not in files:
                report(key, f"its fragment data {mesh}/{data_name} is missing")
                continue
            data_key = f"{mesh}/{data_name}"

            def read_data(a: int, b: int, key: str = data_key) -> bytes:
                return store.get_range(key, a, b) or b""

            objects.append((key, store.get(key), 0, files[data_name], read_data))
        for name in sorted(files):
            if _MULTIRES_DATA.match(name) and f"{name}.index" not in files:
                report(f"{mesh}/{name}", "fragment data without a manifest")
    for key, raw_manifest, start, end, read in objects:
        try:
            manifest = parse_manifest(raw_manifest or b"")
        except InvalidRequest as e:
            report(key, f"broken manifest: {e}")
            continue
        problem = _manifest_problem(manifest)
        if problem:
            report(key, problem)
            continue
        if start < 0:  # sharded: the fragment data ends where the manifest starts
            start = end - manifest.data_size
            if start < (16 << spec.minishard_bits):
                report(key, f"fragment data of {manifest.data_size} bytes would start before the shard's data")
                continue
        elif end - start != manifest.data_size:
            report(key, f"fragment sizes add up to {manifest.data_size} bytes, its data has {end - start}")
            continue
        if full:
            offset = start
            for lod, sizes in enumerate(manifest.sizes):
                for size in sizes.tolist():
                    problem = fragment_problem(read(offset, offset + size), bits=bits, lod=lod)
                    if problem:
                        report(key, f"LOD {lod} fragment at byte {offset - start}: {problem}")
                    offset += size


def _manifest_problem(manifest: Manifest) -> str | None:
    if manifest.num_lods < 1:
        return "no levels of detail"
    if not all(c > 0 and math.isfinite(c) for c in manifest.chunk_shape):
        return f"chunk_shape {manifest.chunk_shape} is not positive"
    for lod, positions in enumerate(manifest.positions):
        codes = zorder(positions)
        if len(codes) > 1 and not (codes[1:] > codes[:-1]).all():
            return f"LOD {lod} fragment positions are not in Z-order (or repeat)"
    return None


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
