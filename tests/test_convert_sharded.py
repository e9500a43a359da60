"""Sharded volumes from ``plan(..., sharding=...)``: read back by TensorStore, one task per shard,
downsampling across shard boundaries, the same pixels as unsharded, validate, bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import Executor
from pathlib import Path

import numpy as np
import pytest

from ngshow.convert import plan, run, validate
from ngshow.convert.precomputed import Scale
from ngshow.convert.sharding import ShardingSpec, ShardReader, decode_shard
from ngshow.errors import InvalidRequest

from .test_convert import image_volume, label_volume, pyramid, read_scale, tree


@pytest.fixture(scope="module")
def pool() -> Iterator[Executor]:
    from ngshow.convert import default_executor

    ex = default_executor(2)
    yield ex
    ex.shutdown()


def _sharded_scales(root: Path) -> list[dict]:  # type: ignore[type-arg]
    return [s for s in json.loads((root / "info").read_text())["scales"] if "sharding" in s]


def test_sharded_image_every_scale_matches_tensorstore(tmp_path: Path, pool: Executor) -> None:
    vol = image_volume()  # (40, 70, 90): 3 x 5 x 6 chunks of 16^3 at scale 0
    root = tmp_path / "img"
    # A small budget makes several shards per scale, so downsampling crosses shard boundaries.
    p = plan(vol, root, voxel_size=(4, 4, 4), chunk_size=16, sharding="on", memory_budget=1 << 18)
    run(p, pool, progress=False)
    scales = _sharded_scales(root)
    assert len(scales) == len(p.info["scales"]) >= 3
    for s in scales:
        assert s["sharding"]["@type"] == "neuroglancer_uint64_sharded_v1"
        assert s["sharding"]["hash"] == "identity"
        assert s["sharding"]["minishard_index_encoding"] == "gzip"
        assert s["sharding"]["data_encoding"] == "gzip"  # raw chunks are gzipped in the shard
        assert len(s["chunk_sizes"]) == 1
        files = sorted(f.name for f in (root / s["key"]).iterdir())
        assert files and all(f.endswith(".shard") for f in files)
    assert len(list((root / scales[0]["key"]).iterdir())) > 2
    # Scale-0 tasks (which also write the fused mips) each write whole shards of every scale
    # they write: their blocks start on those scales' shard grids.
    first = p.stages[0]
    assert 1 < len(first) <= len(list((root / scales[0]["key"]).iterdir()))
    for task in first.tasks:
        for s in first.writes:
            f = [a // b for a, b in zip(s.factor, first.writes[0].factor)]
            assert all((lo // fi) % shard == 0 for lo, fi, shard in zip(task.lo, f, s.shard_shape))
    for i, want in enumerate(pyramid(vol, p, mode=False)):
        np.testing.assert_array_equal(read_scale(root, i), want, err_msg=f"scale {i}")
    assert validate(str(root), full=True) == []


def test_sharded_segmentation_equals_unsharded(tmp_path: Path, pool: Executor) -> None:
    seg = label_volume()
    kw = dict(kind="segmentation", voxel_size=(8, 8, 8), chunk_size=16, memory_budget=1 << 20, min_tasks=1)
    run(plan(seg, tmp_path / "flat", sharding="off", **kw), pool, progress=False)  # type: ignore[arg-type]
    p = plan(seg, tmp_path / "sharded", sharding=True, **kw)  # type: ignore[arg-type]
    run(p, pool, progress=False)
    for i, want in enumerate(pyramid(seg, p, mode=True)):
        np.testing.assert_array_equal(read_scale(tmp_path / "sharded", i), want, err_msg=f"scale {i}")
        np.testing.assert_array_equal(read_scale(tmp_path / "flat", i), want)
    flat, sharded = tree(tmp_path / "flat"), tree(tmp_path / "sharded")
    assert sum(k.endswith(".shard") for k in sharded) < sum("-" in k for k in flat) / 3
    # The chunks inside the shards are the unsharded files' bytes (compressed_segmentation).
    scale = Scale(**{**p_scale(p, 0)})
    spec = scale.sharding
    assert spec is not None and spec.data_encoding == "raw"
    inside: dict[int, bytes] = {}
    for key, data in sharded.items():
        if key.startswith(scale.key + "/"):
            inside.update(decode_shard(data, spec))
    for lo, hi in scale.all_chunks():
        assert inside[scale.chunk_id(lo)] == flat[scale.chunk_key(lo, hi)]
    assert validate(str(tmp_path / "sharded"), full=True) == []
    # Rerunning skips every task and changes no byte.
    report = run(p, pool, progress=False)
    assert all(s.skipped_tasks == s.tasks for s in report.stages)
    assert tree(tmp_path / "sharded") == sharded


def p_scale(p, index: int) -> dict:  # type: ignore[no-untyped-def, type-arg]
    """The Scale fields of a plan's scale ``index`` (from its first task that writes it)."""
    s = p.info["scales"][index]
    return dict(
        key=s["key"], size=tuple(s["size"]), resolution=tuple(s["resolution"]),
        voxel_offset=tuple(s["voxel_offset"]), chunk_size=tuple(s["chunk_sizes"][0]),
        encoding=s["encoding"], sharding=ShardingSpec.from_json(s["sharding"]),
    )


def test_auto_shards_only_scales_with_many_chunks(tmp_path: Path) -> None:
    vol = np.zeros((8, 256, 256), np.uint8)  # 64 x 64 x 2 chunks of 4^3 = 8192; 2^14 at 2x2x2
    p = plan(vol, tmp_path / "a", chunk_size=(4, 4, 4), sharding="auto")
    assert ["sharding" in s for s in p.info["scales"]] == [False] * len(p.info["scales"])
    vol = np.zeros((16, 256, 256), np.uint8)  # 16384 chunks at scale 0, 2048 at scale 1
    p = plan(vol, tmp_path / "b", chunk_size=(4, 4, 4), sharding="auto")
    assert ["sharding" in s for s in p.info["scales"]][:2] == [True, False]


def test_bad_sharding_requests_fail_before_any_task(tmp_path: Path) -> None:
    vol = np.zeros((64, 64, 64), np.uint16)
    with pytest.raises(InvalidRequest, match="memory_budget .* too small"):
        plan(vol, tmp_path / "x", chunk_size=64, sharding="on", memory_budget=1 << 20)
    with pytest.raises(InvalidRequest, match="sharding must be"):
        plan(vol, tmp_path / "x", sharding="yes")  # type: ignore[arg-type]
    assert not (tmp_path / "x").exists()


def test_validate_catches_broken_shards(tmp_path: Path, pool: Executor) -> None:
    root = tmp_path / "seg"
    run(plan(label_volume(), root, kind="segmentation", chunk_size=16, sharding="on",
             memory_budget=1 << 20), pool, progress=False)
    assert validate(str(root), full=True) == []
    info = json.loads((root / "info").read_text())
    s0 = info["scales"][0]
    spec = ShardingSpec.from_json(s0["sharding"])
    shards = sorted((root / s0["key"]).iterdir())
    # A truncated shard.
    good = shards[0].read_bytes()
    shards[0].write_bytes(good[: len(good) - 7])
    problems = validate(str(root))
    assert any(p.key == f"{s0['key']}/{shards[0].name}" for p in problems), problems
    shards[0].write_bytes(good)
    # A minishard index pointing at the wrong bytes.
    reader = ShardReader(lambda a, b: good[a:b], spec)
    m = next(i for i in range(spec.num_minishards) if reader.minishard(i))
    bad = bytearray(good)
    bad[m * 16 : m * 16 + 8] = np.uint64(3).tobytes()
    shards[0].write_bytes(bytes(bad))
    assert any("minishard" in p.message for p in validate(str(root))), validate(str(root))
    shards[0].write_bytes(good)
    # A missing shard: its chunks are reported missing.
    shards[-1].unlink()
    problems = validate(str(root))
    assert any("missing" in p.message for p in problems), problems


def test_cli_sharding_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ngshow.convert.cli import main as cli_main

    np.save(tmp_path / "img.npy", image_volume())
    out = tmp_path / "out"
    args = ["convert", str(tmp_path / "img.npy"), str(out), "--chunk-size", "16", "--sharding", "on",
            "--workers", "1", "--no-progress", "--executor", "threads"]
    assert cli_main(args) == 0
    assert all("sharding" in s for s in json.loads((out / "info").read_text())["scales"])
    assert cli_main(["validate", str(out), "--full"]) == 0
    assert "ok" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        cli_main(["convert", str(tmp_path / "img.npy"), str(out), "--sharding", "maybe"])
    assert exit_.value.code == 2
    assert "--sharding" in capsys.readouterr().err


def test_sharded_dataset_on_an_fsspec_store_is_the_same(tmp_path: Path) -> None:
    import fsspec
    from concurrent.futures import ThreadPoolExecutor

    seg = label_volume()
    kw = dict(kind="segmentation", voxel_size=(8, 8, 8), chunk_size=16, mesh=True, sharding="on",
              memory_budget=1 << 20)
    with ThreadPoolExecutor(2) as ex:  # memory:// lives in this process only
        run(plan(seg, "memory://ngshow-sharded/seg", **kw), ex, progress=False)  # type: ignore[arg-type]
        run(plan(seg, tmp_path / "seg", **kw), ex, progress=False)  # type: ignore[arg-type]
    fs = fsspec.filesystem("memory")
    names = {p.split("/ngshow-sharded/seg/", 1)[1] for p in fs.find("/ngshow-sharded/seg")}
    local = tree(tmp_path / "seg")
    assert {n for n in names if not n.startswith(".ngshow")} == {n for n in local if not n.startswith(".ngshow")}
    assert any(n.endswith(".shard") for n in names)
    bad = [n for n in local if not n.startswith(".ngshow") and fs.cat_file(f"/ngshow-sharded/seg/{n}") != local[n]]
    assert not bad, bad
    assert validate("memory://ngshow-sharded/seg", full=True) == []
