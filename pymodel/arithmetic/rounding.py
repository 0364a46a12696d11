"""Float -> integer rounding rules.

The golden model uses exactly one rule wherever a real number becomes an integer:
**round half away from zero** (C's ``std::round``, TFLite's ``TfLiteRound``).
``numpy.round`` / ``numpy.rint`` round half to *even* and are never used for this.
"""

from __future__ import annotations

import numpy as np


def round_half_away(x: np.ndarray | float) -> np.ndarray:
    """Round to the nearest integer, ties away from zero (``std::round``).

    Exact for every float64: ``floor(|x|)`` and ``|x| - floor(|x|)`` are computed
    without rounding error, so there is no ``floor(x + 0.5)`` double-rounding trap
    (e.g. 0.49999999999999994 -> 0, not 1).

    Args:
        x: float array or scalar.

    Returns:
        float64 ndarray of the input's shape (0-d for a scalar) holding integers.
    """
    x = np.asarray(x, dtype=np.float64)
    a = np.abs(x)
    f = np.floor(a)
    return np.asarray(np.copysign(f + (a - f >= 0.5), x))
