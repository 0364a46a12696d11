"""Calibrators on distributions with a known answer, streaming, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pymodel.calibration.calibrators import (CalibratorSpec, EMAMinMaxCalibrator, EntropyCalibrator,
                                 MinMaxCalibrator, MSECalibrator, PercentileCalibrator,
                                 PerChannelMinMax, TensorStats, calibrated_range, mse_errors,
                                 percentile_threshold, weight_range)
from pymodel.calibration.histogram import AbsHistogram
from pymodel.arithmetic.qparams import tensor_range


def stream(cal, x: np.ndarray, batches: int = 7) -> None:
    for chunk in np.array_split(x, batches):
        cal.update(chunk)


def test_uniform_minmax_is_the_exact_range(rng):
    x = rng.uniform(-1.5, 2.5, size=(20000, 3))
    cal = MinMaxCalibrator()
    stream(cal, x)
    r = cal.compute_range()
    # min / max are exact operations: the streamed range equals the one-shot range bit
    # for bit.
    assert (r.rmin, r.rmax) == (x.min(), x.max())
    assert r.threshold is None


def test_uniform_percentile_100_and_99(rng):
    x = rng.uniform(0.0, 1.0, size=400_000)
    full = PercentileCalibrator(100.0)
    p99 = PercentileCalibrator(99.0)
    stream(full, x)
    stream(p99, x)
    # 100th percentile: the upper edge of the last non-empty bin, clipped to the observed
    # max -> exactly the max.
    assert full.compute_range().rmax == x.max()
    # 99th percentile of U(0, 1) is 0.99; bound = one bin width (max/2048 < 5e-4) plus
    # sampling error (std of the empirical quantile sqrt(p(1-p)/n) = 1.6e-4, x5).
    assert abs(p99.compute_range().rmax - 0.99) < 5e-4 + 8e-4


def test_percentile_interpolates_inside_the_bin():
    counts = np.array([10, 10, 10, 10])              # bins of width 0.5 over [0, 2]
    # 45th percentile: 18 of 40 values; the first 10 fill bin 0, 8 of bin 1's 10 follow
    # -> 1 + 8/10 bins.  Real arithmetic with a few roundings: rel 1e-12.
    assert percentile_threshold(counts, 0.5, 45.0) == pytest.approx(0.5 * 1.8, rel=1e-12)
    assert percentile_threshold(counts, 0.5, 50.0) == pytest.approx(1.0, rel=1e-12)
    assert percentile_threshold(counts, 0.5, 100.0) == pytest.approx(2.0, rel=1e-12)
    skewed = np.array([0, 4, 0, 1])                   # 2.5 of 5 values: 2.5/4 into bin 1
    assert percentile_threshold(skewed, 1.0, 50.0) == pytest.approx(1.625, rel=1e-12)


def test_uniform_mse_threshold_known_optimum(rng):
    # |x| ~ U(0, 1), symmetric 8-bit grid (127 steps): clipping error (1 - T)^3 / 3 plus
    # rounding error T * (T / 127)^2 / 12 is minimal where (1 - T)^2 = T^2 / (4 * 127^2),
    # i.e. T = 1 / (1 + 1/254) = 0.99608.
    x = rng.uniform(-1.0, 1.0, size=400_000)
    cal = MSECalibrator(symmetric=True)
    stream(cal, x)
    t = cal.compute_range().threshold
    # bound: two bin widths (the search is on bin edges, 1/2048 apart) plus the flatness
    # of the optimum under sampling noise.
    assert abs(t - 1.0 / (1.0 + 1.0 / 254.0)) < 2.5e-3


def test_ema_follows_its_documented_formula(rng):
    c = 0.25
    cal = EMAMinMaxCalibrator(ema_constant=c)
    lo = hi = None
    for i in range(6):
        b = rng.normal(size=100) * (i + 1)
        cal.update(b)
        if lo is None:
            lo, hi = b.min(), b.max()
        else:
            lo = (1 - c) * lo + c * b.min()
            hi = (1 - c) * hi + c * b.max()
    r = cal.compute_range()
    # same operations in the same order -> identical floats
    assert (r.rmin, r.rmax) == (lo, hi)


def gaussian_with_outlier(rng, n: int = 4_000_000, outlier: float = 100.0) -> np.ndarray:
    x = rng.normal(size=n)
    x[rng.integers(n)] = outlier
    return x


@pytest.mark.parametrize("spec", ["percentile:99.99", "entropy", "mse"])
def test_outlier_drags_minmax_but_not_robust_calibrators(rng, spec):
    # 4 * 10^6 samples: MSE weighs the outlier's clipping error (100 - T)^2 by its
    # frequency 1/n against the rounding error (T / 127.5)^2 / 12 of every sample; with
    # n = 10^6 the optimum would still sit near T = 16 (an honest MSE answer), with
    # n = 4 * 10^6 it is inside the bulk.
    x = gaussian_with_outlier(rng)
    robust = EntropyCalibrator() if spec == "entropy" else (
        MSECalibrator() if spec == "mse" else PercentileCalibrator(99.99))
    mm = MinMaxCalibrator()
    stream(robust, x, 10)
    stream(mm, x, 10)
    assert mm.compute_range().rmax == 100.0                 # dragged out to the outlier
    t = robust.compute_range().threshold
    # N(0, 1): the bulk ends near 5.3 sigma.  A threshold within [2.5, 6.5] covers the
    # bulk; one dragged by the outlier would be near 100.  Entropy's smallest candidate
    # is bin 128 of 2048 over [0, ~100], i.e. ~6.25, so for entropy the bound is that
    # first candidate.
    hi = 6.5 if spec != "entropy" else 128 / 2048 * robust.stats.hist.range + 1e-9
    assert 2.5 < t <= hi, (spec, t)


def test_entropy_ignores_a_moderate_outlier(rng):
    # Outlier at 30 sigma: the histogram's 2048 bins over [0, 30] put the Gaussian bulk
    # well above bin 128, so KL can pick a threshold inside the bulk.
    x = gaussian_with_outlier(rng, 500_000, 30.0)
    cal = EntropyCalibrator()
    stream(cal, x, 5)
    t = cal.compute_range().threshold
    assert 2.5 < t < 6.0, t


def test_histogram_widening_is_exact(rng):
    # Batches with growing ranges: the widened fine histogram equals a one-shot histogram
    # of all the data over the final power-of-two range, count for count (power-of-two
    # merges keep the bin edges; scaling by 2^k is exact in floating point).
    parts = [rng.normal(size=5000) * s for s in (0.01, 0.3, 1.0, 7.0, 2.0, 40.0)]
    h = AbsHistogram(2048)
    for p in parts:
        h.update(p)
    allx = np.abs(np.concatenate(parts))
    e = h.exponent
    assert 2.0 ** (e - 1) <= allx.max() < 2.0 ** e
    direct = np.bincount(np.floor(allx * 2.0 ** (16 - e)).astype(np.int64),
                         minlength=h.fine_bins)
    assert h.fine_bins == 2048 * 32 == 2 ** 16
    assert np.array_equal(h.fine_counts, direct)
    assert h.total == sum(p.size for p in parts)
    # the final grid: 2048 bins reaching just past max|x| (by less than 1/16 of it)
    assert allx.max() < h.range < allx.max() * (1 + 1 / 16)
    assert np.array_equal(h.counts, np.histogram(allx, bins=h.edges())[0])


def test_histogram_starts_with_zeros():
    h = AbsHistogram(16)
    h.update(np.zeros(10))
    assert h.range == 0.0 and int(h.counts[0]) == 10
    h.update(np.array([0.0, 3.0]))
    # fine grid [0, 4) of 16 * 32 bins; 3.0 starts fine bin 384, so 385 bins are used:
    # final bins of ceil(385 / 16) = 25 fine bins, range 16 * 25 / 128 = 3.125
    assert h.exponent == 2 and h.group == 25 and h.range == 3.125
    h.update(np.array([4.0]))              # a power of two: the grid grows to [0, 8)
    assert h.exponent == 3 and int(h.counts[0]) == 11 and h.total == 13
    assert int(h.counts[0]) == 11 and int(h.counts[15]) == 1


def test_all_zero_tensor_gives_degenerate_range():
    st = TensorStats("z")
    st.update(np.zeros(50))
    for m in ("minmax", "percentile", "entropy", "mse"):
        r = calibrated_range(st, CalibratorSpec(m))
        assert (r.rmin, r.rmax) == (0.0, 0.0)


def test_threshold_methods_keep_the_observed_sign(rng):
    st = TensorStats("relu")
    st.update(np.maximum(rng.normal(size=50_000), 0.0))
    for m in ("percentile", "entropy", "mse"):
        r = calibrated_range(st, CalibratorSpec(m))
        assert r.rmin == 0.0 and 0.0 < r.rmax <= st.max


def test_per_channel_weights_streamed_equal_tensor_range(rng):
    w = rng.normal(size=(16, 3, 3, 8)) * rng.uniform(0.1, 3.0, size=(16, 1, 1, 1))
    pc = PerChannelMinMax(axis=0)
    for part in np.array_split(w, 3, axis=3):
        pc.update(part)
    lo, hi = pc.compute_range()
    rlo, rhi = tensor_range(w, axis=0)
    assert np.array_equal(lo, rlo) and np.array_equal(hi, rhi)
    wlo, whi = weight_range(w, per_channel=True)
    assert np.array_equal(wlo, rlo) and np.array_equal(whi, rhi)
    tlo, thi = weight_range(w, per_channel=False)
    assert (float(tlo), float(thi)) == (w.min(), w.max())


def test_stats_serialization_round_trip(rng):
    st = TensorStats("t", ema_constants=(0.01, 0.1))
    for _ in range(4):
        st.update(rng.laplace(size=3000))
    back = TensorStats.from_arrays("t", st.to_arrays("t/"), "t/")
    for spec in ("minmax", "ema:0.1", "percentile:99.9", "entropy", "mse"):
        a = calibrated_range(st, CalibratorSpec.parse(spec))
        b = calibrated_range(back, CalibratorSpec.parse(spec))
        assert (a.rmin, a.rmax) == (b.rmin, b.rmax)


# ------------------------------------------------------------------------------ bad input

@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_calibration_data_is_rejected(rng, bad):
    for cal in (MinMaxCalibrator(name="conv1"), EntropyCalibrator(name="conv1")):
        x = rng.normal(size=100)
        x[37] = bad
        with pytest.raises(ValueError, match=r"tensor 'conv1'.*only finite values"):
            cal.update(x)
        assert cal.stats.count == 0                  # nothing folded in


def test_empty_calibration_set_is_rejected():
    for cal in (MinMaxCalibrator(name="fc1"), PercentileCalibrator(name="fc1"),
                EntropyCalibrator(name="fc1"), MSECalibrator(name="fc1")):
        cal.update(np.zeros((0, 4)))                 # an empty batch is not data
        with pytest.raises(ValueError, match=r"tensor 'fc1': no calibration data"):
            cal.compute_range()


@pytest.mark.parametrize("value, message", [
    ("kl", r"'kl' is not a calibrator; allowed: minmax, ema, percentile, entropy, mse"),
    ("percentile:101", r"percentile: 101.0 is outside the allowed range \(0, 100\]"),
    ("percentile:abc", r"parameter 'abc' is not a number"),
    ("entropy:3", r"calibrator 'entropy' takes no parameter"),
    ({"method": "percentile", "percentil": 99.9}, r"calibrator.percentil: unknown key"),
    ({"method": "mse", "percentile": 99.9}, r"only used by method 'percentile'"),
    ({"percentile": 99.9}, r"calibrator.method: missing"),
    ({"method": "ema", "ema_constant": 0.0}, r"ema_constant: 0.0 is outside"),
    (3, r"expected a calibrator name"),
])
def test_bad_calibrator_specs(value, message):
    with pytest.raises(ValueError, match=message):
        CalibratorSpec.parse(value)


def test_histogram_bins_must_be_a_power_of_two():
    with pytest.raises(ValueError, match="bins: 1000 is not a power of two"):
        AbsHistogram(1000)


def test_threshold_functions_reject_empty_histograms():
    with pytest.raises(ValueError, match="histogram is empty"):
        mse_errors(np.zeros(8, np.int64), 0, 127)
    with pytest.raises(ValueError, match="histogram is empty"):
        percentile_threshold(np.zeros(8, np.int64), 1.0, 99.0)
