"""Exact int32 GEMM and im2col."""

from __future__ import annotations

import numpy as np
import pytest

from pymodel.arithmetic.gemm import im2col, matmul_int32, resolve_padding


def wrapped_int64_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    c = [[sum(int(a[i, k]) * int(b[k, j]) for k in range(a.shape[1]))
          for j in range(b.shape[1])] for i in range(a.shape[0])]
    return np.array([[((v + 2**31) % 2**32) - 2**31 for v in row] for row in c], np.int64)


@pytest.mark.parametrize("dtype, lim, k", [
    (np.int8, 128, 7),           # float32 path
    (np.int8, 128, 1500),        # float64 path (bound 2^24.6)
    (np.int16, 2**15, 300),      # float64 path
    (np.int32, 2**31, 40),       # int64 path, wraps
])
def test_matmul_int32_is_exact_on_every_path(rng, dtype, lim, k):
    a = rng.integers(-lim, lim, (5, k)).astype(dtype)
    b = rng.integers(-lim, lim, (k, 4)).astype(dtype)
    got = matmul_int32(a, b)
    assert got.dtype == np.int32
    assert got.tolist() == wrapped_int64_matmul(a, b).tolist()


def test_matmul_int32_extremes():
    k = 2**16
    a = np.full((2, k), -128, np.int8)
    b = np.full((k, 3), -128, np.int8)
    assert matmul_int32(a, b).tolist() == [[2**30] * 3] * 2          # 2^14 * 2^16
    a = np.full((1, 2 * k + 1), -128, np.int8)
    b = np.full((2 * k + 1, 1), -128, np.int8)
    assert matmul_int32(a, b)[0, 0] == -(2**31) + 2**14              # wrapped past 2^31


def test_matmul_int32_bad_input():
    with pytest.raises(ValueError, match="inner dimensions differ"):
        matmul_int32(np.zeros((2, 3), np.int8), np.zeros((4, 2), np.int8))
    with pytest.raises(ValueError, match="a: expected an integer array"):
        matmul_int32(np.zeros((2, 3)), np.zeros((3, 2), np.int8))
    with pytest.raises(ValueError, match=r"b: expected a 2-D array \[K, N\]"):
        matmul_int32(np.zeros((2, 3), np.int8), np.zeros(3, np.int8))


@pytest.mark.parametrize("h, w, k, s, padding", [
    (5, 5, 3, 1, "valid"), (5, 5, 3, 1, "same"), (7, 6, 3, 2, "same"), (6, 7, 2, 2, "same"),
    (5, 4, (3, 1), (1, 2), ((1, 0), (2, 1))), (1, 1, 1, 1, "valid"), (4, 4, 4, 3, "same"),
    (3, 3, 1, 2, 1),
])
def test_im2col_against_loops(rng, h, w, k, s, padding):
    x = rng.integers(-128, 128, (2, h, w, 3)).astype(np.int8)
    kh, kw = (k, k) if np.ndim(k) == 0 else k
    sh, sw = (s, s) if np.ndim(s) == 0 else s
    (pt, pb), (pl, pr) = resolve_padding(padding, (h, w), (kh, kw), (sh, sw))
    cols, (oh, ow) = im2col(x, (kh, kw), (sh, sw), padding, pad_value=-7)
    assert cols.shape == (2 * oh * ow, kh * kw * 3)
    row = 0
    for n in range(2):
        for i in range(oh):
            for j in range(ow):
                expect = []
                for dy in range(kh):
                    for dx in range(kw):
                        y, xx = i * sh + dy - pt, j * sw + dx - pl
                        inside = 0 <= y < h and 0 <= xx < w
                        expect += list(x[n, y, xx]) if inside else [-7] * 3
                assert cols[row].tolist() == expect
                row += 1
    if padding == "same":
        assert (oh, ow) == (-(-h // sh), -(-w // sw))


def test_same_padding_puts_the_odd_pixel_last():
    assert resolve_padding("same", (6, 6), (2, 2), (2, 2)) == ((0, 0), (0, 0))
    assert resolve_padding("same", (5, 5), (2, 2), (1, 1)) == ((0, 1), (0, 1))
    assert resolve_padding("same", (8, 8), (3, 3), (2, 2)) == ((0, 1), (0, 1))


def test_im2col_bad_input():
    with pytest.raises(ValueError, match="padding: 'full' is not one of"):
        im2col(np.zeros((1, 4, 4, 1)), 3, 1, "full")
    with pytest.raises(ValueError, match="kernel height 5 exceeds the padded input height 4"):
        im2col(np.zeros((1, 4, 4, 1)), 5)
    with pytest.raises(ValueError, match="zero-size"):
        im2col(np.zeros((1, 0, 4, 1)), 1)
    with pytest.raises(ValueError, match=r"x: expected a 4-D array \[N, H, W, C\]"):
        im2col(np.zeros((4, 4, 1)), 1)
    with pytest.raises(ValueError, match=r"stride: 0 is outside"):
        im2col(np.zeros((1, 4, 4, 1)), 1, 0)
