"""Run a ``.tflite`` model under the reference runtimes and return its tensors.

Thin wrappers around the interpreters the conformance tests compare qmac's golden model
with.  Each takes a batch of inputs, runs the (batch-1) model once per image and returns
every tensor the runtime lets one read, stacked over the batch:

============== =================================================================== ==========
runtime        what runs                                                           tensors
============== =================================================================== ==========
litert-ref     LiteRT, reference kernels (``OpResolverType.BUILTIN_REF``)          all
litert-opt     LiteRT, optimized builtin kernels, no delegate                      all
               (``BUILTIN_WITHOUT_DEFAULT_DELEGATES``)
litert-xnnpack LiteRT's default interpreter (``AUTO``: the XNNPACK delegate takes  inputs and
               the ops it supports, the optimized builtin kernels run the rest)    outputs
tflm           TensorFlow Lite for Microcontrollers (``tflite-micro``),            all
               ``kPreserveAllTensors``
============== =================================================================== ==========

"All" means every tensor that is a graph input or an operator output (constants --
weights, biases, shapes -- are the file's data; read them with
:func:`pymodel.frontends.oplist.read_model`).  LiteRT keeps them with
``experimental_preserve_all_tensors=True``; LiteRT turns that option off for the XNNPACK
delegate (a delegated partition computes its intermediates in its own buffers), so
``litert-xnnpack`` returns only the graph inputs and outputs.  One thread everywhere: the
results do not depend on the machine's core count.

Hand-written only as far as the interpreters' Python APIs leave it to the caller (the
per-image loop, the tensor collection); the kernels are the runtimes' own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from pymodel.frontends.oplist import read_model

__all__ = ["RUNTIMES", "RunResult", "available", "run", "delegated_ops"]

RUNTIMES: dict[str, str] = {
    "litert-ref": "LiteRT reference kernels (BUILTIN_REF)",
    "litert-opt": "LiteRT optimized builtin kernels (BUILTIN_WITHOUT_DEFAULT_DELEGATES)",
    "litert-xnnpack": "LiteRT default interpreter (XNNPACK delegate)",
    "tflm": "TensorFlow Lite for Microcontrollers",
}


@dataclass
class RunResult:
    """Tensors of one run over a batch.

    ``tensors[i]`` is tensor ``i`` of the model (its index in the flatbuffer) for every
    image, shape (N, *tensor shape[1:]) -- the batch-1 axis of the model is the image axis --
    dtype as in the model (int8, int32 or float32).  ``names[i]`` is the tensor's name.
    ``complete`` says whether every operator output is present (False for litert-xnnpack).
    """

    runtime: str
    tensors: dict[int, np.ndarray]
    names: dict[int, str]
    complete: bool = True
    notes: list[str] = field(default_factory=list)


def available(runtime: str) -> bool:
    """True when the runtime's Python package imports here."""
    _check_runtime(runtime)
    try:
        if runtime == "tflm":
            from tflite_micro.python.tflite_micro import runtime as _  # noqa: F401
        else:
            from ai_edge_litert import interpreter as _  # noqa: F401,F811
    except ImportError:
        return False
    return True


def _check_runtime(runtime: str) -> None:
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime: {runtime!r} is not one of {', '.join(RUNTIMES)}")


def _model_bytes(model: str | Path | bytes) -> bytes:
    return Path(model).read_bytes() if isinstance(model, (str, Path)) else bytes(model)


def _as_inputs(x: np.ndarray | Sequence[np.ndarray], n_inputs: int) -> list[np.ndarray]:
    xs = [x] if isinstance(x, np.ndarray) else list(x)
    if len(xs) != n_inputs:
        raise ValueError(f"inputs: {len(xs)} arrays given, the model has {n_inputs} inputs")
    n = {len(a) for a in xs}
    if len(n) != 1:
        raise ValueError(f"inputs: batch sizes differ: {sorted(n)}")
    return xs


def _litert(model: bytes, runtime: str):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    if runtime == "litert-ref":
        kind, keep = OpResolverType.BUILTIN_REF, True
    elif runtime == "litert-opt":
        kind, keep = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES, True
    else:
        kind, keep = OpResolverType.AUTO, False
    it = Interpreter(model_content=model, num_threads=1, experimental_op_resolver_type=kind,
                     experimental_preserve_all_tensors=keep)
    it.allocate_tensors()
    return it


def delegated_ops(model: str | Path | bytes) -> bool:
    """True when LiteRT's default interpreter hands at least one op of ``model`` to the
    XNNPACK delegate (a DELEGATE node appears in its graph)."""
    it = _litert(_model_bytes(model), "litert-xnnpack")
    return any(op["op_name"] == "DELEGATE" for op in it._get_ops_details())


def run(model: str | Path | bytes, x: np.ndarray | Sequence[np.ndarray], runtime: str) -> RunResult:
    """Run ``model`` on a batch and collect its tensors.

    ``x``: one array per graph input (a bare array for a single-input model), each
    (N, *input shape[1:]) of the input's dtype (int8, or float32 for a float interface).
    Returns a :class:`RunResult`.  Raises ValueError on a bad runtime name or input shape.
    """
    _check_runtime(runtime)
    blob = _model_bytes(model)
    info = read_model(blob)
    xs = _as_inputs(x, len(info.inputs))
    for k, (a, t) in enumerate(zip(xs, info.inputs)):
        ten = info.tensors[t]
        if a.shape[1:] != ten.shape[1:] or a.dtype != np.dtype(ten.dtype):
            raise ValueError(f"inputs[{k}]: got {a.dtype}{list(a.shape)}, the model's input "
                             f"{ten.name!r} is {ten.dtype}[N, {', '.join(map(str, ten.shape[1:]))}]")
    computed = list(info.inputs) + [t for op in info.ops for t in op.outputs]
    if runtime == "litert-xnnpack":
        wanted = list(info.inputs) + list(info.outputs)
    else:
        wanted = computed
    wanted = list(dict.fromkeys(wanted))
    names = {t: info.tensors[t].name for t in wanted}
    n = len(xs[0])
    out = {t: np.empty((n,) + info.tensors[t].shape[1:], np.dtype(info.tensors[t].dtype))
           for t in wanted}

    if runtime == "tflm":
        from tflite_micro.python.tflite_micro import runtime as tflm

        it = tflm.Interpreter.from_bytes(
            blob, intrepreter_config=tflm.InterpreterConfig.kPreserveAllTensors)
        for i in range(n):
            for k, a in enumerate(xs):
                it.set_input(a[i:i + 1], k)
            it.invoke()
            for t in wanted:
                out[t][i] = it.GetTensor(t, 0)["tensor_data"].reshape(out[t].shape[1:])
    else:
        it = _litert(blob, runtime)
        in_idx = [d["index"] for d in it.get_input_details()]
        for i in range(n):
            for k, a in enumerate(xs):
                it.set_tensor(in_idx[k], a[i:i + 1])
            it.invoke()
            for t in wanted:
                out[t][i] = it.get_tensor(t).reshape(out[t].shape[1:])
    return RunResult(runtime=runtime, tensors=out, names=names,
                     complete=runtime != "litert-xnnpack")
