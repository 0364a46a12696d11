"""Whole-network runs on the RTL accelerator top, through AXI (tb/test_network.py): the shipped INT8
digits CNN, the mixed INT4/INT8 one and the W4A8 one after quantization-aware training,
a few images each.  Every layer's output must equal the golden model's, and so must the
predictions.  The same images then run through the Verilator bulk harness (tb/bulk.py, the
bare layer engine), which must produce the same predictions and the same MAC-array
figures."""

from __future__ import annotations

import pytest

from tb import test_network

ARTIFACTS = ["digits_cnn_int8.yaml", "digits_cnn_mixed.yaml", "digits_cnn_w4a8_qat.yaml"]


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("artifact", ARTIFACTS)
def test_network_on_rtl(artifact: str, seed: int) -> None:
    rep = test_network.run(artifact=test_network.MODEL_DIR / artifact, images=3, seed=seed)
    print(test_network.format_report(rep))
    assert [l.mismatches for l in rep.layers] == [0] * len(rep.layers)
    assert rep.rtl_pred == rep.golden_pred
    assert any(l.where == "rtl" for l in rep.layers)
    # double buffering: every layer after the first loads (at least partly) while the
    # previous one computes, so fewer of its load cycles are exposed than it has weight
    # words (one word a cycle); the first layer's load is all exposed
    from pymodel.graph.artifact import load_artifact
    rtl = [l for l in rep.layers if l.where == "rtl"]
    words = {q.name: -(-q.w2d.shape[0] // 8) * q.w2d.shape[1]
             for q in load_artifact(test_network.MODEL_DIR / artifact).layers if q.has_weights}
    assert rtl[0].load_cycles >= words[rtl[0].name]
    for l in rtl[1:]:
        assert l.load_cycles < words[l.name], f"{l.name}: load not overlapped"
    if "int8" not in artifact:   # the mixed and W4A8 artifacts really have INT4 layers
        qnet = load_artifact(test_network.MODEL_DIR / artifact)
        assert any(q.weight_bits == 4 for q in qnet.layers if q.has_weights)
    # The bulk path on the same images (tb/bulk.py drives the bare qlayer_engine, loading
    # each layer before it runs): same outputs (both == golden), the same MAC-array beats,
    # the same compute cycles give or take where they start (bulk: from the last load
    # write; the AXI top: from the first activation beat), and at least the load cycles
    # the AXI top leaves exposed.
    from tb import bulk
    fast = bulk.run(test_network.MODEL_DIR / artifact, images=3)
    assert fast.rtl_pred == rep.rtl_pred
    for slow_l, fast_l in zip(rep.layers, fast.layers, strict=True):
        assert (fast_l.name, fast_l.where, fast_l.mismatches) == (slow_l.name, slow_l.where, 0)
        assert fast_l.array_beats == slow_l.array_beats, (fast_l.name, fast_l.array_beats,
                                                          slow_l.array_beats)
        assert fast_l.load_cycles >= slow_l.load_cycles, (fast_l.name, fast_l.load_cycles,
                                                          slow_l.load_cycles)
        assert 0 <= fast_l.cycles - slow_l.cycles <= 1, (fast_l.name, fast_l.cycles,
                                                         slow_l.cycles)
