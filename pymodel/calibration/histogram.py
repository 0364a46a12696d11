"""A streaming histogram of ``|x|`` whose result does not depend on how the data is split.

The histogram-based calibrators (percentile, KL / entropy, MSE) need the distribution
of an activation tensor over the whole calibration set, but must not keep the
activations.  They must also give the same answer however the same data arrives: in
one batch or many, in any order.  :class:`AbsHistogram` gets both from two grids:

* **a fine grid anchored at a power of two.**  ``fine_bins = bins * FINE`` bins over
  ``[0, 2^e)``, with ``e`` the smallest exponent such that ``2^e > max|x|`` seen so far.
  A value goes to fine bin ``floor(|x| * 2^(log2(fine_bins) - e))`` -- a multiplication
  by a power of two, exact in floating point -- and when a larger value arrives, ``e``
  grows and every ``2^k`` adjacent fine bins merge into one (old edges are new edges).
  So the fine counts are, count for count, the histogram of all the values seen over
  ``[0, 2^E]`` (``E`` from the overall maximum): a function of the *multiset* of
  values, not of their order or batching.
* **the final grid** the calibrators search: ``bins`` (2048, as TensorRT) bins, each
  ``g`` adjacent fine bins, with ``g = ceil(n / bins)`` and ``n`` the number of fine bins
  up to the last non-empty one.  The final range ``bins * g * 2^E / fine_bins`` is the
  overall ``max|x|`` rounded up by less than ``bins + 1`` fine bins, i.e. by less than
  ``2 / FINE`` of ``max|x|`` (1/16): the final bins are at most ~6 % wider than
  ``max|x| / bins``.  It is computed from the fine counts alone, so it inherits their
  independence of the split.

(A grid anchored at the first batch's maximum, widened by doubling, depends on which
batch comes first: with ``20`` batches of a heavy-tailed distribution the final range
can be nearly twice ``max|x|``, and the smallest entropy candidate -- 128 final bins --
moves with it.)

Memory is ``O(bins * FINE)`` (2048 * 32 int64 counts = 512 KiB) whatever the number of
samples; time is ``O(samples)``, in chunks of ``CHUNK`` values so the temporaries stay
small.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pymodel import validate

DEFAULT_BINS = 2048
#: Fine bins per final bin (a power of two).
FINE = 32
CHUNK = 1 << 20  # values binned per numpy call: bounds the temporaries to ~16 MB


def ceil_exponent(amax: float) -> int:
    """The smallest integer ``e`` with ``2^e > amax`` (``amax > 0``, finite): ``frexp``'s
    exponent.  Strictly greater, so no value lands on the grid's upper edge (a value
    clamped into the last bin would merge differently from one binned directly)."""
    return math.frexp(amax)[1]


class AbsHistogram:
    """Histogram of ``|x|``: exact fine counts over ``[0, 2^exponent]``, read through a
    final grid of ``bins`` bins over ``[0, range]``.

    Final bin ``k`` counts the values with ``k * width <= |x| < (k + 1) * width``.  Until a non-zero value arrives
    there is no exponent, ``range`` is 0.0 and every value (all zeros) is in bin 0.

    Attributes:
        bins: number of final bins, a power of two >= 2.
        fine_bins: ``bins * FINE``.
        fine_counts: int64 ``[fine_bins]``, the exact counts over ``[0, 2^exponent)``.
        exponent: int, or ``None`` before the first non-zero value.
    """

    def __init__(self, bins: int = DEFAULT_BINS, signed: bool = False) -> None:
        b = validate.int_scalar("bins", bins, 2, 1 << 24)
        if b & (b - 1):
            raise ValueError(f"bins: {b} is not a power of two; the histogram widens by "
                             "merging 2^k bins, which needs a power-of-two bin count")
        self.bins = b
        self.fine_bins = b * FINE
        self._log2_fine = self.fine_bins.bit_length() - 1
        self.fine_counts = np.zeros(self.fine_bins, np.int64)
        #: ``signed=True``: the negative values' share of ``fine_counts`` (same grid), for
        #: the calibrators that search a signed histogram (onnxruntime's entropy).
        self.neg_fine_counts: np.ndarray | None = (np.zeros(self.fine_bins, np.int64)
                                                   if signed else None)
        self.exponent: int | None = None

    # -- the final grid --------------------------------------------------------------
    @property
    def group(self) -> int:
        """Fine bins per final bin, ``ceil(n / bins)`` (1 .. FINE)."""
        nz = np.flatnonzero(self.fine_counts)
        used = int(nz[-1]) + 1 if nz.size else 1
        return -(-used // self.bins)

    @property
    def counts(self) -> np.ndarray:
        """int64 ``[bins]``: the final bins' counts."""
        g = self.group
        return self.fine_counts[: self.bins * g].reshape(self.bins, g).sum(axis=1)

    @property
    def fine_width(self) -> float:
        """Fine bin width ``2^exponent / fine_bins`` (0.0 before any non-zero value)."""
        return 0.0 if self.exponent is None else math.ldexp(1.0, self.exponent - self._log2_fine)

    @property
    def width(self) -> float:
        """Final bin width (real units); 0.0 before any non-zero value."""
        return self.group * self.fine_width

    @property
    def range(self) -> float:
        """Upper edge of the last final bin, ``bins * width`` (real units), >= max|x|
        (``inf`` only for data within 1/16 of the largest float64)."""
        return self.bins * self.width

    @property
    def total(self) -> int:
        """Number of values counted."""
        return int(self.fine_counts.sum())

    def signed_counts(self) -> np.ndarray:
        """int64 ``[2 * bins]``: the final grid mirrored, a histogram of ``x`` over
        ``[-range, range]`` (bin ``bins + k`` counts ``k w <= x < (k + 1) w``, bin
        ``bins - 1 - k`` counts ``k w < -x <= ...``, i.e. ``|x|`` in final bin ``k``).

        Raises:
            ValueError if the histogram was made without signs (``signed=False``).
        """
        if self.neg_fine_counts is None:
            raise ValueError("histogram: made without signs (signed=False); the signed "
                             "histogram needs the statistics collected with signs")
        g = self.group
        neg = self.neg_fine_counts[: self.bins * g].reshape(self.bins, g).sum(axis=1)
        return np.concatenate((neg[::-1], self.counts - neg))

    def edges(self) -> np.ndarray:
        """Final bin edges, float64 ``[bins + 1]`` from 0 to ``range``."""
        return np.arange(self.bins + 1, dtype=np.float64) * self.width

    # -- streaming -------------------------------------------------------------------
    def update(self, x: Any) -> None:
        """Count the magnitudes of ``x`` (any shape; finite reals, checked by the caller).

        Args:
            x: float array of any shape.
        """
        flat = np.asarray(x, np.float64).reshape(-1)
        if flat.size == 0:
            return
        amax = float(np.max(np.abs(flat)))
        if amax > 0.0:
            e = ceil_exponent(amax)
            if self.exponent is None or e > self.exponent:
                self._widen(e)
        if self.exponent is None:          # only zeros so far
            self.fine_counts[0] += flat.size
            return
        k = self._log2_fine - self.exponent
        factor = math.ldexp(1.0, k) if -1000 < k < 1000 else None
        top = self.fine_bins - 1
        for start in range(0, flat.size, CHUNK):
            a = np.abs(flat[start:start + CHUNK])
            if factor is None:
                a = np.ldexp(a, k)         # exact where 2^k itself is not a normal float
            else:
                a *= factor                # exact: a power-of-two scaling
            idx = a.astype(np.int64)
            np.minimum(idx, top, out=idx)
            if self.neg_fine_counts is None:
                self.fine_counts += np.bincount(idx, minlength=self.fine_bins)
                continue
            # one bincount over [fine bin + fine_bins * (x < 0)]: both signs at once
            neg = (flat[start:start + CHUNK] < 0).astype(np.int64)
            idx += neg << self._log2_fine
            both = np.bincount(idx, minlength=2 * self.fine_bins)
            self.fine_counts += both[: self.fine_bins] + both[self.fine_bins:]
            self.neg_fine_counts += both[self.fine_bins:]

    def _widen(self, e: int) -> None:
        """Grow the fine grid to ``[0, 2^e)``, merging ``2^(e - exponent)`` bins."""
        if self.exponent is not None:
            self.fine_counts = self._merged(self.fine_counts, e - self.exponent)
            if self.neg_fine_counts is not None:
                self.neg_fine_counts = self._merged(self.neg_fine_counts, e - self.exponent)
        self.exponent = e                  # first non-zero: the zeros stay in bin 0

    def _merged(self, counts: np.ndarray, k: int) -> np.ndarray:
        """``counts`` with every ``2^k`` adjacent fine bins merged into one."""
        merged = np.zeros(self.fine_bins, np.int64)
        if k >= self._log2_fine:
            merged[0] = counts.sum()
        else:
            f = 1 << k
            merged[: self.fine_bins // f] = counts.reshape(-1, f).sum(axis=1)
        return merged

    def copy(self) -> "AbsHistogram":
        h = AbsHistogram(self.bins, signed=self.neg_fine_counts is not None)
        if self.neg_fine_counts is not None:
            h.neg_fine_counts = self.neg_fine_counts.copy()
        h.fine_counts = self.fine_counts.copy()
        h.exponent = self.exponent
        return h
