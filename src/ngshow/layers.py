"""Layers: one array served to the browser as an image or segmentation layer."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from . import encodings
from .errors import InvalidArray, NotFound, ViewerClosed
from .coords import CoordinateSpace, parse_unit, to_base
from .live import LiveDataset, SkeletonSource, eligible, segment_properties_table
from .lru import ByteLRU
from .mesh import MeshService
from .sources import ArraySource, Kind, read_box, require_array_like
from .state import Box
from .tokens import new_token

if TYPE_CHECKING:
    from .viewer import Viewer

ServeAs = Literal["auto", "python", "precomputed"]

__all__ = ["Layer", "ServeAs", "default_encoding", "default_shader", "guess_kind"]

logger = logging.getLogger(__name__)


def guess_kind(data: Any, space: CoordinateSpace | None = None) -> Kind:
    """Whether an array looks like labels or like an image.

    32/64-bit integers are labels (unless they have several channels); 8/16-bit integers are labels
    when a small central sample looks like them: few distinct values, mostly equal neighbours
    (Cellpose and StarDist write uint16 labels).  Everything else is an image.
    """
    require_array_like(data)
    dtype = np.dtype(data.dtype)
    shape = tuple(int(n) for n in data.shape)
    if space is None:
        space = CoordinateSpace.make(shape) if len(shape) <= 3 else None
    channels = [] if space is None else [shape[i] for i in space.channel_indices]
    if dtype.kind not in "iu" or any(n > 1 for n in channels) or (space is None and len(shape) > 3):
        return "image"
    if dtype.itemsize >= 4:
        return "segmentation"
    if dtype.itemsize == 2 and space is not None and _looks_like_labels(data, space):
        return "segmentation"
    return "image"


def _looks_like_labels(data: Any, space: CoordinateSpace) -> bool:
    box = tuple(_central(n, 64) if kind == "space" else slice(n // 2, n // 2 + 1)
                for n, kind in zip(data.shape, space.kinds))
    sample = read_box(data, box)
    if sample.size < 64:
        return False
    values = np.unique(sample)
    if values.size > 4096:
        return False
    last = sample.shape[-1]
    if last < 2:
        return False
    same = float(np.mean(sample[..., 1:] == sample[..., :-1]))
    return same >= 0.75


def _central(n: int, width: int) -> slice:
    width = min(n, width)
    lo = (n - width) // 2
    return slice(lo, lo + width)


def default_encoding(kind: Kind) -> str:
    """What serves fastest end to end on loopback (benchmarks/serve_bench.py): labels compress
    50-100x in a fraction of a millisecond (npz), image noise does not (raw)."""
    return "npz" if kind == "segmentation" else "raw"


def _contrast_sample(source: ArraySource) -> np.ndarray[Any, Any]:
    """A central block of at most 64 voxels per spatial axis, every channel, the middle time point:
    cheap to read from any store.  Channels come first in the result."""
    box = []
    for n, kind in zip(source.shape, source.space.kinds):
        if kind == "channel":
            box.append(slice(0, n))
        elif kind == "space":
            box.append(_central(n, 64))
        else:
            box.append(slice(n // 2, n // 2 + 1))
    sample = source.read(tuple(box))
    channel = source.space.channel_indices
    if len(channel) == 1:
        return np.moveaxis(sample, channel[0], 0)
    return sample[np.newaxis]


def _range(values: np.ndarray[Any, Any]) -> list[float]:
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
    if finite.size == 0:
        return [0.0, 1.0]
    lo, hi = (float(v) for v in np.percentile(finite, [0.5, 99.5]))
    if hi <= lo:
        lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:
        hi = lo + 1
    return [lo, hi]


def default_shader(source: ArraySource) -> tuple[str | None, dict[str, Any]]:
    """A shader and its control values for an image: grey for one channel, RGB for two or three,
    one selectable channel for more.  Contrast ranges come from a small central sample."""
    channels = source.channels
    if channels == 1 and source.dtype == np.uint8:
        return None, {}  # the default 0-255 range fits: nothing to read
    sample = _contrast_sample(source)
    if channels == 1:
        return None, {"normalized": {"range": _range(sample[0])}}
    if channels <= 3:
        names = ["red", "green", "blue"][:channels]
        lines = [f"#uicontrol invlerp {n}(channel={i})" for i, n in enumerate(names)]
        rgb = ", ".join(f"{n}()" for n in names) + ", 0.0" * (3 - channels)
        shader = "\n".join(lines) + f"\nvoid main() {{\n  emitRGB(vec3({rgb}));\n}}\n"
        controls = {n: {"range": _range(sample[i])} for i, n in enumerate(names)}
        return shader, controls
    shader = "#uicontrol invlerp normalized(channel=0)\nvoid main() {\n  emitGrayscale(normalized());\n}\n"
    return shader, {"normalized": {"range": _range(sample[0]), "channel": [0]}}


class Layer:
    """A handle on one layer of a :class:`~ngshow.Viewer`.

    Attributes
    ----------
    name : str
    kind : "image" or "segmentation"
    kind_guessed : bool
        True if ngshow chose ``kind`` from the dtype because none was given.
    key : str
        The secret key in the layer's ``python://volume/<key>`` URL.
    """

    def __init__(
        self,
        viewer: Viewer,
        name: str,
        data: Any,
        *,
        kind: Kind,
        kind_guessed: bool = False,
        space: CoordinateSpace | None = None,
        encoding: str = "auto",
        jpeg_quality: int = 90,
        shader: str | None = None,
        max_downsampling: int = 64,
        chunk_cache: ByteLRU[encodings.Body] | None = None,
        serve_as: ServeAs = "auto",
        segment_properties: Any = None,
        skeletons: SkeletonSource | None = None,
        meshes: MeshService | None = None,
    ) -> None:
        if serve_as not in ("auto", "python", "precomputed"):
            raise InvalidArray(f"serve_as must be 'auto', 'python' or 'precomputed', got {serve_as!r}")
        self._viewer: Viewer | None = viewer
        self.name = name
        self.kind: Kind = kind
        self.kind_guessed = kind_guessed
        self._space = space if space is not None else CoordinateSpace.make(data.shape)
        self._source: ArraySource | None = ArraySource(
            data, kind=kind, space=self._space, max_downsampling=max_downsampling
        )
        self.encoding = default_encoding(kind) if encoding == "auto" else encoding
        self.jpeg_quality = int(jpeg_quality)
        self._check_encoding(self._source)
        self._cache = chunk_cache
        self.token = new_token()
        self.key = f"{viewer.token}.{self.token}"
        self.generation = 0
        self._lock = threading.Lock()
        self.shader, self.shader_controls = (shader, {}) if shader or kind != "image" else default_shader(
            self._source
        )
        self.serve_as: ServeAs = serve_as
        self._meshes = meshes
        self._skeletons = skeletons
        self._properties = self._properties_info(segment_properties)
        self.live: LiveDataset | None = self._make_live(self._source)

    def _properties_info(self, properties: Any) -> dict[str, Any] | None:
        if properties is None:
            return None
        if self.kind != "segmentation":
            raise InvalidArray("segment_properties belong to segmentation layers")
        # The format lives with the pipeline that also writes it; imported only when needed.
        from .convert.errors import ConvertError
        from .convert.properties import segment_properties_info

        try:
            return segment_properties_info(segment_properties_table(properties))
        except ConvertError as e:
            raise InvalidArray(str(e)) from None

    def _make_live(self, source: ArraySource) -> LiveDataset | None:
        """The precomputed view of ``source``, when it is served that way (see :mod:`ngshow.live`)."""
        wanted = self.serve_as == "precomputed" or (self.serve_as == "auto" and self.kind == "segmentation")
        if not wanted or not eligible(source):
            if self.serve_as == "precomputed":
                raise InvalidArray(
                    f"serve_as='precomputed' needs a 3-D (z, y, x) array (images may add a leading c axis; "
                    f"integer labels), got axes {''.join(source.space.names)} of {source.dtype}"
                )
            if self._properties is not None or self._skeletons is not None:
                raise InvalidArray(
                    "segment properties and skeletons need a layer served as precomputed: a 3-D (z, y, x) "
                    f"array of integer labels, got axes {''.join(source.space.names)} of {source.dtype}"
                )
            return None
        return LiveDataset(
            source, token=self.token, generation=self.generation,
            encoding="jpeg" if self.encoding == "jpeg" else "raw", jpeg_quality=self.jpeg_quality,
            meshes=self._meshes, cache=self._cache, segment_properties=self._properties, skeletons=self._skeletons,
        )

    @property
    def segment_properties(self) -> dict[str, Any] | None:
        """The segment properties ``info`` the browser reads; assign a DataFrame (indexed by segment id)
        or a mapping of columns to change them in open browsers."""
        return self._properties

    @segment_properties.setter
    def segment_properties(self, value: Any) -> None:
        self._properties = self._properties_info(value)
        self._refresh_live()

    @property
    def skeletons(self) -> SkeletonSource | None:
        """Skeletons by segment id: a mapping of :class:`~ngshow.live.Skeleton`, or a callback."""
        return self._skeletons

    @skeletons.setter
    def skeletons(self, value: SkeletonSource | None) -> None:
        self._skeletons = value
        self._refresh_live()

    def _refresh_live(self) -> None:
        """A new generation of the precomputed view: open browsers fetch everything again."""
        with self._lock:
            self.generation += 1
            self.live = self._make_live(self.source)
        if self._viewer is not None:
            self._viewer._layer_changed(self)

    def __repr__(self) -> str:
        source = self._source
        shape = source.shape if source else "closed"
        guessed = " (guessed)" if self.kind_guessed else ""
        return f"<ngshow.Layer {self.name!r} {self.kind}{guessed} shape={shape}>"

    @property
    def source(self) -> ArraySource:
        """The array source; raises :class:`ViewerClosed` once the viewer is closed."""
        source = self._source
        if source is None:
            raise ViewerClosed(f"layer {self.name!r} was closed")
        return source

    @property
    def data(self) -> Any:
        """The array shown.  Contents changed in place show on browser refresh or :meth:`invalidate`.

        Assigning a new array (any shape or dtype) shows it in open browsers at once.
        """
        return self.source.data

    @data.setter
    def data(self, value: Any) -> None:
        old = self.source
        require_array_like(value)
        space = self._space
        if len(value.shape) != space.rank:  # a new rank: the same voxel size, axes named by rank
            space = CoordinateSpace.make(value.shape, voxel_size=old.voxel_size if len(old.voxel_size) == 3 else None)
        new = ArraySource(value, kind=self.kind, space=space, max_downsampling=old.max_downsampling)
        self._check_encoding(new)
        with self._lock:
            self._source = new
            self._space = space
            # The client never refetches a volume's info, so new data gets a new key (PROTOCOL.md §3.5).
            self.token = new_token()
            assert self._viewer is not None
            self.key = f"{self._viewer.token}.{self.token}"
            self.generation = 0
            self.live = self._make_live(new)
        self._viewer._layer_changed(self)

    def _check_encoding(self, source: ArraySource) -> None:
        if self.encoding not in encodings.ENCODINGS:
            raise InvalidArray(
                f"unknown encoding {self.encoding!r}; expected one of {sorted(encodings.ENCODINGS)}"
            )
        if self.encoding == "jpeg" and (
            source.dtype != np.uint8 or source.kind != "image" or source.channels not in (1, 3)
        ):
            raise InvalidArray("jpeg encoding needs a uint8 image with 1 or 3 channels")

    def info(self) -> dict[str, Any]:
        """The volume info JSON the client fetches."""
        return {**self.source.info(), "encoding": self.encoding, "generation": self.generation}

    def state_json(self) -> dict[str, Any]:
        """This layer's entry in the viewer-state ``layers`` list."""
        if self.live is not None:
            assert self._viewer is not None
            url = f"precomputed://{self._viewer._base_url()}/precomputed/{self.key}/{self.generation}"
            transform = self.source.space.source_transform(with_offset=True)
        else:
            url = f"python://volume/{self.key}"
            transform = self.source.space.source_transform()
        source: Any = url if transform is None else {"url": url, "transform": transform}
        entry: dict[str, Any] = {"type": self.kind, "source": source, "name": self.name}
        if self.shader:
            entry["shader"] = self.shader
        if self.shader_controls:
            entry["shaderControls"] = self.shader_controls
        return entry

    @property
    def space(self) -> CoordinateSpace:
        """The layer's coordinate space, in the array's own axis order."""
        return self._space

    def global_dimensions(self) -> dict[str, list[Any]]:
        """The client's global dimensions this layer brings: ``{name: [scale, base unit]}``, x, y, z first."""
        space = self.source.space
        return {
            space.axes[i].name: [space.axes[i].base_scale, space.axes[i].base_unit]
            for i in space.output_order()
            if space.axes[i].kind != "channel"
        }

    def view_box(self) -> Box:
        """Where the layer's data lies in its global dimensions (x, y, z first), for default views;
        a transform is applied to the box's corners (up to 8 transformed axes)."""
        space = self.source.space
        order = [i for i in space.output_order() if space.axes[i].kind != "channel"]
        dims = self.global_dimensions()
        lower = [space.axes[i].voxel_offset for i in order]
        upper = [space.axes[i].voxel_offset + self.source.shape[i] for i in order]
        physical = space.physical_indices
        if space.transform is not None and len(physical) <= 8:
            corners = []
            for bits in range(1 << len(physical)):
                index = np.zeros(space.rank)
                for k, i in enumerate(physical):
                    index[i] = self.source.shape[i] if bits >> k & 1 else 0
                corners.append(space.physical(index.tolist()))
            points = np.array(corners)
            lower = [float(points[:, i].min()) / space.axes[i].scale for i in order]
            upper = [float(points[:, i].max()) / space.axes[i].scale for i in order]
        return Box(dims, lower, upper)

    def index_at(self, position: Sequence[float], dimensions: Mapping[str, Sequence[Any]]) -> np.ndarray[Any, Any]:
        """The array index (float, the array's axis order) at a global ``position``.

        ``position`` and ``dimensions`` are the viewer state's (``state.position``, ``state.json
        ["dimensions"]``); axes the global space lacks (channels) get index 0.
        """
        names = list(dimensions)
        physical = []
        for axis in self._space.axes:
            if axis.kind == "channel" or axis.name not in dimensions:
                physical.append(axis.translate)
                continue
            d = names.index(axis.name)
            base = float(position[d]) * float(dimensions[axis.name][0])
            physical.append(base / to_base(1.0, parse_unit(axis.unit)[0]))
        return self._space.index(physical)

    def position_of(
        self, index: Sequence[float], dimensions: Mapping[str, Sequence[Any]], current: Sequence[float] | None = None
    ) -> list[float]:
        """The global position of an array index (the inverse of :meth:`index_at`); global axes this
        layer lacks keep their value in ``current``."""
        names = list(dimensions)
        out = [float(v) for v in current] if current is not None and len(current) == len(names) else [0.0] * len(names)
        physical = self._space.physical(index)
        for axis, value in zip(self._space.axes, physical):
            if axis.kind != "channel" and axis.name in dimensions:
                base = to_base(float(value), parse_unit(axis.unit)[0])
                out[names.index(axis.name)] = base / float(dimensions[axis.name][0])
        return out

    def encoded_chunk(
        self, encoding: str, factors: list[int], start: list[int], end: list[int]
    ) -> encodings.Body:
        """One chunk for the client; arguments in Neuroglancer dimension order (x fastest)."""
        source, cache = self.source, self._cache

        def compute() -> encodings.Body:
            chunk = source.cut_chunk(factors[::-1], start[::-1], end[::-1])
            return encodings.encode(encoding, chunk, jpeg_quality=self.jpeg_quality)

        if cache is None or all(f == 1 for f in factors):
            return compute()
        # Only downsampled chunks are cached: they read factor-product times more data than they send.
        key = (self.token, self.generation, encoding, tuple(factors), tuple(start), tuple(end))
        return cache.get_or_compute(key, compute)

    def invalidate(self) -> None:
        """Tell open browsers the data changed, so they fetch every chunk again without a reload."""
        if self.live is not None:
            self._refresh_live()  # precomputed sources are keyed by URL: a new generation, a new URL
            return
        with self._lock:
            self.generation += 1
        if self._viewer is not None:
            self._viewer._push_source_generations()

    def live_file(self, path: str) -> tuple[Any, str]:
        """A file of the layer's live precomputed dataset; :class:`NotFound` if it has none."""
        live = self.live
        if live is None:
            raise NotFound("this layer is not served as a precomputed dataset")
        return live.get(path)

    def _close(self) -> None:
        """Drop every reference to the array."""
        self._source = None
        self._viewer = None
        self._cache = None
