#!/usr/bin/env python3
"""Compare every int8 op of the golden model with LiteRT, one op at a time.

For each op, seeded random one-op int8 ``.tflite`` models are built in memory with the
TFLite schema's object API (``ai_edge_litert.schema_py_generated``, the schema module
LiteRT ships) and run with LiteRT's reference kernels (``BUILTIN_REF``) and its optimized
kernels without delegates (``BUILTIN_WITHOUT_DEFAULT_DELEGATES``); the golden model's
function runs on the same inputs with parameters from its ``prepare_*`` functions.  The
table lists elements compared and elements differing per op and kernel.

Needs ``ai-edge-litert`` (not a ``make test`` dependency of this script's branch)::

    .venv/bin/python scripts/litert_op_check.py [--seed N] [--trials N]

Exit status 1 if a golden-model function differs from the LiteRT kernel it models
(``model`` column: the reference kernel for every op; for FULLY_CONNECTED the reference
kernel's float rescale is ``ops.float_rescale`` and the integer path is compared with the
optimized kernel, informationally).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

try:
    import flatbuffers
    from ai_edge_litert import schema_py_generated as S
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
except ImportError as exc:  # pragma: no cover - depends on the environment
    print(f"litert_op_check: needs ai-edge-litert ({exc}); pip install ai-edge-litert",
          file=sys.stderr)
    sys.exit(2)

from pymodel.ops import activations as A
from pymodel.ops import elementwise as E
from pymodel.ops import layers as L
from pymodel.ops import quantize as Q
from pymodel.ops import reduce as R
from pymodel.ops import shape as SH
from pymodel.ops.float_rescale import fully_connected_float_rescale
from pymodel.ops.tflite_common import activation_range, prepare_conv_requant

TT = {np.int8: S.TensorType.INT8, np.float32: S.TensorType.FLOAT32,
      np.int32: S.TensorType.INT32}
ACT = {"none": 0, "relu": 1, "relu_n1_to_1": 2, "relu6": 3}
KERNELS = {"reference": OpResolverType.BUILTIN_REF,
           "optimized": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}


def _tensor(d: dict, name: str, buffer: int) -> Any:
    t = S.TensorT()
    t.shape, t.type, t.name, t.buffer = list(d["shape"]), TT[d["dtype"]], name, buffer
    if d.get("scale") is not None:
        q = S.QuantizationParametersT()
        sc = np.atleast_1d(np.asarray(d["scale"], np.float32))
        q.scale = [float(v) for v in sc]
        q.zeroPoint = [int(v) for v in np.broadcast_to(np.asarray(d.get("zp", 0)), sc.shape)]
        q.quantizedDimension = d.get("qdim", 0)
        t.quantization = q
    return t


def build(op: int, opt_type: int | None, opt: Any, inputs: list[dict],
          outputs: list[dict]) -> bytes:
    """A one-op model; inputs with ``data`` become constant buffers."""
    m = S.ModelT()
    m.version = 3
    oc = S.OperatorCodeT()
    oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = op, min(op, 127), 1
    m.operatorCodes = [oc]
    buffers, tensors, graph_inputs = [S.BufferT()], [], []
    for i, d in enumerate(inputs):
        b = 0
        if d.get("data") is not None:
            buf = S.BufferT()
            buf.data = list(np.ascontiguousarray(d["data"]).tobytes())
            buffers.append(buf)
            b = len(buffers) - 1
        else:
            graph_inputs.append(len(tensors))
        tensors.append(_tensor(d, f"in{i}", b))
    outs = []
    for i, d in enumerate(outputs):
        outs.append(len(tensors))
        tensors.append(_tensor(d, f"out{i}", 0))
    o = S.OperatorT()
    o.opcodeIndex, o.inputs, o.outputs = 0, list(range(len(inputs))), outs
    if opt_type is not None:
        o.builtinOptionsType, o.builtinOptions = opt_type, opt
    g = S.SubGraphT()
    g.tensors, g.inputs, g.outputs, g.operators = tensors, graph_inputs, outs, [o]
    m.subgraphs, m.buffers = [g], buffers
    fb = flatbuffers.Builder(1024)
    fb.Finish(m.Pack(fb), file_identifier=b"TFL3")
    return bytes(fb.Output())


def run(model: bytes, feeds: list[np.ndarray], kernel: str) -> np.ndarray:
    it = Interpreter(model_content=model, experimental_op_resolver_type=KERNELS[kernel])
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), feeds):
        it.set_tensor(d["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


class Table:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])

    def add(self, op: str, kernel: str, litert: np.ndarray, mine: np.ndarray) -> None:
        a, b = np.asarray(litert), np.asarray(mine)
        if a.dtype == np.float32:
            a, b = a.view(np.int32), b.astype(np.float32).view(np.int32)
        r = self.rows[(op, kernel)]
        r[0] += a.size
        r[1] += int((a != b).sum())


def both(t: Table, op: str, model: bytes, feeds: list, mine: np.ndarray) -> None:
    for k in KERNELS:
        t.add(op, k, run(model, feeds, k), mine)


def q8(shape: list, s: Any, zp: int, **kw: Any) -> dict:
    return dict(shape=shape, dtype=np.int8, scale=s, zp=zp, **kw)


def check_elementwise(t: Table, rng: np.random.Generator, trials: int) -> None:
    codes = {"add": (S.BuiltinOperator.ADD, S.BuiltinOptions.AddOptions, S.AddOptionsT),
             "sub": (S.BuiltinOperator.SUB, S.BuiltinOptions.SubOptions, S.SubOptionsT),
             "mul": (S.BuiltinOperator.MUL, S.BuiltinOptions.MulOptions, S.MulOptionsT)}
    for trial in range(trials):
        s1, s2, so = (np.float32(10 ** rng.uniform(-3, 0.3)) for _ in range(3))
        z1, z2, zo = (int(v) for v in rng.integers(-128, 128, 3))
        act = list(ACT)[trial % 4]
        sh1 = [1, 3, 4, 5]
        sh2 = [[1, 3, 4, 5], [1, 1, 1, 5], [5], [1, 3, 1, 1]][trial % 4]
        x1 = rng.integers(-128, 128, sh1).astype(np.int8)
        x2 = rng.integers(-128, 128, sh2).astype(np.int8)
        for name, (code, otype, ocls) in codes.items():
            const = name == "mul" and trial % 5 == 0
            opt = ocls()
            opt.fusedActivationFunction = ACT[act]
            try:
                p = getattr(E, f"prepare_{name}")(s1, z1, s2, z2, so, zo, act)
            except ValueError:
                continue
            m = build(code, otype, opt, [q8(sh1, s1, z1), q8(sh2, s2, z2, data=x2 if const else None)],
                      [q8(sh1, so, zo)])
            both(t, name.upper(), m, [x1] if const else [x1, x2], getattr(E, name)(x1, x2, p))


def check_pool_mean(t: Table, rng: np.random.Generator, trials: int) -> None:
    for trial in range(trials):
        s_in = np.float32(10 ** rng.uniform(-3, 0))
        s_out = s_in if trial % 3 == 0 else np.float32(10 ** rng.uniform(-3, 0))
        zi, zo = (int(v) for v in rng.integers(-128, 128, 2))
        shape = [1, int(rng.integers(1, 9)), int(rng.integers(1, 9)), int(rng.integers(1, 5))]
        axes = [[1, 2], [2, 1], [1], [-1], [0, 1, 2, 3], [3, 1]][trial % 6]
        keep = bool(trial % 2)
        x = rng.integers(-128, 128, shape).astype(np.int8)
        opt = S.ReducerOptionsT()
        opt.keepDims = keep
        mine = R.mean(x, axes, R.prepare_mean(s_in, zi, s_out, zo), keep)
        m = build(S.BuiltinOperator.MEAN, S.BuiltinOptions.ReducerOptions, opt,
                  [q8(shape, s_in, zi), dict(shape=[len(axes)], dtype=np.int32,
                                             data=np.array(axes, np.int32))],
                  [q8(list(mine.shape), s_out, zo)])
        both(t, "MEAN", m, [x], mine)
        # pools: same quantization in and out
        k = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        st = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        pad = "same" if trial % 2 or k[0] > shape[1] or k[1] > shape[2] else "valid"
        act = list(ACT)[trial % 4]
        lo, hi = activation_range(act, s_in, zi)
        for name, code, fn in (("AVERAGE_POOL_2D", S.BuiltinOperator.AVERAGE_POOL_2D, L.avg_pool2d),
                               ("MAX_POOL_2D", S.BuiltinOperator.MAX_POOL_2D, L.max_pool2d)):
            mine = fn(x, k, st, pad, lo, hi)
            opt = S.Pool2DOptionsT()
            opt.padding = 0 if pad == "same" else 1
            opt.strideH, opt.strideW = st
            opt.filterHeight, opt.filterWidth = k
            opt.fusedActivationFunction = ACT[act]
            m = build(code, S.BuiltinOptions.Pool2DOptions, opt, [q8(shape, s_in, zi)],
                      [q8(list(mine.shape), s_in, zi)])
            both(t, name, m, [x], mine)


def check_quantize_shape(t: Table, rng: np.random.Generator, trials: int) -> None:
    for trial in range(trials):
        s, s2 = (np.float32(10 ** rng.uniform(-4, 1)) for _ in range(2))
        zp, zp2 = (int(v) for v in rng.integers(-128, 128, 2))
        x = (rng.standard_normal(64) * 10 ** rng.uniform(-2, 3)).astype(np.float32)
        x[:8] = ((rng.integers(-300, 300, 8) + 0.5) * s).astype(np.float32)   # ties
        m = build(S.BuiltinOperator.QUANTIZE, None, None, [dict(shape=[64], dtype=np.float32)],
                  [q8([64], s, zp)])
        both(t, "QUANTIZE float->int8", m, [x], Q.quantize(x, Q.prepare_quantize(s, zp)))
        xi = rng.integers(-128, 128, 64).astype(np.int8)
        m = build(S.BuiltinOperator.DEQUANTIZE, None, None, [q8([64], s, zp)],
                  [dict(shape=[64], dtype=np.float32)])
        both(t, "DEQUANTIZE", m, [xi], Q.dequantize(xi, Q.prepare_quantize(s, zp)))
        try:
            p = Q.prepare_requantize(s, zp, s2, zp2)
        except ValueError:
            continue
        m = build(S.BuiltinOperator.QUANTIZE, None, None, [q8([64], s, zp)], [q8([64], s2, zp2)])
        both(t, "QUANTIZE int8->int8", m, [xi], Q.requantize(xi, p))
        xp = rng.integers(-128, 128, (1, 3, 4, 2)).astype(np.int8)
        pads = rng.integers(0, 3, (4, 2)).astype(np.int32)
        cv = np.array([int(rng.integers(-128, 128))], np.int8)
        v2 = trial % 2 == 1
        pp = SH.prepare_pad(zp, int(cv[0]), s, zp, s) if v2 else SH.prepare_pad(zp)
        mine = SH.pad(xp, pads, pp)
        ins = [q8([1, 3, 4, 2], s, zp), dict(shape=[4, 2], dtype=np.int32, data=pads)]
        if v2:
            ins.append(q8([], s, zp, data=cv))
        m = build(S.BuiltinOperator.PADV2 if v2 else S.BuiltinOperator.PAD, None, None, ins,
                  [q8(list(mine.shape), s, zp)])
        both(t, "PADV2" if v2 else "PAD", m, [xp], mine)
        a = rng.integers(-128, 128, (1, 2, 3, 2)).astype(np.int8)
        b = rng.integers(-128, 128, (1, 2, 3, 5)).astype(np.int8)
        opt = S.ConcatenationOptionsT()
        opt.axis = -1
        m = build(S.BuiltinOperator.CONCATENATION, S.BuiltinOptions.ConcatenationOptions, opt,
                  [q8([1, 2, 3, 2], s, zp), q8([1, 2, 3, 5], s, zp)], [q8([1, 2, 3, 7], s, zp)])
        both(t, "CONCATENATION", m, [a, b],
             SH.concatenation([a, b], -1, SH.prepare_concatenation([s, s], [zp, zp], s, zp)))


def check_activations(t: Table, rng: np.random.Generator, trials: int) -> None:
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    relus = {"relu": S.BuiltinOperator.RELU, "relu6": S.BuiltinOperator.RELU6,
             "relu_n1_to_1": S.BuiltinOperator.RELU_N1_TO_1,
             "relu_0_to_1": S.BuiltinOperator.RELU_0_TO_1}
    for trial in range(trials):
        s_in, s_out = (np.float32(10 ** rng.uniform(-2.5, 0)) for _ in range(2))
        zi, zo = (int(v) for v in rng.integers(-128, 128, 2))
        if trial % 4 == 0:
            s_out, zo = s_in, zi
        io = ([q8([1, 256], s_in, zi)], [q8([1, 256], s_out, zo)])
        for kind, code in relus.items():
            both(t, kind.upper(), build(code, None, None, *io), [x],
                 A.relu(x, A.prepare_relu(kind, s_in, zi, s_out, zo)))
        alpha = np.float32(rng.uniform(-0.5, 1.5) if trial % 3 == 0 else rng.uniform(0.01, 0.5))
        try:
            p = A.prepare_leaky_relu(alpha, s_in, zi, s_out, zo)
            opt = S.LeakyReluOptionsT()
            opt.alpha = float(alpha)
            both(t, "LEAKY_RELU", build(S.BuiltinOperator.LEAKY_RELU,
                                        S.BuiltinOptions.LeakyReluOptions, opt, *io),
                 [x], A.leaky_relu(x, p))
        except ValueError:
            pass
        m = build(S.BuiltinOperator.LOGISTIC, None, None, [q8([1, 256], s_in, zi)],
                  [q8([1, 256], 1 / 256, -128)])
        both(t, "LOGISTIC", m, [x], A.logistic(x, A.prepare_logistic(s_in, zi, 1 / 256, -128)))
        try:
            p = A.prepare_hard_swish(s_in, zi, s_out, zo)
            both(t, "HARD_SWISH", build(S.BuiltinOperator.HARD_SWISH, None, None, *io), [x],
                 A.hard_swish(x, p))
        except ValueError:
            pass
        beta = np.float32([1.0, 0.5, 2.0][trial % 3])
        s_sm = np.float32(10 ** rng.uniform(-2, -0.3))
        xs = rng.integers(-128, 128, (8, int(rng.integers(2, 40)))).astype(np.int8)
        opt = S.SoftmaxOptionsT()
        opt.beta = float(beta)
        m = build(S.BuiltinOperator.SOFTMAX, S.BuiltinOptions.SoftmaxOptions, opt,
                  [q8(list(xs.shape), s_sm, int(rng.integers(-128, 128)))],
                  [q8(list(xs.shape), 1 / 256, -128)])
        both(t, "SOFTMAX", m, [xs], A.softmax(xs, A.prepare_softmax(beta, s_sm)))


def check_conv_fc(t: Table, rng: np.random.Generator, trials: int) -> None:
    for trial in range(trials):
        s_in = np.float32(10 ** rng.uniform(-2.5, -0.5))
        s_out = np.float32(10 ** rng.uniform(-1.5, 0.5))
        zi, zo = (int(v) for v in rng.integers(-128, 128, 2))
        act = list(ACT)[trial % 4]
        pad = ["same", "valid"][trial % 2]
        k, d = int(rng.integers(1, 4)), int(rng.integers(1, 3))
        st = 1 if d > 1 else int(rng.integers(1, 3))
        cin, cout = int(rng.integers(1, 5)), int(rng.integers(1, 6))
        hw = int(rng.integers((k - 1) * d + 1, 10))
        x = rng.integers(-128, 128, (1, hw, hw, cin)).astype(np.int8)
        for depthwise in (False, True):
            mult = int(rng.integers(1, 4))
            co = cin * mult if depthwise else cout
            w = rng.integers(-127, 128, (1, k, k, co) if depthwise else (co, k, k, cin)).astype(np.int8)
            ws = (10 ** rng.uniform(-3, -1, co)).astype(np.float32)
            bias = rng.integers(-5000, 5000, co).astype(np.int32)
            rq = prepare_conv_requant(s_in, ws, s_out, zo, bias, co, act)
            fn = L.depthwise_conv2d if depthwise else L.conv2d
            mine = fn(x, w, zi, rq, st, pad, dilation=d)
            cls = S.DepthwiseConv2DOptionsT if depthwise else S.Conv2DOptionsT
            opt = cls()
            opt.padding = 0 if pad == "same" else 1
            opt.strideH = opt.strideW = st
            opt.dilationHFactor = opt.dilationWFactor = d
            opt.fusedActivationFunction = ACT[act]
            if depthwise:
                opt.depthMultiplier = mult
            m = build(S.BuiltinOperator.DEPTHWISE_CONV_2D if depthwise else S.BuiltinOperator.CONV_2D,
                      S.BuiltinOptions.DepthwiseConv2DOptions if depthwise else S.BuiltinOptions.Conv2DOptions,
                      opt, [q8(list(x.shape), s_in, zi),
                            q8(list(w.shape), ws, 0, data=w, qdim=3 if depthwise else 0),
                            dict(shape=[co], dtype=np.int32, scale=(s_in * ws).astype(np.float32),
                                 zp=0, data=bias)],
                      [q8(list(mine.shape), s_out, zo)])
            both(t, "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D", m, [x], mine)
        for per_channel in (False, True):
            n, kk = 8, int(rng.integers(1, 200))
            w = rng.integers(-127, 128, (cout, kk)).astype(np.int8)
            ws = (10 ** rng.uniform(-3, -1, cout if per_channel else 1)).astype(np.float32)
            bias = rng.integers(-5000, 5000, cout).astype(np.int32)
            xf = rng.integers(-128, 128, (n, kk)).astype(np.int8)
            rq = prepare_conv_requant(s_in, ws, s_out, zo, bias, cout, act, op="fully_connected")
            lo, hi = activation_range(act, s_out, zo)
            opt = S.FullyConnectedOptionsT()
            opt.fusedActivationFunction = ACT[act]
            m = build(S.BuiltinOperator.FULLY_CONNECTED, S.BuiltinOptions.FullyConnectedOptions, opt,
                      [q8([n, kk], s_in, zi), q8([cout, kk], ws, 0, data=w),
                       dict(shape=[cout], dtype=np.int32, scale=(s_in * ws).astype(np.float32),
                            zp=0, data=bias)],
                      [q8([n, cout], s_out, zo)])
            tag = "per-channel" if per_channel else "per-tensor"
            integer = L.fully_connected(xf, w, zi, rq)
            flt = fully_connected_float_rescale(xf, w, zi, bias, s_in, ws, s_out, zo, lo, hi)
            t.add(f"FULLY_CONNECTED {tag} (float rescale)", "reference", run(m, [xf], "reference"), flt)
            t.add(f"FULLY_CONNECTED {tag} (integer)", "reference", run(m, [xf], "reference"), integer)
            t.add(f"FULLY_CONNECTED {tag} (integer)", "optimized", run(m, [xf], "optimized"), integer)


CHECKS: list[Callable[[Table, np.random.Generator, int], None]] = [
    check_elementwise, check_pool_mean, check_quantize_shape, check_activations, check_conv_fc]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--trials", type=int, default=40, help="random models per op (default 40)")
    args = ap.parse_args(argv)
    if args.trials < 1:
        print(f"litert_op_check: --trials {args.trials}: need >= 1", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    t = Table()
    for check in CHECKS:
        check(t, rng, args.trials)
    print(f"golden model vs LiteRT, one op at a time (seed {args.seed}, {args.trials} models per op)")
    print(f"{'op':44s} {'kernel':10s} {'elements':>9s} {'differ':>7s}")
    bad = 0
    for (op, kernel), (n, d) in sorted(t.rows.items()):
        print(f"{op:44s} {kernel:10s} {n:9d} {d:7d}")
        models_it = kernel == "reference" and "(integer)" not in op
        bad += d if models_it else 0
    print(f"differences where the golden function models the kernel: {bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
