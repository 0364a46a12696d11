"""Parameter corners: the legal extremes of every block, each running its random test.

The main regressions (``test_rtl_mac_array.py``, ``test_rtl_requant.py``,
``test_rtl_qlayer_engine.py``) run every test of a block at its usual sizes; this file
builds the sizes they do not -- one-row / one-column arrays, a single output-channel
tile (``N_TILES_MAX=1``), one-word buffers (``A_DEPTH=1``, ``W_DEPTH=1``), tile and
buffer counts that are not powers of two (``LANES=4 CHANNELS=12``, ``A_DEPTH=3``,
``W_DEPTH=23``, ``ACC_FIFO=5``), the smallest descriptor FIFO (``ACC_FIFO=3``), a wide
sideband -- and runs only the block's random test there, short, with outputs compared
``==`` with the golden model as always.

Each corner is its own build (``sim/build/<dut>-<parameters>/``, xdist-safe) and gets
its seed from the ``seed`` fixture (``make test SEED=n`` reproduces it).
"""

from __future__ import annotations

import pytest

from tb import test_mac_array, test_qlayer_engine, test_requant

MAC_CORNERS = [
    pytest.param({"ROWS": 1, "COLS": 6}, id="1x6"),     # one row: A skew of one lane
    pytest.param({"ROWS": 5, "COLS": 2}, id="5x2"),     # odd rows, more rows than columns
]

REQUANT_CORNERS = [
    pytest.param({"LANES": 4, "CHANNELS": 12}, id="LANES4_CHANNELS12"),  # 3 tiles
    pytest.param({"LANES": 1, "CHANNELS": 1}, id="LANES1_CHANNELS1"),    # one tile, one channel
    pytest.param({"LANES": 5, "CHANNELS": 5, "USER_W": 3}, id="LANES5_CHANNELS5"),
]
REQUANT_VECTORS = "1500"

ENGINE_CORNERS = [
    # LANES=4 CHANNELS=12 requantizer, non-power-of-two buffers, smallest descriptor FIFO
    pytest.param({"ROWS": 3, "COLS": 4, "A_DEPTH": 3, "W_DEPTH": 23, "N_TILES_MAX": 3,
                  "ACC_FIFO": 3}, id="3x4_A3_W23_T3_F3"),
    # one channel tile, one-tap activation banks (every tap its own K chunk)
    pytest.param({"ROWS": 5, "COLS": 1, "A_DEPTH": 1, "W_DEPTH": 40, "N_TILES_MAX": 1},
                 id="5x1_A1_W40_T1"),
    # one weight word (K = 1 only), a descriptor FIFO that is not a power of two
    pytest.param({"ROWS": 1, "COLS": 3, "A_DEPTH": 2, "W_DEPTH": 1, "N_TILES_MAX": 1,
                  "ACC_FIFO": 5}, id="1x3_A2_W1_T1_F5"),
]


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("parameters", MAC_CORNERS)
def test_mac_array_corner(parameters: dict[str, int], seed: int) -> None:
    test_mac_array.run(parameters, seed=seed, testcase="test_random_gemms")


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("parameters", REQUANT_CORNERS)
def test_requant_corner(parameters: dict[str, object], seed: int,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QMAC_REQUANT_VECTORS", REQUANT_VECTORS)
    test_requant.run(parameters, seed=seed, testcase="test_random")


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("parameters", ENGINE_CORNERS)
def test_qlayer_engine_corner(parameters: dict[str, object], seed: int) -> None:
    test_qlayer_engine.run(parameters, seed=seed, testcase="test_random_layers")
