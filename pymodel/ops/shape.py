"""TFLite int8 PAD / PADV2, CONCATENATION, RESHAPE and SQUEEZE: ops that move int8
values without arithmetic.

Sources (LiteRT ``tflite/kernels``): ``pad.cc`` (``EvalInt``), ``concatenation.cc``
(``Prepare`` / ``Eval``), ``reshape.cc``, ``squeeze.cc``.

* PAD fills with the **output zero point** (the quantized 0.0); PADV2 fills with its
  ``constant_values`` scalar, which must share the output's scale and zero point.
  Values are copied, never rescaled (the converter gives input and output the same
  quantization).
* CONCATENATION of int8 tensors: LiteRT's Prepare requires every input to have the
  output's scale and zero point (``TF_LITE_ENSURE_EQ``) -- no rescale happens; models
  whose inputs differ get an int8 -> int8 QUANTIZE before the concatenation from the
  converter.  (Only the uint8 kernel, ``ConcatenationWithScaling``, rescales in float.)
  A fused activation other than none is refused, as in LiteRT.
* RESHAPE / SQUEEZE change the shape only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from pymodel import validate
from pymodel.ops.tflite_common import INT8_MAX, INT8_MIN, int8_input, scale_f32, zero_point

__all__ = ["PadParams", "prepare_pad", "pad", "ConcatParams", "prepare_concatenation",
           "concatenation", "reshape", "squeeze"]


@dataclass(frozen=True)
class PadParams:
    """Attributes: pad_value -- the int8 value written into the padding."""

    pad_value: int


def prepare_pad(out_zero_point: int, constant_value: int | None = None,
                constant_scale: Any = None, constant_zero_point: int | None = None,
                out_scale: Any = None) -> PadParams:
    """PAD / PADV2's pad value (``pad.cc`` ``EvalInt``).

    Args:
        out_zero_point: output zero point (PAD's pad value).
        constant_value: PADV2's int8 ``constant_values`` scalar, or ``None`` for PAD.
        constant_scale, constant_zero_point, out_scale: PADV2 only: the constant
            tensor's quantization must equal the output's (LiteRT checks both).
    """
    zp = zero_point("out_zero_point", out_zero_point)
    if constant_value is None:
        return PadParams(pad_value=zp)
    v = validate.int_scalar("constant_value", constant_value, INT8_MIN, INT8_MAX)
    if constant_zero_point is None or constant_scale is None or out_scale is None:
        raise ValueError("constant_scale, constant_zero_point, out_scale: PADV2 needs the "
                         "constant's and the output's quantization (they must be equal)")
    czp = zero_point("constant_zero_point", constant_zero_point)
    cs, os_ = scale_f32("constant_scale", constant_scale), scale_f32("out_scale", out_scale)
    if czp != zp or cs != os_:
        raise ValueError(f"constant_values: scale {float(cs)!r} / zero point {czp} differ from "
                         f"the output's {float(os_)!r} / {zp}; TFLite's quantized PADV2 "
                         "requires them equal")
    return PadParams(pad_value=v)


def pad(x: Any, paddings: Any, params: PadParams) -> np.ndarray:
    """int8 PAD / PADV2.

    Args:
        x: int8 array, any rank.
        paddings: ``[[before, after], ...]``, one non-negative pair per dimension (the
            model's ``paddings`` tensor, shape ``[rank, 2]``).
        params: :class:`PadParams`.

    Returns:
        int8 array, dimension ``d`` of size ``before + x.shape[d] + after``.
    """
    x = int8_input("x", x)
    p = validate.int_array("paddings", paddings, 0, 1 << 24)
    if p.shape != (x.ndim, 2):
        raise ValueError(f"paddings: shape {p.shape}; need ({x.ndim}, 2), one [before, "
                         "after] pair per dimension of x")
    return np.pad(x, [tuple(int(v) for v in row) for row in p],
                  constant_values=np.int8(params.pad_value))


@dataclass(frozen=True)
class ConcatParams:
    """Attributes: zero_point -- the shared zero point of inputs and output (checked)."""

    zero_point: int


def prepare_concatenation(in_scales: Sequence[Any], in_zero_points: Sequence[int],
                          out_scale: Any, out_zero_point: int,
                          activation: str = "none") -> ConcatParams:
    """CONCATENATION's int8 Prepare: every input's float32 scale and zero point must equal
    the output's, and the fused activation must be none (LiteRT refuses otherwise).

    Args:
        in_scales, in_zero_points: per input.
        out_scale, out_zero_point: the output's.
        activation: the op's fused activation.
    """
    os_ = scale_f32("out_scale", out_scale)
    zp = zero_point("out_zero_point", out_zero_point)
    validate.one_of("activation", activation, ("none",))
    if len(in_scales) != len(in_zero_points) or not in_scales:
        raise ValueError(f"in_scales, in_zero_points: {len(in_scales)} scales and "
                         f"{len(in_zero_points)} zero points; need one of each per input")
    for i, (s, z) in enumerate(zip(in_scales, in_zero_points)):
        si = scale_f32(f"in_scales[{i}]", s)
        zi = zero_point(f"in_zero_points[{i}]", z)
        if si != os_ or zi != zp:
            raise ValueError(f"input {i}: scale {float(si)!r} / zero point {zi} differ from the "
                             f"output's {float(os_)!r} / {zp}; TFLite's int8 CONCATENATION "
                             "requires equal quantization (requantize the input first)")
    return ConcatParams(zero_point=zp)


def concatenation(xs: Sequence[Any], axis: int, params: ConcatParams | None = None
                  ) -> np.ndarray:
    """int8 CONCATENATION along ``axis`` (negative counts from the end): a copy.

    Args:
        xs: int8 arrays of equal rank, equal in every dimension but ``axis``.
        axis: the concatenation axis.
        params: :class:`ConcatParams` (documents that the quantization was checked).
    """
    arrs = [int8_input(f"xs[{i}]", x) for i, x in enumerate(xs)]
    if not arrs:
        raise ValueError("xs: no inputs; CONCATENATION needs at least one")
    nd = arrs[0].ndim
    a = validate.int_scalar("axis", axis, -nd, nd - 1) % nd
    for i, t in enumerate(arrs):
        if t.ndim != nd or any(t.shape[d] != arrs[0].shape[d] for d in range(nd) if d != a):
            raise ValueError(f"xs[{i}]: shape {t.shape} does not match xs[0] {arrs[0].shape} "
                             f"outside axis {a}")
    return np.concatenate(arrs, axis=a)


def reshape(x: Any, shape: Sequence[int]) -> np.ndarray:
    """RESHAPE: same values, new shape (one ``-1`` allowed)."""
    x = int8_input("x", x)
    try:
        return x.reshape(tuple(int(v) for v in shape))
    except ValueError:
        raise ValueError(f"shape: cannot reshape {x.shape} ({x.size} values) to "
                         f"{tuple(shape)}") from None


def squeeze(x: Any, axes: Sequence[int] | None = None) -> np.ndarray:
    """SQUEEZE: drop the size-1 dimensions ``axes`` (all size-1 dimensions if none given)."""
    x = int8_input("x", x)
    if not axes:
        return x.reshape([d for d in x.shape if d != 1])
    drop = {validate.int_scalar("axes", a, -x.ndim, x.ndim - 1) % x.ndim for a in axes}
    for d in drop:
        if x.shape[d] != 1:
            raise ValueError(f"axes: dimension {d} of {x.shape} has size {x.shape[d]}, not 1")
    return x.reshape([n for d, n in enumerate(x.shape) if d not in drop])
