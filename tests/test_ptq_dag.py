"""PTQ of graph (DAG) float networks (issue 13): residual ``add`` and ``concat`` become the
artifact's TFLite ``add`` / ``quantize`` + ``concatenation`` with the golden ops'
parameters; the integer network tracks the float one; it runs on the RTL with 0
mismatches; ``qmac qat`` fine-tunes a graph into the same artifact structure
(``tests/test_qat_dag.py`` has the QAT checks).

Bounds (``docs/onnx.md``): the residual digits network (trained digits CNN with an
inverted residual block, an add and a concat) quantized to 8 bits keeps output SQNR >= 30
dB and argmax agreement >= 98 % with its float network on the 540 test images (measured
38.4 - 39.4 dB and 99.6 - 100 % over 12 model seeds): each 8-bit tensor adds
quantization noise some 40 - 45 dB below its signal and ten tensors are
quantized in turn, so ~39 dB; the bound leaves ~9 dB for other weights.  The random
MobileNetV2-style ONNX model (16 layers, 2 residual adds) keeps >= 25 dB (measured 33.3
- 34.5 dB)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pymodel import datasets
from pymodel.frontends.onnx_float import import_onnx_float
from pymodel.graph import inference
from pymodel.graph.artifact import load_artifact, save_artifact
from pymodel.graph.network import load_network
from pymodel.ops import elementwise as E
from pymodel.quantization import cle, ptq
import onnx_models

REPO = Path(__file__).resolve().parents[1]


def _qmac(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pymodel", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=120)


def _sqnr(ref: np.ndarray, got: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref ** 2) / np.sum((ref - got) ** 2)))


@pytest.fixture
def residual(tmp_path, rng):
    return load_network(onnx_models.residual_digits(tmp_path / "res", rng))


def test_residual_digits_ptq_tracks_float(residual, tmp_path):
    net = residual
    calib, test = datasets.digits("calib"), datasets.digits("test")
    qnet = load_artifact(save_artifact(ptq.calibrate(net, calib.x), tmp_path / "res_int8"))
    assert [(q.name, q.op, q.inputs) for q in qnet.layers if q.op not in
            ("conv2d", "depthwise_conv2d", "flatten", "fully_connected")] == [
        ("res", "add", ("conv1", "project")), ("cat_rq0", "quantize", ("res",)),
        ("cat_rq1", "quantize", ("conv1",)), ("cat", "concatenation", ("cat_rq0", "cat_rq1"))]
    assert qnet.layer("conv2").inputs == ("cat",) and qnet.layer("expand").inputs == ("conv1",)
    # the add is TFLite's ADD prepared from the tensors' scales (float32), nothing else
    add = qnet.layer("res")
    q1, q2 = (qnet.layer(s).output for s in add.inputs)
    prm = E.prepare_add(q1.scale, q1.zero_point, q2.scale, q2.zero_point, add.output.scale,
                        add.output.zero_point, activation="relu")
    assert dict(add.params) == {f: getattr(prm, f) for f in add.params}
    t = inference.run_tensors(qnet, inference.quantize_input(qnet, test.x))
    assert np.array_equal(t["res"], E.add(t["conv1"], t["project"], prm))
    assert np.array_equal(t["cat"][..., :8], t["cat_rq0"])
    # the integer network tracks the float one (bounds: module doc)
    f = net.forward(test.x)
    y = inference.dequantize(t["fc2"], qnet.layer("fc2").output)
    sqnr, agree = _sqnr(f, y), float(np.mean(f.argmax(1) == y.argmax(1)))
    print(f"residual digits PTQ: output SQNR {sqnr:.2f} dB, argmax agreement "
          f"{100 * agree:.2f} %, accuracy float {100 * np.mean(f.argmax(1) == test.y):.2f} "
          f"% int8 {100 * np.mean(y.argmax(1) == test.y):.2f} %")
    assert sqnr >= 30 and agree >= 0.98


def test_quantize_and_qat_cli_on_a_dag(residual, tmp_path):
    yml = Path(residual.source)
    r = _qmac("calibrate", str(yml), "--out", str(tmp_path / "st.npz"), "--no-progress")
    assert r.returncode == 0, r.stderr
    r = _qmac("quantize", str(yml), "--stats", str(tmp_path / "st.npz"), "--out",
              str(tmp_path / "cli_int8"), "--no-progress")
    assert r.returncode == 0, r.stderr
    cli = load_artifact(tmp_path / "cli_int8.yaml")
    lib = ptq.calibrate(residual, datasets.digits("calib").x)
    assert cli.arrays().keys() == lib.arrays().keys()
    assert all(np.array_equal(v, lib.arrays()[k]) for k, v in cli.arrays().items())
    assert [dict(q.params) for q in cli.layers] == [dict(q.params) for q in lib.layers]
    # QAT of the DAG through the CLI: the artifact has PTQ's graph structure, and the
    # golden run of it agrees with the fake-quant network on every test image
    r = _qmac("qat", str(yml), "--epochs", "1", "--freeze-epochs", "1", "--train-images",
              "64", "--out", str(tmp_path / "cli_qat"), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "540 identical predictions, 540 identical int8 logit vectors" in r.stdout, r.stdout
    q = load_artifact(tmp_path / "cli_qat.yaml")
    assert [(l.name, l.op, l.inputs) for l in q.layers] == \
        [(l.name, l.op, l.inputs) for l in lib.layers]
    assert q.meta["qat"]["train_images"] == 64


def test_cle_and_bias_correction_on_a_dag(residual):
    pairs, skipped = cle.find_pairs(residual)
    assert [(p.first, p.second) for p in pairs] == [("conv2", "fc1"), ("fc1", "fc2")]
    assert ("conv1", "expand", "not a chain between them: a tensor between them is read "
            "by another layer (a branch)") in skipped
    eq, _ = cle.equalize(residual)
    x = datasets.digits("test").x[:64]
    assert np.abs(eq.forward(x) - residual.forward(x)).max() < 1e-9
    from pymodel.quantization import bias_correction as bc
    means = bc.collect_input_means(residual, [x], layers=["conv2", "expand"])
    outs = dict(zip([s.name for s in residual.layers], residual.forward_all(x)))
    spec = residual.layer("conv2")
    np.testing.assert_allclose(means["conv2"],
                               bc.gemm_rows_float(spec, outs["cat"]).mean(axis=0))
    np.testing.assert_allclose(means["expand"],
                               bc.gemm_rows_float(residual.layer("expand"),
                                                  outs["conv1"]).mean(axis=0))


def test_mobilenet_v2_style_onnx_to_artifact(tmp_path):
    path = onnx_models.mobilenet_v2_style(tmp_path / "mbv2.onnx", np.random.default_rng(1))
    _, _, net = import_onnx_float(path)
    qnet = ptq.calibrate(net, datasets.digits("calib").x)
    assert [q.op for q in qnet.layers].count("add") == 2
    x = datasets.digits("test").x
    y = inference.dequantize(inference.logits(qnet, x), qnet.layers[-1].output)
    sqnr = _sqnr(net.forward(x), y)
    print(f"MobileNetV2-style ONNX -> PTQ: output SQNR {sqnr:.2f} dB")
    assert sqnr >= 25


@pytest.mark.rtl
@pytest.mark.slow
def test_residual_digits_artifact_on_rtl(residual, tmp_path, seed):
    from tb import test_network
    art = save_artifact(ptq.calibrate(residual, datasets.digits("calib").x),
                        tmp_path / "res_int8")
    rep = test_network.run(artifact=art, images=2, seed=seed)
    print(test_network.format_report(rep))
    assert [lay.mismatches for lay in rep.layers] == [0] * len(rep.layers)
    assert rep.rtl_pred == rep.golden_pred
    assert sum(lay.where == "rtl" for lay in rep.layers) == 6          # conv / FC on the engine
    where = {lay.op: lay.where for lay in rep.layers}
    assert where["depthwise_conv2d"] == "rtl:window" and where["add"] == "rtl:eltwise"
    assert where["concatenation"] == "host"
