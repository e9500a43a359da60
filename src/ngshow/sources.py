"""Array sources: adapt NumPy, memmap, h5py, zarr and dask arrays, and cut chunks from them on request.

Arrays are indexed in NumPy order, ``(z, y, x)`` or ``(c, z, y, x)``.  Only the region a chunk needs is
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
from .errors import DtypeConversionWarning, InvalidArray, InvalidRequest, ValuesClippedWarning, warn_user

__all__ = ["ArraySource", "Kind", "WIRE_DTYPES", "downsample", "read_box", "require_array_like", "wire_dtype"]

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
        datasets, zarr arrays, dask arrays.  2-D ``(y, x)``, 3-D ``(z, y, x)`` or 4-D ``(c, z, y, x)``.
    kind
        ``"image"`` or ``"segmentation"``.
    voxel_size
        Physical size of one voxel in nanometres, in ``(x, y, z)`` order.
    offset
        Position of voxel ``(0, 0, 0)`` in voxels, in ``(x, y, z)`` order.
    """

    def __init__(
        self,
        data: Any,
        *,
        kind: Kind,
        voxel_size: Sequence[float] = (1.0, 1.0, 1.0),
        offset: Sequence[float] = (0.0, 0.0, 0.0),
        max_downsampling: int = 64,
    ) -> None:
        levels = list(data) if isinstance(data, (list, tuple)) else [data]
        if not levels:
            raise InvalidArray("an empty list of arrays: give an array, or a list of pyramid levels")
        for level in levels:
            require_array_like(level)
        shape = tuple(int(n) for n in levels[0].shape)
        if len(shape) == 2:
            self._expand = True
            shape = (1, *shape)
        else:
            self._expand = False
        if len(shape) not in (3, 4):
            raise InvalidArray(
                f"expected a 2-D (y, x), 3-D (z, y, x) or 4-D (c, z, y, x) array, got shape {shape}"
            )
        if any(n == 0 for n in shape):
            raise InvalidArray(f"cannot show an array with an empty axis: shape {shape}")
        if kind == "segmentation" and len(shape) == 4:
            if shape[0] != 1:
                raise InvalidArray(f"a segmentation must be 3-D (z, y, x), got shape {shape}")
        if kind not in ("image", "segmentation"):
            raise InvalidArray(f"kind must be 'image' or 'segmentation', got {kind!r}")
        self.kind: Kind = kind
        self.data = data
        self.shape: tuple[int, ...] = shape
        #: (array, factors) per pyramid level, finest first; factors in NumPy order of the served rank.
        self.levels = [(levels[0], (1,) * len(shape))] + [
            (level, _level_factors(shape, level, self._expand, i)) for i, level in enumerate(levels[1:], 1)
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
        self.voxel_size = xyz(voxel_size, "voxel_size")
        if any(not (v > 0 and math.isfinite(v)) for v in self.voxel_size):
            raise InvalidArray(f"voxel_size must be finite and > 0, got {tuple(voxel_size)}")
        self.offset = xyz(offset, "offset")
        if max_downsampling < 1:
            raise InvalidArray("max_downsampling must be >= 1")
        self.max_downsampling = int(max_downsampling)

    @property
    def rank(self) -> int:
        """Number of axes served: 3, or 4 with channels first."""
        return len(self.shape)

    @property
    def channels(self) -> int:
        """Number of channels (1 for 3-D arrays)."""
        return self.shape[0] if self.rank == 4 else 1

    def dimension_names(self) -> list[str]:
        """Neuroglancer dimension names, fastest-varying first (the reverse of NumPy order)."""
        return ["x", "y", "z"] + (["c^"] if self.rank == 4 else [])

    def info(self) -> dict[str, Any]:
        """The volume's info JSON (PROTOCOL.md §3.2), without ``encoding`` and ``generation``.

        Dimensions are listed in reverse NumPy order, so a C-ordered NumPy chunk is already
        "dimension 0 fastest" on the wire and needs no transpose.
        """
        coordinate_space: dict[str, Any] = {
            name: [size * 1e-9, "m"] for name, size in zip("xyz", self.voxel_size)
        }
        voxel_offset = list(self.offset)
        if self.rank == 4:
            coordinate_space["c^"] = [1, ""]
            voxel_offset.append(0.0)
        return {
            "coordinateSpace": coordinate_space,
            "shape": list(reversed(self.shape)),
            "voxelOffset": voxel_offset,
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
        inner = box[1:] if self._expand else box
        part = read_box(self.levels[level][0], inner)
        if self._expand:
            part = part[np.newaxis]
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
        downsampled by ``factors`` (end exclusive).  Raises :class:`InvalidRequest` for a box or
        factor vector outside what the volume allows.
        """
        rank = self.rank
        if not (len(factors) == len(start) == len(end) == rank):
            raise InvalidRequest(f"expected {rank} values for factors, start and end")
        if any(f < 1 for f in factors):
            raise InvalidRequest(f"downsampling factors must be >= 1, got {list(factors)}")
        if rank == 4 and factors[0] != 1:
            raise InvalidRequest("the channel axis cannot be downsampled")
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
        # The coarsest pyramid level whose factors divide the request; the rest is computed.
        level, level_factors = max(
            ((i, f) for i, (_, f) in enumerate(self.levels) if all(r % g == 0 for r, g in zip(factors, f))),
            key=lambda item: math.prod(item[1]),
        )
        rest = [f // g for f, g in zip(factors, level_factors)]
        level_shape = _served_shape(self.levels[level][0], self._expand)
        box = tuple(slice(s * r, min(e * r, n)) for s, e, r, n in zip(start, end, rest, level_shape))
        region = self.read(box, level)
        wanted = [min(e * r, -(-n // g)) - s * r for s, e, r, g, n in zip(start, end, rest, level_factors, self.shape)]
        if list(region.shape) != wanted:
            # A level a voxel short of ceil(shape / factors) at the far edge: repeat its last voxel.
            region = np.pad(region, [(0, w - h) for w, h in zip(wanted, region.shape)], mode="edge")
        if all(r == 1 for r in rest):
            return np.ascontiguousarray(region)
        return downsample(region, rest, mode=self.kind == "segmentation")


def downsample(
    region: np.ndarray[Any, Any], factors: Sequence[int], *, mode: bool
) -> np.ndarray[Any, Any]:
    """Downsample a 3-D or 4-D array by integer ``factors`` (mean, or most frequent value if ``mode``).

    Edge blocks that the factors do not divide evenly are reduced over the voxels they have.
    """
    rank = region.ndim
    shape4 = (1,) * (4 - rank) + region.shape
    factors4 = (1,) * (4 - rank) + tuple(int(f) for f in factors)
    out = np.empty(tuple(-(-n // f) for n, f in zip(shape4, factors4)), dtype=region.dtype)
    kernel = _native.downsample_mode if mode else _native.downsample_mean
    kernel(region.reshape(shape4), factors4, out)
    return out.reshape(out.shape[4 - rank :])


def _served_shape(array: Any, expand: bool) -> tuple[int, ...]:
    shape = tuple(int(n) for n in array.shape)
    return (1, *shape) if expand else shape


def _level_factors(shape: tuple[int, ...], level: Any, expand: bool, index: int) -> tuple[int, ...]:
    """Integer factors of a pyramid level: its shape must be floor or ceil of ``shape / factors``."""
    level_shape = _served_shape(level, expand)
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
    if len(shape) == 4 and factors[0] != 1:
        raise InvalidArray("pyramid levels must keep every channel")
    return tuple(factors)


def _lossy(before: np.ndarray[Any, Any], after: np.ndarray[Any, Any]) -> bool:
    """Whether a dtype conversion clipped, overflowed or wrapped any value (not mere rounding)."""
    if before.dtype.kind == "f":
        return bool(np.isinf(after).sum() > np.isinf(before).sum())
    if before.dtype.kind in "iu" and after.dtype.kind in "iu":
        return bool(before.size) and bool(before.min() < 0 <= after.min() or before.max() > np.iinfo(after.dtype).max)
    return False


def xyz(values: Sequence[float], what: str) -> tuple[float, float, float]:
    """Three finite numbers ``(x, y, z)``; :class:`InvalidArray` naming ``what`` otherwise."""
    try:
        x, y, z = (float(v) for v in values)
    except (TypeError, ValueError):
        raise InvalidArray(f"{what} must be three numbers (x, y, z), got {values!r}") from None
    if not all(math.isfinite(v) for v in (x, y, z)):
        raise InvalidArray(f"{what} must be finite, got {tuple(values)}")
    return (x, y, z)
