"""Movies from keyframes: states with durations, interpolated frame by frame, rendered headless, encoded
with the ffmpeg that ``imageio-ffmpeg`` ships.

A keyframe's ``duration`` is the time (seconds) from it to the next keyframe; the last one's duration
(default 0) holds its view.  Between two keyframes the position moves linearly, orientations turn along
the shortest arc (slerp), zooms change geometrically and layer opacities linearly; everything else
switches at the start of each stretch.  Frames are taken at ``k / fps`` for ``k = 0 … round(total·fps)``,
so a movie has ``round(total·fps) + 1`` frames and ends exactly on its last keyframe.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import sharing
from .errors import InvalidState, NgshowError
from .state import ViewerState

if TYPE_CHECKING:
    from .viewer import Viewer

__all__ = ["Keyframe", "frame_states", "load_keyframes", "main", "record"]

logger = logging.getLogger(__name__)

# Per-layer numbers that fade linearly.
_FADING = ("opacity", "selectedAlpha", "notSelectedAlpha", "objectAlpha", "saturation")
_ZOOMS = ("crossSectionScale", "projectionScale")
_ORIENTATIONS = ("crossSectionOrientation", "projectionOrientation")


@dataclass(frozen=True)
class Keyframe:
    """A view and the seconds it takes to get from it to the next keyframe."""

    state: ViewerState
    duration: float = 0.0


def _keyframe(item: Any, index: int, last: bool, folder: Path | None) -> Keyframe:
    if isinstance(item, Keyframe):
        return item
    if not isinstance(item, Mapping):
        raise InvalidState(f"keyframe {index} must be an object with a state and a duration")
    duration = item.get("duration")
    if duration is None:
        if not last:
            raise InvalidState(f"keyframe {index} has no duration (seconds to the next keyframe)")
        duration = 0.0
    try:
        seconds = float(duration)
    except (TypeError, ValueError):
        raise InvalidState(f"keyframe {index}: duration must be a number of seconds, got {duration!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidState(f"keyframe {index}: duration must be >= 0 seconds, got {duration!r}")
    sources = [k for k in ("state", "url", "file") if k in item]
    if len(sources) != 1:
        raise InvalidState(f"keyframe {index} needs exactly one of 'state', 'url' or 'file'")
    if "state" in item:
        value = item["state"]
        state = value if isinstance(value, ViewerState) else sharing.check_state(value, where=f"keyframe {index}")
    elif "url" in item:
        state = sharing.parse_url(str(item["url"]))
    else:
        path = Path(str(item["file"]))
        state = sharing.load_state(folder / path if folder is not None and not path.is_absolute() else path)
    return Keyframe(state, seconds)


def load_keyframes(source: Any, *, folder: Path | None = None) -> tuple[list[Keyframe], dict[str, Any]]:
    """Keyframes (and settings such as ``fps``/``size``) from a list, a ``{"keyframes": [...]}`` object
    or a JSON file of either."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            source = json.loads(path.read_text())
        except OSError as e:
            raise InvalidState(f"cannot read keyframes {str(path)!r}: {e.strerror or e}") from None
        except json.JSONDecodeError as e:
            raise InvalidState(f"{path}: not valid JSON ({e})") from None
        folder = path.parent
    settings: dict[str, Any] = {}
    if isinstance(source, Mapping):
        settings = {k: v for k, v in source.items() if k != "keyframes"}
        source = source.get("keyframes")
    if not isinstance(source, Sequence) or isinstance(source, (str, bytes)) or len(source) < 1:
        raise InvalidState("keyframes must be a non-empty list of {state, duration} objects")
    frames = [_keyframe(item, i, i == len(source) - 1, folder) for i, item in enumerate(source)]
    return frames, settings


def _slerp(a: Sequence[float], b: Sequence[float], t: float) -> list[float]:
    qa, qb = np.asarray(a, float), np.asarray(b, float)
    qa, qb = qa / np.linalg.norm(qa), qb / np.linalg.norm(qb)
    dot = float(qa @ qb)
    if dot < 0:  # q and -q are the same rotation: take the short way round
        qb, dot = -qb, -dot
    if dot > 0.9995:
        q = qa + t * (qb - qa)
    else:
        angle = math.acos(dot)
        q = (math.sin((1 - t) * angle) * qa + math.sin(t * angle) * qb) / math.sin(angle)
    return [float(v) for v in q / np.linalg.norm(q)]


def interpolate(a: Mapping[str, Any], b: Mapping[str, Any], t: float) -> dict[str, Any]:
    """The state a fraction ``t`` (0 to 1) of the way from ``a`` to ``b``."""
    state = copy.deepcopy(dict(a))
    if t <= 0:
        return state
    if t >= 1:
        return copy.deepcopy(dict(b))
    pa, pb = a.get("position"), b.get("position")
    if pa is not None and pb is not None and len(pa) == len(pb) and a.get("dimensions") == b.get("dimensions"):
        state["position"] = [float(x) + t * (float(y) - float(x)) for x, y in zip(pa, pb)]
    for key in _ZOOMS:
        if key in a and key in b:
            state[key] = float(a[key]) * (float(b[key]) / float(a[key])) ** t
    for key in _ORIENTATIONS:
        qa, qb = a.get(key, [0, 0, 0, 1]), b.get(key, [0, 0, 0, 1])
        if key in a or key in b:
            state[key] = _slerp(qa, qb, t)
    after = {layer.get("name"): layer for layer in b.get("layers", [])}
    for layer in state.get("layers", []):
        other = after.get(layer.get("name"))
        if other is None:
            continue
        for key in _FADING:
            if key in layer and key in other:
                layer[key] = float(layer[key]) + t * (float(other[key]) - float(layer[key]))
    return state


def frame_count(keyframes: Sequence[Keyframe], fps: float) -> int:
    """``round(total seconds · fps) + 1``."""
    return round(sum(k.duration for k in keyframes) * fps) + 1


def frame_states(keyframes: Sequence[Keyframe], fps: float) -> Iterator[dict[str, Any]]:
    """The state of every frame, in order."""
    if not (math.isfinite(fps) and fps > 0):
        raise InvalidState(f"fps must be > 0, got {fps!r}")
    starts = np.cumsum([0.0] + [k.duration for k in keyframes[:-1]])
    for index in range(frame_count(keyframes, fps)):
        time = index / fps
        i = int(np.searchsorted(starts, time, side="right")) - 1
        if i >= len(keyframes) - 1 or keyframes[i].duration == 0:
            yield copy.deepcopy(keyframes[min(i, len(keyframes) - 1)].state.json)
        else:
            t = (time - starts[i]) / keyframes[i].duration
            yield interpolate(keyframes[i].state.json, keyframes[i + 1].state.json, t)


def _check_video_size(size: Sequence[int]) -> tuple[int, int]:
    from .figures import check_size

    width, height = check_size(size)
    if width % 2 or height % 2:
        raise InvalidState(f"movie sizes must be even (H.264 halves the colour resolution), got {width}x{height}")
    return width, height


def record(
    viewer: Viewer,
    keyframes: Sequence[Keyframe | Mapping[str, Any]] | str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    fps: float = 24.0,
    size: Sequence[int] = (1280, 720),
    quality: float = 8.0,
    progress: bool = True,
    timeout: float = 120.0,
) -> int:
    """Render ``keyframes`` in ``viewer`` frame by frame and encode them to ``path`` (``.mp4``, H.264).

    Each keyframe's state is laid over the viewer's own (see
    :func:`ngshow.sharing.merge_saved_state`), so a keyframe may hold just a position and zoom, and
    layers this process serves are matched by name.  Each frame is taken once the page has drawn every
    visible chunk.  Returns the number of frames written.
    """
    try:
        import imageio_ffmpeg
    except ImportError:
        raise NgshowError("movies need imageio-ffmpeg: pip install 'ngshow[movie]'") from None
    from contextlib import ExitStack

    from . import screenshots
    from .figures import _decode, _draw_tile

    if isinstance(keyframes, (str, os.PathLike)):
        frames, settings = load_keyframes(Path(keyframes))
    else:
        frames, settings = load_keyframes(list(keyframes))
    fps = float(settings.get("fps", fps))
    width, height = _check_video_size(settings.get("size", size))
    base, _ = viewer.documents["s"].snapshot()
    frames = [Keyframe(ViewerState(sharing.merge_saved_state(base, k.state)), k.duration) for k in frames]
    # The view every frame starts from must carry the defaults a browser would pick (position, zooms).
    completed = []
    for k in frames:
        viewer.documents["s"].set(k.state.json)
        completed.append(Keyframe(ViewerState(viewer.documents["s"].snapshot()[0]), k.duration))
    total = frame_count(completed, fps)
    from tqdm.auto import tqdm

    writer = imageio_ffmpeg.write_frames(
        str(path), (width, height), fps=fps, quality=quality, macro_block_size=1, pix_fmt_out="yuv420p"
    )
    writer.send(None)  # start ffmpeg
    written = 0
    try:
        with ExitStack() as stack:
            if not viewer.connected_clients():
                stack.enter_context(screenshots.headless_page(viewer.url, (width, height)))
            bar = stack.enter_context(tqdm(total=total, unit="frame", disable=not progress, desc="ngshow movie"))
            for state in frame_states(completed, fps):
                pixels = _draw_tile(viewer, state, (width, height), timeout)
                writer.send(np.ascontiguousarray(pixels).tobytes())
                written += 1
                bar.update(1)
    finally:
        writer.close()
        viewer.documents["s"].set(base)
    logger.info("wrote %d frames (%dx%d at %g fps) to %s", written, width, height, fps, path)
    return written


def main(argv: Sequence[str]) -> int:
    """``ngshow movie KEYFRAMES OUT.mp4 [FILE ...]``."""
    from .cli import _size, _voxel_size

    parser = argparse.ArgumentParser(
        prog="ngshow movie",
        description="Render a movie from keyframes (states with durations) in headless Chromium.",
        epilog='KEYFRAMES is JSON: {"fps": 24, "size": [1280, 720], "keyframes": [{"state": {...}, "duration": 2}, '
        '{"url": "https://...#!{...}", "duration": 1}, {"file": "view.json"}]}. Layers in the states that '
        "ngshow served are matched by name to the FILEs given here.",
    )
    parser.add_argument("keyframes", metavar="KEYFRAMES", help="keyframes JSON file")
    parser.add_argument("output", metavar="OUT.mp4", help="the movie to write")
    parser.add_argument("files", nargs="*", metavar="FILE", help="arrays to show (named as in the keyframes)")
    parser.add_argument("--fps", type=float, default=None, help="frames per second (default: the file's, else 24)")
    parser.add_argument("--size", type=_size, default=None, metavar="WxH", help="frame size (default: the file's, else 1280x720)")
    parser.add_argument("--voxel-size", type=_voxel_size, metavar="X,Y,Z", help="voxel size in nm for FILEs")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    import ngshow
    from .readers import open_array

    try:
        frames, settings = load_keyframes(args.keyframes)
        fps = args.fps or float(settings.get("fps", 24))
        size = args.size or tuple(settings.get("size", (1280, 720)))
        _check_video_size(size)
        opened = [open_array(spec) for spec in args.files]
        viewer = ngshow.Viewer()
        for item in opened:  # as the viewer command does: the file's axes, sizes, shader and labels
            viewer.add(item, voxel_size=args.voxel_size)
        count = record(viewer, frames, args.output, fps=fps, size=size, progress=not args.no_progress)
    except (NgshowError, OSError, TimeoutError) as e:
        print(f"ngshow movie: error: {e}", file=sys.stderr)
        return 2
    finally:
        ngshow.stop()
    print(f"wrote {count} frames to {args.output}")
    return 0
