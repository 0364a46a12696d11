"""Regression of the layer engine RTL: tb/test_qlayer_engine.py on Icarus, per size.

Each parameter set builds in its own ``sim/build/qlayer_engine-<params>/`` directory
(xdist-safe); the cocotb seed is this test's ``seed`` fixture (``make test SEED=n``).
"""

from __future__ import annotations

import pytest

from tb import test_qlayer_engine as tb_engine

PARAMETER_SETS = [
    pytest.param({"ROWS": 2, "COLS": 3, "A_DEPTH": 8, "W_DEPTH": 256, "N_TILES_MAX": 4},
                 id="2x3"),
    pytest.param({"ROWS": 1, "COLS": 1, "A_DEPTH": 4, "W_DEPTH": 64, "N_TILES_MAX": 3},
                 id="1x1"),
    pytest.param({"ROWS": 8, "COLS": 8, "A_DEPTH": 64, "W_DEPTH": 2048, "N_TILES_MAX": 8},
                 id="8x8"),
]


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("parameters", PARAMETER_SETS)
def test_qlayer_engine(parameters: dict[str, object], seed: int) -> None:
    """Every cocotb test of tb/test_qlayer_engine.py passes (outputs == golden model)."""
    tb_engine.run(parameters, seed=seed)
