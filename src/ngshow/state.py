"""Viewer state shared with the browser: JSON documents with generations (PROTOCOL.md §2), and typed
views over Neuroglancer's viewer-state JSON.

A :class:`SyncedDocument` holds one JSON document and its generation string.  Python edits get a fresh
random generation; a browser edit is accepted only if it was based on the current generation, and then
takes the generation ``"<clientId>/<count>"`` so the server never echoes it back to that browser.
:class:`ViewerState` and the layer classes are attribute views over the JSON; unknown keys stay as
they are.  :func:`fill_view_defaults` gives a state made in Python the view a browser would pick.
"""

from __future__ import annotations

import copy
import json
import math
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

from .errors import Conflict, InvalidRequest, InvalidState
from .tokens import new_token

__all__ = [
    "AnnotationLayerState",
    "Box",
    "FIT_PIXELS",
    "PROJECTION_MARGIN",
    "ImageLayerState",
    "LayerState",
    "Layers",
    "SegmentationLayerState",
    "SyncedDocument",
    "ViewerState",
    "column_layout",
    "annotation_box",
    "fill_view_defaults",
    "layer_state",
    "panel_layout",
    "precomputed_box",
    "row_layout",
    "source_urls",
    "volume_box",
]

JSON = dict[str, Any]


def _new_generation() -> str:
    # No "/" in it, so it can never look like a browser's "<clientId>/<count>" generation.
    return new_token()


class SyncedDocument:
    """A JSON document with a generation, safe to use from any thread.

    ``on_change`` is called (with no lock held) after every change, from the thread that made it.
    ``complete``, if set, fills in a document edited from Python (never one from a browser) before it
    is stored; it runs under the document's lock, so it must not touch the document.
    """

    def __init__(self, value: JSON | None = None) -> None:
        self._lock = threading.Lock()
        self._value: JSON = copy.deepcopy(value) if value else {}
        self._generation = _new_generation()
        self.on_change: list[Callable[[], None]] = []
        self.complete: Callable[[JSON], None] | None = None

    def snapshot(self) -> tuple[JSON, str]:
        """A deep copy of the document and its generation."""
        with self._lock:
            return copy.deepcopy(self._value), self._generation

    @property
    def generation(self) -> str:
        with self._lock:
            return self._generation

    def encoded(self) -> tuple[str, str]:
        """The document as compact JSON text, and its generation."""
        with self._lock:
            return json.dumps(self._value, separators=(",", ":")), self._generation

    def set(self, value: JSON) -> str:
        """Replace the document from Python; returns the new generation."""
        value = copy.deepcopy(value)
        with self._lock:
            if self.complete is not None:
                self.complete(value)
            self._value = value
            self._generation = _new_generation()
            generation = self._generation
        self._notify()
        return generation

    def update(self, edit: Callable[[JSON], None]) -> bool:
        """Apply ``edit`` to a copy of the document; store it (new generation) if it changed."""
        with self._lock:
            value = copy.deepcopy(self._value)
            edit(value)
            if self.complete is not None:
                self.complete(value)
            if value == self._value:
                return False
            self._value = value
            self._generation = _new_generation()
        self._notify()
        return True

    def set_from_client(self, value: JSON, previous: str, client_id: str, count: int | str) -> str:
        """Store a browser edit made on top of generation ``previous``.

        Raises :class:`Conflict` if the document changed since (the browser then waits for the push).
        """
        if not client_id or "/" in client_id:
            raise InvalidRequest("state update needs a client id without '/'")
        with self._lock:
            if previous != self._generation:
                raise Conflict("state changed since the browser last saw it")
            self._value = value
            self._generation = f"{client_id}/{count}"
            generation = self._generation
        self._notify()
        return generation

    def _notify(self) -> None:
        for callback in list(self.on_change):
            callback()


# -- typed state ---------------------------------------------------------------------------------
#
# Every typed object is a live view over a JSON dict (:attr:`json`): attributes read and write the
# dict, and keys this module does not know stay in it untouched, so states round-trip through JSON.

_T = TypeVar("_T")


class _Field(Generic[_T]):
    """An attribute backed by one JSON key: ``convert`` checks and normalises what is assigned."""

    def __init__(self, key: str, default: _T, convert: Callable[[Any], Any], doc: str) -> None:
        self.key, self.default, self.convert, self.__doc__ = key, default, convert, doc

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type) -> _Field[_T]: ...
    @overload
    def __get__(self, instance: _JsonView, owner: type) -> _T: ...
    def __get__(self, instance: _JsonView | None, owner: type) -> Any:
        if instance is None:
            return self
        value = instance.json.get(self.key)
        return copy.deepcopy(self.default) if value is None else self.convert(value)

    def __set__(self, instance: _JsonView, value: Any) -> None:
        if value is None:
            instance.json.pop(self.key, None)
            return
        try:
            instance.json[self.key] = self.convert(value)
        except (TypeError, ValueError) as e:
            raise InvalidState(f"{self.name}: {e}") from None


def _float(value: Any) -> float:
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"expected a finite number, got {value!r}")
    return result


def _positive(value: Any) -> float:
    result = _float(value)
    if result <= 0:
        raise ValueError(f"expected a number > 0, got {value!r}")
    return result


def _fraction(value: Any) -> float:
    result = _float(value)
    if not 0 <= result <= 1:
        raise ValueError(f"expected a number from 0 to 1, got {value!r}")
    return result


def _bool(value: Any) -> bool:
    if not isinstance(value, (bool, int)):
        raise TypeError(f"expected True or False, got {value!r}")
    return bool(value)


def _vector(length: int | None) -> Callable[[Any], list[float]]:
    def convert(value: Any) -> list[float]:
        result = [_float(v) for v in value]
        if length is not None and len(result) != length:
            raise ValueError(f"expected {length} numbers, got {len(result)}")
        return result

    return convert


def _quaternion(value: Any) -> list[float]:
    q = _vector(4)(value)
    norm = math.sqrt(sum(v * v for v in q))
    if norm == 0:
        raise ValueError("an orientation quaternion cannot be all zeros")
    return [v / norm for v in q]


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _color(value: Any) -> str:
    text = _text(value)
    if not re.fullmatch(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})", text):
        raise ValueError(f"expected a colour like '#ff8800', got {value!r}")
    return text


def _choice(*options: str) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        if value not in options:
            raise ValueError(f"expected one of {list(options)}, got {value!r}")
        return str(value)

    return convert


def _plain(value: Any) -> Any:
    return copy.deepcopy(value)


def _segment_id(text: Any) -> int:
    value = int(str(text).lstrip("!"))
    if not 0 <= value < 2**64:
        raise ValueError(f"segment ids are uint64, got {text!r}")
    return value


class _JsonView:
    """Base of the typed views: holds the dict, compares and prints by it, and allows ``obj["key"]``."""

    def __init__(self, json_value: JSON | None = None) -> None:
        self.json: JSON = json_value if json_value is not None else {}

    def __setattr__(self, name: str, value: Any) -> None:
        # A typo (``layer.opactiy = 0.2``) must not pass silently as a plain Python attribute.
        if name != "json" and not hasattr(type(self), name):
            methods = ("get", "to_json", "copy", "update", "setdefault", "pop", "keys", "items")
            known = sorted(n for n in dir(type(self)) if not n.startswith("_") and n not in methods)
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}; it has {known}")
        super().__setattr__(name, value)

    def __getitem__(self, key: str) -> Any:
        return self.json[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.json[key] = value

    def __contains__(self, key: object) -> bool:
        return key in self.json

    def get(self, key: str, default: Any = None) -> Any:
        return self.json.get(key, default)

    # The dict methods code written against the raw JSON uses, so it keeps working.
    def update(self, *args: Any, **kwargs: Any) -> None:
        self.json.update(*args, **kwargs)

    def setdefault(self, key: str, default: Any = None) -> Any:
        return self.json.setdefault(key, default)

    def pop(self, key: str, *default: Any) -> Any:
        return self.json.pop(key, *default)

    def keys(self) -> Any:
        return self.json.keys()

    def items(self) -> Any:
        return self.json.items()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _JsonView):
            return self.json == other.json
        return self.json == other if isinstance(other, dict) else NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({json.dumps(self.json)[:200]})"

    def to_json(self) -> JSON:
        """A deep copy of the JSON."""
        return copy.deepcopy(self.json)


#: Layer types the 2.41 client knows (``pointAnnotation``/``localAnnotation`` are legacy spellings).
LAYER_TYPES = ("image", "segmentation", "annotation", "mesh", "new", "pointAnnotation", "localAnnotation")


class LayerState(_JsonView):
    """One entry of the state's ``layers`` list; subclasses add what each layer type has."""

    name = _Field("name", "", _text, "The layer's name (unique in the viewer).")
    type = _Field("type", "", _text, "``image``, ``segmentation``, ``annotation``, …")
    visible = _Field("visible", True, _bool, "Drawn at all (the eye in the layer bar).")

    @property
    def source(self) -> Any:
        """The data source: a URL string, or ``{"url": …, "transform": …}``, or a list of those."""
        return self.json.get("source")

    @source.setter
    def source(self, value: Any) -> None:
        self.json["source"] = copy.deepcopy(value)

    @property
    def source_urls(self) -> list[str]:
        """The URL of each data source."""
        return source_urls(self.json.get("source"))


class ImageLayerState(LayerState):
    """An ``image`` layer."""

    opacity = _Field("opacity", 0.5, _fraction, "0 (invisible) to 1 (opaque); client default 0.5.")
    blend = _Field("blend", "default", _choice("default", "additive"), "How it mixes with layers below.")
    shader = _Field("shader", None, _text, "GLSL shader code (``None``: the client's default).")
    shader_controls: _Field[JSON] = _Field("shaderControls", {}, _plain, "Values of the shader's ``#uicontrol`` widgets.")
    volume_rendering = _Field(
        "volumeRendering", "off", _choice("off", "on", "max", "min"), "Volume rendering in the 3-D view."
    )


class SegmentationLayerState(LayerState):
    """A ``segmentation`` layer: which segments show, in what colours, which are merged."""

    opacity = _Field("selectedAlpha", 0.5, _fraction, "Opacity of selected segments in 2-D views.")
    not_selected_alpha = _Field("notSelectedAlpha", 0.0, _fraction, "Opacity of unselected segments.")
    object_alpha = _Field("objectAlpha", 1.0, _fraction, "Opacity of meshes in the 3-D view.")
    saturation = _Field("saturation", 1.0, _fraction, "Colour saturation.")
    hide_segment_zero = _Field("hideSegmentZero", True, _bool, "Never draw segment 0.")
    color_seed = _Field("colorSeed", 0, int, "Seed of the random segment colours.")

    def _entries(self) -> list[str]:
        return [str(s) for s in self.json.get("segments", [])]

    @property
    def segments(self) -> set[int]:
        """Selected segments that are shown (in 2-D and as meshes in 3-D)."""
        return {_segment_id(s) for s in self._entries() if not s.startswith("!")}

    @segments.setter
    def segments(self, ids: Iterable[int]) -> None:
        shown = {_segment_id(i) for i in ids}
        hidden = self.hidden_segments - shown
        self._set_segments(shown, hidden)

    @property
    def hidden_segments(self) -> set[int]:
        """Selected segments whose visibility is switched off (written ``"!id"`` in the JSON)."""
        return {_segment_id(s) for s in self._entries() if s.startswith("!")}

    @hidden_segments.setter
    def hidden_segments(self, ids: Iterable[int]) -> None:
        hidden = {_segment_id(i) for i in ids}
        self._set_segments(self.segments - hidden, hidden)

    def _set_segments(self, shown: set[int], hidden: set[int]) -> None:
        entries = [(i, str(i)) for i in shown] + [(i, f"!{i}") for i in hidden]
        if entries:
            self.json["segments"] = [text for _, text in sorted(entries)]
        else:
            self.json.pop("segments", None)

    @property
    def colors(self) -> dict[int, str]:
        """Fixed colours of segments, ``{id: "#rrggbb"}`` (others get random colours)."""
        return {_segment_id(k): str(v) for k, v in self.json.get("segmentColors", {}).items()}

    @colors.setter
    def colors(self, value: Mapping[int, str]) -> None:
        try:
            colors = {str(_segment_id(k)): _color(v) for k, v in value.items()}
        except (TypeError, ValueError) as e:
            raise InvalidState(f"colors: {e}") from None
        if colors:
            self.json["segmentColors"] = colors
        else:
            self.json.pop("segmentColors", None)

    @property
    def equivalences(self) -> list[set[int]]:
        """Groups of segment ids merged into one object (same colour, same mesh selection)."""
        return [{_segment_id(i) for i in group} for group in self.json.get("equivalences", [])]

    @equivalences.setter
    def equivalences(self, groups: Iterable[Iterable[int]]) -> None:
        merged: list[set[int]] = []
        for group in groups:
            ids = {_segment_id(i) for i in group}
            overlapping = [m for m in merged if m & ids]
            for m in overlapping:
                ids |= m
                merged.remove(m)
            merged.append(ids)
        kept = sorted((sorted(g) for g in merged if len(g) > 1), key=lambda g: g[0])
        if kept:
            self.json["equivalences"] = [[str(i) for i in g] for g in kept]
        else:
            self.json.pop("equivalences", None)

    def merge(self, *ids: int) -> None:
        """Merge segments ``ids`` (and whatever they are already merged with) into one object."""
        self.equivalences = [*self.equivalences, set(ids)]


class AnnotationLayerState(LayerState):
    """An ``annotation`` layer."""

    color = _Field("annotationColor", "#ffff00", _color, "Colour of the annotations (``#rrggbb``).")
    shader = _Field("shader", None, _text, "Annotation shader code.")
    shader_controls: _Field[JSON] = _Field("shaderControls", {}, _plain, "Values of the shader's ``#uicontrol`` widgets.")



_LAYER_CLASSES: dict[str, type[LayerState]] = {
    "image": ImageLayerState,
    "segmentation": SegmentationLayerState,
    "annotation": AnnotationLayerState,
    "pointAnnotation": AnnotationLayerState,
    "localAnnotation": AnnotationLayerState,
}


def layer_state(entry: JSON) -> LayerState:
    """The typed view of one layer entry, by its ``type`` (unknown types get :class:`LayerState`)."""
    return _LAYER_CLASSES.get(str(entry.get("type")), LayerState)(entry)


def source_urls(source: Any) -> list[str]:
    """The URL of each data source in a layer's ``source`` value (string, dict or list of those)."""
    items = source if isinstance(source, list) else [source] if source is not None else []
    urls = []
    for item in items:
        url = item.get("url") if isinstance(item, dict) else item
        if isinstance(url, str):
            urls.append(url)
    return urls


class Layers(MutableMapping[str, LayerState]):
    """The state's layers by name, in drawing order (a live view over the ``layers`` list).

    >>> s.layers["seg"].opacity = 0.2
    >>> s.layers["copy"] = {"type": "image", "source": "precomputed://gs://bucket/em"}
    """

    def __init__(self, state: JSON) -> None:
        self._state = state  # the list is made on the first write, so reading changes nothing

    @property
    def _entries(self) -> list[JSON]:
        return self._state.get("layers", [])  # type: ignore[no-any-return]

    def _find(self, name: str) -> int:
        for i, entry in enumerate(self._entries):
            if entry.get("name") == name:
                return i
        raise KeyError(f"no layer named {name!r}; layers: {[e.get('name') for e in self._entries]}")

    def __getitem__(self, name: str) -> LayerState:
        return layer_state(self._entries[self._find(name)])

    def __setitem__(self, name: str, layer: LayerState | JSON) -> None:
        entry = copy.deepcopy(layer.json if isinstance(layer, LayerState) else dict(layer))
        entry["name"] = name
        try:
            self._entries[self._find(name)] = entry
        except KeyError:
            self._state.setdefault("layers", []).append(entry)

    def __delitem__(self, name: str) -> None:
        del self._entries[self._find(name)]

    def __iter__(self) -> Iterator[str]:
        return iter([str(e.get("name", "")) for e in self._entries])

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Layers({list(self)})"


# Layout names the client knows; a nested layout is a dict (see :func:`row_layout`).
LAYOUTS = ("xy", "xz", "yz", "3d", "4panel", "4panel-alt", "xy-3d", "xz-3d", "yz-3d")


def _layout(value: Any, layers: Sequence[str] = (), nested: bool = False) -> Any:
    """A checked layout.  Inside a row or column the client needs every panel to be a ``viewer`` with
    its layers, so bare panels there become viewers of ``layers``."""
    if isinstance(value, str):
        if value not in LAYOUTS:
            raise ValueError(f"layout must be one of {list(LAYOUTS)} or a nested layout dict, got {value!r}")
        return {"type": "viewer", "layout": value, "layers": list(layers)} if nested else value
    if isinstance(value, Mapping):
        kind = value.get("type")
        if kind in ("row", "column"):
            children = value.get("children")
            if not isinstance(children, list) or not children:
                raise ValueError(f"a {kind} layout needs a list of children")
            return {**value, "type": kind, "children": [_layout(c, layers, True) for c in children]}
        if kind == "viewer" or kind in LAYOUTS:
            panel = copy.deepcopy(dict(value))
            if nested and (kind != "viewer" or "layers" not in panel):
                panel = {**panel, "type": "viewer", "layout": panel.get("layout", kind), "layers": list(layers)}
            return panel
        raise ValueError(f"a layout dict needs type 'row', 'column', 'viewer' or a panel name, got {kind!r}")
    raise TypeError(f"layout must be a string or a dict, got {type(value).__name__}")


def panel_layout(kind: str = "xy", *, layers: Sequence[str] | None = None) -> JSON:
    """One panel of a nested layout, showing ``layers`` (default: every layer, when the layout is set)."""
    if kind not in LAYOUTS:
        raise InvalidState(f"panel kind must be one of {list(LAYOUTS)}, got {kind!r}")
    if layers is None:
        return {"type": kind}
    return {"type": "viewer", "layout": kind, "layers": list(layers)}


def row_layout(*children: str | JSON) -> JSON:
    """Panels side by side: ``row_layout("xy", panel_layout("3d", layers=["seg"]))``."""
    return _stack("row", children)


def column_layout(*children: str | JSON) -> JSON:
    """Panels stacked top to bottom."""
    return _stack("column", children)


def _stack(kind: str, children: Sequence[str | JSON]) -> JSON:
    layout = {"type": kind, "children": [_child(c) for c in children]}
    try:
        _layout(layout)  # checked now; bare panels get their layers when the layout is set
    except (TypeError, ValueError) as e:
        raise InvalidState(f"{kind}_layout: {e}") from None
    return layout


def _child(child: str | JSON) -> JSON:
    return {"type": child} if isinstance(child, str) else child


_PREFIXES = {"": 1.0, "k": 1e3, "c": 1e-2, "m": 1e-3, "u": 1e-6, "µ": 1e-6, "n": 1e-9, "p": 1e-12}


def _dimension(name: str, value: Any) -> list[Any]:
    """``(scale, unit)`` with any SI prefix, stored in base units as the client writes them."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*['^]?", name):
        raise ValueError(f"bad dimension name {name!r}")
    scale, unit = value
    scale = _positive(scale)
    unit = _text(unit)
    for base in ("m", "s", "Hz", "rad/s"):
        if unit.endswith(base) and unit[: -len(base)] in _PREFIXES:
            return [scale * _PREFIXES[unit[: -len(base)]], base]
    if unit == "":
        return [scale, ""]
    raise ValueError(f"dimension {name!r}: unit must be '' or an SI-prefixed m, s, Hz or rad/s, got {unit!r}")


def _dimensions(value: Any) -> JSON:
    return {str(name): _dimension(str(name), v) for name, v in dict(value).items()}


class ViewerState(_JsonView):
    """A typed view over Neuroglancer's viewer-state JSON; the raw dict is :attr:`json`.

    Snapshots (``viewer.state``) are copies: editing them changes nothing.  Inside ``viewer.txn()``
    the edits are pushed to the browser when the block ends.  Keys without an attribute here stay in
    :attr:`json` and round-trip unchanged.

    Zooms follow Neuroglancer: ``cross_section_scale`` is canonical voxels (the smallest displayed
    voxel size) per screen pixel, ``projection_scale`` canonical voxels per 3-D panel height.
    """

    dimensions: _Field[JSON] = _Field(
        "dimensions", {}, _dimensions,
        "Global coordinate space ``{name: [scale, unit]}`` in base units; set with any SI prefix, "
        "e.g. ``{'x': (4, 'nm'), 'y': (4, 'nm'), 'z': (40, 'nm')}``.",
    )
    position = _Field("position", None, _vector(None), "Cursor position, in voxels of ``dimensions``.")
    cross_section_scale = _Field("crossSectionScale", None, _positive, "2-D zoom: canonical voxels per pixel.")
    cross_section_orientation = _Field(
        "crossSectionOrientation", None, _quaternion, "2-D view rotation, a unit quaternion ``[x, y, z, w]``."
    )
    projection_scale = _Field("projectionScale", None, _positive, "3-D zoom: canonical voxels per panel height.")
    projection_orientation = _Field(
        "projectionOrientation", None, _quaternion, "3-D view rotation, a unit quaternion ``[x, y, z, w]``."
    )
    show_slices = _Field("showSlices", True, _bool, "Draw the 2-D sections inside the 3-D view.")
    show_axis_lines = _Field("showAxisLines", True, _bool, "Draw the red/green/blue axis lines.")
    show_scale_bar = _Field("showScaleBar", True, _bool, "Draw the scale bar in each panel.")
    show_default_annotations = _Field(
        "showDefaultAnnotations", True, _bool, "Draw each volume's bounding box."
    )

    @property
    def layout(self) -> Any:
        """``'xy'``, ``'4panel'``, ``'3d'``, … or a nested layout (:func:`row_layout`); panels of a nested
        layout that name no layers show every layer the state has when it is set."""
        return self.json.get("layout", "4panel")

    @layout.setter
    def layout(self, value: Any) -> None:
        try:
            self.json["layout"] = _layout(value, self.layer_names())
        except (TypeError, ValueError) as e:
            raise InvalidState(f"layout: {e}") from None

    @property
    def layers(self) -> Layers:
        """Layers by name (typed, live views over the JSON)."""
        return Layers(self.json)

    def layer_names(self) -> list[str]:
        return list(self.layers)

    @property
    def layer_panel(self) -> str | None:
        """Name of the layer whose side panel is open (``None``: closed)."""
        selected = self.json.get("selectedLayer") or {}
        return selected.get("layer") if selected.get("visible") else None

    @layer_panel.setter
    def layer_panel(self, name: str | None) -> None:
        if name is None:
            self.json.pop("selectedLayer", None)
            return
        if name not in self.layers:
            raise KeyError(f"no layer named {name!r}; layers: {self.layer_names()}")
        self.json["selectedLayer"] = {**(self.json.get("selectedLayer") or {}), "layer": name, "visible": True}

    @property
    def layer_list_panel(self) -> bool:
        """The panel that lists every layer is open."""
        return bool((self.json.get("layerListPanel") or {}).get("visible", False))

    @layer_list_panel.setter
    def layer_list_panel(self, visible: bool) -> None:
        self.json["layerListPanel"] = {**(self.json.get("layerListPanel") or {}), "visible": _bool(visible)}

    def copy(self) -> ViewerState:
        """An independent copy."""
        return ViewerState(copy.deepcopy(self.json))

    def selected_segments(self, layer: str) -> set[int]:
        """Segment ids shown in a segmentation layer (hidden ones, written ``!id``, left out)."""
        entry = self.layers.get(layer)
        return entry.segments if isinstance(entry, SegmentationLayerState) else set()

    def select_segments(self, layer: str, ids: Iterable[int]) -> None:
        """Show exactly ``ids`` in a segmentation layer."""
        entry = self.layers[layer]
        entry.json["segments"] = [str(int(i)) for i in sorted(ids)]

    def annotations(self, layer: str) -> Any:
        """The annotations of a local annotation layer as a pandas DataFrame, with what the user drew
        or edited in the browser (see :func:`ngshow.annotations.annotations_frame` for the columns)."""
        from .annotations import annotations_frame

        try:
            target = self.layers[layer].json
        except KeyError:
            raise KeyError(f"no layer named {layer!r}; layers: {self.layer_names()}") from None
        if target.get("type") != "annotation" and "annotations" not in target:
            raise KeyError(f"layer {layer!r} is not an annotation layer")
        return annotations_frame(getattr(target, "json", target))


# -- default views -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Box:
    """Where a layer's data lies: ``lower``/``upper`` in voxels of ``dimensions`` (``{name: [scale, unit]}``)."""

    dimensions: Mapping[str, Sequence[Any]]
    lower: Sequence[float]
    upper: Sequence[float]


#: Pixels the data's longest side spans in a 2-D panel of a default view (a 4-panel layout's panel in a
#: 1024x768 window is about 500x370 pixels).
FIT_PIXELS = 320

#: The 3-D view's height over the data's longest side in a default view (the client rounds the side up
#: to a power of two, so its framing jumps between about 50% and 100%).
PROJECTION_MARGIN = 1.5


def annotation_box(entry: JSON) -> Box | None:
    """The box around a ``local://annotations`` layer's annotations, if it has any and says its units."""
    source = entry.get("source")
    output = (source.get("transform") or {}).get("outputDimensions") if isinstance(source, dict) else None
    if not output:
        return None
    rank = len(output)
    points: list[list[float]] = []
    for annotation in entry.get("annotations", []):
        if "center" in annotation and "radii" in annotation:
            c, r = annotation["center"], annotation["radii"]
            points += [[a - b for a, b in zip(c, r)], [a + b for a, b in zip(c, r)]]
        points += [annotation[k] for k in ("point", "pointA", "pointB") if k in annotation]
    points = [p for p in points if len(p) == rank]
    if not points:
        return None
    lower = [min(p[i] for p in points) for i in range(rank)]
    upper = [max(p[i] for p in points) + 1 for i in range(rank)]  # a voxel around each point
    return Box(output, lower, upper)


def volume_box(info: JSON) -> Box:
    """The box of a ``python://`` volume from the info JSON it serves (PROTOCOL.md §3.2)."""
    offset = [float(v) for v in info["voxelOffset"]]
    return Box(info["coordinateSpace"], offset, [o + float(n) for o, n in zip(offset, info["shape"])])


def precomputed_box(info: JSON) -> Box:
    """The box of a precomputed volume from its ``info`` (scale 0, resolution in nm)."""
    scale = info["scales"][0]
    offset = [float(v) for v in scale.get("voxel_offset", [0, 0, 0])]
    dimensions = {name: [float(r) * 1e-9, "m"] for name, r in zip("xyz", scale["resolution"])}
    return Box(dimensions, offset, [o + float(s) for o, s in zip(offset, scale["size"])])


def fill_view_defaults(state: JSON, boxes: Sequence[Box]) -> None:
    """Fill the view keys the state lacks so the view fits ``boxes`` before any browser has seen it.

    Without ``dimensions`` the client reads a zoom set from Python as metres per pixel and only later
    learns the layers' units; without a position an annotation layer opens at the origin.  So: the
    layers' coordinate space (first layer's scale per name, local ``c^`` dimensions left out), the
    centre of their union as the position, and zooms at which the union fits in 2-D and 3-D panels.
    Keys already present are kept.
    """
    if not boxes:
        return
    merged: dict[str, list[Any]] = {}
    for box in boxes:
        for name, value in box.dimensions.items():
            if not name.endswith(("^", "'")) and name not in merged:
                merged[name] = [float(value[0]), str(value[1])]
    dimensions: dict[str, Any] = state.get("dimensions") or {}
    added = [name for name in merged if name not in dimensions]
    if not dimensions and not added:
        return
    # Like the client, a layer's new dimension joins the global space (and the position, at its centre).
    old_rank = len(dimensions)
    dimensions = state["dimensions"] = {**dimensions, **{name: merged[name] for name in added}}
    names = list(dimensions)
    lower = [math.inf] * len(names)
    upper = [-math.inf] * len(names)
    for box in boxes:
        for axis, name in enumerate(box.dimensions):
            if name in dimensions:
                i = names.index(name)
                factor = float(box.dimensions[name][0]) / float(dimensions[name][0])
                lower[i] = min(lower[i], float(box.lower[axis]) * factor)
                upper[i] = max(upper[i], float(box.upper[axis]) * factor)
    known = [i for i in range(len(names)) if math.isfinite(lower[i])]
    # The client's own default: the centre, snapped to a voxel centre.
    centre = [math.floor((lower[i] + upper[i]) / 2) + 0.5 if i in known else 0.5 for i in range(len(names))]
    if "position" not in state:
        state["position"] = centre
    elif added and len(state["position"]) == old_rank:
        state["position"] = [*state["position"], *centre[old_rank:]]
    shown = [i for i in range(len(names)) if names[i] in state.get("displayDimensions", names[:3])]
    shown = [i for i in shown if i in known]
    if not shown:
        return
    canonical = min(float(dimensions[names[i]][0]) for i in shown)
    extent = max((upper[i] - lower[i]) * float(dimensions[names[i]][0]) / canonical for i in shown)
    if extent > 0:
        state.setdefault("crossSectionScale", extent / FIT_PIXELS)
        # In perspective the near faces look bigger: a margin keeps the whole box in the 3-D panel.
        state.setdefault("projectionScale", extent * PROJECTION_MARGIN)
