"""Dilated convolution: ``im2col``, SAME padding and output size with dilation, and the
quantized conv / depthwise conv (any depth multiplier) against loops written from
TFLite's reference kernels (``reference_integer_ops::ConvPerChannel`` /
``DepthwiseConvPerChannel``, ``kernels/padding.h``)."""

from __future__ import annotations

import numpy as np
import pytest

import scalar_ref as ref
from pymodel.arithmetic.gemm import im2col, output_hw, resolve_padding
from pymodel.ops import layers as L


def tflite_padding(padding, size, k, s, d):
    """``ComputePaddingWithOffset`` + ``ComputeOutSize`` of kernels/padding.h, one axis:
    returns (pad_before, out_size)."""
    eff = (k - 1) * d + 1
    if padding == "same":
        out = (size + s - 1) // s
    else:
        out = (size + s - eff) // s
    total = max((out - 1) * s + eff - size, 0)
    return total // 2, out


def conv_loop(x, w, zp, rq, stride, dilation, padding, depthwise):
    """TFLite's reference int8 conv / depthwise conv loop (per-channel requantize)."""
    n_, h, wd, c_in = x.shape
    kh, kw = w.shape[1:3]
    pt, oh = tflite_padding(padding, h, kh, stride[0], dilation[0])
    pl, ow = tflite_padding(padding, wd, kw, stride[1], dilation[1])
    c_out = w.shape[3] if depthwise else w.shape[0]
    mult = c_out // c_in
    y = np.zeros((n_, oh, ow, c_out), np.int64)
    for b in range(n_):
        for oy in range(oh):
            for ox in range(ow):
                for o in range(c_out):
                    acc = 0
                    for fy in range(kh):
                        for fx in range(kw):
                            iy = oy * stride[0] - pt + dilation[0] * fy
                            ix = ox * stride[1] - pl + dilation[1] * fx
                            if not (0 <= iy < h and 0 <= ix < wd):
                                continue
                            if depthwise:
                                ic, m = divmod(o, mult)      # o = ic * mult + m
                                acc += int(w[0, fy, fx, ic * mult + m]) * (int(x[b, iy, ix, ic]) - zp)
                            else:
                                for c in range(c_in):
                                    acc += int(w[o, fy, fx, c]) * (int(x[b, iy, ix, c]) - zp)
                    y[b, oy, ox, o] = ref.requantize(acc, int(rq.bias[o]), int(rq.m0[o]),
                                                     int(rq.shift[o]), rq.out_zero_point,
                                                     rq.act_min, rq.act_max)
    return y


def random_rq(rng, channels):
    return L.RequantParams(bias=rng.integers(-(2**16), 2**16, channels),
                           m0=rng.integers(2**30, 2**31, channels),
                           shift=rng.integers(-12, 1, channels),
                           out_zero_point=int(rng.integers(-128, 128)))


def test_same_padding_uses_the_effective_kernel():
    # k=3, d=2 -> effective 5: in 7, stride 1 -> out 7, total 4 -> (2, 2)
    assert resolve_padding("same", (7, 7), (3, 3), (1, 1), (2, 2)) == ((2, 2), (2, 2))
    # k=2, d=3 -> effective 4: in 6, stride 2 -> out 3, total 4+4-6 = 2 -> (1, 1)
    assert resolve_padding("same", (6, 6), (2, 2), (2, 2), (3, 3)) == ((1, 1), (1, 1))
    # k=3, d=2, in 8, stride 2 -> out 4, total 6+5-8 = 3 -> (1, 2): odd pixel last
    assert resolve_padding("same", (8, 8), (3, 3), (2, 2), (2, 2)) == ((1, 2), (1, 2))
    assert output_hw((9, 9), (3, 3), (1, 1), ((0, 0), (0, 0)), (4, 4)) == (1, 1)
    with pytest.raises(ValueError, match="dilated kernel height 9 exceeds the padded input height 8"):
        output_hw((8, 8), (3, 3), (1, 1), ((0, 0), (0, 0)), (4, 4))


@pytest.mark.parametrize("h, w, k, s, d, padding", [
    (7, 7, 3, 1, 2, "same"), (8, 6, 3, 2, 2, "same"), (9, 9, 2, 1, 3, "valid"),
    (6, 7, (3, 2), (1, 2), (2, 3), "same"), (5, 5, 3, 1, (1, 2), ((1, 0), (2, 1))),
])
def test_im2col_dilation_against_loops(rng, h, w, k, s, d, padding):
    x = rng.integers(-128, 128, (2, h, w, 3)).astype(np.int8)
    kh, kw = (k, k) if np.ndim(k) == 0 else k
    sh, sw = (s, s) if np.ndim(s) == 0 else s
    dh, dw = (d, d) if np.ndim(d) == 0 else d
    (pt, _), (pl, _) = resolve_padding(padding, (h, w), (kh, kw), (sh, sw), (dh, dw))
    cols, (oh, ow) = im2col(x, (kh, kw), (sh, sw), padding, pad_value=-7, dilation=(dh, dw))
    row = 0
    for n in range(2):
        for i in range(oh):
            for j in range(ow):
                expect = []
                for fy in range(kh):
                    for fx in range(kw):
                        y, xx = i * sh + fy * dh - pt, j * sw + fx * dw - pl
                        inside = 0 <= y < h and 0 <= xx < w
                        expect += list(x[n, y, xx]) if inside else [-7] * 3
                assert cols[row].tolist() == expect
                row += 1
    assert row == cols.shape[0]


@pytest.mark.parametrize("trial", range(8))
def test_dilated_conv2d_equals_tflite_loop(rng, trial):
    padding = ("same", "valid")[trial % 2]
    kh, kw = (int(v) for v in rng.integers(1, 4, 2))
    dh, dw = (int(v) for v in rng.integers(1, 4, 2))
    sh, sw = (int(v) for v in rng.integers(1, 3, 2))
    h = int(rng.integers((kh - 1) * dh + 1, 10))
    w = int(rng.integers((kw - 1) * dw + 1, 10))
    c_in, c_out = (int(v) for v in rng.integers(1, 4, 2))
    x = rng.integers(-128, 128, (1, h, w, c_in)).astype(np.int8)
    wt = rng.integers(-127, 128, (c_out, kh, kw, c_in)).astype(np.int8)
    zp = int(rng.integers(-128, 128))
    rq = random_rq(rng, c_out)
    got = L.conv2d(x, wt, zp, rq, (sh, sw), padding, dilation=(dh, dw))
    expect = conv_loop(x, wt, zp, rq, (sh, sw), (dh, dw), padding, depthwise=False)
    assert got.shape == expect.shape
    assert np.array_equal(got, expect), f"trial {trial}"


@pytest.mark.parametrize("trial", range(8))
def test_depthwise_any_multiplier_and_dilation_equals_tflite_loop(rng, trial):
    padding = ("same", "valid")[trial % 2]
    k = int(rng.integers(1, 4))
    d = int(rng.integers(1, 3))
    s = int(rng.integers(1, 3))
    c_in, mult = int(rng.integers(1, 4)), int(rng.integers(1, 5))
    h, w = (int(v) for v in rng.integers((k - 1) * d + 1, 9, 2))
    x = rng.integers(-128, 128, (1, h, w, c_in)).astype(np.int8)
    wt = rng.integers(-127, 128, (1, k, k, c_in * mult)).astype(np.int8)
    zp = int(rng.integers(-128, 128))
    rq = random_rq(rng, c_in * mult)
    got = L.depthwise_conv2d(x, wt, zp, rq, s, padding, dilation=d)
    expect = conv_loop(x, wt, zp, rq, (s, s), (d, d), padding, depthwise=True)
    assert np.array_equal(got, expect), f"trial {trial}: c_in {c_in} multiplier {mult}"
