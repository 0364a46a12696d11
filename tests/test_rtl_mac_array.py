"""Regression of the MAC array RTL: tb/test_mac_array.py on Icarus, per array size.

Each size builds in its own directory (``sim/build/mac_array-ROWS<r>_COLS<c>``), so
``pytest -n 2`` runs them in parallel.  The cocotb seed is this test's ``seed`` fixture
(derived from ``QMAC_SEED``): ``make test SEED=n`` reproduces every run.

``test_big_k_int32_bound`` (tiles of K ~ 2^17 cycles: most of the time) runs at the small
sizes -- 1x1, 2x3 (operands crossing PEs both ways) and 3x1 -- where it checks the same
thing: every PE is the same ``mac_pe`` with the same 32-bit accumulator.  The larger sizes
run every other test, and every test in a coverage build (``make coverage``).
"""

from __future__ import annotations

import pytest

from tb import test_mac_array as mac_tb
from tb.kit.verilator import coverage_enabled

SIZES = [(1, 1), (2, 3), (4, 4), (8, 8), (3, 1)]
BIG_K = "test_big_k_int32_bound"
BIG_K_MAX_PES = 6       # ROWS * COLS up to which the big-K test runs in make test


def cocotb_tests_at(rows: int, cols: int) -> list[str] | None:
    """The cocotb tests to run at this size: all (None), or all but the big-K test."""
    if rows * cols <= BIG_K_MAX_PES or coverage_enabled():
        return None
    names = [n for n in vars(mac_tb) if n.startswith("test_")]          # its cocotb tests
    assert BIG_K in names, names
    return [n for n in names if n != BIG_K]


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("rows,cols", SIZES, ids=[f"{r}x{c}" for r, c in SIZES])
def test_mac_array(rows: int, cols: int, seed: int) -> None:
    mac_tb.run({"ROWS": rows, "COLS": cols}, seed=seed, testcase=cocotb_tests_at(rows, cols))
