"""The C++ mesher and its Python API (ngshow.mesh): geometry, topology, dtypes, formats, service."""

from __future__ import annotations

import struct
import threading
from typing import Any

import numpy as np
import pytest
import zmesh

from ngshow import _native
from ngshow.errors import InvalidArray, NotFound
from ngshow.mesh import Mesh, MeshService, mesh, mesh_all
from ngshow.sources import ArraySource

VOXEL_SIZES = [(1.0, 1.0, 1.0), (1.0, 1.0, 2.0), (4.0, 4.0, 10.0)]


def ball(radius_nm: float, voxel_size: tuple[float, float, float], label: int = 1) -> np.ndarray[Any, Any]:
    """A digital ball (voxel centres within radius) in a (z, y, x) uint32 volume with margins."""
    n = [int(2 * radius_nm / v) + 6 for v in reversed(voxel_size)]
    z, y, x = np.ogrid[: n[0], : n[1], : n[2]]
    vx, vy, vz = voxel_size
    d2 = (
        ((z + 0.5 - n[0] / 2) * vz) ** 2
        + ((y + 0.5 - n[1] / 2) * vy) ** 2
        + ((x + 0.5 - n[2] / 2) * vx) ** 2
    )
    return np.where(d2 <= radius_nm**2, label, 0).astype(np.uint32)


def check_closed(m: Mesh) -> None:
    assert len(m.faces) > 0
    assert m.vertices.dtype == np.float32 and m.vertices.shape[1] == 3
    assert m.faces.dtype == np.uint32 and m.faces.shape[1] == 3
    assert m.is_watertight(), "every edge must be in exactly two faces, oppositely directed"
    assert m.volume() > 0, "faces must be oriented outwards"
    a, b, c = (m.vertices[m.faces[:, k]].astype(np.float64) for k in range(3))
    areas = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    assert areas.min() > 0, "no degenerate triangles"
    assert len(np.unique(m.vertices, axis=0)) == len(m.vertices), "vertices are welded"


def canonical(m: Mesh) -> list[tuple[tuple[float, ...], ...]]:
    """Order-insensitive form: each triangle as a rotation-normalised tuple of vertex positions."""
    out = []
    for tri in m.vertices[m.faces].round(4).tolist():
        pts = [tuple(p) for p in tri]
        k = pts.index(min(pts))
        out.append(tuple(pts[k:] + pts[:k]))
    return sorted(out)


@pytest.mark.parametrize("voxel_size", VOXEL_SIZES)
@pytest.mark.parametrize("radius", [8, 12, 20])
def test_sphere_area_volume_and_topology(radius: int, voxel_size: tuple[float, float, float]) -> None:
    r = radius * max(voxel_size)
    labels = ball(r, voxel_size)
    area, volume = 4 * np.pi * r**2, 4 / 3 * np.pi * r**3
    m = mesh(labels, 1, voxel_size=voxel_size)
    check_closed(m)
    assert m.area() == pytest.approx(area, rel=0.03)
    assert m.volume() == pytest.approx(volume, rel=0.03)
    s = mesh(labels, 1, voxel_size=voxel_size, simplify=True)
    check_closed(s)
    assert len(s.faces) < len(m.faces) / 3
    assert s.area() == pytest.approx(area, rel=0.05)
    assert s.volume() == pytest.approx(volume, rel=0.05)


def test_raw_marching_cubes_encloses_the_voxels() -> None:
    """Without smoothing, an axis-aligned box mesh is exactly the voxels' faces."""
    labels = np.zeros((8, 9, 10), np.uint16)
    labels[2:5, 1:7, 3:9] = 4
    m = mesh(labels, 4, voxel_size=(2, 3, 5), smooth=0)
    check_closed(m)
    # Vertices lie on the voxels' faces: x in [3, 9) * 2, y in [1, 7) * 3, z in [2, 5) * 5.
    assert m.vertices.min(axis=0).tolist() == [6, 3, 10]
    assert m.vertices.max(axis=0).tolist() == [18, 21, 25]


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64"])
def test_every_label_dtype(dtype: str) -> None:
    labels = ball(6, (1, 1, 1)).astype(dtype)
    reference = mesh(ball(6, (1, 1, 1)), 1)
    got = mesh(labels, 1)
    check_closed(got)
    assert canonical(got) == canonical(reference)


def test_negative_and_wide_labels() -> None:
    labels = np.zeros((6, 6, 6), np.int32)
    labels[1:4, 1:4, 1:4] = -5
    check_closed(mesh(labels, -5))
    big = np.zeros((6, 6, 6), np.uint64)
    big[2:4, 2:5, 1:3] = 2**63 + 17
    check_closed(mesh(big, 2**63 + 17))
    with pytest.raises(NotFound):
        mesh(big, 0)
    with pytest.raises(NotFound):
        mesh(big, 12345)
    with pytest.raises(NotFound):
        mesh(labels.astype(np.uint8), 300)
    with pytest.raises(InvalidArray):
        mesh(labels.astype(np.float32), 1)


def test_bool_mask() -> None:
    check_closed(mesh(ball(5, (1, 1, 1)) > 0, 1))


@pytest.mark.parametrize("simplify", [False, True])
def test_c_and_fortran_order_give_the_same_mesh(simplify: bool) -> None:
    rng = np.random.default_rng(3)
    labels = np.zeros((20, 24, 28), np.uint32)
    labels[3:15, 4:20, 5:22] = 7
    labels[rng.random(labels.shape) < 0.05] = 0
    f = np.asfortranarray(labels)
    strided = np.zeros((40, 24, 56), np.uint32)[::2, :, ::2]
    strided[...] = labels
    a = mesh(labels, 7, simplify=simplify)
    assert canonical(mesh(f, 7, simplify=simplify)) == canonical(a)
    assert canonical(mesh(strided, 7, simplify=simplify)) == canonical(a)


def test_objects_on_the_border_are_capped_and_stay_in_the_box() -> None:
    labels = np.zeros((10, 12, 14), np.uint32)
    labels[:6, :, 9:] = 3  # touches five faces of the volume
    box_lo, box_hi = np.zeros(3), np.array([14, 12, 10]) * np.array([2.0, 3.0, 4.0])
    for simplify in (False, True, 5.0):
        m = mesh(labels, 3, voxel_size=(2, 3, 4), simplify=simplify)
        check_closed(m)
        v = m.vertices
        assert (v >= box_lo - 1e-4).all() and (v <= box_hi + 1e-4).all()
        # Caps lie on the volume faces.
        assert np.isclose(v[:, 2], 0).any() and np.isclose(v[:, 0], 28).any()
    # A label filling the whole volume is a closed box.
    full = np.ones((3, 4, 5), np.uint8)
    m = mesh(full, 1, smooth=0)
    check_closed(m)
    assert 50 < m.volume() < 60  # the voxels minus the marching-cubes edge chamfers
    np.testing.assert_array_equal(m.vertices.min(axis=0), [0, 0, 0])
    np.testing.assert_array_equal(m.vertices.max(axis=0), [5, 4, 3])


def test_touching_labels_give_two_closed_meshes() -> None:
    labels = np.zeros((12, 12, 12), np.uint32)
    labels[2:10, 2:10, 2:6] = 1
    labels[2:10, 2:10, 6:10] = 2
    labels[4:6, 4:6, 4:8] = 3  # crosses the interface
    meshes = mesh_all(labels)
    assert sorted(meshes) == [1, 2, 3]
    for label, m in meshes.items():
        check_closed(m)
        assert canonical(m) == canonical(mesh(labels, label))


def test_checkerboard_is_watertight() -> None:
    """Ambiguous faces everywhere: the face decider must match between neighbouring cells."""
    z, y, x = np.indices((9, 10, 11))
    labels = (((x + y + z) % 2) * 5 + ((x // 3 + y // 2) % 3)).astype(np.uint8)
    for label, m in mesh_all(labels, smooth=0).items():
        check_closed(m)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 4, (16, 17, 18)).astype(np.uint16)
    for label, m in mesh_all(noise, smooth=0).items():
        assert m.is_watertight() and m.volume() > 0


def test_no_triangle_lies_on_a_cell_face() -> None:
    """Regression (label 933 of the 512^3 benchmark): both corners of an ambiguous cell face were
    connected in each of the two cells sharing it, and both fans put a triangle on that face, so
    two coincident opposite triangles made edges shared by four faces."""
    labels = np.zeros((6, 6, 6), np.uint8)
    for z, y, x in [(2, 1, 2), (2, 1, 3), (2, 2, 3), (2, 3, 3), (3, 1, 2), (3, 2, 2), (3, 3, 2), (3, 3, 3)]:
        labels[z, y, x] = 1
    for simplify in (False, True):
        for smooth in (0, 8):
            check_closed(mesh(labels, 1, simplify=simplify, smooth=smooth))
    # Random blobs: every label's raw mesh is a closed 2-manifold.
    rng = np.random.default_rng(11)
    for _ in range(20):
        noise = rng.integers(0, 3, (10, 11, 12)).astype(np.uint8) * (rng.random((10, 11, 12)) < 0.6)
        for m in mesh_all(noise, smooth=0).values():
            assert m.is_watertight() and m.volume() > 0


def test_mesh_all_matches_single_meshes_and_simplifies() -> None:
    rng = np.random.default_rng(1)
    seeds = rng.integers(0, 40, (12, 3))
    z, y, x = np.indices((40, 40, 40))
    d = np.stack([(z - s[0]) ** 2 + (y - s[1]) ** 2 + (x - s[2]) ** 2 for s in seeds])
    labels = (np.argmin(d, axis=0) + 1).astype(np.uint32)
    labels[:, :, :3] = 0
    all_meshes = mesh_all(labels, voxel_size=(2, 2, 3), simplify=True, threads=2)
    assert sorted(all_meshes) == sorted(int(v) for v in np.unique(labels) if v)
    for label, m in all_meshes.items():
        check_closed(m)
        assert canonical(m) == canonical(mesh(labels, label, voxel_size=(2, 2, 3), simplify=True))


def test_parallel_slabs_give_the_single_thread_mesh_exactly() -> None:
    """Marching in z-slabs on several threads welds the slabs' seams: vertex and face arrays are
    identical to the single-threaded ones (so simplification gives the same result too)."""
    rng = np.random.default_rng(7)
    seeds = rng.integers(0, 64, (30, 3))
    z, y, x = np.indices((70, 40, 36))
    d = np.stack([(z - s[0]) ** 2 + (y - s[1]) ** 2 + (x - s[2]) ** 2 for s in seeds])
    labels = (np.argmin(d, axis=0) + 1).astype(np.uint16)
    labels[rng.random(labels.shape) < 0.02] = 0  # ragged seams, holes
    labels[:, :, :2] = 0
    for smooth, simplify in ((0, False), (8, True)):
        one = mesh_all(labels, smooth=smooth, simplify=simplify, threads=1)
        for threads in (2, 3, 8):
            many = mesh_all(labels, smooth=smooth, simplify=simplify, threads=threads)
            assert list(many) == list(one)
            for label, m in many.items():
                np.testing.assert_array_equal(m.vertices, one[label].vertices)
                np.testing.assert_array_equal(m.faces, one[label].faces)
    for m in mesh_all(labels, smooth=0, threads=4).values():
        check_closed(m)


def test_large_object_across_slabs() -> None:
    """An object whose arrays outgrow the small-buffer path (grown by remapping, not copying) and
    spans every slab: closed, its area close to the sphere's, and the same on 1 and 3 threads."""
    labels = ball(60.0, (1.0, 1.0, 1.0), label=70000)
    one = mesh_all(labels, threads=1)[70000]
    assert one.faces.nbytes > 1 << 20
    check_closed(one)
    assert one.area() == pytest.approx(4 * np.pi * 60.0**2, rel=0.03)
    many = mesh_all(labels, threads=3)[70000]
    np.testing.assert_array_equal(many.vertices, one.vertices)
    np.testing.assert_array_equal(many.faces, one.faces)


def test_offset_and_normals() -> None:
    labels = ball(5, (1, 1, 1))
    a = mesh(labels, 1, voxel_size=(2, 3, 4))
    b = mesh(labels, 1, voxel_size=(2, 3, 4), offset=(10, 20, 30), normals=True)
    np.testing.assert_allclose(b.vertices - a.vertices, np.broadcast_to([20, 60, 120], a.vertices.shape), atol=1e-3)
    assert b.normals is not None
    np.testing.assert_allclose(np.linalg.norm(b.normals, axis=1), 1, atol=1e-5)
    centre = b.vertices.mean(axis=0)
    assert (np.einsum("ij,ij->i", b.normals, b.vertices - centre) > 0).mean() > 0.99


def test_formats() -> None:
    m = mesh(ball(4, (1, 1, 1)), 1, simplify=True)
    body = m.to_precomputed()
    (n,) = struct.unpack_from("<I", body)
    assert n == len(m.vertices)
    verts = np.frombuffer(body, "<f4", 3 * n, 4).reshape(-1, 3)
    faces = np.frombuffer(body, "<u4", offset=4 + 12 * n).reshape(-1, 3)
    np.testing.assert_array_equal(verts, m.vertices)
    np.testing.assert_array_equal(faces, m.faces)
    obj = m.to_obj().splitlines()
    assert sum(line.startswith("v ") for line in obj) == n
    assert sum(line.startswith("f ") for line in obj) == len(m.faces)
    first_face = next(line for line in obj if line.startswith("f "))
    assert [int(t) for t in first_face.split()[1:]] == (m.faces[0] + 1).tolist()
    ply = m.to_ply()
    header, _, data = ply.partition(b"end_header\n")
    assert b"element vertex %d" % n in header and b"element face %d" % len(m.faces) in header
    assert len(data) == 12 * n + 13 * len(m.faces)
    np.testing.assert_array_equal(np.frombuffer(data, "<f4", 3 * n).reshape(-1, 3), m.vertices)


def _surface_samples(vertices: np.ndarray[Any, Any], faces: np.ndarray[Any, Any], step: float) -> np.ndarray[Any, Any]:
    """Points on every triangle, on a barycentric grid no coarser than ``step``."""
    tri = vertices[faces].astype(np.float64)
    longest = np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=2).max()
    k = int(min(24, max(1, np.ceil(longest / step))))
    bary = np.array([(i, j, k - i - j) for i in range(k + 1) for j in range(k + 1 - i)], float) / k
    return np.einsum("bk,fkd->fbd", bary, tri).reshape(-1, 3)


def _hausdorff(a: Mesh, b: Mesh, step: float) -> float:
    """Symmetric Hausdorff distance between two surfaces, from dense samples of both."""
    from scipy.spatial import cKDTree

    pa = _surface_samples(a.vertices, a.faces, step)
    pb = _surface_samples(b.vertices, b.faces, step)
    return float(max(cKDTree(pb).query(pa)[0].max(), cKDTree(pa).query(pb)[0].max()))


@pytest.mark.parametrize("voxel_size", [(1.0, 1.0, 1.0), (4.0, 4.0, 10.0)])
def test_cross_check_against_zmesh(voxel_size: tuple[float, float, float]) -> None:
    r = 10 * max(voxel_size)
    labels = ball(r, voxel_size)
    labels[labels.shape[0] // 2 :, : labels.shape[1] // 3] = 0  # not just a ball
    ours = mesh(labels, 1, voxel_size=voxel_size)
    ours_s = mesh(labels, 1, voxel_size=voxel_size, simplify=True)
    mesher = zmesh.Mesher(voxel_size)
    mesher.mesh(np.asfortranarray(labels.T))  # zmesh reads (x, y, z)
    theirs = mesher.get(1, normals=False)
    # zmesh puts voxel centres at integer positions; ngshow puts voxel i on [i, i+1).
    zm = Mesh(theirs.vertices + 0.5 * np.asarray(voxel_size, np.float32), theirs.faces.astype(np.uint32))
    step = 0.3 * min(voxel_size)
    h = _hausdorff(ours, zm, step)
    hs = _hausdorff(ours_s, zm, step)
    print(
        f"\nvoxel {voxel_size}: triangles ngshow {len(ours.faces)} (simplified {len(ours_s.faces)}), "
        f"zmesh {len(theirs.faces)}; Hausdorff {h:.3f} / {hs:.3f} nm"
    )
    # Within one voxel (smoothing moves vertices at most 0.4 voxel along their lattice edge).
    assert h <= max(voxel_size)
    assert hs <= max(voxel_size)


def test_native_binding_never_narrows_the_label_dtype() -> None:
    """Regression: with an int ``box`` (or int scale/origin) nanobind's converting overload pass
    used to pick the uint8 overload and cast a uint32 volume to uint8, so label 300 vanished (the
    512^3 benchmark's per-object crash) and labels 300 and 44 (= 300 mod 256) merged."""
    labels = np.zeros((8, 9, 10), np.uint32)
    labels[1:4, 1:5, 1:6] = 300
    labels[4:7, 2:6, 3:8] = 44
    box = (0, 0, 0, 10, 9, 8)  # ints, as a caller may well pass them
    for err in (0.0, 0.5):
        (label, v, f, _), = _native.mesh_labels(labels, (1, 1, 1), (0, 0, 0), 300, err, 0.0, box, False, 1, 8)
        assert label == 300
        check_closed(Mesh(v, f))
        assert v.min(axis=0).tolist() >= [1, 1, 1] and v.max(axis=0).tolist() <= [6, 5, 4]
    everything = _native.mesh_labels(labels, (1, 1, 1), (0, 0, 0), None, 0, 0, box, False, 1, 0)
    assert [int(t[0]) for t in everything] == [44, 300]
    acc = _native.BoxAccumulator()
    acc.add(labels, np.int64(0))  # numpy int z0: must not narrow the slab either
    ids, _ = acc.result()
    assert ids.reshape(-1).tolist() == [44, 300]
    with pytest.raises(TypeError):  # no silent conversion of other dtypes either
        _native.mesh_labels(labels.astype(np.int32), (1, 1, 1), (0, 0, 0), 300, 0, 0, box, False, 1, 0)


# ---- MeshService --------------------------------------------------------------------------------


class CountingArray:
    """An h5py-like array that records every box read."""

    def __init__(self, data: np.ndarray[Any, Any]) -> None:
        self._data = data
        self.shape = data.shape
        self.dtype = data.dtype
        self.reads: list[tuple[slice, ...]] = []

    def __getitem__(self, box: tuple[slice, ...]) -> np.ndarray[Any, Any]:
        self.reads.append(box)
        return self._data[box].copy()


def decode(body: bytes) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    (n,) = struct.unpack_from("<I", body)
    verts = np.frombuffer(body, "<f4", 3 * n, 4).reshape(-1, 3)
    faces = np.frombuffer(body, "<u4", offset=4 + 12 * n)
    assert faces.size % 3 == 0
    return verts, faces.reshape(-1, 3)


def test_service_fragment_positions_and_404() -> None:
    labels = np.zeros((30, 40, 50), np.uint32)
    labels[5:10, 20:30, 30:45] = 9
    labels[0:3, 0:4, 0:5] = 4
    source = ArraySource(labels, kind="segmentation", voxel_size=(4, 5, 40), offset=(100, 200, 300))
    svc = MeshService()
    body = svc.fragment(source, 0, 9, simplify=False)
    verts, faces = decode(body)
    m = Mesh(verts.copy(), faces.copy())
    assert m.is_watertight() and m.volume() > 0
    # Metres, x y z, relative to index 0 (the client adds the voxel offset).
    lo, hi = verts.min(axis=0), verts.max(axis=0)
    assert lo == pytest.approx(np.array([30 * 4, 20 * 5, 5 * 40]) * 1e-9, rel=0.1)
    assert hi == pytest.approx(np.array([45 * 4, 30 * 5, 10 * 40]) * 1e-9, rel=0.1)
    assert (lo >= np.array([30 * 4, 20 * 5, 5 * 40]) * 1e-9 * 0.999).all()
    assert svc.fragment(source, 0, 9, simplify=False) is body  # cached
    for absent in (0, 5, 2**40, -1):
        with pytest.raises(NotFound):
            svc.fragment(source, 0, absent)
    simplified = decode(svc.fragment(source, 0, 4))
    assert len(simplified[1]) < len(decode(svc.fragment(source, 0, 4, simplify=False))[1])


def test_service_maps_a_missing_mesh_to_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the mesher ever returns nothing for an object its box scan found, the service answers
    NotFound (HTTP 404), never an unexpected exception (HTTP 500)."""
    labels = np.zeros((10, 10, 10), np.uint32)
    labels[2:5, 2:5, 2:5] = 300
    source = ArraySource(labels, kind="segmentation")
    monkeypatch.setattr(_native, "mesh_labels", lambda *args: [])
    with pytest.raises(NotFound):
        MeshService().fragment(source, 0, 300)
    monkeypatch.undo()
    verts, faces = decode(MeshService().fragment(source, 0, 300))
    assert len(faces) > 0


def test_service_reads_only_the_bounding_box_after_one_scan() -> None:
    labels = np.zeros((64, 48, 40), np.uint16)
    labels[10:20, 5:15, 7:30] = 3
    labels[40:60, 30:45, 1:9] = 8
    data = CountingArray(labels)
    source = ArraySource(data, kind="segmentation")
    svc = MeshService(slab_bytes=48 * 40 * 2 * 16)  # 16 planes per slab
    svc.fragment(source, 1, 3)
    scan = data.reads[:-1]
    assert len(scan) == 4 and all(b[0].stop - b[0].start <= 16 for b in scan)
    assert data.reads[-1] == (slice(9, 21), slice(4, 16), slice(6, 31))
    data.reads.clear()
    svc.fragment(source, 1, 8)
    assert data.reads == [(slice(39, 61), slice(29, 46), slice(0, 10))]
    # New data generation: boxes are recomputed and meshes not reused.
    labels[40:60, 30:45, 1:9] = 0
    labels[0:2, 0:2, 0:2] = 8
    data.reads.clear()
    verts, _ = decode(svc.fragment(source, 2, 8))
    assert len(data.reads) == 5
    assert verts.max() <= 2.1e-9


def test_service_handles_channel_sources_and_lru_bound() -> None:
    labels = np.zeros((1, 20, 20, 20), np.uint64)
    for i in range(1, 9):
        labels[0, 2 * i : 2 * i + 2, 2:18, 2:18] = i
    source = ArraySource(labels, kind="segmentation")
    one = len(MeshService().fragment(source, 0, 1))
    svc = MeshService(max_bytes=3 * one)
    bodies = [svc.fragment(source, 0, i) for i in range(1, 9)]
    assert all(len(decode(b)[1]) > 0 for b in bodies)
    assert svc.cached_bytes <= 3 * one


def test_service_is_thread_safe() -> None:
    rng = np.random.default_rng(5)
    seeds = rng.integers(0, 48, (20, 3))
    z, y, x = np.indices((48, 48, 48))
    d = np.stack([(z - s[0]) ** 2 + (y - s[1]) ** 2 + (x - s[2]) ** 2 for s in seeds])
    labels = (np.argmin(d, axis=0) + 1).astype(np.uint32)
    source = ArraySource(labels, kind="segmentation", voxel_size=(3, 3, 5))
    svc = MeshService()
    results: dict[int, bytes] = {}
    errors: list[BaseException] = []

    def work(ids: list[int]) -> None:
        try:
            for i in ids:
                results[i] = svc.fragment(source, 0, i)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(list(range(1, 21))[k::4],)) for k in range(4)]
    threads += [threading.Thread(target=work, args=(list(range(1, 21)),))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    reference = MeshService()
    for i in range(1, 21):
        assert results[i] == reference.fragment(source, 0, i)


def test_box_accumulator() -> None:
    labels = np.zeros((5, 6, 7), np.uint8)
    labels[1:3, 2:4, 3:7] = 2
    labels[4, 5, 0] = 255
    acc = _native.BoxAccumulator()
    acc.add(labels[:2], 0)
    acc.add(np.asfortranarray(labels[2:]), 2)
    ids, boxes = acc.result()
    assert ids.reshape(-1).tolist() == [2, 255]
    assert boxes.tolist() == [[1, 2, 3, 3, 4, 7], [4, 5, 0, 5, 6, 1]]
