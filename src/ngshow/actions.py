"""Actions: named events the browser sends to Python, and the key/mouse bindings that fire them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .state import ViewerState

if TYPE_CHECKING:
    from .viewer import Viewer

__all__ = ["ActionState", "Actions", "VIEWS"]

#: Python names of the binding maps the client reads (PROTOCOL.md §2.5).
VIEWS = {
    "viewer": "viewer",
    "slice_view": "sliceView",
    "perspective_view": "perspectiveView",
    "data_view": "dataView",
}


def _value(raw: Any) -> Any:
    """A layer's value under the cursor: segment ids (decimal strings on the wire) become ints."""
    if isinstance(raw, dict):
        raw = raw.get("value", raw)
    if isinstance(raw, dict) and "key" in raw:  # a segment of an equivalence map: {key, value}
        raw = raw.get("value", raw["key"])
    if isinstance(raw, str) and raw.isdigit():
        return int(raw)
    return raw


@dataclass
class ActionState:
    """What the browser knew when it sent an action.

    Attributes
    ----------
    name : str
    mouse_voxel_coordinates : list[float] | None
        Pointer position in the viewer's global coordinates (in the order and units of the state's
        ``dimensions``, e.g. ``x, y, z, t``), or None when the pointer was not over a data view.
        :meth:`index_in` turns it into an index of a layer's array.
    selected_values : dict
        Value under the pointer per layer name (segment ids as ``int``).
    viewer_state : ViewerState
    raw : dict
        The JSON the browser sent.
    """

    name: str
    mouse_voxel_coordinates: list[float] | None
    selected_values: dict[str, Any]
    viewer_state: ViewerState
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, name: str, raw: dict[str, Any]) -> ActionState:
        position = raw.get("mousePosition")
        values = raw.get("selectedValues") or {}
        return cls(
            name=name,
            mouse_voxel_coordinates=[float(v) for v in position] if position is not None else None,
            selected_values={layer: _value(v) for layer, v in values.items()} if isinstance(values, dict) else {},
            viewer_state=ViewerState(raw.get("viewerState") or {}),
            raw=raw,
        )


    def index_in(self, layer: Any) -> list[float] | None:
        """The pointer's position as an index into ``layer``'s array (its own axis order), or None."""
        position = self.mouse_voxel_coordinates
        dimensions = self.viewer_state.json.get("dimensions")
        if position is None or not dimensions:
            return None
        return [float(v) for v in layer.index_at(position, dimensions)]


ActionCallback = Callable[[ActionState], None]


class Actions:
    """``viewer.actions``: register Python callbacks for named browser actions."""

    def __init__(self, viewer: Viewer) -> None:
        self._viewer = viewer
        self._callbacks: dict[str, list[ActionCallback]] = {}

    def add(self, name: str, callback: ActionCallback) -> None:
        """Call ``callback(ActionState)`` whenever the browser sends action ``name``."""
        self._callbacks.setdefault(name, []).append(callback)
        self._publish()

    def remove(self, name: str, callback: ActionCallback | None = None) -> None:
        """Forget one callback of ``name`` (or all of them)."""
        callbacks = self._callbacks.get(name, [])
        if callback is None:
            callbacks.clear()
        elif callback in callbacks:
            callbacks.remove(callback)
        if not callbacks:
            self._callbacks.pop(name, None)
        self._publish()

    def clear(self) -> None:
        self._callbacks.clear()
        self._publish()

    def __contains__(self, name: str) -> bool:
        return name in self._callbacks

    def dispatch(self, name: str, raw: dict[str, Any]) -> list[tuple[ActionCallback, ActionState]]:
        """The calls to make for one action the browser sent."""
        state = ActionState.from_json(name, raw)
        return [(callback, state) for callback in list(self._callbacks.get(name, []))]

    def _publish(self) -> None:
        names = sorted(self._callbacks)
        self._viewer.documents["c"].update(lambda c: c.__setitem__("actions", names))
