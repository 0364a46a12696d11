"""Fake quantization for quantization-aware training (QAT): quantize -> dequantize in the
forward pass, straight-through estimator (STE) in the backward pass.

Every real -> integer conversion here is the golden model's own quantizer:
:func:`pymodel.arithmetic.qparams.quantize` (``clamp(round_half_away(x / s) + zp, qmin, qmax)``)
followed by :func:`pymodel.arithmetic.qparams.dequantize` (``s * (q - zp)``), with parameters from
:func:`pymodel.arithmetic.qparams.compute_qparams` -- nothing is re-implemented, so a fake-quant
value is exactly the real value of the integer the hardware would hold.

STE (``docs/qat.md``): the backward pass treats rounding as the identity and the clamp
as what it is, so the gradient passes where the clamp is inactive and is zero where it
clips.  "Inactive" is decided on the *unclamped integer* ``u = round_half_away(x / s) +
zp`` (the value :func:`~pymodel.arithmetic.qparams.quantize` clamps): the gradient is 1 where
``qmin <= u <= qmax`` and 0 elsewhere.  At the boundary ``x = s * (qmax - zp)`` the
gradient passes; half a step beyond it, ``u`` rounds (half away from zero) to
``qmax + 1`` and the gradient is 0.  (PyTorch's ``fake_quantize_per_tensor_affine``
uses the same rule with round-half-even.)

Learned scales (LSQ, Esser et al. 2020): with ``x_hat = s * (q - zp)`` and the STE
for the rounding, ``d x_hat / d s = (q - zp) - x / s`` where the clamp is inactive and
``q - zp`` (``qmin - zp`` or ``qmax - zp``) where it clips; the scale gradient is
multiplied by ``g = 1 / sqrt(N * qmax)`` (``N`` = elements sharing the scale), LSQ's
gradient scaling.  Zero points stay fixed while a scale is learned.  The trainable
parameter is ``t = ln s`` (gradient ``s * dL/ds``): Adam moves a parameter by about
its learning rate per step whatever the gradient's size, which would drive a small
scale (an INT8 weight scale is ~1e-3) through zero within a few steps; in ``ln s`` the
same step is a relative change and ``s`` stays positive.

Classes:

* :class:`WeightFakeQuant` -- an :mod:`pymodel.training.nn` weight hook: symmetric per-tensor or
  per-channel min/max scales recomputed from the current weights at every forward
  (exactly :func:`pymodel.quantization.ptq.quantize_weights`), or learned (LSQ).
* :class:`ActivationQuantizer` -- the range of one activation tensor: initialized from a
  calibrated range, tracked by an exponential moving average of the per-batch min / max
  during training, frozen on request (or a learned LSQ scale).
* :class:`BiasQuant` -- an :mod:`pymodel.training.nn` bias hook: the int32 bias of the integer
  path (:func:`pymodel.ops.layers.quantize_bias`) as a real value, STE backward.

All arrays are float64.  The optional ``linearize`` mode (tests) freezes parameters and
rounding offsets at the current point so that the STE gradient becomes the exact
gradient of a piecewise-linear surrogate, checkable by finite differences.  Fake-quant
values lie on grids (a pre-activation is ``s_in * s_w * (acc + b_q)`` with integer
``acc + b_q``), so exact zeros of a ReLU input and exact ties of a max pool -- kinks of
the surrogate -- happen at the point itself with real probability; ``jitter`` adds a
small random constant to each frozen offset to move the point off them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pymodel.calibration.calibrators import weight_range
from pymodel.ops.layers import quantize_bias
from pymodel.arithmetic.qparams import QuantParams, compute_qparams, dequantize, quantize
from pymodel.arithmetic.rounding import round_half_away



def unclamped_integer(x: np.ndarray, qp: QuantParams) -> np.ndarray:
    """``round_half_away(x / scale) + zero_point`` before the clamp (float64 holding
    integers), broadcast like :func:`pymodel.arithmetic.qparams.quantize`."""
    scale, zp = qp.broadcast(np.ndim(x))
    return round_half_away(np.asarray(x, np.float64) / scale) + zp


def ste_mask(x: np.ndarray, qp: QuantParams) -> np.ndarray:
    """Where the STE passes the gradient: ``qmin <= unclamped_integer(x) <= qmax``
    (bool, shape of ``x``)."""
    u = unclamped_integer(x, qp)
    return (u >= qp.qmin) & (u <= qp.qmax)


def fake_quantize(x: Any, qp: QuantParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quantize -> dequantize with the golden model's quantizer.

    Args:
        x: real values (finite); per-channel ``qp`` broadcasts along ``qp.axis``.
        qp: quantization parameters.

    Returns:
        ``(x_hat, q, mask)``: float64 ``dequantize(quantize(x, qp), qp)``, the integers
        ``quantize(x, qp)`` (int8 up to 8 bits) and the STE mask (bool), all of ``x``'s
        shape.
    """
    q = quantize(x, qp)
    return dequantize(q, qp), q, ste_mask(x, qp)


def lsq_scale_grad(x: np.ndarray, q: np.ndarray, qp: QuantParams, dy: np.ndarray,
                   mask: np.ndarray, grad_scale: float = 1.0) -> np.ndarray:
    """LSQ gradient of the loss with respect to the scale(s) of ``qp``.

    Args:
        x: the quantizer's real input; q: its integers; mask: its STE mask.
        qp: the parameters used (per tensor, or per channel along ``qp.axis``).
        dy: gradient of the loss with respect to the quantizer's output ``x_hat``.
        grad_scale: LSQ's ``g`` (multiplies the result).

    Returns:
        float64, the shape of ``qp.scale`` (``()`` or ``[C]``).
    """
    scale, zp = qp.broadcast(np.ndim(x))
    k = q.astype(np.float64) - zp
    d = np.where(mask, k - x / scale, k) * dy
    if qp.axis is None:
        return np.asarray(d.sum() * grad_scale)
    axis = qp.axis % d.ndim
    return d.sum(axis=tuple(i for i in range(d.ndim) if i != axis)) * grad_scale


def lsq_grad_scale(elements: int, qmax: int) -> float:
    """LSQ's gradient scale ``1 / sqrt(N * qmax)``."""
    return 1.0 / math.sqrt(max(1, elements) * max(1, qmax))


class _Linearized:
    """Test aid: freeze ``x_hat - x`` inside the clip range and ``x_hat`` outside it."""

    def __init__(self) -> None:
        self.linearize = False
        self.jitter = 0.0
        self.jitter_rng: np.random.Generator | None = None
        self._frozen: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def _linear(self, x: np.ndarray, x_hat: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if not self.linearize:
            self._frozen = None
            return x_hat
        if self._frozen is None or self._frozen[0].shape != x.shape:
            offset = x_hat - x
            if self.jitter and self.jitter_rng is not None:
                offset = offset + self.jitter * self.jitter_rng.uniform(-1, 1, x.shape)
            self._frozen = (offset, x_hat, mask)
        offset, value, m = self._frozen
        return np.where(m, x + offset, value)


class WeightFakeQuant(_Linearized):
    """Weight hook: symmetric fake quantization of a layer's weights.

    Without LSQ the parameters are recomputed from the current weights at every forward
    with the PTQ rule (min / max per tensor or per output channel, ``compute_qparams``
    symmetric), so the converted artifact quantizes the final weights exactly as the
    last forward did.

    Args:
        bits: weight bits (2..8).
        per_channel: one scale per output channel (else one per tensor).
        axis: output-channel axis of the weight tensor.
        lsq: learn the scale(s) (initialized from min / max at the first forward).

    Attributes:
        qp: the parameters of the last forward; q: its int8 weights.
        log_scale: LSQ's trainable ``ln s``, ``[C]`` or ``()``; log_scale_grad: its
            gradient.
    """

    def __init__(self, bits: int, per_channel: bool, axis: int, lsq: bool = False) -> None:
        super().__init__()
        self.bits, self.per_channel, self.axis, self.lsq = bits, per_channel, axis, lsq
        self.log_scale: np.ndarray | None = None
        self.log_scale_grad: np.ndarray | None = None
        self.qp: QuantParams | None = None
        self.q: np.ndarray | None = None
        self._cache: tuple[np.ndarray, np.ndarray] | None = None

    def minmax_qparams(self, w: np.ndarray) -> QuantParams:
        """The PTQ parameters of ``w`` (``pymodel.quantization.ptq.quantize_weights``' rule)."""
        rmin, rmax = weight_range(w, self.per_channel, self.axis)
        return compute_qparams(rmin, rmax, self.bits, symmetric=True,
                               axis=self.axis if self.per_channel else None)

    def qparams(self, w: np.ndarray) -> QuantParams:
        """The parameters the next forward uses for weights ``w``."""
        if self.linearize and self.qp is not None:
            return self.qp
        base = self.minmax_qparams(w)
        if not self.lsq:
            return base
        if self.log_scale is None:
            self.log_scale = np.log(np.array(base.scale, np.float64))
        return QuantParams(scale=np.exp(self.log_scale), zero_point=base.zero_point,
                           bits=self.bits, symmetric=True, axis=base.axis)

    @property
    def scale(self) -> np.ndarray | None:
        """The learned scale ``exp(log_scale)`` (LSQ), else ``None``."""
        return None if self.log_scale is None else np.exp(self.log_scale)

    def forward(self, w: np.ndarray, train: bool) -> np.ndarray:
        qp = self.qparams(w)
        w_hat, q, mask = fake_quantize(w, qp)
        self.qp, self.q = qp, q
        self._cache = (w, mask)
        return self._linear(w, w_hat, mask)

    def backward(self, dw: np.ndarray) -> np.ndarray:
        assert self._cache is not None and self.qp is not None and self.q is not None
        w, mask = self._cache
        if self.lsq:
            n = w.size // max(1, self.qp.scale.size)
            self.log_scale_grad = self.qp.scale * lsq_scale_grad(
                w, self.q, self.qp, dw, mask, lsq_grad_scale(n, self.qp.qmax))
        return dw * mask


class ActivationQuantizer(_Linearized):
    """The quantization of one activation tensor during QAT (per tensor).

    Range: starts at ``[rmin, rmax]`` (normally the PTQ calibrated range); while not
    frozen, every training forward updates it with the exponential moving average of
    the batch's min and max, ``r <- (1 - c) * r + c * batch`` (``c = ema_constant``).
    The parameters are ``compute_qparams(rmin, rmax, bits, symmetric)`` -- the PTQ rule.
    With ``lsq`` the scale is learned instead (zero point fixed at its value when LSQ
    starts; the EMA is then unused).

    Args:
        name: tensor name (``input`` or the producing layer).
        bits, symmetric: the tensor's scheme.
        rmin, rmax: initial range.
        ema_constant: ``c`` in (0, 1].
        lsq: learn the scale.
    """

    def __init__(self, name: str, bits: int, symmetric: bool, rmin: float, rmax: float,
                 ema_constant: float = 0.01, lsq: bool = False) -> None:
        super().__init__()
        if not 0.0 < ema_constant <= 1.0:
            raise ValueError(f"ema_constant: {ema_constant!r} is outside the allowed range "
                             "(0, 1]")
        self.name, self.bits, self.symmetric = name, bits, symmetric
        self.rmin, self.rmax = float(rmin), float(rmax)
        self.ema_constant = float(ema_constant)
        self.frozen = False
        self.updates = 0
        self.lsq = lsq
        self.log_scale: np.ndarray | None = None
        self.log_scale_grad: np.ndarray | None = None
        self._zp: np.ndarray | None = None
        self._cache: tuple[np.ndarray, np.ndarray, np.ndarray, QuantParams] | None = None
        self._qp_linear: QuantParams | None = None

    @property
    def label(self) -> str:
        """How the range was chosen, recorded in the artifact."""
        if self.lsq:
            return "qat-lsq"
        return f"qat-ema({self.ema_constant:g})"

    def observe(self, x: np.ndarray) -> None:
        """EMA update with one training batch (no-op when frozen, under LSQ or for an
        empty batch)."""
        if self.frozen or self.lsq or self.linearize or np.size(x) == 0:
            return
        c = self.ema_constant
        self.rmin = (1.0 - c) * self.rmin + c * float(np.min(x))
        self.rmax = (1.0 - c) * self.rmax + c * float(np.max(x))
        self.updates += 1

    def qparams(self) -> QuantParams:
        """Current per-tensor parameters."""
        if self.linearize and self._qp_linear is not None:
            return self._qp_linear
        if not self.linearize:
            self._qp_linear = None
        base = compute_qparams(min(self.rmin, self.rmax), max(self.rmin, self.rmax),
                               self.bits, self.symmetric)
        if self.lsq:
            if self.log_scale is None:
                self.log_scale = np.log(np.array(base.scale, np.float64))
                self._zp = np.array(base.zero_point, np.int32)
            qp = QuantParams(scale=np.exp(self.log_scale), zero_point=self._zp,
                             bits=self.bits, symmetric=self.symmetric)
        else:
            qp = base
        if self.linearize:
            self._qp_linear = qp
        return qp

    def real_range(self) -> tuple[float, float]:
        """The range recorded in the artifact: the EMA range, or under LSQ the range
        the learned grid spans."""
        if self.lsq:
            qp = self.qparams()
            s, zp = float(qp.scale), int(qp.zero_point)
            return s * (qp.qmin - zp), s * (qp.qmax - zp)
        return self.rmin, self.rmax

    def remember(self, x: np.ndarray, q: np.ndarray, qp: QuantParams, mask: np.ndarray
                 ) -> None:
        """Keep what :meth:`backward` needs: the real input ``x``, its integers ``q``
        (from whichever path produced them), the parameters and the STE mask."""
        self._cache = (x, q, mask, qp)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """STE through the clamp; under LSQ also accumulate the scale gradient."""
        assert self._cache is not None
        x, q, mask, qp = self._cache
        if self.lsq:
            n = x[0].size if x.ndim > 1 else x.size
            self.log_scale_grad = qp.scale * lsq_scale_grad(x, q, qp, dy, mask,
                                                            lsq_grad_scale(n, qp.qmax))
        return dy * mask


class BiasQuant:
    """Bias hook: the real value of the int32 bias the integer path adds,
    ``quantize_bias(b, s_in, s_w) * s_in * s_w`` (``pymodel.ops.layers.quantize_bias``).

    Set :attr:`in_scale` (the layer input's scale) before each forward; the weight
    scales come from the layer's :class:`WeightFakeQuant` (run first in the forward).
    Backward: identity (STE; an int32 bias does not clip in practice -- an out-of-range
    bias is an error of ``quantize_bias``).
    """

    def __init__(self, weight_quant: WeightFakeQuant, channels: int) -> None:
        self.weight_quant = weight_quant
        self.channels = channels
        self.in_scale: float | None = None
        self.linearize = False
        self.jitter = 0.0
        self.jitter_rng: np.random.Generator | None = None
        self._offset: np.ndarray | None = None

    def forward(self, b: np.ndarray, train: bool) -> np.ndarray:
        qp = self.weight_quant.qp
        if self.in_scale is None or qp is None:
            raise ValueError("BiasQuant: in_scale and the weight parameters must be set "
                             "before the forward")
        s = float(self.in_scale) * np.broadcast_to(qp.scale, (self.channels,))
        b_hat = quantize_bias(b, float(self.in_scale), np.broadcast_to(qp.scale,
                                                                       (self.channels,))) * s
        if self.linearize:
            if self._offset is None:
                self._offset = b_hat - b
                if self.jitter and self.jitter_rng is not None:
                    self._offset = self._offset + self.jitter * self.jitter_rng.uniform(
                        -1, 1, b.shape)
            return b + self._offset
        self._offset = None
        return b_hat

    def backward(self, db: np.ndarray) -> np.ndarray:
        return db
