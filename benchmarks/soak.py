"""Soak: a long session against ngshow's server, watching for errors, memory growth and leaks.

Two viewers (each an image and a segmentation) serve ``--connections`` client connections (another
process, keep-alive HTTP) of mixed traffic: chunks at random scales (70 %), mesh fragments (15 %)
and state round trips (15 %: open an event stream, read the state, post an edit, close).  Meanwhile
this process creates a viewer, checks it answers and closes it every ``--churn`` seconds.  Every
``--sample`` seconds it records the server process's RSS, threads and open file descriptors; at the
end it prints that curve, the error count (412 conflicts of the state protocol are not errors) and the
threads and descriptors left once ``ngshow.stop()`` returns.  A benchmark, not a test.

    .venv/bin/python benchmarks/soak.py                      # 10 minutes, 16 connections
    .venv/bin/python benchmarks/soak.py --duration 120       # a shorter run
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import numpy as np


# -- the client process ----------------------------------------------------------------------------


def client(targets_file: str, duration: float, connections: int) -> None:
    with open(targets_file) as f:
        targets = json.load(f)
    stats: Counter[str] = Counter()
    lock = threading.Lock()
    stop_at = time.monotonic() + duration

    def count(key: str) -> None:
        with lock:
            stats[key] += 1

    def worker(index: int) -> None:
        rng = random.Random(index)
        host, port = urlsplit(targets["base"]).hostname, urlsplit(targets["base"]).port
        conn = http.client.HTTPConnection(host, port, timeout=60)
        n = 0
        while time.monotonic() < stop_at:
            viewer = targets["viewers"][rng.randrange(len(targets["viewers"]))]
            roll = rng.random()
            n += 1
            try:
                if roll < 0.70:
                    kind, path = "chunk", _chunk_path(rng, viewer)
                elif roll < 0.85:
                    kind, path = "mesh", f"/neuroglancer/mesh/{viewer['seg']}/{rng.choice(viewer['ids'])}"
                else:
                    count(_state_round_trip(host, port, viewer["token"], f"soak{index}", n))
                    continue
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                count(kind if response.status == 200 else f"error {kind} {response.status}")
            except Exception as e:  # counted, and the connection is renewed
                count(f"error {type(e).__name__}")
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=60)
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(dict(stats)))


def _chunk_path(rng: random.Random, viewer: dict[str, Any]) -> str:
    size, chunk = viewer["size"], 64
    factor = rng.choice([1, 1, 1, 2, 4])
    extent = size // factor
    start = [rng.randrange(0, extent, chunk) for _ in range(3)]
    end = [min(s + chunk, extent) for s in start]
    key = viewer["image"] if rng.random() < 0.5 else viewer["seg"]
    join = lambda v: ",".join(map(str, v))  # noqa: E731
    return f"/neuroglancer/raw/{key}/{join([factor] * 3)}/{join(start)}/{join(end)}"


def _state_round_trip(host: str, port: int, token: str, client_id: str, count: int) -> str:
    events = http.client.HTTPConnection(host, port, timeout=60)
    try:
        events.request("GET", f"/events/{token}?c={client_id}&gs=none")
        stream = events.getresponse()
        if stream.status != 200:
            return f"error events {stream.status}"
        line = b""
        while not line.startswith(b"data: "):
            line = stream.readline()
            if not line:
                return "error events closed"
        message = json.loads(line[len(b"data: "):])
    finally:
        events.close()
    state = message["s"]
    state["position"] = [count % 100, 50, 50]
    body = json.dumps({"s": state, "g": count, "pg": message["g"], "c": client_id})
    post = http.client.HTTPConnection(host, port, timeout=60)
    try:
        post.request("POST", f"/state/{token}", body=body, headers={"Content-Type": "application/json"})
        reply = post.getresponse()
        reply.read()
    finally:
        post.close()
    if reply.status == 200:
        return "state"
    return "state conflict (412)" if reply.status == 412 else f"error state {reply.status}"


# -- the server process ----------------------------------------------------------------------------


def volumes(size: int, seed: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], list[int]]:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, (size, size, size), dtype=np.uint8)
    cells = 8
    grid = rng.integers(1, 40, (cells, cells, cells)).astype(np.uint32)
    step = size // cells
    labels = np.repeat(np.repeat(np.repeat(grid, step, 0), step, 1), step, 2)
    return image, labels, sorted(int(i) for i in np.unique(grid))


def sample(process: Any) -> dict[str, float]:
    return {"rss_mib": process.memory_info().rss / 2**20, "threads": process.num_threads(), "fds": process.num_fds()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds (default 600)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--churn", type=float, default=3.0, help="seconds between viewer create/stop cycles")
    parser.add_argument("--sample", type=float, default=0.0, help="seconds between samples (default duration/20)")
    parser.add_argument("--size", type=int, default=256, help="edge of the served volumes")
    parser.add_argument("--client", nargs=1, metavar="TARGETS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client(args.client[0], args.duration, args.connections)
        return

    import psutil

    import ngshow

    process = psutil.Process()
    baseline_threads, baseline_fds = process.num_threads(), process.num_fds()
    viewers, targets = [], []
    for seed in (0, 1):
        image, labels, ids = volumes(args.size, seed)
        v = ngshow.Viewer()
        img = v.add(image, name="image", kind="image")
        seg = v.add(labels, name="seg", kind="segmentation")
        viewers.append(v)
        targets.append({"token": v.token, "image": img.key, "seg": seg.key, "ids": ids, "size": args.size})
    base = viewers[0].url.split("/v/")[0]
    every = args.sample or args.duration / 20
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"base": base, "viewers": targets}, f)
    try:
        load = subprocess.Popen(
            [sys.executable, __file__, "--client", f.name, "--duration", str(args.duration),
             "--connections", str(args.connections)],
            stdout=subprocess.PIPE, text=True,
        )
        t0 = time.monotonic()
        curve = [{"t": 0.0, **sample(process)}]
        churned, churn_errors = 0, 0
        next_sample, next_churn = t0 + every, t0 + args.churn
        while load.poll() is None:
            now = time.monotonic()
            if now >= next_churn:
                next_churn += args.churn
                try:
                    extra = ngshow.Viewer()
                    layer = extra.add(np.zeros((64, 64, 64), np.uint8), name="churn")
                    with urllib.request.urlopen(f"{base}/neuroglancer/info/{layer.key}", timeout=30) as r:
                        r.read()
                    extra.close()
                    churned += 1
                except Exception as e:
                    churn_errors += 1
                    print(f"churn error: {type(e).__name__}: {e}", file=sys.stderr)
            if now >= next_sample:
                next_sample += every
                curve.append({"t": now - t0, **sample(process)})
            time.sleep(0.05)
        assert load.stdout is not None
        with load.stdout:
            stats: dict[str, int] = json.loads(load.stdout.read() or "{}")
        curve.append({"t": time.monotonic() - t0, **sample(process)})
    finally:
        os.unlink(f.name)
    ngshow.stop()
    del viewers
    gc.collect()
    time.sleep(1.0)
    after = sample(process)

    print(f"soak: {args.duration:.0f} s, {args.connections} connections, 2 viewers of {args.size}^3, "
          f"a viewer created and closed every {args.churn:g} s (load average {os.getloadavg()[0]:.1f})")
    print(f"{'t s':>7} {'RSS MiB':>9} {'threads':>8} {'fds':>5}")
    for point in curve:
        print(f"{point['t']:>7.0f} {point['rss_mib']:>9.1f} {point['threads']:>8.0f} {point['fds']:>5.0f}")
    total = sum(stats.values())
    errors = sum(n for k, n in stats.items() if k.startswith("error")) + churn_errors
    print(f"requests: {total} ({total / args.duration:.0f}/s): " + ", ".join(f"{k} {n}" for k, n in sorted(stats.items())))
    print(f"viewers created and closed: {churned}, errors: {errors}")
    steady = [p["rss_mib"] for p in curve[len(curve) // 4:]]
    print(f"RSS after warm-up: {steady[0]:.1f} -> {steady[-1]:.1f} MiB (max {max(steady):.1f})")
    print(f"after ngshow.stop(): threads {after['threads']:.0f} (before the server: {baseline_threads}), "
          f"fds {after['fds']:.0f} (before: {baseline_fds})")


if __name__ == "__main__":
    main()
