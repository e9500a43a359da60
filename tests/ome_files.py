"""OME-Zarr images written by writers nobody here wrote (ome-zarr-py and ngff-zarr), for the tests.

Every image is ``(c, z, y, x) = (2, 16, 64, 64)`` uint8 at z 2 µm, y and x 0.5 µm, three levels:
channel 0 is bright where x < 32, channel 1 where y < 32, so each quadrant has its own colour; the
omero metadata makes channel 0 red and channel 1 green, window 0-200.  ome-zarr-py also writes a label
image ``cells`` (label 7 in a box, coloured magenta); for ngff-zarr the label image is written by ngff-zarr too, as
its own multiscale image under ``labels/cells``, and the two small ``labels`` attributes are added.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import zarr

SHAPE = (2, 16, 64, 64)
SCALE = {"z": 2.0, "y": 0.5, "x": 0.5}
UNITS = {"z": "micrometer", "y": "micrometer", "x": "micrometer"}
BOX = (slice(4, 12), slice(40, 60), slice(8, 28))  # label 7, (z, y, x)
OMERO = {
    "channels": [
        {"label": "DAPI", "color": "FF0000", "window": {"min": 0, "max": 255, "start": 0, "end": 200}, "active": True},
        {"label": "GFP", "color": "00FF00", "window": {"min": 0, "max": 255, "start": 0, "end": 200}, "active": True},
    ]
}
WRITERS = ("ome-zarr-py 0.4", "ome-zarr-py 0.5", "ngff-zarr 0.4", "ngff-zarr 0.5")


def image() -> np.ndarray[Any, Any]:
    data = np.zeros(SHAPE, np.uint8)
    data[0, :, :, :32] = 200
    data[1, :, :32, :] = 200
    return data


def labels() -> np.ndarray[Any, Any]:
    out = np.zeros(SHAPE[1:], np.uint32)
    out[BOX] = 7
    return out


def write(writer: str, path: Path) -> Path:
    """Write the test image with ``writer`` (one of :data:`WRITERS`) at ``path``."""
    tool, version = writer.split()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the writers' own deprecation and default-scale warnings
        if tool == "ome-zarr-py":
            _ome_zarr_py(path, version)
        else:
            _ngff_zarr(path, version)
    return path


def _ome_zarr_py(path: Path, version: str) -> None:
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_image, write_labels

    fmt = FormatV04() if version == "0.4" else FormatV05()
    root = zarr.open_group(str(path), mode="w", zarr_format=2 if version == "0.4" else 3)
    write_image(image(), root, axes="czyx", scale_factors=(2, 4), fmt=fmt, scale=dict(SCALE),
                axes_units=dict(UNITS), omero=OMERO)
    write_labels(labels(), root, name="cells", axes="zyx", scale_factors=(2, 4), fmt=fmt, scale=dict(SCALE),
                 axes_units=dict(UNITS), label_metadata={"colors": [{"label-value": 7, "rgba": [255, 0, 255, 255]}]})


def _ngff_zarr(path: Path, version: str) -> None:
    import ngff_zarr as nz
    from ngff_zarr.v04.zarr_metadata import Omero, OmeroChannel, OmeroWindow

    img = nz.to_ngff_image(image(), dims=["c", "z", "y", "x"], scale=dict(SCALE), axes_units=dict(UNITS))
    ms = nz.to_multiscales(img, scale_factors=[2, 4])
    ms.metadata.omero = Omero(channels=[
        OmeroChannel(color=c["color"], window=OmeroWindow(**c["window"]), label=c["label"])
        for c in OMERO["channels"]
    ])
    nz.to_ngff_zarr(str(path), ms, version=version)
    seg = nz.to_ngff_image(labels(), dims=["z", "y", "x"], scale=dict(SCALE), axes_units=dict(UNITS), name="cells")
    nz.to_ngff_zarr(str(path / "labels" / "cells"), nz.to_multiscales(seg, scale_factors=[2, 4], method=nz.Methods.ITKWASM_LABEL_IMAGE), version=version)
    group = zarr.open_group(str(path / "labels"), mode="a", zarr_format=2 if version == "0.4" else 3)
    cells = zarr.open_group(str(path / "labels" / "cells"), mode="a")
    if version == "0.4":
        group.attrs["labels"] = ["cells"]
        cells.attrs["image-label"] = {"version": "0.4"}
    else:
        group.attrs["ome"] = {"version": "0.5", "labels": ["cells"]}
        cells.attrs["ome"] = {**dict(cells.attrs["ome"]), "image-label": {}}
