"""Layers: one array served to the browser as an image or segmentation layer."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import encodings
from .errors import InvalidArray, ViewerClosed
from .lru import ByteLRU
from .sources import ArraySource, Kind, require_array_like
from .tokens import new_token

if TYPE_CHECKING:
    from .viewer import Viewer

__all__ = ["Layer", "default_encoding", "default_shader", "guess_kind"]

logger = logging.getLogger(__name__)


def guess_kind(data: Any) -> Kind:
    """Wide integer arrays (32/64-bit) of rank <= 3 look like labels; everything else like an image."""
    require_array_like(data)
    dtype = np.dtype(data.dtype)
    if dtype.kind in "iu" and dtype.itemsize >= 4 and len(data.shape) <= 3:
        return "segmentation"
    return "image"


def default_encoding(kind: Kind) -> str:
    """What serves fastest end to end on loopback (benchmarks/serve_bench.py): labels compress
    50-100x in a fraction of a millisecond (npz), image noise does not (raw)."""
    return "npz" if kind == "segmentation" else "raw"


def _contrast_sample(source: ArraySource) -> np.ndarray[Any, Any]:
    """A central block of at most 64 voxels per spatial axis: cheap to read from any store."""
    box = []
    for axis, n in enumerate(source.shape):
        if source.rank == 4 and axis == 0:
            box.append(slice(0, n))
            continue
        width = min(n, 64)
        lo = (n - width) // 2
        box.append(slice(lo, lo + width))
    return source.read(tuple(box))


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
        return None, {"normalized": {"range": _range(sample)}}
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
        voxel_size: Sequence[float] = (1.0, 1.0, 1.0),
        offset: Sequence[float] = (0.0, 0.0, 0.0),
        encoding: str = "auto",
        jpeg_quality: int = 90,
        shader: str | None = None,
        max_downsampling: int = 64,
        chunk_cache: ByteLRU[encodings.Body] | None = None,
    ) -> None:
        self._viewer: Viewer | None = viewer
        self.name = name
        self.kind: Kind = kind
        self.kind_guessed = kind_guessed
        self._source: ArraySource | None = ArraySource(
            data, kind=kind, voxel_size=voxel_size, offset=offset, max_downsampling=max_downsampling
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
        new = ArraySource(
            value, kind=self.kind, voxel_size=old.voxel_size, offset=old.offset, max_downsampling=old.max_downsampling
        )
        self._check_encoding(new)
        with self._lock:
            self._source = new
            # The client never refetches a volume's info, so new data gets a new key (PROTOCOL.md §3.5).
            self.token = new_token()
            assert self._viewer is not None
            self.key = f"{self._viewer.token}.{self.token}"
            self.generation = 0
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
        entry: dict[str, Any] = {"type": self.kind, "source": f"python://volume/{self.key}", "name": self.name}
        if self.shader:
            entry["shader"] = self.shader
        if self.shader_controls:
            entry["shaderControls"] = self.shader_controls
        return entry

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
        with self._lock:
            self.generation += 1
        if self._viewer is not None:
            self._viewer._push_source_generations()

    def _close(self) -> None:
        """Drop every reference to the array."""
        self._source = None
        self._viewer = None
        self._cache = None
