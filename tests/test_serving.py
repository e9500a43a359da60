"""Encodings beyond raw/npz, the downsampled-chunk cache, new data, and many requests at once."""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import h5py
import numpy as np
import pytest
from PIL import Image

import ngshow

from . import reference
from .conftest import base_url, request
from .test_http import asymmetric, chunk_url, decode


def smooth(shape: tuple[int, ...]) -> np.ndarray:
    """A smooth uint8 volume (JPEG-friendly), asymmetric along every axis."""
    grids = np.meshgrid(*(np.linspace(0, 1, n) for n in shape), indexing="ij")
    return (sum((i + 1) * g for i, g in enumerate(grids)) / len(shape) * 100 % 256).astype(np.uint8)


def test_jpeg_grey_and_rgb_chunks(viewer: ngshow.Viewer) -> None:
    grey = smooth((6, 10, 14))
    layer = viewer.add(grey, kind="image", encoding="jpeg", jpeg_quality=95)
    reply = request(chunk_url(viewer, layer, (1, 1, 1), (0, 0, 0), grey.shape, "jpeg"))
    assert reply.status == 200
    image = np.asarray(Image.open(io.BytesIO(reply.body)))
    assert image.shape == (6 * 10, 14)  # width x, height y*z (PROTOCOL.md §3.4)
    assert np.abs(image.reshape(grey.shape).astype(int) - grey).max() <= 4

    rgb = smooth((3, 4, 5, 7))
    layer = viewer.add(rgb, name="rgb", encoding="jpeg", jpeg_quality=95)
    reply = request(chunk_url(viewer, layer, (1, 1, 1, 1), (0, 0, 0, 0), rgb.shape, "jpeg"))
    image = np.asarray(Image.open(io.BytesIO(reply.body)))
    assert image.shape == (4 * 5, 7, 3)
    assert np.abs(np.moveaxis(image.reshape(4, 5, 7, 3), -1, 0).astype(int) - rgb).max() <= 12

    with pytest.raises(ngshow.InvalidArray, match="jpeg"):
        viewer.add(np.zeros((2, 3, 4), np.uint16), kind="image", encoding="jpeg")
    with pytest.raises(ngshow.InvalidArray, match="unknown encoding"):
        viewer.add(np.zeros((2, 3, 4), np.uint8), encoding="png")


def test_cached_coarse_chunks_are_dropped_on_page_load(viewer: ngshow.Viewer) -> None:
    array = asymmetric((8, 12, 16), "uint8")
    layer = viewer.add(array, kind="image")
    url = chunk_url(viewer, layer, (2, 2, 2), (0, 0, 0), (4, 6, 8))
    first = request(url).body
    array[:] = 0  # changed in place: the cached coarse chunk is stale until a page load
    assert request(url).body == first
    assert viewer._chunk_cache.hits == 1
    assert request(viewer.url).status == 200  # a (re)load of the viewer page
    assert request(url).body == bytes(4 * 6 * 8)
    array[:] = 1
    layer.invalidate()  # a new generation is a new cache key too
    np.testing.assert_array_equal(decode(request(url), "raw", np.dtype("uint8"), (4, 6, 8)), 1)


def test_assigning_new_data_gives_a_new_source(viewer: ngshow.Viewer) -> None:
    layer = viewer.add(np.zeros((2, 3, 4), np.uint8), name="v", kind="image")
    old_key = layer.key
    bigger = asymmetric((5, 6, 7), "uint16")
    layer.data = bigger
    assert layer.key != old_key
    assert request(f"{base_url(viewer)}/neuroglancer/info/{old_key}").status == 404
    info = request(f"{base_url(viewer)}/neuroglancer/info/{layer.key}").json()
    assert info["shape"] == [7, 6, 5] and info["dataType"] == "uint16"
    assert viewer.state.layers["v"]["source"] == f"python://volume/{layer.key}"
    got = decode(request(chunk_url(viewer, layer, (1, 1, 1), (0, 0, 0), (5, 6, 7))), "raw", np.dtype("uint16"), (5, 6, 7))
    np.testing.assert_array_equal(got, bigger)


def test_many_concurrent_requests_all_succeed(viewer: ngshow.Viewer) -> None:
    array = asymmetric((32, 48, 64), "uint32")
    layer = viewer.add(array, kind="segmentation")
    boxes = [((z, y, x), (z + 16, y + 16, x + 16)) for z in (0, 16) for y in (0, 16, 32) for x in (0, 16, 32, 48)]
    urls = [chunk_url(viewer, layer, (1, 1, 1), s, e) for s, e in boxes] * 4
    urls += [chunk_url(viewer, layer, (2, 2, 2), (0, 0, 0), (16, 24, 32))] * 16
    with ThreadPoolExecutor(32) as pool:
        replies = list(pool.map(request, urls))
    assert [r.status for r in replies] == [200] * len(urls)
    expected = reference.downsample(array, (2, 2, 2), mode=True)
    np.testing.assert_array_equal(decode(replies[-1], "raw", np.dtype("uint32"), (16, 24, 32)), expected)


class BlockedArray:
    """An array whose reads wait until released: a very slow HDF5 file, say."""

    def __init__(self, array: np.ndarray, release: threading.Event, started: threading.Semaphore) -> None:
        self.array, self.release, self.started = array, release, started
        self.shape, self.dtype = array.shape, array.dtype

    def __getitem__(self, box: tuple[slice, ...]) -> np.ndarray:
        self.started.release()
        self.release.wait(30)
        return self.array[box]


def test_a_slow_source_does_not_stall_other_layers(viewer: ngshow.Viewer) -> None:
    release, started = threading.Event(), threading.Semaphore(0)
    slow = viewer.add(BlockedArray(np.ones((8, 8, 8), np.uint8), release, started), name="slow", kind="image")
    fast_array = asymmetric((8, 8, 8), "uint8")
    fast = viewer.add(fast_array, name="fast", kind="image")
    with ThreadPoolExecutor(3) as pool:
        slow_replies = [pool.submit(request, chunk_url(viewer, slow, (1, 1, 1), (0, 0, z), (8, 8, z + 1))) for z in range(3)]
        for _ in range(3):
            assert started.acquire(timeout=30)  # three slow reads are in progress...
        reply = request(chunk_url(viewer, fast, (1, 1, 1), (0, 0, 0), (8, 8, 8)))  # ...and this one is served
        assert reply.status == 200 and not any(f.done() for f in slow_replies)
        release.set()
        assert [f.result().status for f in slow_replies] == [200, 200, 200]
    np.testing.assert_array_equal(decode(reply, "raw", np.dtype("uint8"), (8, 8, 8)), fast_array)


class CountingArray:
    """Wraps an array and counts the voxels each read asks for."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.shape, self.dtype = inner, inner.shape, inner.dtype
        self.voxels_read = 0

    def __getitem__(self, box: tuple[slice, ...]) -> np.ndarray:
        part = np.asarray(self.inner[box])
        self.voxels_read += part.size
        return part


def test_h5py_is_read_per_chunk_never_whole(viewer: ngshow.Viewer, tmp_path: Any) -> None:
    with h5py.File(tmp_path / "big.h5", "w") as f:
        f.create_dataset("v", shape=(128, 256, 256), dtype="uint16", chunks=(32, 32, 32), fillvalue=3)
    with h5py.File(tmp_path / "big.h5", "r") as f:
        counting = CountingArray(f["v"])
        layer = viewer.add(counting, kind="image")  # reads a 64^3 sample for the contrast range
        assert counting.voxels_read <= 64**3
        before = counting.voxels_read
        reply = request(chunk_url(viewer, layer, (1, 1, 1), (32, 64, 64), (64, 128, 128)))
        assert reply.status == 200 and counting.voxels_read - before == 32 * 64 * 64
        assert counting.voxels_read < 128 * 256 * 256 / 20
