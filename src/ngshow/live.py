"""Live precomputed datasets: a layer's 3-D array served in Neuroglancer's precomputed format.

The client draws precomputed segmentations fastest: ``compressed_segmentation`` chunks stay compressed
in GPU memory and are decoded in the shader, and the format brings meshes, segment properties and
skeletons along.  A :class:`LiveDataset` answers the paths of such a dataset from the array itself,
cutting and encoding chunks on request (nothing is written anywhere)::

    info                                       multiscale volume info (pyramid derived from the array)
    <scale key>/<x0>-<x1>_<y0>-<y1>_<z0>-<z1>   one chunk (compressed_segmentation, raw or jpeg)
    mesh/info  mesh/<id>:0  mesh/<id>:0:<i>    legacy meshes; big objects in one fragment per block
    segment_properties/info                    the layer's segment properties
    skeletons/info  skeletons/<id>             the layer's skeletons

Arrays the format cannot hold (time axes, channels of a segmentation, other axis names) stay on the
``python://`` source.  Formats: ``volume.md``, ``meshes.md``, ``segment_properties.md`` and
``skeletons.md`` in the client's ``src/datasource/precomputed``.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _native, encodings
from .errors import InvalidArray, InvalidRequest, NotFound
from .lru import ByteLRU
from .mesh import MeshService
from .sources import ArraySource

__all__ = ["LiveDataset", "Skeleton", "eligible", "segment_properties_table"]

#: Chunk edge for 3-D data; a 2-D image (one z plane) uses square 256 x 256 chunks.
CHUNK = 64
#: Objects whose bounding box spans more than this many voxels along an axis are meshed in blocks of
#: this size, one manifest fragment each, so the first pieces draw before the whole object is done.
MESH_BLOCK = 128
_CHUNK_NAME = re.compile(r"^(\d+)-(\d+)_(\d+)-(\d+)_(\d+)-(\d+)$")


def eligible(source: ArraySource) -> bool:
    """Whether ``source`` fits a precomputed volume: spatial axes z, y, x (array order, last), at most
    a leading channel axis ``c`` (images only), integer labels for segmentations."""
    names = [n.lower() for n in source.space.names]
    kinds = source.space.kinds
    if names[-3:] != ["z", "y", "x"] or any(k != "space" for k in kinds[-3:]):
        return False
    if source.rank == 4:
        if kinds[0] != "channel" or names[0] != "c" or source.kind == "segmentation":
            return False
    elif source.rank != 3:
        return False
    if source.kind == "segmentation":
        return source.dtype.kind in "iu"  # signed labels keep their bits as unsigned ones
    return True


@dataclass(frozen=True)
class Skeleton:
    """A skeleton: ``vertices`` ``(N, 3)`` in voxels ``(x, y, z)`` of the layer, ``edges`` ``(E, 2)``
    vertex indices, and per-vertex ``attributes`` (``{"radius": (N,) in nm, ...}``, sent as float32;
    ``(N, k)`` for k components)."""

    vertices: Any
    edges: Any
    attributes: Mapping[str, Any] = field(default_factory=dict)


SkeletonSource = Callable[[int], "Skeleton | None"] | Mapping[int, Skeleton]


def segment_properties_table(properties: Any) -> dict[str, Any]:
    """A column table (``{"ids": ..., "label": ..., ...}``) from a pandas DataFrame indexed by segment
    id, or a mapping of columns (which must hold ``ids``)."""
    if hasattr(properties, "columns") and hasattr(properties, "index"):  # a pandas DataFrame
        table: dict[str, Any] = {"ids": [int(i) for i in properties.index]}
        for name in properties.columns:
            column = properties[name]
            table[str(name)] = [list(v) if isinstance(v, (list, tuple, set)) else v for v in column.tolist()]
        return table
    if isinstance(properties, Mapping):
        return dict(properties)
    raise InvalidArray(
        f"segment_properties must be a pandas DataFrame indexed by segment id or a mapping of columns, "
        f"got {type(properties).__name__}"
    )


def _scales(source: ArraySource) -> list[tuple[int, int, int]]:
    """Downsampling factors ``(x, y, z)`` per scale, finest first: near-isotropic steps (each doubles
    the axes within a factor 2 of the finest current voxel) until one chunk covers the volume."""
    size = list(reversed(source.shape[-3:]))
    resolution = list(source.voxel_size)
    factors = [1, 1, 1]
    out = [tuple(factors)]
    limit = max(source.max_downsampling, 1)
    chunk = _chunk_size(source)
    while any(-(-n // f) > c for n, f, c in zip(size, factors, chunk)):
        current = [r * f for r, f in zip(resolution, factors)]
        finest = min(c for c, n, f in zip(current, size, factors) if -(-n // f) > 1)
        step = [2 if (cur <= 2 * finest and -(-n // f) > 1) else 1 for cur, n, f in zip(current, size, factors)]
        if math.prod(f * s for f, s in zip(factors, step)) > limit or step == [1, 1, 1]:
            break
        factors = [f * s for f, s in zip(factors, step)]
        out.append((factors[0], factors[1], factors[2]))
    return out  # type: ignore[return-value]


def _in_memory(source: ArraySource) -> bool:
    """Arrays in RAM or memory-mapped: scanning them whole costs seconds, not a download."""
    return all(isinstance(level, np.ndarray) for level, _ in source.levels)


def _chunk_size(source: ArraySource) -> tuple[int, int, int]:
    z = source.shape[-3]
    if z == 1:
        return (256, 256, 1)
    return (CHUNK, CHUNK, CHUNK)


class LiveDataset:
    """The precomputed view of one layer's array (see the module).

    Parameters
    ----------
    source
        The layer's array; must be :func:`eligible`.
    encoding
        Image chunk encoding, ``"raw"`` or ``"jpeg"``; segmentations are always
        ``compressed_segmentation``.
    meshes
        The server's mesh service (segmentations).
    cache
        A byte LRU for downsampled chunks and mesh fragments (keys carry ``token`` and ``generation``).
    """

    def __init__(
        self,
        source: ArraySource,
        *,
        token: str,
        generation: int,
        encoding: str = "raw",
        jpeg_quality: int = 90,
        meshes: MeshService | None = None,
        cache: ByteLRU[encodings.Body] | None = None,
        segment_properties: dict[str, Any] | None = None,
        skeletons: SkeletonSource | None = None,
    ) -> None:
        if not eligible(source):
            raise InvalidArray("this array cannot be served as a precomputed volume")
        if encoding not in ("raw", "jpeg"):
            raise InvalidArray(f"a live precomputed image is encoded raw or jpeg, not {encoding!r}")
        self.source = source
        self.token = token
        self.generation = generation
        self.encoding = "compressed_segmentation" if source.kind == "segmentation" else encoding
        self.jpeg_quality = jpeg_quality
        self.meshes = meshes
        self.cache = cache
        self.segment_properties = segment_properties
        self.skeletons = skeletons
        self.dtype = np.dtype(np.uint64 if source.dtype == np.uint64 else np.uint32) if source.kind == "segmentation" else source.dtype
        self.factors = _scales(source)
        self.chunk = _chunk_size(source)
        self._keys = {self.scale_key(f): f for f in self.factors}
        self._lock = threading.Lock()
        if meshes is not None and source.kind == "segmentation" and _in_memory(source):
            meshes.prefetch(source, generation)  # cheap for arrays in memory: the first mesh comes sooner

    # -- info --------------------------------------------------------------------------------------

    @staticmethod
    def scale_key(factors: Sequence[int]) -> str:
        return "_".join(str(int(f)) for f in factors)

    def info(self) -> dict[str, Any]:
        """The multiscale volume ``info`` (resolution in nm; voxel offset 0: placement is the layer's)."""
        source = self.source
        size = list(reversed(source.shape[-3:]))
        scales = []
        for f in self.factors:
            scale: dict[str, Any] = {
                "key": self.scale_key(f),
                "size": [-(-n // k) for n, k in zip(size, f)],
                "resolution": [r * k for r, k in zip(source.voxel_size, f)],
                "voxel_offset": [0, 0, 0],
                "chunk_sizes": [list(self.chunk)],
                "encoding": self.encoding,
            }
            if self.encoding == "compressed_segmentation":
                scale["compressed_segmentation_block_size"] = [8, 8, 8]
            scales.append(scale)
        info: dict[str, Any] = {
            "@type": "neuroglancer_multiscale_volume",
            "type": source.kind,
            "data_type": self.dtype.name,
            "num_channels": source.channels,
            "scales": scales,
        }
        if source.kind == "segmentation":
            info["mesh"] = "mesh"
            if self.segment_properties is not None:
                info["segment_properties"] = "segment_properties"
            if self.skeletons is not None:
                info["skeletons"] = "skeletons"
        return info

    # -- requests ----------------------------------------------------------------------------------

    def get(self, path: str) -> tuple[bytes | encodings.Body, str]:
        """The body and content type for ``path`` (relative to the dataset).

        Raises
        ------
        NotFound
            For paths the dataset does not have (including absent segments).
        InvalidRequest
            For malformed chunk names or boxes outside the volume.
        """
        if path == "info":
            return json.dumps(self.info()).encode(), "application/json"
        head, _, rest = path.partition("/")
        if head in self._keys and rest:
            return self.chunk_bytes(self._keys[head], rest), "application/octet-stream"
        if self.source.kind == "segmentation":
            if head == "mesh" and rest:
                return self._mesh(rest)
            if head == "segment_properties" and rest == "info" and self.segment_properties is not None:
                return json.dumps(self.segment_properties).encode(), "application/json"
            if head == "skeletons" and rest and self.skeletons is not None:
                return self._skeleton(rest)
        raise NotFound(f"no such file in this dataset: {path!r}")

    def chunk_bytes(self, factors: tuple[int, int, int], name: str) -> encodings.Body:
        """One encoded chunk; ``name`` is ``<x0>-<x1>_<y0>-<y1>_<z0>-<z1>`` in that scale's voxels."""
        m = _CHUNK_NAME.match(name)
        if m is None:
            raise InvalidRequest(f"chunk names look like 0-64_0-64_0-64, got {name!r}")
        x0, x1, y0, y1, z0, z1 = (int(v) for v in m.groups())
        fx, fy, fz = factors
        lead = (1,) if self.source.rank == 4 else ()
        start = (0,) * len(lead) + (z0, y0, x0)
        end = ((self.source.channels,) if lead else ()) + (z1, y1, x1)

        def compute() -> encodings.Body:
            chunk = self.source.cut_chunk(lead + (fz, fy, fx), start, end)
            return self._encode(chunk)

        if self.cache is None or factors == (1, 1, 1):
            return compute()
        key = ("live", self.token, self.generation, factors, start, end)
        return self.cache.get_or_compute(key, compute)

    def _encode(self, chunk: np.ndarray[Any, Any]) -> encodings.Body:
        if self.encoding == "compressed_segmentation":
            labels = chunk if chunk.dtype == self.dtype else chunk.astype(self.dtype)
            return _native.encode_compressed_segmentation(np.ascontiguousarray(labels.reshape((1,) + labels.shape[-3:])), (8, 8, 8))
        if self.encoding == "jpeg":
            return encodings.encode("jpeg", chunk, jpeg_quality=self.jpeg_quality)
        return encodings.encode("raw", chunk)

    # -- meshes ------------------------------------------------------------------------------------

    def _mesh(self, rest: str) -> tuple[bytes, str]:
        if rest == "info":
            return json.dumps({"@type": "neuroglancer_legacy_mesh"}).encode(), "application/json"
        parts = rest.split(":")
        try:
            object_id = int(parts[0])
        except ValueError:
            raise NotFound(f"no mesh {rest!r}") from None
        if self.meshes is None:
            raise NotFound("this layer has no meshes")
        if len(parts) == 2 and parts[1] == "0":
            return json.dumps({"fragments": self._fragments(object_id)}).encode(), "application/json"
        if len(parts) == 3 and parts[1] == "0":
            return self._fragment(object_id, parts[2]), "application/octet-stream"
        raise NotFound(f"no mesh {rest!r}")

    def _fragments(self, object_id: int) -> list[str]:
        """One fragment for an object that fits a block; one per block of its box otherwise."""
        assert self.meshes is not None
        box = self.meshes.object_box(self.source, self.generation, object_id)  # (z0, y0, x0, z1, y1, x1)
        lo, hi = box[:3], box[3:]
        if all(b - a <= MESH_BLOCK for a, b in zip(lo, hi)):
            return [f"{object_id}:0:all"]
        names = []
        ranges = [range(a // MESH_BLOCK, -(-b // MESH_BLOCK)) for a, b in zip(lo, hi)]
        for bz in ranges[0]:
            for by in ranges[1]:
                for bx in ranges[2]:
                    names.append(f"{object_id}:0:{bx}_{by}_{bz}")
        return names

    def _fragment(self, object_id: int, which: str) -> bytes:
        assert self.meshes is not None
        if which == "all":
            return self.meshes.fragment(self.source, self.generation, object_id, unit=1.0)
        try:
            bx, by, bz = (int(v) for v in which.split("_"))
        except ValueError:
            raise NotFound(f"no mesh fragment {which!r}") from None
        lo = (bz * MESH_BLOCK, by * MESH_BLOCK, bx * MESH_BLOCK)
        hi = tuple(a + MESH_BLOCK for a in lo)
        # Unsimplified, so the pieces of neighbouring blocks meet exactly (simplification would move
        # their seams apart).
        return self.meshes.block_fragment(self.source, self.generation, object_id, lo, hi, simplify=False, unit=1.0)

    # -- skeletons ---------------------------------------------------------------------------------

    def _skeleton_attributes(self, skeleton: Skeleton, n: int) -> dict[str, np.ndarray[Any, Any]]:
        out = {}
        for name, values in skeleton.attributes.items():
            # float32 whatever was given: the client cannot hand 8- or 16-bit attributes to WebGL.
            array = np.asarray(values).astype(np.float32)
            if array.shape[0] != n:
                raise InvalidArray(f"skeleton attribute {name!r} has {array.shape[0]} values for {n} vertices")
            out[name] = array.reshape(n, -1)
        return out

    def _lookup_skeleton(self, object_id: int) -> Skeleton | None:
        skeletons = self.skeletons
        if skeletons is None:
            return None
        if isinstance(skeletons, Mapping):
            return skeletons.get(object_id)
        return skeletons(object_id)

    def _skeleton(self, rest: str) -> tuple[bytes, str]:
        if rest == "info":
            return json.dumps(self.skeleton_info()).encode(), "application/json"
        try:
            object_id = int(rest)
        except ValueError:
            raise NotFound(f"no skeleton {rest!r}") from None
        skeleton = self._lookup_skeleton(object_id)
        if skeleton is None:
            raise NotFound(f"no skeleton for segment {object_id}")
        return encode_skeleton(skeleton, self.source.voxel_size, self._attribute_order()), "application/octet-stream"

    def _attribute_order(self) -> list[tuple[str, str, int]]:
        """(id, data type, components) of the vertex attributes, from the first skeleton there is."""
        with self._lock:
            cached = getattr(self, "_attributes", None)
            if cached is not None:
                return list(cached)
        sample = _first_skeleton(self.skeletons)
        attributes = []
        if sample is not None:
            n = len(np.asarray(sample.vertices))
            for name, array in self._skeleton_attributes(sample, n).items():
                attributes.append((name, array.dtype.name, int(array.shape[1])))
        with self._lock:
            self._attributes = attributes
        return list(attributes)

    def skeleton_info(self) -> dict[str, Any]:
        """Skeleton ``info``: vertices stored in nm (identity transform), attributes as given."""
        return {
            "@type": "neuroglancer_skeletons",
            "transform": [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0],
            "vertex_attributes": [
                {"id": name, "data_type": dtype, "num_components": n} for name, dtype, n in self._attribute_order()
            ],
        }


def _first_skeleton(skeletons: SkeletonSource | None) -> Skeleton | None:
    """A skeleton that shows which vertex attributes every skeleton has: a mapping's first one, or a
    callback's ``example`` attribute (a callback names no ids up front)."""
    if isinstance(skeletons, Mapping):
        return next(iter(skeletons.values()), None)
    return getattr(skeletons, "example", None)


def encode_skeleton(
    skeleton: Skeleton, voxel_size: Sequence[float], attributes: Sequence[tuple[str, str, int]]
) -> bytes:
    """The ``skeletons.md`` encoding: counts, nm positions, edges, then each attribute in ``info`` order."""
    vertices = np.asarray(skeleton.vertices, dtype=np.float64)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or not np.isfinite(vertices).all():
        raise InvalidArray(f"skeleton vertices must be a finite (N, 3) array of x, y, z voxels, got shape {vertices.shape}")
    edges = np.asarray(skeleton.edges, dtype=np.int64).reshape(-1, 2)
    n = len(vertices)
    if len(edges) and (edges.min() < 0 or edges.max() >= n):
        raise InvalidArray(f"skeleton edges must index its {n} vertices")
    parts = [
        np.array([n, len(edges)], "<u4").tobytes(),
        (vertices * np.asarray(voxel_size, np.float64)).astype("<f4").tobytes(),
        edges.astype("<u4").tobytes(),
    ]
    given = dict(skeleton.attributes)
    for name, dtype, components in attributes:
        if name not in given:
            raise InvalidArray(f"skeleton lacks vertex attribute {name!r} (every skeleton needs the same attributes)")
        values = np.asarray(given[name]).astype(np.dtype(dtype).newbyteorder("<")).reshape(n, components)
        parts.append(values.tobytes())
    return b"".join(parts)
