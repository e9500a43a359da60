"""Actions, bindings, status messages, annotations and public URLs, over real HTTP."""

from __future__ import annotations

import logging
import queue
from typing import Any

import numpy as np
import pytest

import ngshow

from .conftest import base_url, post_json, request


def test_actions_reach_python_with_parsed_state(viewer: ngshow.Viewer, caplog: pytest.LogCaptureFixture) -> None:
    got: queue.Queue[ngshow.ActionState] = queue.Queue()
    viewer.actions.add("probe", got.put)
    viewer.actions.add("broken", lambda state: 1 / 0)
    viewer.bind("keyt", "probe")
    viewer.bind("shift+mousedown0", "probe", view="slice_view")
    config, _ = viewer.documents["c"].snapshot()
    assert config["actions"] == ["broken", "probe"]
    assert config["inputEventBindings"] == {"viewer": {"keyt": "probe"}, "sliceView": {"shift+mousedown0": "probe"}}

    url = f"{base_url(viewer)}/action/{viewer.token}"
    with caplog.at_level(logging.ERROR, logger="ngshow"):
        assert post_json(url, {"action": "broken", "state": {}}).status == 200
        body = {
            "action": "probe",
            "state": {
                "mousePosition": [10.5, 20.5, 3.5],
                "selectedValues": {"seg": {"value": "18446744073709551615"}, "img": {"value": 17}},
                "viewerState": {"layout": "xy"},
            },
        }
        assert post_json(url, body).status == 200
        state = got.get(timeout=10)
    assert "ZeroDivisionError" in caplog.text  # logged, and the server goes on
    assert state.mouse_voxel_coordinates == [10.5, 20.5, 3.5]
    assert state.selected_values == {"seg": 2**64 - 1, "img": 17}
    assert state.viewer_state.layout == "xy"
    viewer.unbind("keyt")
    viewer.actions.remove("probe")
    config, _ = viewer.documents["c"].snapshot()
    assert config["actions"] == ["broken"] and config["inputEventBindings"]["viewer"] == {}
    with pytest.raises(ValueError, match="view must be one of"):
        viewer.bind("keyx", "probe", view="sideways")


def test_status_messages(viewer: ngshow.Viewer) -> None:
    viewer.status("computing…")
    assert viewer.documents["c"].snapshot()[0]["statusMessages"] == {"ngshow": "computing…"}
    viewer.status(None)
    assert viewer.documents["c"].snapshot()[0]["statusMessages"] == {}


def test_annotation_layers(viewer: ngshow.Viewer) -> None:
    points = np.array([[1, 2, 3], [4, 5, 6]])
    viewer.add_annotations(
        "point", points, name="synapses", voxel_size=(6, 6, 40), descriptions=["a", "b"],
        properties={"score": np.array([0.5, 0.25], np.float32)}, color="#ff00ff",
    )
    viewer.add_annotations("box", [[0, 0, 0]], [[2, 3, 4]], name="roi")
    viewer.add_annotations("line", [[0, 0, 0]], [[1, 1, 1]])
    viewer.add_annotations("ellipsoid", [[5, 5, 5]], [[1, 2, 3]], ids=[42])
    layers = viewer.state.layers
    assert list(layers) == ["synapses", "roi", "line", "ellipsoid"]
    synapses = layers["synapses"]
    assert synapses["type"] == "annotation" and synapses["source"]["url"] == "local://annotations"
    assert synapses["source"]["transform"]["outputDimensions"]["z"] == [4e-08, "m"]
    assert synapses["annotations"][1] == {
        "type": "point", "id": "2", "point": [4.0, 5.0, 6.0], "description": "b", "props": [0.25]
    }
    assert synapses["annotationProperties"] == [{"id": "score", "type": "float32"}]
    assert layers["roi"]["annotations"][0]["type"] == "axis_aligned_bounding_box"
    assert layers["ellipsoid"]["annotations"][0] == {"type": "ellipsoid", "id": "42", "center": [5.0] * 3, "radii": [1.0, 2.0, 3.0]}
    viewer.remove("roi")
    assert "roi" not in viewer.state.layers
    for bad, message in [
        (lambda: viewer.add_annotations("point", [[1, 2]]), r"\(N, 3\)"),
        (lambda: viewer.add_annotations("line", [[1, 2, 3]]), "two"),
        (lambda: viewer.add_annotations("circle", [[1, 2, 3]]), "kind"),  # type: ignore[arg-type]
        (lambda: viewer.add_annotations("point", [[1, 2, 3]], ids=[1, 2]), "unique"),
        (lambda: viewer.add_annotations("point", [[np.nan, 2, 3]]), "finite"),
    ]:
        with pytest.raises(ngshow.InvalidArray, match=message):
            bad()


def test_public_url_replaces_the_bind_address(viewer: ngshow.Viewer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NGSHOW_PUBLIC_URL", "http://tunnel.example:9000/")
    assert viewer.url == f"http://tunnel.example:9000/v/{viewer.token}/"
    assert f'src="http://tunnel.example:9000/v/{viewer.token}/"' in viewer._repr_html_()
    # Requests that name the public host are served; other foreign hosts are still refused.
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(base_url_of_server(viewer))
    for host, status in (("tunnel.example:9000", 200), ("evil.example", 403)):
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        conn.request("GET", f"/v/{viewer.token}/", headers={"Host": host})
        assert conn.getresponse().status == status
        conn.close()
    monkeypatch.delenv("NGSHOW_PUBLIC_URL")
    ngshow.set_public_url("http://localhost:8888/proxy/1234")
    try:
        assert viewer.url.startswith("http://localhost:8888/proxy/1234/v/")
    finally:
        ngshow.set_public_url(None)


def base_url_of_server(viewer: ngshow.Viewer) -> str:
    return viewer._server.base_url


def test_screenshot_without_any_browser_says_why(viewer: ngshow.Viewer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NGSHOW_CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ngshow.ScreenshotUnavailable, match="no Chromium found"):
        viewer.screenshot()
    assert request(viewer.url).status == 200  # the viewer is unharmed


def test_static_content_from_a_dev_server(tmp_path: Any) -> None:
    import functools
    import http.server
    import threading

    (tmp_path / "index.html").write_text("<html>dev build</html>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    dev = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=dev.serve_forever, daemon=True).start()
    try:
        ngshow.set_static_content_source(url=f"http://127.0.0.1:{dev.server_address[1]}/")
        viewer = ngshow.Viewer()
        assert request(viewer.url).body == b"<html>dev build</html>"
        assert request(viewer.url + "missing.js").status == 404
    finally:
        ngshow.set_static_content_source(url=None)
        dev.shutdown()
        dev.server_close()
    assert b"main.bundle.js" in request(ngshow.Viewer().url).body  # back to the bundle
    ngshow.stop()


def test_jupyter_display_embeds_a_working_iframe(viewer: ngshow.Viewer) -> None:
    import re

    html = viewer._repr_html_()
    src = re.search(r'<iframe src="([^"]+)"', html)
    assert src and request(src.group(1)).status == 200
    assert f'href="{viewer.url}"' in html  # a link for front ends that block iframes


def test_several_viewers_in_one_process_are_independent() -> None:
    try:
        a, b = ngshow.Viewer(), ngshow.Viewer()
        assert a.token != b.token and base_url(a) == base_url(b)  # one server, two secrets
        la = a.add(np.zeros((2, 3, 4), np.uint8), name="x")
        b.add(np.ones((2, 3, 4), np.uint8), name="y")
        with a.txn() as s:
            s.layout = "3d"
        assert b.state.layout == "4panel" and b.state.layer_names() == ["y"]
        # A's volume is not reachable through B's token.
        assert request(f"{base_url(a)}/neuroglancer/info/{b.token}.{la.token}").status == 404
        b.close()
        assert request(a.url).status == 200 and request(b.url).status == 404
    finally:
        ngshow.stop()
