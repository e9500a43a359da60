"""Typed state fields set from Python change what the page shows, with a tab open or before one opens."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import ngshow
from ngshow.state import panel_layout, row_layout

from .conftest import BrowserPage

pytestmark = pytest.mark.browser

SHAPE = (4, 60, 120)  # (z, y, x)


def scene(viewer: ngshow.Viewer) -> None:
    image = np.zeros(SHAPE, np.uint8)
    image[:, 5:25, 10:110] = 200  # a grey band along the top
    labels = np.zeros(SHAPE, np.uint32)
    labels[:, 35:55, 10:50] = 1  # bottom left
    labels[:, 35:55, 70:110] = 2  # bottom right
    # A uniform grey layer below: the client draws the bottom layer of a 2-D view without blending.
    viewer.add(np.full(SHAPE, 100, np.uint8), name="bg", kind="image")
    viewer.add(image, name="img", kind="image")
    viewer.add(labels, name="seg", kind="segmentation")
    with viewer.txn() as s:
        s.layout = "xy"
        s.show_axis_lines = s.show_scale_bar = s.show_default_annotations = False
        s.cross_section_scale = 130 / 780  # the 120-voxel width nearly fills the 800-pixel panel
        s.layers["img"].opacity = 1.0


def regions(page: BrowserPage) -> dict[str, np.ndarray[Any, Any]]:
    """Mean colour of the band and of each segment, sampled inside them."""
    pixels = page.panel_pixels().astype(float)
    h, w = pixels.shape[:2]
    cy, cx = h / 2, w / 2
    ppv = 780 / 130  # pixels per voxel

    def at(y: float, x: float) -> np.ndarray[Any, Any]:
        py, px = int(cy + (y - SHAPE[1] / 2) * ppv), int(cx + (x - SHAPE[2] / 2) * ppv)
        return pixels[py - 15 : py + 15, px - 15 : px + 15].reshape(-1, 3).mean(axis=0)

    return {"band": at(15, 60), "one": at(45, 30), "two": at(45, 90)}


def test_every_typed_field_changes_the_picture(page: BrowserPage, viewer: ngshow.Viewer) -> None:
    scene(viewer)
    with viewer.txn() as s:
        s.layers["seg"].segments = {1, 2}
        s.layers["seg"].colors = {1: "#ff0000", 2: "#0000ff"}
        s.layers["seg"].opacity = 1.0
    page.open(viewer.url)
    first = regions(page)
    assert first["band"] == pytest.approx([200, 200, 200], abs=3)
    assert first["one"] == pytest.approx([255, 0, 0], abs=3) and first["two"] == pytest.approx([0, 0, 255], abs=3)

    def changed(key: str, test: Any) -> dict[str, np.ndarray[Any, Any]]:
        page.wait_for_pixels(lambda: bool(test(regions(page)[key])), f"{key} did not change")
        return regions(page)

    with viewer.txn() as s:  # opacity -> intensity: a quarter of the band over three quarters of grey
        s.layers["img"].opacity = 0.25
    after = changed("band", lambda c: c[0] < 150)
    assert after["band"] == pytest.approx([125, 125, 125], abs=4)

    with viewer.txn() as s:  # a hidden segment loses its colour; the other keeps its own
        s.layers["seg"].hidden_segments = {2}
    after = changed("two", lambda c: c[2] < 150)
    assert after["two"] == pytest.approx([75, 75, 75], abs=4) and after["one"] == pytest.approx([255, 0, 0], abs=3)

    with viewer.txn() as s:  # merged segments share one colour (random colours: none fixed)
        seg = s.layers["seg"]
        seg.colors = {}
        seg.segments = {1, 2}
        seg.merge(1, 2)
    after = changed("two", lambda c: c.max() - c.min() > 30)
    assert after["one"] == pytest.approx(after["two"], abs=3) and after["one"].max() - after["one"].min() > 30

    with viewer.txn() as s:  # layer visibility
        s.layers["seg"].visible = False
    after = changed("one", lambda c: c.max() - c.min() < 5)
    assert after["one"] == pytest.approx([75, 75, 75], abs=4) and after["two"] == pytest.approx(after["one"], abs=2)
    client = page.page.evaluate(
        "() => { const l = window.viewer.layerManager.getLayerByName('seg'); return l.visible; }"
    )
    assert client is False

    # The view fields: what the page itself reports after Python set them.
    with viewer.txn() as s:
        s.layout = row_layout("xy", panel_layout("3d", layers=["seg"]))
        s.projection_orientation = [0.0, 0.0, 0.3826834, 0.9238795]
        s.projection_scale = 123.0
        s.cross_section_orientation = [0.0, 0.3826834, 0.0, 0.9238795]
        s.show_slices = False
        s.show_axis_lines = True
        s.layer_panel = "img"
        s.layers["img"].blend = "additive"
        s.layers["img"].shader_controls = {"x": 1}
    page.page.wait_for_function("() => window.viewer.state.toJSON().layout?.type === 'row'")
    page.settle()
    seen = page.page.evaluate("() => JSON.parse(JSON.stringify(window.viewer.state.toJSON()))")
    assert seen["layout"]["children"][1] == {"type": "viewer", "layout": "3d", "layers": ["seg"]}
    assert seen["projectionOrientation"] == pytest.approx([0, 0, 0.3826834, 0.9238795], abs=1e-6)
    assert seen["crossSectionOrientation"] == pytest.approx([0, 0.3826834, 0, 0.9238795], abs=1e-6)
    assert seen["projectionScale"] == pytest.approx(123.0) and seen["showSlices"] is False
    assert seen["selectedLayer"] == {"visible": True, "layer": "img"}
    img = next(layer for layer in seen["layers"] if layer["name"] == "img")
    assert img["blend"] == "additive" and img["opacity"] == 0.25
    assert page.problems.all() == []


def test_view_set_before_a_tab_opens_equals_the_same_view_set_with_one(
    page: BrowserPage, second_page: BrowserPage, viewer: ngshow.Viewer
) -> None:
    scene(viewer)
    with viewer.txn() as s:  # before any tab: this zoom was once read as metres per pixel
        s.cross_section_scale = 0.5
        s.position = [40.5, 30.5, 1.5]
    page.open(viewer.url)
    zoom = "() => window.viewer.navigationState.zoomFactor.value"
    assert page.page.evaluate(zoom) == pytest.approx(0.5)
    before = page.panel_pixels()
    assert (before.min(axis=2) > 150).sum() > 5000, "the grey band is not drawn at 2 pixels per voxel"
    with viewer.txn() as s:  # now change it and set it back with a tab open
        s.cross_section_scale = 3.0
    page.page.wait_for_function(f"() => Math.abs(({zoom})() - 3) < 1e-6")
    with viewer.txn() as s:
        s.cross_section_scale = 0.5
    page.page.wait_for_function(f"() => Math.abs(({zoom})() - 0.5) < 1e-6")
    page.wait_ready()
    assert np.abs(page.panel_pixels().astype(int) - before).max() <= 2

    # An annotation layer alone opens framed on its annotations, not at the origin.
    other = ngshow.Viewer()
    other.add_annotations("box", [[400, 300, 10]], [[440, 330, 14]], name="roi", color="#ff00ff")
    with other.txn() as s:
        s.layout = "xy"
    second_page.page.goto(other.url)
    second_page.page.wait_for_function("() => window.viewer && window.viewer.isReady()")
    second_page.settle()
    position = second_page.page.evaluate("() => Array.from(window.viewer.navigationState.position.value)")
    assert position == [420.5, 315.5, 12.5]
    pixels = second_page.panel_pixels().astype(int)
    magenta = (pixels[..., 0] > 200) & (pixels[..., 1] < 60) & (pixels[..., 2] > 200)
    assert magenta.sum() > 200, "the box is not in view"
    assert page.problems.all() == [] and second_page.problems.all() == []


def test_a_precomputed_dataset_opens_framed_in_3d(viewer: ngshow.Viewer, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from ngshow import convert

    # 40 voxels: the client's own default zoom (rounded up to 64) would leave the box at 73% of the panel.
    plan = convert.plan(np.full((20, 40, 40), 200, np.uint8), str(tmp_path / "img"), kind="image",
                        voxel_size=(8, 8, 8), chunk_size=16)
    with ThreadPoolExecutor(2) as pool:
        convert.run(plan, pool, progress=False)
    viewer.add_precomputed(str(tmp_path / "img"), name="img")
    with viewer.txn() as s:
        s.layout = "3d"
    shot = np.asarray(Image.open(io.BytesIO(viewer.screenshot((400, 400), panels_only=True))).convert("RGB")).astype(int)
    outline = np.argwhere((shot[..., 0] > 150) & (shot[..., 1] > 150) & (shot[..., 2] < 80))  # the yellow box
    (top, left), (bottom, right) = outline.min(axis=0), outline.max(axis=0)
    assert 0 < left < 60 and 340 < right < 399 and 0 < top < 60 and 340 < bottom < 399  # all of it, filling the panel
