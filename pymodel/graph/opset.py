"""The artifact's graph ops: how each is prepared from a framework's tensors and run.

For every op of :data:`pymodel.graph.artifact.GRAPH_OPS` this module holds two functions:

* ``prepare`` -- at import time, from the source model's tensors (float32 scales, zero
  points, constant operands, options) to the integer ``params`` / ``consts`` stored in the
  artifact, exactly as the TFLite kernel's ``Prepare`` computes them (it calls the
  ``prepare_*`` function of the op in :mod:`pymodel.ops`);
* ``run`` -- at inference time, the op's integer kernel from :mod:`pymodel.ops` on the
  stored integers only (no scale is read).

The arithmetic itself lives in :mod:`pymodel.ops` (one module per role); this is the
table that binds artifact layers to it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

INT8_MIN, INT8_MAX = -128, 127


@dataclass(frozen=True)
class OpSpec:
    """What ``prepare`` hands the importer for one layer.

    Attributes:
        params: integer parameters (ints, bools, strings, tuples of ints).
        consts: constant operands by role (int8 / int32 arrays).
        act_min, act_max: the output clamp (int8).
    """

    params: Mapping[str, Any] = field(default_factory=dict)
    consts: Mapping[str, np.ndarray] = field(default_factory=dict)
    act_min: int = INT8_MIN
    act_max: int = INT8_MAX


@dataclass(frozen=True)
class OpDef:
    prepare: Callable[..., OpSpec]
    run: Callable[[Any, Sequence[np.ndarray]], np.ndarray]


def _params_of(obj: Any) -> dict[str, Any]:
    """A frozen params dataclass -> plain dict of ints / tuples (for the YAML)."""
    out = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if isinstance(v, np.ndarray):
            v = tuple(v.tolist())
        elif isinstance(v, np.generic):
            v = v.item()
        out[f.name] = v
    return out


#: Public name of :func:`_params_of` (PTQ stores a graph op's prepared parameters with it).
params_of = _params_of


def _axis(axis: int, rank_with_batch: int, what: str) -> int:
    """A TFLite axis (batch included, may be negative) -> per-image axis."""
    a = axis + rank_with_batch if axis < 0 else axis
    if not 1 <= a < rank_with_batch:
        raise ValueError(f"{what}: axis {axis} is the batch axis or out of range for rank "
                         f"{rank_with_batch}")
    return a - 1


# ----------------------------------------------------------------------------------------
# Data movement: reshape, pad, concatenation (pymodel.ops.shape; quantization passes through)
# ----------------------------------------------------------------------------------------

def _prepare_reshape(*, input_quants: Sequence[Any], output_quant: Any, **_: Any) -> OpSpec:
    q_in, q_out = input_quants[0], output_quant
    if (q_in.scale, q_in.zero_point) != (q_out.scale, q_out.zero_point):
        raise ValueError("RESHAPE / SQUEEZE input and output quantization differ")
    return OpSpec()


def _run_reshape(layer: Any, xs: Sequence[np.ndarray]) -> np.ndarray:
    from pymodel.ops import shape as S
    return S.reshape(xs[0], (xs[0].shape[0], *layer.output_shape))


def _prepare_pad(*, consts: Mapping[int, Any], inputs: Sequence[Any],
                 input_shapes: Sequence[tuple[int, ...]], output: Any, **_: Any) -> OpSpec:
    from pymodel.ops import shape as S
    if 1 not in consts:
        raise ValueError("PAD needs constant paddings")
    pads = np.asarray(consts[1].data, np.int64).reshape(-1, 2)
    if pads.shape[0] != len(input_shapes[0]) + 1 or np.any(pads[0] != 0):
        raise ValueError(f"PAD paddings {pads.tolist()}: the batch axis must not be padded")
    (si, zi), (so, zo) = _quant_of(inputs[0]), _quant_of(output)
    if (si, zi) != (so, zo):
        raise ValueError("PAD input and output quantization differ (TFLite requires equal)")
    if 2 in consts:                                   # PADV2's constant value
        c = consts[2]
        cs, cz = _quant_of(c)
        prm = S.prepare_pad(zo, int(np.asarray(c.data).reshape(-1)[0]), cs, cz, so)
    else:
        prm = S.prepare_pad(zo)
    return OpSpec(params={**_params_of(prm), "paddings": tuple(tuple(int(v) for v in p)
                                                               for p in pads)})


def _run_pad(layer: Any, xs: Sequence[np.ndarray]) -> np.ndarray:
    from pymodel.ops import shape as S
    return S.pad(xs[0], layer.params["paddings"], S.PadParams(layer.params["pad_value"]))


def _prepare_concatenation(*, op_options: Mapping[str, Any], inputs: Sequence[Any],
                           input_shapes: Sequence[tuple[int, ...]], output: Any,
                           **_: Any) -> OpSpec:
    from pymodel.ops import shape as S
    qs = [_quant_of(t) for t in inputs]
    so, zo = _quant_of(output)
    prm = S.prepare_concatenation([s for s, _ in qs], [z for _, z in qs], so, zo,
                                  _fused(op_options))
    axis = _axis(int(op_options.get("axis", -1)), len(input_shapes[0]) + 1, "CONCATENATION")
    return OpSpec(params={**_params_of(prm), "axis": axis + 1})


def _run_concatenation(layer: Any, xs: Sequence[np.ndarray]) -> np.ndarray:
    from pymodel.ops import shape as S
    return S.concatenation(xs, layer.params["axis"], S.ConcatParams(layer.params["zero_point"]))


def _prepare_quantize(*, inputs: Sequence[Any], output: Any, rounding: str = "double",
                      **_: Any) -> OpSpec:
    from pymodel.ops import quantize as Q
    if inputs[0].dtype != "int8":
        raise ValueError(f"QUANTIZE from {inputs[0].dtype} inside the graph; only int8 -> "
                         "int8 requantization (and float -> int8 at the model input)")
    (si, zi), (so, zo) = _quant_of(inputs[0]), _quant_of(output)
    return OpSpec(params=_params_of(Q.prepare_requantize(si, zi, so, zo, rounding=rounding)))


def _run_quantize(layer: Any, xs: Sequence[np.ndarray]) -> np.ndarray:
    from pymodel.ops import quantize as Q
    return Q.requantize(xs[0], Q.RequantizeParams(**layer.params))


# ----------------------------------------------------------------------------------------
# Arithmetic ops: the kernels of pymodel.ops
# ----------------------------------------------------------------------------------------

#: TFLite's ActivationFunctionType -> the activation names of pymodel.ops.
FUSED = {0: "none", 1: "relu", 2: "relu_n1_to_1", 3: "relu6"}


def _fused(op_options: Mapping[str, Any]) -> str:
    act = int(op_options.get("fused_activation_function", 0))
    if act not in FUSED:
        raise ValueError(f"fused activation {act} is not supported; supported: NONE, RELU, "
                         "RELU_N1_TO_1, RELU6")
    return FUSED[act]


def _quant_of(t: Any) -> tuple[Any, int]:
    """(float32 scale, zero point) of a per-tensor quantized TFLite tensor."""
    if t.scale.size != 1:
        raise ValueError(f"tensor {t.index} ({t.name!r}) must be quantized per tensor")
    return t.scale[0], int(t.zero_point[0])


def _binary_operands(inputs: Sequence[Any], consts: Mapping[int, Any]
                     ) -> tuple[list[Any], dict[str, np.ndarray], int | None]:
    """The two operand tensors in order; a constant operand goes into ``consts``."""
    if len(inputs) == 2:
        return list(inputs), {}, None
    if len(inputs) == 1 and len(consts) == 1:
        pos, c = next(iter(consts.items()))
        if c.dtype != "int8":
            raise ValueError(f"constant operand (tensor {c.index}) is {c.dtype}; int8 needed")
        ops = [inputs[0], c] if pos == 1 else [c, inputs[0]]
        return ops, {"operand": np.asarray(c.data, np.int8)}, pos
    raise ValueError("needs two operands (two activations, or one activation and a constant)")


def _prepare_binary(kind: str) -> Callable[..., OpSpec]:
    def prepare(*, op_options: Mapping[str, Any], inputs: Sequence[Any],
                consts: Mapping[int, Any], output: Any, rounding: str = "double",
                **_: Any) -> OpSpec:
        from pymodel.ops import elementwise as E
        (a, b), cst, pos = _binary_operands(inputs, consts)
        (s1, z1), (s2, z2), (so, zo) = _quant_of(a), _quant_of(b), _quant_of(output)
        fn = {"add": E.prepare_add, "sub": E.prepare_sub, "mul": E.prepare_mul}[kind]
        prm = fn(s1, z1, s2, z2, so, zo, activation=_fused(op_options), rounding=rounding)
        params = _params_of(prm)
        if pos is not None:
            params["const_position"] = pos
        return OpSpec(params=params, consts=cst, act_min=prm.act_min, act_max=prm.act_max)
    return prepare


def _run_binary(kind: str) -> Callable[[Any, Sequence[np.ndarray]], np.ndarray]:
    def run(layer: Any, xs: Sequence[np.ndarray]) -> np.ndarray:
        from pymodel.ops import elementwise as E
        params = dict(layer.params)
        pos = params.pop("const_position", None)
        cls = E.MulParams if kind == "mul" else E.AddParams
        prm = cls(**params)
        a, b = (xs[0], xs[1]) if pos is None else (
            (xs[0], layer.consts["operand"]) if pos == 1 else (layer.consts["operand"], xs[0]))
        y = getattr(E, kind)(a, b, prm)
        return y.reshape(xs[0].shape[0], *layer.output_shape)
    return run


def _prepare_mean(*, op_options: Mapping[str, Any], inputs: Sequence[Any],
                  consts: Mapping[int, Any], output: Any, rounding: str = "double",
                  **_: Any) -> OpSpec:
    from pymodel.ops import reduce as R
    if 1 not in consts:
        raise ValueError("MEAN needs constant axes")
    rank = len(inputs[0].shape)
    axes = R.resolve_axes(tuple(int(a) for a in np.asarray(consts[1].data).reshape(-1)), rank)
    if 0 in axes:
        raise ValueError(f"MEAN over the batch axis (axes {list(axes)}) is not supported")
    (si, zi), (so, zo) = _quant_of(inputs[0]), _quant_of(output)
    prm = R.prepare_mean(si, zi, so, zo, rounding=rounding)
    return OpSpec(params={**_params_of(prm), "axes": tuple(axes),
                          "keep_dims": bool(op_options.get("keep_dims", False))})


def _run_mean(layer: Any, xs: Sequence[np.ndarray]) -> np.ndarray:
    from pymodel.ops import reduce as R
    params = dict(layer.params)
    axes, keep = params.pop("axes"), params.pop("keep_dims")
    y = R.mean(xs[0], tuple(axes), R.MeanParams(**params), keep_dims=keep)
    return y.reshape(xs[0].shape[0], *layer.output_shape)


def _prepare_unary(kind: str) -> Callable[..., OpSpec]:
    """RELU family, LEAKY_RELU, LOGISTIC, HARD_SWISH, SOFTMAX: one int8 input, the op's
    ``prepare_*`` in :mod:`pymodel.ops.activations` from the tensors' float32 scales."""
    def prepare(*, op_options: Mapping[str, Any], inputs: Sequence[Any], output: Any,
                rounding: str = "double", **_: Any) -> OpSpec:
        from pymodel.ops import activations as A
        (si, zi), (so, zo) = _quant_of(inputs[0]), _quant_of(output)
        if kind in ("relu", "relu6"):
            prm = A.prepare_relu(kind, si, zi, so, zo, rounding=rounding)
        elif kind == "leaky_relu":
            prm = A.prepare_leaky_relu(np.float32(op_options.get("alpha", 0.2)), si, zi, so, zo,
                                       rounding=rounding)
        elif kind == "softmax":
            prm = A.prepare_softmax(np.float32(op_options.get("beta", 1.0)), si, so, zo,
                                    rounding=rounding)
        else:
            prm = getattr(A, f"prepare_{kind}")(si, zi, so, zo, rounding=rounding)
        lo, hi = (prm.act_min, prm.act_max) if hasattr(prm, "act_min") else (INT8_MIN, INT8_MAX)
        return OpSpec(params=_params_of(prm), act_min=lo, act_max=hi)
    return prepare


_UNARY_PARAMS = {"relu": "ReluParams", "relu6": "ReluParams", "leaky_relu": "LeakyReluParams",
                 "logistic": "LogisticParams", "hard_swish": "HardSwishParams",
                 "softmax": "SoftmaxParams"}


def _run_unary(kind: str) -> Callable[[Any, Sequence[np.ndarray]], np.ndarray]:
    def run(layer: Any, xs: Sequence[np.ndarray]) -> np.ndarray:
        from pymodel.ops import activations as A
        prm = getattr(A, _UNARY_PARAMS[kind])(**layer.params)
        fn = A.relu if kind in ("relu", "relu6") else getattr(A, kind)
        return fn(xs[0], prm)
    return run


OPS: dict[str, OpDef] = {
    **{k: OpDef(_prepare_unary(k), _run_unary(k)) for k in _UNARY_PARAMS},
    "add": OpDef(_prepare_binary("add"), _run_binary("add")),
    "sub": OpDef(_prepare_binary("sub"), _run_binary("sub")),
    "mul": OpDef(_prepare_binary("mul"), _run_binary("mul")),
    "mean": OpDef(_prepare_mean, _run_mean),
    "quantize": OpDef(_prepare_quantize, _run_quantize),
    "reshape": OpDef(_prepare_reshape, _run_reshape),
    "pad": OpDef(_prepare_pad, _run_pad),
    "concatenation": OpDef(_prepare_concatenation, _run_concatenation),
}


def prepare(kind: str, **ctx: Any) -> OpSpec:
    """Integer parameters of one graph op (see the module doc).

    Raises:
        ValueError: the op is not in :data:`OPS`, or its tensors / options are not
        supported (the message says which).
    """
    if kind not in OPS:
        raise ValueError(f"op {kind!r} has no golden-model kernel yet; graph ops: "
                         f"{', '.join(sorted(OPS))}")
    return OPS[kind].prepare(**ctx)


def run_graph_op(layer: Any, xs: Sequence[np.ndarray]) -> np.ndarray:
    """Run one graph-op layer on its int8 inputs ``[N, *shape]``; int8 ``[N, *output_shape]``."""
    for i, x in enumerate(xs):
        if np.asarray(x).dtype != np.int8:
            raise ValueError(f"x: layer {layer.name!r} input {i} must be int8; got "
                             f"{np.asarray(x).dtype}")
    if layer.op not in OPS:
        raise ValueError(f"layer {layer.name!r}: op {layer.op!r} has no kernel")
    y = OPS[layer.op].run(layer, [np.asarray(x) for x in xs])
    return np.asarray(y).astype(np.int8, copy=False)
