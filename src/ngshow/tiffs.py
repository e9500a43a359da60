"""TIFF files: folders and globs of 2-D planes as one volume, and multi-page / ImageJ / OME-TIFF stacks.

Planes are ordered naturally (``img2`` before ``img10``: runs of digits compare as numbers).  A single
file keeps the axes tifffile reads from it (``TZCYX``, ...) and its physical sizes: ImageJ ``spacing``,
``unit``, ``finterval`` and the X/Y resolution tags; OME-TIFF ``PhysicalSize*`` and ``TimeIncrement``.
Nothing is decoded until a region is asked for.
"""

from __future__ import annotations

import functools
import glob
import logging
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .coords import parse_unit
from .errors import InvalidArray

__all__ = ["TiffStack", "natural_key", "plane_files", "tiff_hints", "open_tiff_file"]

logger = logging.getLogger(__name__)

TIFF_SUFFIXES = (".tif", ".tiff")


def natural_key(path: str) -> tuple[Any, ...]:
    """Sort key comparing runs of digits as numbers: ``p2.tif`` < ``p10.tif``, ``z9_c1`` < ``z10_c0``."""
    parts = re.split(r"(\d+)", os.path.basename(path))
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p.lower()) for p in parts if p != "")


def plane_files(spec: str) -> list[str]:
    """The TIFF files of a folder or a glob pattern, in natural order ([] if there are none)."""
    if os.path.isdir(spec):
        files = [os.path.join(spec, n) for n in os.listdir(spec) if n.lower().endswith(TIFF_SUFFIXES)]
    else:
        files = [f for f in glob.glob(spec) if f.lower().endswith(TIFF_SUFFIXES) and os.path.isfile(f)]
    return sorted(files, key=natural_key)


@dataclass(frozen=True)
class TiffStack:
    """A z-stack of 2-D TIFF files, one per plane in the given order, read plane by plane.

    Picklable (just the file names), so convert workers reopen the planes they need.
    """

    files: tuple[str, ...]
    dtype: str
    shape: tuple[int, ...]

    @property
    def ndim(self) -> int:
        return 3

    def __getitem__(self, box: Any) -> np.ndarray[Any, Any]:
        if not isinstance(box, tuple):
            box = (box,)
        box = box + (slice(None),) * (3 - len(box))
        zs, ys, xs = box
        if isinstance(zs, (int, np.integer)):
            return _read_plane(self.files[zs], ys, xs)
        planes = [_read_plane(f, ys, xs) for f in self.files[zs]]
        if planes:
            return np.stack(planes)
        empty = np.empty(self.shape[1:], self.dtype)[ys, xs]
        return np.empty((0, *empty.shape), self.dtype)

    @classmethod
    def from_files(cls, files: Sequence[str]) -> TiffStack:
        """Check every plane's shape and dtype (headers only) and make the stack.

        Raises
        ------
        InvalidArray
            Naming the first file that is not a 2-D plane like the first one.
        """
        import tifffile

        if not files:
            raise InvalidArray("no TIFF planes given")
        first: tuple[tuple[int, ...], np.dtype[Any]] | None = None
        for name in files:
            try:
                with tifffile.TiffFile(name) as tif:
                    series = tif.series[0]
                    found = (tuple(int(n) for n in series.shape), np.dtype(series.dtype))
            except Exception as e:
                raise InvalidArray(f"{name}: cannot read it as TIFF ({type(e).__name__}: {e})") from None
            if first is None:
                if len(found[0]) != 2:
                    raise InvalidArray(
                        f"{name}: a plane of a TIFF stack must be 2-D, this one has shape {found[0]}; "
                        "open a multi-page file by its own name"
                    )
                first = found
            elif found != first:
                raise InvalidArray(
                    f"{name}: shape {found[0]} and dtype {found[1]} differ from the first plane "
                    f"({files[0]}: {first[0]}, {first[1]}); every plane of a stack must match"
                )
        assert first is not None
        return cls(tuple(str(f) for f in files), first[1].str, (len(files), *first[0]))


@functools.lru_cache(maxsize=65536)
def _mappable(path: str) -> bool:
    """Whether a plane is stored uncompressed and contiguous, so a memory map reads just its rows."""
    import tifffile

    try:
        tifffile.memmap(path, mode="r")
    except ValueError:
        return False
    return True


def _read_plane(path: str, ys: Any, xs: Any) -> np.ndarray[Any, Any]:
    """Rows ``ys`` and columns ``xs`` of a 2-D plane: only those rows of an uncompressed one."""
    import tifffile

    if _mappable(path):
        return np.array(tifffile.memmap(path, mode="r")[ys, xs])
    plane: np.ndarray[Any, Any] = np.asarray(tifffile.imread(path))
    return np.asarray(plane[ys, xs])


# -- single files ----------------------------------------------------------------------------------

_AXIS_NAMES = {"T": "t", "Z": "z", "C": "c", "Y": "y", "X": "x"}


def _axis_names(letters: str) -> list[str]:
    """ngshow's names for tifffile's axis letters: I/Q (pages) are z when there is no Z, S (samples)
    is the channel axis when there is no C; any other letter is a non-spatial axis of that name."""
    names = []
    for letter in letters:
        if letter in _AXIS_NAMES:
            names.append(_AXIS_NAMES[letter])
        elif letter in "IQ" and "Z" not in letters and "z" not in names:
            names.append("z")
        elif letter == "S" and "C" not in letters:
            names.append("c")
        else:
            name = letter.lower()
            while name in names or name in ("x", "y", "z", "t", "c"):
                name += "_"
            names.append(name)
    return names


def _unit(text: Any) -> str | None:
    """A unit ngshow understands, or None (logged) for one it does not."""
    unit = str(text).replace("\\u00B5", "µ").replace("\\u00b5", "µ").strip()
    if unit.lower() in ("pixel", "pixels", "inch", ""):
        return None
    try:
        parse_unit(unit)
    except InvalidArray:
        logger.warning("ignoring the TIFF's unknown unit %r", text)
        return None
    return unit


def _resolution(page: Any, tag: str) -> float | None:
    value = page.tags.get(tag)
    if value is None:
        return None
    num, den = value.value if isinstance(value.value, tuple) else (value.value, 1)
    return float(den) / float(num) if num and den else None


def _ome_sizes(xml: str) -> tuple[dict[str, tuple[float, str]], list[str] | None]:
    """Physical sizes ``{axis: (size, unit)}`` and channel names from OME-XML."""
    root = ET.fromstring(xml)
    pixels = next((e for e in root.iter() if e.tag.endswith("}Pixels") or e.tag == "Pixels"), None)
    if pixels is None:
        return {}, None
    sizes = {}
    for axis in "XYZ":
        value = pixels.get(f"PhysicalSize{axis}")
        if value is not None:
            sizes[axis.lower()] = (float(value), pixels.get(f"PhysicalSize{axis}Unit", "µm"))
    if pixels.get("TimeIncrement") is not None:
        sizes["t"] = (float(pixels.get("TimeIncrement", 1)), pixels.get("TimeIncrementUnit", "s"))
    channels = [c.get("Name") for c in pixels if c.tag.endswith("Channel")]
    labels = [str(c) for c in channels] if channels and all(channels) else None
    return sizes, labels


def tiff_hints(tif: Any) -> dict[str, Any]:
    """:meth:`CoordinateSpace.make` keywords for the first series of an open ``tifffile.TiffFile``."""
    series = tif.series[0]
    names = _axis_names(series.axes)
    hints: dict[str, Any] = {"axes": names}
    sizes: dict[str, tuple[float, str]] = {}
    channel_labels: list[str] | None = None
    if tif.is_ome and tif.ome_metadata:
        try:
            sizes, channel_labels = _ome_sizes(tif.ome_metadata)
        except ET.ParseError as e:
            logger.warning("ignoring unreadable OME-XML (%s)", e)
    elif tif.is_imagej and tif.imagej_metadata:
        meta = tif.imagej_metadata
        unit = _unit(meta.get("unit", ""))
        if unit is not None:
            page = series.pages[0] if series.pages else tif.pages[0]
            for axis, tag in (("x", "XResolution"), ("y", "YResolution")):
                size = _resolution(page, tag)
                if size is not None:
                    sizes[axis] = (size, unit)
            if "spacing" in meta:
                sizes["z"] = (float(meta["spacing"]), unit)
        if meta.get("finterval"):
            sizes["t"] = (float(meta["finterval"]), "s")
        labels = meta.get("Labels")
        if isinstance(labels, (list, tuple)) and "c" in names and len(labels) == series.shape[names.index("c")]:
            channel_labels = [str(v) for v in labels]
    if sizes:
        scale, units = [], []
        for name in names:
            size, unit = sizes.get(name, (1.0, ""))
            ok = _unit(unit) is not None and size > 0
            scale.append(size if ok else 1.0)
            units.append(_unit(unit) if ok else None)
        hints["scale"] = scale
        hints["units"] = units
    if channel_labels is not None and "c" in names and len(channel_labels) == series.shape[names.index("c")]:
        hints["channel_labels"] = channel_labels
    return hints


def open_tiff_file(path: str) -> tuple[Any, dict[str, Any], Any]:
    """A lazily read array of a TIFF file's first series, its space hints, and the handle to close
    when done with it (None for a memory map).

    Uncompressed contiguous files are memory-mapped; others are read through tifffile's zarr view,
    tile by tile or page by page.
    """
    import tifffile

    with tifffile.TiffFile(path) as tif:
        hints = tiff_hints(tif)
        shape = tuple(int(n) for n in tif.series[0].shape)
    handle = None
    try:
        data: Any = tifffile.memmap(path, mode="r")
    except ValueError:
        import zarr

        handle = tifffile.imread(path, aszarr=True)
        data = zarr.open(handle, mode="r")
        if not hasattr(data, "shape"):  # a multi-resolution file: its finest level
            data = data["0"]
    if tuple(data.shape) != shape:
        if handle is not None:
            handle.close()
        raise InvalidArray(f"{path}: its first series has shape {shape} but reads as {tuple(data.shape)}")
    return data, hints, handle
