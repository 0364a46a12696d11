"""Agreement between qmac's integer pipeline and onnxruntime on a QDQ model.

onnxruntime runs a QDQ model in floating point (optimizations off: ``DequantizeLinear``,
a float32 ``Conv`` / ``Gemm``, ``QuantizeLinear`` = ``round_half_even(x / s) + zp``) or,
with its graph optimizations on, fuses ``Q -> DQ -> Conv -> Q`` into ``QLinearConv`` /
``QGemm`` (integer accumulation, requantization by a float32 multiplier, round half to
even).  qmac requantizes with TFLite's fixed-point multiplier (31-bit ``m0``, shift,
gemmlowp double rounding).  The two agree except where a value lands within rounding
precision of a boundary ``k + 0.5``, and then downstream of such an element.

:func:`compare` runs

* every layer *isolated*: onnxruntime on the sub-graph ``Q -> DQ -> op -> Q -> DQ``
  (extracted with ``onnx.utils.Extractor``; this shape is what onnxruntime fuses, as in
  the whole model) fed qmac's int8 input of the layer, against qmac's output.  Every
  differing element is classified:

  ``near_tie``
      the exact real requantizer input ``acc * s_in * s_w[c] / s_out + zp`` (float64 from
      the model's float32 scales, integer accumulator ``acc``) lies within ``2^shift``
      (the layer's right shift: gemmlowp rounds once after the doubling high multiply, to
      that resolution, and again at the shift) plus :data:`TIE_TOLERANCE` (float32
      slack) of ``k + 0.5``, and the results differ by one step: the two rounding rules
      decide differently this close to the boundary;
  ``unexplained``
      anything else (pinned at zero by the tests);

* the *whole* model, final output only (adding intermediate tensors to the graph outputs
  stops onnxruntime's fusion), each differing element ``near_tie`` when the isolated last
  layer differs there too, else ``propagated`` (the last layer given equal inputs gives
  an equal element, so its inputs differed).

Every session sets ``session.x64quantprecision = 1`` (onnxruntime's
``kOrtSessionOptionsAvx2PrecisionMode``).  Without it, the fused kernels on an x86 CPU
without VNNI (AVX2, AVX-512F) multiply uint8 activations by int8 weights with
``VPMADDUBSW``, which adds each pair of neighbouring products in *saturating* 16-bit
arithmetic (255 * 127 * 2 > 32767): the optimized results then depend on the CPU (a
digits conv differed by up to 25 steps on such a machine, equal on a VNNI one).  The
option makes onnxruntime convert the int8 weights to uint8 and use its exact U8U8 kernels
on every x86 CPU, so the figures are the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pymodel.graph import inference
from pymodel.graph.artifact import INPUT, QuantizedNetwork

#: Float32 slack (output steps) added to the fixed-point double-rounding bound.
TIE_TOLERANCE = 1e-4

#: onnxruntime session config entries of every session (module doc: exact int8 products
#: on every x86 CPU, not saturating 16-bit pair sums on CPUs without VNNI).
ORT_CONFIG = {"session.x64quantprecision": "1"}


@dataclass
class Agreement:
    """One comparison (one model, one optimization level).

    Attributes:
        optimized: onnxruntime's graph optimizations on (``ORT_ENABLE_ALL``) or off.
        images: number of images.
        argmax_agree: images whose output argmax is equal (whole model).
        output_elements, output_differ: final-output int8 elements, and how many differ.
        max_abs_diff: largest final-output ``|ort - qmac|``, int8 steps.
        output_classes: differing final-output elements: ``near_tie`` / ``propagated``.
        classes: differing elements of the isolated layers: ``near_tie`` / ``unexplained``.
        per_layer: ``{layer: {class: count}}`` of the isolated layers.
        input_differ: elements of the quantized network input that differ (onnxruntime's
            ``QuantizeLinear`` vs :func:`pymodel.graph.inference.quantize_input`).
    """

    optimized: bool
    images: int
    argmax_agree: int
    output_elements: int
    output_differ: int
    max_abs_diff: int
    output_classes: dict[str, int] = field(default_factory=dict)
    classes: dict[str, int] = field(default_factory=dict)
    per_layer: dict[str, dict[str, int]] = field(default_factory=dict)
    input_differ: int = 0


class _Ort:
    """onnxruntime sessions on a QDQ model: the whole model, and each layer isolated."""

    def __init__(self, path: str | Path, optimized: bool) -> None:
        import onnx
        import onnx.utils
        import onnxruntime as ort

        self.ort = ort
        self.model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
        self.extractor = onnx.utils.Extractor(self.model)
        self.so = ort.SessionOptions()
        self.so.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                                            if optimized else
                                            ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
        self.so.intra_op_num_threads = 1
        for key, value in ORT_CONFIG.items():
            self.so.add_session_config_entry(key, value)
        self.q_writing = {n.output[0]: n for n in self.model.graph.node
                          if n.op_type == "QuantizeLinear"}
        self.dq_reading = {n.input[0]: n for n in self.model.graph.node
                           if n.op_type == "DequantizeLinear"}

    def session(self, model: Any) -> Any:
        return self.ort.InferenceSession(model.SerializeToString(), self.so,
                                         providers=["CPUExecutionProvider"])

    def run(self, sess: Any, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Batch-1 model, images one at a time."""
        n = next(iter(feeds.values())).shape[0]
        return np.concatenate([sess.run(None, {k: v[i:i + 1] for k, v in feeds.items()})[0]
                               for i in range(n)])

    def isolated(self, in_names: list[str], out_name: str) -> Any:
        """``Q(float) -> DQ -> op -> Q -> DQ`` around one layer: the float tensors its
        input ``QuantizeLinear`` nodes read, to the ``DequantizeLinear`` of its output.
        (A graph that starts at an int8 tensor, or ends at one, is not fused by
        onnxruntime's QDQ transformers; this one is, as in the whole model.)"""
        ins = [self.q_writing[n].input[0] for n in in_names]
        return self.session(self.extractor.extract_model(ins, [self.dq_reading[out_name]
                                                               .output[0]]))


def _to_onnx(a: np.ndarray, chw: Any) -> np.ndarray:
    """qmac layout -> ONNX layout (NHWC -> NCHW; an HWC-flattened tensor -> CHW order)."""
    if a.ndim == 4:
        return a.transpose(0, 3, 1, 2)
    if chw:
        h, w, c = chw
        return a.reshape(-1, h, w, c).transpose(0, 3, 1, 2).reshape(a.shape[0], -1)
    return a


def _from_onnx(a: np.ndarray, chw: Any) -> np.ndarray:
    if a.ndim == 4:
        return a.transpose(0, 2, 3, 1)
    if chw:
        h, w, c = chw
        return a.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(a.shape[0], -1)
    return a


def _exact_requant_input(layer: Any, x: np.ndarray) -> np.ndarray:
    """float64 ``acc * s_in * s_w[c] / s_out + zp`` of a conv / FC layer, output-shaped."""
    rows = inference.gemm_rows(layer, x).astype(np.int64) - layer.input.zero_point
    acc = rows @ layer.w2d.astype(np.int64).T + layer.bias.astype(np.int64)
    s_in = float(np.float32(layer.input.scale))
    s_w = np.asarray(layer.weight_scale, np.float32).astype(np.float64)
    real = acc * (s_in * s_w / float(np.float32(layer.output.scale))) + layer.output.zero_point
    return real.reshape(x.shape[0], *layer.output_shape)


def _codes(y: np.ndarray, tq: Any) -> np.ndarray:
    """A ``DequantizeLinear`` output back to its int8 codes (exact: ``(q - zp) * s``)."""
    return np.round(y / np.float32(tq.scale)).astype(np.int64) + tq.zero_point


def _classify(layer: Any, x: np.ndarray, g: np.ndarray, o: np.ndarray) -> np.ndarray:
    """Boolean mask of the differing elements that are near-ties (module doc)."""
    own = g != o
    if not own.any() or layer.op not in ("conv2d", "fully_connected"):
        return np.zeros_like(own)
    real = _exact_requant_input(layer, x)
    dist = np.abs(real - np.floor(real) - 0.5)
    # gemmlowp rounds twice: after the doubling high multiply (to 2^shift of an output
    # step for a right shift) and at the shift
    tol = np.exp2(np.minimum(layer.shift, 0)) + TIE_TOLERANCE
    return own & (dist < tol) & (np.abs(g - o) == 1)


def compare(path: str | Path, qnet: QuantizedNetwork, x: np.ndarray,
            optimized: bool) -> Agreement:
    """Run the QDQ model ``path`` (onnxruntime) and its import ``qnet`` (qmac) on float
    NHWC images ``x`` and classify every difference (module doc)."""
    meta = qnet.meta["onnx"]
    names = {INPUT: meta["input_tensor"], **meta["tensors"]}
    chw = dict(meta.get("chw_flattened", {}))
    ox = _Ort(path, optimized)
    gold = inference.run_tensors(qnet, inference.quantize_input(qnet, x))
    n = x.shape[0]
    # the network input: onnxruntime's QuantizeLinear vs qmac's quantize_input
    q_in = ox.session(ox.extractor.extract_model([meta["input"]], [meta["input_tensor"]]))
    xin = ox.run(q_in, {meta["input"]: _to_onnx(np.asarray(x, np.float32), None)})
    input_differ = int((_from_onnx(xin, None).astype(np.int64) != gold[INPUT]).sum())
    # every layer isolated: the golden int8 inputs in, its own arithmetic only
    classes = {c: 0 for c in ("near_tie", "unexplained")}
    per_layer: dict[str, dict[str, int]] = {}
    own_last = None
    for layer in qnet.layers:
        feeds = {}
        qin = [ox.q_writing[names[s]] for s in layer.inputs]
        src_q = [next(q for q in qnet.layers if q.name == s).output if s != INPUT
                 else qnet.input for s in layer.inputs]
        for s, qn, tq in zip(layer.inputs, qin, src_q):
            codes = _to_onnx(gold[s].astype(np.int64), chw.get(s))
            feeds[qn.input[0]] = ((codes - tq.zero_point) * np.float32(tq.scale)
                                  ).astype(np.float32)
        sess = ox.isolated([names[s] for s in layer.inputs], names[layer.name])
        o = _from_onnx(_codes(ox.run(sess, feeds), layer.output), chw.get(layer.name))
        g = gold[layer.name].astype(np.int64)
        tie = _classify(layer, gold[layer.inputs[0]], g, o)
        counts = {"near_tie": int(tie.sum()), "unexplained": int(((g != o) & ~tie).sum())}
        per_layer[layer.name] = counts
        for c in counts:
            classes[c] += counts[c]
        own_last = g != o
    # the whole model: final output only (exposing intermediate tensors would stop fusion)
    last = qnet.layers[-1]
    whole = ox.session(ox.model)
    final = _from_onnx(_codes(ox.run(whole, {meta["input"]: _to_onnx(
        np.asarray(x, np.float32), None)}), last.output), chw.get(last.name))
    g_last = gold[last.name].astype(np.int64).reshape(n, -1)
    o_last = final.reshape(n, -1)
    diff = g_last != o_last
    own = diff & own_last.reshape(n, -1)
    return Agreement(optimized=optimized, images=n,
                     argmax_agree=int((g_last.argmax(1) == o_last.argmax(1)).sum()),
                     output_elements=int(g_last.size), output_differ=int(diff.sum()),
                     max_abs_diff=int(np.abs(g_last - o_last).max(initial=0)),
                     output_classes={"near_tie": int(own.sum()),
                                     "propagated": int((diff & ~own).sum())},
                     classes=classes, per_layer=per_layer, input_differ=input_differ)
