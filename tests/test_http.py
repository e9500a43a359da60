"""The HTTP protocol against a real server on 127.0.0.1 (PROTOCOL.md)."""

from __future__ import annotations

import http.client
import io
import json
import zlib
from typing import Any
from urllib.parse import urlsplit

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ngshow

from . import reference
from .conftest import Reply, base_url, post_json, request

WIRE_DTYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "float32"]


def asymmetric(shape: tuple[int, ...], dtype: str) -> np.ndarray[Any, Any]:
    values = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape) * 7919 % 251
    return values.astype(dtype)


def chunk_url(viewer: ngshow.Viewer, layer: ngshow.Layer, factors: Any, start: Any, end: Any, enc: str = "raw") -> str:
    """URL of a chunk; factors/start/end given in NumPy order, sent in Neuroglancer order."""
    join = lambda v: ",".join(str(int(x)) for x in reversed(list(v)))  # noqa: E731
    return f"{base_url(viewer)}/neuroglancer/{enc}/{layer.key}/{join(factors)}/{join(start)}/{join(end)}"


def decode(reply: Reply, encoding: str, dtype: np.dtype[Any], shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
    """Decode a chunk as the client does (dimension 0 fastest) and return it in NumPy order."""
    assert reply.status == 200, reply.text
    assert reply.headers["Cache-Control"] == "no-store"
    if encoding == "raw":
        return np.frombuffer(reply.body, dtype=dtype.newbyteorder("<")).reshape(shape)
    array = np.lib.format.read_array(io.BytesIO(zlib.decompress(reply.body)))
    assert array.shape == tuple(reversed(shape))  # header shape in Neuroglancer order
    return np.asarray(array.transpose())  # x-fastest Fortran data == C-order (z, y, x)


def test_info_fields(viewer: ngshow.Viewer) -> None:
    layer = viewer.add(np.zeros((5, 6, 7), np.uint16), kind="image", voxel_size=(4, 5, 40), offset=(1, 2, 3))
    info = request(f"{base_url(viewer)}/neuroglancer/info/{layer.key}").json()
    assert info["coordinateSpace"] == {"x": [4e-9, "m"], "y": [5e-9, "m"], "z": [4e-8, "m"]}
    assert list(info["coordinateSpace"]) == ["x", "y", "z"]
    assert info["shape"] == [7, 6, 5]
    assert info["voxelOffset"] == [1, 2, 3]
    assert info["dataType"] == "uint16" and info["volumeType"] == "image" and info["encoding"] == "raw"
    for key in ("chunkLayout", "maxDownsampling", "maxDownsampledSize", "maxDownsamplingScales"):
        assert key in info

    four = viewer.add(np.zeros((3, 5, 6, 7), np.float32), name="rgb")
    info = request(f"{base_url(viewer)}/neuroglancer/info/{four.key}").json()
    assert list(info["coordinateSpace"]) == ["x", "y", "z", "c^"] and info["shape"] == [7, 6, 5, 3]
    seg = viewer.add(np.zeros((5, 6, 7), np.uint64))
    assert seg.kind == "segmentation" and seg.kind_guessed
    seg_info = request(f"{base_url(viewer)}/neuroglancer/info/{seg.key}").json()
    assert seg_info["volumeType"] == "segmentation"
    assert seg_info["encoding"] == "npz"  # labels compress well and fast; images go raw


@pytest.mark.parametrize("encoding", ["raw", "npz"])
@pytest.mark.parametrize("dtype", WIRE_DTYPES)
def test_chunks_equal_the_array(viewer: ngshow.Viewer, encoding: str, dtype: str) -> None:
    array = asymmetric((9, 13, 22), dtype)
    layer = viewer.add(array, kind="image", encoding=encoding)
    boxes = [((0, 0, 0), (9, 13, 22)), ((3, 5, 16), (9, 13, 22)), ((8, 12, 21), (9, 13, 22)), ((1, 2, 3), (4, 9, 5))]
    for start, end in boxes:
        reply = request(chunk_url(viewer, layer, (1, 1, 1), start, end, encoding))
        got = decode(reply, encoding, np.dtype(dtype), tuple(e - s for s, e in zip(start, end)))
        np.testing.assert_array_equal(got, array[tuple(slice(s, e) for s, e in zip(start, end))])


@pytest.mark.parametrize("encoding", ["raw", "npz"])
def test_four_dimensional_chunks(viewer: ngshow.Viewer, encoding: str) -> None:
    array = asymmetric((2, 5, 6, 11), "int16")
    layer = viewer.add(array, encoding=encoding)
    reply = request(chunk_url(viewer, layer, (1, 1, 1, 1), (0, 1, 2, 3), (2, 5, 6, 11), encoding))
    np.testing.assert_array_equal(decode(reply, encoding, np.dtype("int16"), (2, 4, 4, 8)), array[:, 1:, 2:, 3:])
    reply = request(chunk_url(viewer, layer, (1, 2, 2, 3), (0, 0, 0, 0), (2, 3, 3, 4), encoding))
    expected = reference.downsample(array, (1, 2, 2, 3), mode=False)
    np.testing.assert_array_equal(decode(reply, encoding, np.dtype("int16"), (2, 3, 3, 4)), expected)


@pytest.mark.parametrize("kind", ["image", "segmentation"])
@pytest.mark.parametrize("factors", [(1, 2, 2), (2, 2, 2), (1, 1, 3), (4, 4, 4)])
def test_downsampled_chunks(viewer: ngshow.Viewer, kind: str, factors: tuple[int, int, int]) -> None:
    array = asymmetric((9, 13, 22), "uint32") % 5
    layer = viewer.add(array, kind=kind)  # type: ignore[arg-type]
    expected = reference.downsample(array, factors, mode=kind == "segmentation")
    # The whole downsampled grid, then an edge chunk of it.
    got = decode(request(chunk_url(viewer, layer, factors, (0, 0, 0), expected.shape)), "raw", np.dtype("uint32"), expected.shape)
    np.testing.assert_array_equal(got, expected)
    start = tuple(max(0, n - 2) for n in expected.shape)
    got = decode(
        request(chunk_url(viewer, layer, factors, start, expected.shape)),
        "raw",
        np.dtype("uint32"),
        tuple(n - s for n, s in zip(expected.shape, start)),
    )
    np.testing.assert_array_equal(got, expected[tuple(slice(s, None) for s in start)])


def test_h5py_and_converted_dtypes(viewer: ngshow.Viewer, tmp_path: Any) -> None:
    array = asymmetric((6, 7, 8), "float64")
    with h5py.File(tmp_path / "v.h5", "w") as f:
        f["v"] = array
    with h5py.File(tmp_path / "v.h5", "r") as f:
        with pytest.warns(ngshow.DtypeConversionWarning, match="float32"):
            layer = viewer.add(f["v"], kind="image")
        reply = request(chunk_url(viewer, layer, (1, 1, 1), (1, 1, 1), (6, 7, 8)))
        np.testing.assert_array_equal(decode(reply, "raw", np.dtype("float32"), (5, 6, 7)), array[1:, 1:, 1:].astype("float32"))
        with pytest.warns(ngshow.DtypeConversionWarning, match="uint64"):
            labels = viewer.add(np.arange(24, dtype=np.int64).reshape(2, 3, 4), kind="segmentation")
        reply = request(chunk_url(viewer, labels, (1, 1, 1), (0, 0, 0), (2, 3, 4)))
        np.testing.assert_array_equal(decode(reply, "raw", np.dtype("uint64"), (2, 3, 4)), np.arange(24).reshape(2, 3, 4))


def test_bad_arrays_raise_clear_errors(viewer: ngshow.Viewer) -> None:
    with pytest.raises(ngshow.InvalidArray, match="complex"):
        viewer.add(np.zeros((2, 2, 2), np.complex64))
    with pytest.raises(ngshow.InvalidArray, match="needs its axes named"):
        viewer.add(np.zeros((2, 2, 2, 2, 2, 2), np.uint8))
    with pytest.raises(ngshow.InvalidArray, match="empty axis"):
        viewer.add(np.zeros((0, 2, 2), np.uint8))
    with pytest.raises(ngshow.InvalidArray, match="shape, dtype"):
        viewer.add([[1, 2], [3, 4]])
    with pytest.raises(ngshow.InvalidArray, match="voxel_size"):
        viewer.add(np.zeros((2, 2, 2), np.uint8), voxel_size=(1, 0, 1))


def test_bad_requests_get_4xx_never_500(viewer: ngshow.Viewer) -> None:
    layer = viewer.add(asymmetric((9, 13, 22), "uint8"), kind="image")
    base, key = base_url(viewer), layer.key
    cases = {
        f"/neuroglancer/raw/{key}/1,1,1/0,0,0/23,13,9": (400, "outside the volume"),
        f"/neuroglancer/raw/{key}/1,1,1/5,0,0/5,13,9": (400, "outside the volume"),
        f"/neuroglancer/raw/{key}/1,1,1/-1,0,0/5,13,9": (400, "outside the volume"),
        f"/neuroglancer/raw/{key}/1,1/0,0,0/5,13,9": (400, "expected 3 values"),
        f"/neuroglancer/raw/{key}/0,1,1/0,0,0/5,13,9": (400, "factors must be >= 1"),
        f"/neuroglancer/raw/{key}/8,8,8/0,0,0/2,2,1": (400, "exceed maxDownsampling"),
        f"/neuroglancer/raw/{key}/a,b,c/0,0,0/5,13,9": (400, "integers"),
        f"/neuroglancer/gzip/{key}/1,1,1/0,0,0/5,13,9": (400, "unknown encoding"),
        f"/neuroglancer/raw/{key}/2,2,2/0,0,0/12,7,5": (400, "outside the volume"),
        f"/neuroglancer/info/{key}x": (404, ""),
        f"/neuroglancer/info/{viewer.token}": (404, ""),
        f"/neuroglancer/mesh/{key}/1": (400, "only segmentation volumes have meshes"),
        f"/neuroglancer/mesh/{key}/abc": (400, "decimal"),
        "/neuroglancer/info/nope.nope": (404, "unknown viewer"),
        f"/v/{viewer.token}/../../etc/passwd": (404, ""),
        f"/v/{viewer.token}/%2e%2e%2fetc%2fpasswd": (404, ""),
        f"/v/{viewer.token}/.hidden": (404, ""),
        f"/v/{viewer.token}/no-such-file.js": (404, "no such file"),
        "/somewhere/else": (404, ""),
    }
    for path, (status, message) in cases.items():
        reply = request(base + path)
        assert reply.status == status, (path, reply.status, reply.text)
        assert message in reply.text, (path, reply.text)
    bodies = [b"not json", b"[1, 2]", b'{"s": 1}', b'{"s": {}, "g": 1, "pg": "x"}', b"\xff\xfe"]
    for body in bodies:
        for route in ("state", "action"):
            reply = request(f"{base}/{route}/{viewer.token}", body, method="POST")
            assert reply.status == 400, (route, body, reply.status)
    assert request(f"{base}/events/{viewer.token}").status == 400  # no client id
    # The server is still fine.
    assert request(chunk_url(viewer, layer, (1, 1, 1), (0, 0, 0), (9, 13, 22))).status == 200


def test_requests_without_the_token_get_nothing(viewer: ngshow.Viewer) -> None:
    layer = viewer.add(asymmetric((4, 5, 6), "uint8"), kind="image")
    base = base_url(viewer)
    wrong = "0" * 40
    assert request(f"{base}/v/{viewer.token}/").status == 200
    assert b"main.bundle.js" in request(f"{base}/v/{viewer.token}/").body
    for path in (f"/v/{wrong}/", f"/v/{wrong}/main.bundle.js", f"/events/{wrong}?c=x&gs=", f"/neuroglancer/info/{wrong}.{layer.token}"):
        reply = request(base + path)
        assert reply.status == 404 and b"bundle" not in reply.body, path
    for route in ("state", "action", "credentials"):
        assert post_json(f"{base}/{route}/{wrong}", {}).status == 404
    # A foreign Host header (DNS rebinding) is refused.
    parts = urlsplit(viewer.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("GET", f"/v/{viewer.token}/", headers={"Host": f"evil.example:{parts.port}"})
    assert conn.getresponse().status == 403
    conn.close()


def test_static_client_headers(viewer: ngshow.Viewer) -> None:
    base = f"{viewer.url}"
    assert request(base + "main.bundle.js").headers["Content-Type"].startswith("application/javascript")
    assert request(base + "chunk_worker.bundle.js").status == 200
    assert request(base + "libpng.wasm").headers["Content-Type"] == "application/wasm"
    assert request(base + "main.bundle.css").headers["Content-Type"].startswith("text/css")
    assert request(base_url(viewer) + "/favicon.ico").status == 204
    redirect = request(viewer.url.rstrip("/"))  # urllib follows the redirect to the slash form
    assert redirect.status == 200 and b"main.bundle.js" in redirect.body


def test_state_post_generation_rules(viewer: ngshow.Viewer) -> None:
    url = f"{base_url(viewer)}/state/{viewer.token}"
    current = viewer.documents["s"].generation
    assert post_json(url, {"s": {"layout": "xy"}, "g": 1, "pg": "", "c": "abc"}).status == 412
    reply = post_json(url, {"s": {"layout": "xy"}, "g": 1, "pg": current, "c": "abc"})
    assert reply.status == 200 and reply.json() == {"g": "abc/1"}
    assert viewer.state.layout == "xy"
    # Based on the old generation again: stale.
    assert post_json(url, {"s": {"layout": "3d"}, "g": 2, "pg": current, "c": "abc"}).status == 412
    assert post_json(url, {"s": {"layout": "3d"}, "g": 2, "pg": "abc/1", "c": "abc"}).json() == {"g": "abc/2"}
    with viewer.txn() as s:
        s.layout = "4panel"
    assert post_json(url, {"s": {"layout": "xz"}, "g": 3, "pg": "abc/2", "c": "abc"}).status == 412
    assert viewer.state.layout == "4panel"


class EventStream:
    """A raw SSE connection to /events, reading one ``data:`` message at a time."""

    def __init__(self, viewer: ngshow.Viewer, client: str, **generations: str) -> None:
        """``generations`` maps each watched key (``s``, ``c``) to the last generation seen."""
        parts = urlsplit(viewer.url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        query = "&".join([f"c={client}"] + [f"g{k}={v}" for k, v in generations.items()])
        self.conn.request("GET", f"/events/{viewer.token}?{query}")
        self.response = self.conn.getresponse()
        assert self.response.status == 200
        assert self.response.headers["Content-Type"] == "text/event-stream"

    def next(self) -> dict[str, Any]:
        while True:
            line = self.response.fp.readline().decode()
            if line.startswith("data: "):
                return json.loads(line[6:])  # type: ignore[no-any-return]

    def close(self) -> None:
        self.conn.close()


def test_event_stream_pushes_state_and_suppresses_echo(viewer: ngshow.Viewer) -> None:
    with viewer.txn() as s:
        s.layout = "xy"
    stream = EventStream(viewer, "abc", s="", c="")
    first = [stream.next(), stream.next()]
    by_key = {m["k"]: m for m in first}
    assert set(by_key) == {"s", "c"} and by_key["s"]["s"]["layout"] == "xy"
    generation = by_key["s"]["g"]

    with viewer.txn() as s:
        s.position = [1, 2, 3]
    pushed = stream.next()
    assert pushed["k"] == "s" and pushed["s"]["position"] == [1, 2, 3]

    other = EventStream(viewer, "other", s=pushed["g"])
    url = f"{base_url(viewer)}/state/{viewer.token}"
    reply = post_json(url, {"s": {"layout": "3d"}, "g": 5, "pg": pushed["g"], "c": "abc"})
    assert reply.json() == {"g": "abc/5"}
    # Another tab gets abc's edit; abc itself does not get its own edit back...
    assert other.next() == {"k": "s", "s": {"layout": "3d"}, "g": "abc/5"}
    with viewer.txn() as s:
        s.layout = "xz"
    # ...so the next thing abc sees is Python's change.
    nxt = stream.next()
    assert nxt["s"]["layout"] == "xz" and nxt["g"] != generation
    # A page opened with a #state URL watches only the config document.
    config_only = EventStream(viewer, "frag", c="")
    assert config_only.next()["k"] == "c"
    for s_ in (stream, other, config_only):
        s_.close()


def test_invalidate_bumps_source_generation(viewer: ngshow.Viewer) -> None:
    layer = viewer.add(np.zeros((2, 3, 4), np.uint8), kind="image")
    config, _ = viewer.documents["c"].snapshot()
    assert config["sourceGenerations"] == {layer.key: 0}
    layer.invalidate()
    config, _ = viewer.documents["c"].snapshot()
    assert config["sourceGenerations"] == {layer.key: 1}
    assert request(f"{base_url(viewer)}/neuroglancer/info/{layer.key}").json()["generation"] == 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    factors=st.lists(st.integers(-1, 9), min_size=0, max_size=4),
    start=st.lists(st.integers(-3, 30), min_size=0, max_size=4),
    end=st.lists(st.integers(-3, 30), min_size=0, max_size=4),
    encoding=st.sampled_from(["raw", "npz", "jpeg", "zip", ""]),
)
def test_any_chunk_request_is_answered_200_or_4xx(
    viewer: ngshow.Viewer, factors: list[int], start: list[int], end: list[int], encoding: str
) -> None:
    layer = viewer.layers.get("v") or viewer.add(asymmetric((9, 13, 22), "uint8"), name="v", kind="image")
    join = lambda v: ",".join(str(x) for x in v)  # noqa: E731
    reply = request(f"{base_url(viewer)}/neuroglancer/{encoding}/{layer.key}/{join(factors)}/{join(start)}/{join(end)}")
    assert reply.status in (200, 400, 404), (reply.status, reply.text)
    if reply.status == 200:
        shape = [e - s for s, e in zip(start, end)][::-1]
        if encoding == "raw":
            assert len(reply.body) == int(np.prod(shape))
    else:
        assert reply.text  # says what is wrong
