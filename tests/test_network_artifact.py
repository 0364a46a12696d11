"""Quantized-network artifacts: round trip, integer inference == pymodel.ops.layers calls,
no float on the integer path, atomic writes, validation on load."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from pymodel import atomicio, datasets

from pymodel.quantization import ptq
from pymodel.ops import layers as L
from pymodel.graph.artifact import load_artifact, save_artifact
from pymodel.graph.inference import quantize_input, run_layer, run_network
from pymodel.graph.network import parse_network

# Every op of the artifact format: conv (stride, asymmetric kernel, relu6), depthwise
# (multiplier 2, INT4 weights, explicit padding), max / avg pool (same padding: partial
# windows), flatten, fully connected (per-tensor weights, symmetric percentile output).
SYN = {
    "name": "syn",
    "input": {"shape": [9, 9, 3]},
    "quant": {"activations": {"calibrator": "mse"}},
    "layers": [
        {"name": "c1", "op": "conv2d", "filters": 4, "kernel": [3, 2], "stride": [2, 1],
         "padding": "same", "activation": "relu6"},
        {"name": "dw", "op": "depthwise_conv2d", "depth_multiplier": 2, "kernel": 3,
         "padding": 1, "activation": "relu", "quant": {"weights": {"bits": 4}}},
        {"name": "mp", "op": "max_pool2d", "pool": 2, "stride": 1},
        {"name": "ap", "op": "avg_pool2d", "pool": 2, "padding": "same"},
        {"name": "flat", "op": "flatten"},
        {"name": "fc", "op": "fully_connected", "units": 5,
         "quant": {"weights": {"granularity": "per_tensor"},
                   "activations": {"symmetric": True, "calibrator": "percentile:99.9"}}},
    ],
}


def synthetic(rng):
    shapes = {"c1": ((4, 3, 2, 3), 4), "dw": ((1, 3, 3, 8), 8), "fc": ((5, 64), 5)}
    params = {}
    for name, (w, c) in shapes.items():
        params[f"{name}.weight"] = rng.normal(0, 0.5, size=w)
        params[f"{name}.bias"] = rng.normal(0, 0.1, size=c)
    net = parse_network(SYN, params, source="syn.yaml")
    x = rng.normal(0.3, 1.0, size=(64, 9, 9, 3))
    return net, ptq.calibrate(net, x[:48], batch_size=16), x[48:]


def test_synthetic_shapes(rng):
    net, qnet, _ = synthetic(rng)
    assert [q.output_shape for q in qnet.layers] == [(5, 9, 4), (5, 9, 8), (4, 8, 8),
                                                     (2, 4, 8), (64,), (5,)]
    assert qnet.layer("dw").weight_bits == 4
    assert int(np.abs(qnet.layer("dw").weight).max()) <= 7
    assert qnet.layer("fc").output.zero_point == 0 and qnet.layer("fc").output.symmetric
    fc_scale = qnet.layer("fc").weight_scale
    assert np.all(fc_scale == fc_scale[0])                  # per-tensor
    assert qnet.layer("c1").act_min == qnet.layer("c1").output.zero_point   # relu6 clamp


def test_integer_inference_equals_layer_by_layer_calls(rng):
    _, qnet, x = synthetic(rng)
    xq = quantize_input(qnet, x)
    outs = run_network(qnet, xq)
    c1, dw, mp, ap, flat, fc = qnet.layers

    def rq(q):
        return L.RequantParams(bias=q.bias, m0=q.m0, shift=q.shift,
                               out_zero_point=q.output.zero_point, act_min=q.act_min,
                               act_max=q.act_max)

    y = L.conv2d(xq, c1.weight, qnet.input.zero_point, rq(c1), stride=(2, 1), padding="same")
    assert np.array_equal(outs[0], y)
    y = L.depthwise_conv2d(y, dw.weight, c1.output.zero_point, rq(dw), stride=1, padding=1)
    assert np.array_equal(outs[1], y)
    y = L.max_pool2d(y, 2, stride=1)
    assert np.array_equal(outs[2], y)
    y = L.avg_pool2d(y, 2, padding="same")
    assert np.array_equal(outs[3], y)
    y = y.reshape(y.shape[0], -1)
    assert np.array_equal(outs[4], y)
    y = L.fully_connected(y, fc.weight, dw.output.zero_point, rq(fc))
    assert np.array_equal(outs[5], y)
    assert all(o.dtype == np.int8 for o in outs)


def test_gemm_split_equals_run_layer(rng):
    """Host im2col + engine GEMM (pymodel.ops.layers.quantized_gemm) == run_layer, for the
    shipped digits artifacts (what the RTL network runner executes)."""
    from pymodel.training import digits
    from pymodel.graph.inference import gemm_rows
    for path in (digits.INT8_ARTIFACT, digits.MIXED_ARTIFACT):
        qnet = load_artifact(path)
        x = quantize_input(qnet, datasets.digits("test").x[:16])
        for q in qnet.layers:
            y = run_layer(q, x)
            if q.op in ("conv2d", "fully_connected"):
                g = L.quantized_gemm(gemm_rows(q, x), q.w2d, q.input.zero_point, q.requant())
                assert np.array_equal(g.reshape(y.shape), y), (path.name, q.name)
            x = y


def test_integer_path_reads_no_float(rng):
    """Replace every scale, range and weight scale with NaN: the int8 outputs do not
    change, so nothing on the integer path reads them."""
    _, qnet, x = synthetic(rng)
    xq = quantize_input(qnet, x)
    ref = run_network(qnet, xq)

    def poison(tq):
        return dataclasses.replace(tq, scale=math.nan, rmin=math.nan, rmax=math.nan)

    layers = tuple(dataclasses.replace(q, input=poison(q.input), output=poison(q.output),
                                       weight_scale=None) for q in qnet.layers)
    poisoned = dataclasses.replace(qnet, layers=layers, input=poison(qnet.input))
    for a, b in zip(ref, run_network(poisoned, xq)):
        assert np.array_equal(a, b)


def test_artifact_round_trip(rng, tmp_path: Path):
    net, qnet, x = synthetic(rng)
    path = save_artifact(qnet, tmp_path / "syn_q")
    assert path == tmp_path / "syn_q.yaml" and (tmp_path / "syn_q.npz").exists()
    back = load_artifact(path)
    assert back.name == qnet.name and back.input == qnet.input
    assert back.meta == qnet.meta
    for a, b in zip(qnet.layers, back.layers):
        for f in dataclasses.fields(a):
            va, vb = getattr(a, f.name), getattr(b, f.name)
            if isinstance(va, np.ndarray):
                assert va.dtype == vb.dtype and np.array_equal(va, vb), (a.name, f.name)
            else:
                assert va == vb, (a.name, f.name)
    xq = quantize_input(back, x)
    for a, b in zip(run_network(qnet, xq), run_network(back, xq)):
        assert np.array_equal(a, b)
    # reproducible bytes: saving again gives identical files
    again = save_artifact(back, tmp_path / "again")
    assert (tmp_path / "again.npz").read_bytes() == (tmp_path / "syn_q.npz").read_bytes()
    assert again.read_text().replace("again.npz", "syn_q.npz") == path.read_text()


def test_run_layer_checks_its_input(rng):
    _, qnet, x = synthetic(rng)
    with pytest.raises(ValueError, match=r"layer 'c1' takes int8 input; got dtype float64"):
        run_layer(qnet.layers[0], x)
    with pytest.raises(ValueError, match=r"layer 'dw' expects \[N, 5, 9, 4\]"):
        run_layer(qnet.layers[1], quantize_input(qnet, x))


def test_interrupted_save_leaves_the_old_artifact(rng, tmp_path: Path, monkeypatch):
    _, qnet, _ = synthetic(rng)
    path = save_artifact(qnet, tmp_path / "a")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    changed = dataclasses.replace(qnet, name="changed")
    calls = []
    real_fsync = atomicio.os.fsync

    def fsync_then_interrupt(fd):
        calls.append(fd)
        real_fsync(fd)
        if len(calls) == 2:            # both temporary files written: Ctrl-C now
            raise KeyboardInterrupt

    monkeypatch.setattr(atomicio.os, "fsync", fsync_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        save_artifact(changed, path)
    monkeypatch.undo()
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before                               # untouched, no temp files left
    assert load_artifact(path).name == "syn"


def test_save_into_missing_directory_writes_nothing(rng, tmp_path: Path):
    _, qnet, _ = synthetic(rng)
    with pytest.raises(ValueError, match=r"directory .*nope does not exist"):
        save_artifact(qnet, tmp_path / "nope" / "a")
    assert list(tmp_path.iterdir()) == []


def write_pair(tmp_path: Path, doc: dict, arrays: dict) -> Path:
    (tmp_path / "x.npz").write_bytes(atomicio.npz_bytes(arrays))
    p = tmp_path / "x.yaml"
    p.write_text(yaml.safe_dump(doc, sort_keys=False))
    return p


def loaded(tmp_path: Path, rng) -> tuple[dict, dict]:
    _, qnet, _ = synthetic(rng)
    path = save_artifact(qnet, tmp_path / "x")
    doc = yaml.safe_load(path.read_text())
    with np.load(tmp_path / "x.npz") as z:
        arrays = {k: z[k] for k in z.files}
    return doc, arrays


def test_artifact_load_errors(rng, tmp_path: Path):
    doc, arrays = loaded(tmp_path, rng)
    bad = dict(arrays)
    bad["c1.m0"] = bad["c1.m0"].copy()
    bad["c1.m0"][0] += 1
    with pytest.raises(ValueError, match=r"x.yaml: arrays.sha256: .*does not belong to this "
                                         r"YAML"):
        load_artifact(write_pair(tmp_path, doc, bad))

    d = yaml.safe_load(yaml.safe_dump(doc))
    d["layers"][1]["acitvation"] = "relu"
    with pytest.raises(ValueError, match=r"layers\[1\].acitvation: unknown key \(did you mean "
                                         r"'activation'\?\)"):
        load_artifact(write_pair(tmp_path, d, arrays))

    bad = dict(arrays)
    bad["fc.bias"] = bad["fc.bias"].astype(np.int64)
    d = yaml.safe_load(yaml.safe_dump(doc))
    d["arrays"]["sha256"] = atomicio.arrays_digest(bad)
    with pytest.raises(ValueError, match=r"layers\[5\].tensors.bias.dtype: array 'fc.bias' "
                                         r"must be int32"):
        load_artifact(write_pair(tmp_path, d, bad))

    d = yaml.safe_load(yaml.safe_dump(doc))
    d["layers"][1]["input"]["scale"] *= 2
    with pytest.raises(ValueError, match=r"layers\[1\].input: .*differs from 'c1''s"):
        load_artifact(write_pair(tmp_path, d, arrays))

    bad = dict(arrays)
    bad["dw.weight"] = np.full_like(bad["dw.weight"], 9)          # beyond INT4
    d = yaml.safe_load(yaml.safe_dump(doc))
    d["arrays"]["sha256"] = atomicio.arrays_digest(bad)
    with pytest.raises(ValueError, match=r"layers\[1\].tensors.weight: values reach 9 but "
                                         r"4-bit symmetric weights lie in \[-7, 7\]"):
        load_artifact(write_pair(tmp_path, d, bad))

    bad = dict(arrays)
    bad["c1.bias_folded"] = bad["c1.bias_folded"] + 1
    d = yaml.safe_load(yaml.safe_dump(doc))
    d["arrays"]["sha256"] = atomicio.arrays_digest(bad)
    with pytest.raises(ValueError, match=r"layers\[0\].tensors.bias_folded: channel 0"):
        load_artifact(write_pair(tmp_path, d, bad))


def test_calibration_batches_bad_input(rng):
    net, _, _ = synthetic(rng)
    with pytest.raises(ValueError, match=r"calibration set: no images"):
        ptq.collect_stats(net, iter([]))
    with pytest.raises(ValueError, match=r"calibration batch: expected a batch of shape "
                                         r"\[N, 9, 9, 3\]"):
        ptq.collect_stats(net, [np.zeros((2, 8, 8, 3))])
    x = rng.normal(size=(4, 9, 9, 3))
    x[1, 2, 3, 0] = np.inf
    with pytest.raises(ValueError, match=r"tensor 'input': contains inf"):
        ptq.collect_stats(net, datasets.batches(x, 2))
