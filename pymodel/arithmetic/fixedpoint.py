"""int32 fixed-point requantization, bit-exact with TFLite's reference int8 kernels.

Every function is vectorized over numpy arrays (broadcasting like numpy) and returns a
Python scalar when all of its inputs are scalars.  All integer results are ``int32``
values (returned in ``np.int32`` arrays); intermediate products are held in ``int64``.

The requantize pipeline, stage by stage (each stage is one function here and one or more
register stages of ``rtl/requant_lane.v`` named after it -- SRDHM takes four; see
``docs/arithmetic.md`` section 5.4)::

    x1 = add_bias(acc, bias)                          int32 + int32, wraps mod 2^32
    x2 = left_shift(x1, shift)                        x1 * 2^max(shift, 0), wraps mod 2^32
    x3 = saturating_rounding_doubling_high_mul(x2, m0)
    x4 = rounding_divide_by_pot(x3, max(-shift, 0))
    x5 = add_zero_point(x4, out_zero_point)           int32 + int32, wraps mod 2^32
    y  = clamp(x5, act_min, act_max)

Stages 2-4 together are :func:`multiply_by_quantized_multiplier`, TFLite's
``MultiplyByQuantizedMultiplier`` with gemmlowp's default "double rounding".

Rounding modes (``rounding=`` of :func:`multiply_by_quantized_multiplier`,
:func:`requantize` and :func:`quantize_multiplier`):

* ``"double"`` (default; TFLite built with ``TFLITE_SINGLE_ROUNDING=0``, what the
  LiteRT / TensorFlow wheels ship): the stages above -- SRDHM rounds the 64-bit product
  to 32 bits, then the rounding divide rounds again.
* ``"single"`` (``TFLITE_SINGLE_ROUNDING=1``): stages 2-4 become one
  :func:`single_rounding_multiply`, ``(x * m0 + 2^(30 - shift)) >> (31 - shift)`` on the
  64-bit product -- one rounding, ties toward +infinity.

Wraparound: C leaves signed overflow undefined; the qmac contract defines every int32
addition and the left shift as two's-complement wraparound (what a 32-bit adder does), so
the model and the RTL agree even where a C compiler would not promise anything.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pymodel import validate
from pymodel.arithmetic.rounding import round_half_away

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
    "ROUNDING_MODES", "single_rounding_multiply",
]

ROUNDING_MODES = ("double", "single")


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

def quantize_multiplier(real_multiplier: Any, rounding: str = "double") -> tuple[Any, Any]:
    """TFLite's ``QuantizeMultiplier``: real multiplier -> (m0, shift).

    ``real_multiplier ~= m0 * 2^(shift - 31)`` with

    * ``q, shift = frexp(real_multiplier)`` (``q`` in [0.5, 1)),
    * ``m0 = round(q * 2^31)``, rounded half away from zero,
    * if ``m0 == 2^31`` (``q`` rounded up to 1.0): ``m0 = 2^30``, ``shift += 1``,
    * if ``shift < -31``: flushed to ``(0, 0)`` (every product would shift out),
    * ``real_multiplier == 0``: ``(0, 0)``,
    * ``rounding="single"`` only: ``shift > 30`` saturates to ``(2^31 - 1, 30)`` (the
      ``TFLITE_SINGLE_ROUNDING`` branch of ``quantization_util.cc``); in double mode such
      a multiplier is refused (TFLite would shift left by more than 30).

    Args:
        real_multiplier: float scalar or array, finite, ``>= 0`` and, for
            ``rounding="double"``, small enough that ``shift <= 30`` (below 2^30).
        rounding: ``"double"`` or ``"single"``.

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
    validate.one_of("rounding", rounding, ROUNDING_MODES)
    if rounding == "single":
        sat = exp > SHIFT_MAX
        q_fixed = np.where(sat, INT32_MAX, q_fixed)
        exp = np.where(sat, SHIFT_MAX, exp)
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
    return _result(_add_bias(_int32("acc", acc), _int32("bias", bias)), scalar)


def left_shift(x: Any, shift: Any) -> Any:
    """Stage 2: ``x * 2^max(shift, 0)`` in int32, two's-complement wraparound.

    TFLite computes ``x * (1 << left_shift)`` on int32; the contract defines its
    overflow as wraparound (the bits shifted out of a 32-bit register are lost).

    Args:
        x: int32 values.
        shift: int32 shift in [-31, 30]; only its positive part is applied here.
    """
    scalar = _is_scalar(x, shift)
    return _result(_left_shift(_int32("x", x), _shift("shift", shift)), scalar)


def saturating_rounding_doubling_high_mul(a: Any, b: Any) -> Any:
    """Stage 3: gemmlowp ``SaturatingRoundingDoublingHighMul(a, b)``.

    ``(a*b + nudge) / 2^31`` with the 64-bit product ``a*b``, ``nudge = 2^30`` if
    ``a*b >= 0`` else ``1 - 2^30``, and C division truncating toward zero.  That equals
    ``floor((a*b + 2^30) / 2^31)``: ``a*b / 2^31`` rounded to nearest with ties toward
    +infinity (ARM ``VQRDMULH``) -- so -33.5 becomes -33, not -34.  A constant nudge of
    ``2^30`` with truncating division would be wrong for negative products (not only
    ties).  The only overflow, ``INT32_MIN * INT32_MIN``, saturates to ``INT32_MAX``.

    Args:
        a, b: int32 values (broadcast together).

    Returns:
        int32 values.
    """
    scalar = _is_scalar(a, b)
    return _result(_srdhm(_int32("a", a), _int32("b", b)), scalar)


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
    return _result(_rounding_divide_by_pot(_int32("x", x), _shift("exponent", exponent, 0, 31)),
                   scalar)


def add_zero_point(x: Any, zero_point: Any) -> Any:
    """Stage 5: ``x + zero_point`` in int32, two's-complement wraparound.

    Args:
        x: int32 values.
        zero_point: output zero point, int in [-2^15, 2^15) (int8 outputs use [-128, 127]).
    """
    scalar = _is_scalar(x, zero_point)
    return _result(_add_zero_point(_int32("x", x), _zero_point(zero_point)), scalar)


def clamp(x: Any, act_min: Any, act_max: Any) -> Any:
    """Stage 6: clamp to ``[act_min, act_max]`` (the fused activation and output range).

    Args:
        x: int32 values.
        act_min, act_max: ints with ``act_min <= act_max`` (broadcast against ``x``).
    """
    scalar = _is_scalar(x, act_min, act_max)
    lo, hi = _bounds(act_min, act_max)
    return _result(_clamp(_int32("x", x), lo, hi), scalar)


# The stages on validated int64 arrays holding int32 values (no checks: the public
# functions above and `requantize` validate once, then run these).

def _add_bias(acc: np.ndarray, bias: np.ndarray) -> np.ndarray:
    return wrap_int32(acc + bias)


def _left_shift(x: np.ndarray, shift: np.ndarray) -> np.ndarray:
    return wrap_int32(x << np.maximum(shift, 0))


def _product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a * b`` of int32 values (int64 arrays) as the RTL forms it (requant_lane stages 3, 3b).

    ``a = ah * 2^16 + al``, ``b = bh * 2^16 + bl`` (``ah``, ``bh`` signed, ``al``, ``bl`` in
    [0, 2^16)); stage 3 registers the four 17 x 17-bit partial products, stage 3b their sum
    ``hh * 2^32 + (hl + lh) * 2^16 + ll``.  Exact: every partial sum stays below 2^63 in
    magnitude, and the result equals ``a * b`` (``|a * b| <= 2^62``).  int64 in, int64 out.
    """
    ah, al = a >> 16, a & 0xFFFF
    bh, bl = b >> 16, b & 0xFFFF
    hh, hl, lh, ll = ah * bh, ah * bl, al * bh, al * bl   # stage 3: four 34-bit products
    return (hh << 32) + ((hl + lh) << 16) + ll            # stage 3b: their sum


def _srdhm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = _product(a, b)                                   # |ab| <= 2^62: exact in int64
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    n = ab + nudge
    high = np.where(n < 0, -((-n) >> 31), n >> 31)        # C division: truncate toward 0
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    return np.where(overflow, INT32_MAX, high)


def _rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def _add_zero_point(x: np.ndarray, zero_point: np.ndarray) -> np.ndarray:
    return wrap_int32(x + zero_point)


def _clamp(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.minimum(np.maximum(x, lo), hi)


def _zero_point(value: Any) -> np.ndarray:
    return validate.int_array("zero_point", value, -(1 << 15), (1 << 15) - 1).astype(np.int64)


def _bounds(act_min: Any, act_max: Any) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = _int32("act_min", act_min), _int32("act_max", act_max)
    if np.any(lo > hi):
        raise ValueError(f"act_min/act_max: act_min {int(np.max(lo))} exceeds act_max "
                         f"{int(np.min(hi))}; need act_min <= act_max")
    return lo, hi


# ----------------------------------------------------------------------------------------
# Compositions
# ----------------------------------------------------------------------------------------

def single_rounding_multiply(x: Any, m0: Any, shift: Any) -> Any:
    """TFLite's ``MultiplyByQuantizedMultiplier`` under ``TFLITE_SINGLE_ROUNDING``.

    From ``kernels/internal/common.cc``::

        total_shift = 31 - shift                      # 1 .. 62
        round       = 1 << (total_shift - 1)
        result      = (x * (int64) m0 + round) >> total_shift   # arithmetic shift

    i.e. ``x * m0 / 2^(31 - shift)`` rounded once, to nearest with ties toward +infinity
    (-2.5 -> -2, 2.5 -> 3).  The 64-bit sum cannot overflow (``|x * m0| <= 2^62``,
    ``round <= 2^61``).  TFLite asserts (``DCHECK``) ``m0 >= 0``, ``-31 <= shift <= 30`` and a
    result inside int32; this function refuses ``m0 < 0`` and shifts outside [-31, 30]
    (``ValueError``) and, like the release build's ``static_cast<int32_t>``, keeps the
    low 32 bits of a result outside int32 (two's-complement wraparound, the contract's
    rule for every int32 overflow).

    Args:
        x: int32 values.
        m0: int32 multiplier in [0, 2^31), broadcast against ``x``.
        shift: int in [-31, 30] (positive = scale up), broadcast against ``x``.

    Returns:
        int32 values (Python int for scalar inputs).
    """
    scalar = _is_scalar(x, m0, shift)
    m = validate.int_array("m0", m0, 0, INT32_MAX).astype(np.int64, copy=False)
    return _result(_single_rounding_multiply(_int32("x", x), m, _shift("shift", shift)),
                   scalar)


def _single_rounding_multiply(x: np.ndarray, m0: np.ndarray, shift: np.ndarray) -> np.ndarray:
    total_shift = 31 - shift                               # 1 .. 62
    rnd = np.int64(1) << (total_shift - 1)
    return wrap_int32((_product(x, m0) + rnd) >> total_shift)   # |x*m0| + rnd < 2^63


def _rounding(rounding: str) -> str:
    return str(validate.one_of("rounding", rounding, ROUNDING_MODES))


def multiply_by_quantized_multiplier(x: Any, m0: Any, shift: Any,
                                     rounding: str = "double") -> Any:
    """TFLite's ``MultiplyByQuantizedMultiplier``: ``x * m0 * 2^(shift-31)``, rounded.

    ``rounding="double"`` (gemmlowp): ``left_shift`` ->
    ``saturating_rounding_doubling_high_mul`` -> ``rounding_divide_by_pot(max(-shift, 0))``.
    ``rounding="single"`` (``TFLITE_SINGLE_ROUNDING``): :func:`single_rounding_multiply`.

    Args:
        x: int32 values.
        m0: int32 multiplier (normally in [2^30, 2^31) or 0; single rounding needs
            ``m0 >= 0``), broadcast against ``x``.
        shift: int in [-31, 30], broadcast against ``x``.
        rounding: ``"double"`` or ``"single"``.
    """
    scalar = _is_scalar(x, m0, shift)
    rounding = _rounding(rounding)
    s = _shift("shift", shift)
    lo = 0 if rounding == "single" else INT32_MIN
    m = validate.int_array("m0", m0, lo, INT32_MAX).astype(np.int64, copy=False)
    return _result(_multiply_by_quantized_multiplier(_int32("x", x), m, s, rounding), scalar)


def _multiply_by_quantized_multiplier(x: np.ndarray, m0: np.ndarray, shift: np.ndarray,
                                      rounding: str = "double") -> np.ndarray:
    if rounding == "single":
        return _single_rounding_multiply(x, m0, shift)
    y = _left_shift(x, shift)
    y = _srdhm(y, m0)
    return _rounding_divide_by_pot(y, np.maximum(-shift, 0))


def requantize(acc: Any, bias: Any, m0: Any, shift: Any, out_zero_point: Any,
               act_min: Any, act_max: Any, rounding: str = "double") -> Any:
    """int32 accumulators -> quantized outputs: the function the RTL pipeline implements.

    ``clamp(add_zero_point(multiply_by_quantized_multiplier(add_bias(acc, bias), m0,
    shift, rounding), out_zero_point), act_min, act_max)``.

    Args:
        acc: int32 accumulators, shape ``[..., C]`` (channel last) or any shape that the
            parameters broadcast against.
        bias, m0, shift: per-output-channel int32 parameters, shape ``[C]`` or scalars.
        out_zero_point, act_min, act_max: output zero point and clamp bounds (scalars or
            per-channel ``[C]``).
        rounding: ``"double"`` (gemmlowp, default) or ``"single"``
            (``TFLITE_SINGLE_ROUNDING``; needs ``m0 >= 0``).

    Returns:
        int32 array (values in ``[act_min, act_max]``; cast to int8 by the caller), or a
        Python int for scalar inputs.
    """
    scalar = _is_scalar(acc, bias, m0, shift, out_zero_point, act_min, act_max)
    rounding = _rounding(rounding)
    acc64, bias64 = _int32("acc", acc), _int32("bias", bias)
    m064 = validate.int_array("m0", m0, 0 if rounding == "single" else INT32_MIN,
                              INT32_MAX).astype(np.int64, copy=False)
    s = _shift("shift", shift)
    zp = _zero_point(out_zero_point)
    lo, hi = _bounds(act_min, act_max)
    try:
        np.broadcast_shapes(acc64.shape, bias64.shape, m064.shape, s.shape, zp.shape,
                            lo.shape, hi.shape)
    except ValueError:
        raise ValueError(f"acc, bias, m0, shift, out_zero_point, act_min, act_max: shapes "
                         f"{acc64.shape}, {bias64.shape}, {m064.shape}, {s.shape}, "
                         f"{zp.shape}, {lo.shape}, {hi.shape} do not broadcast") from None
    x = _add_bias(acc64, bias64)
    x = _multiply_by_quantized_multiplier(x, m064, s, rounding)
    x = _add_zero_point(x, zp)
    return _result(_clamp(x, lo, hi), scalar)
