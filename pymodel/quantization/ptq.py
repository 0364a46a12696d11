"""Post-training quantization: calibrate a float network, convert it to an artifact.

1. :func:`collect_stats` runs the float network over calibration batches and folds the
   input and every weight layer's output into a :class:`~pymodel.calibration.calibrators.TensorStats`
   (bounded memory; one pass serves every calibrator).
2. :func:`quantize_network` turns the statistics and the float weights into a
   :class:`~pymodel.graph.artifact.QuantizedNetwork`: weights quantized symmetric per tensor or
   per output channel (min / max), activation ranges from each tensor's calibrator,
   ``m0`` / ``shift`` / int32 bias / clamp from :func:`pymodel.ops.layers.make_requant_params`.
3. :func:`pymodel.graph.artifact.save_artifact` writes it; :mod:`pymodel.graph.inference` runs it.

Accuracy preservation (``ptq:`` in the network YAML, ``docs/qat.md``):

* cross-layer equalization rescales the float weights *before* calibration:
  :func:`prepare` (``pymodel.quantization.cle.equalize``) returns the equalized float network, which
  :func:`collect_stats` then observes;
* bias correction changes a layer's float bias before it is quantized:
  :func:`quantize_network` subtracts ``pymodel.quantization.bias_correction.expected_shift`` computed
  from the layer's quantized weights and ``input_means``
  (``pymodel.quantization.bias_correction.collect_input_means`` over the calibration set).

:func:`calibrate` does all of it from a network and calibration images.

Graph (DAG) float networks: every tensor with its own quantization -- the input, each
weight layer's, ``add``'s and ``concat``'s output -- is calibrated; an ``add`` becomes the
artifact's ``add`` (TFLite's int8 ADD: :func:`pymodel.ops.elementwise.prepare_add` from
the two input scales and the output scale, rounded to float32 as a TFLite model stores
them; the clamp is the fused activation's, narrowed to the output's bits); a ``concat``
becomes ``concatenation`` (TFLite requires every input at the output's quantization,
:func:`pymodel.ops.shape.prepare_concatenation`), preceded by an int8 -> int8
``quantize`` (:func:`pymodel.ops.quantize.prepare_requantize`) of each input whose
quantization differs.  Their integer arithmetic is the TFLite importer's, run by
:mod:`pymodel.graph.opset`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from pymodel import __version__, atomicio
from pymodel.quantization import bias_correction as bc
from pymodel.graph.artifact import QLayer, QuantizedNetwork, TensorQuant
from pymodel.calibration.calibrators import (CalibratedRange, TensorStats, calibrated_range, weight_range,
                          HISTOGRAM_METHODS)
from pymodel.calibration.histogram import DEFAULT_BINS
from pymodel.ops.layers import check_accumulator_bound, fold_input_zero_point, make_requant_params
from pymodel.graph.network import ActivationScheme, LayerSpec, Network, WeightScheme
from pymodel.arithmetic.qparams import QuantParams, compute_qparams, dequantize, quantize
from pymodel.validate import NPZ_READ_ERRORS

INPUT = "input"  # name of the network input tensor in the statistics


def tensor_names(network: Network) -> list[str]:
    """Tensors that get their own quantization: the input and every weight layer's, add's
    and concat's output."""
    return [INPUT] + [s.name for s in network.quantized_layers]


def _schemes(network: Network) -> list[ActivationScheme]:
    return [network.input_scheme] + [s.activations for s in network.quantized_layers]  # type: ignore


def new_stats(network: Network, bins: int = DEFAULT_BINS,
              histogram: bool | None = None,
              ema_constants: Iterable[float] = (),
              signed: bool | None = None) -> dict[str, TensorStats]:
    """Empty statistics for every quantized tensor of ``network``.

    Args:
        bins: histogram bins.
        histogram: keep histograms (default: if any tensor's calibrator needs one).
        ema_constants: extra EMA constants to track besides the network's own.
        signed: keep the histogram's signs (default: if any tensor's calibrator is
            ``entropy:onnxruntime``, whose divergence needs them).
    """
    schemes = _schemes(network)
    if histogram is None:
        histogram = any(s.calibrator.method in HISTOGRAM_METHODS for s in schemes)
    if signed is None:
        signed = any(getattr(s.calibrator, "divergence", None) == "onnxruntime" for s in schemes)
    consts = sorted({s.calibrator.ema_constant for s in schemes} | set(ema_constants))
    return {name: TensorStats(name, histogram=histogram, bins=bins, ema_constants=tuple(consts),
                              signed=signed and histogram)
            for name in tensor_names(network)}


def collect_stats(network: Network, batches: Iterable[np.ndarray],
                  stats: dict[str, TensorStats] | None = None, progress: bool = False,
                  total: int | None = None) -> dict[str, TensorStats]:
    """Run the float network over calibration batches and observe every quantized tensor.

    Args:
        network: the float network.
        batches: float ``[n, *input_shape]`` batches (finite).
        stats: statistics to update (default: :func:`new_stats` with histograms).
        progress: tqdm bar; ``total`` its length in batches.

    Returns:
        ``{tensor name: TensorStats}``.

    Raises:
        ValueError on a batch of the wrong shape, NaN / Inf (naming the tensor), or an
        empty calibration set.
    """
    _check_prepared(network)
    st = new_stats(network, histogram=True) if stats is None else stats
    it: Any = batches
    if progress:
        from tqdm import tqdm
        it = tqdm(batches, desc="calibrate", unit="batch", total=total, leave=False)
    for xb in it:
        xb = network.check_input(xb, "calibration batch")
        st[INPUT].update(xb)
        if xb.shape[0] == 0:
            continue
        x = np.asarray(xb, np.float64)
        for spec, _, y in network.walk(x):
            if spec.name in st and spec.has_output_quant:
                st[spec.name].update(y)
    if st[INPUT].count == 0:
        raise ValueError("calibration set: no images (empty calibration set); give at "
                         "least one non-empty batch")
    return st


def _check_prepared(network: Network) -> None:
    from pymodel.quantization.cle import TRANSFORM
    if network.equalization.enabled and TRANSFORM not in network.transforms:
        raise ValueError(f"network {network.name!r}: asks for cross-layer equalization "
                         "(ptq.cross_layer_equalization) but its weights are not equalized; "
                         "run pymodel.quantization.ptq.prepare(network) first")


def prepare(network: Network) -> tuple[Network, dict[str, Any]]:
    """The float network PTQ calibrates: cross-layer equalized when the network asks for
    it (``ptq.cross_layer_equalization``), else unchanged.

    Returns:
        ``(network, info)``; ``info`` describes the equalization (empty when off).
    """
    from pymodel.quantization.cle import TRANSFORM, equalize
    if not network.equalization.enabled or TRANSFORM in network.transforms:
        return network, {}
    eq, res = equalize(network)
    return eq, res.summary()


def quantize_weights(w: np.ndarray, scheme: WeightScheme, axis: int
                     ) -> tuple[np.ndarray, QuantParams]:
    """Symmetric min / max weight quantization.

    Args:
        w: float weights.
        scheme: bits and granularity.
        axis: output-channel axis (per-channel).

    Returns:
        ``(wq, qp)``: int8 weights (values in ``[-(2^(b-1)-1), 2^(b-1)-1]``) and their
        parameters (scale ``[C]`` per channel, scalar per tensor).
    """
    rmin, rmax = weight_range(w, scheme.per_channel, axis)
    qp = compute_qparams(rmin, rmax, scheme.bits, symmetric=True,
                         axis=axis if scheme.per_channel else None)
    return quantize(w, qp).astype(np.int8), qp


def _tensor_quant(r: CalibratedRange, scheme: ActivationScheme) -> TensorQuant:
    qp = compute_qparams(r.rmin, r.rmax, scheme.bits, scheme.symmetric)
    return TensorQuant(scale=float(qp.scale), zero_point=int(qp.zero_point), bits=scheme.bits,
                       symmetric=scheme.symmetric, rmin=float(r.rmin), rmax=float(r.rmax),
                       calibrator=r.calibrator.label, threshold=r.threshold)


def tensor_quant(qp: QuantParams, rmin: float, rmax: float, calibrator: str | None,
                 threshold: float | None = None) -> TensorQuant:
    """An artifact tensor record from per-tensor parameters and the range they came from."""
    return TensorQuant(scale=float(qp.scale), zero_point=int(qp.zero_point), bits=qp.bits,
                       symmetric=qp.symmetric, rmin=float(rmin), rmax=float(rmax),
                       calibrator=calibrator, threshold=threshold)


def passthrough_layer(spec: LayerSpec, in_q: TensorQuant) -> QLayer:
    """A pool or flatten layer of the artifact (keeps its input's quantization)."""
    if spec.has_weights:
        raise ValueError(f"layer {spec.name!r}: {spec.op} has weights")
    return QLayer(name=spec.name, op=spec.op, input_shape=spec.input_shape,
                  output_shape=spec.output_shape, input=in_q, kernel=spec.kernel,
                  stride=spec.stride, padding=spec.padding, activation=spec.activation,
                  output=in_q, act_min=in_q.qmin, act_max=in_q.qmax)


def build_qlayer(spec: LayerSpec, wq: np.ndarray, wqp: QuantParams, bias: np.ndarray,
                 in_q: TensorQuant, out_q: TensorQuant) -> QLayer:
    """A weight layer of the artifact from already quantized weights.

    The one place where a weight layer's integer parameters are made: PTQ
    (:func:`quantize_layer`) and QAT (``pymodel.quantization.qat``, in its fake-quant forward *and*
    its conversion) both call it.

    Args:
        spec: the float layer (op, shapes, stride, padding, activation, schemes).
        wq: int8 weights (TFLite layout); wqp: their parameters (per tensor / channel).
        bias: float ``[C]`` bias in real units (quantized here to int32 at ``s_in *
            s_w[c]`` by ``make_requant_params``).
        in_q, out_q: input and output tensor quantization.
    """
    if not spec.has_weights:
        raise ValueError(f"layer {spec.name!r}: {spec.op} has no weights")
    assert spec.weights is not None
    c = int(spec.out_channels)  # type: ignore[arg-type]
    rq = make_requant_params(in_q.qparams(), wqp, out_q.qparams(), bias, c, spec.activation)
    q = QLayer(name=spec.name, op=spec.op, input_shape=spec.input_shape,
               output_shape=spec.output_shape, input=in_q, kernel=spec.kernel,
               stride=spec.stride, padding=spec.padding, activation=spec.activation,
               output=out_q, act_min=rq.act_min, act_max=rq.act_max,
               weight=wq, weight_bits=wqp.bits,
               weight_granularity=spec.weights.granularity,
               weight_scale=np.broadcast_to(wqp.scale, (c,)).astype(np.float64),
               bias=rq.bias, m0=rq.m0, shift=rq.shift, depth_multiplier=spec.depth_multiplier,
               macs=spec.macs)
    check_accumulator_bound(spec.name, q.w2d, rq.bias, in_q.zero_point, in_q.bits)
    return dataclasses.replace(q, bias_folded=fold_input_zero_point(rq.bias, q.w2d,
                                                                    in_q.zero_point))


def quantize_layer(spec: LayerSpec, params: Mapping[str, np.ndarray], in_q: TensorQuant,
                   out_range: CalibratedRange | None,
                   input_mean: np.ndarray | None = None) -> QLayer:
    """One layer of the artifact.

    Args:
        spec: the float layer.
        params: float weights.
        in_q: quantization of the layer's input tensor.
        out_range: calibrated range of the output (weight layers), else ``None``.
        input_mean: for a layer with ``bias_correction``: its mean float GEMM row
            (``pymodel.quantization.bias_correction.collect_input_means``).
    """
    if not spec.has_weights:
        return passthrough_layer(spec, in_q)
    assert spec.weights is not None and spec.activations is not None and out_range is not None
    w, b = params[f"{spec.name}.weight"], params[f"{spec.name}.bias"]
    wq, wqp = quantize_weights(w, spec.weights, spec.channel_axis)
    if spec.bias_correction:
        if input_mean is None:
            raise ValueError(f"layer {spec.name!r}: bias_correction needs the mean input "
                             "over the calibration set (input_means); use ptq.calibrate or "
                             "pymodel.quantization.bias_correction.collect_input_means")
        b = bc.corrected_bias(spec, params, dequantize(wq, wqp), input_mean)
    return build_qlayer(spec, wq, wqp, b, in_q, _tensor_quant(out_range, spec.activations))


def add_layer(spec: LayerSpec, inputs: tuple[str, ...], in_qs: list[TensorQuant],
              out_q: TensorQuant) -> QLayer:
    """The artifact's ``add`` for a float ``add`` layer: TFLite's int8 ADD parameters
    (:func:`pymodel.ops.elementwise.prepare_add`, from the float32-rounded scales), the
    fused activation's clamp narrowed to the output's ``[qmin, qmax]``.

    Args:
        spec: the float ``add`` layer; inputs: the two tensor names it reads.
        in_qs: their quantization; out_q: the output's (calibrated).
    """
    from pymodel.graph.opset import params_of
    from pymodel.ops import elementwise as E
    (q1, q2) = in_qs
    try:
        prm = E.prepare_add(q1.scale, q1.zero_point, q2.scale, q2.zero_point, out_q.scale,
                            out_q.zero_point, activation=spec.activation)
    except ValueError as exc:
        raise ValueError(f"layer {spec.name!r} (add): {exc}") from None
    params = params_of(prm)
    params["act_min"] = lo = max(int(prm.act_min), out_q.qmin)
    params["act_max"] = hi = min(int(prm.act_max), out_q.qmax)
    return QLayer(name=spec.name, op="add", input_shape=spec.input_shape,
                  output_shape=spec.output_shape, input=q1, output=out_q, act_min=lo,
                  act_max=hi, activation=spec.activation, inputs=tuple(inputs),
                  params=params)


def concat_layers(spec: LayerSpec, inputs: tuple[str, ...], in_qs: list[TensorQuant],
                  out_q: TensorQuant, taken: set[str]) -> list[QLayer]:
    """The artifact layers of a float ``concat``: an int8 -> int8 ``quantize``
    (``<concat>_rq<j>``) of each input whose float32 scale / zero point differ from
    the output's, then ``concatenation`` along the last axis (TFLite's int8
    CONCATENATION requires equal quantization).

    Args:
        spec: the float ``concat`` layer; inputs: the tensor names it reads.
        in_qs: their quantization; out_q: the output's (calibrated).
        taken: layer names already used (a generated name must not collide).
    """
    from pymodel.graph.opset import params_of
    from pymodel.ops import quantize as Q
    from pymodel.ops import shape as S
    from pymodel.ops.tflite_common import scale_f32
    out: list[QLayer] = []
    srcs, quants = [], []
    so = scale_f32("out_scale", out_q.scale)
    for j, (src, q, shp) in enumerate(zip(inputs, in_qs, spec.input_shapes)):
        if (scale_f32("scale", q.scale), q.zero_point) != (so, out_q.zero_point):
            name = f"{spec.name}_rq{j}"
            if name in taken:
                raise ValueError(f"layer {spec.name!r} (concat): needs a requantize layer "
                                 f"named {name!r}, which is taken; rename that layer")
            prm = Q.prepare_requantize(q.scale, q.zero_point, out_q.scale, out_q.zero_point)
            out.append(QLayer(name=name, op="quantize", input_shape=shp, output_shape=shp,
                              input=q, output=out_q, act_min=-128, act_max=127,
                              inputs=(src,), params=params_of(prm)))
            src, q = name, out_q
        srcs.append(src)
        quants.append(q)
    prm = S.prepare_concatenation([q.scale for q in quants], [q.zero_point for q in quants],
                                  out_q.scale, out_q.zero_point)
    out.append(QLayer(name=spec.name, op="concatenation", input_shape=spec.input_shape,
                      output_shape=spec.output_shape, input=quants[0], output=out_q,
                      act_min=-128, act_max=127, inputs=tuple(srcs),
                      params={**params_of(prm), "axis": len(spec.output_shape)}))
    return out


def calibrated_ranges(network: Network, stats: Mapping[str, TensorStats]
                      ) -> dict[str, CalibratedRange]:
    """The range each tensor's calibrator picks: ``{"input" | layer: CalibratedRange}``."""
    for name in tensor_names(network):
        if name not in stats:
            raise ValueError(f"stats: no statistics for tensor {name!r} (have "
                             f"{', '.join(sorted(stats))})")
    out = {}
    for name, scheme in zip(tensor_names(network), _schemes(network)):
        out[name] = calibrated_range(stats[name], scheme.calibrator, scheme.bits,
                                     scheme.symmetric)
    return out


def quantize_network(network: Network, stats: Mapping[str, TensorStats],
                     meta: Mapping[str, Any] | None = None,
                     input_means: Mapping[str, np.ndarray] | None = None) -> QuantizedNetwork:
    """Convert a calibrated float network into a quantized-network artifact.

    Args:
        network: the float network with its schemes (cross-layer equalized by
            :func:`prepare` if it asks for it).
        stats: ``{tensor: TensorStats}`` from :func:`collect_stats`.
        meta: provenance recorded in the artifact (merged over the defaults).
        input_means: ``{layer: mean GEMM row}`` for the layers with ``bias_correction``
            (``pymodel.quantization.bias_correction.collect_input_means``).
    """
    if not network.params:
        raise ValueError(f"network {network.name!r}: has no weights loaded")
    _check_prepared(network)
    for name in tensor_names(network):
        if name not in stats:
            raise ValueError(f"stats: no statistics for tensor {name!r} (have "
                             f"{', '.join(sorted(stats))})")
    s_in = network.input_scheme
    in_q = _tensor_quant(calibrated_range(stats[INPUT], s_in.calibrator, s_in.bits,
                                          s_in.symmetric), s_in)
    first_in = in_q
    quant: dict[str, TensorQuant] = {INPUT: in_q}
    qlayers: list[QLayer] = []
    names = {s.name for s in network.layers}
    chain = network.is_chain
    for i, spec in enumerate(network.layers):
        srcs = network.inputs_of(i)
        r = None
        if spec.has_output_quant:
            a = spec.activations
            assert a is not None
            r = calibrated_range(stats[spec.name], a.calibrator, a.bits, a.symmetric)
        if spec.op == "add":
            assert r is not None and spec.activations is not None
            new = [add_layer(spec, srcs, [quant[s] for s in srcs],
                             _tensor_quant(r, spec.activations))]
        elif spec.op == "concat":
            assert r is not None and spec.activations is not None
            new = concat_layers(spec, srcs, [quant[s] for s in srcs],
                                _tensor_quant(r, spec.activations), names)
        else:
            q = quantize_layer(spec, network.params, quant[srcs[0]], r,
                               None if input_means is None else input_means.get(spec.name))
            new = [q if chain else dataclasses.replace(q, inputs=srcs)]
        qlayers.extend(new)
        quant[spec.name] = new[-1].output
    info: dict[str, Any] = {
        "tool": f"pymodel {__version__}",
        "network": Path(network.source).name,
        "float_weights_sha256": atomicio.arrays_digest(network.params),
        "images_calibrated": int(stats[INPUT].count // max(1, int(np.prod(network.input_shape)))),
        "weight_bits_average": round(sum(q.weight.size * q.weight_bits for q in qlayers
                                         if q.weight is not None)
                                     / max(1, sum(q.weight.size for q in qlayers
                                                  if q.weight is not None)), 4),
    }
    corrected = [s.name for s in network.weight_layers if s.bias_correction]
    if corrected or network.transforms:
        info["ptq"] = {"bias_correction": corrected,
                       "transforms": list(network.transforms)}
    info.update(meta or {})
    return QuantizedNetwork(name=network.name, input_shape=network.input_shape, input=first_in,
                            layers=tuple(qlayers), meta=info)


def calibrate(network: Network, x: np.ndarray, batch_size: int = 32, progress: bool = False,
              meta: Mapping[str, Any] | None = None) -> QuantizedNetwork:
    """:func:`prepare` (cross-layer equalization if asked for), :func:`collect_stats` over
    ``x`` in batches, the bias-correction means if any layer asks for them, then
    :func:`quantize_network`."""
    from pymodel.datasets import batches
    network, eq_info = prepare(network)
    n = int(np.asarray(x).shape[0]) if np.ndim(x) else 0
    stats = collect_stats(network, batches(np.asarray(x), batch_size),
                          stats=new_stats(network), progress=progress,
                          total=-(-n // batch_size))
    means = None
    if any(s.bias_correction for s in network.weight_layers):
        means = bc.collect_input_means(network, batches(np.asarray(x), batch_size))
    info: dict[str, Any] = {"batch_size": batch_size}
    if eq_info:
        info["cross_layer_equalization"] = eq_info
    return quantize_network(network, stats, {**info, **(meta or {})}, means)


# ----------------------------------------------------------------------------------------
# Statistics files (the `calibrate` command)
# ----------------------------------------------------------------------------------------

def save_stats(path: str | Path, stats: Mapping[str, TensorStats],
               meta: Mapping[str, Any] | None = None) -> Path:
    """Atomically write statistics as an ``.npz`` (``<tensor>/<field>`` arrays)."""
    arrays: dict[str, np.ndarray] = {}
    for name, st in stats.items():
        arrays.update(st.to_arrays(f"{name}/"))
    arrays["__tensors__"] = np.asarray(sorted(stats))
    for k, v in (meta or {}).items():
        arrays[f"__meta__/{k}"] = np.asarray(v)
    return atomicio.save_npz(path, arrays)


def load_stats(path: str | Path) -> dict[str, TensorStats]:
    """Statistics written by :func:`save_stats`."""
    p = Path(path)
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise ValueError(f"stats: {p} not found") from None
    except NPZ_READ_ERRORS as exc:
        raise ValueError(f"stats: {p} is not a readable .npz ({exc})") from None
    if "__tensors__" not in arrays:
        raise ValueError(f"stats: {p} is not a statistics file (no '__tensors__' array)")
    return {str(n): TensorStats.from_arrays(str(n), arrays, f"{n}/")
            for n in arrays["__tensors__"].tolist()}
