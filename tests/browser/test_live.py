"""Live precomputed layers in the bundled client: colours, the wire format, refresh, properties, skeletons."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pandas as pd
import pytest

import ngshow

from .conftest import BrowserPage
from .test_render import SHAPE, centre_view, saturated, scene

pytestmark = pytest.mark.browser


def segment_colour(pixels: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    found = saturated(pixels)
    assert len(found) > 500, "no segment is coloured"
    return np.median(pixels[found[:, 0], found[:, 1]].astype(float), axis=0)


def test_live_segmentation_colours_wire_format_and_invalidate(page: BrowserPage, viewer: ngshow.Viewer) -> None:
    _, labels = scene()
    chunks: list[Any] = []
    page.page.context.on("response", lambda r: chunks.append(r) if "/precomputed/" in r.url and "_" in r.url.rsplit("/", 1)[-1] else None)
    python_layer = viewer.add(labels.copy(), name="seg", kind="segmentation", serve_as="python")
    centre_view(viewer)
    page.open(viewer.url)
    expected_colour = segment_colour(page.panel_pixels())  # the client's colour for segment 7 over python://

    layer = viewer.add(labels, name="seg", kind="segmentation")  # replaces it: served live now
    assert layer.live is not None and python_layer.live is None
    page.wait_for_pixels(lambda: len(chunks) > 0 and len(saturated(page.panel_pixels())) > 500, "the live layer is not drawn")
    pixels = page.panel_pixels()
    np.testing.assert_allclose(segment_colour(pixels), expected_colour, atol=6)
    found = saturated(pixels)
    assert found[:, 1].mean() < pixels.shape[1] / 2 and found[:, 0].mean() > pixels.shape[0] / 2, "segment 7 is bottom left"
    # On the wire: compressed_segmentation (one channel: the header word is 1, then block headers).
    body = chunks[0].body()
    assert struct.unpack_from("<I", body)[0] == 1 and len(body) < labels[:1].nbytes

    labels[:] = 0
    labels[:, 5:25, 56:90] = 7  # top right now
    layer.invalidate()

    def moved() -> bool:
        now = saturated(page.panel_pixels())
        return len(now) > 500 and now[:, 1].mean() > page.panel_pixels().shape[1] / 2

    page.wait_for_pixels(moved, "invalidate() did not refresh the open page")
    assert page.problems.all() == []


def test_segment_properties_filter_in_the_client(page: BrowserPage, viewer: ngshow.Viewer) -> None:
    labels = np.zeros(SHAPE, np.uint32)
    for i in range(1, 7):
        labels[:, 10 * i : 10 * i + 8, 10:50] = i
    sizes = pd.DataFrame({"label": [f"cell {i}" for i in range(1, 7)], "size": [100, 250, 400, 550, 700, 850]},
                         index=range(1, 7))
    viewer.add(labels, name="seg", segment_properties=sizes)
    centre_view(viewer)
    with viewer.txn() as s:
        s.json["selectedLayer"] = {"layer": "seg", "visible": True}
        s.json["layers"][0]["tab"] = "segments"
        s.json["layers"][0]["segmentQuery"] = "size>500"
    page.open(viewer.url)

    def listed() -> list[str]:  # the ids in the list (its header row has the same class)
        texts = page.page.evaluate(
            "() => [...document.querySelectorAll('.neuroglancer-segment-list-entry-id')].map(e => e.textContent)"
        )
        return [t for t in texts if t.isdigit()]

    page.page.wait_for_function(
        "() => document.querySelectorAll('.neuroglancer-segment-list-entry-id').length > 0", timeout=30_000
    )
    page.wait_for_pixels(lambda: sorted(set(listed())) == ["4", "5", "6"], f"the query lists {listed()}", panel_ready=False)
    names = page.page.evaluate(
        "() => [...document.querySelectorAll('.neuroglancer-segment-list-entry-name')].map(e => e.textContent)"
    )
    assert "cell 4" in names
    assert page.problems.all() == []


def test_skeletons_draw_with_their_vertex_attributes(page: BrowserPage, viewer: ngshow.Viewer) -> None:
    labels = np.zeros(SHAPE, np.uint32)
    labels[:, 40:60, 8:40] = 7
    # A skeleton far from the segment's voxels, so its pixels can only come from the skeleton.
    skeleton = ngshow.Skeleton(
        vertices=[[56, 10, 4], [90, 10, 4], [90, 30, 4]], edges=[[0, 1], [1, 2]],
        attributes={"radius": np.array([1, 2, 3], np.float32), "strahler": np.array([1, 1, 2], np.uint8)},
    )
    viewer.add(labels, name="seg", skeletons={7: skeleton})
    centre_view(viewer)
    with viewer.txn() as s:
        s.json["layers"][0]["segments"] = ["7"]
        # Colour the skeleton by an attribute: only reachable if the attribute reached the shader.
        s.json["layers"][0]["skeletonRendering"] = {
            "shader": "void main() { emitRGB(strahler > 1.5 ? vec3(0.0, 0.0, 1.0) : vec3(1.0, 0.0, 1.0)); }",
            "mode2d": "lines",
            "lineWidth2d": 4,
        }
    page.open(viewer.url)
    width = page.panel_pixels().shape[1]

    def drawn() -> bool:
        p = page.panel_pixels().astype(int)
        magenta = np.argwhere((p[..., 0] > 180) & (p[..., 2] > 180) & (p[..., 1] < 80))
        blue = np.argwhere((p[..., 2] > 180) & (p[..., 0] < 80) & (p[..., 1] < 80))
        return len(magenta) > 30 and len(blue) > 30 and magenta[:, 1].mean() > width / 2

    page.wait_for_pixels(drawn, "the skeleton (magenta, then blue by its strahler attribute) is not drawn")
    assert page.problems.all() == []
