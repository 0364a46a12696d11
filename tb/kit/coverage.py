"""Functional coverage with bulk sampling (a small stand-in for cocotb-coverage).

cocotb-coverage samples one value per Python call and rescans every bin of a cross on
each call (tens of microseconds), which is too slow for 100,000+ vectors per run.  This
module keeps the same ideas -- named cover points with explicit bins, crosses of cover
points with ignored (impossible) combinations, "covered" = hit at least ``at_least``
times -- with O(1) sampling and a bulk :meth:`Coverage.hit` that adds ``count`` hits at
once (feed it ``numpy.unique(..., return_counts=True)`` of vectorized features).

Example::

    cov = Coverage("requant")
    cov.point("shift", range(-31, 31))
    cov.point("round", ["tie +", "tie -", "no tie +", "no tie -"])
    cov.cross("shift_x_round", ["shift", "round"], ignore=lambda s, r: False)
    cov.sample(shift=-3, round="tie -")          # one hit in shift, round and the cross
    cov.hit("shift", 5, count=1000)              # bulk
    print(cov.report()); assert cov.complete, cov.missing()
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

__all__ = ["Coverage", "CoverPoint", "CoverCross"]


@dataclass
class CoverPoint:
    """A named set of bins; a sampled value outside the bins is not counted."""

    name: str
    bins: list[Any]
    at_least: int = 1
    hits: dict[Any, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.bins:
            raise ValueError(f"bins: cover point {self.name!r} needs at least one bin")
        if len(set(self.bins)) != len(self.bins):
            raise ValueError(f"bins: cover point {self.name!r} has duplicate bins")
        self.hits = dict.fromkeys(self.bins, 0)


@dataclass
class CoverCross:
    """The Cartesian product of cover points' bins, minus the ignored combinations."""

    name: str
    items: list[str]
    bins: list[tuple]
    at_least: int = 1
    hits: dict[tuple, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.hits = dict.fromkeys(self.bins, 0)


class Coverage:
    """A coverage model: cover points and crosses under one name.

    Args:
        name: model name, the prefix of every item in the report.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.points: dict[str, CoverPoint] = {}
        self.crosses: dict[str, CoverCross] = {}

    # -- definition ------------------------------------------------------------------
    def point(self, name: str, bins: Iterable[Any], *, at_least: int = 1) -> CoverPoint:
        """Define a cover point with explicit, hashable bins."""
        if name in self.points or name in self.crosses:
            raise ValueError(f"name: {name!r} is already defined in {self.name}")
        if at_least < 1:
            raise ValueError(f"at_least: {at_least} must be >= 1")
        p = CoverPoint(name, list(bins), at_least)
        self.points[name] = p
        return p

    def cross(self, name: str, items: Sequence[str], *,
              ignore: Callable[..., bool] | None = None, at_least: int = 1) -> CoverCross:
        """Define a cross of cover points; ``ignore(*combo)`` True drops a combination
        (an impossible one -- say why in a comment where it is defined)."""
        if name in self.points or name in self.crosses:
            raise ValueError(f"name: {name!r} is already defined in {self.name}")
        missing = [i for i in items if i not in self.points]
        if missing or len(items) < 2:
            raise ValueError(f"items: {list(items)} must name >= 2 defined cover points "
                             f"(unknown: {missing})")
        combos = [c for c in itertools.product(*(self.points[i].bins for i in items))
                  if ignore is None or not ignore(*c)]
        c = CoverCross(name, list(items), combos, at_least)
        self.crosses[name] = c
        return c

    # -- sampling --------------------------------------------------------------------
    def hit(self, name: str, value: Any, count: int = 1) -> bool:
        """Add ``count`` hits to the bin ``value`` of a point or cross (a tuple for a
        cross); returns whether the value is a bin."""
        item = self.points.get(name) or self.crosses.get(name)
        if item is None:
            raise KeyError(f"name: {name!r} is not defined in {self.name}")
        if value in item.hits:
            item.hits[value] += count
            return True
        return False

    def sample(self, count: int = 1, **values: Any) -> None:
        """Sample points by name (``count`` times); every cross whose points were all
        given gets the combination.  A value of None means "not sampled"."""
        for name, v in values.items():
            if v is not None:
                self.hit(name, v, count)
        for c in self.crosses.values():
            if all(values.get(i) is not None for i in c.items):
                combo = tuple(values[i] for i in c.items)
                if combo in c.hits:
                    c.hits[combo] += count

    # -- results ---------------------------------------------------------------------
    def _items(self) -> list[CoverPoint | CoverCross]:
        return [*self.points.values(), *self.crosses.values()]

    @property
    def size(self) -> int:
        """Number of defined bins (points and crosses)."""
        return sum(len(i.hits) for i in self._items())

    @property
    def covered(self) -> int:
        """Number of bins hit at least ``at_least`` times."""
        return sum(sum(1 for v in i.hits.values() if v >= i.at_least) for i in self._items())

    @property
    def percent(self) -> float:
        return 100.0 * self.covered / self.size if self.size else 100.0

    @property
    def complete(self) -> bool:
        return self.covered == self.size

    def missing(self) -> list[str]:
        """``"<item>: <bin>"`` for every bin below ``at_least``."""
        return [f"{i.name}: {b}" for i in self._items() for b, v in i.hits.items()
                if v < i.at_least]

    def report(self, *, bins: bool = True, cross_bins: bool = False) -> str:
        """Multi-line report: per item covered / defined bins, and (optionally) every
        bin with its hit count; crosses list their uncovered bins."""
        lines = [f"functional coverage {self.name}: {self.covered} / {self.size} bins "
                 f"= {self.percent:.2f} %"]
        for i in self._items():
            cov = sum(1 for v in i.hits.values() if v >= i.at_least)
            kind = "cross" if isinstance(i, CoverCross) else "point"
            lines.append(f"  {kind} {i.name:36s} {cov:5d} / {len(i.hits):5d} "
                         f"({100.0 * cov / len(i.hits):6.2f} %)")
            if (bins and isinstance(i, CoverPoint)) or (cross_bins and isinstance(i, CoverCross)):
                for b, v in i.hits.items():
                    mark = "" if v >= i.at_least else "   <-- not covered"
                    lines.append(f"      {str(b):48s} {v:10d}{mark}")
            elif isinstance(i, CoverCross):
                miss = [b for b, v in i.hits.items() if v < i.at_least]
                if miss:
                    lines.append(f"      not covered: {', '.join(map(str, miss[:40]))}"
                                 + (" ..." if len(miss) > 40 else ""))
        return "\n".join(lines)
