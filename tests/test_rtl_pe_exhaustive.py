"""All 65,536 int8 x int8 products through one processing element (``rtl/mac_pe.v``).

``tb/hdl/mac_pe_exhaustive_tb.v`` drives every pair ``(a, b)``, a in -128..127 (outer),
b in -128..127 (inner): once with ``clr`` on every beat (the captured sum is the product)
and once accumulating all 65,536 products (the captured sums are the running int32 sum,
which passes through both signs and the -128 x -128 = 16384 corner).  Every captured
value is compared ``==`` with ``pymodel.arithmetic.gemm.matmul_int32`` (products: the outer product
as a K=1 GEMM; running sums: a one-row GEMM of a lower-triangular ones matrix, wrapped
to int32).  Plain Icarus, no cocotb: 393,216 cycles in well under a second.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from pymodel.arithmetic.fixedpoint import wrap_int32
from pymodel.arithmetic.gemm import matmul_int32
from tb.kit import REPO_ROOT, RTL_DIR

TB = REPO_ROOT / "tb" / "hdl" / "mac_pe_exhaustive_tb.v"


@pytest.mark.rtl
def test_every_int8_product(tmp_path: Path) -> None:
    vvp, out = tmp_path / "pe.vvp", tmp_path / "pe.txt"
    subprocess.run(["iverilog", "-g2012", "-o", str(vvp), "-s", "mac_pe_exhaustive_tb",
                    str(TB), str(RTL_DIR / "mac_pe.v")], check=True)
    run = subprocess.run(["vvp", "-n", str(vvp), f"+out={out}"], capture_output=True, text=True)
    assert run.returncode == 0 and "ERROR" not in run.stdout, run.stdout + run.stderr
    got = np.loadtxt(out, dtype=np.int64).reshape(2, 256 * 256, 4)
    v = np.arange(-128, 128, dtype=np.int64)
    a = np.repeat(v, 256)                      # outer loop
    b = np.tile(v, 256)                        # inner loop
    for p in range(2):
        assert np.array_equal(got[p, :, 0], np.full(a.size, p))
        assert np.array_equal(got[p, :, 1], a) and np.array_equal(got[p, :, 2], b)
    products = matmul_int32(v[:, None].astype(np.int8), v[None, :].astype(np.int8)).reshape(-1)
    bad = np.flatnonzero(got[0, :, 3] != products)
    assert bad.size == 0, (f"{bad.size} wrong products, first: {a[bad[0]]} x {b[bad[0]]} = "
                           f"{got[0, bad[0], 3]} (golden {products[bad[0]]})")
    # running sum of the products: ones(1, n) @ products, for every prefix n, int32-wrapped
    running = wrap_int32(np.cumsum(products.astype(np.int64)))
    # cross-check the prefix sums against the golden GEMM at a few prefixes
    for n in (1, 255, 32768, 65536):
        assert running[n - 1] == matmul_int32(np.ones((1, n), np.int8),
                                              products[:n, None].astype(np.int32))[0, 0]
    bad = np.flatnonzero(got[1, :, 3] != running)
    assert bad.size == 0, (f"{bad.size} wrong running sums, first after {a[bad[0]]} x "
                           f"{b[bad[0]]}: {got[1, bad[0], 3]} (golden {running[bad[0]]})")
