"""Quantized layers prepared once, run many times: the golden model at production speed.

:mod:`pymodel.ops.layers` is the readable contract -- every call validates its weights,
folds the input zero point into the bias, checks the accumulator bound, builds the GEMM
rows and requantizes stage by stage.  None of that weight-side work depends on the
activations, so a :class:`PreparedLayer` does it once (per artifact load, see
:func:`pymodel.graph.inference.prepared_layer`) and keeps:

* the weights in GEMM layout ``[K, C]`` as float32, split along ``K`` into chunks in
  which every partial sum is an integer of magnitude ``<= 2^24`` -- so float32 BLAS
  computes each chunk's int8 x int8 sums *exactly*, in any summation order (the same
  argument as :func:`pymodel.arithmetic.gemm.matmul_int32`); chunks are added in float64
  (exact below 2^53);
* the accumulator bound, checked once (:func:`pymodel.ops.layers.check_accumulator_bound`);
* the requantize constants with the input zero point and the bias folded in
  (:func:`pymodel.arithmetic.fast_requant.plan_requant`): per call, one multiply-add and
  one shift per value in int64.

The per-call path does only the activation work: cast / pad the input, build the
``im2col`` rows in float32 (one copy), the GEMM, the requantize.  Depthwise convolutions
run a compiled kernel (:mod:`pymodel.ops.depthwise_jit`) or, without numba, numpy
(:class:`PreparedDepthwise`).

Every prepared layer equals its :mod:`pymodel.ops.layers` counterpart with ``==``
(``tests/test_prepared.py``).  The prepared layer keeps its own copies of the weights:
changing the artifact's arrays afterwards does not affect it.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from pymodel import parallel, validate
from pymodel.arithmetic.fast_requant import (FloatPlan, RequantPlan, apply_float, apply_plan,
                                             apply_plan_channels, plan_float, plan_requant)
from pymodel.arithmetic.fast_gemm import k_chunk
from pymodel.arithmetic.gemm import Padding, effective_kernel, output_hw, pair, resolve_padding
from pymodel.arithmetic.qparams import qrange
from pymodel.ops.layers import (RequantParams, _int8, _requant_for, _zp, check_accumulator_bound,
                                fold_input_zero_point)

_FLOAT32_EXACT = 1 << 24
_INPUT_MAX = 128          # max |x| of an int8 GEMM operand
MIN_ROWS_PER_THREAD = 32  # GEMM rows below which splitting over threads does not pay

__all__ = ["PreparedLayer", "PreparedGemm", "PreparedConv2d", "PreparedDepthwise",
           "PreparedFullyConnected", "prepare_gemm"]


def _rounding_of(rq: RequantParams) -> str:
    """The layer's rounding mode (``"double"`` unless ``rq`` says otherwise)."""
    return str(getattr(rq, "rounding", "double"))


def _worst_acc(w2d: np.ndarray, zp: int, rq: RequantParams) -> int:
    """Largest ``|acc + b'|`` over every int8 input (``b'`` the folded bias)."""
    qmin, qmax = qrange(8, symmetric=False)
    xmax = max(zp - qmin, qmax - zp)
    worst = np.abs(w2d.astype(np.int64)).sum(axis=1) * xmax + np.abs(rq.bias.astype(np.int64))
    return int(worst.max()) if worst.size else 0


def _float_plan(w2d: np.ndarray, zp: int, rq: RequantParams) -> FloatPlan | None:
    """The float64 requantize of a checked layer whose raw accumulator is
    ``sum x * w`` (``x`` int8), or ``None`` where it is not provably exact."""
    w64 = w2d.astype(np.int64)
    bias = rq.bias.astype(np.int64) - zp * w64.sum(axis=1)
    acc_max = int((np.abs(w64).sum(axis=1) * _INPUT_MAX).max()) if w64.size else 0
    return plan_float(bias, rq.m0, rq.shift, rq.out_zero_point, rq.act_min, rq.act_max,
                      _rounding_of(rq), _worst_acc(w2d, zp, rq), acc_max)


def _plan(w2d: np.ndarray, zp: int, rq: RequantParams, layer: str,
          check_bound: bool) -> RequantPlan:
    """Requantize constants for weights ``[C, K]`` (int), input zero point ``zp``.

    With the bound checked, ``acc + (b - zp * sum w)`` is the exact TFLite accumulator
    (no int32 wrap anywhere), so the unwrapped folded bias goes into the plan's
    constant.  Without, the hardware's wrapping arithmetic: the int32 folded bias.
    """
    if check_bound:
        check_accumulator_bound(layer, w2d, rq.bias, zp)
        bound = _worst_acc(w2d, zp, rq)
        bias = rq.bias.astype(np.int64) - zp * w2d.astype(np.int64).sum(axis=1)
        return plan_requant(bias, rq.m0, rq.shift, rq.out_zero_point, rq.act_min,
                            rq.act_max, _rounding_of(rq), acc_bound=bound)
    bias = fold_input_zero_point(rq.bias, w2d, zp)
    return plan_requant(bias, rq.m0, rq.shift, rq.out_zero_point, rq.act_min, rq.act_max,
                        _rounding_of(rq))


class PreparedGemm:
    """:func:`pymodel.ops.layers.quantized_gemm` with the weight work done once.

    Args:
        w2d: int8 ``[C, K]`` weights.
        in_zero_point: input zero point (int8).
        rq: requantization parameters with ``C`` channels.
        layer: name used in error messages.
        check_bound: as :func:`quantized_gemm`: refuse a layer whose worst-case
            accumulator could leave int32 (``False``: wrap mod 2^32 as the hardware does).

    Attributes:
        chunks: float32 ``[C, k1 - k0]`` C-contiguous weight blocks along ``K``.
        plan: the requantize constants.
    """

    def __init__(self, w2d: np.ndarray, in_zero_point: int, rq: RequantParams,
                 layer: str = "gemm", check_bound: bool = True) -> None:
        w2d = _int8("w2d", w2d, 2, "[C, K]")
        self.layer = layer
        self.in_zero_point = _zp(in_zero_point)
        _requant_for(rq, w2d.shape[0])
        self.channels, self.k = int(w2d.shape[0]), int(w2d.shape[1])
        self.plan = _plan(w2d, self.in_zero_point, rq, layer, check_bound)
        wmax = int(np.abs(w2d.astype(np.int16)).max())
        step = k_chunk(_INPUT_MAX, wmax, self.k)
        wf = w2d.astype(np.float32)
        self.chunks = [np.ascontiguousarray(wf[:, k0:k0 + step]) for k0 in range(0, self.k, step)]
        self.edges = list(range(0, self.k, step)) + [self.k]

    def accumulate_t(self, cols: np.ndarray) -> np.ndarray:
        """Exact ``w2d @ cols.T``, channel-major, of float32 rows holding int8 values.

        Args:
            cols: float32 ``[M, K]`` (integers in [-128, 127]).

        Returns:
            float32 (one chunk) or float64 ``[C, M]`` of exact integer sums.
        """
        if len(self.chunks) == 1:
            return self.chunks[0] @ cols.T
        acc = None
        for w, k0, k1 in zip(self.chunks, self.edges[:-1], self.edges[1:]):
            part = w @ cols[:, k0:k1].T
            acc = part.astype(np.float64) if acc is None else np.add(acc, part, out=acc)
        return acc

    def run_float_rows(self, cols: np.ndarray) -> np.ndarray:
        """GEMM + requantize of float32 rows ``[M, K]`` -> int8 ``[M, C]`` (possibly a
        transposed view).  The requantize runs in whichever layout gives numpy the longer
        inner loop: channel-major when there are more rows than channels.  With several
        :mod:`pymodel.parallel` threads, row blocks run concurrently, each calling BLAS
        (then best single-threaded) on its block."""
        m = cols.shape[0]
        parts = parallel.split(m, min(parallel.threads(), max(1, m // MIN_ROWS_PER_THREAD)))
        if len(parts) == 1:
            acc_t = self.accumulate_t(cols)
            if acc_t.shape[1] > self.channels:
                return apply_plan(self.plan, acc_t, channel_axis=0).T
            return apply_plan(self.plan, acc_t.T)
        out = np.empty((m, self.channels), np.int8)

        def rows(sl: slice) -> None:                 # GEMM + requantize of a row block
            acc_t = self.accumulate_t(cols[sl])
            if acc_t.shape[1] > self.channels:
                out[sl] = apply_plan(self.plan, acc_t, channel_axis=0, serial=True).T
            else:
                out[sl] = apply_plan(self.plan, acc_t.T, serial=True)
        parallel.run_all(rows, parts)
        return out

    def __call__(self, cols: np.ndarray) -> np.ndarray:
        """Same as ``quantized_gemm(cols, w2d, in_zero_point, rq)``: int8 ``[M, K]`` ->
        int8 ``[M, C]``."""
        cols = _activation("cols", cols, 2, self.k, 1)
        return np.ascontiguousarray(self.run_float_rows(cols.astype(np.float32)))


def prepare_gemm(w2d: np.ndarray, in_zero_point: int, rq: RequantParams, layer: str = "gemm",
                 check_bound: bool = True) -> PreparedGemm:
    """A :class:`PreparedGemm` (see there)."""
    return PreparedGemm(w2d, in_zero_point, rq, layer, check_bound)


def _activation(name: str, x: Any, ndim: int, channels: int, axis: int) -> np.ndarray:
    """Per-call input check: int8 array of ``ndim`` dims with ``channels`` on ``axis``."""
    if not isinstance(x, np.ndarray) or x.dtype != np.int8:
        return _check_shape(name, _int8(name, x, ndim, "int8"), ndim, channels, axis)
    return _check_shape(name, x, ndim, channels, axis)


def _check_shape(name: str, x: np.ndarray, ndim: int, channels: int, axis: int) -> np.ndarray:
    if x.ndim != ndim or x.shape[axis] != channels or x.size == 0:
        want = {2: f"[M, {channels}]", 4: f"[N, H, W, {channels}]"}[ndim]
        raise ValueError(f"{name}: expected a non-empty int8 array {want}; got shape "
                         f"{list(x.shape)}")
    return x


class PreparedLayer:
    """Base class: a layer whose weight-side work is done; call it with int8 inputs."""

    name: str

    def __call__(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


class PreparedFullyConnected(PreparedLayer):
    """:func:`pymodel.ops.layers.fully_connected`, prepared.

    Args:
        w: int8 ``[out, in]``.  in_zero_point, rq, layer: as ``fully_connected``.
    """

    def __init__(self, w: np.ndarray, in_zero_point: int, rq: RequantParams,
                 layer: str = "fully_connected") -> None:
        w = _int8("w", w, 2, "[out, in]")
        self.name = layer
        self.gemm = PreparedGemm(w, in_zero_point, rq, layer)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """int8 ``[N, in]`` -> int8 ``[N, out]``."""
        x = _activation("x", x, 2, self.gemm.k, 1)
        return np.ascontiguousarray(self.gemm.run_float_rows(x.astype(np.float32)))


def _padded_float(x: np.ndarray, pads: tuple[tuple[int, int], tuple[int, int]],
                  fill: int) -> np.ndarray:
    """``x`` as float32, padded with ``fill`` (one pass over the input)."""
    (pt, pb), (pl, pr) = pads
    n, h, w, c = x.shape
    if not (pt or pb or pl or pr):
        return x.astype(np.float32)
    xp = np.empty((n, h + pt + pb, w + pl + pr, c), np.float32)
    if pt:
        xp[:, :pt] = fill
    if pb:
        xp[:, h + pt:] = fill
    if pl:
        xp[:, pt:h + pt, :pl] = fill
    if pr:
        xp[:, pt:h + pt, w + pl:] = fill
    xp[:, pt:h + pt, pl:w + pl] = x
    return xp


class _Window:
    """Kernel, stride, padding and dilation of a window op, resolved per input size
    (cached)."""

    def __init__(self, kernel: tuple[int, int], stride: Any, padding: Padding,
                 dilation: Any = 1) -> None:
        self.kernel = kernel
        self.stride = pair("stride", stride)
        self.dilation = pair("dilation", dilation)
        self.effective = effective_kernel(kernel, self.dilation)
        self.padding = padding
        self._cache: dict[tuple[int, int], tuple] = {}
        resolve_padding(padding, self.effective, kernel, self.stride, self.dilation)

    def geometry(self, hw: tuple[int, int]) -> tuple:
        """``(pads, (OH, OW))`` for input height / width ``hw``."""
        g = self._cache.get(hw)
        if g is None:
            pads = resolve_padding(self.padding, hw, self.kernel, self.stride, self.dilation)
            g = (pads, output_hw(hw, self.kernel, self.stride, pads, self.dilation))
            self._cache[hw] = g
        return g


class PreparedConv2d(PreparedLayer):
    """:func:`pymodel.ops.layers.conv2d`, prepared.

    Args:
        w: int8 ``[out_ch, kh, kw, in_ch]``.  in_zero_point, rq, stride, padding, layer,
            dilation: as ``conv2d``.
    """

    def __init__(self, w: np.ndarray, in_zero_point: int, rq: RequantParams, stride: Any = 1,
                 padding: Padding = "valid", layer: str = "conv2d", dilation: Any = 1) -> None:
        w = _int8("w", w, 4, "[out_ch, kh, kw, in_ch]")
        self.name = layer
        self.in_ch = int(w.shape[3])
        self.out_ch = int(w.shape[0])
        self.window = _Window((int(w.shape[1]), int(w.shape[2])), stride, padding, dilation)
        self.gemm = PreparedGemm(w.reshape(w.shape[0], -1), in_zero_point, rq, layer)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """int8 NHWC ``[N, H, W, in_ch]`` -> int8 ``[N, OH, OW, out_ch]``."""
        x = _activation("x", x, 4, self.in_ch, 3)
        n = x.shape[0]
        pads, (oh, ow) = self.window.geometry((x.shape[1], x.shape[2]))
        kh, kw = self.window.kernel
        sh, sw = self.window.stride
        dh, dw = self.window.dilation
        xp = _padded_float(x, pads, self.gemm.in_zero_point)
        if kh == kw == 1:
            cols = xp[:, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw]
        else:
            win = np.lib.stride_tricks.sliding_window_view(xp, self.window.effective,
                                                           axis=(1, 2))
            cols = win[:, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw, :, ::dh,
                       ::dw].transpose(0, 1, 2, 4, 5, 3)             # [N,OH,OW,KH,KW,C]
        cols = cols.reshape(n * oh * ow, kh * kw * self.in_ch)      # the one copy
        y = self.gemm.run_float_rows(cols)
        return y.reshape(n, oh, ow, self.out_ch)


class PreparedDepthwise(PreparedLayer):
    """:func:`pymodel.ops.layers.depthwise_conv2d`, prepared.

    Runs the compiled kernel (:mod:`pymodel.ops.depthwise_jit`: taps and requantize in
    one loop per output row) when numba is installed and ``QMAC_JIT`` is not ``0``;
    else numpy: stride 1 in int16 tap groups (:meth:`_stride1_int16`), other strides
    tap by tap in float32 (every partial sum an integer below
    ``kh * kw * 2^14 <= 2^24``: exact).

    Args:
        w: int8 ``[1, kh, kw, C * m]``.  in_zero_point, rq, stride, padding, layer,
            dilation: as ``depthwise_conv2d``.
        in_channels: ``C`` (the depth multiplier is ``w.shape[3] // C``).
    """

    def __init__(self, w: np.ndarray, in_zero_point: int, rq: RequantParams,
                 in_channels: int, stride: Any = 1, padding: Padding = "valid",
                 layer: str = "depthwise_conv2d", dilation: Any = 1) -> None:
        w = _int8("w", w, 4, "[1, kh, kw, C * multiplier]")
        c = validate.int_scalar("in_channels", in_channels, 1, 1 << 24)
        if w.shape[0] != 1 or w.shape[3] % c:
            raise ValueError(f"w: depthwise weights must be [1, kh, kw, C * multiplier] with "
                             f"C = {c}; got {w.shape}")
        self.name = layer
        self.in_ch = c
        self.mult = int(w.shape[3]) // c
        kh, kw = int(w.shape[1]), int(w.shape[2])
        if kh * kw * _INPUT_MAX * _INPUT_MAX > _FLOAT32_EXACT:
            raise ValueError(f"w: a {kh}x{kw} depthwise window exceeds the exact float32 "
                             "accumulation (kh * kw <= 1024)")
        self.window = _Window((kh, kw), stride, padding, dilation)
        zp = _zp(in_zero_point)
        self.in_zero_point = zp
        _requant_for(rq, w.shape[3])
        w2d = w.reshape(kh * kw, w.shape[3]).T                      # [C*m, T]
        self.plan = _plan(w2d, zp, rq, layer, check_bound=True)
        self.taps = np.ascontiguousarray(
            w.reshape(kh * kw, w.shape[3]).T.astype(np.float32)).reshape(-1, kh * kw, 1, 1)
        # stride 1: int16 taps, in groups whose partial sums provably fit int16
        self.w16 = w.reshape(kh * kw, w.shape[3]).astype(np.int16)          # [T, C*m]
        self.groups = _int16_groups(np.abs(self.w16.astype(np.int64)) * _INPUT_MAX)
        self.fplan = _float_plan(w2d, zp, rq)
        self._rows: dict[int, tuple] = {}
        #: the compiled kernel (:mod:`pymodel.ops.depthwise_jit`), or ``None``: numpy path
        self.kernel = _depthwise_kernel(w, zp, self.mult, self.plan, self.fplan)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """int8 NHWC ``[N, H, W, C]`` -> int8 ``[N, OH, OW, C * m]``.

        Channel-major inside (``[C*m, N*H, W]``): the per-channel tap weights and
        requantize constants are then constant along numpy's inner loops.
        """
        x = _activation("x", x, 4, self.in_ch, 3)
        n, h, w = x.shape[:3]
        pads, (oh, ow) = self.window.geometry((h, w))
        (pt, pb), (pl, pr) = pads
        kh, kw = self.window.kernel
        sh, sw = self.window.stride
        c = self.in_ch * self.mult
        if self.kernel is not None:
            return self.kernel(x, pads, (oh, ow), self.window.stride, self.window.dilation)
        if sh == sw == 1:
            return self._stride1_int16(x, pads, (oh, ow))
        hp, wp = h + pt + pb, w + pl + pr
        xp = np.empty((c, n, hp, wp), np.float32)       # padded, channel-major
        if pt or pb or pl or pr:
            xp.fill(self.in_zero_point)
        xt = x.transpose(3, 0, 1, 2)
        if self.mult > 1:                      # output channel c*m + j reads channel c
            xt = np.repeat(xt, self.mult, axis=0)
        xp[:, :, pt:pt + h, pl:pl + w] = xt
        eh, ew = self.window.dilation
        if sh == sw == 1:
            return self._stride1(xp, (oh, ow))
        acc = np.empty((c, n, oh, ow), np.float32)
        tmp = np.empty_like(acc)
        for t in range(kh * kw):
            dh, dw = divmod(t, kw)
            dh, dw = dh * eh, dw * ew
            tap = xp[:, :, dh: dh + (oh - 1) * sh + 1: sh, dw: dw + (ow - 1) * sw + 1: sw]
            wt = self.taps[:, t:t + 1, :, :]            # [C*m, 1, 1, 1]
            if t == 0:
                np.multiply(tap, wt, out=acc)
            else:
                np.multiply(tap, wt, out=tmp)
                acc += tmp
        y = apply_plan(self.plan, acc, channel_axis=0)  # int8 [C*m, N, OH, OW]
        return np.ascontiguousarray(y.transpose(1, 2, 3, 0))

    def _stride1(self, xp: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
        """Stride 1: every tap is one contiguous run of each channel's flattened padded
        input (offset ``dh * Wp + dw``), so the multiply-adds run over long rows; the
        positions past the valid width are computed and dropped (``(Wp - OW) / Wp``)."""
        c, n, hp, wp = xp.shape
        oh, ow = out_hw
        kh, kw = self.window.kernel
        eh, ew = self.window.dilation
        flat = xp.reshape(c, -1)
        length = (n - 1) * hp * wp + (oh - 1) * wp + ow          # last valid position + 1
        y = np.empty((c, n * hp * wp), np.int8)

        def channels(sl: slice) -> None:               # one channel group, any thread
            acc = np.zeros((sl.stop - sl.start, n * hp * wp), np.float32)
            run = acc[:, :length]
            tmp = np.empty_like(run)
            for t in range(kh * kw):
                dh, dw = divmod(t, kw)
                off = dh * eh * wp + dw * ew
                wt = self.taps[sl, t, :, 0]                      # [c, 1]
                if t == 0:
                    np.multiply(flat[sl, off:off + length], wt, out=run)
                else:
                    np.multiply(flat[sl, off:off + length], wt, out=tmp)
                    run += tmp
            y[sl] = apply_plan_channels(self.plan, acc, sl)
        parallel.run_all(channels, parallel.split(c))
        y4 = y.reshape(c, n, hp, wp)
        return np.ascontiguousarray(y4[:, :, :oh, :ow].transpose(1, 2, 3, 0))

    def _rows_for(self, wp: int) -> tuple:
        """Tap weights and requantize constants tiled over a padded row of ``wp`` pixels
        (cached per input width)."""
        got = self._rows.get(wp)
        if got is None:
            wrows = np.ascontiguousarray(np.tile(self.w16, (1, wp)))       # [T, wp*C*m]
            got = (wrows, None if self.fplan is None else self.fplan.tiled(wp))
            self._rows[wp] = got
        return got

    def _stride1_int16(self, x: np.ndarray, pads: tuple, out_hw: tuple[int, int]) -> np.ndarray:
        """Stride 1, channel-last: shift-and-accumulate over the taps on the padded
        input.  Each tap ``(dh, dw)`` is one contiguous run of the flattened padded image
        (offset ``(dh * Wp + dw) * C``), multiplied by the tap's weights tiled along the
        row; positions past the valid width are computed and dropped.  Products and the
        partial sums of a tap group are int16 (exact: ``sum_t 128 |w_t| <= 2^15 - 1``,
        :func:`_int16_groups`), groups add in int32, the requantize is the exact float64
        form (:func:`pymodel.arithmetic.fast_requant.plan_float`) or else the int64 plan.
        Row blocks run on :mod:`pymodel.parallel`'s threads."""
        (pt, pb), (pl, pr) = pads
        oh, ow = out_hw
        n, h, w = x.shape[:3]
        c = self.in_ch * self.mult
        if self.mult > 1:                      # output channel c*m + j reads channel c
            x = np.repeat(x, self.mult, axis=3)
        kh, kw = self.window.kernel
        eh, ew = self.window.dilation
        hp, wp = h + pt + pb, w + pl + pr
        hp1 = hp + 1                           # + 1 row per image: the last taps overrun
        # the batch as one tall padded image (+ 1 row at the very end): every tap of a
        # valid output row stays inside its own image; rows between images are dropped
        xp = np.empty((n * hp1 + 1, wp, c), np.int16)
        xi = xp[:n * hp1].reshape(n, hp1, wp, c)
        zp = self.in_zero_point
        xi[:, :pt] = zp
        xi[:, pt + h:] = zp
        xi[:, pt:pt + h, :pl] = zp
        xi[:, pt:pt + h, pl + w:] = zp
        xi[:, pt:pt + h, pl:pl + w] = x
        xp[n * hp1:] = zp
        flat = xp.reshape(-1)
        rw = wp * c
        wrows, frows = self._rows_for(wp)
        tall = np.empty((n * hp1, wp, c), np.int8)
        rows_needed = (n - 1) * hp1 + oh
        offs = [((t // kw) * eh * wp + (t % kw) * ew) * c for t in range(kh * kw)]
        step = max(1, BLOCK_VALUES // rw)
        blocks = [(r0, min(rows_needed, r0 + step)) for r0 in range(0, rows_needed, step)]

        def block(item: tuple[int, int]) -> None:
            r0, r1 = item
            rows = r1 - r0
            size = rows * rw
            acc32 = None
            a = np.empty((rows, rw), np.int16)
            tmp = np.empty_like(a)
            for g in self.groups:
                for j, t in enumerate(g):
                    base = r0 * rw + offs[t]
                    v = flat[base:base + size].reshape(rows, rw)
                    if j == 0:
                        np.multiply(v, wrows[t], out=a)
                    else:
                        np.multiply(v, wrows[t], out=tmp)
                        a += tmp
                if len(self.groups) == 1:
                    acc32 = a
                elif acc32 is None:
                    acc32 = a.astype(np.int32)
                else:
                    np.add(acc32, a, out=acc32)
            assert acc32 is not None
            if frows is not None:           # y + 128 as uint8, flipped to int8 below
                apply_float(frows, acc32, tall[r0:r1].reshape(rows, rw).view(np.uint8))
            else:
                tall[r0:r1] = apply_plan(self.plan, acc32.reshape(rows, wp, c), serial=True)
        parallel.run_all(block, blocks)
        out = np.ascontiguousarray(tall.reshape(n, hp1, wp, c)[:, :oh, :ow])
        if frows is not None:
            o8 = out.view(np.uint8)
            np.bitwise_xor(o8, 0x80, out=o8)              # y + 128 (uint8) -> y (int8)
        return out


def _depthwise_kernel(w: np.ndarray, zp: int, mult: int, plan: RequantPlan,
                      fplan: FloatPlan | None) -> Any:
    """The compiled depthwise kernel (:class:`pymodel.ops.depthwise_jit.DepthwiseKernel`),
    or ``None`` -- the numpy path -- when numba is not installed or ``QMAC_JIT=0``."""
    if os.environ.get("QMAC_JIT", "1").strip() == "0":
        return None
    try:
        from pymodel.ops.depthwise_jit import DepthwiseKernel
    except ImportError:
        return None
    return DepthwiseKernel(w, zp, mult, plan, fplan)


#: Values per row block of the stride-1 depthwise path (measured best on this machine).
BLOCK_VALUES = 1 << 17


def _int16_groups(bound: np.ndarray) -> list[list[int]]:
    """Consecutive taps whose int16 partial sums cannot overflow, for every channel.

    Args:
        bound: int64 ``[T, C]``: ``max |x * w|`` per tap and channel (``128 |w|``).

    Returns:
        Lists of tap indices covering ``0 .. T-1`` in order; within a group
        ``sum_t bound[t, c] <= 2^15 - 1`` for every ``c``.
    """
    groups: list[list[int]] = []
    run = np.zeros(bound.shape[1], np.int64)
    for t in range(bound.shape[0]):
        if groups and int((run + bound[t]).max()) <= (1 << 15) - 1:
            groups[-1].append(t)
            run += bound[t]
        else:
            groups.append([t])
            run = bound[t].copy()
    return groups
