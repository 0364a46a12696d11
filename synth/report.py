"""Print the cell-count table of ``scripts/synth.sh`` runs (Markdown, for docs/synthesis.md).

Usage: ``python synth/report.py DIR [DIR ...]`` with each DIR a ``sim/build/synth/<tag>/``
written by ``scripts/synth.sh`` (``top.txt``, ``params.txt``, ``mul_cells.il`` and the
``stat_<flow>.json`` files of Yosys' ``stat -json``; ``pnr.log`` when nextpnr ran).
"""

from __future__ import annotations

import collections
import json
import re
import sys
from pathlib import Path


def _stat(d: Path, flow: str) -> dict[str, int] | None:
    """Cell counts by type of one flow (None when the flow did not run)."""
    f = d / f"stat_{flow}.json"
    if not f.exists():
        return None
    return json.loads(f.read_text())["design"]["num_cells_by_type"]


def multipliers(d: Path) -> list[str]:
    """The $mul cells after wreduce, grouped by signedness and widths: '8 x s32*s32->64'."""
    groups: collections.Counter[str] = collections.Counter()
    cell: dict[str, str] | None = None
    for line in (d / "mul_cells.il").read_text().splitlines():
        words = line.split()
        if words[:2] == ["cell", "$mul"]:
            cell = {}
        elif cell is not None and words[:1] == ["parameter"]:
            cell[words[1].lstrip("\\")] = words[2]
        elif cell is not None and words[:1] == ["end"]:
            a = ("s" if cell["A_SIGNED"] == "1" else "u") + cell["A_WIDTH"]
            b = ("s" if cell["B_SIGNED"] == "1" else "u") + cell["B_WIDTH"]
            groups[f"{a}*{b}->{cell['Y_WIDTH']}"] += 1
            cell = None
    return [f"{n} x {k}" for k, n in sorted(groups.items())] or ["none"]


def fmax(d: Path) -> str:
    """nextpnr's Fmax estimate (MHz) of the clock, or '-' when it did not run."""
    log = d / "pnr.log"
    if (d / "pnr.skipped").exists():
        return "too big"
    if not log.exists():
        return "-"
    found = re.findall(r"Max frequency for clock .*?: ([0-9.]+) MHz", log.read_text())
    return f"{float(found[-1]):.1f}" if found else "no fit"


def main(argv: list[str]) -> int:
    rows = []
    for name in argv:
        d = Path(name)
        top = (d / "top.txt").read_text().strip()
        params = (d / "params.txt").read_text().strip() or "defaults"
        gen, ice = _stat(d, "generic"), _stat(d, "ice40")
        row = [top, params, "; ".join(multipliers(d))]
        if gen is not None:
            ffs = sum(n for t, n in gen.items() if "DFF" in t)
            row += [str(sum(gen.values())), str(ffs)]
        else:
            row += ["-", "-"]
        if ice is not None:
            ffs = sum(n for t, n in ice.items() if t.startswith("SB_DFF"))
            row += [str(ice.get("SB_LUT4", 0)), str(ice.get("SB_CARRY", 0)), str(ffs),
                    str(ice.get("SB_MAC16", 0)), str(ice.get("SB_RAM40_4K", 0))]
        else:
            row += ["-"] * 5
        row.append(fmax(d))
        rows.append(row)
    head = ["block", "parameters", "multipliers after wreduce", "generic cells",
            "generic FFs", "iCE40 LUT4", "SB_CARRY", "iCE40 FFs", "SB_MAC16",
            "SB_RAM40_4K", "UP5K Fmax MHz"]
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    fmt = "| " + " | ".join(f"{{:{w}}}" for w in widths) + " |"
    print(fmt.format(*head))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(fmt.format(*r))
    # Per-type breakdown, for the record.
    for name in argv:
        d = Path(name)
        for flow in ("generic", "ice40"):
            s = _stat(d, flow)
            if s:
                cells = ", ".join(f"{t.lstrip('$')} {n}" for t, n in sorted(s.items()))
                print(f"\n{d.name} [{flow}]: {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
