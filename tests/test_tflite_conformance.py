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


# ------------------------------------------------------------------------------------------
# Op sweeps: each op cut out of its model, fed every int8 value (unary element-wise ops),
# every int8 pair (binary ones) or 256 random images (the rest) -- rounding ties that 128
# natural images never reach.
# ------------------------------------------------------------------------------------------

ELEMENTWISE_UNARY = ("relu", "relu6", "leaky_relu", "logistic", "hard_swish", "quantize")
ELEMENTWISE_BINARY = ("add", "sub", "mul")


def _sweep_inputs(layer, rng) -> list[np.ndarray]:
    shapes = [tuple(s) for s in layer.input_shapes]
    size = int(np.prod(shapes[0]))
    binary = layer.op in ELEMENTWISE_BINARY and len(shapes) == 2
    if layer.op in ELEMENTWISE_UNARY or (layer.op in ELEMENTWISE_BINARY and not binary):
        values = [np.arange(-128, 128)]
    elif binary:
        a, b = np.meshgrid(np.arange(-128, 128), np.arange(-128, 128), indexing="ij")
        values = [a.reshape(-1), b.reshape(-1)]
    else:
        return [rng.integers(-128, 128, (256, *s)).astype(np.int8) for s in shapes]
    n = -(-values[0].size // size)
    return [np.resize(v, n * size).astype(np.int8).reshape(n, *s) for v, s in zip(values, shapes)]


@pytest.mark.parametrize("name", NAMES)
def test_op_sweeps_equal_litert_reference(name, seed):
    from pymodel.study.runtimes import single_op_model
    rng = np.random.default_rng(seed)
    path = MODELS / f"{name}.tflite"
    qnet = import_tflite(path)
    blob = path.read_bytes()
    mapping = qnet.meta["tflite"]["tensors"]
    swept = 0
    for layer in qnet.layers:
        if layer.op == "fully_connected":        # LiteRT's float rescale: see above
            continue
        op_index = int(layer.name.rsplit("_", 1)[1])
        xs = _sweep_inputs(layer, rng)
        ref = run(single_op_model(blob, op_index), xs if len(xs) > 1 else xs[0], "litert-ref")
        got = run_layer(layer, *xs)
        want = ref.tensors[mapping[layer.name]].reshape(got.shape)
        diff = int(np.count_nonzero(got != want))
        assert diff == 0, f"seed {seed}: {layer.name} ({layer.op}): {diff} of {got.size} differ"
        swept += got.size
    assert swept > 0


def _op_check_module():
    """scripts/litert_op_check.py: one-op model builder on LiteRT's schema module."""
    import importlib.util
    path = Path(__file__).resolve().parents[1] / "scripts" / "litert_op_check.py"
    spec = importlib.util.spec_from_file_location("litert_op_check", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_add_directed_scales_every_pair_equals_litert_reference():
    """ADD with scales found by search where the input rescale's precision shows: with
    ``left_shift = 19`` instead of TFLite's 20 the golden model differs on 2 of the 65,536
    int8 pairs, so this is the conformance check that pins the left shift."""
    from pymodel.ops import elementwise as E
    oc = _op_check_module()
    s1, s2, so = np.float32(0.05476804077625275), np.float32(0.05763809382915497), \
        np.float32(0.1361205130815506)
    z1, z2, zo = -17, -4, -9
    a, b = np.meshgrid(np.arange(-128, 128), np.arange(-128, 128), indexing="ij")
    x1 = a.reshape(1, 256, 256, 1).astype(np.int8)
    x2 = b.reshape(1, 256, 256, 1).astype(np.int8)
    opt = oc.S.AddOptionsT()
    opt.fusedActivationFunction = oc.ACT["none"]
    shape = [1, 256, 256, 1]
    model = oc.build(oc.S.BuiltinOperator.ADD, oc.S.BuiltinOptions.AddOptions, opt,
                     [oc.q8(shape, s1, z1), oc.q8(shape, s2, z2)], [oc.q8(shape, so, zo)])
    ref = oc.run(model, [x1, x2], "reference")
    got = E.add(x1, x2, E.prepare_add(s1, z1, s2, z2, so, zo))
    assert int(np.count_nonzero(got != ref)) == 0


def test_softmax_many_rows_equal_litert_reference(seed):
    """SOFTMAX (mobilenetv2_style's scales) on 200,000 random rows of 10 in one one-op
    model: enough near-ties that a wrong gemmlowp constant shows."""
    from pymodel.ops import activations as A
    oc = _op_check_module()
    qnet = import_tflite(MODELS / "mobilenetv2_style.tflite")
    sm = next(q for q in qnet.layers if q.op == "softmax")
    s_in, z_in = np.float32(sm.input.scale), sm.input.zero_point
    s_out, z_out = np.float32(sm.output.scale), sm.output.zero_point
    x = np.random.default_rng(seed).integers(-128, 128, (1, 200_000, 10)).astype(np.int8)
    opt = oc.S.SoftmaxOptionsT()
    opt.beta = 1.0
    model = oc.build(oc.S.BuiltinOperator.SOFTMAX, oc.S.BuiltinOptions.SoftmaxOptions, opt,
                     [oc.q8(list(x.shape), s_in, z_in)], [oc.q8(list(x.shape), s_out, z_out)])
    ref = oc.run(model, [x], "reference")
    got = A.softmax(x, A.prepare_softmax(np.float32(1.0), s_in, s_out, z_out))
    assert int(np.count_nonzero(got != ref)) == 0, f"seed {seed}"
