"""The operators of a ``.tflite`` model, with their builtin options, as plain Python data.

A presentation view over :mod:`pymodel.frontends.tflite_reader`, the one place that parses
the flatbuffer (with the ``tflite`` schema package from PyPI): the same tensors and
operators, with the enum-valued options (``padding``, ``fused_activation_function``) given
by name, per-axis scales as tuples and a ``constant`` flag per tensor, for tables and
listings.  The importer works on the reader's own dataclasses.

Used by the test-model generator (``scripts/gen_tflite_models.py``, for the models' README),
the op-coverage test and the runtime study.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tflite

from pymodel.frontends.tflite_reader import TfModel, parse_tflite, read_tflite

__all__ = ["OpInfo", "TensorInfo", "ModelInfo", "read_model", "format_options", "op_table"]

_PADDING = {v: k for k, v in vars(tflite.Padding).items() if not k.startswith("_")}
_ACTIVATION = {v: k for k, v in vars(tflite.ActivationFunctionType).items() if not k.startswith("_")}
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


def _named(options: dict[str, object]) -> dict[str, object]:
    """The reader's options with enum fields by name and numpy scalars as Python ones."""
    out: dict[str, object] = {}
    for key, value in options.items():
        if key in _ENUM_FIELDS:
            value = _ENUM_FIELDS[key].get(value, value)
        elif isinstance(value, (bool, np.bool_)):
            value = bool(value)
        elif isinstance(value, (int, np.integer)):
            value = int(value)
        elif isinstance(value, (float, np.floating)):
            value = float(value)
        out[key] = value
    return out


def read_model(source: str | Path | bytes) -> ModelInfo:
    """Parse a ``.tflite`` file (path or bytes) into :class:`ModelInfo` (its one subgraph).

    Raises:
        ValueError: as :func:`pymodel.frontends.tflite_reader.read_tflite`.
    """
    model: TfModel = (read_tflite(source) if isinstance(source, (str, Path))
                      else parse_tflite(bytes(source)))
    tensors = tuple(TensorInfo(
        index=t.index, name=t.name, dtype=t.dtype, shape=t.shape,
        scale=tuple(float(v) for v in t.scale), zero_point=tuple(int(v) for v in t.zero_point),
        quantized_dimension=t.quantized_dimension, constant=t.data is not None, data=t.data,
    ) for t in model.tensors)
    ops = tuple(OpInfo(index=op.index, name=op.opcode, options=_named(dict(op.options)),
                       inputs=op.inputs, outputs=op.outputs) for op in model.operators)
    return ModelInfo(tensors=tensors, ops=ops, inputs=model.inputs, outputs=model.outputs)


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
