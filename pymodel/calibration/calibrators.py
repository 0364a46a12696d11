"""Calibrators: the real range ``[rmin, rmax]`` of a tensor from calibration batches.

Every calibrator streams: :meth:`TensorStats.update` sees one batch at a time and keeps
``O(bins)`` numbers (running min / max, moving averages, a 2048-bin histogram of ``|x|``
read from exact fine counts on a power-of-two grid --
:class:`pymodel.calibration.histogram.AbsHistogram`), never the activations.  The
histogram, and so every histogram method's threshold, is the same however the data is
split into batches and in whatever order they come.  The
range is computed at the end from those statistics, so one pass over the calibration
set serves every method.

Methods (``docs/calibration.md`` describes each in detail):

``minmax``      ``[min x, max x]`` over all batches.
``ema``         moving averages of the per-batch min and max,
                ``m <- (1 - c) * m + c * batch_value`` with ``c = 0.01`` by default
                (PyTorch's ``MovingAverageMinMaxObserver`` constant); the first batch
                initializes ``m``.
``percentile``  threshold ``T`` = the ``p``-th percentile of ``|x|`` (default 99.99),
                linearly interpolated inside its histogram bin.
``entropy``     TensorRT's KL-divergence calibration: the threshold ``T`` minimizing
                ``KL(P || Q)`` between the clipped histogram ``P`` and its
                ``2^(b-1)``-level quantized version ``Q`` (:func:`kl_divergences`).
                ``entropy:onnxruntime``: onnxruntime's divergence instead (a signed
                window, smoothed distributions;
                :mod:`pymodel.calibration.kl_onnxruntime`), on the same
                split-invariant histogram kept with signs.
``mse``         threshold minimizing the expected squared error of clipping plus
                rounding over the histogram (:func:`mse_errors`).

The threshold methods clip symmetrically in ``|x|`` and then to the observed range:
``[max(min x, -T), min(max x, T)]`` -- so a ReLU output keeps ``rmin = 0``.

Weights are fully known, so they use :func:`weight_range` (min / max per tensor or per
output channel); :class:`PerChannelMinMax` is its streaming form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from pymodel import validate
from pymodel.calibration.histogram import DEFAULT_BINS, AbsHistogram
from pymodel.calibration.kl_onnxruntime import entropy_window_onnxruntime
from pymodel.arithmetic.qparams import QuantParams, compute_qparams, tensor_range

METHODS = ("minmax", "ema", "percentile", "entropy", "mse")
HISTOGRAM_METHODS = ("percentile", "entropy", "mse")
DEFAULT_EMA_CONSTANT = 0.01
DEFAULT_PERCENTILE = 99.99
#: Entropy calibration's divergence: TensorRT's (the default) or onnxruntime's.
DIVERGENCES = ("tensorrt", "onnxruntime")
#: Candidates whose divergence / error is within this of the minimum count as ties;
#: ties go to the largest threshold (least clipping).  ``kl <= min + TIE_ABS +
#: TIE_REL * min``.  Both well above float64 rounding of the sums (~1e-13 here).
TIE_REL = 1e-9
TIE_ABS = 1e-12


# ----------------------------------------------------------------------------------------
# Calibrator specification (what the network YAML and the CLI name)
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CalibratorSpec:
    """Which calibrator, with its parameter.

    Attributes:
        method: one of :data:`METHODS`.
        percentile: for ``percentile``: the percentile of ``|x|`` in (0, 100].
        ema_constant: for ``ema``: the averaging constant ``c`` in (0, 1].
        divergence: for ``entropy``: ``"tensorrt"`` (default) or ``"onnxruntime"``
            (:data:`DIVERGENCES`).
    """

    method: str = "minmax"
    percentile: float = DEFAULT_PERCENTILE
    ema_constant: float = DEFAULT_EMA_CONSTANT
    divergence: str = "tensorrt"

    def __post_init__(self) -> None:
        validate.one_of("method", self.method, METHODS)
        validate.one_of("divergence", self.divergence, DIVERGENCES)
        if self.divergence != "tensorrt" and self.method != "entropy":
            raise ValueError(f"divergence: {self.divergence!r} is only used by method "
                             f"'entropy', not {self.method!r}")
        p = _real("percentile", self.percentile)
        if not 0.0 < p <= 100.0:
            raise ValueError(f"percentile: {p!r} is outside the allowed range (0, 100]")
        c = _real("ema_constant", self.ema_constant)
        if not 0.0 < c <= 1.0:
            raise ValueError(f"ema_constant: {c!r} is outside the allowed range (0, 1]")
        object.__setattr__(self, "percentile", p)
        object.__setattr__(self, "ema_constant", c)

    @property
    def label(self) -> str:
        """Short name: ``minmax``, ``ema(0.01)``, ``percentile(99.99)``, ``entropy``, ``mse``."""
        if self.method == "percentile":
            return f"percentile({self.percentile:g})"
        if self.method == "ema":
            return f"ema({self.ema_constant:g})"
        if self.divergence != "tensorrt":
            return f"entropy({self.divergence})"
        return self.method

    def to_config(self) -> dict[str, Any]:
        """The YAML mapping form (only the parameter the method uses)."""
        out: dict[str, Any] = {"method": self.method}
        if self.method == "percentile":
            out["percentile"] = self.percentile
        if self.method == "ema":
            out["ema_constant"] = self.ema_constant
        if self.divergence != "tensorrt":
            out["divergence"] = self.divergence
        return out

    @classmethod
    def parse(cls, value: Any, path: str = "calibrator") -> "CalibratorSpec":
        """From a YAML value or CLI string.

        Accepted forms: ``"entropy"``; ``"percentile:99.9"`` / ``"ema:0.05"`` /
        ``"entropy:onnxruntime"``; the :attr:`label` form ``"percentile(99.9)"``;
        ``{"method": "percentile", "percentile": 99.9}``.

        Raises:
            ValueError naming ``path``, the value and what is allowed.
        """
        if isinstance(value, str):
            text = value
            if text.endswith(")") and "(" in text:           # label form
                text = text[:-1].replace("(", ":", 1)
            method, _, arg = text.partition(":")
            if method not in METHODS:
                raise ValueError(f"{path}: {value!r} is not a calibrator; allowed: "
                                 f"{', '.join(METHODS)} (percentile:P, ema:C take a "
                                 "parameter)")
            if not arg:
                return cls(method)
            if method == "entropy":
                if arg not in DIVERGENCES:
                    raise ValueError(f"{path}: {value!r}: calibrator 'entropy' takes no "
                                     f"parameter but a divergence, one of "
                                     f"{', '.join(DIVERGENCES)}")
                return cls(method, divergence=arg)
            key = {"percentile": "percentile", "ema": "ema_constant"}.get(method)
            if key is None:
                raise ValueError(f"{path}: {value!r}: calibrator {method!r} takes no "
                                 "parameter")
            try:
                num = float(arg)
            except ValueError:
                raise ValueError(f"{path}: {value!r}: parameter {arg!r} is not a number"
                                 ) from None
            return _spec_or_error(path, method, **{key: num})
        if isinstance(value, Mapping):
            allowed = {"method", "percentile", "ema_constant", "divergence"}
            for k in value:
                if k not in allowed:
                    raise ValueError(f"{path}.{k}: unknown key; allowed: "
                                     f"{', '.join(sorted(allowed))}")
            if "method" not in value:
                raise ValueError(f"{path}.method: missing; one of {', '.join(METHODS)}")
            method = value["method"]
            if method not in METHODS:
                raise ValueError(f"{path}.method: {method!r} is not one of "
                                 f"{', '.join(METHODS)}")
            kwargs = {}
            owner = {"percentile": "percentile", "ema_constant": "ema"}
            for k in ("percentile", "ema_constant"):
                if k in value:
                    if method != owner[k]:
                        raise ValueError(f"{path}.{k}: only used by method {owner[k]!r}, "
                                         f"not {method!r}")
                    v = value[k]
                    if isinstance(v, bool) or not isinstance(v, (int, float)):
                        raise ValueError(f"{path}.{k}: expected a number; got {v!r}")
                    kwargs[k] = float(v)
            if "divergence" in value:
                if method != "entropy":
                    raise ValueError(f"{path}.divergence: only used by method 'entropy', "
                                     f"not {method!r}")
                if value["divergence"] not in DIVERGENCES:
                    raise ValueError(f"{path}.divergence: {value['divergence']!r} is not one "
                                     f"of {', '.join(DIVERGENCES)}")
                return cls(method, divergence=value["divergence"])
            return _spec_or_error(path, method, **kwargs)
        raise ValueError(f"{path}: expected a calibrator name (one of {', '.join(METHODS)}) "
                         f"or a mapping with 'method'; got {value!r}")


def _spec_or_error(path: str, method: str, **kwargs: float) -> CalibratorSpec:
    try:
        return CalibratorSpec(method, **kwargs)
    except ValueError as exc:
        raise ValueError(f"{path}.{exc}") from None


def _real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}: expected a real number; got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name}: {v!r} is not finite")
    return v


# ----------------------------------------------------------------------------------------
# Streaming statistics of one tensor
# ----------------------------------------------------------------------------------------

class TensorStats:
    """Streaming statistics of one activation tensor over the calibration set.

    Keeps: the number of values, the number of exact zeros, the running min and max,
    one moving average of the per-batch min / max per requested EMA constant, and
    (``histogram=True``) an :class:`AbsHistogram` of ``|x|``.  Memory ``O(bins)``.

    Args:
        name: tensor name, used in error messages.
        histogram: keep the ``|x|`` histogram (needed by percentile / entropy / mse).
        bins: histogram bins (power of two; 2048 as TensorRT).
        ema_constants: averaging constants to track, each in (0, 1].
    """

    def __init__(self, name: str = "x", histogram: bool = True, bins: int = DEFAULT_BINS,
                 ema_constants: tuple[float, ...] = (DEFAULT_EMA_CONSTANT,),
                 signed: bool = False) -> None:
        self.name = name
        self.count = 0
        self.zeros = 0
        self.batches = 0
        self.min = math.inf
        self.max = -math.inf
        self.ema_constants = tuple(float(c) for c in ema_constants)
        for c in self.ema_constants:
            if not 0.0 < c <= 1.0:
                raise ValueError(f"ema_constants: {c!r} is outside the allowed range (0, 1]")
        self.ema_min = [math.nan] * len(self.ema_constants)
        self.ema_max = [math.nan] * len(self.ema_constants)
        self.hist: AbsHistogram | None = AbsHistogram(bins, signed) if histogram else None

    def update(self, batch: Any) -> None:
        """Fold one batch into the statistics.

        Args:
            batch: float array of any shape (one calibration batch of this tensor); must
                be finite.  An empty batch is ignored.

        Raises:
            ValueError naming the tensor if the batch holds NaN or Inf.
        """
        arr = validate.float_array(f"calibration data for tensor {self.name!r}", batch)
        if arr.size == 0:
            return
        bmin, bmax = float(arr.min()), float(arr.max())
        self.count += arr.size
        self.zeros += int(arr.size - np.count_nonzero(arr))
        self.min = min(self.min, bmin)
        self.max = max(self.max, bmax)
        for j, c in enumerate(self.ema_constants):
            if self.batches == 0:
                self.ema_min[j], self.ema_max[j] = bmin, bmax
            else:
                self.ema_min[j] = (1.0 - c) * self.ema_min[j] + c * bmin
                self.ema_max[j] = (1.0 - c) * self.ema_max[j] + c * bmax
        self.batches += 1
        if self.hist is not None:
            self.hist.update(arr)

    def require_data(self) -> None:
        if self.count == 0:
            raise ValueError(f"tensor {self.name!r}: no calibration data (the calibration "
                             "set is empty); give at least one non-empty batch")

    # -- serialization (the `calibrate` command's statistics file) ----------------------
    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """Arrays describing the statistics, keys ``prefix + field``."""
        out = {
            "count": np.int64(self.count), "zeros": np.int64(self.zeros),
            "batches": np.int64(self.batches), "min": np.float64(self.min),
            "max": np.float64(self.max),
            "ema_constants": np.asarray(self.ema_constants, np.float64),
            "ema_min": np.asarray(self.ema_min, np.float64),
            "ema_max": np.asarray(self.ema_max, np.float64),
        }
        if self.hist is not None:
            out["hist_bins"] = np.int64(self.hist.bins)
            out["hist_fine_counts"] = self.hist.fine_counts.copy()
            if self.hist.neg_fine_counts is not None:
                out["hist_neg_fine_counts"] = self.hist.neg_fine_counts.copy()
            if self.hist.exponent is not None:
                out["hist_exponent"] = np.int64(self.hist.exponent)
        return {prefix + k: np.asarray(v) for k, v in out.items()}

    @classmethod
    def from_arrays(cls, name: str, arrays: Mapping[str, np.ndarray],
                    prefix: str) -> "TensorStats":
        """Inverse of :meth:`to_arrays`."""
        def get(key: str) -> np.ndarray:
            if prefix + key not in arrays:
                raise ValueError(f"statistics file: tensor {name!r} lacks array "
                                 f"{prefix + key!r}")
            return np.asarray(arrays[prefix + key])

        if prefix + "hist_counts" in arrays and prefix + "hist_fine_counts" not in arrays:
            raise ValueError(f"statistics file: tensor {name!r} has a histogram in the old "
                             "first-batch-anchored format; run `calibrate` again")
        has_hist = prefix + "hist_fine_counts" in arrays
        counts = get("hist_fine_counts") if has_hist else None
        signed = prefix + "hist_neg_fine_counts" in arrays
        st = cls(name, histogram=has_hist,
                 bins=int(get("hist_bins")) if has_hist else DEFAULT_BINS,
                 ema_constants=tuple(float(c) for c in get("ema_constants")),
                 signed=signed and has_hist)
        st.count, st.zeros, st.batches = int(get("count")), int(get("zeros")), int(get("batches"))
        st.min, st.max = float(get("min")), float(get("max"))
        st.ema_min = [float(v) for v in get("ema_min")]
        st.ema_max = [float(v) for v in get("ema_max")]
        if st.hist is not None and counts is not None:
            if counts.shape != st.hist.fine_counts.shape:
                raise ValueError(f"statistics file: tensor {name!r}: {prefix}hist_fine_counts "
                                 f"has {counts.size} bins; expected {st.hist.fine_bins}")
            st.hist.fine_counts = counts.astype(np.int64)
            if signed:
                neg = get("hist_neg_fine_counts")
                if neg.shape != counts.shape:
                    raise ValueError(f"statistics file: tensor {name!r}: "
                                     f"{prefix}hist_neg_fine_counts has {neg.size} bins; "
                                     f"expected {counts.size}")
                st.hist.neg_fine_counts = neg.astype(np.int64)
            if prefix + "hist_exponent" in arrays:
                st.hist.exponent = int(get("hist_exponent"))
        return st


# ----------------------------------------------------------------------------------------
# Threshold searches over a histogram (vectorized across candidates)
# ----------------------------------------------------------------------------------------

def _counts(counts: Any) -> np.ndarray:
    h = validate.int_array("counts", counts, 0, None)
    validate.ndim("counts", h, 1, "[bins]")
    if h.sum() == 0:
        raise ValueError("counts: the histogram is empty (no calibration data)")
    return h.astype(np.float64)


def pick_largest_minimum(values: np.ndarray) -> int:
    """Index of the smallest value; near-ties (:data:`TIE_ABS`, :data:`TIE_REL`) go to
    the largest index (candidates are in increasing threshold order)."""
    vmin = float(np.min(values))
    if not math.isfinite(vmin):
        raise ValueError("every candidate threshold has an infinite divergence")
    ok = np.flatnonzero(values <= vmin + TIE_ABS + TIE_REL * abs(vmin))
    return int(ok[-1])


def kl_divergences(counts: Any, levels: int = 128,
                   start_bin: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``KL(P || Q)`` of every candidate threshold, TensorRT's entropy calibration.

    For each candidate ``i`` (number of bins kept, ``start_bin <= i <= bins``):

    * ``P`` = bins ``0 .. i-1`` of the histogram with every count beyond them (the
      outliers) added to bin ``i-1``: the clipped distribution;
    * ``Q`` = bins ``0 .. i-1`` *without* the outliers, merged into ``levels`` groups
      (bin ``k`` goes to group ``floor(k * levels / i)``: groups of ``i / levels`` bins,
      sizes differing by at most one) and expanded back: each group's total spread
      evenly over the group's bins that are non-empty in ``P``, the others staying
      empty.  If the whole last group is empty but receives outliers (``P > 0``,
      ``Q = 0`` at bin ``i-1``: infinite divergence), ``Q`` gets a pseudo-count of one
      value at bin ``i-1`` -- the smallest mass a histogram bin can hold -- so that a
      far outlier does not rule out every clipping threshold;
    * ``KL(P || Q) = sum_{P>0} p log(p / q)`` of the normalized distributions (nats).

    Vectorized across all candidates at once: with ``S_g`` the group totals, ``n_g``
    the non-empty bins per group and ``N`` the total,
    ``KL = (sum_k P_k log P_k - sum_g T_g log(S_g / n_g)) / N + log(sum Q / N)``
    (``T_g`` = mass of ``P`` in group ``g``); the group totals come from prefix sums
    gathered at the ``[candidates, levels + 1]`` group edges, the folded last bin is
    corrected per candidate.  The sums use extended precision (``np.longdouble``)
    because the terms nearly cancel.

    Args:
        counts: int ``[bins]`` histogram of ``|x|`` (bins >= start_bin).
        levels: quantization levels, ``2^(b-1)`` for ``b`` bits (128 for INT8).
        start_bin: first candidate (default ``levels``: TensorRT's 128 for INT8).

    Returns:
        ``(candidates, kl)``: int64 ``[n]`` bin counts ``i`` (threshold ``i * width``)
        and float64 ``[n]`` divergences.
    """
    h = _counts(counts)
    nbins = h.size
    lv = validate.int_scalar("levels", levels, 1, nbins)
    start = lv if start_bin is None else validate.int_scalar("start_bin", start_bin, lv, nbins)
    ld = np.longdouble
    one = ld(1)
    hl = h.astype(ld)
    total = hl.sum()
    cands = np.arange(start, nbins + 1, dtype=np.int64)
    g = np.arange(lv + 1, dtype=np.int64)
    edges = -((-g[None, :] * cands[:, None]) // lv)               # ceil(g * i / L)
    csum = np.concatenate(([ld(0)], np.cumsum(hl)))               # exact: integer counts
    cnz = np.concatenate(([0], np.cumsum(h > 0)))
    hlogh = hl * np.log(np.where(h > 0, hl, one))
    chl = np.concatenate(([ld(0)], np.cumsum(hlogh)))
    s = np.diff(csum[edges], axis=1)                              # [n, L] Q group totals
    nz = np.diff(cnz[edges], axis=1)                              # [n, L] non-empty bins
    out = total - csum[cands]                                     # outliers
    last = hl[cands - 1]
    p_last = last + out                                           # folded bin i-1 of P
    nz[:, -1] += (last == 0) & (out > 0)                          # non-empty in P
    pseudo = (s[:, -1] == 0) & (out > 0)
    s_last = np.where(pseudo, one, s[:, -1])
    sum_q = csum[cands] + pseudo
    sum_plogp = chl[cands - 1] + p_last * np.log(np.where(p_last > 0, p_last, one))
    body = s[:, :-1]
    t_log_q = (body * np.log(np.where(body > 0, body, one) / np.maximum(nz[:, :-1], 1))
               ).sum(axis=1)
    t_log_q += (s[:, -1] + out) * np.log(np.where(s_last > 0, s_last, one)
                                         / np.maximum(nz[:, -1], 1))
    kl = (sum_plogp - t_log_q) / total + np.log(sum_q / total)
    return cands, np.maximum(kl, 0.0).astype(np.float64)


def entropy_threshold_bins(counts: Any, levels: int = 128,
                           start_bin: int | None = None) -> int:
    """Number of bins ``i`` kept by entropy calibration (threshold ``i * bin_width``).

    The candidate with the smallest :func:`kl_divergences`; near-ties go to the largest
    threshold.
    """
    cands, kl = kl_divergences(counts, levels, start_bin)
    return int(cands[pick_largest_minimum(kl)])


def mse_errors(counts: Any, zeros: int, steps: float) -> tuple[np.ndarray, np.ndarray]:
    """Expected squared quantization error of every threshold ``T = i * w``, ``i = 1..bins``.

    Model, per value (bin centres ``c_k = (k + 0.5) w``, values uniform inside a bin):

    * ``|x| > T`` (bins ``k >= i``): clipped to ``T``, error ``(c_k - T)^2 + w^2 / 12``;
    * ``|x| <= T``: rounding to the grid of step ``D = T / steps``, error ``D^2 / 12``
      (uniform rounding noise), except exact zeros, which are representable (error 0).

    Vectorized over all thresholds with suffix sums of ``h``, ``h c`` and ``h c^2``.

    Args:
        counts: int ``[bins]`` histogram of ``|x|``.
        zeros: number of exact zeros among the counted values (all in bin 0).
        steps: grid steps between 0 and ``T`` (``2^(b-1) - 1`` symmetric;
            ``2^b - 1`` asymmetric on non-negative data; ``(2^b - 1) / 2`` asymmetric on
            signed data).

    Returns:
        ``(candidates, mse)``: int64 ``[bins]`` bin counts ``i`` and float64 ``[bins]``
        mean squared errors in units of ``w^2``.
    """
    h = _counts(counts)
    nbins = h.size
    z = validate.int_scalar("zeros", zeros, 0, int(h[0]))
    st = _real("steps", steps)
    if st <= 0:
        raise ValueError(f"steps: {st!r} must be > 0")
    total = h.sum()
    centre = np.arange(nbins, dtype=np.float64) + 0.5

    def suffix(v: np.ndarray) -> np.ndarray:
        return np.concatenate((np.cumsum(v[::-1])[::-1], [0.0]))

    t0, t1, t2 = suffix(h), suffix(h * centre), suffix(h * centre * centre)
    cands = np.arange(1, nbins + 1, dtype=np.int64)
    i = cands.astype(np.float64)
    tail0, tail1, tail2 = t0[cands], t1[cands], t2[cands]
    clip = np.maximum(tail2 - 2.0 * i * tail1 + i * i * tail0, 0.0) + tail0 / 12.0
    inside_nonzero = (total - tail0) - z
    rounding = inside_nonzero * (i / st) ** 2 / 12.0
    return cands, (clip + rounding) / total


def percentile_threshold(counts: Any, width: float, percentile: float) -> float:
    """The ``percentile``-th percentile of ``|x|`` from its histogram (real units).

    The first bin where the cumulative count reaches ``p / 100 * N``, interpolated
    linearly inside that bin.
    """
    h = _counts(counts)
    p = _real("percentile", percentile)
    if not 0.0 < p <= 100.0:
        raise ValueError(f"percentile: {p!r} is outside the allowed range (0, 100]")
    cdf = np.cumsum(h)
    target = p / 100.0 * cdf[-1]
    k = min(int(np.searchsorted(cdf, target, side="left")), h.size - 1)
    below = cdf[k - 1] if k > 0 else 0.0
    frac = (target - below) / h[k] if h[k] > 0 else 1.0
    return float(k + min(max(frac, 0.0), 1.0)) * float(width)   # Python float: inf, no warning


# ----------------------------------------------------------------------------------------
# Range of a tensor from its statistics
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CalibratedRange:
    """Result of a calibrator.

    Attributes:
        rmin, rmax: the real range to quantize (float, ``rmin <= rmax``).
        threshold: the ``|x|`` threshold of a threshold method (``None`` for min/max).
        calibrator: the spec that chose it.
    """

    rmin: float
    rmax: float
    threshold: float | None
    calibrator: CalibratorSpec


def mse_steps(bits: int, symmetric: bool, nonnegative: bool) -> float:
    """Grid steps between 0 and the threshold ``T`` of a ``bits``-wide scheme."""
    b = validate.bits("bits", bits)
    if symmetric:
        return float((1 << (b - 1)) - 1)
    return float((1 << b) - 1) if nonnegative else ((1 << b) - 1) / 2.0


def calibrated_range(stats: TensorStats, spec: CalibratorSpec, bits: int = 8,
                     symmetric: bool = False) -> CalibratedRange:
    """The range the calibrator ``spec`` picks from ``stats``.

    Args:
        stats: statistics of the tensor (non-empty).
        spec: calibrator.
        bits: bit width of the tensor's quantization (entropy levels ``2^(bits-1)``,
            mse grid).
        symmetric: symmetric quantization of the tensor (mse grid).

    Raises:
        ValueError if the statistics are empty, or lack what the method needs.
    """
    stats.require_data()
    b = validate.bits("bits", bits)
    if spec.method == "minmax":
        return CalibratedRange(stats.min, stats.max, None, spec)
    if spec.method == "ema":
        if spec.ema_constant not in stats.ema_constants:
            raise ValueError(f"tensor {stats.name!r}: calibrator {spec.label} needs the "
                             f"moving average with constant {spec.ema_constant!r}; the "
                             f"statistics track {stats.ema_constants}")
        j = stats.ema_constants.index(spec.ema_constant)
        lo, hi = stats.ema_min[j], stats.ema_max[j]
        return CalibratedRange(min(lo, hi), max(lo, hi), None, spec)
    hist = stats.hist
    if hist is None:
        raise ValueError(f"tensor {stats.name!r}: calibrator {spec.label} needs a histogram; "
                         "collect the statistics with histogram=True")
    if hist.range == 0.0:                         # all zeros
        return CalibratedRange(0.0, 0.0, 0.0, spec)
    if spec.method == "percentile":
        t = percentile_threshold(hist.counts, hist.width, spec.percentile)
    elif spec.method == "entropy" and spec.divergence == "onnxruntime":
        counts, w = onnxruntime_grid(stats)
        i = entropy_window_onnxruntime(counts, min(1 << b, 2 * hist.bins))
        top = min(i + 1, hist.bins) * w
        lo, hi = max(stats.min, -i * w), min(stats.max, top)
        return CalibratedRange(min(lo, hi), max(lo, hi), top, spec)
    elif spec.method == "entropy":
        levels = 1 << (b - 1)
        t = entropy_threshold_bins(hist.counts, levels, min(levels, hist.bins)) * hist.width
    else:
        steps = mse_steps(b, symmetric, stats.min >= 0.0)
        cands, err = mse_errors(hist.counts, min(stats.zeros, int(hist.counts[0])), steps)
        t = int(cands[pick_largest_minimum(err)]) * hist.width
    lo, hi = max(stats.min, -t), min(stats.max, t)
    return CalibratedRange(min(lo, hi), max(lo, hi), float(t), spec)


def onnxruntime_grid(stats: TensorStats) -> tuple[np.ndarray, float]:
    """The tensor's histogram on onnxruntime's grid: ``2 * bins`` bins of width
    ``w = max|x| / bins`` over ``[-max|x|, max|x|]`` (``HistogramCollector`` with
    ``num_bins = 2 * bins``, the data in one batch).

    Read from the exact fine counts (``2^5`` fine bins per final bin, split-invariant):
    each fine bin goes whole to the onnxruntime bin holding its centre (the last bin
    takes any beyond), so counts stay integers and empty bins stay empty -- onnxruntime's
    search depends on which bins are empty; a value moves by at most half a fine bin
    (1/64 of a final bin or less).  A function of the fine counts, ``min`` and ``max``
    alone, so still independent of the batching.  Signs come from the negative counts kept with
    ``signed=True``, or, without them, from the sign of the whole tensor when it has one.

    Returns:
        ``(counts, w)``: float64 ``[2 * bins]`` (bin ``bins`` starts at 0) and the width.

    Raises:
        ValueError naming the tensor for data of both signs collected without signs.
    """
    hist = stats.hist
    assert hist is not None
    fine = hist.fine_counts
    if hist.neg_fine_counts is not None:
        neg = hist.neg_fine_counts
    elif stats.min >= 0.0:
        neg = np.zeros_like(fine)
    elif stats.max <= 0.0:
        neg = fine.copy()
        neg[0] -= stats.zeros                      # zeros count as non-negative
    else:
        raise ValueError(f"tensor {stats.name!r}: calibrator entropy(onnxruntime) needs the "
                         "histogram's signs for data of both signs; collect the statistics "
                         "with signed=True")
    top = max(abs(stats.min), abs(stats.max))
    width = top / hist.bins
    centre = (np.arange(hist.fine_bins, dtype=np.float64) + 0.5) * hist.fine_width
    dest = np.minimum((centre / width).astype(np.int64), hist.bins - 1)

    def side(c: np.ndarray) -> np.ndarray:
        return np.bincount(dest, weights=c, minlength=hist.bins)
    return np.concatenate((side(neg)[::-1], side(fine - neg))), width


# ----------------------------------------------------------------------------------------
# Streaming calibrator objects (one tensor, one method)
# ----------------------------------------------------------------------------------------

@dataclass
class Calibrator:
    """One tensor, one method: ``update(batch)`` for each batch, then ``compute_range()``.

    Attributes:
        spec: the method.
        bits, symmetric: the tensor's quantization scheme (used by entropy and mse).
        stats: the streaming statistics (histogram kept only if the method needs it).
    """

    spec: CalibratorSpec
    bits: int = 8
    symmetric: bool = False
    name: str = "x"
    bins: int = DEFAULT_BINS
    stats: TensorStats = field(init=False)

    def __post_init__(self) -> None:
        validate.bits("bits", self.bits)
        self.stats = TensorStats(self.name, histogram=self.spec.method in HISTOGRAM_METHODS,
                                 bins=self.bins, ema_constants=(self.spec.ema_constant,),
                                 signed=self.spec.divergence == "onnxruntime")

    def update(self, batch: Any) -> None:
        """Fold one batch (float array, any shape, finite) into the statistics."""
        self.stats.update(batch)

    def compute_range(self) -> CalibratedRange:
        """The calibrated ``[rmin, rmax]``."""
        return calibrated_range(self.stats, self.spec, self.bits, self.symmetric)

    def qparams(self) -> QuantParams:
        """Per-tensor quantization parameters of the calibrated range."""
        r = self.compute_range()
        return compute_qparams(r.rmin, r.rmax, self.bits, self.symmetric)


def MinMaxCalibrator(**kw: Any) -> Calibrator:
    """Calibrator: ``[min x, max x]``."""
    return Calibrator(CalibratorSpec("minmax"), **kw)


def EMAMinMaxCalibrator(ema_constant: float = DEFAULT_EMA_CONSTANT, **kw: Any) -> Calibrator:
    """Calibrator: moving averages of the per-batch min and max (constant ``c``)."""
    return Calibrator(CalibratorSpec("ema", ema_constant=ema_constant), **kw)


def PercentileCalibrator(percentile: float = DEFAULT_PERCENTILE, **kw: Any) -> Calibrator:
    """Calibrator: the ``percentile``-th percentile of ``|x|``."""
    return Calibrator(CalibratorSpec("percentile", percentile=percentile), **kw)


def EntropyCalibrator(**kw: Any) -> Calibrator:
    """Calibrator: TensorRT's KL-divergence (entropy) threshold."""
    return Calibrator(CalibratorSpec("entropy"), **kw)


def MSECalibrator(**kw: Any) -> Calibrator:
    """Calibrator: the threshold of least expected squared error."""
    return Calibrator(CalibratorSpec("mse"), **kw)


# ----------------------------------------------------------------------------------------
# Weights
# ----------------------------------------------------------------------------------------

def weight_range(w: Any, per_channel: bool, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Min / max of a weight tensor, per tensor or per output channel.

    Args:
        w: float weights (finite, non-empty).
        per_channel: one range per index of ``axis`` (else one for the tensor).
        axis: the output-channel axis (0 for conv ``[out, kh, kw, in]`` and FC
            ``[out, in]``; 3 for depthwise ``[1, kh, kw, C*m]``).

    Returns:
        ``(rmin, rmax)`` float64, 0-d or ``[C]``.
    """
    return tensor_range(w, axis if per_channel else None)


class PerChannelMinMax:
    """Streaming per-channel min / max along ``axis`` (weights, or per-channel stats).

    Args:
        axis: channel axis of every batch.
    """

    def __init__(self, axis: int = 0) -> None:
        self.axis = axis
        self.min: np.ndarray | None = None
        self.max: np.ndarray | None = None

    def update(self, batch: Any) -> None:
        lo, hi = tensor_range(batch, self.axis)
        if self.min is not None and self.min.shape != lo.shape:
            raise ValueError(f"batch: has {lo.size} channels along axis {self.axis}; "
                             f"earlier batches had {self.min.size}")
        self.min = lo if self.min is None else np.minimum(self.min, lo)
        self.max = hi if self.max is None else np.maximum(self.max, hi)

    def compute_range(self) -> tuple[np.ndarray, np.ndarray]:
        if self.min is None or self.max is None:
            raise ValueError("PerChannelMinMax: no data (empty calibration set)")
        return self.min, self.max
