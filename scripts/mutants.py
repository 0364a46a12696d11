"""``make mutants``: mutation testing of the RTL -- does the regression catch real bugs?

For every RTL file a documented set of realistic mutations is generated (see
:data:`OPERATORS`), one small edit each: an operator swapped, a constant changed by one,
a condition negated or a term dropped, signedness lost, an arithmetic shift made
logical.  Each mutant is written into a temporary copy of ``rtl/`` (the tracked files are
never touched), compiled with Icarus (a mutant that does not compile is *stillborn* and
not counted), and the tests of its block (:data:`TESTS`) are run against it with
``QMAC_RTL_DIR`` / ``QMAC_SIM_DIR`` pointing at the copy and a private build area.  A
mutant is *killed* when a test fails (or the run exceeds :data:`TIMEOUT_S`: a hang), and
*survives* otherwise.  Survivors that are provably equivalent to the original are listed
with their reason in ``scripts/mutants_equivalent.txt`` and left out of the score.

The mutant set is deterministic: all candidates of a file are enumerated in source order
and, where a file has more than ``--per-file`` of them, an evenly spread subset of that
many is kept (the same one every run).  Hand-written rather than a generic mutation tool
because none handles Verilog with these operators (the generic ones mutate Python/C).

Usage::

    python scripts/mutants.py [--jobs 2] [--per-file N] [--files mac_pe.v ...] [--list]

Prints one line per mutant and, per file, the score
``killed / (generated - stillborn - equivalent)``; exit status 1 if any file scores
below ``--threshold`` (default 95 %).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RTL = REPO / "rtl"
EQUIVALENT_FILE = REPO / "scripts" / "mutants_equivalent.txt"
TIMEOUT_S = 900

# Tests run against a mutant of each file (pytest node ids / -k expressions), the
# fastest first; pytest stops at the first failure (-x).
_MAC = ["tests/test_rtl_param_checks.py -k mac_", "tests/test_rtl_runtime_checks.py -k mac_array",
        "tests/test_rtl_mac_array.py -k '1x1 or 2x3 or 3x1'", "tests/test_rtl_corners.py -k mac"]
_RQ = ["tests/test_rtl_runtime_checks.py -k requant", "tests/test_rtl_requant.py",
       "tests/test_rtl_corners.py -k requant"]
TESTS: dict[str, list[str]] = {
    "mac_pe.v": ["tests/test_rtl_pe_exhaustive.py", *_MAC],
    "mac_skew.v": _MAC,
    "mac_grid.v": _MAC,
    "mac_array.v": _MAC,
    "requant_lane.v": ["tests/test_rtl_requant.py"],
    "requant_out_fifo.v": ["tests/test_rtl_formal.py", "tests/test_rtl_param_checks.py -k fifo",
                           *_RQ],
    "requant_param_mem.v": ["tests/test_rtl_param_checks.py -k param_mem", *_RQ],
    "requant_pipeline.v": ["tests/test_rtl_param_checks.py -k requant_pipeline",
                           "tests/test_rtl_formal.py", *_RQ],
    "qlayer_engine.v": ["tests/test_rtl_param_checks.py -k qlayer",
                        "tests/test_rtl_runtime_checks.py -k qlayer",
                        "tests/test_rtl_qlayer_engine.py -k '2x3 or 1x1'",
                        "tests/test_rtl_corners.py -k engine"],
}


@dataclass(frozen=True)
class Operator:
    """One mutation operator: a regex over a code line and its replacement.

    Attributes:
        name: short name (``rel``, ``arith``, ...), part of the mutant id.
        pattern: regex matched against the code part of a line (comments removed).
        repl: replacement text (``\\g<...>`` groups allowed) or a function of the match.
        what: what kind of bug it models.
    """

    name: str
    pattern: str
    repl: object
    what: str


def _inc(m: re.Match[str]) -> str:
    return f"{m['w']}'{m['b']}{int(m['v']) + 1}"


def _dec(m: re.Match[str]) -> str:
    return f"{m['w']}'{m['b']}{int(m['v']) - 1}"


# The documented mutant set.  Each regex is applied at every match position of every
# code line; each application is one mutant.
OPERATORS: list[Operator] = [
    Operator("arith+-", r"(?<=[\w\)\]] )\+(?= )", "-", "adder becomes subtractor"),
    Operator("arith-+", r"(?<=[\w\)\]] )-(?= [\w\(\{'$])", "+", "subtractor becomes adder"),
    Operator("eq", r"==", "!=", "equality negated"),
    Operator("ne", r"!=", "==", "inequality negated"),
    Operator("lt", r"(?<=[\w\)\]] )<(?= )", "<=", "off by one in a comparison"),
    Operator("gt", r"(?<=[\w\)\]] )>(?= )", ">=", "off by one in a comparison"),
    Operator("ge", r"(?<=[\w\)\]] )>=(?= )", ">", "off by one in a comparison"),
    Operator("and-or", r"&&", "||", "wrong logical connective"),
    Operator("or-and", r"\|\|", "&&", "wrong logical connective"),
    Operator("not-drop", r"!(?=[\w\(])", "", "condition polarity lost"),
    Operator("bit0-1", r"1'b0", "1'b1", "constant bit flipped"),
    Operator("bit1-0", r"1'b1", "1'b0", "constant bit flipped"),
    Operator("const+1", r"(?P<w>\d+)'(?P<b>s?d)(?P<v>\d+)\b", _inc, "constant off by one (+1)"),
    Operator("const-1", r"(?P<w>\d+)'(?P<b>s?d)(?P<v>[1-9]\d*)\b", _dec, "constant off by one (-1)"),
    Operator("signed", r"\$signed\(", "$unsigned(", "signedness lost"),
    Operator("signed-decl", r"\b(wire|reg) signed\b", r"\1", "signed declaration lost"),
    Operator("ashr", r">>>", ">>", "arithmetic shift made logical"),
    Operator("idx-1", r"\[(?P<e>[A-Z_]+)-1\]", r"[\g<e>-2]", "off by one in an index"),
    Operator("ternary", r"\? *(?P<a>[\w'\[\]\.]+) *: *(?P<b>[\w'\[\]\.]+)(?=[;\)])",
             r"? \g<b> : \g<a>", "ternary arms swapped"),
]


@dataclass
class Mutant:
    """One mutation of one file."""

    file: str
    line: int          # 1-based
    col: int           # 0-based, in the line
    op: str
    original: str      # the line before
    mutated: str       # the line after
    status: str = ""   # killed / survived / stillborn / equivalent
    by: str = ""       # the test that killed it, or the equivalence reason
    secs: float = 0.0

    @property
    def ident(self) -> str:
        return f"{self.file}:{self.line}:{self.col}:{self.op}"


def _code_lines(text: str) -> list[tuple[int, str, bool]]:
    """``(line number, line, mutable)``: comments, `ifdef FORMAL regions, parameter-check
    ``generate if`` blocks' message lines, declarations of ports/parameters and loop
    headers (bounds of generate / unrolled loops) are not mutated: their mutants are not
    bugs of the logic, or do not elaborate."""
    out = []
    skip_depth = 0
    in_block_comment = False
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        mutable = True
        if in_block_comment:
            mutable = False
            if "*/" in line:
                in_block_comment = False
        if stripped.startswith("/*") and "*/" not in stripped:
            in_block_comment = True
            mutable = False
        if stripped.startswith("`ifdef FORMAL") or stripped.startswith("`ifdef QMAC_FORMAL"):
            skip_depth += 1
        elif skip_depth and stripped.startswith(("`ifdef", "`ifndef")):
            skip_depth += 1
        if skip_depth:
            mutable = False
            if stripped.startswith("`endif"):
                skip_depth -= 1
        if (stripped.startswith("//") or stripped.startswith("`") or "$fatal" in line
                or "$error" in line or stripped.startswith("parameter")
                or stripped.startswith("localparam") or stripped.startswith("input")
                or stripped.startswith("output") or stripped.startswith("for (")
                or not stripped):
            mutable = False
        out.append((n, line, mutable))
    return out


def generate(file: Path) -> list[Mutant]:
    """Every candidate mutant of ``file``, in source order."""
    mutants = []
    for n, line, mutable in _code_lines(file.read_text()):
        if not mutable:
            continue
        code, sep, comment = line.partition("//")
        for op in OPERATORS:
            for m in re.finditer(op.pattern, code):
                new_code = code[:m.start()] + m.expand(op.repl) if isinstance(op.repl, str) \
                    else code[:m.start()] + op.repl(m)
                new_code += code[m.end():]
                if new_code != code:
                    mutants.append(Mutant(file.name, n, m.start(), op.name, line,
                                          new_code + sep + comment))
    return mutants


def select(mutants: list[Mutant], per_file: int) -> list[Mutant]:
    """At most ``per_file`` mutants, evenly spread over the candidates (deterministic)."""
    if len(mutants) <= per_file:
        return mutants
    step = len(mutants) / per_file
    return [mutants[int(i * step)] for i in range(per_file)]


def _equivalents() -> dict[str, str]:
    if not EQUIVALENT_FILE.is_file():
        return {}
    out = {}
    for line in EQUIVALENT_FILE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            ident, _, why = line.partition(" ")
            out[ident] = why.strip()
    return out


def _compiles(rtl: Path, file: str) -> bool:
    srcs = sorted(str(p) for p in rtl.glob("*.v"))
    top = {"mac_pe.v": "mac_array", "mac_skew.v": "mac_array", "mac_grid.v": "mac_array",
           "mac_array.v": "mac_array", "requant_lane.v": "requant_pipeline",
           "requant_out_fifo.v": "requant_pipeline", "requant_param_mem.v": "requant_pipeline",
           "requant_pipeline.v": "requant_pipeline"}.get(file, "qlayer_engine")
    try:
        res = subprocess.run(["iverilog", "-g2012", "-o", os.devnull, "-s", top, *srcs],
                             capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return False
    return res.returncode == 0


def run_mutant(m: Mutant, workdir: Path, python: str, source: Path) -> Mutant:
    """Apply ``m`` in a private copy of ``source`` (the snapshot of rtl/ taken at the
    start of the run) and run its block's tests."""
    t0 = time.monotonic()
    d = Path(tempfile.mkdtemp(prefix="mutant-", dir=workdir))
    try:
        rtl = d / "rtl"
        shutil.copytree(source, rtl)
        lines = (source / m.file).read_text().splitlines(keepends=True)
        nl = "\n" if lines[m.line - 1].endswith("\n") else ""
        lines[m.line - 1] = m.mutated + nl
        (rtl / m.file).write_text("".join(lines))
        if not _compiles(rtl, m.file):
            m.status, m.by = "stillborn", "does not compile"
            return m
        env = dict(os.environ, QMAC_RTL_DIR=str(rtl), QMAC_SIM_DIR=str(d / "sim"),
                   OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
        m.status = "survived"
        deadline = t0 + TIMEOUT_S
        for spec in TESTS[m.file]:
            path, _, k = spec.partition(" -k ")
            cmd = [python, "-m", "pytest", "-x", "-q", "-n", "0", "-p", "no:cacheprovider",
                   path] + (["-k", k.strip("'")] if k else [])
            try:
                res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                                     timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                m.status, m.by = "killed", f"timeout ({TIMEOUT_S} s) in {spec}"
                break
            if res.returncode == 1:          # pytest: tests failed
                failed = re.findall(r"^FAILED (\S+)", res.stdout, re.M)
                m.status, m.by = "killed", failed[0] if failed else spec
                break
            if res.returncode != 0:          # usage error, nothing collected, crash
                m.status, m.by = "error", f"pytest exit {res.returncode} in {spec}"
                break
        return m
    finally:
        m.secs = time.monotonic() - t0
        shutil.rmtree(d, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="scripts/mutants.py", description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=2, help="mutants run in parallel (default 2)")
    ap.add_argument("--per-file", type=int, default=10,
                    help="at most this many mutants per RTL file (default 10)")
    ap.add_argument("--files", nargs="*", default=None, help="only these RTL files")
    ap.add_argument("--threshold", type=float, default=95.0, help="minimum score per file, %%")
    ap.add_argument("--only", nargs="*", default=None, metavar="ID",
                    help="run only these mutants (ids as printed: file:line:col:operator), "
                         "e.g. to check that new tests kill former survivors")
    ap.add_argument("--list", action="store_true", help="list the selected mutants and exit")
    args = ap.parse_args(argv)
    if args.jobs < 1 or args.per_file < 1:
        print("mutants: --jobs and --per-file must be >= 1", file=sys.stderr)
        return 2
    files = args.files or sorted(TESTS)
    unknown = [f for f in files if f not in TESTS]
    if unknown:
        print(f"mutants: --files: {unknown[0]!r} is not an RTL file; choose from "
              f"{', '.join(sorted(TESTS))}", file=sys.stderr)
        return 2
    equivalent = _equivalents()
    chosen: list[Mutant] = []
    for f in files:
        cands = generate(RTL / f)
        sel = (select(cands, args.per_file) if args.only is None
               else [m for m in cands if m.ident in args.only])
        print(f"mutants: {f}: {len(cands)} candidates, {len(sel)} selected")
        chosen += sel
    if args.list:
        for m in chosen:
            print(f"{m.ident:40} {m.original.strip()}  ->  {m.mutated.strip()}")
        return 0
    python = sys.executable
    workdir = Path(tempfile.mkdtemp(prefix="qmac-mutants-"))
    source = workdir / "rtl-snapshot"       # rtl/ as it was when the mutants were made
    shutil.copytree(RTL, source)
    t_all = time.monotonic()
    done: list[Mutant] = []
    try:
        with ThreadPoolExecutor(args.jobs) as pool:
            for m in pool.map(lambda x: run_mutant(x, workdir, python, source), chosen):
                if m.status == "survived" and m.ident in equivalent:
                    m.status, m.by = "equivalent", equivalent[m.ident]
                done.append(m)
                print(f"{m.status:10} {m.ident:40} {m.secs:6.1f}s  {m.original.strip()}  ->  "
                      f"{m.mutated.strip()}" + (f"   [{m.by}]" if m.by else ""), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n{'file':22} {'mutants':>7} {'stillborn':>9} {'equiv':>5} {'killed':>6} "
          f"{'survived':>8} {'score':>7}")
    low = 0
    for f in files:
        ms = [m for m in done if m.file == f]
        cnt = {s: sum(m.status == s for m in ms) for s in ("stillborn", "equivalent", "killed",
                                                             "survived", "error")}
        live = cnt["killed"] + cnt["survived"]
        score = 100.0 * cnt["killed"] / live if live else 100.0
        low += score < args.threshold or cnt["error"] > 0
        print(f"{f:22} {len(ms):7} {cnt['stillborn']:9} {cnt['equivalent']:5} {cnt['killed']:6} "
              f"{cnt['survived']:8} {score:6.1f}%")
    surv = [m for m in done if m.status == "survived"]
    if surv:
        print("\nsurvivors (kill them with a test, or justify them in "
              "scripts/mutants_equivalent.txt):")
        for m in surv:
            print(f"  {m.ident}  {m.original.strip()}  ->  {m.mutated.strip()}")
    print(f"\nmutants: {len(done)} run in {time.monotonic() - t_all:.0f} s with {args.jobs} jobs")
    return 1 if low else 0


if __name__ == "__main__":
    sys.exit(main())
