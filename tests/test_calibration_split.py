"""Calibration does not depend on how the data is split into batches, nor on their order.

Property (hypothesis): for every calibrator whose definition is a function of the data
alone -- minmax, percentile, entropy, mse -- feeding the same values in one batch, in
arbitrary batches, or permuted, gives the same range and threshold, bit for bit (so
certainly within one final bin), and the same histogram state.  ``ema`` is excluded by
definition: it is a moving average of per-batch statistics, a function of the batch
sequence.  The state stays bounded: its size does not grow with the number of samples.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pymodel.calibration.calibrators import (Calibrator, CalibratorSpec, EntropyCalibrator,
                                             TensorStats)

SPLIT_INVARIANT = ("minmax", "percentile:99.9", "percentile:50", "percentile:100",
                   "entropy", "entropy:onnxruntime", "mse")

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
values = st.one_of(
    hnp.arrays(np.float64, st.integers(1, 400), elements=finite),
    hnp.arrays(np.float64, st.integers(1, 400),
               elements=st.floats(-50, 50, allow_nan=False) | st.sampled_from([0.0, 1.0, 2.0])),
    hnp.arrays(np.float32, st.integers(1, 400),
               elements=st.floats(-1e3, 1e3, allow_nan=False, width=32)),
)


@st.composite
def splits(draw: st.DrawFn) -> tuple[np.ndarray, list[np.ndarray]]:
    """Data, and the same values permuted and cut into batches (some possibly empty)."""
    x = draw(values)
    perm = draw(st.permutations(range(x.size)))
    cuts = sorted(draw(st.lists(st.integers(0, x.size), max_size=8)))
    return x, np.split(x[np.asarray(perm, np.int64)], cuts)


def state(cal: Calibrator) -> tuple:
    s = cal.stats
    h = s.hist
    return (s.count, s.zeros, s.min, s.max,
            None if h is None else (h.exponent, h.fine_counts.tobytes(),
                                    None if h.neg_fine_counts is None
                                    else h.neg_fine_counts.tobytes()))


@settings(max_examples=60)
@given(case=splits())
def test_every_calibrator_is_split_and_order_invariant(case):
    x, parts = case
    for spec in SPLIT_INVARIANT:
        whole = Calibrator(CalibratorSpec.parse(spec), bins=256)
        whole.update(x)
        split = Calibrator(CalibratorSpec.parse(spec), bins=256)
        for p in parts:
            split.update(p)
        assert state(whole) == state(split), spec
        a, b = whole.compute_range(), split.compute_range()
        assert (a.rmin, a.rmax, a.threshold) == (b.rmin, b.rmax, b.threshold), spec


def test_the_issue_repro_gives_equal_thresholds():
    """The repro of issue 14: one batch vs 20 batches of a heavy-tailed ReLU output."""
    x = np.maximum(0.5 * np.random.default_rng(0).standard_t(3, 200000), 0).astype(np.float32)
    a = EntropyCalibrator()
    a.update(x)
    b = EntropyCalibrator()
    for c in np.array_split(x, 20):
        b.update(c)
    ta, tb = a.compute_range().threshold, b.compute_range().threshold
    assert ta == tb
    assert 1.8 < ta < 2.1                    # the one-batch answer before the fix: 1.935
    c = EntropyCalibrator()                  # reversed batch order
    for p in np.array_split(x, 20)[::-1]:
        c.update(p)
    assert c.compute_range().threshold == ta


def test_state_is_bounded(rng):
    """The statistics' size is the same after 10^3 and 10^6 samples."""
    small, big = TensorStats("a"), TensorStats("b")
    small.update(rng.normal(size=1000))
    for _ in range(10):
        big.update(rng.normal(size=100_000) * 3)
    size = [sum(v.nbytes for v in s.to_arrays("").values()) for s in (small, big)]
    assert size[0] == size[1] <= 600_000
