"""Float network descriptions: a YAML file (layers, shapes, quantization scheme) plus an
``.npz`` of float weights.

Schema (``docs/calibration.md`` has the full reference)::

    name: digits_cnn
    weights: digits_cnn.npz          # relative to the YAML file
    dataset: digits                  # optional: built-in dataset (pymodel.datasets)
    input:
      shape: [8, 8, 1]               # [H, W, C] (NHWC, batch omitted) or [features]
      quant: {calibrator: minmax}    # optional: the input tensor's activation scheme
    quant:                           # optional defaults for every layer
      weights:     {bits: 8, granularity: per_channel, symmetric: true}
      activations: {bits: 8, symmetric: false, calibrator: entropy}
    ptq:                             # optional accuracy preservation (docs/qat.md)
      cross_layer_equalization: true # or {iterations: 20, tolerance: 1.0e-6}
      bias_correction: true          # default of every weight layer
    layers:
      - {name: conv1, op: conv2d, filters: 8, kernel: 3, stride: 1, padding: same,
         activation: relu, quant: {weights: {bits: 4}, bias_correction: false}}
      - {name: pool1, op: max_pool2d, pool: 2}
      - {name: flat, op: flatten}
      - {name: fc1, op: fully_connected, units: 10}

Graphs (DAGs): a layer reads the previous layer's output unless it names its
``inputs`` (``input`` is the network input, any other name an earlier layer); ``add``
(element-wise sum of two equal-shaped tensors, optional fused ``activation``) and ``concat``
(along the channel / feature axis) merge branches; the last layer is the output::

      - {name: proj, op: conv2d, filters: 8, kernel: 1}
      - {name: res, op: add, inputs: [proj, conv1], activation: none}

A chain needs no ``inputs`` keys, so every chain YAML reads as before.  Layers are listed
in a topological order (each reads only the input or earlier layers); a reference to a
later layer, an unknown name, a cycle, a branch whose output nobody reads and shapes
that do not fit are one-line errors.

Tensors in the ``.npz``: ``<layer>.weight`` (TFLite layouts: conv ``[out, kh, kw, in]``,
depthwise ``[1, kh, kw, in * multiplier]``, fully connected ``[out, in]``) and
``<layer>.bias`` ``[out]``, float.  Flatten is NHWC order (``C`` fastest), as TFLite's
reshape.  Every error names the file and the key path.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from pymodel.calibration.calibrators import CalibratorSpec
from pymodel.arithmetic.gemm import output_hw, resolve_padding
from pymodel.ops.layers import (ACTIVATIONS, apply_activation, avg_pool2d_float, conv2d_float, depthwise_conv2d_float,
                     fully_connected_float, max_pool2d_float)
from pymodel.schema import Checker, load_yaml
from pymodel.validate import NPZ_READ_ERRORS

WEIGHT_OPS = ("conv2d", "depthwise_conv2d", "fully_connected")
POOL_OPS = ("max_pool2d", "avg_pool2d")
OPS = WEIGHT_OPS + POOL_OPS + ("flatten",)
#: Ops that merge branches of a graph network; each has its own quantized output tensor.
GRAPH_NODE_OPS = ("add", "concat")
NETWORK_OPS = OPS + GRAPH_NODE_OPS
#: The network input's tensor name (a layer's ``inputs`` may name it).
INPUT_TENSOR = "input"
GRANULARITIES = ("per_tensor", "per_channel")
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_BITS = 8  # weights and activations are held in int8 storage

Pads = tuple[tuple[int, int], tuple[int, int]]


@dataclass(frozen=True)
class WeightScheme:
    """Quantization of a layer's weights.

    Attributes:
        bits: 2..8 (INT4 = 4: values in [-7, 7], held in int8).
        granularity: ``per_channel`` (one scale per output channel) or ``per_tensor``.
        symmetric: always true: the qmac datapath has weight zero point 0.
    """

    bits: int = 8
    granularity: str = "per_channel"
    symmetric: bool = True

    @property
    def per_channel(self) -> bool:
        return self.granularity == "per_channel"


@dataclass(frozen=True)
class ActivationScheme:
    """Quantization of an activation tensor (per tensor).

    Attributes:
        bits: 2..8 (held in int8).
        symmetric: narrow symmetric range, zero point 0 (else asymmetric, full range).
        calibrator: how the range is chosen.
    """

    bits: int = 8
    symmetric: bool = False
    calibrator: CalibratorSpec = field(default_factory=lambda: CalibratorSpec("minmax"))


@dataclass(frozen=True)
class EqualizationSpec:
    """Cross-layer equalization (``ptq.cross_layer_equalization``, :mod:`pymodel.quantization.cle`).

    Attributes:
        enabled: rescale consecutive weight-layer pairs before calibration.
        iterations: at most this many sweeps over the pairs (1..1000).
        tolerance: stop when a sweep's largest ``|ln s|`` is below this (> 0).
    """

    enabled: bool = False
    iterations: int = 20
    tolerance: float = 1e-6


@dataclass(frozen=True)
class LayerSpec:
    """One layer of a float network, with its shapes resolved.

    Attributes:
        name: identifier, unique in the network.
        op: one of :data:`OPS`.
        input_shape, output_shape: per-image shapes, ``(H, W, C)`` or ``(features,)``.
        activation: fused activation (``none`` / ``relu`` / ``relu6``); ``none`` for
            pools and flatten.
        kernel: ``(kh, kw)`` of a conv / the pool window, else ``None``.
        stride: ``(sh, sw)`` of a conv or pool, else ``None``.
        padding: explicit ``((top, bottom), (left, right))`` of a conv or pool.
        padding_config: the padding as written in the YAML (``"same"``, ...).
        out_channels: output channels / units of a weight layer.
        depth_multiplier: depthwise only.
        weights: weight scheme of a weight layer, else ``None``.
        activations: scheme of the layer's output tensor (weight layers), else ``None``
            (pools and flatten keep their input's quantization).
        bias_correction: PTQ corrects this weight layer's bias for the mean output shift
            its weight quantization causes (:mod:`pymodel.quantization.bias_correction`).
        inputs: names of the tensors the layer reads (``"input"`` or earlier layers), in
            order; ``()`` means the previous layer's output (a chain).
        input_shapes: the shape of each of ``inputs`` (``input_shape`` is the first's).
    """

    name: str
    op: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    activation: str = "none"
    kernel: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    padding: Pads | None = None
    padding_config: Any = None
    out_channels: int | None = None
    depth_multiplier: int | None = None
    weights: WeightScheme | None = None
    activations: ActivationScheme | None = None
    bias_correction: bool = False
    inputs: tuple[str, ...] = ()
    input_shapes: tuple[tuple[int, ...], ...] = ()

    @property
    def has_weights(self) -> bool:
        return self.op in WEIGHT_OPS

    @property
    def has_output_quant(self) -> bool:
        """The layer's output is a tensor with its own quantization (weight layers, add,
        concat); pools and flatten keep their input's."""
        return self.op in WEIGHT_OPS or self.op in GRAPH_NODE_OPS

    @property
    def weight_shape(self) -> tuple[int, ...] | None:
        """Expected float weight shape (TFLite layout), ``None`` for weightless ops."""
        if self.op == "conv2d":
            assert self.kernel and self.out_channels
            return (self.out_channels, *self.kernel, self.input_shape[2])
        if self.op == "depthwise_conv2d":
            assert self.kernel and self.out_channels
            return (1, *self.kernel, self.out_channels)
        if self.op == "fully_connected":
            assert self.out_channels
            return (self.out_channels, self.input_shape[0])
        return None

    @property
    def channel_axis(self) -> int:
        """Output-channel axis of the weight tensor (per-channel quantization)."""
        return 3 if self.op == "depthwise_conv2d" else 0

    @property
    def macs(self) -> int:
        """Multiply-accumulates per image (0 for weightless ops)."""
        shape = self.weight_shape
        if shape is None:
            return 0
        taps = int(np.prod(shape)) // self.out_channels  # type: ignore[operator]
        pixels = int(np.prod(self.output_shape[:-1])) if len(self.output_shape) == 3 else 1
        return pixels * self.out_channels * taps  # type: ignore[operator]


@dataclass(frozen=True)
class Network:
    """A float network: description plus float64 parameters.

    Attributes:
        name: network name.
        input_shape: per-image input shape.
        input_scheme: quantization of the network input tensor.
        layers: the layers in order.
        params: float64 arrays ``<layer>.weight`` / ``<layer>.bias``.
        dataset: name of a built-in dataset, or ``None``.
        source: the YAML path (or ``"<dict>"``), for messages and artifacts.
        weights_path: the ``.npz`` path, if loaded from a file.
        equalization: cross-layer equalization requested for PTQ.
        transforms: float transforms already applied to ``params`` (e.g.
            ``"cross_layer_equalization"`` by :func:`pymodel.quantization.cle.equalize`).
    """

    name: str
    input_shape: tuple[int, ...]
    input_scheme: ActivationScheme
    layers: tuple[LayerSpec, ...]
    params: Mapping[str, np.ndarray]
    dataset: str | None = None
    source: str = "<dict>"
    weights_path: str | None = None
    equalization: EqualizationSpec = field(default_factory=EqualizationSpec)
    transforms: tuple[str, ...] = ()

    def layer(self, name: str) -> LayerSpec:
        for spec in self.layers:
            if spec.name == name:
                return spec
        raise ValueError(f"layer: {name!r} is not a layer of {self.name!r}; layers: "
                         f"{', '.join(s.name for s in self.layers)}")

    @property
    def weight_layers(self) -> tuple[LayerSpec, ...]:
        return tuple(s for s in self.layers if s.has_weights)

    @property
    def quantized_layers(self) -> tuple[LayerSpec, ...]:
        """Layers whose output tensor gets its own quantization (weight layers, add, concat)."""
        return tuple(s for s in self.layers if s.has_output_quant)

    def inputs_of(self, index: int) -> tuple[str, ...]:
        """The tensor names layer ``index`` reads (``"input"`` or layer names)."""
        spec = self.layers[index]
        if spec.inputs:
            return tuple(spec.inputs)
        return (INPUT_TENSOR if index == 0 else self.layers[index - 1].name,)

    @property
    def is_chain(self) -> bool:
        """Every layer reads exactly the previous layer's output."""
        return all(self.inputs_of(i) == ((INPUT_TENSOR,) if i == 0 else
                                        (self.layers[i - 1].name,))
                   for i in range(len(self.layers)))

    def readers(self) -> dict[str, list[str]]:
        """``{tensor: [layers reading it]}`` for the input and every layer output."""
        out: dict[str, list[str]] = {INPUT_TENSOR: [], **{s.name: [] for s in self.layers}}
        for i, spec in enumerate(self.layers):
            for src in self.inputs_of(i):
                out[src].append(spec.name)
        return out

    def walk(self, x: np.ndarray) -> Iterator[tuple[LayerSpec, list[np.ndarray], np.ndarray]]:
        """Float inference over the graph, layer by layer: yields ``(spec, inputs,
        output)`` (float64 outputs; a tensor is dropped after its last reader).  A chain
        computes exactly what it always did: each layer on the previous output."""
        last: dict[str, int] = {}
        for i in range(len(self.layers)):
            for src in self.inputs_of(i):
                last[src] = i
        tensors: dict[str, np.ndarray] = {INPUT_TENSOR: x}
        for i, spec in enumerate(self.layers):
            xs = [tensors[src] for src in self.inputs_of(i)]
            y = float_node(spec, self.params, xs)
            for src in self.inputs_of(i):
                if last.get(src) == i:
                    tensors.pop(src, None)
            tensors[spec.name] = y
            yield spec, xs, y

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Float inference: ``x`` float ``[N, *input_shape]`` -> float64 output (the last
        layer's)."""
        for _, _, x in self.walk(x):
            pass
        return x

    def forward_all(self, x: np.ndarray) -> list[np.ndarray]:
        """Float inference returning every layer's output (float64), in layer order."""
        return [y for _, _, y in self.walk(x)]

    def check_input(self, x: Any, name: str = "x") -> np.ndarray:
        """``x`` as float64 ``[N, *input_shape]`` (ValueError naming the shapes)."""
        arr = np.asarray(x)
        if arr.ndim != len(self.input_shape) + 1 or tuple(arr.shape[1:]) != self.input_shape:
            raise ValueError(f"{name}: expected a batch of shape [N, "
                             f"{', '.join(map(str, self.input_shape))}] for network "
                             f"{self.name!r}; got {arr.shape}")
        return arr

    def with_overrides(self, calibrator: CalibratorSpec | None = None,
                       weight_bits: int | None = None, granularity: str | None = None,
                       layer_weight_bits: Mapping[str, int] | None = None,
                       input_calibrator: CalibratorSpec | None = None,
                       activation_bits: int | None = None,
                       bias_correction: bool | None = None,
                       equalization: bool | EqualizationSpec | None = None) -> "Network":
        """A copy with schemes replaced in every weight layer (``calibrator`` applies to
        every layer output, ``input_calibrator`` to the input tensor), then per layer
        ``layer_weight_bits``.

        ``activation_bits`` sets the bits of every layer output (the network input keeps
        its scheme); ``bias_correction`` switches bias correction on / off in every
        weight layer; ``equalization`` switches cross-layer equalization on / off (a
        bool keeps the iteration settings) or replaces its settings.
        """
        if granularity is not None and granularity not in GRANULARITIES:
            raise ValueError(f"granularity: {granularity!r} is not one of "
                             f"{', '.join(GRANULARITIES)}")
        for bits in [weight_bits, *(layer_weight_bits or {}).values()]:
            if bits is not None and (isinstance(bits, bool) or not isinstance(bits, int)
                                     or not 2 <= bits <= MAX_BITS):
                raise ValueError(f"weight bits: {bits!r} is outside the allowed range "
                                 f"[2, {MAX_BITS}]")
        if activation_bits is not None and (isinstance(activation_bits, bool)
                                            or not isinstance(activation_bits, int)
                                            or not 2 <= activation_bits <= MAX_BITS):
            raise ValueError(f"activation_bits: {activation_bits!r} is outside the allowed "
                             f"range [2, {MAX_BITS}]")
        if bias_correction is not None and not isinstance(bias_correction, bool):
            raise ValueError(f"bias_correction: expected true or false; got "
                             f"{bias_correction!r}")
        eq = self.equalization
        if isinstance(equalization, bool):
            eq = dataclasses.replace(eq, enabled=equalization)
        elif isinstance(equalization, EqualizationSpec):
            eq = equalization
        elif equalization is not None:
            raise ValueError(f"equalization: expected a bool or an EqualizationSpec; got "
                             f"{equalization!r}")
        names = {s.name for s in self.weight_layers}
        for lname in (layer_weight_bits or {}):
            if lname not in names:
                raise ValueError(f"layer_weight_bits: {lname!r} is not a weight layer of "
                                 f"{self.name!r}; weight layers: {', '.join(sorted(names))}")
        layers = []
        for spec in self.layers:
            if spec.has_weights:
                ws, acts = spec.weights, spec.activations
                assert ws is not None and acts is not None
                if weight_bits is not None:
                    ws = dataclasses.replace(ws, bits=weight_bits)
                if granularity is not None:
                    ws = dataclasses.replace(ws, granularity=granularity)
                if layer_weight_bits and spec.name in layer_weight_bits:
                    ws = dataclasses.replace(ws, bits=layer_weight_bits[spec.name])
                if calibrator is not None:
                    acts = dataclasses.replace(acts, calibrator=calibrator)
                if activation_bits is not None:
                    acts = dataclasses.replace(acts, bits=activation_bits)
                bc = spec.bias_correction if bias_correction is None else bias_correction
                spec = dataclasses.replace(spec, weights=ws, activations=acts,
                                           bias_correction=bc)
            elif spec.activations is not None:          # add / concat output tensor
                acts = spec.activations
                if calibrator is not None:
                    acts = dataclasses.replace(acts, calibrator=calibrator)
                if activation_bits is not None:
                    acts = dataclasses.replace(acts, bits=activation_bits)
                spec = dataclasses.replace(spec, activations=acts)
            layers.append(spec)
        inp = self.input_scheme
        if input_calibrator is not None:
            inp = dataclasses.replace(inp, calibrator=input_calibrator)
        return dataclasses.replace(self, layers=tuple(layers), input_scheme=inp,
                                   equalization=eq)

    def with_params(self, params: Mapping[str, np.ndarray], transform: str | None = None
                    ) -> "Network":
        """A copy with other float parameters (same names and shapes), recording
        ``transform`` in :attr:`transforms`."""
        if set(params) != set(self.params):
            raise ValueError(f"params: tensors {sorted(params)} differ from the network's "
                             f"{sorted(self.params)}")
        for k, v in params.items():
            if np.shape(v) != np.shape(self.params[k]):
                raise ValueError(f"params: {k!r} has shape {np.shape(v)}; the network's is "
                                 f"{np.shape(self.params[k])}")
        out = {k: np.array(v, np.float64) for k, v in params.items()}
        tr = self.transforms + ((transform,) if transform else ())
        return dataclasses.replace(self, params=out, transforms=tr)

    def weight_bits_average(self) -> float:
        """Parameter-weighted average bits per weight (biases excluded)."""
        total = bits = 0
        for spec in self.weight_layers:
            n = int(np.prod(spec.weight_shape))  # type: ignore[arg-type]
            total += n
            bits += n * spec.weights.bits  # type: ignore[union-attr]
        return bits / total if total else 0.0


def float_layer(spec: LayerSpec, params: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """One layer of float inference with the ``pymodel.ops.layers`` float references.

    Args:
        spec: the layer.
        params: float weights ``<name>.weight`` / ``<name>.bias``.
        x: float ``[N, *spec.input_shape]``.

    Returns:
        float64 ``[N, *spec.output_shape]``.
    """
    if spec.op == "conv2d":
        return conv2d_float(x, params[f"{spec.name}.weight"], params[f"{spec.name}.bias"],
                            spec.stride, spec.padding, spec.activation)
    if spec.op == "depthwise_conv2d":
        return depthwise_conv2d_float(x, params[f"{spec.name}.weight"],
                                      params[f"{spec.name}.bias"], spec.stride, spec.padding,
                                      spec.activation)
    if spec.op == "fully_connected":
        return fully_connected_float(x, params[f"{spec.name}.weight"],
                                     params[f"{spec.name}.bias"], spec.activation)
    if spec.op == "max_pool2d":
        return max_pool2d_float(x, spec.kernel, spec.stride, spec.padding)
    if spec.op == "avg_pool2d":
        return avg_pool2d_float(x, spec.kernel, spec.stride, spec.padding)
    if spec.op == "flatten":
        return np.asarray(x, np.float64).reshape(x.shape[0], -1)
    raise ValueError(f"op: {spec.op!r} is not one of {', '.join(OPS)}")


def float_node(spec: LayerSpec, params: Mapping[str, np.ndarray],
               xs: list[np.ndarray]) -> np.ndarray:
    """One layer of float inference on its input tensors (in ``spec.inputs`` order).

    ``add``: the float64 element-wise sum (left to right) with the fused activation;
    ``concat``: along the last (channel / feature) axis; every other op is
    :func:`float_layer` on ``xs[0]``.

    Returns:
        float64 ``[N, *spec.output_shape]``.
    """
    if spec.op == "add":
        y = np.asarray(xs[0], np.float64)
        for x in xs[1:]:
            y = y + np.asarray(x, np.float64)
        return apply_activation(y, spec.activation)
    if spec.op == "concat":
        return np.concatenate([np.asarray(x, np.float64) for x in xs], axis=-1)
    return float_layer(spec, params, xs[0])


# ----------------------------------------------------------------------------------------
# Parsing and validation
# ----------------------------------------------------------------------------------------

TOP_KEYS = ("name", "description", "weights", "dataset", "input", "quant", "ptq", "layers")
PTQ_KEYS = ("cross_layer_equalization", "bias_correction")
CLE_KEYS = ("enabled", "iterations", "tolerance")
COMMON_LAYER_KEYS = ("name", "op", "inputs", "output_shape")
OP_KEYS = {
    "conv2d": ("filters", "kernel", "stride", "padding", "activation", "quant"),
    "depthwise_conv2d": ("depth_multiplier", "kernel", "stride", "padding", "activation",
                         "quant"),
    "fully_connected": ("units", "activation", "quant"),
    "max_pool2d": ("pool", "stride", "padding"),
    "avg_pool2d": ("pool", "stride", "padding"),
    "flatten": (),
    "add": ("activation", "quant"),
    "concat": ("quant",),
}
OP_REQUIRED = {"conv2d": ("filters", "kernel"), "depthwise_conv2d": ("kernel",),
               "fully_connected": ("units",), "max_pool2d": ("pool",),
               "avg_pool2d": ("pool",), "flatten": (), "add": ("inputs",),
               "concat": ("inputs",)}


def _weight_scheme(ck: Checker, value: Any, path: str, base: WeightScheme) -> WeightScheme:
    m = ck.mapping(value, path, ("bits", "granularity", "symmetric"))
    bits = ck.integer(m["bits"], f"{path}.bits", 2, MAX_BITS) if "bits" in m else base.bits
    gran = (ck.string(m["granularity"], f"{path}.granularity", GRANULARITIES)
            if "granularity" in m else base.granularity)
    sym = ck.boolean(m["symmetric"], f"{path}.symmetric") if "symmetric" in m else base.symmetric
    if not sym:
        raise ck.error(f"{path}.symmetric", "false is not supported: the qmac datapath has "
                                            "weight zero point 0 (docs/arithmetic.md); use true")
    return WeightScheme(bits, gran, sym)


def _activation_scheme(ck: Checker, value: Any, path: str,
                       base: ActivationScheme) -> ActivationScheme:
    m = ck.mapping(value, path, ("bits", "symmetric", "calibrator", "granularity"))
    if "granularity" in m and m["granularity"] != "per_tensor":
        raise ck.error(f"{path}.granularity", f"{m['granularity']!r} is not supported: "
                                              "activations are quantized per_tensor")
    bits = ck.integer(m["bits"], f"{path}.bits", 2, MAX_BITS) if "bits" in m else base.bits
    sym = ck.boolean(m["symmetric"], f"{path}.symmetric") if "symmetric" in m else base.symmetric
    cal = base.calibrator
    if "calibrator" in m:
        try:
            cal = CalibratorSpec.parse(m["calibrator"], f"{path}.calibrator")
        except ValueError as exc:
            raise ValueError(f"{ck.source}: {exc}") from None
    return ActivationScheme(bits, sym, cal)


def _quant_block(ck: Checker, value: Any, path: str, wbase: WeightScheme,
                 abase: ActivationScheme, bc_base: bool | None = None
                 ) -> tuple[WeightScheme, ActivationScheme, bool | None]:
    """``weights`` / ``activations`` schemes; in a layer's block (``bc_base`` given)
    also its ``bias_correction`` override."""
    keys = ("weights", "activations") + (("bias_correction",) if bc_base is not None else ())
    m = ck.mapping(value, path, keys)
    ws = _weight_scheme(ck, m["weights"], f"{path}.weights", wbase) if "weights" in m else wbase
    acts = (_activation_scheme(ck, m["activations"], f"{path}.activations", abase)
            if "activations" in m else abase)
    bc = bc_base
    if bc_base is not None and "bias_correction" in m:
        bc = ck.boolean(m["bias_correction"], f"{path}.bias_correction")
    return ws, acts, bc


def _ptq_block(ck: Checker, value: Any, path: str) -> tuple[EqualizationSpec, bool]:
    """The top-level ``ptq`` mapping: cross-layer equalization settings and the default
    ``bias_correction`` of every weight layer."""
    m = ck.mapping(value, path, PTQ_KEYS)
    eq = EqualizationSpec()
    if "cross_layer_equalization" in m:
        v, p = m["cross_layer_equalization"], f"{path}.cross_layer_equalization"
        if isinstance(v, bool):
            eq = EqualizationSpec(enabled=v)
        elif isinstance(v, Mapping):
            cm = ck.mapping(v, p, CLE_KEYS)
            eq = EqualizationSpec(
                enabled=ck.boolean(cm["enabled"], f"{p}.enabled") if "enabled" in cm else True,
                iterations=(ck.integer(cm["iterations"], f"{p}.iterations", 1, 1000)
                            if "iterations" in cm else eq.iterations),
                tolerance=(ck.real(cm["tolerance"], f"{p}.tolerance", positive=True)
                           if "tolerance" in cm else eq.tolerance))
        else:
            raise ck.error(p, f"expected true, false or a mapping with keys "
                              f"{', '.join(CLE_KEYS)}; got {v!r}")
    bc = ck.boolean(m["bias_correction"], f"{path}.bias_correction") \
        if "bias_correction" in m else False
    return eq, bc


def _padding(ck: Checker, value: Any, path: str) -> Any:
    if isinstance(value, str):
        return ck.string(value, path, ("valid", "same"))
    if isinstance(value, int) and not isinstance(value, bool):
        return ck.integer(value, path, 0)
    if isinstance(value, list) and len(value) == 2:
        (t, b) = ck.int_list(value[0], f"{path}[0]", 2, 0)
        (left, right) = ck.int_list(value[1], f"{path}[1]", 2, 0)
        return ((t, b), (left, right))
    raise ck.error(path, f"expected 'valid', 'same', an integer or [[top, bottom], "
                         f"[left, right]]; got {value!r}")


def _layer(ck: Checker, value: Any, path: str, in_shape: tuple[int, ...],
           wbase: WeightScheme, abase: ActivationScheme, bc_base: bool = False,
           inputs: tuple[str, ...] = (), in_shapes: tuple[tuple[int, ...], ...] = ()
           ) -> LayerSpec:
    if not isinstance(value, Mapping):
        raise ck.error(path, f"expected a mapping describing a layer; got {value!r}")
    if "op" not in value:
        raise ck.error(f"{path}.op", f"missing (required); one of {', '.join(NETWORK_OPS)}")
    op = ck.string(value["op"], f"{path}.op", NETWORK_OPS)
    m = ck.mapping(value, path, COMMON_LAYER_KEYS + OP_KEYS[op], ("name", "op") + OP_REQUIRED[op])
    name = ck.string(m["name"], f"{path}.name")
    if not NAME_RE.match(name):
        raise ck.error(f"{path}.name", f"{name!r} is not an identifier "
                                       "([A-Za-z_][A-Za-z0-9_]*)")
    kw: dict[str, Any] = {"name": name, "op": op, "input_shape": in_shape,
                          "inputs": inputs, "input_shapes": in_shapes or (in_shape,)}
    where = f"{path} ({op} {name!r})"
    if op == "add" and len(inputs) != 2:
        raise ck.error(f"{path}.inputs", f"add needs 2 input tensors (TFLite's ADD is binary; "
                                         f"chain adds for more); got {list(inputs)}")
    if op == "concat" and len(inputs) < 2:
        raise ck.error(f"{path}.inputs", f"concat needs at least 2 input tensors; got "
                                         f"{list(inputs)}")
    if op not in GRAPH_NODE_OPS and len(inputs) > 1:
        raise ck.error(f"{path}.inputs", f"{op} reads one tensor; got {list(inputs)} (merge "
                                         "branches with an add or concat layer)")
    if op == "add":
        for src, shp in zip(inputs[1:], in_shapes[1:]):
            if shp != in_shape:
                raise ck.error(f"{path}.inputs", f"add needs equal shapes; {inputs[0]!r} is "
                                                 f"{list(in_shape)} but {src!r} is {list(shp)}")
        out_shape: tuple[int, ...] = in_shape
    elif op == "concat":
        for src, shp in zip(inputs[1:], in_shapes[1:]):
            if len(shp) != len(in_shape) or shp[:-1] != in_shape[:-1]:
                raise ck.error(f"{path}.inputs", f"concat joins along the last (channel) "
                                                 f"axis; {inputs[0]!r} is {list(in_shape)} "
                                                 f"but {src!r} is {list(shp)}")
        out_shape = (*in_shape[:-1], sum(s[-1] for s in in_shapes))
    elif op in ("conv2d", "depthwise_conv2d", "max_pool2d", "avg_pool2d"):
        if len(in_shape) != 3:
            raise ck.error(where, f"needs an [H, W, C] input; the previous layer gives "
                                  f"{list(in_shape)}")
        kernel = ck.pair(m["kernel" if "conv" in op else "pool"],
                         f"{path}.{'kernel' if 'conv' in op else 'pool'}")
        stride = ck.pair(m["stride"], f"{path}.stride") if "stride" in m else (
            kernel if op in POOL_OPS else (1, 1))
        pad_cfg = _padding(ck, m["padding"], f"{path}.padding") if "padding" in m else "valid"
        pads = resolve_padding(pad_cfg, in_shape[:2], kernel, stride)
        try:
            oh, ow = output_hw(in_shape[:2], kernel, stride, pads)
        except ValueError as exc:
            raise ck.error(where, str(exc)) from None
        kw.update(kernel=kernel, stride=stride, padding=pads, padding_config=pad_cfg)
        if op == "conv2d":
            cout = ck.integer(m["filters"], f"{path}.filters", 1)
        elif op == "depthwise_conv2d":
            mult = ck.integer(m.get("depth_multiplier", 1), f"{path}.depth_multiplier", 1)
            cout = in_shape[2] * mult
            kw["depth_multiplier"] = mult
        else:
            cout = in_shape[2]
        if op in WEIGHT_OPS:
            kw["out_channels"] = cout
        out_shape = (oh, ow, cout)
    elif op == "fully_connected":
        if len(in_shape) != 1:
            raise ck.error(where, f"needs a flat [features] input; the previous layer gives "
                                  f"{list(in_shape)} (insert a flatten layer)")
        cout = ck.integer(m["units"], f"{path}.units", 1)
        kw["out_channels"] = cout
        out_shape = (cout,)
    else:  # flatten
        out_shape = (int(np.prod(in_shape)),)
    if "activation" in m:
        kw["activation"] = ck.string(m["activation"], f"{path}.activation", ACTIVATIONS)
    if op in WEIGHT_OPS:
        ws, acts, bc = (_quant_block(ck, m["quant"], f"{path}.quant", wbase, abase, bc_base)
                        if "quant" in m else (wbase, abase, bc_base))
        kw.update(weights=ws, activations=acts, bias_correction=bool(bc))
    elif op in GRAPH_NODE_OPS:                    # its output tensor's scheme only
        acts = abase
        if "quant" in m:
            qm = ck.mapping(m["quant"], f"{path}.quant", ("activations",))
            if "activations" in qm:
                acts = _activation_scheme(ck, qm["activations"], f"{path}.quant.activations",
                                          abase)
        kw["activations"] = acts
    if "output_shape" in m:
        declared = ck.int_list(m["output_shape"], f"{path}.output_shape", (1, 3), 1)
        if declared != out_shape:
            raise ck.error(f"{path}.output_shape", f"declared {list(declared)} but the "
                                                   f"layer computes {list(out_shape)} from "
                                                   f"input {list(in_shape)}")
    kw["output_shape"] = out_shape
    return LayerSpec(**kw)


def parse_network(config: Any, params: Mapping[str, Any] | None, source: str = "<dict>",
                  weights_source: str = "weights", check_outputs: bool = True) -> Network:
    """Validate a network description and its float parameters.

    Args:
        config: the parsed YAML document.
        params: ``<layer>.weight`` / ``<layer>.bias`` float arrays; ``None`` for a
            description without weights yet (training from scratch): nothing checked,
            ``Network.params`` empty.
        source: name used in error messages (the YAML path).
        weights_source: name of the weights file in error messages.
        check_outputs: refuse a layer whose output no later layer reads (other than the
            last); ``False`` for a network still being built (an importer's partial
            graph).

    Returns:
        :class:`Network`.

    Raises:
        ValueError naming the file and key path: unknown keys (with a suggestion),
        wrong types, shape mismatches, missing or unused tensors, non-finite weights.
    """
    ck = Checker(source)
    top = ck.mapping(config, "", TOP_KEYS, ("name", "input", "layers"))
    name = ck.string(top["name"], "name")
    if "description" in top:
        ck.string(top["description"], "description")
    dataset = ck.string(top["dataset"], "dataset") if "dataset" in top else None
    if "weights" in top:
        ck.string(top["weights"], "weights")
    wbase, abase = WeightScheme(), ActivationScheme()
    if "quant" in top:
        wbase, abase, _ = _quant_block(ck, top["quant"], "quant", wbase, abase)
    eq, bc_base = _ptq_block(ck, top["ptq"], "ptq") if "ptq" in top else (EqualizationSpec(),
                                                                         False)
    inp = ck.mapping(top["input"], "input", ("shape", "quant"), ("shape",))
    in_shape = ck.int_list(inp["shape"], "input.shape", (1, 3), 1)
    in_scheme = abase
    if "quant" in inp:
        qm = ck.mapping(inp["quant"], "input.quant", ("bits", "symmetric", "calibrator",
                                                      "granularity"))
        in_scheme = _activation_scheme(ck, qm, "input.quant", abase)
    layers: list[LayerSpec] = []
    items = ck.sequence(top["layers"], "layers")
    produced: dict[str, tuple[int, ...]] = {INPUT_TENSOR: in_shape}
    prev = INPUT_TENSOR
    for i, item in enumerate(items):
        inputs = _inputs(ck, items, i, prev, produced)
        shapes = tuple(produced[s] for s in inputs)
        spec = _layer(ck, item, f"layers[{i}]", shapes[0], wbase, abase, bc_base,
                      inputs, shapes)
        if spec.name in produced:
            raise ck.error(f"layers[{i}].name", f"{spec.name!r} is used by an earlier layer "
                                                f"or is the network input ({INPUT_TENSOR!r}); "
                                                "layer names must be unique")
        produced[spec.name] = spec.output_shape
        layers.append(spec)
        prev = spec.name
    read = {src for spec in layers for src in spec.inputs}
    for i, spec in enumerate(layers[:-1]):
        if check_outputs and spec.name not in read:
            raise ck.error(f"layers[{i}]", f"the output of {spec.op} {spec.name!r} is read by no "
                                           "layer and is not the network output (the last "
                                           "layer); name it in a later layer's inputs")
    arrays = {} if params is None else _check_params(ck, layers, params, weights_source)
    return Network(name=name, input_shape=in_shape, input_scheme=in_scheme,
                   layers=tuple(layers), params=arrays, dataset=dataset, source=source,
                   equalization=eq)


def _inputs(ck: Checker, items: list[Any], i: int, prev: str,
            produced: Mapping[str, tuple[int, ...]]) -> tuple[str, ...]:
    """The tensor names ``layers[i]`` reads: its ``inputs`` (checked: the network input or
    earlier layers; a later layer is a cycle or an ordering error, said which), else the
    previous layer's output."""
    item = items[i]
    if not isinstance(item, Mapping) or "inputs" not in item:
        return (prev,)
    path = f"layers[{i}].inputs"
    raw = item["inputs"]
    if isinstance(raw, str):
        raw = [raw]
    names = [ck.string(v, f"{path}[{j}]") for j, v in enumerate(ck.sequence(raw, path))]
    if not names:
        raise ck.error(path, "empty; name the tensors the layer reads (omit the key to read "
                             "the previous layer)")
    later = {it.get("name"): j for j, it in enumerate(items)
             if isinstance(it, Mapping) and j >= i}
    for j, src in enumerate(names):
        if src in produced:
            continue
        if src in later:
            cyc = _cycle(items, later[src], item.get("name"))
            if cyc:
                raise ck.error(f"{path}[{j}]", f"{src!r} makes a cycle ({' reads '.join(cyc)}); "
                                               "a network is a DAG")
            raise ck.error(f"{path}[{j}]", f"{src!r} is layers[{later[src]}], listed later; "
                                           "list the layers so that each reads only the input "
                                           "or earlier layers")
        raise ck.error(f"{path}[{j}]", f"{src!r} is not the network input ({INPUT_TENSOR!r}) "
                                       f"or an earlier layer; earlier: "
                                       f"{', '.join(list(produced)[-8:])}")
    return tuple(names)


def _cycle(items: list[Any], start: int, target: Any) -> list[str]:
    """A path ``target -> ... -> target`` through the layers' ``inputs`` (default: the
    previous layer), starting at ``items[start]`` which ``target`` reads; ``[]`` if none."""
    index = {it.get("name"): j for j, it in enumerate(items) if isinstance(it, Mapping)}

    def reads(j: int) -> list[Any]:
        it = items[j]
        raw = it.get("inputs") if isinstance(it, Mapping) else None
        if raw is None:
            return [items[j - 1].get("name")] if j > 0 and isinstance(items[j - 1], Mapping) \
                else []
        return [raw] if isinstance(raw, str) else list(raw) if isinstance(raw, list) else []

    stack, seen = [(start, [target, items[start].get("name")])], set()
    while stack:
        j, trail = stack.pop()
        if j in seen:
            continue
        seen.add(j)
        for src in reads(j):
            if src == target:
                return [str(t) for t in trail] + [str(target)]
            if src in index:
                stack.append((index[src], trail + [src]))
    return []


def _check_params(ck: Checker, layers: list[LayerSpec], params: Mapping[str, Any],
                  weights_source: str) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for i, spec in enumerate(layers):
        if not spec.has_weights:
            continue
        expect = {"weight": spec.weight_shape, "bias": (spec.out_channels,)}
        for kind, shape in expect.items():
            key = f"{spec.name}.{kind}"
            where = f"layers[{i}] ({spec.op} {spec.name!r})"
            if key not in params:
                raise ck.error(where, f"{weights_source} has no tensor {key!r} (expected "
                                      f"float {list(shape)}); it holds: "
                                      f"{', '.join(sorted(params)) or 'nothing'}")
            arr = np.asarray(params[key])
            if not np.issubdtype(arr.dtype, np.floating):
                # integers here are almost always already-quantized weights given by
                # mistake: refuse them rather than treat int8 codes as float values
                raise ck.error(where, f"tensor {key!r} in {weights_source} has dtype "
                                      f"{arr.dtype}; float weights must have a floating "
                                      "dtype (float16 / float32 / float64)")
            if tuple(arr.shape) != tuple(shape):
                raise ck.error(where, f"tensor {key!r} in {weights_source} has shape "
                                      f"{list(arr.shape)}; the layer needs {list(shape)}")
            arr = arr.astype(np.float64)
            if not np.all(np.isfinite(arr)):
                raise ck.error(where, f"tensor {key!r} in {weights_source} holds NaN or Inf")
            out[key] = arr
    unused = sorted(set(params) - set(out))
    if unused:
        raise ck.error("layers", f"{weights_source} holds tensors no layer uses: "
                                 f"{', '.join(unused)} (misspelled layer name?)")
    return out


def load_network(path: str | Path, weights: str | Path | None = None,
                 with_weights: bool = True) -> Network:
    """Load and validate a network YAML and its weights ``.npz``.

    Args:
        path: the YAML file.
        weights: the ``.npz`` (default: the YAML's ``weights`` key, relative to the YAML).
        with_weights: ``False`` to load the description only (``params`` empty), e.g.
            before training.
    """
    p = Path(path)
    config = load_yaml(p)
    ck = Checker(str(p))
    if not with_weights:
        return parse_network(config, None, source=str(p))
    if weights is None:
        top = ck.mapping(config, "", TOP_KEYS, ("name", "input", "layers"))
        if "weights" not in top:
            raise ck.error("weights", "missing: name the weights .npz (relative to the "
                                      "YAML) or pass it explicitly")
        wpath = p.parent / ck.string(top["weights"], "weights")
    else:
        wpath = Path(weights)
    params = load_npz(wpath)
    net = parse_network(config, params, source=str(p), weights_source=str(wpath))
    return dataclasses.replace(net, weights_path=str(wpath))


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` (no pickles); ValueError naming the file otherwise."""
    p = Path(path)
    try:
        with np.load(p, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise ValueError(f"{p}: weights file not found") from None
    except NPZ_READ_ERRORS as exc:
        raise ValueError(f"{p}: not a readable .npz ({exc})") from None
