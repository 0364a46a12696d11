"""Every tensor of every committed TFLite test model: golden model == LiteRT, element by element.

The models are imported (``pymodel.frontends.tflite_import``, rounding profile
``litert``) and run in the golden model; LiteRT runs them with its reference kernels
(``BUILTIN_REF``, all intermediate tensors preserved) on the model's 64 bundled test
images and 64 seeded random int8 inputs.  Two comparisons per model:

* whole graph: the golden model runs every layer on its *own* tensors (errors would
  propagate and show downstream);
* isolated: each golden layer runs on LiteRT's input tensors, so a difference is the
  op's own.

Both must give zero differing elements.  LiteRT's optimized kernels and its default
(XNNPACK) interpreter are measured in ``docs/conformance.md``, not asserted here.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from pymodel.frontends.tflite_import import import_tflite
from pymodel.study import conformance as C

MODELS = Path(__file__).resolve().parents[1] / "models" / "tflite"
NAMES = sorted(p.stem for p in MODELS.glob("*.tflite"))


@pytest.fixture(autouse=True)
def _quiet_litert():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # preserve_all_tensors is for debugging
        yield


def test_models_are_committed():
    assert {"mobilenetv2_style", "resnet_style", "misc"} <= set(NAMES), NAMES


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("isolate", [False, True], ids=["graph", "isolated"])
def test_every_tensor_equals_litert_reference(name, isolate, seed):
    path = MODELS / f"{name}.tflite"
    qnet = import_tflite(path)
    x = C.model_inputs(path, qnet, images=64, random=64, seed=seed)
    assert len(x) == 128
    rows = C.compare(path, x, "reference", qnet, isolate=isolate)
    assert len(rows) == len(qnet.layers)
    bad = [(r.layer, r.op, r.differing, r.max_abs) for r in rows if r.differing]
    assert not bad, f"seed {seed}: layers differing from LiteRT's reference kernels: {bad}"
    assert sum(r.elements for r in rows) > 0


def test_double_rounding_in_fully_connected_differs_from_litert():
    """The ``litert`` profile's single rounding in FULLY_CONNECTED is load-bearing:
    gemmlowp double rounding there disagrees with LiteRT's reference FC on ties."""
    path = MODELS / "resnet_style.tflite"
    qnet = import_tflite(path, rounding="double")
    x = C.model_inputs(path, qnet, images=64, random=1024, seed=0)   # fixed: ~8 ties expected
    rows = {r.op: r for r in C.compare(path, x, "reference", qnet, isolate=True)}
    assert rows["fully_connected"].differing > 0
    assert rows["conv2d"].differing == 0
