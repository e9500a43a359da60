"""What a user sees: NumPy arrays rendered by the bundled client in headless Chromium."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

import ngshow

from .conftest import BrowserPage

pytestmark = pytest.mark.browser

SHAPE = (8, 64, 96)  # (z, y, x): every axis different, so a transposed chunk shows up.
# Problems a test may tolerate in the browser: none.
EXPECTED: tuple[str, ...] = ()


def scene() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    image = np.zeros(SHAPE, np.uint8)
    image[:, 8:24, 60:84] = 255  # bright box: top right, 24 wide and 16 tall
    labels = np.zeros(SHAPE, np.uint32)
    labels[:, 40:60, 8:40] = 7  # label 7: bottom left
    return image, labels


def bright(pixels: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.argwhere(pixels.min(axis=2) > 200)


def saturated(pixels: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    p = pixels.astype(int)
    return np.argwhere(p.max(axis=2) - p.min(axis=2) > 60)


def show_scene(
    viewer: ngshow.Viewer, *, image: bool = True, labels: bool = True
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Add the scene's image ("img") and/or labels ("seg") and centre the xy view on them."""
    image_array, label_array = scene()
    if image:
        viewer.add(image_array, name="img", kind="image")
    if labels:
        viewer.add(label_array, name="seg", kind="segmentation")
    centre_view(viewer)
    return image_array, label_array


def centre_view(viewer: ngshow.Viewer, page_width: int = 800) -> None:
    with viewer.txn() as s:
        s.layout = "xy"
        s.json.update(showScaleBar=False, showAxisLines=False, showDefaultAnnotations=False)
        s.position = [SHAPE[2] / 2, SHAPE[1] / 2, SHAPE[0] / 2]
        s.cross_section_scale = 1.6 * SHAPE[2] / page_width  # voxels per pixel: the whole image fits


def test_image_and_segmentation_render_where_the_data_says(page: BrowserPage, viewer: ngshow.Viewer) -> None:
    image, labels = scene()
    viewer.add(image, name="img", kind="image")
    viewer.add(labels, name="seg", volume_type="segmentation")
    centre_view(viewer)
    page.open(viewer.url)
    pixels = page.panel_pixels()
    cy, cx = pixels.shape[0] / 2, pixels.shape[1] / 2

    white = bright(pixels)
    assert len(white) > 500, "the bright box is not drawn"
    (y0, x0), (y1, x1) = white.min(axis=0), white.max(axis=0)
    # Right of and above the view centre, and wider than tall (24 x 16 voxels): not transposed.
    assert x0 > cx and y1 < cy
    assert 1.3 < (x1 - x0 + 1) / (y1 - y0 + 1) < 1.7
    # Scale check: 24 voxels wide at 1/scale pixels per voxel.
    pixels_per_voxel = 800 / (1.6 * SHAPE[2])
    assert abs((x1 - x0 + 1) - 24 * pixels_per_voxel) < 3

    coloured = saturated(pixels)
    assert len(coloured) > 500, "segment 7 is not coloured"
    sy, sx = coloured.mean(axis=0)
    assert sx < cx and sy > cy, "segment 7 should be bottom left"
    assert page.problems.all(ignore=EXPECTED) == []


def test_browser_and_python_share_state(page: BrowserPage, viewer: ngshow.Viewer) -> None:
    show_scene(viewer, image=False)
    seen: list[set[int]] = []
    selected = threading.Event()

    @viewer.on_state_changed
    def record(state: ngshow.ViewerState) -> None:
        seen.append(state.selected_segments("seg"))
        if 7 in seen[-1]:
            selected.set()

    page.open(viewer.url)
    box = page.panel_box()
    # Double-click on segment 7 (bottom left of the view centre) selects it.
    pixels_per_voxel = 800 / (1.6 * SHAPE[2])
    x = box["x"] + box["width"] / 2 - 20 * pixels_per_voxel
    y = box["y"] + box["height"] / 2 + 18 * pixels_per_voxel
    page.page.mouse.move(x, y)
    page.page.mouse.dblclick(x, y)
    assert selected.wait(20), f"Python never saw segment 7 selected; saw {seen}"
    assert 7 in viewer.state.selected_segments("seg")

    # Python moves the view; the browser follows.
    with viewer.txn() as s:
        s.position = [10.5, 50.5, 3.5]
    page.wait_for_position([10.5, 50.5, 3.5])
    assert page.problems.all(ignore=EXPECTED) == []


def test_reload_shows_changed_array(page: BrowserPage, viewer: ngshow.Viewer) -> None:
    image, _ = show_scene(viewer, labels=False)
    page.open(viewer.url)
    cx = page.panel_pixels().shape[1] / 2
    before = bright(page.panel_pixels())
    assert len(before) > 500 and before[:, 1].min() > cx

    image[:] = 0
    image[:, 40:56, 8:32] = 255  # move the box to the bottom left, in place
    page.page.reload()
    page.wait_ready()
    after = bright(page.panel_pixels())
    assert len(after) > 500 and after[:, 1].max() < cx, "reload still shows the old contents"
    assert page.problems.all(ignore=EXPECTED) == []


def test_invalidate_and_new_data_show_without_reload(page: BrowserPage, viewer: ngshow.Viewer) -> None:
    image, _ = show_scene(viewer, labels=False)
    layer = viewer.layers["img"]
    page.open(viewer.url)
    cx = page.panel_pixels().shape[1] / 2
    assert bright(page.panel_pixels())[:, 1].min() > cx

    image[:] = 0
    image[:, 40:56, 8:32] = 255  # bottom left now
    layer.invalidate()
    page.page.wait_for_function(
        "() => window.viewer.isReady()", timeout=20_000
    )
    def moved_left() -> bool:  # the client debounces the generation change, then refetches
        after = bright(page.panel_pixels())
        return len(after) > 500 and after[:, 1].max() < cx

    page.wait_for_pixels(moved_left, "invalidate() did not refresh the open page", panel_ready=False)
    left_edge = bright(page.panel_pixels())[:, 1].max()

    moved = np.zeros((SHAPE[0], SHAPE[1], SHAPE[2] + 32), np.uint8)  # new shape, box on the far right
    moved[:, 8:24, -24:] = 255
    layer.data = moved
    def moved_right() -> bool:
        now = bright(page.panel_pixels())
        return len(now) > 500 and now[:, 1].min() > left_edge + 100

    page.wait_for_pixels(moved_right, "new data did not show in the open page")
    assert page.problems.all(ignore=EXPECTED) == []
