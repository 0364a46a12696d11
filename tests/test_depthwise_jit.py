"""The compiled depthwise kernel (pymodel.ops.depthwise_jit) == the readable layer.

Property: over shapes, batch, kernel sizes, strides, dilations, paddings, depth
multipliers, per-channel multipliers and shifts (left shifts included), both rounding
modes and clamps, the prepared layer's compiled kernel -- through the float64
requantize form where the layer allows it *and* through the int64 plan -- and its numpy
fallback all equal :func:`pymodel.ops.layers.depthwise_conv2d` with ``==``; on 1 and on
2 :mod:`pymodel.parallel` threads the bytes are the same.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pymodel import parallel
from pymodel.ops import layers as L
from pymodel.ops import prepared as P


PADS = st.sampled_from(["valid", "same", 0, 1, 2, ((1, 0), (0, 2)), ((0, 3), (2, 1))])


@st.composite
def depthwise_layers(draw: st.DrawFn) -> tuple:
    """(x, w, zp, rq, stride, padding, dilation, in_channels) of a checked layer."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(PADS)
    c_in, mult = draw(st.integers(1, 5)), draw(st.sampled_from([1, 1, 2, 3]))
    n = draw(st.integers(1, 2))
    eh, ew = (kh - 1) * dil[0] + 1, (kw - 1) * dil[1] + 1
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    if padding == "valid" or isinstance(padding, int) and padding == 0:
        h, w = max(h, eh), max(w, ew)
    elif isinstance(padding, int):
        h, w = max(h, eh - 2 * padding), max(w, ew - 2 * padding)
    elif isinstance(padding, tuple):
        (pt, pb), (pl, pr) = padding
        h, w = max(h, eh - pt - pb), max(w, ew - pl - pr)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    c = c_in * mult
    small = draw(st.booleans())          # small values: outputs inside the clamp, ties
    xr, wr = (6, 3) if small else (128, 128)
    x = rng.integers(-xr, xr, (n, h, w, c_in)).astype(np.int8)
    if draw(st.booleans()):
        x[..., 0] = -128                                 # worst-case products
    wt = rng.integers(-wr, wr, (1, kh, kw, c)).astype(np.int8)
    zp = draw(st.sampled_from([-128, 127, 0, int(rng.integers(-128, 128))]))
    lo_sh, hi_sh = draw(st.sampled_from([(-14, 0), (-31, -10), (-8, 4), (-31, 30)]
                                        + [(-3, 0), (-3, 2)] * small))
    m0 = rng.integers(2**30, 2**31, c)
    if draw(st.booleans()):                          # m0 = 2^30: many exact ties (x.5)
        m0[rng.random(c) < 0.7] = 2**30
    m0[rng.random(c) < 0.1] = 0
    lo, hi = sorted(int(v) for v in rng.integers(-128, 128, 2))
    if draw(st.booleans()):
        lo, hi = -128, 127
    rq = L.RequantParams(
        bias=rng.integers(-(2**draw(st.sampled_from([8, 20, 28]))), 2**20, c) >> (12 * small),
        m0=m0, shift=rng.integers(lo_sh, hi_sh + 1, c),
        out_zero_point=int(rng.integers(-128, 128)), act_min=lo, act_max=hi,
        rounding=draw(st.sampled_from(["double", "single"])))
    return x, wt, zp, rq, stride, padding, dil, c_in


def _with_threads(n: int, fn):  # type: ignore[no-untyped-def]
    before = parallel.threads()
    try:
        parallel.set_threads(n)
        return fn()
    finally:
        parallel.set_threads(before)


@settings(max_examples=120)
@given(case=depthwise_layers())
def test_kernel_equals_reference(case):
    x, wt, zp, rq, stride, padding, dil, c_in = case
    want = L.depthwise_conv2d(x, wt, zp, rq, stride, padding, dilation=dil)
    prep = P.PreparedDepthwise(wt, zp, rq, c_in, stride, padding, dilation=dil)
    kernel = prep.kernel
    assert kernel is not None, "numba is pinned in requirements.txt: the kernel must exist"
    got = prep(x)
    assert got.dtype == np.int8 and np.array_equal(got, want)
    assert _with_threads(2, lambda: prep(x)).tobytes() == got.tobytes()
    if kernel.fmode:                                  # the int64 plan too
        kernel.fmode = False
        try:
            assert np.array_equal(prep(x), want)
        finally:
            kernel.fmode = True
    prep.kernel = None                                # the numpy fallback
    assert np.array_equal(prep(x), want)


@pytest.mark.parametrize("stride", [1, 2])
def test_row_blocks_on_threads_give_the_same_bytes(rng, stride):
    """A bigger layer (both requantize forms reached, several row blocks per thread
    count): 1, 2 and 3 threads, the same bytes, == the reference."""
    x = rng.integers(-128, 128, (2, 37, 29, 8)).astype(np.int8)
    wt = rng.integers(-127, 128, (1, 3, 3, 16)).astype(np.int8)
    rq = L.RequantParams(bias=rng.integers(-5000, 5000, 16), m0=rng.integers(2**30, 2**31, 16),
                         shift=rng.integers(-10, -6, 16), out_zero_point=-3)
    prep = P.PreparedDepthwise(wt, 5, rq, 8, stride, "same")
    assert prep.kernel is not None and prep.kernel.fmode
    want = L.depthwise_conv2d(x, wt, 5, rq, stride, "same")
    outs = [_with_threads(t, lambda: prep(x)).tobytes() for t in (1, 2, 3)]
    assert outs[0] == want.tobytes() and outs[1] == outs[0] and outs[2] == outs[0]


def test_jit_can_be_switched_off(monkeypatch, rng):
    """QMAC_JIT=0: the numpy path (no compiled kernel), same integers."""
    x = rng.integers(-128, 128, (1, 6, 5, 3)).astype(np.int8)
    wt = rng.integers(-127, 128, (1, 3, 3, 3)).astype(np.int8)
    rq = L.RequantParams(bias=np.zeros(3, np.int32), m0=np.full(3, 2**30), shift=np.full(3, -6),
                         out_zero_point=0)
    monkeypatch.setenv("QMAC_JIT", "0")
    prep = P.PreparedDepthwise(wt, 1, rq, 3, 1, "same")
    assert prep.kernel is None
    assert np.array_equal(prep(x), L.depthwise_conv2d(x, wt, 1, rq, 1, "same"))
