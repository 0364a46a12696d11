"""Exact integer GEMM and ``im2col`` -- the computation the MAC array executes.

A convolution becomes a GEMM: :func:`im2col` turns an NHWC activation tensor into a
matrix whose rows are output pixels and whose columns are the ``(kh, kw, c)`` taps, in
the same order as a TFLite conv weight ``[out_ch, kh, kw, in_ch]`` reshaped to
``[out_ch, K]``.  The testbenches feed the RTL from this same function.

:func:`matmul_int32` is exact: it runs on float BLAS only where every partial sum is
an integer the float type represents exactly, and reduces the exact sum mod 2^32
(the accumulator's two's-complement wraparound).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pymodel import validate
from pymodel.arithmetic.fixedpoint import INT32_MAX, wrap_int32

Padding = Any  # "valid" | "same" | int | ((top, bottom), (left, right))

_FLOAT32_EXACT = 1 << 24  # every integer of magnitude <= 2^24 is a float32
_FLOAT64_EXACT = 1 << 53  # ... <= 2^53 is a float64


def matmul_int32(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``C[m, n] = sum_k a[m, k] * b[k, n]`` reduced to int32 with wraparound.

    The accumulator of the MAC array.  Exact for any integer inputs: the sum is formed
    in float32 BLAS when ``K * max|a| * max|b| <= 2^24``, in float64 BLAS when it is
    ``<= 2^53`` (so every partial sum, in any summation order, is an exactly
    representable integer), and in int64 otherwise.

    Args:
        a: integer array ``[M, K]`` (int8 / int16 / int32).
        b: integer array ``[K, N]`` (int8 / int16 / int32).

    Returns:
        int32 array ``[M, N]``.
    """
    a = validate.int_array("a", a, dtypes=(np.int8, np.int16, np.int32))
    b = validate.int_array("b", b, dtypes=(np.int8, np.int16, np.int32))
    validate.ndim("a", a, 2, "[M, K]")
    validate.ndim("b", b, 2, "[K, N]")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"a, b: inner dimensions differ: a is {a.shape}, b is {b.shape}")
    k = a.shape[1]
    if a.size == 0 or b.size == 0:
        return np.zeros((a.shape[0], b.shape[1]), np.int32)
    amax = max(-int(a.min()), int(a.max()))
    bmax = max(-int(b.min()), int(b.max()))
    bound = k * amax * bmax
    if bound <= _FLOAT32_EXACT:
        c = a.astype(np.float32) @ b.astype(np.float32)
    elif bound <= _FLOAT64_EXACT:
        c = a.astype(np.float64) @ b.astype(np.float64)
    else:
        c = a.astype(np.int64) @ b.astype(np.int64)
    if bound <= INT32_MAX:          # no partial or final sum can leave int32
        return c.astype(np.int32)
    return wrap_int32(c.astype(np.int64)).astype(np.int32)


def effective_kernel(kernel: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, int]:
    """TFLite's ``ComputeEffectiveFilterSize`` per axis: ``(k - 1) * d + 1``."""
    return ((kernel[0] - 1) * dilation[0] + 1, (kernel[1] - 1) * dilation[1] + 1)


def resolve_padding(padding: Padding, in_hw: tuple[int, int], kernel: tuple[int, int],
                    stride: tuple[int, int], dilation: tuple[int, int] = (1, 1)
                    ) -> tuple[tuple[int, int], tuple[int, int]]:
    """Explicit ``((top, bottom), (left, right))`` padding for a 2-D window.

    ``"valid"``: none.  ``"same"``: TFLite's rule (``ComputePaddingHeightWidth`` in
    ``kernels/padding.h``) -- output size ``ceil(in / stride)``, effective kernel
    ``ke = (k - 1) * dilation + 1``, total padding ``max((out - 1) * stride + ke - in, 0)``,
    ``total // 2`` before and the odd pixel (``total % 2``) after: at the bottom / right.
    An int pads all four sides by that amount.
    """
    if isinstance(padding, str):
        validate.one_of("padding", padding, ("valid", "same"))
        if padding == "valid":
            return (0, 0), (0, 0)
        pads = []
        for size, k, s in zip(in_hw, effective_kernel(kernel, dilation), stride):
            out = -(-size // s)
            total = max((out - 1) * s + k - size, 0)
            pads.append((total // 2, total - total // 2))
        return pads[0], pads[1]
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        p = validate.int_scalar("padding", padding, 0, 1 << 16)
        return (p, p), (p, p)
    try:
        (pt, pb), (pl, pr) = padding
        pads = tuple(validate.int_scalar("padding", int(v) if isinstance(v, np.integer) else v,
                                         0, 1 << 16) for v in (pt, pb, pl, pr))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"padding: {padding!r} is not 'valid', 'same', a non-negative int "
                         "or ((top, bottom), (left, right))") from exc
    return (pads[0], pads[1]), (pads[2], pads[3])


def pair(name: str, value: Any) -> tuple[int, int]:
    """A positive int or a pair of them as ``(h, w)``."""
    vals = (value, value) if np.ndim(value) == 0 else tuple(value)
    if len(vals) != 2:
        raise ValueError(f"{name}: expected an int or a pair (h, w); got {value!r}")
    return tuple(validate.int_scalar(name, v, 1, 1 << 16) for v in vals)  # type: ignore


def output_hw(in_hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
              pads: tuple[tuple[int, int], tuple[int, int]],
              dilation: tuple[int, int] = (1, 1)) -> tuple[int, int]:
    """Output height and width of a window op: ``(in + pads - ke) // stride + 1`` with the
    effective (dilated) kernel ``ke = (k - 1) * dilation + 1`` (TFLite's
    ``ComputeOutSize``: ``ceil(in / stride)`` for SAME, ``(in + stride - ke) / stride`` for
    VALID -- the same numbers)."""
    out = []
    for size, k, s, (p0, p1), axis in zip(in_hw, effective_kernel(kernel, dilation), stride,
                                          pads, ("height", "width")):
        span = size + p0 + p1 - k
        if span < 0:
            what = "kernel" if tuple(dilation) == (1, 1) else "dilated kernel"
            raise ValueError(f"{what} {axis} {k} exceeds the padded input {axis} "
                             f"{size + p0 + p1}")
        out.append(span // s + 1)
    return out[0], out[1]


def im2col(x: np.ndarray, kernel: Any, stride: Any = 1, padding: Padding = "valid",
           pad_value: int | float = 0, dilation: Any = (1, 1)
           ) -> tuple[np.ndarray, tuple[int, int]]:
    """Unfold an NHWC tensor into GEMM rows.

    Tap ``(ky, kx)`` of output pixel ``(oy, ox)`` reads input pixel
    ``(oy * sh + ky * dh - pad_top, ox * sw + kx * dw - pad_left)`` (TFLite's conv loop).

    Args:
        x: activations ``[N, H, W, C]`` (any dtype).
        kernel: window ``(kh, kw)`` or an int.
        stride: ``(sh, sw)`` or an int.
        padding: ``"valid"``, ``"same"``, an int or ``((top, bottom), (left, right))``.
        pad_value: value of padded pixels -- the input zero point for quantized
            tensors (so a padded tap contributes ``w * (zp - zp) = 0``), 0.0 for float.
        dilation: ``(dh, dw)`` or an int: distance between the taps of the window
            (TFLite's ``dilation_{height,width}_factor``); SAME padding and the output size
            use the effective kernel ``(k - 1) * d + 1``.

    Returns:
        ``(cols, (OH, OW))`` with ``cols`` of shape ``[N*OH*OW, KH*KW*C]``, rows ordered
        ``(n, oh, ow)`` and columns ``(kh, kw, c)``; same dtype as ``x``.
    """
    x = np.asarray(x)
    validate.ndim("x", x, 4, "[N, H, W, C] (NHWC)")
    validate.nonempty("x", x)
    kh, kw = pair("kernel", kernel)
    sh, sw = pair("stride", stride)
    dh, dw = pair("dilation", dilation)
    pads = resolve_padding(padding, x.shape[1:3], (kh, kw), (sh, sw), (dh, dw))
    oh, ow = output_hw(x.shape[1:3], (kh, kw), (sh, sw), pads, (dh, dw))
    ekh, ekw = effective_kernel((kh, kw), (dh, dw))
    if any(pads[0] + pads[1]):
        x = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=pad_value)
    win = np.lib.stride_tricks.sliding_window_view(x, (ekh, ekw), axis=(1, 2))
    win = win[:, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw, :, ::dh, ::dw]
    cols = win.transpose(0, 1, 2, 4, 5, 3).reshape(x.shape[0] * oh * ow, kh * kw * x.shape[3])
    return cols, (oh, ow)
