"""N-D coordinate spaces as the client shows them: time sliders, units, co-registered layers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorstore as ts
import xarray as xr

import ngshow

from .conftest import BrowserPage
from .test_render import bright

pytestmark = pytest.mark.browser


def client_space(page: BrowserPage) -> dict[str, Any]:
    """The global coordinate space the client built: names, scales (base units), units."""
    return page.page.evaluate(  # type: ignore[no-any-return]
        """() => { const s = window.viewer.coordinateSpace.value;
                   return {names: s.names, scales: Array.from(s.scales), units: s.units}; }"""
    )


def xy_view(viewer: ngshow.Viewer, position: list[float], metres_per_pixel: float) -> None:
    with viewer.txn() as s:
        s.layout = "xy"
        s.json.update(showScaleBar=False, showAxisLines=False, showDefaultAnnotations=False)
        s.position = position
        # Once a tab has filled in the global dimensions, the zoom is in units of the first one.
        dimensions = s.json.get("dimensions")
        s.cross_section_scale = metres_per_pixel / (dimensions["x"][0] if dimensions else 1.0)


def yellow(pixels: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    p = pixels.astype(int)
    return np.argwhere((p[..., 0] > 200) & (p[..., 1] > 200) & (p[..., 2] < 60))


def box_of(pixels: np.ndarray[Any, Any], find: Any = bright) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of the bright (or otherwise found) pixels."""
    found = find(pixels)
    assert len(found) > 100, "nothing bright is drawn"
    (y0, x0), (y1, x1) = found.min(axis=0), found.max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)


def test_time_lapse_moves_with_t_and_the_client_shows_a_t_axis(page: BrowserPage, viewer: ngshow.Viewer) -> None:
    t, c, z, y, x = 3, 2, 4, 32, 96
    movie = np.zeros((t, c, z, y, x), np.uint8)
    for i in range(t):
        movie[i, :, :, 8:24, 8 + 32 * i : 24 + 32 * i] = 255  # the box walks right, 32 voxels a frame
    viewer.add(movie, name="movie", axes="tczyx", scale=(2, 1, 1, 1, 1), units=("s", "", "nm", "nm", "nm"))
    xy_view(viewer, [x / 2, y / 2, z / 2, 0.5], 1.4 * x * 1e-9 / 800)
    page.open(viewer.url)

    space = client_space(page)
    assert space["names"] == ["x", "y", "z", "t"], space
    assert space["units"] == ["m", "m", "m", "s"] and space["scales"][3] == 2
    centres = []
    for i in range(t):
        with viewer.txn() as s:
            s.position = [x / 2, y / 2, z / 2, i + 0.5]
        page.wait_for_position([x / 2, y / 2, z / 2, i + 0.5])
        page.wait_ready()
        x0, _, x1, _ = box_of(page.panel_pixels(), yellow)  # both channels bright: red + green
        centres.append((x0 + x1) / 2)
    pixels_per_voxel = 800 / (1.4 * x)
    steps = np.diff(centres)
    assert np.all(np.abs(steps - 32 * pixels_per_voxel) < 4), f"box centres per frame: {centres}"
    assert page.problems.all() == []


def test_layers_of_different_voxel_sizes_offsets_and_transforms_coincide(
    page: BrowserPage, viewer: ngshow.Viewer
) -> None:
    # The same physical object (x 320-640 nm, y 160-320 nm) in three layers placed three ways.
    fine = np.zeros((4, 128, 256), np.uint8)
    fine[:, 40:80, 80:160] = 255  # 4 nm voxels
    coarse = np.zeros((4, 64, 128), np.uint8)
    coarse[:, 10:30, 30:70] = 255  # 8 nm voxels, placed 10 voxels along x and y by offset
    moved = np.zeros((4, 128, 256), np.uint8)
    moved[:, 40:80, 130:210] = 255  # 4 nm voxels, but 200 nm too far right: the transform brings it back
    viewer.add(fine, name="fine", voxel_size=(4, 4, 40))
    viewer.add(coarse, name="coarse", voxel_size=(8, 8, 40), offset=(10, 10, 0))
    affine = np.eye(4)
    affine[2, 3] = -200.0  # x is the last of (z, y, x); nm, the axes' unit
    viewer.add(moved, name="moved", scale=(40, 4, 4), units="nm", transform=affine)
    xy_view(viewer, [128, 64, 2], 1.3 * 1024e-9 / 800)
    page.open(viewer.url)

    boxes = {}
    for name in ("fine", "coarse", "moved"):
        with viewer.txn() as s:
            for layer in s.json["layers"]:
                layer["visible"] = layer["name"] == name
        page.page.wait_for_function(
            f"() => window.viewer.layerManager.managedLayers.filter(l => l.visible).map(l => l.name).join() === {name!r}"
        )
        page.wait_ready()
        boxes[name] = np.array(box_of(page.panel_pixels()))
    assert np.abs(boxes["coarse"] - boxes["fine"]).max() <= 3, boxes
    assert np.abs(boxes["moved"] - boxes["fine"]).max() <= 3, boxes
    assert page.problems.all() == []


def test_xarray_scales_units_and_transposed_dims(page: BrowserPage, viewer: ngshow.Viewer) -> None:
    data = np.zeros((4, 40, 80), np.uint8)
    data[:, 10:20, 20:60] = 255  # 40 x-voxels by 10 y-voxels: wide
    zyx = xr.DataArray(
        data,
        dims=("z", "y", "x"),
        coords={
            "z": ("z", np.arange(4) * 0.5, {"units": "um"}),
            "y": ("y", np.arange(40) * 0.25, {"units": "um"}),
            "x": ("x", np.arange(80) * 0.25, {"units": "um"}),
        },
    )
    viewer.add(zyx, name="zyx")
    xy_view(viewer, [40, 20, 2], 1.3 * 80 * 0.25e-6 / 800)
    page.open(viewer.url)
    space = client_space(page)
    assert space["names"] == ["x", "y", "z"] and space["units"] == ["m", "m", "m"]
    assert np.allclose(space["scales"], [0.25e-6, 0.25e-6, 0.5e-6])
    x0, y0, x1, y1 = box_of(page.panel_pixels())
    assert (x1 - x0) > 3 * (y1 - y0), "the x-elongated box is not wide"

    viewer.remove("zyx")
    viewer.add(zyx.transpose("x", "y", "z"), name="xyz")  # the array's own order is now x, y, z
    xy_view(viewer, [40, 20, 2], 1.3 * 80 * 0.25e-6 / 800)
    page.page.wait_for_function("() => window.viewer.layerManager.managedLayers.map(l => l.name).join() === 'xyz'")
    page.wait_for_pixels(lambda: len(bright(page.panel_pixels())) > 100, "the transposed DataArray is not drawn")
    assert client_space(page)["names"] == ["x", "y", "z"]
    tx0, ty0, tx1, ty1 = box_of(page.panel_pixels())
    assert (tx1 - tx0) > 3 * (ty1 - ty0), "the transposed DataArray does not show x to the right"
    assert abs(tx0 - x0) <= 2 and abs(ty0 - y0) <= 2
    assert page.problems.all() == []


def test_tensorstore_zarr_renders_with_its_dimension_labels(
    page: BrowserPage, viewer: ngshow.Viewer, tmp_path: Path
) -> None:
    store = ts.open(
        {
            "driver": "zarr3",
            "kvstore": {"driver": "file", "path": str(tmp_path / "ts.zarr")},
            "schema": {
                "domain": {"shape": [4, 48, 96], "labels": ["z", "y", "x"]},
                "dtype": "uint8",
                "dimension_units": ["1um", "100nm", "100nm"],
            },
        },
        create=True,
    ).result()
    data = np.zeros((4, 48, 96), np.uint8)
    data[:, 8:24, 60:84] = 255
    store.write(data).result()
    viewer.add(store, name="ts")
    xy_view(viewer, [48, 24, 2], 1.3 * 96 * 100e-9 / 800)
    page.open(viewer.url)
    space = client_space(page)
    assert space["names"] == ["x", "y", "z"]
    assert np.allclose(space["scales"], [100e-9, 100e-9, 1e-6])
    x0, y0, x1, y1 = box_of(page.panel_pixels())
    assert x0 > page.panel_pixels().shape[1] / 2, "the box should be right of centre"
    assert page.problems.all() == []
