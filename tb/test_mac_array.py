"""cocotb testbench of ``rtl/mac_array.v`` -- the ROWS x COLS INT8 MAC array.

Every result row the DUT emits is compared exactly (``==``) with
``pymodel.arithmetic.gemm.matmul_int32`` of the same operands by the kit's scoreboard; every
test also checks that no output is X/Z after reset and that the result stream obeys
the AXI-Stream rules under back-pressure.

How a GEMM ``C[M, N] = A[M, K] @ B[K, N]`` is fed: ``C`` is cut into ROWS x COLS tiles
(``A`` / ``B`` zero-padded at the edges); a tile is K operand beats, beat k carrying
``A[m0:m0+ROWS, k]`` and ``B[k, n0:n0+COLS]``, ``first`` on k = 0 and ``last`` on
k = K-1.  A tile may also be split along K into chunks (``last`` on each chunk's final
beat, ``first`` only on the tile's first beat): each chunk end emits the partial sum
over ``k < k_end``, which is what the layer engine does when K exceeds a buffer.

``run()`` builds and runs this module (called by ``tests/test_rtl_mac_array.py``,
``python -m tb.run --test mac_array`` and ``bench/bench_mac_array.py``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import cocotb
import numpy as np

from pymodel.arithmetic.gemm import matmul_int32
from tb import kit

DUT = "mac_array"
DEFAULT_PARAMETERS = {"ROWS": 8, "COLS": 8}
BENCH_ENV = "QMAC_MAC_BENCH_JSON"  # if set: test_throughput writes its figures here
BENCH_K_ENV = "QMAC_MAC_BENCH_K"   # if set: comma-separated K values for test_throughput


# ----------------------------------------------------------------------------------------
# Environment: clock, operand source, result sink, scoreboard, X/Z checker
# ----------------------------------------------------------------------------------------

def _param(dut: Any, name: str) -> int:
    """A top-level parameter of the DUT as elaborated."""
    return int(getattr(dut, name).value)


@dataclass
class TileJob:
    """One tile's beats and the expected result of each chunk (for the scoreboard)."""

    beats: list[dict[str, int]]
    expected: list[tuple[np.ndarray, str]] = field(default_factory=list)


class MacEnv:
    """Everything a mac_array test drives and checks.

    Args:
        dut: the cocotb handle of ``mac_array``.
        rng: the test's numpy Generator (stalls and garbage are drawn from it too).
        in_stall: probability of an idle cycle before each operand beat.
        out_stall: probability that ``res_ready_i`` is low in a cycle.
    """

    def __init__(self, dut: Any, rng: np.random.Generator, *, in_stall: float = 0.0,
                 out_stall: float = 0.0) -> None:
        self.dut = dut
        self.rng = rng
        self.rows = _param(dut, "ROWS")
        self.cols = _param(dut, "COLS")
        self.clock = kit.ClockReset(dut.clk_i, dut.rst_i, period_ns=10)
        self.sb = kit.Scoreboard("res", width=32, log=dut._log)
        self.src = kit.StreamSource.from_dut(dut, self.clock, "op", ["a", "b", "first", "last"],
                                             stall_prob=in_stall, rng=rng)
        self.sink = kit.StreamSink.from_dut(dut, self.clock, "res", ["data", "last"],
                                            stall_prob=out_stall, rng=rng, on_beat=self._on_beat)
        self.sink.keep_beats = False
        self.xz = kit.NoXZChecker(self.clock, kit.dut_outputs(dut))
        self.expected_beats = 0
        self.tile_cycles: list[int] = []  # cycle of each tile's final result row

    def _on_beat(self, beat: kit.Beat) -> None:
        self.sb.compare(kit.unpack(beat["data"], self.cols, 32), cycle=beat.cycle,
                        last=beat["last"])
        if beat["last"]:
            self.tile_cycles.append(beat.cycle)

    def set_stalls(self, in_stall: float, out_stall: float) -> None:
        """Change the stall probabilities (takes effect from the next cycle)."""
        self.src.stall_prob = in_stall
        self.sink.stall_prob = out_stall

    async def start(self) -> None:
        """Clock, idle operand stream, reset, then the sink and the X/Z checker."""
        self.dut.res_ready_i.value = 0
        self.clock.start()
        self.src.start()
        await self.clock.reset(3)
        self.sink.start()
        self.xz.start()

    async def reset_midway(self, cycles: int = 2) -> None:
        """Synchronous reset in the middle of traffic: in-flight beats and results drop."""
        self.src.stop()
        self.src.clear()
        self.sink.stop()
        await self.clock.reset(cycles)
        self.sb.clear()
        self.expected_beats = self.sink.count
        self.src.start()
        self.sink.start()

    # -- stimulus -------------------------------------------------------------------
    def tile_job(self, a: np.ndarray, b: np.ndarray, label: str, *, splits: tuple[int, ...] = (),
                 first: bool = True) -> TileJob:
        """Beats of one tile and its expected results.

        Args:
            a: int8 ``[ROWS, K]`` (rows of A, padded).
            b: int8 ``[K, COLS]``.
            label: names the tile in mismatch reports.
            splits: K indices (0 < s < K) after which a chunk ends (``last`` there, too).
            first: set ``first`` on beat 0 (else the tile adds onto the previous sums;
                only meaningful right after reset, where a fresh sum starts anyway).
        """
        rows, k = a.shape
        assert rows == self.rows and b.shape == (k, self.cols) and k >= 1
        abuf = np.ascontiguousarray(a.T, dtype=np.int8).tobytes()
        bbuf = np.ascontiguousarray(b, dtype=np.int8).tobytes()
        ends = sorted(set(splits) | {k})
        r, c = self.rows, self.cols
        lasts = {e - 1 for e in ends}
        beats = [{"a": int.from_bytes(abuf[i * r:(i + 1) * r], "little"),
                  "b": int.from_bytes(bbuf[i * c:(i + 1) * c], "little"),
                  "first": int(first and i == 0), "last": int(i in lasts)} for i in range(k)]
        job = TileJob(beats)
        for e in ends:
            what = f"{label}, k 0..{e - 1} of {k}" if len(ends) > 1 else f"{label}, K={k}"
            job.expected.append((matmul_int32(a[:, :e], b[:e, :]), what))
        return job

    def gemm_jobs(self, a: np.ndarray, b: np.ndarray, label: str,
                  split_prob: float = 0.0) -> list[TileJob]:
        """Tile ``a @ b`` (zero-padded) into ROWS x COLS tiles, row-major over tiles."""
        m, k = a.shape
        n = b.shape[1]
        r, c = self.rows, self.cols
        mp, np_ = -(-m // r) * r, -(-n // c) * c
        ap = np.zeros((mp, k), np.int8)
        ap[:m] = a
        bp = np.zeros((k, np_), np.int8)
        bp[:, :n] = b
        jobs = []
        for t, (m0, n0) in enumerate((m0, n0) for m0 in range(0, mp, r) for n0 in range(0, np_, c)):
            splits: tuple[int, ...] = ()
            if k >= 2 and self.rng.random() < split_prob:
                nsplit = int(self.rng.integers(1, min(3, k - 1) + 1))
                splits = tuple(sorted(self.rng.choice(np.arange(1, k), nsplit, replace=False).tolist()))
            jobs.append(self.tile_job(ap[m0:m0 + r], bp[:, n0:n0 + c],
                                      f"{label} tile {t} (m0={m0}, n0={n0})", splits=splits))
        return jobs

    def submit(self, jobs: list[TileJob]) -> None:
        """Queue the jobs' beats and expectations."""
        for job in jobs:
            for exp, what in job.expected:
                self.sb.expect(exp, what)
                self.expected_beats += exp.shape[0]
            self.src.send_many(job.beats)

    async def drain(self, stuck_cycles: int = 4096) -> None:
        """Wait until every queued beat went in and every expected row came out.

        Fails (naming the first missing result row) if neither stream moves for
        ``stuck_cycles`` cycles -- a lost beat would otherwise just hang the test.
        """
        step = 64
        progress = (self.src.count, self.sink.count)
        quiet = 0
        while self.src.pending or self.sink.count < self.expected_beats:
            await self.clock.cycles(step)
            now = (self.src.count, self.sink.count)
            quiet = 0 if now != progress else quiet + step
            progress = now
            if quiet >= stuck_cycles:
                self.sb.check_done()  # raises, naming the first missing row
                raise AssertionError(f"stuck for {quiet} cycles with {self.src.pending} operand "
                                     "beats unsent (the array never became ready)")

    async def run_gemm(self, a: np.ndarray, b: np.ndarray, label: str,
                       split_prob: float = 0.0) -> None:
        """Feed one GEMM, wait for all of its results (checked as they arrive)."""
        self.submit(self.gemm_jobs(a, b, label, split_prob))
        await self.drain()

    def finish(self) -> None:
        """End-of-test checks: scoreboard empty and clean, X/Z checker ran."""
        self.sb.check_done()
        assert self.xz.edges_checked > 0, "the X/Z checker never ran"
        self.dut._log.info("[qmac] X/Z check: %d edges after reset, all outputs 0/1",
                           self.xz.edges_checked)


def rand_int8(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform int8 in [-128, 127]."""
    return rng.integers(-128, 128, size=shape, dtype=np.int64).astype(np.int8)


def odd_k(rng: np.random.Generator, lo: int, hi: int) -> int:
    """A K in [lo, hi] that is no multiple of 2, 3, 5 or 7 (if one exists), e.g. 37."""
    cands = [k for k in range(lo, hi + 1) if all(k % p for p in (2, 3, 5, 7))]
    return int(rng.choice(cands)) if cands else int(rng.integers(lo, hi + 1))


# Register stages between a PE's operand registers and its accumulator: the multiplier
# register prod_q of mac_pe (docs/microarchitecture.md).  Every latency below has it.
PIPE = 1


def pair_cycles(rows: int, cols: int, k: int) -> int:
    """Cycles per two tiles of ``k`` beats streamed back to back, no stalls (steady state).

    ``max(2K, 2*ROWS, ROWS + COLS + PIPE + 1)``: a tile is K operand beats; its ROWS
    result rows leave one per cycle; and, the shadow registers having two banks, tile t+2's
    last beat is accepted at the earliest one edge after tile t's final row left, which is
    ROWS + COLS + PIPE + 1 edges after tile t's last beat (docs/microarchitecture.md).
    """
    return max(2 * k, 2 * rows, rows + cols + PIPE + 1)


def stream_cycles(rows: int, cols: int, k: int, n: int) -> int:
    """Cycles of ``n`` tiles of ``k`` beats streamed back to back, no stalls.

    Counted from the edge accepting the first operand beat to the edge delivering the
    last result row, inclusive: the first tile takes ``K + ROWS + COLS + PIPE``; the second
    one's final row follows ``max(K, ROWS)`` edges after the first one's, and each further
    tile's ``pair_cycles`` after the tile two before it.  For K >= ROWS and
    2K >= ROWS + COLS + PIPE + 1 this is ``n * K + ROWS + COLS + PIPE``.
    """
    assert n >= 1 and k >= 1
    pairs, odd = divmod(n - 1, 2)
    return k + rows + cols + PIPE + pairs * pair_cycles(rows, cols, k) + odd * max(k, rows)


# ----------------------------------------------------------------------------------------
# Tests
# ----------------------------------------------------------------------------------------

@cocotb.test(timeout_time=20, timeout_unit="ms")
async def test_random_gemms(dut: Any) -> None:
    """Random GEMMs of random M, N, K with random stalls and K-splits; K = 1 included."""
    rng = kit.test_rng("test_random_gemms", dut._log)
    env = MacEnv(dut, rng)
    await env.start()
    r, c = env.rows, env.cols
    stalls = [(0.0, 0.0), (0.3, 0.0), (0.0, 0.5), (0.5, 0.5), (0.2, 0.8), (0.8, 0.2)]
    ks = [1, odd_k(rng, 11, 61), int(rng.integers(2, 3 * (r + c) + 3)), 1,
          odd_k(rng, 2, r + c + 2), int(rng.integers(r + c, 4 * (r + c)))]
    for g, (k, (p_in, p_out)) in enumerate(zip(ks, stalls)):
        m = int(rng.integers(1, 2 * r + 2))
        n = int(rng.integers(1, 2 * c + 2))
        a, b = rand_int8(rng, (m, k)), rand_int8(rng, (k, n))
        env.set_stalls(p_in, p_out)
        dut._log.info("gemm %d: M=%d N=%d K=%d, stall in %.1f / out %.1f", g, m, n, k, p_in, p_out)
        await env.run_gemm(a, b, f"gemm {g} (M={m}, N={n}, K={k})", split_prob=0.3)
    env.finish()


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def test_directed_extremes(dut: Any) -> None:
    """-128 x -128 everywhere, alternating signs, 127 x -128, all zeros, a single non-zero."""
    rng = kit.test_rng("test_directed_extremes", dut._log)
    env = MacEnv(dut, rng, in_stall=0.2, out_stall=0.3)
    await env.start()
    r, c = env.rows, env.cols
    m, n, k = r + 1, c + 1, odd_k(rng, 20, 70)
    ii = np.arange(m)[:, None] + np.arange(k)[None, :]
    kk = np.arange(k)[:, None] + np.arange(n)[None, :]
    single_a = np.zeros((m, k), np.int8)
    single_b = np.zeros((k, n), np.int8)
    pos = (int(rng.integers(m)), int(rng.integers(k)), int(rng.integers(n)))
    single_a[pos[0], pos[1]] = -128
    single_b[pos[1], pos[2]] = int(rng.choice([-128, 127, -1, 1]))
    cases = {
        "all -128 x -128": (np.full((m, k), -128, np.int8), np.full((k, n), -128, np.int8)),
        "all 127 x -128": (np.full((m, k), 127, np.int8), np.full((k, n), -128, np.int8)),
        "alternating signs": (np.where(ii % 2, -128, 127).astype(np.int8),
                              np.where(kk % 2, 127, -128).astype(np.int8)),
        "checkerboard -128/+127 x -1/+1": (np.where(ii % 2, -128, 127).astype(np.int8),
                                           np.where(kk % 3, -1, 1).astype(np.int8)),
        "all zeros": (np.zeros((m, k), np.int8), np.zeros((k, n), np.int8)),
        f"single non-zero at a[{pos[0]},{pos[1]}], b[{pos[1]},{pos[2]}]": (single_a, single_b),
        "zeros after -128 (clear check)": (np.zeros((m, k), np.int8), np.zeros((k, n), np.int8)),
    }
    # Run -128 first and zeros right after, so a missing clear would show as leftovers.
    order = ["all -128 x -128", "all zeros", "alternating signs", "all 127 x -128",
             "checkerboard -128/+127 x -1/+1", next(x for x in cases if x.startswith("single")),
             "zeros after -128 (clear check)"]
    for name in order:
        a, b = cases[name]
        await env.run_gemm(a, b, f"'{name}' (M={m}, N={n}, K={k})")
    # K = 1 extremes: a single product per element.
    await env.run_gemm(np.full((r, 1), -128, np.int8), np.full((1, c), -128, np.int8),
                       "'-128 x -128, K=1'")
    env.finish()


@cocotb.test(timeout_time=60, timeout_unit="ms")
async def test_big_k_int32_bound(dut: Any) -> None:
    """K ~ 2^17: the -128 x -128 sums pass 2^31 and wrap; -128 x 127 sums come within
    0.8% of -2^31 without wrapping.  A K-split just below 2^17 checks the partial sum
    2^31 - 16384 * d (d small) on the way."""
    rng = kit.test_rng("test_big_k_int32_bound", dut._log)
    env = MacEnv(dut, rng)
    await env.start()
    r, c = env.rows, env.cols
    k1 = (1 << 17) - int(rng.integers(1, 1000))   # partial sum just below 2^31
    k = (1 << 17) + int(rng.integers(1, 1000))    # full sum wraps past 2^31
    # Row / column patterns: 0 -> all -128, 1 -> all 127, 2 -> random extremes.
    def pattern(idx: int, length: int) -> np.ndarray:
        kind = idx % 3
        if kind == 0:
            return np.full(length, -128, np.int8)
        if kind == 1:
            return np.full(length, 127, np.int8)
        return rng.choice(np.array([-128, 127, -127, 0, 1, -1], np.int8), size=length,
                          p=[0.45, 0.45, 0.04, 0.02, 0.02, 0.02])
    a = np.stack([pattern(i, k) for i in range(r)])
    b = np.stack([pattern(j, k) for j in range(c)], axis=1)
    job = env.tile_job(a, b, f"big-K tile (K={k}, split at {k1})", splits=(k1,))
    full = job.expected[-1][0]
    part = job.expected[0][0]
    dut._log.info("big K=%d: C[0][0] partial %d (2^31 - %d), full %d (wrapped)",
                  k, part[0, 0], (1 << 31) - int(part[0, 0]), full[0, 0])
    assert part[0, 0] == (k1 * 16384) and full[0, 0] == k * 16384 - (1 << 32)
    env.submit([job])
    await env.drain()
    env.finish()


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def test_backpressure_stress(dut: Any) -> None:
    """Short tiles (K = 1..3) against a mostly stalled result stream: the array must
    hold a tile's last beat (op_ready_o low) while two earlier tiles' results wait."""
    rng = kit.test_rng("test_backpressure_stress", dut._log)
    env = MacEnv(dut, rng, in_stall=0.0, out_stall=0.85)
    await env.start()
    r, c = env.rows, env.cols
    blocked = 0

    async def count_blocked() -> None:
        nonlocal blocked
        while True:
            await cocotb.triggers.RisingEdge(dut.clk_i)
            if dut.op_valid_i.value == 1 and dut.op_ready_o.value == 0:
                blocked += 1

    watcher = cocotb.start_soon(count_blocked())
    jobs = []
    for t in range(12):
        k = int(rng.integers(1, 4))
        jobs.append(env.tile_job(rand_int8(rng, (r, k)), rand_int8(rng, (k, c)),
                                 f"short tile {t} (K={k})"))
    env.submit(jobs)
    await env.drain()
    env.set_stalls(0.6, 0.6)  # and once more with stalls on both sides
    env.submit([env.tile_job(rand_int8(rng, (r, 2)), rand_int8(rng, (2, c)), f"tile {t}")
                for t in range(6)])
    await env.drain()
    watcher.cancel()
    dut._log.info("op_ready_o was low under a valid beat on %d cycles", blocked)
    assert blocked > 0, "back-pressure never reached the operand stream: test too weak"
    env.finish()


@cocotb.test(timeout_time=40, timeout_unit="ms")
async def test_two_bank_stress(dut: Any) -> None:
    """Short tiles (K = 1, 2, ROWS-1, ROWS, ROWS+1, ROWS+COLS, some split into chunks)
    keep arriving while the result sink stalls for long stretches: both shadow banks
    fill, the next last beat waits, and every row still arrives once, in order, with the
    right values (a third tile captured over a bank still draining would show up as a
    mismatch, or as a stalled row changing under the sink).  At every edge, at most two
    tiles are pending (last beat accepted, final row not yet out), and a last beat is
    refused exactly while two are."""
    rng = kit.test_rng("test_two_bank_stress", dut._log)
    env = MacEnv(dut, rng, in_stall=0.0, out_stall=0.9)
    await env.start()
    r, c = env.rows, env.cols
    pending, most, blocked, refused_at_two = 0, 0, 0, 0

    async def watch() -> None:
        nonlocal pending, most, blocked, refused_at_two
        while True:
            await cocotb.triggers.RisingEdge(dut.clk_i)
            if dut.rst_i.value == 1:
                pending = 0
                continue
            offered_last = dut.op_valid_i.value == 1 and dut.op_last_i.value == 1
            took_last = offered_last and dut.op_ready_o.value == 1
            done = (dut.res_valid_o.value == 1 and dut.res_ready_i.value == 1
                    and dut.res_last_o.value == 1)
            if offered_last and not took_last:
                blocked += 1
                refused_at_two += pending == 2
            assert not (took_last and pending >= 2), \
                f"cycle {env.clock.cycle()}: a last beat was accepted with {pending} tiles pending"
            pending += int(took_last) - int(done)
            assert 0 <= pending <= 2, f"cycle {env.clock.cycle()}: {pending} tiles pending"
            most = max(most, pending)

    async def vary_sink() -> None:
        # Long stalls (ready ~ 2% of the cycles) alternate with short free-running spells,
        # so the banks fill up and drain back to back, over and over.
        while True:
            env.sink.stall_prob = float(rng.choice([0.98, 0.9, 0.6, 0.0]))
            await env.clock.cycles(int(rng.integers(5, 60)))

    watcher = cocotb.start_soon(watch())
    varier = cocotb.start_soon(vary_sink())
    ks = sorted({k for k in (1, 2, r - 1, r, r + 1, r + c) if k >= 1})
    jobs = []
    for t in range(60):
        k = int(rng.choice(ks))
        splits: tuple[int, ...] = ()
        if k >= 2 and rng.random() < 0.25:
            splits = (int(rng.integers(1, k)),)
        jobs.append(env.tile_job(rand_int8(rng, (r, k)), rand_int8(rng, (k, c)),
                                 f"short tile {t} (K={k}, splits {splits})", splits=splits))
    env.submit(jobs)
    await env.drain()
    varier.cancel()
    env.set_stalls(0.0, 0.0)
    watcher.cancel()
    dut._log.info("two-bank stress: %d tiles, up to %d pending; a last beat waited on %d "
                  "cycles (%d of them with two tiles pending)", len(jobs), most, blocked,
                  refused_at_two)
    assert most == 2, f"never two tiles pending (max {most}): test too weak"
    assert refused_at_two > 0, "a last beat never waited on two pending tiles: test too weak"
    assert refused_at_two == blocked, \
        f"a last beat was refused on {blocked - refused_at_two} cycles with fewer than two tiles pending"
    env.finish()


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def test_reset_mid_tile(dut: Any) -> None:
    """Reset in the middle of a tile (and once more while results are draining), then a
    clean run; the first tile after reset carries no ``first`` flag (fresh sums anyway)."""
    rng = kit.test_rng("test_reset_mid_tile", dut._log)
    env = MacEnv(dut, rng, in_stall=0.3, out_stall=0.3)
    await env.start()
    r, c = env.rows, env.cols
    for attempt, (p_out, when) in enumerate([(0.3, "operands"), (0.95, "results")]):
        env.set_stalls(0.3, p_out)
        k = odd_k(rng, 20, 60)
        env.submit(env.gemm_jobs(rand_int8(rng, (2 * r, k)), rand_int8(rng, (k, c)),
                                 f"interrupted gemm {attempt}"))
        # Operands: reset within the first tile.  Results: after the first tile's last
        # beat, while its rows trickle out through a mostly stalled sink.
        wait = int(rng.integers(3, k)) if when == "operands" else k + r + c + 4
        await env.clock.cycles(wait)
        dut._log.info("reset %d (during %s) at cycle %d", attempt, when, env.clock.cycle())
        await env.reset_midway(int(rng.integers(1, 4)))
        assert dut.res_valid_o.value == 0, "res_valid_o high right after reset"
        env.set_stalls(0.2, 0.2)
        # Fresh sums without a first flag right after reset, then a normal GEMM.
        k2 = odd_k(rng, 5, 40)
        env.submit([env.tile_job(rand_int8(rng, (r, k2)), rand_int8(rng, (k2, c)),
                                 f"post-reset tile {attempt} without first", first=False)])
        m, n = int(rng.integers(1, 2 * r + 2)), int(rng.integers(1, 2 * c + 2))
        env.submit(env.gemm_jobs(rand_int8(rng, (m, k2)), rand_int8(rng, (k2, n)),
                                 f"post-reset gemm {attempt} (M={m}, N={n}, K={k2})"))
        await env.drain()
    env.finish()


@cocotb.test(timeout_time=40, timeout_unit="ms")
async def test_throughput(dut: Any) -> None:
    """MAC utilization of back-to-back tiles (no stalls) against one tile at a time.

    utilization = useful MACs / (ROWS * COLS * cycles), cycles counted from the edge
    that accepts the first operand beat to the edge that delivers the last result row,
    inclusive.  The streamed count must equal the documented formula exactly
    (``stream_cycles``: ``n * K + ROWS + COLS + PIPE`` for long tiles; two tiles per
    ``max(2K, 2*ROWS, ROWS + COLS + PIPE + 1)`` cycles in general), and so must the gap
    between the final rows of every two tiles (docs/microarchitecture.md).  The default
    K values cover short tiles (1, 2, ROWS-1, ROWS, ROWS+1, ROWS+COLS) and long ones.
    """
    rng = kit.test_rng("test_throughput", dut._log)
    env = MacEnv(dut, rng)
    await env.start()
    r, c = env.rows, env.cols
    ks = [int(x) for x in os.environ.get(BENCH_K_ENV, "").split(",") if x.strip()] or \
        sorted({k for k in (1, 2, r - 1, r, r + 1, r + c, r + c + 1, 64, 256) if k >= 1})
    n_tiles = 8
    figures = []
    for k in ks:
        jobs = [env.tile_job(rand_int8(rng, (r, k)), rand_int8(rng, (k, c)), f"K={k} tile {t}")
                for t in range(n_tiles)]
        # Back-to-back stream.
        await env.clock.cycles(2)
        env.src.reset_stats()
        env.sink.reset_stats()
        env.expected_beats = 0
        env.tile_cycles.clear()
        env.submit(jobs)
        await env.drain()
        streamed = env.sink.last_cycle - env.src.first_cycle + 1
        done = list(env.tile_cycles)  # cycle of each tile's final row
        # Baseline: the same tiles one at a time, each issued after the previous result.
        await env.clock.cycles(2)
        env.src.reset_stats()
        env.sink.reset_stats()
        env.expected_beats = 0
        for job in jobs:
            env.submit([job])
            await env.src.wait_idle()  # event-driven: the next tile follows at once
            await env.sink.wait_for(env.expected_beats)
        serial = env.sink.last_cycle - env.src.first_cycle + 1
        macs = n_tiles * k * r * c
        fig = {"rows": r, "cols": c, "k": k, "tiles": n_tiles,
               "streamed_cycles": streamed, "streamed_util": macs / (r * c * streamed),
               "serial_cycles": serial, "serial_util": macs / (r * c * serial),
               # steady state: cycles per tile over the last whole pairs of tiles
               "tile_period": ((done[-1] - done[(n_tiles - 1) % 2]) / (n_tiles - 1 - (n_tiles - 1) % 2)
                               if n_tiles >= 3 else None),
               "formula_cycles": stream_cycles(r, c, k, n_tiles),
               "formula_period": pair_cycles(r, c, k) / 2,
               "formula_single": k / (k + r + c + PIPE)}
        figures.append(fig)
        dut._log.info("[qmac] %dx%d K=%d, %d tiles: streamed %d cycles (%.1f%% MAC utilization, "
                      "one tile per %s cycles); one at a time %d cycles (%.1f%%)", r, c, k,
                      n_tiles, streamed, 100 * fig["streamed_util"], fig["tile_period"],
                      serial, 100 * fig["serial_util"])
        assert len(done) == n_tiles, done
        assert streamed == fig["formula_cycles"], \
            f"K={k}: {streamed} cycles, the documented formula says {fig['formula_cycles']}"
        if k >= r and 2 * k >= r + c + PIPE + 1:
            assert streamed == n_tiles * k + r + c + PIPE  # one tile per K cycles
        gaps = np.diff(done).tolist()
        assert gaps[0] == max(k, r), f"K={k}: final rows of tiles 0, 1 at {done[:2]}"
        pairs = [done[t + 2] - done[t] for t in range(n_tiles - 2)]
        assert all(p == pair_cycles(r, c, k) for p in pairs), \
            f"K={k}: cycles per two tiles {pairs}, the formula says {pair_cycles(r, c, k)}"
    env.finish()
    out = os.environ.get(BENCH_ENV)
    if out:
        path = Path(out)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(figures, indent=1))
        tmp.replace(path)


# ----------------------------------------------------------------------------------------
# Runner
# ----------------------------------------------------------------------------------------

def run(parameters: Mapping[str, int] | None = None, *, waves: bool = False,
        seed: int | None = None, build_dir: Path | str | None = None,
        testcase: str | list[str] | None = None) -> Path:
    """Build ``mac_array`` with ``parameters`` and run this module's cocotb tests.

    Args:
        parameters: ``{"ROWS": r, "COLS": c}`` (default 8 x 8).
        waves: dump ``sim/build/mac_array-ROWS<r>_COLS<c>/mac_array.fst``
            (open with ``gtkwave <that file> sim/mac_array.gtkw``).
        seed: simulation seed (default: derived from ``QMAC_SEED``).
        build_dir: default ``sim/build/mac_array-ROWS<r>_COLS<c>``.
        testcase: run only these tests (names of the coroutines above).

    Returns:
        The cocotb results XML.

    Raises:
        tb.kit.TestbenchFailed: a test failed.
    """
    params = dict(DEFAULT_PARAMETERS)
    params.update(parameters or {})
    return kit.run_testbench(toplevel=DUT, sources=kit.rtl_sources("mac_*.v"),
                             test_module="tb.test_mac_array", parameters=params, waves=waves,
                             seed=seed, build_dir=build_dir, testcase=testcase)
