"""Write a float qmac network (:class:`pymodel.graph.network.Network`) as a float ONNX model.

The model is what a PyTorch export of the same network looks like: NCHW activations, OIHW
conv weights (depthwise: ``[C, 1, kh, kw]`` with ``group = C``), ``Gemm`` with
``transB = 1`` for fully-connected layers, a fused ReLU / ReLU6 as a separate ``Relu`` /
``Clip(0, 6)`` node, and ``Flatten`` of the NCHW tensor (so the weight columns of the
fully-connected layer after it are permuted from qmac's HWC order to CHW order).  Built
with ``onnx.helper`` (opset 13), checked with ``onnx.checker``.  The input is named
``input`` with shape ``[1, C, H, W]`` (or ``[1, F]``), the output ``output``.

Used by the tests (a float ONNX version of the shipped digits network) and by
``qmac`` users who want to hand a qmac-trained float network to onnxruntime.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pymodel.graph.network import Network

OPSET = 13


def _pads(padding: Any) -> list[int]:
    (t, b), (left, r) = padding
    return [int(t), int(left), int(b), int(r)]


def network_to_onnx(net: Network, batch: int = 1) -> Any:
    """The float network as an ``onnx.ModelProto`` (see the module doc).

    Args:
        net: a float network with weights.
        batch: the static batch dimension of the input and output.

    Returns:
        ``onnx.ModelProto``, float32 weights.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if not net.is_chain:
        raise ValueError(f"network {net.name!r}: is a graph (add / concat / a layer's "
                         "inputs); the float ONNX writer takes chains only")
    nodes, inits = [], []
    cur = "input"
    shape = tuple(net.input_shape)

    def t(shape_hwc: tuple[int, ...]) -> list[int]:
        if len(shape_hwc) == 3:
            h, w, c = shape_hwc
            return [batch, c, h, w]
        return [batch, *shape_hwc]

    in_vi = helper.make_tensor_value_info("input", TensorProto.FLOAT, t(shape))
    flat_from: tuple[int, ...] | None = None      # (H, W, C) flattened in CHW order
    for spec in net.layers:
        out = spec.name
        if spec.op in ("conv2d", "depthwise_conv2d"):
            w = np.asarray(net.params[f"{spec.name}.weight"], np.float32)
            b = np.asarray(net.params[f"{spec.name}.bias"], np.float32)
            if spec.op == "conv2d":
                w_oihw = w.transpose(0, 3, 1, 2)                       # OHWI -> OIHW
                group = 1
            else:
                w_oihw = w[0].transpose(2, 0, 1)[:, None]              # [1,kh,kw,C] -> [C,1,kh,kw]
                group = spec.input_shape[2]
            inits += [numpy_helper.from_array(np.ascontiguousarray(w_oihw), f"{out}.weight"),
                      numpy_helper.from_array(b, f"{out}.bias")]
            nodes.append(helper.make_node(
                "Conv", [cur, f"{out}.weight", f"{out}.bias"], [out + "_conv"], name=out,
                kernel_shape=list(spec.kernel), strides=list(spec.stride),
                pads=_pads(spec.padding), group=group))
            cur = out + "_conv"
        elif spec.op == "fully_connected":
            w = np.asarray(net.params[f"{spec.name}.weight"], np.float32)
            b = np.asarray(net.params[f"{spec.name}.bias"], np.float32)
            if flat_from is not None:                                  # HWC -> CHW columns
                h, wd, c = flat_from
                w = w.reshape(-1, h, wd, c).transpose(0, 3, 1, 2).reshape(w.shape[0], -1)
                flat_from = None
            inits += [numpy_helper.from_array(np.ascontiguousarray(w), f"{out}.weight"),
                      numpy_helper.from_array(b, f"{out}.bias")]
            nodes.append(helper.make_node("Gemm", [cur, f"{out}.weight", f"{out}.bias"],
                                          [out + "_gemm"], name=out, transB=1))
            cur = out + "_gemm"
        elif spec.op in ("max_pool2d", "avg_pool2d"):
            kind = "MaxPool" if spec.op == "max_pool2d" else "AveragePool"
            extra = {} if kind == "MaxPool" else {"count_include_pad": 0}
            nodes.append(helper.make_node(kind, [cur], [out], name=out,
                                          kernel_shape=list(spec.kernel),
                                          strides=list(spec.stride),
                                          pads=_pads(spec.padding), **extra))
            cur = out
        elif spec.op == "flatten":
            if len(spec.input_shape) == 3:
                flat_from = spec.input_shape
            nodes.append(helper.make_node("Flatten", [cur], [out], name=out, axis=1))
            cur = out
        else:
            raise ValueError(f"layer {spec.name!r}: op {spec.op!r} has no ONNX export")
        if spec.activation == "relu":
            nodes.append(helper.make_node("Relu", [cur], [out + "_relu"], name=out + "_relu"))
            cur = out + "_relu"
        elif spec.activation == "relu6":
            inits += [numpy_helper.from_array(np.float32(0.0), f"{out}.clip_min"),
                      numpy_helper.from_array(np.float32(6.0), f"{out}.clip_max")]
            nodes.append(helper.make_node("Clip", [cur, f"{out}.clip_min", f"{out}.clip_max"],
                                          [out + "_relu6"], name=out + "_relu6"))
            cur = out + "_relu6"
        shape = spec.output_shape
    nodes.append(helper.make_node("Identity", [cur], ["output"], name="output"))
    out_vi = helper.make_tensor_value_info("output", TensorProto.FLOAT, t(shape))
    graph = helper.make_graph(nodes, net.name, [in_vi], [out_vi], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="qmac")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model
