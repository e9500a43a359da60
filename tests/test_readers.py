"""The one opener behind ngshow.open, the CLI, the mesher and convert: OME-Zarr from other writers,
TIFF stacks in natural order, ImageJ hyperstacks, and one syntax for an array inside a file."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import tensorstore as ts
import tifffile
import zarr

import ngshow
from ngshow import convert
from ngshow.convert import open_input
from ngshow.readers import UnreadableFile, group_plane_arguments, open_file

from . import ome_files
from .conftest import request
from .test_cli import run_cli, served
from .test_http import chunk_url, decode


@pytest.fixture(scope="module")
def ome_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ome")
    for writer in ome_files.WRITERS:
        ome_files.write(writer, root / f"{writer.replace(' ', '_')}.ome.zarr")
    return root


def ome_path(root: Path, writer: str) -> str:
    return str(root / f"{writer.replace(' ', '_')}.ome.zarr")


# -- OME-Zarr ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("writer", ome_files.WRITERS)
def test_ome_zarr_levels_scales_channels_and_labels(ome_dir: Path, writer: str, viewer: ngshow.Viewer) -> None:
    opened = ngshow.open(ome_path(ome_dir, writer))
    assert len(opened.levels) == 3
    assert [lv.shape[2:] for lv in opened.levels] == [(64, 64), (32, 32), (16, 16)]
    np.testing.assert_array_equal(np.asarray(opened.levels[0][:, 3]), ome_files.image()[:, 3])
    space = opened.space
    assert space.names == ("c", "z", "y", "x") and space.kinds == ("channel", "space", "space", "space")
    assert [a.base_scale for a in space.axes[1:]] == pytest.approx([2e-6, 0.5e-6, 0.5e-6])
    assert space.axes[0].labels == ("DAPI", "GFP") and not space.assumed
    assert opened.shader is not None and 'color(default="#ff0000")' in opened.shader
    assert "range=[0, 200]" in opened.shader
    (cells,) = opened.labels
    assert cells.kind == "segmentation" and cells.name == "cells"
    assert cells.levels[0][6, 50, 10] == 7 and cells.space.names == ("z", "y", "x")

    layer = viewer.add(opened)
    assert set(viewer.layers) == {layer.name, f"{layer.name}/cells"}
    again = viewer.add(ngshow.open(ome_path(ome_dir, writer)))  # the same file twice: two layers
    assert again.name != layer.name and f"{again.name}/cells" in viewer.layers
    viewer.remove(again.name)
    viewer.remove(f"{again.name}/cells")
    info = layer.info()
    assert info["coordinateSpace"] == {
        "x": [5e-07, "m"], "y": [5e-07, "m"], "z": [2e-06, "m"],
        "c^": {"coordinates": [0, 1], "labels": ["DAPI", "GFP"]},
    }
    assert len(layer.source.levels) == 3 and layer.kind == "image"
    seg = viewer.layers[f"{layer.name}/cells"]
    assert seg.kind == "segmentation" and seg.info()["coordinateSpace"]["z"] == [2e-06, "m"]
    entry = viewer.state.layers[layer.name]
    assert entry["shader"] == opened.shader
    if writer.startswith("ome-zarr-py"):  # it writes image-label colours
        assert viewer.state.layers[f"{layer.name}/cells"]["segmentColors"] == {"7": "#ff00ff"}


def test_a_coarse_chunk_reads_its_own_level(ome_dir: Path, viewer: ngshow.Viewer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Instrument the store: a chunk at factors (4, 4) on y, x reads level 2's files only."""
    from zarr.storage import LocalStore

    read: list[str] = []
    original = LocalStore.get

    async def counting_get(self: Any, key: str, *args: Any, **kwargs: Any) -> Any:
        read.append(key)
        return await original(self, key, *args, **kwargs)

    monkeypatch.setattr(LocalStore, "get", counting_get)
    opened = ngshow.open(ome_path(ome_dir, "ome-zarr-py 0.5"))
    layer = viewer.add(opened)
    for f, level in ((4, 2), (2, 1), (1, 0), (8, 2)):
        read.clear()
        end = (2, 16, 64 // f, 64 // f)
        chunk = decode(request(chunk_url(viewer, layer, (1, 1, f, f), (0, 0, 0, 0), end)), "raw", np.dtype(np.uint8), end)
        assert {k.split("/")[0] for k in read if "/c/" in k} == {f"s{level}"}, (f, sorted(read))
        if f <= 4:  # served as stored, not recomputed from level 0
            np.testing.assert_array_equal(chunk, np.asarray(opened.levels[level][:, :, :, :]))


def test_ome_zarr_over_http_and_named_levels(ome_dir: Path) -> None:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(ome_dir))
    quiet = type("Quiet", (handler.func,), {"log_message": lambda *a: None})  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(quiet, directory=str(ome_dir)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/ome-zarr-py_0.5.ome.zarr"
        opened = ngshow.open(url)
        assert len(opened.levels) == 3 and opened.space.axes[1].scale == 2.0
        local = zarr.open_array(ome_path(ome_dir, "ome-zarr-py 0.5") + "/s1", mode="r")
        np.testing.assert_array_equal(np.asarray(opened.levels[1][:, 2]), local[:, 2])
        assert [c.name for c in opened.labels] == ["cells"]
        cells = ngshow.open(url + "/labels/cells")
        assert cells.kind == "segmentation" and cells.levels[0][6, 50, 10] == 7
    finally:
        server.shutdown()
        server.server_close()


def test_one_level_by_path_is_placed_like_the_image(ome_dir: Path) -> None:
    for writer, level, scale in (("ome-zarr-py 0.4", "s1", [2.0, 1.0, 1.0]), ("ngff-zarr 0.5", "scale2/image", [8.0, 2.0, 2.0])):
        opened = ngshow.open(f"{ome_path(ome_dir, writer)}/{level}")
        assert len(opened.levels) == 1 and [a.scale for a in opened.space.axes[1:]] == scale
        # OME-Zarr places voxel centres; ngshow lines the level's corner up with level 0's.
        assert [a.translate for a in opened.space.axes] == [0.0, 0.0, 0.0, 0.0]
    cells = ngshow.open(ome_path(ome_dir, "ome-zarr-py 0.5") + "/labels/cells/s1")
    assert cells.kind == "segmentation" and cells.shape == (16, 32, 32)


def test_ome_zarr_on_s3(ome_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real S3 endpoint (moto in server mode on 127.0.0.1) read through fsspec."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}.items():
            monkeypatch.setenv(key, value)
        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket="lab")
        local = Path(ome_path(ome_dir, "ngff-zarr 0.4"))
        for file in local.rglob("*"):
            if file.is_file():
                s3.upload_file(str(file), "lab", f"img.ome.zarr/{file.relative_to(local).as_posix()}")
        opened = ngshow.open("s3://lab/img.ome.zarr", storage_options={"endpoint_url": endpoint})
        assert len(opened.levels) == 3 and opened.space.axes[3].unit == "micrometer"
        np.testing.assert_array_equal(np.asarray(opened.levels[0][:, 5]), ome_files.image()[:, 5])
        assert [c.name for c in opened.labels] == ["cells"] and opened.labels[0].levels[0][6, 50, 10] == 7
    finally:
        server.stop()


@pytest.mark.parametrize("writer", ["ome-zarr-py 0.5", "ngff-zarr 0.4"])
def test_ome_zarr_on_gcs(ome_dir: Path, writer: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """gs:// through gcsfs against a real GCS emulator (gcp-storage-emulator, a subprocess on 127.0.0.1),
    found with ``STORAGE_EMULATOR_HOST`` as Google's own clients find one, or given as ``endpoint_url``."""
    import subprocess
    import sys

    from .test_object_stores import _free_port, _wait_listening  # also: no gRPC probing of the emulator

    import gcsfs

    port = _free_port()
    emulator = subprocess.Popen(
        [sys.executable, "-m", "gcp_storage_emulator", "start", "-H", "127.0.0.1", "--port", str(port), "--in-memory", "-q"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port, emulator)
        endpoint = f"http://127.0.0.1:{port}"
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", endpoint)
        monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "ngshow-test")
        gcsfs.GCSFileSystem.clear_instance_cache()
        fs = gcsfs.GCSFileSystem()
        fs.mkdir("lab")
        fs.put(ome_path(ome_dir, writer), "lab/img.ome.zarr", recursive=True)
        for options in (None, {"endpoint_url": endpoint, "token": "anon"}):
            if options is not None:  # no environment: the endpoint named by hand
                monkeypatch.delenv("STORAGE_EMULATOR_HOST")
                gcsfs.GCSFileSystem.clear_instance_cache()
            opened = ngshow.open("gs://lab/img.ome.zarr", storage_options=options)
            assert len(opened.levels) == 3 and opened.shape == ome_files.SHAPE
            assert opened.space.axes[3].unit == "micrometer" and opened.voxel_size == (500, 500, 2000)
            np.testing.assert_array_equal(np.asarray(opened.levels[0][:, 5]), ome_files.image()[:, 5])
            coarse = np.asarray(ngshow.open(ome_path(ome_dir, writer)).levels[2][:])  # the local copy's
            np.testing.assert_array_equal(np.asarray(opened.levels[2][:]), coarse)  # read from the bucket
            assert [c.name for c in opened.labels] == ["cells"] and opened.labels[0].levels[0][6, 50, 10] == 7
        # convert in worker processes, each reading its blocks of each level from the bucket
        out = tmp_path / "out"
        convert.run(convert.plan(opened, out, chunk_size=16), workers=2, progress=False)
        for i, level in enumerate(opened.levels):
            scale = ts.open({"driver": "neuroglancer_precomputed", "kvstore": f"file://{out}", "scale_index": i}).result()
            np.testing.assert_array_equal(np.asarray(scale.read().result()).transpose(3, 2, 1, 0), np.asarray(level[:]))
    finally:
        gcsfs.GCSFileSystem.clear_instance_cache()
        emulator.kill()
        emulator.wait()


def test_time_series_ome_zarr_keeps_every_time_point_at_every_level(tmp_path: Path, viewer: ngshow.Viewer) -> None:
    import warnings

    data = np.zeros((3, 1, 8, 32, 32), np.uint16)
    data[:, 0, 2] = np.arange(3)[:, None, None] + 100
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ome-zarr-py's own deprecation warnings
        from ome_zarr.writer import write_image

        write_image(data, zarr.open_group(str(tmp_path / "t.ome.zarr"), mode="w"), axes="tczyx", scale_factors=(2, 4),
                    scale={"t": 30.0, "z": 1.0, "y": 0.25, "x": 0.25},
                    axes_units={"t": "second", "z": "micrometer", "y": "micrometer", "x": "micrometer"})
    opened = ngshow.open(str(tmp_path / "t.ome.zarr"))
    assert [lv.shape for lv in opened.levels] == [(3, 1, 8, 32, 32), (3, 1, 8, 16, 16), (3, 1, 8, 8, 8)]
    layer = viewer.add(opened)
    assert layer.info()["coordinateSpace"]["t"] == [30.0, "s"] and layer.source.levels[2][1] == (1, 1, 1, 4, 4)
    chunk = layer.source.cut_chunk((1, 1, 1, 4, 4), (2, 0, 2, 0, 0), (3, 1, 3, 8, 8))
    assert chunk.shape == (1, 1, 1, 8, 8) and int(chunk.max()) == 102


def test_plates_are_refused_and_missing_arrays_listed(tmp_path: Path, ome_dir: Path) -> None:
    plate = zarr.open_group(str(tmp_path / "plate.ome.zarr"), mode="w", zarr_format=3)
    plate.attrs["ome"] = {"version": "0.5", "plate": {"wells": [{"path": "A/1", "rowIndex": 0, "columnIndex": 0}]}}
    with pytest.raises(ngshow.InvalidArray, match=r"plate.*plate.ome.zarr/A/1/0"):
        ngshow.open(str(tmp_path / "plate.ome.zarr"))
    with pytest.raises(UnreadableFile, match=r"no array or group 'nope'"):
        ngshow.open(ome_path(ome_dir, "ngff-zarr 0.4") + "/nope")
    result = run_cli(str(tmp_path / "plate.ome.zarr"), "--no-browser")
    assert result.returncode == 2 and result.stderr.strip().startswith("ngshow: error:") and "Traceback" not in result.stderr


# -- TIFF -------------------------------------------------------------------------------------------


def write_planes(folder: Path, n: int = 12) -> None:
    folder.mkdir()
    for i in range(n):
        # Odd planes compressed: read whole; even ones memory-mapped: only the rows asked for.
        tifffile.imwrite(folder / f"p{i}.tif", np.full((20, 24), i * 10, np.uint8), compression="zlib" if i % 2 else None)


def test_tiff_planes_in_natural_order_for_viewer_and_convert(tmp_path: Path, viewer: ngshow.Viewer) -> None:
    write_planes(tmp_path / "stack")
    expected = [i * 10 for i in range(12)]
    shell_order = sorted(str(p) for p in (tmp_path / "stack").glob("*.tif"))  # p0 p1 p10 p11 p2 ...
    assert [Path(p).stem for p in shell_order[:4]] == ["p0", "p1", "p10", "p11"]
    (grouped,) = group_plane_arguments(shell_order)
    assert isinstance(grouped, tuple)
    for opened in (open_file(str(tmp_path / "stack")), open_file(str(tmp_path / "stack" / "p*.tif")),
                   ngshow.readers.open_planes(grouped)):
        assert opened.shape == (12, 20, 24)
        assert list(np.asarray(opened.levels[0][:, 5, 7])) == expected
    layer = viewer.add(open_file(str(tmp_path / "stack")))  # as the browser gets it
    chunk = decode(request(chunk_url(viewer, layer, (1, 1, 1), (0, 0, 0), (12, 20, 24))), "raw", np.dtype(np.uint8), (12, 20, 24))
    assert list(chunk[:, 5, 7]) == expected
    result = run_cli("convert", str(tmp_path / "stack"), str(tmp_path / "out"), "--executor", "threads", "--no-progress")
    assert result.returncode == 0, result.stderr
    store = ts.open({"driver": "neuroglancer_precomputed", "kvstore": {"driver": "file", "path": str(tmp_path / "out")}}).result()
    assert list(np.asarray(store[3, 4, :, 0].read().result())) == expected  # (x, y, z, c)


def test_convert_takes_planes_a_shell_glob_expanded(tmp_path: Path) -> None:
    write_planes(tmp_path / "stack")
    shell_order = sorted(str(p) for p in (tmp_path / "stack").glob("*.tif"))  # what `stack/*.tif` passes
    out = tmp_path / "out"
    result = run_cli("convert", *shell_order, str(out), "--voxel-size", "100,100,500", "--executor", "threads",
                     "--no-progress")
    assert result.returncode == 0, result.stderr
    store = ts.open({"driver": "neuroglancer_precomputed", "kvstore": {"driver": "file", "path": str(out)}}).result()
    assert list(np.asarray(store[3, 4, :, 0].read().result())) == [i * 10 for i in range(12)]  # natural order
    assert json.loads((out / "info").read_text())["scales"][0]["resolution"] == [100, 100, 500]
    np.save(tmp_path / "v.npy", np.zeros((4, 20, 24), np.uint8))
    for args, message in (
        ([*shell_order[:3], str(tmp_path / "v.npy"), str(tmp_path / "o2")], "v.npy is not one"),
        (shell_order, "p9.tif is an existing file; the last argument is the folder"),  # the output forgotten
    ):
        result = run_cli("convert", *args, "--executor", "threads", "--no-progress")
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("ngshow: error:"), result.stderr
        assert message in lines[0]
    assert not (tmp_path / "o2").exists()


def test_tiff_planes_that_differ_are_named(tmp_path: Path) -> None:
    write_planes(tmp_path / "stack", 4)
    tifffile.imwrite(tmp_path / "stack" / "p2.tif", np.zeros((20, 25), np.uint8))
    with pytest.raises(ngshow.InvalidArray, match=r"p2.tif: shape \(20, 25\)"):
        open_file(str(tmp_path / "stack"))
    tifffile.imwrite(tmp_path / "stack" / "p2.tif", np.zeros((20, 24), np.uint16))
    result = run_cli("convert", str(tmp_path / "stack"), str(tmp_path / "out"))
    assert result.returncode != 0 and "p2.tif" in result.stderr and "Traceback" not in result.stderr


def test_imagej_hyperstack_keeps_axes_and_sizes(tmp_path: Path, viewer: ngshow.Viewer) -> None:
    data = (np.arange(3 * 5 * 2 * 16 * 20) % 251).astype(np.uint8).reshape(3, 5, 2, 16, 20)
    tifffile.imwrite(tmp_path / "hyper.tif", data, imagej=True, resolution=(1 / 0.25, 1 / 0.25),
                     metadata={"spacing": 1.5, "unit": "um", "axes": "TZCYX", "finterval": 2.0})
    opened = ngshow.open(str(tmp_path / "hyper.tif"))
    space = opened.space
    assert space.names == ("t", "z", "c", "y", "x")
    assert [a.scale for a in space.axes] == pytest.approx([2.0, 1.5, 1.0, 0.25, 0.25])
    assert [a.unit for a in space.axes] == ["s", "um", "", "um", "um"]
    np.testing.assert_array_equal(opened.levels[0][2, 1:3, 1, 4:9], data[2, 1:3, 1, 4:9])
    layer = viewer.add(opened)
    assert layer.info()["coordinateSpace"] == {
        "x": [0.25e-6, "m"], "y": [0.25e-6, "m"], "c^": [1.0, ""], "z": [1.5e-6, "m"], "t": [2.0, "s"],
    }
    one_time = tmp_path / "one.tif"
    tifffile.imwrite(one_time, data[:1], imagej=True, resolution=(4.0, 4.0),
                     metadata={"spacing": 1.5, "unit": "micron", "axes": "TZCYX"})
    source = open_input(str(one_time))  # convert: (c, z, y, x), sizes in nm
    assert source.shape == (2, 5, 16, 20) and source.voxel_size == pytest.approx((250.0, 250.0, 1500.0))
    np.testing.assert_array_equal(source.read((slice(None), slice(1, 3), slice(0, 16), slice(0, 20))),
                                  data[0, 1:3].transpose(1, 0, 2, 3))
    with pytest.raises(ngshow.InvalidArray, match="axis 't' has 3 entries"):
        open_input(str(tmp_path / "hyper.tif"))


def test_ome_tiff_and_plain_multipage_tiff(tmp_path: Path) -> None:
    data = (np.arange(4 * 2 * 16 * 20) % 251).astype(np.uint16).reshape(4, 2, 16, 20)
    tifffile.imwrite(tmp_path / "img.ome.tif", data, compression="zlib", metadata={
        "axes": "ZCYX", "PhysicalSizeX": 0.2, "PhysicalSizeY": 0.2, "PhysicalSizeZ": 1.0, "Channel": {"Name": ["a", "b"]},
    })
    opened = ngshow.open(str(tmp_path / "img.ome.tif"))
    try:
        assert opened.space.names == ("z", "c", "y", "x") and opened.space.axes[1].labels == ("a", "b")
        assert [a.base_scale for a in opened.space.axes] == pytest.approx([1e-6, 1.0, 0.2e-6, 0.2e-6])
        np.testing.assert_array_equal(opened.levels[0][1:3, 1, 2:9], data[1:3, 1, 2:9])  # compressed: read by page
    finally:
        opened.close()
    tifffile.imwrite(tmp_path / "pages.tif", data[:, 0], photometric="minisblack")  # no metadata: pages are z, sizes unknown
    opened = ngshow.open(str(tmp_path / "pages.tif"))
    assert opened.space.names == ("z", "y", "x") and opened.space.assumed and opened.voxel_size is None


# -- one syntax everywhere ----------------------------------------------------------------------------


@pytest.fixture
def containers(tmp_path: Path) -> tuple[Path, np.ndarray[Any, Any]]:
    labels = np.zeros((12, 14, 16), np.uint32)
    labels[2:9, 3:10, 4:12] = 3
    labels[2:6, 3:6, 13:15] = 8
    with h5py.File(tmp_path / "file.h5", "w") as f:
        f["a/b"] = labels
        f["other"] = np.zeros((4, 4, 4), np.uint8)
    group = zarr.open_group(str(tmp_path / "file.zarr"), mode="w")
    group.create_group("g").create_array("a", data=labels, chunks=(6, 7, 8))
    group.create_array("b", data=np.zeros((4, 4, 4), np.uint8))
    return tmp_path, labels


def test_an_array_inside_a_file_is_named_the_same_everywhere(containers: tuple[Path, np.ndarray[Any, Any]]) -> None:
    root, labels = containers
    specs = [f"{root}/file.h5/a/b", f"{root}/file.h5:/a/b", f"{root}/file.zarr/g/a", f"{root}/file.zarr:/g/a"]
    trees = []
    for i, spec in enumerate(specs):
        opened = open_file(spec)
        np.testing.assert_array_equal(np.asarray(opened.levels[0][:, :, :]), labels)
        opened.close()
        out = root / f"out{i}"
        result = run_cli("convert", spec, str(out), "--segmentation", "--voxel-size", "4,4,40", "--executor", "threads", "--no-progress")
        assert result.returncode == 0, result.stderr
        trees.append(sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and ".ngshow" not in p.parts))
        result = run_cli("mesh", spec, str(root / f"mesh{i}"), "--voxel-size", "4,4,40")
        assert result.returncode == 0, result.stderr
        assert sorted(p.name for p in (root / f"mesh{i}").iterdir()) == ["3.obj", "8.obj"]
    assert all(t == trees[0] for t in trees)
    for spec, says in ((f"{root}/file.h5/nope", "other"), (f"{root}/file.zarr/g/nope", "g/a"), (f"{root}/missing.h5/a", "no such file")):
        for command in ([spec, "--no-browser"], ["convert", spec, str(root / "x")], ["mesh", spec, str(root / "m")]):
            result = run_cli(*command)
            assert result.returncode != 0 and says in result.stderr and "Traceback" not in result.stderr, (command, result.stderr)


def test_cli_shows_ome_zarr_planes_and_inner_arrays(containers: tuple[Path, np.ndarray[Any, Any]], ome_dir: Path) -> None:
    root, _ = containers
    write_planes(root / "stack")
    planes = sorted(str(p) for p in (root / "stack").glob("*.tif"))
    with served(ome_path(ome_dir, "ngff-zarr 0.5"), *planes, "--segmentation", f"{root}/file.h5/a/b",
                "--image", f"{root}/file.zarr/g/a") as lines:
        text = "".join(lines)
        assert request(lines[-1].strip()).status == 200
    assert "ngff-zarr_0.5: image" in text and "3 levels" in text and "z 2 micrometer" in text
    assert "ngff-zarr_0.5/cells: segmentation" in text
    assert "stack: image" in text and "shape (12, 20, 24)" in text and "1 nm assumed" in text
    assert "b: segmentation" in text and "a: image" in text
    assert text.count("shape") == 5, text


def test_metadata_from_hdf5_attributes_and_zarr_dimension_names(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "fiji.h5", "w") as f:
        f["raw"] = np.zeros((4, 5, 6), np.uint8)
        f["raw"].attrs["element_size_um"] = [0.5, 0.1, 0.1]
    space = open_file(str(tmp_path / "fiji.h5/raw")).space
    assert [a.base_scale for a in space.axes] == pytest.approx([0.5e-6, 0.1e-6, 0.1e-6])
    zarr.create_array(str(tmp_path / "named.zarr"), shape=(3, 4, 5), dtype="uint8", dimension_names=["t", "y", "x"])
    space = open_file(str(tmp_path / "named.zarr")).space
    assert space.names == ("t", "y", "x") and space.kinds == ("time", "space", "space")
    assert json.loads((tmp_path / "named.zarr" / "zarr.json").read_text())["dimension_names"] == ["t", "y", "x"]
