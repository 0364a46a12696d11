"""PAD / PADV2, CONCATENATION, RESHAPE, SQUEEZE (pymodel.ops.shape) and QUANTIZE /
DEQUANTIZE (pymodel.ops.quantize) against scalar references from TFLite's kernels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import tflite_ref as tr
from pymodel.ops import quantize as Q
from pymodel.ops import shape as S

scales = st.floats(1e-4, 2.0, allow_nan=False).map(np.float32)
zps = st.integers(-128, 127)


def test_pad_and_padv2(rng):
    x = rng.integers(-128, 128, (1, 3, 2, 2)).astype(np.int8)
    p = S.prepare_pad(-9)
    y = S.pad(x, [[0, 0], [1, 2], [0, 1], [0, 0]], p)
    assert y.shape == (1, 6, 3, 2)
    assert np.array_equal(y[:, 1:4, 0:2, :], x)
    mask = np.ones(y.shape, bool)
    mask[:, 1:4, 0:2, :] = False
    assert np.all(y[mask] == -9)                              # PAD: output zero point
    p2 = S.prepare_pad(-9, constant_value=100, constant_scale=0.5, constant_zero_point=-9,
                       out_scale=0.5)
    y2 = S.pad(x, [[0, 0], [0, 0], [2, 0], [0, 0]], p2)
    assert np.all(y2[:, :, :2, :] == 100) and np.array_equal(y2[:, :, 2:, :], x)
    with pytest.raises(ValueError, match="constant_values: scale .* differ from the output"):
        S.prepare_pad(-9, 3, constant_scale=0.25, constant_zero_point=-9, out_scale=0.5)
    with pytest.raises(ValueError, match=r"paddings: shape \(3, 2\); need \(4, 2\)"):
        S.pad(x, [[0, 0]] * 3, p)


def test_concatenation_reshape_squeeze(rng):
    a = rng.integers(-128, 128, (1, 2, 2, 3)).astype(np.int8)
    b = rng.integers(-128, 128, (1, 2, 2, 5)).astype(np.int8)
    p = S.prepare_concatenation([0.1, 0.1], [4, 4], 0.1, 4)
    y = S.concatenation([a, b], -1, p)
    assert y.shape == (1, 2, 2, 8) and np.array_equal(y[..., :3], a)
    with pytest.raises(ValueError, match="input 1: scale .* differ from the output"):
        S.prepare_concatenation([0.1, 0.2], [4, 4], 0.1, 4)
    with pytest.raises(ValueError, match="activation: 'relu' is not one of"):
        S.prepare_concatenation([0.1], [4], 0.1, 4, activation="relu")
    with pytest.raises(ValueError, match=r"xs\[1\]: shape \(1, 2, 3, 5\) does not match"):
        S.concatenation([a, np.zeros((1, 2, 3, 5), np.int8)], 3)
    assert S.reshape(y, [1, -1]).shape == (1, 32)
    assert S.squeeze(np.zeros((1, 1, 1, 7), np.int8), [1, 2]).shape == (1, 7)
    assert S.squeeze(np.zeros((1, 1, 1, 7), np.int8)).shape == (7,)
    with pytest.raises(ValueError, match="axes: dimension 3 of .* has size 7, not 1"):
        S.squeeze(np.zeros((1, 1, 1, 7), np.int8), [3])


@given(xs=st.lists(st.floats(-1e4, 1e4, allow_nan=False, width=32), min_size=1, max_size=50),
       scale=scales, zp=zps)
@example(xs=[0.5, -0.5, 1.5, -1.5, 2.5, 0.49999997, 1e30, -1e30], scale=np.float32(1.0), zp=0)
@example(xs=[3e9, -3e9], scale=np.float32(1.0), zp=-5)
def test_quantize_float_to_int8(xs, scale, zp):
    p = Q.prepare_quantize(scale, zp)
    x = np.array(xs, np.float32)
    got = Q.quantize(x, p)
    assert got.tolist() == [tr.quantize_one(v, scale, zp) for v in x.tolist()]
    assert Q.dequantize(got, p).tolist() == [tr.dequantize_one(int(v), scale, zp)
                                              for v in got.tolist()]


def test_quantize_rounds_half_away_in_float32():
    p = Q.prepare_quantize(1.0, 0)
    assert Q.quantize(np.array([0.5, -0.5, 1.5, -1.5, 2.5], np.float32), p).tolist() == \
        [1, -1, 2, -2, 3]
    # out-of-int32 quotients convert to INT32_MIN (x86-64): even +1e30 becomes -128
    assert Q.quantize(np.array([1e30, -1e30], np.float32), p).tolist() == [-128, -128]


@given(s_in=scales, s_out=scales, zi=zps, zo=zps, rnd=st.sampled_from(["double", "single"]))
def test_requantize_int8_to_int8(s_in, s_out, zi, zo, rnd):
    p = Q.prepare_requantize(s_in, zi, s_out, zo, rnd)
    r = tr.requantize_prepare(s_in, zi, s_out, zo, rnd)
    assert (p.multiplier, p.shift) == r["m"]
    x = np.arange(-128, 128, dtype=np.int8)
    assert Q.requantize(x, p).tolist() == [tr.requantize_one(int(v), r) for v in x]
