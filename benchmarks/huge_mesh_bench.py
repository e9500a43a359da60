"""How soon a huge object's mesh starts to draw: one ball filling an n^3 volume, served live.

The segment's manifest lists one fragment per 128^3 block; the client fetches them all at once and
draws each as it arrives.  Prints the time from "the user selects the segment" to the manifest, the
first fragment and the 64th, after ``--lead`` seconds in which the page opens (the bounding-box scan of
an in-memory array starts when the layer is added).

    python benchmarks/huge_mesh_bench.py --size 1024 --lead 6
    python benchmarks/huge_mesh_bench.py --size 1024 --lead 0     # selected the moment it was added
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import urllib.request

import numpy as np

import ngshow


def ball(n: int) -> np.ndarray:
    labels = np.zeros((n, n, n), np.uint8)
    r = np.arange(n) - n / 2
    for z in range(n):  # slice by slice: no n^3 temporaries
        labels[z][r[None, :] ** 2 + r[:, None] ** 2 + (z - n / 2) ** 2 < (0.45 * n) ** 2] = 5
    return labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--lead", type=float, default=6.0, help="seconds between adding the layer and selecting")
    args = parser.parse_args()
    labels = ball(args.size)
    viewer = ngshow.Viewer()
    layer = viewer.add(labels, name="seg", kind="segmentation")
    time.sleep(args.lead)
    source = layer.state_json()["source"]
    base = (source["url"] if isinstance(source, dict) else source).removeprefix("precomputed://")
    t0 = time.perf_counter()
    names = json.loads(urllib.request.urlopen(base + "/mesh/5:0").read())["fragments"]
    manifest = time.perf_counter() - t0
    arrived: list[float] = []

    def fetch(name: str) -> None:
        urllib.request.urlopen(f"{base}/mesh/{name}").read()
        arrived.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=fetch, args=(name,)) for name in names[:64]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"{args.size}^3, lead {args.lead:g} s: {len(names)} fragments; manifest {manifest:.2f} s, "
          f"first fragment {min(arrived):.2f} s, 64th {max(arrived):.2f} s after selecting")
    ngshow.stop()


if __name__ == "__main__":
    main()
