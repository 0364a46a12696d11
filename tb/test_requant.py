"""cocotb testbench of the requantize pipeline ``rtl/requant_pipeline.v`` (issue 6).

Every output lane is compared (``==``) with ``pymodel.arithmetic.fixedpoint.requantize`` evaluated
with the parameters the beat was accepted with (a write at rising edge t is seen by
beats accepted at edge t + 1 or later, see ``docs/requant.md``).  One simulation runs
the tests below in order; functional coverage accumulates over all of them and the last
test fails below 100 % of the defined bins.

* ``test_latency_throughput``  latency == LATENCY, one beat per cycle, reset values
* ``test_directed``            every shift -31..30 with exact and near ties (positive and
                               negative) at both rounding steps, including ties that
                               decide the output; acc / bias / m0
                               extremes; bias, left-shift and zero-point wraparound;
                               SRDHM saturation (m0 = INT32_MIN) at every shift;
                               act_min == act_max
* ``test_random``              >= 100,000 vectors at LANES >= 8 (whole int32 range,
                               concentrated around rounding ties), random stalls on
                               both sides in phases from none to 95 %
* ``test_params_every_cycle``  a parameter write every cycle, into the channels the
                               beats read (including the same cycle: read-first)
* ``test_reset_midstream``     reset with beats in flight: nothing stale comes out
* ``test_coverage``            prints the coverage; fails below 100 %

Rounding mode: the RTL parameter ``SINGLE_ROUNDING`` (``QMAC_TB_PARAMS``) selects the
reference (``requantize(..., rounding="single")`` for 1), the stimulus (m0 >= 0, ties of
the one rounding shift ``(x * m0 + 2^(30 - shift)) >> (31 - shift)`` at every shift) and
the coverage model (``COV``: the single rounding's tie bins instead of SRDHM's and the
divide's).  Single rounding runs 20,000 random vectors by default.

Knobs (environment): ``QMAC_REQUANT_VECTORS`` overrides the number of random vectors.
"""

from __future__ import annotations

import collections
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cocotb
import numpy as np
from cocotb.triggers import Event, RisingEdge, with_timeout
from pymodel.arithmetic import fixedpoint as fx
from tb import kit
from tb.kit.coverage import Coverage

INT32_MIN = fx.INT32_MIN
INT32_MAX = fx.INT32_MAX
LATENCY = 10                     # register stages, see rtl/requant_pipeline.v
FIELDS = ("bias", "m0", "shift", "zp", "act_min", "act_max")
WIDTHS = {"bias": 32, "m0": 32, "shift": 6, "zp": 8, "act_min": 8, "act_max": 8}
PERIOD_NS = 10


def tb_params() -> dict[str, str]:
    """The RTL parameters of this build (``QMAC_TB_PARAMS``, set by tb/kit/runner.py)."""
    return dict(kv.split("=", 1) for kv in os.environ.get("QMAC_TB_PARAMS", "").split(",") if kv)


# The rounding mode of the DUT (RTL parameter SINGLE_ROUNDING): read once, at import in
# the simulator, because the coverage model below depends on it.
SINGLE = tb_params().get("SINGLE_ROUNDING", "0") == "1"
ROUNDING = "single" if SINGLE else "double"


# ======================================================================================
# Configuration
# ======================================================================================

@dataclass(frozen=True)
class Config:
    """The DUT's parameters as this testbench sees them."""

    lanes: int
    channels: int
    tiles: int
    user_w: int
    random_vectors: int


def config(dut: Any) -> Config:
    """Read LANES / USER_W from the port widths and CHANNELS from ``QMAC_TB_PARAMS``."""
    params = tb_params()
    lanes = len(dut.in_data_i) // 32
    channels = int(params.get("CHANNELS", 64))
    user_w = len(dut.in_user_i)
    if "LANES" in params and int(params["LANES"]) != lanes:
        raise ValueError(f"QMAC_TB_PARAMS: LANES={params['LANES']} but in_data_i has "
                         f"{len(dut.in_data_i)} bits")
    tiles = channels // lanes
    if (1 << len(dut.in_tile_i)) < tiles:
        raise ValueError(f"in_tile_i: {len(dut.in_tile_i)} bits cannot address {tiles} tiles")
    env_vectors = os.environ.get("QMAC_REQUANT_VECTORS", "").strip()
    if env_vectors:
        vectors = int(env_vectors)
    elif SINGLE:
        # the second rounding mode: 20,000 vectors (its datapath differs in stages 2-6;
        # the directed set covers its ties at every shift)
        vectors = lanes * math.ceil(20_000 / lanes)
    else:
        # 100,000 vectors where lanes are wide (12,500 beats at LANES=8); at most
        # 5,000 beats otherwise, to keep the regression short (the coverage closes at
        # LANES=1 and 3 within them: checked over several seeds)
        vectors = lanes * min(math.ceil(100_000 / lanes), 5_000)
    return Config(lanes, channels, tiles, user_w, vectors)


# ======================================================================================
# Functional coverage (tb/kit/coverage.py).  Sampled per accepted vector (lane), per
# cycle (stream states) and per run of equal stream states (stall patterns).
# ======================================================================================

SHIFTS = list(range(fx.SHIFT_MIN, fx.SHIFT_MAX + 1))
# A tie is counted only where it decides the output: rounding it the other way would
# change y (a tie hidden by the clamp or by the later divide counts in no bin).
ROUND_BINS = ["deciding tie +", "deciding tie -", "no tie +", "no tie -"]
EVENT_BINS = [
    "add_bias wraps +", "add_bias wraps -", "left_shift wraps", "add_zero_point wraps",
    "SRDHM saturates (shift <= 0)", "SRDHM saturates (shift > 0)",
    "m0 = 0", "m0 = 2^31-1", "m0 = INT32_MIN", "m0 in [2^30, 2^31-1)", "m0 other",
    "acc = INT32_MIN", "acc = INT32_MAX",
    "clamped to act_min", "clamped to act_max", "inside [act_min, act_max]",
    "act_min == act_max",
]
STREAM_IN = ["transfer", "backpressure", "idle"]
STREAM_OUT = ["transfer", "stall", "idle"]
RUN_KINDS = ["in transfer", "in backpressure", "in idle", "out transfer", "out stall"]
RUN_BUCKETS = ["1", "2-3", "4-15", "16+"]
PARAM_BINS = ["params changed between back-to-back beats",
              "write to a channel read in the same cycle (read-first)"]


# Single rounding: one rounding step (p / 2^(31 - shift), ties toward +inf), no SRDHM
# saturation, m0 >= 0, and a result that can leave int32 (kept modulo 2^32).
EVENT_BINS_SINGLE = [
    "add_bias wraps +", "add_bias wraps -", "single rounding result wraps",
    "add_zero_point wraps",
    "m0 = 0", "m0 = 2^31-1", "m0 in [2^30, 2^31-1)", "m0 other",
    "acc = INT32_MIN", "acc = INT32_MAX",
    "clamped to act_min", "clamped to act_max", "inside [act_min, act_max]",
    "act_min == act_max",
]


COV = Coverage("requant_single" if SINGLE else "requant")
COV.point("vector.shift", SHIFTS)
# shifts at which results were seen strictly inside (act_min, act_max): there every
# stage's error of +-1 reaches the output
COV.point("vector.unclamped_shift", SHIFTS)
if SINGLE:
    COV.point("vector.single_round", ROUND_BINS)  # p / 2^(31-shift) tie?  sign of p
    COV.point("vector.events", EVENT_BINS_SINGLE)
    # shift -31: p = x * m0 = +2^61 (mod 2^62) needs x or m0 >= 2^31: no positive tie
    COV.cross("vector.shift_x_single_round", ["vector.shift", "vector.single_round"],
              ignore=lambda s, r: s == -31 and r == "deciding tie +")
else:
    COV.point("vector.srdhm_round", ROUND_BINS)     # p / 2^31 tie?  sign of p
    COV.point("vector.rdbp_round", ROUND_BINS)      # x3 / 2^e tie?  sign of x3 (e >= 1 only)
    COV.point("vector.events", EVENT_BINS)
    COV.cross("vector.shift_x_srdhm_round", ["vector.shift", "vector.srdhm_round"])
    # the rounding divide only exists for shift < 0
    COV.cross("vector.shift_x_rdbp_round", ["vector.shift", "vector.rdbp_round"],
              ignore=lambda s, r: s >= 0)
COV.point("stream.in", STREAM_IN)
COV.point("stream.out", STREAM_OUT)
# impossible: with in_ready_o low >= 10 beats are in flight, so >= 2 wait in the FIFO
COV.cross("stream.in_x_out", ["stream.in", "stream.out"],
          ignore=lambda i, o: (i, o) == ("backpressure", "idle"))
COV.point("stream.run_kind", RUN_KINDS)
COV.point("stream.run_length", RUN_BUCKETS)
COV.cross("stream.run_kind_x_length", ["stream.run_kind", "stream.run_length"])
COV.point("params.events", PARAM_BINS)


def _bucket(n: int) -> str:
    return "1" if n == 1 else "2-3" if n <= 3 else "4-15" if n <= 15 else "16+"


def golden_stages(acc: np.ndarray, p: np.ndarray) -> dict[str, np.ndarray]:
    """Every intermediate value of pymodel's requantize, vectorized.

    Args:
        acc: int64 [n] accumulators.
        p: int64 [6, n] parameters in FIELDS order.

    Returns:
        name -> int64 [n]: x1..x5, y (the stages), p (the SRDHM product), e (exponent).
    """
    bias, m0, shift, zp, lo, hi = p
    x1 = np.asarray(fx.add_bias(acc, bias), dtype=np.int64)
    if SINGLE:       # stages 2-6 of single rounding: x2 = x1, x3 = x4 = the one rounding
        x3 = np.asarray(fx.single_rounding_multiply(x1, m0, shift), dtype=np.int64)
        x5 = np.asarray(fx.add_zero_point(x3, zp), dtype=np.int64)
        y = np.asarray(fx.clamp(x5, lo, hi), dtype=np.int64)
        return {"x1": x1, "x2": x1, "p": x1 * m0, "x3": x3, "e": np.zeros_like(shift),
                "x4": x3, "x5": x5, "y": y}
    x2 = np.asarray(fx.left_shift(x1, shift), dtype=np.int64)
    x3 = np.asarray(fx.saturating_rounding_doubling_high_mul(x2, m0), dtype=np.int64)
    e = np.maximum(-shift, 0)
    x4 = np.asarray(fx.rounding_divide_by_pot(x3, e), dtype=np.int64)
    x5 = np.asarray(fx.add_zero_point(x4, zp), dtype=np.int64)
    y = np.asarray(fx.clamp(x5, lo, hi), dtype=np.int64)
    return {"x1": x1, "x2": x2, "p": x2 * m0, "x3": x3, "e": e, "x4": x4, "x5": x5, "y": y}


def sample_vector_coverage(acc: np.ndarray, p: np.ndarray) -> int:
    """Compute the coverage features of vectors (vectorized) and sample each one.

    Returns:
        The number of vectors sampled.
    """
    if acc.size == 0:
        return 0
    if SINGLE:
        return sample_vector_coverage_single(acc, p)
    g = golden_stages(acc, p)
    bias, m0, shift, zp, lo, hi = p
    prod = g["p"]
    srdhm_tie = (prod & ((1 << 31) - 1)) == (1 << 30)          # p / 2^31 ends in .5
    e = g["e"]
    mask = (np.int64(1) << e) - 1
    rdbp_tie = (e > 0) & ((g["x3"] & mask) == (np.int64(1) << np.maximum(e - 1, 0)))
    y = g["y"]

    def out_of(x4: np.ndarray) -> np.ndarray:
        return np.asarray(fx.clamp(fx.add_zero_point(x4, zp), lo, hi), dtype=np.int64)

    # SRDHM ties round toward +inf: the other choice is x3 - 1.  Rounding-divide ties
    # round away from zero: the other choice is one step toward zero.
    x3_other = np.maximum(g["x3"] - 1, INT32_MIN)
    srdhm_decides = srdhm_tie & (out_of(np.asarray(fx.rounding_divide_by_pot(x3_other, e),
                                                   dtype=np.int64)) != y)
    rdbp_decides = rdbp_tie & (out_of(np.where(g["x3"] >= 0, g["x4"] - 1, g["x4"] + 1)) != y)
    sat = (g["x2"] == INT32_MIN) & (m0 == INT32_MIN)
    ev = {
        "add_bias wraps +": acc + bias > INT32_MAX,
        "add_bias wraps -": acc + bias < INT32_MIN,
        "left_shift wraps": g["x2"] != g["x1"] * (np.int64(1) << np.maximum(shift, 0)),
        "add_zero_point wraps": g["x5"] != g["x4"] + zp,
        "SRDHM saturates (shift <= 0)": sat & (shift <= 0),
        "SRDHM saturates (shift > 0)": sat & (shift > 0),
        "m0 = 0": m0 == 0,
        "m0 = 2^31-1": m0 == INT32_MAX,
        "m0 = INT32_MIN": m0 == INT32_MIN,
        "m0 in [2^30, 2^31-1)": (m0 >= (1 << 30)) & (m0 < INT32_MAX),
        "m0 other": ((m0 > 0) & (m0 < (1 << 30))) | ((m0 < 0) & (m0 != INT32_MIN)),
        "acc = INT32_MIN": acc == INT32_MIN,
        "acc = INT32_MAX": acc == INT32_MAX,
        "clamped to act_min": g["x5"] < lo,
        "clamped to act_max": g["x5"] > hi,
        "inside [act_min, act_max]": (g["x5"] >= lo) & (g["x5"] <= hi),
        "act_min == act_max": lo == hi,
    }
    names = list(ev)
    ev_bits = np.stack([ev[n] for n in names], axis=1)
    srdhm_bin = np.where(srdhm_tie, np.where(srdhm_decides, 0, -2), 2) + (prod < 0)
    rdbp_bin = np.where(e == 0, -2, np.where(rdbp_tie, np.where(rdbp_decides, 0, -2), 2)
                        + (g["x3"] < 0))
    unclamped = (g["x5"] > lo) & (g["x5"] < hi)
    # Bulk sampling: count each distinct feature row once, with its multiplicity.
    table = np.concatenate([shift[:, None], srdhm_bin[:, None], rdbp_bin[:, None],
                            unclamped[:, None], ev_bits.astype(np.int64)], axis=1)
    rows, counts = np.unique(table, axis=0, return_counts=True)
    for row, count in zip(rows.tolist(), counts.tolist()):
        COV.sample(count, **{"vector.shift": row[0],
                             "vector.srdhm_round": ROUND_BINS[row[1]] if row[1] >= 0 else None,
                             "vector.rdbp_round": ROUND_BINS[row[2]] if row[2] >= 0 else None})
        if row[3]:
            COV.hit("vector.unclamped_shift", row[0], count)
        for n, bit in zip(names, row[4:]):
            if bit:
                COV.hit("vector.events", n, count)
    return int(acc.size)


def sample_vector_coverage_single(acc: np.ndarray, p: np.ndarray) -> int:
    """:func:`sample_vector_coverage` for SINGLE_ROUNDING = 1."""
    g = golden_stages(acc, p)
    bias, m0, shift, zp, lo, hi = p
    prod = g["p"]
    total = 31 - shift                                         # 1 .. 62
    tie = (prod & ((np.int64(1) << total) - 1)) == (np.int64(1) << (total - 1))
    y = g["y"]
    # ties round toward +inf: the other choice is one less
    other = np.asarray(fx.clamp(fx.add_zero_point(wrap32(g["x3"] - 1), zp), lo, hi),
                       dtype=np.int64)
    decides = tie & (other != y)
    unwrapped = (prod + (np.int64(1) << (total - 1))) >> total
    ev = {
        "add_bias wraps +": acc + bias > INT32_MAX,
        "add_bias wraps -": acc + bias < INT32_MIN,
        "single rounding result wraps": (unwrapped > INT32_MAX) | (unwrapped < INT32_MIN),
        "add_zero_point wraps": g["x5"] != g["x4"] + zp,
        "m0 = 0": m0 == 0,
        "m0 = 2^31-1": m0 == INT32_MAX,
        "m0 in [2^30, 2^31-1)": (m0 >= (1 << 30)) & (m0 < INT32_MAX),
        "m0 other": (m0 > 0) & (m0 < (1 << 30)),
        "acc = INT32_MIN": acc == INT32_MIN,
        "acc = INT32_MAX": acc == INT32_MAX,
        "clamped to act_min": g["x5"] < lo,
        "clamped to act_max": g["x5"] > hi,
        "inside [act_min, act_max]": (g["x5"] >= lo) & (g["x5"] <= hi),
        "act_min == act_max": lo == hi,
    }
    names = list(ev)
    ev_bits = np.stack([ev[n] for n in names], axis=1)
    round_bin = np.where(tie, np.where(decides, 0, -2), 2) + (prod < 0)
    unclamped = (g["x5"] > lo) & (g["x5"] < hi)
    table = np.concatenate([shift[:, None], round_bin[:, None], unclamped[:, None],
                            ev_bits.astype(np.int64)], axis=1)
    rows, counts = np.unique(table, axis=0, return_counts=True)
    for row, count in zip(rows.tolist(), counts.tolist()):
        COV.sample(count, **{"vector.shift": row[0],
                             "vector.single_round": ROUND_BINS[row[1]] if row[1] >= 0 else None})
        if row[2]:
            COV.hit("vector.unclamped_shift", row[0], count)
        for n, bit in zip(names, row[3:]):
            if bit:
                COV.hit("vector.events", n, count)
    return int(acc.size)


# ======================================================================================
# Stimulus: parameters and accumulators
# ======================================================================================

def wrap32(x: np.ndarray) -> np.ndarray:
    """Two's-complement wrap to int32 values (int64 array)."""
    return fx.wrap_int32(np.asarray(x, dtype=np.int64))


def log_uniform_int(rng: np.random.Generator, n: int, max_bits: int = 31) -> np.ndarray:
    """Signed integers whose magnitude is log-uniform over 0 .. 2^max_bits - 1."""
    bits = rng.integers(0, max_bits + 1, n)
    mag = np.floor(np.ldexp(rng.random(n), bits)).astype(np.int64)   # < 2^bits
    return np.where(rng.random(n) < 0.5, -mag, mag)


def random_params(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random per-channel parameters, int64 [6, n] in FIELDS order.

    A third are realistic (``quantize_multiplier`` of a scale in [1e-6, 5]); the rest have
    a uniform shift in -31..30, with m0 mostly in [2^30, 2^31) plus the special values
    0, 2^31-1, 2^30, INT32_MIN and arbitrary int32 patterns.  Single rounding: m0 keeps
    its low 31 bits (m0 >= 0: INT32_MIN becomes 0, arbitrary patterns non-negative).
    """
    real = rng.random(n) < 0.33
    m0_r, shift_r = fx.quantize_multiplier(10.0 ** rng.uniform(-6, 0.7, n), ROUNDING)
    shift = np.where(real, shift_r, rng.integers(fx.SHIFT_MIN, fx.SHIFT_MAX + 1, n))
    m0 = rng.integers(1 << 30, 1 << 31, n)
    r = rng.random(n)
    m0 = np.select([r < 0.04, r < 0.08, r < 0.10, r < 0.14, r < 0.20],
                   [0, INT32_MAX, INT32_MIN, 1 << 30, rng.integers(INT32_MIN, INT32_MAX + 1, n)],
                   m0)
    m0 = np.where(real, m0_r, m0)
    if SINGLE:
        m0 = m0 & INT32_MAX
    r = rng.random(n)
    bias = np.select([r < 0.45, r < 0.75, r < 0.85],
                     [log_uniform_int(rng, n, 24), rng.integers(INT32_MIN, INT32_MAX + 1, n),
                      rng.choice([INT32_MIN, INT32_MAX, 1 << 30, -(1 << 30)], n)], 0)
    zp = rng.integers(-128, 128, n)
    a, b = rng.integers(-128, 128, n), rng.integers(-128, 128, n)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    r = rng.random(n)
    lo = np.select([r < 0.45, r < 0.55, r < 0.65], [-128, zp, a], lo)
    hi = np.select([r < 0.45, r < 0.55, r < 0.65], [127, 127, a], hi)
    return np.stack([bias, m0, shift, zp, lo, hi]).astype(np.int64)


def _ctz32(m0: np.ndarray) -> np.ndarray:
    """Trailing zeros of the 32-bit pattern of m0 (32 for 0)."""
    m = np.asarray(m0, dtype=np.int64) & 0xFFFFFFFF
    low = m & -m
    return np.where(m == 0, 32, np.log2(np.maximum(low, 1)).astype(np.int64))


def srdhm_tie_x1(rng: np.random.Generator, m0: np.ndarray, shift: np.ndarray,
                 sign: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x1 values for which ``x2 * m0`` is an exact tie of SRDHM (``p mod 2^31 == 2^30``).

    With ``m0 = odd * 2^t``, ``x2 = u * 2^(30-t)`` (u odd) is a tie; for ``shift > 0``
    ``x1 = x2 >> shift`` needs ``30 - t - shift >= 0``.

    Returns:
        (x1, ok): ok is False where no tie exists for these parameters.
    """
    t = _ctz32(m0)
    s = np.maximum(shift, 0)
    ok = (t <= 30) & (30 - t - s >= 0)
    t = np.minimum(t, 30)
    umax = (np.int64(1) << (t + 1)) - 1                 # |u| <= 2^(t+1) - 1: |x2| < 2^31
    u = (np.floor(rng.random(t.size) ** 3 * umax).astype(np.int64) | 1)
    u = np.minimum(u, umax)
    x2 = np.where(sign < 0, -u, u) << (30 - t)
    x1 = x2 >> s
    return np.where(ok, x1, 0), ok


def solve_x2(x3: np.ndarray, m0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x2 with ``SRDHM(x2, m0) == x3`` (m0 > 0): search around ``x3 * 2^31 / m0``.

    Returns:
        (x2, ok).
    """
    m = np.where(m0 > 0, m0, 1)
    base = (x3 << 31) // m
    x2 = np.zeros_like(x3)
    ok = np.zeros(x3.shape, dtype=bool)
    for k in (0, 1, -1, 2, -2, 3):
        cand = np.clip(base + k, INT32_MIN, INT32_MAX)
        hit = (~ok) & (m0 > 0) & (np.asarray(
            fx.saturating_rounding_doubling_high_mul(cand, m0), dtype=np.int64) == x3)
        x2 = np.where(hit, cand, x2)
        ok |= hit
    return x2, ok


def rdbp_tie_x2(rng: np.random.Generator, m0: np.ndarray, shift: np.ndarray,
                sign: np.ndarray, delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x2 values for which ``x3 = SRDHM(x2, m0)`` is a tie of the rounding divide
    (``x3 mod 2^e == 2^(e-1)``, e = -shift), moved by ``delta`` (near ties).

    Returns:
        (x2, ok): ok is False where shift >= 0, m0 <= 0 or no such x2 exists.
    """
    e = np.clip(-shift, 1, 31)
    hi = np.maximum(np.where(m0 > 0, m0, 1) - 1, 0)     # |x3| stays reachable
    one = np.int64(1)
    # mostly small quotients x3 / 2^e (the result lands near the int8 range, where the
    # tie decides the output); a quarter anywhere in the reachable range
    k_small = np.floor(rng.random(e.size) ** 2 * 300).astype(np.int64)
    mag = np.where(rng.random(e.size) < 0.75, k_small << e,
                   np.floor(rng.random(e.size) ** 2 * (hi + 1)).astype(np.int64))
    x3 = ((mag >> e) << e) + (one << (e - 1))
    x3 = np.where(x3 > hi, x3 - (one << e), x3)
    ok = (shift < 0) & (m0 > 0) & (x3 >= 0)
    x3 = np.where(sign < 0, -x3, x3) + delta
    x2, found = solve_x2(np.where(ok, x3, 0), m0)
    return x2, ok & found


def in_range_acc(rng: np.random.Generator, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Accumulators whose result lands in or just around [act_min, act_max]: a target
    y is pulled back through add_zero_point, the divide (a random remainder), SRDHM
    (solve_x2) and the left shift.

    Returns:
        (acc, ok): ok is False where m0 <= 0 or the target is out of reach.
    """
    bias, m0, shift, zp, lo, hi = p
    n = bias.size
    e = np.maximum(-shift, 0)
    s = np.maximum(shift, 0)
    y = rng.integers(lo - 3, hi + 4)
    x4 = y - zp
    x3 = (x4 << e) + np.floor(rng.random(n) * (np.int64(1) << e)).astype(np.int64)
    ok = (m0 > 0) & (np.abs(x3) < m0)
    x2, found = solve_x2(np.where(ok, x3, 0), m0)
    x1 = np.where(x2 >= 0, (x2 + (np.int64(1) << s >> 1)) >> s, -((-x2 + (np.int64(1) << s >> 1)) >> s))
    return wrap32(x1 - bias), ok & found


def random_acc(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """Accumulators for parameters p [6, n]: uniform int32, log-uniform magnitudes,
    exact and near ties of either rounding step (both signs), int32 extremes, and
    values whose result lands in or near [act_min, act_max]."""
    if SINGLE:
        return random_acc_single(rng, p)
    bias, m0, shift = p[0], p[1], p[2]
    n = bias.size
    kind = rng.choice(6, n, p=[0.15, 0.15, 0.2, 0.2, 0.05, 0.25])
    sign = np.where(rng.random(n) < 0.5, -1, 1)
    delta = rng.choice([0, 0, 0, -1, 1, -2, 2], n)
    acc = rng.integers(INT32_MIN, INT32_MAX + 1, n)                       # kind 0
    acc = np.where(kind == 1, log_uniform_int(rng, n), acc)
    x1, ok1 = srdhm_tie_x1(rng, m0, shift, sign)
    acc = np.where((kind == 2) & ok1, wrap32(x1 + delta - bias), acc)
    x2, ok2 = rdbp_tie_x2(rng, m0, shift, sign, delta)
    acc = np.where((kind == 3) & ok2, wrap32(x2 - bias), acc)
    ext = rng.choice([INT32_MIN, INT32_MAX, 0, -1, 1, INT32_MIN + 1, INT32_MAX - 1], n)
    acc = np.where(kind == 4, ext, acc)
    acc5, ok5 = in_range_acc(rng, p)
    acc = np.where((kind == 5) & ok5, acc5, acc)
    return acc.astype(np.int64)


def single_tie_x1(rng: np.random.Generator, m0: np.ndarray, shift: np.ndarray,
                  sign: np.ndarray, umax_cap: int | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """x1 values for which ``x1 * m0`` is an exact tie of the single rounding
    (``p mod 2^T == 2^(T-1)``, ``T = 31 - shift``).

    With ``m0 = odd * 2^t``, ``x1 = u * 2^(T-1-t)`` (u odd) is a tie; it needs
    ``0 <= T-1-t`` and ``|x1| < 2^31`` (or ``x1 = -2^31``).

    Returns:
        (x1, ok).
    """
    t = np.minimum(_ctz32(m0), 31)
    k = (31 - shift) - 1 - t
    ok = (m0 > 0) & (k >= 0) & (k <= 31)
    k = np.clip(k, 0, 31)
    umax = (np.int64(1) << (31 - k)) - 1                  # |u| 2^k <= 2^31 - 2^k
    if umax_cap is not None:
        umax = np.minimum(umax, umax_cap)
    u = np.floor(rng.random(k.size) ** 3 * umax).astype(np.int64) | 1
    u = np.minimum(u, np.maximum(umax, 1))
    x1 = np.where(sign < 0, -u, u) << k
    # k = 31: only -2^31 (u = 1, negative) is an int32
    ok &= (umax >= 1) | ((k == 31) & (sign < 0))
    x1 = np.where(k == 31, np.int64(INT32_MIN), x1)
    return np.where(ok, x1, 0), ok


def random_acc_single(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """:func:`random_acc` for SINGLE_ROUNDING = 1: uniform, log-uniform, exact and near
    ties of the one rounding, extremes, and results in or near [act_min, act_max]."""
    bias, m0, shift, zp, lo, hi = p
    n = bias.size
    kind = rng.choice(5, n, p=[0.15, 0.15, 0.35, 0.05, 0.30])
    sign = np.where(rng.random(n) < 0.5, -1, 1)
    delta = rng.choice([0, 0, 0, -1, 1, -2, 2], n)
    acc = rng.integers(INT32_MIN, INT32_MAX + 1, n)                       # kind 0
    acc = np.where(kind == 1, log_uniform_int(rng, n), acc)
    x1, ok = single_tie_x1(rng, m0, shift, sign)
    acc = np.where((kind == 2) & ok, wrap32(x1 + delta - bias), acc)
    ext = rng.choice([INT32_MIN, INT32_MAX, 0, -1, 1, INT32_MIN + 1, INT32_MAX - 1], n)
    acc = np.where(kind == 3, ext, acc)
    # in range: x1 ~ ((y - zp) * 2^T + r) / m0 for a target y near [lo, hi]
    y = rng.integers(lo - 3, hi + 4)
    idx = np.flatnonzero((kind == 4) & (m0 > 0))
    for i in idx.tolist():
        t_shift = 31 - int(shift[i])
        target = (int(y[i]) - int(zp[i])) * (1 << t_shift) + int(rng.integers(0, 1 << t_shift))
        x = target // int(m0[i])
        if INT32_MIN <= x <= INT32_MAX:
            acc[i] = int(wrap32(np.int64(x) - bias[i]))
    return acc.astype(np.int64)


def directed_vectors_single(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The directed cases of SINGLE_ROUNDING = 1, each with its own parameters.

    Returns:
        (acc [n], params [6, n]), int64.
    """
    accs: list[np.ndarray] = []
    pars: list[np.ndarray] = []

    def add(acc: Any, bias: Any, m0: Any, shift: Any, zp: Any = 0, lo: Any = -128,
            hi: Any = 127) -> None:
        a = np.atleast_1d(np.asarray(acc, dtype=np.int64))
        cols = [np.broadcast_to(np.asarray(v, dtype=np.int64), (a.size,)) for v in
                (bias, m0, shift, zp, lo, hi)]
        accs.append(a)
        pars.append(np.stack(cols))

    def rnd_bias(n: int) -> np.ndarray:
        return log_uniform_int(rng, n, 31)

    for s in SHIFTS:
        total = 31 - s
        for sgn in (1, -1):
            # exact and near ties for m0 with different trailing-zero counts t
            for t in sorted({0, 1, 7, 16, 29, 30}):
                m0 = (1 << 30) if t == 30 else \
                    (1 << 30) + (2 * int(rng.integers(0, 1 << (29 - t))) + 1) * (1 << t)
                x1, ok = single_tie_x1(rng, np.array([m0]), np.array([s]), np.array([sgn]))
                if ok[0]:
                    for d in (0, 1, -1):
                        bias = rnd_bias(1)
                        add(wrap32(x1 + d - bias), bias, m0, s, rng.integers(-128, 128))
            # deciding ties: m0 = 2^t, x1 = +-u 2^(T-1-t) with small odd u: result +-u/2
            t = int(np.clip(total - 1 - 20, 0, 30))
            for u in (1, 3, 5, 101):
                k = total - 1 - t
                x1 = sgn * u * (1 << k)
                if INT32_MIN <= x1 <= INT32_MAX:
                    bias = int(rnd_bias(1)[0])
                    add(wrap32(x1 - bias), bias, 1 << t, s, int(rng.integers(-20, 21)))
        # plain random values at this shift
        add(rng.integers(INT32_MIN, INT32_MAX + 1, 4), rnd_bias(4),
            rng.integers(1 << 30, 1 << 31, 4), s, rng.integers(-128, 128, 4))

    # extremes: acc x bias x m0 x shift grid (m0 >= 0)
    accs_ext = [INT32_MIN, INT32_MAX, INT32_MIN + 1, INT32_MAX - 1, -1, 0, 1]
    biases = [0, 1, -1, INT32_MAX, INT32_MIN]
    m0s = [0, 1, 1 << 30, INT32_MAX, INT32_MAX - 1, 12345]
    for s in (-31, -16, -1, 0, 1, 30):
        for a in accs_ext:
            for b in biases:
                for m in m0s:
                    add(a, b, m, s, rng.integers(-128, 128))
    # bias overflow both ways
    k = rng.integers(1, 1 << 30, 16)
    add(INT32_MAX - k + 1, k + rng.integers(0, 1 << 20, 16), INT32_MAX, 0)
    add(INT32_MIN + k - 1, -k - rng.integers(0, 1 << 20, 16), INT32_MAX, 0)
    # m0 = 0 and m0 = 2^31-1 over all shifts; m0 below 2^30
    add(rng.integers(INT32_MIN, INT32_MAX + 1, 62), rnd_bias(62), 0, SHIFTS,
        rng.integers(-128, 128, 62))
    add(log_uniform_int(rng, 62), rnd_bias(62), INT32_MAX, SHIFTS, rng.integers(-128, 128, 62))
    add(log_uniform_int(rng, 62), rnd_bias(62), rng.integers(1, 1 << 30, 62), SHIFTS,
        rng.integers(-128, 128, 62))
    # the result leaves int32 (shift >= 1, large x * m0): kept modulo 2^32
    add(rng.integers(INT32_MIN, INT32_MAX + 1, 30), 0, rng.integers(1 << 30, 1 << 31, 30),
        np.arange(1, 31), rng.integers(-128, 128, 30))
    # add_zero_point wraps: x3 = INT32_MAX (x1 = INT32_MAX, m0 = 2^30, shift 1) + zp > 0
    add([INT32_MAX] * 3, 0, 1 << 30, 1, [1, 64, 127])
    add([INT32_MIN] * 2, 0, 1 << 30, 1, [-2, -128])
    # act_min == act_max, narrow bounds
    v = rng.integers(-128, 128, 40)
    add(log_uniform_int(rng, 40), rnd_bias(40), rng.integers(1 << 30, 1 << 31, 40),
        rng.integers(-31, 31, 40), rng.integers(-128, 128, 40), v, v)
    add(log_uniform_int(rng, 40, 12), 0, 1 << 30, rng.integers(-4, 3, 40), 0, -3, 3)

    acc = np.concatenate(accs)
    par = np.concatenate(pars, axis=1)
    assert par[2].min() >= fx.SHIFT_MIN and par[2].max() <= fx.SHIFT_MAX
    assert par[1].min() >= 0 and np.all(par[4] <= par[5])
    return acc, par


def directed_vectors(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The directed cases, each with its own parameters.

    Returns:
        (acc [n], params [6, n]), int64.
    """
    if SINGLE:
        return directed_vectors_single(rng)
    accs: list[np.ndarray] = []
    pars: list[np.ndarray] = []

    def add(acc: Any, bias: Any, m0: Any, shift: Any, zp: Any = 0, lo: Any = -128,
            hi: Any = 127) -> None:
        a = np.atleast_1d(np.asarray(acc, dtype=np.int64))
        n = a.size
        cols = [np.broadcast_to(np.asarray(v, dtype=np.int64), (n,)) for v in
                (bias, m0, shift, zp, lo, hi)]
        accs.append(a)
        pars.append(np.stack(cols))

    def rnd_bias(n: int) -> np.ndarray:
        return log_uniform_int(rng, n, 31)

    # --- every shift: exact and near ties of SRDHM, positive and negative products,
    #     for m0 with different trailing-zero counts (t), and of the rounding divide.
    for s in SHIFTS:
        for sgn in (1, -1):
            for t in sorted({0, 1, 7, 16, 29, 30, max(0, 30 - max(s, 0))}):
                if t > 30 - max(s, 0):
                    continue
                m0 = (1 << 30) if t == 30 else (1 << 30) + (2 * int(rng.integers(0, 1 << (29 - t))) + 1) * (1 << t)
                x1, ok = srdhm_tie_x1(rng, np.array([m0]), np.array([s]), np.array([sgn]))
                assert ok[0], (s, t, m0)
                for d in (0, 1, -1):
                    bias = rnd_bias(1)
                    add(wrap32(x1 + d - bias), bias, m0, s, rng.integers(-128, 128))
        if s < 0:
            e = -s
            for sgn in (1, -1):
                for m0 in ((1 << 30), INT32_MAX, int(rng.integers(1 << 30, 1 << 31))):
                    for d in (0, 1, -1):
                        x2, ok = rdbp_tie_x2(rng, np.array([m0]), np.array([s]),
                                             np.array([sgn]), np.array([d]))
                        if ok[0]:
                            bias = rnd_bias(1)
                            add(wrap32(x2 - bias), bias, m0, s, rng.integers(-128, 128))
            # largest ties: x3 = +-2^(e-1) ... +-2^30 when e = 31
            for x3 in (1 << (e - 1), -(1 << (e - 1))):
                for m0 in (INT32_MAX, 1 << 30):
                    x2, ok = solve_x2(np.array([x3]), np.array([m0]))
                    if ok[0]:
                        add(x2, 0, m0, s)
        # plain random values at this shift
        add(rng.integers(INT32_MIN, INT32_MAX + 1, 4), rnd_bias(4),
            rng.integers(1 << 30, 1 << 31, 4), s, rng.integers(-128, 128, 4))

    # --- deciding ties: ties whose other rounding changes the output (the result lands
    #     inside [-128, 127]), at every shift and both signs, for both rounding steps.
    for s in SHIFTS:
        e = max(-s, 0)
        for sgn in (1, -1):
            zp = int(rng.integers(-20, 21))
            if s >= 0:
                # m0 small and odd, x2 = +-2^30: p / 2^31 = +-m0 / 2 (a tie), x3 small
                for m0 in (1, 3, 5, 101):
                    bias = int(rnd_bias(1)[0])
                    add(wrap32(sgn * (1 << (30 - s)) - bias), bias, m0, s, zp)
                if s == 0:   # m0 = 2^30, x2 = 2 x3 - 1: a tie rounding up to x3
                    for x3 in (sgn * 7, sgn * 60, 1 - sgn):
                        add(2 * x3 - 1, 0, 1 << 30, 0, zp)
                continue
            for k in (0, 1, 2, 5, 40):
                # SRDHM tie (m0 = 2^30, x2 = 2 x3 - 1) with x3 at the residue where the
                # divide's result depends on it: 2^(e-1) for x3 > 0, 2^(e-1) + 1 for x3 < 0
                if sgn > 0:
                    x3 = k * (1 << e) + (1 << (e - 1))
                else:
                    x3 = (1 << (e - 1)) + 1 - (k + 1) * (1 << e)
                if INT32_MIN <= 2 * x3 - 1 <= INT32_MAX:
                    bias = int(rnd_bias(1)[0])
                    add(wrap32(2 * x3 - 1 - bias), bias, 1 << 30, s, zp)
                # rounding-divide tie: x3 = +-(k 2^e + 2^(e-1)) reached exactly
                x3 = sgn * (k * (1 << e) + (1 << (e - 1)))
                for m0 in (1 << 30, INT32_MAX):
                    x2, ok = solve_x2(np.array([x3]), np.array([m0]))
                    if ok[0]:
                        bias = int(rnd_bias(1)[0])
                        add(wrap32(x2 - bias), bias, m0, s, zp)
                        break

    # --- extremes: acc x bias x m0 x shift grid
    accs_ext = [INT32_MIN, INT32_MAX, INT32_MIN + 1, INT32_MAX - 1, -1, 0, 1]
    biases = [0, 1, -1, INT32_MAX, INT32_MIN]
    m0s = [0, 1, 1 << 30, INT32_MAX, INT32_MIN, INT32_MIN + 1, -1]
    for s in (-31, -16, -1, 0, 1, 30):
        for a in accs_ext:
            for b in biases:
                for m in m0s:
                    add(a, b, m, s, rng.integers(-128, 128))

    # --- bias overflow: acc + bias leaves int32 in both directions
    k = rng.integers(1, 1 << 30, 16)
    add(INT32_MAX - k + 1, k + rng.integers(0, 1 << 20, 16), INT32_MAX, 0)
    add(INT32_MIN + k - 1, -k - rng.integers(0, 1 << 20, 16), INT32_MAX, 0)
    add(rng.integers(1 << 30, INT32_MAX, 16), rng.integers(1 << 30, INT32_MAX, 16),
        rng.integers(1 << 30, 1 << 31, 16), rng.integers(-31, 31, 16))

    # --- m0 = 0 (result = clamp(zp)) and m0 = 2^31-1, over all shifts
    add(rng.integers(INT32_MIN, INT32_MAX + 1, 62), rnd_bias(62), 0, SHIFTS,
        rng.integers(-128, 128, 62))
    add(log_uniform_int(rng, 62), rnd_bias(62), INT32_MAX, SHIFTS, rng.integers(-128, 128, 62))

    # --- SRDHM saturation x2 = m0 = INT32_MIN at every shift: shift <= 0 via
    #     acc + bias = INT32_MIN, shift > 0 via x1 << shift = INT32_MIN (wraps).
    for s in SHIFTS:
        x1 = INT32_MIN if s <= 0 else -(1 << (31 - s))
        bias = int(rnd_bias(1)[0])
        add(wrap32(x1 - bias), bias, INT32_MIN, s, rng.integers(-128, 128))
        add(wrap32(x1 - bias), bias, INT32_MIN, s, 0, 127, 127)
    # saturated INT32_MAX + zp wraps to negative: add_zero_point wraps, clamps to act_min
    add([INT32_MIN] * 3, 0, INT32_MIN, 0, [1, 64, 127])
    # x3 = -2^31 + 1 and zp < 0: add_zero_point wraps the other way
    add([INT32_MIN] * 2, 0, INT32_MAX, 0, [-2, -128])
    # near-saturation neighbours
    add([INT32_MIN + 1, INT32_MIN, INT32_MIN + 1], 0, [INT32_MIN, INT32_MIN + 1, INT32_MIN + 1],
        0)

    # --- left-shift wraparound: large x1 with large shifts
    add(rng.integers(INT32_MIN, INT32_MAX + 1, 30), 0, rng.integers(1 << 30, 1 << 31, 30),
        np.arange(1, 31))

    # --- act_min == act_max, and narrow / crossed-by-data bounds
    v = rng.integers(-128, 128, 40)
    add(log_uniform_int(rng, 40), rnd_bias(40), rng.integers(1 << 30, 1 << 31, 40),
        rng.integers(-31, 31, 40), rng.integers(-128, 128, 40), v, v)
    add(log_uniform_int(rng, 40, 12), 0, 1 << 30, rng.integers(-4, 3, 40), 0, -3, 3)

    acc = np.concatenate(accs)
    par = np.concatenate(pars, axis=1)
    # the shift must stay in the contract; clamp bounds ordered
    assert par[2].min() >= fx.SHIFT_MIN and par[2].max() <= fx.SHIFT_MAX
    assert np.all(par[4] <= par[5])
    return acc, par


# ======================================================================================
# Parameter-memory write port driver with an exact shadow model
# ======================================================================================

class ParamPort:
    """Drives ``prm_*`` (one write per cycle from a queue) and models the memory.

    A write driven after edge c is sampled at edge c + 1; it is visible to beats
    accepted at edge c + 2 or later (read-first).  :meth:`lookup` returns the
    parameters a beat accepted at a given edge uses.  While idle, the data fields carry
    random garbage (the DUT must ignore them without ``prm_we_i``).
    """

    def __init__(self, dut: Any, clock: kit.ClockReset, channels: int,
                 rng: np.random.Generator) -> None:
        self.clock = clock
        self.we = dut.prm_we_i
        self.chan = dut.prm_chan_i
        self.h = {f: getattr(dut, f"prm_{f}_i") for f in FIELDS}
        self.channels = channels
        self.rng = rng
        self.queue: collections.deque[tuple[int, np.ndarray]] = collections.deque()
        self.pending: collections.deque[tuple[int, int, np.ndarray]] = collections.deque()
        self.shadow = np.zeros((len(FIELDS), channels), dtype=np.int64)
        self.known = np.zeros(channels, dtype=bool)
        self.idle = Event()
        self.idle.set()
        self.writes = 0
        self._task: Any = None

    def write(self, chan: int, values: np.ndarray) -> None:
        """Queue a write of ``values`` (6 ints, FIELDS order) to channel ``chan``."""
        if not 0 <= chan < self.channels:
            raise ValueError(f"chan: {chan} is outside 0..{self.channels - 1}")
        self.queue.append((int(chan), np.asarray(values, dtype=np.int64).copy()))
        self.idle.clear()

    def write_table(self, chans: np.ndarray, table: np.ndarray) -> None:
        """Queue writes: channel chans[i] gets table[:, i]."""
        for i, c in enumerate(np.asarray(chans).tolist()):
            self.write(c, table[:, i])

    def start(self) -> None:
        self._task = cocotb.start_soon(self._run())

    async def wait_idle(self, timeout_cycles: int = 100_000) -> None:
        """Return after the edge that sampled the last queued write."""
        while self.queue or not self.idle.is_set():
            await with_timeout(self.idle.wait(), timeout_cycles * PERIOD_NS, "ns")

    def _drive_idle(self) -> None:
        self.we.value = 0
        self.chan.value = int(self.rng.integers(0, 1 << len(self.chan)))
        for f, h in self.h.items():
            h.value = int(self.rng.integers(0, 1 << WIDTHS[f]))

    async def _run(self) -> None:
        self._drive_idle()
        while True:
            await RisingEdge(self.clock.clk)
            if self.queue:
                chan, vals = self.queue.popleft()
                self.we.value = 1
                self.chan.value = chan
                for f, v in zip(FIELDS, vals.tolist()):
                    self.h[f].value = v & ((1 << WIDTHS[f]) - 1)
                self.pending.append((self.clock.cycle() + 1, chan, vals))
                self.writes += 1
            else:
                # new garbage right after a write and then every 8th idle cycle (cheap)
                if self.we.value or (self.clock.cycle() & 7) == 0:
                    self._drive_idle()
                self.idle.set()

    def lookup(self, edge: int, chans: np.ndarray) -> tuple[np.ndarray, bool]:
        """Parameters [6, len(chans)] for a beat accepted at ``edge``, and whether a write
        to one of ``chans`` was sampled at that same edge (it must not be seen)."""
        while self.pending and self.pending[0][0] < edge:
            _, c, vals = self.pending.popleft()
            self.shadow[:, c] = vals
            self.known[c] = True
        if not self.known[chans].all():
            raise AssertionError(f"testbench: channels {chans[~self.known[chans]].tolist()} "
                                 f"used at cycle {edge} before any write")
        collide = any(e == edge and c in chans for e, c, _ in self.pending)
        return self.shadow[:, chans].copy(), collide


# ======================================================================================
# Environment: clock, drivers, scoreboard, coverage monitors
# ======================================================================================

@dataclass
class BeatRecord:
    """One accepted input beat and what it must produce (the scoreboard label)."""

    index: int
    cycle: int
    tile: int
    chans: np.ndarray
    acc: np.ndarray
    params: np.ndarray
    expected: np.ndarray
    user: int

    def __str__(self) -> str:
        return (f"beat #{self.index} (tile {self.tile} = channels {int(self.chans[0])}.."
                f"{int(self.chans[-1])}, accepted at cycle {self.cycle}, user {self.user})")


class Env:
    """Everything one test needs; :meth:`start` resets the DUT and starts the monitors."""

    def __init__(self, dut: Any, name: str) -> None:
        self.dut = dut
        self.cfg = config(dut)
        self.log = dut._log
        self.name = name
        self.rng = kit.test_rng(name, self.log)
        self.clock = kit.ClockReset(dut.clk_i, dut.rst_i, period_ns=PERIOD_NS)
        self.params = ParamPort(dut, self.clock, self.cfg.channels, self.rng)
        self.src = kit.StreamSource.from_dut(dut, self.clock, "in", ["tile", "data", "user"],
                                             rng=self.rng, on_transfer=self._accepted)
        self.sink = kit.StreamSink.from_dut(dut, self.clock, "out", ["data", "user"],
                                            rng=self.rng, on_beat=self._received)
        self.sb = kit.Scoreboard("requant out", width=8, log=self.log)
        self.records: collections.deque[BeatRecord] = collections.deque()
        # per queued beat: (presumed parameters [6, LANES], their results) or None
        self.presumed: collections.deque[tuple[np.ndarray, np.ndarray] | None] = \
            collections.deque()
        self.accepted = 0
        self.delivered = 0
        self.cov_acc: list[np.ndarray] = []
        self.cov_par: list[np.ndarray] = []
        self._prev: BeatRecord | None = None
        self.lane_chans = np.arange(self.cfg.lanes)
        self.cycles = 0
        self.zero_idle_checked = 0

    # -- set-up ----------------------------------------------------------------------
    async def start(self, *, xz_checker: bool = True) -> None:
        """Reset the DUT and start the drivers and monitors.  ``xz_checker=False`` skips
        the per-cycle X/Z check of every output (slow on wide buses; the long tests rely
        on the stream monitors, which reject X/Z on valid, ready and valid data)."""
        await self.clock.start_and_reset()
        if xz_checker:
            kit.NoXZChecker(self.clock, kit.dut_outputs(self.dut)).start()
        self.params.start()
        self.src.start()
        self.sink.start()
        cocotb.start_soon(self._monitor())

    async def load_all_channels(self) -> np.ndarray:
        """Write random parameters to every channel; returns the table [6, CHANNELS]."""
        table = random_params(self.rng, self.cfg.channels)
        self.params.write_table(np.arange(self.cfg.channels), table)
        await self.params.wait_idle()
        return table

    # -- callbacks ---------------------------------------------------------------------
    def _accepted(self, beat: kit.Beat) -> None:
        L = self.cfg.lanes
        tile = beat["tile"]
        chans = tile * L + self.lane_chans
        acc = kit.unpack(beat["data"], L, 32)
        p, collide = self.params.lookup(beat.cycle, chans)
        pre = self.presumed.popleft()
        if pre is not None and np.array_equal(pre[0], p):
            expected = pre[1]
        else:
            expected = np.asarray(fx.requantize(acc, *p, rounding=ROUNDING), dtype=np.int64)
        rec = BeatRecord(self.accepted, beat.cycle, tile, chans, acc, p, expected, beat["user"])
        self.accepted += 1
        self.sb.expect(np.append(expected, beat["user"]), rec)
        self.records.append(rec)
        self.cov_acc.append(acc)
        self.cov_par.append(p)
        events = set()
        if collide:
            events.add(PARAM_BINS[1])
        prev = self._prev
        if prev is not None and prev.cycle == beat.cycle - 1 and not np.array_equal(prev.params, p):
            events.add(PARAM_BINS[0])
        for ev in events:
            COV.hit("params.events", ev)
        self._prev = rec

    def _received(self, beat: kit.Beat) -> None:
        L = self.cfg.lanes
        actual = np.append(kit.unpack(beat["data"], L, 8), beat["user"])
        rec = self.records.popleft() if self.records else None
        self.delivered += 1
        try:
            self.sb.compare(actual, cycle=beat.cycle)
        except kit.Mismatch as exc:
            detail = self.explain(rec, actual, beat.cycle) if rec is not None else ""
            self.log.error("%s\n%s", exc, detail)
            raise kit.Mismatch(f"{exc}\n{detail}") from None

    def explain(self, rec: BeatRecord, actual: np.ndarray, cycle: int) -> str:
        """Per-lane report of a mismatching beat: lane, channel, cycles, both values,
        the inputs and every golden intermediate value."""
        L = self.cfg.lanes
        g = golden_stages(rec.acc, rec.params)
        lines = [f"{rec}; delivered at cycle {cycle} ({cycle - rec.cycle} cycles after its accept)"]
        for lane in range(L):
            if actual[lane] == rec.expected[lane]:
                continue
            b, m0, s, zp, lo, hi = (int(v) for v in rec.params[:, lane])
            lines.append(
                f"  lane {lane}, channel {int(rec.chans[lane])}: expected {int(rec.expected[lane])}, "
                f"got {int(actual[lane])}\n"
                f"    inputs: acc={int(rec.acc[lane])} bias={b} m0={m0} shift={s} zp={zp} "
                f"act_min={lo} act_max={hi}\n"
                + (f"    pymodel stages ({ROUNDING} rounding): add_bias={int(g['x1'][lane])} "
                   f"single_rounding_multiply={int(g['x3'][lane])} "
                   f"(product {int(g['p'][lane])}) " if SINGLE else
                   f"    pymodel stages: add_bias={int(g['x1'][lane])} "
                   f"left_shift={int(g['x2'][lane])} srdhm={int(g['x3'][lane])} "
                   f"(product {int(g['p'][lane])}) rounding_divide_by_pot={int(g['x4'][lane])} ")
                + f"add_zero_point={int(g['x5'][lane])} clamp={int(g['y'][lane])}")
        if actual[L] != rec.user:
            lines.append(f"  user sideband: expected {rec.user}, got {int(actual[L])}")
        return "\n".join(lines)

    async def _monitor(self) -> None:
        """Per cycle: stream-state coverage, run lengths, and out_data == 0 when idle."""
        d = self.dut
        run_kind = {"in": None, "out": None}
        run_len = {"in": 0, "out": 0}
        while True:
            await RisingEdge(self.clock.clk)
            if int(d.rst_i.value):
                run_kind = {"in": None, "out": None}
                continue
            iv, ir = int(d.in_valid_i.value), int(d.in_ready_o.value)
            ov, orr = int(d.out_valid_o.value), int(d.out_ready_i.value)
            if not ov and (self.cycles & 7) == 0:   # every 8th idle cycle (wide reads are slow)
                if int(d.out_data_o.value) or int(d.out_user_o.value):
                    raise AssertionError(f"out_data_o / out_user_o not 0 while out_valid_o is "
                                         f"low at cycle {self.clock.cycle()}")
                self.zero_idle_checked += 1
            ins = "transfer" if iv and ir else "backpressure" if iv else "idle"
            outs = "transfer" if ov and orr else "stall" if ov else "idle"
            COV.sample(**{"stream.in": ins, "stream.out": outs})
            self.cycles += 1
            for side, state in (("in", ins), ("out", outs)):
                if state != run_kind[side]:
                    kind = f"{side} {run_kind[side]}"
                    if run_kind[side] is not None and kind in RUN_KINDS:
                        COV.sample(**{"stream.run_kind": kind,
                                      "stream.run_length": _bucket(run_len[side])})
                    run_kind[side], run_len[side] = state, 0
                run_len[side] += 1

    # -- streaming -----------------------------------------------------------------------
    def send_beats(self, tiles: np.ndarray, acc: np.ndarray,
                   params: np.ndarray | None = None) -> None:
        """Queue beats: tiles [n], acc [n, LANES].

        ``params`` [6, n*LANES] are the parameters the beats are expected to meet; their
        results are computed here in one vectorized call.  At accept time the real
        parameters (the memory model's) are compared with them and the result is
        recomputed if they differ, so the check never depends on this guess.
        """
        L = self.cfg.lanes
        user_mask = (1 << self.cfg.user_w) - 1
        if params is not None:
            exp = np.asarray(fx.requantize(acc.reshape(-1), *params, rounding=ROUNDING),
                             dtype=np.int64).reshape(-1, L)
        for i, (t, row) in enumerate(zip(tiles.tolist(), acc)):
            self.src.send({"tile": t, "data": kit.pack(row, 32),
                           "user": int(self.rng.integers(0, user_mask + 1))})
            self.presumed.append(None if params is None else
                                 (params[:, i * L:(i + 1) * L], exp[i]))

    async def wait_sent(self, beats_hint: int = 0) -> None:
        """Wait until every queued beat was accepted (with a generous cycle bound)."""
        bound = (self.src.pending + beats_hint) * 200 + 2000
        await with_timeout(self.src.wait_idle(), bound * PERIOD_NS, "ns")

    async def drain(self) -> None:
        """Wait for every accepted beat's result; then the scoreboard must be empty."""
        await self.wait_sent()
        missing = self.accepted - self.delivered
        try:
            await with_timeout(self.sink.wait_for(self.sink.count + missing),
                               (missing * 200 + 200 + LATENCY) * PERIOD_NS, "ns")
        except cocotb.triggers.SimTimeoutError:
            raise AssertionError(f"{self.accepted - self.delivered} of {self.accepted} "
                                 "accepted beats never came out (lost)") from None
        # nothing extra may follow
        await self.clock.cycles(2 * LATENCY)
        if self.delivered != self.accepted:
            raise AssertionError(f"{self.delivered} beats came out for {self.accepted} accepted")
        self.sb.check_done()

    async def stream_vectors(self, acc: np.ndarray, par: np.ndarray) -> None:
        """Stream vectors that each carry their own parameters: batches of up to TILES
        beats, each batch's channels written first (one write per vector)."""
        L, T = self.cfg.lanes, self.cfg.tiles
        n = acc.size
        pad = (-n) % L
        if pad:
            acc = np.concatenate([acc, acc[:pad]])
            par = np.concatenate([par, par[:, :pad]], axis=1)
        beats = acc.size // L
        for b0 in range(0, beats, T):
            nb = min(T, beats - b0)
            tiles = self.rng.permutation(T)[:nb]
            sl = slice(b0 * L, (b0 + nb) * L)
            chans = (tiles[:, None] * L + np.arange(L)[None, :]).reshape(-1)
            self.params.write_table(chans, par[:, sl])
            await self.params.wait_idle()
            self.send_beats(tiles, acc[sl].reshape(nb, L), par[:, sl])
            await self.wait_sent(nb)

    def finish_coverage(self) -> int:
        """Sample the coverage of every accepted vector; returns how many."""
        if not self.cov_acc:
            return 0
        acc = np.concatenate(self.cov_acc)
        par = np.concatenate(self.cov_par, axis=1)
        self.cov_acc.clear()
        self.cov_par.clear()
        return sample_vector_coverage(acc, par)


# ======================================================================================
# Tests
# ======================================================================================

@cocotb.test()
async def test_latency_throughput(dut: Any) -> None:
    """Reset state, latency == LATENCY, and one beat per cycle without stalls."""
    env = Env(dut, "test_latency_throughput")
    await env.start()
    assert int(dut.out_valid_o.value) == 0, "out_valid_o high after reset"
    assert int(dut.in_ready_o.value) == 0, "in_ready_o is a register, reset to 0"
    await RisingEdge(dut.clk_i)  # the first edge out of reset raises in_ready_o
    await cocotb.triggers.ReadOnly()
    assert int(dut.in_ready_o.value) == 1, "in_ready_o low one cycle after reset"
    await RisingEdge(dut.clk_i)
    await env.load_all_channels()
    L, T = env.cfg.lanes, env.cfg.tiles
    # one beat alone: latency
    env.send_beats(np.array([0]), np.zeros((1, L), dtype=np.int64))
    await env.drain()
    latency = env.sink.first_cycle - env.src.first_cycle
    env.log.info("[qmac] latency: accepted at cycle %d, delivered at cycle %d: %d cycles",
                 env.src.first_cycle, env.sink.first_cycle, latency)
    assert latency == LATENCY, f"latency {latency} cycles, documented {LATENCY}"
    # 200 beats back to back, no stalls: 200 consecutive transfers on both sides
    env.src.reset_stats()
    env.sink.reset_stats()
    n = 200
    tiles = env.rng.integers(0, T, n)
    env.send_beats(tiles, random_acc(env.rng, np.repeat(np.zeros((6, 1), np.int64), n * L, 1)
                                     ).reshape(n, L))
    await env.drain()
    in_span = env.src.last_cycle - env.src.first_cycle + 1
    out_span = env.sink.last_cycle - env.sink.first_cycle + 1
    env.log.info("[qmac] throughput: %d beats accepted in %d cycles, delivered in %d cycles",
                 n, in_span, out_span)
    assert in_span == n, f"{n} beats took {in_span} cycles to enter (expected {n})"
    assert out_span == n, f"{n} beats took {out_span} cycles to leave (expected {n})"
    assert env.sink.first_cycle - env.src.first_cycle == LATENCY
    env.finish_coverage()


@cocotb.test()
async def test_directed(dut: Any) -> None:
    """Directed vectors (see directed_vectors), each with its own parameters, light
    random stalls on both sides."""
    env = Env(dut, "test_directed")
    await env.start()
    env.src.stall_prob = 0.2
    env.sink.stall_prob = 0.2
    acc, par = directed_vectors(env.rng)
    await env.stream_vectors(acc, par)
    await env.drain()
    n = env.finish_coverage()
    env.log.info("[qmac] directed: %d vectors (%d beats) matched pymodel exactly",
                 acc.size, env.accepted)
    assert n >= acc.size


# (source stall probability, sink stall probability, share of the random beats, minimum
# beats).  The heavy-stall phases always run >= 100 beats: that makes runs of 16+ idle /
# stalled / back-pressured cycles certain (a miss has probability < 1e-9), whatever the
# vector count.
STALL_PHASES = [(0.0, 0.0, 0.25, 0), (0.2, 0.2, 0.25, 0), (0.5, 0.0, 0.1, 0),
                (0.0, 0.5, 0.1, 0), (0.5, 0.5, 0.1, 0), (0.0, 0.8, 0.1, 0),
                (0.9, 0.0, 0.02, 100), (0.0, 0.95, 0.02, 100), (0.3, 0.7, 0.06, 0)]


@cocotb.test()
async def test_random(dut: Any) -> None:
    """Random vectors (cfg.random_vectors) over random per-channel parameters, rewritten
    between batches; stall phases from none to 95 % on either side."""
    env = Env(dut, "test_random")
    await env.start()
    cfg = env.cfg
    L, T = cfg.lanes, cfg.tiles
    table = await env.load_all_channels()
    total_beats = math.ceil(cfg.random_vectors / L)
    batch = max(8, 4 * T)
    plan = [max(min_beats, math.ceil(total_beats * share))
            for _, _, share, min_beats in STALL_PHASES]
    # the minimums may push the sum above the total: take the excess off the first
    # (no-stall) phase, keeping one batch
    plan[0] = max(batch, plan[0] - max(0, sum(plan) - total_beats))
    for (src_p, sink_p, _, _), phase_beats in zip(STALL_PHASES, plan):
        env.src.stall_prob, env.sink.stall_prob = src_p, sink_p
        sent = 0
        while sent < phase_beats:
            # rewrite a few channels (the beats of this batch use the new values)
            k = int(env.rng.integers(0, L + 1))
            chans = env.rng.choice(cfg.channels, size=k, replace=False)
            new = random_params(env.rng, k)
            table[:, chans] = new
            env.params.write_table(chans, new)
            await env.params.wait_idle()
            nb = min(batch, phase_beats - sent)
            tiles = env.rng.integers(0, T, nb)
            chan_of = (tiles[:, None] * L + np.arange(L)[None, :]).reshape(-1)
            acc = random_acc(env.rng, table[:, chan_of]).reshape(nb, L)
            env.send_beats(tiles, acc, table[:, chan_of])
            await env.wait_sent(nb)
            sent += nb
    await env.drain()
    n = env.finish_coverage()
    env.log.info("[qmac] random: %d vectors (%d beats, %d parameter writes, %d cycles) "
                 "matched pymodel exactly", n, env.accepted, env.params.writes, env.cycles)
    assert n >= cfg.random_vectors


@cocotb.test()
async def test_params_every_cycle(dut: Any) -> None:
    """A parameter write on every cycle while beats stream, into the channels the beats
    read: each beat must use the parameters of its accept edge (read-first)."""
    env = Env(dut, "test_params_every_cycle")
    await env.start()
    cfg = env.cfg
    L, T = cfg.lanes, cfg.tiles
    table = await env.load_all_channels()
    n = 600
    writes = n + 50
    chans = env.rng.integers(0, cfg.channels, writes)
    new = random_params(env.rng, writes)
    env.params.write_table(chans, new)
    for i, c in enumerate(chans.tolist()):
        table[:, c] = new[:, i]
    env.src.stall_prob, env.sink.stall_prob = 0.1, 0.1
    tiles = env.rng.integers(0, T, n)
    chan_of = (tiles[:, None] * L + np.arange(L)[None, :]).reshape(-1)
    env.send_beats(tiles, random_acc(env.rng, table[:, chan_of]).reshape(n, L))
    await env.drain()
    await env.params.wait_idle()
    n_vec = env.finish_coverage()
    env.log.info("[qmac] params every cycle: %d vectors, %d writes, all exact",
                 n_vec, env.params.writes)


@cocotb.test()
async def test_reset_midstream(dut: Any) -> None:
    """Reset with beats in the pipeline and the FIFO: afterwards out_valid_o stays low,
    in_ready_o returns, and new beats come out right (the parameter memory keeps its
    contents through reset)."""
    env = Env(dut, "test_reset_midstream")
    await env.start()
    L, T = env.cfg.lanes, env.cfg.tiles
    table = await env.load_all_channels()
    env.sink.stall_prob = 0.7
    n = 60
    tiles = env.rng.integers(0, T, n)
    chan_of = (tiles[:, None] * L + np.arange(L)[None, :]).reshape(-1)
    env.send_beats(tiles, random_acc(env.rng, table[:, chan_of]).reshape(n, L))
    await env.clock.cycles(25)
    # stop the drivers between edges (after every monitor has seen the last edge)
    await cocotb.triggers.FallingEdge(dut.clk_i)
    env.src.stop()
    env.src.clear()
    env.presumed.clear()
    env.sink.stop()
    in_flight = env.accepted - env.sink.count
    env.log.info("[qmac] reset with %d beats in flight", in_flight)
    assert in_flight > 0, "the test meant to reset with beats in flight"
    await env.clock.reset(2)
    env.sb.clear()
    env.records.clear()
    env.cov_acc.clear()
    env.cov_par.clear()
    env.accepted = env.delivered = 0
    env.src.reset_stats()
    env.sink.reset_stats()
    env._prev = None
    for _ in range(3 * LATENCY):
        await RisingEdge(dut.clk_i)
        assert int(dut.out_valid_o.value) == 0, "a beat from before the reset came out"
    assert int(dut.in_ready_o.value) == 1
    env.sink.stall_prob = 0.2
    env.src.start()
    env.sink.start()
    tiles = env.rng.integers(0, T, n)
    chan_of = (tiles[:, None] * L + np.arange(L)[None, :]).reshape(-1)
    env.send_beats(tiles, random_acc(env.rng, table[:, chan_of]).reshape(n, L))
    await env.drain()
    env.finish_coverage()


@cocotb.test()
async def test_coverage(dut: Any) -> None:
    """Print the functional coverage of the tests above; fail below 100 %."""
    log = dut._log
    log.info("[qmac] %s", COV.report())
    assert COV.complete, (f"functional coverage {COV.percent:.2f} % < 100 %; uncovered bins:\n  "
                          + "\n  ".join(COV.missing()[:80]))


# ======================================================================================
# Host side
# ======================================================================================

def run(parameters: dict[str, object] | None = None, *, waves: bool = False,
        seed: int | None = None, build_dir: str | Path | None = None,
        testcase: str | list[str] | None = None) -> Path:
    """Build ``requant_pipeline`` with ``parameters`` and run the tests above.

    Args:
        parameters: RTL parameter overrides (``LANES``, ``CHANNELS``, ``USER_W``,
            ``SINGLE_ROUNDING``); the RTL defaults otherwise (LANES=8, CHANNELS=64,
            USER_W=1, SINGLE_ROUNDING=0).
        waves: dump ``<build dir>/requant_pipeline.fst`` (see ``sim/requant.gtkw``).
        seed: simulation seed (default: derived from ``QMAC_SEED``).
        build_dir: default ``sim/build/requant-<parameters>/``.
        testcase: run only these tests (the coverage test needs all the others).

    Returns:
        The cocotb results file.
    """
    return kit.run_testbench(toplevel="requant_pipeline", sources=kit.rtl_sources("requant_*.v"),
                             test_module="tb.test_requant", parameters=parameters, waves=waves,
                             seed=seed, build_dir=build_dir, testcase=testcase,
                             dut_name="requant")


if __name__ == "__main__":
    run()
