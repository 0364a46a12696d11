"""Calibration speed: each calibrator over 10^7 samples, beside baselines from the same run.

For every method: the time to stream 10^7 float64 samples (10 batches of 10^6) through
``update`` plus the final ``compute_range``.  Baselines measured on the same data:

* ``np.min`` + ``np.max`` per batch -- the least any streaming calibrator must do;
* ``np.histogram`` with 2048 bins per batch -- numpy's own binning;
* the entropy search alone: vectorized (:func:`pymodel.calibration.calibrators.kl_divergences`) vs
  the loop written from TensorRT's description (:mod:`pymodel.calibration.kl_reference`) on the
  same 2048-bin histogram -- and they pick the same bin.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from pymodel.calibration.calibrators import (CalibratorSpec, Calibrator, entropy_threshold_bins,
                                 kl_divergences)
from pymodel.calibration.kl_reference import entropy_threshold_bins_loop

SAMPLES = 10_000_000
BATCHES = 10
METHODS = ("minmax", "ema", "percentile:99.99", "entropy", "mse")


def _time(fn: Callable[[], object], repeat: int = 1) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    rng = np.random.default_rng(0)
    data = [rng.normal(size=SAMPLES // BATCHES) for _ in range(BATCHES)]
    print(f"{SAMPLES:.0e} float64 samples N(0, 1) in {BATCHES} batches "
          f"({SAMPLES * 8 / 1e6:.0f} MB); best of 2 runs")

    def minmax_baseline() -> tuple[float, float]:
        return min(float(b.min()) for b in data), max(float(b.max()) for b in data)

    def histogram_baseline() -> np.ndarray:
        amax = max(float(np.abs(b).max()) for b in data)
        return sum(np.histogram(np.abs(b), bins=2048, range=(0.0, amax))[0] for b in data)

    t_mm, _ = _time(minmax_baseline, 2)
    t_hist, _ = _time(histogram_baseline, 2)
    print(f"\n{'method':22s} {'time (s)':>9s} {'Msamples/s':>11s} {'vs np.min+max':>14s} "
          f"{'state (bytes)':>14s}  range")
    print(f"{'baseline np.min+max':22s} {t_mm:9.3f} {SAMPLES / t_mm / 1e6:11.1f} {1.0:13.1f}x "
          f"{'-':>14s}")
    print(f"{'baseline np.histogram':22s} {t_hist:9.3f} {SAMPLES / t_hist / 1e6:11.1f} "
          f"{t_hist / t_mm:13.1f}x {'-':>14s}")
    for m in METHODS:
        def run() -> Calibrator:
            cal = Calibrator(CalibratorSpec.parse(m))
            for b in data:
                cal.update(b)
            cal.compute_range()
            return cal

        t, cal = _time(run, 2)
        r = cal.compute_range()  # type: ignore[union-attr]
        st = cal.stats  # type: ignore[union-attr]
        state = 8 * 8 + (st.hist.fine_counts.nbytes if st.hist is not None else 0)
        print(f"{m:22s} {t:9.3f} {SAMPLES / t / 1e6:11.1f} {t / t_mm:13.1f}x {state:14d}  "
              f"[{r.rmin:.3f}, {r.rmax:.3f}]")

    cal = Calibrator(CalibratorSpec("entropy"))
    for b in data:
        cal.update(b)
    counts = cal.stats.hist.counts  # type: ignore[union-attr]
    t_vec, i_vec = _time(lambda: entropy_threshold_bins(counts, 128), 3)
    t_loop, i_loop = _time(lambda: entropy_threshold_bins_loop(counts, 128), 1)
    t_kl, _ = _time(lambda: kl_divergences(counts, 128), 3)
    print(f"\nentropy search over the 1921 candidates of one 2048-bin histogram:")
    print(f"  vectorized  {1e3 * t_vec:9.1f} ms  -> bin {i_vec}   (divergences alone "
          f"{1e3 * t_kl:.1f} ms)")
    print(f"  loop (ref.) {1e3 * t_loop:9.1f} ms  -> bin {i_loop}   speed-up "
          f"{t_loop / t_vec:.0f}x; same bin: {i_vec == i_loop}")


if __name__ == "__main__":
    main()
