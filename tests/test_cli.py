"""The ngshow command and the file readers behind it."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import h5py
import nibabel
import numpy as np
import pytest
import tensorstore as ts
import tifffile
import zarr

from ngshow.readers import UnreadableFile, open_array

from .conftest import interrupt, request

VOLUME = (np.arange(4 * 5 * 6).reshape(4, 5, 6) % 251).astype(np.uint8)


def test_readers_open_every_format_lazily(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", VOLUME)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["grp/vol"] = VOLUME
    zarr.save_array(str(tmp_path / "a.zarr"), VOLUME)
    tifffile.imwrite(tmp_path / "a.tif", VOLUME, photometric="minisblack")
    nibabel.save(nibabel.Nifti1Image(VOLUME.transpose().copy(), np.diag([0.004, 0.005, 0.04, 1])), tmp_path / "a.nii.gz")
    store = ts.open(
        {"driver": "n5", "kvstore": {"driver": "file", "path": str(tmp_path / "a.n5")}},
        create=True, dtype="uint8", shape=VOLUME.shape, chunk_layout=ts.ChunkLayout(chunk_shape=[2, 2, 2]),
    ).result()
    store.write(VOLUME).result()

    for spec in ("a.npy", "a.h5/grp/vol", "a.h5:grp/vol", "a.h5", "a.zarr", "a.tif", "a.nii.gz", "a.n5"):
        opened = open_array(str(tmp_path / spec))
        assert tuple(opened.data.shape) == VOLUME.shape, spec
        np.testing.assert_array_equal(np.asarray(opened.data[1:3, 2:5, 0:4]), VOLUME[1:3, 2:5, 0:4], err_msg=spec)
        if opened.keep_open is not None:
            opened.keep_open.close()
    nifti = open_array(str(tmp_path / "a.nii.gz"))
    assert nifti.voxel_size == pytest.approx((4000, 5000, 40000))  # mm zooms in nm, (x, y, z)


def test_readers_say_what_is_wrong(tmp_path: Path) -> None:
    (tmp_path / "broken.h5").write_bytes(b"not hdf5 at all")
    (tmp_path / "notes.txt").write_text("hello")
    with h5py.File(tmp_path / "two.h5", "w") as f:
        f["a"] = VOLUME
        f["b"] = VOLUME
    cases = {
        "missing.npy": "no such file",
        "notes.txt": "unknown file type",
        "broken.h5": "cannot read it",
        "two.h5": "holds 2 arrays",
        "two.h5/c": "no dataset 'c'",
    }
    for spec, message in cases.items():
        with pytest.raises(UnreadableFile, match=message):
            open_array(str(tmp_path / spec))


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ngshow", *args], capture_output=True, text=True, timeout=120)


def read_until_url(proc: subprocess.Popen[str]) -> list[str]:
    """The lines a running ``ngshow`` prints, up to and including its viewer URL."""
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if re.match(r"http://127\.0\.0\.1:\d+/v/[0-9a-f]{40}/$", line.strip()):
            break
    return lines


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    for args in (["missing.npy"], [str(tmp_path / "notes.txt")], []):
        result = run_cli(*args, "--no-browser")
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.strip().splitlines()[-1].startswith("ngshow: error:")
        assert "Traceback" not in result.stderr
    assert run_cli("a.npy", "--voxel-size", "1,2").returncode == 2


def test_convert_and_mesh_errors_are_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ngshow.cli import main

    (tmp_path / "bad.npy").write_text("not an array")
    np.save(tmp_path / "ok.npy", np.zeros((4, 4, 4), np.uint8))
    out = str(tmp_path / "out")
    cases = [
        ["convert", str(tmp_path / "nope.npy"), out],  # a missing file
        ["convert", str(tmp_path / "bad.npy"), out],  # a file that is not an array
        ["convert", str(tmp_path / "ok.npy"), out, "--executor", "bogus"],
        ["mesh", str(tmp_path / "nope.npy"), out],
        ["mesh", str(tmp_path / "bad.npy"), out],
    ]
    for args in cases:
        capsys.readouterr()
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("ngshow: error: "), (args, err)


@contextlib.contextmanager
def served(*args: str) -> Iterator[list[str]]:
    """Run ``ngshow ARGS --no-browser`` until it prints its URL; yield what it printed; then Ctrl-C it
    and require exit code 0."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ngshow", *args, "--no-browser"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        yield read_until_url(proc)
    finally:
        code = interrupt(proc)
    assert code == 0


def test_cli_serves_files_until_ctrl_c(tmp_path: Path) -> None:
    np.save(tmp_path / "em.npy", VOLUME)
    with h5py.File(tmp_path / "seg.h5", "w") as f:
        f["labels"] = VOLUME.astype(np.uint16)
    with served(str(tmp_path / "em.npy"), "--segmentation", str(tmp_path / "seg.h5/labels"), "--voxel-size", "4,4,40") as lines:
        url = lines[-1].strip()
        assert "labels: segmentation" in "".join(lines) and "em: image (guessed)" in "".join(lines)
        assert request(url).status == 200


def test_cli_axes_scale_and_units_for_arrays_without_metadata(tmp_path: Path) -> None:
    np.save(tmp_path / "movie.npy", np.zeros((6, 2, 4, 8, 8), np.uint8))
    with served(str(tmp_path / "movie.npy"), "--axes", "tczyx", "--scale", "2,1,0.5,0.1,0.1", "--units", "s,,um,um,um") as lines:
        assert "axes t 2 s, c (channel), z 0.5 um, y 0.1 um, x 0.1 um" in "".join(lines)
    for bad, message in [(["--axes", "zyx"], "names 3 axes"), (["--units", "parsec"], "unknown unit"),
                         (["--scale", "1,2"], "scale has 2 values"), (["--scale", "1,1,1,1,1", "--voxel-size", "1,1,1"], "not both")]:
        result = run_cli(str(tmp_path / "movie.npy"), *bad, "--no-browser")
        assert result.returncode == 2 and message in result.stderr.strip().splitlines()[-1], (bad, result.stderr)


def test_precomputed_folders_open_as_pyramids(tmp_path: Path) -> None:
    labels = (np.arange(6 * 8 * 10).reshape(6, 8, 10) // 7).astype(np.uint32)  # (z, y, x)
    coarse = labels[:, ::2, ::2]
    for scale, array, resolution in ((0, labels, [4, 4, 40]), (1, coarse, [8, 8, 40])):
        store = ts.open(
            {
                "driver": "neuroglancer_precomputed",
                "kvstore": {"driver": "file", "path": str(tmp_path / "seg")},
                "multiscale_metadata": {"type": "segmentation", "data_type": "uint32", "num_channels": 1},
                "scale_metadata": {
                    "size": list(array.shape[::-1]), "resolution": resolution, "encoding": "raw",
                    "chunk_size": [4, 4, 4], "voxel_offset": [0, 0, 0],
                },
            },
            create=True,
            open=scale > 0,
        ).result()
        store.write(array.transpose()[..., np.newaxis]).result()
    for spec in (str(tmp_path / "seg"), "precomputed://" + str(tmp_path / "seg")):
        opened = open_array(spec)
        assert opened.kind == "segmentation" and opened.voxel_size == (4, 4, 40)
        assert [tuple(level.shape) for level in opened.data] == [(6, 8, 10), (6, 4, 5)]
        np.testing.assert_array_equal(opened.data[0][1:4, 2:8, 3:9], labels[1:4, 2:8, 3:9])
        np.testing.assert_array_equal(opened.data[1][:, :, :], coarse)


def test_cli_mesh_writes_one_file_per_label(tmp_path: Path) -> None:
    labels = np.zeros((12, 14, 16), np.uint32)
    labels[2:9, 3:10, 4:12] = 3
    labels[2:6, 3:6, 13:15] = 8
    np.save(tmp_path / "labels.npy", labels)
    result = run_cli("mesh", str(tmp_path / "labels.npy"), str(tmp_path / "all"), "--voxel-size", "4,4,40")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == ["3.obj", "8.obj"]
    obj = (tmp_path / "all" / "3.obj").read_text()
    xs = [float(line.split()[1]) for line in obj.splitlines() if line.startswith("v ")]
    assert 4 * 4 - 4 <= min(xs) and max(xs) <= 12 * 4 + 4  # nm, x from voxels 4..12
    result = run_cli("mesh", str(tmp_path / "labels.npy"), str(tmp_path / "one"), "--ids", "8", "--format", "precomputed")
    assert result.returncode == 0 and [p.name for p in (tmp_path / "one").iterdir()] == ["8"]
    missing = run_cli("mesh", str(tmp_path / "labels.npy"), str(tmp_path / "x"), "--ids", "5")
    assert missing.returncode == 2 and "ngshow: error:" in missing.stderr
