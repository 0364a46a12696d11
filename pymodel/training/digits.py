"""The demo network: a small CNN for scikit-learn's 8x8 digits, and its training recipe.

Files under ``models/digits/``:

- ``digits_cnn.yaml``   the float network description (layers, shapes, schemes);
- ``digits_cnn.npz``    its float weights, trained by :func:`train_float`;
- ``train.py``          the script that trained them (``python models/digits/train.py``);
- ``digits_cnn_int8.yaml/.npz``   the shipped quantized artifact (W8A8, per-channel);
- ``digits_cnn_mixed.yaml/.npz``  a mixed INT4/INT8 artifact (chosen by sensitivity);
- ``digits_cnn_w4a8_qat.yaml/.npz``, ``digits_cnn_mixed_qat.yaml/.npz``  the same schemes
  after quantization-aware training (:mod:`pymodel.quantization.qat`, ``docs/qat.md``).

Recipe (fixed, so the weights reproduce): He-normal initialization from
``default_rng(SEED)``, Adam (lr 3e-3, L2 weight decay 1e-4 on weights), batch 32,
30 epochs over the 1077 training images (:mod:`pymodel.datasets` fixes the split),
shuffled by ``default_rng(SEED)``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pymodel import datasets

from pymodel.training import nn
from pymodel.graph.network import Network, load_network
from pymodel.training.train import History, fit

ROOT = Path(__file__).resolve().parents[2]
MODEL_DIR = ROOT / "models" / "digits"
NETWORK_YAML = MODEL_DIR / "digits_cnn.yaml"
INT8_ARTIFACT = MODEL_DIR / "digits_cnn_int8.yaml"
MIXED_ARTIFACT = MODEL_DIR / "digits_cnn_mixed.yaml"

SEED = 0
EPOCHS = 30
BATCH_SIZE = 32
LEARNING_RATE = 3e-3
WEIGHT_DECAY = 1e-4


def load(weights: bool = True) -> Network:
    """The shipped float network (with its trained weights unless ``weights=False``)."""
    return load_network(NETWORK_YAML, with_weights=weights)


def train_float(epochs: int = EPOCHS, seed: int = SEED, train_images: int | None = None,
                progress: bool = False) -> tuple[nn.Sequential, History]:
    """Train the float digits CNN from scratch with the fixed recipe.

    Args:
        epochs: number of epochs (the shipped weights: :data:`EPOCHS`).
        seed: initialization and shuffling seed (shipped: :data:`SEED`).
        train_images: use only the first ``n`` training images (quick checks).
        progress: tqdm bar over epochs.

    Returns:
        ``(model, history)``; ``model.state()`` is the weights ``.npz`` content.
    """
    net = load(weights=False)
    tr = datasets.digits("train").head(train_images)
    te = datasets.digits("test")
    model = nn.from_network(net, np.random.default_rng(seed), init=True)
    opt = nn.Adam(LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    hist = fit(model, tr.x, tr.y, epochs, BATCH_SIZE, opt, seed=seed, val=(te.x, te.y),
               progress=progress)
    return model, hist
