"""Driver of ``rtl/qlayer_engine.v`` inside a cocotb test.

:class:`EngineEnv` loads a GEMM layer into the engine (configuration registers, weight
buffer, requantize parameters), streams its ``im2col`` rows, and checks every output
beat exactly against ``pymodel.ops.layers.quantized_gemm`` -- the golden model of the engine
-- through the kit's scoreboard.  The layer-engine testbench and the network runner both
use it.

Host-side duties (the engine has no hardware for them): padding rows to whole blocks of
ROWS and channels to whole tiles of COLS, folding the input zero point into the bias,
sign-extending INT4 weights (they arrive as int8 values already) and reassembling the
output rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge, SimTimeoutError, with_timeout

from pymodel.ops.layers import RequantParams, fold_input_zero_point, quantized_gemm
from tb import kit


@dataclass
class GemmJob:
    """One layer as the engine runs it.

    Attributes:
        name: layer name for messages.
        cols: int8 ``[M, K]`` GEMM rows (``im2col`` output, padded with the input zero point).
        w2d: int8 ``[N, K]`` weights (INT4 weights as int8 values in [-7, 7]).
        in_zero_point: input zero point (folded into the bias by the host).
        rq: requantize parameters, ``N`` channels.
        k_tile: taps per chunk (default: K split into the fewest balanced chunks that
            fit ``A_DEPTH``).
        check_bound: apply the golden model's accumulator bound check (off only for
            tests of the wraparound edges).
        describe_row: names the output element of GEMM row ``m`` in mismatch reports
            (e.g. ``"image 3, y 2, x 5"``).
    """

    name: str
    cols: np.ndarray
    w2d: np.ndarray
    in_zero_point: int
    rq: RequantParams
    k_tile: int | None = None
    check_bound: bool = True
    describe_row: Callable[[int], str] | None = None

    @property
    def m(self) -> int:
        return int(self.cols.shape[0])

    @property
    def k(self) -> int:
        return int(self.cols.shape[1])

    @property
    def n(self) -> int:
        return int(self.w2d.shape[0])

    @property
    def macs(self) -> int:
        """Useful multiply-accumulates: M * N * K."""
        return self.m * self.n * self.k


@dataclass
class LayerStats:
    """What one layer run measured.

    Attributes:
        cycles: clock cycles from the first activation beat to the last output beat.
        load_cycles: cycles spent writing configuration, weights and parameters.
        array_beats: cycles in which the MAC array accepted an operand beat.
        macs: useful MACs (M * N * K).
        slots: ROWS * COLS (MACs the array can do per cycle).
        mismatches: output elements that differed from the golden model (0 or the run
            stopped at the first one).
    """

    cycles: int
    load_cycles: int
    array_beats: int
    macs: int
    slots: int
    mismatches: int = 0

    @property
    def utilization(self) -> float:
        """Useful MACs / (ROWS * COLS * cycles)."""
        return self.macs / (self.slots * self.cycles) if self.cycles else 0.0

    @property
    def array_occupancy(self) -> float:
        """Fraction of the cycles in which the MAC array took an operand beat."""
        return self.array_beats / self.cycles if self.cycles else 0.0


def _param(dut: Any, name: str) -> int:
    return int(getattr(dut, name).value)


def locate(job: "GemmJob", expected: np.ndarray, slot: tuple[int, int],
           lanes: np.ndarray) -> str:
    """Where an output beat that failed the scoreboard went wrong: the layer, the element
    (``job.describe_row``), the channel and the GEMM row / column of its first bad lane.

    Args:
        job: the layer's job; expected: int8 ``[M', N']`` expected outputs;
        slot: ``(GEMM row, first channel)`` of the beat; lanes: its int8 lane values.
    """
    row, c0 = slot
    bad = np.flatnonzero(lanes != expected[row, c0:c0 + len(lanes)])
    col = c0 + int(bad[0]) if bad.size else c0
    where = job.describe_row(row) if job.describe_row else f"row {row}"
    return f"layer {job.name!r}, {where}, channel {col} (GEMM row {row}, column {col})"


class EngineGeometry:
    """What a host must know of a ``qlayer_engine`` build to prepare its jobs.

    Shared by the cocotb driver (:class:`EngineEnv`) and the Verilator bulk harness
    (``tb/bulk.py``), so both split, pad and check a layer the same way.

    Attributes:
        rows, cols, a_depth, w_depth, n_tiles_max: the engine's parameters.
    """

    rows: int
    cols: int
    a_depth: int
    w_depth: int
    n_tiles_max: int

    def plan(self, job: GemmJob) -> tuple[int, int]:
        """``(n_tiles, k_tile)`` of a job; ValueError if it does not fit this engine."""
        n_tiles = -(-job.n // self.cols)
        # default: the fewest chunks that fit a bank, of balanced length (K=72 with
        # A_DEPTH=64 runs as 36 + 36, not 64 + 8: every chunk end costs a result drain)
        chunks = -(-job.k // self.a_depth)
        k_tile = job.k_tile or -(-job.k // chunks)
        problems = []
        if not 1 <= job.k <= 0xFFFF:
            problems.append(f"K={job.k} is outside 1..65535")
        if n_tiles > self.n_tiles_max:
            problems.append(f"N={job.n} channels need {n_tiles} tiles of {self.cols}; "
                            f"N_TILES_MAX={self.n_tiles_max}")
        if n_tiles * job.k > self.w_depth:
            problems.append(f"N_TILES*K = {n_tiles}*{job.k} = {n_tiles * job.k} weight words "
                            f"exceed W_DEPTH={self.w_depth}")
        if not 1 <= k_tile <= self.a_depth:
            problems.append(f"k_tile={k_tile} is outside 1..A_DEPTH={self.a_depth}")
        if problems:
            raise ValueError(f"layer {job.name!r} does not fit the engine: " + "; ".join(problems)
                             + " (run_layer splits a layer over output channels)")
        return n_tiles, k_tile

    def channel_groups(self, job: GemmJob) -> list[GemmJob]:
        """Split a job over output channels into groups that fit the engine.

        A group holds up to ``min(N_TILES_MAX, W_DEPTH // K)`` channel tiles; each group
        is a job of its own (its weight rows, its requantize parameters), run one after
        the other over the same activations.  ValueError if not even one channel tile of
        K taps fits the weight buffer, or K is out of range.
        """
        tiles = min(self.n_tiles_max, self.w_depth // job.k) if job.k else 0
        if tiles < 1 or job.k > 0xFFFF:
            raise ValueError(f"layer {job.name!r} does not fit the engine: K={job.k} taps need "
                             f"K <= 65535 and K <= W_DEPTH={self.w_depth} (one channel tile); "
                             "build a larger engine")
        size = tiles * self.cols
        if job.n <= size:
            return [job]
        groups = []
        for c0 in range(0, job.n, size):
            c1 = min(c0 + size, job.n)
            rq = RequantParams(bias=job.rq.bias[c0:c1], m0=job.rq.m0[c0:c1],
                               shift=job.rq.shift[c0:c1], out_zero_point=job.rq.out_zero_point,
                               act_min=job.rq.act_min, act_max=job.rq.act_max,
                               rounding=job.rq.rounding)
            groups.append(GemmJob(name=f"{job.name}[channels {c0}..{c1 - 1}]", cols=job.cols,
                                  w2d=job.w2d[c0:c1], in_zero_point=job.in_zero_point, rq=rq,
                                  k_tile=job.k_tile, check_bound=job.check_bound,
                                  describe_row=job.describe_row))
        return groups

    @staticmethod
    def stitch(parts: list[tuple[np.ndarray, "LayerStats"]]) -> tuple[np.ndarray, "LayerStats"]:
        """Channel groups' ``(outputs, stats)`` -> the layer's: outputs side by side along the
        channel axis, cycles / load cycles / array beats / MACs summed."""
        out, total = parts[0]
        for _, st in parts[1:]:
            total.cycles += st.cycles
            total.load_cycles += st.load_cycles
            total.array_beats += st.array_beats
            total.macs += st.macs
        return np.concatenate([o for o, _ in parts], axis=1), total

    def layout(self, job: GemmJob) -> tuple[np.ndarray, np.ndarray, RequantParams, np.ndarray]:
        """The job as the engine sees it, and what it must produce.

        Returns:
            ``(a, w, rq, expected)``: int8 ``[blocks*ROWS, K]`` rows padded with the input
            zero point; int8 ``[n_tiles*COLS, K]`` weights padded with zero channels;
            requantize parameters of the ``n_tiles*COLS`` channels (padding: zeros); int8
            ``[blocks*ROWS, n_tiles*COLS]`` expected outputs
            (``pymodel.ops.layers.quantized_gemm``).
        """
        n_tiles, _ = self.plan(job)
        r, c = self.rows, self.cols
        blocks = -(-job.m // r)
        a = np.full((blocks * r, job.k), job.in_zero_point, np.int8)
        a[: job.m] = job.cols
        w = np.zeros((n_tiles * c, job.k), np.int8)
        w[: job.n] = job.w2d
        pad = n_tiles * c - job.n
        rq = RequantParams(
            bias=np.concatenate([job.rq.bias, np.zeros(pad, np.int32)]),
            m0=np.concatenate([job.rq.m0, np.zeros(pad, np.int32)]),
            shift=np.concatenate([job.rq.shift, np.zeros(pad, np.int32)]),
            out_zero_point=job.rq.out_zero_point, act_min=job.rq.act_min,
            act_max=job.rq.act_max, rounding=job.rq.rounding)
        expected = quantized_gemm(a, w, job.in_zero_point, rq, layer=job.name,
                                  check_bound=job.check_bound)  # [M', N']
        return a, w, rq, expected


class EngineEnv(EngineGeometry):
    """Clock, streams, scoreboard and loaders around one ``qlayer_engine``.

    Args:
        dut: cocotb handle of ``qlayer_engine``.
        rng: the test's numpy Generator (stalls and idle garbage come from it).
        in_stall: probability of an idle cycle before each activation beat.
        out_stall: probability that ``out_ready_i`` is low in a cycle.
    """

    def __init__(self, dut: Any, rng: np.random.Generator, *, in_stall: float = 0.0,
                 out_stall: float = 0.0) -> None:
        self.dut = dut
        self.rows = _param(dut, "ROWS")
        self.cols = _param(dut, "COLS")
        self.a_depth = _param(dut, "A_DEPTH")
        self.w_depth = _param(dut, "W_DEPTH")
        self.n_tiles_max = _param(dut, "N_TILES_MAX")
        self.clock = kit.ClockReset(dut.clk_i, dut.rst_i)
        self.sb = kit.Scoreboard("out", width=8, log=dut._log)
        self.src = kit.StreamSource.from_dut(dut, self.clock, "act", ["data"],
                                             stall_prob=in_stall, rng=rng)
        self.sink = kit.StreamSink.from_dut(dut, self.clock, "out", ["data", "last"],
                                            stall_prob=out_stall, rng=rng, on_beat=self._on_beat)
        self.sink.keep_beats = False
        self.xz = kit.NoXZChecker(self.clock, kit.dut_outputs(dut))
        self.array_beats = 0
        self._outputs: np.ndarray | None = None
        self._expected: np.ndarray | None = None
        self._job: GemmJob | None = None
        self._slots: list[tuple[int, int]] = []  # (row, first channel) of each expected beat
        self._next_slot = 0
        self._bank = 0                            # weight / parameter bank of the next load

    # -- set-up ---------------------------------------------------------------------
    async def start(self) -> None:
        """Clock, idle inputs, reset; then the sink, the X/Z checker, the beat counter."""
        d = self.dut
        for sig in (d.w_we_i, d.prm_we_i, d.out_ready_i, d.bank_i, d.w_bank_i, d.prm_bank_i):
            sig.value = 0
        for sig in (d.k_i, d.n_tiles_i, d.k_tile_i):
            sig.value = 1
        self.clock.start()
        self.src.start()
        await self.clock.reset(3)
        self.sink.start()
        self.xz.start()
        cocotb.start_soon(self._count_array_beats())

    async def _count_array_beats(self) -> None:
        arr = self.dut.u_array
        while True:
            await RisingEdge(self.dut.clk_i)
            if arr.op_valid_i.value == 1 and arr.op_ready_o.value == 1:
                self.array_beats += 1

    async def reset(self, cycles: int = 2) -> None:
        """Synchronous reset in the middle of traffic: everything in flight is dropped."""
        self.src.stop()
        self.src.clear()
        self.sink.stop()
        await self.clock.reset(cycles)
        self.sb.clear()
        self._slots, self._next_slot = [], 0
        self.src.start()
        self.sink.start()

    # -- loading --------------------------------------------------------------------
    async def run_layer(self, job: GemmJob) -> tuple[np.ndarray, LayerStats]:
        """:meth:`run`, after splitting the job over output channels if it does not fit
        (:meth:`channel_groups`); outputs are stitched back and the figures summed."""
        return self.stitch([await self.run(group) for group in self.channel_groups(job)])

    async def _write(self, we: Any, fields: dict[Any, int]) -> None:
        for sig, value in fields.items():
            sig.value = value
        we.value = 1
        await RisingEdge(self.dut.clk_i)
        we.value = 0

    async def load(self, job: GemmJob) -> int:
        """Set the configuration, write weights and requantize parameters; returns the cycles used.

        Successive loads alternate between the engine's two weight / parameter banks (the
        engine is idle in between, so the configuration inputs change with nothing in flight).
        """
        d = self.dut
        n_tiles, k_tile = self.plan(job)
        start = self.clock.cycle()
        bank, self._bank = self._bank, 1 - self._bank
        d.k_i.value, d.n_tiles_i.value, d.k_tile_i.value = job.k, n_tiles, k_tile
        d.bank_i.value = d.w_bank_i.value = d.prm_bank_i.value = bank
        w = np.zeros((n_tiles * self.cols, job.k), np.int8)
        w[: job.n] = job.w2d
        for t in range(n_tiles):
            tile = w[t * self.cols:(t + 1) * self.cols]            # [COLS, K]
            for k in range(job.k):
                await self._write(d.w_we_i, {d.w_addr_i: t * job.k + k,
                                             d.w_data_i: kit.pack(tile[:, k], 8)})
        bias = fold_input_zero_point(job.rq.bias, job.w2d, job.in_zero_point)
        for c in range(n_tiles * self.cols):
            real = c < job.n
            await self._write(d.prm_we_i, {
                d.prm_chan_i: c,
                d.prm_bias_i: int(bias[c]) & 0xFFFFFFFF if real else 0,
                d.prm_m0_i: int(job.rq.m0[c]) if real else 0,
                d.prm_shift_i: int(job.rq.shift[c]) & 0x3F if real else 0,
                d.prm_zp_i: job.rq.out_zero_point & 0xFF,
                d.prm_act_min_i: job.rq.act_min & 0xFF,
                d.prm_act_max_i: job.rq.act_max & 0xFF,
            })
        return self.clock.cycle() - start

    # -- running --------------------------------------------------------------------
    def _on_beat(self, beat: kit.Beat) -> None:
        lanes = kit.unpack(beat["data"], self.cols, 8)
        slot = self._slots[self._next_slot] if self._next_slot < len(self._slots) else None
        try:
            self.sb.compare(lanes, cycle=beat.cycle, last=beat["last"])
        except kit.Mismatch as exc:
            if slot is None or self._job is None or self._expected is None:
                raise
            raise kit.Mismatch(f"{exc}\n  output element: "
                               + locate(self._job, self._expected, slot, lanes)) from None
        if self._outputs is not None and slot is not None:
            row, c0 = slot
            self._outputs[row, c0:c0 + self.cols] = lanes
        self._next_slot += 1

    def queue(self, job: GemmJob) -> np.ndarray:
        """Queue the activation beats and the expected output beats of a loaded job.

        Returns:
            The expected outputs, int8 ``[M, N]`` (``pymodel.ops.layers.quantized_gemm``).
        """
        n_tiles, _ = self.plan(job)
        r, c = self.rows, self.cols
        blocks = -(-job.m // r)
        a, _, _, expected = self.layout(job)
        self._expected, self._job = expected, job
        self._outputs = np.zeros((blocks * r, n_tiles * c), np.int64)
        self._slots, self._next_slot = [], 0
        for b in range(blocks):
            for k in range(job.k):
                self.src.send({"data": kit.pack(a[b * r:(b + 1) * r, k], 8)})
            for t in range(n_tiles):
                tile = expected[b * r:(b + 1) * r, t * c:(t + 1) * c]
                self.sb.expect(tile, f"layer {job.name!r} block {b} (rows {b * r}..{b * r + r - 1})"
                                     f" tile {t} (channels {t * c}..{t * c + c - 1})")
                self._slots += [(b * r + i, t * c) for i in range(r)]
        return expected[: job.m, : job.n]

    async def _finish(self, beats: int) -> None:
        await self.src.wait_idle()
        await self.sink.wait_for(beats)

    async def run(self, job: GemmJob) -> tuple[np.ndarray, LayerStats]:
        """Load, stream and check one job; returns the engine's outputs and the figures.

        Returns:
            ``(outputs, stats)``: the engine's int8 ``[M, N]`` outputs as received (equal
            to the golden model, or the scoreboard has raised) and :class:`LayerStats`.
        """
        load_cycles = await self.load(job)
        self.queue(job)
        beats0 = self.array_beats
        out0 = self.sink.count
        total = len(self._slots)
        first = self.clock.cycle()
        # Watchdog: ten times the cycles the layer needs with every stall and drain, so a
        # hang (a lost beat, a stuck handshake) fails with a message instead of running on.
        n_tiles, k_tile = self.plan(job)
        blocks = -(-job.m // self.rows)
        chunks = -(-job.k // k_tile)
        budget = 10 * blocks * (n_tiles + 1) * (job.k + chunks * (self.rows + self.cols + 16)) \
            + 20_000
        try:
            await with_timeout(self._finish(out0 + total), budget * self.clock.period_ns, "ns")
        except SimTimeoutError:
            raise kit.Mismatch(
                f"layer {job.name!r}: timeout after {budget} cycles with {self.src.pending} "
                f"activation beats unsent and {out0 + total - self.sink.count} of {total} output "
                f"beats missing (cycle {self.clock.cycle()})") from None
        self.sb.check_done()
        stats = LayerStats(cycles=self.clock.cycle() - first, load_cycles=load_cycles,
                           array_beats=self.array_beats - beats0, macs=job.macs,
                           slots=self.rows * self.cols)
        assert self._outputs is not None
        return self._outputs[: job.m, : job.n].astype(np.int8), stats
