"""The operators of a ``.tflite`` model, with their builtin options, as plain Python data.

The flatbuffer is parsed with the ``tflite`` package (the generated TFLite schema bindings
on PyPI); nothing here reads bytes by hand.  The options of an operator are read
generically: every accessor of its ``*Options`` table that takes no argument becomes one
entry, with the schema's snake_case field name (``StrideW`` -> ``stride_w``), and the
enum-valued fields (``padding``, ``fused_activation_function``) are given by name.

Used by the test-model generator (``scripts/gen_tflite_models.py``, for the models' README),
the op-coverage test and the runtime study.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tflite
from tflite.utils import BUILTIN_OPCODE2NAME

__all__ = ["OpInfo", "TensorInfo", "ModelInfo", "read_model", "format_options", "op_table"]

_TENSOR_TYPES = {v: k for k, v in vars(tflite.TensorType).items() if not k.startswith("_")}
_PADDING = {v: k for k, v in vars(tflite.Padding).items() if not k.startswith("_")}
_ACTIVATION = {v: k for k, v in vars(tflite.ActivationFunctionType).items() if not k.startswith("_")}
_OPTION_CLASS = {v: k for k, v in vars(tflite.BuiltinOptions).items() if not k.startswith("_")}
_ENUM_FIELDS = {"padding": _PADDING, "fused_activation_function": _ACTIVATION}


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of the main subgraph.

    ``scale`` / ``zero_point`` have one entry per channel of ``quantized_dimension`` for a
    per-axis tensor, one for a per-tensor one, none for an unquantized tensor.
    ``constant`` is True when the tensor has data in the file (weights, biases, shapes);
    ``data`` is then that data as a numpy array of the tensor's dtype and shape.
    """

    index: int
    name: str
    dtype: str
    shape: tuple[int, ...]
    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    quantized_dimension: int
    constant: bool
    data: np.ndarray | None = field(default=None, compare=False, hash=False, repr=False)


@dataclass(frozen=True)
class OpInfo:
    """One operator: its position in the execution order, builtin name, options, tensors."""

    index: int
    name: str
    options: dict[str, object] = field(hash=False)
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclass(frozen=True)
class ModelInfo:
    """The main subgraph of a model: tensors, operators in execution order, graph I/O."""

    tensors: tuple[TensorInfo, ...]
    ops: tuple[OpInfo, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def _option_fields(cls: type) -> list[str]:
    """The accessor methods of a flatbuffers options table that take only ``self``."""
    names = []
    for name, fn in vars(cls).items():
        if name.startswith("_") or not callable(fn) or name in ("Init",):
            continue
        if name.startswith("GetRootAs") or name.endswith("BufferHasIdentifier"):
            continue
        if name.endswith(("AsNumpy", "Length", "IsNone")):
            continue
        params = list(inspect.signature(fn).parameters)
        if params == ["self"]:
            names.append(name)
    return names


def _read_options(op: "tflite.Operator") -> dict[str, object]:
    kind = op.BuiltinOptionsType()
    if kind == 0:
        return {}
    cls_name = _OPTION_CLASS[kind]
    cls = getattr(tflite, cls_name)
    table = op.BuiltinOptions()
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    out: dict[str, object] = {}
    for accessor in _option_fields(cls):
        key = _snake(accessor)
        value = getattr(opts, accessor)()
        if key in _ENUM_FIELDS:
            value = _ENUM_FIELDS[key].get(value, value)
        elif isinstance(value, (bool, np.bool_)):
            value = bool(value)
        elif isinstance(value, (int, np.integer)):
            value = int(value)
        elif isinstance(value, (float, np.floating)):
            value = float(value)
        out[key] = value
    # vector-valued options (e.g. SqueezeOptions.squeeze_dims, ReshapeOptions.new_shape)
    for name in vars(cls):
        if name.endswith("AsNumpy"):
            arr = getattr(opts, name)()
            key = _snake(name[: -len("AsNumpy")])
            out[key] = tuple(int(v) for v in np.atleast_1d(arr)) if not isinstance(arr, int) else ()
    return out


def read_model(source: str | Path | bytes) -> ModelInfo:
    """Parse a ``.tflite`` file (path or bytes) into :class:`ModelInfo` (subgraph 0)."""
    buf = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
    model = tflite.Model.GetRootAs(buf, 0)
    graph = model.Subgraphs(0)
    codes = []
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        codes.append(max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode()))
    tensors = []
    for t in range(graph.TensorsLength()):
        ten = graph.Tensors(t)
        q = ten.Quantization()
        scale: tuple[float, ...] = ()
        zp: tuple[int, ...] = ()
        qdim = 0
        if q is not None and q.ScaleLength() > 0:
            scale = tuple(float(s) for s in q.ScaleAsNumpy())
            zp = tuple(int(z) for z in q.ZeroPointAsNumpy())
            qdim = int(q.QuantizedDimension())
        buffer = model.Buffers(ten.Buffer())
        constant = buffer is not None and (buffer.DataLength() > 0 or buffer.Offset() > 1)
        data = None
        if constant:
            dtype = _TENSOR_TYPES[ten.Type()].lower()
            if buffer.DataLength() > 0:
                raw = buffer.DataAsNumpy().tobytes()
            else:  # stored after the flatbuffer (models > 2 GB); offset is from the file start
                raw = buf[buffer.Offset(): buffer.Offset() + buffer.Size()]
            shape = tuple(int(d) for d in ten.ShapeAsNumpy()) if ten.ShapeLength() else ()
            data = np.frombuffer(raw, dtype=np.dtype(dtype)).reshape(shape).copy()
        tensors.append(TensorInfo(
            index=t,
            name=ten.Name().decode(),
            dtype=_TENSOR_TYPES[ten.Type()].lower(),
            shape=tuple(int(d) for d in ten.ShapeAsNumpy()) if ten.ShapeLength() else (),
            scale=scale, zero_point=zp, quantized_dimension=qdim, constant=bool(constant),
            data=data,
        ))
    ops = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        ops.append(OpInfo(
            index=i,
            name=BUILTIN_OPCODE2NAME[codes[op.OpcodeIndex()]],
            options=_read_options(op),
            inputs=tuple(int(v) for v in op.InputsAsNumpy()) if op.InputsLength() else (),
            outputs=tuple(int(v) for v in op.OutputsAsNumpy()) if op.OutputsLength() else (),
        ))
    return ModelInfo(
        tensors=tuple(tensors), ops=tuple(ops),
        inputs=tuple(int(v) for v in graph.InputsAsNumpy()),
        outputs=tuple(int(v) for v in graph.OutputsAsNumpy()),
    )


def format_options(options: dict[str, object]) -> str:
    """``key=value`` pairs, sorted by key, for tables and messages."""
    def fmt(v: object) -> str:
        if isinstance(v, float):
            return f"{v:g}"
        if isinstance(v, tuple):
            return "[" + ",".join(str(x) for x in v) + "]"
        return str(v)
    return ", ".join(f"{k}={fmt(v)}" for k, v in sorted(options.items()))


def op_table(info: ModelInfo) -> str:
    """A markdown table of the operators: index, name, options, input and output shapes
    (``const`` before a shape marks an input stored in the file)."""
    lines = ["| # | op | options | inputs -> output |", "|---|---|---|---|"]
    for op in info.ops:
        ins = ", ".join(
            ("const" if info.tensors[i].constant else "") + str(list(info.tensors[i].shape))
            for i in op.inputs if i >= 0)
        outs = ", ".join(str(list(info.tensors[i].shape)) for i in op.outputs)
        lines.append(f"| {op.index} | {op.name} | {format_options(op.options)} | {ins} -> {outs} |")
    return "\n".join(lines) + "\n"
