"""Import a QDQ ONNX model (``onnxruntime.quantization.quantize_static``) as a qmac artifact.

``qmac import model.onnx -o DIR/name``.  A QDQ model is a float graph in which every
quantized tensor passes ``QuantizeLinear -> DequantizeLinear`` and every quantized weight
is an int8 initializer behind a ``DequantizeLinear`` (biases: int32 at scale
``s_in * s_w``).  The integer network it stands for is the one TFLite runs, so this
frontend *lowers* the QDQ graph onto TFLite's operators, layouts and tensor description
(:class:`pymodel.frontends.tflite_reader.TfModel`) and hands it to the TFLite importer
(:func:`pymodel.frontends.tflite_import.import_model`): the multipliers, shifts and
clamps then come from the model's float32 scales exactly as TFLite computes them
(``prepare_conv_requant``, the graph ops' ``prepare``), int32 biases are kept as given.

Lowering, per compute node (its inputs behind ``DequantizeLinear``, its output into one
``QuantizeLinear``):

============================== ==========================================================
ONNX                           TFLite op (artifact op)
============================== ==========================================================
Conv, group 1                  CONV_2D; OIHW -> OHWI
Conv, group = C_in, 1 in/group DEPTHWISE_CONV_2D; ``[C*m, 1, kh, kw]`` -> ``[1, kh, kw, C*m]``
Gemm (alpha = beta = 1), MatMul FULLY_CONNECTED; ``B`` -> ``[N, K]``
MaxPool, AveragePool           MAX_POOL_2D, AVERAGE_POOL_2D (SAME / VALID padding)
GlobalAveragePool              MEAN over H, W (keep dims)
Add, Sub, Mul                  ADD, SUB, MUL
Concat                         CONCATENATION (NCHW axis -> NHWC axis)
Flatten, Reshape (to [1, N])   RESHAPE
Relu, Clip(0, 6), LeakyRelu,   RELU, RELU6, LEAKY_RELU, LOGISTIC, HARD_SWISH, SOFTMAX
Sigmoid, HardSwish, Softmax    (a Relu / Clip between a conv / FC and its
                               QuantizeLinear is fused into the op's clamp)
Identity, Dropout              removed
============================== ==========================================================

Layouts: activations NCHW -> NHWC.  A ``Flatten`` of a ``[C, H, W]`` tensor is CHW
order, qmac's flatten HWC order: the columns of the fully-connected layer that reads it
are permuted (exact: a permutation of int8 weights), as TFLite converters do; any other
reader of such a tensor is refused.  Conv pads that are neither TFLite's SAME nor VALID
become an explicit PAD (zero point) before a VALID convolution.

Refused with one line naming the file and the node: unsupported ops (with the supported
list), float tensors between quantized ops, uint8 / int16 quantization, weights with a
nonzero zero point, non-constant weights, pads a pool cannot take; and everything
:mod:`pymodel.frontends.onnx_reader` refuses.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from pymodel import __version__
from pymodel.frontends.onnx_reader import OnnxGraph, read_onnx
from pymodel.frontends.tflite_import import _explicit_padding, import_model
from pymodel.frontends.tflite_reader import TfModel, TfOperator, TfTensor
from pymodel.graph.artifact import QuantizedNetwork

#: ONNX ops this importer maps (besides QuantizeLinear / DequantizeLinear).
SUPPORTED = ("Add", "AveragePool", "Clip", "Concat", "Conv", "Dropout", "Flatten", "Gemm",
             "GlobalAveragePool", "HardSwish", "Identity", "LeakyRelu", "MatMul", "MaxPool",
             "Mul", "Relu", "Reshape", "Sigmoid", "Softmax", "Sub")
_ALIASES = ("Identity", "Dropout")
_UNARY = {"Relu": "RELU", "Sigmoid": "LOGISTIC", "HardSwish": "HARD_SWISH",
          "LeakyRelu": "LEAKY_RELU", "Softmax": "SOFTMAX"}
_FUSED = {"none": 0, "relu": 1, "relu6": 3}


def _attrs(node: Any) -> dict[str, Any]:
    import onnx
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _nhwc(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[0], shape[2], shape[3], shape[1]) if len(shape) == 4 else tuple(shape)


class _Lower:
    """QDQ graph -> TfModel (see the module doc)."""

    def __init__(self, g: OnnxGraph) -> None:
        self.g = g
        self.tensors: list[TfTensor] = []
        self.ops: list[TfOperator] = []
        self.index: dict[str, int] = {}          # ONNX int8 tensor name -> TfTensor index
        self.flat: dict[int, tuple[int, int, int]] = {}   # CHW-flattened tensors: (h, w, c)
        self.alias: dict[str, str] = {}
        self.q_of: dict[str, Any] = {}            # float tensor -> the Q node reading it
        self.dq_of: dict[str, Any] = {}           # float tensor -> the DQ node writing it
        self.readers: dict[str, list[Any]] = {}
        self.onnx_name: dict[int, str] = {}

    # -- tensors -------------------------------------------------------------------------
    def real(self, name: str) -> str:
        while name in self.alias:
            name = self.alias[name]
        return name

    def const(self, node: Any, name: str, what: str) -> np.ndarray:
        if name not in self.g.inits:
            raise self.g.err(node, f"{what} ({name!r}) must be a constant initializer; it is "
                                   "computed at run time (non-constant weights are not "
                                   "supported)")
        return self.g.inits[name]

    def qparams(self, node: Any, qnode: Any) -> tuple[np.ndarray, np.ndarray, int]:
        scale = np.asarray(self.const(qnode, qnode.input[1], "scale"), np.float32).reshape(-1)
        zp = (np.asarray(self.const(qnode, qnode.input[2], "zero point"))
              if len(qnode.input) > 2 and qnode.input[2] else np.zeros(1, np.int8))
        axis = int(_attrs(qnode).get("axis", 1))
        return scale, zp, axis

    def add(self, name: str, shape: tuple[int, ...], dtype: str, scale: np.ndarray,
            zp: np.ndarray, qdim: int = 0, data: np.ndarray | None = None) -> int:
        i = len(self.tensors)
        self.tensors.append(TfTensor(index=i, name=name, shape=tuple(int(d) for d in shape),
                                     dtype=dtype, scale=np.asarray(scale, np.float32),
                                     zero_point=np.asarray(zp, np.int64).reshape(-1),
                                     quantized_dimension=qdim, data=data))
        return i

    def activation_in(self, node: Any, fname: str) -> int:
        """The TfTensor index of the int8 tensor a compute node's float input stands for."""
        fname = self.real(fname)
        dq = self.dq_of.get(fname)
        if dq is None:
            raise self.g.err(node, f"input {fname!r} is a float tensor (no DequantizeLinear "
                                   "before it); qmac needs every tensor between ops quantized")
        src = dq.input[0]
        if src in self.g.inits:
            return self.weight_const(node, dq, fname)
        if src not in self.index:
            raise self.g.err(node, f"input {fname!r} comes from {src!r}, which no quantized "
                                   "op before this node writes")
        return self.index[src]

    def weight_const(self, node: Any, dq: Any, fname: str) -> int:
        """A constant int8 operand of an elementwise op (layout NCHW -> NHWC)."""
        data = np.asarray(self.g.inits[dq.input[0]])
        scale, zp, _ = self.qparams(node, dq)
        if data.dtype != np.int8 or scale.size != 1:
            raise self.g.err(node, f"constant operand {fname!r} must be int8 per tensor; got "
                                   f"{data.dtype} with {scale.size} scales")
        data = data.transpose(0, 2, 3, 1) if data.ndim == 4 else data
        return self.add(dq.input[0], data.shape, "int8", scale, zp, data=data)

    def output_of(self, node: Any) -> tuple[int, str]:
        """(TfTensor index of the op's int8 output, fused activation name): follows the
        float output through Identity / Dropout and an optional Relu / Clip(0, 6) to its
        QuantizeLinear."""
        fname = node.output[0]
        act = "none"
        readers = self.readers.get(fname, [])
        if (len(readers) == 1 and readers[0].op_type in ("Relu", "Clip")
                and node.op_type in ("Conv", "Gemm", "MatMul", "Add", "Sub", "Mul")):
            r = readers[0]
            act = self.clip_kind(r)
            fname = r.output[0]
        q = self.q_of.get(fname)
        if q is None:
            raise self.g.err(node, f"output {fname!r} is not quantized (no QuantizeLinear "
                                   "after it); qmac imports fully quantized QDQ graphs")
        scale, zp, _ = self.qparams(node, q)
        if zp.dtype != np.int8:
            raise self.g.err(q, f"quantizes to {zp.dtype}; qmac imports int8 activations "
                                "(quantize_static(..., activation_type=QuantType.QInt8))")
        if scale.size != 1:
            raise self.g.err(q, "activations must be quantized per tensor")
        shape = self.g.shapes.get(fname)
        if shape is None:
            raise self.g.err(node, f"output {fname!r} has no static shape after shape "
                                   "inference")
        i = self.add(q.output[0], _nhwc(shape), "int8", scale, zp)
        self.index[q.output[0]] = i
        self.onnx_name[i] = q.output[0]
        return i, act

    def clip_kind(self, node: Any) -> str:
        if node.op_type == "Relu":
            return "relu"
        lo = float(self.const(node, node.input[1], "Clip min")) if len(node.input) > 1 and \
            node.input[1] else -np.inf
        hi = float(self.const(node, node.input[2], "Clip max")) if len(node.input) > 2 and \
            node.input[2] else np.inf
        if (lo, hi) == (0.0, 6.0):
            return "relu6"
        if (lo, hi) == (0.0, np.inf):
            return "relu"
        raise self.g.err(node, f"Clip({lo}, {hi}) is not supported; supported: Clip(0, 6) "
                               "(ReLU6) and Clip(0, inf) (ReLU)")

    def op(self, node: Any, opcode: str, inputs: list[int], outputs: list[int],
           **options: Any) -> None:
        self.ops.append(TfOperator(index=len(self.ops), opcode=opcode, version=1,
                                   inputs=tuple(inputs), outputs=tuple(outputs),
                                   options=options))

    # -- ops -----------------------------------------------------------------------------
    def padding(self, node: Any, in_hw: tuple[int, int], kernel: tuple[int, int],
                stride: tuple[int, int], dilation: tuple[int, int]
                ) -> tuple[int, tuple[tuple[int, int], tuple[int, int]] | None]:
        """TFLite padding kind (0 SAME, 1 VALID) matching the node's pads, or (1, pads) when
        an explicit PAD is needed."""
        a = _attrs(node)
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto in ("SAME_UPPER",):
            return 0, None
        if auto == "VALID":
            return 1, None
        if auto != "NOTSET":
            raise self.g.err(node, f"auto_pad {auto} is not supported; supported: NOTSET, "
                                   "SAME_UPPER, VALID")
        p = [int(v) for v in a.get("pads", [0, 0, 0, 0])]
        pads = ((p[0], p[2]), (p[1], p[3]))
        if pads == ((0, 0), (0, 0)):
            return 1, None
        ph, pw, _ = _explicit_padding(0, in_hw, kernel, stride, dilation)
        if (ph, pw) == pads:
            return 0, None
        return 1, pads

    def conv(self, node: Any) -> None:
        a = _attrs(node)
        x = self.activation_in(node, node.input[0])
        wdq = self.dq_of.get(self.real(node.input[1]))
        if wdq is None or wdq.input[0] not in self.g.inits:
            raise self.g.err(node, f"weights {node.input[1]!r} must be a constant int8 "
                                   "initializer behind a DequantizeLinear (non-constant or "
                                   "float weights are not supported)")
        w = np.asarray(self.g.inits[wdq.input[0]])
        ws, wz, waxis = self.qparams(node, wdq)
        self.check_weights(node, w, ws, wz, waxis, 0)
        xt = self.tensors[x]
        c_in = xt.shape[3]
        group = int(a.get("group", 1))
        kernel = (int(w.shape[2]), int(w.shape[3]))
        stride = tuple(int(s) for s in a.get("strides", [1, 1]))
        dil = tuple(int(s) for s in a.get("dilations", [1, 1]))
        kind, pads = self.padding(node, xt.shape[1:3], kernel, stride, dil)
        if pads is not None:
            x = self.pad(node, x, pads)
        if group == 1:
            opcode, wl, qdim = "CONV_2D", w.transpose(0, 2, 3, 1), 0
        elif group == c_in and w.shape[1] == 1:
            opcode, wl, qdim = "DEPTHWISE_CONV_2D", w[:, 0].transpose(1, 2, 0)[None], 3
        else:
            raise self.g.err(node, f"grouped convolution (group {group}, {c_in} input "
                                   "channels) is not supported; supported: group 1 and "
                                   "depthwise (group = input channels)")
        wi = self.add(wdq.input[0], wl.shape, "int8", ws, wz, qdim, np.ascontiguousarray(wl))
        ins = [x, wi, *self.bias(node, 2, w.shape[0])]
        y, act = self.output_of(node)
        opts = dict(stride_h=stride[0], stride_w=stride[1], padding=kind,
                    dilation_h_factor=dil[0], dilation_w_factor=dil[1],
                    fused_activation_function=_FUSED[act])
        if opcode == "DEPTHWISE_CONV_2D":
            opts["depth_multiplier"] = w.shape[0] // c_in
        self.op(node, opcode, ins, [y], **opts)

    def pad(self, node: Any, x: int, pads: Any) -> int:
        xt = self.tensors[x]
        (t, b), (left, r) = pads
        shape = (1, xt.shape[1] + t + b, xt.shape[2] + left + r, xt.shape[3])
        pi = self.add(f"{node.name}_paddings", (4, 2), "int32", np.zeros(0), np.zeros(0),
                      data=np.array([[0, 0], [t, b], [left, r], [0, 0]], np.int32))
        y = self.add(f"{node.name}_padded", shape, "int8", xt.scale, xt.zero_point)
        self.op(node, "PAD", [x, pi], [y])
        return y

    def check_weights(self, node: Any, w: np.ndarray, ws: np.ndarray, wz: np.ndarray,
                      axis: int, want_axis: int) -> None:
        if w.dtype != np.int8:
            raise self.g.err(node, f"weights are {w.dtype}; qmac imports int8 weights "
                                   "(quantize_static(..., weight_type=QuantType.QInt8))")
        if np.any(wz != 0):
            raise self.g.err(node, "weights have a nonzero zero point; qmac needs symmetric "
                                   "int8 weights (zero point 0)")
        if ws.size > 1 and axis % w.ndim != want_axis:
            raise self.g.err(node, f"weights quantized along axis {axis}; expected the "
                                   f"output-channel axis {want_axis}")

    def bias(self, node: Any, pos: int, channels: int) -> list[int]:
        if len(node.input) <= pos or not node.input[pos]:
            return []
        dq = self.dq_of.get(self.real(node.input[pos]))
        if dq is None or dq.input[0] not in self.g.inits:
            raise self.g.err(node, f"bias {node.input[pos]!r} must be a constant int32 "
                                   "initializer behind a DequantizeLinear")
        b = np.asarray(self.g.inits[dq.input[0]])
        bs, bz, _ = self.qparams(node, dq)
        if b.dtype != np.int32 or np.any(bz != 0) or b.size != channels:
            raise self.g.err(node, f"bias must be int32 [{channels}] with zero point 0; got "
                                   f"{b.dtype} {list(b.shape)}")
        return [self.add(dq.input[0], (channels,), "int32", bs, np.zeros(bs.size),
                         data=b.reshape(-1))]

    def fc(self, node: Any) -> None:
        a = _attrs(node)
        x = self.activation_in(node, node.input[0])
        if node.op_type == "Gemm" and (a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or
                                       a.get("beta", 1.0) != 1.0):
            raise self.g.err(node, "Gemm with transA, alpha != 1 or beta != 1 is not "
                                   "supported")
        wdq = self.dq_of.get(self.real(node.input[1]))
        if wdq is None or wdq.input[0] not in self.g.inits:
            raise self.g.err(node, f"weights {node.input[1]!r} must be a constant int8 "
                                   "initializer behind a DequantizeLinear (non-constant "
                                   "weights are not supported)")
        w = np.asarray(self.g.inits[wdq.input[0]])
        ws, wz, waxis = self.qparams(node, wdq)
        trans_b = node.op_type == "Gemm" and int(a.get("transB", 0)) == 1
        self.check_weights(node, w, ws, wz, waxis, 0 if trans_b else 1)
        wl = w if trans_b else w.T                                      # [N, K]
        if x in self.flat:
            h, wd, c = self.flat[x]
            wl = wl.reshape(-1, c, h, wd).transpose(0, 2, 3, 1).reshape(wl.shape[0], -1)
        wi = self.add(wdq.input[0], wl.shape, "int8", ws, wz, 0, np.ascontiguousarray(wl))
        ins = [x, wi, *self.bias(node, 2, wl.shape[0])]
        y, act = self.output_of(node)
        self.op(node, "FULLY_CONNECTED", ins, [y], fused_activation_function=_FUSED[act])

    def pool(self, node: Any) -> None:
        a = _attrs(node)
        x = self.activation_in(node, node.input[0])
        if int(a.get("ceil_mode", 0)):
            raise self.g.err(node, "ceil_mode 1 is not supported")
        kernel = tuple(int(k) for k in a["kernel_shape"])
        stride = tuple(int(s) for s in a.get("strides", [1, 1]))
        kind, pads = self.padding(node, self.tensors[x].shape[1:3], kernel, stride, (1, 1))
        if pads is not None or (node.op_type == "AveragePool" and kind == 0 and
                                int(a.get("count_include_pad", 0))):
            raise self.g.err(node, "pool pads must be TFLite's SAME (excluding the padding "
                                   "from averages) or VALID")
        y, _ = self.output_of(node)
        self.op(node, "MAX_POOL_2D" if node.op_type == "MaxPool" else "AVERAGE_POOL_2D",
                [x], [y], filter_height=kernel[0], filter_width=kernel[1], stride_h=stride[0],
                stride_w=stride[1], padding=kind, fused_activation_function=0)

    def reshape(self, node: Any) -> None:
        x = self.activation_in(node, node.input[0])
        xt = self.tensors[x]
        y, _ = self.output_of(node)
        yt = self.tensors[y]
        if len(yt.shape) != 2:
            raise self.g.err(node, f"{node.op_type} to shape {list(yt.shape)}: qmac maps "
                                   "only flattening to [1, N]")
        if len(xt.shape) == 4 and xt.shape[1] * xt.shape[2] > 1:
            self.flat[y] = (xt.shape[1], xt.shape[2], xt.shape[3])
        elif x in self.flat:
            self.flat[y] = self.flat[x]
        self.op(node, "RESHAPE", [x], [y])

    def eltwise(self, node: Any) -> None:
        ins = [self.activation_in(node, n) for n in node.input]
        y, act = self.output_of(node)
        self.op(node, node.op_type.upper(), ins, [y], fused_activation_function=_FUSED[act])

    def concat(self, node: Any) -> None:
        ins = [self.activation_in(node, n) for n in node.input]
        y, _ = self.output_of(node)
        rank = len(self.tensors[y].shape)
        axis = int(_attrs(node)["axis"]) % rank
        if rank == 4:
            axis = {0: 0, 1: 3, 2: 1, 3: 2}[axis]
        self.op(node, "CONCATENATION", ins, [y], axis=axis, fused_activation_function=0)

    def gap(self, node: Any) -> None:
        x = self.activation_in(node, node.input[0])
        y, _ = self.output_of(node)
        axes = self.add(f"{node.name}_axes", (2,), "int32", np.zeros(0), np.zeros(0),
                        data=np.array([1, 2], np.int32))
        self.op(node, "MEAN", [x, axes], [y], keep_dims=True)

    def unary(self, node: Any) -> None:
        x = self.activation_in(node, node.input[0])
        y, _ = self.output_of(node)
        if node.op_type == "Clip":
            kind = self.clip_kind(node)
            self.op(node, "RELU6" if kind == "relu6" else "RELU", [x], [y])
            return
        opts = {}
        if node.op_type == "LeakyRelu":
            opts["alpha"] = float(_attrs(node).get("alpha", 0.01))
        if node.op_type == "Softmax":
            opts["beta"] = 1.0
            rank = len(self.tensors[x].shape)
            if int(_attrs(node).get("axis", -1)) % rank != rank - 1 or rank == 4:
                raise self.g.err(node, "Softmax is supported over the last axis of a rank-2 "
                                       "tensor only")
        self.op(node, _UNARY[node.op_type], [x], [y], **opts)

    # -- driver --------------------------------------------------------------------------
    def run(self) -> TfModel:
        g = self.g
        for n in g.nodes:
            if n.domain not in ("", "ai.onnx"):
                raise g.err(n, f"op {n.domain}.{n.op_type} is not supported; supported: "
                               f"QuantizeLinear, DequantizeLinear, {', '.join(SUPPORTED)}")
            if n.op_type in _ALIASES:
                self.alias[n.output[0]] = n.input[0]
        for n in g.nodes:
            for i in n.input:
                self.readers.setdefault(self.real(i), []).append(n)
            if n.op_type == "QuantizeLinear":
                self.q_of[self.real(n.input[0])] = n
            elif n.op_type == "DequantizeLinear":
                self.dq_of[n.output[0]] = n
        if len(g.inputs) != 1 or len(g.outputs) != 1:
            raise g.err(None, f"{len(g.inputs)} inputs and {len(g.outputs)} outputs; qmac "
                              "imports single-input, single-output models")
        q_in = self.q_of.get(g.inputs[0])
        if q_in is None:
            raise g.err(None, f"input {g.inputs[0]!r} is not quantized (no QuantizeLinear "
                              "reads it): this is a float model; import it with "
                              "`qmac import-float` or quantize it with quantize_static (QDQ)")
        s, z, _ = self.qparams(None, q_in)
        if z.dtype != np.int8:
            raise g.err(q_in, f"quantizes to {z.dtype}; qmac imports int8 activations")
        self.index[q_in.output[0]] = self.add(q_in.output[0], _nhwc(g.shapes[g.inputs[0]]),
                                              "int8", s, z)
        fused = set()
        for n in g.nodes:
            if n.op_type in ("QuantizeLinear", "DequantizeLinear", *_ALIASES) or id(n) in fused:
                continue
            if n.op_type not in SUPPORTED:
                raise g.err(n, f"op {n.op_type} is not supported; supported: QuantizeLinear, "
                               f"DequantizeLinear, {', '.join(SUPPORTED)}")
            t = n.op_type
            if t in ("Conv", "Gemm", "MatMul", "Add", "Sub", "Mul"):
                r = self.readers.get(n.output[0], [])
                if len(r) == 1 and r[0].op_type in ("Relu", "Clip"):
                    fused.add(id(r[0]))
            if t == "Conv":
                self.conv(n)
            elif t in ("Gemm", "MatMul"):
                self.fc(n)
            elif t in ("MaxPool", "AveragePool"):
                self.pool(n)
            elif t in ("Flatten", "Reshape"):
                self.reshape(n)
            elif t in ("Add", "Sub", "Mul"):
                self.eltwise(n)
            elif t == "Concat":
                self.concat(n)
            elif t == "GlobalAveragePool":
                self.gap(n)
            else:
                self.unary(n)
        out = self.real(g.outputs[0])
        dq = self.dq_of.get(out)
        if dq is None or dq.input[0] not in self.index:
            raise g.err(None, f"output {g.outputs[0]!r} is not the DequantizeLinear of a "
                              "quantized op's output")
        o = self.index[dq.input[0]]
        if o in self.flat:
            raise g.err(None, "the output is a flattened NCHW tensor; qmac's flatten is HWC "
                              "order (end the model with a fully-connected layer)")
        return TfModel(path=g.path, tensors=tuple(self.tensors), operators=tuple(self.ops),
                       inputs=(0,), outputs=(o,))


def import_onnx_qdq(path: str | Path, name: str | None = None,
                    rounding: str = "double") -> QuantizedNetwork:
    """Read a QDQ ``.onnx`` and map it onto a :class:`QuantizedNetwork` (module doc).

    Args:
        path: the ``.onnx`` file.
        name: the artifact's name (default: the file's stem, made an identifier).
        rounding: ``"double"`` (gemmlowp, TFLite's default) or ``"single"``.

    Raises:
        ValueError: one line naming the file, the node and what is wrong.
    """
    import dataclasses

    if rounding not in ("double", "single"):
        raise ValueError(f"rounding: {rounding!r} is not 'double' or 'single'")
    g = read_onnx(path)
    low = _Lower(g)
    model = low.run()
    qnet = import_model(model, path, name, rounding)
    tensors = qnet.meta["tflite"]["tensors"]
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    meta = {"source": {"format": "onnx-qdq", "file": Path(path).name, "sha256": digest},
            "onnx": {"input": g.inputs[0], "output": g.outputs[0], "float_input": True,
                     "input_tensor": low.tensors[0].name,
                     "tensors": {k: low.tensors[v].name for k, v in tensors.items()},
                     "chw_flattened": {k: list(low.flat[v]) for k, v in tensors.items()
                                       if v in low.flat}},
            "tool": f"qmac {__version__}"}
    return dataclasses.replace(qnet, meta=meta)
