"""``entropy:onnxruntime``: onnxruntime's entropy calibration on the split-invariant
histogram (pymodel.calibration.kl_onnxruntime).

* On onnxruntime's own histogram, onnxruntime's window is a minimum of the vectorized
  divergences up to onnxruntime's float32 rounding (where candidates differ by less, the
  two can pick different ones: that is noise, not a different divergence).
* Through the calibrator (our fine counts moved onto onnxruntime's grid,
  :func:`pymodel.calibration.calibrators.onnxruntime_grid`) the range is onnxruntime's
  (data in one batch there, in 7 here) within one bin, on fixed data.
* The default (TensorRT) entropy calibrator is unchanged.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from pymodel.calibration.calibrators import Calibrator, CalibratorSpec
from pymodel.calibration.kl_onnxruntime import (entropy_window_onnxruntime,
                                                kl_divergences_onnxruntime)

BINS = 256          # ours per side; onnxruntime: 2 * BINS over [-max|x|, max|x|]


def _data(kind: str) -> np.ndarray:
    """Fixed data (seed 0): the pinned thresholds below are onnxruntime's answers on it."""
    rng = np.random.default_rng(0)
    x = {"normal": lambda: rng.normal(size=200000),
         "relu_t3": lambda: np.maximum(0.5 * rng.standard_t(3, 200000), 0),
         "laplace_shifted": lambda: rng.laplace(size=200000) + 0.7,
         "cubed": lambda: rng.normal(size=50000) ** 3}[kind]()
    return x.astype(np.float32)


def _ort(x: np.ndarray, num_bins: int, nq: int):  # type: ignore[no-untyped-def]
    from onnxruntime.quantization.calibrate import HistogramCollector
    col = HistogramCollector(method="entropy", symmetric=False, num_bins=num_bins,
                             num_quantized_bins=nq, percentile=99.999, scenario="same")
    with contextlib.redirect_stdout(io.StringIO()):
        col.collect({"x": x})
        lo, hi = col.compute_collection_result()["x"][:2]
    return float(lo), float(hi), col.histogram_dict["x"]


@pytest.mark.parametrize("kind", ["normal", "relu_t3", "laplace_shifted", "cubed"])
def test_matches_onnxruntime(kind):
    x = _data(kind)
    lo_o, hi_o, (hist, edges, xmin, xmax, _) = _ort(x, 2 * BINS, 256)
    z = hist.size // 2
    # 1. onnxruntime's histogram, our search: onnxruntime's window is a minimum of our
    #    divergences up to onnxruntime's float32 rounding (its sums carry ~1e-7)
    cands, kl = kl_divergences_onnxruntime(hist, 256)
    lo_c = np.maximum(edges[z - cands], xmin)
    hi_c = np.minimum(edges[np.minimum(z + cands + 1, 2 * z)], xmax)
    theirs = (lo_c == lo_o) & (hi_c == hi_o)           # the window(s) giving its range
    assert theirs.any()
    assert kl[theirs].min() <= kl.min() + 2e-6
    # 2. the calibrator on our split-invariant histogram, in 7 batches: onnxruntime's
    #    range within one bin
    cal = Calibrator(CalibratorSpec.parse("entropy:onnxruntime"), bins=BINS)
    for part in np.array_split(x, 7):
        cal.update(part)
    r = cal.compute_range()
    w = float(max(abs(xmin), abs(xmax))) / BINS
    print(f"{kind}: ours [{r.rmin:.4f}, {r.rmax:.4f}] onnxruntime [{lo_o:.4f}, {hi_o:.4f}] "
          f"bin {w:.4g}")
    assert abs(r.rmax - hi_o) <= w and abs(r.rmin - lo_o) <= w


def test_default_entropy_unchanged_and_spec_forms():
    x = np.maximum(0.5 * np.random.default_rng(0).standard_t(3, 200000), 0).astype(np.float32)
    a, b = Calibrator(CalibratorSpec("entropy")), Calibrator(CalibratorSpec.parse("entropy"))
    a.update(x)
    b.update(x)
    assert a.stats.hist.neg_fine_counts is None            # no sign counts by default
    assert a.compute_range() == b.compute_range()
    spec = CalibratorSpec.parse("entropy(onnxruntime)")
    assert spec.label == "entropy(onnxruntime)" and spec.divergence == "onnxruntime"
    assert CalibratorSpec.parse(spec.to_config()) == spec
    with pytest.raises(ValueError, match="divergence"):
        CalibratorSpec.parse({"method": "mse", "divergence": "onnxruntime"})
    with pytest.raises(ValueError, match="entropy:kl"):
        CalibratorSpec.parse("entropy:kl")


def test_needs_signs_for_data_of_both_signs():
    """Statistics without sign counts (e.g. collected by another calibrator) serve
    non-negative data; data of both signs is refused with the tensor's name."""
    from pymodel.calibration.calibrators import TensorStats, calibrated_range
    st = TensorStats("conv1", bins=BINS)
    st.update(np.array([-1.0, 0.5, 2.0]))
    with pytest.raises(ValueError, match="conv1.*signs"):
        calibrated_range(st, CalibratorSpec.parse("entropy:onnxruntime"))
    st2 = TensorStats("relu", bins=BINS)
    st2.update(np.abs(np.random.default_rng(1).normal(size=5000)))
    r = calibrated_range(st2, CalibratorSpec.parse("entropy:onnxruntime"))
    assert r.rmin == st2.min and 0 < r.rmax <= st2.max


def test_all_zero_q_is_infinite():
    """A histogram whose mass sits in the remainder bins only: Q empty, divergence inf."""
    h = np.zeros(8, np.int64)
    h[7] = 5
    cands, kl = kl_divergences_onnxruntime(h, 6)
    assert cands.tolist() == [3, 4] and np.isinf(kl[0])


def test_quantize_collects_signs_for_onnxruntime_entropy(tmp_path):
    """PTQ keeps the histogram's signs when a tensor's calibrator is entropy:onnxruntime,
    so ``qmac quantize --calibrator entropy:onnxruntime`` calibrates fc2 (logits of both
    signs) instead of refusing it; with another calibrator no sign counts are kept."""
    from pymodel.quantization import ptq
    from pymodel.training import digits

    net = digits.load()
    assert all(s.hist.neg_fine_counts is None for s in ptq.new_stats(net).values() if s.hist)
    from pymodel.cli import main
    with contextlib.redirect_stdout(io.StringIO()) as out:
        rc = main(["quantize", "models/digits/digits_cnn.yaml", "--calibrator",
                   "entropy:onnxruntime", "--images", "32", "--no-progress",
                   "--out", str(tmp_path / "d")])
    assert rc in (0, None), out.getvalue()
    text = out.getvalue()
    assert "fc2" in text and "by entropy(onnxruntime)" in text, text
