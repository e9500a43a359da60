"""Local annotation layers: every kind, every property type, relationships, reading back."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import ngshow
from ngshow.annotations import annotation_table


def synapses() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": [1.0, 2.0, 3.0],
            "y": [4.0, 5.0, 6.0],
            "z": [7.0, 8.0, 9.0],
            "pre_id": np.array([7, 7, 9], np.int64),
            "post_id": np.array([11, 12, 7], np.int64),
            "score": [0.5, 0.25, 1.0],
            "count": np.array([1, 2, 70000], np.int64),
            "color": ["#ff0000", "#00ff00", "#0000ff"],
            "kind": pd.Categorical(["excitatory", "inhibitory", "excitatory"]),
            "note": ["a", "b", "c"],
        }
    )


def test_a_dataframe_becomes_a_layer_with_relationships_and_every_property_type(viewer: ngshow.Viewer) -> None:
    viewer.add_annotations(
        synapses(), kind="point", position=["x", "y", "z"], ids=np.array([10, 20, 30]),
        relationships={"pre": "pre_id", "post": "post_id"}, linked_segmentation="seg",
        properties=["score", "count", "color", "kind"], description="note", color_by="color",
        name="synapses", voxel_size=(4, 4, 40),
    )
    layer = viewer.state.layers["synapses"]
    assert layer["annotationRelationships"] == ["pre", "post"]
    assert layer["linkedSegmentationLayer"] == {"pre": "seg", "post": "seg"}
    assert layer["filterBySegmentation"] == ["post", "pre"]
    assert layer["annotationProperties"] == [
        {"id": "score", "type": "float32"},
        {"id": "count", "type": "uint32"},  # int64 narrowed: the values fit
        {"id": "color", "type": "rgb"},
        {"id": "kind", "type": "uint8", "enum_values": [0, 1], "enum_labels": ["excitatory", "inhibitory"]},
    ]
    assert "prop_color()" in layer["shader"]
    assert layer["annotations"][2] == {
        "type": "point", "id": "30", "point": [3.0, 6.0, 9.0], "description": "c",
        "segments": [["9"], ["7"]], "props": [1.0, 70000, "#0000ff", 0],
    }
    frame = viewer.state.annotations("synapses")
    assert list(frame["id"]) == ["10", "20", "30"]
    assert list(frame["x"]) == [1.0, 2.0, 3.0] and list(frame["z"]) == [7.0, 8.0, 9.0]
    assert list(frame["pre"]) == [[7], [7], [9]] and list(frame["post"]) == [[11], [12], [7]]
    assert list(frame["color"]) == ["#ff0000", "#00ff00", "#0000ff"]
    assert list(frame["kind"]) == [0, 1, 0] and list(frame["description"]) == ["a", "b", "c"]


def test_every_kind_and_the_short_form(viewer: ngshow.Viewer) -> None:
    viewer.add_annotations("line", [[0, 0, 0]], [[1, 2, 3]], name="line")
    viewer.add_annotations(kind="box", point_a=[[0, 0, 0]], point_b=[[4, 5, 6]], name="box")
    viewer.add_annotations(kind="ellipsoid", center=[[5, 5, 5]], radii=[[1, 2, 3]], name="ell")
    path = [np.array([[0, 0, 0], [10, 0, 0], [10, 10, 0]]), np.array([[1, 1, 1], [2, 2, 2]])]
    viewer.add_annotations(
        kind="polyline", points=path, name="path", relationships={"cell": [[3, 4], []]},
        properties={"rgba": np.array([[1, 2, 3, 4], [5, 6, 7, 8]], np.uint8)},
    )
    layers = viewer.state.layers
    assert layers["box"]["annotations"][0]["type"] == "axis_aligned_bounding_box"
    polyline = layers["path"]["annotations"]
    assert polyline[0]["points"] == [[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [10.0, 10.0, 0.0]]
    assert polyline[0]["segments"] == [["3", "4"]] and "segments" not in polyline[1]
    assert polyline[1]["props"] == ["#05060708"]
    assert "linkedSegmentationLayer" not in layers["path"]
    frames = {name: viewer.state.annotations(name) for name in ("line", "box", "ell", "path")}
    assert frames["line"].iloc[0][["a_x", "b_z"]].tolist() == [0.0, 3.0]
    assert frames["ell"].iloc[0][["center_y", "radii_z"]].tolist() == [5.0, 3.0]
    assert frames["path"]["points"][0].shape == (3, 3) and frames["path"]["cell"][0] == [3, 4]


def test_n_dimensional_annotations_and_browser_edits_come_back(viewer: ngshow.Viewer) -> None:
    viewer.add_annotations(
        kind="point", position=np.array([[1, 2, 3, 4]]), name="t",
        dimensions={"x": (4, "nm"), "y": (4, "nm"), "z": (40, "nm"), "t": (1, "s")},
    )
    assert viewer.state.layers["t"]["source"]["transform"]["outputDimensions"]["t"] == [1.0, "s"]
    # What the client stores after the user draws a point (its own id, no properties).
    with viewer.txn() as s:
        s.layers["t"]["annotations"].append({"type": "point", "id": "b3f1c2", "point": [5, 6, 7, 8]})
    frame = viewer.state.annotations("t")
    assert frame["id"].tolist() == ["1", "b3f1c2"] and frame["t"].tolist() == [4.0, 8.0]
    with pytest.raises(KeyError, match="no layer named"):
        viewer.state.annotations("nope")


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"kind": "point"}, "need position"),
        ({"kind": "point", "position": [[1, 2, 3]], "radii": [[1, 1, 1]]}, "not radii"),
        ({"kind": "line", "point_a": [[0, 0, 0]], "point_b": [[1, 1, 1], [2, 2, 2]]}, "one row per annotation"),
        ({"kind": "polyline", "points": [[[0, 0, 0]]]}, "at least two"),
        ({"kind": "point", "position": [[1, 2, 3]], "properties": {"Bad": [1]}}, "must match"),
        ({"kind": "point", "position": [[1, 2, 3]], "properties": {"c": ["red"]}}, "#rrggbb"),
        ({"kind": "point", "position": [[1, 2, 3]], "properties": {"v": [2**40]}}, "do not fit"),
        ({"kind": "point", "position": [[1, 2, 3]], "properties": {"v": [300]}, "property_types": {"v": "uint8"}}, "do not fit"),
        ({"kind": "point", "position": [[1, 2, 3]], "relationships": {"pre": [-1]}}, "non-negative"),
        ({"kind": "point", "position": [[1, 2, 3]], "relationships": {"pre": [1, 2]}}, "one entry per annotation"),
        ({"kind": "point", "position": [[1, 2, 3]], "enums": {"v": ["a"]}}, "not given"),
        ({"kind": "point", "position": "x"}, "needs a table"),
    ],
)
def test_bad_annotations_are_named(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(ngshow.InvalidArray, match=message):
        annotation_table(**arguments)  # type: ignore[arg-type]


def test_bad_layer_options_are_named(viewer: ngshow.Viewer) -> None:
    with pytest.raises(ngshow.InvalidArray, match="no column"):
        viewer.add_annotations(synapses(), position=["x", "y", "w"])
    with pytest.raises(ngshow.InvalidArray, match="rgb or rgba"):
        viewer.add_annotations(synapses(), position=["x", "y", "z"], properties=["score"], color_by="score")
    with pytest.raises(ngshow.InvalidArray, match="unknown relationships"):
        viewer.add_annotations(
            synapses(), position=["x", "y", "z"], relationships={"pre": "pre_id"}, linked_segmentation={"post": "seg"}
        )
