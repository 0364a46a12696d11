"""ONNX test models built from the shipped digits network: a float ONNX version
(:func:`pymodel.frontends.onnx_float_export.network_to_onnx`) and its QDQ quantizations by
onnxruntime's ``quantize_static`` on the digits calibration split."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pymodel import datasets
from pymodel.training import digits


def float_digits(path: Path) -> Path:
    """The shipped float digits CNN as a float ONNX model (opset 13) at ``path``."""
    import onnx
    from pymodel.frontends.onnx_float_export import network_to_onnx
    onnx.save(network_to_onnx(digits.load()), str(path))
    return path


def nchw(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(x, np.float32).transpose(0, 3, 1, 2))


def quantize_qdq(float_model: Path, out: Path, per_channel: bool, method: str) -> Path:
    """``quantize_static`` (QDQ, int8 activations and weights) calibrated on the digits
    calib split with ``method`` (``MinMax`` / ``Entropy``)."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod,
                                          QuantFormat, QuantType, quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter([{"input": xi[None]} for xi in nchw(datasets.digits("calib").x)])

        def get_next(self):
            return next(self.it, None)

    quantize_static(str(float_model), str(out), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=per_channel, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8,
                    calibrate_method=getattr(CalibrationMethod, method))
    return out
