"""cocotb side of the runner self-test: drive ``tb/hdl/sim_error_dut.v`` into one error.

The cocotb test itself always passes; only the simulator reports the error, so the test
of ``tests/test_kit_sim_errors.py`` fails only if :func:`tb.kit.run_testbench` notices
the simulator's message (``QMAC_SIM_ERROR_MODE`` selects it: 0 none, 1 ``$error``, 2 a
failed ``assert``, 3 ``$fatal``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles

from tb import kit

MODE_ENV = "QMAC_SIM_ERROR_MODE"
SOURCE = Path(__file__).resolve().parent / "hdl" / "sim_error_dut.v"


@cocotb.test()
async def test_raise(dut: Any) -> None:
    """Hold mode_i at the requested mode for one clock edge, then idle."""
    mode = int(os.environ.get(MODE_ENV, "0"))
    dut.mode_i.value = 0
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    await ClockCycles(dut.clk_i, 2)
    dut.mode_i.value = mode
    await ClockCycles(dut.clk_i, 1)
    dut.mode_i.value = 0
    await ClockCycles(dut.clk_i, 2)


def run(mode: int, *, seed: int | None = None) -> Path:
    """Build ``sim_error_dut`` and run :func:`test_raise` with ``mode``."""
    return kit.run_testbench(toplevel="sim_error_dut", sources=[SOURCE],
                             test_module="tb.test_sim_errors", parameters=None, seed=seed,
                             build_dir=kit.SIM_DIR / "build" / f"sim_error_dut-mode{mode}",
                             extra_env={MODE_ENV: str(mode)})
