"""Quantization-aware training (QAT) and its conversion to the PTQ artifact.

:class:`QATNetwork` wraps the float training modules of :mod:`pymodel.training.nn` with fake
quantization (:mod:`pymodel.quantization.fakequant`):

* the network input: ``dequantize(quantize(x))`` with the input tensor's parameters;
* every weight layer: fake-quantized weights (weight hook; per channel or per tensor,
  symmetric, min / max of the current weights -- the PTQ rule -- or LSQ scales), the
  bias at its int32 value (bias hook), and the output quantized with the parameters of
  its :class:`~pymodel.quantization.fakequant.ActivationQuantizer` (range tracked by EMA, frozen for
  the final epochs);
* pools and flatten keep their input's quantization, as in the artifact;
* graph networks (``add`` / ``concat`` / a layer's ``inputs``): the output of an ``add``
  and of a ``concat`` is quantized like a weight layer's (its own
  :class:`~pymodel.quantization.fakequant.ActivationQuantizer`, EMA from the PTQ
  calibrated range); the integer path runs what PTQ's conversion makes of them --
  TFLite's ADD (:func:`pymodel.quantization.ptq.add_layer`: each input rescaled to the
  output's scale) and, for a concat, an int8 requantization of every input whose
  quantization differs from the output's, then the concatenation
  (:func:`pymodel.quantization.ptq.concat_layers`) -- and the backward pass is
  :class:`pymodel.training.nn.Graph`'s (fan-out gradients summed) with each
  quantizer's STE on its tensor's gradient (:meth:`QATNetwork._forward_graph`).

**Integer-exact forward** (``mode="integer"``, the default).  In the forward pass every
weight layer builds *the artifact layer* it would convert to --
:func:`pymodel.quantization.ptq.build_qlayer` from the current int8 weights, float bias and tensor
parameters -- and runs it with the golden model's integer kernel
(:func:`pymodel.graph.inference.run_layer`: int32 accumulation, int32 bias, ``m0`` / ``shift``
requantization, clamp); the layer's fake-quant output is ``dequantize`` of that int8
result.  Pools also run their integer kernels.  The float GEMM of the training module
runs beside it on the fake-quant values and provides what the backward pass needs
(activation masks, the STE mask of the output quantizer, weight and input gradients).
:func:`convert` builds the same :class:`~pymodel.graph.artifact.QLayer` objects from the final
state, so the converted integer network computes *the same int8 tensors* as the
fake-quant forward, layer by layer, and its predictions agree on every image by
construction (``tests/test_qat.py`` checks it image by image, through a save / load of
the artifact).

``mode="float"`` is the textbook fake quant: the output is
``dequantize(quantize(act(z)))`` of the float pre-activation ``z``.  Rescaling in float
(one rounding of ``z / s_out``) differs from the integer path (``m0`` / ``shift``
double rounding of the int32 accumulator) by one step on near-ties, which can flip an
argmax between near-equal logits; it is kept to measure that (``docs/qat.md``).

Training reuses :func:`pymodel.training.train.fit`: the network has ``forward`` / ``backward`` /
``parameters`` like :class:`pymodel.training.nn.Sequential`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from pymodel import __version__, atomicio, datasets

from pymodel.graph import inference

from pymodel.training import nn

from pymodel.quantization import ptq
from pymodel.graph.artifact import QLayer, QuantizedNetwork, TensorQuant
from pymodel.quantization.fakequant import ActivationQuantizer, BiasQuant, WeightFakeQuant, ste_mask
from pymodel.graph.network import LayerSpec, Network
from pymodel.arithmetic.qparams import QuantParams, dequantize, quantize
from pymodel.training.train import History, fit

MODES = ("integer", "float")
GRAPH_NODES = ("add", "concat")  # float graph ops whose output has its own quantization


@dataclass(frozen=True)
class QATConfig:
    """Fine-tuning recipe.

    Attributes:
        epochs: training epochs (>= 1).
        freeze_epochs: the last ``freeze_epochs`` epochs run with activation ranges
            frozen (0 .. epochs).
        lr: Adam learning rate; weight_decay: L2 on weights (default 0: with Adam, L2
            decay moves the weights of a dead channel -- zero loss gradient -- toward 0
            by about ``lr`` per step until its per-channel scale is so small that the
            int32 bias overflows, which ``quantize_bias`` rejects).
        batch_size: images per step.
        ema_constant: activation range EMA constant ``c`` (``r <- (1-c) r + c batch``).
        lsq: learn the weight and activation scales (LSQ) instead of min/max + EMA.
        seed: shuffling seed.
        mode: ``integer`` (exact integer simulation) or ``float`` (textbook).
        calib_batch_size: batch size of the PTQ calibration that initializes the ranges.
    """

    epochs: int = 6
    freeze_epochs: int = 2
    lr: float = 3e-4
    weight_decay: float = 0.0
    batch_size: int = 32
    ema_constant: float = 0.01
    lsq: bool = False
    seed: int = 0
    mode: str = "integer"
    calib_batch_size: int = 32

    def __post_init__(self) -> None:
        for name in ("epochs", "freeze_epochs", "batch_size", "seed", "calib_batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < (1 if name in (
                    "epochs", "batch_size", "calib_batch_size") else 0):
                raise ValueError(f"{name}: {v!r} is not a valid value (a "
                                 f"{'positive' if name != 'freeze_epochs' else 'non-negative'}"
                                 " integer)")
        if self.freeze_epochs > self.epochs:
            raise ValueError(f"freeze_epochs: {self.freeze_epochs} exceeds epochs "
                             f"{self.epochs}")
        for name in ("lr", "weight_decay"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not np.isfinite(v) \
                    or v < 0 or (name == "lr" and v == 0):
                raise ValueError(f"{name}: {v!r} is not a valid value (a finite number "
                                 f"{'> 0' if name == 'lr' else '>= 0'})")
        if not 0.0 < self.ema_constant <= 1.0:
            raise ValueError(f"ema_constant: {self.ema_constant!r} is outside (0, 1]")
        if self.mode not in MODES:
            raise ValueError(f"mode: {self.mode!r} is not one of {', '.join(MODES)}")

    def to_meta(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class _Step:
    """What one layer's forward leaves for the backward pass."""

    spec: LayerSpec
    module: nn.Module
    quant: ActivationQuantizer | None = None


class QATNetwork:
    """A float network with fake quantization inserted (see the module docstring).

    Args:
        network: the float network (weights and schemes: bits, granularity).
        ranges: initial ``(rmin, rmax)`` of every quantized tensor, ``"input"`` and each
            weight layer (normally the PTQ calibrated ranges: :func:`initial_ranges`).
        ema_constant: EMA constant of every activation quantizer.
        lsq: learned scales for weights and activations.
        mode: ``integer`` or ``float``.

    Attributes:
        model: the float modules (:class:`pymodel.training.nn.Sequential`; a
            :class:`pymodel.training.nn.Graph` for a graph network), updated by training.
        input_quant, act_quant: activation quantizers (input; per weight, add and concat
            layer).
        weight_quant: per weight layer.
    """

    def __init__(self, network: Network, ranges: Mapping[str, tuple[float, float]],
                 ema_constant: float = 0.01, lsq: bool = False, mode: str = "integer") -> None:
        if mode not in MODES:
            raise ValueError(f"mode: {mode!r} is not one of {', '.join(MODES)}")
        if not network.params:
            raise ValueError(f"network {network.name!r}: has no weights loaded")
        missing = [n for n in ptq.tensor_names(network) if n not in ranges]
        if missing:
            raise ValueError(f"ranges: no initial range for tensor(s) {', '.join(missing)}")
        self.network = network
        self.mode = mode
        self.model = nn.from_network(network)
        s_in = network.input_scheme
        self.input_quant = ActivationQuantizer(ptq.INPUT, s_in.bits, s_in.symmetric,
                                               *ranges[ptq.INPUT], ema_constant, lsq)
        self.act_quant: dict[str, ActivationQuantizer] = {}
        self.weight_quant: dict[str, WeightFakeQuant] = {}
        self.bias_quant: dict[str, BiasQuant] = {}
        self.graph = not network.is_chain
        for spec, module in zip(network.layers, self.model.modules):
            if spec.op in GRAPH_NODES:              # add / concat: output quantizer only
                a = spec.activations
                assert a is not None
                self.act_quant[spec.name] = ActivationQuantizer(
                    spec.name, a.bits, a.symmetric, *ranges[spec.name], ema_constant, lsq)
                continue
            if not spec.has_weights:
                continue
            assert spec.weights is not None and spec.activations is not None
            a = spec.activations
            self.act_quant[spec.name] = ActivationQuantizer(spec.name, a.bits, a.symmetric,
                                                            *ranges[spec.name], ema_constant,
                                                            lsq)
            wq = WeightFakeQuant(spec.weights.bits, spec.weights.per_channel,
                                 spec.channel_axis, lsq)
            bq = BiasQuant(wq, int(spec.out_channels))  # type: ignore[arg-type]
            assert isinstance(module, nn._WeightModule)
            module.weight_hook, module.bias_hook = wq, bq
            self.weight_quant[spec.name], self.bias_quant[spec.name] = wq, bq
        self._steps: list[_Step] = []
        self.last_qlayers: list[QLayer] = []
        self.last_int: list[np.ndarray] = []
        self.last_values: list[np.ndarray] = []

    # -- quantizer state ---------------------------------------------------------------

    def quantizers(self) -> list[ActivationQuantizer]:
        return [self.input_quant, *self.act_quant.values()]

    def freeze(self, frozen: bool = True) -> None:
        """Freeze (or unfreeze) every activation range."""
        for q in self.quantizers():
            q.frozen = frozen

    def set_linearize(self, on: bool, jitter: float = 0.0,
                      rng: np.random.Generator | None = None) -> None:
        """Test aid: freeze parameters and rounding offsets at the next forward, making
        the STE backward the exact gradient of the surrogate (``pymodel.quantization.fakequant``);
        ``jitter`` (with ``rng``) moves the frozen point off grid-induced kinks."""
        for q in [*self.quantizers(), *self.weight_quant.values(), *self.bias_quant.values()]:
            q.linearize = on
            q.jitter, q.jitter_rng = jitter, rng

    @staticmethod
    def _tensor_quant(q: ActivationQuantizer) -> TensorQuant:
        lo, hi = q.real_range()
        return ptq.tensor_quant(q.qparams(), lo, hi, q.label)

    def _weight_qlayer(self, spec: LayerSpec, in_q: TensorQuant, out_q: TensorQuant) -> QLayer:
        wq = self.weight_quant[spec.name]
        assert wq.q is not None and wq.qp is not None
        bias = self.model[spec.name].params["bias"]
        return ptq.build_qlayer(spec, wq.q.astype(np.int8), wq.qp, bias, in_q, out_q)

    # -- forward / backward ------------------------------------------------------------

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        """Fake-quant forward.

        Args:
            x: float ``[N, *input_shape]``.
            train: update the (unfrozen) activation ranges with this batch.

        Returns:
            float64 logits: the dequantized int8 output of the last layer (``integer``
            mode: exactly ``inference.dequantize`` of the converted artifact's output).
        """
        x = np.asarray(self.network.check_input(x), np.float64)
        iq = self.input_quant
        if train:
            iq.observe(x)
        in_qp = iq.qparams()
        x_int = quantize(x, in_qp)
        x_hat = dequantize(x_int, in_qp)
        mask = ste_mask(x, in_qp)
        iq.remember(x, x_int, in_qp, mask)
        x_hat = iq._linear(x, x_hat, mask)
        in_q = self._tensor_quant(iq)
        if self.graph:
            return self._forward_graph(x_int, x_hat, in_q, train)
        steps: list[_Step] = []
        qlayers: list[QLayer] = []
        ints: list[np.ndarray] = []
        values: list[np.ndarray] = []
        for spec, module in zip(self.network.layers, self.model.modules):
            if spec.has_weights:
                aq = self.act_quant[spec.name]
                self.bias_quant[spec.name].in_scale = in_q.scale
                y_f = module.forward(x_hat, train)        # weight / bias hooks run here
                if train:
                    aq.observe(y_f)
                out_qp = aq.qparams()
                out_q = self._tensor_quant(aq)
                ql = self._weight_qlayer(spec, in_q, out_q)
                if self.mode == "integer":
                    y_int = inference.run_layer(ql, x_int)
                else:
                    y_int = quantize(y_f, out_qp).astype(np.int8)
                y_hat = dequantize(y_int, out_qp)
                m = ste_mask(y_f, out_qp)
                aq.remember(y_f, y_int, out_qp, m)
                x_hat = aq._linear(y_f, y_hat, m)
                steps.append(_Step(spec, module, aq))
                in_q = out_q
            else:
                ql = ptq.passthrough_layer(spec, in_q)
                y_int = inference.run_layer(ql, x_int)
                y_f = module.forward(x_hat, train)        # float pool: backward cache
                # the value is the integer kernel's (average pooling rounds in integers);
                # the linearized surrogate (tests) takes the float pool, whose gradient
                # is the STE one
                x_hat = y_f if iq.linearize else dequantize(y_int, in_q.qparams())
                steps.append(_Step(spec, module))
            qlayers.append(ql)
            ints.append(y_int)
            values.append(x_hat)
            x_int = y_int
        self._steps = steps
        self.last_qlayers = qlayers
        self.last_int = ints
        self.last_values = values
        return x_hat

    # -- graphs (add / concat / fan-out) --------------------------------------------------

    def _node_qlayers(self, spec: LayerSpec, srcs: tuple[str, ...], in_qs: list[TensorQuant],
                      out_q: TensorQuant | None) -> list[QLayer]:
        """The artifact layers of one float layer of a graph network -- what
        :func:`pymodel.quantization.ptq.quantize_network` makes of it: a weight layer by
        :func:`~pymodel.quantization.ptq.build_qlayer` (from the weight quantizer's int8
        weights), ``add`` by :func:`~pymodel.quantization.ptq.add_layer`, ``concat`` by
        :func:`~pymodel.quantization.ptq.concat_layers` (``quantize`` of each input whose
        quantization differs from the output's, then ``concatenation``), a pool / flatten
        by :func:`~pymodel.quantization.ptq.passthrough_layer`; each records ``inputs``."""
        if spec.op == "add":
            assert out_q is not None
            return [ptq.add_layer(spec, srcs, in_qs, out_q)]
        if spec.op == "concat":
            assert out_q is not None
            return ptq.concat_layers(spec, srcs, in_qs, out_q,
                                     {s.name for s in self.network.layers})
        if spec.has_weights:
            assert out_q is not None
            return [dataclasses.replace(self._weight_qlayer(spec, in_qs[0], out_q),
                                        inputs=srcs)]
        return [dataclasses.replace(ptq.passthrough_layer(spec, in_qs[0]), inputs=srcs)]

    def _forward_graph(self, x_int: np.ndarray, x_hat: np.ndarray, in_q: TensorQuant,
                       train: bool) -> np.ndarray:
        """The fake-quant forward of a graph network (``forward`` after the input).

        Every tensor is carried as ``(int8 values, fake-quant float values, TensorQuant)``
        under its name; each float layer runs its artifact layers
        (:meth:`_node_qlayers`) on its inputs' integers and its float module on their
        fake-quant values.  ``add`` and ``concat`` outputs are quantized like a weight
        layer's: the float result (``act(a_hat + b_hat)``, ``concat(x_hat...)``) feeds the
        EMA and the STE mask, the value passed on is ``dequantize`` of the integer result
        (TFLite ADD's rescaling; a concat input at another quantization requantized to the
        output's).  ``last_qlayers`` / ``last_int`` / ``last_values`` hold one entry per
        *artifact* layer (a concat's ``quantize`` layers included)."""
        net = self.network
        tensors: dict[str, tuple[np.ndarray, np.ndarray, TensorQuant]] = {
            ptq.INPUT: (x_int, x_hat, in_q)}
        qlayers: list[QLayer] = []
        ints: list[np.ndarray] = []
        values: list[np.ndarray] = []
        for i, (spec, module) in enumerate(zip(net.layers, self.model.modules)):
            srcs = net.inputs_of(i)
            ins = [tensors[s] for s in srcs]
            aq = self.act_quant.get(spec.name)
            if aq is None:                          # pool / flatten: input's quantization
                (ql,) = self._node_qlayers(spec, srcs, [ins[0][2]], None)
                y_int = inference.run_layer(ql, ins[0][0])
                y_f = module.forward(ins[0][1], train)
                y_hat = y_f if self.input_quant.linearize else \
                    dequantize(y_int, ins[0][2].qparams())
                new, new_int, new_val, out_q = [ql], [y_int], [y_hat], ins[0][2]
            else:
                if spec.has_weights:
                    self.bias_quant[spec.name].in_scale = ins[0][2].scale
                y_f = nn.node_forward(module, [t[1] for t in ins], train)
                if train:
                    aq.observe(y_f)
                out_qp = aq.qparams()
                out_q = self._tensor_quant(aq)
                new = self._node_qlayers(spec, srcs, [t[2] for t in ins], out_q)
                local = {s: t[0] for s, t in zip(srcs, ins)}
                new_int, new_val = [], []
                for ql in new:
                    args = [local[s] for s in ql.inputs]
                    if self.mode == "integer":
                        q = inference.run_layer(ql, *args)
                    elif ql is new[-1]:
                        q = quantize(y_f, out_qp).astype(np.int8)
                    else:                           # a concat input's requantization
                        q = quantize(dequantize(args[0], ql.input.qparams()),
                                     out_qp).astype(np.int8)
                    local[ql.name] = q
                    new_int.append(q)
                    new_val.append(dequantize(q, ql.output.qparams()))
                y_int = new_int[-1]
                m = ste_mask(y_f, out_qp)
                aq.remember(y_f, y_int, out_qp, m)
                new_val[-1] = aq._linear(y_f, new_val[-1], m)
            tensors[spec.name] = (new_int[-1], new_val[-1], out_q)
            qlayers += new
            ints += new_int
            values += new_val
        self._steps = []
        self.last_qlayers, self.last_int, self.last_values = qlayers, ints, values
        return values[-1]

    def graph_layers(self) -> list[QLayer]:
        """The artifact layers of a graph network for the quantizers' current state
        (the weight quantizers' last int8 weights): :meth:`_node_qlayers` layer by layer,
        as the fake-quant forward builds them."""
        net = self.network
        quant = {ptq.INPUT: self._tensor_quant(self.input_quant)}
        layers: list[QLayer] = []
        for i, spec in enumerate(net.layers):
            srcs = net.inputs_of(i)
            aq = self.act_quant.get(spec.name)
            new = self._node_qlayers(spec, srcs, [quant[s] for s in srcs],
                                     None if aq is None else self._tensor_quant(aq))
            layers += new
            quant[spec.name] = new[-1].output
        return layers

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """STE backward; returns the gradient with respect to the input images.  A graph
        network's goes through :meth:`pymodel.training.nn.Graph.backward` (fan-out
        gradients summed) with each quantized tensor's STE on its output gradient."""
        if self.graph:
            assert isinstance(self.model, nn.Graph)
            aqs = self.act_quant
            dx = self.model.backward(
                dy, lambda name, g: aqs[name].backward(g) if name in aqs else g)
            return self.input_quant.backward(dx)
        for st in reversed(self._steps):
            if st.quant is not None:
                dy = st.quant.backward(dy)
            dy = st.module.backward(dy)
        return self.input_quant.backward(dy)

    def parameters(self) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """Trainable arrays: the float weights and biases, and under LSQ the log scales
        (``<layer>.weight_log_scale``, ``<tensor>.act_log_scale``)."""
        yield from self.model.parameters()
        for name, wq in self.weight_quant.items():
            if wq.lsq and wq.log_scale is not None:
                g = (wq.log_scale_grad if wq.log_scale_grad is not None
                     else np.zeros_like(wq.log_scale))
                yield f"{name}.weight_log_scale", wq.log_scale, g
        for q in self.quantizers():
            if q.lsq and q.log_scale is not None:
                g = (q.log_scale_grad if q.log_scale_grad is not None
                     else np.zeros_like(q.log_scale))
                yield f"{q.name}.act_log_scale", q.log_scale, g

    def state(self) -> dict[str, np.ndarray]:
        """The fine-tuned float weights (a network ``.npz``)."""
        return self.model.state()

    def float_network(self) -> Network:
        """The network with the fine-tuned float weights."""
        return self.network.with_params(self.state(), "qat")


# ----------------------------------------------------------------------------------------
# Recipe: initialize from PTQ, fine-tune, convert
# ----------------------------------------------------------------------------------------

def initial_ranges(network: Network, x_calib: np.ndarray, batch_size: int = 32
                   ) -> dict[str, tuple[float, float]]:
    """The PTQ calibrated range of every quantized tensor (each tensor's calibrator over
    ``x_calib``), the starting point of the QAT activation ranges."""
    stats = ptq.collect_stats(network, datasets.batches(np.asarray(x_calib), batch_size),
                              stats=ptq.new_stats(network))
    return {k: (r.rmin, r.rmax) for k, r in ptq.calibrated_ranges(network, stats).items()}


def build(network: Network, x_calib: np.ndarray, config: QATConfig = QATConfig()
          ) -> QATNetwork:
    """A :class:`QATNetwork` with ranges initialized by PTQ calibration on ``x_calib``.

    Before any training its conversion equals the PTQ artifact of ``network`` (same
    calibrators, min / max weights), array for array -- chains and graphs.
    """
    return QATNetwork(network, initial_ranges(network, x_calib, config.calib_batch_size),
                      config.ema_constant, config.lsq, config.mode)


def finetune(network: Network, x_train: np.ndarray, y_train: np.ndarray,
             x_calib: np.ndarray, config: QATConfig = QATConfig(),
             val: tuple[np.ndarray, np.ndarray] | None = None,
             progress: bool = False) -> tuple[QATNetwork, History]:
    """QAT fine-tuning of a trained float network.

    Ranges start at the PTQ calibration on ``x_calib``; Adam (``config.lr``, weight decay
    on weights) with :func:`pymodel.training.train.fit` (shuffling seeded by ``config.seed``); the
    activation ranges follow the EMA until the last ``config.freeze_epochs`` epochs.

    Returns:
        ``(qat network, history)``.
    """
    if network.equalization.enabled or any(s.bias_correction for s in network.weight_layers):
        network = network.with_overrides(bias_correction=False, equalization=False)
    qnet = build(network, x_calib, config)
    unfrozen = config.epochs - config.freeze_epochs
    if unfrozen == 0:
        qnet.freeze()

    def on_epoch(epoch: int, hist: History) -> None:
        if epoch + 1 == unfrozen:
            qnet.freeze()

    opt = nn.Adam(config.lr, weight_decay=config.weight_decay)
    hist = fit(qnet, np.asarray(x_train), np.asarray(y_train), config.epochs,  # type: ignore[arg-type]
               config.batch_size, opt, seed=config.seed, val=val, progress=progress,
               on_epoch=on_epoch)
    return qnet, hist


def convert(qnet: QATNetwork, meta: Mapping[str, Any] | None = None) -> QuantizedNetwork:
    """The quantized-network artifact of the QAT network's current state.

    The layers are built by the same code as the fake-quant forward
    (:func:`pymodel.quantization.ptq.build_qlayer` from the weight quantizers' int8 weights and the
    activation quantizers' parameters), so the integer network computes the fake-quant
    forward's int8 tensors exactly.
    """
    net = qnet.network
    for spec in net.weight_layers:                  # quantize the final weights
        wq = qnet.weight_quant[spec.name]
        w = qnet.model[spec.name].params["weight"]
        wq.forward(w, train=False)
    in_q = qnet._tensor_quant(qnet.input_quant)
    first = in_q
    layers: list[QLayer] = []
    for spec in ([] if qnet.graph else net.layers):
        if spec.has_weights:
            q = qnet._weight_qlayer(spec, in_q, qnet._tensor_quant(qnet.act_quant[spec.name]))
        else:
            q = ptq.passthrough_layer(spec, in_q)
        layers.append(q)
        in_q = q.output
    if qnet.graph:
        layers = qnet.graph_layers()
    state = qnet.state()
    info: dict[str, Any] = {
        "tool": f"pymodel {__version__}",
        "network": Path(net.source).name,
        "float_weights_sha256": atomicio.arrays_digest(state),
        "weight_bits_average": round(net.weight_bits_average(), 4),
        "qat": {"mode": qnet.mode,
                "ema_updates": {q.name: int(q.updates) for q in qnet.quantizers()}},
    }
    for k, v in (meta or {}).items():
        if k == "qat" and isinstance(v, Mapping):
            info["qat"].update(v)
        else:
            info[k] = v
    return QuantizedNetwork(name=net.name, input_shape=net.input_shape, input=first,
                            layers=tuple(layers), meta=info)


def predict(qnet: QATNetwork, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Fake-quant predictions (argmax of the logits, first index on ties), int64 ``[N]``."""
    out = [qnet.forward(x[i:i + batch_size]).argmax(axis=1)
           for i in range(0, x.shape[0], batch_size)]
    return np.concatenate(out) if out else np.zeros(0, np.int64)


@dataclass
class Agreement:
    """Fake-quant network vs converted integer network on a set of images.

    Attributes:
        images: images compared.
        same_prediction: images whose predictions are equal.
        same_logits: images whose int8 logits are equal element for element.
        mismatches: indices of the images whose predictions differ.
        max_logit_diff: largest ``|difference|`` of an int8 logit (steps).
    """

    images: int
    same_prediction: int
    same_logits: int
    mismatches: list[int] = field(default_factory=list)
    max_logit_diff: int = 0


def compare(qnet: QATNetwork, artifact: QuantizedNetwork, x: np.ndarray,
            batch_size: int = 256) -> Agreement:
    """Image by image: fake-quant prediction / int8 logits vs the integer network's."""
    same_pred = same_logits = worst = 0
    bad: list[int] = []
    for s in range(0, x.shape[0], batch_size):
        xb = x[s:s + batch_size]
        fq = qnet.forward(xb)
        fq_int = qnet.last_int[-1]               # the int8 values behind the logits
        il = inference.logits(artifact, xb)
        eq_pred = fq.argmax(axis=1) == il.argmax(axis=1)
        same_pred += int(eq_pred.sum())
        same_logits += int(np.all(fq_int == il, axis=1).sum())
        if il.size:
            worst = max(worst, int(np.abs(fq_int.astype(np.int64) - il).max()))
        bad += [s + int(i) for i in np.flatnonzero(~eq_pred)]
    return Agreement(int(x.shape[0]), same_pred, same_logits, bad, worst)
