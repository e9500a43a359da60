"""Figures: a tiled screenshot is the single-canvas picture at a higher resolution, without seams."""

from __future__ import annotations

import io
import time
from typing import Any

import numpy as np
import pytest
from PIL import Image

import ngshow
from ngshow import figures
from ngshow.errors import InvalidState

pytestmark = pytest.mark.browser

Image.MAX_IMAGE_PIXELS = None  # our own 24-megapixel figure


def scene(viewer: ngshow.Viewer) -> None:
    z, y, x = np.mgrid[:8, :200, :300].astype(np.float32)
    image = 120 + 100 * np.sin(x / 23.0) * np.cos(y / 17.0) + 0 * z  # smooth: resampling barely changes it
    labels = np.zeros((8, 200, 300), np.uint32)
    labels[:, 20:90, 30:140] = 3
    labels[:, 120:180, 170:280] = 8
    viewer.add(image.astype(np.uint8), name="img", kind="image")
    viewer.add(labels, name="seg", kind="segmentation")
    with viewer.txn() as s:
        s.layout = "xy"
        s.show_axis_lines = s.show_default_annotations = False
        s.show_scale_bar = False
        s.position = [150.0, 100.0, 4.5]
        s.cross_section_scale = 0.5  # 300 voxels over 600 pixels


def pixels(png: bytes) -> np.ndarray[Any, Any]:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.float32)


def test_tiled_6000x4000_equals_the_single_canvas_downscaled(viewer: ngshow.Viewer) -> None:
    scene(viewer)
    single = pixels(viewer.screenshot((600, 400), panels_only=True))
    with viewer.txn() as s:
        s.cross_section_scale = 0.05  # ten times the pixels per voxel
    started = time.monotonic()
    figure = figures.tiled_screenshot(viewer, (6000, 4000))
    big = pixels(figure.png)
    assert big.shape == (4000, 6000, 3) and figure.tiles == (3, 2)
    assert figure.seam_difference < 0.5, "neighbouring tiles disagree where they overlap"
    small = big.reshape(400, 10, 600, 10, 3).mean(axis=(1, 3))
    difference = np.abs(small - single)
    assert difference.mean() < 2.0 and np.percentile(difference, 99) < 40, (difference.mean(), np.percentile(difference, 99))
    assert single.std() > 30  # the picture has content to compare
    print(f"6000x4000 from {figure.tiles} tiles in {time.monotonic() - started:.1f} s")  # noqa: T201
    assert viewer.state.cross_section_scale == 0.05 and viewer.state.position == [150.0, 100.0, 4.5]  # restored


def test_scale_bar_drawn_once_in_the_bottom_left(viewer: ngshow.Viewer) -> None:
    scene(viewer)
    with viewer.txn() as s:
        s.cross_section_scale = 0.25
        s.layers["img"].visible = False  # black background: the bar is the only white
        s.layers["seg"].visible = False
    png = viewer.screenshot((2400, 600), scale_bar={"scale_factor": 2})  # two tiles
    shot = pixels(png)
    white = np.argwhere(shot.min(axis=2) > 200)
    assert len(white) > 200, "no scale bar"
    assert white[:, 1].max() < 600 and white[:, 0].min() > 400  # only in the bottom-left corner
    with pytest.raises(InvalidState, match="unknown scale bar options"):
        viewer.screenshot((400, 300), scale_bar={"colour": "red"})
    with viewer.txn() as s:
        s.layout = "4panel"
    with pytest.raises(InvalidState, match="single 2-D panel"):
        viewer.screenshot((3000, 2000))
    with pytest.raises(InvalidState, match="GiB of memory"):
        viewer.screenshot((10**6, 10**6))
