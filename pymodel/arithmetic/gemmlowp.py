"""gemmlowp's fixed-point math (``fixedpoint/fixedpoint.h``), vectorized, with exact
int32 / int16 semantics -- what TFLite's SOFTMAX and HARD_SWISH int8 reference kernels
call.

Hand-written because no Python package provides these functions bit-exactly: each is a
line-by-line port of the scalar C++ (``tRawType = int32_t`` unless the name says int16),
operating on int64 numpy arrays that hold int32 (int16) values.  A ``FixedPoint<int32_t,
k>`` is its raw int32 here; ``k`` (integer bits) is a Python argument where it matters.
Additions that gemmlowp leaves to C (``Add``, ``Sub``) wrap modulo 2^32, the contract's
rule for every int32 overflow (they do not overflow on the paths TFLite uses).

Every function takes and returns int64 ndarrays (any shape, broadcasting like numpy).
"""

from __future__ import annotations

import numpy as np

from pymodel.arithmetic.fixedpoint import INT32_MAX, INT32_MIN, wrap_int32

INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1

__all__ = [
    "INT16_MIN", "INT16_MAX",
    "srdhm", "srdhm_int16", "rounding_divide_by_pot", "rounding_divide_by_pot_int16",
    "saturating_rounding_multiply_by_pot", "rescale", "rounding_half_sum",
    "exp_on_interval_between_negative_one_quarter_and_0_excl", "exp_on_negative_values",
    "one_over_one_plus_x_for_x_in_0_1", "count_leading_zeros32",
]


def _i64(x: np.ndarray | int) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def _add(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    return wrap_int32(_i64(a) + b)


def srdhm(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """``SaturatingRoundingDoublingHighMul<int32_t>``: ``(a*b + nudge) / 2^31`` (C
    division), ``nudge = 2^30`` or ``1 - 2^30`` by the product's sign; ``INT32_MIN^2``
    saturates to ``INT32_MAX``.  Also the fixed-point product ``FixedPoint * FixedPoint``."""
    a, b = _i64(a), _i64(b)
    ab = a * b
    n = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    q = np.where(n < 0, -((-n) >> 31), n >> 31)
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, q)


def srdhm_int16(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """``SaturatingRoundingDoublingHighMul<int16_t>``: ``(a*b + nudge) / 2^15``,
    ``nudge = 2^14`` or ``1 - 2^14``; ``INT16_MIN^2`` saturates to ``INT16_MAX``."""
    a, b = _i64(a), _i64(b)
    ab = a * b
    n = ab + np.where(ab >= 0, 1 << 14, 1 - (1 << 14))
    q = np.where(n < 0, -((-n) >> 15), n >> 15)
    q = ((q + (1 << 15)) & 0xFFFF) - (1 << 15)                 # static_cast<int16_t>
    return np.where((a == INT16_MIN) & (b == INT16_MIN), INT16_MAX, q)


def rounding_divide_by_pot(x: np.ndarray | int, exponent: np.ndarray | int) -> np.ndarray:
    """``RoundingDivideByPOT``: ``x / 2^e`` to nearest, ties away from zero (mask /
    remainder / threshold form), ``0 <= e <= 31``."""
    x, e = _i64(x), _i64(exponent)
    mask = (np.int64(1) << e) - 1
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + ((x & mask) > threshold)


def rounding_divide_by_pot_int16(x: np.ndarray | int, exponent: np.ndarray | int) -> np.ndarray:
    """``RoundingDivideByPOT<int16_t>``: the same formula on int16 values, ``0 <= e <= 15``
    (the mask is an int16 then; larger exponents are refused by the callers)."""
    return rounding_divide_by_pot(x, exponent)


def saturating_rounding_multiply_by_pot(x: np.ndarray | int, exponent: int,
                                        bits: int = 32) -> np.ndarray:
    """``SaturatingRoundingMultiplyByPOT<Exponent>``: a saturating left shift for
    ``exponent > 0`` (values beyond ``+-(2^(bits-1-exponent) - 1)`` saturate to the type's
    min / max), :func:`rounding_divide_by_pot` for ``exponent < 0``."""
    x = _i64(x)
    if exponent == 0:
        return x
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    threshold = (1 << (bits - 1 - exponent)) - 1
    shifted = np.clip(x * (1 << exponent), lo, hi)
    return np.where(x > threshold, hi, np.where(x < -threshold, lo, shifted))


def rescale(x: np.ndarray | int, src_integer_bits: int, dst_integer_bits: int) -> np.ndarray:
    """``Rescale<dst>(FixedPoint<int32_t, src>)``: multiply the raw value by
    ``2^(src - dst)`` with :func:`saturating_rounding_multiply_by_pot`."""
    return saturating_rounding_multiply_by_pot(x, src_integer_bits - dst_integer_bits)


def rounding_half_sum(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """``RoundingHalfSum<int32_t>``: ``(a + b + sign) / 2`` in 64 bits, C division,
    ``sign = +1`` if ``a + b >= 0`` else ``-1``."""
    s = _i64(a) + _i64(b)
    n = s + np.where(s >= 0, 1, -1)
    return np.where(n < 0, -((-n) // 2), n // 2)


def exp_on_interval_between_negative_one_quarter_and_0_excl(a: np.ndarray | int) -> np.ndarray:
    """``exp(a)`` for ``a`` in [-1/4, 0), Q0.31 in and out: the Taylor expansion around
    -1/8 of ``fixedpoint.h`` (constants ``1895147668`` = exp(-1/8), ``715827883`` = 1/3)."""
    constant_term = 1895147668
    constant_1_over_3 = 715827883
    x = _add(a, 1 << 28)                                   # a + 1/8
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2)
    t = saturating_rounding_multiply_by_pot(
        _add(srdhm(_add(x4_over_4, x3), constant_1_over_3), x2), -1)
    return _add(constant_term, srdhm(constant_term, _add(x, t)))


# (Exponent, multiplier = exp(-2^Exponent) in Q0.31) of the barrel shifter
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))


def exp_on_negative_values(a: np.ndarray | int, integer_bits: int) -> np.ndarray:
    """``exp_on_negative_values(FixedPoint<int32_t, integer_bits>)`` -> Q0.31, for
    ``a <= 0``: exp of the remainder modulo 1/4 (Taylor), times ``exp(-2^k)`` for each
    set bit k of the rest (barrel shifter), 0 below -32 when ``integer_bits > 5``, and
    exactly ``One`` (``INT32_MAX``) at 0."""
    a = _i64(a)
    frac_bits = 31 - integer_bits
    one_quarter = 1 << (frac_bits - 2)
    mask = one_quarter - 1
    a_mod = _add(a & mask, -one_quarter)                   # (a & mask) - 1/4
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        rescale(a_mod, integer_bits, 0))
    remainder = _add(a_mod, -a)
    for exponent, mult in _EXP_BARREL:
        if integer_bits > exponent:
            bit = 1 << (frac_bits + exponent)
            result = np.where((remainder & bit) != 0, srdhm(result, mult), result)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))                # -32.0
        result = np.where(a < clamp, 0, result)
    return np.where(a == 0, INT32_MAX, result)


def one_over_one_plus_x_for_x_in_0_1(a: np.ndarray | int) -> np.ndarray:
    """``1 / (1 + a)`` for ``a`` in [0, 1), Q0.31 in and out: Newton-Raphson division
    (constants 48/17 = ``1515870810`` and -32/17 = ``-1010580540`` in Q2.29, three
    iterations), as in ``fixedpoint.h``."""
    half_denominator = rounding_half_sum(a, INT32_MAX)            # F0::One() = INT32_MAX
    x = _add(1515870810, srdhm(half_denominator, -1010580540))    # Q2.29
    one_f2 = 1 << 29
    for _ in range(3):
        half_denominator_times_x = srdhm(half_denominator, x)
        one_minus = _add(one_f2, -half_denominator_times_x)
        x = _add(x, rescale(srdhm(x, one_minus), 4, 2))          # F2 * F2 = F4 -> F2
    return rescale(x, 1, 0)                                       # ExactMulByPot<-1>: F1


def count_leading_zeros32(x: np.ndarray | int) -> np.ndarray:
    """``CountLeadingZeros(uint32_t)`` of int32 values' bit patterns (32 for 0)."""
    u = _i64(x) & 0xFFFFFFFF
    _, bit_length = np.frexp(u.astype(np.float64))      # exact: u < 2^53
    return np.where(u == 0, 32, 32 - bit_length.astype(np.int64))
