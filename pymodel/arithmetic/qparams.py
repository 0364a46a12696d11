"""Scales and zero points, ``quantize`` and ``dequantize``.

Formulas: ``docs/arithmetic.md`` section 3.  Symmetric schemes use the narrow range
``[-(2^(b-1)-1), 2^(b-1)-1]`` with zero point 0; asymmetric schemes use the full range
``[-2^(b-1), 2^(b-1)-1]`` with TFLite's zero-point choice, after widening the real range
to contain 0.0.  Every real -> integer conversion rounds half away from zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pymodel import validate
from pymodel.arithmetic.rounding import round_half_away


def qrange(bits: int, symmetric: bool) -> tuple[int, int]:
    """Integer range ``(qmin, qmax)`` of a ``bits``-wide scheme.

    Symmetric: narrow ``[-(2^(b-1)-1), 2^(b-1)-1]`` (INT8: [-127, 127], INT4: [-7, 7]).
    Asymmetric: full ``[-2^(b-1), 2^(b-1)-1]`` (INT8: [-128, 127]).
    """
    b = validate.bits("bits", bits)
    qmax = (1 << (b - 1)) - 1
    return (-qmax if symmetric else -qmax - 1), qmax


def storage_dtype(bits: int) -> type:
    """numpy dtype holding ``bits``-wide integers: int8 up to 8 bits, else int16."""
    return np.int8 if validate.bits("bits", bits) <= 8 else np.int16


@dataclass(frozen=True)
class QuantParams:
    """Quantization parameters of one tensor.

    Attributes:
        scale: float64, shape ``()`` (per-tensor) or ``[C]`` (per-channel); real units
            per integer step, > 0.
        zero_point: int32, same shape as ``scale``; the integer that real 0.0 maps to.
        bits: bit width, 2..16.
        symmetric: narrow symmetric range with zero point 0 (else full asymmetric range).
        axis: channel axis of the tensor for per-channel parameters, ``None`` per-tensor.
    """

    scale: np.ndarray
    zero_point: np.ndarray
    bits: int
    symmetric: bool
    axis: int | None = None

    @property
    def qmin(self) -> int:
        return qrange(self.bits, self.symmetric)[0]

    @property
    def qmax(self) -> int:
        return qrange(self.bits, self.symmetric)[1]

    @property
    def per_channel(self) -> bool:
        return self.axis is not None

    def broadcast(self, ndim: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scale, zero_point)`` reshaped to broadcast against an ``ndim``-D tensor."""
        if self.axis is None:
            return self.scale, self.zero_point
        axis = self.axis % ndim
        shape = [1] * ndim
        shape[axis] = -1
        return self.scale.reshape(shape), self.zero_point.reshape(shape)


def compute_qparams(rmin: Any, rmax: Any, bits: int = 8, symmetric: bool = False,
                    axis: int | None = None) -> QuantParams:
    """Scale and zero point from a real range ``[rmin, rmax]``.

    Args:
        rmin, rmax: float scalars (per-tensor) or ``[C]`` arrays (per-channel), finite,
            ``rmin <= rmax``.
        bits: bit width, 2..16.
        symmetric: symmetric narrow range, zero point 0 (weights); else asymmetric full
            range (activations).
        axis: for per-channel parameters, the tensor axis the channels lie on (recorded
            for :func:`quantize` / :func:`dequantize`); ``None`` for per-tensor.

    Returns:
        :class:`QuantParams`.  Degenerate ranges (``rmin == rmax == 0`` after widening to
        contain 0, or so narrow that the scale would underflow below the smallest normal
        float64) get scale 1.0 and zero point 0.
    """
    b = validate.bits("bits", bits)
    lo = validate.float_array("rmin", rmin)
    hi = validate.float_array("rmax", rmax)
    if lo.shape != hi.shape:
        raise ValueError(f"rmin, rmax: shapes differ ({lo.shape} vs {hi.shape})")
    if axis is None and lo.ndim != 0:
        raise ValueError(f"rmin: per-tensor parameters need scalar ranges; got shape "
                         f"{lo.shape} (pass axis= for per-channel)")
    if axis is not None and lo.ndim != 1:
        raise ValueError(f"rmin: per-channel parameters need 1-D ranges [C]; got shape "
                         f"{lo.shape}")
    if np.any(lo > hi):
        i = np.flatnonzero(np.atleast_1d(lo > hi))[0]
        raise ValueError(f"rmin, rmax: rmin {float(np.atleast_1d(lo)[i])!r} exceeds rmax "
                         f"{float(np.atleast_1d(hi)[i])!r}")
    qmin, qmax = qrange(b, symmetric)
    lo = np.minimum(lo, 0.0)
    hi = np.maximum(hi, 0.0)
    # A range whose scale would not be a normal float64 (zero width, or so narrow that
    # the division underflows) is degenerate: scale 1.0, zero point 0.  Every value in it
    # is within the smallest normal float of 0.0, which then represents it exactly.
    tiny = np.finfo(np.float64).tiny
    if symmetric:
        raw = np.maximum(-lo, hi) / qmax
        degenerate = raw < tiny
        scale = np.where(degenerate, 1.0, raw)
        zp = np.zeros_like(scale, dtype=np.int64)
    else:
        raw = (hi - lo) / (qmax - qmin)
        degenerate = raw < tiny
        scale = np.where(degenerate, 1.0, raw)
        # TFLite ChooseQuantizationParams: zero point from whichever end has less error.
        zp_from_min = qmin - lo / scale
        zp_from_max = qmax - hi / scale
        err_min = abs(qmin) + np.abs(lo / scale)
        err_max = abs(qmax) + np.abs(hi / scale)
        zp_real = np.where(err_min < err_max, zp_from_min, zp_from_max)
        zp = np.clip(round_half_away(zp_real), qmin, qmax).astype(np.int64)
        zp = np.where(degenerate, 0, zp)
    return QuantParams(scale=np.asarray(scale, np.float64), zero_point=np.asarray(zp, np.int32),
                       bits=b, symmetric=bool(symmetric), axis=axis)


def tensor_range(x: Any, axis: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Min and max of a tensor, overall (``axis=None``) or per channel along ``axis``.

    Returns:
        ``(rmin, rmax)`` float64: scalars (0-d) or ``[C]`` arrays.
    """
    arr = validate.float_array("x", x, allow_empty=False)
    if axis is None:
        return np.asarray(arr.min()), np.asarray(arr.max())
    ax = validate.int_scalar("axis", axis, -arr.ndim, arr.ndim - 1) % arr.ndim
    others = tuple(i for i in range(arr.ndim) if i != ax)
    return arr.min(axis=others), arr.max(axis=others)


def quantize(x: Any, qp: QuantParams) -> np.ndarray:
    """``clamp(round_half_away(x / scale) + zero_point, qmin, qmax)``.

    Args:
        x: real values (float array), finite; per-channel ``qp`` broadcasts along
            ``qp.axis``.
        qp: quantization parameters.

    Returns:
        int8 array (int16 above 8 bits), same shape as ``x``.
    """
    arr = validate.float_array("x", x)
    scale, zp = _params_for(arr, qp)
    q = round_half_away(arr / scale) + zp
    return np.clip(q, qp.qmin, qp.qmax).astype(storage_dtype(qp.bits))


def dequantize(q: Any, qp: QuantParams) -> np.ndarray:
    """``scale * (q - zero_point)`` as float64, same shape as ``q``."""
    half = 1 << (qp.bits - 1)
    arr = validate.int_array("q", q, -half, half - 1)
    scale, zp = _params_for(arr, qp)
    return scale * (arr.astype(np.float64) - zp)


def _params_for(arr: np.ndarray, qp: QuantParams) -> tuple[np.ndarray, np.ndarray]:
    if qp.axis is not None:
        if arr.ndim == 0 or not -arr.ndim <= qp.axis < arr.ndim:
            raise ValueError(f"qp.axis: {qp.axis} is not an axis of a tensor of shape "
                             f"{arr.shape}")
        if arr.shape[qp.axis] != qp.scale.size:
            raise ValueError(f"x: axis {qp.axis} has {arr.shape[qp.axis]} channels but the "
                             f"parameters have {qp.scale.size}")
    return qp.broadcast(arr.ndim)
