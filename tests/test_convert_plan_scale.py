"""Plans at petabyte scale: lazy task grids (length, random access, slices), a dry run of a 1 PiB
dask volume computed without making its tasks, bounded plan memory, ``--dry-run``."""

from __future__ import annotations

import math
import pickle
import tracemalloc
from pathlib import Path

import dask.array as da
import numpy as np
import pytest

from ngshow.convert import plan
from ngshow.convert.cli import main as cli_main
from ngshow.convert.taskgrid import TaskGrid, Tiling

from .test_convert import image_volume

PIB_SHAPE = (65536, 131072, 131072)  # (z, y, x) uint8: 2**50 bytes


def test_task_grids_are_lazy_sequences(tmp_path: Path) -> None:
    p = plan(image_volume(), tmp_path / "never", chunk_size=16, fuse=False)
    grid = p.stages[0].tasks
    assert isinstance(grid, TaskGrid)
    every = list(grid)
    assert len(every) == len(grid) > 8
    assert [grid[i] for i in range(len(grid))] == every
    assert grid[-1] == every[-1]
    part = grid[3:9:2]
    assert isinstance(part, TaskGrid) and list(part) == every[3:9:2] and len(part) == 3
    assert list(part[1:]) == every[5:9:2]
    # The blocks tile the volume exactly once.
    covered = np.zeros(image_volume().shape, np.int32)
    for t in every:
        covered[t.lo[2] : t.hi[2], t.lo[1] : t.hi[1], t.lo[0] : t.hi[0]] += 1
    assert (covered == 1).all()
    assert not (tmp_path / "never").exists()


def test_tiling_boxes() -> None:
    t = Tiling((10, 7, 5), (4, 4, 4))
    assert t.shape == (3, 2, 2) and len(t) == 12
    assert t.box(0) == ((0, 0, 0), (4, 4, 4))
    assert t.box(2) == ((8, 0, 0), (10, 4, 4))
    assert t.box(11) == ((8, 4, 4), (10, 7, 5))


def test_petabyte_plan_and_dry_run_without_making_tasks(tmp_path: Path) -> None:
    volume = da.zeros(PIB_SHAPE, dtype=np.uint8, chunks=(256, 1024, 1024))
    tracemalloc.start()
    p = plan(volume, tmp_path / "never", voxel_size=(4, 4, 40), sharding="auto")
    text = p.describe()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 50 << 20, peak  # the plan is arithmetic: no per-task memory
    assert len(pickle.dumps(p)) < 100_000
    first = p.stages[0]
    size = (131072, 131072, 65536)
    s0 = p.info["scales"][0]
    assert "sharding" in s0  # 2**32 chunks of 64^3: far past the auto threshold
    # Scale 0 has one file per shard, and its stage one task per block of whole shards.
    spec = s0["sharding"]
    per_shard = 1 << (spec["preshift_bits"] + spec["minishard_bits"])
    chunks = math.prod(n // 64 for n in size)
    assert first.files() == chunks // per_shard
    assert len(first) * first.writes[0].shard_shape[0] > 0
    assert first.raw_bytes() >= 1 << 50
    assert first.task_memory <= 512 << 20
    assert sum(len(s) for s in p.stages) == len(p) > 10_000_000
    # Any task can be made on demand, and is a whole-shard block.
    task = first.tasks[len(first) // 2]
    shard = first.writes[0].shard_shape
    assert all(a % s == 0 for a, s in zip(task.lo, shard))
    assert "1.0 PiB uncompressed" in text and "per task" in text
    assert not (tmp_path / "never").exists()


def test_cli_dry_run_prints_the_plan_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "img.npy", image_volume())
    out = tmp_path / "out"
    assert cli_main(["convert", str(tmp_path / "img.npy"), str(out), "--chunk-size", "16",
                     "--sharding", "on", "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "chunks 1_1_1" in text and "tasks" in text and "files" in text and "per task" in text
    assert "sharded scales: 1_1_1" in text
    assert not out.exists()
