"""LiteRT's float-rescaling reference FULLY_CONNECTED (pymodel.ops.float_rescale) and the
conv / FC requantization Prepare (pymodel.ops.tflite_common.prepare_conv_requant) against
scalar references written from the kernels (tests/tflite_ref.py)."""

from __future__ import annotations

import numpy as np
import pytest

import tflite_ref as tr
from pymodel.ops import layers as L
from pymodel.ops.float_rescale import fully_connected_float_rescale
from pymodel.ops.tflite_common import prepare_conv_requant


@pytest.mark.parametrize("per_channel", [False, True])
def test_prepare_conv_requant(rng, per_channel):
    for _ in range(50):
        c = int(rng.integers(1, 9))
        s_in, s_out = (np.float32(10 ** rng.uniform(-3, 0)) for _ in range(2))
        ws = (10 ** rng.uniform(-4, -1, c if per_channel else 1)).astype(np.float32)
        bias = rng.integers(-(2**20), 2**20, c)
        for op in ("conv", "fully_connected"):
            rq = prepare_conv_requant(s_in, ws, s_out, 3, bias, c, "relu6", op=op)
            fc_pt = op == "fully_connected" and ws.size == 1   # TFLite: scale->size > 1
            expect = tr.conv_multipliers(s_in, np.broadcast_to(ws, (c,)), s_out, fc_pt)
            assert list(zip(rq.m0.tolist(), rq.shift.tolist())) == \
                (expect * c if fc_pt else expect)
            assert rq.bias.tolist() == bias.tolist()
            assert (rq.act_min, rq.act_max) == tr.act_range("relu6", s_out, 3)


def test_fully_connected_float_rescale_matches_the_kernel(rng):
    for trial in range(20):
        n, k, c = 3, int(rng.integers(1, 60)), int(rng.integers(1, 6))
        x = rng.integers(-128, 128, (n, k)).astype(np.int8)
        w = rng.integers(-127, 128, (c, k)).astype(np.int8)
        b = rng.integers(-5000, 5000, c)
        s_in, s_out = np.float32(0.02), np.float32(10 ** rng.uniform(-1.5, 0))
        ws = (10 ** rng.uniform(-3, -1, c)).astype(np.float32)
        zi, zo = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
        got = fully_connected_float_rescale(x, w, zi, b, s_in, ws, s_out, zo, -100, 120)
        expect = [[tr.fc_float_one(x[i], w[j], zi, int(b[j]), s_in, ws[j], s_out, zo, -100, 120)
                   for j in range(c)] for i in range(n)]
        assert got.tolist() == expect


def test_float_and_integer_rescale_differ_near_ties():
    """acc * eff = -39.4995: float rounding gives -39; gemmlowp's double rounding first
    rounds acc * m0 / 2^31 to -2528 = -39.5 * 64, then rounds that tie away: -40."""
    s_in, s_w, s_out = np.float32(1.0), np.float32(1.0), np.float32(1.0)
    m0, shift = 1192088672, -6
    rq = L.RequantParams(bias=[0], m0=[m0], shift=[shift], out_zero_point=0)
    acc = -4554
    xa = np.array([[-128] * 35 + [-74]], np.int8)          # sum = -4554 with w = 1
    wa = np.ones((1, 36), np.int8)
    assert int(xa.astype(np.int64).sum()) == acc
    assert L.fully_connected(xa, wa, 0, rq).tolist() == [[-40]]
    eff = m0 / 2.0 ** (31 - shift)
    got = fully_connected_float_rescale(xa, wa, 0, None, s_in, np.float32(eff), s_out, 0)
    assert got.tolist() == [[-39]]
