"""Plain-Python scalar reference of TFLite's int8 reference kernels (Prepare and Eval),
written from the LiteRT sources one value at a time, sharing no code with ``pymodel``.

float32 arithmetic of the C++ source is emulated with ``numpy.float32`` scalars (every
operation on two float32 scalars rounds to float32, as C++ does); ``double`` with
Python floats; int32 with Python ints and explicit wraparound where C++ would wrap.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math

import numpy as np

import scalar_ref as ref

f32 = np.float32


def tflite_round(x: float) -> float:
    """std::round: half away from zero (exact for any float)."""
    a = abs(float(x))
    f = math.floor(a)
    r = f + (1.0 if a - f >= 0.5 else 0.0)
    return math.copysign(r, float(x))


def mbqm(x: int, m: int, shift: int, rounding: str = "double") -> int:
    """MultiplyByQuantizedMultiplier (int32 x), either build."""
    if rounding == "single":
        return ref.single_rounding_multiply(x, m, shift)
    return ref.multiply_by_quantized_multiplier(x, m, shift)


def quantize_multiplier(m: float, rounding: str = "double") -> tuple[int, int]:
    if rounding == "single":
        return ref.quantize_multiplier_single(m)
    return ref.quantize_multiplier(m)


def act_range(activation: str, scale: float, zp: int) -> tuple[int, int]:
    """kernel_util.cc CalculateActivationRangeQuantized (float32 division)."""
    def q(f: float) -> int:
        return zp + int(tflite_round(f32(f) / f32(scale)))
    if activation == "relu":
        return max(-128, q(0.0)), 127
    if activation == "relu6":
        return max(-128, q(0.0)), min(127, q(6.0))
    if activation == "relu_n1_to_1":
        return max(-128, q(-1.0)), min(127, q(1.0))
    return -128, 127


# ---------------------------------------------------------------------------- ADD / SUB
def add_prepare(s1, zp1, s2, zp2, so, zpo, activation="none", rounding="double"):
    s1, s2, so = f32(s1), f32(s2), f32(so)
    twice = float(f32(2 * max(s1, s2)))                # float32, then widened
    r1 = float(s1) / twice
    r2 = float(s2) / twice
    ro = twice / float(f32(f32(1 << 20) * so))
    lo, hi = act_range(activation, so, zpo)
    return dict(zp1=zp1, zp2=zp2, zpo=zpo, m1=quantize_multiplier(r1, rounding),
                m2=quantize_multiplier(r2, rounding), mo=quantize_multiplier(ro, rounding),
                lo=lo, hi=hi, rounding=rounding, real_out=ro)


def add_one(x1: int, x2: int, p: dict, sign: int = 1) -> int:
    r = p["rounding"]
    v1 = (x1 - p["zp1"]) * (1 << 20)
    v2 = (x2 - p["zp2"]) * (1 << 20)
    s1 = mbqm(v1, *p["m1"], r)
    s2 = mbqm(v2, *p["m2"], r)
    raw = s1 + sign * s2
    out = mbqm(raw, *p["mo"], r) + p["zpo"]
    return min(max(out, p["lo"]), p["hi"])


# ---------------------------------------------------------------------------------- MUL
def mul_prepare(s1, zp1, s2, zp2, so, zpo, activation="none", rounding="double"):
    real = float(f32(f32(f32(s1) * f32(s2)) / f32(so)))
    lo, hi = act_range(activation, so, zpo)
    return dict(zp1=zp1, zp2=zp2, zpo=zpo, m=quantize_multiplier(real, rounding), lo=lo,
                hi=hi, rounding=rounding)


def mul_one(x1: int, x2: int, p: dict) -> int:
    out = p["zpo"] + mbqm((x1 - p["zp1"]) * (x2 - p["zp2"]), *p["m"], p["rounding"])
    return min(max(out, p["lo"]), p["hi"])


# --------------------------------------------------------------------------------- MEAN
def mean_prepare(s_in, zp_in, s_out, zp_out, rounding="double"):
    real = float(f32(s_in)) / float(f32(s_out))
    return dict(zi=zp_in, zo=zp_out, m=quantize_multiplier(real, rounding), rounding=rounding)


def clz64(v: int) -> int:
    return 64 - v.bit_length()


def mean_one(values: list[int], p: dict) -> int:
    """reference_ops::QuantizedMeanOrSum for one output element (values: its inputs)."""
    n = len(values)
    temp_sum = ref.wrap32(sum(values))
    m, shift = p["m"]
    k = 63 - clz64(n)
    k = min(k, 32)
    k = min(k, 31 + shift)
    m2 = ref.wrap32((m << k) // n)         # static_cast<int32_t>
    shift2 = shift - k
    shifted = ref.wrap32(temp_sum - p["zi"] * n)
    out = mbqm(shifted, m2, shift2, p["rounding"]) + p["zo"]
    return min(max(out, -128), 127)


# ------------------------------------------------------------ QUANTIZE / DEQUANTIZE
def quantize_one(x: float, scale: float, zp: int) -> int:
    """AffineQuantize: (int32) TfLiteRound(val / (float) scale) + zp, clamped;
    an out-of-int32 quotient converts to INT32_MIN (x86-64 cvttss2si)."""
    q = f32(f32(x) / f32(scale))
    r = tflite_round(q)
    v = int(r) if -2.0**31 <= r < 2.0**31 else -(2**31)
    return min(max(ref.wrap32(v + zp), -128), 127)


def requantize_prepare(s_in, zp_in, s_out, zp_out, rounding="double"):
    return dict(zi=zp_in, zo=zp_out, m=quantize_multiplier(float(f32(s_in)) / float(f32(s_out)),
                                                           rounding), rounding=rounding)


def requantize_one(x: int, p: dict) -> int:
    out = mbqm(x - p["zi"], *p["m"], p["rounding"]) + p["zo"]
    return min(max(out, -128), 127)


def dequantize_one(x: int, scale: float, zp: int) -> np.float32:
    return f32(float(f32(scale)) * (x - zp))
