"""Python and the browser driving each other: bindings, screenshots, annotations, several tabs."""

from __future__ import annotations

import io
import queue
import threading
from typing import Any

import numpy as np
import pytest
from PIL import Image

import ngshow

from .conftest import BrowserPage
from .test_render import EXPECTED, SHAPE, bright, show_scene

pytestmark = pytest.mark.browser

PIXELS_PER_VOXEL = 800 / (1.6 * SHAPE[2])


def screen_point(page: BrowserPage, voxel_x: float, voxel_y: float) -> tuple[float, float]:
    """Page coordinates of a voxel in the xy view set up by show_scene."""
    box = page.panel_box()
    x = box["x"] + box["width"] / 2 + (voxel_x - SHAPE[2] / 2) * PIXELS_PER_VOXEL
    y = box["y"] + box["height"] / 2 + (voxel_y - SHAPE[1] / 2) * PIXELS_PER_VOXEL
    return x, y


def test_key_binding_sends_voxel_coordinates_and_values(page: BrowserPage, viewer: ngshow.Viewer) -> None:
    show_scene(viewer)
    got: queue.Queue[ngshow.ActionState] = queue.Queue()
    viewer.actions.add("probe", got.put)
    viewer.bind("keyt", "probe")
    page.open(viewer.url)
    page.page.wait_for_function("() => window.viewer.inputEventBindings !== undefined")

    for voxel, expected in (((20.5, 50.5), {"seg": 7, "img": 0}), ((70.5, 15.5), {"img": 255})):
        page.page.mouse.move(*screen_point(page, *voxel))
        page.page.wait_for_timeout(200)  # the pointer's position is sampled on the next frame
        page.page.keyboard.press("t")
        state = got.get(timeout=20)
        assert state.mouse_voxel_coordinates is not None
        x, y, z = state.mouse_voxel_coordinates
        assert abs(x - voxel[0]) < 1 and abs(y - voxel[1]) < 1 and abs(z - SHAPE[0] / 2) < 1
        for layer, value in expected.items():
            assert state.selected_values.get(layer) == value, state.raw
    assert page.problems.all(ignore=EXPECTED) == []


def test_screenshot_equals_what_the_page_shows(page: BrowserPage, viewer: ngshow.Viewer) -> None:
    show_scene(viewer)
    page.open(viewer.url)
    png = viewer.screenshot(timeout=60)
    shot = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    canvas = page.canvas_pixels().astype(int)
    assert shot.shape == canvas.shape
    # Same frame: at most 0.5% of pixels differ by more than 8 levels (overlay text, antialiasing).
    differs = (np.abs(shot - canvas).max(axis=2) > 8).mean()
    assert differs < 0.005, differs
    assert len(bright(shot)) > 500


def test_headless_screenshot_without_a_browser(viewer: ngshow.Viewer, tmp_path: Any) -> None:
    show_scene(viewer, labels=False)
    assert viewer.connected_clients() == 0
    png = ngshow.screenshot(viewer, str(tmp_path / "shot.png"), size=(640, 480))
    assert (tmp_path / "shot.png").read_bytes() == png
    shot = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert shot.shape[:2] == (480, 640)
    white = bright(shot)
    assert len(white) > 300 and white[:, 1].mean() > 320  # the box sits right of centre


def test_annotations_render(page: BrowserPage, viewer: ngshow.Viewer) -> None:
    show_scene(viewer, labels=False)
    viewer.add_annotations(
        "box", [[10, 40, 0]], [[30, 56, SHAPE[0]]], name="roi", color="#ff00ff"
    )
    page.open(viewer.url)
    pixels = page.panel_pixels().astype(int)
    magenta = np.argwhere((pixels[..., 0] > 200) & (pixels[..., 1] < 60) & (pixels[..., 2] > 200))
    assert len(magenta) > 50, "the box outline is not drawn"
    cy, cx = pixels.shape[0] / 2, pixels.shape[1] / 2
    assert magenta[:, 1].mean() < cx and magenta[:, 0].mean() > cy  # bottom left, like its corners
    assert page.problems.all(ignore=EXPECTED) == []


def test_two_tabs_stay_consistent(page: BrowserPage, second_page: BrowserPage, viewer: ngshow.Viewer) -> None:
    show_scene(viewer, image=False)
    page.open(viewer.url)
    second_page.open(viewer.url)
    assert viewer.connected_clients() == 2
    position = "() => Array.from(window.viewer.navigationState.position.value)"

    # Python's edit reaches both tabs.
    with viewer.txn() as s:
        s.position = [11.5, 22.5, 3.5]
    for tab in (page, second_page):
        tab.wait_for_position([11.5, 22.5, 3.5])
    # An edit in tab 1 reaches Python and tab 2; then one in tab 2 reaches tab 1.
    changed = threading.Event()
    viewer.on_state_changed(lambda s: changed.set() if s.position == [40.5, 30.5, 2.5] else None)
    page.page.evaluate("() => { window.viewer.navigationState.position.value = new Float32Array([40.5, 30.5, 2.5]); }")
    second_page.wait_for_position([40.5, 30.5, 2.5])
    assert changed.wait(20)
    second_page.page.evaluate("() => { window.viewer.navigationState.position.value = new Float32Array([5.5, 6.5, 1.5]); }")
    page.wait_for_position([5.5, 6.5, 1.5])
    page.page.wait_for_timeout(500)  # no echo may undo it
    assert page.page.evaluate(position) == second_page.page.evaluate(position) == [5.5, 6.5, 1.5]
    assert viewer.state.position == [5.5, 6.5, 1.5]
    assert page.problems.all(ignore=EXPECTED) == [] and second_page.problems.all(ignore=EXPECTED) == []


def test_a_tab_catches_up_after_the_server_restarts(page: BrowserPage) -> None:
    """A kernel restart: same port, same token; the open tab reconnects and gets the new state."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = "restart-test-token-0123456789"
    ngshow.set_server_bind_address("127.0.0.1", port)
    try:
        first = ngshow.Viewer(token=token)
        show_scene(first, image=False)
        page.open(first.url)
        ngshow.stop()  # the tab loses its event stream and starts retrying
        page.page.wait_for_timeout(500)

        second = ngshow.Viewer(token=token)
        assert second.url == first.url
        show_scene(second, labels=False)
        with second.txn() as s:
            s.position = [12.5, 34.5, 2.5]
        page.page.wait_for_function(
            "() => Math.abs(window.viewer.navigationState.position.value[0] - 12.5) < 1e-3"
            " && window.viewer.layerManager.getLayerByName('img') !== undefined",
            timeout=30_000,
        )
        page.wait_ready()
        assert len(bright(page.panel_pixels())) > 500  # the new server's image is drawn
    finally:
        ngshow.set_server_bind_address()  # back to an OS-chosen port
