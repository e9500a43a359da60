"""Type stubs for ngshow's C++ extension (native/)."""

from typing import Any

import numpy as np

def downsample_mean(
    input: np.ndarray[Any, Any], factors: tuple[int, ...], out: np.ndarray[Any, Any]
) -> None: ...
def downsample_mode(
    input: np.ndarray[Any, Any], factors: tuple[int, ...], out: np.ndarray[Any, Any]
) -> None: ...
