"""The Python face: :class:`Viewer`, :func:`show` and :func:`stop`."""

from __future__ import annotations

import asyncio
import copy
import html
import json
import logging
import os
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import figures, runtime, screenshots, sharing
from .actions import VIEWS, Actions
from .adapters import as_array, space_hints
from .annotations import GEOMETRY_ARGUMENTS, AnnotationKind, annotation_table, colour_shader, local_layer_json
from .coords import CoordinateSpace
from .encodings import Body
from .errors import InvalidArray, LocalDataWarning, NotFound, ViewerClosed
from .layers import Layer, ServeAs, guess_kind
from .live import SkeletonSource
from .lru import ByteLRU
from .readers import Opened
from .sources import Kind, require_array_like
from .state import (
    Box, SyncedDocument, ViewerState, annotation_box, fill_view_defaults, precomputed_box,
    source_urls,
)
from .tokens import find, new_token

if TYPE_CHECKING:
    from .convert.storage import Store

__all__ = ["Viewer", "show", "stop"]

logger = logging.getLogger(__name__)

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,}$")

CHUNK_CACHE_BYTES = 256 << 20

StateCallback = Callable[[ViewerState], None]


class Viewer:
    """A Neuroglancer viewer served from this process; open :attr:`url` in a browser.

    Parameters
    ----------
    token
        The secret in the viewer's URL (default: 160 random bits).  At least 16 characters of
        ``[A-Za-z0-9_-]``.

    Examples
    --------
    >>> viewer = ngshow.Viewer()
    >>> viewer.add(image, voxel_size=(6, 6, 40))
    >>> viewer.add(labels, kind="segmentation", voxel_size=(6, 6, 40))
    >>> print(viewer.url)
    """

    def __init__(self, *, token: str | None = None) -> None:
        if token is not None and not _TOKEN.match(token):
            raise ValueError("a viewer token needs at least 16 characters of [A-Za-z0-9_-]")
        self.token = token or new_token()
        self.documents: dict[str, SyncedDocument] = {"s": SyncedDocument(), "c": SyncedDocument()}
        self._layers: dict[str, Layer] = {}
        self._watchers: set[asyncio.Event] = set()
        self._state_callbacks: list[StateCallback] = []
        self.actions = Actions(self)
        self._datasets: dict[str, Path] = {}  # token -> local precomputed folder served as files
        self._remote_datasets: dict[str, Store] = {}  # token -> s3:// or gs:// dataset read by ngshow
        self._dataset_boxes: dict[str, Box] = {}  # token -> where that dataset's data lies
        self._screenshots: dict[str, Any] = {}
        self._txn_lock = threading.RLock()
        # Downsampled chunks, cleared whenever a page (re)loads so a refresh shows changed arrays.
        self._chunk_cache: ByteLRU[Body] = ByteLRU(CHUNK_CACHE_BYTES)
        self.closed = False
        self._said_assumed = False
        self._server = runtime.get_server()
        for document in self.documents.values():
            document.on_change.append(self._wake)
        self.documents["s"].complete = self._fill_view_defaults
        self._served = _Served(self)
        self._server.register(self._served)

    # -- URL and display ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The viewer's address (with its secret token); see :func:`ngshow.set_public_url`."""
        return f"{self._base_url()}/v/{self.token}/"

    def _base_url(self) -> str:
        return runtime.public_base_url(self._server.port) or self._server.base_url

    def get_viewer_url(self) -> str:
        """The viewer's address (same as :attr:`url`)."""
        return self.url

    def __repr__(self) -> str:
        return self.url

    def __str__(self) -> str:
        return self.url

    def _repr_html_(self) -> str:
        if runtime.in_colab() and not runtime.public_base_url():
            # The output frame asks Colab for the port's proxy URL itself (no kernel round trip).
            frame = f"ngshow-{self.token[:12]}"
            path = json.dumps(f"v/{self.token}/")
            return (
                f'<iframe id="{frame}" style="width:100%;height:600px;border:0"></iframe>'
                f"<script>(async () => {{ const base = await google.colab.kernel.proxyPort({self._server.port}, "
                f"{{cache: true}}); document.getElementById('{frame}').src = base.replace(/\\/?$/, '/') + {path}; }})();"
                "</script>"
            )
        url = html.escape(self.url, quote=True)
        return (
            f'<iframe src="{url}" style="width:100%;height:600px;border:0"></iframe>'
            f'<div><a href="{url}" target="_blank">Open the viewer in a new tab</a></div>'
        )

    # -- layers ------------------------------------------------------------------------------------

    @property
    def layers(self) -> dict[str, Layer]:
        """The layers added from Python, by name."""
        return dict(self._layers)

    def add(
        self,
        data: Any,
        *,
        name: str | None = None,
        kind: Kind | None = None,
        volume_type: Kind | None = None,
        axes: str | Sequence[str] | None = None,
        scale: Sequence[float] | None = None,
        translate: Sequence[float] | None = None,
        units: str | Sequence[str] | None = None,
        transform: Any = None,
        space: CoordinateSpace | None = None,
        voxel_size: Sequence[float] | None = None,
        offset: Sequence[float] | None = None,
        encoding: str = "auto",
        jpeg_quality: int = 90,
        shader: str | None = None,
        max_downsampling: int = 64,
        serve_as: ServeAs = "auto",
        segment_properties: Any = None,
        skeletons: SkeletonSource | None = None,
    ) -> Layer:
        """Show an array as a layer; returns its :class:`~ngshow.layers.Layer` handle.

        Parameters
        ----------
        data
            An array of any rank from 2 to 32: NumPy, memmap, h5py, zarr, dask, TensorStore or an
            xarray DataArray (its dims, coordinates and units are used); a list of arrays, finest
            first, as a pyramid; or a file opened with :func:`ngshow.open` (its levels, space,
            shader and label images).  Only the chunks the browser asks for are read.
        name
            Layer name; a layer of the same name is replaced.  Default: ``"image"``/``"segmentation"``.
        kind
            ``"image"`` or ``"segmentation"``.  If omitted, it is guessed (32/64-bit integers, and
            8/16-bit integers that look like labels, are segmentations); the guess is logged and
            recorded in ``layer.kind_guessed``.  ``volume_type`` is an alias.
        axes
            Axis names in the array's order, e.g. ``"tczyx"`` or ``["t", "z", "y", "x"]``; ``t``/``time``
            is a time axis (a slider, never downsampled), ``c``/``channel`` a channel axis.  Default
            by rank: ``yx``, ``zyx``, ``czyx``, ``tczyx``.
        scale, translate
            Voxel size and position of index 0 per axis, in the array's axis order and each axis's unit.
        units
            ``"um"`` for every spatial axis, or one unit per axis (``"nm"``, ``"um"``, ``"s"``, ``""``).
            Default nm for space, s for time.
        transform
            Affine matrix, ``(n+1)×(n+1)`` or ``n×(n+1)``, over the non-channel axes (array order),
            applied after scale and translate: for co-registered volumes.
        space
            A ready :class:`~ngshow.coords.CoordinateSpace` (instead of the keywords above).
        voxel_size, offset
            The short spellings for 3-D data: voxel size in nm and offset in voxels, ``(x, y, z)``.
        encoding
            Chunk encoding on the wire: ``"raw"``, ``"npz"`` (zlib) or ``"jpeg"`` (uint8 images with 1
            or 3 channels; lossy, at ``jpeg_quality``, for remote use).  ``"auto"`` picks what is
            fastest on loopback: npz for segmentations, raw for images.
        shader
            A Neuroglancer shader (images); default grey, or RGB for 2-3 channels.
        max_downsampling
            Largest product of downsampling factors the browser may ask for.
        serve_as
            ``"precomputed"``: a live precomputed dataset (3-D ``zyx`` arrays; segmentations as
            ``compressed_segmentation``, which the client draws fastest, with meshes, segment
            properties and skeletons); ``"python"``: the client's ``python://`` source (any rank);
            ``"auto"`` (default): precomputed for 3-D segmentations, else python.
        segment_properties
            Segmentations: a pandas DataFrame indexed by segment id (or a mapping of columns with
            ``ids``): ``label``, ``description``, number columns (the client filters and sorts by
            them), string columns, and one column of tag lists.
        skeletons
            Segmentations: ``{id: Skeleton}`` or a callback ``id -> Skeleton | None``
            (:class:`ngshow.Skeleton`: vertices in voxels ``(x, y, z)``, edges, vertex attributes).

        Raises
        ------
        InvalidArray
            For arrays ngshow cannot show and for inconsistent axes, scales, units or transforms,
            before anything is served.
        """
        self._check_open()
        if kind is not None and volume_type is not None and kind != volume_type:
            raise ValueError(f"kind={kind!r} and volume_type={volume_type!r} disagree")
        if isinstance(data, Opened):  # ngshow.open(...): the file's levels, space, shader and labels
            return data.add_to(
                self, name=name, kind=kind or volume_type, shader=shader, space=space, axes=axes, scale=scale,
                translate=translate, units=units, transform=transform, voxel_size=voxel_size, offset=offset,
                encoding=encoding, jpeg_quality=jpeg_quality, max_downsampling=max_downsampling,
            )
        levels = [as_array(d) for d in data] if isinstance(data, (list, tuple)) else [as_array(data)]
        for level in levels:
            require_array_like(level)
        array = levels[0]
        if space is None:
            given: dict[str, Any] = {"axes": axes, "scale": scale, "translate": translate, "units": units}
            hints = {k: v for k, v in space_hints(data[0] if isinstance(data, (list, tuple)) else data).items() if given.get(k) is None}
            if axes is not None:  # the data's own names and kinds no longer apply
                hints.pop("kinds", None)
                hints.pop("channel_labels", None)
            space = CoordinateSpace.make(
                array.shape, **hints, **{k: v for k, v in given.items() if v is not None},
                transform=transform, voxel_size=voxel_size, offset=offset,
            )
        elif any(v is not None for v in (axes, scale, translate, units, transform, voxel_size, offset)):
            raise InvalidArray("give space= or the axes/scale/translate/units/transform keywords, not both")
        chosen = kind or volume_type
        guessed = chosen is None
        if chosen is None:
            chosen = guess_kind(array, space)
            logger.info("showing array of dtype %s as %s (pass kind= to choose)", array.dtype, chosen)
        name = name or self._free_name(chosen)
        layer = Layer(
            self,
            name,
            levels if len(levels) > 1 else array,
            kind=chosen,
            kind_guessed=guessed,
            space=space,
            encoding=encoding,
            jpeg_quality=jpeg_quality,
            shader=shader,
            max_downsampling=max_downsampling,
            chunk_cache=self._chunk_cache,
            serve_as=serve_as,
            segment_properties=segment_properties,
            skeletons=skeletons,
            meshes=self._server.meshes,
        )
        if space.assumed and not self._said_assumed:
            self._said_assumed = True
            logger.info("layer %r: no voxel size given, so 1 nm voxels are assumed (pass scale= and units=)", name)
        old = self._layers.get(name)
        self._layers[name] = layer
        if old is not None:
            old._close()
        self._layer_changed(layer)
        return layer

    def dimensions(self) -> dict[str, list[Any]]:
        """The global dimensions ``{name: [scale, unit]}`` positions are given in: the browser's once a
        tab has opened, else what the client will derive from the layers (first layer's scale wins)."""
        state = self.state.json
        if state.get("dimensions"):
            return dict(state["dimensions"])
        dims: dict[str, list[Any]] = {}
        for entry in state.get("layers", []):
            layer = self._layers.get(entry.get("name", ""))
            if layer is not None:
                for name, value in layer.global_dimensions().items():
                    dims.setdefault(name, value)
        return dims

    def set_position(self, index: Sequence[float], *, layer: str) -> None:
        """Move the view to an index of ``layer``'s array (its own axis order, its units and transform).

        >>> viewer.set_position((5, 0, 30, 128, 128), layer="movie")   # t=5 of a (t, c, z, y, x) array
        """
        target = self._layers.get(layer)
        if target is None:
            raise NotFound(f"no array layer named {layer!r}; layers: {sorted(self._layers)}")
        dimensions = self.dimensions()
        with self.txn() as s:
            s.position = target.position_of(index, dimensions, s.position)

    def _layer_changed(self, layer: Layer) -> None:
        """Put the layer's entry (source URL, shader) into the state and push its generation."""

        def put(state: dict[str, Any]) -> None:
            entries = state.setdefault("layers", [])
            for i, entry in enumerate(entries):
                if entry.get("name") == layer.name:
                    entries[i] = {**entry, **layer.state_json()}
                    break
            else:
                entries.append(layer.state_json())

        self.documents["s"].update(put)
        self._push_source_generations()

    def add_annotations(
        self,
        data: Any = None,
        first: Any = None,
        second: Any = None,
        *,
        kind: AnnotationKind | None = None,
        name: str | None = None,
        position: Any = None,
        point_a: Any = None,
        point_b: Any = None,
        center: Any = None,
        radii: Any = None,
        points: Any = None,
        ids: Any = None,
        description: Any = None,
        descriptions: Sequence[str] | None = None,
        properties: Mapping[str, Any] | Sequence[str] | None = None,
        property_types: Mapping[str, str] | None = None,
        enums: Mapping[str, Any] | None = None,
        relationships: Mapping[str, Any] | None = None,
        linked_segmentation: str | Mapping[str, str] | None = None,
        filter_by_segmentation: bool | Sequence[str] = True,
        voxel_size: Sequence[float] = (1.0, 1.0, 1.0),
        dimensions: Mapping[str, Any] | None = None,
        color: str = "#ffff00",
        color_by: str | None = None,
        shader: str | None = None,
    ) -> None:
        """Add (or replace) a layer of points, lines, boxes, ellipsoids or polylines.

        >>> viewer.add_annotations(synapses, kind="point", position=["x", "y", "z"],
        ...     relationships={"pre": "pre_id", "post": "post_id"}, linked_segmentation="seg",
        ...     properties=["score", "color"], color_by="color", name="synapses")
        >>> viewer.add_annotations("point", xyz, name="dots", voxel_size=(6, 6, 40))
        >>> viewer.add_annotations("box", corner_min, corner_max, name="rois")

        ``data`` is a pandas DataFrame whose columns the other arguments name (see
        :func:`ngshow.annotations.annotation_table` for every argument), or None with arrays given
        directly; the short form ``(kind, first, second)`` takes ``(N, 3)`` arrays.  Positions are in
        voxels of ``voxel_size`` nm, ``(x, y, z)``, or of the named ``dimensions``
        (``{"x": (4, "nm"), ...}``).  ``linked_segmentation`` is the segmentation layer that the
        relationships' segment ids belong to (or a relationship -> layer mapping); selecting segments
        there then shows only their annotations (``filter_by_segmentation=False`` shows all).
        ``color_by`` names an rgb/rgba property that colours the annotations; ``shader`` is any
        annotation shader.  Read the layer back, with the browser's edits, through
        ``viewer.state.annotations(name)``.
        """
        self._check_open()
        geometry = {
            "position": position, "point_a": point_a, "point_b": point_b, "center": center, "radii": radii,
            "points": points,
        }
        if isinstance(data, str):  # the short form: add_annotations("box", corner_min, corner_max)
            if kind is not None and kind != data:
                raise ValueError(f"kind given twice: {data!r} and {kind!r}")
            if data not in GEOMETRY_ARGUMENTS:
                raise InvalidArray(f"annotation kind must be one of {sorted(GEOMETRY_ARGUMENTS)}, got {data!r}")
            wanted = GEOMETRY_ARGUMENTS[data]
            kind, data = data, None  # type: ignore[assignment]
            if len(wanted) == 2 and second is None:
                raise InvalidArray(f"{kind} annotations need two (N, 3) arrays: {wanted[0]} and {wanted[1]}")
            geometry.update((a, v) for a, v in zip(wanted, (first, second)) if v is not None)
        elif first is not None or second is not None:
            raise TypeError("add_annotations(data, ...): give the geometry by keyword (position=, point_a=, ...)")
        chosen: AnnotationKind = kind or "point"
        if descriptions is not None and description is None:
            description = descriptions
        table = annotation_table(
            data, kind=chosen, **geometry, ids=ids, description=description, properties=properties,
            property_types=property_types, enums=enums, relationships=relationships,
            rank=len(dimensions) if dimensions is not None else 3,
        )
        if isinstance(linked_segmentation, str):
            linked_segmentation = {rel: linked_segmentation for rel in table.relationships}
        if color_by is not None:
            spec = next((s for s in table.property_specs if s.id == color_by), None)
            if spec is None or spec.type not in ("rgb", "rgba"):
                raise InvalidArray(f"color_by={color_by!r} must name an rgb or rgba property")
            if shader is not None:
                raise ValueError("give color_by or shader, not both")
            shader = colour_shader(color_by)
        layer_name = name or self._free_name(chosen)
        entry = local_layer_json(
            layer_name, table, voxel_size=voxel_size, dimensions=dimensions, color=color, shader=shader,
            linked_segmentation=linked_segmentation, filter_by_segmentation=filter_by_segmentation,
        )

        def put(state: dict[str, Any]) -> None:
            entries = [e for e in state.get("layers", []) if e.get("name") != layer_name]
            state["layers"] = entries + [entry]

        self.documents["s"].update(put)

    def add_precomputed(self, location: str, *, name: str | None = None, through_ngshow: bool = False) -> None:
        """Show a Neuroglancer precomputed dataset: a local folder (served by ngshow, with its scales
        and meshes as written), an ``s3://`` or ``gs://`` URL, or an ``https://`` URL (fetched by the
        browser).  Other remote sources the client reads (``zarr://https://…``, ``n5://gs://…``) are
        added as given.

        With ``through_ngshow=True`` (what ``ngshow s3://…`` does), ``s3://`` and ``gs://`` datasets
        are read by this process with the standard credential chain (so private buckets work; needs
        ``s3fs`` / ``gcsfs``) and served only behind the viewer's token; by default the browser
        fetches them itself (public buckets, shareable links).
        """
        self._check_open()
        bucket = location.removeprefix("precomputed://")
        if through_ngshow and re.match(r"^(gs|s3)://", bucket):
            source, kind = self._add_remote_dataset(bucket)
            scheme = "precomputed"
        elif sharing.is_url_source(location):
            # zarr://, n5://, … stay as they are; a bare gs:// or https:// URL is a precomputed dataset.
            bare = "://" not in location.split("://", 1)[1]
            source, kind = (f"precomputed://{location}" if bare else location), None
            scheme = "precomputed" if bare else location.split("://", 1)[0]
        else:
            location = location.removeprefix("precomputed://")
            root = Path(location.removeprefix("file://")).resolve()
            try:
                info = json.loads((root / "info").read_text())
            except (OSError, ValueError) as e:
                raise NotFound(f"{root} is not a precomputed dataset (no readable info file: {e})") from None
            token = new_token()
            self._datasets[token] = root
            if "scales" in info:
                self._dataset_boxes[token] = precomputed_box(info)
            source, kind = f"precomputed://{self._base_url()}/data/{self.token}/{token}", info.get("type")
            scheme = "precomputed"
            if info.get("@type") == "neuroglancer_annotations_v1":
                kind = "annotation"  # typed up front, so a shader set in the state is kept
        entry: dict[str, Any] = {"source": source, "name": name or self._free_name(kind or scheme)}
        if kind in ("image", "segmentation", "annotation"):
            entry["type"] = kind

        def put(state: dict[str, Any]) -> None:
            state["layers"] = [e for e in state.get("layers", []) if e.get("name") != entry["name"]] + [entry]

        self.documents["s"].update(put)

    def _add_remote_dataset(self, location: str) -> tuple[str, str | None]:
        from .convert.storage import Store

        store = Store(location)
        try:
            text = store.get("info")
            info = json.loads(text) if text is not None else None
        except ImportError as e:
            raise NotFound(f"reading {location} needs the fsspec package for it ({e})") from None
        except (OSError, ValueError) as e:
            raise NotFound(f"{location} is not a readable precomputed dataset ({type(e).__name__}: {e})") from None
        if not isinstance(info, dict):
            raise NotFound(f"{location} is not a precomputed dataset (no info object)")
        token = new_token()
        self._remote_datasets[token] = store
        if "scales" in info:
            self._dataset_boxes[token] = precomputed_box(info)
        return f"precomputed://{self._base_url()}/data/{self.token}/{token}", info.get("type")

    def remote_dataset(self, token: str) -> Store | None:
        """The object-store dataset added with :meth:`add_precomputed` under ``token``, if any."""
        return find(self._remote_datasets, token)

    def dataset_file(self, token: str, path: str) -> Path:
        """A file of a local dataset added with :meth:`add_precomputed`; :class:`NotFound` outside it."""
        root = find(self._datasets, token)
        if root is None:
            raise NotFound("unknown dataset")
        if any(part in ("", ".", "..") for part in path.split("/")):
            raise NotFound(f"no such file: {path!r}")
        target = (root / path).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            raise NotFound(f"no such file: {path!r}")
        return target

    def remove(self, name: str) -> None:
        """Remove a layer (and ngshow's reference to its array, if it has one)."""
        if name not in self.state.layers:
            raise NotFound(f"no layer named {name!r}")
        layer = self._layers.pop(name, None)
        if layer is not None:
            layer._close()
        self.documents["s"].update(
            lambda s: s.__setitem__("layers", [e for e in s.get("layers", []) if e.get("name") != name])
        )
        self._push_source_generations()

    def layer_by_token(self, token: str) -> Layer:
        """The layer whose volume token is ``token`` (compared in constant time)."""
        layer: Layer | None = find({lay.token: lay for lay in list(self._layers.values())}, token)
        if layer is None:
            raise NotFound("unknown volume key")
        return layer

    def _free_name(self, kind: str) -> str:
        name, n = kind, 1
        taken = set(self._layers) | set(self.state.layers)
        while name in taken:
            n += 1
            name = f"{kind}{n}"
        return name

    def _push_source_generations(self) -> None:
        generations = {layer.key: layer.generation for layer in list(self._layers.values())}
        self.documents["c"].update(lambda c: c.__setitem__("sourceGenerations", generations))

    # -- state -------------------------------------------------------------------------------------

    @property
    def state(self) -> ViewerState:
        """A snapshot of the viewer state (a copy: edit it with :meth:`txn`)."""
        value, _ = self.documents["s"].snapshot()
        return ViewerState(value)

    @contextmanager
    def txn(self) -> Iterator[ViewerState]:
        """Edit the viewer state; the edit is pushed to open browsers when the block ends.

        >>> with viewer.txn() as s:
        ...     s.position = [10, 20, 30]
        """
        self._check_open()
        with self._txn_lock:
            value, _ = self.documents["s"].snapshot()
            state = ViewerState(copy.deepcopy(value))
            yield state
            if state.json != value:
                self.documents["s"].set(state.json)

    def _fill_view_defaults(self, state: dict[str, Any]) -> None:
        """Give a state edited from Python the coordinate space, position and zooms that fit its layers,
        where it has none (see :func:`ngshow.state.fill_view_defaults`)."""
        volumes = {layer.key: layer for layer in list(self._layers.values())}
        datasets = f"/data/{self.token}/"
        boxes: list[Box] = []
        for entry in state.get("layers", []):
            for url in source_urls(entry.get("source")):
                key = _layer_key(url)
                if key in volumes:
                    boxes.append(volumes[key].view_box())
                elif datasets in url and url.rsplit("/", 1)[-1] in self._dataset_boxes:
                    boxes.append(self._dataset_boxes[url.rsplit("/", 1)[-1]])
            if entry.get("type") == "annotation":
                box = annotation_box(entry)
                if box is not None:
                    boxes.append(box)
        fill_view_defaults(state, boxes)

    def set_state(self, state: ViewerState | dict[str, Any]) -> None:
        """Replace the whole viewer state."""
        self._check_open()
        self.documents["s"].set(state.json if isinstance(state, ViewerState) else state)

    def to_url(self, base: str = sharing.DEFAULT_BASE) -> str:
        """A link to the current view in the Neuroglancer deployment at ``base``.

        Layers whose data only this process serves (arrays added with :meth:`add`, local datasets) are
        named in a :class:`~ngshow.errors.LocalDataWarning`: a browser elsewhere cannot load them.
        """
        state = self.state
        local = sharing.local_layers(state, served_by=f"/data/{self.token}/")
        if local:
            warnings.warn(
                f"layers {local} are served by this Python process only: a Neuroglancer elsewhere cannot load "
                "them (share a converted dataset on a web server or bucket instead)",
                LocalDataWarning,
                stacklevel=2,
            )
        return sharing.to_url(state, base)

    def save_state(self, path: str | os.PathLike[str]) -> None:
        """Write the current view as a JSON state file (reopen it with ``ngshow --state FILE``)."""
        sharing.save_state(self.state, path)

    def apply_state(self, state: ViewerState | dict[str, Any] | str | os.PathLike[str]) -> None:
        """Take the view and layer settings of a saved state (a :class:`ViewerState`, dict, file or URL).

        Saved layers that some ngshow process served are matched by name to this viewer's layers; saved
        layers with remote sources (``precomputed://gs://…``, ``zarr://https://…``, …) are added as they
        are.  See :func:`ngshow.sharing.merge_saved_state`.
        """
        self._check_open()
        if isinstance(state, (str, os.PathLike)):
            state = sharing.load_state(state)
        elif isinstance(state, dict):
            state = sharing.check_state(state)
        with self._txn_lock:
            current, _ = self.documents["s"].snapshot()
            self.documents["s"].set(sharing.merge_saved_state(current, state))

    def on_state_changed(self, callback: StateCallback) -> StateCallback:
        """Call ``callback(state)`` after each change the browser makes (usable as a decorator).

        Callbacks run one at a time on a thread of ngshow's; exceptions are logged.
        """
        self._state_callbacks.append(callback)
        return callback

    def _state_changed_by_client(self) -> None:
        if not self._state_callbacks:
            return
        state = self.state
        for callback in list(self._state_callbacks):
            self._server.run_callback(callback, ViewerState(copy.deepcopy(state.json)))

    def bind(self, event: str, action: str, *, view: str = "viewer") -> None:
        """Fire ``action`` on a key or mouse ``event`` (``"keyt"``, ``"shift+mousedown0"``, …).

        ``view`` is ``"viewer"`` (anywhere), ``"slice_view"``, ``"perspective_view"`` or ``"data_view"``.
        Handle the action with ``viewer.actions.add(action, callback)``.
        """
        self._set_binding(event, action, view)

    def unbind(self, event: str, *, view: str = "viewer") -> None:
        """Remove a binding made with :meth:`bind`."""
        self._set_binding(event, None, view)

    def _set_binding(self, event: str, action: str | None, view: str) -> None:
        if view not in VIEWS:
            raise ValueError(f"view must be one of {sorted(VIEWS)}, got {view!r}")

        def edit(config: dict[str, Any]) -> None:
            bindings = config.setdefault("inputEventBindings", {}).setdefault(VIEWS[view], {})
            if action is None:
                bindings.pop(event, None)
            else:
                bindings[event] = action

        self.documents["c"].update(edit)

    def status(self, text: str | None, *, key: str = "ngshow") -> None:
        """Show ``text`` in the viewer's status bar (``None`` clears it)."""

        def edit(config: dict[str, Any]) -> None:
            messages = config.setdefault("statusMessages", {})
            if text is None:
                messages.pop(key, None)
            else:
                messages[key] = str(text)

        self.documents["c"].update(edit)

    def screenshot(
        self,
        size: tuple[int, int] | None = None,
        *,
        timeout: float = 60.0,
        scale_bar: bool | Mapping[str, Any] | None = None,
        panels_only: bool = False,
    ) -> bytes:
        """A PNG of the view once every visible chunk is drawn.

        Uses an open browser tab if there is one; otherwise starts headless Chromium (needs
        ``ngshow[screenshot]`` and a Chromium).  ``size`` = ``(width, height)`` in pixels; beyond
        2048 pixels a 2-D view is drawn in tiles and stitched, so ``size=(8000, 6000)`` works.
        ``scale_bar``: ``False``/``True`` hide/show it, or options such as ``{"scale_factor": 4}``.
        ``panels_only`` leaves out the top bar, layer bar and panel borders (tiled pictures always do).
        """
        self._check_open()
        return figures.screenshot(self, size, scale_bar=scale_bar, panels_only=panels_only, timeout=timeout)

    def record(
        self,
        keyframes: Sequence[Any] | str | os.PathLike[str],
        path: str | os.PathLike[str],
        *,
        fps: float = 24.0,
        size: tuple[int, int] = (1280, 720),
        progress: bool = True,
    ) -> int:
        """Render a movie: ``keyframes`` are ``{"state": …, "duration": seconds}`` (or a keyframes JSON
        file); position, orientation, zoom and opacity are interpolated (see :mod:`ngshow.movie`).
        Returns the number of frames written to ``path`` (``.mp4``).

        >>> viewer.record([{"state": a, "duration": 2}, {"state": b}], "tour.mp4", fps=30)
        """
        self._check_open()
        from . import movie

        source = keyframes if isinstance(keyframes, (str, os.PathLike)) else list(keyframes)
        return movie.record(self, source, path, fps=fps, size=size, progress=progress)

    def wait(self, timeout: float | None = None) -> bool:
        """Keep serving until this viewer is closed (or ``timeout`` seconds pass); True if closed.

        End a script with it so the viewer outlives the script's last line.  Ctrl-C closes the
        viewer and returns (no traceback).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not self.closed:
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                time.sleep(0.1)
        except KeyboardInterrupt:
            self.close()
        return True

    def connected_clients(self) -> int:
        """How many browser tabs are connected to this viewer right now."""
        return len(self._watchers)

    def _dispatch_action(self, name: str, state: dict[str, Any]) -> None:
        if name == "screenshot":
            screenshots.receive(self, state)
        elif name != "screenshotStatistics":
            for callback, action_state in self.actions.dispatch(name, state):
                self._server.run_callback(callback, action_state)

    # -- lifetime ----------------------------------------------------------------------------------

    def _page_loaded(self) -> None:
        """A browser (re)loaded the viewer: forget cached chunks, the arrays may have changed."""
        self._chunk_cache.clear()

    def _wake(self) -> None:
        self._server.wake(self._served)

    def _check_open(self) -> None:
        if self.closed:
            raise ViewerClosed("this viewer was closed (ngshow.stop() or viewer.close()); make a new one")

    def close(self) -> None:
        """Stop serving this viewer: its URL stops working and its arrays are released."""
        self._server.unregister(self._served)
        self._detach()

    def _detach(self) -> None:
        self.closed = True
        layers, self._layers = list(self._layers.values()), {}
        for layer in layers:
            layer._close()
        self._chunk_cache.clear()
        self._datasets.clear()
        self._remote_datasets.clear()
        self._state_callbacks.clear()
        self.actions._callbacks.clear()
        self._wake()


class _Served:
    """The viewer as the server sees it (:class:`ngshow.served.ServedViewer`), so the server calls
    nothing else of it."""

    def __init__(self, viewer: Viewer) -> None:
        self._viewer = viewer

    @property
    def token(self) -> str:
        return self._viewer.token

    @property
    def closed(self) -> bool:
        return self._viewer.closed

    @property
    def documents(self) -> Mapping[str, SyncedDocument]:
        return self._viewer.documents

    @property
    def watchers(self) -> set[asyncio.Event]:
        return self._viewer._watchers

    def detach(self) -> None:
        self._viewer._detach()

    def page_loaded(self) -> None:
        self._viewer._page_loaded()

    def state_changed_by_client(self) -> None:
        self._viewer._state_changed_by_client()

    def dispatch_action(self, name: str, state: dict[str, Any]) -> None:
        self._viewer._dispatch_action(name, state)

    def volume(self, token: str) -> Layer:
        return self._viewer.layer_by_token(token)

    def dataset_file(self, token: str, path: str) -> Path:
        return self._viewer.dataset_file(token, path)

    def remote_dataset(self, token: str) -> Store | None:
        return self._viewer.remote_dataset(token)


def _layer_key(url: str) -> str | None:
    """The layer key in a ``python://volume/<key>`` or live ``.../precomputed/<key>/<generation>`` URL."""
    match = re.search(r"(?:python://volume/|/precomputed/)([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)", url)
    return match.group(1) if match else None


def show(data: Any, **kwargs: Any) -> Viewer:
    """Show one array in a new :class:`Viewer` and return it; keyword arguments go to :meth:`Viewer.add`."""
    viewer = Viewer()
    viewer.add(data, **kwargs)
    return viewer


def stop() -> None:
    """Shut the server down; every viewer URL stops working and every array is released."""
    runtime.stop()


def screenshot(
    what: Viewer | ViewerState | dict[str, Any], path: str | None = None, *, size: tuple[int, int] | None = None
) -> bytes:
    """Render a viewer (or a viewer state) in headless Chromium and return the PNG; also write ``path``.

    A state may use the ``python://`` sources of viewers that are still open.
    """
    if isinstance(what, Viewer):
        png = what.screenshot(size)
    else:
        temporary = Viewer()
        try:
            temporary.set_state(what)
            png = temporary.screenshot(size)
        finally:
            temporary.close()
    if path is not None:
        with open(path, "wb") as f:
            f.write(png)
    return png
