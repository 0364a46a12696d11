"""Network YAML + weights: validation errors carry the key path; float inference."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from pymodel.training import digits
from pymodel.ops.layers import conv2d_float, fully_connected_float
from pymodel.graph.network import load_network, load_npz, parse_network

NET = yaml.safe_load(digits.NETWORK_YAML.read_text())


def params() -> dict[str, np.ndarray]:
    return load_npz(digits.MODEL_DIR / "digits_cnn.npz")


def parse(config, p=None):
    return parse_network(config, params() if p is None else p, source="net.yaml",
                         weights_source="w.npz")


def test_shipped_network_loads_with_shapes_and_macs():
    net = digits.load()
    assert net.input_shape == (8, 8, 1)
    assert [s.output_shape for s in net.layers] == [(8, 8, 8), (4, 4, 16), (256,), (32,), (10,)]
    assert [s.macs for s in net.layers] == [8 * 8 * 8 * 9, 4 * 4 * 16 * 72, 0, 32 * 256, 10 * 32]
    conv2 = net.layer("conv2")
    assert conv2.padding == ((0, 1), (0, 1))         # TFLite "same", odd pixel bottom/right
    assert conv2.weights.per_channel and conv2.weights.bits == 8
    assert net.input_scheme.calibrator.method == "minmax"


def test_float_forward_is_the_layer_references(rng):
    net = digits.load()
    p = net.params
    x = rng.uniform(0, 1, size=(5, 8, 8, 1))
    y = conv2d_float(x, p["conv1.weight"], p["conv1.bias"], 1, "same", "relu")
    y = conv2d_float(y, p["conv2.weight"], p["conv2.bias"], 2, "same", "relu")
    y = y.reshape(5, -1)                              # NHWC flatten
    y = fully_connected_float(y, p["fc1.weight"], p["fc1.bias"], "relu")
    y = fully_connected_float(y, p["fc2.weight"], p["fc2.bias"])
    # same functions, same order of operations -> identical floats
    assert np.array_equal(net.forward(x), y)


def edit(path: str, value, delete: bool = False):
    cfg = copy.deepcopy(NET)
    keys = path.split(".")
    node = cfg
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    if delete:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return cfg


@pytest.mark.parametrize("path, value, message", [
    ("layers.0.kernal", 3, r"net.yaml: layers\[0\].kernal: unknown key \(did you mean "
                           r"'kernel'\?\); allowed: activation, filters, inputs, kernel, name, op"),
    ("quant.weights.granularty", "per_tensor", r"quant.weights.granularty: unknown key "
                                               r"\(did you mean 'granularity'\?\)"),
    ("layers.0.filters", "8", r"layers\[0\].filters: expected an integer; got '8'"),
    ("layers.0.padding", "full", r"layers\[0\].padding: 'full' is not one of valid, same"),
    ("layers.3.activation", "gelu", r"layers\[3\].activation: 'gelu' is not one of none, "
                                    r"relu, relu6"),
    ("layers.0.op", "conv3d", r"layers\[0\].op: 'conv3d' is not one of conv2d"),
    ("layers.1.output_shape", [8, 8, 16], r"layers\[1\].output_shape: declared \[8, 8, 16\] "
                                          r"but the layer computes \[4, 4, 16\]"),
    ("quant.weights.bits", 9, r"quant.weights.bits: 9 is outside the allowed range \[2, 8\]"),
    ("quant.weights.symmetric", False, r"quant.weights.symmetric: false is not supported"),
    ("quant.activations.calibrator", "kl", r"quant.activations.calibrator: 'kl' is not a "
                                           r"calibrator"),
    ("input.shape", [8, 8], r"input.shape: expected a list of 1 or 3 integers"),
    ("layers.4.name", "fc1", r"layers\[4\].name: 'fc1' is used by an earlier layer"),
])
def test_yaml_errors_name_the_key_path(path, value, message):
    with pytest.raises(ValueError, match=message):
        parse(edit(path, value))


def test_missing_required_key():
    with pytest.raises(ValueError, match=r"layers\[0\].filters: missing \(required\)"):
        parse(edit("layers.0.filters", None, delete=True))


def test_fully_connected_needs_a_flat_input():
    cfg = copy.deepcopy(NET)
    del cfg["layers"][2]                                   # drop the flatten
    with pytest.raises(ValueError, match=r"layers\[2\] \(fully_connected 'fc1'\): needs a "
                                         r"flat \[features\] input; the previous layer gives "
                                         r"\[4, 4, 16\] \(insert a flatten layer\)"):
        parse(cfg)


def test_missing_tensor_is_named():
    p = params()
    del p["fc1.bias"]
    with pytest.raises(ValueError, match=r"layers\[3\] \(fully_connected 'fc1'\): w.npz has "
                                         r"no tensor 'fc1.bias' \(expected float \[32\]\)"):
        parse(NET, p)


def test_weight_shape_mismatch_is_named():
    p = params()
    p["conv2.weight"] = p["conv2.weight"][:, :, :, :4]
    with pytest.raises(ValueError, match=r"tensor 'conv2.weight' in w.npz has shape "
                                         r"\[16, 3, 3, 4\]; the layer needs \[16, 3, 3, 8\]"):
        parse(NET, p)


def test_unused_and_non_finite_tensors():
    p = params()
    p["fc3.weight"] = np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"holds tensors no layer uses: fc3.weight"):
        parse(NET, p)
    p = params()
    p["fc2.weight"] = p["fc2.weight"].copy()
    p["fc2.weight"][0, 0] = np.nan
    with pytest.raises(ValueError, match=r"tensor 'fc2.weight' in w.npz holds NaN or Inf"):
        parse(NET, p)


def test_yaml_file_errors(tmp_path: Path):
    bad = tmp_path / "dup.yaml"
    bad.write_text("name: a\nname: b\n")
    with pytest.raises(ValueError, match=r"dup.yaml: not valid YAML: .*duplicate key 'name'"):
        load_network(bad)
    missing = tmp_path / "net.yaml"
    missing.write_text(yaml.safe_dump({**NET, "weights": "nope.npz"}))
    with pytest.raises(ValueError, match=r"nope.npz: weights file not found"):
        load_network(missing)
    with pytest.raises(ValueError, match=r"absent.yaml: cannot read"):
        load_network(tmp_path / "absent.yaml")


def test_overrides_and_average_bits():
    net = digits.load()
    mixed = net.with_overrides(layer_weight_bits={"fc1": 4})
    sizes = {s.name: int(np.prod(s.weight_shape)) for s in net.weight_layers}
    expect = (8 * sum(sizes.values()) - 4 * sizes["fc1"]) / sum(sizes.values())
    assert mixed.weight_bits_average() == expect
    with pytest.raises(ValueError, match=r"layer_weight_bits: 'fc9' is not a weight layer"):
        net.with_overrides(layer_weight_bits={"fc9": 4})
    with pytest.raises(ValueError, match=r"weight bits: 12 is outside the allowed range"):
        net.with_overrides(weight_bits=12)
