"""``qmac import``: the artifact it writes, and one-line errors for every kind of bad model.

Bad models are one-op ``.tflite`` files built here with LiteRT's schema module (the
builder of ``scripts/litert_op_check.py``), plus truncations of a committed model; each
is imported by the command line in a subprocess, as a user would: exit status 2, one
line on stderr naming the file, the operator and what is allowed, no traceback, nothing
written.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pymodel.frontends.tflite_import import SUPPORTED, import_tflite
from pymodel.graph.artifact import load_artifact
from pymodel.graph.inference import run_tensors

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "models" / "tflite"


def _oc():
    spec = importlib.util.spec_from_file_location("litert_op_check",
                                                  REPO / "scripts" / "litert_op_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _qmac(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pymodel", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=120)


def _one_op(tmp: Path, name: str, op: str, dtype=np.int8, shape=(1, 4), scale=0.1,
            signature=None, tensor_type=None) -> Path:
    oc = _oc()
    t = dict(shape=list(shape), dtype=dtype, scale=scale if scale else None, zp=0)
    model = oc.build(getattr(oc.S.BuiltinOperator, op), None, None, [dict(t)], [dict(t)])
    if signature is not None or tensor_type is not None:
        m = oc.S.ModelT.InitFromPackedBuf(bytearray(model), 0)
        for tensor in m.subgraphs[0].tensors:
            if signature is not None:               # a dynamic dimension
                tensor.shapeSignature = list(signature)
            if tensor_type is not None:             # a TensorType the builder lacks
                tensor.type = tensor_type
        import flatbuffers
        fb = flatbuffers.Builder(1024)
        fb.Finish(m.Pack(fb), file_identifier=b"TFL3")
        model = bytes(fb.Output())
    path = tmp / f"{name}.tflite"
    path.write_bytes(model)
    return path


def test_import_writes_a_loadable_graph_artifact(tmp_path):
    out = tmp_path / "sub" / "mnv2"
    r = _qmac("import", str(MODELS / "mobilenetv2_style.tflite"), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"wrote {out}.yaml")
    qnet = load_artifact(out.with_suffix(".yaml"))
    assert qnet.meta["source"]["format"] == "tflite"
    ops = {q.op for q in qnet.layers}
    assert {"conv2d", "depthwise_conv2d", "add", "mean", "fully_connected", "softmax"} <= ops
    adds = [q for q in qnet.layers if q.op == "add"]
    assert all(len(q.inputs) == 2 for q in adds)           # residual: a DAG, not a chain
    dw2 = [q for q in qnet.layers if q.op == "depthwise_conv2d" and q.depth_multiplier == 2]
    assert dw2, "the depth-multiplier-2 layer"
    x = np.random.default_rng(0).integers(-128, 128, (3, *qnet.input_shape)).astype(np.int8)
    direct = run_tensors(import_tflite(MODELS / "mobilenetv2_style.tflite"), x)
    loaded = run_tensors(qnet, x)
    assert all(np.array_equal(direct[k], loaded[k]) for k in direct)


def test_eval_runs_an_imported_artifact(tmp_path):
    out = tmp_path / "resnet"
    assert _qmac("import", str(MODELS / "resnet_style.tflite"), "-o", str(out)).returncode == 0
    with np.load(MODELS / "resnet_style_test.npz") as z:
        np.savez(tmp_path / "data.npz", x=z["x_float"], y=z["labels"])
    r = _qmac("eval", str(out) + ".yaml", "--data", str(tmp_path / "data.npz"),
              "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "int accuracy" in r.stdout


@pytest.mark.parametrize("case", ["text", "truncated", "float", "int16", "unsupported",
                                  "dynamic", "batch2"])
def test_bad_models_get_one_line_errors(tmp_path, case):
    if case == "text":
        path = tmp_path / "notes.tflite"
        path.write_text("not a model\n")
        want = "not a TFLite model"
    elif case == "truncated":
        path = tmp_path / "cut.tflite"
        path.write_bytes((MODELS / "misc.tflite").read_bytes()[:3000])
        want = "truncated or corrupt"
    elif case == "float":
        path = _one_op(tmp_path, case, "RELU", dtype=np.float32, scale=None)
        want = "is float32: this is a float model"
    elif case == "int16":
        path = _one_op(tmp_path, case, "RELU", tensor_type=7)     # INT16
        want = "int16x8 model"
    elif case == "unsupported":
        path = _one_op(tmp_path, case, "TANH")
        want = "operator 0 (TANH): op TANH is not supported; supported: " + \
            ", ".join(sorted(SUPPORTED))
    elif case == "dynamic":
        path = _one_op(tmp_path, case, "RELU", signature=(-1, 4))
        want = "dynamic shape"
    else:
        path = _one_op(tmp_path, case, "RELU", shape=(2, 4))
        want = "batch dimension 2"
    out = tmp_path / "out" / "a"
    r = _qmac("import", str(path), "-o", str(out))
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith(f"qmac import: error: {path}"), lines[0]
    assert want in lines[0], lines[0]
    assert not out.with_suffix(".yaml").exists() and not out.with_suffix(".npz").exists()
