"""Driver of ``rtl/window_engine.v`` inside a cocotb test: depthwise conv and pooling layers.

:class:`WindowEnv` splits a layer into engine jobs -- one image, one channel group of
LANES channels, one spatial tile whose input fits ``H_MAX x W_MAX`` -- loads each job
(configuration registers, weights, requantize parameters), streams its input pixels and
checks every output beat exactly against ``pymodel.ops.window_stages`` (whose
compositions equal ``pymodel.ops.layers``).  A mismatch names the op, the layer, the
output pixel (image, y, x), the channel, the cycle and both values.

Host-side duties (the engine has no hardware for them): cutting the layer into jobs
(each tile's padding and output size computed here), folding the input zero point into
the bias, loading the identity requantize parameters for pooling.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from cocotb.triggers import RisingEdge, SimTimeoutError, with_timeout

from pymodel.arithmetic.fixedpoint import requantize
from pymodel.ops.layers import RequantParams, fold_input_zero_point
from pymodel.arithmetic.fixedpoint import left_shift, saturating_rounding_doubling_high_mul, wrap_int32
from pymodel.ops.reduce import MeanParams
from pymodel.ops.window_stages import (depthwise_accumulate, identity_requant, mean_requant,
                                       rounding_divide_by_count, window_count, window_gather,
                                       window_max, window_pads, window_sum, window_taps)
from tb import kit

MODES = {"dw": 0, "max": 1, "avg": 2, "mean": 3}   # mean: MODE_SUM + the MEAN requantize
(CFG_H, CFG_W, CFG_KH, CFG_KW, CFG_SH, CFG_SW, CFG_DH, CFG_DW, CFG_PAD_T, CFG_PAD_L, CFG_OH,
 CFG_OW, CFG_PAD, CFG_GROUP, CFG_MODE) = range(15)


@dataclass
class WindowLayer:
    """One depthwise / pooling layer as the window engine runs it.

    Attributes:
        name: layer name for messages.
        op: ``"dw"`` (depthwise, multiplier 1), ``"max"`` or ``"avg"`` (pooling), ``"mean"``
            (spatial MEAN, ``kernel`` = the image, stride 1, valid).
        x: int8 NHWC ``[N, H, W, C]``.
        kernel, stride, dilation: ``(h, w)`` pairs.
        padding: ``"valid"``, ``"same"``, an int or ``((top, bottom), (left, right))``.
        w: int8 ``[1, kh, kw, C]`` depthwise weights (``op == "dw"``).
        in_zero_point: input zero point (``dw``: padding value, folded into the bias).
        rq: requantize parameters (``dw``); pooling uses the identity and ``act_min`` /
            ``act_max``.
        act_min, act_max: pooling clamp.
        mean: MEAN's parameters (``op == "mean"``).
        check_bound: apply the accumulator bound check (off only at the contract's edges).
    """

    name: str
    op: str
    x: np.ndarray
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    padding: Any = "valid"
    w: np.ndarray | None = None
    in_zero_point: int = 0
    rq: RequantParams | None = None
    act_min: int = -128
    act_max: int = 127
    check_bound: bool = True
    mean: MeanParams | None = None

    @property
    def channels(self) -> int:
        return int(self.x.shape[3])

    @property
    def taps(self) -> int:
        return self.kernel[0] * self.kernel[1]


@dataclass
class Golden:
    """Golden model of a layer, stage by stage (``pymodel.ops.window_stages``).

    Attributes:
        out: int8 ``[N, OH, OW, C]``.
        pre_clamp: int64 ``[N, OH, OW, C]``: the value the clamp saw.
        tie: bool ``[N, OH, OW, C]``: the output's rounding was a tie (average: the sum
            exactly half-way between two multiples of n; depthwise: the requantize
            right shift's remainder exactly one half; max: two taps equal the maximum).
        pads: ``((top, bottom), (left, right))``.
        inside: bool ``[OH, OW, T]``.
    """

    out: np.ndarray
    pre_clamp: np.ndarray
    tie: np.ndarray
    pads: tuple[tuple[int, int], tuple[int, int]]
    inside: np.ndarray


def golden(layer: WindowLayer) -> Golden:
    """The layer's outputs and the intermediate values the coverage model needs."""
    x = layer.x.astype(np.int64)
    c = layer.channels
    pads = window_pads(layer.padding, x.shape[1:3], layer.kernel, layer.stride, layer.dilation)
    iy, ix, inside = window_taps(x.shape[1:3], layer.kernel, layer.stride, layer.dilation, pads)
    big = (-(1 << 31), (1 << 31) - 1)
    if layer.op == "dw":
        assert layer.w is not None and layer.rq is not None
        rq = layer.rq
        wt = layer.w.reshape(layer.taps, c).astype(np.int64)
        taps = window_gather(x, iy, ix, inside, layer.in_zero_point)
        acc = depthwise_accumulate(taps, wt)
        bias = fold_input_zero_point(rq.bias, wt.T, layer.in_zero_point)
        args = (acc.astype(np.int32), bias, rq.m0, rq.shift, rq.out_zero_point)
        out = requantize(*args, rq.act_min, rq.act_max)
        pre = requantize(*args, *big)
        # rounding_divide_by_pot's operand: the pipeline's value before the right shift
        x1 = requantize(acc.astype(np.int32), bias, rq.m0, np.maximum(rq.shift, 0), 0, *big)
        e = np.maximum(-rq.shift, 0).astype(np.int64)
        tie = (e > 0) & ((x1.astype(np.int64) & ((1 << e) - 1)) == np.where(e > 0, 1 << np.maximum(e - 1, 0), -1))
    elif layer.op == "mean":
        assert layer.mean is not None
        acc = wrap_int32(window_sum(window_gather(x, iy, ix, inside, 0)))
        rq = mean_requant(layer.mean, int(inside.shape[2]), c)
        args = (acc.astype(np.int32), rq.bias, rq.m0, rq.shift, rq.out_zero_point)
        out = requantize(*args, rq.act_min, rq.act_max)
        pre = requantize(*args, *big)
        sh, e = int(rq.shift[0]), max(-int(rq.shift[0]), 0)
        y = np.asarray(saturating_rounding_doubling_high_mul(
            left_shift(wrap_int32(acc + int(rq.bias[0])), sh), int(rq.m0[0])), np.int64)
        tie = (e > 0) & ((y & ((1 << e) - 1)) == (1 << max(e - 1, 0)))
    else:
        fill = -128 if layer.op == "max" else 0
        taps = window_gather(x, iy, ix, inside, fill)
        if layer.op == "max":
            acc = window_max(taps)
            tie = (taps == acc[:, :, :, None, :]).sum(axis=3) >= 2
        else:
            s = window_sum(taps)
            n = window_count(inside)[None, :, :, None]
            acc = rounding_divide_by_count(s, n)
            tie = (2 * (np.abs(s) % n) == n)
        rq = identity_requant(c, layer.act_min, layer.act_max)
        out = requantize(acc.astype(np.int32), rq.bias, rq.m0, rq.shift, 0, rq.act_min, rq.act_max)
        pre = acc
    return Golden(out=np.asarray(out).astype(np.int8), pre_clamp=np.asarray(pre, np.int64),
                  tie=np.asarray(tie, bool), pads=pads, inside=inside)


@dataclass
class Job:
    """One engine job: image ``n``, channel group ``g``, output rows / columns of a tile."""

    n: int
    g: int
    oy: tuple[int, int]        # output rows [oy0, oy1)
    ox: tuple[int, int]        # output columns [ox0, ox1)
    iy: tuple[int, int]        # input rows [r0, r1)
    ix: tuple[int, int]        # input columns [c0, c1)
    pad_t: int
    pad_l: int


@dataclass
class WindowStats:
    """What one layer run measured (cycles from the first input beat to the last output)."""

    cycles: int = 0
    load_cycles: int = 0
    macs: int = 0              # useful taps x channels (MACs for dw, compares / adds for pools)
    lanes: int = 1
    outputs: int = 0
    jobs: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def utilization(self) -> float:
        """Useful tap operations / (LANES * cycles)."""
        return self.macs / (self.lanes * self.cycles) if self.cycles else 0.0


def _param(dut: Any, name: str) -> int:
    return int(getattr(dut, name).value)


class WindowEnv:
    """Clock, streams, scoreboard and loaders around one ``window_engine``.

    Args:
        dut: cocotb handle of ``window_engine``.
        rng: the test's numpy Generator (stalls and idle garbage).
        in_stall, out_stall: probability of an idle input cycle / a low ``out_ready_i``.
    """

    def __init__(self, dut: Any, rng: np.random.Generator, *, in_stall: float = 0.0,
                 out_stall: float = 0.0) -> None:
        self.dut = dut
        self.lanes = _param(dut, "LANES")
        self.h_max = _param(dut, "H_MAX")
        self.w_max = _param(dut, "W_MAX")
        self.taps_max = _param(dut, "TAPS_MAX")
        self.groups_max = _param(dut, "GROUPS_MAX")
        self.clock = kit.ClockReset(dut.clk_i, dut.rst_i)
        self.sb = kit.Scoreboard("out", width=8, log=dut._log)
        self.src = kit.StreamSource.from_dut(dut, self.clock, "in", ["data"],
                                             stall_prob=in_stall, rng=rng)
        self.sink = kit.StreamSink.from_dut(dut, self.clock, "out", ["data", "last"],
                                            stall_prob=out_stall, rng=rng, on_beat=self._on_beat)
        self.sink.keep_beats = False
        self.xz = kit.NoXZChecker(self.clock, kit.dut_outputs(dut))
        self._slots: list[tuple[str, int, int, int, int, bool]] = []  # op, n, oy, ox, c0, last
        self._next = 0
        self._out: np.ndarray | None = None
        self._cfg: dict[int, int] = {}          # last value written to each register

    def idle_inputs(self) -> None:
        """Drive the write enables and out_ready_i low."""
        d = self.dut
        for sig in (d.cfg_we_i, d.w_we_i, d.prm_we_i, d.out_ready_i):
            sig.value = 0

    async def start(self) -> None:
        """Clock, idle inputs, reset; then the sink and the X/Z checker."""
        self.idle_inputs()
        self.clock.start()
        self.src.start()
        await self.clock.reset(3)
        self.start_streams(source=False)

    def start_streams(self, source: bool = True) -> None:
        """Start the streams and the X/Z checker (the clock runs and reset is done: a
        unit sharing its clock with others, ``tb/units.py``)."""
        if source:
            self.src.start()
        self.sink.start()
        self.xz.start()

    async def reset(self, cycles: int = 2) -> None:
        """Synchronous reset in the middle of traffic: everything in flight is dropped."""
        self.src.stop()
        self.src.clear()
        self.sink.stop()
        await self.clock.reset(cycles)
        self._cfg = {}
        self.sb.clear()
        self._slots, self._next = [], 0
        self.src.start()
        self.sink.start()

    # -- planning ---------------------------------------------------------------------
    def jobs(self, layer: WindowLayer, g: Golden) -> list[Job]:
        """Cut a layer into jobs whose input tiles fit ``H_MAX x W_MAX``."""
        n_img, h, w, c = layer.x.shape
        (pt, _), (pl, _) = g.pads
        (kh, kw), (sh, sw), (dh, dw) = layer.kernel, layer.stride, layer.dilation
        if layer.op == "dw" and kh * kw > self.taps_max:
            raise ValueError(f"layer {layer.name!r}: kernel {kh}x{kw} has more than TAPS_MAX = "
                             f"{self.taps_max} taps")
        if -(-c // self.lanes) > self.groups_max and layer.op == "dw":
            raise ValueError(f"layer {layer.name!r}: {c} channels need more than GROUPS_MAX = "
                             f"{self.groups_max} groups of {self.lanes}")
        oh, ow = g.out.shape[1:3]
        keh, kew = (kh - 1) * dh + 1, (kw - 1) * dw + 1
        # output rows / columns per tile: the tile's input span must fit the buffer
        th = (self.h_max - keh) // sh + 1
        tw = (self.w_max - kew) // sw + 1
        if th < 1 or tw < 1:
            raise ValueError(f"layer {layer.name!r}: a {keh}x{kew} (dilated) window does not fit "
                             f"the {self.h_max}x{self.w_max} input buffer")

        def spans(o: int, t: int, s: int, p: int, ke: int, size: int) -> list[tuple]:
            out = []
            for o0 in range(0, o, t):
                o1 = min(o0 + t, o)
                lo = o0 * s - p
                hi = (o1 - 1) * s - p + ke
                # at least one input row: a tile whose windows lie wholly in the padding
                # (explicit padding >= the kernel) gets a negative PAD (origin offset)
                r0 = min(max(lo, 0), size - 1)
                r1 = max(min(hi, size), r0 + 1)
                out.append(((o0, o1), (r0, r1), r0 - lo))
            return out

        jobs = []
        groups = -(-c // self.lanes)
        # group-major: a group's weights and parameters are loaded once per layer
        for grp in range(groups):
            for n in range(n_img):
                for oyr, iyr, ptile in spans(oh, th, sh, pt, keh, h):
                    for oxr, ixr, pltile in spans(ow, tw, sw, pl, kew, w):
                        jobs.append(Job(n, grp, oyr, oxr, iyr, ixr, ptile, pltile))
        return jobs

    # -- loading ----------------------------------------------------------------------
    async def _write(self, we: Any, fields: dict[Any, int]) -> None:
        for sig, value in fields.items():
            sig.value = value
        we.value = 1
        await RisingEdge(self.dut.clk_i)
        we.value = 0

    def group_load(self, layer: WindowLayer, grp: int) -> tuple[np.ndarray, np.ndarray]:
        """What loading channel group ``grp`` writes (shared with the bulk harness,
        ``tb/bulk_units.py``).

        Returns:
            ``(weights, params)``: int64 ``[taps, LANES]`` weight words (``[0, LANES]`` for
            pooling / MEAN: nothing to write) and int64 ``[LANES, 7]`` parameter writes
            ``(channel, bias, m0, shift, zp, act_min, act_max)`` as the ports take them
            (bias masked to 32 bits, shift to 6); unused lanes get zero parameters.
        """
        c0 = grp * self.lanes
        cs = slice(c0, min(c0 + self.lanes, layer.channels))
        real = cs.stop - cs.start
        hw_group = grp % self.groups_max if layer.op != "dw" else grp
        words = np.zeros((0, self.lanes), np.int64)
        if layer.op == "dw":
            assert layer.w is not None and layer.rq is not None
            wt = layer.w.reshape(layer.taps, layer.channels)[:, cs]
            words = np.zeros((layer.taps, self.lanes), np.int64)
            words[:, :real] = wt
            rq = layer.rq
            bias = fold_input_zero_point(rq.bias[cs], wt.T, layer.in_zero_point)
            m0, shift = rq.m0[cs], rq.shift[cs]
            zp, lo, hi = rq.out_zero_point, rq.act_min, rq.act_max
        else:
            if layer.op == "mean":
                assert layer.mean is not None
                rq = mean_requant(layer.mean, layer.taps, real)
            else:
                rq = identity_requant(real, layer.act_min, layer.act_max)
            bias, m0, shift = rq.bias, rq.m0, rq.shift
            zp, lo, hi = rq.out_zero_point, rq.act_min, rq.act_max
        prm = np.zeros((self.lanes, 7), np.int64)
        for lane in range(self.lanes):
            ok = lane < real
            prm[lane] = (hw_group * self.lanes + lane,
                         int(bias[lane]) & 0xFFFFFFFF if ok else 0, int(m0[lane]) if ok else 0,
                         int(shift[lane]) & 0x3F if ok else 0, zp & 0xFF, lo & 0xFF, hi & 0xFF)
        return words, prm

    async def load_group(self, layer: WindowLayer, grp: int) -> int:
        """Weights and requantize parameters of channel group ``grp``; returns cycles."""
        d = self.dut
        start = self.clock.cycle()
        words, prm = self.group_load(layer, grp)
        for t, lanes in enumerate(words):
            await self._write(d.w_we_i, {d.w_addr_i: t, d.w_data_i: kit.pack(lanes, 8)})
        for p in prm:
            await self._write(d.prm_we_i, {
                d.prm_chan_i: int(p[0]), d.prm_bias_i: int(p[1]), d.prm_m0_i: int(p[2]),
                d.prm_shift_i: int(p[3]), d.prm_zp_i: int(p[4]), d.prm_act_min_i: int(p[5]),
                d.prm_act_max_i: int(p[6])})
        return self.clock.cycle() - start

    def registers(self, layer: WindowLayer, job: Job) -> dict[int, int]:
        """Configuration register values of one job."""
        return {CFG_H: job.iy[1] - job.iy[0], CFG_W: job.ix[1] - job.ix[0],
                CFG_KH: layer.kernel[0], CFG_KW: layer.kernel[1],
                CFG_SH: layer.stride[0], CFG_SW: layer.stride[1],
                CFG_DH: layer.dilation[0], CFG_DW: layer.dilation[1],
                CFG_PAD_T: job.pad_t & 0xFFFF, CFG_PAD_L: job.pad_l & 0xFFFF,
                CFG_OH: job.oy[1] - job.oy[0], CFG_OW: job.ox[1] - job.ox[0],
                CFG_PAD: layer.in_zero_point & 0xFF if layer.op == "dw" else 0,
                CFG_GROUP: job.g if layer.op == "dw" else job.g % self.groups_max,
                CFG_MODE: MODES[layer.op]}

    async def configure(self, layer: WindowLayer, job: Job) -> None:
        """Write the registers of one job that differ from their current values."""
        d = self.dut
        for addr, value in self.registers(layer, job).items():
            if self._cfg.get(addr) != value:      # registers keep their value between jobs
                await self._write(d.cfg_we_i, {d.cfg_addr_i: addr, d.cfg_wdata_i: value})
                self._cfg[addr] = value

    # -- checking ---------------------------------------------------------------------
    def _on_beat(self, beat: kit.Beat) -> None:
        lanes = kit.unpack(beat["data"], self.lanes, 8)
        slot = self._slots[self._next] if self._next < len(self._slots) else None
        try:
            self.sb.compare(lanes, cycle=beat.cycle)
        except kit.Mismatch as exc:
            if slot is None:
                raise
            op, n, oy, ox, c0, _ = slot
            raise kit.Mismatch(f"{exc}\n  op {op}, output pixel (image {n}, y {oy}, x {ox}), "
                               f"channel {c0} + column") from None
        assert slot is not None
        op, n, oy, ox, c0, last = slot
        if bool(beat["last"]) != last:
            raise kit.Mismatch(f"out: op {op}, pixel (image {n}, y {oy}, x {ox}), cycle "
                               f"{beat.cycle}: out_last_o is {beat['last']}, expected {int(last)}")
        if self._out is not None:
            c1 = min(c0 + self.lanes, self._out.shape[3])
            self._out[n, oy, ox, c0:c1] = lanes[: c1 - c0]
        self._next += 1

    def queue_job(self, layer: WindowLayer, g: Golden, job: Job) -> int:
        """Queue a job's input beats and expected output pixels; returns its output beats."""
        c0 = job.g * self.lanes
        real = min(self.lanes, layer.channels - c0)
        x = layer.x[job.n, job.iy[0]:job.iy[1], job.ix[0]:job.ix[1], c0:c0 + real]
        for row in x:
            for px in row:
                lanes = np.zeros(self.lanes, np.int64)
                lanes[:real] = px
                self.src.send({"data": kit.pack(lanes, 8)})
        beats = 0
        for oy in range(*job.oy):
            for ox in range(*job.ox):
                exp = np.zeros(self.lanes, np.int64)
                exp[:real] = g.out[job.n, oy, ox, c0:c0 + real]
                if real < self.lanes:
                    # padding lanes: zero input, zero weights / identity -> clamp(0 or requant(0))
                    exp[real:] = self._pad_lane_value(layer)
                self.sb.expect(exp, f"op {layer.op} layer {layer.name!r} pixel (image {job.n}, "
                                    f"y {oy}, x {ox}) channels {c0}..{c0 + self.lanes - 1}")
                last = oy == job.oy[1] - 1 and ox == job.ox[1] - 1
                self._slots.append((layer.op, job.n, oy, ox, c0, last))
                beats += 1
        return beats

    @staticmethod
    def _pad_lane_value(layer: WindowLayer) -> int:
        """Output of an unused lane (input 0, weight 0, parameters 0 / identity)."""
        if layer.op == "dw":
            assert layer.rq is not None
            # acc 0, bias 0, m0 0 -> 0 + zp, clamped
            return int(np.clip(layer.rq.out_zero_point, layer.rq.act_min, layer.rq.act_max))
        if layer.op == "mean":
            assert layer.mean is not None
            return int(np.clip(layer.mean.out_zero_point, -128, 127))
        return int(np.clip(0, layer.act_min, layer.act_max))

    @staticmethod
    def _pad_lane_values(layer: WindowLayer, g: Golden) -> np.ndarray:
        """Output of an unused lane per output pixel through qmac_top, int64 ``[OH, OW]``:
        as :meth:`_pad_lane_value`, except that a max pool window with no tap inside the
        image gives the empty maximum, -128, clamped by the layer's activation range, which
        the top's driver (``tb.top_units``) loads into every lane's parameters; the
        standalone driver's unused lanes clamp to 0 whatever the window."""
        pad = np.full(g.inside.shape[:2], WindowEnv._pad_lane_value(layer), np.int64)
        if layer.op == "max":
            empty = ~g.inside.any(axis=2)
            pad[empty] = int(np.clip(-128, layer.act_min, layer.act_max))
        return pad

    async def run_layer(self, layer: WindowLayer) -> tuple[np.ndarray, WindowStats, Golden]:
        """Run and check a whole layer; returns the engine's outputs, figures, golden."""
        g = golden(layer)
        jobs = self.jobs(layer, g)
        self._out = np.zeros(g.out.shape, np.int64)
        st = WindowStats(lanes=self.lanes, jobs=len(jobs))
        loaded = None
        self._slots, self._next = [], 0
        out0 = self.sink.count
        pending = 0                          # output beats queued and not yet waited for
        start = self.clock.cycle()
        for job in jobs:
            regs = self.registers(layer, job)
            if loaded != job.g or any(self._cfg.get(a) != v for a, v in regs.items()):
                # the configuration changes only while idle: let the queued jobs finish
                st.cycles += await self._drain(layer, out0, pending, start)
                if loaded != job.g:
                    st.load_cycles += await self.load_group(layer, job.g)
                    loaded = job.g
                t0 = self.clock.cycle()
                await self.configure(layer, job)
                st.load_cycles += self.clock.cycle() - t0
                start = self.clock.cycle()
            # same configuration: the job's input follows the previous one's back to back
            # (the engine loads the next tile as soon as the last tap is issued)
            pending += self.queue_job(layer, g, job)
            real = min(self.lanes, layer.channels - job.g * self.lanes)
            inside = g.inside[job.oy[0]:job.oy[1], job.ox[0]:job.ox[1]]
            st.macs += real * (int(inside.size) if layer.op == "dw" else int(inside.sum()))
            st.outputs += (job.oy[1] - job.oy[0]) * (job.ox[1] - job.ox[0]) * real
        st.cycles += await self._drain(layer, out0, pending, start)
        out = self._out.astype(np.int8)
        assert np.array_equal(out, g.out), f"layer {layer.name!r}: assembled outputs differ"
        return out, st, g

    async def _finish(self, beats: int) -> None:
        await self.src.wait_idle()
        await self.sink.wait_for(beats)

    async def _drain(self, layer: WindowLayer, out0: int, pending: int, start: int) -> int:
        """Wait for every queued output beat (watchdog: a generous cycle budget); returns
        the cycles since ``start`` (0 if nothing was queued)."""
        if self.sink.count - out0 >= pending and not self.src.pending:
            return 0
        budget = 20 * pending * (layer.taps + 30) + 20 * self.src.pending + 5_000
        try:
            await with_timeout(self._finish(out0 + pending), budget * self.clock.period_ns, "ns")
        except SimTimeoutError:
            raise kit.Mismatch(
                f"layer {layer.name!r} ({layer.op}): timeout after {budget} cycles with "
                f"{self.src.pending} input beats unsent and {out0 + pending - self.sink.count} "
                f"of {pending} output beats missing (cycle {self.clock.cycle()}); kernel "
                f"{layer.kernel}, stride {layer.stride}, dilation {layer.dilation}, padding "
                f"{layer.padding}, input {layer.x.shape}") from None
        self.sb.check_done()
        return self.clock.cycle() - start + 1

    async def start_job_unchecked(self, layer: WindowLayer) -> None:
        """For reset tests: load the first job of a layer and queue its input and
        expected outputs, without waiting for them (the caller resets midway)."""
        g = golden(layer)
        job = self.jobs(layer, g)[0]
        await self.load_group(layer, job.g)
        await self.configure(layer, job)
        self._out = None
        self._slots, self._next = [], 0
        self.queue_job(layer, g, job)
