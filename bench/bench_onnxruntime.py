"""The golden model beside onnxruntime: same run, same inputs, 2 threads each.

Rows (issue 14): int8 GEMM (:func:`pymodel.arithmetic.fast_gemm.matmul_int32_fast`,
checked ``==`` ``matmul_int32``) against ``MatMulInteger``; the prepared conv / depthwise /
fully-connected layers (:mod:`pymodel.ops.prepared`, what
:func:`pymodel.graph.inference.run_layer` runs; the depthwise layer through its compiled
kernel, :mod:`pymodel.ops.depthwise_jit`, warmed up before timing -- the first call's
compile / cache-load time and the numpy fallback's time are printed under the table)
against ``QLinearConv`` / ``QLinearMatMul`` with the same float scales.  Each row's two timings are interleaved
(golden, onnxruntime, golden, ...) and the best of the rounds is kept, so a load change
on the machine hits both.  ratio = onnxruntime time / golden time (> 1: the golden model
is faster).

onnxruntime runs each model in two sessions, with and without spinning intra-op threads,
and keeps the faster (:class:`OrtSessions`).

Exactness: ``MatMulInteger`` is integer-exact, so the golden output must equal it
(checked with ``==``, the run stops otherwise); every prepared layer is checked ``==``
its readable :mod:`pymodel.ops.layers` reference on the row's inputs, every run.  ``QLinearConv`` / ``QLinearMatMul``
requantize in float (``x * (s_x s_w / s_y)`` rounded half to even), the golden model in
TFLite's fixed point (``m0``, ``shift``, gemmlowp double rounding): the outputs agree
except where the two roundings part, by one step; the table gives the share of equal
elements and the largest difference.

Threads: onnxruntime ``intra_op_num_threads=2`` (``inter_op_num_threads=1``); the golden
model 2 threads of :mod:`pymodel.parallel` (GEMM row blocks, channel groups of the
element-wise passes), each calling OpenBLAS single-threaded (threadpoolctl) -- OpenBLAS's
own spinning threads lose badly on a loaded machine.

LiteRT: images/s of the golden model on the imported ``models/tflite`` test models beside
the LiteRT interpreter (:func:`litert_rows`).

Then entropy calibration on 10^7 samples: :class:`pymodel.calibration.calibrators.Calibrator`
(``entropy`` and ``entropy:onnxruntime``) against onnxruntime's own
``HistogramCollector`` (``method="entropy"``) with matched settings -- 2048 bins and 128
levels per side, ``num_bins=4096`` over ``[-T, T]`` and ``num_quantized_bins=256`` there,
same batches (:func:`entropy_calibration`).
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np

from pymodel.arithmetic.fixedpoint import quantize_multiplier
from pymodel.arithmetic.fast_gemm import matmul_int32_fast
from pymodel.arithmetic.gemm import matmul_int32
from pymodel.calibration.calibrators import Calibrator, CalibratorSpec, entropy_threshold_bins
from pymodel.ops import layers as L
from pymodel.ops.layers import RequantParams
from pymodel.ops.prepared import PreparedConv2d, PreparedDepthwise, PreparedFullyConnected

#: Threads of each side (``QMAC_BENCH_THREADS=n`` overrides, e.g. 1 on a loaded machine,
#: where OpenBLAS's spinning threads lose more than onnxruntime's).
THREADS = int(os.environ.get("QMAC_BENCH_THREADS", "2"))
ROUNDS = 5
CAL_SAMPLES = 10_000_000
CAL_BATCHES = 10
REPO = Path(__file__).resolve().parents[1]
NOTES: list[str] = []     # printed under the table


# ----------------------------------------------------------------------------------------
# onnxruntime graphs (built with the onnx package's helpers)
# ----------------------------------------------------------------------------------------

class OrtSessions:
    """One model in two onnxruntime sessions: the default (idle intra-op threads spin)
    and ``session.intra_op.allow_spinning=0``.  Spinning wins on an idle machine and
    loses on a loaded one; each row keeps onnxruntime's better time."""

    def __init__(self, model) -> None:  # type: ignore[no-untyped-def]
        self.spin = _session(model, spin=True)
        self.nospin = _session(model, spin=False)

    def run(self, feed: dict) -> list:
        return self.spin.run(None, feed)

    def calls(self, feed: dict) -> list[Callable[[], object]]:
        return [lambda: self.spin.run(None, feed), lambda: self.nospin.run(None, feed)]


def _session(model, spin: bool):  # type: ignore[no-untyped-def]
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = THREADS
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    if not spin:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model.SerializeToString(), so,
                                providers=["CPUExecutionProvider"])


def _model(nodes, inputs, inits):  # type: ignore[no-untyped-def]
    from onnx import TensorProto, helper
    out = helper.make_tensor_value_info("y", TensorProto.INT32 if nodes[0].op_type ==
                                        "MatMulInteger" else TensorProto.INT8, None)
    graph = helper.make_graph(nodes, "bench", inputs, [out], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def _inp(name: str, arr: np.ndarray):  # type: ignore[no-untyped-def]
    from onnx import TensorProto, helper
    dt = {np.dtype(np.int8): TensorProto.INT8}[arr.dtype]
    return helper.make_tensor_value_info(name, dt, list(arr.shape))


def _init(name: str, arr: np.ndarray):  # type: ignore[no-untyped-def]
    from onnx import numpy_helper
    return numpy_helper.from_array(np.asarray(arr), name)


def matmul_integer_session(a: np.ndarray, b: np.ndarray):  # type: ignore[no-untyped-def]
    from onnx import helper
    node = helper.make_node("MatMulInteger", ["a", "b"], ["y"])
    return OrtSessions(_model([node], [_inp("a", a), _inp("b", b)], []))


def qlinear_conv_session(x_nchw: np.ndarray, w_oihw: np.ndarray, q: dict, group: int):  # type: ignore[no-untyped-def]
    from onnx import helper
    pads = [w_oihw.shape[2] // 2, w_oihw.shape[3] // 2] * 2
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"],
                            ["y"], pads=pads, group=group)
    inits = [_init("xs", np.float32(q["xs"])), _init("xz", np.int8(q["xz"])),
             _init("w", w_oihw), _init("ws", q["ws"].astype(np.float32)),
             _init("wz", np.zeros(w_oihw.shape[0], np.int8)), _init("ys", np.float32(q["ys"])),
             _init("yz", np.int8(q["yz"])), _init("b", q["bias"].astype(np.int32))]
    return OrtSessions(_model([node], [_inp("x", x_nchw)], inits))


def qlinear_matmul_session(a: np.ndarray, b_kn: np.ndarray, q: dict):  # type: ignore[no-untyped-def]
    from onnx import helper
    node = helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"],
                            ["y"])
    inits = [_init("as", np.float32(q["xs"])), _init("az", np.int8(q["xz"])),
             _init("b", b_kn), _init("bs", np.float32(q["ws"][0])), _init("bz", np.int8(0)),
             _init("ys", np.float32(q["ys"])), _init("yz", np.int8(q["yz"]))]
    return OrtSessions(_model([node], [_inp("a", a)], inits))


# ----------------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------------

def _calls_for(fn: Callable[[], object], min_time: float) -> int:
    fn()
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - t0 >= min_time or n >= 1 << 16:
            return n
        n *= 2


def interleaved(golden: Callable[[], object], others: list[Callable[[], object]],
                min_time: float = 0.15, rounds: int = ROUNDS) -> tuple[float, float]:
    """Best seconds per call of ``golden`` and of the best of ``others``, measured in
    alternating rounds (golden, other 1, other 2, golden, ...)."""
    fns = [golden] + list(others)
    calls = [_calls_for(fn, min_time) for fn in fns]
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for i, (fn, n) in enumerate(zip(fns, calls)):
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            best[i] = min(best[i], (time.perf_counter() - t0) / n)
    return best[0], min(best[1:], default=float("nan"))


# ----------------------------------------------------------------------------------------
# Rows
# ----------------------------------------------------------------------------------------

def _qparams(rng: np.random.Generator, channels: int) -> dict:
    """Float scales / zero points of one layer and the golden model's integer parameters."""
    xs, ys = 0.02, 0.05
    ws = rng.uniform(0.001, 0.004, channels)
    q = {"xs": xs, "xz": 3, "ws": ws.astype(np.float32).astype(np.float64), "ys": ys,
         "yz": -5, "bias": rng.integers(-2000, 2000, channels).astype(np.int32)}
    # the multiplier ORT uses: float32 scales, x_scale * w_scale / y_scale
    real = (np.float32(xs) * q["ws"].astype(np.float32) / np.float32(ys)).astype(np.float64)
    m0, shift = quantize_multiplier(real)
    q["rq"] = RequantParams(bias=q["bias"], m0=m0, shift=shift, out_zero_point=q["yz"])
    return q


def _check_exact(row: str, golden: np.ndarray, reference: np.ndarray) -> None:
    """Stop the run unless the fast path equals the readable layer (``==``)."""
    if not np.array_equal(golden, reference):
        raise SystemExit(f"bench: {row}: prepared layer != pymodel.ops.layers reference")


def _agreement(a: np.ndarray, b: np.ndarray) -> str:
    eq = float(np.mean(a == b))
    diff = int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())
    return f"{100 * eq:6.2f}% equal, max |diff| {diff}"


def gemm_rows(rng: np.random.Generator) -> list[tuple]:
    rows = []
    for m, k, n in ((256, 256, 256), (512, 512, 512), (3136, 576, 64)):
        a = rng.integers(-128, 128, (m, k)).astype(np.int8)
        b = rng.integers(-128, 128, (k, n)).astype(np.int8)
        sess = matmul_integer_session(a, b)
        feed = {"a": a, "b": b}
        y_ort = sess.run(feed)[0]
        y_gold = matmul_int32_fast(a, b)
        if not (np.array_equal(y_gold, y_ort) and np.array_equal(y_gold, matmul_int32(a, b))):
            raise SystemExit(f"bench: GEMM {m}x{k}x{n}: golden != MatMulInteger")
        tg, to = interleaved(lambda: matmul_int32_fast(a, b), sess.calls(feed))
        rows.append((f"GEMM {m}x{k}x{n}", "MatMulInteger", m * k * n, tg, to,
                     "bit-exact (== checked)"))
    return rows


def conv_rows(rng: np.random.Generator) -> list[tuple]:
    rows = []
    for hw, cin, cout in ((56, 64, 64), (14, 256, 256)):
        x = rng.integers(-128, 128, (1, hw, hw, cin)).astype(np.int8)
        w = rng.integers(-127, 128, (cout, 3, 3, cin)).astype(np.int8)
        q = _qparams(rng, cout)
        prep = PreparedConv2d(w, q["xz"], q["rq"], 1, "same")
        _check_exact(f"conv {hw}x{hw}x{cin}->{cout}", prep(x),
                     L.conv2d(x, w, q["xz"], q["rq"], 1, "same"))
        x_nchw = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        sess = qlinear_conv_session(x_nchw, np.ascontiguousarray(w.transpose(0, 3, 1, 2)), q, 1)
        feed = {"x": x_nchw}
        y_ort = sess.run(feed)[0].transpose(0, 2, 3, 1)
        agree = _agreement(prep(x), y_ort)
        tg, to = interleaved(lambda: prep(x), sess.calls(feed))
        rows.append((f"conv 3x3 {hw}x{hw}x{cin}->{cout}", "QLinearConv",
                     hw * hw * 9 * cin * cout, tg, to, agree))
    hw, c = 112, 32
    x = rng.integers(-128, 128, (1, hw, hw, c)).astype(np.int8)
    w = rng.integers(-127, 128, (1, 3, 3, c)).astype(np.int8)
    q = _qparams(rng, c)
    prep = PreparedDepthwise(w, q["xz"], q["rq"], c, 1, "same")
    t_first, y_first = _timed(lambda: prep(x))      # warm-up: JIT compile or cache load
    _check_exact(f"depthwise {hw}x{hw}x{c}", y_first,
                 L.depthwise_conv2d(x, w, q["xz"], q["rq"], 1, "same"))
    x_nchw = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    w_oihw = np.ascontiguousarray(w.transpose(3, 0, 1, 2))           # [C, 1, 3, 3]
    sess = qlinear_conv_session(x_nchw, w_oihw, q, group=c)
    feed = {"x": x_nchw}
    agree = _agreement(prep(x), sess.run(feed)[0].transpose(0, 2, 3, 1))
    tg, to = interleaved(lambda: prep(x), sess.calls(feed))
    rows.append((f"depthwise 3x3 {hw}x{hw}x{c}", "QLinearConv g=32", hw * hw * 9 * c, tg, to,
                 agree))
    if prep.kernel is not None:                     # the numpy fallback, same run
        kernel, prep.kernel = prep.kernel, None
        t_np, _ = interleaved(lambda: prep(x), [])
        prep.kernel = kernel
        NOTES.append(f"depthwise: compiled kernel (pymodel.ops.depthwise_jit, numba "
                     f"{_numba_version()}, {'float64' if kernel.fmode else 'int64'} "
                     f"requantize); first call {t_first:.2f} s (compile, or load of the "
                     f"build/numba cache; not timed in the row); the numpy fallback "
                     f"(QMAC_JIT=0) {1e3 * t_np:.3f} ms in this run")
    else:
        NOTES.append("depthwise: numpy path (numba not installed or QMAC_JIT=0)")
    return rows


def _numba_version() -> str:
    import numba
    return str(numba.__version__)


def fc_rows(rng: np.random.Generator) -> list[tuple]:
    rows = []
    for m, k, n in ((256, 1024, 1024), (1, 4096, 1024)):
        x = rng.integers(-128, 128, (m, k)).astype(np.int8)
        w = rng.integers(-127, 128, (n, k)).astype(np.int8)
        q = _qparams(rng, n)
        q["ws"] = np.full(n, q["ws"][0])                     # QLinearMatMul: per-tensor
        q["bias"] = np.zeros(n, np.int32)                    # ... and no bias input
        q = {**q, **{k2: v for k2, v in _rebuild(q).items()}}
        prep = PreparedFullyConnected(w, q["xz"], q["rq"])
        _check_exact(f"FC {m}x{k}->{n}", prep(x), L.fully_connected(x, w, q["xz"], q["rq"]))
        sess = qlinear_matmul_session(x, np.ascontiguousarray(w.T), q)
        feed = {"a": x}
        agree = _agreement(prep(x), sess.run(feed)[0])
        tg, to = interleaved(lambda: prep(x), sess.calls(feed))
        rows.append((f"FC {m}x{k}->{n}", "QLinearMatMul", m * k * n, tg, to, agree))
    return rows


def _rebuild(q: dict) -> dict:
    real = (np.float32(q["xs"]) * q["ws"].astype(np.float32) / np.float32(q["ys"])
            ).astype(np.float64)
    m0, shift = quantize_multiplier(real)
    return {"rq": RequantParams(bias=q["bias"], m0=m0, shift=shift, out_zero_point=q["yz"])}


LITERT_IMAGES = 64


def golden_model_runner(path: Path) -> tuple[Callable[[np.ndarray], np.ndarray], dict]:
    """The imported artifact of ``path`` as a function of the model's input batch
    (int8, or float32 for a float interface: quantized first, as the model's QUANTIZE) to
    the int8 output tensor; and the import metadata."""
    from pymodel.frontends.tflite_import import import_tflite
    from pymodel.graph.inference import run_tensors
    from pymodel.ops.quantize import prepare_quantize, quantize
    qnet = import_tflite(path)
    meta = qnet.meta["tflite"]
    last = qnet.layers[-1].name
    qin = prepare_quantize(np.float32(qnet.input.scale), qnet.input.zero_point)

    def golden(x: np.ndarray) -> np.ndarray:
        xq = quantize(x, qin) if x.dtype != np.int8 else x
        return run_tensors(qnet, xq)[last]
    return golden, {**meta, "qnet": qnet}


def _litert_interpreter(blob: bytes, reference: bool):  # type: ignore[no-untyped-def]
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    kind = OpResolverType.BUILTIN_REF if reference else OpResolverType.AUTO
    it = Interpreter(model_content=blob, num_threads=1 if reference else THREADS,
                     experimental_op_resolver_type=kind)
    it.allocate_tensors()
    return it


def litert_rows() -> list[tuple]:
    """Images/s of the golden model (the imported artifact through
    :func:`pymodel.graph.inference.run_tensors`, all images through each op at once, the
    prepared layers cached across calls) beside the LiteRT interpreter on the same
    images: ``BUILTIN_REF`` (reference kernels, 1 thread) and the default resolver
    (XNNPACK delegate + optimized kernels, :data:`THREADS` threads), one image per
    ``invoke`` (the models have batch 1).

    Outputs: the golden int8 output tensor against LiteRT reference kernels' (read with
    :func:`pymodel.frontends.runtimes.run`), and against the default interpreter's graph
    output (dequantized golden for a float interface).

    Returns:
        ``(model, golden s/image, ref s/image, default s/image, agreement text)`` rows.
    """
    import warnings

    from pymodel.frontends.runtimes import run
    rows = []
    for path in sorted(REPO.glob("models/tflite/*.tflite")):
        golden, meta = golden_model_runner(path)
        qnet = meta["qnet"]
        with np.load(path.with_name(path.stem + "_test.npz")) as z:
            x = (np.asarray(z["x_float"], np.float32) if meta["float_input"]
                 else np.asarray(z["x_int8"], np.int8))[:LITERT_IMAGES]
        n = len(x)
        blob = path.read_bytes()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            ref_out = run(path, x, "litert-ref").tensors[int(meta["output_tensor"])]
        ref_it, def_it = _litert_interpreter(blob, True), _litert_interpreter(blob, False)

        def loop(it) -> np.ndarray:  # type: ignore[no-untyped-def]
            i_in = it.get_input_details()[0]["index"]
            i_out = it.get_output_details()[0]["index"]
            outs = []
            for k in range(n):
                it.set_tensor(i_in, x[k:k + 1])
                it.invoke()
                outs.append(it.get_tensor(i_out))
            return np.concatenate(outs)
        y = golden(x)
        y_def = loop(def_it)
        out_q = qnet.layers[-1].output
        y_cmp = ((y.astype(np.float32) - np.float32(out_q.zero_point)) * np.float32(out_q.scale)
                 if y_def.dtype == np.float32 else y)
        eq_ref = int(np.sum(y.reshape(n, -1) == ref_out.reshape(n, -1)))
        d_ref = int(np.abs(y.astype(np.int32).reshape(n, -1)
                           - ref_out.astype(np.int32).reshape(n, -1)).max())
        eq_def = int(np.sum(y_cmp.reshape(n, -1) == y_def.reshape(n, -1)))
        size = y.size
        tg, tr = interleaved(lambda: golden(x), [lambda: loop(ref_it)], min_time=0.3, rounds=3)
        _, td = interleaved(lambda: golden(x), [lambda: loop(def_it)], min_time=0.3, rounds=3)
        rows.append((path.stem, tg / n, tr / n, td / n,
                     f"ref {eq_ref}/{size} equal (max |diff| {d_ref}), default "
                     f"{eq_def}/{size} equal"))
    return rows


def print_litert(rows: list[tuple]) -> None:
    print(f"\nLiteRT: committed models/tflite/*.tflite, {LITERT_IMAGES} bundled test images "
          f"each; golden model: all images through each op at once ({THREADS} threads); "
          f"LiteRT: one image per invoke, BUILTIN_REF (1 thread) and the default resolver "
          f"(XNNPACK, {THREADS} threads)")
    print(f"{'model':18s} {'golden img/s':>12s} {'ref img/s':>10s} {'default img/s':>13s} "
          f"{'vs ref':>7s} {'vs default':>10s}  golden output vs LiteRT")
    for name, tg, tr, td, agree in rows:
        print(f"{name:18s} {1 / tg:12.0f} {1 / tr:10.0f} {1 / td:13.0f} {tr / tg:7.2f} "
              f"{td / tg:10.2f}  {agree}")


# ----------------------------------------------------------------------------------------
# Entropy calibration against onnxruntime's HistogramCollector
# ----------------------------------------------------------------------------------------

def entropy_calibration(rng: np.random.Generator) -> None:
    """Speed and thresholds of entropy calibration: this model vs onnxruntime's
    ``HistogramCollector``, same batches, matched settings (2048 bins and 128 levels per
    side; onnxruntime ``num_bins=4096`` over ``[-T, T]``, ``num_quantized_bins=256``).

    Two divergences here: ``entropy`` (TensorRT's, the default -- not expected to agree
    with onnxruntime's, see :mod:`pymodel.calibration.kl_onnxruntime`) and
    ``entropy:onnxruntime`` (onnxruntime's divergence on our split-invariant histogram):
    the latter must give onnxruntime's range within one onnxruntime bin where onnxruntime
    sees the data in one batch.  onnxruntime's histogram takes its bin width from the
    first batch, so its own threshold moves with the split; ours does not.
    Times: end to end (histogram + search) and the search alone.
    """
    from onnxruntime.quantization.calibrate import HistogramCollector

    from pymodel.calibration.calibrators import onnxruntime_grid
    from pymodel.calibration.kl_onnxruntime import entropy_window_onnxruntime
    data = {"max(0, 0.5 t(3))": np.maximum(0.5 * rng.standard_t(3, CAL_SAMPLES), 0),
            "N(0, 1)": rng.normal(size=CAL_SAMPLES)}
    print(f"\nentropy calibration, {CAL_SAMPLES:.0e} float32 samples, in {CAL_BATCHES} batches "
          "and in one; 2048 bins / 128 levels per side here, onnxruntime HistogramCollector("
          "method='entropy', num_bins=4096 over [-T, T], num_quantized_bins=256)")

    def ours(parts: list[np.ndarray], spec: str) -> Calibrator:
        cal = Calibrator(CalibratorSpec.parse(spec))
        for p in parts:
            cal.update(p)
        cal.compute_range()
        return cal

    def theirs(parts: list[np.ndarray]) -> tuple[float, float, float, float]:
        """(lower, upper threshold, onnxruntime bin width, seconds of the search)."""
        col = HistogramCollector(method="entropy", symmetric=False, num_bins=4096,
                                 num_quantized_bins=256, percentile=99.999, scenario="same")
        with contextlib.redirect_stdout(io.StringIO()):
            for p in parts:
                col.collect({"x": p})
            t_search, res = _timed(col.compute_collection_result)
        edges = col.histogram_dict["x"][1]
        return float(res["x"][0]), float(res["x"][1]), float(edges[1] - edges[0]), t_search

    print(f"{'data':18s} {'batches':>7s} {'divergence':11s} {'ours range':>19s} "
          f"{'ORT range':>19s} {'|d| ORT bins':>12s} {'ours s':>7s} {'ORT s':>7s} "
          f"{'speed-up':>8s} {'search ours s':>13s} {'ORT s':>7s} {'speed-up':>8s}")
    for name, x64 in data.items():
        x = x64.astype(np.float32)
        for parts in (np.array_split(x, CAL_BATCHES), [x]):
            t_ort, (lo_o, hi_o, w_o, t_os) = _timed(lambda: theirs(parts))
            for spec in ("entropy", "entropy:onnxruntime"):
                t_ours = min(_timed(lambda: ours(parts, spec))[0] for _ in range(2))
                cal = ours(parts, spec)
                r = cal.compute_range()
                hist = cal.stats.hist  # type: ignore[union-attr]
                if spec == "entropy":
                    counts = hist.counts
                    search = lambda: entropy_threshold_bins(counts, 128, 128)  # noqa: E731
                else:
                    search = lambda: entropy_window_onnxruntime(  # noqa: E731
                        onnxruntime_grid(cal.stats)[0], 256)
                t_s = min(_timed(search)[0] for _ in range(3))
                d = max(abs(r.rmax - hi_o), abs(r.rmin - lo_o)) / w_o
                div = "TensorRT" if spec == "entropy" else "onnxruntime"
                print(f"{name:18s} {len(parts):7d} {div:11s} [{r.rmin:8.4f}, {r.rmax:7.4f}] "
                      f"[{lo_o:8.4f}, {hi_o:7.4f}] {d:12.2f} {t_ours:7.3f} {t_ort:7.3f} "
                      f"{t_ort / t_ours:7.1f}x {t_s:13.4f} {t_os:7.3f} {t_os / t_s:7.0f}x")
    print("ours: the same range for every batching (tests/test_calibration_split.py); "
          "entropy:onnxruntime is onnxruntime's divergence -- compare with ORT's one-batch "
          "rows; TensorRT's divergence is a different method")


def _timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


# ----------------------------------------------------------------------------------------

def main() -> None:
    import onnxruntime as ort
    from threadpoolctl import threadpool_limits

    from pymodel import parallel
    rng = np.random.default_rng(0)
    parallel.set_threads(THREADS)
    print(f"onnxruntime {ort.__version__}, intra_op_num_threads={THREADS}; golden model: "
          f"numpy {np.__version__}, {THREADS} threads (pymodel.parallel: row blocks of "
          f"the GEMMs, channel groups of the element-wise passes), each calling BLAS "
          f"single-threaded; best of {ROUNDS} interleaved rounds")
    with threadpool_limits(1):
        rows = gemm_rows(rng) + conv_rows(rng) + fc_rows(rng)
    print(f"\n{'row':30s} {'onnxruntime op':17s} {'golden ms':>10s} {'ORT ms':>9s} "
          f"{'golden GMAC/s':>13s} {'ratio':>6s}  output vs ORT")
    for name, op, macs, tg, to, agree in rows:
        print(f"{name:30s} {op:17s} {1e3 * tg:10.3f} {1e3 * to:9.3f} {macs / tg / 1e9:13.1f} "
              f"{to / tg:6.2f}  {agree}")
    worst = min(rows, key=lambda r: r[4] / r[3])
    print(f"smallest ratio (ORT time / golden time): {worst[4] / worst[3]:.2f} ({worst[0]}); "
          "goal >= 1.0; every golden output == its reference (GEMM: matmul_int32 and "
          "MatMulInteger; layers: pymodel.ops.layers)")
    for note in NOTES:
        print(note)
    with threadpool_limits(1):
        print_litert(litert_rows())
    entropy_calibration(rng)


if __name__ == "__main__":
    main()
