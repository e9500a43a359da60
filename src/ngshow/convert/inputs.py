"""Picklable views of input arrays, so that a task carries only its own region to a worker.

* In-memory NumPy arrays: the task holds a *view* of its region; pickling a view copies just that
  region, so the whole array crosses to the workers once, piece by piece.
* Memory maps, HDF5 datasets, TIFF stacks: small references (file name + layout) reopened on the
  worker.  :func:`open_input` makes them from a path, with the viewer's reader (:mod:`ngshow.readers`).
* zarr and dask arrays (and anything else picklable with ``shape``, ``dtype`` and slicing) are
  sliced lazily on the worker.
"""

from __future__ import annotations

import mmap
import os
import pickle
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..errors import InvalidArray
from ..readers import AxisView, Opened
from ..sources import ArraySource
from ..tiffs import TiffStack

__all__ = ["H5Array", "MemmapArray", "Region", "Spill", "TiffStack", "input_source", "open_input", "region_of"]


@dataclass(frozen=True)
class MemmapArray:
    """A NumPy memory map by file name (``np.memmap`` itself pickles its whole contents)."""

    filename: str
    dtype: str
    shape: tuple[int, ...]
    offset: int = 0
    order: str = "C"

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def map(self) -> np.ndarray[Any, Any]:
        """The file mapped read-only (as a plain ndarray view of the map)."""
        order: Any = self.order
        mm = np.memmap(
            self.filename, dtype=np.dtype(self.dtype), mode="r", shape=self.shape,
            offset=self.offset, order=order,
        )
        return np.asarray(mm)

    def __getitem__(self, box: Any) -> np.ndarray[Any, Any]:
        return np.array(self.map()[box])

    @classmethod
    def from_memmap(cls, mm: np.memmap[Any, Any]) -> MemmapArray:
        if mm.filename is None:
            raise InvalidArray("this memmap has no file name to reopen")
        order = "F" if mm.flags.f_contiguous and not mm.flags.c_contiguous else "C"
        return cls(str(mm.filename), np.dtype(mm.dtype).str, tuple(mm.shape), int(mm.offset), order)


@dataclass(frozen=True)
class H5Array:
    """An HDF5 dataset by file name and dataset path, opened read-only on each read."""

    filename: str
    name: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, box: Any) -> np.ndarray[Any, Any]:
        import h5py

        with h5py.File(self.filename, "r") as f:
            return np.asarray(f[self.name][box])

    @classmethod
    def from_dataset(cls, ds: Any) -> H5Array:
        return cls(str(ds.file.filename), str(ds.name), np.dtype(ds.dtype).str, tuple(ds.shape))


@dataclass(frozen=True)
class Region:
    """``data[box]`` read on demand as a ``(c, z, y, x)`` array of ``dtype``.

    ``lead`` axes of length 1 are prepended to reach 4-D (2 for ``(y, x)``, 1 for ``(z, y, x)``).
    """

    data: Any
    box: tuple[slice, ...]
    lead: int
    dtype: str

    def __reduce__(self) -> tuple[Any, ...]:
        # An in-memory array travels as just this region (a pickled view copies only its
        # elements); the driver keeps the whole array, so it can spill it once for local workers.
        if isinstance(self.data, np.ndarray) and not isinstance(self.data, np.memmap):
            whole = tuple(slice(None) for _ in self.box)
            return (Region, (self.data[self.box], whole, self.lead, self.dtype))
        return (Region, (self.data, self.box, self.lead, self.dtype))

    @property
    def in_memory(self) -> bool:
        """True if this region is part of an in-memory NumPy array (see :func:`spill`)."""
        return isinstance(self.data, np.ndarray) and not isinstance(self.data, np.memmap)

    def read(self, *, contiguous: bool = True) -> np.ndarray[Any, Any]:
        """The region as a ``(c, z, y, x)`` array; without ``contiguous`` it may be a strided
        view (of the in-memory array, or of a map of the file), which saves a copy of callers
        that copy it chunk by chunk anyway."""
        data = self.data.map() if isinstance(self.data, MemmapArray) else self.data
        part = data[self.box]
        compute = getattr(part, "compute", None)
        if callable(compute) and not isinstance(part, np.ndarray):
            part = compute()
        arr = np.asarray(part)
        if arr.dtype != np.dtype(self.dtype):
            arr = arr.astype(self.dtype)
        arr = arr.reshape((1,) * self.lead + arr.shape)
        return np.ascontiguousarray(arr) if contiguous else arr


def _portable(data: Any) -> Any:
    """``data`` itself, or a small reference to it that pickles without its contents."""
    if isinstance(data, np.memmap):
        # Only a whole map can be reopened by name; a slice of one is sent as a plain view.
        if isinstance(data.base, mmap.mmap) and data.filename is not None:
            return MemmapArray.from_memmap(data)
        return np.asarray(data)
    if type(data).__module__.startswith("h5py"):
        return H5Array.from_dataset(data)
    return data


def region_of(data: Any, box: tuple[slice, ...], *, lead: int, dtype: np.dtype[Any]) -> Region:
    """A picklable :class:`Region` for ``data[box]``.

    Raises
    ------
    InvalidArray
        If ``data`` cannot be sent to a worker process.
    """
    portable = _portable(data)
    if isinstance(portable, np.ndarray):
        # Pickles as just this region (see Region.__reduce__).
        return Region(portable, box, lead, np.dtype(dtype).str)
    if type(portable).__module__.startswith("dask"):
        from dask.base import optimize

        (part,) = optimize(portable[box])  # type: ignore[no-untyped-call]
        return Region(part, tuple(slice(None) for _ in box), lead, np.dtype(dtype).str)
    return Region(portable, box, lead, np.dtype(dtype).str)


SPILL_PREFIX = "ngshow-spill-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_spills(root: str) -> None:
    """Remove spill folders whose driver process has died (a run killed before cleaning up)."""
    try:
        names = os.listdir(root)
    except OSError:
        return
    for name in names:
        if not name.startswith(SPILL_PREFIX):
            continue
        pid = name[len(SPILL_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)


class Spill:
    """In-memory input arrays written once to ``.npy`` files that worker processes map.

    Without it every task pickles its region of the array through the executor: the driver
    copies, the pipe copies, the worker copies.  With it the driver writes each array once (to
    ``/dev/shm`` when it has room, so to memory) and tasks carry a file name.  Only for workers
    that share the driver's file system: a local process pool, or ``directory`` on shared storage.
    The folder is removed by :meth:`close`, or by the next spill if the driver was killed.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self._root = os.fspath(directory) if directory is not None else None
        self._path: str | None = None
        self._done: dict[int, tuple[np.ndarray[Any, Any], MemmapArray]] = {}

    def _folder(self, nbytes: int) -> str:
        if self._path is None:
            root = self._root
            if root is None:
                root = tempfile.gettempdir()
                shm = "/dev/shm"
                if os.path.isdir(shm) and os.access(shm, os.W_OK):
                    try:
                        # Leave tmpfs at least half free: it is the machine's memory.
                        if shutil.disk_usage(shm).free > 2 * nbytes:
                            root = shm
                    except OSError:
                        pass
            _remove_stale_spills(root)
            self._path = tempfile.mkdtemp(prefix=f"{SPILL_PREFIX}{os.getpid()}-", dir=root)
        return self._path

    def region(self, region: Region) -> Region:
        """``region``, reading from the spilled copy of its array if it is an in-memory one."""
        if not region.in_memory:
            return region
        array: np.ndarray[Any, Any] = region.data
        hit = self._done.get(id(array))
        if hit is None:
            if array.dtype.hasobject:
                return region
            name = os.path.join(self._folder(array.nbytes), f"{len(self._done)}.npy")
            np.save(name, array, allow_pickle=False)
            # Keep the array referenced so its id() is not reused while this spill lives.
            hit = (array, MemmapArray.from_memmap(np.load(name, mmap_mode="r")))
            self._done[id(array)] = hit
        return replace(region, data=hit[1])

    def close(self) -> None:
        if self._path is not None:
            shutil.rmtree(self._path, ignore_errors=True)
            self._path = None
        self._done.clear()


def check_picklable(data: Any) -> None:
    """Raise :class:`InvalidArray` unless ``data`` (as :func:`region_of` sends it) pickles."""
    portable = _portable(data)
    if isinstance(portable, np.ndarray):
        return
    try:
        pickle.dumps(portable)
    except Exception as e:
        raise InvalidArray(
            f"cannot send a {type(data).__name__} to worker processes ({e}); pass a NumPy, zarr, "
            "dask, h5py or memmap array, or a path to ngshow.convert.open_input"
        ) from None


def _portable_view(data: Any) -> Any:
    """:func:`_portable`, also inside an :class:`~ngshow.readers.AxisView`."""
    if isinstance(data, AxisView):
        return replace(data, inner=_portable(data.inner))
    return _portable(data)


def input_source(opened: Opened) -> ArraySource:
    """An :class:`~ngshow.ArraySource` over picklable references to every level of ``opened``
    (finest first) in ``(z, y, x)`` or ``(c, z, y, x)`` order, with the file's space and kind:
    what :func:`~ngshow.convert.plan` takes (its levels become the pyramid's scales).

    Raises
    ------
    InvalidArray
        If the array has axes convert cannot write (a time axis of several points).
    """
    views, space = opened.volume_levels()
    spec = opened.source
    if spec.lower().endswith((".tif", ".tiff")) and opened.keep_open is not None:
        # A compressed TIFF (read through tifffile's zarr view, which cannot travel): decoded whole, once.
        import tifffile

        whole = np.asarray(tifffile.imread(spec))
        views = [replace(views[0], inner=whole) if isinstance(views[0], AxisView) else whole]
    portable = [_portable_view(view) for view in views]
    return ArraySource(portable, kind="segmentation" if opened.kind == "segmentation" else "image", space=space)


def open_input(path: str | Sequence[str], *, dataset: str | None = None) -> ArraySource:
    """Open an input file lazily, as the viewer does (:func:`ngshow.open`): the same syntax
    (``file.h5/path``, ``file.h5:/path``, ``img.ome.zarr``, ``file.zarr/group/array``, a folder or
    glob of TIFF planes in natural order, a hyperstack TIFF, URLs of zarr stores) and the same
    metadata (voxel sizes, offsets, label images as segmentations).  A list of paths is a list of
    2-D TIFF planes, one volume in that order.

    Returns :func:`input_source` of the file: every level (an OME-Zarr's multiscales) as a
    picklable reference, which :func:`~ngshow.convert.plan` takes with its voxel size, offset and
    kind.  ``dataset`` names the array inside an HDF5 or zarr file.

    Raises
    ------
    InvalidArray
        If the file cannot be read (naming what it holds), or has axes convert cannot write (a time
        axis of several points).
    """
    from ..readers import open_file, open_planes

    if isinstance(path, str):
        spec = f"{path.rstrip('/')}/{dataset.lstrip('/')}" if dataset else path
        opened = open_file(spec)
    else:
        opened = open_planes(list(path))
    try:
        return input_source(opened)
    finally:
        opened.close()
