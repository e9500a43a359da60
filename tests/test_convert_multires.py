"""Multi-resolution meshes (``neuroglancer_multilod_draco``), sharded and unsharded: read by
cloud-volume, LOD 0 watertight and within a voxel of each label, every LOD within its error bound,
validate catching broken manifests and fragments, ``--mesh-format legacy``."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import DracoPy
import numpy as np
import pytest
from scipy.spatial import cKDTree

from ngshow.convert import plan, run, validate
from ngshow.convert.multires import LOD0_ERROR_VOXELS, parse_manifest, split_on_grid, weld, zorder
from ngshow.convert.sharding import ShardingSpec, ShardReader
from ngshow.mesh import Mesh, mesh_all

from .test_convert import label_volume

VOXEL = (8.0, 8.0, 8.0)


@pytest.fixture(scope="module", params=["off", "on"])
def dataset(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:  # type: ignore[type-arg]
    root = tmp_path_factory.mktemp("multires") / f"seg-{request.param}"
    seg = label_volume()
    p = plan(seg, root, kind="segmentation", voxel_size=VOXEL, chunk_size=16, mesh=True,
             mesh_mip=0, memory_budget=1 << 20, sharding=request.param)
    assert len(next(s for s in p.stages if s.name.startswith("mesh forge"))) > 4  # seams
    with ThreadPoolExecutor(2) as ex:
        run(p, ex, progress=False)
    return root, seg


def _objects(root: Path) -> dict[int, tuple[bytes, bytes]]:
    """label -> (manifest, fragment data), read from the files or the shards."""
    info = json.loads((root / "mesh" / "info").read_text())
    out = {}
    if "sharding" not in info:
        for f in (root / "mesh").glob("*.index"):
            out[int(f.stem)] = (f.read_bytes(), (root / "mesh" / f.stem).read_bytes())
        return out
    spec = ShardingSpec.from_json(info["sharding"])
    for f in (root / "mesh").glob("*.shard"):
        data = f.read_bytes()
        reader = ShardReader(lambda a, b: data[a:b], spec, size=len(data))
        for e in reader.entries():
            manifest = reader.decode(data[e.start : e.end])
            size = parse_manifest(manifest).data_size
            out[e.key] = (manifest, data[e.start - size : e.start])
    return out


def _lods(manifest: bytes, data: bytes, bits: int = 16, *, quantized: bool = False) -> list[list[np.ndarray[Any, Any]]]:
    """Per LOD, the triangles (t, 3, 3) of each fragment: in nm, dequantized as the client does,
    or as the stored integers."""
    m = parse_manifest(manifest)
    top = (1 << bits) - 1
    offset, out = 0, []
    for lod, (positions, sizes) in enumerate(zip(m.positions, m.sizes)):
        cell = np.asarray(m.chunk_shape) * (1 << lod)
        frags = []
        for pos, size in zip(positions, sizes.tolist()):
            mesh = DracoPy.decode(data[offset : offset + size])
            offset += size
            pts = np.asarray(mesh.points, np.float64).reshape(-1, 3)
            nm = np.asarray(m.grid_origin) + cell * (pos + pts / top) + m.vertex_offsets[lod]
            frags.append((pts if quantized else nm)[np.asarray(mesh.faces, np.int64).reshape(-1, 3)])
        out.append(frags)
    assert offset == len(data)
    return out


def _welded(triangles: list[np.ndarray[Any, Any]], quantum: float) -> Mesh:
    t = np.concatenate(triangles).reshape(-1, 3)
    faces = np.arange(len(t), dtype=np.uint32).reshape(-1, 3)
    v, f = weld([(t.astype(np.float32), faces)], quantum)
    return Mesh(v, f)


def test_cloudvolume_reads_the_meshes_within_a_voxel_of_each_label(dataset: tuple[Path, np.ndarray]) -> None:  # type: ignore[type-arg]
    from cloudvolume import CloudVolume

    root, seg = dataset
    cv = CloudVolume(f"file://{root}", progress=False)
    labels = [int(v) for v in np.unique(seg) if v]
    assert sorted(_objects(root)) == labels
    for label in labels:
        got = cv.mesh.get(label)
        got = got[label] if isinstance(got, dict) else got
        z, y, x = np.nonzero(seg == label)
        lo = np.array([x.min(), y.min(), z.min()]) * VOXEL
        hi = (np.array([x.max(), y.max(), z.max()]) + 1) * VOXEL
        np.testing.assert_allclose(got.vertices.min(axis=0), lo, atol=VOXEL[0])
        np.testing.assert_allclose(got.vertices.max(axis=0), hi, atol=VOXEL[0])
        assert len(got.faces) > 100


def test_lod0_is_watertight_and_each_lod_within_its_error_bound(dataset: tuple[Path, np.ndarray]) -> None:  # type: ignore[type-arg]
    root, seg = dataset
    for label, (manifest, data) in _objects(root).items():
        m = parse_manifest(manifest)
        lods = _lods(manifest, data)
        assert len(lods) >= 2, label
        step = min(m.chunk_shape) / ((1 << 16) - 1)
        lod0 = _welded(lods[0], step / 2)
        assert lod0.is_watertight(), label
        # The same object meshed whole, before any forge block, has the same volume.
        whole = mesh_all(seg, voxel_size=VOXEL)[label]
        assert lod0.volume() == pytest.approx(whole.volume(), rel=0.02)
        tree = cKDTree(lod0.vertices)
        edge = np.linalg.norm(lod0.vertices[lod0.faces[:, 0]] - lod0.vertices[lod0.faces[:, 1]], axis=1).max()
        counts = [sum(len(t) for t in frags) for frags in lods]
        for k in range(1, len(lods)):
            assert counts[k] <= 0.9 * counts[k - 1], (label, counts)
            bound = LOD0_ERROR_VOXELS * VOXEL[0] * (1 << k)
            vertices = np.concatenate(lods[k]).reshape(-1, 3)
            distance, _ = tree.query(vertices)
            assert distance.max() <= bound + edge + step, (label, k, distance.max(), bound)
        # The partition the client makes of LOD > 0 fragments (its draco decoder): every triangle
        # on one side of the middle plane 2**15 of each axis, or on it.
        for k, frags in enumerate(_lods(manifest, data, quantized=True)[1:], start=1):
            for tri in frags:
                assert not ((tri.min(axis=1) < 1 << 15) & (tri.max(axis=1) > 1 << 15)).any(), (label, k)


def test_manifests_are_in_zorder_and_validate_passes(dataset: tuple[Path, np.ndarray]) -> None:  # type: ignore[type-arg]
    root, _ = dataset
    for manifest, data in _objects(root).values():
        m = parse_manifest(manifest)
        assert m.data_size == len(data)
        for positions in m.positions:
            codes = zorder(positions)
            assert (np.diff(codes.astype(np.int64)) > 0).all()
    assert validate(str(root), full=True) == []


def test_split_on_grid_keeps_a_closed_mesh_closed() -> None:
    seg = np.zeros((20, 20, 20), np.uint8)
    seg[3:17, 4:15, 2:18] = 1
    m = mesh_all(seg)[1]
    v, f = split_on_grid(m.vertices, m.faces, (0.3, 0.3, 0.3), (2.5, 3.0, 4.0))
    out = Mesh(v, f)
    assert out.is_watertight()
    assert out.volume() == pytest.approx(m.volume(), rel=1e-5)
    corners = v[f]
    for axis, (o, s) in enumerate(zip((0.3, 0.3, 0.3), (2.5, 3.0, 4.0))):
        cells = (corners[..., axis] - o) / s
        assert ((np.ceil(cells.max(axis=1) - 1e-4) - np.floor(cells.min(axis=1) + 1e-4)) <= 1).all()


def test_validate_catches_broken_multires_meshes(tmp_path: Path) -> None:
    root = tmp_path / "seg"
    with ThreadPoolExecutor(2) as ex:
        run(plan(label_volume(), root, kind="segmentation", voxel_size=VOXEL, chunk_size=16, mesh=True,
                 sharding="off"), ex, progress=False)
    assert validate(str(root), full=True) == []
    index = root / "mesh" / "7.index"
    good = index.read_bytes()
    m = parse_manifest(good)
    # A manifest whose LOD 0 positions are out of Z-order.
    assert len(m.positions[0]) >= 2
    n = m.num_lods
    start = 28 + 16 * n  # after header, lod_scales, vertex_offsets, counts
    count = len(m.positions[0])
    positions = np.frombuffer(good, "<u4", 3 * count, start).reshape(3, count).copy()
    positions[:, [0, 1]] = positions[:, [1, 0]]
    bad = good[:start] + positions.tobytes() + good[start + 12 * count :]
    index.write_bytes(bad)
    assert any("Z-order" in p.message for p in validate(str(root))), validate(str(root))
    # A truncated manifest.
    index.write_bytes(good[:-3])
    assert any("broken manifest" in p.message for p in validate(str(root)))
    index.write_bytes(good)
    # Fragment data that does not add up, then a corrupt fragment.
    data = root / "mesh" / "7"
    blob = data.read_bytes()
    data.write_bytes(blob[:-10])
    assert any("add up" in p.message for p in validate(str(root)))
    data.write_bytes(blob[:5] + bytes(10) + blob[15:])
    assert validate(str(root)) == []  # sizes add up: only full looks inside
    assert any("Draco" in p.message or "fragment" in p.message for p in validate(str(root), full=True))


def test_legacy_mesh_format_and_cli_flag(tmp_path: Path) -> None:
    from ngshow.convert.cli import main as cli_main

    np.save(tmp_path / "seg.npy", label_volume().astype(np.uint32))
    out = tmp_path / "out"
    assert cli_main(["convert", str(tmp_path / "seg.npy"), str(out), "--segmentation", "--mesh",
                     "--mesh-format", "legacy", "--chunk-size", "32", "--no-progress",
                     "--executor", "threads"]) == 0
    assert json.loads((out / "mesh" / "info").read_text()) == {"@type": "neuroglancer_legacy_mesh"}
    assert (out / "mesh" / "7:0").is_file()
    out2 = tmp_path / "out2"
    assert cli_main(["convert", str(tmp_path / "seg.npy"), str(out2), "--segmentation", "--mesh",
                     "--chunk-size", "32", "--no-progress", "--executor", "threads"]) == 0
    assert json.loads((out2 / "mesh" / "info").read_text())["@type"] == "neuroglancer_multilod_draco"
    assert (out2 / "mesh" / "7.index").is_file()
    assert cli_main(["validate", str(out2), "--full"]) == 0
