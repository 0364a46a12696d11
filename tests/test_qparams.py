"""Scales, zero points, quantize / dequantize (docs/arithmetic.md section 3)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pymodel.arithmetic.qparams import (QuantParams, compute_qparams, dequantize, qrange, quantize,
                             storage_dtype, tensor_range)
from pymodel.arithmetic.rounding import round_half_away


@pytest.mark.parametrize("bits", range(2, 17))
def test_ranges(bits):
    h = 2 ** (bits - 1)
    assert qrange(bits, symmetric=True) == (-(h - 1), h - 1)
    assert qrange(bits, symmetric=False) == (-h, h - 1)
    assert np.iinfo(storage_dtype(bits)).bits == (8 if bits <= 8 else 16)


def test_int8_and_int4_ranges_named_in_the_contract():
    assert qrange(8, True) == (-127, 127)
    assert qrange(8, False) == (-128, 127)
    assert qrange(4, True) == (-7, 7)


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@given(finite, finite, st.integers(2, 16))
def test_asymmetric_zero_is_exact_and_range_covered(a, b, bits):
    lo, hi = min(a, b), max(a, b)
    qp = compute_qparams(lo, hi, bits=bits, symmetric=False)
    qmin, qmax = qrange(bits, False)
    assert qmin <= int(qp.zero_point) <= qmax
    assert qp.scale > 0
    assert quantize(0.0, qp) == qp.zero_point               # real 0.0 exactly representable
    assert dequantize(quantize(0.0, qp), qp) == 0.0
    # the (widened) range is covered to within half a step at each end
    assert dequantize(np.array(qmin), qp) <= min(lo, 0.0) + qp.scale
    assert dequantize(np.array(qmax), qp) >= max(hi, 0.0) - qp.scale


@given(finite, finite, st.integers(2, 16))
def test_symmetric_zero_point_is_zero_and_amax_maps_to_qmax(a, b, bits):
    lo, hi = min(a, b), max(a, b)
    qp = compute_qparams(lo, hi, bits=bits, symmetric=True)
    assert int(qp.zero_point) == 0
    amax = max(abs(lo), abs(hi))
    if amax / qp.qmax >= np.finfo(np.float64).tiny:     # not degenerate
        assert int(quantize(amax if abs(hi) >= abs(lo) else -amax, qp)) in (qp.qmax, -qp.qmax)
        assert np.isclose(qp.scale * qp.qmax, amax, rtol=1e-12)


def test_tflite_zero_point_choice():
    # [-1, 3] over 255 steps: scale 4/255, zero point from min: -128 + 63.75 -> -64
    qp = compute_qparams(-1.0, 3.0)
    assert np.isclose(qp.scale, 4 / 255) and int(qp.zero_point) == -64
    # a zero point exactly half-way (-64.5) rounds away from zero (half-to-even: -64)
    qp = compute_qparams(-63.5 / 16, -63.5 / 16 + 255 / 16)
    assert qp.scale == 1 / 16 and int(qp.zero_point) == -65
    # all-positive range: widened to [0, 6]: zero point at qmin
    qp = compute_qparams(2.0, 6.0)
    assert int(qp.zero_point) == -128 and np.isclose(qp.scale, 6 / 255)
    # all-negative range: widened to [-6, 0]: zero point at qmax
    qp = compute_qparams(-6.0, -2.0)
    assert int(qp.zero_point) == 127


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("lo, hi", [(0.0, 0.0), (-0.0, 0.0), (2.5, 2.5), (-7.0, -7.0),
                                    (0.0, 5e-324), (-1e-310, 1e-310)])   # underflowing scales
def test_degenerate_ranges(lo, hi, symmetric):
    qp = compute_qparams(lo, hi, symmetric=symmetric)
    assert np.isfinite(qp.scale) and qp.scale >= np.finfo(np.float64).tiny
    assert quantize(0.0, qp) == qp.zero_point
    assert np.all(np.isfinite(dequantize(quantize(np.array([lo, hi]), qp), qp)))
    if lo == hi != 0.0:   # a single value is exactly an end of the (widened) range
        assert np.isclose(dequantize(quantize(lo, qp), qp), lo, rtol=1e-12)


def test_per_channel_along_any_axis(rng):
    w = rng.standard_normal((3, 4, 5)) * np.array([0.1, 1.0, 10.0, 0.0, 3.0])
    w[..., 3] = 0.0                                     # an all-zero channel
    for axis in (0, 1, 2, -1):
        lo, hi = tensor_range(w, axis)
        qp = compute_qparams(lo, hi, bits=8, symmetric=True, axis=axis)
        q = quantize(w, qp)
        assert q.dtype == np.int8 and q.shape == w.shape
        moved = np.moveaxis(q, axis, 0).reshape(q.shape[axis], -1)
        nonzero = np.moveaxis(np.abs(w), axis, 0).reshape(q.shape[axis], -1).max(1) > 0
        assert np.all(np.abs(moved).max(1)[nonzero] == 127)   # each channel uses its range
        err = np.abs(dequantize(q, qp) - w)
        scale, _ = qp.broadcast(w.ndim)
        assert np.all(err <= scale / 2 * (1 + 1e-12))


def test_quantize_rounds_ties_half_away_from_zero():
    qp = QuantParams(scale=np.asarray(1.0), zero_point=np.asarray(0, np.int32), bits=8,
                     symmetric=False)
    ties = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5])
    assert quantize(ties, qp).tolist() == [-3, -2, -1, 1, 2, 3]     # numpy.round: -2,-2,0,0,2,2
    qp = QuantParams(scale=np.asarray(0.5), zero_point=np.asarray(3, np.int32), bits=8,
                     symmetric=False)
    assert quantize(np.array([0.25, -0.25]), qp).tolist() == [4, 2]


def test_quantize_clamps():
    qp = compute_qparams(-1.0, 1.0, bits=4, symmetric=True)
    assert quantize(np.array([-100.0, 100.0]), qp).tolist() == [-7, 7]
    qp = compute_qparams(-1.0, 1.0, bits=12)
    assert quantize(np.array([-100.0, 100.0]), qp).tolist() == [-2048, 2047]
    assert quantize(np.array([1.0]), qp).dtype == np.int16


def test_round_half_away_is_exact():
    assert round_half_away(0.49999999999999994) == 0.0
    assert round_half_away(-0.49999999999999994) == 0.0
    assert round_half_away(2.0**52 + 1) == 2.0**52 + 1
    assert round_half_away(-(2.0**52) - 1) == -(2.0**52) - 1


@pytest.mark.parametrize("call, match", [
    (lambda: compute_qparams(0.0, 1.0, bits=1), r"bits: 1 is outside the allowed range \[2, 16\]"),
    (lambda: compute_qparams(0.0, 1.0, bits=17), r"bits: 17 is outside"),
    (lambda: compute_qparams(0.0, 1.0, bits=8.0), "bits: expected an integer"),
    (lambda: compute_qparams(float("nan"), 1.0), "rmin: contains nan"),
    (lambda: compute_qparams(0.0, float("inf")), "rmax: contains inf"),
    (lambda: compute_qparams(2.0, 1.0), "rmin 2.0 exceeds rmax 1.0"),
    (lambda: compute_qparams(np.zeros(3), np.ones(3)), "pass axis= for per-channel"),
    (lambda: compute_qparams(np.zeros(3), np.ones(2), axis=0), "shapes differ"),
    (lambda: tensor_range(np.zeros((0, 3))), "zero-size"),
    (lambda: quantize(np.array(["a"]), compute_qparams(0.0, 1.0)), "x: expected real numbers"),
    (lambda: quantize(np.ones((2, 3)), compute_qparams(np.zeros(2), np.ones(2), axis=1)),
     "axis 1 has 3 channels but the parameters have 2"),
    (lambda: dequantize(np.array([1.5]), compute_qparams(0.0, 1.0)), "q: expected an integer"),
    (lambda: dequantize(np.array([300]), compute_qparams(0.0, 1.0)), r"q: value 300 is outside"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
