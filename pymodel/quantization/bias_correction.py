"""Bias correction (Nagel et al., ICCV 2019, empirical form): remove the mean output
shift that weight quantization causes in each output channel.

A weight layer computes ``z[m, c] = sum_k w[c, k] * x[m, k] + b[c]`` over its GEMM rows
``x[m, :]`` (``im2col`` rows of a conv, zero padded; the input vector of a fully
connected layer).  With quantized weights ``w_hat = dequantize(quantize(w))`` the output
moves by ``sum_k (w_hat - w)[c, k] * x[m, k]``, whose mean over the rows is exactly

    eps[c] = sum_k (w_hat - w)[c, k] * E[x[:, k]]

so ``b'[c] = b[c] - eps[c]`` makes the mean pre-activation of every output channel equal
to the float network's on the data ``E[x]`` was measured on.  ``E[x]`` is the mean GEMM
row of the layer's *float* input over the calibration set (:func:`collect_input_means`;
the float network is the one PTQ calibrates, i.e. after cross-layer equalization when
that is on).  ``b'`` then goes through the usual int32 bias quantization.  A depthwise
layer uses the per-(tap, channel) means.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np

from pymodel.arithmetic.gemm import im2col
from pymodel.graph.network import LayerSpec, Network


class _Mean:
    def __init__(self) -> None:
        self.sum: np.ndarray | None = None
        self.count = 0

    def add(self, rows: np.ndarray) -> None:
        s = rows.sum(axis=0)
        self.sum = s if self.sum is None else self.sum + s
        self.count += rows.shape[0]

    def mean(self) -> np.ndarray:
        assert self.sum is not None and self.count > 0
        return self.sum / self.count


def gemm_rows_float(spec: LayerSpec, x: np.ndarray) -> np.ndarray:
    """The float GEMM rows of a weight layer's input.

    Returns:
        conv: ``[N*OH*OW, kh*kw*C]`` (``im2col`` column order, zero padded); fully
        connected: ``[N, in]``; depthwise: ``[N*OH*OW, kh*kw, C]``.
    """
    if spec.op == "fully_connected":
        return np.asarray(x, np.float64)
    cols, _ = im2col(np.asarray(x, np.float64), spec.kernel, spec.stride, spec.padding,
                     pad_value=0.0)
    if spec.op == "depthwise_conv2d":
        assert spec.kernel is not None
        return cols.reshape(cols.shape[0], spec.kernel[0] * spec.kernel[1], -1)
    return cols


def collect_input_means(network: Network, batches: Iterable[np.ndarray],
                        layers: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Mean float GEMM row of each weight layer's input over the batches.

    Args:
        network: the float network (with weights).
        batches: float ``[n, *input_shape]`` batches.
        layers: the layers to measure (default: every layer with ``bias_correction``).

    Returns:
        ``{layer: mean}`` (shapes as :func:`gemm_rows_float` without the row axis).
    """
    want = set(layers) if layers is not None else {s.name for s in network.weight_layers
                                                   if s.bias_correction}
    unknown = want - {s.name for s in network.weight_layers}
    if unknown:
        raise ValueError(f"layers: {sorted(unknown)} are not weight layers of "
                         f"{network.name!r}")
    acc = {name: _Mean() for name in want}
    for xb in batches:
        x = np.asarray(network.check_input(xb, "calibration batch"), np.float64)
        if x.shape[0] == 0:
            continue
        for spec, xs, _ in network.walk(x):
            if spec.name in acc:
                acc[spec.name].add(gemm_rows_float(spec, xs[0]))
    if want and any(a.count == 0 for a in acc.values()):
        raise ValueError("calibration set: no images (bias correction needs data)")
    return {name: a.mean() for name, a in acc.items()}


def expected_shift(spec: LayerSpec, w: np.ndarray, w_hat: np.ndarray,
                   mean: np.ndarray) -> np.ndarray:
    """``eps[c]``: the mean output shift of ``spec`` caused by ``w -> w_hat``.

    Args:
        spec: the layer; w, w_hat: float and dequantized weights (TFLite layout).
        mean: :func:`collect_input_means` entry of the layer.

    Returns:
        float64 ``[C]``.
    """
    dw = np.asarray(w_hat, np.float64) - np.asarray(w, np.float64)
    if spec.op == "depthwise_conv2d":
        t, c = mean.shape
        m = dw.shape[3] // c
        return np.einsum("tcj,tc->cj", dw.reshape(t, c, m), mean).reshape(-1)
    return dw.reshape(dw.shape[0], -1) @ np.asarray(mean, np.float64).reshape(-1)


def corrected_bias(spec: LayerSpec, params: Mapping[str, np.ndarray], w_hat: np.ndarray,
                   mean: np.ndarray) -> np.ndarray:
    """``b - eps`` for layer ``spec`` (float64 ``[C]``)."""
    w = params[f"{spec.name}.weight"]
    return np.asarray(params[f"{spec.name}.bias"], np.float64) - expected_shift(
        spec, w, w_hat, mean)
