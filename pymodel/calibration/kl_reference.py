"""Entropy (KL-divergence) calibration written as a plain loop, straight from TensorRT's
description (Migacz, "8-bit Inference with TensorRT", GTC 2017)::

    for i in range(128, 2048 + 1):                    # candidate: keep bins 0 .. i-1
        P = bin[0 .. i-1];  P[i-1] += sum(bin[i ..])   # outliers folded into the last bin
        Q = quantize bin[0 .. i-1] into 128 levels, expand back to i bins
        P /= sum(P);  Q /= sum(Q)
        divergence[i] = KL(P || Q)
    threshold = argmin_i divergence[i] * bin_width

"Quantize into 128 levels" merges consecutive bins (bin ``k`` into level
``floor(k * 128 / i)``); "expand" spreads each level's total evenly over the bins of
that level that are non-empty in ``P`` (empty bins stay empty).  Where the whole last
level is empty but ``P`` holds the outliers there, ``Q`` gets a pseudo-count of one.  ``docs/calibration.md``
explains the choices where the description is silent (uneven groups, the upper
candidate ``i = 2048``, ties).  This module is deliberately slow and literal: one candidate at a time, one level
at a time, no prefix sums.  It is the oracle the vectorized
:func:`pymodel.calibration.calibrators.kl_divergences` is tested against (to the bin), and the
baseline of ``bench/bench_calibration.py``.  Not used on any production path.
"""

from __future__ import annotations

import math

import numpy as np

from pymodel.calibration.calibrators import pick_largest_minimum


def kl_divergence_loop(p: list[float], q: list[float]) -> float:
    """``sum_{p>0} p log(p / q)`` of two normalized distributions; ``inf`` if some
    ``p > 0`` has ``q == 0``."""
    kl = 0.0
    for pk, qk in zip(p, q):
        if pk > 0.0:
            if qk == 0.0:
                return math.inf
            kl += pk * math.log(pk / qk)
    return kl


def quantize_expand_loop(bins: list[float], nonempty_in_p: list[bool],
                         levels: int) -> list[float]:
    """Merge ``bins`` (length ``i``) into ``levels`` levels and expand back to ``i`` bins,
    each level's total spread evenly over its bins that are non-empty in ``P``."""
    i = len(bins)
    groups: list[list[int]] = [[] for _ in range(levels)]
    for k in range(i):
        groups[k * levels // i].append(k)
    q = [0.0] * i
    for members in groups:
        total = sum(bins[k] for k in members)
        nonempty = [k for k in members if nonempty_in_p[k]]
        for k in nonempty:
            q[k] = total / len(nonempty)
    return q


def kl_divergences_loop(counts: np.ndarray, levels: int = 128,
                        start_bin: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Divergence of every candidate ``i`` in ``start_bin .. bins`` (slow reference).

    Returns:
        ``(candidates, kl)`` like :func:`pymodel.calibration.calibrators.kl_divergences`.
    """
    hist = [float(c) for c in np.asarray(counts).tolist()]
    start = levels if start_bin is None else start_bin
    cands, kls = [], []
    for i in range(start, len(hist) + 1):
        p = hist[:i]                       # take the first i bins ...
        p[i - 1] += sum(hist[i:])          # ... and fold the outliers into the last one
        q = quantize_expand_loop(hist[:i], [v != 0 for v in p], levels)
        if q[i - 1] == 0 and p[i - 1] > 0:
            q[i - 1] = 1.0                 # pseudo-count: empty last group with outliers
        p_sum, q_sum = sum(p), sum(q)
        p = [v / p_sum for v in p]
        q = [v / q_sum for v in q]
        cands.append(i)
        kls.append(kl_divergence_loop(p, q))
    return np.asarray(cands, np.int64), np.asarray(kls, np.float64)


def entropy_threshold_bins_loop(counts: np.ndarray, levels: int = 128,
                                start_bin: int | None = None) -> int:
    """Number of bins kept (smallest KL, near-ties to the largest threshold)."""
    cands, kl = kl_divergences_loop(counts, levels, start_bin)
    return int(cands[pick_largest_minimum(kl)])
