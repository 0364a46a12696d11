"""Plain-Python scalar reference of the arithmetic contract (docs/arithmetic.md).

Written straight from the documented formulas with Python's unbounded ints, one value
at a time, sharing no code with ``pymodel``: the property tests compare the vectorized
golden model against it.
"""

from __future__ import annotations

import math
from fractions import Fraction

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def wrap32(v: int) -> int:
    return ((v + 2**31) % 2**32) - 2**31


def c_div(n: int, d: int) -> int:
    """C integer division: truncates toward zero."""
    q = abs(n) // abs(d)
    return q if (n >= 0) == (d > 0) else -q


def round_half_away(r: Fraction) -> int:
    """Exact round half away from zero of a rational."""
    f = math.floor(abs(r) + Fraction(1, 2))
    return f if r >= 0 else -f


def quantize_multiplier(m: float) -> tuple[int, int]:
    if m == 0.0:
        return 0, 0
    q, e = math.frexp(m)
    q_fixed = round_half_away(Fraction(q) * 2**31)
    if q_fixed == 2**31:
        q_fixed //= 2
        e += 1
    if e < -31:
        return 0, 0
    return q_fixed, e


def srdhm(a: int, b: int) -> int:
    if a == INT32_MIN and b == INT32_MIN:
        return INT32_MAX
    p = a * b
    nudge = 2**30 if p >= 0 else 1 - 2**30
    return c_div(p + nudge, 2**31)


def rounding_divide_by_pot(x: int, e: int) -> int:
    mask = 2**e - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if remainder > threshold else 0)


def multiply_by_quantized_multiplier(x: int, m0: int, shift: int) -> int:
    x = wrap32(x * 2 ** max(shift, 0))
    return rounding_divide_by_pot(srdhm(x, m0), max(-shift, 0))


def requantize(acc: int, bias: int, m0: int, shift: int, zp: int, lo: int, hi: int) -> int:
    x = wrap32(acc + bias)
    x = multiply_by_quantized_multiplier(x, m0, shift)
    x = wrap32(x + zp)
    return min(max(x, lo), hi)


# TFLITE_SINGLE_ROUNDING (tflite/kernels/internal/common.cc):
#   total_shift = 31 - shift; round = 1 << (total_shift - 1);
#   result = (x * (int64_t)quantized_multiplier + round) >> total_shift;
#   DCHECKs: quantized_multiplier >= 0, -31 <= shift <= 30, result fits int32;
#   the release build's static_cast<int32_t> keeps the low 32 bits.
def single_rounding_multiply(x: int, m0: int, shift: int) -> int:
    assert m0 >= 0 and -31 <= shift <= 30
    total_shift = 31 - shift
    rnd = 1 << (total_shift - 1)
    return wrap32((x * m0 + rnd) >> total_shift)


def requantize_single(acc: int, bias: int, m0: int, shift: int, zp: int, lo: int,
                      hi: int) -> int:
    x = wrap32(acc + bias)
    x = single_rounding_multiply(x, m0, shift)
    x = wrap32(x + zp)
    return min(max(x, lo), hi)


def quantize_multiplier_single(m: float) -> tuple[int, int]:
    """QuantizeMultiplier under TFLITE_SINGLE_ROUNDING: shift > 30 saturates."""
    if m == 0.0:
        return 0, 0
    q, e = math.frexp(m)
    q_fixed = round_half_away(Fraction(q) * 2**31)
    if q_fixed == 2**31:
        q_fixed //= 2
        e += 1
    if e < -31:
        return 0, 0
    if e > 30:
        return 2**31 - 1, 30
    return q_fixed, e
