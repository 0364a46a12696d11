"""Export a qmac quantized-network artifact as a QDQ ONNX model onnxruntime runs.

``qmac export-onnx ARTIFACT.yaml -o model.onnx``.  The model is in the format
``onnxruntime.quantization.quantize_static`` writes (QDQ, opset 13), so onnxruntime fuses
it into ``QLinearConv`` / ``QGemm`` with its optimizations on, and
:func:`pymodel.frontends.onnx_qdq.import_onnx_qdq` reads it back:

* float input ``[1, C, H, W]`` (or ``[1, F]``) -> ``QuantizeLinear`` with the artifact's
  input scale / zero point -> ``DequantizeLinear``;
* a weight layer: int8 weights (OIHW; depthwise ``[C*m, 1, kh, kw]``; FC ``[N, K]`` with
  ``transB = 1``) behind a ``DequantizeLinear`` with the artifact's float32 weight scales
  (one per output channel, or one when ``per_tensor``; zero point 0), the int32 bias
  behind one with scale ``f32(s_in * s_w[c])``, then ``Conv`` / ``Gemm``; an output
  clamp narrower than the int8 range (ReLU with a zero point above -128, ReLU6, fewer
  bits) becomes ``Clip((act_min - zp) * s, (act_max - zp) * s)``; then ``Q -> DQ`` with
  the output scale and zero point;
* pools: ``MaxPool`` / ``AveragePool`` with explicit pads (``count_include_pad = 0``);
  flatten / reshape: ``Flatten`` of the NCHW tensor (the next FC's weight columns are
  permuted from HWC to CHW order).

Only chains of these ops are exported (the ops qmac's own PTQ and QAT produce); other
artifact ops (imported graph ops) are refused with one line naming the layer.  The
integers onnxruntime computes from the exported scales differ from qmac's at rounding
boundaries only (docs/onnx.md, :mod:`pymodel.study.onnx_agreement`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pymodel.graph.artifact import INPUT, QuantizedNetwork

OPSET = 13
EXPORTABLE = ("conv2d", "depthwise_conv2d", "fully_connected", "max_pool2d", "avg_pool2d",
              "flatten", "reshape")


def _pads(padding: Any) -> list[int]:
    (t, b), (left, r) = padding
    return [int(t), int(left), int(b), int(r)]


def artifact_to_qdq(qnet: QuantizedNetwork) -> Any:
    """The artifact as a QDQ ``onnx.ModelProto`` (see the module doc).

    Raises:
        ValueError: a layer whose op is not exportable, or a graph (not a chain).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes: list[Any] = []
    inits: list[Any] = []
    N = helper.make_node

    def init(name: str, a: Any) -> str:
        inits.append(numpy_helper.from_array(np.asarray(a), name))
        return name

    def qdq(src: str, name: str, tq: Any) -> str:
        """Q -> DQ of float tensor ``src``: returns the DQ output."""
        s = init(f"{name}_scale", np.float32(tq.scale))
        z = init(f"{name}_zero_point", np.int8(tq.zero_point))
        nodes.append(N("QuantizeLinear", [src, s, z], [f"{name}_quantized"],
                       name=f"{name}_QuantizeLinear"))
        nodes.append(N("DequantizeLinear", [f"{name}_quantized", s, z], [f"{name}_dq"],
                       name=f"{name}_DequantizeLinear"))
        return f"{name}_dq"

    shape = tuple(qnet.input_shape)

    def onnx_shape(s: tuple[int, ...]) -> list[int]:
        return [1, s[2], s[0], s[1]] if len(s) == 3 else [1, *s]

    in_vi = helper.make_tensor_value_info("input", TensorProto.FLOAT, onnx_shape(shape))
    cur = qdq("input", "input", qnet.input)
    prev = INPUT
    flat_from: tuple[int, ...] | None = None
    for q in qnet.layers:
        if q.op not in EXPORTABLE:
            raise ValueError(f"layer {q.name!r}: op {q.op} cannot be exported to ONNX; "
                             f"exportable: {', '.join(EXPORTABLE)}")
        if q.inputs and tuple(q.inputs) != (prev,):
            raise ValueError(f"layer {q.name!r} reads {list(q.inputs)}; only chains are "
                             "exported")
        name = q.name
        if q.has_weights:
            w = np.asarray(q.weight, np.int8)
            ws = np.asarray(q.weight_scale, np.float64).astype(np.float32)
            per_tensor = q.weight_granularity == "per_tensor"
            if q.op == "conv2d":
                wo = w.transpose(0, 3, 1, 2)
            elif q.op == "depthwise_conv2d":
                wo = w[0].transpose(2, 0, 1)[:, None]
            else:
                wo = w
                if flat_from is not None:
                    h, wd, c = flat_from
                    wo = wo.reshape(-1, h, wd, c).transpose(0, 3, 1, 2).reshape(w.shape[0], -1)
                    flat_from = None
            c_out = wo.shape[0]
            wq = init(f"{name}.weight_quantized", np.ascontiguousarray(wo))
            if per_tensor:
                wsc = init(f"{name}.weight_scale", ws[0])
                wzp = init(f"{name}.weight_zero_point", np.int8(0))
                bsc = init(f"{name}.bias_scale", np.float32(np.float32(q.input.scale) * ws[0]))
                bzp = init(f"{name}.bias_zero_point", np.int32(0))
                extra: dict[str, Any] = {}
            else:
                wsc = init(f"{name}.weight_scale", ws)
                wzp = init(f"{name}.weight_zero_point", np.zeros(c_out, np.int8))
                bsc = init(f"{name}.bias_scale", (np.float32(q.input.scale) * ws)
                           .astype(np.float32))
                bzp = init(f"{name}.bias_zero_point", np.zeros(c_out, np.int32))
                extra = {"axis": 0}
            nodes.append(N("DequantizeLinear", [wq, wsc, wzp], [f"{name}.weight"],
                           name=f"{name}.weight_DequantizeLinear", **extra))
            bq = init(f"{name}.bias_quantized", np.asarray(q.bias, np.int32))
            nodes.append(N("DequantizeLinear", [bq, bsc, bzp], [f"{name}.bias"],
                           name=f"{name}.bias_DequantizeLinear", **extra))
            if q.op == "fully_connected":
                nodes.append(N("Gemm", [cur, f"{name}.weight", f"{name}.bias"],
                               [f"{name}_out"], name=name, transB=1))
            else:
                dil = list(q.dilation) if q.dilation is not None else [1, 1]
                nodes.append(N("Conv", [cur, f"{name}.weight", f"{name}.bias"],
                               [f"{name}_out"], name=name, kernel_shape=list(q.kernel),
                               strides=list(q.stride), pads=_pads(q.padding), dilations=dil,
                               group=1 if q.op == "conv2d" else q.input_shape[2]))
            out = f"{name}_out"
            s, z = np.float32(q.output.scale), q.output.zero_point
            if q.act_min > -128 or q.act_max < 127:
                lo = init(f"{name}_clip_min", np.float32((q.act_min - z) * s))
                hi = init(f"{name}_clip_max", np.float32((q.act_max - z) * s))
                nodes.append(N("Clip", [out, lo, hi], [f"{name}_clipped"],
                               name=f"{name}_clip"))
                out = f"{name}_clipped"
            cur = qdq(out, name, q.output)
        elif q.op in ("max_pool2d", "avg_pool2d"):
            kind = "MaxPool" if q.op == "max_pool2d" else "AveragePool"
            extra = {} if kind == "MaxPool" else {"count_include_pad": 0}
            nodes.append(N(kind, [cur], [f"{name}_out"], name=name,
                           kernel_shape=list(q.kernel), strides=list(q.stride),
                           pads=_pads(q.padding), **extra))
            cur = qdq(f"{name}_out", name, q.output)
        else:                                                    # flatten / reshape
            if len(q.output_shape) != 1:
                raise ValueError(f"layer {q.name!r}: reshape to {list(q.output_shape)}; only "
                                 "flattening is exported")
            if len(q.input_shape) == 3 and q.input_shape[0] * q.input_shape[1] > 1:
                flat_from = tuple(q.input_shape)
            nodes.append(N("Flatten", [cur], [f"{name}_out"], name=name, axis=1))
            cur = qdq(f"{name}_out", name, q.output)
        prev = name
        shape = tuple(q.output_shape)
    if flat_from is not None:
        raise ValueError("the network ends in a flatten of an image; the exported NCHW "
                         "flatten would order it differently")
    # cur is the final DQ output: rename through an Identity to "output"
    nodes.append(N("Identity", [cur], ["output"], name="output"))
    out_vi = helper.make_tensor_value_info("output", TensorProto.FLOAT, onnx_shape(shape))
    graph = helper.make_graph(nodes, qnet.name, [in_vi], [out_vi], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="qmac")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def export_onnx(qnet: QuantizedNetwork, out: str | Path) -> Path:
    """Write :func:`artifact_to_qdq` of ``qnet`` to ``out`` atomically."""
    from pymodel import atomicio
    model = artifact_to_qdq(qnet)
    return atomicio.atomic_write(out, lambda f: f.write(model.SerializeToString()))
