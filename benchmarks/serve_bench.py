"""Chunk serving, ngshow vs PyPI neuroglancer's LocalVolume, side by side in one run.

    python benchmarks/serve_bench.py            # 512^3 volumes, 64^3 chunks, 16 connections
    python benchmarks/serve_bench.py --quick    # 256^3, for a smoke run
    python benchmarks/serve_bench.py --big-gib 8   # also: peak RSS serving an 8 GiB zarr volume

Both servers run in this process; the load comes from a separate client process on 127.0.0.1, at most
16 connections, bounded in time: `wrk` (Debian package; a C client, so the client is not the
bottleneck) when installed, else an aiohttp client.  Prints a table and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CONNECTIONS = 16
CHUNK = 64
TIME_LIMIT_S = 60.0


@dataclass
class Load:
    """Result of one load run."""

    chunks: int
    errors: int
    seconds: float
    bytes: int
    p50_ms: float
    p99_ms: float

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.seconds

    @property
    def mb_per_s(self) -> float:
        return self.bytes / self.seconds / 1e6


def _client(urls: list[str], out: Any) -> None:
    """Child process: fetch every URL with CONNECTIONS concurrent connections."""
    import aiohttp

    async def run() -> dict[str, Any]:
        latencies: list[float] = []
        errors = 0
        nbytes = 0
        queue: asyncio.Queue[str] = asyncio.Queue()
        for u in urls:
            queue.put_nowait(u)
        deadline = time.perf_counter() + TIME_LIMIT_S

        async def worker(session: aiohttp.ClientSession) -> None:
            nonlocal errors, nbytes
            while not queue.empty() and time.perf_counter() < deadline:
                url = queue.get_nowait()
                t0 = time.perf_counter()
                async with session.get(url) as r:
                    body = await r.read()
                    if r.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - t0)
                nbytes += len(body)

        connector = aiohttp.TCPConnector(limit=CONNECTIONS)
        async with aiohttp.ClientSession(connector=connector) as session:
            t0 = time.perf_counter()
            await asyncio.gather(*(worker(session) for _ in range(CONNECTIONS)))
            seconds = time.perf_counter() - t0
        lat = np.array(latencies) * 1e3
        return dict(chunks=len(latencies), errors=errors, seconds=seconds, bytes=nbytes,
                    p50_ms=float(np.percentile(lat, 50)), p99_ms=float(np.percentile(lat, 99)))

    out.put(asyncio.run(run()))


WRK_SCRIPT = r"""
local paths = {}
for line in io.lines(os.getenv("NGSHOW_BENCH_PATHS")) do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %f %f\n", summary.requests,
    e.status + e.connect + e.read + e.write + e.timeout, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99)))
end
"""


def load_wrk(urls: list[str], seconds: float) -> Load:
    """Cycle through ``urls`` with wrk (2 threads, CONNECTIONS connections) for ``seconds``."""
    base = re.match(r"^(http://[^/]+)", urls[0]).group(1)  # type: ignore[union-attr]
    with tempfile.TemporaryDirectory() as tmp:
        paths = Path(tmp, "paths.txt")
        paths.write_text("\n".join(u[len(base):] for u in urls) + "\n")
        script = Path(tmp, "paths.lua")
        script.write_text(WRK_SCRIPT)
        out = subprocess.run(
            ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds:.0f}s", "-s", str(script), base + "/"],
            capture_output=True, text=True, env={**os.environ, "NGSHOW_BENCH_PATHS": str(paths)}, check=True,
        ).stdout
    fields = next(line for line in out.splitlines() if line.startswith("RESULT")).split()[1:]
    requests, errors, micros, nbytes = (int(v) for v in fields[:4])
    return Load(requests, errors, micros / 1e6, nbytes, float(fields[4]) / 1e3, float(fields[5]) / 1e3)


def load(urls: list[str], seconds: float = 10.0) -> Load:
    if shutil.which("wrk"):
        return load_wrk(urls, seconds)
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_client, args=(urls, queue))
    proc.start()
    result = queue.get(timeout=TIME_LIMIT_S + 60)
    proc.join()
    return Load(**result)


def chunk_boxes(shape: tuple[int, int, int], factor: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Every CHUNK^3 box of the grid downsampled by ``factor`` (NumPy order)."""
    grid = [-(-n // factor) for n in shape]
    boxes = []
    for z in range(0, grid[0], CHUNK):
        for y in range(0, grid[1], CHUNK):
            for x in range(0, grid[2], CHUNK):
                start = (z, y, x)
                boxes.append((start, tuple(min(s + CHUNK, n) for s, n in zip(start, grid))))
    return boxes


def join(values: Any) -> str:
    return ",".join(str(int(v)) for v in values)


def make_volumes(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    z, y, x = np.meshgrid(*(np.arange(n, dtype=np.float32),) * 3, indexing="ij", sparse=True)
    image = (np.sin(x / 17) * np.cos(y / 23) * np.sin(z / 29) * 90 + 128).astype(np.float32)
    image = (image + rng.normal(0, 8, (n, n, n)).astype(np.float32)).clip(0, 255).astype(np.uint8)
    # Labels: a Voronoi-like partition from jittered 32^3 cells.
    cell = (np.asarray(z) // 32 * 10_000 + np.asarray(y) // 32 * 100 + np.asarray(x) // 32).astype(np.uint32)
    labels = np.ascontiguousarray(np.broadcast_to(cell, (n, n, n)))
    return {"uint8 image": image, "uint32 segmentation": labels}


def ngshow_urls(viewer: Any, layer: Any, boxes: Any, factor: int, encoding: str) -> list[str]:
    base = viewer.url.split("/v/")[0]
    f = join([factor] * 3)
    return [f"{base}/neuroglancer/{encoding}/{layer.key}/{f}/{join(s[::-1])}/{join(e[::-1])}" for s, e in boxes]


def reference_urls(viewer: Any, key: str, boxes: Any, factor: int) -> list[str]:
    base = viewer.get_viewer_url().split("/v/")[0]
    f = join([factor] * 3)
    return [f"{base}/neuroglancer/npz/{key}/{f}/{join(s)}/{join(e)}" for s, e in boxes]  # its dims are (z, y, x)


def add_reference(viewer: Any, array: np.ndarray, kind: str) -> str:
    import neuroglancer

    volume = neuroglancer.LocalVolume(
        array,
        dimensions=neuroglancer.CoordinateSpace(names=["z", "y", "x"], units="nm", scales=[1, 1, 1]),
        volume_type=kind,
    )
    with viewer.txn() as s:
        s.layers[kind] = (neuroglancer.SegmentationLayer if kind == "segmentation" else neuroglancer.ImageLayer)(source=volume)
    return f"{viewer.token}.{volume.token}"


def first_chunk_ms(make: Any) -> float:
    """Milliseconds from creating a viewer (and adding a volume) to the first chunk's bytes."""
    t0 = time.perf_counter()
    url = make()
    urllib.request.urlopen(url).read()
    return (time.perf_counter() - t0) * 1e3


def import_seconds() -> float:
    code = "import time; t = time.perf_counter(); import ngshow; print(time.perf_counter() - t)"
    runs = [float(subprocess.check_output([sys.executable, "-c", code])) for _ in range(3)]
    return min(runs)


def big_volume_rss(gib: float, workdir: Path) -> dict[str, float]:
    """Serve a generated on-disk zarr of ``gib`` GiB with the ngshow CLI; browse it; read the peak RSS."""
    import zarr

    n = int(round((gib * 2**30) ** (1 / 3) / 64)) * 64
    path = workdir / "big.zarr"
    z = zarr.create_array(path, shape=(n, n, n), dtype="uint8", chunks=(64, 64, 64), compressors=None)
    slab = np.arange(64 * n * n, dtype=np.uint32).reshape(64, n, n).astype(np.uint8)
    t0 = time.perf_counter()
    for z0 in range(0, n, 64):
        z[z0 : z0 + 64] = slab
    write_s = time.perf_counter() - t0
    proc = subprocess.Popen([sys.executable, "-m", "ngshow", "--image", str(path), "--no-browser"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = next(line.strip() for line in proc.stdout if line.startswith("http://"))
        base = url.split("/v/")[0]
        state = json.loads(urllib.request.urlopen(url.rstrip("/").replace("/v/", "/events/") + "?c=x&gs=").readline().decode()[6:])
        key = state["s"]["layers"][0]["source"].split("python://volume/")[1]
        # A browsing session: the coarsest overview, then full-resolution chunks around the centre.
        urls = [f"{base}/neuroglancer/raw/{key}/4,4,4/{join(s[::-1])}/{join(e[::-1])}" for s, e in chunk_boxes((n, n, n), 4)]
        mid = n // 2
        for dz in range(-2, 2):
            for dy in range(-2, 2):
                for dx in range(-2, 2):
                    s = (mid + dz * 64, mid + dy * 64, mid + dx * 64)
                    urls.append(f"{base}/neuroglancer/raw/{key}/1,1,1/{join(s[::-1])}/{join([v + 64 for v in s[::-1]])}")
        result = load(urls)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        hwm_kib = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(path, ignore_errors=True)
    return {"GiB": n**3 / 2**30, "write_s": write_s, "peak_rss_gib": hwm_kib / 2**20, "errors": result.errors,
            "chunks": result.chunks}


def encode_costs(volumes: dict[str, np.ndarray]) -> None:
    """Milliseconds to encode one 64^3 chunk per encoding, and its size: why raw is the default."""
    from ngshow.encodings import encode

    print("\nencode cost per 64^3 chunk (in process, best of 20):")
    for label, array in volumes.items():
        chunk = np.ascontiguousarray(array[:CHUNK, :CHUNK, :CHUNK])
        for encoding in ("raw", "npz", "jpeg"):
            if encoding == "jpeg" and chunk.dtype != np.uint8:
                continue
            times = []
            for _ in range(20):
                t0 = time.perf_counter()
                body = encode(encoding, chunk)
                times.append(time.perf_counter() - t0)
            print(f"  {label:22} {encoding:5} {min(times) * 1e3:7.2f} ms  {len(body) / 1e3:8.1f} kB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="256^3 volumes instead of 512^3")
    parser.add_argument("--big-gib", type=float, default=0, help="also measure peak RSS serving a zarr this big")
    args = parser.parse_args()

    import neuroglancer

    import ngshow

    n = 256 if args.quick else 512
    volumes = make_volumes(n)
    rows: list[tuple[str, str, Load]] = []
    print(f"volumes {n}^3, chunks {CHUNK}^3, {CONNECTIONS} connections, client in its own process", flush=True)

    for label, array in volumes.items():
        kind = "segmentation" if "segmentation" in label else "image"
        for factor in (1, 4):
            boxes = chunk_boxes(array.shape, factor) * (8 if factor > 1 else 1)  # coarse: repeated, warm
            ours = ngshow.Viewer()
            layer = ours.add(array, kind=kind)
            theirs = neuroglancer.Viewer()
            key = add_reference(theirs, array, kind)
            scale = f"{factor}x{factor}x{factor}" + (" (repeated: warm)" if factor > 1 else "")
            rows.append((f"{label} {scale}", "neuroglancer npz", load(reference_urls(theirs, key, boxes, factor))))
            urls = ngshow_urls(ours, layer, boxes, factor, layer.encoding)  # its default for this kind
            rows.append((f"{label} {scale}", f"ngshow {layer.encoding}", load(urls)))
            ngshow.stop()
            neuroglancer.stop()

    print(f"\n{'case':44} {'server':18} {'chunks/s':>9} {'MB/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
    for case, server, r in rows:
        print(f"{case:44} {server:18} {r.chunks_per_s:9.0f} {r.mb_per_s:8.1f} {r.p50_ms:8.1f} {r.p99_ms:8.1f} {r.errors:6d}")
    print("\nratios (ngshow / neuroglancer chunks/s):")
    for i in range(0, len(rows), 2):
        print(f"  {rows[i][0]:44} {rows[i + 1][2].chunks_per_s / rows[i][2].chunks_per_s:6.1f}x")

    small = np.zeros((128, 128, 128), np.uint8)

    def ours_first() -> str:
        v = ngshow.Viewer()
        layer = v.add(small, kind="image")
        return ngshow_urls(v, layer, [((0, 0, 0), (64, 64, 64))], 1, "raw")[0]

    def theirs_first() -> str:
        v = neuroglancer.Viewer()
        return reference_urls(v, add_reference(v, small, "image"), [((0, 0, 0), (64, 64, 64))], 1)[0]

    ours_first()  # the first server start of each is not what a user waits for twice
    theirs_first()
    ngshow.stop()
    a, b = first_chunk_ms(ours_first), first_chunk_ms(theirs_first)
    print(f"\nfirst chunk after Viewer(): ngshow {a:.1f} ms, neuroglancer {b:.1f} ms")
    print(f"import ngshow: {import_seconds():.3f} s")
    encode_costs(volumes)
    ngshow.stop()
    if args.big_gib:
        with tempfile.TemporaryDirectory(dir=os.environ.get("NGSHOW_BENCH_TMP")) as tmp:
            big = big_volume_rss(args.big_gib, Path(tmp))
        print(f"\n{big['GiB']:.1f} GiB zarr (written in {big['write_s']:.0f} s): peak RSS serving a browsing session "
              f"{big['peak_rss_gib']:.3f} GiB, {big['chunks']} chunks, {big['errors']} errors")


if __name__ == "__main__":
    main()
