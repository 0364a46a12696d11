"""Command line: ``python -m pymodel <command>`` (also installed as ``qmac``).

Commands: ``calibrate`` (collect activation statistics), ``quantize`` (write a
quantized-network artifact; optional bias correction and cross-layer equalization),
``qat`` (quantization-aware fine-tuning, written as the same artifact), ``eval``
(accuracy of an artifact or a float network), ``report`` (the accuracy study:
``docs/accuracy.md``), ``demo`` (run a few digits through the golden model; ``make sim``
runs the same network on the RTL layer engine).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

# numpy and the rest of pymodel are imported inside main() and the commands, so that a
# Ctrl-C while they load (a second or more) is reported in one line like any other

EXAMPLES = {
    "demo": ["python -m pymodel demo --images 8"],
    "calibrate": ["python -m pymodel calibrate models/digits/digits_cnn.yaml "
                  "--out /tmp/stats.npz"],
    "quantize": [
        "python -m pymodel quantize models/digits/digits_cnn.yaml --stats /tmp/stats.npz \\\n"
        "    --calibrator percentile:99.99 --out /tmp/digits_int8",
        "python -m pymodel quantize models/digits/digits_cnn.yaml --weight-bits 4 \\\n"
        "    --granularity per_channel --out /tmp/digits_w4a8",
        "python -m pymodel quantize models/digits/digits_cnn.yaml --layer-bits fc1=4 \\\n"
        "    --out /tmp/digits_mixed",
        "python -m pymodel quantize models/digits/digits_cnn.yaml --weight-bits 4 \\\n"
        "    --granularity per_tensor --equalize --bias-correction \\\n"
        "    --out /tmp/digits_w4_cle_bc"],
    "qat": ["python -m pymodel qat models/digits/digits_cnn.yaml --weight-bits 4 \\\n"
            "    --granularity per_tensor --out /tmp/digits_w4a8_qat"],
    "eval": ["python -m pymodel eval /tmp/digits_int8.yaml",
             "python -m pymodel eval models/digits/digits_cnn.yaml --split test"],
    "report": ["python -m pymodel report --out build/accuracy"],
    "import": ["python -m pymodel import models/tflite/mobilenetv2_style.tflite -o "
               "build/mobilenetv2_style",
               "python -m pymodel import build/digits_qdq.onnx -o build/digits_qdq"],
    "import-float": ["python -m pymodel import-float build/digits.onnx -o build/digits_cnn \\\n"
                     "    --like models/digits/digits_cnn.yaml"],
    "export-onnx": ["python -m pymodel export-onnx models/digits/digits_cnn_int8.yaml "
                    "-o build/digits_int8.onnx"],
}

CALIBRATORS_NOTE = """\
calibrators: minmax, ema[:C] (default C=0.01), percentile[:P] (default 99.99),
entropy (TensorRT KL), entropy:onnxruntime (onnxruntime's KL; tensors of both signs
need sign counts), mse.  Data: a built-in dataset (digits: splits train / calib /
test) or an .npz with x [N, ...] float and optional y [N] int.
"""


def _examples(*commands: str, note: bool = False) -> str:
    """The ``examples:`` block of ``commands`` (the top-level help shows all of them;
    a subcommand's help only its own)."""
    lines = ["examples:"] + ["  " + e.replace("\n", "\n  ")
                             for c in commands for e in EXAMPLES[c]]
    return "\n".join(lines) + "\n" + ("\n" + CALIBRATORS_NOTE if note else "")


EPILOG = _examples(*EXAMPLES, note=True)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``<prog>: error: <message> (see <prog> --help)``,
    exit status 2 (argparse's default prints the usage block first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive(text: str) -> int:
    """argparse type: an integer >= 1 (batch sizes, image counts, bins, epochs)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be a positive integer (>= 1)")
    return value


def _non_negative(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be an integer >= 0")
    return value


def _add_data(p: argparse.ArgumentParser, split: str) -> None:
    p.add_argument("--data", metavar="D", help="dataset name or .npz (default: the "
                                               "network's `dataset:`)")
    p.add_argument("--split", default=split, choices=("train", "calib", "test"),
                   help=f"split of a built-in dataset (default: {split})")
    p.add_argument("--images", type=_non_negative, metavar="N",
                   help="use only the first N images")
    p.add_argument("--batch-size", type=_positive, default=32, metavar="B",
                   help="images per batch (default: 32)")


def _add_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _add_ptq_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bias-correction", action=argparse.BooleanOptionalAction, default=None,
                   help="correct every weight layer's bias for the mean output shift of "
                        "its weight quantization (default: the YAML's ptq.bias_correction)")
    p.add_argument("--equalize", action=argparse.BooleanOptionalAction, default=None,
                   help="cross-layer equalization before calibration (default: the YAML's "
                        "ptq.cross_layer_equalization)")


def qat_defaults() -> Any:
    from pymodel.quantization.qat import QATConfig
    return QATConfig()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m pymodel", description=__doc__.replace("``", ""), epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="command", required=True)
    fmt = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser("calibrate", help="collect activation statistics (histograms, "
                                         "min/max, EMA) over a calibration set",
                       epilog=_examples("calibrate", note=True), formatter_class=fmt)
    p.add_argument("network", type=Path, help="network YAML")
    p.add_argument("--weights", type=Path, help="weights .npz (default: the YAML's)")
    _add_data(p, "calib")
    p.add_argument("--bins", type=_positive, default=2048, help="histogram bins (default 2048)")
    p.add_argument("--out", type=Path, required=True, help="statistics .npz to write")
    _add_progress(p)

    p = sub.add_parser("quantize", help="calibrate (or load statistics) and write a "
                                        "quantized-network artifact (YAML + .npz)",
                       epilog=_examples("quantize", note=True), formatter_class=fmt)
    p.add_argument("network", type=Path, help="network YAML")
    p.add_argument("--weights", type=Path, help="weights .npz (default: the YAML's)")
    p.add_argument("--stats", type=Path, help="statistics from `calibrate` (default: "
                                              "calibrate now)")
    _add_data(p, "calib")
    p.add_argument("--calibrator", metavar="C", help="override every layer output's "
                                                     "calibrator")
    p.add_argument("--granularity", choices=("per_tensor", "per_channel"),
                   help="override every layer's weight granularity")
    p.add_argument("--weight-bits", type=int, metavar="B", help="override every layer's "
                                                                "weight bits (2..8)")
    p.add_argument("--layer-bits", metavar="L=B[,L=B]", help="weight bits per layer, "
                                                             "e.g. fc1=4,conv2=4")
    p.add_argument("--activation-bits", type=int, metavar="B",
                   help="override every layer output's activation bits (2..8)")
    _add_ptq_options(p)
    p.add_argument("--out", type=Path, required=True,
                   help="artifact stem or .yaml path (the .npz goes beside it)")
    _add_progress(p)

    p = sub.add_parser(
        "qat", help="quantization-aware fine-tuning of a float network; writes the same "
                    "artifact as quantize",
        description="""\
Fine-tune a trained float network with fake quantization (integer-exact forward,
straight-through estimator backward; docs/qat.md), then convert it to a
quantized-network artifact (the format `quantize` writes). Activation ranges start
at the PTQ calibration of the calib split and follow an EMA of the training batches
until the last --freeze-epochs epochs. Prints float, PTQ and QAT test accuracy and
checks, image by image, that the integer artifact predicts what the fake-quant
network predicts (exit status 1 if not).""",
        epilog=_examples("qat", note=True), formatter_class=fmt)
    p.add_argument("network", type=Path, help="network YAML (trained float weights)")
    p.add_argument("--weights", type=Path, help="weights .npz (default: the YAML's)")
    p.add_argument("--data", metavar="D", help="built-in dataset (splits train / calib / "
                                               "test) or .npz with x, y (default: the "
                                               "network's `dataset:`)")
    p.add_argument("--calib-data", metavar="D", help="calibration data for the initial "
                                                     "ranges (default: --data, split calib)")
    p.add_argument("--test-data", metavar="D", help="evaluation data (default: --data, "
                                                    "split test)")
    p.add_argument("--train-images", type=_positive, metavar="N",
                   help="train on the first N training images only (quick runs)")
    p.add_argument("--calibrator", metavar="C", help="override every layer output's "
                                                     "calibrator (initial ranges)")
    p.add_argument("--granularity", choices=("per_tensor", "per_channel"),
                   help="override every layer's weight granularity")
    p.add_argument("--weight-bits", type=int, metavar="B", help="override every layer's "
                                                                "weight bits (2..8)")
    p.add_argument("--layer-bits", metavar="L=B[,L=B]", help="weight bits per layer")
    p.add_argument("--activation-bits", type=int, metavar="B",
                   help="override every layer output's activation bits (2..8)")
    d = qat_defaults()
    p.add_argument("--epochs", type=_positive, default=d.epochs, help=f"epochs (default "
                                                                f"{d.epochs})")
    p.add_argument("--freeze-epochs", type=_non_negative, default=d.freeze_epochs,
                   help=f"last epochs with frozen activation ranges (default "
                        f"{d.freeze_epochs})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"Adam learning rate (default "
                                                          f"{d.lr:g})")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay,
                   help=f"L2 weight decay (default {d.weight_decay:g})")
    p.add_argument("--batch-size", type=_positive, default=d.batch_size, metavar="B",
                   help=f"images per step (default {d.batch_size})")
    p.add_argument("--ema-constant", type=float, default=d.ema_constant, metavar="C",
                   help=f"activation range EMA constant (default {d.ema_constant:g})")
    p.add_argument("--lsq", action="store_true", help="learn weight and activation "
                                                      "scales (LSQ) instead of min/max + EMA")
    p.add_argument("--mode", choices=("integer", "float"), default=d.mode,
                   help="fake-quant forward: integer-exact requantization (default) or "
                        "textbook float rescaling")
    p.add_argument("--seed", type=int, default=d.seed, help=f"shuffling seed (default "
                                                            f"{d.seed})")
    p.add_argument("--out", type=Path, required=True,
                   help="artifact stem or .yaml path (the .npz goes beside it)")
    p.add_argument("--save-weights", type=Path, metavar="NPZ",
                   help="also write the fine-tuned float weights (a network .npz)")
    _add_progress(p)

    p = sub.add_parser("eval", help="test accuracy of an artifact (integer inference) or "
                                    "of a float network",
                       epilog=_examples("eval", note=True), formatter_class=fmt)
    p.add_argument("model", type=Path, help="artifact YAML or network YAML")
    p.add_argument("--float", dest="float_net", type=Path,
                   help="float network YAML to compare with (default for an artifact: "
                        "the shipped digits network when the artifact is digits)")
    _add_data(p, "test")
    _add_progress(p)

    p = sub.add_parser("report", help="the accuracy study (PTQ, bias correction, CLE, "
                                      "QAT): docs/accuracy.md + PNG plots",
                       epilog=_examples("report"), formatter_class=fmt)
    p.add_argument("--out", type=Path, default=Path("build/accuracy"),
                   help="output directory for accuracy.md and img/*.png (default: "
                        "build/accuracy; `--out docs` refreshes the tracked study)")
    p.add_argument("--artifacts", type=Path, metavar="DIR",
                   help="also write the selected INT8, the mixed-bit and the two QAT "
                        "artifacts (W4A8 per-tensor, mixed) to DIR")
    _add_progress(p)

    p = sub.add_parser(
        "import", help="import an int8 TFLite or QDQ ONNX model as a quantized-network "
                       "artifact",
        description="""\
Import a full-integer int8 .tflite model (int8 activations, int8 weights, int32
biases) or a QDQ .onnx model (onnxruntime.quantization.quantize_static, int8; see
docs/onnx.md) as a qmac quantized-network artifact (YAML + .npz), the format `eval`,
`demo` and `make sim ARTIFACT=` run. Multipliers are computed from the model's float32
scales the way TFLite computes them; the graph is kept as a DAG.""",
        epilog=_examples("import"),
        formatter_class=fmt)
    p.add_argument("model", type=Path, help="the .tflite or .onnx file (by suffix)")
    p.add_argument("-o", "--out", type=Path, required=True,
                   help="artifact stem or .yaml path (the .npz goes beside it)")
    p.add_argument("--name", help="artifact name (default: the model file's stem)")
    p.add_argument("--rounding", choices=("double", "single"), default="double",
                   help="fixed-point rescale: double (gemmlowp; TFLite's default build, "
                        "LiteRT's reference kernels and TFLite Micro; default) or single "
                        "(a runtime built with TFLITE_SINGLE_ROUNDING)")

    p = sub.add_parser(
        "import-float", help="import a float ONNX chain network as a float network "
                             "(YAML + .npz) for calibrate / quantize / qat",
        description="""\
Import a float ONNX model (opset >= 13; Conv incl. depthwise, BatchNormalization folded,
Gemm, MatMul, Relu, Clip(0, 6), pools, Flatten; a chain, see docs/onnx.md) as a qmac
float network: NCHW / OIHW become NHWC / OHWI. Then `qmac quantize NAME.yaml` etc.""",
        epilog=_examples("import-float"),
        formatter_class=fmt)
    p.add_argument("model", type=Path, help="the float .onnx file")
    p.add_argument("-o", "--out", type=Path, required=True,
                   help="network stem or .yaml path (the .npz goes beside it)")
    p.add_argument("--name", help="network name (default: the model file's stem)")
    p.add_argument("--like", type=Path, metavar="NET.yaml",
                   help="take dataset, quant, ptq and input.quant from this network YAML")

    p = sub.add_parser(
        "export-onnx", help="export an artifact as a QDQ ONNX model onnxruntime runs",
        description="""\
Write a quantized-network artifact (a chain of conv / depthwise / FC / pools / flatten, as
`quantize` and `qat` produce) as a QDQ ONNX model (opset 13, the format onnxruntime's
quantize_static writes; see docs/onnx.md for the agreement with onnxruntime).""",
        epilog=_examples("export-onnx"),
        formatter_class=fmt)
    p.add_argument("artifact", type=Path, help="the artifact YAML")
    p.add_argument("-o", "--out", type=Path, required=True, help="the .onnx file to write")

    p = sub.add_parser("demo", help="run digits through the quantized CNN in the golden "
                                    "model, layer table and predictions",
                       epilog=_examples("demo"), formatter_class=fmt)
    p.add_argument("--images", type=_positive, default=8, metavar="N",
                   help="test images to run (default: 8)")
    p.add_argument("--artifact", type=Path,
                   help="artifact YAML (default: models/digits/digits_cnn_int8.yaml)")
    p.add_argument("--requantize", action="store_true",
                   help="calibrate the float network now instead of loading the artifact")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status.

    Bad input: one line on stderr, status 2.  Ctrl-C (at any point, start-up included):
    one line saying what was written, status 130 (128 + SIGINT, the shell convention).
    """
    command = "start-up"
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        command = args.command
        from pymodel.threads import single_blas_thread
        with single_blas_thread():          # results independent of the thread count
            return int(COMMANDS[args.command](args) or 0)
    except ValueError as exc:
        print(f"qmac {command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"qmac {command}: {_interrupted(exc)}", file=sys.stderr)
        return 130
    except BrokenPipeError:                       # output piped into `head`
        sys.stdout = open(os.devnull, "w")
        return 0


def _interrupted(exc: KeyboardInterrupt) -> str:
    """What a Ctrl-C left behind, truthfully: every output is written atomically, so each
    one is either complete or untouched; a Ctrl-C during the final renames is held back
    until they are done, and then the files named here are complete and in place."""
    from pymodel.atomicio import WrittenThenInterrupted
    if isinstance(exc, WrittenThenInterrupted):
        return (f"interrupted after the output was complete: {', '.join(map(str, exc.paths))} "
                "written in full (Ctrl-C came during the final rename)")
    return ("interrupted; outputs are written atomically: none is half-written, any not "
            "reported as written is unchanged")


# ----------------------------------------------------------------------------------------
# Commands
# ----------------------------------------------------------------------------------------

def _network(args: argparse.Namespace) -> Any:
    from pymodel.graph.network import load_network
    return load_network(args.network, weights=args.weights)


def _data(args: argparse.Namespace, default: str | None, what: str) -> Any:
    from pymodel import datasets
    name = args.data or default
    if name is None:
        raise ValueError(f"--data: {what} names no dataset; give --data NAME or FILE.npz")
    split = datasets.load(name, args.split).head(args.images)
    if len(split) == 0:
        raise ValueError(f"--data: {name} ({args.split}) gives no images (empty "
                         "calibration / evaluation set)")
    return name, split


def _calibration_meta(name: str, split: str, n: int, batch_size: int) -> dict[str, Any]:
    return {"calibration": {"dataset": name, "split": split, "images": n,
                            "batch_size": batch_size}}


def _artifact_out(args: argparse.Namespace) -> None:
    """Check, before any work, that the artifact named by ``--out`` can be written."""
    from pymodel.outputs import check_file
    out = Path(args.out)
    yaml_path = out if out.suffix in (".yaml", ".yml") else out.with_name(out.name + ".yaml")
    check_file("--out", yaml_path)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from pymodel import datasets
    from pymodel.outputs import check_file
    from pymodel.quantization import ptq
    check_file("--out", args.out)
    net = _network(args)
    name, split = _data(args, net.dataset, f"network {net.name!r}")
    stats = ptq.new_stats(net, bins=args.bins, histogram=True)
    ptq.collect_stats(net, datasets.batches(split.x, args.batch_size), stats,
                      progress=not args.no_progress, total=-(-len(split) // args.batch_size))
    ptq.save_stats(args.out, stats, {"network": net.name, "dataset": name,
                                     "split": args.split, "images": len(split)})
    print(f"wrote {args.out}: statistics of {len(stats)} tensors over {len(split)} images "
          f"({name}, {args.split})")
    return 0


def _parse_layer_bits(text: str | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, sep, bits = item.partition("=")
        if not sep or not bits.strip().lstrip("-").isdigit():
            raise ValueError(f"--layer-bits: {item!r} is not LAYER=BITS (e.g. fc1=4)")
        if name.strip() in out:
            raise ValueError(f"--layer-bits: layer {name.strip()!r} is given twice "
                             f"({name.strip()}={out[name.strip()]} and {item.strip()}); "
                             "give each layer once")
        out[name.strip()] = int(bits)
    return out


def _overrides(net: Any, args: argparse.Namespace) -> Any:
    from pymodel.calibration.calibrators import CalibratorSpec
    return net.with_overrides(
        calibrator=CalibratorSpec.parse(args.calibrator, "--calibrator") if args.calibrator
        else None,
        granularity=args.granularity, weight_bits=args.weight_bits,
        layer_weight_bits=_parse_layer_bits(args.layer_bits),
        activation_bits=args.activation_bits,
        bias_correction=getattr(args, "bias_correction", None),
        equalization=getattr(args, "equalize", None))


def cmd_quantize(args: argparse.Namespace) -> int:
    from pymodel.quantization import bias_correction, ptq
    from pymodel import datasets
    from pymodel.graph.artifact import save_artifact
    _artifact_out(args)
    net = _overrides(_network(args), args)
    if args.stats and net.equalization.enabled:
        raise ValueError("--stats: cross-layer equalization changes the float network, so "
                         "statistics collected before it do not apply; drop --stats (or "
                         "--equalize) to calibrate the equalized network now")
    net, eq_info = ptq.prepare(net)
    need_data = not args.stats or any(s.bias_correction for s in net.weight_layers)
    if need_data:
        name, split = _data(args, net.dataset, f"network {net.name!r}")
    if args.stats:
        stats = ptq.load_stats(args.stats)
        meta: dict[str, Any] = {"calibration": {"stats_file": args.stats.name}}
    else:
        stats = ptq.collect_stats(net, datasets.batches(split.x, args.batch_size),
                                  progress=not args.no_progress,
                                  total=-(-len(split) // args.batch_size))
        meta = _calibration_meta(name, args.split, len(split), args.batch_size)
    means = None
    if any(s.bias_correction for s in net.weight_layers):
        means = bias_correction.collect_input_means(net, datasets.batches(split.x,
                                                                          args.batch_size))
        meta["bias_correction_data"] = {"dataset": name, "split": args.split,
                                        "images": len(split)}
    if eq_info:
        meta["cross_layer_equalization"] = eq_info
    qnet = ptq.quantize_network(net, stats, meta, means)
    path = save_artifact(qnet, args.out)
    print(f"wrote {path} and {path.with_suffix('.npz')}: {len(qnet.layers)} layers, "
          f"{qnet.weight_bits_average():.2f} bits/weight")
    if eq_info:
        print(f"  cross-layer equalization: {', '.join(eq_info['pairs'])} "
              f"({eq_info['sweeps']} sweeps)")
    corrected = [s.name for s in net.weight_layers if s.bias_correction]
    if corrected:
        print(f"  bias correction: {', '.join(corrected)}")
    for q in qnet.layers:
        if q.has_weights:
            print(f"  {q.name:10s} W{q.weight_bits} {q.weight_granularity:11s} "
                  f"out [{q.output.rmin:.4g}, {q.output.rmax:.4g}] by {q.output.calibrator}")
    return 0


def _is_artifact(path: Path) -> bool:
    from pymodel.schema import load_yaml
    doc = load_yaml(path)
    return isinstance(doc, dict) and "format" in doc


def cmd_import(args: argparse.Namespace) -> int:
    from pymodel.frontends.tflite_import import import_tflite
    from pymodel.graph.artifact import save_artifact
    if args.model.suffix.lower() == ".onnx":
        from pymodel.frontends.onnx_qdq import import_onnx_qdq
        qnet = import_onnx_qdq(args.model, name=args.name, rounding=args.rounding)
    else:
        qnet = import_tflite(args.model, name=args.name, rounding=args.rounding)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    path = save_artifact(qnet, args.out)
    ops: dict[str, int] = {}
    for q in qnet.layers:
        ops[q.op] = ops.get(q.op, 0) + 1
    macs = sum(q.macs for q in qnet.layers)
    print(f"wrote {path} and {path.with_suffix('.npz')}: {qnet.name}, {len(qnet.layers)} "
          f"layers ({', '.join(f'{n} {k}' for k, n in sorted(ops.items()))}), input "
          f"{list(qnet.input_shape)}, {macs:,} MACs per image")
    return 0


def cmd_import_float(args: argparse.Namespace) -> int:
    from pymodel.frontends.onnx_float import import_onnx_float, save_float_network
    from pymodel.schema import load_yaml
    like = load_yaml(args.like) if args.like is not None else None
    config, params, net = import_onnx_float(args.model, name=args.name, like=like)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    path = save_float_network(config, params, args.out)
    print(f"wrote {path} and {path.with_suffix('.npz')}: {net.name}, {len(net.layers)} layers "
          f"({', '.join(s.op for s in net.layers)}), input {list(net.input_shape)}")
    return 0


def cmd_export_onnx(args: argparse.Namespace) -> int:
    from pymodel.frontends.onnx_export import export_onnx
    from pymodel.graph.artifact import load_artifact
    if args.out.suffix != ".onnx":
        raise ValueError(f"--out: {str(args.out)!r} must end in .onnx")
    qnet = load_artifact(args.artifact)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    path = export_onnx(qnet, args.out)
    print(f"wrote {path}: {qnet.name}, {len(qnet.layers)} layers, QDQ opset 13")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import numpy as np
    from pymodel.training import digits
    from pymodel.graph import inference
    from pymodel.graph.network import load_network
    if _is_artifact(args.model):
        from pymodel.graph.artifact import load_artifact
        qnet = load_artifact(args.model)
        cal = qnet.meta.get("calibration", {}) if isinstance(qnet.meta, dict) else {}
        default = cal.get("dataset") if isinstance(cal, dict) else None
        fnet_path = args.float_net or (digits.NETWORK_YAML if qnet.name == "digits_cnn"
                                       else None)
        fnet = load_network(fnet_path) if fnet_path else None
        name, split = _data(args, default or (fnet.dataset if fnet else None),
                            f"artifact {qnet.name!r}")
        t0 = time.perf_counter()
        pred = inference.predict(qnet, split.x, args.batch_size, progress=not args.no_progress)
        dt = time.perf_counter() - t0
        print(f"{qnet.name} (artifact {args.model}, {qnet.weight_bits_average():.2f} "
              f"bits/weight): integer inference on {len(split)} images ({name}, "
              f"{args.split}) in {dt:.2f} s")
        if split.y is not None:
            print(f"  int accuracy   {100 * np.mean(pred == split.y):.2f} %")
        if fnet is not None:
            fpred = fnet.forward(split.x).argmax(axis=1)
            if split.y is not None:
                print(f"  float accuracy {100 * np.mean(fpred == split.y):.2f} %")
            print(f"  agreement with float predictions {100 * np.mean(pred == fpred):.2f} %")
        return 0
    fnet = load_network(args.model)
    name, split = _data(args, fnet.dataset, f"network {fnet.name!r}")
    fpred = fnet.forward(split.x).argmax(axis=1)
    print(f"{fnet.name} (float): {len(split)} images ({name}, {args.split})")
    if split.y is not None:
        print(f"  float accuracy {100 * np.mean(fpred == split.y):.2f} %")
    return 0


def cmd_qat(args: argparse.Namespace) -> int:
    import numpy as np
    from pymodel import atomicio, datasets
    from pymodel.graph import inference
    from pymodel.quantization import ptq, qat
    from pymodel.graph.artifact import save_artifact
    from pymodel.outputs import check_file
    _artifact_out(args)
    if args.save_weights:
        check_file("--save-weights", args.save_weights)
    net = _overrides(_network(args), args)
    default = net.dataset
    src = args.data or default
    if src is None:
        raise ValueError(f"--data: network {net.name!r} names no dataset; give --data NAME "
                         "or FILE.npz")
    train = datasets.load(src, "train").head(args.train_images)
    calib = datasets.load(args.calib_data or src, "calib")
    test = datasets.load(args.test_data or src, "test")
    if train.y is None:
        raise ValueError(f"--data: {src} has no labels 'y'; QAT needs labelled training data")
    if len(train) == 0 or len(calib) == 0:
        raise ValueError("--data: empty training or calibration set")
    config = qat.QATConfig(epochs=args.epochs, freeze_epochs=args.freeze_epochs, lr=args.lr,
                           weight_decay=args.weight_decay, batch_size=args.batch_size,
                           ema_constant=args.ema_constant, lsq=args.lsq, seed=args.seed,
                           mode=args.mode)
    t0 = time.perf_counter()
    ptq_net = net.with_overrides(bias_correction=False, equalization=False)
    base = ptq.calibrate(ptq_net, calib.x)
    qnet, hist = qat.finetune(net, train.x, train.y, calib.x, config,
                              progress=not args.no_progress)
    meta = {"calibration": {"dataset": args.calib_data or src, "split": "calib",
                            "images": len(calib), "batch_size": config.calib_batch_size},
            "qat": {**config.to_meta(), "train_data": src, "train_images": len(train)}}
    art = qat.convert(qnet, meta)
    if args.save_weights:
        atomicio.save_npz(args.save_weights, qnet.state())
    path = save_artifact(art, args.out)
    dt = time.perf_counter() - t0
    print(f"wrote {path} and {path.with_suffix('.npz')}: {len(art.layers)} layers, "
          f"{art.weight_bits_average():.2f} bits/weight ({config.epochs} epochs, "
          f"{dt:.1f} s; final training loss {hist.loss[-1]:.4f})")
    if args.save_weights:
        print(f"wrote {args.save_weights}: fine-tuned float weights")
    if len(test):
        ag = qat.compare(qnet, art, test.x)
        print(f"  integer artifact vs fake-quant network on {ag.images} images: "
              f"{ag.same_prediction} identical predictions, {ag.same_logits} identical "
              f"int8 logit vectors")
        if test.y is not None:
            p_acc = np.mean(inference.predict(base, test.x) == test.y)
            q_acc = np.mean(inference.predict(art, test.x) == test.y)
            f_acc = np.mean(net.forward(test.x).argmax(axis=1) == test.y)
            print(f"  test accuracy: float {100 * f_acc:.2f} %, PTQ {100 * p_acc:.2f} %, "
                  f"QAT {100 * q_acc:.2f} %")
        if ag.same_prediction != ag.images:
            print(f"qmac qat: error: the integer artifact and the fake-quant network "
                  f"disagree on images {ag.mismatches[:10]}", file=sys.stderr)
            return 1
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from pymodel.outputs import check_dir
    from pymodel.study.accuracy import write_report
    check_dir("--out", args.out)
    check_dir("--out", args.out / "img")
    if args.artifacts is not None:
        if not args.artifacts.is_dir():
            raise ValueError(f"--artifacts: directory {args.artifacts} does not exist")
        check_dir("--artifacts", args.artifacts)
    st = write_report(args.out, progress=not args.no_progress, artifacts=args.artifacts)
    sel = st.selected_eval
    assert sel is not None
    from pymodel.threads import blas_kernel
    print(f"wrote {args.out / 'accuracy.md'} and plots in {args.out / 'img'} "
          f"({blas_kernel()}, one thread)")
    print(f"  FP32 {100 * st.fp32_accuracy:.2f} %; INT8 per-channel ({st.selected}) "
          f"{100 * sel.accuracy:.2f} %; mixed {st.mixed['average']:.2f} bits/weight "
          f"{100 * st.mixed['eval'].accuracy:.2f} %")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import numpy as np
    from pymodel import datasets
    from pymodel.training import digits
    from pymodel.graph import inference
    from pymodel.quantization import ptq
    from pymodel.graph.artifact import load_artifact
    if isinstance(args.images, bool) or args.images < 1:
        raise ValueError(f"--images: {args.images} must be >= 1")
    t0 = time.perf_counter()
    net = digits.load()
    test = datasets.digits("test")
    if args.images > len(test):
        raise ValueError(f"--images: {args.images} exceeds the {len(test)} test images")
    if args.artifact and args.requantize:
        raise ValueError("--requantize: calibrates the digits network; it does not go with "
                         "--artifact")
    if args.requantize:
        cal = datasets.digits("calib")
        qnet = ptq.calibrate(net, cal.x, 32, meta=_calibration_meta("digits", "calib",
                                                                    len(cal), 32))
        source = f"calibrated now on {len(cal)} calibration images"
    else:
        path = Path(args.artifact or digits.INT8_ARTIFACT)
        qnet = load_artifact(path)
        try:
            shown = path.resolve().relative_to(Path.cwd().resolve())
        except ValueError:
            shown = path
        source = f"artifact {shown}"
    x, y = test.x[:args.images], test.y[:args.images]
    imported = _imported_test_data(qnet)
    if imported is not None:                      # an imported model: its own test images
        xq, y = imported[0][:args.images], imported[1][:args.images]
        source += f" (test images {qnet.meta['source']['test_data']})"
    else:
        xq = inference.quantize_input(qnet, x)
    outs = inference.run_network(qnet, xq)
    logits = outs[-1].reshape(len(xq), -1)
    pred = logits.argmax(axis=1)
    fpred = net.forward(x).argmax(axis=1) if imported is None else np.full(len(y), -1)
    print(f"qmac demo: {qnet.name}, {source}")
    print("golden model (pymodel) integer inference; `make sim` runs the same network on "
          "the RTL layer engine and checks it against this\n")
    print(f"{'layer':8s} {'op':16s} {'input':>9s} {'output':>9s} {'MACs/img':>9s}  "
          f"{'weights':18s} {'out zp':>6s} {'clamp':>11s}")
    total = 0
    for q in qnet.layers:
        w = (f"INT{q.weight_bits} {q.weight_granularity}" if q.has_weights else "-")
        print(f"{q.name:8s} {q.op:16s} {'x'.join(map(str, q.input_shape)):>9s} "
              f"{'x'.join(map(str, q.output_shape)):>9s} {q.macs:9d}  {w:18s} "
              f"{q.output.zero_point:6d} {f'[{q.act_min}, {q.act_max}]':>11s}")
        total += q.macs
    print(f"total MACs per image: {total}; {qnet.weight_bits_average():.2f} bits/weight\n")
    print(f"{'image':>5s} {'label':>5s} {'int8':>5s} {'float':>5s}  int8 logits")
    for i in range(len(y)):
        flag = "" if pred[i] == y[i] else "  <- wrong"
        print(f"{i:5d} {int(y[i]):5d} {int(pred[i]):5d} {int(fpred[i]):5d}  "
              f"{' '.join(f'{v:4d}' for v in logits[i])}{flag}")
    n = len(y)
    if imported is not None:
        print(f"\nint8 correct {int(np.sum(pred == y))}/{n} (an imported model has no float "
              f"network here; the float column is -1)  ({time.perf_counter() - t0:.2f} s)")
        return 0
    print(f"\nint8 correct {int(np.sum(pred == y))}/{n}; float correct "
          f"{int(np.sum(fpred == y))}/{n}; int8 == float prediction "
          f"{int(np.sum(pred == fpred))}/{n}  ({time.perf_counter() - t0:.2f} s)")
    return 0


def _imported_test_data(qnet: Any) -> "tuple[Any, Any] | None":
    """An imported artifact's bundled test images: (int8 inputs, labels), or None."""
    import numpy as np
    src = qnet.meta.get("source", {}) if isinstance(qnet.meta, dict) else {}
    path = src.get("test_data") if isinstance(src, dict) else None
    if not path or not Path(path).is_file():
        return None
    with np.load(path) as z:
        if "x_int8" not in z.files or "labels" not in z.files:
            return None
        return np.asarray(z["x_int8"], np.int8), np.asarray(z["labels"])


COMMANDS = {"calibrate": cmd_calibrate, "quantize": cmd_quantize, "qat": cmd_qat,
            "eval": cmd_eval, "report": cmd_report, "demo": cmd_demo, "import": cmd_import,
            "import-float": cmd_import_float, "export-onnx": cmd_export_onnx}
