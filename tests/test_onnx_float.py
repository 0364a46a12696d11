"""Float ONNX import (``qmac import-float``): the digits network exported to float ONNX
comes back as the same float network (outputs within 1e-5, PTQ gives the same artifact);
a MobileNet-style chain with BatchNormalization, depthwise conv, ReLU6, pools and MatMul
matches onnxruntime within 1e-5, and so do DAGs: a MobileNetV2-style network with residual
Adds and a Concat; bad models give one line and exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pymodel import datasets
from pymodel.frontends.onnx_float import import_onnx_float
from pymodel.graph.network import load_network
from pymodel.quantization import ptq
from pymodel.schema import load_yaml
from pymodel.training import digits
import onnx_models

REPO = Path(__file__).resolve().parents[1]
DIGITS_YAML = REPO / "models" / "digits" / "digits_cnn.yaml"


def _qmac(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pymodel", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=120)


def test_digits_round_trip_and_same_ptq_artifact(tmp_path):
    f = onnx_models.float_digits(tmp_path / "digits.onnx")
    ref = digits.load()
    x = datasets.digits("test").x
    _, params, net = import_onnx_float(f, like=load_yaml(DIGITS_YAML))
    assert [s.op for s in net.layers] == [s.op for s in ref.layers]
    assert np.abs(net.forward(x) - ref.forward(x)).max() < 1e-5
    # the ONNX weights are the YAML's rounded to float32, permuted exactly
    for k, v in ref.params.items():
        assert np.array_equal(params[k], v.astype(np.float32).astype(np.float64)), k
    # the command line writes the same network; PTQ of it and of the YAML network with
    # the same (float32-rounded) weights give the same artifact
    r = _qmac("import-float", str(f), "-o", str(tmp_path / "imported"), "--name",
              "digits_cnn", "--like", str(DIGITS_YAML))
    assert r.returncode == 0, r.stderr
    assert "inputs:" not in (tmp_path / "imported.yaml").read_text()   # a chain: no inputs keys
    calib = datasets.digits("calib").x
    a = ptq.calibrate(load_network(tmp_path / "imported.yaml"), calib)
    b = ptq.calibrate(ref.with_params({k: v.astype(np.float32) for k, v in ref.params.items()}),
                      calib)
    assert a.input == b.input
    assert len(a.layers) == len(b.layers)
    for la, lb in zip(a.layers, b.layers):
        assert (la.name, la.op, la.input, la.output, la.act_min, la.act_max) == \
            (lb.name, lb.op, lb.input, lb.output, lb.act_min, lb.act_max)
        for k in ("weight", "weight_scale", "bias", "bias_folded", "m0", "shift"):
            va, vb = getattr(la, k), getattr(lb, k)
            assert (va is None and vb is None) or np.array_equal(va, vb), (la.name, k)


def _mobilenet_chain(path: Path, rng: np.random.Generator) -> Path:
    """Conv+BN+ReLU6 -> depthwise Conv+BN+ReLU -> MaxPool -> 1x1 Conv -> AveragePool ->
    GlobalAveragePool -> Flatten -> MatMul + Add (random weights)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def t(name, a):
        return numpy_helper.from_array(np.asarray(a, np.float32), name)

    def bn(prefix, c):
        return [t(f"{prefix}.g", rng.uniform(0.5, 1.5, c)), t(f"{prefix}.b", rng.normal(0, .1, c)),
                t(f"{prefix}.m", rng.normal(0, .1, c)), t(f"{prefix}.v", rng.uniform(.5, 2, c))]

    inits = [t("w1", rng.normal(0, .3, (8, 3, 3, 3))), t("b1", rng.normal(0, .1, 8)),
             *bn("bn1", 8), t("w2", rng.normal(0, .3, (16, 1, 3, 3))), *bn("bn2", 16),
             t("w3", rng.normal(0, .3, (12, 16, 1, 1))), t("b3", rng.normal(0, .1, 12)),
             t("wf", rng.normal(0, .3, (12, 5))), t("bf", rng.normal(0, .1, 5)),
             t("lo", 0.0), t("hi", 6.0)]
    N = helper.make_node
    nodes = [
        N("Conv", ["x", "w1", "b1"], ["c1"], name="stem", kernel_shape=[3, 3], strides=[2, 2],
          pads=[1, 1, 1, 1]),
        N("BatchNormalization", ["c1", "bn1.g", "bn1.b", "bn1.m", "bn1.v"], ["n1"], name="bn1"),
        N("Clip", ["n1", "lo", "hi"], ["r1"], name="relu6"),
        N("Conv", ["r1", "w2"], ["c2"], name="dw", kernel_shape=[3, 3], group=8,
          pads=[1, 1, 1, 1]),
        N("BatchNormalization", ["c2", "bn2.g", "bn2.b", "bn2.m", "bn2.v"], ["n2"], name="bn2",
          epsilon=1e-3),
        N("Relu", ["n2"], ["r2"], name="relu"),
        N("Dropout", ["r2"], ["d2"], name="drop"),
        N("MaxPool", ["d2"], ["p2"], name="maxpool", kernel_shape=[2, 2], strides=[2, 2]),
        N("Conv", ["p2", "w3", "b3"], ["c3"], name="project", kernel_shape=[1, 1]),
        N("AveragePool", ["c3"], ["p3"], name="avgpool", kernel_shape=[3, 3], strides=[1, 1],
          pads=[1, 1, 1, 1]),
        N("GlobalAveragePool", ["p3"], ["g"], name="gap"),
        N("Flatten", ["g"], ["f"], name="flatten"),
        N("MatMul", ["f", "wf"], ["mm"], name="head"),
        N("Add", ["mm", "bf"], ["y"], name="head_bias"),
    ]
    graph = helper.make_graph(nodes, "mbv2_chain",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_mobilenet_style_chain_matches_onnxruntime(tmp_path, rng):
    import onnxruntime as ort
    path = _mobilenet_chain(tmp_path / "m.onnx", rng)
    _, _, net = import_onnx_float(path)
    assert [s.op for s in net.layers] == ["conv2d", "depthwise_conv2d", "max_pool2d", "conv2d",
                                          "avg_pool2d", "avg_pool2d", "flatten",
                                          "fully_connected"]
    assert [s.activation for s in net.layers[:2]] == ["relu6", "relu"]
    x = rng.uniform(-1, 1, (8, 16, 16, 3))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = np.concatenate([sess.run(None, {"x": onnx_models.nchw(x[i:i + 1])})[0]
                           for i in range(len(x))])
    assert np.abs(net.forward(x) - want).max() < 1e-5


def test_mobilenet_v2_style_dag_matches_onnxruntime(tmp_path, rng):
    """Residual Adds with BatchNormalization folded: the imported graph is wired as the
    ONNX graph and computes onnxruntime's outputs within 1e-5 (measured 1.0e-6 at seed 1,
    outputs up to ~4)."""
    path = onnx_models.mobilenet_v2_style(tmp_path / "mbv2.onnx", rng)
    config, _, net = import_onnx_float(path)
    assert not net.is_chain
    adds = {s.name: s.inputs for s in net.layers if s.op == "add"}
    assert adds == {"b1_add": ("stem", "b1_project"), "b3_add": ("b2_project", "b3_project")}
    assert [s.activation for s in net.layers if s.name.endswith("project")] == ["none"] * 3
    # only the adds name their inputs: every other layer reads the previous one
    assert [lay["name"] for lay in config["layers"] if "inputs" in lay] == ["b1_add", "b3_add"]
    x = datasets.digits("test").x[:64]
    want = onnx_models.onnxruntime_outputs(path, x)
    err = np.abs(net.forward(x) - want).max()
    print(f"MobileNetV2-style DAG vs onnxruntime: max |error| {err:.3g}")
    assert err < 1e-5
    r = _qmac("import-float", str(path), "-o", str(tmp_path / "mbv2"))
    assert r.returncode == 0, r.stderr
    again = load_network(tmp_path / "mbv2.yaml")
    assert np.array_equal(again.forward(x), net.forward(x))


def _concat_model(path: Path, rng: np.random.Generator, axis: int = 1) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def t(name, a):
        return numpy_helper.from_array(np.asarray(a, np.float32), name)

    N = helper.make_node
    nodes = [N("Conv", ["x", "wa", "ba"], ["a"], name="a", kernel_shape=[3, 3], pads=[1] * 4),
             N("Relu", ["a"], ["ar"], name="a_relu"),
             N("Conv", ["x", "wb"], ["b"], name="b", kernel_shape=[1, 1]),
             N("Concat", ["ar", "b"], ["cat"], name="cat", axis=axis),
             N("GlobalAveragePool", ["cat"], ["g"], name="gap"),
             N("Flatten", ["g"], ["f"], name="flatten"),
             N("Gemm", ["f", "wf"], ["y"], name="fc", transB=1)]
    cb = 3 if axis == 1 else 4                 # other axes: equal channels, a valid model
    inits = [t("wa", rng.normal(0, .5, (4, 2, 3, 3))), t("ba", rng.normal(0, .1, 4)),
             t("wb", rng.normal(0, .5, (cb, 2, 1, 1))),
             t("wf", rng.normal(0, .5, (5, 4 + cb if axis == 1 else 4)))]
    graph = helper.make_graph(nodes, "cat",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_concat_dag_matches_onnxruntime(tmp_path, rng):
    path = _concat_model(tmp_path / "cat.onnx", rng)
    _, _, net = import_onnx_float(path)
    assert net.layer("cat").inputs == ("a", "b") and net.layer("b").inputs == ("input",)
    x = rng.uniform(-1, 1, (4, 6, 6, 2))
    assert np.abs(net.forward(x) - onnx_models.onnxruntime_outputs(path, x)).max() < 1e-5
    bad = _concat_model(tmp_path / "cat_h.onnx", rng, axis=2)
    r = _qmac("import-float", str(bad), "-o", str(tmp_path / "never"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "node 'cat'" in r.stderr and "Concat along axis 2" in r.stderr
    assert not list(tmp_path.glob("never*"))
