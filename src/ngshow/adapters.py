"""Arrays that know their own axes: xarray DataArrays and TensorStores, and lazy views ngshow wraps.

:func:`space_hints` reads the axis names, spacing and units such an array carries, so ``viewer.add``
can build its :class:`~ngshow.coords.CoordinateSpace` from them; :func:`as_array` gives what
:class:`~ngshow.sources.ArraySource` slices.  Nothing here reads array data.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import InvalidArray

__all__ = ["ReversedAxes", "TensorStoreArray", "as_array", "space_hints"]


class ReversedAxes:
    """A lazy view of an ``(x, y, z)``-ordered array as ``(z, y, x)``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.shape = tuple(reversed(tuple(inner.shape)))
        self.dtype = np.dtype(inner.dtype)

    def __getitem__(self, box: tuple[slice, ...]) -> np.ndarray[Any, Any]:
        return np.asarray(self.inner[tuple(reversed(box))]).transpose()


class TensorStoreArray:
    """A TensorStore opened for reading, sliced like NumPy (index 0 at the domain's origin)."""

    def __init__(self, store: Any) -> None:
        import tensorstore as ts

        self.origin = tuple(int(v) for v in store.domain.inclusive_min)
        self.store = store[ts.d[:].translate_to[0]] if any(self.origin) else store
        self.shape = tuple(int(n) for n in store.shape)
        self.dtype = np.dtype(store.dtype.numpy_dtype)

    def __getitem__(self, box: tuple[slice, ...]) -> np.ndarray[Any, Any]:
        return np.asarray(self.store[box].read().result())


def _is_tensorstore(data: Any) -> bool:
    return type(data).__module__.startswith("tensorstore") and hasattr(data, "domain")


def _is_xarray(data: Any) -> bool:
    return type(data).__module__.startswith("xarray") and hasattr(data, "dims") and hasattr(data, "coords")


def as_array(data: Any) -> Any:
    """What ngshow slices for ``data``: TensorStores are wrapped; everything else is itself."""
    if _is_tensorstore(data):
        return TensorStoreArray(data)
    return data


def space_hints(data: Any) -> dict[str, Any]:
    """Keyword arguments for :meth:`CoordinateSpace.make` that ``data`` itself carries.

    xarray: dims as axis names, evenly spaced coordinates as scale and translate, units from the
    coordinates' ``attrs["units"]`` (or the array's), string coordinates of a channel axis as its
    labels.  TensorStore: dimension labels and units, the domain's origin as the translation.
    Anything else: nothing.

    Raises
    ------
    InvalidArray
        For unevenly spaced or decreasing xarray coordinates.
    """
    if _is_xarray(data):
        return _xarray_hints(data)
    if _is_tensorstore(data):
        return _tensorstore_hints(data)
    return {}


def _xarray_hints(data: Any) -> dict[str, Any]:
    from .coords import kind_of, parse_unit

    names = [str(d) for d in data.dims]
    scale: list[float] = []
    translate: list[float] = []
    units: list[str | None] = []
    kinds: list[str] = []
    channel_labels = None
    array_unit = data.attrs.get("units")
    for name in names:
        kind = kind_of(name)
        kinds.append(kind)
        coord = data.coords.get(name)
        values = None if coord is None else np.asarray(coord.values)
        unit = None if coord is None else coord.attrs.get("units")
        if kind == "channel":
            if values is not None and values.dtype.kind in "USO":
                channel_labels = [str(v) for v in values]
            scale.append(1.0)
            translate.append(0.0)
            units.append("")
            continue
        if unit is None and array_unit is not None:
            try:
                parse_unit(str(array_unit))
                unit = array_unit
            except InvalidArray:
                unit = None
        units.append(str(unit) if unit is not None else None)
        if values is None or values.size == 0:
            scale.append(1.0)
            translate.append(0.0)
            continue
        if values.dtype.kind not in "iuf":
            raise InvalidArray(f"coordinates of dimension {name!r} are not numbers ({values.dtype}); ngshow needs evenly spaced numbers")
        values = values.astype(np.float64)
        step = float(values[1] - values[0]) if values.size > 1 else 1.0
        if values.size > 1:
            steps = np.diff(values)
            if step <= 0:
                raise InvalidArray(f"coordinates of dimension {name!r} decrease; ngshow needs increasing, evenly spaced coordinates")
            if not np.allclose(steps, step, rtol=1e-6, atol=0):
                raise InvalidArray(
                    f"coordinates of dimension {name!r} are unevenly spaced (steps from {steps.min():g} to "
                    f"{steps.max():g}); Neuroglancer needs a constant voxel size: resample, or drop the coordinate"
                )
        scale.append(step)
        translate.append(float(values[0]))
    hints: dict[str, Any] = {"axes": names, "kinds": kinds, "scale": scale, "translate": translate, "units": units}
    if channel_labels is not None:
        hints["channel_labels"] = channel_labels
    return hints


def _tensorstore_hints(store: Any) -> dict[str, Any]:
    labels = [str(v) for v in store.domain.labels]
    hints: dict[str, Any] = {}
    if all(labels) and len(set(labels)) == len(labels):
        hints["axes"] = labels
    units = list(store.dimension_units) if store.dimension_units is not None else []
    if units and any(u is not None for u in units):
        hints["scale"] = [float(u.multiplier) if u is not None else 1.0 for u in units]
        hints["units"] = [str(u.base_unit) if u is not None else None for u in units]
    origin = [int(v) for v in store.domain.inclusive_min]
    if any(origin):
        step = hints.get("scale", [1.0] * len(origin))
        hints["translate"] = [o * s for o, s in zip(origin, step)]
    return hints
