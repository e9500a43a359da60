"""``ngshow.convert``: arrays to Neuroglancer *precomputed* datasets, on any executor.

>>> from ngshow import convert
>>> p = convert.plan(labels, "out/seg", kind="segmentation", voxel_size=(8, 8, 8), mesh=True)
>>> convert.run(p)                                  # a local process pool
>>> convert.run(p, client.get_executor())           # or a dask.distributed cluster
>>> convert.validate("out/seg")                     # [] when the dataset is whole
"""

from __future__ import annotations

from .annotations import write_annotations
from .errors import ConvertError, MissingChunk
from .inputs import open_input
from .plan import Plan, Stage, plan
from .run import RunReport, StageReport, default_executor, run
from .storage import Store
from .validate import Problem, validate

__all__ = [
    "ConvertError",
    "MissingChunk",
    "Plan",
    "Problem",
    "RunReport",
    "Stage",
    "StageReport",
    "Store",
    "default_executor",
    "open_input",
    "plan",
    "run",
    "validate",
    "write_annotations",
]
