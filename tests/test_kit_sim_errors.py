"""The kit's runner fails a test on any simulator error (rule 3 of the house).

``tb/hdl/sim_error_dut.v`` raises ``$error``, a failed ``assert`` or ``$fatal`` while
its cocotb test passes; :func:`tb.kit.run_testbench` must raise
:class:`tb.kit.TestbenchFailed` with the simulator's message in it.  A clean run passes.
"""

from __future__ import annotations

import re

import pytest

from tb import kit
from tb import test_sim_errors

CASES = [
    pytest.param(1, r"ERROR: .*sim_error_dut\.v:\d+: sim_error_dut: mode 1 raises \$error", id="error"),
    pytest.param(2, r"ERROR: .*sim_error_dut\.v:\d+:", id="assert"),
    pytest.param(3, r"FATAL: .*sim_error_dut\.v:\d+: sim_error_dut: mode 3 raises \$fatal", id="fatal"),
]


@pytest.mark.rtl
@pytest.mark.parametrize("mode,message", CASES)
def test_simulator_error_fails_the_test(mode: int, message: str, seed: int) -> None:
    with pytest.raises(kit.TestbenchFailed, match="the simulator reported 1 error") as info:
        test_sim_errors.run(mode, seed=seed)
    assert re.search(message, str(info.value)), str(info.value)


@pytest.mark.rtl
def test_clean_run_passes(seed: int) -> None:
    test_sim_errors.run(0, seed=seed)


def test_simulator_errors_parses_icarus_and_verilator() -> None:
    text = "\n".join([
        "     0.00ns INFO     cocotb   Running on Icarus Verilog",
        "ERROR: rtl/x.v:12: x: bad thing 3",
        "       Time: 40000  Scope: top.u_x",
        "hello from $display",
        "%Error: rtl/x.v:30: Assertion failed in TOP.x: K = 0",
        "%Fatal: rtl/x.v:31: stop",
        "ERROR: rtl/x.v:12: x: bad thing 3",          # the same $error again: counts
        "       Time: 50000  Scope: top.u_x",
        "FATAL: rtl/x.v:40: done",
        "    10.00ns WARNING  cocotb  simulation ended",
        "FATAL: rtl/x.v:40: done",                    # Icarus' echo of $fatal: once
        "    10.00ns ERROR    cocotb   Test failed (not a simulator message)",
    ])
    count, msgs = kit.simulator_errors(text)
    assert count == 5
    assert msgs[0] == "ERROR: rtl/x.v:12: x: bad thing 3 (Time: 40000  Scope: top.u_x)"
    assert msgs[1].startswith("%Error: rtl/x.v:30: Assertion failed")
    assert kit.simulator_errors("all fine\n") == (0, [])
