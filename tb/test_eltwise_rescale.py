"""cocotb testbench of ``rtl/eltwise_rescale.v`` -- the element-wise unit's input rescale.

Every operand ``x = v * 2^20`` (all 511 offset values ``|v| <= 255``) against multipliers
``m0`` over the whole int32 range (``INT32_MIN``, ``INT32_MAX``, 0, +-1, +-2^30 and
random values: the unit's testbench only meets Prepare's positive ones) and random
right shifts ``e = 0..31``; every output is compared exactly (``==``) with
``pymodel.ops.eltwise_stages.eltwise_rescale`` (proved equal to
``MultiplyByQuantizedMultiplier``, tests/test_eltwise_stages.py).  This covers stage 3's
product formed in logic, ``v * m0``, for the sign combinations of both operands.
"""

from __future__ import annotations

from typing import Any

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from pymodel.ops.eltwise_stages import eltwise_rescale
from tb import kit

DUT = "eltwise_rescale"
SOURCES = ("eltwise_rescale.v",)
LATENCY = 4          # register stages 3..6: an operand sampled at edge t leaves after edge t + 3
EDGE_M0 = [-(1 << 31), (1 << 31) - 1, 0, 1, -1, 1 << 30, -(1 << 30)]


@cocotb.test()
async def test_all_operands(dut: Any) -> None:
    """All 511 operands for each of 7 edge and 25 random multipliers, random shifts."""
    rng = kit.test_rng("test_all_operands", dut._log)
    cocotb.start_soon(Clock(dut.clk_i, 10, units="ns").start())
    v = np.arange(-255, 256, dtype=np.int64)
    m0s = EDGE_M0 + [int(x) for x in rng.integers(-(1 << 31), 1 << 31, 25)]
    for m0 in m0s:
        e = int(rng.integers(0, 32))
        xs = rng.permutation(v) << 20
        dut.m0_i.value = m0
        dut.e_i.value = e
        ys: list[int] = []
        await FallingEdge(dut.clk_i)
        for i in range(len(xs) + LATENCY):
            dut.x_i.value = int(xs[i]) if i < len(xs) else 0
            await FallingEdge(dut.clk_i)
            if i >= LATENCY - 1:        # the first operand's result (earlier: the fill)
                ys.append(dut.y_o.value.signed_integer)
        got = np.array(ys[: len(xs)], np.int64)
        want = eltwise_rescale(xs, m0, -e)
        bad = np.flatnonzero(got != want)
        assert bad.size == 0, (f"m0 = {m0}, e = {e}: x = {int(xs[bad[0]])} (v = {int(xs[bad[0]]) >> 20}) "
                               f"gave {int(got[bad[0]])}, golden {int(want[bad[0]])} "
                               f"({bad.size} mismatches)")


def run(parameters: dict[str, object] | None = None, *, waves: bool = False,
        seed: int | None = None, build_dir: Any = None, testcase: Any = None) -> None:
    """Build ``eltwise_rescale`` and run this module's tests."""
    kit.run_testbench(toplevel=DUT, sources=kit.rtl_sources(*SOURCES),
                      test_module="tb.test_eltwise_rescale", parameters=parameters or {},
                      waves=waves, seed=seed, build_dir=build_dir, testcase=testcase)
