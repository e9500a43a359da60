"""A tab that closes is gone at once: connected_clients() drops, and screenshot() renders headless
instead of waiting for the closed tab."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

import ngshow

from .conftest import BrowserPage
from .test_render import bright, show_scene

pytestmark = pytest.mark.browser


def test_screenshot_right_after_the_last_tab_closes(page: BrowserPage, viewer: ngshow.Viewer) -> None:
    show_scene(viewer, labels=False)
    page.open(viewer.url)
    assert viewer.connected_clients() == 1
    page.page.close()
    # The closed tab never answers; without noticing it this call would wait out its timeout.
    png = viewer.screenshot(size=(320, 240), timeout=120)  # from a headless Chromium of its own
    shot = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert shot.shape[:2] == (240, 320)
    assert len(bright(shot)) > 50  # the scene, rendered by the fallback browser
    deadline = time.monotonic() + 10
    while viewer.connected_clients():  # the headless tab has closed too
        assert time.monotonic() < deadline
        time.sleep(0.01)
