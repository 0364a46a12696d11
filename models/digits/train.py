#!/usr/bin/env python3
"""Train the float digits CNN and write models/digits/digits_cnn.npz (atomically).

    .venv/bin/python models/digits/train.py            # retrain, overwrite the weights
    .venv/bin/python models/digits/train.py --check    # retrain, compare with the shipped file

The recipe (seed, optimizer, epochs, split) is fixed in ``pymodel/training/digits.py``; the split
(train 1077 / calib 180 / test 540 images, stratified, seed 0) in
``pymodel/datasets.py``.  About 10 s on one core.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pymodel import atomicio, datasets  # noqa: E402

from pymodel.training import digits  # noqa: E402
from pymodel.graph.network import load_npz  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=digits.EPOCHS)
    parser.add_argument("--seed", type=int, default=digits.SEED)
    parser.add_argument("--out", type=Path, default=digits.MODEL_DIR / "digits_cnn.npz")
    parser.add_argument("--check", action="store_true",
                        help="do not write; compare the retrained weights with --out")
    args = parser.parse_args(argv)
    from pymodel.threads import single_blas_thread
    with single_blas_thread():                   # same weights whatever the thread count
        model, hist = digits.train_float(args.epochs, args.seed, progress=True)
    state = model.state()
    tr, te = datasets.digits("train"), datasets.digits("test")
    from pymodel.training.train import accuracy
    print(f"final loss {hist.loss[-1]:.5f}; train accuracy {accuracy(model, tr.x, tr.y):.4f}; "
          f"test accuracy {accuracy(model, te.x, te.y):.4f} ({len(te)} images)")
    if args.check:
        shipped = load_npz(args.out)
        worst = max(float(np.max(np.abs(state[k] - shipped[k]))) for k in state)
        same = set(state) == set(shipped)
        print(f"max |retrained - shipped| = {worst:.3g} over {len(state)} tensors "
              f"({'same tensor names' if same else 'DIFFERENT tensor names'})")
        return 0 if same and worst < 1e-6 else 1
    atomicio.save_npz(args.out, state)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
