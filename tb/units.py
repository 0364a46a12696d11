"""A whole imported network on the three engines: conv / FC on ``qlayer_engine``,
depthwise / pooling / MEAN on ``window_engine``, ADD / SUB / MUL on ``eltwise_engine``.

The simulation top is ``tb/hdl/qmac_units.v`` (the three units side by side, every port
brought out with a prefix); :class:`Prefixed` makes its ``gemm_`` / ``win_`` / ``elt_``
ports look like one unit's ports, so the unit drivers (:class:`tb.engine.EngineEnv`,
:class:`tb.window.WindowEnv`, :class:`tb.test_eltwise_engine.EltwiseEnv`) run unchanged.

:func:`run_units_network` runs the layers in graph order; a layer runs on its unit when
the unit can run it (:func:`unit_of`), otherwise on the host with the golden model's
function.  Every layer's output is compared exactly with
``pymodel.graph.inference.run_layer`` and the RTL's output feeds the next layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pymodel.graph.artifact import INPUT, QLayer, QuantizedNetwork
from pymodel.graph.inference import run_layer
from pymodel.ops import elementwise as E
from pymodel.ops.reduce import MeanParams
from tb.engine import EngineEnv
from tb.network import LayerReport, describe_row, gemm_job
from tb.window import WindowEnv, WindowLayer

PREFIXES = {"gemm": ("gemm_", "u_gemm"), "window": ("win_", "u_win"), "eltwise": ("elt_", "u_elt")}


class Prefixed:
    """One unit's view of ``qmac_units``: ``x`` -> the top's ``<prefix>x`` port, the
    clock / reset / logger of the top, anything else (parameters, internal signals) from
    the unit's instance.  Iterating yields the top's ports of this unit."""

    def __init__(self, top: Any, unit: str) -> None:
        self._top = top
        self._prefix, inst = PREFIXES[unit]
        self._inst = getattr(top, inst)

    def __getattr__(self, name: str) -> Any:
        if name in ("clk_i", "rst_i", "_log"):
            return getattr(self._top, name)
        try:
            return getattr(self._top, self._prefix + name)
        except AttributeError:
            return getattr(self._inst, name)

    def __iter__(self):
        return (h for h in self._top if h._name.startswith(self._prefix))


@dataclass
class Units:
    """The three started unit drivers."""

    gemm: EngineEnv
    window: WindowEnv
    eltwise: Any    # tb.test_eltwise_engine.EltwiseEnv


async def start_units(top: Any, rng: np.random.Generator) -> Units:
    """Bind the drivers to ``qmac_units``, idle every input, start the clock, reset."""
    from tb.test_eltwise_engine import EltwiseEnv
    gemm = EngineEnv(Prefixed(top, "gemm"), rng)
    window = WindowEnv(Prefixed(top, "window"), rng)
    elt = EltwiseEnv(Prefixed(top, "eltwise"), rng)
    window.idle_inputs()
    elt.idle_inputs()
    await gemm.start()                     # the clock and the (shared) reset
    window.start_streams()
    elt.start_streams()
    return Units(gemm, window, elt)


def unit_of(layer: QLayer, window: WindowEnv) -> str:
    """``"gemm"``, ``"window"``, ``"eltwise"`` or ``"host"``: where ``layer`` runs."""
    if layer.op in ("conv2d", "fully_connected"):
        return "gemm" if layer.rounding == "double" else "host"
    if layer.op == "depthwise_conv2d":
        ok = (layer.depth_multiplier in (None, 1) and layer.rounding == "double"
              and layer.kernel[0] * layer.kernel[1] <= window.taps_max
              and -(-layer.output_shape[-1] // window.lanes) <= window.groups_max)
        return "window" if ok else "host"
    if layer.op in ("max_pool2d", "avg_pool2d"):
        return "window"
    if layer.op == "mean":
        p = layer.params
        h, w = layer.input_shape[:2] if len(layer.input_shape) == 3 else (0, 0)
        ok = (len(layer.input_shape) == 3 and tuple(p["axes"]) == (1, 2)
              and p.get("rounding", "double") == "double" and 0 < h <= window.h_max
              and 0 < w <= window.w_max)
        return "window" if ok else "host"
    if layer.op in ("add", "sub", "mul"):
        return "eltwise" if layer.params.get("rounding", "double") == "double" else "host"
    return "host"


def _window_layer(layer: QLayer, x: np.ndarray) -> WindowLayer:
    kernel = tuple(layer.kernel) if layer.kernel is not None else None
    stride = tuple(layer.stride) if layer.stride is not None else (1, 1)
    if layer.op == "depthwise_conv2d":
        return WindowLayer(name=layer.name, op="dw", x=x, kernel=kernel, stride=stride,
                           dilation=tuple(layer.dilation or (1, 1)), padding=layer.padding,
                           w=layer.weight, in_zero_point=layer.input.zero_point,
                           rq=layer.requant())
    if layer.op in ("max_pool2d", "avg_pool2d"):
        return WindowLayer(name=layer.name, op=layer.op[:3], x=x, kernel=kernel, stride=stride,
                           padding=layer.padding, act_min=layer.act_min, act_max=layer.act_max)
    p = dict(layer.params)
    mean = MeanParams(**{k: p[k] for k in ("in_zero_point", "out_zero_point", "multiplier",
                                            "shift", "rounding") if k in p})
    return WindowLayer(name=layer.name, op="mean", x=x, kernel=tuple(x.shape[1:3]), mean=mean)


def _eltwise_operands(layer: QLayer, xs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, Any]:
    params = dict(layer.params)
    pos = params.pop("const_position", None)
    prm = (E.MulParams if layer.op == "mul" else E.AddParams)(**params)
    if pos is None:
        a, b = xs[0], xs[1]
    else:
        c = np.asarray(layer.consts["operand"], np.int8)
        a, b = (xs[0], c) if pos == 1 else (c, xs[0])
    a, b = E.broadcast_pair(np.asarray(a, np.int8), np.asarray(b, np.int8))
    return np.ascontiguousarray(a), np.ascontiguousarray(b), prm


async def run_units_network(units: Units, qnet: QuantizedNetwork,
                            xq: np.ndarray) -> tuple[np.ndarray, list[LayerReport]]:
    """Run ``qnet`` on int8 ``xq`` with every layer on its unit; check every layer.

    Returns:
        ``(final int8 output, per-layer reports)``; a report's ``where`` is ``rtl:gemm``,
        ``rtl:window``, ``rtl:eltwise`` or ``host``; ``slots`` is the unit's peak
        operations per cycle (ROWS * COLS MACs, LANES taps, LANES elements).
    """
    reports = []
    tensors = {INPUT: xq}
    x = xq
    for layer in qnet.layers:
        xs = [tensors[name] for name in layer.inputs]
        golden = run_layer(layer, *xs)
        unit = unit_of(layer, units.window)
        if unit == "gemm":
            job = gemm_job(layer, xs[0])
            job.describe_row = describe_row(layer)
            rows, st = await units.gemm.run_layer(job)
            y = rows.reshape(golden.shape)
            rep = LayerReport(layer.name, layer.op, "rtl:gemm", tuple(y.shape), (job.m, job.k, job.n),
                              job.macs, st.cycles, st.load_cycles, st.array_beats, st.slots)
        elif unit == "window":
            wl = _window_layer(layer, xs[0])
            out, st, _ = await units.window.run_layer(wl)
            y = out.reshape(golden.shape)
            rep = LayerReport(layer.name, layer.op, "rtl:window", tuple(y.shape), None, st.macs,
                              st.cycles, st.load_cycles, 0, st.lanes)
        elif unit == "eltwise":
            a, b, prm = _eltwise_operands(layer, xs)
            lanes = units.eltwise.lanes
            t0 = units.eltwise.clock.cycle()
            out = await units.eltwise.run_tensor(layer.name, layer.op, a, b, prm)
            cycles = units.eltwise.clock.cycle() - t0
            y = out.reshape(golden.shape)
            rep = LayerReport(layer.name, layer.op, "rtl:eltwise", tuple(y.shape), None,
                              int(a.size), cycles, 0, 0, lanes)
        else:
            y = golden
            rep = LayerReport(layer.name, layer.op, "host", tuple(y.shape))
        rep.mismatches = int(np.count_nonzero(y != golden))
        reports.append(rep)
        tensors[layer.name] = x = y
    return x, reports


def format_units_report(network: str, images: int, layers: list[LayerReport],
                        preds: dict[str, list[int]]) -> str:
    """The per-layer table of a units run: unit, cycles, utilization of the unit's peak."""
    head = (f"{'layer':22s} {'op':16s} {'on':12s} {'output':>12s} {'ops':>9s} {'cycles':>8s} "
            f"{'util':>6s} {'mismatch':>8s}")
    lines = [f"qmac: {network} on qlayer_engine + window_engine + eltwise_engine, {images} image(s)",
             "", head, "-" * len(head)]
    for l in layers:
        rtl = l.where.startswith("rtl")
        util = f"{100 * l.utilization:5.1f}%" if rtl and l.cycles else "-"
        cyc = f"{l.cycles:8d}" if rtl else f"{'-':>8s}"
        lines.append(f"{l.name[:22]:22s} {l.op:16s} {l.where:12s} "
                     f"{'x'.join(map(str, l.out_shape)):>12s} {l.macs:9d} {cyc} {util:>6s} "
                     f"{l.mismatches:8d}")
    lines.append("-" * len(head))
    on = {u: sum(1 for l in layers if l.where == u) for u in ("rtl:gemm", "rtl:window",
                                                               "rtl:eltwise", "host")}
    lines.append("layers per unit: " + ", ".join(f"{k} {v}" for k, v in on.items()))
    lines.append(f"cycles per unit: " + ", ".join(
        f"{u} {sum(l.cycles for l in layers if l.where == u)}" for u in ("rtl:gemm", "rtl:window",
                                                                          "rtl:eltwise")))
    lines.append(f"output mismatches, all layers: {sum(l.mismatches for l in layers)}")
    for k, v in preds.items():
        lines.append(f"{k:>8s} predictions: {v}")
    lines.append("util: ops / (unit peak per cycle x cycles); ops = MACs (gemm, depthwise), "
                 "taps (pools, MEAN), elements (eltwise); window cycles include loading the "
                 "input tiles, gemm cycles exclude the weight load")
    return "\n".join(lines)
