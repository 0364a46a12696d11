"""Single-rounding requantization (``TFLITE_SINGLE_ROUNDING``) against the scalar
reference written from TFLite's source formula (tests/scalar_ref.py), and the
``rounding`` switch of the layers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import scalar_ref as ref
from pymodel.arithmetic import fixedpoint as fp
from pymodel.arithmetic.gemm import im2col
from pymodel.ops import layers as L

INT32_MIN, INT32_MAX = fp.INT32_MIN, fp.INT32_MAX
EDGES = [INT32_MIN, INT32_MIN + 1, -(2**30), -2, -1, 0, 1, 2, 2**30, INT32_MAX - 1, INT32_MAX]
int32 = st.one_of(st.integers(INT32_MIN, INT32_MAX), st.sampled_from(EDGES))
m0s = st.one_of(st.integers(2**30, INT32_MAX), st.sampled_from([0, 1, 2**30, INT32_MAX]),
                st.integers(0, INT32_MAX))
shifts = st.integers(fp.SHIFT_MIN, fp.SHIFT_MAX)
int8 = st.integers(-128, 127)


@given(st.lists(st.tuples(int32, m0s, shifts), min_size=1, max_size=64))
@example([(INT32_MIN, INT32_MAX, 30), (INT32_MAX, INT32_MAX, 30), (INT32_MIN, INT32_MAX, -31),
          (-3, 2**30, -1), (3, 2**30, -1), (-5, 2**30, -2), (5, 2**30, -2)])
def test_single_rounding_multiply_matches_reference(triples):
    x, m0, s = (np.array(col, np.int64) for col in zip(*triples))
    expect = [ref.single_rounding_multiply(*map(int, t)) for t in triples]
    got = fp.single_rounding_multiply(x.astype(np.int32), m0.astype(np.int32), s)
    assert got.dtype == np.int32
    assert got.tolist() == expect
    assert fp.multiply_by_quantized_multiplier(x, m0, s, rounding="single").tolist() == expect


@given(st.lists(st.tuples(int32, int32, m0s, shifts, int8, int8, int8), min_size=1,
                max_size=64))
def test_requantize_single_matches_reference(rows):
    acc, bias, m0, s, zp, a, b = (np.array(col, np.int64) for col in zip(*rows))
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    got = fp.requantize(acc, bias, m0, s, zp, lo, hi, rounding="single")
    expect = [ref.requantize_single(*map(int, (r[0], r[1], r[2], r[3], r[4],
                                               min(r[5], r[6]), max(r[5], r[6]))))
              for r in rows]
    assert got.tolist() == expect


@given(st.one_of(st.floats(0, 2.0**40, allow_nan=False), st.floats(0, 1e-3)))
@example(2.0**30)
@example(2.0**31 * 3)
@example(2.0**-32)
def test_quantize_multiplier_single_saturates_large_shifts(m):
    assert fp.quantize_multiplier(m, rounding="single") == ref.quantize_multiplier_single(m)


def test_single_rounding_ties_go_toward_plus_infinity():
    # x * m0 / 2^(31 - shift) with m0 = 2^30, shift = -1: x / 4
    m0, s = 2**30, -1
    got = fp.multiply_by_quantized_multiplier([-10, -6, -2, 2, 6, 10], m0, s, rounding="single")
    assert got.tolist() == [-2, -1, 0, 1, 2, 3]          # -2.5 -> -2, 2.5 -> 3
    # double rounding: ties away from zero in the divide
    got = fp.multiply_by_quantized_multiplier([-10, -6, -2, 2, 6, 10], m0, s)
    assert got.tolist() == [-3, -2, -1, 1, 2, 3]


def test_single_and_double_differ_where_double_rounds_twice():
    # double rounding rounds x*m0/2^31 to an integer first, then divides by 2^e and rounds
    # again; single rounding rounds x*m0/2^(31+e) once.  They differ on some inputs.
    xs = np.arange(-3000, 3000)
    m0, s = 1518500250, -5
    single = fp.multiply_by_quantized_multiplier(xs, m0, s, rounding="single")
    double = fp.multiply_by_quantized_multiplier(xs, m0, s)
    assert single.tolist() == [ref.single_rounding_multiply(int(v), m0, s) for v in xs]
    assert double.tolist() == [ref.multiply_by_quantized_multiplier(int(v), m0, s) for v in xs]
    assert np.any(single != double)


def test_single_rounding_refuses_what_tflite_asserts():
    with pytest.raises(ValueError, match="m0: .*outside"):
        fp.multiply_by_quantized_multiplier(5, -1, 0, rounding="single")
    with pytest.raises(ValueError, match="shift: value 31 is outside"):
        fp.single_rounding_multiply(5, 2**30, 31)
    with pytest.raises(ValueError, match="rounding: 'triple' is not one of 'double', 'single'"):
        fp.requantize(0, 0, 2**30, 0, 0, -128, 127, rounding="triple")
    with pytest.raises(ValueError, match="rounding: 'up' is not one of"):
        L.RequantParams(bias=[0], m0=[2**30], shift=[0], out_zero_point=0, rounding="up")
    # a result outside int32 keeps its low 32 bits (release build's static_cast)
    assert fp.single_rounding_multiply(INT32_MAX, INT32_MAX, 30) == ref.wrap32(
        (INT32_MAX * INT32_MAX + 1) >> 1)


def test_layers_honour_the_rounding_field(rng):
    x = rng.integers(-128, 128, (1, 6, 6, 3)).astype(np.int8)
    w = rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8)
    kw = dict(bias=rng.integers(-5000, 5000, 4), m0=rng.integers(2**30, 2**31, 4),
              shift=rng.integers(-10, -6, 4), out_zero_point=3)
    rq_d, rq_s = L.RequantParams(**kw), L.RequantParams(**kw, rounding="single")
    cols, _ = im2col(x, (3, 3), 1, "same", pad_value=-2)
    acc = cols.astype(np.int64) @ w.reshape(4, -1).T.astype(np.int64)
    bias = L.fold_input_zero_point(rq_s.bias, w.reshape(4, -1), -2)
    for rq, fn in ((rq_d, ref.requantize), (rq_s, ref.requantize_single)):
        expect = np.array([[fn(int(acc[m, c]), int(bias[c]), int(rq.m0[c]), int(rq.shift[c]),
                               3, -128, 127) for c in range(4)] for m in range(acc.shape[0])])
        got = L.conv2d(x, w, -2, rq, 1, "same")
        assert got.reshape(-1, 4).tolist() == expect.tolist()
    # depthwise, multiplier 3, valid 2x2: accumulators by loops, then the scalar reference
    xd = rng.integers(-128, 128, (1, 4, 4, 2)).astype(np.int8)
    dw = rng.integers(-127, 128, (1, 2, 2, 6)).astype(np.int8)
    kw6 = {k: (np.resize(v, 6) if k != "out_zero_point" else v) for k, v in kw.items()}
    rq = L.RequantParams(**kw6, rounding="single")
    got = L.depthwise_conv2d(xd, dw, 5, rq)
    for oy in range(3):
        for ox in range(3):
            for o in range(6):
                acc = sum(int(dw[0, fy, fx, o]) * (int(xd[0, oy + fy, ox + fx, o // 3]) - 5)
                          for fy in range(2) for fx in range(2))
                assert got[0, oy, ox, o] == ref.requantize_single(
                    acc, int(rq.bias[o]), int(rq.m0[o]), int(rq.shift[o]), 3, -128, 127)
