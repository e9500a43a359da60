"""Movie keyframes: interpolation of every kind of value, frame counts, and clear errors."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from ngshow.errors import InvalidState
from ngshow.movie import Keyframe, frame_count, frame_states, interpolate, load_keyframes
from ngshow.state import ViewerState

TURNED = [0.0, 0.0, math.sin(math.pi / 4), math.cos(math.pi / 4)]  # 90 degrees about z


def view(x: float, zoom: float, opacity: float, layout: str = "xy", orientation: list[float] | None = None) -> dict:  # type: ignore[type-arg]
    return {
        "dimensions": {"x": [1e-9, "m"], "y": [1e-9, "m"], "z": [1e-9, "m"]},
        "position": [x, 10.0, 2.0],
        "crossSectionScale": zoom,
        "projectionOrientation": orientation or [0.0, 0.0, 0.0, 1.0],
        "layout": layout,
        "layers": [{"type": "image", "name": "img", "source": "precomputed://gs://b/i", "opacity": opacity}],
    }


def test_interpolation_moves_zooms_turns_and_fades() -> None:
    a, b = view(0, 1.0, 1.0), view(100, 4.0, 0.0, layout="3d", orientation=TURNED)
    half = interpolate(a, b, 0.5)
    assert half["position"] == [50.0, 10.0, 2.0]
    assert half["crossSectionScale"] == pytest.approx(2.0)  # geometric: halfway in log zoom
    assert half["projectionOrientation"] == pytest.approx([0, 0, math.sin(math.pi / 8), math.cos(math.pi / 8)])
    assert half["layers"][0]["opacity"] == pytest.approx(0.5)
    assert half["layout"] == "xy"  # steps switch at the next keyframe
    assert interpolate(a, b, 0) == a and interpolate(a, b, 1) == b
    # The short way round: -q is the same rotation as q.
    flipped = interpolate(a, {**b, "projectionOrientation": [-v for v in TURNED]}, 0.5)
    assert flipped["projectionOrientation"] == pytest.approx(half["projectionOrientation"])


def test_frames_hit_every_keyframe_and_hold_the_last() -> None:
    keyframes = [
        Keyframe(ViewerState(view(0, 1, 1)), 1.0),
        Keyframe(ViewerState(view(40, 1, 1)), 0.5),
        Keyframe(ViewerState(view(40, 1, 0)), 0.5),  # the last one's duration holds it
    ]
    assert frame_count(keyframes, 4) == 9
    states = list(frame_states(keyframes, 4))
    assert len(states) == 9
    assert [s["position"][0] for s in states] == [0, 10, 20, 30, 40, 40, 40, 40, 40]
    assert [s["layers"][0]["opacity"] for s in states] == [1, 1, 1, 1, 1, 0.5, 0, 0, 0]
    with pytest.raises(InvalidState, match="fps"):
        list(frame_states(keyframes, 0))


def test_keyframe_files_and_their_errors(tmp_path: Path) -> None:
    (tmp_path / "v.json").write_text(json.dumps(view(5, 1, 1)))
    good = {"fps": 12, "keyframes": [{"file": "v.json", "duration": 1}, {"state": view(9, 2, 1)}]}
    (tmp_path / "k.json").write_text(json.dumps(good))
    frames, settings = load_keyframes(tmp_path / "k.json")
    assert settings == {"fps": 12} and [f.duration for f in frames] == [1.0, 0.0]
    assert frames[0].state.position == [5.0, 10.0, 2.0]
    cases = {
        "no duration": [{"state": view(0, 1, 1)}, {"state": view(1, 1, 1)}],
        ">= 0 seconds": [{"state": view(0, 1, 1), "duration": -1}, {"state": view(1, 1, 1)}],
        "exactly one of": [{"duration": 1}, {"state": view(1, 1, 1)}],
        "non-empty list": [],
        "unknown type": [{"state": {"layers": [{"name": "a", "type": "x", "source": "y"}]}, "duration": 1}],
        "no state fragment": [{"url": "https://host/", "duration": 1}],
    }
    for message, keyframes in cases.items():
        with pytest.raises(InvalidState, match=message):
            load_keyframes(keyframes)
    (tmp_path / "bad.json").write_text("[")
    with pytest.raises(InvalidState, match="not valid JSON"):
        load_keyframes(tmp_path / "bad.json")


def test_cli_movie_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "k.json").write_text(json.dumps([{"state": view(0, 1, 1)}, {"state": view(1, 1, 1)}]))
    (tmp_path / "ok.json").write_text(json.dumps([{"state": view(0, 1, 1), "duration": 1}, {"state": view(1, 1, 1)}]))
    for args in (["nowhere.json", "o.mp4"], [str(tmp_path / "k.json"), "o.mp4"],
                 [str(tmp_path / "ok.json"), "o.mp4", "--size", "321x240"]):
        result = subprocess.run([sys.executable, "-m", "ngshow", "movie", *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith("ngshow movie: error:")
        assert "Traceback" not in result.stderr
