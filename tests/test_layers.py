"""Quantized layers against direct loops over TFLite's reference formulas.

The loop references below are written from TFLite's ``reference_integer_ops`` (skip
padded taps, subtract the input zero point per tap, add the bias, requantize) with the
scalar reference of the fixed-point arithmetic -- they share no code with
``pymodel.ops.layers`` (no im2col, no zero-point folding, no GEMM).
"""

from __future__ import annotations

import numpy as np
import pytest

import scalar_ref as ref
from pymodel.ops import layers as L
from pymodel.arithmetic.qparams import compute_qparams, dequantize, quantize, tensor_range


def pads_for(padding, h, w, kh, kw, sh, sw):
    """TFLite ComputePaddingHeightWidth (same / valid) or explicit pads."""
    if padding == "valid":
        return (0, 0), (0, 0), (h - kh) // sh + 1, (w - kw) // sw + 1
    if padding == "same":
        out = []
        for size, k, s in ((h, kh, sh), (w, kw, sw)):
            o = (size + s - 1) // s
            total = max((o - 1) * s + k - size, 0)
            out.append(((total // 2, total - total // 2), o))
        return out[0][0], out[1][0], out[0][1], out[1][1]
    (pt, pb), (pl, pr) = ((padding, padding), (padding, padding)) if isinstance(padding, int) \
        else padding
    return (pt, pb), (pl, pr), (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1


def requant_ref(acc: int, c: int, rq: L.RequantParams) -> int:
    return ref.requantize(acc, int(rq.bias[c]), int(rq.m0[c]), int(rq.shift[c]),
                          rq.out_zero_point, rq.act_min, rq.act_max)


def conv_ref(x, w, zp, rq, stride, padding, depthwise=False):
    n_, h, wd, c_in = x.shape
    _, kh, kw, _ = w.shape
    sh, sw = stride
    (pt, _), (pl, _), oh, ow = pads_for(padding, h, wd, kh, kw, sh, sw)
    c_out = w.shape[3] if depthwise else w.shape[0]
    mult = c_out // c_in
    y = np.zeros((n_, oh, ow, c_out), np.int64)
    for n in range(n_):
        for i in range(oh):
            for j in range(ow):
                for o in range(c_out):
                    acc = 0
                    for dy in range(kh):
                        for dx in range(kw):
                            yy, xx = i * sh + dy - pt, j * sw + dx - pl
                            if not (0 <= yy < h and 0 <= xx < wd):
                                continue          # TFLite skips padded taps
                            if depthwise:
                                acc += int(w[0, dy, dx, o]) * (int(x[n, yy, xx, o // mult]) - zp)
                            else:
                                for c in range(c_in):
                                    acc += int(w[o, dy, dx, c]) * (int(x[n, yy, xx, c]) - zp)
                    y[n, i, j, o] = requant_ref(acc, o, rq)
    return y


def random_rq(rng, channels, shift_range=(-14, 0)):
    lo, hi = sorted(rng.integers(-128, 128, 2))
    if rng.random() < 0.3:
        lo, hi = -128, 127
    return L.RequantParams(
        bias=rng.integers(-(2**20), 2**20, channels),
        m0=rng.integers(2**30, 2**31, channels),
        shift=rng.integers(shift_range[0], shift_range[1] + 1, channels),
        out_zero_point=int(rng.integers(-128, 128)), act_min=int(lo), act_max=int(hi))


def random_weights(rng, shape, bits):
    q = 2 ** (bits - 1) - 1
    return rng.integers(-q, q + 1, shape).astype(np.int8)


PADDINGS = ["valid", "same", ((1, 0), (0, 2)), 1]


@pytest.mark.parametrize("trial", range(16))
def test_conv2d_equals_loop_reference(rng, trial):
    h, w = rng.integers(1, 8, 2)
    kh, kw = rng.integers(1, 4, 2)
    sh, sw = rng.integers(1, 4, 2)
    padding = PADDINGS[trial % len(PADDINGS)]
    if padding != "same":
        h, w = max(h, kh), max(w, kw)
    c_in, c_out = rng.integers(1, 5, 2)
    bits = 4 if trial % 3 == 0 else 8
    x = rng.integers(-128, 128, (2, h, w, c_in)).astype(np.int8)
    wt = random_weights(rng, (c_out, kh, kw, c_in), bits)
    zp = int(rng.integers(-128, 128))
    rq = random_rq(rng, c_out)
    got = L.conv2d(x, wt, zp, rq, (sh, sw), padding)
    expect = conv_ref(x, wt, zp, rq, (sh, sw), padding)
    assert got.dtype == np.int8
    assert got.shape == expect.shape
    assert np.array_equal(got, expect), f"seed-driven trial {trial}: conv2d mismatch"


@pytest.mark.parametrize("trial", range(10))
def test_depthwise_conv2d_equals_loop_reference(rng, trial):
    h, w = rng.integers(2, 8, 2)
    k = int(rng.integers(1, 4))
    s = int(rng.integers(1, 3))
    padding = PADDINGS[trial % len(PADDINGS)]
    c_in, mult = int(rng.integers(1, 4)), int(rng.integers(1, 3))
    h, w = max(h, k), max(w, k)
    x = rng.integers(-128, 128, (1, h, w, c_in)).astype(np.int8)
    wt = random_weights(rng, (1, k, k, c_in * mult), 8)
    zp = int(rng.integers(-128, 128))
    rq = random_rq(rng, c_in * mult)
    got = L.depthwise_conv2d(x, wt, zp, rq, s, padding)
    assert np.array_equal(got, conv_ref(x, wt, zp, rq, (s, s), padding, depthwise=True))


@pytest.mark.parametrize("trial", range(8))
def test_fully_connected_equals_loop_reference(rng, trial):
    n, k, o = rng.integers(1, 6), rng.integers(1, 70), rng.integers(1, 12)
    x = rng.integers(-128, 128, (n, k)).astype(np.int8)
    wt = random_weights(rng, (o, k), 4 if trial % 2 else 8)
    zp = int(rng.integers(-128, 128))
    rq = random_rq(rng, o)
    got = L.fully_connected(x, wt, zp, rq)
    expect = [[requant_ref(sum(int(wt[j, i]) * (int(x[r, i]) - zp) for i in range(k)), j, rq)
               for j in range(o)] for r in range(n)]
    assert got.tolist() == expect


def pool_ref(x, k, s, padding, kind, lo, hi):
    n_, h, w, c = x.shape
    (pt, _), (pl, _), oh, ow = pads_for(padding, h, w, k, k, s, s)
    y = np.zeros((n_, oh, ow, c), np.int64)
    for n in range(n_):
        for i in range(oh):
            for j in range(ow):
                for ch in range(c):
                    taps = [int(x[n, i * s + dy - pt, j * s + dx - pl, ch])
                            for dy in range(k) for dx in range(k)
                            if 0 <= i * s + dy - pt < h and 0 <= j * s + dx - pl < w]
                    if kind == "max":
                        v = max(taps)
                    else:   # TFLite: (acc +- count/2) / count, C division
                        acc, cnt = sum(taps), len(taps)
                        v = ref.c_div(acc + cnt // 2, cnt) if acc > 0 else ref.c_div(acc - cnt // 2, cnt)
                    y[n, i, j, ch] = min(max(v, lo), hi)
    return y


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("k, s, padding", [(2, 2, "valid"), (3, 2, "same"), (3, 1, "same"),
                                            (2, 1, "valid"), (3, 3, "same")])
def test_pooling_equals_loop_reference(rng, kind, k, s, padding):
    x = rng.integers(-128, 128, (2, 7, 6, 3)).astype(np.int8)
    lo, hi = (-128, 127) if k == 2 else (-20, 90)
    fn = L.max_pool2d if kind == "max" else L.avg_pool2d
    got = fn(x, k, s, padding, act_min=lo, act_max=hi)
    assert np.array_equal(got, pool_ref(x, k, s, padding, kind, lo, hi))


def test_avg_pool_rounds_half_away_from_zero():
    x = np.array([1, 2, -1, -2], np.int8).reshape(1, 1, 4, 1)
    # windows of 2: 1.5 -> 2, 0.5 -> 1, -1.5 -> -2
    assert L.avg_pool2d(x, (1, 2), 1).ravel().tolist() == [2, 1, -2]


def sqnr_db(ref_values: np.ndarray, approx: np.ndarray) -> float:
    noise = np.sum((ref_values - approx) ** 2)
    return float(10 * np.log10(np.sum(ref_values**2) / max(noise, 1e-300)))


@pytest.mark.parametrize("op", ["conv2d", "depthwise_conv2d", "fully_connected"])
def test_dequantized_outputs_track_the_float_layer(rng, op):
    """Float-domain check. Bound: 30 dB SQNR.  Justification: each of the input, weight
    and output int8 quantizations adds noise ~48 dB below its tensor's full scale; on
    Gaussian data (peak ~4 sigma) that is ~38 dB below the signal each, ~33 dB together."""
    x = rng.standard_normal((2, 9, 9, 4))
    if op == "conv2d":
        w = rng.standard_normal((6, 3, 3, 4)) * 0.2
        ch_axis, fwd, qfn = 0, L.conv2d_float, L.conv2d
        args = dict(stride=2, padding="same")
    elif op == "depthwise_conv2d":
        w = rng.standard_normal((1, 3, 3, 8)) * 0.5
        ch_axis, fwd, qfn = 3, L.depthwise_conv2d_float, L.depthwise_conv2d
        args = dict(stride=1, padding="same")
    else:
        x = x.reshape(2, -1)
        w = rng.standard_normal((10, x.shape[1])) * 0.05
        ch_axis, fwd, qfn = 0, L.fully_connected_float, L.fully_connected
        args = {}
    b = rng.standard_normal(w.shape[ch_axis]) * 0.1
    y = fwd(x, w, b, **args)
    iq = compute_qparams(*tensor_range(x))
    wq = compute_qparams(*tensor_range(w, ch_axis), symmetric=True, axis=ch_axis)
    oq = compute_qparams(*tensor_range(y))
    rq = L.make_requant_params(iq, wq, oq, b, w.shape[ch_axis])
    yq = qfn(quantize(x, iq), quantize(w, wq), int(iq.zero_point), rq, **args)
    db = sqnr_db(y, dequantize(yq, oq))
    print(f"{op}: SQNR {db:.1f} dB")
    assert db >= 30.0


def test_fused_activation_ranges():
    oq = compute_qparams(-2.0, 10.0)      # scale 12/255, zero point -85
    assert L.activation_range("none", oq) == (-128, 127)
    zp = int(oq.zero_point)
    assert L.activation_range("relu", oq) == (zp, 127)
    assert L.activation_range("relu6", oq) == (zp, zp + int(round(6 / float(oq.scale))))
    oq = compute_qparams(-1.0, 1.0)       # zero point -0.5 rounds away from zero: -1
    assert int(oq.zero_point) == -1
    assert L.activation_range("relu6", oq) == (-1, 127)


def test_zero_point_fold_is_exact_mod_2_32(rng):
    w = rng.integers(-128, 128, (5, 300)).astype(np.int8)
    x = rng.integers(-128, 128, (7, 300)).astype(np.int8)
    bias = rng.integers(-(2**31), 2**31, 5).astype(np.int32)
    for zp in (-128, -1, 0, 37, 127):
        folded = L.fold_input_zero_point(bias, w, zp).astype(np.int64)
        lhs = x.astype(np.int64) @ w.T.astype(np.int64) + folded
        rhs = (x.astype(np.int64) - zp) @ w.T.astype(np.int64) + bias
        assert np.array_equal((lhs - rhs) % 2**32, np.zeros_like(lhs))


def test_accumulator_bound_is_refused_with_layer_and_k():
    k = 66312                                      # 255 * 127 * K > 2^31 - 1
    w = np.full((1, k), 127, np.int8)
    rq = L.RequantParams(bias=[0], m0=[2**30], shift=[-8], out_zero_point=0)
    with pytest.raises(ValueError, match=r"layer 'big_fc': worst-case .*K=66312 taps"):
        L.fully_connected(np.zeros((1, k), np.int8), w, -128, rq, layer="big_fc")
    ok = np.full((1, k - 1), 127, np.int8)         # 66311 taps fit
    L.fully_connected(np.zeros((1, k - 1), np.int8), ok, -128, rq)
    L.fully_connected(np.zeros((1, k), np.int8), w, 0, rq)   # |x - 0| <= 128: fits


def test_bias_quantization_and_overflow():
    assert L.quantize_bias(np.array([0.25, -0.75]), 0.5, 1.0).tolist() == [1, -2]  # ties away
    with pytest.raises(ValueError, match="bias: channel 0 .* outside int32"):
        L.quantize_bias(np.array([1e9]), 1e-3, 1e-3)


@pytest.mark.parametrize("call, match", [
    (lambda: L.conv2d(np.zeros((1, 4, 4, 2), np.int16), np.zeros((1, 3, 3, 2), np.int8), 0, None),
     "x: expected an integer array of dtype int8; got dtype int16"),
    (lambda: L.conv2d(np.zeros((1, 4, 4, 2), np.int8), np.zeros((1, 3, 3, 3), np.int8), 0, None),
     "x has 2 channels but w expects 3"),
    (lambda: L.conv2d(np.zeros((1, 4, 4, 2), np.int8), np.zeros((2, 3, 3, 2), np.int8), 0,
                      L.RequantParams([0], [2**30], [0], 0)), "rq: has 1 channels; the weights have 2"),
    (lambda: L.fully_connected(np.zeros((0, 4), np.int8), np.zeros((1, 4), np.int8), 0, None),
     "zero-size"),
    (lambda: L.fully_connected(np.zeros((1, 4), np.int8), np.zeros((1, 4), np.int8), 200, None),
     r"in_zero_point: 200 is outside the allowed range \[-128, 127\]"),
    (lambda: L.RequantParams([0], [2**30], [31], 0), r"shift: value 31 is outside"),
    (lambda: L.RequantParams([0, 1], [2**30], [0], 0), "lengths differ"),
    (lambda: L.RequantParams([0], [2**30], [0], 0, act_min=10, act_max=5), "act_min 10 exceeds"),
    (lambda: L.activation_range("gelu", compute_qparams(0.0, 1.0)), "activation: 'gelu' is not one of"),
    (lambda: L.depthwise_conv2d(np.zeros((1, 4, 4, 2), np.int8), np.zeros((1, 3, 3, 3), np.int8), 0, None),
     "depthwise weights must be"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
