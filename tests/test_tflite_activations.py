"""int8 RELU family, LEAKY_RELU, LOGISTIC, HARD_SWISH, SOFTMAX (pymodel.ops.activations)
and the gemmlowp port (pymodel.arithmetic.gemmlowp) against the scalar references
written from TFLite's kernels and gemmlowp's fixedpoint.h (tests/tflite_ref.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import tflite_ref as tr
from pymodel.arithmetic import gemmlowp as G
from pymodel.ops import activations as A

scales = st.floats(1e-3, 1.0, allow_nan=False).map(np.float32)
zps = st.integers(-128, 127)
roundings = st.sampled_from(["double", "single"])
ALL_INT8 = np.arange(-128, 128, dtype=np.int8)
int32s = st.integers(-(2**31), 2**31 - 1)


# ------------------------------------------------------------------------- gemmlowp
@given(st.lists(st.integers(-(2**31), 0), min_size=1, max_size=50), st.sampled_from([0, 1, 5, 6, 12]))
@example([0, -1, -(2**31), -(2**24), -(2**26) * 31, -(2**26) * 32 - 5], 5)
def test_exp_on_negative_values(xs, ib):
    got = G.exp_on_negative_values(np.array(xs), ib)
    assert got.tolist() == [tr.g_exp_neg(v, ib) for v in xs]


@given(st.lists(st.integers(0, 2**31 - 1), min_size=1, max_size=50))
@example([0, 1, 2**30, 2**31 - 1])
def test_one_over_one_plus_x(xs):
    got = G.one_over_one_plus_x_for_x_in_0_1(np.array(xs))
    assert got.tolist() == [tr.g_one_over_one_plus_x(v) for v in xs]
    # 1/(1+x) within a few ulp of Q0.31
    exact = np.array([2**31 / (1 + v / 2**31) for v in xs])
    assert np.all(np.abs(got - np.minimum(exact, 2**31 - 1)) < 2**8)


@given(st.lists(st.tuples(st.integers(-32768, 32767), st.integers(-32768, 32767)), min_size=1,
                max_size=50))
@example([(-32768, -32768), (-32768, 32767), (16384, 16384), (-3, 16384)])
def test_srdhm_int16_and_clz(pairs):
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    assert G.srdhm_int16(a, b).tolist() == [tr.g_srdhm16(int(x), int(y)) for x, y in pairs]
    v = a * 65536 + b
    assert G.count_leading_zeros32(v).tolist() == [32 - (int(x) & 0xFFFFFFFF).bit_length()
                                                   for x in v]


@given(st.lists(int32s, min_size=1, max_size=50), st.integers(-31, 31))
def test_saturating_rounding_multiply_by_pot(xs, e):
    assert G.saturating_rounding_multiply_by_pot(np.array(xs), e).tolist() == \
        [tr.g_srmpot(v, e) for v in xs]


# ---------------------------------------------------------------------- activations
@given(kind=st.sampled_from(list(A.RELU_KINDS)), s_in=scales, s_out=scales, zi=zps, zo=zps,
       rnd=roundings)
def test_relu_family(kind, s_in, s_out, zi, zo, rnd):
    p = A.prepare_relu(kind, s_in, zi, s_out, zo, rnd)
    r = tr.relu_prepare(kind, s_in, zi, s_out, zo, rnd)
    assert (p.multiplier, p.shift, p.act_min, p.act_max) == (*r["m"], r["lo"], r["hi"])
    assert A.relu(ALL_INT8, p).tolist() == [tr.relu_one(int(v), r) for v in ALL_INT8]


@given(alpha=st.floats(-2.0, 2.0, allow_nan=False, width=32), s_in=scales, s_out=scales,
       zi=zps, zo=zps, rnd=roundings)
@example(alpha=0.1, s_in=np.float32(0.05), s_out=np.float32(0.05), zi=0, zo=0, rnd="double")
def test_leaky_relu(alpha, s_in, s_out, zi, zo, rnd):
    try:
        p = A.prepare_leaky_relu(alpha, s_in, zi, s_out, zo, rnd)
    except ValueError as exc:
        assert "overflows" in str(exc) or "alpha" in str(exc)
        return
    r = tr.leaky_prepare(alpha, s_in, zi, s_out, zo, rnd)
    assert (p.identity_multiplier, p.identity_shift) == r["i"]
    assert A.leaky_relu(ALL_INT8, p).tolist() == [tr.leaky_one(int(v), r) for v in ALL_INT8]


@given(s_in=st.floats(1e-3, 0.5).map(np.float32), zi=zps, zo=zps)
def test_logistic_table(s_in, zi, zo):
    p = A.prepare_logistic(s_in, zi, 1.0 / 256, zo)
    assert list(p.lut) == tr.logistic_lut(s_in, zi, 1.0 / 256, zo)
    assert A.logistic(ALL_INT8, p).tolist() == tr.logistic_lut(s_in, zi, 1.0 / 256, zo)


@given(s_in=st.floats(0.005, 0.5).map(np.float32), s_out=st.floats(0.005, 0.5).map(np.float32),
       zi=zps, zo=zps)
@example(s_in=np.float32(0.1), s_out=np.float32(0.05), zi=-3, zo=-100)
def test_hard_swish(s_in, s_out, zi, zo):
    try:
        p = A.prepare_hard_swish(s_in, zi, s_out, zo)
    except ValueError as exc:
        assert "exponent" in str(exc)
        return
    r = tr.hard_swish_prepare(s_in, zi, s_out, zo)
    assert (p.output_multiplier_fixedpoint_int16, p.output_multiplier_exponent,
            p.reluish_multiplier_fixedpoint_int16, p.reluish_multiplier_exponent) == \
        (r["mo"], r["eo"], r["mr"], r["er"])
    assert A.hard_swish(ALL_INT8, p).tolist() == [tr.hard_swish_one(int(v), r) for v in ALL_INT8]


@given(beta=st.floats(0.2, 2.0).map(np.float32), s_in=st.floats(0.01, 0.5).map(np.float32),
       rnd=roundings, rows=st.lists(st.lists(st.integers(-128, 127), min_size=10, max_size=10),
                                    min_size=1, max_size=6))
def test_softmax(beta, s_in, rnd, rows):
    p = A.prepare_softmax(beta, s_in, rounding=rnd)
    r = tr.softmax_prepare(beta, s_in, rnd)
    assert (p.input_multiplier, p.input_left_shift, p.diff_min) == (r["m"], r["ls"], r["diff_min"])
    x = np.array(rows, np.int8)
    assert A.softmax(x, p).tolist() == [tr.softmax_row(row, r) for row in rows]


def test_softmax_shapes_and_sums(rng):
    p = A.prepare_softmax(1.0, 0.1)
    x = rng.integers(-128, 128, (2, 3, 7)).astype(np.int8)
    y = A.softmax(x, p)
    assert y.shape == x.shape
    probs = (y.astype(np.float64) + 128) / 256
    assert np.all(np.abs(probs.sum(-1) - 1) < 7 / 256)        # 1/2 LSB per class at most
    assert np.all(A.softmax(np.full((1, 4), 5, np.int8), p) == 64 - 128)   # 1/4 each


def test_bad_parameters():
    with pytest.raises(ValueError, match="out_scale: .* requires exactly 1/256"):
        A.prepare_logistic(0.1, 0, 0.01, -128)
    with pytest.raises(ValueError, match="out_zero_point: 0; TFLite's int8 SOFTMAX requires -128"):
        A.prepare_softmax(1.0, 0.1, 1 / 256, 0)
    with pytest.raises(ValueError, match="kind: 'relu7' is not one of"):
        A.prepare_relu("relu7", 0.1, 0, 0.1, 0)
    with pytest.raises(ValueError, match="requires an output multiplier exponent <= 0"):
        A.prepare_hard_swish(0.5, 0, 0.001, 0)
    with pytest.raises(ValueError, match="params: expected SoftmaxParams"):
        A.softmax(ALL_INT8, A.prepare_relu("relu", 0.1, 0, 0.1, 0))
