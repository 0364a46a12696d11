"""Bad ONNX models for ``qmac import`` (QDQ) and ``qmac import-float``: one line naming
the file and what is wrong, exit code 2, nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import onnx_models

REPO = Path(__file__).resolve().parents[1]


def _qmac(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pymodel", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=120)


def _float(tmp: Path):
    import onnx
    return onnx.load(str(onnx_models.float_digits(tmp / "f.onnx")))


def _tanh_qdq(tmp: Path) -> Path:
    """input -> Q -> DQ -> Tanh -> Q -> DQ -> output: a QDQ model with an unsupported op."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    inits = [numpy_helper.from_array(np.float32(0.01), "s"),
             numpy_helper.from_array(np.int8(0), "z")]
    N = helper.make_node
    nodes = [N("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q0"),
             N("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dq0"),
             N("Tanh", ["xd"], ["t"], name="my_tanh"),
             N("QuantizeLinear", ["t", "s", "z"], ["tq"], name="q1"),
             N("DequantizeLinear", ["tq", "s", "z"], ["y"], name="dq1")]
    g = helper.make_graph(nodes, "tanh", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                        [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    p = tmp / "tanh_qdq.onnx"
    onnx.save(m, str(p))
    return p


def _case(tmp: Path, kind: str) -> Path:
    import onnx
    from onnx import helper, numpy_helper
    p = tmp / f"{kind}.onnx"
    if kind == "unsupported_qdq":
        return _tanh_qdq(tmp)
    m = _float(tmp)
    if kind == "unsupported_float":               # Tanh after conv1's Relu
        relu = next(n for n in m.graph.node if n.op_type == "Relu")
        out = relu.output[0]
        relu.output[0] = out + "_pre"
        m.graph.node.insert(list(m.graph.node).index(relu) + 1,
                            helper.make_node("Tanh", [out + "_pre"], [out], name="odd_tanh"))
    elif kind == "dynamic":
        m.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
        m.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "N"
    elif kind == "nonconst":                      # conv1's weights computed at run time
        conv = next(n for n in m.graph.node if n.op_type == "Conv")
        w = conv.input[1]
        m.graph.initializer.append(numpy_helper.from_array(np.float32(1.0), "one"))
        m.graph.node.insert(0, helper.make_node("Mul", [w, "one"], [w + "_x1"], name="wmul"))
        conv.input[1] = w + "_x1"
    elif kind == "old_opset":
        m.opset_import[0].version = 11
    elif kind in ("external", "truncated"):
        pass
    if kind == "external":
        onnx.save(m, str(p), save_as_external_data=True, all_tensors_to_one_file=True,
                  location="ext.data", size_threshold=0)
        (tmp / "ext.data").unlink()
    else:
        onnx.save(m, str(p))
    if kind == "truncated":
        data = p.read_bytes()
        p.write_bytes(data[:len(data) // 2])
    return p


CASES = {
    # kind: (command, text the one line must hold)
    "unsupported_qdq": ("import", ["'my_tanh' (Tanh)", "op Tanh is not supported",
                                   "supported: QuantizeLinear", "Conv"]),
    "unsupported_float": ("import-float", ["'odd_tanh' (Tanh)", "op Tanh is not supported",
                                           "supported: Conv"]),
    "dynamic": ("import-float", ["dynamic shape", "'N'"]),
    "nonconst": ("import-float", ["not a constant initializer", "conv1.weight_x1"]),
    "old_opset": ("import", ["opset 11 is too old", ">= 13"]),
    "external": ("import-float", ["ext.data", "missing"]),
    "truncated": ("import", ["not a readable ONNX model"]),
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_bad_model_one_line_exit_2_nothing_written(tmp_path, kind):
    cmd, texts = CASES[kind]
    path = _case(tmp_path, kind)
    out = tmp_path / "out" / "x"
    r = _qmac(cmd, str(path), "-o", str(out))
    assert r.returncode == 2, (r.stdout, r.stderr)
    line = r.stderr.strip()
    assert line.count("\n") == 0 and "Traceback" not in line, line
    assert str(path) in line or path.name in line, line
    for t in texts:
        assert t in line, (t, line)
    assert not list(tmp_path.glob("out/*")), "something was written"


def test_both_commands_refuse_the_other_kind(tmp_path):
    f = onnx_models.float_digits(tmp_path / "f.onnx")
    r = _qmac("import", str(f), "-o", str(tmp_path / "a"))
    assert r.returncode == 2 and "float model" in r.stderr and "import-float" in r.stderr
    r = _qmac("import-float", str(_tanh_qdq(tmp_path)), "-o", str(tmp_path / "b"))
    assert r.returncode == 2 and "quantized (QDQ) model" in r.stderr, r.stderr
