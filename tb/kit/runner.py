"""Build and run one cocotb testbench on Icarus Verilog or Verilator (``cocotb_tools.runner``).

:func:`run_testbench` is what every ``tb/test_<dut>.py::run()`` calls:

* build directory ``sim/build/<dut>-<parameter tag>/`` -- one per parameter set, so
  pytest-xdist workers never share one;
* Icarus with ``-g2012``, ``timescale 1ns/1ps``, always rebuilt (cheap, and a build
  without waves is never reused for a run with waves);
* ``waves=True`` reaches both ``build()`` and ``test()``: an FST file
  ``<build dir>/<toplevel>.fst``;
* the simulation seed (``COCOTB_RANDOM_SEED``) is ``seed`` if given, else derived from
  the session seed ``QMAC_SEED`` and the build tag; it is printed with the command that
  reproduces the run;
* a failing cocotb test raises :class:`TestbenchFailed` (also outside pytest), and so
  does any error the simulator itself reports -- ``$error``, ``$fatal``, a failed
  assertion (:func:`simulator_errors` scans the simulator's log ``<build dir>/sim.log``),
  even when every cocotb test passed;
* ``simulator="verilator"`` (or ``$QMAC_SIM``): the ``.venv`` Verilator, builds in
  ``<build dir>-verilator`` reused while the sources are unchanged (:mod:`.verilator`).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Mapping, Sequence

from .interrupt import isolate
from .seed import derive_seed, session_seed
from .verilator import cocotb_options, simulator as simulator_name

REPO_ROOT = Path(__file__).resolve().parents[2]
# QMAC_RTL_DIR / QMAC_SIM_DIR: another RTL tree / build area (make mutants runs the
# regression against mutated copies of rtl/, each in its own build area).
RTL_DIR = Path(os.environ.get("QMAC_RTL_DIR") or REPO_ROOT / "rtl")
SIM_DIR = Path(os.environ.get("QMAC_SIM_DIR") or REPO_ROOT / "sim")

__all__ = ["REPO_ROOT", "RTL_DIR", "SIM_DIR", "TestbenchFailed", "param_tag",
           "default_build_dir", "rtl_sources", "run_testbench", "simulator_errors"]


class TestbenchFailed(AssertionError):
    """One or more cocotb tests failed (or the simulator did)."""

    __test__ = False  # not a pytest test class


# A simulator error line: Icarus ("ERROR: f.v:12: msg", "FATAL: ...", a bare failed
# "assert" prints "ERROR: f.v:12: "), Verilator ("%Error: f.v:12: Assertion failed in
# TOP.x: msg", "%Fatal: ...").
_SIM_ERROR_RE = re.compile(r"^\s*(?:ERROR|FATAL|%Error|%Fatal)\b.*$|^.*\bAssertion failed\b.*$")
# cocotb's own log lines ("   0.00ns ERROR    cocotb ...") are not simulator errors: a
# failing cocotb test is already reported through results.xml.
_COCOTB_LOG_RE = re.compile(r"^\s*[\d.]+\s*[a-z]*s\s+(?:ERROR|CRITICAL|WARNING|INFO)\s")


def simulator_errors(log: str | Path, limit: int = 8) -> tuple[int, list[str]]:
    """The error messages a simulator printed into its log.

    Every line starting with ``ERROR`` / ``FATAL`` (Icarus ``$error`` / ``$fatal`` /
    failed ``assert``) or ``%Error`` / ``%Fatal`` (Verilator), or containing
    ``Assertion failed``, counts; the time/scope line Icarus prints under an error is
    joined to it.  Hand-written because cocotb's runner only checks the exit status.

    Args:
        log: the log file (a missing file has no errors) or its text.
        limit: at most this many messages are returned (all are counted).

    Returns:
        ``(count, first messages)`` -- the number of error lines and up to ``limit`` of
        them, each stripped, with its ``Time: ... Scope: ...`` line appended.
    """
    if isinstance(log, Path):
        if not log.is_file():
            return 0, []
        text = log.read_text(errors="replace")
    else:
        text = log
    lines = text.splitlines()
    count, found = 0, []
    last = (-10, "")
    for i, line in enumerate(lines):
        if _COCOTB_LOG_RE.match(line) or not _SIM_ERROR_RE.match(line):
            continue
        # Icarus prints a $fatal message twice, a few lines apart (before and after
        # cocotb's note that the simulation ended): count it once.  (Only FATAL: a
        # repeated $error is a real second error.)
        if line.lstrip().startswith("FATAL") and line == last[1] and i - last[0] <= 3:
            continue
        last = (i, line)
        count += 1
        if len(found) < limit:
            msg = line.strip()
            nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
            if nxt.startswith("Time:"):
                msg += f" ({nxt})"
            found.append(msg)
    return count, found


def _raise_on_simulator_errors(log: Path, what: str, seed: int) -> None:
    """Raise :class:`TestbenchFailed` naming the simulator errors in ``log``, if any."""
    count, msgs = simulator_errors(log)
    if count:
        more = f"\n  ... and {count - len(msgs)} more" if count > len(msgs) else ""
        raise TestbenchFailed(f"{what}: the simulator reported {count} error(s); seed {seed}; "
                              f"log {log}:\n  " + "\n  ".join(msgs) + more)


def param_tag(parameters: Mapping[str, object] | None) -> str:
    """``ROWS4_COLS4`` for ``{"ROWS": 4, "COLS": 4}`` (insertion order); ``default`` if none."""
    if not parameters:
        return "default"
    return "_".join(f"{k}{v}" for k, v in parameters.items())


def default_build_dir(dut: str, parameters: Mapping[str, object] | None) -> Path:
    """``sim/build/<dut>-<parameter tag>``."""
    return SIM_DIR / "build" / f"{dut}-{param_tag(parameters)}"


def rtl_sources(*patterns: str) -> list[Path]:
    """Sorted ``rtl/`` files matching the glob patterns (e.g. ``"mac_*.v"``)."""
    files = sorted({p for pat in patterns for p in RTL_DIR.glob(pat)})
    if not files:
        raise FileNotFoundError(f"rtl_sources: nothing in {RTL_DIR} matches {patterns}")
    return files


def run_testbench(*, toplevel: str, sources: Sequence[Path], test_module: str,
                  parameters: Mapping[str, object] | None = None, waves: bool = False,
                  seed: int | None = None, build_dir: Path | str | None = None,
                  testcase: str | Sequence[str] | None = None,
                  extra_env: Mapping[str, str] | None = None,
                  dut_name: str | None = None, simulator: str | None = None,
                  reproduce: str | None = None) -> Path:
    """Build ``toplevel`` from ``sources`` and run the cocotb tests of ``test_module``.

    Args:
        toplevel: HDL top module.
        sources: Verilog files.
        test_module: dotted module with the ``@cocotb.test`` coroutines
            (e.g. ``"tb.test_mac_array"``).
        parameters: top-level parameter overrides, e.g. ``{"ROWS": 4, "COLS": 4}``.
        waves: dump an FST (``<build dir>/<toplevel>.fst``).
        seed: simulation seed; default derived from ``QMAC_SEED``, ``dut_name`` and
            the parameter tag.
        build_dir: default ``sim/build/<dut_name>-<parameter tag>``.
        testcase: run only these test(s) of ``test_module``.
        extra_env: extra environment for the simulator (names not already set).
        dut_name: name used for the build directory and seed (default ``toplevel``).
        simulator: ``"icarus"`` or ``"verilator"`` (default ``$QMAC_SIM``, else icarus).
        reproduce: the command that reproduces this run, printed with the seed
            (default: ``make test SEED=n`` under pytest, else the ``run()`` call).

    Returns:
        The results XML file.

    Raises:
        TestbenchFailed: a cocotb test failed or the simulator exited with an error.
    """
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    dut = dut_name or toplevel
    params = dict(parameters or {})
    tag = param_tag(params)
    bdir = Path(build_dir) if build_dir is not None else default_build_dir(dut, params)
    sim = simulator_name(simulator)
    sim_opts = cocotb_options(sim, bdir, toplevel, waves)   # icarus: {} and bdir unchanged
    bdir = sim_opts.pop("build_dir")
    if seed is None:
        seed = derive_seed(dut, tag)
    # The simulator's Python gets the host's sys.path; make sure the repo root (home of
    # the tb package) is on it whatever the current directory is.
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    how = reproduce or (f"make test SEED={session_seed()}" if "PYTEST_CURRENT_TEST" in os.environ
                        else os.environ.get("QMAC_REPRODUCE")       # set by python -m tb.run
                        or f"{test_module}.run(parameters={params or None}, seed={seed})")
    print(f"[qmac] {dut} {tag}: seed {seed} (QMAC_SEED={session_seed()}; reproduce: {how}); "
          f"build {bdir.relative_to(REPO_ROOT) if bdir.is_relative_to(REPO_ROOT) else bdir}",
          flush=True)

    runner = isolate(get_runner(sim))            # Ctrl-C: one line, not the simulator's
    runner.build(sources=[str(s) for s in sources], hdl_toplevel=toplevel, parameters=params,
                 includes=[str(RTL_DIR)],   # `include "qmac_regs.vh" (generated register map)
                 build_dir=bdir, always=True, waves=waves, timescale=("1ns", "1ps"),
                 **sim_opts.pop("build", {}))
    env = {"QMAC_TB_PARAMS": ",".join(f"{k}={v}" for k, v in params.items())}
    env.update(extra_env or {})
    # vvp -l: a copy of everything the simulator prints (the console output stays live),
    # scanned for $error / $fatal / assertion messages after the run.
    sim_log = bdir / "sim.log"
    sim_log.unlink(missing_ok=True)
    test_opts = sim_opts.pop("test", {})
    if sim == "icarus":
        test_opts["test_args"] = [*test_opts.get("test_args", []), "-l", str(sim_log)]
    else:                        # Verilator: the run's output goes to the log, then scanned
        test_opts["log_file"] = sim_log
    try:
        results = runner.test(test_module=test_module, hdl_toplevel=toplevel, build_dir=bdir,
                              test_dir=bdir, seed=seed, waves=waves, testcase=testcase,
                              parameters=params, extra_env=env, timescale=("1ns", "1ps"),
                              **test_opts)
    except (SystemExit, RuntimeError) as exc:  # cocotb_tools exits (under pytest), or
        # raises on a non-zero exit status of the simulator (e.g. after $fatal)
        _raise_on_simulator_errors(sim_log, f"{dut} {tag}", seed)
        raise TestbenchFailed(f"{dut} {tag}: cocotb tests failed or the simulator exited "
                              f"with an error ({exc!r}); seed {seed}; the log above names the "
                              f"failing test; results in {bdir / 'results.xml'}") from None
    try:
        total, failed = get_results(Path(results))
    except RuntimeError as exc:
        _raise_on_simulator_errors(sim_log, f"{dut} {tag}", seed)
        raise TestbenchFailed(f"{dut} {tag}: no usable results ({exc}); seed {seed}") from exc
    _raise_on_simulator_errors(sim_log, f"{dut} {tag}", seed)
    if failed:
        raise TestbenchFailed(f"{dut} {tag}: {failed} of {total} cocotb tests failed; "
                              f"seed {seed}; log above, results in {results}")
    if total == 0:
        raise TestbenchFailed(f"{dut} {tag}: no cocotb test ran (testcase={testcase!r})")
    if waves:
        print(f"[qmac] waves: {bdir / (toplevel + '.fst')}", flush=True)
    return Path(results)
