"""Bias correction (pymodel.quantization.bias_correction): the correction is the measured mean shift,
it reduces the per-channel mean output error on held-out data, the YAML option."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pymodel.quantization import bias_correction as bc
from pymodel import datasets
from pymodel.training import digits, nn
from pymodel.quantization import ptq
from pymodel.study.accuracy import channel_mean_error
from pymodel.graph.network import float_layer, parse_network
from pymodel.quantization.ptq import quantize_weights
from pymodel.arithmetic.qparams import dequantize

NET = {
    "name": "bc",
    "input": {"shape": [7, 6, 3]},
    "quant": {"weights": {"bits": 3, "granularity": "per_tensor"}},
    "layers": [
        {"name": "c", "op": "conv2d", "filters": 4, "kernel": 3, "stride": 2, "padding": "same",
         "activation": "relu"},
        {"name": "d", "op": "depthwise_conv2d", "depth_multiplier": 3, "kernel": 2,
         "padding": "same", "activation": "relu"},
        {"name": "f", "op": "flatten"},
        {"name": "fc", "op": "fully_connected", "units": 5},
    ],
}


def test_correction_is_the_measured_mean_shift(rng):
    """``expected_shift`` equals the mean over the calibration rows of (output with
    quantized weights - output with float weights), per channel, for conv (zero
    padding), depthwise and FC -- so the corrected layer has the float layer's mean
    pre-activation on that data."""
    net = parse_network(NET, None)
    params = nn.from_network(net, rng, init=True).state()
    net = parse_network(NET, params)
    x = rng.uniform(0, 1, size=(20, 7, 6, 3))
    means = bc.collect_input_means(net, datasets.batches(x, 6),
                                   [s.name for s in net.weight_layers])
    h = x
    for spec in net.layers:
        if spec.has_weights:
            w = params[f"{spec.name}.weight"]
            wq, wqp = quantize_weights(w, spec.weights, spec.channel_axis)
            w_hat = dequantize(wq, wqp)
            lin = dataclasses.replace(spec, activation="none")     # pre-activation
            y_f = float_layer(lin, params, h)
            y_q = float_layer(lin, {**params, f"{spec.name}.weight": w_hat}, h)
            measured = (y_q - y_f).reshape(-1, spec.out_channels).mean(axis=0)
            eps = bc.expected_shift(spec, w, w_hat, means[spec.name])
            # mean of sums vs sum of means: float64 reassociation, relative ~1e-15
            assert np.max(np.abs(measured - eps)) < 1e-12 * max(1.0, np.abs(measured).max())
            corrected = {**params, f"{spec.name}.weight": w_hat,
                         f"{spec.name}.bias": bc.corrected_bias(spec, params, w_hat,
                                                                means[spec.name])}
            y_c = float_layer(lin, corrected, h)
            assert np.max(np.abs((y_c - y_f).reshape(-1, spec.out_channels).mean(axis=0))) \
                < 1e-12 * max(1.0, np.abs(measured).max())
            assert np.abs(measured).max() > 1e-3             # there was a shift to remove
        h = float_layer(spec, params, h)


def test_bias_correction_reduces_held_out_channel_error():
    """Digits CNN, W4A8 per-channel and W3A8 per-tensor: the correction is measured on
    the calibration split; on the test split (never seen by it) the mean over output
    channels of |mean output error| (dequantized integer network vs float network, per
    layer) must go down in every layer."""
    net = digits.load()
    cal, te = datasets.digits("calib"), datasets.digits("test")
    for wb, gran in ((4, "per_channel"), (3, "per_tensor")):
        base = net.with_overrides(weight_bits=wb, granularity=gran)
        plain = ptq.calibrate(base, cal.x)
        corr = ptq.calibrate(base.with_overrides(bias_correction=True), cal.x)
        assert corr.meta["ptq"]["bias_correction"] == ["conv1", "conv2", "fc1", "fc2"]
        e0 = channel_mean_error(base, plain, te.x)
        e1 = channel_mean_error(base, corr, te.x)
        print(f"W{wb}A8 {gran}: mean |per-channel mean error| on the test set, without -> "
              f"with bias correction: "
              + ", ".join(f"{k} {e0[k]:.4f} -> {e1[k]:.4f}" for k in e0))
        for k in e0:
            assert e1[k] < e0[k], (wb, gran, k, e0[k], e1[k])


def test_bias_correction_yaml_option():
    cfg = {"name": "n", "input": {"shape": [4]}, "ptq": {"bias_correction": True},
           "layers": [{"name": "a", "op": "fully_connected", "units": 3},
                      {"name": "b", "op": "fully_connected", "units": 2,
                       "quant": {"bias_correction": False}}]}
    net = parse_network(cfg, None)
    assert [s.bias_correction for s in net.layers] == [True, False]
    assert not parse_network({**cfg, "ptq": {}}, None).layers[0].bias_correction
    for bad, msg in (({**cfg, "ptq": {"bias_correction": "on"}},
                      "ptq.bias_correction: expected true or false"),
                     ({**cfg, "quant": {"bias_correction": True}},
                      "quant.bias_correction: unknown key"),
                     ({**cfg, "ptq": {"bias_corection": True}}, "did you mean 'bias_correction'")):
        with pytest.raises(ValueError, match=msg):
            parse_network(bad, None)
    # quantize_network without the calibration means refuses, naming the layer
    net = digits.load().with_overrides(bias_correction=True)
    cal = datasets.digits("calib")
    stats = ptq.collect_stats(net, datasets.batches(cal.x, 32))
    with pytest.raises(ValueError, match="layer 'conv1': bias_correction needs the mean"):
        ptq.quantize_network(net, stats)
