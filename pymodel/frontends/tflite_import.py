"""Import an int8 TFLite model as a qmac quantized-network artifact.

``qmac import model.tflite -o DIR/name`` (:func:`import_tflite` + ``save_artifact``):
every operator of the model becomes one artifact layer with the *integer* parameters
TFLite's kernels compute in their ``Prepare`` step -- multipliers from the model's float32
scales exactly as TFLite computes them (``(double)s_in * (double)s_w / (double)s_out``,
then ``QuantizeMultiplier``), int32 biases kept as given, fused activations as clamps
(``CalculateActivationRangeQuantized``), explicit padding (``ComputePaddingHeightWidth``).
The multipliers, shifts and clamps come from
:func:`pymodel.ops.tflite_common.prepare_conv_requant` (the same code the golden ops use).
The graph is kept as a DAG: a layer names the tensors it reads.

Naming: an artifact layer is named ``<op>_<operator index>`` (``conv2d_3``), its output
tensor likewise; the TFLite tensor index of each layer's output is recorded in the
artifact's ``meta.tflite.tensors`` so that conformance tests can compare every tensor with
a TFLite interpreter.

What is refused, each with a one-line ``ValueError``: float, uint8 or int16x8 models
(activations must be int8), unsupported ops (named, with the operator index and the
supported list), dynamic shapes, a batch dimension other than 1, more than one input or
output, weights with a nonzero zero point.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from pymodel import __version__
from pymodel.frontends.tflite_reader import TfModel, TfOperator, TfTensor, read_tflite
from pymodel.graph import opset
from pymodel.graph.artifact import INPUT, QLayer, QuantizedNetwork, TensorQuant
from pymodel.ops.layers import fold_input_zero_point
from pymodel.ops.tflite_common import activation_range, prepare_conv_requant

#: TFLite builtin ops this importer maps, and the artifact op each becomes.
SUPPORTED = {
    "CONV_2D": "conv2d", "DEPTHWISE_CONV_2D": "depthwise_conv2d",
    "FULLY_CONNECTED": "fully_connected", "ADD": "add", "SUB": "sub", "MUL": "mul",
    "AVERAGE_POOL_2D": "avg_pool2d", "MAX_POOL_2D": "max_pool2d", "MEAN": "mean",
    "PAD": "pad", "PADV2": "pad", "CONCATENATION": "concatenation", "RESHAPE": "reshape",
    "SQUEEZE": "reshape", "QUANTIZE": "quantize", "DEQUANTIZE": "dequantize",
    "SOFTMAX": "softmax", "LOGISTIC": "logistic", "HARD_SWISH": "hard_swish",
    "RELU": "relu", "RELU6": "relu6", "LEAKY_RELU": "leaky_relu",
}
_ACTIVATIONS = {0: "none", 1: "relu", 2: "relu_n1_to_1", 3: "relu6"}
_PADDING = {0: "same", 1: "valid"}


class _Ctx:
    """Import state: the model, the artifact name of each TFLite tensor, layers so far."""

    def __init__(self, model: TfModel, rounding: str) -> None:
        self.model = model
        self.rounding = rounding
        self.names: dict[int, str] = {}
        self.layers: list[QLayer] = []
        self.quant: dict[int, TensorQuant] = {}
        self.tensor_of_layer: dict[str, int] = {}

    def err(self, op: TfOperator | None, msg: str) -> ValueError:
        where = f" operator {op.index} ({op.opcode})" if op is not None else ""
        return ValueError(f"{self.model.path}:{where}: {msg}")

    def t(self, i: int) -> TfTensor:
        return self.model.tensors[i]


def _per_image(ctx: _Ctx, op: TfOperator | None, t: TfTensor) -> tuple[int, ...]:
    if any(d < 0 for d in t.shape):
        raise ctx.err(op, f"tensor {t.index} ({t.name!r}) has a dynamic shape "
                          f"{list(t.shape)}; qmac needs static shapes (re-export with a fixed "
                          "input size)")
    if not t.shape or t.shape[0] != 1:
        raise ctx.err(op, f"tensor {t.index} ({t.name!r}) has batch dimension "
                          f"{t.shape[0] if t.shape else 'none'} (shape {list(t.shape)}); qmac "
                          "imports batch-1 models")
    shape = tuple(t.shape[1:])
    if not 1 <= len(shape) <= 3:
        raise ctx.err(op, f"tensor {t.index} ({t.name!r}) has per-image rank {len(shape)} "
                          f"(shape {list(t.shape)}); qmac handles ranks 1 to 3 (HWC)")
    return shape


def _act_quant(ctx: _Ctx, op: TfOperator | None, t: TfTensor) -> TensorQuant:
    if t.dtype != "int8":
        kind = {"float32": "a float model", "int16": "an int16x8 model",
                "uint8": "a uint8 (legacy) model"}.get(t.dtype, f"a {t.dtype} tensor")
        raise ctx.err(op, f"tensor {t.index} ({t.name!r}) is {t.dtype}: this is {kind}; "
                          "qmac imports full-integer int8 models (int8 activations, int8 "
                          "weights, int32 biases)")
    if t.scale.size != 1:
        raise ctx.err(op, f"activation tensor {t.index} ({t.name!r}) has {t.scale.size} "
                          "scales; activations must be quantized per tensor")
    s = float(t.scale[0])
    zp = int(t.zero_point[0])
    if not s > 0 or not np.isfinite(s):
        raise ctx.err(op, f"tensor {t.index} ({t.name!r}) has scale {s}; scales must be > 0")
    return TensorQuant(scale=s, zero_point=zp, bits=8, symmetric=False,
                       rmin=(-128 - zp) * s, rmax=(127 - zp) * s, calibrator="tflite")


def _tensor_in(ctx: _Ctx, op: TfOperator, i: int) -> str:
    if i not in ctx.names:
        t = ctx.t(i)
        what = "a constant" if t.data is not None else "not produced by an earlier operator"
        raise ctx.err(op, f"input tensor {i} ({t.name!r}) is {what}; qmac expects an "
                          "activation here")
    return ctx.names[i]


def _act_range(activation: int, q: TensorQuant, ctx: _Ctx, op: TfOperator) -> tuple[int, int]:
    """TFLite ``CalculateActivationRangeQuantized`` for int8 (``f / scale`` in float32)."""
    if activation not in _ACTIVATIONS:
        raise ctx.err(op, f"fused activation {activation} is not supported; supported: "
                          "NONE, RELU, RELU_N1_TO_1, RELU6")
    return activation_range(_ACTIVATIONS[activation], q.scale, q.zero_point)


def _explicit_padding(kind: int, in_hw: tuple[int, int], kernel: tuple[int, int],
                      stride: tuple[int, int], dilation: tuple[int, int]
                      ) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """TFLite ``ComputePaddingHeightWidth``: ((top, bottom), (left, right)) and the output
    size; SAME puts the odd pixel at the bottom / right."""
    pads, out = [], []
    for n, k, s, d in zip(in_hw, kernel, stride, dilation):
        eff = (k - 1) * d + 1
        o = (n + s - 1) // s if kind == 0 else (n - eff + s) // s
        total = max((o - 1) * s + eff - n, 0)
        pads.append((total // 2, total - total // 2))
        out.append(o)
    return pads[0], pads[1], (out[0], out[1])


# ----------------------------------------------------------------------------------------
# Weight ops
# ----------------------------------------------------------------------------------------

def _weight_layer(ctx: _Ctx, op: TfOperator, kind: str) -> QLayer:
    x_t, w_t = ctx.t(op.inputs[0]), ctx.t(op.inputs[1])
    b_t = ctx.t(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    y_t = ctx.t(op.outputs[0])
    name = f"{kind}_{op.index}"
    src = _tensor_in(ctx, op, x_t.index)
    in_q, out_q = ctx.quant[x_t.index], _act_quant(ctx, op, y_t)
    in_shape, out_shape = _per_image(ctx, op, x_t), _per_image(ctx, op, y_t)
    if w_t.data is None or w_t.dtype != "int8":
        raise ctx.err(op, f"weights (tensor {w_t.index}, {w_t.name!r}) must be constant int8; "
                          f"got {'non-constant ' if w_t.data is None else ''}{w_t.dtype}")
    if np.any(w_t.zero_point != 0):
        raise ctx.err(op, f"weights (tensor {w_t.index}) have nonzero zero points; TFLite int8 "
                          "weights are symmetric (zero point 0)")
    w = w_t.data
    channels = out_shape[-1]
    if b_t is not None:
        if b_t.data is None or b_t.dtype != "int32":
            raise ctx.err(op, f"bias (tensor {b_t.index}) must be constant int32; got "
                              f"{b_t.dtype}")
        bias = b_t.data.astype(np.int32).reshape(-1)
    else:
        bias = np.zeros(channels, np.int32)
    w_scales = np.broadcast_to(w_t.scale, (channels,)).astype(np.float32)
    o = op.options
    act = int(o.get("fused_activation_function", 0))
    _act_range(act, out_q, ctx, op)                       # refuses an unknown activation
    try:
        rq = prepare_conv_requant(in_q.scale, w_t.scale, out_q.scale, out_q.zero_point, bias,
                                  channels, activation=_ACTIVATIONS[act],
                                  rounding=ctx.rounding,
                                  op="fully_connected" if kind == "fully_connected" else "conv")
    except ValueError as exc:
        raise ctx.err(op, str(exc)) from None
    m0, shift, act_min, act_max = rq.m0, rq.shift, rq.act_min, rq.act_max
    kw: dict[str, Any] = {}
    if kind in ("conv2d", "depthwise_conv2d"):
        kernel = (int(w.shape[1]), int(w.shape[2]))
        stride = (int(o["stride_h"]), int(o["stride_w"]))
        dilation = (int(o.get("dilation_h_factor", 1) or 1), int(o.get("dilation_w_factor", 1)
                                                                  or 1))
        pad_h, pad_w, out_hw = _explicit_padding(int(o["padding"]), in_shape[:2], kernel,
                                                  stride, dilation)
        if out_hw != out_shape[:2]:
            raise ctx.err(op, f"output {list(out_shape)} does not match the "
                              f"{_PADDING[int(o['padding'])]} padding arithmetic "
                              f"({list(out_hw)})")
        kw.update(kernel=kernel, stride=stride, padding=(pad_h, pad_w), dilation=dilation)
        macs = out_hw[0] * out_hw[1] * channels * kernel[0] * kernel[1]
        if kind == "conv2d":
            macs *= in_shape[-1]
            if w_t.per_axis and w_t.quantized_dimension != 0:
                raise ctx.err(op, "conv weights must be quantized along dimension 0 "
                                  f"(output channels); got {w_t.quantized_dimension}")
        else:
            mult = channels // in_shape[-1]
            if mult * in_shape[-1] != channels:
                raise ctx.err(op, f"depthwise output channels {channels} are not a multiple "
                                  f"of the input channels {in_shape[-1]}")
            if w_t.per_axis and w_t.quantized_dimension != 3:
                raise ctx.err(op, "depthwise weights must be quantized along dimension 3; "
                                  f"got {w_t.quantized_dimension}")
            kw["depth_multiplier"] = mult
    else:
        k = int(w.shape[1])
        macs = int(np.prod(in_shape)) // k * channels * k
        if w_t.per_axis and w_t.quantized_dimension != 0:
            raise ctx.err(op, f"fully-connected weights quantized along dimension "
                              f"{w_t.quantized_dimension}; expected 0")
    q = QLayer(name=name, op=kind, input_shape=in_shape, output_shape=out_shape, input=in_q,
               output=out_q, act_min=act_min, act_max=act_max,
               activation=_ACTIVATIONS[act] if act != 2 else "none", weight=w,
               weight_bits=8, weight_granularity="per_channel" if w_t.per_axis
               else "per_tensor", weight_scale=w_scales.astype(np.float64), bias=bias,
               m0=m0, shift=shift, macs=int(macs), inputs=(src,), rounding=ctx.rounding,
               **kw)
    return dataclasses.replace(q, bias_folded=fold_input_zero_point(bias, q.w2d,
                                                                     in_q.zero_point))


def _pool_layer(ctx: _Ctx, op: TfOperator, kind: str) -> QLayer:
    x_t, y_t = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])
    in_q, out_q = ctx.quant[x_t.index], _act_quant(ctx, op, y_t)
    if (in_q.scale, in_q.zero_point) != (out_q.scale, out_q.zero_point):
        raise ctx.err(op, "pooling input and output quantization differ; TFLite's int8 "
                          "pooling kernels require them equal")
    o = op.options
    in_shape, out_shape = _per_image(ctx, op, x_t), _per_image(ctx, op, y_t)
    kernel = (int(o["filter_height"]), int(o["filter_width"]))
    stride = (int(o["stride_h"]), int(o["stride_w"]))
    pad_h, pad_w, out_hw = _explicit_padding(int(o["padding"]), in_shape[:2], kernel, stride,
                                              (1, 1))
    act_min, act_max = _act_range(int(o.get("fused_activation_function", 0)), out_q, ctx, op)
    return QLayer(name=f"{kind}_{op.index}", op=kind, input_shape=in_shape,
                  output_shape=out_shape, input=in_q, output=in_q, act_min=act_min,
                  act_max=act_max, kernel=kernel, stride=stride, padding=(pad_h, pad_w),
                  inputs=(_tensor_in(ctx, op, x_t.index),))


def _graph_layer(ctx: _Ctx, op: TfOperator, kind: str) -> QLayer:
    """Every other op: the op's ``prepare`` in :mod:`pymodel.graph.opset` computes its
    integer parameters from the TFLite tensors and options."""
    y_t = ctx.t(op.outputs[0])
    out_q = _act_quant(ctx, op, y_t)
    acts = [i for i in op.inputs if i >= 0 and ctx.t(i).data is None]
    consts = {j: ctx.t(i) for j, i in enumerate(op.inputs) if i >= 0 and ctx.t(i).data is not None}
    if not acts:
        raise ctx.err(op, "has no activation input (constant folding is the converter's job)")
    srcs = tuple(_tensor_in(ctx, op, i) for i in acts)
    in_qs = [ctx.quant[i] for i in acts]
    shapes = [_per_image(ctx, op, ctx.t(i)) for i in acts]
    out_shape = _per_image(ctx, op, y_t)
    try:
        spec = opset.prepare(kind, op_options=dict(op.options), inputs=[ctx.t(i) for i in acts],
                             input_quants=in_qs, input_shapes=shapes, consts=consts,
                             output=y_t, output_quant=out_q, output_shape=out_shape,
                             rounding=ctx.rounding)
    except ValueError as exc:
        raise ctx.err(op, str(exc)) from None
    return QLayer(name=f"{kind}_{op.index}", op=kind, input_shape=shapes[0],
                  output_shape=out_shape, input=in_qs[0], output=out_q,
                  act_min=spec.act_min, act_max=spec.act_max, inputs=srcs,
                  params=spec.params, consts=spec.consts)


# ----------------------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------------------

def import_tflite(path: str | Path, name: str | None = None,
                  rounding: str = "double") -> QuantizedNetwork:
    """Read ``path`` and map it onto a :class:`QuantizedNetwork` (see the module doc).

    Args:
        path: the ``.tflite`` file.
        name: the artifact's name (default: the file's stem, made an identifier).
        rounding: the fixed-point rescale of every layer: ``"double"`` (gemmlowp; TFLite's
            default build, LiteRT's reference kernels and TFLite Micro) or ``"single"``
            (a runtime built with ``TFLITE_SINGLE_ROUNDING``).

    Raises:
        ValueError: one line naming the file, the operator and what is wrong.
    """
    if rounding not in ("double", "single"):
        raise ValueError(f"rounding: {rounding!r} is not 'double' or 'single'")
    return import_model(read_tflite(path), path, name, rounding)


def import_model(model: TfModel, path: str | Path, name: str | None = None,
                 rounding: str = "double") -> QuantizedNetwork:
    """Map an in-memory :class:`TfModel` (read from ``path``, or lowered onto TFLite's ops
    and layouts by another frontend, e.g. :mod:`pymodel.frontends.onnx_qdq`) onto a
    :class:`QuantizedNetwork`; arguments and errors as :func:`import_tflite`."""
    ctx = _Ctx(model, rounding)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ctx.err(None, f"{len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                            "qmac imports single-input, single-output models")
    unsupported = [op for op in model.operators if op.opcode not in SUPPORTED]
    if unsupported:
        op = unsupported[0]
        raise ctx.err(op, f"op {op.opcode} is not supported; supported: "
                          f"{', '.join(sorted(SUPPORTED))}")
    x_t = model.tensors[model.inputs[0]]
    ops = list(model.operators)
    # A float input followed by QUANTIZE: the artifact starts at the int8 tensor.
    float_input = False
    if x_t.dtype == "float32" and ops and ops[0].opcode == "QUANTIZE" and \
            ops[0].inputs[0] == x_t.index:
        x_t = model.tensors[ops[0].outputs[0]]
        ops = ops[1:]
        float_input = True
    in_shape = _per_image(ctx, None, x_t)
    ctx.quant[x_t.index] = _act_quant(ctx, None, x_t)
    ctx.names[x_t.index] = INPUT
    out_index = model.outputs[0]
    if ops and ops[-1].opcode == "DEQUANTIZE" and ops[-1].outputs[0] == out_index:
        out_index = ops[-1].inputs[0]
        ops = ops[:-1]
    for op in ops:
        kind = SUPPORTED[op.opcode]
        if kind == "dequantize":
            raise ctx.err(op, "DEQUANTIZE inside the graph (float tensors between int8 ops) "
                              "is not supported; only a final DEQUANTIZE is")
        if kind in ("conv2d", "depthwise_conv2d", "fully_connected"):
            q = _weight_layer(ctx, op, kind)
        elif kind in ("avg_pool2d", "max_pool2d"):
            q = _pool_layer(ctx, op, kind)
        else:
            q = _graph_layer(ctx, op, kind)
        y = op.outputs[0]
        ctx.layers.append(q)
        ctx.names[y] = q.name
        ctx.quant[y] = q.output
        ctx.tensor_of_layer[q.name] = y
    if not ctx.layers or ctx.names.get(out_index) != ctx.layers[-1].name:
        raise ctx.err(None, "the model's output is not written by its last operator; qmac "
                            "expects operators in execution order ending at the output")
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    stem = name or "".join(c if c.isalnum() else "_" for c in Path(path).stem)
    source: dict[str, Any] = {"format": "tflite", "file": Path(path).name, "sha256": digest}
    bundled = Path(path).with_name(Path(path).stem + "_test.npz")
    if bundled.is_file():                         # test images shipped beside the model
        source["test_data"] = str(bundled)
    meta = {"source": source,
            "tflite": {"input_tensor": int(x_t.index), "output_tensor": int(out_index),
                       "float_input": float_input,
                       "tensors": {k: int(v) for k, v in ctx.tensor_of_layer.items()}},
            "tool": f"qmac {__version__}"}
    return QuantizedNetwork(name=stem, input_shape=in_shape, input=ctx.quant[x_t.index],
                            layers=tuple(ctx.layers), meta=meta)

