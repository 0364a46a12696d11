"""TFLite QUANTIZE (float32 -> int8, and int8 -> int8 rescale) and DEQUANTIZE
(int8 -> float32), bit-exact with LiteRT's reference kernels.

Sources (LiteRT ``tflite/kernels``): ``quantize.cc`` (Prepare / Eval),
``internal/reference/quantize.h`` (``AffineQuantize``),
``internal/reference/requantize.h`` (``Requantize``),
``internal/reference/integer_ops/dequantize.h`` (``Dequantize``).

* float32 -> int8 (``AffineQuantize``): ``q = clamp((int32) TfLiteRound(x / scale) + zp,
  -128, 127)`` with ``x / scale`` a **float32** division and ``TfLiteRound`` =
  ``std::round`` (half away from zero).  This is a floating-point kernel by nature.
* int8 -> int8 (``Requantize``): ``QuantizeMultiplier(double(s_in) / double(s_out))``,
  ``y = clamp(MultiplyByQuantizedMultiplier(x - zp_in, m, shift) + zp_out, -128, 127)``
  (the integer fixed-point rescale, either rounding build).
* int8 -> float32 (``Dequantize``): ``(float)(double(scale) * (x - zp))``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pymodel import validate
from pymodel.arithmetic.fixedpoint import INT32_MIN, multiply_by_quantized_multiplier, wrap_int32
from pymodel.arithmetic.rounding import round_half_away
from pymodel.ops.tflite_common import (INT8_MAX, INT8_MIN, check_rounding, int8_input,
                                       multiplier, scale_f32, zero_point)

__all__ = ["QuantizeParams", "RequantizeParams", "prepare_quantize", "prepare_requantize",
           "quantize", "requantize", "dequantize"]


@dataclass(frozen=True)
class QuantizeParams:
    """float32 -> int8 (and int8 -> float32) parameters.

    Attributes:
        scale: the tensor's float32 scale (``np.float32``).
        zero_point: its int8 zero point.
    """

    scale: np.float32
    zero_point: int


@dataclass(frozen=True)
class RequantizeParams:
    """int8 -> int8 QUANTIZE parameters.

    Attributes:
        in_zero_point, out_zero_point: int8 zero points.
        multiplier, shift: ``QuantizeMultiplier(double(s_in) / double(s_out))``.
        rounding: ``"double"`` or ``"single"``.
    """

    in_zero_point: int
    out_zero_point: int
    multiplier: int
    shift: int
    rounding: str = "double"


def prepare_quantize(scale: Any, zero_point_: int) -> QuantizeParams:
    """Parameters of a float32 -> int8 QUANTIZE (the output's) or of a DEQUANTIZE (the
    input's): the float32 scale and the zero point."""
    return QuantizeParams(scale=scale_f32("scale", scale),
                          zero_point=zero_point("zero_point", zero_point_))


def prepare_requantize(in_scale: Any, in_zero_point: int, out_scale: Any, out_zero_point: int,
                       rounding: str = "double") -> RequantizeParams:
    """int8 -> int8 QUANTIZE's Prepare: ``effective_output_scale = double(s_in) /
    double(s_out)`` -> ``QuantizeMultiplier``."""
    s_in, s_out = scale_f32("in_scale", in_scale), scale_f32("out_scale", out_scale)
    rounding = check_rounding(rounding)
    m, sh = multiplier("requantize multiplier", float(s_in) / float(s_out), rounding)
    return RequantizeParams(in_zero_point=zero_point("in_zero_point", in_zero_point),
                            out_zero_point=zero_point("out_zero_point", out_zero_point),
                            multiplier=m, shift=sh, rounding=rounding)


def quantize(x: Any, params: QuantizeParams) -> np.ndarray:
    """float32 -> int8 QUANTIZE (``reference_ops::AffineQuantize``).

    ``q = clamp((int32) TfLiteRound(x / scale) + zp, -128, 127)``: the division in
    float32, rounding half away from zero.  A quotient outside int32 (or NaN) converts
    to ``INT32_MIN`` -- what ``static_cast<int32_t>`` gives on x86-64 (``cvttss2si``),
    so such values become -128 whatever their sign; then ``+ zp`` wraps as int32.

    Args:
        x: float array (cast to float32 first, as the model's float32 input tensor).
        params: :class:`QuantizeParams` of the output.

    Returns:
        int8 array of ``x``'s shape.
    """
    xf = np.asarray(validate.float_array("x", x), np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        r = round_half_away(np.float32(xf / params.scale))           # float32 quotient
    ok = np.isfinite(r) & (r >= -2.0**31) & (r < 2.0**31)
    q = np.where(ok, np.nan_to_num(r), INT32_MIN).astype(np.int64)
    q = wrap_int32(q + params.zero_point)
    return np.clip(q, INT8_MIN, INT8_MAX).astype(np.int8)


def requantize(x: Any, params: RequantizeParams) -> np.ndarray:
    """int8 -> int8 QUANTIZE (``reference_ops::Requantize``)::

        y = clamp(MultiplyByQuantizedMultiplier(x - zp_in, m, shift) + zp_out, -128, 127)

    Args:
        x: int8 array.
        params: :class:`RequantizeParams`.
    """
    if not isinstance(params, RequantizeParams):
        raise ValueError(f"params: expected RequantizeParams; got {type(params).__name__}")
    x = int8_input("x", x).astype(np.int64)
    y = multiply_by_quantized_multiplier(x - params.in_zero_point, params.multiplier,
                                         params.shift, check_rounding(params.rounding))
    return np.clip(np.asarray(y, np.int64) + params.out_zero_point, INT8_MIN,
                   INT8_MAX).astype(np.int8)


def dequantize(x: Any, params: QuantizeParams) -> np.ndarray:
    """int8 -> float32 DEQUANTIZE: ``(float)(double(scale) * (x - zp))``.

    Args:
        x: int8 array.
        params: :class:`QuantizeParams` of the input.

    Returns:
        float32 array of ``x``'s shape.
    """
    x = int8_input("x", x).astype(np.int64)
    return (np.float64(params.scale) * (x - params.zero_point)).astype(np.float32)
