"""ngshow's precomputed annotation writer vs PyPI ``neuroglancer``'s ``AnnotationWriter``.

The same table of synapses (points with a ``pre`` and a ``post`` segment id, uniformly spread over
4000 x 3000 x 300 voxels, 50 000 segments) is written by both, each in a subprocess whose process
tree's resident memory is sampled every 50 ms.  ngshow reads the table from a parquet file (one row
group at a time) and writes sharded indexes with a multi-level spatial index on a process pool;
neuroglancer's writer is fed row by row (its API), holds everything in memory, and writes one file
per annotation, per segment, and one spatial cell.  Prints seconds, peak memory, files written and
the ratios.  A benchmark, not a test: it asserts nothing.

    .venv/bin/python benchmarks/annotation_bench.py --sizes 1000000,10000000 --workers 2

``--peer-max-write N`` (default 2 000 000) skips neuroglancer's ``write()`` above N annotations:
it makes one file per annotation, and 10^7 of them would take most of the inodes of a shared
disk; its in-memory phase is still run and measured.  Needs the ``bench`` extra.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def make_table(n: int, path: Path) -> None:
    import pandas as pd

    rng = np.random.default_rng(0)
    rows = 1 << 20
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    for start in range(0, n, rows):
        m = min(rows, n - start)
        xyz = rng.uniform([0, 0, 0], [4000, 3000, 300], size=(m, 3))
        frame = pd.DataFrame({"x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2],
                              "pre": rng.integers(1, 50_000, m), "post": rng.integers(1, 50_000, m)})
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=rows)
    assert writer is not None
    writer.close()


def run_ngshow(table: str, out: str, workers: int) -> dict[str, Any]:
    from ngshow.convert.annotations import write_annotations

    report = write_annotations(table, out, kind="point", position=["x", "y", "z"],
                               relationships={"pre": "pre", "post": "post"}, voxel_size=(8, 8, 40), workers=workers)
    return {"stages": {s.name: round(s.seconds, 2) for s in report.stages}}


def run_neuroglancer(table: str, out: str, write: bool) -> dict[str, Any]:
    import neuroglancer
    import pyarrow.parquet as pq
    from neuroglancer.write_annotations import AnnotationWriter

    space = neuroglancer.CoordinateSpace(names=["x", "y", "z"], units="nm", scales=[8, 8, 40])
    writer = AnnotationWriter(space, "point", relationships=["pre", "post"])
    t0 = time.perf_counter()
    file = pq.ParquetFile(table)
    for group in range(file.num_row_groups):
        part = file.read_row_group(group).to_pandas()
        xyz = part[["x", "y", "z"]].to_numpy()
        for p, a, b in zip(xyz, part["pre"].to_numpy(), part["post"].to_numpy()):
            writer.add_point(p, pre=int(a), post=int(b))
        # Progress, for a run stopped by --peer-timeout.
        print(json.dumps({"rows_added": len(writer.annotations), "add_seconds": round(time.perf_counter() - t0, 2)}), flush=True)
    added = time.perf_counter() - t0
    if write:
        writer.write(out)
    return {"add_seconds": round(added, 2), "wrote": write}


def _tree_rss(proc: Any) -> int:
    import psutil

    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def _count_files(path: str) -> int:
    return sum(len(files) for _, _, files in os.walk(path))


def measure(args: list[str], out: str, timeout: float | None = None) -> dict[str, Any]:
    """Run this script with ``args`` in a subprocess; seconds, peak tree RSS, its last JSON line.

    After ``timeout`` seconds the child is stopped (``ok`` False, ``stopped`` True).
    """
    import psutil

    t0 = time.perf_counter()
    log = tempfile.TemporaryFile("w+")
    child = subprocess.Popen([sys.executable, __file__, *args], stdout=log, text=True)
    proc = psutil.Process(child.pid)
    peak, stopped = 0, False
    while child.poll() is None:
        peak = max(peak, _tree_rss(proc))
        if timeout is not None and time.perf_counter() - t0 > timeout:
            child.kill()
            child.wait()
            stopped = True
            break
        time.sleep(0.05)
    seconds = time.perf_counter() - t0
    log.seek(0)
    lines = log.read().strip().splitlines()
    result = json.loads(lines[-1]) if lines else {}
    return {"seconds": seconds, "peak_gib": peak / 2**30, "ok": child.returncode == 0 and not stopped,
            "stopped": stopped, "files": _count_files(out) if os.path.isdir(out) else 0, **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--peer-max-write", type=int, default=2_000_000)
    parser.add_argument("--peer-timeout", type=float, default=None, metavar="S",
                        help="stop neuroglancer's writer after S seconds and report how far it got")
    parser.add_argument("--only", choices=("ngshow", "neuroglancer"), default=None, help="run one writer")
    parser.add_argument("--dir", default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, table, out, extra = args.child
        result = run_ngshow(table, out, int(extra)) if kind == "ngshow" else run_neuroglancer(table, out, extra == "1")
        print(json.dumps(result))
        return
    scratch = Path(args.dir or tempfile.mkdtemp(prefix="annotation-bench-"))
    scratch.mkdir(parents=True, exist_ok=True)
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores; ngshow with {args.workers} workers, "
          "neuroglancer single-threaded (its API)")
    for n in (int(s) for s in args.sizes.split(",")):
        table = scratch / f"synapses-{n}.parquet"
        if not table.exists():
            make_table(n, table)
        ours = str(scratch / f"ngshow-{n}")
        theirs = str(scratch / f"neuroglancer-{n}")
        print(f"\n{n:,} points, 2 relationships")
        a = b = None
        if args.only != "neuroglancer":
            a = measure(["--child", "ngshow", str(table), ours, str(args.workers)], ours)
            shutil.rmtree(ours, ignore_errors=True)
            print(f"  ngshow       {a['seconds']:8.1f} s  peak {a['peak_gib']:5.2f} GiB  {a['files']:>9,} files  "
                  f"{'ok' if a['ok'] else 'FAILED'}  {a.get('stages', '')}", flush=True)
        write = n <= args.peer_max_write
        if args.only != "ngshow":
            b = measure(["--child", "neuroglancer", str(table), theirs, "1" if write else "0"], theirs, args.peer_timeout)
            shutil.rmtree(theirs, ignore_errors=True)
            note = "" if write else f" (add_point for every row only: write() skipped, it makes ~{n:,} files)"
            state = "stopped" if b["stopped"] else "ok" if b["ok"] else "FAILED"
            print(f"  neuroglancer {b['seconds']:8.1f} s  peak {b['peak_gib']:5.2f} GiB  {b['files']:>9,} files  "
                  f"{state}  add_point of {b.get('rows_added', 0):,} rows in {b.get('add_seconds', '?')} s{note}",
                  flush=True)
        if a and b and a["ok"] and b["ok"]:
            print(f"  ratio neuroglancer/ngshow: {b['seconds'] / a['seconds']:.1f}x time"
                  f"{'' if write else ' (of its in-memory phase alone)'}, {b['peak_gib'] / a['peak_gib']:.1f}x memory")
    if args.dir is None:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
