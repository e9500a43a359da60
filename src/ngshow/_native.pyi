"""Type stubs for ngshow's C++ extension (native/)."""

from typing import Any

import numpy as np

def downsample_mean(
    input: np.ndarray[Any, Any], factors: tuple[int, ...], out: np.ndarray[Any, Any]
) -> None: ...
def downsample_mode(
    input: np.ndarray[Any, Any], factors: tuple[int, ...], out: np.ndarray[Any, Any]
) -> None: ...
def encode_compressed_segmentation(labels: np.ndarray[Any, Any], block: tuple[int, int, int]) -> bytes: ...
def mesh_labels(
    labels: np.ndarray[Any, Any],
    scale: tuple[float, float, float],
    origin: tuple[float, float, float],
    target: int | None,
    max_error: float,
    min_normal_dot: float,
    box: tuple[float, ...] | None,
    normals: bool,
    threads: int,
    smooth_iterations: int,
) -> list[tuple[int, np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any] | None]]: ...

def simplify_mesh(
    vertices: np.ndarray[Any, Any],
    faces: np.ndarray[Any, Any],
    max_error: float,
    min_normal_dot: float,
    box: tuple[float, ...] | None,
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]: ...

class BoxAccumulator:
    def __init__(self) -> None: ...
    def add(self, slab: np.ndarray[Any, Any], z0: int) -> None: ...
    def result(self) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]: ...
