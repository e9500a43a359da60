"""Surface meshes of labelled volumes, from ngshow's own C++ mesher (:mod:`ngshow._native`).

The mesher runs per-label marching cubes with a watertight case table (ambiguous faces always
separate the label's voxels), welds vertices, smooths them within their voxel edges (so the
surface never crosses a voxel centre) and optionally simplifies with quadric-error edge
collapses bounded by a maximum error.  Objects touching the volume border are capped.  All heavy
work releases the GIL.

>>> m = ngshow.mesh(labels, 7, voxel_size=(4, 4, 40))          # one object, nm, (x, y, z)
>>> meshes = ngshow.mesh_all(labels, voxel_size=(4, 4, 40))   # {label: Mesh}

:class:`MeshService` serves the on-demand meshes of the Neuroglancer client (PROTOCOL.md §3.6):
one pass computes the bounding boxes of all labels per data generation, then each object is
meshed from its bounding box alone.
"""

from __future__ import annotations

import logging
import math
import struct
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _native
from .errors import InvalidArray, InvalidRequest, NotFound
from .lru import ByteLRU
from .sources import read_box, xyz

logger = logging.getLogger(__name__)

__all__ = ["Mesh", "MeshService", "mesh", "mesh_all"]

#: Default smoothing iterations (vertices move along their voxel edge only, at most 0.4 voxel).
DEFAULT_SMOOTHING = 8
#: ``simplify=True`` bounds the simplification error by this fraction of the smallest voxel side.
DEFAULT_ERROR_VOXELS = 0.5
#: Collapses that turn a face by more than acos(this) are rejected.
MIN_NORMAL_DOT = 0.0

_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


@dataclass(frozen=True, eq=False)
class Mesh:
    """A triangle mesh: ``vertices`` float32 (N, 3) as x, y, z; ``faces`` uint32 (M, 3).

    Faces are counter-clockwise seen from outside (outward normals); ``normals`` (float32 (N, 3),
    unit length) is present if requested.
    """

    vertices: np.ndarray[Any, Any]
    faces: np.ndarray[Any, Any]
    normals: np.ndarray[Any, Any] | None = field(default=None)

    def __post_init__(self) -> None:
        for name in ("vertices", "faces", "normals"):
            value = getattr(self, name)
            if value is not None:
                value.flags.writeable = False

    def __repr__(self) -> str:
        return f"Mesh({len(self.vertices)} vertices, {len(self.faces)} faces)"

    @property
    def nbytes(self) -> int:
        n = self.vertices.nbytes + self.faces.nbytes
        return n + (self.normals.nbytes if self.normals is not None else 0)

    def area(self) -> float:
        """Surface area (in the vertices' units squared)."""
        a, b, c = self._corners()
        return float(0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1).sum())

    def volume(self) -> float:
        """Signed enclosed volume: positive for a closed, outward-oriented mesh."""
        a, b, c = self._corners()
        return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)

    def is_watertight(self) -> bool:
        """Every edge is shared by exactly two faces, in opposite directions."""
        f = self.faces.astype(np.int64)
        if len(f) == 0:
            return False
        directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
        n = int(self.vertices.shape[0])
        keys = directed[:, 0] * n + directed[:, 1]
        rev = directed[:, 1] * n + directed[:, 0]
        uniq, counts = np.unique(keys, return_counts=True)
        if counts.max() != 1:
            return False
        return bool(np.isin(rev, uniq, assume_unique=False).all())

    def _corners(self) -> tuple[np.ndarray[Any, Any], ...]:
        v = self.vertices.astype(np.float64)
        return v[self.faces[:, 0]], v[self.faces[:, 1]], v[self.faces[:, 2]]

    def to_obj(self) -> str:
        """Wavefront OBJ text (1-based indices)."""
        lines = [f"v {x:.9g} {y:.9g} {z:.9g}" for x, y, z in self.vertices.tolist()]
        if self.normals is not None:
            lines += [f"vn {x:.6g} {y:.6g} {z:.6g}" for x, y, z in self.normals.tolist()]
            lines += [f"f {a}//{a} {b}//{b} {c}//{c}" for a, b, c in (self.faces + 1).tolist()]
        else:
            lines += [f"f {a} {b} {c}" for a, b, c in (self.faces + 1).tolist()]
        return "\n".join(lines) + "\n"

    def to_ply(self) -> bytes:
        """Binary little-endian PLY."""
        n, m = len(self.vertices), len(self.faces)
        props = "property float x\nproperty float y\nproperty float z\n"
        verts = self.vertices.astype("<f4")
        if self.normals is not None:
            props += "property float nx\nproperty float ny\nproperty float nz\n"
            verts = np.hstack([verts, self.normals.astype("<f4")])
        header = (
            "ply\nformat binary_little_endian 1.0\n"
            f"element vertex {n}\n{props}"
            f"element face {m}\nproperty list uchar uint vertex_indices\nend_header\n"
        ).encode("ascii")
        faces = np.empty(m, dtype=[("n", "u1"), ("i", "<u4", (3,))])
        faces["n"] = 3
        faces["i"] = self.faces
        return header + np.ascontiguousarray(verts).tobytes() + faces.tobytes()

    def to_precomputed(self) -> bytes:
        """Neuroglancer's legacy precomputed mesh fragment: uint32 N, N*3 float32, uint32 indices."""
        return _fragment(self.vertices, self.faces)


def _fragment(vertices: np.ndarray[Any, Any], faces: np.ndarray[Any, Any]) -> bytes:
    return (
        struct.pack("<I", len(vertices))
        + np.ascontiguousarray(vertices, dtype="<f4").tobytes()
        + np.ascontiguousarray(faces, dtype="<u4").tobytes()
    )


def _label_dtype(dtype: Any) -> np.dtype[Any]:
    """The unsigned dtype the mesher reads for labels of ``dtype``."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return np.dtype(np.uint8)
    if dtype.kind not in "iu":
        raise InvalidArray(f"cannot mesh labels of dtype {dtype}: expected integers or bool")
    return np.dtype(_UNSIGNED[dtype.itemsize])


def _as_labels(block: Any) -> np.ndarray[Any, Any]:
    """A NumPy view of ``block`` as unsigned native-endian labels (no copy when possible)."""
    arr = np.asarray(block)
    want = _label_dtype(arr.dtype)
    if arr.dtype.byteorder == ">" or (arr.dtype.byteorder == "=" and not np.little_endian):
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.dtype == np.bool_:
        arr = arr.view(np.uint8)
    elif arr.dtype != want:
        arr = arr.view(want)
    if any(s < 0 or s % arr.itemsize for s in arr.strides):
        arr = np.ascontiguousarray(arr)
    return arr


def _label_value(label: int, dtype: np.dtype[Any]) -> int | None:
    """``label`` as the unsigned value stored in arrays of ``dtype`` (None if it cannot occur)."""
    label = int(label)
    bits = 8 * dtype.itemsize
    if dtype.kind == "i" and -(1 << (bits - 1)) <= label < 0:
        label += 1 << bits
    if not 0 < label < (1 << bits):
        return None
    return label


def _max_error(simplify: bool | float, voxel_size: Sequence[float]) -> float:
    if simplify is True:
        return DEFAULT_ERROR_VOXELS * min(voxel_size)
    if simplify is False or simplify is None:
        return 0.0
    value = float(simplify)
    if not (value >= 0 and math.isfinite(value)):
        raise InvalidRequest(f"simplify must be a bool or a max error >= 0, got {simplify!r}")
    return value


def _require_3d(labels: Any) -> tuple[int, int, int]:
    if not all(hasattr(labels, a) for a in ("shape", "dtype", "__getitem__")):
        raise InvalidArray(
            f"expected an array with shape, dtype and slicing, got {type(labels).__name__}"
        )
    shape = tuple(int(n) for n in labels.shape)
    if len(shape) != 3:
        raise InvalidArray(f"expected a 3-D (z, y, x) label array, got shape {shape}")
    return (shape[0], shape[1], shape[2])


def _slab_depth(shape: Sequence[int], itemsize: int, budget: int = 64 << 20) -> int:
    return max(1, budget // max(1, shape[-1] * shape[-2] * itemsize))


def _run(
    block: np.ndarray[Any, Any],
    *,
    voxel_size: tuple[float, float, float],
    origin: tuple[float, float, float],
    target: int | None,
    max_error: float,
    box: tuple[float, ...] | None,
    normals: bool,
    smooth: int,
    threads: int,
) -> list[tuple[int, Mesh]]:
    out = _native.mesh_labels(
        block, voxel_size, origin, target, max_error, MIN_NORMAL_DOT, box, normals, threads, smooth
    )
    return [(int(label), Mesh(v, f, n)) for label, v, f, n in out]


def _volume_box(
    shape: Sequence[int], voxel_size: Sequence[float], offset: Sequence[float]
) -> tuple[float, ...]:
    """The volume's box (x0, y0, z0, x1, y1, z1) in physical units: simplification keeps it."""
    lo = [o * v for o, v in zip(offset, voxel_size)]
    hi = [(o + n) * v for o, n, v in zip(offset, reversed(list(shape)), voxel_size)]
    return (*lo, *hi)


def mesh(
    labels: Any,
    id: int,
    *,
    voxel_size: Sequence[float] = (1.0, 1.0, 1.0),
    offset: Sequence[float] = (0.0, 0.0, 0.0),
    simplify: bool | float = False,
    smooth: int = DEFAULT_SMOOTHING,
    normals: bool = False,
) -> Mesh:
    """The closed surface mesh of label ``id`` in a (z, y, x) label array.

    Parameters
    ----------
    labels
        NumPy (C or Fortran order, any strides: never copied), h5py, zarr or dask array.  Arrays
        that are not NumPy are scanned slab by slab for the object's bounding box, then only that
        box (+1 voxel) is read.
    voxel_size, offset
        In (x, y, z) order: voxel size in nm and the position of voxel (0, 0, 0) in voxels.
        Vertices are in nm, (x, y, z), voxel i spanning [i, i+1) * size.
    simplify
        False, True (max error half the smallest voxel side) or a max error in nm.
    smooth
        Constrained smoothing iterations (0 gives raw marching cubes on voxel faces).

    Raises
    ------
    NotFound
        If ``id`` is 0 (background) or does not occur.
    """
    shape = _require_3d(labels)
    vs = xyz(voxel_size, "voxel_size")
    off = xyz(offset, "offset")
    if any(v <= 0 for v in vs):
        raise InvalidArray(f"voxel_size must be > 0, got {tuple(voxel_size)}")
    dtype = np.dtype(labels.dtype)
    udtype = _label_dtype(dtype)
    target = _label_value(id, dtype)
    if target is None:
        raise NotFound(f"label {id} is background or not representable as {dtype}")
    max_error = _max_error(simplify, vs)
    vbox = _volume_box(shape, vs, off)
    start: tuple[int, ...] = (0, 0, 0)
    if isinstance(labels, np.ndarray):
        block = _as_labels(labels)
    else:
        box = _find_box(labels, shape, target, udtype)
        if box is None:
            raise NotFound(f"label {id} does not occur")
        sl = tuple(slice(max(0, a - 1), min(n, b + 1)) for a, b, n in zip(box[:3], box[3:], shape))
        block, start = _as_labels(read_box(labels, sl)), tuple(s.start for s in sl)
    origin = tuple((o + s) * v for o, s, v in zip(off, reversed(start), vs))
    found = _run(
        block,
        voxel_size=vs,
        origin=origin,  # type: ignore[arg-type]
        target=target,
        max_error=max_error,
        box=vbox,
        normals=normals,
        smooth=smooth,
        threads=1,
    )
    if not found:
        raise NotFound(f"label {id} does not occur")
    return found[0][1]


def _find_box(
    labels: Any, shape: Sequence[int], target: int, udtype: np.dtype[Any]
) -> tuple[int, ...] | None:
    """Bounding box (z0, y0, x0, z1, y1, x1) of one label, reading slab by slab."""
    lo = [math.inf] * 3
    hi = [-math.inf] * 3
    depth = _slab_depth(shape, udtype.itemsize)
    for z0 in range(0, shape[0], depth):
        z1 = min(shape[0], z0 + depth)
        slab = _as_labels(read_box(labels, (slice(z0, z1), slice(0, shape[1]), slice(0, shape[2]))))
        hit = slab == udtype.type(target)
        for axis in range(3):
            other = tuple(a for a in range(3) if a != axis)
            where = np.flatnonzero(hit.any(axis=other))
            if where.size:
                base = z0 if axis == 0 else 0
                lo[axis] = min(lo[axis], base + int(where[0]))
                hi[axis] = max(hi[axis], base + int(where[-1]) + 1)
    if lo[0] == math.inf:
        return None
    return (*(int(v) for v in lo), *(int(v) for v in hi))


def mesh_all(
    labels: Any,
    *,
    voxel_size: Sequence[float] = (1.0, 1.0, 1.0),
    offset: Sequence[float] = (0.0, 0.0, 0.0),
    simplify: bool | float = False,
    smooth: int = DEFAULT_SMOOTHING,
    normals: bool = False,
    threads: int | None = None,
) -> dict[int, Mesh]:
    """Meshes of every nonzero label, in one marching pass: ``{label: Mesh}`` sorted by label.

    Marching runs in z-slabs on ``threads`` threads (default: all cores), the slabs' meshes are
    welded into exactly the single-threaded result; smoothing and simplification run per label on
    the same threads.  Arrays that are not NumPy are read whole.
    """
    shape = _require_3d(labels)
    vs = xyz(voxel_size, "voxel_size")
    off = xyz(offset, "offset")
    if any(v <= 0 for v in vs):
        raise InvalidArray(f"voxel_size must be > 0, got {tuple(voxel_size)}")
    _label_dtype(labels.dtype)
    block = _as_labels(labels if isinstance(labels, np.ndarray) else read_box(labels, (slice(None),) * 3))
    found = _run(
        block,
        voxel_size=vs,
        origin=tuple(o * v for o, v in zip(off, vs)),  # type: ignore[arg-type]
        target=None,
        max_error=_max_error(simplify, vs),
        box=_volume_box(shape, vs, off),
        normals=normals,
        smooth=smooth,
        threads=threads or _cores(),
    )
    return dict(found)


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class _Boxes:
    """Bounding boxes of all labels of one (source, generation); computed once, lazily."""

    def __init__(self, generation: int) -> None:
        self.generation = generation
        self.lock = threading.Lock()
        self.labels: np.ndarray[Any, Any] | None = None
        self.boxes: np.ndarray[Any, Any] | None = None
        self.token = object()

    def find(self, label: int) -> tuple[int, ...] | None:
        assert self.labels is not None and self.boxes is not None
        i = int(np.searchsorted(self.labels, np.uint64(label)))
        if i == len(self.labels) or int(self.labels[i]) != label:
            return None
        return tuple(int(v) for v in self.boxes[i])


class MeshService:
    """On-demand meshes for the Neuroglancer client (PROTOCOL.md §3.6), cached and thread-safe.

    Per (source, generation), one C++ pass over the volume (slab by slab) finds the bounding box of
    every label; each object is then meshed from its box (+1 voxel) alone.  Fragments are cached in
    a byte-bounded LRU; a new generation drops the source's older entries.
    """

    def __init__(
        self, max_bytes: int = 256 << 20, *, smooth: int = DEFAULT_SMOOTHING, slab_bytes: int = 64 << 20
    ) -> None:
        self.smooth = int(smooth)
        self.slab_bytes = int(slab_bytes)
        self._lock = threading.Lock()
        self._boxes: weakref.WeakKeyDictionary[Any, _Boxes] = weakref.WeakKeyDictionary()
        # Keys carry their (source, generation)'s token: older generations are never asked for
        # again and simply age out.
        self._cache: ByteLRU[bytes] = ByteLRU(max_bytes)

    @property
    def cached_bytes(self) -> int:
        return self._cache.bytes

    def _state(self, source: Any, generation: int) -> _Boxes:
        with self._lock:
            state = self._boxes.get(source)
            if state is None or state.generation != generation:
                state = _Boxes(generation)
                self._boxes[source] = state
        with state.lock:
            if state.labels is None:
                state.labels, state.boxes = self._scan(source)
        return state

    def prefetch(self, source: Any, generation: int) -> None:
        """Find every label's bounding box now, on a thread of its own, so the first mesh a user asks
        for (and a big object's manifest of blocks) does not wait for the scan."""

        def scan() -> None:
            try:
                self._state(source, generation)
            except Exception:  # the array may be closed or replaced meanwhile; a request rescans
                logger.debug("mesh prefetch failed", exc_info=True)

        threading.Thread(target=scan, name="ngshow-mesh-prefetch", daemon=True).start()

    def _scan(self, source: Any) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        shape = source.shape[-3:]
        acc = _native.BoxAccumulator()
        depth = _slab_depth(shape, source.dtype.itemsize, self.slab_bytes)
        for z0 in range(0, shape[0], depth):
            z1 = min(shape[0], z0 + depth)
            acc.add(_read_block(source, (slice(z0, z1), slice(0, shape[1]), slice(0, shape[2]))), z0)
        labels, boxes = acc.result()
        return labels.reshape(-1), boxes

    def _target(self, source: Any, object_id: int) -> int:
        if source.kind != "segmentation" or len(source.shape) not in (3, 4):
            raise InvalidRequest("only segmentation volumes have meshes")
        if source.dtype.kind not in "iu":
            raise InvalidRequest(f"cannot mesh a segmentation of dtype {source.dtype}")
        target = _label_value(object_id, source.dtype) if int(object_id) >= 0 else None
        if target is None:
            raise NotFound(f"no object {object_id}")
        return target

    def object_box(self, source: Any, generation: int, object_id: int) -> tuple[int, ...]:
        """``(z0, y0, x0, z1, y1, x1)``: the voxels ``object_id`` occupies (end exclusive).

        Raises :class:`NotFound` for ids that do not occur at this generation.
        """
        target = self._target(source, object_id)
        box = self._state(source, generation).find(target)
        if box is None:
            raise NotFound(f"no object {object_id}")
        return box

    def fragment(
        self, source: Any, generation: int, object_id: int, *, simplify: bool | float = True, unit: float = 1e-9
    ) -> bytes:
        """The §3.6 body of ``object_id``: uint32 N, N*3 float32 (x y z, relative to voxel index 0,
        voxel offset excluded; metres, or ``unit`` per nm), then uint32 triangle indices.

        Raises
        ------
        NotFound
            For id 0 and ids that do not occur at this generation.
        InvalidRequest
            For a source that cannot be meshed (not a rank-3 integer segmentation).
        """
        target = self._target(source, object_id)
        state = self._state(source, generation)
        vs = tuple(float(v) for v in source.voxel_size)
        max_error = _max_error(simplify, vs)
        key = (state.token, target, max_error, self.smooth, unit)
        return self._cache.get_or_compute(key, lambda: self._make(source, state, target, vs, max_error, unit))

    def block_fragment(
        self,
        source: Any,
        generation: int,
        object_id: int,
        lo: Sequence[int],
        hi: Sequence[int],
        *,
        simplify: bool | float = True,
        unit: float = 1e-9,
    ) -> bytes:
        """The part of ``object_id``'s surface that block ``[lo, hi)`` (z, y, x voxels) owns.

        The block owns the marching cubes whose centres lie in ``[lo + 1/2, hi + 1/2)`` (unbounded at
        the volume's edges), so the fragments of neighbouring blocks meet without caps or overlaps;
        an object that misses the block gives an empty fragment.
        """
        target = self._target(source, object_id)
        state = self._state(source, generation)
        vs = tuple(float(v) for v in source.voxel_size)
        max_error = _max_error(simplify, vs)
        key = (state.token, target, max_error, self.smooth, unit, tuple(lo), tuple(hi))

        def make() -> bytes:
            shape = source.shape[-3:]
            box = state.find(target)
            if box is None:
                raise NotFound(f"no object {object_id}")
            # Only the object's own box within the block, with a margin wide enough that smoothing
            # near the seams sees what the neighbouring block sees (one voxel per iteration, plus two).
            margin = self.smooth + 2
            a = [max(0, max(l, b0) - margin) for l, b0 in zip(lo, box[:3])]
            b = [min(n, min(h, b1) + margin) for h, b1, n in zip(hi, box[3:], shape)]
            if any(x >= y for x, y in zip(a, b)):
                return _fragment(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint32))
            block = _read_block(source, tuple(slice(x, y) for x, y in zip(a, b)))
            origin = tuple(x * v for x, v in zip(reversed(a), vs))
            found = _run(
                block, voxel_size=vs, origin=origin, target=target, max_error=max_error,  # type: ignore[arg-type]
                box=_volume_box(shape, vs, (0.0, 0.0, 0.0)), normals=False, smooth=self.smooth, threads=1,
            )
            if not found:
                return _fragment(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint32))
            m = found[0][1]
            res = np.asarray(vs, dtype=np.float64)
            own_lo = np.array([l + 0.5 if l > 0 else -np.inf for l in reversed(list(lo))]) * res
            own_hi = np.array([h + 0.5 if h < n else np.inf for h, n in zip(reversed(list(hi)), reversed(list(shape)))]) * res
            v, f = crop_mesh(np.asarray(m.vertices, dtype=np.float32), np.asarray(m.faces), own_lo, own_hi)
            return _fragment(v.astype(np.float64) * unit, f)

        return self._cache.get_or_compute(key, make)

    def _make(
        self,
        source: Any,
        state: _Boxes,
        target: int,
        vs: tuple[float, ...],
        max_error: float,
        unit: float = 1e-9,
    ) -> bytes:
        box = state.find(target)
        if box is None:
            raise NotFound(f"no object {target}")
        shape = source.shape[-3:]
        sl = tuple(slice(max(0, a - 1), min(n, b + 1)) for a, b, n in zip(box[:3], box[3:], shape))
        block = _read_block(source, sl)
        origin = tuple(s.start * v for s, v in zip(reversed(sl), vs))
        found = _run(
            block,
            voxel_size=vs,  # type: ignore[arg-type]
            origin=origin,
            target=target,
            max_error=max_error,
            box=_volume_box(shape, vs, (0.0, 0.0, 0.0)),
            normals=False,
            smooth=self.smooth,
            threads=1,
        )
        if not found:
            raise NotFound(f"no object {target}")
        m = found[0][1]
        return _fragment(m.vertices.astype(np.float64) * unit, m.faces)


def crop_mesh(
    vertices: np.ndarray[Any, Any],
    faces: np.ndarray[Any, Any],
    lo: np.ndarray[Any, Any],
    hi: np.ndarray[Any, Any],
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Keep the triangles whose centroid lies in ``[lo, hi)``; drop free vertices.

    The centroid lies between its corners' extremes, so a triangle with every corner inside is
    kept, and one with every corner past the same face of the box is dropped, without computing
    it; only the others (straddling a face) need it.
    """
    code = np.zeros(len(vertices), dtype=np.uint8)  # one bit per box face a vertex lies past
    for axis in range(3):
        code |= (vertices[:, axis] < lo[axis]).view(np.uint8) << np.uint8(axis)
        code |= (vertices[:, axis] >= hi[axis]).view(np.uint8) << np.uint8(axis + 3)
    a, b, c = code[faces[:, 0]], code[faces[:, 1]], code[faces[:, 2]]
    keep = (a | b | c) == 0
    edge = np.flatnonzero(~keep & ((a & b & c) == 0))
    if len(edge):
        centroid = vertices[faces[edge]].astype(np.float64).mean(axis=1)
        keep[edge] = np.all((centroid >= lo) & (centroid < hi), axis=1)
    if not keep.all():
        faces = faces[keep]
    used = np.zeros(len(vertices), dtype=bool)
    used[faces] = True
    remap = np.cumsum(used, dtype=np.uint32) - np.uint32(1)
    return vertices[used], remap[faces]


def _read_block(source: Any, box: tuple[slice, ...]) -> np.ndarray[Any, Any]:
    """Read a (z, y, x) box from an ArraySource of rank 3 or 4 (leading channel of 1)."""
    if len(source.shape) == 4:
        return _as_labels(source.read((slice(0, 1), *box))[0])
    return _as_labels(source.read(box))
