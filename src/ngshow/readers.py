"""Open array files lazily for viewing: NumPy, HDF5, zarr, N5, TIFF and NIfTI.

Every reader returns something :class:`~ngshow.sources.ArraySource` can slice, so only the chunks a
browser asks for are read.  Paths inside a container file follow it: ``data.h5/group/volume`` (or
``data.h5:group/volume``), ``data.zarr/labels``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .adapters import ReversedAxes, TensorStoreArray
from .errors import InvalidArray, NgshowError

__all__ = ["Opened", "open_array", "UnreadableFile", "SUFFIXES", "ReversedAxes", "TensorStoreArray"]

SUFFIXES = (".npy", ".h5", ".hdf5", ".zarr", ".n5", ".tif", ".tiff", ".nii", ".nii.gz", "precomputed folders")
_CONTAINER = re.compile(r"^(?P<file>.*?\.(?:h5|hdf5|zarr|n5))(?:[:/](?P<inner>.*))?$", re.IGNORECASE)


class UnreadableFile(NgshowError, OSError):
    """A file ngshow cannot open as an array (unknown type, missing, broken, ambiguous)."""


@dataclass
class Opened:
    """An opened array and what its file says about it."""

    data: Any
    name: str
    voxel_size: tuple[float, float, float] | None = None  # nm, (x, y, z)
    keep_open: Any = None  # the file handle that must outlive the array
    kind: str | None = None  # what the file says it is, if it says


def _need(module: str, extra: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise UnreadableFile(f"reading this file needs {module}: pip install 'ngshow[{extra}]'") from None


def _pick(candidates: dict[str, Any], file: str) -> tuple[str, Any]:
    arrays = {k: v for k, v in candidates.items() if len(getattr(v, "shape", ())) in (2, 3, 4)}
    if len(arrays) == 1:
        return next(iter(arrays.items()))
    listing = ", ".join(sorted(arrays)) or "none"
    raise UnreadableFile(f"{file} holds {len(arrays)} arrays of 2-4 dimensions ({listing}); name one as {file}/PATH")


def _open_hdf5(file: Path, inner: str | None) -> Opened:
    h5py = _need("h5py", "h5py")
    handle = h5py.File(file, "r")
    if inner:
        if inner not in handle or not isinstance(handle[inner], h5py.Dataset):
            handle.close()
            raise UnreadableFile(f"{file} has no dataset {inner!r}")
        return Opened(handle[inner], Path(inner).name, keep_open=handle)
    found: dict[str, Any] = {}
    handle.visititems(lambda name, obj: found.__setitem__(name, obj) if isinstance(obj, h5py.Dataset) else None)
    try:
        name, dataset = _pick(found, str(file))
    except UnreadableFile:
        handle.close()
        raise
    return Opened(dataset, Path(name).name, keep_open=handle)


def _open_zarr(file: Path, inner: str | None) -> Opened:
    zarr = _need("zarr", "zarr")
    node = zarr.open(str(file), mode="r", path=inner) if inner else zarr.open(str(file), mode="r")
    if hasattr(node, "shape"):
        return Opened(node, inner or file.stem)
    found = {name: array for name, array in node.arrays()}
    name, array = _pick(found, str(file))
    return Opened(array, name)


def _open_n5(file: Path, inner: str | None) -> Opened:
    ts = _need("tensorstore", "tensorstore")
    path = file / inner if inner else file
    store = ts.open({"driver": "n5", "kvstore": {"driver": "file", "path": str(path)}}, read=True).result()
    return Opened(TensorStoreArray(store), path.name)


def _open_tiff(file: Path) -> Opened:
    tifffile = _need("tifffile", "tiff")
    try:
        data = tifffile.memmap(file, mode="r")  # uncompressed, contiguous: read on demand
    except ValueError:
        data = tifffile.imread(file)  # compressed TIFFs are decoded whole
    return Opened(data, file.stem)


def _open_nifti(file: Path) -> Opened:
    nibabel = _need("nibabel", "nifti")
    image = nibabel.load(str(file))
    proxy = image.dataobj  # lazy: slices read only their part
    zooms = image.header.get_zooms()[:3]
    unit = image.header.get_xyzt_units()[0]
    to_nm = {"meter": 1e9, "mm": 1e6, "micron": 1e3}.get(unit, 1e6)
    voxel_size = tuple(float(z) * to_nm for z in zooms) if len(zooms) == 3 else None
    name = file.name.split(".")[0]
    return Opened(ReversedAxes(proxy), name, voxel_size)  # type: ignore[arg-type]


def _open_precomputed(path: str) -> Opened:
    """A Neuroglancer precomputed volume (every scale, as a pyramid) through TensorStore."""
    ts = _need("tensorstore", "tensorstore")
    kvstore = path if "://" in path else {"driver": "file", "path": path}
    base = ts.open({"driver": "neuroglancer_precomputed", "kvstore": kvstore}, read=True).result()
    info = json.loads(base.kvstore.read("info").result().value)
    levels = []
    for index in range(len(info["scales"])):
        spec = {"driver": "neuroglancer_precomputed", "kvstore": kvstore, "scale_index": index}
        store = ts.open(spec, read=True).result()
        store = store[ts.d[:].translate_to[0]]  # index 0 at the volume's corner, like any array
        if store.shape[-1] == 1:
            store = store[..., 0]  # one channel: a plain (x, y, z) volume
        levels.append(ReversedAxes(TensorStoreArray(store)))
    x, y, z = (float(v) for v in info["scales"][0]["resolution"])
    name = Path(path.rstrip("/")).name or "precomputed"
    return Opened(levels, name, (x, y, z), kind=info.get("type"))


def open_array(spec: str) -> Opened:
    """Open ``spec`` (a file, or a container file followed by a path inside it) for lazy reading.

    Raises
    ------
    UnreadableFile
        With one line saying what is wrong.
    """
    if spec.startswith("precomputed://"):
        return _open_precomputed(spec[len("precomputed://"):])
    if Path(spec, "info").is_file():
        return _open_precomputed(spec)
    match = _CONTAINER.match(spec)
    file = Path(match.group("file") if match else spec)
    inner = (match.group("inner") or None) if match else None
    if not file.exists():
        raise UnreadableFile(f"{file}: no such file or directory")
    lower = file.name.lower()
    try:
        if lower.endswith(".npy"):
            return Opened(np.load(file, mmap_mode="r"), file.stem)
        if lower.endswith((".h5", ".hdf5")):
            return _open_hdf5(file, inner)
        if lower.endswith(".zarr"):
            return _open_zarr(file, inner)
        if lower.endswith(".n5"):
            return _open_n5(file, inner)
        if lower.endswith((".tif", ".tiff")):
            return _open_tiff(file)
        if lower.endswith((".nii", ".nii.gz")):
            return _open_nifti(file)
    except (UnreadableFile, InvalidArray):
        raise
    except Exception as e:  # a broken file: say which and why, in one line
        raise UnreadableFile(f"{file}: cannot read it ({type(e).__name__}: {e})") from e
    raise UnreadableFile(f"{file}: unknown file type; ngshow opens {', '.join(SUFFIXES)}")
