"""What the server refuses to give away: files outside a served folder (symlinks), bytes outside a file
(416), and its secrets in logs."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ngshow

from .conftest import post_json, request
from .test_precomputed_serving import write_dataset


def test_symlinks_out_of_a_served_folder_are_refused(viewer: ngshow.Viewer, tmp_path: Path) -> None:
    root = tmp_path / "seg"
    write_dataset(root)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("private")
    os.symlink(outside / "secret.txt", root / "secret-file")
    os.symlink(outside, root / "secret-dir")
    os.symlink(root / "info", root / "info-copy")  # a link that stays inside is fine
    viewer.add_precomputed(str(root), name="seg")
    url = viewer.state.layers["seg"]["source"].removeprefix("precomputed://")
    assert request(f"{url}/info-copy").body == (root / "info").read_bytes()
    for path in ("secret-file", "secret-dir/secret.txt"):
        reply = request(f"{url}/{path}")
        assert reply.status == 404 and b"private" not in reply.body, path


def test_ranges_outside_a_file_get_416(viewer: ngshow.Viewer, tmp_path: Path) -> None:
    root = tmp_path / "seg"
    write_dataset(root)
    viewer.add_precomputed(str(root), name="seg")
    url = viewer.state.layers["seg"]["source"].removeprefix("precomputed://") + "/info"
    size = (root / "info").stat().st_size
    inside = request(url, headers={"Range": "bytes=1-4"})
    assert inside.status == 206 and inside.body == (root / "info").read_bytes()[1:5]
    for outside in (f"bytes={size}-", f"bytes={size + 100}-{size + 200}"):
        assert request(url, headers={"Range": outside}).status == 416, outside


class Exploding:
    """An array whose reads fail, so the server logs an internal error."""

    shape, dtype, ndim = (8, 8, 8), np.dtype(np.uint8), 3

    def __getitem__(self, box: Any) -> Any:
        raise RuntimeError("disk on fire")


def test_the_token_never_appears_in_logs(viewer: ngshow.Viewer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_dataset(tmp_path / "seg")
    secret_layer = viewer.add(Exploding(), name="boom", kind="image")
    fine = viewer.add(np.zeros((8, 8, 8), np.uint8), name="fine")
    base = viewer.url.split("/v/")[0]
    with caplog.at_level(logging.DEBUG):
        viewer.add_precomputed(str(tmp_path / "seg"), name="seg")
        data = viewer.state.layers["seg"]["source"].removeprefix("precomputed://")
        assert request(f"{data}/no-such-file").status == 404
        assert request(f"{base}/neuroglancer/raw/{secret_layer.key}/1,1,1/0,0,0/8,8,8").status == 500
        assert request(f"{base}/neuroglancer/raw/{fine.key}/1,1,1/0,0,0/9,9,9").status == 400
        assert request(f"{base}/neuroglancer/info/{fine.key}").status == 200
        assert post_json(f"{base}/state/{viewer.token}", {"bad": 1}).status == 400
        assert request(f"{base}/events/{viewer.token}").status == 400
        assert request(viewer.url).status == 200
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert "internal error serving" in text and "disk on fire" in text  # the log is useful...
    secrets = [viewer.token, secret_layer.key.split(".")[1], fine.key.split(".")[1], data.rsplit("/", 1)[1]]
    for secret in secrets:  # ...and tells nothing that opens the viewer
        assert secret not in text
