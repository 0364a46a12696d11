"""cocotb testbench of ``rtl/qlayer_engine.v`` -- a whole quantized GEMM layer.

Every output beat is compared exactly (``==``) with ``pymodel.ops.layers.quantized_gemm``
by the kit's scoreboard (via :class:`tb.engine.EngineEnv`); no output may be X/Z after
reset; the output stream must obey the AXI-Stream rules under back-pressure.

``run()`` builds and runs this module (``tests/test_rtl_qlayer_engine.py``,
``python -m tb.run --test qlayer_engine``).
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import cocotb
import numpy as np

from pymodel.ops.layers import RequantParams
from tb import kit
from tb.engine import EngineEnv, GemmJob

DUT = "qlayer_engine"
DEFAULT_PARAMETERS = {"ROWS": 8, "COLS": 8, "A_DEPTH": 64, "W_DEPTH": 2048, "N_TILES_MAX": 8}
SOURCES = ("qlayer_engine.v", "mac_*.v", "requant_*.v")


def random_rq(rng: np.random.Generator, n: int, *, extreme: bool = False) -> RequantParams:
    """Random requantize parameters for ``n`` channels (realistic, or the contract's edges)."""
    if extreme:
        m0 = rng.choice([0, 1 << 30, (1 << 31) - 1], n)
        shift = rng.choice([-31, -20, -1, 0, 1, 30], n)
        bias = rng.choice([-(1 << 31), -1, 0, (1 << 31) - 1], n)
    else:
        m0 = rng.integers(1 << 30, 1 << 31, n)
        shift = rng.integers(-14, 2, n)
        bias = rng.integers(-(1 << 16), 1 << 16, n)
    lo, hi = sorted(int(v) for v in rng.integers(-128, 128, 2))
    if rng.random() < 0.5:
        lo, hi = -128, 127
    return RequantParams(bias=bias, m0=m0, shift=shift, out_zero_point=int(rng.integers(-128, 128)),
                         act_min=lo, act_max=hi)


def random_job(rng: np.random.Generator, env: EngineEnv, name: str) -> GemmJob:
    """A random layer that fits the engine: odd sizes, K chunks, partial tiles, INT4 or INT8."""
    n_tiles = int(rng.integers(1, env.n_tiles_max + 1))
    n = int(rng.integers(max(1, (n_tiles - 1) * env.cols + 1), n_tiles * env.cols + 1))
    k_max = min(3 * env.a_depth + 5, env.w_depth // n_tiles)
    k = int(rng.integers(1, k_max + 1))
    m = int(rng.integers(1, 3 * env.rows + 2))
    q = 7 if rng.random() < 0.3 else 127
    k_tile = int(rng.integers(1, env.a_depth + 1)) if rng.random() < 0.7 else None
    return GemmJob(name=name, cols=rng.integers(-128, 128, (m, k)).astype(np.int8),
                   w2d=rng.integers(-q, q + 1, (n, k)).astype(np.int8),
                   in_zero_point=int(rng.integers(-128, 128)), rq=random_rq(rng, n),
                   k_tile=k_tile)


@cocotb.test()
async def test_random_layers(dut: Any) -> None:
    """Random layers back to back, with random stalls on both streams."""
    rng = kit.test_rng("test_random_layers", dut._log)
    env = EngineEnv(dut, rng, in_stall=0.2, out_stall=0.2)
    await env.start()
    for i in range(6):
        env.src.stall_prob, env.sink.stall_prob = rng.choice([0.0, 0.1, 0.5], 2)
        job = random_job(rng, env, f"random{i}")
        _, st = await env.run(job)
        dut._log.info("[qmac] %s: M=%d K=%d N=%d k_tile=%s: %d cycles, %d array beats",
                      job.name, job.m, job.k, job.n, job.k_tile, st.cycles, st.array_beats)


@cocotb.test()
async def test_extremes(dut: Any) -> None:
    """-128 x -128 over a long K (accumulators near 2^30, chunked), the contract's edge
    parameters, all-zero and single-non-zero operands."""
    rng = kit.test_rng("test_extremes", dut._log)
    env = EngineEnv(dut, rng, out_stall=0.3)
    await env.start()
    r, c = env.rows, env.cols
    k = min(env.w_depth, 4 * env.a_depth + 3)
    cases = [
        ("all_minus128", np.full((r, k), -128, np.int8), np.full((c, k), -128, np.int8)),
        ("alternating", np.where(np.indices((r + 1, k)).sum(0) % 2, 127, -128).astype(np.int8),
         np.where(np.indices((c, k)).sum(0) % 2, -128, 127).astype(np.int8)),
        ("zeros", np.zeros((r, k), np.int8), np.zeros((c, k), np.int8)),
    ]
    single = np.zeros((r, k), np.int8)
    single[r // 2, k // 3] = -128
    cases.append(("single_nonzero", single, np.full((c, k), -128, np.int8)))
    for name, a, w in cases:
        for extreme in (False, True):
            rq = random_rq(rng, w.shape[0], extreme=extreme)
            await env.run(GemmJob(name=f"{name}{'_edge' if extreme else ''}", cols=a, w2d=w,
                                  in_zero_point=0, rq=rq, check_bound=not extreme))


@cocotb.test()
async def test_reset_midway(dut: Any) -> None:
    """Reset in the middle of a layer, then a clean layer run checks out."""
    rng = kit.test_rng("test_reset_midway", dut._log)
    env = EngineEnv(dut, rng)
    await env.start()
    job = random_job(rng, env, "interrupted")
    await env.load(job)
    env.queue(job)
    await env.clock.cycles(int(rng.integers(3, 3 + job.k)))
    await env.reset()
    await env.run(random_job(rng, env, "after_reset"))


@cocotb.test()
async def test_channel_groups(dut: Any) -> None:
    """Layers too wide for the engine run as groups of output channels (too many channel
    tiles; too many weight words), stitched back together exactly."""
    from pymodel.ops.layers import quantized_gemm
    rng = kit.test_rng("test_channel_groups", dut._log)
    env = EngineEnv(dut, rng, out_stall=0.2)
    await env.start()
    wide = env.n_tiles_max * env.cols + 3                     # more channels than tiles
    deep = env.w_depth // 2 + 1                              # two tiles overflow W_DEPTH
    for name, k, n in (("wide", 5, wide), ("deep", deep, 2 * env.cols)):
        m = 2 * env.rows + 1
        job = GemmJob(name=name, cols=rng.integers(-128, 128, (m, k)).astype(np.int8),
                      w2d=rng.integers(-127, 128, (n, k)).astype(np.int8),
                      in_zero_point=int(rng.integers(-128, 128)), rq=random_rq(rng, n))
        groups = env.channel_groups(job)
        assert len(groups) >= 2, f"{name}: expected a split, got {len(groups)} group(s)"
        out, _ = await env.run_layer(job)
        expected = quantized_gemm(job.cols, job.w2d, job.in_zero_point, job.rq)
        assert np.array_equal(out, expected), f"{name}: stitched outputs differ"


@cocotb.test()
async def test_one_tap_chunks(dut: Any) -> None:
    """Chunks of one tap over a single channel tile: successive MAC-array tiles add to the
    same accumulator word back to back (with ROWS = 1, the word just written is the next
    one read: the accumulator RAM's write-to-read bypass)."""
    rng = kit.test_rng("test_one_tap_chunks", dut._log)
    env = EngineEnv(dut, rng)
    await env.start()
    for k in (2, 3, min(9, env.w_depth)):
        n = int(rng.integers(1, env.cols + 1))
        await env.run(GemmJob(name=f"one_tap_k{k}",
                              cols=rng.integers(-128, 128, (2 * env.rows, k)).astype(np.int8),
                              w2d=rng.integers(-127, 128, (n, k)).astype(np.int8),
                              in_zero_point=int(rng.integers(-128, 128)), rq=random_rq(rng, n),
                              k_tile=1))


@cocotb.test()
async def test_throughput(dut: Any) -> None:
    """Back-to-back row blocks without stalls: cycles and utilization of a conv-like layer."""
    rng = kit.test_rng("test_throughput", dut._log)
    env = EngineEnv(dut, rng)
    await env.start()
    k = min(env.a_depth, env.w_depth // 2)
    job = GemmJob(name="throughput", cols=rng.integers(-128, 128, (8 * env.rows, k)).astype(np.int8),
                  w2d=rng.integers(-127, 128, (2 * env.cols, k)).astype(np.int8),
                  in_zero_point=-3, rq=random_rq(rng, 2 * env.cols))
    _, st = await env.run(job)
    dut._log.info("[qmac] throughput M=%d K=%d N=%d: %d cycles, utilization %.1f%%, array "
                  "occupancy %.1f%%", job.m, job.k, job.n, st.cycles, 100 * st.utilization,
                  100 * st.array_occupancy)
    assert st.array_beats == 8 * 2 * k, "every operand beat must reach the array exactly once"


def run(parameters: Mapping[str, object] | None = None, *, waves: bool = False,
        seed: int | None = None, build_dir: Any = None, testcase: Any = None) -> None:
    """Build ``qlayer_engine`` with ``parameters`` and run this module's tests."""
    params = dict(DEFAULT_PARAMETERS, **(parameters or {}))
    kit.run_testbench(toplevel=DUT, sources=kit.rtl_sources(*SOURCES),
                      test_module="tb.test_qlayer_engine", parameters=params, waves=waves,
                      seed=seed, build_dir=build_dir, testcase=testcase)
