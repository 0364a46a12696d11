"""Integer inference of a quantized-network artifact in the golden model.

The integer path -- :func:`run_layer`, :func:`run_network` -- takes int8 tensors and
calls the :mod:`pymodel.ops.layers` kernels with the artifact's integer arrays and fields
(weights, bias, m0, shift, zero points, act_min / act_max, stride, padding); it never
reads a scale and never converts to float.  Floats appear only at the boundary:
:func:`quantize_input` (float images -> int8 with the input's scale and zero point) and
:func:`dequantize` (int8 -> real, for SQNR and reports).

The RTL network runner compares its output with :func:`run_layer` layer by layer.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from pymodel.ops import layers as L
from pymodel.graph.artifact import GRAPH_OPS, INPUT, QLayer, QuantizedNetwork, TensorQuant
from pymodel.graph.opset import run_graph_op
from pymodel.arithmetic.gemm import im2col
from pymodel.arithmetic.qparams import dequantize as _dequantize
from pymodel.arithmetic.qparams import quantize as _quantize
from pymodel.graph.prepared_cache import prepared_layer


def run_layer(layer: QLayer, x: np.ndarray, *more: np.ndarray,
              reference: bool = False) -> np.ndarray:
    """Run one quantized layer.

    Weight layers run prepared (:func:`pymodel.graph.prepared_cache.prepared_layer`: the
    weight-side work done once per layer object); ``reference=True`` calls the readable
    :mod:`pymodel.ops.layers` functions instead -- the same integers
    (``tests/test_prepared.py``).

    Args:
        layer: the layer (from :func:`pymodel.graph.artifact.load_artifact`).
        x: int8 ``[N, *layer.input_shape]``.
        more: the further inputs of a multi-input op (``add``, ``concatenation`` ...), int8
            ``[N, *layer.input_shapes[i]]``, in ``layer.inputs`` order.
        reference: run the readable per-call path.

    Returns:
        int8 ``[N, *layer.output_shape]``.
    """
    if layer.op in GRAPH_OPS:
        return run_graph_op(layer, (x, *more))
    x = np.asarray(x)
    if x.dtype != np.int8:
        raise ValueError(f"x: layer {layer.name!r} takes int8 input; got dtype {x.dtype}")
    if tuple(x.shape[1:]) != tuple(layer.input_shape):
        raise ValueError(f"x: layer {layer.name!r} expects [N, "
                         f"{', '.join(map(str, layer.input_shape))}]; got {list(x.shape)}")
    zp = layer.input.zero_point
    if layer.has_weights and not reference and _preparable(layer):
        return prepared_layer(layer)(x)
    if layer.op == "conv2d":
        return L.conv2d(x, layer.weight, zp, layer.requant(), layer.stride, layer.padding,
                        layer=layer.name, **_dilation(layer))
    if layer.op == "depthwise_conv2d":
        return L.depthwise_conv2d(x, layer.weight, zp, layer.requant(), layer.stride,
                                  layer.padding, layer=layer.name, **_dilation(layer))
    if layer.op == "fully_connected":
        k = layer.weight.shape[1]
        y = L.fully_connected(x.reshape(-1, k), layer.weight, zp, layer.requant(),
                              layer=layer.name)
        return y.reshape(x.shape[0], *layer.output_shape)
    if layer.op == "max_pool2d":
        return L.max_pool2d(x, layer.kernel, layer.stride, layer.padding, layer.act_min,
                            layer.act_max)
    if layer.op == "avg_pool2d":
        return L.avg_pool2d(x, layer.kernel, layer.stride, layer.padding, layer.act_min,
                            layer.act_max)
    if layer.op == "flatten":
        return x.reshape(x.shape[0], -1)        # NHWC order, C fastest
    raise ValueError(f"layer {layer.name!r}: unknown op {layer.op!r}")


def _preparable(layer: QLayer) -> bool:
    """Layers the prepared fast path covers: no dilation, fully connected over a flat
    input (an imported ``keep_num_dims`` FC runs the readable path)."""
    if layer.dilation is not None and tuple(layer.dilation) != (1, 1):
        return False
    return layer.op != "fully_connected" or (len(layer.input_shape) == 1
                                             and len(layer.output_shape) == 1)


def _dilation(layer: QLayer) -> dict[str, Any]:
    if layer.dilation is None or tuple(layer.dilation) == (1, 1):
        return {}
    return {"dilation": tuple(layer.dilation)}


def gemm_rows(layer: QLayer, x: np.ndarray) -> np.ndarray:
    """The int8 GEMM rows a conv / fully-connected layer feeds the MAC array.

    ``pymodel.ops.layers.quantized_gemm(gemm_rows(layer, x), layer.w2d,
    layer.input.zero_point, layer.requant())`` reshaped to ``[N, *output_shape]`` equals
    :func:`run_layer` -- the split the RTL network runner uses (host: ``im2col``;
    engine: GEMM + requantize).

    Args:
        layer: a ``conv2d`` or ``fully_connected`` layer.
        x: int8 ``[N, *layer.input_shape]``.

    Returns:
        int8 ``[N*OH*OW, kh*kw*C]`` (conv: ``im2col`` padded with the input zero point)
        or ``[N, in]`` (fully connected).
    """
    if layer.op == "fully_connected":
        return np.asarray(x).reshape(-1, layer.weight.shape[1])
    if layer.op != "conv2d":
        raise ValueError(f"layer {layer.name!r}: {layer.op} is not a GEMM layer (conv2d or "
                         "fully_connected)")
    cols, _ = im2col(np.asarray(x), layer.kernel, layer.stride, layer.padding,
                     pad_value=layer.input.zero_point, **_dilation(layer))
    return cols


def run_network(qnet: QuantizedNetwork, x: np.ndarray) -> list[np.ndarray]:
    """Integer inference, returning every layer's int8 output in layer order.

    Args:
        qnet: the artifact.
        x: int8 ``[N, *qnet.input_shape]`` (see :func:`quantize_input`).
    """
    return list(run_tensors(qnet, x).values())[1:]


def run_tensors(qnet: QuantizedNetwork, x: np.ndarray) -> dict[str, np.ndarray]:
    """Integer inference of the graph, returning every tensor by name: ``"input"`` first,
    then each layer's output (named after the layer) in layer order.

    Args:
        qnet: the artifact.
        x: int8 ``[N, *qnet.input_shape]``.
    """
    tensors = {INPUT: np.asarray(x)}
    prev = INPUT
    for layer in qnet.layers:
        args = [tensors[name] for name in (layer.inputs or (prev,))]
        tensors[layer.name] = run_layer(layer, *args)
        prev = layer.name
    return tensors


def quantize_input(qnet: QuantizedNetwork, x: Any) -> np.ndarray:
    """Float images ``[N, *input_shape]`` -> int8 with the artifact's input parameters."""
    arr = np.asarray(x)
    if tuple(arr.shape[1:]) != tuple(qnet.input_shape) or arr.ndim != len(qnet.input_shape) + 1:
        raise ValueError(f"x: expected [N, {', '.join(map(str, qnet.input_shape))}]; got "
                         f"{list(arr.shape)}")
    return _quantize(arr, qnet.input.qparams()).astype(np.int8)


def dequantize(q: np.ndarray, tq: TensorQuant) -> np.ndarray:
    """int8 -> float64 real values with a tensor's scale and zero point."""
    return _dequantize(q.astype(np.int64), tq.qparams())


def logits(qnet: QuantizedNetwork, x: Any) -> np.ndarray:
    """int8 output of the last layer for float images ``x``."""
    return run_network(qnet, quantize_input(qnet, x))[-1]


def predict(qnet: QuantizedNetwork, x: Any, batch_size: int = 256,
            progress: bool = False) -> np.ndarray:
    """Class predictions: argmax of the int8 output (first index on ties), int64 ``[N]``."""
    arr = np.asarray(x)
    out = []
    for xb in _batches(arr, batch_size, progress, "int8 eval"):
        out.append(logits(qnet, xb).argmax(axis=1))
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def _batches(x: np.ndarray, batch_size: int, progress: bool, desc: str) -> Iterator[np.ndarray]:
    starts = range(0, x.shape[0], batch_size)
    if progress:
        from tqdm import tqdm
        starts = tqdm(starts, desc=desc, unit="batch", leave=False)
    for s in starts:
        yield x[s:s + batch_size]
