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
UNIT_TESTS = ("test_units_backpressure", "test_unit_corners", "test_unit_errors")   # need UNITS = 1
ALL_TESTS = ("test_registers", "test_layers_backpressure", "test_two_layers_queued",
             "test_reset_midway", "test_error_flags") + UNIT_TESTS
DEFAULT_PARAMETERS = {"ROWS": 8, "COLS": 8, "A_DEPTH": 64, "W_DEPTH": 2048, "N_TILES_MAX": 8}
SOURCES = ("qmac_top.v", "qlayer_engine.v", "mac_*.v", "requant_*.v", "window_*.v", "eltwise_*.v")


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
    # byte strobes on UNIT_CFG_ADDR: REG (byte 0) and UNIT (byte 1) each change alone
    await env.write(R.UNIT_CFG_ADDR, 0x105)
    assert (await env.axil.write(R.UNIT_CFG_ADDR, b"\x03")).resp == OKAY      # WSTRB 0b0001
    assert await env.read(R.UNIT_CFG_ADDR) == 0x103
    assert (await env.axil.write(R.UNIT_CFG_ADDR + 1, b"\x00")).resp == OKAY  # WSTRB 0b0010
    assert await env.read(R.UNIT_CFG_ADDR) == 0x003
    await env.write(R.UNIT_CFG_ADDR, 0)
    for name, access in R.ACCESS.items():
        if access == "wo":        # write-only (CTRL, UNIT_CFG_DATA): reads as 0, OKAY
            assert await env.read(R.OFFSET[name]) == 0, f"write-only {name} reads non-zero"
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
            want = value & _rw_mask(a)
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


def _rw_mask(offset: int) -> int:
    """The bits a read-write register holds: its fields' bits (rtl/regs.yaml), or all 32
    when it declares none."""
    name = next(n for n, o in R.OFFSET.items() if o == offset)
    fields = [(lsb, width) for (reg, _), (lsb, width) in R.FIELD.items() if reg == name]
    if not fields:
        return 0xFFFFFFFF
    return sum(((1 << width) - 1) << lsb for lsb, width in fields)


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
    # every stream is idle now: the stall counters equal the testbench's count of the
    # edges with TVALID high and TREADY low
    perf = {n: await env.read(R.OFFSET[f"PERF_{n}_STALL"]) for n in env.stalls}
    dut._log.info("[qmac] stall cycles: hardware %s, testbench %s", perf, env.stalls)
    assert perf == env.stalls, f"PERF_*_STALL {perf} != counted {env.stalls}"
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
    # long enough for its four AXI4-Lite writes and the first weight beats on offer
    for _ in range(100):
        await RisingEdge(dut.clk_i)
    assert not third.done(), "a third load completed with two layers queued"
    assert await env.read(R.PERF_WGT_STALL) > 0, "the weight stream never waited"
    assert dut.s_axis_wgt_tvalid.value == 1 and dut.s_axis_wgt_tready.value == 0
    await env.run(jobs[0])
    await third              # its bank is free once the first layer has finished
    await env.run(jobs[1])
    await env.run(jobs[2])
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
    # two row blocks at least, so its activations can be split into two frames (ACT_TLAST)
    job.cols = rng.integers(-128, 128, (2 * env.rows, job.k)).astype(np.int8)
    n_tiles, _ = env.plan(job)

    if not env.units:
        # CFG_INVALID: a WINDOW layer on a top built without units
        await env.write(R.LAYER_OP, 1)
        await env.write(R.CTRL, R.CTRL_START)
        await _expect_error(env, R.ERROR_CFG_INVALID, "LAYER_OP WINDOW without units")
        await env.write(R.LAYER_OP, 0)
    # CFG_INVALID: K = 0
    await env.write(R.LAYER_K, 0)
    await env.write(R.CTRL, R.CTRL_START)
    await _expect_error(env, R.ERROR_CFG_INVALID, "K = 0")
    # CFG_INVALID at the slave's full rate: a valid configuration, then LAYER_K = 0 and
    # START as two outstanding writes (back to back, no pauses) -- the START must see the
    # new K: the range checks are registered one cycle behind LAYER_* (cfg_ok_q) and the
    # slave takes a write every other cycle at most (a later check would push the stale
    # valid layer and raise WGT_LENGTH instead)
    for reg in (R.LAYER_K, R.LAYER_N_TILES, R.LAYER_K_TILE, R.LAYER_BLOCKS):
        await env.write(reg, 1)
    done = [env.axil.init_write(R.LAYER_K, (0).to_bytes(4, "little")),
            env.axil.init_write(R.CTRL, R.CTRL_START.to_bytes(4, "little"))]
    for ev in done:
        await ev.wait()
    await _expect_error(env, R.ERROR_CFG_INVALID, "K = 0 and START back to back")
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


# ------------------------------------------------------------------ the units (UNITS = 1)
@cocotb.test(timeout_time=4, timeout_unit="ms")
async def test_units_backpressure(dut: Any) -> None:
    """Window (depthwise, max / average pool, MEAN) and element-wise (ADD / SUB / MUL)
    layers through the top with random pauses on every stream and AXI4-Lite channel, each
    output beat == the golden model; a GEMM layer loaded before a window layer (its START
    held) and one STARTed behind a unit layer in the queue run right too."""
    assert int(dut.UNITS.value) == 1, "a unit test on a top built without units"
    from tb.test_eltwise_engine import random_params
    from tb.test_window_engine import random_layer
    from tb.top import unit_param_beats
    from tb.top_units import run_eltwise_layer, run_window_layer
    from tb.window import golden as window_golden

    rng = kit.test_rng("test_units_backpressure", dut._log)
    env = TopEnv(dut, rng, pause=0.3)
    await env.start()
    held = random_job(rng, env, "held")
    held.cols = rng.integers(-128, 128, held.cols.shape).astype(np.int8)
    await env.load(held, start=False)            # weights in the load bank, START held
    for i, op in enumerate(("dw3x3", "max", "avg", "mean")):
        layer = random_layer(rng, env, op, f"{op}{i}")  # type: ignore[arg-type]
        out, cycles, _ = await run_window_layer(env, layer)
        assert np.array_equal(out, window_golden(layer).out)
        dut._log.info("[qmac] window %s %s: %d cycles", op, layer.x.shape, cycles)
    await env.start_loaded(held)
    await env.run(held)
    for op in ("add", "sub", "mul"):
        # one unit job (one START) between a GEMM layer's load and its START: the START
        # of a unit layer must leave the GEMM load bank alone
        held = random_job(rng, env, f"held_{op}")
        held.cols = rng.integers(-128, 128, held.cols.shape).astype(np.int8)
        await env.load(held, start=False)
        shape = (int(rng.integers(1, 4)), int(rng.integers(1, 6)), int(rng.integers(1, 3 * env.cols)))
        a = rng.integers(-128, 128, shape).astype(np.int8)
        b = rng.integers(-128, 128, shape).astype(np.int8)
        out, cycles = await run_eltwise_layer(env, f"{op}_t", op, a, b, random_params(rng, op))
        dut._log.info("[qmac] eltwise %s %s: %d cycles", op, shape, cycles)
        await env.start_loaded(held)
        await env.run(held)
    # a GEMM layer loaded and STARTed behind a running eltwise job (output held back): on
    # the weight stream its words follow operand B, which the eltwise job takes first
    from tb.top_units import OP_ELTWISE, UNIT_ELTWISE, ELT_OP, _stream
    from pymodel.ops.eltwise_stages import eltwise_engine
    job = random_job(rng, env, "behind")
    job.cols = rng.integers(-128, 128, job.cols.shape).astype(np.int8)
    p = random_params(rng, "sub")
    a = rng.integers(-128, 128, (3, env.cols)).astype(np.int8)
    b = rng.integers(-128, 128, (3, env.cols)).astype(np.int8)
    for reg, value in {0: ELT_OP["sub"], 1: p.in1_zero_point & 0xFF, 2: p.in2_zero_point & 0xFF,
                       3: p.in1_multiplier, 4: p.in1_shift & 0xFFFFFFFF, 5: p.in2_multiplier,
                       6: p.in2_shift & 0xFFFFFFFF}.items():
        await env.unit_cfg(UNIT_ELTWISE, reg, value)
    z = np.zeros(env.cols, np.int64)
    await _stream(env, OP_ELTWISE, None, unit_param_beats(
        z, z + p.out_multiplier, z + p.out_shift, p.out_zero_point, p.act_min, p.act_max))
    got = np.zeros((3, env.cols), np.int64)
    env.sb.expect(np.asarray(eltwise_engine(a, b, "sub", p), np.int64), "sub ahead of a GEMM")

    def store(k: int, v: np.ndarray) -> None:
        got[k] = v
    env._unit_store, env._next_slot = store, 0
    env.out.set_pause_generator(None)                    # (a pause generator would override)
    env.out.pause = True
    await env.write(R.LAYER_BLOCKS, 3)
    await env.write(R.CTRL, R.CTRL_START)
    await env.act.send(AxiStreamFrame(a.tobytes()))
    await env.wgt.send(AxiStreamFrame(b.tobytes()))
    await env.load(job)                                   # queued behind the eltwise job
    st = await env.read(R.STATUS)
    assert st & R.STATUS_BUSY and st & R.STATUS_PENDING
    env.out.pause = False
    env.set_pause(0.3)
    await env.out.recv()
    env.sb.check_done()
    env._unit_store = None
    assert np.array_equal(got, eltwise_engine(a, b, "sub", p))
    await env.run(job)
    assert await env.read(R.ERROR) == 0
    assert await env.read(R.PERF_OUT_STALL) > 0 and await env.read(R.PERF_ACT_STALL) > 0


@cocotb.test(timeout_time=4, timeout_unit="ms")
async def test_unit_corners(dut: Any) -> None:
    """Unit layers at the edges of the top's ranges: a depthwise layer on every channel
    group (GROUP 0 .. GROUPS_MAX - 1, every requantize tile of the window unit; weights
    complemented from group to group, then reloaded: every weight memory bit toggles), a max
    pool of a whole H_MAX x W_MAX image (the largest window tile), and a window and an
    element-wise layer each STARTed behind a running GEMM layer (a unit op second in the
    layer queue, loading its parameters and weights while the GEMM layer waits)."""
    assert int(dut.UNITS.value) == 1, "a unit test on a top built without units"
    from tb.test_eltwise_engine import random_params
    from tb.test_window_engine import random_layer, random_rq
    from tb.top_units import run_eltwise_layer, run_window_layer
    from tb.window import WindowLayer, golden as window_golden

    rng = kit.test_rng("test_unit_corners", dut._log)
    env = TopEnv(dut, rng, pause=0.2)
    await env.start()
    c = env.groups_max * env.lanes
    dw = WindowLayer(name="dw_every_group", op="dw", kernel=(3, 3), padding="same",
                     x=rng.integers(-128, 128, (1, 3, 4, c)).astype(np.int8))
    # the weight memory sees every bit both ways: groups alternate base and its complement
    # (~w = -w - 1), then a one-group layer loads base again
    base = rng.integers(-127, 128, (1, 3, 3, env.lanes)).astype(np.int8)
    dw.w = np.concatenate([base if g % 2 == 0 else ~base for g in range(env.groups_max)], axis=3)
    dw.in_zero_point = int(rng.integers(-128, 128))
    dw.rq = random_rq(rng, c)
    again = WindowLayer(name="dw_reload", op="dw", kernel=(3, 3), padding="valid",
                        x=rng.integers(-128, 128, (1, 3, 3, env.lanes)).astype(np.int8),
                        w=base, in_zero_point=dw.in_zero_point, rq=random_rq(rng, env.lanes))
    full = WindowLayer(name="max_whole_buffer", op="max", kernel=(2, 2), stride=(2, 2),
                       x=rng.integers(-128, 128, (1, env.h_max, env.w_max, env.lanes)).astype(np.int8))
    for layer in (dw, again, full):
        out, cycles, _ = await run_window_layer(env, layer)
        assert np.array_equal(out, window_golden(layer).out)
        dut._log.info("[qmac] %s %s: %d cycles", layer.name, layer.x.shape, cycles)
    for unit in ("window", "eltwise"):
        job = random_job(rng, env, f"gemm_ahead_of_{unit}")
        job.cols = rng.integers(-128, 128, job.cols.shape).astype(np.int8)
        await env.load(job)                  # STARTed: running, waiting for its activations
        if unit == "window":
            layer = random_layer(rng, env, "avg", "avg_behind_gemm")
            out, _, _ = await run_window_layer(env, layer, ahead=job)
            assert np.array_equal(out, window_golden(layer).out)
        else:
            shape = (2, int(rng.integers(1, 2 * env.cols + 1)))
            a = rng.integers(-128, 128, shape).astype(np.int8)
            b = rng.integers(-128, 128, shape).astype(np.int8)
            await run_eltwise_layer(env, "add_behind_gemm", "add", a, b,
                                    random_params(rng, "add"), ahead=job)
    assert await env.read(R.ERROR) == 0


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def test_unit_errors(dut: Any) -> None:
    """The units' error cases: UNIT_BUSY (a configuration write while the unit has a job
    queued is refused and the job runs with the old one), LAYER_OP 3 (CFG_INVALID), a
    misplaced operand-B TLAST (ACT_TLAST), window weights beyond TAPS_MAX (WGT_OVERFLOW)
    and parameters beyond GROUPS_MAX * COLS channels (PRM_OVERFLOW); then a reset in the
    middle of a window job."""
    assert int(dut.UNITS.value) == 1, "a unit test on a top built without units"
    from tb.top_units import UNIT_WINDOW, run_eltwise_layer
    from tb.test_eltwise_engine import random_params
    from tb.top import unit_param_beats

    rng = kit.test_rng("test_unit_errors", dut._log)
    env = TopEnv(dut, rng)
    await env.start()
    await env.write(R.IRQ_ENABLE, R.IRQ_ENABLE_ERROR)
    c = env.cols
    hw = await env.read(R.HW_WINDOW)
    assert (hw & 0xFF, (hw >> 8) & 0xFF) == (env.taps_max, env.groups_max)
    assert (1 << ((hw >> 16) & 0xF), 1 << ((hw >> 20) & 0xF)) == (env.h_max, env.w_max)
    assert (await env.read(R.HW_ARRAY) >> 24) & 1 == 1

    # LAYER_OP 3 names no unit
    await env.write(R.LAYER_OP, 3)
    await env.write(R.CTRL, R.CTRL_START)
    await _expect_error(env, R.ERROR_CFG_INVALID, "LAYER_OP = 3")

    # UNIT_BUSY: a 2 x 2 tile, 1 x 1 max pool (output = input within the clamp)
    lo, hi = -50, 60
    await env.write(R.LAYER_OP, 1)
    await env.prm.send(AxiStreamFrame(unit_param_beats([0] * c, [1 << 30] * c, [1] * c, 0, lo, hi)))
    await env.prm.wait()
    for reg, value in {0: 2, 1: 2, 2: 1, 3: 1, 10: 2, 11: 2, 8: 0, 9: 0, 13: 0, 14: 1}.items():
        await env.unit_cfg(UNIT_WINDOW, reg, value)
    await env.write(R.LAYER_BLOCKS, 1)
    await env.write(R.CTRL, R.CTRL_START)
    await env.write(R.UNIT_CFG_ADDR, 0)
    await env.write(R.UNIT_CFG_DATA, 5)                     # H = 5: refused
    await _expect_error(env, R.ERROR_UNIT_BUSY, "UNIT_CFG_DATA with a window job queued")
    x = rng.integers(-128, 128, (4, c)).astype(np.int8)
    env.sb.expect(np.clip(x, lo, hi).astype(np.int64), "1 x 1 max pool, H = 2 kept")
    got = np.zeros((4, c), np.int64)

    def store(k: int, v: np.ndarray) -> None:
        got[k] = v
    env._unit_store, env._next_slot = store, 0
    await env.act.send(AxiStreamFrame(x.tobytes()))
    await env.out.recv()
    env.sb.check_done()
    env._unit_store = None
    assert np.array_equal(got, np.clip(x, lo, hi)), "the refused write changed the job"

    # ACT_TLAST on operand B: B as two frames (an early TLAST); the outputs are still right
    p = random_params(rng, "add")
    a = rng.integers(-128, 128, (4 * c,)).astype(np.int8)
    b = rng.integers(-128, 128, (4 * c,)).astype(np.int8)
    send = env.wgt.send

    async def split_send(frame: AxiStreamFrame) -> None:
        data = bytes(frame.tdata)
        await send(AxiStreamFrame(data[:c]))
        await send(AxiStreamFrame(data[c:]))
    env.wgt.send = split_send                               # type: ignore[method-assign]
    await run_eltwise_layer(env, "split_b", "add", a, b, p)
    env.wgt.send = send                                     # type: ignore[method-assign]
    await _expect_error(env, R.ERROR_ACT_TLAST, "early operand-B TLAST")

    # WGT_OVERFLOW / PRM_OVERFLOW on the window unit's memories (the excess is dropped)
    await env.write(R.LAYER_OP, 1)
    await env.wgt.send(AxiStreamFrame(bytes((env.taps_max + 1) * c)))
    await env.wgt.wait()
    await _expect_error(env, R.ERROR_WGT_OVERFLOW, "window weights beyond TAPS_MAX")
    n = env.groups_max * c + 1
    await env.prm.send(AxiStreamFrame(unit_param_beats([0] * n, [1 << 30] * n, [1] * n, 0, -128, 127)))
    await env.prm.wait()
    await _expect_error(env, R.ERROR_PRM_OVERFLOW, "window parameters beyond GROUPS_MAX * COLS")
    assert await env.read(R.LAYERS_DONE) == 2

    # reset in the middle of a window job (input streaming, outputs held back): everything
    # is back at its reset value and a clean window layer checks out afterwards
    from tb.test_window_engine import random_layer
    from tb.top_units import run_window_layer
    from tb.window import golden as window_golden
    for reg, value in {0: 4, 1: 4, 2: 3, 3: 3, 10: 2, 11: 2, 14: 2}.items():
        await env.unit_cfg(UNIT_WINDOW, reg, value)
    await env.write(R.LAYER_OP, 1)
    await env.write(R.LAYER_BLOCKS, 2)
    await env.write(R.CTRL, R.CTRL_START)
    env.out.set_pause_generator(None)
    env.out.pause = True
    await env.act.send(AxiStreamFrame(bytes(range(32 * c))))
    for _ in range(int(rng.integers(8, 40))):
        await RisingEdge(dut.clk_i)
    assert await env.read(R.STATUS) & R.STATUS_BUSY
    await env.reset()
    env.out.pause = False
    for name, value in R.RESET.items():
        assert await env.read(R.OFFSET[name]) == value, f"{name} after reset"
    for name in ("STATUS", "ERROR", "LAYERS_DONE", "PERF_CYCLES"):
        assert await env.read(R.OFFSET[name]) == 0, f"{name} not reset"
    layer = random_layer(rng, env, "max", "after_reset")        # type: ignore[arg-type]
    out, _, _ = await run_window_layer(env, layer)
    assert np.array_equal(out, window_golden(layer).out)


def run(parameters: Mapping[str, object] | None = None, *, waves: bool = False,
        seed: int | None = None, build_dir: Any = None, testcase: Any = None) -> None:
    """Build ``qmac_top`` with ``parameters`` and run this module's tests (without the
    unit tests when ``UNITS`` is 0)."""
    params = dict(DEFAULT_PARAMETERS, **(parameters or {}))
    if testcase is None and params.get("UNITS", 1) == 0:
        testcase = [t for t in ALL_TESTS if t not in UNIT_TESTS]
    kit.run_testbench(toplevel=DUT, sources=kit.rtl_sources(*SOURCES),
                      test_module="tb.test_qmac_top", parameters=params, waves=waves,
                      seed=seed, build_dir=build_dir, testcase=testcase)
