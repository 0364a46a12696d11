"""int32 fixed-point requantization, bit-exact with TFLite's reference int8 kernels.

Every function is vectorized over numpy arrays (broadcasting like numpy) and returns a
Python scalar when all of its inputs are scalars.  All integer results are ``int32``
values (returned in ``np.int32`` arrays); intermediate products are held in ``int64``.

The requantize pipeline, stage by stage (each stage is one function here and one
pipeline stage of ``rtl/requant_lane.v`` with the same name; see ``docs/arithmetic.md``)::

    x1 = add_bias(acc, bias)                          int32 + int32, wraps mod 2^32
    x2 = left_shift(x1, shift)                        x1 * 2^max(shift, 0), wraps mod 2^32
    x3 = saturating_rounding_doubling_high_mul(x2, m0)
    x4 = rounding_divide_by_pot(x3, max(-shift, 0))
    x5 = add_zero_point(x4, out_zero_point)           int32 + int32, wraps mod 2^32
    y  = clamp(x5, act_min, act_max)

Stages 2-4 together are :func:`multiply_by_quantized_multiplier`, TFLite's
``MultiplyByQuantizedMultiplier`` with gemmlowp's default "double rounding".

Wraparound: C leaves signed overflow undefined; the qmac contract defines every int32
addition and the left shift as two's-complement wraparound (what a 32-bit adder does), so
the model and the RTL agree even where a C compiler would not promise anything.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import validate
from .rounding import round_half_away

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
SHIFT_MIN = -31  # most negative shift: rounding divide by 2^31
SHIFT_MAX = 30   # largest left shift

__all__ = [
    "INT32_MIN", "INT32_MAX", "SHIFT_MIN", "SHIFT_MAX",
    "wrap_int32", "quantize_multiplier",
    "add_bias", "left_shift", "saturating_rounding_doubling_high_mul",
    "rounding_divide_by_pot", "add_zero_point", "clamp",
    "multiply_by_quantized_multiplier", "requantize",
]


def _is_scalar(*args: Any) -> bool:
    return all(np.ndim(a) == 0 and not isinstance(a, np.ndarray) for a in args)


def _result(x: np.ndarray, scalar: bool) -> Any:
    """int32 array, or a Python int when every input was a scalar."""
    x = np.asarray(x).astype(np.int32)
    return int(x) if scalar else x


def wrap_int32(x: np.ndarray | int) -> np.ndarray:
    """Two's-complement wrap of integers to int32 (reduce mod 2^32 into [-2^31, 2^31)).

    Args:
        x: integer array (any int dtype; values must fit int64).

    Returns:
        int64 array of the wrapped values (callers cast to int32 at the end).
    """
    x = np.asarray(x, dtype=np.int64)
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _int32(name: str, value: Any) -> np.ndarray:
    return validate.int_array(name, value, INT32_MIN, INT32_MAX).astype(np.int64, copy=False)


def _shift(name: str, value: Any, lo: int = SHIFT_MIN, hi: int = SHIFT_MAX) -> np.ndarray:
    return validate.int_array(name, value, lo, hi).astype(np.int64, copy=False)


# ----------------------------------------------------------------------------------------
# Real multiplier -> (m0, shift)
# ----------------------------------------------------------------------------------------

def quantize_multiplier(real_multiplier: Any) -> tuple[Any, Any]:
    """TFLite's ``QuantizeMultiplier``: real multiplier -> (m0, shift).

    ``real_multiplier ~= m0 * 2^(shift - 31)`` with

    * ``q, shift = frexp(real_multiplier)`` (``q`` in [0.5, 1)),
    * ``m0 = round(q * 2^31)``, rounded half away from zero,
    * if ``m0 == 2^31`` (``q`` rounded up to 1.0): ``m0 = 2^30``, ``shift += 1``,
    * if ``shift < -31``: flushed to ``(0, 0)`` (every product would shift out),
    * ``real_multiplier == 0``: ``(0, 0)``.

    Args:
        real_multiplier: float scalar or array, finite, ``>= 0`` and small enough that
            ``shift <= 30`` (i.e. below 2^30).

    Returns:
        ``(m0, shift)``: int32 values (``m0`` in [2^30, 2^31) or 0; ``shift`` in
        [-31, 30], positive = left shift).  Python ints for a scalar input, else
        ``np.int32`` arrays of the input's shape.
    """
    scalar = _is_scalar(real_multiplier)
    r = validate.float_array("real_multiplier", real_multiplier)
    if r.size and r.min() < 0:
        raise ValueError(f"real_multiplier: {float(r.min())!r} is negative; "
                         "requantization multipliers must be >= 0")
    q, exp = np.frexp(r)
    q_fixed = round_half_away(q * float(1 << 31)).astype(np.int64)
    exp = exp.astype(np.int64)
    carry = q_fixed == (1 << 31)
    q_fixed = np.where(carry, q_fixed // 2, q_fixed)
    exp = np.where(carry, exp + 1, exp)
    if exp.size and exp.max() > SHIFT_MAX:
        bad = float(r.flat[int(np.argmax(exp))])
        raise ValueError(f"real_multiplier: {bad!r} needs a left shift above {SHIFT_MAX}; "
                         f"multipliers must be below 2^{SHIFT_MAX}")
    flush = (exp < SHIFT_MIN) | (q_fixed == 0)
    q_fixed = np.where(flush, 0, q_fixed)
    exp = np.where(flush, 0, exp)
    return _result(q_fixed, scalar), _result(exp, scalar)


# ----------------------------------------------------------------------------------------
# Pipeline stages (one function per RTL stage)
# ----------------------------------------------------------------------------------------

def add_bias(acc: Any, bias: Any) -> Any:
    """Stage 1: ``acc + bias`` in int32, two's-complement wraparound.

    Args:
        acc: int32 accumulator values, any shape.
        bias: int32 per-channel bias, broadcast against ``acc`` (channel = last axis).
    """
    scalar = _is_scalar(acc, bias)
    return _result(wrap_int32(_int32("acc", acc) + _int32("bias", bias)), scalar)


def left_shift(x: Any, shift: Any) -> Any:
    """Stage 2: ``x * 2^max(shift, 0)`` in int32, two's-complement wraparound.

    TFLite computes ``x * (1 << left_shift)`` on int32; the contract defines its
    overflow as wraparound (the bits shifted out of a 32-bit register are lost).

    Args:
        x: int32 values.
        shift: int32 shift in [-31, 30]; only its positive part is applied here.
    """
    scalar = _is_scalar(x, shift)
    s = np.maximum(_shift("shift", shift), 0)
    return _result(wrap_int32(_int32("x", x) << s), scalar)


def _trunc_div_pow2_31(n: np.ndarray) -> np.ndarray:
    """C-style division (truncation toward zero) of int64 ``n`` by 2^31."""
    return np.where(n < 0, -((-n) >> 31), n >> 31)


def saturating_rounding_doubling_high_mul(a: Any, b: Any) -> Any:
    """Stage 3: gemmlowp ``SaturatingRoundingDoublingHighMul(a, b)``.

    ``(a*b + nudge) / 2^31`` with the 64-bit product ``a*b``, ``nudge = 2^30`` if
    ``a*b >= 0`` else ``1 - 2^30``, and C division truncating toward zero.  That equals
    ``floor((a*b + 2^30) / 2^31)``: ``a*b / 2^31`` rounded to nearest with ties toward
    +infinity (ARM ``VQRDMULH``) -- so -33.5 becomes -33, not -34.  A constant nudge of
    ``2^30`` with truncating division would be wrong for *every* negative product with
    a fractional part, not only ties.  The only overflow, ``INT32_MIN * INT32_MIN``,
    saturates to ``INT32_MAX``.

    Args:
        a, b: int32 values (broadcast together).

    Returns:
        int32 values.
    """
    scalar = _is_scalar(a, b)
    a64, b64 = _int32("a", a), _int32("b", b)
    ab = a64 * b64
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    high = _trunc_div_pow2_31(ab + nudge)
    overflow = (a64 == INT32_MIN) & (b64 == INT32_MIN)
    return _result(np.where(overflow, INT32_MAX, high), scalar)


def rounding_divide_by_pot(x: Any, exponent: Any) -> Any:
    """Stage 4: gemmlowp ``RoundingDivideByPOT(x, exponent)``: ``x / 2^exponent``
    rounded to nearest, ties away from zero.

    Mask / remainder / threshold form, exactly as gemmlowp writes it::

        mask      = 2^exponent - 1
        remainder = x & mask
        threshold = (mask >> 1) + (1 if x < 0 else 0)
        result    = (x >> exponent) + (1 if remainder > threshold else 0)

    with ``>>`` an arithmetic shift.  Cannot overflow.

    Args:
        x: int32 values.
        exponent: int in [0, 31] (broadcast against ``x``).
    """
    scalar = _is_scalar(x, exponent)
    x64 = _int32("x", x)
    e = _shift("exponent", exponent, 0, 31)
    mask = (np.int64(1) << e) - 1
    remainder = x64 & mask
    threshold = (mask >> 1) + (x64 < 0)
    return _result((x64 >> e) + (remainder > threshold), scalar)


def add_zero_point(x: Any, zero_point: Any) -> Any:
    """Stage 5: ``x + zero_point`` in int32, two's-complement wraparound.

    Args:
        x: int32 values.
        zero_point: output zero point, int in [-2^15, 2^15) (int8 outputs use [-128, 127]).
    """
    scalar = _is_scalar(x, zero_point)
    zp = validate.int_array("zero_point", zero_point, -(1 << 15), (1 << 15) - 1)
    return _result(wrap_int32(_int32("x", x) + zp), scalar)


def clamp(x: Any, act_min: Any, act_max: Any) -> Any:
    """Stage 6: clamp to ``[act_min, act_max]`` (the fused activation and output range).

    Args:
        x: int32 values.
        act_min, act_max: ints with ``act_min <= act_max`` (broadcast against ``x``).
    """
    scalar = _is_scalar(x, act_min, act_max)
    lo, hi = _int32("act_min", act_min), _int32("act_max", act_max)
    if np.any(lo > hi):
        raise ValueError(f"act_min/act_max: act_min {int(np.max(lo))} exceeds act_max "
                         f"{int(np.min(hi))}; need act_min <= act_max")
    return _result(np.minimum(np.maximum(_int32("x", x), lo), hi), scalar)


# ----------------------------------------------------------------------------------------
# Compositions
# ----------------------------------------------------------------------------------------

def multiply_by_quantized_multiplier(x: Any, m0: Any, shift: Any) -> Any:
    """TFLite's ``MultiplyByQuantizedMultiplier``: ``x * m0 * 2^(shift-31)``, rounded.

    ``left_shift`` -> ``saturating_rounding_doubling_high_mul`` ->
    ``rounding_divide_by_pot(max(-shift, 0))`` (gemmlowp double rounding).

    Args:
        x: int32 values.
        m0: int32 multiplier (normally in [2^30, 2^31) or 0), broadcast against ``x``.
        shift: int in [-31, 30], broadcast against ``x``.
    """
    scalar = _is_scalar(x, m0, shift)
    s = _shift("shift", shift)
    y = left_shift(np.asarray(x), s)
    y = saturating_rounding_doubling_high_mul(y, np.asarray(m0))
    y = rounding_divide_by_pot(y, np.maximum(-s, 0))
    return _result(y, scalar)


def requantize(acc: Any, bias: Any, m0: Any, shift: Any, out_zero_point: Any,
               act_min: Any, act_max: Any) -> Any:
    """int32 accumulators -> quantized outputs: the function the RTL pipeline implements.

    ``clamp(add_zero_point(multiply_by_quantized_multiplier(add_bias(acc, bias), m0,
    shift), out_zero_point), act_min, act_max)``.

    Args:
        acc: int32 accumulators, shape ``[..., C]`` (channel last) or any shape that the
            parameters broadcast against.
        bias, m0, shift: per-output-channel int32 parameters, shape ``[C]`` or scalars.
        out_zero_point, act_min, act_max: output zero point and clamp bounds (scalars or
            per-channel ``[C]``).

    Returns:
        int32 array (values in ``[act_min, act_max]``; cast to int8 by the caller), or a
        Python int for scalar inputs.
    """
    scalar = _is_scalar(acc, bias, m0, shift, out_zero_point, act_min, act_max)
    x = add_bias(np.asarray(acc), np.asarray(bias))
    x = multiply_by_quantized_multiplier(x, np.asarray(m0), np.asarray(shift))
    x = add_zero_point(x, np.asarray(out_zero_point))
    x = clamp(x, np.asarray(act_min), np.asarray(act_max))
    return _result(x, scalar)
