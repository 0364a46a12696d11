"""Whole-network runs on the RTL layer engine (tb/test_network.py): the shipped INT8
digits CNN, the mixed INT4/INT8 one and the W4A8 one after quantization-aware training,
a few images each.  Every layer's output must equal the golden model's, and so must the
predictions.  The same images then run through the Verilator bulk harness (tb/bulk.py),
which must produce the same predictions and the same per-layer figures."""

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
    if "int8" not in artifact:   # the mixed and W4A8 artifacts really have INT4 layers
        from pymodel.graph.artifact import load_artifact
        qnet = load_artifact(test_network.MODEL_DIR / artifact)
        assert any(q.weight_bits == 4 for q in qnet.layers if q.has_weights)
    # The bulk path on the same images: same outputs (both == golden), same figures.
    from tb import bulk
    fast = bulk.run(test_network.MODEL_DIR / artifact, images=3)
    assert fast.rtl_pred == rep.rtl_pred
    for slow_l, fast_l in zip(rep.layers, fast.layers, strict=True):
        assert (fast_l.name, fast_l.where, fast_l.mismatches) == (slow_l.name, slow_l.where, 0)
        assert (fast_l.load_cycles, fast_l.array_beats) == (slow_l.load_cycles, slow_l.array_beats)
        # cycles run from the last load write to the last output beat; on the first layer
        # cocotb may wake the source coroutine before the loader at that edge (one cycle)
        assert abs(fast_l.cycles - slow_l.cycles) <= (1 if slow_l is rep.layers[0] else 0), \
            (fast_l.name, fast_l.cycles, slow_l.cycles)
