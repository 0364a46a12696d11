"""pymodel.arithmetic.fixedpoint against the scalar reference, over the full int32 range."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import scalar_ref as ref
from pymodel.arithmetic import fixedpoint as fp

INT32_MIN, INT32_MAX = fp.INT32_MIN, fp.INT32_MAX
EDGES = [INT32_MIN, INT32_MIN + 1, -(2**30), -2, -1, 0, 1, 2, 2**30, INT32_MAX - 1, INT32_MAX]

int32 = st.one_of(st.integers(INT32_MIN, INT32_MAX), st.sampled_from(EDGES))
m0s = st.one_of(st.integers(2**30, INT32_MAX), st.sampled_from([0, 2**30, INT32_MAX]))
shifts = st.integers(fp.SHIFT_MIN, fp.SHIFT_MAX)
int8 = st.integers(-128, 127)


def vec(strategy: st.SearchStrategy, size: int = 64) -> st.SearchStrategy:
    return st.lists(strategy, min_size=1, max_size=size)


# ---------------------------------------------------------------------------------------
# Each function, vectorized, equals the scalar reference element by element.
# ---------------------------------------------------------------------------------------

@given(vec(st.tuples(int32, int32)))
@example([(INT32_MIN, INT32_MIN), (INT32_MIN, INT32_MAX), (INT32_MAX, INT32_MAX),
          (-3, 2**29), (-67, 2**30), (67, 2**30), (-(2**30), 1), (2**30, 1)])
def test_srdhm_matches_reference(pairs):
    a = np.array([p[0] for p in pairs], np.int32)
    b = np.array([p[1] for p in pairs], np.int32)
    got = fp.saturating_rounding_doubling_high_mul(a, b)
    assert got.dtype == np.int32
    assert got.tolist() == [ref.srdhm(int(x), int(y)) for x, y in pairs]


@given(vec(st.tuples(int32, st.integers(0, 31))))
def test_rounding_divide_by_pot_matches_reference(pairs):
    x = np.array([p[0] for p in pairs], np.int32)
    e = np.array([p[1] for p in pairs], np.int32)
    got = fp.rounding_divide_by_pot(x, e)
    assert got.tolist() == [ref.rounding_divide_by_pot(int(v), int(k)) for v, k in pairs]


@given(vec(st.tuples(int32, m0s, shifts)))
def test_multiply_by_quantized_multiplier_matches_reference(triples):
    x, m0, s = (np.array(col, np.int32) for col in zip(*triples))
    got = fp.multiply_by_quantized_multiplier(x, m0, s)
    assert got.tolist() == [ref.multiply_by_quantized_multiplier(*map(int, t)) for t in triples]


requant_args = st.tuples(int32, int32, m0s, shifts, int8, int8, int8)


@given(vec(requant_args))
def test_requantize_matches_reference(rows):
    rows = [(a, b, m, s, z, min(lo, hi), max(lo, hi)) for a, b, m, s, z, lo, hi in rows]
    cols = [np.array(c, np.int64) for c in zip(*rows)]
    got = fp.requantize(*cols)
    assert got.tolist() == [ref.requantize(*r) for r in rows]


@given(st.lists(st.one_of(
    st.floats(0, 2**29, allow_nan=False, allow_infinity=False),
    st.floats(2**-40, 2**-28),                         # around the flush threshold
    st.sampled_from([0.0, 1.0, 2**-31, 2**-32, 2**-33, 0.5, 0.999999999999, 1.5,
                     np.nextafter(1.0, 0.0), 2**29 * (1 - 2**-40), 5e-324])),
    min_size=1, max_size=32))
def test_quantize_multiplier_matches_reference(values):
    m0, shift = fp.quantize_multiplier(np.array(values))
    assert list(zip(m0.tolist(), shift.tolist())) == [ref.quantize_multiplier(v) for v in values]
    nz = m0 != 0
    assert np.all((m0[nz] >= 2**30) & (m0[nz] < 2**31))
    assert np.all((shift >= -31) & (shift <= 30))


# ---------------------------------------------------------------------------------------
# The reference itself against mathematics (so both cannot share a misreading).
# ---------------------------------------------------------------------------------------

@given(int32, int32)
def test_srdhm_is_round_half_up_of_the_doubled_high_product(a, b):
    if a == b == INT32_MIN:
        assert fp.saturating_rounding_doubling_high_mul(a, b) == INT32_MAX
        return
    exact = Fraction(a * b, 2**31)
    assert fp.saturating_rounding_doubling_high_mul(a, b) == math.floor(exact + Fraction(1, 2))


@given(int32, st.integers(0, 31))
def test_rounding_divide_is_round_half_away(x, e):
    assert fp.rounding_divide_by_pot(x, e) == ref.round_half_away(Fraction(x, 2**e))


@given(st.floats(2**-31, 2**29, allow_nan=False))
def test_quantize_multiplier_represents_the_real_multiplier(m):
    m0, shift = fp.quantize_multiplier(m)
    approx = m0 * 2.0 ** (shift - 31)
    assert abs(approx - m) <= m * 2**-31  # half an ulp of a 31-bit mantissa


# ---------------------------------------------------------------------------------------
# Directed edge cases
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("e", range(1, 32))
def test_exact_ties_at_every_right_shift(e):
    """x = (2k + 1) * 2^(e-1): exactly half-way; rounds away from zero on both signs."""
    k = np.array([0, 1, 2, 7, (2**31 >> e) - 1], np.int64)
    k = k[(2 * k + 1) * 2 ** (e - 1) <= INT32_MAX]
    x = (2 * k + 1) * 2 ** (e - 1)
    assert fp.rounding_divide_by_pot(x, e).tolist() == (k + 1).tolist()
    assert fp.rounding_divide_by_pot(-x, e).tolist() == (-(k + 1)).tolist()
    # one below / above the tie rounds toward the nearer integer
    assert fp.rounding_divide_by_pot(x - 1, e).tolist() == k.tolist()
    assert fp.rounding_divide_by_pot(-x + 1, e).tolist() == (-k).tolist()


def test_srdhm_ties_round_toward_plus_infinity():
    assert fp.saturating_rounding_doubling_high_mul(-67, 2**30) == -33   # -33.5
    assert fp.saturating_rounding_doubling_high_mul(67, 2**30) == 34     # +33.5
    assert fp.saturating_rounding_doubling_high_mul(-1, 2**30) == 0      # -0.5
    assert fp.saturating_rounding_doubling_high_mul(1, 2**30) == 1       # +0.5


def constant_nudge_srdhm(a: int, b: int) -> int:
    """The CFU-Playground bug: nudge 2^30 whatever the sign, truncating divide."""
    return ref.c_div(a * b + 2**30, 2**31)


def test_negative_products_need_the_negative_nudge():
    """A constant nudge is off by one on negative products; ours is not."""
    rng = np.random.default_rng(1)
    a = rng.integers(-(2**31), 0, 2000)
    b = rng.integers(2**30, 2**31, 2000)
    ours = fp.saturating_rounding_doubling_high_mul(a, b)
    buggy = np.array([constant_nudge_srdhm(int(x), int(y)) for x, y in zip(a, b)])
    exact = [math.floor(Fraction(int(x) * int(y), 2**31) + Fraction(1, 2)) for x, y in zip(a, b)]
    assert ours.tolist() == exact
    assert np.count_nonzero(buggy != ours) > 500    # the bug shows on most negative products
    assert fp.saturating_rounding_doubling_high_mul(-3, 2**29) == -1
    assert constant_nudge_srdhm(-3, 2**29) == 0


@pytest.mark.parametrize("shift", range(fp.SHIFT_MIN, fp.SHIFT_MAX + 1))
def test_every_shift_against_reference(shift, rng):
    x = np.concatenate([rng.integers(INT32_MIN, INT32_MAX, 300, endpoint=True), EDGES])
    m0 = rng.integers(2**30, 2**31, x.size)
    m0[:3] = [0, 2**30, INT32_MAX]
    got = fp.multiply_by_quantized_multiplier(x, m0, shift)
    assert got.tolist() == [ref.multiply_by_quantized_multiplier(int(v), int(m), shift)
                            for v, m in zip(x, m0)]


def test_srdhm_saturation():
    assert fp.saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MIN) == INT32_MAX
    assert fp.saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MAX) == -INT32_MAX
    assert fp.saturating_rounding_doubling_high_mul(INT32_MAX, INT32_MAX) == INT32_MAX - 1


def test_product_from_partial_products_is_exact(rng):
    """The RTL's 32 x 32 product (four 17 x 17 partial products, then their sum; requant_lane
    stages 3 and 3b) equals a * b for every pair of edges and for random pairs."""
    edges = np.array(EDGES + [-(2**16), 2**16 - 1, 2**16, -(2**16) - 1, 0xFFFF, -0x8000], np.int64)
    a, b = np.meshgrid(edges, edges)
    r = rng.integers(INT32_MIN, INT32_MAX, (2, 4096), endpoint=True)
    a, b = np.concatenate([a.ravel(), r[0]]), np.concatenate([b.ravel(), r[1]])
    got = fp._product(a, b)
    assert got.tolist() == [int(x) * int(y) for x, y in zip(a, b)]


def test_int32_wraparound_of_every_addition():
    assert fp.add_bias(INT32_MAX, 1) == INT32_MIN
    assert fp.add_bias(INT32_MIN, -1) == INT32_MAX
    assert fp.left_shift(2**30, 1) == INT32_MIN
    assert fp.left_shift(3, 30) == -(2**30)
    assert fp.add_zero_point(INT32_MAX, 1) == INT32_MIN
    # the requantize of a wrapped sum is the requantize of the wrapped value
    assert fp.requantize(INT32_MAX, 1, 2**30, 0, 0, -128, 127) == -128


def test_quantize_multiplier_edges():
    assert fp.quantize_multiplier(0.0) == (0, 0)
    assert fp.quantize_multiplier(1.0) == (2**30, 1)
    assert fp.quantize_multiplier(0.5) == (2**30, 0)
    assert fp.quantize_multiplier(2**-32) == (2**30, -31)      # smallest kept
    assert fp.quantize_multiplier(2**-33) == (0, 0)             # flushed
    assert fp.quantize_multiplier(np.nextafter(1.0, 0.0)) == (2**30, 1)   # m0 carry
    assert fp.quantize_multiplier(3.0) == (3 * 2**29, 2)
    # q * 2^31 exactly half-way between two integers: rounds away from zero (not to even)
    assert fp.quantize_multiplier(0.5 + 2**-32) == (2**30 + 1, 0)
    assert fp.quantize_multiplier(0.5 + 3 * 2**-32) == (2**30 + 2, 0)


def test_scalar_in_scalar_out_and_arrays_keep_shape():
    assert isinstance(fp.requantize(1000, 5, 2**30, -3, 1, -128, 127), int)
    assert isinstance(fp.quantize_multiplier(0.3)[0], int)
    out = fp.requantize(np.zeros((2, 3, 4), np.int32), np.arange(4), np.full(4, 2**30),
                        np.array([-1, 0, 1, 2]), 0, -128, 127)
    assert out.shape == (2, 3, 4) and out.dtype == np.int32
    assert out[0, 0].tolist() == [0, 1, 2, 6]      # bias * 0.5 * 2^shift


def test_worked_example_of_the_docs():
    m0, shift = fp.quantize_multiplier(0.25)
    assert (m0, shift) == (2**30, -1)
    assert fp.add_bias(-83, 16) == -67
    assert fp.saturating_rounding_doubling_high_mul(-67, m0) == -33
    assert fp.rounding_divide_by_pot(-33, 1) == -17
    assert fp.requantize(-83, 16, m0, shift, -5, -128, 127) == -22
    assert fp.multiply_by_quantized_multiplier(5, 2**30, -1) == 2    # double rounding


# ---------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("call, match", [
    (lambda: fp.requantize(np.zeros(3), 0, 2**30, 0, 0, -128, 127), "acc: expected an integer array"),
    (lambda: fp.requantize(0, 0, 2**30, 31, 0, -128, 127), r"shift: value 31 is outside .*\[-31, 30\]"),
    (lambda: fp.requantize(0, 0, 2**30, -32, 0, -128, 127), r"shift: value -32"),
    (lambda: fp.requantize(2**31, 0, 2**30, 0, 0, -128, 127), r"acc: value 2147483648"),
    (lambda: fp.requantize(0, 0, 2**30, 0, 0, 5, 4), "act_min 5 exceeds act_max 4"),
    (lambda: fp.rounding_divide_by_pot(5, 32), r"exponent: value 32 .*\[0, 31\]"),
    (lambda: fp.quantize_multiplier(float("nan")), "real_multiplier: contains nan"),
    (lambda: fp.quantize_multiplier(float("inf")), "real_multiplier: contains inf"),
    (lambda: fp.quantize_multiplier(-0.5), "real_multiplier: -0.5 is negative"),
    (lambda: fp.quantize_multiplier(2.0**30), "left shift above 30"),
    (lambda: fp.quantize_multiplier(2.0**30 * (1 - 2**-40)), "left shift above 30"),  # carry
    (lambda: fp.saturating_rounding_doubling_high_mul(1.5, 2), "a: expected integers"),
    (lambda: fp.add_bias(np.zeros(3, np.int32), np.zeros(2, np.int32)), "broadcast"),
])
def test_bad_input_is_a_clear_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
