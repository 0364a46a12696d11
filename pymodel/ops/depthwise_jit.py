"""A compiled depthwise convolution: taps, folded bias and the exact requantize in one loop.

Why hand-written (house rule 9): no library computes an int8 depthwise convolution with
TFLite's exact fixed-point requantize.  onnxruntime's ``QLinearConv`` and XNNPACK
requantize in float (``acc * s_x s_w / s_y`` rounded half to even), LiteRT's optimized
kernels only inside its interpreter, on its own tensors; numpy needs ~24 memory passes
(tap products, int16 groups, float64 requantize, layout copies) where one pass over the
input does.  This module is that one pass, compiled with numba (LLVM; PyPI ``numba``).

What it computes, per output row ``(n, oy)``: the raw accumulator
``acc[ox, c] = sum_t x_pad[n, oy*sh - pt + ky*dh, ox*sw - pl + kx*dw, c // m] * w[t, c]``
in int32 (``x_pad`` = the input zero point outside the image: the same integer the
numpy path and :func:`pymodel.ops.layers.depthwise_conv2d` accumulate), then, in the
same loop, one of the exact requantize forms of :mod:`pymodel.arithmetic.fast_requant`
(``docs/arithmetic.md`` 5.6) with the zero-point-folded bias in its constants:

* the float64 form (:class:`~pymodel.arithmetic.fast_requant.FloatPlan`) where the
  layer's accumulator bound makes it exact: ``u = acc * alpha + const`` (minus ``delta``
  where ``u < tau``, double rounding), clamped, truncated -- ``y + 128``;
* else the int64 form (:class:`~pymodel.arithmetic.fast_requant.RequantPlan`), every
  field of it (folded or not, left shifts, sign threshold, int32 wraps, both rounding
  modes) -- the element-wise transcription of ``fast_requant._block``.

Threads: the kernel releases the GIL (``nogil=True``) and :mod:`pymodel.parallel` runs
disjoint blocks of output rows on its pool (the thread count ``make bench`` and
``QMAC_THREADS`` set); every output value is written once by integer arithmetic, so the
bytes do not depend on the thread count.  (numba's own ``prange`` would add a second
thread pool with its own count; its default ``workqueue`` layer also refuses concurrent
calls from several Python threads.)

Compilation: ``cache=True``, into ``build/numba`` of the checkout (``NUMBA_CACHE_DIR``
overrides; never the source tree).  The first call in a fresh build compiles (a few
seconds), later processes load the cached machine code.  Without numba (or with
``QMAC_JIT=0``), :class:`pymodel.ops.prepared.PreparedDepthwise` uses its numpy path;
``tests/test_depthwise_jit.py`` checks both ``==`` :func:`pymodel.ops.layers.depthwise_conv2d`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

_REPO = Path(__file__).resolve().parents[2]
#: where the compiled machine code is cached: ``NUMBA_CACHE_DIR`` if set, else the
#: checkout's ``build/numba`` (an installed package: numba's default, ``__pycache__``)
_CACHE_DIR = os.environ.get("NUMBA_CACHE_DIR") or (
    str(_REPO / "build" / "numba") if (_REPO / "pyproject.toml").is_file() else "")
if _CACHE_DIR:
    os.environ.setdefault("NUMBA_CACHE_DIR", _CACHE_DIR)

import numba  # noqa: E402  (after NUMBA_CACHE_DIR is set)

if _CACHE_DIR:
    numba.config.CACHE_DIR = _CACHE_DIR

from pymodel import parallel  # noqa: E402
from pymodel.arithmetic.fast_requant import FloatPlan, RequantPlan  # noqa: E402

__all__ = ["DepthwiseKernel", "CACHE_DIR"]
CACHE_DIR = _CACHE_DIR

_NO_THR = -(1 << 62)     # a sign threshold no int32 accumulator is below


@numba.njit(nogil=True, cache=True)
def _rows(x, w, wt, zw, zrow, sh, sw, dh, dw, pt, pl, oh, r0, r1, fmode, fa, fc, fd,
          ftau, flo, fhi, m0, add, neg, off, tot, bias, left, thr, flags, zp_out, amin,
          amax, out):  # pragma: no cover - compiled
    """Output rows ``r0 .. r1-1`` of ``out`` (int8 ``[N * OH, OW * Cm]``), rows counted
    over ``N * OH``.  ``x`` int8 ``[N, H, W * Cm]`` (channels already repeated for a
    depth multiplier); ``w``, ``zw`` (``zp * w``) int32 ``[KH, KW, Cm]``; ``wt`` int8
    ``[KH, KW, OW * Cm]`` (``w`` tiled along a row, for stride 1: one contiguous run
    per tap; int8 keeps it in the L1/L2 cache) or empty; ``zrow`` int32
    ``[KH, Cm]`` (``zw`` summed over ``kx``).  Indices are slices from 0: numba then
    proves them non-negative and LLVM vectorizes the inner loops."""
    hgt = x.shape[1]
    kh, kw, cm = w.shape[0], w.shape[1], w.shape[2]
    wid = x.shape[2] // cm
    ow = out.shape[1] // cm
    acc = np.empty(ow * cm, np.int32)
    folded = flags[0] == 1
    has_thr = flags[1] == 1
    has_left = flags[2] == 1
    wrap_result = flags[3] == 1
    add_zp = flags[4] == 1
    wrap_after = flags[5] == 1
    has_delta = flags[6] == 1
    for r in range(r0, r1):
        n = r // oh
        oy = r - n * oh
        acc[:] = 0
        for ky in range(kh):
            iy = oy * sh - pt + ky * dh
            if iy < 0 or iy >= hgt:                      # a row of padding
                zr = zrow[ky]
                for ox in range(ow):
                    a = acc[ox * cm:(ox + 1) * cm]
                    for c in range(cm):
                        a[c] += zr[c]
                continue
            xrow = x[n, iy]
            for kx in range(kw):
                o = kx * dw - pl                          # ix = ox * sw + o
                lo = 0 if o >= 0 else (-o + sw - 1) // sw
                hi = (wid - 1 - o) // sw + 1 if wid - 1 - o >= 0 else 0
                hi = min(hi, ow)
                lo = min(lo, hi)
                z = zw[ky, kx]
                for ox in range(lo):
                    a = acc[ox * cm:(ox + 1) * cm]
                    for c in range(cm):
                        a[c] += z[c]
                for ox in range(hi, ow):
                    a = acc[ox * cm:(ox + 1) * cm]
                    for c in range(cm):
                        a[c] += z[c]
                if sw == 1:                               # one contiguous run
                    a = acc[lo * cm:hi * cm]
                    xs = xrow[(lo + o) * cm:(hi + o) * cm]
                    ws = wt[ky, kx, lo * cm:hi * cm]
                    for j in range(a.size):
                        a[j] += np.int32(xs[j]) * np.int32(ws[j])
                else:
                    ws = w[ky, kx]
                    for ox in range(lo, hi):
                        ix = ox * sw + o
                        a = acc[ox * cm:(ox + 1) * cm]
                        xs = xrow[ix * cm:(ix + 1) * cm]
                        for c in range(cm):
                            a[c] += np.int32(xs[c]) * ws[c]
        orow = out[r]
        if fmode:                                         # the exact float64 form
            for ox in range(ow):
                a = acc[ox * cm:(ox + 1) * cm]
                y = orow[ox * cm:(ox + 1) * cm]
                for c in range(cm):
                    u = a[c] * fa[c] + fc[c]
                    if has_delta and u < ftau:
                        u -= fd[c]
                    u = min(max(u, flo), fhi)
                    y[c] = np.int8(np.int32(u) - 128)
        else:                                             # the int64 plan
            for ox in range(ow):
                a = acc[ox * cm:(ox + 1) * cm]
                y = orow[ox * cm:(ox + 1) * cm]
                for c in range(cm):
                    v = np.int64(a[c])
                    if folded:
                        t = v * m0[c] + add[c]
                        if has_thr and v < thr[c]:
                            t -= neg[c]
                    else:
                        x1 = np.int64(np.int32(v + bias[c]))
                        if has_left:
                            x1 = np.int64(np.int32(x1 << left[c]))
                        t = x1 * m0[c] + add[c]
                        if t < 0:
                            t -= neg[c]
                        t += off[c]
                    t >>= tot[c]
                    if wrap_result:
                        t = np.int64(np.int32(t))
                    if add_zp:
                        t += zp_out
                    if wrap_after:
                        t = np.int64(np.int32(t))
                    y[c] = np.int8(min(max(t, amin), amax))


def _i64(a: np.ndarray | None, c: int, fill: int = 0) -> np.ndarray:
    """``a`` as contiguous int64 ``[c]`` (``fill`` where the plan has no such field)."""
    if a is None:
        return np.full(c, fill, np.int64)
    return np.ascontiguousarray(np.broadcast_to(np.asarray(a, np.int64), (c,)))


class DepthwiseKernel:
    """One prepared depthwise layer's compiled per-call work.

    Args:
        w: int8 ``[1, KH, KW, C * m]`` weights.
        in_zero_point: the input zero point (fills the padding).
        mult: the depth multiplier ``m``.
        plan: the layer's checked int64 requantize plan (folded bias inside).
        fplan: its exact float64 form, or ``None`` (then ``plan`` runs).
    """

    def __init__(self, w: np.ndarray, in_zero_point: int, mult: int, plan: RequantPlan,
                 fplan: FloatPlan | None) -> None:
        cm = int(w.shape[3])
        self.mult = int(mult)
        self.w8 = np.ascontiguousarray(w[0])                              # [KH, KW, Cm]
        self.w = self.w8.astype(np.int32)
        self.zw = np.ascontiguousarray(self.w * np.int32(in_zero_point))
        self.zrow = np.ascontiguousarray(self.zw.sum(axis=1, dtype=np.int32))
        p = plan
        self.fmode = fplan is not None
        f = fplan
        self.fargs = (np.ascontiguousarray(f.alpha) if f else np.zeros(cm),
                      np.ascontiguousarray(f.const) if f else np.zeros(cm),
                      np.ascontiguousarray(f.delta) if f and f.delta is not None
                      else np.zeros(cm),
                      float(f.tau) if f else 0.0, float(f.lo) if f else 0.0,
                      float(f.hi) if f else 0.0)
        self.iargs = (_i64(p.m0, cm), _i64(p.add, cm), _i64(p.neg, cm), _i64(p.off, cm),
                      _i64(p.total_shift, cm), _i64(p.bias, cm), _i64(p.left, cm),
                      _i64(p.sign_thr, cm, _NO_THR))
        self.flags = np.array([p.bias is None, p.sign_thr is not None and p.neg is not None,
                               p.left is not None, p.wrap_result,
                               bool(p.zero_point) and not p.zp_folded, p.wrap_after,
                               f is not None and f.delta is not None], np.int64)
        self.zp_out, self.amin, self.amax = int(p.zero_point), int(p.act_min), int(p.act_max)
        self._wt: dict[int, np.ndarray] = {}
        self._none = np.zeros((1, 1, 1), np.int8)

    def __call__(self, x: np.ndarray, pads: tuple, out_hw: tuple[int, int],
                 stride: tuple[int, int], dilation: tuple[int, int]) -> np.ndarray:
        """int8 ``[N, H, W, C]`` -> int8 ``[N, OH, OW, C * m]``; row blocks on the
        :mod:`pymodel.parallel` threads."""
        if self.mult > 1:                      # output channel c*m + j reads channel c
            x = np.repeat(x, self.mult, axis=3)
        n, h, w, cm = x.shape
        x = np.ascontiguousarray(x).reshape(n, h, w * cm)
        oh, ow = out_hw
        (pt, _), (pl, _) = pads
        out = np.empty((n, oh, ow, cm), np.int8)
        rows = out.reshape(n * oh, ow * cm)
        sh, sw = stride
        dh, dw = dilation
        wt = self._tiled(ow) if sw == 1 else self._none

        def block(sl: slice) -> None:
            _rows(x, self.w, wt, self.zw, self.zrow, sh, sw, dh, dw, pt, pl, oh,
                  sl.start, sl.stop, self.fmode, *self.fargs, *self.iargs, self.flags,
                  self.zp_out, self.amin, self.amax, rows)
        parallel.run_all(block, parallel.split(n * oh))
        return out

    def _tiled(self, ow: int) -> np.ndarray:
        """The weights tiled along an output row of ``ow`` pixels, int8
        ``[KH, KW, ow * Cm]`` (cached per width)."""
        got = self._wt.get(ow)
        if got is None:
            got = np.ascontiguousarray(np.tile(self.w8, (1, 1, ow)))
            self._wt[ow] = got
        return got
