"""The baseline of the depthwise micro-architecture choice: depthwise conv as a mode of the
MAC array, measured on ``rtl/qlayer_engine.v`` unchanged.

A depthwise layer is a GEMM whose weights are block-diagonal: output channel ``c`` only
uses the taps of input channel ``c``.  The best the output-stationary array can do is to
give each tile of COLS output channels only its own COLS input channels' taps
(``K = kh * kw * COLS`` per tile): every operand beat then carries ROWS pixels x COLS
channels x one tap, of which only the diagonal COLS x ... -- one column per tap-channel --
is useful, so at most ROWS of the ROWS * COLS MACs per cycle do useful work (1 / COLS).
This test runs exactly that (one GEMM job per channel tile, ``im2col`` rows of that
tile's channels, block-diagonal ``[COLS, kh*kw*COLS]`` weights), checks every output
against ``pymodel.ops.layers.depthwise_conv2d``, and writes the cycles to the JSON file
named by ``$QMAC_BENCH_OUT`` (``bench/bench_depthwise.py``).  Not part of ``make test``
(it measures; the engine's own tests check the GEMM path).
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

import cocotb
import numpy as np

from pymodel.arithmetic.gemm import im2col
from pymodel.ops.layers import RequantParams, depthwise_conv2d
from tb import kit
from tb.engine import EngineEnv, GemmJob

DUT = "qlayer_engine"
BENCH_ENV = "QMAC_BENCH_OUT"
SHAPE_ENV = "QMAC_BENCH_SHAPE"     # "H,W,C"


@cocotb.test()
async def test_depthwise_as_gemm(dut: Any) -> None:
    """3x3 stride-1 SAME depthwise as block-diagonal GEMMs, one per channel tile."""
    rng = kit.test_rng("test_depthwise_as_gemm", dut._log)
    h, w, c = (int(v) for v in os.environ.get(SHAPE_ENV, "16,16,32").split(","))
    env = EngineEnv(dut, rng)
    await env.start()
    cols_n = env.cols
    x = rng.integers(-128, 128, (1, h, w, c)).astype(np.int8)
    wt = rng.integers(-127, 128, (1, 3, 3, c)).astype(np.int8)
    zp = -5
    rq = RequantParams(bias=rng.integers(-4096, 4096, c), m0=rng.integers(1 << 30, 1 << 31, c),
                       shift=rng.integers(-9, 0, c), out_zero_point=3)
    expected = depthwise_conv2d(x, wt, zp, rq, 1, "same")
    cycles = load = 0
    out = np.zeros_like(expected)
    for c0 in range(0, c, cols_n):
        cs = slice(c0, min(c0 + cols_n, c))
        n = cs.stop - cs.start
        cols, (oh, ow) = im2col(x[..., cs], 3, 1, "same", pad_value=zp)      # [M, 9 * n]
        w2d = np.zeros((n, 9 * n), np.int8)
        for j in range(n):
            w2d[j, j::n] = wt[0, :, :, c0 + j].reshape(9)                    # taps of channel j
        sub = RequantParams(bias=rq.bias[cs], m0=rq.m0[cs], shift=rq.shift[cs],
                            out_zero_point=rq.out_zero_point)
        y, st = await env.run_layer(GemmJob(name=f"dw_tile{c0 // cols_n}", cols=cols,
                                            w2d=w2d, in_zero_point=zp, rq=sub))
        out[..., cs] = y.reshape(1, oh, ow, n)
        cycles += st.cycles
        load += st.load_cycles
    assert np.array_equal(out, expected), "depthwise-as-GEMM outputs differ from depthwise_conv2d"
    macs = h * w * c * 9
    dut._log.info("[qmac] depthwise on the MAC array %dx%d: %dx%dx%d 3x3: %d cycles, %d MACs, "
                  "%.2f MACs/cycle = %.1f%% of %d", env.rows, env.cols, h, w, c, cycles, macs,
                  macs / cycles, 100 * macs / (cycles * env.rows * env.cols), env.rows * env.cols)
    path = os.environ.get(BENCH_ENV)
    if path:
        with open(path, "w") as f:
            json.dump({"cycles": cycles, "load_cycles": load, "macs": macs, "rows": env.rows,
                       "cols": env.cols}, f)


def run(parameters: Mapping[str, object] | None = None, *, seed: int | None = None,
        build_dir: Any = None, waves: bool = False) -> None:
    """Build ``qlayer_engine`` (8 x 8 by default) and run the measurement."""
    from tb.test_qlayer_engine import DEFAULT_PARAMETERS, SOURCES
    params = dict(DEFAULT_PARAMETERS, **(parameters or {}))
    kit.run_testbench(toplevel=DUT, sources=kit.rtl_sources(*SOURCES),
                      test_module="tb.test_depthwise_on_array", parameters=params, seed=seed,
                      build_dir=build_dir, waves=waves, dut_name="depthwise_on_array")
