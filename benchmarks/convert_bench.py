"""ngshow convert vs igneous: chunks + pyramid + meshes of the same image and segmentation.

Prints seconds and MB/s (of scale-0 volume) per stage and the ratios igneous / ngshow, then the
scaling of ngshow from 1 to 2 Dask workers.  A benchmark, not a test: it asserts nothing.

    .venv/bin/python benchmarks/convert_bench.py --size 512 --workers 2

Needs the ``bench`` extra (``igneous-pipeline``) and the ``convert`` extra (``distributed``).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ngshow.convert import plan, run


def make_image(n: int) -> np.ndarray[Any, Any]:
    z, y, x = np.ogrid[:n, :n, :n]
    rng = np.random.default_rng(0)
    base = (np.sin(x / 9.0) + np.cos(y / 13.0) + np.sin(z / 7.0 + x / 31.0)) * 40 + 128
    return (base + rng.integers(0, 24, (n, n, n))).clip(0, 255).astype(np.uint8)


def make_labels(n: int, cell: int = 32) -> np.ndarray[Any, Any]:
    """Wavy cells about ``cell`` voxels across, ids scattered over uint32."""
    rng = np.random.default_rng(1)
    g = -(-n // cell) + 2
    ids = rng.permutation(g**3).astype(np.uint32).reshape(g, g, g) * 7919 + 1
    z, y, x = np.ogrid[:n, :n, :n]
    zi = ((z + 6 * np.sin(y / 17.0)) // cell + 1).astype(np.intp)
    yi = ((y + 6 * np.sin(x / 19.0)) // cell + 1).astype(np.intp)
    xi = ((x + 6 * np.sin(z / 23.0)) // cell + 1).astype(np.intp)
    return ids[zi, yi, xi]


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def ngshow_stages(
    data: Any, dest: Path, *, seg: bool, executor: Any = None, workers: int
) -> dict[str, float]:
    p = plan(
        data, dest, kind="segmentation" if seg else "image", voxel_size=(8, 8, 8),
        chunk_size=(64, 64, 64), mesh=seg, mesh_mip=0,
    )
    report = run(p, executor, workers=workers, progress=False)
    out = {"chunks": 0.0, "pyramid": 0.0, "mesh": 0.0}
    for s in report.stages:
        if s.name.startswith("chunks"):
            out["chunks"] += s.seconds
        elif s.name.startswith("downsample"):
            out["pyramid"] += s.seconds
        else:
            out["mesh"] += s.seconds
    return out


def igneous_stages(data: np.ndarray[Any, Any], dest: Path, *, seg: bool, workers: int) -> dict[str, float]:
    import igneous.task_creation as tc
    from cloudvolume import CloudVolume
    from taskqueue import LocalTaskQueue

    url = f"file://{dest}"
    xyz = data.T  # CloudVolume indexes (x, y, z)
    info = CloudVolume.create_new_info(
        num_channels=1, layer_type="segmentation" if seg else "image",
        data_type=str(data.dtype), encoding="compressed_segmentation" if seg else "raw",
        resolution=(8, 8, 8), voxel_offset=(0, 0, 0), chunk_size=(64, 64, 64),
        volume_size=xyz.shape, mesh="mesh" if seg else None,
    )
    out = {"chunks": 0.0, "pyramid": 0.0, "mesh": 0.0}

    def write() -> None:
        vol = CloudVolume(url, info=info, compress=False, parallel=workers, progress=False)
        vol.commit_info()
        vol[:, :, :] = xyz

    out["chunks"] = timed(write)
    tq = LocalTaskQueue(parallel=workers, progress=False)

    def queue(tasks: Any) -> None:
        tq.insert(tasks)
        tq.execute(progress=False)

    # The same pyramid as ngshow's: 2x2x2 per mip until one chunk covers the volume.
    mips = max(0, int(np.ceil(np.log2(max(data.shape) / 64))))
    tasks = tc.create_downsampling_tasks(
        url, mip=0, fill_missing=False, compress=None, factor=(2, 2, 2), num_mips=mips
    )
    out["pyramid"] = timed(lambda: queue(tasks))
    if seg:
        def mesh() -> None:
            queue(tc.create_meshing_tasks(url, mip=0, compress=None, spatial_index=False))
            queue(tc.create_mesh_manifest_tasks(url, magnitude=2))

        out["mesh"] = timed(mesh)
    return out


def dask_scaling(data: np.ndarray[Any, Any], root: Path, workers: int) -> dict[int, float]:
    from distributed import Client, LocalCluster

    from ngshow.convert import open_input

    # On a cluster the input lives in shared storage, not in the driver's memory: workers read
    # their regions from a .npy file instead of receiving them through the scheduler.
    np.save(root / "labels.npy", data)
    source = open_input(str(root / "labels.npy"))
    times = {}
    for n in sorted({1, workers}):
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None) as cluster, Client(cluster) as client:
            dest = root / f"dask{n}"
            times[n] = sum(ngshow_stages(source, dest, seg=True, executor=client.get_executor(pure=False),
                                         workers=n).values())
            shutil.rmtree(dest)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=512, help="edge of the cubic volumes (default 512)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-igneous", action="store_true")
    ap.add_argument("--skip-dask", action="store_true")
    args = ap.parse_args()
    n = args.size
    volumes = {"image": make_image(n), "segmentation": make_labels(n)}
    root = Path(tempfile.mkdtemp(prefix="ngshow-convert-bench-"))
    try:
        for name, data in volumes.items():
            seg = name == "segmentation"
            mb = data.nbytes / 1e6
            print(f"\n{name}: {n}^3 {data.dtype} ({mb:.0f} MB), {args.workers} workers")
            ng = ngshow_stages(data, root / f"ng-{name}", seg=seg, workers=args.workers)
            ig = None if args.skip_igneous else igneous_stages(data, root / f"ig-{name}", seg=seg,
                                                                workers=args.workers)
            print(f"{'stage':10} {'ngshow s':>9} {'MB/s':>7} {'igneous s':>10} {'MB/s':>7} {'ratio':>6}")
            for stage in ("chunks", "pyramid", "mesh"):
                if stage == "mesh" and not seg:
                    continue
                a = ng[stage]
                line = f"{stage:10} {a:9.2f} {mb / a:7.1f}"
                if ig is not None:
                    b = ig[stage]
                    line += f" {b:10.2f} {mb / b:7.1f} {b / a:6.2f}"
                print(line)
            total = sum(ng.values())
            line = f"{'total':10} {total:9.2f} {mb / total:7.1f}"
            if ig is not None:
                t_ig = sum(ig.values())
                line += f" {t_ig:10.2f} {mb / t_ig:7.1f} {t_ig / total:6.2f}"
            print(line)
        if not args.skip_dask and args.workers > 1:
            times = dask_scaling(volumes["segmentation"], root, args.workers)
            print(f"\nDask scaling (segmentation, all stages): "
                  + ", ".join(f"{k} worker(s) {v:.2f} s" for k, v in times.items())
                  + f"; speed-up {times[1] / times[args.workers]:.2f}x on {args.workers}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
