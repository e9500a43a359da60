"""Notebook display: Colab's kernel proxy (its documented call, since Colab cannot run here) and the URL
form jupyter-server-proxy needs; the real proxy is tested in tests/browser/test_sharing_proxy.py."""

from __future__ import annotations

import http.client
import sys
import types
from collections.abc import Iterator
from urllib.parse import urlsplit

import numpy as np
import pytest

import ngshow
from ngshow import runtime

from .conftest import base_url


@pytest.fixture
def colab(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """A ``google.colab.output`` whose ``eval_js`` answers ``google.colab.kernel.proxyPort(port)`` as Colab's
    front end does (an https URL for that port) and records every call."""
    calls: list[str] = []

    def eval_js(script: str) -> str:
        calls.append(script)
        port = script.removeprefix("google.colab.kernel.proxyPort(").removesuffix(")")
        return f"https://{port}-gpu-t4-s-abc.us-west1-0.prod.colab.dev/"

    output = types.ModuleType("google.colab.output")
    output.eval_js = eval_js  # type: ignore[attr-defined]
    package = types.ModuleType("google.colab")
    package.output = output  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "google.colab", package)
    monkeypatch.setitem(sys.modules, "google.colab.output", output)
    monkeypatch.setattr(runtime, "_colab_urls", {})
    yield calls
    ngshow.stop()


def get(url: str, host: str | None = None) -> tuple[int, bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers={"Host": host} if host else {})
        reply = connection.getresponse()
        return reply.status, reply.read()  # read to the end: hangs if the response never ends
    finally:
        connection.close()


def test_colab_urls_come_from_the_kernel_proxy(colab: list[str]) -> None:
    viewer = ngshow.Viewer()
    viewer.add(np.zeros((2, 4, 4), np.uint8), name="img")
    port = viewer._server.port
    host = f"{port}-gpu-t4-s-abc.us-west1-0.prod.colab.dev"
    assert viewer.url == f"https://{host}/v/{viewer.token}/"
    assert viewer.url == viewer.get_viewer_url() and colab == [f"google.colab.kernel.proxyPort({port})"]  # asked once
    html = viewer._repr_html_()
    assert f"google.colab.kernel.proxyPort({port}, {{cache: true}})" in html and f'"v/{viewer.token}/"' in html
    assert "<iframe" in html and "<script>" in html
    local = viewer._server.base_url
    # The proxy's host name is let in; any other outside name is still refused.
    assert get(f"{local}/v/{viewer.token}/", host=host)[0] == 200
    assert get(f"{local}/v/{viewer.token}/", host="evil.example")[0] == 403
    # Colab's proxy holds a response until it ends: each event stream ends after what it sent.
    status, body = get(f"{local}/events/{viewer.token}?c=colabclient&gs=&gc=")
    assert status == 200 and body.count(b"data: ") in (1, 2) and b'"k":"s"' in body


def test_jupyterhub_kernels_use_jupyter_server_proxy(monkeypatch: pytest.MonkeyPatch, viewer: ngshow.Viewer) -> None:
    port = viewer._server.port
    assert viewer.url.startswith("http://127.0.0.1:")  # a plain Python process: the bind address
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/alice/")
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    assert viewer.url == f"/user/alice/proxy/{port}/v/{viewer.token}/"  # no port chosen by hand
    assert f'src="/user/alice/proxy/{port}/v/{viewer.token}/"' in viewer._repr_html_()
    try:
        ngshow.use_jupyter_server_proxy("https://hub.example.org/user/bob")
        assert viewer.url == f"https://hub.example.org/user/bob/proxy/{port}/v/{viewer.token}/"
        ngshow.set_public_url("http://localhost:9000")  # an explicit address wins
        assert viewer.url == f"http://localhost:9000/v/{viewer.token}/"
    finally:
        ngshow.set_public_url(None)
        ngshow.use_jupyter_server_proxy(None)
