"""stop() really lets go: arrays are freed, URLs die, and a new viewer works again."""

from __future__ import annotations

import gc
import threading
import weakref
from pathlib import Path

import numpy as np
import pytest

import ngshow

from .conftest import base_url, request


def test_stop_frees_arrays_and_kills_urls() -> None:
    image = np.ones((4, 5, 6), np.uint8)
    labels = np.ones((4, 5, 6), np.uint32)
    refs = [weakref.ref(image), weakref.ref(labels)]
    viewer = ngshow.Viewer()
    layer = viewer.add(image, kind="image")
    viewer.add(labels, kind="segmentation")
    viewer.on_state_changed(lambda state: print(labels.shape))  # a callback holding an array
    url, info = viewer.url, f"{base_url(viewer)}/neuroglancer/info/{layer.key}"
    assert request(info).status == 200 and request(url).status == 200
    del image, labels
    gc.collect()
    assert all(r() is not None for r in refs)  # still served

    ngshow.stop()
    gc.collect()
    assert [r() for r in refs] == [None, None]
    with pytest.raises(OSError):
        request(url)
    with pytest.raises(ngshow.ViewerClosed):
        viewer.add(np.zeros((2, 2, 2), np.uint8))
    assert not [t for t in threading.enumerate() if t.name.startswith("ngshow")]

    again = ngshow.Viewer()
    try:
        assert again.url != url
        assert request(again.url).status == 200
        assert request(url.replace(base_url(viewer), base_url(again))).status == 404  # old token is gone
    finally:
        ngshow.stop()


def test_close_and_remove_release_arrays(viewer: ngshow.Viewer) -> None:
    a, b = np.zeros((2, 3, 4), np.uint8), np.zeros((2, 3, 4), np.uint8)
    ra, rb = weakref.ref(a), weakref.ref(b)
    viewer.add(a, name="a")
    viewer.add(b, name="b")
    del a, b
    viewer.remove("a")
    gc.collect()
    assert ra() is None and rb() is not None
    assert viewer.state.layer_names() == ["b"]
    viewer.close()
    gc.collect()
    assert rb() is None
    assert request(viewer.url).status == 404


def test_missing_client_bundle_says_how_to_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ngshow.stop()
    monkeypatch.setenv("NGSHOW_STATIC_DIR", str(tmp_path))
    with pytest.raises(ngshow.ClientNotBuilt, match="make client"):
        ngshow.Viewer()


def test_show_one_liner_and_repr() -> None:
    try:
        viewer = ngshow.show(np.zeros((2, 3, 4), np.uint16), name="vol", voxel_size=[6, 6, 40])
        assert repr(viewer) == str(viewer) == viewer.get_viewer_url() == viewer.url
        assert viewer.url.startswith("http://127.0.0.1:") and viewer.url.endswith("/")
        token = viewer.url.rstrip("/").rsplit("/", 1)[1]
        assert len(token) == 40 and int(token, 16) >= 0  # 160 random bits
        assert f'src="{viewer.url}"' in viewer._repr_html_()
        assert viewer.layers["vol"].kind == "image" and viewer.layers["vol"].kind_guessed
    finally:
        ngshow.stop()
