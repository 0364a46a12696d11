"""pymodel.arithmetic.fast_requant == the stage-by-stage requantize, over the whole contract.

Double rounding: against :func:`pymodel.arithmetic.fixedpoint.requantize` (itself tested
against the scalar reference in test_fixedpoint.py).  Single rounding: against a
one-value-at-a-time transcription of TFLite's ``TFLITE_SINGLE_ROUNDING``
``MultiplyByQuantizedMultiplier`` (``kernels/internal/common.cc``) with Python ints.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import scalar_ref as ref
from pymodel.arithmetic import fast_requant as fq
from pymodel.arithmetic import fixedpoint as fp

INT32_MIN, INT32_MAX = fp.INT32_MIN, fp.INT32_MAX
EDGES = [INT32_MIN, INT32_MIN + 1, -(2**30), -(2**30) - 1, -2, -1, 0, 1, 2, 2**30,
         INT32_MAX - 1, INT32_MAX]
int32 = st.one_of(st.integers(INT32_MIN, INT32_MAX), st.sampled_from(EDGES),
                  st.integers(-4096, 4096))
m0s = st.one_of(st.integers(2**30, INT32_MAX), st.integers(0, INT32_MAX),
                st.sampled_from([0, 1, 2**30, INT32_MAX]))
shifts = st.integers(fp.SHIFT_MIN, fp.SHIFT_MAX)
zps = st.one_of(st.integers(-128, 127), st.integers(-(2**15), 2**15 - 1))
bounds = st.one_of(st.tuples(st.integers(-128, 127), st.integers(-128, 127)),
                   st.tuples(int32, int32)).map(sorted)


def single_rounding_ref(acc: int, bias: int, m0: int, shift: int, zp: int, lo: int,
                        hi: int) -> int:
    """TFLite, TFLITE_SINGLE_ROUNDING=1: one rounding right shift of the 64-bit product."""
    x = ref.wrap32(acc + bias)
    total_shift = 31 - shift
    rnd = 1 << (total_shift - 1)
    y = ref.wrap32((x * m0 + rnd) >> total_shift)     # static_cast<int32_t>
    return min(max(ref.wrap32(y + zp), lo), hi)


@st.composite
def layers(draw: st.DrawFn) -> tuple:
    """A layer's requantize inputs: acc [M, C] and per-channel parameters."""
    c = draw(st.integers(1, 6))
    m = draw(st.integers(1, 8))
    acc = draw(st.lists(int32, min_size=m * c, max_size=m * c))
    bias = draw(st.lists(int32, min_size=c, max_size=c))
    m0 = draw(st.lists(m0s, min_size=c, max_size=c))
    shift = draw(st.lists(shifts, min_size=c, max_size=c))
    zp = draw(zps)
    lo, hi = draw(bounds)
    return (np.array(acc, np.int64).reshape(m, c), np.array(bias), np.array(m0),
            np.array(shift), zp, lo, hi)


@given(layers())
@example((np.array([[INT32_MIN, INT32_MAX, -1, 0, 1, -(2**30)]]), np.zeros(6, int),
          np.array([INT32_MAX, INT32_MAX, 2**30, 2**30, 2**30, 2**30]),
          np.array([-31, 30, 0, -1, -1, 0]), 127, INT32_MIN, INT32_MAX))
@example((np.array([[-1, -3, 3, -(2**30)]]), np.zeros(4, int),     # negative ties: -0.5 -> -1
          np.array([INT32_MAX, 2**30, 2**30, 2**30]), np.array([-1, -1, -1, -30]), 0, -128, 127))
def test_double_rounding_equals_reference(case):
    acc, bias, m0, shift, zp, lo, hi = case
    want = fp.requantize(acc, bias, m0, shift, zp, lo, hi)
    got = fq.requantize_fast(acc, bias, m0, shift, zp, lo, hi, rounding="double")
    assert got.dtype == np.int32
    assert got.tolist() == want.tolist()


@given(layers())
@example((np.array([[INT32_MIN, INT32_MAX, -3, 3, -1, 1]]), np.zeros(6, int),
          np.array([INT32_MAX, INT32_MAX, 2**30, 2**30, 2**30, 2**30]),
          np.array([-31, 30, 0, -1, -1, 30]), -5, INT32_MIN, INT32_MAX))
def test_single_rounding_equals_tflite_formula(case):
    acc, bias, m0, shift, zp, lo, hi = case
    got = fq.requantize_fast(acc, bias, m0, shift, zp, lo, hi, rounding="single")
    c = acc.shape[1]
    want = [[single_rounding_ref(int(acc[i, j]), int(bias[j]), int(m0[j]), int(shift[j]),
                                 zp, lo, hi) for j in range(c)] for i in range(acc.shape[0])]
    assert got.tolist() == want
    # ... and the stage-by-stage golden model's single rounding (issue10ops) agrees
    assert fp.requantize(acc, bias, m0, shift, zp, lo, hi, rounding="single").tolist() == want


@st.composite
def checked_layers(draw: st.DrawFn) -> tuple:
    """Accumulators with a proven bound |acc + bias| <= bound: the prepared layers' case
    (bias folded into the multiplier's constant, unwrapped bias may leave int32)."""
    c = draw(st.integers(1, 5))
    m = draw(st.integers(1, 6))
    bound = draw(st.one_of(st.integers(0, INT32_MAX), st.sampled_from([0, INT32_MAX])))
    small = st.integers(-min(bound, 8), min(bound, 8))      # where negative ties live
    x1 = draw(st.lists(st.one_of(st.integers(-bound, bound), st.sampled_from([-bound, bound]),
                                 small), min_size=m * c, max_size=m * c))
    bias = draw(st.lists(st.integers(-(2**40), 2**40), min_size=c, max_size=c))
    m0 = draw(st.lists(m0s, min_size=c, max_size=c))
    shift = draw(st.lists(shifts, min_size=c, max_size=c))
    x1 = np.array(x1, np.int64).reshape(m, c)
    b = np.array(bias, np.int64)
    return (x1 - b, b, bound, np.array(m0), np.array(shift), draw(st.integers(-128, 127)))


@pytest.mark.parametrize("rounding", fq.ROUNDING_MODES)
@given(case=checked_layers())
@example(case=(np.array([[-1 - 7, -3 - 9, -1 - 11, -2 - 13]]), np.array([7, 9, 11, 13]), 2**20,
               np.array([INT32_MAX, 2**30, 2**30, 2**30]), np.array([-1, -1, -1, -2]), 4))
@example(case=(np.array([[-357913942, -357913941, -(2**30)]]), np.array([0, 0, 0]), 2**30,
               np.array([3, 3, 1]), np.array([-1, -1, -1]), 0))  # small m0: t < 0 edges
@example(case=(np.array([[-1 + 5000, -3 - 70000]]), np.array([-5000, 70000]), 2**20,
               np.array([INT32_MAX, 2**30]), np.array([-1, -1]), 0))  # ties, |bias| > 2^10
def test_folded_bias_plan_equals_reference(rounding, case):
    acc, bias, bound, m0, shift, zp = case
    plan = fq.plan_requant(bias, m0, shift, zp, -128, 127, rounding, acc_bound=bound)
    got = fq.apply_plan(plan, acc)
    assert got.dtype == np.int8
    x1 = acc + bias                                   # exact, inside int32 by the bound
    want = fq.requantize_fast(x1, 0, m0, shift, zp, -128, 127, rounding)
    assert want.tolist() == fp.requantize(x1, 0, m0, shift, zp, -128, 127, rounding).tolist()
    assert got.tolist() == want.tolist()
    if np.abs(acc).max() <= 2**24:                    # the float32 GEMM's accumulators
        assert fq.apply_plan(plan, acc.astype(np.float32)).tolist() == want.tolist()
    assert fq.apply_plan(plan, acc.T.copy(), channel_axis=0).T.tolist() == want.tolist()


def test_float_accumulators_and_blocks(rng):
    """Float32 GEMM output (exact integers) in more than one block: same integers."""
    c = 7
    acc = rng.integers(-(2**24), 2**24, (fq.BLOCK // c + 5, c))
    bias = rng.integers(-(2**20), 2**20, c)
    m0 = rng.integers(2**30, 2**31, c)
    shift = rng.integers(-12, 1, c)
    plan = fq.plan_requant(bias, m0, shift, 3, -128, 127, acc_bound=2**24 + 2**20)
    got = fq.apply_plan(plan, acc.astype(np.float32))
    want = fp.requantize(acc, bias, m0, shift, 3, -128, 127)
    assert np.array_equal(got, want.astype(np.int8))


def test_bad_arguments():
    with pytest.raises(ValueError, match="rounding"):
        fq.plan_requant([0], [1 << 30], [0], 0, -128, 127, rounding="half")
    with pytest.raises(ValueError, match="m0"):
        fq.plan_requant([0], [-1], [0], 0, -128, 127)
    with pytest.raises(ValueError, match="shift"):
        fq.plan_requant([0], [1 << 30], [31], 0, -128, 127)
    with pytest.raises(ValueError, match="act_min"):
        fq.plan_requant([0], [1 << 30], [0], 0, 5, 4)


def test_folded_plans_take_both_zero_point_paths():
    """Small accumulator bounds fold the zero point into the constant; the largest
    (|x1 * m0| near 2^62 with a 2^62 shift) cannot."""
    small = fq.plan_requant([5], [2**30 + 7], [-10], -3, -128, 127, acc_bound=2**24)
    large = fq.plan_requant([5], [2**31 - 1], [-31], -3, -128, 127, acc_bound=2**31 - 1)
    assert small.zp_folded and not large.zp_folded
    acc = np.array([[-(2**24) + 5], [0], [2**24 - 5], [-(2**20) - 1]])
    want = fp.requantize(acc + 5, 0, [2**30 + 7], [-10], -3, -128, 127)
    assert fq.apply_plan(small, acc).tolist() == want.tolist()
    assert fq.apply_plan(small, acc.T.copy(), channel_axis=0).T.tolist() == want.tolist()


@st.composite
def float_layers(draw: st.DrawFn) -> tuple:
    """Checked layers in the float64 form's range: |acc + bias| <= bound, int8 clamps."""
    c = draw(st.integers(1, 5))
    m = draw(st.integers(1, 6))
    bound = draw(st.one_of(st.integers(0, 2**22), st.sampled_from([0, 2**18, 2**22])))
    small = st.integers(-min(bound, 8), min(bound, 8))
    x1 = draw(st.lists(st.one_of(st.integers(-bound, bound), st.sampled_from([-bound, bound]),
                                 small), min_size=m * c, max_size=m * c))
    bias = draw(st.lists(st.integers(-(2**21), 2**21), min_size=c, max_size=c))
    m0 = draw(st.lists(m0s, min_size=c, max_size=c))
    shift = draw(st.lists(shifts, min_size=c, max_size=c))
    lo, hi = sorted(draw(st.tuples(st.integers(-128, 127), st.integers(-128, 127))))
    x1 = np.array(x1, np.int64).reshape(m, c)
    b = np.array(bias, np.int64)
    return (x1 - b, b, bound, np.array(m0), np.array(shift), draw(st.integers(-128, 127)),
            lo, hi)


@pytest.mark.parametrize("rounding", fq.ROUNDING_MODES)
@given(case=float_layers())
@example(case=(np.array([[-1 - 7, -3 - 9, -1 - 11, -2 - 13]]), np.array([7, 9, 11, 13]), 2**20,
               np.array([INT32_MAX, 2**30, 2**30, 2**30]), np.array([-1, -1, -1, -2]), 4,
               -128, 127))                                     # negative ties
@example(case=(np.array([[-357913942, -357913941, -(2**30)]]) // 2**10, np.array([0, 0, 0]),
               2**21, np.array([3, 3, 1]), np.array([-1, -1, -1]), 0, -128, 127))
def test_float_plan_equals_reference(rounding, case):
    """The float64 form (plan_float / apply_float) == the stage-by-stage requantize,
    wherever plan_float accepts the layer; and it accepts the depthwise-sized ones."""
    acc, bias, bound, m0, shift, zp, lo, hi = case
    acc_max = bound + int(np.abs(bias).max())
    plan = fq.plan_float(bias, m0, shift, zp, lo, hi, rounding, bound, acc_max)
    x1 = acc + bias
    want = fp.requantize(x1, 0, m0, shift, zp, lo, hi, rounding)
    if plan is None:          # outside the provably exact range: the int64 plan serves
        return
    for dtype in (np.int32, np.float64):
        out = np.empty(acc.shape, np.uint8)
        fq.apply_float(plan, acc.astype(dtype), out)
        got = (out ^ 0x80).view(np.int8)
        assert got.tolist() == want.tolist()


def test_float_plan_accepts_depthwise_layers_and_refuses_inexact_ones():
    """A 3x3 depthwise layer's bound (9 * 128 * 127) takes the float64 form; bounds that
    make acc * m0 or the constant leave float64's exact integers do not; left shifts
    (double rounding) and clamps outside int8 do not."""
    args = ([100, -5], [2**31 - 1, 2**30], [-9, 0], -5, -128, 127)
    assert fq.plan_float(*args, "double", 9 * 128 * 127 + 100, 9 * 128 * 127) is not None
    assert fq.plan_float(*args, "single", 9 * 128 * 127 + 100, 9 * 128 * 127) is not None
    assert fq.plan_float(*args, "double", 2**23, 2**23) is None
    assert fq.plan_float([0], [2**30], [1], 0, -128, 127, "double", 100, 100) is None
    assert fq.plan_float([0], [2**30], [0], 0, -128, 300, "double", 100, 100) is None
