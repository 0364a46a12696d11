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


# ------------------------------------------------------------------- gemmlowp (scalar)
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def g_srdhm(a: int, b: int) -> int:
    return ref.srdhm(a, b)


def g_srdhm16(a: int, b: int) -> int:
    if a == b == -32768:
        return 32767
    ab = a * b
    nudge = (1 << 14) if ab >= 0 else 1 - (1 << 14)
    v = ref.c_div(ab + nudge, 1 << 15)
    return ((v + 32768) % 65536) - 32768


def g_rdbp(x: int, e: int) -> int:
    return ref.rounding_divide_by_pot(x, e)


def g_srmpot(x: int, exponent: int, bits: int = 32) -> int:
    """SaturatingRoundingMultiplyByPOT<exponent>."""
    if exponent == 0:
        return x
    if exponent < 0:
        return g_rdbp(x, -exponent)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    threshold = (1 << (bits - 1 - exponent)) - 1
    if x > threshold:
        return hi
    if x < -threshold:
        return lo
    return min(max(x * (1 << exponent), lo), hi)


def g_add(a: int, b: int) -> int:
    return ref.wrap32(a + b)


def g_exp_quarter(a: int) -> int:
    """exp_on_interval_between_negative_one_quarter_and_0_excl (Q0.31)."""
    constant_term, one_third = 1895147668, 715827883
    x = g_add(a, 1 << 28)
    x2 = g_srdhm(x, x)
    x3 = g_srdhm(x2, x)
    x4 = g_srdhm(x2, x2)
    x4_over_4 = g_srmpot(x4, -2)
    t = g_srmpot(g_add(g_srdhm(g_add(x4_over_4, x3), one_third), x2), -1)
    return g_add(constant_term, g_srdhm(constant_term, g_add(x, t)))


def g_exp_neg(a: int, integer_bits: int) -> int:
    """exp_on_negative_values(FixedPoint<int32, integer_bits>) -> Q0.31."""
    frac = 31 - integer_bits
    quarter = 1 << (frac - 2)
    a_mod = g_add(a & (quarter - 1), -quarter)
    result = g_exp_quarter(g_srmpot(a_mod, integer_bits))
    remainder = g_add(a_mod, -a)
    for e, mult in ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
                    (2, 39332535), (3, 720401), (4, 242)):
        if integer_bits > e and remainder & (1 << (frac + e)):
            result = g_srdhm(result, mult)
    if integer_bits > 5 and a < -(1 << (36 - integer_bits)):
        result = 0
    return INT32_MAX if a == 0 else result


def g_one_over_one_plus_x(a: int) -> int:
    s = a + INT32_MAX
    half = ref.c_div(s + (1 if s >= 0 else -1), 2)
    x = g_add(1515870810, g_srdhm(half, -1010580540))
    for _ in range(3):
        hx = g_srdhm(half, x)
        one_minus = g_add(1 << 29, -hx)
        x = g_add(x, g_srmpot(g_srdhm(x, one_minus), 2))
    return g_srmpot(x, 1)


# ------------------------------------------------------------------------- activations
def relu_prepare(kind, s_in, zi, s_out, zo, rounding="double"):
    lo_f, hi_f = {"relu": (0.0, None), "relu6": (0.0, 6.0), "relu_n1_to_1": (-1.0, 1.0),
                  "relu_0_to_1": (0.0, 1.0)}[kind]
    real = float(f32(f32(s_in) / f32(s_out)))
    lo = max(-128, zo + int(tflite_round(f32(lo_f) / f32(s_out))))
    hi = 127 if hi_f is None else min(127, zo + int(tflite_round(f32(hi_f) / f32(s_out))))
    return dict(zi=zi, zo=zo, m=quantize_multiplier(real, rounding), lo=lo, hi=hi,
                rounding=rounding)


def relu_one(x: int, p: dict) -> int:
    out = p["zo"] + mbqm(x - p["zi"], *p["m"], p["rounding"])
    return min(max(out, p["lo"]), p["hi"])


def leaky_prepare(alpha, s_in, zi, s_out, zo, rounding="double"):
    ra = float(f32(f32(f32(s_in) * f32(alpha)) / f32(s_out)))
    ma, sa = quantize_multiplier(abs(ra), rounding)
    return dict(zi=zi, zo=zo, a=(-ma if ra < 0 else ma, sa),
                i=quantize_multiplier(float(f32(f32(s_in) / f32(s_out))), rounding),
                rounding=rounding)


def leaky_one(x: int, p: dict) -> int:
    v = x - p["zi"]
    r = p["rounding"]
    if v >= 0:
        out = p["zo"] + mbqm(v, *p["i"], r)
    else:
        m, s = p["a"]
        t = mbqm(v, abs(m), s, r)
        out = p["zo"] + (-t if m < 0 else t)
    return min(max(out, -128), 127)


_libm = ctypes.CDLL(ctypes.util.find_library("m"))
_libm.expf.restype = ctypes.c_float
_libm.expf.argtypes = [ctypes.c_float]


def logistic_lut(s_in, zi, s_out, zo) -> list[int]:
    """LUTPopulateInt8 with 1.0f / (1.0f + std::exp(-x)), float32 throughout."""
    inv = f32(f32(1) / f32(s_out))
    out = []
    for q in range(-128, 128):
        xr = f32(f32(s_in) * f32(q - zi))
        yr = f32(f32(1) / f32(f32(1) + f32(_libm.expf(float(-xr)))))
        resc = f32(tflite_round(f32(yr * inv)))
        quant = int(f32(resc + f32(zo)))
        out.append(min(max(quant, -128), 127))
    return out


def hard_swish_prepare(s_in, zi, s_out, zo):
    hires = f32(f32(f32(1.0) / f32(128.0)) * f32(s_in))
    mo, eo = ref.quantize_multiplier(float(f32(hires / f32(s_out))))
    mr, er = ref.quantize_multiplier(float(f32(hires / f32(f32(3.0) / f32(32768.0)))))

    def down(m):
        return 32767 if m >= 2**31 - 1 - 2**15 else (m + 2**15) >> 16
    return dict(zi=zi, zo=zo, mo=down(mo), eo=eo, mr=down(mr), er=er)


def hard_swish_one(x: int, p: dict) -> int:
    def sat16(v):
        return min(max(v, -32768), 32767)
    v = x - p["zi"]
    hires = v * 128
    pre = g_srdhm16(hires, p["mo"])
    r = hires
    if p["er"] > 0:
        r = sat16(r * (1 << (p["er"] - 1)))
    r = g_srdhm16(r, p["mr"])
    if p["er"] > 0:
        r = sat16(r * 2)
    if p["er"] < 0:
        r = g_rdbp(r, -p["er"])
    r = (r + (1 << 15)) >> 1
    if r == pre == -32768:
        sd = 32767
    else:
        sd = ref.c_div(r * pre, 1 << 15)
    out = g_rdbp(sd, -p["eo"])
    out = ((out + p["zo"] + 32768) % 65536) - 32768
    return min(max(out, -128), 127)


def softmax_prepare(beta, s_in, rounding="double"):
    max_real = (2.0**30 - 1) if rounding == "single" else (2.0**31 - 1)
    real = min(float(f32(beta)) * float(f32(s_in)) * float(1 << 26), max_real)
    m, ls = quantize_multiplier(real, rounding)
    radius = math.floor(1.0 * 31 * (1 << 26) / (1 << ls))
    return dict(m=m, ls=ls, diff_min=-radius, rounding=rounding)


def softmax_row(row: list[int], p: dict) -> list[int]:
    """reference_ops::Softmax for one row (int8 in, int8 out)."""
    mx = max(row)

    def scaled(v):
        d = v - mx
        if p["rounding"] == "single":
            return ref.single_rounding_multiply(d, p["m"], p["ls"])
        return g_srdhm(ref.wrap32(d * (1 << p["ls"])), p["m"])
    total = 0
    for v in row:
        if v - mx >= p["diff_min"]:
            total = ref.wrap32(total + g_srmpot(g_exp_neg(scaled(v), 5), -12))
    h = 32 - (total & 0xFFFFFFFF).bit_length()
    nbou = 12 - h
    shifted = ref.wrap32((((total & 0xFFFFFFFF) << h) & 0xFFFFFFFF) - (1 << 31))
    recip = g_one_over_one_plus_x(shifted)
    exponent = nbou + 31 - 8
    assert 0 <= exponent <= 31
    out = []
    for v in row:
        if v - mx >= p["diff_min"]:
            u = g_rdbp(g_srdhm(recip, g_exp_neg(scaled(v), 5)), exponent) - 128
            out.append(min(max(u, -128), 127))
        else:
            out.append(-128)
    return out


# ------------------------------------------------------- conv / FC Prepare, float FC
def conv_multipliers(s_in, w_scales, s_out, per_tensor_fc=False, rounding="double"):
    """PopulateConvolutionQuantizationParams (double, per channel) or, for a per-tensor
    FULLY_CONNECTED, GetQuantizedConvolutionMultipler (float32 product)."""
    if per_tensor_fc:
        return [quantize_multiplier(float(f32(f32(s_in) * f32(w_scales[0]))) / float(f32(s_out)),
                                    rounding)]
    return [quantize_multiplier(float(f32(s_in)) * float(f32(w)) / float(f32(s_out)), rounding)
            for w in w_scales]


def fc_float_one(xrow, wrow, zp_in, bias, s_in, s_w, s_out, zp_out, lo, hi) -> int:
    """reference_integer_ops::FullyConnected(PerChannel) with float scales."""
    acc = ref.wrap32(sum(int(w) * (int(x) - zp_in) for x, w in zip(xrow, wrow)) + bias)
    eff = float(f32(s_in)) * float(f32(s_w)) / float(f32(s_out))
    v = int(tflite_round(float(acc) * eff)) + zp_out
    return min(max(v, lo), hi)
