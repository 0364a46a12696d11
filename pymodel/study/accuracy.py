"""The accuracy study behind ``make accuracy``: PTQ of the digits CNN, every calibrator.

:func:`run_study` computes, from the shipped float weights and the fixed split
(:mod:`pymodel.datasets`):

* FP32 test accuracy;
* for every calibrator x {per-tensor, per-channel} weights x {INT8, INT4} weights
  (activations INT8): test accuracy, its change vs FP32, agreement with the FP32
  predictions and the SQNR of the network output (dequantized int8 logits vs float);
* the *selected* INT8 configuration: per-channel weights with the calibrator of highest
  output SQNR **on the calibration set** (the test set never chooses anything);
* per-layer sensitivity (one layer's weights in INT4 at a time, calibration set) and
  the mixed-bit network that gives INT4 to the least sensitive layers until the
  parameter-weighted average is <= 6 bits per weight (and, for contrast, the same
  budget spent on the most sensitive layers first);
* per-layer SQNR between float outputs and dequantized integer outputs;
* each quantized tensor's ``|x|`` histogram with the threshold of every calibrator;
* accuracy preservation and QAT (:func:`run_preservation`): for W8A8 / W4A8 / W3A8 /
  W4A4 (per-channel and per-tensor weights) PTQ, PTQ + bias correction, PTQ +
  cross-layer equalization, PTQ + both, QAT (EMA ranges) and QAT with learned (LSQ)
  scales; the mixed-bit network after QAT; integer == fake-quant agreement of every QAT
  network on every test image; what the textbook float-rescaling fake quant would change.

:func:`write_report` renders ``docs/accuracy.md`` and ``docs/img/*.png``.  Everything is
deterministic (fixed split, fixed training seed, no timings or dates in the output).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pymodel import atomicio, datasets

from pymodel.quantization import bias_correction, cle, ptq, qat

from pymodel.training import digits

from pymodel.graph import inference
from pymodel.graph.artifact import QuantizedNetwork
from pymodel.calibration.calibrators import CalibratorSpec, TensorStats, calibrated_range
from pymodel.graph.network import Network

CALIBRATORS = ("minmax", "ema", "percentile:99.9", "percentile:99.99", "percentile:99.999",
               "entropy", "mse")
GRANULARITIES = ("per_tensor", "per_channel")
MIXED_BUDGET_BITS = 6.0
ACCEPT_DROP_PP = 0.5
#: Accuracy-preservation table: (label, weight bits, weight granularity, activation bits).
PRESERVE_CONFIGS = (("W8A8 per-channel", 8, "per_channel", 8),
                    ("W4A8 per-channel", 4, "per_channel", 8),
                    ("W4A8 per-tensor", 4, "per_tensor", 8),
                    ("W3A8 per-channel", 3, "per_channel", 8),
                    ("W3A8 per-tensor", 3, "per_tensor", 8),
                    ("W4A4 per-channel", 4, "per_channel", 4))
PRESERVE_METHODS = ("PTQ", "PTQ+BC", "PTQ+CLE", "PTQ+CLE+BC", "QAT", "QAT+LSQ")
#: The QAT recipe of the study (fixed a priori: 1/10 of the float learning rate, a few
#: epochs, the last two with frozen ranges; the test set chooses nothing).
QAT_RECIPE = qat.QATConfig()
QAT_TARGET_PP = 1.0


def sqnr_db(ref: np.ndarray, test: np.ndarray) -> float:
    """``10 log10(sum ref^2 / sum (ref - test)^2)`` in dB (``inf`` if identical)."""
    ref = np.asarray(ref, np.float64)
    err = float(np.sum((ref - np.asarray(test, np.float64)) ** 2))
    sig = float(np.sum(ref ** 2))
    if err == 0.0:
        return math.inf
    return 10.0 * math.log10(sig / err) if sig > 0 else -math.inf


@dataclass(frozen=True)
class Eval:
    """One quantized configuration evaluated on one split.

    Attributes:
        accuracy: fraction correct.
        agreement: fraction of images where the int8 prediction equals the FP32 one.
        sqnr_db: SQNR of the dequantized int8 logits vs the float logits.
    """

    accuracy: float
    agreement: float
    sqnr_db: float


def evaluate(qnet: QuantizedNetwork, x: np.ndarray, y: np.ndarray,
             float_logits: np.ndarray) -> Eval:
    """Accuracy, agreement with FP32 and output SQNR of an artifact on ``(x, y)``."""
    q = inference.logits(qnet, x)
    pred = q.argmax(axis=1)
    deq = inference.dequantize(q, qnet.output)
    return Eval(float(np.mean(pred == y)), float(np.mean(pred == float_logits.argmax(axis=1))),
                sqnr_db(float_logits, deq))


def layer_sqnr(net: Network, qnet: QuantizedNetwork, x: np.ndarray) -> dict[str, float]:
    """SQNR (dB) of every weight layer's output: float network vs dequantized integer
    network, both run end to end from the same images (errors accumulate)."""
    f_outs = net.forward_all(x)
    q_outs = inference.run_network(qnet, inference.quantize_input(qnet, x))
    out = {"input": sqnr_db(x, inference.dequantize(inference.quantize_input(qnet, x),
                                                   qnet.input))}
    for spec, f, q, ql in zip(net.layers, f_outs, q_outs, qnet.layers):
        if spec.has_weights:
            out[spec.name] = sqnr_db(f, inference.dequantize(q, ql.output))
    return out


@dataclass
class Study:
    """Results of :func:`run_study` (see the module docstring)."""

    fp32_accuracy: float
    n_test: int
    n_calib: int
    n_train: int
    grid: dict[tuple[str, str, int], Eval] = field(default_factory=dict)
    grid_calib: dict[tuple[str, str, int], Eval] = field(default_factory=dict)
    selected: str = ""
    selected_eval: Eval | None = None
    sensitivity: list[dict[str, Any]] = field(default_factory=list)
    mixed: dict[str, Any] = field(default_factory=dict)
    layer_sqnr: dict[str, dict[str, float]] = field(default_factory=dict)
    ranges: dict[str, dict[str, tuple[float, float, float | None]]] = field(default_factory=dict)
    weight_layers: list[tuple[str, int]] = field(default_factory=list)
    stats: dict[str, TensorStats] = field(default_factory=dict)
    artifacts: dict[str, QuantizedNetwork] = field(default_factory=dict)
    preservation: "Preservation | None" = None


def _config(net: Network, cal: str, gran: str, bits: int,
            layer_bits: dict[str, int] | None = None) -> Network:
    return net.with_overrides(calibrator=CalibratorSpec.parse(cal), granularity=gran,
                              weight_bits=bits, layer_weight_bits=layer_bits)


def run_study(progress: bool = True, qat_runs: bool = True) -> Study:
    """Run the whole study on the shipped digits CNN (PTQ part: a few seconds; with
    ``qat_runs`` also :func:`run_preservation`, about two minutes on one core)."""
    from tqdm import tqdm

    net = digits.load()
    tr, cal, te = (datasets.digits(s) for s in ("train", "calib", "test"))
    f_test = net.forward(te.x)
    f_cal = net.forward(cal.x)
    st = Study(fp32_accuracy=float(np.mean(f_test.argmax(axis=1) == te.y)), n_test=len(te),
               n_calib=len(cal), n_train=len(tr))
    st.weight_layers = [(s.name, int(np.prod(s.weight_shape))) for s in net.weight_layers]
    stats = ptq.collect_stats(net, datasets.batches(cal.x, 32), progress=progress,
                              total=-(-len(cal) // 32))
    st.stats = stats

    def build(cal_name: str, gran: str, bits: int,
              layer_bits: dict[str, int] | None = None) -> QuantizedNetwork:
        return ptq.quantize_network(_config(net, cal_name, gran, bits, layer_bits), stats,
                                    {"calibration": {"dataset": "digits", "split": "calib",
                                                     "images": len(cal), "batch_size": 32}})

    jobs = [(c, g, b) for b in (8, 4) for g in GRANULARITIES for c in CALIBRATORS]
    for c, g, b in tqdm(jobs, desc="evaluate", unit="config", disable=not progress,
                        leave=False):
        q = build(c, g, b)
        st.grid[(c, g, b)] = evaluate(q, te.x, te.y, f_test)
        st.grid_calib[(c, g, b)] = evaluate(q, cal.x, cal.y, f_cal)

    # Selection on the calibration set only: best output SQNR, INT8 per-channel.
    st.selected = max(CALIBRATORS, key=lambda c: (st.grid_calib[(c, "per_channel", 8)].sqnr_db,
                                                  -CALIBRATORS.index(c)))
    st.selected_eval = st.grid[(st.selected, "per_channel", 8)]
    st.artifacts["int8"] = build(st.selected, "per_channel", 8)

    # Ranges every calibrator picks, per tensor.
    for name, s in stats.items():
        scheme = net.input_scheme if name == ptq.INPUT else net.layer(name).activations
        st.ranges[name] = {}
        for c in CALIBRATORS:
            r = calibrated_range(s, CalibratorSpec.parse(c), scheme.bits, scheme.symmetric)
            st.ranges[name][c] = (r.rmin, r.rmax, r.threshold)

    # Sensitivity: one layer's weights at INT4 (per-channel), the rest INT8.
    base = st.grid_calib[(st.selected, "per_channel", 8)]
    for name, n in st.weight_layers:
        e = evaluate(build(st.selected, "per_channel", 8, {name: 4}), cal.x, cal.y, f_cal)
        st.sensitivity.append({"layer": name, "weights": n, "sqnr_db": e.sqnr_db,
                               "accuracy": e.accuracy,
                               "drop_pp": 100 * (base.accuracy - e.accuracy)})
    ranked = sorted(st.sensitivity, key=lambda r: (-r["sqnr_db"], r["layer"]))
    st.mixed = _mixed(build, ranked, st.weight_layers, te, f_test, st.selected)
    st.artifacts["mixed"] = st.mixed.pop("artifact")

    configs = {"W8A8 per-tensor": build(st.selected, "per_tensor", 8),
               "W8A8 per-channel": st.artifacts["int8"],
               "W4A8 per-channel": build(st.selected, "per_channel", 4),
               "mixed": st.artifacts["mixed"]}
    for label, q in configs.items():
        st.layer_sqnr[label] = layer_sqnr(net, q, te.x)
    if qat_runs:
        st.preservation = run_preservation(net, tr, cal, te, f_test, st.selected,
                                           st.mixed["bits"], progress)
        st.artifacts.update(st.preservation.artifacts)
    return st


# ----------------------------------------------------------------------------------------
# Accuracy preservation after PTQ, and QAT
# ----------------------------------------------------------------------------------------

@dataclass
class Preservation:
    """Results of :func:`run_preservation`.

    Attributes:
        evals: ``{(config label, method): Eval}`` on the test set.
        agreement: ``{(config label, method): qat.Agreement}`` for the QAT methods:
            fake-quant vs converted integer network, every test image.
        cle: ``pymodel.quantization.cle.Result.summary()``; cle_max_change: largest ``|float output
            change|`` on the test set after equalization; cle_output_max: largest
            ``|float output|`` (for scale).
        cle_ranges: ``{layer: (min/max ratio of per-channel weight ranges before,
            after)}``.
        bc_error: ``{layer: (before, after)}``: mean over channels of ``|mean output
            error|`` (dequantized integer vs float, test set), W4A8 per-channel.
        float_mode: textbook float-rescaling fake quant vs the integer network for the
            W4A8 per-tensor QAT network: differing predictions / logits.
        mixed: the mixed-bit network after QAT (bits, average, evals).
        recipe: the QAT recipe.
        artifacts: QAT artifacts (``w4a8_qat``, ``mixed_qat``).
    """

    evals: dict[tuple[str, str], Eval] = field(default_factory=dict)
    agreement: dict[tuple[str, str], qat.Agreement] = field(default_factory=dict)
    cle: dict[str, Any] = field(default_factory=dict)
    cle_max_change: float = 0.0
    cle_output_max: float = 0.0
    cle_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    bc_error: dict[str, tuple[float, float]] = field(default_factory=dict)
    float_mode: dict[str, int] = field(default_factory=dict)
    mixed: dict[str, Any] = field(default_factory=dict)
    recipe: qat.QATConfig = QAT_RECIPE
    artifacts: dict[str, QuantizedNetwork] = field(default_factory=dict)


def channel_mean_error(net: Network, qnet: QuantizedNetwork, x: np.ndarray) -> dict[str, float]:
    """Per weight layer: the mean over output channels of ``|mean error|``, the error
    being dequantized integer output minus float output, averaged over images and
    pixels (the per-channel output shift bias correction targets)."""
    f_outs = net.forward_all(x)
    q_outs = inference.run_network(qnet, inference.quantize_input(qnet, x))
    out = {}
    for spec, f, q, ql in zip(net.layers, f_outs, q_outs, qnet.layers):
        if spec.has_weights:
            d = inference.dequantize(q, ql.output) - f
            out[spec.name] = float(np.mean(np.abs(d.reshape(-1, d.shape[-1]).mean(axis=0))))
    return out


def _spread(r: np.ndarray) -> float:
    """max / median of the per-channel weight ranges: how much larger the per-tensor
    range is than a typical channel's (1 = balanced)."""
    med = float(np.median(r))
    return float(r.max()) / med if med > 0 else math.inf


def run_preservation(net: Network, tr: datasets.Split, cal: datasets.Split,
                     te: datasets.Split, f_test: np.ndarray, calibrator: str,
                     mixed_bits: dict[str, int], progress: bool = True) -> Preservation:
    """Every row of :data:`PRESERVE_CONFIGS` with every method of
    :data:`PRESERVE_METHODS` (about a minute and a half: two QAT runs per row)."""
    from tqdm import tqdm

    pr = Preservation()
    cal_spec = CalibratorSpec.parse(calibrator)
    base = net.with_overrides(calibrator=cal_spec)
    eq_net, eq_info = ptq.prepare(base.with_overrides(equalization=True))
    pr.cle = eq_info
    f_eq = eq_net.forward(te.x)
    pr.cle_max_change = float(np.max(np.abs(f_eq - f_test)))
    pr.cle_output_max = float(np.max(np.abs(f_test)))
    r0, r1 = cle.ranges(base), cle.ranges(eq_net)
    pr.cle_ranges = {k: (_spread(r0[k]), _spread(r1[k])) for k in r0}
    floats = {"": base, "CLE": eq_net}
    stats = {k: ptq.collect_stats(n, datasets.batches(cal.x, 32)) for k, n in floats.items()}
    means = {k: bias_correction.collect_input_means(
        n, datasets.batches(cal.x, 32), [s.name for s in n.weight_layers])
        for k, n in floats.items()}
    meta = {"calibration": {"dataset": "digits", "split": "calib", "images": len(cal),
                            "batch_size": 32}}
    jobs = [(c, m) for c in PRESERVE_CONFIGS for m in PRESERVE_METHODS]
    bar = tqdm(jobs, desc="preserve/QAT", unit="run", disable=not progress, leave=False)
    for (label, wb, gran, ab), method in bar:
        cfg = base.with_overrides(weight_bits=wb, granularity=gran, activation_bits=ab)
        if method.startswith("PTQ"):
            key = "CLE" if "CLE" in method else ""
            n = floats[key].with_overrides(weight_bits=wb, granularity=gran,
                                           activation_bits=ab,
                                           bias_correction="BC" in method)
            q = ptq.quantize_network(n, stats[key], meta, means[key])
            pr.evals[(label, method)] = evaluate(q, te.x, te.y, f_test)
            if method in ("PTQ", "PTQ+BC") and label == "W4A8 per-channel":
                pr.bc_error[method] = channel_mean_error(n, q, te.x)  # type: ignore[assignment]
            continue
        recipe = dataclasses.replace(QAT_RECIPE, lsq=method == "QAT+LSQ")
        qn, _ = qat.finetune(cfg, tr.x, tr.y, cal.x, recipe)
        art = qat.convert(qn, {**meta, "qat": recipe.to_meta()})
        pr.evals[(label, method)] = evaluate(art, te.x, te.y, f_test)
        pr.agreement[(label, method)] = qat.compare(qn, art, te.x)
        if label == "W4A8 per-tensor" and method == "QAT":
            pr.artifacts["w4a8_qat"] = art
            qn.mode = "float"                    # the textbook fake quant, same weights
            ag = qat.compare(qn, art, te.x)
            pr.float_mode = {"images": ag.images,
                             "differing_predictions": ag.images - ag.same_prediction,
                             "differing_logits": ag.images - ag.same_logits,
                             "max_logit_diff": ag.max_logit_diff}
            qn.mode = "integer"
    before, after = pr.bc_error.pop("PTQ"), pr.bc_error.pop("PTQ+BC")  # type: ignore[misc]
    pr.bc_error = {k: (before[k], after[k]) for k in before}  # type: ignore[index]

    # The mixed-bit network of the sensitivity study, fine-tuned.
    mcfg = base.with_overrides(granularity="per_channel", weight_bits=8,
                               layer_weight_bits={k: v for k, v in mixed_bits.items()
                                                  if v != 8})
    q_ptq = ptq.quantize_network(mcfg, stats[""], meta)
    qn, _ = qat.finetune(mcfg, tr.x, tr.y, cal.x, QAT_RECIPE)
    art = qat.convert(qn, {**meta, "qat": QAT_RECIPE.to_meta()})
    pr.artifacts["mixed_qat"] = art
    pr.mixed = {"bits": dict(mixed_bits), "average": mcfg.weight_bits_average(),
                "ptq": evaluate(q_ptq, te.x, te.y, f_test),
                "qat": evaluate(art, te.x, te.y, f_test),
                "agreement": qat.compare(qn, art, te.x)}
    return pr


def choose_mixed_bits(ranked: list[tuple[str, int]], budget: float = MIXED_BUDGET_BITS,
                      low: int = 4, high: int = 8) -> tuple[dict[str, int], list[str]]:
    """Weight bits per layer under a parameter-weighted average budget.

    Greedy on sensitivity: walk the layers from least to most sensitive, giving each
    ``low`` bits, until the average is <= ``budget``; then walk back over the layers given
    ``low`` bits, most sensitive first, and restore ``high`` bits wherever the budget
    still holds (a layer taken early may be unnecessary once a large one is taken).

    Args:
        ranked: ``(layer, number of weights)`` from least to most sensitive.
        budget: the average bits per weight not to exceed.

    Returns:
        ``({layer: bits}, log)`` with a line per step.
    """
    total = sum(n for _, n in ranked)
    bits = {name: high for name, _ in ranked}

    def avg() -> float:
        return sum(bits[name] * n for name, n in ranked) / total

    log = []
    for name, _ in ranked:
        if avg() <= budget:
            break
        bits[name] = low
        log.append(f"{name} -> INT{low}: {avg():.2f} bits/weight")
    for name, _ in reversed(ranked):
        if bits[name] == low:
            bits[name] = high
            if avg() <= budget:
                log.append(f"{name} back to INT{high} (budget still met): {avg():.2f} "
                           "bits/weight")
            else:
                bits[name] = low
    return bits, log


def _mixed(build: Any, ranked: list[dict[str, Any]], weight_layers: list[tuple[str, int]],
           te: datasets.Split, f_test: np.ndarray, cal: str) -> dict[str, Any]:
    sizes = dict(weight_layers)
    bits, log = choose_mixed_bits([(r["layer"], sizes[r["layer"]]) for r in ranked])
    total = sum(sizes.values())
    avg = sum(bits[k] * sizes[k] for k in bits) / total
    q = build(cal, "per_channel", 8, {k: v for k, v in bits.items() if v != 8})
    return {"bits": bits, "average": avg, "log": log, "eval": evaluate(q, te.x, te.y, f_test),
            "artifact": q}


# ----------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------

def _pct(v: float) -> str:
    return f"{100 * v:.2f}"


def _db(v: float) -> str:
    return "inf" if math.isinf(v) else f"{v:.1f}"


#: bins of the whole-range histogram plot and of its threshold-region panel (the
#: statistics keep 2048; drawn as 2048 hairlines they hide the threshold lines)
HIST_BINS, HIST_ZOOM_BINS = 64, 40


def _coarse(counts: np.ndarray, width: float, b0: int, b1: int,
            n: int) -> tuple[np.ndarray, np.ndarray]:
    """Fine histogram bins ``[b0, b1)`` (each ``width`` wide) summed into at most ``n``
    equal groups of whole bins: ``(counts [m], edges [m + 1])``."""
    b1 = max(b1, b0 + 1)
    group = max(1, -(-(b1 - b0) // n))
    m = -(-(b1 - b0) // group)
    padded = np.zeros(m * group, np.int64)
    padded[: b1 - b0] = counts[b0:b1]
    return padded.reshape(m, group).sum(axis=1), (b0 + np.arange(m + 1) * group) * width


def _plots(st: Study, img: Path) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    colors = dict(zip(CALIBRATORS, plt.get_cmap("tab10").colors))

    # 1. accuracy per calibrator and scheme
    fig, ax = plt.subplots(figsize=(9, 4.2))
    w = 0.2
    schemes = [("per_tensor", 8), ("per_channel", 8), ("per_tensor", 4), ("per_channel", 4)]
    xs = np.arange(len(CALIBRATORS))
    for j, (g, b) in enumerate(schemes):
        vals = [100 * st.grid[(c, g, b)].accuracy for c in CALIBRATORS]
        ax.bar(xs + (j - 1.5) * w, vals, w, label=f"W{b}A8 {g.replace('_', '-')}")
    ax.axhline(100 * st.fp32_accuracy, color="k", lw=1, ls="--", label="FP32")
    ax.set_xticks(xs, [c.replace("percentile:", "p") for c in CALIBRATORS])
    lo = min(100 * e.accuracy for e in st.grid.values())
    ax.set_ylim(max(0, lo - 1.0), 100)
    ax.set_ylabel(f"test accuracy (%), {st.n_test} images")
    ax.set_title("digits CNN: post-training quantization")
    # below the axes: inside, any corner covers some calibrator's bars
    ax.legend(fontsize=8, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.1),
              frameon=False)
    fig.tight_layout()
    fig.savefig(img / "accuracy_calibrators.png", dpi=110)
    plt.close(fig)
    written.append("accuracy_calibrators.png")

    # 2. per-layer SQNR
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for label, d in st.layer_sqnr.items():
        names = list(d)
        ax.plot(names, [min(v, 99.0) for v in d.values()], marker="o", label=label)
    ax.set_ylabel("SQNR (dB), float vs dequantized int")
    ax.set_title(f"per-layer SQNR (test set; calibrator {st.selected})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(img / "layer_sqnr.png", dpi=110)
    plt.close(fig)
    written.append("layer_sqnr.png")

    # 2b. accuracy preservation and QAT
    pr = st.preservation
    if pr is not None:
        fig, ax = plt.subplots(figsize=(9.5, 4.2))
        labels = [c[0] for c in PRESERVE_CONFIGS]
        xs = np.arange(len(labels))
        w = 0.8 / len(PRESERVE_METHODS)
        for j, m in enumerate(PRESERVE_METHODS):
            vals = [100 * pr.evals[(lab, m)].accuracy for lab in labels]
            ax.bar(xs + (j - (len(PRESERVE_METHODS) - 1) / 2) * w, vals, w, label=m)
        ax.axhline(100 * st.fp32_accuracy, color="k", lw=1, ls="--", label="FP32")
        ax.axhline(100 * st.fp32_accuracy - QAT_TARGET_PP, color="k", lw=0.8, ls=":",
                   label=f"FP32 - {QAT_TARGET_PP:g} pt")
        ax.set_xticks(xs, [lab.replace(" ", "\n") for lab in labels], fontsize=8)
        lo = min(100 * e.accuracy for e in pr.evals.values())
        ax.set_ylim(max(0.0, min(lo, 100 * st.fp32_accuracy - 3) - 1.0), 100)
        ax.set_ylabel(f"test accuracy (%), {st.n_test} images")
        ax.set_title("digits CNN: PTQ, bias correction (BC), cross-layer equalization (CLE), QAT")
        ax.legend(fontsize=7, ncol=8, loc="upper center", bbox_to_anchor=(0.5, -0.16),
                  frameon=False)
        fig.tight_layout()
        fig.savefig(img / "accuracy_qat.png", dpi=110)
        plt.close(fig)
        written.append("accuracy_qat.png")

    # 3. histograms with thresholds: the whole |x| range in HIST_BINS coarse bins, and
    # beside it the threshold region (where the calibrators disagree) in bins of its own
    for name, s in st.stats.items():
        h = s.hist
        assert h is not None
        thr = {c: max(abs(st.ranges[name][c][0]), abs(st.ranges[name][c][1]))
               for c in CALIBRATORS}
        last = int(np.flatnonzero(h.counts)[-1]) + 1 if h.counts.any() else 1
        fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.6),
                                       gridspec_kw={"width_ratios": [1, 1.25]})
        lo = 0.9 * min(thr.values())
        hi = max(1.03 * max(thr.values()), lo + 4 * h.width)
        for ax, (b0, b1), n in ((ax0, (0, last), HIST_BINS),
                                (ax1, (int(lo // h.width), int(math.ceil(hi / h.width))),
                                 HIST_ZOOM_BINS)):
            counts, edges = _coarse(h.counts, h.width, b0, min(b1, h.bins), n)
            ax.stairs(np.maximum(counts, 0.8), edges, fill=True, alpha=0.45, color="gray",
                      label=f"|x| histogram")
            ax.set_yscale("log")
            for j, c in enumerate(CALIBRATORS):
                ax.axvline(thr[c], color=colors[c], lw=1.6, ls=("-", "--", ":", "-.")[j % 4],
                           label=f"{c} ({thr[c]:.4g})")
            ax.set_xlabel("|x|")
        ax0.axvspan(lo, hi, color="gold", alpha=0.15, lw=0)
        ax0.set_ylabel("count")
        ax0.set_title(f"whole range, {HIST_BINS} bins ({s.count} values, "
                      f"{s.zeros} exact zeros)", fontsize=9)
        ax1.set_xlim(lo, hi)
        ax1.set_title(f"threshold region [{lo:.3g}, {hi:.3g}] (shaded left), "
                      f"{HIST_ZOOM_BINS} bins", fontsize=9)
        handles, labels = ax1.get_legend_handles_labels()
        fig.legend(handles, labels, fontsize=7.5, loc="center left",
                   bbox_to_anchor=(0.80, 0.5), frameon=False)
        fig.suptitle(f"tensor {name!r}: |x| and the calibrated thresholds", fontsize=11)
        fig.tight_layout(rect=(0, 0, 0.80, 1))
        fig.savefig(img / f"hist_{name}.png", dpi=100)
        plt.close(fig)
        written.append(f"hist_{name}.png")
    return written


def _cell(e: Eval, fp: float) -> str:
    return f"{_pct(e.accuracy)} ({100 * (e.accuracy - fp):+.2f})"


def render_preservation(st: Study) -> list[str]:
    """Markdown of the accuracy-preservation / QAT section."""
    pr = st.preservation
    assert pr is not None
    fp = st.fp32_accuracy
    r = pr.recipe
    L: list[str] = []
    add = L.append
    add("## Accuracy preservation after PTQ, and quantization-aware training")
    add("")
    add(f"Methods (`docs/qat.md`): **BC** bias correction (per output channel, the mean "
        f"output shift weight quantization causes, measured on the calibration set, "
        f"subtracted from the bias); **CLE** cross-layer equalization of "
        f"{', '.join(pr.cle.get('pairs', []))} before calibration; **QAT** fine-tuning "
        f"of the float network with fake quantization, converted to the same artifact "
        f"as PTQ; **QAT+LSQ** the same with learned scales. Every activation uses "
        f"calibrator `{st.selected}` (clipping by the calibrators: the tables above); QAT "
        f"starts from those calibrated ranges and tracks them by EMA. Weights: symmetric, "
        f"min/max (per tensor or per output channel). Cells: test accuracy % "
        f"(change vs FP32 {_pct(fp)} %, in percentage points).")
    add("")
    add(f"QAT recipe (fixed before looking at any test result; the test set chooses "
        f"nothing): Adam, learning rate {r.lr:g} (1/10 of the float recipe's), weight "
        f"decay {r.weight_decay:g}, batch {r.batch_size}, {r.epochs} epochs over the "
        f"{st.n_train} training images, activation ranges by EMA (constant "
        f"{r.ema_constant:g}) frozen for the last {r.freeze_epochs} epochs, shuffling "
        f"seed {r.seed}, integer-exact fake-quant forward. Per-channel or per-tensor "
        f"weights, per-tensor activations, as the row says.")
    add("")
    add("| configuration | " + " | ".join(PRESERVE_METHODS) + " |")
    add("|---|" + "---:|" * len(PRESERVE_METHODS))
    for label, *_ in PRESERVE_CONFIGS:
        add(f"| {label} | " + " | ".join(_cell(pr.evals[(label, m)], fp)
                                         for m in PRESERVE_METHODS) + " |")
    add("")
    add("![accuracy preservation and QAT](img/accuracy_qat.png)")
    add("")
    # The QAT-vs-PTQ gap, stated from the numbers.
    add(f"**QAT vs PTQ** (target: QAT within {QAT_TARGET_PP:g} point of FP32 where PTQ "
        f"falls further; one test image = {100 / st.n_test:.2f} pt):")
    add("")
    for label, *_ in PRESERVE_CONFIGS:
        p = 100 * (pr.evals[(label, "PTQ")].accuracy - fp)
        best_ptq = max((m for m in PRESERVE_METHODS if m.startswith("PTQ")),
                       key=lambda m: (pr.evals[(label, m)].accuracy,
                                      -PRESERVE_METHODS.index(m)))
        bp = 100 * (pr.evals[(label, best_ptq)].accuracy - fp)
        q = 100 * (pr.evals[(label, "QAT")].accuracy - fp)
        ql = 100 * (pr.evals[(label, "QAT+LSQ")].accuracy - fp)
        if p >= -QAT_TARGET_PP:
            verdict = (f"PTQ is already within {QAT_TARGET_PP:g} pt ({p:+.2f}); QAT "
                       f"{q:+.2f}, QAT+LSQ {ql:+.2f} -- on this network and test set the "
                       f"difference is {abs(q - p) / (100 / st.n_test):.0f} image(s)")
        elif q >= -QAT_TARGET_PP:
            verdict = (f"PTQ falls {-p:.2f} pt below FP32; QAT is within target at "
                       f"{q:+.2f} (QAT+LSQ {ql:+.2f}); the best PTQ variant ({best_ptq}) "
                       f"reaches {bp:+.2f}")
        else:
            verdict = (f"PTQ {p:+.2f}, QAT {q:+.2f}, QAT+LSQ {ql:+.2f}: QAT does **not** "
                       f"reach the {QAT_TARGET_PP:g}-pt target here; best PTQ variant "
                       f"({best_ptq}) {bp:+.2f}")
        add(f"- {label}: {verdict}.")
    add("")
    better = same = worse = 0
    for label, *_ in PRESERVE_CONFIGS:
        q = pr.evals[(label, "QAT")].accuracy
        b = max(pr.evals[(label, m)].accuracy for m in PRESERVE_METHODS if m.startswith("PTQ"))
        better += q > b
        same += q == b
        worse += q < b
    add(f"QAT (EMA) against the best PTQ variant of the same row (the highest of PTQ, +BC, "
        f"+CLE, +CLE+BC *on the test set* -- an optimistic comparison for PTQ, since the "
        f"test set picks the variant): QAT better in {better} row(s), equal in {same}, "
        f"worse in {worse}. Against plain PTQ, QAT gains "
        + ", ".join(f"{lab} {100 * (pr.evals[(lab, 'QAT')].accuracy - pr.evals[(lab, 'PTQ')].accuracy):+.2f}"
                    for lab, *_ in PRESERVE_CONFIGS)
        + " pt. On this small network bias correction (a calibration pass, no labels) "
        "recovers about as much as QAT (labelled training data, a few seconds per "
        "configuration); differences of one or two images are noise.")
    add("")
    # Integer == fake quant.
    n_runs = len(pr.agreement) + 1
    all_ok = all(a.same_prediction == a.images and a.same_logits == a.images
                 for a in [*pr.agreement.values(), pr.mixed["agreement"]])
    imgs = next(iter(pr.agreement.values())).images
    add(f"**Integer network == fake-quant network.** For each of the {n_runs} QAT networks "
        f"above (and the mixed one below), the converted artifact run by the integer "
        f"golden model and the fake-quant forward were compared image by image on the "
        f"{imgs} test images: "
        + ("identical predictions and identical int8 logits on every image of every "
           "network." if all_ok else "**MISMATCHES**: " + "; ".join(
               f"{k[0]} {k[1]}: {a.images - a.same_prediction} predictions, "
               f"{a.images - a.same_logits} logit vectors differ"
               for k, a in pr.agreement.items()
               if a.same_prediction != a.images or a.same_logits != a.images))
        + " The fake-quant forward builds each layer's artifact record "
        "(`ptq.build_qlayer`) and runs the integer kernel, so this holds by construction "
        "(`docs/qat.md`).")
    fm = pr.float_mode
    add("")
    add(f"For contrast, the textbook fake quant -- output `dequantize(quantize(z))` "
        f"rescaled in float instead of the `m0`/`shift` integer requantization -- run on "
        f"the same W4A8 per-tensor QAT weights and ranges differs from the integer "
        f"network in {fm['differing_logits']} of {fm['images']} int8 logit vectors (by up "
        f"to {fm['max_logit_diff']} steps) and in {fm['differing_predictions']} "
        f"predictions: the float rescaling rounds once where `m0`/`shift` rounds twice "
        f"(gemmlowp double rounding) and uses the unrounded multiplier, so intermediate "
        f"int8 values differ by a step in a fraction of elements and the differences "
        f"propagate. Predictions can then differ wherever two logits are within a few "
        f"steps.")
    add("")
    # CLE.
    add(f"**Cross-layer equalization**: pairs {', '.join(pr.cle.get('pairs', []))}"
        + (f" (skipped: {'; '.join(pr.cle['skipped'])})" if pr.cle.get("skipped") else "")
        + f"; {pr.cle.get('sweeps')} sweeps to a largest scale change below 1e-6. The "
        f"equalized float network's test logits differ from the original's by at most "
        f"{pr.cle_max_change:.1e} (largest |logit| {pr.cle_output_max:.1f}): float "
        f"rounding only. Largest over median per-output-channel weight range (the "
        f"share of a per-tensor grid a typical channel uses is its inverse), before -> "
        f"after: "
        + ", ".join(f"{k} {a:.1f} -> {b:.1f}" for k, (a, b) in pr.cle_ranges.items())
        + ". CLE alone vs plain PTQ, per row: "
        + ", ".join(f"{lab} {100 * (pr.evals[(lab, 'PTQ+CLE')].accuracy - pr.evals[(lab, 'PTQ')].accuracy):+.2f}"
                    for lab, *_ in PRESERVE_CONFIGS)
        + " pt; CLE + BC vs BC alone: "
        + ", ".join(f"{lab} {100 * (pr.evals[(lab, 'PTQ+CLE+BC')].accuracy - pr.evals[(lab, 'PTQ+BC')].accuracy):+.2f}"
                    for lab, *_ in PRESERVE_CONFIGS)
        + " pt. The rescaling moves quantization error between the two layers of a pair "
        "and between channels of the per-tensor activation ranges, and it changes the "
        "mean shifts that BC removes; the paper applies the two together.")
    add("")
    add("**Bias correction**, W4A8 per-channel, test set (held out from the calibration "
        "that measured the correction): mean over output channels of |mean output error| "
        "(dequantized integer vs float), without -> with correction: "
        + ", ".join(f"{k} {a:.4f} -> {b:.4f}" for k, (a, b) in pr.bc_error.items()) + ".")
    add("")
    mx = pr.mixed
    add(f"**Mixed-bit network after QAT** ({', '.join(f'{k} INT{v}' for k, v in mx['bits'].items())}; "
        f"{mx['average']:.2f} bits/weight, per-channel; the sensitivity study's choice): PTQ "
        f"{_cell(mx['ptq'], fp)} -> QAT {_cell(mx['qat'], fp)}; output SQNR "
        f"{_db(mx['ptq'].sqnr_db)} -> {_db(mx['qat'].sqnr_db)} dB (vs the FP32 logits). "
        f"Integer == fake quant: {mx['agreement'].same_prediction}/{mx['agreement'].images} "
        f"predictions, {mx['agreement'].same_logits}/{mx['agreement'].images} int8 logit "
        f"vectors.")
    add("")
    return L


def render(st: Study, images: list[str]) -> str:
    """The Markdown of ``docs/accuracy.md``."""
    fp = st.fp32_accuracy
    L: list[str] = []
    add = L.append
    add("# Accuracy study: post-training quantization of the digits CNN")
    add("")
    from pymodel.threads import blas_kernel
    add("Generated by `make accuracy OUT=docs` (`python -m pymodel report --out docs`; "
        "plain `make accuracy` writes `build/accuracy/`) from the shipped float weights "
        "`models/digits/digits_cnn.npz`; deterministic (fixed split, seeded QAT, one BLAS "
        "thread whatever the thread count), so re-running reproduces this page byte for "
        f"byte with the same BLAS kernel (this page: {blas_kernel()}; `OPENBLAS_CORETYPE` "
        "selects OpenBLAS's kernel; another kernel rounds float sums differently in the "
        "last bits, which moves calibrated ranges slightly and QAT results by a few "
        "images). Integer inference is the bit-exact golden model "
        "(`pymodel.graph.inference` over `pymodel.ops.layers`).")
    add("")
    add(f"- Network: `models/digits/digits_cnn.yaml`: conv3x3(8, same)+ReLU -> "
        f"conv3x3(16, stride 2, same)+ReLU -> flatten -> FC(32)+ReLU -> FC(10); "
        f"{sum(n for _, n in st.weight_layers)} weights "
        f"({', '.join(f'{n} {c}' for n, c in st.weight_layers)}).")
    add(f"- Data: scikit-learn digits, stratified split with seed 0: train {st.n_train}, "
        f"calibration {st.n_calib} (never trained on), test {st.n_test} images. "
        f"One test image is {100 / st.n_test:.2f} percentage points.")
    add("- Activations: INT8 asymmetric per tensor (the input keeps its `minmax` range "
        "[0, 1]). Weights: symmetric, min/max per tensor or per output channel. Each "
        "calibrator below chooses the range of every layer output (statistics collected "
        "once over the calibration set, batches of 32).")
    add("- Columns: test accuracy; change vs FP32 in percentage points; agreement = "
        "share of test images whose INT prediction equals the FP32 prediction; SQNR of "
        "the dequantized int8 logits vs the float logits.")
    add("")
    add(f"**FP32 test accuracy: {_pct(fp)} %**")
    add("")
    for bits in (8, 4):
        add(f"## W{bits}A8: INT{bits} weights, INT8 activations")
        add("")
        add("| calibrator | per-tensor acc % | Δ pp | agree % | SQNR dB | per-channel acc % "
            "| Δ pp | agree % | SQNR dB |")
        add("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for c in CALIBRATORS:
            row = [f"`{c}`"]
            for g in GRANULARITIES:
                e = st.grid[(c, g, bits)]
                row += [_pct(e.accuracy), f"{100 * (e.accuracy - fp):+.2f}", _pct(e.agreement),
                        _db(e.sqnr_db)]
            add("| " + " | ".join(row) + " |")
        add("")
    sel = st.selected_eval
    assert sel is not None
    best = max((st.grid[(c, "per_channel", 8)] for c in CALIBRATORS), key=lambda e: e.accuracy)
    add("## Selected INT8 configuration")
    add("")
    add(f"Chosen **on the calibration set** (highest output SQNR, INT8 per-channel): "
        f"`{st.selected}` -> test accuracy {_pct(sel.accuracy)} % "
        f"({100 * (sel.accuracy - fp):+.2f} pp vs FP32; acceptance: a loss of at most "
        f"{ACCEPT_DROP_PP} pp). The best INT8 per-channel test accuracy is "
        f"{_pct(best.accuracy)} % ({100 * (best.accuracy - fp):+.2f} pp), reached by "
        + ", ".join(f"`{c}`" for c in CALIBRATORS
                    if st.grid[(c, "per_channel", 8)].accuracy == best.accuracy)
        + ". The chosen configuration is shipped as `models/digits/digits_cnn_int8.yaml`.")
    add("")
    parts = []
    for bits in (8, 4):
        pt, pc = st.grid[(st.selected, "per_tensor", bits)], st.grid[(st.selected, "per_channel", bits)]
        parts.append(f"W{bits}A8 per-tensor {_pct(pt.accuracy)} % / {_db(pt.sqnr_db)} dB vs "
                     f"per-channel {_pct(pc.accuracy)} % / {_db(pc.sqnr_db)} dB")
    add(f"Per-tensor vs per-channel weights (calibrator `{st.selected}`, test accuracy / "
        f"output SQNR): " + "; ".join(parts) + ". One test image is "
        f"{100 / st.n_test:.2f} pp, so accuracy differences of one or two images are "
        "within the noise of the test set; agreement with FP32 and output SQNR are the "
        "finer measures.")
    add("")
    add("## Mixed precision by sensitivity")
    add("")
    add(f"Sensitivity of each weight layer, measured on the calibration set: that layer's "
        f"weights in INT4 (per-channel), every other layer INT8, calibrator `{st.selected}`. "
        f"Ranked by output SQNR (higher = less sensitive).")
    add("")
    add("| layer | weights | output SQNR dB | calib accuracy % | drop pp |")
    add("|---|---:|---:|---:|---:|")
    for r in sorted(st.sensitivity, key=lambda r: -r["sqnr_db"]):
        add(f"| {r['layer']} | {r['weights']} | {_db(r['sqnr_db'])} | {_pct(r['accuracy'])} "
            f"| {r['drop_pp']:+.2f} |")
    add("")
    mx = st.mixed
    e = mx["eval"]
    add(f"Choice (`pymodel.study.accuracy.choose_mixed_bits`): walk the layers from least to most "
        f"sensitive giving INT4 until the parameter-weighted average is <= "
        f"{MIXED_BUDGET_BITS:g} bits/weight, then restore INT8 to any INT4 layer (most "
        f"sensitive first) that the budget no longer needs. Steps: "
        + "; ".join(mx["log"]) + ".")
    add("")
    add(f"**Mixed network: {', '.join(f'{k} INT{v}' for k, v in mx['bits'].items())}; "
        f"{mx['average']:.2f} bits/weight** (biases excluded): test accuracy "
        f"{_pct(e.accuracy)} % ({100 * (e.accuracy - fp):+.2f} pp vs FP32), agreement "
        f"{_pct(e.agreement)} %, output SQNR {_db(e.sqnr_db)} dB. Same calibrator: W8A8 "
        f"per-channel (8 bits) {_pct(st.grid[(st.selected, 'per_channel', 8)].accuracy)} % / "
        f"{_db(st.grid[(st.selected, 'per_channel', 8)].sqnr_db)} dB; W4A8 per-channel "
        f"(4 bits) {_pct(st.grid[(st.selected, 'per_channel', 4)].accuracy)} % / "
        f"{_db(st.grid[(st.selected, 'per_channel', 4)].sqnr_db)} dB.")
    add("")
    add("The chosen mixed network is shipped as `models/digits/digits_cnn_mixed.yaml`.")
    add("")
    if st.preservation is not None:
        L.extend(render_preservation(st))
    add("## Per-layer SQNR")
    add("")
    add("Float network vs dequantized integer network, both run end to end on the test set "
        "(so errors accumulate layer to layer); calibrator " f"`{st.selected}`.")
    add("")
    names = list(next(iter(st.layer_sqnr.values())))
    add("| configuration | " + " | ".join(names) + " |")
    add("|---|" + "---:|" * len(names))
    for label, d in st.layer_sqnr.items():
        add(f"| {label} | " + " | ".join(_db(d[n]) for n in names) + " |")
    add("")
    add("![per-layer SQNR](img/layer_sqnr.png)")
    add("")
    add("![accuracy per calibrator](img/accuracy_calibrators.png)")
    add("")
    add("## Calibrated ranges")
    add("")
    add("`[rmin, rmax]` each calibrator picks per tensor (threshold methods clip `|x|` at "
        "their threshold, then to the observed range).")
    add("")
    add("| tensor | " + " | ".join(f"`{c}`" for c in CALIBRATORS) + " |")
    add("|---|" + "---|" * len(CALIBRATORS))
    for name, d in st.ranges.items():
        add(f"| {name} | " + " | ".join(f"[{d[c][0]:.3g}, {d[c][1]:.3g}]" for c in CALIBRATORS)
            + " |")
    add("")
    for im in images:
        if im.startswith("hist_"):
            add(f"![{im}](img/{im})")
            add("")
    add("## Reproduce")
    add("")
    add("```")
    add("make accuracy                                  # this page and docs/img/*.png")
    add("python models/digits/train.py --check          # retrain the float weights, compare")
    add(f"python -m pymodel quantize models/digits/digits_cnn.yaml --calibrator {st.selected} "
        "--out models/digits/digits_cnn_int8")
    bits4 = ",".join(f"{k}=4" for k, v in st.mixed["bits"].items() if v == 4)
    add(f"python -m pymodel quantize models/digits/digits_cnn.yaml --calibrator {st.selected} "
        f"--layer-bits {bits4} --out models/digits/digits_cnn_mixed")
    if st.preservation is not None:
        add(f"python -m pymodel quantize models/digits/digits_cnn.yaml --weight-bits 4 "
            f"--granularity per_tensor --bias-correction --equalize --out /tmp/w4a8_cle_bc")
        add(f"python -m pymodel qat models/digits/digits_cnn.yaml --weight-bits 4 "
            f"--granularity per_tensor --out models/digits/digits_cnn_w4a8_qat")
        add(f"python -m pymodel qat models/digits/digits_cnn.yaml --layer-bits {bits4} "
            f"--out models/digits/digits_cnn_mixed_qat")
    add("```")
    add("")
    return "\n".join(L)


def write_report(out: str | Path, progress: bool = True,
                 artifacts: str | Path | None = None) -> Study:
    """Run the study and write ``<out>/accuracy.md`` and ``<out>/img/*.png``.

    Args:
        out: docs directory.
        progress: tqdm bars.
        artifacts: if given, also write the selected INT8, the mixed-bit and the two QAT
            artifacts there (``digits_cnn_int8``, ``digits_cnn_mixed``,
            ``digits_cnn_w4a8_qat``, ``digits_cnn_mixed_qat``; the directory must exist).
    """
    from pymodel.graph.artifact import save_artifact

    st = run_study(progress)
    out = Path(out)
    img = out / "img"
    img.mkdir(parents=True, exist_ok=True)
    images = _plots(st, img)
    atomicio.write_text(out / "accuracy.md", render(st, images))
    if artifacts is not None:
        for key, stem in (("int8", "digits_cnn_int8"), ("mixed", "digits_cnn_mixed"),
                          ("w4a8_qat", "digits_cnn_w4a8_qat"),
                          ("mixed_qat", "digits_cnn_mixed_qat")):
            if key in st.artifacts:
                save_artifact(st.artifacts[key], Path(artifacts) / stem)
    return st
