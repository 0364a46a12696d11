"""ONNX test models built from the shipped digits network: a float ONNX version
(:func:`pymodel.frontends.onnx_float_export.network_to_onnx`) and its QDQ quantizations by
onnxruntime's ``quantize_static`` on the digits calibration split."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pymodel import datasets
from pymodel.training import digits


def float_digits(path: Path) -> Path:
    """The shipped float digits CNN as a float ONNX model (opset 13) at ``path``."""
    import onnx
    from pymodel.frontends.onnx_float_export import network_to_onnx
    onnx.save(network_to_onnx(digits.load()), str(path))
    return path


def nchw(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(x, np.float32).transpose(0, 3, 1, 2))


def quantize_qdq(float_model: Path, out: Path, per_channel: bool, method: str) -> Path:
    """``quantize_static`` (QDQ, int8 activations and weights) calibrated on the digits
    calib split with ``method`` (``MinMax`` / ``Entropy``)."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod,
                                          QuantFormat, QuantType, quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter([{"input": xi[None]} for xi in nchw(datasets.digits("calib").x)])

        def get_next(self):
            return next(self.it, None)

    quantize_static(str(float_model), str(out), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=per_channel, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8,
                    calibrate_method=getattr(CalibrationMethod, method))
    return out


def mobilenet_v2_style(path: Path, rng: np.random.Generator) -> Path:
    """A MobileNetV2-style float ONNX model (opset 13, input ``[1, 1, 8, 8]`` like the
    digits images, random He-scaled weights, random BatchNormalization statistics):

    stem Conv 3x3 + BN + ReLU6 (8 ch) -> inverted residual (1x1 expand 16 + BN + ReLU6,
    depthwise 3x3 + BN + ReLU6, 1x1 project 8 + BN, residual Add) -> inverted block with
    stride 2 (project to 12, no residual) -> inverted residual (expand 24, Add) -> 1x1
    Conv 16 + BN + ReLU6 -> GlobalAveragePool -> Flatten -> Gemm 10.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits: list = []
    nodes: list = []
    N = helper.make_node

    def t(name: str, a: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.asarray(a, np.float32), name))
        return name

    def conv_bn(name: str, x: str, cin: int, cout: int, k: int = 1, stride: int = 1,
                group: int = 1, act: str | None = "relu6") -> str:
        fan_in = (cin // group) * k * k
        w = t(f"{name}.w", rng.normal(0, np.sqrt(2.0 / fan_in), (cout, cin // group, k, k)))
        nodes.append(N("Conv", [x, w], [f"{name}.c"], name=name, kernel_shape=[k, k],
                       strides=[stride, stride], group=group, pads=[k // 2] * 4))
        bn = [t(f"{name}.g", rng.uniform(0.5, 1.5, cout)), t(f"{name}.b", rng.normal(0, .1, cout)),
              t(f"{name}.m", rng.normal(0, .1, cout)), t(f"{name}.v", rng.uniform(.5, 2, cout))]
        nodes.append(N("BatchNormalization", [f"{name}.c", *bn], [f"{name}.n"],
                       name=f"{name}_bn", epsilon=1e-3))
        if act is None:
            return f"{name}.n"
        nodes.append(N("Clip", [f"{name}.n", "zero", "six"], [f"{name}.r"], name=f"{name}_relu6"))
        return f"{name}.r"

    def block(name: str, x: str, cin: int, cout: int, expand: int, stride: int) -> str:
        e = conv_bn(f"{name}_expand", x, cin, cin * expand)
        d = conv_bn(f"{name}_dw", e, cin * expand, cin * expand, 3, stride, cin * expand)
        p = conv_bn(f"{name}_project", d, cin * expand, cout, act=None)
        if stride == 1 and cin == cout:
            nodes.append(N("Add", [x, p], [f"{name}.add"], name=f"{name}_add"))
            return f"{name}.add"
        return p

    t("zero", np.float32(0.0))
    t("six", np.float32(6.0))
    h = conv_bn("stem", "input", 1, 8, 3)
    h = block("b1", h, 8, 8, 2, 1)
    h = block("b2", h, 8, 12, 2, 2)
    h = block("b3", h, 12, 12, 2, 1)
    h = conv_bn("head", h, 12, 16)
    nodes.append(N("GlobalAveragePool", [h], ["gap"], name="gap"))
    nodes.append(N("Flatten", ["gap"], ["flat"], name="flatten"))
    nodes.append(N("Gemm", ["flat", t("fc.w", rng.normal(0, .5, (10, 16))),
                            t("fc.b", rng.normal(0, .1, 10))], ["logits"], name="fc", transB=1))
    graph = helper.make_graph(
        nodes, "mobilenet_v2_style",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def onnxruntime_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    """onnxruntime's float output of a batch-1 model for NHWC images ``x``, image by image."""
    import onnxruntime as ort
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: nchw(x[i:i + 1])})[0] for i in range(len(x))])


def residual_digits(stem: Path, rng: np.random.Generator) -> Path:
    """A float DAG network from the shipped (trained) digits CNN, written as ``stem.yaml``
    + ``stem.npz``: after conv1 an inverted residual block (1x1 expand to 16 + ReLU6,
    depthwise 3x3 + ReLU6, 1x1 project to 8 with small random weights) added to conv1's
    output (``add`` + ReLU), then ``concat`` of that sum and conv1's output (16 channels)
    into conv2, whose weights for the second half are small random ones.  It still
    classifies the digits (about the shipped network's accuracy), so argmax agreement of
    a quantized version with it is meaningful."""
    import yaml
    base = digits.load()
    p = {k: np.asarray(v, np.float64) for k, v in base.params.items()}
    p["expand.weight"] = rng.normal(0, 0.5, (16, 1, 1, 8))
    p["expand.bias"] = rng.normal(0, 0.1, 16)
    p["dw.weight"] = rng.normal(0, 0.3, (1, 3, 3, 16))
    p["dw.bias"] = rng.normal(0, 0.1, 16)
    p["project.weight"] = rng.normal(0, 0.05, (8, 1, 1, 16))
    p["project.bias"] = np.zeros(8)
    p["conv2.weight"] = np.concatenate([p["conv2.weight"],
                                        rng.normal(0, 0.02, p["conv2.weight"].shape)], axis=3)
    layers = [
        {"name": "conv1", "op": "conv2d", "filters": 8, "kernel": 3, "padding": "same",
         "activation": "relu"},
        {"name": "expand", "op": "conv2d", "filters": 16, "kernel": 1, "activation": "relu6"},
        {"name": "dw", "op": "depthwise_conv2d", "kernel": 3, "padding": "same",
         "activation": "relu6"},
        {"name": "project", "op": "conv2d", "filters": 8, "kernel": 1},
        {"name": "res", "op": "add", "inputs": ["conv1", "project"], "activation": "relu"},
        {"name": "cat", "op": "concat", "inputs": ["res", "conv1"]},
        {"name": "conv2", "op": "conv2d", "filters": 16, "kernel": 3, "stride": 2,
         "padding": "same", "activation": "relu"},
        {"name": "flatten", "op": "flatten"},
        {"name": "fc1", "op": "fully_connected", "units": 32, "activation": "relu"},
        {"name": "fc2", "op": "fully_connected", "units": 10}]
    cfg = {"name": "digits_residual", "weights": stem.name + ".npz", "dataset": "digits",
           "input": {"shape": [8, 8, 1], "quant": {"calibrator": "minmax"}},
           "quant": {"activations": {"calibrator": "percentile:99.99"}}, "layers": layers}
    np.savez(stem.with_name(stem.name + ".npz"), **p)
    out = stem.with_name(stem.name + ".yaml")
    out.write_text(yaml.safe_dump(cfg, sort_keys=False, default_flow_style=None))
    return out
