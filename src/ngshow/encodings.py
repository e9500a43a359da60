"""Chunk encodings the Neuroglancer python data source reads (PROTOCOL.md §3.4).

Chunks arrive C-contiguous in NumPy order, ``(z, y, x)`` or ``(c, z, y, x)``.  The volume declares its
dimensions in the reverse order (``x, y, z[, c]``), so those bytes are already "dimension 0 fastest".
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
from isal import isal_zlib

from .errors import InvalidRequest

__all__ = ["Body", "ENCODINGS", "encode", "encode_jpeg", "encode_raw", "encode_npz", "npy_header"]


#: An encoded chunk: raw chunks are views of the array (copying 1 MB into a new ``bytes`` costs
#: more than cutting the chunk).
Body = bytes | memoryview


def encode_raw(chunk: np.ndarray[Any, Any]) -> Body:
    """Little-endian bytes, dimension 0 (x) fastest."""
    return np.ascontiguousarray(chunk, dtype=chunk.dtype.newbyteorder("<")).data.cast("B")


def npy_header(shape: tuple[int, ...], dtype: np.dtype[Any]) -> bytes:
    """A ``.npy`` version 1.0 header for Fortran-ordered data of ``shape`` (Neuroglancer order)."""
    descr = np.dtype(dtype).newbyteorder("<").str
    text = f"{{'descr': '{descr}', 'fortran_order': True, 'shape': {tuple(int(n) for n in shape)!r}, }}"
    # magic (6) + version (2) + length (2) + text + newline, padded to a multiple of 64.
    total = 10 + len(text) + 1
    text += " " * (-total % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode("latin1")


def encode_npz(chunk: np.ndarray[Any, Any]) -> Body:
    """A zlib stream wrapping a ``.npy`` file whose shape is in Neuroglancer order (x fastest)."""
    header = npy_header(tuple(reversed(chunk.shape)), chunk.dtype)
    compressor = isal_zlib.compressobj(1)  # Intel ISA-L: a zlib stream, 5-8x faster than zlib
    return compressor.compress(header) + compressor.compress(encode_raw(chunk)) + compressor.flush()


def encode_jpeg(chunk: np.ndarray[Any, Any], quality: int = 90) -> bytes:
    """A JPEG of a uint8 chunk: width x, height y*z; 1 channel grey or 3 channels RGB (channel axis first).

    The client reads pixels row-major with x fastest, which is the C order of ``(z, y, x)``.
    """
    from PIL import Image  # imported on first use: most layers never need it

    if chunk.dtype != np.uint8:
        raise InvalidRequest(f"jpeg needs uint8 data, got {chunk.dtype}")
    pixels: np.ndarray[Any, Any]
    if chunk.ndim == 4 and chunk.shape[0] == 3:
        pixels = np.ascontiguousarray(np.moveaxis(chunk, 0, -1)).reshape(-1, chunk.shape[-1], 3)
    elif chunk.ndim == 3 or chunk.shape[0] == 1:
        pixels = np.ascontiguousarray(chunk).reshape(-1, chunk.shape[-1])
    else:
        raise InvalidRequest(f"jpeg needs 1 or 3 channels, got {chunk.shape[0]}")
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=quality)
    return out.getvalue()


ENCODINGS: dict[str, Callable[[np.ndarray[Any, Any]], Body]] = {
    "raw": encode_raw,
    "npz": encode_npz,
    "jpeg": encode_jpeg,
}


def encode(encoding: str, chunk: np.ndarray[Any, Any], *, jpeg_quality: int = 90) -> Body:
    """Encode ``chunk`` with the named encoding."""
    if encoding == "jpeg":
        return encode_jpeg(chunk, jpeg_quality)
    try:
        encoder = ENCODINGS[encoding]
    except KeyError:
        raise InvalidRequest(
            f"unknown encoding {encoding!r}; expected one of {sorted(ENCODINGS)}"
        ) from None
    return encoder(chunk)
