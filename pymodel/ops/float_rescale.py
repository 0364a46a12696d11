"""LiteRT reference kernels that rescale in floating point instead of fixed point.

LiteRT's *reference* int8 FULLY_CONNECTED (``fully_connected.cc`` ``kReference`` ->
``reference_integer_ops::FullyConnected`` / ``FullyConnectedPerChannel``, the overloads
taking float scales) rescales each accumulator with a double multiplication and
``std::round`` instead of ``MultiplyByQuantizedMultiplier``::

    eff[c] = double(s_in) * double(s_w[c]) / double(s_out)
    y      = clamp((int32) round(double(acc) * eff[c]) + zp_out, act_min, act_max)

(``round`` = half away from zero.)  qmac's hardware and :func:`pymodel.ops.layers.fully_connected`
use the integer fixed-point rescale, which LiteRT's optimized FULLY_CONNECTED kernel and
TFLite Micro use; the two differ by one where ``acc * eff`` lies near a rounding tie
(:func:`pymodel.arithmetic.fixedpoint.quantize_multiplier` keeps 31 bits of ``eff``, and
double rounding rounds twice).  This module reproduces the float kernel so a conformance
test can compare with LiteRT's reference interpreter too and explain every difference.
Every other int8 op of :mod:`pymodel.ops` matches LiteRT's reference kernel with the
integer path (LOGISTIC and float -> int8 QUANTIZE are floating-point by nature, see their
modules).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pymodel import validate
from pymodel.arithmetic.fixedpoint import wrap_int32
from pymodel.arithmetic.gemm import matmul_int32
from pymodel.arithmetic.rounding import round_half_away
from pymodel.ops.tflite_common import INT8_MAX, INT8_MIN, check_act, int8_input, scale_f32, zero_point

__all__ = ["fully_connected_float_rescale"]


def fully_connected_float_rescale(x: Any, w: Any, in_zero_point: int, bias: Any,
                                  in_scale: Any, weight_scales: Any, out_scale: Any,
                                  out_zero_point: int, act_min: int = INT8_MIN,
                                  act_max: int = INT8_MAX) -> np.ndarray:
    """int8 FULLY_CONNECTED as LiteRT's reference kernel computes it (float rescale).

    Args:
        x: int8 ``[N, K]``.
        w: int8 ``[C, K]`` (weight zero point 0).
        in_zero_point: input zero point.
        bias: int32 ``[C]`` or ``None``.
        in_scale, out_scale: float32 scales.
        weight_scales: float32 ``[C]`` (per channel) or one scale.
        out_zero_point: output zero point.
        act_min, act_max: int8 clamp (fused activation).

    Returns:
        int8 ``[N, C]``.
    """
    x = int8_input("x", x)
    w = int8_input("w", w)
    validate.ndim("x", x, 2, "[N, K]")
    validate.ndim("w", w, 2, "[C, K]")
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"x, w: x has K={x.shape[1]} but w has K={w.shape[1]}")
    c = w.shape[0]
    zp_in = zero_point("in_zero_point", in_zero_point)
    zp_out = zero_point("out_zero_point", out_zero_point)
    lo, hi = check_act(act_min, act_max)
    s_in, s_out = scale_f32("in_scale", in_scale), scale_f32("out_scale", out_scale)
    ws = np.broadcast_to(np.asarray(weight_scales, np.float64).astype(np.float32).reshape(-1),
                         (c,))
    b = np.zeros(c, np.int64) if bias is None else \
        validate.int_array("bias", bias, -(1 << 31), (1 << 31) - 1).reshape(c)
    # acc = sum w * (x - zp_in) + b in int32 (wrapping), as the kernel's loop
    acc = matmul_int32(x.astype(np.int32) - zp_in, w.T.astype(np.int32)).astype(np.int64)
    acc = wrap_int32(acc + b)
    eff = float(s_in) * ws.astype(np.float64) / float(s_out)          # double, left to right
    scaled = round_half_away(acc.astype(np.float64) * eff)
    y = scaled.astype(np.int64) + zp_out
    return np.clip(y, lo, hi).astype(np.int8)
