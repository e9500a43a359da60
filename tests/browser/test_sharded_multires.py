"""A converted sharded dataset with sharded multi-resolution meshes in the stock client: slices
draw from shards, the selected segment's mesh draws, and the level of detail follows the zoom
(the byte ranges the client fetches from the mesh shard are mapped back to levels)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import ngshow
from ngshow.convert.multires import parse_manifest
from ngshow.convert.sharding import ShardingSpec, ShardReader

from ..test_sharded_serving import ball_dataset
from .conftest import BrowserPage

pytestmark = pytest.mark.browser


def _lod_ranges(root: Path, label: int) -> tuple[str, list[tuple[int, int, int]]]:
    """The mesh shard holding ``label`` and its fragments as (start, end, lod) byte ranges."""
    spec = ShardingSpec.from_json(json.loads((root / "mesh" / "info").read_text())["sharding"])
    name = spec.shard_name(spec.shard_and_minishard(label)[0])
    data = (root / "mesh" / name).read_bytes()
    reader = ShardReader(lambda a, b: data[a:b], spec, size=len(data))
    entry = reader.locate(label)
    assert entry is not None
    manifest = parse_manifest(reader.decode(data[entry.start : entry.end]))
    offset = entry.start - manifest.data_size
    out = []
    for lod, sizes in enumerate(manifest.sizes):
        for size in sizes.tolist():
            out.append((offset, offset + size, lod))
            offset += size
    return name, out


def test_sharded_dataset_draws_and_mesh_lod_follows_zoom(page: BrowserPage, viewer: ngshow.Viewer, tmp_path: Path) -> None:
    root = tmp_path / "seg"
    ball_dataset(root)
    shard, fragments = _lod_ranges(root, 5)
    lods = {lod for _, _, lod in fragments}
    assert len(lods) >= 3
    fetched: list[tuple[int, int]] = []

    def on_request(req) -> None:  # type: ignore[no-untyped-def]
        if req.url.endswith(f"/mesh/{shard}"):
            m = re.match(r"bytes=(\d+)-(\d+)", req.headers.get("range", ""))
            if m:
                fetched.append((int(m.group(1)), int(m.group(2)) + 1))

    page.page.on("request", on_request)

    def levels() -> set[int]:
        return {lod for a, b in fetched for s, e, lod in fragments if a <= s and e <= b}

    viewer.add_precomputed(str(root), name="seg")
    with viewer.txn() as s:
        s.layout = "3d"  # (cross-sections draw meshes too, at their own zoom)
        s.position = [48, 40, 32]
        s.json.update(showSlices=False, showAxisLines=False, showScaleBar=False, showDefaultAnnotations=False)
    page.open(viewer.url)
    with viewer.txn() as s:
        # Far away: the ball (56 voxels across) is ~10 pixels high in a view 3000 voxels high.
        s.json["projectionScale"] = 3000
        s.select_segments("seg", [5])

    def coloured(panel: int) -> int:
        pixels = page.panel_pixels(panel).astype(int)
        return int(((pixels.max(axis=2) - pixels.min(axis=2)) > 60).sum())

    page.wait_for_pixels(lambda: coloured(0) > 0 and bool(levels()), "the far mesh did not draw")
    far = levels()
    assert 0 not in far, f"far away the client fetched LOD 0: {sorted(far)}"
    far_bytes = sum(b - a for a, b in fetched)

    with viewer.txn() as s:
        s.json["projectionScale"] = 128  # close: the ball is half the panel's height
    page.wait_for_pixels(lambda: coloured(0) > 20_000 and 0 in levels(), "zooming in fetched no LOD 0")
    near_bytes = sum(b - a for a, b in fetched) - far_bytes
    assert near_bytes > far_bytes, (far_bytes, near_bytes)  # finer levels: more triangles

    # The slice view draws the segmentation from its shards.
    with viewer.txn() as s:
        s.layout = "xy"
    page.wait_for_pixels(lambda: coloured(0) > 2000, "the sharded segmentation did not draw")
    assert page.problems.all() == []
