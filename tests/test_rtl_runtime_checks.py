"""Every run-time ``$error`` of the RTL fires once, with its message (issue 15).

``tb/test_rtl_errors.py`` provokes each check of a block once, in a fixed order; the
run must fail (:class:`tb.kit.TestbenchFailed`: the kit's runner fails a test on any
simulator error) and the simulator's error messages must be exactly the expected
ones, in that order -- no check missing, none firing twice or by accident.
"""

from __future__ import annotations

import re

import pytest

from tb import kit
from tb import test_rtl_errors

EXPECTED = {
    "mac_array": [
        r"mac_array\.v:\d+: mac_array: a tile completed row 0 with no tile pending",
        r"mac_array\.v:\d+: mac_array: a tile completed row 0 while another one was already "
        r"waiting for the drain",
    ],
    "requant_out_fifo": [
        r"requant_out_fifo\.v:\d+: requant_out_fifo: push into a full FIFO \(DEPTH = 3\)",
    ],
    "requant_pipeline": [
        r"requant_pipeline\.v:\d+: requant_pipeline: prm_chan_i = 12 is not below CHANNELS = 12",
        r"requant_pipeline\.v:\d+: requant_pipeline: prm_shift_i = -32 is outside -31\.\.30",
        r"requant_pipeline\.v:\d+: requant_pipeline: prm_act_min_i = 5 exceeds prm_act_max_i = 4",
        r"requant_pipeline\.v:\d+: requant_pipeline: in_tile_i = 3 is not below TILES = 3",
    ],
    "qlayer_engine": [
        r"qlayer_engine\.v:\d+: qlayer_engine: K = 0 is outside 1\.\.65535",
        r"qlayer_engine\.v:\d+: qlayer_engine: N_TILES = 0 is outside 1\.\.2",
        r"qlayer_engine\.v:\d+: qlayer_engine: N_TILES = 3 is outside 1\.\.2",
        r"qlayer_engine\.v:\d+: qlayer_engine: K_TILE = 0 is outside 1\.\.A_DEPTH = 4",
        r"qlayer_engine\.v:\d+: qlayer_engine: K_TILE = 5 is outside 1\.\.A_DEPTH = 4",
        r"qlayer_engine\.v:\d+: qlayer_engine: weight word 9 read beyond W_DEPTH = 9 "
        r"\(need N_TILES \* K <= W_DEPTH\)",
        r"qlayer_engine\.v:\d+: qlayer_engine: a result row left the MAC array with no tile "
        r"descriptor",
    ],
}


@pytest.mark.rtl
@pytest.mark.parametrize("block", sorted(EXPECTED))
def test_runtime_checks_fire(block: str, seed: int) -> None:
    expected = EXPECTED[block]
    with pytest.raises(kit.TestbenchFailed,
                       match=rf"the simulator reported {len(expected)} error\(s\)") as info:
        test_rtl_errors.run(block, seed=seed)
    _, messages = kit.simulator_errors(kit.SIM_DIR / "build" / f"checks-{block}" / "sim.log",
                                       limit=100)
    assert len(messages) == len(expected), f"{block}: got {messages}"
    for got, want in zip(messages, expected):
        assert re.match(r"ERROR: \S+" + want, got), f"{block}: expected {want!r}, got {got!r}"
    assert "ERROR" in str(info.value)
