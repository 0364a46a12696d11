"""Regression of the MAC array RTL: tb/test_mac_array.py on Icarus, per array size.

Each size builds in its own directory (``sim/build/mac_array-ROWS<r>_COLS<c>``), so
``pytest -n 2`` runs them in parallel.  The cocotb seed is this test's ``seed`` fixture
(derived from ``QMAC_SEED``): ``make test SEED=n`` reproduces every run.
"""

from __future__ import annotations

import pytest

from tb import test_mac_array as mac_tb

SIZES = [(1, 1), (2, 3), (4, 4), (8, 8), (3, 1)]


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("rows,cols", SIZES, ids=[f"{r}x{c}" for r, c in SIZES])
def test_mac_array(rows: int, cols: int, seed: int) -> None:
    mac_tb.run({"ROWS": rows, "COLS": cols}, seed=seed)
