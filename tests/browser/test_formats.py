"""Files other tools wrote, as the stock client shows them: OME-Zarr from ome-zarr-py and ngff-zarr."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

import ngshow

from .. import ome_files
from .conftest import BrowserPage

pytestmark = pytest.mark.browser

VOXELS_PER_PIXEL = 1.6 * 64 / 800  # the 64-voxel-wide image fits the panel (canonical voxels: 0.5 µm)


def colour_at(pixels: np.ndarray[Any, Any], x: float, y: float) -> np.ndarray[Any, Any]:
    """Mean colour of a 5x5 patch around data position (x, y) (voxels, 0.5 µm), the view centred on (32, 32)."""
    per_voxel = 1 / VOXELS_PER_PIXEL
    cy, cx = pixels.shape[0] / 2, pixels.shape[1] / 2
    px, py = int(cx + (x - 32) * per_voxel), int(cy + (y - 32) * per_voxel)
    return pixels[py - 2 : py + 3, px - 2 : px + 3].reshape(-1, 3).mean(axis=0)


@pytest.mark.parametrize("writer", ome_files.WRITERS)
def test_ome_zarr_shows_with_its_scales_colours_and_labels(
    page: BrowserPage, viewer: ngshow.Viewer, tmp_path: Path, writer: str
) -> None:
    path = ome_files.write(writer, tmp_path / "img.ome.zarr")
    viewer.add(ngshow.open(str(path)))
    with viewer.txn() as s:
        s.layout = "xy"
        s.json.update(showScaleBar=False, showAxisLines=False, showDefaultAnnotations=False)
        s.position = [32, 32, 8]
        s.cross_section_scale = VOXELS_PER_PIXEL
    page.open(viewer.url)

    space = page.page.evaluate(
        "() => { const s = window.viewer.coordinateSpace.value; return {names: s.names, scales: Array.from(s.scales), units: s.units}; }"
    )
    assert space["names"] == ["x", "y", "z"] and space["units"] == ["m", "m", "m"]
    assert space["scales"] == pytest.approx([0.5e-6, 0.5e-6, 2e-6])
    layers = page.page.evaluate(
        "() => window.viewer.layerManager.managedLayers.map(l => [l.name, l.layer && l.layer.type])"
    )
    assert layers == [["img", "image"], ["img/cells", "segmentation"]]

    def quadrants_right() -> bool:
        pixels = page.panel_pixels()
        yellow, green, red, black = (colour_at(pixels, x, y) for x, y in ((16, 16), (48, 16), (16, 36), (48, 48)))
        return bool(
            yellow[0] > 200 and yellow[1] > 200 and yellow[2] < 60
            and green[1] > 200 and green[0] < 60 and red[0] > 200 and red[1] < 60 and black.max() < 40
        )

    page.wait_for_pixels(quadrants_right, "omero colours: yellow, green, red, black quadrants")
    pixels = page.panel_pixels()
    red, cell = colour_at(pixels, 16, 36), colour_at(pixels, 18, 50)  # label 7 covers x 8-28, y 40-60
    assert np.abs(cell - red).max() > 40, "label image 'cells' is not drawn over the red channel"
    if writer.startswith("ome-zarr-py"):  # its image-label colour: magenta, half over red
        assert cell[0] > 200 and cell[1] < 60 and cell[2] > 80, cell
    assert page.problems.all() == []


def test_imagej_hyperstack_shows_with_its_sizes(page: BrowserPage, viewer: ngshow.Viewer, tmp_path: Path) -> None:
    """TZCYX written by tifffile with spacing, unit and frame interval: x, y 0.25 µm, z 1.5 µm, t 2 s."""
    data = np.zeros((3, 4, 2, 32, 48), np.uint8)  # t, z, c, y, x
    data[:, :, 0, :, :24] = 200  # channel 0 on the left half
    tifffile.imwrite(tmp_path / "hyper.tif", data, imagej=True, resolution=(4.0, 4.0),
                     metadata={"spacing": 1.5, "unit": "um", "axes": "TZCYX", "finterval": 2.0})
    viewer.add(ngshow.open(str(tmp_path / "hyper.tif")), name="hyper")
    with viewer.txn() as s:
        s.layout = "xy"
        s.json.update(showScaleBar=False, showAxisLines=False, showDefaultAnnotations=False)
        s.position = [24, 16, 2, 1]
        s.cross_section_scale = 1.6 * 48 / 800  # canonical voxels (0.25 µm) per pixel
    page.open(viewer.url)
    space = page.page.evaluate(
        "() => { const s = window.viewer.coordinateSpace.value; return {names: s.names, scales: Array.from(s.scales), units: s.units}; }"
    )
    assert space["names"] == ["x", "y", "z", "t"] and space["units"] == ["m", "m", "m", "s"]
    assert space["scales"] == pytest.approx([0.25e-6, 0.25e-6, 1.5e-6, 2.0])

    def left_bright_right_dark() -> bool:
        pixels = page.panel_pixels()
        h, w = pixels.shape[:2]
        left, right = pixels[h // 2, int(w * 0.35)], pixels[h // 2, int(w * 0.65)]
        return bool(left.max() > 150 and right.max() < 40)

    page.wait_for_pixels(left_bright_right_dark, "channel 0 should light the left half only")
    assert page.problems.all() == []


def test_ome_zarr_label_properties_reach_the_client(page: BrowserPage, viewer: ngshow.Viewer, tmp_path: Path) -> None:
    from ..test_convert_omezarr import write_labelled

    viewer.add(ngshow.open(str(write_labelled(tmp_path / "img.ome.zarr"))))
    with viewer.txn() as s:
        s.layout = "xy"
    page.open(viewer.url)
    # The image-label's properties are the layer's segment properties: its string property 'class'.
    page.page.wait_for_function(
        "() => { const l = window.viewer.layerManager.getLayerByName('img/cells');"
        " const m = l && l.layer && l.layer.displayState.segmentationGroupState.value.segmentPropertyMap.value;"
        " if (m === undefined) return false;"
        " const props = m.segmentPropertyMap.inlineProperties.properties;"
        " return props.some(p => p.id === 'class' && p.values.includes('nucleus'))"
        " && props.some(p => p.id === 'area (pixels)'); }",
        timeout=30_000,
    )
    assert page.problems.all() == []
