"""In-order scoreboard: DUT output beats against golden-model (``pymodel``) results.

The test queues what it expects, one *item* at a time -- a 2-D integer array of
``[beats, lanes]`` (a result tile: one beat per row) with a label saying what it is
(``"layer 2 tile 5 (m0=8, n0=16)"``).  The output monitor hands every received beat to
:meth:`Scoreboard.compare`.  Comparison is exact (``==``, lane by lane).  The first
mismatch raises :class:`Mismatch` naming the item label (layer / tile), the row, the
column, the cycle, and both values (decimal and hex); it is also kept in
:attr:`Scoreboard.first_error` so the test's final :meth:`Scoreboard.check_done`
re-raises it even if the monitor task swallowed the exception.
"""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Mismatch", "Scoreboard"]


class Mismatch(AssertionError):
    """The DUT produced a value other than the golden model's (or a beat too many / few)."""


@dataclass
class _Item:
    expected: np.ndarray  # int64 [beats, lanes]
    label: str


def _hex(v: int, width: int) -> str:
    return f"0x{v & ((1 << width) - 1):0{(width + 3) // 4}x}"


class Scoreboard:
    """Ordered, exact comparison of output beats with expected arrays.

    Args:
        name: the checked stream, for messages (e.g. ``"res"``).
        width: bits per lane, for the hex rendering in messages.
        log: logger for the summary line (default: the ``cocotb`` logger).
    """

    def __init__(self, name: str = "scoreboard", *, width: int = 32,
                 log: logging.Logger | None = None) -> None:
        self.name = name
        self.width = width
        self.log = log or logging.getLogger("cocotb")
        self._items: collections.deque[_Item] = collections.deque()
        self._row = 0
        self.items_done = 0
        self.beats_done = 0
        self.first_error: Mismatch | None = None

    def expect(self, expected: Any, label: str) -> None:
        """Queue an expected item: ``[beats, lanes]`` integers (1-D = a single beat)."""
        arr = np.asarray(expected)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[0] == 0 or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"expected: need a non-empty integer array [beats, lanes]; "
                             f"got dtype {arr.dtype}, shape {arr.shape} ({label})")
        self._items.append(_Item(arr.astype(np.int64), label))

    @property
    def pending_beats(self) -> int:
        """Beats still expected."""
        return sum(it.expected.shape[0] for it in self._items) - self._row

    def clear(self) -> None:
        """Forget every pending expectation (after a reset that drops results)."""
        self._items.clear()
        self._row = 0

    def _fail(self, msg: str) -> None:
        err = Mismatch(f"{self.name}: {msg}")
        if self.first_error is None:
            self.first_error = err
        raise err

    def compare(self, actual: Any, *, cycle: int, last: bool | None = None) -> None:
        """Check one received beat against the next expected row.

        Args:
            actual: the beat's lanes, 1-D integers.
            cycle: the clock cycle the beat transferred in.
            last: the beat's end-of-item flag if the stream has one; it must be set on
                exactly the final row of each item.

        Raises:
            Mismatch: first differing lane, unexpected beat, wrong lane count or flag.
        """
        if self.first_error is not None:
            raise self.first_error
        if not self._items:
            self._fail(f"unexpected beat at cycle {cycle}: nothing more was expected; "
                       f"got {np.asarray(actual).tolist()}")
        item = self._items[0]
        row = self._row
        exp = item.expected[row]
        act = np.asarray(actual, dtype=np.int64)
        if act.shape != exp.shape:
            self._fail(f"{item.label}, row {row}, cycle {cycle}: beat has {act.shape} lanes, "
                       f"expected {exp.shape}")
        bad = np.flatnonzero(act != exp)
        if bad.size:
            col = int(bad[0])
            e, a = int(exp[col]), int(act[col])
            self._fail(
                f"MISMATCH in {item.label}, row {row}, column {col}, cycle {cycle}: "
                f"expected {e} ({_hex(e, self.width)}), got {a} ({_hex(a, self.width)}); "
                f"{bad.size} of {exp.size} lanes differ in this row.\n"
                f"  expected row: {exp.tolist()}\n  received row: {act.tolist()}")
        final = row == item.expected.shape[0] - 1
        if last is not None and bool(last) != final:
            self._fail(f"{item.label}, row {row}, cycle {cycle}: last flag is {int(bool(last))}, "
                       f"expected {int(final)} (the item has {item.expected.shape[0]} rows)")
        self.beats_done += 1
        if final:
            self._items.popleft()
            self._row = 0
            self.items_done += 1
        else:
            self._row += 1

    def check_done(self) -> None:
        """At the end of a test: no error so far and nothing left expected."""
        if self.first_error is not None:
            raise self.first_error
        if self._items:
            item = self._items[0]
            self._fail(f"{self.pending_beats} beat(s) never arrived; the first missing one is "
                       f"{item.label}, row {self._row}")
        self.log.info("[qmac] %s: %d items / %d beats matched the golden model exactly",
                      self.name, self.items_done, self.beats_done)
