"""pymodel.frontends.runtimes: the LiteRT / TFLM wrappers return every tensor of a run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pymodel.frontends import runtimes
from pymodel.frontends.oplist import read_model

MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / "tflite"


def _inputs(name: str, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    d = np.load(MODEL_DIR / f"{name}_test.npz")
    x = d["x_float"] if name == "float_io" else d["x_int8"]
    return x[:n], d["labels"][:n]


@pytest.mark.parametrize("runtime", list(runtimes.RUNTIMES))
def test_every_tensor_of_every_op(runtime: str) -> None:
    assert runtimes.available(runtime)
    path = MODEL_DIR / "misc.tflite"
    info = read_model(path)
    x, _ = _inputs("misc", 4)
    res = runtimes.run(path, x, runtime)
    computed = set(info.inputs) | {t for op in info.ops for t in op.outputs}
    want = computed if res.complete else set(info.inputs) | set(info.outputs)
    assert set(res.tensors) == want
    assert res.complete == (runtime != "litert-xnnpack")
    for t, a in res.tensors.items():
        ten = info.tensors[t]
        assert a.shape == (4,) + ten.shape[1:] and a.dtype == np.dtype(ten.dtype)
        assert res.names[t] == ten.name
    np.testing.assert_array_equal(res.tensors[info.inputs[0]], x)


@pytest.mark.parametrize("name", ["mobilenetv2_style", "resnet_style", "misc", "float_io"])
def test_reference_kernels_classify_the_bundled_images(name: str) -> None:
    """The bundled images and labels belong to the model (LiteRT reference kernels)."""
    x, y = _inputs(name)
    res = runtimes.run(MODEL_DIR / f"{name}.tflite", x, "litert-ref")
    out = res.tensors[read_model(MODEL_DIR / f"{name}.tflite").outputs[0]]
    accuracy = float(np.mean(np.argmax(out.reshape(len(x), -1), axis=1) == y))
    assert accuracy >= 0.75, accuracy


def test_default_interpreter_uses_xnnpack() -> None:
    assert runtimes.delegated_ops(MODEL_DIR / "mobilenetv2_style.tflite")


def test_bad_arguments() -> None:
    x, _ = _inputs("misc", 2)
    with pytest.raises(ValueError, match="runtime: 'tfl' is not one of litert-ref"):
        runtimes.run(MODEL_DIR / "misc.tflite", x, "tfl")
    with pytest.raises(ValueError, match=r"inputs\[0\]: got float32\[2, 16, 16, 1\]"):
        runtimes.run(MODEL_DIR / "misc.tflite", x.astype(np.float32), "litert-ref")
    with pytest.raises(ValueError, match="2 arrays given, the model has 1 inputs"):
        runtimes.run(MODEL_DIR / "misc.tflite", [x, x], "litert-ref")
