"""Every tensor of every committed TFLite test model: golden model == the integer-path
runtimes, element by element; the floating-point kernel's differences explained.

The models are imported (``pymodel.frontends.tflite_import``) and run in the golden
model on each model's 64 bundled test images and 64 seeded random inputs.  Two ways:

* whole graph: the golden model runs every layer on its *own* tensors (an error would
  propagate and show downstream);
* isolated: each golden layer runs on the runtime's input tensors, so a difference is
  the op's own.

TensorFlow Lite Micro computes every op with the integer fixed-point path: 0 differing
elements on every tensor, both ways.  LiteRT's reference kernels (``BUILTIN_REF``) do too
for every op but FULLY_CONNECTED, which rescales in double precision
(``pymodel.ops.float_rescale``): isolated, every other layer has 0 differences, and every
FULLY_CONNECTED difference is reproduced exactly by the float-rescale formula (its cause).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from pymodel.frontends.runtimes import run
from pymodel.frontends.tflite_import import import_tflite
from pymodel.graph.inference import run_layer
from pymodel.ops.float_rescale import fully_connected_float_rescale
from pymodel.study import conformance as C

MODELS = Path(__file__).resolve().parents[1] / "models" / "tflite"
NAMES = ("float_io", "misc", "mobilenetv2_style", "resnet_style")


@pytest.fixture(autouse=True)
def _quiet_litert():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # preserve_all_tensors is for debugging
        yield


def test_models_are_committed():
    assert sorted(p.stem for p in MODELS.glob("*.tflite")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("isolate", [False, True], ids=["graph", "isolated"])
def test_every_tensor_equals_tflite_micro(name, isolate, seed):
    path = MODELS / f"{name}.tflite"
    qnet = import_tflite(path)
    x = C.model_inputs(path, qnet, images=64, random=64, seed=seed)
    assert len(x) == 128
    rows = C.compare(path, x, "tflm", qnet, isolate=isolate)
    assert len(rows) >= len(qnet.layers)
    bad = [(r.layer, r.op, r.differing, r.max_abs) for r in rows if r.differing]
    assert not bad, f"seed {seed}: layers differing from TFLite Micro: {bad}"
    assert sum(r.elements for r in rows) > 0


@pytest.mark.parametrize("name", NAMES)
def test_every_tensor_equals_litert_reference_but_float_fc(name, seed):
    path = MODELS / f"{name}.tflite"
    qnet = import_tflite(path)
    x = C.model_inputs(path, qnet, images=64, random=64, seed=seed)
    rows = C.compare(path, x, "litert-ref", qnet, isolate=True)
    bad = [(r.layer, r.op, r.differing) for r in rows
           if r.differing and r.op != "fully_connected"]
    assert not bad, f"seed {seed}: layers differing from LiteRT's reference kernels: {bad}"
    # every FULLY_CONNECTED difference is the float rescale: that formula equals LiteRT
    ref = run(path, x, "litert-ref").tensors
    mapping = qnet.meta["tflite"]["tensors"]
    for layer in (q for q in qnet.layers if q.op == "fully_connected"):
        xin = ref[mapping[layer.inputs[0]]].reshape(-1, layer.weight.shape[1])
        fl = fully_connected_float_rescale(xin, layer.weight, layer.input.zero_point, layer.bias,
                                           np.float32(layer.input.scale),
                                           layer.weight_scale.astype(np.float32),
                                           np.float32(layer.output.scale),
                                           layer.output.zero_point, layer.act_min, layer.act_max)
        assert np.array_equal(fl.reshape(-1), ref[mapping[layer.name]].reshape(-1)), layer.name
        golden = run_layer(layer, xin.reshape(-1, *layer.input_shape)).reshape(-1)
        assert int(np.max(np.abs(golden.astype(int) - fl.reshape(-1).astype(int)))) <= 1


def test_float_rescale_differences_pinned():
    """The count of LiteRT-reference FULLY_CONNECTED elements that the integer path
    rounds differently, on fixed inputs (seed 0): a LiteRT or golden-model change shows."""
    counts = {}
    for name in NAMES:
        path = MODELS / f"{name}.tflite"
        qnet = import_tflite(path)
        x = C.model_inputs(path, qnet, images=64, random=64, seed=0)
        counts[name] = sum(r.differing for r in C.compare(path, x, "litert-ref", qnet)
                           if r.op == "fully_connected")
    assert counts == {"float_io": 0, "misc": 124, "mobilenetv2_style": 1, "resnet_style": 1}
