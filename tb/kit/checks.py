"""Continuous signal checks."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from cocotb.triggers import RisingEdge

from .clock import ClockReset
from .pack import XZError, is01
from .stream import _Task

__all__ = ["NoXZChecker", "dut_outputs"]


def dut_outputs(dut: Any, suffix: str = "_o") -> dict[str, Any]:
    """Name -> handle of every DUT port whose name ends in ``suffix`` (qmac naming)."""
    return {h._name: h for h in dut if h._name.endswith(suffix)}


class NoXZChecker(_Task):
    """Fail as soon as a watched signal is not all 0/1 at a rising edge.

    Start it right after the reset is released; it then checks every edge until
    stopped.  The error names the signal, the cycle and the bit string.

    Args:
        clock: the domain's :class:`ClockReset`.
        signals: handles, or name -> handle (e.g. :func:`dut_outputs`).
    """

    def __init__(self, clock: ClockReset, signals: Sequence[Any] | Mapping[str, Any]) -> None:
        super().__init__()
        self.clock = clock
        if isinstance(signals, Mapping):
            self.signals = dict(signals)
        else:
            self.signals = {h._name: h for h in signals}
        if not self.signals:
            raise ValueError("signals: nothing to check")
        self.edges_checked = 0

    async def _run(self) -> None:
        clk = self.clock.clk
        items = list(self.signals.items())
        while True:
            await RisingEdge(clk)
            for name, h in items:
                bits = str(h.value)
                if not is01(bits):
                    raise XZError(f"output {name} is {bits!r} at cycle {self.clock.cycle()} "
                                  "(no X/Z allowed after reset)")
            self.edges_checked += 1
