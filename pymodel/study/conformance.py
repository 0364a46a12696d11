"""Conformance of the golden model with TFLite runtimes, tensor by tensor.

:func:`compare` imports a ``.tflite`` model (:mod:`pymodel.frontends.tflite_import`),
runs the artifact in the golden model (:func:`pymodel.graph.inference.run_tensors`) and
the model in a LiteRT interpreter with every intermediate tensor preserved, and counts,
per layer, the elements that differ.  ``tests/test_tflite_conformance.py`` asserts zero
differences against the integer-path kernels; ``python -m pymodel.study.conformance``
writes the table of ``docs/conformance.md`` into a build directory.

The runtimes (``ai-edge-litert``, ``tflite-micro``) are test dependencies, imported only
when a comparison runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from pymodel.frontends.tflite_import import import_tflite
from pymodel.graph.artifact import INPUT, QuantizedNetwork
from pymodel.graph.inference import run_layer, run_tensors

#: Runtimes compared (:mod:`pymodel.frontends.runtimes`): LiteRT's reference and optimized
#: kernels and TensorFlow Lite Micro (every tensor readable).
RUNTIMES = ("litert-ref", "litert-opt", "tflm")


@dataclass
class LayerDiff:
    """Golden vs runtime for one layer's output tensor.

    Attributes:
        layer, op: artifact layer name and op.
        tensor: TFLite tensor index of the layer's output.
        elements: elements compared (over every input image).
        differing: elements that are not equal.
        max_abs: largest ``|golden - runtime|`` (0 when equal).
    """

    layer: str
    op: str
    tensor: int
    elements: int = 0
    differing: int = 0
    max_abs: int = 0


def compare(model_path: str | Path, x: np.ndarray, runtime: str = "litert-ref",
            qnet: QuantizedNetwork | None = None, isolate: bool = True) -> list[LayerDiff]:
    """Every layer's output: golden model vs ``runtime`` on the batch ``x``.

    Args:
        model_path: the ``.tflite`` file.
        x: the model's input batch: int8 ``[N, *input_shape]``, or float32 for a model
            with a float interface (its QUANTIZE is then compared too, as layer
            ``input``).
        runtime: one of :data:`RUNTIMES`.
        qnet: the imported artifact (default: import ``model_path``).
        isolate: run each golden layer on the *runtime's* input tensors, so that a
            difference is the op's own and not one propagated from an earlier layer
            (``False``: the golden model runs the whole graph on its own tensors).
    """
    from pymodel.frontends.runtimes import run
    qnet = qnet or import_tflite(model_path)
    mapping = dict(qnet.meta["tflite"]["tensors"])
    ref = run(model_path, x, runtime).tensors
    rows = []
    xq = np.asarray(x)
    if xq.dtype != np.int8:                     # float interface: the model's QUANTIZE
        from pymodel.ops.quantize import prepare_quantize, quantize
        xq = quantize(xq, prepare_quantize(np.float32(qnet.input.scale), qnet.input.zero_point))
        r = ref[int(qnet.meta["tflite"]["input_tensor"])]
        d = np.abs(xq.astype(np.int32) - r.astype(np.int32))
        rows.append(LayerDiff(INPUT, "quantize", int(qnet.meta["tflite"]["input_tensor"]),
                              int(d.size), int(np.count_nonzero(d)), int(d.max())))
        if isolate:
            xq = r.astype(np.int8)
    if isolate:
        shaped = {INPUT: xq}
        golden = {}
        for layer in qnet.layers:
            args = [shaped[n] for n in layer.inputs]
            golden[layer.name] = run_layer(layer, *args)
            shaped[layer.name] = ref[mapping[layer.name]].reshape(golden[layer.name].shape)
    else:
        golden = run_tensors(qnet, xq)
    for layer in qnet.layers:
        t = mapping[layer.name]
        g = golden[layer.name].astype(np.int32)
        r = ref[t].astype(np.int32).reshape(g.shape)
        d = np.abs(g - r)
        rows.append(LayerDiff(layer.name, layer.op, t, int(g.size), int(np.count_nonzero(d)),
                              int(d.max()) if d.size else 0))
    return rows


def by_op(rows: Sequence[LayerDiff]) -> dict[str, tuple[int, int, int]]:
    """``{op: (elements, differing, max |diff|)}`` summed over layers."""
    out: dict[str, tuple[int, int, int]] = {}
    for r in rows:
        e, d, m = out.get(r.op, (0, 0, 0))
        out[r.op] = (e + r.elements, d + r.differing, max(m, r.max_abs))
    return out


def model_inputs(model_path: str | Path, qnet: QuantizedNetwork, images: int = 64,
                 random: int = 64, seed: int = 0) -> np.ndarray:
    """The conformance inputs: the model's bundled int8 test images (``<stem>_test.npz``
    beside it, array ``x_int8``) and ``random`` seeded uniform int8 inputs."""
    parts = []
    bundled = Path(model_path).with_name(Path(model_path).stem + "_test.npz")
    floats = qnet.meta.get("tflite", {}).get("float_input", False)
    if bundled.exists() and images:
        with np.load(bundled) as z:
            parts.append(np.asarray(z["x_float"][:images], np.float32) if floats
                         else np.asarray(z["x_int8"][:images], np.int8))
    if random:
        rng = np.random.default_rng(seed)
        if floats:                               # uniform over the input's real range
            lo, hi = qnet.input.rmin, qnet.input.rmax
            parts.append(rng.uniform(lo, hi, (random, *qnet.input_shape)).astype(np.float32))
        else:
            parts.append(rng.integers(-128, 128, (random, *qnet.input_shape)).astype(np.int8))
    return np.concatenate(parts)


OP_NAMES = {"conv2d": "CONV_2D", "depthwise_conv2d": "DEPTHWISE_CONV_2D",
            "fully_connected": "FULLY_CONNECTED", "add": "ADD", "sub": "SUB", "mul": "MUL",
            "avg_pool2d": "AVERAGE_POOL_2D", "max_pool2d": "MAX_POOL_2D", "mean": "MEAN",
            "pad": "PAD / PADV2", "concatenation": "CONCATENATION",
            "reshape": "RESHAPE / SQUEEZE", "quantize": "QUANTIZE", "softmax": "SOFTMAX",
            "logistic": "LOGISTIC", "hard_swish": "HARD_SWISH", "relu": "RELU",
            "relu6": "RELU6", "leaky_relu": "LEAKY_RELU"}

WHY = {
    ("FULLY_CONNECTED", "litert-ref"): "LiteRT's reference FC rescales in double precision "
    "(`round(double(acc) * s_in*s_w/s_out)`, `pymodel.ops.float_rescale`): the integer "
    "fixed-point rescale differs by 1 near rounding ties; every difference is reproduced "
    "by the float formula (tests/test_tflite_conformance.py)",
    ("FULLY_CONNECTED", "litert-opt"): "ruy's final shift rounds ties towards +inf "
    "(study below)",
    ("CONV_2D", "litert-opt"): "ruy's final shift rounds ties towards +inf (study below)",
    ("MEAN", "litert-opt"): "`optimized_integer_ops::Mean` computes the zero-point term in "
    "float",
}


def report(models_dir: Path, seed: int = 0) -> str:
    """``docs/conformance.md``: golden model vs each runtime, per op, isolated comparison
    (each golden layer on the runtime's own inputs), on every committed model's 64 bundled
    images and 64 seeded random inputs."""
    import warnings
    warnings.simplefilter("ignore", UserWarning)
    totals: dict[tuple[str, str], list[int]] = {}
    models = sorted(models_dir.glob("*.tflite"))
    for m in models:
        qnet = import_tflite(m)
        x = model_inputs(m, qnet, seed=seed)
        for rt in RUNTIMES:
            for r in compare(m, x, rt, qnet, isolate=True):
                key = (OP_NAMES.get(r.op, r.op.upper()), rt)
                cell = totals.setdefault(key, [0, 0, 0])
                cell[0] += r.elements
                cell[1] += r.differing
                cell[2] = max(cell[2], r.max_abs)
    ops = sorted({k[0] for k in totals})
    lines = [
        "# Conformance: the golden model against TFLite runtimes",
        "",
        "Generated by `make conformance` (`python -m pymodel.study.conformance --report`); "
        "the tests behind it are `tests/test_tflite_conformance.py` (every tensor == TFLite "
        "Micro; == LiteRT's reference kernels but FULLY_CONNECTED; op sweeps over every int8 "
        "value / pair) and `tests/test_study_runtimes.py`.",
        "",
        f"Models: {', '.join(f'`{m.name}`' for m in models)} (`models/tflite/README.md`), "
        f"each on its 64 bundled test images and 64 random inputs (seed {seed}), imported "
        "with `qmac import` (double rounding).  Each golden layer runs on the runtime's own "
        "input tensors, so a count is that op's kernel and not an earlier layer's.  Cells: "
        "elements differing / compared (largest |difference|).",
        "",
        "| op | " + " | ".join(RUNTIMES) + " | why |",
        "|---|" + "---|" * len(RUNTIMES) + "---|",
    ]
    for op in ops:
        cells, why = [], []
        for rt in RUNTIMES:
            e, d, mx = totals.get((op, rt), (0, 0, 0))
            cells.append(f"{d} / {e}" + (f" ({mx})" if d else ""))
            if d and (op, rt) in WHY:
                why.append(f"{rt}: {WHY[(op, rt)]}")
        lines.append(f"| {op} | " + " | ".join(cells) + " | " + "; ".join(why) + " |")
    lines += [
        "",
        "TensorFlow Lite Micro computes every op with the integer fixed-point path (gemmlowp "
        "double rounding, `TFLITE_SINGLE_ROUNDING=0`); the golden model equals it on every "
        "element.  LiteRT's reference kernels use the same integer path except "
        "FULLY_CONNECTED.  LiteRT's default interpreter (XNNPACK delegate) keeps no "
        "intermediate tensors; its end-to-end outputs and the per-op kernels of every "
        "runtime against LiteRT's reference are in the study below.",
        "",
    ]
    from pymodel.study import runtimes as RS
    study = RS.render_markdown(RS.study(models_dir, seed=seed))
    body = study.split("\n", 1)[1] if study.startswith("#") else study
    lines += ["# Runtimes against LiteRT's reference kernels (`make runtimes-study`)", body]
    return "\n".join(lines).rstrip() + "\n"


def _main(argv: list[str] | None = None) -> int:
    import argparse
    import sys
    p = argparse.ArgumentParser(prog="python -m pymodel.study.conformance",
                                description="golden model vs LiteRT, every tensor")
    p.add_argument("models", nargs="*", type=Path)
    p.add_argument("--runtime", choices=RUNTIMES, default="litert-ref")
    p.add_argument("--report", type=Path, metavar="OUT",
                   help="write the conformance page (markdown) to OUT instead")
    args = p.parse_args(argv)
    if args.report:
        models_dir = Path(__file__).resolve().parents[2] / "models" / "tflite"
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(report(models_dir))
        print(f"wrote {args.report}")
        return 0
    for m in args.models:
        qnet = import_tflite(m)
        x = model_inputs(m, qnet)
        for r in compare(m, x, args.runtime, qnet):
            print(f"{m.stem:20s} {r.layer:24s} {r.op:18s} {r.elements:9d} {r.differing:7d} "
                  f"{r.max_abs:4d}")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
