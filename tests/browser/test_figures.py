"""Figures: a tiled screenshot is the single-canvas picture at a higher resolution, without seams."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import ngshow
from ngshow import figures
from ngshow.errors import InvalidState

pytestmark = pytest.mark.browser

Image.MAX_IMAGE_PIXELS = None  # our own 24-megapixel figure


def scene(viewer: ngshow.Viewer, labels: bool = True) -> None:
    z, y, x = np.mgrid[:8, :200, :300].astype(np.float32)
    image = 120 + 100 * np.sin(x / 23.0) * np.cos(y / 17.0) + 0 * z  # smooth: resampling barely changes it
    viewer.add(image.astype(np.uint8), name="img", kind="image")
    if labels:
        segments = np.zeros((8, 200, 300), np.uint32)
        segments[:, 20:90, 30:140] = 3
        segments[:, 120:180, 170:280] = 8
        viewer.add(segments, name="seg", kind="segmentation")
    with viewer.txn() as s:
        s.layout = "xy"
        s.show_axis_lines = s.show_default_annotations = False
        s.show_scale_bar = False
        s.position = [150.0, 100.0, 4.5]
        s.cross_section_scale = 0.5  # 300 voxels over 600 pixels


def pixels(png: bytes) -> np.ndarray[Any, Any]:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.float32)


@pytest.mark.timeout(900)  # 24 megapixels through software WebGL: minutes on a busy 2-core machine
def test_tiled_6000x4000_equals_the_single_canvas_downscaled(viewer: ngshow.Viewer) -> None:
    scene(viewer, labels=False)  # one layer: half the drawing
    single = pixels(viewer.screenshot((600, 400), panels_only=True))
    with viewer.txn() as s:
        s.cross_section_scale = 0.05  # ten times the pixels per voxel
    started = time.monotonic()
    figure = figures.tiled_screenshot(viewer, (6000, 4000), timeout=600)  # per tile, for a loaded machine
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
    scene(viewer, labels=False)
    with viewer.txn() as s:
        s.cross_section_scale = 0.25
        s.layers["img"].visible = False  # black background: the bar is the only white
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


def read_movie(path: Path) -> tuple[tuple[int, int], list[np.ndarray[Any, Any]]]:
    """Frame size and frames (float RGB) of a movie, decoded by the ffmpeg imageio-ffmpeg ships (its own
    frame reader leaves pipes open)."""
    import re
    import subprocess

    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    probe = subprocess.run([ffmpeg, "-hide_banner", "-i", str(path)], capture_output=True, text=True, timeout=60)
    found = re.search(r"Video: .*?, (\d+)x(\d+)", probe.stderr)
    assert found, probe.stderr
    width, height = int(found[1]), int(found[2])
    raw = subprocess.run(
        [ffmpeg, "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, timeout=60, check=True,
    ).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3).astype(np.float32)
    return (width, height), list(frames)


def test_three_keyframe_movie(viewer: ngshow.Viewer, tmp_path: Path) -> None:
    scene(viewer)
    start = viewer.state.json
    middle = {**start, "position": [60.0, 100.0, 4.5], "crossSectionScale": 0.25}
    keyframes = [{"state": start, "duration": 0.5}, {"state": middle, "duration": 0.5}, {"state": start}]
    out = tmp_path / "tour.mp4"
    assert viewer.record(keyframes, out, fps=4, size=(320, 240), progress=False) == 5
    size, frames = read_movie(out)  # ffmpeg, not us, reads the file back
    assert size == (320, 240) and len(frames) == 5

    def differs(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> float:
        return float(np.abs(a - b).mean())

    assert differs(frames[0], frames[4]) < 2  # the tour returns where it began
    assert differs(frames[2], frames[0]) > 10 and differs(frames[2], frames[4]) > 10
    assert differs(frames[1], frames[0]) > 3 and differs(frames[1], frames[2]) > 3  # in between: interpolated
    assert viewer.state.json == start  # the viewer is back on its own view


def test_cli_movie_renders_files_with_keyframes(tmp_path: Path) -> None:
    import subprocess
    import sys

    volume = np.zeros((4, 32, 48), np.uint8)
    volume[:, 4:12, 30:44] = 255
    np.save(tmp_path / "v.npy", volume)
    view = {"layout": "xy", "position": [37, 8, 2], "crossSectionScale": 0.25,
            "layers": [{"type": "image", "name": "v", "source": "python://volume/old.key"}]}
    keyframes = {"fps": 2, "size": [160, 120], "keyframes": [
        {"state": view, "duration": 1}, {"state": {**view, "crossSectionScale": 0.1}}]}
    (tmp_path / "k.json").write_text(json.dumps(keyframes))
    result = subprocess.run(
        [sys.executable, "-m", "ngshow", "movie", str(tmp_path / "k.json"), str(tmp_path / "m.mp4"),
         str(tmp_path / "v.npy"), "--no-progress"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "wrote 3 frames" in result.stdout
    size, frames = read_movie(tmp_path / "m.mp4")
    assert size == (160, 120) and len(frames) == 3
    bright = [int((f.min(axis=2) > 200).sum()) for f in frames]
    assert 0 < bright[0] < bright[1] < bright[2]  # zooming in: the bright box grows


def test_cli_screenshot_beyond_the_canvas_limit(tmp_path: Path) -> None:
    import subprocess
    import sys

    volume = np.zeros((4, 32, 48), np.uint8)
    volume[:, 4:12, 30:44] = 255
    np.save(tmp_path / "v.npy", volume)
    result = subprocess.run(
        [sys.executable, "-m", "ngshow", str(tmp_path / "v.npy"), "--screenshot", str(tmp_path / "big.png"),
         "--size", "2400x300"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    shot = pixels((tmp_path / "big.png").read_bytes())
    assert shot.shape == (300, 2400, 3)
    white = np.argwhere(shot.min(axis=2) > 200)
    box, bar = white[white[:, 1] > 600], white[white[:, 1] <= 600]
    assert len(box) > 1000 and box[:, 1].mean() > 1200  # the box, right of centre
    assert len(bar) > 100 and bar[:, 0].min() > 200  # and the scale bar, once, bottom left
