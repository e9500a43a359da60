"""Segment meshes, made by our C++ mesher on demand, draw in the 3-D view."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ngshow

from ..test_precomputed_serving import write_dataset
from .conftest import BrowserPage

pytestmark = pytest.mark.browser


def test_selected_segment_mesh_draws_in_3d(page: BrowserPage, viewer: ngshow.Viewer) -> None:
    z, y, x = np.ogrid[:24, :40, :48]
    labels = np.zeros((24, 40, 48), np.uint32)
    labels[(z - 12) ** 2 + (y - 20) ** 2 + (x - 24) ** 2 < 10**2] = 7
    labels[:4, :6, :6] = 9  # another object, never selected
    viewer.add(labels, name="seg", kind="segmentation", voxel_size=(4, 4, 4))
    with viewer.txn() as s:
        s.layout = "3d"
        s.json.update(showSlices=False, showAxisLines=False, showScaleBar=False, showDefaultAnnotations=False)
    page.open(viewer.url)

    def coloured() -> int:
        pixels = page.panel_pixels().astype(int)
        return int(((pixels.max(axis=2) - pixels.min(axis=2)) > 60).sum())

    assert coloured() == 0, "nothing is selected: the 3-D view must be empty"
    with viewer.txn() as s:
        s.select_segments("seg", [7])
    page.wait_for_pixels(lambda: coloured() > 2000, "segment 7's mesh did not draw")
    meshes = [p for p in page.problems.http if "/neuroglancer/mesh/" in p]
    assert meshes == [] and page.problems.all() == []


def test_converted_dataset_opens_and_its_meshes_draw(page: BrowserPage, viewer: ngshow.Viewer, tmp_path: Path) -> None:
    write_dataset(tmp_path / "seg")
    viewer.add_precomputed(str(tmp_path / "seg"), name="seg")
    with viewer.txn() as s:
        s.layout = "xy-3d"
        s.position = [16, 16, 8]
        s.cross_section_scale = 0.1  # voxels per pixel: 10 pixels each
        s.json.update(showSlices=False, showAxisLines=False, showScaleBar=False, showDefaultAnnotations=False)
    page.open(viewer.url)

    def coloured(panel: int) -> int:
        pixels = page.panel_pixels(panel).astype(int)
        return int(((pixels.max(axis=2) - pixels.min(axis=2)) > 60).sum())

    assert coloured(0) > 500, "the slice view shows no segments"  # none selected: all are drawn in 2-D
    assert coloured(1) == 0
    with viewer.txn() as s:
        s.select_segments("seg", [5])
    page.wait_for_pixels(lambda: coloured(1) > 1000, "the converted mesh of segment 5 did not draw")
    # The dataset's segment_properties reached the client: segment 5's label is known to the layer.
    page.page.wait_for_function(
        "() => { const m = window.viewer.layerManager.getLayerByName('seg').layer.displayState"
        ".segmentationGroupState.value.segmentPropertyMap.value;"
        " return m !== undefined && JSON.stringify(m.labels).includes('big ball'); }",
        timeout=20_000,
    )
    assert page.problems.all() == []
