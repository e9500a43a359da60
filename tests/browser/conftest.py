"""Headless Chromium (Debian's package) driven by Playwright, and helpers to read what it shows."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, sync_playwright

from ngshow.screenshots import CHROMIUM_FLAGS, chromium_path

READY = (
    "() => window.viewer && window.viewer.layerManager.managedLayers.length > 0 && window.viewer.isReady()"
)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=chromium_path(), args=CHROMIUM_FLAGS, ignore_default_args=["--headless"]
        )
        yield b
        b.close()


STATE_CONFLICT = "status of 412 (Precondition Failed)"


@dataclass
class Problems:
    """Console errors, page errors and failed HTTP responses seen by a page (workers included)."""

    console: list[str] = field(default_factory=list)
    page: list[str] = field(default_factory=list)
    http: list[str] = field(default_factory=list)

    def all(self, ignore: tuple[str, ...] = ()) -> list[str]:
        return [p for p in self.console + self.page + self.http if not any(i in p for i in ignore)]


@dataclass
class BrowserPage:
    page: Page
    problems: Problems

    def open(self, url: str, timeout_ms: float = 60_000) -> None:
        self.page.goto(url)
        # The dimensions overlay stays open after zoom changes; it is UI, not data.
        self.page.add_style_tag(content=".neuroglancer-display-dimensions-widget { display: none !important; }")
        self.wait_ready(timeout_ms)

    def wait_ready(self, timeout_ms: float = 60_000) -> None:
        self.page.wait_for_function(READY, timeout=timeout_ms)
        self.settle()

    def settle(self) -> None:
        """Let two animation frames pass so the last chunks are drawn."""
        self.page.evaluate(
            "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(null))))"
        )
        self.page.add_style_tag(content=".neuroglancer-display-dimensions-widget { display: none !important; }")

    def pixels(self) -> np.ndarray[Any, Any]:
        """The page as an (h, w, 3) uint8 array."""
        png = self.page.screenshot()
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))

    def wait_for_position(self, xyz: list[float], timeout_ms: float = 20_000) -> None:
        """Wait until the viewer's position is ``xyz`` (global voxel coordinates)."""
        self.page.wait_for_function(
            f"() => {{ const p = window.viewer.navigationState.position.value; const e = {xyz};"
            " return e.every((v, i) => Math.abs(p[i] - v) < 1e-3); }",
            timeout=timeout_ms,
        )

    def wait_for_pixels(
        self, check: Callable[[], bool], message: str, timeout_s: float = 60.0, panel_ready: bool = True
    ) -> None:
        """Poll until ``check()`` holds on a ready viewer (chunks and meshes arrive asynchronously)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not panel_ready or self.page.evaluate("() => window.viewer.isReady()"):
                self.settle()
                if check():
                    return
            self.page.wait_for_timeout(100)
        raise AssertionError(message)

    def canvas_pixels(self) -> np.ndarray[Any, Any]:
        """What WebGL drew (no HTML overlays), as (h, w, 3) uint8."""
        data_url = self.page.evaluate(
            "() => { const d = window.viewer.display; d.draw(); return d.canvas.toDataURL('image/png'); }"
        )
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGB"))

    def panel_pixels(self, index: int = 0, inset: int = 4) -> np.ndarray[Any, Any]:
        """What WebGL drew in one data panel, without its border, as (h, w, 3) uint8."""
        box = self.panel_box(index)
        origin = self.page.evaluate(
            "() => { const r = window.viewer.display.canvas.getBoundingClientRect(); return [r.x, r.y]; }"
        )
        canvas = self.canvas_pixels()
        x0, y0 = int(box["x"] - origin[0]) + inset, int(box["y"] - origin[1]) + inset
        x1, y1 = int(box["x"] - origin[0] + box["width"]) - inset, int(box["y"] - origin[1] + box["height"]) - inset
        return canvas[y0:y1, x0:x1]

    def panel_box(self, index: int = 0) -> dict[str, float]:
        """Bounding box of the index-th rendered data panel (page coordinates), once it exists
        (the client builds its panels after the state, and again after a layout change)."""
        visible = """[...window.viewer.display.panels].filter(p => p.element && p.element.offsetWidth > 0)"""
        self.page.wait_for_function(f"(i) => {visible}.length > i", arg=index, timeout=30_000)
        box = self.page.evaluate(
            f"""(i) => {{ const panels = {visible};
               const r = panels[i].element.getBoundingClientRect();
               return {{x: r.x, y: r.y, width: r.width, height: r.height}}; }}""",
            index,
        )
        assert box is not None
        return box  # type: ignore[no-any-return]


def _new_page(browser: Browser) -> tuple[BrowserPage, Any]:
    context = browser.new_context(viewport={"width": 800, "height": 600})
    problems = Problems()
    p = context.new_page()
    # A state POST answered 412 is the protocol's conflict path (PROTOCOL.md §2.3: the browser
    # adopts the server's state), not a fault; whether one happens depends on timing.
    p.on("console", lambda m: problems.console.append(f"console {m.type}: {m.text}")
         if m.type == "error" and STATE_CONFLICT not in m.text else None)
    p.on("pageerror", lambda e: problems.page.append(f"page error: {e}"))
    context.on(
        "response", lambda r: problems.http.append(f"HTTP {r.status} {r.url}")
        if r.status >= 400 and not (r.status == 412 and "/state/" in r.url) else None
    )
    return BrowserPage(p, problems), context


@pytest.fixture
def page(browser: Browser) -> Iterator[BrowserPage]:
    """A fresh tab (in its own browser context) that records every problem it sees."""
    tab, context = _new_page(browser)
    yield tab
    context.close()


@pytest.fixture
def second_page(browser: Browser) -> Iterator[BrowserPage]:
    """Another tab, for tests of several tabs on one viewer."""
    tab, context = _new_page(browser)
    yield tab
    context.close()
