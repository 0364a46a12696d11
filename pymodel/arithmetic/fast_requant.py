"""The requantize pipeline in few vectorized int64 passes, equal to the stage-by-stage
reference (:func:`pymodel.arithmetic.fixedpoint.requantize`) on every input of the contract.

:mod:`pymodel.arithmetic.fixedpoint` spells the pipeline out one stage per function, as the
RTL does.  This module computes the same integers with fewer, cheaper numpy passes --
it is what the prepared layers (:mod:`pymodel.ops.prepared`) run per call.  The
property tests (``tests/test_fast_requant.py``) check it ``==`` the reference over the
whole contract range, both rounding modes.

Why the forms are exact (``>>`` arithmetic shift = floor division by a power of two):

* **double rounding** (gemmlowp, TFLite's default).  With ``x2 = wrap32(x1 << l)``,
  ``l = max(shift, 0)``, ``r = max(-shift, 0)`` and ``m0 >= 0``, SRDHM is
  ``h = floor((x2 * m0 + 2^30) / 2^31)`` (its nudge with C division equals this floor,
  ``docs/arithmetic.md`` 5.3; the saturating case needs ``m0 = -2^31`` and is outside
  ``m0 >= 0``).  The rounding divide is ``floor((h + c) / 2^r)`` with
  ``c = 2^(r-1) - [h < 0]`` for ``r > 0`` and ``c = 0`` for ``r = 0``.  Because
  ``floor((floor(a) + c) / n) = floor((a + c) / n)`` for integers ``c``, ``n``, the two
  roundings fold into one shift of the 64-bit value ``t = x2 * m0 + 2^30``::

      y = (t + c * 2^31) >> (31 + r),      [h < 0] = [t < 0]

  -- still *double* rounding (``c`` depends on ``t``), but four int64 passes instead of
  the stage functions' dozen.  Bounds: ``|x2 * m0| < 2^62``, ``|c * 2^31| <= 2^61``,
  so nothing leaves int64.
* **single rounding** (``TFLITE_SINGLE_ROUNDING``, ``kernels/internal/common.cc``)::

      total_shift = 31 - shift        (1 .. 62)
      y = wrap32((x1 * m0 + 2^(total_shift - 1)) >> total_shift)

  (the release build's ``static_cast<int32_t>`` keeps the low 32 bits of a result
  outside int32; ``|x1 * m0| + 2^61 < 2^63``).

Then ``wrap32(y + zp)`` and the clamp, as in the reference.

Bias folding: when a layer's accumulator bound has been checked
(:func:`pymodel.ops.layers.check_accumulator_bound`), ``x1 = acc + bias`` is the exact
integer (no int32 wrap happens), and ``t = acc * m0 + (bias * m0 + 2^30)`` is computed
with the per-channel constant in brackets precomputed: int64 arithmetic is exact mod
2^64 and ``t`` itself fits int64, so intermediate wraparound cancels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from pymodel import parallel, validate
from pymodel.arithmetic.fixedpoint import INT32_MAX, INT32_MIN, SHIFT_MAX, SHIFT_MIN

ROUNDING_MODES = ("double", "single")
#: Elements per block of the per-call pass: the int64 temporaries of one block stay in
#: the L2 cache (64 Ki values = 512 KiB).
BLOCK = 1 << 16

__all__ = ["ROUNDING_MODES", "RequantPlan", "plan_requant", "apply_plan",
           "apply_plan_channels", "requantize_fast", "FloatPlan", "plan_float", "apply_float"]


@dataclass(frozen=True)
class RequantPlan:
    """Per-channel int64 constants of one layer's requantize, computed once.

    Attributes (int64 ``[C]`` unless stated):
        rounding: ``"double"`` or ``"single"``.
        m0: multiplier, in [0, 2^31).
        left: left shift ``max(shift, 0)`` (double rounding only; all zero otherwise).
        add: constant added to ``x * m0``: ``bias * m0 + 2^30`` (double; the bias term
            only when ``bias_in_add``) or ``bias * m0 + 2^(total_shift - 1)`` (single).
        neg: ``2^31`` where a negative ``t`` takes one off the rounding offset (``r > 0``),
            else 0 (double only).
        off: ``2^(r-1) * 2^31`` for ``r > 0``, else 0 (double only).
        total_shift: ``31 + r`` (double) or ``31 - shift`` (single).
        bias: int64 ``[C]`` bias added before the multiplier when it cannot be folded
            into ``add`` (left shifts, or an unchecked accumulator), else ``None``.
        zero_point, act_min, act_max: Python ints.
        wrap_after: whether ``y + zero_point`` can leave int32 (then it is wrapped).
        wrap_result: single rounding only: whether ``y`` can leave int32 (then wrapped).
        sign_thr: folded plans: ``[t < 0]`` is ``[acc < sign_thr]`` (see
            :func:`plan_requant`), tested on the accumulator before the multiply.
        zp_folded: the zero point is in ``add`` as ``zp * 2^total_shift``.
    """

    rounding: str
    m0: np.ndarray
    left: np.ndarray | None
    add: np.ndarray
    neg: np.ndarray | None
    off: np.ndarray | None
    total_shift: np.ndarray
    bias: np.ndarray | None
    zero_point: int
    act_min: int
    act_max: int
    wrap_after: bool
    wrap_result: bool
    sign_thr: np.ndarray | None = None
    zp_folded: bool = False

    @cached_property
    def sign_thr_f32(self) -> np.ndarray:
        """``sign_thr`` clamped to ``+-(2^24 + 1)`` as float32 (exact), for float32
        accumulators (``|acc| <= 2^24``)."""
        if self.sign_thr is None:
            raise ValueError("plan has no sign threshold")
        lim = (1 << 24) + 1
        return np.clip(self.sign_thr, -lim, lim).astype(np.float32)

    @property
    def channels(self) -> int:
        return int(self.m0.size)


def plan_requant(bias: Any, m0: Any, shift: Any, out_zero_point: int, act_min: int,
                 act_max: int, rounding: str = "double",
                 acc_bound: int | None = None) -> RequantPlan:
    """Precompute a layer's requantize constants.

    Args:
        bias: int ``[C]`` bias added to the accumulator.  With ``acc_bound`` it may be
            any int64 value (the unwrapped folded bias ``b - zp * sum w``); without, an
            int32 value (added with wraparound, as the reference does).
        m0: int ``[C]`` in [0, 2^31).
        shift: int ``[C]`` in [-31, 30].
        out_zero_point: int in [-2^15, 2^15).
        act_min, act_max: int32 clamp bounds, ``act_min <= act_max``.
        rounding: ``"double"`` or ``"single"``.
        acc_bound: if given, a proven bound ``|acc + bias| <= acc_bound <= 2^31 - 1`` for
            every accumulator this plan will see (the layer's checked worst case): the
            bias is then folded into the multiplier's constant and no int32 wrap of
            ``acc + bias`` is needed.

    Returns:
        :class:`RequantPlan`.
    """
    validate.one_of("rounding", rounding, ROUNDING_MODES)
    m = validate.int_array("m0", m0, 0, INT32_MAX).astype(np.int64).reshape(-1)
    s = validate.int_array("shift", shift, SHIFT_MIN, SHIFT_MAX).astype(np.int64).reshape(-1)
    b = np.asarray(bias, np.int64).reshape(-1)
    if not b.shape == m.shape == s.shape:
        raise ValueError(f"bias, m0, shift: lengths differ ({b.size}, {m.size}, {s.size})")
    zp = validate.int_scalar("out_zero_point", out_zero_point, -(1 << 15), (1 << 15) - 1)
    lo = validate.int_scalar("act_min", act_min, INT32_MIN, INT32_MAX)
    hi = validate.int_scalar("act_max", act_max, INT32_MIN, INT32_MAX)
    if lo > hi:
        raise ValueError(f"act_min {lo} exceeds act_max {hi}")
    if acc_bound is not None:
        validate.int_scalar("acc_bound", acc_bound, 0, INT32_MAX)
    else:
        validate.int_array("bias", b, INT32_MIN, INT32_MAX)
    left = np.maximum(s, 0)
    fold = acc_bound is not None and (rounding == "single" or not left.any())
    if rounding == "double":
        r = np.maximum(-s, 0)
        total = 31 + r
        base = np.int64(1 << 30)
        neg = np.where(r > 0, np.int64(1) << 31, 0).astype(np.int64)
        off = np.where(r > 0, (np.int64(1) << np.maximum(r - 1, 0)) << 31, 0).astype(np.int64)
        ybound = _y_bound(None if left.any() else acc_bound, m, total)
        wrap_after = ybound + abs(zp) > INT32_MAX
        if not fold:
            return RequantPlan("double", m, left if left.any() else None, np.full_like(m, base),
                               neg if neg.any() else None, off if off.any() else None, total,
                               b, zp, lo, hi, wrap_after=wrap_after, wrap_result=False)
        # Folded: t = x1*m0 + 2^30 < 0  <=>  x1 < thr with thr = -floor(2^30 / m0)
        # (m0 > 0; never for m0 = 0), i.e. acc < thr - bias: tested on acc itself.
        thr = np.where(m > 0, -((np.int64(1) << 30) // np.maximum(m, 1)), -(1 << 62)) - b
        add = b * m + base + off                   # exact mod 2^64; t itself fits int64
        zp_fold = _zp_foldable(acc_bound, m, base + off, total, zp) and not wrap_after
        if zp_fold:
            add = add + (np.int64(zp) << total)
        return RequantPlan("double", m, None, add, neg if neg.any() else None, None, total,
                           None, zp, lo, hi, wrap_after=wrap_after, wrap_result=False,
                           sign_thr=thr if neg.any() else None, zp_folded=zp_fold)
    total = 31 - s
    base = np.int64(1) << (total - 1)
    ybound = _y_bound(acc_bound, m, total)
    wrap_after, wrap_result = ybound + abs(zp) > INT32_MAX, ybound > INT32_MAX
    if not fold:
        return RequantPlan("single", m, None, base, None, None, total, b, zp, lo, hi,
                           wrap_after=wrap_after, wrap_result=wrap_result)
    add = b * m + base
    zp_fold = (_zp_foldable(acc_bound, m, base, total, zp) and not wrap_after
               and not wrap_result)
    if zp_fold:
        add = add + (np.int64(zp) << total)
    return RequantPlan("single", m, None, add, None, None, total, None, zp, lo, hi,
                       wrap_after=wrap_after, wrap_result=wrap_result, zp_folded=zp_fold)


def _zp_foldable(acc_bound: int, m0: np.ndarray, const: np.ndarray, total: np.ndarray,
                 zp: int) -> bool:
    """Whether ``|x1 * m0 + const| + |zp| * 2^total < 2^63`` for every channel and every
    ``|x1| <= acc_bound`` (Python ints: exact), so ``zp * 2^total`` can join the
    constant: ``floor((N + zp 2^S) / 2^S) = floor(N / 2^S) + zp``."""
    for mm, cc, tt in zip(m0.tolist(), np.broadcast_to(const, m0.shape).tolist(),
                          total.tolist()):
        if acc_bound * mm + abs(cc) + (1 << 31) + abs(zp) * (1 << tt) >= 1 << 63:
            return False
    return True


def _y_bound(acc_bound: int | None, m0: np.ndarray, total_shift: np.ndarray) -> int:
    """An upper bound of ``|y|`` before the zero point: ``|x| * m0 >> total_shift + 1``
    with ``|x| <= acc_bound + 1`` (or 2^31); exact in int64 (``2^31 * m0 < 2^62``)."""
    if m0.size == 0:
        return 0
    x = np.int64(1 << 31) if acc_bound is None else np.int64(acc_bound + 1)
    return int(((x * m0) >> total_shift).max()) + 1


def apply_plan(plan: RequantPlan, acc: np.ndarray, channel_axis: int = -1,
               serial: bool = False) -> np.ndarray:
    """Requantize ``acc`` with a plan.

    Args:
        plan: from :func:`plan_requant`.
        acc: accumulators holding integers: int32 / int64, or float32 (magnitudes
            <= 2^24) / float64 holding exact integers (the exact float GEMM's output).  Channel-last ``[..., C]``
            (``channel_axis=-1``) or channel-major ``[C, ...]`` (``channel_axis=0``).
            Channel-major is the fast layout when there are many values per channel:
            the per-channel constants are then constant along numpy's inner loop.
        channel_axis: ``-1`` or ``0``.
        serial: stay on the calling thread (inside a :mod:`pymodel.parallel` task);
            else blocks run on the thread pool.

    Returns:
        int8 of ``acc``'s shape when the clamp range lies in int8, else int32.
    """
    c = plan.channels
    out_dtype = np.int8 if -128 <= plan.act_min and plan.act_max <= 127 else np.int32
    if channel_axis == 0:
        flat = acc.reshape(c, -1)
        out = np.empty(flat.shape, out_dtype)
        rows = max(1, BLOCK // max(flat.shape[1], 1))
        blocks = [slice(s, min(s + rows, c)) for s in range(0, c, rows)]

        def major(sl: slice) -> None:
            out[sl] = _block(plan, flat[sl], sl, True)
        (_serial if serial else parallel.run_all)(major, blocks)
        return out.reshape(acc.shape)
    flat = acc.reshape(-1, c)
    out = np.empty(flat.shape, out_dtype)
    rows = max(1, BLOCK // max(c, 1))
    whole = slice(None)

    def minor(start: int) -> None:
        out[start:start + rows] = _block(plan, flat[start:start + rows], whole, False)
    (_serial if serial else parallel.run_all)(minor, range(0, flat.shape[0], rows))
    return out.reshape(acc.shape)


def _serial(fn: Any, items: Any) -> None:
    for it in items:
        fn(it)


def apply_plan_channels(plan: RequantPlan, acc: np.ndarray, channels: slice) -> np.ndarray:
    """Requantize the channel-major rows ``acc`` (``[c, M]``) of the plan's channels
    ``channels`` (a slice of ``0 .. C``), on the calling thread (safe inside a
    :mod:`pymodel.parallel` task).

    Returns:
        int8 (or int32, as :func:`apply_plan`) ``[c, M]``.
    """
    out_dtype = np.int8 if -128 <= plan.act_min and plan.act_max <= 127 else np.int32
    out = np.empty(acc.shape, out_dtype)
    rows = max(1, BLOCK // max(acc.shape[1], 1))
    base = channels.start or 0
    for s in range(0, acc.shape[0], rows):
        e = min(s + rows, acc.shape[0])
        out[s:e] = _block(plan, acc[s:e], slice(base + s, base + e), True)
    return out


def _block(p: RequantPlan, acc: np.ndarray, ch: slice, major: bool) -> np.ndarray:
    """Requantize one block; ``ch`` selects the block's channels, ``major``: channels
    on axis 0 (constants as ``[c, 1]`` columns) instead of the last axis."""
    def k(a: np.ndarray) -> np.ndarray:
        return a[ch, None] if major else a

    if p.bias is None:                              # folded: acc + bias is exact
        neg = None
        if p.sign_thr is not None:
            # float32 accumulators are exact integers of magnitude <= 2^24: compare in
            # float32 with the threshold clamped to +-(2^24 + 1) (same outcome, exact)
            thr = p.sign_thr_f32 if acc.dtype == np.float32 else p.sign_thr
            neg = acc < k(thr)
        t = acc.astype(np.int64)
        np.multiply(t, k(p.m0), out=t)
        t += k(p.add)
        if neg is not None:                         # (ufunc where= is far slower)
            t -= np.multiply(neg, k(p.neg), dtype=np.int64)
    else:
        t = acc.astype(np.int64)
        t += k(p.bias)                              # x1 = wrap32(acc + bias)
        t = t.astype(np.int32)
        if p.rounding == "double" and p.left is not None:
            t = (t.astype(np.int64) << k(p.left)).astype(np.int32)   # x2 = wrap32(x1 << l)
        t = np.multiply(t, k(p.m0))                 # int32 * int64 -> int64
        t += k(p.add)
        if p.neg is not None:                       # c = 2^(r-1) - [t < 0]
            s = t >> 63
            s &= k(p.neg)
            t -= s
        if p.off is not None:
            t += k(p.off)
    t >>= k(p.total_shift)
    if p.wrap_result:
        t = t.astype(np.int32).astype(np.int64)
    if p.zero_point and not p.zp_folded:
        t += p.zero_point
    if p.wrap_after:
        t = t.astype(np.int32)
    np.clip(t, p.act_min, p.act_max, out=t)
    return t


def requantize_fast(acc: Any, bias: Any, m0: Any, shift: Any, out_zero_point: Any,
                    act_min: Any, act_max: Any, rounding: str = "double") -> np.ndarray:
    """Same integers as :func:`pymodel.arithmetic.fixedpoint.requantize` (and, for
    ``rounding="single"``, TFLite's ``TFLITE_SINGLE_ROUNDING`` requantize).

    Args:
        acc: int32 ``[..., C]`` accumulators (any integer dtype with int32 values).
        bias, m0, shift: per-channel ``[C]`` (or scalars); ``m0`` in [0, 2^31), ``shift``
            in [-31, 30].
        out_zero_point: scalar in [-2^15, 2^15).
        act_min, act_max: scalar int32 clamp bounds.
        rounding: ``"double"`` or ``"single"``.

    Returns:
        int32 array of ``acc``'s shape.
    """
    a = validate.int_array("acc", acc, INT32_MIN, INT32_MAX)
    a2 = a.reshape(-1, 1) if a.ndim == 0 else a
    c = a2.shape[-1]
    bcast = [np.broadcast_to(np.asarray(v, np.int64), (c,)) for v in (bias, m0, shift)]
    plan = plan_requant(bcast[0], bcast[1], bcast[2], int(out_zero_point), int(act_min),
                        int(act_max), rounding)
    y = apply_plan(plan, a2).astype(np.int32)
    return y.reshape(a.shape)


# ----------------------------------------------------------------------------------------
# The float64 form: where a layer's accumulator bound makes every product exact
# ----------------------------------------------------------------------------------------

_F64_EXACT = 1 << 53


@dataclass(frozen=True)
class FloatPlan:
    """A layer's requantize as float64 multiply-adds, exact for its accumulator bound.

    ``y + 128 = clip(floor(u), act_min + 128, act_max + 128)`` with
    ``u = acc * alpha + const`` (double rounding: minus ``delta`` where ``u < tau``),
    every value exact (``docs/arithmetic.md`` 5.6); the clipped ``u`` is cast to uint8
    (truncation = floor on non-negative values) and its top bit flipped to int8.

    Attributes (float64 ``[C]``, or ``[reps * C]`` after :meth:`tiled`):
        alpha: ``m0 / 2^S`` (``S`` the total shift).
        const: ``(b * m0 + rounding offsets) / 2^S + zp + 128``.
        delta: ``2^-r`` per channel (double rounding, ``r > 0``), or ``None`` when no
            channel needs the ties-away-from-zero correction.
        tau: ``zp + 128.5``: ``u < tau`` is ``t < 0`` of the integer form.
        lo, hi: clip bounds ``act_min + 128`` and ``act_max + 128.5``.
    """

    alpha: np.ndarray
    const: np.ndarray
    delta: np.ndarray | None
    tau: float
    lo: float
    hi: float

    def tiled(self, reps: int) -> "FloatPlan":
        """The constants repeated ``reps`` times (a channel-last row of ``reps``
        pixels), for numpy inner loops without broadcasting."""
        def t(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else np.tile(a, reps)
        return FloatPlan(t(self.alpha), t(self.const), t(self.delta),  # type: ignore[arg-type]
                         self.tau, self.lo, self.hi)


def plan_float(bias: Any, m0: Any, shift: Any, out_zero_point: int, act_min: int,
               act_max: int, rounding: str, acc_bound: int, acc_max: int) -> FloatPlan | None:
    """The float64 form of a checked layer's requantize, or ``None`` where it is not
    provably exact (then use :func:`plan_requant`).

    Args:
        bias: int ``[C]``, the (unwrapped) folded bias ``b``.
        m0, shift, out_zero_point, act_min, act_max, rounding: as :func:`plan_requant`.
        acc_bound: proven bound ``|acc + b| <= acc_bound`` (the checked worst case).
        acc_max: proven bound ``|acc|`` of the accumulators the plan will see.

    Exact when, for every channel (Python ints, checked here): ``acc_max * m0 < 2^53``
    (``acc * alpha`` exact), the constant's numerator ``K`` has ``|K| < 2^53``, and
    ``acc_bound * m0 + |K - b * m0| < 2^53`` (the sum ``u`` exact); no int32 wrap of
    ``y`` or ``y + zp``; double rounding without left shifts; the clamp inside int8.
    """
    validate.one_of("rounding", rounding, ROUNDING_MODES)
    if not (-128 <= act_min <= act_max <= 127):
        return None
    b = [int(v) for v in np.asarray(bias, np.int64).reshape(-1)]
    m = [int(v) for v in np.asarray(m0, np.int64).reshape(-1)]
    s = [int(v) for v in np.asarray(shift, np.int64).reshape(-1)]
    zp = int(out_zero_point)
    alpha, const, delta = [], [], []
    for bb, mm, ss in zip(b, m, s):
        if rounding == "double":
            if ss > 0:
                return None
            r = -ss
            total = 31 + r
            rnd = (1 << 30) + ((1 << (30 + r)) if r > 0 else 0)
            delta.append(math.ldexp(1.0, -r) if r > 0 else 0.0)
        else:
            total = 31 - ss
            rnd = 1 << (total - 1)
        k_rest = rnd + (zp + 128) * (1 << total)
        k = bb * mm + k_rest
        if (acc_max * mm >= _F64_EXACT or abs(k) >= _F64_EXACT
                or acc_bound * mm + abs(k_rest) + (1 << 31) >= _F64_EXACT):
            return None
        if ((acc_bound * mm + rnd) >> total) + 1 + abs(zp) > INT32_MAX:
            return None                                   # y or y + zp could wrap
        alpha.append(math.ldexp(float(mm), -total))       # exact: mm < 2^31
        const.append(math.ldexp(float(k), -total))        # exact: |k| < 2^53
    need_delta = (rounding == "double" and any(delta) and act_min < zp)
    return FloatPlan(np.array(alpha), np.array(const),
                     np.array(delta) if need_delta else None, zp + 128.5,
                     float(act_min + 128), act_max + 128.5)


def apply_float(fp: FloatPlan, acc: np.ndarray, out: np.ndarray) -> None:
    """Requantize ``acc`` (int16 / int32 / float32 exact integers, ``[R, L]`` with the
    plan's constants along the last axis) into ``out`` (uint8 ``[R, L]`` or a view of
    ``[R, L]``'s leading part: ``y + 128``; the caller flips the top bit to int8)."""
    u = np.multiply(acc, fp.alpha, dtype=np.float64)
    u += fp.const
    if fp.delta is not None:                   # c = 2^(r-1) - [t < 0]: t < 0 <=> u < tau
        neg = u < fp.tau                       # (ufunc where= is far slower)
        u -= np.multiply(neg, fp.delta)
    np.clip(u, fp.lo, fp.hi, out=u)
    if out.shape == u.shape:
        np.copyto(out, u, casting="unsafe")
    else:
        np.copyto(out, u.reshape(out.shape[0], -1, out.shape[-1])[:, :out.shape[1]]
                  if out.ndim == 3 else u, casting="unsafe")
