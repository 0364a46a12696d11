"""QDQ ONNX import (``qmac import model.onnx``): onnxruntime's quantizer output on the
digits network -> artifact -> golden model / RTL, and the agreement with onnxruntime.

The models are built here: the shipped float digits CNN as float ONNX, quantized by
``onnxruntime.quantization.quantize_static`` (QDQ; per-tensor and per-channel weights;
MinMax and Entropy calibration) on the digits calib split.  Every element that differs
from onnxruntime (graph optimizations off and on) must be classified
(:mod:`pymodel.study.onnx_agreement`); the figures are pinned (docs/onnx.md).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pymodel import datasets
from pymodel.frontends.onnx_qdq import import_onnx_qdq
from pymodel.graph.artifact import load_artifact
from pymodel.graph.inference import run_tensors, quantize_input
from pymodel.study.onnx_agreement import compare
import onnx_models

REPO = Path(__file__).resolve().parents[1]
VARIANTS = [(False, "MinMax"), (True, "MinMax"), (True, "Entropy")]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("onnx_qdq")
    f = onnx_models.float_digits(d / "digits_float.onnx")
    return {v: onnx_models.quantize_qdq(f, d / f"digits_{'pc' if v[0] else 'pt'}_{v[1]}.onnx",
                                        *v) for v in VARIANTS}


def _qmac(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pymodel", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=120)


def test_import_maps_the_digits_network(models, tmp_path):
    path = models[(True, "MinMax")]
    out = tmp_path / "qdq"
    r = _qmac("import", str(path), "-o", str(out))
    assert r.returncode == 0, r.stderr
    qnet = load_artifact(out.with_suffix(".yaml"))
    assert [l.op for l in qnet.layers] == ["conv2d", "conv2d", "reshape", "fully_connected",
                                           "fully_connected"]
    assert qnet.layers[0].weight_granularity == "per_channel"
    assert qnet.meta["source"]["format"] == "onnx-qdq"
    # the written artifact runs like the in-memory import
    x = quantize_input(qnet, datasets.digits("test").x[:20])
    direct = run_tensors(import_onnx_qdq(path), x)
    loaded = run_tensors(qnet, x)
    assert all(np.array_equal(direct[k], loaded[k]) for k in direct)


def test_multipliers_come_from_the_qdq_scales_as_tflite_computes_them(models):
    """The conv's m0 / shift are QuantizeMultiplier(double(s_in) * double(s_w) /
    double(s_out)) of the model's float32 scales; the biases are the model's int32."""
    import onnx
    from onnx import numpy_helper
    from pymodel.arithmetic.fixedpoint import quantize_multiplier
    path = models[(True, "MinMax")]
    inits = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}
    q = import_onnx_qdq(path).layers[1]
    s_in, s_out = inits["conv1_relu_scale"], inits["conv2_relu_scale"]
    for c, s_w in enumerate(inits["conv2.weight_scale"]):
        m0, shift = quantize_multiplier(float(s_in) * float(s_w) / float(s_out))
        assert (int(q.m0[c]), int(q.shift[c])) == (m0, shift)
    assert np.array_equal(q.bias, inits["conv2.bias_quantized"])
    w = inits["conv2.weight_quantized"].transpose(0, 2, 3, 1)        # OIHW -> OHWI
    assert np.array_equal(q.weight, w)


# (per_channel, method, optimized) -> (argmax agree of 540, final elements differing,
#  of which near-tie / propagated, isolated-layer near-ties); unexplained always 0.
PINNED = {
    (False, "MinMax", False): (540, 278, 7, 271, 508),
    (False, "MinMax", True): (540, 278, 7, 271, 507),
    (True, "MinMax", False): (540, 230, 8, 222, 402),
    (True, "MinMax", True): (540, 230, 8, 222, 402),
    (True, "Entropy", False): (540, 230, 8, 222, 402),
    (True, "Entropy", True): (540, 230, 8, 222, 402),
}


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"{v[0] and 'pc' or 'pt'}-{v[1]}")
def test_agreement_with_onnxruntime_every_difference_explained(models, variant):
    path = models[variant]
    qnet = import_onnx_qdq(path)
    test = datasets.digits("test")
    for optimized in (False, True):
        a = compare(path, qnet, test.x, optimized)
        print(variant, "optimized" if optimized else "plain", a)
        assert a.classes["unexplained"] == 0, a.per_layer
        assert a.input_differ == 0
        assert a.max_abs_diff <= 1
        assert a.argmax_agree >= 0.99 * a.images
        got = (a.argmax_agree, a.output_differ, a.output_classes["near_tie"],
               a.output_classes["propagated"], a.classes["near_tie"])
        assert got == PINNED[(*variant, optimized)], got


def test_optimized_sessions_use_exact_u8u8_kernels(models, tmp_path):
    """The comparison's optimized sessions run onnxruntime's exact U8U8 kernels (int8
    weights turned into uint8 by ``session.x64quantprecision``), not the U8S8 ones that
    saturate 16-bit pair sums on x86 CPUs without VNNI (pymodel.study.onnx_agreement):
    the fused kernels' weights in the optimized graph are uint8."""
    import onnx
    from pymodel.study.onnx_agreement import _Ort
    ox = _Ort(models[(True, "MinMax")], optimized=True)
    ox.so.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ox.session(ox.model)
    g = onnx.load(str(tmp_path / "optimized.onnx")).graph
    types = {t.name: t.data_type for t in g.initializer}
    fused = [n for n in g.node if n.op_type in ("QLinearConv", "QGemm")]
    assert [n.op_type for n in fused] == ["QLinearConv", "QLinearConv", "QGemm", "QGemm"]
    assert all(types[n.input[3]] == onnx.TensorProto.UINT8 for n in fused), \
        [(n.name, types[n.input[3]]) for n in fused]


@pytest.mark.rtl
@pytest.mark.slow
def test_imported_qdq_model_on_rtl(models, tmp_path, seed):
    from tb import test_network
    out = tmp_path / "qdq"
    r = _qmac("import", str(models[(False, "MinMax")]), "-o", str(out))
    assert r.returncode == 0, r.stderr
    rep = test_network.run(artifact=out.with_suffix(".yaml"), images=2, seed=seed)
    print(test_network.format_report(rep))
    assert [l.mismatches for l in rep.layers] == [0] * len(rep.layers)
    assert rep.rtl_pred == rep.golden_pred
    assert sum(l.where == "rtl" for l in rep.layers) == 4
