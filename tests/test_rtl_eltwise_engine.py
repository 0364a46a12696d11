"""Regression of the element-wise unit RTL (ADD / SUB / MUL): tb/test_eltwise_engine.py.

Each parameter set builds in its own ``sim/build/eltwise_engine-<params>/`` (xdist-safe);
the cocotb seed is this test's ``seed`` fixture (``make test SEED=n``).  8 lanes run
>= 10^4 outputs per op and close the functional coverage; 3 lanes with a 2-entry result
FIFO (credits exhausted all the time) run a shorter random test.
"""

from __future__ import annotations

import pytest

from tb import test_eltwise_engine as tb_eltwise

PARAMETER_SETS = [
    pytest.param({"LANES": 8, "RES_FIFO": 8}, {}, id="8lanes"),
    pytest.param({"LANES": 3, "RES_FIFO": 2}, {"QMAC_ELTWISE_OUTPUTS": "1500"}, id="3lanes"),
]


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("parameters, env", PARAMETER_SETS)
def test_eltwise_engine(parameters: dict[str, object], env: dict[str, str], seed: int) -> None:
    """Every cocotb test of tb/test_eltwise_engine.py passes (outputs == golden model)."""
    tb_eltwise.run(parameters, seed=seed, extra_env=env)
