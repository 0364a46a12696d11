"""TFLite int8 MEAN: the reference kernel's integer arithmetic, bit-exact.

Sources (LiteRT ``tflite/kernels``): ``reduce.cc`` (``PrepareMeanOrSum``,
``EvalQuantizedMean``) and ``internal/reference/reduce.h`` (``QuantizedMeanOrSum``).
The reference kernel handles every case -- any axes, ``keep_dims`` or not, input and
output quantization equal or different -- with one integer path:

1. ``sum`` over the reduced axes of the raw int8 values, in int32 (wrapping);
2. ``n`` = number of reduced elements; the Prepare-time multiplier
   ``QuantizeMultiplier(double(s_in) / double(s_out)) = (m, shift)`` absorbs ``1 / n``::

       k      = min(floor(log2 n), 32, 31 + shift)
       m'     = (int64(m) << k) / n                     (integer division)
       shift' = shift - k

3. ``y = clamp(MultiplyByQuantizedMultiplier(wrap32(sum - zp_in * n), m', shift')
   + zp_out, -128, 127)`` (no fused activation).

(LiteRT's *optimized* kernel for 4-D ``keep_dims`` spatial means,
``optimized_integer_ops::Mean``, computes its own multiplier from the float scales; the
reference kernel above is what this model reproduces.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pymodel import validate
from pymodel.arithmetic.fixedpoint import multiply_by_quantized_multiplier, wrap_int32
from pymodel.ops.tflite_common import (INT8_MAX, INT8_MIN, check_rounding, int8_input,
                                       multiplier, scale_f32, zero_point)

__all__ = ["MeanParams", "prepare_mean", "mean", "resolve_axes", "mean_multiplier"]


@dataclass(frozen=True)
class MeanParams:
    """Integer parameters of an int8 MEAN.

    Attributes:
        in_zero_point, out_zero_point: int8 zero points.
        multiplier, shift: ``QuantizeMultiplier(s_in / s_out)`` (before the ``1/n`` fold).
        rounding: ``"double"`` or ``"single"``.
    """

    in_zero_point: int
    out_zero_point: int
    multiplier: int
    shift: int
    rounding: str = "double"


def prepare_mean(in_scale: Any, in_zero_point: int, out_scale: Any, out_zero_point: int,
                 rounding: str = "double") -> MeanParams:
    """MEAN's Prepare: ``QuantizeMultiplier(double(s_in) / double(s_out))``.

    Args:
        in_scale, out_scale: the tensors' float32 scales (may differ).
        in_zero_point, out_zero_point: int8 zero points.
        rounding: ``"double"`` or ``"single"``.
    """
    s_in = scale_f32("in_scale", in_scale)
    s_out = scale_f32("out_scale", out_scale)
    rounding = check_rounding(rounding)
    m, sh = multiplier("mean multiplier", float(s_in) / float(s_out), rounding)
    return MeanParams(in_zero_point=zero_point("in_zero_point", in_zero_point),
                      out_zero_point=zero_point("out_zero_point", out_zero_point),
                      multiplier=m, shift=sh, rounding=rounding)


def resolve_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    """TFLite's ``ResolveAxis``: negative axes count from the end, duplicates dropped.

    Args:
        axis: int or sequence of ints in ``[-ndim, ndim)``.
        ndim: rank of the input.

    Returns:
        Sorted tuple of distinct non-negative axes.
    """
    axes = [axis] if np.ndim(axis) == 0 else list(axis)
    out = set()
    for a in axes:
        v = validate.int_scalar("axis", int(a) if isinstance(a, np.integer) else a,
                                -ndim, ndim - 1)
        out.add(v + ndim if v < 0 else v)
    return tuple(sorted(out))


def mean_multiplier(m: int, shift: int, n: int) -> tuple[int, int]:
    """The kernel's fold of ``1 / n`` into ``(m, shift)`` (``QuantizedMeanOrSum``).

    Returns:
        ``(m', shift')`` with ``k = min(floor(log2 n), 32, 31 + shift)``,
        ``m' = (m << k) // n``, ``shift' = shift - k``.
    """
    k = min(int(n).bit_length() - 1, 32, 31 + int(shift))
    return int((int(m) << k) // int(n)), int(shift) - k


def mean(x: Any, axis: Any, params: MeanParams, keep_dims: bool = False) -> np.ndarray:
    """int8 MEAN over ``axis`` (TFLite reference ``QuantizedMeanOrSum``, ``compute_sum``
    false).

    Args:
        x: int8 array, any rank (a spatial mean of NHWC is ``axis=(1, 2)``).
        axis: int or sequence of ints (negative allowed, duplicates ignored).
        params: :class:`MeanParams` (from :func:`prepare_mean`).
        keep_dims: keep the reduced axes as size 1.

    Returns:
        int8 array: ``x``'s shape without the reduced axes (or with them as 1).
    """
    if not isinstance(params, MeanParams):
        raise ValueError(f"params: expected MeanParams; got {type(params).__name__}")
    x = int8_input("x", x)
    axes = resolve_axes(axis, x.ndim)
    n = int(np.prod([x.shape[a] for a in axes], dtype=np.int64)) if axes else 1
    total = wrap_int32(x.astype(np.int64).sum(axis=axes, keepdims=keep_dims))
    m, sh = mean_multiplier(params.multiplier, params.shift, n)
    shifted = wrap_int32(total - params.in_zero_point * n)
    y = multiply_by_quantized_multiplier(shifted, m, sh, check_rounding(params.rounding))
    y = np.asarray(y, np.int64) + params.out_zero_point
    return np.clip(y, INT8_MIN, INT8_MAX).astype(np.int8)
