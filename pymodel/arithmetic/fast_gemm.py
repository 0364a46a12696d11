"""Exact int8 GEMM on float32 BLAS, split over threads: the fast path's accumulator.

Same integers as :func:`pymodel.arithmetic.gemm.matmul_int32` (tested ``==``), by the
same argument: a float32 product is exact when every partial sum is an integer of
magnitude ``<= 2^24``.  Here ``K`` is cut into chunks that satisfy it for the operands'
actual magnitudes (``k * max|a| * max|b| <= 2^24``), each chunk runs on float32 BLAS and
the chunks are added in float64 (exact below 2^53), then reduced mod 2^32 only where a
sum can leave int32.  Rows are split across :mod:`pymodel.parallel`'s threads, each
calling BLAS on its own block -- run BLAS itself single-threaded then (threadpoolctl),
so that the two kinds of threads do not compete.
"""

from __future__ import annotations

import numpy as np

from pymodel import parallel
from pymodel.arithmetic.fixedpoint import INT32_MAX, wrap_int32

_FLOAT32_EXACT = 1 << 24
#: Rows below which splitting the GEMM over threads does not pay.
MIN_ROWS_PER_THREAD = 32


def k_chunk(amax: int, bmax: int, k: int) -> int:
    """Largest K-chunk whose partial sums stay within float32's exact integers."""
    if amax == 0 or bmax == 0:
        return max(k, 1)
    return max(1, _FLOAT32_EXACT // (amax * bmax))


def float_matmul_exact(a32: np.ndarray, b32: np.ndarray, step: int) -> np.ndarray:
    """``a32 @ b32`` of float32 integer operands in K-chunks of ``step`` (exact).

    Args:
        a32: float32 ``[M, K]``; b32: float32 ``[K, N]``; ``step`` from :func:`k_chunk`.

    Returns:
        float32 ``[M, N]`` (one chunk) or float64 (several), exact integer sums.
    """
    k = a32.shape[1]
    if step >= k:
        return a32 @ b32
    acc = None
    for k0 in range(0, k, step):
        part = a32[:, k0:k0 + step] @ b32[k0:k0 + step]
        acc = part.astype(np.float64) if acc is None else np.add(acc, part, out=acc)
    return acc


def matmul_int32_fast(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``C = a @ b`` reduced to int32 with wraparound, like ``matmul_int32``.

    Args:
        a: int8 ``[M, K]``; b: int8 ``[K, N]``.

    Returns:
        int32 ``[M, N]``.
    """
    if a.dtype != np.int8 or b.dtype != np.int8 or a.ndim != 2 or b.ndim != 2 \
            or a.shape[1] != b.shape[0]:
        raise ValueError(f"a, b: expected int8 [M, K] and [K, N]; got {a.dtype} "
                         f"{list(a.shape)} and {b.dtype} {list(b.shape)}")
    m, k = a.shape
    n = b.shape[1]
    if a.size == 0 or b.size == 0:
        return np.zeros((m, n), np.int32)
    amax = max(-int(a.min()), int(a.max()))
    bmax = max(-int(b.min()), int(b.max()))
    step = k_chunk(amax, bmax, k)
    b32 = b.astype(np.float32)
    out = np.empty((m, n), np.int32)
    wrap = k * amax * bmax > INT32_MAX

    def rows(sl: slice) -> None:
        c = float_matmul_exact(a[sl].astype(np.float32), b32, step)
        out[sl] = wrap_int32(c.astype(np.int64)) if wrap else c
    parts = parallel.split(m, min(parallel.threads(), max(1, m // MIN_ROWS_PER_THREAD)))
    parallel.run_all(rows, parts)
    return out
