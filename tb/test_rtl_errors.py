"""cocotb side of the negative tests of the RTL's run-time checks (issue 15).

Every run-time ``$error`` in ``rtl/`` is triggered exactly once here, in a known order;
``tests/test_rtl_runtime_checks.py`` expects the run to fail (the kit's runner fails a
test on any simulator error) and compares the simulator's error messages, in order,
with the list it expects.  The cocotb tests themselves only drive the DUT; they pass.

Host errors (an illegal configuration or parameter write, a tile index or weight read
out of range, a push into a full FIFO) are provoked through the ports.  Internal
invariants that legal port traffic cannot break (the MAC array's two-bank drain
bookkeeping, the engine's descriptor count) are broken by depositing a wrong value into
the register they watch -- exactly the bug the check exists to name.
"""

from __future__ import annotations

from typing import Any

import cocotb
from cocotb.handle import Force, Release
from cocotb.triggers import RisingEdge

from tb import kit


async def _edge(dut: Any, n: int = 1) -> None:
    for _ in range(n):
        await RisingEdge(dut.clk_i)


# ------------------------------------------------------------------ mac_array (2 checks)
@cocotb.test()
async def test_mac_array_checks(dut: Any) -> None:
    """mac_array: 'no tile pending', then 'another one was already waiting'."""
    clock = kit.ClockReset(dut.clk_i, dut.rst_i)
    for sig in (dut.op_valid_i, dut.op_first_i, dut.op_last_i, dut.op_a_i, dut.op_b_i):
        sig.value = 0
    dut.res_ready_i.value = 1
    await clock.start_and_reset()
    # (1) a one-beat tile is accepted; its pending count is then wiped out before its
    #     row 0 completes -> "a tile completed row 0 with no tile pending"
    dut.op_valid_i.value, dut.op_first_i.value, dut.op_last_i.value = 1, 1, 1
    await RisingEdge(dut.clk_i)   # accepted: one tile pending
    dut.op_valid_i.value = 0
    dut.pend_q.value = 0
    await clock.cycles(20)
    await clock.reset(2)
    # (2) tile A drains against a stalled sink, tile B completes row 0 and waits; the
    #     pending count is lowered by one so that a third tile's last beat is accepted
    #     -> its row 0 completes while B is still waiting
    dut.res_ready_i.value = 0
    for _ in range(2):            # tiles A and B
        dut.op_valid_i.value, dut.op_first_i.value, dut.op_last_i.value = 1, 1, 1
        await RisingEdge(dut.clk_i)
        dut.op_valid_i.value = 0
        await clock.cycles(12)
    dut.pend_q.value = 1
    await RisingEdge(dut.clk_i)
    dut.op_valid_i.value, dut.op_first_i.value, dut.op_last_i.value = 1, 1, 1
    await RisingEdge(dut.clk_i)
    dut.op_valid_i.value = 0
    await clock.cycles(12)
    await clock.reset(2)
    await clock.cycles(2)


# ------------------------------------------------------------ requant_out_fifo (1 check)
@cocotb.test()
async def test_fifo_checks(dut: Any) -> None:
    """requant_out_fifo: DEPTH + 1 pushes without a pop -> 'push into a full FIFO'."""
    clock = kit.ClockReset(dut.clk_i, dut.rst_i)
    dut.push_i.value, dut.ready_i.value, dut.wdata_i.value = 0, 0, 0
    await clock.start_and_reset()
    depth = int(dut.DEPTH.value)
    for i in range(depth + 1):
        dut.push_i.value, dut.wdata_i.value = 1, i
        await RisingEdge(dut.clk_i)
    dut.push_i.value = 0
    await clock.cycles(3)


# ------------------------------------------------------------ requant_pipeline (4 checks)
@cocotb.test()
async def test_requant_checks(dut: Any) -> None:
    """requant_pipeline (LANES=4, CHANNELS=12): channel, shift, clamp bounds, tile."""
    clock = kit.ClockReset(dut.clk_i, dut.rst_i)
    for sig in (dut.prm_we_i, dut.prm_chan_i, dut.prm_bias_i, dut.prm_m0_i, dut.prm_shift_i,
                dut.prm_zp_i, dut.in_valid_i, dut.in_tile_i, dut.in_data_i, dut.in_user_i):
        sig.value = 0
    dut.prm_act_min_i.value, dut.prm_act_max_i.value = 0x80, 0x7F
    dut.out_ready_i.value = 1
    await clock.start_and_reset()
    channels, tiles = int(dut.CHANNELS.value), int(dut.TILES.value)
    bad_writes = [
        {dut.prm_chan_i: channels},                       # channel beyond CHANNELS
        {dut.prm_shift_i: 0x20},                          # shift = -32
        {dut.prm_act_min_i: 5, dut.prm_act_max_i: 4},     # act_min > act_max
    ]
    for fields in bad_writes:
        for sig, value in fields.items():
            sig.value = value
        dut.prm_we_i.value = 1
        await RisingEdge(dut.clk_i)
        dut.prm_we_i.value, dut.prm_chan_i.value, dut.prm_shift_i.value = 0, 0, 0
        dut.prm_act_min_i.value, dut.prm_act_max_i.value = 0x80, 0x7F
        await clock.cycles(2)
    # a beat with a tile index beyond TILES (held until it is accepted)
    dut.in_valid_i.value, dut.in_tile_i.value = 1, tiles
    while True:
        await RisingEdge(dut.clk_i)
        if int(dut.in_ready_o.value) == 1:
            break
    dut.in_valid_i.value, dut.in_tile_i.value = 0, 0
    await clock.cycles(15)


# ------------------------------------------------------------ qlayer_engine (5 checks)
async def _engine_config(dut: Any, k: int, n_tiles: int, k_tile: int) -> None:
    dut.k_i.value, dut.n_tiles_i.value, dut.k_tile_i.value = k, n_tiles, k_tile


async def _one_beat(dut: Any, clock: Any) -> None:
    """Push one activation beat (the first tap of a chunk: the configuration is checked)."""
    dut.act_valid_i.value, dut.act_data_i.value = 1, 1
    while True:
        await RisingEdge(dut.clk_i)
        if int(dut.act_ready_o.value) == 1:
            break
    dut.act_valid_i.value = 0
    await clock.cycles(3)


@cocotb.test()
async def test_engine_checks(dut: Any) -> None:
    """qlayer_engine (ROWS=COLS=1, A_DEPTH=4, W_DEPTH=9, N_TILES_MAX=2): each configuration
    input out of range at a chunk's first beat, a weight read beyond W_DEPTH, a result row
    without a descriptor."""
    clock = kit.ClockReset(dut.clk_i, dut.rst_i)
    for sig in (dut.k_i, dut.n_tiles_i, dut.k_tile_i, dut.bank_i, dut.w_we_i, dut.w_bank_i,
                dut.w_addr_i, dut.w_data_i, dut.prm_we_i, dut.prm_bank_i, dut.prm_chan_i,
                dut.prm_bias_i, dut.prm_m0_i, dut.prm_shift_i, dut.prm_zp_i, dut.act_valid_i,
                dut.act_data_i):
        sig.value = 0
    dut.prm_act_min_i.value, dut.prm_act_max_i.value = 0x80, 0x7F
    dut.out_ready_i.value = 1
    await clock.start_and_reset()
    a_depth, n_max = int(dut.A_DEPTH.value), int(dut.N_TILES_MAX.value)
    for k, n_tiles, k_tile in ((0, 1, 1), (1, 0, 1), (1, n_max + 1, 1), (1, 1, 0),
                               (1, 1, a_depth + 1)):
        await _engine_config(dut, k, n_tiles, k_tile)
        await _one_beat(dut, clock)
        await clock.reset(2)
    # N_TILES * K = 2 * 5 = 10 weight words > W_DEPTH = 9: tile 1 reads word 9 once
    await _engine_config(dut, 5, 2, 4)
    for w in range(int(dut.W_DEPTH.value)):
        dut.w_addr_i.value, dut.w_data_i.value, dut.w_we_i.value = w, 1, 1
        await RisingEdge(dut.clk_i)
    dut.w_we_i.value = 0
    for c in range(2):
        dut.prm_chan_i.value, dut.prm_m0_i.value, dut.prm_we_i.value = c, 1 << 30, 1
        await RisingEdge(dut.clk_i)
    dut.prm_we_i.value = 0
    dut.act_valid_i.value, dut.act_data_i.value = 1, 1
    for _ in range(5):
        while True:
            await RisingEdge(dut.clk_i)
            if int(dut.act_ready_o.value) == 1:
                break
    dut.act_valid_i.value = 0
    await clock.cycles(60)
    await clock.reset(2)
    # one result row leaves the MAC array while the descriptor count has been wiped out
    await _engine_config(dut, 1, 1, 1)
    dut.dq_count_q.value = Force(0)   # held at 0 while the tile runs and its row leaves
    dut.act_valid_i.value = 1
    await RisingEdge(dut.clk_i)
    dut.act_valid_i.value = 0
    await clock.cycles(20)
    dut.dq_count_q.value = Release()
    await clock.reset(2)


# ---------------------------------------------------------------------- host side
# (dut, toplevel, sources, parameters, cocotb test)
SETUPS = {
    "mac_array": ("mac_array", ("mac_*.v",), {"ROWS": 2, "COLS": 2}, "test_mac_array_checks"),
    "requant_out_fifo": ("requant_out_fifo", ("requant_out_fifo.v",), {"WIDTH": 4, "DEPTH": 3},
                         "test_fifo_checks"),
    "requant_pipeline": ("requant_pipeline", ("requant_*.v",), {"LANES": 4, "CHANNELS": 12},
                         "test_requant_checks"),
    "qlayer_engine": ("qlayer_engine", ("qlayer_engine.v", "mac_*.v", "requant_*.v"),
                      {"ROWS": 1, "COLS": 1, "A_DEPTH": 4, "W_DEPTH": 9, "N_TILES_MAX": 2},
                      "test_engine_checks"),
}


def run(name: str, *, seed: int | None = None):
    """Build ``name``'s DUT and run its check-provoking test; returns the build dir."""
    top, pats, params, test = SETUPS[name]
    bdir = kit.SIM_DIR / "build" / f"checks-{name}"
    kit.run_testbench(toplevel=top, sources=kit.rtl_sources(*pats), test_module="tb.test_rtl_errors",
                      parameters=params, seed=seed, build_dir=bdir, testcase=test,
                      dut_name=f"checks-{name}")
    return bdir
