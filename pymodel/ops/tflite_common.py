"""Prepare-time helpers shared by the TFLite int8 ops (``pymodel.ops.elementwise``,
``activations``, ``reduce``, ``shape``, ``quantize``).

A TFLite kernel computes its integer parameters in ``Prepare`` from the tensors'
**float32** scales (``TfLiteQuantizationParams.scale`` is a ``float``), sometimes in
float32 arithmetic and sometimes after widening to double; each ``prepare_<op>``
reproduces the kernel's expression with these helpers, and says which it is.

* :func:`scale_f32` -- a scale as the model stores it (``np.float32``);
* :func:`activation_range` -- ``CalculateActivationRangeQuantized`` (``kernel_util.cc``):
  ``zp + (int) TfLiteRound(f / scale)`` with the division in float32;
* :func:`multiplier` -- ``QuantizeMultiplier`` of a double, with the range checks of
  ``QuantizeMultiplierSmallerThanOneExp`` / ``...GreaterThanOne`` (TFLite aborts there;
  here a ``ValueError`` names the parameter).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pymodel import validate
from pymodel.arithmetic.fixedpoint import ROUNDING_MODES, quantize_multiplier
from pymodel.arithmetic.rounding import round_half_away

INT8_MIN, INT8_MAX = -128, 127
FUSED_ACTIVATIONS = ("none", "relu", "relu6", "relu_n1_to_1")

__all__ = ["INT8_MIN", "INT8_MAX", "FUSED_ACTIVATIONS", "scale_f32", "zero_point",
           "activation_range", "multiplier", "check_rounding", "int8_input", "check_act",
           "prepare_conv_requant"]


def scale_f32(name: str, value: Any) -> np.float32:
    """A quantization scale as a TFLite model stores it: a finite positive float32.

    Args:
        name: argument name for error messages.
        value: Python float, ``np.float32`` or ``np.float64`` (rounded to float32, as
            writing it into the flatbuffer would).

    Returns:
        ``np.float32``.
    """
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: {value!r} is not a number; need a positive float32 "
                         "scale") from None
    s = np.float32(f)
    if not np.isfinite(s) or s <= 0:
        raise ValueError(f"{name}: {f!r} is not a finite positive float32 scale")
    return s


def zero_point(name: str, value: Any) -> int:
    """An int8 zero point (TFLite's int8 kernels require [-128, 127])."""
    return validate.int_scalar(name, value, INT8_MIN, INT8_MAX)


def check_rounding(rounding: str) -> str:
    """``"double"`` (gemmlowp, TFLite's default build) or ``"single"``."""
    return str(validate.one_of("rounding", rounding, ROUNDING_MODES))


def activation_range(activation: str, out_scale: Any, out_zero_point: int) -> tuple[int, int]:
    """TFLite's ``CalculateActivationRangeQuantized`` for an int8 output.

    ``Quantize(f) = zp + (int32) TfLiteRound(f / scale)`` with ``f / scale`` a **float32**
    division (``kernel_util.cc``); RELU: ``[max(-128, Q(0)), 127]``, RELU6:
    ``[max(-128, Q(0)), min(127, Q(6))]``, RELU_N1_TO_1: ``[max(-128, Q(-1)),
    min(127, Q(1))]``, none: ``[-128, 127]``.

    Args:
        activation: one of ``FUSED_ACTIVATIONS``.
        out_scale: output scale (float32).
        out_zero_point: output zero point.

    Returns:
        ``(act_min, act_max)`` ints.
    """
    validate.one_of("activation", activation, FUSED_ACTIVATIONS)
    s = scale_f32("out_scale", out_scale)
    zp = zero_point("out_zero_point", out_zero_point)

    def q(f: float) -> int:
        return zp + int(round_half_away(np.float32(f) / s))   # float32 division

    if activation == "none":
        return INT8_MIN, INT8_MAX
    if activation == "relu":
        return max(INT8_MIN, q(0.0)), INT8_MAX
    if activation == "relu6":
        return max(INT8_MIN, q(0.0)), min(INT8_MAX, q(6.0))
    return max(INT8_MIN, q(-1.0)), min(INT8_MAX, q(1.0))


def multiplier(name: str, real: float, rounding: str = "double",
               kind: str = "any") -> tuple[int, int]:
    """``QuantizeMultiplier(double)`` -> ``(m0, shift)``, with TFLite's range checks.

    Args:
        name: the parameter's name (for errors).
        real: the double-precision multiplier exactly as the kernel computed it.
        rounding: ``"double"`` or ``"single"`` (single saturates ``shift > 30``).
        kind: ``"any"``; ``"smaller_than_one"`` (``QuantizeMultiplierSmallerThanOneExp``:
            needs ``0 < real < 1``); ``"greater_than_one"`` (needs ``real > 1``).

    Returns:
        ``(m0, shift)`` Python ints.
    """
    r = float(real)
    if kind == "smaller_than_one" and not 0.0 < r < 1.0:
        raise ValueError(f"{name}: real multiplier {r!r} is outside (0, 1), which TFLite's "
                         "QuantizeMultiplierSmallerThanOneExp requires (the kernel's "
                         "Prepare fails for these scales)")
    if kind == "greater_than_one" and not r > 1.0:
        raise ValueError(f"{name}: real multiplier {r!r} is not > 1, which TFLite's "
                         "QuantizeMultiplierGreaterThanOne requires")
    m0, shift = quantize_multiplier(r, check_rounding(rounding))
    return int(m0), int(shift)


def int8_input(name: str, value: Any) -> np.ndarray:
    """An int8 tensor (any shape, non-empty)."""
    arr = validate.int_array(name, value, INT8_MIN, INT8_MAX, dtypes=(np.int8,))
    validate.nonempty(name, arr)
    return arr


def check_act(act_min: Any, act_max: Any) -> tuple[int, int]:
    """int8 clamp bounds with ``act_min <= act_max``."""
    lo = validate.int_scalar("act_min", act_min, INT8_MIN, INT8_MAX)
    hi = validate.int_scalar("act_max", act_max, INT8_MIN, INT8_MAX)
    if lo > hi:
        raise ValueError(f"act_min/act_max: act_min {lo} exceeds act_max {hi}")
    return lo, hi


def prepare_conv_requant(in_scale: Any, weight_scales: Any, out_scale: Any,
                         out_zero_point: int, bias: Any, channels: int,
                         activation: str = "none", rounding: str = "double",
                         op: str = "conv") -> Any:
    """``RequantParams`` of a TFLite CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED from
    the model's float32 scales and int32 bias (``PopulateConvolutionQuantizationParams``).

    Per output channel ``c``: ``QuantizeMultiplier(double(s_in) * double(s_w[c]) /
    double(s_out))`` (left to right, in double) -- CONV_2D and DEPTHWISE_CONV_2D always,
    FULLY_CONNECTED with per-channel weights.  FULLY_CONNECTED with one weight scale uses
    ``GetQuantizedConvolutionMultipler``: ``double(f32(s_in * s_w)) / double(s_out)`` (the
    product in float32).  The bias is kept as given (int32, no float round trip); the clamp
    from :func:`activation_range` (float32 division).

    Args:
        in_scale, out_scale: per-tensor float32 scales.
        weight_scales: float32 scale per output channel (``[C]``) or one per tensor.
        out_zero_point: int8 output zero point.
        bias: int32 ``[C]`` or ``None`` (zeros).
        channels: ``C``.
        activation: the op's fused activation.
        rounding: ``"double"`` or ``"single"``.
        op: ``"conv"`` (CONV_2D, DEPTHWISE_CONV_2D) or ``"fully_connected"``.

    Returns:
        :class:`pymodel.ops.layers.RequantParams`.
    """
    from pymodel.ops.layers import RequantParams      # layers imports nothing from here

    s_in, s_out = scale_f32("in_scale", in_scale), scale_f32("out_scale", out_scale)
    w = np.asarray(weight_scales, np.float64).astype(np.float32).reshape(-1)
    if w.size not in (1, channels) or not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise ValueError(f"weight_scales: need {channels} (or 1) finite positive float32 "
                         f"scales; got shape {np.shape(weight_scales)}")
    validate.one_of("op", op, ("conv", "fully_connected"))
    if op == "fully_connected" and w.size == 1:
        real = [float(np.float32(s_in * w[0])) / float(s_out)] * channels
    else:
        real = [float(s_in) * float(ws) / float(s_out) for ws in np.broadcast_to(w, (channels,))]
    pairs = [multiplier(f"channel {c} multiplier", r, rounding) for c, r in enumerate(real)]
    b = np.zeros(channels, np.int64) if bias is None else \
        validate.int_array("bias", bias, -(1 << 31), (1 << 31) - 1).reshape(-1)
    if b.size != channels:
        raise ValueError(f"bias: {b.size} values; need {channels} (one per output channel)")
    lo, hi = activation_range(activation, s_out, out_zero_point)
    return RequantParams(bias=b, m0=[p[0] for p in pairs], shift=[p[1] for p in pairs],
                         out_zero_point=zero_point("out_zero_point", out_zero_point),
                         act_min=lo, act_max=hi, rounding=check_rounding(rounding))
