"""The window engine's stage functions (pymodel.ops.window_stages) compose to the layers.

* depthwise / max pool / average pool: the stage chain == ``pymodel.ops.layers``
  (TFLite-exact) on random shapes, strides, paddings and channel counts (hypothesis);
* dilation (which ``layers`` lacks): the chain == a direct loop over TFLite's
  ``DepthwiseConv`` reference (``in_y = oy * stride - pad + dilation * ky``, out-of-image
  taps skipped, ``x - zp`` per tap) with the scalar fixed-point reference;
* ``rounding_divide_by_count`` == TFLite's average-pool division written as a loop;
* the identity requantize leaves every value a pool can produce unchanged.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scalar_ref as ref
from pymodel.arithmetic.fixedpoint import requantize
from pymodel.ops import layers as L
from pymodel.ops import window_stages as W


@st.composite
def layer_case(draw, max_k: int = 5):
    h = draw(st.integers(1, 9))
    w = draw(st.integers(1, 9))
    c = draw(st.integers(1, 6))
    kh, kw = draw(st.integers(1, max_k)), draw(st.integers(1, max_k))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.sampled_from(["same", "valid", "explicit"]))
    if padding == "explicit":
        padding = ((draw(st.integers(0, kh - 1)), draw(st.integers(0, kh - 1))),
                   (draw(st.integers(0, kw - 1)), draw(st.integers(0, kw - 1))))
    if padding == "valid":
        h, w = max(h, kh), max(w, kw)
    elif not isinstance(padding, str):
        (pt, pb), (pl, pr) = padding
        h, w = max(h, kh - pt - pb), max(w, kw - pl - pr)
    seed = draw(st.integers(0, 2**31))
    return h, w, c, (kh, kw), stride, padding, np.random.default_rng(seed)


def rq_for(rng, c, extreme=False):
    return L.RequantParams(bias=rng.integers(-5000, 5000, c), m0=rng.integers(1 << 30, 1 << 31, c),
                           shift=rng.integers(-12, 2, c), out_zero_point=int(rng.integers(-128, 128)),
                           act_min=int(rng.integers(-128, 0)), act_max=int(rng.integers(0, 128)))


@settings(max_examples=150, deadline=None)
@given(layer_case())
def test_depthwise_stages_equal_layers(case) -> None:
    h, w, c, k, stride, padding, rng = case
    x = rng.integers(-128, 128, (2, h, w, c)).astype(np.int8)
    wt = rng.integers(-127, 128, (1, *k, c)).astype(np.int8)
    zp = int(rng.integers(-128, 128))
    rq = rq_for(rng, c)
    assert np.array_equal(W.depthwise_conv2d_engine(x, wt, zp, rq, stride, padding),
                          L.depthwise_conv2d(x, wt, zp, rq, stride, padding))


@settings(max_examples=150, deadline=None)
@given(layer_case(max_k=4))
def test_pool_stages_equal_layers(case) -> None:
    h, w, c, k, stride, padding, rng = case
    x = rng.integers(-128, 128, (2, h, w, c)).astype(np.int8)
    lo, hi = sorted(int(v) for v in rng.integers(-128, 128, 2))
    assert np.array_equal(W.max_pool2d_engine(x, k, stride, padding, lo, hi),
                          L.max_pool2d(x, k, stride, padding, lo, hi))
    assert np.array_equal(W.avg_pool2d_engine(x, k, stride, padding, lo, hi),
                          L.avg_pool2d(x, k, stride, padding, lo, hi))


def dilated_depthwise_ref(x, w, zp, rq, stride, dilation, pads):
    """TFLite reference_integer_ops::DepthwiseConv (multiplier 1), as loops."""
    n, h, wd, c = x.shape
    kh, kw = w.shape[1:3]
    (pt, pb), (pl, pr) = pads
    oh = (h + pt + pb - ((kh - 1) * dilation[0] + 1)) // stride[0] + 1
    ow = (wd + pl + pr - ((kw - 1) * dilation[1] + 1)) // stride[1] + 1
    out = np.zeros((n, oh, ow, c), np.int64)
    for b in range(n):
        for oy in range(oh):
            for ox in range(ow):
                for ch in range(c):
                    acc = 0
                    for ky in range(kh):
                        for kx in range(kw):
                            iy = oy * stride[0] - pt + dilation[0] * ky
                            ix = ox * stride[1] - pl + dilation[1] * kx
                            if 0 <= iy < h and 0 <= ix < wd:
                                acc += int(w[0, ky, kx, ch]) * (int(x[b, iy, ix, ch]) - zp)
                    out[b, oy, ox, ch] = ref.requantize(
                        acc, int(rq.bias[ch]), int(rq.m0[ch]), int(rq.shift[ch]),
                        rq.out_zero_point, rq.act_min, rq.act_max)
    return out


@pytest.mark.parametrize("k, dilation, stride, padding", [
    ((3, 3), (2, 2), (1, 1), "same"), ((3, 3), (2, 1), (2, 2), "same"),
    ((5, 5), (2, 2), (1, 1), "valid"), ((3, 3), (3, 2), (1, 2), ((2, 1), (0, 3))),
])
def test_dilated_depthwise_equals_tflite_loop(rng, k, dilation, stride, padding) -> None:
    x = rng.integers(-128, 128, (1, 11, 10, 3)).astype(np.int8)
    wt = rng.integers(-127, 128, (1, *k, 3)).astype(np.int8)
    zp = int(rng.integers(-128, 128))
    rq = rq_for(rng, 3)
    pads = W.window_pads(padding, (11, 10), k, stride, dilation)
    got = W.depthwise_conv2d_engine(x, wt, zp, rq, stride, padding, dilation)
    assert np.array_equal(got, dilated_depthwise_ref(x, wt, zp, rq, stride, dilation, pads))


def test_same_padding_uses_the_dilated_kernel() -> None:
    # 3x3 dilated by 2 is a 5x5 window: SAME on 10 needs 4 rows of padding, 2 + 2
    assert W.window_pads("same", (10, 10), 3, 1, 2) == ((2, 2), (2, 2))


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 600), st.data())
def test_rounding_divide_by_count_is_tflite(n, data) -> None:
    s = data.draw(st.integers(-128 * n, 127 * n))
    num = s + n // 2 if s > 0 else s - n // 2
    q = abs(num) // n * (1 if num >= 0 else -1)        # C division truncates toward zero
    assert int(W.rounding_divide_by_count(s, n)) == q


def test_rounding_divide_by_count_ties_round_away() -> None:
    assert W.rounding_divide_by_count(np.array([5, -5, 3, -3, 0]), 2).tolist() == [3, -3, 2, -2, 0]


def test_rounding_divide_by_count_refuses_empty_windows() -> None:
    with pytest.raises(ValueError, match="n: a window has 0 taps"):
        W.rounding_divide_by_count(4, 0)


def test_identity_requant_is_identity() -> None:
    v = np.arange(-128 * 65535, 128 * 65535, 997, dtype=np.int64)
    rq = W.identity_requant(1)
    got = requantize(v.astype(np.int32), 0, W.IDENTITY_M0, W.IDENTITY_SHIFT, 0, -(1 << 31), (1 << 31) - 1)
    assert np.array_equal(got, v)
    assert rq.m0[0] == 1 << 30 and rq.shift[0] == 1


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.integers(1, 5),
       st.floats(1e-3, 1.0).map(np.float32), st.floats(1e-3, 1.0).map(np.float32),
       st.integers(-128, 127), st.integers(-128, 127), st.integers(0, 2**31))
def test_mean_stages_equal_reduce_mean(h, w, c, s_in, s_out, zp_in, zp_out, seed) -> None:
    from pymodel.ops.reduce import mean, prepare_mean
    x = np.random.default_rng(seed).integers(-128, 128, (2, h, w, c)).astype(np.int8)
    p = prepare_mean(s_in, zp_in, s_out, zp_out)
    assert np.array_equal(W.mean_engine(x, p), mean(x, (1, 2), p, keep_dims=True))
