"""Argument checking shared by the golden model.

Every public function validates its inputs with these helpers so that bad input
raises :class:`ValueError` naming the argument, the offending value and what is
allowed -- never a numpy traceback from deep inside a kernel.
"""

from __future__ import annotations

import zipfile
import zlib
from typing import Any

import numpy as np

INT_DTYPES = (np.int8, np.int16, np.int32, np.int64)

#: What reading a truncated, bit-flipped or otherwise unreadable ``.npz`` raises
#: (``np.load`` and the arrays read from it): a missing file, a bad zip directory, a
#: member whose CRC-32 does not match, a short read, a bad ``.npy`` header.
NPZ_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


def _describe(value: Any) -> str:
    arr = np.asarray(value)
    if arr.ndim == 0:
        return repr(arr.item())
    return f"array of shape {arr.shape} and dtype {arr.dtype}"


def int_array(name: str, value: Any, lo: int | None = None, hi: int | None = None,
              dtypes: tuple = INT_DTYPES) -> np.ndarray:
    """Return ``value`` as an integer ndarray, checking dtype and range.

    Python ints (and lists of them) are accepted; floats and bools are not.

    Args:
        name: argument name used in the error message.
        value: array-like of integers.
        lo, hi: inclusive bounds every element must satisfy (``None``: unbounded).
        dtypes: allowed numpy dtypes for ndarray inputs.

    Returns:
        ``np.ndarray`` with the input's integer dtype (``int64`` for Python ints).
    """
    if isinstance(value, np.ndarray):
        arr = value
        if arr.dtype not in [np.dtype(d) for d in dtypes]:
            allowed = ", ".join(np.dtype(d).name for d in dtypes)
            raise ValueError(f"{name}: expected an integer array of dtype {allowed}; "
                             f"got dtype {arr.dtype}")
    else:
        arr = np.asarray(value)
        if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name}: expected integers; got {_describe(value)}")
        arr = arr.astype(np.int64)
    if arr.size and (lo is not None or hi is not None):
        amin, amax = int(arr.min()), int(arr.max())
        if (lo is not None and amin < lo) or (hi is not None and amax > hi):
            bad = amin if (lo is not None and amin < lo) else amax
            raise ValueError(f"{name}: value {bad} is outside the allowed range "
                             f"[{lo}, {hi}]")
    return arr


def float_array(name: str, value: Any, allow_empty: bool = True) -> np.ndarray:
    """Return ``value`` as a float64 ndarray, rejecting NaN, Inf and non-numbers."""
    arr = np.asarray(value)
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.floating)
                                     or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name}: expected real numbers; got {_describe(value)}")
    arr = arr.astype(np.float64, copy=False)
    if not allow_empty:
        nonempty(name, arr)
    if arr.size and not np.all(np.isfinite(arr)):
        bad = float(arr[~np.isfinite(arr)].flat[0])
        raise ValueError(f"{name}: contains {bad!r}; only finite values are allowed")
    return arr


def int_scalar(name: str, value: Any, lo: int, hi: int) -> int:
    """Return ``value`` as a Python int in ``[lo, hi]``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}: expected an integer in [{lo}, {hi}]; got {value!r}")
    if not lo <= int(value) <= hi:
        raise ValueError(f"{name}: {int(value)} is outside the allowed range [{lo}, {hi}]")
    return int(value)


def bits(name: str, value: Any) -> int:
    """Check a quantization bit width: an integer in 2..16."""
    return int_scalar(name, value, 2, 16)


def ndim(name: str, arr: np.ndarray, expected: int, layout: str) -> None:
    """Check that ``arr`` has ``expected`` dimensions (``layout`` names them)."""
    if arr.ndim != expected:
        raise ValueError(f"{name}: expected a {expected}-D array {layout}; "
                         f"got shape {arr.shape}")


def nonempty(name: str, arr: np.ndarray) -> None:
    """Reject zero-size tensors."""
    if arr.size == 0:
        raise ValueError(f"{name}: zero-size tensor of shape {arr.shape} is not allowed")


def one_of(name: str, value: Any, allowed: tuple) -> Any:
    """Check that ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{name}: {value!r} is not one of {', '.join(map(repr, allowed))}")
    return value
