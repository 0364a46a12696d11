"""How the TFLite runtimes differ from LiteRT's reference kernels, op by op.

``python -m pymodel.study.runtimes [--models models/tflite] [--out build/conformance]``
writes ``runtimes.md`` (a markdown report) and ``runtimes.json`` (the same numbers) into
the output directory.  Deterministic: same inputs (the bundled test images and inputs from
``numpy.random.default_rng(seed)``), one thread per interpreter, no timestamps.

Method.  For every committed model and every input (the model's bundled real test images
plus ``--random`` seeded random int8 inputs; for a float-input model the random int8 values
are dequantized with the input QUANTIZE op's parameters):

1. LiteRT's reference kernels (``litert-ref``) run the whole model and keep every tensor.
2. Every operator is cut out into a one-operator model (same tensors and buffers; graph
   inputs = its non-constant inputs, graph outputs = its outputs) and run under each
   runtime of :mod:`pymodel.frontends.runtimes` on the *reference* values of its inputs.
   Its outputs are compared with the reference run's: an op's count is its own kernel's
   difference, not one inherited from an earlier op.  ``litert-ref`` is run the same way,
   as a check that the cut-out is exact (it must show 0 differences).
3. The end-to-end outputs of each model under each runtime are compared as well.

For CONV_2D with a 1x1 kernel and FULLY_CONNECTED the int32 accumulators are recomputed
here (exact integer numpy), and the output is requantized both ways TFLite can
in the ways the runtimes do (:data:`ROUNDING_MODES`), to attribute each runtime's
differences to an arithmetic.

What the LiteRT sources say (tflite/kernels/*.cc and internal/{reference,optimized}/*.h,
read for this study) is in :data:`KERNEL_NOTES`; the report prints it beside the numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from pymodel.arithmetic.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier
from pymodel.frontends import runtimes as rt
from pymodel.frontends.oplist import ModelInfo, OpInfo, read_model

REPO = Path(__file__).resolve().parents[2]
DEFAULT_MODELS = REPO / "models" / "tflite"
DEFAULT_OUT = REPO / "build" / "conformance"
REFERENCE = "litert-ref"

# What the kernels do, from the LiteRT sources (google-ai-edge/LiteRT, tflite/kernels).
# Key: op kind as in the report. Value: one line per runtime that needs a word.
KERNEL_NOTES: dict[str, str] = {
    "CONV_2D": (
        "ref: reference_integer_ops::ConvPerChannel, MultiplyByQuantizedMultiplier, gemmlowp "
        "double rounding (the wheels build with TFLITE_SINGLE_ROUNDING=0; the rounding "
        "table shows 0 differences). opt: im2col + cpu_backend_gemm (ruy); its output stage "
        "measures as double rounding whose final shift rounds ties towards +inf, so it "
        "differs by 1 on negative ties. xnnpack: fp32 requantization (float32 product, "
        "nearest-even) -- FLOATING POINT. tflm: the reference kernel, integer."),
    "FULLY_CONNECTED": (
        "ref: FLOATING POINT -- fully_connected.cc's kReference path calls the "
        "reference_integer_ops::FullyConnected[PerChannel] overloads that take the float "
        "scales and compute round(double(acc) * s_in*s_w/s_out) (\"requant in float to "
        "avoid loss of precision\"). The integer path: tflm (double rounding, 0 "
        "differences in the rounding table). opt: ruy, double rounding with ties up. "
        "xnnpack: fp32 requantization."),
    "DEPTHWISE_CONV_2D": (
        "ref: reference_integer_ops::DepthwiseConvPerChannel (double rounding). opt: "
        "optimized_integer_ops depthwise kernels, same MultiplyByQuantizedMultiplier. "
        "xnnpack: fp32 requantization. tflm: integer like ref."),
    "ADD": ("ref, opt, tflm: integer, left_shift 20, two input multipliers + output "
            "multiplier (double rounding). xnnpack: its own requantization."),
    "SUB": "ref, opt, tflm: integer like ADD (left_shift 20).",
    "MUL": "ref, opt, tflm: integer, one output multiplier on (x-zx)*(y-zy). xnnpack: "
           "its own requantization.",
    "AVERAGE_POOL_2D": "ref, opt, tflm: integer sum, rounded division by the count of the "
                       "valid part of the window.",
    "MAX_POOL_2D": "no arithmetic.",
    "MEAN keep_dims=False": (
        "ref and opt (EvalQuantizedMean -> reference_ops::QuantizedMeanOrSum): integer, "
        "(multiplier << k) / N folded into the output multiplier, applied to "
        "sum - zp_in*N. xnnpack: its own scheme."),
    "MEAN keep_dims=True": (
        "ref: integer (QuantizedMeanOrSum). opt: optimized_integer_ops::Mean (4-D, axes "
        "{1,2}, keep_dims) -- FLOATING POINT zero-point term: bias = zp_out - "
        "round(float(zp_in*s_in/s_out)), multiplier from float s_in/(N*s_out), applied to "
        "the raw sum. xnnpack: its own scheme. tflm: integer like ref."),
    "PAD": "no arithmetic (pads with the zero point).",
    "PADV2": "no arithmetic (pads with the quantized constant).",
    "CONCATENATION": "no arithmetic (int8 requires equal input/output scales; the converter "
                     "inserts an int8->int8 QUANTIZE where they differ).",
    "RESHAPE": "no arithmetic.",
    "SQUEEZE": "no arithmetic.",
    "QUANTIZE float32->int8": "all: round(x / scale) + zp in float (float by nature).",
    "QUANTIZE int8->int8": "ref, opt, tflm: Requantize, integer multiplier (double "
                           "rounding). xnnpack: its own scheme.",
    "DEQUANTIZE": "all: (q - zp) * scale in float (float by nature); opt's vectorized "
                  "kernel rounds the float product differently in the last bit.",
    "SOFTMAX": (
        "ref: reference_ops::Softmax, integer (gemmlowp fixed-point exp, input_multiplier, "
        "diff_min). opt: FLOATING POINT -- PopulateSoftmaxLookupTable fills a float expf "
        "table and the division is in float (equal on these models). tflm: integer like ref."),
    "LOGISTIC": (
        "ref AND opt: FLOATING POINT -- SigmoidPrepare (kReference and kGenericOptimized) "
        "fills a 256-entry table by LUTPopulate with 1/(1+exp(-x)) in float. The integer "
        "fixed-point kernel (kFixedPointOptimized) is not what the BUILTIN / BUILTIN_REF "
        "resolvers register. tflm: reference_integer_ops::Logistic, integer fixed point "
        "-- equal to the float table on every element of these models."),
    "HARD_SWISH": "ref: reference_ops::HardSwish, integer (int16 fixed point); opt: "
                  "optimized_ops::HardSwish, the same integer scheme.",
    "RELU": "ref, opt, tflm: integer requantize (multiplier) + clamp at the zero point.",
    "RELU6": "ref, opt, tflm: integer requantize (multiplier) + clamp.",
    "LEAKY_RELU": "ref, opt, tflm: integer, two multipliers (identity and alpha). "
                  "xnnpack: its own scheme.",
}


# --------------------------------------------------------------------------- helpers
def op_kind(info: ModelInfo, op: OpInfo) -> str:
    """The report's row key: the op name, with the variant where kernels differ by it."""
    if op.name == "QUANTIZE":
        return f"QUANTIZE {info.tensors[op.inputs[0]].dtype}->{info.tensors[op.outputs[0]].dtype}"
    if op.name == "MEAN":
        return f"MEAN keep_dims={op.options.get('keep_dims')}"
    return op.name


def single_op_model(blob: bytes, op_index: int) -> bytes:
    """A copy of ``blob`` whose graph is operator ``op_index`` alone.

    Same tensors and buffers (others stay in the file, unused); graph inputs are the
    operator's non-constant inputs, graph outputs its outputs.  Uses LiteRT's own schema
    module (``ai_edge_litert.schema_py_generated``, object API) to rewrite the flatbuffer.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as fb

    model = fb.ModelT.InitFromPackedBuf(bytearray(blob), 0)
    graph = model.subgraphs[0]
    op = graph.operators[op_index]
    const = set()
    for t in op.inputs:
        if t >= 0:
            buf = model.buffers[graph.tensors[t].buffer]
            if buf.data is not None and len(buf.data) > 0:
                const.add(int(t))
    graph.operators = [op]
    graph.inputs = [int(t) for t in op.inputs if t >= 0 and int(t) not in const]
    graph.outputs = [int(t) for t in op.outputs]
    model.signatureDefs = []
    builder = flatbuffers.Builder(len(blob) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _activation_bounds(fused: str, scale: float, zp: int) -> tuple[int, int]:
    """TFLite's CalculateActivationRangeQuantized for int8 (float32 arithmetic)."""
    def q(f: float) -> int:
        v = np.float32(f) / np.float32(scale)
        return zp + int(np.sign(v) * np.floor(np.abs(v) + np.float32(0.5)))
    lo, hi = -128, 127
    if fused == "RELU":
        lo = max(lo, q(0.0))
    elif fused == "RELU6":
        lo, hi = max(lo, q(0.0)), min(hi, q(6.0))
    elif fused == "RELU_N1_TO_1":
        lo, hi = max(lo, q(-1.0)), min(hi, q(1.0))
    return lo, hi


def requantize_double(acc: np.ndarray, m0: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """gemmlowp double rounding (TFLite's default MultiplyByQuantizedMultiplier): the
    golden model's :func:`~pymodel.arithmetic.fixedpoint.multiply_by_quantized_multiplier`."""
    return np.asarray(multiply_by_quantized_multiplier(acc.astype(np.int32), m0, shift), np.int64)


def requantize_double_ties_up(acc: np.ndarray, m0: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Like :func:`requantize_double`, but the final rounding right shift rounds ties
    towards +inf: ``(y + 2^(e-1)) >> e`` (what LiteRT's optimized GEMM path measures as)."""
    y = np.asarray(multiply_by_quantized_multiplier(
        acc.astype(np.int32), m0, np.maximum(shift, 0)), np.int64)
    e = np.broadcast_to(np.maximum(-np.asarray(shift, np.int64), 0), y.shape)
    rounded = (y + np.left_shift(np.int64(1), np.maximum(e - 1, 0))) >> e
    return np.where(e > 0, rounded, y)


def requantize_single(acc: np.ndarray, m0: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """TFLITE_SINGLE_ROUNDING's MultiplyByQuantizedMultiplier:
    ``(acc * m0 + 2^(30 - shift)) >> (31 - shift)``, one rounding, ties towards +inf.
    Hand-written here because the golden model's single-rounding mode is another task."""
    total = 31 - np.asarray(shift, np.int64)
    # |acc| < 2^31 and m0 < 2^31: the product and the rounding term fit in int64.
    prod = acc.astype(np.int64) * np.asarray(m0, np.int64)
    return (prod + np.left_shift(np.int64(1), total - 1)) >> total


def requantize_float64(acc: np.ndarray, real: np.ndarray) -> np.ndarray:
    """LiteRT's reference FULLY_CONNECTED: ``round(double(acc) * double(scale))``, round
    half away from zero (reference_integer_ops::FullyConnectedPerChannel, float scales)."""
    y = acc.astype(np.float64) * real
    return (np.sign(y) * np.floor(np.abs(y) + 0.5)).astype(np.int64)


def requantize_float32_even(acc: np.ndarray, real: np.ndarray) -> np.ndarray:
    """fp32 requantization as XNNPACK's qs8 kernels do it: float32(acc) * float32(scale),
    rounded to nearest, ties to even."""
    y = acc.astype(np.float32) * real.astype(np.float32)
    return np.rint(y).astype(np.int64)


ROUNDING_MODES = ("double", "double, ties up", "single", "float64", "float32 even")


def gemm_outputs(info: ModelInfo, op: OpInfo, x: np.ndarray) -> dict[str, np.ndarray] | None:
    """Outputs of a 1x1 stride-1 CONV_2D or a FULLY_CONNECTED under each of
    :data:`ROUNDING_MODES`, from exactly recomputed int32 accumulators.

    ``x``: the op's int8 input over the batch, (N, ...).  Returns None for other ops.
    """
    if op.name not in ("CONV_2D", "FULLY_CONNECTED"):
        return None
    w_t = info.tensors[op.inputs[1]]
    b_t = info.tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    t_in, t_out = info.tensors[op.inputs[0]], info.tensors[op.outputs[0]]
    if op.name == "CONV_2D":
        if w_t.shape[1:3] != (1, 1) or op.options["stride_h"] != 1 or op.options["stride_w"] != 1:
            return None
        w = w_t.data.reshape(w_t.shape[0], -1).astype(np.int64)          # (C_out, C_in)
    elif op.name == "FULLY_CONNECTED":
        w = w_t.data.astype(np.int64)                                   # (C_out, C_in)
    else:
        return None
    xi = x.reshape(-1, w.shape[1]).astype(np.int64) - t_in.zero_point[0]
    acc = xi @ w.T
    if b_t is not None and b_t.data is not None:
        acc = acc + b_t.data.astype(np.int64)
    w_scale = np.asarray(w_t.scale, np.float32).astype(np.float64)
    real = np.float64(np.float32(t_in.scale[0])) * w_scale / np.float64(np.float32(t_out.scale[0]))
    real = np.broadcast_to(real, (w.shape[0],)).copy()
    m0, shift = quantize_multiplier(real)
    m0, shift = np.asarray(m0, np.int64), np.asarray(shift, np.int64)
    lo, hi = _activation_bounds(op.options["fused_activation_function"], t_out.scale[0],
                                t_out.zero_point[0])
    ys = {
        "double": requantize_double(acc, m0[None, :], shift[None, :]),
        "double, ties up": requantize_double_ties_up(acc, m0[None, :], shift[None, :]),
        "single": requantize_single(acc, m0[None, :], shift[None, :]),
        "float64": requantize_float64(acc, real[None, :]),
        "float32 even": requantize_float32_even(acc, real[None, :]),
    }
    return {mode: np.clip(y + t_out.zero_point[0], lo, hi).reshape(
        (len(x),) + t_out.shape[1:]).astype(np.int8) for mode, y in ys.items()}


# Element-wise ops with one int8 input: 256 possible input values, tested exhaustively.
UNARY = ("LOGISTIC", "HARD_SWISH", "LEAKY_RELU", "RELU", "RELU6", "QUANTIZE", "DEQUANTIZE")


def all_int8_values(shape: tuple[int, ...]) -> np.ndarray:
    """Every int8 value -128..127 at least once, as a batch of tensors of ``shape``
    (batch axis first: ceil(256 / size) images, values cycled)."""
    size = int(np.prod(shape[1:]))
    n = -(-256 // size)
    values = np.resize(np.arange(-128, 128, dtype=np.int64), n * size)
    return values.astype(np.int8).reshape((n,) + tuple(shape[1:]))


# --------------------------------------------------------------------------- the study
@dataclass
class Tally:
    """Elements compared / differing and the largest |difference| for one (op, runtime)."""

    compared: int = 0
    differing: int = 0
    max_abs: float = 0.0
    ops: set = field(default_factory=set)

    def add(self, a: np.ndarray, b: np.ndarray) -> None:
        d = np.abs(a.astype(np.float64) - b.astype(np.float64))
        self.compared += int(d.size)
        self.differing += int(np.count_nonzero(a != b))
        if d.size:
            self.max_abs = max(self.max_abs, float(d.max()))


def model_inputs(path: Path, info: ModelInfo, n_random: int, seed: int) -> tuple[np.ndarray, int]:
    """The bundled real images followed by ``n_random`` seeded random int8 inputs.

    Returns (x, n_real); x has the model's input dtype (float32 inputs get the random int8
    values dequantized with the input QUANTIZE op's scale and zero point)."""
    d = np.load(path.with_name(path.stem + "_test.npz"))
    t_in = info.tensors[info.inputs[0]]
    rng = np.random.default_rng(seed)
    q = rng.integers(-128, 128, size=(n_random,) + t_in.shape[1:], dtype=np.int64)
    if t_in.dtype == "float32":
        real = d["x_float"]
        scale, zp = float(d["input_scale"]), int(d["input_zero_point"])
        rand = ((q - zp) * np.float32(scale)).astype(np.float32)
    else:
        real = d["x_int8"]
        rand = q.astype(np.int8)
    return np.concatenate([real, rand]), len(real)


def study(models_dir: Path = DEFAULT_MODELS, n_random: int = 64, seed: int = 0,
          names: list[str] | None = None) -> dict:
    """Run the comparison; returns a JSON-ready dict (see :func:`render_markdown`)."""
    paths = sorted(models_dir.glob("*.tflite"))
    if names:
        paths = [p for p in paths if p.stem in names]
    runtimes = [r for r in rt.RUNTIMES if rt.available(r)]
    per_op: dict[tuple[str, str], Tally] = {}
    rounding: dict[tuple[str, str, str], int] = {}
    xnn_taken: dict[str, set] = {}
    end_to_end = []
    exhaustive: dict[tuple[str, str], Tally] = {}
    inputs_desc = []
    for k, path in enumerate(paths):
        blob = path.read_bytes()
        info = read_model(blob)
        x, n_real = model_inputs(path, info, n_random, seed + k)
        inputs_desc.append((path.stem, n_real, len(x) - n_real))
        full = {r: rt.run(blob, x, r) for r in runtimes}
        ref = full[REFERENCE]
        for r in runtimes:
            for t in info.outputs:
                e = Tally()
                e.add(full[r].tensors[t], ref.tensors[t])
                top1 = float(np.mean(
                    np.argmax(full[r].tensors[t].reshape(len(x), -1), 1)
                    == np.argmax(ref.tensors[t].reshape(len(x), -1), 1)))
                end_to_end.append({"model": path.stem, "runtime": r, "compared": e.compared,
                                   "differing": e.differing, "max_abs": e.max_abs,
                                   "top1_agreement": top1})
        for op in info.ops:
            kind = op_kind(info, op)
            single = single_op_model(blob, op.index)
            sinfo = read_model(single)
            if op.name in UNARY and info.tensors[op.inputs[0]].dtype == "int8":
                xa = all_int8_values(info.tensors[op.inputs[0]].shape)
                outs = {r: rt.run(single, [xa], r).tensors[op.outputs[0]] for r in runtimes}
                for r in runtimes:
                    tally = exhaustive.setdefault((kind, r), Tally())
                    tally.ops.add(f"{path.stem}#{op.index}")
                    tally.add(outs[r], outs[REFERENCE])
            xs = [ref.tensors[t] for t in sinfo.inputs]
            xnn_taken.setdefault(kind, set()).add(rt.delegated_ops(single))
            gem = gemm_outputs(info, op, ref.tensors[op.inputs[0]])
            for r in runtimes:
                res = rt.run(single, xs, r)
                tally = per_op.setdefault((kind, r), Tally())
                tally.ops.add(f"{path.stem}#{op.index}")
                for t in op.outputs:
                    tally.add(res.tensors[t], ref.tensors[t])
                if gem is not None:
                    out = res.tensors[op.outputs[0]]
                    for mode, y in gem.items():
                        key = (op.name, r, mode)
                        rounding[key] = rounding.get(key, 0) + int(np.count_nonzero(out != y))
                    key = (op.name, r, "elements")
                    rounding[key] = rounding.get(key, 0) + int(out.size)
    rows = []
    for (kind, r), t in sorted(per_op.items(), key=lambda kv: (kv[0][0], runtimes.index(kv[0][1]))):
        rows.append({"op": kind, "runtime": r, "compared": t.compared, "differing": t.differing,
                     "max_abs": t.max_abs, "ops": sorted(t.ops)})
    return {
        "versions": {p: _version(p) for p in ("ai-edge-litert", "tflite-micro", "tflite")},
        "runtimes": runtimes,
        "seed": seed,
        "inputs": [{"model": m, "real": a, "random": b} for m, a, b in inputs_desc],
        "per_op": rows,
        "xnnpack_delegates": {k: sorted(v) == [True] for k, v in sorted(xnn_taken.items())},
        "end_to_end": end_to_end,
        "exhaustive": [{"op": k, "runtime": r, "compared": t.compared, "differing": t.differing,
                        "max_abs": t.max_abs, "ops": sorted(t.ops)}
                       for (k, r), t in sorted(exhaustive.items(),
                                               key=lambda kv: (kv[0][0], runtimes.index(kv[0][1])))],
        "rounding": [{"op": o, "runtime": r, "mode": m, "count": c}
                     for (o, r, m), c in sorted(rounding.items())],
    }


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "not installed"


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.6g}"


def render_markdown(res: dict) -> str:
    """The report: per-op table, rounding attribution, end-to-end table, kernel notes."""
    runtimes = res["runtimes"]
    v = res["versions"]
    lines = [
        "# TFLite runtimes vs LiteRT's reference kernels",
        "",
        "Generated by `python -m pymodel.study.runtimes` (deterministic).  Runtimes: "
        + ", ".join(f"`{r}` ({rt.RUNTIMES[r]})" for r in runtimes)
        + f".  Versions: ai-edge-litert {v['ai-edge-litert']}, tflite-micro {v['tflite-micro']}.",
        "",
        "Inputs per model (real = bundled test images, random = int8 drawn with seed "
        f"{res['seed']} + model index): "
        + "; ".join(f"{d['model']} {d['real']} real + {d['random']} random" for d in res["inputs"])
        + ".",
        "",
        "## Per operator (each op alone, fed the reference run's inputs)",
        "",
        "Elements differing from `litert-ref` / elements compared (max |diff|, in output "
        "quanta; float for DEQUANTIZE).  XNNPACK: whether the default interpreter hands the "
        "op to the XNNPACK delegate (otherwise the optimized builtin kernel runs it).",
        "",
        "| op | " + " | ".join(runtimes) + " | XNNPACK takes it |",
        "|---|" + "---|" * len(runtimes) + "---|",
    ]
    by_op: dict[str, dict[str, dict]] = {}
    for row in res["per_op"]:
        by_op.setdefault(row["op"], {})[row["runtime"]] = row
    for kind, cells in by_op.items():
        parts = []
        for r in runtimes:
            c = cells.get(r)
            if c is None:
                parts.append("-")
            else:
                parts.append(f"{c['differing']} / {c['compared']}"
                             + (f" ({_num(c['max_abs'])})" if c["differing"] else ""))
        taken = "yes" if res["xnnpack_delegates"].get(kind) else "no"
        lines.append(f"| {kind} | " + " | ".join(parts) + f" | {taken} |")
    lines += ["", "## Rounding attribution (1x1 CONV_2D and FULLY_CONNECTED)", "",
              "Elements of each runtime's output that differ from the exactly recomputed "
              "int32 accumulators requantized: *double* = gemmlowp SaturatingRoundingDoubling"
              "HighMul + RoundingDivideByPOT (ties away from zero), TFLite's default; *double, "
              "ties up* = the same with the final shift rounding ties towards +inf; *single* = "
              "TFLITE_SINGLE_ROUNDING; *float64* = round(acc * double scale), half away from "
              "zero; *float32 even* = float32 product rounded to nearest even.  A 0 names the "
              "runtime's arithmetic.", "",
              "| op | runtime | elements | " + " | ".join(ROUNDING_MODES) + " |",
              "|---|---|---|" + "---|" * len(ROUNDING_MODES)]
    rnd: dict[tuple[str, str], dict[str, int]] = {}
    for row in res["rounding"]:
        rnd.setdefault((row["op"], row["runtime"]), {})[row["mode"]] = row["count"]
    for (o, r), c in sorted(rnd.items(), key=lambda kv: (kv[0][0], runtimes.index(kv[0][1]))):
        lines.append(f"| {o} | {r} | {c.get('elements', 0)} | "
                     + " | ".join(str(c.get(m, 0)) for m in ROUNDING_MODES) + " |")
    lines += ["", "## Element-wise ops on all 256 int8 inputs", "",
              "Each one-input element-wise op of the models fed every int8 value: elements "
              "differing from `litert-ref` / compared (max |diff|).  Exhaustive, so a 0 "
              "here is equality of the whole 256-entry function.", "",
              "| op | " + " | ".join(runtimes) + " |", "|---|" + "---|" * len(runtimes)]
    ex: dict[str, dict[str, dict]] = {}
    for row in res["exhaustive"]:
        ex.setdefault(row["op"], {})[row["runtime"]] = row
    for kind, cells in ex.items():
        parts = [f"{c['differing']} / {c['compared']}"
                 + (f" ({_num(c['max_abs'])})" if c["differing"] else "")
                 for c in (cells[r] for r in runtimes)]
        lines.append(f"| {kind} | " + " | ".join(parts) + " |")
    lines += ["", "## End to end (graph outputs, each runtime running the whole model)", "",
              "| model | runtime | differing / compared | max abs diff | top-1 agreement |",
              "|---|---|---|---|---|"]
    for e in res["end_to_end"]:
        lines.append(f"| {e['model']} | {e['runtime']} | {e['differing']} / {e['compared']} | "
                     f"{_num(e['max_abs'])} | {e['top1_agreement']:.3f} |")
    lines += ["", "## What the kernels do (LiteRT sources)", ""]
    for kind in by_op:
        note = KERNEL_NOTES.get(kind)
        if note:
            lines.append(f"- **{kind}**: {note}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pymodel.study.runtimes",
                                 description="Compare the TFLite runtimes op by op.")
    ap.add_argument("--models", type=Path, default=DEFAULT_MODELS,
                    help="folder of .tflite models with <name>_test.npz (default models/tflite)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help="output folder for runtimes.md / runtimes.json (default build/conformance)")
    ap.add_argument("--random", type=int, default=64, help="seeded random inputs per model")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    ap.add_argument("--only", nargs="*", help="model names (default: all)")
    args = ap.parse_args(argv)
    if not args.models.is_dir() or not any(args.models.glob("*.tflite")):
        print(f"qmac: --models: {str(args.models)!r} holds no .tflite file", file=sys.stderr)
        return 2
    if args.random < 0:
        print(f"qmac: --random: {args.random} is negative; give a count >= 0", file=sys.stderr)
        return 2
    res = study(args.models, args.random, args.seed, args.only)
    args.out.mkdir(parents=True, exist_ok=True)
    md, js = args.out / "runtimes.md", args.out / "runtimes.json"
    tmp_md, tmp_js = md.with_suffix(".md.tmp"), js.with_suffix(".json.tmp")
    tmp_md.write_text(render_markdown(res))
    tmp_js.write_text(json.dumps(res, indent=1, sort_keys=True) + "\n")
    tmp_md.replace(md)
    tmp_js.replace(js)
    print(f"wrote {md} and {js}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
