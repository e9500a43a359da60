"""Neuroglancer's multi-resolution meshes (``neuroglancer_multilod_draco``): levels of detail,
octree fragments, manifests.

One object's mesh becomes:

* levels of detail (:func:`levels_of_detail`): LOD 0 the welded forge pieces, lightly simplified;
  LOD ``k`` the same mesh simplified by ngshow's own quadric-error simplifier
  (:func:`ngshow._native.simplify_mesh`) with an error bound doubling per level (about half the
  triangles of the level before), each bound measured against LOD 0's planes;
* for each level, fragments on an octree grid of cells ``chunk_shape * 2**k``
  (:func:`lod_fragments`): triangles are cut on the planes of the level's child grid
  (``chunk_shape * 2**(k-1)``, or the cell grid itself at LOD 0), so no triangle crosses a child
  boundary, then grouped by cell, vertices quantized to the cell's box and Draco-encoded;
* the fragment data (every fragment, LOD 0 first, cells in Z-order) and the binary manifest
  (:func:`encode_manifest`), which :func:`parse_manifest` reads back for validate and tests.

Stored-model coordinates are nanometres (the ``info`` transform is the identity).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidRequest

__all__ = [
    "MULTIRES_TYPE",
    "Manifest",
    "encode_manifest",
    "fragment_problem",
    "levels_of_detail",
    "lod_fragments",
    "mesh_info",
    "parse_manifest",
    "split_on_grid",
    "weld",
    "zorder",
]

MULTIRES_TYPE = "neuroglancer_multilod_draco"
#: LOD 0's simplification bound, in voxels (smallest side); LOD k's is ``2**k`` times it.
LOD0_ERROR_VOXELS = 0.25
#: Levels stop when one would keep more than this fraction of the level before's triangles.
MIN_REDUCTION = 0.9
MAX_LODS = 12


def mesh_info(
    *, vertex_quantization_bits: int, sharding: dict[str, Any] | None
) -> dict[str, Any]:
    """The mesh directory's ``info`` document (identity transform: stored model = nm)."""
    if vertex_quantization_bits not in (10, 16):
        raise InvalidRequest(f"vertex_quantization_bits must be 10 or 16, got {vertex_quantization_bits}")
    info: dict[str, Any] = {
        "@type": MULTIRES_TYPE,
        "vertex_quantization_bits": vertex_quantization_bits,
        "transform": [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0],
        "lod_scale_multiplier": 1,
    }
    if sharding is not None:
        info["sharding"] = sharding
    return info


def weld(
    pieces: Sequence[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]], quantum: float = 1 / 1024
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Join mesh pieces into one mesh, merging vertices that coincide (to ``quantum``).

    Neighbouring forge blocks compute their seam vertices from the same voxels, so the pieces
    of one object weld into its closed surface.
    """
    if not pieces:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint32)
    vertices = np.concatenate([v for v, _ in pieces]).astype(np.float32)
    bases = np.cumsum([0] + [len(v) for v, _ in pieces[:-1]])
    faces = np.concatenate([f.astype(np.int64) + b for (_, f), b in zip(pieces, bases)])
    keys = np.round(vertices.astype(np.float64) / quantum).astype(np.int64)
    _, first, inverse = np.unique(_row_keys(keys), return_index=True, return_inverse=True)
    welded = vertices[first]
    faces = inverse.reshape(-1)[faces]
    # Drop triangles that welding made degenerate.
    ok = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    return np.ascontiguousarray(welded), np.ascontiguousarray(faces[ok], dtype=np.uint32)


def _row_keys(rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """One int64 per row of an ``(n, 3)`` int64 array that sorts as the rows do
    (lexicographically), so that a 1-D sort replaces ``np.unique(..., axis=0)``'s slow
    row sort; the rows themselves (as a structured view) when their span is too wide."""
    if len(rows) == 0:
        return np.zeros(0, np.int64)
    lo = rows.min(axis=0)
    span = rows.max(axis=0) - lo + 1
    if float(span[0]) * float(span[1]) * float(span[2]) >= 2.0**62:
        return np.ascontiguousarray(rows).view([("x", "<i8"), ("y", "<i8"), ("z", "<i8")]).reshape(-1)
    r = rows - lo
    keys: np.ndarray[Any, Any] = (r[:, 0] * span[1] + r[:, 1]) * span[2] + r[:, 2]
    return keys


@dataclass(frozen=True)
class Lod:
    """One level of detail: its mesh and the error bound it was simplified within (nm)."""

    vertices: np.ndarray[Any, Any]
    faces: np.ndarray[Any, Any]
    max_error: float


def levels_of_detail(
    vertices: np.ndarray[Any, Any],
    faces: np.ndarray[Any, Any],
    *,
    voxel_size: Sequence[float],
    num_lods: int,
    box: tuple[float, ...] | None = None,
) -> list[Lod]:
    """Up to ``num_lods`` levels within ``2**k`` times LOD 0's bound of the input mesh; levels stop
    early once simplification no longer removes triangles.

    Each level simplifies the one before (cheaper than starting again from the full mesh) within
    the half of its bound that the level before has not used: as the level before lies within
    ``e/2`` of the input, this one lies within ``e/2 + e/2 = e``.
    """
    from .. import _native

    v = np.ascontiguousarray(vertices, dtype=np.float32)
    f = np.ascontiguousarray(faces, dtype=np.uint32)
    base = LOD0_ERROR_VOXELS * min(float(s) for s in voxel_size)
    out: list[Lod] = []
    for k in range(num_lods):
        error = base * (1 << k)
        step = error if k == 0 else error / 2
        lv, lf = _native.simplify_mesh(v, f, step, 0.0, box)
        if out and len(lf) > MIN_REDUCTION * len(out[-1].faces):
            break
        v, f = np.asarray(lv), np.asarray(lf)
        out.append(Lod(v, f, error))
    return out


def zorder(positions: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Z-curve (Morton) codes of ``(n, 3)`` non-negative cell positions, x in the lowest bit."""
    pos = np.asarray(positions, dtype=np.uint64).reshape(-1, 3)
    code = np.zeros(len(pos), dtype=np.uint64)
    top = int(pos.max()) if len(pos) else 0
    for bit in range(min(21, top.bit_length())):
        for axis in range(3):
            code |= ((pos[:, axis] >> np.uint64(bit)) & np.uint64(1)) << np.uint64(3 * bit + axis)
    return code


def split_on_grid(
    vertices: np.ndarray[Any, Any],
    faces: np.ndarray[Any, Any],
    origin: Sequence[float] | np.ndarray[Any, Any],
    spacing: Sequence[float] | np.ndarray[Any, Any],
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Cut triangles on the planes ``origin + i * spacing`` of each axis, so that none crosses a
    plane (a triangle may touch one).  Orientation is kept; an edge cut by two triangles gets one
    shared vertex, so a closed mesh stays closed."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    for axis in range(3):
        v, f = _split_axis(v, f, axis, float(origin[axis]), float(spacing[axis]))
    return v.astype(np.float32), f.astype(np.uint32)


def _split_axis(
    v: np.ndarray[Any, Any], f: np.ndarray[Any, Any], axis: int, origin: float, spacing: float
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    made: dict[tuple[int, int, int], int] = {}  # (low vertex, high vertex, plane) -> new vertex
    pieces = []
    while len(f):
        x = v[f, axis]  # (m, 3)
        lo, hi = x.min(axis=1), x.max(axis=1)
        plane = np.floor((lo - origin) / spacing).astype(np.int64) + 1
        p = origin + plane * spacing
        cross = p < hi
        pieces.append(f[~cross])
        if not cross.any():
            break
        f, x, plane, p = f[cross], x[cross], plane[cross], p[cross]
        side = np.sign(x - p[:, None]).astype(np.int8)
        zero = side == 0
        # One corner on the plane: rotate it first, cut the opposite edge, two triangles.
        one = zero.any(axis=1)
        r = np.argmax(zero[one], axis=1)
        t1 = np.take_along_axis(f[one], (r[:, None] + np.arange(3)) % 3, axis=1)
        # No corner on it: rotate the lone corner first, cut its two edges, three triangles.
        s = side[~one]
        lone = np.where(s[:, 0] == s[:, 1], 2, np.where(s[:, 0] == s[:, 2], 1, 0))
        t2 = np.take_along_axis(f[~one], (lone[:, None] + np.arange(3)) % 3, axis=1)
        plane2, p2 = plane[~one], p[~one]
        ids, new_vertices = _cut_edges(
            v,
            np.concatenate([t1[:, 1], t2[:, 0], t2[:, 0]]),
            np.concatenate([t1[:, 2], t2[:, 1], t2[:, 2]]),
            np.concatenate([plane[one], plane2, plane2]),
            np.concatenate([p[one], p2, p2]),
            axis, made,
        )
        n1, n2 = len(t1), len(t2)
        m, ab, ac = ids[:n1], ids[n1:n1 + n2], ids[n1 + n2:]
        v = np.concatenate([v, new_vertices])
        f = np.concatenate([
            np.stack([t1[:, 0], t1[:, 1], m], 1), np.stack([t1[:, 0], m, t1[:, 2]], 1),
            np.stack([t2[:, 0], ab, ac], 1), np.stack([ab, t2[:, 1], t2[:, 2]], 1),
            np.stack([ab, t2[:, 2], ac], 1),
        ])
    return v, np.concatenate(pieces) if pieces else f


def _cut_edges(
    v: np.ndarray[Any, Any],
    a: np.ndarray[Any, Any],
    b: np.ndarray[Any, Any],
    plane: np.ndarray[Any, Any],
    at: np.ndarray[Any, Any],
    axis: int,
    made: dict[tuple[int, int, int], int],
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The vertex where each edge ``a-b`` meets its plane (index ``plane``, coordinate ``at``):
    ``(ids, new vertices)``.  An edge cut before (``made``, also across calls) keeps its vertex;
    new ones are numbered from ``len(v)`` in order of first appearance and interpolated from the
    edge's lower-numbered end, so both triangles of an edge get the same vertex."""
    low, high = np.minimum(a, b), np.maximum(a, b)
    _, first, inverse = np.unique(
        _row_keys(np.stack([low, high, plane], 1)), return_index=True, return_inverse=True
    )
    ids = np.empty(len(first), dtype=np.int64)
    fresh: list[int] = []
    next_id = len(v)
    order = np.argsort(first, kind="stable")
    firsts = first[order]
    rows = np.stack([low[firsts], high[firsts], plane[firsts]], 1).tolist()
    for j, i, (lo, hi, k) in zip(order.tolist(), firsts.tolist(), rows):
        key = (lo, hi, k)
        got = made.get(key)
        if got is None:
            got = made[key] = next_id
            next_id += 1
            fresh.append(i)
        ids[j] = got
    new = np.asarray(fresh, dtype=np.int64)
    pa, pb = v[low[new]], v[high[new]]
    t = (at[new] - pa[:, axis]) / (pb[:, axis] - pa[:, axis])
    q = pa + t[:, None] * (pb - pa)
    q[:, axis] = at[new]
    return ids[inverse.reshape(-1)], q


def lod_fragments(
    vertices: np.ndarray[Any, Any],
    faces: np.ndarray[Any, Any],
    *,
    lod: int,
    grid_origin: Sequence[float],
    chunk_shape: Sequence[float],
    bits: int,
) -> list[tuple[tuple[int, int, int], bytes]]:
    """The Draco fragments ``((x, y, z) cell, bytes)`` of one level, in Z-order."""
    import DracoPy

    origin = np.asarray(grid_origin, dtype=np.float64)
    cell = np.asarray(chunk_shape, dtype=np.float64) * (1 << lod)
    split = cell / 2 if lod > 0 else cell
    v, f = split_on_grid(vertices, faces, origin, split)
    if len(f) == 0:
        return []
    v64 = v.astype(np.float64)
    centroid = v64[f].mean(axis=1)
    cells = np.floor((centroid - origin) / cell).astype(np.int64)
    if (cells < 0).any():
        raise InvalidRequest("a mesh lies below its grid origin")
    # Group the triangles by their cell's Z-order code (cells in Z-order, triangles in their
    # order within a cell).
    codes = zorder(cells)
    order = np.argsort(codes, kind="stable")
    codes, f, cells = codes[order], f[order], cells[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    ends = np.r_[starts[1:], len(codes)]
    # Each fragment's vertices (sorted) and its faces' indices into them, from one sort of
    # (fragment, vertex) keys for the whole level.
    fragment = np.repeat(np.arange(len(starts), dtype=np.int64), ends - starts)
    corner_keys = (fragment[:, None] * len(v64) + f.astype(np.int64)).reshape(-1)
    keys, inverse = np.unique(corner_keys, return_inverse=True)
    key_starts = np.searchsorted(keys, np.arange(len(starts) + 1, dtype=np.int64) * len(v64))
    vertex_of = keys % len(v64)
    local = inverse.reshape(-1, 3) - key_starts[fragment][:, None]
    top = (1 << bits) - 1
    out = []
    for i, (a, b) in enumerate(zip(starts.tolist(), ends.tolist())):
        pos = cells[a]
        used = vertex_of[key_starts[i]:key_starts[i + 1]]
        lo = origin + pos * cell
        q = (v64[used] - lo) / cell * top
        if lod > 0:
            # Vertices on the child grid's middle planes go exactly to the client's partition
            # point (2**(bits-1)), whatever the rounding of their float coordinates.
            q[np.abs(q - top / 2) < 1e-3] = partition_point(bits)
        q = np.rint(q).clip(0, top).astype(np.float32)
        data = DracoPy.encode(
            q, local[a:b].astype(np.uint32), quantization_bits=bits,
            quantization_range=top, quantization_origin=[0.0, 0.0, 0.0], compression_level=5,
        )
        out.append(((int(pos[0]), int(pos[1]), int(pos[2])), bytes(data)))
    return out


def partition_point(bits: int) -> int:
    """The quantized coordinate of a fragment's middle plane, as the client computes it."""
    return ((1 << bits) - 1) // 2 + 1


def fragment_problem(data: bytes, *, bits: int, lod: int) -> str | None:
    """What is wrong with one Draco fragment (None if nothing): it must decode to a triangle mesh
    whose integer positions lie in ``[0, 2**bits)`` and, above LOD 0, whose triangles each stay
    on one side of every middle plane of the fragment."""
    import DracoPy

    try:
        mesh = DracoPy.decode(data)
    except Exception as e:  # the decoder raises its own types
        return f"does not decode as Draco: {e}"
    faces = np.asarray(getattr(mesh, "faces", np.zeros((0, 3))), dtype=np.int64).reshape(-1, 3)
    points = np.asarray(mesh.points, dtype=np.float64).reshape(-1, 3)
    if len(faces) == 0:
        return "has no triangles"
    if faces.max() >= len(points):
        return "a triangle indexes a vertex that does not exist"
    top = (1 << bits) - 1
    if (points < 0).any() or (points > top).any() or (points != np.rint(points)).any():
        return f"vertex positions are not integers in [0, {top}]"
    if lod > 0:
        corners = points[faces]
        mid = partition_point(bits)
        crossing = (corners.min(axis=1) < mid) & (corners.max(axis=1) > mid)
        if crossing.any():
            return f"{int(crossing.any(axis=1).sum())} triangles cross the fragment's 2x2x2 grid"
    return None


@dataclass(frozen=True)
class Manifest:
    """A parsed multi-resolution manifest (``<id>.index``)."""

    chunk_shape: tuple[float, float, float]
    grid_origin: tuple[float, float, float]
    lod_scales: tuple[float, ...]
    vertex_offsets: np.ndarray[Any, Any]  # (num_lods, 3)
    positions: tuple[np.ndarray[Any, Any], ...]  # per LOD, (n, 3) uint32
    sizes: tuple[np.ndarray[Any, Any], ...]  # per LOD, (n,) uint32 fragment byte sizes

    @property
    def num_lods(self) -> int:
        return len(self.lod_scales)

    @property
    def data_size(self) -> int:
        """Bytes of fragment data the manifest describes."""
        return int(sum(int(s.sum()) for s in self.sizes))


def encode_manifest(
    *,
    chunk_shape: Sequence[float],
    grid_origin: Sequence[float],
    lod_scales: Sequence[float],
    lods: Sequence[Sequence[tuple[tuple[int, int, int], bytes]]],
) -> tuple[bytes, bytes]:
    """``(fragment data, manifest)`` of one object from its levels' fragments."""
    n = len(lods)
    if len(lod_scales) != n:
        raise InvalidRequest(f"{len(lod_scales)} lod_scales for {n} levels")
    parts = [
        struct.pack("<3f", *chunk_shape),
        struct.pack("<3f", *grid_origin),
        struct.pack("<I", n),
        np.asarray(lod_scales, dtype="<f4").tobytes(),
        np.zeros((n, 3), dtype="<f4").tobytes(),
        np.asarray([len(frags) for frags in lods], dtype="<u4").tobytes(),
    ]
    data = []
    for frags in lods:
        positions = np.asarray([p for p, _ in frags], dtype="<u4").reshape(-1, 3)
        parts.append(np.ascontiguousarray(positions.T).tobytes())
        parts.append(np.asarray([len(d) for _, d in frags], dtype="<u4").tobytes())
        data += [d for _, d in frags]
    return b"".join(data), b"".join(parts)


def parse_manifest(data: bytes) -> Manifest:
    """Read a manifest.

    Raises
    ------
    InvalidRequest
        If it is truncated or has bytes left over.
    """

    def take(offset: int, count: int, dtype: str) -> np.ndarray[Any, Any]:
        size = np.dtype(dtype).itemsize * count
        if offset + size > len(data):
            raise InvalidRequest(f"manifest of {len(data)} bytes is truncated")
        return np.frombuffer(data, dtype=dtype, count=count, offset=offset)

    head = take(0, 7, "<u4")
    chunk_shape = tuple(float(x) for x in head[:3].view("<f4"))
    grid_origin = tuple(float(x) for x in head[3:6].view("<f4"))
    n = int(head[6])
    if n > 64:
        raise InvalidRequest(f"manifest claims {n} levels of detail")
    off = 28
    lod_scales = tuple(float(x) for x in take(off, n, "<f4"))
    off += 4 * n
    vertex_offsets = take(off, 3 * n, "<f4").reshape(n, 3)
    off += 12 * n
    counts = take(off, n, "<u4")
    off += 4 * n
    positions, sizes = [], []
    for count in counts.tolist():
        positions.append(take(off, 3 * count, "<u4").reshape(3, count).T)
        off += 12 * count
        sizes.append(take(off, count, "<u4"))
        off += 4 * count
    if off != len(data):
        raise InvalidRequest(f"manifest has {len(data) - off} bytes after its last level")
    return Manifest(
        chunk_shape, grid_origin, lod_scales, vertex_offsets, tuple(positions), tuple(sizes)  # type: ignore[arg-type]
    )


def encode_object(
    vertices: np.ndarray[Any, Any],
    faces: np.ndarray[Any, Any],
    *,
    voxel_size: Sequence[float],
    grid_origin: Sequence[float],
    chunk_shape: Sequence[float],
    bits: int,
    box: tuple[float, ...] | None = None,
) -> tuple[bytes, bytes]:
    """``(fragment data, manifest)`` of one object's welded LOD-0 mesh."""
    extent = vertices.max(axis=0) - vertices.min(axis=0) if len(vertices) else np.zeros(3)
    cells = max(1.0, float(np.max(np.asarray(extent) / np.asarray(chunk_shape))))
    num_lods = min(MAX_LODS, int(math.ceil(math.log2(cells))) + 1) if cells > 1 else 1
    lods = levels_of_detail(vertices, faces, voxel_size=voxel_size, num_lods=max(1, num_lods), box=box)
    frags = [
        lod_fragments(
            lod.vertices, lod.faces, lod=k, grid_origin=grid_origin, chunk_shape=chunk_shape, bits=bits
        )
        for k, lod in enumerate(lods)
    ]
    # The client draws level k while a screen pixel spans at least lod_scales[k] (times its
    # render-scale target): the voxel size at LOD 0, doubling per level (each level's error bound
    # is a quarter of its scale).
    scale = float(min(voxel_size))
    return encode_manifest(
        chunk_shape=chunk_shape,
        grid_origin=grid_origin,
        lod_scales=[scale * (1 << k) for k in range(len(frags))],
        lods=frags,
    )
