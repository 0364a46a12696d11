"""A streaming histogram of ``|x|`` that widens as larger values arrive.

The histogram-based calibrators (percentile, KL / entropy, MSE) need the distribution
of an activation tensor over the whole calibration set, but must not keep the
activations.  :class:`AbsHistogram` holds a fixed number of bins (2048 by default, as
TensorRT's entropy calibrator does) over ``[0, R]``:

* ``R`` starts at ``max|x|`` of the first batch with a non-zero value, so the bins are
  fully used when no later batch is larger;
* when a batch holds a value above ``R``, ``R`` doubles as often as needed
  (``R' = R * 2^k``) and every group of ``2^k`` adjacent bins merges into one.  The bin
  edges of the old histogram are edges of the new one, so the merge is exact: counts are
  never interpolated or guessed.

Memory is ``O(bins)`` whatever the number of samples; time is ``O(samples)``, processed
in chunks of ``CHUNK`` values so the temporaries stay small.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pymodel import validate

DEFAULT_BINS = 2048
CHUNK = 1 << 20  # values binned per numpy call: bounds the temporaries to ~16 MB


class AbsHistogram:
    """Histogram of ``|x|`` over ``[0, range]`` with ``bins`` equal bins.

    Bin ``k`` counts the values with ``k * w <= |x| < (k + 1) * w``, ``w = range / bins``;
    ``|x| == range`` falls in the last bin.  Until a non-zero value arrives ``range`` is
    0.0 and every value (all zeros) is counted in bin 0.

    Attributes:
        bins: number of bins, a power of two >= 2 (so widening merges bins exactly).
        counts: int64 ``[bins]``, the counts.
        range: float, the upper edge ``R`` of the last bin (real units), >= 0.
    """

    def __init__(self, bins: int = DEFAULT_BINS) -> None:
        b = validate.int_scalar("bins", bins, 2, 1 << 24)
        if b & (b - 1):
            raise ValueError(f"bins: {b} is not a power of two; the histogram widens by "
                             "merging 2^k bins, which needs a power-of-two bin count")
        self.bins = b
        self.counts = np.zeros(b, np.int64)
        self.range = 0.0

    @property
    def width(self) -> float:
        """Bin width ``range / bins`` (real units); 0.0 before any non-zero value."""
        return self.range / self.bins

    @property
    def total(self) -> int:
        """Number of values counted."""
        return int(self.counts.sum())

    def edges(self) -> np.ndarray:
        """Bin edges, float64 ``[bins + 1]`` from 0 to ``range``."""
        return np.arange(self.bins + 1, dtype=np.float64) * self.width

    def update(self, x: Any) -> None:
        """Count the magnitudes of ``x`` (any shape; finite reals, checked by the caller).

        Args:
            x: float array of any shape.
        """
        flat = np.asarray(x, np.float64).reshape(-1)
        if flat.size == 0:
            return
        amax = float(np.max(np.abs(flat)))
        if amax > self.range:
            self._widen(amax)
        if self.range == 0.0:          # only zeros so far
            self.counts[0] += flat.size
            return
        inv = self.bins / self.range
        for start in range(0, flat.size, CHUNK):
            a = np.abs(flat[start:start + CHUNK])
            a *= inv
            idx = a.astype(np.int64)
            np.minimum(idx, self.bins - 1, out=idx)
            self.counts += np.bincount(idx, minlength=self.bins)

    def _widen(self, amax: float) -> None:
        """Grow ``range`` to cover ``amax``: first range = ``amax``, then powers of two."""
        if self.range == 0.0:
            self.range = amax           # counts so far are zeros, already in bin 0
            return
        factor = 1
        while self.range * factor < amax:
            factor *= 2
        if factor >= self.bins:
            merged = np.zeros(self.bins, np.int64)
            merged[0] = self.counts.sum()
        else:
            merged = np.zeros(self.bins, np.int64)
            merged[: self.bins // factor] = self.counts.reshape(-1, factor).sum(axis=1)
        self.counts = merged
        self.range *= factor

    def copy(self) -> "AbsHistogram":
        h = AbsHistogram(self.bins)
        h.counts = self.counts.copy()
        h.range = self.range
        return h
