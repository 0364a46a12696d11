"""Cross-layer equalization (pymodel.quantization.cle): the float network's output is unchanged, the
per-channel weight ranges of each pair balance, ineligible pairs are skipped, the YAML
option and the PTQ flow."""

from __future__ import annotations

import numpy as np
import pytest

from pymodel.quantization import cle, ptq

from pymodel import datasets

from pymodel.training import digits, nn

from pymodel.graph import inference
from pymodel.graph.network import parse_network

# conv -> depthwise (multiplier 2) -> max pool -> conv -> avg pool -> flatten -> FC -> FC:
# every pairing CLE handles (the depthwise as second and as first layer, a flatten
# between conv and FC, pools in between).
CHAIN = {
    "name": "chain",
    "input": {"shape": [8, 8, 2]},
    "layers": [
        {"name": "c1", "op": "conv2d", "filters": 4, "kernel": 3, "padding": "same",
         "activation": "relu"},
        {"name": "dw", "op": "depthwise_conv2d", "depth_multiplier": 2, "kernel": 3,
         "padding": "same", "activation": "relu"},
        {"name": "mp", "op": "max_pool2d", "pool": 2},
        {"name": "c2", "op": "conv2d", "filters": 5, "kernel": 2, "stride": 1,
         "padding": "valid", "activation": "none"},
        {"name": "ap", "op": "avg_pool2d", "pool": 2, "padding": "same"},
        {"name": "f", "op": "flatten"},
        {"name": "fc1", "op": "fully_connected", "units": 6, "activation": "relu"},
        {"name": "fc2", "op": "fully_connected", "units": 3},
    ],
}


def chain_network(rng: np.random.Generator, config: dict = CHAIN):
    net = parse_network(config, None)
    params = nn.from_network(net, rng, init=True).state()
    for spec in net.weight_layers:
        w = params[f"{spec.name}.weight"]
        # badly imbalanced output channels: ranges over four decades
        shape = [1] * w.ndim
        shape[spec.channel_axis] = -1
        params[f"{spec.name}.weight"] = w * 10.0 ** rng.uniform(-2, 2, size=spec.out_channels
                                                                ).reshape(shape)
        params[f"{spec.name}.bias"] = rng.normal(0.0, 0.5, size=spec.out_channels)
    return parse_network(config, params)


def test_cle_leaves_the_float_output_unchanged(rng):
    net = chain_network(rng)
    x = rng.normal(size=(16, 8, 8, 2))
    eq, res = cle.equalize(net, iterations=100, tolerance=1e-10)
    assert [f"{p.first}->{p.second}" for p in res.pairs] == ["c1->dw", "dw->c2", "c2->fc1",
                                                            "fc1->fc2"]
    assert res.converged and res.skipped == []
    a, b = net.forward_all(x), eq.forward_all(x)
    out_rel = float(np.max(np.abs(a[-1] - b[-1]))) / float(np.max(np.abs(a[-1])))
    # Each sweep divides and multiplies every weight once by a non-power-of-two scale
    # (relative rounding 2^-53 each); after ~tens of sweeps and a 5-layer forward the
    # accumulated relative error is a few hundred ulps: bound 1e-12 (a missed bias or
    # a wrongly mapped channel changes the output by O(1)).
    print(f"{res.sweeps} sweeps, relative change of the output {out_rel:.2e}")
    assert out_rel < 1e-12
    # the weights did change (substantially)
    assert max(float(np.max(np.abs(net.params[k] - eq.params[k]))) for k in net.params) > 0.1
    # inner tensors are rescaled per channel: equal up to the scales
    assert not np.allclose(a[0], b[0])


def test_cle_balances_the_ranges(rng):
    net = chain_network(rng)
    eq, res = cle.equalize(net, iterations=200, tolerance=1e-12)
    assert res.converged
    for p in res.pairs:
        a, b = eq.layer(p.first), eq.layer(p.second)
        r1 = cle._channel_range(cle._first_view(a, eq.params[f"{a.name}.weight"]))
        r2 = cle._channel_range(cle._second_slices(b, eq.params[f"{b.name}.weight"],
                                                   p.channels, p.flattened))
        # converged: one more sweep would change no scale by more than 1e-12 (log)
        assert np.max(np.abs(np.log(r1 / r2))) < 1e-9, (p, r1, r2)
    before, after = cle.ranges(net), cle.ranges(eq)
    spread = {k: (float(before[k].max() / before[k].min()), float(after[k].max() / after[k].min()))
              for k in before}
    # (informative: in a chain a middle layer's channel range becomes the geometric mean
    # of its two pairs' ranges, so its own spread need not shrink; the balance per pair,
    # checked above, is what CLE guarantees)
    print("per-channel range spread (max/min) before -> after:", spread)


def test_cle_skips_non_homogeneous_activations(rng):
    config = {**CHAIN, "layers": [dict(CHAIN["layers"][0], activation="relu6"),
                                  *CHAIN["layers"][1:]]}
    net = chain_network(rng, config)
    eq, res = cle.equalize(net)
    assert ("c1", "dw") in [(a, b) for a, b, _ in res.skipped]
    assert "relu6" in res.skipped[0][2]
    assert np.array_equal(eq.params["c1.weight"], net.params["c1.weight"])
    x = rng.normal(size=(4, 8, 8, 2))
    assert np.max(np.abs(eq.forward(x) - net.forward(x))) <= 1e-12 * np.max(np.abs(net.forward(x)))


def test_cle_yaml_option_and_ptq_flow():
    base = digits.load()
    cfg = {"name": "d", "input": {"shape": [4]}, "ptq": {"cross_layer_equalization":
                                                         {"iterations": 7, "tolerance": 1e-3}},
           "layers": [{"name": "a", "op": "fully_connected", "units": 2}]}
    net = parse_network(cfg, None)
    assert net.equalization == type(net.equalization)(True, 7, 1e-3)
    for bad, msg in (({"cross_layer_equalization": "yes"}, "expected true, false or a mapping"),
                     ({"cross_layer_equalization": {"iterations": 0}}, "iterations: 0 is "
                                                                       "outside"),
                     ({"cross_layer_equalization": {"tolerence": 1}}, "did you mean "
                                                                     "'tolerance'"),
                     ({"equalize": True}, "ptq.equalize: unknown key")):
        with pytest.raises(ValueError, match=msg):
            parse_network({**cfg, "ptq": bad}, None)
    # PTQ refuses statistics of the unequalized network when CLE is asked for ...
    want = base.with_overrides(equalization=True)
    cal = datasets.digits("calib")
    with pytest.raises(ValueError, match="not equalized"):
        ptq.collect_stats(want, datasets.batches(cal.x, 32))
    # ... and calibrate() equalizes first, recording it in the artifact
    q = ptq.calibrate(want.with_overrides(weight_bits=4, granularity="per_tensor"), cal.x)
    assert q.meta["cross_layer_equalization"]["pairs"] == ["conv1->conv2", "conv2->fc1",
                                                           "fc1->fc2"]
    assert "cross_layer_equalization" in q.meta["ptq"]["transforms"]
    te = datasets.digits("test")
    acc = float(np.mean(inference.predict(q, te.x) == te.y))
    print(f"W4A8 per-tensor PTQ + CLE: {100 * acc:.2f} %")
