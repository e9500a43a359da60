"""Coordinate spaces: validation, what the client is told, and N-D arrays served through them."""

from __future__ import annotations

import logging
import struct
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorstore as ts
import xarray as xr

import ngshow
from ngshow.coords import CoordinateSpace, parse_unit
from ngshow.errors import AxesGuessWarning, InvalidArray
from ngshow.layers import guess_kind
from ngshow.sources import ArraySource

from .conftest import base_url, request


@pytest.mark.parametrize(
    "unit, expected",
    [("nm", (1e-9, "m")), ("um", (1e-6, "m")), ("µm", (1e-6, "m")), ("micrometer", (1e-6, "m")),
     ("ms", (1e-3, "s")), ("kHz", (1e3, "Hz")), ("", (1.0, "")), ("minute", (60.0, "s")), ("m", (1.0, "m"))],
)
def test_units(unit: str, expected: tuple[float, str]) -> None:
    factor, base = parse_unit(unit)
    assert base == expected[1] and factor == pytest.approx(expected[0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"axes": "zyx"}, "names 3 axes, but the array has 4"),
        ({"axes": "tzzx"}, "repeated names: z"),
        ({"axes": ["t", "z", "y", "1x"]}, "axis name '1x'"),
        ({"axes": "tzyx", "scale": (1, 1, 1)}, "scale has 3 values"),
        ({"axes": "tzyx", "scale": (1, 0, 1, 1)}, "scale of axis 'z' must be > 0"),
        ({"axes": "tzyx", "scale": (1, float("nan"), 1, 1)}, "scale of axis 'z' must be finite"),
        ({"axes": "tzyx", "units": "furlong"}, "unknown unit 'furlong'"),
        ({"axes": "tzyx", "units": ("s", "nm", "nm")}, "units has 3 values"),
        ({"axes": "czyx", "units": ("m", "nm", "nm", "nm")}, "channel axis 'c' cannot have a unit"),
        ({"axes": "tzyx", "translate": (0, 0, float("inf"), 0)}, "translate of axis 'y' must be finite"),
        ({"axes": "tzyx", "transform": np.zeros((5, 5))}, "last row"),
        ({"axes": "tzyx", "transform": np.eye(5) * [1, 1, 0, 1, 1]}, "singular"),
        ({"axes": "tzyx", "transform": np.eye(4)}, "must be 5x5 or 4x5"),
        ({"axes": "tzyx", "transform": np.full((5, 5), np.nan)}, "finite"),
        ({"axes": "tzyx", "voxel_size": (1, 1, 1), "scale": (1, 1, 1, 1)}, "not both"),
    ],
)
def test_bad_spaces_name_the_argument(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArray, match=message):
        CoordinateSpace.make((5, 6, 7, 8), **kwargs)


def test_default_axes_by_rank_and_the_time_lapse_guess() -> None:
    assert CoordinateSpace.make((4, 5)).names == ("y", "x")
    assert CoordinateSpace.make((4, 5, 6)).names == ("z", "y", "x")
    assert CoordinateSpace.make((3, 4, 5, 6)).names == ("c", "z", "y", "x")
    assert CoordinateSpace.make((2, 3, 4, 5, 6)).kinds == ("time", "channel", "space", "space", "space")
    with pytest.warns(AxesGuessWarning, match="axes="):
        assert CoordinateSpace.make((10, 4, 5, 6)).names == ("t", "z", "y", "x")
    with pytest.raises(InvalidArray, match="axes="):
        CoordinateSpace.make((2,) * 6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert CoordinateSpace.make((10, 4, 5, 6), axes="czyx").kinds[0] == "channel"


def test_the_old_spellings_mean_what_they_meant() -> None:
    space = CoordinateSpace.make((4, 5, 6), voxel_size=(6, 7, 40), offset=(1, 2, 3))
    assert [(a.name, a.scale, a.unit, a.translate) for a in space.axes] == [
        ("z", 40, "nm", 120), ("y", 7, "nm", 14), ("x", 6, "nm", 6)
    ]
    assert space.info_coordinate_space() == {"x": [6e-9, "m"], "y": [7e-9, "m"], "z": [4e-8, "m"]}
    assert space.info_voxel_offset() == [1, 2, 3]
    assert space.source_transform() is None  # already x, y, z in the client's order


def test_info_of_a_time_lapse_with_channels() -> None:
    space = CoordinateSpace.make(
        (3, 2, 4, 5, 6), axes="tczyx", scale=(0.5, 1, 2, 0.25, 0.25), units=("s", "", "um", "um", "um"),
        channel_labels=["DAPI", "GFP"],
    )
    assert space.info_coordinate_space() == {
        "x": [0.25e-6, "m"], "y": [0.25e-6, "m"], "z": [2e-6, "m"],
        "c^": {"coordinates": [0, 1], "labels": ["DAPI", "GFP"]}, "t": [0.5, "s"],
    }
    assert space.source_transform() is None


def test_transposed_axes_put_x_first_and_a_transform_maps_physical_units() -> None:
    space = CoordinateSpace.make((6, 5, 4), axes="xyz", scale=(4, 8, 40), units="nm")
    tf = space.source_transform()
    assert tf is not None and list(tf["outputDimensions"]) == ["x", "y", "z"]
    # inputs are the info's dimensions (z, y, x); rows pick x, y, z
    assert tf["matrix"] == [[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]]

    affine = np.eye(4)
    affine[2, 3] = 100.0  # +100 nm along x (the last array axis)
    shifted = CoordinateSpace.make((4, 5, 6), scale=(40, 4, 4), units=("nm", "um", "nm"), transform=affine)
    tf = shifted.source_transform()
    assert tf is not None
    assert tf["matrix"][0][3] == pytest.approx(100 / 4)  # output voxels of x (4 nm)
    assert shifted.physical((0, 0, 0)).tolist() == [0, 0, 100]
    np.testing.assert_allclose(shifted.index(shifted.physical((1, 2, 3))), (1, 2, 3))


def test_a_segmentation_cannot_have_channels() -> None:
    with pytest.raises(InvalidArray, match="cannot have channels"):
        ArraySource(np.zeros((2, 3, 4, 5), np.uint32), kind="segmentation")
    with pytest.raises(InvalidArray, match="at most one channel axis"):
        ArraySource(np.zeros((1, 1, 4, 5), np.uint32), kind="segmentation",
                    space=CoordinateSpace.make((1, 1, 4, 5), axes=["c", "channel", "y", "x"]))


def test_five_dimensional_chunks_never_mix_time_points() -> None:
    data = np.arange(4 * 2 * 3 * 8 * 10, dtype=np.float32).reshape(4, 2, 3, 8, 10)
    source = ArraySource(data, kind="image", space=CoordinateSpace.make(data.shape, axes="tczyx"))
    assert source.dimension_names() == ["x", "y", "z", "c^", "t"]
    # factors in NumPy order: every second time point, 2x2 in y and x
    chunk = source.cut_chunk((2, 1, 1, 2, 2), (0, 0, 0, 0, 0), (2, 2, 3, 4, 5))
    expected = data[::2].reshape(2, 2, 3, 4, 2, 5, 2).mean(axis=(4, 6))
    np.testing.assert_allclose(chunk, expected)
    with pytest.raises(ngshow.InvalidRequest, match="channel axis"):
        source.cut_chunk((1, 2, 1, 1, 1), (0, 0, 0, 0, 0), (4, 1, 3, 8, 10))


def test_pyramid_levels_may_not_shrink_time() -> None:
    data = np.zeros((4, 8, 8), np.uint8)
    space = CoordinateSpace.make(data.shape, axes="tyx")
    ArraySource([data, data[:, ::2, ::2]], kind="image", space=space)
    with pytest.raises(InvalidArray, match="shrinks axis 't'"):
        ArraySource([data, data[::2, ::2, ::2]], kind="image", space=space)


def test_two_dimensional_images_get_a_z_axis_one_voxel_thick() -> None:
    data = np.arange(30, dtype=np.uint8).reshape(5, 6)
    source = ArraySource(data, kind="image", space=CoordinateSpace.make(data.shape, scale=(2, 3), units="um"))
    assert source.shape == (1, 5, 6) and source.dimension_names() == ["x", "y", "z"]
    np.testing.assert_array_equal(source.cut_chunk((1, 1, 1), (0, 1, 2), (1, 5, 6)), data[np.newaxis, 1:, 2:])
    timelapse = ArraySource(np.zeros((3, 5, 6), np.uint8), kind="image", space=CoordinateSpace.make((3, 5, 6), axes="tyx"))
    assert timelapse.dimension_names() == ["x", "y", "z", "t"]


def test_uint16_labels_are_guessed_and_uint16_images_are_not() -> None:
    rng = np.random.default_rng(0)
    labels = np.zeros((16, 64, 64), np.uint16)
    for i in range(1, 30):
        z, y, x = rng.integers(0, 56, 3)
        labels[z % 12 : z % 12 + 4, y : y + 8, x : x + 8] = i
    assert guess_kind(labels) == "segmentation"
    image = rng.normal(1000, 200, (16, 64, 64)).astype(np.uint16)
    assert guess_kind(image) == "image"
    assert guess_kind(np.zeros((3, 8, 8, 8), np.uint32)) == "image"  # channels: an image
    assert guess_kind(np.zeros((8, 8, 8), np.uint32)) == "segmentation"


def test_xarray_dims_coordinates_and_units() -> None:
    data = xr.DataArray(
        np.zeros((3, 4, 5), np.uint8), dims=("z", "y", "x"),
        coords={"z": ("z", [10.0, 10.5, 11.0], {"units": "um"}), "x": ("x", np.arange(5) * 0.25, {"units": "um"})},
    )
    viewer = ngshow.Viewer()
    try:
        layer = viewer.add(data)
        axes = layer.source.space.axes
        assert [(a.name, a.scale, a.unit, a.translate) for a in axes] == [
            ("z", 0.5, "um", 10.0), ("y", 1.0, "nm", 0.0), ("x", 0.25, "um", 0.0)
        ]
        uneven = data.assign_coords(x=("x", [0, 1, 2, 4, 8]))
        with pytest.raises(InvalidArray, match="unevenly spaced"):
            viewer.add(uneven)
        lazy = data.chunk({"z": 1})
        served = viewer.add(lazy, name="lazy")
        assert served.source.data is lazy  # never computed whole
    finally:
        ngshow.stop()


def test_tensorstore_passed_straight_to_add(tmp_path: Path) -> None:
    store = ts.open(
        {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(tmp_path / "a.zarr")},
         "schema": {"domain": {"shape": [2, 3, 4], "labels": ["t", "y", "x"]}, "dtype": "uint16",
                    "dimension_units": ["2s", "0.5um", "0.5um"]}},
        create=True,
    ).result()
    store.write(np.arange(24, dtype=np.uint16).reshape(2, 3, 4)).result()
    viewer = ngshow.Viewer()
    try:
        layer = viewer.add(store, kind="image")
        assert layer.source.space.names == ("t", "z", "y", "x")  # a z axis one voxel thick for 2-D
        assert layer.info()["coordinateSpace"]["t"] == [2.0, "s"]
        reply = request(f"{base_url(viewer)}/neuroglancer/raw/{layer.key}/1,1,1,1/0,0,0,1/4,3,1,2")
        assert reply.status == 200
        np.testing.assert_array_equal(np.frombuffer(reply.body, np.uint16).reshape(3, 4), np.arange(12, 24).reshape(3, 4))
    finally:
        ngshow.stop()


def test_meshes_of_a_scaled_transformed_segmentation_sit_on_its_voxels() -> None:
    labels = np.zeros((10, 20, 30), np.uint32)
    labels[2:6, 5:12, 7:25] = 9
    affine = [[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 3.0]]  # swaps z and y, shifts x: the client applies it
    viewer = ngshow.Viewer()
    try:
        layer = viewer.add(labels, kind="segmentation", scale=(2, 0.5, 0.25), units="um", transform=affine)
        tf = layer.state_json()["source"]["transform"]
        body = request(f"{base_url(viewer)}/neuroglancer/mesh/{layer.key}/9").body
        (n,) = struct.unpack_from("<I", body)
        vertices = np.frombuffer(body, np.float32, n * 3, 4).reshape(n, 3)  # metres, (x, y, z) of the source
        voxels = vertices / np.array([0.25e-6, 0.5e-6, 2e-6])  # the client's model coordinates
        np.testing.assert_allclose(voxels.min(axis=0), [7, 5, 2], atol=0.6)
        np.testing.assert_allclose(voxels.max(axis=0), [25, 12, 6], atol=0.6)
        # The same matrix places slices and meshes: apply it to the mesh's corners, as the client does.
        matrix = np.array(tf["matrix"])
        scales = np.array([v[0] for v in tf["outputDimensions"].values()])
        corner = matrix[:, :3] @ (voxels.min(axis=0) * [0.25e-6, 0.5e-6, 2e-6]) / scales + matrix[:, 3]
        expected = layer.source.space.physical((2, 5, 7))  # um, array order (z, y, x)
        np.testing.assert_allclose(corner * scales * 1e6, [expected[2], expected[1], expected[0]], atol=0.3)
    finally:
        ngshow.stop()


def test_the_viewer_says_once_that_1_nm_is_assumed(caplog: pytest.LogCaptureFixture) -> None:
    viewer = ngshow.Viewer()
    try:
        with caplog.at_level(logging.INFO, logger="ngshow"):
            viewer.add(np.zeros((2, 3, 4), np.uint8), name="a")
            viewer.add(np.zeros((2, 3, 4), np.uint8), name="b")
            viewer.add(np.zeros((2, 3, 4), np.uint8), name="c", scale=(1, 1, 1), units="um")
        assert sum("1 nm voxels are assumed" in r.message for r in caplog.records) == 1
    finally:
        ngshow.stop()


def test_positions_and_pointer_coordinates_follow_each_layers_axes() -> None:
    viewer = ngshow.Viewer()
    try:
        fine = viewer.add(np.zeros((4, 8, 16), np.uint8), name="fine", voxel_size=(4, 4, 40))
        movie = viewer.add(
            np.zeros((5, 4, 8, 16), np.uint8), name="movie", axes="tzyx", scale=(2, 0.04, 0.008, 0.008),
            units=("s", "um", "um", "um"), translate=(0, 0, 0, 0.016),
        )
        dims = viewer.dimensions()
        assert dims == {"x": [4e-9, "m"], "y": [4e-9, "m"], "z": [4e-8, "m"], "t": [2.0, "s"]}
        viewer.set_position((3, 1, 2, 5), layer="movie")  # t=3, z=1, y=2, x=5 of the movie
        position = viewer.state.position
        assert position == pytest.approx([(5 * 8 + 16) / 4, 2 * 8 / 4, 1, 3])
        np.testing.assert_allclose(movie.index_at(position, dims), (3, 1, 2, 5))
        np.testing.assert_allclose(fine.index_at(position, dims), (1, 4, 14))
        action = ngshow.ActionState.from_json("a", {"mousePosition": position, "viewerState": {"dimensions": dims}})
        assert action.index_in(movie) == pytest.approx([3, 1, 2, 5])
        with pytest.raises(ngshow.NotFound, match="no array layer"):
            viewer.set_position((0, 0, 0), layer="nope")
    finally:
        ngshow.stop()
