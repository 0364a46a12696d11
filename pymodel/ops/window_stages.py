"""The window engine's stages: depthwise convolution and pooling, one function per RTL stage.

``rtl/window_engine.v`` walks the taps of every output pixel over a stored input tile;
each of its register stages is one function here, in the same order (house rule 2;
``docs/arithmetic.md`` section 9)::

    iy, ix, inside = window_taps(in_hw, kernel, stride, dilation, pads)   stage 0
    taps  = window_gather(x, iy, ix, inside, pad_value)                   stage 2
    acc   = depthwise_accumulate(taps, w)      (MODE_DW)                   stage 3
          | window_max(taps)                   (MODE_MAX)
          | window_sum(taps)                   (MODE_AVG, MODE_SUM)
    n     = window_count(inside)                                          stage 3
    q     = rounding_divide_by_count(acc, n)   (MODE_AVG)                  stages 4-10
    y     = requantize(acc | q, ...)           (pymodel.arithmetic.fixedpoint; the
                                                 requantize pipeline, stages 0-8)

Depthwise: the bias the pipeline adds has the input zero point folded in and padded taps
read as the input zero point, exactly as for a GEMM (``docs/arithmetic.md`` section 4).
Pooling runs the requantize pipeline with the identity multiplier
(:data:`IDENTITY_M0`, :data:`IDENTITY_SHIFT`: ``x * 2^1 * 2^30 / 2^31 = x``, exact for
``|x| < 2^30``), bias 0 and output zero point 0, so only its clamp acts.

The compositions :func:`depthwise_conv2d_engine`, :func:`max_pool2d_engine` and
:func:`avg_pool2d_engine` equal ``pymodel.ops.layers`` ``depthwise_conv2d``,
``max_pool2d`` and ``avg_pool2d`` (TFLite's reference kernels) -- proved by hypothesis in
``tests/test_window_stages.py`` -- and add dilation, which TFLite's depthwise kernel has
(``in_y = oy * stride - pad_top + dilation * ky``; taps outside the image are skipped,
which equals reading the input zero point once the zero point is folded into the bias).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pymodel import validate
from pymodel.arithmetic.fixedpoint import requantize, wrap_int32
from pymodel.arithmetic.gemm import Padding, output_hw, pair, resolve_padding
from pymodel.ops.layers import (INT8_MAX, INT8_MIN, RequantParams, check_accumulator_bound,
                                fold_input_zero_point)
from pymodel.ops.reduce import MeanParams, mean_multiplier

IDENTITY_M0 = 1 << 30   # m0 of the identity requantize (pooling): 2^30 * 2^1 / 2^31 = 1
IDENTITY_SHIFT = 1

__all__ = [
    "IDENTITY_M0", "IDENTITY_SHIFT", "window_pads", "window_taps", "window_gather",
    "window_count", "depthwise_accumulate", "window_max", "window_sum",
    "rounding_divide_by_count", "identity_requant", "depthwise_conv2d_engine",
    "max_pool2d_engine", "avg_pool2d_engine", "mean_requant", "mean_engine",
]


def window_pads(padding: Padding, in_hw: tuple[int, int], kernel: Any, stride: Any = 1,
                dilation: Any = 1) -> tuple[tuple[int, int], tuple[int, int]]:
    """Explicit ``((top, bottom), (left, right))`` padding of a dilated window.

    ``"same"`` uses TFLite's rule on the effective kernel ``(k - 1) * d + 1``: output
    ``ceil(in / stride)``, total padding ``max((out - 1) * stride + k_eff - in, 0)``, the
    odd pixel at the bottom / right.
    """
    kh, kw = pair("kernel", kernel)
    dh, dw = pair("dilation", dilation)
    return resolve_padding(padding, in_hw, ((kh - 1) * dh + 1, (kw - 1) * dw + 1),
                           pair("stride", stride))


def window_taps(in_hw: tuple[int, int], kernel: Any, stride: Any = 1, dilation: Any = 1,
                pads: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0)),
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stage 0: the input coordinates of every tap of every output pixel.

    ``iy = oy * sh - pad_top + ky * dh``, ``ix = ox * sw - pad_left + kx * dw``; taps are
    ordered ``t = ky * kw + kx`` (the weight word of the tap).

    Args:
        in_hw: input ``(H, W)``.
        kernel, stride, dilation: ints or ``(h, w)`` pairs, each >= 1.
        pads: ``((top, bottom), (left, right))``, each >= 0.

    Returns:
        ``(iy, ix, inside)``: int64 ``[OH, OW, T]`` coordinates and bool ``[OH, OW, T]``
        (the tap lies inside the image).  ``OH = (H + top + bottom - k_eff) // sh + 1``.
    """
    kh, kw = pair("kernel", kernel)
    sh, sw = pair("stride", stride)
    dh, dw = pair("dilation", dilation)
    (pt, pb), (pl, pr) = pads
    h, w = int(in_hw[0]), int(in_hw[1])
    oh, ow = output_hw((h, w), ((kh - 1) * dh + 1, (kw - 1) * dw + 1), (sh, sw),
                       ((pt, pb), (pl, pr)))
    ky, kx = np.meshgrid(np.arange(kh), np.arange(kw), indexing="ij")
    iy = (np.arange(oh)[:, None, None] * sh - pt + (ky * dh).reshape(1, 1, -1))
    ix = (np.arange(ow)[None, :, None] * sw - pl + (kx * dw).reshape(1, 1, -1))
    iy, ix = np.broadcast_arrays(iy, ix)
    inside = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
    return iy.astype(np.int64), ix.astype(np.int64), inside


def window_gather(x: np.ndarray, iy: np.ndarray, ix: np.ndarray, inside: np.ndarray,
                  pad_value: int) -> np.ndarray:
    """Stage 2: every tap's value, ``pad_value`` for a tap outside the image.

    Args:
        x: int8 NHWC ``[N, H, W, C]``.
        iy, ix, inside: :func:`window_taps` output ``[OH, OW, T]``.
        pad_value: int8 -- the input zero point (depthwise), -128 (max), 0 (sums).

    Returns:
        int64 ``[N, OH, OW, T, C]``.
    """
    x = np.asarray(x)
    h, w = x.shape[1:3]
    g = x[:, np.clip(iy, 0, h - 1), np.clip(ix, 0, w - 1), :].astype(np.int64)
    return np.where(inside[None, :, :, :, None], g, np.int64(pad_value))


def window_count(inside: np.ndarray) -> np.ndarray:
    """Stage 3: taps inside the image per output pixel, int64 ``[OH, OW]``."""
    return np.asarray(inside).sum(axis=-1).astype(np.int64)


def depthwise_accumulate(taps: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Stage 3 (MODE_DW): ``sum_t taps[..., t, c] * w[t, c]``, int32 wraparound.

    In the RTL each tap's 8 x 8 -> 16-bit product is registered and added to the sum of
    the window's earlier taps one cycle later (the last product's add is combinational on
    the stage's output); the same products summed in the same tap order.

    Args:
        taps: int64 ``[N, OH, OW, T, C]``.
        w: int8 ``[T, C]`` (depth multiplier 1).

    Returns:
        int64 ``[N, OH, OW, C]`` holding int32 values.
    """
    return wrap_int32((taps * np.asarray(w, np.int64)).sum(axis=3))


def window_max(taps: np.ndarray) -> np.ndarray:
    """Stage 3 (MODE_MAX): the largest tap (padding reads -128), int64 ``[N, OH, OW, C]``."""
    return np.asarray(taps).max(axis=3)


def window_sum(taps: np.ndarray) -> np.ndarray:
    """Stage 3 (MODE_AVG / MODE_SUM): the sum of the taps (padding reads 0), int64."""
    return np.asarray(taps).sum(axis=3)


def rounding_divide_by_count(s: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Stages 4-10 (MODE_AVG): TFLite's average-pool division,
    ``(s > 0 ? s + n/2 : s - n/2) / n`` with C division (round half away from zero).

    In the RTL's order: stage 4 registers ``s`` and ``n``, stage 5 the numerator's sign
    and magnitude ``|s| + n/2`` (24 bits), stages 6-9 the magnitude's floor division by
    ``n`` (a restoring divider, quotient bits 7..6, 5..4, 3..2, 1..0: the
    ``np.abs(num) // n`` below), stage 10 the sign put back (truncation toward zero).

    Args:
        s: integer sums (any shape); ``|s| <= 128 n``.
        n: tap counts >= 1, broadcast against ``s``.

    Returns:
        int64, same shape as ``np.broadcast(s, n)``.
    """
    s = np.asarray(s, np.int64)
    n = np.asarray(n, np.int64)
    if n.size and n.min() < 1:
        raise ValueError(f"n: a window has {int(n.min())} taps inside the image; need >= 1")
    half = n // 2
    num = np.where(s > 0, s + half, s - half)
    return np.sign(num) * (np.abs(num) // n)


def identity_requant(channels: int, act_min: int = INT8_MIN,
                     act_max: int = INT8_MAX) -> RequantParams:
    """Requantize parameters under which the pipeline is the clamp alone (pooling)."""
    return RequantParams(bias=np.zeros(channels, np.int32),
                         m0=np.full(channels, IDENTITY_M0, np.int32),
                         shift=np.full(channels, IDENTITY_SHIFT, np.int32),
                         out_zero_point=0, act_min=act_min, act_max=act_max)


def _x(x: Any) -> np.ndarray:
    arr = validate.int_array("x", x, INT8_MIN, INT8_MAX)
    validate.ndim("x", arr, 4, "[N, H, W, C]")
    validate.nonempty("x", arr)
    return arr


def _requant(acc: np.ndarray, rq: RequantParams, bias: np.ndarray) -> np.ndarray:
    return requantize(acc.astype(np.int32), bias, rq.m0, rq.shift, rq.out_zero_point,
                      rq.act_min, rq.act_max).astype(np.int8)


def depthwise_conv2d_engine(x: np.ndarray, w: np.ndarray, in_zero_point: int,
                            rq: RequantParams, stride: Any = 1, padding: Padding = "valid",
                            dilation: Any = 1, check_bound: bool = True,
                            layer: str = "depthwise_conv2d") -> np.ndarray:
    """Depthwise convolution (depth multiplier 1) as the window engine computes it.

    Args:
        x: int8 NHWC ``[N, H, W, C]``.
        w: int8 ``[1, kh, kw, C]`` (TFLite layout).
        in_zero_point: input zero point (padding value; folded into the bias).
        rq: requantize parameters, ``C`` channels.
        stride, dilation: int or ``(h, w)``.
        padding: ``"valid"``, ``"same"``, an int or ``((top, bottom), (left, right))``.
        check_bound: refuse accumulators that could leave int32 (as ``layers``).

    Returns:
        int8 ``[N, OH, OW, C]``.
    """
    x = _x(x)
    w = validate.int_array("w", w, INT8_MIN, INT8_MAX)
    validate.ndim("w", w, 4, "[1, kh, kw, C]")
    c = x.shape[3]
    if w.shape[0] != 1 or w.shape[3] != c:
        raise ValueError(f"w: expected [1, kh, kw, {c}] (depth multiplier 1); got {w.shape}")
    zp = validate.int_scalar("in_zero_point", in_zero_point, INT8_MIN, INT8_MAX)
    if rq.channels != c:
        raise ValueError(f"rq: has {rq.channels} channels; the layer has {c}")
    kh, kw = w.shape[1:3]
    pads = window_pads(padding, x.shape[1:3], (kh, kw), stride, dilation)
    iy, ix, inside = window_taps(x.shape[1:3], (kh, kw), stride, dilation, pads)
    wt = w.reshape(kh * kw, c)
    w2d = wt.T                                                        # [C, T]
    if check_bound:
        check_accumulator_bound(layer, w2d, rq.bias, zp)
    acc = depthwise_accumulate(window_gather(x, iy, ix, inside, zp), wt)
    return _requant(acc, rq, fold_input_zero_point(rq.bias, w2d, zp))


def max_pool2d_engine(x: np.ndarray, pool: Any, stride: Any = None,
                      padding: Padding = "valid", act_min: int = INT8_MIN,
                      act_max: int = INT8_MAX) -> np.ndarray:
    """Max pool as the window engine computes it (== ``layers.max_pool2d``)."""
    x = _x(x)
    ph, pw = pair("pool", pool)
    st = (ph, pw) if stride is None else pair("stride", stride)
    pads = window_pads(padding, x.shape[1:3], (ph, pw), st)
    iy, ix, inside = window_taps(x.shape[1:3], (ph, pw), st, 1, pads)
    acc = window_max(window_gather(x, iy, ix, inside, INT8_MIN))
    rq = identity_requant(x.shape[3], act_min, act_max)
    return _requant(acc, rq, rq.bias)


def avg_pool2d_engine(x: np.ndarray, pool: Any, stride: Any = None,
                      padding: Padding = "valid", act_min: int = INT8_MIN,
                      act_max: int = INT8_MAX) -> np.ndarray:
    """Average pool as the window engine computes it (== ``layers.avg_pool2d``)."""
    x = _x(x)
    ph, pw = pair("pool", pool)
    st = (ph, pw) if stride is None else pair("stride", stride)
    pads = window_pads(padding, x.shape[1:3], (ph, pw), st)
    iy, ix, inside = window_taps(x.shape[1:3], (ph, pw), st, 1, pads)
    s = window_sum(window_gather(x, iy, ix, inside, 0))
    q = rounding_divide_by_count(s, window_count(inside)[None, :, :, None])
    rq = identity_requant(x.shape[3], act_min, act_max)
    return _requant(q, rq, rq.bias)


def mean_requant(params: MeanParams, n: int, channels: int) -> RequantParams:
    """Requantize parameters that turn a window sum of ``n`` taps into TFLite's MEAN.

    ``y = clamp8(MBQM(wrap32(sum - zp_in * n), m', sh') + zp_out)`` (``reduce.mean``) is
    ``requantize(sum, bias = wrap32(-zp_in * n), m', sh', zp_out, -128, 127)`` with
    ``(m', sh') = mean_multiplier(m, sh, n)``: ``m' < 2^31`` and ``-31 <= sh'``.
    """
    if params.rounding != "double":
        raise ValueError(f"params.rounding: {params.rounding!r}; the window engine's "
                         "requantize pipeline runs 'double' rounding")
    m, sh = mean_multiplier(params.multiplier, params.shift, n)
    bias = int(wrap_int32(-int(params.in_zero_point) * int(n)))
    return RequantParams(bias=np.full(channels, bias, np.int32), m0=np.full(channels, m, np.int32),
                         shift=np.full(channels, sh, np.int32),
                         out_zero_point=params.out_zero_point)


def mean_engine(x: np.ndarray, params: MeanParams) -> np.ndarray:
    """Spatial MEAN (``axis=(1, 2)``, ``keep_dims``) as the window engine computes it: one
    window of ``H x W`` taps (MODE_SUM), then the requantize pipeline with
    :func:`mean_requant` (== ``reduce.mean(x, (1, 2), params, keep_dims=True)``).

    Returns:
        int8 ``[N, 1, 1, C]``.
    """
    x = _x(x)
    h, w = x.shape[1:3]
    iy, ix, inside = window_taps((h, w), (h, w))
    s = wrap_int32(window_sum(window_gather(x, iy, ix, inside, 0)))
    rq = mean_requant(params, h * w, x.shape[3])
    return _requant(s, rq, rq.bias)
