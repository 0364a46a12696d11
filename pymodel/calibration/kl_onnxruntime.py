"""onnxruntime's entropy calibration (``HistogramCollector.get_entropy_threshold``),
vectorized over the candidates, on a signed histogram.

onnxruntime's KL search (from MXNet's ``_get_optimal_threshold``) differs from
TensorRT's (:func:`pymodel.calibration.calibrators.kl_divergences`) in every step:

* the histogram is signed, ``2 Z`` bins over ``[-R, R]`` (zero at bin ``Z``), and a
  candidate ``i`` (``L/2 <= i <= Z``, ``L = num_quantized_bins``) keeps the window of
  bins ``s = Z - i .. e - 1`` with ``e = min(Z + i + 1, 2 Z)`` (``n = e - s`` bins): the
  range ``[-i w, min(i + 1, Z) w)``;
* ``P`` = the window with the outliers on each side added to its first / last bin;
* ``Q``: the window *without* outliers cut into ``L`` groups of ``m = n // L`` bins, the
  remaining ``n - L m`` bins' mass added to the last group; each group's total divided
  by the group's non-empty bins of ``P`` and truncated to an integer, written to *every*
  bin of the group's ``m`` bins (empty ones too); the remainder bins stay 0;
* both smoothed (``smooth_distribution``, ``eps = 1e-4``): zero bins get ``eps``,
  non-zero bins lose ``eps * zeros / nonzeros`` (the total is unchanged);
* ``KL(P || Q)`` (``scipy.stats.entropy`` form) of the normalized vectors; the first
  minimum wins (``np.argmin``); infinite where ``Q`` is all zero.

onnxruntime runs that as a Python loop over candidates and groups.  Here every
candidate's divergence is a closed form over prefix sums of the histogram (gathered at
the ``[candidates, L + 1]`` group edges), in float64 (onnxruntime: float32):

``KL = (sum ps log ps - sum_g PS_g log qs_g - PS_rem log eps) / N + log(sum q / N)``

with ``N`` the total count, ``PS_g`` a group's smoothed ``P`` mass and ``qs_g`` its
smoothed ``Q`` value.  The self term ``sum_{p > 0} (p - e) log(p - e)`` (``e`` the
candidate's smoothing) is ``p log p - e (log p + 1) + sum_{k=2..6} e^k / (k (k-1)
p^(k-1))`` summed by prefix sums over the window's inner bins (truncation below
``e^7 / 42 (1 - e)`` per bin; ``e = 1e-4 * zeros / nonzeros``), the two end bins exactly.
"""

from __future__ import annotations

import numpy as np

from pymodel import validate

EPS = 1e-4          # onnxruntime's smooth_distribution default
_TAYLOR = 6         # highest power of e in the self term's expansion


def kl_divergences_onnxruntime(signed_counts: np.ndarray,
                               num_quantized_bins: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Every candidate's divergence, as ``HistogramCollector.get_entropy_threshold``.

    Args:
        signed_counts: ``[2 Z]`` histogram over ``[-R, R]`` (bin ``Z`` starts at 0):
            integer counts, or real ones (a histogram moved onto another grid).
        num_quantized_bins: ``L`` (onnxruntime's ``num_quantized_bins``; 256 for int8),
            even, ``L <= 2 Z``.

    Returns:
        ``(candidates, kl)``: int64 ``[Z - L/2 + 1]`` window half-widths ``i`` and float64
        divergences (``inf`` where ``Q`` is empty).
    """
    h = validate.float_array("signed_counts", signed_counts)
    validate.ndim("signed_counts", h, 1, "[2 Z]")
    if (h < 0).any():
        raise ValueError("signed_counts: counts must be >= 0")
    nb = h.size
    if nb % 2 or h.sum() == 0:
        raise ValueError(f"signed_counts: expected a non-empty histogram with an even number "
                         f"of bins; got {nb} bins, {int(h.sum())} values")
    lq = validate.int_scalar("num_quantized_bins", num_quantized_bins, 2, nb)
    if lq % 2:
        raise ValueError(f"num_quantized_bins: {lq} is odd; onnxruntime's window needs an "
                         "even count")
    z = nb // 2
    total = h.sum()
    nzb = h > 0
    safe = np.where(nzb, h, 1.0)
    csum = np.concatenate(([0.0], np.cumsum(h)))
    cnz = np.concatenate(([0], np.cumsum(nzb)))
    # self-term pieces of the inner bins: p log p, log p + 1, p^-(k-1) (non-empty bins)
    pieces = [np.where(nzb, h * np.log(safe), 0.0), np.where(nzb, np.log(safe) + 1.0, 0.0)]
    pieces += [np.where(nzb, safe ** -(k - 1), 0.0) for k in range(2, _TAYLOR + 1)]
    cpieces = [np.concatenate(([0.0], np.cumsum(p))) for p in pieces]

    cands = np.arange(lq // 2, z + 1, dtype=np.int64)
    s = z - cands
    e = np.minimum(z + cands + 1, nb)
    n = e - s
    m = n // lq
    r = n - lq * m
    left = csum[s]
    right = total - csum[e]
    edges = s[:, None] + np.arange(lq + 1)[None, :] * m[:, None]          # [c, L + 1]
    g_raw = np.diff(csum[edges], axis=1)                                   # [c, L]
    nz = np.diff(cnz[edges], axis=1).astype(np.float64)
    rem_mass = csum[e] - csum[edges[:, -1]]
    nz_rem = (cnz[e] - cnz[edges[:, -1]]).astype(np.float64)
    # P's end bins with the outliers folded in
    p_first = h[s] + left
    p_last = h[e - 1] + right
    nz[:, 0] += (h[s] == 0) & (left > 0)
    last_in_rem = r > 0
    fix_last = (h[e - 1] == 0) & (right > 0)
    nz[:, -1] += fix_last & ~last_in_rem
    nz_rem += fix_last & last_in_rem
    p_mass = g_raw.copy()
    p_mass[:, 0] += left
    p_mass[:, -1] += np.where(last_in_rem, 0.0, right)
    p_rem = rem_mass + np.where(last_in_rem, right, 0.0)
    # Q: group totals (remainder into the last group), spread over each group's m bins
    q_tot = g_raw.copy()
    q_tot[:, -1] += rem_mass
    q = np.where(nz > 0, np.floor(q_tot / np.maximum(nz, 1.0)), 0.0)
    mf, rf, nf = m.astype(np.float64), r.astype(np.float64), n.astype(np.float64)
    q_zero = mf * (q == 0).sum(axis=1) + rf
    q_nonzero = nf - q_zero
    p_nonzero = nz.sum(axis=1) + nz_rem
    p_zero = nf - p_nonzero
    e_p = EPS * p_zero / p_nonzero
    e_q = EPS * q_zero / np.maximum(q_nonzero, 1.0)
    # cross term: sum_k ps_k log qs_k
    qs = np.where(q > 0, q - e_q[:, None], EPS)
    ps_g = p_mass - e_p[:, None] * nz + EPS * (mf[:, None] - nz)
    ps_rem = p_rem - e_p * nz_rem + EPS * (rf - nz_rem)
    cross = (ps_g * np.log(qs)).sum(axis=1) + ps_rem * np.log(EPS)
    # self term: sum_{p > 0} f(p - e_p), f(x) = x log x; inner bins s+1 .. e-2 by Taylor
    lo, hi = s + 1, e - 1

    def inner(k: int) -> np.ndarray:
        return cpieces[k][hi] - cpieces[k][lo]
    self_t = inner(0) - e_p * inner(1)
    for k in range(2, _TAYLOR + 1):
        self_t += e_p ** k / (k * (k - 1)) * inner(k)

    def f_end(p: np.ndarray) -> np.ndarray:
        x = np.where(p > 0, p - e_p, 1.0)
        return np.where(p > 0, x * np.log(x), 0.0)
    self_t += f_end(p_first) + f_end(p_last) + p_zero * EPS * np.log(EPS)
    sum_q = mf * q.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = (self_t - cross) / total + np.log(sum_q / total)
    kl = np.where(q_nonzero > 0, kl, np.inf)
    return cands, kl


def entropy_window_onnxruntime(signed_counts: np.ndarray, num_quantized_bins: int = 256) -> int:
    """The half-width ``i`` onnxruntime's entropy calibration picks (first minimum): the
    range ``[-i w, min(i + 1, Z) w)``."""
    cands, kl = kl_divergences_onnxruntime(signed_counts, num_quantized_bins)
    if not np.isfinite(kl).any():
        raise ValueError("every candidate threshold has an infinite divergence")
    return int(cands[int(np.argmin(kl))])
