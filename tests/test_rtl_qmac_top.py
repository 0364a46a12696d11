"""Regression of the AXI top: tb/test_qmac_top.py on Icarus (cocotbext-axi masters and
slaves with random pauses), on small tops so it stays quick: a 2 x 3 engine without the
units (every GEMM test), and a 4 x 4 engine with the window / eltwise units on small
buffers (the register test and the unit tests)."""

from __future__ import annotations

import pytest

from tb import test_qmac_top as tb_top

PARAMETER_SETS = [
    pytest.param({"ROWS": 2, "COLS": 3, "A_DEPTH": 8, "W_DEPTH": 64, "N_TILES_MAX": 3,
                  "UNITS": 0}, None, id="2x3"),
    pytest.param({"ROWS": 4, "COLS": 4, "A_DEPTH": 8, "W_DEPTH": 64, "N_TILES_MAX": 3,
                  "H_MAX": 8, "W_MAX": 8, "TAPS_MAX": 9, "GROUPS_MAX": 2},
                 ["test_registers", "test_register_bits", *tb_top.UNIT_TESTS], id="4x4-units"),
]


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("parameters,testcase", PARAMETER_SETS)
def test_qmac_top(parameters: dict[str, object], testcase: list[str] | None, seed: int) -> None:
    """Every selected cocotb test of tb/test_qmac_top.py passes."""
    tb_top.run(parameters, seed=seed, testcase=testcase)
