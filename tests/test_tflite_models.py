"""The committed int8 TFLite test models (models/tflite, made by scripts/gen_tflite_models.py).

Checks that together they still cover every operator of issue 10 with its options (fails
when a regeneration loses one), that each is small, int8, batch 1, and that the bundled
test images are the model's input quantized with the model's own input parameters.  Reads
the flatbuffers with the ``tflite`` schema package only (no TensorFlow, no interpreter).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from pymodel.frontends.oplist import ModelInfo, OpInfo, op_table, read_model

MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / "tflite"
MODELS = ("mobilenetv2_style", "resnet_style", "misc", "float_io")
MAX_BYTES = 200 * 1024
MIN_TEST_IMAGES = 64


def _model(name: str) -> ModelInfo:
    return read_model(MODEL_DIR / f"{name}.tflite")


def _const(m: ModelInfo, op: OpInfo, k: int) -> bool:
    return m.tensors[op.inputs[k]].constant


def _dtype(m: ModelInfo, t: int) -> str:
    return m.tensors[t].dtype


def _mean_spatial(m: ModelInfo, op: OpInfo) -> bool:
    axes = m.tensors[op.inputs[1]].data
    return axes is not None and sorted(int(a) % 4 for a in axes.ravel()) == [1, 2]


def _dm2(m: ModelInfo, op: OpInfo) -> bool:
    c_in = m.tensors[op.inputs[0]].shape[-1]
    c_out = m.tensors[op.outputs[0]].shape[-1]
    return op.options.get("depth_multiplier") == 2 and c_out == 2 * c_in


def _per_channel(m: ModelInfo, op: OpInfo) -> bool:
    w = m.tensors[op.inputs[1]]
    return len(w.scale) > 1


Check = Callable[[ModelInfo, OpInfo], bool]

# (op, what, predicate): every entry must hold for at least one op of one committed model.
REQUIRED: list[tuple[str, str, Check]] = [
    ("CONV_2D", "dilation 2", lambda m, o: o.options["dilation_h_factor"] == 2
     and o.options["dilation_w_factor"] == 2),
    ("CONV_2D", "stride 2, SAME", lambda m, o: o.options["stride_h"] == 2
     and o.options["padding"] == "SAME"),
    ("CONV_2D", "stride 2, VALID 1x1 (projection shortcut)", lambda m, o: o.options["stride_h"] == 2
     and o.options["padding"] == "VALID" and m.tensors[o.inputs[1]].shape[1:3] == (1, 1)),
    ("CONV_2D", "fused RELU", lambda m, o: o.options["fused_activation_function"] == "RELU"),
    ("CONV_2D", "fused RELU6", lambda m, o: o.options["fused_activation_function"] == "RELU6"),
    ("CONV_2D", "per-channel weights", _per_channel),
    ("DEPTHWISE_CONV_2D", "depth multiplier 1", lambda m, o: o.options["depth_multiplier"] == 1),
    ("DEPTHWISE_CONV_2D", "depth multiplier 2", _dm2),
    ("DEPTHWISE_CONV_2D", "stride 2, SAME", lambda m, o: o.options["stride_h"] == 2
     and o.options["padding"] == "SAME"),
    ("DEPTHWISE_CONV_2D", "fused RELU6", lambda m, o: o.options["fused_activation_function"] == "RELU6"),
    ("DEPTHWISE_CONV_2D", "per-channel weights (axis 3)", lambda m, o: _per_channel(m, o)
     and m.tensors[o.inputs[1]].quantized_dimension == 3),
    ("FULLY_CONNECTED", "keep_num_dims=False", lambda m, o: o.options["keep_num_dims"] is False),
    ("FULLY_CONNECTED", "keep_num_dims=True on a 4-D input", lambda m, o: o.options["keep_num_dims"]
     is True and len(m.tensors[o.inputs[0]].shape) == 4),
    ("ADD", "two activations", lambda m, o: not _const(m, o, 0) and not _const(m, o, 1)),
    ("ADD", "fused RELU", lambda m, o: o.options["fused_activation_function"] == "RELU"),
    ("ADD", "no fused activation", lambda m, o: o.options["fused_activation_function"] == "NONE"),
    ("SUB", "two activations", lambda m, o: not _const(m, o, 0) and not _const(m, o, 1)),
    ("MUL", "two activations", lambda m, o: not _const(m, o, 0) and not _const(m, o, 1)),
    ("MUL", "with a constant", lambda m, o: _const(m, o, 0) != _const(m, o, 1)),
    ("AVERAGE_POOL_2D", "SAME padding (partial windows)", lambda m, o: o.options["padding"] == "SAME"),
    ("MAX_POOL_2D", "SAME padding", lambda m, o: o.options["padding"] == "SAME"),
    ("MAX_POOL_2D", "VALID padding", lambda m, o: o.options["padding"] == "VALID"),
    ("MAX_POOL_2D", "fused RELU6", lambda m, o: o.options["fused_activation_function"] == "RELU6"),
    ("MEAN", "spatial, keep_dims=False", lambda m, o: _mean_spatial(m, o)
     and o.options["keep_dims"] is False),
    ("MEAN", "spatial, keep_dims=True", lambda m, o: _mean_spatial(m, o)
     and o.options["keep_dims"] is True),
    ("PAD", "", lambda m, o: True),
    ("PADV2", "non-zero constant", lambda m, o: m.tensors[o.inputs[2]].data is not None
     and int(m.tensors[o.inputs[2]].data.ravel()[0]) != m.tensors[o.inputs[0]].zero_point[0]),
    ("CONCATENATION", "", lambda m, o: len(o.inputs) >= 2),
    ("RESHAPE", "flatten", lambda m, o: len(m.tensors[o.outputs[0]].shape) == 2),
    ("SQUEEZE", "", lambda m, o: True),
    ("QUANTIZE", "float32 -> int8", lambda m, o: _dtype(m, o.inputs[0]) == "float32"
     and _dtype(m, o.outputs[0]) == "int8"),
    ("QUANTIZE", "int8 -> int8 rescale feeding a CONCATENATION", lambda m, o:
     _dtype(m, o.inputs[0]) == "int8" and _dtype(m, o.outputs[0]) == "int8"
     and any(c.name == "CONCATENATION" and o.outputs[0] in c.inputs for c in m.ops)),
    ("DEQUANTIZE", "int8 -> float32", lambda m, o: _dtype(m, o.inputs[0]) == "int8"),
    ("SOFTMAX", "", lambda m, o: True),
    ("LOGISTIC", "", lambda m, o: True),
    ("HARD_SWISH", "", lambda m, o: True),
    ("RELU", "standalone", lambda m, o: True),
    ("RELU6", "standalone", lambda m, o: True),
    ("LEAKY_RELU", "", lambda m, o: True),
]


@pytest.fixture(scope="module")
def models() -> dict[str, ModelInfo]:
    return {name: _model(name) for name in MODELS}


@pytest.mark.parametrize("op,what,check", REQUIRED, ids=[f"{o} {w}".strip() for o, w, _ in REQUIRED])
def test_required_op_is_covered(models: dict[str, ModelInfo], op: str, what: str, check: Check) -> None:
    hits = [f"{name}#{o.index}" for name, m in models.items() for o in m.ops
            if o.name == op and check(m, o)]
    assert hits, f"no committed model has {op} ({what}); regenerate with care (make tflite-models)"


def test_no_unexpected_ops(models: dict[str, ModelInfo]) -> None:
    allowed = {op for op, _, _ in REQUIRED}
    found = {o.name for m in models.values() for o in m.ops}
    assert found <= allowed, f"ops outside the issue's list: {sorted(found - allowed)}"


@pytest.mark.parametrize("name", MODELS)
def test_model_is_small_int8_batch1(name: str) -> None:
    path = MODEL_DIR / f"{name}.tflite"
    assert path.stat().st_size < MAX_BYTES
    m = _model(name)
    for t in m.tensors:
        if not t.constant and t.shape:
            assert t.shape[0] == 1, f"{t.name}: batch {t.shape[0]}"
    io = set(m.inputs) | set(m.outputs)
    for op in m.ops:
        for t in op.outputs:
            if t in io and name == "float_io":
                continue
            assert m.tensors[t].dtype == "int8", f"{name}#{op.index} {op.name}: {m.tensors[t].dtype}"
            assert len(m.tensors[t].scale) == 1
        if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            assert m.tensors[op.inputs[1]].dtype == "int8"
            assert m.tensors[op.inputs[2]].dtype == "int32"
    want = "float32" if name == "float_io" else "int8"
    assert m.tensors[m.inputs[0]].dtype == want and m.tensors[m.outputs[0]].dtype == want


@pytest.mark.parametrize("name", MODELS)
def test_bundled_test_images(name: str) -> None:
    m = _model(name)
    d = np.load(MODEL_DIR / f"{name}_test.npz")
    t_in = m.tensors[m.inputs[0]]
    if t_in.dtype == "float32":   # the int8 tensor is the output of the input QUANTIZE
        t_q = m.tensors[next(o for o in m.ops if m.inputs[0] in o.inputs).outputs[0]]
    else:
        t_q = t_in
    x_f, x_q, y = d["x_float"], d["x_int8"], d["labels"]
    assert len(y) >= MIN_TEST_IMAGES and x_f.shape[0] == x_q.shape[0] == len(y)
    assert x_f.dtype == np.float32 and x_q.dtype == np.int8
    assert x_f.shape[1:] == x_q.shape[1:] == t_in.shape[1:]
    assert set(np.unique(y)) <= set(range(10)) and len(np.unique(y)) == 10
    assert float(d["input_scale"]) == np.float32(t_q.scale[0])
    assert int(d["input_zero_point"]) == t_q.zero_point[0]
    v = x_f / np.float32(t_q.scale[0])
    expect = np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5) + t_q.zero_point[0], -128, 127)
    np.testing.assert_array_equal(x_q, expect.astype(np.int8))


def test_readme_lists_the_committed_models() -> None:
    """models/tflite/README.md was regenerated with the models (same op tables)."""
    text = (MODEL_DIR / "README.md").read_text()
    for name in MODELS:
        assert f"## {name}\n" in text
        assert op_table(_model(name)) in text, f"README.md table of {name} is stale"
