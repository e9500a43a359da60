"""One opener for every array file, used by the viewer, the CLI, the mesher and convert.

:func:`open_file` (``ngshow.open``) returns an :class:`Opened`: the array's levels (finest first, read
lazily), what the file says about its coordinate space, and layer hints (kind, channel names, a shader
from OME-Zarr ``omero`` colours and windows, label images).  ``viewer.add(opened)`` shows it.

One syntax names an array inside a container file everywhere: ``data.h5/group/volume``,
``data.zarr/group/array``, ``img.ome.zarr/labels/cells``; ``data.h5:/group/volume`` is an alias.
Formats: NumPy ``.npy``, HDF5, zarr v2/v3 and OME-Zarr 0.4/0.5 (local or ``s3://``, ``gs://``,
``https://`` through fsspec), N5, TIFF (a file, a folder of planes or a glob), NIfTI, and Neuroglancer
precomputed folders.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .adapters import ReversedAxes, TensorStoreArray, space_hints
from .coords import CoordinateSpace
from .errors import InvalidArray, NgshowError
from .sources import Kind
from .tiffs import TIFF_SUFFIXES, TiffStack, open_tiff_file, plane_files

if TYPE_CHECKING:
    from .layers import Layer
    from .viewer import Viewer

__all__ = [
    "AxisView", "Opened", "open_file", "open_array", "open_planes", "group_plane_arguments", "split_container",
    "UnreadableFile", "SUFFIXES", "ReversedAxes", "TensorStoreArray",
]

logger = logging.getLogger(__name__)

SUFFIXES = (
    ".npy", ".h5", ".hdf5", ".zarr (and OME-Zarr)", ".n5", ".tif", ".tiff", "folders of .tif planes",
    ".nii", ".nii.gz", "precomputed folders",
)
_CONTAINER = re.compile(r"^(?P<file>.*?\.(?:h5|hdf5|hdf|zarr|n5))(?:(?::/?|/)(?P<inner>.*))?$", re.IGNORECASE)
_GLOB = re.compile(r"[*?\[]")


class UnreadableFile(NgshowError, OSError):
    """A file ngshow cannot open as an array (unknown type, missing, broken, ambiguous)."""


@dataclass
class Opened:
    """An opened array: its levels (finest first), what its file says about it, and layer hints.

    Attributes
    ----------
    levels
        Lazily read arrays, finest first; every later one an integer downsampling of the first.
    name
        A layer name (the file's or the array's).
    hints
        :meth:`CoordinateSpace.make` keywords from the file (axes, kinds, scale, translate, units,
        channel_labels); empty when the file says nothing.
    kind
        ``"segmentation"`` when the file says so (OME-Zarr label images, precomputed segmentations).
    shader
        A default shader (OME-Zarr ``omero`` channel colours and windows).
    labels
        Label images that belong to this image (OME-Zarr ``labels/``), each shown as a segmentation.
    """

    levels: list[Any]
    name: str
    hints: dict[str, Any] = field(default_factory=dict)
    kind: Kind | None = None
    shader: str | None = None
    labels: list[Opened] = field(default_factory=list)
    keep_open: Any = None  # a file handle that must outlive the arrays
    source: str = ""
    segment_colors: dict[int, str] = field(default_factory=dict)  # label value -> "#rrggbb"
    #: Per-segment properties the file gives (OME-Zarr ``image-label`` ``properties``), in the
    #: column form ``viewer.add(segment_properties=)`` and convert take; empty when it gives none.
    segment_properties: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def data(self) -> Any:
        """The one array, or the list of levels when there are several."""
        return self.levels[0] if len(self.levels) == 1 else list(self.levels)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self.levels[0].shape)

    @property
    def space(self) -> CoordinateSpace:
        """The coordinate space the file describes (1 nm voxels, marked ``assumed``, if it says nothing)."""
        return CoordinateSpace.make(self.shape, **self.hints)

    @property
    def voxel_size(self) -> tuple[float, float, float] | None:
        """``(x, y, z)`` in nm of the last three spatial axes, or None when the file gives no sizes."""
        space = self.space
        spatial = list(reversed(space.spatial_indices))
        if space.assumed or len(spatial) not in (2, 3):
            return None
        sizes = [float(f"{space.axes[i].base_scale * 1e9:.12g}") for i in spatial]
        x, y, z = sizes if len(sizes) == 3 else sizes + [sizes[0]]
        return (x, y, z)

    def space_with(
        self,
        *,
        axes: Any = None,
        scale: Any = None,
        translate: Any = None,
        units: Any = None,
        transform: Any = None,
        voxel_size: Any = None,
        offset: Any = None,
    ) -> CoordinateSpace:
        """The file's space with what the user gave in its place (the user's values win)."""
        hints = dict(self.hints)
        if axes is not None:  # the file's names, kinds and channel names no longer apply
            for key in ("axes", "kinds", "channel_labels"):
                hints.pop(key, None)
        if voxel_size is not None:
            hints.pop("scale", None)
            if units is None:
                hints.pop("units", None)
        if offset is not None:
            hints.pop("translate", None)
        given = {"axes": axes, "scale": scale, "translate": translate, "units": units}
        hints.update({k: v for k, v in given.items() if v is not None})
        return CoordinateSpace.make(self.shape, **hints, transform=transform, voxel_size=voxel_size, offset=offset)

    def add_to(self, viewer: Viewer, *, name: str | None = None, kind: Kind | None = None, shader: str | None = None,
               space: CoordinateSpace | None = None, **keywords: Any) -> Layer:
        """Add this array to ``viewer`` (and its label images, as segmentation layers named
        ``NAME/LABEL``); returns the array's layer.  Without ``name`` it is the file's, or a free one
        if a layer has it already.  ``keywords`` go to :meth:`Viewer.add`;
        axes/scale/translate/units/transform/voxel_size/offset replace what the file says."""
        placing = {k: keywords.pop(k, None) for k in ("axes", "scale", "translate", "units", "transform", "voxel_size", "offset")}
        overridden = any(v is not None for v in placing.values())
        if space is not None and overridden:
            raise InvalidArray("give space= or the axes/scale/translate/units/transform keywords, not both")
        chosen = space if space is not None else self.space_with(**placing)
        own_shader = self.shader if placing["axes"] is None and space is None else None
        layer = viewer.add(
            self.data, name=name or (self.name if self.name not in viewer.layers else None), kind=kind or self.kind,
            space=chosen, shader=shader or (own_shader if (kind or self.kind or "image") == "image" else None), **keywords,
        )
        _colour_segments(viewer, layer.name, self.segment_colors)
        if "segment_properties" not in keywords:
            _give_properties(layer, self.segment_properties)
        for label in self.labels:
            label_name = f"{layer.name}/{label.name}"
            label_layer = viewer.add(label.data, name=label_name, kind="segmentation", space=label.space)
            _colour_segments(viewer, label_name, label.segment_colors)
            _give_properties(label_layer, label.segment_properties)
        return layer

    def volume(self, *, channels: bool = True) -> tuple[Any, CoordinateSpace]:
        """A lazy ``(z, y, x)`` view of level 0 (``(c, z, y, x)`` with a channel axis of several
        entries and ``channels``), and its space: what the mesher takes.

        Singleton time and channel axes are dropped; spatial axes named x, y, z are put in z, y, x order.

        Raises
        ------
        InvalidArray
            For arrays with a time axis of several points, or not 2 or 3 spatial axes.
        """
        views, space = self.volume_levels(channels=channels)
        return views[0], space

    def volume_levels(self, *, channels: bool = True) -> tuple[list[Any], CoordinateSpace]:
        """:meth:`volume` of every level, finest first (the same axes in the same order): what
        convert takes as its pyramid."""
        space = self.space
        spatial = list(space.spatial_indices)
        if len(spatial) not in (2, 3):
            raise InvalidArray(f"{self.source or self.name}: needs 2 or 3 spatial axes, has axes {space.describe()}")
        names = [space.axes[i].name.lower() for i in spatial]
        wanted = ["z", "y", "x"][-len(spatial):]
        if sorted(names) == sorted(wanted):
            spatial = [spatial[names.index(n)] for n in wanted]
        channel: list[int] = []
        for i, axis in enumerate(space.axes):
            if axis.kind == "space" or self.shape[i] == 1:
                continue
            if axis.kind == "channel" and channels and not channel:
                channel = [i]
                continue
            raise InvalidArray(
                f"{self.source or self.name}: axis {axis.name!r} has {self.shape[i]} entries; this takes one "
                f"{axis.kind} point (axes {space.describe()}); save the one you want as its own array"
            )
        order = tuple(channel + spatial)
        same = order == tuple(range(len(self.shape)))
        views = [level if same else AxisView(level, order) for level in self.levels]
        picked = CoordinateSpace(tuple(space.axes[i] for i in order), None, space.assumed)
        return views, picked

    def close(self) -> None:
        """Close the file handle the arrays read from, if there is one."""
        if self.keep_open is not None:
            self.keep_open.close()
            self.keep_open = None


def _colour_segments(viewer: Viewer, layer: str, colours: dict[int, str]) -> None:
    """Give a segmentation layer the segment colours its file names (``segmentColors``)."""
    if not colours:
        return
    with viewer.txn() as state:
        for entry in state.json.get("layers", []):
            if entry.get("name") == layer and entry.get("type") == "segmentation":
                entry["segmentColors"] = {str(k): v for k, v in colours.items()}


def _give_properties(layer: Layer, properties: dict[str, list[Any]]) -> None:
    """Give a segmentation layer served as precomputed the segment properties its file names
    (a layer served otherwise has no place for them)."""
    if properties and layer.kind == "segmentation" and layer.live is not None:
        layer.segment_properties = properties


@dataclass(frozen=True)
class AxisView:
    """A lazy view of ``inner`` with its axes ``order`` (inner indices, in the view's order); every
    other axis has one entry and is dropped.  Picklable when ``inner`` is."""

    inner: Any
    order: tuple[int, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(self.inner.shape[i]) for i in self.order)

    @property
    def dtype(self) -> np.dtype[Any]:
        dtype: np.dtype[Any] = np.dtype(self.inner.dtype)
        return dtype

    @property
    def ndim(self) -> int:
        return len(self.order)

    def __getitem__(self, box: Any) -> np.ndarray[Any, Any]:
        if not isinstance(box, tuple):
            box = (box,)
        box = box + (slice(None),) * (len(self.order) - len(box))
        inner_box: list[Any] = [0] * len(self.inner.shape)
        for position, i in enumerate(self.order):
            inner_box[i] = box[position]
        part = self.inner[tuple(inner_box)]
        compute = getattr(part, "compute", None)
        part = np.asarray(compute() if callable(compute) and not isinstance(part, np.ndarray) else part)
        kept = [i for i, b in zip(self.order, box) if not isinstance(b, (int, np.integer))]
        return part.transpose(np.argsort(np.argsort(kept))) if kept != sorted(kept) else part


def _need(module: str, extra: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise UnreadableFile(f"reading this file needs {module}: pip install 'ngshow[{extra}]'") from None


def _listing(names: Sequence[str], limit: int = 20) -> str:
    names = sorted(names)
    shown = ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")
    return shown or "nothing"


def _pick(candidates: dict[str, Any], file: str) -> tuple[str, Any]:
    arrays = {k: v for k, v in candidates.items() if len(getattr(v, "shape", ())) >= 2}
    if len(arrays) == 1:
        return next(iter(arrays.items()))
    raise UnreadableFile(
        f"{file} holds {len(arrays)} arrays of 2 or more dimensions ({_listing(list(arrays))}); name one as {file}/PATH"
    )


def split_container(spec: str) -> tuple[str, str | None]:
    """``(file, path inside it)`` for ``data.h5/a/b``, ``data.h5:/a/b``, ``img.zarr/g/a`` (None: no path)."""
    match = _CONTAINER.match(spec)
    if not match:
        return spec, None
    inner = (match.group("inner") or "").strip("/")
    return match.group("file"), inner or None


# -- HDF5 ------------------------------------------------------------------------------------------


def _h5_hints(dataset: Any) -> dict[str, Any]:
    """Voxel sizes in the attributes Fiji and ilastik write (``element_size_um``, array order)."""
    size = dataset.attrs.get("element_size_um")
    if size is not None and len(size) == dataset.ndim:
        return {"scale": [float(v) for v in size], "units": "um"}
    return {}


def _open_hdf5(file: Path, inner: str | None) -> Opened:
    h5py = _need("h5py", "h5py")
    handle = h5py.File(file, "r")
    try:
        found: dict[str, Any] = {}
        handle.visititems(lambda name, obj: found.__setitem__(name, obj) if isinstance(obj, h5py.Dataset) else None)
        if inner:
            if inner not in handle or not isinstance(handle[inner], h5py.Dataset):
                raise UnreadableFile(f"{file} has no dataset {inner!r}; it holds: {_listing(list(found))}")
            name, dataset = inner, handle[inner]
        else:
            name, dataset = _pick(found, str(file))
    except BaseException:
        handle.close()
        raise
    return Opened([dataset], Path(name).name, _h5_hints(dataset), keep_open=handle)


# -- zarr and OME-Zarr -----------------------------------------------------------------------------


def _zarr_hints(array: Any) -> dict[str, Any]:
    """Axis names a zarr v3 array carries (``dimension_names``), or xarray's ``_ARRAY_DIMENSIONS``."""
    names = getattr(getattr(array, "metadata", None), "dimension_names", None)
    if names is None:
        names = dict(array.attrs).get("_ARRAY_DIMENSIONS")
    if names and all(isinstance(n, str) and re.match(r"^[A-Za-z][A-Za-z0-9_]*$", n) for n in names) \
            and len(set(names)) == len(names) == len(array.shape):
        return {"axes": list(names)}
    return {}


def _zarr_candidates(group: Any, prefix: str = "", depth: int = 0) -> dict[str, Any]:
    """Arrays and OME-Zarr images inside a group (not descending into images)."""
    from .omezarr import is_ome_image

    found: dict[str, Any] = {}
    for key, node in group.members():
        path = f"{prefix}{key}"
        if hasattr(node, "shape"):
            found[path] = node
        elif is_ome_image(node):
            found[path] = node
        elif depth < 4:
            found.update(_zarr_candidates(node, path + "/", depth + 1))
    return found


def _opened_ome(group: Any, name: str, source: str) -> Opened:
    from .omezarr import child, label_names, read_image

    image = read_image(group, name)
    labels = []
    if not image.is_label:
        for label in label_names(group):
            try:
                found = read_image(child(child(group, "labels"), label), label)
            except (KeyError, InvalidArray) as e:
                logger.warning("%s: skipping label image %r (%s)", name, label, e)
                continue
            labels.append(Opened(found.levels, label, found.hints, kind="segmentation", source=f"{source}/labels/{label}",
                                 segment_colors=found.segment_colors, segment_properties=found.segment_properties))
    logger.info("%s: OME-Zarr %s, levels %s", name, image.version or "?", ", ".join(image.level_paths))
    return Opened(image.levels, name, image.hints, kind="segmentation" if image.is_label else None,
                  shader=image.shader, labels=labels, source=source, segment_colors=image.segment_colors,
                  segment_properties=image.segment_properties)


def _stem(location: str) -> str:
    name = location.rstrip("/").rsplit("/", 1)[-1]
    for suffix in (".ome.zarr", ".zarr", ".ome.n5", ".n5"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)] or name
    return name


def _open_zarr(location: str, inner: str | None, storage_options: dict[str, Any] | None = None) -> Opened:
    zarr = _need("zarr", "zarr")
    from .omezarr import child, is_ome_image

    try:
        options = {"storage_options": storage_options} if storage_options and "://" in location else {}
        root = zarr.open(location, mode="r", **options)
    except Exception as e:
        raise UnreadableFile(f"{location}: not a zarr array or group ({type(e).__name__}: {e})") from None
    node, name = root, _stem(location)
    if inner:
        if hasattr(root, "shape"):
            raise UnreadableFile(f"{location} is one array; it has no {inner!r} inside")
        try:
            for part in inner.split("/"):
                node = child(node, part)
        except KeyError:
            raise UnreadableFile(
                f"{location} has no array or group {inner!r}; it holds: {_listing(list(_zarr_candidates(root)))}"
            ) from None
        name = inner.rsplit("/", 1)[-1]
    source = f"{location}/{inner}" if inner else location
    if hasattr(node, "shape"):
        parts = inner.split("/") if inner else []
        for cut in range(len(parts) - 1, -1, -1):  # a level of an OME-Zarr image: placed by its metadata
            image = root
            for part in parts[:cut]:
                image = child(image, part)
            if is_ome_image(image):
                from .omezarr import read_image

                found = read_image(image, source.rsplit("/", len(parts) - cut)[0], level="/".join(parts[cut:]))
                return Opened(found.levels, name, found.hints, kind="segmentation" if found.is_label else None,
                              shader=found.shader, source=source)
        return Opened([node], name, _zarr_hints(node), source=source)
    if is_ome_image(node):
        return _opened_ome(node, name, source)
    from .omezarr import ome_attrs, read_image

    if "plate" in ome_attrs(node) or "well" in ome_attrs(node):
        read_image(node, source)  # refuses, naming the images inside
    path, found = _pick(_zarr_candidates(node), source)
    if hasattr(found, "shape"):
        return Opened([found], path.rsplit("/", 1)[-1], _zarr_hints(found), source=f"{source}/{path}")
    return _opened_ome(found, path.rsplit("/", 1)[-1], f"{source}/{path}")


# -- other formats ---------------------------------------------------------------------------------


def _open_n5(file: Path, inner: str | None) -> Opened:
    ts = _need("tensorstore", "tensorstore")
    path = file / inner if inner else file
    if not path.exists():
        raise UnreadableFile(f"{file} has no dataset {inner!r}")
    store = ts.open({"driver": "n5", "kvstore": {"driver": "file", "path": str(path)}}, read=True).result()
    return Opened([TensorStoreArray(store)], path.name, space_hints(store))


def _open_tiff(file: Path) -> Opened:
    _need("tifffile", "tiff")
    data, hints, handle = open_tiff_file(str(file))
    return Opened([data], file.stem, hints, keep_open=handle, source=str(file))


def open_planes(files: Sequence[str], name: str | None = None) -> Opened:
    """2-D TIFF planes as one ``(z, y, x)`` volume, in the order given (see :func:`plane_files`).

    Raises
    ------
    InvalidArray
        Naming the first plane whose shape or dtype differs from the first one's.
    """
    _need("tifffile", "tiff")
    stack = TiffStack.from_files(files)
    label = name or Path(files[0]).parent.name or "stack"
    return Opened([stack], label, {"axes": ["z", "y", "x"]}, source=os.path.dirname(files[0]))


def _open_nifti(file: Path) -> Opened:
    nibabel = _need("nibabel", "nifti")
    image = nibabel.load(str(file))
    proxy = image.dataobj  # lazy: slices read only their part
    zooms = image.header.get_zooms()[:3]
    unit = image.header.get_xyzt_units()[0]
    to_nm = {"meter": 1e9, "mm": 1e6, "micron": 1e3}.get(unit, 1e6)
    hints = {"voxel_size": tuple(float(z) * to_nm for z in zooms)} if len(zooms) == 3 else {}
    name = file.name.split(".")[0]
    return Opened([ReversedAxes(proxy)], name, hints, source=str(file))


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
    return Opened(levels, name, {"voxel_size": (x, y, z)}, kind=info.get("type"), source=path)


def _is_zarr_folder(path: Path) -> bool:
    return any((path / n).is_file() for n in ("zarr.json", ".zgroup", ".zarray"))


def open_file(spec: str | os.PathLike[str], *, storage_options: dict[str, Any] | None = None) -> Opened:
    """Open an array file (or an array inside one) for lazy reading: ``ngshow.open``.

    ``spec`` is a path or URL: ``img.ome.zarr``, ``s3://bucket/img.ome.zarr``, ``data.h5/raw``
    (or ``data.h5:/raw``), ``data.zarr/group/array``, ``stack/`` or ``stack/*.tif`` (2-D planes in
    natural order), ``hyperstack.tif``, ``volume.npy``, ``brain.nii.gz``, a precomputed folder.

    >>> viewer.add(ngshow.open("img.ome.zarr"))   # every level, µm scales, channel colours, labels

    ``storage_options`` go to fsspec for URLs (``{"anon": True}``, ``{"endpoint_url": ...}``).

    Raises
    ------
    UnreadableFile
        With one line saying what is wrong and, for a missing array, what the file holds.
    """
    spec = os.fspath(spec)
    try:
        return _open(spec, storage_options)
    except (UnreadableFile, InvalidArray):
        raise
    except Exception as e:  # a broken file: say which and why, in one line
        raise UnreadableFile(f"{spec}: cannot read it ({type(e).__name__}: {e})") from e


def _open(spec: str, storage_options: dict[str, Any] | None = None) -> Opened:
    if spec.startswith("precomputed://"):
        return _open_precomputed(spec[len("precomputed://"):])
    if "://" in spec and not spec.startswith("file://"):
        location, inner_path = split_container(spec)
        if location.lower().endswith(".zarr") or location == spec:
            return _open_zarr(location, inner_path, storage_options)
        raise UnreadableFile(f"{spec}: ngshow reads zarr and OME-Zarr from URLs (s3://, gs://, https://); copy other files locally")
    spec = spec.removeprefix("file://")
    if Path(spec, "info").is_file():
        return _open_precomputed(spec)
    if _GLOB.search(spec) and not os.path.exists(spec):
        files = plane_files(spec)
        if not files:
            raise UnreadableFile(f"{spec}: no .tif files match this pattern")
        return open_planes(files, Path(spec).parent.name or None)
    container, inner = split_container(spec)
    file = Path(container)
    if not file.exists():
        parent = file.parent if str(file.parent) else Path(".")
        near = ", ".join(sorted(p.name for p in parent.glob(f"{file.name.split('.')[0]}*"))[:5]) if parent.is_dir() else ""
        raise UnreadableFile(f"{file}: no such file or directory" + (f" (did you mean {near}?)" if near else ""))
    lower = file.name.lower()
    if file.is_dir() and not lower.endswith((".zarr", ".n5")):
        if _is_zarr_folder(file):
            return _open_zarr(str(file), inner)
        files = plane_files(str(file))
        if not files:
            raise UnreadableFile(f"{file}: a folder with no .tif planes, zarr or precomputed dataset in it")
        return open_planes(files, file.name)
    if lower.endswith(".npy"):
        return Opened([np.load(file, mmap_mode="r")], file.stem, source=str(file))
    if lower.endswith((".h5", ".hdf5", ".hdf")):
        return _open_hdf5(file, inner)
    if lower.endswith(".zarr"):
        return _open_zarr(str(file), inner)
    if lower.endswith(".n5"):
        return _open_n5(file, inner)
    if lower.endswith(TIFF_SUFFIXES):
        return _open_tiff(file)
    if lower.endswith((".nii", ".nii.gz")):
        return _open_nifti(file)
    raise UnreadableFile(f"{file}: unknown file type; ngshow opens {', '.join(SUFFIXES)}")


#: The older name of :func:`open_file`.
open_array = open_file


def _single_plane(path: str) -> tuple[tuple[int, ...], str] | None:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            return (tuple(int(n) for n in series.shape), str(series.dtype)) if len(series.shape) == 2 else None
    except Exception:
        return None


def group_plane_arguments(specs: Sequence[str]) -> list[str | tuple[str, ...]]:
    """Command-line files with each run of two or more 2-D TIFF planes (``stack/*.tif`` expanded by
    the shell) made into one tuple, in natural order: one volume, not one layer per plane."""
    from .tiffs import natural_key

    out: list[str | tuple[str, ...]] = []
    run: list[str] = []

    def flush() -> None:
        if len(run) >= 2:
            out.append(tuple(sorted(run, key=natural_key)))
        else:
            out.extend(run)
        run.clear()

    for spec in specs:
        if spec.lower().endswith(TIFF_SUFFIXES) and os.path.isfile(spec) and _single_plane(spec) is not None:
            run.append(spec)
        else:
            flush()
            out.append(spec)
    flush()
    return out
