"""Float networks that are graphs (issue 13): a layer's ``inputs``, ``add`` and ``concat``
layers, the float forward pass over the DAG, one-line validation errors; chains unchanged."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from pymodel import datasets
from pymodel.graph.network import float_layer, parse_network
from pymodel.ops.layers import conv2d_float
from pymodel.training import digits

DAG = {"name": "dag", "input": {"shape": [6, 6, 2]}, "layers": [
    {"name": "a", "op": "conv2d", "filters": 4, "kernel": 3, "padding": "same",
     "activation": "relu"},
    {"name": "b", "op": "conv2d", "filters": 4, "kernel": 1},
    {"name": "r", "op": "add", "inputs": ["a", "b"], "activation": "relu6"},
    {"name": "c", "op": "concat", "inputs": ["r", "input"]},
    {"name": "f", "op": "flatten"},
    {"name": "fc", "op": "fully_connected", "units": 3}]}


def _params(rng):
    return {"a.weight": rng.normal(size=(4, 3, 3, 2)), "a.bias": rng.normal(size=4),
            "b.weight": rng.normal(size=(4, 1, 1, 4)), "b.bias": rng.normal(size=4),
            "fc.weight": rng.normal(size=(3, 216)), "fc.bias": rng.normal(size=3)}


def test_dag_forward_is_the_graph(rng):
    p = _params(rng)
    net = parse_network(DAG, p)
    assert not net.is_chain
    assert [s.inputs for s in net.layers] == [("input",), ("a",), ("a", "b"), ("r", "input"),
                                             ("c",), ("f",)]
    assert net.layer("c").output_shape == (6, 6, 6)
    assert [s.name for s in net.quantized_layers] == ["a", "b", "r", "c", "fc"]
    x = rng.normal(size=(3, 6, 6, 2))
    a = conv2d_float(x, p["a.weight"], p["a.bias"], 1, ((1, 1), (1, 1)), "relu")
    b = conv2d_float(a, p["b.weight"], p["b.bias"])
    r = np.clip(a + b, 0, 6)
    c = np.concatenate([r, x], axis=-1).reshape(3, -1)
    want = c @ p["fc.weight"].T + p["fc.bias"]
    np.testing.assert_array_equal(net.forward(x), want)
    outs = net.forward_all(x)
    np.testing.assert_array_equal(outs[2], r)


def test_chain_numerics_unchanged():
    net = digits.load()
    assert net.is_chain
    x = datasets.digits("test").x[:50]
    y = x
    for spec in net.layers:                     # the chain computation before DAGs
        y = float_layer(spec, net.params, y)
    assert np.array_equal(net.forward(x), y)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["layers"][2].update(inputs=["a", "zz"]),
     r"layers\[2\].inputs\[1\]: 'zz' is not the network input \('input'\) or an earlier layer"),
    (lambda c: c["layers"][2].update(inputs=["a", "c"]),
     r"layers\[2\].inputs\[1\]: 'c' makes a cycle \(r reads c reads r\)"),
    (lambda c: c["layers"][1].update(inputs=["f"]),
     r"layers\[1\].inputs\[0\]: 'f' makes a cycle \(b reads f reads c reads r reads b\)"),
    (lambda c: c.update(layers=[{**c["layers"][1], "inputs": ["a"]},
                                {**c["layers"][0], "inputs": ["input"]}, *c["layers"][2:]]),
     r"layers\[0\].inputs\[0\]: 'a' is layers\[1\], listed later; list the layers"),
    (lambda c: c["layers"][2].update(inputs=["a", "input"]),
     r"layers\[2\].inputs: add needs equal shapes; 'a' is \[6, 6, 4\] but 'input' is "
     r"\[6, 6, 2\]"),
    (lambda c: c["layers"][3].update(inputs=["r", "f"]),
     r"layers\[3\].inputs\[1\]: 'f' makes a cycle"),
    (lambda c: c["layers"][4].update(inputs=["r"]),
     r"layers\[3\]: the output of concat 'c' is read by no layer"),
    (lambda c: c["layers"][1].update(inputs=["a", "input"]),
     r"layers\[1\].inputs: conv2d reads one tensor"),
    (lambda c: c["layers"][2].update(inputs=["a"]),
     r"layers\[2\].inputs: add needs 2 input tensors"),
    (lambda c: c["layers"][0].update(name="input"),
     r"layers\[0\].name: 'input' is used by an earlier layer or is the network input"),
])
def test_graph_errors_are_one_line(edit, message):
    cfg = copy.deepcopy(DAG)
    edit(cfg)
    with pytest.raises(ValueError, match=message) as exc:
        parse_network(cfg, None, source="net.yaml")
    assert "\n" not in str(exc.value) and str(exc.value).startswith("net.yaml: ")
