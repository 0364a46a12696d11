"""The requantize pipeline's cocotb testbench (tb/test_requant.py) under pytest.

Each parameter set builds in its own ``sim/build/requant-<params>/`` (xdist-safe).  The
100,000-vector random run happens at LANES=8; LANES=1 runs a shorter random test over a
small parameter memory with a 16-bit sideband; LANES=3 checks a lane count that is not a
power of two.  LANES4-single builds the single-rounding datapath (SINGLE_ROUNDING=1) and
runs 30,000 random vectors against ``requantize(..., rounding="single")``.
"""

from __future__ import annotations

import pytest

from tb import test_requant

PARAMETER_SETS = [
    pytest.param({"LANES": 8}, id="LANES8"),
    pytest.param({"LANES": 1, "CHANNELS": 4, "USER_W": 16}, id="LANES1"),
    # not a power of two: channel -> (bank, address) is a real % and / in the write path
    pytest.param({"LANES": 3, "CHANNELS": 12}, id="LANES3"),
    # TFLITE_SINGLE_ROUNDING datapath: its own stimulus, reference and coverage bins
    pytest.param({"LANES": 4, "CHANNELS": 8, "SINGLE_ROUNDING": 1}, id="LANES4-single"),
]


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("parameters", PARAMETER_SETS)
def test_requant_pipeline(parameters: dict[str, object], seed: int) -> None:
    """All cocotb tests of tb/test_requant.py pass, coverage 100 % (its last test)."""
    test_requant.run(parameters, seed=seed)
