"""valid/ready stream driver and monitors (AXI-Stream handshake, qmac port naming).

A beat transfers on a rising edge where ``valid && ready``.  Every class here samples
right after ``RisingEdge(clk)`` -- i.e. the values the DUT's flip-flops saw at that edge
-- and drives its outputs right after the same edge, for the next one.

* :class:`StreamSource` drives a DUT input stream (``<p>_valid_i``, ``<p>_<field>_i``,
  watching ``<p>_ready_o``) from a queue of beats, with random idle cycles ("stalls").
* :class:`StreamSink` accepts a DUT output stream (``<p>_valid_o``, ``<p>_<field>_o``,
  driving ``<p>_ready_i``) with random back-pressure, and checks the AXI-Stream source
  rules: while ``valid && !ready`` valid stays high and every field holds its value.
* :class:`StreamMonitor` watches a stream without driving anything.

Field values are plain unsigned integers (the packed bus; see :mod:`tb.kit.pack`).
Received beats are :class:`Beat` records carrying the cycle of the transfer.
"""

from __future__ import annotations

import collections
import random
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import cocotb
from cocotb.triggers import Event, RisingEdge

from .clock import ClockReset
from .pack import XZError, is01

__all__ = ["Beat", "StreamSource", "StreamSink", "StreamMonitor"]


@dataclass(frozen=True)
class Beat:
    """One transferred beat: ``fields`` (name -> unsigned int) at rising edge ``cycle``."""

    cycle: int
    fields: Mapping[str, int]

    def __getitem__(self, name: str) -> int:
        return self.fields[name]


def _handles(dut: Any, prefix: str, fields: Sequence[str], suffix: str) -> dict[str, Any]:
    return {f: getattr(dut, f"{prefix}_{f}{suffix}") for f in fields}


def _py_rng(rng: Any) -> random.Random:
    """A fast stdlib generator seeded from a numpy Generator / int / None (fixed 0)."""
    if isinstance(rng, random.Random):
        return rng
    if rng is None:
        return random.Random(0)
    if isinstance(rng, int):
        return random.Random(rng)
    return random.Random(int(rng.integers(1 << 62)))


def _check_prob(name: str, p: float) -> float:
    if not 0.0 <= p < 1.0:
        raise ValueError(f"{name}: {p!r} must be a probability in [0, 1)")
    return float(p)


class _Task:
    """Start / stop of the one coroutine behind a driver or monitor."""

    def __init__(self) -> None:
        self._task: cocotb.task.Task | None = None

    def start(self) -> None:
        """Start the coroutine (no-op if it runs already)."""
        if self._task is None or self._task.done():
            self._task = cocotb.start_soon(self._run())

    def stop(self) -> None:
        """Stop the coroutine (e.g. around a reset); start() resumes from idle."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None
        self._on_stop()

    def _on_stop(self) -> None:  # pragma: no cover - overridden
        pass

    async def _run(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class StreamSource(_Task):
    """Drive a valid/ready stream into the DUT from a queue of beats.

    While a beat is offered, ``valid`` and the fields hold until the DUT takes it (the
    AXI-Stream source rules).  Before offering each new beat, the source idles for a
    cycle with probability ``stall_prob`` (repeatedly, so idle gaps are geometric).
    While idle it drives ``valid = 0`` and, with ``idle="random"``, random garbage on the
    fields -- the DUT must ignore fields without ``valid``.

    Args:
        clock: the stream's :class:`ClockReset` (for the clock and cycle numbers).
        valid, ready: handles of the DUT's ``*_valid_i`` and ``*_ready_o``.
        fields: field name -> handle of the DUT's data inputs.
        stall_prob: probability of an idle cycle before each beat, in [0, 1).
        rng: numpy Generator / int seed / random.Random for the stalls and garbage.
        idle: ``"random"``, ``"zero"`` or ``"hold"`` -- what the fields show while idle.
        name: for messages.
        on_transfer: called with each transferred :class:`Beat`.
    """

    def __init__(self, clock: ClockReset, valid: Any, ready: Any, fields: Mapping[str, Any],
                 *, stall_prob: float = 0.0, rng: Any = None, idle: str = "random",
                 name: str = "source", on_transfer: Callable[[Beat], None] | None = None) -> None:
        super().__init__()
        if idle not in ("random", "zero", "hold"):
            raise ValueError(f"idle: {idle!r} is not one of 'random', 'zero', 'hold'")
        self.clock = clock
        self.valid = valid
        self.ready = ready
        self.fields = dict(fields)
        self.widths = {f: len(h) for f, h in self.fields.items()}
        self.stall_prob = _check_prob("stall_prob", stall_prob)
        self.idle = idle
        self.name = name
        self.on_transfer = on_transfer
        self._rng = _py_rng(rng)
        self._queue: collections.deque[Mapping[str, int]] = collections.deque()
        self._offered: Mapping[str, int] | None = None
        self._valid_q = False
        self._idle_event = Event()
        self._idle_event.set()
        self.transfers: list[Beat] = []
        self.keep_transfers = False
        self.count = 0
        self.first_cycle: int | None = None
        self.last_cycle: int | None = None

    @classmethod
    def from_dut(cls, dut: Any, clock: ClockReset, prefix: str, fields: Sequence[str],
                 **kwargs: Any) -> "StreamSource":
        """Bind ``<prefix>_valid_i``, ``<prefix>_ready_o`` and ``<prefix>_<field>_i``."""
        return cls(clock, getattr(dut, f"{prefix}_valid_i"), getattr(dut, f"{prefix}_ready_o"),
                   _handles(dut, prefix, fields, "_i"), name=kwargs.pop("name", prefix), **kwargs)

    # -- queue ----------------------------------------------------------------------
    def send(self, beat: Mapping[str, int]) -> None:
        """Queue one beat: field name -> value (unsigned, or signed within the width)."""
        missing = set(self.fields) - set(beat)
        if missing:
            raise ValueError(f"beat: fields {sorted(missing)} missing (stream {self.name})")
        self._queue.append(beat)
        self._idle_event.clear()

    def send_many(self, beats: Iterable[Mapping[str, int]]) -> None:
        """Queue several beats in order."""
        for b in beats:
            self.send(b)

    def reset_stats(self) -> None:
        """Forget the transfer count and the first / last transfer cycles."""
        self.count = 0
        self.first_cycle = self.last_cycle = None
        self.transfers.clear()

    @property
    def pending(self) -> int:
        """Beats queued or on offer, not yet transferred."""
        return len(self._queue) + (self._offered is not None)

    async def wait_idle(self) -> None:
        """Return once every queued beat has been transferred."""
        while self.pending:
            await self._idle_event.wait()

    def clear(self) -> None:
        """Drop every queued beat (the one on offer stays until stop())."""
        self._queue.clear()
        if self._offered is None:
            self._idle_event.set()

    # -- driving --------------------------------------------------------------------
    def _drive_fields(self, beat: Mapping[str, int] | None) -> None:
        for f, h in self.fields.items():
            w = self.widths[f]
            if beat is not None:
                h.value = int(beat[f]) & ((1 << w) - 1)
            elif self.idle == "random":
                h.value = self._rng.getrandbits(w)
            elif self.idle == "zero":
                h.value = 0

    def _on_stop(self) -> None:
        self._offered = None
        self.valid.value = 0
        if not self._queue:
            self._idle_event.set()

    async def _run(self) -> None:
        clk = self.clock.clk
        self.valid.value = 0
        self._valid_q = False
        self._drive_fields(None if self.idle != "hold" else {f: 0 for f in self.fields})
        while True:
            await RisingEdge(clk)
            if self._offered is not None:
                r = str(self.ready.value)
                if r not in ("0", "1"):
                    raise XZError(f"{self.name}: ready is {r!r} at cycle "
                                  f"{self.clock.cycle()} while valid is high")
                if r == "1":
                    cyc = self.clock.cycle()
                    beat = Beat(cyc, self._offered)
                    self._offered = None
                    self.count += 1
                    if self.first_cycle is None:
                        self.first_cycle = cyc
                    self.last_cycle = cyc
                    if self.keep_transfers:
                        self.transfers.append(beat)
                    if self.on_transfer is not None:
                        self.on_transfer(beat)
                    if not self._queue:
                        self._idle_event.set()
            if self._offered is None:
                if self._queue and not (self.stall_prob and self._rng.random() < self.stall_prob):
                    self._offered = self._queue.popleft()
                    self._drive_fields(self._offered)
                    self.valid.value = 1
                elif self._valid_q or self.idle == "random":
                    self.valid.value = 0
                    if self.idle != "hold":
                        self._drive_fields(None)
                self._valid_q = self._offered is not None


class StreamMonitor(_Task):
    """Watch a valid/ready stream without driving it; report every transferred beat.

    Args:
        clock: the stream's :class:`ClockReset`.
        valid, ready: handles of the stream's valid and ready.
        fields: field name -> handle.
        name: for messages.
        on_beat: called with each transferred :class:`Beat`.
        check_protocol: check the AXI-Stream source rules (valid / fields held while
            ``valid && !ready``) and that fields are 0/1 when valid.
    """

    def __init__(self, clock: ClockReset, valid: Any, ready: Any, fields: Mapping[str, Any],
                 *, name: str = "monitor", on_beat: Callable[[Beat], None] | None = None,
                 check_protocol: bool = True) -> None:
        super().__init__()
        self.clock = clock
        self.valid = valid
        self.ready = ready
        self.fields = dict(fields)
        self.name = name
        self.on_beat = on_beat
        self.check_protocol = check_protocol
        self.beats: collections.deque[Beat] = collections.deque()
        self.keep_beats = True
        self.count = 0
        self.first_cycle: int | None = None
        self.last_cycle: int | None = None
        self._held: dict[str, int] | None = None  # fields of a beat stalled at the last edge
        self._event = Event()

    def reset_stats(self) -> None:
        """Forget the beat count, the kept beats and the first / last beat cycles."""
        self.count = 0
        self.first_cycle = self.last_cycle = None
        self.beats.clear()

    def _on_stop(self) -> None:
        self._held = None

    def _sample(self, cyc: int) -> dict[str, int]:
        out = {}
        for f, h in self.fields.items():
            bits = str(h.value)
            if not is01(bits):
                raise XZError(f"{self.name}: field {f!r} is {bits!r} at cycle {cyc} "
                              "while valid is high")
            out[f] = int(bits, 2)
        return out

    def _ready_now(self) -> bool:
        r = str(self.ready.value)
        if r not in ("0", "1"):
            raise XZError(f"{self.name}: ready is {r!r} at cycle {self.clock.cycle()}")
        return r == "1"

    def _observe(self, ready: bool) -> None:
        """Process the values sampled at the edge just passed (ready as seen by the DUT)."""
        v = str(self.valid.value)
        cyc = self.clock.cycle()
        if v not in ("0", "1"):
            raise XZError(f"{self.name}: valid is {v!r} at cycle {cyc}")
        if v == "0":
            if self._held is not None and self.check_protocol:
                raise AssertionError(f"{self.name}: valid dropped at cycle {cyc} before the "
                                     f"stalled beat {self._held} was accepted (AXI-Stream rule)")
            return
        fields = self._sample(cyc)
        if self._held is not None and self.check_protocol and fields != self._held:
            changed = [f for f in fields if fields[f] != self._held[f]]
            raise AssertionError(f"{self.name}: field(s) {changed} changed at cycle {cyc} "
                                 "while the beat was stalled (valid && !ready; AXI-Stream rule)")
        if not ready:
            self._held = fields
            return
        self._held = None
        beat = Beat(cyc, fields)
        self.count += 1
        if self.first_cycle is None:
            self.first_cycle = cyc
        self.last_cycle = cyc
        if self.keep_beats:
            self.beats.append(beat)
        self._event.set()
        if self.on_beat is not None:
            self.on_beat(beat)

    async def wait_for(self, n: int) -> None:
        """Return once ``n`` beats in total have been observed."""
        while self.count < n:
            self._event.clear()
            await self._event.wait()

    async def _run(self) -> None:
        clk = self.clock.clk
        while True:
            await RisingEdge(clk)
            self._observe(self._ready_now())


class StreamSink(StreamMonitor):
    """Accept a DUT output stream, with random back-pressure, and check it.

    Each cycle ``ready`` is low with probability ``stall_prob``.  Checks, on every edge:
    valid is 0/1; while valid, every field is 0/1; a stalled beat keeps valid high and
    its fields unchanged until it transfers (AXI-Stream).

    Args:
        clock: the stream's :class:`ClockReset`.
        valid, ready: handles of the DUT's ``*_valid_o`` and ``*_ready_i``.
        fields: field name -> handle of the DUT's data outputs.
        stall_prob: probability that ready is low in a cycle, in [0, 1).
        rng: numpy Generator / int seed / random.Random for the stalls.
        name, on_beat, check_protocol: as for :class:`StreamMonitor`.
    """

    def __init__(self, clock: ClockReset, valid: Any, ready: Any, fields: Mapping[str, Any],
                 *, stall_prob: float = 0.0, rng: Any = None, name: str = "sink",
                 on_beat: Callable[[Beat], None] | None = None,
                 check_protocol: bool = True) -> None:
        super().__init__(clock, valid, ready, fields, name=name, on_beat=on_beat,
                         check_protocol=check_protocol)
        self.stall_prob = _check_prob("stall_prob", stall_prob)
        self._rng = _py_rng(rng)
        self._ready_q = False

    @classmethod
    def from_dut(cls, dut: Any, clock: ClockReset, prefix: str, fields: Sequence[str],
                 **kwargs: Any) -> "StreamSink":
        """Bind ``<prefix>_valid_o``, ``<prefix>_ready_i`` and ``<prefix>_<field>_o``."""
        return cls(clock, getattr(dut, f"{prefix}_valid_o"), getattr(dut, f"{prefix}_ready_i"),
                   _handles(dut, prefix, fields, "_o"), name=kwargs.pop("name", prefix), **kwargs)

    def _on_stop(self) -> None:
        super()._on_stop()
        self._ready_q = False
        self.ready.value = 0

    async def _run(self) -> None:
        clk = self.clock.clk
        self._ready_q = False
        self.ready.value = 0
        while True:
            await RisingEdge(clk)
            self._observe(self._ready_q)
            ready = not (self.stall_prob and self._rng.random() < self.stall_prob)
            if ready != self._ready_q:
                self.ready.value = int(ready)
                self._ready_q = ready
