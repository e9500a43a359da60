"""Annotation layers from NumPy coordinates: points, lines, boxes and ellipsoids.

Coordinates are voxels in ``(x, y, z)`` order, with the layer's voxel size in nm; they live in the
viewer state (a ``local://annotations`` layer), so they suit up to tens of thousands of annotations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from .errors import InvalidArray

__all__ = ["AnnotationKind", "annotation_layer"]

AnnotationKind = Literal["point", "line", "box", "ellipsoid"]

# Neuroglancer's name for each kind, and the names of its two coordinate fields.
_FIELDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "point": ("point", ("point",)),
    "line": ("line", ("pointA", "pointB")),
    "box": ("axis_aligned_bounding_box", ("pointA", "pointB")),
    "ellipsoid": ("ellipsoid", ("center", "radii")),
}

_PROPERTY_TYPES = {"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32"}


def _coordinates(values: Any, what: str) -> np.ndarray[Any, Any]:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1 and array.shape[0] == 3:
        array = array[np.newaxis]
    if array.ndim != 2 or array.shape[1] != 3:
        raise InvalidArray(f"{what} must be an (N, 3) array of x, y, z voxel coordinates, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise InvalidArray(f"{what} must be finite")
    return array


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
    """The viewer-state JSON of an annotation layer.

    ``first``/``second`` are ``(N, 3)`` arrays: points (``second`` unused), line ends, box corners, or
    ellipsoid centres and radii.  ``properties`` maps a name to N numbers, shown and usable in shaders.
    """
    if kind not in _FIELDS:
        raise InvalidArray(f"annotation kind must be one of {sorted(_FIELDS)}, got {kind!r}")
    type_name, fields = _FIELDS[kind]
    columns = [_coordinates(first, fields[0])]
    if len(fields) == 2:
        if second is None:
            raise InvalidArray(f"{kind} annotations need two (N, 3) arrays: {fields[0]} and {fields[1]}")
        columns.append(_coordinates(second, fields[1]))
        if columns[1].shape != columns[0].shape:
            raise InvalidArray(f"{fields[0]} and {fields[1]} must have the same shape")
    n = columns[0].shape[0]
    ids_list = [str(i) for i in (ids if ids is not None else range(1, n + 1))]
    if len(ids_list) != n or len(set(ids_list)) != n:
        raise InvalidArray("ids must be unique, one per annotation")
    if descriptions is not None and len(descriptions) != n:
        raise InvalidArray("descriptions must have one entry per annotation")
    props = {key: np.asarray(value) for key, value in (properties or {}).items()}
    for key, value in props.items():
        if value.shape != (n,):
            raise InvalidArray(f"property {key!r} must have one value per annotation")
    annotations = []
    for i in range(n):
        entry: dict[str, Any] = {"type": type_name, "id": ids_list[i]}
        for field, column in zip(fields, columns):
            entry[field] = [float(v) for v in column[i]]
        if descriptions is not None:
            entry["description"] = str(descriptions[i])
        if props:
            entry["props"] = [value[i].item() for value in props.values()]
        annotations.append(entry)
    x, y, z = (float(v) * 1e-9 for v in voxel_size)
    layer: dict[str, Any] = {
        "type": "annotation",
        "name": name,
        "source": {
            "url": "local://annotations",
            "transform": {"outputDimensions": {"x": [x, "m"], "y": [y, "m"], "z": [z, "m"]}},
        },
        "annotations": annotations,
        "annotationColor": color,
    }
    if props:
        layer["annotationProperties"] = [
            {"id": key, "type": value.dtype.name if value.dtype.name in _PROPERTY_TYPES else "float32"}
            for key, value in props.items()
        ]
    return layer
