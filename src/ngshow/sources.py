"""Array sources: adapt NumPy, memmap, h5py, zarr and dask arrays, and cut chunks from them on request.

Arrays are indexed in NumPy order; a :class:`~ngshow.coords.CoordinateSpace` names their axes.  Only the region a chunk needs is
read (``data[box]``), so h5py, zarr and dask arrays are never loaded whole.  Downsampled chunks are
computed on the fly in C++ (:mod:`ngshow._native`): the mean for images, the most frequent label for
segmentations.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from . import _native
from .coords import Axis, CoordinateSpace, xyz
from .errors import DtypeConversionWarning, InvalidArray, InvalidRequest, ValuesClippedWarning, warn_user

__all__ = ["ArraySource", "Kind", "WIRE_DTYPES", "downsample", "read_box", "require_array_like", "wire_dtype", "xyz"]

Kind = Literal["image", "segmentation"]

logger = logging.getLogger(__name__)

#: Data types the Neuroglancer client reads (PROTOCOL.md §3.2).
WIRE_DTYPES = frozenset(
    np.dtype(t) for t in ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "float32")
)

#: Largest chunk (in voxels) a request may ask for; the client asks for at most 2**18 by default.
MAX_CHUNK_VOXELS = 2**24


def wire_dtype(dtype: np.dtype[Any], kind: Kind) -> np.dtype[Any]:
    """The dtype ngshow serves for an array of ``dtype`` shown as ``kind``.

    Raises
    ------
    InvalidArray
        If the dtype cannot be shown at all (complex, strings, objects).
    """
    dtype = np.dtype(dtype)
    if dtype.byteorder not in "=|<" and dtype.newbyteorder("=") in WIRE_DTYPES:
        return dtype.newbyteorder("=")
    if dtype in WIRE_DTYPES:
        return dtype
    if dtype == np.bool_:
        return np.dtype(np.uint8)
    if dtype.kind == "f" and dtype.itemsize in (2, 8):
        return np.dtype(np.float32)
    if dtype.kind == "i" and dtype.itemsize == 8:
        # Labels keep their value (negative ones wrap); image intensities become float32.
        return np.dtype(np.uint64) if kind == "segmentation" else np.dtype(np.float32)
    raise InvalidArray(
        f"cannot show arrays of dtype {dtype}: Neuroglancer reads "
        f"{', '.join(sorted(str(t) for t in WIRE_DTYPES))} (ngshow also converts bool, float16, "
        "float64 and int64)"
    )


def require_array_like(data: Any) -> None:
    """Raise :class:`InvalidArray` unless ``data`` has ``shape``, ``dtype`` and slicing."""
    if not all(hasattr(data, a) for a in ("shape", "dtype", "__getitem__")):
        raise InvalidArray(
            f"expected an array with shape, dtype and slicing (NumPy, h5py, zarr, dask), "
            f"got {type(data).__name__}"
        )


def read_box(data: Any, box: tuple[slice, ...]) -> np.ndarray[Any, Any]:
    """Read ``data[box]`` as a NumPy array (dask arrays are computed for that box only)."""
    part = data[box]
    compute = getattr(part, "compute", None)
    if callable(compute) and not isinstance(part, np.ndarray):
        part = compute()
    return np.asarray(part)


class ArraySource:
    """One array served as a Neuroglancer volume.

    Parameters
    ----------
    data
        Anything with ``shape``, ``dtype`` and NumPy-style slicing: NumPy arrays and memmaps, h5py
        datasets, zarr arrays, dask arrays; or a list of them, finest first, as a pyramid.  Any rank
        from 2 to 32.
    kind
        ``"image"`` or ``"segmentation"``.
    space
        The array's :class:`~ngshow.coords.CoordinateSpace` (default: named by rank, 1 nm voxels).
    voxel_size, offset
        Shorthands for a space: voxel size in nm and offset in voxels, both ``(x, y, z)``.

    A space with spatial axes ``y`` and ``x`` but no ``z`` is served with a ``z`` axis one voxel
    thick, so 2-D images overlay 3-D volumes.
    """

    def __init__(
        self,
        data: Any,
        *,
        kind: Kind,
        space: CoordinateSpace | None = None,
        voxel_size: Sequence[float] | None = None,
        offset: Sequence[float] | None = None,
        max_downsampling: int = 64,
    ) -> None:
        levels = list(data) if isinstance(data, (list, tuple)) else [data]
        if not levels:
            raise InvalidArray("an empty list of arrays: give an array, or a list of pyramid levels")
        for level in levels:
            require_array_like(level)
        if kind not in ("image", "segmentation"):
            raise InvalidArray(f"kind must be 'image' or 'segmentation', got {kind!r}")
        array_shape = tuple(int(n) for n in levels[0].shape)
        if any(n == 0 for n in array_shape):
            raise InvalidArray(f"cannot show an array with an empty axis: shape {array_shape}")
        if space is None:
            space = CoordinateSpace.make(array_shape, voxel_size=voxel_size, offset=offset)
        elif voxel_size is not None or offset is not None:
            raise InvalidArray("give a space or voxel_size/offset, not both")
        if space.rank != len(array_shape):
            raise InvalidArray(
                f"the space has {space.rank} axes ({', '.join(space.names)}) but the array has shape {array_shape}"
            )
        #: Index (served order) of the axis ngshow adds to 2-D data, or None.
        self._inserted: int | None = None
        names = [n.lower() for n in space.names]
        spatial = space.spatial_indices
        if len(spatial) == 2 and "z" not in names and {names[i] for i in spatial} == {"y", "x"}:
            first = space.axes[spatial[0]]
            self._inserted = spatial[0]
            space = space.with_axis_inserted(spatial[0], Axis("z", "space", first.scale, first.unit))
        shape = array_shape if self._inserted is None else (
            array_shape[: self._inserted] + (1,) + array_shape[self._inserted :]
        )
        channels = space.channel_indices
        if kind == "segmentation":
            if len(channels) > 1:
                raise InvalidArray(f"a segmentation can have at most one channel axis, got axes {list(space.names)}")
            if channels and shape[channels[0]] != 1:
                raise InvalidArray(
                    f"a segmentation cannot have channels: axis {space.names[channels[0]]!r} has "
                    f"{shape[channels[0]]} entries (shape {shape}); pass axes= if it is not a channel axis"
                )
        self.kind: Kind = kind
        self.data = data
        self.space = space
        self.shape: tuple[int, ...] = shape
        #: (array, factors) per pyramid level, finest first; factors in NumPy order of the served rank.
        self.levels = [(levels[0], (1,) * len(shape))] + [
            (level, self._level_factors(level, i)) for i, level in enumerate(levels[1:], 1)
        ]
        self.source_dtype = np.dtype(levels[0].dtype)
        if any(np.dtype(level.dtype) != self.source_dtype for level in levels):
            raise InvalidArray("all pyramid levels must have the same dtype")
        self._warned_lossy = False
        self.dtype = wire_dtype(self.source_dtype, kind)
        if self.dtype != self.source_dtype and self.source_dtype.newbyteorder("=") != self.dtype:
            warn_user(
                f"Neuroglancer cannot read {self.source_dtype}; ngshow serves this "
                f"{kind} as {self.dtype}, converting each chunk",
                DtypeConversionWarning,
            )
        if max_downsampling < 1:
            raise InvalidArray("max_downsampling must be >= 1")
        self.max_downsampling = int(max_downsampling)

    @property
    def rank(self) -> int:
        """Number of axes served."""
        return len(self.shape)

    @property
    def channels(self) -> int:
        """Number of channels: the length of the one channel axis (1 without one)."""
        axes = self.space.channel_indices
        return self.shape[axes[0]] if len(axes) == 1 else 1

    @property
    def voxel_size(self) -> tuple[float, float, float]:
        """Scales of the last three spatial axes in reverse array order (``(x, y, z)``), in nm (1e-9
        of the axis's base unit): the frame meshes and precomputed scales are made in."""
        # 12 significant digits: 0.5 um is 500 nm, not 500.00000000000006 (float noise of unit factors).
        x, y, z = (float(f"{self.space.axes[i].base_scale * 1e9:.12g}") for i in self._xyz_axes())
        return (x, y, z)

    @property
    def offset(self) -> tuple[float, float, float]:
        """Position of index 0 of the last three spatial axes in voxels, ``(x, y, z)``."""
        x, y, z = (self.space.axes[i].voxel_offset for i in self._xyz_axes())
        return (x, y, z)

    def _xyz_axes(self) -> list[int]:
        spatial = list(reversed(self.space.spatial_indices))[:3]
        if len(spatial) != 3:
            raise InvalidArray(
                f"this needs three spatial axes, and the array has {len(spatial)} ({', '.join(self.space.names)})"
            )
        return spatial

    def dimension_names(self) -> list[str]:
        """Neuroglancer dimension names, fastest-varying first (the reverse of NumPy order)."""
        return [self.space.neuroglancer_name(i) for i in reversed(range(self.rank))]

    def info(self) -> dict[str, Any]:
        """The volume's info JSON (PROTOCOL.md §3.2), without ``encoding`` and ``generation``.

        Dimensions are listed in reverse NumPy order, so a C-ordered NumPy chunk is already
        "dimension 0 fastest" on the wire and needs no transpose.
        """
        return {
            "coordinateSpace": self.space.info_coordinate_space(),
            "shape": list(reversed(self.shape)),
            "voxelOffset": self.space.info_voxel_offset(),
            "dataType": self.dtype.name,
            "volumeType": self.kind,
            "chunkLayout": "isotropic",
            "downsamplingLayout": "3d",
            "maxDownsampling": self.max_downsampling,
            "maxDownsampledSize": 128,
            "maxDownsamplingScales": None,
        }

    def read(self, box: tuple[slice, ...], level: int = 0) -> np.ndarray[Any, Any]:
        """Read a region (NumPy order, the served rank) of a pyramid level, in the wire dtype."""
        inner = box if self._inserted is None else box[: self._inserted] + box[self._inserted + 1 :]
        part = read_box(self.levels[level][0], inner)
        if self._inserted is not None:
            part = np.expand_dims(part, self._inserted)
        if part.dtype != self.dtype:
            with np.errstate(all="ignore"):  # overflow is detected below, and warned about once
                converted = part.astype(self.dtype)
            if not self._warned_lossy and _lossy(part, converted):
                self._warned_lossy = True
                warn_user(
                    f"values of this {self.source_dtype} array do not fit {self.dtype}: "
                    "some chunks show clipped or wrapped values",
                    ValuesClippedWarning,
                )
            part = converted
        return part

    def cut_chunk(
        self, factors: Sequence[int], start: Sequence[int], end: Sequence[int]
    ) -> np.ndarray[Any, Any]:
        """Cut one chunk, C-contiguous in NumPy order.

        ``factors``, ``start`` and ``end`` are in NumPy order; ``start``/``end`` index the grid
        downsampled by ``factors`` (end exclusive).  Spatial axes are averaged (images) or take the
        most frequent label (segmentations); a non-spatial axis the client downsamples takes every
        factor-th entry, never a mix of time points.  Raises :class:`InvalidRequest` for a box or
        factor vector outside what the volume allows.
        """
        rank = self.rank
        if not (len(factors) == len(start) == len(end) == rank):
            raise InvalidRequest(f"expected {rank} values for factors, start and end")
        if any(f < 1 for f in factors):
            raise InvalidRequest(f"downsampling factors must be >= 1, got {list(factors)}")
        for i in self.space.channel_indices:
            if factors[i] != 1:
                raise InvalidRequest(f"the channel axis {self.space.names[i]!r} cannot be downsampled")
        if math.prod(factors) > self.max_downsampling:
            raise InvalidRequest(
                f"downsampling factors {list(factors)} exceed maxDownsampling {self.max_downsampling}"
            )
        scaled = [-(-n // f) for n, f in zip(self.shape, factors)]
        for axis, (s, e, n) in enumerate(zip(start, end, scaled)):
            if not 0 <= s < e <= n:
                raise InvalidRequest(
                    f"chunk box [{list(start)}, {list(end)}) is outside the volume "
                    f"(shape {scaled} at factors {list(factors)}) on axis {axis}"
                )
        if math.prod(e - s for s, e in zip(start, end)) > MAX_CHUNK_VOXELS:
            raise InvalidRequest(f"chunk larger than {MAX_CHUNK_VOXELS} voxels")
        spatial = set(self.space.spatial_indices)
        # Non-spatial axes are sampled, never reduced: read every factor-th entry.
        steps = [1 if i in spatial else int(f) for i, f in enumerate(factors)]
        reduce = [int(f) if i in spatial else 1 for i, f in enumerate(factors)]
        # The coarsest pyramid level whose factors divide the request; the rest is computed.
        level, level_factors = max(
            ((i, f) for i, (_, f) in enumerate(self.levels) if all(r % g == 0 for r, g in zip(reduce, f))),
            key=lambda item: math.prod(item[1]),
        )
        rest = [f // g for f, g in zip(reduce, level_factors)]
        level_shape = self._served_shape(self.levels[level][0])
        box = tuple(
            slice(s * r * k, min(e * r * k, n), k if k > 1 else None)
            for s, e, r, k, n in zip(start, end, rest, steps, level_shape)
        )
        region = self.read(box, level)
        wanted = [
            e - s if k > 1 else min(e * r, -(-n // g)) - s * r
            for s, e, r, g, k, n in zip(start, end, rest, level_factors, steps, self.shape)
        ]
        if list(region.shape) != wanted:
            # A level a voxel short of ceil(shape / factors) at the far edge: repeat its last voxel.
            region = np.pad(region, [(0, w - h) for w, h in zip(wanted, region.shape)], mode="edge")
        if all(r == 1 for r in rest):
            return np.ascontiguousarray(region)
        return downsample(region, rest, mode=self.kind == "segmentation")

    def _served_shape(self, array: Any) -> tuple[int, ...]:
        shape = tuple(int(n) for n in array.shape)
        return shape if self._inserted is None else shape[: self._inserted] + (1,) + shape[self._inserted :]

    def _level_factors(self, level: Any, index: int) -> tuple[int, ...]:
        """Integer factors of a pyramid level: its shape must be floor or ceil of ``shape / factors``,
        and only spatial axes may shrink."""
        shape = self.shape
        level_shape = self._served_shape(level)
        if len(level_shape) != len(shape):
            raise InvalidArray(f"pyramid level {index} has shape {level_shape}, unlike level 0's rank")
        factors = []
        for n, m in zip(shape, level_shape):
            f = max(1, round(n / m))
            if m < 1 or m not in (n // f, -(-n // f)):
                raise InvalidArray(
                    f"pyramid level {index} has shape {level_shape}: each axis must be level 0's {shape} "
                    "divided by an integer factor (rounded down or up)"
                )
            factors.append(f)
        spatial = set(self.space.spatial_indices)
        for i, f in enumerate(factors):
            if f != 1 and i not in spatial:
                raise InvalidArray(
                    f"pyramid level {index} shrinks axis {self.space.names[i]!r}: levels must keep every "
                    "channel and time point"
                )
        return tuple(factors)


def downsample(
    region: np.ndarray[Any, Any], factors: Sequence[int], *, mode: bool
) -> np.ndarray[Any, Any]:
    """Downsample an array by integer ``factors`` (mean, or most frequent value if ``mode``).

    Edge blocks that the factors do not divide evenly are reduced over the voxels they have.  Any
    rank; at most three axes may have a factor above 1 at once beyond rank 4.
    """
    factors = tuple(int(f) for f in factors)
    rank = region.ndim
    if rank > 4:
        moving = [i for i, f in enumerate(factors) if f > 1]
        if len(moving) > 3:
            raise InvalidRequest(f"at most three axes can be downsampled at once, got factors {list(factors)}")
        keep = [i for i in range(rank) if i not in moving]
        order = keep + moving
        kept_shape = [region.shape[i] for i in keep]
        moved = np.ascontiguousarray(region.transpose(order)).reshape(
            (math.prod(kept_shape),) + (1,) * (3 - len(moving)) + tuple(region.shape[i] for i in moving)
        )
        reduced = downsample(moved, (1,) * (4 - len(moving)) + tuple(factors[i] for i in moving), mode=mode)
        out_nd = reduced.reshape(kept_shape + [-(-region.shape[i] // factors[i]) for i in moving])
        return np.ascontiguousarray(out_nd.transpose(np.argsort(order)))
    shape4 = (1,) * (4 - rank) + region.shape
    factors4 = (1,) * (4 - rank) + factors
    out = np.empty(tuple(-(-n // f) for n, f in zip(shape4, factors4)), dtype=region.dtype)
    kernel = _native.downsample_mode if mode else _native.downsample_mean
    kernel(region.reshape(shape4), factors4, out)
    return out.reshape(out.shape[4 - rank :])


def _lossy(before: np.ndarray[Any, Any], after: np.ndarray[Any, Any]) -> bool:
    """Whether a dtype conversion clipped, overflowed or wrapped any value (not mere rounding)."""
    if before.dtype.kind == "f":
        return bool(np.isinf(after).sum() > np.isinf(before).sum())
    if before.dtype.kind in "iu" and after.dtype.kind in "iu":
        return bool(before.size) and bool(before.min() < 0 <= after.min() or before.max() > np.iinfo(after.dtype).max)
    return False
