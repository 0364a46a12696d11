"""Central finite differences for the gradient tests (shared by the float training and
the QAT tests)."""

from __future__ import annotations

from typing import Callable

import numpy as np


def central_differences(loss: Callable[[], float], arr: np.ndarray,
                        eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """``d loss / d arr`` by central differences, perturbing ``arr`` in place.

    Returns:
        ``(num, smooth)``: the float64 gradient estimate, shape of ``arr``, and a bool mask
        of the coordinates where ``loss`` is linear across ``[-eps, +eps]`` (the left and
        right difference quotients agree to 1e-9 relative); elsewhere a ReLU / ReLU6 /
        max-pool switch lies inside the interval and there is no derivative to compare.
    """
    f0 = loss()
    num = np.zeros_like(arr, dtype=np.float64)
    smooth = np.ones(arr.shape, bool)
    for i in np.ndindex(arr.shape):
        old = arr[i]
        arr[i] = old + eps
        up = loss()
        arr[i] = old - eps
        down = loss()
        arr[i] = old
        num[i] = (up - down) / (2 * eps)
        smooth[i] = abs((up - f0) - (f0 - down)) <= 1e-9 * max(1.0, abs(f0))
    return num, smooth
