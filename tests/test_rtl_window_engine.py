"""Regression of the window engine RTL (depthwise conv, pooling): tb/test_window_engine.py.

Each parameter set builds in its own ``sim/build/window_engine-<params>/`` (xdist-safe);
the cocotb seed is this test's ``seed`` fixture (``make test SEED=n``).  The default size
runs >= 10^4 output elements per op and closes the functional coverage (100 % of the
bins); the small, odd size (3 lanes, a narrow buffer that forces spatial tiling, 3x3
kernels only) runs a shorter random test and the reset test.
"""

from __future__ import annotations

import pytest

from tb import test_window_engine as tb_window

PARAMETER_SETS = [
    pytest.param({"LANES": 16, "H_MAX": 16, "W_MAX": 16, "TAPS_MAX": 25, "GROUPS_MAX": 2},
                 {}, id="16lanes"),
    pytest.param({"LANES": 3, "H_MAX": 8, "W_MAX": 4, "TAPS_MAX": 9, "GROUPS_MAX": 2},
                 {"QMAC_WINDOW_OUTPUTS": "600"}, id="3lanes"),
]


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("parameters, env", PARAMETER_SETS)
def test_window_engine(parameters: dict[str, object], env: dict[str, str], seed: int) -> None:
    """Every cocotb test of tb/test_window_engine.py passes (outputs == golden model)."""
    tb_window.run(parameters, seed=seed, extra_env=env)
