"""ngshow convert vs igneous: chunks + pyramid + meshes of the same image and segmentation;
then the sharded path (``--sharded``): ngshow's sharded volumes and sharded multi-resolution
meshes vs igneous's (``image xfer --sharded``, sharded downsampling, ``mesh forge --sharded`` +
``mesh merge-sharded``) and vs TensorStore writing the same sharded scale 0, with file counts.

Prints the end-to-end seconds (best of ``--repeat`` runs; ngshow's from ``plan()`` to the end of
``run()``, worker start-up included), the split by stage, MB/s (of scale-0 volume) and the ratios
igneous / ngshow, then the scaling of ngshow from 1 to 2 Dask workers.  Meshes are compared two
ways: igneous with its default simplification (smaller meshes, extra work) and without (the same
kind of output as ngshow's, which smooths and does not simplify).  A benchmark, not a test: it
asserts nothing.  The machine's load average is printed with each figure; run it on an idle
machine for numbers worth quoting.

    .venv/bin/python benchmarks/convert_bench.py --size 512 --workers 2 --repeat 3
    .venv/bin/python benchmarks/convert_bench.py --size 512 --workers 2 --sharded-only

Needs the ``bench`` extra (``igneous-pipeline``) and the ``convert`` extra (``distributed``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ngshow.convert import open_input, plan, run


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


def load() -> str:
    return "load %.1f" % os.getloadavg()[0]


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def du(path: Path, sub: str = "") -> float:
    """MB of the files under ``path / sub``."""
    return sum(f.stat().st_size for f in (path / sub).rglob("*") if f.is_file()) / 1e6


def ngshow_once(
    data: Any, dest: Path, *, seg: bool, executor: Any = None, workers: int,
    sharding: str = "off", mesh_format: str = "legacy", mip_levels: Any = "auto", mesh: bool = True,
) -> dict[str, float]:
    """One conversion; ``total`` is wall time from plan() to the end of run()."""
    t0 = time.perf_counter()
    p = plan(
        data, dest, kind="segmentation" if seg else "image", voxel_size=(8, 8, 8),
        chunk_size=(64, 64, 64), mesh=seg and mesh, mesh_mip=0, sharding=sharding,  # type: ignore[arg-type]
        mesh_format=mesh_format, mip_levels=mip_levels,  # type: ignore[arg-type]
    )
    report = run(p, executor, workers=workers, progress=False)
    out = {"chunks": 0.0, "pyramid": 0.0, "mesh": 0.0, "total": time.perf_counter() - t0}
    for s in report.stages:
        # The scale-0 stage also writes the first mip(s) of the pyramid (fused).
        stage = "chunks" if s.name.startswith("chunks") else (
            "pyramid" if s.name.startswith("downsample") else "mesh")
        out[stage] += s.seconds
    if seg:
        out["mesh MB"] = du(dest, "mesh")
    return out


def best(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the shortest total, with the median total and the spread for reference."""
    top = dict(min(runs, key=lambda r: r["total"]))
    totals = [r["total"] for r in runs]
    top["median"] = statistics.median(totals)
    top["worst"] = max(totals)
    top["first"] = totals[0]  # the cold run: starts ngshow's fork server / imports igneous
    return top


def ngshow_stages(data: Any, root: Path, *, seg: bool, workers: int, repeat: int) -> dict[str, float]:
    runs = []
    for i in range(repeat):
        dest = root / f"ng{i}"
        runs.append(ngshow_once(data, dest, seg=seg, workers=workers))
        shutil.rmtree(dest)
    return best(runs)


def igneous_once(
    data: np.ndarray[Any, Any], dest: Path, *, seg: bool, workers: int
) -> dict[str, float]:
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
    out = {"chunks": 0.0, "pyramid": 0.0}

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
        for variant, simplify in (("mesh", True), ("mesh-nosimp", False)):
            shutil.rmtree(dest / "mesh", ignore_errors=True)

            def mesh() -> None:
                queue(tc.create_meshing_tasks(url, mip=0, compress=None, spatial_index=False,
                                              simplification=simplify))
                queue(tc.create_mesh_manifest_tasks(url, magnitude=2))

            out[variant] = timed(mesh)
            out[f"{variant} MB"] = du(dest, "mesh")
    out["total"] = out["chunks"] + out["pyramid"] + out.get("mesh", 0.0)
    if seg:
        out["total-nosimp"] = out["chunks"] + out["pyramid"] + out["mesh-nosimp"]
    return out


def igneous_stages(
    data: np.ndarray[Any, Any], root: Path, *, seg: bool, workers: int, repeat: int
) -> dict[str, float]:
    runs = []
    for i in range(repeat):
        dest = root / f"ig{i}"
        runs.append(igneous_once(data, dest, seg=seg, workers=workers))
        shutil.rmtree(dest)
    return best(runs)


def dask_scaling(
    data: np.ndarray[Any, Any], root: Path, workers: int, repeat: int
) -> dict[int, list[float]]:
    """Seconds of whole conversions (with meshes) on 1 and on ``workers`` Dask workers.

    The input is a ``.npy`` the workers read themselves (on a cluster the input lives in shared
    storage, not in the driver's memory).  Both clusters are started and warmed up (a small
    conversion imports the task code and the codecs in every worker) before any timing, and the
    timed runs alternate between them, so drifting load from other jobs hits both alike.
    """
    from contextlib import ExitStack

    from distributed import Client, LocalCluster

    np.save(root / "labels.npy", data)
    source = open_input(str(root / "labels.npy"))
    warm = np.ascontiguousarray(data[:128, :128, :128])
    times: dict[int, list[float]] = {}
    with ExitStack() as stack:
        executors = {}
        for n in sorted({1, workers}):
            cluster = stack.enter_context(LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address=":0"))
            client = stack.enter_context(Client(cluster))
            client.wait_for_workers(n)
            executors[n] = client.get_executor(pure=False)
            ngshow_once(warm, root / f"warm{n}", seg=True, executor=executors[n], workers=n)
            shutil.rmtree(root / f"warm{n}")
            times[n] = []
        for i in range(repeat):
            for n, ex in executors.items():
                dest = root / f"dask{n}-{i}"
                t = ngshow_once(source, dest, seg=True, executor=ex, workers=n)["total"]
                times[n].append(t)
                print(f"  dask {n} worker(s) run {i + 1}: {t:.2f} s ({load()})", flush=True)
                shutil.rmtree(dest)
    return times


def files_per_dir(root: Path) -> dict[str, int]:
    """Files in each folder directly under ``root`` (scales, mesh), bookkeeping left out."""
    return {
        d.name: sum(1 for f in d.rglob("*") if f.is_file())
        for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")
    }


def tensorstore_sharded_scale0(data: np.ndarray[Any, Any], like: Path, dest: Path) -> float:
    """Seconds for TensorStore to write scale 0 with the sharding ngshow chose (in ``like``)."""
    import json

    import tensorstore as ts

    scale = json.loads((like / "info").read_text())["scales"][0]
    info = json.loads((like / "info").read_text())
    spec = {
        "driver": "neuroglancer_precomputed", "kvstore": f"file://{dest}",
        "multiscale_metadata": {"type": info["type"], "data_type": info["data_type"], "num_channels": 1},
        "scale_metadata": {k: scale[k] for k in ("size", "resolution", "encoding", "sharding")}
        | {"chunk_size": scale["chunk_sizes"][0]},
        "create": True, "delete_existing": True,
    }
    if "compressed_segmentation_block_size" in scale:
        spec["scale_metadata"]["compressed_segmentation_block_size"] = scale["compressed_segmentation_block_size"]
    t0 = time.perf_counter()
    store = ts.open(spec).result()
    store[...] = data.T[..., np.newaxis]
    return time.perf_counter() - t0


def igneous_sharded_once(data: np.ndarray[Any, Any], root: Path, *, seg: bool, workers: int) -> dict[str, float]:
    """igneous's sharded path from an unsharded copy of the input (written untimed)."""
    import igneous.task_creation as tc
    from cloudvolume import CloudVolume
    from taskqueue import LocalTaskQueue

    src, dst = root / "ig-src", root / "ig-sharded"
    info = CloudVolume.create_new_info(
        num_channels=1, layer_type="segmentation" if seg else "image", data_type=str(data.dtype),
        encoding="compressed_segmentation" if seg else "raw", resolution=(8, 8, 8),
        voxel_offset=(0, 0, 0), chunk_size=(64, 64, 64), volume_size=data.T.shape,
    )
    vol = CloudVolume(f"file://{src}", info=info, compress=False, parallel=workers, progress=False)
    vol.commit_info()
    vol[:, :, :] = data.T
    tq = LocalTaskQueue(parallel=workers, progress=False)

    def queue(tasks: Any) -> None:
        tq.insert(tasks)
        tq.execute(progress=False)

    out: dict[str, float] = {}
    out["chunks"] = timed(lambda: queue(tc.create_image_shard_transfer_tasks(
        f"file://{src}", f"file://{dst}", mip=0, chunk_size=(64, 64, 64))))
    mips = max(0, int(np.ceil(np.log2(max(data.shape) / 64))))

    def pyramid() -> None:
        for m in range(mips):
            queue(tc.create_image_shard_downsample_tasks(f"file://{dst}", mip=m, factor=(2, 2, 2)))

    out["pyramid"] = timed(pyramid)
    if seg:
        def mesh() -> None:
            queue(tc.create_meshing_tasks(f"file://{dst}", mip=0, sharded=True, compress=None))
            queue(tc.create_sharded_multires_mesh_tasks(f"file://{dst}", progress=False))

        out["mesh"] = timed(mesh)
    out["total"] = out["chunks"] + out["pyramid"] + out.get("mesh", 0.0)
    out["files"] = files_per_dir(dst)  # type: ignore[assignment]
    shutil.rmtree(src)
    shutil.rmtree(dst)
    return out


def sharded_section(name: str, data: np.ndarray[Any, Any], root: Path, *, workers: int,
                    repeat: int, skip_igneous: bool) -> None:
    seg = name == "segmentation"
    mb = data.nbytes / 1e6
    print(f"\nsharded {name}: {data.shape[0]}^3 {data.dtype} ({mb:.0f} MB), {workers} workers ({load()})",
          flush=True)
    runs = []
    for i in range(repeat):
        dest = root / f"ngs{i}"
        r = ngshow_once(data, dest, seg=seg, workers=workers, sharding="on", mesh_format="multires")
        r["files"] = files_per_dir(dest)  # type: ignore[assignment]
        runs.append(r)
        if i < repeat - 1:
            shutil.rmtree(dest)
    ng = best(runs)
    keep = root / f"ngs{repeat - 1}"
    flat = root / "flat"
    ngshow_once(data, flat, seg=seg, workers=workers, sharding="off", mesh_format="legacy")
    flat_files = files_per_dir(flat)
    shutil.rmtree(flat)
    # Scale 0 alone: ngshow vs TensorStore writing the same sharded scale.
    # Scale 0 alone, no meshes: the same work as TensorStore's.
    s0 = min(ngshow_once(data, root / f"s0-{i}", seg=seg, workers=workers, sharding="on",
                         mip_levels=0, mesh=False)["total"] for i in range(repeat))
    ts_s = min(tensorstore_sharded_scale0(data, keep, root / "ts") for _ in range(repeat))
    for i in range(repeat):
        shutil.rmtree(root / f"s0-{i}", ignore_errors=True)
    shutil.rmtree(root / "ts", ignore_errors=True)
    print(f"  scale 0 sharded: ngshow {s0:.2f} s ({mb / s0:.0f} MB/s), TensorStore {ts_s:.2f} s "
          f"({mb / ts_s:.0f} MB/s), ratio TensorStore/ngshow {ts_s / s0:.2f}")
    ig = None
    if not skip_igneous:
        ig = igneous_sharded_once(data, root, seg=seg, workers=workers)
    print(f"{'stage':10} {'ngshow s':>9} {'MB/s':>7} {'igneous s':>10} {'MB/s':>7} {'ratio':>6}")
    for stage in ["chunks", "pyramid"] + (["mesh"] if seg else []) + ["total"]:
        line = f"{stage:10} {ng[stage]:9.2f} {mb / ng[stage]:7.1f}"
        if ig is not None:
            line += f" {ig[stage]:10.2f} {mb / ig[stage]:7.1f} {ig[stage] / ng[stage]:6.2f}"
        print(line)
    print(f"  files per folder, ngshow sharded: {ng['files']}")
    print(f"  files per folder, ngshow unsharded (legacy meshes): {flat_files}")
    if ig is not None:
        print(f"  files per folder, igneous sharded: {ig['files']}")
    shutil.rmtree(keep)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=512, help="edge of the cubic volumes (default 512)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each measurement (best is shown)")
    ap.add_argument("--seg-igneous-repeat", type=int, default=1,
                    help="igneous runs on the segmentation (each takes minutes; default 1)")
    ap.add_argument("--skip-igneous", action="store_true")
    ap.add_argument("--skip-dask", action="store_true")
    ap.add_argument("--only", choices=("image", "segmentation"), default=None)
    ap.add_argument("--sharded-only", action="store_true", help="only the sharded comparison")
    ap.add_argument("--skip-sharded", action="store_true")
    args = ap.parse_args()
    n = args.size
    volumes = {"image": make_image, "segmentation": make_labels}
    root = Path(tempfile.mkdtemp(prefix="ngshow-convert-bench-"))
    try:
        for name, make in volumes.items():
            if args.only and name != args.only:
                continue
            if not args.skip_sharded:
                sharded_section(name, make(n), root, workers=args.workers, repeat=args.repeat,
                                skip_igneous=args.skip_igneous)
            if args.sharded_only:
                continue
            data = make(n)
            seg = name == "segmentation"
            mb = data.nbytes / 1e6
            print(f"\n{name}: {n}^3 {data.dtype} ({mb:.0f} MB), {args.workers} workers, "
                  f"best of {args.repeat} ({load()})", flush=True)
            ng = ngshow_stages(data, root, seg=seg, workers=args.workers, repeat=args.repeat)
            print(f"  ngshow totals: best {ng['total']:.2f} median {ng['median']:.2f} "
                  f"worst {ng['worst']:.2f} first {ng['first']:.2f} ({load()})", flush=True)
            ig = None
            if not args.skip_igneous:
                ig = igneous_stages(data, root, seg=seg, workers=args.workers,
                                    repeat=args.seg_igneous_repeat if seg else args.repeat)
                print(f"  igneous totals: best {ig['total']:.2f} median {ig['median']:.2f} "
                      f"worst {ig['worst']:.2f} first {ig['first']:.2f} ({load()})", flush=True)
            print(f"{'stage':14} {'ngshow s':>9} {'MB/s':>7} {'igneous s':>10} {'MB/s':>7} {'ratio':>6}")
            rows = [("chunks", "chunks"), ("pyramid", "pyramid")]
            if seg:
                rows += [("mesh", "mesh"), ("mesh", "mesh-nosimp")]
            rows += [("total", "total")] + ([("total", "total-nosimp")] if seg else [])
            for ours, theirs in rows:
                a = ng[ours]
                line = f"{theirs:14} {a:9.2f} {mb / a:7.1f}"
                if ig is not None:
                    b = ig[theirs]
                    line += f" {b:10.2f} {mb / b:7.1f} {b / a:6.2f}"
                print(line)
            if seg:
                sizes = f"mesh output: ngshow {ng['mesh MB']:.0f} MB"
                if ig is not None:
                    sizes += (f", igneous {ig['mesh MB']:.1f} MB simplified, "
                              f"{ig['mesh-nosimp MB']:.0f} MB not")
                print(sizes)
        if not args.skip_dask and not args.sharded_only and args.workers > 1 and args.only != "image":
            print(f"\nDask scaling (segmentation, all stages, .npy input, {load()})", flush=True)
            times = dask_scaling(make_labels(n), root, args.workers, args.repeat)
            b1, bn = min(times[1]), min(times[args.workers])
            m1, mn = statistics.median(times[1]), statistics.median(times[args.workers])
            print(f"1 worker best {b1:.2f} s median {m1:.2f} s; {args.workers} workers best {bn:.2f} s "
                  f"median {mn:.2f} s; speed-up {b1 / bn:.2f}x best, {m1 / mn:.2f}x median")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
