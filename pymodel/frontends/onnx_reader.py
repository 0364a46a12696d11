"""Read an ``.onnx`` file for qmac's ONNX frontends: the checks every importer needs.

Parsing, external data, validation and shape inference are the ``onnx`` package's
(PyPI): ``onnx.load``, ``onnx.checker.check_model``, ``onnx.shape_inference.infer_shapes``
(strict) and ``onnx.numpy_helper``; nothing here decodes protobuf.  On top of them this
module refuses, with one ``ValueError`` line starting with the file name:

* a file that is not a readable ONNX model (truncated, or not ONNX at all);
* an external-data model whose data file is missing (named);
* a default-domain opset older than :data:`MIN_OPSET` (per-axis ``QuantizeLinear`` and
  the ``axes``-as-input ops arrived in opset 13);
* a model that fails the checker or shape inference;
* a graph input with a dynamic or non-1 batch dimension, or any dynamic dimension.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

MIN_OPSET = 13


@dataclass(frozen=True)
class OnnxGraph:
    """The parts of one model the importers read.

    Attributes:
        path: the file, for messages.
        model: the shape-inferred ``onnx.ModelProto``.
        opset: the default-domain opset version.
        inits: initializers by name (numpy arrays, dtype as stored).
        shapes: static shape of every tensor shape inference reached (batch included).
        inputs: graph input names that are not initializers.
        outputs: graph output names.
    """

    path: str
    model: Any
    opset: int
    inits: Mapping[str, np.ndarray]
    shapes: Mapping[str, tuple[int, ...]]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    @property
    def nodes(self) -> Any:
        return self.model.graph.node

    def err(self, node: Any | None, msg: str) -> ValueError:
        where = f" node {node.name!r} ({node.op_type}):" if node is not None else ""
        return ValueError(f"{self.path}:{where} {msg}")


def _dims(vi: Any) -> list[Any]:
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return ["?"]
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
            for d in t.shape.dim]


def read_onnx(path: str | Path) -> OnnxGraph:
    """Load, check and shape-infer ``path`` (see the module doc)."""
    import onnx
    from google.protobuf.message import DecodeError
    from onnx import numpy_helper
    from onnx.external_data_helper import load_external_data_for_model, uses_external_data

    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: file not found (expected an .onnx model)")
    try:
        model = onnx.load(str(p), load_external_data=False)
    except (DecodeError, RuntimeError, ValueError, OSError) as exc:
        raise ValueError(f"{p}: not a readable ONNX model (truncated or not ONNX?): "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                         ) from None
    if not model.graph.node:
        raise ValueError(f"{p}: not an ONNX model with a graph (no nodes; truncated or not "
                         "ONNX?)")
    for t in model.graph.initializer:
        if uses_external_data(t):
            loc = {e.key: e.value for e in t.external_data}.get("location", "")
            if not (p.parent / loc).is_file():
                raise ValueError(f"{p}: initializer {t.name!r} is stored in external data "
                                 f"file {loc!r}, which is missing (expected beside the model "
                                 f"in {p.parent})")
    try:
        load_external_data_for_model(model, str(p.parent))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{p}: external data could not be read: {exc}") from None
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < MIN_OPSET:
        raise ValueError(f"{p}: opset {opset} is too old; qmac imports opset >= {MIN_OPSET} "
                         "(convert with onnx.version_converter.convert_version(model, 13))")
    try:
        onnx.checker.check_model(model)
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError,
            RuntimeError) as exc:
        raise ValueError(f"{p}: the ONNX checker / shape inference refuses the model: "
                         f"{str(exc).splitlines()[0]}") from None
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    g = model.graph
    inputs = tuple(v.name for v in g.input if v.name not in inits)
    for v in g.input:
        if v.name in inits:
            continue
        dims = _dims(v)
        if any(not isinstance(d, int) or d <= 0 for d in dims):
            raise ValueError(f"{p}: input {v.name!r} has a dynamic shape {dims}; qmac needs "
                             "static shapes (re-export with a fixed input size, or "
                             "onnx.tools.update_model_dims)")
        if not dims or dims[0] != 1:
            raise ValueError(f"{p}: input {v.name!r} has batch dimension "
                             f"{dims[0] if dims else 'none'} (shape {dims}); qmac imports "
                             "batch-1 models")
    shapes: dict[str, tuple[int, ...]] = {}
    for v in [*g.input, *g.value_info, *g.output]:
        dims = _dims(v)
        if all(isinstance(d, int) and d > 0 for d in dims) or dims == []:
            shapes[v.name] = tuple(int(d) for d in dims)
    for k, a in inits.items():
        shapes[k] = tuple(a.shape)
    return OnnxGraph(path=str(p), model=model, opset=int(opset), inits=inits, shapes=shapes,
                     inputs=inputs, outputs=tuple(v.name for v in g.output))
