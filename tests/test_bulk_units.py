"""The bulk path of the window and element-wise units (tb/bulk_units.py +
sim/verilator/unit_harness.cpp) and of a whole imported model.

Random depthwise / pooling / MEAN layers and random ADD / SUB / MUL tensors run through the
Verilated units with random stalls on every stream, every output == the golden model; a
wrong expected beat and an RTL ``$error`` each fail loudly; the MobileNetV2-style model
walks its graph over the three bulk units with the same results however its images are
split over worker processes, and its per-layer figures equal the cocotb path's
(tests/test_rtl_units_network.py runs that one on Icarus).
"""

from __future__ import annotations

import numpy as np
import pytest

from pymodel.ops.eltwise_stages import eltwise_engine
from tb import bulk_units, kit
from tb.test_eltwise_engine import OPS as ELT_OPS, random_params
from tb.test_window_engine import ops_of, random_layer
from tb.window import golden

pytestmark = [pytest.mark.rtl, pytest.mark.slow]

MODELS = kit.REPO_ROOT / "models" / "tflite"


def test_bulk_window_random_layers_with_stalls(rng: np.random.Generator) -> None:
    """Two random layers of every op (depthwise 3x3 / 5x5, max, average, MEAN; strides,
    dilations, explicit padding, ragged channel groups, several tiles) with 30 % idle
    input cycles and 30 % output back-pressure: every output == the golden model's."""
    with bulk_units.BulkWindow(in_stall=0.3, out_stall=0.3, seed=int(rng.integers(1 << 31))) as win:
        for op in ops_of(win):
            for i in range(2):
                layer = random_layer(rng, win, op, f"{op}_{i}")
                out, st, g = win.run_layer_sync(layer)
                assert np.array_equal(out, g.out), layer.name
                assert st.cycles > 0 and st.macs > 0 and st.jobs >= 1


def test_bulk_eltwise_random_tensors_with_stalls(rng: np.random.Generator) -> None:
    """Random ADD / SUB / MUL tensors (odd lengths: a partial last beat) and parameters
    with 30 % stalls on both sides: every output == the golden model's."""
    with bulk_units.BulkEltwise(in_stall=0.3, out_stall=0.3, seed=int(rng.integers(1 << 31))) as elt:
        for i in range(9):
            op = ELT_OPS[i % 3]
            n = int(rng.integers(1, 700))
            a, b = (rng.integers(-128, 128, n).astype(np.int8) for _ in range(2))
            p = random_params(rng, op)
            t0 = elt.clock.cycle()
            out = elt.run_tensor_sync(f"t{i}", op, a, b, p)
            assert np.array_equal(out, eltwise_engine(a, b, op, p)), (op, n)
            assert elt.clock.cycle() - t0 >= -(-n // elt.lanes)


def test_bulk_window_reports_a_mismatch(rng: np.random.Generator,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A golden value off by one: the message names the layer, the output pixel, the
    channel group, the lane, the cycle and both values."""
    import tb.window as W
    real = W.golden

    def off_by_one(layer):
        g = real(layer)
        g.out = g.out.copy()
        g.out[0, 1, 2, 3] = np.int8(int(g.out[0, 1, 2, 3]) ^ 1)
        return g

    monkeypatch.setattr(W, "golden", off_by_one)
    with bulk_units.BulkWindow() as win:
        layer = random_layer(rng, win, "max", "broken")
        layer.x = rng.integers(-128, 128, (1, 6, 6, 8)).astype(np.int8)
        layer.kernel, layer.stride, layer.padding = (3, 3), (1, 1), "same"
        with pytest.raises(kit.Mismatch) as exc:
            win.run_layer_sync(layer)
    msg = str(exc.value)
    print(msg)
    assert "MISMATCH in window_engine layer 'broken', output pixel (image 0, y 1, x 2)" in msg
    assert "column 3, cycle " in msg and "1 output elements in this layer" in msg


def test_bulk_eltwise_reports_a_mismatch(rng: np.random.Generator,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong expected element of an ADD is reported with its beat, lane and cycle."""
    import pymodel.ops.eltwise_stages as S
    real = S.eltwise_engine

    def broken(x1, x2, op, p):
        y = np.array(real(x1, x2, op, p))
        y[13] = np.int8(int(y[13]) ^ 4)
        return y

    monkeypatch.setattr(S, "eltwise_engine", broken)
    with bulk_units.BulkEltwise() as elt:
        a, b = (rng.integers(-128, 128, 40).astype(np.int8) for _ in range(2))
        with pytest.raises(kit.Mismatch, match=r"MISMATCH in eltwise_engine layer 'bad', op add "
                                               r"beat 1 \(elements 8\.\.15\), column 5, cycle "):
            elt.run_tensor_sync("bad", "add", a, b, random_params(rng, "add"))


def test_bulk_units_rtl_error_fails() -> None:
    """A configuration the RTL rejects with $error (eltwise OP = 3) fails the run."""
    with bulk_units.BulkEltwise() as elt:
        seg = bulk_units.Segment(writes=[(bulk_units.KIND_CFG, (0, 3), None)])
        with pytest.raises(bulk_units.BulkFailed, match="the RTL reported an error"):
            elt.play("bad_op", [seg])


def test_bulk_mobilenetv2_style_graph(seed: int) -> None:
    """The MobileNetV2-style model (residual ADDs: a DAG) on 3 images: the same outputs and
    work in one worker process as split over two, 0 mismatches, the multiplier-2
    depthwise and SOFTMAX on the host as on the cocotb path."""
    one = bulk_units.run_model(MODELS / "mobilenetv2_style.tflite", 3, parts=1)
    two = bulk_units.run_model(MODELS / "mobilenetv2_style.tflite", 3, parts=2)
    for rep in (one, two):
        assert rep["output_equal"] and all(l["mismatches"] == 0 for l in rep["layers"])
        host = sorted(l["op"] for l in rep["layers"] if l["where"] == "host")
        assert host == ["depthwise_conv2d", "softmax"], host
    assert one["rtl_pred"] == two["rtl_pred"] == one["golden_pred"]
    assert [l["where"] for l in one["layers"]] == [l["where"] for l in two["layers"]]
    # the work is the same; the cycles differ (each part loads its own weights)
    for a, b in zip(one["layers"], two["layers"]):
        assert (a["macs"], a["out_shape"]) == (b["macs"], b["out_shape"]), a["name"]


def test_bulk_window_extreme_shapes(rng: np.random.Generator) -> None:
    """Legal layers at the edges of the window engine's configuration ranges (found by
    `make coverage`): average windows as large as the 32 x 32 buffer (1024 taps, sums up
    to 2^17: the tap counter and the average divider's widest operands), kernels of 9
    and 17 ('same' padding of 8), strides of 4, 5 and 255, 32 x 32 outputs of a 1 x 1
    depthwise kernel with dilation 255, dilations of 16, and a width above W_MAX with a
    left padding of 40 and a right padding so wide that a column tile lies wholly in it
    (a negative PAD_L)."""
    from pymodel.ops.layers import RequantParams
    from tb.window import WindowLayer

    def rq(c: int) -> RequantParams:
        return RequantParams(bias=rng.integers(-(1 << 12), 1 << 12, c), m0=rng.integers(1 << 30, 1 << 31, c),
                             shift=rng.choice([-1, -6, -12], c), out_zero_point=3, act_min=-128, act_max=127)

    def x(h: int, w: int, c: int = 8) -> np.ndarray:
        return rng.integers(-128, 128, (1, h, w, c)).astype(np.int8)

    def dw(name: str, xx: np.ndarray, kernel, stride=(1, 1), dilation=(1, 1), padding="valid"):
        c = xx.shape[3]
        return WindowLayer(name=name, op="dw", x=xx, kernel=kernel, stride=stride, dilation=dilation,
                           padding=padding, w=rng.integers(-127, 128, (1, *kernel, c)).astype(np.int8),
                           in_zero_point=-7, rq=rq(c))

    # a 32 x 32 average over constant images too: window sums up to 128 x 1024 = 2^17
    big = np.concatenate([x(32, 32), np.full((1, 32, 32, 8), -128, np.int8),
                          np.full((1, 32, 32, 8), -127, np.int8), np.full((1, 32, 32, 8), 127, np.int8),
                          x(32, 32)])
    layers = [
        dw("dw3x3_wide_pad", x(5, 40), (3, 3), padding=((1, 1), (40, 40))),
        WindowLayer(name="avg32x32", op="avg", x=big, kernel=(32, 32)),
        WindowLayer(name="avg9x17", op="avg", x=x(32, 32), kernel=(9, 17), stride=(4, 5), padding="same"),
        WindowLayer(name="max_s255", op="max", x=x(32, 32), kernel=(2, 2), stride=(255, 255)),
        WindowLayer(name="max9x17", op="max", x=x(31, 30), kernel=(9, 17), stride=(2, 1), padding="same"),
        WindowLayer(name="max17x9", op="max", x=x(30, 31), kernel=(17, 9), stride=(1, 2), padding="same"),
        dw("dw1x1_d255", x(32, 32), (1, 1), dilation=(255, 255)),
        dw("dw2x3_d16", x(32, 20), (2, 3), dilation=(16, 4), padding="same"),
        dw("dw3x2_d16", x(20, 32), (3, 2), dilation=(4, 16), padding="same"),
        WindowLayer(name="max3x3", op="max", x=x(8, 8), kernel=(3, 3)),
    ]
    with bulk_units.BulkWindow() as win:
        for layer in layers:
            out, st, g = win.run_layer_sync(layer)
            assert np.array_equal(out, g.out), layer.name


def test_bulk_eltwise_all_input_shifts(rng: np.random.Generator) -> None:
    """ADD and SUB with every input shift -31..0 (every bit of the right-shift amount and
    of the rounding mask; Prepare's shifts from real scales are only a few of them)."""
    from pymodel.ops import elementwise as E
    with bulk_units.BulkEltwise() as elt:
        for s in range(32):
            op = ("add", "sub")[s % 2]
            p = E.AddParams(in1_zero_point=int(rng.integers(-128, 128)), in2_zero_point=-3,
                            out_zero_point=5, left_shift=20,
                            in1_multiplier=int(rng.integers(1 << 30, 1 << 31)), in1_shift=-s,
                            in2_multiplier=int(rng.integers(1 << 30, 1 << 31)), in2_shift=-(31 - s),
                            out_multiplier=1 << 30, out_shift=int(rng.integers(-2, 1)),
                            act_min=-128, act_max=127)
            a, b = (rng.integers(-128, 128, 64).astype(np.int8) for _ in range(2))
            out = elt.run_tensor_sync(f"shift{s}", op, a, b, p)
            assert np.array_equal(out, eltwise_engine(a, b, op, p)), s
