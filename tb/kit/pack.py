"""Packing of integer lanes into HDL bit vectors and back.

A bus of ``lanes`` lanes of ``width`` bits carries lane ``l`` in bits
``[l*width +: width]`` (lane 0 in the least significant bits), each lane in two's
complement when signed.  This is the packing of every vector port in ``rtl/``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["XZError", "pack", "unpack", "is01", "resolved_int", "read_lanes"]


class XZError(AssertionError):
    """A signal that must be 0/1 holds X, Z (or another unresolvable value)."""


_BYTE_WIDTHS = {8: "u1", 16: "u2", 32: "u4", 64: "u8"}


def pack(values: Any, width: int) -> int:
    """Pack integer lanes into one unsigned integer.

    Args:
        values: 1-D sequence / array of Python or numpy integers, each in
            ``[-2^(width-1), 2^width)`` (signed or unsigned lanes).
        width: bits per lane, >= 1.

    Returns:
        ``sum((v mod 2^width) << (l * width))`` as a Python int.

    Raises:
        ValueError: ``width`` < 1, ``values`` not 1-D, or a lane out of range.
    """
    if width < 1:
        raise ValueError(f"width: {width} is not >= 1")
    arr = np.asarray(values, dtype=np.int64)
    if arr.ndim != 1:
        raise ValueError(f"values: expected a 1-D array of lanes; got shape {arr.shape}")
    if arr.size and (arr.min() < -(1 << (width - 1)) or arr.max() >= (1 << width)):
        raise ValueError(f"values: lanes must lie in [-2^{width - 1}, 2^{width}); "
                         f"got min {arr.min()}, max {arr.max()}")
    mask = (1 << width) - 1 if width < 64 else -1
    if width in _BYTE_WIDTHS:
        raw = (arr & mask).astype("<" + _BYTE_WIDTHS[width])
        return int.from_bytes(raw.tobytes(), "little")
    out = 0
    for lane, v in enumerate(arr.tolist()):
        out |= (v & ((1 << width) - 1)) << (lane * width)
    return out


def unpack(value: int, lanes: int, width: int, *, signed: bool = True) -> np.ndarray:
    """Split an unsigned integer into ``lanes`` lanes of ``width`` bits.

    Args:
        value: the packed bus, ``0 <= value < 2^(lanes*width)``.
        lanes: number of lanes, >= 1.
        width: bits per lane, 1..64.
        signed: interpret each lane as two's complement.

    Returns:
        int64 array ``[lanes]``.
    """
    if lanes < 1 or not 1 <= width <= 64:
        raise ValueError(f"lanes, width: {lanes}, {width}; need lanes >= 1, 1 <= width <= 64")
    if value < 0 or value >> (lanes * width):
        raise ValueError(f"value: {value:#x} does not fit {lanes} lanes of {width} bits")
    if width == 64 and not signed:
        raise ValueError("width: unsigned 64-bit lanes do not fit the int64 result")
    if width in _BYTE_WIDTHS:
        raw = np.frombuffer(value.to_bytes(lanes * width // 8, "little"),
                            dtype="<" + _BYTE_WIDTHS[width])
        if width == 64:
            return raw.view("<i8").astype(np.int64)
        out = raw.astype(np.int64)
    else:
        mask = (1 << width) - 1
        out = np.array([(value >> (l * width)) & mask for l in range(lanes)], dtype=np.int64)
    if signed and width < 64:
        out = np.where(out >= (1 << (width - 1)), out - (1 << width), out)
    return out.astype(np.int64)


def is01(bits: str) -> bool:
    """True if the bit string (``str(handle.value)``) holds only ``0`` and ``1``.

    Much faster than ``LogicArray.is_resolvable`` on wide vectors (no per-bit objects);
    stricter too: the weak values ``L`` / ``H`` count as unresolved.
    """
    return bits.count("0") + bits.count("1") == len(bits)


def resolved_int(handle: Any, *, what: str | None = None, cycle: int | None = None) -> int:
    """The unsigned integer value of a signal handle, checking it is all 0/1.

    Raises:
        XZError: the value contains X, Z, U, W, L, H or -; the message names the signal
            (``what`` or the handle's path), the cycle if given, and the bit string.
    """
    bits = str(handle.value)
    if not is01(bits):
        at = f" at cycle {cycle}" if cycle is not None else ""
        raise XZError(f"{what or handle._path}{at}: value {bits!r} is not all 0/1")
    return int(bits, 2)


def read_lanes(handle: Any, lanes: int, width: int, *, signed: bool = True,
               cycle: int | None = None) -> np.ndarray:
    """Read a packed vector signal as ``lanes`` integer lanes (int64 array)."""
    return unpack(resolved_int(handle, cycle=cycle), lanes, width, signed=signed)
