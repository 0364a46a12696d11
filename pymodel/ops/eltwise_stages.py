"""The element-wise unit's stages: TFLite int8 ADD / SUB / MUL, one function per RTL stage.

``rtl/eltwise_lane.v`` (stages 1-7) and the requantize pipeline (output rescale, zero
point, clamp) compute, in this order (house rule 2; ``docs/arithmetic.md`` section 10)::

    v1, v2 = eltwise_offset(x1, zp1), eltwise_offset(x2, zp2)              stage 1
    ADD / SUB:
      u_i  = eltwise_left_shift(v_i)                     v * 2^20           stage 2
      s_i  = eltwise_rescale(u_i, m_i, shift_i)                             stages 3-6
             (= multiply_by_quantized_multiplier for shift <= 0: the SRDHM product
             u * m0 formed as (v * m0) * 2^20, no saturation; rounding_divide_by_pot)
      raw  = eltwise_combine(s1, s2, op)                 s1 + s2 | s1 - s2  stage 7
    MUL:
      raw  = eltwise_multiply(v1, v2)                    v1 * v2            stage 2 (-> 7)
    y = requantize(raw, 0, m_out, shift_out, zp_out, act_min, act_max)    pipeline 0-8

:func:`eltwise_engine` composes them; ``tests/test_eltwise_stages.py`` proves it equal to
``pymodel.ops.elementwise`` ``add`` / ``sub`` / ``mul`` (TFLite's reference kernels,
gemmlowp double rounding -- the only rounding the unit implements).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pymodel.arithmetic.fixedpoint import requantize, rounding_divide_by_pot
from pymodel.ops.elementwise import ADD_LEFT_SHIFT, AddParams, MulParams

OPS = ("add", "sub", "mul")

__all__ = ["OPS", "eltwise_offset", "eltwise_left_shift", "eltwise_rescale", "eltwise_multiply",
           "eltwise_combine", "eltwise_engine"]


def eltwise_offset(x: Any, zero_point: int) -> np.ndarray:
    """Stage 1: ``x - zp`` (int8 - int8, 9 bits), int64 array."""
    return np.asarray(x, np.int64) - int(zero_point)


def eltwise_left_shift(v: Any, left_shift: int = ADD_LEFT_SHIFT) -> np.ndarray:
    """Stage 2 (ADD / SUB): ``v * 2^left_shift`` (|v| <= 255: 29 bits for 20), int64."""
    return np.asarray(v, np.int64) << int(left_shift)


def eltwise_rescale(u: Any, m0: Any, shift: int) -> np.ndarray:
    """Stages 3-6 (ADD / SUB): ``MultiplyByQuantizedMultiplier(u, m0, shift)``, ``shift <= 0``,
    as ``rtl/eltwise_rescale.v`` computes it (docs/arithmetic.md section 10).

    ``u = v * 2^20`` with ``|v| <= 255`` (:func:`eltwise_left_shift`), so SRDHM's product
    ``u * m0`` is formed as ``(v * m0) * 2^20`` (stage 3: a 9 x 32-bit product, < 2^40), then
    the nudge (stage 4) and the division by 2^31 truncating toward zero (stage 5) -- without
    SRDHM's saturation, which needs ``u = INT32_MIN`` -- and ``rounding_divide_by_pot`` by
    ``-shift`` (stage 6).

    Args:
        u: int64 array, ``v * 2^20`` with ``|v| <= 255``.
        m0: int32 multiplier (any value).
        shift: -31..0.

    Returns:
        int64 array, |result| < 2^28.
    """
    u = np.asarray(u, np.int64)
    v = u >> ADD_LEFT_SHIFT
    if np.any(v << ADD_LEFT_SHIFT != u) or np.any(np.abs(v) > 255):
        raise ValueError("u: not v * 2^20 with |v| <= 255")
    if not -31 <= int(shift) <= 0:
        raise ValueError(f"shift: {shift} is outside -31..0")
    prod = (v * np.int64(m0)) << ADD_LEFT_SHIFT                        # stage 3, |prod| < 2^59
    n = prod + np.where(prod >= 0, 1 << 30, 1 - (1 << 30))             # stage 4: + nudge
    high = np.where(n < 0, -((-n) >> 31), n >> 31)                      # stage 5: C division
    return np.asarray(rounding_divide_by_pot(high, -int(shift)), np.int64)   # stage 6


def eltwise_multiply(v1: Any, v2: Any) -> np.ndarray:
    """Stage 2 (MUL): ``v1 * v2`` (|.| <= 256 * 256, 18 bits signed), int64."""
    return np.asarray(v1, np.int64) * np.asarray(v2, np.int64)


def eltwise_combine(s1: Any, s2: Any, op: str) -> np.ndarray:
    """Stage 7 (ADD / SUB): ``s1 + s2`` or ``s1 - s2`` (|s_i| < 2^28: no overflow)."""
    if op not in ("add", "sub"):
        raise ValueError(f"op: {op!r} is not 'add' or 'sub'")
    s1, s2 = np.asarray(s1, np.int64), np.asarray(s2, np.int64)
    return s1 + s2 if op == "add" else s1 - s2


def eltwise_engine(x1: Any, x2: Any, op: str, params: AddParams | MulParams) -> np.ndarray:
    """ADD / SUB / MUL as the element-wise unit computes it, stage by stage.

    Args:
        x1, x2: int8 arrays of the same shape (the host broadcasts before streaming).
        op: ``"add"``, ``"sub"`` or ``"mul"``.
        params: :class:`AddParams` (add, sub) or :class:`MulParams` (mul), double rounding.

    Returns:
        int8 array of the operands' shape.
    """
    if op not in OPS:
        raise ValueError(f"op: {op!r} is not one of {OPS}")
    if params.rounding != "double":
        raise ValueError(f"params.rounding: {params.rounding!r}; the element-wise unit "
                         "implements 'double' (gemmlowp) rounding only")
    x1, x2 = np.asarray(x1), np.asarray(x2)
    if x1.shape != x2.shape:
        raise ValueError(f"x1, x2: shapes {x1.shape} and {x2.shape} differ (broadcast first)")
    v1 = eltwise_offset(x1, params.in1_zero_point)
    v2 = eltwise_offset(x2, params.in2_zero_point)
    if op == "mul":
        raw = eltwise_multiply(v1, v2)
    else:
        assert isinstance(params, AddParams)
        s1 = eltwise_rescale(eltwise_left_shift(v1, params.left_shift),
                             params.in1_multiplier, params.in1_shift)
        s2 = eltwise_rescale(eltwise_left_shift(v2, params.left_shift),
                             params.in2_multiplier, params.in2_shift)
        raw = eltwise_combine(s1, s2, op)
    y = requantize(raw.astype(np.int32), 0, params.out_multiplier, params.out_shift,
                   params.out_zero_point, params.act_min, params.act_max)
    return np.asarray(y).astype(np.int8)
