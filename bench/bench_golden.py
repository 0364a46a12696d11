"""Golden-model throughput: int8 GEMM and conv in GMAC/s, beside naive int64 numpy.

The baseline is the obvious exact implementation -- widen to int64 and use numpy's
integer matmul (no BLAS) -- run in the same process on the same data.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from pymodel.arithmetic.gemm import im2col, matmul_int32
from pymodel.ops.layers import RequantParams, conv2d
from pymodel.arithmetic.fast_requant import requantize_fast
from pymodel.arithmetic.fixedpoint import requantize
from pymodel.ops.prepared import PreparedConv2d


def best_time(fn: Callable[[], object], min_time: float = 0.5, repeats: int = 3) -> float:
    """Best-of-``repeats`` seconds per call, each measurement at least ``min_time`` long."""
    fn()
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt >= min_time / 4:
            break
        n *= 4
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def row(name: str, macs: int, t_model: float, t_base: float) -> None:
    print(f"{name:<34} {macs / t_model / 1e9:9.2f} {macs / t_base / 1e9:12.3f} "
          f"{t_base / t_model:9.1f}x")


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"{'workload':<34} {'GMAC/s':>9} {'naive int64':>12} {'speedup':>9}")

    a = rng.integers(-128, 128, (256, 256)).astype(np.int8)
    b = rng.integers(-128, 128, (256, 256)).astype(np.int8)
    assert np.array_equal(matmul_int32(a, b), (a.astype(np.int64) @ b.astype(np.int64)))
    row("matmul 256x256x256 int8", 256**3, best_time(lambda: matmul_int32(a, b)),
        best_time(lambda: a.astype(np.int64) @ b.astype(np.int64)))

    x = rng.integers(-128, 128, (1, 56, 56, 64)).astype(np.int8)
    w = rng.integers(-127, 128, (64, 3, 3, 64)).astype(np.int8)
    rq = RequantParams(bias=rng.integers(-1000, 1000, 64), m0=np.full(64, 1 << 30),
                       shift=np.full(64, -9), out_zero_point=3)
    macs = 56 * 56 * 64 * 9 * 64

    def naive_conv() -> np.ndarray:
        cols, _ = im2col(x.astype(np.int64) - 5, 3, 1, "same", pad_value=0)
        acc = cols @ w.reshape(64, -1).T.astype(np.int64) + rq.bias
        return requantize(acc, 0, rq.m0, rq.shift, 3, -128, 127)

    assert np.array_equal(conv2d(x, w, 5, rq, 1, "same").reshape(-1, 64), naive_conv())
    row("conv 3x3 56x56x64->64 (same)", macs, best_time(lambda: conv2d(x, w, 5, rq, 1, "same")),
        best_time(naive_conv, min_time=1.0, repeats=1))

    acc = rng.integers(-(2**31), 2**31, (4096, 64)).astype(np.int32)
    t = best_time(lambda: requantize(acc, rq.bias, rq.m0, rq.shift, 3, -128, 127))
    print(f"{'requantize int32 -> int8':<34} {acc.size / t / 1e6:9.1f} M values/s")

    # The prepared path (pymodel.ops.prepared, what run_layer uses) beside the readable
    # per-call layer above, and the closed-form requantize beside the stage functions.
    prep = PreparedConv2d(w, 5, rq, 1, "same")
    assert np.array_equal(prep(x), conv2d(x, w, 5, rq, 1, "same"))
    t_prep = best_time(lambda: prep(x))
    t_read = best_time(lambda: conv2d(x, w, 5, rq, 1, "same"))
    print(f"{'conv 3x3 56x56x64->64 prepared':<34} {macs / t_prep / 1e9:9.2f} "
          f"{'readable':>8} {macs / t_read / 1e9:.2f} {t_read / t_prep:9.1f}x")
    t_fast = best_time(lambda: requantize_fast(acc, rq.bias, rq.m0, rq.shift, 3, -128, 127))
    assert np.array_equal(requantize_fast(acc, rq.bias, rq.m0, rq.shift, 3, -128, 127),
                          requantize(acc, rq.bias, rq.m0, rq.shift, 3, -128, 127))
    print(f"{'requantize_fast int32 -> int8':<34} {acc.size / t_fast / 1e6:9.1f} M values/s "
          f"({t / t_fast:.1f}x the stage functions)")
