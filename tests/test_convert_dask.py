"""The same plan on a real dask.distributed cluster (2 worker processes on loopback) writes the
same bytes as on the default process pool."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from distributed import Client, LocalCluster

from ngshow.convert import plan, run

from .test_convert import image_volume, label_volume, tree


def test_dask_cluster_output_is_byte_identical_to_process_pool(tmp_path: Path) -> None:
    seg = label_volume().astype(np.uint32)
    img = image_volume()

    def plans(root: Path) -> list:  # type: ignore[type-arg]
        return [
            plan(seg, root / "seg", kind="segmentation", voxel_size=(8, 8, 8), chunk_size=16,
                 mesh=True, memory_budget=1 << 20),
            plan(img, root / "img", voxel_size=(4, 4, 40), chunk_size=32),
            plan(seg, root / "seg-sharded", kind="segmentation", voxel_size=(8, 8, 8), chunk_size=16,
                 mesh=True, memory_budget=1 << 20, sharding="on"),
            plan(img, root / "img-sharded", voxel_size=(4, 4, 4), chunk_size=16,
                 memory_budget=1 << 18, sharding="on"),
        ]

    for p in plans(tmp_path / "pool"):
        run(p, workers=2, progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        executor = client.get_executor(pure=False)
        reports = [run(p, executor, progress=False) for p in plans(tmp_path / "dask")]
        assert len(client.scheduler_info()["workers"]) == 2
    assert all(s.written > 0 for r in reports for s in r.stages)
    for name in ("seg", "img", "seg-sharded", "img-sharded"):
        pool_tree, dask_tree = tree(tmp_path / "pool" / name), tree(tmp_path / "dask" / name)
        assert len(pool_tree) > 10
        assert any(k.endswith(".shard") for k in pool_tree) == name.endswith("sharded")
        assert pool_tree == dask_tree
