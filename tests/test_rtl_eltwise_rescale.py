"""Regression of the element-wise unit's input rescale RTL: tb/test_eltwise_rescale.py
(every 9-bit operand, multipliers over the whole int32 range; the cocotb seed is this
test's ``seed`` fixture, ``make test SEED=n``)."""

from __future__ import annotations

import pytest

from tb import test_eltwise_rescale as tb_rescale


@pytest.mark.rtl
def test_eltwise_rescale(seed: int) -> None:
    """Every output of rtl/eltwise_rescale.v equals pymodel's eltwise_rescale."""
    tb_rescale.run(seed=seed)
