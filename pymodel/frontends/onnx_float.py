"""Import a float ONNX model (opset >= 13) as a qmac float network (YAML + ``.npz``).

``qmac import-float model.onnx -o DIR/name [--like NET.yaml]`` writes ``name.yaml`` and
``name.npz`` in the format of :mod:`pymodel.graph.network`, which ``qmac calibrate /
quantize`` (and, for chains, ``qat``) read.  That format is a graph (DAG) of conv2d /
depthwise_conv2d / fully_connected / pools / flatten layers with fused ReLU / ReLU6 and
``add`` / ``concat`` layers; a layer names its ``inputs`` only where it does not read the
previous layer, so a chain model gives the same YAML as before DAGs.  The nodes are
visited in the model's (topological) order:

================================== =======================================================
ONNX                               qmac layer
================================== =======================================================
Conv (group 1)                     conv2d; OIHW -> OHWI; explicit pads kept
Conv (group = C_in)                depthwise_conv2d; ``[C*m, 1, kh, kw]`` -> ``[1, kh, kw, C*m]``
BatchNormalization after a Conv    folded into it: ``w *= g / sqrt(v + eps)``,
                                   ``b = (b - mean) * g / sqrt(v + eps) + beta`` (float64)
Gemm (transA 0), MatMul + Add      fully_connected; ``alpha`` / ``beta`` folded; constant
  with constant weights            weights only
Relu, Clip(0, 6) after a conv / FC the layer's ``activation: relu / relu6``
MaxPool, AveragePool               max_pool2d, avg_pool2d (average excludes padding)
GlobalAveragePool                  avg_pool2d over the whole image
Flatten, Reshape to [1, N]         flatten (the next FC's columns permuted CHW -> HWC)
Identity, Dropout                  removed
Add of two computed tensors        add (residual); a Relu / Clip(0, 6) that alone reads it
                                   fused as its ``activation``
Concat along channels (axis 1)     concat
================================== =======================================================

A Relu / Clip / BatchNormalization / bias Add is fused only when it is the *only* reader
of the tensor (else the other readers would see the wrong value).  Not mapped (one line
naming the node and the supported list): ``Mul``, a standalone activation, an Add of a
constant other than a MatMul bias, dilation, grouped convolutions other than depthwise,
Add / Concat of a CHW-flattened tensor.  Shape and file checks as
:mod:`pymodel.frontends.onnx_reader`.

Quantization settings are not in an ONNX file: the written YAML gets the format's
defaults, or, with ``like``, the ``dataset``, ``quant``, ``ptq`` and ``input.quant``
blocks of an existing network YAML (e.g. the one the model was exported from).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from pymodel.frontends.onnx_reader import OnnxGraph, read_onnx
from pymodel.graph.network import INPUT_TENSOR as INPUT
from pymodel.graph.network import Network, parse_network

SUPPORTED = ("AveragePool", "BatchNormalization", "Clip", "Conv", "Dropout", "Flatten",
             "Gemm", "GlobalAveragePool", "Identity", "MatMul", "MaxPool", "Add", "Relu",
             "Reshape", "Concat")
_SUPPORTED_TEXT = ("Conv, BatchNormalization (after a Conv), Gemm, MatMul (+ Add bias), Relu, "
                   "Clip(0, 6), MaxPool, AveragePool, GlobalAveragePool, Flatten, Reshape, "
                   "Add (residual), Concat (channels), Identity, Dropout")


def _attrs(node: Any) -> dict[str, Any]:
    import onnx
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class _Chain:
    def __init__(self, g: OnnxGraph) -> None:
        self.g = g
        self.layers: list[dict[str, Any]] = []
        self.params: dict[str, np.ndarray] = {}
        self.names: set[str] = {INPUT}
        self.inits = dict(g.inits)
        for n in g.nodes:                              # Constant nodes are constants too
            if n.op_type == "Constant":
                from onnx import numpy_helper
                self.inits[n.output[0]] = numpy_helper.to_array(_attrs(n)["value"])

    def name(self, node: Any, default: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_]", "_", node.name or default).strip("_") or default
        if not re.match(r"[A-Za-z_]", base):
            base = f"{default}_{base}"
        out, i = base, 1
        while out in self.names:
            i += 1
            out = f"{base}_{i}"
        self.names.add(out)
        return out

    def const(self, node: Any, name: str, what: str) -> np.ndarray:
        if name not in self.inits:
            raise self.g.err(node, f"{what} ({name!r}) is not a constant initializer; qmac "
                                   "needs constant weights")
        return np.asarray(self.inits[name], np.float64)

    def pads(self, node: Any, in_hw: tuple[int, int], kernel: tuple[int, int],
             stride: tuple[int, int]) -> Any:
        a = _attrs(node)
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto == "VALID":
            return "valid"
        if auto == "SAME_UPPER":
            return "same"
        if auto != "NOTSET":
            raise self.g.err(node, f"auto_pad {auto} is not supported; supported: NOTSET, "
                                   "SAME_UPPER, VALID")
        p = [int(v) for v in a.get("pads", [0, 0, 0, 0])]
        return [[p[0], p[2]], [p[1], p[3]]]


def _fold_bn(g: OnnxGraph, node: Any, bn: Any, w: np.ndarray, b: np.ndarray,
             inits: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Fold ``BatchNormalization`` (inference mode) into the conv before it; ``w`` OHWI-
    or OIHW-shaped with output channels first, float64."""
    a = _attrs(bn)
    if int(a.get("training_mode", 0)):
        raise g.err(bn, "training_mode 1 cannot be folded")
    vals = []
    for nm, what in zip(bn.input[1:5], ("scale", "B", "mean", "var")):
        if nm not in inits:
            raise g.err(bn, f"{what} ({nm!r}) is not a constant initializer")
        vals.append(np.asarray(inits[nm], np.float64))
    gamma, beta, mean, var = vals
    k = gamma / np.sqrt(var + float(a.get("epsilon", 1e-5)))
    return w * k.reshape(-1, *([1] * (w.ndim - 1))), (b - mean) * k + beta


def import_onnx_float(path: str | Path, name: str | None = None,
                      like: Mapping[str, Any] | None = None
                      ) -> tuple[dict[str, Any], dict[str, np.ndarray], Network]:
    """Map a float ONNX network (a chain or a DAG) onto qmac's float network (module doc).

    Args:
        path: the ``.onnx`` file.
        name: network name (default: the file's stem, made an identifier).
        like: a parsed network YAML whose ``dataset`` / ``quant`` / ``ptq`` /
            ``input.quant`` blocks the result takes.

    Returns:
        ``(config, params, network)``: the YAML document (without ``weights``), the float64
        ``<layer>.weight`` / ``<layer>.bias`` arrays (TFLite layouts), and the validated
        :class:`Network`.

    Raises:
        ValueError: one line naming the file, the node and what is wrong.
    """
    g = read_onnx(path)
    c = _Chain(g)
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise g.err(None, f"{len(g.inputs)} inputs and {len(g.outputs)} outputs; qmac "
                          "imports single-input, single-output models")
    in_shape = g.shapes[g.inputs[0]]
    shape = _shape_in(in_shape)
    if len(in_shape) not in (2, 4):
        raise g.err(None, f"input shape {list(in_shape)}: qmac imports [1, C, H, W] or "
                          "[1, F] inputs")
    for n in g.nodes:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear"):
            raise g.err(n, "this is a quantized (QDQ) model; import it with `qmac import`")
    readers: dict[str, list[Any]] = {}
    for n in g.nodes:
        if n.op_type == "Constant":
            continue
        for i in n.input:
            readers.setdefault(i, []).append(n)
    consumed: set[int] = set()
    nodes = [n for n in g.nodes if n.op_type != "Constant"]
    alias: dict[str, str] = {g.inputs[0]: INPUT}     # ONNX tensor -> qmac tensor
    shapes: dict[str, tuple[int, ...]] = {INPUT: shape}
    flat: dict[str, tuple[int, int, int]] = {}       # qmac tensors flattened in CHW order

    def sole_reader(t: str) -> Any | None:
        """The node that alone reads ``t`` (fusion), or ``None``."""
        r = readers.get(t, [])
        return r[0] if len(r) == 1 and t not in g.outputs else None

    def src(n: Any, t: str) -> str:
        if t not in alias:
            raise g.err(n, f"reads {t!r}, which is not computed from the model input (a "
                           "constant subgraph or an unsupported input); qmac needs constant "
                           "initializers for weights and the model input for data")
        return alias[t]

    for n in nodes:
        if id(n) in consumed:
            continue
        if not any(i in alias for i in n.input):
            continue          # not reached from the input: refused below, or by its reader
        if n.op_type not in SUPPORTED:
            raise g.err(n, f"op {n.op_type} is not supported; supported: {_SUPPORTED_TEXT}")
        t = n.op_type
        consumed.add(id(n))
        out = n.output[0]
        if t in ("Identity", "Dropout"):
            alias[out] = src(n, n.input[0])
            continue
        if t in ("Relu", "Clip", "BatchNormalization"):
            raise g.err(n, f"{t} is supported only as the only reader of a Conv's output "
                           "(BatchNormalization, Relu, Clip), a MatMul / Gemm's (Add bias, "
                           "Relu, Clip) or a residual Add's (Relu, Clip)")
        srcs: list[str] = []
        layer: dict[str, Any] = {}
        if t == "Add" and any(i in c.inits for i in n.input):
            raise g.err(n, "Add of a constant is supported only as the bias right after a "
                           "MatMul (the MatMul's only reader)")
        if t in ("Add", "Concat"):
            srcs = [src(n, i) for i in n.input]
            for s_ in srcs:
                if s_ in flat:
                    raise g.err(n, f"{t} of a flattened NCHW tensor is not supported (qmac's "
                                   "flatten is HWC order)")
            if t == "Add":
                layer = dict(name=c.name(n, "add"), op="add", inputs=srcs)
            else:
                rank = len(shapes[srcs[0]]) + 1
                axis = int(_attrs(n).get("axis", 1))
                if (axis + rank if axis < 0 else axis) != 1:
                    raise g.err(n, f"Concat along axis {axis}: qmac concatenates channels "
                                   "(axis 1 of NCHW / of [1, F])")
                layer = dict(name=c.name(n, "concat"), op="concat", inputs=srcs)
        else:
            srcs = [src(n, n.input[0])]
            for i in n.input[1:]:
                if i and i not in c.inits:
                    raise g.err(n, f"input {i!r} is not a constant initializer; qmac needs "
                                   "constant weights")
            shape = shapes[srcs[0]]
        if srcs and srcs[0] in flat and t not in ("Gemm", "MatMul"):
            raise g.err(n, "reads a flattened NCHW tensor; only a fully-connected layer may "
                           "(its columns are permuted to qmac's HWC order)")
        if t == "Conv":
            a = _attrs(n)
            if len(shape) != 3:
                raise g.err(n, f"Conv on a rank-{len(shape)} tensor")
            w = c.const(n, n.input[1], "weights")
            b = (c.const(n, n.input[2], "bias") if len(n.input) > 2 and n.input[2]
                 else np.zeros(w.shape[0]))
            if any(int(d) != 1 for d in a.get("dilations", [1, 1])):
                raise g.err(n, f"dilations {list(a['dilations'])} are not supported by the "
                               "float network format")
            group = int(a.get("group", 1))
            kernel = (int(w.shape[2]), int(w.shape[3]))
            stride = tuple(int(s) for s in a.get("strides", [1, 1]))
            # BatchNormalization right after (the conv output's only reader): fold
            bn = sole_reader(out)
            if bn is not None and bn.op_type == "BatchNormalization":
                w, b = _fold_bn(g, n, bn, w, b, c.inits)
                consumed.add(id(bn))
                out = bn.output[0]
            nm = c.name(n, "conv")
            pad = c.pads(n, shape[:2], kernel, stride)
            if group == 1:
                layer = dict(name=nm, op="conv2d", filters=int(w.shape[0]),
                             kernel=list(kernel), stride=list(stride), padding=pad)
                c.params[f"{nm}.weight"] = w.transpose(0, 2, 3, 1)
            elif group == shape[2] and w.shape[1] == 1:
                layer = dict(name=nm, op="depthwise_conv2d", kernel=list(kernel),
                             stride=list(stride), padding=pad,
                             depth_multiplier=int(w.shape[0]) // group)
                c.params[f"{nm}.weight"] = w[:, 0].transpose(1, 2, 0)[None]
            else:
                raise g.err(n, f"grouped convolution (group {group}) is not supported; "
                               "supported: group 1 and depthwise")
            c.params[f"{nm}.bias"] = b
        elif t in ("Gemm", "MatMul"):
            a = _attrs(n)
            if len(shape) != 1:
                raise g.err(n, f"{t} on a rank-{len(shape)} tensor; flatten first")
            if t == "Gemm" and int(a.get("transA", 0)):
                raise g.err(n, "Gemm with transA 1 is not supported")
            bmat = c.const(n, n.input[1], "weights")
            w = bmat if (t == "Gemm" and int(a.get("transB", 0))) else bmat.T
            w = w * float(a.get("alpha", 1.0)) if t == "Gemm" else w
            b = np.zeros(w.shape[0])
            if t == "Gemm" and len(n.input) > 2 and n.input[2]:
                b = np.broadcast_to(c.const(n, n.input[2], "bias") * float(a.get("beta", 1.0)),
                                    (w.shape[0],)).copy()
            if t == "MatMul":
                add = sole_reader(out)
                other = [i for i in add.input if i != out] if add is not None else []
                if add is not None and add.op_type == "Add" and other and other[0] in c.inits:
                    b = np.broadcast_to(c.const(add, other[0], "bias"), (w.shape[0],)).copy()
                    consumed.add(id(add))
                    out = add.output[0]
            if srcs[0] in flat:                          # CHW-flattened input -> HWC
                h, wd, ch = flat[srcs[0]]
                w = w.reshape(-1, ch, h, wd).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
            nm = c.name(n, "fc")
            layer = dict(name=nm, op="fully_connected", units=int(w.shape[0]))
            c.params[f"{nm}.weight"] = w
            c.params[f"{nm}.bias"] = b
        elif t in ("MaxPool", "AveragePool", "GlobalAveragePool"):
            a = _attrs(n)
            if len(shape) != 3:
                raise g.err(n, f"{t} on a rank-{len(shape)} tensor")
            if t == "GlobalAveragePool":
                kernel, stride, pad = shape[:2], shape[:2], "valid"
            else:
                if int(a.get("ceil_mode", 0)):
                    raise g.err(n, "ceil_mode 1 is not supported")
                kernel = tuple(int(k) for k in a["kernel_shape"])
                stride = tuple(int(s) for s in a.get("strides", [1, 1]))
                pad = c.pads(n, shape[:2], kernel, stride)
                if (t == "AveragePool" and int(a.get("count_include_pad", 0)) and
                        pad not in ("valid", [[0, 0], [0, 0]])):
                    raise g.err(n, "count_include_pad 1 with padding is not supported (qmac "
                                   "averages over the in-image taps)")
            layer = dict(name=c.name(n, "pool"),
                         op="max_pool2d" if t == "MaxPool" else "avg_pool2d",
                         pool=list(kernel), stride=list(stride), padding=pad)
        elif t in ("Flatten", "Reshape"):
            oshape = g.shapes.get(out)
            if oshape is None or len(oshape) != 2 or oshape[0] != 1:
                raise g.err(n, f"{t} to {list(oshape) if oshape else '?'}: qmac maps only "
                               "flattening to [1, N]")
            layer = dict(name=c.name(n, "flatten"), op="flatten")
            if len(shape) == 3 and shape[0] * shape[1] > 1:
                flat[layer["name"]] = (shape[0], shape[1], shape[2])
        if layer["op"] in ("conv2d", "depthwise_conv2d", "fully_connected", "add"):
            nxt = sole_reader(out)
            if nxt is not None and nxt.op_type in ("Relu", "Clip"):
                layer["activation"] = _activation(g, nxt, c.inits)
                consumed.add(id(nxt))
                out = nxt.output[0]
        prev = c.layers[-1]["name"] if c.layers else INPUT
        if srcs != [prev] and "inputs" not in layer:   # a chain needs no inputs key
            layer["inputs"] = srcs
        if "inputs" in layer:                            # keep the key order of the format
            layer = {"name": layer.pop("name"), "op": layer.pop("op"),
                     "inputs": layer.pop("inputs"), **layer}
        c.layers.append(layer)
        alias[out] = layer["name"]
        # the shapes so far, as the float network format computes them
        partial = parse_network(_config(g, c.layers, name, path, like), None,
                                source=str(path), check_outputs=False)
        shapes = {INPUT: partial.input_shape, **{s.name: s.output_shape for s in partial.layers}}
    if not c.layers:
        raise g.err(None, "no layers")
    if alias.get(g.outputs[0]) != c.layers[-1]["name"]:
        raise g.err(None, f"the model output {g.outputs[0]!r} is not the last layer's output "
                          f"({c.layers[-1]['name']!r}); qmac networks end at their last layer")
    if c.layers[-1]["name"] in flat:
        raise g.err(None, "the output is a flattened NCHW tensor; qmac's flatten is HWC "
                          "order (end the model with a fully-connected layer)")
    left = [n for n in nodes if id(n) not in consumed]
    if left:
        raise g.err(left[0], "is not on a path from the input to the output")
    config = _config(g, c.layers, name, path, like)
    net = parse_network(config, c.params, source=str(path))
    return config, c.params, net


def _shape_in(in_shape: tuple[int, ...]) -> tuple[int, ...]:
    """ONNX ``[1, C, H, W]`` / ``[1, F]`` -> qmac ``(H, W, C)`` / ``(F,)``."""
    return (in_shape[2], in_shape[3], in_shape[1]) if len(in_shape) == 4 else (in_shape[1],)


def _activation(g: OnnxGraph, node: Any, inits: Mapping[str, Any]) -> str:
    if node.op_type == "Relu":
        return "relu"
    lo = float(np.asarray(inits[node.input[1]])) if len(node.input) > 1 and node.input[1] \
        else -np.inf
    hi = float(np.asarray(inits[node.input[2]])) if len(node.input) > 2 and node.input[2] \
        else np.inf
    if (lo, hi) == (0.0, 6.0):
        return "relu6"
    if (lo, hi) == (0.0, np.inf):
        return "relu"
    raise g.err(node, f"Clip({lo}, {hi}) is not supported; supported: Clip(0, 6), Clip(0, inf)")


def _config(g: OnnxGraph, layers: list[dict[str, Any]], name: str | None,
            path: str | Path, like: Mapping[str, Any] | None) -> dict[str, Any]:
    """The network YAML document (see :func:`import_onnx_float`)."""
    stem = name or re.sub(r"[^A-Za-z0-9_]", "_", Path(path).stem)
    cfg: dict[str, Any] = {"name": stem,
                           "description": f"imported from {Path(path).name} (qmac "
                                          "import-float)",
                           "input": {"shape": list(_shape_in(g.shapes[g.inputs[0]]))}}
    if like:
        for k in ("dataset", "quant", "ptq"):
            if k in like:
                cfg[k] = like[k]
        if isinstance(like.get("input"), Mapping) and "quant" in like["input"]:
            cfg["input"]["quant"] = like["input"]["quant"]
    cfg["layers"] = layers
    return cfg




def save_float_network(config: Mapping[str, Any], params: Mapping[str, np.ndarray],
                       out: str | Path) -> Path:
    """Write ``out`` (a stem or ``.yaml``) and the ``.npz`` beside it as one unit (nothing
    half-written on an error or Ctrl-C); returns the YAML path."""
    import yaml

    from pymodel import atomicio

    p = Path(out)
    p = p if p.suffix == ".yaml" else p.with_name(p.name + ".yaml")
    npz = p.with_suffix(".npz")
    doc = dict(config)
    doc = {"name": doc["name"], "description": doc["description"], "weights": npz.name,
           **{k: v for k, v in doc.items() if k not in ("name", "description")}}
    text = ("# Float network imported from ONNX by `qmac import-float` (docs/onnx.md).\n"
            "# Layouts: activations NHWC, conv weights [out, kh, kw, in], FC [out, in].\n"
            + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=96))
    atomicio.write_group({p: text.encode(), npz: atomicio.npz_bytes(
        {k: np.asarray(v, np.float64) for k, v in params.items()})})
    return p
