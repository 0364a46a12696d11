"""Whole-network runs on the RTL accelerator top, through AXI (tb/test_network.py): the shipped INT8
digits CNN, the mixed INT4/INT8 one and the W4A8 one after quantization-aware training,
a few images each.  Every layer's output must equal the golden model's, and so must the
predictions."""

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
    from pymodel.artifact import load_artifact
    rtl = [l for l in rep.layers if l.where == "rtl"]
    words = {q.name: -(-q.w2d.shape[0] // 8) * q.w2d.shape[1]
             for q in load_artifact(test_network.MODEL_DIR / artifact).layers if q.has_weights}
    assert rtl[0].load_cycles >= words[rtl[0].name]
    for l in rtl[1:]:
        assert l.load_cycles < words[l.name], f"{l.name}: load not overlapped"
    if "int8" not in artifact:   # the mixed and W4A8 artifacts really have INT4 layers
        from pymodel.artifact import load_artifact
        qnet = load_artifact(test_network.MODEL_DIR / artifact)
        assert any(q.weight_bits == 4 for q in qnet.layers if q.has_weights)
