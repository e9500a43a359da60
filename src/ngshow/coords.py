"""Coordinate spaces: named axes in an array's own order, each with a scale, a unit and a kind.

Every layer, mesh and CLI input carries a :class:`CoordinateSpace`.  Axes are listed in the array's
(NumPy) order; each is ``space``, ``time`` or ``channel``.  A physical coordinate is
``index * scale + translate`` per axis, optionally followed by an affine ``transform`` over the
non-channel axes (napari's convention).  Only spatial axes are ever downsampled; time and other
non-spatial axes show as sliders in the browser.

>>> space = CoordinateSpace.make((10, 2, 64, 256, 256), axes="tczyx", scale=(1, 1, 0.5, 0.1, 0.1),
...                              units=("s", "", "um", "um", "um"))
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from .errors import AxesGuessWarning, InvalidArray, warn_user

__all__ = ["Axis", "AxisKind", "CoordinateSpace", "parse_unit", "default_axes", "kind_of", "to_base", "xyz", "MAX_RANK"]

AxisKind = Literal["space", "time", "channel"]

MAX_RANK = 32

_PREFIXES = {
    "Y": 1e24, "Z": 1e21, "E": 1e18, "P": 1e15, "T": 1e12, "G": 1e9, "M": 1e6, "k": 1e3, "h": 1e2,
    "da": 1e1, "": 1.0, "d": 1e-1, "c": 1e-2, "m": 1e-3, "u": 1e-6, "µ": 1e-6, "μ": 1e-6, "n": 1e-9,
    "p": 1e-12, "f": 1e-15, "a": 1e-18, "z": 1e-21, "y": 1e-24,
}
_BASE_UNITS = ("rad/s", "Hz", "m", "s")
# Spelled-out names (OME-Zarr, NIfTI, ImageJ) for the units above.
_NAMED_UNITS = {
    "angstrom": (1e-10, "m"), "nanometer": (1e-9, "m"), "micrometer": (1e-6, "m"), "micron": (1e-6, "m"),
    "microns": (1e-6, "m"), "millimeter": (1e-3, "m"), "centimeter": (1e-2, "m"), "meter": (1.0, "m"),
    "kilometer": (1e3, "m"), "picometer": (1e-12, "m"), "nanosecond": (1e-9, "s"),
    "microsecond": (1e-6, "s"), "millisecond": (1e-3, "s"), "second": (1.0, "s"), "sec": (1.0, "s"),
    "minute": (60.0, "s"), "min": (60.0, "s"), "hour": (3600.0, "s"), "h": (3600.0, "s"),
    "day": (86400.0, "s"), "hertz": (1.0, "Hz"), "kilohertz": (1e3, "Hz"), "megahertz": (1e6, "Hz"),
}
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_TIME_NAMES = {"t", "time"}
_CHANNEL_NAMES = {"c", "ch", "channel", "channels"}
# Spatial axes shown first, in this order, so x runs to the right whatever the array's order.
_CANONICAL = ("x", "y", "z")


def parse_unit(unit: str) -> tuple[float, str]:
    """``(factor, base)`` with ``value * factor`` in the SI base unit ``base`` (``""``: no unit).

    Accepts SI symbols with prefixes (``nm``, ``um``, ``µm``, ``ms``, ``kHz``) and spelled-out names
    (``micrometer``, ``second``).  Raises :class:`InvalidArray` for anything else.
    """
    text = str(unit).strip()
    if text == "":
        return 1.0, ""
    named = _NAMED_UNITS.get(text.lower())
    if named is not None:
        return named
    for base in _BASE_UNITS:
        if text.endswith(base):
            prefix = text[: -len(base)]
            if prefix in _PREFIXES:
                return _PREFIXES[prefix], base
    raise InvalidArray(
        f"unknown unit {unit!r}: use an SI unit with an optional prefix (m, nm, um, s, ms, Hz, ...), "
        "a name such as 'micrometer', or '' for none"
    )


def to_base(value: float, factor: float) -> float:
    """``value * factor``, divided by the inverse for small factors so 6 nm is exactly 6e-09 m."""
    if 0 < factor < 1:
        inverse = round(1 / factor)
        if abs(inverse * factor - 1) < 1e-12:
            return value / inverse
    return value * factor


def kind_of(name: str) -> AxisKind:
    """The kind an axis name implies: ``t``/``time`` → time, ``c``/``channel`` → channel, else space."""
    lower = name.lower()
    if lower in _TIME_NAMES:
        return "time"
    if lower in _CHANNEL_NAMES:
        return "channel"
    return "space"


@dataclass(frozen=True)
class Axis:
    """One axis: name, kind, and the physical size and position of its voxels.

    ``scale`` and ``translate`` are in ``unit``; ``labels`` names the entries of a channel axis.
    """

    name: str
    kind: AxisKind = "space"
    scale: float = 1.0
    unit: str = ""
    translate: float = 0.0
    labels: tuple[str, ...] | None = None

    @property
    def base_scale(self) -> float:
        """``scale`` in the SI base unit (metres, seconds, hertz)."""
        return to_base(self.scale, parse_unit(self.unit)[0])

    @property
    def base_unit(self) -> str:
        return parse_unit(self.unit)[1]

    @property
    def voxel_offset(self) -> float:
        """Position of index 0, in voxels of this axis."""
        return self.translate / self.scale


def default_axes(shape: Sequence[int]) -> tuple[str, ...]:
    """Axis names for an array that names none: ``yx``, ``zyx``, ``czyx``, ``tczyx``.

    A 4-D array whose first axis has more than 4 entries is taken as ``tzyx`` (a time-lapse, not
    channels), with a warning naming the ``axes=`` keyword.
    """
    rank = len(shape)
    if rank == 2:
        return ("y", "x")
    if rank == 3:
        return ("z", "y", "x")
    if rank == 4:
        if shape[0] <= 4:
            return ("c", "z", "y", "x")
        warn_user(
            f"a 4-D array of shape {tuple(shape)}: its first axis has {shape[0]} entries, too many for "
            "channels, so ngshow shows it as time (axes='tzyx'); pass axes= to say what the axes are",
            AxesGuessWarning,
        )
        return ("t", "z", "y", "x")
    if rank == 5:
        return ("t", "c", "z", "y", "x")
    raise InvalidArray(
        f"a {rank}-D array needs its axes named: pass axes= (e.g. axes='tczyx' or a list of names)"
    )


def _per_axis(values: Any, rank: int, what: str, names: Sequence[str]) -> list[Any] | None:
    if values is None:
        return None
    if isinstance(values, str) or not isinstance(values, Sequence) and not hasattr(values, "__len__"):
        return [values] * rank
    items = list(values)
    if len(items) != rank:
        raise InvalidArray(
            f"{what} has {len(items)} values, but the array has {rank} axes ({', '.join(names)}): "
            f"give one per axis, in the array's order"
        )
    return items


def _finite(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidArray(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise InvalidArray(f"{what} must be finite, got {value!r}")
    return number


@dataclass(frozen=True)
class CoordinateSpace:
    """Named axes in an array's order, and an optional affine transform of its physical coordinates.

    Build one with :meth:`make`.  ``transform`` is ``(n+1)×(n+1)`` over the non-channel axes (in array
    order), in each axis's unit; ``assumed`` is True when no physical size was given.
    """

    axes: tuple[Axis, ...]
    transform: tuple[tuple[float, ...], ...] | None = None
    assumed: bool = field(default=False, compare=False)

    # -- construction ------------------------------------------------------------------------------

    @classmethod
    def make(
        cls,
        shape: Sequence[int],
        *,
        axes: str | Sequence[str] | None = None,
        kinds: Sequence[AxisKind] | None = None,
        scale: Sequence[float] | None = None,
        translate: Sequence[float] | None = None,
        units: str | Sequence[str] | None = None,
        transform: Any = None,
        voxel_size: Sequence[float] | None = None,
        offset: Sequence[float] | None = None,
        channel_labels: Sequence[str] | None = None,
    ) -> CoordinateSpace:
        """A validated space for an array of ``shape``.

        Parameters
        ----------
        axes
            Names in the array's order: a string of one-letter names (``"tczyx"``) or a list.
            Default by rank (:func:`default_axes`).
        kinds
            ``"space"``, ``"time"`` or ``"channel"`` per axis; default from the names.
        scale, translate
            Size of one voxel and position of index 0 per axis, in its unit (napari's meaning).
        units
            One unit for every spatial axis (``"um"``), or one per axis.  Default: ``nm`` for space,
            ``s`` for time, none for channels.
        transform
            Affine matrix over the non-channel axes, ``(n+1)×(n+1)`` or ``n×(n+1)``.
        voxel_size, offset
            The older spellings: ``(x, y, z)`` voxel size in nm and offset in voxels.
        channel_labels
            Names of the entries of the channel axis.

        Raises
        ------
        InvalidArray
            Naming the argument and value, for mismatched lengths, repeated or malformed names,
            non-positive or non-finite scales, unknown units and singular transforms.
        """
        shape = tuple(int(n) for n in shape)
        rank = len(shape)
        if not 2 <= rank <= MAX_RANK:
            raise InvalidArray(f"ngshow shows arrays of 2 to {MAX_RANK} dimensions, got shape {shape}")
        names = default_axes(shape) if axes is None else (tuple(axes) if isinstance(axes, str) else tuple(axes))
        names = tuple(str(n) for n in names)
        if len(names) != rank:
            raise InvalidArray(
                f"axes={''.join(names) if all(len(n) == 1 for n in names) else list(names)!r} names "
                f"{len(names)} axes, but the array has {rank} (shape {shape})"
            )
        for name in names:
            if not _NAME.match(name):
                raise InvalidArray(f"axis name {name!r} must be a letter followed by letters, digits or _")
        lowered = [n.lower() for n in names]
        repeated = sorted({n for n in names if lowered.count(n.lower()) > 1})
        if repeated:
            raise InvalidArray(f"axes has repeated names: {', '.join(repeated)}")
        axis_kinds = [kind_of(n) for n in names] if kinds is None else list(kinds)
        if len(axis_kinds) != rank or any(k not in ("space", "time", "channel") for k in axis_kinds):
            raise InvalidArray(f"kinds must give 'space', 'time' or 'channel' for each of {rank} axes, got {kinds!r}")
        if voxel_size is not None and scale is not None:
            raise InvalidArray("give scale= (array order) or voxel_size= (x, y, z in nm), not both")
        if offset is not None and translate is not None:
            raise InvalidArray("give translate= (array order) or offset= (x, y, z in voxels), not both")

        unit_list = _per_axis(units, rank, "units", names)
        scale_list = _per_axis(scale, rank, "scale", names)
        translate_list = _per_axis(translate, rank, "translate", names)
        if isinstance(units, str) and unit_list is not None:  # one unit: for the spatial axes only
            unit_list = [units if k == "space" else None for k in axis_kinds]
        assumed = scale is None and voxel_size is None
        legacy_scale: dict[str, float] = {}
        legacy_offset: dict[str, float] = {}
        if voxel_size is not None:
            legacy_scale = dict(zip("xyz", xyz(voxel_size, "voxel_size")))
            if min(legacy_scale.values()) <= 0:
                raise InvalidArray(f"voxel_size must be > 0, got {tuple(voxel_size)}")
        if offset is not None:
            legacy_offset = dict(zip("xyz", xyz(offset, "offset")))
        if voxel_size is not None and unit_list is None:
            unit_list = ["nm" if k == "space" else None for k in axis_kinds]

        built = []
        for i, (name, kind) in enumerate(zip(names, axis_kinds)):
            default_unit = {"space": "nm", "time": "s", "channel": ""}[kind]
            unit = unit_list[i] if unit_list is not None and unit_list[i] is not None else default_unit
            parse_unit(unit)
            if kind == "channel" and unit != "":
                raise InvalidArray(f"channel axis {name!r} cannot have a unit, got {unit!r}")
            value = 1.0 if scale_list is None else _finite(scale_list[i], f"scale of axis {name!r}")
            if name.lower() in legacy_scale:
                value = legacy_scale[name.lower()]
            if not value > 0:
                raise InvalidArray(f"scale of axis {name!r} must be > 0, got {value!r}")
            if kind == "channel" and value != 1.0:
                raise InvalidArray(f"channel axis {name!r} has no physical size; its scale must be 1, got {value}")
            shift = 0.0 if translate_list is None else _finite(translate_list[i], f"translate of axis {name!r}")
            if name.lower() in legacy_offset:
                shift = legacy_offset[name.lower()] * value
            if kind == "channel" and shift != 0.0:
                raise InvalidArray(f"channel axis {name!r} cannot be translated, got {shift}")
            built.append(Axis(name, kind, value, unit, shift))

        channel_axes = [i for i, k in enumerate(axis_kinds) if k == "channel"]
        if channel_labels is not None:
            if len(channel_axes) != 1:
                raise InvalidArray("channel_labels needs exactly one channel axis")
            i = channel_axes[0]
            labels = tuple(str(v) for v in channel_labels)
            if len(labels) != shape[i]:
                raise InvalidArray(f"channel_labels has {len(labels)} names for {shape[i]} channels")
            built[i] = replace(built[i], labels=labels)
        space = cls(tuple(built), None, assumed)
        if transform is not None:
            space = replace(space, transform=space._check_transform(transform))
        return space

    def _check_transform(self, transform: Any) -> tuple[tuple[float, ...], ...]:
        n = len(self.physical_indices)
        try:
            matrix = np.array(transform, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidArray(f"transform must be a matrix of numbers, got {transform!r}") from None
        if matrix.shape == (n, n + 1):
            matrix = np.vstack([matrix, np.eye(1, n + 1, n)])
        if matrix.shape != (n + 1, n + 1):
            names = ", ".join(self.axes[i].name for i in self.physical_indices)
            raise InvalidArray(
                f"transform must be {n + 1}x{n + 1} or {n}x{n + 1} over the non-channel axes ({names}), "
                f"got shape {matrix.shape}"
            )
        if not np.isfinite(matrix).all():
            raise InvalidArray("transform must be finite")
        if not np.allclose(matrix[n], np.eye(1, n + 1, n)[0]):
            raise InvalidArray(f"the last row of a {n + 1}x{n + 1} transform must be [0, ..., 0, 1]")
        if abs(np.linalg.det(matrix[:n, :n])) < 1e-12 * max(1.0, float(np.abs(matrix[:n, :n]).max()) ** n):
            raise InvalidArray("transform is singular: its linear part must be invertible")
        return tuple(tuple(float(v) for v in row) for row in matrix)

    # -- views -------------------------------------------------------------------------------------

    @property
    def rank(self) -> int:
        return len(self.axes)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.axes)

    @property
    def kinds(self) -> tuple[AxisKind, ...]:
        return tuple(a.kind for a in self.axes)

    @property
    def spatial_indices(self) -> tuple[int, ...]:
        """Indices (array order) of the spatial axes, the only ones ever downsampled."""
        return tuple(i for i, a in enumerate(self.axes) if a.kind == "space")

    @property
    def channel_indices(self) -> tuple[int, ...]:
        return tuple(i for i, a in enumerate(self.axes) if a.kind == "channel")

    @property
    def physical_indices(self) -> tuple[int, ...]:
        """Indices of the non-channel axes: those a ``transform`` acts on."""
        return tuple(i for i, a in enumerate(self.axes) if a.kind != "channel")

    def axis(self, name: str) -> Axis:
        for a in self.axes:
            if a.name == name:
                return a
        raise KeyError(f"no axis named {name!r}; axes: {', '.join(self.names)}")

    def with_axis_inserted(self, index: int, axis: Axis) -> CoordinateSpace:
        """The same space with one more axis (of length 1 in the array) at ``index``."""
        if self.transform is not None and axis.kind != "channel":
            raise InvalidArray("cannot add an axis to a transformed space")
        return replace(self, axes=self.axes[:index] + (axis,) + self.axes[index:])

    def neuroglancer_name(self, i: int) -> str:
        """The client's name for axis ``i``: channel axes are layer-local (``c^``)."""
        a = self.axes[i]
        return a.name + "^" if a.kind == "channel" else a.name

    # -- what the client reads ---------------------------------------------------------------------

    def info_coordinate_space(self) -> dict[str, Any]:
        """The ``coordinateSpace`` of a volume info: dimensions in reverse array order (x fastest)."""
        space: dict[str, Any] = {}
        for i in reversed(range(self.rank)):
            a = self.axes[i]
            if a.kind == "channel" and a.labels is not None:
                space[self.neuroglancer_name(i)] = {"coordinates": list(range(len(a.labels))), "labels": list(a.labels)}
            else:
                space[self.neuroglancer_name(i)] = [a.base_scale, a.base_unit]
        return space

    def info_voxel_offset(self) -> list[float]:
        """``voxelOffset`` of a volume info (reverse array order)."""
        return [self.axes[i].voxel_offset for i in reversed(range(self.rank))]

    def output_order(self) -> list[int]:
        """Array indices in the order the client's dimensions should take: x, y, z first (whatever
        the array's order), then the other axes in reverse array order.  Channel axes keep their
        place (the client maps layer-local dimensions only to themselves)."""
        reverse = list(reversed(range(self.rank)))
        global_axes = [i for i in reverse if self.axes[i].kind != "channel"]
        first = [i for name in _CANONICAL for i in global_axes if self.axes[i].name.lower() == name and self.axes[i].kind == "space"]
        ordered = iter(first + [i for i in global_axes if i not in first])
        return [i if self.axes[i].kind == "channel" else next(ordered) for i in reverse]

    def source_transform(self, *, with_offset: bool = False) -> dict[str, Any] | None:
        """The layer source's ``transform`` JSON, or None when the identity does.

        Input dimensions are the info's (reverse array order), in their voxels; the linear part maps
        physical to physical coordinates and the translation is in output voxels, as the client reads it.
        ``with_offset`` puts the voxel offset (``translate``) in the matrix too, for sources whose own
        offset must stay 0 (live precomputed volumes).
        """
        inputs = list(reversed(range(self.rank)))
        outputs = self.output_order()
        offsets = [self.axes[i].voxel_offset for i in inputs]
        if outputs == inputs and self.transform is None and not (with_offset and any(offsets)):
            return None
        rank = self.rank
        matrix = np.zeros((rank, rank + 1))
        for row, i in enumerate(outputs):
            matrix[row, inputs.index(i)] = 1.0
        if self.transform is not None:
            affine = np.array(self.transform)
            physical = self.physical_indices
            factors = [parse_unit(self.axes[i].unit)[0] for i in physical]
            for r, i in enumerate(physical):
                row = outputs.index(i)
                matrix[row, :rank] = 0.0
                for c, j in enumerate(physical):
                    # physical-to-physical in base units: scale by the two axes' unit factors
                    matrix[row, inputs.index(j)] = affine[r, c] * factors[r] / factors[c]
                matrix[row, rank] = affine[r, -1] * factors[r] / self.axes[i].base_scale
        if with_offset:
            scales = [self.axes[i].base_scale for i in inputs]
            for row, i in enumerate(outputs):
                out_scale = self.axes[i].base_scale
                matrix[row, rank] += sum(
                    matrix[row, col] * offsets[col] * scales[col] / out_scale for col in range(rank)
                )
        output_dims = {}
        for i in outputs:
            a = self.axes[i]
            output_dims[self.neuroglancer_name(i)] = [a.base_scale, a.base_unit]
        return {
            "outputDimensions": output_dims,
            "matrix": [[float(_clean(float(v))) for v in row] for row in matrix],
        }

    # -- coordinates -------------------------------------------------------------------------------

    def physical(self, index: Sequence[float]) -> np.ndarray[Any, Any]:
        """Physical coordinates (each axis in its own unit, array order) of an array index."""
        values = np.array([float(v) for v in index], dtype=np.float64)
        if values.shape != (self.rank,):
            raise InvalidArray(f"expected {self.rank} coordinates (one per axis: {', '.join(self.names)})")
        out = values * [a.scale for a in self.axes] + [a.translate for a in self.axes]
        if self.transform is not None:
            physical = list(self.physical_indices)
            affine = np.array(self.transform)
            out[physical] = affine[:-1, :-1] @ out[physical] + affine[:-1, -1]
        return np.asarray(out)

    def index(self, physical: Sequence[float]) -> np.ndarray[Any, Any]:
        """The array index (float, array order) at physical coordinates; the inverse of :meth:`physical`."""
        values = np.array([float(v) for v in physical], dtype=np.float64)
        if values.shape != (self.rank,):
            raise InvalidArray(f"expected {self.rank} coordinates (one per axis: {', '.join(self.names)})")
        if self.transform is not None:
            physical_axes = list(self.physical_indices)
            affine = np.array(self.transform)
            values[physical_axes] = np.linalg.solve(affine[:-1, :-1], values[physical_axes] - affine[:-1, -1])
        return np.asarray((values - [a.translate for a in self.axes]) / [a.scale for a in self.axes])

    def describe(self) -> str:
        """One line such as ``t 1 s, c (2), z 0.5 um, y 0.1 um, x 0.1 um``."""
        parts = []
        for a in self.axes:
            parts.append(f"{a.name} (channel)" if a.kind == "channel" else f"{a.name} {a.scale:g} {a.unit}".rstrip())
        return ", ".join(parts) + (", transformed" if self.transform is not None else "")


def _clean(value: float) -> float:
    """Round off float noise (1e-17 instead of 0) so states read well; exact values pass through."""
    rounded = round(value, 12)
    return rounded if abs(rounded - value) < 1e-12 * max(1.0, abs(value)) else value


def xyz(values: Sequence[float], what: str) -> tuple[float, float, float]:
    """Three finite numbers ``(x, y, z)``; :class:`InvalidArray` naming ``what`` otherwise."""
    try:
        x, y, z = (float(v) for v in values)
    except (TypeError, ValueError):
        raise InvalidArray(f"{what} must be three numbers (x, y, z), got {values!r}") from None
    if not all(math.isfinite(v) for v in (x, y, z)):
        raise InvalidArray(f"{what} must be finite, got {tuple(values)}")
    return (x, y, z)
