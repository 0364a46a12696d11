"""TFLite int8 activation ops -- RELU / RELU6 / RELU_N1_TO_1 / RELU_0_TO_1, LEAKY_RELU,
LOGISTIC, HARD_SWISH, SOFTMAX -- bit-exact with LiteRT's reference kernels.

Sources (LiteRT ``tflite/kernels``): ``activations.cc`` (Prepare / Eval of each op),
``internal/optimized/optimized_ops.h`` (``ReluX`` with requantization, which the RELU
kernels call for every kernel type), ``internal/reference/leaky_relu.h``
(``QuantizeLeakyRelu``), ``internal/common.h`` (``LUTPopulateInt8``),
``internal/reference/hard_swish.h``, ``internal/reference/softmax.h``,
``internal/quantization_util.cc`` (``PreprocessSoftmaxScaling``,
``CalculateInputRadius``), gemmlowp ``fixedpoint.h`` (:mod:`pymodel.arithmetic.gemmlowp`).

Which arithmetic each kernel uses:

* RELU family, LEAKY_RELU: the integer fixed-point rescale
  (``MultiplyByQuantizedMultiplier``; multipliers from **float32** scale ratios).
* SOFTMAX (reference kernel): gemmlowp fixed point throughout (``exp_on_negative_values``,
  ``one_over_one_plus_x_for_x_in_0_1``).  (LiteRT's optimized kernel uses a float
  lookup table instead; not modelled here.)
* HARD_SWISH: int16 fixed point (``SaturatingRoundingDoublingHighMul<int16_t>``,
  ``RoundingDivideByPOT``), parameters from float32 scale ratios.
* LOGISTIC int8: **floating point** -- the reference and the generic-optimized kernels
  both look the output up in a 256-entry table filled at Prepare with float32 math,
  ``1.0f / (1.0f + expf(-x))`` (``LUTPopulateInt8``).  The table here is built with the
  same float32 operations and the C library's ``expf`` (through ctypes, as LiteRT's
  ``std::exp(float)`` calls it), so it is bit-exact on the same libm.  (The
  ``kFixedPointOptimized`` kernel, gemmlowp's ``logistic`` on 16 bits, is a different
  integer path LiteRT does not register by default.)
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass
from typing import Any

import numpy as np

from pymodel import validate
from pymodel.arithmetic import gemmlowp as g
from pymodel.arithmetic.fixedpoint import multiply_by_quantized_multiplier, wrap_int32
from pymodel.arithmetic.rounding import round_half_away
from pymodel.ops.tflite_common import (INT8_MAX, INT8_MIN, check_rounding, int8_input,
                                       multiplier, scale_f32, zero_point)

RELU_KINDS = {"relu": (0.0, None), "relu6": (0.0, 6.0), "relu_n1_to_1": (-1.0, 1.0),
              "relu_0_to_1": (0.0, 1.0)}
SOFTMAX_INTEGER_BITS = 5        # kScaledDiffIntegerBits
SOFTMAX_ACCUM_BITS = 12         # kAccumulationIntegerBits

__all__ = ["RELU_KINDS", "ReluParams", "LeakyReluParams", "LogisticParams",
           "HardSwishParams", "SoftmaxParams", "prepare_relu", "prepare_leaky_relu",
           "prepare_logistic", "prepare_hard_swish", "prepare_softmax", "relu",
           "leaky_relu", "logistic", "hard_swish", "softmax", "expf"]


# ----------------------------------------------------------------------------------------
# RELU family
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReluParams:
    """RELU / RELU6 / RELU_N1_TO_1 / RELU_0_TO_1 (TFLite ``ReluParams``).

    Attributes:
        in_zero_point, out_zero_point: int8 zero points.
        multiplier, shift: ``QuantizeMultiplier(s_in / s_out)`` (float32 quotient).
        act_min, act_max: int8 clamp.
        rounding: ``"double"`` or ``"single"``.
    """

    in_zero_point: int
    out_zero_point: int
    multiplier: int
    shift: int
    act_min: int
    act_max: int
    rounding: str = "double"


def prepare_relu(kind: str, in_scale: Any, in_zero_point: int, out_scale: Any,
                 out_zero_point: int, rounding: str = "double") -> ReluParams:
    """Prepare of a quantized RELU-type kernel (``ReluPrepare`` + ``QuantizedReluX``).

    ``real = s_in / s_out`` in float32 (``input->params.scale / output->params.scale``),
    ``QuantizeMultiplier``; bounds ``act_min = max(-128, zp_out + (int) roundf(lo / s_out))``
    and, unless unbounded (RELU), ``act_max = min(127, zp_out + (int) roundf(hi / s_out))``
    with float32 divisions; ``(lo, hi)`` = (0, inf) RELU, (0, 6) RELU6, (-1, 1)
    RELU_N1_TO_1, (0, 1) RELU_0_TO_1.

    Args:
        kind: ``"relu"``, ``"relu6"``, ``"relu_n1_to_1"`` or ``"relu_0_to_1"``.
        in_scale, out_scale: float32 scales (may differ: the kernel rescales).
        in_zero_point, out_zero_point: int8 zero points.
        rounding: ``"double"`` or ``"single"``.
    """
    validate.one_of("kind", kind, tuple(RELU_KINDS))
    s_in, s_out = scale_f32("in_scale", in_scale), scale_f32("out_scale", out_scale)
    zo = zero_point("out_zero_point", out_zero_point)
    rounding = check_rounding(rounding)
    m, sh = multiplier("relu multiplier", float(np.float32(s_in / s_out)), rounding)
    lo_f, hi_f = RELU_KINDS[kind]
    lo = max(INT8_MIN, zo + int(round_half_away(np.float32(lo_f) / s_out)))
    hi = INT8_MAX if hi_f is None else min(INT8_MAX,
                                           zo + int(round_half_away(np.float32(hi_f) / s_out)))
    return ReluParams(in_zero_point=zero_point("in_zero_point", in_zero_point),
                      out_zero_point=zo, multiplier=m, shift=sh, act_min=lo, act_max=hi,
                      rounding=rounding)


def relu(x: Any, params: ReluParams) -> np.ndarray:
    """Quantized RELU-type op (``ReluX``)::

        y = clamp(zp_out + MultiplyByQuantizedMultiplier(x - zp_in, m, shift),
                  act_min, act_max)

    Args:
        x: int8 array.  params: :class:`ReluParams`.
    """
    if not isinstance(params, ReluParams):
        raise ValueError(f"params: expected ReluParams; got {type(params).__name__}")
    x = int8_input("x", x).astype(np.int64)
    y = multiply_by_quantized_multiplier(x - params.in_zero_point, params.multiplier,
                                         params.shift, check_rounding(params.rounding))
    y = np.asarray(y, np.int64) + params.out_zero_point
    return np.minimum(np.maximum(y, params.act_min), params.act_max).astype(np.int8)


# ----------------------------------------------------------------------------------------
# LEAKY_RELU
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LeakyReluParams:
    """LEAKY_RELU (TFLite ``LeakyReluParams``).

    Attributes:
        in_zero_point, out_zero_point: int8 zero points.
        alpha_multiplier, alpha_shift: ``QuantizeMultiplier(s_in * alpha / s_out)``
            (float32 arithmetic); negative for a negative alpha.
        identity_multiplier, identity_shift: ``QuantizeMultiplier(s_in / s_out)``.
        rounding: ``"double"`` or ``"single"``.
    """

    in_zero_point: int
    out_zero_point: int
    alpha_multiplier: int
    alpha_shift: int
    identity_multiplier: int
    identity_shift: int
    rounding: str = "double"


def prepare_leaky_relu(alpha: Any, in_scale: Any, in_zero_point: int, out_scale: Any,
                       out_zero_point: int, rounding: str = "double") -> LeakyReluParams:
    """``LeakyReluPrepare``: ``alpha_multiplier = s_in * alpha / s_out`` and
    ``identity_multiplier = s_in / s_out``, both evaluated in float32 (``alpha`` is the
    op's float32 option), then ``QuantizeMultiplier``.  A negative alpha gives a negative
    multiplier (its magnitude is quantized; the kernel applies the sign after the
    rescale)."""
    a = np.float32(validate.float_array("alpha", alpha).item())
    s_in, s_out = scale_f32("in_scale", in_scale), scale_f32("out_scale", out_scale)
    rounding = check_rounding(rounding)
    real_alpha = float(np.float32(np.float32(s_in * a) / s_out))
    ma, sa = multiplier("alpha multiplier", abs(real_alpha), rounding)
    if real_alpha < 0:
        if ma == 1 << 30 and abs(real_alpha) != float(np.ldexp(0.5, sa)):
            # |alpha| rounded up to the next power of two: TFLite's negative branch does not
            # renormalise and would produce INT32_MIN (then overflow negating it)
            raise ValueError(f"alpha: {float(a)!r} gives a negative multiplier whose "
                             "fixed-point form overflows in TFLite's kernel")
        ma = -ma
    mi, si = multiplier("identity multiplier", float(np.float32(s_in / s_out)), rounding)
    return LeakyReluParams(in_zero_point=zero_point("in_zero_point", in_zero_point),
                           out_zero_point=zero_point("out_zero_point", out_zero_point),
                           alpha_multiplier=ma, alpha_shift=sa, identity_multiplier=mi,
                           identity_shift=si, rounding=rounding)


def leaky_relu(x: Any, params: LeakyReluParams) -> np.ndarray:
    """int8 LEAKY_RELU (``reference_ops::QuantizeLeakyRelu``)::

        v = x - zp_in
        y = zp_out + (v >= 0 ? MBQM(v, m_id, s_id)
                             : sign(m_a) * MBQM(v, |m_a|, s_a)),  clamped to int8

    Args:
        x: int8 array.  params: :class:`LeakyReluParams`.
    """
    if not isinstance(params, LeakyReluParams):
        raise ValueError(f"params: expected LeakyReluParams; got {type(params).__name__}")
    r = check_rounding(params.rounding)
    v = int8_input("x", x).astype(np.int64) - params.in_zero_point
    ident = np.asarray(multiply_by_quantized_multiplier(v, params.identity_multiplier,
                                                        params.identity_shift, r), np.int64)
    alpha = np.asarray(multiply_by_quantized_multiplier(v, abs(params.alpha_multiplier),
                                                        params.alpha_shift, r), np.int64)
    if params.alpha_multiplier < 0:
        alpha = -alpha
    y = params.out_zero_point + np.where(v >= 0, ident, alpha)
    return np.clip(y, INT8_MIN, INT8_MAX).astype(np.int8)


# ----------------------------------------------------------------------------------------
# LOGISTIC (float32 lookup table)
# ----------------------------------------------------------------------------------------

def _libm_expf() -> Any:
    name = ctypes.util.find_library("m")
    lib = ctypes.CDLL(name) if name else ctypes.CDLL(None)
    fn = lib.expf
    fn.restype = ctypes.c_float
    fn.argtypes = [ctypes.c_float]
    return fn


_EXPF = _libm_expf()


def expf(x: float) -> np.float32:
    """The C library's ``expf`` (single precision), as ``std::exp(float)`` calls it."""
    return np.float32(_EXPF(float(x)))


@dataclass(frozen=True)
class LogisticParams:
    """int8 LOGISTIC: the 256-entry table.

    Attributes:
        lut: 256 int8 outputs, entry ``i`` for input ``i - 128`` (a tuple of ints).
    """

    lut: tuple


def prepare_logistic(in_scale: Any, in_zero_point: int, out_scale: Any, out_zero_point: int,
                     rounding: str = "double") -> LogisticParams:
    """``SigmoidPrepare`` (reference / generic kernels): the output scale must be exactly
    1/256; the table (``LUTPopulateInt8``), all in float32::

        inverse_scale = 1 / s_out
        x_real        = s_in * (float)(q - zp_in)
        y_real        = 1.0f / (1.0f + expf(-x_real))
        lut[q]        = clamp((int32)(TfLiteRound(y_real * inverse_scale) + zp_out), -128, 127)

    Args:
        in_scale, in_zero_point, out_scale, out_zero_point: the tensors' quantization.
        rounding: accepted for a uniform signature; the table involves no fixed-point
            rescale.
    """
    s_in, s_out = scale_f32("in_scale", in_scale), scale_f32("out_scale", out_scale)
    check_rounding(rounding)
    if float(s_out) != 1.0 / 256:
        raise ValueError(f"out_scale: {float(s_out)!r}; TFLite's int8 LOGISTIC requires "
                         "exactly 1/256")
    zi = zero_point("in_zero_point", in_zero_point)
    zo = zero_point("out_zero_point", out_zero_point)
    f32 = np.float32
    inverse_scale = f32(f32(1) / s_out)
    lut = []
    for q in range(INT8_MIN, INT8_MAX + 1):
        x_real = f32(s_in * f32(q - zi))
        y_real = f32(f32(1) / f32(f32(1) + expf(-x_real)))
        rescaled = f32(round_half_away(f32(y_real * inverse_scale)))
        quantized = int(f32(rescaled + f32(zo)))          # static_cast<int32_t>: truncates
        lut.append(min(max(quantized, INT8_MIN), INT8_MAX))
    return LogisticParams(lut=tuple(lut))


def logistic(x: Any, params: LogisticParams) -> np.ndarray:
    """int8 LOGISTIC: ``y = lut[x + 128]`` (``LookupTable``).

    Args:
        x: int8 array.  params: :class:`LogisticParams`.
    """
    if not isinstance(params, LogisticParams) or len(params.lut) != 256:
        raise ValueError("params: expected LogisticParams with a 256-entry table")
    x = int8_input("x", x).astype(np.int64)
    return np.asarray(params.lut, np.int8)[x - INT8_MIN]


# ----------------------------------------------------------------------------------------
# HARD_SWISH (int16 fixed point)
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HardSwishParams:
    """int8 HARD_SWISH (TFLite ``HardSwishParams``).

    Attributes:
        in_zero_point, out_zero_point: int8 zero points.
        output_multiplier_fixedpoint_int16, output_multiplier_exponent: rescale from the
            "hires" input scale ``s_in / 128`` to ``s_out`` (exponent <= 0).
        reluish_multiplier_fixedpoint_int16, reluish_multiplier_exponent: rescale from the
            hires scale to "3.0 == 32768".
    """

    in_zero_point: int
    out_zero_point: int
    output_multiplier_fixedpoint_int16: int
    output_multiplier_exponent: int
    reluish_multiplier_fixedpoint_int16: int
    reluish_multiplier_exponent: int


def _downscale_int32_to_int16(m: int) -> int:
    """``DownScaleInt32ToInt16Multiplier``: ``(m + 2^15) >> 16``, saturating at 32767."""
    if m >= (1 << 31) - 1 - (1 << 15):
        return (1 << 15) - 1
    return (m + (1 << 15)) >> 16


def prepare_hard_swish(in_scale: Any, in_zero_point: int, out_scale: Any,
                       out_zero_point: int, rounding: str = "double") -> HardSwishParams:
    """``HardSwishPrepare``, all in float32::

        hires_input_scale  = (1.0f / 128.0f) * s_in
        reluish_scale      = 3.0f / 32768.0f
        output_multiplier  = hires_input_scale / s_out        -> QuantizeMultiplier -> int16
        reluish_multiplier = hires_input_scale / reluish_scale -> QuantizeMultiplier -> int16

    (``output_multiplier_exponent <= 0`` is required, as in TFLite.)

    Args:
        rounding: accepted for a uniform signature (the kernel uses gemmlowp int16 math).
    """
    s_in, s_out = scale_f32("in_scale", in_scale), scale_f32("out_scale", out_scale)
    check_rounding(rounding)
    f32 = np.float32
    hires = f32(f32(f32(1.0) / f32(128.0)) * s_in)
    reluish_scale = f32(f32(3.0) / f32(32768.0))
    mo, eo = multiplier("hard_swish output multiplier", float(f32(hires / s_out)))
    mr, er = multiplier("hard_swish reluish multiplier", float(f32(hires / reluish_scale)))
    if eo > 0:
        raise ValueError(f"out_scale: {float(s_out)!r} is below s_in / 128 "
                         f"({float(hires)!r}); TFLite's HARD_SWISH requires an output "
                         "multiplier exponent <= 0")
    if eo < -15:
        raise ValueError(f"out_scale: {float(s_out)!r} is too large for HARD_SWISH's int16 "
                         f"output rescale (exponent {eo} < -15)")
    if er < -15:
        raise ValueError(f"in_scale: {float(s_in)!r} is too small for HARD_SWISH's int16 "
                         f"reluish rescale (exponent {er} < -15)")
    return HardSwishParams(in_zero_point=zero_point("in_zero_point", in_zero_point),
                           out_zero_point=zero_point("out_zero_point", out_zero_point),
                           output_multiplier_fixedpoint_int16=_downscale_int32_to_int16(mo),
                           output_multiplier_exponent=eo,
                           reluish_multiplier_fixedpoint_int16=_downscale_int32_to_int16(mr),
                           reluish_multiplier_exponent=er)


def _saturating_left_shift_int16(v: np.ndarray, amount: int) -> np.ndarray:
    return np.clip(v * (1 << amount), g.INT16_MIN, g.INT16_MAX)


def _wrap16(v: np.ndarray) -> np.ndarray:
    return ((v + (1 << 15)) & 0xFFFF) - (1 << 15)


def hard_swish(x: Any, params: HardSwishParams) -> np.ndarray:
    """int8 HARD_SWISH (``reference_ops::HardSwish``, int16 fixed point)::

        v      = x - zp_in                                  int16
        hires  = v * 2^7                                    int16
        pre    = SRDHM16(hires, out_mult16)                 ~ x on the output scale
        r      = hires, saturating-left-shifted by (reluish_exp - 1) if reluish_exp > 0
        r      = SRDHM16(r, reluish_mult16)
        r      = saturating r << 1 if reluish_exp > 0, else RoundingDivideByPOT(r, -reluish_exp)
        r      = (r + 2^15) >> 1                            relu6(x + 3) / 6 in [0, 1], Q0.15
        out    = RoundingDivideByPOT(SaturatingDoublingHighMul(r, pre), -out_exp)
        y      = clamp(int16(out + zp_out), -128, 127)

    ``SaturatingDoublingHighMul`` truncates (``(a*b) / 2^15``, C division) where SRDHM16
    rounds.

    Args:
        x: int8 array.  params: :class:`HardSwishParams`.
    """
    if not isinstance(params, HardSwishParams):
        raise ValueError(f"params: expected HardSwishParams; got {type(params).__name__}")
    p = params
    v = int8_input("x", x).astype(np.int64) - p.in_zero_point          # int16
    hires = v * (1 << 7)
    pre = g.srdhm_int16(hires, p.output_multiplier_fixedpoint_int16)
    r = hires
    if p.reluish_multiplier_exponent > 0:
        r = _saturating_left_shift_int16(r, p.reluish_multiplier_exponent - 1)
    r = g.srdhm_int16(r, p.reluish_multiplier_fixedpoint_int16)
    if p.reluish_multiplier_exponent > 0:
        r = _saturating_left_shift_int16(r, 1)
    if p.reluish_multiplier_exponent < 0:
        r = g.rounding_divide_by_pot_int16(r, -p.reluish_multiplier_exponent)
    r = _wrap16((r + (1 << 15)) >> 1)
    prod = r * pre                                                     # int32
    sdhm = np.where(prod < 0, -((-prod) >> 15), prod >> 15)            # C division by 2^15
    sdhm = np.where((r == g.INT16_MIN) & (pre == g.INT16_MIN), g.INT16_MAX, _wrap16(sdhm))
    out = g.rounding_divide_by_pot_int16(sdhm, -p.output_multiplier_exponent)
    out = _wrap16(out + p.out_zero_point)                              # int16 +=
    return np.clip(out, INT8_MIN, INT8_MAX).astype(np.int8)


# ----------------------------------------------------------------------------------------
# SOFTMAX (gemmlowp fixed point)
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SoftmaxParams:
    """int8 SOFTMAX, reference kernel (TFLite ``SoftmaxParams``).

    Attributes:
        input_multiplier, input_left_shift: ``beta * s_in * 2^26`` as a multiplier > 1.
        diff_min: inputs more than ``-diff_min`` below the row maximum give exp = 0.
        rounding: ``"double"`` or ``"single"``.
    """

    input_multiplier: int
    input_left_shift: int
    diff_min: int
    rounding: str = "double"


def prepare_softmax(beta: Any, in_scale: Any, out_scale: Any = 1.0 / 256,
                    out_zero_point: int = -128, rounding: str = "double") -> SoftmaxParams:
    """``SoftmaxPrepare`` (reference kernel).

    The int8 output must have zero point -128 and scale 1/256 (within 0.1 %, LiteRT's
    ``TF_LITE_ENSURE_NEAR``).  ``PreprocessSoftmaxScaling(beta, s_in, 5)``::

        real = min(double(beta) * double(s_in) * 2^26, 2^31 - 1)   (2^30 - 1: single rounding)
        (input_multiplier, input_left_shift) = QuantizeMultiplierGreaterThanOne(real)
        diff_min = -floor(31 * 2^26 / 2^input_left_shift)          (CalculateInputRadius)

    Args:
        beta: the op's float32 beta.
        in_scale: input float32 scale.
        out_scale, out_zero_point: the output's quantization (checked).
        rounding: ``"double"`` or ``"single"``.
    """
    b = np.float32(validate.float_array("beta", beta).item())
    s_in, s_out = scale_f32("in_scale", in_scale), scale_f32("out_scale", out_scale)
    rounding = check_rounding(rounding)
    if zero_point("out_zero_point", out_zero_point) != -128:
        raise ValueError(f"out_zero_point: {out_zero_point}; TFLite's int8 SOFTMAX requires -128")
    if abs(float(s_out) - 1.0 / 256) > 0.001 / 256:
        raise ValueError(f"out_scale: {float(s_out)!r}; TFLite's int8 SOFTMAX requires 1/256")
    max_real = float((1 << 30) - 1) if rounding == "single" else float((1 << 31) - 1)
    real = min(float(b) * float(s_in) * float(1 << (31 - SOFTMAX_INTEGER_BITS)), max_real)
    m, ls = multiplier("softmax input multiplier (beta * in_scale * 2^26)", real, rounding,
                       "greater_than_one")
    radius = int(np.floor(1.0 * ((1 << SOFTMAX_INTEGER_BITS) - 1)
                          * float(1 << (31 - SOFTMAX_INTEGER_BITS)) / float(1 << ls)))
    return SoftmaxParams(input_multiplier=m, input_left_shift=ls, diff_min=-radius,
                         rounding=rounding)


def softmax(x: Any, params: SoftmaxParams) -> np.ndarray:
    """int8 SOFTMAX over the last axis (``reference_ops::Softmax``, gemmlowp fixed point)::

        d      = x - max_row(x)                                        (<= 0)
        valid  = d >= diff_min
        z      = MultiplyByQuantizedMultiplierGreaterThanOne(d, m, left_shift)  Q5.26
        e      = exp_on_negative_values(z)                             Q0.31
        S      = sum over valid of RoundingDivideByPOT(e, 12)          Q12.19
        h      = CountLeadingZeros(S);  nbou = 12 - h
        recip  = one_over_one_plus_x_for_x_in_0_1((S << h) - 2^31)    Q0.31
        y      = valid ? clamp(RoundingDivideByPOT(SRDHM(recip, e), nbou + 23) - 128,
                               -128, 127)
                       : -128

    Args:
        x: int8 array (rank >= 1).  params: :class:`SoftmaxParams`.

    Returns:
        int8 array of ``x``'s shape (output scale 1/256, zero point -128).
    """
    if not isinstance(params, SoftmaxParams):
        raise ValueError(f"params: expected SoftmaxParams; got {type(params).__name__}")
    r = check_rounding(params.rounding)
    x = int8_input("x", x).astype(np.int64)
    if x.ndim == 0:
        raise ValueError("x: SOFTMAX needs an array of rank >= 1 (it works on the last axis)")
    d = x - x.max(axis=-1, keepdims=True)
    valid = d >= params.diff_min
    # GreaterThanOne: double = SRDHM(d * 2^ls, m); single = MultiplyByQuantizedMultiplier
    z = np.asarray(multiply_by_quantized_multiplier(d, params.input_multiplier,
                                                    params.input_left_shift, r), np.int64)
    e = g.exp_on_negative_values(z, SOFTMAX_INTEGER_BITS)
    terms = np.where(valid, g.rescale(e, 0, SOFTMAX_ACCUM_BITS), 0)
    total = wrap_int32(terms.sum(axis=-1, keepdims=True))
    headroom = g.count_leading_zeros32(total)
    nbou = SOFTMAX_ACCUM_BITS - headroom
    shifted = wrap_int32(((total & 0xFFFFFFFF) << headroom & 0xFFFFFFFF) - (1 << 31))
    recip = g.one_over_one_plus_x_for_x_in_0_1(shifted)
    exponent = nbou + 31 - 8
    if np.any((exponent < 0) | (exponent > 31)):
        raise ValueError("x: softmax exponent outside [0, 31] (TFLITE_CHECK in the kernel)")
    y = g.rounding_divide_by_pot(g.srdhm(recip, e), exponent) + INT8_MIN
    y = np.where(valid, np.clip(y, INT8_MIN, INT8_MAX), INT8_MIN)
    return y.astype(np.int8)
