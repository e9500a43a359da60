"""README command 1: the nuclei demo serves real data that renders in the browser."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .conftest import BrowserPage

pytestmark = pytest.mark.browser

DEMO = Path(__file__).parents[2] / "examples" / "nuclei_demo.py"


def test_nuclei_demo_renders_and_stops_on_ctrl_c(page: BrowserPage) -> None:
    demo = subprocess.Popen([sys.executable, str(DEMO)], stdout=subprocess.PIPE, text=True)
    try:
        assert demo.stdout is not None
        url = None
        for line in demo.stdout:
            found = re.search(r"(http://127\.0\.0\.1:\d+/v/[0-9a-f]{40}/)", line)
            if found:
                url = found.group(1)
                break
        assert url, "the demo printed no viewer URL"
        page.open(url)
        pixels = page.panel_pixels().astype(int)
        saturation = pixels.max(axis=2) - pixels.min(axis=2)
        # Nuclei labels draw as coloured blobs over a grey image: both must cover much of the panel.
        assert (saturation > 60).mean() > 0.05, "no segment colours"
        grey = (saturation < 10) & (pixels.mean(axis=2) > 40)
        assert grey.mean() > 0.01, "no bright image voxels"
        assert page.problems.all() == []
    finally:
        demo.send_signal(signal.SIGINT)
        code = demo.wait(timeout=30)
        if demo.stdout is not None:
            demo.stdout.close()
    assert code == 0


def test_cli_screenshot_writes_a_png(tmp_path: Path) -> None:
    volume = np.zeros((4, 32, 48), np.uint8)
    volume[:, 4:12, 30:44] = 255
    np.save(tmp_path / "v.npy", volume)
    result = subprocess.run(
        [sys.executable, "-m", "ngshow", str(tmp_path / "v.npy"), "--screenshot", str(tmp_path / "v.png"), "--size", "400x300"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    from PIL import Image

    shot = np.asarray(Image.open(tmp_path / "v.png").convert("RGB"))
    assert shot.shape == (300, 400, 3)
    assert (shot.min(axis=2) > 200).sum() > 100  # the bright box is in the picture
