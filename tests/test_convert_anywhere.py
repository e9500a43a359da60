"""``convert.run`` from anywhere: plain scripts without a main guard, ``python -i``, ``python -c``,
a script on stdin, a module whose top-level code starts a viewer, and a Jupyter kernel.  Workers are clean
interpreters (:mod:`ngshow.convert.executors`) that never re-run the user's code."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from ngshow.convert import plan, run, validate
from ngshow.convert.executors import CleanProcessPool, WorkerDied

from .test_convert import tree

# No main guard; a top-level viewer and print; an input class defined in __main__ (it must travel
# to the workers by value).
BODY = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    import ngshow
    from ngshow import convert

    viewer = ngshow.Viewer()
    print("TOP-LEVEL CODE RAN", flush=True)

    class Wrapped:
        def __init__(self, data):
            self.data, self.shape, self.dtype = data, data.shape, data.dtype

        def __getitem__(self, box):
            return np.asarray(self.data[box])

    def volume():
        z, y, x = np.mgrid[:40, :48, :56]
        seg = np.zeros(x.shape, np.uint32)
        seg[(x - 20) ** 2 + (y - 24) ** 2 + (z - 20) ** 2 < 14**2] = 5
        seg[4:20, 30:46, 30:54] = 9
        return seg

    out = os.environ["NGSHOW_TEST_OUT"]
    p = convert.plan(Wrapped(volume()), out, kind="segmentation", voxel_size=(8, 8, 8),
                     chunk_size=16, mesh=True, min_tasks=4)
    convert.run(p, workers=2, progress=False)
    ngshow.stop()
    print("DONE", flush=True)
    """
)


def volume() -> np.ndarray:  # the same as BODY's
    z, y, x = np.mgrid[:40, :48, :56]
    seg = np.zeros(x.shape, np.uint32)
    seg[(x - 20) ** 2 + (y - 24) ** 2 + (z - 20) ** 2 < 14**2] = 5
    seg[4:20, 30:46, 30:54] = 9
    return seg


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("reference") / "seg"
    p = plan(volume(), str(out), kind="segmentation", voxel_size=(8, 8, 8), chunk_size=16, mesh=True, min_tasks=4)
    with ThreadPoolExecutor(2) as pool:
        run(p, pool, progress=False)
    return tree(out)


def _launch(mode: str, tmp: Path) -> list[str]:
    script = tmp / "job.py"
    script.write_text(BODY)
    if mode == "script":
        return [sys.executable, str(script)]
    if mode == "interactive":
        return [sys.executable, "-i", str(script)]
    if mode == "command":
        return [sys.executable, "-c", BODY]
    if mode == "stdin":
        return [sys.executable, "-"]
    if mode == "module":
        (tmp / "topmod.py").write_text(BODY)
        return [sys.executable, "-m", "topmod"]
    raise AssertionError(mode)


@pytest.mark.parametrize("mode", ["script", "interactive", "command", "stdin", "module"])
def test_convert_runs_from_any_kind_of_main(mode: str, tmp_path: Path, reference: dict[str, bytes]) -> None:
    out = tmp_path / "seg"
    env = {**os.environ, "NGSHOW_TEST_OUT": str(out), "PYTHONPATH": os.pathsep.join(sys.path)}
    stdin = BODY if mode == "stdin" else ""  # `python -i` reads EOF at its prompt and exits
    proc = subprocess.run(
        _launch(mode, tmp_path), input=stdin.encode(), capture_output=True, cwd=tmp_path, env=env, timeout=240
    )
    output = (proc.stdout + proc.stderr).decode()
    assert proc.returncode == 0, output
    assert "DONE" in output
    # The user's top-level code ran once, in the driver only: no worker re-imported __main__.
    assert output.count("TOP-LEVEL CODE RAN") == 1, output
    assert "bootstrapping phase" not in output
    assert validate(str(out), full=True) == []
    assert tree(out) == reference


def _square(x: int) -> int:
    return x * x


def _fail(x: int) -> int:
    raise KeyError(f"bad {x}")


def _sleep_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def test_pool_results_errors_and_worker_death() -> None:
    pool = CleanProcessPool(2)
    try:
        assert [f.result() for f in [pool.submit(_square, i) for i in range(20)]] == [i * i for i in range(20)]
        assert pool.submit(lambda v: v + 1, 41).result() == 42  # lambdas travel by value
        with pytest.raises(KeyError, match="bad 3") as info:
            pool.submit(_fail, 3).result()
        assert "_fail" in str(info.value.__cause__)  # the worker's traceback
        pids = {pool.submit(_sleep_pid, 0.2).result() for _ in range(4)}
        assert pids and os.getpid() not in pids
        victim = pool.submit(_sleep_pid, 30)
        deadline = time.monotonic() + 30
        while not victim.running():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        queued = [pool.submit(_sleep_pid, 30) for _ in range(3)]
        time.sleep(0.2)
        # Kill the worker that runs the long task: it fails as WorkerDied, and so does the backlog.
        for pid in pids_of(pool):
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(WorkerDied):
            victim.result(timeout=30)
        for f in queued:
            with pytest.raises(Exception):
                f.result(timeout=30)
        with pytest.raises(Exception, match="broken"):
            pool.submit(_square, 1)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    assert all(w.process.poll() is not None for w in pool._workers)


def pids_of(pool: CleanProcessPool) -> list[int]:
    return [w.process.pid for w in pool._workers]


def test_workers_exit_when_the_driver_is_killed(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import time
        from ngshow.convert.executors import CleanProcessPool
        pool = CleanProcessPool(2)
        print(*[w.process.pid for w in pool._workers], flush=True)
        time.sleep(600)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env) as driver:
        assert driver.stdout is not None
        pids = [int(p) for p in driver.stdout.readline().split()]
        assert len(pids) == 2
        driver.kill()
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in pids):
        assert time.monotonic() < deadline, "workers outlived their driver"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_convert_runs_in_a_jupyter_kernel(tmp_path: Path, reference: dict[str, bytes]) -> None:
    from jupyter_client.manager import KernelManager

    out = tmp_path / "seg"
    env = {**os.environ, "NGSHOW_TEST_OUT": str(out), "PYTHONPATH": os.pathsep.join(sys.path)}
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(env=env, cwd=str(tmp_path))
    client = manager.client()
    client.start_channels()
    printed: list[str] = []

    def collect(message: dict) -> None:
        content = message["content"]
        if message["msg_type"] == "stream":
            printed.append(content["text"])
        elif message["msg_type"] == "error":
            printed.append("\n".join(content["traceback"]))

    try:
        client.wait_for_ready(timeout=120)
        reply = client.execute_interactive(BODY, timeout=240, output_hook=collect)
        assert reply["content"]["status"] == "ok", "".join(printed)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    text = "".join(printed)
    assert text.count("TOP-LEVEL CODE RAN") == 1 and "DONE" in text, text
    assert tree(out) == reference
