"""The quantized-network artifact: what calibration produces and the RTL runner loads.

An artifact is a pair of files with one stem: ``NAME.yaml`` (self-describing: every
layer's op, shapes, stride, padding, zero points, scales, clamp and calibrated range,
and the name, dtype and shape of each of its arrays) and ``NAME.npz`` (the arrays).
The YAML records a SHA-256 of the arrays' content; :func:`load_artifact` refuses a
pair that does not match.  :func:`save_artifact` writes both files to temporary names
and moves them into place together (Ctrl-C held back), so an error or an interrupt
leaves the previous artifact untouched.

Per weight layer (``conv2d``, ``depthwise_conv2d``, ``fully_connected``) the arrays are

==================== ======= ========= ====================================================
array                dtype   shape     meaning
==================== ======= ========= ====================================================
``<l>.weight``       int8    TFLite    quantized weights; values in [-(2^(b-1)-1),
                                       2^(b-1)-1] for ``weights.bits = b`` (INT4: [-7, 7])
``<l>.bias``         int32   [C]       bias at scale ``s_in * s_w[c]`` (not folded)
``<l>.bias_folded``  int32   [C]       ``wrap32(bias - zp_in * sum_k w[c, k])``: what the
                                       hardware adds (``fold_input_zero_point``)
``<l>.m0``           int32   [C]       requantization multiplier, [2^30, 2^31) or 0
``<l>.shift``        int32   [C]       requantization shift, [-31, 30], positive = left
``<l>.weight_scale`` float64 [C]       real weight scale per output channel (equal
                                       entries when ``granularity: per_tensor``)
==================== ======= ========= ====================================================

The integer path needs only the int arrays and the integer fields of the YAML
(zero points, ``act_min`` / ``act_max``, stride, padding); scales and ranges are
recorded for dequantization and reports.  ``docs/calibration.md`` shows an example.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import yaml

from pymodel import atomicio
from pymodel.ops.layers import ACTIVATIONS, RequantParams, fold_input_zero_point
from pymodel.graph.network import NAME_RE, OPS, POOL_OPS, WEIGHT_OPS
from pymodel.arithmetic.qparams import QuantParams, qrange
from pymodel.schema import Checker, load_yaml
from pymodel.validate import NPZ_READ_ERRORS

FORMAT = "qmac-quantized-network"
VERSION = 2
#: Versions this module reads.  Version 1 is a chain of the ops of :data:`V1_OPS`;
#: version 2 adds graphs (a layer's ``inputs``), the ops of :data:`GRAPH_OPS`, dilation
#: and the rounding mode.  A network that needs none of these is still written as
#: version 1, so the shipped digits artifacts keep their bytes.
VERSIONS = (1, 2)
V1_OPS = OPS
#: Ops imported from other frameworks (TFLite): integer parameters under ``params``,
#: constant operands under ``tensors``; arithmetic in :mod:`pymodel.graph.opset`.
GRAPH_OPS = ("add", "sub", "mul", "mean", "pad", "concatenation", "reshape", "quantize",
             "softmax", "logistic", "hard_swish", "relu", "relu6", "leaky_relu")
ARTIFACT_OPS = OPS + GRAPH_OPS
#: Ops whose output keeps the input's quantization.
SAME_QUANT_OPS = POOL_OPS + ("flatten", "reshape", "pad")
ROUNDINGS = ("double", "single")
INPUT = "input"


@dataclass(frozen=True)
class TensorQuant:
    """Quantization of one activation tensor (per tensor).

    Attributes:
        scale: real units per integer step (> 0).
        zero_point: the integer real 0.0 maps to.
        bits: 2..8 (held in int8).
        symmetric: narrow symmetric range (zero point 0).
        rmin, rmax: the calibrated real range the parameters were computed from.
        calibrator: label of the calibrator that chose the range (``None`` for tensors
            that inherit it, e.g. pooling outputs).
        threshold: the ``|x|`` threshold of a threshold calibrator, else ``None``.
    """

    scale: float
    zero_point: int
    bits: int = 8
    symmetric: bool = False
    rmin: float = 0.0
    rmax: float = 0.0
    calibrator: str | None = None
    threshold: float | None = None

    @property
    def qmin(self) -> int:
        return qrange(self.bits, self.symmetric)[0]

    @property
    def qmax(self) -> int:
        return qrange(self.bits, self.symmetric)[1]

    def qparams(self) -> QuantParams:
        return QuantParams(scale=np.asarray(self.scale, np.float64),
                           zero_point=np.asarray(self.zero_point, np.int32),
                           bits=self.bits, symmetric=self.symmetric)

    def to_config(self) -> dict[str, Any]:
        out: dict[str, Any] = {"scale": float(self.scale), "zero_point": int(self.zero_point),
                               "bits": int(self.bits), "symmetric": bool(self.symmetric),
                               "range": [float(self.rmin), float(self.rmax)]}
        if self.calibrator is not None:
            out["calibrator"] = self.calibrator
        if self.threshold is not None:
            out["threshold"] = float(self.threshold)
        return out


@dataclass(frozen=True)
class QLayer:
    """One quantized layer, everything needed to run it.

    Attributes:
        name, op: layer name and op (``conv2d``, ``depthwise_conv2d``,
            ``fully_connected``, ``max_pool2d``, ``avg_pool2d``, ``flatten``).
        input_shape, output_shape: per-image shapes (``(H, W, C)`` or ``(F,)``).
        input, output: activation quantization (pools / flatten: output == input).
        act_min, act_max: output clamp (int8); the fused activation folded in.
        activation: fused activation name (informative; the clamp implements it).
        kernel: ``(kh, kw)`` of a conv, or the pool window; ``stride``: ``(sh, sw)``;
            padding: ``((top, bottom), (left, right))``, explicit.
        weight: int8 weights (TFLite layout), ``None`` for weightless ops.
        weight_bits, weight_granularity: weight scheme.
        weight_scale: float64 ``[C]``.
        bias, bias_folded, m0, shift: int32 ``[C]``.
        depth_multiplier: depthwise only.
        macs: multiply-accumulates per image.
        inputs: names of the tensors the layer reads (a tensor is named after the layer
            that writes it; the network input is ``"input"``).  Filled in on load: a
            version-1 layer reads the previous layer's output.
        input_shapes, input_quants: shape and quantization of each of ``inputs`` (filled
            in on load; ``input_shape`` / ``input`` are the first's).
        dilation: ``(dh, dw)`` of a convolution (``None``: 1).
        rounding: the requantize rounding, ``"double"`` (gemmlowp) or ``"single"``
            (``TFLITE_SINGLE_ROUNDING``); see ``docs/arithmetic.md``.
        params: integer parameters of a :data:`GRAPH_OPS` op (multipliers, shifts, axes,
            paddings), as the op's ``prepare`` function computed them.
        consts: constant int8 / int32 operands of a :data:`GRAPH_OPS` op, by role.
    """

    name: str
    op: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    input: TensorQuant
    output: TensorQuant
    act_min: int
    act_max: int
    activation: str = "none"
    kernel: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    padding: tuple[tuple[int, int], tuple[int, int]] | None = None
    weight: np.ndarray | None = None
    weight_bits: int | None = None
    weight_granularity: str | None = None
    weight_scale: np.ndarray | None = None
    bias: np.ndarray | None = None
    bias_folded: np.ndarray | None = None
    m0: np.ndarray | None = None
    shift: np.ndarray | None = None
    depth_multiplier: int | None = None
    macs: int = 0
    inputs: tuple[str, ...] = ()
    input_shapes: tuple[tuple[int, ...], ...] = ()
    input_quants: tuple[TensorQuant, ...] = ()
    dilation: tuple[int, int] | None = None
    rounding: str = "double"
    params: Mapping[str, Any] = field(default_factory=dict)
    consts: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def has_weights(self) -> bool:
        return self.op in WEIGHT_OPS

    def requant(self) -> RequantParams:
        """The layer's :class:`pymodel.ops.layers.RequantParams` (weight layers only)."""
        if not self.has_weights:
            raise ValueError(f"layer {self.name!r}: {self.op} has no requantization")
        return RequantParams(bias=self.bias, m0=self.m0, shift=self.shift,
                             out_zero_point=self.output.zero_point, act_min=self.act_min,
                             act_max=self.act_max, rounding=self.rounding)

    @property
    def w2d(self) -> np.ndarray:
        """The weights as the GEMM's ``[C, K]`` matrix (conv: ``K = kh*kw*in`` in
        ``im2col`` column order; fully connected: the weight itself; depthwise:
        ``[C*m, kh*kw]``, one row of taps per output channel)."""
        if self.weight is None:
            raise ValueError(f"layer {self.name!r}: {self.op} has no weights")
        if self.op == "depthwise_conv2d":
            return self.weight.reshape(-1, self.weight.shape[3]).T
        return self.weight.reshape(self.weight.shape[0], -1)

    def arrays(self) -> dict[str, np.ndarray]:
        """This layer's arrays under their ``.npz`` names."""
        if not self.has_weights:
            return {f"{self.name}.{k}": v for k, v in self.consts.items()}
        return {f"{self.name}.{k}": getattr(self, attr) for k, attr in _ARRAYS.items()}


_ARRAYS = {"weight": "weight", "bias": "bias", "bias_folded": "bias_folded", "m0": "m0",
           "shift": "shift", "weight_scale": "weight_scale"}
_ARRAY_DTYPES = {"weight": np.int8, "bias": np.int32, "bias_folded": np.int32,
                 "m0": np.int32, "shift": np.int32, "weight_scale": np.float64}


@dataclass(frozen=True)
class QuantizedNetwork:
    """A quantized network artifact in memory.

    Attributes:
        name: network name.
        input_shape: per-image input shape.
        input: quantization of the network input (float images are quantized with it).
        layers: the quantized layers in order.
        meta: provenance (source network, weights digest, calibration set, tool version).
        path: the YAML the artifact was loaded from / saved to, if any.
    """

    name: str
    input_shape: tuple[int, ...]
    input: TensorQuant
    layers: tuple[QLayer, ...]
    meta: Mapping[str, Any] = field(default_factory=dict)
    path: str | None = None

    def __post_init__(self) -> None:
        """Fill in each layer's ``inputs`` (a layer without them reads the previous
        layer's output) and the shapes and quantization of the tensors it reads, so that
        a network built in memory equals the same network loaded from disk."""
        produced: dict[str, tuple[tuple[int, ...], TensorQuant]] = {
            INPUT: (tuple(self.input_shape), self.input)}
        prev, layers, changed = INPUT, [], False
        for q in self.layers:
            inputs = tuple(q.inputs) or (prev,)
            if all(s in produced for s in inputs):
                shapes = tuple(produced[s][0] for s in inputs)
                quants = tuple(produced[s][1] for s in inputs)
                if (inputs, shapes, quants) != (q.inputs, q.input_shapes, q.input_quants):
                    q = dataclasses.replace(q, inputs=inputs, input_shapes=shapes,
                                            input_quants=quants)
                    changed = True
            layers.append(q)
            produced[q.name] = (tuple(q.output_shape), q.output)
            prev = q.name
        if changed:
            object.__setattr__(self, "layers", tuple(layers))

    @property
    def output(self) -> TensorQuant:
        return self.layers[-1].output

    def layer(self, name: str) -> QLayer:
        for q in self.layers:
            if q.name == name:
                return q
        raise ValueError(f"layer: {name!r} is not a layer of {self.name!r}; layers: "
                         f"{', '.join(q.name for q in self.layers)}")

    def arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for q in self.layers:
            out.update(q.arrays())
        return out

    def weight_bits_average(self) -> float:
        """Parameter-weighted average bits per weight (biases excluded)."""
        n = b = 0
        for q in self.layers:
            if q.weight is not None:
                n += q.weight.size
                b += q.weight.size * int(q.weight_bits)  # type: ignore[arg-type]
        return b / n if n else 0.0


# ----------------------------------------------------------------------------------------
# Save
# ----------------------------------------------------------------------------------------

def _plain(value: Any) -> Any:
    """numpy scalars / arrays / tuples -> YAML-safe ints, floats, strings and lists."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _chain_inputs(qnet: QuantizedNetwork) -> list[tuple[str, ...]]:
    """What each layer would read as a chain (version 1)."""
    prev = [INPUT] + [q.name for q in qnet.layers[:-1]]
    return [(name,) for name in prev]


def needs_version2(qnet: QuantizedNetwork) -> bool:
    """True when the network uses anything version 1 cannot say."""
    for q, chain in zip(qnet.layers, _chain_inputs(qnet)):
        if q.op not in V1_OPS or (q.inputs and tuple(q.inputs) != chain):
            return True
        if q.rounding != "double" or (q.dilation is not None and tuple(q.dilation) != (1, 1)):
            return True
    return False


def _layer_config(q: QLayer, chain: tuple[str, ...], v2: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": q.name, "op": q.op}
    if v2 and q.inputs and tuple(q.inputs) != chain:
        out["inputs"] = list(q.inputs)
    out["input_shape"] = list(q.input_shape)
    out["output_shape"] = list(q.output_shape)
    if q.kernel is not None:
        out["pool" if q.op in POOL_OPS else "kernel"] = list(q.kernel)
        out["stride"] = list(q.stride)  # type: ignore[arg-type]
        out["padding"] = [list(q.padding[0]), list(q.padding[1])]  # type: ignore[index]
        if v2 and q.dilation is not None and tuple(q.dilation) != (1, 1):
            out["dilation"] = list(q.dilation)
    if q.has_weights:
        out["activation"] = q.activation
        if q.op == "depthwise_conv2d":
            out["depth_multiplier"] = int(q.depth_multiplier)  # type: ignore[arg-type]
        out["weights"] = {"bits": int(q.weight_bits),  # type: ignore[arg-type]
                          "granularity": q.weight_granularity, "symmetric": True,
                          "zero_point": 0}
        out["tensors"] = {k: {"name": f"{q.name}.{k}",
                              "dtype": np.dtype(_ARRAY_DTYPES[k]).name,
                              "shape": list(getattr(q, attr).shape)}
                          for k, attr in _ARRAYS.items()}
        out["macs"] = int(q.macs)
    if v2 and q.has_weights and q.rounding != "double":
        out["rounding"] = q.rounding
    if q.params:
        out["params"] = {k: _plain(v) for k, v in q.params.items()}
    if q.consts:
        out["tensors"] = {k: {"name": f"{q.name}.{k}", "dtype": v.dtype.name,
                              "shape": list(v.shape)} for k, v in q.consts.items()}
    out["input"] = {"scale": float(q.input.scale), "zero_point": int(q.input.zero_point)}
    out["output"] = q.output.to_config()
    out["act_min"] = int(q.act_min)
    out["act_max"] = int(q.act_max)
    return out


def artifact_config(qnet: QuantizedNetwork, digest: str, npz_name: str) -> dict[str, Any]:
    """The YAML document of an artifact (version 1 when the network is a plain chain of
    version-1 ops, else version 2)."""
    inp = qnet.input.to_config()
    inp = {"shape": list(qnet.input_shape), "dtype": "int8", **inp}
    v2 = needs_version2(qnet)
    return {
        "format": FORMAT, "version": 2 if v2 else 1, "name": qnet.name,
        "arrays": {"file": npz_name, "sha256": digest},
        "meta": dict(qnet.meta),
        "input": inp,
        "layers": [_layer_config(q, c, v2) for q, c in zip(qnet.layers, _chain_inputs(qnet))],
    }


HEADER = """\
# qmac quantized-network artifact (written by pymodel; format described in
# docs/calibration.md).  Integer path: int8 input -> per layer the op with its int8
# weights, int32 bias / m0 / shift (arrays in the .npz named under `tensors`), input and
# output zero points and the act_min / act_max clamp.  Scales and ranges are for
# dequantization and reports only.
"""


def save_artifact(qnet: QuantizedNetwork, path: str | Path) -> Path:
    """Write ``qnet`` as ``<stem>.yaml`` + ``<stem>.npz`` as one unit
    (:func:`pymodel.atomicio.write_group`: both written to temporary files, then moved
    into place with Ctrl-C held back; on any error nothing changes).

    Args:
        qnet: the artifact.
        path: the YAML path (``.yaml``) or the stem; the ``.npz`` goes beside it.

    Returns:
        The YAML path.
    """
    p = Path(path)
    yml = p if p.suffix in (".yaml", ".yml") else p.with_name(p.name + ".yaml")
    npz = yml.with_suffix(".npz")
    arrays = qnet.arrays()
    digest = atomicio.arrays_digest(arrays)
    config = artifact_config(qnet, digest, npz.name)
    text = HEADER + yaml.safe_dump(config, sort_keys=False, default_flow_style=None, width=100)
    # Check the document before anything is written: it must load back.
    parse_artifact(yaml.safe_load(text), arrays, source=str(yml))
    atomicio.write_group({npz: atomicio.npz_bytes(arrays), yml: text.encode()})
    return yml


# ----------------------------------------------------------------------------------------
# Load and validate
# ----------------------------------------------------------------------------------------

TOP_KEYS = ("format", "version", "name", "arrays", "meta", "input", "layers")
TENSOR_KEYS = ("scale", "zero_point", "bits", "symmetric", "range", "calibrator", "threshold")


def _tensor_quant(ck: Checker, value: Any, path: str, extra: tuple[str, ...] = (),
                  full: bool = True) -> TensorQuant:
    keys = TENSOR_KEYS + extra if full else ("scale", "zero_point")
    m = ck.mapping(value, path, keys, ("scale", "zero_point") + (
        ("bits", "symmetric", "range") if full else ()))
    scale = ck.real(m["scale"], f"{path}.scale", positive=True)
    zp = ck.integer(m["zero_point"], f"{path}.zero_point", -128, 127)
    if not full:
        return TensorQuant(scale, zp)
    bits = ck.integer(m["bits"], f"{path}.bits", 2, 8)
    sym = ck.boolean(m["symmetric"], f"{path}.symmetric")
    qmin, qmax = qrange(bits, sym)
    if not qmin <= zp <= qmax:
        raise ck.error(f"{path}.zero_point", f"{zp} is outside [{qmin}, {qmax}] of a "
                                             f"{bits}-bit {'symmetric' if sym else 'asymmetric'} "
                                             "tensor")
    rng = m["range"]
    if not isinstance(rng, list) or len(rng) != 2:
        raise ck.error(f"{path}.range", f"expected [rmin, rmax]; got {rng!r}")
    rmin, rmax = (ck.real(v, f"{path}.range[{i}]") for i, v in enumerate(rng))
    cal = ck.string(m["calibrator"], f"{path}.calibrator") if "calibrator" in m else None
    thr = ck.real(m["threshold"], f"{path}.threshold") if "threshold" in m else None
    return TensorQuant(scale, zp, bits, sym, rmin, rmax, cal, thr)


LAYER_KEYS = ("name", "op", "inputs", "input_shape", "output_shape", "kernel", "pool",
              "stride", "padding", "dilation", "activation", "depth_multiplier", "weights",
              "tensors", "macs", "rounding", "params", "input", "output", "act_min", "act_max")
SHAPE_RANKS = (1, 2, 3)
CONST_DTYPES = ("int8", "int32")


def _npz_array(ck: Checker, value: Any, tpath: str, arrays: Mapping[str, np.ndarray],
               used: set[str], want: np.dtype | None, ranks: tuple[int, ...]) -> np.ndarray:
    """The ``.npz`` array a ``tensors`` entry (``{name, dtype, shape}``) names, checked against
    the entry: present, of dtype ``want`` (``None``: the entry's dtype, one of
    :data:`CONST_DTYPES`) and of the entry's shape.  Marks it used."""
    t = ck.mapping(value, tpath, ("name", "dtype", "shape"), ("name", "dtype", "shape"))
    aname = ck.string(t["name"], f"{tpath}.name")
    if aname not in arrays:
        raise ck.error(f"{tpath}.name", f"array {aname!r} is missing from the .npz")
    arr = arrays[aname]
    dt = ck.string(t["dtype"], f"{tpath}.dtype", None if want is not None else CONST_DTYPES)
    expect = want if want is not None else np.dtype(dt)
    if dt != expect.name or arr.dtype != expect:
        raise ck.error(f"{tpath}.dtype", f"array {aname!r} must be {expect.name}; the YAML "
                                         f"says {dt!r}, the .npz holds {arr.dtype}")
    shape = ck.int_list(t["shape"], f"{tpath}.shape", ranks, 1)
    if tuple(arr.shape) != shape:
        raise ck.error(f"{tpath}.shape", f"array {aname!r} has shape {list(arr.shape)}; the "
                                         f"YAML says {list(shape)}")
    used.add(aname)
    return arr


def _param(ck: Checker, value: Any, path: str) -> Any:
    """A ``params`` value: an integer, a string, a boolean or a (nested) list of integers."""
    if isinstance(value, bool) or isinstance(value, str):
        return value
    if isinstance(value, int):
        return ck.integer(value, path, -(1 << 31), (1 << 31) - 1)
    if isinstance(value, list):
        return tuple(_param(ck, v, f"{path}[{i}]") for i, v in enumerate(value))
    raise ck.error(path, f"expected an integer, a string, a boolean or a list of integers; "
                         f"got {value!r}")


def _qlayer(ck: Checker, value: Any, path: str, arrays: Mapping[str, np.ndarray],
            used: set[str]) -> QLayer:
    if not isinstance(value, Mapping) or "op" not in value:
        raise ck.error(path, "expected a mapping with an 'op'")
    op = ck.string(value["op"], f"{path}.op", ARTIFACT_OPS)
    required = ["name", "op", "input_shape", "output_shape", "input", "output", "act_min",
                "act_max"]
    if op in WEIGHT_OPS:
        required += ["kernel"] if op != "fully_connected" else []
        required += ["stride", "padding"] if op != "fully_connected" else []
        required += ["activation", "weights", "tensors", "macs"]
    elif op in POOL_OPS:
        required += ["pool", "stride", "padding"]
    m = ck.mapping(value, path, LAYER_KEYS, required)
    name = ck.string(m["name"], f"{path}.name")
    if not NAME_RE.match(name):
        raise ck.error(f"{path}.name", f"{name!r} is not an identifier")
    kw: dict[str, Any] = {"name": name, "op": op}
    kw["input_shape"] = ck.int_list(m["input_shape"], f"{path}.input_shape", SHAPE_RANKS, 1)
    kw["output_shape"] = ck.int_list(m["output_shape"], f"{path}.output_shape", SHAPE_RANKS, 1)
    if "inputs" in m:
        names = ck.sequence(m["inputs"], f"{path}.inputs")
        kw["inputs"] = tuple(ck.string(v, f"{path}.inputs[{i}]") for i, v in enumerate(names))
    if "dilation" in m:
        kw["dilation"] = ck.int_list(m["dilation"], f"{path}.dilation", 2, 1)
    if "rounding" in m:
        kw["rounding"] = ck.string(m["rounding"], f"{path}.rounding", ROUNDINGS)
    if "params" in m:
        pm = m["params"]
        if not isinstance(pm, Mapping):
            raise ck.error(f"{path}.params", f"expected a mapping; got {pm!r}")
        kw["params"] = {str(k): _param(ck, v, f"{path}.params.{k}") for k, v in pm.items()}
    if op in GRAPH_OPS and "tensors" in m:
        tm = m["tensors"]
        if not isinstance(tm, Mapping):
            raise ck.error(f"{path}.tensors", f"expected a mapping; got {tm!r}")
        consts = {}
        for k in tm:
            consts[str(k)] = _npz_array(ck, tm[k], f"{path}.tensors.{k}", arrays, used, None,
                                        tuple(range(0, 5)))
        kw["consts"] = consts
    kw["input"] = _tensor_quant(ck, m["input"], f"{path}.input", full=False)
    kw["output"] = _tensor_quant(ck, m["output"], f"{path}.output")
    kw["act_min"] = ck.integer(m["act_min"], f"{path}.act_min", -128, 127)
    kw["act_max"] = ck.integer(m["act_max"], f"{path}.act_max", kw["act_min"], 127)
    for key in ("kernel", "pool"):
        if key in m:
            kw["kernel"] = ck.int_list(m[key], f"{path}.{key}", 2, 1)
    if "stride" in m:
        kw["stride"] = ck.int_list(m["stride"], f"{path}.stride", 2, 1)
    if "padding" in m:
        pads = m["padding"]
        if not isinstance(pads, list) or len(pads) != 2:
            raise ck.error(f"{path}.padding", f"expected [[top, bottom], [left, right]]; "
                                              f"got {pads!r}")
        kw["padding"] = (ck.int_list(pads[0], f"{path}.padding[0]", 2, 0),
                         ck.int_list(pads[1], f"{path}.padding[1]", 2, 0))
    if op in WEIGHT_OPS:
        kw["activation"] = ck.string(m["activation"], f"{path}.activation", ACTIVATIONS)
        if op == "depthwise_conv2d":
            kw["depth_multiplier"] = ck.integer(m.get("depth_multiplier"),
                                                f"{path}.depth_multiplier", 1)
        wm = ck.mapping(m["weights"], f"{path}.weights",
                        ("bits", "granularity", "symmetric", "zero_point"),
                        ("bits", "granularity"))
        kw["weight_bits"] = ck.integer(wm["bits"], f"{path}.weights.bits", 2, 8)
        kw["weight_granularity"] = ck.string(wm["granularity"], f"{path}.weights.granularity",
                                             ("per_tensor", "per_channel"))
        kw["macs"] = ck.integer(m["macs"], f"{path}.macs", 0)
        tm = ck.mapping(m["tensors"], f"{path}.tensors", tuple(_ARRAYS), tuple(_ARRAYS))
        for k, attr in _ARRAYS.items():
            kw[attr] = _npz_array(ck, tm[k], f"{path}.tensors.{k}", arrays, used,
                                  np.dtype(_ARRAY_DTYPES[k]), tuple(range(1, 5)))
    q = QLayer(**kw)
    _check_layer(ck, q, path)
    return q


def _check_layer(ck: Checker, q: QLayer, path: str) -> None:
    """Cross-field checks: shapes, value ranges, the folded bias."""
    if q.op in SAME_QUANT_OPS:
        if (q.output.scale, q.output.zero_point) != (q.input.scale, q.input.zero_point):
            raise ck.error(f"{path}.output", f"{q.op} keeps its input's quantization; got "
                                             f"output ({q.output.scale}, "
                                             f"{q.output.zero_point}) vs input "
                                             f"({q.input.scale}, {q.input.zero_point})")
    if q.op == "flatten" and int(np.prod(q.input_shape)) != q.output_shape[0]:
        raise ck.error(f"{path}.output_shape", f"flatten of {list(q.input_shape)} gives "
                                               f"[{int(np.prod(q.input_shape))}]")
    if not q.has_weights:
        return
    w = q.weight
    assert w is not None and q.bias is not None
    half = (1 << (int(q.weight_bits) - 1)) - 1  # type: ignore[arg-type]
    if w.size and int(np.abs(w.astype(np.int16)).max()) > half:
        raise ck.error(f"{path}.tensors.weight", f"values reach "
                                                 f"{int(np.abs(w.astype(np.int16)).max())} "
                                                 f"but {q.weight_bits}-bit symmetric weights "
                                                 f"lie in [-{half}, {half}]")
    c = q.output_shape[-1]
    k = tuple(q.kernel or ())
    n_in = int(np.prod(q.input_shape))
    fc_k = q.input_shape[-1] if len(q.output_shape) > 1 else n_in
    expect = {"conv2d": (c, *k, q.input_shape[-1]), "depthwise_conv2d": (1, *k, c),
              "fully_connected": (c, fc_k)}[q.op]
    if tuple(w.shape) != expect:
        raise ck.error(f"{path}.tensors.weight", f"shape {list(w.shape)} does not fit input "
                                                 f"{list(q.input_shape)} -> output "
                                                 f"{list(q.output_shape)}; expected "
                                                 f"{list(expect)}")
    for k in ("bias", "bias_folded", "m0", "shift", "weight_scale"):
        if getattr(q, k).shape != (c,):
            raise ck.error(f"{path}.tensors.{k}", f"shape {list(getattr(q, k).shape)}; "
                                                  f"expected [{c}]")
    try:
        q.requant()
    except ValueError as exc:
        raise ck.error(path, str(exc)) from None
    folded = fold_input_zero_point(q.bias, q.w2d, q.input.zero_point)
    if not np.array_equal(folded, q.bias_folded):
        bad = int(np.flatnonzero(folded != q.bias_folded)[0])
        raise ck.error(f"{path}.tensors.bias_folded", f"channel {bad}: {int(q.bias_folded[bad])}"
                                                      f" != fold_input_zero_point(bias) = "
                                                      f"{int(folded[bad])}")
    if not np.all(np.isfinite(q.weight_scale)) or np.any(q.weight_scale <= 0):
        raise ck.error(f"{path}.tensors.weight_scale", "must be finite and > 0")


def parse_artifact(config: Any, arrays: Mapping[str, np.ndarray],
                   source: str = "<artifact>") -> QuantizedNetwork:
    """Validate an artifact document with its arrays.

    Raises:
        ValueError naming the source and key path: wrong format / version, unknown or
        missing keys, dtype / shape mismatches, out-of-range values, layers that do not
        chain (shapes or quantization), unused arrays.
    """
    ck = Checker(source)
    top = ck.mapping(config, "", TOP_KEYS, TOP_KEYS)
    if top["format"] != FORMAT:
        raise ck.error("format", f"{top['format']!r} is not {FORMAT!r}")
    if top["version"] not in VERSIONS:
        raise ck.error("version", f"{top['version']!r}: this pymodel reads versions "
                                  f"{', '.join(map(str, VERSIONS))}")
    name = ck.string(top["name"], "name")
    if not isinstance(top["meta"], Mapping):
        raise ck.error("meta", f"expected a mapping; got {top['meta']!r}")
    inp = ck.mapping(top["input"], "input", TENSOR_KEYS + ("shape", "dtype"),
                     ("shape", "dtype", "scale", "zero_point", "bits", "symmetric", "range"))
    in_shape = ck.int_list(inp["shape"], "input.shape", (1, 3), 1)
    ck.string(inp["dtype"], "input.dtype", ("int8",))
    in_q = _tensor_quant(ck, {k: v for k, v in inp.items() if k not in ("shape", "dtype")},
                         "input")
    version = top["version"]
    used: set[str] = set()
    layers: list[QLayer] = []
    produced: dict[str, tuple[tuple[int, ...], TensorQuant]] = {INPUT: (in_shape, in_q)}
    prev = INPUT
    for i, item in enumerate(ck.sequence(top["layers"], "layers")):
        path = f"layers[{i}]"
        q = _qlayer(ck, item, path, arrays, used)
        if version == 1 and (q.op not in V1_OPS or q.inputs or q.dilation or q.params
                             or q.rounding != "double"):
            raise ck.error(path, f"op {q.op!r} / inputs / dilation / rounding / params need "
                                 "artifact version 2")
        if q.name in produced:
            raise ck.error(f"{path}.name", f"{q.name!r} names a tensor twice (layer names "
                                           f"are unique and {INPUT!r} is the network input)")
        inputs = q.inputs or (prev,)
        for j, src in enumerate(inputs):
            if src not in produced:
                raise ck.error(f"{path}.inputs[{j}]", f"{src!r} is not the network input or "
                                                      "an earlier layer")
        shapes = tuple(produced[s][0] for s in inputs)
        quants = tuple(produced[s][1] for s in inputs)
        if q.input_shape != shapes[0]:
            raise ck.error(f"{path}.input_shape", f"{list(q.input_shape)} but {inputs[0]!r} "
                                                  f"is {list(shapes[0])}")
        if (q.input.scale, q.input.zero_point) != (quants[0].scale, quants[0].zero_point):
            raise ck.error(f"{path}.input", f"(scale {q.input.scale}, zero_point "
                                            f"{q.input.zero_point}) differs from "
                                            f"{inputs[0]!r}'s (scale {quants[0].scale}, "
                                            f"zero_point {quants[0].zero_point})")
        q = dataclasses.replace(q, input=quants[0], inputs=tuple(inputs), input_shapes=shapes,
                                input_quants=quants)       # the full record of each tensor
        if q.op in SAME_QUANT_OPS:
            q = dataclasses.replace(q, output=quants[0])
        layers.append(q)
        produced[q.name] = (q.output_shape, q.output)
        prev = q.name
    names = [q.name for q in layers]
    if len(set(names)) != len(names):
        raise ck.error("layers", f"layer names must be unique; got {names}")
    unused = sorted(set(arrays) - used)
    if unused:
        raise ck.error("arrays", f"the .npz holds arrays no layer names: {', '.join(unused)}")
    am = ck.mapping(top["arrays"], "arrays", ("file", "sha256"), ("file", "sha256"))
    digest = atomicio.arrays_digest(arrays)
    if ck.string(am["sha256"], "arrays.sha256") != digest:
        raise ck.error("arrays.sha256", f"the arrays' content hash is {digest}, not the "
                                        f"recorded {am['sha256']}: the .npz does not belong "
                                        "to this YAML (interrupted or mixed save?)")
    return QuantizedNetwork(name=name, input_shape=in_shape, input=in_q, layers=tuple(layers),
                            meta=dict(top["meta"]), path=source)


def load_artifact(path: str | Path) -> QuantizedNetwork:
    """Load and validate ``<stem>.yaml`` and the ``.npz`` it names.

    Returns:
        :class:`QuantizedNetwork` with typed :class:`QLayer` entries.
    """
    p = Path(path)
    if p.suffix not in (".yaml", ".yml"):
        p = p.with_name(p.name + ".yaml")
    config = load_yaml(p)
    ck = Checker(str(p))
    top = ck.mapping(config, "", TOP_KEYS, TOP_KEYS)
    am = ck.mapping(top["arrays"], "arrays", ("file", "sha256"), ("file", "sha256"))
    npz = p.parent / ck.string(am["file"], "arrays.file")
    try:
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise ck.error("arrays.file", f"{npz} not found") from None
    except NPZ_READ_ERRORS as exc:
        raise ck.error("arrays.file", f"{npz} is not a readable .npz ({exc})") from None
    return dataclasses.replace(parse_artifact(config, arrays, source=str(p)), path=str(p))

