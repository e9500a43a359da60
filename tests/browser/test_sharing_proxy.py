"""A viewer opened through a real jupyter-server-proxy (a Jupyter server started by the test)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import ngshow

from .conftest import BrowserPage

pytestmark = pytest.mark.browser


@pytest.fixture
def jupyter(tmp_path: Path) -> Iterator[str]:
    """A Jupyter server on 127.0.0.1 with jupyter-server-proxy, no login; its base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"), "JUPYTER_DATA_DIR": str(tmp_path / "data"),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg")}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         "--ServerApp.port_retries=0", "--ServerApp.open_browser=False", "--IdentityProvider.token=",
         "--ServerApp.password=", "--ServerApp.allow_root=True", f"--ServerApp.root_dir={tmp_path}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    base = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "api/status", timeout=5) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the Jupyter server did not start") from None
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_viewer_through_jupyter_server_proxy(page: BrowserPage, viewer: ngshow.Viewer, jupyter: str) -> None:
    image = np.zeros((4, 40, 60), np.uint8)
    image[:, 10:30, 35:55] = 255
    viewer.add(image, name="img")
    with viewer.txn() as s:
        s.layout = "xy"
        s.cross_section_scale = 0.1
    ngshow.use_jupyter_server_proxy(jupyter)
    try:
        url = viewer.url
        assert url == f"{jupyter}proxy/{viewer._server.port}/v/{viewer.token}/"  # no port picked by hand
        page.open(url)
        assert (page.panel_pixels().min(axis=2) > 200).sum() > 1000, "the data did not come through the proxy"
        # State both ways through the proxy: server-sent events down, POSTs up.
        with viewer.txn() as s:
            s.position = [45.5, 20.5, 1.5]
        page.wait_for_position([45.5, 20.5, 1.5])
        page.page.evaluate("() => { window.viewer.navigationState.position.value = new Float32Array([5.5, 6.5, 2.5]); }")
        deadline = time.monotonic() + 20
        while viewer.state.position != [5.5, 6.5, 2.5] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert viewer.state.position == [5.5, 6.5, 2.5]
        assert page.problems.all() == []
    finally:
        ngshow.use_jupyter_server_proxy(None)
