"""Viewer state shared with the browser: JSON documents with generations (PROTOCOL.md §2).

A :class:`SyncedDocument` holds one JSON document and its generation string.  Python edits get a fresh
random generation; a browser edit is accepted only if it was based on the current generation, and then
takes the generation ``"<clientId>/<count>"`` so the server never echoes it back to that browser.
:class:`ViewerState` is a thin, typed view over the viewer-state JSON.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .errors import Conflict, InvalidRequest
from .tokens import new_token

__all__ = ["SyncedDocument", "ViewerState"]

JSON = dict[str, Any]


def _new_generation() -> str:
    # No "/" in it, so it can never look like a browser's "<clientId>/<count>" generation.
    return new_token()


class SyncedDocument:
    """A JSON document with a generation, safe to use from any thread.

    ``on_change`` is called (with no lock held) after every change, from the thread that made it.
    """

    def __init__(self, value: JSON | None = None) -> None:
        self._lock = threading.Lock()
        self._value: JSON = copy.deepcopy(value) if value else {}
        self._generation = _new_generation()
        self.on_change: list[Callable[[], None]] = []

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
        with self._lock:
            self._value = copy.deepcopy(value)
            self._generation = _new_generation()
            generation = self._generation
        self._notify()
        return generation

    def update(self, edit: Callable[[JSON], None]) -> bool:
        """Apply ``edit`` to a copy of the document; store it (new generation) if it changed."""
        with self._lock:
            value = copy.deepcopy(self._value)
            edit(value)
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


def _segment_id(text: str) -> int:
    return int(str(text).lstrip("!"))


class ViewerState:
    """A typed view over Neuroglancer's viewer-state JSON; the raw dict is :attr:`json`.

    Snapshots (``viewer.state``) are copies: editing them changes nothing.  Inside ``viewer.txn()``
    the edits are pushed to the browser when the block ends.
    """

    def __init__(self, json_state: JSON | None = None) -> None:
        self.json: JSON = json_state if json_state is not None else {}

    def __repr__(self) -> str:
        return f"ViewerState({json.dumps(self.json)[:200]})"

    @property
    def layers(self) -> Mapping[str, JSON]:
        """Layer JSON by name (dicts are live inside a txn)."""
        return {layer["name"]: layer for layer in self.json.get("layers", []) if "name" in layer}

    def layer_names(self) -> list[str]:
        return [layer.get("name", "") for layer in self.json.get("layers", [])]

    @property
    def position(self) -> list[float] | None:
        """The cursor position in global coordinates (voxels, in the order of ``dimensions``)."""
        value = self.json.get("position")
        return [float(v) for v in value] if value is not None else None

    @position.setter
    def position(self, value: Iterator[float] | list[float] | tuple[float, ...]) -> None:
        self.json["position"] = [float(v) for v in value]

    @property
    def layout(self) -> Any:
        """``"xy"``, ``"4panel"``, ``"3d"``, … (or a layout dict)."""
        return self.json.get("layout", "4panel")

    @layout.setter
    def layout(self, value: Any) -> None:
        self.json["layout"] = value

    @property
    def cross_section_scale(self) -> float | None:
        """Zoom of the 2-D views, in global units per screen pixel."""
        value = self.json.get("crossSectionScale")
        return float(value) if value is not None else None

    @cross_section_scale.setter
    def cross_section_scale(self, value: float) -> None:
        self.json["crossSectionScale"] = float(value)

    def selected_segments(self, layer: str) -> set[int]:
        """Segment ids shown in a segmentation layer (hidden ones, written ``!id``, left out)."""
        segments = self.layers.get(layer, {}).get("segments", [])
        return {_segment_id(s) for s in segments if not str(s).startswith("!")}

    def select_segments(self, layer: str, ids: Iterator[int] | list[int] | set[int]) -> None:
        """Show exactly ``ids`` in a segmentation layer."""
        try:
            target = self.layers[layer]
        except KeyError:
            raise KeyError(f"no layer named {layer!r}; layers: {self.layer_names()}") from None
        target["segments"] = [str(int(i)) for i in sorted(ids)]

    def annotations(self, layer: str) -> Any:
        """The annotations of a local annotation layer as a pandas DataFrame, with what the user drew
        or edited in the browser (see :func:`ngshow.annotations.annotations_frame` for the columns)."""
        from .annotations import annotations_frame

        try:
            target = self.layers[layer]
        except KeyError:
            raise KeyError(f"no layer named {layer!r}; layers: {self.layer_names()}") from None
        if target.get("type") != "annotation" and "annotations" not in target:
            raise KeyError(f"layer {layer!r} is not an annotation layer")
        return annotations_frame(target)
