"""``run()``: the one place a plan is executed, on any :class:`concurrent.futures.Executor`.

The driver writes ``info``, ``mesh/info``, ``segment_properties/info`` and ``provenance``; tasks write chunks and meshes.
Stages are barriers.  Inside a stage at most ``max_in_flight`` tasks are submitted at once, so
a plan of a million tasks (each carrying its input region) never piles up in memory.
"""

from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import ConvertError
from .executors import CleanProcessPool
from .inputs import Region, Spill
from .plan import SEGMENT_PROPERTIES_DIR, Plan, Stage
from .storage import Store
from .tasks import Task, TaskResult, execute, piece_folder

__all__ = ["RunReport", "StageReport", "run", "default_executor"]

log = logging.getLogger(__name__)


@dataclass
class StageReport:
    """What one stage did."""

    name: str
    tasks: int
    skipped_tasks: int = 0
    written: int = 0
    skipped: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    seconds: float = 0.0

    def add(self, r: TaskResult) -> None:
        self.skipped_tasks += int(r.skipped_task)
        self.written += r.written
        self.skipped += r.skipped
        self.bytes_in += r.bytes_in
        self.bytes_out += r.bytes_out


@dataclass
class RunReport:
    """Per-stage reports of one :func:`run`."""

    dest: str
    stages: list[StageReport] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)


def default_executor(workers: int | None = None) -> CleanProcessPool:
    """A pool of ``workers`` (default: all cores) clean worker processes.

    Workers start from a fresh interpreter that imports only ngshow's task code, never the
    caller's ``__main__``, so plain scripts without a main guard, ``python -c``, stdin and
    notebooks all work (:mod:`ngshow.convert.executors`).
    """
    return CleanProcessPool(workers)


def _width(executor: Executor) -> int:
    """How many tasks ``executor`` runs at once (best effort)."""
    n = getattr(executor, "_max_workers", None)
    if isinstance(n, int) and n > 0:
        return n
    client = getattr(executor, "_client", None)  # dask.distributed's ClientExecutor
    if client is not None:
        try:
            return max(1, int(sum(client.nthreads().values())))
        except Exception:  # pragma: no cover - a client that is closing
            return 4
    return 4


def _write_documents(plan: Plan, store: Store) -> None:
    existing = store.get("info")
    if existing is not None:
        try:
            same = json.loads(existing) == plan.info
        except ValueError:
            same = False
        if not same:
            raise ConvertError(
                f"{store.url} already holds a different dataset (its info differs from this "
                "plan's); choose another destination or delete it"
            )
    store.clear_temporary()
    if existing != plan.info_json.encode():
        store.put("info", plan.info_json.encode())
    store.put("provenance", plan.provenance_json.encode())
    if plan.mesh_dir is not None:
        doc = plan.mesh_info_json or '{"@type":"neuroglancer_legacy_mesh"}'
        store.put(f"{plan.mesh_dir}/info", doc.encode())
    if plan.segment_properties_json is not None:
        store.put(f"{SEGMENT_PROPERTIES_DIR}/info", plan.segment_properties_json.encode())


def _run_stage(
    stage: Stage,
    executor: Executor,
    limit: int,
    progress: bool,
    report: StageReport,
    prepare: Callable[[Task], Task] | None = None,
) -> None:
    from tqdm.auto import tqdm

    tasks = iter(stage.tasks if prepare is None else map(prepare, stage.tasks))
    pending: set[Future[TaskResult]] = set()
    with tqdm(total=len(stage), desc=stage.name, unit="task", disable=not progress, leave=True) as bar:
        exhausted = False
        while True:
            while not exhausted and len(pending) < limit:
                task = next(tasks, None)
                if task is None:
                    exhausted = True
                    break
                pending.add(executor.submit(execute, task))
            if not pending:
                return
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                try:
                    report.add(fut.result())
                except BaseException as e:
                    for other in pending:
                        other.cancel()
                    raise ConvertError(
                        f"a task of stage {stage.name!r} failed: {type(e).__name__}: {e}; "
                        "rerun the same plan to resume"
                    ) from e
            bar.update(len(done))


def _spilling(spiller: Spill) -> Callable[[Task], Task]:
    def prepare(task: Task) -> Task:
        region = getattr(task, "region", None)
        if isinstance(region, Region) and region.in_memory:
            return replace(task, region=spiller.region(region))  # type: ignore[type-var]
        return task

    return prepare


def run(
    plan: Plan,
    executor: Executor | None = None,
    *,
    progress: bool = True,
    workers: int | None = None,
    max_in_flight: int | None = None,
    spill: bool | str | os.PathLike[str] | None = None,
) -> RunReport:
    """Execute ``plan``: write the documents, then each stage's tasks on ``executor``.

    Parameters
    ----------
    plan
        From :func:`ngshow.convert.plan`.
    executor
        Any :class:`concurrent.futures.Executor`, e.g. a dask.distributed
        ``Client.get_executor()``.  Default: a process pool of ``workers``, shut down afterwards.
    progress
        Show one tqdm bar per stage (on this, the driver, process only).
    max_in_flight
        Tasks submitted at once (default: twice the executor's width).
    spill
        Write in-memory NumPy inputs once to a ``.npy`` file that workers map, instead of
        pickling each task's region to them: a folder for it (shared storage for a cluster), True
        (a temporary folder, in ``/dev/shm`` when it has room), or False.  Default: True for
        process pools, False otherwise (a Dask cluster's workers may not see this machine's
        files).  The output is the same either way.

    Rerunning a plan (after a crash, a kill, or to completion) skips every finished output and
    produces the same bytes as an uninterrupted run.

    Raises
    ------
    ConvertError
        If the destination holds a different dataset, or a task failed.
    """
    store = Store(plan.dest)
    _write_documents(plan, store)
    own = executor is None
    pool: Executor = default_executor(workers) if executor is None else executor
    limit = max_in_flight or 2 * _width(pool)
    report = RunReport(plan.dest)
    if spill is None:
        spill = isinstance(pool, (ProcessPoolExecutor, CleanProcessPool))
    spiller: Spill | None = None
    if spill is not False:
        spiller = Spill(None if spill is True else spill)
    prepare = None if spiller is None else _spilling(spiller)
    try:
        for stage in plan.stages:
            sr = StageReport(stage.name, len(stage))
            t0 = time.perf_counter()
            _run_stage(stage, pool, limit, progress, sr, prepare)
            sr.seconds = time.perf_counter() - t0
            report.stages.append(sr)
            log.info(
                "%s: %d tasks (%d already done), %d objects written, %.1f s",
                stage.name, sr.tasks, sr.skipped_tasks, sr.written, sr.seconds,
            )
    finally:
        if own:
            pool.shutdown(wait=True, cancel_futures=True)
        if spiller is not None:
            spiller.close()
    store.clear_temporary()
    if plan.mesh_dir is not None:
        # The multi-resolution merge has read every forge piece: they are scratch now.
        store.remove_folder(piece_folder(plan.mesh_dir))
    return report
