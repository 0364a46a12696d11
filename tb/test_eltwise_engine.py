"""cocotb testbench of ``rtl/eltwise_engine.v`` -- TFLite int8 ADD / SUB / MUL.

Both operand streams and the result stream run with random stalls; every result beat is
compared exactly (``==``) with ``pymodel.ops.eltwise_stages.eltwise_engine`` (proved equal
to ``pymodel.ops.elementwise``) by the kit's scoreboard, which names the op, the tensor,
the element (beat x lane) and the cycle; no output may be X/Z after reset.

Parameters come from the kernels' Prepare on random scales (``prepare_add`` ...) or are
edge parameters (multipliers 2^30, shifts that make the roundings' ties frequent, zero
points at the int8 ends).  Functional coverage: op x saturation (low clamp, high clamp,
inside) and op x tie (a tie of an input rescale's rounding divide, of the output's, none);
``test_random_tensors`` runs until every op has produced ``OUTPUTS_PER_OP`` outputs and
fails below 100 % of the bins.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge, SimTimeoutError, with_timeout

from pymodel.arithmetic.fixedpoint import (left_shift, requantize,
                                           saturating_rounding_doubling_high_mul)
from pymodel.ops import elementwise as E
from pymodel.ops.eltwise_stages import (eltwise_combine, eltwise_engine, eltwise_left_shift,
                                        eltwise_multiply, eltwise_offset)
from pymodel.arithmetic.fixedpoint import multiply_by_quantized_multiplier
from tb import kit
from tb.kit.coverage import Coverage

DUT = "eltwise_engine"
DEFAULT_PARAMETERS = {"LANES": 8, "RES_FIFO": 8}
SOURCES = ("eltwise_*.v", "requant_*.v")
OPS = ("add", "sub", "mul")
OP_CODE = {"add": 0, "sub": 1, "mul": 2}
OUTPUTS_PER_OP = 10_000     # QMAC_ELTWISE_OUTPUTS overrides


def _rdbp_tie(x: np.ndarray, m0: int, shift: int) -> np.ndarray:
    """The rounding divide of MBQM(x, m0, shift) sees an exact half."""
    e = max(-shift, 0)
    if e == 0:
        return np.zeros(np.shape(x), bool)
    y = np.asarray(saturating_rounding_doubling_high_mul(left_shift(x, shift), m0), np.int64)
    return (y & ((1 << e) - 1)) == (1 << (e - 1))


def golden(x1: np.ndarray, x2: np.ndarray, op: str, p: Any) -> tuple[np.ndarray, ...]:
    """(outputs, pre-clamp values, input tie, output tie), each of x1's shape."""
    out = eltwise_engine(x1, x2, op, p)
    v1, v2 = eltwise_offset(x1, p.in1_zero_point), eltwise_offset(x2, p.in2_zero_point)
    if op == "mul":
        raw = eltwise_multiply(v1, v2)
        in_tie = np.zeros(x1.shape, bool)
    else:
        u1, u2 = eltwise_left_shift(v1), eltwise_left_shift(v2)
        s1 = multiply_by_quantized_multiplier(u1, p.in1_multiplier, p.in1_shift)
        s2 = multiply_by_quantized_multiplier(u2, p.in2_multiplier, p.in2_shift)
        raw = eltwise_combine(s1, s2, op)
        in_tie = _rdbp_tie(u1, p.in1_multiplier, p.in1_shift) | \
            _rdbp_tie(u2, p.in2_multiplier, p.in2_shift)
    pre = np.asarray(requantize(raw.astype(np.int32), 0, p.out_multiplier, p.out_shift,
                                p.out_zero_point, -(1 << 31), (1 << 31) - 1), np.int64)
    out_tie = _rdbp_tie(raw, p.out_multiplier, p.out_shift)
    return out, pre, in_tie, out_tie


def make_coverage() -> Coverage:
    cov = Coverage("eltwise_engine")
    cov.point("op", OPS)
    cov.point("sat", ["low", "high", "inside"])
    cov.point("tie", ["input tie", "output tie", "no tie"])
    cov.cross("op_x_sat", ["op", "sat"])
    # MUL has no input rescale, so no input tie
    cov.cross("op_x_tie", ["op", "tie"], ignore=lambda op, t: op == "mul" and t == "input tie")
    return cov


def random_params(rng: np.random.Generator, op: str) -> Any:
    """Prepare's parameters from random scales, or edge parameters (frequent ties)."""
    zp = [int(v) for v in rng.integers(-128, 128, 3)]
    if rng.random() < 0.3:
        zp[2] = int(rng.choice([-128, 127]))
    act = str(rng.choice(["none", "relu", "relu6", "relu_n1_to_1"]))
    if rng.random() < 0.6:
        for _ in range(20):
            s = rng.uniform(0.005, 0.1, 3).astype(np.float32)
            try:
                prep = {"add": E.prepare_add, "sub": E.prepare_sub, "mul": E.prepare_mul}[op]
                return prep(s[0], zp[0], s[1], zp[1], s[2], zp[2], act)
            except ValueError:
                continue
    lo, hi = sorted(int(v) for v in rng.integers(-128, 128, 2))
    if rng.random() < 0.4:
        lo, hi = -128, 127
    if op == "mul":
        return E.MulParams(in1_zero_point=zp[0], in2_zero_point=zp[1], out_zero_point=zp[2],
                           out_multiplier=int(rng.choice([1 << 30, int(rng.integers(1 << 30, 1 << 31))])),
                           out_shift=int(rng.integers(-9, -4)), act_min=lo, act_max=hi)
    m = [int(rng.choice([1 << 30, int(rng.integers(1 << 30, 1 << 31))])) for _ in range(3)]
    return E.AddParams(in1_zero_point=zp[0], in2_zero_point=zp[1], out_zero_point=zp[2],
                       left_shift=20, in1_multiplier=m[0], in1_shift=int(rng.integers(-22, -19)),
                       in2_multiplier=m[1], in2_shift=int(rng.integers(-22, -19)),
                       out_multiplier=m[2], out_shift=int(rng.integers(-2, 1)),
                       act_min=lo, act_max=hi)


class EltwiseEnv:
    """Clock, three streams, scoreboard and loaders around one ``eltwise_engine``."""

    def __init__(self, dut: Any, rng: np.random.Generator) -> None:
        self.dut = dut
        self.lanes = int(dut.LANES.value)
        self.clock = kit.ClockReset(dut.clk_i, dut.rst_i)
        self.sb = kit.Scoreboard("out", width=8, log=dut._log)
        self.a = kit.StreamSource.from_dut(dut, self.clock, "a", ["data", "last"], rng=rng)
        self.b = kit.StreamSource.from_dut(dut, self.clock, "b", ["data"], rng=rng)
        self.sink = kit.StreamSink.from_dut(dut, self.clock, "out", ["data", "last"], rng=rng,
                                            on_beat=self._on_beat)
        self.sink.keep_beats = False
        self.xz = kit.NoXZChecker(self.clock, kit.dut_outputs(dut))
        self._names: list[str] = []
        self.received: list[np.ndarray] = []     # every result beat's lanes, in order
        self._next = 0

    def idle_inputs(self) -> None:
        """Drive the write enables and out_ready_i low."""
        d = self.dut
        for sig in (d.cfg_we_i, d.prm_we_i, d.out_ready_i):
            sig.value = 0

    async def start(self) -> None:
        self.idle_inputs()
        self.clock.start()
        self.a.start()
        self.b.start()
        await self.clock.reset(3)
        self.sink.start()
        self.xz.start()

    def start_streams(self) -> None:
        """Start the streams and the X/Z checker (clock running, reset done elsewhere)."""
        self.a.start()
        self.b.start()
        self.sink.start()
        self.xz.start()

    async def reset(self) -> None:
        for s in (self.a, self.b):
            s.stop()
            s.clear()
        self.sink.stop()
        await self.clock.reset(2)
        self.sb.clear()
        self._names, self._next = [], 0
        self.a.start()
        self.b.start()
        self.sink.start()

    def stalls(self, pa: float, pb: float, po: float) -> None:
        self.a.stall_prob, self.b.stall_prob, self.sink.stall_prob = pa, pb, po

    async def _write(self, we: Any, fields: dict[Any, int]) -> None:
        for sig, value in fields.items():
            sig.value = value
        we.value = 1
        await RisingEdge(self.dut.clk_i)
        we.value = 0

    async def load(self, op: str, p: Any) -> None:
        d = self.dut
        regs = {0: OP_CODE[op], 1: p.in1_zero_point & 0xFF, 2: p.in2_zero_point & 0xFF}
        if op != "mul":
            regs.update({3: p.in1_multiplier, 4: p.in1_shift & 0xFFFFFFFF,
                         5: p.in2_multiplier, 6: p.in2_shift & 0xFFFFFFFF})
        for addr, value in regs.items():
            await self._write(d.cfg_we_i, {d.cfg_addr_i: addr, d.cfg_wdata_i: value})
        for lane in range(self.lanes):
            await self._write(d.prm_we_i, {
                d.prm_chan_i: lane, d.prm_bias_i: 0, d.prm_m0_i: p.out_multiplier,
                d.prm_shift_i: p.out_shift & 0x3F, d.prm_zp_i: p.out_zero_point & 0xFF,
                d.prm_act_min_i: p.act_min & 0xFF, d.prm_act_max_i: p.act_max & 0xFF})

    def _on_beat(self, beat: kit.Beat) -> None:
        lanes = kit.unpack(beat["data"], self.lanes, 8)
        self.received.append(lanes)
        try:
            self.sb.compare(lanes, cycle=beat.cycle, last=beat["last"])
        except kit.Mismatch as exc:
            raise kit.Mismatch(f"{exc}\n  (row r, column c = element r * {self.lanes} + c of "
                               "the tensor)") from None

    def queue(self, name: str, op: str, x1: np.ndarray, x2: np.ndarray,
              expected: np.ndarray) -> int:
        """Queue a tensor (padded to whole beats with zeros) and its expected outputs."""
        n = x1.size
        beats = -(-n // self.lanes)
        pad = beats * self.lanes - n
        a = np.concatenate([x1.ravel(), np.zeros(pad, np.int8)]).reshape(beats, self.lanes)
        b = np.concatenate([x2.ravel(), np.zeros(pad, np.int8)]).reshape(beats, self.lanes)
        for i in range(beats):
            self.a.send({"data": kit.pack(a[i], 8), "last": int(i == beats - 1)})
            self.b.send({"data": kit.pack(b[i], 8)})
        self.sb.expect(expected.reshape(beats, self.lanes), f"op {op} tensor {name!r}")
        return beats

    async def run(self, name: str, op: str, x1: np.ndarray, x2: np.ndarray, p: Any) -> tuple:
        """Load, stream, check one tensor; returns the golden tuple."""
        await self.load(op, p)
        n = x1.size
        beats = -(-n // self.lanes)
        pad = beats * self.lanes - n
        xa = np.concatenate([x1.ravel(), np.zeros(pad, np.int8)])
        xb = np.concatenate([x2.ravel(), np.zeros(pad, np.int8)])
        g = golden(xa, xb, op, p)
        out0 = self.sink.count
        self.queue(name, op, xa, xb, g[0])
        try:
            await with_timeout(self._finish(out0 + beats), (50 * beats + 2000) * 10, "ns")
        except SimTimeoutError:
            raise kit.Mismatch(f"op {op} tensor {name!r}: timeout, {out0 + beats - self.sink.count}"
                               f" of {beats} beats missing (cycle {self.clock.cycle()})") from None
        self.sb.check_done()
        return tuple(v[:n] for v in g)

    async def run_tensor(self, name: str, op: str, x1: np.ndarray, x2: np.ndarray,
                         p: Any) -> np.ndarray:
        """Run and check one tensor pair; returns the unit's int8 outputs, x1's shape."""
        self.received = []
        await self.run(name, op, x1.ravel(), x2.ravel(), p)
        out = np.concatenate(self.received)[: x1.size] if self.received else np.zeros(0)
        return out.astype(np.int8).reshape(x1.shape)

    async def _finish(self, beats: int) -> None:
        await self.a.wait_idle()
        await self.b.wait_idle()
        await self.sink.wait_for(beats)


@cocotb.test()
async def test_random_tensors(dut: Any) -> None:
    """Random tensors and parameters with random stalls on all three streams until every
    op has OUTPUTS_PER_OP outputs; functional coverage must reach 100 %."""
    rng = kit.test_rng("test_random_tensors", dut._log)
    env = EltwiseEnv(dut, rng)
    await env.start()
    cov = make_coverage()
    target = int(os.environ.get("QMAC_ELTWISE_OUTPUTS", OUTPUTS_PER_OP))
    full = target >= OUTPUTS_PER_OP
    outputs = dict.fromkeys(OPS, 0)
    i = 0
    while (min(outputs.values()) < target or (full and not cov.complete)) and i < 300:
        op = min(outputs, key=outputs.get)
        env.stalls(*(float(v) for v in rng.choice([0.0, 0.1, 0.4], 3)))
        n = int(rng.integers(1, 1200))
        x1 = rng.integers(-128, 128, n).astype(np.int8)
        x2 = rng.integers(-128, 128, n).astype(np.int8)
        p = random_params(rng, op)
        out, pre, in_tie, out_tie = await env.run(f"t{i}", op, x1, x2, p)
        for name, mask in (("low", pre < p.act_min), ("high", pre > p.act_max),
                           ("inside", (pre >= p.act_min) & (pre <= p.act_max))):
            if mask.any():
                cov.sample(int(mask.sum()), op=op, sat=name)
        for name, mask in (("input tie", in_tie), ("output tie", out_tie),
                           ("no tie", ~(in_tie | out_tie))):
            if mask.any():
                cov.sample(int(mask.sum()), op=op, tie=name)
        outputs[op] += n
        i += 1
    dut._log.info("[qmac] %d tensors; outputs per op: %s", i, outputs)
    dut._log.info("%s", cov.report(bins=False))
    assert min(outputs.values()) >= target, f"too few outputs per op: {outputs}"
    if full:
        assert cov.complete, f"coverage {cov.percent:.1f} %; missing: {cov.missing()}"


@cocotb.test()
async def test_reset_midway(dut: Any) -> None:
    """Reset with pairs in flight and results stalled, then a clean tensor checks out."""
    rng = kit.test_rng("test_reset_midway", dut._log)
    env = EltwiseEnv(dut, rng)
    await env.start()
    for k in range(2):
        op = str(rng.choice(OPS))
        p = random_params(rng, op)
        await env.load(op, p)
        x = rng.integers(-128, 128, (2, 37 * env.lanes)).astype(np.int8)
        env.stalls(0.1, 0.1, 0.6)
        env.queue("interrupted", op, x[0], x[1], eltwise_engine(x[0], x[1], op, p))
        await env.clock.cycles(int(rng.integers(5, 60)))
        await env.reset()
        op = str(rng.choice(OPS))
        x = rng.integers(-128, 128, (2, 200)).astype(np.int8)
        await env.run(f"after_reset{k}", op, x[0], x[1], random_params(rng, op))


@cocotb.test()
async def test_throughput(dut: Any) -> None:
    """Without stalls one beat per cycle flows: N beats take N + latency cycles."""
    rng = kit.test_rng("test_throughput", dut._log)
    env = EltwiseEnv(dut, rng)
    await env.start()
    op = "add"
    p = random_params(rng, op)
    await env.load(op, p)
    beats = 200
    x = rng.integers(-128, 128, (2, beats * env.lanes)).astype(np.int8)
    first = env.clock.cycle()
    await env.run("throughput", op, x[0], x[1], p)
    cycles = env.clock.cycle() - first
    dut._log.info("[qmac] eltwise throughput: %d beats in %d cycles (load included)", beats, cycles)
    if int(dut.RES_FIFO.value) >= 8:   # credits cover the 7-stage latency (see the RTL header)
        assert cycles < beats + 100, f"{beats} beats took {cycles} cycles: not one beat per cycle"


def run(parameters: Mapping[str, object] | None = None, *, waves: bool = False,
        seed: int | None = None, build_dir: Any = None, testcase: Any = None,
        extra_env: Mapping[str, str] | None = None) -> None:
    """Build ``eltwise_engine`` with ``parameters`` and run this module's tests."""
    params = dict(DEFAULT_PARAMETERS, **(parameters or {}))
    kit.run_testbench(toplevel=DUT, sources=kit.rtl_sources(*SOURCES),
                      test_module="tb.test_eltwise_engine", parameters=params, waves=waves,
                      seed=seed, build_dir=build_dir, testcase=testcase,
                      extra_env=dict(extra_env or {}))
