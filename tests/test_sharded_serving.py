"""Sharded datasets served by ``ngshow DIR`` / ``add_precomputed``: HTTP Range requests on shard
files (first bytes, the end of the file, suffix ranges, past the end), and every chunk and mesh
read back over HTTP by ranged reads, as the stock client does."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

import ngshow
from ngshow import convert
from ngshow.convert.multires import parse_manifest
from ngshow.convert.sharding import ShardingSpec, ShardReader, decode_shard

from .conftest import request


def ball_dataset(folder: Path) -> np.ndarray:  # type: ignore[type-arg]
    """A sharded segmentation (every scale) with sharded multi-resolution meshes."""
    z, y, x = np.ogrid[:64, :80, :96]
    labels = np.zeros((64, 80, 96), np.uint32)
    labels[(z - 32) ** 2 + (y - 40) ** 2 + (x - 48) ** 2 < 28**2] = 5
    labels[(z - 10) ** 2 + (y - 10) ** 2 + (x - 10) ** 2 < 6**2] = 6
    plan = convert.plan(labels, str(folder), kind="segmentation", voxel_size=(8, 8, 8), chunk_size=16,
                        mesh=True, mesh_mip=0, sharding="on", memory_budget=1 << 20)
    with ThreadPoolExecutor(2) as pool:
        convert.run(plan, pool, progress=False)
    assert convert.validate(str(folder), full=True) == []
    return labels


def ranged(url: str, header: str) -> tuple[int, bytes, dict[str, str]]:
    req = urllib.request.Request(url, headers={"Range": header})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def test_shards_are_served_with_range_requests(viewer: ngshow.Viewer, tmp_path: Path) -> None:
    root = tmp_path / "seg"
    ball_dataset(root)
    viewer.add_precomputed(str(root), name="seg")
    url = viewer.state.layers["seg"]["source"].removeprefix("precomputed://")
    info = request(url + "/info").json()
    scale = info["scales"][0]
    shard = sorted((root / scale["key"]).iterdir())[0]
    whole = shard.read_bytes()
    n = len(whole)
    shard_url = f"{url}/{scale['key']}/{shard.name}"
    for header, want in [
        ("bytes=0-15", whole[:16]),
        (f"bytes={n - 24}-{n - 1}", whole[-24:]),  # the last bytes (minishard indexes live there)
        (f"bytes={n - 5}-", whole[-5:]),
        ("bytes=-7", whole[-7:]),
        (f"bytes={n - 3}-{n + 100}", whole[-3:]),  # past the end: cut to the file
    ]:
        status, body, headers = ranged(shard_url, header)
        assert status == 206, (header, status)
        assert body == want, header
        assert headers["Content-Range"].endswith(f"/{n}"), headers
    status, _body, _ = ranged(shard_url, f"bytes={n}-{n + 10}")
    assert status == 416
    assert request(shard_url).body == whole

    # Everything the client reads, through ranged HTTP reads only.
    def http_reader(name: str):  # type: ignore[no-untyped-def]
        def read(a: int, b: int) -> bytes:
            return ranged(f"{url}/{name}", f"bytes={a}-{b - 1}")[1]
        return read

    for s in info["scales"]:
        spec = ShardingSpec.from_json(s["sharding"])
        for f in sorted((root / s["key"]).iterdir()):
            local = decode_shard(f.read_bytes(), spec)
            reader = ShardReader(http_reader(f"{s['key']}/{f.name}"), spec)
            assert reader.get_many(local) == local
    mesh_info = request(url + "/mesh/info").json()
    spec = ShardingSpec.from_json(mesh_info["sharding"])
    for label in (5, 6):
        shard_no, _ = spec.shard_and_minishard(label)
        reader = ShardReader(http_reader(f"mesh/{spec.shard_name(shard_no)}"), spec)
        entry = reader.locate(label)
        assert entry is not None
        manifest = parse_manifest(reader.decode(reader.read(entry.start, entry.end)))
        assert manifest.num_lods >= (3 if label == 5 else 1)
        data = reader.read(entry.start - manifest.data_size, entry.start)
        assert len(data) == manifest.data_size
    assert json.loads((root / "mesh" / "info").read_text()) == mesh_info
