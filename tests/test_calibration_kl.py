"""Vectorized KL (entropy) calibration against the loop written from TensorRT's
description (``pymodel.calibration.kl_reference``): same threshold, to the bin."""

from __future__ import annotations

import numpy as np
import pytest

from pymodel.calibration.calibrators import entropy_threshold_bins, kl_divergences
from pymodel.calibration.histogram import AbsHistogram
from pymodel.calibration.kl_reference import (entropy_threshold_bins_loop, kl_divergences_loop,
                                  quantize_expand_loop)


def histogram(x: np.ndarray, bins: int) -> np.ndarray:
    h = AbsHistogram(bins)
    for part in np.array_split(x, 4):
        h.update(part)
    return h.counts


def distributions(rng, n: int) -> dict[str, np.ndarray]:
    laplace = rng.laplace(size=n)
    laplace[rng.integers(n)] = 60.0
    sparse = rng.normal(size=max(n // 100, 50))
    return {
        "gaussian": rng.normal(size=n),
        "relu (zero spike)": np.maximum(rng.normal(size=n), 0.0),
        "laplace + far outlier": laplace,
        "discrete (17 values)": rng.integers(0, 17, size=n) / 16.0,
        "sparse (few samples)": sparse,
        "bimodal": np.concatenate([rng.normal(1.0, 0.1, n // 2), rng.normal(4.0, 0.5, n // 2)]),
    }


def test_quantize_expand_matches_tensorrt_example():
    # TensorRT's slide: P = [1 0 2 3 5 3 1 7] merged into 4 levels -> [1, 5, 8, 8],
    # expanded over the non-empty bins -> [1, 0, 2.5, 2.5, 4, 4, 4, 4].
    p = [1.0, 0.0, 2.0, 3.0, 5.0, 3.0, 1.0, 7.0]
    assert quantize_expand_loop(p, [v != 0 for v in p], 4) == [1, 0, 2.5, 2.5, 4, 4, 4, 4]


@pytest.mark.parametrize("bins, levels", [(256, 16), (512, 32)])
def test_vectorized_kl_equals_loop_small(rng, bins, levels):
    for name, x in distributions(rng, 40_000).items():
        counts = histogram(x, bins)
        c1, k1 = kl_divergences(counts, levels)
        c2, k2 = kl_divergences_loop(counts, levels)
        assert np.array_equal(c1, c2)
        # Divergences agree to float64 rounding of sums over <= bins terms (the
        # vectorized form uses prefix sums in extended precision): 1e-12 absolute.
        np.testing.assert_allclose(k1, k2, rtol=0, atol=1e-12, err_msg=name)
        assert entropy_threshold_bins(counts, levels) == \
            entropy_threshold_bins_loop(counts, levels), name


@pytest.mark.parametrize("kind", ["gaussian", "relu (zero spike)", "laplace + far outlier"])
def test_vectorized_kl_equals_loop_tensorrt_size(rng, kind):
    """2048 bins, 128 levels, candidates from bin 128: TensorRT's INT8 setting."""
    x = distributions(rng, 200_000)[kind]
    counts = histogram(x, 2048)
    bins_vec = entropy_threshold_bins(counts, 128)
    bins_loop = entropy_threshold_bins_loop(counts, 128)
    assert bins_vec == bins_loop
    assert 128 <= bins_vec <= 2048


def test_kl_candidate_range_and_finiteness(rng):
    counts = histogram(np.abs(rng.standard_t(3, size=50_000)), 2048)
    cands, kl = kl_divergences(counts, 128)
    assert cands[0] == 128 and cands[-1] == 2048 and len(cands) == 2048 - 128 + 1
    assert np.all(np.isfinite(kl)) and np.all(kl >= 0)
