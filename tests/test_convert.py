"""ngshow.convert: plans, round trips through tensorstore, idempotence, validate, inputs, CLI."""

from __future__ import annotations

import json
import os
import pickle
import re
import struct
from collections.abc import Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import tensorstore as ts

from ngshow import ArraySource
from ngshow.convert import ConvertError, Plan, open_input, plan, run, validate
from ngshow.convert.cli import main as cli_main
from ngshow.convert.plan import mip_steps
from ngshow.mesh import Mesh, mesh_all
from ngshow.sources import downsample


# --- helpers ---------------------------------------------------------------------------------


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> bytes), bookkeeping temporaries excluded."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if not rel.startswith(".ngshow/tmp/"):
                out[rel] = path.read_bytes()
    return out


def read_scale(root: Path, index: int) -> np.ndarray[Any, Any]:
    """Scale ``index`` read by tensorstore's neuroglancer_precomputed driver, as (c, z, y, x)."""
    store = ts.open(
        {"driver": "neuroglancer_precomputed", "kvstore": f"file://{root}", "scale_index": index}
    ).result()
    return np.asarray(store.read().result()).transpose(3, 2, 1, 0)


def pyramid(volume: np.ndarray[Any, Any], p: Plan, *, mode: bool) -> list[np.ndarray[Any, Any]]:
    """The expected scales: each the previous one downsampled (whole-volume, no chunking)."""
    info = p.info
    levels = [volume if volume.ndim == 4 else volume[np.newaxis]]
    for prev, cur in zip(info["scales"], info["scales"][1:]):
        step = [c // q for c, q in zip(cur["resolution"], prev["resolution"])]
        levels.append(downsample(levels[-1], (1, step[2], step[1], step[0]), mode=mode))
    return levels


@pytest.fixture(scope="module")
def pool() -> Iterator[Executor]:
    """One process pool for the module (starting one costs about a second)."""
    from ngshow.convert import default_executor

    ex = default_executor(2)
    yield ex
    ex.shutdown()


def image_volume() -> np.ndarray[Any, Any]:
    z, y, x = np.mgrid[:40, :70, :90]
    rng = np.random.default_rng(1)
    return ((x * 2 + y + 3 * z) % 256 + rng.integers(0, 20, x.shape)).clip(0, 255).astype(np.uint8)


def label_volume() -> np.ndarray[Any, Any]:
    z, y, x = np.mgrid[:48, :64, :80]
    seg = np.zeros(x.shape, np.uint64)
    seg[(x - 30) ** 2 + (y - 30) ** 2 + (z - 24) ** 2 < 20**2] = 7
    seg[(x - 62) ** 2 + (y - 40) ** 2 + (z - 20) ** 2 < 12**2] = 2**40 + 3
    seg[30:46, 2:20, 50:78] = 12
    return seg


# --- round trips -----------------------------------------------------------------------------


def test_image_every_scale_matches_tensorstore(tmp_path: Path, pool: Executor) -> None:
    vol = image_volume()
    p = plan(vol, tmp_path / "img", voxel_size=(4, 4, 40), chunk_size=(32, 32, 16))
    run(p, pool, progress=False)
    info = json.loads((tmp_path / "img" / "info").read_text())
    assert info["type"] == "image" and info["data_type"] == "uint8"
    assert [s["key"] for s in info["scales"]][:3] == ["4_4_40", "8_8_40", "16_16_40"]
    assert all(s["encoding"] == "raw" for s in info["scales"])
    expected = pyramid(vol, p, mode=False)
    assert len(expected) == len(info["scales"]) >= 4
    for i, want in enumerate(expected):
        np.testing.assert_array_equal(read_scale(tmp_path / "img", i), want, err_msg=f"scale {i}")
    assert validate(str(tmp_path / "img"), full=True) == []


def test_segmentation_every_scale_matches_tensorstore(tmp_path: Path, pool: Executor) -> None:
    seg = label_volume()
    p = plan(seg, tmp_path / "seg", kind="segmentation", voxel_size=(8, 8, 8), chunk_size=32)
    run(p, pool, progress=False)
    info = p.info
    assert info["type"] == "segmentation" and info["data_type"] == "uint64"
    assert {s["encoding"] for s in info["scales"]} == {"compressed_segmentation"}
    assert all(s["compressed_segmentation_block_size"] == [8, 8, 8] for s in info["scales"])
    for i, want in enumerate(pyramid(seg, p, mode=True)):
        np.testing.assert_array_equal(read_scale(tmp_path / "seg", i), want, err_msg=f"scale {i}")
    assert validate(str(tmp_path / "seg"), full=True) == []


def test_mode_downsampling_hand_made_case(tmp_path: Path) -> None:
    # x has 3 voxels, so the second block along x is one voxel wide (ceil).
    seg = np.zeros((2, 2, 3), np.uint32)
    seg[:, :, :2] = [[[1, 2], [2, 2]], [[2, 1], [0, 1]]]  # 2 x four, 1 x three, 0 x one
    seg[:, :, 2] = [[5, 3], [3, 5]]  # a tie: the smallest label wins
    p = plan(seg, tmp_path / "m", kind="segmentation", chunk_size=4, mip_levels=1)
    with ThreadPoolExecutor(1) as ex:
        run(p, ex, progress=False)
    assert p.info["scales"][1]["size"] == [2, 1, 1]
    np.testing.assert_array_equal(read_scale(tmp_path / "m", 1), [[[[2, 3]]]])


def test_multichannel_float_raw(tmp_path: Path, pool: Executor) -> None:
    rng = np.random.default_rng(2)
    vol = rng.random((2, 20, 33, 40), dtype=np.float32)
    p = plan(vol, tmp_path / "f", voxel_size=(1, 1, 1), chunk_size=16, mip_levels=2)
    run(p, pool, progress=False)
    assert p.info["num_channels"] == 2 and p.info["data_type"] == "float32"
    for i, want in enumerate(pyramid(vol, p, mode=False)):
        np.testing.assert_array_equal(read_scale(tmp_path / "f", i), want)


def test_jpeg_uint8_image(tmp_path: Path, pool: Executor) -> None:
    vol = image_volume()
    p = plan(vol, tmp_path / "j", voxel_size=(4, 4, 4), chunk_size=32, encoding="jpeg", jpeg_quality=95)
    run(p, pool, progress=False)
    assert {s["encoding"] for s in p.info["scales"]} == {"jpeg"}
    got = read_scale(tmp_path / "j", 0).astype(np.int16)
    assert np.abs(got - vol[np.newaxis]).mean() < 3
    assert validate(str(tmp_path / "j"), full=True) == []


def test_rerun_skips_everything_and_changes_nothing(tmp_path: Path, pool: Executor) -> None:
    p = plan(label_volume(), tmp_path / "s", kind="segmentation", chunk_size=32, mesh=True)
    first = run(p, pool, progress=False)
    before = tree(tmp_path / "s")
    assert all(s.skipped_tasks == 0 for s in first.stages)
    again = run(p, pool, progress=False)
    assert all(s.skipped_tasks == s.tasks and s.written == 0 for s in again.stages)
    assert tree(tmp_path / "s") == before


def test_fused_mips_and_spilled_input_change_no_byte(tmp_path: Path, pool: Executor) -> None:
    """Scale-0 tasks that also write the first mips, reading a spilled copy of the input, write
    exactly what separate stages reading pickled regions write."""
    cases = {
        "seg": (label_volume(), dict(kind="segmentation", voxel_size=(8, 8, 8), chunk_size=16)),
        "img": (image_volume(), dict(voxel_size=(4, 4, 40), chunk_size=(16, 16, 8))),
    }
    for name, (vol, opts) in cases.items():
        fused = plan(vol, tmp_path / f"{name}-fused", min_tasks=2, **opts)  # type: ignore[arg-type]
        first = fused.stages[0].tasks[0]
        assert first.targets, fused.describe()  # type: ignore[attr-defined]
        plain = plan(vol, tmp_path / f"{name}-plain", min_tasks=2, fuse=False, **opts)  # type: ignore[arg-type]
        assert not plain.stages[0].tasks[0].targets  # type: ignore[attr-defined]
        run(fused, pool, progress=False)  # a process pool: the input is spilled
        run(plain, pool, progress=False, spill=False)
        assert tree(tmp_path / f"{name}-fused") == tree(tmp_path / f"{name}-plain")
        assert len(tree(tmp_path / f"{name}-fused")) > 20


def test_spill_folder_is_removed_and_stale_ones_too(tmp_path: Path, pool: Executor) -> None:
    import subprocess
    import sys

    from ngshow.convert.inputs import SPILL_PREFIX

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    root = tmp_path / "spill"
    stale = root / f"{SPILL_PREFIX}{dead.pid}-abc"
    stale.mkdir(parents=True)
    (stale / "0.npy").write_bytes(b"left by a killed run")
    vol = image_volume()
    run(plan(vol, tmp_path / "a", chunk_size=32), pool, progress=False, spill=root)
    with ThreadPoolExecutor(1) as ex:
        run(plan(vol, tmp_path / "b", chunk_size=32), ex, progress=False)
    assert list(root.iterdir()) == []
    assert tree(tmp_path / "a") == tree(tmp_path / "b")


def test_a_different_dataset_is_not_overwritten(tmp_path: Path) -> None:
    with ThreadPoolExecutor(2) as ex:
        run(plan(np.zeros((8, 8, 8), np.uint8), tmp_path / "d", chunk_size=8), ex, progress=False)
        with pytest.raises(ConvertError, match="different dataset"):
            run(plan(np.zeros((8, 8, 9), np.uint8), tmp_path / "d", chunk_size=8), ex, progress=False)


def test_plan_is_pure_picklable_data(tmp_path: Path) -> None:
    p = plan(image_volume(), tmp_path / "never", voxel_size=(4, 4, 40), chunk_size=32)
    assert not (tmp_path / "never").exists()
    assert len(p) == sum(len(s) for s in p.stages) > 0
    again = pickle.loads(pickle.dumps(p))
    assert again.info == p.info and [len(s) for s in again.stages] == [len(s) for s in p.stages]
    with pytest.raises(AttributeError):
        p.stages[0].tasks[0].lo = (1, 1, 1)  # type: ignore[misc]


def test_mip_steps_approach_isotropy() -> None:
    steps = mip_steps((1024, 1024, 64), (4, 4, 40), (64, 64, 64), "auto")
    assert steps[:3] == [(2, 2, 1)] * 3
    assert steps[3] == (2, 2, 2)
    assert mip_steps((100, 100, 100), (8, 8, 8), (64, 64, 64), "auto") == [(2, 2, 2)]
    assert mip_steps((100, 100, 1), (8, 8, 8), (32, 32, 32), "auto") == [(2, 2, 1)] * 2


def test_rejects_encodings_the_data_cannot_take(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="jpeg"):
        plan(np.zeros((8, 8, 8), np.uint16), tmp_path / "x", encoding="jpeg")
    with pytest.raises(ValueError, match="compressed_segmentation"):
        plan(np.zeros((8, 8, 8), np.uint8), tmp_path / "x", kind="segmentation",
             encoding="compressed_segmentation")
    with pytest.raises(ValueError, match="segmentation"):
        plan(np.zeros((8, 8, 8), np.uint8), tmp_path / "x", mesh=True)


# --- inputs and storage ----------------------------------------------------------------------


def test_h5py_memmap_dask_and_array_source_inputs_give_identical_output(tmp_path: Path) -> None:
    import dask.array as da

    vol = image_volume()
    np.save(tmp_path / "v.npy", vol)
    with h5py.File(tmp_path / "v.h5", "w") as f:
        f["em/raw"] = vol
    inputs = {
        "numpy": vol,
        "npy": open_input(str(tmp_path / "v.npy")),
        "h5": open_input(f"{tmp_path / 'v.h5'}:/em/raw"),
        "dask": da.from_array(vol, chunks=(16, 32, 32)),
        "source": ArraySource(vol, kind="image", voxel_size=(4, 4, 40)),
    }
    trees = []
    with ThreadPoolExecutor(2) as ex:
        for name, data in inputs.items():
            run(plan(data, tmp_path / name, voxel_size=(4, 4, 40), chunk_size=32), ex, progress=False)
            trees.append(tree(tmp_path / name))
    assert all(t == trees[0] for t in trees[1:])


def test_fsspec_memory_store(tmp_path: Path) -> None:
    import fsspec

    vol = image_volume()
    with ThreadPoolExecutor(2) as ex:  # memory:// lives in this process only
        run(plan(vol, "memory://ngshow-test/img", chunk_size=32), ex, progress=False)
        run(plan(vol, tmp_path / "img", chunk_size=32), ex, progress=False)
    fs = fsspec.filesystem("memory")
    names = {p.split("/ngshow-test/img/", 1)[1] for p in fs.find("/ngshow-test/img")}
    local = tree(tmp_path / "img")
    assert names == set(local)
    assert all(fs.cat_file(f"/ngshow-test/img/{n}") == local[n] for n in names)
    assert validate("memory://ngshow-test/img", full=True) == []


def test_no_temporary_files_are_left(tmp_path: Path, pool: Executor) -> None:
    run(plan(image_volume(), tmp_path / "t", chunk_size=32), pool, progress=False)
    assert not (tmp_path / "t" / ".ngshow" / "tmp").exists()
    assert not any(".tmp" in n for n in tree(tmp_path / "t"))


# --- meshes ----------------------------------------------------------------------------------


def load_object(root: Path, label: int) -> Mesh:
    """All fragments of ``label`` (through its legacy manifest), welded into one mesh."""
    names = json.loads((root / "mesh" / f"{label}:0").read_bytes())["fragments"]
    vertices, faces, base = [], [], 0
    for name in names:
        data = (root / "mesh" / name).read_bytes()
        (n,) = struct.unpack_from("<I", data)
        vertices.append(np.frombuffer(data, "<f4", 3 * n, 4).reshape(-1, 3))
        faces.append(np.frombuffer(data, "<u4", offset=4 + 12 * n).reshape(-1, 3) + base)
        base += n
    v, f = np.concatenate(vertices), np.concatenate(faces)
    keys, inverse = np.unique(np.round(v * 1024).astype(np.int64), axis=0, return_inverse=True)
    return Mesh((keys / 1024).astype(np.float32), inverse.reshape(-1)[f].astype(np.uint32))


def test_mesh_fragments_join_into_the_whole_volume_mesh(tmp_path: Path, pool: Executor) -> None:
    seg = label_volume()
    p = plan(seg, tmp_path / "m", kind="segmentation", voxel_size=(8, 8, 8), chunk_size=16,
             mesh=True, mesh_mip=0, memory_budget=1 << 20, mesh_format="legacy")
    forge = next(s for s in p.stages if s.name.startswith("mesh forge"))
    assert len(forge) > 4  # several blocks, so seams are exercised
    run(p, pool, progress=False)
    root = tmp_path / "m"
    assert p.info["mesh"] == "mesh"
    assert json.loads((root / "mesh" / "info").read_bytes()) == {"@type": "neuroglancer_legacy_mesh"}
    whole = mesh_all(seg, voxel_size=(8, 8, 8))
    assert sorted(whole) == sorted(
        int(n[:-2]) for n in os.listdir(root / "mesh") if n.endswith(":0")
    )
    for label, want in whole.items():
        got = load_object(root, label)
        assert got.is_watertight(), label
        assert len(got.faces) == len(want.faces)
        assert got.area() == pytest.approx(want.area(), rel=1e-5)
        assert got.volume() == pytest.approx(want.volume(), rel=1e-5)
    assert validate(str(root), full=True) == []


# --- validate --------------------------------------------------------------------------------


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "v"
    p = plan(label_volume(), root, kind="segmentation", voxel_size=(8, 8, 8), chunk_size=32,
             mesh=True, mesh_format="legacy")
    with ThreadPoolExecutor(2) as ex:
        run(p, ex, progress=False)
    assert validate(str(root), full=True) == []
    return root


def test_validate_catches_a_deleted_chunk(dataset: Path) -> None:
    (dataset / "8_8_8" / "32-64_0-32_0-32").unlink()
    problems = validate(str(dataset))
    assert [(p.key, p.message) for p in problems] == [("8_8_8/32-64_0-32_0-32", "missing chunk")]


def test_validate_catches_a_broken_manifest(dataset: Path) -> None:
    (dataset / "mesh" / "7:0").write_text('{"fragments": ["7:0:nowhere"')
    problems = validate(str(dataset))
    assert any(p.key == "mesh/7:0" and "broken manifest" in p.message for p in problems)
    manifest = json.loads((dataset / "mesh" / "12:0").read_text())
    (dataset / "mesh" / "12:0").write_text(json.dumps({"fragments": manifest["fragments"] + ["gone"]}))
    assert any("gone" in p.message for p in validate(str(dataset)))


def test_validate_catches_a_wrong_info(dataset: Path) -> None:
    info = json.loads((dataset / "info").read_text())
    info["scales"][0]["size"] = [80, 64, 50]
    (dataset / "info").write_text(json.dumps(info))
    problems = validate(str(dataset))
    assert any("missing chunk" in p.message for p in problems)
    info["scales"][0]["size"] = [80, 64, 48]
    info["data_type"] = "float64"
    (dataset / "info").write_text(json.dumps(info))
    assert any(p.key == "info" and "data_type" in p.message for p in validate(str(dataset)))


def test_validate_catches_corrupt_chunks_with_full(dataset: Path) -> None:
    (dataset / "8_8_8" / "0-32_0-32_0-32").write_bytes(b"\x01\x02\x03")
    assert validate(str(dataset)) == []  # names and sizes only
    problems = validate(str(dataset), full=True)
    assert [p.key for p in problems] == ["8_8_8/0-32_0-32_0-32"]


def test_validate_reports_a_missing_info(tmp_path: Path) -> None:
    assert [p.key for p in validate(str(tmp_path))] == ["info"]


# --- CLI -------------------------------------------------------------------------------------


def test_cli_convert_then_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "seg.npy", label_volume().astype(np.uint32))
    out = tmp_path / "out"
    code = cli_main(["convert", str(tmp_path / "seg.npy"), str(out), "--segmentation",
                     "--voxel-size", "8,8,8", "--chunk-size", "32", "--mesh",
                     "--executor", "threads", "--workers", "2", "--no-progress"])
    assert code == 0
    assert "mesh merge" in capsys.readouterr().out
    assert cli_main(["validate", str(out), "--full"]) == 0
    (out / "8_8_8" / "0-32_0-32_0-32").unlink()
    assert cli_main(["validate", str(out)]) == 1
    assert "missing chunk" in capsys.readouterr().out


# --- segment properties ----------------------------------------------------------------------

TABLE: dict[str, Any] = {
    "ids": [12, 7, "40"],
    "label": ["soma", "glia", "axon"],
    "description": ["a cell body", "", "long"],
    "tags": [["big"], [], ["odd", "big"]],
    "voxels": [1000, 20, 3],
    "volume_um3": [1.5, 0.25, 3],
    "cell_type": ["pyramidal", "astrocyte", "pyramidal"],
}

EXPECTED_PROPERTIES = {
    "@type": "neuroglancer_segment_properties",
    "inline": {
        "ids": ["12", "7", "40"],
        "properties": [
            {"id": "label", "type": "label", "values": ["soma", "glia", "axon"]},
            {"id": "description", "type": "description", "values": ["a cell body", "", "long"]},
            {"id": "tags", "type": "tags", "tags": ["big", "odd"], "values": [[0], [], [0, 1]]},
            {"id": "voxels", "type": "number", "data_type": "int32", "values": [1000, 20, 3]},
            {"id": "volume_um3", "type": "number", "data_type": "float32",
             "values": [1.5, 0.25, 3]},
            {"id": "cell_type", "type": "string", "values": ["pyramidal", "astrocyte", "pyramidal"]},
        ],
    },
}


def test_segment_properties_are_written_in_neuroglancer_format(
    tmp_path: Path, pool: Executor
) -> None:
    root = tmp_path / "seg"
    table = dict(TABLE, ids=np.array([12, 7, 40], np.uint64))  # NumPy columns work too
    p = plan(label_volume(), root, kind="segmentation", chunk_size=32, segment_properties=table)
    assert pickle.loads(pickle.dumps(p)).segment_properties_json == p.segment_properties_json
    run(p, pool, progress=False)
    assert json.loads((root / "segment_properties" / "info").read_text()) == EXPECTED_PROPERTIES
    assert json.loads((root / "info").read_text())["segment_properties"] == "segment_properties"
    assert validate(str(root), full=True) == []
    # without a table, no reference and no folder
    plain = tmp_path / "plain"
    run(plan(label_volume(), plain, kind="segmentation", chunk_size=32), pool, progress=False)
    assert "segment_properties" not in json.loads((plain / "info").read_text())
    assert not (plain / "segment_properties").exists()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ([1, 2], "must be a mapping of columns"),
        ({"label": ["a"]}, "needs an 'ids' column"),
        ({"ids": "12"}, "must be a list of values"),
        ({"ids": [1.5]}, "ids[0] is 1.5"),
        ({"ids": [-1]}, "is not a uint64"),
        ({"ids": [3, 4, 3]}, "repeat segment 3"),
        ({"ids": [1, 2], "label": ["a"]}, "has 1 values for 2 ids"),
        ({"ids": [1, 2], "size": [1.0, float("nan")]}, "numbers must be finite"),
        ({"ids": [1], "size": [float("inf")]}, "numbers must be finite"),
        ({"ids": [1], "size": [2**40]}, "beyond int32/uint32"),
        ({"ids": [1], "label": [3]}, "label values are strings"),
        ({"ids": [1, 2], "mixed": [1, "a"]}, "only strings, only numbers"),
        ({"ids": [1], "tags": [["two words"]]}, "without spaces"),
        ({"ids": [1], "tags": [["Big", "big"]]}, "case-insensitively"),
        ({"ids": [1], "a": [["x"]], "b": [["y"]]}, "second tags column"),
    ],
)
def test_segment_properties_reject_bad_tables(tmp_path: Path, table: Any, message: str) -> None:
    with pytest.raises(ConvertError, match=re.escape(message)):
        plan(label_volume(), tmp_path / "seg", kind="segmentation", segment_properties=table)


def test_segment_properties_need_a_segmentation(tmp_path: Path) -> None:
    with pytest.raises(ConvertError, match="kind='segmentation'"):
        plan(image_volume(), tmp_path / "img", segment_properties={"ids": [1], "label": ["a"]})


def test_validate_catches_broken_segment_properties(tmp_path: Path, pool: Executor) -> None:
    root = tmp_path / "seg"
    p = plan(label_volume(), root, kind="segmentation", chunk_size=32, segment_properties=TABLE)
    run(p, pool, progress=False)
    key = "segment_properties/info"
    path = root / key

    def problems_after(doc: Any) -> list[tuple[str, str]]:
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
        return [(p.key, p.message) for p in validate(str(root))]

    assert problems_after(EXPECTED_PROPERTIES) == []
    assert problems_after('{"@type": "neuroglancer_segment_properties", ')[0][1].startswith(
        "not valid JSON"
    )
    doc = json.loads(json.dumps(EXPECTED_PROPERTIES))
    doc["inline"]["properties"][3]["values"].pop()
    assert problems_after(doc) == [(key, "property 'voxels': 2 values for 3 ids")]
    doc = json.loads(json.dumps(EXPECTED_PROPERTIES))
    doc["inline"]["ids"][1] = "12"
    assert problems_after(doc) == [(key, "inline ids are not unique")]
    doc = json.loads(json.dumps(EXPECTED_PROPERTIES))
    doc["inline"]["ids"][0] = 12
    assert problems_after(doc) == [(key, "inline ids must be a list of decimal uint64 strings")]
    doc = json.loads(json.dumps(EXPECTED_PROPERTIES))
    del doc["inline"]["properties"][3]["data_type"]
    doc["inline"]["properties"][2]["values"][2] = [1, 0]
    assert problems_after(doc) == [
        (key, "property 'tags': values must be increasing lists of tag indices"),
        (key, "property 'voxels': data_type is None, expected one of "
              "uint8, int8, uint16, int16, uint32, int32, float32"),
    ]
    path.unlink()
    assert [(p.key, p.message) for p in validate(str(root))] == [(key, "missing")]
    info = json.loads((root / "info").read_text())
    (root / "info").write_text(json.dumps(dict(info, segment_properties="/abs")))
    assert [(p.key, p.message) for p in validate(str(root))] == [
        ("info", "segment_properties is '/abs', expected a directory name")
    ]


def test_cli_segment_properties_round_trip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(tmp_path / "seg.npy", label_volume().astype(np.uint32))
    (tmp_path / "props.json").write_text(json.dumps(TABLE))
    out = tmp_path / "out"
    args = ["convert", str(tmp_path / "seg.npy"), str(out), "--segmentation", "--chunk-size", "32",
            "--executor", "threads", "--workers", "2", "--no-progress"]
    assert cli_main([*args, "--segment-properties", str(tmp_path / "props.json")]) == 0
    assert json.loads((out / "segment_properties" / "info").read_text()) == EXPECTED_PROPERTIES
    assert cli_main(["validate", str(out)]) == 0
    capsys.readouterr()
    (tmp_path / "bad.json").write_text(json.dumps({"ids": [1, 2], "label": ["a"]}))
    assert cli_main([*args, "--segment-properties", str(tmp_path / "bad.json")]) == 2
    assert "has 1 values for 2 ids" in capsys.readouterr().err
    assert cli_main([*args, "--segment-properties", str(tmp_path / "nowhere.json")]) == 2
    assert "cannot read segment properties" in capsys.readouterr().err
