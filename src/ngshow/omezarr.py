"""OME-Zarr (NGFF) images, read with zarr and the specification: versions 0.4 (zarr v2) and 0.5 (zarr v3).

Why zarr plus the spec rather than ``ome-zarr-models`` or ``ngff-zarr``: the part ngshow needs is small
(``multiscales`` axes, datasets and their ``coordinateTransformations``, ``omero`` channels, the
``labels`` group, ``image-label``) and stable across 0.4 and 0.5, whose only difference here is that
0.5 nests the attributes under ``"ome"``; reading it directly keeps zarr (already the array reader) the
only dependency, accepts files that are slightly off-spec instead of refusing them, and never reads
array data to read metadata.  Files written by ome-zarr-py and ngff-zarr are tested.

Every multiscale level that is an integer downsampling of level 0 (as Neuroglancer serves them) is a
pyramid level; a level that is not is dropped, with a log message, and computed on the fly instead.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from typing import Any

from .coords import kind_of, parse_unit
from .errors import InvalidArray

__all__ = ["OmeImage", "child", "ome_attrs", "is_ome_image", "read_image", "label_colours", "label_names",
           "label_properties", "omero_shader"]

logger = logging.getLogger(__name__)

SUPPORTED = ("0.4", "0.5")


class NotAnImage(InvalidArray):
    """An OME-Zarr group ngshow does not show as one image (a plate, a well, a bare group)."""


def ome_attrs(group: Any) -> dict[str, Any]:
    """The OME attributes of a zarr group: 0.5 keeps them under ``"ome"``, 0.4 at the top."""
    attrs = dict(group.attrs)
    ome = attrs.get("ome")
    return dict(ome) if isinstance(ome, dict) else attrs


def is_ome_image(group: Any) -> bool:
    return "multiscales" in ome_attrs(group)


@dataclass
class OmeImage:
    """One OME-Zarr image: its usable levels (finest first) and what the metadata says about them."""

    levels: list[Any]
    hints: dict[str, Any]
    name: str
    version: str
    is_label: bool = False
    shader: str | None = None
    level_paths: list[str] = field(default_factory=list)
    segment_colors: dict[int, str] = field(default_factory=dict)
    segment_properties: dict[str, list[Any]] = field(default_factory=dict)


def _transforms(items: Any, rank: int, where: str) -> tuple[list[float], list[float]]:
    """Scale and translation of a ``coordinateTransformations`` list (identity for what is missing)."""
    scale = [1.0] * rank
    translate = [0.0] * rank
    for item in items or []:
        kind = item.get("type")
        if kind == "identity":
            continue
        if kind not in ("scale", "translation"):
            raise InvalidArray(f"{where}: coordinate transformation {kind!r} is not supported (only scale and translation)")
        key = kind
        if key not in item:
            raise InvalidArray(f"{where}: a {kind} transformation by 'path' is not supported; give its values inline")
        values = [float(v) for v in item[key]]
        if len(values) != rank:
            raise InvalidArray(f"{where}: a {kind} of {len(values)} values for {rank} axes")
        if kind == "scale":
            scale = [a * b for a, b in zip(scale, values)]
            translate = [a * b for a, b in zip(translate, values)]
        else:
            translate = [a + b for a, b in zip(translate, values)]
    return scale, translate


def _axes(multiscale: dict[str, Any], rank: int, where: str) -> tuple[list[str], list[str], list[str | None]]:
    axes = multiscale.get("axes")
    if axes is None:  # 0.1-0.2: always 5-D tczyx
        axes = ["t", "c", "z", "y", "x"][-rank:]
    names, kinds, units = [], [], []
    for axis in axes:
        entry = {"name": axis} if isinstance(axis, str) else dict(axis)
        name = str(entry.get("name"))
        kind = entry.get("type")
        names.append(name)
        kinds.append(kind if kind in ("space", "time", "channel") else kind_of(name))
        unit = entry.get("unit")
        if unit is not None:
            try:
                parse_unit(str(unit))
            except InvalidArray:
                logger.warning("%s: ignoring axis %r's unknown unit %r", where, name, unit)
                unit = None
        units.append(None if unit is None else str(unit))
    if len(names) != rank:
        raise InvalidArray(f"{where}: metadata names {len(names)} axes but the arrays have {rank}")
    return names, kinds, units


def _factor(fine: float, coarse: float) -> int | None:
    ratio = coarse / fine
    f = round(ratio)
    return f if f >= 1 and math.isclose(ratio, f, rel_tol=1e-3) else None


def _fits(level: Any, base: Any, scale0: list[float], t0: list[float], scale: list[float], t: list[float],
          kinds: list[str]) -> str | None:
    """Why ``level`` is not an integer downsampling of ``base`` aligned as Neuroglancer serves it, or None."""
    for i, (n, m, s0, s, a, b) in enumerate(zip(base.shape, level.shape, scale0, scale, t0, t)):
        f = _factor(s0, s)
        if f is None:
            return f"its scale {s:g} on axis {i} is not an integer multiple of level 0's {s0:g}"
        if kinds[i] != "space" and f != 1:
            return f"it shrinks the non-spatial axis {i}"
        if m not in (n // f, -(-n // f)):
            return f"its size {m} on axis {i} is not level 0's {n} / {f}"
        # Voxel centres (OME-Zarr) of a block of f voxels sit (f - 1) / 2 voxels in; corners also accepted.
        if not (math.isclose(b, a + (f - 1) / 2 * s0, abs_tol=1e-6 * s) or math.isclose(b, a, abs_tol=1e-6 * s)):
            return f"its translation {b:g} on axis {i} does not line up with level 0's voxels"
    return None


def read_image(group: Any, name: str, level: str | None = None) -> OmeImage:
    """The multiscale image of a zarr group (only its dataset ``level`` if given, e.g. ``"s1"``).

    Raises
    ------
    InvalidArray
        For plates, wells and groups without ``multiscales``, and for metadata that contradicts the arrays.
    """
    attrs = ome_attrs(group)
    if "plate" in attrs:
        wells = [w.get("path") for w in attrs["plate"].get("wells", [])][:3]
        example = f"{name}/{wells[0]}/0" if wells else f"{name}/ROW/COLUMN/FIELD"
        raise NotAnImage(
            f"{name} is a high-content-screening plate, which ngshow does not show as a whole; "
            f"open one field's image instead, e.g. {example}"
        )
    if "well" in attrs:
        images = [i.get("path") for i in attrs["well"].get("images", [])]
        raise NotAnImage(f"{name} is a plate well; open one of its images: {', '.join(f'{name}/{p}' for p in images)}")
    multiscales = attrs.get("multiscales")
    if not multiscales:
        raise NotAnImage(f"{name} has no OME-Zarr 'multiscales' metadata")
    if len(multiscales) > 1:
        logger.info("%s holds %d multiscale images; showing the first", name, len(multiscales))
    ms = dict(multiscales[0])
    version = str(attrs.get("version") or ms.get("version") or "")
    if version and version not in SUPPORTED:
        logger.warning("%s: OME-Zarr version %s; ngshow reads %s and tries its best", name, version, " and ".join(SUPPORTED))
    datasets = ms.get("datasets") or []
    if not datasets:
        raise InvalidArray(f"{name}: its multiscales list no datasets")
    paths = [str(d["path"]) for d in datasets]
    finest = datasets[0]
    if level is not None:  # one level on its own, placed where the metadata puts it
        if level not in paths:
            raise InvalidArray(f"{name} has no level {level!r}; its levels are {', '.join(paths)}")
        datasets = [datasets[paths.index(level)]]
        paths = [level]
    try:
        base = group[paths[0]]
    except KeyError:
        raise InvalidArray(f"{name}: level {paths[0]!r} named in the metadata is missing") from None
    rank = len(base.shape)
    names, kinds, units = _axes(ms, rank, name)
    outer_scale, outer_translate = _transforms(ms.get("coordinateTransformations"), rank, name)

    def placed(dataset: dict[str, Any]) -> tuple[list[float], list[float]]:
        scale, translate = _transforms(dataset.get("coordinateTransformations"), rank, f"{name}/{dataset['path']}")
        return ([s * o for s, o in zip(scale, outer_scale)],
                [t * o + u for t, o, u in zip(translate, outer_scale, outer_translate)])

    scale0, translate0 = placed(datasets[0])
    if level is not None:
        # OME-Zarr places voxel centres, ngshow voxel corners as level 0's: move a coarser level
        # by half its extra size, so it lines up with the finest level shown by itself.
        fine = placed(finest)[0]
        translate0 = [t - (s - f) / 2 if k == "space" else t for t, s, f, k in zip(translate0, scale0, fine, kinds)]
    levels = [base]
    level_paths = [paths[0]]
    for dataset, path in zip(datasets[1:], paths[1:]):
        try:
            coarse = group[path]
        except KeyError:
            logger.warning("%s: level %r is missing; coarser levels are computed by downsampling", name, path)
            break
        scale, translate = placed(dataset)
        why = None if len(coarse.shape) == rank else "its rank differs"
        why = why or _fits(coarse, base, scale0, translate0, scale, translate, kinds)
        if why is not None:
            logger.warning("%s: not using level %r (%s); coarser levels are computed by downsampling", name, path, why)
            break
        levels.append(coarse)
        level_paths.append(path)

    hints: dict[str, Any] = {"axes": names, "kinds": kinds}
    spatial_units = [u for u, k in zip(units, kinds) if k != "channel"]
    if any(u is not None for u in spatial_units) or any(s != 1.0 for s in scale0):
        hints["scale"] = [1.0 if k == "channel" else s for s, k in zip(scale0, kinds)]
        hints["translate"] = [0.0 if k == "channel" else t for t, k in zip(translate0, kinds)]
        hints["units"] = [("" if k == "channel" else u) for u, k in zip(units, kinds)]
        if all(u is None for u in spatial_units):
            logger.warning("%s: its axes have scales but no units; nanometres assumed", name)
    omero = attrs.get("omero") if isinstance(attrs.get("omero"), dict) else None
    shader = None
    channel_axes = [i for i, k in enumerate(kinds) if k == "channel"]
    if omero and len(channel_axes) == 1:
        channels = [dict(c) for c in omero.get("channels", [])]
        if len(channels) == base.shape[channel_axes[0]]:
            labels = [str(c.get("label") or "") for c in channels]
            if all(labels) and len(set(labels)) == len(labels):
                hints["channel_labels"] = labels
            shader = omero_shader(channels)
    return OmeImage(levels, hints, name, version, "image-label" in attrs, shader, level_paths,
                    label_colours(attrs.get("image-label")), label_properties(attrs.get("image-label")))


def label_colours(image_label: Any) -> dict[int, str]:
    """``{label value: "#rrggbb"}`` from an ``image-label``'s ``colors`` (entries it cannot read are skipped)."""
    colours: dict[int, str] = {}
    if not isinstance(image_label, dict):
        return colours
    for entry in image_label.get("colors") or []:
        try:
            value = int(entry["label-value"])
            r, g, b = (min(255, max(0, int(round(float(c))))) for c in list(entry["rgba"])[:3])
        except (KeyError, TypeError, ValueError):
            continue
        colours[value] = f"#{r:02x}{g:02x}{b:02x}"
    return colours


def label_properties(image_label: Any) -> dict[str, list[Any]]:
    """The ``properties`` of an ``image-label`` (``[{"label-value": 7, "class": "nucleus", ...}]``)
    as a segment properties table in column form, ``{"ids": [...], "class": [...], ...}`` (empty
    without any).

    Each key becomes a column, in the order the entries first name them: numbers as a number
    property, strings as a string property (``label`` and ``description`` keep Neuroglancer's
    meaning).  A column that is not all numbers or all strings, or lacks a value for some label,
    is shown as text (JSON for anything but a string; empty where missing).  Entries without an
    integer ``label-value`` are skipped, and a repeated value keeps its first entry.
    """
    from .convert.errors import ConvertError
    from .convert.properties import segment_properties_info

    rows: dict[int, dict[str, Any]] = {}
    entries = image_label.get("properties") if isinstance(image_label, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        try:
            value = entry["label-value"]
            if isinstance(value, bool) or not float(value).is_integer() or not 0 <= value < 2**64:
                continue
        except (KeyError, TypeError, ValueError):
            continue
        rows.setdefault(int(value), {k: v for k, v in entry.items() if k != "label-value"})
    if not rows:
        return {}
    ids = list(rows)
    table: dict[str, list[Any]] = {"ids": ids}
    for key in dict.fromkeys(k for row in rows.values() for k in row):
        values = [row.get(key) for row in rows.values()]
        name = key if key != "ids" else "ids (property)"  # "ids" is the table's own column
        try:
            if key in ("label", "description") or any(v is None for v in values):
                raise ConvertError("shown as text")
            segment_properties_info({"ids": ids, name: values})  # numbers or strings Neuroglancer takes
        except ConvertError:
            values = ["" if v is None else v if isinstance(v, str) else json.dumps(v) for v in values]
        table[name] = values
    return table


def child(group: Any, name: str) -> Any:
    """``group[name]``, also when the group's consolidated metadata predates it (ngff-zarr
    consolidates the image; label images are often added later)."""
    try:
        return group[name]
    except KeyError:
        import zarr

        path = f"{group.path}/{name}" if group.path else name
        try:
            return zarr.open_group(group.store, path=path, mode="r", use_consolidated=False)
        except Exception:
            raise KeyError(name) from None


def label_names(group: Any) -> list[str]:
    """Names of the label images in a group's ``labels`` subgroup ([] without one)."""
    try:
        labels = child(group, "labels")
    except KeyError:
        return []
    names = ome_attrs(labels).get("labels") or []
    return [str(n) for n in names]


def _colour(text: Any) -> tuple[float, float, float]:
    value = str(text or "FFFFFF").lstrip("#")
    if len(value) != 6:
        return (1.0, 1.0, 1.0)
    try:
        return tuple(int(value[i:i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]
    except ValueError:
        return (1.0, 1.0, 1.0)


def _number(value: Any, default: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) else default


def omero_shader(channels: list[dict[str, Any]]) -> str:
    """A Neuroglancer shader showing each active ``omero`` channel in its colour, contrast set to its
    window's ``start``-``end`` (the slider spanning ``min``-``max``), added together."""
    lines = []
    terms = []
    for i, channel in enumerate(channels):
        window = dict(channel.get("window") or {})
        start = _number(window.get("start"), 0.0)
        end = _number(window.get("end"), start + 1.0)
        if end <= start:
            end = start + 1.0
        low = min(_number(window.get("min"), start), start)
        high = max(_number(window.get("max"), end), end)
        r, g, b = _colour(channel.get("color"))
        lines.append(f"#uicontrol invlerp ch{i}(range=[{start:g}, {end:g}], window=[{low:g}, {high:g}], channel=[{i}])")
        lines.append(f'#uicontrol vec3 color{i} color(default="#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}")')
        if channel.get("active", True):
            terms.append(f"color{i} * ch{i}()")
    body = " + ".join(terms) if terms else "vec3(0.0)"
    return "\n".join(lines) + f"\nvoid main() {{\n  emitRGB({body});\n}}\n"
