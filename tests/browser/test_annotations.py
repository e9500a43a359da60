"""Annotations in the browser: synapses filtered by the selected segment, colours from an rgb property
through the shader, polylines, and a point drawn with the client's own tool coming back to Python."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import pytest

import ngshow

from .conftest import BrowserPage
from .test_interaction import screen_point
from .test_render import EXPECTED, SHAPE, centre_view

pytestmark = pytest.mark.browser

Z = SHAPE[0] / 2  # the plane the xy view shows


def pure(pixels: np.ndarray[Any, Any], colour: tuple[int, int, int]) -> np.ndarray[Any, Any]:
    """Pixels within 60 levels of ``colour`` on every channel: (row, col) pairs."""
    return np.argwhere((np.abs(pixels.astype(int) - np.array(colour)) < 60).all(axis=2))


def synapse_table() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    left = rng.uniform([8, 8], [40, 36], size=(12, 2))  # pre = 7, red
    right = rng.uniform([56, 8], [88, 36], size=(12, 2))  # pre = 9, post = 11, green
    xy = np.concatenate([left, right])
    return pd.DataFrame(
        {
            "x": xy[:, 0], "y": xy[:, 1], "z": np.full(24, Z),
            "pre": [7] * 12 + [9] * 12, "post": [3] * 12 + [11] * 12,
            "color": ["#ff0000"] * 12 + ["#00ff00"] * 12,
        }
    )


def test_synapses_follow_the_selected_segment_with_colours_and_a_polyline(
    page: BrowserPage, viewer: ngshow.Viewer
) -> None:
    viewer.add(np.zeros(SHAPE, np.uint32), name="seg", kind="segmentation")
    viewer.add_annotations(
        synapse_table(), kind="point", position=["x", "y", "z"], properties=["color"], color_by="color",
        relationships={"pre": "pre", "post": "post"}, linked_segmentation="seg", name="synapses",
    )
    path = np.array([[10, 56, Z], [48, 48, Z], [86, 58, Z]])
    viewer.add_annotations(kind="polyline", points=[path], name="path", color="#00ffff")
    centre_view(viewer)
    with viewer.txn() as s:
        s.select_segments("seg", [7])
    page.open(viewer.url)

    def counts() -> tuple[int, int, np.ndarray[Any, Any]]:
        pixels = page.panel_pixels()
        return len(pure(pixels, (255, 0, 0))), len(pure(pixels, (0, 255, 0))), pure(pixels, (0, 255, 255))

    page.wait_for_pixels(lambda: counts()[0] > 100, "synapses of segment 7 are not drawn (in red)")
    red, green, cyan = counts()
    assert green == 0, "synapses of other segments show while segment 7 is selected"
    width = page.panel_pixels().shape[1]
    red_columns = pure(page.panel_pixels(), (255, 0, 0))[:, 1]
    assert red_columns.max() < width / 2  # the pre = 7 synapses sit in the left half
    # The polyline: cyan across the lower part of the view, left to right.
    height = page.panel_pixels().shape[0]
    assert len(cyan) > 100, "the polyline is not drawn"
    assert cyan[:, 0].min() > height / 2 and np.ptp(cyan[:, 1]) > width / 2

    with viewer.txn() as s:
        s.select_segments("seg", [11])  # post of the green ones
    page.wait_for_pixels(lambda: counts()[1] > 100 and counts()[0] == 0, "selecting 11 does not swap the synapses")
    green_columns = pure(page.panel_pixels(), (0, 255, 0))[:, 1]
    assert green_columns.min() > width / 2
    assert page.problems.all(ignore=EXPECTED) == []


def test_a_point_drawn_with_the_client_tool_comes_back(page: BrowserPage, viewer: ngshow.Viewer) -> None:
    viewer.add(np.zeros(SHAPE, np.uint8), name="img", kind="image")
    viewer.add_annotations(kind="point", position=np.zeros((0, 3)), name="drawn")
    centre_view(viewer)
    with viewer.txn() as s:
        s.layers["drawn"]["tool"] = "annotatePoint"
        s.json["selectedLayer"] = {"layer": "drawn", "visible": True}
    page.open(viewer.url)
    page.page.mouse.move(*screen_point(page, 30.5, 20.5))
    page.page.wait_for_timeout(200)  # the pointer position is sampled on the next frame
    page.page.keyboard.down("Control")
    page.page.mouse.down()
    page.page.mouse.up()
    page.page.keyboard.up("Control")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(viewer.state.annotations("drawn")) == 0:
        time.sleep(0.1)
    frame = viewer.state.annotations("drawn")
    assert len(frame) == 1, "the drawn point did not reach Python"
    row = frame.iloc[0]
    assert row["type"] == "point" and row["id"]
    assert abs(row["x"] - 30.5) < 1 and abs(row["y"] - 20.5) < 1 and abs(row["z"] - Z) <= 1
    assert page.problems.all(ignore=EXPECTED) == []


def test_the_stock_client_shows_a_million_precomputed_synapses(
    page: BrowserPage, viewer: ngshow.Viewer, tmp_path: Any
) -> None:
    from ngshow.annotations import colour_shader
    from ngshow.convert.annotations import write_annotations

    n, width, height, depth = 1_000_000, 4000, 3000, 300
    rng = np.random.default_rng(11)
    xyz = rng.uniform([0, 0, 0], [width, height, depth], size=(n, 3))
    pre = rng.integers(8, 5000, n)
    pre[:150] = 7  # segment 7's synapses: in the plane of the view, in the left tenth
    xyz[:150] = np.column_stack([rng.uniform(100, 380, 150), rng.uniform(300, 2700, 150), np.full(150, 150.0)])
    frame = pd.DataFrame({"x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2], "pre": pre, "post": rng.integers(8, 5000, n),
                          "score": rng.random(n).astype(np.float32),
                          "color": np.where(xyz[:, 0] < width / 2, "#ff0000", "#00ff00")})
    out = tmp_path / "synapses"
    write_annotations(frame, out, kind="point", position=["x", "y", "z"], relationships={"pre": "pre", "post": "post"},
                      properties=["score", "color"], voxel_size=(8, 8, 40), workers=2)
    viewer.add(np.zeros((4, 4, 4), np.uint32), name="seg", kind="segmentation", voxel_size=(8, 8, 40))
    viewer.add_precomputed(str(out), name="synapses")
    with viewer.txn() as s:
        s.layers["synapses"]["shader"] = colour_shader("color")  # colours read from the shards
        s.layout = "xy"
        s.json.update(showScaleBar=False, showAxisLines=False, showDefaultAnnotations=False)
        s.position = [width / 2, height / 2, 150.5]
        s.cross_section_scale = 1.1 * width / 800  # voxels per pixel: the whole width fits
    page.open(viewer.url)
    assert page.page.evaluate("() => window.viewer.layerManager.getLayerByName('synapses').layer.type") == "annotation"

    def colours() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        pixels = page.panel_pixels()
        return pure(pixels, (255, 0, 0)), pure(pixels, (0, 255, 0))

    page.wait_for_pixels(lambda: min(len(c) for c in colours()) > 500, "the spatial index's points are not drawn")
    red, green = colours()
    middle = page.panel_pixels().shape[1] / 2
    assert np.median(red[:, 1]) < middle < np.median(green[:, 1])  # colours from the rgb property

    # Filtered by segment 7 of "seg", through the sharded relationship index: only its synapses.
    with viewer.txn() as s:
        s.layers["synapses"].json.update(linkedSegmentationLayer={"pre": "seg"}, filterBySegmentation=["pre"])
        s.select_segments("seg", [7])
    tenth = page.panel_pixels().shape[1] * 0.15
    page.wait_for_pixels(
        lambda: len(colours()[1]) == 0 and len(colours()[0]) > 100, "segment 7's synapses alone are not drawn"
    )
    assert colours()[0][:, 1].max() < tenth
    assert page.problems.all(ignore=EXPECTED) == []
