"""The quick formal proofs of ``make formal`` (formal/run.py) in the regression.

The targets marked ``quick`` (the k-induction proofs of the output FIFO and of the
requantize pipeline's credit control: seconds) run here; ``make formal`` runs every
target, including the bounded checks of the MAC array (minutes).  Each check -- the
bounded base case and the k-induction step -- must pass with Yosys + z3.
"""

from __future__ import annotations

import pytest

from formal import run as formal_run


@pytest.mark.rtl
@pytest.mark.parametrize("target", sorted(n for n, t in formal_run.TARGETS.items() if t.quick))
def test_formal_proof(target: str) -> None:
    rows = formal_run.prove(formal_run.TARGETS[target])
    assert rows, f"{target}: nothing was checked"
    bad = [f"{mode} depth {depth}: {why or 'FAILED'}" for mode, depth, ok, _, why in rows if not ok]
    assert not bad, f"formal target {target}: " + "; ".join(bad)
