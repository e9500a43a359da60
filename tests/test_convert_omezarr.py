"""``ngshow convert`` of OME-Zarr: the file's own levels are the pyramid's scales, read from their
arrays (never recomputed), checked with TensorStore.  The files are written by ome-zarr-py, with a
level 1 that is deliberately *not* the downsampling of level 0, so a recomputed scale would show."""

from __future__ import annotations

import json
import logging
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

import ngshow
from ngshow.convert import plan, run, validate
from ngshow.convert.cli import main as cli_main
from ngshow.sources import downsample

from .conftest import request
from .test_convert import read_scale, tree
from .test_live import live_url

#: (z, y, x) µm per voxel of level 0; level 1 halves y and x, level 2 also halves z.
SCALES = ([2.0, 0.5, 0.5], [2.0, 1.0, 1.0], [4.0, 2.0, 2.0])
SHAPE = (16, 48, 40)


def pyramid(segmentation: bool) -> list[np.ndarray[Any, Any]]:
    """Level 0, then levels of the right shapes filled with marker patterns unlike level 0."""
    z, y, x = np.mgrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    if segmentation:
        level0 = np.where((x - 20) ** 2 + (y - 24) ** 2 < 100, 5, 0).astype(np.uint32)
        level0[4:10, 30:44, 2:12] = 9
    else:
        level0 = ((x + 2 * y + 3 * z) % 200).astype(np.uint16)
    out = [level0]
    for i, scale in enumerate(SCALES[1:], 1):
        shape = tuple(-(-n * s0 // s) for n, s0, s in zip(SHAPE, SCALES[0], scale))
        zz, yy, xx = np.mgrid[: int(shape[0]), : int(shape[1]), : int(shape[2])]
        marker = 1000 * i + (xx * 7 + yy * 3 + zz) % 50  # never a value of level 0
        out.append(marker.astype(level0.dtype))
    return out


def transforms(scales: Any = SCALES) -> list[list[dict[str, Any]]]:
    return [[{"type": "scale", "scale": list(s)}] for s in scales]


def write_image(path: Path, levels: list[np.ndarray[Any, Any]], scales: Any = SCALES) -> Path:
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ome-zarr-py's own deprecation warnings, on import too
        from ome_zarr.writer import write_multiscale

        write_multiscale(levels, root, axes=[{"name": n, "type": "space", "unit": "micrometer"} for n in "zyx"],
                         coordinate_transformations=transforms(scales))
    return path


def write_labelled(path: Path) -> Path:
    """An image (level 0 only matters) with the label image ``cells`` of marker levels."""
    write_image(path, pyramid(segmentation=False))
    root = zarr.open_group(str(path), mode="a")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from ome_zarr.writer import write_multiscale_labels

        write_multiscale_labels(pyramid(segmentation=True), root, "cells",
                                axes=[{"name": n, "type": "space", "unit": "micrometer"} for n in "zyx"],
                                coordinate_transformations=transforms(), label_metadata={"properties": PROPERTIES})
    return path


#: ``image-label`` properties: a string, a number, a key only one label has, a list, a bad entry.
PROPERTIES = [
    {"label-value": 5, "class": "nucleus", "area (pixels)": 1200},
    {"label-value": 9, "class": "cytoplasm", "area (pixels)": 300.5, "tags": ["a", "b"]},
    {"class": "no label-value: skipped"},
]
#: What Neuroglancer gets: ``segment_properties/info``, live and written.
PROPERTIES_INFO = {
    "@type": "neuroglancer_segment_properties",
    "inline": {"ids": ["5", "9"], "properties": [
        {"id": "class", "type": "string", "values": ["nucleus", "cytoplasm"]},
        {"id": "area (pixels)", "type": "number", "data_type": "float32", "values": [1200, 300.5]},
        {"id": "tags", "type": "string", "values": ["", '["a", "b"]']},
    ]},
}


def expected_scales(levels: list[np.ndarray[Any, Any]], count: int, *, mode: bool) -> list[np.ndarray[Any, Any]]:
    """The file's levels, then ones computed from the last by halving x and y (towards isotropy)."""
    out = [lv[np.newaxis] for lv in levels]
    while len(out) < count:
        out.append(downsample(out[-1], (1, 1, 2, 2), mode=mode))
    return out


def check_output(out: Path, levels: list[np.ndarray[Any, Any]], *, mode: bool) -> dict[str, Any]:
    info = json.loads((out / "info").read_text())
    scales = info["scales"]
    for i, scale in enumerate(SCALES):  # µm (z, y, x) -> nm (x, y, z)
        assert scales[i]["resolution"] == [s * 1000 for s in reversed(scale)]
        assert scales[i]["size"] == list(reversed(levels[i].shape))
    assert len(scales) == 4, "one scale below the file's last level, computed (chunks of 8)"
    assert scales[3]["resolution"] == [4000, 4000, 4000]
    for i, want in enumerate(expected_scales(levels, len(scales), mode=mode)):
        got = read_scale(out, i)
        assert got.shape == want.shape, i
        assert np.array_equal(got, want), f"scale {i} is not the file's level {i}"
    assert validate(out) == []
    return info


@pytest.mark.parametrize("sharding", ["off", "on"])
def test_convert_cli_writes_every_file_level_as_a_scale(tmp_path: Path, sharding: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    levels = pyramid(segmentation=False)
    src = write_image(tmp_path / "img.ome.zarr", levels)
    out = tmp_path / "out"
    args = ["convert", str(src), str(out), "--chunk-size", "8", "--executor", "threads", "--no-progress",
            "--sharding", sharding, "--memory-budget", "1"]
    assert cli_main([*args, "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert "(from input level 1)" in dry and "(from input level 2)" in dry and "downsample 4000_4000_4000" in dry
    assert not out.exists()
    assert cli_main(args) == 0
    info = check_output(out, levels, mode=False)
    assert all(("sharding" in s) == (sharding == "on") for s in info["scales"])
    before = tree(out)
    assert cli_main(args) == 0  # resume: everything is there already, nothing changes
    assert "already done" in capsys.readouterr().out
    assert tree(out) == before


def test_plan_of_ngshow_open_reads_labels_levels_and_meshes(tmp_path: Path) -> None:
    levels = pyramid(segmentation=True)
    src = write_labelled(tmp_path / "img.ome.zarr")
    out = tmp_path / "seg"
    opened = ngshow.open(f"{src}/labels/cells")
    assert opened.kind == "segmentation" and len(opened.levels) == 3
    p = plan(opened, out, chunk_size=8, mesh=True, mesh_mip=0, sharding="off")
    with ThreadPoolExecutor(2) as ex:
        run(p, ex, progress=False)
    info = check_output(out, levels, mode=True)
    assert info["type"] == "segmentation" and info["mesh"] == "mesh"
    assert (out / "mesh" / "5.index").is_file() and (out / "mesh" / "9.index").is_file()
    assert info["segment_properties"] == "segment_properties"  # the file's label properties
    assert json.loads((out / "segment_properties" / "info").read_text()) == PROPERTIES_INFO


def test_label_properties_reach_the_viewer_and_the_cli_dataset(tmp_path: Path, viewer: ngshow.Viewer) -> None:
    src = write_labelled(tmp_path / "img.ome.zarr")
    assert ngshow.open(src).labels[0].segment_properties == {
        "ids": [5, 9], "class": ["nucleus", "cytoplasm"], "area (pixels)": [1200, 300.5], "tags": ["", '["a", "b"]'],
    }
    viewer.add(ngshow.open(src))
    layer = viewer.layers["img/cells"]
    url = live_url(viewer, layer)
    assert request(url + "/info").json()["segment_properties"] == "segment_properties"
    assert request(url + "/segment_properties/info").json() == PROPERTIES_INFO
    out = tmp_path / "cli"
    assert cli_main(["convert", f"{src}/labels/cells", str(out), "--executor", "threads", "--no-progress"]) == 0
    assert json.loads((out / "segment_properties" / "info").read_text()) == PROPERTIES_INFO
    table = tmp_path / "mine.json"  # a table given on the command line wins
    table.write_text(json.dumps({"ids": [5], "label": ["mine"]}))
    p = plan(ngshow.open(f"{src}/labels/cells"), tmp_path / "x", segment_properties=json.loads(table.read_text()))
    assert json.loads(p.segment_properties_json or "")["inline"]["properties"][0]["values"] == ["mine"]
    assert plan(ngshow.open(f"{src}/labels/cells"), tmp_path / "y", kind="image").segment_properties_json is None


def test_dask_cluster_writes_the_same_bytes(tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    src = write_image(tmp_path / "img.ome.zarr", pyramid(segmentation=False))
    with ThreadPoolExecutor(2) as ex:
        run(plan(ngshow.open(src), tmp_path / "threads", chunk_size=8), ex, progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        run(plan(ngshow.open(src), tmp_path / "dask", chunk_size=8), client.get_executor(pure=False), progress=False)
    assert tree(tmp_path / "dask") == tree(tmp_path / "threads")
    check_output(tmp_path / "dask", pyramid(segmentation=False), mode=False)


def test_a_level_of_a_non_integer_factor_is_skipped_and_said(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    levels = pyramid(segmentation=False)
    odd = [SCALES[0], [2.0, 0.75, 0.75], SCALES[2]]  # level 1: 1.5 times level 0
    src = write_image(tmp_path / "odd.ome.zarr", [levels[0], levels[0][:, :32, :27], levels[2]], odd)
    with caplog.at_level(logging.WARNING, logger="ngshow"):
        p = plan(ngshow.open(src), tmp_path / "out", chunk_size=8)
    assert "not using level 's1'" in caplog.text and "not an integer multiple" in caplog.text
    assert [s["resolution"] for s in p.info["scales"]][:2] == [[500, 500, 2000], [1000, 1000, 2000]]
    assert not any("from input level" in s.name for s in p.stages), "computed below level 0 instead"
    assert cli_main(["convert", str(src), str(tmp_path / "cli"), "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert "ngshow: warning:" in err and "not using level 's1'" in err and "not an integer multiple" in err


def test_a_list_is_a_pyramid_and_a_level_no_coarser_is_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    levels = pyramid(segmentation=False)
    with ThreadPoolExecutor(2) as ex:
        run(plan(levels[:2], tmp_path / "list", voxel_size=(500, 500, 2000), chunk_size=8), ex, progress=False)
    assert np.array_equal(read_scale(tmp_path / "list", 1), levels[1][np.newaxis])
    with caplog.at_level(logging.WARNING, logger="ngshow"):
        p = plan([levels[0], levels[1], levels[1]], tmp_path / "same", chunk_size=8)
    assert "not using pyramid level 2" in caplog.text and "coarser than the one before" in caplog.text
    assert [s.name.endswith("(from input level 1)") for s in p.stages][:2] == [False, True]
    assert len(plan(levels, tmp_path / "few", chunk_size=8, mip_levels=1).info["scales"]) == 2
