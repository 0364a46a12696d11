"""Regression of the AXI top: tb/test_qmac_top.py on Icarus (cocotbext-axi masters and
slaves with random pauses), on a small engine so it stays quick."""

from __future__ import annotations

import pytest

from tb import test_qmac_top as tb_top

PARAMETER_SETS = [
    pytest.param({"ROWS": 2, "COLS": 3, "A_DEPTH": 8, "W_DEPTH": 64, "N_TILES_MAX": 3}, id="2x3"),
]


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("parameters", PARAMETER_SETS)
def test_qmac_top(parameters: dict[str, object], seed: int) -> None:
    """Every cocotb test of tb/test_qmac_top.py passes."""
    tb_top.run(parameters, seed=seed)
