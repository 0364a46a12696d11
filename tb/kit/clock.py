"""Clock and synchronous-reset helpers (``clk_i`` / ``rst_i``, active high).

:class:`ClockReset` owns one clock domain: it starts the clock, applies the
synchronous reset for a number of cycles, and converts simulation time into a cycle
number (the index of the last rising edge), which monitors and scoreboards use to
report *when* something happened.
"""

from __future__ import annotations

from typing import Any

from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, RisingEdge
from cocotb.utils import get_sim_steps

__all__ = ["ClockReset"]


class ClockReset:
    """One clock domain: clock signal, synchronous reset, cycle counting.

    Rising edges happen at ``t = n * period`` (the clock starts high at time 0), so
    :meth:`cycle` right after ``await RisingEdge(clk)`` is the index ``n`` of that edge.

    Args:
        clk: the clock signal handle (e.g. ``dut.clk_i``).
        rst: the reset signal handle (e.g. ``dut.rst_i``), or None.
        period_ns: clock period in ns.
        active_high: reset polarity (the qmac convention is active high).
    """

    def __init__(self, clk: Any, rst: Any | None = None, *, period_ns: int = 10,
                 active_high: bool = True) -> None:
        if period_ns <= 0 or period_ns % 2:
            raise ValueError(f"period_ns: {period_ns} must be a positive even number of ns")
        self.clk = clk
        self.rst = rst
        self.period_ns = period_ns
        self._period_steps = get_sim_steps(period_ns, "ns")
        self._on = 1 if active_high else 0
        self._clock: Clock | None = None

    def start(self) -> None:
        """Start the clock (idempotent) and drive the reset asserted, if there is one."""
        if self.rst is not None:
            self.rst.value = self._on
        if self._clock is None:
            self._clock = Clock(self.clk, self.period_ns, unit="ns")
            self._clock.start(start_high=True)

    async def reset(self, cycles: int = 3) -> None:
        """Hold the reset asserted for ``cycles`` rising edges, then release it.

        Starts the clock if needed.  Returns right after the edge at which the reset
        was released (the DUT is out of reset from the next edge on).
        """
        if self.rst is None:
            raise ValueError("reset: this ClockReset has no reset signal")
        if cycles < 1:
            raise ValueError(f"cycles: {cycles} must be >= 1")
        self.start()
        await RisingEdge(self.clk)
        self.rst.value = self._on
        await ClockCycles(self.clk, cycles)
        self.rst.value = 1 - self._on

    async def start_and_reset(self, cycles: int = 3) -> None:
        """Start the clock and apply the reset (the usual first line of a test)."""
        self.start()
        await self.reset(cycles)

    async def cycles(self, n: int) -> None:
        """Wait ``n`` rising edges."""
        await ClockCycles(self.clk, n)

    def cycle(self) -> int:
        """Index of the latest rising edge (edge n is at time n * period)."""
        return int(get_sim_time("step")) // self._period_steps
