"""The C++ block downsamplers against a slow reference, for every dtype and awkward shapes."""

from __future__ import annotations

import numpy as np
import pytest

from ngshow.sources import downsample

from . import reference

DTYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float32", "float64"]


def assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    """Exact for integers; floats may differ in the last bits (summation order)."""
    assert actual.dtype == expected.dtype
    if actual.dtype.kind == "f":
        np.testing.assert_allclose(actual, expected, rtol=1e-6 if actual.dtype == np.float32 else 1e-12)
    else:
        np.testing.assert_array_equal(actual, expected)


def random_array(shape: tuple[int, ...], dtype: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.normal(0, 100, shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -1000), min(info.max, 1000), shape, endpoint=True).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("factors", [(2, 2, 2), (1, 3, 2), (3, 1, 5), (4, 4, 1)])
def test_mean_matches_reference(dtype: str, factors: tuple[int, int, int]) -> None:
    a = random_array((7, 10, 11), dtype)
    assert_same(downsample(a, factors, mode=False), reference.downsample(a, factors, mode=False))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("factors", [(2, 2, 2), (1, 3, 2), (3, 2, 5)])
def test_mode_matches_reference(dtype: str, factors: tuple[int, int, int]) -> None:
    labels = (random_array((7, 10, 11), dtype) % 4).astype(dtype)
    np.testing.assert_array_equal(downsample(labels, factors, mode=True), reference.downsample(labels, factors, mode=True))


def test_mode_keeps_a_label_and_breaks_ties_to_the_smallest() -> None:
    block = np.array([[[5, 5], [9, 9]], [[9, 5], [3, 3]]], np.uint64)  # 5: 3 votes, 9: 3 votes, 3: 2
    assert downsample(block, (2, 2, 2), mode=True).item() == 5
    assert downsample(np.array([[[7, 1], [7, 2]]], np.uint32), (1, 2, 2), mode=True).item() == 7


def test_mean_of_large_uint64_is_exact() -> None:
    big = np.array([[[2**63 + 1, 2**63 + 3]]], np.uint64)
    assert downsample(big, (1, 1, 2), mode=False).item() == 2**63 + 2


def test_strided_and_fortran_inputs() -> None:
    a = random_array((9, 12, 14), "uint16")
    for view in (a[::2, 1:, ::3], np.asfortranarray(a), a.transpose(2, 1, 0)):
        np.testing.assert_array_equal(
            downsample(view, (2, 3, 2), mode=False), reference.downsample(np.ascontiguousarray(view), (2, 3, 2), mode=False)
        )


def test_four_dimensional_channels_are_kept() -> None:
    a = random_array((3, 5, 6, 7), "float32")
    assert_same(downsample(a, (1, 2, 2, 2), mode=False), reference.downsample(a, (1, 2, 2, 2), mode=False))
