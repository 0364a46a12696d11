"""Quantized layers (int8 in, int32 accumulate, int8 out) and their float references.

Layouts are TFLite's, so real int8 models map directly:

- activations NHWC ``[N, H, W, C]`` (fully connected: ``[N, in]``);
- conv weights ``[out_ch, kh, kw, in_ch]``; depthwise ``[1, kh, kw, in_ch * mult]``;
  fully-connected weights ``[out, in]``.

Every quantized layer computes its accumulators as the MAC array does -- ``im2col`` rows
times weights, plain int8 x int8 (:func:`pymodel.arithmetic.gemm.matmul_int32`) -- with the input
zero point folded into the bias (:func:`fold_input_zero_point`), then requantizes with
:func:`pymodel.arithmetic.fixedpoint.requantize`.  ``docs/arithmetic.md`` sections 4 and 6 give the
formulas; the tests check them against a direct loop over TFLite's formula.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pymodel import validate
from pymodel.arithmetic.fixedpoint import (INT32_MAX, INT32_MIN, ROUNDING_MODES,
                                           quantize_multiplier, requantize, wrap_int32)
from pymodel.arithmetic.gemm import Padding, im2col, matmul_int32, pair
from pymodel.arithmetic.qparams import QuantParams, qrange
from pymodel.arithmetic.rounding import round_half_away

ACTIVATIONS = ("none", "relu", "relu6")
INT8_MIN, INT8_MAX = -128, 127


# ----------------------------------------------------------------------------------------
# Per-layer integer parameters
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RequantParams:
    """Everything the requantize pipeline needs for one layer (one entry per channel).

    Attributes:
        bias: int32 ``[C]``, scale ``s_in * s_w[c]`` (before zero-point folding).
        m0: int32 ``[C]``, in [2^30, 2^31) or 0.
        shift: int32 ``[C]``, in [-31, 30] (positive = left shift).
        out_zero_point: output zero point, int8.
        act_min, act_max: output clamp (fused activation), int8, ``act_min <= act_max``.
        rounding: ``"double"`` (gemmlowp SRDHM + rounding divide, TFLite's default) or
            ``"single"`` (``TFLITE_SINGLE_ROUNDING``: one rounding shift of the 64-bit
            product; needs ``m0 >= 0``), see ``docs/arithmetic.md``.
    """

    bias: np.ndarray
    m0: np.ndarray
    shift: np.ndarray
    out_zero_point: int
    act_min: int = INT8_MIN
    act_max: int = INT8_MAX
    rounding: str = "double"

    def __post_init__(self) -> None:
        bias = validate.int_array("bias", self.bias, INT32_MIN, INT32_MAX).astype(np.int32)
        m0 = validate.int_array("m0", self.m0, 0, INT32_MAX).astype(np.int32)
        shift = validate.int_array("shift", self.shift, -31, 30).astype(np.int32)
        for name, arr in (("bias", bias), ("m0", m0), ("shift", shift)):
            validate.ndim(name, arr, 1, "[C]")
        if not bias.shape == m0.shape == shift.shape:
            raise ValueError(f"bias, m0, shift: lengths differ ({bias.size}, {m0.size}, "
                             f"{shift.size}); each needs one entry per output channel")
        zp = validate.int_scalar("out_zero_point", self.out_zero_point, INT8_MIN, INT8_MAX)
        lo = validate.int_scalar("act_min", self.act_min, INT8_MIN, INT8_MAX)
        hi = validate.int_scalar("act_max", self.act_max, INT8_MIN, INT8_MAX)
        if lo > hi:
            raise ValueError(f"act_min {lo} exceeds act_max {hi}")
        validate.one_of("rounding", self.rounding, ROUNDING_MODES)
        for name, value in (("bias", bias), ("m0", m0), ("shift", shift),
                            ("out_zero_point", zp), ("act_min", lo), ("act_max", hi)):
            object.__setattr__(self, name, value)

    @property
    def channels(self) -> int:
        return int(self.bias.size)


def activation_range(activation: str, out_qp: QuantParams) -> tuple[int, int]:
    """Clamp bounds of a fused activation (TFLite ``CalculateActivationRangeQuantized``).

    Args:
        activation: ``"none"``, ``"relu"`` or ``"relu6"``.
        out_qp: per-tensor output quantization parameters.

    Returns:
        ``(act_min, act_max)`` as ints inside ``[qmin, qmax]`` of ``out_qp``.
    """
    validate.one_of("activation", activation, ACTIVATIONS)
    qmin, qmax = out_qp.qmin, out_qp.qmax
    zp, scale = int(out_qp.zero_point), float(out_qp.scale)

    def q(r: float) -> int:
        return zp + int(round_half_away(r / scale))

    if activation == "none":
        return qmin, qmax
    lo = max(qmin, q(0.0))
    hi = qmax if activation == "relu" else min(qmax, q(6.0))
    return lo, hi


def quantize_bias(bias: Any, in_scale: float, w_scale: Any) -> np.ndarray:
    """``round_half_away(bias / (s_in * s_w[c]))`` as int32; an error if it leaves int32.

    Args:
        bias: float ``[C]`` (real units).
        in_scale: input activation scale (per-tensor).
        w_scale: weight scale, scalar or ``[C]``.
    """
    b = validate.float_array("bias", bias)
    q = round_half_away(b / (float(in_scale) * np.asarray(w_scale, np.float64)))
    if q.size and (q.min() < INT32_MIN or q.max() > INT32_MAX):
        bad = int(np.argmax(np.abs(q)))
        raise ValueError(f"bias: channel {bad} value {float(b.flat[bad])!r} needs {q.flat[bad]:.0f} "
                         f"at scale s_in*s_w, outside int32")
    return q.astype(np.int32)


def make_requant_params(in_qp: QuantParams, w_qp: QuantParams, out_qp: QuantParams,
                        bias: Any | None, channels: int,
                        activation: str = "none", rounding: str = "double") -> RequantParams:
    """Integer parameters of a layer from its float scales.

    ``M[c] = s_in * s_w[c] / s_out`` -> ``quantize_multiplier``; bias at scale
    ``s_in * s_w[c]``; clamp from the fused activation.

    Args:
        in_qp, out_qp: per-tensor activation parameters (int8).
        w_qp: weight parameters, per-tensor or per-channel (``[C]``).
        bias: float ``[C]`` or ``None`` (zeros).
        channels: number of output channels ``C``.
        activation: ``"none"``, ``"relu"`` or ``"relu6"``.
        rounding: ``"double"`` or ``"single"`` (see :class:`RequantParams`).
    """
    if in_qp.per_channel or out_qp.per_channel:
        raise ValueError("in_qp, out_qp: activations must be quantized per tensor")
    w_scale = np.broadcast_to(w_qp.scale, (channels,)).astype(np.float64)
    s_in, s_out = float(in_qp.scale), float(out_qp.scale)
    b = np.zeros(channels) if bias is None else validate.float_array("bias", bias)
    if b.shape != (channels,):
        raise ValueError(f"bias: expected shape ({channels},); got {b.shape}")
    m0, shift = quantize_multiplier(s_in * w_scale / s_out, rounding)
    act_min, act_max = activation_range(activation, out_qp)
    return RequantParams(bias=quantize_bias(b, s_in, w_scale), m0=m0, shift=shift,
                         out_zero_point=int(out_qp.zero_point), act_min=act_min,
                         act_max=act_max, rounding=rounding)


def fold_input_zero_point(bias: np.ndarray, w2d: np.ndarray, in_zero_point: int) -> np.ndarray:
    """``b'[c] = wrap32(b[c] - zp_in * sum_k w[c, k])``: the bias the hardware adds.

    With it, ``sum_k w * x + b' == sum_k w * (x - zp_in) + b`` (mod 2^32), so the MAC
    array multiplies plain int8 x int8.

    Args:
        bias: int32 ``[C]``.
        w2d: int8 weights ``[C, K]``.
        in_zero_point: input zero point, int8.

    Returns:
        int32 ``[C]``.
    """
    wsum = w2d.astype(np.int64).sum(axis=1)
    return wrap_int32(bias.astype(np.int64) - int(in_zero_point) * wsum).astype(np.int32)


def check_accumulator_bound(layer: str, w2d: np.ndarray, bias: np.ndarray,
                            in_zero_point: int, in_bits: int = 8) -> None:
    """Refuse a layer whose worst-case TFLite accumulator could leave int32.

    Worst case over all inputs: ``max_c sum_k |w[c, k]| * max|x - zp| + |b[c]|`` with
    ``max|x - zp| = max(zp - qmin, qmax - zp)`` for ``in_bits``-wide inputs.

    Raises:
        ValueError naming the layer, K and the bound.
    """
    qmin, qmax = qrange(in_bits, symmetric=False)
    xmax = max(int(in_zero_point) - qmin, qmax - int(in_zero_point))
    worst = np.abs(w2d.astype(np.int64)).sum(axis=1) * xmax + np.abs(bias.astype(np.int64))
    if worst.size and int(worst.max()) > INT32_MAX:
        c = int(np.argmax(worst))
        raise ValueError(f"layer {layer!r}: worst-case |accumulator| {int(worst[c])} exceeds "
                         f"int32 (K={w2d.shape[1]} taps, output channel {c}, "
                         f"max |x - zp| = {xmax}); split K or reduce the weights")


# ----------------------------------------------------------------------------------------
# Argument checks
# ----------------------------------------------------------------------------------------

def _int8(name: str, value: Any, ndim: int, layout: str) -> np.ndarray:
    arr = validate.int_array(name, value, INT8_MIN, INT8_MAX, dtypes=(np.int8,))
    validate.ndim(name, arr, ndim, layout)
    validate.nonempty(name, arr)
    return arr


def _requant_for(rq: RequantParams, channels: int) -> None:
    if not isinstance(rq, RequantParams):
        raise ValueError(f"rq: expected RequantParams; got {type(rq).__name__}")
    if rq.channels != channels:
        raise ValueError(f"rq: has {rq.channels} channels; the weights have {channels} "
                         "output channels")


def _zp(in_zero_point: Any) -> int:
    return validate.int_scalar("in_zero_point", in_zero_point, INT8_MIN, INT8_MAX)


def quantized_gemm(cols: np.ndarray, w2d: np.ndarray, in_zero_point: int, rq: RequantParams,
                   layer: str = "gemm", check_bound: bool = True) -> np.ndarray:
    """What the layer engine computes: ``requantize(cols @ w2d.T, fold(bias))`` -> int8.

    The MAC array forms ``sum_k cols[m, k] * w2d[c, k]`` (plain int8 x int8, int32
    wrapping); the requantize pipeline adds the bias with the input zero point folded in
    (:func:`fold_input_zero_point`) and rescales.  Conv and fully-connected layers are
    this function applied to their ``im2col`` rows.

    Args:
        cols: int8 ``[M, K]`` GEMM rows (``im2col`` output padded with ``in_zero_point``).
        w2d: int8 ``[C, K]`` weights.
        in_zero_point: input zero point.
        rq: requantization parameters with ``C`` channels.
        layer: name used in error messages.
        check_bound: refuse layers whose worst-case accumulator could leave int32
            (:func:`check_accumulator_bound`).  ``False`` evaluates the arithmetic as the
            hardware does, wrapping mod 2^32 -- for testing the RTL at the contract's edges.

    Returns:
        int8 ``[M, C]``.
    """
    cols = _int8("cols", cols, 2, "[M, K]")
    w2d = _int8("w2d", w2d, 2, "[C, K]")
    if cols.shape[1] != w2d.shape[1]:
        raise ValueError(f"cols, w2d: cols has K={cols.shape[1]} but w2d has K={w2d.shape[1]}")
    zp = _zp(in_zero_point)
    _requant_for(rq, w2d.shape[0])
    if check_bound:
        check_accumulator_bound(layer, w2d, rq.bias, zp)
    acc = matmul_int32(cols, w2d.T)
    bias = fold_input_zero_point(rq.bias, w2d, zp)
    y = requantize(acc, bias, rq.m0, rq.shift, rq.out_zero_point, rq.act_min, rq.act_max,
                   rq.rounding)
    return y.astype(np.int8)


# ----------------------------------------------------------------------------------------
# Quantized layers
# ----------------------------------------------------------------------------------------

def fully_connected(x: np.ndarray, w: np.ndarray, in_zero_point: int, rq: RequantParams,
                    layer: str = "fully_connected") -> np.ndarray:
    """Quantized fully connected layer.

    Args:
        x: int8 ``[N, in]``.
        w: int8 ``[out, in]`` (int4 weights are int8 values in [-7, 7]).
        in_zero_point: input zero point.
        rq: requantization parameters with ``out`` channels.
        layer: name used in error messages.

    Returns:
        int8 ``[N, out]``.
    """
    x = _int8("x", x, 2, "[N, in]")
    w = _int8("w", w, 2, "[out, in]")
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"x, w: x has {x.shape[1]} features but w expects {w.shape[1]} "
                         f"(w is [out, in] = {w.shape})")
    return quantized_gemm(x, w, in_zero_point, rq, layer)


def conv2d(x: np.ndarray, w: np.ndarray, in_zero_point: int, rq: RequantParams,
           stride: Any = 1, padding: Padding = "valid", layer: str = "conv2d",
           dilation: Any = 1) -> np.ndarray:
    """Quantized 2-D convolution.

    Args:
        x: int8 NHWC ``[N, H, W, C]``.
        w: int8 ``[out_ch, kh, kw, C]``.
        in_zero_point: input zero point (also the padding value).
        rq: requantization parameters with ``out_ch`` channels.
        stride: int or ``(sh, sw)``.
        padding: ``"valid"``, ``"same"``, int or ``((top, bottom), (left, right))``.
        layer: name used in error messages.
        dilation: int or ``(dh, dw)`` (TFLite's ``dilation_{height,width}_factor``);
            SAME padding is computed on the effective kernel ``(k - 1) * d + 1``.

    Returns:
        int8 ``[N, OH, OW, out_ch]``.
    """
    x = _int8("x", x, 4, "[N, H, W, C]")
    w = _int8("w", w, 4, "[out_ch, kh, kw, in_ch]")
    if x.shape[3] != w.shape[3]:
        raise ValueError(f"x, w: x has {x.shape[3]} channels but w expects {w.shape[3]} "
                         f"(w is [out_ch, kh, kw, in_ch] = {w.shape})")
    zp = _zp(in_zero_point)
    _requant_for(rq, w.shape[0])
    cols, (oh, ow) = im2col(x, w.shape[1:3], stride, padding, pad_value=zp, dilation=dilation)
    y = quantized_gemm(cols, w.reshape(w.shape[0], -1), zp, rq, layer)
    return y.reshape(x.shape[0], oh, ow, w.shape[0])


def depthwise_conv2d(x: np.ndarray, w: np.ndarray, in_zero_point: int, rq: RequantParams,
                     stride: Any = 1, padding: Padding = "valid",
                     layer: str = "depthwise_conv2d", dilation: Any = 1) -> np.ndarray:
    """Quantized depthwise convolution (depth multiplier ``m = w.shape[3] // C``).

    Output channel ``c * m + j`` convolves input channel ``c`` with ``w[0, :, :, c*m + j]``
    (TFLite's ``reference_integer_ops::DepthwiseConvPerChannel``: ``output_channel = m +
    in_channel * depth_multiplier``; per-channel parameters are indexed by the output
    channel).

    Args:
        x: int8 NHWC ``[N, H, W, C]``.
        w: int8 ``[1, kh, kw, C * m]``.
        in_zero_point, rq, stride, padding, layer, dilation: as :func:`conv2d` (``rq`` has
            ``C * m`` channels).

    Returns:
        int8 ``[N, OH, OW, C * m]``.
    """
    x = _int8("x", x, 4, "[N, H, W, C]")
    w = _int8("w", w, 4, "[1, kh, kw, C * multiplier]")
    c = x.shape[3]
    if w.shape[0] != 1 or w.shape[3] % c:
        raise ValueError(f"w: depthwise weights must be [1, kh, kw, C * multiplier] with "
                         f"C = {c}; got {w.shape}")
    mult = w.shape[3] // c
    zp = _zp(in_zero_point)
    _requant_for(rq, w.shape[3])
    kh, kw = w.shape[1:3]
    cols, (oh, ow) = im2col(x, (kh, kw), stride, padding, pad_value=zp, dilation=dilation)
    taps = cols.reshape(-1, kh * kw, c).astype(np.int64)          # [M, T, C]
    wt = w.reshape(kh * kw, c, mult).astype(np.int64)               # [T, C, m]
    w2d = wt.transpose(1, 2, 0).reshape(c * mult, kh * kw)         # [C*m, T]
    check_accumulator_bound(layer, w2d, rq.bias, zp)
    acc = wrap_int32(np.einsum("mtc,tcj->mcj", taps, wt).reshape(-1, c * mult))
    bias = fold_input_zero_point(rq.bias, w2d, zp)
    y = requantize(acc.astype(np.int32), bias, rq.m0, rq.shift, rq.out_zero_point,
                   rq.act_min, rq.act_max, rq.rounding).astype(np.int8)
    return y.reshape(x.shape[0], oh, ow, c * mult)


def _pool_windows(x: np.ndarray, pool: Any, stride: Any, padding: Padding,
                  fill: Any) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Windows ``[N, OH, OW, T, C]`` of ``x`` and the in-image mask ``[OH*OW, T]``."""
    ph, pw = pair("pool", pool)
    stride = (ph, pw) if stride is None else pair("stride", stride)
    n, h, wd, c = x.shape
    cols, (oh, ow) = im2col(x, (ph, pw), stride, padding, pad_value=fill)
    inside, _ = im2col(np.ones((1, h, wd, 1), np.int8), (ph, pw), stride, padding, 0)
    return cols.reshape(n, oh, ow, ph * pw, c), inside.astype(bool), (oh, ow)


def max_pool2d(x: np.ndarray, pool: Any, stride: Any = None, padding: Padding = "valid",
               act_min: int = INT8_MIN, act_max: int = INT8_MAX) -> np.ndarray:
    """Quantized max pool over in-image taps, then clamp (input and output share
    quantization parameters).

    Args:
        x: int8 NHWC.  pool: window, int or ``(ph, pw)``.  stride: defaults to ``pool``.

    Returns:
        int8 ``[N, OH, OW, C]``.
    """
    x = _int8("x", x, 4, "[N, H, W, C]")
    win, _, _ = _pool_windows(x, pool, stride, padding, fill=INT8_MIN)
    return np.clip(win.max(axis=3), act_min, act_max).astype(np.int8)


def avg_pool2d(x: np.ndarray, pool: Any, stride: Any = None, padding: Padding = "valid",
               act_min: int = INT8_MIN, act_max: int = INT8_MAX) -> np.ndarray:
    """Quantized average pool, TFLite's rounding: ``(s +- n/2) / n`` with C division over
    the ``n`` in-image taps (round half away from zero), then clamp.

    Returns:
        int8 ``[N, OH, OW, C]``.
    """
    x = _int8("x", x, 4, "[N, H, W, C]")
    win, inside, (oh, ow) = _pool_windows(x, pool, stride, padding, fill=0)
    s = win.astype(np.int64).sum(axis=3)                             # [N, OH, OW, C]
    n = inside.sum(axis=1).reshape(1, oh, ow, 1).astype(np.int64)
    half = n // 2
    num = np.where(s > 0, s + half, s - half)
    q = np.sign(num) * (np.abs(num) // n)                            # C division
    return np.clip(q, act_min, act_max).astype(np.int8)


# ----------------------------------------------------------------------------------------
# Float references
# ----------------------------------------------------------------------------------------

def apply_activation(y: np.ndarray, activation: str) -> np.ndarray:
    """``none`` / ``relu`` / ``relu6`` on a float array."""
    validate.one_of("activation", activation, ACTIVATIONS)
    if activation == "relu":
        return np.maximum(y, 0.0)
    if activation == "relu6":
        return np.clip(y, 0.0, 6.0)
    return y


def fully_connected_float(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None,
                          activation: str = "none") -> np.ndarray:
    """Float fully connected: ``x [N, in] @ w[out, in].T + b`` -> float64 ``[N, out]``."""
    y = np.asarray(x, np.float64) @ np.asarray(w, np.float64).T
    return apply_activation(y if b is None else y + b, activation)


def conv2d_float(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride: Any = 1,
                 padding: Padding = "valid", activation: str = "none",
                 dilation: Any = 1) -> np.ndarray:
    """Float conv2d (NHWC, weights ``[out, kh, kw, in]``, zero padding) -> float64."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    cols, (oh, ow) = im2col(x, w.shape[1:3], stride, padding, pad_value=0.0, dilation=dilation)
    y = (cols @ w.reshape(w.shape[0], -1).T).reshape(x.shape[0], oh, ow, w.shape[0])
    return apply_activation(y if b is None else y + b, activation)


def depthwise_conv2d_float(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None,
                           stride: Any = 1, padding: Padding = "valid",
                           activation: str = "none", dilation: Any = 1) -> np.ndarray:
    """Float depthwise conv (weights ``[1, kh, kw, C * m]``) -> float64 NHWC."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    c = x.shape[3]
    mult = w.shape[3] // c
    kh, kw = w.shape[1:3]
    cols, (oh, ow) = im2col(x, (kh, kw), stride, padding, pad_value=0.0, dilation=dilation)
    y = np.einsum("mtc,tcj->mcj", cols.reshape(-1, kh * kw, c), w.reshape(kh * kw, c, mult))
    y = y.reshape(x.shape[0], oh, ow, c * mult)
    return apply_activation(y if b is None else y + b, activation)


def max_pool2d_float(x: np.ndarray, pool: Any, stride: Any = None,
                     padding: Padding = "valid") -> np.ndarray:
    """Float max pool over in-image taps -> float64 NHWC."""
    win, _, _ = _pool_windows(np.asarray(x, np.float64), pool, stride, padding, fill=-np.inf)
    return win.max(axis=3)


def avg_pool2d_float(x: np.ndarray, pool: Any, stride: Any = None,
                     padding: Padding = "valid") -> np.ndarray:
    """Float average pool over in-image taps -> float64 NHWC."""
    win, inside, (oh, ow) = _pool_windows(np.asarray(x, np.float64), pool, stride, padding, 0.0)
    return win.sum(axis=3) / inside.sum(axis=1).reshape(1, oh, ow, 1)
