"""Chunk encodings the Neuroglancer python data source reads (PROTOCOL.md §3.4).

Chunks arrive C-contiguous in NumPy order, ``(z, y, x)`` or ``(c, z, y, x)``.  The volume declares its
dimensions in the reverse order (``x, y, z[, c]``), so those bytes are already "dimension 0 fastest".
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import InvalidRequest

__all__ = ["ENCODINGS", "encode", "encode_raw", "encode_npz", "npy_header"]


def encode_raw(chunk: np.ndarray[Any, Any]) -> bytes:
    """Little-endian bytes, dimension 0 (x) fastest."""
    return np.ascontiguousarray(chunk, dtype=chunk.dtype.newbyteorder("<")).tobytes()


def npy_header(shape: tuple[int, ...], dtype: np.dtype[Any]) -> bytes:
    """A ``.npy`` version 1.0 header for Fortran-ordered data of ``shape`` (Neuroglancer order)."""
    descr = np.dtype(dtype).newbyteorder("<").str
    text = f"{{'descr': '{descr}', 'fortran_order': True, 'shape': {tuple(int(n) for n in shape)!r}, }}"
    # magic (6) + version (2) + length (2) + text + newline, padded to a multiple of 64.
    total = 10 + len(text) + 1
    text += " " * (-total % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode("latin1")


def encode_npz(chunk: np.ndarray[Any, Any]) -> bytes:
    """A zlib stream wrapping a ``.npy`` file whose shape is in Neuroglancer order (x fastest)."""
    header = npy_header(tuple(reversed(chunk.shape)), chunk.dtype)
    compressor = zlib.compressobj(1)
    return compressor.compress(header) + compressor.compress(encode_raw(chunk)) + compressor.flush()


ENCODINGS: dict[str, Callable[[np.ndarray[Any, Any]], bytes]] = {
    "raw": encode_raw,
    "npz": encode_npz,
}


def encode(encoding: str, chunk: np.ndarray[Any, Any]) -> bytes:
    """Encode ``chunk`` with the named encoding."""
    try:
        encoder = ENCODINGS[encoding]
    except KeyError:
        raise InvalidRequest(
            f"unknown encoding {encoding!r}; expected one of {sorted(ENCODINGS)}"
        ) from None
    return encoder(chunk)
