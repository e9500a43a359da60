"""The state model: generations, conflicts, echo-safe client generations, typed accessors."""

from __future__ import annotations

import pytest

from ngshow.errors import Conflict, InvalidRequest
from ngshow.state import SyncedDocument, ViewerState


def test_python_edits_get_fresh_opaque_generations() -> None:
    doc = SyncedDocument({"a": 1})
    changes: list[int] = []
    doc.on_change.append(lambda: changes.append(1))
    g0 = doc.generation
    g1 = doc.set({"a": 2})
    assert g1 != g0 and "/" not in g1 and len(g1) == 40
    assert not doc.update(lambda v: v.update(a=2))  # no change, no new generation
    assert doc.generation == g1
    assert doc.update(lambda v: v.update(b=3))
    assert doc.snapshot()[0] == {"a": 2, "b": 3} and len(changes) == 2


def test_client_edits_need_the_current_generation() -> None:
    doc = SyncedDocument()
    g = doc.generation
    with pytest.raises(Conflict):
        doc.set_from_client({"x": 1}, "", "client", 1)
    assert doc.set_from_client({"x": 1}, g, "client", 1) == "client/1"
    with pytest.raises(Conflict):
        doc.set_from_client({"x": 2}, g, "client", 2)
    with pytest.raises(InvalidRequest):
        doc.set_from_client({"x": 2}, "client/1", "a/b", 2)
    snapshot, generation = doc.snapshot()
    snapshot["x"] = 99  # a snapshot is a copy
    assert doc.snapshot() == ({"x": 1}, "client/1") and generation == "client/1"


def test_viewer_state_accessors() -> None:
    state = ViewerState(
        {
            "position": [1, 2.5, 3],
            "crossSectionScale": 2,
            "layout": "xy",
            "layers": [
                {"name": "img", "type": "image"},
                {"name": "seg", "type": "segmentation", "segments": ["5", "!7", "18446744073709551615"]},
            ],
        }
    )
    assert state.position == [1.0, 2.5, 3.0]
    assert state.cross_section_scale == 2.0 and state.layout == "xy"
    assert state.layer_names() == ["img", "seg"]
    assert state.selected_segments("seg") == {5, 2**64 - 1}  # "!7" is selected but hidden
    assert state.selected_segments("img") == set()
    state.select_segments("seg", [3, 1])
    assert state.json["layers"][1]["segments"] == ["1", "3"]
    with pytest.raises(KeyError, match="no layer named 'nope'"):
        state.select_segments("nope", [1])
    state.position = (4, 5, 6)
    assert state.json["position"] == [4.0, 5.0, 6.0]
    assert ViewerState().layout == "4panel" and ViewerState().position is None
