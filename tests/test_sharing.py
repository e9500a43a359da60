"""Shareable views: URLs and state files, checked against PyPI ``neuroglancer``'s own to_url/parse_url."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import neuroglancer
import numpy as np
import pytest

import ngshow
from ngshow.errors import InvalidState, LocalDataWarning
from ngshow.sharing import local_layers, merge_saved_state

from .conftest import interrupt

BASE = "https://neuroglancer.example.org/v/1/"


def test_parse_url_of_to_url_is_the_viewer_state(viewer: ngshow.Viewer) -> None:
    viewer.add(np.zeros((4, 8, 8), np.uint8), name="img")
    viewer.add_annotations("point", [[1, 2, 3]], name="pts")
    viewer.add_precomputed("gs://bucket/em", name="em", through_ngshow=False)  # the link names the bucket
    with viewer.txn() as s:
        s.layers["img"].opacity = 0.3
        s.layers["em"].type = "image"  # PyPI neuroglancer needs a type; the client would look it up
        s.layers["em"].shader_controls = {"normalized": {"range": [0, 1]}}
        s.layout = "xy-3d"
        s.json["someNewKey"] = {"kept": "as is", "text": "a b#c?d%e'\"ü"}
    with pytest.warns(LocalDataWarning, match=r"\['img'\]"):  # only the array: the others travel
        url = viewer.to_url(base=BASE)
    assert url.startswith(BASE + "#!%7B") and " " not in url
    assert ngshow.parse_url(url) == viewer.state
    assert ngshow.parse_url(ngshow.to_url(viewer.state)).json == viewer.state.json  # the default base
    # PyPI neuroglancer reads our link to the same layers, position and layout.
    theirs = neuroglancer.parse_url(url)
    assert [layer.name for layer in theirs.layers] == ["img", "pts", "em"]
    assert theirs.layers["img"].opacity == pytest.approx(0.3)
    assert list(theirs.position) == viewer.state.position and theirs.layout.type == "xy-3d"
    assert len(theirs.layers["pts"].annotations) == 1


def test_a_url_made_by_pypi_neuroglancer_parses_to_the_same_view() -> None:
    state = neuroglancer.ViewerState()
    state.dimensions = neuroglancer.CoordinateSpace(names=["x", "y", "z"], units="nm", scales=[4, 4, 40])
    state.position = [100.5, 200.5, 30.5]
    state.cross_section_scale = 2.5
    state.layers["em"] = neuroglancer.ImageLayer(source="precomputed://gs://bucket/em", opacity=0.3)
    state.layers["seg"] = neuroglancer.SegmentationLayer(
        source="zarr://https://host/seg.zarr", segments=[5, 7], equivalences=[[5, 9]]
    )
    state.layout = neuroglancer.row_layout(
        [neuroglancer.LayerGroupViewer(layers=["em"], layout="xy"), neuroglancer.LayerGroupViewer(layers=["seg"], layout="3d")]
    )
    ours = ngshow.parse_url(neuroglancer.to_url(state, prefix="https://host/"))
    assert list(ours.layers) == ["em", "seg"] and ours.position == [100.5, 200.5, 30.5]
    assert ours.dimensions == {"x": [4e-9, "m"], "y": [4e-9, "m"], "z": [4e-8, "m"]}
    assert ours.cross_section_scale == 2.5
    assert ours.layers["em"].opacity == pytest.approx(0.3) and ours.layers["em"].source_urls == ["precomputed://gs://bucket/em"]
    seg = ours.layers["seg"]
    assert seg.segments == {5, 7} and seg.equivalences == [{5, 9}]  # type: ignore[attr-defined]
    assert ours.layout["type"] == "row" and [c["layers"] for c in ours.layout["children"]] == [["em"], ["seg"]]
    assert local_layers(ours) == []  # everything in it is reachable from anywhere
    # ... and the same state survives our to_url back into their parser.
    assert neuroglancer.parse_url(ngshow.to_url(ours)).to_json() == state.to_json()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://host/v/1/", "no state fragment"),
        ("https://host/#!", "no state fragment"),
        ("https://host/#!%7Bnot json", "not valid JSON"),
        ("https://host/#![1,2]", "JSON object"),
        ('https://host/#!{"layers":[{"name":"a","type":"hologram","source":"x"}]}', "unknown type 'hologram'"),
        ('https://host/#!{"layers":[{"type":"image","source":"x"}]}', "layer 0 has no name"),
        ('https://host/#!{"layers":[{"name":"a"}]}', "neither a type nor a source"),
        ('https://host/#!{"layers":[{"name":"a","source":"x"},{"name":"a","source":"y"}]}', "two layers"),
    ],
)
def test_bad_urls_get_clear_errors(url: str, message: str) -> None:
    with pytest.raises(InvalidState, match=message):
        ngshow.parse_url(url)


def test_state_files_round_trip_and_bad_files_say_why(viewer: ngshow.Viewer, tmp_path: Path) -> None:
    viewer.add_annotations("box", [[0, 0, 0]], [[5, 5, 5]], name="roi")
    with viewer.txn() as s:
        s.layers["roi"].color = "#00ff00"
    viewer.save_state(tmp_path / "view.json")
    assert [p.name for p in tmp_path.iterdir()] == ["view.json"]  # no temporary file left behind
    assert ngshow.load_state(tmp_path / "view.json") == viewer.state
    assert json.loads((tmp_path / "view.json").read_text()) == viewer.state.json
    (tmp_path / "link.txt").write_text(ngshow.to_url(viewer.state) + "\n")  # a file holding a link
    assert ngshow.load_state(tmp_path / "link.txt") == viewer.state
    assert ngshow.load_state(ngshow.to_url(viewer.state)) == viewer.state
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(InvalidState, match="bad.json: not valid JSON"):
        ngshow.load_state(tmp_path / "bad.json")
    with pytest.raises(InvalidState, match="cannot read state file"):
        ngshow.load_state(tmp_path / "missing.json")


def test_a_saved_view_reopens_on_new_arrays_and_remote_sources_stay(
    viewer: ngshow.Viewer, caplog: pytest.LogCaptureFixture
) -> None:
    saved = {
        "position": [1.5, 2.5, 3.5],
        "layout": "xz",
        "layers": [
            {"type": "image", "name": "img", "source": "python://volume/old.key", "opacity": 0.7},
            {"type": "image", "name": "gone", "source": "python://volume/old.key2"},
            {"type": "segmentation", "name": "remote", "source": "n5://https://host/seg.n5", "segments": ["3"]},
        ],
    }
    viewer.add(np.zeros((4, 8, 8), np.uint8), name="img")
    viewer.add(np.zeros((4, 8, 8), np.uint8), name="other")
    with caplog.at_level(logging.WARNING, logger="ngshow.sharing"):
        viewer.apply_state(saved)
    assert "'gone' used data served by another process" in caplog.text
    state = viewer.state
    assert list(state.layers) == ["img", "remote", "other"] and state.position == [1.5, 2.5, 3.5]
    assert state.layers["img"].source == f"python://volume/{viewer.layers['img'].key}"
    assert state.layers["img"].opacity == 0.7 and state.layout == "xz"
    assert state.layers["remote"].json == saved["layers"][2]  # type: ignore[index]
    assert merge_saved_state({}, {"layers": []}) == {"layers": []}


def test_remote_sources_become_layers_as_they_are(viewer: ngshow.Viewer) -> None:
    for location in ("zarr://https://host/a.zarr", "n5://gs://bucket/b.n5", "precomputed://s3://bucket/c"):
        viewer.add_precomputed(location, name=location.split("/")[-1], through_ngshow=False)
    viewer.add_precomputed("gs://bucket/d", name="d", through_ngshow=False)
    viewer.add_precomputed("https://host/e", name="e")
    sources = [layer.source for layer in viewer.state.layers.values()]
    assert sources == [
        "zarr://https://host/a.zarr", "n5://gs://bucket/b.n5", "precomputed://s3://bucket/c",
        "precomputed://gs://bucket/d", "precomputed://https://host/e",
    ]


def test_cli_opens_a_file_with_a_saved_view(tmp_path: Path) -> None:
    np.save(tmp_path / "em.npy", np.zeros((4, 16, 16), np.uint8))
    (tmp_path / "view.json").write_text(json.dumps({
        "layout": "yz", "position": [3.5, 4.5, 1.5], "crossSectionScale": 0.25,
        "layers": [{"type": "image", "name": "em", "source": "python://volume/x.y", "opacity": 0.9},
                   {"type": "image", "name": "ref", "source": "precomputed://gs://bucket/ref"}],
    }))
    proc = subprocess.Popen(
        [sys.executable, "-m", "ngshow", str(tmp_path / "em.npy"), "--state", str(tmp_path / "view.json"), "--no-browser"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if re.match(r"http://127\.0\.0\.1:\d+/v/[0-9a-f]{40}/$", line.strip()):
                break
        url = line.strip()
        # The state the page gets: the first server-sent event for a new client.
        events = url.replace("/v/", "/events/").rstrip("/") + "?c=test&gs="
        with urllib.request.urlopen(events, timeout=30) as stream:
            data = next(line for line in stream if line.startswith(b"data: "))
        state = ngshow.ViewerState(json.loads(data[6:])["s"])
        assert state.layout == "yz" and state.position == [3.5, 4.5, 1.5] and state.cross_section_scale == 0.25
        assert list(state.layers) == ["em", "ref"] and state.layers["em"].opacity == 0.9
        assert str(state.layers["em"].source).startswith("python://volume/") and "x.y" not in str(state.layers["em"].source)
    finally:
        code = interrupt(proc)
    assert code == 0


def test_cli_bad_state_is_one_line_exit_2(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"layers": [{"name": "a", "type": "hologram", "source": "x"}]}')
    for state in (str(tmp_path / "bad.json"), str(tmp_path / "missing.json"), "https://host/no-fragment"):
        result = subprocess.run(
            [sys.executable, "-m", "ngshow", "--state", state, "--no-browser"], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith("ngshow: error:") and "Traceback" not in result.stderr
