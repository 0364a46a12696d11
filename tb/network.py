"""Run a quantized-network artifact on the RTL accelerator, layer by layer.

Conv and fully-connected layers run on the RTL layer engine.  On ``qmac_top`` built with
its units (UNITS = 1), depthwise conv (multiplier 1), max / average pooling and spatial
MEAN run on its window unit and ADD / SUB / MUL on its element-wise unit, through the same
AXI interfaces (:mod:`tb.top_units`; :func:`tb.units.unit_of` decides what fits).  Every
other op (flatten, reshape, softmax, pad ...) runs on the host with the golden model's
functions, because there is no hardware for it.  The host does ``im2col`` with the
golden model's own function, padding with the input zero point.

The engine is reached one of two ways, by the environment passed in:

* :class:`tb.top.TopEnv` -- ``qmac_top``, the engine behind AXI4-Lite and AXI4-Stream,
  driven through cocotbext-axi (``make sim``'s default).  While one engine pass computes,
  the next one's weights and parameters stream into the accelerator's other bank (they do
  not depend on the activations), so only the first pass's load is not hidden behind
  compute.
* anything with ``run_layer(job)`` -- :class:`tb.engine.EngineEnv` on a bare
  ``qlayer_engine``, or the Verilator bulk harness (:mod:`tb.bulk`, ``SIM=verilator``).

Every layer's output is compared exactly with ``pymodel.graph.inference.run_layer`` and
the RTL's output (not the golden one) feeds the next layer, so an error cannot hide
behind a correct reference.  Graphs (residual branches, concatenation) run in layer
order, each layer reading the tensors it names.

:func:`run_network` is a coroutine used inside a cocotb test (``tb/test_network.py``);
:func:`format_report` turns its :class:`NetworkReport` into the tables ``make sim`` prints.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np

from pymodel.graph.artifact import INPUT, QLayer, QuantizedNetwork
from pymodel.graph.inference import gemm_rows, run_layer
from tb.engine import GemmJob

ENGINE_OPS = ("conv2d", "fully_connected")


@dataclass
class LayerReport:
    """One layer of a network run.

    Attributes:
        name, op: layer name and op.
        where: ``"rtl"`` (the engine) or ``"host"`` (golden-model function on the host).
        out_shape: output shape of the batch.
        gemm: ``(M, K, N)`` of the engine's GEMM (rtl layers only).
        macs: useful MACs of the batch.
        cycles: engine cycles from the first activation beat to the last output beat.
        load_cycles: cycles in which this layer's weights or parameters loaded with no
            layer running (PERF_LOAD_EXPOSED: loading that the previous layer's compute
            did not hide; all of the first layer's load).
        array_beats: cycles in which the MAC array took an operand beat.
        slots: ROWS * COLS.
        mismatches: output elements that differ from the golden model.
    """

    name: str
    op: str
    where: str
    out_shape: tuple[int, ...]
    gemm: tuple[int, int, int] | None = None
    macs: int = 0
    cycles: int = 0
    load_cycles: int = 0
    array_beats: int = 0
    slots: int = 1
    mismatches: int = 0

    @property
    def utilization(self) -> float:
        return self.macs / (self.slots * self.cycles) if self.cycles else 0.0


@dataclass
class NetworkReport:
    """A whole network run: per-layer reports and per-image predictions.

    ``sim_seconds`` is the wall time spent simulating; ``simulator`` names what ran the RTL.
    """

    network: str
    images: int
    engine: dict[str, int]
    layers: list[LayerReport] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    rtl_pred: list[int] = field(default_factory=list)
    golden_pred: list[int] = field(default_factory=list)
    float_pred: list[int] = field(default_factory=list)
    sim_seconds: float = 0.0
    simulator: str = "Icarus Verilog"
    data_source: str = "digits test split"
    float_source: str = ""      # the float network of the float column, or why there is none
    top: str = "qlayer_engine"  # the simulated top: qlayer_engine or qmac_top (AXI)
    counters: dict[str, int] = field(default_factory=dict)   # qmac_top's PERF_* registers
    wall_cycles: int = 0        # qmac_top: first AXI access to the last output beat

    @property
    def total_cycles(self) -> int:
        return sum(l.cycles + l.load_cycles for l in self.layers)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "NetworkReport":
        d = json.loads(text)
        layers = [LayerReport(**{**l, "out_shape": tuple(l["out_shape"]),
                                 "gemm": tuple(l["gemm"]) if l["gemm"] else None})
                  for l in d.pop("layers")]
        return cls(layers=layers, **d)


def gemm_job(layer: QLayer, x: np.ndarray) -> GemmJob:
    """The engine job of a conv / fully-connected layer on the int8 batch ``x``."""
    zp = layer.input.zero_point
    if layer.op == "conv2d":
        cols = gemm_rows(layer, x)
    else:
        cols = x.reshape(-1, layer.weight.shape[1])
    return GemmJob(name=layer.name, cols=np.ascontiguousarray(cols, np.int8), w2d=layer.w2d,
                   in_zero_point=zp, rq=layer.requant())


def load_job(layer: QLayer, batch: int) -> GemmJob:
    """The job of a layer before its activations exist: weights, parameters and the GEMM
    shape (``cols`` is a zero placeholder of the right shape), enough to load it.

    ``M`` is the batch times the output positions: ``batch * prod(output_shape) / N`` (a
    conv's ``OH * OW``, a fully-connected layer's leading dimensions, 1 for a plain one).
    """
    w2d = layer.w2d
    m = batch * int(np.prod(layer.output_shape)) // w2d.shape[0]
    return GemmJob(name=layer.name, cols=np.zeros((m, w2d.shape[1]), np.int8), w2d=w2d,
                   in_zero_point=layer.input.zero_point, rq=layer.requant())


def top_unit(env: Any, layer: QLayer) -> str | None:
    """``"window"`` / ``"eltwise"`` when ``layer`` runs on that unit of ``env`` (a
    :class:`tb.top.TopEnv` built with UNITS = 1; :func:`tb.units.unit_of` decides), else
    None (an engine op, or the host's)."""
    if not getattr(env, "units", False):
        return None
    from tb.units import unit_of
    unit = unit_of(layer, env)
    return unit if unit in ("window", "eltwise") else None


def describe_row(layer: QLayer) -> Callable[[int], str]:
    """Maps a GEMM row of ``layer`` to the output element it produces."""
    if layer.op == "conv2d":
        oh, ow = layer.output_shape[:2]
        return lambda m: f"image {m // (oh * ow)}, y {m % (oh * ow) // ow}, x {m % ow}"
    return lambda m: f"image {m}"


class _AxiPasses:
    """The engine passes of a network on ``qmac_top``, each loaded one pass ahead.

    Every engine pass (a layer, or a group of its output channels when it is too wide)
    has its weights and parameters streamed in while the previous pass computes.  A
    pass's ``load_cycles`` are the cycles its load was not hidden behind the previous
    pass's compute: the growth of ``PERF_LOAD_EXPOSED`` across its load.
    """

    def __init__(self, env: Any, qnet: QuantizedNetwork, batch: int) -> None:
        self.env = env
        # (pass, START at load): a pass is STARTed as soon as it is loaded when it is the
        # top's next job; with a window / eltwise layer in between (the queue runs in
        # START order) it is loaded early all the same and STARTed when its turn comes
        self.ahead: list[tuple[GemmJob, bool]] = []
        unit_between = False
        for layer in qnet.layers:
            if layer.op in ENGINE_OPS:
                for g in env.channel_groups(load_job(layer, batch)):
                    self.ahead.append((g, not unit_between))
                    unit_between = False
            elif top_unit(env, layer) is not None:
                unit_between = True
        self.held = False       # the pass loaded last waits for its START
        self.carry = 0          # exposed load cycles of the pass loaded last
        self.exposed = 0        # PERF_LOAD_EXPOSED when last read

    async def _load_next(self) -> None:
        job, start = self.ahead.pop(0)
        await self.env.load(job, start=start)
        self.held = not start

    async def start(self) -> None:
        """Load the first pass (all of its load is exposed)."""
        from tb import qmac_regs as R

        self.exposed = await self.env.read(R.PERF_LOAD_EXPOSED)
        if self.ahead:
            await self._load_next()
        await self._account()

    async def _account(self) -> None:
        from tb import qmac_regs as R

        now = await self.env.read(R.PERF_LOAD_EXPOSED)
        self.carry, self.exposed = now - self.exposed, now

    async def run_layer(self, job: GemmJob, rep: LayerReport) -> np.ndarray:
        """Run every channel group of ``job`` (loading the next pass meanwhile); fill
        ``rep``'s cycles, load cycles and array beats; return the int8 ``[M, N]`` output."""
        import cocotb

        outs = []
        for group in self.env.channel_groups(job):
            rep.load_cycles += self.carry
            if self.held:
                await self.env.start_loaded(group)
                self.held = False
            loader = cocotb.start_soon(self._load_next()) if self.ahead else None
            out, st = await self.env.run(group)
            if loader is not None:
                await loader
            await self._account()
            rep.cycles += st.cycles
            rep.array_beats += st.array_beats
            outs.append(out)
        return np.concatenate(outs, axis=1)


async def run_network(env: Any, qnet: QuantizedNetwork, xq: np.ndarray,
                      progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, list[LayerReport]]:
    """Run ``qnet`` on int8 inputs ``xq`` ``[N, *input_shape]``; check every layer.

    Args:
        env: a started :class:`tb.top.TopEnv` (``qmac_top`` through AXI: every engine pass
            is loaded while the previous one computes, see :class:`_AxiPasses`), or an
            environment with ``run_layer(job)`` (:class:`tb.engine.EngineEnv` on
            ``qlayer_engine``, :class:`tb.bulk` 's Verilator harness).
        qnet: the quantized network.
        xq: int8 network input.
        progress: called with the number of useful MACs of each layer once it is done.

    Returns:
        ``(final int8 output, per-layer reports)``.

    Raises:
        tb.kit.Mismatch: the first output element that differs from the golden model,
            naming the layer, the element, the tile, the row, the column and the cycle.
    """
    axi = _AxiPasses(env, qnet, xq.shape[0]) if hasattr(env, "load") else None
    if axi is not None:
        await axi.start()
    reports = []
    tensors = {INPUT: xq}                    # every tensor of the graph, as the RTL made it
    x = xq
    for layer in qnet.layers:
        xs = [tensors[name] for name in layer.inputs]
        golden = run_layer(layer, *xs)
        unit = top_unit(env, layer) if axi is not None else None
        if unit is not None:
            rep, y = await _run_unit_layer(env, axi, layer, xs, unit)
            y = y.reshape(golden.shape)
        elif layer.op in ENGINE_OPS:
            job = gemm_job(layer, xs[0])
            job.describe_row = describe_row(layer)
            if axi is not None:
                rep = LayerReport(layer.name, layer.op, "rtl", tuple(golden.shape),
                                  (job.m, job.k, job.n), job.macs, slots=env.rows * env.cols)
                y = (await axi.run_layer(job, rep)).reshape(golden.shape)
            else:
                rows, st = await env.run_layer(job)
                y = rows.reshape(golden.shape)
                rep = LayerReport(layer.name, layer.op, "rtl", tuple(y.shape),
                                  (job.m, job.k, job.n), job.macs, st.cycles, st.load_cycles,
                                  st.array_beats, st.slots)
        else:
            y = golden                       # the golden model's function is the host's
            rep = LayerReport(layer.name, layer.op, "host", tuple(y.shape))
        rep.mismatches = int(np.count_nonzero(y != golden))
        reports.append(rep)
        if progress is not None:
            progress(rep.macs)
        tensors[layer.name] = x = y
    if axi is not None:
        from tb import qmac_regs as R
        err = await env.read(R.ERROR)
        assert err == 0, f"qmac_top ERROR = {err:#x} after the network"
    return x, reports


async def _run_unit_layer(env: Any, axi: "_AxiPasses", layer: QLayer, xs: list[np.ndarray],
                          unit: str) -> tuple[LayerReport, np.ndarray]:
    """A window / eltwise layer on ``qmac_top`` (:mod:`tb.top_units`): its report and
    int8 output.  ``load_cycles``: PERF_LOAD_EXPOSED's
    growth over the layer (its weights and parameters stream while nothing runs)."""
    from tb import qmac_regs as R
    from tb.top_units import run_eltwise_layer, run_window_layer
    from tb.units import _eltwise_operands, _window_layer

    e0 = await env.read(R.PERF_LOAD_EXPOSED)
    if unit == "window":
        wl = _window_layer(layer, xs[0])
        y, cycles, ops = await run_window_layer(env, wl)
    else:
        a, b, prm = _eltwise_operands(layer, xs)
        y, cycles = await run_eltwise_layer(env, layer.name, layer.op, a, b, prm)
        ops = int(a.size)
    e1 = await env.read(R.PERF_LOAD_EXPOSED)
    axi.exposed += e1 - e0            # not the next engine pass's
    rep = LayerReport(layer.name, layer.op, f"rtl:{unit}", tuple(np.shape(y)), None, ops,
                      cycles, e1 - e0, 0, env.lanes)
    return rep, y


def format_report(rep: NetworkReport) -> str:
    """The per-layer table and the summary ``make sim`` prints."""
    e = rep.engine
    if rep.top == "qmac_top":
        lines = [f"qmac: {rep.network} on qmac_top (AXI4-Lite + AXI4-Stream; engine ROWS={e['ROWS']} x "
                 f"COLS={e['COLS']} MAC array, A_DEPTH={e['A_DEPTH']}, W_DEPTH={e['W_DEPTH']}, "
                 f"N_TILES_MAX={e['N_TILES_MAX']}), {rep.images} images, {rep.simulator}", ""]
    else:
        lines = [f"qmac: {rep.network} on qlayer_engine (ROWS={e['ROWS']} x COLS={e['COLS']} "
                 f"MAC array, A_DEPTH={e['A_DEPTH']}, W_DEPTH={e['W_DEPTH']}, "
                 f"N_TILES_MAX={e['N_TILES_MAX']}), {rep.images} images, {rep.simulator}", ""]
    wo = max([4] + [len(l.where) for l in rep.layers])     # rtl, rtl:window, host ...
    head = (f"{'layer':8s} {'op':16s} {'on':{wo}s} {'output':>12s} {'GEMM MxKxN':>14s} "
            f"{'MACs':>9s} {'cycles':>8s} {'load':>6s} {'util':>6s} {'mismatch':>8s}")
    lines += [head, "-" * len(head)]
    for l in rep.layers:
        gemm = "x".join(map(str, l.gemm)) if l.gemm else "-"
        on_rtl = l.where.startswith("rtl")
        util = f"{100 * l.utilization:5.1f}%" if on_rtl else "-"
        cyc = f"{l.cycles:8d}" if on_rtl else f"{'-':>8s}"
        load = f"{l.load_cycles:6d}" if on_rtl else f"{'-':>6s}"
        lines.append(f"{l.name:8s} {l.op:16s} {l.where:{wo}s} {'x'.join(map(str, l.out_shape)):>12s} "
                     f"{gemm:>14s} {l.macs:9d} {cyc} {load} {util:>6s} {l.mismatches:8d}")
    rtl = [l for l in rep.layers if l.where == "rtl"]          # the MAC array's layers
    units = [l for l in rep.layers if l.where.startswith("rtl:")]   # window / eltwise
    macs = sum(l.macs for l in rtl)
    cycles = sum(l.cycles for l in rtl + units)
    gemm_cycles = sum(l.cycles for l in rtl)
    lines.append("-" * len(head))
    lines.append(f"{'total':8s} {'':16s} {'':{wo}s} {'':>12s} {'':>14s} {macs:9d} {cycles:8d} "
                 f"{sum(l.load_cycles for l in rtl + units):6d} "
                 f"{100 * macs / (rtl[0].slots * gemm_cycles) if gemm_cycles else 0:5.1f}% "
                 f"{sum(l.mismatches for l in rep.layers):8d}")
    if units:
        lines.append("(total MACs and util: the MAC array's layers; cycles and load: every RTL "
                     "layer; window / eltwise util = operations / (COLS lanes x cycles), their "
                     "cycles from the layer's first AXI access to its last output beat)")
    lines += ["", "where the engine cycles go (per RTL layer, % of its cycles):",
              f"{'layer':8s} {'useful':>7s} {'padding':>8s} {'idle':>6s}   idle cycles are cycles in "
              "which the MAC array took no operand beat"]
    for l in rtl:
        useful = l.macs / l.slots                 # beat-equivalents of useful MACs
        pad = l.array_beats - useful              # beats spent partly on padded rows/channels
        idle = l.cycles - l.array_beats
        lines.append(f"{l.name:8s} {100 * useful / l.cycles:6.1f}% {100 * pad / l.cycles:7.1f}% "
                     f"{100 * idle / l.cycles:5.1f}%   {explain(l, e)}")
    n = rep.images
    rtl_p, gold_p, flt_p, lab = (np.array(v) for v in (rep.rtl_pred, rep.golden_pred,
                                                       rep.float_pred, rep.labels))
    has_f, has_l = len(flt_p) == n, len(lab) == n     # no float network / unlabelled data
    lines += ["", f"{'image':>5s} {'label':>5s} {'RTL':>4s} {'golden':>6s} {'float':>5s}"]
    for i in range(n):
        note = "  <- misclassified" if has_l and rtl_p[i] != lab[i] else ""
        lines.append(f"{i:5d} {lab[i] if has_l else '-':>5} {rtl_p[i]:4d} {gold_p[i]:6d} "
                     f"{flt_p[i] if has_f else '-':>5}{note}")
    total = rep.total_cycles
    lines += [
        "",
        f"images                         {n}  ({rep.data_source})",
        f"RTL predictions == golden      {int(np.sum(rtl_p == gold_p))}/{n}",
        (f"RTL predictions == float model {int(np.sum(rtl_p == flt_p))}/{n}  "
         f"({rep.float_source})" if has_f else
         f"RTL predictions == float model -  ({rep.float_source or 'no float network'})"),
        (f"RTL predictions == label       {int(np.sum(rtl_p == lab))}/{n}" if has_l
         else "RTL predictions == label       -  (the data has no labels)"),
        f"output mismatches, all layers  {sum(l.mismatches for l in rep.layers)}",
        f"total cycles (compute + load)  {total}  ({cycles} compute, "
        f"{total - cycles} loading weights / parameters not hidden by compute: "
        f"{100 * (total - cycles) / total if total else 0:.2f} %)",
        f"simulated cycles per second    {total / rep.sim_seconds:,.0f}  "
        f"({rep.sim_seconds:.1f} s in the simulator)" if rep.sim_seconds else "",
    ]
    if rep.wall_cycles:
        lines.append(f"wall cycles, first AXI access to last output  {rep.wall_cycles}  "
                     f"({rep.wall_cycles - total} of them host control between layers: AXI4-Lite "
                     "accesses, stream start-up)")
    if rep.counters:
        lines += ["", "performance counters (AXI4-Lite, whole run):"]
        lines += [f"  {name:18s} {value:10d}" for name, value in rep.counters.items()]
    return "\n".join(lines)


def explain(l: LayerReport, engine: dict[str, int]) -> str:
    """One line on why a layer loses cycles (the dominant cause)."""
    assert l.gemm is not None
    m, k, n = l.gemm
    rows, cols = engine["ROWS"], engine["COLS"]
    chunks = -(-k // engine["A_DEPTH"])
    chunk_len = -(-k // chunks)
    notes = []
    per_tile = max(rows, (rows + cols + 2) / 2)     # two result banks, PE multiplier stage: see microarchitecture
    if chunk_len < per_tile:
        notes.append(f"K chunk {chunk_len} < {per_tile:g}: the array drains at most one tile "
                     f"per max(ROWS, (ROWS+COLS+2)/2) = {per_tile:g} cycles")
    if n % cols:
        notes.append(f"N={n} fills {n % cols} of {cols} lanes of the last channel tile")
    if m % rows:
        notes.append(f"M={m} fills {m % rows} of {rows} rows of the last block")
    blocks = -(-m // rows)
    if blocks * -(-n // cols) * chunks < 8:
        notes.append(f"only {blocks * -(-n // cols) * chunks} MAC-array tiles: pipeline fill "
                     f"and drain (~{rows + cols + 12} cycles) are not amortized")
    return "; ".join(notes) or "streaming: fill and drain once per layer"

