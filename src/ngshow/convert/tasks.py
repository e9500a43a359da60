"""Pipeline tasks: frozen, picklable dataclasses, each with ``run() -> TaskResult``.

Every task is idempotent.  Its outputs have deterministic keys and contents; it writes them one
at a time, atomically, skipping keys that exist; and it checks its *last* output (or a marker
written after everything else) first, so a task that already finished costs one existence check.
A task killed half-way leaves only whole objects behind, and its rerun fills in the rest.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .errors import ConvertError, MissingChunk
from .inputs import Region
from .precomputed import Scale, Triple, decode_chunk, encode_chunk
from .sharding import ShardingSpec, ShardReader, encode_shard
from .storage import WORK_PREFIX, Store

__all__ = [
    "Downsample",
    "Layout",
    "MeshForge",
    "MeshMerge",
    "MultiresMerge",
    "Task",
    "TaskResult",
    "WriteChunks",
    "execute",
    "read_box",
]


@dataclass(frozen=True)
class TaskResult:
    """What one task did: objects written, objects (or whole tasks) skipped, bytes read/written."""

    written: int = 0
    skipped: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    skipped_task: bool = False


class Task(Protocol):
    def run(self) -> TaskResult: ...


def execute(task: Task) -> TaskResult:
    """Run one task (the function every executor is given)."""
    return task.run()


@dataclass(frozen=True)
class Layout:
    """Facts about the volume every task needs: where it lives and what a voxel is."""

    store: Store
    kind: str
    dtype: str
    channels: int


def _stored_chunks(
    layout: Layout, scale: Scale, boxes: Sequence[tuple[Triple, Triple]]
) -> Iterator[tuple[Triple, Triple, bytes]]:
    """``(lo, hi, data)`` of each chunk box, from its own file or from its shard (ranged reads).

    Raises
    ------
    MissingChunk
        If a chunk (or its shard) has not been written.
    """
    store = layout.store
    spec = scale.sharding
    if spec is None:
        for clo, chi in boxes:
            key = scale.chunk_key(clo, chi)
            data = store.get(key)
            if data is None:
                raise MissingChunk(f"chunk {key} is missing from {store.url}")
            yield clo, chi, data
        return
    by_shard: dict[str, list[tuple[int, Triple, Triple]]] = defaultdict(list)
    for clo, chi in boxes:
        by_shard[scale.shard_key(clo)].append((scale.chunk_id(clo), clo, chi))
    for key, wanted in by_shard.items():
        if not store.exists(key):
            raise MissingChunk(f"shard {key} is missing from {store.url}")

        def read(a: int, b: int, key: str = key) -> bytes:
            return store.get_range(key, a, b) or b""

        found = ShardReader(read, spec, name=key).get_many(cid for cid, _, _ in wanted)
        for cid, clo, chi in wanted:
            if cid not in found:
                raise MissingChunk(f"chunk {cid} of {key} is missing from {store.url}")
            yield clo, chi, found[cid]


def read_box(
    layout: Layout, scale: Scale, lo: Sequence[int], hi: Sequence[int]
) -> tuple[np.ndarray[Any, Any], int]:
    """Read ``[lo, hi)`` (x, y, z) of ``scale`` from stored chunks: ``((c, z, y, x) array, bytes)``.

    Raises
    ------
    MissingChunk
        If a chunk of the box has not been written.
    """
    dtype = np.dtype(layout.dtype)
    shape = (layout.channels, *(b - a for a, b in zip(reversed(lo), reversed(hi))))
    out = np.empty(shape, dtype=dtype)
    nbytes = 0
    for clo, chi, data in _stored_chunks(layout, scale, list(scale.chunks_in(lo, hi))):
        nbytes += len(data)
        chunk = decode_chunk(
            data, scale, [b - a for a, b in zip(clo, chi)], dtype, layout.channels, trusted=True
        )
        a = [max(c, l) for c, l in zip(clo, lo)]
        b = [min(c, h) for c, h in zip(chi, hi)]
        dst = (slice(None), *(slice(p - l, q - l) for p, q, l in zip(reversed(a), reversed(b), reversed(lo))))
        src = (slice(None), *(slice(p - c, q - c) for p, q, c in zip(reversed(a), reversed(b), reversed(clo))))
        out[dst] = chunk[src]
    return out, nbytes


def _write_box(
    layout: Layout, scale: Scale, array: np.ndarray[Any, Any], lo: Sequence[int]
) -> tuple[int, int, int]:
    """Write every chunk of ``array`` (placed at ``lo``, chunk-aligned): (written, skipped, bytes).

    A sharded scale's box must cover whole shards; each shard is written once, whole, in the
    order :func:`_output_keys` gives.
    """
    hi = [a + n for a, n in zip(lo, reversed(array.shape[1:]))]
    if scale.sharding is not None:
        return _write_shards(layout, scale, array, lo, hi)
    written = skipped = nbytes = 0
    for clo, chi in scale.chunks_in(lo, hi):
        key = scale.chunk_key(clo, chi)
        if layout.store.exists(key):
            skipped += 1
            continue
        box = (slice(None), *(slice(a - l, b - l) for a, b, l in zip(reversed(clo), reversed(chi), reversed(lo))))
        data = encode_chunk(np.ascontiguousarray(array[box]), scale)
        layout.store.put(key, data)
        written += 1
        nbytes += len(data)
    return written, skipped, nbytes


def _shard_boxes(scale: Scale, lo: Sequence[int], hi: Sequence[int]) -> list[tuple[Triple, Triple]]:
    """The shard blocks ``(lo, hi)`` (voxels, clipped to the scale) tiling the box, in key order."""
    shape = scale.shard_shape
    for a, b, s, n in zip(lo, hi, shape, scale.size):
        if a % s or (b % s and b != n):
            raise ConvertError(
                f"box {tuple(lo)}-{tuple(hi)} of sharded scale {scale.key} is not aligned to its "
                f"shards of {shape} voxels"
            )
    out: list[tuple[Triple, Triple]] = []
    for z in range(lo[2], hi[2], shape[2]):
        for y in range(lo[1], hi[1], shape[1]):
            for x in range(lo[0], hi[0], shape[0]):
                shi = (min(x + shape[0], scale.size[0]), min(y + shape[1], scale.size[1]),
                       min(z + shape[2], scale.size[2]))
                out.append(((x, y, z), shi))
    return sorted(out, key=lambda box: scale.shard_key(box[0]))


def _write_shards(
    layout: Layout, scale: Scale, array: np.ndarray[Any, Any], lo: Sequence[int], hi: Sequence[int]
) -> tuple[int, int, int]:
    assert scale.sharding is not None
    written = skipped = nbytes = 0
    for slo, shi in _shard_boxes(scale, lo, hi):
        key = scale.shard_key(slo)
        if layout.store.exists(key):
            skipped += 1
            continue
        chunks: dict[int, bytes] = {}
        for clo, chi in scale.chunks_in(slo, shi):
            box = (slice(None), *(slice(a - l, b - l) for a, b, l in zip(reversed(clo), reversed(chi), reversed(lo))))
            chunks[scale.chunk_id(clo)] = encode_chunk(np.ascontiguousarray(array[box]), scale)
        data = encode_shard(chunks, scale.sharding)
        layout.store.put(key, data)
        written += 1
        nbytes += len(data)
    return written, skipped, nbytes


def _last_key(scale: Scale, lo: Sequence[int], hi: Sequence[int]) -> str:
    """The key a task writes last for the box ``[lo, hi)`` of ``scale``."""
    if scale.sharding is not None:
        return scale.shard_key(_shard_boxes(scale, lo, hi)[-1][0])
    *_, (clo, chi) = scale.chunks_in(lo, hi)
    return scale.chunk_key(clo, chi)


def _bbox_name(lo: Sequence[int], hi: Sequence[int]) -> str:
    return "_".join(f"{a}-{b}" for a, b in zip(lo, hi))


def _mip_boxes(
    lo: Triple, hi: Triple, steps: Sequence[Triple], targets: Sequence[Scale]
) -> list[tuple[Triple, Triple]]:
    """The box ``[lo, hi)`` of the source scale, downsampled by each step in turn."""
    boxes = []
    for step, target in zip(steps, targets):
        lo = tuple(a // f for a, f in zip(lo, step))  # type: ignore[assignment]
        hi = tuple(min(-(-b // f), n) for b, f, n in zip(hi, step, target.size))  # type: ignore[assignment]
        boxes.append((lo, hi))
    return boxes


def _write_mips(
    layout: Layout,
    block: np.ndarray[Any, Any],
    steps: Sequence[Triple],
    targets: Sequence[Scale],
    boxes: Sequence[tuple[Triple, Triple]],
) -> tuple[int, int, int]:
    """Downsample ``block`` by each step and write the chunks of each target scale."""
    from ..sources import downsample

    mode = layout.kind == "segmentation"
    written = skipped = nbytes = 0
    block = np.ascontiguousarray(block)
    for step, target, (lo, _hi) in zip(steps, targets, boxes):
        block = downsample(block, (1, step[2], step[1], step[0]), mode=mode)
        w, s, n = _write_box(layout, target, block, lo)
        written, skipped, nbytes = written + w, skipped + s, nbytes + n
    return written, skipped, nbytes


@dataclass(frozen=True)
class WriteChunks:
    """Stage (a): read a chunk-aligned block ``[lo, hi)`` of the input and write scale-0 chunks.

    With ``targets`` it then downsamples the block in memory and writes those mips too (the
    first mips of the pyramid, fused into this stage so that scale 0 is not read back); the
    block is then aligned to every target's chunk grid, as a :class:`Downsample` block is.
    """

    layout: Layout
    scale: Scale
    lo: Triple
    hi: Triple
    region: Region
    targets: tuple[Scale, ...] = ()
    steps: tuple[Triple, ...] = ()

    def run(self) -> TaskResult:
        boxes = _mip_boxes(self.lo, self.hi, self.steps, self.targets)
        last = (
            _last_key(self.targets[-1], *boxes[-1]) if boxes
            else _last_key(self.scale, self.lo, self.hi)
        )
        if self.layout.store.exists(last):
            return TaskResult(skipped_task=True)
        block = self.region.read(contiguous=False)
        expected = (self.layout.channels, *(b - a for a, b in zip(reversed(self.lo), reversed(self.hi))))
        if block.shape != expected:
            raise ValueError(f"input region has shape {block.shape}, expected {expected}")
        w, s, n = _write_box(self.layout, self.scale, block, self.lo)
        if self.targets:
            w2, s2, n2 = _write_mips(self.layout, block, self.steps, self.targets, boxes)
            w, s, n = w + w2, s + s2, n + n2
        return TaskResult(w, s, block.nbytes, n)


@dataclass(frozen=True)
class Downsample:
    """Stage (b): read ``[lo, hi)`` of ``source`` and write several mips below it.

    ``steps[i]`` is the (x, y, z) factor from the previous scale to ``targets[i]``.  Blocks are
    aligned to every target's chunk grid, so each output chunk is computed from complete input.
    """

    layout: Layout
    source: Scale
    targets: tuple[Scale, ...]
    steps: tuple[Triple, ...]
    lo: Triple
    hi: Triple

    def run(self) -> TaskResult:
        boxes = _mip_boxes(self.lo, self.hi, self.steps, self.targets)
        if self.layout.store.exists(_last_key(self.targets[-1], *boxes[-1])):
            return TaskResult(skipped_task=True)
        block, bytes_in = read_box(self.layout, self.source, self.lo, self.hi)
        written, skipped, bytes_out = _write_mips(self.layout, block, self.steps, self.targets, boxes)
        return TaskResult(written, skipped, bytes_in, bytes_out)


_FRAGMENT = re.compile(r"^(\d+):0:(.+)$")


def piece_folder(mesh_dir: str) -> str:
    """The work folder of the forge's pieces for multi-resolution meshes."""
    return f"{WORK_PREFIX}/pieces/{mesh_dir}"


def mesh_part(label: int, parts: int, sharding: ShardingSpec | None) -> int:
    """The mesh merge task (unsharded: ``label % parts``; sharded: the label's shard) that
    builds ``label``'s multi-resolution mesh."""
    if sharding is None:
        return label % parts
    return sharding.shard_and_minishard(label)[0]


def _pieces_by_label(store: Store, folder: str, keep: Any) -> dict[int, list[str]]:
    """Piece names per label (sorted), for the labels ``keep(label)`` accepts."""
    out: dict[int, list[str]] = defaultdict(list)
    for name in store.list(folder):
        match = _FRAGMENT.match(name)
        if match and keep(int(match.group(1))):
            out[int(match.group(1))].append(name)
    return {label: sorted(out[label]) for label in sorted(out)}


def _read_piece(data: bytes) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    (n,) = np.frombuffer(data, "<u4", 1)
    v = np.frombuffer(data, "<f4", 3 * int(n), 4).reshape(-1, 3)
    f = np.frombuffer(data, "<u4", offset=4 + 12 * int(n)).reshape(-1, 3)
    return v, f


@dataclass(frozen=True)
class MeshForge:
    """Stage (c): mesh every label of block ``[lo, hi)`` (x, y, z) at ``scale``; write fragments.

    Marching cubes puts a cube between every two neighbouring voxel centres.  This block *owns*
    the cubes whose centres lie in ``[lo + 1/2, hi + 1/2)`` (voxel units; unbounded at the volume
    edges), which needs the one voxel past ``hi``.  It reads ``margin`` more voxels on each side so
    smoothing near the seams sees the same neighbourhood as the neighbouring block, then keeps
    the owned triangles only: neighbouring fragments meet without caps or overlaps.
    """

    layout: Layout
    scale: Scale
    lo: Triple
    hi: Triple
    mesh_dir: str
    margin: int
    smooth: int
    #: Write the pieces to the work area for :class:`MultiresMerge` (not legacy fragments),
    #: in one folder per merge task (:func:`mesh_part` of ``parts`` and ``sharding``).
    multires: bool = False
    parts: int = 1
    sharding: ShardingSpec | None = None

    @property
    def marker(self) -> str:
        return f"{WORK_PREFIX}/done/{self.mesh_dir}/forge/{_bbox_name(self.lo, self.hi)}"

    def folder(self, label: int) -> str:
        """Where ``label``'s fragment goes: the mesh directory, or its merge task's folder of
        multires pieces."""
        if not self.multires:
            return self.mesh_dir
        return f"{piece_folder(self.mesh_dir)}/{mesh_part(label, self.parts, self.sharding)}"

    def run(self) -> TaskResult:
        from ..mesh import crop_mesh, mesh_all

        store = self.layout.store
        if store.exists(self.marker):
            return TaskResult(skipped_task=True)
        size = self.scale.size
        rlo = tuple(max(0, a - self.margin) for a in self.lo)
        rhi = tuple(min(n, b + 1 + self.margin) for b, n in zip(self.hi, size))
        block, bytes_in = read_box(self.layout, self.scale, rlo, rhi)
        offset = [a + o for a, o in zip(rlo, self.scale.voxel_offset)]
        meshes = mesh_all(
            block[0], voxel_size=self.scale.resolution, offset=offset, smooth=self.smooth, threads=1
        )
        res = np.asarray(self.scale.resolution, dtype=np.float64)
        origin = np.asarray(self.scale.voxel_offset, dtype=np.float64)
        own_lo = np.array([a + 0.5 if a > 0 else -np.inf for a in self.lo]) + origin
        own_hi = np.array([b + 0.5 if b < n else np.inf for b, n in zip(self.hi, size)]) + origin
        name = _bbox_name(self.lo, self.hi)
        written = skipped = bytes_out = 0
        for label in sorted(meshes):
            m = meshes[label]
            if len(m.faces) == 0:
                continue
            vertices = np.asarray(m.vertices, dtype=np.float32)
            v, f = crop_mesh(vertices, np.asarray(m.faces), own_lo * res, own_hi * res)
            if len(f) == 0:
                continue
            data = (
                np.uint32(len(v)).astype("<u4").tobytes()
                + np.ascontiguousarray(v, dtype="<f4").tobytes()
                + np.ascontiguousarray(f, dtype="<u4").tobytes()
            )
            if store.put_if_absent(f"{self.folder(label)}/{label}:0:{name}", data):
                written += 1
                bytes_out += len(data)
            else:
                skipped += 1
        store.put(self.marker, b"")
        return TaskResult(written, skipped, bytes_in, bytes_out)


@dataclass(frozen=True)
class MeshMerge:
    """Stage (d): write the legacy manifests ``<id>:0`` of the labels with ``id % parts == part``.

    Each manifest lists that object's fragments (sorted, so the bytes are deterministic); stock
    Neuroglancer fetches it, then each fragment.
    """

    layout: Layout
    mesh_dir: str
    part: int
    parts: int

    @property
    def marker(self) -> str:
        return f"{WORK_PREFIX}/done/{self.mesh_dir}/merge/{self.part}-of-{self.parts}"

    def run(self) -> TaskResult:
        store = self.layout.store
        if store.exists(self.marker):
            return TaskResult(skipped_task=True)
        fragments = _pieces_by_label(store, self.mesh_dir, lambda label: label % self.parts == self.part)
        written = skipped = bytes_out = 0
        for label in sorted(fragments):
            body = json.dumps({"fragments": fragments[label]}, separators=(",", ":"))
            data = body.encode()
            if store.put_if_absent(f"{self.mesh_dir}/{label}:0", data):
                written += 1
                bytes_out += len(data)
            else:
                skipped += 1
        store.put(self.marker, b"")
        return TaskResult(written, skipped, 0, bytes_out)


@dataclass(frozen=True)
class MultiresMerge:
    """Stage (d), multi-resolution: build the meshes of the labels of one part (unsharded:
    ``label % parts == part``) or of one shard (sharded: the murmurhash3 shard of the label).

    Each label's forge pieces are read from storage and welded, its levels of detail made,
    fragmented and Draco-encoded (:mod:`ngshow.convert.multires`).  Unsharded, each label gets
    ``<id>`` (fragment data) then ``<id>.index`` (manifest); sharded, the part's labels go into
    one ``<hex>.shard`` written whole, each manifest right after its fragment data.
    """

    layout: Layout
    mesh_dir: str
    part: int
    parts: int
    voxel_size: tuple[float, float, float]
    grid_origin: tuple[float, float, float]
    chunk_shape: tuple[float, float, float]
    bits: int
    box: tuple[float, ...] | None
    sharding: ShardingSpec | None = None

    @property
    def marker(self) -> str:
        return f"{WORK_PREFIX}/done/{self.mesh_dir}/multires/{self.part}-of-{self.parts}"


    def run(self) -> TaskResult:
        from .multires import encode_object, weld

        store = self.layout.store
        if store.exists(self.marker):
            return TaskResult(skipped_task=True)
        folder = f"{piece_folder(self.mesh_dir)}/{self.part}"
        written = skipped = bytes_in = bytes_out = 0
        manifests: dict[int, bytes] = {}
        fragments: dict[int, bytes] = {}
        for label, names in _pieces_by_label(store, folder, lambda _label: True).items():
            if self.sharding is None and store.exists(f"{self.mesh_dir}/{label}.index"):
                skipped += 1
                continue
            pieces = []
            for name in names:
                data = store.get(f"{folder}/{name}")
                if data is None:
                    raise MissingChunk(f"mesh piece {folder}/{name} is missing from {store.url}")
                bytes_in += len(data)
                pieces.append(_read_piece(data))
            v, f = weld(pieces)
            if len(f) == 0:
                continue
            frag_data, manifest = encode_object(
                v, f, voxel_size=self.voxel_size, grid_origin=self.grid_origin,
                chunk_shape=self.chunk_shape, bits=self.bits, box=self.box,
            )
            if self.sharding is None:
                store.put(f"{self.mesh_dir}/{label}", frag_data)
                store.put(f"{self.mesh_dir}/{label}.index", manifest)
                written += 2
                bytes_out += len(frag_data) + len(manifest)
            else:
                manifests[label], fragments[label] = manifest, frag_data
        if self.sharding is not None and manifests:
            data = encode_shard(manifests, self.sharding, prefixes=fragments)
            store.put(f"{self.mesh_dir}/{self.sharding.shard_name(self.part)}", data)
            written += 1
            bytes_out += len(data)
        store.put(self.marker, b"")
        return TaskResult(written, skipped, bytes_in, bytes_out)
