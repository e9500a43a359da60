"""Neuroglancer *precomputed* format: scale geometry, chunk keys and chunk encodings.

Chunks travel through the pipeline as 4-D NumPy arrays ``(c, z, y, x)``, C-contiguous, so their
bytes are already in the format's order (x fastest, channels slowest).  Coordinates in this module
are ``(x, y, z)`` like the format's, unless a name says otherwise.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidRequest
from .sharding import ShardingSpec, compressed_morton_code, shard_block_shape

__all__ = [
    "ENCODINGS",
    "DATA_TYPES",
    "Scale",
    "decode_chunk",
    "encode_chunk",
    "scale_key",
    "volume_info",
]

#: Encodings the stock viewer reads that ngshow writes.
ENCODINGS = ("raw", "jpeg", "compressed_segmentation")

#: ``data_type`` values of the format.
DATA_TYPES = frozenset(
    ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "float32")
)

Triple = tuple[int, int, int]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def scale_key(resolution: Sequence[float]) -> str:
    """The conventional key of a scale, e.g. ``"8_8_40"`` (resolution in nm, x_y_z)."""
    return "_".join(_number(r) for r in resolution)


@dataclass(frozen=True)
class Scale:
    """One scale of a precomputed volume (all triples are ``(x, y, z)``).

    ``factor`` is the cumulative downsampling factor from scale 0; ``voxel_offset`` is added to
    chunk coordinates in file names, so grid arithmetic below works from zero.
    """

    key: str
    size: Triple
    resolution: tuple[float, float, float]
    voxel_offset: Triple
    chunk_size: Triple
    encoding: str
    factor: Triple = (1, 1, 1)
    cseg_block_size: Triple = (8, 8, 8)
    jpeg_quality: int = 85
    #: Sharded storage (one ``<hex>.shard`` file per grid-aligned block of chunks), or None.
    sharding: ShardingSpec | None = None

    def to_json(self) -> dict[str, Any]:
        """This scale's entry in ``info["scales"]``."""
        out: dict[str, Any] = {
            "key": self.key,
            "size": list(self.size),
            "resolution": [_json_number(r) for r in self.resolution],
            "voxel_offset": list(self.voxel_offset),
            "chunk_sizes": [list(self.chunk_size)],
            "encoding": self.encoding,
        }
        if self.encoding == "compressed_segmentation":
            out["compressed_segmentation_block_size"] = list(self.cseg_block_size)
        if self.sharding is not None:
            out["sharding"] = self.sharding.to_json()
        return out

    @property
    def shard_shape(self) -> Triple:
        """Voxel shape (x, y, z) of the block of chunks one shard holds (chunk shape unsharded)."""
        if self.sharding is None:
            return self.chunk_size
        low = self.sharding.preshift_bits + self.sharding.minishard_bits
        block = shard_block_shape(self.grid, low)
        return tuple(c * b for c, b in zip(self.chunk_size, block))  # type: ignore[return-value]

    def chunk_id(self, lo: Sequence[int]) -> int:
        """The compressed Morton code of the chunk starting at ``lo`` (from zero)."""
        index = [a // c for a, c in zip(lo, self.chunk_size)]
        return int(compressed_morton_code(index, self.grid))

    def shard_key(self, lo: Sequence[int]) -> str:
        """The storage key of the shard holding the chunk starting at ``lo`` (sharded scales)."""
        if self.sharding is None:
            raise InvalidRequest(f"scale {self.key} is not sharded")
        shard, _ = self.sharding.shard_and_minishard(self.chunk_id(lo))
        return f"{self.key}/{self.sharding.shard_name(shard)}"

    @property
    def grid(self) -> Triple:
        """Number of chunks along x, y, z."""
        return tuple(-(-n // c) for n, c in zip(self.size, self.chunk_size))  # type: ignore[return-value]

    def chunk_bounds(self, index: Sequence[int]) -> tuple[Triple, Triple]:
        """``(lo, hi)`` voxel bounds (from zero, x, y, z) of the chunk at grid ``index``."""
        lo = tuple(i * c for i, c in zip(index, self.chunk_size))
        hi = tuple(min(a + c, n) for a, c, n in zip(lo, self.chunk_size, self.size))
        return lo, hi  # type: ignore[return-value]

    def chunk_key(self, lo: Sequence[int], hi: Sequence[int]) -> str:
        """The storage key of the chunk spanning ``[lo, hi)`` (from zero)."""
        o = self.voxel_offset
        parts = (f"{a + d}-{b + d}" for a, b, d in zip(lo, hi, o))
        return f"{self.key}/{'_'.join(parts)}"

    def chunks_in(self, lo: Sequence[int], hi: Sequence[int]) -> Iterator[tuple[Triple, Triple]]:
        """Every chunk ``(lo, hi)`` overlapping the box ``[lo, hi)``, x fastest."""
        first = [a // c for a, c in zip(lo, self.chunk_size)]
        last = [-(-min(b, n) // c) for b, c, n in zip(hi, self.chunk_size, self.size)]
        for gz in range(first[2], last[2]):
            for gy in range(first[1], last[1]):
                for gx in range(first[0], last[0]):
                    yield self.chunk_bounds((gx, gy, gz))

    def grid_positions(self) -> np.ndarray[Any, Any]:
        """``(n, 3)`` grid positions (x, y, z) of every chunk, x fastest."""
        gx, gy, gz = self.grid
        z, y, x = np.meshgrid(np.arange(gz), np.arange(gy), np.arange(gx), indexing="ij")
        return np.stack([x.ravel(), y.ravel(), z.ravel()], axis=1)

    def all_chunks(self) -> Iterator[tuple[Triple, Triple]]:
        """Every chunk of this scale."""
        return self.chunks_in((0, 0, 0), self.size)


def _json_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def volume_info(
    *,
    kind: str,
    data_type: str,
    num_channels: int,
    scales: Sequence[Scale],
    mesh: str | None,
    segment_properties: str | None = None,
) -> dict[str, Any]:
    """The dataset's root ``info`` document."""
    info: dict[str, Any] = {
        "@type": "neuroglancer_multiscale_volume",
        "type": kind,
        "data_type": data_type,
        "num_channels": int(num_channels),
        "scales": [s.to_json() for s in scales],
    }
    if mesh is not None:
        info["mesh"] = mesh
    if segment_properties is not None:
        info["segment_properties"] = segment_properties
    return info


# --- encodings ------------------------------------------------------------------------------


def encode_chunk(chunk: np.ndarray[Any, Any], scale: Scale) -> bytes:
    """Encode a ``(c, z, y, x)`` chunk with the scale's encoding."""
    if chunk.ndim != 4:
        raise InvalidRequest(f"chunks are 4-D (c, z, y, x), got shape {chunk.shape}")
    if scale.encoding == "raw":
        return np.ascontiguousarray(chunk, dtype=chunk.dtype.newbyteorder("<")).tobytes()
    if scale.encoding == "compressed_segmentation":
        return _encode_cseg(chunk, scale.cseg_block_size)
    if scale.encoding == "jpeg":
        return _encode_jpeg(chunk, scale.jpeg_quality)
    raise InvalidRequest(f"unknown encoding {scale.encoding!r}; expected one of {ENCODINGS}")


def decode_chunk(
    data: bytes,
    scale: Scale,
    shape_xyz: Sequence[int],
    dtype: np.dtype[Any],
    channels: int,
    *,
    trusted: bool = False,
) -> np.ndarray[Any, Any]:
    """Decode a chunk of ``shape_xyz`` voxels into a ``(c, z, y, x)`` array.

    ``trusted`` skips the bounds checks that keep a corrupt compressed_segmentation chunk from
    crashing the process (the pipeline reading what it wrote itself).

    Raises
    ------
    InvalidRequest
        If the bytes do not decode to the expected shape.
    """
    x, y, z = (int(n) for n in shape_xyz)
    shape4 = (channels, z, y, x)
    dtype = np.dtype(dtype)
    if scale.encoding == "raw":
        expected = math.prod(shape4) * dtype.itemsize
        if len(data) != expected:
            raise InvalidRequest(f"raw chunk has {len(data)} bytes, expected {expected}")
        return np.frombuffer(data, dtype=dtype.newbyteorder("<")).reshape(shape4).astype(dtype)
    if scale.encoding == "compressed_segmentation":
        return _decode_cseg(data, shape4, dtype, scale.cseg_block_size, trusted)
    if scale.encoding == "jpeg":
        return _decode_jpeg(data, shape4)
    raise InvalidRequest(f"unknown encoding {scale.encoding!r}")


def _encode_cseg(chunk: np.ndarray[Any, Any], block: Sequence[int]) -> bytes:
    from .. import _native

    if chunk.dtype not in (np.uint32, np.uint64):
        raise InvalidRequest(
            f"compressed_segmentation encodes uint32 or uint64 labels, got {chunk.dtype}"
        )
    # ngshow's own encoder (native/cseg.cpp, the one the viewer serves with) takes the C-ordered
    # (c, z, y, x) chunk as it is; it is about 2.5x faster than PyPI compressed_segmentation's.
    labels = np.ascontiguousarray(chunk, dtype=chunk.dtype.newbyteorder("="))
    bx, by, bz = (int(b) for b in block)
    return bytes(_native.encode_compressed_segmentation(labels, (bx, by, bz)))


def _decode_cseg(
    data: bytes,
    shape4: tuple[int, ...],
    dtype: np.dtype[Any],
    block: Sequence[int],
    trusted: bool,
) -> np.ndarray[Any, Any]:
    import compressed_segmentation as cseg

    # The codec trusts every offset in the stream and crashes the process on corrupt input, so
    # check that each read it will make stays inside the buffer first.
    if not trusted:
        _check_cseg_bounds(data, shape4, np.dtype(dtype), block)
    try:
        xyzc = cseg.decompress(
            data, tuple(reversed(shape4)), dtype, block_size=tuple(block), order="F"
        )
    except Exception as e:  # the codec raises bare exceptions for corrupt data
        raise InvalidRequest(f"corrupt compressed_segmentation chunk: {e}") from e
    return np.ascontiguousarray(np.asarray(xyzc).T.reshape(shape4))


def _check_cseg_bounds(
    data: bytes, shape4: tuple[int, ...], dtype: np.dtype[Any], block: Sequence[int]
) -> None:
    def bad(why: str) -> InvalidRequest:
        return InvalidRequest(f"corrupt compressed_segmentation chunk: {why}")

    if len(data) % 4:
        raise bad(f"{len(data)} bytes is not a whole number of 32-bit words")
    words = np.frombuffer(data, "<u4")
    n = len(words)
    entry = 2 if dtype.itemsize == 8 else 1
    c, z, y, x = shape4
    bx, by, bz = (int(b) for b in block)
    blocks = (-(-x // bx)) * (-(-y // by)) * (-(-z // bz))
    per_block = bx * by * bz
    if n < c:
        raise bad("shorter than its channel table")
    for ch in range(c):
        base = int(words[ch])
        if base + 2 * blocks > n:
            raise bad(f"channel {ch}: block headers run past the end")
        header = words[base : base + 2 * blocks].reshape(blocks, 2).astype(np.int64)
        bits = header[:, 0] >> 24
        table = base + (header[:, 0] & 0xFFFFFF)
        values = base + header[:, 1]
        if not np.isin(bits, (0, 1, 2, 4, 8, 16, 32)).all():
            raise bad(f"channel {ch}: invalid bit width")
        ends = values + -(-(per_block * bits) // 32)
        if (ends > n).any():
            raise bad(f"channel {ch}: encoded values run past the end")
        highest = np.zeros(blocks, dtype=np.int64)
        for b in np.unique(bits[bits > 0]):
            shifts = np.arange(0, 32, int(b), dtype=np.uint32)
            mask = np.uint32((1 << int(b)) - 1) if b < 32 else np.uint32(0xFFFFFFFF)
            for i in np.flatnonzero(bits == b):
                packed = words[values[i] : ends[i]]
                highest[i] = int(((packed[:, None] >> shifts) & mask).max())
        if ((table + (highest + 1) * entry) > n).any():
            raise bad(f"channel {ch}: a lookup table runs past the end")


def _encode_jpeg(chunk: np.ndarray[Any, Any], quality: int) -> bytes:
    from PIL import Image

    c, z, y, x = chunk.shape
    if chunk.dtype != np.uint8 or c not in (1, 3):
        raise InvalidRequest(f"jpeg encodes uint8 images of 1 or 3 channels, got {chunk.dtype} x {c}")
    # The format's JPEG is one 2-D image, x wide and y*z tall, channels interleaved.
    if c == 1:
        image = Image.fromarray(np.ascontiguousarray(chunk[0].reshape(z * y, x)), mode="L")
    else:
        image = Image.fromarray(np.ascontiguousarray(np.moveaxis(chunk, 0, -1).reshape(z * y, x, 3)))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=int(quality), optimize=False)
    return out.getvalue()


def _decode_jpeg(data: bytes, shape4: tuple[int, ...]) -> np.ndarray[Any, Any]:
    from PIL import Image

    c, z, y, x = shape4
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            arr = np.asarray(image)
    except Exception as e:
        raise InvalidRequest(f"corrupt jpeg chunk: {e}") from e
    if arr.shape[:2] != (z * y, x) or (arr.ndim == 3) != (c == 3):
        raise InvalidRequest(f"jpeg chunk is {arr.shape}, expected {(z * y, x)} x {c} channels")
    if c == 1:
        return arr.reshape(1, z, y, x)
    return np.ascontiguousarray(np.moveaxis(arr.reshape(z, y, x, 3), -1, 0))
