"""Screenshots rendered by the real client, in an open browser or a headless Chromium of our own.

The server asks the page for a screenshot through the config document (``screenshot`` id); the page
answers with a ``screenshot`` action once every visible chunk is drawn (PROTOCOL.md §2.7).
"""

from __future__ import annotations

import base64
import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from . import runtime
from .errors import NgshowError
from .tokens import new_token

if TYPE_CHECKING:
    from .viewer import Viewer

__all__ = ["ScreenshotUnavailable", "CHROMIUM_FLAGS", "chromium_path", "headless_page", "take"]

#: Flags that let Debian's chromium render WebGL in software with a quiet console.
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


class ScreenshotUnavailable(NgshowError, RuntimeError):
    """No browser to render with: no page open, and no Chromium or Playwright to start one."""


def chromium_path() -> str:
    """``$NGSHOW_CHROMIUM``, else a Chromium on ``PATH``."""
    path = os.environ.get("NGSHOW_CHROMIUM")
    for candidate in ([path] if path else []) + ["chromium", "chromium-browser", "google-chrome"]:
        found = shutil.which(candidate) or (candidate if os.path.isfile(candidate) else None)
        if found:
            return found
    raise ScreenshotUnavailable(
        "no Chromium found for headless screenshots: install one (Debian: apt-get install chromium) "
        "or set NGSHOW_CHROMIUM to its path"
    )


@contextmanager
def headless_page(url: str, size: tuple[int, int] | None = None) -> Iterator[None]:
    """Keep ``url`` open in a headless Chromium for the duration of the block.

    Playwright's synchronous API refuses to run inside an asyncio loop (Jupyter), so the browser lives
    on a thread of its own.
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise ScreenshotUnavailable("headless screenshots need Playwright: pip install 'ngshow[screenshot]'") from None
    executable = chromium_path()
    width, height = size or (1024, 768)
    opened, done = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=executable, args=CHROMIUM_FLAGS, ignore_default_args=["--headless"]
                )
                try:
                    page = browser.new_page(viewport={"width": width, "height": height})
                    page.goto(url)
                    opened.set()
                    done.wait()
                finally:
                    browser.close()
        except BaseException as e:  # reported to the caller's thread
            failure.append(e)
            opened.set()

    thread = threading.Thread(target=run, name="ngshow-headless", daemon=True)
    thread.start()
    opened.wait()
    try:
        if failure:
            raise ScreenshotUnavailable(f"could not start headless Chromium: {failure[0]}")
        yield
    finally:
        done.set()
        thread.join(timeout=30)


class _Pending:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.png: bytes | None = None
        self.error: str | None = None
        self.viewer_state: dict[str, Any] | None = None  # the page's state when it took the picture
        self.size: tuple[int, int] | None = None


def take(viewer: Viewer, size: tuple[int, int] | None = None, timeout: float = 60.0) -> bytes:
    """A PNG of what ``viewer`` shows once fully loaded; starts a headless browser if none is open."""
    if viewer.connected_clients():
        try:
            return _request(viewer, size, timeout, in_open_tab=True)
        except _TabsClosed:
            pass  # the last tab closed while we waited: render headless at once
    with headless_page(viewer.url, size):
        return _request(viewer, size, timeout)


class _TabsClosed(Exception):
    pass


def _request(viewer: Viewer, size: tuple[int, int] | None, timeout: float, in_open_tab: bool = False) -> bytes:
    return _request_with_state(viewer, size, timeout, in_open_tab)[0]


def _request_with_state(
    viewer: Viewer, size: tuple[int, int] | None, timeout: float, in_open_tab: bool = False
) -> tuple[bytes, dict[str, Any] | None]:
    """A PNG and the viewer state the page had when it drew it.

    A page can answer before a new ``viewerSize`` has resized its canvas; such answers are asked again.
    ``in_open_tab``: give up (:class:`_TabsClosed`) as soon as the last tab closes.
    """
    for _ in range(10):
        png, state, drawn = _request_once(viewer, size, timeout, in_open_tab)
        if size is None or drawn is None or drawn == (int(size[0]), int(size[1])):
            return png, state
    raise ScreenshotUnavailable(f"the page kept drawing {drawn} pixels instead of {size}")


def _request_once(
    viewer: Viewer, size: tuple[int, int] | None, timeout: float, in_open_tab: bool = False
) -> tuple[bytes, dict[str, Any] | None, tuple[int, int] | None]:
    screenshot_id = new_token()
    pending = _Pending()
    viewer._screenshots[screenshot_id] = pending

    def ask(config: dict[str, Any]) -> None:
        config["screenshot"] = screenshot_id
        if size is not None:
            config["viewerSize"] = [int(size[0]), int(size[1])]

    def clear(config: dict[str, Any]) -> None:
        if config.get("screenshot") == screenshot_id:
            config.pop("screenshot", None)
            if size is not None:
                config.pop("viewerSize", None)

    viewer.documents["c"].update(ask)
    try:
        deadline = time.monotonic() + timeout
        # Colab's event streams end after every message, so a live tab is briefly unconnected.
        grace = 2.0 if runtime.in_colab() else 0.0
        gone_since: float | None = None
        while not pending.event.wait(0.05):
            if in_open_tab and not viewer.connected_clients():
                gone_since = gone_since or time.monotonic()
                if time.monotonic() - gone_since >= grace:
                    raise _TabsClosed()
            else:
                gone_since = None
            if time.monotonic() > deadline:
                raise TimeoutError(f"no screenshot within {timeout} s (is the view still loading?)")
        if pending.png is None:
            raise ScreenshotUnavailable(f"the browser could not take the screenshot: {pending.error}")
        return pending.png, pending.viewer_state, pending.size
    finally:
        viewer._screenshots.pop(screenshot_id, None)
        viewer.documents["c"].update(clear)


def receive(viewer: Viewer, state: dict[str, Any]) -> None:
    """Handle a ``screenshot`` action from the browser."""
    shot = state.get("screenshot") or {}
    pending = viewer._screenshots.get(str(shot.get("id")))
    if pending is None:
        return  # another tab already answered, or nobody waits any more
    pending.viewer_state = state.get("viewerState")
    if isinstance(shot.get("width"), int) and isinstance(shot.get("height"), int):
        pending.size = (shot["width"], shot["height"])
    if shot.get("imageType") == "image/png" and shot.get("image"):
        pending.png = base64.b64decode(shot["image"])
    else:
        pending.error = "empty image"
    pending.event.set()
