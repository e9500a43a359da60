"""Kill test: SIGKILL the worker processes of a run part-way, rerun, and get exactly the output
of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from ngshow.convert import validate

from .test_convert import tree

SCRIPT = textwrap.dedent(
    """
    import sys
    import time

    import numpy as np

    from ngshow.convert import plan, run


    class SlowArray:
        # An input that takes a while per read, so the run can be caught part-way.
        def __init__(self, data, delay):
            self.data, self.delay = data, delay
            self.shape, self.dtype = data.shape, data.dtype

        def __getitem__(self, box):
            time.sleep(self.delay)
            return self.data[box]


    def volume():
        z, y, x = np.mgrid[:48, :64, :80]
        seg = np.zeros(x.shape, np.uint32)
        seg[(x - 30) ** 2 + (y - 30) ** 2 + (z - 24) ** 2 < 20**2] = 7
        seg[(x - 62) ** 2 + (y - 40) ** 2 + (z - 20) ** 2 < 12**2] = 9
        seg[30:46, 2:20, 50:78] = 12
        return seg


    if __name__ == "__main__":
        out, delay = sys.argv[1], float(sys.argv[2])
        sharding = sys.argv[3] if len(sys.argv) > 3 else "off"
        p = plan(SlowArray(volume(), delay), out, kind="segmentation", voxel_size=(8, 8, 8),
                 chunk_size=16, mesh=True, memory_budget=1 << 20, min_tasks=2, sharding=sharding)
        if sharding == "off":
            assert p.stages[0].tasks[0].targets  # scale-0 tasks write the first mip too
        run(p, workers=2, progress=False)
    """
)


def convert(script: Path, out: Path, delay: float, sharding: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(script), str(out), str(delay), sharding],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )


@pytest.mark.parametrize("sharding", ["off", "on"])
def test_killed_run_resumes_to_identical_output(tmp_path: Path, sharding: str) -> None:
    script = tmp_path / "convert_job.py"
    script.write_text(SCRIPT)
    reference, killed = tmp_path / "reference", tmp_path / "killed"

    job = convert(script, killed, 0.1 if sharding == "off" else 0.4, sharding)
    scale0 = killed / "8_8_8"
    deadline = time.monotonic() + 120
    while not (scale0.is_dir() and len(os.listdir(scale0)) >= (8 if sharding == "off" else 1)):
        assert job.poll() is None, job.communicate()
        assert time.monotonic() < deadline, "the run never got going"
        time.sleep(0.02)
    workers = psutil.Process(job.pid).children(recursive=True)
    assert workers
    for w in workers:
        os.kill(w.pid, signal.SIGKILL)
    _out, err = job.communicate(timeout=60)
    assert job.returncode != 0
    assert b"ConvertError" in err
    assert validate(str(killed)) != []  # really interrupted: chunks and meshes are missing

    resumed = convert(script, killed, 0.0, sharding)
    clean = convert(script, reference, 0.0, sharding)
    for proc in (resumed, clean):
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()

    assert validate(str(killed), full=True) == []
    assert tree(killed) == tree(reference)
