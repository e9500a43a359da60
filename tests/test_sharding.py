"""The sharded format (``neuroglancer_uint64_sharded_v1``), checked against readers nobody here wrote:
TensorStore's ``neuroglancer_precomputed`` driver and cloud-volume's shard reader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ngshow.convert.sharding import (
    ShardError,
    ShardingSpec,
    ShardReader,
    compressed_morton_code,
    decode_shard,
    encode_shard,
    shard_block_shape,
    volume_sharding,
)
from ngshow.errors import InvalidRequest


def _random_chunks(rng: np.random.Generator, n: int, spread: int) -> dict[int, bytes]:
    keys = rng.choice(spread, size=n, replace=False)
    return {int(k): rng.bytes(int(rng.integers(0, 300))) for k in keys}


@pytest.mark.parametrize("hash_", ["identity", "murmurhash3_x86_128"])
@pytest.mark.parametrize("encoding", ["raw", "gzip"])
def test_round_trip_and_cloudvolume_agrees(hash_: str, encoding: str) -> None:
    from cloudvolume.datasource.precomputed.sharding import ShardingSpecification

    spec = ShardingSpec(2, 3, 2, hash_, encoding, encoding)  # type: ignore[arg-type]
    theirs = ShardingSpecification(
        "neuroglancer_uint64_sharded_v1", 2, hash_, 3, 2, encoding, encoding  # type: ignore[arg-type]
    )
    rng = np.random.default_rng(1)
    everything = _random_chunks(rng, 400, 1 << 40)
    for key in list(everything)[:100]:
        loc = theirs.compute_shard_location(key)
        assert spec.shard_and_minishard(key) == (int(loc.shard_number, 16), loc.minishard_number)
        assert spec.shard_name(spec.shard_and_minishard(key)[0]) == f"{loc.shard_number}.shard"
    for shard, keys in spec.group(everything).items():
        chunks = {k: everything[k] for k in keys}
        data = encode_shard(chunks, spec)
        assert decode_shard(data, spec) == chunks
        reader = ShardReader(lambda a, b: data[a:b], spec, size=len(data))
        some = keys[: len(keys) // 2]
        assert reader.get_many(some) == {k: chunks[k] for k in some}
        assert reader.get(keys[0]) == chunks[keys[0]]
        absent = next(k for k in range(1 << 20) if k not in everything and spec.shard_and_minishard(k)[0] == shard)
        assert reader.get(absent) is None
        # cloud-volume's own disassembler reads the same file.
        from cloudvolume.datasource.precomputed.sharding import ShardReader as CvReader

        cv = CvReader.__new__(CvReader)
        cv.spec = theirs
        assert {int(k): bytes(v) for k, v in cv.disassemble_shard(data).items()} == chunks


def test_spec_json_and_names() -> None:
    spec = ShardingSpec(1, 4, 9, "murmurhash3_x86_128", "gzip", "raw")
    assert ShardingSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
    assert spec.shard_name(5) == "005.shard"
    assert ShardingSpec(0, 0, 0).shard_name(0) == "0.shard"
    assert ShardingSpec(0, 0, 4).shard_name(15) == "f.shard"
    # "minishard_index_encoding" and "data_encoding" default to raw when absent.
    parsed = ShardingSpec.from_json(
        {"@type": "neuroglancer_uint64_sharded_v1", "preshift_bits": 0, "hash": "identity",
         "minishard_bits": 1, "shard_bits": 1}
    )
    assert parsed.minishard_index_encoding == parsed.data_encoding == "raw"
    with pytest.raises(InvalidRequest, match="hash"):
        ShardingSpec(0, 1, 1, "md5")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest, match="@type"):
        ShardingSpec.from_json({"@type": "x"})
    with pytest.raises(InvalidRequest, match="shards"):
        encode_shard({0: b"a", 2: b"b"}, ShardingSpec(0, 1, 4))


def test_corrupt_shards_are_caught() -> None:
    spec = ShardingSpec(0, 2, 0, "identity", "gzip", "raw")
    chunks = {k: bytes([k]) * 50 for k in range(10)}
    data = encode_shard(chunks, spec)
    with pytest.raises(ShardError, match="truncated|outside"):
        decode_shard(data[:-5], spec)
    with pytest.raises(ShardError, match="outside|truncated"):
        decode_shard(data[: spec.shard_index_bytes + 20], spec)
    # A minishard index pointing past the end of the file.
    bad = bytearray(data)
    bad[8:16] = np.uint64(len(data) * 2).tobytes()
    with pytest.raises(ShardError):
        decode_shard(bytes(bad), spec)
    # A minishard index that does not decode.
    index = np.frombuffer(data[: spec.shard_index_bytes], "<u8").reshape(-1, 2)
    start = int(index[0, 0]) + spec.shard_index_bytes
    bad = bytearray(data)
    bad[start : start + 4] = b"\0\0\0\0"
    with pytest.raises(ShardError, match="gzip"):
        decode_shard(bytes(bad), spec)


def test_compressed_morton_code_follows_the_spec() -> None:
    # The spec's algorithm, bit by bit, for an asymmetric grid.
    grid = (5, 2, 9)
    positions = np.stack(np.meshgrid(*(np.arange(g) for g in grid), indexing="ij"), -1).reshape(-1, 3)
    codes = compressed_morton_code(positions, grid)
    for p, code in zip(positions, codes):
        j, expected = 0, 0
        for i in range(4):
            for d in range(3):
                if 2**i < grid[d]:
                    expected |= ((int(p[d]) >> i) & 1) << j
                    j += 1
        assert int(code) == expected
    assert len(set(codes.tolist())) == len(codes)
    assert shard_block_shape(grid, 0) == (1, 1, 1)
    assert shard_block_shape(grid, 4) == (4, 2, 2)  # bits: x y z, x z, x z, z -> x y z x
    with pytest.raises(InvalidRequest, match="outside"):
        compressed_morton_code([[5, 0, 0]], grid)


def _write_sharded_volume(root: Path, volume: np.ndarray, chunk: tuple[int, int, int], per_shard: int) -> ShardingSpec:
    """A one-scale raw uint16 volume written by hand with encode_shard (x, y, z = volume.T)."""
    size = volume.shape[::-1]
    grid = tuple(-(-n // c) for n, c in zip(size, chunk))
    spec = volume_sharding(grid, per_shard, data_encoding="gzip")
    info = {
        "@type": "neuroglancer_multiscale_volume", "type": "image", "data_type": "uint16",
        "num_channels": 1,
        "scales": [{"key": "s0", "size": list(size), "resolution": [1, 1, 1], "voxel_offset": [0, 0, 0],
                    "chunk_sizes": [list(chunk)], "encoding": "raw", "sharding": spec.to_json()}],
    }
    (root / "s0").mkdir(parents=True)
    (root / "info").write_text(json.dumps(info))
    positions = np.stack(np.meshgrid(*(np.arange(g) for g in grid), indexing="ij"), -1).reshape(-1, 3)
    chunks: dict[int, bytes] = {}
    for p, code in zip(positions, compressed_morton_code(positions, grid)):
        lo = [int(a) * c for a, c in zip(p, chunk)]
        hi = [min(a + c, n) for a, c, n in zip(lo, chunk, size)]
        block = volume[lo[2] : hi[2], lo[1] : hi[1], lo[0] : hi[0]]
        chunks[int(code)] = np.ascontiguousarray(block, dtype="<u2").tobytes()
    shards = spec.group(chunks)
    block = shard_block_shape(grid, spec.preshift_bits + spec.minishard_bits)
    assert len(shards) == np.prod([-(-g // b) for g, b in zip(grid, block)])
    for shard, keys in shards.items():
        (root / "s0" / spec.shard_name(shard)).write_bytes(encode_shard({k: chunks[k] for k in keys}, spec))
    return spec


@pytest.mark.parametrize(
    ("shape", "per_shard"), [((37, 50, 70), 8), ((16, 16, 100), 5), ((9, 9, 9), 1000)]
)
def test_tensorstore_reads_a_volume_sharded_here(tmp_path: Path, shape: tuple[int, int, int], per_shard: int) -> None:
    ts = pytest.importorskip("tensorstore")
    volume = np.random.default_rng(0).integers(0, 60000, size=shape, dtype=np.uint16)
    _write_sharded_volume(tmp_path, volume, (8, 16, 4), per_shard)
    store = ts.open({"driver": "neuroglancer_precomputed", "kvstore": f"file://{tmp_path}"}).result()
    got = store.read().result()[..., 0]  # (x, y, z)
    np.testing.assert_array_equal(np.asarray(got).T, volume)


def test_volume_sharding_rejects_nonsense() -> None:
    with pytest.raises(InvalidRequest, match="at least one chunk"):
        volume_sharding((4, 4, 4), 0)
    spec = volume_sharding((1, 1, 1), 64)
    assert (spec.shard_bits, spec.minishard_bits, spec.preshift_bits) == (0, 0, 0)
