"""Publication figures: screenshots larger than a WebGL canvas, drawn as tiles and stitched.

Each tile is the same view with the position moved by the tile's offset (in the panel's own screen
directions, so rotated views tile too) and the canvas set to the tile's size; neighbouring tiles overlap
by a margin that is drawn twice and compared, so a seam would show up as a number, not just in the
picture.  Only the interior of each tile goes into the figure.
"""

from __future__ import annotations

import copy
import io
import logging
import math
import os
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from . import screenshots
from .errors import InvalidState

if TYPE_CHECKING:
    from .viewer import Viewer

__all__ = ["DEFAULT_TILE", "Figure", "check_size", "pixel_steps", "scale_bar_options", "screenshot", "tiled_screenshot"]

logger = logging.getLogger(__name__)

#: Largest canvas side drawn in one piece; bigger screenshots are tiled.
DEFAULT_TILE = 2048

# The client's scale bar options (config key ``scaleBarOptions``), by their Python names.
_SCALE_BAR_KEYS = {
    "scale_factor": "scaleFactor",
    "text_height_in_pixels": "textHeightInPixels",
    "bar_height_in_pixels": "barHeightInPixels",
    "bar_top_margin_in_pixels": "barTopMarginInPixels",
    "font_name": "fontName",
    "padding_in_pixels": "paddingInPixels",
    "max_width_in_pixels": "maxWidthInPixels",
    "max_width_fraction": "maxWidthFraction",
    "left_pixel_offset": "leftPixelOffset",
    "bottom_pixel_offset": "bottomPixelOffset",
}

# How each 2-D panel is turned relative to the cross-section orientation (the client's own table).
_HALF = math.sqrt(0.5)
_PANEL_ORIENTATION = {"xy": (0.0, 0.0, 0.0, 1.0), "xz": (_HALF, 0.0, 0.0, _HALF), "yz": (0.0, _HALF, 0.0, _HALF)}


@dataclass(frozen=True)
class Figure:
    """A stitched screenshot: the PNG, the tile grid, and the largest mean difference (0-255) between
    two tiles where they overlap (0 for a seamless figure)."""

    png: bytes
    tiles: tuple[int, int]
    seam_difference: float


def scale_bar_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The client's ``scaleBarOptions`` from Python names (``scale_factor=4``, …)."""
    unknown = sorted(set(options) - set(_SCALE_BAR_KEYS))
    if unknown:
        raise InvalidState(f"unknown scale bar options {unknown}; known: {sorted(_SCALE_BAR_KEYS)}")
    result: dict[str, Any] = {}
    for key, value in options.items():
        if key == "font_name":
            result[_SCALE_BAR_KEYS[key]] = str(value)
        else:
            number = float(value)
            if not math.isfinite(number) or number < 0:
                raise InvalidState(f"scale bar option {key} must be a number >= 0, got {value!r}")
            result[_SCALE_BAR_KEYS[key]] = number
    return result


def check_size(size: Sequence[int]) -> tuple[int, int]:
    """``(width, height)`` as positive ints that fit in memory; :class:`InvalidState` otherwise."""
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError):
        raise InvalidState(f"size must be (width, height) in pixels, got {size!r}") from None
    if width < 1 or height < 1:
        raise InvalidState(f"size must be positive, got {width}x{height}")
    needed = width * height * 3 * 3  # the stitched pixels, the image made from them, and the PNG
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        free = None
    if free is not None and needed > free:
        raise InvalidState(
            f"a {width}x{height} screenshot needs about {needed / 2**30:.1f} GiB of memory; "
            f"{free / 2**30:.1f} GiB are free"
        )
    return width, height


def _multiply(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float, float]:
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return (
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    )


def _rotate(q: Sequence[float], v: Sequence[float]) -> list[float]:
    x, y, z, w = q
    conjugate = (-x, -y, -z, w)
    return list(_multiply(_multiply(q, (*v, 0.0)), conjugate)[:3])


def _panel(layout: Any) -> str:
    kind = layout.get("type") if isinstance(layout, Mapping) else layout
    if isinstance(layout, Mapping) and kind == "viewer":
        kind = layout.get("layout")
    if kind not in _PANEL_ORIENTATION:
        raise InvalidState(
            f"screenshots larger than {DEFAULT_TILE} pixels are tiled, which needs a single 2-D panel "
            f"(layout 'xy', 'xz' or 'yz'); the layout is {layout!r}"
        )
    return str(kind)


def pixel_steps(state: Mapping[str, Any]) -> tuple[list[float], list[float]]:
    """How far (in voxels of each global dimension) one screen pixel right and one down move the view."""
    dimensions = state.get("dimensions")
    position = state.get("position")
    if not dimensions or position is None or len(position) != len(dimensions):
        raise InvalidState("a tiled screenshot needs the state's dimensions and position (add a layer first)")
    names = list(dimensions)
    shown = [names.index(n) for n in state.get("displayDimensions", names[:3]) if n in names]
    scales = [float(dimensions[names[i]][0]) for i in shown]
    canonical = min(scales)
    zoom = float(state.get("crossSectionScale", 1.0))
    orientation = _multiply(
        state.get("crossSectionOrientation", (0.0, 0.0, 0.0, 1.0)), _PANEL_ORIENTATION[_panel(state.get("layout"))]
    )
    steps = []
    for screen in ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)):
        direction = _rotate(orientation, screen)
        step = [0.0] * len(names)
        for k, i in enumerate(shown):
            step[i] = zoom * direction[k] * canonical / scales[k]
        steps.append(step)
    return steps[0], steps[1]


def _edges(total: int, parts: int) -> list[int]:
    return [round(total * k / parts) for k in range(parts + 1)]


def _decode(png: bytes) -> np.ndarray[Any, Any]:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def tiled_screenshot(
    viewer: Viewer,
    size: Sequence[int],
    *,
    tile: int = DEFAULT_TILE,
    overlap: int = 24,
    scale_bar: bool | Mapping[str, Any] | None = None,
    timeout: float = 120.0,
) -> Figure:
    """A ``size`` screenshot of ``viewer``'s 2-D view, drawn in tiles of at most ``tile`` pixels.

    Axis lines are left out (each tile would draw its own); the scale bar, if shown, is drawn once, by
    the bottom-left tile.  The view is restored afterwards.
    """
    width, height = check_size(size)
    if tile < 64 or overlap < 0 or 2 * overlap >= tile:
        raise InvalidState(f"tile must be >= 64 pixels and more than twice the overlap, got {tile} and {overlap}")
    original, _ = viewer.documents["s"].snapshot()
    config, _ = viewer.documents["c"].snapshot()
    right, down = pixel_steps(original)
    columns, rows = math.ceil(width / (tile - 2 * overlap)), math.ceil(height / (tile - 2 * overlap))
    xs, ys = _edges(width, columns), _edges(height, rows)
    show_bar = original.get("showScaleBar", True) if scale_bar is None else bool(scale_bar)
    figure = np.zeros((height, width, 3), np.uint8)
    filled = np.zeros((height, width), bool)
    seam = 0.0

    with ExitStack() as stack:
        if not viewer.connected_clients():
            stack.enter_context(screenshots.headless_page(viewer.url, (tile, tile)))
        viewer.documents["c"].update(lambda c: _figure_config(c, scale_bar, True))
        try:
            for row in range(rows):
                for column in range(columns):
                    x0, x1 = max(0, xs[column] - overlap), min(width, xs[column + 1] + overlap)
                    y0, y1 = max(0, ys[row] - overlap), min(height, ys[row + 1] + overlap)
                    dx, dy = (x0 + x1) / 2 - width / 2, (y0 + y1) / 2 - height / 2
                    state = copy.deepcopy(original)
                    state["position"] = [
                        float(p) + dx * r + dy * d for p, r, d in zip(original["position"], right, down)
                    ]
                    state["showAxisLines"] = False
                    state["showScaleBar"] = show_bar and column == 0 and row == rows - 1
                    pixels = _draw_tile(viewer, state, (x1 - x0, y1 - y0), timeout)
                    seen = filled[y0:y1, x0:x1]
                    if seen.any():
                        before = figure[y0:y1, x0:x1][seen].astype(np.int16)
                        seam = max(seam, float(np.abs(pixels[seen].astype(np.int16) - before).mean()))
                    cx0, cx1, cy0, cy1 = xs[column], xs[column + 1], ys[row], ys[row + 1]
                    figure[cy0:cy1, cx0:cx1] = pixels[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
                    # The margins too, so the next tiles have something to be compared with.
                    figure[y0:y1, x0:x1][~seen] = pixels[~seen]
                    filled[y0:y1, x0:x1] = True
        finally:
            viewer.documents["s"].set(original)
            viewer.documents["c"].set(config)
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(figure).save(out, format="PNG")
    logger.info("%dx%d screenshot from %dx%d tiles; seams differ by %.2f", width, height, columns, rows, seam)
    return Figure(out.getvalue(), (columns, rows), seam)


def screenshot(
    viewer: Viewer,
    size: Sequence[int] | None,
    *,
    scale_bar: bool | Mapping[str, Any] | None = None,
    panels_only: bool = False,
    tile: int = DEFAULT_TILE,
    timeout: float = 60.0,
) -> bytes:
    """A PNG of the view: one canvas up to ``tile`` pixels a side, tiles beyond (:func:`tiled_screenshot`).

    ``scale_bar``: ``None`` as the state says, ``False``/``True`` hide/show it, or a dict of options
    (``scale_factor``, ``text_height_in_pixels``, … see :data:`_SCALE_BAR_KEYS`) that shows it so.
    ``panels_only`` hides the top bar, layer bar and panel borders, so the data panels fill the picture
    (tiled screenshots always do).
    """
    checked = check_size(size) if size is not None else None
    if checked is not None and max(checked) > tile:
        return tiled_screenshot(viewer, checked, tile=tile, scale_bar=scale_bar, timeout=max(timeout, 120.0)).png
    if scale_bar is None and not panels_only:
        return screenshots.take(viewer, checked, timeout)
    original, _ = viewer.documents["s"].snapshot()
    config, _ = viewer.documents["c"].snapshot()
    if scale_bar is not None:
        viewer.documents["s"].update(lambda s: s.__setitem__("showScaleBar", bool(scale_bar)))
    viewer.documents["c"].update(lambda c: _figure_config(c, scale_bar, panels_only))
    try:
        return screenshots.take(viewer, checked, timeout)
    finally:
        viewer.documents["s"].set(original)
        viewer.documents["c"].set(config)


def _figure_config(config: dict[str, Any], scale_bar: bool | Mapping[str, Any] | None, panels_only: bool) -> None:
    if panels_only:
        config.update(showUIControls=False, showPanelBorders=False)
    if isinstance(scale_bar, Mapping):
        config["scaleBarOptions"] = {**config.get("scaleBarOptions", {}), **scale_bar_options(scale_bar)}


def _draw_tile(viewer: Viewer, state: dict[str, Any], size: tuple[int, int], timeout: float) -> np.ndarray[Any, Any]:
    """One tile, retried if the page drew it before the tile's position reached it."""
    viewer.documents["s"].set(state)
    for _ in range(5):
        png, seen = screenshots._request_with_state(viewer, size, timeout)
        position = (seen or {}).get("position") or []
        wanted = state.get("position")
        # The page keeps positions as float32.
        if wanted is None or len(position) == len(wanted) and all(
            abs(float(a) - b) <= 1e-4 + 1e-6 * abs(b) for a, b in zip(position, wanted)
        ):
            pixels = _decode(png)
            if pixels.shape[:2] == (size[1], size[0]):
                return pixels
        logger.debug("tile drawn at %s instead of %s; asking again", position, state["position"])
        viewer.documents["s"].set(state)
    raise screenshots.ScreenshotUnavailable("the page did not draw the tile at the requested position")
