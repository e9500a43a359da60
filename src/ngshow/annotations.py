"""Annotations as columns: points, lines, boxes, ellipsoids and polylines, with typed properties and
relationships to segment ids.

:func:`annotation_table` turns NumPy arrays or a pandas DataFrame into an :class:`AnnotationTable`;
:func:`local_layer_json` makes a viewer-state layer of it (a ``local://annotations`` source, for up to
tens of thousands of annotations); :mod:`ngshow.convert.annotations` writes large tables as precomputed
annotation datasets; :func:`annotations_frame` reads a layer (as the browser left it) back into columns.

Positions are in the layer's coordinates: voxels of ``voxel_size`` nm in ``(x, y, z)`` order, or of the
named ``dimensions``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .errors import InvalidArray

__all__ = [
    "AnnotationKind",
    "AnnotationTable",
    "PropertySpec",
    "annotation_table",
    "annotation_layer",
    "annotations_frame",
    "coordinate_dimensions",
    "local_layer_json",
]

AnnotationKind = Literal["point", "line", "box", "ellipsoid", "polyline"]

#: Neuroglancer's type name of each kind (lower case in the state, upper case in precomputed ``info``).
TYPE_NAMES: dict[str, str] = {
    "point": "point",
    "line": "line",
    "box": "axis_aligned_bounding_box",
    "ellipsoid": "ellipsoid",
    "polyline": "polyline",
}
#: The state's field name(s) for the geometry of each kind, and the matching argument names.
GEOMETRY_FIELDS: dict[str, tuple[str, ...]] = {
    "point": ("point",),
    "line": ("pointA", "pointB"),
    "box": ("pointA", "pointB"),
    "ellipsoid": ("center", "radii"),
    "polyline": ("points",),
}
GEOMETRY_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "point": ("position",),
    "line": ("point_a", "point_b"),
    "box": ("point_a", "point_b"),
    "ellipsoid": ("center", "radii"),
    "polyline": ("points",),
}
_KIND_OF_TYPE = {v: k for k, v in TYPE_NAMES.items()}

#: Property types the client reads, with their NumPy dtype and size in bytes.
PROPERTY_DTYPES: dict[str, tuple[str, int]] = {
    "float32": ("<f4", 4),
    "uint32": ("<u4", 4),
    "int32": ("<i4", 4),
    "uint16": ("<u2", 2),
    "int16": ("<i2", 2),
    "uint8": ("u1", 1),
    "int8": ("i1", 1),
    "rgb": ("u1", 3),
    "rgba": ("u1", 4),
}
_ID = re.compile(r"^[a-z][a-zA-Z0-9_]*$")


@dataclass(frozen=True)
class PropertySpec:
    """One annotation property: ``type`` is a numeric type, ``"rgb"`` or ``"rgba"``; numeric
    properties may name their values (``enum_values`` with ``enum_labels``)."""

    id: str
    type: str
    description: str | None = None
    enum_values: tuple[float, ...] | None = None
    enum_labels: tuple[str, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.description is not None:
            out["description"] = self.description
        if self.enum_values is not None and self.enum_labels is not None:
            cast = float if self.type == "float32" else int
            out["enum_values"] = [cast(v) for v in self.enum_values]
            out["enum_labels"] = list(self.enum_labels)
        return out

    @property
    def size(self) -> int:
        return PROPERTY_DTYPES[self.type][1]

    @property
    def components(self) -> int:
        return {"rgb": 3, "rgba": 4}.get(self.type, 1)


@dataclass
class AnnotationTable:
    """Annotations as columns.

    Attributes
    ----------
    geometry
        ``(N, k * rank)`` float64: the position; both ends / corners; centre then radii.  Empty
        ``(N, 0)`` for polylines, whose vertices are ``polylines`` (one ``(n_i, rank)`` array each).
    properties
        Property id -> ``(N,)`` values of its type (``(N, 3)``/``(N, 4)`` uint8 for rgb/rgba).
    relationships
        Relationship name -> ``(offsets, ids)``: annotation i is related to
        ``ids[offsets[i]:offsets[i + 1]]`` (uint64).
    """

    kind: str
    rank: int
    ids: np.ndarray[Any, Any]
    geometry: np.ndarray[Any, Any]
    polylines: list[np.ndarray[Any, Any]] | None = None
    descriptions: list[str] | None = None
    property_specs: list[PropertySpec] = field(default_factory=list)
    properties: dict[str, np.ndarray[Any, Any]] = field(default_factory=dict)
    relationships: dict[str, tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def related(self, name: str, i: int) -> np.ndarray[Any, Any]:
        """The segment ids annotation ``i`` is related to through relationship ``name``."""
        offsets, values = self.relationships[name]
        return values[offsets[i] : offsets[i + 1]]

    def bounds(self) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """Lower and upper corner of every annotation's bounding box: two ``(N, rank)`` arrays."""
        r = self.rank
        g = self.geometry
        if self.kind == "point":
            return g, g
        if self.kind in ("line", "box"):
            return np.minimum(g[:, :r], g[:, r:]), np.maximum(g[:, :r], g[:, r:])
        if self.kind == "ellipsoid":
            radii = np.abs(g[:, r:])
            return g[:, :r] - radii, g[:, :r] + radii
        assert self.polylines is not None
        lo = np.array([p.min(axis=0) for p in self.polylines]).reshape(-1, r)
        hi = np.array([p.max(axis=0) for p in self.polylines]).reshape(-1, r)
        return lo, hi


def _is_frame(data: Any) -> bool:
    return hasattr(data, "columns") and hasattr(data, "__getitem__") and hasattr(data, "iloc")


def _column(data: Any, spec: Any, what: str) -> Any:
    """``spec`` as values: a column name (or list of names, stacked) of ``data``, or the values."""
    if data is not None and isinstance(spec, str):
        if spec not in data.columns:
            raise InvalidArray(f"{what}: no column {spec!r} in the table; columns: {list(data.columns)}")
        return data[spec]
    if (
        data is not None
        and isinstance(spec, (list, tuple))
        and spec
        and all(isinstance(s, str) for s in spec)
    ):
        missing = [s for s in spec if s not in data.columns]
        if missing:
            raise InvalidArray(f"{what}: no column(s) {missing} in the table; columns: {list(data.columns)}")
        return np.stack([np.asarray(data[s], dtype=np.float64) for s in spec], axis=1)
    if isinstance(spec, str):
        raise InvalidArray(f"{what}: a column name ({spec!r}) needs a table (DataFrame) as data")
    return spec


def _coordinates(values: Any, what: str, rank: int | None, n: int | None) -> np.ndarray[Any, Any]:
    if hasattr(values, "to_numpy"):
        values = values.to_numpy()
    array = np.asarray(values)
    if array.dtype == object and array.ndim == 1:  # a column holding one vector per row
        array = np.stack([np.asarray(v, dtype=np.float64) for v in array]) if len(array) else array
    try:
        array = np.asarray(array, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidArray(f"{what} must be numbers, got dtype {np.asarray(values).dtype}") from None
    expected = rank if rank is not None else 3
    if array.ndim == 1 and array.shape[0] == expected:
        array = array[np.newaxis]
    if array.ndim != 2 or (rank is not None and array.shape[1] != rank) or array.shape[1] < 1:
        names = "x, y, z voxel coordinates" if expected == 3 else f"{expected} coordinates"
        raise InvalidArray(f"{what} must be an (N, {expected}) array of {names}, got shape {array.shape}")
    if n is not None and array.shape[0] != n:
        raise InvalidArray(f"{what} must have one row per annotation ({n}), got {array.shape[0]}")
    if not np.isfinite(array).all():
        raise InvalidArray(f"{what} must be finite")
    return array


def _colour_strings(values: np.ndarray[Any, Any], what: str) -> tuple[str, np.ndarray[Any, Any]]:
    texts = [str(v) for v in values]
    lengths = {len(t) for t in texts}
    if not texts or lengths - {7, 9} or len(lengths) != 1 or not all(t.startswith("#") for t in texts):
        raise InvalidArray(f"property {what!r}: colours must all be '#rrggbb' or all '#rrggbbaa'")
    width = (lengths.pop() - 1) // 2
    try:
        out = np.array([[int(t[1 + 2 * k : 3 + 2 * k], 16) for k in range(width)] for t in texts], np.uint8)
    except ValueError:
        raise InvalidArray(f"property {what!r}: colours must be hexadecimal '#rrggbb'") from None
    return ("rgb" if width == 3 else "rgba"), out


_INTEGER_TYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32")


def _property(
    name: str, values: Any, declared: str | None, enum: Any, n: int
) -> tuple[PropertySpec, np.ndarray[Any, Any]]:
    if not _ID.match(name):
        raise InvalidArray(f"property name {name!r} must match [a-z][a-zA-Z0-9_]* (Neuroglancer's rule)")
    labels: tuple[str, ...] | None = None
    enum_values: tuple[float, ...] | None = None
    if getattr(values, "dtype", None) is not None and str(values.dtype) == "category":
        # A pandas categorical: its codes are the values, its categories the labels.
        categories = [str(c) for c in values.cat.categories]
        codes = np.asarray(values.cat.codes)
        if (codes < 0).any():
            raise InvalidArray(f"property {name!r}: categorical column has missing values")
        values = codes
        labels, enum_values = tuple(categories), tuple(float(i) for i in range(len(categories)))
        declared = declared or ("uint8" if len(categories) <= 256 else "uint16")
    if hasattr(values, "to_numpy"):
        values = values.to_numpy()
    array = np.asarray(values)
    if array.dtype == object and array.ndim == 1 and len(array) and isinstance(array[0], (list, tuple, np.ndarray)):
        array = np.stack([np.asarray(v) for v in array])
    if array.dtype.kind in "USO" and array.ndim == 1:
        kind, array = _colour_strings(array, name)
        if declared not in (None, kind):
            raise InvalidArray(f"property {name!r}: colours {kind} given for a {declared} property")
        declared = kind
    if array.shape[:1] != (n,):
        raise InvalidArray(f"property {name!r} must have one value per annotation ({n}), got shape {array.shape}")
    if declared is None:
        if array.ndim == 2 and array.shape[1] in (3, 4):
            declared = "rgb" if array.shape[1] == 3 else "rgba"
        elif array.dtype == np.bool_:
            declared = "uint8"
        elif array.dtype.name in PROPERTY_DTYPES:
            declared = array.dtype.name
        elif array.dtype.kind == "f":
            declared = "float32"
        elif array.dtype.kind in "iu":
            lo, hi = (int(array.min()), int(array.max())) if n else (0, 0)
            declared = "int32" if lo < 0 else "uint32"
            info = np.iinfo(declared)
            if lo < info.min or hi > info.max:
                raise InvalidArray(f"property {name!r}: values {lo}..{hi} do not fit {declared}")
        else:
            raise InvalidArray(f"property {name!r}: cannot store dtype {array.dtype} (numbers or colours)")
    if declared not in PROPERTY_DTYPES:
        raise InvalidArray(f"property {name!r}: type must be one of {sorted(PROPERTY_DTYPES)}, got {declared!r}")
    components = {"rgb": 3, "rgba": 4}.get(declared, 1)
    if (components == 1) != (array.ndim == 1) or (components > 1 and array.shape[1:] != (components,)):
        raise InvalidArray(f"property {name!r}: a {declared} property needs shape (N,{'' if components == 1 else f' {components}'}), got {array.shape}")
    dtype = np.dtype(PROPERTY_DTYPES[declared][0])
    if declared in _INTEGER_TYPES or components > 1:
        if array.dtype.kind == "f" and n and not np.array_equal(array, np.round(array)):
            raise InvalidArray(f"property {name!r}: {declared} values must be whole numbers")
        info = np.iinfo(dtype)
        if n and (array.min() < info.min or array.max() > info.max):
            raise InvalidArray(f"property {name!r}: values {array.min()}..{array.max()} do not fit {declared}")
    converted = array.astype(dtype)
    if enum is not None:
        if declared in ("rgb", "rgba"):
            raise InvalidArray(f"property {name!r}: enum labels need a numeric property, not {declared}")
        items = dict(enumerate(enum)) if isinstance(enum, (list, tuple)) else dict(enum)
        enum_values = tuple(float(v) for v in items)
        labels = tuple(str(v) for v in items.values())
    return PropertySpec(name, declared, None, enum_values, labels), converted


def _relationship(name: str, values: Any, n: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    if hasattr(values, "to_numpy"):
        values = values.to_numpy()
    if isinstance(values, list) and any(isinstance(v, (list, tuple, np.ndarray)) for v in values):
        array = np.empty(len(values), dtype=object)
        array[:] = values
    else:
        array = np.asarray(values)
    if array.dtype != object and array.ndim == 1:
        if array.shape[0] != n:
            raise InvalidArray(f"relationship {name!r} must have one entry per annotation ({n})")
        if array.dtype.kind not in "iu" or (n and array.min() < 0):
            raise InvalidArray(f"relationship {name!r}: segment ids must be non-negative integers")
        return np.arange(n + 1, dtype=np.int64), array.astype(np.uint64)
    lists = list(array)
    if len(lists) != n:
        raise InvalidArray(f"relationship {name!r} must have one entry per annotation ({n})")
    parts = []
    for item in lists:
        part = np.atleast_1d(np.asarray(item if item is not None else [], dtype=np.int64))
        if part.ndim != 1 or (part.size and part.min() < 0):
            raise InvalidArray(f"relationship {name!r}: each entry is a segment id or a list of them")
        parts.append(part.astype(np.uint64))
    offsets = np.zeros(n + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([p.size for p in parts])
    flat = np.concatenate(parts) if parts else np.zeros(0, np.uint64)
    return offsets, flat


def _ids(values: Any, n: int) -> np.ndarray[Any, Any]:
    if values is None:
        return np.arange(1, n + 1, dtype=np.uint64)
    if hasattr(values, "to_numpy"):
        values = values.to_numpy()
    array = np.asarray(values)
    if array.dtype.kind not in "iu":
        try:
            array = np.array([int(v) for v in array], dtype=np.uint64)
        except (TypeError, ValueError):
            raise InvalidArray("ids must be non-negative integers (uint64)") from None
    elif n and array.min() < 0:
        raise InvalidArray("ids must be non-negative integers (uint64)")
    ids = array.astype(np.uint64)
    if ids.shape != (n,) or np.unique(ids).shape[0] != n:
        raise InvalidArray("ids must be unique, one per annotation")
    return ids


def annotation_table(
    data: Any = None,
    *,
    kind: AnnotationKind = "point",
    position: Any = None,
    point_a: Any = None,
    point_b: Any = None,
    center: Any = None,
    radii: Any = None,
    points: Any = None,
    ids: Any = None,
    description: Any = None,
    properties: Mapping[str, Any] | Sequence[str] | None = None,
    property_types: Mapping[str, str] | None = None,
    enums: Mapping[str, Any] | None = None,
    relationships: Mapping[str, Any] | None = None,
    rank: int | None = None,
) -> AnnotationTable:
    """Validate annotations given as arrays, or as column names of the table ``data``.

    Parameters
    ----------
    data
        A pandas DataFrame (or anything with ``columns`` and ``[name]``) whose column names the other
        arguments may give, or None when they are arrays.
    kind
        ``"point"`` (``position``), ``"line"`` and ``"box"`` (``point_a``, ``point_b``),
        ``"ellipsoid"`` (``center``, ``radii``) or ``"polyline"`` (``points``: one ``(n_i, rank)``
        array per annotation).
    position, point_a, point_b, center, radii
        ``(N, rank)`` arrays, a list of ``rank`` column names, or one column of vectors.
    ids
        Unique non-negative integers (default ``1..N``).
    description
        One string per annotation.
    properties
        Name -> values (or column), or a list of column names.  The type follows the values:
        numbers (int64 narrowed to int32/uint32 when they fit, float64 to float32), ``'#rrggbb'``
        strings or ``(N, 3)`` uint8 (rgb), ``'#rrggbbaa'`` or ``(N, 4)`` (rgba), a pandas categorical
        (an enum whose labels are the categories).  ``property_types`` overrides a type, ``enums``
        names numeric values (``{"kind": {0: "excitatory", 1: "inhibitory"}}``).
    relationships
        Relationship name -> one segment id per annotation, or a list of ids per annotation.
    """
    if kind not in TYPE_NAMES:
        raise InvalidArray(f"annotation kind must be one of {sorted(TYPE_NAMES)}, got {kind!r}")
    given = {"position": position, "point_a": point_a, "point_b": point_b, "center": center, "radii": radii, "points": points}
    wanted = GEOMETRY_ARGUMENTS[kind]
    missing = [a for a in wanted if given[a] is None]
    if missing:
        raise InvalidArray(f"{kind} annotations need {' and '.join(wanted)}; missing {', '.join(missing)}")
    extra = [a for a, v in given.items() if v is not None and a not in wanted]
    if extra:
        raise InvalidArray(f"{kind} annotations take {' and '.join(wanted)}, not {', '.join(extra)}")
    polylines: list[np.ndarray[Any, Any]] | None = None
    if kind == "polyline":
        raw = _column(data, points, "points")
        if hasattr(raw, "to_numpy"):
            raw = raw.to_numpy()
        polylines = []
        for i, item in enumerate(raw):
            p = _coordinates(item, f"points[{i}]", rank, None)
            if p.shape[0] < 2:
                raise InvalidArray(f"points[{i}]: a polyline needs at least two vertices")
            rank = p.shape[1]
            polylines.append(p)
        n = len(polylines)
        rank = rank or 3
        geometry = np.zeros((n, 0))
    else:
        columns = []
        n_rows: int | None = None
        for arg in wanted:
            c = _coordinates(_column(data, given[arg], arg), arg, rank, n_rows)
            rank, n_rows = c.shape[1], c.shape[0]
            columns.append(c)
        geometry = np.concatenate(columns, axis=1)
        n = geometry.shape[0]
        assert rank is not None
    table = AnnotationTable(kind, rank, _ids(_column(data, ids, "ids"), n), geometry, polylines)
    if description is not None:
        texts = _column(data, description, "description")
        table.descriptions = ["" if t is None else str(t) for t in texts]
        if len(table.descriptions) != n:
            raise InvalidArray(f"descriptions must have one entry per annotation ({n})")
    if properties is not None:
        items = properties.items() if isinstance(properties, Mapping) else [(p, p) for p in properties]
        for name, values in items:
            spec, array = _property(
                name, _column(data, values, f"property {name!r}"), (property_types or {}).get(name),
                (enums or {}).get(name), n,
            )
            table.property_specs.append(spec)
            table.properties[name] = array
    unknown = set(property_types or {}) | set(enums or {})
    unknown -= set(table.properties)
    if unknown:
        raise InvalidArray(f"property_types/enums name properties that are not given: {sorted(unknown)}")
    for name, values in (relationships or {}).items():
        if not name or "/" in name:
            raise InvalidArray(f"relationship name {name!r} must be non-empty without '/'")
        table.relationships[name] = _relationship(name, _column(data, values, f"relationship {name!r}"), n)
    return table


def coordinate_dimensions(
    rank: int, voxel_size: Sequence[float] | None, dimensions: Mapping[str, Any] | None
) -> dict[str, list[Any]]:
    """The ``{name: [scale, unit]}`` of an annotation layer: ``dimensions`` (name -> ``(scale, unit)``)
    or x, y, z of ``voxel_size`` nm."""
    if dimensions is not None:
        out = {}
        for name, value in dimensions.items():
            scale, unit = (value, "") if isinstance(value, (int, float)) else value
            if not float(scale) > 0:
                raise InvalidArray(f"dimension {name!r}: the scale must be positive")
            if unit == "nm":
                scale, unit = float(scale) * 1e-9, "m"
            out[str(name)] = [float(scale), str(unit)]
        if len(out) != rank:
            raise InvalidArray(f"{len(out)} dimensions given for {rank}-D annotations")
        return out
    size = tuple(voxel_size) if voxel_size is not None else (1.0, 1.0, 1.0)
    if rank != 3 or len(size) != 3:
        raise InvalidArray(f"voxel_size is (x, y, z) for 3-D annotations; give dimensions= for {rank}-D ones")
    return {name: [float(v) * 1e-9, "m"] for name, v in zip("xyz", size)}


def _json_value(spec: PropertySpec, value: np.ndarray[Any, Any]) -> Any:
    if spec.components > 1:
        return "#" + "".join(f"{int(v):02x}" for v in value)
    return value.item()


def local_layer_json(
    name: str,
    table: AnnotationTable,
    *,
    voxel_size: Sequence[float] | None = None,
    dimensions: Mapping[str, Any] | None = None,
    color: str = "#ffff00",
    shader: str | None = None,
    linked_segmentation: Mapping[str, str] | None = None,
    filter_by_segmentation: bool | Sequence[str] = True,
) -> dict[str, Any]:
    """The viewer-state JSON of a ``local://annotations`` layer holding ``table``.

    ``linked_segmentation`` maps a relationship to the segmentation layer whose segment ids it holds;
    ``filter_by_segmentation`` (True: every linked relationship) then shows only annotations related
    to the selected segments.
    """
    fields = GEOMETRY_FIELDS[table.kind]
    r = table.rank
    annotations = []
    rel_names = list(table.relationships)
    for i in range(len(table)):
        entry: dict[str, Any] = {"type": TYPE_NAMES[table.kind], "id": str(int(table.ids[i]))}
        if table.kind == "polyline":
            assert table.polylines is not None
            entry["points"] = [[float(v) for v in p] for p in table.polylines[i]]
        else:
            row = table.geometry[i]
            for k, f in enumerate(fields):
                entry[f] = [float(v) for v in row[k * r : (k + 1) * r]]
        if table.descriptions is not None:
            entry["description"] = table.descriptions[i]
        if rel_names:
            segments = [[str(int(s)) for s in table.related(rel, i)] for rel in rel_names]
            if any(segments):
                entry["segments"] = segments
        if table.property_specs:
            entry["props"] = [_json_value(s, table.properties[s.id][i]) for s in table.property_specs]
        annotations.append(entry)
    layer: dict[str, Any] = {
        "type": "annotation",
        "name": name,
        "source": {
            "url": "local://annotations",
            "transform": {"outputDimensions": coordinate_dimensions(r, voxel_size, dimensions)},
        },
        "annotations": annotations,
        "annotationColor": color,
    }
    if table.property_specs:
        layer["annotationProperties"] = [s.to_json() for s in table.property_specs]
    if rel_names:
        layer["annotationRelationships"] = rel_names
    links = dict(linked_segmentation or {})
    unknown = set(links) - set(rel_names)
    if unknown:
        raise InvalidArray(f"linked_segmentation names unknown relationships {sorted(unknown)}; have {rel_names}")
    if links:
        layer["linkedSegmentationLayer"] = links
        chosen = sorted(links) if filter_by_segmentation is True else sorted(filter_by_segmentation or [])
        if set(chosen) - set(links):
            raise InvalidArray("filter_by_segmentation names relationships without a linked segmentation layer")
        if chosen:
            layer["filterBySegmentation"] = chosen
    if shader is not None:
        layer["shader"] = shader
    return layer


def colour_shader(property_id: str) -> str:
    """An annotation shader that colours each annotation by its rgb/rgba property."""
    return f"void main() {{\n  setColor(prop_{property_id}());\n}}\n"


def annotation_layer(
    name: str,
    kind: AnnotationKind,
    first: Any,
    second: Any = None,
    *,
    voxel_size: Sequence[float] = (1.0, 1.0, 1.0),
    ids: Sequence[Any] | None = None,
    descriptions: Sequence[str] | None = None,
    properties: Mapping[str, Any] | None = None,
    color: str = "#ffff00",
) -> dict[str, Any]:
    """The viewer-state JSON of an annotation layer from one or two ``(N, 3)`` arrays (points; line
    ends or box corners; ellipsoid centres and radii)."""
    if kind not in TYPE_NAMES:
        raise InvalidArray(f"annotation kind must be one of {sorted(TYPE_NAMES)}, got {kind!r}")
    wanted = GEOMETRY_ARGUMENTS[kind]
    if len(wanted) == 2 and second is None:
        raise InvalidArray(f"{kind} annotations need two (N, 3) arrays: {wanted[0]} and {wanted[1]}")
    geometry = dict(zip(wanted, (first, second)))
    table = annotation_table(
        kind=kind, ids=ids, description=descriptions, properties=properties, rank=3, **geometry
    )
    return local_layer_json(name, table, voxel_size=voxel_size, color=color)


def annotations_frame(layer: Mapping[str, Any]) -> Any:
    """A pandas DataFrame of a local annotation layer's annotations, as the browser left them.

    Columns: ``id`` (str: ids made in the browser are not numbers), ``type``, the geometry per
    dimension (``x``, ``y``, ``z`` for points; ``a_x`` … ``b_z`` for lines and boxes; ``center_x`` …
    ``radii_z`` for ellipsoids; ``points`` — an ``(n, rank)`` array — for polylines), ``description``,
    one column per property (rgb/rgba as ``'#rrggbb'``) and one per relationship (lists of ints).
    """
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is in the annotations and test extras
        raise ImportError("reading annotations back needs pandas: pip install 'ngshow[annotations]'") from None
    source = layer.get("source")
    transform = source.get("transform", {}) if isinstance(source, dict) else {}
    names = list(transform.get("outputDimensions", {}) or {}) or ["x", "y", "z"]
    props = [p.get("id") for p in layer.get("annotationProperties", [])]
    rels = list(layer.get("annotationRelationships", ["segments"]))
    rows = []
    for entry in layer.get("annotations", []):
        row: dict[str, Any] = {"id": str(entry.get("id", "")), "type": entry.get("type")}
        kind = _KIND_OF_TYPE.get(str(entry.get("type")), "point")
        if kind == "polyline":
            row["points"] = np.asarray(entry.get("points", []), dtype=np.float64)
        else:
            prefixes = {"point": [""], "ellipsoid": ["center_", "radii_"]}.get(kind, ["a_", "b_"])
            for prefix, f in zip(prefixes, GEOMETRY_FIELDS[kind]):
                for dim, v in zip(names, entry.get(f, [])):
                    row[prefix + dim] = float(v)
        row["description"] = entry.get("description")
        for pid, value in zip(props, entry.get("props", [])):
            row[pid] = value
        segments = entry.get("segments", [])
        if segments and not isinstance(segments[0], list):
            segments = [segments]
        for k, rel in enumerate(rels):
            row[rel] = [int(s) for s in segments[k]] if k < len(segments) else []
        rows.append(row)
    frame = pd.DataFrame(rows)
    return frame
