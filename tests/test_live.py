"""Live precomputed layers over HTTP: read back by TensorStore, meshes in blocks, properties, skeletons."""

from __future__ import annotations

import json
import struct
import threading
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
import tensorstore as ts

import ngshow
from ngshow.live import Skeleton

from . import reference
from .conftest import base_url, request


def voronoi(shape: tuple[int, int, int], cells: int, seed: int = 0) -> np.ndarray[Any, Any]:
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    points = rng.uniform(0, 1, (cells, 3)) * shape
    grid = np.stack(np.meshgrid(*(np.arange(n) + 0.5 for n in shape), indexing="ij"), -1).reshape(-1, 3)
    return (cKDTree(points).query(grid)[1].reshape(shape) + 1).astype(np.uint32)


def live_url(viewer: ngshow.Viewer, layer: ngshow.Layer) -> str:
    source = layer.state_json()["source"]
    url = source["url"] if isinstance(source, dict) else source
    assert url.startswith("precomputed://http://")
    return url.removeprefix("precomputed://")


def test_tensorstore_reads_every_scale_of_a_live_segmentation(viewer: ngshow.Viewer) -> None:
    labels = voronoi((40, 70, 150), 60)
    layer = viewer.add(labels, name="seg", voxel_size=(4, 4, 40))
    assert layer.live is not None
    info = request(live_url(viewer, layer) + "/info").json()
    assert [s["encoding"] for s in info["scales"]] == ["compressed_segmentation"] * len(info["scales"])
    assert info["scales"][0]["resolution"] == [4, 4, 40] and len(info["scales"]) > 1
    for index, scale in enumerate(info["scales"]):
        store = ts.open(
            {"driver": "neuroglancer_precomputed", "kvstore": live_url(viewer, layer) + "/", "scale_index": index},
            read=True,
        ).result()
        got = np.asarray(store[..., 0].read().result()).transpose()  # (x, y, z) -> (z, y, x)
        fx, fy, fz = (round(r / b) for r, b in zip(scale["resolution"], [4, 4, 40]))
        expected = reference.downsample(labels, (fz, fy, fx), mode=True) if index else labels
        np.testing.assert_array_equal(got, expected, err_msg=f"scale {index}")


def test_live_images_and_uint16_labels_and_what_stays_python(viewer: ngshow.Viewer) -> None:
    image = (np.arange(30 * 40 * 50) % 251).astype(np.uint8).reshape(30, 40, 50)
    layer = viewer.add(image, name="img", serve_as="precomputed")
    store = ts.open({"driver": "neuroglancer_precomputed", "kvstore": live_url(viewer, layer) + "/"}, read=True).result()
    np.testing.assert_array_equal(np.asarray(store[..., 0].read().result()).T, image)
    labels16 = viewer.add(np.full((4, 5, 6), 9, np.uint16), name="lab16", kind="segmentation")
    info = request(live_url(viewer, labels16) + "/info").json()
    assert info["data_type"] == "uint32" and info["scales"][0]["encoding"] == "compressed_segmentation"
    assert viewer.add(image, name="auto-image").live is None  # images stay python:// by default
    movie = viewer.add(np.zeros((3, 4, 5, 6), np.uint32), name="movie", axes="tzyx")
    assert movie.live is None and movie.state_json()["source"].startswith("python://")
    with pytest.raises(ngshow.InvalidArray, match="serve_as='precomputed' needs"):
        viewer.add(np.zeros((3, 4, 5, 6), np.uint32), axes="tzyx", serve_as="precomputed")
    with pytest.raises(ngshow.InvalidArray, match="need a layer served as precomputed"):
        viewer.add(np.zeros((3, 4, 5, 6), np.uint32), axes="tzyx", segment_properties={"ids": [1]})


def test_a_huge_object_is_meshed_in_blocks_that_arrive_as_they_are_ready(viewer: ngshow.Viewer) -> None:
    labels = np.zeros((80, 300, 300), np.uint32)
    zz, yy, xx = np.mgrid[0:80, 0:300, 0:300]
    labels[((yy - 150) ** 2 + (xx - 150) ** 2 < 140**2) & (zz > 4) & (zz < 76)] = 5  # one big cylinder
    layer = viewer.add(labels, name="seg")
    base = live_url(viewer, layer)
    manifest = request(base + "/mesh/5:0").json()["fragments"]
    assert len(manifest) == 9, manifest  # 3 x 3 blocks of 128 in x and y, one in z
    arrivals: dict[str, float] = {}

    def fetch(name: str) -> None:
        reply = request(f"{base}/mesh/{name}")
        assert reply.status == 200
        arrivals[name] = time.monotonic()

    start = time.monotonic()
    threads = [threading.Thread(target=fetch, args=(n,)) for n in manifest]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    times = sorted(arrivals.values())
    assert times[0] - start < times[-1] - start, "every fragment arrived together"
    # The blocks' pieces add up to a closed surface: each edge used by exactly two triangles.
    vertices, faces = [], []
    for name in manifest:
        body = request(f"{base}/mesh/{name}").body
        (n,) = struct.unpack_from("<I", body)
        v = np.frombuffer(body, "<f4", 3 * n, 4).reshape(-1, 3)
        f = np.frombuffer(body, "<u4", offset=4 + 12 * n).reshape(-1, 3)
        faces.append(f + sum(len(x) for x in vertices))
        vertices.append(v)
    allv = np.concatenate(vertices)
    _, inverse = np.unique(np.round(allv, 3), axis=0, return_inverse=True)
    tri = inverse.reshape(-1)[np.concatenate(faces)]
    edges = np.sort(np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    assert (counts == 2).mean() > 0.995, f"{(counts != 2).sum()} edges not shared by two triangles"
    lo, hi = allv.min(axis=0), allv.max(axis=0)  # nm, voxel size 1
    np.testing.assert_allclose(lo, [10, 10, 5], atol=1.5)
    np.testing.assert_allclose(hi, [290, 290, 76], atol=1.5)


def test_segment_properties_and_skeletons(viewer: ngshow.Viewer) -> None:
    labels = np.zeros((10, 20, 30), np.uint32)
    labels[2:8, 2:10, 2:12] = 3
    labels[2:8, 12:18, 15:28] = 8
    properties = pd.DataFrame(
        {"label": ["small", "big"], "volume": [480, 468.5], "kind": ["a", "b"], "tags": [["x"], []]}, index=[3, 8]
    )
    skeleton = Skeleton(vertices=[[5, 5, 5], [10, 5, 5], [10, 8, 5]], edges=[[0, 1], [1, 2]],
                        attributes={"radius": np.array([1.0, 2.0, 3.0], np.float32)})
    layer = viewer.add(labels, name="seg", voxel_size=(4, 4, 40), segment_properties=properties,
                       skeletons={3: skeleton})
    base = live_url(viewer, layer)
    info = request(base + "/info").json()
    assert info["segment_properties"] == "segment_properties" and info["skeletons"] == "skeletons"
    props = request(base + "/segment_properties/info").json()
    assert props["inline"]["ids"] == ["3", "8"]
    by_id = {p["id"]: p for p in props["inline"]["properties"]}
    assert by_id["label"]["values"] == ["small", "big"] and by_id["volume"]["data_type"] == "float32"
    assert by_id["tags"]["tags"] == ["x"]
    skeleton_info = request(base + "/skeletons/info").json()
    assert skeleton_info["vertex_attributes"] == [{"id": "radius", "data_type": "float32", "num_components": 1}]
    body = request(base + "/skeletons/3").body
    n, e = struct.unpack_from("<II", body)
    assert (n, e) == (3, 2)
    positions = np.frombuffer(body, "<f4", 9, 8).reshape(3, 3)
    np.testing.assert_allclose(positions, [[20, 20, 200], [40, 20, 200], [40, 32, 200]])  # nm
    np.testing.assert_array_equal(np.frombuffer(body, "<f4", 3, 8 + 36 + 16), [1, 2, 3])
    assert request(base + "/skeletons/8").status == 404

    old = base
    layer.segment_properties = {"ids": [3], "label": ["renamed"]}
    assert live_url(viewer, layer) != old  # a new generation: open pages fetch the new table
    assert request(live_url(viewer, layer) + "/segment_properties/info").json()["inline"]["properties"][0]["values"] == ["renamed"]
    with pytest.raises(ngshow.InvalidArray, match="ids repeat"):
        layer.segment_properties = {"ids": [3, 3], "label": ["a", "b"]}


def test_bad_live_requests_are_4xx(viewer: ngshow.Viewer) -> None:
    layer = viewer.add(np.ones((4, 5, 6), np.uint32), name="seg")
    base = live_url(viewer, layer)
    for path, status in [("/nope", 404), ("/1_1_1/0-6_0-5", 400), ("/1_1_1/0-7_0-5_0-4", 400),
                         ("/mesh/abc:0", 404), ("/mesh/2:0", 404), ("/segment_properties/info", 404),
                         ("/9_9_9/0-1_0-1_0-1", 404)]:
        reply = request(base + path)
        assert reply.status == status, (path, reply.status, reply.text)
    assert request(base.replace(viewer.token, "x" * 40) + "/info").status == 404
    assert json.loads(request(base + "/mesh/1:0").body)["fragments"] == ["1:0:all"]


def test_skeletons_from_a_callback(viewer: ngshow.Viewer) -> None:
    labels = np.zeros((4, 8, 8), np.uint32)
    labels[1:3, 2:6, 2:6] = 4
    asked: list[int] = []

    def skeleton_of(segment: int) -> Skeleton | None:
        asked.append(segment)
        return Skeleton(vertices=[[0, 0, 0], [segment, 1, 1]], edges=[[0, 1]]) if segment == 4 else None

    layer = viewer.add(labels, name="seg", skeletons=skeleton_of)
    base = live_url(viewer, layer)
    assert request(base + "/skeletons/info").json()["vertex_attributes"] == []
    body = request(base + "/skeletons/4").body
    assert struct.unpack_from("<II", body) == (2, 1)
    np.testing.assert_allclose(np.frombuffer(body, "<f4", 6, 8).reshape(2, 3), [[0, 0, 0], [4, 1, 1]])
    assert request(base + "/skeletons/5").status == 404 and asked == [4, 5]
    with pytest.raises(ngshow.InvalidArray, match="skeleton vertices"):
        from ngshow.live import encode_skeleton

        encode_skeleton(Skeleton(vertices=[[0, 0]], edges=[]), (1, 1, 1), [])
