"""cocotb testbench of ``rtl/qmac_top.v`` -- the accelerator behind AXI4-Lite and AXI4-Stream.

Driven through cocotbext-axi (``AxiLiteMaster``, ``AxiStreamSource`` / ``AxiStreamSink``
with random pause generators) by :class:`tb.top.TopEnv`: every output beat equals
``pymodel.ops.layers.quantized_gemm``; the AXI rules are checked on everything the DUT drives
(``m_axis_out``, the AXI4-Lite B and R channels: valid held and payload stable until
ready; no X/Z on any ready / valid / output after reset).

``run()`` builds and runs this module (``tests/test_rtl_qmac_top.py``,
``python -m tb.run --test qmac_top``).
"""

from __future__ import annotations

from typing import Any, Mapping

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge
from cocotbext.axi import AxiStreamFrame

from tb import kit
from tb import qmac_regs as R
from tb.test_qlayer_engine import random_job
from tb.top import OKAY, SLVERR, TopEnv, param_beats, weight_beats

DUT = "qmac_top"
DEFAULT_PARAMETERS = {"ROWS": 8, "COLS": 8, "A_DEPTH": 64, "W_DEPTH": 2048, "N_TILES_MAX": 8}
SOURCES = ("qmac_top.v", "qlayer_engine.v", "mac_*.v", "requant_*.v")


async def _started(dut: Any, name: str, pause: float = 0.0) -> TopEnv:
    env = TopEnv(dut, kit.test_rng(name, dut._log), pause=pause)
    await env.start()
    return env


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def test_registers(dut: Any) -> None:
    """Identification and build registers, reset values, WSTRB, SLVERR on read-only and
    unmapped offsets (which change nothing)."""
    env = await _started(dut, "test_registers", pause=0.3)
    assert await env.read(R.ID) == R.RESET["ID"]
    hw = await env.read(R.HW_ARRAY)
    assert (hw & 0xFF, (hw >> 8) & 0xFF, (hw >> 16) & 0xFF) == (env.rows, env.cols, env.n_tiles_max)
    assert await env.read(R.HW_A_DEPTH) == env.a_depth
    assert await env.read(R.HW_W_DEPTH) == env.w_depth
    for name, value in R.RESET.items():
        assert await env.read(R.OFFSET[name]) == value, f"{name} reset value"
    assert await env.read(R.STATUS) == 0 and await env.read(R.ERROR) == 0
    # byte strobes: only byte 1 of LAYER_K changes
    await env.write(R.LAYER_K, 0x1234)
    resp = await env.axil.write(R.LAYER_K, b"\xff\x56")     # two bytes at offset 0 (WSTRB 0b0011)
    assert resp.resp == OKAY
    assert await env.read(R.LAYER_K) == 0x56FF
    resp = await env.axil.write(R.LAYER_K + 1, b"\x00")     # byte 1 only (WSTRB 0b0010)
    assert resp.resp == OKAY and await env.read(R.LAYER_K) == 0x00FF
    for name, access in R.ACCESS.items():
        if access == "ro":
            before = await env.read(R.OFFSET[name])
            resp = await env.axil.write(R.OFFSET[name], b"\x5a\x5a\x5a\x5a")
            assert resp.resp == SLVERR, f"write to read-only {name} answered {resp.resp}"
            if not name.startswith("PERF"):
                assert await env.read(R.OFFSET[name]) == before, f"{name} changed"
    unmapped = [a for a in range(0, 1 << R.ADDR_WIDTH, 4) if a not in R.OFFSET.values()]
    for a in unmapped[:: max(1, len(unmapped) // 6)]:
        assert (await env.axil.write(a, b"\x01\x00\x00\x00")).resp == SLVERR
        rd = await env.axil.read(a, 4)
        assert rd.resp == SLVERR and rd.data == b"\x00\x00\x00\x00"
    assert await env.read(R.CTRL) == 0


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def test_register_bits(dut: Any) -> None:
    """Every bit of every read-write register holds 1 and 0 (all-ones, alternating
    patterns, zero, read back through the whole AXI4-Lite data path), IRQ_ENABLE's bits
    clear again, the layer-size products see every bit, and byte accesses at every
    offset within a word name that word."""
    env = await _started(dut, "test_register_bits", pause=0.2)
    rw = [R.OFFSET[n] for n, a in R.ACCESS.items() if a == "rw"]
    for a in rw:
        for value in (0xFFFFFFFF, 0xA5A5A5A5, 0x5A5A5A5A, 0x00000000):
            await env.write(a, value)
            got = await env.read(a)
            want = value & ((R.IRQ_ENABLE_DONE | R.IRQ_ENABLE_ERROR) if a == R.IRQ_ENABLE
                            else 0xFFFFFFFF)
            assert got == want, f"register 0x{a:02x}: wrote 0x{value:08x}, read 0x{got:08x}"
    # the registered product LAYER_N_TILES[7:0] * LAYER_K[15:0] (weight words, 24 bits):
    # every bit 1, then 0 again
    for k, nt in ((0xFFFF, 0x80), (0xFFFF, 0xFF), (0, 0)):    # 0x7FFF80, 0xFEFF01, 0
        await env.write(R.LAYER_K, k)
        await env.write(R.LAYER_N_TILES, nt)
        await env.read(R.LAYER_K)               # a few cycles for the registered products
    for off in range(4):                      # byte lanes: the low address bits name the word
        resp = await env.axil.write(R.LAYER_K + off, bytes([0x11 * (off + 1)]))
        assert resp.resp == OKAY
        rd = await env.axil.read(R.LAYER_K + off, 1)
        assert rd.resp == OKAY and rd.data[0] == 0x11 * (off + 1), (off, rd.data)
    await env.write(R.LAYER_K, 0)


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def test_layers_backpressure(dut: Any) -> None:
    """Random layers back to back with random pauses on every stream and AXI4-Lite
    channel; each next layer's weights and parameters load while the current one
    computes (double buffering), DONE interrupt, LAYERS_DONE and the counters agree."""
    rng = kit.test_rng("test_layers_backpressure", dut._log)
    env = TopEnv(dut, rng, pause=0.3)
    await env.start()
    await env.write(R.IRQ_ENABLE, R.IRQ_ENABLE_DONE)
    jobs = [random_job(rng, env, f"random{i}") for i in range(5)]
    await env.load(jobs[0])
    beats = 0
    for i, job in enumerate(jobs):
        nxt = cocotb.start_soon(env.load(jobs[i + 1])) if i + 1 < len(jobs) else None
        _, st = await env.run(job)
        beats += st.array_beats
        if nxt is not None:
            await nxt
        dut._log.info("[qmac] %s: M=%d K=%d N=%d: %d cycles", job.name, job.m, job.k, job.n,
                      st.cycles)
        assert dut.irq_o.value == 1, "DONE interrupt expected after a layer"
        await env.write(R.IRQ_STATUS, R.IRQ_STATUS_DONE)
        assert dut.irq_o.value == 0, "DONE interrupt still high after write-1-to-clear"
    assert await env.read(R.LAYERS_DONE) == len(jobs)
    assert await env.read(R.ERROR) == 0
    assert await env.read(R.PERF_ARRAY_BUSY) == beats
    # with pauses on the output sink, the output stream stalled at some point
    assert await env.read(R.PERF_OUT_STALL) > 0
    await env.write(R.CTRL, R.CTRL_CLEAR_PERF)
    for name in R.OFFSET:
        if name.startswith("PERF"):
            assert await env.read(R.OFFSET[name]) == 0, f"{name} not cleared"


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def test_two_layers_queued(dut: Any) -> None:
    """Two layers started before any activation: the third load waits (weight TREADY low,
    PERF_WGT_STALL counts), STATUS shows BUSY and PENDING; both run correctly in order."""
    rng = kit.test_rng("test_two_layers_queued", dut._log)
    env = TopEnv(dut, rng)
    await env.start()
    jobs = [random_job(rng, env, f"queued{i}") for i in range(3)]
    await env.load(jobs[0])
    await env.load(jobs[1])
    st = await env.read(R.STATUS)
    assert st & R.STATUS_BUSY and st & R.STATUS_PENDING
    third = cocotb.start_soon(env.load(jobs[2]))
    for _ in range(20):
        await RisingEdge(dut.clk_i)
    assert not third.done() and await env.read(R.PERF_WGT_STALL) > 0
    for job in jobs:
        await env.run(job)
    await third
    assert await env.read(R.LAYERS_DONE) == 3


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def test_reset_midway(dut: Any) -> None:
    """Reset while activations, weights and outputs are in flight; afterwards everything
    is back at its reset value and a clean layer checks out."""
    rng = kit.test_rng("test_reset_midway", dut._log)
    env = TopEnv(dut, rng, pause=0.2)
    await env.start()
    job = random_job(rng, env, "interrupted")
    job.cols = rng.integers(-128, 128, (4 * env.rows, job.k)).astype(np.int8)
    await env.load(job)
    nxt = random_job(rng, env, "next")
    env._pending.pop()
    await env.act.send(AxiStreamFrame(b"\x01" * (env.rows * job.k * 4)))
    await env.wgt.send(AxiStreamFrame(weight_beats(nxt.w2d, -(-nxt.n // env.cols), env.cols)))
    for _ in range(int(rng.integers(5, 5 + job.k))):
        await RisingEdge(dut.clk_i)
    await env.reset()
    for name, value in R.RESET.items():
        assert await env.read(R.OFFSET[name]) == value
    for name in ("STATUS", "ERROR", "IRQ_STATUS", "LAYERS_DONE", "PERF_CYCLES"):
        assert await env.read(R.OFFSET[name]) == 0, f"{name} not reset"
    after = random_job(rng, env, "after_reset")
    await env.load(after)
    await env.run(after)


async def _expect_error(env: TopEnv, bit: int, what: str) -> None:
    err = await env.read(R.ERROR)
    assert err == bit, f"{what}: ERROR = {err:#x}, expected only {bit:#x}"
    assert env.dut.irq_o.value == 1, f"{what}: error interrupt expected"
    assert await env.read(R.IRQ_STATUS) & R.IRQ_STATUS_ERROR
    await env.write(R.ERROR, bit)
    assert await env.read(R.ERROR) == 0 and env.dut.irq_o.value == 0


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def test_error_flags(dut: Any) -> None:
    """Every ERROR flag raised once, with the error interrupt; refused STARTs leave the
    queue as it was, dropped beats do not disturb later layers."""
    rng = kit.test_rng("test_error_flags", dut._log)
    env = TopEnv(dut, rng)
    await env.start()
    await env.write(R.IRQ_ENABLE, R.IRQ_ENABLE_ERROR)
    c, nmax = env.cols, env.n_tiles_max
    job = random_job(rng, env, "good")
    n_tiles, _ = env.plan(job)

    # CFG_INVALID: K = 0
    await env.write(R.LAYER_K, 0)
    await env.write(R.CTRL, R.CTRL_START)
    await _expect_error(env, R.ERROR_CFG_INVALID, "K = 0")
    # CFG_INVALID: N_TILES * K > W_DEPTH
    await env.write(R.LAYER_K, env.w_depth // nmax + 1)
    await env.write(R.LAYER_N_TILES, nmax)
    await env.write(R.CTRL, R.CTRL_START)
    await _expect_error(env, R.ERROR_CFG_INVALID, "N_TILES * K > W_DEPTH")
    assert await env.read(R.STATUS) & R.STATUS_BUSY == 0

    # WGT_LENGTH: one word too few
    await env.load(job, start=False)
    await env.wgt.send(AxiStreamFrame(weight_beats(job.w2d, n_tiles, c)[c:]))
    await env.wgt.wait()
    await env.write(R.CTRL, R.CTRL_START)
    await _expect_error(env, R.ERROR_WGT_LENGTH, "short weight frame")
    # PRM_LENGTH: parameters of one tile too many
    await env.wgt.send(AxiStreamFrame(weight_beats(job.w2d, n_tiles, c)))
    if n_tiles < nmax:
        await env.prm.send(AxiStreamFrame(param_beats(job, n_tiles + 1, c)))
    else:
        await env.prm.send(AxiStreamFrame(param_beats(job, n_tiles, c)[16:]))
    await env.wgt.wait()
    await env.prm.wait()
    await env.write(R.CTRL, R.CTRL_START)
    await _expect_error(env, R.ERROR_PRM_LENGTH, "wrong parameter count")
    assert await env.read(R.STATUS) & R.STATUS_BUSY == 0

    # WGT_OVERFLOW / PRM_OVERFLOW: frames longer than a bank (the excess is dropped)
    await env.wgt.send(AxiStreamFrame(bytes((env.w_depth + 1) * c)))
    await env.wgt.wait()
    await _expect_error(env, R.ERROR_WGT_OVERFLOW, "weight frame beyond W_DEPTH")
    await env.prm.send(AxiStreamFrame(bytes((nmax * c + 1) * 16)))
    await env.prm.wait()
    await _expect_error(env, R.ERROR_PRM_OVERFLOW, "parameter frame beyond the bank")

    # TKEEP: a weight beat with a byte disabled (the layer still runs: the beat is used)
    await env.load(job, start=False)
    data = weight_beats(job.w2d, n_tiles, c)
    keep = [1] * len(data)
    keep[0] = 0
    await env.wgt.send(AxiStreamFrame(data, tkeep=keep))
    await env.wgt.wait()
    await _expect_error(env, R.ERROR_TKEEP, "TKEEP not all ones")

    # START_OVERFLOW: a third START with two layers queued (the streams wait meanwhile)
    await env.load(job)
    await env.load(job)
    await env.write(R.CTRL, R.CTRL_START)
    await _expect_error(env, R.ERROR_START_OVERFLOW, "third START")

    # ACT_TLAST: the first layer's activations as two frames (an early TLAST); its
    # outputs are still right, and so are the second layer's
    await env.run(job, act_frames=2)
    await _expect_error(env, R.ERROR_ACT_TLAST, "early activation TLAST")
    await env.run(job)
    assert await env.read(R.ERROR) == 0
    assert await env.read(R.LAYERS_DONE) == 2


def run(parameters: Mapping[str, object] | None = None, *, waves: bool = False,
        seed: int | None = None, build_dir: Any = None, testcase: Any = None) -> None:
    """Build ``qmac_top`` with ``parameters`` and run this module's tests."""
    params = dict(DEFAULT_PARAMETERS, **(parameters or {}))
    kit.run_testbench(toplevel=DUT, sources=kit.rtl_sources(*SOURCES),
                      test_module="tb.test_qmac_top", parameters=params, waves=waves,
                      seed=seed, build_dir=build_dir, testcase=testcase)
