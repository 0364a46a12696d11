"""Host driver of ``rtl/qmac_top.v`` inside a cocotb test, through cocotbext-axi.

:class:`TopEnv` is what a host CPU and a DMA would do with the accelerator: AXI4-Lite
register accesses (``AxiLiteMaster``), whole-layer AXI4-Stream frames of activations,
weights and parameters (``AxiStreamSource``) and of outputs (``AxiStreamSink``), each with
an optional random pause generator (back-pressure and gaps on every stream).  The register
offsets and stream field positions come from ``tb/qmac_regs.py``, generated from
``rtl/regs.yaml``.

Every output beat is compared exactly with ``pymodel.ops.layers.quantized_gemm`` (the golden
model of the engine) by the kit's scoreboard, through a protocol-checking monitor on
``m_axis_out`` that also checks the AXI-Stream source rules; the AXI4-Lite B and R channels
are watched by the same monitors.

Host-side duties are those of :mod:`tb.engine` (padding rows and channels, folding the input
zero point into the bias, splitting layers over channel groups, reassembling outputs): the
same functions are used.
"""

from __future__ import annotations

import logging
import random
import warnings
from dataclasses import dataclass
from typing import Any, Iterator

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge, SimTimeoutError, with_timeout
from cocotbext.axi import (AxiLiteBus, AxiLiteMaster, AxiStreamBus, AxiStreamFrame,
                           AxiStreamSink, AxiStreamSource)

from pymodel.ops.layers import RequantParams, fold_input_zero_point, quantized_gemm
from tb import kit
from tb import qmac_regs as R
from tb.engine import EngineEnv, GemmJob, LayerStats, locate

OKAY, SLVERR = 0, 2

# cocotbext-axi 0.1.28 still reads cocotb's deprecated Event.data; the warning is about the
# library, not about this design, and would repeat on every AXI4-Lite access.
warnings.filterwarnings("ignore", message="The data field will be removed",
                        category=DeprecationWarning)


def pauses(rng: random.Random, prob: float) -> Iterator[bool]:
    """Endless pause pattern for a cocotbext-axi pause generator: True with ``prob``."""
    while True:
        yield rng.random() < prob


def _field(value: int, name: tuple[str, str]) -> int:
    lsb, width = R.STREAM_FIELD[name]
    return (value & ((1 << width) - 1)) << lsb


def param_beats(job: GemmJob, n_tiles: int, cols: int) -> bytes:
    """TDATA bytes of the ``s_axis_prm`` frame of a job: 16 bytes per channel, padded
    channels with zero bias / m0 / shift (their outputs are discarded)."""
    bias = fold_input_zero_point(job.rq.bias, job.w2d, job.in_zero_point)
    out = bytearray()
    for c in range(n_tiles * cols):
        real = c < job.n
        v = (_field(int(bias[c]) if real else 0, ("s_axis_prm", "BIAS"))
             | _field(int(job.rq.m0[c]) if real else 0, ("s_axis_prm", "M0"))
             | _field(int(job.rq.shift[c]) if real else 0, ("s_axis_prm", "SHIFT"))
             | _field(job.rq.out_zero_point, ("s_axis_prm", "ZP"))
             | _field(job.rq.act_min, ("s_axis_prm", "ACT_MIN"))
             | _field(job.rq.act_max, ("s_axis_prm", "ACT_MAX")))
        out += v.to_bytes(16, "little")
    return bytes(out)


def weight_beats(w2d: np.ndarray, n_tiles: int, cols: int) -> bytes:
    """TDATA bytes of the ``s_axis_wgt`` frame: word ``t*K + k``, byte ``j`` = w[t*COLS+j][k]."""
    n, k = w2d.shape
    w = np.zeros((n_tiles * cols, k), np.int8)
    w[:n] = w2d
    return np.ascontiguousarray(w.reshape(n_tiles, cols, k).transpose(0, 2, 1)).tobytes()


def act_beats(a: np.ndarray, rows: int) -> bytes:
    """TDATA bytes of the ``s_axis_act`` frame: per block, per tap k, byte i = a[b*ROWS+i][k]
    (``a`` already padded to whole blocks)."""
    m, k = a.shape
    return np.ascontiguousarray(a.reshape(m // rows, rows, k).transpose(0, 2, 1)).tobytes()


@dataclass
class _Pass:
    """A loaded layer (one channel group) waiting for or running on the engine."""

    job: GemmJob
    n_tiles: int
    k_tile: int
    blocks: int


class TopEnv:
    """Clock, AXI masters / slaves, monitors and scoreboard around one ``qmac_top``.

    Args:
        dut: cocotb handle of ``qmac_top``.
        rng: the test's numpy Generator (pause patterns are drawn from it).
        pause: probability of a pause cycle on every stream and AXI4-Lite channel.
    """

    def __init__(self, dut: Any, rng: np.random.Generator, *, pause: float = 0.0) -> None:
        self.dut = dut
        self.rows = int(dut.ROWS.value)
        self.cols = int(dut.COLS.value)
        self.a_depth = int(dut.A_DEPTH.value)
        self.w_depth = int(dut.W_DEPTH.value)
        self.n_tiles_max = int(dut.N_TILES_MAX.value)
        # the window / element-wise units (UNITS = 1): sizes named as tb.window.WindowEnv's,
        # so its planning functions and tb.units.unit_of apply to the top
        self.units = int(dut.UNITS.value) == 1
        self.lanes = self.cols
        self.h_max, self.w_max = int(dut.H_MAX.value), int(dut.W_MAX.value)
        self.taps_max, self.groups_max = int(dut.TAPS_MAX.value), int(dut.GROUPS_MAX.value)
        self._ucfg: dict[tuple[int, int], int] = {}      # last value written to each unit register
        self._ucfg_addr: int | None = None                # UNIT_CFG_ADDR's value
        self._unit_store: Any = None                      # unit job: stores one output beat
        self.clock = kit.ClockReset(dut.clk_i, dut.rst_i)
        clk, rst = dut.clk_i, dut.rst_i
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), clk, rst,
                                  reset_active_level=True)
        self.act = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis_act"), clk, rst,
                                   reset_active_level=True)
        self.wgt = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis_wgt"), clk, rst,
                                   reset_active_level=True)
        self.prm = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis_prm"), clk, rst,
                                   reset_active_level=True)
        self.out = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis_out"), clk, rst,
                                 reset_active_level=True)
        for bfm in (self.axil.write_if, self.axil.read_if, self.act, self.wgt, self.prm, self.out):
            bfm.log.setLevel(logging.WARNING)      # no per-frame INFO lines
        self._py_rng = random.Random(int(rng.integers(2 ** 63)))
        self.set_pause(pause)
        self.sb = kit.Scoreboard("m_axis_out", width=8, log=dut._log)
        # AXI rule checks on everything the DUT drives: the output stream and the B / R
        # channels of AXI4-Lite (valid held and payload stable until ready).
        self.out_mon = kit.StreamMonitor(self.clock, dut.m_axis_out_tvalid, dut.m_axis_out_tready,
                                         {"tdata": dut.m_axis_out_tdata, "tlast": dut.m_axis_out_tlast,
                                          "tkeep": dut.m_axis_out_tkeep},
                                         name="m_axis_out", on_beat=self._on_beat)
        self.out_mon.keep_beats = False
        self.b_mon = kit.StreamMonitor(self.clock, dut.s_axil_bvalid, dut.s_axil_bready,
                                       {"bresp": dut.s_axil_bresp}, name="s_axil B")
        self.r_mon = kit.StreamMonitor(self.clock, dut.s_axil_rvalid, dut.s_axil_rready,
                                       {"rdata": dut.s_axil_rdata, "rresp": dut.s_axil_rresp},
                                       name="s_axil R")
        self.act_mon = kit.StreamMonitor(self.clock, dut.s_axis_act_tvalid, dut.s_axis_act_tready,
                                         {}, name="s_axis_act", check_protocol=False,
                                         on_beat=self._on_act)
        self._act_first: int | None = None   # cycle of the running layer's first activation beat
        for m in (self.b_mon, self.r_mon, self.act_mon):
            m.keep_beats = False
        outputs = {n: h for n, h in ((h._name, h) for h in dut)
                   if n in ("irq_o",) or (n.startswith("s_axil_") and n.endswith(("ready", "valid")))
                   or n.startswith("m_axis_") or n.endswith("_tready")}
        self.xz = kit.NoXZChecker(self.clock, outputs)
        self._expected: np.ndarray | None = None
        self._job: GemmJob | None = None
        self._slots: list[tuple[int, int]] = []
        self._next_slot = 0
        self._outputs: np.ndarray | None = None
        self._pending: list[_Pass] = []       # loaded and started, oldest first

    # -- set-up ---------------------------------------------------------------------
    def set_pause(self, prob: float) -> None:
        """Random pauses with probability ``prob`` on every stream and AXI4-Lite channel
        (0: none)."""
        gens = [self.act, self.wgt, self.prm, self.out,
                self.axil.write_if.aw_channel, self.axil.write_if.w_channel,
                self.axil.write_if.b_channel, self.axil.read_if.ar_channel,
                self.axil.read_if.r_channel]
        for g in gens:
            g.set_pause_generator(pauses(self._py_rng, prob) if prob > 0 else None)

    async def start(self) -> None:
        """Clock, reset; then the monitors and the X/Z checker."""
        self.clock.start()
        await self.clock.reset(3)
        for m in (self.out_mon, self.b_mon, self.r_mon, self.act_mon, self.xz):
            m.start()
        self.stalls = {"ACT": 0, "WGT": 0, "PRM": 0, "OUT": 0}
        cocotb.start_soon(self._count_stalls())

    async def _count_stalls(self) -> None:
        """Count TVALID && !TREADY per stream at every edge (what PERF_*_STALL must say)."""
        d = self.dut
        pairs = {"ACT": (d.s_axis_act_tvalid, d.s_axis_act_tready),
                 "WGT": (d.s_axis_wgt_tvalid, d.s_axis_wgt_tready),
                 "PRM": (d.s_axis_prm_tvalid, d.s_axis_prm_tready),
                 "OUT": (d.m_axis_out_tvalid, d.m_axis_out_tready)}
        while True:
            await RisingEdge(d.clk_i)
            for name, (v, r) in pairs.items():
                if v.value == 1 and r.value == 0:
                    self.stalls[name] += 1

    async def reset(self, cycles: int = 2) -> None:
        """Synchronous reset in the middle of traffic: the DUT and every queue are emptied."""
        for m in (self.out_mon, self.b_mon, self.r_mon, self.act_mon, self.xz):
            m.stop()
        for s in (self.act, self.wgt, self.prm, self.out):
            s.clear()
        await self.clock.reset(cycles)
        for s in (self.act, self.wgt, self.prm, self.out):
            s.clear()
        self.sb.clear()
        self._slots, self._next_slot, self._pending = [], 0, []
        self._ucfg, self._ucfg_addr, self._unit_store = {}, None, None
        for m in (self.out_mon, self.b_mon, self.r_mon, self.act_mon, self.xz):
            m.start()

    @property
    def array_beats(self) -> int:
        """MAC-array beats since reset: the PERF_ARRAY_BUSY counter's register, peeked
        (not an AXI4-Lite access, so the progress display does not disturb the bus)."""
        return int(self.dut.pc_array_q.value)

    # -- registers ------------------------------------------------------------------
    async def read(self, reg: int) -> int:
        """One AXI4-Lite read; asserts an OKAY response."""
        resp = await self.axil.read(reg, 4)
        assert resp.resp == OKAY, f"read of {reg:#04x} answered {resp.resp}"
        return int.from_bytes(resp.data, "little")

    async def write(self, reg: int, value: int) -> None:
        """One AXI4-Lite write of all four bytes; asserts an OKAY response."""
        resp = await self.axil.write(reg, int(value).to_bytes(4, "little"))
        assert resp.resp == OKAY, f"write of {value:#x} to {reg:#04x} answered {resp.resp}"

    # -- layers ---------------------------------------------------------------------
    def plan(self, job: GemmJob) -> tuple[int, int]:
        """``(n_tiles, k_tile)``; the engine's rules (:meth:`tb.engine.EngineEnv.plan`)."""
        return EngineEnv.plan(self, job)  # type: ignore[arg-type]  # uses the size attributes only

    def channel_groups(self, job: GemmJob) -> list[GemmJob]:
        """The job split over output channels to fit (:meth:`tb.engine.EngineEnv.channel_groups`)."""
        return EngineEnv.channel_groups(self, job)  # type: ignore[arg-type]

    async def load(self, job: GemmJob, *, start: bool = True) -> None:
        """Configure, stream the weights and parameters, then START (unless ``start`` is
        False).  ``job.cols`` needs only its shape here (the number of GEMM rows), so the
        next layer can be loaded before its activations exist.  With a layer running this
        overlaps its compute (the streams write the other bank)."""
        await self._gemm_registers(job)
        n_tiles, _ = self.plan(job)
        await self.wgt.send(AxiStreamFrame(weight_beats(job.w2d, n_tiles, self.cols)))
        await self.prm.send(AxiStreamFrame(param_beats(job, n_tiles, self.cols)))
        await self.wgt.wait()
        await self.prm.wait()
        if start:
            await self.start_loaded(job, rewrite=False)

    async def _gemm_registers(self, job: GemmJob) -> None:
        n_tiles, k_tile = self.plan(job)
        blocks = -(-job.m // self.rows)
        regs = ((R.LAYER_OP, 0), (R.LAYER_K, job.k), (R.LAYER_N_TILES, n_tiles),
                (R.LAYER_K_TILE, k_tile), (R.LAYER_BLOCKS, blocks))
        for reg, value in regs[0 if self.units else 1:]:
            await self.write(reg, value)

    async def start_loaded(self, job: GemmJob, *, rewrite: bool = True) -> None:
        """START a GEMM pass whose weights and parameters :meth:`load` streamed (with
        ``start=False``); ``rewrite``: write its LAYER_* registers again first (unit
        layers run in between changed them)."""
        if rewrite:
            await self._gemm_registers(job)
        n_tiles, k_tile = self.plan(job)
        await self.write(R.CTRL, R.CTRL_START)
        self._pending.append(_Pass(job, n_tiles, k_tile, -(-job.m // self.rows)))

    def _on_beat(self, beat: kit.Beat) -> None:
        lanes = kit.unpack(beat["tdata"], self.cols, 8)
        if self._unit_store is not None:       # a window / eltwise job
            self.sb.compare(lanes, cycle=beat.cycle)
            if beat["tkeep"] != (1 << self.cols) - 1:
                raise AssertionError(f"m_axis_out: TKEEP {beat['tkeep']:#x} at cycle {beat.cycle}")
            self._unit_store(self._next_slot, lanes)
            self._next_slot += 1
            return
        slot = self._slots[self._next_slot] if self._next_slot < len(self._slots) else None
        try:
            self.sb.compare(lanes, cycle=beat.cycle)
        except kit.Mismatch as exc:
            if slot is None or self._job is None or self._expected is None:
                raise
            raise kit.Mismatch(f"{exc}\n  output element: "
                               + locate(self._job, self._expected, slot, lanes)) from None
        if beat["tkeep"] != (1 << self.cols) - 1:
            raise AssertionError(f"m_axis_out: TKEEP {beat['tkeep']:#x} at cycle {beat.cycle}")
        if self._outputs is not None and slot is not None:
            row, c0 = slot
            self._outputs[row, c0:c0 + self.cols] = lanes
        self._next_slot += 1

    async def run(self, job: GemmJob, *, act_frames: int = 1) -> tuple[np.ndarray, LayerStats]:
        """Stream the activations of the oldest loaded job (``job``, with its real
        ``cols``), check every output beat, wait for the output frame.

        Args:
            job: the job :meth:`load` started first among those not yet run.
            act_frames: split the activation stream into this many frames (more than one
                puts TLAST in the wrong place: ERROR.ACT_TLAST, for the error test).

        Returns:
            ``(outputs int8 [M, N], stats)``: cycles from the first activation beat to the
            last output beat (inclusive), MAC-array beats from PERF_ARRAY_BUSY;
            ``stats.load_cycles`` is left 0 (the caller reads PERF_LOAD_EXPOSED).
        """
        p = self._pending.pop(0)
        assert p.job.name == job.name and p.job.k == job.k, "run() must follow load() order"
        r, c = self.rows, self.cols
        a = np.full((p.blocks * r, job.k), job.in_zero_point, np.int8)
        a[: job.m] = job.cols
        w = np.zeros((p.n_tiles * c, job.k), np.int8)
        w[: job.n] = job.w2d
        pad = p.n_tiles * c - job.n
        rq = RequantParams(
            bias=np.concatenate([job.rq.bias, np.zeros(pad, np.int32)]),
            m0=np.concatenate([job.rq.m0, np.zeros(pad, np.int32)]),
            shift=np.concatenate([job.rq.shift, np.zeros(pad, np.int32)]),
            out_zero_point=job.rq.out_zero_point, act_min=job.rq.act_min,
            act_max=job.rq.act_max)
        expected = quantized_gemm(a, w, job.in_zero_point, rq, layer=job.name,
                                  check_bound=job.check_bound)
        self._expected, self._job = expected, job
        self._outputs = np.zeros((p.blocks * r, p.n_tiles * c), np.int64)
        self._slots, self._next_slot = [], 0
        for b in range(p.blocks):
            for t in range(p.n_tiles):
                self.sb.expect(expected[b * r:(b + 1) * r, t * c:(t + 1) * c],
                               f"layer {job.name!r} block {b} (rows {b * r}..{b * r + r - 1}) "
                               f"tile {t} (channels {t * c}..{t * c + c - 1})")
                self._slots += [(b * r + i, t * c) for i in range(r)]
        data = act_beats(a, r)
        cuts = np.linspace(0, len(data) // r, act_frames + 1).astype(int) * r
        busy0 = await self.read(R.PERF_ARRAY_BUSY)   # the array idles until the first beat
        o0 = self.out_mon.count
        self._act_first = None
        for i in range(act_frames):
            await self.act.send(AxiStreamFrame(data[cuts[i]:cuts[i + 1]]))
        budget = 10 * p.blocks * (p.n_tiles + 1) * (job.k + 32) + 20_000
        try:
            frame = await with_timeout(self.out.recv(), budget * self.clock.period_ns, "ns")
        except SimTimeoutError:
            raise kit.Mismatch(f"layer {job.name!r}: timeout after {budget} cycles with "
                               f"{self.out_mon.count - o0} of {len(self._slots)} output beats "
                               f"(cycle {self.clock.cycle()})") from None
        assert len(frame.tdata) == len(self._slots) * c, (
            f"layer {job.name!r}: output frame (TLAST) of {len(frame.tdata) // c} beats, "
            f"expected {len(self._slots)}")
        self.sb.check_done()
        busy = await self.read(R.PERF_ARRAY_BUSY) - busy0
        assert self.out_mon.last_cycle is not None and self._act_first is not None
        stats = LayerStats(cycles=self.out_mon.last_cycle - self._act_first + 1, load_cycles=0,
                           array_beats=busy, macs=job.macs, slots=r * c)
        return self._outputs[: job.m, : job.n].astype(np.int8), stats

    def _on_act(self, beat: kit.Beat) -> None:
        if self._act_first is None:
            self._act_first = beat.cycle

    # -- window / element-wise units (LAYER_OP WINDOW / ELTWISE) ----------------------
    async def unit_cfg(self, unit: int, reg: int, value: int) -> None:
        """Write unit register ``reg`` of ``unit`` (0 window, 1 eltwise) through
        UNIT_CFG_ADDR / UNIT_CFG_DATA, unless it already holds ``value``."""
        if self._ucfg.get((unit, reg)) == value:
            return
        addr = (unit << 8) | reg
        if self._ucfg_addr != addr:
            await self.write(R.UNIT_CFG_ADDR, addr)
            self._ucfg_addr = addr
        await self.write(R.UNIT_CFG_DATA, value & 0xFFFFFFFF)
        self._ucfg[(unit, reg)] = value

    async def unit_job(self, op: int, blocks: int, act: bytes, wgt: bytes | None,
                       expected: list[tuple[np.ndarray, str]], store: Any,
                       *, name: str = "", ahead: GemmJob | None = None) -> int:
        """One WINDOW / ELTWISE layer job: LAYER_OP, LAYER_BLOCKS, START, stream ``act``
        (and ``wgt``: eltwise operand B), check every output beat against ``expected``
        (``[beats, lanes]`` blocks with a label, in order) and hand it to
        ``store(index, lanes)``.  Returns the cycles from the first activation beat to the
        last output beat.

        ``ahead``: a GEMM layer :meth:`load` STARTed and not yet run; this job's START
        then queues behind it (STATUS.PENDING is checked), a configuration write to the
        queued job's unit is refused (ERROR.UNIT_BUSY, cleared again), and the GEMM layer
        runs first.
        """
        await self.write(R.LAYER_OP, op)
        await self.write(R.LAYER_BLOCKS, blocks)
        await self.write(R.CTRL, R.CTRL_START)
        if ahead is not None:
            st = await self.read(R.STATUS)
            assert st & R.STATUS_BUSY and st & R.STATUS_PENDING, (
                f"layer {name!r}: START behind the running GEMM layer {ahead.name!r} did "
                f"not queue (STATUS {st:#x})")
            unit = op - 1                    # LAYER_OP WINDOW 1 / ELTWISE 2 -> unit 0 / 1
            await self.write(R.UNIT_CFG_ADDR, unit << 8)
            self._ucfg_addr = unit << 8
            await self.write(R.UNIT_CFG_DATA, self._ucfg.get((unit, 0), 0) & 0xFFFFFFFF)
            err = await self.read(R.ERROR)
            assert err == R.ERROR_UNIT_BUSY, (
                f"layer {name!r}: a configuration write to its unit, queued second, gave "
                f"ERROR {err:#x} (expected UNIT_BUSY only)")
            await self.write(R.ERROR, R.ERROR_UNIT_BUSY)
            await self.run(ahead)
        beats = 0
        for exp, label in expected:
            self.sb.expect(exp, label)
            beats += 1 if np.ndim(exp) == 1 else len(exp)
        self._unit_store, self._next_slot = store, 0
        self._act_first = None
        o0 = self.out_mon.count
        await self.act.send(AxiStreamFrame(act))
        if wgt is not None:
            await self.wgt.send(AxiStreamFrame(wgt))
        budget = 40 * beats + 4 * len(act) // max(1, self.rows) + 20_000
        try:
            frame = await with_timeout(self.out.recv(), budget * self.clock.period_ns, "ns")
        except SimTimeoutError:
            raise kit.Mismatch(f"layer {name!r}: timeout after {budget} cycles with "
                               f"{self.out_mon.count - o0} of {beats} output beats "
                               f"(cycle {self.clock.cycle()})") from None
        assert len(frame.tdata) == beats * self.cols, (
            f"layer {name!r}: output frame (TLAST) of {len(frame.tdata) // self.cols} beats, "
            f"expected {beats}")
        self.sb.check_done()
        self._unit_store = None
        assert self.out_mon.last_cycle is not None and self._act_first is not None
        return self.out_mon.last_cycle - self._act_first + 1


def unit_param_beats(bias: Any, m0: Any, shift: Any, zp: int, lo: int, hi: int) -> bytes:
    """TDATA bytes of an ``s_axis_prm`` frame from per-channel arrays (window / eltwise
    units: one beat per channel of the unit's parameter memory)."""
    out = bytearray()
    for b, m, sh in zip(np.asarray(bias).ravel(), np.asarray(m0).ravel(), np.asarray(shift).ravel()):
        v = (_field(int(b), ("s_axis_prm", "BIAS")) | _field(int(m), ("s_axis_prm", "M0"))
             | _field(int(sh), ("s_axis_prm", "SHIFT")) | _field(zp, ("s_axis_prm", "ZP"))
             | _field(lo, ("s_axis_prm", "ACT_MIN")) | _field(hi, ("s_axis_prm", "ACT_MAX")))
        out += v.to_bytes(16, "little")
    return bytes(out)
