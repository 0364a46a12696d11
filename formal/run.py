"""``make formal``: prove the valid/ready and control properties of the RTL.

Each target elaborates one RTL module with Yosys (``read_verilog -sv -formal`` with
``FORMAL`` defined, so the module's own ``ifdef FORMAL`` property block is compiled in,
and ``SYNTHESIS`` defined, so the simulation-only ``$error`` checks are left out), writes
SMT-LIB2 and runs ``yosys-smtbmc`` with z3: a bounded model check from reset (``bmc``,
every assertion at every step up to the depth) and, where the properties are inductive,
k-induction (``induction``: the assertions hold in *every* reachable state, whatever the
run length).  Hand-written driver because SymbiYosys is not packaged in Debian 12; it
does what ``sby`` does for these two modes.

The properties live in the RTL files (``ifdef FORMAL`` blocks) because Yosys 0.23 has no
hierarchical references: an invariant needs the registers it talks about.
``formal/stubs/`` holds formal-only stand-ins for pure datapath modules that the control
properties do not depend on (they would only slow the solver).

Usage: ``python -m formal.run [target ...] [--list]``; results go to
``sim/formal/<target>/`` (the SMT2 model and the solver logs), and a table is printed.
Exit status 1 if any proof fails, 2 for an unknown target.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RTL = Path(os.environ.get("QMAC_RTL_DIR") or REPO / "rtl")      # (make mutants: a mutated copy)
STUBS = REPO / "formal" / "stubs"
OUT = Path(os.environ.get("QMAC_SIM_DIR") or REPO / "sim") / "formal"


@dataclass(frozen=True)
class Target:
    """One proof: a module, its parameters, and the depths of the two checks.

    Attributes:
        name: target name (``make formal TARGETS=...``).
        top: the module proved.
        files: Verilog files (RTL and stubs).
        params: parameter overrides.
        defines: extra preprocessor macros (``QMAC_FORMAL_<X>_TOP`` turns a module's
            input promises into assumptions).
        bmc: bounded model check depth (steps from reset).
        induction: k of the k-induction, or 0 when only the bounded check is run.
        what: one line for the table and docs/verification.md.
        quick: part of ``make test`` (tests/test_rtl_formal.py); every target is part of
            ``make formal``.
    """

    name: str
    top: str
    files: tuple[Path, ...]
    params: dict[str, int] = field(default_factory=dict)
    defines: tuple[str, ...] = ()
    bmc: int = 20
    induction: int = 0
    what: str = ""
    quick: bool = False


def _fifo(depth: int) -> Target:
    return Target(f"fifo_d{depth}", "requant_out_fifo", (RTL / "requant_out_fifo.v",),
                  {"DEPTH": depth, "WIDTH": 4}, ("QMAC_FORMAL_FIFO_TOP",),
                  bmc=2 * depth + 6, induction=3, quick=depth <= 3,
                  what=f"requant_out_fifo DEPTH={depth}: occupancy/pointers in bounds, data "
                       "stable while stalled, no entry lost/duplicated/reordered")


_RQ_FILES = (RTL / "requant_pipeline.v", RTL / "requant_out_fifo.v",
             RTL / "requant_param_mem.v", STUBS / "requant_lane.v")
_RQ_PARAMS = {"LANES": 1, "CHANNELS": 2, "USER_W": 4}

_MAC_FILES = (*(RTL / f for f in ("mac_array.v", "mac_grid.v", "mac_skew.v")), STUBS / "mac_pe.v")
_MAC_WHAT = ("mac_array {r}x{c} (PE arithmetic stubbed): <= 2 tiles pending, one row presented at a time, the drain "
             "invariants, result row/last held unchanged while stalled, a last beat waits at "
             "most ROWS+COLS+2 cycles with a ready sink (no deadlock); bounded")

TARGETS: dict[str, Target] = {t.name: t for t in [
    Target("mac_array_1x1", "mac_array", _MAC_FILES, {"ROWS": 1, "COLS": 1},
           ("QMAC_FORMAL_MAC_TOP",), bmc=16, what=_MAC_WHAT.format(r=1, c=1)),
    Target("mac_array_2x2", "mac_array", _MAC_FILES, {"ROWS": 2, "COLS": 2},
           ("QMAC_FORMAL_MAC_TOP",), bmc=16, what=_MAC_WHAT.format(r=2, c=2)),
    _fifo(2), _fifo(3), _fifo(5),
    Target("requant_ctrl", "requant_pipeline", _RQ_FILES, _RQ_PARAMS,
           ("QMAC_FORMAL_REQUANT_TOP", "QMAC_FORMAL_FIFO_NO_DATA"), bmc=5, induction=4,
           quick=True,
           what="requant_pipeline: credit counter == beats in pipeline + FIFO, <= FIFO depth; "
                "FIFO never pushed when full; out_ready one cycle -> in_ready next cycle "
                "(no deadlock); a beat reaches stage 0 one cycle after acceptance; output valid held "
                "while stalled"),
]}


def _yosys_script(t: Target, smt2: Path) -> str:
    files = " ".join(str(f) for f in t.files)
    defines = " ".join(f"-D{d}" for d in ("FORMAL", "SYNTHESIS", *t.defines))
    chparam = (f"chparam {' '.join(f'-set {k} {v}' for k, v in t.params.items())} {t.top}; "
               if t.params else "")
    return (f"read_verilog -sv -formal {defines} {files}; {chparam}"
            f"prep -top {t.top}; flatten; memory_map; opt -fast; dffunmap; "
            f"write_smt2 -wires {smt2}")


def _smtbmc(smt2: Path, log: Path, depth: int, induction: bool) -> tuple[bool, str]:
    cmd = ["yosys-smtbmc", "-s", "z3", "--presat", "-t", str(depth)]
    if induction:
        cmd.insert(1, "-i")
    res = subprocess.run(cmd + [str(smt2)], capture_output=True, text=True)
    log.write_text(res.stdout + res.stderr)
    ok = res.returncode == 0 and "Status: PASSED" in res.stdout
    lines = res.stdout.splitlines()
    failed = ([ln for ln in lines if "Assert failed" in ln]
              or [ln for ln in lines if "failed" in ln.lower()])
    why = failed[0].split("  ", 2)[-1].strip() if failed else ""
    return ok, why.replace(str(REPO) + "/", "")


def prove(t: Target) -> list[tuple[str, int, bool, float, str]]:
    """Run the bounded check (and the induction) of ``t``; one row per check."""
    d = OUT / t.name
    d.mkdir(parents=True, exist_ok=True)
    smt2 = d / "model.smt2"
    y = subprocess.run(["yosys", "-q", "-l", str(d / "yosys.log"), "-p", _yosys_script(t, smt2)],
                       capture_output=True, text=True)
    if y.returncode != 0:
        return [("yosys", 0, False, 0.0, (y.stdout + y.stderr).strip().splitlines()[-1])]
    rows = []
    for mode, depth in (("bmc", t.bmc), ("induction", t.induction)):
        if not depth:
            continue
        t0 = time.monotonic()
        ok, why = _smtbmc(smt2, d / f"{mode}.log", depth, mode == "induction")
        rows.append((mode, depth, ok, time.monotonic() - t0, why))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m formal.run", description=__doc__.split("\n")[0])
    ap.add_argument("targets", nargs="*", help="targets to prove (default: all)")
    ap.add_argument("--list", action="store_true", help="list the targets and exit")
    args = ap.parse_args(argv)
    if args.list:
        for t in TARGETS.values():
            print(f"{t.name:16} {t.what}")
        return 0
    unknown = [n for n in args.targets if n not in TARGETS]
    if unknown:
        print(f"formal: unknown target {unknown[0]!r}; choose from {', '.join(TARGETS)}",
              file=sys.stderr)
        return 2
    chosen = [TARGETS[n] for n in args.targets] if args.targets else list(TARGETS.values())
    print(f"{'target':16} {'check':10} {'depth':>5} {'result':7} {'time':>7}")
    bad = 0
    t_all = time.monotonic()
    for t in chosen:
        for mode, depth, ok, secs, why in prove(t):
            bad += not ok
            print(f"{t.name:16} {mode:10} {depth:5} {'PASS' if ok else 'FAIL':7} {secs:6.1f}s"
                  + (f"  {why}" if why else ""), flush=True)
    print(f"formal: {'all proofs passed' if not bad else f'{bad} check(s) FAILED'} "
          f"({time.monotonic() - t_all:.1f} s; logs under {OUT}/)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
