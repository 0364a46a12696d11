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
