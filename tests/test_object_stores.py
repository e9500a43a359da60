"""Real object stores: convert to ``s3://`` (moto in server mode) and ``gs://`` (gcp-storage-emulator),
both started here on 127.0.0.1; validate there; read back byte for byte; survive injected faults;
resume a killed run; view the result through ngshow's server with the standard credential chain."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ngshow.convert import Store, plan, run, validate

from .conftest import request
from .faulty_proxy import FaultyProxy
from .test_convert import tree
from .test_convert_kill import SCRIPT as KILL_SCRIPT

pytestmark = [
    pytest.mark.timeout(600),
    # aiohttp (under gcsfs) advises streaming bodies over 1 MiB; advice, not a fault.
    pytest.mark.filterwarnings("ignore:Sending a large body directly:ResourceWarning"),
]

# fsspec/gcsfs/s3fs are imported lazily below, after the environment is set.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")  # no gRPC probing of the emulator


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, "the endpoint exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            assert time.monotonic() < deadline, "the endpoint never listened"
            time.sleep(0.05)


class Endpoints:
    def __init__(self, s3: int, gcs: int) -> None:
        self.ports = {"s3": s3, "gs": gcs}
        self.buckets = {"s3": "ngshow-s3", "gs": "ngshow-gs"}

    def point(self, scheme: str, url: str | None = None) -> None:
        """Send ``scheme`` traffic (this process and workers) to ``url`` (default: the endpoint)."""
        import fsspec.config
        import gcsfs
        import s3fs

        url = url or f"http://127.0.0.1:{self.ports[scheme]}"
        if scheme == "s3":
            os.environ["AWS_ENDPOINT_URL"] = url
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = url
        # Short client timeouts, so stalls are noticed quickly; workers read this from the env.
        s3_conf = {"config_kwargs": {"read_timeout": 1, "connect_timeout": 1}}
        os.environ["FSSPEC_S3"] = json.dumps(s3_conf)
        fsspec.config.conf["s3"] = s3_conf
        s3fs.S3FileSystem.clear_instance_cache()
        gcsfs.GCSFileSystem.clear_instance_cache()

    def url(self, scheme: str, name: str) -> str:
        return f"{scheme}://{self.buckets[scheme]}/{name}"

    def fs(self, scheme: str) -> Any:
        import fsspec

        return fsspec.filesystem(scheme)


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    s3_port, gcs_port = _free_port(), _free_port()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)], **quiet)
    gcs = subprocess.Popen(
        [sys.executable, "-m", "gcp_storage_emulator", "start", "-H", "127.0.0.1", "--port", str(gcs_port),
         "--in-memory", "-q"],
        **quiet,
    )
    home = tmp_path_factory.mktemp("credentials")
    try:
        _wait_listening(s3_port, moto)
        _wait_listening(gcs_port, gcs)
        with pytest.MonkeyPatch.context() as mp:
            # The standard credential chain: environment variables (no files of the machine's).
            mp.setenv("AWS_ACCESS_KEY_ID", "ngshow-test")
            mp.setenv("AWS_SECRET_ACCESS_KEY", "ngshow-test-secret")
            mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
            mp.setenv("AWS_CONFIG_FILE", str(home / "aws-config"))
            mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "aws-credentials"))
            mp.setenv("GOOGLE_CLOUD_PROJECT", "ngshow-test")
            for name in ("AWS_ENDPOINT_URL", "STORAGE_EMULATOR_HOST", "FSSPEC_S3", "NGSHOW_STORE_RETRIES"):
                mp.delenv(name, raising=False)
            ep = Endpoints(s3_port, gcs_port)
            for scheme in ("s3", "gs"):
                ep.point(scheme)
                ep.fs(scheme).mkdir(ep.buckets[scheme])
            yield ep
            import fsspec.config

            fsspec.config.conf.pop("s3", None)
    finally:
        moto.kill()
        gcs.kill()
        moto.wait()
        gcs.wait()


def volume() -> np.ndarray[Any, Any]:
    z, y, x = np.mgrid[:32, :48, :40]
    seg = np.zeros(x.shape, np.uint32)
    seg[(x - 18) ** 2 + (y - 22) ** 2 + (z - 16) ** 2 < 12**2] = 3
    seg[2:14, 30:46, 4:36] = 8
    return seg


def make_plan(dest: str) -> Any:
    return plan(volume(), dest, kind="segmentation", voxel_size=(8, 8, 8), chunk_size=16, mesh=True, min_tasks=4)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("local") / "seg"
    with ThreadPoolExecutor(2) as pool:
        run(make_plan(str(out)), pool, progress=False)
    return tree(out)


def remote_tree(ep: Endpoints, scheme: str, url: str) -> dict[str, bytes]:
    """Every object under ``url`` (key relative to it -> bytes), read with fsspec."""
    fs = ep.fs(scheme)
    root = url.split("://", 1)[1]
    fs.invalidate_cache()
    keys = fs.find(root)
    return {k[len(root) + 1 :]: bytes(fs.cat_file(k)) for k in keys if "/.ngshow/tmp/" not in k}


@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_convert_to_an_object_store_equals_a_local_run(
    scheme: str, endpoints: Endpoints, reference: dict[str, bytes]
) -> None:
    endpoints.point(scheme)
    url = endpoints.url(scheme, "clean")
    run(make_plan(url), workers=2, progress=False)  # worker processes find the endpoint by the env
    assert validate(url, full=True) == []
    assert remote_tree(endpoints, scheme, url) == reference
    if scheme == "s3":  # and a reader nobody here wrote
        import tensorstore as ts

        spec = {
            "driver": "neuroglancer_precomputed",
            "kvstore": {"driver": "s3", "bucket": endpoints.buckets["s3"], "path": "clean/",
                        "endpoint": os.environ["AWS_ENDPOINT_URL"], "aws_region": "us-east-1"},
            "scale_index": 0,
        }
        read = np.asarray(ts.open(spec).result().read().result())[..., 0].transpose(2, 1, 0)
        assert np.array_equal(read, volume())


@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_convert_survives_injected_faults(
    scheme: str, endpoints: Endpoints, reference: dict[str, bytes], record_property: Any
) -> None:
    upstream = endpoints.ports[scheme]
    proxy = FaultyProxy(upstream, rate=0.1, weights=(0.3, 0.3, 0.25, 0.15), stall_seconds=1.5, seed=13)
    try:
        endpoints.point(scheme, proxy.url)
        url = endpoints.url(scheme, "faulty")
        run(make_plan(url), workers=2, progress=False)
        survived = dict(proxy.counts)
    finally:
        proxy.close()
        endpoints.point(scheme)
    record_property("faults", survived)
    print(f"{scheme}: faults survived {survived}")
    assert proxy.injected >= 10, survived
    assert all(survived.get(kind, 0) > 0 for kind in ("500", "503", "reset", "stall")), survived
    assert validate(url, full=True) == []
    assert remote_tree(endpoints, scheme, url) == reference  # identical to a clean run


def _exists_directly(ep: Endpoints, scheme: str, key: str) -> bool:
    """Whether the endpoint itself (past the proxy) holds ``key``."""
    import fsspec

    direct = f"http://127.0.0.1:{ep.ports[scheme]}"
    fs = fsspec.filesystem(scheme, endpoint_url=direct, skip_instance_cache=True, use_listings_cache=False)
    return bool(fs.exists(f"{ep.buckets[scheme]}/{key}"))


@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_an_interrupted_upload_leaves_no_object(scheme: str, endpoints: Endpoints) -> None:
    key = "partial/object"
    payload = np.random.default_rng(0).integers(0, 255, 1 << 20, dtype=np.uint8).tobytes()
    seen: list[bool] = []
    # The first two uploads are cut off half-way (half the body reached the store, then a reset);
    # after each, the store must hold nothing under the key.  The retry then lands it whole.
    proxy = FaultyProxy(
        endpoints.ports[scheme], rate=1.0, faults=("reset",), budget=2,
        after_fault=lambda _kind: seen.append(_exists_directly(endpoints, scheme, key)),
    )
    try:
        endpoints.point(scheme, proxy.url)
        Store(endpoints.url(scheme, "")).put(key, payload)
    finally:
        proxy.close()
        endpoints.point(scheme)
    assert proxy.counts["reset"] == 2 and seen == [False, False]
    assert Store(endpoints.url(scheme, "")).get(key) == payload
    assert _exists_directly(endpoints, scheme, key)  # the check above sees objects that exist


def test_a_killed_run_on_s3_resumes_to_identical_output(endpoints: Endpoints, tmp_path: Path) -> None:
    endpoints.point("s3")
    script = tmp_path / "convert_job.py"
    script.write_text(KILL_SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    url = endpoints.url("s3", "killed")

    def convert(out: str, delay: float) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, str(script), out, str(delay), "off"], env=env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )

    job = convert(url, 0.1)
    fs, prefix = endpoints.fs("s3"), url.split("://", 1)[1] + "/8_8_8"
    deadline = time.monotonic() + 120
    while True:
        assert job.poll() is None, job.communicate()
        assert time.monotonic() < deadline, "the run never got going"
        fs.invalidate_cache()
        if len(fs.find(prefix)) >= 8:
            break
        time.sleep(0.1)
    os.killpg(job.pid, signal.SIGKILL)  # the driver and its workers at once
    job.communicate(timeout=60)
    assert validate(url) != []  # really interrupted

    local = tmp_path / "reference"
    for proc in (convert(url, 0.0), convert(str(local), 0.0)):
        _out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err.decode()
    assert validate(url, full=True) == []
    assert remote_tree(endpoints, "s3", url) == tree(local)


@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_viewing_a_bucket_through_ngshow(scheme: str, endpoints: Endpoints, reference: dict[str, bytes]) -> None:
    import ngshow

    endpoints.point(scheme)
    url = endpoints.url(scheme, "clean")
    if not Store(url).exists("info"):
        run(make_plan(url), ThreadPoolExecutor(2), progress=False)
    viewer = ngshow.Viewer()
    try:
        viewer.add_precomputed(url, name="seg", through_ngshow=True)
        layer = viewer.state.layers["seg"]
        assert layer["type"] == "segmentation"
        base = layer["source"].removeprefix("precomputed://")
        assert base.startswith(viewer.url.split("/v/")[0] + f"/data/{viewer.token}/")  # behind the token
        chunk = next(k for k in reference if k.startswith("8_8_8/"))
        for key in ("info", chunk, "mesh/info"):
            got = request(f"{base}/{key}")
            assert got.status == 200 and got.body == reference[key], key
        # Ranges (sharded readers use them), and 416 outside the object.
        whole = reference[chunk]
        got = request(f"{base}/{chunk}", headers={"Range": "bytes=2-9"})
        assert got.status == 206 and got.body == whole[2:10]
        assert got.headers["Content-Range"] == f"bytes 2-9/{len(whole)}"
        assert request(f"{base}/{chunk}", headers={"Range": "bytes=-5"}).body == whole[-5:]
        assert request(f"{base}/{chunk}", headers={"Range": f"bytes={len(whole) + 10}-"}).status == 416
        assert request(f"{base}/no/such/key").status == 404
        assert request(f"{base}/../info").status == 404
        # Without the viewer's token nothing of the bucket is served.
        wrong = base.replace(viewer.token, "0" * 40)
        assert request(f"{wrong}/info").status == 404
    finally:
        ngshow.stop()
    with pytest.raises(ngshow.NotFound, match="not a precomputed dataset"):
        ngshow.Viewer().add_precomputed(endpoints.url(scheme, "nothing-here"), through_ngshow=True)
    ngshow.stop()


def test_the_ngshow_command_serves_an_s3_dataset(endpoints: Endpoints, reference: dict[str, bytes]) -> None:
    endpoints.point("s3")
    url = endpoints.url("s3", "clean")
    if not Store(url).exists("info"):
        run(make_plan(url), ThreadPoolExecutor(2), progress=False)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with subprocess.Popen(
        [sys.executable, "-m", "ngshow", url, "--no-browser"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=env, text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == f"{url}: precomputed dataset"
            viewer_url = proc.stdout.readline().strip()
            assert request(viewer_url).status == 200
        finally:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=60)
    assert proc.returncode == 0

