"""TFLite int8 ADD, SUB and MUL: the reference kernels' integer arithmetic, bit-exact.

Sources (LiteRT ``tflite/kernels``): ``add.cc`` / ``sub.cc`` / ``mul.cc`` (Prepare),
``internal/reference/integer_ops/add.h`` (``AddFunc``), ``reference/sub.h``
(``SubElementwise`` / ``BroadcastQuantSubSlow``), ``reference/integer_ops/mul.h``
(``MulElementwise`` / ``BroadcastMul6DSlow``).  Each op has a frozen dataclass of its
integer parameters, a ``prepare_<op>`` computing them from the model's float32 scales as
the kernel's Prepare does, and the op itself.

Broadcasting: TFLite's ``BroadcastBinaryOpSimple`` (the 6-D "slow" broadcast the reference
kernels use) pads the shorter shape with leading 1s and stretches size-1 dimensions --
numpy's rule; shapes that numpy cannot broadcast are refused.

``rounding`` selects the build of ``MultiplyByQuantizedMultiplier`` (``"double"``:
gemmlowp, TFLite's default; ``"single"``: ``TFLITE_SINGLE_ROUNDING``), see
``docs/arithmetic.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pymodel import validate
from pymodel.arithmetic.fixedpoint import multiply_by_quantized_multiplier
from pymodel.ops.tflite_common import (INT8_MAX, INT8_MIN, activation_range, check_act,
                                       check_rounding, int8_input, multiplier, scale_f32,
                                       zero_point)

ADD_LEFT_SHIFT = 20   # TFLite: 20 for int8 / uint8 (15 for int16)

__all__ = ["ADD_LEFT_SHIFT", "AddParams", "MulParams", "prepare_add", "prepare_sub",
           "prepare_mul", "add", "sub", "mul", "broadcast_pair"]


@dataclass(frozen=True)
class AddParams:
    """Integer parameters of an int8 ADD or SUB (TFLite ``ArithmeticParams``).

    Attributes:
        in1_zero_point, in2_zero_point, out_zero_point: int8 zero points (TFLite keeps
            ``input*_offset = -zp`` and ``output_offset = zp``).
        left_shift: 20 for int8.
        in1_multiplier, in1_shift, in2_multiplier, in2_shift: each input's rescale,
            ``m0`` in [2^30, 2^31), ``shift <= 0``.
        out_multiplier, out_shift: the output rescale (SUB: ``shift`` may be > 0).
        act_min, act_max: int8 clamp from the fused activation.
        rounding: ``"double"`` or ``"single"``.
    """

    in1_zero_point: int
    in2_zero_point: int
    out_zero_point: int
    left_shift: int
    in1_multiplier: int
    in1_shift: int
    in2_multiplier: int
    in2_shift: int
    out_multiplier: int
    out_shift: int
    act_min: int = INT8_MIN
    act_max: int = INT8_MAX
    rounding: str = "double"


@dataclass(frozen=True)
class MulParams:
    """Integer parameters of an int8 MUL.

    Attributes:
        in1_zero_point, in2_zero_point, out_zero_point: int8 zero points.
        out_multiplier, out_shift: ``QuantizeMultiplier(s1 * s2 / s_out)`` (any shift).
        act_min, act_max: int8 clamp from the fused activation.
        rounding: ``"double"`` or ``"single"``.
    """

    in1_zero_point: int
    in2_zero_point: int
    out_zero_point: int
    out_multiplier: int
    out_shift: int
    act_min: int = INT8_MIN
    act_max: int = INT8_MAX
    rounding: str = "double"


def _prepare_add_sub(op: str, in1_scale: Any, in1_zero_point: int, in2_scale: Any,
                     in2_zero_point: int, out_scale: Any, out_zero_point: int,
                     activation: str, rounding: str) -> AddParams:
    s1 = scale_f32("in1_scale", in1_scale)
    s2 = scale_f32("in2_scale", in2_scale)
    so = scale_f32("out_scale", out_scale)
    rounding = check_rounding(rounding)
    # twice_max_input_scale = 2 * std::max(float, float): a float32 doubling (exact),
    # widened to double; the quotients are double divisions.
    twice_max = float(np.float32(2) * max(s1, s2))
    real1 = float(s1) / twice_max
    real2 = float(s2) / twice_max
    # (1 << left_shift) * output->params.scale: int * float, a float32 product (exact
    # scaling by 2^20)
    real_out = twice_max / float(np.float32(1 << ADD_LEFT_SHIFT) * so)
    m1, sh1 = multiplier("in1 multiplier", real1, rounding, "smaller_than_one")
    m2, sh2 = multiplier("in2 multiplier", real2, rounding, "smaller_than_one")
    if op == "sub" and real_out > 1.0:
        # sub.cc: QuantizeMultiplierGreaterThanOne; the double-rounding kernel then calls
        # RoundingDivideByPOT with a negative exponent (undefined), so only single
        # rounding computes it.
        if rounding == "double":
            raise ValueError(f"out_scale: {float(so)!r} gives SUB an output multiplier "
                             f"{real_out!r} > 1, which TFLite's double-rounding kernel "
                             "cannot apply (RoundingDivideByPOT with a negative exponent)")
        mo, sho = multiplier("out multiplier", real_out, rounding, "greater_than_one")
    else:
        mo, sho = multiplier("out multiplier", real_out, rounding, "smaller_than_one")
    lo, hi = activation_range(activation, so, out_zero_point)
    return AddParams(in1_zero_point=zero_point("in1_zero_point", in1_zero_point),
                     in2_zero_point=zero_point("in2_zero_point", in2_zero_point),
                     out_zero_point=zero_point("out_zero_point", out_zero_point),
                     left_shift=ADD_LEFT_SHIFT, in1_multiplier=m1, in1_shift=sh1,
                     in2_multiplier=m2, in2_shift=sh2, out_multiplier=mo, out_shift=sho,
                     act_min=lo, act_max=hi, rounding=rounding)


def prepare_add(in1_scale: Any, in1_zero_point: int, in2_scale: Any, in2_zero_point: int,
                out_scale: Any, out_zero_point: int, activation: str = "none",
                rounding: str = "double") -> AddParams:
    """ADD's Prepare (``add.cc``, int8 general path).

    ``twice_max = 2 * max(s1, s2)`` (float32, exact), then in double:
    ``real_in1 = s1 / twice_max``, ``real_in2 = s2 / twice_max``,
    ``real_out = twice_max / (2^20 * s_out)``; each through
    ``QuantizeMultiplierSmallerThanOneExp`` (all three must lie in (0, 1)).

    Args:
        in1_scale, in2_scale, out_scale: the tensors' float32 scales.
        in1_zero_point, in2_zero_point, out_zero_point: int8 zero points.
        activation: fused activation, ``"none"``, ``"relu"``, ``"relu6"``,
            ``"relu_n1_to_1"``.
        rounding: ``"double"`` or ``"single"``.
    """
    return _prepare_add_sub("add", in1_scale, in1_zero_point, in2_scale, in2_zero_point,
                            out_scale, out_zero_point, activation, rounding)


def prepare_sub(in1_scale: Any, in1_zero_point: int, in2_scale: Any, in2_zero_point: int,
                out_scale: Any, out_zero_point: int, activation: str = "none",
                rounding: str = "double") -> AddParams:
    """SUB's Prepare (``sub.cc``): as :func:`prepare_add`, except that an output
    multiplier above 1 goes through ``QuantizeMultiplierGreaterThanOne`` (single rounding
    only; see the note in the code)."""
    return _prepare_add_sub("sub", in1_scale, in1_zero_point, in2_scale, in2_zero_point,
                            out_scale, out_zero_point, activation, rounding)


def prepare_mul(in1_scale: Any, in1_zero_point: int, in2_scale: Any, in2_zero_point: int,
                out_scale: Any, out_zero_point: int, activation: str = "none",
                rounding: str = "double") -> MulParams:
    """MUL's Prepare (``mul.cc``): ``real = s1 * s2 / s_out`` evaluated **in float32**
    (``input1->params.scale * input2->params.scale / output->params.scale``: two float
    operations, each rounded to float32), widened to double, ``QuantizeMultiplier``.

    Args: as :func:`prepare_add`.
    """
    s1 = scale_f32("in1_scale", in1_scale)
    s2 = scale_f32("in2_scale", in2_scale)
    so = scale_f32("out_scale", out_scale)
    rounding = check_rounding(rounding)
    with np.errstate(over="ignore", under="ignore"):
        real = float(np.float32(np.float32(s1 * s2) / so))
    if not np.isfinite(real) or real <= 0.0:
        raise ValueError(f"in1_scale, in2_scale, out_scale: {float(s1)!r} * {float(s2)!r} / "
                         f"{float(so)!r} is {real!r} in float32; need a finite positive "
                         "multiplier")
    m, sh = multiplier("out multiplier", real, rounding)
    lo, hi = activation_range(activation, so, out_zero_point)
    return MulParams(in1_zero_point=zero_point("in1_zero_point", in1_zero_point),
                     in2_zero_point=zero_point("in2_zero_point", in2_zero_point),
                     out_zero_point=zero_point("out_zero_point", out_zero_point),
                     out_multiplier=m, out_shift=sh, act_min=lo, act_max=hi,
                     rounding=rounding)


def broadcast_pair(x1: np.ndarray, x2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both operands broadcast to the output shape (numpy's rule = TFLite's)."""
    try:
        return tuple(np.broadcast_arrays(x1, x2))  # type: ignore[return-value]
    except ValueError:
        raise ValueError(f"x1, x2: shapes {x1.shape} and {x2.shape} do not broadcast "
                         "(TFLite pads the shorter shape with leading 1s and stretches "
                         "size-1 dimensions)") from None


def _operands(x1: Any, x2: Any) -> tuple[np.ndarray, np.ndarray]:
    a, b = broadcast_pair(int8_input("x1", x1), int8_input("x2", x2))
    return a.astype(np.int64), b.astype(np.int64)


def _check_params(p: Any, cls: type) -> None:
    if not isinstance(p, cls):
        raise ValueError(f"params: expected {cls.__name__}; got {type(p).__name__}")
    check_rounding(p.rounding)
    check_act(p.act_min, p.act_max)


def _add_sub(x1: Any, x2: Any, p: AddParams, sign: int) -> np.ndarray:
    _check_params(p, AddParams)
    a, b = _operands(x1, x2)
    validate.int_scalar("left_shift", p.left_shift, 0, 22)
    sh1 = (a - p.in1_zero_point) * (1 << p.left_shift)          # |.| <= 255 * 2^20
    sh2 = (b - p.in2_zero_point) * (1 << p.left_shift)
    sc1 = multiply_by_quantized_multiplier(sh1, p.in1_multiplier, p.in1_shift, p.rounding)
    sc2 = multiply_by_quantized_multiplier(sh2, p.in2_multiplier, p.in2_shift, p.rounding)
    raw = sc1.astype(np.int64) + sign * sc2.astype(np.int64)   # no overflow: |sc| < 2^28
    out = multiply_by_quantized_multiplier(raw, p.out_multiplier, p.out_shift, p.rounding)
    out = out.astype(np.int64) + p.out_zero_point
    return np.clip(out, p.act_min, p.act_max).astype(np.int8)


def add(x1: Any, x2: Any, params: AddParams) -> np.ndarray:
    """int8 ADD, TFLite's ``AddFunc`` element by element (broadcast)::

        v_i    = (x_i - zp_i) * 2^left_shift                  int32 (|v| <= 255 * 2^20)
        s_i    = MultiplyByQuantizedMultiplier(v_i, m_i, shift_i)       (shift_i <= 0)
        y      = clamp(MultiplyByQuantizedMultiplier(s_1 + s_2, m_out, shift_out)
                       + zp_out, act_min, act_max)

    Args:
        x1, x2: int8 arrays of broadcastable shapes.
        params: :class:`AddParams` (from :func:`prepare_add`).

    Returns:
        int8 array of the broadcast shape.
    """
    return _add_sub(x1, x2, params, +1)


def sub(x1: Any, x2: Any, params: AddParams) -> np.ndarray:
    """int8 SUB (``SubElementwise`` / ``BroadcastQuantSubSlow``): as :func:`add` with
    ``s_1 - s_2``.

    Args:
        x1, x2: int8 arrays of broadcastable shapes.
        params: :class:`AddParams` (from :func:`prepare_sub`).
    """
    return _add_sub(x1, x2, params, -1)


def mul(x1: Any, x2: Any, params: MulParams) -> np.ndarray:
    """int8 MUL (``MulElementwise`` / ``BroadcastMul6DSlow``), element by element::

        y = clamp(zp_out + MultiplyByQuantizedMultiplier((x1 - zp1) * (x2 - zp2), m, shift),
                  act_min, act_max)

    The product is an int32 (``|.| <= 256 * 256``).  A constant operand (MUL by a
    weight tensor) is just an int8 array with its own zero point.

    Args:
        x1, x2: int8 arrays of broadcastable shapes.
        params: :class:`MulParams` (from :func:`prepare_mul`).
    """
    _check_params(params, MulParams)
    a, b = _operands(x1, x2)
    prod = (a - params.in1_zero_point) * (b - params.in2_zero_point)
    out = multiply_by_quantized_multiplier(prod, params.out_multiplier, params.out_shift,
                                           params.rounding).astype(np.int64)
    return np.clip(out + params.out_zero_point, params.act_min, params.act_max).astype(np.int8)
