"""The digits CNN: PTQ accuracy acceptance and the shipped artifacts."""

from __future__ import annotations

import numpy as np
import pytest

from pymodel import datasets

from pymodel.training import digits

from pymodel.graph import inference

from pymodel.quantization import ptq
from pymodel.study.accuracy import ACCEPT_DROP_PP, CALIBRATORS, choose_mixed_bits, evaluate
from pymodel.graph.artifact import load_artifact
from pymodel.calibration.calibrators import CalibratorSpec


@pytest.fixture(scope="module")
def setup():
    net = digits.load()
    cal, te = datasets.digits("calib"), datasets.digits("test")
    stats = ptq.collect_stats(net, datasets.batches(cal.x, 32))
    return net, cal, te, stats


def test_split_is_fixed_and_disjoint():
    parts = [datasets.digits(s) for s in ("train", "calib", "test")]
    assert [len(p) for p in parts] == [1077, 180, 540]
    # every image of the 1797 appears in exactly one split (compare pixel rows)
    rows = np.concatenate([p.x.reshape(len(p), -1) for p in parts])
    assert rows.shape[0] == 1797
    assert np.bincount(np.concatenate([p.y for p in parts]), minlength=10).min() > 150


def test_int8_per_channel_loses_at_most_half_a_point(setup):
    """Acceptance: the best INT8 per-channel configuration -- and the one chosen on the
    calibration set alone -- lose <= 0.5 percentage points of test accuracy vs FP32."""
    net, cal, te, stats = setup
    f_test, f_cal = net.forward(te.x), net.forward(cal.x)
    fp32 = float(np.mean(f_test.argmax(axis=1) == te.y))
    assert fp32 > 0.97                                     # the float model is sound
    test_acc, cal_sqnr = {}, {}
    for c in CALIBRATORS:
        q = ptq.quantize_network(net.with_overrides(calibrator=CalibratorSpec.parse(c),
                                                    granularity="per_channel", weight_bits=8),
                                 stats)
        test_acc[c] = evaluate(q, te.x, te.y, f_test).accuracy
        cal_sqnr[c] = evaluate(q, cal.x, cal.y, f_cal).sqnr_db
    best = max(test_acc.values())
    chosen = max(CALIBRATORS, key=lambda c: (cal_sqnr[c], -CALIBRATORS.index(c)))
    print({c: round(100 * a, 2) for c, a in test_acc.items()}, "chosen:", chosen)
    assert 100 * (fp32 - best) <= ACCEPT_DROP_PP
    assert 100 * (fp32 - test_acc[chosen]) <= ACCEPT_DROP_PP


def test_shipped_artifacts_are_up_to_date(setup):
    """The shipped artifacts are exactly what the quantizer produces today from the
    shipped float weights (integer arrays compared with ==)."""
    net, _, te, stats = setup
    for path in (digits.INT8_ARTIFACT, digits.MIXED_ARTIFACT):
        shipped = load_artifact(path)
        first = next(q for q in shipped.layers if q.has_weights)
        bits = {q.name: q.weight_bits for q in shipped.layers if q.has_weights}
        again = ptq.quantize_network(
            net.with_overrides(calibrator=CalibratorSpec.parse(first.output.calibrator),
                               granularity=first.weight_granularity, layer_weight_bits=bits),
            stats)
        for a, b in zip(shipped.layers, again.layers):
            assert (a.output.zero_point, a.act_min, a.act_max) == \
                (b.output.zero_point, b.act_min, b.act_max), (path.name, a.name)
            for k, arr in a.arrays().items():
                if arr.dtype != np.float64:
                    assert np.array_equal(arr, b.arrays()[k]), (path.name, k)
        pred = inference.predict(shipped, te.x)
        assert np.array_equal(pred, inference.predict(again, te.x))


def test_shipped_mixed_artifact_is_within_budget():
    mixed = load_artifact(digits.MIXED_ARTIFACT)
    assert mixed.weight_bits_average() <= 6.0
    assert {q.weight_bits for q in mixed.layers if q.has_weights} == {4, 8}
    for q in mixed.layers:
        if q.has_weights and q.weight_bits == 4:
            assert int(np.abs(q.weight.astype(np.int16)).max()) <= 7


def test_choose_mixed_bits_greedy_then_restore():
    # least sensitive first: a (small), b (small), c (large).  Greedy takes a, b, c; c
    # alone meets the budget, so b then a get INT8 back.
    bits, log = choose_mixed_bits([("a", 100), ("b", 100), ("c", 800)], budget=6.0)
    assert bits == {"a": 8, "b": 8, "c": 4}
    assert len(log) == 5
    bits, _ = choose_mixed_bits([("c", 800), ("a", 100), ("b", 100)], budget=6.0)
    assert bits == {"a": 8, "b": 8, "c": 4}
    bits, _ = choose_mixed_bits([("a", 500), ("b", 500)], budget=6.0)
    assert bits == {"a": 4, "b": 8}                          # exactly 6.0: within budget
    bits, _ = choose_mixed_bits([("a", 500), ("b", 500)], budget=3.0)
    assert bits == {"a": 4, "b": 4}                          # unreachable: all INT4
