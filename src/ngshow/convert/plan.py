"""``plan()``: turn an array and options into a :class:`Plan` — pure, picklable data, no I/O.

A plan is a sequence of :class:`Stage` barriers, each a lazy grid of frozen task dataclasses
(:mod:`ngshow.convert.tasks`, made on demand by :mod:`ngshow.convert.taskgrid`, so planning a
petabyte takes milliseconds), plus the documents the driver writes (``info``, ``mesh/info``,
``provenance``, ``segment_properties/info``).  Nothing here reads or writes the destination: :func:`ngshow.convert.run` does.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from ..errors import InvalidRequest
from ..readers import Opened
from ..sources import ArraySource
from .errors import ConvertError
from .inputs import check_picklable, input_source
from .precomputed import Scale, Triple, scale_key, volume_info
from .properties import segment_properties_info
from .sharding import volume_sharding
from .storage import Store
from .multires import mesh_info
from .sharding import ShardingSpec
from .taskgrid import InputRef, TaskGrid, Tiling
from .tasks import Downsample, Layout, MeshForge, MeshMerge, MultiresMerge, Task, WriteChunks

__all__ = ["Plan", "Stage", "plan", "mip_steps"]

logger = logging.getLogger(__name__)

#: Default memory a single task may use (decoded blocks and their downsampled copies).
DEFAULT_MEMORY_BUDGET = 512 << 20
#: With ``sharding="auto"``, scales of more chunks than this are sharded.
SHARD_THRESHOLD = 10_000
#: A stage is split into at least this many tasks where the volume allows, so workers stay busy.
MIN_TASKS = 16
MESH_DIR = "mesh"
SEGMENT_PROPERTIES_DIR = "segment_properties"
#: Minishards per mesh shard (2**bits): the client fetches one small index per segment.
MESH_MINISHARD_BITS = 6
#: About one mesh shard per this many forge blocks (and at least ``min_tasks`` shards, so the
#: merge, one task per shard, runs in parallel).
MESH_BLOCKS_PER_SHARD = 16


@dataclass(frozen=True)
class Stage:
    """A barrier: every task of a stage finishes before the next stage starts.

    ``tasks`` is usually a lazy :class:`~ngshow.convert.taskgrid.TaskGrid`.  ``writes`` are the
    scales whose chunks (or shards) the stage writes, ``task_memory`` about the bytes one of its
    tasks holds, ``mesh_shards`` the mesh shard files a sharded mesh merge writes (at most).
    """

    name: str
    tasks: Sequence[Task]
    writes: tuple[Scale, ...] = ()
    task_memory: int = 0
    mesh_shards: int = 0

    def __len__(self) -> int:
        return len(self.tasks)

    def files(self) -> int | None:
        """Chunk or shard files the stage writes (None when it depends on the data: meshes)."""
        if self.writes:
            return sum(_scale_files(s) for s in self.writes)
        return self.mesh_shards or None

    def raw_bytes(self) -> int:
        """Uncompressed bytes of the voxels the stage writes (0 for meshes)."""
        if not self.writes:
            return 0
        layout = getattr(self.tasks[0], "layout", None) if len(self.tasks) else None
        voxel = np.dtype(layout.dtype).itemsize * layout.channels if layout is not None else 1
        return sum(math.prod(s.size) * voxel for s in self.writes)


def _scale_files(scale: Scale) -> int:
    """Files of one scale: its shards, or its chunks."""
    shape = scale.shard_shape
    return math.prod(-(-n // c) for n, c in zip(scale.size, shape))


@dataclass(frozen=True)
class Plan:
    """What :func:`~ngshow.convert.run` executes: stages of tasks and the driver's documents.

    JSON documents are kept as text so the plan stays hashable-free immutable data.
    """

    dest: str
    info_json: str
    provenance_json: str
    stages: tuple[Stage, ...]
    mesh_dir: str | None = None
    #: The mesh directory's ``info`` document (legacy meshes when None).
    mesh_info_json: str | None = None
    #: The ``segment_properties/info`` document, or None.
    segment_properties_json: str | None = None

    @property
    def info(self) -> dict[str, Any]:
        """The ``info`` document the driver writes."""
        return json.loads(self.info_json)  # type: ignore[no-any-return]

    def __len__(self) -> int:
        return sum(len(s) for s in self.stages)

    def describe(self) -> str:
        """One line per stage: tasks, files, uncompressed bytes and memory per task (a dry run)."""
        lines = []
        for s in self.stages:
            files = s.files()
            parts = [f"{len(s)} tasks"]
            parts.append(f"{files} files" if files is not None else "files: per object")
            if s.raw_bytes():
                parts.append(f"{_size(s.raw_bytes())} uncompressed")
            if s.task_memory:
                parts.append(f"{_size(s.task_memory)} per task")
            lines.append(f"{s.name}: " + ", ".join(parts))
        sharded = [sc["key"] for sc in self.info["scales"] if "sharding" in sc]
        lines.append(f"sharded scales: {', '.join(sharded) if sharded else 'none'}")
        return "\n".join(lines)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if n < 1024 or unit == "EiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def _triple_int(values: Sequence[float] | int, what: str) -> Triple:
    if isinstance(values, (int, np.integer)):
        values = (int(values),) * 3
    out = tuple(int(v) for v in values)
    if len(out) != 3 or any(v < 1 for v in out) or any(float(a) != float(b) for a, b in zip(out, values)):
        raise InvalidRequest(f"{what} must be three positive integers (x, y, z), got {values!r}")
    return (out[0], out[1], out[2])


def mip_steps(
    size: Sequence[int],
    resolution: Sequence[float],
    chunk_size: Sequence[int],
    levels: int | Literal["auto"],
) -> list[Triple]:
    """Per-mip downsampling factors (x, y, z), each 2 or 1.

    An axis is halved unless it is already a single voxel, or its voxels are less than half as
    long as the coarsest axis's (so anisotropic stacks like 4x4x40 nm halve x and y only until
    they approach isotropy).  ``"auto"`` stops once the scale fits in one chunk.
    """
    size = list(size)
    res = [float(r) for r in resolution]
    steps: list[Triple] = []
    limit = 32 if levels == "auto" else int(levels)
    while len(steps) < limit:
        if levels == "auto" and all(n <= c for n, c in zip(size, chunk_size)):
            break
        # Axes already one voxel thick (2-D data) take no part in the isotropy rule.
        live = [r for r, n in zip(res, size) if n > 1] or res
        coarsest = max(live)
        if coarsest / min(live) < 2:
            step = [2, 2, 2]
        else:
            step = [2 if 2 * r <= coarsest else 1 for r in res]
        step = [f if n > 1 else 1 for f, n in zip(step, size)]
        if step == [1, 1, 1]:
            if levels == "auto":
                break
            raise InvalidRequest(f"cannot downsample {len(steps) + 1} times: the volume is one voxel")
        steps.append((step[0], step[1], step[2]))
        size = [-(-n // f) for n, f in zip(size, step)]
        res = [r * f for r, f in zip(res, step)]
    return steps


def _count(size: Sequence[int], block: Sequence[int]) -> int:
    """How many blocks tile ``size``."""
    return math.prod(-(-n // b) for n, b in zip(size, block))


def _held(block: Sequence[int], size: Sequence[int], voxel_bytes: int, copies: int) -> int:
    """Bytes a task holds for ``copies`` of a block (clipped to the volume)."""
    return math.prod(min(b, n) for b, n in zip(block, size)) * voxel_bytes * copies


def _grow_block(
    chunk: Sequence[int], size: Sequence[int], voxel_bytes: int, budget: int, min_tasks: int
) -> Triple:
    """The largest chunk-multiple block (doubling one axis at a time, z first) within ``budget``
    that still splits the volume into at least ``min_tasks`` blocks (when it can)."""
    block = list(chunk)

    def count(b: Sequence[int]) -> int:
        return math.prod(-(-n // c) for n, c in zip(size, b))

    grew = True
    while grew:
        grew = False
        for axis in (2, 1, 0):
            if block[axis] >= size[axis]:
                continue
            trial = list(block)
            trial[axis] *= 2
            if math.prod(trial) * voxel_bytes > budget or count(trial) < min_tasks:
                continue
            block = trial
            grew = True
    return (block[0], block[1], block[2])


def _unit(
    scales: Sequence[Scale], steps: Sequence[Triple], first: int, count: int, *, itself: bool
) -> Triple:
    """The smallest block (voxels of ``scales[first]``) aligned to the chunks, or the shards of
    sharded scales, of ``scales[first + 1 : first + 1 + count]`` (and of ``scales[first]`` when
    ``itself``).  Every cell is a chunk times a power of two, so the largest one per axis is a
    multiple of all the others."""
    out = [1, 1, 1]
    factor = [1, 1, 1]
    for j in range(first, first + count + 1):
        if j > first:
            factor = [f * s for f, s in zip(factor, steps[j - 1])]
        elif not itself:
            continue
        cell = scales[j].shard_shape
        out = [max(o, c * f) for o, c, f in zip(out, cell, factor)]
    return (out[0], out[1], out[2])


def _shard_scales(
    scales: Sequence[Scale],
    sharding: Literal["auto", "on", "off"] | bool,
    voxel_bytes: int,
    memory_budget: int,
    min_tasks: int = MIN_TASKS,
) -> list[Scale]:
    """``scales`` with a sharding specification on those that ``sharding`` asks for.

    Scale 0's shards are sized so a task holds its block about three times over (input, its
    encoded chunks, the fused mips); a downsampled scale's so a task holds the 8x larger
    block of the scale above twice; and no larger than leaves ``min_tasks`` shards to write
    in parallel, where the scale has that many chunks.
    """
    if sharding is True:
        sharding = "on"
    elif sharding is False:
        sharding = "off"
    if sharding not in ("auto", "on", "off"):
        raise InvalidRequest(f"sharding must be 'auto', 'on' or 'off', got {sharding!r}")
    out = []
    for i, s in enumerate(scales):
        chunks = math.prod(s.grid)
        if sharding == "off" or (sharding == "auto" and chunks <= SHARD_THRESHOLD):
            out.append(s)
            continue
        chunk_bytes = math.prod(s.chunk_size) * voxel_bytes
        held = 3 * chunk_bytes if i == 0 else 2 * 8 * chunk_bytes
        per_shard = min(memory_budget // held, max(1, chunks // min_tasks))
        if memory_budget < held:
            raise InvalidRequest(
                f"memory_budget of {memory_budget} bytes is too small for sharded scale {s.key}: "
                f"one task must hold at least {held} bytes (chunks of {chunk_bytes} bytes)"
            )
        encoding = "gzip" if s.encoding == "raw" else "raw"
        spec = volume_sharding(s.grid, per_shard, data_encoding=encoding)  # type: ignore[arg-type]
        out.append(replace(s, sharding=spec))
    return out


def _xyz(shape: Sequence[int]) -> Triple:
    """``(x, y, z)`` sizes of a ``(z, y, x)``, ``(c, z, y, x)`` or ``(y, x)`` array."""
    _c, z, y, x = (1,) * (4 - len(shape)) + tuple(int(n) for n in shape)
    return (x, y, z)


def _level_factors(src: ArraySource, mip_levels: int | Literal["auto"]) -> list[tuple[int, Triple]]:
    """``(level index, (x, y, z) factors)`` of the levels of ``src`` that become scales: each
    coarser than the one before on some axis and finer on none (a level that is not is skipped,
    with a warning), at most ``mip_levels`` below level 0."""
    out: list[tuple[int, Triple]] = [(0, (1, 1, 1))]
    for i, (_level, served) in enumerate(src.levels[1:], 1):
        fx, fy, fz = (int(f) for f in reversed(served[-3:]))
        prev = out[-1][1]
        if (fx, fy, fz) == prev or any(f < p for f, p in zip((fx, fy, fz), prev)):
            logger.warning(
                "not using pyramid level %d (downsampling factors %s after %s): each level must be "
                "coarser than the one before; the scales below are computed by downsampling",
                i, (fx, fy, fz), prev,
            )
            break
        out.append((i, (fx, fy, fz)))
    if mip_levels != "auto":
        out = out[: max(0, int(mip_levels)) + 1]
    return out


def _mesh_mip(scales: Sequence[Scale], mesh_mip: int | Literal["auto"]) -> int:
    if mesh_mip != "auto":
        if not 0 <= int(mesh_mip) < len(scales):
            raise InvalidRequest(f"mesh_mip must be in [0, {len(scales) - 1}], got {mesh_mip}")
        return int(mesh_mip)
    for i, s in enumerate(scales):
        if max(s.resolution) / min(s.resolution) <= 2:
            return i
    return 0


def plan(
    source: Any,
    dest: str | os.PathLike[str],
    *,
    kind: Literal["image", "segmentation"] | None = None,
    voxel_size: Sequence[float] | None = None,
    offset: Sequence[int] | None = None,
    chunk_size: Sequence[int] | int = (64, 64, 64),
    mip_levels: int | Literal["auto"] = "auto",
    encoding: str | None = None,
    mesh: bool = False,
    mesh_mip: int | Literal["auto"] = "auto",
    mesh_smoothing: int | None = None,
    jpeg_quality: int = 85,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    min_tasks: int = MIN_TASKS,
    fuse: bool = True,
    segment_properties: Mapping[str, Any] | None = None,
    sharding: Literal["auto", "on", "off"] | bool = "auto",
    mesh_format: Literal["multires", "legacy"] = "multires",
    mesh_quantization_bits: int = 16,
) -> Plan:
    """Plan the conversion of ``source`` into a precomputed dataset at ``dest``.

    Parameters
    ----------
    source
        A file opened by :func:`ngshow.open` (its voxel sizes and kind, every level, a label
        image's properties), an :class:`~ngshow.ArraySource`, or an array (NumPy, memmap, h5py,
        zarr, dask, or a reference from :func:`~ngshow.convert.open_input`) in ``(z, y, x)`` or
        ``(c, z, y, x)`` order, or a list of them, finest first, as a pyramid.  Each level that
        is an integer downsampling of the one before is a scale read from its own array (an
        OME-Zarr's multiscales); coarser scales are computed from the last one.
    dest
        Local path or fsspec URL (``file://``, ``s3://``, ``gs://``).
    kind
        ``"image"`` or ``"segmentation"``; default: the source's kind, or ``"image"``.
    voxel_size, offset
        ``(x, y, z)``: nm per voxel, and voxel offset (integers).  Default: the source's.
    chunk_size
        Chunk size ``(x, y, z)`` of every scale.
    mip_levels
        Number of scales below scale 0 (the source's own levels first), or ``"auto"``: every
        level of the source, then computed ones until one chunk covers the volume.
    encoding
        ``"raw"``, ``"jpeg"`` (uint8 images with 1 or 3 channels) or ``"compressed_segmentation"``
        (uint32/uint64 segmentations).  Default: compressed_segmentation for uint32/uint64
        segmentations, raw otherwise.
    mesh
        Add mesh forge and mesh merge stages (segmentations only).
    mesh_mip
        Scale index to mesh at, or ``"auto"``: the finest scale within 2x of isotropic.
    memory_budget
        Bytes one task may hold; sets how many mips one downsampling task computes.
    min_tasks
        Split each stage into at least this many tasks where the volume allows.
    fuse
        Compute the first mips in the scale-0 tasks, from the blocks they have read, where the
        budget and ``min_tasks`` allow (the output is the same either way).
    segment_properties
        Segmentations only (default: the properties of an OME-Zarr label image given by
        :func:`ngshow.open`): a table of per-segment properties in column form, written as
        ``segment_properties/info`` (Neuroglancer's ``neuroglancer_segment_properties``)::

            {"ids": [12, 40], "label": ["soma", "axon"], "description": ["...", "..."],
             "tags": [["big"], []], "volume_um3": [1.5, 0.25]}

        ``ids`` (uint64 integers or decimal strings, unique) is required; every other column
        has one value per id.  ``label`` and ``description`` hold strings; a column of lists of
        strings is the tags; a column of numbers is a number property (int32, uint32 or
        float32); any other column of strings is a string property.  See
        :mod:`ngshow.convert.properties`.
    sharding
        ``"on"`` (or True): every scale in Neuroglancer's sharded format (one ``<hex>.shard`` file
        per block of chunks, sized so one task writes one whole shard within
        ``memory_budget``); ``"off"`` (or False): one file per chunk; ``"auto"``: sharded for the
        scales of more than :data:`SHARD_THRESHOLD` chunks.  Multi-resolution meshes are sharded
        (murmurhash3 of the segment id) when scale 0 is.
    mesh_format
        ``"multires"``: Neuroglancer's multi-resolution meshes (``neuroglancer_multilod_draco``,
        levels of detail from ngshow's simplifier, Draco fragments); ``"legacy"``: single
        resolution ``<id>:0`` manifests and fragment files.
    mesh_quantization_bits
        Multi-resolution meshes: bits per vertex coordinate within a fragment, 10 or 16.

    Returns
    -------
    Plan
        Pure data; pass it to :func:`ngshow.convert.run`.

    Raises
    ------
    ConvertError
        If ``segment_properties`` is given for an image, or is malformed.
    InvalidRequest
        If an option is invalid, e.g. ``sharding`` with a ``memory_budget`` too small to hold
        the chunks of one shard.
    """
    if isinstance(source, Opened):
        # A file opened by ngshow.open: every level, and a label image's own properties.
        if segment_properties is None and (kind or source.kind) == "segmentation":
            segment_properties = source.segment_properties or None
        source = input_source(source)
    if isinstance(source, ArraySource):
        # A source may carry a pyramid of arrays (an OME-Zarr's levels): each becomes a scale,
        # read from its own array.
        arrays = [level for level, _ in source.levels]
        kind = kind or source.kind
        voxel_size = voxel_size if voxel_size is not None else source.voxel_size
        offset = offset if offset is not None else tuple(source.offset)  # type: ignore[arg-type]
    elif isinstance(source, (list, tuple)):
        arrays = list(source)
    else:
        arrays = [source]
    kind = kind or "image"
    src = ArraySource(
        arrays, kind=kind, voxel_size=voxel_size or (1.0, 1.0, 1.0), offset=offset or (0, 0, 0)
    )
    data = arrays[0]
    for array in arrays:
        check_picklable(array)
    if any(not float(o).is_integer() for o in src.offset):
        raise InvalidRequest(f"offset must be whole voxels, got {src.offset}")
    voxel_offset: Triple = tuple(int(o) for o in src.offset)  # type: ignore[assignment]
    channels = src.channels
    dtype = src.dtype
    size = _xyz(data.shape)
    chunk = _triple_int(chunk_size, "chunk_size")

    if encoding is None:
        encoding = (
            "compressed_segmentation"
            if kind == "segmentation" and dtype in (np.uint32, np.uint64)
            else "raw"
        )
    if encoding == "compressed_segmentation":
        if kind != "segmentation" or dtype not in (np.uint32, np.uint64):
            raise InvalidRequest(
                f"compressed_segmentation needs a uint32 or uint64 segmentation, got {kind} {dtype}"
            )
    elif encoding == "jpeg":
        if kind != "image" or dtype != np.uint8 or channels not in (1, 3):
            raise InvalidRequest(
                f"jpeg needs a uint8 image of 1 or 3 channels, got {kind} {dtype} x {channels}"
            )
    elif encoding != "raw":
        raise InvalidRequest(
            f"unknown encoding {encoding!r}; expected raw, jpeg or compressed_segmentation"
        )
    if mesh and kind != "segmentation":
        raise InvalidRequest("meshes need kind='segmentation'")
    if mesh_format not in ("multires", "legacy"):
        raise InvalidRequest(f"mesh_format must be 'multires' or 'legacy', got {mesh_format!r}")
    if mesh_quantization_bits not in (10, 16):
        raise InvalidRequest(
            f"mesh_quantization_bits must be 10 or 16, got {mesh_quantization_bits!r}"
        )
    properties_json: str | None = None
    if segment_properties is not None:
        if kind != "segmentation":
            raise ConvertError("segment_properties need kind='segmentation'")
        properties_json = json.dumps(
            segment_properties_info(segment_properties), indent=2, sort_keys=True
        )

    level0 = Scale(
        key=scale_key(src.voxel_size), size=size, resolution=src.voxel_size,
        voxel_offset=voxel_offset, chunk_size=chunk, encoding=encoding, jpeg_quality=jpeg_quality,
    )
    # Scales read from the input's own levels, then scales computed by downsampling the last one.
    factors = _level_factors(src, mip_levels)
    scales = []
    for i, fs in factors:
        res: tuple[float, float, float] = (src.voxel_size[0] * fs[0], src.voxel_size[1] * fs[1],
                                           src.voxel_size[2] * fs[2])
        scales.append(replace(
            level0, key=scale_key(res), size=_xyz(src.levels[i][0].shape), resolution=res,
            voxel_offset=(voxel_offset[0] // fs[0], voxel_offset[1] // fs[1], voxel_offset[2] // fs[2]),
            factor=fs,
        ))
    base = len(scales) - 1
    more: int | Literal["auto"] = mip_levels if mip_levels == "auto" else int(mip_levels) - base
    steps = mip_steps(scales[-1].size, scales[-1].resolution, chunk, more)
    for step in steps:
        prev = scales[-1]
        res = tuple(r * f for r, f in zip(prev.resolution, step))  # type: ignore[assignment]
        scales.append(replace(
            prev, key=scale_key(res),
            size=tuple(-(-n // f) for n, f in zip(prev.size, step)),  # type: ignore[arg-type]
            resolution=res,
            voxel_offset=tuple(o // f for o, f in zip(prev.voxel_offset, step)),  # type: ignore[arg-type]
            factor=tuple(a * f for a, f in zip(prev.factor, step)),  # type: ignore[arg-type]
        ))

    voxel_bytes = dtype.itemsize * channels
    scales = _shard_scales(scales, sharding, voxel_bytes, memory_budget, min_tasks)
    dest_url = Store(dest).url
    layout = Layout(Store(dest_url), kind, dtype.str, channels)
    stages: list[Stage] = []

    # (a) each scale read from the input (scale 0, and the input's own coarser levels), in
    # chunk-aligned blocks; the last of them also computes the first ``fused`` mips from those
    # blocks in memory (so it is not read back), as many as keep the blocks within the budget
    # and the stage split into enough tasks.  Blocks are aligned to the shards of every sharded
    # scale they write.
    for j, (index, _f) in enumerate(factors):
        later = steps if j == base else []
        own = scales[j:]
        here = own[0].size
        fused = 0
        unit: Sequence[int] = _unit(own, later, 0, 0, itself=True)
        while fuse and fused < len(later):
            trial = _unit(own, later, 0, fused + 1, itself=True)
            if _held(trial, here, voxel_bytes, 3) > memory_budget or _count(here, trial) < min_tasks:
                break
            fused, unit = fused + 1, trial
        block = _grow_block(unit, here, voxel_bytes, min(memory_budget // 4, 64 << 20), 4 * min_tasks)
        level = src.levels[index][0]
        source_ref = InputRef(level, 4 - len(level.shape), dtype.str, channels)
        proto = WriteChunks(layout, own[0], (0, 0, 0), block, None, tuple(own[1 : 1 + fused]),  # type: ignore[arg-type]
                            tuple(later[:fused]))
        name = ", ".join(f"chunks {s.key}" for s in own[: 1 + fused])
        stages.append(Stage(
            name + (f" (from input level {index})" if index else ""),
            TaskGrid(proto, Tiling(here, block), source=source_ref),
            writes=tuple(own[: 1 + fused]),
            task_memory=_held(block, here, voxel_bytes, 3),
        ))

    # (b) pyramid below the last input level: groups of mips, each task reading one block of
    # the group's first scale.
    computed = scales[base:]
    i = fused
    while i < len(steps):
        k_best = 1
        for k in range(1, len(steps) - i + 1):
            blk = _unit(computed, steps, i, k, itself=False)
            held = _held(blk, computed[i].size, voxel_bytes, 2)
            if held > memory_budget or (k > 1 and _count(computed[i].size, blk) < min_tasks // 2):
                break
            k_best = k
        blk = _unit(computed, steps, i, k_best, itself=False)
        targets = tuple(computed[i + 1 : i + 1 + k_best])
        group = tuple(steps[i : i + k_best])
        proto_ds = Downsample(layout, computed[i], targets, group, (0, 0, 0), blk)
        names = ", ".join(t.key for t in targets)
        stages.append(Stage(
            f"downsample {names}", TaskGrid(proto_ds, Tiling(computed[i].size, blk)),
            writes=targets, task_memory=_held(blk, computed[i].size, voxel_bytes, 2),
        ))
        i += k_best

    mesh_name: str | None = None
    mesh_doc: dict[str, Any] | None = None
    if mesh:
        from ..mesh import DEFAULT_SMOOTHING

        mesh_name = MESH_DIR
        mip = _mesh_mip(scales, mesh_mip)
        ms = scales[mip]
        smooth = DEFAULT_SMOOTHING if mesh_smoothing is None else int(mesh_smoothing)
        margin = smooth + 2 if smooth > 0 else 0
        # The mesher holds labels, a padded copy and the meshes: budget ~16 bytes per voxel.
        per_voxel = max(16, 2 * voxel_bytes)
        mblock = _grow_block(chunk, ms.size, per_voxel, memory_budget, min_tasks)
        tiling = Tiling(ms.size, mblock)
        multires = mesh_format != "legacy"
        mesh_sharding = None
        if not multires:
            parts = max(1, min(len(tiling), 64))
        elif scales[0].sharding is not None:
            mesh_sharding = ShardingSpec(
                preshift_bits=0, hash="murmurhash3_x86_128", minishard_bits=MESH_MINISHARD_BITS,
                shard_bits=(max(min_tasks, len(tiling) // MESH_BLOCKS_PER_SHARD) - 1).bit_length(),
                minishard_index_encoding="gzip", data_encoding="gzip",
            )
            parts = mesh_sharding.num_shards
        else:
            parts = max(1, min(max(len(tiling), min_tasks), 64))
        forge = TaskGrid(
            MeshForge(layout, ms, (0, 0, 0), mblock, MESH_DIR, margin, smooth, multires, parts, mesh_sharding),
            tiling,
        )
        stages.append(Stage(
            f"mesh forge {ms.key}", forge,
            task_memory=math.prod(min(b + 2 * margin + 1, n) for b, n in zip(mblock, ms.size)) * per_voxel,
        ))
        merge: TaskGrid
        if not multires:
            merge = TaskGrid(MeshMerge(layout, MESH_DIR, 0, parts), parts=parts)
        else:
            mesh_doc = mesh_info(
                vertex_quantization_bits=mesh_quantization_bits,
                sharding=None if mesh_sharding is None else mesh_sharding.to_json(),
            )
            res = ms.resolution
            origin = tuple(float(o * r) for o, r in zip(ms.voxel_offset, res))
            vbox = (*origin, *(float((o + n) * r) for o, n, r in zip(ms.voxel_offset, ms.size, res)))
            cell = tuple(float(c * r) for c, r in zip(ms.chunk_size, res))
            merge = TaskGrid(
                MultiresMerge(
                    layout, MESH_DIR, 0, parts, res, origin, cell,  # type: ignore[arg-type]
                    mesh_quantization_bits, vbox, mesh_sharding,
                ),
                parts=parts,
            )
        stages.append(Stage("mesh merge", merge, mesh_shards=parts if mesh_doc and "sharding" in mesh_doc else 0))

    info = volume_info(
        kind=kind, data_type=dtype.name, num_channels=channels, scales=scales, mesh=mesh_name,
        segment_properties=None if properties_json is None else SEGMENT_PROPERTIES_DIR,
    )
    from .. import __version__

    provenance = {
        "description": "",
        "owners": [],
        "sources": [],
        "processing": [
            {
                "method": {
                    "task": "ngshow convert",
                    "kind": kind,
                    "encoding": encoding,
                    "chunk_size": list(chunk),
                    "mip_levels": len(scales) - 1,
                    "input_levels": len(factors),
                    "mesh": bool(mesh),
                    "mesh_format": mesh_format if mesh else None,
                    "sharding": [s.sharding is not None for s in scales],
                    "source_shape": [int(n) for n in data.shape],
                    "source_dtype": str(np.dtype(data.dtype)),
                },
                "by": f"ngshow {__version__}",
            }
        ],
    }
    return Plan(
        dest=dest_url,
        info_json=json.dumps(info, indent=2, sort_keys=True),
        provenance_json=json.dumps(provenance, indent=2, sort_keys=True),
        stages=tuple(stages),
        mesh_dir=mesh_name,
        mesh_info_json=None if mesh_doc is None else json.dumps(mesh_doc, sort_keys=True),
        segment_properties_json=properties_json,
    )

