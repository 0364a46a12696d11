"""Imported TFLite models on the three RTL units (tb/test_units_network.py), and through
the AXI top that contains them (tb/test_network.py, ``make sim MODEL=``).

resnet_style: every layer but its RESHAPE (host: data movement only) runs on the RTL --
convolutions and the FC on qlayer_engine, max / average pooling on window_engine, the
residual ADDs on eltwise_engine -- and every layer's output equals the golden model.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tb import kit
from tb import test_units_network as tb_units

MODELS = kit.REPO_ROOT / "models" / "tflite"


@pytest.mark.rtl
@pytest.mark.slow
def test_resnet_style_on_the_units(seed: int) -> None:
    rep = tb_units.run(MODELS / "resnet_style.tflite", 1, seed=seed)
    on = {l["name"]: l["where"] for l in rep["layers"]}
    assert [n for n, w in on.items() if w == "host"] == ["reshape_10"], on
    assert {w for w in on.values()} == {"rtl:gemm", "rtl:window", "rtl:eltwise", "host"}
    assert all(l["mismatches"] == 0 for l in rep["layers"])
    assert rep["rtl_pred"] == rep["golden_pred"]


@pytest.mark.rtl
@pytest.mark.slow
def test_mobilenetv2_style_on_the_units(seed: int) -> None:
    """Depthwise (multiplier 1), residual ADDs and MEAN on the units; the multiplier-2
    depthwise and SOFTMAX are the host's (no hardware for them)."""
    rep = tb_units.run(MODELS / "mobilenetv2_style.tflite", 1, seed=seed)
    host = sorted(l["op"] for l in rep["layers"] if l["where"] == "host")
    assert host == ["depthwise_conv2d", "softmax"], host
    window = sorted({l["op"] for l in rep["layers"] if l["where"] == "rtl:window"})
    assert window == ["depthwise_conv2d", "mean"], window
    assert all(l["mismatches"] == 0 for l in rep["layers"])
    assert rep["rtl_pred"] == rep["golden_pred"]
    # the same image in bulk (tb/bulk_units.py, Verilator): the same units, work and
    # figures -- window / element-wise cycles equal, the layer engine's within one (bulk
    # counts from the last load write)
    from tb import bulk_units
    fast = bulk_units.run_model(MODELS / "mobilenetv2_style.tflite", 1)
    assert fast["rtl_pred"] == rep["rtl_pred"] and fast["output_equal"]
    for a, b in zip(rep["layers"], fast["layers"]):
        assert (a["name"], a["where"], a["macs"]) == (b["name"], b["where"], b["macs"])
        tol = 1 if a["where"] == "rtl:gemm" else 0
        assert abs(a["cycles"] - b["cycles"]) <= tol, (a["name"], a["cycles"], b["cycles"])


@pytest.mark.rtl
@pytest.mark.slow
def test_resnet_style_through_the_top(seed: int) -> None:
    """The same model through qmac_top's AXI interfaces only (``make sim MODEL=``): conv /
    FC on the engine, pooling on the top's window unit, the residual ADDs on its eltwise
    unit (GEMM passes loaded ahead, their START held behind the unit layers)."""
    from tb import test_network
    rep = test_network.run(model=MODELS / "resnet_style.tflite", images=1, seed=seed)
    on = {l.name: l.where for l in rep.layers}
    assert [n for n, w in on.items() if w == "host"] == ["reshape_10"], on
    assert set(on.values()) == {"rtl", "rtl:window", "rtl:eltwise", "host"}
    assert [l.mismatches for l in rep.layers] == [0] * len(rep.layers)
    assert rep.rtl_pred == rep.golden_pred


def test_bad_model_is_a_one_line_error(tmp_path) -> None:
    r = subprocess.run([sys.executable, "-m", "tb.run", "--model", str(tmp_path / "no.tflite")],
                       capture_output=True, text=True, cwd=kit.REPO_ROOT)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().count("\n") == 0 and "MODEL / model" in r.stderr, r.stderr
