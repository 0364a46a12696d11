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
* each quantized tensor's ``|x|`` histogram with the threshold of every calibrator.

:func:`write_report` renders ``docs/accuracy.md`` and ``docs/img/*.png``.  Everything is
deterministic: no timings or dates in the output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import atomicio, datasets, digits, inference, ptq
from .artifact import QuantizedNetwork
from .calibration import CalibratorSpec, TensorStats, calibrated_range
from .network import Network

CALIBRATORS = ("minmax", "ema", "percentile:99.9", "percentile:99.99", "percentile:99.999",
               "entropy", "mse")
GRANULARITIES = ("per_tensor", "per_channel")
MIXED_BUDGET_BITS = 6.0
ACCEPT_DROP_PP = 0.5


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


def _config(net: Network, cal: str, gran: str, bits: int,
            layer_bits: dict[str, int] | None = None) -> Network:
    return net.with_overrides(calibrator=CalibratorSpec.parse(cal), granularity=gran,
                              weight_bits=bits, layer_weight_bits=layer_bits)


def run_study(progress: bool = True) -> Study:
    """Run the whole study on the shipped digits CNN (a few seconds)."""
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
    return st


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


def _plots(st: Study, img: Path) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    colors = dict(zip(CALIBRATORS, plt.get_cmap("tab10").colors))

    # 1. accuracy per calibrator and scheme
    fig, ax = plt.subplots(figsize=(9, 3.8))
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
    ax.legend(fontsize=7, ncol=3, loc="lower right")
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

    # 3. histograms with thresholds
    for name, s in st.stats.items():
        h = s.hist
        assert h is not None
        fig, ax = plt.subplots(figsize=(7, 3.2))
        edges = h.edges()
        last = int(np.flatnonzero(h.counts)[-1]) + 1 if h.counts.any() else 1
        ax.stairs(np.maximum(h.counts[:last], 0.8), edges[:last + 1], fill=True, alpha=0.5,
                  color="gray", label="|x| histogram")
        ax.set_yscale("log")
        for j, c in enumerate(CALIBRATORS):
            rmin, rmax, _ = st.ranges[name][c]
            ax.axvline(max(abs(rmin), abs(rmax)), color=colors[c], lw=1.4,
                       ls=("-", "--", ":", "-.")[j % 4], label=c)
        ax.set_xlabel(f"|x| ({s.count} values, {s.zeros} exact zeros)")
        ax.set_ylabel("count")
        ax.set_title(f"tensor {name!r}: calibrated thresholds")
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        fig.savefig(img / f"hist_{name}.png", dpi=100)
        plt.close(fig)
        written.append(f"hist_{name}.png")
    return written


def render(st: Study, images: list[str]) -> str:
    """The Markdown of ``docs/accuracy.md``."""
    fp = st.fp32_accuracy
    L: list[str] = []
    add = L.append
    add("# Accuracy study: post-training quantization of the digits CNN")
    add("")
    add("Generated by `make accuracy` (`python -m pymodel report --out docs`) from the "
        "shipped float weights `models/digits/digits_cnn.npz`; deterministic (fixed split, "
        "no random choices), so re-running reproduces this page. Integer inference is the "
        "bit-exact golden model (`pymodel.inference` over `pymodel.layers`).")
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
    add(f"Choice (`pymodel.accuracy.choose_mixed_bits`): walk the layers from least to most "
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
    add("```")
    add("")
    return "\n".join(L)


def write_report(out: str | Path, progress: bool = True,
                 artifacts: str | Path | None = None) -> Study:
    """Run the study and write ``<out>/accuracy.md`` and ``<out>/img/*.png``.

    Args:
        out: docs directory.
        progress: tqdm bars.
        artifacts: if given, also write the selected INT8 and the mixed-bit artifacts
            there (``digits_cnn_int8``, ``digits_cnn_mixed``).
    """
    from .artifact import save_artifact

    st = run_study(progress)
    out = Path(out)
    img = out / "img"
    img.mkdir(parents=True, exist_ok=True)
    images = _plots(st, img)
    atomicio.write_text(out / "accuracy.md", render(st, images))
    if artifacts is not None:
        for key, stem in (("int8", "digits_cnn_int8"), ("mixed", "digits_cnn_mixed")):
            save_artifact(st.artifacts[key], Path(artifacts) / stem)
    return st
