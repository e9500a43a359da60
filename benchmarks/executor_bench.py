"""The convert pool before and after: multiprocessing's fork-server pool vs ``CleanProcessPool``.

Runs the same plans (an image pyramid and a segmentation with meshes) on both executors, best of
``--repeat``, pool start-up included, two ways: the first run in a fresh interpreter (what a
script pays: the fork server must start too) and repeated runs in one process (the fork server is
already up then, so only its cheap forks remain).  The fork-server pool is the one ``run()`` used
before (it preloads ``__main__``, hence the main guard below, which the clean pool does not need).
Also checks both wrote the same bytes.

    .venv/bin/python benchmarks/executor_bench.py --size 256 --workers 2 --repeat 3
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path
from typing import Any

from ngshow.convert import plan, run
from ngshow.convert.executors import CleanProcessPool

from convert_bench import make_image, make_labels


def forkserver_pool(workers: int) -> Executor:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", "numpy", "compressed_segmentation", "ngshow.convert.tasks"])
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)


def digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and ".ngshow/tmp" not in p.as_posix()):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def one(make_pool: Callable[[int], Executor], data: Any, kind: str, workers: int, out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    pool = make_pool(workers)
    try:
        p = plan(data, str(out), kind=kind, voxel_size=(8, 8, 8), mesh=kind == "segmentation")  # type: ignore[arg-type]
        run(p, pool, progress=False)
    finally:
        pool.shutdown(wait=True)
    return time.perf_counter() - t0


POOLS: dict[str, Callable[[int], Executor]] = {"forkserver": forkserver_pool, "clean": CleanProcessPool}


def cases(size: int) -> dict[str, Any]:
    return {"image": make_image(size), "segmentation": make_labels(size)}


def fresh(name: str, kind: str, size: int, workers: int, out: Path) -> float:
    """Seconds of the first run in a new interpreter (timed there, after the array is made)."""
    here = os.path.dirname(os.path.abspath(__file__))
    result = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--one", name, kind, str(out), "--size", str(size),
         "--workers", str(workers)],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join([here, *sys.path])},
    )
    return float(result.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one", nargs=3, metavar=("POOL", "KIND", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        name, kind, out = args.one
        print(one(POOLS[name], cases(args.size)[kind], kind, args.workers, Path(out)))
        return
    data = cases(args.size)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{args.size}^3, {args.workers} workers, best of {args.repeat} (load {os.getloadavg()[0]:.1f})")
        print(f"{'case':<30}{'forkserver s':>14}{'clean s':>10}{'clean/forkserver':>18}  same bytes")
        for mode in ("first run in a fresh process", "repeated runs in one process"):
            for kind in data:
                best: dict[str, float] = {name: float("inf") for name in POOLS}
                digests: dict[str, str] = {}
                for _ in range(args.repeat):
                    for name, make in POOLS.items():
                        out = Path(tmp, name, kind)
                        if mode.startswith("first"):
                            shutil.rmtree(out, ignore_errors=True)
                            seconds = fresh(name, kind, args.size, args.workers, out)
                        else:
                            seconds = one(make, data[kind], kind, args.workers, out)
                        best[name] = min(best[name], seconds)
                        digests[name] = digest(out)
                ratio = best["clean"] / best["forkserver"]
                same = digests["clean"] == digests["forkserver"]
                label = f"{kind}, {mode.split(' ')[0]} run" if mode.startswith("first") else f"{kind}, repeated"
                print(f"{label:<30}{best['forkserver']:>14.2f}{best['clean']:>10.2f}{ratio:>18.2f}  {same}")


if __name__ == "__main__":
    main()
