"""Prepared layers (pymodel.ops.prepared) == the readable layers (pymodel.ops.layers).

The readable layers are tested against loops over TFLite's formulas in test_layers.py;
here every prepared layer is compared with them using ``==`` on every element, over
random shapes, strides, paddings, zero points, clamps and multipliers, including the
cases the fast path treats specially: ``K`` split into several exact float32 chunks,
1x1 convolutions, depth multipliers, left shifts, and the unchecked (wrapping) GEMM.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pymodel import datasets
from pymodel.graph import inference
from pymodel.graph.artifact import load_artifact
from pymodel.graph.prepared_cache import prepared_layer
from pymodel.ops import layers as L
from pymodel.ops import prepared as P
from test_layers import PADDINGS, random_rq, random_weights


ROUNDINGS = ("double", "single", "double")


@pytest.mark.parametrize("trial", range(12))
def test_conv2d(rng, trial):
    h, w = (int(v) for v in rng.integers(1, 10, 2))
    kh, kw = (int(v) for v in rng.integers(1, 4, 2))
    if trial % 4 == 3:
        kh = kw = 1
    sh, sw = (int(v) for v in rng.integers(1, 3, 2))
    padding = PADDINGS[trial % len(PADDINGS)]
    if padding != "same":
        h, w = max(h, kh), max(w, kw)
    c_in = int(rng.integers(1, 9)) if trial != 5 else 130     # 130*9 taps: two K chunks
    c_out = int(rng.integers(1, 9))
    x = rng.integers(-128, 128, (2, h, w, c_in)).astype(np.int8)
    wt = random_weights(rng, (c_out, kh, kw, c_in), 4 if trial % 3 == 0 else 8)
    zp = int(rng.integers(-128, 128))
    rq = random_rq(rng, c_out, shift_range=(-14, 2) if trial % 2 else (-14, 0))
    rq = dataclasses.replace(rq, rounding=ROUNDINGS[trial % 3])
    dil = 1 + trial % 2 if padding == "same" else 1
    prep = P.PreparedConv2d(wt, zp, rq, (sh, sw), padding, dilation=dil)
    got = prep(x)
    assert got.dtype == np.int8
    assert np.array_equal(got, L.conv2d(x, wt, zp, rq, (sh, sw), padding, dilation=dil))


@pytest.mark.parametrize("trial", range(8))
def test_depthwise(rng, trial):
    h, w = (int(v) for v in rng.integers(2, 9, 2))
    k = int(rng.integers(1, 4))
    s = int(rng.integers(1, 3))
    padding = PADDINGS[trial % len(PADDINGS)]
    c_in, mult = int(rng.integers(1, 5)), int(rng.integers(1, 3))
    h, w = max(h, k), max(w, k)
    x = rng.integers(-128, 128, (2, h, w, c_in)).astype(np.int8)
    wt = random_weights(rng, (1, k, k, c_in * mult), 8)
    zp = int(rng.integers(-128, 128))
    rq = dataclasses.replace(random_rq(rng, c_in * mult), rounding=ROUNDINGS[trial % 3])
    dil = 1 + trial % 2 if padding == "same" else 1
    got = P.PreparedDepthwise(wt, zp, rq, c_in, s, padding, dilation=dil)(x)
    assert np.array_equal(got, L.depthwise_conv2d(x, wt, zp, rq, s, padding, dilation=dil))


@pytest.mark.parametrize("k", [1, 70, 1032, 1033, 4096])
def test_fully_connected_and_k_chunks(rng, k):
    """K = 1032 is the largest single exact float32 chunk for |w| <= 127; beyond, chunks."""
    n, o = 3, 17
    x = rng.integers(-128, 128, (n, k)).astype(np.int8)
    x[0] = -128                                       # extreme rows: largest |partial sums|
    wt = random_weights(rng, (o, k), 8)
    wt[0] = -127
    wt[1] = 127
    zp = int(rng.integers(-128, 128))
    rq = random_rq(rng, o, shift_range=(-20, -8))
    rq = dataclasses.replace(rq, rounding=ROUNDINGS[k % 2])
    prep = P.PreparedFullyConnected(wt, zp, rq)
    assert len(prep.gemm.chunks) == (1 if k <= 1032 else -(-k // 1032))
    assert np.array_equal(prep(x), L.fully_connected(x, wt, zp, rq))


def test_unchecked_gemm_wraps_like_the_hardware(rng):
    """check_bound=False: accumulators beyond int32 wrap mod 2^32 as in quantized_gemm."""
    k = 140_000                                       # 140000 * 128 * 127 > 2^31
    cols = np.full((2, k), -128, np.int8)
    cols[1, ::3] = 127
    w2d = np.full((3, k), -127, np.int8)
    w2d[1] = 127
    rq = L.RequantParams(bias=[2**31 - 1, -(2**31), 5], m0=[2**30] * 3, shift=[0, -1, -30],
                         out_zero_point=1)
    got = P.prepare_gemm(w2d, 7, rq, check_bound=False)(cols)
    assert np.array_equal(got, L.quantized_gemm(cols, w2d, 7, rq, check_bound=False))
    with pytest.raises(ValueError, match="exceeds int32"):
        P.prepare_gemm(w2d, 7, rq)


def test_gemm_equals_quantized_gemm(rng):
    cols = rng.integers(-128, 128, (50, 300)).astype(np.int8)
    w2d = random_weights(rng, (9, 300), 8)
    rq = random_rq(rng, 9)
    assert np.array_equal(P.prepare_gemm(w2d, -3, rq)(cols), L.quantized_gemm(cols, w2d, -3, rq))


def test_shipped_artifacts_prepared_equals_reference():
    """Every layer output of the shipped digits artifacts: prepared == readable path."""
    from pymodel.training import digits
    x = datasets.digits("test").x[:64]
    for path in (digits.INT8_ARTIFACT, digits.MIXED_ARTIFACT):
        qnet = load_artifact(path)
        xq = inference.quantize_input(qnet, x)
        for q in qnet.layers:
            y = inference.run_layer(q, xq)
            assert np.array_equal(y, inference.run_layer(q, xq, reference=True)), q.name
            xq = y


def test_cache_returns_the_same_prepared_layer():
    from pymodel.training import digits
    qnet = load_artifact(digits.INT8_ARTIFACT)
    a, b = qnet.layers[0], qnet.layers[1]
    assert prepared_layer(a) is prepared_layer(a)
    assert prepared_layer(a) is not prepared_layer(b)
    with pytest.raises(ValueError, match="no weights"):
        prepared_layer(next(q for q in qnet.layers if not q.has_weights))


def test_prepared_input_checks(rng):
    wt = random_weights(rng, (4, 3, 3, 2), 8)
    prep = P.PreparedConv2d(wt, 0, random_rq(rng, 4), 1, "same")
    with pytest.raises(ValueError, match=r"x: expected .*\[N, H, W, 2\]"):
        prep(np.zeros((1, 5, 5, 3), np.int8))
    with pytest.raises(ValueError, match="x"):
        prep(np.zeros((1, 5, 5, 2), np.int16) + 300)
    fc = P.PreparedFullyConnected(random_weights(rng, (3, 6), 8), 0, random_rq(rng, 3))
    with pytest.raises(ValueError, match=r"x: expected .*\[M, 6\]"):
        fc(np.zeros((2, 5), np.int8))
    with pytest.raises(ValueError, match="rq"):
        P.PreparedFullyConnected(random_weights(rng, (3, 6), 8), 0, random_rq(rng, 4))


@pytest.mark.parametrize("threads", [2, 3])
def test_threads_give_the_same_integers(rng, threads):
    """Element-wise passes on several threads (pymodel.parallel): the same output."""
    from pymodel import parallel
    x = rng.integers(-128, 128, (2, 40, 40, 6)).astype(np.int8)
    dw = random_weights(rng, (1, 3, 3, 12), 8)
    cw = random_weights(rng, (5, 3, 3, 6), 8)
    rq_dw, rq_c = random_rq(rng, 12), random_rq(rng, 5)
    want = (L.depthwise_conv2d(x, dw, 3, rq_dw, 1, "same"),
            L.depthwise_conv2d(x, dw, 3, rq_dw, 2, "same"), L.conv2d(x, cw, 3, rq_c, 1, 1))
    before = parallel.threads()
    try:
        parallel.set_threads(threads)
        got = (P.PreparedDepthwise(dw, 3, rq_dw, 6, 1, "same")(x),
               P.PreparedDepthwise(dw, 3, rq_dw, 6, 2, "same")(x),
               P.PreparedConv2d(cw, 3, rq_c, 1, 1)(x))
    finally:
        parallel.set_threads(before)
    for g, w in zip(got, want):
        assert np.array_equal(g, w)


@pytest.mark.parametrize("case", ["float", "int64", "relu", "single"])
def test_depthwise_stride1_paths(rng, case):
    """The stride-1 depthwise path (int16 tap groups, several row blocks, batch 2,
    multiplier 2) through each requantize form: the float64 form (with and without the
    ties-away-from-zero correction) and the int64 plan where the float form is refused
    (a left shift)."""
    c_in, mult = 3, 2
    x = rng.integers(-128, 128, (2, 200, 60, c_in)).astype(np.int8)
    x[0, :4] = -128                                   # worst-case products
    wt = random_weights(rng, (1, 3, 3, c_in * mult), 8)
    wt[0, 0, 0, 0] = -128
    rq = random_rq(rng, c_in * mult, shift_range=(-12, -6))
    rq = dataclasses.replace(rq, bias=rq.bias // 64, act_min=-128, act_max=127)
    if case == "int64":
        rq = dataclasses.replace(rq, shift=np.full(c_in * mult, 1))
    if case == "relu":
        rq = dataclasses.replace(rq, act_min=rq.out_zero_point)
    if case == "single":
        rq = dataclasses.replace(rq, rounding="single")
    prep = P.PreparedDepthwise(wt, 7, rq, c_in, 1, "same", dilation=1 + (case == "relu"))
    assert (prep.fplan is None) == (case == "int64")
    if case == "relu":
        assert prep.fplan.delta is None
    got = prep(x)
    want = L.depthwise_conv2d(x, wt, 7, rq, 1, "same", dilation=1 + (case == "relu"))
    assert np.array_equal(got, want)
    prep.kernel = None                               # the numpy path (numba's fallback)
    assert np.array_equal(prep(x), want)
    from pymodel import parallel                     # row blocks on 3 threads: same bytes
    before = parallel.threads()
    try:
        parallel.set_threads(3)
        assert prep(x).tobytes() == got.tobytes()
    finally:
        parallel.set_threads(before)
