"""ngshow's own compressed_segmentation encoder, checked with the PyPI codec (a reader nobody here wrote)."""

from __future__ import annotations

from typing import Any

import compressed_segmentation as cseg
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ngshow import _native


def decode(data: bytes, shape: tuple[int, ...], dtype: Any, block: tuple[int, int, int]) -> np.ndarray[Any, Any]:
    """PyPI's decoder, for a (c, z, y, x) array."""
    return np.asarray(cseg.decompress(data, tuple(reversed(shape)), dtype, block_size=block, order="F")).T


@pytest.mark.parametrize("dtype", [np.uint32, np.uint64])
@pytest.mark.parametrize(
    "shape, block",
    [((1, 64, 64, 64), (8, 8, 8)), ((1, 13, 21, 37), (8, 8, 8)), ((2, 9, 10, 11), (4, 4, 4)), ((1, 5, 6, 70), (16, 8, 4))],
)
def test_round_trip_through_the_pypi_decoder(dtype: Any, shape: tuple[int, ...], block: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(1)
    cells = rng.integers(0, 6, (shape[0], -(-shape[1] // 5), -(-shape[2] // 5), -(-shape[3] // 5)))
    labels = cells.repeat(5, 1).repeat(5, 2).repeat(5, 3)[:, : shape[1], : shape[2], : shape[3]].astype(dtype)
    labels[:, ::7, ::3, ::5] = rng.integers(0, 2**31, labels[:, ::7, ::3, ::5].shape)  # noise: many values a block
    if dtype == np.uint64:
        labels += np.uint64(2**40)
    labels = np.ascontiguousarray(labels)
    data = _native.encode_compressed_segmentation(labels, block)
    np.testing.assert_array_equal(decode(data, shape, dtype, block), labels)
    # About as compact as the PyPI encoder's output (the same format, tables shared alike).
    theirs = bytes(cseg.compress(labels.T, block_size=block, order="F"))
    assert len(data) <= 1.1 * len(theirs)


@settings(max_examples=60, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 2), st.integers(1, 12), st.integers(1, 12), st.integers(1, 12)),
    block=st.tuples(st.integers(1, 8), st.integers(1, 8), st.integers(1, 8)),
    distinct=st.integers(1, 600),
    seed=st.integers(0, 2**16),
)
def test_any_shape_block_and_number_of_labels(
    shape: tuple[int, ...], block: tuple[int, int, int], distinct: int, seed: int
) -> None:
    labels = np.random.default_rng(seed).integers(0, distinct, shape).astype(np.uint32)
    data = _native.encode_compressed_segmentation(labels, block)
    np.testing.assert_array_equal(decode(data, shape, np.uint32, block), labels)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="block sizes"):
        _native.encode_compressed_segmentation(np.zeros((1, 2, 2, 2), np.uint32), (0, 8, 8))
    with pytest.raises(TypeError):
        _native.encode_compressed_segmentation(np.zeros((1, 2, 2, 2), np.uint16), (8, 8, 8))
