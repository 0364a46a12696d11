"""The formal proofs of ``make formal`` (formal/run.py) as part of the regression.

Every target's bounded model check and k-induction must pass with Yosys + z3.
"""

from __future__ import annotations

import pytest

from formal import run as formal_run


@pytest.mark.rtl
@pytest.mark.parametrize("target", sorted(formal_run.TARGETS))
def test_formal_proof(target: str) -> None:
    rows = formal_run.prove(formal_run.TARGETS[target])
    assert rows, f"{target}: nothing was checked"
    bad = [f"{mode} depth {depth}: {why or 'FAILED'}" for mode, depth, ok, _, why in rows if not ok]
    assert not bad, f"formal target {target}: " + "; ".join(bad)
