"""Read a ``.tflite`` flatbuffer into plain Python: tensors, operators, options.

The flatbuffer is parsed with the ``tflite`` package (PyPI), the generated Python
bindings of TFLite's ``schema.fbs``; nothing here decodes flatbuffers by hand.  This
module only *reads*: it turns the schema's accessor objects into frozen dataclasses with
numpy arrays, checks what every importer needs checked (a TFLite file at all, one
subgraph, static shapes, batch 1, known builtin ops) and leaves the mapping onto qmac's
ops to :mod:`pymodel.frontends.tflite_import`.

Every error is a ``ValueError`` whose message starts with the file name, so the command
line prints it as one line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

# TensorType enum values of schema.fbs -> numpy dtypes.
_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 6: np.bool_,
           7: np.int16, 9: np.int8, 10: np.float64, 17: np.int4 if hasattr(np, "int4") else None}
_DTYPE_NAMES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string",
                6: "bool", 7: "int16", 8: "complex64", 9: "int8", 10: "float64", 17: "int4"}


@dataclass(frozen=True)
class TfTensor:
    """One tensor of the subgraph.

    Attributes:
        index: tensor index in the subgraph.
        name: the converter's tensor name.
        shape: static shape (with the batch dimension).
        dtype: numpy dtype name (``int8``, ``int32``, ``float32`` ...).
        scale: float32 ``[Q]`` quantization scales (empty: not quantized); ``Q = 1`` per
            tensor, ``Q = shape[quantized_dimension]`` per axis.
        zero_point: int64 ``[Q]``.
        quantized_dimension: the per-axis dimension (0 when per tensor).
        data: the constant buffer as an array of ``shape`` (``None`` for activations).
    """

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: np.ndarray
    zero_point: np.ndarray
    quantized_dimension: int = 0
    data: np.ndarray | None = None

    @property
    def quantized(self) -> bool:
        return self.scale.size > 0

    @property
    def per_axis(self) -> bool:
        return self.scale.size > 1


@dataclass(frozen=True)
class TfOperator:
    """One operator: its builtin name, tensor indices and decoded options.

    ``options`` keys are the schema's option fields in snake_case
    (``stride_h``, ``fused_activation_function``, ``depth_multiplier`` ...); enum values
    are kept as the schema's integers; vectors become tuples.
    """

    index: int
    opcode: str
    version: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TfModel:
    """A single-subgraph TFLite model."""

    path: str
    tensors: tuple[TfTensor, ...]
    operators: tuple[TfOperator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    description: str = ""


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _options(op: Any, tfl: Any) -> dict[str, Any]:
    """Decode an operator's builtin options table into a dict (schema accessors only)."""
    otype = op.BuiltinOptionsType()
    if otype == 0:
        return {}
    names = {v: k for k, v in vars(tfl.BuiltinOptions).items() if isinstance(v, int)}
    cls = getattr(tfl, names.get(otype, ""), None)
    table = op.BuiltinOptions()
    if cls is None or table is None:
        return {}
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    out: dict[str, Any] = {}
    methods = [m for m in dir(cls) if m[:1].isupper() and not m.startswith(("GetRootAs", "Init"))
               and not m.endswith(("BufferHasIdentifier", "IsNone", "Length", "AsNumpy"))]
    for m in methods:
        if hasattr(cls, m + "Length"):
            n = getattr(opts, m + "Length")()
            out[_snake(m)] = tuple(int(getattr(opts, m)(i)) for i in range(n))
        else:
            try:
                out[_snake(m)] = getattr(opts, m)()
            except TypeError:                        # accessor that needs an argument
                continue
    return out


def read_tflite(path: str | Path) -> TfModel:
    """Parse ``path`` (a ``.tflite`` file) into a :class:`TfModel`.

    Raises:
        ValueError (message starts with the path): unreadable file, not a TFLite
        flatbuffer (no ``TFL3`` identifier), truncated or corrupt buffer, not exactly one
        subgraph.
    """
    p = Path(path)
    try:
        buf = p.read_bytes()
    except OSError as exc:
        raise ValueError(f"{p}: cannot read ({exc.strerror or exc})") from None
    return parse_tflite(buf, str(p))


def parse_tflite(buf: bytes, src: str = "<bytes>") -> TfModel:
    """Parse the bytes of a ``.tflite`` file; ``src`` names it in error messages.

    Raises:
        ValueError (message starts with ``src``): as :func:`read_tflite`.
    """
    import tflite as tfl

    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise ValueError(f"{src}: not a TFLite model (no 'TFL3' flatbuffer identifier at bytes "
                         f"4..8; got {buf[4:8]!r})")
    try:
        return _parse(tfl, buf, src)
    except ValueError:
        raise
    except Exception as exc:                         # the bindings index past the end
        raise ValueError(f"{src}: truncated or corrupt TFLite flatbuffer ({type(exc).__name__}: "
                         f"{exc}; {len(buf)} bytes)") from None


def _parse(tfl: Any, buf: bytes, src: str) -> TfModel:
    model = tfl.Model.GetRootAsModel(buf, 0)
    if model.SubgraphsLength() != 1:
        raise ValueError(f"{src}: {model.SubgraphsLength()} subgraphs; qmac imports models "
                         "with exactly one (no control flow, no signatures with extra graphs)")
    sg = model.Subgraphs(0)
    codes = []
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        if code == 32:
            custom = oc.CustomCode()
            codes.append(("CUSTOM:" + (custom.decode() if custom else "?"), oc.Version()))
        else:
            from tflite.utils import BUILTIN_OPCODE2NAME
            codes.append((BUILTIN_OPCODE2NAME.get(code, f"BUILTIN_{code}"), oc.Version()))
    tensors = []
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        shape = tuple(int(d) for d in (t.ShapeAsNumpy() if t.ShapeLength() else []))
        sig = tuple(int(d) for d in (t.ShapeSignatureAsNumpy() if t.ShapeSignatureLength()
                                     else shape))
        name = t.Name().decode(errors="replace") if t.Name() else f"tensor{i}"
        tt = int(t.Type())
        q = t.Quantization()
        scale = np.zeros(0, np.float32)
        zp = np.zeros(0, np.int64)
        qdim = 0
        if q is not None and q.ScaleLength():
            scale = np.asarray(q.ScaleAsNumpy(), np.float32)
            zp = (np.asarray(q.ZeroPointAsNumpy(), np.int64) if q.ZeroPointLength()
                  else np.zeros(scale.shape, np.int64))
            qdim = int(q.QuantizedDimension())
        data = None
        b = model.Buffers(t.Buffer()) if t.Buffer() < model.BuffersLength() else None
        if b is not None and (b.DataLength() or b.Offset() > 1):
            dt = _DTYPES.get(tt)
            if dt is None:
                raise ValueError(f"{src}: tensor {i} ({name!r}) has dtype "
                                 f"{_DTYPE_NAMES.get(tt, tt)}, which qmac does not read")
            if b.DataLength():
                raw = b.DataAsNumpy().tobytes()
            else:   # stored after the flatbuffer (models > 2 GB): offset from the file start
                raw = buf[b.Offset(): b.Offset() + b.Size()]
            arr = np.frombuffer(raw, dtype=dt)
            if arr.size != int(np.prod(shape)):
                raise ValueError(f"{src}: tensor {i} ({name!r}): buffer holds {arr.size} "
                                 f"values for shape {list(shape)}")
            data = arr.reshape(shape).copy()
        if any(d < 0 for d in sig):
            shape = tuple(-1 if s < 0 else d for d, s in zip(shape, sig))
        tensors.append(TfTensor(i, name, shape, _DTYPE_NAMES.get(tt, str(tt)), scale, zp,
                                qdim, data))
    ops = []
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        opcode, version = codes[op.OpcodeIndex()]
        ins = tuple(int(v) for v in (op.InputsAsNumpy() if op.InputsLength() else []))
        outs = tuple(int(v) for v in (op.OutputsAsNumpy() if op.OutputsLength() else []))
        ops.append(TfOperator(i, opcode, int(version), ins, outs, _options(op, tfl)))
    desc = model.Description().decode(errors="replace") if model.Description() else ""
    return TfModel(src, tuple(tensors), tuple(ops),
                   tuple(int(v) for v in sg.InputsAsNumpy()),
                   tuple(int(v) for v in sg.OutputsAsNumpy()), desc)
