"""Typed viewer and layer state: attributes read and write the JSON, unknown keys survive, bad values
are refused, and a state made in Python gets a view that fits its layers."""

from __future__ import annotations

import json

import numpy as np
import pytest

import ngshow
from ngshow.errors import InvalidState
from ngshow.state import (
    FIT_PIXELS,
    PROJECTION_MARGIN,
    AnnotationLayerState,
    ImageLayerState,
    LayerState,
    SegmentationLayerState,
    ViewerState,
    column_layout,
    panel_layout,
    row_layout,
)

STATE = {
    "dimensions": {"x": [4e-9, "m"], "y": [4e-9, "m"], "z": [4e-8, "m"]},
    "position": [10, 20, 3],
    "layers": [
        {"type": "image", "name": "em", "source": "precomputed://gs://b/em", "futureKey": {"a": [1]}},
        {"type": "segmentation", "name": "seg", "source": {"url": "zarr://https://h/z", "transform": {}},
         "segments": ["5", "!7"], "segmentColors": {"5": "#ff0000"}},
        {"type": "annotation", "name": "pts", "source": "local://annotations", "annotations": []},
        {"type": "mesh", "name": "m", "source": "obj://https://h/m.obj"},
    ],
    "someNewViewerKey": [1, 2, 3],
}


def test_attributes_are_views_over_the_json_and_unknown_keys_round_trip() -> None:
    state = ViewerState(json.loads(json.dumps(STATE)))
    assert state.position == [10.0, 20.0, 3.0] and state.layout == "4panel"
    assert state.dimensions["z"] == [4e-8, "m"]
    assert list(state.layers) == ["em", "seg", "pts", "m"] and state.layer_names() == list(state.layers)
    em, seg, pts, mesh = (state.layers[n] for n in state.layers)
    assert type(em) is ImageLayerState and type(seg) is SegmentationLayerState
    assert type(pts) is AnnotationLayerState and type(mesh) is LayerState
    assert em.opacity == 0.5 and em.visible and em.blend == "default" and em.shader is None  # client defaults
    assert seg.source_urls == ["zarr://https://h/z"] and em["source"] == "precomputed://gs://b/em"
    assert seg.segments == {5} and seg.hidden_segments == {7} and seg.colors == {5: "#ff0000"}

    em.opacity, em.visible, em.blend = 0.25, False, "additive"
    em.shader_controls = {"normalized": {"range": [0, 10]}}
    seg.opacity = 0.8
    seg.hidden_segments = {5}
    seg.segments = {9, 7}
    seg.colors = {2**64 - 1: "#00ff00"}
    seg.merge(1, 2)
    seg.merge(2, 3)
    seg.merge(8, 9)
    pts.color = "#ff00ff"
    state.layout = row_layout("xy", panel_layout("3d", layers=["seg"]))
    state.cross_section_scale, state.projection_scale = 0.5, 300
    state.projection_orientation = [0, 0, 0, 2]
    state.show_slices = state.show_axis_lines = state.show_scale_bar = False
    state.layer_panel = "seg"
    state.layer_list_panel = True

    j = json.loads(json.dumps(state.json))  # everything set is plain JSON
    assert j["layers"][0] == {
        "type": "image", "name": "em", "source": "precomputed://gs://b/em", "futureKey": {"a": [1]},
        "opacity": 0.25, "visible": False, "blend": "additive", "shaderControls": {"normalized": {"range": [0, 10]}},
    }
    s = j["layers"][1]
    assert s["selectedAlpha"] == 0.8 and s["segments"] == ["!5", "7", "9"]  # hidden 5, shown 7 and 9
    assert s["segmentColors"] == {str(2**64 - 1): "#00ff00"}
    assert s["equivalences"] == [["1", "2", "3"], ["8", "9"]]  # 2 joined the groups of 1 and 3
    assert j["layers"][2]["annotationColor"] == "#ff00ff"
    assert j["layout"] == {"type": "row", "children": [  # a bare panel in a row shows every layer
        {"type": "viewer", "layout": "xy", "layers": ["em", "seg", "pts", "m"]},
        {"type": "viewer", "layout": "3d", "layers": ["seg"]}]}
    assert j["projectionOrientation"] == [0, 0, 0, 1.0]  # normalised
    assert j["selectedLayer"] == {"layer": "seg", "visible": True} and j["layerListPanel"] == {"visible": True}
    assert j["someNewViewerKey"] == [1, 2, 3] and j["layers"][3] == STATE["layers"][3]  # type: ignore[index]
    assert ViewerState(j) == state and ViewerState(j).layers["seg"].equivalences == [{1, 2, 3}, {8, 9}]
    state.layer_panel = None
    assert "selectedLayer" not in state.json

    # Code written for the raw dicts keeps working.
    em.update(tab="rendering")
    assert em.pop("tab") == "rendering" and em.setdefault("blend", "x") == "additive" and "name" in dict(em.items())

    # The mapping: assign, replace and delete layers by name.
    state.layers["copy"] = em
    assert state.layers["copy"].name == "copy" and state.layers["copy"].opacity == 0.25
    del state.layers["m"]
    assert list(state.layers) == ["em", "seg", "pts", "copy"]
    state.layout = column_layout("xy", "xz")
    assert [c["layers"] for c in state.layout["children"]] == [["em", "seg", "pts", "copy"]] * 2


@pytest.mark.parametrize(
    ("attribute", "value", "message"),
    [
        ("opacity", 1.5, "from 0 to 1"),
        ("opacity", float("nan"), "finite"),
        ("blend", "multiply", "one of"),
        ("visible", "yes", "True or False"),
    ],
)
def test_bad_layer_values_are_refused_by_name(attribute: str, value: object, message: str) -> None:
    layer = ImageLayerState({"type": "image", "name": "a"})
    with pytest.raises(InvalidState, match=f"{attribute}: .*{message}"):
        setattr(layer, attribute, value)
    assert layer.json == {"type": "image", "name": "a"}


def test_misspelt_attributes_raise_instead_of_doing_nothing() -> None:
    with pytest.raises(AttributeError, match="'opactiy'.*'opacity'"):
        ImageLayerState({"type": "image"}).opactiy = 0.2  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="'shader'"):
        LayerState({"type": "mesh"}).shader = "void main() {}"  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="crossSectionScale"):
        ViewerState().crossSectionScale = 2  # type: ignore[attr-defined]


def test_bad_viewer_values_are_refused() -> None:
    state = ViewerState()
    with pytest.raises(InvalidState, match="layout: .*one of"):
        state.layout = "5panel"
    with pytest.raises(InvalidState, match="layout: .*children"):
        state.layout = {"type": "row", "children": []}
    with pytest.raises(InvalidState, match="cross_section_scale: .*> 0"):
        state.cross_section_scale = 0
    with pytest.raises(InvalidState, match="projection_orientation: .*4 numbers"):
        state.projection_orientation = [1, 0, 0]
    with pytest.raises(InvalidState, match="dimensions: .*unit"):
        state.dimensions = {"x": (4, "furlong")}
    with pytest.raises(KeyError, match="no layer named 'nope'"):
        state.layer_panel = "nope"
    seg = SegmentationLayerState({"type": "segmentation"})
    with pytest.raises(InvalidState, match="colors: .*colour"):
        seg.colors = {1: "red"}
    with pytest.raises(ValueError, match="uint64"):
        seg.segments = {-1}
    state.dimensions = {"x": (4, "nm"), "t": (2, "ms"), "c": (1, "")}
    assert state.json["dimensions"] == {"x": [4e-9, "m"], "t": [2e-3, "s"], "c": [1.0, ""]}
    assert state.json == {"dimensions": state.json["dimensions"]}  # failed assignments left nothing


def test_python_state_fits_the_layers_before_any_tab_opens(tmp_path: object) -> None:
    viewer = ngshow.Viewer()
    try:
        viewer.add(np.zeros((10, 64, 200), np.uint8), name="img", voxel_size=(4, 4, 40), offset=(100, 0, 0))
        state = viewer.state.json
        # The client's own coordinate space and centre, and zooms that fit the 200-voxel width.
        assert state["dimensions"] == {"x": [4e-9, "m"], "y": [4e-9, "m"], "z": [4e-8, "m"]}
        assert state["position"] == [200.5, 32.5, 5.5]
        assert state["crossSectionScale"] == pytest.approx(200 / FIT_PIXELS)
        # x is longest (z is 10 x 40 nm = 100 canonical voxels), with a margin for perspective.
        assert state["projectionScale"] == pytest.approx(200 * PROJECTION_MARGIN)
        # A zoom set before any tab opens is kept, and means canonical voxels from the start.
        with viewer.txn() as s:
            s.cross_section_scale = 0.5
            s.position = [1, 2, 3]
        viewer.add_annotations("point", [[1000, 500, 50]], name="far", voxel_size=(4, 4, 40))
        assert viewer.state.cross_section_scale == 0.5 and viewer.state.position == [1, 2, 3]
    finally:
        viewer.close()


def test_annotation_layer_alone_opens_at_its_annotations() -> None:
    viewer = ngshow.Viewer()
    try:
        viewer.add_annotations("box", [[100, 200, 10]], [[140, 260, 20]], name="roi", voxel_size=(8, 8, 40))
        state = viewer.state.json
        assert state["dimensions"] == {"x": [8e-9, "m"], "y": [8e-9, "m"], "z": [4e-8, "m"]}
        assert state["position"] == [120.5, 230.5, 15.5]  # not voxel (0, 0, 0)
        assert state["crossSectionScale"] == pytest.approx(61 / FIT_PIXELS)
    finally:
        viewer.close()


def test_a_layer_with_a_new_dimension_joins_the_space_and_the_position() -> None:
    viewer = ngshow.Viewer()
    try:
        viewer.add(np.zeros((4, 8, 16), np.uint8), name="fine", voxel_size=(4, 4, 40))
        with viewer.txn() as s:
            s.position = [1.5, 2.5, 3.5]
        viewer.add(np.zeros((5, 4, 8, 16), np.uint8), name="movie", axes="tzyx", scale=(2, 40, 4, 4),
                   units=("s", "nm", "nm", "nm"))
        state = viewer.state
        assert list(state.dimensions) == ["x", "y", "z", "t"] and state.dimensions["t"] == [2.0, "s"]
        assert state.position == [1.5, 2.5, 3.5, 2.5]  # kept, and t at the movie's middle frame
    finally:
        viewer.close()
