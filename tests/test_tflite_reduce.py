"""int8 MEAN (pymodel.ops.reduce) against the scalar reference written from TFLite's
reference ``QuantizedMeanOrSum`` (tests/tflite_ref.py)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tflite_ref as tr
from pymodel.ops import reduce as R

scales = st.floats(1e-4, 2.0, allow_nan=False).map(np.float32)


def mean_loop(x, axes, p, keep):
    axes = sorted({a % x.ndim for a in axes})
    keep_axes = [d for d in range(x.ndim) if d not in axes]
    out_shape = [1 if d in axes else x.shape[d] for d in range(x.ndim)]
    y = np.zeros(out_shape, np.int64)
    for idx in np.ndindex(*out_shape):
        sl = tuple(slice(None) if d in axes else idx[d] for d in range(x.ndim))
        y[idx] = tr.mean_one([int(v) for v in x[sl].ravel()], p)
    return y if keep else y.reshape([x.shape[d] for d in keep_axes])


@given(s_in=scales, s_out=scales, zi=st.integers(-128, 127), zo=st.integers(-128, 127),
       shape=st.lists(st.integers(1, 6), min_size=1, max_size=4),
       data=st.data(), keep=st.booleans(), rnd=st.sampled_from(["double", "single"]))
def test_mean_matches_reference(s_in, s_out, zi, zo, shape, data, keep, rnd):
    nd = len(shape)
    axes = data.draw(st.lists(st.integers(-nd, nd - 1), min_size=1, max_size=nd))
    x = np.array(data.draw(st.lists(st.integers(-128, 127), min_size=int(np.prod(shape)),
                                    max_size=int(np.prod(shape)))), np.int8).reshape(shape)
    p = R.prepare_mean(s_in, zi, s_out, zo, rnd)
    r = tr.mean_prepare(s_in, zi, s_out, zo, rnd)
    assert (p.multiplier, p.shift) == r["m"]
    got = R.mean(x, axes, p, keep)
    expect = mean_loop(x, axes, r, keep)
    assert got.shape == expect.shape
    assert got.tolist() == expect.tolist()


def test_global_average_pool_as_mean(rng):
    """MobileNet's global pool: MEAN over H, W of [1, 7, 7, C], equal and different
    quantization; large counts (n = 49, 256, 4096) exercise the 1/n fold."""
    for h, c in ((7, 16), (16, 3), (64, 2)):
        x = rng.integers(-128, 128, (1, h, h, c)).astype(np.int8)
        for s_in, zi, s_out, zo in ((0.02, -5, 0.02, -5), (0.02, -5, 0.011, 9)):
            p = R.prepare_mean(s_in, zi, s_out, zo)
            got = R.mean(x, (1, 2), p, keep_dims=True)
            assert got.shape == (1, 1, 1, c)
            r = tr.mean_prepare(s_in, zi, s_out, zo)
            assert got.ravel().tolist() == [tr.mean_one(x[0, :, :, k].ravel().tolist(), r)
                                            for k in range(c)]


def test_mean_fold_and_ties():
    # n = 4, scale ratio 1: mean of (1, 2, 0, 0) = 0.75 -> 1; (1, 1, 0, 0) = 0.5 -> 1
    # (double rounding: ties away from zero); (-1, -1, 0, 0) = -0.5 -> -1
    p = R.prepare_mean(0.1, 0, 0.1, 0)
    x = np.array([[1, 2, 0, 0], [1, 1, 0, 0], [-1, -1, 0, 0], [-1, 0, 0, 0]], np.int8)
    assert R.mean(x, 1, p).tolist() == [1, 1, -1, 0]
    ps = R.prepare_mean(0.1, 0, 0.1, 0, rounding="single")
    assert R.mean(x, 1, ps).tolist() == [1, 1, 0, 0]          # -0.5 -> 0 (toward +inf)
    assert R.mean_multiplier(2**30, 1, 3) == ((2**30 << 1) // 3, 0)
    assert R.mean_multiplier(2**30, -31, 8) == (2**30 // 8, -31)  # k limited by 31 + shift: 0


def test_mean_bad_input():
    p = R.prepare_mean(0.1, 0, 0.1, 0)
    with pytest.raises(ValueError, match="axis: 4 is outside"):
        R.mean(np.zeros((1, 2, 2, 3), np.int8), (1, 4), p)
    with pytest.raises(ValueError, match="x: expected an integer array"):
        R.mean(np.zeros((2, 2)), 1, p)
    with pytest.raises(ValueError, match="out_scale: 0.0 is not a finite positive"):
        R.prepare_mean(0.1, 0, 0.0, 0)
