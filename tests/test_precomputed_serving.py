"""Precomputed datasets written by ngshow.convert, served as files to the stock client."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import ngshow
from ngshow import convert

from .conftest import base_url, request


def write_dataset(folder: Path) -> np.ndarray:
    z, y, x = np.ogrid[:16, :32, :32]
    labels = np.zeros((16, 32, 32), np.uint32)
    labels[(z - 8) ** 2 + (y - 16) ** 2 + (x - 12) ** 2 < 6**2] = 5
    labels[(z - 8) ** 2 + (y - 16) ** 2 + (x - 24) ** 2 < 5**2] = 6
    properties = {"ids": [5, 6], "label": ["big ball", "small ball"], "voxels": [int((labels == 5).sum()), int((labels == 6).sum())]}
    plan = convert.plan(
        labels, str(folder), kind="segmentation", voxel_size=(8, 8, 8), chunk_size=16, mesh=True,
        segment_properties=properties,
    )
    with ThreadPoolExecutor(2) as pool:
        convert.run(plan, pool, progress=False)
    assert convert.validate(str(folder)) == []
    return labels


def test_local_dataset_files_are_served_with_the_token_only(viewer: ngshow.Viewer, tmp_path: Path) -> None:
    write_dataset(tmp_path / "seg")
    (tmp_path / "secret.txt").write_text("not part of the dataset")
    viewer.add_precomputed(str(tmp_path / "seg"), name="seg")
    layer = viewer.state.layers["seg"]
    assert layer["type"] == "segmentation"
    url = layer["source"].removeprefix("precomputed://")
    assert url.startswith(f"{base_url(viewer)}/data/{viewer.token}/")
    info = request(url + "/info").json()
    assert info["type"] == "segmentation" and info["mesh"]
    assert request(url + "/mesh/5.index").status == 200
    assert request(url + "/segment_properties/info").json()["inline"]["ids"] == ["5", "6"]
    dataset_token = url.rsplit("/", 1)[1]
    for path in ("../secret.txt", "%2e%2e/secret.txt", "mesh/../../secret.txt", "nope", "mesh"):
        assert request(f"{url}/{path}").status == 404, path
    assert request(url.replace(viewer.token, "0" * 40) + "/info").status == 404
    assert request(url.replace(dataset_token, "0" * 40) + "/info").status == 404
    with pytest.raises(ngshow.NotFound, match="not a precomputed dataset"):
        viewer.add_precomputed(str(tmp_path))
    viewer.add_precomputed("gs://bucket/path", name="remote", through_ngshow=False)  # a public bucket
    assert viewer.state.layers["remote"]["source"] == "precomputed://gs://bucket/path"
