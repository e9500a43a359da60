"""Headless Chromium (Debian's package) driven by Playwright, and helpers to read what it shows."""

from __future__ import annotations

import base64
import io
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--ignore-gpu-blocklist",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-quic",
    "--disable-dev-shm-usage",
]

READY = (
    "() => window.viewer && window.viewer.layerManager.managedLayers.length > 0 && window.viewer.isReady()"
)


def chromium_path() -> str:
    path = os.environ.get("NGSHOW_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        raise RuntimeError("browser tests need Debian's chromium: `apt-get install chromium` (make test does)")
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=chromium_path(), args=CHROMIUM_FLAGS, ignore_default_args=["--headless"]
        )
        yield b
        b.close()


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

    def panel_pixels(self, index: int = 0, inset: int = 4) -> np.ndarray[Any, Any]:
        """What WebGL drew in one data panel (no HTML overlays), without its border, as (h, w, 3) uint8."""
        box = self.panel_box(index)
        data_url, origin = self.page.evaluate(
            """() => { const d = window.viewer.display; d.draw();
                 const r = d.canvas.getBoundingClientRect();
                 return [d.canvas.toDataURL('image/png'), [r.x, r.y]]; }"""
        )
        canvas = np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGB"))
        x0, y0 = int(box["x"] - origin[0]) + inset, int(box["y"] - origin[1]) + inset
        x1, y1 = int(box["x"] - origin[0] + box["width"]) - inset, int(box["y"] - origin[1] + box["height"]) - inset
        return canvas[y0:y1, x0:x1]

    def panel_box(self, index: int = 0) -> dict[str, float]:
        """Bounding box of the index-th rendered data panel (page coordinates)."""
        box = self.page.evaluate(
            """(i) => { const panels = [...window.viewer.display.panels]
                 .filter(p => p.element && p.element.offsetWidth > 0);
               const r = panels[i].element.getBoundingClientRect();
               return {x: r.x, y: r.y, width: r.width, height: r.height}; }""",
            index,
        )
        assert box is not None
        return box  # type: ignore[no-any-return]


@pytest.fixture
def page(browser: Browser) -> Iterator[BrowserPage]:
    context = browser.new_context(viewport={"width": 800, "height": 600})
    problems = Problems()
    p = context.new_page()
    p.on("console", lambda m: problems.console.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    p.on("pageerror", lambda e: problems.page.append(f"page error: {e}"))
    context.on(
        "response", lambda r: problems.http.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None
    )
    yield BrowserPage(p, problems)
    context.close()
