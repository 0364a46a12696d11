"""pymodel.arithmetic.fast_gemm.matmul_int32_fast == gemm.matmul_int32, on any thread count."""

from __future__ import annotations

import numpy as np
import pytest

from pymodel import parallel
from pymodel.arithmetic.fast_gemm import matmul_int32_fast
from pymodel.arithmetic.gemm import matmul_int32


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", [(1, 7, 3), (70, 1032, 9), (65, 1033, 5), (97, 3000, 4)])
def test_equals_matmul_int32(rng, threads, shape):
    m, k, n = shape
    a = rng.integers(-128, 128, (m, k)).astype(np.int8)
    b = rng.integers(-128, 128, (k, n)).astype(np.int8)
    a[0] = -128                                    # extreme partial sums
    b[:, 0] = -128
    before = parallel.threads()
    try:
        parallel.set_threads(threads)
        got = matmul_int32_fast(a, b)
    finally:
        parallel.set_threads(before)
    assert got.dtype == np.int32
    assert np.array_equal(got, matmul_int32(a, b))


def test_wraps_like_the_accumulator():
    k = 140_000                                    # 140000 * 2^14 > 2^31: wraps mod 2^32
    a = np.full((2, k), -128, np.int8)
    b = np.full((k, 2), -128, np.int8)
    b[:, 1] = 127
    assert np.array_equal(matmul_int32_fast(a, b), matmul_int32(a, b))


def test_bad_operands():
    with pytest.raises(ValueError, match="a, b"):
        matmul_int32_fast(np.zeros((2, 3), np.int16), np.zeros((3, 2), np.int8))
