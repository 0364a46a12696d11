"""Datasets for calibration, evaluation and training.

``digits``: scikit-learn's 8x8 handwritten digits (1797 images, bundled with
scikit-learn, no download).  Pixels 0..16 are scaled to ``[0, 1]`` (``pixel / 16``) and
laid out NHWC ``[N, 8, 8, 1]``.  The split is fixed (stratified, seed 0):

=========== ====== ===============================================
split       images use
=========== ====== ===============================================
train       1077   training the float network (60 %)
calib       180    calibration of activation ranges (10 %), never trained on
test        540    every reported accuracy (30 %)
=========== ====== ===============================================

A network YAML can name ``dataset: digits``; other data come as an ``.npz`` with ``x``
(float ``[N, *input_shape]``) and optionally ``y`` (int ``[N]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import numpy as np

from pymodel.validate import NPZ_READ_ERRORS

DATASETS = ("digits",)
SPLITS = ("train", "calib", "test")
DIGITS_SPLIT_SEED = 0
DIGITS_TEST_FRACTION = 0.30
DIGITS_CALIB_IMAGES = 180


@dataclass(frozen=True)
class Split:
    """Images and labels of one split: ``x`` float64 ``[N, ...]``, ``y`` int64 ``[N]``."""

    x: np.ndarray
    y: np.ndarray | None

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def head(self, n: int | None) -> "Split":
        """The first ``n`` images (all when ``n`` is ``None``)."""
        if n is None:
            return self
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"images: expected a non-negative integer; got {n!r}")
        return Split(self.x[:n], None if self.y is None else self.y[:n])


@lru_cache(maxsize=1)
def _digits() -> dict[str, Split]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images.astype(np.float64) / 16.0)[..., None]          # [1797, 8, 8, 1]
    y = d.target.astype(np.int64)
    idx = np.arange(len(y))
    rest, test = train_test_split(idx, test_size=DIGITS_TEST_FRACTION, stratify=y,
                                  random_state=DIGITS_SPLIT_SEED)
    train, calib = train_test_split(rest, test_size=DIGITS_CALIB_IMAGES, stratify=y[rest],
                                    random_state=DIGITS_SPLIT_SEED)
    out = {}
    for name, sel in (("train", train), ("calib", calib), ("test", test)):
        xs, ys = x[sel], y[sel]
        xs.setflags(write=False)
        ys.setflags(write=False)
        out[name] = Split(xs, ys)
    return out


def digits(split: str) -> Split:
    """One split of the digits dataset (``train`` / ``calib`` / ``test``)."""
    if split not in SPLITS:
        raise ValueError(f"split: {split!r} is not one of {', '.join(SPLITS)}")
    return _digits()[split]


def load(dataset: str, split: str) -> Split:
    """A split of a built-in dataset, or all of an ``.npz`` file (``x``, optional ``y``).

    Args:
        dataset: a name in :data:`DATASETS` or a path to an ``.npz``.
        split: for built-in datasets.
    """
    if dataset in DATASETS:
        return digits(split)
    p = Path(dataset)
    if p.suffix != ".npz":
        raise ValueError(f"data: {dataset!r} is neither a built-in dataset "
                         f"({', '.join(DATASETS)}) nor an .npz file")
    try:
        with np.load(p, allow_pickle=False) as z:
            if "x" not in z.files:
                raise ValueError(f"data: {p} has no array 'x' (holds {', '.join(z.files)})")
            x = np.asarray(z["x"], np.float64)
            y = np.asarray(z["y"]).astype(np.int64) if "y" in z.files else None
    except FileNotFoundError:
        raise ValueError(f"data: {p}: file not found") from None
    except NPZ_READ_ERRORS as exc:
        if isinstance(exc, ValueError) and str(exc).startswith("data: "):
            raise
        raise ValueError(f"data: {p} is not a readable .npz ({type(exc).__name__}: "
                         f"{exc})") from None
    if y is not None and y.shape != (x.shape[0],):
        raise ValueError(f"data: {p}: y has shape {y.shape}; expected ({x.shape[0]},)")
    return Split(x, y)


def batches(x: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Consecutive batches of ``x`` along axis 0 (the last one may be shorter)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer; got {batch_size!r}")
    for start in range(0, x.shape[0], batch_size):
        yield x[start:start + batch_size]
