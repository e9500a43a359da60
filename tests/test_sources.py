"""Conformance suite: every array adapter serves exactly the same chunks as the NumPy array it holds.

A new adapter joins by subclassing :class:`SourceConformance` and implementing ``wrap``.
"""

from __future__ import annotations

import warnings

from pathlib import Path
from typing import Any

import dask.array as da
import h5py
import numpy as np
import pytest
import tensorstore as ts
import zarr

from ngshow.readers import ReversedAxes, TensorStoreArray
from ngshow.coords import CoordinateSpace
from ngshow.errors import DtypeConversionWarning, InvalidArray, ValuesClippedWarning
from ngshow.sources import ArraySource

from . import reference

DTYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "float32"]


def asymmetric(shape: tuple[int, ...], dtype: str) -> np.ndarray[Any, Any]:
    values = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape) * 7919 % 251
    return values.astype(dtype)


class SourceConformance:
    """The checks every adapter passes; ``wrap`` turns a NumPy array into the adapter's array."""

    def wrap(self, array: np.ndarray[Any, Any], tmp_path: Path) -> Any:
        raise NotImplementedError

    @pytest.mark.parametrize("dtype", DTYPES)
    def test_full_resolution_boxes(self, dtype: str, tmp_path: Path) -> None:
        array = asymmetric((7, 11, 13), dtype)
        source = ArraySource(self.wrap(array, tmp_path), kind="image")
        assert source.shape == array.shape and source.dtype == np.dtype(dtype)
        for start, end in [((0, 0, 0), (7, 11, 13)), ((6, 10, 12), (7, 11, 13)), ((2, 3, 4), (5, 11, 6))]:
            got = source.cut_chunk((1, 1, 1), start, end)
            assert got.flags.c_contiguous
            np.testing.assert_array_equal(got, array[tuple(slice(s, e) for s, e in zip(start, end))])

    @pytest.mark.parametrize("kind", ["image", "segmentation"])
    def test_downsampled_edge_boxes(self, kind: str, tmp_path: Path) -> None:
        array = asymmetric((7, 11, 13), "uint16") % 6
        source = ArraySource(self.wrap(array, tmp_path), kind=kind)  # type: ignore[arg-type]
        expected = reference.downsample(array, (2, 2, 3), mode=kind == "segmentation")
        np.testing.assert_array_equal(source.cut_chunk((2, 2, 3), (0, 0, 0), expected.shape), expected)
        np.testing.assert_array_equal(source.cut_chunk((2, 2, 3), (3, 5, 4), expected.shape), expected[3:, 5:, 4:])

    def test_four_dimensional(self, tmp_path: Path) -> None:
        array = asymmetric((2, 5, 6, 9), "float32")
        source = ArraySource(self.wrap(array, tmp_path), kind="image")
        assert source.channels == 2
        np.testing.assert_array_equal(source.cut_chunk((1, 1, 1, 1), (0, 1, 2, 3), (2, 5, 6, 9)), array[:, 1:, 2:, 3:])
        expected = reference.downsample(array, (1, 2, 2, 2), mode=False)
        np.testing.assert_allclose(source.cut_chunk((1, 2, 2, 2), (0, 0, 0, 0), expected.shape), expected, rtol=1e-6)

    @pytest.mark.parametrize("kind", ["image", "segmentation"])
    def test_five_dimensional_time_lapse(self, kind: str, tmp_path: Path) -> None:
        channels = 2 if kind == "image" else 1
        array = asymmetric((5, channels, 3, 6, 7), "uint16") % 5
        space = CoordinateSpace.make(array.shape, axes="tczyx")
        source = ArraySource(self.wrap(array, tmp_path), kind=kind, space=space)  # type: ignore[arg-type]
        assert source.dimension_names() == ["x", "y", "z", "c^", "t"]
        np.testing.assert_array_equal(
            source.cut_chunk((1,) * 5, (1, 0, 1, 2, 3), (3, channels, 3, 6, 7)), array[1:3, :, 1:, 2:, 3:]
        )
        # Time is sampled (every second point), space reduced: no frame is ever mixed with another.
        got = source.cut_chunk((2, 1, 1, 2, 2), (1, 0, 0, 0, 0), (3, channels, 3, 3, 4))
        expected = reference.downsample(array[::2], (1, 1, 1, 2, 2), mode=kind == "segmentation")[1:]
        np.testing.assert_array_equal(got, expected)


class TestNumpy(SourceConformance):
    def wrap(self, array: np.ndarray[Any, Any], tmp_path: Path) -> Any:
        return array


class TestFortranOrderNumpy(SourceConformance):
    def wrap(self, array: np.ndarray[Any, Any], tmp_path: Path) -> Any:
        return np.asfortranarray(array)


class TestMemmap(SourceConformance):
    def wrap(self, array: np.ndarray[Any, Any], tmp_path: Path) -> Any:
        np.save(tmp_path / "a.npy", array)
        return np.load(tmp_path / "a.npy", mmap_mode="r")


class TestH5py(SourceConformance):
    def wrap(self, array: np.ndarray[Any, Any], tmp_path: Path) -> Any:
        with h5py.File(tmp_path / "a.h5", "w") as f:
            f.create_dataset("a", data=array, chunks=tuple(min(4, n) for n in array.shape))
        self.file = h5py.File(tmp_path / "a.h5", "r")
        return self.file["a"]

    def teardown_method(self) -> None:
        if getattr(self, "file", None) is not None:
            self.file.close()


class TestZarr(SourceConformance):
    def wrap(self, array: np.ndarray[Any, Any], tmp_path: Path) -> Any:
        z = zarr.create_array(tmp_path / "a.zarr", shape=array.shape, dtype=array.dtype, chunks=(4,) * array.ndim)
        z[...] = array
        return zarr.open_array(tmp_path / "a.zarr", mode="r")


class TestZarrV2(SourceConformance):
    def wrap(self, array: np.ndarray[Any, Any], tmp_path: Path) -> Any:
        z = zarr.create_array(
            tmp_path / "a2.zarr", shape=array.shape, dtype=array.dtype, chunks=(4,) * array.ndim, zarr_format=2
        )
        z[...] = array
        return zarr.open_array(tmp_path / "a2.zarr", mode="r")


class TestDask(SourceConformance):
    def wrap(self, array: np.ndarray[Any, Any], tmp_path: Path) -> Any:
        return da.from_array(array, chunks=(3,) * array.ndim) + 0  # a lazy graph, not just a wrapper


class TestTensorStore(SourceConformance):
    def wrap(self, array: np.ndarray[Any, Any], tmp_path: Path) -> Any:
        spec = {"driver": "zarr", "kvstore": {"driver": "file", "path": str(tmp_path / "ts.zarr")}}
        store = ts.open(spec, create=True, dtype=array.dtype.name, shape=array.shape).result()
        store.write(array).result()
        return TensorStoreArray(ts.open(spec, read=True).result())


class TestReversedAxes(SourceConformance):
    """NIfTI-style (x, y, z) storage seen as (z, y, x)."""

    def wrap(self, array: np.ndarray[Any, Any], tmp_path: Path) -> Any:
        return ReversedAxes(np.ascontiguousarray(array.transpose()))


def test_a_list_of_arrays_is_a_pyramid() -> None:
    base = asymmetric((9, 13, 22), "uint16")
    level1 = reference.downsample(base, (1, 2, 2), mode=False) + 1000  # ceil shape (9, 7, 11); marked
    level2 = (base[::2, ::4, ::4][:4, :3, :5] + 2000).astype("uint16")  # floor shape (4, 3, 5); marked
    source = ArraySource([base, level1, level2], kind="image")
    assert [f for _, f in source.levels] == [(1, 1, 1), (1, 2, 2), (2, 4, 4)]
    np.testing.assert_array_equal(source.cut_chunk((1, 1, 1), (0, 0, 0), (9, 13, 22)), base)
    np.testing.assert_array_equal(source.cut_chunk((1, 2, 2), (0, 0, 0), (9, 7, 11)), level1)
    np.testing.assert_array_equal(
        source.cut_chunk((1, 4, 4), (0, 0, 0), (9, 4, 6)), reference.downsample(level1, (1, 2, 2), mode=False)
    )
    np.testing.assert_array_equal(
        source.cut_chunk((2, 2, 2), (0, 0, 0), (5, 7, 11)), reference.downsample(level1, (2, 1, 1), mode=False)
    )
    # Level 2 is a voxel short of ceil(shape / 4) on every axis: its last voxels are repeated.
    expected = np.pad(level2, [(0, 1), (0, 1), (0, 1)], mode="edge")
    np.testing.assert_array_equal(source.cut_chunk((2, 4, 4), (0, 0, 0), (5, 4, 6)), expected)
    np.testing.assert_array_equal(source.cut_chunk((2, 4, 4), (3, 2, 4), (5, 4, 6)), expected[3:, 2:, 4:])


def test_bad_pyramids_are_refused() -> None:
    base = np.zeros((8, 8, 8), np.uint8)
    with pytest.raises(InvalidArray, match="divided by an integer"):
        ArraySource([base, np.zeros((8, 5, 8), np.uint8)], kind="image")
    with pytest.raises(InvalidArray, match="same dtype"):
        ArraySource([base, np.zeros((4, 4, 4), np.uint16)], kind="image")
    with pytest.raises(InvalidArray, match="empty list"):
        ArraySource([], kind="image")


def test_lossy_conversions_warn_once_at_the_users_line() -> None:
    labels = np.array([[[-1, 5]]], np.int64)
    with pytest.warns(DtypeConversionWarning, match="uint64") as caught:
        source = ArraySource(labels, kind="segmentation")
    assert caught[0].filename == __file__  # the user's line, not ngshow's
    with pytest.warns(ValuesClippedWarning, match="do not fit") as clipped:
        assert source.cut_chunk((1, 1, 1), (0, 0, 0), (1, 1, 2)).tolist() == [[[2**64 - 1, 5]]]
    assert len(clipped) == 1 and clipped[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        source.cut_chunk((1, 1, 1), (0, 0, 0), (1, 1, 2))  # once only
    with pytest.warns(DtypeConversionWarning, match="float32"):
        floats = ArraySource(np.array([[[1e300, 1.0]]]), kind="image")
    with pytest.warns(ValuesClippedWarning, match="float64 array do not fit float32"):
        floats.cut_chunk((1, 1, 1), (0, 0, 0), (1, 1, 2))


def test_dtype_warning_from_viewer_add_points_at_the_caller() -> None:
    import ngshow

    viewer = ngshow.Viewer()
    try:
        with pytest.warns(DtypeConversionWarning) as caught:
            viewer.add(np.zeros((4, 4, 4), np.float64))
        assert caught[0].filename == __file__
    finally:
        ngshow.stop()
