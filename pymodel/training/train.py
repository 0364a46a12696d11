"""Training loop for :mod:`pymodel.training.nn` models (float training; QAT reuses it with hooks).

:func:`fit` shuffles with its own seeded generator, so a run is a pure function of the
initial weights, the data, the hyper-parameters and the seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from pymodel.training.nn import Adam, SGD, Sequential, softmax_cross_entropy


@dataclass
class History:
    """Per-epoch mean training loss and (if evaluated) accuracy, fractions in [0, 1]."""

    loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)


def predict(model: Sequential, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class predictions (argmax of the logits), int64 ``[N]``."""
    out = [model.forward(x[i:i + batch_size]).argmax(axis=1)
           for i in range(0, x.shape[0], batch_size)]
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def accuracy(model: Sequential, x: np.ndarray, y: np.ndarray) -> float:
    """Fraction of correct predictions."""
    return float(np.mean(predict(model, x) == y))


def fit(model: Sequential, x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int,
        optimizer: Adam | SGD, seed: int, val: tuple[np.ndarray, np.ndarray] | None = None,
        progress: bool = False, on_epoch: Callable[[int, History], Any] | None = None
        ) -> History:
    """Mini-batch training with softmax cross-entropy.

    Args:
        model: the model (updated in place).
        x: float ``[N, ...]`` inputs; y: int ``[N]`` labels.
        epochs, batch_size: schedule.
        optimizer: :class:`Adam` or :class:`SGD`.
        seed: seed of the shuffling generator.
        val: optional ``(x, y)`` evaluated after every epoch.
        progress: show a tqdm bar over epochs.
        on_epoch: called as ``on_epoch(epoch, history)`` after each epoch (e.g. to
            freeze QAT ranges for the last epochs).

    Returns:
        :class:`History`.
    """
    rng = np.random.default_rng(seed)
    hist = History()
    it: Any = range(epochs)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc="train", unit="epoch")
    for epoch in it:
        order = rng.permutation(x.shape[0])
        losses = []
        for start in range(0, x.shape[0], batch_size):
            sel = order[start:start + batch_size]
            logits = model.forward(x[sel], train=True)
            loss, grad = softmax_cross_entropy(logits, y[sel])
            model.backward(grad)
            optimizer.step(model)
            losses.append(loss * len(sel))
        hist.loss.append(float(np.sum(losses) / x.shape[0]))
        if val is not None:
            hist.val_accuracy.append(accuracy(model, *val))
        if on_epoch is not None:
            on_epoch(epoch, hist)
        if progress:
            it.set_postfix(loss=f"{hist.loss[-1]:.4f}")
    return hist
